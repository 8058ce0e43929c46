//! The `io` library: files as full userdata (a [`LuaFile`] payload under
//! one shared metatable with `__name` = `"FILE*"`), the default input and
//! output, and lua5.4's read formats (`n`, `l`, `L`, `a`, a byte count).
//!
//! A file nobody can reach is closed (its pending writes flushed) by the
//! collection that frees it, and every file still open is closed when the
//! interpreter is dropped, which `run_source` does before it returns, also
//! after `os.exit`. Standard output writes to the interpreter's output
//! (`Vm::out`), so captured output and `print` interleave correctly.
//!
//! Every read is bounded: a line, an `"a"` read or a byte count that would
//! produce a string longer than [`MAX_READ`] bytes fails with the Lua error
//! "not enough memory" (reading `/dev/zero` ends instead of growing).

use crate::heap::Userdata;
use crate::stdlib::{arg, arg_error, bind, check_int, check_str, io_error_text, new_lib, reg};
use crate::table::Table;
use crate::value::{fmt_g, TableRef, UdRef, Value};
use crate::vm::{LResult, Vm};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

/// The longest string one read may produce (256 MiB).
pub const MAX_READ: usize = 256 << 20;

/// How many bytes a disk file buffers before it writes or after it reads.
const BUF: usize = 1 << 16;

/// Where a file's bytes go and come from.
enum Handle {
    Stdin,
    Stdout,
    Stderr,
    Disk(File),
}

/// An `io` file: its handle (none once closed), the bytes read ahead and
/// not yet consumed, and the bytes written and not yet flushed. At most
/// one of the two buffers is non-empty: reading flushes the writes, and
/// writing gives back the read-ahead by seeking.
pub struct LuaFile {
    handle: Option<Handle>,
    /// Opened for writing (C's streams refuse writes to a read-only file
    /// at once, before any buffering).
    writable: bool,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
}

impl Drop for LuaFile {
    fn drop(&mut self) {
        let _ = self.flush_writes();
    }
}

impl LuaFile {
    fn new(handle: Handle, writable: bool) -> Self {
        LuaFile {
            handle: Some(handle),
            writable,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
        }
    }

    fn is_standard(&self) -> bool {
        !matches!(self.handle, Some(Handle::Disk(_)) | None)
    }

    fn flush_writes(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = match &mut self.handle {
            Some(Handle::Disk(f)) => f.write_all(&self.wbuf),
            _ => Ok(()),
        };
        self.wbuf.clear();
        r
    }

    /// Drops the read-ahead, moving the file position back to the first
    /// byte not consumed.
    fn unread(&mut self) -> std::io::Result<()> {
        let ahead = (self.rbuf.len() - self.rpos) as i64;
        self.rbuf.clear();
        self.rpos = 0;
        if ahead > 0 {
            if let Some(Handle::Disk(f)) = &mut self.handle {
                f.seek(SeekFrom::Current(-ahead))?;
            }
        }
        Ok(())
    }

    /// Makes read-ahead available; false at end of file.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.rpos < self.rbuf.len() {
            return Ok(true);
        }
        self.flush_writes()?;
        self.rbuf.resize(BUF, 0);
        self.rpos = 0;
        let n = loop {
            let r = match &mut self.handle {
                Some(Handle::Disk(f)) => f.read(&mut self.rbuf),
                Some(Handle::Stdin) => std::io::stdin().read(&mut self.rbuf),
                _ => Err(std::io::Error::from_raw_os_error(9)),
            };
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.rbuf.clear();
                    return Err(e);
                }
                Ok(n) => break n,
            }
        };
        self.rbuf.truncate(n);
        Ok(n > 0)
    }

    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        Ok(if self.fill()? {
            Some(self.rbuf[self.rpos])
        } else {
            None
        })
    }

    /// Up to `n` bytes (fewer at end of file).
    fn read_chars(&mut self, n: usize, cap: usize) -> std::io::Result<Result<Vec<u8>, ()>> {
        let mut out = Vec::new();
        while out.len() < n && self.fill()? {
            let take = (n - out.len()).min(self.rbuf.len() - self.rpos);
            if out.len() + take > cap {
                return Ok(Err(()));
            }
            out.extend_from_slice(&self.rbuf[self.rpos..self.rpos + take]);
            self.rpos += take;
        }
        Ok(Ok(out))
    }

    /// A line, with its newline when `keep`; `None` at end of file.
    fn read_line(
        &mut self,
        keep: bool,
        cap: usize,
    ) -> std::io::Result<Result<Option<Vec<u8>>, ()>> {
        let mut out = Vec::new();
        let mut newline = false;
        while self.fill()? {
            let avail = &self.rbuf[self.rpos..];
            let (take, found) = match avail.iter().position(|&c| c == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if out.len() + take > cap {
                return Ok(Err(()));
            }
            out.extend_from_slice(&avail[..take]);
            self.rpos += take;
            if found {
                newline = true;
                break;
            }
        }
        if newline && !keep {
            out.pop();
        }
        Ok(Ok(if newline || !out.is_empty() {
            Some(out)
        } else {
            None
        }))
    }

    /// Consumes the next byte into `num` if it is in `set`.
    fn accept(&mut self, num: &mut Numeral, set: &[u8]) -> std::io::Result<bool> {
        match self.peek()? {
            Some(c) if set.contains(&c) => {
                if num.text.len() >= Numeral::MAX_LEN {
                    num.too_long = true;
                    return Ok(false);
                }
                num.text.push(c);
                self.rpos += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn accept_digits(&mut self, num: &mut Numeral, hex: bool) -> std::io::Result<usize> {
        let set: &[u8] = if hex {
            b"0123456789abcdefABCDEF"
        } else {
            b"0123456789"
        };
        let mut n = 0;
        while self.accept(num, set)? {
            n += 1;
        }
        Ok(n)
    }

    /// A numeral as lua5.4's `l_getn` reads it (the byte after it left
    /// unread); `None` if it is not a number.
    fn read_number(&mut self) -> std::io::Result<Option<Value>> {
        while let Some(c) = self.peek()? {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                self.rpos += 1;
            } else {
                break;
            }
        }
        let num = &mut Numeral::default();
        self.accept(num, b"-+")?;
        let mut count = 0;
        let mut hex = false;
        if self.accept(num, b"0")? {
            if self.accept(num, b"xX")? {
                hex = true;
            } else {
                count = 1;
            }
        }
        count += self.accept_digits(num, hex)?;
        if self.accept(num, b".")? {
            count += self.accept_digits(num, hex)?;
        }
        if count > 0 && self.accept(num, if hex { b"pP" } else { b"eE" })? {
            self.accept(num, b"-+")?;
            self.accept_digits(num, false)?;
        }
        if num.too_long {
            return Ok(None);
        }
        Ok(crate::value::str_to_number(&num.text))
    }

    /// The rest of the file.
    fn read_all(&mut self, cap: usize) -> std::io::Result<Result<Vec<u8>, ()>> {
        self.read_chars(usize::MAX, cap)
    }

    /// Writes `bytes`; standard output goes to `out`.
    fn write(&mut self, bytes: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
        match &mut self.handle {
            Some(Handle::Stdout) => out.write_all(bytes),
            Some(Handle::Stderr) => std::io::stderr().write_all(bytes),
            Some(Handle::Stdin) => Err(std::io::Error::from_raw_os_error(9)),
            Some(Handle::Disk(_)) if !self.writable => Err(std::io::Error::from_raw_os_error(9)),
            Some(Handle::Disk(_)) => {
                if self.rpos < self.rbuf.len() {
                    self.unread()?;
                }
                self.rbuf.clear();
                self.rpos = 0;
                self.wbuf.extend_from_slice(bytes);
                if self.wbuf.len() >= BUF {
                    self.flush_writes()?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn flush(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        match &mut self.handle {
            Some(Handle::Stdout) => out.flush(),
            Some(Handle::Disk(_)) => {
                self.flush_writes()?;
                match &mut self.handle {
                    Some(Handle::Disk(f)) => f.flush(),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match &mut self.handle {
            Some(Handle::Disk(_)) => {
                self.flush_writes()?;
                let ahead = (self.rbuf.len() - self.rpos) as i64;
                self.rbuf.clear();
                self.rpos = 0;
                let to = match to {
                    SeekFrom::Current(d) => SeekFrom::Current(d - ahead),
                    other => other,
                };
                match &mut self.handle {
                    Some(Handle::Disk(f)) => f.seek(to),
                    _ => Ok(0),
                }
            }
            // Standard streams are pipes or terminals to lua5.4's callers.
            _ => Err(std::io::Error::from_raw_os_error(29)),
        }
    }

    fn close(&mut self) -> std::io::Result<()> {
        let r = self.flush_writes();
        self.handle = None;
        r
    }
}

/// A numeral being read by `read("n")`.
#[derive(Default)]
struct Numeral {
    text: Vec<u8>,
    /// It passed [`Numeral::MAX_LEN`]: not a number (as lua5.4).
    too_long: bool,
}

impl Numeral {
    /// lua5.4's `L_MAXLENNUM`.
    const MAX_LEN: usize = 200;
}

// ---------- the library's state ----------

fn state(vm: &Vm) -> TableRef {
    vm.lib_state.expect("the io library is open")
}

fn state_get(vm: &mut Vm, key: &str) -> Value {
    let k = vm.heap.str_value(key.as_bytes());
    let s = state(vm);
    vm.heap.table(s).get(k)
}

fn state_set(vm: &mut Vm, key: &str, v: Value) {
    let k = vm.heap.str_value(key.as_bytes());
    let s = state(vm);
    vm.heap.table_mut(s).set(k, v);
}

fn new_file(vm: &mut Vm, h: Handle, writable: bool) -> Value {
    let meta = match state_get(vm, "meta") {
        Value::Table(t) => Some(t),
        _ => None,
    };
    let u = vm.heap.new_userdata(Userdata {
        meta,
        data: Box::new(LuaFile::new(h, writable)),
    });
    Value::Userdata(u)
}

/// The file `v` is, if it is one (open or closed).
fn as_file(vm: &Vm, v: Value) -> Option<UdRef> {
    match v {
        Value::Userdata(u) if vm.heap.userdata(u).data.is::<LuaFile>() => Some(u),
        _ => None,
    }
}

fn file_mut(vm: &mut Vm, u: UdRef) -> &mut LuaFile {
    vm.heap
        .userdata_mut(u)
        .data
        .downcast_mut::<LuaFile>()
        .expect("checked by as_file")
}

fn is_open(vm: &mut Vm, u: UdRef) -> bool {
    file_mut(vm, u).handle.is_some()
}

/// Argument `i` as a file (open or closed), as lua5.4's `luaL_checkudata`.
fn check_file(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<UdRef> {
    match as_file(vm, arg(vm, base, nargs, i)) {
        Some(u) => Ok(u),
        None => {
            let got = if i >= nargs {
                "no value".to_string()
            } else {
                vm.type_name_meta(vm.stack[base + i])
            };
            Err(arg_error(vm, i, f, &format!("FILE* expected, got {got}")))
        }
    }
}

/// Argument `i` as an open file (lua5.4's `tofile`).
fn check_open(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<UdRef> {
    let u = check_file(vm, base, nargs, i, f)?;
    if is_open(vm, u) {
        Ok(u)
    } else {
        Err(vm.rt_error("attempt to use a closed file"))
    }
}

/// lua5.4's `luaL_fileresult` for a failure: nil, "NAME: message" (or the
/// message alone), errno. (`os.remove` and `os.rename` answer so too.)
pub(crate) fn failure(
    vm: &mut Vm,
    at: usize,
    name: Option<&[u8]>,
    e: &std::io::Error,
) -> LResult<(usize, usize)> {
    let mut msg = Vec::new();
    if let Some(n) = name {
        msg.extend_from_slice(n);
        msg.extend_from_slice(b": ");
    }
    msg.extend_from_slice(io_error_text(e).as_bytes());
    let m = vm.heap.str_value(&msg);
    let code = Value::Int(e.raw_os_error().unwrap_or(0) as i64);
    vm.rets(at, &[Value::Nil, m, code])
}

/// Opens `name` with a C `fopen` mode; `None` if the mode is not one
/// lua5.4 accepts (`[rwa]%+?b*`).
fn open_path(name: &[u8], mode: &[u8]) -> Option<std::io::Result<File>> {
    let (first, rest) = mode.split_first()?;
    let plus = rest.first() == Some(&b'+');
    let rest = if plus { &rest[1..] } else { rest };
    if !rest.iter().all(|&c| c == b'b') {
        return None;
    }
    let mut o = std::fs::OpenOptions::new();
    match first {
        b'r' => o.read(true).write(plus),
        b'w' => o.write(true).create(true).truncate(true).read(plus),
        b'a' => o.append(true).create(true).read(plus),
        _ => return None,
    };
    let path = String::from_utf8_lossy(name).into_owned();
    Some(o.open(path))
}

/// Opens `name` or raises lua5.4's "cannot open file" error.
fn open_or_error(vm: &mut Vm, name: &[u8], mode: &[u8]) -> LResult<Value> {
    match open_path(name, mode) {
        Some(Ok(f)) => Ok(new_file(vm, Handle::Disk(f), mode != b"r")),
        Some(Err(e)) => Err(vm.rt_error(format!(
            "cannot open file '{}' ({})",
            String::from_utf8_lossy(name),
            io_error_text(&e)
        ))),
        None => Err(vm.rt_error("invalid mode")),
    }
}

// ---------- reading and writing ----------

/// One read format.
enum Format {
    Number,
    Line { keep: bool },
    All,
    Count(usize),
}

fn parse_format(vm: &mut Vm, v: Value, argn: usize) -> LResult<Format> {
    match v {
        Value::Int(_) | Value::Float(_) => {
            let n = match v {
                Value::Int(n) => n,
                Value::Float(f) => match crate::value::float_to_int_exact(f) {
                    Some(n) => n,
                    None => {
                        return Err(arg_error(
                            vm,
                            argn,
                            "read",
                            "number has no integer representation",
                        ))
                    }
                },
                _ => 0,
            };
            Ok(Format::Count(n.max(0) as usize))
        }
        Value::Str(s) => {
            let b = vm.heap.str_bytes(s);
            let b = b.strip_prefix(b"*").unwrap_or(b);
            match b.first() {
                Some(b'n') => Ok(Format::Number),
                Some(b'l') => Ok(Format::Line { keep: false }),
                Some(b'L') => Ok(Format::Line { keep: true }),
                Some(b'a') => Ok(Format::All),
                _ => Err(arg_error(vm, argn, "read", "invalid format")),
            }
        }
        _ => {
            let got = vm.type_name_meta(v);
            Err(arg_error(
                vm,
                argn,
                "read",
                &format!("string expected, got {got}"),
            ))
        }
    }
}

/// Reads `formats` from `file` (lua5.4's `g_read`): the values read, up to
/// and including a nil for the first that failed; nil, message, errno on
/// an I/O error. `first_arg` numbers the formats in argument errors.
fn read_formats(
    vm: &mut Vm,
    file: UdRef,
    formats: &[Value],
    first_arg: usize,
    at: usize,
) -> LResult<(usize, usize)> {
    let mut parsed = Vec::with_capacity(formats.len().max(1));
    if formats.is_empty() {
        parsed.push(Format::Line { keep: false });
    }
    for (i, &v) in formats.iter().enumerate() {
        parsed.push(parse_format(vm, v, first_arg + i)?);
    }
    let mut results = Vec::with_capacity(parsed.len());
    for fmt in parsed {
        let f = file_mut(vm, file);
        // Ok(Ok(Some)): a value; Ok(Ok(None)): this format failed;
        // Ok(Err(())): the string would pass MAX_READ.
        let got: std::io::Result<Result<Option<Read1>, ()>> = match fmt {
            Format::Number => f.read_number().map(|n| Ok(n.map(Read1::Num))),
            Format::Line { keep } => f
                .read_line(keep, MAX_READ)
                .map(|r| r.map(|l| l.map(Read1::Bytes))),
            Format::All => f
                .read_all(MAX_READ)
                .map(|r| r.map(|b| Some(Read1::Bytes(b)))),
            Format::Count(0) => f.peek().map(|c| Ok(c.map(|_| Read1::Bytes(Vec::new())))),
            Format::Count(n) => f.read_chars(n, MAX_READ).map(|r| {
                r.map(|b| {
                    if b.is_empty() {
                        None
                    } else {
                        Some(Read1::Bytes(b))
                    }
                })
            }),
        };
        match got {
            Err(e) => return failure(vm, at, None, &e),
            Ok(Err(())) => return Err(vm.rt_error("not enough memory")),
            Ok(Ok(None)) => {
                results.push(Value::Nil);
                break;
            }
            Ok(Ok(Some(Read1::Num(v)))) => results.push(v),
            Ok(Ok(Some(Read1::Bytes(b)))) => {
                let v = vm.heap.str_value(&b);
                results.push(v);
            }
        }
    }
    vm.rets(at, &results)
}

/// One value read.
enum Read1 {
    Num(Value),
    Bytes(Vec<u8>),
}

/// A number as `io.write` writes it: integers in decimal, floats as `%.14g`.
fn write_piece(vm: &Vm, v: Value, out: &mut Vec<u8>) -> bool {
    match v {
        Value::Float(f) if f.is_finite() => {
            let mut s = String::new();
            fmt_g(f, 14, false, &mut s);
            out.extend_from_slice(s.as_bytes());
            true
        }
        Value::Float(f) => {
            let s = if f.is_nan() {
                if f.is_sign_negative() {
                    "-nan"
                } else {
                    "nan"
                }
            } else if f < 0.0 {
                "-inf"
            } else {
                "inf"
            };
            out.extend_from_slice(s.as_bytes());
            true
        }
        _ => vm.concat_piece(v, out),
    }
}

/// Writes arguments `from..nargs` to `file` (lua5.4's `g_write`): the file,
/// or nil, message, errno.
fn write_args(
    vm: &mut Vm,
    file: UdRef,
    base: usize,
    nargs: usize,
    from: usize,
    argn0: usize,
) -> LResult<(usize, usize)> {
    let mut buf = Vec::new();
    for i in from..nargs {
        let v = vm.stack[base + i];
        if !write_piece(vm, v, &mut buf) {
            let got = vm.type_name_meta(v);
            return Err(arg_error(
                vm,
                argn0 + i - from,
                "write",
                &format!("string expected, got {got}"),
            ));
        }
    }
    let Vm { heap, out, .. } = vm;
    let f = heap
        .userdata_mut(file)
        .data
        .downcast_mut::<LuaFile>()
        .expect("checked by as_file");
    match f.write(&buf, out.as_mut()) {
        Ok(()) => vm.rets(base + nargs, &[Value::Userdata(file)]),
        Err(e) => failure(vm, base + nargs, None, &e),
    }
}

fn flush_file(vm: &mut Vm, file: UdRef, at: usize) -> LResult<(usize, usize)> {
    let Vm { heap, out, .. } = vm;
    let f = heap
        .userdata_mut(file)
        .data
        .downcast_mut::<LuaFile>()
        .expect("checked by as_file");
    match f.flush(out.as_mut()) {
        Ok(()) => vm.rets(at, &[Value::Bool(true)]),
        Err(e) => failure(vm, at, None, &e),
    }
}

fn close_file(vm: &mut Vm, file: UdRef, at: usize) -> LResult<(usize, usize)> {
    let f = file_mut(vm, file);
    if f.is_standard() {
        let m = vm.heap.str_value(b"cannot close standard file");
        return vm.rets(at, &[Value::Nil, m]);
    }
    match f.close() {
        Ok(()) => vm.rets(at, &[Value::Bool(true)]),
        Err(e) => failure(vm, at, None, &e),
    }
}

/// The default input or output file (`key` is "input" or "output").
fn default_file(vm: &mut Vm, key: &str) -> LResult<UdRef> {
    let v = state_get(vm, key);
    match as_file(vm, v) {
        Some(u) if is_open(vm, u) => Ok(u),
        _ => Err(vm.rt_error(format!("default {key} file is closed"))),
    }
}

// ---------- io functions ----------

fn io_write(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = default_file(vm, "output")?;
    write_args(vm, f, base, nargs, 0, 0)
}

fn io_read(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = default_file(vm, "input")?;
    let formats = vm.stack[base..base + nargs].to_vec();
    read_formats(vm, f, &formats, 0, base + nargs)
}

fn io_flush(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = default_file(vm, "output")?;
    flush_file(vm, f, base + nargs)
}

fn io_close(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = if nargs == 0 || matches!(arg(vm, base, nargs, 0), Value::Nil) {
        default_file(vm, "output")?
    } else {
        check_open(vm, base, nargs, 0, "close")?
    };
    close_file(vm, f, base + nargs)
}

fn io_type(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        return Err(arg_error(vm, 0, "type", "value expected"));
    }
    let r = match as_file(vm, vm.stack[base]) {
        Some(u) if is_open(vm, u) => vm.heap.str_value(b"file"),
        Some(_) => vm.heap.str_value(b"closed file"),
        None => Value::Nil,
    };
    vm.rets(base + nargs, &[r])
}

fn io_open(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let name = check_str(vm, base, nargs, 0, "open")?;
    let mode = match arg(vm, base, nargs, 1) {
        Value::Nil => b"r".to_vec(),
        _ => check_str(vm, base, nargs, 1, "open")?,
    };
    match open_path(&name, &mode) {
        None => Err(arg_error(vm, 1, "open", "invalid mode")),
        Some(Ok(f)) => {
            let writable = mode.contains(&b'+') || mode[0] != b'r';
            let v = new_file(vm, Handle::Disk(f), writable);
            vm.rets(base + nargs, &[v])
        }
        Some(Err(e)) => failure(vm, base + nargs, Some(&name), &e),
    }
}

/// `io.input` and `io.output`: set the default from a name or a file,
/// return the current one.
fn io_default(
    vm: &mut Vm,
    base: usize,
    nargs: usize,
    key: &str,
    mode: &[u8],
) -> LResult<(usize, usize)> {
    match arg(vm, base, nargs, 0) {
        Value::Nil => {}
        Value::Str(_) | Value::Int(_) | Value::Float(_) => {
            let name = check_str(vm, base, nargs, 0, key)?;
            let f = open_or_error(vm, &name, mode)?;
            state_set(vm, key, f);
        }
        _ => {
            let f = check_open(vm, base, nargs, 0, key)?;
            state_set(vm, key, Value::Userdata(f));
        }
    }
    let cur = state_get(vm, key);
    vm.rets(base + nargs, &[cur])
}

fn io_input(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    io_default(vm, base, nargs, "input", b"r")
}

fn io_output(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    io_default(vm, base, nargs, "output", b"w")
}

/// The iterator `io.lines` and `file:lines` return: a Lua closure bound to
/// a state table {file, close at end?, formats...}.
fn make_lines(
    vm: &mut Vm,
    file: UdRef,
    close: bool,
    formats: &[Value],
    at: usize,
) -> LResult<Value> {
    const MAX_FORMATS: usize = 250;
    if formats.len() > MAX_FORMATS {
        return Err(arg_error(
            vm,
            MAX_FORMATS + 1,
            "lines",
            "too many arguments",
        ));
    }
    let mut t = Table::with_capacity(2 + formats.len(), 0);
    t.set_int(1, Value::Userdata(file));
    t.set_int(2, Value::Bool(close));
    for (i, &v) in formats.iter().enumerate() {
        t.set_int(3 + i as i64, v);
    }
    let t = vm.heap.new_table(t);
    let id = match vm.builtins.iter().position(|(n, _)| *n == "lines_iter") {
        Some(i) => i as u32,
        None => {
            vm.builtins.push(("lines_iter", lines_iter));
            (vm.builtins.len() - 1) as u32
        }
    };
    // Rooted on the stack while the closure is made.
    vm.ensure_stack(at + 2)?;
    vm.stack[at] = Value::Table(t);
    bind(vm, Value::Builtin(id), Value::Table(t))
}

fn lines_iter(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let Value::Table(st) = arg(vm, base, nargs, 0) else {
        return Err(vm.rt_error("bad lines iterator"));
    };
    let tab = vm.heap.table(st);
    let file = tab.get(Value::Int(1));
    let close = tab.get(Value::Int(2)).truthy();
    let mut formats = Vec::new();
    let mut i = 3;
    loop {
        let v = vm.heap.table(st).get(Value::Int(i));
        if matches!(v, Value::Nil) {
            break;
        }
        formats.push(v);
        i += 1;
    }
    let Some(u) = as_file(vm, file) else {
        return Err(vm.rt_error("bad lines iterator"));
    };
    if !is_open(vm, u) {
        return Err(vm.rt_error("file is already closed"));
    }
    let at = base + nargs;
    let (start, n) = read_formats(vm, u, &formats, 0, at)?;
    if n > 0 && vm.stack[start].truthy() {
        return Ok((start, n));
    }
    if n > 1 {
        // An I/O error: its message is the second result.
        let mut msg = Vec::new();
        vm.concat_piece(vm.stack[start + 1], &mut msg);
        return Err(vm.rt_error(String::from_utf8_lossy(&msg)));
    }
    if close {
        let _ = file_mut(vm, u).close();
    }
    Ok((start, 0))
}

fn io_lines(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let formats: Vec<Value> = vm.stack[base + nargs.min(1)..base + nargs].to_vec();
    let (file, close) = match arg(vm, base, nargs, 0) {
        Value::Nil => {
            // Checked as a file argument (lua5.4's `tofile`), not as the
            // default file `io.read` uses.
            let v = state_get(vm, "input");
            match as_file(vm, v) {
                Some(u) if is_open(vm, u) => (u, false),
                _ => return Err(vm.rt_error("attempt to use a closed file")),
            }
        }
        _ => {
            let name = check_str(vm, base, nargs, 0, "lines")?;
            let f = open_or_error(vm, &name, b"r")?;
            vm.stack[base] = f;
            (as_file(vm, f).expect("a new file"), true)
        }
    };
    let at = base + nargs.max(1);
    let it = make_lines(vm, file, close, &formats, at)?;
    if close {
        // The file is the generic for's closing value.
        vm.rets(at, &[it, Value::Nil, Value::Nil, Value::Userdata(file)])
    } else {
        vm.rets(at, &[it])
    }
}

// ---------- file methods ----------

fn f_read(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = check_open(vm, base, nargs, 0, "read")?;
    let formats = vm.stack[base + 1..base + nargs.max(1)].to_vec();
    read_formats(vm, f, &formats, 0, base + nargs.max(1))
}

fn f_write(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = check_open(vm, base, nargs, 0, "write")?;
    write_args(vm, f, base, nargs, 1, 0)
}

fn f_lines(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = check_open(vm, base, nargs, 0, "lines")?;
    let formats = vm.stack[base + 1..base + nargs.max(1)].to_vec();
    let at = base + nargs.max(1);
    let it = make_lines(vm, f, false, &formats, at)?;
    vm.rets(at, &[it])
}

fn f_close(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = check_open(vm, base, nargs, 0, "close")?;
    close_file(vm, f, base + nargs)
}

fn f_flush(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = check_open(vm, base, nargs, 0, "flush")?;
    flush_file(vm, f, base + nargs)
}

fn f_seek(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = check_open(vm, base, nargs, 0, "seek")?;
    let whence = match arg(vm, base, nargs, 1) {
        Value::Nil => b"cur".to_vec(),
        _ => check_str(vm, base, nargs, 1, "seek")?,
    };
    let off = if matches!(arg(vm, base, nargs, 2), Value::Nil) {
        0
    } else {
        check_int(vm, base, nargs, 2, "seek")?
    };
    let to = match &whence[..] {
        b"set" => {
            if off < 0 {
                let e = std::io::Error::from_raw_os_error(22);
                return failure(vm, base + nargs, None, &e);
            }
            SeekFrom::Start(off as u64)
        }
        b"cur" => SeekFrom::Current(off),
        b"end" => SeekFrom::End(off),
        _ => {
            let w = String::from_utf8_lossy(&whence).into_owned();
            // Numbered as a method's argument (`f:seek`), as lua5.4 does.
            return Err(arg_error(vm, 0, "seek", &format!("invalid option '{w}'")));
        }
    };
    match file_mut(vm, f).seek(to) {
        Ok(p) => vm.rets(base + nargs, &[Value::Int(p as i64)]),
        Err(e) => failure(vm, base + nargs, None, &e),
    }
}

fn f_setvbuf(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    check_open(vm, base, nargs, 0, "setvbuf")?;
    let mode = check_str(vm, base, nargs, 1, "setvbuf")?;
    if !matches!(&mode[..], b"no" | b"full" | b"line") {
        let m = String::from_utf8_lossy(&mode).into_owned();
        return Err(arg_error(
            vm,
            0,
            "setvbuf",
            &format!("invalid option '{m}'"),
        ));
    }
    // Buffering is this library's own; the mode changes nothing.
    vm.rets(base + nargs, &[Value::Bool(true)])
}

fn f_tostring(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let f = check_file(vm, base, nargs, 0, "tostring")?;
    let s = if is_open(vm, f) {
        format!("file (0x{:08x})", 0x5a00_0000u64 + f.0 as u64 * 64)
    } else {
        "file (closed)".to_string()
    };
    let v = vm.heap.str_value(s.as_bytes());
    vm.rets(base + nargs, &[v])
}

/// `__close` and `__gc`: closes the file unless it is closed or standard.
fn f_gc(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if let Some(u) = as_file(vm, arg(vm, base, nargs, 0)) {
        let f = file_mut(vm, u);
        if !f.is_standard() {
            let _ = f.close();
        }
    }
    Ok((base, 0))
}

/// Installs `io`: the library table, the file metatable and the three
/// standard files.
pub fn open(vm: &mut Vm) {
    let st = vm.heap.new_table(Table::default());
    vm.lib_state = Some(st);
    let meta = vm.heap.new_table(Table::default());
    state_set(vm, "meta", Value::Table(meta));
    let methods = vm.heap.new_table(Table::default());
    reg(vm, methods, "read", f_read);
    reg(vm, methods, "write", f_write);
    reg(vm, methods, "lines", f_lines);
    reg(vm, methods, "close", f_close);
    reg(vm, methods, "flush", f_flush);
    reg(vm, methods, "seek", f_seek);
    reg(vm, methods, "setvbuf", f_setvbuf);
    let k = vm.heap.str_value(b"__index");
    vm.heap.table_mut(meta).set(k, Value::Table(methods));
    let k = vm.heap.str_value(b"__name");
    let v = vm.heap.str_value(b"FILE*");
    vm.heap.table_mut(meta).set(k, v);
    reg(vm, meta, "__tostring", f_tostring);
    reg(vm, meta, "__close", f_gc);
    reg(vm, meta, "__gc", f_gc);

    let io = new_lib(vm, "io");
    reg(vm, io, "write", io_write);
    reg(vm, io, "read", io_read);
    reg(vm, io, "lines", io_lines);
    reg(vm, io, "open", io_open);
    reg(vm, io, "close", io_close);
    reg(vm, io, "type", io_type);
    reg(vm, io, "input", io_input);
    reg(vm, io, "output", io_output);
    reg(vm, io, "flush", io_flush);
    for (name, h, writable) in [
        ("stdin", Handle::Stdin, false),
        ("stdout", Handle::Stdout, true),
        ("stderr", Handle::Stderr, true),
    ] {
        let f = new_file(vm, h, writable);
        let k = vm.heap.str_value(name.as_bytes());
        vm.heap.table_mut(io).set(k, f);
        match name {
            "stdin" => state_set(vm, "input", f),
            "stdout" => state_set(vm, "output", f),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_of_an_endless_file_stop_at_the_cap() {
        let Ok(zero) = File::open("/dev/zero") else {
            eprintln!("skipped: no /dev/zero");
            return;
        };
        let mut f = LuaFile::new(Handle::Disk(zero), false);
        let cap = 1 << 20;
        assert!(f.read_line(false, cap).unwrap().is_err());
        assert!(f.read_all(cap).unwrap().is_err());
        assert!(f.read_chars(cap + 1, cap).unwrap().is_err());
        assert_eq!(f.read_chars(10, cap).unwrap().unwrap(), vec![0; 10]);
    }

    #[test]
    fn numerals_are_read_as_lua_reads_them() {
        let path = std::env::temp_dir().join(format!("vssa-iolib-n-{}", std::process::id()));
        let long = "1".repeat(250);
        std::fs::write(&path, format!(" -0x1p4 .5e1 1e+ 7 {long} 3")).unwrap();
        let mut f = LuaFile::new(Handle::Disk(File::open(&path).unwrap()), false);
        let mut n = || f.read_number().unwrap();
        assert!(matches!(n(), Some(Value::Float(x)) if x == -16.0));
        assert!(matches!(n(), Some(Value::Float(x)) if x == 5.0));
        assert!(n().is_none(), "an exponent without digits");
        assert!(matches!(n(), Some(Value::Int(7))));
        assert!(n().is_none(), "longer than 200 characters");
        let _ = std::fs::remove_file(&path);
    }
}
