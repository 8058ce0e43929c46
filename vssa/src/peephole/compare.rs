//! Rules of integer comparisons and width changes: `Cmp` and `Conv`.
//!
//! Comparisons fold, know `x op x`, take constants right (mirroring the
//! predicate, so `a < b` and `b > a` are one node), and see through a
//! select of constants. Conversions fold and collapse in pairs. Tested by
//! the LIR file tests `vssa/tests/lir/compare.lir` and `convert.lir`.

use super::{konst, mk, mk_const, parts, R};
use crate::eval::{conv_widths_ok, eval_cmp, eval_conv};
use crate::graph::{Graph, NodeId};
use crate::op::{CmpOp, ConvOp, Op};
use crate::types::Type;

/// Rules of `Cmp`: fold, same operands, canonical order (mirroring the
/// predicate), and a comparison of a select of constants with a constant.
pub(super) fn cmp(g: &mut Graph, op: CmpOp, ty: Type, inputs: &[NodeId], depth: u32) -> R {
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
    let (op, a, b) = if swap {
        (op.mirrored(), b, a)
    } else {
        (op, a, b)
    };
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
pub(super) fn conv(g: &mut Graph, op: ConvOp, ty: Type, inputs: &[NodeId], depth: u32) -> R {
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
