//! Errors shared by the parser, the tape, the interpreter and (later) the
//! compiled tier, plus the source positions they point at.
//!
//! Every error a guest program can provoke is a value here, never a panic:
//! the embedder decides how to report it.

use std::fmt;

/// Where an instruction comes from in the source text.
///
/// For a folded run (`+-+`, `>><`) this is the position of the run's
/// *first* character, so an error "at" a run points at where it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SrcPos {
    /// 1-based line number; lines end at `\n`.
    pub line: u32,
    /// 1-based column, counted in characters (UTF-8 sequences), not bytes,
    /// so it matches what an editor shows. Bytes that are not valid UTF-8
    /// count one column each.
    pub col: u32,
    /// 0-based byte offset into the source.
    pub byte: usize,
}

impl fmt::Display for SrcPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (byte {})", self.line, self.col, self.byte)
    }
}

/// A malformed program: its brackets do not balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A `]` with no open `[` before it.
    UnmatchedClose { pos: SrcPos },
    /// A `[` still open at the end of the source. When several are open,
    /// this is the innermost (last) one: it is the one whose `]` is missing
    /// nearest to the end, usually what the author forgot.
    UnmatchedOpen { pos: SrcPos },
}

impl ParseError {
    /// The position of the offending bracket.
    pub fn pos(&self) -> SrcPos {
        match *self {
            ParseError::UnmatchedClose { pos } | ParseError::UnmatchedOpen { pos } => pos,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnmatchedClose { pos } => write!(f, "{pos}: unmatched ']'"),
            ParseError::UnmatchedOpen { pos } => write!(f, "{pos}: unmatched '['"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The tape could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapeError {
    /// The requested limit is below [`crate::tape::MIN_TAPE_LIMIT`], the
    /// classic 30 000 cells that portable Brainfuck programs may assume.
    TooSmall { requested: usize, minimum: usize },
    /// The allocator refused to reserve `requested` bytes of address space.
    AllocFailed { requested: usize },
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::TooSmall { requested, minimum } => write!(
                f,
                "tape limit of {requested} cells is too small (the minimum is {minimum})"
            ),
            TapeError::AllocFailed { requested } => {
                write!(f, "could not allocate a tape of {requested} cells")
            }
        }
    }
}

impl std::error::Error for TapeError {}

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunErrorKind {
    /// A move ended left of cell 0.
    TapeUnderflow,
    /// A move ended at or past the last cell of a tape of `limit` cells.
    TapeLimit { limit: usize },
    /// A loop test was about to run after `max_steps` tests had already run.
    StepLimit { max_steps: u64 },
    /// Reading input or writing output failed. `kind` lets an embedder
    /// treat e.g. a broken pipe specially; `message` is the OS's text.
    Io {
        kind: std::io::ErrorKind,
        message: String,
    },
}

impl RunErrorKind {
    /// Wraps an I/O error, keeping its kind and text (the error itself is
    /// not `Clone`/`Eq`, which run errors are, so tests can compare them).
    pub fn io(e: &std::io::Error) -> Self {
        RunErrorKind::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for RunErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunErrorKind::TapeUnderflow => write!(f, "moved left of cell 0"),
            RunErrorKind::TapeLimit { limit } => {
                write!(f, "moved past the end of the tape ({limit} cells)")
            }
            RunErrorKind::StepLimit { max_steps } => {
                write!(f, "step limit exceeded ({max_steps} loop tests)")
            }
            RunErrorKind::Io { message, .. } => write!(f, "I/O error: {message}"),
        }
    }
}

/// A run-time error and, when known, the instruction that raised it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError {
    pub kind: RunErrorKind,
    /// The source position of the failing instruction: the move for tape
    /// errors, the `[`/`]` being tested for the step limit, the `.`/`,` for
    /// I/O. `None` only when no instruction is to blame.
    pub pos: Option<SrcPos>,
}

impl RunError {
    pub fn new(kind: RunErrorKind, pos: Option<SrcPos>) -> Self {
        RunError { kind, pos }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(pos) => write!(f, "{pos}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for RunError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays() {
        let pos = SrcPos {
            line: 3,
            col: 14,
            byte: 57,
        };
        assert_eq!(
            ParseError::UnmatchedClose { pos }.to_string(),
            "3:14 (byte 57): unmatched ']'"
        );
        assert_eq!(
            ParseError::UnmatchedOpen { pos }.to_string(),
            "3:14 (byte 57): unmatched '['"
        );
        let e = RunError::new(
            RunErrorKind::TapeUnderflow,
            Some(SrcPos {
                line: 12,
                col: 3,
                byte: 200,
            }),
        );
        assert_eq!(e.to_string(), "12:3 (byte 200): moved left of cell 0");
        let e = RunError::new(RunErrorKind::StepLimit { max_steps: 5 }, None);
        assert_eq!(e.to_string(), "step limit exceeded (5 loop tests)");
    }

    #[test]
    fn io_kind_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe gone");
        match RunErrorKind::io(&io) {
            RunErrorKind::Io { kind, message } => {
                assert_eq!(kind, std::io::ErrorKind::BrokenPipe);
                assert_eq!(message, "pipe gone");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
