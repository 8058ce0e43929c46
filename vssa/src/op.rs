//! Operations: what a node does, with its immediates.
//!
//! Input conventions (resolved inputs, in order) are part of each variant's
//! documentation; the verifier checks them.

use crate::sig::Signature;
use std::fmt;

/// Two-operand integer arithmetic. Both operands and the result have the
/// same type. Shift amounts are taken modulo the width.
///
/// Division and remainder never trap; their results are defined for every
/// operand (Cranelift's `sdiv` and `udiv` trap, so the backend tests the
/// divisor first):
///
/// | operation | `x / 0` | `MIN / -1` |
/// |---|---|---|
/// | `Sdiv` (rounds towards zero) | `0` | `MIN` (wraps) |
/// | `Udiv` | `0` | — |
/// | `Srem` (sign of `x`) | `x` | `0` |
/// | `Urem` | `x` | — |
///
/// so `x == (x / d) * d + x % d` holds for every `x` and `d`. A guest whose
/// language raises an error on division by zero guards on the divisor
/// (`Guard` of `d != 0`) before dividing; the division after the guard then
/// never sees 0 and the defined result never shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    And,
    Or,
    Xor,
    Shl,
    /// Logical (unsigned) shift right.
    Ushr,
    /// Arithmetic (signed) shift right.
    Sshr,
    /// Signed division, rounding towards zero.
    Sdiv,
    /// Unsigned division.
    Udiv,
    /// Signed remainder (it has the sign of the dividend).
    Srem,
    /// Unsigned remainder.
    Urem,
}

impl BinOp {
    /// Every binary operation, for tests and generators that cover them all.
    pub const ALL: [BinOp; 13] = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::And,
        BinOp::Or,
        BinOp::Xor,
        BinOp::Shl,
        BinOp::Ushr,
        BinOp::Sshr,
        BinOp::Sdiv,
        BinOp::Udiv,
        BinOp::Srem,
        BinOp::Urem,
    ];
}

/// One-operand integer arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnOp {
    Neg,
    Not,
}

/// Integer comparisons; the result is an `I8` that is 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CmpOp {
    Eq,
    Ne,
    Slt,
    Sle,
    Sgt,
    Sge,
    Ult,
    Ule,
    Ugt,
    Uge,
}

impl CmpOp {
    /// Every comparison, for tests and generators that cover them all.
    pub const ALL: [CmpOp; 10] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Slt,
        CmpOp::Sle,
        CmpOp::Sgt,
        CmpOp::Sge,
        CmpOp::Ult,
        CmpOp::Ule,
        CmpOp::Ugt,
        CmpOp::Uge,
    ];

    /// The comparison with its operands swapped: `a op b == b (op.mirrored()) a`.
    pub fn mirrored(self) -> CmpOp {
        match self {
            CmpOp::Eq | CmpOp::Ne => self,
            CmpOp::Slt => CmpOp::Sgt,
            CmpOp::Sle => CmpOp::Sge,
            CmpOp::Sgt => CmpOp::Slt,
            CmpOp::Sge => CmpOp::Sle,
            CmpOp::Ult => CmpOp::Ugt,
            CmpOp::Ule => CmpOp::Uge,
            CmpOp::Ugt => CmpOp::Ult,
            CmpOp::Uge => CmpOp::Ule,
        }
    }

    /// The comparison that holds exactly when `self` does not.
    pub fn negated(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Slt => CmpOp::Sge,
            CmpOp::Sle => CmpOp::Sgt,
            CmpOp::Sgt => CmpOp::Sle,
            CmpOp::Sge => CmpOp::Slt,
            CmpOp::Ult => CmpOp::Uge,
            CmpOp::Ule => CmpOp::Ugt,
            CmpOp::Ugt => CmpOp::Ule,
            CmpOp::Uge => CmpOp::Ult,
        }
    }
}

/// Width changes between integer types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvOp {
    /// Zero-extend to a wider type.
    Uext,
    /// Sign-extend to a wider type.
    Sext,
    /// Keep the low bits of a wider value.
    Trunc,
}

/// Two-operand float arithmetic: both operands and the result have the
/// same float type. IEEE-754 with round-to-nearest-even.
///
/// NaN: an operation that computes a new value (everything here but
/// `Copysign`) and whose result is a NaN gives the *canonical* NaN of its
/// type (positive, quiet, zero payload: `0x7fc0_0000`, `0x7ff8_0000_0000_0000`),
/// whatever NaNs went in. Hardware leaves sign and payload of such NaNs
/// unspecified; fixing them makes the interpreter, constant folding and
/// native code agree to the bit, and lets a guest box values in NaN
/// payloads. Sign-bit operations (`Copysign`, [`FUnOp::Neg`],
/// [`FUnOp::Abs`]) and moves (loads, stores, phis, selects, bit casts) keep
/// a NaN's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FBinOp {
    Add,
    Sub,
    Mul,
    Div,
    /// IEEE-754 2019 `minimum` (Cranelift's `fmin`): NaN if either operand
    /// is NaN, and `-0.0 < +0.0`.
    Min,
    /// IEEE-754 2019 `maximum` (Cranelift's `fmax`): NaN if either operand
    /// is NaN, and `-0.0 < +0.0`.
    Max,
    /// The magnitude of `a` with the sign bit of `b` (a bit operation).
    Copysign,
}

impl FBinOp {
    /// Every operation, for tests and generators that cover them all.
    pub const ALL: [FBinOp; 7] = [
        FBinOp::Add,
        FBinOp::Sub,
        FBinOp::Mul,
        FBinOp::Div,
        FBinOp::Min,
        FBinOp::Max,
        FBinOp::Copysign,
    ];
}

/// One-operand float operations; the result has the operand's type. NaN
/// results are canonical as for [`FBinOp`], except for `Neg` and `Abs`,
/// which only flip or clear the sign bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FUnOp {
    Neg,
    Abs,
    Sqrt,
    /// Round towards minus infinity.
    Floor,
    /// Round towards plus infinity.
    Ceil,
    /// Round towards zero.
    Trunc,
    /// Round to the nearest integer, ties to even.
    Nearest,
}

impl FUnOp {
    /// Every operation, for tests and generators that cover them all.
    pub const ALL: [FUnOp; 7] = [
        FUnOp::Neg,
        FUnOp::Abs,
        FUnOp::Sqrt,
        FUnOp::Floor,
        FUnOp::Ceil,
        FUnOp::Trunc,
        FUnOp::Nearest,
    ];
}

/// Float comparisons; the result is an `I8` that is 0 or 1. The *ordered*
/// ones are false when either operand is NaN, the *unordered* ones (`U…`)
/// true. `Eq` is IEEE `==`, `Une` IEEE `!=`; `-0.0 == +0.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FCmpOp {
    Eq,
    /// Ordered and not equal.
    One,
    Lt,
    Le,
    Gt,
    Ge,
    /// Neither operand is NaN.
    Ord,
    /// Either operand is NaN.
    Uno,
    Ueq,
    Une,
    Ult,
    Ule,
    Ugt,
    Uge,
}

impl FCmpOp {
    /// Every comparison, for tests and generators that cover them all.
    pub const ALL: [FCmpOp; 14] = [
        FCmpOp::Eq,
        FCmpOp::One,
        FCmpOp::Lt,
        FCmpOp::Le,
        FCmpOp::Gt,
        FCmpOp::Ge,
        FCmpOp::Ord,
        FCmpOp::Uno,
        FCmpOp::Ueq,
        FCmpOp::Une,
        FCmpOp::Ult,
        FCmpOp::Ule,
        FCmpOp::Ugt,
        FCmpOp::Uge,
    ];
}

/// Conversions that involve a float type; the node's type is the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FConvOp {
    /// Signed integer to float, rounded to nearest-even.
    SToF,
    /// Unsigned integer to float, rounded to nearest-even.
    UToF,
    /// Float to signed integer, rounding towards zero and saturating: NaN
    /// gives 0, values below or above the range its minimum or maximum.
    /// With [`Op::FFits`] a guest gets the checked form (see there).
    FToSSat,
    /// Float to unsigned integer, like `FToSSat` (negative values give 0).
    FToUSat,
    /// `F32` to `F64` (exact; a NaN gives the canonical NaN).
    Promote,
    /// `F64` to `F32`, rounded to nearest-even (a NaN gives the canonical NaN).
    Demote,
    /// The same bits as the other type of the same width (integer to float
    /// or float to integer).
    Bitcast,
}

impl FConvOp {
    /// Every conversion, for tests and generators that cover them all.
    pub const ALL: [FConvOp; 7] = [
        FConvOp::SToF,
        FConvOp::UToF,
        FConvOp::FToSSat,
        FConvOp::FToUSat,
        FConvOp::Promote,
        FConvOp::Demote,
        FConvOp::Bitcast,
    ];
}

/// What [`Op::FFits`] tests about a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FitsOp {
    /// Rounded towards zero, it is in the signed range (not NaN).
    TruncS,
    /// Rounded towards zero, it is in the unsigned range (not NaN).
    TruncU,
    /// It is an integer (no fraction, not NaN or infinite) in the signed range.
    ExactS,
    /// It is an integer in the unsigned range (`-0.0` counts as 0).
    ExactU,
}

impl FitsOp {
    /// Every test, for tests and generators that cover them all.
    pub const ALL: [FitsOp; 4] = [
        FitsOp::TruncS,
        FitsOp::TruncU,
        FitsOp::ExactS,
        FitsOp::ExactU,
    ];
}

/// What a node does. Immediates live here; inputs live on the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    // ---- control ----
    /// The entry. No inputs; type `Tuple`: `Proj 0` is control, `Proj 1` the
    /// initial memory, `Proj 2+i` parameter `i`.
    Start,
    /// A merge of forward control edges: inputs are the predecessors' controls.
    Region,
    /// A loop header: inputs `[entry, back]`. The back edge closes a cycle, so
    /// it is set after construction and is not hashed; `key` is a stable
    /// front-end key (e.g. the guest pc) that tells loops with the same entry apart.
    Loop { key: u64 },
    /// A two-way branch: inputs `[ctrl, cond]`, type `Tuple`:
    /// `Proj 0` is taken when `cond != 0`, `Proj 1` otherwise.
    If,
    /// Part `index` of a tuple-typed input: `[tuple]`.
    Proj { index: u32 },
    /// Leaves the function: inputs `[ctrl, mem, values...]`. A graph
    /// without a signature returns one value (the entry's exit code); one
    /// with a [`Signature`] ([`crate::Graph::signature`]) returns one value
    /// per result, of the result's type.
    Return,
    /// The graph's single sink: inputs are every `Return`.
    End,
    /// A speculation or check that leaves compiled code when it fails:
    /// inputs `[ctrl, cond, frame]`, type `Ctrl`. Control goes on when
    /// `cond != 0`; otherwise the function *deoptimizes*: it stops and hands
    /// the guest the state `frame` (a `FrameState`) describes. `reason` is
    /// the guest's own code for why the guard is there (e.g. "bounds" or
    /// "never taken"); vssa does not interpret it. Threaded on control like
    /// any effect, so nothing it protects is hoisted above it.
    Guard { reason: u32 },
    /// The guest's state at a point where a `Guard` may leave: inputs
    /// `[mem, v0, v1, ...]`, type `Frame`. `resume` is the guest's resume
    /// point (e.g. its pc); `v0..` are the values of the guest's live slots,
    /// in the guest's order, and `mem` is the memory state the guest sees
    /// there. Not code: it floats, and only `Guard`s use it.
    FrameState { resume: u64 },

    // ---- data ----
    /// A constant of a value type, normalized to its type's width (a float
    /// is its bit pattern: see [`crate::Type::normalize`]).
    Const { value: i64 },
    /// `[a, b]`, result of the same type.
    Bin(BinOp),
    /// `[a]`, result of the same type.
    Un(UnOp),
    /// `[a, b]`, result `I8` (0 or 1).
    Cmp(CmpOp),
    /// `[a]`, result of the node's type.
    Conv(ConvOp),
    /// `[cond, a, b]`: `a` if `cond != 0`, else `b`.
    Select,
    /// `[ptr, i64]`: a pointer moved by a byte count.
    PtrAdd,
    /// `[a, b]` of one float type, result of the same type.
    FBin(FBinOp),
    /// `[a]` of a float type, result of the same type.
    FUn(FUnOp),
    /// `[a, b]` of one float type, result `I8` (0 or 1).
    FCmp(FCmpOp),
    /// `[a]`, result of the node's type (see [`FConvOp`] for which pairs).
    FConv(FConvOp),
    /// `[a]` of a float type, result `I8`: 1 if `a` converts to an integer
    /// of `bits` bits as `op` says, else 0. The checked conversion a guest
    /// feeds to a `Guard` (deoptimizing instead of trapping) is
    /// `guard(fits_exact_s 32 x); ftosi_sat.i32 x`: behind the guard the
    /// saturating conversion is exact.
    FFits { op: FitsOp, bits: u8 },
    /// `[region, v0, v1, ...]`: one value per region input. On a `Loop`
    /// region the inputs are `[loop, entry, back]` and `back` is not hashed;
    /// `key` is a stable front-end key telling apart phis of one loop.
    Phi { key: u64 },

    // ---- memory and effects ----
    /// `[ctrl, mem, base]`: the value of the node's type at `base + offset`.
    Load { offset: i32 },
    /// `[ctrl, mem, base, value]`: writes `value` (its type gives the width)
    /// at `base + offset`; the result is the new memory state.
    Store { offset: i32 },
    /// `[ctrl, mem, args...]`: calls host function `func` of the embedder's
    /// table. Type `Tuple`: `Proj 0` is the new memory, `Proj 1..=n` the
    /// results (the table's entry has the signature; one with several
    /// results returns them through memory the caller provides, see the
    /// backend's `HostFn`).
    Call { func: u32 },
    /// A `Load` that the guest tagged with alias class `class` (never 0:
    /// class 0, "may alias anything", is the plain `Load`, so one access has
    /// one node). Accesses of two different nonzero classes never touch the
    /// same bytes; see [`crate::alias`].
    ClassLoad { offset: i32, class: u32 },
    /// A `Store` tagged with alias class `class` (never 0), like `ClassLoad`.
    ClassStore { offset: i32, class: u32 },
    /// `[ctrl, mem, args...]`: calls compiled function `callee`, whose
    /// address the embedder supplies when the code is placed (a function
    /// of the same module in the interpreter). `sig` is the callee's
    /// signature: the arguments have its parameter types; type `Tuple`:
    /// `Proj 0` is the new memory, `Proj 1..=n` the results. The callee may
    /// read and write any memory.
    CallDirect { callee: u32, sig: Signature },
    /// `[ctrl, mem, target, args...]`: calls the compiled function at
    /// address `target` (a `Ptr`) with signature `sig`; otherwise like
    /// `CallDirect`.
    CallIndirect { sig: Signature },

    // ---- frames of inlined code (see `crate::frame`) ----
    /// The frame of code inlined from another guest function: inputs
    /// `[mem, caller, v0, v1, ...]`, type `Frame`. Like `FrameState`, plus
    /// `caller`, the frame (a `FrameState` or `InlinedFrame`) the caller's
    /// interpreter frame resumes from once this one returns. A guard on it
    /// deoptimizes into a chain of interpreter frames, innermost first.
    InlinedFrame { resume: u64 },
    /// A frame slot holding a boxed guest value: `[v]` of type `I64` or
    /// `Ptr`, the node's type is `v`'s. Only frames (and `Materialize`) use
    /// it: it tells the guest how to read the slot, not code.
    Boxed,
    /// A guest object compiled code never allocated (its allocation was
    /// removed), to be allocated on deopt: `[f0, f1, ...]`, the field
    /// values, type `Ptr` (what the object is once it exists). `class` is
    /// the guest's own code for its kind. Only frames (and other
    /// `Materialize` nodes, for fields) use it.
    Materialize { class: u32 },
}

impl Op {
    /// The opcode tag of the canonical encoding (see `docs/architecture.md`).
    /// These numbers are frozen: changing one changes every address.
    pub fn tag(&self) -> u16 {
        match self {
            Op::Start => 1,
            Op::Region => 2,
            Op::Loop { .. } => 3,
            Op::If => 4,
            Op::Proj { .. } => 5,
            Op::Return => 6,
            Op::End => 7,
            Op::Guard { .. } => 8,
            Op::Const { .. } => 16,
            Op::Bin(_) => 17,
            Op::Un(_) => 18,
            Op::Cmp(_) => 19,
            Op::Conv(_) => 20,
            Op::Select => 21,
            Op::PtrAdd => 22,
            Op::Phi { .. } => 23,
            Op::FBin(_) => 24,
            Op::FUn(_) => 25,
            Op::FCmp(_) => 26,
            Op::FConv(_) => 27,
            Op::FFits { .. } => 28,
            Op::Load { .. } => 32,
            Op::Store { .. } => 33,
            Op::Call { .. } => 34,
            Op::ClassLoad { .. } => 35,
            Op::ClassStore { .. } => 36,
            Op::CallDirect { .. } => 37,
            Op::CallIndirect { .. } => 38,
            Op::FrameState { .. } => 40,
            Op::InlinedFrame { .. } => 41,
            Op::Boxed => 42,
            Op::Materialize { .. } => 43,
        }
    }

    /// Appends the immediates in canonical (little-endian) form.
    pub fn encode_immediates(&self, out: &mut crate::addr::Encoding) {
        let (bytes, len) = self.immediates();
        out.extend_from_slice(&bytes[..len]);
    }

    /// The immediates in canonical (little-endian) form: the first `len`
    /// bytes of the array (at most [`Op::MAX_IMMEDIATE_BYTES`]). On the
    /// stack: every node built is hashed, and hashing is most of building.
    pub fn immediates(&self) -> ([u8; Op::MAX_IMMEDIATE_BYTES], usize) {
        let mut out = [0u8; Op::MAX_IMMEDIATE_BYTES];
        let mut put = |at: usize, bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at + bytes.len()
        };
        let len = match *self {
            Op::Loop { key } | Op::Phi { key } => put(0, &key.to_le_bytes()),
            Op::Proj { index } => put(0, &index.to_le_bytes()),
            Op::Const { value } => put(0, &value.to_le_bytes()),
            Op::Bin(b) => put(0, &[b as u8]),
            Op::Un(u) => put(0, &[u as u8]),
            Op::Cmp(c) => put(0, &[c as u8]),
            Op::Conv(c) => put(0, &[c as u8]),
            Op::FBin(b) => put(0, &[b as u8]),
            Op::FUn(u) => put(0, &[u as u8]),
            Op::FCmp(c) => put(0, &[c as u8]),
            Op::FConv(c) => put(0, &[c as u8]),
            Op::FFits { op, bits } => put(0, &[op as u8, bits]),
            Op::Load { offset } | Op::Store { offset } => put(0, &offset.to_le_bytes()),
            Op::Call { func } => put(0, &func.to_le_bytes()),
            Op::CallDirect { callee, sig } => {
                let at = put(0, &callee.to_le_bytes());
                put(at, &sig.bits().to_le_bytes())
            }
            Op::CallIndirect { sig } => put(0, &sig.bits().to_le_bytes()),
            Op::ClassLoad { offset, class } | Op::ClassStore { offset, class } => {
                let at = put(0, &offset.to_le_bytes());
                put(at, &class.to_le_bytes())
            }
            Op::Guard { reason } => put(0, &reason.to_le_bytes()),
            Op::FrameState { resume } | Op::InlinedFrame { resume } => {
                put(0, &resume.to_le_bytes())
            }
            Op::Materialize { class } => put(0, &class.to_le_bytes()),
            Op::Boxed => 0,
            Op::Start | Op::Region | Op::If | Op::Return | Op::End | Op::Select | Op::PtrAdd => 0,
        };
        (out, len)
    }

    /// The most immediate bytes an operation has (`CallDirect`: a `u32`
    /// callee and a `u64` signature).
    pub const MAX_IMMEDIATE_BYTES: usize = 12;

    /// Control nodes form the CFG.
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            Op::Start
                | Op::Region
                | Op::Loop { .. }
                | Op::If
                | Op::Return
                | Op::End
                | Op::Guard { .. }
        )
    }

    /// Nodes that must stay in the block of their control input: effects,
    /// loads (they read the memory of a program point) and phis.
    pub fn is_pinned(&self) -> bool {
        matches!(
            self,
            Op::Load { .. }
                | Op::Store { .. }
                | Op::Call { .. }
                | Op::CallDirect { .. }
                | Op::CallIndirect { .. }
                | Op::Phi { .. }
                | Op::ClassLoad { .. }
                | Op::ClassStore { .. }
        )
    }

    /// Side-effecting nodes never merge by value numbering across
    /// memory states and are never removed unless the memory rules say so.
    pub fn has_effect(&self) -> bool {
        matches!(
            self,
            Op::Store { .. }
                | Op::Call { .. }
                | Op::ClassStore { .. }
                | Op::CallDirect { .. }
                | Op::CallIndirect { .. }
        )
    }

    /// A call of any kind (`Call`, `CallDirect`, `CallIndirect`): an effect
    /// that may read and write any memory, whose tuple has `Proj 0` the
    /// new memory and `Proj 1..` the results.
    pub fn is_call(&self) -> bool {
        matches!(
            self,
            Op::Call { .. } | Op::CallDirect { .. } | Op::CallIndirect { .. }
        )
    }

    /// The signature a call names (`CallDirect`, `CallIndirect`); `None`
    /// for host calls, whose signature is in the host table, and other ops.
    pub fn call_sig(&self) -> Option<Signature> {
        match *self {
            Op::CallDirect { sig, .. } | Op::CallIndirect { sig } => Some(sig),
            _ => None,
        }
    }

    /// Where a call's arguments start among its inputs (after control,
    /// memory and, for `CallIndirect`, the target); `None` for other ops.
    pub fn call_args_from(&self) -> Option<usize> {
        match self {
            Op::Call { .. } | Op::CallDirect { .. } => Some(2),
            Op::CallIndirect { .. } => Some(3),
            _ => None,
        }
    }

    /// The load of alias class `class` at `offset`: `Load` for class 0,
    /// `ClassLoad` otherwise.
    pub fn load(offset: i32, class: u32) -> Op {
        match class {
            0 => Op::Load { offset },
            _ => Op::ClassLoad { offset, class },
        }
    }

    /// The store of alias class `class` at `offset`: `Store` for class 0,
    /// `ClassStore` otherwise.
    pub fn store(offset: i32, class: u32) -> Op {
        match class {
            0 => Op::Store { offset },
            _ => Op::ClassStore { offset, class },
        }
    }

    /// A frame a guard may deoptimize to (`FrameState`, `InlinedFrame`).
    pub fn is_frame(&self) -> bool {
        matches!(self, Op::FrameState { .. } | Op::InlinedFrame { .. })
    }

    /// A load of any class (`Load`, `ClassLoad`).
    pub fn is_load(&self) -> bool {
        matches!(self, Op::Load { .. } | Op::ClassLoad { .. })
    }

    /// A store of any class (`Store`, `ClassStore`).
    pub fn is_store(&self) -> bool {
        matches!(self, Op::Store { .. } | Op::ClassStore { .. })
    }

    /// A load's or store's `(offset, alias class)`; `None` for other ops.
    pub fn access(&self) -> Option<(i32, u32)> {
        match *self {
            Op::Load { offset } | Op::Store { offset } => Some((offset, 0)),
            Op::ClassLoad { offset, class } | Op::ClassStore { offset, class } => {
                Some((offset, class))
            }
            _ => None,
        }
    }

    /// Short lower-case mnemonic used by the text printer and DOT export.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Region => "region",
            Op::Loop { .. } => "loop",
            Op::If => "if",
            Op::Proj { .. } => "proj",
            Op::Return => "return",
            Op::End => "end",
            Op::Guard { .. } => "guard",
            Op::Const { .. } => "const",
            Op::Bin(b) => match b {
                BinOp::Add => "add",
                BinOp::Sub => "sub",
                BinOp::Mul => "mul",
                BinOp::And => "and",
                BinOp::Or => "or",
                BinOp::Xor => "xor",
                BinOp::Shl => "shl",
                BinOp::Ushr => "ushr",
                BinOp::Sshr => "sshr",
                BinOp::Sdiv => "sdiv",
                BinOp::Udiv => "udiv",
                BinOp::Srem => "srem",
                BinOp::Urem => "urem",
            },
            Op::Un(UnOp::Neg) => "neg",
            Op::Un(UnOp::Not) => "not",
            Op::Cmp(c) => match c {
                CmpOp::Eq => "eq",
                CmpOp::Ne => "ne",
                CmpOp::Slt => "slt",
                CmpOp::Sle => "sle",
                CmpOp::Sgt => "sgt",
                CmpOp::Sge => "sge",
                CmpOp::Ult => "ult",
                CmpOp::Ule => "ule",
                CmpOp::Ugt => "ugt",
                CmpOp::Uge => "uge",
            },
            Op::Conv(ConvOp::Uext) => "uext",
            Op::Conv(ConvOp::Sext) => "sext",
            Op::Conv(ConvOp::Trunc) => "trunc",
            Op::Select => "select",
            Op::PtrAdd => "ptradd",
            Op::FBin(b) => match b {
                FBinOp::Add => "fadd",
                FBinOp::Sub => "fsub",
                FBinOp::Mul => "fmul",
                FBinOp::Div => "fdiv",
                FBinOp::Min => "fmin",
                FBinOp::Max => "fmax",
                FBinOp::Copysign => "fcopysign",
            },
            Op::FUn(u) => match u {
                FUnOp::Neg => "fneg",
                FUnOp::Abs => "fabs",
                FUnOp::Sqrt => "sqrt",
                FUnOp::Floor => "floor",
                FUnOp::Ceil => "ceil",
                FUnOp::Trunc => "ftrunc",
                FUnOp::Nearest => "nearest",
            },
            Op::FCmp(c) => match c {
                FCmpOp::Eq => "feq",
                FCmpOp::One => "fone",
                FCmpOp::Lt => "flt",
                FCmpOp::Le => "fle",
                FCmpOp::Gt => "fgt",
                FCmpOp::Ge => "fge",
                FCmpOp::Ord => "ford",
                FCmpOp::Uno => "funo",
                FCmpOp::Ueq => "fueq",
                FCmpOp::Une => "fune",
                FCmpOp::Ult => "fult",
                FCmpOp::Ule => "fule",
                FCmpOp::Ugt => "fugt",
                FCmpOp::Uge => "fuge",
            },
            Op::FConv(c) => match c {
                FConvOp::SToF => "sitof",
                FConvOp::UToF => "uitof",
                FConvOp::FToSSat => "ftosi_sat",
                FConvOp::FToUSat => "ftoui_sat",
                FConvOp::Promote => "fpromote",
                FConvOp::Demote => "fdemote",
                FConvOp::Bitcast => "bitcast",
            },
            Op::FFits { op, .. } => match op {
                FitsOp::TruncS => "fits_trunc_s",
                FitsOp::TruncU => "fits_trunc_u",
                FitsOp::ExactS => "fits_exact_s",
                FitsOp::ExactU => "fits_exact_u",
            },
            Op::Phi { .. } => "phi",
            Op::Load { .. } => "load",
            Op::Store { .. } => "store",
            Op::Call { .. } => "call",
            Op::CallDirect { .. } => "call_direct",
            Op::CallIndirect { .. } => "call_indirect",
            Op::ClassLoad { .. } => "cload",
            Op::ClassStore { .. } => "cstore",
            Op::FrameState { .. } => "framestate",
            Op::InlinedFrame { .. } => "inlinedframe",
            Op::Boxed => "boxed",
            Op::Materialize { .. } => "materialize",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())?;
        match *self {
            Op::Loop { key } | Op::Phi { key } => write!(f, " #{key}"),
            Op::Proj { index } => write!(f, " {index}"),
            Op::Const { value } => write!(f, " {value}"),
            Op::Load { offset } | Op::Store { offset } => write!(f, " {offset:+}"),
            Op::ClassLoad { offset, class } | Op::ClassStore { offset, class } => {
                write!(f, " {offset:+} c{class}")
            }
            Op::Call { func } => write!(f, " fn{func}"),
            Op::CallDirect { callee, sig } => write!(f, " u{callee} {sig}"),
            Op::CallIndirect { sig } => write!(f, " {sig}"),
            Op::Guard { reason } => write!(f, " r{reason}"),
            Op::FrameState { resume } | Op::InlinedFrame { resume } => write!(f, " @{resume}"),
            Op::Materialize { class } => write!(f, " k{class}"),
            Op::FFits { bits, .. } => write!(f, " {bits}"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CmpOp;
    use crate::eval::eval_cmp;
    use crate::types::Type;

    #[test]
    fn mirrored_swaps_operands_and_negated_is_the_complement() {
        let values = [i8::MIN as i64, -3, -1, 0, 1, 2, i8::MAX as i64];
        for op in CmpOp::ALL {
            for &a in &values {
                for &b in &values {
                    let holds = eval_cmp(op, Type::I8, a, b);
                    assert_eq!(
                        eval_cmp(op.mirrored(), Type::I8, b, a),
                        holds,
                        "{op:?} {a} {b}"
                    );
                    assert_eq!(
                        eval_cmp(op.negated(), Type::I8, a, b),
                        !holds,
                        "{op:?} {a} {b}"
                    );
                }
            }
        }
    }
}
