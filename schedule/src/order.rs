//! The order of nodes inside each block.
//!
//! A topological sort (Kahn's algorithm) over two kinds of edges between
//! nodes of the same block:
//!
//! * data: an input before its user (this includes memory: a node's memory
//!   input is an input, so a store comes before what reads its state);
//! * anti-dependence: a load that reads memory state `M` before the stores
//!   and calls that may overwrite what it reads, see [`AntiDeps`].
//!
//! Ready nodes come out of a priority queue keyed by (class, node id):
//! `Start`'s projections first, so the backend defines memory and
//! parameters before anything uses them, then construction order. The
//! result is deterministic. A cycle is reported, never looped on.

use crate::cfg::{Users, NONE};
use crate::error::ScheduleError;
use crate::gcm::Placement;
use crate::BlockId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use vssa::{Graph, NodeId, Op};

/// How many disjoint stores one load's anti-dependence walk steps over, like
/// the peephole's `MAX_CHAIN_WALK`. Keeps many loads in front of a long run
/// of stores linear; past the bound the walk turns conservative.
pub(crate) const MAX_ANTI_WALK: usize = 128;

/// Whether the load `l` provably reads no byte that the store `s` writes:
/// alias classes that never alias, or the same resolved base at disjoint
/// `[offset, offset + width)` ranges ([`vssa::alias::may_alias`]).
pub(crate) fn provably_disjoint(g: &Graph, l: NodeId, s: NodeId) -> bool {
    g.op(l).is_load() && g.op(s).is_store() && !vssa::alias::may_alias(g, l, s)
}

/// Stores and calls: the nodes that make a new memory state.
pub(crate) fn is_effect(op: Op) -> bool {
    op.is_store() || op.is_call()
}

/// Sort key: `Start`'s projections before everything else, then node id.
fn key(g: &Graph, v: NodeId) -> Reverse<(u8, NodeId)> {
    let class = match g.op(v) {
        Op::Proj { .. } if g.op(g.input(v, 0)) == Op::Start => 0,
        _ => 1,
    };
    Reverse((class, v))
}

/// The scheduled stores and calls consuming each memory state, by the
/// state's node index (compressed rows, live order inside a row). Unlike
/// the full user lists it skips loads, so a state read by many loads costs
/// a walk nothing.
struct Consumers {
    start: Vec<u32>,
    list: Vec<NodeId>,
}

impl Consumers {
    fn new(g: &Graph, effects: &[NodeId]) -> Consumers {
        let mut start = vec![0u32; g.len() + 1];
        for &e in effects {
            start[g.input(e, 1).index() + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut fill = start.clone();
        let mut list = effects.to_vec();
        for &e in effects {
            let slot = &mut fill[g.input(e, 1).index()];
            list[*slot as usize] = e;
            *slot += 1;
        }
        Consumers { start, list }
    }

    fn of(&self, mem: NodeId) -> &[NodeId] {
        let i = mem.index();
        &self.list[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// Anti-dependences: `(load, effect)` pairs, sorted, where the load must run
/// before the store or call `effect` of its own block.
///
/// A load reading state `M` must precede every store or call that may
/// overwrite its bytes and comes after `M` on the memory chain. Peepholes
/// let a load skip stores to other bytes of its base, so such a store need
/// not consume `M` itself: it may sit behind stores the load skipped. The
/// walk therefore follows the chain forward from `M`, stepping over stores
/// that are provably disjoint from the load; the first store or call on
/// each path that may alias gets an edge. Disjoint stores get none: an edge
/// there would only over-constrain, or even form a cycle. The walk stops at
/// anything else (phis, returns, a call's memory) and at blocks that come
/// after the load's block in reverse postorder, which cannot lead back to
/// it. It does step through stores of earlier blocks: a load may skip a
/// store of a dominating block and alias a store of its own block built on
/// it.
///
/// Past [`MAX_ANTI_WALK`] steps a store of the load's block gets an edge
/// whatever its bytes, and a path still outside the block gives edges to
/// every store and call of the block whose memory comes from outside it
/// (the first ones of the block on any chain).
///
/// No new cycles: an edge `L -> S` closes a cycle only through an input of
/// `L` in the block, its memory `M` or its base `p`. Both reach `S` by data
/// edges when the walk stepped over a store (that store consumes `M`'s chain
/// and has base `p`), so the cycle already existed without the edge. A walk
/// that leaves the block only steps over stores whose base is defined
/// outside the block, so then `L` has no predecessor in the block at all.
/// Only the direct consumers of `M` remain, as before the walk existed.
/// A store of an alias class that cannot alias the load's is stepped over
/// like a disjoint one, but need not have base `p`; an edge past it still
/// goes to a store that may alias `L`, which the peepholes never move a
/// load above, so `L` read a state before that store as its front end
/// built it (and a cycle through `p` was in the graph from the start).
/// Loads therefore move freely across stores of other classes, while
/// stores and calls keep the order of the one memory chain.
struct AntiDeps(Vec<(NodeId, NodeId)>);

impl AntiDeps {
    fn new(g: &Graph, members: &[Vec<NodeId>], block: &[u32], effects: &[NodeId]) -> AntiDeps {
        let consumers = Consumers::new(g, effects);
        let mut pairs = Vec::new();
        let mut stack = Vec::new();
        for (b, members) in members.iter().enumerate() {
            let b32 = b as u32;
            // The first stores/calls of the block on any chain (the
            // conservative answer once a walk outside the block runs out).
            let entry: Vec<NodeId> = members
                .iter()
                .copied()
                .filter(|&e| is_effect(g.op(e)) && block[g.input(e, 1).index()] != b32)
                .collect();
            for &l in members {
                if !g.op(l).is_load() {
                    continue;
                }
                let mut steps = 0;
                let mut lost = false;
                stack.clear();
                stack.push(g.input(l, 1));
                while let Some(m) = stack.pop() {
                    for &e in consumers.of(m) {
                        let be = block[e.index()];
                        if be > b32 {
                            continue;
                        }
                        let disjoint = provably_disjoint(g, l, e);
                        if disjoint && steps < MAX_ANTI_WALK {
                            steps += 1;
                            stack.push(e);
                        } else if be == b32 {
                            pairs.push((l, e));
                        } else if disjoint {
                            lost = true;
                        }
                    }
                }
                if lost {
                    pairs.extend(entry.iter().map(|&e| (l, e)));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        AntiDeps(pairs)
    }

    /// The stores/calls the load `l` must precede (none for other nodes).
    fn of(&self, l: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let start = self.0.partition_point(|&(x, _)| x < l);
        self.0[start..]
            .iter()
            .take_while(move |&&(x, _)| x == l)
            .map(|&(_, e)| e)
    }
}

/// Orders the non-phi nodes of every block. Returns one list per block.
pub(crate) fn order_blocks(
    g: &Graph,
    live: &[NodeId],
    users: &Users,
    placement: &Placement,
) -> Result<Vec<Vec<NodeId>>, ScheduleError> {
    let block = &placement.block;
    let nb = placement.phis.len();
    let is_phi = |v: NodeId| matches!(g.op(v), Op::Phi { .. });

    let mut members: Vec<Vec<NodeId>> = vec![Vec::new(); nb];
    let mut effects = Vec::new();
    for &v in live {
        let b = block[v.index()];
        if b == NONE || is_phi(v) {
            continue;
        }
        members[b as usize].push(v);
        if is_effect(g.op(v)) {
            effects.push(v);
        }
    }
    let anti = AntiDeps::new(g, &members, block, &effects);

    let mut indeg = vec![0u32; g.len()];
    let mut out = Vec::with_capacity(nb);
    for (b, members) in members.into_iter().enumerate() {
        let b32 = b as u32;
        let in_block = |d: NodeId| block[d.index()] == b32 && !is_phi(d);

        for &v in &members {
            indeg[v.index()] = 0;
        }
        for &v in &members {
            for slot in 0..g.arity(v) {
                if in_block(g.input(v, slot)) {
                    indeg[v.index()] += 1;
                }
            }
            for s in anti.of(v) {
                indeg[s.index()] += 1;
            }
        }

        let mut heap: BinaryHeap<_> = members
            .iter()
            .filter(|v| indeg[v.index()] == 0)
            .map(|&v| key(g, v))
            .collect();
        let mut order = Vec::with_capacity(members.len());
        while let Some(Reverse((_, v))) = heap.pop() {
            order.push(v);
            // Users are listed once per input slot, matching the count above.
            for &u in &users[v.index()] {
                if in_block(u) {
                    indeg[u.index()] -= 1;
                    if indeg[u.index()] == 0 {
                        heap.push(key(g, u));
                    }
                }
            }
            for s in anti.of(v) {
                indeg[s.index()] -= 1;
                if indeg[s.index()] == 0 {
                    heap.push(key(g, s));
                }
            }
        }
        if order.len() != members.len() {
            let node = members
                .iter()
                .copied()
                .find(|v| indeg[v.index()] > 0)
                .unwrap_or(members[0]);
            return Err(ScheduleError::OrderCycle {
                block: BlockId(b32),
                node,
            });
        }
        out.push(order);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vssa::Type;

    #[test]
    fn disjointness_needs_same_base_and_separate_ranges() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let q = g.param(e.start, 1, Type::Ptr).unwrap();
        let v32 = g.iconst(Type::I32, 7).unwrap();
        let s = g.store(e.ctrl, e.mem, p, 4, v32).unwrap(); // bytes [4, 8)
        let l = |g: &mut Graph, base, off, ty| g.load(e.ctrl, e.mem, base, off, ty).unwrap();
        let a = l(&mut g, p, 0, Type::I32); // [0, 4)
        let b = l(&mut g, p, 8, Type::I8); // [8, 9)
        let c = l(&mut g, p, 1, Type::I32); // [1, 5): overlaps
        let d = l(&mut g, p, 7, Type::I8); // [7, 8): overlaps
        let x = l(&mut g, q, 0, Type::I32); // another base: may alias
        assert!(provably_disjoint(&g, a, s));
        assert!(provably_disjoint(&g, b, s));
        assert!(!provably_disjoint(&g, c, s));
        assert!(!provably_disjoint(&g, d, s));
        assert!(!provably_disjoint(&g, x, s));
        // Only loads against stores.
        assert!(!provably_disjoint(&g, s, a));
    }
}
