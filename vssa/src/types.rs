//! Value types carried by every LIR node.

use std::fmt;

/// The type of a node's value.
///
/// Integers are sized; `Ptr` is a machine address (64 bits on every target
/// vssa supports). `Ctrl`, `Mem` and `Tuple` are the non-value types of the
/// sea of nodes: control flow, the memory/effect chain, and multi-result
/// nodes whose parts are taken apart by `Proj`. `Frame` is the type of a
/// `FrameState`: a guest's state at a deoptimization point, used only by
/// `Guard`s. `F32` and `F64` are IEEE-754 binary32 and binary64 values;
/// every value (integer or float) is carried as its bit pattern in an `i64`
/// (see [`Type::normalize`]), so a float constant is exact to the bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    Ctrl,
    Mem,
    Tuple,
    I8,
    I16,
    I32,
    I64,
    Ptr,
    Frame,
    F32,
    F64,
}

impl Type {
    /// All types, in encoding-tag order.
    pub const ALL: [Type; 11] = [
        Type::Ctrl,
        Type::Mem,
        Type::Tuple,
        Type::I8,
        Type::I16,
        Type::I32,
        Type::I64,
        Type::Ptr,
        Type::Frame,
        Type::F32,
        Type::F64,
    ];

    /// The byte that stands for this type in the canonical encoding.
    pub fn tag(self) -> u8 {
        match self {
            Type::Ctrl => 0,
            Type::Mem => 1,
            Type::Tuple => 2,
            Type::I8 => 3,
            Type::I16 => 4,
            Type::I32 => 5,
            Type::I64 => 6,
            Type::Ptr => 7,
            Type::Frame => 8,
            Type::F32 => 9,
            Type::F64 => 10,
        }
    }

    /// Integer, pointer and float types are values that live in registers.
    pub fn is_value(self) -> bool {
        self.bits().is_some()
    }

    /// Sized integers (not pointers).
    pub fn is_int(self) -> bool {
        matches!(self, Type::I8 | Type::I16 | Type::I32 | Type::I64)
    }

    /// Integers and pointers: what the integer operations (`Bin`, `Un`,
    /// `Cmp`) take.
    pub fn is_int_or_ptr(self) -> bool {
        self.is_int() || self == Type::Ptr
    }

    /// `F32` and `F64`.
    pub fn is_float(self) -> bool {
        matches!(self, Type::F32 | Type::F64)
    }

    /// The integer type of the same width as a float type (what a bit cast
    /// gives), `None` for other types.
    pub fn float_bits_int(self) -> Option<Type> {
        match self {
            Type::F32 => Some(Type::I32),
            Type::F64 => Some(Type::I64),
            _ => None,
        }
    }

    /// Width in bits of a value type, `None` for control, memory and tuples.
    pub fn bits(self) -> Option<u32> {
        match self {
            Type::I8 => Some(8),
            Type::I16 => Some(16),
            Type::I32 | Type::F32 => Some(32),
            Type::I64 | Type::Ptr | Type::F64 => Some(64),
            _ => None,
        }
    }

    /// Width in bytes of a value type (what a load or store of it moves).
    pub fn bytes(self) -> Option<u32> {
        self.bits().map(|b| b / 8)
    }

    /// Wraps `v` to this type's width, sign-extended back to `i64`.
    ///
    /// Constants are stored in this normal form so that equal values of a
    /// type always hash equal (e.g. `I8` 255 and -1 are the same constant).
    /// A float is its IEEE bit pattern (`F32`: the 32 bits sign-extended,
    /// like an `I32`), so `-0.0` and `0.0`, or two NaNs with different
    /// payloads, are different constants, and a bit cast to the integer of
    /// the same width changes nothing.
    pub fn normalize(self, v: i64) -> i64 {
        match self {
            Type::I8 => v as i8 as i64,
            Type::I16 => v as i16 as i64,
            Type::I32 | Type::F32 => v as i32 as i64,
            _ => v,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Type::Ctrl => "ctrl",
            Type::Mem => "mem",
            Type::Tuple => "tuple",
            Type::I8 => "i8",
            Type::I16 => "i16",
            Type::I32 => "i32",
            Type::I64 => "i64",
            Type::Ptr => "ptr",
            Type::Frame => "frame",
            Type::F32 => "f32",
            Type::F64 => "f64",
        };
        f.write_str(s)
    }
}
