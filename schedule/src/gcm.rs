//! Global code motion: which block every node goes to.
//!
//! Pinned nodes (loads, stores, calls, phis) stay in the block of their
//! control input; a call's projections stay with the call, and `Start`'s
//! memory and parameters go to the entry block. Floating nodes move, as in
//! Click's "Global Code Motion / Global Value Numbering" (PLDI 1995):
//!
//! * *early*: the deepest dominator-tree block among the inputs' blocks —
//!   the first place where all inputs exist;
//! * *late*: the lowest common dominator of the uses (a phi uses its input
//!   `i` at the end of predecessor `i`; a branch or return at its block) —
//!   the last place that still reaches every use;
//! * *choice*: on the dominator path from late up to early, the block of
//!   smallest loop depth, nearest late among equals. This hoists loop
//!   invariants without computing anything earlier than it must.
//!
//! Floating nodes without uses are dropped. Every use is finally checked
//! against dominance, so a graph that uses a value where it cannot exist
//! is an error instead of a schedule the backend would have to reject.

use crate::cfg::{Cfg, Users, NONE};
use crate::dom::DomTree;
use crate::error::ScheduleError;
use crate::loops::LoopNest;
use vssa::{Graph, NodeId, Op};

/// Where every node goes.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    /// Block of each scheduled node (phis included) by node index; `NONE`
    /// for control nodes, block heads and dropped nodes.
    pub(crate) block: Vec<u32>,
    /// Phis of each block, in construction order.
    pub(crate) phis: Vec<Vec<NodeId>>,
}

/// Floating nodes: pure computations that may run anywhere their inputs
/// exist and their uses are reached. Integer division is one: it never
/// traps (its results for 0 and `MIN / -1` are defined, see `BinOp`), so
/// hoisting it above the branch that tested its divisor is safe.
pub(crate) fn is_floating(op: Op) -> bool {
    matches!(
        op,
        Op::Const { .. }
            | Op::Bin(_)
            | Op::Un(_)
            | Op::Cmp(_)
            | Op::Conv(_)
            | Op::Select
            | Op::PtrAdd
            | Op::FBin(_)
            | Op::FUn(_)
            | Op::FCmp(_)
            | Op::FConv(_)
            | Op::FFits { .. }
    )
}

fn malformed(node: NodeId, reason: &'static str) -> ScheduleError {
    ScheduleError::Malformed { node, reason }
}

/// The block of a pinned node: the block its control input heads.
fn ctrl_block(g: &Graph, cfg: &Cfg, v: NodeId) -> Result<u32, ScheduleError> {
    cfg.block_of(g.input(v, 0))
        .ok_or(malformed(v, "the control input is not the head of a block"))
}

/// Where `u` needs the value in its input `slot`: `None` if the slot is not
/// a value use (control, a tuple for `Proj`) or `u` is not scheduled.
pub(crate) fn use_location(
    g: &Graph,
    cfg: &Cfg,
    block: &[u32],
    u: NodeId,
    slot: usize,
) -> Option<u32> {
    let placed = |b: u32| Some(b).filter(|&b| b != NONE);
    match g.op(u) {
        Op::Start | Op::Region | Op::Loop { .. } | Op::End | Op::Proj { .. } => None,
        Op::If => (slot == 1).then(|| cfg.block_of(g.input(u, 0))).flatten(),
        Op::Return => (slot >= 1).then(|| cfg.block_of(g.input(u, 0))).flatten(),
        Op::Phi { .. } => {
            let b = placed(block[u.index()])?;
            slot.checked_sub(1)
                .and_then(|i| cfg.preds(b as usize).get(i).copied())
        }
        Op::Load { .. }
        | Op::Store { .. }
        | Op::Call { .. }
        | Op::CallDirect { .. }
        | Op::CallIndirect { .. }
        | Op::ClassLoad { .. }
        | Op::ClassStore { .. }
            if slot == 0 =>
        {
            None
        }
        _ => placed(block[u.index()]),
    }
}

/// Places every live node of `g`.
pub(crate) fn place(
    g: &Graph,
    live: &[NodeId],
    users: &Users,
    cfg: &Cfg,
    dom: &DomTree,
    loops: &LoopNest,
) -> Result<Placement, ScheduleError> {
    let n = g.len();
    let mut block = vec![NONE; n];
    let mut floating = vec![false; n];
    let mut phis = vec![Vec::new(); cfg.len()];
    let mut float_list = Vec::new();

    // Pinned nodes and the other fixed places.
    for &v in live {
        let b = match g.op(v) {
            Op::Start | Op::Region | Op::Loop { .. } | Op::If | Op::Return | Op::End => continue,
            Op::Proj { index } => {
                let t = g.input(v, 0);
                match g.op(t) {
                    Op::Start if index == 0 => continue, // the entry's head
                    Op::Start => 0,
                    Op::If => continue, // a block head
                    op if op.is_call() => ctrl_block(g, cfg, t)?,
                    _ => return Err(malformed(v, "a projection of a node that is not a tuple")),
                }
            }
            Op::Load { .. }
            | Op::Store { .. }
            | Op::Call { .. }
            | Op::CallDirect { .. }
            | Op::CallIndirect { .. }
            | Op::ClassLoad { .. }
            | Op::ClassStore { .. } => ctrl_block(g, cfg, v)?,
            Op::Phi { .. } => {
                let r = g.input(v, 0);
                if !matches!(g.op(r), Op::Region | Op::Loop { .. }) {
                    return Err(malformed(v, "a phi's input 0 is not a Region or Loop"));
                }
                if g.arity(v) != 1 + g.arity(r) {
                    return Err(malformed(
                        v,
                        "a phi needs one value per input of its region",
                    ));
                }
                let b = cfg
                    .block_of(r)
                    .ok_or(malformed(v, "the phi's region is not the head of a block"))?;
                phis[b as usize].push(v);
                b
            }
            op if is_floating(op) => {
                floating[v.index()] = true;
                float_list.push(v);
                continue;
            }
            _ => return Err(malformed(v, "an operation the scheduler does not know")),
        };
        block[v.index()] = b;
    }

    // Floating nodes in topological order (Kahn): inputs before users.
    let mut indeg = vec![0u32; n];
    for &v in &float_list {
        indeg[v.index()] = g.inputs(v).iter().filter(|i| floating[i.index()]).count() as u32;
    }
    let mut ready: Vec<NodeId> = float_list
        .iter()
        .copied()
        .filter(|v| indeg[v.index()] == 0)
        .collect();
    let mut topo = Vec::with_capacity(float_list.len());
    while let Some(v) = ready.pop() {
        topo.push(v);
        for &u in &users[v.index()] {
            if floating[u.index()] {
                indeg[u.index()] -= 1;
                if indeg[u.index()] == 0 {
                    ready.push(u);
                }
            }
        }
    }
    if topo.len() != float_list.len() {
        let v = float_list
            .iter()
            .copied()
            .find(|v| indeg[v.index()] > 0)
            .unwrap_or(float_list[0]);
        return Err(ScheduleError::DataCycle { node: v });
    }
    drop(indeg);

    // Schedule early: the deepest input block; all inputs must dominate it.
    let mut early = vec![NONE; n];
    for &v in &topo {
        let inputs = g.inputs(v);
        let mut e = 0u32;
        for &d in &inputs {
            let bd = if floating[d.index()] {
                early[d.index()]
            } else {
                block[d.index()]
            };
            if bd == NONE {
                return Err(malformed(v, "a value input is a control or tuple node"));
            }
            if dom.depth(bd) > dom.depth(e) {
                e = bd;
            }
        }
        for &d in &inputs {
            let bd = if floating[d.index()] {
                early[d.index()]
            } else {
                block[d.index()]
            };
            if !dom.dominates(bd, e) {
                return Err(ScheduleError::NotDominated { def: d, user: v });
            }
        }
        early[v.index()] = e;
    }

    // Schedule late, users first, and choose the block.
    for &v in topo.iter().rev() {
        let mut lca = NONE;
        let mut prev = None;
        for &u in &users[v.index()] {
            // A user is listed once per slot, consecutively: visit it once.
            if prev == Some(u) {
                continue;
            }
            prev = Some(u);
            for slot in 0..g.arity(u) {
                if g.input(u, slot) != v {
                    continue;
                }
                if let Some(b) = use_location(g, cfg, &block, u, slot) {
                    lca = if lca == NONE { b } else { dom.lca(lca, b) };
                }
            }
        }
        if lca == NONE {
            continue; // no uses: dead
        }
        let e = early[v.index()];
        if !dom.dominates(e, lca) {
            return Err(not_dominated_use(g, cfg, dom, &block, users, v, e));
        }
        block[v.index()] = loops.shallowest_on_path(dom, lca, e);
    }

    verify(g, live, cfg, dom, &block)?;
    Ok(Placement { block, phis })
}

/// The error for a floating `v` whose early block `e` misses some use.
fn not_dominated_use(
    g: &Graph,
    cfg: &Cfg,
    dom: &DomTree,
    block: &[u32],
    users: &Users,
    v: NodeId,
    e: u32,
) -> ScheduleError {
    for &u in &users[v.index()] {
        for slot in 0..g.arity(u) {
            if g.input(u, slot) == v {
                if let Some(b) = use_location(g, cfg, block, u, slot) {
                    if !dom.dominates(e, b) {
                        return ScheduleError::NotDominated { def: v, user: u };
                    }
                }
            }
        }
    }
    ScheduleError::NotDominated { def: v, user: v }
}

/// Checks that every value use is dominated by its definition's block
/// (ordering inside a block is the job of `order`).
fn verify(
    g: &Graph,
    live: &[NodeId],
    cfg: &Cfg,
    dom: &DomTree,
    block: &[u32],
) -> Result<(), ScheduleError> {
    for &u in live {
        for slot in 0..g.arity(u) {
            let Some(loc) = use_location(g, cfg, block, u, slot) else {
                continue;
            };
            let d = g.input(u, slot);
            let db = block[d.index()];
            if db == NONE {
                return Err(malformed(u, "a value input is a control or tuple node"));
            }
            if !dom.dominates(db, loc) {
                return Err(ScheduleError::NotDominated { def: d, user: u });
            }
        }
    }
    Ok(())
}
