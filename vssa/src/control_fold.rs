//! Control folding: branches on constants, and the control they cut off.
//!
//! The peepholes see one node at a time; what a constant branch makes
//! unreachable is a property of the control-flow graph. [`fold_control`]
//! walks control forward from the entry, following only the side a
//! constant `If` takes, and then rewrites:
//!
//! * **an `If` on a constant**: its taken projection is replaced by the
//!   `If`'s own control, so the code behind it joins the code before;
//! * **dead region inputs and their phis**: a `Region` some of whose
//!   predecessors are unreachable is replaced by a region of the others
//!   (or by the one that is left), and each of its phis by a phi of the
//!   values on those edges (or by the one value);
//! * **loops that never go round again**: a `Loop` whose back edge is
//!   unreachable (its latch tests a constant that leaves) runs its body
//!   once: it is replaced by its entry control and each of its phis by
//!   its entry value. A loop whose entry is unreachable goes with the
//!   region input it fed. Loops that may not end are never removed, even
//!   with empty bodies (`while (x) {}` with `x` unknown must still hang);
//! * **unreachable returns**: `End` is rebuilt without them, unless none
//!   would be left, or reachable code would go with them (a loop that
//!   never ends but leaves through a guard is live only through the
//!   return after it).
//!
//! A round whose rewrites would leave unreachable control live, or
//! reachable control dead, is left out whole: a folded `If` needs its
//! untaken side gone, and every reachable guard must stay.
//!
//! Every rewrite is a [`Graph::replace`], so the patch log records it and
//! a replay reproduces it; nodes are never edited. Unreachable nodes are
//! not deleted: once nothing live uses them they are no longer live.
//! `Guard`s always pass control on (a failing guard leaves through its
//! frame, but the guard itself stays). Replacing a phi by a value can make
//! another branch constant, so the pass repeats, at most [`MAX_ROUNDS`]
//! times; the optimizer may find more (a folded phi's users simplify), and
//! running the two in turn reaches the rest.

use crate::graph::{Graph, GraphError, NodeId};
use crate::op::Op;
use crate::types::Type;

/// Rounds of [`fold_control`] before it stops. Each round that changes
/// something removes control nodes; real graphs need one or two. Stopping
/// early is always sound.
pub const MAX_ROUNDS: u32 = 16;

/// What [`fold_control`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldStats {
    /// `If`s on a constant folded into straight control.
    pub branches: u32,
    /// Regions that lost unreachable inputs.
    pub regions: u32,
    /// Phis rebuilt or replaced with their regions and loops.
    pub phis: u32,
    /// Loops replaced by their entry (their back edge was unreachable).
    pub loops: u32,
    /// Returns dropped from `End`.
    pub returns: u32,
    /// Rounds run (the last one found nothing, unless the bound stopped it).
    pub rounds: u32,
}

impl FoldStats {
    /// Rewrites of control made (phis go with them).
    pub fn changes(&self) -> u32 {
        self.branches + self.regions + self.loops + self.returns
    }
}

/// Folds the live graph's control (see the module docs). The graph should
/// pass the verifier; on one that does not, the pass changes less, never
/// makes it worse, and does not panic.
pub fn fold_control(g: &mut Graph) -> Result<FoldStats, GraphError> {
    let mut stats = FoldStats::default();
    while stats.rounds < MAX_ROUNDS {
        stats.rounds += 1;
        let before = stats.changes();
        fold_round(g, &mut stats)?;
        if stats.changes() == before {
            break;
        }
    }
    Ok(stats)
}

/// The side an `If` on a constant takes: the index of its projection.
fn constant_side(g: &Graph, iff: NodeId) -> Option<u32> {
    if g.op(iff) != Op::If || g.arity(iff) != 2 {
        return None;
    }
    match g.op(g.input(iff, 1)) {
        Op::Const { value } => Some(if value != 0 { 0 } else { 1 }),
        _ => None,
    }
}

/// One round: reachability from the entry, then every rewrite it allows.
fn fold_round(g: &mut Graph, stats: &mut FoldStats) -> Result<(), GraphError> {
    let Some(end) = g.end() else {
        return Ok(());
    };
    let live = g.live_nodes();
    let users = g.live_users();
    let Some(entry) = live.iter().copied().find(|&n| {
        g.op(n) == Op::Proj { index: 0 }
            && g.ty(n) == Type::Ctrl
            && g.arity(n) == 1
            && g.op(g.input(n, 0)) == Op::Start
    }) else {
        return Ok(());
    };

    // Control reachable from the entry, a constant `If` flowing only into
    // its taken projection.
    let mut reached = vec![false; g.len()];
    reached[entry.index()] = true;
    let mut stack = vec![entry];
    while let Some(c) = stack.pop() {
        let side = constant_side(g, c);
        for &u in &users[c.index()] {
            let flows = match g.op(u) {
                Op::Region | Op::Loop { .. } => true,
                Op::If | Op::Return | Op::Guard { .. } => g.arity(u) > 0 && g.input(u, 0) == c,
                Op::Proj { index } => {
                    g.op(c) == Op::If && g.ty(u) == Type::Ctrl && side.is_none_or(|s| s == index)
                }
                _ => false,
            };
            if flows && !reached[u.index()] {
                reached[u.index()] = true;
                stack.push(u);
            }
        }
    }
    let phis_of = |g: &Graph, r: NodeId| -> Vec<NodeId> {
        users[r.index()]
            .iter()
            .copied()
            .filter(|&p| matches!(g.op(p), Op::Phi { .. }) && g.arity(p) > 0 && g.input(p, 0) == r)
            .fold(Vec::new(), |mut v, p| {
                if !v.contains(&p) {
                    v.push(p);
                }
                v
            })
    };

    // Decide everything on the graph as it is, then rewrite.
    let mut taken: Vec<(NodeId, NodeId)> = Vec::new();
    let mut regions: Vec<(NodeId, Vec<usize>, Vec<NodeId>)> = Vec::new();
    let mut loops: Vec<(NodeId, Vec<NodeId>)> = Vec::new();
    for &n in &live {
        if !reached[n.index()] {
            continue;
        }
        match g.op(n) {
            Op::If => {
                let Some(side) = constant_side(g, n) else {
                    continue;
                };
                let proj = users[n.index()]
                    .iter()
                    .copied()
                    .find(|&p| g.op(p) == Op::Proj { index: side } && g.ty(p) == Type::Ctrl);
                if let Some(p) = proj {
                    taken.push((p, g.input(n, 0)));
                }
            }
            Op::Region => {
                let inputs = g.inputs(n);
                let keep: Vec<usize> = (0..inputs.len())
                    .filter(|&i| reached[inputs[i].index()])
                    .collect();
                // The phis only of a region that loses inputs: finding
                // them walks every user of the region (its loads and
                // stores too), which cost most of the pass.
                if keep.len() < inputs.len() && !keep.is_empty() {
                    let phis = phis_of(g, n);
                    if phis.iter().all(|&p| g.arity(p) == inputs.len() + 1) {
                        regions.push((n, keep, phis));
                    }
                }
            }
            Op::Loop { .. } => {
                let back_dead = g.back_input(n).is_some_and(|b| !reached[b.index()]);
                if !back_dead || g.arity(n) != 2 {
                    continue;
                }
                let phis = phis_of(g, n);
                // A loop phi's entry value comes from before the loop: never
                // the phi itself, unless the graph is malformed.
                let phis_ok = phis
                    .iter()
                    .all(|&p| g.arity(p) == 3 && g.input(p, 1) != p && g.input(p, 1) != n);
                if phis_ok {
                    loops.push((n, phis));
                }
            }
            _ => {}
        }
    }
    let returns: Vec<NodeId> = g
        .inputs(end)
        .iter()
        .copied()
        .filter(|r| reached[r.index()])
        .collect();
    let can_prune = !returns.is_empty() && returns.len() < g.arity(end);
    if taken.is_empty() && regions.is_empty() && loops.is_empty() && !can_prune {
        // Nothing to rewrite (the last round mostly): the check below
        // would walk the whole graph to allow no change.
        return Ok(());
    }
    // Pruning `End` may also drop reachable code that leaves only through
    // guards (a loop that never ends but deoptimizes): then keep it whole.
    let safe = |prune: bool| {
        rewrites_keep_control(g, &live, &reached, &taken, &regions, &loops, end, prune)
    };
    let prune_end = if can_prune && safe(true) {
        true
    } else if safe(false) {
        false
    } else {
        return Ok(());
    };

    for (proj, ctrl) in taken {
        if g.resolve(proj) == proj && g.resolve(ctrl) != proj {
            g.replace(proj, ctrl)?;
            stats.branches += 1;
        }
    }
    for (region, keep, phis) in regions {
        if g.resolve(region) != region {
            continue;
        }
        let inputs = g.inputs(region);
        let kept: Vec<NodeId> = keep.iter().map(|&i| inputs[i]).collect();
        let new_region = match kept.as_slice() {
            &[only] => only,
            _ => g.intern(Op::Region, Type::Ctrl, &kept)?,
        };
        if g.resolve(new_region) == region {
            continue;
        }
        for phi in phis {
            if g.resolve(phi) != phi {
                continue;
            }
            let values = g.inputs(phi);
            let new_phi = if keep.len() == 1 {
                values[1 + keep[0]]
            } else {
                let mut ins = vec![new_region];
                ins.extend(keep.iter().map(|&i| values[1 + i]));
                g.intern(g.op(phi), g.ty(phi), &ins)?
            };
            if g.resolve(new_phi) != phi {
                g.replace(phi, new_phi)?;
                stats.phis += 1;
            }
        }
        g.replace(region, new_region)?;
        stats.regions += 1;
    }
    for (lp, phis) in loops {
        if g.resolve(lp) != lp {
            continue;
        }
        for phi in phis {
            let entry_value = g.input(phi, 1);
            if g.resolve(phi) == phi && entry_value != phi {
                g.replace(phi, entry_value)?;
                stats.phis += 1;
            }
        }
        let entry = g.input(lp, 0);
        if entry != lp {
            g.replace(lp, entry)?;
            stats.loops += 1;
        }
    }
    let end = g.resolve(end);
    if prune_end {
        let pruned = g.intern(Op::End, Type::Ctrl, &returns)?;
        if pruned != end {
            stats.returns += (g.arity(end) - returns.len()) as u32;
            g.replace(end, pruned)?;
        }
    }
    Ok(())
}

/// Whether the planned rewrites leave control well formed: no unreachable
/// control node live any more, and every reachable one that is not
/// replaced still live. If an unreachable one stayed (a program that
/// never returns keeps its unreachable returns; a malformed graph may use
/// a value pinned in dead code), a folded `If` would stay live through its
/// other side while its taken side flowed on without it: one control node
/// with two successors. If a reachable one died (it was live only through
/// a return that is pruned: a loop that never ends and leaves only through
/// its guards), an `If` before it would lose a side, and the guards their
/// deoptimizations. Checked by walking liveness backwards from `End` over
/// the graph as the rewrites would leave it.
#[allow(clippy::too_many_arguments)]
fn rewrites_keep_control(
    g: &Graph,
    live: &[NodeId],
    reached: &[bool],
    taken: &[(NodeId, NodeId)],
    regions: &[(NodeId, Vec<usize>, Vec<NodeId>)],
    loops: &[(NodeId, Vec<NodeId>)],
    end: NodeId,
    prune_end: bool,
) -> bool {
    // What a node stands for after the rewrites, and the new inputs of the
    // nodes rebuilt with fewer, by node index. (Looked up once per live
    // node and input: arrays rather than maps, and no copy of each node's
    // inputs, which cost most of the pass on hanoi.)
    const NONE: u32 = u32::MAX;
    let mut redirect = Redirect {
        to: vec![NONE; g.len()],
        count: 0,
    };
    let mut rebuilt_at = vec![NONE; g.len()];
    let mut rebuilt: Vec<Vec<NodeId>> = Vec::new();
    let mut rebuild = |n: NodeId, ins: Vec<NodeId>| match rebuilt_at[n.index()] {
        NONE => {
            rebuilt_at[n.index()] = rebuilt.len() as u32;
            rebuilt.push(ins);
        }
        k => rebuilt[k as usize] = ins,
    };
    for &(proj, ctrl) in taken {
        redirect.insert(proj, ctrl);
    }
    for (region, keep, phis) in regions {
        let inputs = g.inputs(*region);
        if let [only] = keep.as_slice() {
            redirect.insert(*region, inputs[*only]);
        } else {
            rebuild(*region, keep.iter().map(|&i| inputs[i]).collect());
        }
        for &phi in phis {
            let values = g.inputs(phi);
            if let [only] = keep.as_slice() {
                redirect.insert(phi, values[1 + only]);
            } else {
                let mut ins = vec![*region];
                ins.extend(keep.iter().map(|&i| values[1 + i]));
                rebuild(phi, ins);
            }
        }
    }
    for (lp, phis) in loops {
        redirect.insert(*lp, g.input(*lp, 0));
        for &phi in phis {
            redirect.insert(phi, g.input(phi, 1));
        }
    }
    if prune_end {
        let kept = g.inputs(end).into_iter().filter(|r| reached[r.index()]);
        rebuild(end, kept.collect());
    }
    let follow = |mut n: NodeId| {
        for _ in 0..=redirect.count {
            match redirect.to.get(n.index()) {
                Some(&next) if next != NONE => n = NodeId::from_index(next as usize),
                _ => break,
            }
        }
        n
    };
    let is_control = |n: NodeId| g.ty(n) == Type::Ctrl || g.op(n) == Op::If;
    let dead_control = |n: NodeId| !reached[n.index()] && n != end && is_control(n);
    let mut seen = vec![false; g.len()];
    let mut stack = vec![follow(end)];
    seen[stack[0].index()] = true;
    while let Some(n) = stack.pop() {
        if dead_control(n) {
            return false;
        }
        let inputs = match rebuilt_at[n.index()] {
            NONE => g.node(n).raw_inputs(),
            k => rebuilt[k as usize].as_slice(),
        };
        for &i in inputs {
            let i = follow(g.resolve(i));
            if !seen[i.index()] {
                seen[i.index()] = true;
                stack.push(i);
            }
        }
    }
    // Folded `If`s go with their untaken side; every other reachable
    // control node is replaced or still live.
    let mut folded = vec![false; g.len()];
    for &(proj, _) in taken {
        folded[g.input(proj, 0).index()] = true;
    }
    live.iter().all(|&n| {
        !reached[n.index()]
            || !is_control(n)
            || seen[n.index()]
            || redirect.to[n.index()] != NONE
            || folded[n.index()]
    })
}

/// Where each node goes after the planned rewrites (`u32::MAX`: stays),
/// and how many nodes go somewhere (a chain of redirections is at most
/// that long).
struct Redirect {
    to: Vec<u32>,
    count: usize,
}

impl Redirect {
    fn insert(&mut self, n: NodeId, to: NodeId) {
        if self.to[n.index()] == u32::MAX {
            self.count += 1;
        }
        self.to[n.index()] = to.index() as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use crate::print::print;

    /// `if c { a } else { b }` merged by a phi, returned; `c` given.
    fn diamond(cond: &str) -> Graph {
        let text = format!(
            "n0 tuple = start\nn1 ctrl = proj 0 n0\nn2 mem = proj 1 n0\n\
             n3 i8 = {cond}\nn4 tuple = if n1, n3\nn5 ctrl = proj 0 n4\n\
             n6 ctrl = proj 1 n4\nn7 ctrl = region n5, n6\nn8 i8 = const 10\n\
             n9 i8 = const 20\nn10 i8 = phi #0 n7, n8, n9\n\
             n11 ctrl = return n7, n2, n10\nn12 ctrl = end n11\n"
        );
        parse(&text).unwrap()
    }

    #[test]
    fn a_constant_branch_takes_its_side() {
        for (cond, want) in [("const 1", "const 10"), ("const 0", "const 20")] {
            let mut g = diamond(cond);
            let stats = fold_control(&mut g).unwrap();
            crate::verify(&g).unwrap();
            assert_eq!((stats.branches, stats.regions, stats.phis), (1, 1, 1));
            let text = print(&g);
            assert!(!text.contains(" if ") && !text.contains("region"), "{text}");
            let ret = text.lines().find(|l| l.contains("return")).unwrap();
            assert!(ret.ends_with("return n1, n2, n8") || ret.ends_with("return n1, n2, n9"));
            assert!(text.contains(want), "{text}");
            // Every change is a replacement: the patch log's unit.
            assert_eq!(g.replacements().len(), 3);
        }
    }

    #[test]
    fn an_unknown_branch_stays() {
        let mut g = diamond("proj 2 n0");
        let before = print(&g);
        let stats = fold_control(&mut g).unwrap();
        assert_eq!(stats.changes(), 0);
        assert_eq!(stats.rounds, 1);
        assert_eq!(print(&g), before);
    }

    #[test]
    fn graphs_without_end_or_entry_are_left_alone() {
        let mut g = Graph::new();
        assert_eq!(fold_control(&mut g).unwrap().changes(), 0);
        let mut g = parse("n0 ctrl = end\n").unwrap();
        assert_eq!(fold_control(&mut g).unwrap().changes(), 0);
    }
}
