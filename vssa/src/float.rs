//! Reference semantics of the float operations, on bit patterns.
//!
//! Every LIR value is carried as an `i64` ([`Type::normalize`]): a float is
//! its IEEE bit pattern (`F32` sign-extended from 32 bits). These functions
//! take and give such bit patterns, so the interpreter and constant folding
//! share them and cannot disagree; the backend emits the same operations
//! (Cranelift's, which are IEEE-754's) and the `lir` fuzzer checks that it
//! does, to the bit.
//!
//! Rust's `f32`/`f64` arithmetic is IEEE-754 with round-to-nearest-even,
//! as is the hardware's. What IEEE leaves open is the sign and payload of
//! a NaN that an operation produces; the LIR defines it as the canonical
//! NaN ([`canonical_nan`], see [`crate::FBinOp`]), so results here are
//! exact to the bit and folding them is sound.

use crate::op::{FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp};
use crate::types::Type;

/// The canonical `F32` NaN: positive, quiet, zero payload.
pub const CANONICAL_NAN_F32: u32 = 0x7fc0_0000;
/// The canonical `F64` NaN: positive, quiet, zero payload.
pub const CANONICAL_NAN_F64: u64 = 0x7ff8_0000_0000_0000;

/// The canonical NaN of a float type, normalized (`0` for other types).
pub fn canonical_nan(ty: Type) -> i64 {
    match ty {
        Type::F32 => Type::F32.normalize(i64::from(CANONICAL_NAN_F32)),
        Type::F64 => CANONICAL_NAN_F64 as i64,
        _ => 0,
    }
}

/// The value of an `F32` bit pattern.
pub fn f32_of(bits: i64) -> f32 {
    f32::from_bits(bits as u32)
}

/// The value of an `F64` bit pattern.
pub fn f64_of(bits: i64) -> f64 {
    f64::from_bits(bits as u64)
}

/// The normalized bit pattern of an `F32` value (a NaN keeps its bits).
pub fn bits_of_f32(x: f32) -> i64 {
    Type::F32.normalize(i64::from(x.to_bits()))
}

/// The bit pattern of an `F64` value (a NaN keeps its bits).
pub fn bits_of_f64(x: f64) -> i64 {
    x.to_bits() as i64
}

/// The bit pattern of a computed `F32` result: a NaN becomes canonical.
fn canon32(x: f32) -> i64 {
    if x.is_nan() {
        canonical_nan(Type::F32)
    } else {
        bits_of_f32(x)
    }
}

/// The bit pattern of a computed `F64` result: a NaN becomes canonical.
fn canon64(x: f64) -> i64 {
    if x.is_nan() {
        canonical_nan(Type::F64)
    } else {
        bits_of_f64(x)
    }
}

/// An `F64` as a value of either float type, for the operations whose
/// result does not depend on the width they are done in (comparisons and
/// range tests: every `F32` is exactly an `F64`).
fn wide(ty: Type, bits: i64) -> f64 {
    match ty {
        Type::F32 => f64::from(f32_of(bits)),
        _ => f64_of(bits),
    }
}

/// IEEE-754 2019 minimum/maximum on two non-NaN values: `-0.0 < +0.0`.
/// For equal values the sign bits decide: `or` for the minimum (a `-0.0`
/// wins), `and` for the maximum. Written once for both widths.
macro_rules! min_max {
    ($t:ty, $x:expr, $y:expr, $min:expr) => {{
        let (x, y) = ($x, $y);
        if x == y {
            let (a, b) = (x.to_bits(), y.to_bits());
            let bits = if $min { a | b } else { a & b };
            <$t>::from_bits(bits)
        } else if (x < y) == $min {
            x
        } else {
            y
        }
    }};
}

/// `a op b` on two floats of type `ty` (bit patterns in, bit pattern out).
pub fn eval_fbin(op: FBinOp, ty: Type, a: i64, b: i64) -> i64 {
    macro_rules! body {
        ($t:ty, $x:expr, $y:expr, $canon:expr, $bits:expr) => {{
            let (x, y): ($t, $t) = ($x, $y);
            match op {
                FBinOp::Add => $canon(x + y),
                FBinOp::Sub => $canon(x - y),
                FBinOp::Mul => $canon(x * y),
                FBinOp::Div => $canon(x / y),
                FBinOp::Min | FBinOp::Max if x.is_nan() || y.is_nan() => $canon(x + y),
                FBinOp::Min => $canon(min_max!($t, x, y, true)),
                FBinOp::Max => $canon(min_max!($t, x, y, false)),
                FBinOp::Copysign => $bits(x.copysign(y)),
            }
        }};
    }
    match ty {
        Type::F32 => body!(f32, f32_of(a), f32_of(b), canon32, bits_of_f32),
        _ => body!(f64, f64_of(a), f64_of(b), canon64, bits_of_f64),
    }
}

/// `op a` on a float of type `ty`.
pub fn eval_fun(op: FUnOp, ty: Type, a: i64) -> i64 {
    macro_rules! body {
        ($x:expr, $canon:expr, $bits:expr) => {{
            let x = $x;
            match op {
                FUnOp::Neg => $bits(-x),
                FUnOp::Abs => $bits(x.abs()),
                FUnOp::Sqrt => $canon(x.sqrt()),
                FUnOp::Floor => $canon(x.floor()),
                FUnOp::Ceil => $canon(x.ceil()),
                FUnOp::Trunc => $canon(x.trunc()),
                FUnOp::Nearest => $canon(x.round_ties_even()),
            }
        }};
    }
    match ty {
        Type::F32 => body!(f32_of(a), canon32, bits_of_f32),
        _ => body!(f64_of(a), canon64, bits_of_f64),
    }
}

/// `a op b` for two floats of type `ty`.
pub fn eval_fcmp(op: FCmpOp, ty: Type, a: i64, b: i64) -> bool {
    let (x, y) = (wide(ty, a), wide(ty, b));
    let uno = x.is_nan() || y.is_nan();
    match op {
        FCmpOp::Eq => x == y,
        FCmpOp::One => !uno && x != y,
        FCmpOp::Lt => x < y,
        FCmpOp::Le => x <= y,
        FCmpOp::Gt => x > y,
        FCmpOp::Ge => x >= y,
        FCmpOp::Ord => !uno,
        FCmpOp::Uno => uno,
        FCmpOp::Ueq => uno || x == y,
        FCmpOp::Une => x != y,
        FCmpOp::Ult => uno || x < y,
        FCmpOp::Ule => uno || x <= y,
        FCmpOp::Ugt => uno || x > y,
        FCmpOp::Uge => uno || x >= y,
    }
}

/// Which `(from, to)` type pairs a conversion takes.
pub fn fconv_types_ok(op: FConvOp, from: Type, to: Type) -> bool {
    match op {
        FConvOp::SToF | FConvOp::UToF => from.is_int() && to.is_float(),
        FConvOp::FToSSat | FConvOp::FToUSat => from.is_float() && to.is_int(),
        FConvOp::Promote => from == Type::F32 && to == Type::F64,
        FConvOp::Demote => from == Type::F64 && to == Type::F32,
        FConvOp::Bitcast => from.float_bits_int() == Some(to) || to.float_bits_int() == Some(from),
    }
}

/// Converts `a` of type `from` to type `to` (a pair [`fconv_types_ok`]
/// accepts; any other gives `a` normalized to `to`).
pub fn eval_fconv(op: FConvOp, from: Type, to: Type, a: i64) -> i64 {
    let a = from.normalize(a);
    let unsigned = (a as u64) & width_mask(from);
    let r = match (op, to) {
        (FConvOp::SToF, Type::F32) => bits_of_f32(a as f32),
        (FConvOp::SToF, Type::F64) => bits_of_f64(a as f64),
        (FConvOp::UToF, Type::F32) => bits_of_f32(unsigned as f32),
        (FConvOp::UToF, Type::F64) => bits_of_f64(unsigned as f64),
        (FConvOp::FToSSat, _) => sat_signed(wide(from, a), to),
        (FConvOp::FToUSat, _) => sat_unsigned(wide(from, a), to),
        (FConvOp::Promote, _) => canon64(f64::from(f32_of(a))),
        (FConvOp::Demote, _) => canon32(f64_of(a) as f32),
        _ => a,
    };
    to.normalize(r)
}

fn width_mask(ty: Type) -> u64 {
    match ty.bits() {
        Some(b) if b < 64 => (1u64 << b) - 1,
        _ => u64::MAX,
    }
}

/// `x` rounded towards zero and clamped to the signed range of `to` (NaN
/// is 0): Rust's `as`, which saturates. Every `F32` is exactly an `F64`,
/// so converting from the widened value is the same as from the `F32`.
fn sat_signed(x: f64, to: Type) -> i64 {
    match to {
        Type::I8 => i64::from(x as i8),
        Type::I16 => i64::from(x as i16),
        Type::I32 => i64::from(x as i32),
        _ => x as i64,
    }
}

/// `x` rounded towards zero and clamped to the unsigned range of `to`.
fn sat_unsigned(x: f64, to: Type) -> i64 {
    match to {
        Type::I8 => i64::from(x as u8),
        Type::I16 => i64::from(x as u16),
        Type::I32 => i64::from(x as u32),
        _ => x as u64 as i64,
    }
}

/// Whether `bits` is a width [`crate::Op::FFits`] tests for.
pub fn fits_bits_ok(bits: u8) -> bool {
    matches!(bits, 8 | 16 | 32 | 64)
}

/// The bounds `[lo, hi)` of the integers of `bits` bits: powers of two,
/// exact in `F64` (so the comparisons against them are exact).
pub fn fits_bounds(op: FitsOp, bits: u8) -> (f64, f64) {
    let b = i32::from(bits.clamp(1, 64));
    match op {
        FitsOp::TruncS | FitsOp::ExactS => (-(2f64.powi(b - 1)), 2f64.powi(b - 1)),
        FitsOp::TruncU | FitsOp::ExactU => (0.0, 2f64.powi(b)),
    }
}

/// Whether float `a` of type `ty` converts to an integer of `bits` bits as
/// `op` says: its value rounded towards zero (for `Exact…`: its value,
/// which must have no fraction) lies in `[lo, hi)` of [`fits_bounds`].
/// NaN never fits; infinities never do.
pub fn eval_ffits(op: FitsOp, bits: u8, ty: Type, a: i64) -> bool {
    let x = wide(ty, a);
    let t = x.trunc();
    let (lo, hi) = fits_bounds(op, bits);
    let exact = match op {
        FitsOp::TruncS | FitsOp::TruncU => true,
        FitsOp::ExactS | FitsOp::ExactU => t == x,
    };
    exact && t >= lo && t < hi
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN64: i64 = CANONICAL_NAN_F64 as i64;

    fn d(x: f64) -> i64 {
        bits_of_f64(x)
    }

    fn s(x: f32) -> i64 {
        bits_of_f32(x)
    }

    /// A quiet NaN with a payload and the sign bit set: not canonical.
    const ODD_NAN64: i64 = 0xfff8_0000_0000_1234_u64 as i64;

    #[test]
    fn arithmetic_is_ieee() {
        assert_eq!(
            eval_fbin(FBinOp::Add, Type::F64, d(0.1), d(0.2)),
            d(0.1 + 0.2)
        );
        assert_eq!(eval_fbin(FBinOp::Sub, Type::F64, d(0.0), d(0.0)), d(0.0));
        assert_eq!(eval_fbin(FBinOp::Add, Type::F64, d(-0.0), d(-0.0)), d(-0.0));
        assert_eq!(eval_fbin(FBinOp::Add, Type::F64, d(-0.0), d(0.0)), d(0.0));
        assert_eq!(eval_fbin(FBinOp::Mul, Type::F64, d(-2.0), d(0.0)), d(-0.0));
        assert_eq!(
            eval_fbin(FBinOp::Div, Type::F64, d(1.0), d(-0.0)),
            d(f64::NEG_INFINITY)
        );
        assert_eq!(
            eval_fbin(FBinOp::Div, Type::F32, s(1.0), s(3.0)),
            s(1.0 / 3.0)
        );
        // F32 arithmetic rounds to F32, not F64.
        let big = s(16_777_216.0);
        assert_eq!(eval_fbin(FBinOp::Add, Type::F32, big, s(1.0)), big);
    }

    #[test]
    fn nan_results_are_canonical() {
        let inf = d(f64::INFINITY);
        assert_eq!(eval_fbin(FBinOp::Sub, Type::F64, inf, inf), NAN64);
        assert_eq!(eval_fbin(FBinOp::Div, Type::F64, d(0.0), d(-0.0)), NAN64);
        assert_eq!(eval_fbin(FBinOp::Add, Type::F64, ODD_NAN64, d(1.0)), NAN64);
        assert_eq!(eval_fun(FUnOp::Sqrt, Type::F64, d(-1.0)), NAN64);
        assert_eq!(eval_fun(FUnOp::Floor, Type::F64, ODD_NAN64), NAN64);
        let nan32 = canonical_nan(Type::F32);
        assert_eq!(nan32, 0x7fc0_0000);
        assert_eq!(eval_fun(FUnOp::Sqrt, Type::F32, s(-4.0)), nan32);
        assert_eq!(
            eval_fconv(FConvOp::Demote, Type::F64, Type::F32, ODD_NAN64),
            nan32
        );
        let odd32 = Type::F32.normalize(0xffc0_0001);
        assert_eq!(
            eval_fconv(FConvOp::Promote, Type::F32, Type::F64, odd32),
            NAN64
        );
    }

    #[test]
    fn sign_operations_keep_nan_bits() {
        assert_eq!(
            eval_fun(FUnOp::Neg, Type::F64, ODD_NAN64),
            ODD_NAN64 & i64::MAX
        );
        assert_eq!(
            eval_fun(FUnOp::Abs, Type::F64, ODD_NAN64),
            ODD_NAN64 & i64::MAX
        );
        assert_eq!(eval_fun(FUnOp::Neg, Type::F64, d(0.0)), d(-0.0));
        assert_eq!(eval_fun(FUnOp::Abs, Type::F32, s(-0.0)), s(0.0));
        assert_eq!(
            eval_fbin(FBinOp::Copysign, Type::F64, d(3.0), ODD_NAN64),
            d(-3.0)
        );
        assert_eq!(
            eval_fbin(FBinOp::Copysign, Type::F64, d(-3.0), d(0.0)),
            d(3.0)
        );
    }

    #[test]
    fn min_max_follow_ieee_2019() {
        let (min, max) = (FBinOp::Min, FBinOp::Max);
        assert_eq!(eval_fbin(min, Type::F64, d(0.0), d(-0.0)), d(-0.0));
        assert_eq!(eval_fbin(min, Type::F64, d(-0.0), d(0.0)), d(-0.0));
        assert_eq!(eval_fbin(max, Type::F64, d(-0.0), d(0.0)), d(0.0));
        assert_eq!(eval_fbin(max, Type::F64, d(0.0), d(-0.0)), d(0.0));
        assert_eq!(eval_fbin(min, Type::F64, d(1.0), NAN64), NAN64);
        assert_eq!(eval_fbin(max, Type::F64, ODD_NAN64, d(1.0)), NAN64);
        assert_eq!(eval_fbin(min, Type::F32, s(2.0), s(-3.0)), s(-3.0));
        assert_eq!(eval_fbin(max, Type::F32, s(2.0), s(-3.0)), s(2.0));
        let ninf = d(f64::NEG_INFINITY);
        assert_eq!(eval_fbin(min, Type::F64, ninf, d(5.0)), ninf);
    }

    #[test]
    fn rounding() {
        let r = |op, x: f64| f64_of(eval_fun(op, Type::F64, d(x)));
        assert_eq!(r(FUnOp::Nearest, 2.5), 2.0, "ties to even");
        assert_eq!(r(FUnOp::Nearest, 3.5), 4.0);
        assert_eq!(r(FUnOp::Nearest, -2.5), -2.0);
        assert_eq!(eval_fun(FUnOp::Nearest, Type::F64, d(-0.4)), d(-0.0));
        assert_eq!(r(FUnOp::Floor, -1.5), -2.0);
        assert_eq!(r(FUnOp::Ceil, -1.5), -1.0);
        assert_eq!(eval_fun(FUnOp::Ceil, Type::F64, d(-0.5)), d(-0.0));
        assert_eq!(r(FUnOp::Trunc, -1.5), -1.0);
        assert_eq!(r(FUnOp::Trunc, f64::INFINITY), f64::INFINITY);
        assert_eq!(eval_fun(FUnOp::Nearest, Type::F32, s(0.5)), s(0.0));
    }

    #[test]
    fn comparisons_ordered_and_unordered() {
        let n = NAN64;
        for op in FCmpOp::ALL {
            let unordered = matches!(
                op,
                FCmpOp::Uno
                    | FCmpOp::Ueq
                    | FCmpOp::Une
                    | FCmpOp::Ult
                    | FCmpOp::Ule
                    | FCmpOp::Ugt
                    | FCmpOp::Uge
            );
            assert_eq!(eval_fcmp(op, Type::F64, n, d(1.0)), unordered, "{op:?}");
            assert_eq!(eval_fcmp(op, Type::F64, d(1.0), n), unordered, "{op:?}");
        }
        assert!(eval_fcmp(FCmpOp::Eq, Type::F64, d(0.0), d(-0.0)));
        assert!(!eval_fcmp(FCmpOp::Lt, Type::F64, d(-0.0), d(0.0)));
        assert!(eval_fcmp(FCmpOp::One, Type::F32, s(1.0), s(2.0)));
        assert!(!eval_fcmp(FCmpOp::Une, Type::F32, s(2.0), s(2.0)));
        assert!(eval_fcmp(FCmpOp::Ord, Type::F32, s(2.0), s(f32::INFINITY)));
    }

    #[test]
    fn int_to_float_rounds_to_nearest_even() {
        let c = |op, from, to, v| eval_fconv(op, from, to, v);
        assert_eq!(c(FConvOp::SToF, Type::I8, Type::F64, -1), d(-1.0));
        assert_eq!(c(FConvOp::UToF, Type::I8, Type::F64, -1), d(255.0));
        assert_eq!(
            c(FConvOp::UToF, Type::I64, Type::F64, -1),
            d(18_446_744_073_709_551_616.0)
        );
        // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: even wins.
        assert_eq!(
            c(FConvOp::SToF, Type::I64, Type::F64, (1 << 53) + 1),
            d(9_007_199_254_740_992.0)
        );
        assert_eq!(
            c(FConvOp::SToF, Type::I32, Type::F32, 16_777_217),
            s(16_777_216.0)
        );
        assert_eq!(
            c(FConvOp::SToF, Type::I64, Type::F64, i64::MIN),
            d(-9_223_372_036_854_775_808.0)
        );
    }

    #[test]
    fn saturating_conversion_edges() {
        let sat = |op, to, x: f64| eval_fconv(op, Type::F64, to, d(x));
        let (ss, su) = (FConvOp::FToSSat, FConvOp::FToUSat);
        assert_eq!(sat(ss, Type::I32, f64::NAN), 0);
        assert_eq!(sat(ss, Type::I32, 1e10), i64::from(i32::MAX));
        assert_eq!(sat(ss, Type::I32, -1e10), i64::from(i32::MIN));
        assert_eq!(sat(ss, Type::I8, -1.9), -1);
        assert_eq!(sat(ss, Type::I8, 300.0), 127);
        assert_eq!(sat(ss, Type::I64, f64::INFINITY), i64::MAX);
        assert_eq!(sat(ss, Type::I64, 9_223_372_036_854_775_808.0), i64::MAX);
        assert_eq!(sat(ss, Type::I64, -9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(sat(su, Type::I8, -5.0), 0);
        assert_eq!(sat(su, Type::I8, 255.9), -1, "u8 255, normalized");
        assert_eq!(sat(su, Type::I64, 1e30), -1, "u64::MAX, normalized");
        assert_eq!(sat(su, Type::I32, f64::NEG_INFINITY), 0);
        let f32_in = eval_fconv(ss, Type::F32, Type::I16, s(-40_000.5));
        assert_eq!(f32_in, i64::from(i16::MIN));
    }

    #[test]
    fn bitcasts_and_width_changes() {
        let c = |op, from, to, v| eval_fconv(op, from, to, v);
        assert_eq!(c(FConvOp::Bitcast, Type::F64, Type::I64, d(-0.0)), i64::MIN);
        assert_eq!(c(FConvOp::Bitcast, Type::I32, Type::F32, -1), -1);
        assert_eq!(
            c(FConvOp::Bitcast, Type::F32, Type::I32, s(1.0)),
            0x3f80_0000
        );
        assert_eq!(
            c(FConvOp::Promote, Type::F32, Type::F64, s(0.1)),
            d(f64::from(0.1f32))
        );
        assert_eq!(
            c(FConvOp::Demote, Type::F64, Type::F32, d(1e300)),
            s(f32::INFINITY)
        );
        assert_eq!(c(FConvOp::Demote, Type::F64, Type::F32, d(-0.0)), s(-0.0));
        assert!(fconv_types_ok(FConvOp::Bitcast, Type::I64, Type::F64));
        assert!(!fconv_types_ok(FConvOp::Bitcast, Type::I32, Type::F64));
        assert!(!fconv_types_ok(FConvOp::SToF, Type::Ptr, Type::F64));
        assert!(!fconv_types_ok(FConvOp::Promote, Type::F64, Type::F64));
    }

    #[test]
    fn fits_tests_range_and_exactness() {
        let f = |op, bits, x: f64| eval_ffits(op, bits, Type::F64, d(x));
        let (ts, tu, es, eu) = (
            FitsOp::TruncS,
            FitsOp::TruncU,
            FitsOp::ExactS,
            FitsOp::ExactU,
        );
        assert!(f(ts, 32, 2_147_483_647.9));
        assert!(!f(ts, 32, 2_147_483_648.0));
        assert!(f(ts, 32, -2_147_483_648.9));
        assert!(!f(ts, 32, -2_147_483_649.0));
        assert!(!f(ts, 64, 9_223_372_036_854_775_808.0));
        assert!(f(ts, 64, -9_223_372_036_854_775_808.0));
        assert!(!f(ts, 8, f64::NAN));
        assert!(!f(ts, 64, f64::INFINITY));
        assert!(f(tu, 8, -0.9), "truncates to 0");
        assert!(!f(tu, 8, -1.0));
        assert!(!f(tu, 8, 256.0));
        assert!(f(es, 32, -7.0));
        assert!(!f(es, 32, 7.5));
        assert!(f(es, 16, -0.0));
        assert!(f(eu, 16, -0.0));
        assert!(!f(eu, 16, 65_536.0));
        assert!(!f(es, 64, f64::INFINITY));
        assert!(eval_ffits(es, 32, Type::F32, s(-2_147_483_648.0)));
        assert!(!eval_ffits(es, 32, Type::F32, s(2_147_483_648.0)));
    }
}
