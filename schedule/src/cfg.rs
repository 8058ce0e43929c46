//! Basic blocks from the control nodes of a graph.
//!
//! In the sea of nodes, control is a chain of nodes rather than a list of
//! blocks. A block begins at a *head* — the `Proj 0` of `Start`, a `Region`,
//! a `Loop`, or a `Proj` of an `If` — and ends at the head's single control
//! user: an `If` (a two-way branch), a `Return`, or an input slot of a
//! `Region`/`Loop` (a jump). Successors are found through the users of the
//! head, so the graph does not need forward control edges.
//!
//! Blocks are numbered in reverse postorder from the entry (an iterative
//! DFS), which puts every block after its dominators; later passes rely on
//! that to compute per-block facts in one forward sweep.

use crate::error::ScheduleError;
use crate::{BlockId, Terminator};
use smallvec::SmallVec;
use vssa::{Graph, NodeId, Op};

/// "No block" / "no node" in the dense per-node tables of this crate.
pub(crate) const NONE: u32 = u32::MAX;

/// Per-node users, as returned by [`Graph::users_of`].
pub(crate) type Users = vssa::UserLists;

/// How control leaves a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Into the `Region` or `Loop` node `target`.
    Jump(NodeId),
    /// Through the `If` node `iff`, whose projections `t` (taken when the
    /// condition is nonzero) and `f` head the two successor blocks.
    Branch { iff: NodeId, t: NodeId, f: NodeId },
    /// Out of the function through a `Return` node.
    Return(NodeId),
}

/// The control-flow graph: blocks in reverse postorder, block 0 the entry.
#[derive(Debug)]
pub(crate) struct Cfg {
    heads: Vec<NodeId>,
    exits: Vec<Exit>,
    preds: Vec<SmallVec<[u32; 2]>>,
    succs: Vec<SmallVec<[u32; 2]>>,
    /// The block each head node begins, by node index (`NONE` otherwise).
    head_block: Vec<u32>,
}

fn malformed(node: NodeId, reason: &'static str) -> ScheduleError {
    ScheduleError::Malformed { node, reason }
}

/// Checks the input counts that the scheduler indexes into, so that a
/// malformed node is an error rather than an out-of-bounds panic.
fn check_arity(g: &Graph, v: NodeId) -> Result<(), ScheduleError> {
    let (min, max, reason) = match g.op(v) {
        Op::Region => (1, usize::MAX, "a Region needs at least one input"),
        Op::Loop { .. } => (1, 2, "a Loop has inputs [entry] or [entry, back]"),
        Op::If => (2, 2, "an If has inputs [ctrl, cond]"),
        Op::Proj { .. } => (1, 1, "a Proj has one input"),
        Op::Return => (2, usize::MAX, "a Return has inputs [ctrl, mem, values..]"),
        Op::Load { .. } | Op::ClassLoad { .. } => (3, 3, "a Load has inputs [ctrl, mem, base]"),
        Op::Store { .. } | Op::ClassStore { .. } => {
            (4, 4, "a Store has inputs [ctrl, mem, base, value]")
        }
        Op::Call { .. } | Op::CallDirect { .. } => {
            (2, usize::MAX, "a Call has inputs [ctrl, mem, args..]")
        }
        Op::CallIndirect { .. } => (
            3,
            usize::MAX,
            "a CallIndirect has inputs [ctrl, mem, target, args..]",
        ),
        Op::Phi { .. } => (1, usize::MAX, "a Phi needs its region as input 0"),
        _ => return Ok(()),
    };
    let n = g.arity(v);
    if n < min || n > max {
        return Err(malformed(v, reason));
    }
    Ok(())
}

/// Whether `v` begins a block.
fn is_head(g: &Graph, v: NodeId) -> Result<bool, ScheduleError> {
    Ok(match g.op(v) {
        Op::Region | Op::Loop { .. } => true,
        Op::Proj { index } => match g.op(g.input(v, 0)) {
            Op::Start => index == 0,
            Op::If if index <= 1 => true,
            Op::If => return Err(malformed(v, "an If has only projections 0 and 1")),
            _ => false,
        },
        _ => false,
    })
}

/// The live projections `Proj 0` / `Proj 1` of an `If`.
fn if_targets(g: &Graph, users: &Users, iff: NodeId) -> Result<(NodeId, NodeId), ScheduleError> {
    let (mut t, mut f) = (None, None);
    for &u in &users[iff.index()] {
        match g.op(u) {
            Op::Proj { index: 0 } => t = Some(u),
            Op::Proj { index: 1 } => f = Some(u),
            _ => {}
        }
    }
    match (t, f) {
        (Some(t), Some(f)) => Ok((t, f)),
        _ => Err(malformed(
            iff,
            "one side of this If never reaches End, so the branch has no target block",
        )),
    }
}

impl Cfg {
    /// Finds the blocks of the live part of `g`. `live` and `users` are
    /// [`Graph::live_nodes`] and [`Graph::users_of`].
    pub(crate) fn build(g: &Graph, live: &[NodeId], users: &Users) -> Result<Cfg, ScheduleError> {
        let end = g.end().ok_or(ScheduleError::NoEnd)?;
        if g.op(end) != Op::End {
            return Err(malformed(end, "the graph's sink is not an End node"));
        }
        for &v in live {
            check_arity(g, v)?;
        }

        // Heads, numbered provisionally in construction order.
        let mut tmp = vec![NONE; g.len()];
        let mut heads: Vec<NodeId> = Vec::new();
        let mut entry = None;
        for &v in live {
            if is_head(g, v)? {
                if g.op(v) == (Op::Proj { index: 0 }) && g.op(g.input(v, 0)) == Op::Start {
                    entry = Some(heads.len());
                }
                tmp[v.index()] = heads.len() as u32;
                heads.push(v);
            }
        }
        let entry = entry.ok_or(ScheduleError::NoStart)?;
        let head_of = |c: NodeId| -> Option<u32> { Some(tmp[c.index()]).filter(|&b| b != NONE) };

        for r in g.inputs(end) {
            if g.op(r) != Op::Return {
                return Err(malformed(end, "an input of End is not a Return"));
            }
            if head_of(g.input(r, 0)).is_none() {
                return Err(malformed(r, "the control input is not the head of a block"));
            }
        }

        // Each head's single control user ends its block.
        let mut exits = Vec::with_capacity(heads.len());
        for &h in &heads {
            let mut exit = None;
            for &u in &users[h.index()] {
                let e = match g.op(u) {
                    Op::If if g.input(u, 0) == h => {
                        let (t, f) = if_targets(g, users, u)?;
                        Exit::Branch { iff: u, t, f }
                    }
                    Op::Return if g.input(u, 0) == h => Exit::Return(u),
                    Op::Region | Op::Loop { .. } => Exit::Jump(u),
                    _ => continue,
                };
                if exit.is_some() {
                    return Err(malformed(
                        h,
                        "control leaves this block twice (a fork without an If, \
                         or two edges into one merge)",
                    ));
                }
                exit = Some(e);
            }
            let exit = exit.ok_or(malformed(
                h,
                "control stops in this block: it has no If, Return or merge after it",
            ))?;
            exits.push(exit);
        }

        // Every head's control inputs must be heads, so that preds exist.
        for &h in &heads {
            let bad = match g.op(h) {
                Op::Region | Op::Loop { .. } => g
                    .inputs(h)
                    .iter()
                    .any(|&c| head_of(c).is_none())
                    .then_some((h, "a merge input is not the head of a block")),
                Op::Proj { .. } => {
                    let iff = g.input(h, 0);
                    (g.op(iff) == Op::If && head_of(g.input(iff, 0)).is_none())
                        .then_some((iff, "the control input is not the head of a block"))
                }
                _ => None,
            };
            if let Some((node, reason)) = bad {
                return Err(malformed(node, reason));
            }
        }

        let tmp_succs: Vec<SmallVec<[u32; 2]>> = exits
            .iter()
            .map(|e| match *e {
                Exit::Jump(r) => [tmp[r.index()]].into_iter().collect(),
                Exit::Branch { t, f, .. } => [tmp[t.index()], tmp[f.index()]].into_iter().collect(),
                Exit::Return(_) => SmallVec::new(),
            })
            .collect();

        // Reverse postorder by an explicit DFS stack. Successors are visited
        // last to first so that a branch's taken side comes first in the
        // final order (the loop body before the loop exit).
        let n = heads.len();
        let mut visited = vec![false; n];
        let mut post = Vec::with_capacity(n);
        let mut stack: Vec<(usize, usize)> = vec![(entry, 0)];
        visited[entry] = true;
        while let Some(top) = stack.last_mut() {
            let (b, next) = *top;
            let s = &tmp_succs[b];
            if next < s.len() {
                top.1 += 1;
                let t = s[s.len() - 1 - next] as usize;
                if !visited[t] {
                    visited[t] = true;
                    stack.push((t, 0));
                }
            } else {
                post.push(b);
                stack.pop();
            }
        }
        if let Some(b) = visited.iter().position(|&v| !v) {
            return Err(malformed(
                heads[b],
                "this block is unreachable from the entry",
            ));
        }
        post.reverse();
        let rpo = post;

        let mut new_of_tmp = vec![0u32; n];
        for (i, &t) in rpo.iter().enumerate() {
            new_of_tmp[t] = i as u32;
        }
        let mut head_block = vec![NONE; g.len()];
        for (t, &h) in heads.iter().enumerate() {
            head_block[h.index()] = new_of_tmp[t];
        }
        let block_of = |c: NodeId| head_block[c.index()];

        let mut cfg = Cfg {
            heads: Vec::with_capacity(n),
            exits: Vec::with_capacity(n),
            preds: Vec::with_capacity(n),
            succs: Vec::with_capacity(n),
            head_block: Vec::new(),
        };
        for &t in &rpo {
            let h = heads[t];
            let preds: SmallVec<[u32; 2]> = match g.op(h) {
                Op::Region | Op::Loop { .. } => g.inputs(h).iter().map(|&c| block_of(c)).collect(),
                Op::Proj { .. } if g.op(g.input(h, 0)) == Op::If => {
                    [block_of(g.input(g.input(h, 0), 0))].into_iter().collect()
                }
                _ => SmallVec::new(),
            };
            cfg.heads.push(h);
            cfg.exits.push(exits[t]);
            cfg.preds.push(preds);
            cfg.succs.push(
                tmp_succs[t]
                    .iter()
                    .map(|&s| new_of_tmp[s as usize])
                    .collect(),
            );
        }
        cfg.head_block = head_block;
        Ok(cfg)
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    /// The head node of block `b`.
    pub(crate) fn head(&self, b: usize) -> NodeId {
        self.heads[b]
    }

    /// How block `b` ends.
    pub(crate) fn exit(&self, b: usize) -> Exit {
        self.exits[b]
    }

    /// Predecessors of block `b`, ordered like the head's control inputs.
    pub(crate) fn preds(&self, b: usize) -> &[u32] {
        &self.preds[b]
    }

    /// Successors of block `b`: `[target]`, `[if_true, if_false]` or `[]`.
    pub(crate) fn succs(&self, b: usize) -> &[u32] {
        &self.succs[b]
    }

    /// The block headed by the control node `c`, if it is a head.
    pub(crate) fn block_of(&self, c: NodeId) -> Option<u32> {
        self.head_block
            .get(c.index())
            .copied()
            .filter(|&b| b != NONE)
    }

    /// The contract form of block `b`'s exit.
    pub(crate) fn terminator(&self, g: &Graph, b: usize) -> Terminator {
        let id = |c: NodeId| BlockId(self.head_block[c.index()]);
        match self.exit(b) {
            Exit::Jump(r) => Terminator::Jump { target: id(r) },
            Exit::Branch { iff, t, f } => Terminator::Branch {
                cond: g.input(iff, 1),
                if_true: id(t),
                if_false: id(f),
            },
            Exit::Return(r) => Terminator::Return {
                ret: r,
                // A Return without values (a signature with no results)
                // names its memory state here.
                value: g.input(r, if g.arity(r) > 2 { 2 } else { 1 }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vssa::{CmpOp, Type};

    fn build(g: &Graph) -> Result<Cfg, ScheduleError> {
        let live = g.live_nodes();
        Cfg::build(g, &live, &g.users_of(&live))
    }

    #[test]
    fn diamond_blocks_in_reverse_postorder() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::I64).unwrap();
        let z = g.iconst(Type::I64, 0).unwrap();
        let c = g.cmp(CmpOp::Eq, p, z).unwrap();
        let (t, f) = g.branch(e.ctrl, c).unwrap();
        let r = g.region(&[f, t]).unwrap();
        let ret = g.ret(r, e.mem, p).unwrap();
        g.finish(&[ret]).unwrap();
        let cfg = build(&g).unwrap();
        assert_eq!(cfg.len(), 4);
        assert_eq!(cfg.head(0), e.ctrl);
        // The taken side is laid out before the other one.
        assert_eq!(cfg.head(1), t);
        assert_eq!(cfg.head(2), f);
        assert_eq!(cfg.head(3), r);
        // Region preds follow the region's inputs: [f, t].
        assert_eq!(cfg.preds(3), &[2, 1]);
        assert_eq!(cfg.preds(1), &[0]);
        assert_eq!(cfg.succs(0), &[1, 2]);
        assert_eq!(cfg.exit(3), Exit::Return(ret));
        assert_eq!(cfg.block_of(r), Some(3));
        assert_eq!(cfg.block_of(p), None);
    }

    #[test]
    fn missing_end_and_start_are_errors() {
        let mut g = Graph::new();
        let _ = g.entry().unwrap();
        assert_eq!(build(&g).unwrap_err(), ScheduleError::NoEnd);
        g.finish(&[]).unwrap();
        assert_eq!(build(&g).unwrap_err(), ScheduleError::NoStart);
    }

    #[test]
    fn control_fork_without_if_is_malformed() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let z = g.iconst(Type::I64, 0).unwrap();
        // Two Returns on the same control: control forks without a branch.
        let r1 = g.ret(e.ctrl, e.mem, z).unwrap();
        let o = g.iconst(Type::I64, 1).unwrap();
        let r2 = g.ret(e.ctrl, e.mem, o).unwrap();
        g.finish(&[r1, r2]).unwrap();
        assert!(matches!(
            build(&g).unwrap_err(),
            ScheduleError::Malformed { node, .. } if node == e.ctrl
        ));
    }

    #[test]
    fn dead_branch_side_is_malformed() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::I8).unwrap();
        let (t, _f) = g.branch(e.ctrl, p).unwrap();
        let ret = g.ret(t, e.mem, p).unwrap();
        g.finish(&[ret]).unwrap();
        let err = build(&g).unwrap_err();
        assert!(matches!(err, ScheduleError::Malformed { .. }), "{err}");
    }

    #[test]
    fn bad_arity_is_an_error_not_a_panic() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let bad = g.intern(Op::Return, Type::Ctrl, &[e.ctrl]).unwrap();
        g.finish(&[bad]).unwrap();
        assert!(
            matches!(build(&g).unwrap_err(), ScheduleError::Malformed { node, .. } if node == bad)
        );
    }
}
