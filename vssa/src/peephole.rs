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
//! The rules of the float operations are in the `float` submodule
//! (`peephole/float.rs`): fewer, because a float rule may only produce
//! what the operation gives at run time, to the bit.
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
//! alias, so a walk stops at them, as it stops at phis, calls and `Start`.
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
use crate::op::{BinOp, CmpOp, ConvOp, Op, UnOp};
use crate::types::Type;

mod float;

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
        Op::Load { offset } => load(g, offset, ty, inputs, depth)?,
        Op::Store { offset } => store(g, offset, ty, inputs, this, depth)?,
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
fn konst(g: &Graph, n: NodeId) -> Option<i64> {
    match g.op(n) {
        Op::Const { value } => Some(g.ty(n).normalize(value)),
        _ => None,
    }
}

/// The resolved inputs of `n` when it is `op` with exactly `N` inputs.
fn parts<const N: usize>(g: &Graph, n: NodeId, op: Op) -> Option<[NodeId; N]> {
    if g.op(n) != op || g.arity(n) != N {
        return None;
    }
    let mut out = [n; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = g.input(n, i);
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Reference semantics of the pure operations (also used for folding).
// ---------------------------------------------------------------------------

fn width(ty: Type) -> u32 {
    ty.bits().unwrap_or(64)
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// `a op b` at type `ty`, wrapping; shift amounts are taken modulo the
/// width and `Ushr` shifts the unsigned `ty`-wide value; division and
/// remainder by 0 give 0 and the dividend, `MIN / -1` gives `MIN` (see
/// [`BinOp`]). The result is normalized (sign-extended from the width).
pub fn eval_bin(op: BinOp, ty: Type, a: i64, b: i64) -> i64 {
    let bits = width(ty);
    let (a, b) = (ty.normalize(a), ty.normalize(b));
    let sh = ((b as u64) & u64::from(bits - 1)) as u32;
    let (ua, ub) = (a as u64 & mask(bits), b as u64 & mask(bits));
    let r = match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Shl => a.wrapping_shl(sh),
        BinOp::Ushr => ((a as u64 & mask(bits)) >> sh) as i64,
        BinOp::Sshr => a >> sh,
        // `a` and `b` are sign-extended, so at a narrow width `MIN / -1`
        // is a positive i64 that normalizing wraps back to `MIN`.
        BinOp::Sdiv if b == 0 => 0,
        BinOp::Sdiv => a.wrapping_div(b),
        BinOp::Srem if b == 0 => a,
        BinOp::Srem => a.wrapping_rem(b),
        BinOp::Udiv if ub == 0 => 0,
        BinOp::Udiv => (ua / ub) as i64,
        BinOp::Urem if ub == 0 => a,
        BinOp::Urem => (ua % ub) as i64,
    };
    ty.normalize(r)
}

/// `op a` at type `ty`, wrapping, normalized.
pub fn eval_un(op: UnOp, ty: Type, a: i64) -> i64 {
    let a = ty.normalize(a);
    ty.normalize(match op {
        UnOp::Neg => a.wrapping_neg(),
        UnOp::Not => !a,
    })
}

/// `a op b` for operands of type `ty` (signed or unsigned per `op`).
pub fn eval_cmp(op: CmpOp, ty: Type, a: i64, b: i64) -> bool {
    let m = mask(width(ty));
    let (sa, sb) = (ty.normalize(a), ty.normalize(b));
    let (ua, ub) = (sa as u64 & m, sb as u64 & m);
    match op {
        CmpOp::Eq => sa == sb,
        CmpOp::Ne => sa != sb,
        CmpOp::Slt => sa < sb,
        CmpOp::Sle => sa <= sb,
        CmpOp::Sgt => sa > sb,
        CmpOp::Sge => sa >= sb,
        CmpOp::Ult => ua < ub,
        CmpOp::Ule => ua <= ub,
        CmpOp::Ugt => ua > ub,
        CmpOp::Uge => ua >= ub,
    }
}

/// Converts `a` of type `from` to type `to`, normalized.
pub fn eval_conv(op: ConvOp, from: Type, to: Type, a: i64) -> i64 {
    let a = from.normalize(a);
    to.normalize(match op {
        ConvOp::Uext => (a as u64 & mask(width(from))) as i64,
        ConvOp::Sext | ConvOp::Trunc => a,
    })
}

/// The comparison with its operands swapped: `a op b == b (mirror op) a`.
pub fn mirror(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Eq,
        CmpOp::Ne => CmpOp::Ne,
        CmpOp::Slt => CmpOp::Sgt,
        CmpOp::Sle => CmpOp::Sge,
        CmpOp::Sgt => CmpOp::Slt,
        CmpOp::Sge => CmpOp::Sle,
        CmpOp::Ult => CmpOp::Ugt,
        CmpOp::Ule => CmpOp::Uge,
        CmpOp::Ugt => CmpOp::Ult,
        CmpOp::Uge => CmpOp::Ule,
    }
}

fn is_commutative(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Mul | BinOp::And | BinOp::Or | BinOp::Xor
    )
}

// ---------------------------------------------------------------------------
// Integer arithmetic.
// ---------------------------------------------------------------------------

/// Rules of `Bin`, in order: fold, canonical order, identities, same
/// operands, `x - c`, reassociation.
fn bin(g: &mut Graph, op: BinOp, ty: Type, inputs: &[NodeId], depth: u32) -> R {
    let &[a, b] = inputs else { return Ok(None) };
    if !ty.is_int_or_ptr() || g.ty(a) != ty || g.ty(b) != ty {
        return Ok(None);
    }
    if let Some(n) = fold_bin(g, op, ty, a, b)? {
        return Ok(Some(n));
    }
    let (a, b, swapped) = order_operands(g, op, a, b);
    if let Some(n) = bin_identity(g, op, ty, a, b, depth)? {
        return Ok(Some(n));
    }
    if let Some(n) = div_identity(g, op, ty, a, b, depth)? {
        return Ok(Some(n));
    }
    if let Some(n) = same_operands(g, op, ty, a, b)? {
        return Ok(Some(n));
    }
    if let Some(n) = sub_const_to_add(g, op, ty, a, b, depth)? {
        return Ok(Some(n));
    }
    if let Some(n) = reassociate(g, op, ty, a, b, depth)? {
        return Ok(Some(n));
    }
    if swapped {
        return Ok(Some(g.intern(Op::Bin(op), ty, &[a, b])?));
    }
    Ok(None)
}

/// Rule `fold_bin`: `c1 op c2` is a constant (wrapping, see [`eval_bin`]).
fn fold_bin(g: &mut Graph, op: BinOp, ty: Type, a: NodeId, b: NodeId) -> R {
    match (konst(g, a), konst(g, b)) {
        (Some(x), Some(y)) => Ok(Some(mk_const(g, ty, eval_bin(op, ty, x, y))?)),
        _ => Ok(None),
    }
}

/// Rule `order_operands`: a commutative op keeps a constant on the right,
/// and two non-constants in address order, so `a+b` and `b+a` are one node.
/// Addresses are stable, so the order is the same in every process.
fn order_operands(g: &Graph, op: BinOp, a: NodeId, b: NodeId) -> (NodeId, NodeId, bool) {
    if !is_commutative(op) {
        return (a, b, false);
    }
    let swap = match (konst(g, a).is_some(), konst(g, b).is_some()) {
        (true, false) => true,
        (false, false) => g.addr(a) > g.addr(b),
        _ => false,
    };
    if swap {
        (b, a, true)
    } else {
        (a, b, false)
    }
}

/// Rule `bin_identity`: operations with a neutral or absorbing constant
/// (`x+0`, `x-0`, `x*1`, `x*0`, `x*-1`, `x&0`, `x&-1`, `x|0`, `x|-1`, `x^0`,
/// `x^-1`, `0-x`, shifts by a multiple of the width, shifts of 0).
fn bin_identity(g: &mut Graph, op: BinOp, ty: Type, a: NodeId, b: NodeId, depth: u32) -> R {
    let bits = i64::from(width(ty));
    if let Some(c) = konst(g, b) {
        let r = match (op, c) {
            (BinOp::Add | BinOp::Sub | BinOp::Or | BinOp::Xor, 0) => Some(a),
            (BinOp::Mul, 1) | (BinOp::And, -1) => Some(a),
            (BinOp::Mul | BinOp::And, 0) => Some(mk_const(g, ty, 0)?),
            (BinOp::Or, -1) => Some(mk_const(g, ty, -1)?),
            (BinOp::Mul, -1) => Some(mk(g, depth, Op::Un(UnOp::Neg), ty, &[a])?),
            (BinOp::Xor, -1) => Some(mk(g, depth, Op::Un(UnOp::Not), ty, &[a])?),
            (BinOp::Shl | BinOp::Ushr | BinOp::Sshr, c) if c.rem_euclid(bits) == 0 => Some(a),
            _ => None,
        };
        if r.is_some() {
            return Ok(r);
        }
    }
    if let Some(c) = konst(g, a) {
        let r = match (op, c) {
            (BinOp::Sub, 0) => Some(mk(g, depth, Op::Un(UnOp::Neg), ty, &[b])?),
            (BinOp::Shl | BinOp::Ushr | BinOp::Sshr, 0) | (BinOp::Sshr, -1) => Some(a),
            _ => None,
        };
        return Ok(r);
    }
    Ok(None)
}

/// Rule `div_identity`: division and remainder by a constant with a known
/// answer (the defined results of [`BinOp`]): `x/1 = x`, `x%1 = 0`,
/// `x/0 = 0`, `x%0 = x`, `x sdiv -1 = -x`, `x srem -1 = 0`, and unsigned
/// division and remainder by a power of two become a shift and a mask.
fn div_identity(g: &mut Graph, op: BinOp, ty: Type, a: NodeId, b: NodeId, depth: u32) -> R {
    if !matches!(op, BinOp::Sdiv | BinOp::Udiv | BinOp::Srem | BinOp::Urem) {
        return Ok(None);
    }
    let Some(c) = konst(g, b) else {
        return Ok(None);
    };
    let unsigned = (c as u64) & mask(width(ty));
    let r = match (op, c) {
        (BinOp::Sdiv | BinOp::Udiv, 1) | (BinOp::Srem | BinOp::Urem, 0) => a,
        (BinOp::Srem | BinOp::Urem, 1) | (BinOp::Sdiv | BinOp::Udiv, 0) => mk_const(g, ty, 0)?,
        (BinOp::Srem, -1) => mk_const(g, ty, 0)?,
        (BinOp::Sdiv, -1) => mk(g, depth, Op::Un(UnOp::Neg), ty, &[a])?,
        (BinOp::Udiv, _) if unsigned.is_power_of_two() => {
            let sh = mk_const(g, ty, i64::from(unsigned.trailing_zeros()))?;
            mk(g, depth, Op::Bin(BinOp::Ushr), ty, &[a, sh])?
        }
        (BinOp::Urem, _) if unsigned.is_power_of_two() => {
            let m = mk_const(g, ty, (unsigned - 1) as i64)?;
            mk(g, depth, Op::Bin(BinOp::And), ty, &[a, m])?
        }
        _ => return Ok(None),
    };
    Ok(Some(r))
}

/// Rule `same_operands`: `x-x = 0`, `x^x = 0`, `x&x = x`, `x|x = x`.
fn same_operands(g: &mut Graph, op: BinOp, ty: Type, a: NodeId, b: NodeId) -> R {
    if a != b {
        return Ok(None);
    }
    match op {
        BinOp::Sub | BinOp::Xor => Ok(Some(mk_const(g, ty, 0)?)),
        BinOp::And | BinOp::Or => Ok(Some(a)),
        _ => Ok(None),
    }
}

/// Rule `sub_const_to_add`: `x - c -> x + (-c)`, so that only additions of
/// constants need to be reassociated and folded into addresses.
fn sub_const_to_add(g: &mut Graph, op: BinOp, ty: Type, a: NodeId, b: NodeId, depth: u32) -> R {
    match (op, konst(g, b)) {
        (BinOp::Sub, Some(c)) => {
            let neg = mk_const(g, ty, c.wrapping_neg())?;
            Ok(Some(mk(g, depth, Op::Bin(BinOp::Add), ty, &[a, neg])?))
        }
        _ => Ok(None),
    }
}

/// Rule `reassociate`: `(x op c1) op c2 -> x op (c1 op c2)` for the
/// associative, commutative ops (`+ * & | ^`). Brainfuck's `>>><` becomes
/// one `p + 2`.
fn reassociate(g: &mut Graph, op: BinOp, ty: Type, a: NodeId, b: NodeId, depth: u32) -> R {
    if !is_commutative(op) {
        return Ok(None);
    }
    let Some(c2) = konst(g, b) else {
        return Ok(None);
    };
    let Some([x, c1]) = parts::<2>(g, a, Op::Bin(op)) else {
        return Ok(None);
    };
    let Some(c1) = konst(g, c1) else {
        return Ok(None);
    };
    if g.ty(x) != ty {
        return Ok(None);
    }
    let c = mk_const(g, ty, eval_bin(op, ty, c1, c2))?;
    Ok(Some(mk(g, depth, Op::Bin(op), ty, &[x, c])?))
}

/// Rules of `Un`: `fold_un` (constant) and `double_un` (`-(-x) = x`,
/// `!(!x) = x`).
fn un(g: &mut Graph, op: UnOp, ty: Type, inputs: &[NodeId]) -> R {
    let &[a] = inputs else { return Ok(None) };
    if !ty.is_int_or_ptr() || g.ty(a) != ty {
        return Ok(None);
    }
    if let Some(x) = konst(g, a) {
        return Ok(Some(mk_const(g, ty, eval_un(op, ty, x))?));
    }
    Ok(parts::<1>(g, a, Op::Un(op)).map(|[x]| x))
}

// ---------------------------------------------------------------------------
// Comparisons, conversions, selects.
// ---------------------------------------------------------------------------

/// Rules of `Cmp`: fold, same operands, canonical order (mirroring the
/// predicate), and a comparison of a select of constants with a constant.
fn cmp(g: &mut Graph, op: CmpOp, ty: Type, inputs: &[NodeId], depth: u32) -> R {
    let &[a, b] = inputs else { return Ok(None) };
    let t = g.ty(a);
    if ty != Type::I8 || !t.is_int_or_ptr() || g.ty(b) != t {
        return Ok(None);
    }
    // Rule `fold_cmp`.
    if let (Some(x), Some(y)) = (konst(g, a), konst(g, b)) {
        return Ok(Some(mk_const(g, ty, i64::from(eval_cmp(op, t, x, y)))?));
    }
    // Rule `cmp_same_operands`: `x op x` is known for every predicate.
    if a == b {
        return Ok(Some(mk_const(g, ty, i64::from(eval_cmp(op, t, 0, 0)))?));
    }
    // Rule `cmp_order`: constant right, else address order; predicate mirrored.
    let swap = match (konst(g, a).is_some(), konst(g, b).is_some()) {
        (true, false) => true,
        (false, false) => g.addr(a) > g.addr(b),
        _ => false,
    };
    let (op, a, b) = if swap { (mirror(op), b, a) } else { (op, a, b) };
    if let Some(n) = cmp_of_const_select(g, op, a, b, depth)? {
        return Ok(Some(n));
    }
    if swap {
        return Ok(Some(g.intern(Op::Cmp(op), ty, &[a, b])?));
    }
    Ok(None)
}

/// Rule `cmp_of_const_select`: `select(c, k1, k2) op k3 ->
/// select(c, k1 op k3, k2 op k3)`, which folds to a constant when both
/// arms agree (a test of a value known up to a branch).
fn cmp_of_const_select(g: &mut Graph, op: CmpOp, a: NodeId, b: NodeId, depth: u32) -> R {
    let Some(k3) = konst(g, b) else {
        return Ok(None);
    };
    let Some([c, x, y]) = parts::<3>(g, a, Op::Select) else {
        return Ok(None);
    };
    let (Some(k1), Some(k2)) = (konst(g, x), konst(g, y)) else {
        return Ok(None);
    };
    let t = g.ty(a);
    let r1 = mk_const(g, Type::I8, i64::from(eval_cmp(op, t, k1, k3)))?;
    let r2 = mk_const(g, Type::I8, i64::from(eval_cmp(op, t, k2, k3)))?;
    Ok(Some(mk(g, depth, Op::Select, Type::I8, &[c, r1, r2])?))
}

/// Rules of `Conv`: fold a constant, and collapse two conversions.
fn conv(g: &mut Graph, op: ConvOp, ty: Type, inputs: &[NodeId], depth: u32) -> R {
    let &[a] = inputs else { return Ok(None) };
    let from = g.ty(a);
    if !conv_widths_ok(op, from, ty) {
        return Ok(None);
    }
    // Rule `fold_conv`.
    if let Some(x) = konst(g, a) {
        return Ok(Some(mk_const(g, ty, eval_conv(op, from, ty, x))?));
    }
    conv_of_conv(g, op, ty, a, depth)
}

/// Extensions widen, truncations narrow, and only integer and pointer types
/// convert (floats have [`crate::FConvOp`]).
pub fn conv_widths_ok(op: ConvOp, from: Type, to: Type) -> bool {
    if from.is_float() || to.is_float() {
        return false;
    }
    let (Some(f), Some(t)) = (from.bits(), to.bits()) else {
        return false;
    };
    match op {
        ConvOp::Uext | ConvOp::Sext => t > f,
        ConvOp::Trunc => t < f,
    }
}

/// Rule `conv_of_conv`: `trunc(ext(x))` is `x` at `x`'s own width, a
/// narrower `trunc(x)` or a shorter `ext(x)`; `uext(uext(x)) = uext(x)`,
/// `sext(sext(x)) = sext(x)`, `trunc(trunc(x)) = trunc(x)`.
fn conv_of_conv(g: &mut Graph, op: ConvOp, ty: Type, a: NodeId, depth: u32) -> R {
    let Op::Conv(inner) = g.op(a) else {
        return Ok(None);
    };
    let Some([x]) = parts::<1>(g, a, Op::Conv(inner)) else {
        return Ok(None);
    };
    let tx = g.ty(x);
    let (Some(bx), Some(bt)) = (tx.bits(), ty.bits()) else {
        return Ok(None);
    };
    if !conv_widths_ok(inner, tx, g.ty(a)) {
        return Ok(None);
    }
    let rebuilt = match (op, inner) {
        (ConvOp::Trunc, ConvOp::Uext | ConvOp::Sext) => {
            if ty == tx {
                return Ok(Some(x));
            } else if bt < bx {
                (ConvOp::Trunc, x)
            } else if bt > bx {
                (inner, x)
            } else {
                return Ok(None);
            }
        }
        (ConvOp::Uext, ConvOp::Uext)
        | (ConvOp::Sext, ConvOp::Sext)
        | (ConvOp::Trunc, ConvOp::Trunc) => (op, x),
        _ => return Ok(None),
    };
    if !conv_widths_ok(rebuilt.0, tx, ty) {
        return Ok(None);
    }
    Ok(Some(mk(g, depth, Op::Conv(rebuilt.0), ty, &[rebuilt.1])?))
}

/// Rules of `Select`: `select_const_cond` picks an arm, `select_same_arms`
/// (`c ? x : x = x`), and `select_of_bool` (`cmp ? 1 : 0 = cmp`, for every
/// comparison or test that gives 0 or 1). Arms of any value type: a select
/// moves bits, so float arms are no different.
fn select(g: &mut Graph, ty: Type, inputs: &[NodeId]) -> R {
    let &[c, a, b] = inputs else { return Ok(None) };
    if !ty.is_value() || !g.ty(c).is_int() || g.ty(a) != ty || g.ty(b) != ty {
        return Ok(None);
    }
    if let Some(k) = konst(g, c) {
        return Ok(Some(if k != 0 { a } else { b }));
    }
    if a == b {
        return Ok(Some(a));
    }
    if ty == Type::I8
        && matches!(g.op(c), Op::Cmp(_) | Op::FCmp(_) | Op::FFits { .. })
        && konst(g, a) == Some(1)
        && konst(g, b) == Some(0)
    {
        return Ok(Some(c));
    }
    Ok(None)
}

/// Rules of `PtrAdd`: `fold_ptr_add` (constants), `ptr_add_zero`
/// (`p + 0 = p`) and `ptr_add_chain` (`(p + c1) + c2 = p + (c1 + c2)`).
fn ptr_add(g: &mut Graph, ty: Type, inputs: &[NodeId], depth: u32) -> R {
    let &[p, d] = inputs else { return Ok(None) };
    if ty != Type::Ptr || g.ty(p) != Type::Ptr || g.ty(d) != Type::I64 {
        return Ok(None);
    }
    let Some(c2) = konst(g, d) else {
        return Ok(None);
    };
    if let Some(base) = konst(g, p) {
        return Ok(Some(mk_const(g, ty, base.wrapping_add(c2))?));
    }
    if c2 == 0 {
        return Ok(Some(p));
    }
    if let Some([q, c1]) = parts::<2>(g, p, Op::PtrAdd) {
        if let Some(c1) = konst(g, c1) {
            if g.ty(q) == Type::Ptr {
                let c = mk_const(g, Type::I64, c1.wrapping_add(c2))?;
                return Ok(Some(mk(g, depth, Op::PtrAdd, ty, &[q, c])?));
            }
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Guards.
// ---------------------------------------------------------------------------

/// Rule `guard_passes`: a guard whose condition is a nonzero constant never
/// fails, so it is its control input. (A guard on a zero constant always
/// fails; it stays, and deoptimizes every time it is reached.)
fn guard_passes(g: &Graph, inputs: &[NodeId]) -> Option<NodeId> {
    let &[ctrl, cond, _frame] = inputs else {
        return None;
    };
    (konst(g, cond)? != 0).then_some(ctrl)
}

// ---------------------------------------------------------------------------
// Phis.
// ---------------------------------------------------------------------------

/// Rule `phi_same_value`: a phi whose values are all one node `v` (or the
/// phi itself, around a loop) is `v`. A loop phi is only judged with its
/// back edge: at build time it has none yet and is left alone.
fn phi_same_value(
    g: &Graph,
    op: Op,
    ty: Type,
    inputs: &[NodeId],
    this: Option<NodeId>,
) -> Option<NodeId> {
    let (&region, values) = inputs.split_first()?;
    let me = match g.op(region) {
        Op::Region => this,
        Op::Loop { .. } => {
            if values.len() != 2 {
                return None;
            }
            // Without `this` (a direct call), find the phi by its hashed part.
            this.or_else(|| g.lookup(&g.address_of(&op, ty, &inputs[..2])))
        }
        _ => return None,
    };
    let mut found: Option<NodeId> = None;
    for &v in values {
        if Some(v) == me {
            continue;
        }
        match found {
            None => found = Some(v),
            Some(f) if f == v => {}
            Some(_) => return None,
        }
    }
    found
}

// ---------------------------------------------------------------------------
// Memory.
// ---------------------------------------------------------------------------

/// A store's resolved parts and byte range `[offset, offset + width)`.
struct StoreParts {
    ctrl: NodeId,
    mem: NodeId,
    base: NodeId,
    value: NodeId,
    offset: i64,
    width: i64,
}

fn store_parts(g: &Graph, n: NodeId) -> Option<StoreParts> {
    let Op::Store { offset } = g.op(n) else {
        return None;
    };
    if g.arity(n) != 4 {
        return None;
    }
    let value = g.input(n, 3);
    Some(StoreParts {
        ctrl: g.input(n, 0),
        mem: g.input(n, 1),
        base: g.input(n, 2),
        value,
        offset: i64::from(offset),
        width: i64::from(g.ty(value).bytes()?),
    })
}

fn disjoint(o1: i64, w1: i64, o2: i64, w2: i64) -> bool {
    o1 + w1 <= o2 || o2 + w2 <= o1
}

/// Rule `fold_address`: moves constant displacements of the address into the
/// access's offset: `[PtrAdd(b, c)] + off -> [b] + (off + c)` and
/// `[PtrAdd(b, x + c)] + off -> [PtrAdd(b, x)] + (off + c)`. Accesses to
/// cells `p`, `p+1`, `p-3` then share one base node `PtrAdd(tape, p)`, which
/// is what lets the other memory rules compare them. Stops when the offset
/// would leave `i32`.
fn fold_address(
    g: &mut Graph,
    base: NodeId,
    offset: i32,
    depth: u32,
) -> Result<(NodeId, i32), GraphError> {
    let (mut base, mut offset) = (base, offset);
    for _ in 0..MAX_CHAIN_WALK {
        let Some([p, d]) = parts::<2>(g, base, Op::PtrAdd) else {
            break;
        };
        if g.ty(p) != Type::Ptr || g.ty(d) != Type::I64 {
            break;
        }
        if let Some(c) = konst(g, d) {
            let Some(o) = add_offset(offset, c) else {
                break;
            };
            (base, offset) = (p, o);
            continue;
        }
        let Some([x, c]) = parts::<2>(g, d, Op::Bin(BinOp::Add)) else {
            break;
        };
        let Some(c) = konst(g, c) else { break };
        let Some(o) = add_offset(offset, c) else {
            break;
        };
        base = mk(g, depth, Op::PtrAdd, Type::Ptr, &[p, x])?;
        offset = o;
    }
    Ok((base, offset))
}

fn add_offset(offset: i32, c: i64) -> Option<i32> {
    i64::from(offset)
        .checked_add(c)
        .and_then(|o| i32::try_from(o).ok())
}

/// Rules of `Load`: `fold_address`, then walk the memory chain:
/// `load_after_store` (a store of the same type to the same base and offset
/// gives its value) and `load_skips_disjoint_store` (a store to the same
/// base at a disjoint byte range is stepped over). The load keeps its own
/// control input.
fn load(g: &mut Graph, offset: i32, ty: Type, inputs: &[NodeId], depth: u32) -> R {
    let &[ctrl, mem, base] = inputs else {
        return Ok(None);
    };
    let Some(width) = ty.bytes() else {
        return Ok(None);
    };
    if g.ty(mem) != Type::Mem || g.ty(base) != Type::Ptr {
        return Ok(None);
    }
    let (b, off) = fold_address(g, base, offset, depth)?;
    let (o, w) = (i64::from(off), i64::from(width));
    let mut m = mem;
    for _ in 0..MAX_CHAIN_WALK {
        let Some(s) = store_parts(g, m) else { break };
        if s.base != b {
            break;
        }
        if s.offset == o && s.width == w && g.ty(s.value) == ty {
            return Ok(Some(s.value));
        }
        if !disjoint(s.offset, s.width, o, w) {
            break;
        }
        m = s.mem;
    }
    if (b, off, m) == (base, offset, mem) {
        return Ok(None);
    }
    Ok(Some(g.intern(
        Op::Load { offset: off },
        ty,
        &[ctrl, m, b],
    )?))
}

/// Rules of `Store`: `fold_address`, then repeatedly `store_of_loaded_value`
/// and `store_over_store` until neither applies (each step removes a store,
/// so this ends).
fn store(
    g: &mut Graph,
    offset: i32,
    ty: Type,
    inputs: &[NodeId],
    this: Option<NodeId>,
    depth: u32,
) -> R {
    let &[ctrl, mem, base, value] = inputs else {
        return Ok(None);
    };
    let Some(width) = g.ty(value).bytes() else {
        return Ok(None);
    };
    if ty != Type::Mem || g.ty(mem) != Type::Mem || g.ty(base) != Type::Ptr {
        return Ok(None);
    }
    let (b, off) = fold_address(g, base, offset, depth)?;
    let (o, w) = (i64::from(off), i64::from(width));
    // Uses that are no observers: they belong to nodes that are dead once the
    // answer stands in for the store. The pass's node uses its memory input,
    // and each dropped store uses its own.
    let mut dead_uses: Vec<NodeId> = this
        .filter(|&t| g.arity(t) == 4)
        .map(|t| g.input(t, 1))
        .into_iter()
        .collect();
    let mut m = mem;
    for _ in 0..MAX_CHAIN_WALK {
        if store_of_loaded_value(g, m, b, o, value) {
            return Ok(Some(m));
        }
        match store_over_store(g, ctrl, m, b, o, w, &dead_uses)? {
            Some((shorter, dropped_mem)) => {
                dead_uses.push(dropped_mem);
                m = shorter;
            }
            None => break,
        }
    }
    if (b, off, m) == (base, offset, mem) {
        return Ok(None);
    }
    Ok(Some(g.intern(
        Op::Store { offset: off },
        Type::Mem,
        &[ctrl, m, b, value],
    )?))
}

/// Rule `store_of_loaded_value`: writing back what a load read from the same
/// place is a no-op, when the load read memory state `m` or a state that `m`
/// reaches over stores to disjoint bytes of the same base.
fn store_of_loaded_value(g: &Graph, m: NodeId, base: NodeId, offset: i64, value: NodeId) -> bool {
    let Op::Load { offset: lo } = g.op(value) else {
        return false;
    };
    let Some([_, lm, lb]) = parts::<3>(g, value, Op::Load { offset: lo }) else {
        return false;
    };
    let Some(w) = g.ty(value).bytes().map(i64::from) else {
        return false;
    };
    if lb != base || i64::from(lo) != offset {
        return false;
    }
    let mut cur = m;
    for _ in 0..MAX_CHAIN_WALK {
        if cur == lm {
            return true;
        }
        let Some(s) = store_parts(g, cur) else {
            return false;
        };
        if s.base != base || !disjoint(s.offset, s.width, offset, w) {
            return false;
        }
        cur = s.mem;
    }
    false
}

/// Rule `store_over_store`: a new store at `[offset, offset + width)` of
/// `base` on top of `top` makes dead an earlier store `T` to the same base
/// whose bytes it covers, if between them there are only stores to the same
/// base at disjoint bytes and no one but the next link observes any of those
/// states. Observers are counted with [`crate::Node::use_count`]: a link may
/// have one use (the next link; none for `top`, whose next link is the store
/// being built) plus its occurrences in `dead_uses`, uses by nodes known to
/// die with the old chain. Returns the chain rebuilt without `T` (the stores
/// above `T`, in order, on `T`'s memory input) and `T`'s memory input.
///
/// Every store walked must be under the new store's control `ctrl` (the
/// same block): a front-end that threads memory linearly gives an older
/// state new users only across control (the other arm of a branch built
/// later), which use counts taken now cannot see.
fn store_over_store(
    g: &mut Graph,
    ctrl: NodeId,
    top: NodeId,
    base: NodeId,
    offset: i64,
    width: i64,
    dead_uses: &[NodeId],
) -> Result<Option<(NodeId, NodeId)>, GraphError> {
    let mut above: Vec<NodeId> = Vec::new();
    let mut cur = top;
    for _ in 0..MAX_CHAIN_WALK {
        let Some(s) = store_parts(g, cur) else {
            return Ok(None);
        };
        let dead = dead_uses.iter().filter(|&&d| d == cur).count();
        let allowed = u32::try_from(dead)
            .unwrap_or(u32::MAX)
            .saturating_add(u32::from(!above.is_empty()));
        // Only within the new store's block: a store under another control
        // may get more users later (the other side of a branch built after
        // this store), and dropping it from this chain would fork memory.
        if s.base != base || s.ctrl != g.resolve(ctrl) || g.node(cur).use_count() > allowed {
            return Ok(None);
        }
        if s.offset >= offset && s.offset + s.width <= offset + width {
            let mut m = s.mem;
            for &link in above.iter().rev() {
                let Some(l) = store_parts(g, link) else {
                    return Ok(None);
                };
                let Ok(lo) = i32::try_from(l.offset) else {
                    return Ok(None);
                };
                let link = g.intern(
                    Op::Store { offset: lo },
                    Type::Mem,
                    &[l.ctrl, m, l.base, l.value],
                )?;
                m = g.resolve(link);
            }
            return Ok(Some((m, s.mem)));
        }
        if !disjoint(s.offset, s.width, offset, width) {
            return Ok(None);
        }
        above.push(cur);
        cur = s.mem;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Entry;

    struct T {
        g: Graph,
        e: Entry,
        /// `I8` parameters.
        x: NodeId,
        y: NodeId,
        /// An `I64` parameter.
        p: NodeId,
        /// `Ptr` parameters.
        tape: NodeId,
        other: NodeId,
    }

    fn setup() -> T {
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

    fn c(g: &mut Graph, ty: Type, v: i64) -> NodeId {
        g.iconst(ty, v).unwrap()
    }

    fn is_const(g: &Graph, n: NodeId, ty: Type, v: i64) -> bool {
        g.ty(n) == ty && g.op(g.resolve(n)) == Op::Const { value: v }
    }

    fn bin(g: &mut Graph, op: BinOp, a: NodeId, b: NodeId) -> NodeId {
        g.bin(op, a, b).unwrap()
    }

    #[test]
    fn eval_wraps_to_width() {
        assert_eq!(eval_bin(BinOp::Add, Type::I8, 100, 100), -56);
        assert_eq!(
            eval_bin(BinOp::Mul, Type::I16, 300, 300),
            (90000i32 as i16) as i64
        );
        assert_eq!(eval_bin(BinOp::Shl, Type::I8, 1, 9), 2, "shift modulo 8");
        assert_eq!(
            eval_bin(BinOp::Shl, Type::I8, 1, -1),
            -128,
            "-1 is shift by 7"
        );
        assert_eq!(eval_bin(BinOp::Ushr, Type::I8, -1, 1), 127);
        assert_eq!(eval_bin(BinOp::Ushr, Type::I32, -8, 1), 0x7fff_fffc);
        assert_eq!(eval_bin(BinOp::Sshr, Type::I8, -128, 7), -1);
        assert_eq!(
            eval_bin(BinOp::Ushr, Type::I64, -1, 64),
            -1,
            "shift by 64 is by 0"
        );
        assert_eq!(eval_un(UnOp::Neg, Type::I8, -128), -128);
        assert_eq!(eval_un(UnOp::Not, Type::I16, 0), -1);
        assert!(eval_cmp(CmpOp::Ult, Type::I8, 1, -1));
        assert!(!eval_cmp(CmpOp::Slt, Type::I8, 1, -1));
        assert_eq!(eval_conv(ConvOp::Uext, Type::I8, Type::I32, -1), 255);
        assert_eq!(eval_conv(ConvOp::Sext, Type::I8, Type::I32, -1), -1);
        assert_eq!(eval_conv(ConvOp::Trunc, Type::I32, Type::I8, 0x1ff), -1);
    }

    #[test]
    fn fold_bin_makes_constants() {
        let mut t = setup();
        let g = &mut t.g;
        let a = c(g, Type::I8, 100);
        let s = bin(g, BinOp::Add, a, a);
        assert!(is_const(g, s, Type::I8, -56));
        let one = c(g, Type::I8, 1);
        let nine = c(g, Type::I8, 9);
        let sh = bin(g, BinOp::Shl, one, nine);
        assert!(is_const(g, sh, Type::I8, 2));
        let m1 = c(g, Type::I8, -1);
        let u = bin(g, BinOp::Ushr, m1, one);
        assert!(is_const(g, u, Type::I8, 127));
    }

    #[test]
    fn order_operands_puts_constants_right_and_sorts_by_address() {
        let mut t = setup();
        let g = &mut t.g;
        let k = c(g, Type::I8, 5);
        let a = bin(g, BinOp::Add, k, t.x);
        assert_eq!(g.inputs(a).as_slice(), &[t.x, k]);
        let b = bin(g, BinOp::Add, t.x, k);
        assert_eq!(a, b);
        let xy = bin(g, BinOp::Mul, t.x, t.y);
        let yx = bin(g, BinOp::Mul, t.y, t.x);
        assert_eq!(xy, yx);
        // Non-commutative ops keep their order.
        let s1 = bin(g, BinOp::Sub, t.x, t.y);
        let s2 = bin(g, BinOp::Sub, t.y, t.x);
        assert_ne!(s1, s2);
    }

    #[test]
    fn division_has_defined_results() {
        let (sdiv, udiv, srem, urem) = (BinOp::Sdiv, BinOp::Udiv, BinOp::Srem, BinOp::Urem);
        assert_eq!(eval_bin(sdiv, Type::I8, -7, 2), -3, "rounds towards zero");
        assert_eq!(eval_bin(srem, Type::I8, -7, 2), -1, "sign of the dividend");
        assert_eq!(eval_bin(udiv, Type::I8, -7, 2), 124, "249 / 2");
        assert_eq!(eval_bin(urem, Type::I8, -7, 2), 1);
        for ty in [Type::I8, Type::I16, Type::I32, Type::I64] {
            let min = ty.normalize(1i64 << (ty.bits().unwrap() - 1));
            assert_eq!(eval_bin(sdiv, ty, min, -1), min, "{ty}: MIN / -1");
            assert_eq!(eval_bin(srem, ty, min, -1), 0, "{ty}: MIN % -1");
            assert_eq!(eval_bin(sdiv, ty, 5, 0), 0, "{ty}: x / 0");
            assert_eq!(eval_bin(udiv, ty, 5, 0), 0, "{ty}: x u/ 0");
            assert_eq!(eval_bin(srem, ty, -5, 0), -5, "{ty}: x % 0");
            assert_eq!(eval_bin(urem, ty, -5, 0), -5, "{ty}: x u% 0");
            assert_eq!(eval_bin(udiv, ty, -1, -1), 1, "{ty}: MAX u/ MAX");
        }
        assert_eq!(eval_bin(udiv, Type::I64, -1, 2), i64::MAX);
    }

    #[test]
    fn div_identity_rules() {
        let mut t = setup();
        let g = &mut t.g;
        let x = t.x;
        let (zero, one, m1) = (c(g, Type::I8, 0), c(g, Type::I8, 1), c(g, Type::I8, -1));
        assert_eq!(bin(g, BinOp::Sdiv, x, one), x);
        assert_eq!(bin(g, BinOp::Udiv, x, one), x);
        assert_eq!(bin(g, BinOp::Srem, x, zero), x);
        assert_eq!(bin(g, BinOp::Urem, x, zero), x);
        for op in [BinOp::Sdiv, BinOp::Udiv] {
            let r = bin(g, op, x, zero);
            assert!(is_const(g, r, Type::I8, 0), "{op:?} by 0");
        }
        for op in [BinOp::Srem, BinOp::Urem] {
            let r = bin(g, op, x, one);
            assert!(is_const(g, r, Type::I8, 0), "{op:?} by 1");
        }
        let r = bin(g, BinOp::Srem, x, m1);
        assert!(is_const(g, r, Type::I8, 0));
        let r = bin(g, BinOp::Sdiv, x, m1);
        assert_eq!((g.op(r), g.input(r, 0)), (Op::Un(UnOp::Neg), x));
        let eight = c(g, Type::I8, 8);
        let r = bin(g, BinOp::Udiv, x, eight);
        assert_eq!(g.op(r), Op::Bin(BinOp::Ushr));
        assert!(is_const(g, g.input(r, 1), Type::I8, 3));
        let r = bin(g, BinOp::Urem, x, eight);
        assert_eq!(g.op(r), Op::Bin(BinOp::And));
        assert!(is_const(g, g.input(r, 1), Type::I8, 7));
        // -128 is 128 unsigned: a power of two.
        let min = c(g, Type::I8, -128);
        let r = bin(g, BinOp::Udiv, x, min);
        assert_eq!(g.op(r), Op::Bin(BinOp::Ushr));
        // Signed division by a power of two rounds differently from a shift.
        let r = bin(g, BinOp::Sdiv, x, eight);
        assert_eq!(g.op(r), Op::Bin(BinOp::Sdiv));
        // Not commutative: a constant dividend stays left.
        let r = bin(g, BinOp::Sdiv, eight, x);
        assert_eq!((g.input(r, 0), g.input(r, 1)), (eight, x));
        let k = c(g, Type::I8, -128);
        let r = bin(g, BinOp::Sdiv, k, m1);
        assert!(is_const(g, r, Type::I8, -128), "folds MIN / -1");
    }

    #[test]
    fn sub_of_constant_becomes_add() {
        let mut t = setup();
        let g = &mut t.g;
        let three = c(g, Type::I64, 3);
        let s = bin(g, BinOp::Sub, t.p, three);
        assert_eq!(g.op(s), Op::Bin(BinOp::Add));
        let k = g.input(s, 1);
        assert!(is_const(g, k, Type::I64, -3));
        let m3 = c(g, Type::I64, -3);
        assert_eq!(bin(g, BinOp::Add, t.p, m3), s);
    }

    #[test]
    fn ptr_add_rules() {
        let mut t = setup();
        let g = &mut t.g;
        let zero = c(g, Type::I64, 0);
        assert_eq!(g.ptr_add(t.tape, zero).unwrap(), t.tape);
        let (k1, k2) = (c(g, Type::I64, 8), c(g, Type::I64, -3));
        let a = g.ptr_add(t.tape, k1).unwrap();
        let b = g.ptr_add(a, k2).unwrap();
        let k5 = c(g, Type::I64, 5);
        assert_eq!(g.inputs(b).as_slice(), &[t.tape, k5]);
        let m8 = c(g, Type::I64, -8);
        assert_eq!(g.ptr_add(a, m8).unwrap(), t.tape);
        let base = c(g, Type::Ptr, 0x1000);
        let r = g.ptr_add(base, k1).unwrap();
        assert!(is_const(g, r, Type::Ptr, 0x1008));
    }

    #[test]
    fn phi_rules() {
        let mut t = setup();
        let g = &mut t.g;
        let (tc, fc) = g.branch(t.e.ctrl, t.x).unwrap();
        let r = g.region(&[tc, fc]).unwrap();
        assert_eq!(g.phi(r, Type::I8, &[t.y, t.y]).unwrap(), t.y);
        let two = g.phi(r, Type::I8, &[t.x, t.y]).unwrap();
        assert_eq!(g.op(two), Op::Phi { key: 0 });

        let lp = g.loop_header(1, r).unwrap();
        let phi = g.loop_phi(lp, 7, Type::I8, t.x).unwrap();
        assert_eq!(
            g.op(phi),
            Op::Phi { key: 7 },
            "no back edge yet: left alone"
        );
        let one = c(g, Type::I8, 1);
        let same = bin(g, BinOp::Mul, phi, one);
        assert_eq!(same, phi);
        g.set_back_input(phi, same).unwrap();
        assert_eq!(
            simplify_node(g, phi).unwrap(),
            Some(t.x),
            "phi(x, itself) = x"
        );
        // A direct call with the back edge finds the phi by its address.
        let ins = g.inputs(phi);
        assert_eq!(
            simplify(g, Op::Phi { key: 7 }, Type::I8, &ins).unwrap(),
            Some(t.x)
        );

        let phi2 = g.loop_phi(lp, 8, Type::I8, t.x).unwrap();
        let inc = bin(g, BinOp::Add, phi2, one);
        g.set_back_input(phi2, inc).unwrap();
        assert_eq!(
            simplify_node(g, phi2).unwrap(),
            None,
            "a real induction variable"
        );
    }

    fn load(g: &mut Graph, e: &Entry, mem: NodeId, base: NodeId, off: i32, ty: Type) -> NodeId {
        g.load(e.ctrl, mem, base, off, ty).unwrap()
    }

    fn store(g: &mut Graph, e: &Entry, mem: NodeId, base: NodeId, off: i32, v: NodeId) -> NodeId {
        g.store(e.ctrl, mem, base, off, v).unwrap()
    }

    #[test]
    fn fold_address_into_offsets() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let k3 = c(g, Type::I64, 3);
        let p3 = bin(g, BinOp::Add, t.p, k3);
        let cell = g.ptr_add(t.tape, p3).unwrap();
        let l = load(g, &e, e.mem, cell, 2, Type::I8);
        assert_eq!(g.op(l), Op::Load { offset: 5 });
        let base = g.input(l, 2);
        assert_eq!(
            (g.op(base), g.inputs(base).as_slice()),
            (Op::PtrAdd, &[t.tape, t.p][..])
        );
        let k8 = c(g, Type::I64, 8);
        let field = g.ptr_add(t.other, k8).unwrap();
        let s = store(g, &e, e.mem, field, 4, t.x);
        assert_eq!(g.op(s), Op::Store { offset: 12 });
        assert_eq!(g.input(s, 2), t.other);
        // An offset that would leave i32 stays in the address.
        let far = c(g, Type::I64, i64::from(i32::MAX));
        let fp = g.ptr_add(t.other, far).unwrap();
        let l = load(g, &e, e.mem, fp, 1, Type::I8);
        assert_eq!((g.op(l), g.input(l, 2)), (Op::Load { offset: 1 }, fp));
    }

    #[test]
    fn load_after_store_forwards_the_value() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s = store(g, &e, e.mem, t.tape, 4, t.x);
        assert_eq!(load(g, &e, s, t.tape, 4, Type::I8), t.x);
        // Other width or type: no forwarding, and no skipping (overlap).
        let l = load(g, &e, s, t.tape, 4, Type::I16);
        assert_eq!((g.op(l), g.input(l, 1)), (Op::Load { offset: 4 }, s));
        let l = load(g, &e, s, t.tape, 3, Type::I16);
        assert_eq!(g.input(l, 1), s);
        let sp = store(g, &e, e.mem, t.tape, 0, t.tape);
        let l = load(g, &e, sp, t.tape, 0, Type::I64);
        assert_eq!(g.input(l, 1), sp, "ptr stored, i64 loaded: not forwarded");
    }

    #[test]
    fn load_skips_disjoint_stores_only() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let s2 = store(g, &e, s1, t.tape, 2, t.y);
        let l = load(g, &e, s2, t.tape, 1, Type::I8);
        assert_eq!((g.input(l, 1), g.input(l, 0)), (e.mem, e.ctrl));
        // Forwarding across a disjoint store.
        assert_eq!(load(g, &e, s2, t.tape, 0, Type::I8), t.x);
        // A different base may alias: stop there.
        let s3 = store(g, &e, s2, t.other, 0, t.x);
        let l = load(g, &e, s3, t.tape, 1, Type::I8);
        assert_eq!(g.input(l, 1), s3);
        // Overlapping range: stop.
        let l = load(g, &e, s2, t.tape, 1, Type::I16);
        assert_eq!(g.input(l, 1), s2);
    }

    #[test]
    fn store_over_store_drops_the_dead_store() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let s2 = store(g, &e, s1, t.tape, 0, t.y);
        assert_eq!(g.inputs(s2).as_slice(), &[e.ctrl, e.mem, t.tape, t.y]);
        // Through a disjoint store: rebuilt chain without the dead one.
        let a = store(g, &e, s2, t.tape, 0, t.x);
        let b = store(g, &e, a, t.tape, 1, t.x);
        let c2 = store(g, &e, b, t.tape, 0, t.p);
        assert_eq!(g.op(c2), Op::Store { offset: 0 });
        assert_eq!(
            g.input(c2, 1),
            e.mem,
            "the i64 store covers every i8 store below it"
        );
        let a = store(g, &e, s2, t.tape, 0, t.x);
        let b = store(g, &e, a, t.tape, 1, t.x);
        let c3 = store(g, &e, b, t.tape, 0, t.y);
        let b2 = g.input(c3, 1);
        assert_eq!(g.op(b2), Op::Store { offset: 1 });
        assert_eq!(g.input(b2, 1), e.mem, "both i8 stores at 0 below are gone");
    }

    #[test]
    fn store_over_store_respects_observers() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let s2 = store(g, &e, s1, t.tape, 1, t.x);
        // A load observes s2 (it reads bytes 1..3, which overlap s2).
        let l = load(g, &e, s2, t.tape, 1, Type::I16);
        assert_eq!(g.input(l, 1), s2);
        let s3 = store(g, &e, s2, t.tape, 0, t.y);
        assert_eq!(g.input(s3, 1), s2, "s2 is observed: s1 must stay");
        // A store to another base stops the walk.
        let o1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let o2 = store(g, &e, o1, t.other, 0, t.x);
        let o3 = store(g, &e, o2, t.tape, 0, t.y);
        assert_eq!(g.input(o3, 1), o2);
        // A partial overwrite keeps the earlier store.
        let w = store(g, &e, e.mem, t.other, 8, t.p);
        let n = store(g, &e, w, t.other, 8, t.x);
        assert_eq!(g.input(n, 1), w);
    }

    #[test]
    fn store_of_loaded_value_is_a_no_op() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let v = load(g, &e, e.mem, t.tape, 3, Type::I8);
        assert_eq!(store(g, &e, e.mem, t.tape, 3, v), e.mem);
        let s = store(g, &e, e.mem, t.tape, 0, t.x);
        let l = load(g, &e, s, t.tape, 3, Type::I8);
        assert_eq!(l, v, "skipped the disjoint store");
        assert_eq!(store(g, &e, s, t.tape, 3, v), s);
        assert_ne!(store(g, &e, s, t.tape, 4, v), s, "other place");
        // `+-` in Brainfuck: load, +1, store, load, -1, store = nothing.
        let cell = g.ptr_add(t.tape, t.p).unwrap();
        let v = load(g, &e, e.mem, cell, 0, Type::I8);
        let one = c(g, Type::I8, 1);
        let v1 = bin(g, BinOp::Add, v, one);
        let m1 = store(g, &e, e.mem, cell, 0, v1);
        let w = load(g, &e, m1, cell, 0, Type::I8);
        assert_eq!(w, v1);
        let m1n = c(g, Type::I8, -1);
        let w1 = bin(g, BinOp::Add, w, m1n);
        assert_eq!(w1, v);
        assert_eq!(store(g, &e, m1, cell, 0, w1), e.mem);
    }

    #[test]
    fn long_runs_of_disjoint_stores_stay_linear_and_correct() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let mut mem = e.mem;
        for i in 0..1000 {
            mem = store(g, &e, mem, t.tape, i, t.x);
        }
        // Cell 0 is beyond the walk bound: the load stays on a later state.
        let l = load(g, &e, mem, t.tape, 0, Type::I8);
        assert_eq!(g.op(l), Op::Load { offset: 0 });
        // Cell 999 is near: forwarded.
        assert_eq!(load(g, &e, mem, t.tape, 999, Type::I8), t.x);
    }

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
