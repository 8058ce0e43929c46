//! The patch-log file: versioned, line-oriented, checksummed text.
//!
//! ```text
//! vssa-patch-log 1
//! encoding 1
//! program <32 hex digits>
//! patches <count>
//! replace <target> <by>[ ; <addr> <type> <op> <imm> <input>...]...
//! ...
//! checksum <64 hex digits: blake3 of every byte before this line>
//! ```
//!
//! One patch per line, so logs diff well. Every line ends with `\n`.
//! `docs/patch-log.md` is the full specification; [`Log::parse`] rejects
//! anything that does not follow it with an error naming the line.

use crate::model::{NewNode, Patch};
use std::fmt;
use std::path::Path;
use vssa::{Addr, BinOp, CmpOp, ConvOp, Op, Type, UnOp};

/// The version of this file format (the number after `vssa-patch-log`).
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &str = "vssa-patch-log";

/// A patch log: what one program's optimization did, as patches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// The address-encoding version the addresses were computed with.
    pub encoding: u32,
    /// The [`crate::program_key`] of the graph the patches were recorded on.
    pub program: Addr,
    pub patches: Vec<Patch>,
}

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
    /// current encoding.
    pub fn new(program: Addr, patches: Vec<Patch>) -> Log {
        Log {
            encoding: vssa::ENCODING_VERSION,
            program,
            patches,
        }
    }

    /// The file text, checksum line included.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(64 + self.patches.len() * 120);
        s.push_str(&format!("{MAGIC} {FORMAT_VERSION}\n"));
        s.push_str(&format!("encoding {}\n", self.encoding));
        s.push_str(&format!("program {}\n", self.program));
        s.push_str(&format!("patches {}\n", self.patches.len()));
        for p in &self.patches {
            write_patch(&mut s, p);
            s.push('\n');
        }
        let sum = blake3::hash(s.as_bytes());
        s.push_str(&format!("checksum {}\n", sum.to_hex()));
        s
    }

    /// Reads a log from `bytes`; `file` names it in errors.
    ///
    /// Checks, in order: the file ends with a complete checksum line
    /// (otherwise it is truncated), the header (magic, known format
    /// version), every patch line, the patch count, and the checksum. A log
    /// in another address encoding parses (its syntax is the same) and is
    /// then reported stale by [`crate::replay`], never applied.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Log, LogError> {
        let err = |line: Option<usize>, message: String| LogError {
            file: file.to_string(),
            line,
            message,
        };
        if bytes.is_empty() {
            return Err(err(Some(1), "empty file (not a vssa patch log)".into()));
        }
        // Lines with their byte offsets; the text after the last '\n' is
        // a partial line (a truncated file).
        let mut lines: Vec<(usize, &[u8])> = Vec::new();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                lines.push((start, &bytes[start..i]));
                start = i + 1;
            }
        }
        if start < bytes.len() {
            return Err(err(
                Some(lines.len() + 1),
                "truncated: the last line has no end (a complete log ends with its checksum line)"
                    .into(),
            ));
        }
        let text = |n: usize| -> Result<&str, LogError> {
            std::str::from_utf8(lines[n].1).map_err(|_| err(Some(n + 1), "not valid UTF-8".into()))
        };
        // The header first: a future format may end differently.
        let first = text(0)?;
        let version = match first.split_once(' ') {
            Some((MAGIC, v)) => v
                .parse::<u32>()
                .map_err(|_| err(Some(1), format!("bad format version `{v}`")))?,
            _ => {
                return Err(err(
                    Some(1),
                    format!("not a vssa patch log (expected `{MAGIC} {FORMAT_VERSION}`)"),
                ))
            }
        };
        if version != FORMAT_VERSION {
            return Err(err(
                Some(1),
                format!("unsupported format version {version} (this build reads {FORMAT_VERSION})"),
            ));
        }
        let last = lines.len() - 1;
        let last_text = text(last)?;
        let Some(sum) = last_text.strip_prefix("checksum ") else {
            return Err(err(
                Some(last + 1),
                "truncated or damaged: the log does not end with its checksum line".into(),
            ));
        };
        if lines.len() < 5 {
            return Err(err(
                Some(lines.len()),
                "truncated: the header needs 4 lines before the checksum".into(),
            ));
        }
        let field = |n: usize, key: &str| -> Result<&str, LogError> {
            let t = text(n)?;
            match t.split_once(' ') {
                Some((k, v)) if k == key => Ok(v),
                _ => Err(err(
                    Some(n + 1),
                    format!("expected `{key} ...`, found `{}`", clip(t)),
                )),
            }
        };
        let encoding = field(1, "encoding")?
            .parse::<u32>()
            .map_err(|_| err(Some(2), "bad encoding version".into()))?;
        let program = Addr::from_hex(field(2, "program")?)
            .ok_or_else(|| err(Some(3), "bad program key (expected 32 hex digits)".into()))?;
        let count = field(3, "patches")?
            .parse::<usize>()
            .map_err(|_| err(Some(4), "bad patch count".into()))?;
        let body = 4..last;
        if body.len() != count {
            return Err(err(
                Some(4),
                format!(
                    "the header says {count} patches but the file has {} patch lines",
                    body.len()
                ),
            ));
        }
        let mut patches = Vec::with_capacity(count);
        for n in body {
            let p = parse_patch(text(n)?).map_err(|m| err(Some(n + 1), m))?;
            patches.push(p);
        }
        let expected = blake3::hash(&bytes[..lines[last].0]);
        if sum != expected.to_hex().as_str() {
            return Err(err(
                Some(last + 1),
                "checksum mismatch: the log was changed or damaged after it was written".into(),
            ));
        }
        Ok(Log {
            encoding,
            program,
            patches,
        })
    }

    /// Reads the log at `path`: `Ok(None)` if there is no such file.
    pub fn load(path: &Path) -> Result<Option<Log>, LogError> {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => Log::parse(&bytes, &name).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LogError {
                file: name,
                line: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Writes the log to `path` atomically (a reader sees the old file or
    /// the new one, never a mix).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::write_atomic(path, self.to_text().as_bytes())
    }
}

/// At most 40 characters of a line, for error messages.
fn clip(s: &str) -> String {
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
/// `Un`, `Cmp`, `Conv` are spelled by the mnemonic).
fn immediate(op: &Op) -> Option<i128> {
    match *op {
        Op::Loop { key } | Op::Phi { key } => Some(key as i128),
        Op::Proj { index } => Some(index as i128),
        Op::Const { value } => Some(value as i128),
        Op::Load { offset } | Op::Store { offset } => Some(offset as i128),
        Op::Call { func } => Some(func as i128),
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
        "select" => plain(Op::Select),
        "ptradd" => plain(Op::PtrAdd),
        "phi" => Ok(Op::Phi { key: num(m, imm)? }),
        "load" => Ok(Op::Load {
            offset: num(m, imm)?,
        }),
        "store" => Ok(Op::Store {
            offset: num(m, imm)?,
        }),
        "call" => Ok(Op::Call { func: num(m, imm)? }),
        _ => Err(format!("unknown op `{}`", clip(m))),
    }
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
        _ => Err(format!("unknown type `{}`", clip(s))),
    }
}

fn parse_addr(s: &str, what: &str) -> Result<Addr, String> {
    hex_addr(s.as_bytes()).ok_or_else(|| {
        format!(
            "bad {what} address `{}` (expected 32 lower-case hex digits)",
            clip(s)
        )
    })
}

/// 32 lower-case hex digits to an address (the log's hot path: a log holds
/// several addresses per patch).
fn hex_addr(s: &[u8]) -> Option<Addr> {
    /// Digit value of each byte, 0xff for bytes that are not lower-case hex.
    const DIGIT: [u8; 256] = {
        let mut t = [0xffu8; 256];
        let mut c = 0;
        while c < 10 {
            t[b'0' as usize + c] = c as u8;
            c += 1;
        }
        let mut c = 0;
        while c < 6 {
            t[b'a' as usize + c] = 10 + c as u8;
            c += 1;
        }
        t
    };
    let s: &[u8; 32] = s.try_into().ok()?;
    let mut out = [0u8; 16];
    let mut bad = 0u8;
    for (i, byte) in out.iter_mut().enumerate() {
        let (hi, lo) = (DIGIT[s[2 * i] as usize], DIGIT[s[2 * i + 1] as usize]);
        bad |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(Addr(out))
}

/// Parses one patch line. Syntax only: whether each new node's address is
/// the hash of its parts is checked when replay builds it (that hash is
/// computed there anyway; computing it twice would double replay's cost).
pub fn parse_patch(line: &str) -> Result<Patch, String> {
    let mut groups = line.split(" ; ");
    let head = groups.next().unwrap_or_default();
    let mut t = head.split(' ');
    if t.next() != Some("replace") {
        return Err("expected `replace <target> <by>`".into());
    }
    let target = parse_addr(t.next().unwrap_or_default(), "target")?;
    let by = parse_addr(t.next().unwrap_or_default(), "replacement")?;
    if let Some(extra) = t.next() {
        return Err(format!(
            "unexpected `{}` after the replacement address",
            clip(extra)
        ));
    }
    let mut nodes = Vec::new();
    for (k, g) in groups.enumerate() {
        let at = |m: String| format!("new node {}: {m}", k + 1);
        let mut t = g.split(' ');
        let addr = parse_addr(t.next().unwrap_or_default(), "node").map_err(at)?;
        let ty = parse_type(t.next().unwrap_or_default()).map_err(at)?;
        let mnemonic = t.next().ok_or_else(|| at("missing op".into()))?;
        let imm = t.next().ok_or_else(|| at("missing immediate".into()))?;
        let op = parse_op(mnemonic, imm).map_err(at)?;
        if matches!(op, Op::Loop { .. }) {
            return Err(at(
                "a loop cannot be built by a patch (its back edge is not hashed)".into(),
            ));
        }
        let inputs = t
            .map(|s| parse_addr(s, "input"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(at)?;
        nodes.push(NewNode {
            addr,
            op,
            ty,
            inputs,
        });
    }
    Ok(Patch { target, by, nodes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Recorder;

    fn recorded() -> Log {
        let mut g = crate::model::tests::sample();
        let rec = Recorder::start(&g);
        vssa::optimize(&mut g).unwrap();
        rec.log(&g).unwrap()
    }

    #[test]
    fn text_round_trips() {
        let log = recorded();
        assert!(log.patches.iter().any(|p| !p.nodes.is_empty()));
        let text = log.to_text();
        assert_eq!(Log::parse(text.as_bytes(), "t").unwrap(), log);
        assert!(text.starts_with("vssa-patch-log 1\nencoding 1\nprogram "));
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
        ];
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
        let v2 = text.replacen("vssa-patch-log 1", "vssa-patch-log 2", 1);
        let e = Log::parse(v2.as_bytes(), "f").unwrap_err();
        assert_eq!(line_of(&e), Some(1));
        assert!(
            e.to_string()
                .starts_with("f:1: unsupported format version 2"),
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
    fn missing_file_is_none() {
        let p = std::env::temp_dir().join("vssa-patch-no-such-log-file");
        assert_eq!(Log::load(&p), Ok(None));
    }
}
