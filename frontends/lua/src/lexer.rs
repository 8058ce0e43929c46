//! The lexer: Lua 5.4 source bytes to tokens, with lua5.4's error texts
//! (`unfinished string`, `malformed number`, … `near 'token'`).

use crate::value::{str_to_number, Value};

/// A token. Names and strings are byte strings (Lua source need not be UTF-8).
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Name(Vec<u8>),
    Str(Vec<u8>),
    Int(i64),
    Float(f64),
    // keywords
    And,
    Break,
    Do,
    Else,
    Elseif,
    End,
    False,
    For,
    Function,
    Goto,
    If,
    In,
    Local,
    Nil,
    Not,
    Or,
    Repeat,
    Return,
    Then,
    True,
    Until,
    While,
    // symbols
    Plus,
    Minus,
    Star,
    Slash,
    DSlash,
    Percent,
    Caret,
    Hash,
    Amp,
    Tilde,
    Pipe,
    Shl,
    Shr,
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
    Assign,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    DColon,
    Semi,
    Colon,
    Comma,
    Dot,
    Concat,
    Dots,
    Eof,
}

const KEYWORDS: &[(&str, Tok)] = &[
    ("and", Tok::And),
    ("break", Tok::Break),
    ("do", Tok::Do),
    ("else", Tok::Else),
    ("elseif", Tok::Elseif),
    ("end", Tok::End),
    ("false", Tok::False),
    ("for", Tok::For),
    ("function", Tok::Function),
    ("goto", Tok::Goto),
    ("if", Tok::If),
    ("in", Tok::In),
    ("local", Tok::Local),
    ("nil", Tok::Nil),
    ("not", Tok::Not),
    ("or", Tok::Or),
    ("repeat", Tok::Repeat),
    ("return", Tok::Return),
    ("then", Tok::Then),
    ("true", Tok::True),
    ("until", Tok::Until),
    ("while", Tok::While),
];

impl Tok {
    /// How lua5.4 names the token in a `near '…'` message.
    pub fn describe(&self) -> String {
        let fixed = match self {
            Tok::Name(n) => return String::from_utf8_lossy(n).into_owned(),
            Tok::Str(s) => return String::from_utf8_lossy(s).into_owned(),
            Tok::Int(i) => return i.to_string(),
            Tok::Float(f) => {
                let mut s = String::new();
                crate::value::fmt_float(*f, &mut s);
                return s;
            }
            Tok::Eof => return "<eof>".into(),
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::DSlash => "//",
            Tok::Percent => "%",
            Tok::Caret => "^",
            Tok::Hash => "#",
            Tok::Amp => "&",
            Tok::Tilde => "~",
            Tok::Pipe => "|",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            Tok::Eq => "==",
            Tok::Ne => "~=",
            Tok::Le => "<=",
            Tok::Ge => ">=",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Assign => "=",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::DColon => "::",
            Tok::Semi => ";",
            Tok::Colon => ":",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Concat => "..",
            Tok::Dots => "...",
            kw => KEYWORDS
                .iter()
                .find(|(_, t)| t == kw)
                .map(|(s, _)| *s)
                .unwrap_or("?"),
        };
        fixed.to_string()
    }
}

/// A lexical error: the line and the message without position.
#[derive(Debug)]
pub struct LexError {
    pub line: u32,
    pub msg: String,
}

/// The lexer over one chunk; `next_token` yields tokens with their line.
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    pub line: u32,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        // A shebang line is the file loaders' business
        // (`crate::without_shebang`): `load` of a string does not skip it.
        Lexer {
            src,
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self) -> u8 {
        self.src.get(self.pos).copied().unwrap_or(0)
    }

    fn peek_at(&self, k: usize) -> u8 {
        self.src.get(self.pos + k).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn err(&self, msg: &str, near: &[u8]) -> LexError {
        LexError {
            line: self.line,
            msg: format!("{msg} near '{}'", String::from_utf8_lossy(near)),
        }
    }

    /// Consumes a newline sequence (`\n`, `\r`, `\r\n`, `\n\r`).
    fn newline(&mut self) {
        let c = self.peek();
        self.pos += 1;
        let d = self.peek();
        if (d == b'\n' || d == b'\r') && d != c {
            self.pos += 1;
        }
        self.line += 1;
    }

    /// The next token and the line it starts on.
    pub fn next_token(&mut self) -> Result<(Tok, u32), LexError> {
        loop {
            if self.at_end() {
                return Ok((Tok::Eof, self.line));
            }
            let c = self.peek();
            match c {
                b'\n' | b'\r' => self.newline(),
                b' ' | b'\t' | 0x0b | 0x0c => self.pos += 1,
                b'-' if self.peek_at(1) == b'-' => {
                    self.pos += 2;
                    if self.peek() == b'[' {
                        if let Some(level) = self.long_bracket_level() {
                            self.long_string(level, true)?;
                            continue;
                        }
                    }
                    while !self.at_end() && self.peek() != b'\n' && self.peek() != b'\r' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let line = self.line;
        let c = self.peek();
        let tok = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = self.pos;
                while matches!(self.peek(), b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'0'..=b'9') {
                    self.pos += 1;
                }
                let word = &self.src[start..self.pos];
                KEYWORDS
                    .iter()
                    .find(|(k, _)| k.as_bytes() == word)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_else(|| Tok::Name(word.to_vec()))
            }
            b'0'..=b'9' => self.number()?,
            b'.' if self.peek_at(1).is_ascii_digit() => self.number()?,
            b'"' | b'\'' => self.short_string(c)?,
            b'[' => match self.long_bracket_level() {
                Some(level) => Tok::Str(self.long_string(level, false)?),
                None => {
                    if self.peek() == b'=' {
                        return Err(self.err("invalid long string delimiter", b"[="));
                    }
                    self.pos += 1;
                    Tok::LBracket
                }
            },
            _ => {
                let two = [c, self.peek_at(1)];
                let three = [c, self.peek_at(1), self.peek_at(2)];
                let (t, n) = match (&three, &two) {
                    (b"...", _) => (Tok::Dots, 3),
                    (_, b"..") => (Tok::Concat, 2),
                    (_, b"==") => (Tok::Eq, 2),
                    (_, b"~=") => (Tok::Ne, 2),
                    (_, b"<=") => (Tok::Le, 2),
                    (_, b">=") => (Tok::Ge, 2),
                    (_, b"<<") => (Tok::Shl, 2),
                    (_, b">>") => (Tok::Shr, 2),
                    (_, b"//") => (Tok::DSlash, 2),
                    (_, b"::") => (Tok::DColon, 2),
                    _ => {
                        let t = match c {
                            b'+' => Tok::Plus,
                            b'-' => Tok::Minus,
                            b'*' => Tok::Star,
                            b'/' => Tok::Slash,
                            b'%' => Tok::Percent,
                            b'^' => Tok::Caret,
                            b'#' => Tok::Hash,
                            b'&' => Tok::Amp,
                            b'~' => Tok::Tilde,
                            b'|' => Tok::Pipe,
                            b'<' => Tok::Lt,
                            b'>' => Tok::Gt,
                            b'=' => Tok::Assign,
                            b'(' => Tok::LParen,
                            b')' => Tok::RParen,
                            b'{' => Tok::LBrace,
                            b'}' => Tok::RBrace,
                            b']' => Tok::RBracket,
                            b';' => Tok::Semi,
                            b':' => Tok::Colon,
                            b',' => Tok::Comma,
                            b'.' => Tok::Dot,
                            _ => {
                                let shown = if c.is_ascii_graphic() {
                                    (c as char).to_string()
                                } else {
                                    format!("<\\{c}>")
                                };
                                return Err(LexError {
                                    line,
                                    msg: format!("unexpected symbol near '{shown}'"),
                                });
                            }
                        };
                        (t, 1)
                    }
                };
                self.pos += n;
                t
            }
        };
        Ok((tok, line))
    }

    /// At a `[`: the level of a long bracket `[==[` if one opens here
    /// (consuming it), else none (consuming nothing).
    fn long_bracket_level(&mut self) -> Option<usize> {
        let mut k = 1;
        while self.peek_at(k) == b'=' {
            k += 1;
        }
        if self.peek_at(k) == b'[' {
            self.pos += k + 1;
            Some(k - 1)
        } else {
            None
        }
    }

    fn long_string(&mut self, level: usize, comment: bool) -> Result<Vec<u8>, LexError> {
        let start_line = self.line;
        let mut out = Vec::new();
        // A newline right after the opening bracket is skipped.
        if matches!(self.peek(), b'\n' | b'\r') {
            self.newline();
        }
        loop {
            if self.at_end() {
                let what = if comment { "comment" } else { "string" };
                return Err(LexError {
                    line: self.line,
                    msg: format!(
                        "unfinished long {what} (starting at line {start_line}) near <eof>"
                    ),
                });
            }
            let c = self.peek();
            if c == b']' {
                let mut k = 1;
                while self.peek_at(k) == b'=' {
                    k += 1;
                }
                if k - 1 == level && self.peek_at(k) == b']' {
                    self.pos += k + 1;
                    return Ok(out);
                }
                out.push(c);
                self.pos += 1;
            } else if c == b'\n' || c == b'\r' {
                self.newline();
                out.push(b'\n');
            } else {
                out.push(c);
                self.pos += 1;
            }
        }
    }

    fn short_string(&mut self, quote: u8) -> Result<Tok, LexError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            if self.at_end() {
                return Err(LexError {
                    line: self.line,
                    msg: "unfinished string near <eof>".into(),
                });
            }
            let c = self.peek();
            if c == quote {
                self.pos += 1;
                return Ok(Tok::Str(out));
            }
            match c {
                b'\n' | b'\r' => {
                    return Err(self.err("unfinished string", &self.src[start..self.pos]));
                }
                b'\\' => {
                    self.pos += 1;
                    let e = self.peek();
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'\\' => out.push(b'\\'),
                        b'"' => out.push(b'"'),
                        b'\'' => out.push(b'\''),
                        b'\n' | b'\r' => {
                            out.push(b'\n');
                            self.newline();
                            continue;
                        }
                        b'x' => {
                            let h = |c: u8| (c as char).to_digit(16);
                            match (h(self.peek_at(1)), h(self.peek_at(2))) {
                                (Some(a), Some(b)) => {
                                    out.push((a * 16 + b) as u8);
                                    self.pos += 2;
                                }
                                (first, _) => {
                                    // lua5.4 quotes up to the first bad digit.
                                    let end = self.pos + if first.is_none() { 2 } else { 3 };
                                    let end = end.min(self.src.len());
                                    return Err(self
                                        .err("hexadecimal digit expected", &self.src[start..end]));
                                }
                            }
                        }
                        b'z' => {
                            self.pos += 1;
                            loop {
                                match self.peek() {
                                    b'\n' | b'\r' if !self.at_end() => self.newline(),
                                    b' ' | b'\t' | 0x0b | 0x0c => self.pos += 1,
                                    _ => break,
                                }
                            }
                            continue;
                        }
                        b'0'..=b'9' => {
                            let mut v: u32 = 0;
                            let mut k = 0;
                            while k < 3 && self.peek().is_ascii_digit() {
                                v = v * 10 + (self.peek() - b'0') as u32;
                                self.pos += 1;
                                k += 1;
                            }
                            if v > 255 {
                                // (the character after the digits too, as lua5.4)
                                let end = (self.pos + 1).min(self.src.len());
                                return Err(
                                    self.err("decimal escape too large", &self.src[start..end])
                                );
                            }
                            out.push(v as u8);
                            continue;
                        }
                        b'u' => {
                            self.pos += 1;
                            if self.peek() != b'{' {
                                let end = (self.pos + 1).min(self.src.len());
                                return Err(self.err("missing '{'", &self.src[start..end]));
                            }
                            self.pos += 1;
                            let mut v: u64 = 0;
                            let mut any = false;
                            while let Some(d) = (self.peek() as char).to_digit(16) {
                                v = v * 16 + d as u64;
                                any = true;
                                self.pos += 1;
                                if v > 0x7FFF_FFFF {
                                    return Err(self
                                        .err("UTF-8 value too large", &self.src[start..self.pos]));
                                }
                            }
                            let end = (self.pos + 1).min(self.src.len());
                            if !any {
                                return Err(
                                    self.err("hexadecimal digit expected", &self.src[start..end])
                                );
                            }
                            if self.peek() != b'}' {
                                return Err(self.err("missing '}'", &self.src[start..end]));
                            }
                            utf8_encode(v as u32, &mut out);
                        }
                        _ => {
                            let end = (self.pos + 1).min(self.src.len());
                            return Err(self.err("invalid escape sequence", &self.src[start..end]));
                        }
                    }
                    self.pos += 1;
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Tok, LexError> {
        let start = self.pos;
        let hex = self.peek() == b'0' && (self.peek_at(1) | 0x20) == b'x';
        if hex {
            self.pos += 2;
        }
        let (e1, e2) = if hex { (b'p', b'P') } else { (b'e', b'E') };
        loop {
            let c = self.peek();
            if (c == e1 || c == e2) && matches!(self.peek_at(1), b'+' | b'-') {
                self.pos += 2;
            } else if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let text = &self.src[start..self.pos];
        match str_to_number(text) {
            Some(Value::Int(i)) => Ok(Tok::Int(i)),
            Some(Value::Float(f)) => Ok(Tok::Float(f)),
            _ => Err(self.err("malformed number", text)),
        }
    }
}

/// Appends the (extended, up to 2^31) UTF-8 encoding of `c`.
pub fn utf8_encode(c: u32, out: &mut Vec<u8>) {
    if c < 0x80 {
        out.push(c as u8);
        return;
    }
    let mut buf = [0u8; 6];
    let mut n = 0;
    let mut x = c;
    let mut limit = 0x3f;
    while x > limit {
        buf[5 - n] = 0x80 | (x & 0x3f) as u8;
        x >>= 6;
        limit >>= 1;
        n += 1;
    }
    buf[5 - n] = ((!limit << 1) as u8) | x as u8;
    out.extend_from_slice(&buf[5 - n..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut lx = Lexer::new(s.as_bytes());
        let mut v = Vec::new();
        loop {
            let (t, _) = lx.next_token().unwrap();
            if t == Tok::Eof {
                return v;
            }
            v.push(t);
        }
    }

    #[test]
    fn lexes_numbers_strings_and_symbols() {
        assert_eq!(
            toks("x = 0x10 + 3.5e1 .. 'a\\n' --c\n[==[b]==]"),
            vec![
                Tok::Name(b"x".to_vec()),
                Tok::Assign,
                Tok::Int(16),
                Tok::Plus,
                Tok::Float(35.0),
                Tok::Concat,
                Tok::Str(b"a\n".to_vec()),
                Tok::Str(b"b".to_vec()),
            ]
        );
        assert_eq!(
            toks("a//b ~= c"),
            vec![
                Tok::Name(b"a".to_vec()),
                Tok::DSlash,
                Tok::Name(b"b".to_vec()),
                Tok::Ne,
                Tok::Name(b"c".to_vec())
            ]
        );
        assert_eq!(
            toks("'\\u{48}\\65\\x41\\z  \n b'"),
            vec![Tok::Str(b"HAAb".to_vec())]
        );
    }

    #[test]
    fn errors_name_the_token() {
        let mut lx = Lexer::new(b"3x");
        assert_eq!(
            lx.next_token().unwrap_err().msg,
            "malformed number near '3x'"
        );
        let mut lx = Lexer::new(b"'abc\n");
        assert_eq!(
            lx.next_token().unwrap_err().msg,
            "unfinished string near ''abc'"
        );
    }
}
