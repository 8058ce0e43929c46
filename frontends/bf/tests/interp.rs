//! End-to-end tests of the parser and the reference interpreter, the shared
//! Brainfuck corpus, and property tests against a naive (unfolded)
//! interpreter written here independently.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vssa_bf::{
    parse, run, run_from, EofMode, InterpState, Io, ParseError, RunError, RunErrorKind, RunOptions,
    SrcPos, Tape, DEFAULT_TAPE_LIMIT, MIN_TAPE_LIMIT,
};

/// Output, result and final state of running `src` on a tape of `limit` cells.
struct Outcome {
    result: Result<(), RunError>,
    out: Vec<u8>,
    state: InterpState,
    tape: Tape,
}

fn exec_with(src: &[u8], input: &[u8], limit: usize, opts: RunOptions) -> Outcome {
    let prog = parse(src).expect("test program parses");
    let mut tape = Tape::new(limit).expect("tape");
    let mut inp = input;
    let mut out = Vec::new();
    let mut state = InterpState::default();
    let result = run_from(
        &prog,
        &mut tape,
        &mut state,
        &mut Io::new(&mut inp, &mut out),
        &opts,
    );
    Outcome {
        result,
        out,
        state,
        tape,
    }
}

fn exec(src: &str) -> Outcome {
    exec_with(src.as_bytes(), b"", MIN_TAPE_LIMIT, RunOptions::default())
}

/// Hello World, written for this test: each letter is reached from the
/// previous one on the same cell by a small multiplication loop or a few
/// `+`/`-`.
const HELLO: &str = "
    ++++++++[>+++++++++<-]>.        cell 1 = 8 * 9 = 72 H
    <+++++[>++++++<-]>-.            add 5 * 6 then 1 less = 101 e
    +++++++..                       add 7 = 108 l l
    +++.                            add 3 = 111 o
    >++++[>++++++++<-]>.            cell 3 = 4 * 8 = 32 space
    <+++++[>+++++++++++<-]>.        add 5 * 11 = 87 W
    <++++[>++++++<-]>.              add 4 * 6 = 111 o
    +++.                            add 3 = 114 r
    ------.                         sub 6 = 108 l
    --------.                       sub 8 = 100 d
    >+++++++++++++++++++++++++++++++++.   cell 4 = 33 !
    >++++++++++.                    cell 5 = 10 newline
";

#[test]
fn hello_world() {
    let o = exec(HELLO);
    o.result.unwrap();
    assert_eq!(String::from_utf8(o.out).unwrap(), "Hello World!\n");
    assert_eq!(o.state.ptr, 5);
}

#[test]
fn run_returns_final_state() {
    let prog = parse("+++[-]>").unwrap();
    let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
    let mut inp: &[u8] = b"";
    let mut out = Vec::new();
    let st = run(
        &prog,
        &mut tape,
        &mut Io::new(&mut inp, &mut out),
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(
        st,
        InterpState {
            pc: prog.len(),
            ptr: 1,
            steps: 4
        }
    );
}

#[test]
fn wrapping() {
    let o = exec(&("+".repeat(255) + ">+<+"));
    o.result.unwrap();
    assert_eq!(&o.tape.as_slice()[..2], &[0, 1]);
    let o = exec("-.");
    assert_eq!(o.out, [255]);
}

#[test]
fn empty_program() {
    let p = parse("").unwrap();
    assert!(p.is_empty());
    let o = exec("");
    o.result.unwrap();
    assert!(o.out.is_empty());
    assert_eq!(o.state, InterpState::default());
    let o = exec("no commands here\n");
    o.result.unwrap();
    assert_eq!(o.state.pc, 0);
}

#[test]
fn unbalanced_programs() {
    let e = parse("++\n[->+<]]").unwrap_err();
    assert_eq!(
        e,
        ParseError::UnmatchedClose {
            pos: SrcPos {
                line: 2,
                col: 7,
                byte: 9
            }
        }
    );
    assert_eq!(e.to_string(), "2:7 (byte 9): unmatched ']'");
    // The innermost unclosed `[` is reported, after a multibyte comment.
    let e = parse("[ ünïcödé\n[[]").unwrap_err();
    assert_eq!(
        e,
        ParseError::UnmatchedOpen {
            pos: SrcPos {
                line: 2,
                col: 1,
                byte: 14
            }
        }
    );
    assert_eq!(e.to_string(), "2:1 (byte 14): unmatched '['");
    assert!(matches!(
        parse("]["),
        Err(ParseError::UnmatchedClose { .. })
    ));
}

#[test]
fn hundred_thousand_nested_loops() {
    let n = 100_000;
    // Skipped: cell 0 is 0, the outermost `[` jumps over everything.
    let src = "[".repeat(n) + &"]".repeat(n);
    let o = exec(&src);
    o.result.unwrap();
    assert_eq!(o.state.steps, 1);
    assert_eq!(o.state.pc, 2 * n);
    // Entered: every `[` enters, the innermost body clears the cell, every
    // `]` then falls through.
    let src = "+".to_string() + &"[".repeat(n) + "-" + &"]".repeat(n) + "+.";
    let o = exec(&src);
    o.result.unwrap();
    assert_eq!(o.state.steps, 2 * n as u64);
    assert_eq!(o.out, [1]);
}

/// 10 MB of folded runs, comments (some multibyte), and balanced loops.
fn big_source(size: usize) -> Vec<u8> {
    const PIECES: [&str; 8] = ["+", "-", ">", "<", " ", "é", "\n", "[-]"];
    let mut src = Vec::with_capacity(size + 8);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while src.len() < size {
        // xorshift: a fixed, dependency-free pseudo-random mix.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        src.extend_from_slice(PIECES[(x % 8) as usize].as_bytes());
    }
    src
}

#[test]
fn ten_megabyte_program_parses_fast() {
    let src = big_source(10 << 20);
    let t = Instant::now();
    let prog = parse(&src).unwrap();
    let took = t.elapsed();
    println!(
        "parsed {} bytes into {} instructions in {:?}",
        src.len(),
        prog.len(),
        took
    );
    assert_eq!(prog.source_len, src.len());
    assert!(prog.len() > 1 << 20);
    // Well under a second in release; generous here for unoptimized and
    // loaded test machines.
    assert!(took < Duration::from_secs(5), "parse took {took:?}");
}

#[test]
fn tape_underflow_names_the_move() {
    // The `.` ends the `>>` run (a comment would not).
    let o = exec("+>>.\n  <<<<+");
    let e = o.result.unwrap_err();
    assert_eq!(e.kind, RunErrorKind::TapeUnderflow);
    assert_eq!(
        e.pos,
        Some(SrcPos {
            line: 2,
            col: 3,
            byte: 7
        })
    );
    assert_eq!(e.to_string(), "2:3 (byte 7): moved left of cell 0");
    // The state is before the failing move.
    assert_eq!(o.state.ptr, 2);
    assert_eq!(o.state.pc, 3);
    // Comments do not split a run: `>>` and `<<<<` fold into one move.
    let e = exec("+>>\n  <<<<+").result.unwrap_err();
    assert_eq!(e.pos.unwrap().byte, 1);
}

#[test]
fn tape_limit_with_small_limit() {
    // Walk right forever, one cell per iteration.
    let o = exec_with(b"+[>+]", b"", MIN_TAPE_LIMIT, RunOptions::default());
    let e = o.result.unwrap_err();
    assert_eq!(
        e.kind,
        RunErrorKind::TapeLimit {
            limit: MIN_TAPE_LIMIT
        }
    );
    assert_eq!(e.pos.unwrap().byte, 2);
    assert_eq!(o.state.ptr, MIN_TAPE_LIMIT as i64 - 1);
    assert_eq!(o.tape.as_slice()[MIN_TAPE_LIMIT - 1], 1);
    // The last cell is usable; one past it is not.
    let last = ">".repeat(MIN_TAPE_LIMIT - 1) + "+";
    exec_with(last.as_bytes(), b"", MIN_TAPE_LIMIT, RunOptions::default())
        .result
        .unwrap();
    let past = ">".repeat(MIN_TAPE_LIMIT);
    let o = exec_with(past.as_bytes(), b"", MIN_TAPE_LIMIT, RunOptions::default());
    assert!(matches!(
        o.result.unwrap_err().kind,
        RunErrorKind::TapeLimit { .. }
    ));
    // A bigger tape takes it.
    exec_with(past.as_bytes(), b"", 40_000, RunOptions::default())
        .result
        .unwrap();
}

#[test]
fn tape_limit_minimum_is_enforced() {
    assert!(Tape::new(MIN_TAPE_LIMIT - 1).is_err());
    assert_eq!(DEFAULT_TAPE_LIMIT, 64 << 20);
}

#[test]
fn eof_modes() {
    let cases = [
        (EofMode::Unchanged, 5u8),
        (EofMode::Zero, 0),
        (EofMode::MaxByte, 255),
    ];
    for (eof, want) in cases {
        let opts = RunOptions {
            eof,
            ..RunOptions::default()
        };
        let o = exec_with(b"+++++,.", b"", MIN_TAPE_LIMIT, opts);
        o.result.unwrap();
        assert_eq!(o.out, [want], "{eof:?}");
    }
}

#[test]
fn step_limit() {
    // An infinite loop is stopped at the `]`, after exactly max_steps tests.
    let opts = RunOptions {
        max_steps: Some(1000),
        ..RunOptions::default()
    };
    let o = exec_with(b"+\n[ ]", b"", MIN_TAPE_LIMIT, opts);
    let e = o.result.unwrap_err();
    assert_eq!(e.kind, RunErrorKind::StepLimit { max_steps: 1000 });
    assert_eq!(
        e.pos,
        Some(SrcPos {
            line: 2,
            col: 3,
            byte: 4
        })
    );
    assert_eq!(o.state.steps, 1000);
    // With a zero limit the first `[` is refused.
    let opts = RunOptions {
        max_steps: Some(0),
        ..RunOptions::default()
    };
    let o = exec_with(b"+.[-]", b"", MIN_TAPE_LIMIT, opts);
    assert_eq!(o.result.unwrap_err().pos.unwrap().byte, 2);
    assert_eq!(o.out, [1]);
    // A limit exactly large enough passes: `[-]` on 3 is 1 + 3 tests.
    let opts = RunOptions {
        max_steps: Some(4),
        ..RunOptions::default()
    };
    exec_with(b"+++[-]", b"", MIN_TAPE_LIMIT, opts)
        .result
        .unwrap();
}

// ---------------------------------------------------------------------
// The shared corpus.

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/bf"))
}

fn with_ext(p: &Path, ext: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// Runs one corpus program on the default tape with default options;
/// returns a line for the log, or why it failed.
fn run_corpus_program(path: &Path) -> Result<String, String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{name}: {}: {e}", p.display()));
    let src = read(path)?;
    let want = read(&with_ext(path, ".out"))?;
    let in_path = with_ext(path, ".in");
    let input = if in_path.exists() {
        read(&in_path)?
    } else {
        Vec::new()
    };
    let t = Instant::now();
    let prog = parse(&src).map_err(|e| format!("{name}: {e}"))?;
    let o = exec_with(&src, &input, DEFAULT_TAPE_LIMIT, RunOptions::default());
    let took = t.elapsed();
    o.result.map_err(|e| format!("{name}: {e}"))?;
    if o.out != want {
        let at = o.out.iter().zip(&want).take_while(|(a, b)| a == b).count();
        return Err(format!(
            "{name}: output differs at byte {at} ({} bytes, want {})",
            o.out.len(),
            want.len()
        ));
    }
    Ok(format!(
        "{name}: {} insts, {} loop tests, {took:?}",
        prog.len(),
        o.state.steps
    ))
}

/// Runs every `*.b` with a `.b.out` (feeding `.b.in` if there is one) and
/// compares the output bytes exactly. The programs run on all cores: some
/// take tens of seconds in the interpreter.
#[test]
fn shared_corpus() {
    let dir = corpus_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipping: corpus {} not found", dir.display());
        return;
    };
    let mut programs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "b") && with_ext(p, ".out").exists())
        .collect();
    programs.sort();
    if programs.is_empty() {
        println!("skipping: no *.b with a .b.out in {}", dir.display());
        return;
    }
    let total = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<String, String>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers.min(programs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = programs.get(i) else { break };
                let r = run_corpus_program(path);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let mut failures = Vec::new();
    for (_, r) in results {
        match r {
            Ok(line) => println!("{line}"),
            Err(e) => failures.push(e),
        }
    }
    println!(
        "corpus: {} programs on {workers} threads in {:?}",
        programs.len(),
        total.elapsed()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------
// Property tests.

/// The outcome of the naive interpreter, comparable with the real one's
/// when the real one did not leave the tape.
#[derive(Debug, PartialEq, Eq)]
enum NaiveEnd {
    Done,
    StepLimit,
    /// Left the naive interpreter's padded tape (no claim is made then).
    OffTape,
}

/// A deliberately simple interpreter over the raw source bytes: no folding,
/// brackets matched by scanning, no pointer checks inside runs. Its tape is
/// padded by the source length on both sides so a run can wander within it.
fn naive(src: &[u8], input: &[u8], max_steps: u64, eof: EofMode) -> (NaiveEnd, Vec<u8>, Vec<u8>) {
    let pad = src.len() + 1;
    let mut tape = vec![0u8; MIN_TAPE_LIMIT + 2 * pad];
    let mut p = pad as i64;
    let mut out = Vec::new();
    let mut inp = input.iter();
    let mut steps = 0u64;
    let mut pc = 0usize;
    let find = |from: usize, forward: bool| -> usize {
        let mut depth = 0i64;
        let mut i = from;
        loop {
            match src[i] {
                b'[' => depth += 1,
                b']' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                return i;
            }
            if forward {
                i += 1
            } else {
                i -= 1
            }
        }
    };
    let end = loop {
        if pc >= src.len() {
            break NaiveEnd::Done;
        }
        if p < 0 || p as usize >= tape.len() {
            break NaiveEnd::OffTape;
        }
        let c = p as usize;
        match src[pc] {
            b'+' => tape[c] = tape[c].wrapping_add(1),
            b'-' => tape[c] = tape[c].wrapping_sub(1),
            b'>' => p += 1,
            b'<' => p -= 1,
            b'.' => out.push(tape[c]),
            b',' => {
                tape[c] = match inp.next() {
                    Some(&b) => b,
                    None => eof.on_eof(tape[c]),
                }
            }
            b'[' | b']' => {
                if steps >= max_steps {
                    break NaiveEnd::StepLimit;
                }
                steps += 1;
                if src[pc] == b'[' && tape[c] == 0 {
                    pc = find(pc, true);
                } else if src[pc] == b']' && tape[c] != 0 {
                    pc = find(pc, false);
                }
            }
            _ => {}
        }
        pc += 1;
    };
    (end, out, tape[pad..pad + MIN_TAPE_LIMIT].to_vec())
}

/// Random source text from a Brainfuck-heavy alphabet, with brackets made
/// to balance (stray `]` dropped, missing `]` appended).
fn balanced_program() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b"+-<>.,[]+->< x\n";
    prop::collection::vec(prop::sample::select(alphabet), 0..80).prop_map(|raw| {
        let mut depth = 0usize;
        let mut src = Vec::with_capacity(raw.len() + 8);
        for b in raw {
            match b {
                b'[' => depth += 1,
                b']' if depth == 0 => continue,
                b']' => depth -= 1,
                _ => {}
            }
            src.push(b);
        }
        src.extend(std::iter::repeat_n(b']', depth));
        src
    })
}

fn eof_mode() -> impl Strategy<Value = EofMode> {
    prop_oneof![
        Just(EofMode::Unchanged),
        Just(EofMode::Zero),
        Just(EofMode::MaxByte)
    ]
}

const MAX_STEPS: u64 = 2_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes at all parse or fail cleanly, and a parsed program's
    /// bracket targets point at each other.
    #[test]
    fn parse_never_panics(src in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = parse(&src) {
            for (i, inst) in p.insts.iter().enumerate() {
                match inst.kind {
                    vssa_bf::InstKind::Open { close } => {
                        prop_assert_eq!(p.insts[close].kind, vssa_bf::InstKind::Close { open: i });
                    }
                    vssa_bf::InstKind::Add(n) => prop_assert_ne!(n, 0),
                    vssa_bf::InstKind::Move(k) => prop_assert_ne!(k, 0),
                    _ => {}
                }
                prop_assert!(inst.pos.byte < src.len());
            }
        }
    }

    /// Balanced programs run without panicking, twice the same way, and
    /// agree with the naive interpreter whenever they stay on the tape.
    #[test]
    fn runs_are_deterministic_and_match_naive(
        src in balanced_program(),
        input in prop::collection::vec(any::<u8>(), 0..8),
        eof in eof_mode(),
    ) {
        let opts = RunOptions { max_steps: Some(MAX_STEPS), eof };
        let a = exec_with(&src, &input, MIN_TAPE_LIMIT, opts);
        let b = exec_with(&src, &input, MIN_TAPE_LIMIT, opts);
        prop_assert_eq!(&a.result, &b.result);
        prop_assert_eq!(&a.out, &b.out);
        prop_assert_eq!(a.state, b.state);
        prop_assert_eq!(a.tape.as_slice(), b.tape.as_slice());

        let (end, out, tape) = naive(&src, &input, MAX_STEPS, eof);
        match &a.result {
            Ok(()) => {
                prop_assert_eq!(end, NaiveEnd::Done);
                prop_assert_eq!(&a.out, &out);
                prop_assert_eq!(a.tape.as_slice(), &tape[..]);
            }
            Err(RunError { kind: RunErrorKind::StepLimit { .. }, .. }) => {
                prop_assert_eq!(end, NaiveEnd::StepLimit);
                prop_assert_eq!(&a.out, &out);
                prop_assert_eq!(a.tape.as_slice(), &tape[..]);
            }
            Err(e) => {
                // Only the pointer checks can fail here (the I/O is in memory).
                prop_assert!(matches!(e.kind, RunErrorKind::TapeUnderflow), "{}", e);
            }
        }
    }

    /// Stopping at any step limit and resuming from the state gives the
    /// same run as never stopping.
    #[test]
    fn resuming_is_seamless(
        src in balanced_program(),
        input in prop::collection::vec(any::<u8>(), 0..8),
        first in 0u64..64,
    ) {
        let full_opts = RunOptions { max_steps: Some(MAX_STEPS), ..RunOptions::default() };
        let whole = exec_with(&src, &input, MIN_TAPE_LIMIT, full_opts);

        let prog = parse(&src).unwrap();
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut inp: &[u8] = &input;
        let mut out = Vec::new();
        let mut st = InterpState::default();
        let part_opts = RunOptions { max_steps: Some(first), ..RunOptions::default() };
        let mut r = run_from(&prog, &mut tape, &mut st, &mut Io::new(&mut inp, &mut out), &part_opts);
        if matches!(r, Err(RunError { kind: RunErrorKind::StepLimit { .. }, .. })) {
            prop_assert_eq!(st.steps, first);
            r = run_from(&prog, &mut tape, &mut st, &mut Io::new(&mut inp, &mut out), &full_opts);
        }
        prop_assert_eq!(&r, &whole.result);
        prop_assert_eq!(&out, &whole.out);
        prop_assert_eq!(st, whole.state);
        prop_assert_eq!(tape.as_slice(), whole.tape.as_slice());
    }
}
