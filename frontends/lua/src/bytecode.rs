//! The register bytecode: instructions, function prototypes, debug info.
//!
//! Like PUC Lua's: a function's locals and temporaries are registers of a
//! frame window on one value stack (`R[i]` is `stack[base + i]`),
//! constants sit in a per-prototype table (`K[i]`), and a comparison or
//! test is followed by a `Jmp` taken when its outcome equals its flag.
//! Every instruction is a resume point (the interpreter keeps no state
//! between instructions besides the frame), which is what the JIT tier
//! will deoptimize into; a per-instruction type-feedback slot can be added
//! as a side table indexed like `code` (see docs/lua.md).

use crate::value::Value;
use std::cell::Cell;

/// A register index.
pub type Reg = u8;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// R[a] = R[b]
    Move(Reg, Reg),
    /// R[a] = K[bx]
    LoadK(Reg, u32),
    /// R[a] = integer
    LoadI(Reg, i32),
    /// R[a..=a+n] = nil
    LoadNil(Reg, u8),
    LoadBool(Reg, bool),
    /// R[a] = Up[b]
    GetUpval(Reg, u8),
    /// Up[b] = R[a]
    SetUpval(Reg, u8),
    /// R[a] = globals[K[k]]
    GetGlobal(Reg, u32),
    /// globals[K[k]] = R[a]
    SetGlobal(Reg, u32),
    /// R[a] = R[b][R[c]]
    GetTable(Reg, Reg, Reg),
    /// R[a] = R[b][K[c]] (a string constant)
    GetField(Reg, Reg, u16),
    /// R[a] = R[b][c] (an integer key)
    GetIndex(Reg, Reg, u8),
    /// R[a][R[b]] = R[c]
    SetTable(Reg, Reg, Reg),
    /// R[a][K[b]] = R[c] (a string constant key)
    SetField(Reg, u16, Reg),
    /// R[a] = {} with size hints for the array and hash parts.
    NewTable(Reg, u16, u8),
    /// R[a][start + i] = R[a + 1 + i] for i < n (n = 0: up to the top).
    SetList(Reg, u8, u32),
    /// R[a + 1] = R[b]; R[a] = R[b][K[c]]
    SelfOp(Reg, Reg, u16),
    Add(Reg, Reg, Reg),
    Sub(Reg, Reg, Reg),
    Mul(Reg, Reg, Reg),
    Div(Reg, Reg, Reg),
    Mod(Reg, Reg, Reg),
    Pow(Reg, Reg, Reg),
    IDiv(Reg, Reg, Reg),
    BAnd(Reg, Reg, Reg),
    BOr(Reg, Reg, Reg),
    BXor(Reg, Reg, Reg),
    Shl(Reg, Reg, Reg),
    Shr(Reg, Reg, Reg),
    /// R[a] = R[b] op K[c] (a number constant)
    AddK(Reg, Reg, u16),
    SubK(Reg, Reg, u16),
    MulK(Reg, Reg, u16),
    DivK(Reg, Reg, u16),
    ModK(Reg, Reg, u16),
    PowK(Reg, Reg, u16),
    IDivK(Reg, Reg, u16),
    Unm(Reg, Reg),
    Not(Reg, Reg),
    Len(Reg, Reg),
    BNot(Reg, Reg),
    /// R[a] = R[b] .. … .. R[b + n - 1]
    Concat(Reg, Reg, u8),
    /// pc += off
    Jmp(i32),
    /// if (R[a] == R[b]) == k then take the next Jmp, else skip it.
    Eq(Reg, Reg, bool),
    Lt(Reg, Reg, bool),
    Le(Reg, Reg, bool),
    /// if (R[a] == K[b]) == k then take the next Jmp.
    EqK(Reg, u16, bool),
    /// if (R[a] < imm) == k … (and <=, >, >=)
    LtI(Reg, i16, bool),
    LeI(Reg, i16, bool),
    GtI(Reg, i16, bool),
    GeI(Reg, i16, bool),
    /// if truthy(R[a]) == k then take the next Jmp.
    Test(Reg, bool),
    /// R[a], … = R[a](R[a+1], …): b-1 arguments (b = 0: up to the top),
    /// c-1 results (c = 0: all, setting the top).
    Call(Reg, u8, u8),
    /// return R[a](…) reusing the frame (b as in `Call`).
    TailCall(Reg, u8),
    /// return R[a], …, R[a+b-2] (b = 0: up to the top)
    Return(Reg, u8),
    /// Numeric for: prepare (skip the loop by `off` if it runs 0 times).
    ForPrep(Reg, i32),
    /// Numeric for: step; jump back by `off` while it goes on.
    ForLoop(Reg, i32),
    /// R[a+4], …, R[a+3+c] = R[a](R[a+1], R[a+2]) (R[a+3] is the
    /// loop's closing value)
    TForCall(Reg, u8),
    /// if R[a+4] ~= nil { R[a+2] = R[a+4]; pc += off }
    TForLoop(Reg, i32),
    /// R[a] = closure of prototype `protos[bx]`
    Closure(Reg, u32),
    /// R[a], … = vararg (c-1 values; c = 0: all, setting the top)
    VarArg(Reg, u8),
    /// Close upvalues of registers >= a and call `__close` of the
    /// to-be-closed variables there (innermost first).
    Close(Reg),
    /// R[a] is a to-be-closed variable (`local x <close>`): checks its
    /// value has `__close` (or is false/nil) and registers it.
    Tbc(Reg),
}

const _: () = assert!(std::mem::size_of::<Op>() <= 8);

/// Where a closure finds an upvalue when it is created: a register of the
/// enclosing function, or one of the enclosing function's upvalues.
#[derive(Clone, Copy, Debug)]
pub struct UpvalDesc {
    pub in_stack: bool,
    pub index: u8,
}

/// A local variable's name and the pcs where it is live (debug info for
/// error messages).
#[derive(Clone, Debug)]
pub struct LocalInfo {
    pub name: Vec<u8>,
    pub reg: Reg,
    pub start_pc: u32,
    pub end_pc: u32,
}

/// A compiled function.
#[derive(Debug)]
pub struct Proto {
    pub code: Vec<Op>,
    /// Per instruction, the hash slot where a `GetGlobal`, `GetField`,
    /// `SelfOp` or `SetField` found its constant key last time (an inline
    /// cache: tried first, checked against the key, so never stale).
    pub slot_hints: Vec<Cell<u32>>,
    /// The source line of each instruction.
    pub lines: Vec<u32>,
    pub consts: Vec<Value>,
    pub protos: Vec<std::rc::Rc<Proto>>,
    pub upvals: Vec<UpvalDesc>,
    pub upval_names: Vec<Vec<u8>>,
    pub locals: Vec<LocalInfo>,
    pub num_params: u8,
    pub is_vararg: bool,
    pub max_stack: u8,
    pub line_defined: u32,
    /// The chunk name used in messages (`prog.lua`).
    pub source: std::rc::Rc<str>,
    /// The chunk name as the loader was given it (`@prog.lua`, `=name`,
    /// or `load`'s string): `debug.getinfo`'s `source`.
    pub chunk_name: std::rc::Rc<str>,
    /// The collector's mark for this prototype's constants.
    pub gc_epoch: Cell<u32>,
    /// The text of the chunk this function was compiled from and the
    /// function's number in it (0 the main function, then in the order
    /// they begin): what `string.dump` writes, so `load` compiles the
    /// chunk again and takes that function (`dump.rs`). None for
    /// functions the interpreter makes itself.
    pub origin: Option<(std::rc::Rc<[u8]>, u32)>,
    /// A tail call to this function keeps the caller's frame: it stands
    /// for a library function (`coroutine.wrap`'s functions), whose
    /// errors name the caller's line as lua5.4's C functions do.
    pub keeps_caller_frame: Cell<bool>,
}
