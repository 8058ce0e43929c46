//! The `utf8` library of Lua 5.4: `char`, `charpattern`, `codepoint`,
//! `len`, `offset`, `codes` (strict UTF-8 unless `lax`, code points up to
//! 2^31 in lax mode, as lua5.4).

use crate::lexer::utf8_encode;
use crate::stdlib::{arg, arg_error, check_int, check_str, opt_int};
use crate::value::Value;
use crate::vm::{LResult, Vm};

const MAX_UNICODE: u32 = 0x10_FFFF;
const MAX_UTF: u32 = 0x7FFF_FFFF;

/// Decodes the sequence at `s[i..]`: (code point, length), or `None` if
/// it is invalid (overlong, a surrogate or beyond the limit when strict).
fn decode(s: &[u8], i: usize, strict: bool) -> Option<(u32, usize)> {
    let c = *s.get(i)? as u32;
    if c < 0x80 {
        return Some((c, 1));
    }
    if c & 0x40 == 0 {
        return None; // a continuation byte
    }
    let mut count = 0;
    let mut res: u32 = 0;
    let mut cc = c;
    while cc & 0x40 != 0 {
        count += 1;
        let b = *s.get(i + count)? as u32;
        if b & 0xC0 != 0x80 {
            return None;
        }
        res = (res << 6) | (b & 0x3F);
        cc <<= 1;
    }
    if count > 5 {
        return None;
    }
    res |= (cc & 0x7F) << (count * 5);
    let limits = [!0u32, 0x80, 0x800, 0x1_0000, 0x20_0000, 0x400_0000];
    if res > MAX_UTF || res < limits[count] {
        return None;
    }
    if strict && (res > MAX_UNICODE || (0xD800..=0xDFFF).contains(&res)) {
        return None;
    }
    Some((res, count + 1))
}

/// A string position argument: negative counts from the end.
fn pos(i: i64, len: usize) -> i64 {
    if i >= 0 {
        i
    } else if (-i) as u64 > len as u64 {
        0
    } else {
        len as i64 + i + 1
    }
}

pub fn utf8_char(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let mut out = Vec::new();
    for i in 0..nargs {
        let c = check_int(vm, base, nargs, i, "char")?;
        if !(0..=MAX_UTF as i64).contains(&c) {
            return Err(arg_error(vm, i, "char", "value out of range"));
        }
        utf8_encode(c as u32, &mut out);
    }
    let v = vm.heap.str_value(&out);
    vm.rets(base + nargs, &[v])
}

pub fn utf8_codepoint(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "codepoint")?;
    let i = pos(opt_int(vm, base, nargs, 1, "codepoint", 1)?, s.len());
    let j = pos(opt_int(vm, base, nargs, 2, "codepoint", i)?, s.len());
    let lax = arg(vm, base, nargs, 3).truthy();
    if i < 1 {
        return Err(arg_error(vm, 1, "codepoint", "out of bounds"));
    }
    if j > s.len() as i64 {
        return Err(arg_error(vm, 2, "codepoint", "out of bounds"));
    }
    let mut vals = Vec::new();
    let mut p = (i - 1) as usize;
    while (p as i64) < j {
        match decode(&s, p, !lax) {
            Some((c, n)) => {
                vals.push(Value::Int(c as i64));
                p += n;
            }
            None => return Err(vm.rt_error("invalid UTF-8 code")),
        }
    }
    vm.rets(base + nargs, &vals)
}

pub fn utf8_len(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "len")?;
    let i = pos(opt_int(vm, base, nargs, 1, "len", 1)?, s.len());
    let j = pos(opt_int(vm, base, nargs, 2, "len", -1)?, s.len());
    let lax = arg(vm, base, nargs, 3).truthy();
    if i < 1 || i > s.len() as i64 + 1 {
        return Err(arg_error(vm, 1, "len", "initial position out of bounds"));
    }
    if j > s.len() as i64 {
        return Err(arg_error(vm, 2, "len", "final position out of bounds"));
    }
    let mut p = (i - 1) as usize;
    let mut n = 0i64;
    while (p as i64) < j {
        match decode(&s, p, !lax) {
            Some((_, len)) => {
                p += len;
                n += 1;
            }
            None => return vm.rets(base + nargs, &[Value::Nil, Value::Int(p as i64 + 1)]),
        }
    }
    vm.rets(base + nargs, &[Value::Int(n)])
}

pub fn utf8_offset(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "offset")?;
    let n = check_int(vm, base, nargs, 1, "offset")?;
    let default_i = if n >= 0 { 1 } else { s.len() as i64 + 1 };
    let i = pos(opt_int(vm, base, nargs, 2, "offset", default_i)?, s.len());
    if i < 1 || i > s.len() as i64 + 1 {
        return Err(arg_error(vm, 2, "offset", "position out of bounds"));
    }
    let iscont = |p: i64| p >= 0 && (p as usize) < s.len() && s[p as usize] & 0xC0 == 0x80;
    let mut posi = i - 1;
    let mut n = n;
    if n == 0 {
        while posi > 0 && iscont(posi) {
            posi -= 1;
        }
        return vm.rets(base + nargs, &[Value::Int(posi + 1)]);
    }
    if iscont(posi) {
        return Err(vm.rt_error("initial position is a continuation byte"));
    }
    if n < 0 {
        while n < 0 && posi > 0 {
            posi -= 1;
            while posi > 0 && iscont(posi) {
                posi -= 1;
            }
            n += 1;
        }
    } else {
        n -= 1;
        while n > 0 && (posi as usize) < s.len() {
            posi += 1;
            while iscont(posi) {
                posi += 1;
            }
            n -= 1;
        }
    }
    if n == 0 {
        vm.rets(base + nargs, &[Value::Int(posi + 1)])
    } else {
        vm.rets(base + nargs, &[Value::Nil])
    }
}

fn codes_iter(vm: &mut Vm, base: usize, nargs: usize, strict: bool) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "codes")?;
    let mut i = match arg(vm, base, nargs, 1) {
        Value::Int(i) => i.max(0) as usize,
        _ => 0,
    };
    // Skip the continuation bytes of the current character.
    if i > 0 {
        while i < s.len() && s[i] & 0xC0 == 0x80 {
            i += 1;
        }
    }
    if i >= s.len() {
        return vm.rets(base + nargs, &[Value::Nil]);
    }
    match decode(&s, i, strict) {
        Some((c, n)) if s.get(i + n).is_none_or(|b| b & 0xC0 != 0x80) => vm.rets(
            base + nargs,
            &[Value::Int(i as i64 + 1), Value::Int(c as i64)],
        ),
        _ => Err(vm.rt_error("invalid UTF-8 code")),
    }
}

fn codes_strict(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    codes_iter(vm, base, nargs, true)
}

fn codes_lax(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    codes_iter(vm, base, nargs, false)
}

pub fn utf8_codes(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "codes")?;
    if s.first().is_some_and(|b| b & 0xC0 == 0x80) {
        return Err(arg_error(vm, 0, "codes", "invalid UTF-8 code"));
    }
    let lax = arg(vm, base, nargs, 1).truthy();
    let (name, f): (&'static str, crate::vm::BuiltinFn) = if lax {
        ("codes_lax", codes_lax)
    } else {
        ("codes_strict", codes_strict)
    };
    let id = match vm.builtins.iter().position(|(n, _)| *n == name) {
        Some(i) => i as u32,
        None => {
            vm.builtins.push((name, f));
            (vm.builtins.len() - 1) as u32
        }
    };
    let sv = vm.heap.str_value(&s);
    vm.rets(base + nargs, &[Value::Builtin(id), sv, Value::Int(0)])
}
