//! Peephole rules: local rewrites answering "is there a simpler node equal
//! to `op(inputs)`?".
//!
//! [`simplify`] runs inside [`Graph::build`] before a node is interned, so
//! front-ends get folded, canonical, value-numbered nodes for free; the
//! worklist pass ([`crate::opt`]) asks the same rules again through
//! [`simplify_node`] once replacements have changed inputs.
//!
//! Every rule is a small named function, sound on its own, that returns an
//! equivalent node or `None`. Rules only ever move towards a canonical form
//! (constants fold, constants go right, `x - c` becomes `x + -c`, offsets
//! move into loads and stores, memory chains get shorter), so no two rules
//! undo each other and repeated simplification reaches a fixed point.
//!
//! This module dispatches by operation and holds what every rule uses;
//! the rules live in one module per topic:
//!
//! | module | operations |
//! |---|---|
//! | `arith` | integer `Bin`, `Un`, `PtrAdd` |
//! | `compare` | integer `Cmp`, `Conv` |
//! | `select` | `Select`, `Phi`, `Guard` |
//! | `memory` | `Load`, `Store`, `ClassLoad`, `ClassStore` |
//! | `float` | the float operations: fewer rules, because a float rule may only produce what the operation gives at run time, to the bit |
//!
//! What an operation computes on constants is defined once, in
//! [`crate::eval`] (integers) and [`crate::float`] (floats), and shared
//! with the interpreter. Rules are tested beside them and in the LIR file
//! tests (`vssa/tests/lir/`).
//!
//! Rules that need a helper node build it with `mk`, which asks the rules
//! again under a small depth budget: rules never call [`Graph::build`], so
//! the recursion depth is bounded by [`MAX_DEPTH`] whatever the graph looks
//! like. Walks along memory chains are loops bounded by [`MAX_CHAIN_WALK`].
//!
//! # Memory rules and the linear-memory contract
//!
//! Loads and stores on the same base node at disjoint byte ranges commute,
//! so a load may skip such stores, read a forwarded value, and a store may
//! make an earlier store to the same place dead. Different base nodes may
//! alias, so a walk stops at them, as it stops at phis, calls and `Start`,
//! unless the two accesses' alias classes say they never alias
//! ([`crate::alias::classes_may_alias`]): then a walk steps over the store
//! whatever its base.
//!
//! Dropping an overwritten store is only sound when no one else observes
//! the memory states between it and the overwriting store. The rules check
//! this with [`crate::Node::use_count`], which never under-counts. A
//! front-end must therefore treat memory states linearly: after building a
//! store on state `m`, it must not build new users of an earlier state of
//! that chain on a path that runs after the store (using `m` on another
//! control path is fine, and is what a branch does).
//!
//! A load may end up reading an earlier memory state than the last store of
//! its block (the stores it skipped write other bytes of the same base). The
//! scheduler orders such a load before later stores that may alias it.

use crate::graph::{Graph, GraphError, NodeId};
use crate::op::Op;
use crate::types::Type;

mod arith;
mod compare;
mod float;
mod memory;
mod select;

use arith::{bin, ptr_add, un};
use compare::{cmp, conv};
use memory::{load, store};
use select::{guard_passes, phi_same_value, select};

type R = Result<Option<NodeId>, GraphError>;

/// How deep rules may nest when one builds a helper node that is simplified
/// in turn. Every nested call is a strictly smaller rewrite, so a few levels
/// suffice; the bound is what guarantees a small, fixed stack.
pub const MAX_DEPTH: u32 = 8;

/// How many links of a memory chain a rule looks back over. Keeps a long
/// straight run of stores (e.g. Brainfuck `+>+>+>...`) linear instead of
/// quadratic; past the bound a rule simply stops early, which is always sound.
pub const MAX_CHAIN_WALK: usize = 128;

/// Returns an existing or new node equivalent to `op(inputs)` of type `ty`,
/// or `None` when no rule applies. Inputs must be resolved. Called by
/// [`Graph::build`] before interning.
pub fn simplify(g: &mut Graph, op: Op, ty: Type, inputs: &[NodeId]) -> R {
    if let Some(&bad) = inputs.iter().find(|i| g.get(**i).is_none()) {
        return Err(GraphError::UnknownNode(bad));
    }
    simplify_at(g, op, ty, inputs, None, 0)
}

/// [`simplify`] of inputs known to be this graph's and resolved
/// ([`Graph::build`] checked them as it resolved them).
pub(crate) fn simplify_resolved(g: &mut Graph, op: Op, ty: Type, inputs: &[NodeId]) -> R {
    simplify_at(g, op, ty, inputs, None, 0)
}

/// Simplifies an existing node (the worklist pass's entry point): the rules
/// see its resolved inputs, including a loop phi's back edge, and know the
/// node itself, which lets a phi see through itself and lets the memory rules
/// discount the node's own use of its memory input. Returns a resolved node
/// different from `node`, or `None`.
pub fn simplify_node(g: &mut Graph, node: NodeId) -> R {
    if g.get(node).is_none() {
        return Err(GraphError::UnknownNode(node));
    }
    let op = g.op(node);
    let ty = g.ty(node);
    let inputs = g.inputs(node);
    let found = simplify_at(g, op, ty, &inputs, Some(node), 0)?;
    Ok(found.filter(|&n| n != node))
}

/// [`simplify_node`] given `node`'s resolved inputs (the optimizer has
/// them already).
pub(crate) fn simplify_node_with(g: &mut Graph, node: NodeId, inputs: &[NodeId]) -> R {
    let op = g.op(node);
    let ty = g.ty(node);
    let found = simplify_at(g, op, ty, inputs, Some(node), 0)?;
    Ok(found.filter(|&n| n != node))
}

/// Dispatches to the rules of `op`. `this` is the node being re-simplified
/// by the pass (`None` at build time). The answer is resolved and always has
/// type `ty`: a rule that would change the type is ignored.
fn simplify_at(
    g: &mut Graph,
    op: Op,
    ty: Type,
    inputs: &[NodeId],
    this: Option<NodeId>,
    depth: u32,
) -> R {
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    let found = match op {
        Op::Bin(b) => bin(g, b, ty, inputs, depth)?,
        Op::Un(u) => un(g, u, ty, inputs)?,
        Op::Cmp(c) => cmp(g, c, ty, inputs, depth)?,
        Op::Conv(c) => conv(g, c, ty, inputs, depth)?,
        Op::Select => select(g, ty, inputs)?,
        Op::PtrAdd => ptr_add(g, ty, inputs, depth)?,
        Op::Phi { .. } => phi_same_value(g, op, ty, inputs, this),
        Op::Load { .. } | Op::ClassLoad { .. } => load(g, op, ty, inputs, depth)?,
        Op::Store { .. } | Op::ClassStore { .. } => store(g, op, ty, inputs, this, depth)?,
        Op::Guard { .. } => guard_passes(g, inputs),
        Op::FBin(b) => float::fbin(g, b, ty, inputs)?,
        Op::FUn(u) => float::fun(g, u, ty, inputs)?,
        Op::FCmp(c) => float::fcmp(g, c, ty, inputs)?,
        Op::FConv(c) => float::fconv(g, c, ty, inputs)?,
        Op::FFits { op, bits } => float::ffits(g, op, bits, ty, inputs)?,
        _ => None,
    };
    Ok(found.map(|n| g.resolve(n)).filter(|&n| g.ty(n) == ty))
}

/// Builds a helper node: asks the rules first (one level deeper), interns
/// otherwise.
fn mk(
    g: &mut Graph,
    depth: u32,
    op: Op,
    ty: Type,
    inputs: &[NodeId],
) -> Result<NodeId, GraphError> {
    let n = match simplify_at(g, op, ty, inputs, None, depth + 1)? {
        Some(n) => n,
        None => g.intern(op, ty, inputs)?,
    };
    // An intern hit may be a node that a pass has replaced since.
    Ok(g.resolve(n))
}

fn mk_const(g: &mut Graph, ty: Type, value: i64) -> Result<NodeId, GraphError> {
    g.intern(Op::Const { value }, ty, &[])
}

/// The value of a constant node (normalized to its type).
#[inline]
fn konst(g: &Graph, n: NodeId) -> Option<i64> {
    match g.op(n) {
        Op::Const { value } => Some(g.ty(n).normalize(value)),
        _ => None,
    }
}

/// The resolved inputs of `n` when it is `op` with exactly `N` inputs.
#[inline]
fn parts<const N: usize>(g: &Graph, n: NodeId, op: Op) -> Option<[NodeId; N]> {
    let found = g.op(n);
    // The kind first: most asks are of another kind, and comparing two
    // whole operations is a call.
    if std::mem::discriminant(&found) != std::mem::discriminant(&op)
        || found != op
        || g.arity(n) != N
    {
        return None;
    }
    let mut out = [n; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = g.input(n, i);
    }
    Some(out)
}

/// What the rule modules' tests share: a graph with parameters of the
/// usual types, and short ways to make constants and check them.
#[cfg(test)]
mod testing {
    pub(super) use crate::build::Entry;
    pub(super) use crate::graph::{Graph, NodeId};
    use crate::op::BinOp;
    pub(super) use crate::op::Op;
    pub(super) use crate::types::Type;

    pub(super) struct T {
        pub(super) g: Graph,
        pub(super) e: Entry,
        /// `I8` parameters.
        pub(super) x: NodeId,
        pub(super) y: NodeId,
        /// An `I64` parameter.
        pub(super) p: NodeId,
        /// `Ptr` parameters.
        pub(super) tape: NodeId,
        pub(super) other: NodeId,
    }

    pub(super) fn setup() -> T {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I8).unwrap();
        let y = g.param(e.start, 1, Type::I8).unwrap();
        let p = g.param(e.start, 2, Type::I64).unwrap();
        let tape = g.param(e.start, 3, Type::Ptr).unwrap();
        let other = g.param(e.start, 4, Type::Ptr).unwrap();
        T {
            g,
            e,
            x,
            y,
            p,
            tape,
            other,
        }
    }

    pub(super) fn c(g: &mut Graph, ty: Type, v: i64) -> NodeId {
        g.iconst(ty, v).unwrap()
    }

    pub(super) fn is_const(g: &Graph, n: NodeId, ty: Type, v: i64) -> bool {
        g.ty(n) == ty && g.op(g.resolve(n)) == Op::Const { value: v }
    }

    pub(super) fn bin(g: &mut Graph, op: BinOp, a: NodeId, b: NodeId) -> NodeId {
        g.bin(op, a, b).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::op::{BinOp, ConvOp, UnOp};

    #[test]
    fn malformed_requests_are_left_alone_not_panics() {
        let mut t = setup();
        let g = &mut t.g;
        let k = c(g, Type::I16, 1);
        assert_eq!(
            simplify(g, Op::Bin(BinOp::Add), Type::I8, &[t.x, k]).unwrap(),
            None
        );
        assert_eq!(
            simplify(g, Op::Bin(BinOp::Add), Type::I8, &[t.x]).unwrap(),
            None
        );
        assert_eq!(
            simplify(g, Op::Load { offset: 0 }, Type::I8, &[t.x, t.x, t.x]).unwrap(),
            None
        );
        assert_eq!(
            simplify(g, Op::Conv(ConvOp::Uext), Type::I8, &[k]).unwrap(),
            None
        );
        assert_eq!(
            simplify(g, Op::Phi { key: 0 }, Type::I8, &[]).unwrap(),
            None
        );
        let bad = NodeId::from_index(99_999);
        assert_eq!(
            simplify(g, Op::Un(UnOp::Neg), Type::I8, &[bad]),
            Err(GraphError::UnknownNode(bad))
        );
    }

    #[test]
    fn simplify_on_build_can_be_turned_off() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let a = g.iconst(Type::I8, 2).unwrap();
        let s = g.add(a, a).unwrap();
        assert_eq!(g.op(s), Op::Bin(BinOp::Add));
    }
}
