//! A recursive-descent parser for Lua 5.4 to the syntax tree in [`crate::ast`].
//! Nesting is bounded ([`MAX_LEVELS`]) so no input overflows the Rust
//! stack; errors read like lua5.4's (`LINE: message near 'token'`).

use crate::ast::*;
use crate::lexer::{LexError, Lexer, Tok};

/// The deepest nesting of statements and expressions accepted (lua5.4's
/// limit of C levels).
pub const MAX_LEVELS: u32 = 200;
/// Links of a left-associative operator chain (`a + b + c`) that count as
/// one nesting level: enough for the 200-term sums of lua5.4's own tests
/// (the compiler's registers bound such chains anyway, near 250 links, so
/// its recursion over the left-deep tree stays small:
/// `tests::long_chains_compile_on_a_small_stack`).
pub const LINKS_PER_LEVEL: u32 = 4;

/// A syntax error: line and message (`… near '…'`), without the chunk name.
#[derive(Debug)]
pub struct SyntaxError {
    pub line: u32,
    pub msg: String,
}

impl From<LexError> for SyntaxError {
    fn from(e: LexError) -> Self {
        SyntaxError {
            line: e.line,
            msg: e.msg,
        }
    }
}

type PResult<T> = Result<T, SyntaxError>;

struct Parser<'a> {
    lx: Lexer<'a>,
    tok: Tok,
    line: u32,
    ahead: Option<(Tok, u32)>,
    level: u32,
    /// One flag per function being parsed: whether it contains a function.
    has_inner: Vec<bool>,
    /// One flag per function being parsed: whether it is vararg (`...`
    /// is an error elsewhere, as in lua5.4).
    vararg: Vec<bool>,
}

/// Parses a whole chunk (the main function's body, which is vararg).
pub fn parse_chunk(src: &[u8]) -> PResult<FuncBody> {
    let mut lx = Lexer::new(src);
    let (tok, line) = lx.next_token()?;
    let mut p = Parser {
        lx,
        tok,
        line,
        ahead: None,
        level: 0,
        has_inner: vec![false],
        vararg: vec![true],
    };
    let body = p.block()?;
    if p.tok != Tok::Eof {
        return Err(p.error_near("'<eof>' expected"));
    }
    Ok(FuncBody {
        params: vec![],
        vararg: true,
        body,
        line: 0,
        end_line: p.line,
        has_inner: p.has_inner.pop().unwrap_or(true),
    })
}

fn binop_of(t: &Tok) -> Option<(BinOp, u8, u8)> {
    // (op, left priority, right priority) as in lua5.4's lparser.c.
    Some(match t {
        Tok::Or => (BinOp::Eq, 1, 1), // placeholder, handled specially
        Tok::And => (BinOp::Eq, 2, 2),
        Tok::Lt => (BinOp::Lt, 3, 3),
        Tok::Gt => (BinOp::Gt, 3, 3),
        Tok::Le => (BinOp::Le, 3, 3),
        Tok::Ge => (BinOp::Ge, 3, 3),
        Tok::Ne => (BinOp::Ne, 3, 3),
        Tok::Eq => (BinOp::Eq, 3, 3),
        Tok::Pipe => (BinOp::BOr, 4, 4),
        Tok::Tilde => (BinOp::BXor, 5, 5),
        Tok::Amp => (BinOp::BAnd, 6, 6),
        Tok::Shl => (BinOp::Shl, 7, 7),
        Tok::Shr => (BinOp::Shr, 7, 7),
        Tok::Concat => (BinOp::Concat, 9, 8),
        Tok::Plus => (BinOp::Add, 10, 10),
        Tok::Minus => (BinOp::Sub, 10, 10),
        Tok::Star => (BinOp::Mul, 11, 11),
        Tok::Slash => (BinOp::Div, 11, 11),
        Tok::DSlash => (BinOp::IDiv, 11, 11),
        Tok::Percent => (BinOp::Mod, 11, 11),
        Tok::Caret => (BinOp::Pow, 14, 13),
        _ => return None,
    })
}

const UNARY_PRIORITY: u8 = 12;

impl Parser<'_> {
    fn advance(&mut self) -> PResult<()> {
        let (t, l) = match self.ahead.take() {
            Some(x) => x,
            None => self.lx.next_token()?,
        };
        self.tok = t;
        self.line = l;
        Ok(())
    }

    fn peek_ahead(&mut self) -> PResult<&Tok> {
        if self.ahead.is_none() {
            self.ahead = Some(self.lx.next_token()?);
        }
        Ok(&self.ahead.as_ref().expect("just filled").0)
    }

    fn error_near(&self, msg: &str) -> SyntaxError {
        let near = match &self.tok {
            Tok::Eof => "<eof>".to_string(),
            Tok::Str(s) => format!("'\"{}\"'", String::from_utf8_lossy(s)),
            t => format!("'{}'", t.describe()),
        };
        SyntaxError {
            line: self.line,
            msg: format!("{msg} near {near}"),
        }
    }

    fn check(&self, t: Tok) -> PResult<()> {
        if self.tok == t {
            Ok(())
        } else {
            Err(self.error_near(&format!("'{}' expected", t.describe())))
        }
    }

    fn expect(&mut self, t: Tok) -> PResult<()> {
        self.check(t)?;
        self.advance()
    }

    /// Expects `what` closing `who` opened at `line` (lua5.4's check_match).
    fn expect_match(&mut self, what: Tok, who: Tok, line: u32) -> PResult<()> {
        if self.tok == what {
            return self.advance();
        }
        if line == self.line {
            Err(self.error_near(&format!("'{}' expected", what.describe())))
        } else {
            Err(self.error_near(&format!(
                "'{}' expected (to close '{}' at line {line})",
                what.describe(),
                who.describe()
            )))
        }
    }

    fn name(&mut self) -> PResult<Name> {
        if let Tok::Name(n) = &self.tok {
            let n = n.clone();
            self.advance()?;
            Ok(n)
        } else {
            Err(self.error_near("<name> expected"))
        }
    }

    fn test_next(&mut self, t: Tok) -> PResult<bool> {
        if self.tok == t {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.level += 1;
        if self.level > MAX_LEVELS {
            return Err(self.error_near("chunk has too many syntax levels (C stack overflow)"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.level -= 1;
    }

    fn block_follow(&self, with_until: bool) -> bool {
        match self.tok {
            Tok::Else | Tok::Elseif | Tok::End | Tok::Eof => true,
            Tok::Until => with_until,
            _ => false,
        }
    }

    fn block(&mut self) -> PResult<Block> {
        self.enter()?;
        let mut stats = Vec::new();
        while !self.block_follow(true) {
            if self.tok == Tok::Return {
                stats.push(self.ret_stat()?);
                break;
            }
            if let Some(s) = self.statement()? {
                stats.push(s);
            }
        }
        self.leave();
        Ok(Block { stats })
    }

    fn ret_stat(&mut self) -> PResult<Stat> {
        let line = self.line;
        self.advance()?;
        let exprs = if self.block_follow(true) || self.tok == Tok::Semi {
            vec![]
        } else {
            self.expr_list()?
        };
        self.test_next(Tok::Semi)?;
        if !self.block_follow(true) {
            return Err(self.error_near("'<eof>' expected"));
        }
        Ok(Stat::Return(exprs, line))
    }

    fn statement(&mut self) -> PResult<Option<Stat>> {
        let line = self.line;
        let s = match self.tok {
            Tok::Semi => {
                self.advance()?;
                return Ok(None);
            }
            Tok::If => self.if_stat(line)?,
            Tok::While => {
                self.advance()?;
                let cond = self.expr()?;
                self.expect(Tok::Do)?;
                let body = self.block()?;
                self.expect_match(Tok::End, Tok::While, line)?;
                Stat::While(cond, body)
            }
            Tok::Do => {
                self.advance()?;
                let b = self.block()?;
                self.expect_match(Tok::End, Tok::Do, line)?;
                Stat::Do(b)
            }
            Tok::For => self.for_stat(line)?,
            Tok::Repeat => {
                self.advance()?;
                let b = self.block()?;
                self.expect_match(Tok::Until, Tok::Repeat, line)?;
                let cond = self.expr()?;
                Stat::Repeat(b, cond)
            }
            Tok::Function => {
                self.advance()?;
                // funcname: Name {'.' Name} [':' Name]
                let n = self.name()?;
                let mut target = Expr::Name(n, line);
                let mut is_method = false;
                loop {
                    if self.tok == Tok::Dot || self.tok == Tok::Colon {
                        is_method = self.tok == Tok::Colon;
                        self.advance()?;
                        let key_line = self.line;
                        let k = self.name()?;
                        target = Expr::Index(Box::new(target), Box::new(Expr::Str(k)), key_line);
                        if is_method {
                            break;
                        }
                    } else {
                        break;
                    }
                }
                let body = self.func_body(is_method, line)?;
                Stat::Assign(vec![target], vec![Expr::Function(Box::new(body))], line)
            }
            Tok::Local => {
                self.advance()?;
                if self.test_next(Tok::Function)? {
                    let n = self.name()?;
                    let body = self.func_body(false, line)?;
                    Stat::LocalFunction(n, Box::new(body))
                } else {
                    let mut names = Vec::new();
                    loop {
                        let n = self.name()?;
                        let attrib = if self.test_next(Tok::Lt)? {
                            let a = self.name()?;
                            self.expect(Tok::Gt)?;
                            match &a[..] {
                                b"const" => Attrib::Const,
                                b"close" => Attrib::Close,
                                _ => {
                                    return Err(SyntaxError {
                                        line: self.line,
                                        msg: format!(
                                            "unknown attribute '{}'",
                                            String::from_utf8_lossy(&a)
                                        ),
                                    })
                                }
                            }
                        } else {
                            Attrib::None
                        };
                        names.push((n, attrib));
                        if !self.test_next(Tok::Comma)? {
                            break;
                        }
                    }
                    let exprs = if self.test_next(Tok::Assign)? {
                        self.expr_list()?
                    } else {
                        vec![]
                    };
                    Stat::Local(names, exprs, line)
                }
            }
            Tok::DColon => {
                self.advance()?;
                let n = self.name()?;
                self.expect(Tok::DColon)?;
                Stat::Label(n, line)
            }
            Tok::Return => unreachable!("handled by block"),
            Tok::Break => {
                self.advance()?;
                Stat::Break(line)
            }
            Tok::Goto => {
                self.advance()?;
                let n = self.name()?;
                Stat::Goto(n, line)
            }
            _ => self.expr_stat(line)?,
        };
        Ok(Some(s))
    }

    fn if_stat(&mut self, line: u32) -> PResult<Stat> {
        let mut arms = Vec::new();
        let mut els = None;
        // at 'if' or 'elseif'
        loop {
            self.advance()?;
            let cond = self.expr()?;
            self.expect(Tok::Then)?;
            let b = self.block()?;
            arms.push((cond, b));
            match self.tok {
                Tok::Elseif => continue,
                Tok::Else => {
                    self.advance()?;
                    els = Some(self.block()?);
                    self.expect_match(Tok::End, Tok::If, line)?;
                    break;
                }
                _ => {
                    self.expect_match(Tok::End, Tok::If, line)?;
                    break;
                }
            }
        }
        Ok(Stat::If(arms, els))
    }

    fn for_stat(&mut self, line: u32) -> PResult<Stat> {
        self.advance()?;
        let n1 = self.name()?;
        match self.tok {
            Tok::Assign => {
                self.advance()?;
                let start = self.expr()?;
                self.expect(Tok::Comma)?;
                let limit = self.expr()?;
                let step = if self.test_next(Tok::Comma)? {
                    self.expr()?
                } else {
                    Expr::Int(1)
                };
                self.expect(Tok::Do)?;
                let body = self.block()?;
                self.expect_match(Tok::End, Tok::For, line)?;
                Ok(Stat::NumFor(n1, Box::new([start, limit, step]), body, line))
            }
            Tok::Comma | Tok::In => {
                let mut names = vec![n1];
                while self.test_next(Tok::Comma)? {
                    names.push(self.name()?);
                }
                self.expect(Tok::In)?;
                let exprs = self.expr_list()?;
                self.expect(Tok::Do)?;
                let body = self.block()?;
                self.expect_match(Tok::End, Tok::For, line)?;
                Ok(Stat::GenFor(names, exprs, body, line))
            }
            _ => Err(self.error_near("'=' or 'in' expected")),
        }
    }

    fn expr_stat(&mut self, line: u32) -> PResult<Stat> {
        let e = self.suffixed_expr()?;
        if self.tok == Tok::Assign || self.tok == Tok::Comma {
            let mut targets = vec![e];
            while self.test_next(Tok::Comma)? {
                targets.push(self.suffixed_expr()?);
            }
            for t in &targets {
                if !matches!(t, Expr::Name(..) | Expr::Index(..)) {
                    return Err(self.error_near("syntax error"));
                }
            }
            self.expect(Tok::Assign)?;
            let exprs = self.expr_list()?;
            Ok(Stat::Assign(targets, exprs, line))
        } else {
            if !matches!(e, Expr::Call(..) | Expr::Method(..)) {
                return Err(self.error_near("syntax error"));
            }
            Ok(Stat::Call(e))
        }
    }

    fn func_body(&mut self, is_method: bool, line: u32) -> PResult<FuncBody> {
        if let Some(f) = self.has_inner.last_mut() {
            *f = true;
        }
        self.has_inner.push(false);
        let mut params = Vec::new();
        if is_method {
            params.push(b"self".to_vec());
        }
        let mut vararg = false;
        self.expect(Tok::LParen)?;
        if self.tok != Tok::RParen {
            loop {
                match &self.tok {
                    Tok::Name(_) => params.push(self.name()?),
                    Tok::Dots => {
                        self.advance()?;
                        vararg = true;
                        break;
                    }
                    _ => return Err(self.error_near("<name> expected")),
                }
                if !self.test_next(Tok::Comma)? {
                    break;
                }
            }
        }
        self.expect(Tok::RParen)?;
        self.vararg.push(vararg);
        let body = self.block();
        self.vararg.pop();
        let body = body?;
        let end_line = self.line;
        self.expect_match(Tok::End, Tok::Function, line)?;
        let has_inner = self.has_inner.pop().unwrap_or(true);
        Ok(FuncBody {
            params,
            vararg,
            body,
            line,
            end_line,
            has_inner,
        })
    }

    fn expr_list(&mut self) -> PResult<Vec<Expr>> {
        let mut v = vec![self.expr()?];
        while self.test_next(Tok::Comma)? {
            v.push(self.expr()?);
        }
        Ok(v)
    }

    pub fn expr(&mut self) -> PResult<Expr> {
        self.subexpr(0)
    }

    fn subexpr(&mut self, limit: u8) -> PResult<Expr> {
        self.enter()?;
        let line = self.line;
        let unop = match self.tok {
            Tok::Not => Some(UnOp::Not),
            Tok::Minus => Some(UnOp::Neg),
            Tok::Hash => Some(UnOp::Len),
            Tok::Tilde => Some(UnOp::BNot),
            _ => None,
        };
        let mut left = if let Some(op) = unop {
            self.advance()?;
            let e = self.subexpr(UNARY_PRIORITY)?;
            fold_unary(op, e, line)
        } else {
            self.simple_expr()?
        };
        // A left-associative chain builds a deep tree; every
        // `LINKS_PER_LEVEL` links count as a level so the compiler's
        // recursion over the tree stays bounded (lua5.4 compiles chains
        // iteratively and counts none).
        let mut links = 0;
        let mut chain = 0;
        while let Some((op, lp, rp)) = binop_of(&self.tok) {
            if lp <= limit {
                break;
            }
            let is_and = self.tok == Tok::And;
            let is_or = self.tok == Tok::Or;
            let line = self.line;
            self.advance()?;
            // Right-associative operators nest by recursion, which counts.
            if lp <= rp {
                links += 1;
                if links % LINKS_PER_LEVEL == 1 {
                    chain += 1;
                    self.enter()?;
                }
            }
            let right = self.subexpr(rp)?;
            // A constant left operand that decides `and`/`or` leaves the
            // right one (lua5.4: `(true and 'k')` is the constant 'k').
            let truth = match left {
                Expr::Nil | Expr::False => Some(false),
                Expr::True | Expr::Int(_) | Expr::Float(_) | Expr::Str(_) => Some(true),
                _ => None,
            };
            left = if is_and && truth == Some(true) || is_or && truth == Some(false) {
                // Still one value: `true and f()` is `(f())`.
                if right.is_multi() {
                    Expr::Paren(Box::new(right))
                } else {
                    right
                }
            } else if is_and {
                Expr::And(Box::new(left), Box::new(right))
            } else if is_or {
                Expr::Or(Box::new(left), Box::new(right))
            } else {
                fold_binary(op, left, right, line)
            };
        }
        for _ in 0..chain {
            self.leave();
        }
        self.leave();
        Ok(left)
    }

    fn simple_expr(&mut self) -> PResult<Expr> {
        let e = match &self.tok {
            Tok::Int(i) => Expr::Int(*i),
            Tok::Float(f) => Expr::Float(*f),
            Tok::Str(s) => Expr::Str(s.clone()),
            Tok::Nil => Expr::Nil,
            Tok::True => Expr::True,
            Tok::False => Expr::False,
            Tok::Dots => {
                if !self.in_vararg() {
                    return Err(self.error_near("cannot use '...' outside a vararg function"));
                }
                Expr::Dots
            }
            Tok::LBrace => return self.table(),
            Tok::Function => {
                let line = self.line;
                self.advance()?;
                return Ok(Expr::Function(Box::new(self.func_body(false, line)?)));
            }
            _ => return self.suffixed_expr(),
        };
        self.advance()?;
        Ok(e)
    }

    fn in_vararg(&self) -> bool {
        self.vararg.last().copied().unwrap_or(true)
    }

    fn primary_expr(&mut self) -> PResult<Expr> {
        let line = self.line;
        match &self.tok {
            Tok::Name(_) => {
                let n = self.name()?;
                Ok(Expr::Name(n, line))
            }
            Tok::LParen => {
                self.advance()?;
                let e = self.expr()?;
                self.expect_match(Tok::RParen, Tok::LParen, line)?;
                Ok(match e {
                    e @ (Expr::Call(..) | Expr::Method(..) | Expr::Dots) => {
                        Expr::Paren(Box::new(e))
                    }
                    e => e,
                })
            }
            _ => Err(self.error_near("unexpected symbol")),
        }
    }

    fn suffixed_expr(&mut self) -> PResult<Expr> {
        let mut e = self.primary_expr()?;
        let mut depth = 0;
        loop {
            let line = self.line;
            match self.tok {
                Tok::Dot => {
                    self.advance()?;
                    let n = self.name()?;
                    e = Expr::Index(Box::new(e), Box::new(Expr::Str(n)), line);
                }
                Tok::LBracket => {
                    self.advance()?;
                    let k = self.expr()?;
                    self.expect(Tok::RBracket)?;
                    e = Expr::Index(Box::new(e), Box::new(k), line);
                }
                Tok::Colon => {
                    self.advance()?;
                    let n = self.name()?;
                    let args = self.call_args()?;
                    e = Expr::Method(Box::new(e), n, args, line);
                }
                Tok::LParen | Tok::Str(_) | Tok::LBrace => {
                    let args = self.call_args()?;
                    e = Expr::Call(Box::new(e), args, line);
                }
                _ => {
                    for _ in 0..depth {
                        self.leave();
                    }
                    return Ok(e);
                }
            }
            depth += 1;
            self.enter()?;
        }
    }

    fn call_args(&mut self) -> PResult<Vec<Expr>> {
        match &self.tok {
            Tok::Str(s) => {
                let s = s.clone();
                self.advance()?;
                Ok(vec![Expr::Str(s)])
            }
            Tok::LBrace => Ok(vec![self.table()?]),
            Tok::LParen => {
                let line = self.line;
                self.advance()?;
                if self.tok == Tok::RParen {
                    self.advance()?;
                    return Ok(vec![]);
                }
                let args = self.expr_list()?;
                self.expect_match(Tok::RParen, Tok::LParen, line)?;
                Ok(args)
            }
            _ => Err(self.error_near("function arguments expected")),
        }
    }

    fn table(&mut self) -> PResult<Expr> {
        let line = self.line;
        self.expect(Tok::LBrace)?;
        let mut fields = Vec::new();
        while self.tok != Tok::RBrace {
            if let Tok::Name(_) = self.tok {
                if *self.peek_ahead()? == Tok::Assign {
                    let n = self.name()?;
                    self.advance()?;
                    let v = self.expr()?;
                    fields.push(Field::Pair(Expr::Str(n), v));
                } else {
                    fields.push(Field::Item(self.expr()?));
                }
            } else if self.tok == Tok::LBracket {
                self.advance()?;
                let k = self.expr()?;
                self.expect(Tok::RBracket)?;
                self.expect(Tok::Assign)?;
                let v = self.expr()?;
                fields.push(Field::Pair(k, v));
            } else {
                fields.push(Field::Item(self.expr()?));
            }
            if !self.test_next(Tok::Comma)? && !self.test_next(Tok::Semi)? {
                break;
            }
        }
        self.expect_match(Tok::RBrace, Tok::LBrace, line)?;
        Ok(Expr::Table(fields, line))
    }
}

/// Folds unary operators on constants as lua5.4's code generator does:
/// `-` of a number (so negative literals are constants), `~` of an
/// integral number, `not` of any constant.
fn fold_unary(op: UnOp, e: Expr, line: u32) -> Expr {
    match (op, &e) {
        (UnOp::Neg, Expr::Int(i)) => Expr::Int(i.wrapping_neg()),
        // Not to -0.0 (nor NaN): lua5.4 leaves `-0.0` unfolded.
        (UnOp::Neg, Expr::Float(f)) if *f != 0.0 && !f.is_nan() => Expr::Float(-f),
        (UnOp::BNot, _) if as_int(&e).is_some() => Expr::Int(!as_int(&e).unwrap_or(0)),
        (UnOp::Not, Expr::Nil | Expr::False) => Expr::True,
        (UnOp::Not, Expr::True | Expr::Int(_) | Expr::Float(_) | Expr::Str(_)) => Expr::False,
        _ => Expr::Un(op, Box::new(e), line),
    }
}

/// A numeric constant's value as an integer, if it has one exactly.
fn as_int(e: &Expr) -> Option<i64> {
    match *e {
        Expr::Int(i) => Some(i),
        Expr::Float(f) => crate::value::float_to_int_exact(f),
        _ => None,
    }
}

fn as_float(e: &Expr) -> Option<f64> {
    match *e {
        Expr::Int(i) => Some(i as f64),
        Expr::Float(f) => Some(f),
        _ => None,
    }
}

/// Folds arithmetic and bitwise operators on numeric constants as lua5.4's
/// `constfolding` does (which decides how errors name operands: `t[(7 | 0)]`
/// is `t[7]`): not a division or modulo by zero, bitwise operators only on
/// integral values, and a float result only when it is neither NaN nor
/// zero. Strings, concatenation and comparisons are never folded.
fn fold_binary(op: BinOp, l: Expr, r: Expr, line: u32) -> Expr {
    match fold_numbers(op, &l, &r) {
        Some(e) => e,
        None => Expr::Bin(op, Box::new(l), Box::new(r), line),
    }
}

fn fold_numbers(op: BinOp, l: &Expr, r: &Expr) -> Option<Expr> {
    use crate::value::{float_mod, int_floor_div, int_mod, shift_left};
    let (fa, fb) = (as_float(l)?, as_float(r)?);
    let bitwise = |f: fn(i64, i64) -> i64| Some(Expr::Int(f(as_int(l)?, as_int(r)?)));
    let ints = match (l, r) {
        (Expr::Int(a), Expr::Int(b)) => Some((*a, *b)),
        _ => None,
    };
    let folded = match op {
        BinOp::BAnd => return bitwise(|a, b| a & b),
        BinOp::BOr => return bitwise(|a, b| a | b),
        BinOp::BXor => return bitwise(|a, b| a ^ b),
        BinOp::Shl => return bitwise(shift_left),
        BinOp::Shr => return bitwise(|a, b| shift_left(a, b.wrapping_neg())),
        BinOp::Div | BinOp::IDiv | BinOp::Mod if fb == 0.0 => return None,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::IDiv | BinOp::Mod if ints.is_some() => {
            let (a, b) = ints?;
            return Some(Expr::Int(match op {
                BinOp::Add => a.wrapping_add(b),
                BinOp::Sub => a.wrapping_sub(b),
                BinOp::Mul => a.wrapping_mul(b),
                BinOp::IDiv => int_floor_div(a, b),
                _ => int_mod(a, b),
            }));
        }
        BinOp::Add => fa + fb,
        BinOp::Sub => fa - fb,
        BinOp::Mul => fa * fb,
        BinOp::Div => fa / fb,
        BinOp::IDiv => (fa / fb).floor(),
        BinOp::Mod => float_mod(fa, fb),
        BinOp::Pow => fa.powf(fb),
        _ => return None,
    };
    (!folded.is_nan() && folded != 0.0).then_some(Expr::Float(folded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        let e = parse_chunk(src.as_bytes()).unwrap_err();
        format!("{}: {}", e.line, e.msg)
    }

    #[test]
    fn parses_a_program() {
        let f =
            parse_chunk(b"local x = 1 + 2 * 3 ^ 2 .. 'a' function t.a:b(c) return c end").unwrap();
        assert_eq!(f.body.stats.len(), 2);
        assert!(f.has_inner);
    }

    #[test]
    fn syntax_errors_read_like_lua() {
        assert_eq!(err("x = = 1"), "1: unexpected symbol near '='");
        assert_eq!(
            err("if x then\n\nfoo()"),
            "3: 'end' expected (to close 'if' at line 1) near <eof>"
        );
        assert_eq!(err("local 1"), "1: <name> expected near '1'");
        assert_eq!(err("x"), "1: syntax error near <eof>");
        assert_eq!(err("f("), "1: unexpected symbol near <eof>");
    }

    /// Chains longer than the level limit compile on a thread with Rust's
    /// default 2 MiB stack (beyond about 250 links the compiler runs out
    /// of registers first, a clean error).
    #[test]
    fn long_chains_compile_on_a_small_stack() {
        let flat = "local x = 2 return 1".to_string() + &" + x".repeat(240);
        let mut nested = "x".to_string();
        for _ in 0..40 {
            nested = format!("({nested}{})", " * x".repeat(LINKS_PER_LEVEL as usize));
        }
        let nested = format!("local x = 2 return {nested}");
        let too_long = "local x = 2 return 1".to_string() + &" + x".repeat(300);
        for (src, ok) in [(flat, true), (nested, true), (too_long, false)] {
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let mut heap = crate::heap::Heap::default();
                    let r = crate::compile(&mut heap, src.as_bytes(), "chain");
                    assert_eq!(r.is_ok(), ok, "{:?}", r.err());
                })
                .expect("a thread")
                .join()
                .expect("no stack overflow");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = "x = ".to_string() + &"(".repeat(100_000) + "1" + &")".repeat(100_000);
        assert!(err(&src).contains("C stack overflow"));
        let src = "x = 1".to_string() + &" + 1".repeat(100_000);
        assert!(err(&src).contains("C stack overflow"));
        let src = "x = 1".to_string() + &" .. 1".repeat(100_000);
        assert!(err(&src).contains("C stack overflow"));
        // lua5.4's own tests sum 200 terms (calls.lua).
        let src = "x = 1".to_string() + &" + 1".repeat(199);
        assert!(parse_chunk(src.as_bytes()).is_ok());
        // 150 terms of a right-associative chain are within the limit.
        let src = "x = 1".to_string() + &" .. 1".repeat(150);
        assert!(parse_chunk(src.as_bytes()).is_ok());
    }
}
