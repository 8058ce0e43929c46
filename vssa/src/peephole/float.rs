//! Peephole rules of the float operations.
//!
//! A float rule may only produce what the operation gives at run time, to
//! the bit. The LIR's NaN rule (a computed NaN is the canonical NaN, see
//! [`crate::FBinOp`]) makes folding exact, but it also rules out the
//! familiar identities: `x * 1.0`, `x + -0.0` or `x - x` would hand back
//! `x`'s own NaN (or `0.0` for an infinite `x`) where the machine computes
//! the canonical NaN; `x * 0.0` is not `0.0` (`-1 * 0 = -0`, `inf * 0 =
//! NaN`). What is left:
//!
//! * `fold_float`: every operation on constants ([`crate::float`]).
//! * `forder_operands`: `fadd`, `fmul`, `fmin` and `fmax` are commutative
//!   to the bit (IEEE addition and multiplication are; min and max decide
//!   equal zeros by sign and NaN results are canonical), so they get the
//!   integer rule's canonical order; comparisons are mirrored.
//! * `double_sign`: `-(-x) = x`, `|(-x)| = |x|`, `||x|| = |x|` (bit operations).
//! * `round_of_round`: rounding a rounded value changes nothing (it is an
//!   integer, an infinity, a zero with its sign, or the canonical NaN).
//! * `bitcast_pair`: a bit cast of a bit cast back to the first type.
//! * `int_float_int`: an integer converted to a float whose significand
//!   holds it exactly, and back with the same signedness, is itself.

use super::{konst, mk_const, parts, R};
use crate::float::{eval_fbin, eval_fcmp, eval_fconv, eval_ffits, eval_fun, fconv_types_ok};
use crate::graph::{Graph, NodeId};
use crate::op::{FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Op};
use crate::types::Type;

/// Rules of `FBin`: `fold_float`, `forder_operands`.
pub(super) fn fbin(g: &mut Graph, op: FBinOp, ty: Type, inputs: &[NodeId]) -> R {
    let &[a, b] = inputs else { return Ok(None) };
    if !ty.is_float() || g.ty(a) != ty || g.ty(b) != ty {
        return Ok(None);
    }
    if let (Some(x), Some(y)) = (konst(g, a), konst(g, b)) {
        return Ok(Some(mk_const(g, ty, eval_fbin(op, ty, x, y))?));
    }
    let commutative = matches!(op, FBinOp::Add | FBinOp::Mul | FBinOp::Min | FBinOp::Max);
    if commutative && swap_operands(g, a, b) {
        return Ok(Some(g.intern(Op::FBin(op), ty, &[b, a])?));
    }
    Ok(None)
}

/// Constant right, two non-constants in address order (addresses are the
/// same in every process, so the order is too).
fn swap_operands(g: &Graph, a: NodeId, b: NodeId) -> bool {
    match (konst(g, a).is_some(), konst(g, b).is_some()) {
        (true, false) => true,
        (false, false) => g.addr(a) > g.addr(b),
        _ => false,
    }
}

fn is_rounding(op: FUnOp) -> bool {
    matches!(
        op,
        FUnOp::Floor | FUnOp::Ceil | FUnOp::Trunc | FUnOp::Nearest
    )
}

/// Rules of `FUn`: `fold_float`, `double_sign`, `round_of_round`.
pub(super) fn fun(g: &mut Graph, op: FUnOp, ty: Type, inputs: &[NodeId]) -> R {
    let &[a] = inputs else { return Ok(None) };
    if !ty.is_float() || g.ty(a) != ty {
        return Ok(None);
    }
    if let Some(x) = konst(g, a) {
        return Ok(Some(mk_const(g, ty, eval_fun(op, ty, x))?));
    }
    let Op::FUn(inner) = g.op(a) else {
        return Ok(None);
    };
    let Some([x]) = parts::<1>(g, a, Op::FUn(inner)) else {
        return Ok(None);
    };
    match (op, inner) {
        (FUnOp::Neg, FUnOp::Neg) => Ok(Some(x)),
        (FUnOp::Abs, FUnOp::Abs) => Ok(Some(a)),
        (FUnOp::Abs, FUnOp::Neg) => Ok(Some(g.intern(Op::FUn(FUnOp::Abs), ty, &[x])?)),
        (outer, inner) if is_rounding(outer) && is_rounding(inner) => Ok(Some(a)),
        _ => Ok(None),
    }
}

/// The comparison with its operands swapped: `a op b == b (mirror op) a`.
fn fmirror(op: FCmpOp) -> FCmpOp {
    match op {
        FCmpOp::Lt => FCmpOp::Gt,
        FCmpOp::Le => FCmpOp::Ge,
        FCmpOp::Gt => FCmpOp::Lt,
        FCmpOp::Ge => FCmpOp::Le,
        FCmpOp::Ult => FCmpOp::Ugt,
        FCmpOp::Ule => FCmpOp::Uge,
        FCmpOp::Ugt => FCmpOp::Ult,
        FCmpOp::Uge => FCmpOp::Ule,
        symmetric => symmetric,
    }
}

/// Rules of `FCmp`: `fold_float`, `forder_operands` (mirroring the
/// predicate). Not `x == x`: it is false for a NaN.
pub(super) fn fcmp(g: &mut Graph, op: FCmpOp, ty: Type, inputs: &[NodeId]) -> R {
    let &[a, b] = inputs else { return Ok(None) };
    let t = g.ty(a);
    if ty != Type::I8 || !t.is_float() || g.ty(b) != t {
        return Ok(None);
    }
    if let (Some(x), Some(y)) = (konst(g, a), konst(g, b)) {
        return Ok(Some(mk_const(g, ty, i64::from(eval_fcmp(op, t, x, y)))?));
    }
    if swap_operands(g, a, b) {
        return Ok(Some(g.intern(Op::FCmp(fmirror(op)), ty, &[b, a])?));
    }
    Ok(None)
}

/// Whether every integer of type `int` is exactly a `float` (the
/// significand has enough bits: 24 for `F32`, 53 for `F64`).
fn float_holds(float: Type, int: Type) -> bool {
    let significand = if float == Type::F32 { 24 } else { 53 };
    int.bits().is_some_and(|b| b <= significand)
}

/// Rules of `FConv`: `fold_float`, `bitcast_pair`, `int_float_int`.
pub(super) fn fconv(g: &mut Graph, op: FConvOp, ty: Type, inputs: &[NodeId]) -> R {
    let &[a] = inputs else { return Ok(None) };
    let from = g.ty(a);
    if !fconv_types_ok(op, from, ty) {
        return Ok(None);
    }
    if let Some(x) = konst(g, a) {
        return Ok(Some(mk_const(g, ty, eval_fconv(op, from, ty, x))?));
    }
    let Op::FConv(inner) = g.op(a) else {
        return Ok(None);
    };
    let Some([x]) = parts::<1>(g, a, Op::FConv(inner)) else {
        return Ok(None);
    };
    if g.ty(x) != ty {
        return Ok(None);
    }
    let found = match (inner, op) {
        (FConvOp::Bitcast, FConvOp::Bitcast) => Some(x),
        (FConvOp::SToF, FConvOp::FToSSat) | (FConvOp::UToF, FConvOp::FToUSat)
            if float_holds(from, ty) =>
        {
            Some(x)
        }
        _ => None,
    };
    Ok(found)
}

/// Rule of `FFits`: `fold_float`.
pub(super) fn ffits(g: &mut Graph, op: FitsOp, bits: u8, ty: Type, inputs: &[NodeId]) -> R {
    let &[a] = inputs else { return Ok(None) };
    let t = g.ty(a);
    if ty != Type::I8 || !t.is_float() || !crate::float::fits_bits_ok(bits) {
        return Ok(None);
    }
    match konst(g, a) {
        Some(x) => Ok(Some(mk_const(
            g,
            ty,
            i64::from(eval_ffits(op, bits, t, x)),
        )?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::float::{bits_of_f32, bits_of_f64, canonical_nan};
    use crate::graph::{Graph, NodeId};
    use crate::op::{FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Op};
    use crate::types::Type;

    struct T {
        g: Graph,
        x: NodeId,
        y: NodeId,
        s: NodeId,
        i: NodeId,
        b: NodeId,
    }

    fn setup() -> T {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::F64).unwrap();
        let y = g.param(e.start, 1, Type::F64).unwrap();
        let s = g.param(e.start, 2, Type::F32).unwrap();
        let i = g.param(e.start, 3, Type::I32).unwrap();
        let b = g.param(e.start, 4, Type::I16).unwrap();
        T { g, x, y, s, i, b }
    }

    fn d(g: &mut Graph, x: f64) -> NodeId {
        g.iconst(Type::F64, bits_of_f64(x)).unwrap()
    }

    fn konst(g: &Graph, n: NodeId) -> Option<i64> {
        match g.op(n) {
            Op::Const { value } => Some(value),
            _ => None,
        }
    }

    #[test]
    fn constants_are_bits_so_zeros_and_nans_stay_apart() {
        let mut t = setup();
        let g = &mut t.g;
        let (p, m) = (d(g, 0.0), d(g, -0.0));
        assert_ne!(p, m);
        assert_ne!(g.addr(p), g.addr(m));
        let n1 = g.iconst(Type::F64, canonical_nan(Type::F64)).unwrap();
        let n2 = g.iconst(Type::F64, canonical_nan(Type::F64) | 1).unwrap();
        assert_ne!(n1, n2);
        assert_eq!(n1, g.iconst(Type::F64, canonical_nan(Type::F64)).unwrap());
        // An F32 constant is normalized like an I32: 0x8000_0000 is -0.0.
        let a = g.iconst(Type::F32, 0x8000_0000).unwrap();
        let b = g.iconst(Type::F32, bits_of_f32(-0.0)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn fold_float_is_the_runtime_result() {
        let mut t = setup();
        let g = &mut t.g;
        let (one, three) = (d(g, 1.0), d(g, 3.0));
        let q = g
            .build(Op::FBin(FBinOp::Div), Type::F64, &[one, three])
            .unwrap();
        assert_eq!(konst(g, q), Some(bits_of_f64(1.0 / 3.0)));
        let (inf, zero) = (d(g, f64::INFINITY), d(g, 0.0));
        let nan = g
            .build(Op::FBin(FBinOp::Mul), Type::F64, &[inf, zero])
            .unwrap();
        assert_eq!(konst(g, nan), Some(canonical_nan(Type::F64)));
        let m = d(g, -2.5);
        let r = g.build(Op::FUn(FUnOp::Nearest), Type::F64, &[m]).unwrap();
        assert_eq!(konst(g, r), Some(bits_of_f64(-2.0)));
        let c = g
            .build(Op::FCmp(FCmpOp::Ult), Type::I8, &[nan, one])
            .unwrap();
        assert_eq!(konst(g, c), Some(1));
        let k = g
            .build(Op::FConv(FConvOp::FToSSat), Type::I8, &[m])
            .unwrap();
        assert_eq!(konst(g, k), Some(-2));
        let f = g
            .build(
                Op::FFits {
                    op: FitsOp::ExactS,
                    bits: 8,
                },
                Type::I8,
                &[m],
            )
            .unwrap();
        assert_eq!(konst(g, f), Some(0));
    }

    #[test]
    fn no_identities_that_lose_a_nan_or_a_sign() {
        let mut t = setup();
        let g = &mut t.g;
        let (one, zero, mzero) = (d(g, 1.0), d(g, 0.0), d(g, -0.0));
        for (op, k) in [
            (FBinOp::Mul, one),
            (FBinOp::Mul, zero),
            (FBinOp::Add, mzero),
            (FBinOp::Add, zero),
            (FBinOp::Sub, zero),
            (FBinOp::Div, one),
        ] {
            let r = g.build(Op::FBin(op), Type::F64, &[t.x, k]).unwrap();
            assert_eq!(g.op(r), Op::FBin(op), "{op:?} kept");
        }
        let s = g
            .build(Op::FBin(FBinOp::Sub), Type::F64, &[t.x, t.x])
            .unwrap();
        assert_eq!(g.op(s), Op::FBin(FBinOp::Sub), "x - x is NaN for inf");
        let e = g
            .build(Op::FCmp(FCmpOp::Eq), Type::I8, &[t.x, t.x])
            .unwrap();
        assert_eq!(g.op(e), Op::FCmp(FCmpOp::Eq), "x == x is false for NaN");
    }

    #[test]
    fn forder_operands_for_commutative_ops_only() {
        let mut t = setup();
        let g = &mut t.g;
        let k = d(g, 2.0);
        for op in [FBinOp::Add, FBinOp::Mul, FBinOp::Min, FBinOp::Max] {
            let a = g.build(Op::FBin(op), Type::F64, &[k, t.x]).unwrap();
            assert_eq!((g.input(a, 0), g.input(a, 1)), (t.x, k), "{op:?}");
            let xy = g.build(Op::FBin(op), Type::F64, &[t.x, t.y]).unwrap();
            let yx = g.build(Op::FBin(op), Type::F64, &[t.y, t.x]).unwrap();
            assert_eq!(xy, yx, "{op:?}");
        }
        for op in [FBinOp::Sub, FBinOp::Div, FBinOp::Copysign] {
            let a = g.build(Op::FBin(op), Type::F64, &[k, t.x]).unwrap();
            assert_eq!((g.input(a, 0), g.input(a, 1)), (k, t.x), "{op:?}");
        }
        let c = g.build(Op::FCmp(FCmpOp::Ult), Type::I8, &[k, t.x]).unwrap();
        assert_eq!(g.op(c), Op::FCmp(FCmpOp::Ugt));
        assert_eq!((g.input(c, 0), g.input(c, 1)), (t.x, k));
    }

    #[test]
    fn double_sign_and_round_of_round() {
        let mut t = setup();
        let g = &mut t.g;
        let n = g.build(Op::FUn(FUnOp::Neg), Type::F32, &[t.s]).unwrap();
        assert_eq!(g.build(Op::FUn(FUnOp::Neg), Type::F32, &[n]).unwrap(), t.s);
        let a = g.build(Op::FUn(FUnOp::Abs), Type::F32, &[n]).unwrap();
        assert_eq!((g.op(a), g.input(a, 0)), (Op::FUn(FUnOp::Abs), t.s));
        assert_eq!(g.build(Op::FUn(FUnOp::Abs), Type::F32, &[a]).unwrap(), a);
        let f = g.build(Op::FUn(FUnOp::Floor), Type::F64, &[t.x]).unwrap();
        for op in [FUnOp::Floor, FUnOp::Ceil, FUnOp::Trunc, FUnOp::Nearest] {
            assert_eq!(g.build(Op::FUn(op), Type::F64, &[f]).unwrap(), f, "{op:?}");
        }
        let sq = g.build(Op::FUn(FUnOp::Sqrt), Type::F64, &[f]).unwrap();
        assert_eq!(g.op(sq), Op::FUn(FUnOp::Sqrt));
        let sq2 = g.build(Op::FUn(FUnOp::Sqrt), Type::F64, &[sq]).unwrap();
        assert_ne!(sq2, sq);
    }

    #[test]
    fn bitcast_pair_and_int_float_int() {
        let mut t = setup();
        let g = &mut t.g;
        let f = g
            .build(Op::FConv(FConvOp::Bitcast), Type::F32, &[t.i])
            .unwrap();
        let back = g
            .build(Op::FConv(FConvOp::Bitcast), Type::I32, &[f])
            .unwrap();
        assert_eq!(back, t.i);
        let wide = g
            .build(Op::FConv(FConvOp::SToF), Type::F64, &[t.i])
            .unwrap();
        let r = g
            .build(Op::FConv(FConvOp::FToSSat), Type::I32, &[wide])
            .unwrap();
        assert_eq!(r, t.i, "every i32 is an f64");
        let r = g
            .build(Op::FConv(FConvOp::FToUSat), Type::I32, &[wide])
            .unwrap();
        assert_ne!(r, t.i, "signedness differs");
        let narrow = g
            .build(Op::FConv(FConvOp::SToF), Type::F32, &[t.i])
            .unwrap();
        let r = g
            .build(Op::FConv(FConvOp::FToSSat), Type::I32, &[narrow])
            .unwrap();
        assert_ne!(r, t.i, "an f32 rounds large i32s");
        let h = g
            .build(Op::FConv(FConvOp::UToF), Type::F32, &[t.b])
            .unwrap();
        let r = g
            .build(Op::FConv(FConvOp::FToUSat), Type::I16, &[h])
            .unwrap();
        assert_eq!(r, t.b, "every u16 is an f32");
    }
}
