//! The tiered engine against the interpreter: the corpus, programs built
//! to deoptimize, random programs, and the exactness of every deopt.

mod common;

use common::*;
use proptest::prelude::*;
use vssa_bf::tiered::{run_tiered_observed, TieredConfig};
use vssa_bf::{EofMode, InterpState, Io, RunErrorKind, Tape};

#[test]
fn corpus_tiered_matches_expected_output() {
    let programs = corpus();
    if programs.is_empty() {
        eprintln!("skipped: ../shared/bf not found (the shared corpus is not on this machine)");
        return;
    }
    for p in programs {
        let prog = vssa_bf::parse(&p.source).unwrap();
        let (out, report) = run_tiered(
            &prog,
            &p.input,
            opts(None, EofMode::Unchanged),
            vssa_bf::DEFAULT_TAPE_LIMIT,
            vssa_bf::tiered::DEFAULT_HOT_LOOP,
            1,
        );
        assert_eq!(out.error, None, "{}", p.name);
        assert!(out.output == p.expected, "{}: output differs", p.name);
        eprintln!(
            "{}: {} units, {} deopts, {} recompiles",
            p.name, report.units_compiled, report.deopts, report.recompiles
        );
    }
}

/// Interpreter and tiered engine (at several thresholds and policies) on `src`.
fn agree(src: &str, input: &[u8], max_steps: Option<u64>) -> u64 {
    let prog = vssa_bf::parse(src).unwrap();
    let o = opts(max_steps, EofMode::Unchanged);
    let want = run_interp(&prog, input, o, SMALL_TAPE);
    let mut deopts = 0;
    for (hot, after) in [(1, 1), (2, 0), (3, 2), (50, 1)] {
        let (got, report) = run_tiered(&prog, input, o, SMALL_TAPE, hot, after);
        assert_eq!(got, want, "hot {hot}, recompile after {after}: {src}");
        deopts += report.deopts;
    }
    deopts
}

#[test]
fn a_loop_first_entered_late_deoptimizes_and_recompiles() {
    let prog = vssa_bf::parse(LATE_LOOP).unwrap();
    let o = opts(None, EofMode::Unchanged);
    let want = run_interp(&prog, LATE_INPUT, o, SMALL_TAPE);
    let (got, report) = run_tiered(&prog, LATE_INPUT, o, SMALL_TAPE, 2, 1);
    assert_eq!(got, want);
    assert!(report.deopts >= 1 && report.recompiles >= 1, "{report:?}");
    let u = &report.units[0];
    assert_eq!((u.speculation_failures, u.refuted), (1, 1), "{u:?}");
    // Never recompiling: every entry of the inner loop deoptimizes.
    let (got, report) = run_tiered(&prog, LATE_INPUT, o, SMALL_TAPE, 2, 0);
    assert_eq!(got, want);
    assert_eq!(report.recompiles, 0);
    assert!(report.deopts >= 2, "{report:?}");
    agree(LATE_LOOP, LATE_INPUT, None);
    agree(LATE_LOOP, LATE_INPUT, Some(500));
}

#[test]
fn programs_that_deoptimize_agree() {
    let cases = [
        // A loop entered only on the last of many iterations.
        "+++++++++[>+>[-]<<-]>[-]++++++++[<+++++>-]<[>>+<<-]>>.",
        // Nested loops entered late, with output inside.
        "++++++[>++++[>+>[>+.<-]<<-]<-]",
        // The pointer walks right, past what the bounds guard checked.
        "+[>+]",
        // Walks left off the tape inside a compiled loop.
        "+++++[>+++<-]>[<]",
        // Inner loops that start empty and fill up as the outer ones go round.
        "+++[>+++[>+>+<<-]>[>[-]<-]<<-]>>>.",
        // The late loop again, with input: entered only from round nine.
        LATE_LOOP,
    ];
    let mut deopts = 0;
    for src in cases {
        deopts += agree(src, LATE_INPUT, None);
        deopts += agree(src, LATE_INPUT, Some(300));
    }
    assert!(deopts > 0, "no case deoptimized");
}

#[test]
fn the_pointer_walking_off_the_right_end_is_the_interpreters_error() {
    let prog = vssa_bf::parse("+[>+]").unwrap();
    let (out, report) = run_tiered(&prog, b"", opts(None, EofMode::Unchanged), SMALL_TAPE, 2, 1);
    let e = out.error.expect("walks off");
    assert!(matches!(e.kind, RunErrorKind::TapeLimit { .. }), "{e}");
    assert!(report.deopts >= 1, "{report:?}");
}

/// A program whose inner loop is skipped for the first eight rounds of the
/// outer loop (it reads a zero byte each time) and then entered: with a
/// low threshold, the outer loop is compiled speculating that the inner
/// loop is never entered, and that speculation fails in round nine.
const LATE_LOOP: &str = "++++++++++[>,[-.>+<]<-]";
const LATE_INPUT: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 3, 2];

/// Counts the bytes read through it, for the observer to see.
struct CountingReader<'a> {
    data: &'a [u8],
    read: std::rc::Rc<std::cell::Cell<usize>>,
}

impl std::io::Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.read(buf)?;
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

/// Output the observer can see.
#[derive(Clone, Default)]
struct SharedOut(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every deopt hands the interpreter exactly the state the interpreter
/// alone has at that point: same pc, pointer, step count, tape, input
/// consumed and output written. The point is identified by its step count:
/// the pure interpreter, limited to that many steps, stops at the next loop
/// test after it; so does the resumed run when limited the same way.
#[test]
fn every_deopt_is_exact() {
    let prog = std::sync::Arc::new(vssa_bf::parse(LATE_LOOP).unwrap());
    let mut cfg = TieredConfig {
        hot_loop: 2,
        budget: vssa_deopt::CompileBudget::unlimited(),
        compile_thread: false,
        ..TieredConfig::default()
    };
    cfg.jit.verify = true;
    cfg.jit.run = opts(Some(100_000), EofMode::Unchanged);
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let out = SharedOut::default();
    // (state, first cells, input consumed, output so far)
    let mut snapshots: Vec<(InterpState, Vec<u8>, usize, Vec<u8>)> = Vec::new();
    {
        let mut inp = CountingReader {
            data: LATE_INPUT,
            read: read.clone(),
        };
        let mut w = out.clone();
        let mut io = Io::new(&mut inp, &mut w);
        let (report, r) = run_tiered_observed(&prog, SMALL_TAPE, &mut io, &cfg, &mut |ev| {
            snapshots.push((
                *ev.state,
                ev.tape.as_slice()[..64].to_vec(),
                read.get(),
                out.0.borrow().clone(),
            ));
        });
        r.unwrap();
        assert!(report.recompiles > 0, "{report:?}");
    }
    let want = run_interp(&prog, LATE_INPUT, cfg.jit.run, SMALL_TAPE);
    assert_eq!(*out.0.borrow(), want.output);
    assert!(!snapshots.is_empty(), "the program did not deoptimize");
    for (state, cells, consumed, printed) in snapshots {
        let lim = opts(Some(state.steps), EofMode::Unchanged);
        // The interpreter alone, up to the same number of steps...
        let mut tape = Tape::new(SMALL_TAPE).unwrap();
        let mut alone_out = Vec::new();
        let mut inp: &[u8] = LATE_INPUT;
        let mut alone = InterpState::default();
        let r = {
            let mut io = Io::new(&mut inp, &mut alone_out);
            vssa_bf::run_from(&prog, &mut tape, &mut alone, &mut io, &lim)
        };
        let alone_consumed = LATE_INPUT.len() - inp.len();
        // ...and the resumed state, run to the same point.
        let mut tape2 = Tape::new(SMALL_TAPE).unwrap();
        tape2.as_mut_slice()[..64].copy_from_slice(&cells);
        let mut resumed = state;
        let mut out2 = printed.clone();
        let mut inp2: &[u8] = &LATE_INPUT[consumed..];
        let r2 = {
            let mut io = Io::new(&mut inp2, &mut out2);
            vssa_bf::run_from(&prog, &mut tape2, &mut resumed, &mut io, &lim)
        };
        assert_eq!(r.is_err(), r2.is_err());
        assert_eq!(alone, resumed, "state after resuming from {state:?}");
        assert_eq!(
            &tape.as_slice()[..64],
            &tape2.as_slice()[..64],
            "tape at {state:?}"
        );
        assert_eq!(alone_out, out2, "output at {state:?}");
        assert_eq!(
            alone_consumed,
            LATE_INPUT.len() - inp2.len(),
            "input at {state:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_programs_agree_with_the_interpreter(
        src in random_program(),
        input in prop::collection::vec(any::<u8>(), 0..8),
        hot in 1u32..4,
        after in 0u32..3,
    ) {
        let prog = vssa_bf::parse(&src).unwrap();
        let o = opts(Some(2_000), EofMode::Unchanged);
        let want = run_interp(&prog, &input, o, SMALL_TAPE);
        let (got, _) = run_tiered(&prog, &input, o, SMALL_TAPE, hot, after);
        prop_assert_eq!(got, want, "program {}", src);
    }

    #[test]
    fn random_terminating_programs_agree_without_a_step_limit(
        src in random_program(),
        input in prop::collection::vec(any::<u8>(), 0..8),
        hot in 1u32..4,
    ) {
        let prog = vssa_bf::parse(&src).unwrap();
        let bounded = run_interp(&prog, &input, opts(Some(5_000), EofMode::Unchanged), SMALL_TAPE);
        let ran_out = matches!(&bounded.error, Some(e) if matches!(e.kind, RunErrorKind::StepLimit { .. }));
        if !ran_out {
            let (got, _) = run_tiered(&prog, &input, opts(None, EofMode::Unchanged), SMALL_TAPE, hot, 1);
            prop_assert_eq!(bounded, got, "program {}", src);
        }
    }
}

/// A failed speculation is recorded in the patch log: a second process
/// that loads it neither speculates there again nor redoes the optimizer's
/// work, and gives the same output.
#[test]
fn refutations_and_patches_persist_in_the_patch_log() {
    common::private_seal_key();
    let prog = std::sync::Arc::new(vssa_bf::parse(LATE_LOOP).unwrap());
    let dir = common::scratch::root().join("tiered-log");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("t.log");
    let _ = std::fs::remove_file(&log);
    let run = |log: &std::path::Path| {
        let mut cfg = TieredConfig {
            hot_loop: 2,
            budget: vssa_deopt::CompileBudget::unlimited(),
            compile_thread: false,
            ..TieredConfig::default()
        };
        cfg.jit.verify = true;
        cfg.jit.patch_log = Some(log.to_path_buf());
        let mut out = Vec::new();
        let mut inp: &[u8] = LATE_INPUT;
        let (report, r) = {
            let mut io = Io::new(&mut inp, &mut out);
            vssa_bf::tiered::run_tiered(&prog, SMALL_TAPE, &mut io, &cfg)
        };
        r.unwrap();
        (out, report)
    };
    let want = run_interp(
        &prog,
        LATE_INPUT,
        opts(None, EofMode::Unchanged),
        SMALL_TAPE,
    )
    .output;
    let (out1, r1) = run(&log);
    assert_eq!(out1, want);
    assert!(
        r1.deopts > 0 && r1.recompiles > 0,
        "run 1 did not deoptimize: {r1:?}"
    );
    let book = vssa_patch::LogBook::load(&log).unwrap().expect("saved");
    assert!(
        book.units().any(|u| !u.refuted.is_empty()),
        "no refutation saved"
    );
    let (out2, r2) = run(&log);
    assert_eq!(out2, want);
    assert_eq!(
        r2.recompiles, 0,
        "run 2 repeated a failed speculation: {r2:?}"
    );
    assert!(r2.jit.patches_replayed > 0, "{r2:?}");
    assert_eq!(r2.jit.patches_recorded, 0, "run 2 optimized again: {r2:?}");
    // A damaged log is a warning; the run is still right.
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();
    let (out3, r3) = run(&log);
    assert_eq!(out3, want);
    assert!(!r3.jit.patch_log_warnings.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A unit with four speculation sites, recompiled with its first guard
/// refuted: its (net) log is cut at the patch that builds that guard, the
/// guard is not speculated again, and the new code differs from the old.
/// Net logs must keep the speculation sites' nodes resolved as the full
/// log would, or the speculation pass does not recognise the refuted
/// guard and builds it again.
#[test]
fn a_refuted_guard_is_not_rebuilt_from_a_net_log() {
    use vssa_bf::build::{Unit, REASON_UNTAKEN};
    use vssa_bf::runtime::{JitConfig, JitReport, Speculate, UnitCompiler, UnitRequest};
    use vssa_patch::LogBook;
    let mut src = String::from("+[");
    for j in 0..12 {
        src.push('>');
        src.push_str(&"+".repeat(1 + j % 5));
        src.push('.');
    }
    src.push_str(&"<".repeat(12));
    src.push_str(&"[.-]>".repeat(4));
    src.push_str("<<<<-]");
    let prog = vssa_bf::parse(&src).unwrap();
    let sites: Vec<usize> = (2..prog.insts.len())
        .filter(|&k| matches!(prog.insts[k].kind, vssa_bf::InstKind::Open { .. }))
        .collect();
    assert_eq!(sites.len(), 4);
    let cfg = JitConfig {
        optimize: true,
        ..JitConfig::default()
    };
    let mut c = UnitCompiler::new(&cfg, 1 << 20).unwrap();
    let never = |pc: usize| sites.contains(&pc);
    let empty = LogBook::new();
    let req = UnitRequest {
        unit: Unit::Loop { open: 1 },
        tape_len: vssa_bf::DEFAULT_TAPE_LIMIT,
        speculate: Some(Speculate {
            never_entered: &never,
        }),
        book: &empty,
        name: "unit",
    };
    let first = c.compile(&prog, &req, &mut JitReport::default()).unwrap();
    let guards = |code: &vssa_bf::runtime::UnitCode| -> Vec<vssa::Addr> {
        code.exits
            .exits
            .iter()
            .filter(|e| e.reason == REASON_UNTAKEN)
            .map(|e| e.guard)
            .collect()
    };
    let before = guards(&first);
    assert_eq!(before.len(), 4, "every site speculated");
    let mut log = first.log.clone().unwrap();
    log.refute(before[0]);
    let mut book = LogBook::new();
    book.insert(log);
    let mut r = JitReport::default();
    let again = c
        .compile(&prog, &UnitRequest { book: &book, ..req }, &mut r)
        .unwrap();
    assert!(r.patches_refuted > 0 && r.patches_replayed > 0, "{r:?}");
    assert!(
        !guards(&again).contains(&before[0]),
        "the refuted guard came back"
    );
    assert_eq!(guards(&again).len(), 3);
    assert_ne!(again.code_key, first.code_key);
}

/// Runs `prog` tiered with `budget` and hot threshold 2 (no step limit).
fn tiered_with_budget(
    prog: &vssa_bf::Program,
    budget: vssa_deopt::CompileBudget,
) -> (Outcome, vssa_bf::tiered::TieredReport) {
    let cfg = TieredConfig {
        hot_loop: 2,
        budget,
        compile_thread: false,
        ..TieredConfig::default()
    };
    let prog = std::sync::Arc::new(prog.clone());
    let mut out = Vec::new();
    let mut inp: &[u8] = b"";
    let (report, r) = {
        let mut io = Io::new(&mut inp, &mut out);
        vssa_bf::tiered::run_tiered(&prog, SMALL_TAPE, &mut io, &cfg)
    };
    let error = match r {
        Ok(()) => None,
        Err(vssa_bf::runtime::JitError::Run(e)) => Some(e),
        Err(e) => panic!("pipeline failure: {e}"),
    };
    (Outcome { output: out, error }, report)
}

/// 300 loops that each go round 5–64 times and are never met again (each
/// copies its count one cell to the right and clears it, then the program
/// moves on; the last count is printed).
fn many_short_loops() -> String {
    (0..300)
        .map(|i| format!("{}[->+<]>[-]", "+".repeat(5 + i % 60)))
        .collect::<String>()
        + "+++."
}

#[test]
fn a_budget_that_allows_nothing_compiles_nothing_and_asks_rarely() {
    let prog = vssa_bf::parse(many_short_loops()).unwrap();
    let want = run_interp(&prog, b"", opts(None, EofMode::Unchanged), SMALL_TAPE);
    let none = vssa_deopt::CompileBudget::new(0.0, std::time::Duration::ZERO, DAY);
    let (got, report) = tiered_with_budget(&prog, none);
    assert_eq!(got, want);
    assert_eq!(report.units_compiled, 0);
    assert!(report.compiles_deferred > 0);
    // Each refusal doubles the loop's threshold: a loop that goes round n
    // times (n below 2^7 here) is asked about at most log2(n) times.
    assert!(
        report.compiles_deferred <= 600 * 7,
        "{}",
        report.compiles_deferred
    );
}

#[test]
fn an_unlimited_budget_compiles_every_hot_loop() {
    let prog = vssa_bf::parse(many_short_loops()).unwrap();
    let want = run_interp(&prog, b"", opts(None, EofMode::Unchanged), SMALL_TAPE);
    let (got, report) = tiered_with_budget(&prog, vssa_deopt::CompileBudget::unlimited());
    assert_eq!(got, want);
    assert_eq!(report.units_compiled, 600);
    assert_eq!(report.compiles_deferred, 0);
}

#[test]
fn a_loop_too_large_to_compile_is_interpreted_and_its_inner_loops_compiled() {
    // An outer loop of more than MAX_UNIT_INSTS instructions (a long
    // straight run of moves and adds that leaves every cell as it was)
    // around a hot inner loop.
    // (`>+<-` is four instructions: runs of different commands do not fold.)
    let k = vssa_bf::runtime::MAX_UNIT_INSTS / 8 + 1;
    let filler = format!("{}{}", ">+<-".repeat(k), ">-<+".repeat(k));
    let src = format!("+++[>++++++++++[->+<]<{filler}-]>>.");
    let prog = vssa_bf::parse(&src).unwrap();
    let want = run_interp(&prog, b"", opts(None, EofMode::Unchanged), SMALL_TAPE);
    let (got, report) = tiered_with_budget(&prog, vssa_deopt::CompileBudget::unlimited());
    assert_eq!(got, want);
    assert_eq!(report.loops_too_large, 1);
    assert_eq!(report.units_compiled, 1, "the inner loop");
}

const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// With a compile thread, code arrives whenever the thread has it ready,
/// so where the run switches to it (and where a recompiled unit takes
/// over after a deopt) differs from run to run: the output must not.
/// Three nested counting loops (100 × 100 × 50) read a byte each time
/// round and run an inner loop on it, first entered at the 400 000th read
/// of 500 000: a speculation that fails, then a recompilation on the
/// thread while the interpreter goes on.
#[test]
fn the_compile_thread_never_changes_what_a_program_does() {
    let src = format!(
        "{}[>{}[>{}[>,[-.>+<]<-]<-]<-]",
        "+".repeat(100),
        "+".repeat(100),
        "+".repeat(50)
    );
    let mut input = vec![0u8; 400_000];
    input.extend(std::iter::repeat_n(1u8, 100_000));
    let prog = std::sync::Arc::new(vssa_bf::parse(&src).unwrap());
    let o = opts(None, EofMode::Unchanged);
    let want = run_interp(&prog, &input, o, SMALL_TAPE);
    assert_eq!((want.error.clone(), want.output.len()), (None, 100_000));
    let (mut units, mut recompiles) = (0, 0);
    for (run, hot) in [1, 2, 5, 50].iter().cycle().take(8).enumerate() {
        let mut cfg = TieredConfig {
            hot_loop: *hot,
            budget: vssa_deopt::CompileBudget::unlimited(),
            compile_thread: true,
            ..TieredConfig::default()
        };
        cfg.jit.verify = run % 2 == 0;
        cfg.jit.run = o;
        let mut out = Vec::new();
        let mut inp: &[u8] = &input;
        let (report, r) = {
            let mut io = Io::new(&mut inp, &mut out);
            vssa_bf::tiered::run_tiered(&prog, SMALL_TAPE, &mut io, &cfg)
        };
        r.unwrap();
        assert!(out == want.output, "run {run}, hot {hot}: output differs");
        units += report.units_compiled;
        recompiles += report.recompiles;
    }
    eprintln!("8 runs: {units} units compiled, {recompiles} recompiled");
    // A run is tens of ms of interpreting and a unit a few ms of
    // compiling: a thread that never delivers is broken, not slow.
    assert!(units > 0, "the compile thread delivered nothing in 8 runs");
}

/// Loops that go hot once and never again: each unit arrives as its loop
/// ends and pays back nothing, so after a few such units the runtime waits
/// for loops to go round twice as often before compiling them, and stops
/// compiling these altogether. (A loop of 60 rounds each, hot at 8: the
/// threshold doubles to 16, 32, 64, above what any of them reaches.)
#[test]
fn a_profile_that_keeps_lying_raises_the_hot_threshold() {
    let one = format!("{}[>+<-]>[-]<", "+".repeat(60));
    let src = one.repeat(200);
    let prog = std::sync::Arc::new(vssa_bf::parse(&src).unwrap());
    let o = opts(None, EofMode::Unchanged);
    let want = run_interp(&prog, b"", o, SMALL_TAPE);
    let cfg = TieredConfig {
        hot_loop: 8,
        // Ample, but not unlimited (which compiles every hot loop).
        budget: vssa_deopt::CompileBudget::default().with_share(1000.0),
        compile_thread: false,
        ..TieredConfig::default()
    };
    let mut out = Vec::new();
    let mut inp: &[u8] = b"";
    let (report, r) = {
        let mut io = Io::new(&mut inp, &mut out);
        vssa_bf::tiered::run_tiered(&prog, SMALL_TAPE, &mut io, &cfg)
    };
    r.unwrap();
    assert_eq!(out, want.output);
    assert!(report.hot_loop >= 64, "{report:?}");
    assert!(report.units_compiled < 40, "{report:?}");
}
