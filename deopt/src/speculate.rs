//! Speculation on branch profiles: a side never taken becomes a guard.

use std::collections::BTreeSet;
use vssa::{Addr, CmpOp, Graph, GraphError, NodeId, Op, Type};

/// A branch the profile saw go one way only, as the guest's builder
/// describes it.
///
/// Precondition (the guest's builder guarantees it by construction): the
/// side not taken is a single-entry region of control that starts at the
/// `If`'s projection `1 - taken` and rejoins at `merge`, a two-input
/// `Region` whose other input is the `If`'s projection `taken` itself.
/// That is the shape of a structured `if` without `else`, or of a rotated
/// loop's entry test and its exit.
#[derive(Clone, Copy, Debug)]
pub struct BranchSite {
    /// The `If`.
    pub branch: NodeId,
    /// The projection the profile saw taken (0: `cond != 0`, 1: `cond == 0`).
    pub taken: u32,
    /// Where the two sides meet.
    pub merge: NodeId,
    /// The guest state *before* the branch's test: where to resume when
    /// the speculation fails.
    pub frame: NodeId,
    /// The guard's reason code.
    pub reason: u32,
}

/// What [`speculate_never_taken`] did.
#[derive(Clone, Debug, Default)]
pub struct Speculation {
    /// The guards it made, in site order.
    pub guards: Vec<NodeId>,
    /// Sites left alone because their guard was refuted.
    pub refuted: usize,
    /// Sites left alone because the graph no longer has their shape
    /// (the optimizer removed the branch, or the side is already gone).
    pub skipped: usize,
}

/// `sites` lists every branch the guest could speculate on; `chosen(k)`
/// says whether to speculate on `sites[k]` now (the profile never saw it
/// go the other way). All sites are needed, chosen or not, to recognize the
/// ones a replayed patch log speculated on before.
///
/// For each chosen site: `merge` is replaced by `Guard [ctrl, cond', frame]` with
/// `cond'` true exactly when the branch goes the taken way, and each phi of
/// `merge` by its value on the taken side. The untaken side becomes dead
/// code; when the guard fails, the guest resumes before the test and takes
/// the untaken side in its interpreter.
///
/// A site whose guard address is in `refuted` (it failed before, in this
/// process or in one whose log was loaded) is left alone: the general code
/// stays. Every change is a [`Graph::replace`], so the recorder turns them
/// into patches like any optimization's.
pub fn speculate_never_taken(
    g: &mut Graph,
    sites: &[BranchSite],
    chosen: &dyn Fn(usize) -> bool,
    refuted: &BTreeSet<Addr>,
) -> Result<Speculation, GraphError> {
    let users = g.users();
    let mut out = Speculation::default();
    // The speculated branches: control no longer flows into them.
    let mut cut = vec![false; g.len()];
    for (k, s) in sites.iter().enumerate() {
        if !chosen(k) {
            continue;
        }
        let iff = s.branch;
        let shape_ok = g.resolve(iff) == iff
            && g.op(iff) == Op::If
            && s.taken <= 1
            && g.resolve(s.merge) == s.merge
            && g.op(s.merge) == Op::Region
            && g.arity(s.merge) == 2
            && matches!(g.op(g.resolve(s.frame)), Op::FrameState { .. });
        if !shape_ok {
            out.skipped += 1;
            continue;
        }
        let kept_proj = g.address_of(&Op::Proj { index: s.taken }, Type::Ctrl, &[iff]);
        let Some(kept) = g.lookup(&kept_proj).map(|p| g.resolve(p)) else {
            out.skipped += 1;
            continue;
        };
        let Some(slot) = (0..2).find(|&i| g.input(s.merge, i) == kept) else {
            out.skipped += 1;
            continue;
        };
        let (ctrl, cond) = (g.input(iff, 0), g.input(iff, 1));
        let zero = g.iconst(g.ty(cond), 0)?;
        let op = if s.taken == 0 { CmpOp::Ne } else { CmpOp::Eq };
        let holds = g.cmp(op, cond, zero)?;
        // The optimizer may have re-interned the frame on simplified inputs.
        let frame = g.resolve(s.frame);
        let guard_op = Op::Guard { reason: s.reason };
        if refuted.contains(&g.address_of(&guard_op, Type::Ctrl, &[ctrl, holds, frame])) {
            out.refuted += 1;
            continue;
        }
        let guard = g.guard(ctrl, holds, frame, s.reason)?;
        let phis: Vec<NodeId> = users
            .of(s.merge)
            .iter()
            .copied()
            .filter(|&p| matches!(g.op(p), Op::Phi { .. }) && g.input(p, 0) == s.merge)
            .collect();
        // The merge first: the patch that builds the guard is the first
        // one a refutation of it has to skip.
        g.replace(s.merge, guard)?;
        for phi in phis {
            if g.resolve(phi) == phi {
                let v = g.input(phi, 1 + slot);
                g.replace(phi, v)?;
            }
        }
        out.guards.push(guard);
    }
    // Sites speculated before (by a replayed log) count too: their
    // merge is gone.
    for st in sites {
        if st.branch.index() < cut.len() && g.resolve(st.merge) != st.merge {
            cut[st.branch.index()] = true;
        }
    }
    if cut.iter().any(|&c| c) {
        drop_unreachable_returns(g, &cut)?;
    }
    Ok(out)
}

/// Rebuilds `End` without the returns that control can no longer reach
/// from `Start`, now that it no longer flows into the `cut` branches. A
/// side made dead by a guard may hold returns of its own (e.g. an error
/// exit inside a loop): they keep its nodes live, backwards from `End`,
/// although no control flows into them any more.
fn drop_unreachable_returns(g: &mut Graph, cut: &[bool]) -> Result<(), GraphError> {
    let Some(end) = g.end() else {
        return Ok(());
    };
    let live = g.live_nodes();
    let Some(start) = live.iter().copied().find(|&n| g.op(n) == Op::Start) else {
        return Ok(());
    };
    let entry = g.address_of(&Op::Proj { index: 0 }, Type::Ctrl, &[start]);
    let Some(entry) = g.lookup(&entry).map(|e| g.resolve(e)) else {
        return Ok(());
    };
    let users = g.users_of(&live);
    let mut reached = vec![false; g.len()];
    reached[entry.index()] = true;
    let mut stack = vec![entry];
    while let Some(c) = stack.pop() {
        for &u in users[c.index()].iter() {
            let flows = match g.op(u) {
                Op::Region | Op::Loop { .. } => true,
                Op::If => g.input(u, 0) == c && !cut.get(u.index()).copied().unwrap_or(false),
                Op::Return | Op::Guard { .. } => g.input(u, 0) == c,
                Op::Proj { .. } => g.op(c) == Op::If && g.ty(u) == Type::Ctrl,
                _ => false,
            };
            if flows && !reached[u.index()] {
                reached[u.index()] = true;
                stack.push(u);
            }
        }
    }
    let returns: Vec<NodeId> = g
        .inputs(end)
        .iter()
        .copied()
        .filter(|r| reached[r.index()])
        .collect();
    if returns.len() < g.arity(end) && !returns.is_empty() {
        let pruned = g.build(Op::End, Type::Ctrl, &returns)?;
        g.replace(end, pruned)?;
    }
    Ok(())
}
