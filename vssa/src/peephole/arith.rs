//! Rules of the integer arithmetic: `Bin`, `Un` and `PtrAdd`.
//!
//! In order: fold constants, put operands in canonical order (constants
//! right, others by address), identities with a neutral or absorbing
//! constant, division by constants with a known answer, equal operands,
//! `x - c` as `x + -c`, and reassociation of constants, so that chains of
//! additions (Brainfuck's `>>><`) become one `p + c`.

use super::{konst, mk, mk_const, parts, R};
use crate::eval::{eval_bin, eval_un, mask, width};
use crate::graph::{Graph, NodeId};
use crate::op::{BinOp, Op, UnOp};
use crate::types::Type;

fn is_commutative(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Mul | BinOp::And | BinOp::Or | BinOp::Xor
    )
}

/// Rules of `Bin`, in order: fold, canonical order, identities, same
/// operands, `x - c`, reassociation.
pub(super) fn bin(g: &mut Graph, op: BinOp, ty: Type, inputs: &[NodeId], depth: u32) -> R {
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
pub(super) fn un(g: &mut Graph, op: UnOp, ty: Type, inputs: &[NodeId]) -> R {
    let &[a] = inputs else { return Ok(None) };
    if !ty.is_int_or_ptr() || g.ty(a) != ty {
        return Ok(None);
    }
    if let Some(x) = konst(g, a) {
        return Ok(Some(mk_const(g, ty, eval_un(op, ty, x))?));
    }
    Ok(parts::<1>(g, a, Op::Un(op)).map(|[x]| x))
}

/// Rules of `PtrAdd`: `fold_ptr_add` (constants), `ptr_add_zero`
/// (`p + 0 = p`) and `ptr_add_chain` (`(p + c1) + c2 = p + (c1 + c2)`).
pub(super) fn ptr_add(g: &mut Graph, ty: Type, inputs: &[NodeId], depth: u32) -> R {
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::op::{BinOp, UnOp};

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
}
