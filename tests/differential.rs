//! Differential tests: the JIT against the reference interpreter, byte for
//! byte, on the shared corpus and on generated programs.

mod common;

use common::*;
use proptest::prelude::*;
use vssa_bf::{EofMode, RunErrorKind};

/// The JIT against the corpus' expected outputs. The interpreter is checked
/// against the same files by `frontends/bf/tests/interp.rs`, so the two
/// agree byte for byte without running the (slow) interpreter twice.
#[test]
fn corpus_jit_matches_expected_output() {
    let programs = corpus();
    if programs.is_empty() {
        println!("skipped: ../shared/bf is absent on this machine");
        return;
    }
    for CorpusProgram {
        name,
        source,
        input,
        expected,
    } in programs
    {
        let prog = vssa_bf::parse(&source).unwrap();
        let jit = run_jit(
            &prog,
            &input,
            opts(None, EofMode::Unchanged),
            vssa_bf::DEFAULT_TAPE_LIMIT,
        );
        assert_eq!(jit.error, None, "{name}: jit error");
        assert!(
            jit.output == expected,
            "{name}: jit output differs from .out"
        );
        println!("{name}: ok ({} bytes)", expected.len());
    }
}

fn both(src: &str, input: &[u8], max_steps: Option<u64>, eof: EofMode) -> (Outcome, Outcome) {
    let prog = vssa_bf::parse(src).unwrap();
    let o = opts(max_steps, eof);
    (
        run_interp(&prog, input, o, SMALL_TAPE),
        run_jit(&prog, input, o, SMALL_TAPE),
    )
}

#[test]
fn tape_underflow_is_reported_at_the_same_move() {
    let (i, j) = both("+.>+.\n<<.", b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
    let e = j.error.unwrap();
    assert_eq!(e.kind, RunErrorKind::TapeUnderflow);
    let pos = e.pos.unwrap();
    assert_eq!((pos.line, pos.col), (2, 1));
    assert_eq!(j.output, vec![1, 1]);
}

#[test]
fn tape_underflow_inside_a_loop() {
    let (i, j) = both("++++[.<]", b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
    assert_eq!(j.error.unwrap().kind, RunErrorKind::TapeUnderflow);
}

#[test]
fn tape_limit_is_reported_at_the_same_move() {
    let (i, j) = both("+[>+]", b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
    assert!(matches!(
        j.error.unwrap().kind,
        RunErrorKind::TapeLimit { .. }
    ));
}

#[test]
fn step_limit_stops_every_engine_at_the_same_test() {
    let src = "+[.+]";
    for n in [0, 1, 2, 3, 10, 100] {
        let (i, j) = both(src, b"", Some(n), EofMode::Unchanged);
        assert_eq!(i, j, "max_steps {n}");
        assert!(matches!(
            j.error.unwrap().kind,
            RunErrorKind::StepLimit { .. }
        ));
    }
    let (i, j) = both("+++[-]", b"", Some(4), EofMode::Unchanged);
    assert_eq!(i, j);
    assert_eq!(j.error, None);
}

#[test]
fn eof_modes_agree() {
    for eof in [EofMode::Unchanged, EofMode::Zero, EofMode::MaxByte] {
        let (i, j) = both("+++++,.,.,.", b"A", None, eof);
        assert_eq!(i, j);
    }
}

#[test]
fn echo_until_zero() {
    let (i, j) = both(",[.,]", b"hello, world\0tail", None, EofMode::Unchanged);
    assert_eq!(i, j);
    assert_eq!(j.output, b"hello, world");
}

#[test]
fn closed_form_loops_agree() {
    for src in [
        "+++++[->++>+++<<]>.>.",
        "++++[+++>+<]>.",
        "+++[-<+>]",
        "[-<+>]+.",
        ">+++[-<+>]<.",
        "+>+++++[<++>-]<.",
        "-[--->+<]>.",
        "+++[>[-]<-]>.",
    ] {
        let (i, j) = both(src, b"", None, EofMode::Unchanged);
        assert_eq!(i, j, "{src}");
    }
}

#[test]
fn a_loop_that_would_walk_off_errors_only_when_entered() {
    // Skipped at cell 0: no error. Entered: underflow at the `<`.
    let (i, j) = both("[<+>-]+.", b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
    assert_eq!(j.error, None);
    let (i, j) = both("+[<+>-]", b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
    let e = j.error.unwrap();
    assert_eq!(e.kind, RunErrorKind::TapeUnderflow);
    assert_eq!(e.pos.unwrap().col, 3);
    let (i, j) = both("+[[<]+>-]", b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
}

#[test]
fn a_widened_check_near_the_right_end_falls_back_exactly() {
    // At the last cells of the tape, the segment's check also covers the
    // copy loop's reach to the right (3 cells past the tape's end), which
    // fails although the loop is skipped here: the interpreter finishes
    // the segment, exactly. Entered, the loop walks off at its `>>>`.
    // `,[>,]` first, so that the cell index is not a constant and the
    // checks do not fold away at compile time.
    let to_end = ">".repeat(SMALL_TAPE - 3);
    for (tail, fails) in [("[->>>+<<<]+.", false), ("+[->>>+<<<]", true)] {
        let src = format!(",[>,]{to_end}{tail}");
        let (i, j) = both(&src, b"\x01", None, EofMode::Zero);
        assert_eq!(i, j, "{tail}");
        assert_eq!(j.error.is_some(), fails, "{tail}: {:?}", j.error);
    }
}

#[test]
fn empty_program() {
    let (i, j) = both("", b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
    assert!(j.output.is_empty());
}

#[test]
fn deep_nesting_compiles_and_runs() {
    // 400 levels: 1 202 instructions of nesting weight 241 602, just
    // under the bound (compile time grows with instructions × depth).
    let depth = 400;
    let mut src = String::with_capacity(2 * depth + 8);
    src.push('+');
    src.push_str(&"[-".repeat(depth));
    src.push_str(&"]".repeat(depth));
    src.push('.');
    let (i, j) = both(&src, b"", None, EofMode::Unchanged);
    assert_eq!(i, j);
    assert_eq!(j.output, vec![0]);
}

#[test]
fn a_program_nested_too_deep_to_compile_whole_is_refused_at_once() {
    // 1 000 levels took Cranelift's egraph pass a second; 2 000 levels
    // are refused for their weight, not their 6 002 instructions.
    let src = format!("+{}{}.", "[-".repeat(2000), "]".repeat(2000));
    let prog = vssa_bf::parse(&src).unwrap();
    let cfg = checked_config(opts(None, EofMode::Unchanged));
    let mut input: &[u8] = &[];
    let mut out = Vec::new();
    let mut io = vssa_bf::Io::new(&mut input, &mut out);
    let (_, r) = vssa_bf::runtime::run_jit(&prog, SMALL_TAPE, &mut io, &cfg);
    match r {
        Err(vssa_bf::runtime::JitError::TooLarge(size)) => {
            assert_eq!(size.insts, 6002);
            assert!(size.weight > vssa_bf::runtime::MAX_UNIT_WEIGHT);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn a_program_too_large_to_compile_whole_is_refused_at_once() {
    // 100 000 levels: the whole-program JIT refuses it before building
    // anything (it used to take tens of seconds and gigabytes), and the
    // tiered engine, which `vssa run --engine jit` falls back to, runs it.
    let depth = 100_000;
    let src = format!("+{}{}.", "[-".repeat(depth), "]".repeat(depth));
    let prog = vssa_bf::parse(&src).unwrap();
    let cfg = checked_config(opts(None, EofMode::Unchanged));
    let mut input: &[u8] = &[];
    let mut out = Vec::new();
    let mut io = vssa_bf::Io::new(&mut input, &mut out);
    let (report, r) = vssa_bf::runtime::run_jit(&prog, SMALL_TAPE, &mut io, &cfg);
    match r {
        Err(vssa_bf::runtime::JitError::TooLarge(size)) => {
            assert_eq!(size.insts, 3 * depth + 2);
            assert!(!size.fits());
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(report.nodes_built, 0, "refused before building");
    assert!(out.is_empty());
    let (t, _) = run_tiered(
        &prog,
        b"",
        opts(None, EofMode::Unchanged),
        SMALL_TAPE,
        50,
        1,
    );
    assert_eq!(
        t,
        run_interp(&prog, b"", opts(None, EofMode::Unchanged), SMALL_TAPE)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn random_programs_agree(
        src in random_program(),
        input in prop::collection::vec(any::<u8>(), 0..8),
        eof in prop_oneof![Just(EofMode::Unchanged), Just(EofMode::Zero), Just(EofMode::MaxByte)],
    ) {
        let (i, j) = both(&src, &input, Some(2_000), eof);
        prop_assert_eq!(i, j, "program {}", src);
    }

    /// Without a step limit the JIT builds loops in closed form, so this
    /// runs the programs that end within a bound under no limit at all.
    #[test]
    fn random_terminating_programs_agree_without_a_step_limit(
        src in random_program(),
        input in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let prog = vssa_bf::parse(&src).unwrap();
        let bounded = run_interp(&prog, &input, opts(Some(5_000), EofMode::Unchanged), SMALL_TAPE);
        let ran_out = matches!(&bounded.error, Some(e) if matches!(e.kind, RunErrorKind::StepLimit { .. }));
        if !ran_out {
            let jit = run_jit(&prog, &input, opts(None, EofMode::Unchanged), SMALL_TAPE);
            prop_assert_eq!(bounded, jit, "program {}", src);
        }
    }
}

/// `src` on `input` (end of input stores 0) with the interpreter, the JIT
/// and the tiered engine (loops compiled on first entry): all three agree.
fn all_engines_agree(src: &str, input: &[u8]) -> Outcome {
    let prog = vssa_bf::parse(src).unwrap();
    let o = opts(None, EofMode::Zero);
    let interp = run_interp(&prog, input, o, SMALL_TAPE);
    let jit = run_jit(&prog, input, o, SMALL_TAPE);
    assert_eq!(interp, jit, "jit: {src}");
    let (tiered, _) = run_tiered(&prog, input, o, SMALL_TAPE, 1, 1);
    assert_eq!(interp, tiered, "tiered: {src}");
    interp
}

/// Walk loops (`[>>>]`, `[<[-]<<]`: the same net move every iteration)
/// test the cell they land on before checking that it is on the tape: off
/// the tape, the guard zone reads 0 and the loop ends, and a check after
/// the loop reports the loop's last move. Here every cell from 0 up to
/// `n` is nonzero, so walks run off the left end, or off the right end
/// when `n` reaches it, from every start and stride.
#[test]
fn walk_loops_that_land_off_the_tape_report_their_last_move() {
    let fill = ",[>,]+"; // cells 0..=n hold 1, the pointer is at n
    for stride in [1usize, 2, 3, 9, 13] {
        let right = ">".repeat(stride);
        let left = "<".repeat(stride);
        let bodies = [
            format!("[{right}]"),
            format!("[>[-]{}]", ">".repeat(stride - 1)),
            format!("[+{right}]").replace("+>", ">+<>"),
            format!("[{left}]"),
            format!("[<[-]{}]", "<".repeat(stride - 1)),
            format!("[>>+<{}]", "<".repeat(stride + 1)),
        ];
        for n in [SMALL_TAPE - 1 - 2 * stride, SMALL_TAPE - 2, SMALL_TAPE - 1] {
            let input = vec![1u8; n];
            for back in [0, 1, stride, 2 * stride + 1] {
                for walk in &bodies {
                    let src = format!("{fill}{}{walk}+.", "<".repeat(back));
                    let got = all_engines_agree(&src, &input);
                    if *walk == format!("[{left}]") {
                        let e = got.error.expect("a left walk over nonzero cells falls off");
                        assert_eq!(e.kind, RunErrorKind::TapeUnderflow, "{src}");
                    }
                }
            }
        }
    }
}

/// A walk that stops on the tape's last cell or on cell 0 is no error.
#[test]
fn walk_loops_that_stop_at_either_end_are_no_error() {
    let to_end = ">".repeat(SMALL_TAPE - 1);
    let got = all_engines_agree(&format!("+{to_end}<<<<[>>]+."), b"");
    assert_eq!(got.error, None);
    assert_eq!(got.output, vec![1]);
    let got = all_engines_agree(">>>>>>+>>>>>>+[<<<<<<]+.", b"");
    assert_eq!(got.error, None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Walks of random strides and bodies from random places over a tape
    /// whose first `n` cells are random (zero or not), near either end.
    #[test]
    fn random_walks_agree(
        cells in prop::collection::vec(prop_oneof![3 => Just(1u8), 1 => Just(0u8), 1 => any::<u8>()], 0..64),
        near_end in any::<bool>(),
        back in 0usize..80,
        stride in 1usize..20,
        leftward in any::<bool>(),
        body in prop_oneof![Just(""), Just("-"), Just("+>-<"), Just(">[-]<"), Just("[-<+>]")],
    ) {
        // Near the right end: skip over zero cells to just before the end
        // with `>`, then write the random cells from the input.
        let skip = if near_end { ">".repeat(SMALL_TAPE - 1 - cells.len()) } else { String::new() };
        let write = ",>".repeat(cells.len());
        let step = if leftward { "<".repeat(stride) } else { ">".repeat(stride) };
        let src = format!("{skip}{write}{}+[{body}{step}]+.", "<".repeat(back.min(cells.len() + skip.len())));
        let prog = vssa_bf::parse(&src).unwrap();
        let o = opts(None, EofMode::Zero);
        let interp = run_interp(&prog, &cells, o, SMALL_TAPE);
        let jit = run_jit(&prog, &cells, o, SMALL_TAPE);
        prop_assert_eq!(&interp, &jit, "jit: {}", src);
        let (tiered, _) = run_tiered(&prog, &cells, o, SMALL_TAPE, 1, 1);
        prop_assert_eq!(&interp, &tiered, "tiered: {}", src);
    }
}

/// After a scan, one check covers the landing cell and the segment after
/// it, widened to the right by a copy loop's reach. Near the tape's end
/// that check fails although the scan landed on the tape: the interpreter
/// redoes the scan's last move from just before it and runs the segment,
/// exactly; entered, the copy loop walks off at its `>>>`.
#[test]
fn a_failed_check_after_a_scan_falls_back_exactly() {
    let input = vec![1u8; SMALL_TAPE - 3];
    for (tail, fails) in [("[->>>+<<<]+.", false), ("+[->>>+<<<]", true)] {
        for scan in ["[>]", "[>>]"] {
            let src = format!(",[>,]<<<<<{scan}{tail}");
            let got = all_engines_agree(&src, &input);
            assert_eq!(got.error.is_some(), fails, "{src}: {:?}", got.error);
        }
    }
}

/// A walk whose body reaches further ahead than the tape is long: its
/// checks can never pass, and every engine reports the move.
#[test]
fn a_walk_reaching_past_the_whole_tape_is_reported() {
    let src = format!(
        "+[{}+{}]",
        ">".repeat(SMALL_TAPE),
        "<".repeat(SMALL_TAPE - 1)
    );
    let got = all_engines_agree(&src, b"");
    assert!(matches!(
        got.error.map(|e| e.kind),
        Some(RunErrorKind::TapeLimit { .. })
    ));
}
