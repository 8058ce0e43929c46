//! The reference semantics of the integer operations: what `Bin`, `Un`,
//! `Cmp` and `Conv` compute on constants.
//!
//! One definition serves constant folding ([`crate::peephole`]), the LIR
//! interpreter ([`crate::interp`]) and the verifier's type rules, so what
//! the optimizer folds is by construction what the interpreter runs. The
//! float operations have theirs in [`crate::float`]. Values are `i64` bit
//! patterns normalized to their type ([`Type::normalize`]).

use crate::op::{BinOp, CmpOp, ConvOp, UnOp};
use crate::types::Type;

/// The width of `ty` in bits (64 for pointers and anything unsized).
pub(crate) fn width(ty: Type) -> u32 {
    ty.bits().unwrap_or(64)
}

/// The low `bits` bits set.
pub(crate) fn mask(bits: u32) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
