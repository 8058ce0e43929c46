//! The `logbytes` target: patch-log files that are random, or real logs
//! damaged, fed to the parser and to the driver.
//!
//! Real logs come from a small corpus of random Brainfuck programs (fixed
//! seeds, each compiled once per process with `--patch-log`, lazily). An
//! input is the file bytes and a corpus program to run them with:
//!
//! * random bytes, or lines of tokens taken from a real log under a valid
//!   checksum (so that the parser gets past the checksum to the lines);
//! * a real log, unchanged or damaged by truncation (anywhere, or at a line
//!   boundary), bit flips, byte changes, deleted, duplicated, swapped or
//!   spliced lines (from another program's log), swapped or deleted
//!   tokens; half of the damaged logs get their checksum (and patch count)
//!   recomputed, so that the damage reaches the patch parser and replay.
//!
//! Every input is parsed; a parse error must name a line of the file (1 to
//! the line count). Inputs that parse, and one in eight that do not, are
//! then written to a file and given to the JIT driver as its patch log for
//! the corpus program, which must run exactly like the interpreter; a log
//! that did not parse must have been ignored with a warning. Nothing may
//! panic.
//!
//! Two more kinds of input work on what runs write (sealed under the
//! fuzzer's key): the **binary** log, damaged by flips, byte changes,
//! truncation, insertions, duplicated or spliced ranges — it must run
//! exactly like the interpreter, and a log whose bytes are not the sealed
//! ones must replay nothing; and the program's **code cache** (`LOG.code`,
//! next to its intact sealed log), damaged the same ways — it must run
//! exactly like the interpreter, and code may be placed from it only if
//! the damaged file still holds the stored entry byte for byte.
//!
//! The counters say how deep inputs got: `parse-error`, `parsed`, `ran`,
//! and for parsed logs `unsealed-ignored` or `replay-empty`; `binary-*`
//! and `code-*` for the two kinds above. A log that
//! parses is the text form, never sealed: the driver must not replay any
//! of it (see `docs/patch-log.md`, "Trust"); the checked replay of damaged
//! patches is the `replay` target's.

use crate::bf::{self, run_interp, run_jit, run_jit_cached, Case};
use crate::rng::Rng;
use crate::shrink::shrink_bytes;
use crate::{bump, guarded, Counters, Failure, Outcome, TempFile};
use vssa_bf::parse;

/// Programs whose logs are damaged.
pub const CORPUS_SIZE: usize = 24;
/// The name the parser reports errors against.
const FILE_NAME: &str = "fuzz.log";

/// One input: log bytes and the corpus program to run with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogCase {
    pub program: usize,
    pub bytes: Vec<u8>,
    /// Run the driver even if the log does not parse.
    pub run_anyway: bool,
    /// How the bytes were made, for reproducers.
    pub how: String,
    /// The bytes may say something the optimizer never recorded, under a
    /// valid checksum (see [`Checker::check`]).
    pub forged: bool,
    /// What `bytes` is, and the code cache that goes with it.
    pub form: Form,
}

/// Which file an input damages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// The text form of the log (`bytes`).
    Text,
    /// The binary log (`bytes`), damaged or not.
    Binary,
    /// The code cache: `bytes` is the program's intact binary log, and
    /// this the (damaged) cache file beside it.
    Code(Vec<u8>),
}

/// A corpus program and the log the driver saved for it.
#[derive(Clone, Debug)]
struct Entry {
    case: Case,
    /// The text form of the log.
    log: Vec<u8>,
    /// The log as the driver saved it (binary, sealed).
    binary: Vec<u8>,
    /// The code cache the driver saved beside it.
    code: Vec<u8>,
}

/// The code cache's budget in the fuzzer's runs.
const CODE_BYTES: u64 = 1 << 20;

/// The target's state: the corpus, filled on first use.
#[derive(Default)]
pub struct Checker {
    corpus: Vec<Option<Entry>>,
}

/// The parser the driver uses for patch-log files (a [`vssa_patch::LogBook`]:
/// every unit's log in one file): `Ok(patch count)` or the error's line
/// and text. The one place to change when the format does.
pub fn parse_log(bytes: &[u8]) -> Result<usize, (Option<usize>, String)> {
    vssa_patch::LogBook::parse(bytes, FILE_NAME)
        .map(|b| b.units().map(|l| l.patches.len()).sum())
        .map_err(|e| (e.line, e.to_string()))
}

/// The program of corpus entry `i` (always step-limited).
pub fn corpus_case(i: usize) -> Case {
    let mut c = bf::generate(0xC0_4B05 ^ (i as u64).wrapping_mul(0x9E37_79B9), false);
    c.max_steps.get_or_insert(5_000);
    c
}

/// Splits after every `\n` (the last piece may lack one).
fn split_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Recomputes the announced counts (if `fix_counts`) and the checksum
/// (blake3 of every byte before the last line), so that damage to the
/// patch lines gets past both and reaches the patch parser and replay.
/// Counts: format 1 has `patches N` on line 4; format 2 has `units N` on
/// line 3 and `unit <key> refuted R patches P` before each unit's lines.
pub fn fix_checksum(bytes: &[u8], fix_counts: bool) -> Vec<u8> {
    let mut lines = split_lines(bytes);
    if let Some(last) = lines.last_mut() {
        if !last.ends_with(b"\n") {
            last.push(b'\n');
        }
    }
    if lines.last().is_some_and(|l| l.starts_with(b"checksum ")) {
        lines.pop();
    }
    if fix_counts {
        fix_counts_in(&mut lines);
    }
    let mut out: Vec<u8> = lines.concat();
    let sum = blake3::hash(&out);
    out.extend_from_slice(format!("checksum {}\n", sum.to_hex()).as_bytes());
    out
}

fn fix_counts_in(lines: &mut [Vec<u8>]) {
    if lines.first().is_some_and(|l| l == b"vssa-patch-log 1\n") {
        if lines.len() >= 4 && lines[3].starts_with(b"patches ") {
            lines[3] = format!("patches {}\n", lines.len() - 4).into_bytes();
        }
        return;
    }
    let units = lines.iter().filter(|l| l.starts_with(b"unit ")).count();
    if lines.len() >= 3 && lines[2].starts_with(b"units ") {
        lines[2] = format!("units {units}\n").into_bytes();
    }
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with(b"unit ") {
            i += 1;
            continue;
        }
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with(b"unit "))
            .unwrap_or(lines.len());
        let refutes = lines[i + 1..end]
            .iter()
            .filter(|l| l.starts_with(b"refute "))
            .count();
        let patches = end - i - 1 - refutes;
        let key = lines[i]
            .split(|&c| c == b' ' || c == b'\n')
            .nth(1)
            .unwrap_or_default()
            .to_vec();
        let mut head = b"unit ".to_vec();
        head.extend_from_slice(&key);
        head.extend_from_slice(format!(" refuted {refutes} patches {patches}\n").as_bytes());
        lines[i] = head;
        i = end;
    }
}

/// One random text edit of a log: what it did, and whether it may forge a
/// patch (change what a line says) rather than only drop, repeat or
/// reorder the log's own lines. `same` says whether `other` is this log.
fn damage(rng: &mut Rng, bytes: &mut Vec<u8>, other: &[u8], same: bool) -> (&'static str, bool) {
    let at = rng.below(bytes.len() as u64 + 1) as usize;
    let mut lines = split_lines(bytes);
    let line = rng.below(lines.len() as u64) as usize;
    let what = match rng.below(12) {
        0 => {
            bytes.truncate(at);
            return ("truncated", true);
        }
        1 => {
            lines.truncate(line);
            ("truncated at a line", false)
        }
        2 if at < bytes.len() => {
            bytes[at] ^= 1 << rng.below(8);
            return ("bit flip", true);
        }
        3 if at < bytes.len() => {
            bytes[at] = rng.next_u64() as u8;
            return ("byte changed", true);
        }
        4 if at < bytes.len() => {
            bytes[at] = *rng.pick(b"0123456789abcdef ;\n");
            return ("byte changed to a likely one", true);
        }
        5 if !lines.is_empty() => {
            lines.remove(line);
            ("line deleted", false)
        }
        6 if !lines.is_empty() => {
            let l = lines[line].clone();
            let to = rng.below(lines.len() as u64 + 1) as usize;
            lines.insert(to, l);
            ("line duplicated", false)
        }
        7 if !lines.is_empty() => {
            let j = rng.below(lines.len() as u64) as usize;
            lines.swap(line, j);
            ("lines swapped", false)
        }
        8 => {
            let theirs = split_lines(other);
            if theirs.is_empty() {
                return ("nothing", false);
            }
            let l = rng.pick(&theirs).clone();
            if rng.chance(1, 2) && !lines.is_empty() {
                lines[line] = l;
            } else {
                lines.insert(line.min(lines.len()), l);
            }
            if same {
                ("line spliced from the same log", false)
            } else {
                ("line spliced from another log", true)
            }
        }
        9 | 10 if !lines.is_empty() => {
            let text = lines[line].clone();
            let body = text.strip_suffix(b"\n").unwrap_or(&text);
            let mut toks: Vec<&[u8]> = body.split(|&c| c == b' ').collect();
            let i = rng.below(toks.len() as u64) as usize;
            let j = rng.below(toks.len() as u64) as usize;
            let what = if rng.chance(1, 2) {
                toks.swap(i, j);
                ("tokens swapped", i != j)
            } else {
                toks.remove(i);
                ("token deleted", true)
            };
            let mut new = toks.join(&b' ');
            if text.ends_with(b"\n") {
                new.push(b'\n');
            }
            lines[line] = new;
            what
        }
        _ => {
            let n = rng.range(1, 8) as usize;
            let junk = rng.bytes(n);
            bytes.splice(at..at, junk);
            return ("bytes inserted", true);
        }
    };
    *bytes = lines.concat();
    what
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            corpus: vec![None; CORPUS_SIZE],
        }
    }

    /// Corpus entry `i`, compiling its program (once) to get its log.
    fn entry(&mut self, i: usize) -> Result<&Entry, String> {
        let i = i % CORPUS_SIZE;
        if self.corpus[i].is_none() {
            let case = corpus_case(i);
            let prog = parse(&case.source).map_err(|e| format!("corpus program {i}: {e}"))?;
            let file = TempFile::new("corpus");
            let (r, report) = run_jit_cached(&prog, &case, true, Some(file.path()), CODE_BYTES)
                .map_err(|e| format!("corpus program {i}: pipeline error: {e}"))?;
            if let Some(diff) = bf::compare(&run_interp(&prog, &case), &r) {
                return Err(format!("corpus program {i}: {diff}"));
            }
            let log = std::fs::read(file.path()).map_err(|e| {
                format!(
                    "corpus program {i}: no patch log saved ({e}; {:?})",
                    report.patch_log_warnings
                )
            })?;
            let code = std::fs::read(vssa_backend::stored::path_beside(file.path()))
                .map_err(|e| format!("corpus program {i}: no code cache saved ({e})"))?;
            // The driver writes the binary form; the text damage works on
            // lines, so the entry keeps the text form of the same log too.
            let binary = log;
            let log = vssa_patch::LogBook::parse(&binary, "corpus")
                .map_err(|e| format!("corpus program {i}: {e}"))?
                .to_text()
                .into_bytes();
            self.corpus[i] = Some(Entry {
                case,
                log,
                binary,
                code,
            });
        }
        self.corpus[i]
            .as_ref()
            .ok_or_else(|| "corpus entry missing".to_string())
    }

    /// Generates input `seed` (may compile corpus programs).
    pub fn generate(&mut self, seed: u64) -> Result<LogCase, String> {
        let mut rng = Rng::new(seed);
        let program = rng.below(CORPUS_SIZE as u64) as usize;
        let run_anyway = rng.chance(1, 8);
        // The log to start from: usually the program's own.
        let source = if rng.chance(3, 4) {
            program
        } else {
            rng.below(CORPUS_SIZE as u64) as usize
        };
        let other = rng.below(CORPUS_SIZE as u64) as usize;
        let mut forged = false;
        let mut form = Form::Text;
        let (bytes, mut how) = match rng.weighted(&[2, 2, 1, 7, 6, 6]) {
            0 => {
                let n = rng.below(300) as usize;
                let alphabet =
                    b"0123456789abcdef \n;vssa-patch-log encoding program checksum replace";
                let b = (0..n)
                    .map(|_| {
                        if rng.chance(3, 4) {
                            *rng.pick(alphabet)
                        } else {
                            rng.next_u64() as u8
                        }
                    })
                    .collect();
                (b, "random bytes".to_string())
            }
            1 => {
                let log = self.entry(source)?.log.clone();
                let lines = split_lines(&log);
                let toks: Vec<&[u8]> = log
                    .split(|&c| c == b' ' || c == b'\n')
                    .filter(|t| !t.is_empty())
                    .collect();
                let mut out = Vec::new();
                if rng.chance(3, 4) {
                    for l in lines.iter().take(4) {
                        out.extend_from_slice(l);
                    }
                }
                for _ in 0..rng.below(6) {
                    let k = rng.range(1, 12);
                    for t in 0..k {
                        if t > 0 {
                            out.push(b' ');
                        }
                        out.extend_from_slice(rng.pick::<&[u8]>(&toks));
                    }
                    out.push(b'\n');
                }
                forged = true;
                (
                    fix_checksum(&out, rng.chance(1, 2)),
                    format!("lines of tokens from log {source}, checksummed"),
                )
            }
            2 => (
                self.entry(source)?.log.clone(),
                format!("log {source} unchanged"),
            ),
            4 => {
                let mut b = self.entry(source)?.binary.clone();
                let other_log = self.entry(other)?.binary.clone();
                let what = damage_bytes(&mut rng, &mut b, &other_log);
                form = Form::Binary;
                (b, format!("binary log {source}: {what}"))
            }
            5 => {
                // The program's own sealed log, and its damaged cache.
                let entry = self.entry(program)?;
                let log = entry.binary.clone();
                let mut code = entry.code.clone();
                let other_code = self.entry(other)?.code.clone();
                let what = damage_bytes(&mut rng, &mut code, &other_code);
                form = Form::Code(code);
                (log, format!("code cache {program}: {what}"))
            }
            _ => {
                let other_log = self.entry(other)?.log.clone();
                let mut b = self.entry(source)?.log.clone();
                let mut how = format!("log {source}:");
                let mut forging = false;
                for k in 0..rng.range(1, 3) {
                    let (what, f) = damage(&mut rng, &mut b, &other_log, other == source);
                    how.push_str(if k == 0 { " " } else { ", " });
                    how.push_str(what);
                    forging |= f;
                }
                if rng.chance(1, 2) {
                    b = fix_checksum(&b, rng.chance(3, 4));
                    how.push_str(", checksummed");
                    forged = forging;
                }
                (b, how)
            }
        };
        if matches!(form, Form::Code(_)) {
            return Ok(LogCase {
                program,
                bytes,
                run_anyway: true,
                how,
                forged: false,
                form,
            });
        }
        if program != source {
            how.push_str(&format!(", run with program {program}"));
        }
        Ok(LogCase {
            program,
            bytes,
            run_anyway: run_anyway || form == Form::Binary,
            how,
            forged,
            form,
        })
    }

    /// Generates and checks input `seed`.
    pub fn check_seed(&mut self, seed: u64, stats: &mut Counters) -> Outcome {
        match self.generate_guarded(seed) {
            Ok(c) => self.check(&c, stats),
            Err(o) => o,
        }
    }

    /// [`Checker::generate`] with panics and pipeline errors as outcomes.
    fn generate_guarded(&mut self, seed: u64) -> Result<LogCase, Outcome> {
        let mut out = None;
        let o = guarded(|| match self.generate(seed) {
            Ok(c) => {
                out = Some(c);
                Outcome::Pass
            }
            Err(e) => Outcome::Mismatch(e),
        });
        out.ok_or(o)
    }

    /// Checks `case`, counting how deep it got in `stats`.
    ///
    /// A *forged* log (changed within its lines, then checksummed again)
    /// is outside what the checksum protects: a line such as `replace A B`
    /// turned into `replace B A` is well-formed, and replay cannot tell it
    /// from the optimizer's. For those only a panic is a failure; a
    /// pipeline error or a different run is counted (`forged-rejected`,
    /// `forged-diverged`). Everything else — random bytes, logs damaged
    /// without a new checksum, and logs whose own lines were dropped,
    /// repeated or reordered — must run exactly like the interpreter.
    pub fn check(&mut self, case: &LogCase, stats: &mut Counters) -> Outcome {
        guarded(|| self.check_unguarded(case, stats))
    }

    fn check_unguarded(&mut self, case: &LogCase, stats: &mut Counters) -> Outcome {
        if case.form != Form::Text {
            return self.check_written(case, stats);
        }
        let parsed = parse_log(&case.bytes);
        match &parsed {
            Ok(_) => bump(stats, "parsed"),
            Err((line, text)) => {
                bump(stats, "parse-error");
                let lines = case.bytes.split_inclusive(|&c| c == b'\n').count();
                match line {
                    Some(l) if (1..=lines.max(1)).contains(l) => {}
                    // The binary form names a byte, not a line.
                    None if case.bytes.starts_with(vssa_patch::binary::BINARY_MAGIC)
                        && text.contains(": byte ") => {}
                    _ => {
                        return Outcome::Mismatch(format!(
                            "parse error at line {line:?} of a {lines}-line file: {text}"
                        ))
                    }
                }
                if !text.starts_with(FILE_NAME) {
                    return Outcome::Mismatch(format!(
                        "parse error does not name the file: {text}"
                    ));
                }
            }
        }
        if parsed.is_err() && !case.run_anyway {
            return Outcome::Pass;
        }
        let entry = match self.entry(case.program) {
            Ok(e) => e.case.clone(),
            Err(e) => return Outcome::Mismatch(e),
        };
        let prog = match parse(&entry.source) {
            Ok(p) => p,
            Err(e) => return Outcome::Mismatch(format!("corpus program: {e}")),
        };
        let file = TempFile::new("logbytes");
        if let Err(e) = std::fs::write(file.path(), &case.bytes) {
            return Outcome::Mismatch(format!("cannot write {}: {e}", file.path().display()));
        }
        bump(stats, "ran");
        let (r, report) = match run_jit(&prog, &entry, true, Some(file.path())) {
            Ok(x) => x,
            Err(_) if case.forged => {
                bump(stats, "forged-rejected");
                return Outcome::Pass;
            }
            Err(e) => return Outcome::Mismatch(format!("pipeline error: {e}")),
        };
        if let Some(diff) = bf::compare(&run_interp(&prog, &entry), &r) {
            if case.forged {
                bump(stats, "forged-diverged");
                return Outcome::Pass;
            }
            return Outcome::Mismatch(format!(
                "run with the log: {diff} ({} applied, {} stale, {} conflicting)",
                report.patches_replayed, report.patches_stale, report.patches_conflicting
            ));
        }
        match parsed {
            Err(_) => {
                if report.patches_replayed > 0 || report.patch_log_warnings.is_empty() {
                    return Outcome::Mismatch(format!(
                        "a log that does not parse was used: {} applied, warnings {:?}",
                        report.patches_replayed, report.patch_log_warnings
                    ));
                }
            }
            // A log that parses is not sealed (the damage is made to the
            // text form): the driver must not replay any of it.
            Ok(n) => {
                if report.patches_replayed > 0 {
                    return Outcome::Mismatch(format!(
                        "a log that is not sealed was replayed: {} of {n} patches applied",
                        report.patches_replayed
                    ));
                }
                bump(
                    stats,
                    if n == 0 {
                        "replay-empty"
                    } else {
                        "unsealed-ignored"
                    },
                )
            }
        }
        Outcome::Pass
    }

    /// Checks a binary log or a code cache (see the module's doc).
    fn check_written(&mut self, case: &LogCase, stats: &mut Counters) -> Outcome {
        let (entry, binary, code) = match self.entry(case.program) {
            Ok(e) => (e.case.clone(), e.binary.clone(), e.code.clone()),
            Err(e) => return Outcome::Mismatch(e),
        };
        let prog = match parse(&entry.source) {
            Ok(p) => p,
            Err(e) => return Outcome::Mismatch(format!("corpus program: {e}")),
        };
        let file = TempFile::new("logbytes-written");
        let write = |path: &std::path::Path, bytes: &[u8]| {
            std::fs::write(path, bytes)
                .map_err(|e| Outcome::Mismatch(format!("cannot write {}: {e}", path.display())))
        };
        if let Err(o) = write(file.path(), &case.bytes) {
            return o;
        }
        let code_bytes = match &case.form {
            Form::Code(damaged) => {
                let path = vssa_backend::stored::path_beside(file.path());
                if let Err(o) = write(&path, damaged) {
                    return o;
                }
                CODE_BYTES
            }
            _ => 0,
        };
        let (r, report) = match run_jit_cached(&prog, &entry, true, Some(file.path()), code_bytes) {
            Ok(x) => x,
            Err(e) => return Outcome::Mismatch(format!("pipeline error: {e}")),
        };
        if let Some(diff) = bf::compare(&run_interp(&prog, &entry), &r) {
            return Outcome::Mismatch(format!("{}: {diff}", case.how));
        }
        match &case.form {
            Form::Binary => {
                // The same log, but for its checksum field (the 32 bytes
                // before the seal), which a sealed log does not need: the
                // seal covers the same bytes.
                let n = binary.len();
                let same = case.bytes.len() == n
                    && n >= 64
                    && case.bytes[..n - 64] == binary[..n - 64]
                    && case.bytes[n - 32..] == binary[n - 32..];
                if !same && report.patches_replayed > 0 {
                    return Outcome::Mismatch(format!(
                        "a binary log that is not the sealed one replayed {} patches",
                        report.patches_replayed
                    ));
                }
                bump(
                    stats,
                    match (same, report.patch_log_sealed) {
                        (true, _) => "binary-intact",
                        (false, Some(true)) => "binary-sealed-damage",
                        _ => "binary-ignored",
                    },
                );
            }
            Form::Code(damaged) => {
                // The stored entries (the unit's code, and the unit entry
                // that places it without building) still whole in the
                // damaged file: code may come only from those.
                let whole = vssa_backend::stored::entry_ranges(&code)
                    .into_iter()
                    .filter(|r| damaged.windows(r.len()).any(|w| w == &code[r.clone()]))
                    .count();
                if report.code_cache_loads > 0 && whole == 0 {
                    return Outcome::Mismatch(
                        "code was placed from a damaged cache entry".to_string(),
                    );
                }
                if report.code_cache_direct > 0 && whole < 2 {
                    return Outcome::Mismatch(
                        "a unit was placed without building from a damaged cache".to_string(),
                    );
                }
                bump(
                    stats,
                    match (report.code_cache_loads > 0, report.code_cache_rejected > 0) {
                        (true, _) => "code-loaded",
                        (false, true) => "code-rejected",
                        (false, false) => "code-missed",
                    },
                );
            }
            Form::Text => {}
        }
        Outcome::Pass
    }

    /// Describes (and, if asked, minimises) failing input `seed`: the log
    /// bytes are shrunk with the program fixed.
    pub fn failure(&mut self, seed: u64, outcome: Outcome, shrink: bool) -> Failure {
        let mut case = match self.generate_guarded(seed) {
            Ok(c) => c,
            Err(o) => {
                return Failure {
                    input_seed: seed,
                    reproducer: format!("generating the input failed: {o:?}"),
                    outcome,
                    raw: None,
                }
            }
        };
        let mut outcome = outcome;
        let mut scratch = Counters::new();
        if shrink {
            let mut attempt = case.clone();
            let mut fails = |b: &[u8]| {
                attempt.bytes = b.to_vec();
                self.check(&attempt, &mut scratch).is_failure()
            };
            if let Form::Code(code) = case.form.clone() {
                let mut attempt = case.clone();
                let mut fails = |b: &[u8]| {
                    attempt.form = Form::Code(b.to_vec());
                    self.check(&attempt, &mut scratch).is_failure()
                };
                case.form = Form::Code(shrink_bytes(&code, 300, &mut fails));
            } else {
                case.bytes = shrink_log_lines(&case.bytes, &mut fails);
                case.bytes = shrink_bytes(&case.bytes, 300, &mut fails);
            }
            outcome = self.check(&case, &mut scratch);
        }
        let program = corpus_case(case.program);
        Failure {
            input_seed: seed,
            reproducer: format!(
                "log ({}; forged: {}): {:?}\nrun anyway: {}\nprogram (corpus {}): {:?}\ninput: {:?}\nmax_steps: {:?}\neof: {:?}\noutcome after shrinking: {:?}",
                case.how,
                case.forged,
                String::from_utf8_lossy(&case.bytes),
                case.run_anyway,
                case.program,
                String::from_utf8_lossy(&program.source),
                program.input,
                program.max_steps,
                program.eof,
                outcome
            ),
            outcome,
            raw: Some(match case.form {
                Form::Code(code) => code,
                _ => case.bytes,
            }),
        }
    }
}

/// Damages bytes of a written file (a binary log, a code cache): flips,
/// changed or inserted bytes, truncation, a duplicated range, a range
/// spliced from `other`; one to three of them. Returns what was done.
fn damage_bytes(rng: &mut Rng, b: &mut Vec<u8>, other: &[u8]) -> String {
    let mut how = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let n = b.len() as u64;
        let at = |rng: &mut Rng| rng.below(n.max(1)) as usize;
        let what = match rng.weighted(&[4, 3, 2, 2, 1, 2, 1]) {
            0 if n > 0 => {
                let i = at(rng);
                b[i] ^= 1 << rng.below(8);
                "bit flip"
            }
            1 if n > 0 => {
                let i = at(rng);
                b[i] = rng.next_u64() as u8;
                "byte changed"
            }
            2 => {
                let i = at(rng);
                b.truncate(i);
                "truncated"
            }
            3 => {
                let i = at(rng).min(b.len());
                let k = rng.range(1, 9) as usize;
                for _ in 0..k {
                    b.insert(i, rng.next_u64() as u8);
                }
                "bytes inserted"
            }
            4 if n > 1 => {
                let i = at(rng);
                let j = (i + rng.range(1, 64) as usize).min(b.len());
                let dup = b[i..j].to_vec();
                b.splice(j..j, dup);
                "range duplicated"
            }
            5 if !other.is_empty() => {
                let i = at(rng).min(b.len());
                let o = rng.below(other.len() as u64) as usize;
                let k = (rng.range(1, 200) as usize).min(other.len() - o);
                let end = (i + k).min(b.len());
                b.splice(i..end, other[o..o + k].iter().copied());
                "range spliced from another file"
            }
            _ => {
                b.push(rng.next_u64() as u8);
                "byte appended"
            }
        };
        how.push(what);
    }
    how.join(", ")
}

/// Drops whole patch (and refute) lines of a log while it still fails,
/// fixing counts and checksum each time (byte-level shrinking would only
/// break the checksum). Logs of more than 255 such lines are left alone.
pub fn shrink_log_lines(bytes: &[u8], fails: &mut dyn FnMut(&[u8]) -> bool) -> Vec<u8> {
    let mut lines = split_lines(bytes);
    if lines.last().is_some_and(|l| l.starts_with(b"checksum ")) {
        lines.pop();
    }
    let body: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with(b"replace ") || lines[i].starts_with(b"refute "))
        .collect();
    if body.is_empty() || body.len() > 255 {
        return bytes.to_vec();
    }
    let assemble = |keep: &[u8]| {
        let kept: Vec<usize> = keep.iter().map(|&k| body[usize::from(k)]).collect();
        let mut b = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if !body.contains(&i) || kept.contains(&i) {
                b.extend_from_slice(l);
            }
        }
        fix_checksum(&b, true)
    };
    let all: Vec<u8> = (0..body.len()).map(|k| k as u8).collect();
    if !fails(&assemble(&all)) {
        return bytes.to_vec();
    }
    let mut on_lines = |keep: &[u8]| fails(&assemble(keep));
    let keep = shrink_bytes(&all, 400, &mut on_lines);
    assemble(&keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_logs_parse_and_checksums_can_be_fixed() {
        let mut c = Checker::new();
        // The first corpus program the optimizer changes.
        let log = (0..CORPUS_SIZE)
            .map(|i| c.entry(i).unwrap().log.clone())
            .find(|log| parse_log(log).is_ok_and(|n| n > 0))
            .expect("some corpus program is optimized");
        // Swapping two header lines breaks the checksum; recomputing it
        // brings the parser to the (now misplaced) header.
        let mut lines = split_lines(&log);
        lines.swap(1, 2);
        let swapped = lines.concat();
        let e = parse_log(&swapped).unwrap_err();
        assert!(e.1.contains("fuzz.log:"), "{e:?}");
        assert_eq!(fix_checksum(&log, true), log);
        let fixed = fix_checksum(&swapped, true);
        assert_eq!(parse_log(&fixed).unwrap_err().0, Some(2));
        // Dropping a patch line breaks the count; recomputing it too gives
        // a log of one patch less.
        let n = parse_log(&log).unwrap();
        assert!(n > 0);
        let mut lines = split_lines(&log);
        let at = lines
            .iter()
            .position(|l| l.starts_with(b"replace "))
            .unwrap();
        lines.remove(at);
        let dropped = lines.concat();
        assert!(parse_log(&fix_checksum(&dropped, false)).is_err());
        assert_eq!(parse_log(&fix_checksum(&dropped, true)), Ok(n - 1));
    }

    #[test]
    fn inputs_reach_every_depth() {
        let mut c = Checker::new();
        let mut stats = Counters::new();
        for seed in 0..300 {
            assert_eq!(c.check_seed(seed, &mut stats), Outcome::Pass, "seed {seed}");
        }
        for k in [
            "parse-error",
            "parsed",
            "ran",
            "unsealed-ignored",
            "binary-ignored",
            "code-rejected",
        ] {
            assert!(stats.get(k).copied().unwrap_or(0) > 0, "{k}: {stats:?}");
        }
    }

    #[test]
    fn damage_is_deterministic() {
        let mut c = Checker::new();
        assert_eq!(c.generate(77).unwrap(), c.generate(77).unwrap());
    }
}
