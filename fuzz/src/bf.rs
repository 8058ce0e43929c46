//! The Brainfuck targets: the reference interpreter against every engine.
//!
//! A [`Case`] is a source, an input, a step limit and an EOF mode. The
//! reference interpreter runs it, and so does every [`Engine`] in
//! [`ENGINES`], each on a fresh tape of [`MIN_TAPE_LIMIT`] cells:
//!
//! * the whole-program JIT driver, optimized and not;
//! * the tiered engine, with two hotness/recompile settings (so short
//!   programs compile loops, speculate, deoptimize and recompile);
//! * the optimizing JIT with a replayed patch log ([`Engine::JitReplayed`]):
//!   a first run records a log in a fresh file, a second run replays it;
//!   the second run is compared, and its report must show every recorded
//!   patch applied and none stale, conflicting or refuted, nothing
//!   re-optimized and no log warnings. It runs on one input in 4 (see
//!   [`engines_for`]).
//!
//! Each engine must give the interpreter's output, error (kind and
//! position) and final tape; a pipeline error is a mismatch too. The
//! `bytes` target feeds arbitrary bytes as source: the parser must reject
//! exactly the unbalanced ones, naming a bracket of the right kind, and
//! accepted ones are run like the `bf` target's.

use crate::rng::Rng;
use crate::shrink::shrink_bytes;
use crate::{guarded, Failure, Outcome};
use vssa_bf::runtime::{self, JitConfig, JitReport};
use vssa_bf::MIN_TAPE_LIMIT;
use vssa_bf::{parse, EofMode, Io, ParseError, Program, RunError, RunOptions, Tape};

/// One Brainfuck run to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub source: Vec<u8>,
    pub input: Vec<u8>,
    /// Always set for programs with loops, so that every run ends.
    pub max_steps: Option<u64>,
    pub eof: EofMode,
}

/// An implementation compared against the reference interpreter. Add a
/// variant (and a [`run_engine`] arm) for each new tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The whole-program JIT, with or without the worklist optimizer.
    Jit { optimize: bool },
    /// The tiered engine, compiling loops after `hot` body entries (low, so
    /// that short programs compile, speculate and deoptimize) and giving
    /// up a failed speculation after `recompile_after` failures (0: never).
    Tiered { hot: u32, recompile_after: u32 },
    /// The optimizing JIT run twice with one fresh patch-log file: the
    /// first run optimizes and saves its log, the second loads and replays
    /// it (the same program, so every patch must apply and the optimizer
    /// must not run); the second run is the one compared.
    JitReplayed,
}

/// Every engine the fuzzer compares with the interpreter.
pub const ENGINES: [Engine; 5] = [
    Engine::Jit { optimize: true },
    Engine::Jit { optimize: false },
    Engine::Tiered {
        hot: 2,
        recompile_after: 1,
    },
    Engine::Tiered {
        hot: 1,
        recompile_after: 0,
    },
    Engine::JitReplayed,
];

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    pub output: Vec<u8>,
    pub result: Result<(), RunError>,
    pub tape: Vec<u8>,
}

/// Generates case `seed`: a balanced program (`bytes == false`) or bytes
/// that are often not (`bytes == true`).
pub fn generate(seed: u64, bytes: bool) -> Case {
    let mut rng = Rng::new(seed);
    let source = if bytes {
        random_bytes(&mut rng)
    } else {
        random_program(&mut rng)
    };
    let input_len = rng.below(9) as usize;
    let input = rng.bytes(input_len);
    let has_loops = source.contains(&b'[');
    let max_steps = if !has_loops && rng.chance(1, 2) {
        None
    } else {
        Some(match rng.weighted(&[2, 5, 3]) {
            0 => rng.below(20),
            1 => rng.below(2_000),
            _ => rng.below(20_000),
        })
    };
    let eof = *rng.pick(&[EofMode::Unchanged, EofMode::Zero, EofMode::MaxByte]);
    Case {
        source,
        input,
        max_steps,
        eof,
    }
}

/// Loop idioms that the builder and peepholes treat specially.
pub(crate) const IDIOMS: [&[u8]; 8] = [
    b"[-]",
    b"[+]",
    b"[->+<]",
    b"[-<+>]",
    b"[->>+<<]",
    b"[>]",
    b"[<]",
    b"[->+>+<<]",
];

/// A balanced program, biased towards code that runs loops and moves.
pub(crate) fn random_program(rng: &mut Rng) -> Vec<u8> {
    let len = rng.range(1, 160) as usize;
    let mut out = Vec::with_capacity(len + 16);
    let mut depth = 0usize;
    if rng.chance(2, 3) {
        let n = rng.range(1, 6) as usize;
        out.extend(std::iter::repeat_n(b'>', n));
    }
    while out.len() < len {
        match rng.weighted(&[5, 3, 4, 3, 2, 1, 3, 3, 2, 1, 1]) {
            0 | 1 => {
                let c = if rng.chance(3, 5) { b'+' } else { b'-' };
                let n = if rng.chance(1, 20) {
                    rng.range(100, 300)
                } else {
                    rng.range(1, 5)
                };
                out.extend(std::iter::repeat_n(c, n as usize));
            }
            2 => {
                let n = rng.range(1, 4) as usize;
                out.extend(std::iter::repeat_n(b'>', n));
            }
            3 => {
                let n = rng.range(1, 4) as usize;
                out.extend(std::iter::repeat_n(b'<', n));
            }
            4 => out.push(b'.'),
            5 => out.push(b','),
            6 if depth < 12 => {
                out.push(b'[');
                depth += 1;
            }
            7 if depth > 0 => {
                out.push(b']');
                depth -= 1;
            }
            8 => {
                let idiom: &[u8] = rng.pick::<&[u8]>(&IDIOMS);
                out.extend_from_slice(idiom);
            }
            9 => out.push(*rng.pick(b" \n\tab#\xff\xc3")),
            _ => {}
        }
    }
    out.extend(std::iter::repeat_n(b']', depth));
    out
}

/// Bytes as source: mostly commands (so some parse), sometimes anything,
/// sometimes a valid program with a few bytes changed.
fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(1, 3) {
        let mut p = random_program(rng);
        for _ in 0..rng.range(1, 3) {
            let at = rng.below(p.len() as u64 + 1) as usize;
            match rng.below(3) {
                0 => p.insert(at, rng.next_u64() as u8),
                1 if at < p.len() => {
                    p.remove(at);
                }
                _ if at < p.len() => p[at] = *rng.pick(b"+-<>.,[]"),
                _ => {}
            }
        }
        return p;
    }
    let len = rng.below(200) as usize;
    (0..len)
        .map(|_| {
            if rng.chance(3, 5) {
                *rng.pick(b"+-<>.,[]")
            } else {
                rng.next_u64() as u8
            }
        })
        .collect()
}

/// Runs `case` on the interpreter and every engine; any difference is a
/// mismatch, any panic a crash.
pub fn check(case: &Case) -> Outcome {
    check_on(case, &ENGINES)
}

/// [`check`] on the given engines only.
pub fn check_on(case: &Case, engines: &[Engine]) -> Outcome {
    guarded(|| check_unguarded(case, engines))
}

/// The engines input `seed` runs on. [`Engine::JitReplayed`] compiles
/// twice through Cranelift (with its verifier) and writes and reads a
/// file: on every input it halved the `bf` target's rate (392 to 182
/// inputs/s), so it runs on one seed in 4 (`seed % 4 == 0`); every other
/// engine runs on every input.
pub fn engines_for(seed: u64) -> &'static [Engine] {
    if seed.is_multiple_of(4) {
        &ENGINES
    } else {
        &ENGINES[..ENGINES.len() - 1]
    }
}

/// Generates and checks input `seed` of a target.
pub fn check_seed(seed: u64, bytes: bool) -> Outcome {
    check_on(&generate(seed, bytes), engines_for(seed))
}

fn check_unguarded(case: &Case, engines: &[Engine]) -> Outcome {
    let prog = match parse(&case.source) {
        Ok(p) => p,
        Err(e) => return check_parse_error(&case.source, e),
    };
    if !balanced(&case.source) {
        return Outcome::Mismatch("the parser accepted unbalanced brackets".into());
    }
    let reference = run_interp(&prog, case);
    if let Some(diff) = compare_engines(&prog, case, &reference, engines) {
        return Outcome::Mismatch(diff);
    }
    // A run that ended within its step limit ends the same without one,
    // and without a limit the builder compiles loops its own way (closed
    // forms, walk loops that test a cell before checking it, unrolled
    // scans): run those paths too.
    let within_limit = !matches!(
        &reference.result,
        Err(e) if matches!(e.kind, vssa_bf::RunErrorKind::StepLimit { .. })
    );
    if case.max_steps.is_some() && within_limit {
        let unlimited = Case {
            max_steps: None,
            ..case.clone()
        };
        if let Some(diff) = compare_engines(&prog, &unlimited, &reference, &UNLIMITED_ENGINES) {
            return Outcome::Mismatch(format!("without a step limit: {diff}"));
        }
    }
    Outcome::Pass
}

/// The engines that also run, without a step limit, a case that ended
/// within its limit.
const UNLIMITED_ENGINES: [Engine; 2] = [
    Engine::Jit { optimize: true },
    Engine::Tiered {
        hot: 1,
        recompile_after: 1,
    },
];

/// The first difference between `reference` and a run of `case` on one of
/// `engines`.
fn compare_engines(
    prog: &Program,
    case: &Case,
    reference: &RunResult,
    engines: &[Engine],
) -> Option<String> {
    for &engine in engines {
        match run_engine(engine, prog, case) {
            Err(e) => return Some(format!("{engine:?}: pipeline error: {e}")),
            Ok(r) => {
                if let Some(diff) = compare(reference, &r) {
                    return Some(format!("{engine:?}: {diff}"));
                }
            }
        }
    }
    None
}

/// Whether the brackets of `src` balance (the parser's contract).
pub(crate) fn balanced(src: &[u8]) -> bool {
    let mut depth = 0usize;
    for &b in src {
        match b {
            b'[' => depth += 1,
            b']' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}

/// A parse error must be for unbalanced source and name a bracket of the
/// kind it reports.
fn check_parse_error(src: &[u8], e: ParseError) -> Outcome {
    if balanced(src) {
        return Outcome::Mismatch(format!("balanced source rejected: {e}"));
    }
    let (pos, want) = match e {
        ParseError::UnmatchedClose { pos } => (pos, b']'),
        ParseError::UnmatchedOpen { pos } => (pos, b'['),
    };
    if src.get(pos.byte) != Some(&want) {
        return Outcome::Mismatch(format!(
            "parse error {e} does not point at a '{}'",
            want as char
        ));
    }
    if pos.line == 0 || pos.col == 0 {
        return Outcome::Mismatch(format!("parse error {e}: lines and columns are 1-based"));
    }
    Outcome::Pass
}

fn options(case: &Case) -> RunOptions {
    RunOptions {
        max_steps: case.max_steps,
        eof: case.eof,
    }
}

/// Compiled code may read the tape's guard zones but never write them.
fn guard_zones_untouched(tape: &Tape) -> Result<(), String> {
    match tape.guards_are_zero() {
        true => Ok(()),
        false => Err("compiled code wrote to a guard zone of the tape".into()),
    }
}

/// The reference run.
pub fn run_interp(prog: &Program, case: &Case) -> RunResult {
    let mut tape = Tape::new(MIN_TAPE_LIMIT).expect("a minimal tape");
    let mut input = &case.input[..];
    let mut output = Vec::new();
    let mut io = Io::new(&mut input, &mut output);
    let result = vssa_bf::run(prog, &mut tape, &mut io, &options(case)).map(|_| ());
    RunResult {
        output,
        result,
        tape: tape.as_slice().to_vec(),
    }
}

/// A run on `engine`; `Err` for a failure of the pipeline itself.
pub fn run_engine(engine: Engine, prog: &Program, case: &Case) -> Result<RunResult, String> {
    match engine {
        Engine::Jit { optimize } => run_jit(prog, case, optimize, None).map(|(r, _)| r),
        Engine::Tiered {
            hot,
            recompile_after,
        } => run_tiered(prog, case, hot, recompile_after),
        Engine::JitReplayed => run_jit_replayed(prog, case),
    }
}

/// [`Engine::JitReplayed`]: records a patch log in a fresh file, then runs
/// again replaying it. `Err` if either run fails in the pipeline, or if the
/// replay was not exact: every recorded patch applied, none stale or
/// conflicting, no warnings about the log.
pub fn run_jit_replayed(prog: &Program, case: &Case) -> Result<RunResult, String> {
    let log = crate::TempFile::new("bf-replayed");
    let (_, first) = run_jit(prog, case, true, Some(log.path()))?;
    if !first.patch_log_warnings.is_empty() {
        return Err(format!(
            "recording run: patch log warnings {:?}",
            first.patch_log_warnings
        ));
    }
    let (r, second) = run_jit(prog, case, true, Some(log.path()))?;
    if second.patches_replayed != first.patches_recorded
        || second.patches_stale + second.patches_conflicting + second.patches_refuted > 0
        || second.patches_recorded > 0
        || !second.patch_log_warnings.is_empty()
    {
        return Err(format!(
            "the program's own patch log did not replay exactly: {} recorded, then {} applied, \
             {} stale, {} conflicting, {} refuted, {} re-recorded, warnings {:?}",
            first.patches_recorded,
            second.patches_replayed,
            second.patches_stale,
            second.patches_conflicting,
            second.patches_refuted,
            second.patches_recorded,
            second.patch_log_warnings
        ));
    }
    Ok(r)
}

/// Runs `prog` with the tiered engine (verifiers on) on a fresh tape.
pub fn run_tiered(
    prog: &Program,
    case: &Case,
    hot: u32,
    recompile_after: u32,
) -> Result<RunResult, String> {
    use vssa_bf::tiered::{run_tiered_on, TieredConfig};
    use vssa_deopt::RecompilePolicy;
    let cfg = TieredConfig {
        jit: JitConfig {
            run: options(case),
            optimize: true,
            verify: true,
            ..JitConfig::default()
        },
        hot_loop: hot,
        policy: RecompilePolicy::after(recompile_after),
        // Every hot loop compiles: the fuzzer is after the compiled code,
        // and its short runs would otherwise never earn a compilation.
        budget: vssa_deopt::CompileBudget::unlimited(),
        // At once, so that every run compiles the same loops.
        compile_thread: false,
        ..TieredConfig::default()
    };
    let prog = std::sync::Arc::new(prog.clone());
    let mut tape = Tape::new(MIN_TAPE_LIMIT).map_err(|e| e.to_string())?;
    let mut input = &case.input[..];
    let mut output = Vec::new();
    let mut io = Io::new(&mut input, &mut output);
    let (_, r) = run_tiered_on(&prog, &mut tape, &mut io, &cfg, &mut |_| {});
    let result = match r {
        Ok(()) => Ok(()),
        Err(runtime::JitError::Run(e)) => Err(e),
        Err(e) => return Err(e.to_string()),
    };
    guard_zones_untouched(&tape)?;
    Ok(RunResult {
        output,
        result,
        tape: tape.as_slice().to_vec(),
    })
}

/// Compiles `prog` with the JIT driver (verifiers on) and runs it on a
/// fresh tape. With `patch_log`, the driver loads that file if it exists,
/// replays it instead of optimizing where it can, and saves the updated log
/// there: exactly what `vssa run --patch-log` does. The report says what the
/// replay did. `Err` for a failure of the pipeline itself.
pub fn run_jit(
    prog: &Program,
    case: &Case,
    optimize: bool,
    patch_log: Option<&std::path::Path>,
) -> Result<(RunResult, JitReport), String> {
    run_jit_cached(prog, case, optimize, patch_log, 0)
}

/// [`run_jit`] with a code cache of `code_bytes` beside the patch log
/// (0: none).
pub fn run_jit_cached(
    prog: &Program,
    case: &Case,
    optimize: bool,
    patch_log: Option<&std::path::Path>,
    code_bytes: u64,
) -> Result<(RunResult, JitReport), String> {
    if patch_log.is_some() {
        crate::private_seal_key();
    }
    let cfg = JitConfig {
        run: options(case),
        optimize,
        verify: true,
        patch_log: patch_log.map(|p| p.to_path_buf()),
        code_store_bytes: code_bytes,
        ..JitConfig::default()
    };
    let mut tape = Tape::new(MIN_TAPE_LIMIT).map_err(|e| e.to_string())?;
    let mut report = JitReport::default();
    let native =
        runtime::compile(prog, tape.len(), &cfg, &mut report).map_err(|e| e.to_string())?;
    let mut input = &case.input[..];
    let mut output = Vec::new();
    let mut io = Io::new(&mut input, &mut output);
    let result = native
        .run(prog, &mut tape, &mut io, &cfg.run, &mut report)
        .map(|_| ());
    guard_zones_untouched(&tape)?;
    Ok((
        RunResult {
            output,
            result,
            tape: tape.as_slice().to_vec(),
        },
        report,
    ))
}

/// The first difference between two runs, if any.
pub(crate) fn compare(want: &RunResult, got: &RunResult) -> Option<String> {
    if want.result != got.result {
        return Some(format!(
            "result {:?}, interpreter {:?}",
            got.result, want.result
        ));
    }
    if want.output != got.output {
        return Some(format!(
            "output {:?}, interpreter {:?}",
            String::from_utf8_lossy(&got.output),
            String::from_utf8_lossy(&want.output)
        ));
    }
    if let Some(i) = (0..want.tape.len()).find(|&i| want.tape.get(i) != got.tape.get(i)) {
        return Some(format!(
            "tape cell {i} is {:?}, interpreter {:?}",
            got.tape.get(i),
            want.tape.get(i)
        ));
    }
    None
}

/// Describes (and, if asked, minimises) failing input `seed`.
pub fn failure(seed: u64, bytes: bool, outcome: Outcome, shrink: bool) -> Failure {
    let mut case = generate(seed, bytes);
    let engines = engines_for(seed);
    let mut outcome = outcome;
    if shrink {
        let mut attempt = case.clone();
        let mut fails = |src: &[u8]| {
            attempt.source = src.to_vec();
            check_on(&attempt, engines).is_failure()
        };
        case.source = shrink_bytes(&case.source, 400, &mut fails);
        let mut attempt = case.clone();
        let mut fails = |input: &[u8]| {
            attempt.input = input.to_vec();
            check_on(&attempt, engines).is_failure()
        };
        case.input = shrink_bytes(&case.input, 100, &mut fails);
        outcome = check_on(&case, engines);
    }
    Failure {
        input_seed: seed,
        reproducer: format!(
            "source: {:?}\ninput: {:?}\nmax_steps: {:?}\neof: {:?}\nengines: {:?}\n\
             outcome after shrinking: {:?}",
            String::from_utf8_lossy(&case.source),
            case.input,
            case.max_steps,
            case.eof,
            engines,
            outcome
        ),
        outcome,
        raw: Some(case.source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_balance() {
        for seed in 0..200 {
            assert!(balanced(&generate(seed, false).source), "seed {seed}");
        }
    }

    #[test]
    fn bytes_mix_valid_and_invalid() {
        let valid = (0..200)
            .filter(|&s| balanced(&generate(s, true).source))
            .count();
        assert!(valid > 20 && valid < 180, "{valid} of 200 balanced");
    }

    #[test]
    fn a_known_program_passes() {
        let case = Case {
            source: b"++++++++[>++++++++<-]>+.,.".to_vec(),
            input: b"z".to_vec(),
            max_steps: Some(1000),
            eof: EofMode::Unchanged,
        };
        assert_eq!(check(&case), Outcome::Pass);
        assert_eq!(
            run_interp(&parse(&case.source).unwrap(), &case).output,
            b"Az"
        );
    }

    /// `engines_for` drops the last engine on 3 seeds in 4: it must be
    /// the slow replayed one, and every other engine must run on every seed.
    #[test]
    fn replayed_log_engine_runs_on_one_seed_in_four() {
        assert_eq!(ENGINES.last(), Some(&Engine::JitReplayed));
        assert_eq!(engines_for(8), &ENGINES[..]);
        assert_eq!(engines_for(9).len(), ENGINES.len() - 1);
        assert!(!engines_for(9).contains(&Engine::JitReplayed));
    }

    #[test]
    fn a_replayed_log_runs_the_program() {
        let case = Case {
            source: b"++>+++[-<+>]<[->>+<<]>>.+[>+<-],.".to_vec(),
            input: b"k".to_vec(),
            max_steps: Some(1000),
            eof: EofMode::Zero,
        };
        let prog = parse(&case.source).unwrap();
        let r = run_engine(Engine::JitReplayed, &prog, &case).unwrap();
        assert_eq!(compare(&run_interp(&prog, &case), &r), None);
        assert_eq!(check_on(&case, &[Engine::JitReplayed]), Outcome::Pass);
    }

    #[test]
    fn parse_errors_are_checked() {
        assert_eq!(
            check_parse_error(b"]", parse(b"]").unwrap_err()),
            Outcome::Pass
        );
        let e = ParseError::UnmatchedOpen {
            pos: vssa_bf::SrcPos {
                line: 1,
                col: 1,
                byte: 0,
            },
        };
        assert!(check_parse_error(b"]", e).is_failure());
    }
}
