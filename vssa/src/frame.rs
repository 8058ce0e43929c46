//! Deoptimization frames: chains of guest frames, typed slots, and objects
//! to materialize.
//!
//! A guard leaves with a frame: a `FrameState` (one interpreter frame) or an
//! `InlinedFrame`, the frame of code inlined from another guest function,
//! which links to its caller's frame. Deoptimizing rebuilds the whole chain
//! of interpreter frames, innermost first.
//!
//! A slot is a value whose type says how to read it (an integer, a float,
//! a pointer), or a `Boxed` value (a boxed guest value the guest decodes
//! itself), or a `Materialize` node: an object whose allocation compiled
//! code left out, with its fields (which may be objects in turn), which the
//! guest allocates on deopt.
//!
//! [`frame_chain`] lays a frame out as the deopt buffer holds it: the
//! plain values of the innermost frame's slots first, then its caller's,
//! and so on, objects by their fields in preorder. The interpreter hands
//! over the same flat values (`interp::InterpError::Deopt`), so a frame
//! decodes the same whichever ran.
//!
//! Every occurrence of a `Materialize` node is an object of its own. Nodes
//! are value-numbered, so two objects with equal classes and fields are one
//! node; a layout that made a node's occurrences one object would change
//! meaning as the optimizer folds fields (the `lir` fuzzer found exactly
//! that). One object referenced from two slots is therefore not expressible
//! yet: it needs an identity immediate that value numbering keeps apart.

use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Type;

/// How the guest reads a slot's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Int,
    Float,
    Ptr,
    /// A boxed guest value (`Op::Boxed`).
    Boxed,
}

impl SlotKind {
    /// The kind of a plain value of type `ty`.
    pub fn of(ty: Type) -> SlotKind {
        if ty.is_float() {
            SlotKind::Float
        } else if ty == Type::Ptr {
            SlotKind::Ptr
        } else {
            SlotKind::Int
        }
    }
}

/// One entry of a frame's slots, in preorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The next value of the buffer.
    Value { ty: Type, kind: SlotKind },
    /// A new object to allocate, of the guest's class `class`, whose
    /// `fields` field entries follow (each a slot in turn).
    Object { class: u32, fields: u32 },
}

/// One guest frame: where it resumes and its slots, in preorder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameLayout {
    pub resume: u64,
    pub slots: Vec<Slot>,
}

/// A frame laid out for the deopt buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameChain {
    /// The innermost frame's memory state (what the guard's exit stores on).
    pub mem: NodeId,
    /// The frames, innermost first.
    pub frames: Vec<FrameLayout>,
    /// The nodes whose values the buffer holds, in order (`Boxed` nodes
    /// stand for their input).
    pub values: Vec<NodeId>,
}

/// How many slot entries one chain may have: objects shared in the graph
/// are laid out once per occurrence, so a small graph can describe a huge
/// frame, and a frame this large is no frame.
pub const MAX_FRAME_ENTRIES: usize = 1 << 16;

/// The layout of the frame `frame` (a `FrameState` or `InlinedFrame`) and
/// its callers. Errors name what is malformed; nothing here recurses.
pub fn frame_chain(g: &Graph, frame: NodeId) -> Result<FrameChain, &'static str> {
    if !g.op(frame).is_frame() || g.arity(frame) == 0 {
        return Err("a frame input that is not a frame state");
    }
    let mut out = FrameChain {
        mem: g.input(frame, 0),
        frames: Vec::new(),
        values: Vec::new(),
    };
    let mut entries = 0usize;
    let mut cur = Some(frame);
    let mut stack: Vec<NodeId> = Vec::new();
    while let Some(f) = cur {
        let (resume, first, caller) = match g.op(f) {
            Op::FrameState { resume } if g.arity(f) >= 1 => (resume, 1, None),
            Op::InlinedFrame { resume } if g.arity(f) >= 2 => (resume, 2, Some(g.input(f, 1))),
            _ => return Err("a frame input that is not a frame state"),
        };
        let mut layout = FrameLayout {
            resume,
            slots: Vec::new(),
        };
        stack.extend((first..g.arity(f)).rev().map(|i| g.input(f, i)));
        while let Some(n) = stack.pop() {
            entries += 1;
            if entries > MAX_FRAME_ENTRIES {
                return Err("a frame with too many slots");
            }
            let slot = match g.op(n) {
                Op::Materialize { class } => {
                    let fields = g.arity(n);
                    stack.extend((0..fields).rev().map(|i| g.input(n, i)));
                    Slot::Object {
                        class,
                        fields: fields as u32,
                    }
                }
                Op::Boxed if g.arity(n) == 1 => {
                    out.values.push(g.input(n, 0));
                    Slot::Value {
                        ty: g.ty(n),
                        kind: SlotKind::Boxed,
                    }
                }
                _ if g.ty(n).is_value() => {
                    out.values.push(n);
                    Slot::Value {
                        ty: g.ty(n),
                        kind: SlotKind::of(g.ty(n)),
                    }
                }
                _ => return Err("a frame slot that is not a value"),
            };
            layout.slots.push(slot);
        }
        out.frames.push(layout);
        cur = caller;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inlined_frame_lays_out_innermost_first_objects_in_preorder() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let y = g.param(e.start, 1, Type::F64).unwrap();
        let p = g.param(e.start, 2, Type::Ptr).unwrap();
        let b = g.boxed(x).unwrap();
        let inner_obj = g.materialize(3, &[y]).unwrap();
        let obj = g.materialize(7, &[x, inner_obj]).unwrap();
        let outer = g.frame_state(10, e.mem, &[b, p, obj]).unwrap();
        let inner = g.inlined_frame(2, e.mem, outer, &[y, obj]).unwrap();
        let c = frame_chain(&g, inner).unwrap();
        assert_eq!(c.mem, e.mem);
        let v = |ty| Slot::Value {
            ty,
            kind: SlotKind::of(ty),
        };
        assert_eq!(
            c.frames,
            vec![
                FrameLayout {
                    resume: 2,
                    slots: vec![
                        v(Type::F64),
                        Slot::Object {
                            class: 7,
                            fields: 2
                        },
                        v(Type::I64),
                        Slot::Object {
                            class: 3,
                            fields: 1
                        },
                        v(Type::F64),
                    ],
                },
                FrameLayout {
                    resume: 10,
                    slots: vec![
                        Slot::Value {
                            ty: Type::I64,
                            kind: SlotKind::Boxed
                        },
                        v(Type::Ptr),
                        Slot::Object {
                            class: 7,
                            fields: 2
                        },
                        v(Type::I64),
                        Slot::Object {
                            class: 3,
                            fields: 1
                        },
                        v(Type::F64),
                    ],
                },
            ]
        );
        assert_eq!(c.values, vec![y, x, y, x, p, x, y]);
    }

    #[test]
    fn shared_objects_are_bounded_and_bad_frames_are_errors() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let mut o = g.materialize(0, &[x]).unwrap();
        for k in 1..8 {
            o = g.materialize(k, &[o, o]).unwrap();
        }
        let f = g.frame_state(1, e.mem, &[o]).unwrap();
        let c = frame_chain(&g, f).unwrap();
        assert_eq!(c.frames[0].slots.len(), 255 + 128, "255 objects, 128 x");
        for k in 8..200 {
            o = g.materialize(k, &[o, o]).unwrap();
        }
        let f = g.frame_state(1, e.mem, &[o]).unwrap();
        assert_eq!(frame_chain(&g, f), Err("a frame with too many slots"));
        assert_eq!(
            frame_chain(&g, x),
            Err("a frame input that is not a frame state")
        );
    }
}
