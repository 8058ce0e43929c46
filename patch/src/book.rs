//! The patch-log file: one [`Log`] per compilation unit, in one file.
//!
//! A tiered JIT compiles each hot loop as its own unit, with its own graph
//! and program key; `vssa run --patch-log FILE` keeps all of them in one
//! file. A [`LogBook`] is that file in memory: unit logs keyed by program
//! key (a `BTreeMap`, so the file lists them in key order and two runs that
//! record the same units write the same bytes).
//!
//! ```text
//! vssa-patch-log 2
//! encoding <E>
//! units <N>
//! unit <program key> refuted <R> patches <P>     (N times, keys increasing)
//! refute <guard address>                         (R lines, increasing)
//! replace <target> <by>[ ; <new node>]...        (P lines)
//! ...
//! checksum <64 hex digits: blake3 of every byte before this line>
//! ```
//!
//! A version-1 file (one unit, no refutes) is read as a book of one unit;
//! runs write the binary form ([`crate::binary`]), `to_text` writes version 2.
//! `docs/patch-log.md` is the full specification.

use crate::binary::{parse_binary, write_binary, SealState, BINARY_MAGIC};
use crate::format::{clip, hex_addr, parse_patch, write_patch, Log, LogError, FORMAT_VERSION};
use crate::fsutil::{read_bounded, write_atomic_over, ReadFrom};
use crate::model::Recorder;
use crate::replay::ReplayReport;
use crate::seal::SealKey;
use crate::table::{replay_table, TableLog};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use vssa::{Addr, Graph};

const MAGIC: &str = "vssa-patch-log";

/// A patch-log file: the logs of every compilation unit of a program run,
/// keyed by program key. All units share one address encoding.
///
/// Units read from a binary file stay in the file's shape ([`TableLog`])
/// until something needs their patches spelled out ([`LogBook::unit`],
/// [`LogBook::units`]): a run that only replays them
/// ([`LogBook::replay_unit`]) never builds address-based patches.
#[derive(Clone, Debug)]
pub struct LogBook {
    encoding: u32,
    units: BTreeMap<Addr, Unit>,
}

/// One unit of a book: a log, or a log in the binary file's shape with
/// its spelled-out form made on first request.
#[derive(Clone, Debug)]
enum Unit {
    Log(Log),
    Table {
        table: Arc<TableLog>,
        log: OnceLock<Log>,
    },
}

impl Unit {
    fn log(&self) -> &Log {
        match self {
            Unit::Log(l) => l,
            Unit::Table { table, log } => log.get_or_init(|| table.to_log()),
        }
    }

    fn into_log(self) -> Log {
        match self {
            Unit::Log(l) => l,
            Unit::Table { table, log } => log.into_inner().unwrap_or_else(|| table.to_log()),
        }
    }

    /// The log, to be changed: the table form goes (it would no longer
    /// say the same).
    fn log_mut(&mut self) -> &mut Log {
        if let Unit::Table { table, log } = self {
            let l = log.take().unwrap_or_else(|| table.to_log());
            *self = Unit::Log(l);
        }
        match self {
            Unit::Log(l) => l,
            Unit::Table { .. } => unreachable!("made a log just above"),
        }
    }

    fn refuted(&self) -> &[Addr] {
        match self {
            Unit::Log(l) => &l.refuted,
            Unit::Table { table, .. } => table.refuted(),
        }
    }
}

impl PartialEq for LogBook {
    fn eq(&self, other: &LogBook) -> bool {
        self.encoding == other.encoding
            && self.units.len() == other.units.len()
            && self.units().eq(other.units())
    }
}

impl Eq for LogBook {}

impl Default for LogBook {
    fn default() -> Self {
        LogBook::new()
    }
}

impl From<Log> for LogBook {
    fn from(log: Log) -> LogBook {
        let mut b = LogBook {
            encoding: log.encoding,
            units: BTreeMap::new(),
        };
        b.units.insert(log.program, Unit::Log(log));
        b
    }
}

impl LogBook {
    /// An empty book in the current address encoding.
    pub fn new() -> LogBook {
        LogBook {
            encoding: vssa::ENCODING_VERSION,
            units: BTreeMap::new(),
        }
    }

    /// The address encoding every unit was recorded with.
    pub fn encoding(&self) -> u32 {
        self.encoding
    }

    /// The log of the unit whose graph has program key `program` (a unit
    /// read from a binary file is spelled out on the first call).
    pub fn unit(&self, program: &Addr) -> Option<&Log> {
        self.units.get(program).map(Unit::log)
    }

    /// Whether the book has a unit for program key `program`.
    pub fn contains(&self, program: &Addr) -> bool {
        self.units.contains_key(program)
    }

    /// The refuted guards of the unit for `program`, if there is one.
    pub fn refuted(&self, program: &Addr) -> Option<&[Addr]> {
        self.units.get(program).map(Unit::refuted)
    }

    /// Mutable access to one unit's log (to add a refuted guard, say).
    pub fn unit_mut(&mut self, program: &Addr) -> Option<&mut Log> {
        self.units.get_mut(program).map(Unit::log_mut)
    }

    /// Whether the book holds exactly `log` as its unit (compared in
    /// place for a unit read from a binary file).
    pub fn holds(&self, log: &Log) -> bool {
        match self.units.get(&log.program) {
            None => false,
            Some(Unit::Log(l)) => l == log,
            Some(Unit::Table { table, .. }) => table.same_as(log),
        }
    }

    /// Replays the unit whose program key is `rec`'s onto `g`, the graph
    /// `rec` was started on (see [`crate::replay()`]); `None` if the book
    /// has no such unit. A unit read from a binary file is replayed from
    /// its node table by index ([`crate::table`]).
    pub fn replay_unit(&self, g: &mut Graph, rec: &Recorder) -> Option<ReplayReport> {
        let key = rec.program();
        Some(match self.units.get(&key)? {
            Unit::Log(l) => rec.replay(g, l),
            Unit::Table { table, .. } => replay_table(g, table, key),
        })
    }

    /// Adds `log` as the unit with key `log.program`, replacing (and
    /// returning) the unit's previous log.
    ///
    /// A file has one encoding: inserting a log of another encoding than
    /// the book's drops every unit of the old encoding first (a build only
    /// records in its own encoding, and it finds logs of any other one
    /// stale, so those units could never be replayed again).
    pub fn insert(&mut self, log: Log) -> Option<Log> {
        self.make_room(log.encoding);
        self.units
            .insert(log.program, Unit::Log(log))
            .map(Unit::into_log)
    }

    /// [`LogBook::insert`] for a unit read from a binary file.
    pub(crate) fn insert_table(&mut self, table: TableLog) {
        self.make_room(table.encoding);
        let program = table.program;
        let unit = Unit::Table {
            table: Arc::new(table),
            log: OnceLock::new(),
        };
        self.units.insert(program, unit);
    }

    fn make_room(&mut self, encoding: u32) {
        if encoding != self.encoding {
            self.units.clear();
            self.encoding = encoding;
        }
    }

    /// Removes one unit's log.
    pub fn remove(&mut self, program: &Addr) -> Option<Log> {
        self.units.remove(program).map(Unit::into_log)
    }

    /// Every unit's log, in program-key order.
    pub fn units(&self) -> impl ExactSizeIterator<Item = &Log> + '_ {
        self.units.values().map(Unit::log)
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The one unit of a one-unit book, or the number of units.
    pub(crate) fn into_single(self) -> Result<Log, usize> {
        let n = self.units.len();
        match self.units.into_values().next() {
            Some(u) if n == 1 => Ok(u.into_log()),
            _ => Err(n),
        }
    }

    /// The file text (format version 2), checksum line included.
    pub fn to_text(&self) -> String {
        write_text(self.encoding, self.units())
    }

    /// The binary file (format version 3), sealed under `key` if given.
    pub fn to_binary(&self, key: Option<&SealKey>) -> Vec<u8> {
        write_binary(self.encoding, self.units(), key)
    }

    /// Writes the book to `path` in the binary form, sealed under `key` if
    /// given, atomically: a reader sees the old file or the new one, never
    /// a mix. Only replaces a writable regular file that holds a patch log
    /// (or is empty); anything else at `path` is left alone and the save
    /// fails with an error saying why.
    pub fn save(&self, path: &Path, key: Option<&SealKey>) -> std::io::Result<()> {
        save_log_file(path, &self.to_binary(key))
    }

    /// Reads the file at `path` (binary or text): `Ok(None)` if there is no
    /// such file. It must be a regular file (it is the file a save will
    /// replace) of at most [`crate::MAX_LOG_BYTES`]. No unit is sealed:
    /// see [`LogBook::load_keyed`].
    pub fn load(path: &Path) -> Result<Option<LogBook>, LogError> {
        Ok(Self::load_keyed(path, ReadFrom::RegularFile, None)?.map(|(b, _)| b))
    }

    /// Reads the log at `path`, binary or text, from a regular file or
    /// (with [`ReadFrom::AnyFile`], for viewers) also from a pipe or a
    /// device; at most [`crate::MAX_LOG_BYTES`]. Its units are sealed if
    /// it is a binary log whose seal verifies under `key`; the state of its
    /// seal comes with it.
    pub fn load_keyed(
        path: &Path,
        from: ReadFrom,
        key: Option<&SealKey>,
    ) -> Result<Option<(LogBook, SealState)>, LogError> {
        let name = path.display().to_string();
        match read_bounded(path, crate::MAX_LOG_BYTES, from) {
            Ok(bytes) => LogBook::parse_keyed(&bytes, &name, key).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LogError {
                file: name,
                line: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Reads a patch-log file in any format (binary version 3, text 1 or
    /// 2); its units are sealed if it is binary and its seal verifies under
    /// `key`.
    pub fn parse_keyed(
        bytes: &[u8],
        file: &str,
        key: Option<&SealKey>,
    ) -> Result<(LogBook, SealState), LogError> {
        if bytes.starts_with(BINARY_MAGIC) {
            parse_binary(bytes, file, key)
        } else {
            Ok((LogBook::parse_text(bytes, file)?, SealState::Unsealed))
        }
    }

    /// An empty book in address encoding `encoding`.
    pub(crate) fn with_encoding(encoding: u32) -> LogBook {
        LogBook {
            encoding,
            units: BTreeMap::new(),
        }
    }

    /// Reads a patch-log file in any format (binary version 3, text 1 or
    /// 2), with no unit sealed; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<LogBook, LogError> {
        Ok(Self::parse_keyed(bytes, file, None)?.0)
    }

    /// Reads a patch-log file (format version 1 or 2); `file` names it in
    /// errors.
    ///
    /// Checks, in order: the file ends with a complete line (otherwise it
    /// is truncated), the magic and a known format version, the final
    /// checksum line, the header fields, every unit, refute and patch line
    /// together with the counts that announce them, and last the checksum.
    /// The first problem is returned as an error naming its line; nothing
    /// here panics. Units in another address encoding parse (the syntax is
    /// the same) and are then reported stale by [`crate::replay()`].
    pub fn parse_text(bytes: &[u8], file: &str) -> Result<LogBook, LogError> {
        let err = |line: usize, message: String| LogError {
            file: file.to_string(),
            line: Some(line),
            message,
        };
        if bytes.is_empty() {
            return Err(err(1, "empty file (not a vssa patch log)".into()));
        }
        // Complete lines; the text after the last '\n' is a partial line.
        let count = count_newlines(bytes);
        if bytes.last() != Some(&b'\n') {
            return Err(err(
                count + 1,
                "truncated: the last line has no end (a complete log ends with its checksum line)"
                    .into(),
            ));
        }
        // One UTF-8 check for the whole file (fast on ASCII), naming the
        // line of the first bad byte.
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = count_newlines(&bytes[..e.valid_up_to()]);
            err(line + 1, "not valid UTF-8".into())
        })?;
        // The last line: the checksum, over every byte before it.
        let last_start = text[..text.len() - 1].rfind('\n').map_or(0, |i| i + 1);
        let last = count - 1;
        let mut lines = Lines {
            rest: &text[..last_start],
            n: 0,
            last,
            file,
        };
        let first = lines.next()?;
        let version = match first.split_once(' ') {
            Some((MAGIC, v)) => v
                .parse::<u32>()
                .map_err(|_| err(1, format!("bad format version `{}`", clip(v))))?,
            _ => {
                return Err(err(
                    1,
                    format!("not a vssa patch log (expected `{MAGIC} {FORMAT_VERSION}`)"),
                ))
            }
        };
        if version != 1 && version != FORMAT_VERSION {
            return Err(err(
                1,
                format!(
                    "unsupported format version {version} (this build reads 1 and {FORMAT_VERSION} as text, 3 binary)"
                ),
            ));
        }
        let last_text = &text[last_start..text.len() - 1];
        let Some(sum) = last_text.strip_prefix("checksum ") else {
            return Err(err(
                last + 1,
                "truncated or damaged: the log does not end with its checksum line".into(),
            ));
        };
        let book = if version == 1 {
            parse_v1(&mut lines)?
        } else {
            parse_v2(&mut lines)?
        };
        let expected = blake3::hash(&bytes[..last_start]);
        if sum != expected.to_hex().as_str() {
            return Err(err(
                last + 1,
                "checksum mismatch: the log was changed or damaged after it was written".into(),
            ));
        }
        Ok(book)
    }
}

/// The number of `\n` bytes. In blocks of 255 with a byte counter, which
/// the compiler turns into wide vector compares (a plain `filter().count()`
/// widens every byte to a `usize` and showed in profiles).
fn count_newlines(b: &[u8]) -> usize {
    b.chunks(255)
        .map(|c| {
            c.iter()
                .fold(0u8, |n, &x| n.wrapping_add(u8::from(x == b'\n'))) as usize
        })
        .sum()
}

/// The lines of a file before its checksum line, read in order (0-based
/// here, 1-based in errors).
struct Lines<'a> {
    /// What is left before the checksum line; every line ends with `\n`.
    rest: &'a str,
    /// The index of the next line.
    n: usize,
    /// The index of the checksum line.
    last: usize,
    file: &'a str,
}

impl<'a> Lines<'a> {
    fn err(&self, n: usize, message: String) -> LogError {
        LogError {
            file: self.file.to_string(),
            line: Some(n + 1),
            message,
        }
    }

    /// Lines left before the checksum line.
    fn left(&self) -> usize {
        self.last - self.n
    }

    /// The next line, without its `\n`; an error naming the checksum line
    /// if there is none before it.
    fn next(&mut self) -> Result<&'a str, LogError> {
        let Some(i) = self.rest.find('\n') else {
            return Err(self.err(
                self.last,
                "truncated: the file ends before the lines its header announces".into(),
            ));
        };
        let line = &self.rest[..i];
        self.rest = &self.rest[i + 1..];
        self.n += 1;
        Ok(line)
    }

    /// The value of the next line, a `key value` line.
    fn field(&mut self, key: &str) -> Result<&'a str, LogError> {
        let t = self.next()?;
        match t.split_once(' ') {
            Some((k, v)) if k == key => Ok(v),
            _ => Err(self.err(
                self.n - 1,
                format!("expected `{key} ...`, found `{}`", clip(t)),
            )),
        }
    }

    /// The next line, a decimal number field.
    fn number<T: std::str::FromStr>(&mut self, key: &str, what: &str) -> Result<T, LogError> {
        let v = self.field(key)?;
        v.parse::<T>()
            .map_err(|_| self.err(self.n - 1, format!("bad {what} `{}`", clip(v))))
    }

    fn patch(&mut self) -> Result<crate::Patch, LogError> {
        let t = self.next()?;
        parse_patch(t).map_err(|m| self.err(self.n - 1, m))
    }
}

/// Version 1: `encoding`, `program`, `patches` header lines, patch lines.
fn parse_v1(lines: &mut Lines<'_>) -> Result<LogBook, LogError> {
    if lines.last < 4 {
        return Err(lines.err(
            lines.last,
            "truncated: the header needs 4 lines before the checksum".into(),
        ));
    }
    let encoding = lines.number::<u32>("encoding", "encoding version")?;
    let program = hex_addr(lines.field("program")?.as_bytes())
        .ok_or_else(|| lines.err(2, "bad program key (expected 32 hex digits)".into()))?;
    let count = lines.number::<usize>("patches", "patch count")?;
    if lines.left() != count {
        return Err(lines.err(
            3,
            format!(
                "the header says {count} patches but the file has {} patch lines",
                lines.left()
            ),
        ));
    }
    let mut patches = Vec::with_capacity(count);
    for _ in 0..count {
        patches.push(lines.patch()?);
    }
    Ok(LogBook::from(Log {
        encoding,
        ..Log::new(program, patches)
    }))
}

/// Version 2: `encoding`, `units`, then each unit's line, refutes, patches.
fn parse_v2(lines: &mut Lines<'_>) -> Result<LogBook, LogError> {
    if lines.last < 3 {
        return Err(lines.err(
            lines.last,
            "truncated: the header needs 3 lines before the checksum".into(),
        ));
    }
    let encoding = lines.number::<u32>("encoding", "encoding version")?;
    let units = lines.number::<usize>("units", "unit count")?;
    let mut book = LogBook {
        encoding,
        units: BTreeMap::new(),
    };
    let mut prev: Option<Addr> = None;
    for u in 0..units {
        if lines.left() == 0 {
            return Err(lines.err(
                lines.last,
                format!("truncated: the header says {units} units but the file has {u}"),
            ));
        }
        let at = lines.n;
        let (program, refutes, patches) = unit_line(lines)?;
        if prev.is_some_and(|p| p >= program) {
            return Err(lines.err(
                at,
                "unit keys must be strictly increasing (a unit is repeated or out of order)".into(),
            ));
        }
        prev = Some(program);
        let room = lines.left();
        if refutes > room || patches > room - refutes {
            return Err(lines.err(
                at,
                format!(
                    "the unit announces {refutes} refutes and {patches} patches but only {room} lines precede the checksum"
                ),
            ));
        }
        let mut refuted: Vec<Addr> = Vec::with_capacity(refutes);
        for _ in 0..refutes {
            let t = lines.next()?;
            let n = lines.n - 1;
            let a = t.strip_prefix("refute ").ok_or_else(|| {
                lines.err(n, format!("expected `refute <guard>`, found `{}`", clip(t)))
            })?;
            let a = hex_addr(a.as_bytes()).ok_or_else(|| {
                lines.err(
                    n,
                    "bad refuted guard address (expected 32 lower-case hex digits)".into(),
                )
            })?;
            if refuted.last().is_some_and(|&p| p >= a) {
                return Err(lines.err(
                    n,
                    "refuted guards must be strictly increasing (repeated or out of order)".into(),
                ));
            }
            refuted.push(a);
        }
        let mut list = Vec::with_capacity(patches);
        for _ in 0..patches {
            list.push(lines.patch()?);
        }
        book.units.insert(
            program,
            Unit::Log(Log {
                encoding,
                refuted,
                ..Log::new(program, list)
            }),
        );
    }
    if lines.left() != 0 {
        let at = lines.n;
        let t = lines.next()?;
        return Err(lines.err(
            at,
            format!(
                "expected the checksum line after the {units} announced units, found `{}`",
                clip(t)
            ),
        ));
    }
    Ok(book)
}

/// `unit <key> refuted <R> patches <P>`.
fn unit_line(lines: &mut Lines<'_>) -> Result<(Addr, usize, usize), LogError> {
    let t = lines.next()?;
    let n = lines.n - 1;
    let bad = || {
        lines.err(
            n,
            format!(
                "expected `unit <program key> refuted <count> patches <count>`, found `{}`",
                clip(t)
            ),
        )
    };
    let mut w = t.split(' ');
    if w.next() != Some("unit") {
        return Err(bad());
    }
    let key = w
        .next()
        .and_then(|k| hex_addr(k.as_bytes()))
        .ok_or_else(bad)?;
    if w.next() != Some("refuted") {
        return Err(bad());
    }
    let refutes = w
        .next()
        .and_then(|c| c.parse::<usize>().ok())
        .ok_or_else(bad)?;
    if w.next() != Some("patches") {
        return Err(bad());
    }
    let patches = w
        .next()
        .and_then(|c| c.parse::<usize>().ok())
        .ok_or_else(bad)?;
    if w.next().is_some() {
        return Err(bad());
    }
    Ok((key, refutes, patches))
}

/// The version-2 text of `units` (in the order given, which must be
/// increasing key order for a valid file), all in `encoding`.
pub(crate) fn write_text<'a>(
    encoding: u32,
    units: impl ExactSizeIterator<Item = &'a Log>,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{MAGIC} {FORMAT_VERSION}\nencoding {encoding}\nunits {}\n",
        units.len()
    ));
    for log in units {
        let sorted = log.refuted.windows(2).all(|w| w[0] < w[1]);
        let fixed: Vec<Addr>;
        let refuted = if sorted {
            &log.refuted
        } else {
            let mut v = log.refuted.clone();
            v.sort();
            v.dedup();
            fixed = v;
            &fixed
        };
        s.reserve(64 + 40 * refuted.len() + 120 * log.patches.len());
        s.push_str(&format!(
            "unit {} refuted {} patches {}\n",
            log.program,
            refuted.len(),
            log.patches.len()
        ));
        for a in refuted {
            s.push_str("refute ");
            s.push_str(&a.to_hex());
            s.push('\n');
        }
        for p in &log.patches {
            write_patch(&mut s, p);
            s.push('\n');
        }
    }
    let sum = blake3::hash(s.as_bytes());
    s.push_str(&format!("checksum {}\n", sum.to_hex()));
    s
}

/// Writes a patch-log file atomically over `path`, which must be absent,
/// empty, or start like a patch log: a save never replaces a program, a
/// document or any other file that happens to be named as the log.
pub(crate) fn save_log_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_over(path, bytes, |f| {
        let mut head = Vec::with_capacity(LOG_MAGIC.len());
        f.take(LOG_MAGIC.len() as u64).read_to_end(&mut head)?;
        if head.is_empty() || head == LOG_MAGIC {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a vssa patch log: left it alone",
            ))
        }
    })
}

/// How every patch-log file starts: [`MAGIC`] and a space.
const LOG_MAGIC: &[u8] = b"vssa-patch-log ";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::recorded;

    /// Three units: the recorded one with a refute, a copy under another
    /// key with two, and an empty one.
    fn book() -> LogBook {
        let base = recorded();
        let mut a = base.clone();
        a.refute(base.patches[0].by);
        let mut b = base.clone();
        b.program = Addr([0x11; 16]);
        b.refute(Addr([5; 16]));
        b.refute(Addr([4; 16]));
        let c = Log::new(Addr([0xee; 16]), vec![]);
        let mut book = LogBook::new();
        for l in [c, a, b] {
            book.insert(l);
        }
        book
    }

    /// The version-1 text of a one-unit log (this build no longer writes it).
    fn v1_text(log: &Log) -> String {
        let mut s = format!(
            "vssa-patch-log 1\nencoding {}\nprogram {}\npatches {}\n",
            log.encoding,
            log.program,
            log.patches.len()
        );
        for p in &log.patches {
            write_patch(&mut s, p);
            s.push('\n');
        }
        let sum = blake3::hash(s.as_bytes()).to_hex();
        s.push_str(&format!("checksum {sum}\n"));
        s
    }

    /// Recomputes the checksum of `text` (all lines but the last).
    fn resum(text: &str) -> String {
        let body = &text[..text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1)];
        format!(
            "{body}checksum {}\n",
            blake3::hash(body.as_bytes()).to_hex()
        )
    }

    #[test]
    fn a_book_round_trips_in_key_order() {
        let book = book();
        assert_eq!(book.len(), 3);
        let keys: Vec<Addr> = book.units().map(|l| l.program).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let text = book.to_text();
        assert!(
            text.starts_with("vssa-patch-log 2\nencoding 1\nunits 3\nunit "),
            "{text}"
        );
        let back = LogBook::parse(text.as_bytes(), "b").unwrap();
        assert_eq!(back, book);
        assert_eq!(back.to_text(), text);
        let lines = 4 + book
            .units()
            .map(|l| 1 + l.refuted.len() + l.patches.len())
            .sum::<usize>();
        assert_eq!(text.lines().count(), lines);
        let b = back.unit(&Addr([0x11; 16])).unwrap();
        assert_eq!(b.refuted, vec![Addr([4; 16]), Addr([5; 16])]);
        assert!(back.unit(&Addr([0x12; 16])).is_none());
        // The empty book.
        let empty = LogBook::new();
        assert!(empty.is_empty());
        assert_eq!(
            LogBook::parse(empty.to_text().as_bytes(), "e").unwrap(),
            empty
        );
    }

    #[test]
    fn insert_replaces_a_unit_and_follows_the_encoding() {
        let mut book = book();
        let key = Addr([0xee; 16]);
        let new = Log::new(key, recorded().patches);
        let old = book.insert(new.clone()).unwrap();
        assert!(old.patches.is_empty());
        assert_eq!(book.unit(&key), Some(&new));
        assert_eq!(book.len(), 3);
        book.unit_mut(&key).unwrap().refute(Addr([1; 16]));
        assert!(book.unit(&key).unwrap().is_refuted(&Addr([1; 16])));
        assert_eq!(
            book.remove(&key),
            Some({
                let mut n = new;
                n.refute(Addr([1; 16]));
                n
            })
        );
        // Another encoding: the old units go.
        let mut foreign = Log::new(Addr([3; 16]), vec![]);
        foreign.encoding = 77;
        book.insert(foreign);
        assert_eq!(book.len(), 1);
        assert_eq!(book.encoding(), 77);
        let back = LogBook::parse(book.to_text().as_bytes(), "f").unwrap();
        assert_eq!(back.units().next().unwrap().encoding, 77);
    }

    #[test]
    fn a_version_1_file_is_a_book_of_one_unit() {
        let log = recorded();
        let text = v1_text(&log);
        let book = LogBook::parse(text.as_bytes(), "v1").unwrap();
        assert_eq!(book.len(), 1);
        assert_eq!(book.unit(&log.program), Some(&log));
        assert_eq!(Log::parse(text.as_bytes(), "v1").unwrap(), log);
        // Rewritten as version 2.
        assert!(book.to_text().starts_with("vssa-patch-log 2\n"));
        // Damage in a v1 file is still named by line.
        let bad = resum(&text.replacen("\nprogram ", "\nprogramm ", 1));
        let e = LogBook::parse(bad.as_bytes(), "v1").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let short =
            resum(&text.replacen(&format!("patches {}", log.patches.len()), "patches 0", 1));
        assert_eq!(
            LogBook::parse(short.as_bytes(), "v1").unwrap_err().line,
            Some(4)
        );
    }

    /// Each structural fault, with a valid checksum, names its line.
    #[test]
    fn structural_faults_are_named_by_line() {
        let text = book().to_text();
        let lines: Vec<&str> = text.lines().collect();
        let unit_lines: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("unit "))
            .collect();
        let check = |t: String, line: usize, what: &str| {
            let e = LogBook::parse(resum(&t).as_bytes(), "s").unwrap_err();
            assert_eq!(e.line, Some(line), "{what}: {e}");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("s:{line}: ")) && !msg.contains('\n'),
                "{msg}"
            );
        };
        // Too many units announced: the checksum line is where one was expected.
        check(
            text.replacen("units 3", "units 4", 1),
            lines.len(),
            "units 4",
        );
        // Too few: the next unit line is unexpected.
        check(
            text.replacen("units 3", "units 2", 1),
            unit_lines[2] + 1,
            "units 2",
        );
        // A refute count larger than the rest of the file.
        let u = lines[unit_lines[0]];
        let big = u.replacen(" refuted ", " refuted 999", 1);
        check(text.replacen(u, &big, 1), unit_lines[0] + 1, "huge refutes");
        let huge = u.replacen(" patches ", " patches 99999999999999999999", 1);
        check(text.replacen(u, &huge, 1), unit_lines[0] + 1, "huge count");
        // Units out of order (swap the first two units' keys).
        let (k0, k1) = (&lines[unit_lines[0]][5..37], &lines[unit_lines[1]][5..37]);
        let swapped = text
            .replacen(k0, "X", 1)
            .replacen(k1, k0, 1)
            .replacen("X", k1, 1);
        check(swapped, unit_lines[1] + 1, "keys out of order");
        // A malformed unit line.
        check(
            text.replacen("\nunit ", "\nunits ", 1),
            unit_lines[0] + 1,
            "unit",
        );
        // A refute where a patch line belongs and vice versa.
        let r = lines.iter().position(|l| l.starts_with("refute ")).unwrap();
        check(
            text.replacen(
                lines[r],
                &format!("refute {}", &lines[r][7..39]).replacen("refute", "refuse", 1),
                1,
            ),
            r + 1,
            "refuse",
        );
        // Refutes out of order.
        let r2 = (0..lines.len())
            .find(|&i| {
                i > 0 && lines[i].starts_with("refute ") && lines[i - 1].starts_with("refute ")
            })
            .unwrap();
        let mut l2: Vec<&str> = lines.clone();
        l2.swap(r2 - 1, r2);
        check(l2.join("\n") + "\n", r2 + 1, "refutes out of order");
        // Unknown version, not a log.
        let e = LogBook::parse(text.replacen("log 2", "log 9", 1).as_bytes(), "s").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(LogBook::parse(b"", "s").is_err());
        assert!(LogBook::parse(b"vssa-patch-log 2\n", "s").is_err());
        assert!(LogBook::parse(b"vssa-patch-log 2\nchecksum 00\n", "s").is_err());
    }

    /// Every truncation, byte flip and line swap of a book is an error
    /// naming a line, never a panic, never a book.
    #[test]
    fn mutated_books_are_rejected() {
        let text = book().to_text().into_bytes();
        for cut in 0..text.len() {
            let e = LogBook::parse(&text[..cut], "m").unwrap_err();
            assert!(e.line.is_some(), "cut {cut}: {e}");
        }
        for at in 0..text.len() {
            for flip in [0x01u8, 0x40, 0x80] {
                let mut t = text.clone();
                t[at] ^= flip;
                let e = LogBook::parse(&t, "m").unwrap_err();
                // `2` flipped to `3` in the first line makes it a binary
                // log's magic: then the error names a byte.
                let binary = t.starts_with(BINARY_MAGIC) && e.message.starts_with("byte ");
                assert!(e.line.is_some() || binary, "byte {at} ^ {flip:#x}: {e}");
            }
        }
        let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
        for i in 0..lines.len() {
            for j in i + 1..lines.len() {
                if lines[i] == lines[j] {
                    continue;
                }
                let mut l = lines.clone();
                l.swap(i, j);
                assert!(LogBook::parse(&l.concat(), "m").is_err(), "swap {i} {j}");
            }
        }
    }

    #[test]
    fn save_and_load() {
        let dir = std::env::temp_dir().join(format!("vssa-patch-book-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("book.log");
        assert_eq!(LogBook::load(&p), Ok(None));
        let b = book();
        b.save(&p, None).unwrap();
        assert_eq!(LogBook::load(&p), Ok(Some(b.clone())));
        // Sealed: the units come back sealed under the key only.
        let k = SealKey::from_bytes([3; 32]);
        b.save(&p, Some(&k)).unwrap();
        let (back, state) = LogBook::load_keyed(&p, ReadFrom::RegularFile, Some(&k))
            .unwrap()
            .unwrap();
        assert_eq!((&back, state), (&b, SealState::Verified));
        assert!(back.units().all(|u| u.is_sealed()));
        assert!(LogBook::load(&p)
            .unwrap()
            .unwrap()
            .units()
            .all(|u| !u.is_sealed()));
        // The text form is still read, never sealed.
        std::fs::write(&p, b.to_text()).unwrap();
        let (back, state) = LogBook::load_keyed(&p, ReadFrom::RegularFile, Some(&k))
            .unwrap()
            .unwrap();
        assert_eq!((back, state), (b, SealState::Unsealed));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
