//! The parser: source bytes to a folded [`Program`].
//!
//! One pass over the bytes with an explicit bracket stack, so neither deep
//! nesting nor a large file can overflow the stack, and a 10 MB source
//! parses in milliseconds.

use crate::error::{ParseError, SrcPos};

/// One folded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstKind {
    /// A run of `+`/`-`: add this amount to the current cell, wrapping
    /// (so `-` is `Add(255)`). Never `Add(0)`: such runs are dropped.
    Add(u8),
    /// A run of `<`/`>`: move the pointer by this net amount. Never
    /// `Move(0)`. The pointer is checked only where the run ends: a run of
    /// moves counts as one move.
    Move(i64),
    /// `.`: write the current cell as one byte.
    Out,
    /// `,`: read one byte into the current cell (see [`crate::interp::EofMode`]).
    In,
    /// `[`: if the current cell is 0, jump past the matching `]`, which is
    /// instruction `close`.
    Open { close: usize },
    /// `]`: if the current cell is not 0, jump back past the matching `[`,
    /// which is instruction `open`.
    Close { open: usize },
}

/// An instruction and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inst {
    pub kind: InstKind,
    /// Position of the instruction's first source character.
    pub pos: SrcPos,
}

/// A parsed program: balanced, folded, with jump targets resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    pub insts: Vec<Inst>,
    /// Length of the source in bytes (positions are below it).
    pub source_len: usize,
}

impl Program {
    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insts.len()
    }

    /// Whether the program has no instructions (it then does nothing).
    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }
}

/// The run being folded: consecutive `+-` or `<>` (comments in between do
/// not end it).
#[derive(Clone, Copy)]
enum Run {
    None,
    Add(u8, SrcPos),
    Move(i64, SrcPos),
}

/// Parses Brainfuck source.
///
/// * The commands are the 8 bytes `+-<>.,[]`; every other byte is a comment.
///   The source need not be UTF-8 (comments may be in any encoding); UTF-8
///   only matters for counting columns.
/// * Runs of `+`/`-` fold into one [`InstKind::Add`] and runs of `<`/`>` into
///   one [`InstKind::Move`]; comment characters inside a run do not break
///   it (`+ +` is `Add(2)`), only another command does. A run that nets to
///   zero produces no instruction.
/// * Unbalanced brackets are an error naming the bracket's position; an
///   empty program is valid and does nothing.
pub fn parse(source: impl AsRef<[u8]>) -> Result<Program, ParseError> {
    let src = source.as_ref();
    // Folding shrinks typical programs a lot; a quarter of the source is a
    // cheap guess that avoids most regrowth.
    let mut insts: Vec<Inst> = Vec::with_capacity(src.len() / 4);
    let mut open_stack: Vec<usize> = Vec::new();
    let mut run = Run::None;
    let mut line: u32 = 1;
    // Column of the *next* character; advanced on each UTF-8 lead byte.
    let mut col: u32 = 0;

    for (byte, &b) in src.iter().enumerate() {
        // A continuation byte (10xxxxxx) belongs to the previous character.
        if b & 0xC0 != 0x80 {
            col = col.saturating_add(1);
        }
        let pos = || SrcPos { line, col, byte };
        match b {
            b'+' | b'-' => {
                let d: u8 = if b == b'+' { 1 } else { 255 };
                run = match run {
                    Run::Add(n, p) => Run::Add(n.wrapping_add(d), p),
                    other => {
                        flush(&mut insts, other);
                        Run::Add(d, pos())
                    }
                };
            }
            b'<' | b'>' => {
                let d: i64 = if b == b'>' { 1 } else { -1 };
                run = match run {
                    // Cannot saturate in practice (|n| <= source length);
                    // saturating keeps it a value rather than a panic.
                    Run::Move(n, p) => Run::Move(n.saturating_add(d), p),
                    other => {
                        flush(&mut insts, other);
                        Run::Move(d, pos())
                    }
                };
            }
            b'.' | b',' | b'[' | b']' => {
                flush(&mut insts, run);
                run = Run::None;
                let here = insts.len();
                let kind = match b {
                    b'.' => InstKind::Out,
                    b',' => InstKind::In,
                    b'[' => {
                        open_stack.push(here);
                        // Patched when the matching `]` is seen.
                        InstKind::Open { close: usize::MAX }
                    }
                    _ => {
                        let Some(open) = open_stack.pop() else {
                            return Err(ParseError::UnmatchedClose { pos: pos() });
                        };
                        insts[open].kind = InstKind::Open { close: here };
                        InstKind::Close { open }
                    }
                };
                insts.push(Inst { kind, pos: pos() });
            }
            b'\n' => {
                line = line.saturating_add(1);
                col = 0;
            }
            _ => {}
        }
    }
    flush(&mut insts, run);
    if let Some(&open) = open_stack.last() {
        return Err(ParseError::UnmatchedOpen {
            pos: insts[open].pos,
        });
    }
    Ok(Program {
        insts,
        source_len: src.len(),
    })
}

/// Emits the finished run, unless it nets to zero.
fn flush(insts: &mut Vec<Inst>, run: Run) {
    match run {
        Run::Add(n, pos) if n != 0 => insts.push(Inst {
            kind: InstKind::Add(n),
            pos,
        }),
        Run::Move(n, pos) if n != 0 => insts.push(Inst {
            kind: InstKind::Move(n),
            pos,
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstKind::*;

    fn kinds(src: &str) -> Vec<InstKind> {
        parse(src).unwrap().insts.iter().map(|i| i.kind).collect()
    }

    fn at(line: u32, col: u32, byte: usize) -> SrcPos {
        SrcPos { line, col, byte }
    }

    #[test]
    fn folds_runs() {
        assert_eq!(kinds("+++"), vec![Add(3)]);
        assert_eq!(kinds("---"), vec![Add(253)]);
        assert_eq!(kinds("+-+"), vec![Add(1)]);
        assert_eq!(kinds(">>><"), vec![Move(2)]);
        assert_eq!(kinds("<<<>"), vec![Move(-2)]);
        assert_eq!(
            kinds("+>-<."),
            vec![Add(1), Move(1), Add(255), Move(-1), Out]
        );
        assert_eq!(kinds(&"+".repeat(256)), vec![]);
        assert_eq!(kinds(&"+".repeat(257)), vec![Add(1)]);
    }

    #[test]
    fn zero_runs_are_dropped() {
        assert_eq!(kinds("+-"), vec![]);
        assert_eq!(kinds("<>"), vec![]);
        assert_eq!(kinds("><.+-,"), vec![Out, In]);
    }

    #[test]
    fn comments_do_not_break_runs() {
        assert_eq!(kinds("+ +"), vec![Add(2)]);
        assert_eq!(kinds("> comment\n>"), vec![Move(2)]);
        // ...but other commands do.
        assert_eq!(kinds("+.+"), vec![Add(1), Out, Add(1)]);
        assert_eq!(kinds("+>+"), vec![Add(1), Move(1), Add(1)]);
    }

    #[test]
    fn brackets_are_matched() {
        assert_eq!(
            kinds("[[]+]"),
            vec![
                Open { close: 4 },
                Open { close: 2 },
                Close { open: 1 },
                Add(1),
                Close { open: 0 },
            ]
        );
        assert_eq!(kinds("[]"), vec![Open { close: 1 }, Close { open: 0 }]);
    }

    #[test]
    fn empty_program_is_valid() {
        let p = parse("").unwrap();
        assert!(p.is_empty());
        assert_eq!(p.source_len, 0);
        let p = parse("just a comment\n").unwrap();
        assert!(p.is_empty());
        assert_eq!(p.source_len, 15);
    }

    #[test]
    fn positions_are_of_the_run_start() {
        let p = parse("ab++\n  >>.\n").unwrap();
        let pos: Vec<SrcPos> = p.insts.iter().map(|i| i.pos).collect();
        assert_eq!(pos, vec![at(1, 3, 2), at(2, 3, 7), at(2, 5, 9)]);
    }

    #[test]
    fn columns_count_chars_not_bytes() {
        // "é" is 2 bytes, "€" 3 bytes, "😀" 4 bytes: one column each.
        let p = parse("é€😀+\nx😀.").unwrap();
        assert_eq!(p.insts[0].pos, at(1, 4, 9));
        assert_eq!(p.insts[1].pos, at(2, 3, 16));
        // Invalid UTF-8: each non-continuation byte is a column.
        let p = parse(b"\xff\xfe+").unwrap();
        assert_eq!(p.insts[0].pos, at(1, 3, 2));
    }

    #[test]
    fn unmatched_close() {
        let e = parse("+\n é]").unwrap_err();
        assert_eq!(e, ParseError::UnmatchedClose { pos: at(2, 3, 5) });
        assert_eq!(e.to_string(), "2:3 (byte 5): unmatched ']'");
        assert_eq!(
            parse("[]]").unwrap_err(),
            ParseError::UnmatchedClose { pos: at(1, 3, 2) }
        );
    }

    #[test]
    fn unmatched_open_reports_the_innermost() {
        let e = parse("[\n[ [ ] x").unwrap_err();
        assert_eq!(e, ParseError::UnmatchedOpen { pos: at(2, 1, 2) });
        assert_eq!(e.to_string(), "2:1 (byte 2): unmatched '['");
        assert_eq!(e.pos(), at(2, 1, 2));
    }

    #[test]
    fn deep_nesting_is_iterative() {
        let n = 100_000;
        let src = "[".repeat(n) + &"]".repeat(n);
        let p = parse(&src).unwrap();
        assert_eq!(p.len(), 2 * n);
        assert_eq!(p.insts[0].kind, Open { close: 2 * n - 1 });
        assert_eq!(p.insts[n - 1].kind, Open { close: n });
        let e = parse("[".repeat(n)).unwrap_err();
        assert_eq!(
            e,
            ParseError::UnmatchedOpen {
                pos: at(1, n as u32, n - 1)
            }
        );
    }
}
