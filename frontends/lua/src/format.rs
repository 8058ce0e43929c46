//! `string.format`: C printf conversions as lua5.4 applies them
//! (`%d %i %u %c %x %X %o %e %E %f %F %g %G %a %A %q %s %%`, flags
//! `- 0 + space #`, width and precision up to two digits).

use crate::stdlib::{arg, arg_error, check_float, check_int, tostring};
use crate::value::{fmt_g, Value};
use crate::vm::{LResult, Vm};

struct Spec {
    minus: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    prec: Option<usize>,
}

fn pad(spec: &Spec, body: String, numeric: bool, out: &mut Vec<u8>) {
    let len = body.chars().count();
    if len >= spec.width {
        out.extend_from_slice(body.as_bytes());
        return;
    }
    let fill = spec.width - len;
    if spec.minus {
        out.extend_from_slice(body.as_bytes());
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if spec.zero && numeric {
        // Zeros go after the sign (and a 0x prefix).
        let (sign, rest) = match body.as_bytes().first() {
            Some(b'-' | b'+' | b' ') => body.split_at(1),
            _ => ("", body.as_str()),
        };
        let (prefix, digits) = if rest.starts_with("0x") || rest.starts_with("0X") {
            rest.split_at(2)
        } else {
            ("", rest)
        };
        out.extend_from_slice(sign.as_bytes());
        out.extend_from_slice(prefix.as_bytes());
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(digits.as_bytes());
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(body.as_bytes());
    }
}

/// The flags lua5.4 allows with conversion `conv`, and whether it takes a
/// precision (`None`: no modifiers are checked, or not a conversion).
fn allowed_modifiers(conv: u8) -> Option<(&'static [u8], bool)> {
    Some(match conv {
        b'c' | b'p' => (b"-", false),
        b's' => (b"-", true),
        b'd' | b'i' => (b"-+ 0", true),
        b'u' => (b"-0", true),
        b'o' | b'x' | b'X' => (b"-#0", true),
        b'a' | b'A' | b'e' | b'E' | b'f' | b'g' | b'G' => (b"-+ #0", true),
        _ => return None,
    })
}

/// lua5.4's `checkformat`: `spec` (after the `%`, up to the conversion) is
/// allowed flags, a width of at most two digits not starting with `0`,
/// and, if `precision`, a `.` and at most two digits.
fn spec_is_valid(spec: &[u8], flags: &[u8], precision: bool) -> bool {
    let mut k = spec.iter().take_while(|c| flags.contains(c)).count();
    let digits = |k: &mut usize| {
        for _ in 0..2 {
            if spec.get(*k).is_some_and(u8::is_ascii_digit) {
                *k += 1;
            }
        }
    };
    if spec.get(k) != Some(&b'0') {
        digits(&mut k);
        if spec.get(k) == Some(&b'.') && precision {
            k += 1;
            digits(&mut k);
        }
    }
    spec.get(k).is_some_and(u8::is_ascii_alphabetic)
}

/// An integer's digits with C's precision: at least `prec` digits, and
/// none at all for a zero with precision 0 (`%.0d` of 0 is empty).
fn with_precision(mut digits: String, prec: Option<usize>, zero: bool) -> String {
    if let Some(p) = prec {
        if p == 0 && zero {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    digits
}

fn sign_prefix(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

/// `%e` with C's exponent form (`1.500000e+00`).
fn fmt_e(f: f64, prec: usize, upper: bool) -> String {
    let s = format!("{:.*e}", prec, f);
    let (mant, exp) = s.split_at(s.find('e').unwrap_or(s.len()));
    let exp: i32 = exp.get(1..).and_then(|e| e.parse().ok()).unwrap_or(0);
    let r = format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    if upper {
        r.to_uppercase()
    } else {
        r
    }
}

fn fmt_float_conv(f: f64, conv: u8, spec: &Spec) -> String {
    let neg = f.is_sign_negative() && !f.is_nan() || (f.is_nan() && f.is_sign_negative());
    let a = f.abs();
    let upper = conv.is_ascii_uppercase();
    let body = if !f.is_finite() {
        let s = if f.is_nan() { "nan" } else { "inf" };
        if upper {
            s.to_uppercase()
        } else {
            s.to_string()
        }
    } else {
        match conv {
            b'f' | b'F' => {
                let mut s = format!("{:.*}", spec.prec.unwrap_or(6), a);
                if spec.alt && spec.prec == Some(0) {
                    s.push('.');
                }
                s
            }
            b'e' | b'E' => {
                let s = fmt_e(a, spec.prec.unwrap_or(6), upper);
                match s.find(['e', 'E']) {
                    // `%#.0e`: C keeps the point.
                    Some(i) if spec.alt && spec.prec == Some(0) => {
                        format!("{}.{}", &s[..i], &s[i..])
                    }
                    _ => s,
                }
            }
            b'g' | b'G' => {
                let mut s = String::new();
                fmt_g(a, spec.prec.unwrap_or(6), spec.alt, &mut s);
                if upper {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            _ => fmt_hex_float(a, upper, spec.prec),
        }
    };
    format!("{}{}", sign_prefix(spec, neg), body)
}

/// `%a`: hexadecimal float like glibc (`0x1.8p+1`); with a precision the
/// fraction is rounded to that many hex digits, ties to even, and the
/// leading digit may become 2 (`%.1a` of 1.96875 is `0x2.0p+0`).
fn fmt_hex_float(a: f64, upper: bool, prec: Option<usize>) -> String {
    let bits = a.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let mant = bits & ((1 << 52) - 1);
    let (lead, e) = if a == 0.0 {
        (0, 0)
    } else if exp == 0 {
        (0, -1022)
    } else {
        (1, exp - 1023)
    };
    let (lead, frac) = match prec {
        None => {
            let mut hex = format!("{mant:013x}");
            while hex.ends_with('0') {
                hex.pop();
            }
            (lead, hex)
        }
        Some(p) if p >= 13 => (lead, format!("{mant:013x}{}", "0".repeat(p - 13))),
        Some(p) => {
            let full = ((lead as u64) << 52) | mant;
            let shift = (13 - p) * 4;
            let (mut q, rem, half) = (
                full >> shift,
                full & ((1 << shift) - 1),
                1u64 << (shift - 1),
            );
            if rem > half || (rem == half && q & 1 == 1) {
                q += 1;
            }
            let digits = if p == 0 {
                String::new()
            } else {
                format!("{:0p$x}", q & ((1u64 << (p * 4)) - 1))
            };
            ((q >> (p * 4)) as i64, digits)
        }
    };
    let point = if frac.is_empty() { "" } else { "." };
    let sign = if e < 0 { '-' } else { '+' };
    let s = format!("0x{lead:x}{point}{frac}p{sign}{}", e.abs());
    if upper {
        s.to_uppercase()
    } else {
        s
    }
}

/// Formats `fmt` with the arguments after it (`stack[base + 1..]`).
pub fn format(vm: &mut Vm, fmt: &[u8], base: usize, nargs: usize) -> LResult<Vec<u8>> {
    let mut out = Vec::with_capacity(fmt.len() + 16);
    let mut i = 0;
    let mut argi = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        if i < fmt.len() && fmt[i] == b'%' {
            out.push(b'%');
            i += 1;
            continue;
        }
        let start = i;
        let mut spec = Spec {
            minus: false,
            zero: false,
            plus: false,
            space: false,
            alt: false,
            width: 0,
            prec: None,
        };
        while i < fmt.len() {
            match fmt[i] {
                b'-' => spec.minus = true,
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alt = true,
                _ => break,
            }
            i += 1;
        }
        while i < fmt.len() && fmt[i].is_ascii_digit() {
            spec.width = (spec.width * 10 + (fmt[i] - b'0') as usize).min(1 << 20);
            i += 1;
        }
        if i < fmt.len() && fmt[i] == b'.' {
            i += 1;
            let mut p = 0;
            while i < fmt.len() && fmt[i].is_ascii_digit() {
                p = (p * 10 + (fmt[i] - b'0') as usize).min(1 << 20);
                i += 1;
            }
            spec.prec = Some(p);
        }
        let conv = fmt.get(i).copied().unwrap_or(0);
        i += 1;
        argi += 1;
        if argi >= nargs && conv != 0 {
            return Err(arg_error(vm, argi, "format", "no value"));
        }
        // lua5.4's `getformat`: flags, width and precision take fewer than
        // 21 characters.
        let span = fmt[start..]
            .iter()
            .take_while(|c| b"-+ #0123456789.".contains(c))
            .count();
        if span >= 21 {
            return Err(vm.rt_error("invalid format (too long)"));
        }
        let form = &fmt[start - 1..i.min(fmt.len())];
        if let Some((flags, precision)) = allowed_modifiers(conv) {
            let plain_s = conv == b's' && form.len() == 2;
            if !plain_s && !spec_is_valid(&form[1..], flags, precision) {
                let shown = String::from_utf8_lossy(form);
                return Err(vm.rt_error(format!("invalid conversion specification: '{shown}'")));
            }
        }
        if conv == b'q' && form.len() > 2 {
            return Err(vm.rt_error("specifier '%q' cannot have modifiers"));
        }
        match conv {
            b'd' | b'i' => {
                let n = match arg(vm, base, nargs, argi) {
                    Value::Float(f) if crate::value::float_to_int_exact(f).is_none() => {
                        return Err(arg_error(
                            vm,
                            argi,
                            "format",
                            "number has no integer representation",
                        ));
                    }
                    _ => check_int(vm, base, nargs, argi, "format")?,
                };
                let mut digits = n.unsigned_abs().to_string();
                if let Some(p) = spec.prec {
                    while digits.len() < p {
                        digits.insert(0, '0');
                    }
                    if p == 0 && n == 0 {
                        digits.clear();
                    }
                }
                let body = format!("{}{}", sign_prefix(&spec, n < 0), digits);
                let numeric = spec.prec.is_none();
                pad(&spec, body, numeric, &mut out);
            }
            b'u' => {
                let n = check_int(vm, base, nargs, argi, "format")?;
                let body = with_precision((n as u64).to_string(), spec.prec, n == 0);
                pad(&spec, body, spec.prec.is_none(), &mut out);
            }
            b'c' => {
                let n = check_int(vm, base, nargs, argi, "format")?;
                let mut b = vec![n as u8];
                if spec.width > 1 {
                    let fill = vec![b' '; spec.width - 1];
                    if spec.minus {
                        b.extend(fill);
                    } else {
                        let mut f = fill;
                        f.extend(b);
                        b = f;
                    }
                }
                out.extend(b);
            }
            b'x' | b'X' | b'o' => {
                let n = check_int(vm, base, nargs, argi, "format")? as u64;
                let mut body = match conv {
                    b'x' => format!("{n:x}"),
                    b'X' => format!("{n:X}"),
                    _ => format!("{n:o}"),
                };
                body = with_precision(body, spec.prec, n == 0);
                if spec.alt && conv == b'o' && !body.starts_with('0') {
                    body.insert(0, '0');
                } else if spec.alt && n != 0 && conv != b'o' {
                    body = match conv {
                        b'x' => format!("0x{body}"),
                        _ => format!("0X{body}"),
                    };
                }
                pad(&spec, body, spec.prec.is_none(), &mut out);
            }
            b'e' | b'E' | b'f' | b'g' | b'G' | b'a' | b'A' => {
                let f = check_float(vm, base, nargs, argi, "format")?;
                let body = fmt_float_conv(f, conv, &spec);
                pad(&spec, body, f.is_finite(), &mut out);
            }
            b's' => {
                let v = arg(vm, base, nargs, argi);
                let mut s = tostring(vm, v)?;
                let plain = spec.width == 0
                    && spec.prec.is_none()
                    && !(spec.minus || spec.zero || spec.plus || spec.space || spec.alt);
                // lua5.4 hands a string with modifiers to C's `sprintf`,
                // which would stop at a zero byte.
                if !plain && s.contains(&0) {
                    return Err(arg_error(vm, argi, "format", "string contains zeros"));
                }
                if let Some(p) = spec.prec {
                    s.truncate(p);
                }
                if s.len() >= spec.width {
                    out.extend(s);
                } else {
                    let fill = spec.width - s.len();
                    if spec.minus {
                        out.extend(s);
                        out.extend(std::iter::repeat_n(b' ', fill));
                    } else {
                        out.extend(std::iter::repeat_n(b' ', fill));
                        out.extend(s);
                    }
                }
            }
            b'p' => {
                // lua5.4: an object's address, `(null)` for other values.
                let v = arg(vm, base, nargs, argi);
                let body = match crate::stdlib::pointer_of(v) {
                    Some(p) => format!("0x{p:08x}"),
                    None => "(null)".to_string(),
                };
                pad(&spec, body, false, &mut out);
            }
            b'q' => {
                let v = arg(vm, base, nargs, argi);
                if matches!(v, Value::Table(_) | Value::Func(_) | Value::Builtin(_)) {
                    return Err(arg_error(vm, argi, "format", "value has no literal form"));
                }
                quote(vm, v, &mut out);
            }
            _ => {
                let shown = String::from_utf8_lossy(&fmt[start - 1..i.min(fmt.len())]).into_owned();
                return Err(vm.rt_error(format!("invalid conversion '{shown}' to 'format'")));
            }
        }
    }
    Ok(out)
}

fn quote(vm: &Vm, v: Value, out: &mut Vec<u8>) {
    match v {
        Value::Str(s) => {
            let bytes = vm.heap.str_bytes(s);
            out.push(b'"');
            for (k, &c) in bytes.iter().enumerate() {
                match c {
                    b'"' | b'\\' => {
                        out.push(b'\\');
                        out.push(c);
                    }
                    b'\n' => out.extend_from_slice(b"\\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => {
                        if bytes.get(k + 1).is_some_and(u8::is_ascii_digit) {
                            out.extend_from_slice(b"\\000");
                        } else {
                            out.extend_from_slice(b"\\0");
                        }
                    }
                    c if c < 32 || c == 127 => {
                        if bytes.get(k + 1).is_some_and(u8::is_ascii_digit) {
                            out.extend_from_slice(format!("\\{c:03}").as_bytes());
                        } else {
                            out.extend_from_slice(format!("\\{c}").as_bytes());
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push(b'"');
        }
        Value::Int(i) => {
            if i == i64::MIN {
                out.extend_from_slice(b"0x8000000000000000");
            } else {
                out.extend_from_slice(i.to_string().as_bytes());
            }
        }
        Value::Float(f) => {
            // lua5.4's `quotefloat`: hexadecimal (`%a`), integral or not.
            if f.is_nan() {
                out.extend_from_slice(b"(0/0)");
            } else if f.is_infinite() {
                out.extend_from_slice(if f > 0.0 { b"1e9999" } else { b"-1e9999" });
            } else {
                // (`fmt_hex_float` writes the magnitude; the sign is ours.)
                if f.is_sign_negative() {
                    out.push(b'-');
                }
                out.extend_from_slice(fmt_hex_float(f.abs(), false, None).as_bytes());
            }
        }
        _ => {
            let mut b = Vec::new();
            vm.concat_piece(v, &mut b);
            if b.is_empty() {
                out.extend_from_slice(match v {
                    Value::Nil => b"nil".as_slice(),
                    Value::Bool(true) => b"true",
                    Value::Bool(false) => b"false",
                    _ => b"nil",
                });
            } else {
                out.extend(b);
            }
        }
    }
}
