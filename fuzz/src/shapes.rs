//! The `shapes` target: hostile program shapes under resource limits.
//!
//! The other Brainfuck targets look for wrong answers in small programs.
//! This one looks for runaway cost: very deep nesting, very many loops,
//! very long straight-line runs, huge programs, and random bytes, from a
//! few bytes up to a few megabytes. Each case runs under the interpreter,
//! the whole-program JIT and the tiered engine with its default compile
//! budget (the hidden naive baseline compiles without any bound on purpose
//! and is left out). Every engine must give the interpreter's output and
//! error, and stay within per-input limits:
//!
//! * time: at most [`TIME_FACTOR`] × the interpreter's time plus
//!   [`TIME_SLACK`], both counted in CPU time of the running thread
//!   (`/proc/thread-self/stat`, 10 ms ticks; wall time where that is not
//!   available), so that a busy machine does not make overruns. The slack
//!   covers one whole-program compilation at the unit size bound (about
//!   1–2 s on the development machine); the 1.5× target of the tiered
//!   engine is measured by benchmark, not here;
//! * memory: peak resident memory during the run at most [`MEM_BASE`] plus
//!   [`MEM_PER_BYTE`] per source byte (the bound docs/testing.md states),
//!   measured by resetting the process's high-water mark before each run
//!   (`/proc/self/clear_refs`) and reading `VmHWM` after it; where that is
//!   not available only time is checked.

use crate::rng::Rng;
use crate::{guarded, Counters, Outcome};
use std::time::{Duration, Instant};
use vssa_bf::runtime::{self, JitConfig};
use vssa_bf::tiered::{run_tiered_on, TieredConfig};
use vssa_bf::{parse, EofMode, Io, RunOptions, Tape, MIN_TAPE_LIMIT};

/// An engine may take this many times the interpreter's time ...
pub const TIME_FACTOR: u32 = 4;
/// ... plus this.
pub const TIME_SLACK: Duration = Duration::from_secs(3);
/// Peak resident memory allowed besides what the program's size explains.
pub const MEM_BASE: u64 = 256 << 20;
/// Peak resident memory allowed per source byte.
pub const MEM_PER_BYTE: u64 = 160;

/// The shapes generated, with their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    DeepNest,
    ManyLoops,
    StraightLine,
    Huge,
    RandomBytes,
}

const SHAPES: [(Shape, u32); 5] = [
    (Shape::DeepNest, 3),
    (Shape::ManyLoops, 3),
    (Shape::StraightLine, 3),
    (Shape::Huge, 1),
    (Shape::RandomBytes, 3),
];

/// A size drawn log-uniformly from 1 to `max`: most cases are small and
/// fast, and every order of magnitude is reached.
pub(crate) fn size(rng: &mut Rng, max: u64) -> usize {
    let bits = 64 - max.leading_zeros() as u64;
    let b = rng.below(bits + 1);
    let top = (1u64 << b).min(max);
    (top / 2 + rng.below(top / 2 + 1)).max(1) as usize
}

/// Case `seed`: its shape and source.
pub fn generate(seed: u64) -> (Shape, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let weights: Vec<u32> = SHAPES.iter().map(|s| s.1).collect();
    let shape = SHAPES[rng.weighted(&weights)].0;
    let mut src = Vec::new();
    match shape {
        Shape::DeepNest => {
            // Entered (`+` first) or skipped; the body empties the cell so
            // every level ends.
            let depth = size(&mut rng, 200_000);
            if rng.chance(1, 2) {
                src.push(b'+');
            }
            src.extend(std::iter::repeat_n(b'[', depth));
            src.extend_from_slice(if rng.chance(1, 2) { b"-" } else { b"-.>+<" });
            src.extend(std::iter::repeat_n(b']', depth));
        }
        Shape::ManyLoops => {
            // Loops that each go hot once: `+n[->+<]>` carries a growing
            // count to the right, `+n[-]` clears.
            let loops = size(&mut rng, 100_000);
            for _ in 0..loops {
                let n = 1 + rng.below(120) as usize;
                src.extend(std::iter::repeat_n(b'+', n));
                src.extend_from_slice(if rng.chance(1, 2) { b"[->+<]>" } else { b"[-]" });
            }
            src.push(b'.');
        }
        Shape::StraightLine => {
            let len = size(&mut rng, 2_000_000);
            let mut ptr = 0i64;
            for _ in 0..len {
                let c = *rng.pick(b"+-<>.+-+-");
                match c {
                    b'<' if ptr == 0 => continue,
                    b'<' => ptr -= 1,
                    b'>' if ptr >= 20_000 => continue,
                    b'>' => ptr += 1,
                    _ => {}
                }
                src.push(c);
            }
        }
        Shape::Huge => {
            // Real code repeated: a copy loop, a nested multiply, output.
            let chunk: &[u8] = b"++++++++[>++++[>++>+++<<-]>+<<-]>>.>+.<<[-]>[-]>[-]>[-]<<<\n";
            let reps = size(&mut rng, 4_000_000 / chunk.len() as u64);
            for _ in 0..reps {
                src.extend_from_slice(chunk);
            }
        }
        Shape::RandomBytes => {
            let len = size(&mut rng, 1_000_000);
            for _ in 0..len {
                src.push(if rng.chance(1, 2) {
                    *rng.pick(b"+-<>[].")
                } else {
                    rng.below(256) as u8
                });
            }
        }
    }
    (shape, src)
}

/// The shapes the issue that asked for this target measured, at its sizes,
/// by name: what `vssa-fuzz --write-shapes DIR` writes, for `vssa bench bf
/// --corpus DIR` to time the engines on (docs/deopt.md).
pub fn named() -> Vec<(&'static str, Vec<u8>)> {
    let nest = [vec![b'['; 1_000_000], vec![b']'; 1_000_000]].concat();
    let mut loops = Vec::new();
    for _ in 0..200_000 {
        loops.extend_from_slice(
            b"++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++[->+<]>",
        );
    }
    // 50 MB of real code: a copy and a nested multiply that clear their
    // cells, printing a character each time.
    let chunk: &[u8] = b"++++++++[>++++[>++>+++<<-]>+<<-]>>.>+.<<[-]>[-]>[-]>[-]<<<\n";
    let real = chunk.repeat(50_000_000 / chunk.len());
    let mut straight = Vec::with_capacity(2_000_000);
    while straight.len() < 2_000_000 {
        straight.extend_from_slice(b"+>++>+++<<-.>");
    }
    straight.extend_from_slice(b"<");
    vec![
        ("nest-1m", nest),
        ("loops-200k", loops),
        ("real-50mb", real),
        ("straight-2mb", straight),
    ]
}

/// Peak resident memory since the last [`reset_peak`], in bytes.
pub(crate) fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak resident memory to the current one; false where the
/// kernel does not support it.
pub(crate) fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// CPU time the calling thread has used (user + system), if the kernel
/// says; Linux reports it in clock ticks of 1/100 s.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces, so split after
    // its closing parenthesis): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// One engine's run: output, error text, time, peak memory.
struct Run {
    output: Vec<u8>,
    error: Option<String>,
    time: Duration,
    peak: Option<u64>,
}

fn measure(f: impl FnOnce(&mut Io<'_>) -> Result<(), String>) -> Run {
    let measured = reset_peak();
    let mut input: &[u8] = &[];
    let mut output = Vec::new();
    let t = Instant::now();
    let cpu = thread_cpu_time();
    let error = {
        let mut io = Io::new(&mut input, &mut output);
        f(&mut io).err()
    };
    let time = match (cpu, thread_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => t.elapsed(),
    };
    let peak = if measured { peak_rss() } else { None };
    Run {
        output,
        error,
        time,
        peak,
    }
}

/// Checks case `seed`; counts what it did in `counters`.
pub fn check_seed(seed: u64, counters: &mut Counters) -> Outcome {
    guarded(|| check(seed, counters))
}

fn check(seed: u64, counters: &mut Counters) -> Outcome {
    let (shape, src) = generate(seed);
    crate::bump(
        counters,
        match shape {
            Shape::DeepNest => "deep-nest",
            Shape::ManyLoops => "many-loops",
            Shape::StraightLine => "straight-line",
            Shape::Huge => "huge",
            Shape::RandomBytes => "random-bytes",
        },
    );
    let prog = match parse(&src) {
        Ok(p) => std::sync::Arc::new(p),
        Err(_) if shape == Shape::RandomBytes => {
            crate::bump(counters, "parse-errors");
            return Outcome::Pass;
        }
        Err(e) => return Outcome::Mismatch(format!("a generated shape did not parse: {e}")),
    };
    // Random bytes may loop for ever: give them a step limit.
    let opts = RunOptions {
        max_steps: (shape == Shape::RandomBytes).then_some(1_000_000),
        eof: EofMode::Unchanged,
    };
    let jit_cfg = JitConfig {
        run: opts,
        optimize: true,
        ..JitConfig::default()
    };
    let interp = measure(|io| {
        let mut tape = Tape::new(MIN_TAPE_LIMIT).map_err(|e| e.to_string())?;
        vssa_bf::run(&prog, &mut tape, io, &opts)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let jit = measure(|io| {
        let (_, r) = runtime::run_jit(&prog, MIN_TAPE_LIMIT, io, &jit_cfg);
        match r {
            Err(runtime::JitError::TooLarge(_)) => {
                crate::bump(counters, "jit-too-large");
                // What `vssa run --engine jit` does then: the tiered engine.
                run_tiered_default(&prog, io, &jit_cfg)
            }
            r => r.map_err(|e| e.to_string()),
        }
    });
    let tiered = measure(|io| run_tiered_default(&prog, io, &jit_cfg));
    let time_limit = interp.time * TIME_FACTOR + TIME_SLACK;
    let mem_limit = MEM_BASE + MEM_PER_BYTE * src.len() as u64;
    for (name, run) in [("interp", &interp), ("jit", &jit), ("tiered", &tiered)] {
        if name != "interp" && (run.output != interp.output || run.error != interp.error) {
            return Outcome::Mismatch(format!(
                "{name} differs from the interpreter on a {shape:?} of {} bytes: \
                 error {:?} vs {:?}, {} vs {} output bytes",
                src.len(),
                run.error,
                interp.error,
                run.output.len(),
                interp.output.len()
            ));
        }
        if name != "interp" && run.time > time_limit {
            return Outcome::Mismatch(format!(
                "{name} took {:?} on a {shape:?} of {} bytes (limit {time_limit:?}; interp {:?})",
                run.time,
                src.len(),
                interp.time
            ));
        }
        if let Some(peak) = run.peak {
            if peak > mem_limit {
                return Outcome::Mismatch(format!(
                    "{name} peaked at {} MB on a {shape:?} of {} bytes (limit {} MB)",
                    peak >> 20,
                    src.len(),
                    mem_limit >> 20
                ));
            }
        }
    }
    Outcome::Pass
}

fn run_tiered_default(
    prog: &std::sync::Arc<vssa_bf::Program>,
    io: &mut Io<'_>,
    jit: &JitConfig,
) -> Result<(), String> {
    let cfg = TieredConfig {
        jit: jit.clone(),
        ..TieredConfig::default()
    };
    let mut tape = Tape::new(MIN_TAPE_LIMIT).map_err(|e| e.to_string())?;
    let (_, r) = run_tiered_on(prog, &mut tape, io, &cfg, &mut |_| {});
    r.map_err(|e| e.to_string())
}

/// The reproducer of a failing case: its seed regenerates it; the source
/// is saved whole (it may be megabytes).
pub fn failure(seed: u64, outcome: Outcome) -> crate::Failure {
    let (shape, src) = generate(seed);
    crate::Failure {
        input_seed: seed,
        outcome,
        reproducer: format!(
            "a {shape:?} of {} bytes (saved beside this file)",
            src.len()
        ),
        raw: Some(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_generated_and_sizes_span_magnitudes() {
        let mut seen = std::collections::BTreeSet::new();
        let mut largest = 0;
        for seed in 0..400 {
            let (shape, src) = generate(seed);
            seen.insert(format!("{shape:?}"));
            largest = largest.max(src.len());
        }
        assert_eq!(seen.len(), SHAPES.len(), "{seen:?}");
        assert!(largest > 100_000, "{largest}");
    }

    #[test]
    fn generated_shapes_other_than_random_bytes_parse() {
        for seed in 0..200 {
            let (shape, src) = generate(seed);
            if shape != Shape::RandomBytes {
                assert!(parse(&src).is_ok(), "seed {seed}: {shape:?}");
            }
        }
    }

    #[test]
    fn thread_cpu_time_counts_work() {
        let Some(a) = thread_cpu_time() else {
            println!("skipped: no /proc/thread-self/stat here");
            return;
        };
        // Spin until the thread's CPU time has grown by 50 ms (it must, if
        // the right fields are read), giving up after 20 s of wall time.
        let t = Instant::now();
        let mut x = 0u64;
        let mut b = a;
        while b < a + Duration::from_millis(50) && t.elapsed() < Duration::from_secs(20) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            b = thread_cpu_time().unwrap();
        }
        assert!(b >= a + Duration::from_millis(50), "{a:?} then {b:?}");
    }

    #[test]
    fn a_few_cases_pass() {
        let mut c = Counters::new();
        for seed in 0..6 {
            // Small seeds only: the test keeps to the fast cases.
            let (_, src) = generate(seed);
            if src.len() > 20_000 {
                continue;
            }
            assert_eq!(check_seed(seed, &mut c), Outcome::Pass, "seed {seed}");
        }
    }
}
