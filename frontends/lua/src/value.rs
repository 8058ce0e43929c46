//! Lua values: a 16-byte tagged enum, and the number semantics of Lua 5.4
//! (integer/float subtypes, conversions, formatting, string coercions).
//!
//! Heap objects are referred to by arena index ([`StrRef`], [`TableRef`],
//! [`FnRef`]), so a value is plain data a compiled frame can read: a tag and
//! a 64-bit payload.

use std::fmt::Write as _;

/// A string in the heap's string arena: `.0` is the arena index of its
/// bytes, `.1` which object it is. The bytes are interned (equal strings
/// share one index), so two strings are equal exactly when their indices
/// are: equality and hashing look at `.0` only. A long string (over
/// [`crate::heap::MAX_SHORT_LEN`] bytes) made at run time is, as in
/// lua5.4, an object of its own: its `.1` is fresh, which only
/// `string.format("%p")` shows; a short string's is 0.
#[derive(Clone, Copy, Debug)]
pub struct StrRef(pub u32, pub u32);

impl PartialEq for StrRef {
    #[inline(always)]
    fn eq(&self, other: &StrRef) -> bool {
        self.0 == other.0
    }
}

impl Eq for StrRef {}

impl std::hash::Hash for StrRef {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}

/// A table in the heap's table arena.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TableRef(pub u32);

/// A Lua closure in the heap's closure arena.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FnRef(pub u32);

/// A thread (the main thread or a coroutine) in the heap's coroutine arena.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CoRef(pub u32);

/// A full userdata in the heap's userdata arena (files of the `io` library).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UdRef(pub u32);

/// A Lua value. `Nil` is the default; `Builtin` is a standard-library
/// function, named by its index in the builtin table (no heap object).
#[derive(Clone, Copy, Debug, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(StrRef),
    Table(TableRef),
    Func(FnRef),
    Builtin(u32),
    Thread(CoRef),
    Userdata(UdRef),
}

const _: () = assert!(std::mem::size_of::<Value>() == 16);

/// `false` and `true` as whole values: `LoadBool` copies one of them, so
/// its register is written by one 16-byte store, as a later 16-byte copy
/// of it reads it (see [`Value::copy_into`]).
pub const BOOLS: [Value; 2] = [Value::Bool(false), Value::Bool(true)];

impl Value {
    /// Copies `src` into `dst` reading a number as its tag and its
    /// payload, not as one 16-byte load. A register just written
    /// by an arithmetic instruction or a `for` loop step holds a tag byte
    /// and a payload stored apart; a 16-byte load of it cannot be
    /// forwarded from those two stores and waits until they reach the
    /// cache, while loads of the widths of the stores are forwarded. For
    /// the copies of the hot loop (`Move`, the value of `SetTable` and
    /// `SetField`, a one-value return).
    ///
    /// As written, rustc 1.95 compiles it to the 16-byte copy all the same
    /// (MIR GVN sees `Value::Int(i)` as the value read, and the three arms
    /// merge). Writing the number as a zero of its type and then its
    /// payload field does keep the split, but measured no faster and
    /// cost 0.5–3 % more machine instructions (docs/lua.md, round
    /// `luaperf7`), so the merged copy stays.
    #[inline(always)]
    pub fn copy_into(dst: &mut Value, src: &Value) {
        match *src {
            Value::Int(i) => *dst = Value::Int(i),
            Value::Float(f) => *dst = Value::Float(f),
            v => *dst = v,
        }
    }

    /// [`Value::copy_into`] between two slots of one slice.
    #[inline(always)]
    pub fn copy_within(slots: &mut [Value], src: usize, dst: usize) {
        match slots[src] {
            Value::Int(i) => slots[dst] = Value::Int(i),
            Value::Float(f) => slots[dst] = Value::Float(f),
            v => slots[dst] = v,
        }
    }

    /// Lua truthiness: everything but `nil` and `false`.
    #[inline(always)]
    pub fn truthy(self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    /// The name `type()` returns.
    pub fn type_name(self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Table(_) => "table",
            Value::Func(_) | Value::Builtin(_) => "function",
            Value::Thread(_) => "thread",
            Value::Userdata(_) => "userdata",
        }
    }

    /// Raw equality (no `__eq`): numbers by mathematical value, everything
    /// else by identity (strings are interned).
    #[inline]
    pub fn raw_eq(self, other: Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                int_float_eq(a, b)
            }
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Table(a), Value::Table(b)) => a == b,
            (Value::Func(a), Value::Func(b)) => a == b,
            (Value::Builtin(a), Value::Builtin(b)) => a == b,
            (Value::Thread(a), Value::Thread(b)) => a == b,
            (Value::Userdata(a), Value::Userdata(b)) => a == b,
            _ => false,
        }
    }
}

/// `i == f` exactly (no rounding of `i` to a float).
pub fn int_float_eq(i: i64, f: f64) -> bool {
    float_to_int_exact(f) == Some(i)
}

/// The integer a float equals exactly, if any (`3.0` → 3, `3.5` → none).
#[inline]
pub fn float_to_int_exact(f: f64) -> Option<i64> {
    // -2^63 is exact; 2^63 is out of range.
    if f.floor() == f && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// Lua's floor division on integers (the caller checks `b != 0`).
#[inline]
pub fn int_floor_div(a: i64, b: i64) -> i64 {
    let q = a.wrapping_div(b);
    if (a.wrapping_rem(b) != 0) && ((a ^ b) < 0) {
        q - 1
    } else {
        q
    }
}

/// Lua's modulo on integers: the result has the sign of `b` (the caller
/// checks `b != 0`).
#[inline]
pub fn int_mod(a: i64, b: i64) -> i64 {
    let r = a.wrapping_rem(b);
    if r != 0 && (r ^ b) < 0 {
        r + b
    } else {
        r
    }
}

/// Lua's modulo on floats: `a - floor(a/b)*b` computed as C's fmod plus a
/// sign fix, like lua5.4.
#[inline]
pub fn float_mod(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 && (m > 0.0) != (b > 0.0) {
        m + b
    } else {
        m
    }
}

/// Shift left by a signed amount (negative shifts right), logical, as 5.4.
pub fn shift_left(a: i64, n: i64) -> i64 {
    if n <= -64 || n >= 64 {
        0
    } else if n >= 0 {
        ((a as u64) << n) as i64
    } else {
        ((a as u64) >> (-n)) as i64
    }
}

/// Formats a float as `%.14g`, and appends `.0` when the result looks like
/// an integer (what `tostring` and `print` show).
pub fn fmt_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str(if f.is_sign_negative() { "-nan" } else { "nan" });
        return;
    }
    if f.is_infinite() {
        out.push_str(if f < 0.0 { "-inf" } else { "inf" });
        return;
    }
    let start = out.len();
    fmt_g(f, 14, false, out);
    if out[start..]
        .bytes()
        .all(|b| b == b'-' || b.is_ascii_digit())
    {
        out.push_str(".0");
    }
}

/// C's `%.{prec}g` for a finite float (`alt` is the `#` flag: keep zeros).
pub fn fmt_g(f: f64, prec: usize, alt: bool, out: &mut String) {
    let prec = prec.max(1);
    if f == 0.0 {
        if f.is_sign_negative() {
            out.push('-');
        }
        out.push('0');
        if alt && prec > 1 {
            out.push('.');
            out.extend(std::iter::repeat_n('0', prec - 1));
        }
        return;
    }
    // The exponent after rounding to `prec` significant digits.
    let e_form = format!("{:.*e}", prec - 1, f);
    let epos = e_form.rfind('e').unwrap_or(e_form.len());
    let exp: i32 = e_form[epos + 1..].parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mut mant = e_form[..epos].to_string();
        if !alt {
            strip_zeros(&mut mant);
        }
        out.push_str(&mant);
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        let mut s = format!("{:.*}", decimals, f);
        if !alt {
            strip_zeros(&mut s);
        }
        out.push_str(&s);
    }
}

fn strip_zeros(s: &mut String) {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
}

/// A number read from a string the way `tonumber` and the arithmetic
/// coercions read it: optional blanks, sign, decimal or hex integer or
/// float (hex floats with `p` exponents), optional blanks. Decimal integers
/// that overflow become floats; hex integers wrap.
pub fn str_to_number(s: &[u8]) -> Option<Value> {
    let s = trim_ascii(s);
    if s.is_empty() {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.len() > 1 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        return hex_number(&body[2..], neg);
    }
    if body.is_empty()
        || !body
            .iter()
            .all(|&c| c.is_ascii_digit() || b".eE+-".contains(&c))
    {
        return None;
    }
    if body.iter().all(u8::is_ascii_digit) {
        // Up to 2^63 - 1, or 2^63 with a minus sign; beyond is a float.
        let limit = i64::MAX as u64 + neg as u64;
        let mut v: u64 = 0;
        let mut overflow = false;
        for &c in body {
            match v
                .checked_mul(10)
                .and_then(|v| v.checked_add((c - b'0') as u64))
            {
                Some(n) if n <= limit => v = n,
                _ => {
                    overflow = true;
                    break;
                }
            }
        }
        if !overflow {
            let v = v as i64;
            return Some(Value::Int(if neg { v.wrapping_neg() } else { v }));
        }
    }
    // Validate the decimal float shape Rust's parser would also accept
    // words for ("inf", "nan"): digits, at most one dot, optional exponent.
    let text = std::str::from_utf8(body).ok()?;
    let mantissa_end = text.find(['e', 'E']).unwrap_or(text.len());
    let mantissa = &text[..mantissa_end];
    if mantissa.is_empty()
        || mantissa == "."
        || mantissa.contains(['+', '-'])
        || mantissa.matches('.').count() > 1
    {
        return None;
    }
    if mantissa_end < text.len() {
        let exp = &text[mantissa_end + 1..];
        let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let f: f64 = text.parse().ok()?;
    Some(Value::Float(if neg { -f } else { f }))
}

fn hex_number(s: &[u8], neg: bool) -> Option<Value> {
    let mut mant: u64 = 0;
    let mut fmant: f64 = 0.0;
    let mut any = false;
    let mut exp: i64 = 0;
    let mut seen_dot = false;
    let mut is_float = false;
    let mut sig = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'.' {
            if seen_dot {
                return None;
            }
            seen_dot = true;
            is_float = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            any = true;
            mant = mant.wrapping_mul(16).wrapping_add(d as u64);
            // Like lua5.4: leading zeros do not count, and past 30
            // significant digits only the exponent changes.
            if sig == 0 && d == 0 {
                if seen_dot {
                    exp -= 4;
                }
            } else if sig < 30 {
                sig += 1;
                fmant = fmant * 16.0 + d as f64;
                if seen_dot {
                    exp -= 4;
                }
            } else if !seen_dot {
                exp += 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if !any {
        return None;
    }
    if i < s.len() {
        if (s[i] | 0x20) != b'p' {
            return None;
        }
        is_float = true;
        let rest = &s[i + 1..];
        let (eneg, digits) = match rest.first() {
            Some(b'-') => (true, &rest[1..]),
            Some(b'+') => (false, &rest[1..]),
            _ => (false, rest),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut e: i64 = 0;
        for &d in digits {
            e = (e * 10 + (d - b'0') as i64).min(1 << 20);
        }
        exp += if eneg { -e } else { e };
    }
    if is_float {
        // Scale in two steps so 2^exp itself never over- or underflows
        // when the result does not.
        let e = exp.clamp(-4000, 4000) as i32;
        let f = fmant * 2f64.powi(e / 2) * 2f64.powi(e - e / 2);
        Some(Value::Float(if neg { -f } else { f }))
    } else {
        let v = mant as i64;
        Some(Value::Int(if neg { v.wrapping_neg() } else { v }))
    }
}

/// The bytes without leading and trailing ASCII blanks (C's isspace).
pub fn trim_ascii(mut s: &[u8]) -> &[u8] {
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    while let [first, rest @ ..] = s {
        if blank(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if blank(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(f: f64) -> String {
        let mut s = String::new();
        fmt_float(f, &mut s);
        s
    }

    #[test]
    fn copies_by_parts_keep_the_value() {
        let vals = [
            Value::Nil,
            BOOLS[0],
            BOOLS[1],
            Value::Int(-7),
            Value::Float(0.5),
            Value::Str(StrRef(3, 5)),
            Value::Table(TableRef(4)),
            Value::Builtin(9),
        ];
        for v in vals {
            let mut dst = Value::Int(1);
            Value::copy_into(&mut dst, &v);
            assert!(dst.raw_eq(v), "{v:?} copied into {dst:?}");
            let mut slots = [Value::Float(2.0), v];
            Value::copy_within(&mut slots, 1, 0);
            assert!(slots[0].raw_eq(v), "{v:?} copied within as {:?}", slots[0]);
        }
        assert!(matches!(BOOLS, [Value::Bool(false), Value::Bool(true)]));
    }

    #[test]
    fn floats_print_like_lua() {
        assert_eq!(g(1e15), "1e+15");
        assert_eq!(g(1e14), "1e+14");
        assert_eq!(g(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(g(3.0), "3.0");
        assert_eq!(g(-0.0), "-0.0");
        assert_eq!(g(0.1), "0.1");
        assert_eq!(g(1.0 / 3.0), "0.33333333333333");
        assert_eq!(g(f64::INFINITY), "inf");
        assert_eq!(g(-f64::INFINITY), "-inf");
        assert_eq!(g(1e-5), "1e-05");
        assert_eq!(g(2f64.powi(63)), "9.2233720368548e+18");
    }

    #[test]
    fn strings_convert_like_lua() {
        let n = |s: &str| str_to_number(s.as_bytes());
        assert!(matches!(n(" 10 "), Some(Value::Int(10))));
        assert!(matches!(n("0x10"), Some(Value::Int(16))));
        assert!(matches!(n("0xffffffffffffffff"), Some(Value::Int(-1))));
        assert!(matches!(n("1e2"), Some(Value::Float(f)) if f == 100.0));
        assert!(matches!(n("9223372036854775808"), Some(Value::Float(_))));
        assert!(matches!(n(".5"), Some(Value::Float(f)) if f == 0.5));
        assert!(matches!(n("0x.8p1"), Some(Value::Float(f)) if f == 1.0));
        let zeros = "0x3.".to_string() + &"0".repeat(1000);
        assert!(matches!(n(&zeros), Some(Value::Float(f)) if f == 3.0));
        let long = "0x".to_string() + &"f".repeat(40) + ".0";
        assert!(matches!(n(&long), Some(Value::Float(f)) if f == 2f64.powi(160)));
        assert!(n("inf").is_none());
        assert!(n("nan").is_none());
        assert!(n("1e").is_none());
        assert!(n("").is_none());
        assert!(n("1 2").is_none());
    }

    #[test]
    fn integer_division_and_modulo_floor() {
        assert_eq!(int_floor_div(7, -2), -4);
        assert_eq!(int_floor_div(-7, 2), -4);
        assert_eq!(int_mod(-7, 2), 1);
        assert_eq!(int_mod(7, -2), -1);
        assert_eq!(int_floor_div(i64::MIN, -1), i64::MIN);
        assert_eq!(float_mod(-7.0, 2.0), 1.0);
        assert_eq!(float_to_int_exact(3.0), Some(3));
        assert_eq!(float_to_int_exact(2f64.powi(63)), None);
    }
}
