//! The `replay` target: a patch log recorded for one program, replayed
//! onto a mutated copy of it, patch by patch and through the real driver.
//!
//! Each input is a random Brainfuck program `A` and a mutation `A'` of it
//! (instructions inserted, deleted or changed, loops wrapped or unwrapped,
//! idioms inserted; and edits that leave the graph as it was: comment
//! bytes, `+-`). Both run with `A`'s input, step limit and EOF mode.
//!
//! **Per-patch check, every input, no Cranelift** (`check_patches`):
//!
//! 1. `A`'s whole-program graph is built with the driver's
//!    `BuildOptions` (a [`MIN_TAPE_LIMIT`] tape; the step limit compiled in
//!    when the case has one), optimized, and its replacements recorded
//!    (`vssa_patch::Recorder`), as the driver's `jit` engine does.
//! 2. `A'`'s graph is built fresh and `A`'s patches are replayed onto it
//!    with `A'`'s own program key in the log, so the whole-log key check
//!    passes and every patch is applied, stale or conflicting on its own.
//!    Patches resting on a loop back edge that `A'` changed are dropped
//!    first: addresses do not cover back edges, so such a patch would
//!    apply and be wrong (`[]` vs `[+]`); the driver is safe from this only
//!    because of the key check. See `back_edge_tainted`.
//! 3. On odd seeds the optimizer then runs on what replay left (as the
//!    driver does after a partial replay); on even seeds it does not.
//! 4. The graph must pass the verifier, and its run in the LIR interpreter
//!    (`vssa::interp::eval`: host calls do the case's I/O and EOF mode, the
//!    context at `ctx_offset` and the tape in one `Memory`) must give the
//!    reference interpreter's output, error (kind and position) and final
//!    tape for `A'`. A failing bounds or step guard (an
//!    `InterpError::Deopt`) resumes the Brainfuck interpreter at its frame
//!    through the driver's `BfGuest`, as the driver does.
//! 5. When `A'` builds the same graph as `A` (same program key), every
//!    patch must apply.
//!
//! **Driver check, one seed in 8** ([`Mode::driver`], `seed % 8 == 0`):
//! two runs of the JIT driver share one patch-log file, as two invocations
//! of `vssa run --patch-log FILE` would. `A`, optimizing, records and saves
//! the log and must match the interpreter; `A'` loads it (the whole log is
//! stale when the program key differs), optimizes what did not apply,
//! compiles and runs, and must match the interpreter's run of `A'`. When
//! `A'` is `A` byte for byte the log must apply in full.
//!
//! Counters in the summary: per input, how `A`'s patches fared on `A'`
//! (`patch-applied-all`, `patch-partial`, `patch-stale-all`,
//! `patch-log-empty`; `patch-conflicts` when any conflicted,
//! `patch-back-edge-dropped` when any were dropped before replay),
//! `patch-then-optimize`, `lir-deopt` (the LIR run left through a guard),
//! `lir-out-of-fuel` (not compared; should stay 0); for the driver path
//! `driver-checked`, `applied-fully`, `partial`, `stale`, `log-empty`,
//! `with-conflicts`, `identical-source`.

use crate::bf::{self, run_interp, run_jit, Case, RunResult};
use crate::rng::Rng;
use crate::shrink::{matching_close, shrink_bytes};
use crate::{bump, guarded, Counters, Failure, Outcome, TempFile};
use std::collections::HashSet;
use vssa::interp::{InterpError, Memory};
use vssa::{Addr, NodeId};
use vssa_bf::build::{
    build_program, ctx_offset, BuildOptions, DEOPT_SLOTS, EXIT_DONE, HOST_GETCHAR, HOST_PUTCHAR,
};
use vssa_bf::runtime::BfGuest;
use vssa_bf::{parse, Io, Program, RunOptions, Tape, MIN_TAPE_LIMIT};
use vssa_deopt::{DeoptExit, Frame, Guest};
use vssa_patch::{Outcome as PatchOutcome, Recorder};

/// A program and its mutation; both run with `a`'s input, step limit and
/// EOF mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayCase {
    pub a: Case,
    pub mutated: Vec<u8>,
}

/// Generates input `seed`.
pub fn generate(seed: u64) -> ReplayCase {
    let mut rng = Rng::new(seed);
    let mut a = bf::generate(rng.next_u64(), false);
    let mut mutated = a.source.clone();
    // Sometimes none at all: the log must then apply in full.
    let n = rng.weighted(&[1, 6, 3, 2]);
    for _ in 0..n {
        mutate(&mut rng, &mut mutated);
    }
    // A mutation may add the first loop: every run must still end.
    if a.max_steps.is_none() && mutated.contains(&b'[') {
        a.max_steps = Some(rng.below(20_000));
    }
    ReplayCase { a, mutated }
}

/// Non-bracket commands.
const PLAIN: &[u8] = b"+-<>.,";

/// One random edit that keeps `src` balanced.
pub fn mutate(rng: &mut Rng, src: &mut Vec<u8>) {
    let at = rng.below(src.len() as u64 + 1) as usize;
    match rng.below(9) {
        // Comment bytes: the same program.
        0 => {
            for _ in 0..rng.range(1, 3) {
                src.insert(at, *rng.pick(b" \nab#\xff"));
            }
        }
        // Adds that cancel: normally the same graph.
        1 => {
            let pair: &[u8] = rng.pick::<&[u8]>(&[b"+-", b"-+"]);
            src.splice(at..at, pair.iter().copied());
        }
        2 => src.insert(at, *rng.pick(PLAIN)),
        // Delete or change a plain command (the first at or after `at`).
        3 | 4 => {
            let found = (at..src.len())
                .chain(0..at)
                .find(|&i| PLAIN.contains(&src[i]));
            if let Some(i) = found {
                if rng.chance(1, 2) {
                    src.remove(i);
                } else {
                    src[i] = *rng.pick(PLAIN);
                }
            }
        }
        5 => {
            let idiom: &[u8] = rng.pick::<&[u8]>(&bf::IDIOMS);
            src.splice(at..at, idiom.iter().copied());
        }
        // Wrap a balanced stretch starting at `at` in a loop.
        6 => {
            let mut ends = vec![at];
            let mut depth = 0usize;
            for (i, &b) in src.iter().enumerate().skip(at) {
                match b {
                    b'[' => depth += 1,
                    b']' if depth == 0 => break,
                    b']' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    ends.push(i + 1);
                }
            }
            let end = *rng.pick(&ends);
            src.insert(end, b']');
            src.insert(at, b'[');
            if rng.chance(1, 2) {
                src.insert(at + 1, b'-');
            }
        }
        // Unwrap a loop: remove a matched pair.
        7 => {
            let open = (at..src.len()).chain(0..at).find(|&i| src[i] == b'[');
            if let Some(i) = open {
                if let Some(j) = matching_close(src, i) {
                    src.remove(j);
                    src.remove(i);
                }
            }
        }
        // Duplicate a short balanced-free stretch of plain commands.
        _ => {
            let end = (at..src.len())
                .take(8)
                .take_while(|&i| PLAIN.contains(&src[i]))
                .last()
                .map_or(at, |i| i + 1);
            let piece = src[at..end].to_vec();
            src.splice(end..end, piece);
        }
    }
}

/// What is checked for one input besides the per-patch check, chosen
/// from its seed so that a reproducer reruns exactly what failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// After replaying `A`'s patches onto `A'`, run the optimizer on what
    /// is left (as the driver does after a partial replay); else interpret
    /// the graph exactly as replay left it.
    pub optimize_after: bool,
    /// Also run the slow driver path (two native runs sharing a log file).
    pub driver: bool,
}

impl Mode {
    /// Odd seeds optimize after replay; one seed in 8 also runs the driver
    /// (each driver run compiles twice through Cranelift with its verifier
    /// on, about 20 times the cost of the per-patch check).
    pub fn of_seed(seed: u64) -> Mode {
        Mode {
            optimize_after: !seed.is_multiple_of(2),
            driver: seed.is_multiple_of(8),
        }
    }
}

/// Checks `case`, counting how the log fared in `stats`.
pub fn check(case: &ReplayCase, mode: Mode, stats: &mut Counters) -> Outcome {
    guarded(|| check_unguarded(case, mode, stats))
}

/// Generates and checks input `seed`.
pub fn check_seed(seed: u64, stats: &mut Counters) -> Outcome {
    check(&generate(seed), Mode::of_seed(seed), stats)
}

fn check_unguarded(case: &ReplayCase, mode: Mode, stats: &mut Counters) -> Outcome {
    let (pa, pm) = match (parse(&case.a.source), parse(&case.mutated)) {
        (Ok(a), Ok(m)) => (a, m),
        (a, m) => {
            return Outcome::Mismatch(format!(
                "a generated program does not parse: {:?} / {:?}",
                a.err(),
                m.err()
            ))
        }
    };
    let mcase = Case {
        source: case.mutated.clone(),
        ..case.a.clone()
    };
    let outcome = check_patches(&pa, &pm, &mcase, mode, stats);
    if outcome.is_failure() || !mode.driver {
        return outcome;
    }
    bump(stats, "driver-checked");
    check_driver(case, &pa, &pm, &mcase, stats)
}

/// The per-patch check (no Cranelift): `A`'s graph is built and optimized
/// as the driver does, its replacements recorded as a patch log; the log's
/// patches are replayed onto `A'`'s freshly built graph with the program
/// key check bypassed, so that each patch is applied, stale or conflicting
/// on its own (patches on a changed loop back edge are dropped first: see
/// `back_edge_tainted`); optionally the optimizer runs on the rest. The result must
/// pass the graph verifier, and the LIR interpreter's run of it (finished
/// by the Brainfuck interpreter from the deopt frame when a guard fails,
/// as the driver does) must equal the reference interpreter's run of `A'`:
/// output, error (kind and position) and final tape.
fn check_patches(
    pa: &Program,
    pm: &Program,
    mcase: &Case,
    mode: Mode,
    stats: &mut Counters,
) -> Outcome {
    let opts = BuildOptions {
        tape_len: MIN_TAPE_LIMIT as u64,
        step_limit: mcase.max_steps.is_some(),
        tape_guard: 0,
    };
    // A: build, optimize, record (the driver's `compile_unit`, minus
    // speculation, which the whole-program `jit` engine does not do).
    let mut ga = match build_program(pa, opts) {
        Ok(c) => c.graph,
        Err(e) => return Outcome::Mismatch(format!("building A: {e}")),
    };
    let rec_a = Recorder::start(&ga);
    if let Err(e) = vssa::optimize(&mut ga) {
        return Outcome::Mismatch(format!("optimizing A: {e}"));
    }
    let mut forced = match rec_a.full_log(&ga) {
        Ok(l) => l,
        Err(e) => return Outcome::Mismatch(format!("recording A's patches: {e}")),
    };
    // A': build fresh, replay A's patches under A''s own program key.
    let mut gm = match build_program(pm, opts) {
        Ok(c) => c.graph,
        Err(e) => return Outcome::Mismatch(format!("building A': {e}")),
    };
    let rec_m = Recorder::start(&gm);
    // Patches whose meaning rests on a loop back edge that A' changed
    // would apply and be wrong (see `back_edge_tainted`): drop them.
    let tainted = back_edge_tainted(&ga, &gm);
    let recorded = forced.patches.len();
    let patches: Vec<_> = std::mem::take(&mut forced.patches)
        .into_iter()
        .filter(|p| {
            let refs = std::iter::once(&p.target)
                .chain(std::iter::once(&p.by))
                .chain(p.nodes.iter().flat_map(|n| n.inputs.iter()));
            !refs.into_iter().any(|a| tainted.contains(a))
        })
        .collect();
    if patches.len() < recorded {
        bump(stats, "patch-back-edge-dropped");
    }
    // Filtering keeps every recipe as recorded, so the log stays sealed.
    forced.program = rec_m.program();
    forced.patches = patches;
    let r = rec_m.replay(&mut gm, &forced);
    if r.mismatch.is_some() || r.refuted > 0 {
        return Outcome::Mismatch(format!(
            "replay with the program key bypassed: {:?}, {} refuted",
            r.mismatch, r.refuted
        ));
    }
    let total = forced.patches.len();
    bump(
        stats,
        if total == 0 {
            "patch-log-empty"
        } else if r.applied == total {
            "patch-applied-all"
        } else if r.stale == total {
            "patch-stale-all"
        } else {
            "patch-partial"
        },
    );
    if r.conflicting > 0 {
        bump(stats, "patch-conflicts");
    }
    if rec_a.program() == rec_m.program() && !r.complete() {
        return Outcome::Mismatch(format!(
            "A's log replayed onto the same graph: {} of {total} applied, {} stale, {} conflicting: {:?}",
            r.applied,
            r.stale,
            r.conflicting,
            r.outcomes.iter().find(|o| **o != PatchOutcome::Applied)
        ));
    }
    if mode.optimize_after {
        bump(stats, "patch-then-optimize");
        if let Err(e) = vssa::optimize(&mut gm) {
            return Outcome::Mismatch(format!("optimizing A' after replay: {e}"));
        }
    }
    if let Err(errs) = vssa::verify(&gm) {
        let first: Vec<String> = errs.iter().take(3).map(|e| e.to_string()).collect();
        return Outcome::Mismatch(format!(
            "A' after replay ({} of {total} applied): verifier: {}",
            r.applied,
            first.join("; ")
        ));
    }
    let got = match run_lir(&gm, pm, mcase, stats) {
        Ok(Some(run)) => run,
        Ok(None) => return Outcome::Pass,
        Err(e) => return Outcome::Mismatch(format!("A' after replay: LIR run: {e}")),
    };
    match bf::compare(&run_interp(pm, mcase), &got) {
        Some(diff) => Outcome::Mismatch(format!(
            "A' after replay ({} of {total} patches applied, {} stale, {} conflicting{}), \
             LIR interpreter: {diff}",
            r.applied,
            r.stale,
            r.conflicting,
            if mode.optimize_after {
                ", then optimized"
            } else {
                ""
            }
        )),
        None => Outcome::Pass,
    }
}

/// The addresses of `m`'s nodes (as built) that may mean something other
/// than the node at the same address in `a`.
///
/// An address covers a node's op and its inputs' addresses *except a loop
/// back edge* (`Loop` and loop `Phi` back inputs are set after interning).
/// So `A` and `A'` can share the address of a loop phi whose back edge
/// differs (`[]` vs `[+]`: the same memory phi, but only in `A` is it
/// redundant), and a patch recorded on `A` for it, or for anything built on
/// it, applies to `A'` and is wrong there. The driver never replays such a
/// patch, because it only replays logs whose program key (which does hash
/// back edges) matches; this check bypasses that key on purpose, so it
/// drops those patches itself: a loop node of `m` whose address is missing
/// in `a` or whose back input's address differs from `a`'s is *diverged*,
/// and every node reaching a diverged one through inputs (back edges
/// included) is tainted. Everything else has the same input cone, back
/// edges and all, in both graphs, so per-patch replay must be exact on it.
fn back_edge_tainted(a: &vssa::Graph, m: &vssa::Graph) -> HashSet<Addr> {
    let cyclic = |g: &vssa::Graph, id: NodeId| {
        matches!(g.op(id), vssa::Op::Loop { .. }) || g.is_loop_phi(id)
    };
    let back = |g: &vssa::Graph, id: NodeId| {
        g.node(id)
            .raw_inputs()
            .get(g.hashed_arity(id))
            .map(|&b| g.addr(b))
    };
    let n = m.len();
    let mut users: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    let mut bad = vec![false; n];
    let mut work = Vec::new();
    for id in m.ids() {
        for &x in m.node(id).raw_inputs() {
            users[x.index()].push(id);
        }
        if cyclic(m, id) {
            let same = a
                .lookup(&m.addr(id))
                .is_some_and(|ida| cyclic(a, ida) && back(a, ida) == back(m, id));
            if !same {
                bad[id.index()] = true;
                work.push(id);
            }
        }
    }
    while let Some(id) = work.pop() {
        for &u in &users[id.index()] {
            if !bad[u.index()] {
                bad[u.index()] = true;
                work.push(u);
            }
        }
    }
    m.ids()
        .filter(|id| bad[id.index()])
        .map(|id| m.addr(id))
        .collect()
}

/// Where the LIR run's memory starts: the context, then the tape.
const LIR_BASE: i64 = 0x1_0000;
/// The tape's address: after the context (`ctx_offset::DEOPT` + its slots),
/// rounded up.
const LIR_TAPE: i64 = LIR_BASE + 64;
/// Work bound for the LIR interpreter (one unit per node evaluated or
/// control step). Every generated program with a loop runs under a step
/// limit compiled into the graph, so runs end well before this.
const LIR_FUEL: u64 = 200_000_000;

/// Runs a whole-program graph of `prog` (guards not lowered) with the LIR
/// interpreter, on a context laid out at `ctx_offset` and a fresh tape of
/// [`MIN_TAPE_LIMIT`] cells. Host calls do the case's I/O. A failing guard
/// (`InterpError::Deopt`) resumes the Brainfuck interpreter from its frame,
/// via the driver's own `BfGuest`, on the same tape and I/O, as the driver
/// does. `Ok(None)`: out of fuel (counted, not compared).
fn run_lir(
    g: &vssa::Graph,
    prog: &Program,
    case: &Case,
    stats: &mut Counters,
) -> Result<Option<RunResult>, String> {
    let ctx_len = (LIR_TAPE - LIR_BASE) as usize;
    debug_assert!(ctx_offset::DEOPT as usize + 8 * DEOPT_SLOTS <= ctx_len);
    let mut mem = Memory::new(LIR_BASE, ctx_len + MIN_TAPE_LIMIT);
    let ctx = mem.bytes_mut();
    let put = |ctx: &mut [u8], at: i32, v: i64| {
        let at = at as usize;
        ctx[at..at + 8].copy_from_slice(&v.to_le_bytes());
    };
    put(ctx, ctx_offset::TAPE, LIR_TAPE);
    put(ctx, ctx_offset::FUEL, case.max_steps.unwrap_or(0) as i64);
    let mut input = &case.input[..];
    let mut output = Vec::new();
    let mut io = Io::new(&mut input, &mut output);
    let mut host_error = None;
    let value = {
        let mut hosts = |func: u32, args: &[i64]| -> i64 {
            let (cur, pc) = match args {
                [_, cur, pc] => (*cur, *pc),
                _ => {
                    host_error = Some(format!("host call {func} with {} arguments", args.len()));
                    return 1;
                }
            };
            let step = match func {
                HOST_PUTCHAR => io.write_byte(cur as u8, None).map(|()| 0),
                HOST_GETCHAR => io.read_cell(cur as u8, case.eof).map(i64::from),
                _ => {
                    host_error = Some(format!("unknown host function {func}"));
                    return 1;
                }
            };
            step.unwrap_or_else(|e| {
                host_error = Some(format!("host call at pc {pc}: {e}"));
                if func == HOST_PUTCHAR {
                    1
                } else {
                    -1
                }
            })
        };
        vssa::interp::eval(g, &[LIR_BASE], &mut mem, &mut hosts, LIR_FUEL)
    };
    if let Some(e) = host_error {
        // Reading a slice and writing a Vec never fail.
        return Err(e);
    }
    let tape_of = |mem: &Memory| mem.bytes()[ctx_len..].to_vec();
    let result = match value {
        Ok(v) if v == i64::from(EXIT_DONE) => Ok(()),
        Ok(v) => return Err(format!("returned {v}, not EXIT_DONE")),
        Err(InterpError::Deopt {
            guard,
            resume,
            values,
        }) => {
            bump(stats, "lir-deopt");
            let reason = match g.op(guard) {
                vssa::Op::Guard { reason } => reason,
                op => return Err(format!("deopt from {op:?}, not a guard")),
            };
            let exit = DeoptExit::plain(
                g.addr(guard),
                reason,
                resume,
                vec![vssa::Type::I64; values.len()],
            );
            let frame = Frame {
                exit: &exit,
                values,
            };
            let guest = BfGuest {
                max_steps: case.max_steps,
            };
            let mut state = guest
                .resume_state(&frame)
                .map_err(|e| format!("deopt frame: {e}"))?;
            let mut tape = Tape::new(MIN_TAPE_LIMIT).map_err(|e| e.to_string())?;
            tape.as_mut_slice().copy_from_slice(&mem.bytes()[ctx_len..]);
            let opts = RunOptions {
                max_steps: case.max_steps,
                eof: case.eof,
            };
            let r = vssa_bf::run_from(prog, &mut tape, &mut state, &mut io, &opts);
            return Ok(Some(RunResult {
                output,
                result: r,
                tape: tape.as_slice().to_vec(),
            }));
        }
        Err(InterpError::OutOfFuel) => {
            bump(stats, "lir-out-of-fuel");
            return Ok(None);
        }
        Err(e) => return Err(e.to_string()),
    };
    Ok(Some(RunResult {
        output,
        result,
        tape: tape_of(&mem),
    }))
}

/// The driver path: two runs of the JIT driver sharing one patch-log
/// file, as two invocations of `vssa run --patch-log FILE` would.
fn check_driver(
    case: &ReplayCase,
    pa: &Program,
    pm: &Program,
    mcase: &Case,
    stats: &mut Counters,
) -> Outcome {
    let log = TempFile::new("replay");
    let recorded = match run_jit(pa, &case.a, true, Some(log.path())) {
        Ok((r, report)) => {
            if let Some(diff) = bf::compare(&run_interp(pa, &case.a), &r) {
                return Outcome::Mismatch(format!("run 1 (recording A): {diff}"));
            }
            if !report.patch_log_warnings.is_empty() {
                return Outcome::Mismatch(format!(
                    "run 1 (recording A): {:?}",
                    report.patch_log_warnings
                ));
            }
            report.patches_recorded
        }
        Err(e) => return Outcome::Mismatch(format!("run 1 (recording A): pipeline error: {e}")),
    };
    if !log.path().exists() {
        return Outcome::Mismatch("run 1 saved no patch log".into());
    }
    let (r, report) = match run_jit(pm, mcase, true, Some(log.path())) {
        Ok(x) => x,
        Err(e) => {
            return Outcome::Mismatch(format!("run 2 (replaying onto A'): pipeline error: {e}"))
        }
    };
    if let Some(diff) = bf::compare(&run_interp(pm, mcase), &r) {
        return Outcome::Mismatch(format!(
            "run 2 (replaying onto A'): {diff} (log: {recorded} patches, {} applied, {} stale, {} conflicting)",
            report.patches_replayed, report.patches_stale, report.patches_conflicting
        ));
    }
    let (applied, stale, conflicting) = (
        report.patches_replayed,
        report.patches_stale,
        report.patches_conflicting,
    );
    let identical = case.mutated == case.a.source;
    if identical {
        bump(stats, "identical-source");
        if applied != recorded || stale + conflicting > 0 {
            return Outcome::Mismatch(format!(
                "the log of A replayed onto A itself: {applied} of {recorded} patches applied, \
                 {stale} stale, {conflicting} conflicting ({:?})",
                report.patch_log_warnings
            ));
        }
    }
    bump(
        stats,
        if recorded == 0 {
            "log-empty"
        } else if applied == recorded {
            "applied-fully"
        } else if applied == 0 {
            "stale"
        } else {
            "partial"
        },
    );
    if conflicting > 0 {
        bump(stats, "with-conflicts");
    }
    Outcome::Pass
}

/// Describes (and, if asked, minimises) failing input `seed`: first the
/// mutated program with `A` fixed, then `A` with the mutation fixed.
pub fn failure(seed: u64, outcome: Outcome, shrink: bool) -> Failure {
    let mut case = generate(seed);
    let mode = Mode::of_seed(seed);
    let mut outcome = outcome;
    let mut scratch = Counters::new();
    if shrink {
        let mut attempt = case.clone();
        let mut fails = |src: &[u8]| {
            attempt.mutated = src.to_vec();
            bf::balanced(src) && check(&attempt, mode, &mut scratch).is_failure()
        };
        case.mutated = shrink_bytes(&case.mutated, 200, &mut fails);
        let mut attempt = case.clone();
        let mut fails = |src: &[u8]| {
            attempt.a.source = src.to_vec();
            bf::balanced(src) && check(&attempt, mode, &mut scratch).is_failure()
        };
        case.a.source = shrink_bytes(&case.a.source, 200, &mut fails);
        outcome = check(&case, mode, &mut scratch);
    }
    Failure {
        input_seed: seed,
        reproducer: format!(
            "A: {:?}\nA': {:?}\ninput: {:?}\nmax_steps: {:?}\neof: {:?}\nmode: {:?}\n\
             outcome after shrinking: {:?}",
            String::from_utf8_lossy(&case.a.source),
            String::from_utf8_lossy(&case.mutated),
            case.a.input,
            case.a.max_steps,
            case.a.eof,
            mode,
            outcome
        ),
        outcome,
        raw: Some(case.mutated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both the per-patch check (replay only) and the driver path.
    const BOTH: Mode = Mode {
        optimize_after: false,
        driver: true,
    };

    #[test]
    fn mutations_stay_balanced_and_vary() {
        let mut changed = 0;
        for seed in 0..300 {
            let c = generate(seed);
            assert!(bf::balanced(&c.mutated), "seed {seed}: {:?}", c.mutated);
            if c.mutated != c.a.source {
                changed += 1;
            }
            if c.mutated.contains(&b'[') {
                assert!(c.a.max_steps.is_some(), "seed {seed}");
            }
        }
        assert!(changed > 150 && changed < 300, "{changed} of 300 changed");
    }

    #[test]
    fn every_mutation_kind_keeps_balance() {
        let mut rng = Rng::new(9);
        let mut src = b"+[->+<]>.[[-]<]".to_vec();
        for _ in 0..2000 {
            mutate(&mut rng, &mut src);
            assert!(bf::balanced(&src), "{:?}", String::from_utf8_lossy(&src));
            if src.len() > 400 {
                src.truncate(0);
            }
        }
    }

    #[test]
    fn an_unchanged_program_replays_its_whole_log() {
        let a = Case {
            source: b"++>+++[-<+>]<[->>+<<]>>.".to_vec(),
            input: vec![],
            max_steps: Some(1000),
            eof: vssa_bf::EofMode::Unchanged,
        };
        let mut stats = Counters::new();
        let case = ReplayCase {
            mutated: a.source.clone(),
            a: a.clone(),
        };
        assert_eq!(check(&case, BOTH, &mut stats), Outcome::Pass);
        assert_eq!(stats.get("identical-source"), Some(&1));
        assert_eq!(stats.get("applied-fully"), Some(&1), "{stats:?}");
        // A changed constant: another program key, so the log is stale.
        let case = ReplayCase {
            mutated: b"+++>+++[-<+>]<[->>+<<]>>.".to_vec(),
            a,
        };
        assert_eq!(check(&case, BOTH, &mut stats), Outcome::Pass);
        assert_eq!(stats.get("stale"), Some(&1), "{stats:?}");
    }

    /// A mutation that keeps part of the graph: some of A's patches must
    /// apply to A' and some must be stale. If replay went back to keying
    /// the whole log by program (or stopped applying patches), one of the
    /// counters would stay 0.
    #[test]
    fn per_patch_replay_applies_some_and_skips_some() {
        let a = Case {
            source: b">++>+++[-<+>]<[->>+<<]>>.<<+++[>+<-]>.".to_vec(),
            input: b"q".to_vec(),
            max_steps: Some(5000),
            eof: vssa_bf::EofMode::Zero,
        };
        let mut stats = Counters::new();
        for (i, mutated) in [
            &b">++>+++[-<+>]<[->>+<<]>>.<<++++[>+<-]>."[..],
            b">++>+++[-<+>]<[->>+<<]>>.<<+++[>+<-]>.,.",
            b">+>+++[-<+>]<[->>+<<]>>.<<+++[>+<-]>.",
        ]
        .into_iter()
        .enumerate()
        {
            let case = ReplayCase {
                a: a.clone(),
                mutated: mutated.to_vec(),
            };
            let mode = Mode {
                optimize_after: i % 2 == 1,
                driver: false,
            };
            assert_eq!(check(&case, mode, &mut stats), Outcome::Pass, "{i}");
        }
        // The changed constant in the second loop keeps the first loop's
        // patches and makes the rest stale.
        assert!(stats.contains_key("patch-partial"), "{stats:?}");
        assert_eq!(stats.get("patch-then-optimize"), Some(&1), "{stats:?}");
        // And over generated inputs, every kind of outcome happens.
        for seed in 0..200 {
            assert_eq!(check_seed(seed, &mut stats), Outcome::Pass, "seed {seed}");
        }
        for key in [
            "patch-partial",
            "patch-applied-all",
            "patch-stale-all",
            "lir-deopt",
        ] {
            assert!(stats.get(key).copied().unwrap_or(0) > 0, "{key}: {stats:?}");
        }
    }

    /// The LIR run of a program's own optimized graph agrees with the
    /// interpreter, including when a guard fails and the interpreter
    /// resumes from the frame (here: the step limit runs out in a loop).
    #[test]
    fn lir_runs_resume_after_a_deopt() {
        let case = Case {
            source: b"+[>+<+]".to_vec(),
            input: vec![],
            max_steps: Some(100),
            eof: vssa_bf::EofMode::Unchanged,
        };
        let prog = parse(&case.source).unwrap();
        let g = build_program(
            &prog,
            BuildOptions {
                tape_len: MIN_TAPE_LIMIT as u64,
                step_limit: true,
                tape_guard: 0,
            },
        )
        .unwrap()
        .graph;
        let mut stats = Counters::new();
        let got = run_lir(&g, &prog, &case, &mut stats).unwrap().unwrap();
        assert_eq!(stats.get("lir-deopt"), Some(&1));
        assert_eq!(bf::compare(&run_interp(&prog, &case), &got), None);
        assert!(got.result.is_err(), "the step limit is reached");
        assert!(got.tape[1] > 90, "{:?}", &got.tape[..2]);
    }

    /// `[]` and `[+]` share their loop phis' addresses; only in `[]` is
    /// the memory phi redundant. Replaying that patch onto `[+]` would
    /// lose the body's stores (the first mismatch this target found when
    /// it bypassed the program key without dropping such patches).
    #[test]
    fn patches_on_a_changed_back_edge_are_dropped() {
        let a = Case {
            source: b"+++[]".to_vec(),
            input: vec![],
            max_steps: Some(15),
            eof: vssa_bf::EofMode::Zero,
        };
        let case = ReplayCase {
            mutated: b"+++[+]".to_vec(),
            a,
        };
        let replay_only = Mode {
            optimize_after: false,
            driver: false,
        };
        let mut stats = Counters::new();
        assert_eq!(check(&case, replay_only, &mut stats), Outcome::Pass);
        assert_eq!(stats.get("patch-back-edge-dropped"), Some(&1), "{stats:?}");
        // The same program: nothing is tainted.
        let opts = BuildOptions {
            tape_len: MIN_TAPE_LIMIT as u64,
            step_limit: true,
            tape_guard: 0,
        };
        let p = parse(b"+++[>+<-]>[-]").unwrap();
        let g1 = build_program(&p, opts).unwrap().graph;
        let g2 = build_program(&p, opts).unwrap().graph;
        assert!(back_edge_tainted(&g1, &g2).is_empty());
        let q = parse(b"+++[>+<-]>[--]").unwrap();
        let g3 = build_program(&q, opts).unwrap().graph;
        assert!(!back_edge_tainted(&g1, &g3).is_empty());
    }
}
