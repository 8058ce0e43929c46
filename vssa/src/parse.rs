//! Reading the text form back: the inverse of [`crate::print`].
//!
//! [`parse`] accepts exactly what the printer writes, one node per line,
//!
//! ```text
//! n12 @1a2b3c4d i8 = add n10, n11
//! ```
//!
//! and a little more for people who write graphs by hand (file tests):
//! the `@address` may be left out, blank lines and `;` comments are
//! skipped, and a float constant may give its value without its bits
//! (`f64 = const 1.5`). The text names nodes by labels (`n12`); the graph
//! built from it numbers them afresh, in the order of the text.
//!
//! Nodes are interned as written ([`Graph::intern`], no peepholes), so the
//! graph is exactly the text. An input may name a node of a later line:
//! the printer shows inputs resolved, and a replaced node's users then
//! name its replacement, which was built after them. Nodes are built
//! inputs first (the back edge of a `loop` and of a `phi` on a loop
//! excepted, which is set after all nodes are built), lines in text order
//! where the inputs allow. The printed address is the node's address *as
//! built*, from its inputs before any replacement, so it is informative
//! only: it is checked to be hexadecimal, and otherwise not compared.
//!
//! Every problem is one [`ParseError`] naming its line and column. Nothing
//! here panics or recurses, and time and memory stay linear in the text
//! (up to a logarithmic factor).

use crate::float::{bits_of_f32, bits_of_f64};
use crate::graph::{Graph, NodeId};
use crate::op::{BinOp, CmpOp, ConvOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Op, UnOp};
use crate::sig::Signature;
use crate::types::Type;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

/// A problem with the text, at a 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Builds the graph `text` describes (see the module docs). The graph's
/// `End` is the text's one `end` node; text with no nodes gives an empty
/// graph without one.
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    let (sig, lines) = parse_lines(text)?;
    let mut g = build(&lines, false)?;
    if let Some(sig) = sig {
        g.set_signature(sig);
    }
    Ok(g)
}

/// Like [`parse`], but builds every node through [`Graph::build`], with
/// the construction-time peepholes on: the graph a front end gets that
/// asks for the text's nodes in the text's order. A node the peepholes
/// answer with another stands for that one in the lines that name it.
pub fn parse_building(text: &str) -> Result<Graph, ParseError> {
    let (sig, lines) = parse_lines(text)?;
    let mut g = build(&lines, true)?;
    if let Some(sig) = sig {
        g.set_signature(sig);
    }
    Ok(g)
}

/// The optional `signature …` line (before every node) and the node lines.
fn parse_lines(text: &str) -> Result<(Option<Signature>, Vec<Line>), ParseError> {
    let mut lines = Vec::new();
    let mut sig = None;
    for (i, raw) in text.lines().enumerate() {
        let toks = tokens(raw, i + 1);
        if let Some(&("signature", at)) = toks.first() {
            if sig.is_some() || !lines.is_empty() {
                return Err(at.error("the signature must be the first line, and only one"));
            }
            sig = Some(signature_line(&toks, at)?);
            continue;
        }
        if let Some(line) = parse_line(raw, i + 1)? {
            lines.push(line);
        }
    }
    Ok((sig, lines))
}

/// `signature i64:ptr->f64` (as the printer writes a graph's signature).
fn signature_line(toks: &[(&str, Pos)], at: Pos) -> Result<Signature, ParseError> {
    match toks {
        [_, (word, wat)] => signature_word(word, *wat),
        [_, _, (extra, eat), ..] => {
            Err(eat.error(format!("unexpected `{extra}` after the signature")))
        }
        _ => Err(at.error("expected a signature like `i64:ptr->f64` after `signature`")),
    }
}

fn signature_word(word: &str, at: Pos) -> Result<Signature, ParseError> {
    Signature::parse(word).ok_or_else(|| {
        at.error(format!(
            "expected a signature like `i64:ptr->f64` (`_` for none, at most {} parameters and {} results), found `{word}`",
            Signature::MAX_PARAMS,
            Signature::MAX_RESULTS
        ))
    })
}

/// Where a token starts: 1-based line and column.
#[derive(Clone, Copy, Debug)]
struct Pos {
    line: usize,
    col: usize,
}

impl Pos {
    fn error(self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            col: self.col,
            message: message.into(),
        }
    }
}

/// One node line as written.
struct Line {
    label: u32,
    pos: Pos,
    ty: Type,
    op: Op,
    inputs: Vec<(u32, Pos)>,
}

/// Splits a line into tokens: words, and the single characters `=`, `,`,
/// `(`, `)`. A `;` starts a comment.
fn tokens(raw: &str, line: usize) -> Vec<(&str, Pos)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None; // byte offset, column
    let mut col = 0;
    for (at, c) in raw.char_indices() {
        col += 1;
        let single = matches!(c, '=' | ',' | '(' | ')');
        if c.is_whitespace() || single || c == ';' {
            if let Some((s, scol)) = start.take() {
                out.push((&raw[s..at], Pos { line, col: scol }));
            }
            if c == ';' {
                return out;
            }
            if single {
                out.push((&raw[at..at + 1], Pos { line, col }));
            }
        } else if start.is_none() {
            start = Some((at, col));
        }
    }
    if let Some((s, scol)) = start {
        out.push((&raw[s..], Pos { line, col: scol }));
    }
    out
}

/// A cursor over one line's tokens.
struct Cursor<'a> {
    toks: Vec<(&'a str, Pos)>,
    next: usize,
    /// Just past the last token: where "expected …, found the end" points.
    end: Pos,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.next).map(|t| t.0)
    }

    fn pos(&self) -> Pos {
        self.toks.get(self.next).map_or(self.end, |t| t.1)
    }

    fn take(&mut self, what: &str) -> Result<(&'a str, Pos), ParseError> {
        match self.toks.get(self.next) {
            Some(&t) => {
                self.next += 1;
                Ok(t)
            }
            None => Err(self
                .end
                .error(format!("expected {what}, found the end of the line"))),
        }
    }

    fn expect(&mut self, symbol: &str) -> Result<Pos, ParseError> {
        let (t, pos) = self.take(&format!("`{symbol}`"))?;
        if t == symbol {
            Ok(pos)
        } else {
            Err(pos.error(format!("expected `{symbol}`, found `{t}`")))
        }
    }
}

fn parse_line(raw: &str, line: usize) -> Result<Option<Line>, ParseError> {
    let toks = tokens(raw, line);
    if toks.is_empty() {
        return Ok(None);
    }
    let end = Pos {
        line,
        col: raw.chars().count() + 1,
    };
    let mut cur = Cursor { toks, next: 0, end };
    let (word, pos) = cur.take("a node label")?;
    let label = label_of(word)
        .ok_or_else(|| pos.error(format!("expected a node label like `n3`, found `{word}`")))?;
    if let Some(addr) = cur.peek().and_then(|t| t.strip_prefix('@')) {
        let at = cur.pos();
        let hex = addr.len() <= 32 && !addr.is_empty();
        if !hex || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(at.error(format!(
                "expected an address of 1 to 32 hexadecimal digits after `@`, found `{addr}`"
            )));
        }
        cur.next += 1;
    }
    let (word, at) = cur.take("a type")?;
    let ty = type_of(word).ok_or_else(|| at.error(format!("unknown type `{word}`")))?;
    cur.expect("=")?;
    let (word, at) = cur.take("an operation")?;
    let shape = shape_of(word).ok_or_else(|| at.error(format!("unknown operation `{word}`")))?;
    let op = immediates(&mut cur, shape, ty, at)?;
    let mut inputs = Vec::new();
    if cur.peek().is_some() {
        loop {
            let (word, at) = cur.take("an input")?;
            let input = label_of(word)
                .ok_or_else(|| at.error(format!("expected an input like `n3`, found `{word}`")))?;
            inputs.push((input, at));
            if cur.peek().is_none() {
                break;
            }
            cur.expect(",")?;
        }
    }
    Ok(Some(Line {
        label,
        pos,
        ty,
        op,
        inputs,
    }))
}

/// `n17` → 17.
fn label_of(word: &str) -> Option<u32> {
    let digits = word.strip_prefix('n')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn type_of(word: &str) -> Option<Type> {
    Type::ALL.into_iter().find(|t| t.to_string() == word)
}

/// What follows an operation's mnemonic.
#[derive(Clone, Copy)]
enum Shape {
    /// Nothing: the op is complete.
    Plain(Op),
    Loop,
    Phi,
    Proj,
    Const,
    Load,
    Store,
    ClassLoad,
    ClassStore,
    Call,
    CallDirect,
    CallIndirect,
    Guard,
    FrameState,
    InlinedFrame,
    Materialize,
    Fits(FitsOp),
}

/// The mnemonic's operation, or what its immediates are.
fn shape_of(word: &str) -> Option<Shape> {
    let shape = match word {
        "loop" => Shape::Loop,
        "phi" => Shape::Phi,
        "proj" => Shape::Proj,
        "const" => Shape::Const,
        "load" => Shape::Load,
        "store" => Shape::Store,
        "cload" => Shape::ClassLoad,
        "cstore" => Shape::ClassStore,
        "call" => Shape::Call,
        "call_direct" => Shape::CallDirect,
        "call_indirect" => Shape::CallIndirect,
        "guard" => Shape::Guard,
        "framestate" => Shape::FrameState,
        "inlinedframe" => Shape::InlinedFrame,
        "materialize" => Shape::Materialize,
        _ => {
            if let Some(op) = FitsOp::ALL
                .into_iter()
                .find(|&op| Op::FFits { op, bits: 0 }.mnemonic() == word)
            {
                return Some(Shape::Fits(op));
            }
            return plain_ops()
                .find(|op| op.mnemonic() == word)
                .map(Shape::Plain);
        }
    };
    Some(shape)
}

/// Every operation without immediates.
fn plain_ops() -> impl Iterator<Item = Op> {
    let fixed = [
        Op::Start,
        Op::Region,
        Op::If,
        Op::Return,
        Op::End,
        Op::Select,
        Op::PtrAdd,
        Op::Boxed,
    ];
    fixed
        .into_iter()
        .chain(BinOp::ALL.map(Op::Bin))
        .chain([UnOp::Neg, UnOp::Not].map(Op::Un))
        .chain(CmpOp::ALL.map(Op::Cmp))
        .chain([ConvOp::Uext, ConvOp::Sext, ConvOp::Trunc].map(Op::Conv))
        .chain(FBinOp::ALL.map(Op::FBin))
        .chain(FUnOp::ALL.map(Op::FUn))
        .chain(FCmpOp::ALL.map(Op::FCmp))
        .chain(FConvOp::ALL.map(Op::FConv))
}

/// Reads the immediates of `shape`, as [`Op`]'s `Display` writes them.
fn immediates(cur: &mut Cursor, shape: Shape, ty: Type, op_pos: Pos) -> Result<Op, ParseError> {
    let op = match shape {
        Shape::Plain(op) => op,
        Shape::Loop => Op::Loop {
            key: prefixed(cur, "#", "a key like `#3`")?,
        },
        Shape::Phi => Op::Phi {
            key: prefixed(cur, "#", "a key like `#3`")?,
        },
        Shape::Proj => Op::Proj {
            index: prefixed(cur, "", "a projection index")?,
        },
        Shape::Call => Op::Call {
            func: prefixed(cur, "fn", "a function like `fn2`")?,
        },
        Shape::CallDirect => Op::CallDirect {
            callee: prefixed(cur, "u", "a compiled function like `u2`")?,
            sig: signature(cur)?,
        },
        Shape::CallIndirect => Op::CallIndirect {
            sig: signature(cur)?,
        },
        Shape::Guard => Op::Guard {
            reason: prefixed(cur, "r", "a reason like `r1`")?,
        },
        Shape::FrameState => Op::FrameState {
            resume: prefixed(cur, "@", "a resume point like `@7`")?,
        },
        Shape::InlinedFrame => Op::InlinedFrame {
            resume: prefixed(cur, "@", "a resume point like `@7`")?,
        },
        Shape::Materialize => Op::Materialize {
            class: prefixed(cur, "k", "an object class like `k3`")?,
        },
        Shape::Fits(op) => Op::FFits {
            op,
            bits: prefixed(cur, "", "a width in bits")?,
        },
        Shape::Load => Op::Load {
            offset: offset(cur)?,
        },
        Shape::Store => Op::Store {
            offset: offset(cur)?,
        },
        Shape::ClassLoad => Op::ClassLoad {
            offset: offset(cur)?,
            class: prefixed(cur, "c", "an alias class like `c2`")?,
        },
        Shape::ClassStore => Op::ClassStore {
            offset: offset(cur)?,
            class: prefixed(cur, "c", "an alias class like `c2`")?,
        },
        Shape::Const => Op::Const {
            value: constant(cur, ty, op_pos)?,
        },
    };
    Ok(op)
}

/// A number after a fixed prefix, e.g. `#3`, `fn2`, `r1`.
fn prefixed<T: std::str::FromStr>(
    cur: &mut Cursor,
    prefix: &str,
    what: &str,
) -> Result<T, ParseError> {
    let (word, at) = cur.take(what)?;
    let parsed = word
        .strip_prefix(prefix)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok());
    parsed.ok_or_else(|| at.error(format!("expected {what}, found `{word}`")))
}

/// A call's signature as one word, `i64:ptr->f64`.
fn signature(cur: &mut Cursor) -> Result<Signature, ParseError> {
    let (word, at) = cur.take("a signature like `i64:ptr->f64`")?;
    signature_word(word, at)
}

/// A signed offset as the printer writes it: `+4`, `-8`, `+0`.
fn offset(cur: &mut Cursor) -> Result<i32, ParseError> {
    let (word, at) = cur.take("an offset like `+4`")?;
    let digits = word.strip_prefix(['+', '-']).unwrap_or("");
    let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let value = if ok { word.parse().ok() } else { None };
    value.ok_or_else(|| {
        at.error(format!(
            "expected an offset like `+4` or `-8`, found `{word}`"
        ))
    })
}

/// A constant's value: a decimal integer for integer types; for a float
/// type its value, then optionally its bits in parentheses, which must
/// agree with it (and say which NaN a `NaN` is).
fn constant(cur: &mut Cursor, ty: Type, op_pos: Pos) -> Result<i64, ParseError> {
    let (word, at) = cur.take("a constant")?;
    if !ty.is_value() {
        return Err(op_pos.error(format!("a constant cannot have type {ty}")));
    }
    if !ty.is_float() {
        let digits = word.strip_prefix('-').unwrap_or(word);
        let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        let value: Option<i64> = if ok { word.parse().ok() } else { None };
        return value
            .ok_or_else(|| at.error(format!("expected a 64-bit decimal integer, found `{word}`")));
    }
    let value = float_bits(word, ty)
        .ok_or_else(|| at.error(format!("expected a {ty} value, found `{word}`")))?;
    if cur.peek() != Some("(") {
        return Ok(value);
    }
    cur.next += 1;
    let (hex, hex_at) = cur.take("the constant's bits like `0x3ff8000000000000`")?;
    let digits = hex.strip_prefix("0x").unwrap_or("");
    let width = if ty == Type::F32 { 8 } else { 16 };
    let bits = if digits.len() == width && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        u64::from_str_radix(digits, 16).ok()
    } else {
        None
    };
    let Some(bits) = bits else {
        return Err(hex_at.error(format!(
            "expected the constant's bits as `0x` and {width} hexadecimal digits, found `{hex}`"
        )));
    };
    let bits = ty.normalize(bits as i64);
    cur.expect(")")?;
    let agree = if is_nan(value, ty) {
        is_nan(bits, ty)
    } else {
        value == bits
    };
    if !agree {
        return Err(hex_at.error(format!("the bits {hex} are not the value `{word}`")));
    }
    Ok(bits)
}

/// The bits of a float literal as Rust reads and `Display` writes it
/// (`1.5`, `-0`, `inf`, `NaN`), normalized to `ty`.
fn float_bits(word: &str, ty: Type) -> Option<i64> {
    // Rust also reads "infinity" and "nan" in any case; keep to what the
    // printer writes, plus plain decimal literals.
    let allowed = word
        .bytes()
        .all(|b| b.is_ascii_digit() || b".-+eE".contains(&b))
        || matches!(word, "inf" | "-inf" | "NaN");
    if !allowed {
        return None;
    }
    match ty {
        Type::F32 => word.parse::<f32>().ok().map(bits_of_f32),
        _ => word.parse::<f64>().ok().map(bits_of_f64),
    }
}

fn is_nan(bits: i64, ty: Type) -> bool {
    match ty {
        Type::F32 => f32::from_bits(bits as u32).is_nan(),
        _ => f64::from_bits(bits as u64).is_nan(),
    }
}

/// Which input of `line` is a back edge (not hashed, set after building):
/// input 1 of a `loop`, input 2 of a `phi` whose region is a `loop`.
fn back_slot(line: &Line, lines: &[Line], index: &HashMap<u32, usize>) -> Option<usize> {
    match line.op {
        Op::Loop { .. } => Some(1),
        Op::Phi { .. } => {
            let region = line.inputs.first().and_then(|(l, _)| index.get(l))?;
            matches!(lines[*region].op, Op::Loop { .. }).then_some(2)
        }
        _ => None,
    }
}

/// Interns (or, `simplify`, builds) the lines' nodes inputs first, closes
/// the back edges and sets the `End`.
fn build(lines: &[Line], simplify: bool) -> Result<Graph, ParseError> {
    let mut index: HashMap<u32, usize> = HashMap::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if index.insert(line.label, i).is_some() {
            return Err(line.pos.error(format!("n{} is defined twice", line.label)));
        }
    }
    // Forward edges: what each line waits for, and who waits on it.
    let mut waiting = vec![0usize; lines.len()];
    let mut waiters: Vec<Vec<usize>> = vec![Vec::new(); lines.len()];
    let mut backs: Vec<Option<usize>> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let back = back_slot(line, lines, &index);
        if let Some(slot) = back {
            let (lo, what) = if slot == 1 {
                (1, "a loop")
            } else {
                (2, "a phi on a loop")
            };
            if line.inputs.len() < lo || line.inputs.len() > slot + 1 {
                return Err(line.pos.error(format!(
                    "{what} has {} or {} inputs (the last one its back edge), not {}",
                    lo,
                    slot + 1,
                    line.inputs.len()
                )));
            }
        }
        backs.push(back);
        for (slot, &(input, at)) in line.inputs.iter().enumerate() {
            let Some(&j) = index.get(&input) else {
                return Err(at.error(format!("n{input} is not defined")));
            };
            if Some(slot) != back {
                waiting[i] += 1;
                waiters[j].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..lines.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut ids: Vec<Option<NodeId>> = vec![None; lines.len()];
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    while let Some(Reverse(i)) = ready.pop() {
        let line = &lines[i];
        let hashed = match backs[i] {
            Some(slot) => &line.inputs[..slot.min(line.inputs.len())],
            None => &line.inputs[..],
        };
        let inputs: Vec<NodeId> = hashed
            .iter()
            .filter_map(|(l, _)| index.get(l).and_then(|&j| ids[j]))
            .collect();
        let id = if simplify {
            g.build(line.op, line.ty, &inputs)
        } else {
            g.intern(line.op, line.ty, &inputs)
        };
        let id = id.map_err(|e| line.pos.error(e.to_string()))?;
        ids[i] = Some(id);
        for &w in &waiters[i] {
            waiting[w] -= 1;
            if waiting[w] == 0 {
                ready.push(Reverse(w));
            }
        }
    }
    if let Some(i) = ids.iter().position(Option::is_none) {
        return Err(lines[i].pos.error(format!(
            "n{} is on a cycle of inputs that is not closed by a loop's back edge",
            lines[i].label
        )));
    }
    let id_of = |i: usize| ids[i].unwrap_or(NodeId::from_index(0));
    for (i, line) in lines.iter().enumerate() {
        let Some(slot) = backs[i] else { continue };
        let Some(&(input, at)) = line.inputs.get(slot) else {
            continue;
        };
        let value = id_of(index[&input]);
        g.set_back_input(id_of(i), value)
            .map_err(|e| at.error(e.to_string()))?;
    }
    let mut ends = lines.iter().enumerate().filter(|(_, l)| l.op == Op::End);
    match (ends.next(), ends.next()) {
        (Some((i, _)), None) => g.set_end(id_of(i)),
        (Some(_), Some((_, second))) => {
            return Err(second.pos.error("a second `end`: a graph has one"));
        }
        (None, _) if lines.is_empty() => {}
        (None, _) => {
            return Err(lines[0].pos.error("the graph has no `end` node"));
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::print;

    fn err(text: &str) -> ParseError {
        match parse(text) {
            Ok(g) => panic!("parsed: {}", print(&g)),
            Err(e) => e,
        }
    }

    /// A counting loop with a float constant, a load, a call and a guard:
    /// every kind of immediate.
    fn sample() -> Graph {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let head = g.loop_header(7, e.ctrl).unwrap();
        let zero = g.iconst(Type::I32, 0).unwrap();
        let x = g.loop_phi(head, 1, Type::I32, zero).unwrap();
        let one = g.iconst(Type::I32, -1).unwrap();
        let next = g.add(x, one).unwrap();
        let (again, out) = g.branch(head, x).unwrap();
        g.set_back_input(head, again).unwrap();
        g.set_back_input(x, next).unwrap();
        let v = g.load(out, e.mem, p, -4, Type::F64).unwrap();
        let h = g.f64const(-0.0).unwrap();
        let s = g.fbin(FBinOp::Add, v, h).unwrap();
        let fits = g.ffits(FitsOp::ExactS, 32, s).unwrap();
        let fs = g.frame_state(9, e.mem, &[x, s]).unwrap();
        let ok = g.guard(out, fits, fs, 3).unwrap();
        let (mem, r) = g.call(ok, e.mem, 2, &[x], Some(Type::I32)).unwrap();
        let mem = g.store(ok, mem, p, 8, s).unwrap();
        let ret = g.ret(ok, mem, r.unwrap()).unwrap();
        g.finish(&[ret]).unwrap();
        g
    }

    #[test]
    fn printed_text_parses_back_to_the_same_graph() {
        let g = sample();
        let text = print(&g);
        let h = parse(&text).unwrap();
        assert_eq!(print(&h), text);
        assert_eq!(crate::live_graph_key(&h), crate::live_graph_key(&g));
        crate::verify(&h).unwrap();
    }

    #[test]
    fn replaced_inputs_name_later_nodes() {
        let mut g = sample();
        // Replace the loop's step constant by a node built after its users.
        let k = g.iconst(Type::I32, -1).unwrap();
        let two = g.iconst(Type::I32, -2).unwrap();
        g.replace(k, two).unwrap();
        let text = print(&g);
        let h = parse(&text).unwrap();
        crate::verify(&h).unwrap();
        // Renumbered, but the same text once printed again.
        let again = print(&h);
        assert_eq!(print(&parse(&again).unwrap()), again);
        assert!(again.contains("i32 = const -2"), "{again}");
        assert!(!again.contains("const -1"), "{again}");
    }

    #[test]
    fn hand_written_text_without_addresses() {
        let text = "\
; a comment line
n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0   ; the memory
n3 f32 = const 1.5
n4 f32 = fadd n3, n3
n5 ctrl = return n1, n2, n4

n6 ctrl = end n5
";
        let g = parse(text).unwrap();
        crate::verify(&g).unwrap();
        assert!(print(&g).contains("f32 = const 1.5 (0x3fc00000)"));
    }

    #[test]
    fn interns_as_written_without_peepholes() {
        let text = "n0 tuple = start\nn1 ctrl = proj 0 n0\nn2 mem = proj 1 n0\n\
                    n3 i8 = const 2\nn4 i8 = const 3\nn5 i8 = add n3, n4\n\
                    n6 ctrl = return n1, n2, n5\nn7 ctrl = end n6\n";
        let g = parse(text).unwrap();
        assert!(print(&g).contains("i8 = add n3, n4"));
    }

    #[test]
    fn building_applies_the_peepholes() {
        let text = "n0 tuple = start\nn1 ctrl = proj 0 n0\nn2 mem = proj 1 n0\n\
                    n3 i8 = const 2\nn4 i8 = const 3\nn5 i8 = add n3, n4\n\
                    n6 ctrl = return n1, n2, n5\nn7 ctrl = end n6\n";
        let g = parse_building(text).unwrap();
        let printed = print(&g);
        assert!(printed.contains("i8 = const 5"), "{printed}");
        assert!(!printed.contains("add"), "{printed}");
    }

    #[test]
    fn signatures_and_calls_read_back() {
        let text = "signature ptr:i64->i64:f32\n\
                    n0 tuple = start\n\
                    n1 ctrl = proj 0 n0\n\
                    n2 mem = proj 1 n0\n\
                    n3 ptr = proj 2 n0\n\
                    n4 i64 = proj 3 n0\n\
                    n5 tuple = call_direct u7 ptr:i64->i64:f32 n1, n2, n3, n4\n\
                    n6 mem = proj 0 n5\n\
                    n7 i64 = proj 1 n5\n\
                    n8 f32 = proj 2 n5\n\
                    n9 tuple = call_indirect i64->_ n1, n6, n3, n7\n\
                    n10 mem = proj 0 n9\n\
                    n11 ctrl = return n1, n10, n7, n8\n\
                    n12 ctrl = end n11\n";
        let g = parse(text).unwrap();
        crate::verify(&g).unwrap();
        let sig = g.signature().unwrap();
        assert_eq!(sig.to_string(), "ptr:i64->i64:f32");
        let printed = crate::print::print(&g);
        assert!(
            printed.starts_with("signature ptr:i64->i64:f32\n"),
            "{printed}"
        );
        assert!(
            printed.contains("call_direct u7 ptr:i64->i64:f32 "),
            "{printed}"
        );
        let again = parse(&printed).unwrap();
        assert_eq!(crate::live_graph_key(&again), crate::live_graph_key(&g));

        let e = err("signature i64->q\n");
        assert_eq!((e.line, e.col), (1, 11));
        assert!(e.message.contains("expected a signature"), "{e}");
        let e = err("signature _->_\nsignature _->_\n");
        assert_eq!(e.line, 2);
        let e = err("n0 tuple = start\nsignature _->_\n");
        assert!(e.message.contains("first line"), "{e}");
        let e = err("n0 tuple = call_direct 7 _->_\n");
        assert!(e.message.contains("`u2`"), "{e}");
        let e = err("n0 tuple = call_indirect\n");
        assert!(e.message.contains("end of the line"), "{e}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = err("n0 tuple = start\nn1 ctrl = proj 0 n9\n");
        assert_eq!((e.line, e.col), (2, 18));
        assert!(e.message.contains("n9 is not defined"), "{e}");
        let e = err("n0 tuple = strat\n");
        assert_eq!((e.line, e.col), (1, 12));
        assert_eq!(
            e.to_string(),
            "line 1, column 12: unknown operation `strat`"
        );
        let e = err("n0 i9 = const 1\n");
        assert_eq!((e.line, e.col), (1, 4));
        let e = err("n0 i8 = const 300000000000000000000\n");
        assert_eq!((e.line, e.col), (1, 15));
        let e = err("n0 i8 = load n1\n");
        assert!(e.message.contains("offset"), "{e}");
        let e = err("n0 i8 = const 1 n1,\n");
        assert!(e.message.contains("end of the line"), "{e}");
        assert_eq!(e.col, 20);
        let e = err("n0 f64 = const 1.5 (0x3ff0000000000000)\n");
        assert!(e.message.contains("not the value"), "{e}");
        let e = err("n0 @xyz i8 = const 1\n");
        assert_eq!(e.col, 4);
    }

    #[test]
    fn structural_errors() {
        let e = err("n0 i8 = const 1\nn0 i8 = const 2\nn1 ctrl = end\n");
        assert!(e.message.contains("defined twice"), "{e}");
        assert_eq!(e.line, 2);
        let e = err("n0 i8 = add n1, n1\nn1 i8 = add n0, n0\nn2 ctrl = end\n");
        assert!(e.message.contains("cycle"), "{e}");
        let e = err("n0 i8 = const 1\n");
        assert!(e.message.contains("no `end`"), "{e}");
        let e = err("n0 ctrl = end\nn1 ctrl = end n0\n");
        assert!(e.message.contains("second"), "{e}");
        let e = err("n0 ctrl = loop #1 n0, n0, n0\nn1 ctrl = end\n");
        assert!(e.message.contains("loop has 1 or 2 inputs"), "{e}");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("; nothing\n\n").unwrap().end().is_none());
    }

    #[test]
    fn float_constants_keep_their_bits() {
        for (line, bits) in [
            (
                "n0 f64 = const NaN (0x7ff8000000000001)",
                0x7ff8_0000_0000_0001u64 as i64,
            ),
            (
                "n0 f32 = const -0 (0x80000000)",
                0x8000_0000u32 as i32 as i64,
            ),
            ("n0 f32 = const -0", 0x8000_0000u32 as i32 as i64),
            ("n0 f64 = const inf", f64::INFINITY.to_bits() as i64),
        ] {
            let g = parse(&format!("{line}\nn1 ctrl = end\n")).unwrap();
            let n = NodeId::from_index(0);
            assert_eq!(g.op(n), Op::Const { value: bits }, "{line}");
        }
        assert!(parse("n0 f64 = const nan\nn1 ctrl = end\n").is_err());
        assert!(parse("n0 f64 = const 1.0 (0x3ff00000)\nn1 ctrl = end\n").is_err());
    }
}
