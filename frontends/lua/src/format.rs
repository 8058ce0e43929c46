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
            b'e' | b'E' => fmt_e(a, spec.prec.unwrap_or(6), upper),
            b'g' | b'G' => {
                let mut s = String::new();
                fmt_g(a, spec.prec.unwrap_or(6), spec.alt, &mut s);
                if upper {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            _ => fmt_hex_float(a, upper),
        }
    };
    format!("{}{}", sign_prefix(spec, neg), body)
}

/// `%a`: hexadecimal float like glibc (`0x1.8p+1`).
fn fmt_hex_float(a: f64, upper: bool) -> String {
    let s = if a == 0.0 {
        "0x0p+0".to_string()
    } else {
        let bits = a.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let mant = bits & ((1 << 52) - 1);
        let (lead, e) = if exp == 0 {
            (0, -1022)
        } else {
            (1, exp - 1023)
        };
        let mut hex = format!("{:013x}", mant);
        while hex.ends_with('0') {
            hex.pop();
        }
        if hex.is_empty() {
            format!("0x{lead}p{}{}", if e < 0 { '-' } else { '+' }, e.abs())
        } else {
            format!(
                "0x{lead}.{hex}p{}{}",
                if e < 0 { '-' } else { '+' },
                e.abs()
            )
        }
    };
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
        let mut digits = 0;
        while i < fmt.len() && fmt[i].is_ascii_digit() {
            spec.width = spec.width * 10 + (fmt[i] - b'0') as usize;
            i += 1;
            digits += 1;
        }
        if i < fmt.len() && fmt[i] == b'.' {
            i += 1;
            let mut p = 0;
            let mut pd = 0;
            while i < fmt.len() && fmt[i].is_ascii_digit() {
                p = p * 10 + (fmt[i] - b'0') as usize;
                i += 1;
                pd += 1;
            }
            if pd > 2 {
                digits = 3;
            }
            spec.prec = Some(p);
        }
        let conv = fmt.get(i).copied().unwrap_or(0);
        i += 1;
        if digits > 2 || i - start > 32 {
            return Err(vm.rt_error(
                "invalid conversion '%".to_string()
                    + &String::from_utf8_lossy(&fmt[start..i.min(fmt.len())])
                    + "' to 'format'",
            ));
        }
        argi += 1;
        if argi >= nargs && conv != 0 {
            return Err(arg_error(vm, argi, "format", "no value"));
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
                pad(&spec, (n as u64).to_string(), true, &mut out);
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
                if let Some(p) = spec.prec {
                    while body.len() < p {
                        body.insert(0, '0');
                    }
                }
                if spec.alt && n != 0 {
                    body = match conv {
                        b'x' => format!("0x{body}"),
                        b'X' => format!("0X{body}"),
                        _ => format!("0{body}"),
                    };
                }
                pad(&spec, body, spec.prec.is_none(), &mut out);
            }
            b'e' | b'E' | b'f' | b'F' | b'g' | b'G' | b'a' | b'A' => {
                let f = check_float(vm, base, nargs, argi, "format")?;
                let body = fmt_float_conv(f, conv, &spec);
                pad(&spec, body, f.is_finite(), &mut out);
            }
            b's' => {
                let v = arg(vm, base, nargs, argi);
                let mut s = tostring(vm, v)?;
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
                out.extend_from_slice(fmt_hex_float(f.abs(), false).as_bytes());
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
