//! The reference interpreter: the baseline tier and the oracle every other
//! tier is tested against.
//!
//! It executes a folded [`Program`] directly: a `match` on a small enum per
//! instruction, with the bracket targets resolved by the parser. It is
//! *resumable*: all of its state is an [`InterpState`], so compiled code can
//! stop anywhere, hand its state over, and the interpreter goes on from
//! there (and the other way round).
//!
//! Semantics, in one place:
//! * Cells are 8-bit and wrap (`255 + 1 = 0`, `0 - 1 = 255`).
//! * After each [`InstKind::Move`] the pointer is checked: left of cell 0 is
//!   [`RunErrorKind::TapeUnderflow`], at or past the tape's length is
//!   [`RunErrorKind::TapeLimit`], both at the move's position. A folded run
//!   of moves counts as one move: the pointer is checked where the run ends,
//!   so `<>` at cell 0 is fine.
//! * `.` writes the cell as one byte to the embedder's writer, unbuffered
//!   and unflushed (the embedder buffers and flushes as it sees fit).
//! * `,` reads one byte; at end of input the cell follows [`EofMode`].
//! * The step limit counts *loop tests*: see [`RunOptions::max_steps`].

use std::io::{self, Read, Write};

use crate::error::{RunError, RunErrorKind, SrcPos};
use crate::parse::{InstKind, Program};
use crate::tape::Tape;

/// What `,` does to the cell at end of input. Implementations disagree, so
/// it is the embedder's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EofMode {
    /// Leave the cell as it was (the most portable convention).
    #[default]
    Unchanged,
    /// Set the cell to 0.
    Zero,
    /// Set the cell to 255 (what C's `getchar() == EOF` stored in a byte gives).
    MaxByte,
}

impl EofMode {
    /// The cell's new value when `,` hits end of input on a cell holding `current`.
    pub fn on_eof(self, current: u8) -> u8 {
        match self {
            EofMode::Unchanged => current,
            EofMode::Zero => 0,
            EofMode::MaxByte => 255,
        }
    }
}

/// Knobs of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// The most loop tests the run may perform; `None` is unlimited.
    ///
    /// One step is one evaluation of a loop condition: each time a `[` or a
    /// `]` tests the current cell. Loops are the only way a program can run
    /// for long (straight-line code between two tests is bounded by the
    /// program's length), so this bounds the total work; and it is cheap and
    /// exact in compiled code too, which already branches at every test and
    /// only adds a counter there. Counting tests rather than instructions
    /// also makes the count independent of folding and scheduling, so every
    /// tier stops at the very same test. Running test number
    /// `max_steps + 1` is a [`RunErrorKind::StepLimit`] at that `[`/`]`.
    pub max_steps: Option<u64>,
    /// What `,` does at end of input.
    pub eof: EofMode,
}

/// The complete state of a paused run, besides the tape.
///
/// A fresh run starts from `InterpState::default()` (all zero). When a run
/// ends normally, `pc == prog.len()`. When it fails, the state is left as it
/// was *before* the failing instruction, with `pc` at that instruction: the
/// pointer is still on the tape, and a step-limited run can be resumed with a
/// larger limit and gives the same result as one longer run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InterpState {
    /// Index of the next instruction in [`Program::insts`].
    pub pc: usize,
    /// The cell index, `0 <= ptr < tape.len()` between instructions.
    pub ptr: i64,
    /// Loop tests performed so far (counted with or without a limit).
    pub steps: u64,
}

/// The embedder's input and output, borrowed for a run.
pub struct Io<'a> {
    pub input: &'a mut dyn Read,
    pub output: &'a mut dyn Write,
    /// The `.` that wrote last: a write error that only shows when the
    /// output is flushed at the end ([`Io::finish`]) is reported there.
    last_out: Option<SrcPos>,
}

impl<'a> Io<'a> {
    pub fn new(input: &'a mut dyn Read, output: &'a mut dyn Write) -> Self {
        Io {
            input,
            output,
            last_out: None,
        }
    }

    /// Writes one byte (what `.` does) for the `.` at `at`.
    pub fn write_byte(&mut self, b: u8, at: Option<SrcPos>) -> io::Result<()> {
        self.last_out = at;
        self.output.write_all(&[b])
    }

    /// Flushes the output at the end of a run. A failure is the last
    /// output instruction's error: buffered bytes it wrote are lost.
    pub fn finish(&mut self) -> Result<(), RunError> {
        self.output
            .flush()
            .map_err(|e| RunError::new(RunErrorKind::io(&e), self.last_out))
    }

    /// Reads one byte; `None` at end of input. Retries interrupted reads.
    /// Flushes the output first, so that a prompt written before a `,` is
    /// seen before the program waits for its answer.
    pub fn read_byte(&mut self) -> io::Result<Option<u8>> {
        self.output.flush()?;
        let mut buf = [0u8; 1];
        loop {
            match self.input.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(buf[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// What `,` does: the new value of a cell holding `current`. Shared
    /// with the compiled tier's host call, so both agree on EOF.
    pub fn read_cell(&mut self, current: u8, eof: EofMode) -> io::Result<u8> {
        Ok(match self.read_byte()? {
            Some(b) => b,
            None => eof.on_eof(current),
        })
    }
}

/// Runs `prog` from the start on `tape` (whose cells are used as they are,
/// normally all zero). Returns the final state (e.g. the steps taken).
pub fn run(
    prog: &Program,
    tape: &mut Tape,
    io: &mut Io<'_>,
    opts: &RunOptions,
) -> Result<InterpState, RunError> {
    let mut state = InterpState::default();
    run_from(prog, tape, &mut state, io, opts)?;
    Ok(state)
}

/// Runs `prog` from `state` until it ends or fails, updating `state` (see
/// [`InterpState`] for where it is left on failure).
///
/// A `state.ptr` off the tape (only a buggy caller can hand one over) is
/// reported like a move there, at the instruction `state.pc`. A `state.pc`
/// at or past the end is a finished run.
pub fn run_from(
    prog: &Program,
    tape: &mut Tape,
    state: &mut InterpState,
    io: &mut Io<'_>,
    opts: &RunOptions,
) -> Result<(), RunError> {
    run_hooked(prog, tape, state, io, opts, &mut NoHook).map(|_| ())
}

/// Watches loop entries for a tiered runtime (see [`run_hooked`]).
pub trait LoopHook {
    /// The body of the loop opened at `open` is about to run (its `[` or
    /// `]` test found the cell nonzero). Returning true stops the run
    /// there, at the loop's header: `state.pc == open + 1`.
    fn enter_body(&mut self, open: usize) -> bool;
}

/// The hook of a plain run: never stops.
struct NoHook;

impl LoopHook for NoHook {
    #[inline(always)]
    fn enter_body(&mut self, _open: usize) -> bool {
        false
    }
}

/// [`run_from`], asking `hook` at every loop-body entry whether to stop.
/// Returns `Some(open)` when the hook stopped the run at the header of the
/// loop opened at `open` (`state.pc == open + 1`, the test counted), `None`
/// when the program ended.
pub fn run_hooked(
    prog: &Program,
    tape: &mut Tape,
    state: &mut InterpState,
    io: &mut Io<'_>,
    opts: &RunOptions,
    hook: &mut impl LoopHook,
) -> Result<Option<usize>, RunError> {
    let insts = &prog.insts[..];
    let cells = tape.as_mut_slice();
    let len = cells.len();
    let pos_at = |pc: usize| insts.get(pc).map(|i| i.pos);

    let mut ptr = match checked_ptr(state.ptr, len) {
        Ok(p) => p,
        Err(kind) => return Err(RunError::new(kind, pos_at(state.pc))),
    };
    let mut pc = state.pc;
    let mut steps = state.steps;

    let result = loop {
        let Some(inst) = insts.get(pc) else {
            break Ok(None);
        };
        match inst.kind {
            InstKind::Add(n) => cells[ptr] = cells[ptr].wrapping_add(n),
            InstKind::Move(k) => {
                // `ptr < len <= isize::MAX`, so it fits an i64.
                let to =
                    (ptr as i64)
                        .checked_add(k)
                        .unwrap_or(if k < 0 { i64::MIN } else { i64::MAX });
                match checked_ptr(to, len) {
                    Ok(p) => ptr = p,
                    Err(kind) => break Err(error(kind, inst.pos)),
                }
            }
            InstKind::Out => {
                if let Err(e) = io.write_byte(cells[ptr], Some(inst.pos)) {
                    break Err(error(RunErrorKind::io(&e), inst.pos));
                }
            }
            InstKind::In => match io.read_cell(cells[ptr], opts.eof) {
                Ok(v) => cells[ptr] = v,
                Err(e) => break Err(error(RunErrorKind::io(&e), inst.pos)),
            },
            InstKind::Open { close } => {
                if let Some(e) = count_step(&mut steps, opts, inst.pos) {
                    break Err(e);
                }
                if cells[ptr] == 0 {
                    pc = close;
                } else if hook.enter_body(pc) {
                    pc += 1;
                    break Ok(Some(pc - 1));
                }
            }
            InstKind::Close { open } => {
                if let Some(e) = count_step(&mut steps, opts, inst.pos) {
                    break Err(e);
                }
                if cells[ptr] != 0 {
                    pc = open;
                    if hook.enter_body(open) {
                        pc += 1;
                        break Ok(Some(open));
                    }
                }
            }
        }
        // Saturating: a hand-built Program with a bogus target ends the
        // run instead of overflowing.
        pc = pc.saturating_add(1);
    };

    *state = InterpState {
        pc,
        ptr: ptr as i64,
        steps,
    };
    result
}

fn error(kind: RunErrorKind, pos: SrcPos) -> RunError {
    RunError::new(kind, Some(pos))
}

/// `p` as a cell index, or why it is off the tape.
#[inline]
fn checked_ptr(p: i64, len: usize) -> Result<usize, RunErrorKind> {
    if p < 0 {
        Err(RunErrorKind::TapeUnderflow)
    } else if (p as u64) >= len as u64 {
        Err(RunErrorKind::TapeLimit { limit: len })
    } else {
        Ok(p as usize)
    }
}

/// Counts one loop test, or reports the limit if it has been reached.
#[inline]
fn count_step(steps: &mut u64, opts: &RunOptions, pos: SrcPos) -> Option<RunError> {
    if let Some(max) = opts.max_steps {
        if *steps >= max {
            return Some(error(RunErrorKind::StepLimit { max_steps: max }, pos));
        }
    }
    *steps = steps.saturating_add(1);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use crate::tape::MIN_TAPE_LIMIT;

    /// Runs `src` on a minimal tape with `input`; returns the result, the
    /// output, the final state and the first cells.
    fn exec(
        src: &str,
        input: &[u8],
        opts: RunOptions,
    ) -> (Result<(), RunError>, Vec<u8>, InterpState, Vec<u8>) {
        let prog = parse(src).unwrap();
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut inp = input;
        let mut out = Vec::new();
        let mut st = InterpState::default();
        let r = run_from(
            &prog,
            &mut tape,
            &mut st,
            &mut Io::new(&mut inp, &mut out),
            &opts,
        );
        (r, out, st, tape.as_slice()[..8].to_vec())
    }

    /// Stops at the `n`-th body entry of any loop, recording every entry.
    struct StopAt {
        n: usize,
        seen: Vec<usize>,
    }

    impl LoopHook for StopAt {
        fn enter_body(&mut self, open: usize) -> bool {
            self.seen.push(open);
            self.seen.len() == self.n
        }
    }

    #[test]
    fn the_hook_sees_every_body_entry_and_stops_at_the_header() {
        // Loop at 1 runs 3 times (entered by `[` once, by `]` twice); the
        // loop at 4 is skipped every time (its cell stays 0).
        let prog = parse("+++[>[-]<-]").unwrap();
        let open = 1;
        let opts = RunOptions {
            max_steps: Some(100),
            ..RunOptions::default()
        };
        let mut all = StopAt { n: 0, seen: vec![] };
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let (mut inp, mut out) = (&b""[..], Vec::new());
        let mut st = InterpState::default();
        let mut io = Io::new(&mut inp, &mut out);
        let r = run_hooked(&prog, &mut tape, &mut st, &mut io, &opts, &mut all).unwrap();
        assert_eq!(r, None);
        assert_eq!(all.seen, vec![open; 3]);
        // Stopping at the second entry leaves the run at the body's start,
        // with the `]` test counted; going on from there ends the same way.
        let mut stop = StopAt { n: 2, seen: vec![] };
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut st = InterpState::default();
        let r = run_hooked(&prog, &mut tape, &mut st, &mut io, &opts, &mut stop).unwrap();
        assert_eq!(r, Some(open));
        assert_eq!(st.pc, open + 1);
        assert_eq!(tape.as_slice()[0], 2);
        let steps_at_stop = st.steps;
        run_from(&prog, &mut tape, &mut st, &mut io, &opts).unwrap();
        assert_eq!(st.pc, prog.insts.len());
        assert!(st.steps > steps_at_stop);
        assert_eq!(tape.as_slice()[0], 0);
    }

    #[test]
    fn cells_wrap() {
        let (r, _, _, cells) = exec(&"+".repeat(255), b"", RunOptions::default());
        r.unwrap();
        assert_eq!(cells[0], 255);
        let (r, _, _, cells) = exec(&"+".repeat(255 + 1), b"", RunOptions::default());
        r.unwrap();
        assert_eq!(cells[0], 0);
        // 255 + 1 across two instructions, so the fold cannot hide it.
        let (r, _, _, cells) = exec(&("+".repeat(255) + ".+"), b"", RunOptions::default());
        r.unwrap();
        assert_eq!(cells[0], 0);
        let (r, _, _, cells) = exec("-", b"", RunOptions::default());
        r.unwrap();
        assert_eq!(cells[0], 255);
    }

    #[test]
    fn out_and_in() {
        let (r, out, st, cells) = exec(",+.>,.", b"AB", RunOptions::default());
        r.unwrap();
        assert_eq!(out, b"BB");
        assert_eq!(&cells[..2], b"BB");
        assert_eq!(st.pc, 6);
        assert_eq!(st.ptr, 1);
    }

    #[test]
    fn loops_run_and_count_steps() {
        // 3 iterations: one `[` test, three `]` tests.
        let (r, _, st, cells) = exec("+++[>++<-]", b"", RunOptions::default());
        r.unwrap();
        assert_eq!(cells[1], 6);
        assert_eq!(st.steps, 4);
        // A skipped loop is one test.
        let (r, _, st, _) = exec("[+]", b"", RunOptions::default());
        r.unwrap();
        assert_eq!(st.steps, 1);
    }

    #[test]
    fn moves_checked_at_run_end() {
        let (r, _, _, _) = exec("<>+", b"", RunOptions::default());
        r.unwrap();
        let (r, _, _, _) = exec("<<>+>", b"", RunOptions::default());
        let e = r.unwrap_err();
        assert_eq!(e.kind, RunErrorKind::TapeUnderflow);
        assert_eq!(e.pos.unwrap().byte, 0);
    }

    #[test]
    fn failed_state_is_before_the_instruction() {
        let (r, _, st, _) = exec(">>+<<<", b"", RunOptions::default());
        assert_eq!(r.unwrap_err().kind, RunErrorKind::TapeUnderflow);
        assert_eq!(
            st,
            InterpState {
                pc: 2,
                ptr: 2,
                steps: 0
            }
        );
    }

    #[test]
    fn step_limit_then_resume() {
        let src = "++++[>+<-]>.";
        let prog = parse(src).unwrap();
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut out = Vec::new();
        let mut st = InterpState::default();
        let mut inp: &[u8] = b"";
        let limited = RunOptions {
            max_steps: Some(3),
            ..RunOptions::default()
        };
        let e = run_from(
            &prog,
            &mut tape,
            &mut st,
            &mut Io::new(&mut inp, &mut out),
            &limited,
        )
        .unwrap_err();
        assert_eq!(e.kind, RunErrorKind::StepLimit { max_steps: 3 });
        // The fourth test is the `]` at byte 9.
        assert_eq!(e.pos.unwrap().byte, 9);
        assert_eq!(st.steps, 3);
        assert_eq!(st.pc, 6);
        run_from(
            &prog,
            &mut tape,
            &mut st,
            &mut Io::new(&mut inp, &mut out),
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(out, [4]);
        assert_eq!(st.steps, 5);
        assert_eq!(st.pc, prog.len());
    }

    #[test]
    fn bad_resume_pointer_is_an_error() {
        let prog = parse("+").unwrap();
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut inp: &[u8] = b"";
        let mut out = Vec::new();
        let mut io = Io::new(&mut inp, &mut out);
        let mut st = InterpState {
            ptr: -1,
            ..InterpState::default()
        };
        let e = run_from(&prog, &mut tape, &mut st, &mut io, &RunOptions::default()).unwrap_err();
        assert_eq!(e.kind, RunErrorKind::TapeUnderflow);
        let mut st = InterpState {
            ptr: MIN_TAPE_LIMIT as i64,
            ..InterpState::default()
        };
        let e = run_from(&prog, &mut tape, &mut st, &mut io, &RunOptions::default()).unwrap_err();
        assert_eq!(
            e.kind,
            RunErrorKind::TapeLimit {
                limit: MIN_TAPE_LIMIT
            }
        );
        // Past the end: nothing left to do.
        let mut st = InterpState {
            pc: 99,
            ..InterpState::default()
        };
        run_from(&prog, &mut tape, &mut st, &mut io, &RunOptions::default()).unwrap();
        assert_eq!(tape.as_slice()[0], 0);
    }

    #[test]
    fn eof_modes() {
        for (mode, want) in [
            (EofMode::Unchanged, b'x'),
            (EofMode::Zero, 0),
            (EofMode::MaxByte, 255),
        ] {
            let opts = RunOptions {
                eof: mode,
                ..RunOptions::default()
            };
            // The first read gets 'x', the second hits EOF on a cell holding 'x'.
            let (r, out, _, _) = exec(",.,.", b"x", opts);
            r.unwrap();
            assert_eq!(out, [b'x', want], "{mode:?}");
            let (r, out, _, _) = exec("+++++++,.", b"", opts);
            r.unwrap();
            assert_eq!(out, [mode.on_eof(7)], "{mode:?}");
        }
        assert_eq!(EofMode::default(), EofMode::Unchanged);
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("read broke"))
        }
    }
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "write broke"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_carry_position() {
        let prog = parse("+\n.").unwrap();
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut inp: &[u8] = b"";
        let mut out = Failing;
        let e = run(
            &prog,
            &mut tape,
            &mut Io::new(&mut inp, &mut out),
            &RunOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.kind,
            RunErrorKind::Io {
                kind: io::ErrorKind::BrokenPipe,
                message: "write broke".into()
            }
        );
        assert_eq!(e.to_string(), "2:1 (byte 2): I/O error: write broke");

        let prog = parse(" ,").unwrap();
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut inp = Failing;
        let mut out = Vec::new();
        let e = run(
            &prog,
            &mut tape,
            &mut Io::new(&mut inp, &mut out),
            &RunOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e.kind, RunErrorKind::Io { .. }));
        assert_eq!(e.pos.unwrap().col, 2);
    }

    /// A reader that is interrupted once before each byte.
    struct Interrupting<'a>(&'a [u8], bool);
    impl Read for Interrupting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            self.0.read(buf)
        }
    }

    #[test]
    fn interrupted_reads_are_retried() {
        let prog = parse(",.,.").unwrap();
        let mut tape = Tape::new(MIN_TAPE_LIMIT).unwrap();
        let mut inp = Interrupting(b"hi", false);
        let mut out = Vec::new();
        run(
            &prog,
            &mut tape,
            &mut Io::new(&mut inp, &mut out),
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(out, b"hi");
    }
}
