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
//!   reference interpreter against the JIT, optimized and not (output,
//!   error kind and position, final tape).
//! * [`Target::Lir`]: random well-formed LIR graphs; the LIR interpreter
//!   ([`vssa::interp`]) on the graph built without peepholes, on the graph
//!   built with them and optimized, and native code for both.
//! * [`Target::Bytes`]: random bytes as Brainfuck source: a clean parse
//!   error, or a run on which interpreter and JIT agree.
//!
//! New targets (patch-log files, the tiered engine) are new [`Target`]
//! variants with a `check` function; new Brainfuck engines are new
//! [`bf::Engine`] variants, compared against the interpreter by the same
//! code.

pub mod bf;
pub mod lir;
pub mod rng;
pub mod shrink;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to fuzz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Brainfuck programs: interpreter vs JIT.
    Bf,
    /// LIR graphs: interpreter before/after optimization vs native code.
    Lir,
    /// Arbitrary bytes as Brainfuck source.
    Bytes,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Bf, Target::Lir, Target::Bytes];

    pub fn name(self) -> &'static str {
        match self {
            Target::Bf => "bf",
            Target::Lir => "lir",
            Target::Bytes => "bytes",
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
        )
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
    };
    let mut lir = lir::Checker::new();
    loop {
        let more = match cfg.limit {
            Limit::Count(n) => summary.tried < n,
            Limit::Time(d) => t0.elapsed() < d,
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
}
