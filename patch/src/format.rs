//! Patch-log records and the syntax of one patch line.
//!
//! A [`Log`] is one compilation unit's record: the address encoding, the
//! program key, the refuted guards and the patches. A patch-log *file* holds
//! several of them: see [`crate::book::LogBook`], which reads and writes the
//! file (format version 2; version 1, one unit, is still read).
//!
//! ```text
//! replace <target> <by>[ ; <addr> <type> <op> <imm> <input>...]...
//! ```
//!
//! One patch per line, so logs diff well. `docs/patch-log.md` is the full
//! specification.

use crate::book::LogBook;
use crate::model::{NewNode, Patch};
use std::fmt;
use std::path::Path;
use vssa::{Addr, BinOp, CmpOp, ConvOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Op, Type, UnOp};

/// The version of the file format this build writes (the number after
/// `vssa-patch-log`). It also reads version 1.
pub const FORMAT_VERSION: u32 = 2;

/// One compilation unit's record: what the optimizer did to one graph.
///
/// Equality compares the record, not where it came from ([`Log::is_sealed`]).
#[derive(Clone, Debug)]
pub struct Log {
    /// The address-encoding version the addresses were computed with.
    pub encoding: u32,
    /// The [`crate::program_key`] of the graph the patches were recorded on.
    pub program: Addr,
    /// Addresses of speculation guards that failed at run time (deopt
    /// decisions: "this guard is replaced by the general code"). Sorted,
    /// no duplicates (use [`Log::refute`]). Replay stops at the first patch
    /// that builds one of them: see [`crate::replay()`].
    pub refuted: Vec<Addr>,
    pub patches: Vec<Patch>,
    /// Made by a [`crate::Recorder`] in this process, from the graph's own
    /// addresses: replay may build its new nodes under their recorded
    /// addresses without hashing them again (see [`Log::is_sealed`]).
    pub(crate) sealed: bool,
}

impl PartialEq for Log {
    fn eq(&self, other: &Log) -> bool {
        self.encoding == other.encoding
            && self.program == other.program
            && self.refuted == other.refuted
            && self.patches == other.patches
    }
}

impl Eq for Log {}

/// A log that cannot be read: where and why. Displayed as `FILE:LINE: why`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogError {
    pub file: String,
    /// 1-based line, when one line is to blame.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for LogError {}

impl Log {
    /// A log of `patches` for the program with key `program`, in the
    /// current encoding, with nothing refuted.
    pub fn new(program: Addr, patches: Vec<Patch>) -> Log {
        Log {
            encoding: vssa::ENCODING_VERSION,
            program,
            refuted: Vec::new(),
            patches,
            sealed: false,
        }
    }

    /// A log as the recorder makes it: every recipe address was read off
    /// the graph that built the node, so it is the node's true address.
    pub(crate) fn sealed(program: Addr, patches: Vec<Patch>) -> Log {
        Log {
            sealed: true,
            ..Log::new(program, patches)
        }
    }

    /// Whether replay trusts the recipe addresses (made by a
    /// [`crate::Recorder`] in this process) instead of hashing every new
    /// node to check it: hashing is most of a replay's cost. A log read
    /// from a file, or built with [`Log::new`], is not sealed: its nodes are
    /// hashed, and one that does not match is a conflict. Changing the
    /// `patches` of a sealed log by hand breaks that trust: call
    /// [`Log::unseal`] first.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Makes replay check every recipe address again.
    pub fn unseal(&mut self) {
        self.sealed = false;
    }

    /// Records that the guard at `guard` failed at run time. Keeps
    /// `refuted` sorted and free of duplicates; `false` if it was there.
    pub fn refute(&mut self, guard: Addr) -> bool {
        match self.refuted.binary_search(&guard) {
            Ok(_) => false,
            Err(at) => {
                self.refuted.insert(at, guard);
                true
            }
        }
    }

    /// Whether `guard` is refuted.
    pub fn is_refuted(&self, guard: &Addr) -> bool {
        self.refuted.binary_search(guard).is_ok()
    }

    /// The file text of a patch log holding just this unit (format
    /// version 2), checksum line included.
    pub fn to_text(&self) -> String {
        crate::book::write_text(self.encoding, std::iter::once(self))
    }

    /// Reads a patch-log file that holds exactly one unit (any file of
    /// format version 1; a version-2 file with `units 1`); `file` names it
    /// in errors. A file with several units is an error: read it with
    /// [`LogBook::parse`].
    pub fn parse(bytes: &[u8], file: &str) -> Result<Log, LogError> {
        LogBook::parse(bytes, file)?
            .into_single()
            .map_err(|n| LogError {
                file: file.to_string(),
                line: Some(3),
                message: format!("the file holds {n} units, expected exactly one"),
            })
    }

    /// Reads the one-unit log at `path`: `Ok(None)` if there is no such file.
    pub fn load(path: &Path) -> Result<Option<Log>, LogError> {
        match LogBook::load(path)? {
            None => Ok(None),
            Some(book) => book.into_single().map(Some).map_err(|n| LogError {
                file: path.display().to_string(),
                line: Some(3),
                message: format!("the file holds {n} units, expected exactly one"),
            }),
        }
    }

    /// Writes the log to `path` atomically (a reader sees the old file or
    /// the new one, never a mix).
    /// Like [`LogBook::save`], it replaces only a file that holds a log.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::book::save_log_file(path, self.to_text().as_bytes())
    }
}

/// At most 40 characters of a line, for error messages.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// One patch line, without the newline.
pub fn write_patch(s: &mut String, p: &Patch) {
    s.push_str("replace ");
    s.push_str(&p.target.to_hex());
    s.push(' ');
    s.push_str(&p.by.to_hex());
    for n in &p.nodes {
        s.push_str(" ; ");
        s.push_str(&n.addr.to_hex());
        s.push(' ');
        s.push_str(&n.ty.to_string());
        s.push(' ');
        s.push_str(n.op.mnemonic());
        s.push(' ');
        match immediate(&n.op) {
            Some(v) => s.push_str(&v.to_string()),
            None => s.push('-'),
        }
        for a in &n.inputs {
            s.push(' ');
            s.push_str(&a.to_hex());
        }
    }
}

/// The one integer immediate an op carries, if any (sub-ops of `Bin`,
/// `Un`, `Cmp`, `Conv` are spelled by the mnemonic). A classed access's
/// two immediates travel as one: `class * 2^32 + (offset as u32)`.
pub(crate) fn immediate(op: &Op) -> Option<i128> {
    match *op {
        Op::ClassLoad { offset, class } | Op::ClassStore { offset, class } => {
            Some(pack_access(offset, class))
        }
        Op::Loop { key } | Op::Phi { key } => Some(key as i128),
        Op::Proj { index } => Some(index as i128),
        Op::Const { value } => Some(value as i128),
        Op::Load { offset } | Op::Store { offset } => Some(offset as i128),
        Op::Call { func } => Some(func as i128),
        Op::CallDirect { callee, sig } => Some(pack_call(callee, sig)),
        Op::CallIndirect { sig } => Some(sig.bits() as i128),
        Op::Guard { reason } => Some(reason as i128),
        Op::FrameState { resume } | Op::InlinedFrame { resume } => Some(resume as i128),
        Op::Materialize { class } => Some(class as i128),
        Op::FFits { bits, .. } => Some(bits as i128),
        _ => None,
    }
}

/// The op for a mnemonic and its immediate token (`-` for none).
pub fn parse_op(mnemonic: &str, imm: &str) -> Result<Op, String> {
    let plain = |op: Op| -> Result<Op, String> {
        if imm == "-" {
            Ok(op)
        } else {
            Err(format!(
                "`{mnemonic}` takes no immediate (write `-`), found `{imm}`"
            ))
        }
    };
    fn num<T: std::str::FromStr>(m: &str, imm: &str) -> Result<T, String> {
        imm.parse::<T>()
            .map_err(|_| format!("bad immediate `{}` for `{m}`", clip(imm)))
    }
    let m = mnemonic;
    let fits = |op: FitsOp| -> Result<Op, String> {
        let bits: u8 = num(m, imm)?;
        if !vssa::float::fits_bits_ok(bits) {
            return Err(format!("`{m}` tests 8, 16, 32 or 64 bits, not {bits}"));
        }
        Ok(Op::FFits { op, bits })
    };
    match m {
        "start" => plain(Op::Start),
        "region" => plain(Op::Region),
        "loop" => Ok(Op::Loop { key: num(m, imm)? }),
        "if" => plain(Op::If),
        "proj" => Ok(Op::Proj {
            index: num(m, imm)?,
        }),
        "return" => plain(Op::Return),
        "end" => plain(Op::End),
        "const" => Ok(Op::Const {
            value: num(m, imm)?,
        }),
        "add" => plain(Op::Bin(BinOp::Add)),
        "sub" => plain(Op::Bin(BinOp::Sub)),
        "mul" => plain(Op::Bin(BinOp::Mul)),
        "and" => plain(Op::Bin(BinOp::And)),
        "or" => plain(Op::Bin(BinOp::Or)),
        "xor" => plain(Op::Bin(BinOp::Xor)),
        "shl" => plain(Op::Bin(BinOp::Shl)),
        "ushr" => plain(Op::Bin(BinOp::Ushr)),
        "sshr" => plain(Op::Bin(BinOp::Sshr)),
        "sdiv" => plain(Op::Bin(BinOp::Sdiv)),
        "udiv" => plain(Op::Bin(BinOp::Udiv)),
        "srem" => plain(Op::Bin(BinOp::Srem)),
        "urem" => plain(Op::Bin(BinOp::Urem)),
        "neg" => plain(Op::Un(UnOp::Neg)),
        "not" => plain(Op::Un(UnOp::Not)),
        "eq" => plain(Op::Cmp(CmpOp::Eq)),
        "ne" => plain(Op::Cmp(CmpOp::Ne)),
        "slt" => plain(Op::Cmp(CmpOp::Slt)),
        "sle" => plain(Op::Cmp(CmpOp::Sle)),
        "sgt" => plain(Op::Cmp(CmpOp::Sgt)),
        "sge" => plain(Op::Cmp(CmpOp::Sge)),
        "ult" => plain(Op::Cmp(CmpOp::Ult)),
        "ule" => plain(Op::Cmp(CmpOp::Ule)),
        "ugt" => plain(Op::Cmp(CmpOp::Ugt)),
        "uge" => plain(Op::Cmp(CmpOp::Uge)),
        "uext" => plain(Op::Conv(ConvOp::Uext)),
        "sext" => plain(Op::Conv(ConvOp::Sext)),
        "trunc" => plain(Op::Conv(ConvOp::Trunc)),
        "fadd" => plain(Op::FBin(FBinOp::Add)),
        "fsub" => plain(Op::FBin(FBinOp::Sub)),
        "fmul" => plain(Op::FBin(FBinOp::Mul)),
        "fdiv" => plain(Op::FBin(FBinOp::Div)),
        "fmin" => plain(Op::FBin(FBinOp::Min)),
        "fmax" => plain(Op::FBin(FBinOp::Max)),
        "fcopysign" => plain(Op::FBin(FBinOp::Copysign)),
        "fneg" => plain(Op::FUn(FUnOp::Neg)),
        "fabs" => plain(Op::FUn(FUnOp::Abs)),
        "sqrt" => plain(Op::FUn(FUnOp::Sqrt)),
        "floor" => plain(Op::FUn(FUnOp::Floor)),
        "ceil" => plain(Op::FUn(FUnOp::Ceil)),
        "ftrunc" => plain(Op::FUn(FUnOp::Trunc)),
        "nearest" => plain(Op::FUn(FUnOp::Nearest)),
        "feq" => plain(Op::FCmp(FCmpOp::Eq)),
        "fone" => plain(Op::FCmp(FCmpOp::One)),
        "flt" => plain(Op::FCmp(FCmpOp::Lt)),
        "fle" => plain(Op::FCmp(FCmpOp::Le)),
        "fgt" => plain(Op::FCmp(FCmpOp::Gt)),
        "fge" => plain(Op::FCmp(FCmpOp::Ge)),
        "ford" => plain(Op::FCmp(FCmpOp::Ord)),
        "funo" => plain(Op::FCmp(FCmpOp::Uno)),
        "fueq" => plain(Op::FCmp(FCmpOp::Ueq)),
        "fune" => plain(Op::FCmp(FCmpOp::Une)),
        "fult" => plain(Op::FCmp(FCmpOp::Ult)),
        "fule" => plain(Op::FCmp(FCmpOp::Ule)),
        "fugt" => plain(Op::FCmp(FCmpOp::Ugt)),
        "fuge" => plain(Op::FCmp(FCmpOp::Uge)),
        "sitof" => plain(Op::FConv(FConvOp::SToF)),
        "uitof" => plain(Op::FConv(FConvOp::UToF)),
        "ftosi_sat" => plain(Op::FConv(FConvOp::FToSSat)),
        "ftoui_sat" => plain(Op::FConv(FConvOp::FToUSat)),
        "fpromote" => plain(Op::FConv(FConvOp::Promote)),
        "fdemote" => plain(Op::FConv(FConvOp::Demote)),
        "bitcast" => plain(Op::FConv(FConvOp::Bitcast)),
        "fits_trunc_s" => fits(FitsOp::TruncS),
        "fits_trunc_u" => fits(FitsOp::TruncU),
        "fits_exact_s" => fits(FitsOp::ExactS),
        "fits_exact_u" => fits(FitsOp::ExactU),
        "select" => plain(Op::Select),
        "ptradd" => plain(Op::PtrAdd),
        "phi" => Ok(Op::Phi { key: num(m, imm)? }),
        "load" => Ok(Op::Load {
            offset: num(m, imm)?,
        }),
        "store" => Ok(Op::Store {
            offset: num(m, imm)?,
        }),
        "cload" | "cstore" => {
            let (offset, class) = unpack_access(num(m, imm)?)
                .ok_or_else(|| format!("bad immediate `{}` for `{m}`", clip(imm)))?;
            Ok(if m == "cload" {
                Op::ClassLoad { offset, class }
            } else {
                Op::ClassStore { offset, class }
            })
        }
        "call" => Ok(Op::Call { func: num(m, imm)? }),
        "call_direct" => unpack_call(num(m, imm)?)
            .map(|(callee, sig)| Op::CallDirect { callee, sig })
            .ok_or_else(|| format!("bad immediate `{}` for `{m}`", clip(imm))),
        "call_indirect" => vssa::Signature::from_bits(num(m, imm)?)
            .map(|sig| Op::CallIndirect { sig })
            .ok_or_else(|| format!("bad immediate `{}` for `{m}`", clip(imm))),
        "guard" => Ok(Op::Guard {
            reason: num(m, imm)?,
        }),
        "framestate" => Ok(Op::FrameState {
            resume: num(m, imm)?,
        }),
        "inlinedframe" => Ok(Op::InlinedFrame {
            resume: num(m, imm)?,
        }),
        "materialize" => Ok(Op::Materialize {
            class: num(m, imm)?,
        }),
        "boxed" => plain(Op::Boxed),
        _ => Err(format!("unknown op `{}`", clip(m))),
    }
}

/// The one immediate of a classed access (see [`immediate`]).
pub(crate) fn pack_access(offset: i32, class: u32) -> i128 {
    (i128::from(class) << 32) | i128::from(offset as u32)
}

/// The one immediate of a direct call: `callee * 2^64 + signature bits`.
pub(crate) fn pack_call(callee: u32, sig: vssa::Signature) -> i128 {
    (i128::from(callee) << 64) | i128::from(sig.bits())
}

/// The inverse of [`pack_call`]; `None` for a value it never gives.
pub(crate) fn unpack_call(v: i128) -> Option<(u32, vssa::Signature)> {
    let callee = u32::try_from(v >> 64).ok()?;
    let sig = vssa::Signature::from_bits(v as u64)?;
    Some((callee, sig))
}

/// The inverse of [`pack_access`]; `None` for a value it never gives.
pub(crate) fn unpack_access(v: i128) -> Option<(i32, u32)> {
    let class = u32::try_from(v >> 32).ok()?;
    let offset = (v & 0xffff_ffff) as u32 as i32;
    Some((offset, class))
}

pub fn parse_type(s: &str) -> Result<Type, String> {
    match s {
        "ctrl" => Ok(Type::Ctrl),
        "mem" => Ok(Type::Mem),
        "tuple" => Ok(Type::Tuple),
        "i8" => Ok(Type::I8),
        "i16" => Ok(Type::I16),
        "i32" => Ok(Type::I32),
        "i64" => Ok(Type::I64),
        "ptr" => Ok(Type::Ptr),
        "frame" => Ok(Type::Frame),
        "f32" => Ok(Type::F32),
        "f64" => Ok(Type::F64),
        _ => Err(format!("unknown type `{}`", clip(s))),
    }
}

/// 32 lower-case hex digits to an address (the log's hot path: a log holds
/// several addresses per patch). Eight digits at a time, as bytes of a
/// `u64` (SWAR): no table, no branch per digit.
#[inline]
pub(crate) fn hex_addr(s: &[u8]) -> Option<Addr> {
    let s: &[u8; 32] = s.try_into().ok()?;
    let mut out = [0u8; 16];
    for (k, chunk) in s.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let v = hex8(x)?;
        out[4 * k..4 * k + 4].copy_from_slice(&v);
    }
    Some(Addr(out))
}

/// Eight lower-case hex digits (the bytes of `x`, first digit lowest) to
/// four bytes; `None` if any byte is not `0-9` or `a-f`.
#[inline]
fn hex8(x: u64) -> Option<[u8; 4]> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if x & HIGH != 0 {
        return None;
    }
    // Each byte is below 0x80 and each added constant at most 0x50: no
    // carry crosses a byte. The high bit of a byte of `ge(c)` says `b >= c`.
    let ge = |c: u64| (x + (0x80 - c) * ONES) & HIGH;
    let digit = ge(0x30) & !ge(0x3a);
    let letter = ge(0x61) & !ge(0x67);
    if digit | letter != HIGH {
        return None;
    }
    // Digit value: the low nibble, plus 9 for letters (bit 6 set).
    let v = (x & (0x0f * ONES)) + ((x >> 6) & ONES) * 9;
    // Byte k of `t` = digit k << 4 | digit k+1; the even bytes are the result.
    let t = ((v << 4) & (0xf0 * ONES)) | (v >> 8);
    let b = t.to_le_bytes();
    Some([b[0], b[2], b[4], b[6]])
}

/// Parses one patch line. Syntax only: whether each new node's address is
/// the hash of its parts is checked when replay builds it (that hash is
/// computed there anyway; computing it twice would double replay's cost).
///
/// A hand-written scan over the bytes: this is most of the cost of reading
/// a log (a big log has tens of thousands of lines of addresses), so it
/// reads each 32-digit address in place and allocates only the patch.
pub fn parse_patch(line: &str) -> Result<Patch, String> {
    if line.ends_with(' ') {
        return Err("the line ends with a space".into());
    }
    let mut t = Tokens {
        s: line.as_bytes(),
        at: 0,
    };
    if t.next() != Some(&b"replace"[..]) {
        return Err("expected `replace <target> <by>`".into());
    }
    let target = t.addr("target")?;
    let by = t.addr("replacement")?;
    let mut nodes = crate::PatchNodes::new();
    match t.next() {
        None => return Ok(Patch { target, by, nodes }),
        Some(b";") => {}
        Some(extra) => {
            return Err(format!(
                "unexpected `{}` after the replacement address",
                clip(&String::from_utf8_lossy(extra))
            ))
        }
    }
    loop {
        let k = nodes.len() + 1;
        let at = |m: String| format!("new node {k}: {m}");
        let addr = t.addr("node").map_err(at)?;
        let ty = parse_type(t.text().unwrap_or_default()).map_err(at)?;
        let mnemonic = t.text().ok_or_else(|| at("missing op".into()))?;
        let imm = t.text().ok_or_else(|| at("missing immediate".into()))?;
        let op = parse_op(mnemonic, imm).map_err(at)?;
        if matches!(op, Op::Loop { .. }) {
            return Err(at(
                "a loop cannot be built by a patch (its back edge is not hashed)".into(),
            ));
        }
        let mut inputs = crate::RecipeInputs::new();
        let more = loop {
            if t.done() {
                break false;
            }
            if t.peek_sep() {
                t.next();
                break true;
            }
            inputs.push(t.addr("input").map_err(at)?);
        };
        nodes.push(NewNode {
            addr,
            op,
            ty,
            inputs,
        });
        if !more {
            return Ok(Patch { target, by, nodes });
        }
    }
}

/// Space-separated tokens of one line.
struct Tokens<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Tokens<'a> {
    fn done(&self) -> bool {
        self.at >= self.s.len()
    }

    /// The next token (up to a space or the end), or `None` at the end.
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done() {
            return None;
        }
        let rest = &self.s[self.at..];
        let n = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        self.at += n + 1;
        Some(&rest[..n])
    }

    /// The next token as text (tokens are split at ASCII spaces, so each
    /// is valid UTF-8 when the line is).
    fn text(&mut self) -> Option<&'a str> {
        self.next()
            .map(|b| std::str::from_utf8(b).unwrap_or("\u{fffd}"))
    }

    /// Whether the next token is the node separator `;`.
    fn peek_sep(&self) -> bool {
        let rest = &self.s[self.at..];
        rest.first() == Some(&b';') && rest.get(1).is_none_or(|&c| c == b' ')
    }

    /// The next token as an address: 32 lower-case hex digits.
    fn addr(&mut self, what: &str) -> Result<Addr, String> {
        let rest = &self.s[self.at.min(self.s.len())..];
        // The fast path: 32 digits then a space or the end.
        if rest.len() >= 32 && rest.get(32).is_none_or(|&c| c == b' ') {
            if let Some(a) = hex_addr(&rest[..32]) {
                self.at += 33;
                return Ok(a);
            }
        }
        let tok = self.next().unwrap_or_default();
        Err(format!(
            "bad {what} address `{}` (expected 32 lower-case hex digits)",
            clip(&String::from_utf8_lossy(tok))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::recorded;

    #[test]
    fn text_round_trips() {
        let log = recorded();
        assert!(log.patches.iter().any(|p| !p.nodes.is_empty()));
        let text = log.to_text();
        assert_eq!(Log::parse(text.as_bytes(), "t").unwrap(), log);
        assert!(text.starts_with("vssa-patch-log 2\nencoding 1\nunits 1\nunit "));
        assert_eq!(text.lines().count(), 5 + log.patches.len());
    }

    #[test]
    fn every_op_prints_and_parses() {
        let ops = [
            Op::Start,
            Op::Region,
            Op::If,
            Op::Proj { index: 3 },
            Op::Return,
            Op::End,
            Op::Const { value: -5 },
            Op::Bin(BinOp::Sshr),
            Op::Un(UnOp::Not),
            Op::Cmp(CmpOp::Uge),
            Op::Conv(ConvOp::Trunc),
            Op::Select,
            Op::PtrAdd,
            Op::Phi { key: u64::MAX },
            Op::Load { offset: -7 },
            Op::Store { offset: i32::MAX },
            Op::Call { func: 9 },
            Op::Guard { reason: u32::MAX },
            Op::FrameState { resume: u64::MAX },
        ];
        let mut ops = ops.to_vec();
        ops.extend(BinOp::ALL.map(Op::Bin));
        ops.extend(FBinOp::ALL.map(Op::FBin));
        ops.extend(FUnOp::ALL.map(Op::FUn));
        ops.extend(FCmpOp::ALL.map(Op::FCmp));
        ops.extend(FConvOp::ALL.map(Op::FConv));
        for bits in [8, 16, 32, 64] {
            ops.extend(FitsOp::ALL.map(|op| Op::FFits { op, bits }));
        }
        ops.extend([
            Op::Boxed,
            Op::InlinedFrame { resume: u64::MAX },
            Op::Materialize { class: 9 },
        ]);
        for (offset, class) in [(0, 1), (-8, 7), (i32::MIN, u32::MAX), (i32::MAX, 2)] {
            ops.push(Op::ClassLoad { offset, class });
            ops.push(Op::ClassStore { offset, class });
        }
        assert!(parse_op("fits_exact_s", "7").is_err());
        assert!(parse_op("fits_exact_s", "-").is_err());
        for op in ops {
            let imm = immediate(&op).map_or("-".to_string(), |v| v.to_string());
            assert_eq!(parse_op(op.mnemonic(), &imm), Ok(op));
        }
        assert!(parse_op("add", "3").is_err());
        assert!(parse_op("const", "-").is_err());
        assert!(parse_op("proj", "-1").is_err());
        for t in Type::ALL {
            assert_eq!(parse_type(&t.to_string()), Ok(t));
        }
    }

    fn line_of(e: &LogError) -> Option<usize> {
        e.line
    }

    #[test]
    fn damage_is_named_by_line() {
        let text = recorded().to_text();
        let n = text.lines().count();
        // Truncated anywhere: an error, never a log.
        for cut in 0..text.len() {
            assert!(
                Log::parse(&text.as_bytes()[..cut], "f").is_err(),
                "cut {cut}"
            );
        }
        // Unknown version.
        let v3 = text.replacen("vssa-patch-log 2", "vssa-patch-log 9", 1);
        let e = Log::parse(v3.as_bytes(), "f").unwrap_err();
        assert_eq!(line_of(&e), Some(1));
        assert!(
            e.to_string()
                .starts_with("f:1: unsupported format version 9"),
            "{e}"
        );
        // A changed hex digit in a patch: the checksum (or address check) catches it.
        let mut bytes = text.clone().into_bytes();
        let at = text.find("\nreplace ").unwrap() + 20;
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        let e = Log::parse(&bytes, "f").unwrap_err();
        assert_eq!(line_of(&e), Some(n), "{e}");
        // A malformed line.
        let bad = text.replacen("\nreplace ", "\nreplac ", 1);
        let e = Log::parse(bad.as_bytes(), "f").unwrap_err();
        assert_eq!(line_of(&e), Some(5), "{e}");
        // Not a log at all.
        assert!(Log::parse(b"hello\n", "f").is_err());
        assert!(Log::parse(b"", "f").is_err());
    }

    #[test]
    fn a_foreign_encoding_parses_but_is_marked() {
        let mut log = recorded();
        log.encoding = 99;
        let back = Log::parse(log.to_text().as_bytes(), "f").unwrap();
        assert_eq!(back.encoding, 99);
    }

    #[test]
    fn refutes_round_trip_sorted() {
        let mut log = recorded();
        log.refute(Addr([9; 16]));
        log.refute(Addr([3; 16]));
        log.refute(Addr([9; 16]));
        assert_eq!(log.refuted, vec![Addr([3; 16]), Addr([9; 16])]);
        assert!(log.is_refuted(&Addr([3; 16])) && !log.is_refuted(&Addr([4; 16])));
        let text = log.to_text();
        assert!(text.contains(&format!("refute {}\n", Addr([3; 16]))));
        assert_eq!(Log::parse(text.as_bytes(), "t").unwrap(), log);
        // Written sorted even when the field was filled by hand.
        let mut hand = log.clone();
        hand.refuted = vec![Addr([9; 16]), Addr([3; 16]), Addr([9; 16])];
        assert_eq!(hand.to_text(), text);
    }

    #[test]
    fn hex_addresses_parse_exactly() {
        for seed in 0..64u8 {
            let a = Addr(std::array::from_fn(|i| {
                (i as u8).wrapping_mul(37) ^ seed.wrapping_mul(101)
            }));
            assert_eq!(hex_addr(a.to_hex().as_bytes()), Some(a));
        }
        assert_eq!(hex_addr(&[b'f'; 32]), Some(Addr([0xff; 16])));
        assert_eq!(hex_addr(&[b'0'; 32]), Some(Addr([0; 16])));
        let good = Addr([0x5a; 16]).to_hex().into_bytes();
        for i in 0..32 {
            for b in 0..=255u8 {
                let mut t = good.clone();
                t[i] = b;
                let valid = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
                assert_eq!(hex_addr(&t).is_some(), valid, "byte {b:#x} at {i}");
            }
        }
        assert_eq!(hex_addr(&good[..31]), None);
    }

    #[test]
    fn patch_lines_are_strict() {
        let log = recorded();
        let p = log.patches.iter().find(|p| !p.nodes.is_empty()).unwrap();
        let mut line = String::new();
        write_patch(&mut line, p);
        assert_eq!(parse_patch(&line).as_ref(), Ok(p));
        let bad = [
            format!("{line} "),
            format!("{line} ;"),
            format!("{line} ; "),
            line.replacen(" ; ", " ;  ", 1),
            line.replacen(" ; ", "  ; ", 1),
            line.replacen(" ; ", " ;", 1),
            line.replacen("replace ", "replace  ", 1),
            line.replacen("replace ", "", 1),
            line[..line.len() - 1].to_string(),
            format!("{line}0"),
            line.replacen(" ; ", " ", 1),
            line.replacen(" i64 ", " i65 ", 1),
            String::new(),
            "replace".to_string(),
        ];
        for b in &bad {
            assert!(parse_patch(b).is_err(), "accepted `{b}`");
        }
        let upper = line.to_uppercase().replacen("REPLACE", "replace", 1);
        assert!(parse_patch(&upper).is_err());
    }

    #[test]
    fn a_book_of_two_units_is_not_one_log() {
        let mut book = crate::LogBook::new();
        book.insert(Log::new(Addr([1; 16]), vec![]));
        book.insert(Log::new(Addr([2; 16]), vec![]));
        let e = Log::parse(book.to_text().as_bytes(), "b").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("2 units"), "{e}");
    }

    #[test]
    fn missing_file_is_none() {
        let p = std::env::temp_dir().join("vssa-patch-no-such-log-file");
        assert_eq!(Log::load(&p), Ok(None));
    }
}
