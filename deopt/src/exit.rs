//! The exit protocol: where a failing guard leaves its state, and how the
//! runtime reads it back.

use vssa::frame::{FrameLayout, Slot, SlotKind};
use vssa::{Addr, NodeId, Type};

/// How lowered guards hand over their frames: fixed per compiled function.
///
/// A failing guard stores slot `i` of its frame at
/// `ctx + buffer_offset + 8 * i` (integers sign-extended to 64 bits,
/// pointers as they are) and returns `first_exit + k` for the `k`-th guard
/// of the table, as a value of `exit_type`. The guest picks `first_exit`
/// above every value its functions return normally.
#[derive(Clone, Copy, Debug)]
pub struct DeoptAbi {
    /// A `Ptr` node of the graph (typically parameter 0): the context.
    pub ctx: NodeId,
    /// Byte offset of the deopt buffer in the context.
    pub buffer_offset: i32,
    /// Slots the buffer has; a frame with more values is an error.
    pub capacity: usize,
    /// The exit id of the first guard.
    pub first_exit: i64,
    /// The function's return type (what exit ids are returned as).
    pub exit_type: Type,
}

/// One guard of a compiled function, as the runtime needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeoptExit {
    /// The guard's content address: what deopt counters and refutations name.
    pub guard: Addr,
    /// The guard's `reason` immediate (the guest's own code).
    pub reason: u32,
    /// The (innermost) frame's resume point.
    pub resume: u64,
    /// The types of the deopt buffer's values, in order: for a frame with
    /// no callers and no objects, its slots.
    pub slots: Vec<Type>,
    /// The frames the buffer's values make, innermost first (one for a
    /// `FrameState`); decoded by [`ExitTable::frames`].
    pub frames: Vec<FrameLayout>,
}

impl DeoptExit {
    /// The exit of a guard whose frame is one `FrameState` of plain values
    /// of types `slots`.
    pub fn plain(guard: Addr, reason: u32, resume: u64, slots: Vec<Type>) -> DeoptExit {
        let frame = FrameLayout {
            resume,
            slots: slots
                .iter()
                .map(|&ty| Slot::Value {
                    ty,
                    kind: SlotKind::of(ty),
                })
                .collect(),
        };
        DeoptExit {
            guard,
            reason,
            resume,
            slots,
            frames: vec![frame],
        }
    }
}

/// One guest frame as deoptimization hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedFrame {
    pub resume: u64,
    /// The frame's slots in preorder, as [`FrameLayout::slots`] lists them.
    pub slots: Vec<SlotValue>,
}

/// One slot entry of a [`DecodedFrame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotValue {
    /// A value (normalized to `ty`; a float is its bits), read as `kind`.
    Value {
        ty: Type,
        kind: SlotKind,
        value: i64,
    },
    /// A new object to allocate; its `fields` field entries follow.
    Object { class: u32, fields: u32 },
}

/// Every exit of one compiled function, by exit id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitTable {
    pub first_exit: i64,
    pub exits: Vec<DeoptExit>,
}

impl ExitTable {
    /// The exit a returned code stands for, or `None` for a normal return.
    pub fn exit(&self, code: i64) -> Option<&DeoptExit> {
        let k = code.checked_sub(self.first_exit)?;
        self.exits.get(usize::try_from(k).ok()?)
    }

    /// The frame of exit `exit`, read from the deopt buffer's raw slots:
    /// each value normalized to its slot's type.
    pub fn frame<'a>(&self, exit: &'a DeoptExit, buffer: &[i64]) -> Frame<'a> {
        let values = exit
            .slots
            .iter()
            .zip(buffer)
            .map(|(t, &v)| t.normalize(v))
            .collect();
        Frame { exit, values }
    }

    /// The chain of frames of exit `exit`, innermost first, with the values
    /// read from the deopt buffer's raw slots (normalized to their types).
    pub fn frames(&self, exit: &DeoptExit, buffer: &[i64]) -> Vec<DecodedFrame> {
        let mut values = exit.slots.iter().zip(buffer).map(|(t, &v)| t.normalize(v));
        exit.frames
            .iter()
            .map(|f| DecodedFrame {
                resume: f.resume,
                slots: f
                    .slots
                    .iter()
                    .map(|&s| match s {
                        Slot::Value { ty, kind } => SlotValue::Value {
                            ty,
                            kind,
                            value: values.next().unwrap_or(0),
                        },
                        Slot::Object { class, fields } => SlotValue::Object { class, fields },
                    })
                    .collect(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.exits.len()
    }

    /// The table as bytes (kept with stored machine code, so that code
    /// placed in a later process can be run without rebuilding its graph).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(
            out,
            ((self.first_exit << 1) ^ (self.first_exit >> 63)) as u64,
        );
        put_varint(out, self.exits.len() as u64);
        for e in &self.exits {
            out.extend_from_slice(&e.guard.0);
            put_varint(out, u64::from(e.reason));
            put_varint(out, e.resume);
            put_varint(out, e.slots.len() as u64);
            out.extend(e.slots.iter().map(|t| t.tag()));
            put_varint(out, e.frames.len() as u64);
            for f in &e.frames {
                put_varint(out, f.resume);
                put_varint(out, f.slots.len() as u64);
                for s in &f.slots {
                    match *s {
                        Slot::Value { ty, kind } => {
                            out.push(ty.tag() | if kind == SlotKind::Boxed { BOXED } else { 0 })
                        }
                        Slot::Object { class, fields } => {
                            out.push(OBJECT);
                            put_varint(out, u64::from(class));
                            put_varint(out, u64::from(fields));
                        }
                    }
                }
            }
        }
    }

    /// Reads a table written by [`ExitTable::encode`], which must take all
    /// of `bytes`; `None` if they are not one (every count is checked
    /// against the bytes left, so nothing is allocated on a lie).
    pub fn decode(bytes: &[u8]) -> Option<ExitTable> {
        let mut at = 0usize;
        let varint = |at: &mut usize| -> Option<u64> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = *bytes.get(*at)?;
                *at += 1;
                v |= u64::from(b & 0x7f).checked_shl(shift)?;
                if b & 0x80 == 0 {
                    return Some(v);
                }
            }
            None
        };
        let z = varint(&mut at)?;
        let first_exit = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let n = usize::try_from(varint(&mut at)?).ok()?;
        let mut exits = Vec::with_capacity(n.min(bytes.len() / 19));
        for _ in 0..n {
            let guard = Addr(bytes.get(at..at + 16)?.try_into().ok()?);
            at += 16;
            let reason = u32::try_from(varint(&mut at)?).ok()?;
            let resume = varint(&mut at)?;
            let k = usize::try_from(varint(&mut at)?).ok()?;
            let tags = bytes.get(at..at.checked_add(k)?)?;
            at += k;
            let slots = tags
                .iter()
                .map(|&t| Type::ALL.get(usize::from(t)).copied())
                .collect::<Option<Vec<Type>>>()?;
            let nf = usize::try_from(varint(&mut at)?).ok()?;
            let mut frames = Vec::with_capacity(nf.min(bytes.len() - at));
            let mut typed = slots.iter();
            for _ in 0..nf {
                let resume = varint(&mut at)?;
                let ns = usize::try_from(varint(&mut at)?).ok()?;
                let mut layout = FrameLayout {
                    resume,
                    slots: Vec::with_capacity(ns.min(bytes.len() - at)),
                };
                for _ in 0..ns {
                    let b = *bytes.get(at)?;
                    at += 1;
                    let slot = match b {
                        OBJECT => Slot::Object {
                            class: u32::try_from(varint(&mut at)?).ok()?,
                            fields: u32::try_from(varint(&mut at)?).ok()?,
                        },
                        _ => {
                            let ty = *Type::ALL.get(usize::from(b & !BOXED))?;
                            let kind = if b & BOXED != 0 {
                                SlotKind::Boxed
                            } else {
                                SlotKind::of(ty)
                            };
                            // The layout's values are the buffer's, in order.
                            (typed.next() == Some(&ty)).then_some(())?;
                            Slot::Value { ty, kind }
                        }
                    };
                    layout.slots.push(slot);
                }
                frames.push(layout);
            }
            if frames.is_empty() || typed.next().is_some() {
                return None;
            }
            exits.push(DeoptExit {
                guard,
                reason,
                resume,
                slots,
                frames,
            });
        }
        (at == bytes.len()).then_some(ExitTable { first_exit, exits })
    }

    pub fn is_empty(&self) -> bool {
        self.exits.is_empty()
    }
}

/// A deoptimization as the guest sees it: which exit, and the slot values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub exit: &'a DeoptExit,
    pub values: Vec<i64>,
}

/// What a guest implements to resume after a deoptimization.
///
/// The guest's graph builder chose what a frame state holds (its resume
/// point and the slots it listed); this is the inverse: rebuild the
/// interpreter state from the frame, so the interpreter can go on exactly
/// where the compiled code stopped. Memory (a tape, a heap) needs no
/// rebuilding: every store before the guard has run.
pub trait Guest {
    /// The interpreter's state (e.g. pc and registers).
    type State;
    /// Why a frame cannot be turned into a state (a slot out of range...).
    type Error;
    fn resume_state(&self, frame: &Frame<'_>) -> Result<Self::State, Self::Error>;
}

/// Slot entry bytes of the encoded layout: a type tag, with [`BOXED`] set
/// for a boxed value, or one of the object markers.
const BOXED: u8 = 0x40;
const OBJECT: u8 = 0x80;

/// An unsigned LEB128 number.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_ids_map_back_to_exits_and_values_are_normalized() {
        let e = DeoptExit::plain(Addr([1; 16]), 3, 42, vec![Type::I8, Type::I64]);
        let t = ExitTable {
            first_exit: 2,
            exits: vec![e.clone()],
        };
        assert_eq!(t.exit(0), None);
        assert_eq!(t.exit(1), None);
        assert_eq!(t.exit(2), Some(&e));
        assert_eq!(t.exit(3), None);
        assert_eq!(t.exit(i64::MIN), None);
        let f = t.frame(&e, &[255, -7]);
        assert_eq!(f.values, vec![-1, -7]);
    }

    #[test]
    fn tables_round_trip_through_bytes_and_damage_is_refused() {
        let t = ExitTable {
            first_exit: -3,
            exits: vec![
                DeoptExit::plain(
                    Addr([9; 16]),
                    70000,
                    u64::MAX,
                    vec![Type::Ptr, Type::F64, Type::I8],
                ),
                DeoptExit::plain(Addr([1; 16]), 0, 0, vec![]),
                DeoptExit {
                    guard: Addr([2; 16]),
                    reason: 1,
                    resume: 5,
                    slots: vec![Type::I64, Type::F32],
                    frames: vec![
                        FrameLayout {
                            resume: 5,
                            slots: vec![
                                Slot::Object {
                                    class: 300,
                                    fields: 1,
                                },
                                Slot::Value {
                                    ty: Type::I64,
                                    kind: SlotKind::Boxed,
                                },
                            ],
                        },
                        FrameLayout {
                            resume: 1 << 40,
                            slots: vec![
                                Slot::Object {
                                    class: 0,
                                    fields: 0,
                                },
                                Slot::Value {
                                    ty: Type::F32,
                                    kind: SlotKind::Float,
                                },
                            ],
                        },
                    ],
                },
            ],
        };
        let mut bytes = vec![];
        t.encode(&mut bytes);
        assert_eq!(ExitTable::decode(&bytes), Some(t));
        for n in 0..bytes.len() {
            assert_eq!(ExitTable::decode(&bytes[..n]), None, "prefix {n}");
        }
        bytes.push(0);
        assert_eq!(ExitTable::decode(&bytes), None, "a byte too many");
    }
}
