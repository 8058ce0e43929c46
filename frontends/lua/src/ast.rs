//! The syntax tree the parser builds and the compiler consumes. Names are
//! resolved by the compiler (locals, upvalues, globals), not here.

/// A byte-string name.
pub type Name = Vec<u8>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    IDiv,
    Mod,
    Pow,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BAnd,
    BOr,
    BXor,
    Shl,
    Shr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    Len,
    BNot,
}

#[derive(Debug)]
pub enum Expr {
    Nil,
    True,
    False,
    Dots,
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Name(Name, u32),
    Index(Box<Expr>, Box<Expr>, u32),
    Call(Box<Expr>, Vec<Expr>, u32),
    Method(Box<Expr>, Name, Vec<Expr>, u32),
    Function(Box<FuncBody>),
    Bin(BinOp, Box<Expr>, Box<Expr>, u32),
    Un(UnOp, Box<Expr>, u32),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Table(Vec<Field>, u32),
    /// `(e)`: one value, even of a call or `...`.
    Paren(Box<Expr>),
}

impl Expr {
    /// Whether the expression can yield many values (a call or `...`).
    pub fn is_multi(&self) -> bool {
        matches!(self, Expr::Call(..) | Expr::Method(..) | Expr::Dots)
    }
}

#[derive(Debug)]
pub enum Field {
    /// A positional item.
    Item(Expr),
    /// `[k] = v` or `name = v`.
    Pair(Expr, Expr),
}

/// A local's attribute (`<const>`, `<close>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attrib {
    None,
    Const,
    Close,
}

#[derive(Debug)]
pub enum Stat {
    Local(Vec<(Name, Attrib)>, Vec<Expr>, u32),
    Assign(Vec<Expr>, Vec<Expr>, u32),
    /// A call statement (an `Expr::Call` or `Expr::Method`).
    Call(Expr),
    Do(Block),
    While(Expr, Block),
    Repeat(Block, Expr),
    If(Vec<(Expr, Block)>, Option<Block>),
    NumFor(Name, Box<[Expr; 3]>, Block, u32),
    GenFor(Vec<Name>, Vec<Expr>, Block, u32),
    LocalFunction(Name, Box<FuncBody>),
    Return(Vec<Expr>, u32),
    Break(u32),
    Goto(Name, u32),
    Label(Name, u32),
}

#[derive(Debug, Default)]
pub struct Block {
    pub stats: Vec<Stat>,
}

#[derive(Debug)]
pub struct FuncBody {
    pub params: Vec<Name>,
    pub vararg: bool,
    pub body: Block,
    pub line: u32,
    pub end_line: u32,
    /// Whether a function is defined inside (locals may be captured, so
    /// blocks close upvalues on exit).
    pub has_inner: bool,
}
