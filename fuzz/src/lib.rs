//! # vssa-fuzz: differential fuzzing of the vssa pipeline
//!
//! Every target generates random inputs from a seeded PRNG, runs them
//! through two or more implementations that must agree, and reports any
//! disagreement (a *mismatch*) or panic (a *crash*, caught with
//! `catch_unwind`). It runs on stable Rust with no fuzzing engine: the
//! generators know the input languages, so they reach deep code without
//! coverage feedback.
//!
//! * [`Target::Bf`]: random balanced Brainfuck programs and inputs; the
//!   reference interpreter against every engine (output, error kind and
//!   position, final tape): the JIT optimized and not, the tiered engine in
//!   two settings, and (one input in 4) the optimizing JIT replaying its
//!   own patch log, which must apply in full.
//! * [`Target::Lir`]: random well-formed LIR graphs; the LIR interpreter
//!   ([`vssa::interp`]) on the graph built without peepholes, on the graph
//!   built with them, optimized, and control-folded, on each printed and
//!   parsed back, and native code for both; the patch log of the
//!   optimization and folding replays onto the graph built afresh.
//! * [`Target::Bytes`]: random bytes as Brainfuck source: a clean parse
//!   error, or a run on which interpreter and JIT agree.
//! * [`Target::Replay`]: a program's patch log replayed onto a mutated
//!   copy of the program. On every input, patch by patch (the program key
//!   check bypassed, patches on changed loop back edges dropped), with and
//!   without optimizing afterwards; the LIR interpreter's run of the result
//!   (resumed in the Brainfuck interpreter after a guard fails) must be
//!   the mutated program's. On one input in 8, also through the driver
//!   with a shared patch-log file, compiled and run natively.
//! * [`Target::LogBytes`]: random and damaged patch-log files: a parse
//!   error naming a line, or a replay whose run matches the interpreter.
//! * [`Target::Shapes`]: hostile program shapes (deep nesting, many loops,
//!   long straight lines, huge programs, random bytes) under per-input time
//!   and memory limits, interpreter vs JIT vs tiered.
//! * [`Target::LuaShapes`]: hostile Lua scripts (deep nesting, long
//!   chains, huge scripts, random bytes and tokens, growth without end,
//!   backtracking patterns, deep recursion) on the Lua interpreter under
//!   step, memory and time limits.
//! * [`Target::Lua`]: random terminating Lua programs (numbers, strings,
//!   tables, metatables, closures, varargs, errors) on vssa's interpreter
//!   and on the reference Lua 5.4 (`mlua`): same printed output and error
//!   messages.
//!
//! New targets are new [`Target`] variants with a `check` function; new
//! Brainfuck engines are new [`bf::Engine`] variants, compared against the
//! interpreter by the same code.

pub mod bf;
pub mod lir;
pub mod logbytes;
pub mod luadiff;
pub mod luashapes;
pub mod replay;
pub mod rng;
pub mod shapes;
pub mod shrink;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to fuzz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Brainfuck programs: interpreter vs every engine.
    Bf,
    /// LIR graphs: interpreter before/after optimization vs native code.
    Lir,
    /// Arbitrary bytes as Brainfuck source.
    Bytes,
    /// A patch log replayed onto a mutated program (per patch and by the driver).
    Replay,
    /// Random and damaged patch-log files.
    LogBytes,
    /// Hostile program shapes under time and memory limits.
    Shapes,
    /// Hostile Lua scripts under step, memory and time limits.
    LuaShapes,
    /// Random Lua programs: vssa's interpreter vs the reference Lua 5.4.
    Lua,
}

impl Target {
    pub const ALL: [Target; 8] = [
        Target::Bf,
        Target::Lir,
        Target::Bytes,
        Target::Replay,
        Target::LogBytes,
        Target::Shapes,
        Target::LuaShapes,
        Target::Lua,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Bf => "bf",
            Target::Lir => "lir",
            Target::Bytes => "bytes",
            Target::Replay => "replay",
            Target::LogBytes => "logbytes",
            Target::Shapes => "shapes",
            Target::LuaShapes => "lua-shapes",
            Target::Lua => "lua",
        }
    }

    pub fn from_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// The verdict on one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All implementations agreed.
    Pass,
    /// They disagreed (or one failed where it must not): what differed.
    Mismatch(String),
    /// Something panicked: the panic message.
    Crash(String),
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Pass)
    }
}

/// Named event counts a target keeps besides pass/fail (how often a
/// replayed log applied, how often a damaged log parsed, ...). A
/// `BTreeMap`, so that summaries print in a fixed order.
pub type Counters = std::collections::BTreeMap<&'static str, u64>;

/// Adds one to counter `key`.
pub fn bump(c: &mut Counters, key: &'static str) {
    *c.entry(key).or_default() += 1;
}

/// Points `VSSA_CACHE_DIR` (where the key that seals patch logs lives)
/// at a folder of the temporary directory, once per process: the fuzzers
/// never make or use the user's own key.
pub fn private_seal_key() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("VSSA_CACHE_DIR", scratch_dir().join("key"));
    });
}

/// This process's own folder of the temporary directory, made on first
/// use: the fuzzers' logs, caches and seal key live there. A folder of
/// their own keeps the driver's scan for stale temporaries beside a log
/// (one directory listing per load) short, however full `/tmp` is.
pub fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        // Folders of earlier fuzzing (or smoke-test) processes that are gone.
        vssa_patch::fsutil::remove_folders_of_finished_processes("vssa-fuzz-");
        let dir = std::env::temp_dir().join(format!("vssa-fuzz-{}", std::process::id()));
        // A folder left by a dead process with the same id is reused.
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

/// Removes [`scratch_dir`] and everything in it: the last thing a fuzzing
/// process does.
pub fn remove_scratch_dir() {
    let _ = std::fs::remove_dir_all(scratch_dir());
}

/// A scratch file path unique in this process and among processes (the
/// process id and a counter), removed when dropped. Smoke tests run in
/// parallel threads, and release runs in parallel processes.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(what: &str) -> TempFile {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempFile(scratch_dir().join(format!("{what}-{n}.log")))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        // The code cache a run keeps beside its patch log.
        let _ = std::fs::remove_file(vssa_backend::stored::path_beside(&self.0));
    }
}

/// Runs `f`, turning a panic into [`Outcome::Crash`].
pub fn guarded(f: impl FnOnce() -> Outcome) -> Outcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(o) => o,
        Err(payload) => Outcome::Crash(panic_message(payload.as_ref())),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".into()
    }
}

/// How long a run lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Count(u64),
    Time(Duration),
    /// Whichever comes first: a count goal under a deadline.
    Either(u64, Duration),
}

/// A fuzzing run.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub limit: Limit,
    /// Where reproducers go (`None`: only reported).
    pub out: Option<PathBuf>,
    /// Shrink failures before saving them (slow for big failures).
    pub shrink: bool,
    /// Print a progress line on stderr this often (`None`: quiet).
    pub progress: Option<Duration>,
}

/// One failing input, minimised when the target knows how.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The per-input seed: regenerates the input.
    pub input_seed: u64,
    pub outcome: Outcome,
    /// A human-readable reproducer (the source and input, or the graph).
    pub reproducer: String,
    /// Raw bytes of the minimised input, for targets that have one.
    pub raw: Option<Vec<u8>>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub target: Target,
    pub tried: u64,
    pub mismatches: u64,
    pub crashes: u64,
    pub elapsed: Duration,
    /// The first few failures (all are counted).
    pub failures: Vec<Failure>,
    /// What the target counted besides failures.
    pub counters: Counters,
}

impl Summary {
    pub fn per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.tried as f64 / s
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} inputs, {} mismatches, {} crashes, {:.1} s, {:.0} inputs/s",
            self.target.name(),
            self.tried,
            self.mismatches,
            self.crashes,
            self.elapsed.as_secs_f64(),
            self.per_second()
        )?;
        for (i, (k, v)) in self.counters.iter().enumerate() {
            write!(f, "{}{k} {v}", if i == 0 { "; " } else { ", " })?;
        }
        Ok(())
    }
}

/// At most this many failures are kept (and shrunk) per run.
const KEPT_FAILURES: usize = 10;

/// Fuzzes `target` as `cfg` says and reports what happened. Reproducers
/// of the first failures are written to `cfg.out` if set.
pub fn run_target(target: Target, cfg: &Config) -> Summary {
    let t0 = Instant::now();
    let mut summary = Summary {
        target,
        tried: 0,
        mismatches: 0,
        crashes: 0,
        elapsed: Duration::ZERO,
        failures: Vec::new(),
        counters: Counters::new(),
    };
    let mut lir = lir::Checker::new();
    let mut logs = logbytes::Checker::new();
    let mut next_report = cfg.progress.map(|p| t0 + p);
    loop {
        if let (Some(at), Some(every)) = (next_report, cfg.progress) {
            if Instant::now() >= at {
                let s = t0.elapsed().as_secs_f64();
                eprintln!(
                    "vssa-fuzz: {}: {} inputs, {} mismatches, {} crashes, {:.0} s, {:.0} inputs/s",
                    target.name(),
                    summary.tried,
                    summary.mismatches,
                    summary.crashes,
                    s,
                    summary.tried as f64 / s.max(1e-9)
                );
                next_report = Some(at + every);
            }
        }
        let more = match cfg.limit {
            Limit::Count(n) => summary.tried < n,
            Limit::Time(d) => t0.elapsed() < d,
            Limit::Either(n, d) => summary.tried < n && t0.elapsed() < d,
        };
        if !more {
            break;
        }
        let seed = rng::input_seed(cfg.seed, summary.tried);
        summary.tried += 1;
        let outcome = match target {
            Target::Bf => bf::check_seed(seed, false),
            Target::Bytes => bf::check_seed(seed, true),
            Target::Lir => lir.check_seed(seed),
            Target::Replay => replay::check_seed(seed, &mut summary.counters),
            Target::LogBytes => logs.check_seed(seed, &mut summary.counters),
            Target::Shapes => shapes::check_seed(seed, &mut summary.counters),
            Target::LuaShapes => luashapes::check_seed(seed, &mut summary.counters),
            Target::Lua => luadiff::check_seed(seed, &mut summary.counters),
        };
        match &outcome {
            Outcome::Pass => continue,
            Outcome::Mismatch(_) => summary.mismatches += 1,
            Outcome::Crash(_) => summary.crashes += 1,
        }
        if summary.failures.len() < KEPT_FAILURES {
            let failure = match target {
                Target::Bf => bf::failure(seed, false, outcome, cfg.shrink),
                Target::Bytes => bf::failure(seed, true, outcome, cfg.shrink),
                Target::Lir => lir::failure(seed, outcome),
                Target::Replay => replay::failure(seed, outcome, cfg.shrink),
                Target::LogBytes => logs.failure(seed, outcome, cfg.shrink),
                Target::Shapes => shapes::failure(seed, outcome),
                Target::LuaShapes => luashapes::failure(seed, outcome),
                Target::Lua => luadiff::failure(seed, outcome, cfg.shrink),
            };
            if let Some(dir) = &cfg.out {
                if let Err(e) = save(dir, target, &failure) {
                    eprintln!(
                        "vssa-fuzz: cannot save a reproducer in {}: {e}",
                        dir.display()
                    );
                }
            }
            summary.failures.push(failure);
        }
    }
    if target == Target::Lir {
        for (k, v) in lir.counters() {
            summary.counters.insert(k, *v);
        }
    }
    summary.elapsed = t0.elapsed();
    summary
}

/// Writes `<target>-<seed>.txt` (and `.b` with the raw bytes if any).
fn save(dir: &std::path::Path, target: Target, f: &Failure) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stem = format!("{}-{:016x}", target.name(), f.input_seed);
    let text = format!(
        "target: {}\ninput seed: {:#018x}\noutcome: {:?}\n\n{}\n",
        target.name(),
        f.input_seed,
        f.outcome,
        f.reproducer
    );
    std::fs::write(dir.join(format!("{stem}.txt")), text)?;
    if let Some(raw) = &f.raw {
        std::fs::write(dir.join(format!("{stem}.b")), raw)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_round_trip() {
        for t in Target::ALL {
            assert_eq!(Target::from_name(t.name()), Some(t));
        }
        assert_eq!(Target::from_name("nope"), None);
    }

    #[test]
    fn panics_become_crashes() {
        let o = guarded(|| panic!("boom {}", 1));
        assert_eq!(o, Outcome::Crash("boom 1".into()));
        assert_eq!(guarded(|| Outcome::Pass), Outcome::Pass);
    }

    #[test]
    fn temp_files_are_distinct_and_removed() {
        let a = TempFile::new("t");
        let b = TempFile::new("t");
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path(), b"x").unwrap();
        let p = a.path().to_path_buf();
        drop(a);
        assert!(!p.exists());
    }

    #[test]
    fn either_limit_stops_at_the_count() {
        let cfg = Config {
            seed: 1,
            limit: Limit::Either(5, Duration::from_secs(600)),
            out: None,
            shrink: false,
            progress: None,
        };
        assert_eq!(run_target(Target::Bytes, &cfg).tried, 5);
    }

    #[test]
    fn counters_print_in_order() {
        let mut s = Summary {
            target: Target::Replay,
            tried: 2,
            mismatches: 0,
            crashes: 0,
            elapsed: Duration::from_secs(1),
            failures: vec![],
            counters: Counters::new(),
        };
        bump(&mut s.counters, "stale");
        bump(&mut s.counters, "applied-fully");
        bump(&mut s.counters, "stale");
        assert!(s.to_string().ends_with("; applied-fully 1, stale 2"), "{s}");
    }
}
