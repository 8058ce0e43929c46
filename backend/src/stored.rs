//! The persistent code cache: compiled units' machine code kept in a file
//! beside their patch log, so that a later process skips Cranelift for
//! every unit whose final graph it has compiled before.
//!
//! A patch log `FILE` has its code cache in `FILE.code` ([`path_beside`]).
//! The file holds entries, each one unit's code:
//!
//! ```text
//! "vssa-code-cache 1\n"        magic line
//! then entries to the end of the file, each:
//!   varint L                   length of the body
//!   [L] body:
//!     [1] kind                 1: code, 2: unit
//!     [16] key                 code: vssa::live_graph_key of the unit's final graph;
//!                              unit: the guest's key of the unit's source
//!     [32] target id           Jit::target_id: ISA, CPU flags, vssa version, host table
//!     varint stamp             when the entry was last used (a counter, for eviction)
//!     code: image              CodeImage::encode: code bytes, relocations by name
//!     unit: [16] code key, varint M, [M] the guest's data (e.g. its exit table)
//!   [32] seal                  blake3 keyed with the user's patch-log key over magic + body
//! ```
//!
//! A *unit* entry lets a guest skip building a unit's graph at all: it
//! names, for a unit whose source the guest has hashed (and which nothing
//! but its source decides, e.g. no speculation on a profile), the code
//! key its final graph had, and whatever the guest needs to run that code
//! (the Brainfuck guest keeps the program key and the exit table).
//!
//! An entry is used only if its seal verifies under this user's key (the
//! key that seals patch logs), its target id is this JIT's, and its image
//! decodes; the code key it is filed under must be the unit's. Anything
//! else — a flipped byte, another user's entry, another vssa version or
//! CPU, a truncated file — is not used: the unit is compiled and its entry
//! written again. Entries are checked only when asked for, so a damaged
//! entry costs only itself.
//!
//! Saving merges: the file is read again, this run's entries replace
//! those of the same key and target, entries whose seal fails are dropped,
//! and entries are kept most recently used first as long as they fit the
//! budget ([`DEFAULT_STORE_BYTES`]): the least recently used go; then it is written atomically with the
//! patch logs' file rules (`vssa_patch::fsutil`: random exclusive
//! temporary, never through a link, only a regular writable file that is
//! empty or a code cache is replaced, stale temporaries removed). Several
//! processes saving at once each write a whole file; the last one wins,
//! and holds the others' entries as far as it saw them.

use crate::image::{CodeImage, Reader};
use crate::jit::{Jit, OwnedCode};
use crate::HostFn;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vssa::Addr;
use vssa_patch::fsutil::{self, ReadFrom};
use vssa_patch::SealKey;

/// The first bytes of every code-cache file.
pub const MAGIC: &[u8] = b"vssa-code-cache 1\n";

/// The default bound on a code-cache file (bytes of entries): 64 MiB,
/// far above a Brainfuck program's code (mandelbrot's is about 60 KB).
pub const DEFAULT_STORE_BYTES: u64 = 64 << 20;

/// The largest code-cache file read; a larger one is not used.
pub const MAX_STORE_FILE_BYTES: u64 = 1 << 30;

/// Where the code cache of the patch log `log` lives: `LOG.code`.
pub fn path_beside(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".code");
    PathBuf::from(p)
}

/// What a code cache did in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Units whose code was placed from the file (Cranelift skipped).
    pub loads: u64,
    /// Units asked for and not in the file (compiled, then stored).
    pub misses: u64,
    /// Entries found under the key asked for but not used: seal, target,
    /// or image check failed (compiled again, and rewritten).
    pub rejected: u64,
    /// Reading the file, checking and placing entries.
    pub load_time: Duration,
    /// Merging, evicting and writing the file.
    pub save_time: Duration,
}

/// One entry as read, not yet checked.
#[derive(Clone, Debug)]
struct RawEntry {
    /// `varint L`, body and seal, exactly as in the file.
    bytes: Vec<u8>,
    /// Where the body starts and ends in `bytes`.
    body: std::ops::Range<usize>,
    stamp: u64,
}

impl RawEntry {
    fn body(&self) -> &[u8] {
        &self.bytes[self.body.clone()]
    }

    fn seal(&self) -> [u8; 32] {
        let mut s = [0u8; 32];
        s.copy_from_slice(&self.bytes[self.body.end..]);
        s
    }

    fn verifies(&self, key: &SealKey) -> bool {
        let mut sealed = Vec::with_capacity(MAGIC.len() + self.body.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(self.body());
        key.verifies(&sealed, &self.seal())
    }
}

/// What an entry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Payload {
    Code(CodeImage),
    Unit { code_key: Addr, data: Vec<u8> },
}

const KIND_CODE: u8 = 1;
const KIND_UNIT: u8 = 2;

impl Payload {
    fn kind(&self) -> u8 {
        match self {
            Payload::Code(_) => KIND_CODE,
            Payload::Unit { .. } => KIND_UNIT,
        }
    }
}

/// The most guest data one unit entry may hold.
const MAX_UNIT_DATA: usize = 64 << 20;

/// An entry's identity: kind, key and target id.
type EntryId = (u8, Addr, [u8; 32]);

/// The code cache of one patch log, for one JIT target.
#[derive(Debug)]
pub struct CodeStore {
    path: PathBuf,
    target: [u8; 32],
    budget: u64,
    /// This user's key, if there is one yet (nothing verifies without it).
    key: Option<SealKey>,
    /// Entries of the file, unchecked.
    file: HashMap<EntryId, RawEntry>,
    /// The highest stamp in the file.
    clock: u64,
    /// Entries to write, by kind and key: made or used in this run.
    fresh: HashMap<(u8, Addr), Payload>,
    /// Whether the file should be written (an entry was added, or the file
    /// holds something to drop).
    dirty: bool,
    /// The file is something vssa does not replace: never written.
    unusable: bool,
    warnings: Vec<String>,
    stats: StoreStats,
}

/// A parsed code-cache file: its entries, and a note if it is damaged
/// after some point.
struct Parsed {
    entries: Vec<(EntryId, RawEntry)>,
    damage: Option<String>,
}

impl CodeStore {
    /// Opens the code cache at `path` for code of `target`
    /// ([`Jit::target_id`]), keeping at most `budget` bytes of entries when
    /// saving; entries are checked against `key`, this user's seal key
    /// (`SealKey::existing()`; without one nothing is used). Never fails: a missing file is an empty cache; a file that
    /// cannot be used is a warning ([`CodeStore::take_warnings`]) and an
    /// empty cache (one that is not a regular file, or not a code cache,
    /// is also never written).
    pub fn open(path: &Path, target: [u8; 32], budget: u64, key: Option<SealKey>) -> CodeStore {
        let t = Instant::now();
        let mut store = CodeStore {
            path: path.to_path_buf(),
            target,
            budget,
            key,
            file: HashMap::new(),
            clock: 0,
            fresh: HashMap::new(),
            dirty: false,
            unusable: false,
            warnings: Vec::new(),
            stats: StoreStats::default(),
        };
        fsutil::remove_stale_temporaries(path);
        match read_file(path) {
            Ok(None) => {}
            Ok(Some(bytes)) => match parse(&bytes) {
                Ok(parsed) => {
                    if let Some(d) = parsed.damage {
                        store.warn(format!("{d}: the entries from there on are dropped"));
                        store.dirty = true;
                    }
                    for (id, e) in parsed.entries {
                        store.clock = store.clock.max(e.stamp);
                        store.file.insert(id, e);
                    }
                }
                Err(e) => {
                    store.warn(format!("{e}: not used, left alone"));
                    store.unusable = true;
                }
            },
            Err(e) => {
                store.warn(format!("{e}: not used"));
                store.unusable = true;
            }
        }
        store.stats.load_time += t.elapsed();
        store
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    /// Warnings since the last call, one line each (the cache's path first).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, msg: String) {
        self.warnings
            .push(format!("code cache {}: {msg}", self.path.display()));
    }

    /// The checked image filed under `code_key` for this target, if any;
    /// counts a miss or a rejection otherwise.
    pub fn get(&mut self, code_key: &Addr) -> Option<CodeImage> {
        let t = Instant::now();
        let got = self.check(KIND_CODE, code_key);
        self.stats.load_time += t.elapsed();
        match got {
            Some(Payload::Code(img)) => Some(img),
            _ => None,
        }
    }

    /// The unit entry filed under the guest's `source_key`: the code key
    /// of the unit's final graph and the guest's data, if checked. A
    /// missing unit entry is not counted as a miss (the code lookup that
    /// follows counts).
    pub fn get_unit(&mut self, source_key: &Addr) -> Option<(Addr, Vec<u8>)> {
        let t = Instant::now();
        let got = self.check(KIND_UNIT, source_key);
        self.stats.load_time += t.elapsed();
        match got {
            Some(Payload::Unit { code_key, data }) => Some((code_key, data)),
            _ => None,
        }
    }

    fn check(&mut self, kind: u8, key: &Addr) -> Option<Payload> {
        if let Some(p) = self.fresh.get(&(kind, *key)) {
            return Some(p.clone());
        }
        let id = (kind, *key, self.target);
        let Some(raw) = self.file.get(&id) else {
            if kind == KIND_CODE {
                self.stats.misses += 1;
            }
            return None;
        };
        let why = match &self.key {
            None => Some("no seal key to check it with".to_string()),
            Some(k) if !raw.verifies(k) => Some("its seal does not verify".to_string()),
            Some(_) => None,
        };
        let decoded = match why {
            Some(why) => Err(why),
            None => decode_body(raw.body()).and_then(|((k, key_in, target, _), payload)| {
                if k != kind || key_in != *key || target != self.target {
                    Err("filed under another key".to_string())
                } else {
                    Ok(payload)
                }
            }),
        };
        match decoded {
            Ok(payload) => {
                // Used now: written back with a new stamp.
                self.fresh.insert((kind, *key), payload.clone());
                Some(payload)
            }
            Err(why) => {
                self.file.remove(&id);
                self.dirty = true;
                self.stats.rejected += 1;
                self.warn(format!(
                    "entry {} not used ({why}): compiling it again",
                    short(key)
                ));
                None
            }
        }
    }

    /// [`CodeStore::get`], placed in executable memory by `jit` for
    /// `hosts` (which must be the host table the target id was made for).
    pub fn load(
        &mut self,
        code_key: &Addr,
        jit: &mut Jit,
        hosts: &[HostFn],
        name: &str,
    ) -> Option<OwnedCode> {
        let img = self.get(code_key)?;
        let t = Instant::now();
        let placed = jit.load_owned(&img, hosts, name);
        self.stats.load_time += t.elapsed();
        match placed {
            Ok(code) => {
                self.stats.loads += 1;
                Some(code)
            }
            Err(e) => {
                self.fresh.remove(&(KIND_CODE, *code_key));
                self.file.remove(&(KIND_CODE, *code_key, self.target));
                self.dirty = true;
                self.stats.rejected += 1;
                self.warn(format!(
                    "entry {} not used ({e}): compiling it again",
                    short(code_key)
                ));
                None
            }
        }
    }

    /// Files freshly compiled code under `code_key` (written at the next
    /// [`CodeStore::save`]).
    pub fn put(&mut self, code_key: Addr, image: &CodeImage) {
        self.fresh
            .insert((KIND_CODE, code_key), Payload::Code(image.clone()));
        self.dirty = true;
    }

    /// Files a unit entry: the unit whose source the guest keys
    /// `source_key` compiled to the code filed under `code_key`, run
    /// with `data` (written at the next [`CodeStore::save`]; nothing
    /// changes if the same entry is there).
    pub fn put_unit(&mut self, source_key: Addr, code_key: Addr, data: Vec<u8>) {
        let p = Payload::Unit { code_key, data };
        if self.fresh.get(&(KIND_UNIT, source_key)) != Some(&p) {
            self.fresh.insert((KIND_UNIT, source_key), p);
            self.dirty = true;
        }
    }

    /// Whether [`CodeStore::save`] would write.
    pub fn is_dirty(&self) -> bool {
        self.dirty && !self.unusable
    }

    /// Writes the cache if anything changed: merged with the file as it
    /// is now, sealed, the least recently used entries evicted to fit the
    /// budget, under `key` (this user's: `SealKey::user()`). Problems
    /// become warnings.
    pub fn save(&mut self, key: &SealKey) {
        if !self.is_dirty() {
            return;
        }
        let t = Instant::now();
        if let Err(e) = self.write(key) {
            self.warn(format!("cannot write: {e}"));
        }
        self.dirty = false;
        self.stats.save_time += t.elapsed();
    }

    fn write(&mut self, key: &SealKey) -> io::Result<()> {
        // What other processes saved since we read it.
        let now = match read_file(&self.path)? {
            Some(bytes) => parse(&bytes).map_err(io::Error::other)?.entries,
            None => Vec::new(),
        };
        let mut all: HashMap<EntryId, RawEntry> = HashMap::new();
        let mut clock = self.clock;
        for (id, e) in now {
            if e.verifies(key) {
                clock = clock.max(e.stamp);
                all.insert(id, e);
            }
        }
        let stamp = clock + 1;
        for ((kind, k), payload) in &self.fresh {
            let e = seal_entry(key, k, &self.target, stamp, payload);
            all.insert((*kind, *k, self.target), e);
        }
        let mut entries: Vec<RawEntry> = all.into_values().collect();
        // Most recently used first; ties by bytes, so the order is fixed.
        entries.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.bytes.cmp(&b.bytes)));
        let mut out = MAGIC.to_vec();
        let mut used = 0u64;
        for e in &entries {
            let size = e.bytes.len() as u64;
            if used + size <= self.budget {
                used += size;
                out.extend_from_slice(&e.bytes);
            }
        }
        fsutil::write_atomic_over(&self.path, &out, |f| {
            let mut head = Vec::with_capacity(MAGIC.len());
            f.take(MAGIC.len() as u64).read_to_end(&mut head)?;
            // Empty, a code cache, or one cut short in its first line.
            if MAGIC.starts_with(&head) {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a vssa code cache: left it alone",
                ))
            }
        })
    }
}

/// The first bytes of an address in hex, for messages.
fn short(a: &Addr) -> String {
    a.0[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The file's bytes, `None` if it does not exist; an error for anything
/// that is not a regular file (not following a link) or too large.
fn read_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a regular file ({})", fsutil::kind_of(&meta)),
            ))
        }
        Ok(_) => {}
    }
    fsutil::read_bounded(path, MAX_STORE_FILE_BYTES, ReadFrom::RegularFile).map(Some)
}

/// Splits a file into its entries. An error if it is not a code cache at
/// all; damage after the magic keeps the entries before it.
fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.is_empty() {
        return Ok(Parsed {
            entries: Vec::new(),
            damage: None,
        });
    }
    if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
        return Ok(Parsed {
            entries: Vec::new(),
            damage: Some("truncated in its first line".into()),
        });
    }
    if !bytes.starts_with(MAGIC) {
        return Err("not a vssa code cache (no \"vssa-code-cache 1\" line)".into());
    }
    let mut r = Reader {
        bytes,
        pos: MAGIC.len(),
    };
    let mut entries = Vec::new();
    let mut damage = None;
    while r.pos < bytes.len() {
        let start = r.pos;
        let entry = (|| {
            let len = r.len("entry length", MAX_STORE_FILE_BYTES as usize)?;
            let body_start = r.pos - start;
            let body = r.take(len, "entry")?;
            let (kind, key, target, stamp) = entry_head(body).map_err(|e| r.error(&e))?;
            r.take(32, "seal")?;
            Ok::<_, crate::image::ImageError>((kind, key, target, stamp, body_start, len))
        })();
        match entry {
            Ok((kind, key, target, stamp, body_start, len)) => entries.push((
                (kind, key, target),
                RawEntry {
                    bytes: bytes[start..r.pos].to_vec(),
                    body: body_start..body_start + len,
                    stamp,
                },
            )),
            Err(e) => {
                damage = Some(format!("damaged at byte {start} ({e})"));
                break;
            }
        }
    }
    Ok(Parsed { entries, damage })
}

/// The kind, key, target id and stamp at the start of an entry's body.
fn entry_head(body: &[u8]) -> Result<(u8, Addr, [u8; 32], u64), String> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let kind = r.byte("kind").map_err(|e| e.0)?;
    if kind != KIND_CODE && kind != KIND_UNIT {
        return Err(format!("unknown entry kind {kind}"));
    }
    let key = r.take(16, "key").map_err(|e| e.0)?;
    let target = r.take(32, "target id").map_err(|e| e.0)?;
    let stamp = r.varint("stamp").map_err(|e| e.0)?;
    Ok((
        kind,
        Addr(key.try_into().expect("16 bytes")),
        target.try_into().expect("32 bytes"),
        stamp,
    ))
}

type Head = (u8, Addr, [u8; 32], u64);

/// A whole body: head and payload, nothing after it.
fn decode_body(body: &[u8]) -> Result<(Head, Payload), String> {
    let head = entry_head(body)?;
    let start = 1 + 48 + varint_len(head.3);
    let rest = &body[start..];
    let (payload, used) = if head.0 == KIND_CODE {
        let (img, used) = CodeImage::decode(rest).map_err(|e| e.0)?;
        (Payload::Code(img), used)
    } else {
        let mut r = Reader {
            bytes: rest,
            pos: 0,
        };
        let code_key = r.take(16, "code key").map_err(|e| e.0)?;
        let code_key = Addr(code_key.try_into().expect("16 bytes"));
        let n = r.len("data length", MAX_UNIT_DATA).map_err(|e| e.0)?;
        let data = r.take(n, "data").map_err(|e| e.0)?.to_vec();
        (Payload::Unit { code_key, data }, r.pos)
    };
    if used != rest.len() {
        return Err(format!("{} bytes after the entry", rest.len() - used));
    }
    Ok((head, payload))
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// An entry's bytes: length, body, seal.
fn seal_entry(
    key: &SealKey,
    entry_key: &Addr,
    target: &[u8; 32],
    stamp: u64,
    payload: &Payload,
) -> RawEntry {
    let mut body = Vec::with_capacity(64);
    body.push(payload.kind());
    body.extend_from_slice(&entry_key.0);
    body.extend_from_slice(target);
    crate::image::put_varint(&mut body, stamp);
    match payload {
        Payload::Code(img) => img.encode(&mut body),
        Payload::Unit { code_key, data } => {
            body.extend_from_slice(&code_key.0);
            crate::image::put_varint(&mut body, data.len() as u64);
            body.extend_from_slice(data);
        }
    }
    let mut sealed = MAGIC.to_vec();
    sealed.extend_from_slice(&body);
    let seal = key.seal(&sealed);
    let mut bytes = Vec::with_capacity(body.len() + 42);
    crate::image::put_varint(&mut bytes, body.len() as u64);
    let start = bytes.len();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&seal);
    RawEntry {
        body: start..start + body.len(),
        bytes,
        stamp,
    }
}

/// Where each whole entry (length, body and seal) of a code-cache file's
/// bytes lies, up to the first damage: for tools and tests that damage
/// files on purpose.
pub fn entry_ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let Ok(parsed) = parse(bytes) else {
        return Vec::new();
    };
    let mut at = MAGIC.len();
    parsed
        .entries
        .iter()
        .map(|(_, e)| {
            let r = at..at + e.bytes.len();
            at = r.end;
            r
        })
        .collect()
}

/// What `vssa cache stats` shows of a code-cache file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSummary {
    pub entries: usize,
    /// Bytes of the whole file.
    pub bytes: u64,
    /// Bytes of machine code in the entries.
    pub code_bytes: u64,
    /// Entries whose seal verifies under this user's key.
    pub sealed: usize,
    /// Entries for `target` (when given).
    pub for_target: usize,
    /// Unit entries (the others hold code).
    pub units: usize,
    /// Where the file is damaged, if it is.
    pub damage: Option<String>,
}

/// Reads and summarizes the code-cache file at `path` (`Ok(None)`: there
/// is none).
/// `key` is this user's seal key, if any.
pub fn summarize(
    path: &Path,
    target: Option<&[u8; 32]>,
    key: Option<&SealKey>,
) -> io::Result<Option<FileSummary>> {
    let Some(bytes) = read_file(path)? else {
        return Ok(None);
    };
    let parsed = parse(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut s = FileSummary {
        entries: parsed.entries.len(),
        bytes: bytes.len() as u64,
        damage: parsed.damage,
        ..FileSummary::default()
    };
    for ((kind, _, t), e) in &parsed.entries {
        if *kind == KIND_UNIT {
            s.units += 1;
        }
        if key.is_some_and(|k| e.verifies(k)) {
            s.sealed += 1;
        }
        if target == Some(t) {
            s.for_target += 1;
        }
        if let Ok((_, Payload::Code(img))) = decode_body(e.body()) {
            s.code_bytes += img.bytes.len() as u64;
        }
    }
    Ok(Some(s))
}

/// Removes the code-cache file at `path`; refuses (touching nothing) one
/// that is not a regular file holding a code cache. `Ok(false)`: there
/// was none.
pub fn clear(path: &Path) -> io::Result<bool> {
    let Some(bytes) = read_file(path)? else {
        return Ok(false);
    };
    if !bytes.starts_with(MAGIC) && !MAGIC.starts_with(&bytes) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a vssa code cache: left it alone",
        ));
    }
    std::fs::remove_file(path)?;
    fsutil::remove_stale_temporaries(path);
    Ok(true)
}

#[cfg(test)]
mod tests;
