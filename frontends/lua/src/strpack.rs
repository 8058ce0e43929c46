//! `string.pack`, `string.unpack` and `string.packsize`: binary
//! serialization by a format string, as lua5.4's `lstrlib.c` defines it
//! (endianness `< > =`, alignment `![n]`, integers `b B h H i[n] I[n] l L
//! j J T`, floats `f d n`, strings `c[n] s[n] z`, padding `x X`), with
//! lua5.4's error messages. Native sizes are those of x86-64 Linux.

use crate::stdlib::{arg, arg_error, check_int, check_num, check_str};
use crate::value::Value;
use crate::vm::{LResult, LuaError, Vm};

/// A format error as lua5.4 raises it: alignment and `X` problems are
/// argument errors of the format, the others plain errors.
fn fmt_error(vm: &mut Vm, fname: &str, m: &str) -> LuaError {
    if m.starts_with("format asks") || m.starts_with("invalid next option") {
        arg_error(vm, 0, fname, m)
    } else {
        vm.rt_error(m)
    }
}

/// The largest native alignment (`!` alone).
const NATIVE_ALIGN: usize = 8;
/// Bytes in a Lua integer.
const SZINT: usize = 8;
/// Largest size a format may describe (lua5.4's MAXSIZE on 64 bits is
/// larger; sizes beyond memory fail anyway).
const MAX_SIZE: usize = i32::MAX as usize;

/// One format item.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Item {
    Int {
        size: usize,
        signed: bool,
    },
    Float4,
    Float8,
    /// `c[n]`: exactly n bytes.
    Fixed(usize),
    /// `s[n]`: a length of n bytes, then the string.
    Sized(usize),
    /// `z`: zero-terminated.
    Zstr,
    /// `x`: one byte of padding.
    Pad,
    /// `X`: align to the next item's size (computed).
    Align,
    /// Endianness or alignment settings, spaces: no data.
    Nop,
}

/// A format string being read.
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
    little: bool,
    max_align: usize,
}

impl<'a> Fmt<'a> {
    fn new(s: &'a [u8]) -> Self {
        Fmt {
            s,
            i: 0,
            little: true,
            max_align: 1,
        }
    }

    fn num(&mut self) -> Option<usize> {
        if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let mut a: usize = 0;
        while let Some(d) = self.s.get(self.i).filter(|d| d.is_ascii_digit()) {
            if a > (MAX_SIZE - 9) / 10 {
                break;
            }
            a = a * 10 + (d - b'0') as usize;
            self.i += 1;
        }
        Some(a)
    }

    fn int_size(&mut self, default: usize) -> Result<usize, String> {
        let n = self.num().unwrap_or(default);
        if !(1..=16).contains(&n) {
            return Err(format!("integral size ({n}) out of limits [1,16]"));
        }
        Ok(n)
    }

    /// The next item with its size and alignment need, or None at the end.
    fn next(&mut self) -> Result<Option<(Item, usize)>, String> {
        let Some(&c) = self.s.get(self.i) else {
            return Ok(None);
        };
        self.i += 1;
        let item = match c {
            b'b' => Item::Int {
                size: 1,
                signed: true,
            },
            b'B' => Item::Int {
                size: 1,
                signed: false,
            },
            b'h' => Item::Int {
                size: 2,
                signed: true,
            },
            b'H' => Item::Int {
                size: 2,
                signed: false,
            },
            b'l' | b'j' => Item::Int {
                size: 8,
                signed: true,
            },
            b'L' | b'J' | b'T' => Item::Int {
                size: 8,
                signed: false,
            },
            b'i' => Item::Int {
                size: self.int_size(4)?,
                signed: true,
            },
            b'I' => Item::Int {
                size: self.int_size(4)?,
                signed: false,
            },
            b'f' => Item::Float4,
            b'd' | b'n' => Item::Float8,
            b'c' => match self.num() {
                Some(n) => Item::Fixed(n),
                None => return Err("missing size for format option 'c'".into()),
            },
            b's' => Item::Sized(self.int_size(8)?),
            b'z' => Item::Zstr,
            b'x' => Item::Pad,
            b'X' => Item::Align,
            b' ' => Item::Nop,
            b'<' | b'=' => {
                self.little = true;
                Item::Nop
            }
            b'>' => {
                self.little = false;
                Item::Nop
            }
            b'!' => {
                self.max_align = self.int_size(NATIVE_ALIGN)?;
                Item::Nop
            }
            c => return Err(format!("invalid format option '{}'", c as char)),
        };
        let size = match item {
            Item::Int { size, .. } | Item::Sized(size) => size,
            Item::Float4 => 4,
            Item::Float8 => 8,
            Item::Fixed(n) => n,
            Item::Pad => 1,
            _ => 0,
        };
        Ok(Some((item, size)))
    }

    /// Padding needed before an item of `size` at offset `total` (and
    /// for `X`, the item after it, which is consumed).
    fn padding(&mut self, item: Item, size: usize, total: usize) -> Result<usize, String> {
        let align = match item {
            Item::Align => {
                let save = self.i;
                let next = self.next()?;
                match next {
                    Some((Item::Fixed(_), _)) | None => {
                        return Err("invalid next option for option 'X'".into())
                    }
                    Some((_, 0)) => return Err("invalid next option for option 'X'".into()),
                    Some((Item::Sized(n), _)) => {
                        // `Xs` aligns to the size of the length.
                        let _ = save;
                        n
                    }
                    Some((_, n)) => n,
                }
            }
            Item::Int { .. } | Item::Float4 | Item::Float8 | Item::Sized(_) => size,
            _ => return Ok(0),
        };
        let align = align.min(self.max_align);
        if align <= 1 {
            return Ok(0);
        }
        if !align.is_power_of_two() {
            return Err("format asks for alignment not power of 2".into());
        }
        Ok((align - (total & (align - 1))) & (align - 1))
    }
}

fn put_int(out: &mut Vec<u8>, v: i64, size: usize, little: bool) {
    let mut bytes = Vec::with_capacity(size);
    for i in 0..size {
        bytes.push(if i < 8 {
            (v >> (8 * i)) as u8
        } else if v < 0 {
            0xff
        } else {
            0
        });
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

pub fn str_pack(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let fmt = check_str(vm, base, nargs, 0, "pack")?;
    let mut f = Fmt::new(&fmt);
    let mut out = Vec::new();
    let mut a = 1;
    loop {
        let (item, size) = match f.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(m) => return Err(fmt_error(vm, "pack", &m)),
        };
        let pad = f
            .padding(item, size, out.len())
            .map_err(|m| fmt_error(vm, "pack", &m))?;
        out.resize(out.len() + pad, 0);
        match item {
            Item::Int { size, signed } => {
                let n = check_int(vm, base, nargs, a, "pack")?;
                if size < SZINT {
                    let bits = size * 8;
                    let ok = if signed {
                        let lim = 1i64 << (bits - 1);
                        -lim <= n && n < lim
                    } else {
                        (n as u64) < (1u64 << bits)
                    };
                    if !ok {
                        let m = if signed {
                            "integer overflow"
                        } else {
                            "unsigned overflow"
                        };
                        return Err(arg_error(vm, a, "pack", m));
                    }
                }
                put_int(&mut out, n, size, f.little);
                a += 1;
            }
            Item::Float4 | Item::Float8 => {
                let x = match check_num(vm, base, nargs, a, "pack")? {
                    Value::Int(i) => i as f64,
                    Value::Float(x) => x,
                    _ => 0.0,
                };
                let mut b = if item == Item::Float4 {
                    (x as f32).to_le_bytes().to_vec()
                } else {
                    x.to_le_bytes().to_vec()
                };
                if !f.little {
                    b.reverse();
                }
                out.extend_from_slice(&b);
                a += 1;
            }
            Item::Fixed(n) => {
                let s = check_str(vm, base, nargs, a, "pack")?;
                if s.len() > n {
                    return Err(arg_error(vm, a, "pack", "string longer than given size"));
                }
                out.extend_from_slice(&s);
                out.resize(out.len() + n - s.len(), 0);
                a += 1;
            }
            Item::Sized(n) => {
                let s = check_str(vm, base, nargs, a, "pack")?;
                if n < 8 && s.len() as u64 >= 1u64 << (n * 8) {
                    return Err(arg_error(
                        vm,
                        a,
                        "pack",
                        "string length does not fit in given size",
                    ));
                }
                put_int(&mut out, s.len() as i64, n, f.little);
                out.extend_from_slice(&s);
                a += 1;
            }
            Item::Zstr => {
                let s = check_str(vm, base, nargs, a, "pack")?;
                if s.contains(&0) {
                    return Err(arg_error(vm, a, "pack", "string contains zeros"));
                }
                out.extend_from_slice(&s);
                out.push(0);
                a += 1;
            }
            Item::Pad => out.push(0),
            Item::Align | Item::Nop => {}
        }
        if out.len() > MAX_SIZE {
            return Err(vm.rt_error("resulting string too large"));
        }
    }
    let s = vm.heap.str_value(&out);
    vm.rets(base + nargs, &[s])
}

pub fn str_packsize(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let fmt = check_str(vm, base, nargs, 0, "packsize")?;
    let mut f = Fmt::new(&fmt);
    let mut total: usize = 0;
    loop {
        let (item, size) = match f.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(m) => return Err(fmt_error(vm, "packsize", &m)),
        };
        let pad = f
            .padding(item, size, total)
            .map_err(|m| fmt_error(vm, "packsize", &m))?;
        if matches!(item, Item::Sized(_) | Item::Zstr) {
            return Err(arg_error(vm, 0, "packsize", "variable-length format"));
        }
        let size = if item == Item::Align { 0 } else { size };
        if total > MAX_SIZE - pad - size.min(MAX_SIZE - pad) || pad + size > MAX_SIZE - total {
            return Err(arg_error(vm, 0, "packsize", "format result too large"));
        }
        total += pad + size;
    }
    vm.rets(base + nargs, &[Value::Int(total as i64)])
}

/// Reads a `size`-byte integer; Err if it does not fit in 64 bits.
fn get_int(b: &[u8], little: bool, signed: bool) -> Result<i64, String> {
    let size = b.len();
    let byte = |i: usize| if little { b[i] } else { b[size - 1 - i] };
    let mut v: u64 = 0;
    for i in (0..size.min(SZINT)).rev() {
        v = (v << 8) | byte(i) as u64;
    }
    if size < SZINT {
        if signed {
            let shift = 64 - 8 * size;
            return Ok(((v << shift) as i64) >> shift);
        }
        return Ok(v as i64);
    }
    if size > SZINT {
        let fill = if signed && (v as i64) < 0 { 0xff } else { 0 };
        for i in SZINT..size {
            if byte(i) != fill {
                return Err(format!("{size}-byte integer does not fit into Lua Integer"));
            }
        }
    }
    Ok(v as i64)
}

pub fn str_unpack(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let fmt = check_str(vm, base, nargs, 0, "unpack")?;
    let data = check_str(vm, base, nargs, 1, "unpack")?;
    let init = if matches!(arg(vm, base, nargs, 2), Value::Nil) {
        1
    } else {
        check_int(vm, base, nargs, 2, "unpack")?
    };
    let len = data.len() as i64;
    let pos = if init < 0 {
        if -init > len {
            0
        } else {
            len + init
        }
    } else {
        init - 1
    };
    if pos < 0 || pos > len {
        return Err(arg_error(vm, 2, "unpack", "initial position out of string"));
    }
    let mut pos = pos as usize;
    let mut f = Fmt::new(&fmt);
    let mut vals = Vec::new();
    let short = |vm: &mut Vm| arg_error(vm, 1, "unpack", "data string too short");
    loop {
        let (item, size) = match f.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(m) => return Err(fmt_error(vm, "unpack", &m)),
        };
        let pad = f
            .padding(item, size, pos)
            .map_err(|m| fmt_error(vm, "unpack", &m))?;
        let need = if item == Item::Align { 0 } else { size };
        if pad > data.len() - pos || need > data.len() - pos - pad {
            return Err(short(vm));
        }
        pos += pad;
        match item {
            Item::Int { size, signed } => {
                let v = get_int(&data[pos..pos + size], f.little, signed)
                    .map_err(|m| vm.rt_error(m))?;
                vals.push(Value::Int(v));
                pos += size;
            }
            Item::Float4 => {
                let mut b: [u8; 4] = data[pos..pos + 4].try_into().expect("4 bytes");
                if !f.little {
                    b.reverse();
                }
                vals.push(Value::Float(f32::from_le_bytes(b) as f64));
                pos += 4;
            }
            Item::Float8 => {
                let mut b: [u8; 8] = data[pos..pos + 8].try_into().expect("8 bytes");
                if !f.little {
                    b.reverse();
                }
                vals.push(Value::Float(f64::from_le_bytes(b)));
                pos += 8;
            }
            Item::Fixed(n) => {
                let s = vm.heap.str_value(&data[pos..pos + n]);
                vals.push(s);
                pos += n;
            }
            Item::Sized(n) => {
                let l = get_int(&data[pos..pos + n], f.little, false).map_err(|m| vm.rt_error(m))?
                    as u64;
                pos += n;
                if l > (data.len() - pos) as u64 {
                    return Err(short(vm));
                }
                let s = vm.heap.str_value(&data[pos..pos + l as usize]);
                vals.push(s);
                pos += l as usize;
            }
            Item::Zstr => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(arg_error(
                        vm,
                        1,
                        "unpack",
                        "unfinished string for format 'z'",
                    ));
                };
                let s = vm.heap.str_value(&data[pos..pos + end]);
                vals.push(s);
                pos += end + 1;
            }
            Item::Pad => pos += 1,
            Item::Align | Item::Nop => {}
        }
    }
    vals.push(Value::Int(pos as i64 + 1));
    vm.rets(base + nargs, &vals)
}
