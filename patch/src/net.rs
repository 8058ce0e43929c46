//! The net effect of a recording: the short log that rebuilds the same
//! optimized graph.
//!
//! An optimizer rewrites its own rewrites. It builds a node, replaces it a
//! few rules later, replaces the replacement; it replaces nodes that a
//! later rewrite leaves without readers. Replaying every step is correct
//! but pays for each one (an address lookup per name, a hash per rebuilt
//! node), and most steps leave nothing the final graph can see: optimizing
//! mandelbrot makes 4 577 replacements and builds 4 140 nodes, of which
//! 1 486 replacements and 2 880 nodes matter in the end.
//!
//! The net log keeps exactly what the graph can observe:
//!
//! * every new node that is live (reachable from `End` through resolved
//!   inputs), and every new node the kept ones are built from;
//! * for every node the front-end built, and every node a live node names
//!   as an input, that was replaced: one replacement by what it finally
//!   resolves to (chains `a → b → c` become `a → c`). The front-end's
//!   nodes are all kept, dead or live, because guests hold their ids in
//!   side tables (a speculation site's branch, merge and frame state) and
//!   passes resolve them: a later pass must find them where the full log
//!   would have left them.
//!
//! Replayed, it gives the same live nodes, with the same addresses, in the
//! same relative creation order, as replaying every step: the same
//! schedule and the same code.
//!
//! **Cut points.** A refuted guard cuts replay at the first patch that
//! builds it (see [`crate::replay`]): everything the optimizer did from
//! that speculation on is dropped, everything before is kept. So the net
//! effect is taken per *segment* between patches that build a guard: the
//! net patches before a guard's patch bring the graph, on every node live
//! at that point, exactly to where the full log's prefix would, and each
//! new guard is rebuilt in the first net patch of its segment. A patch
//! whose replacement is a guard the front-end built cuts too (guard
//! hoisting drops a loop's top guard for the one above it): the first
//! such replacement of each guard gets a segment of its own, whose one
//! link is that very replacement. Every segment costs one walk over the
//! live graph; a log with more than [`MAX_SEGMENTS`] segments is kept
//! whole instead.

use crate::model::{new_node, Patch, PatchNodes, Timeline};
use vssa::{Graph, NodeId, Op};

/// Segments (cut points + 1) above which the full log is kept: each costs
/// a walk over the graph. A tiered unit has one segment per speculated
/// loop, plus one; guard hoisting adds two per guard a loop's top guard
/// was dropped for (mandelbrot's whole program: 40 segments; with 32 as
/// the bound, it and hanoi kept full logs, 2.2× and 4.7× longer).
pub const MAX_SEGMENTS: usize = 128;

/// One net replacement: `target` resolves to `by` from time `time` on
/// (the index of the last recorded replacement it stands for).
struct Link {
    time: usize,
    target: NodeId,
    by: NodeId,
}

/// When each node was replaced, to resolve "as of" a point in the log.
struct Versions<'g> {
    g: &'g Graph,
    /// 0: replaced before recording began; `j + 1`: by recorded
    /// replacement `j`; `usize::MAX`: never.
    when: Vec<usize>,
}

impl Versions<'_> {
    /// What `x` resolves to after the first `t` recorded replacements, and
    /// the latest `when` among the replacements followed (0 if none).
    fn resolve_at(&self, mut x: NodeId, t: usize) -> (NodeId, usize) {
        let mut latest = 0;
        while self.when[x.index()] <= t {
            let Some(next) = self.g.node(x).replaced_by() else {
                break;
            };
            latest = latest.max(self.when[x.index()]);
            x = next;
        }
        (x, latest)
    }
}

/// The net patches of the recording `t` of `g`, or `None` when the log has
/// too many segments (or, defensively, when a needed node has no place):
/// the caller then keeps the full log.
pub(crate) fn net_patches(g: &Graph, t: &Timeline<'_>) -> Option<Vec<Patch>> {
    let n = g.len();
    let base = t.base;
    let repls = t.repls;
    let mut when = vec![usize::MAX; n];
    for (i, w) in when.iter_mut().enumerate() {
        if g.node(NodeId::from_index(i)).replaced_by().is_some() {
            *w = 0;
        }
    }
    for (j, &(old, _)) in repls.iter().enumerate() {
        when[old.index()] = j + 1;
    }
    let v = Versions { g, when };

    // Segment ends: the cut points (patches that build a guard or replace
    // by one), and the end of the log.
    let is_guard = |id: NodeId| matches!(g.op(id), Op::Guard { .. });
    let mut ends: Vec<usize> = Vec::new();
    // Replacements by a guard the front-end built (guard hoisting drops a
    // guard in favour of the one above it): no new node marks such a cut
    // point, so the first replacement by each such guard keeps a segment
    // of its own, whose one link is exactly that replacement.
    let mut marks: Vec<NodeId> = Vec::new();
    let mut marked = std::collections::HashSet::new();
    for (j, &(old, by)) in repls.iter().enumerate() {
        if is_guard(by) {
            ends.push(j);
            if by.index() < base && marked.insert(by) {
                ends.push(j + 1);
                marks.push(old);
            }
        }
    }
    let new_guards: Vec<usize> = (base..n)
        .filter(|&i| is_guard(NodeId::from_index(i)) && t.pos[i - base] != usize::MAX)
        .collect();
    ends.extend(new_guards.iter().map(|&i| t.pos[i - base]));
    ends.push(repls.len());
    ends.retain(|&e| e > 0);
    ends.sort_unstable();
    ends.dedup();
    if ends.len() > MAX_SEGMENTS {
        return None;
    }

    // Live nodes at every segment end, and the inputs they name as built.
    let end = g.end_as_built()?;
    let mut live = vec![false; n];
    // Every node the front-end built is named: its side tables (speculation
    // sites, frame states) hold their ids and resolve them later, dead or
    // not, so each must resolve as in the full log at every cut point.
    let mut named: Vec<bool> = (0..n).map(|i| i < base).collect();
    for &m in &marks {
        named[m.index()] = true;
    }
    let mut seen = vec![usize::MAX; n];
    let mut stack = Vec::new();
    for (k, &te) in ends.iter().enumerate() {
        let root = v.resolve_at(end, te).0;
        seen[root.index()] = k;
        stack.push(root);
        while let Some(u) = stack.pop() {
            live[u.index()] = true;
            for &x in g.node(u).raw_inputs() {
                named[x.index()] = true;
                let y = v.resolve_at(x, te).0;
                if seen[y.index()] != k {
                    seen[y.index()] = k;
                    stack.push(y);
                }
            }
        }
    }

    // One link per node on a named node's chain, per segment it moves in.
    let mut needed: Vec<bool> = (0..n).map(|i| i >= base && live[i]).collect();
    for &i in &new_guards {
        needed[i] = true;
    }
    let mut linked = vec![false; n];
    let mut links = Vec::new();
    for x in (0..n).filter(|&i| named[i]).map(NodeId::from_index) {
        let mut p = v.resolve_at(x, 0).0;
        if v.when[p.index()] == usize::MAX {
            // Never replaced: it resolves to itself at every segment end.
            continue;
        }
        for &te in &ends {
            let (q, latest) = v.resolve_at(p, te);
            if q == p {
                continue;
            }
            if !std::mem::replace(&mut linked[p.index()], true) {
                links.push(Link {
                    time: latest - 1,
                    target: p,
                    by: q,
                });
                for e in [p, q] {
                    if e.index() >= base {
                        needed[e.index()] = true;
                    }
                }
            }
            p = q;
        }
    }
    // New nodes the needed ones are built from (inputs precede their users).
    for i in (base..n).rev() {
        if needed[i] {
            for &x in g.node(NodeId::from_index(i)).raw_inputs() {
                needed[x.index()] |= x.index() >= base;
            }
        }
    }
    links.sort_unstable_by_key(|l| (l.time, l.target));

    // Each needed node goes into the first link at or after the recorded
    // patch that built it: it exists by then, no link before replaces one
    // of its inputs, and a guard opens its own segment.
    let mut patches: Vec<Patch> = links
        .iter()
        .map(|l| Patch {
            target: g.addr(l.target),
            by: g.addr(l.by),
            nodes: PatchNodes::new(),
        })
        .collect();
    let mut at = 0;
    for i in (base..n).filter(|&i| needed[i]) {
        let built = t.pos[i - base];
        while at < links.len() && links[at].time < built {
            at += 1;
        }
        patches
            .get_mut(at)?
            .nodes
            .push(new_node(g, NodeId::from_index(i)));
    }
    Some(patches)
}

#[cfg(test)]
mod tests {
    use crate::model::tests::sample;
    use crate::model::Recorder;
    use crate::replay::replay;
    use vssa::{Addr, Graph};

    fn live_addrs(g: &Graph) -> Vec<Addr> {
        let mut v: Vec<Addr> = g.live_nodes().into_iter().map(|n| g.addr(n)).collect();
        v.sort();
        v
    }

    /// `x + 1 + 1 + 1 + 1`, unsimplified: folding it builds `x + 2`,
    /// `x + 3`, `x + 4`, of which only the last stays.
    fn chain() -> Graph {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let mut v = g.param(e.start, 0, vssa::Type::I64).unwrap();
        for _ in 0..4 {
            let one = g.iconst(vssa::Type::I64, 1).unwrap();
            v = g.add(v, one).unwrap();
        }
        let r = g.ret(e.ctrl, e.mem, v).unwrap();
        g.finish(&[r]).unwrap();
        g
    }

    #[test]
    fn net_log_rebuilds_the_optimized_graph() {
        for make in [sample, chain] {
            check_net(make());
        }
    }

    fn check_net(mut g: Graph) {
        let fresh = g.clone();
        let rec = Recorder::start(&g);
        vssa::optimize(&mut g).unwrap();
        let full = rec.finish(&g).unwrap();
        let net = rec.log(&g).unwrap();
        let nodes = |ps: &[crate::Patch]| ps.iter().map(|p| p.nodes.len()).sum::<usize>();
        assert!(net.patches.len() <= full.len());
        assert!(nodes(&net.patches) <= nodes(&full));
        let mut h = fresh.clone();
        let r = replay(&mut h, &net);
        assert!(r.complete(), "{r:?}");
        assert_eq!(live_addrs(&h), live_addrs(&g));
        // Recording the replayed graph gives the same net log back.
        let rec2 = Recorder::start(&fresh);
        assert_eq!(rec2.log(&h).unwrap(), net);
    }
}
