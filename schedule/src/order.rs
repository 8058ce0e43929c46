//! The order of nodes inside each block.
//!
//! A topological sort (Kahn's algorithm) over three kinds of edges between
//! nodes of the same block:
//!
//! * data: an input before its user (this includes memory: a node's memory
//!   input is an input, so a store comes before what reads its state);
//! * anti-dependence: a load that reads memory state `M` before a store or
//!   call that consumes `M` and overwrites what the load may read. A store
//!   to the same base whose byte range is disjoint from the load's cannot
//!   change the loaded value, so it gets no edge. Peepholes let loads skip
//!   such stores (the load then names the older state), and a conservative
//!   edge there would only over-constrain, or even form a cycle.
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

/// Whether the load `l` provably reads no byte that the store `s` writes:
/// same resolved base, disjoint `[offset, offset + width)` ranges.
pub(crate) fn provably_disjoint(g: &Graph, l: NodeId, s: NodeId) -> bool {
    let (Op::Load { offset: lo }, Op::Store { offset: so }) = (g.op(l), g.op(s)) else {
        return false;
    };
    if g.input(l, 2) != g.input(s, 2) {
        return false;
    }
    let (Some(lw), Some(sw)) = (g.ty(l).bytes(), g.ty(g.input(s, 3)).bytes()) else {
        return false;
    };
    let (l0, s0) = (i64::from(lo), i64::from(so));
    l0 + i64::from(lw) <= s0 || s0 + i64::from(sw) <= l0
}

/// Sort key: `Start`'s projections before everything else, then node id.
fn key(g: &Graph, v: NodeId) -> Reverse<(u8, NodeId)> {
    let class = match g.op(v) {
        Op::Proj { .. } if g.op(g.input(v, 0)) == Op::Start => 0,
        _ => 1,
    };
    Reverse((class, v))
}

/// Stores and calls by the memory state they consume, sorted.
struct Effects(Vec<(NodeId, NodeId)>);

impl Effects {
    fn consuming(&self, mem: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let start = self.0.partition_point(|&(m, _)| m < mem);
        self.0[start..]
            .iter()
            .take_while(move |&&(m, _)| m == mem)
            .map(|&(_, s)| s)
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
        if matches!(g.op(v), Op::Store { .. } | Op::Call { .. }) {
            effects.push((g.input(v, 1), v));
        }
    }
    effects.sort_unstable();
    let effects = Effects(effects);

    let mut indeg = vec![0u32; g.len()];
    let mut out = Vec::with_capacity(nb);
    for (b, members) in members.into_iter().enumerate() {
        let b32 = b as u32;
        let in_block = |d: NodeId| block[d.index()] == b32 && !is_phi(d);
        // The stores/calls a load must precede.
        let anti = |l: NodeId| {
            let mem = match g.op(l) {
                Op::Load { .. } => Some(g.input(l, 1)),
                _ => None,
            };
            mem.into_iter()
                .flat_map(|m| effects.consuming(m))
                .filter(move |&s| block[s.index()] == b32 && !provably_disjoint(g, l, s))
        };

        for &v in &members {
            indeg[v.index()] = 0;
        }
        for &v in &members {
            for slot in 0..g.arity(v) {
                if in_block(g.input(v, slot)) {
                    indeg[v.index()] += 1;
                }
            }
            for s in anti(v) {
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
            for s in anti(v) {
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
