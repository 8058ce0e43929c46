//! Guard lowering: every guard becomes a branch to an exit block.

use crate::exit::{DeoptAbi, DeoptExit, ExitTable};
use std::fmt;
use vssa::frame::frame_chain;
use vssa::{CmpOp, ConvOp, Graph, GraphError, NodeId, Op, Type};

/// Why guards could not be lowered.
#[derive(Debug)]
pub enum LowerError {
    /// A frame has more slots than the deopt buffer.
    FrameTooLarge {
        guard: NodeId,
        slots: usize,
        capacity: usize,
    },
    /// A guard's input 2 is not a frame state, or the graph has no `End`.
    Malformed {
        node: Option<NodeId>,
        reason: &'static str,
    },
    Graph(GraphError),
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LowerError::FrameTooLarge {
                guard,
                slots,
                capacity,
            } => write!(
                f,
                "{guard}: its frame has {slots} slots but the deopt buffer holds {capacity}"
            ),
            LowerError::Malformed {
                node: Some(n),
                reason,
            } => write!(f, "{n}: {reason}"),
            LowerError::Malformed { node: None, reason } => write!(f, "graph: {reason}"),
            LowerError::Graph(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LowerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LowerError::Graph(e) => Some(e),
            _ => None,
        }
    }
}

impl From<GraphError> for LowerError {
    fn from(e: GraphError) -> Self {
        LowerError::Graph(e)
    }
}

/// `If [ctrl, cond]` and its two projections, both still standing.
///
/// Building the branch may find an `If` the graph already has (value
/// numbering). If control folding (`vssa::fold_control`) folded that one,
/// its condition is a constant and one of its projections stands for its
/// control now: a guard on the same constant at the same point (one that
/// always fails) would get a branch with one side. Its branch then tests
/// an unsimplified `cond != 0`, a node of its own.
fn branch_with_both_sides(
    g: &mut Graph,
    guard: NodeId,
    ctrl: NodeId,
    cond: NodeId,
) -> Result<(NodeId, NodeId), LowerError> {
    let both_stand = |g: &Graph, pass: NodeId, fail: NodeId| {
        let (pass, fail) = (g.resolve(pass), g.resolve(fail));
        g.op(pass) == Op::Proj { index: 0 }
            && g.op(fail) == Op::Proj { index: 1 }
            && g.input(pass, 0) == g.input(fail, 0)
    };
    let (pass, fail) = g.branch(ctrl, cond)?;
    if both_stand(g, pass, fail) {
        return Ok((pass, fail));
    }
    let zero = g.intern(Op::Const { value: 0 }, g.ty(cond), &[])?;
    let test = g.intern(Op::Cmp(CmpOp::Ne), Type::I8, &[cond, zero])?;
    let iff = g.intern(Op::If, Type::Tuple, &[ctrl, test])?;
    let pass = g.intern(Op::Proj { index: 0 }, Type::Ctrl, &[iff])?;
    let fail = g.intern(Op::Proj { index: 1 }, Type::Ctrl, &[iff])?;
    if both_stand(g, pass, fail) {
        Ok((pass, fail))
    } else {
        Err(LowerError::Malformed {
            node: Some(guard),
            reason: "no branch with two sides can be built for this guard",
        })
    }
}

/// Replaces every live guard by `If [ctrl, cond]`: the true side goes on,
/// the false side stores the frame's values into the deopt buffer (on the
/// frame's memory state; a chain of inlined frames and objects to
/// materialize laid out by [`vssa::frame::frame_chain`]) and returns the
/// guard's exit id. Exit ids follow
/// the order of [`Graph::live_nodes`], so the same graph always gets the
/// same table.
///
/// This is a lowering, not an optimization: it runs after the patch log is
/// recorded, on every compilation, like scheduling.
pub fn lower_guards(g: &mut Graph, abi: &DeoptAbi) -> Result<ExitTable, LowerError> {
    let Some(end) = g.end() else {
        return Err(LowerError::Malformed {
            node: None,
            reason: "no End was set",
        });
    };
    let guards: Vec<NodeId> = g
        .live_nodes()
        .into_iter()
        .filter(|&n| matches!(g.op(n), Op::Guard { .. }))
        .collect();
    let mut table = ExitTable {
        first_exit: abi.first_exit,
        exits: Vec::with_capacity(guards.len()),
    };
    if guards.is_empty() {
        return Ok(table);
    }
    if g.signature().is_some() {
        return Err(LowerError::Malformed {
            node: Some(guards[0]),
            reason: "a guard in a function with a signature (a lowered guard returns an exit \
                     code, which its results have no place for)",
        });
    }
    let mut returns: Vec<NodeId> = g.inputs(end).to_vec();
    for (k, &guard) in guards.iter().enumerate() {
        let Op::Guard { reason } = g.op(guard) else {
            unreachable!("filtered above");
        };
        let (ctrl, cond, frame) = (g.input(guard, 0), g.input(guard, 1), g.input(guard, 2));
        let chain = frame_chain(g, frame).map_err(|reason| LowerError::Malformed {
            node: Some(guard),
            reason,
        })?;
        let values = chain.values;
        if values.len() > abi.capacity {
            return Err(LowerError::FrameTooLarge {
                guard,
                slots: values.len(),
                capacity: abi.capacity,
            });
        }
        let (pass, fail) = branch_with_both_sides(g, guard, ctrl, cond)?;
        let mut mem = chain.mem;
        for (i, &v) in values.iter().enumerate() {
            let wide = match g.ty(v) {
                Type::I8 | Type::I16 | Type::I32 => g.conv(ConvOp::Sext, Type::I64, v)?,
                _ => v,
            };
            let offset = abi.buffer_offset + 8 * i as i32;
            mem = g.store(fail, mem, abi.ctx, offset, wide)?;
        }
        let code = g.iconst(abi.exit_type, abi.first_exit + k as i64)?;
        returns.push(g.ret(fail, mem, code)?);
        table.exits.push(DeoptExit {
            guard: g.addr(guard),
            reason,
            resume: chain.frames[0].resume,
            slots: values.iter().map(|&v| g.ty(v)).collect(),
            frames: chain.frames,
        });
        g.replace(guard, pass)?;
    }
    g.finish(&returns)?;
    Ok(table)
}
