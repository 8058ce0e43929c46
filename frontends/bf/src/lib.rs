//! The Brainfuck guest of vssa: parser, reference interpreter, tape, and
//! (added alongside) the graph builder and the JIT runtime.
//!
//! # The language as this crate defines it
//!
//! * **Source.** The 8 commands `+ - < > . , [ ]`; every other byte is a
//!   comment. Any byte sequence is accepted (UTF-8 only matters for columns).
//!   Brackets must balance, else [`ParseError`] names the offending bracket
//!   (for a missing `]`, the innermost unclosed `[`). The empty program is
//!   valid and does nothing.
//! * **Folding.** [`parse`] folds each run of `+`/`-` into one
//!   [`InstKind::Add`] (wrapping sum) and each run of `<`/`>` into one
//!   [`InstKind::Move`] (net distance). Comments inside a run do not break
//!   it (`+ +` is `Add(2)`). A run netting 0 is dropped. Each instruction
//!   carries the [`SrcPos`] (1-based line and column in characters, 0-based
//!   byte) of its first character.
//! * **Tape.** [`Tape`]: 8-bit wrapping cells, all 0, the pointer starting
//!   at cell 0. It is one zeroed allocation of `limit` cells (default
//!   [`DEFAULT_TAPE_LIMIT`] = 64 MiB, minimum [`MIN_TAPE_LIMIT`] = 30 000)
//!   whose pages the OS commits on first touch: the tape grows to the right
//!   on demand up to the limit.
//! * **Pointer.** A run of moves counts as one move: the pointer is checked
//!   where the run ends. Ending left of cell 0 is a
//!   [`RunErrorKind::TapeUnderflow`], at or past the limit a
//!   [`RunErrorKind::TapeLimit`], both at the move's position.
//! * **I/O.** `.` writes one byte to the embedder's writer (never buffered
//!   or flushed here); `,` reads one byte, and at end of input applies
//!   [`EofMode`] (default: cell unchanged). I/O failures are
//!   [`RunErrorKind::Io`] at the `.`/`,`.
//! * **Step limit.** Optional; one step is one loop test (a `[` or `]`
//!   testing the current cell). See [`RunOptions::max_steps`] for why.
//!
//! The interpreter ([`run`], [`run_from`]) is the reference: compiled code
//! must produce the same output, tape, and errors at the same positions.
//! Its whole state is an [`InterpState`], so a run can move between tiers
//! at any instruction. Nothing here recurses over program structure: any
//! nesting depth parses and runs.

pub mod error;
pub mod interp;
pub mod parse;
pub mod tape;

pub use error::{ParseError, RunError, RunErrorKind, SrcPos, TapeError};
pub use interp::{run, run_from, EofMode, InterpState, Io, RunOptions};
pub use parse::{parse, Inst, InstKind, Program};
pub use tape::{Tape, DEFAULT_TAPE_LIMIT, MIN_TAPE_LIMIT};

pub mod build;
pub mod c_translate;
pub mod fsutil;
pub mod naive;
pub mod runtime;
pub mod tiered;
