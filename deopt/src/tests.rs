//! Guards before and after lowering, and speculation, checked with the LIR
//! interpreter.

use super::*;
use std::collections::BTreeSet;
use vssa::interp::{eval, InterpError, Memory};
use vssa::{BinOp, CmpOp, Graph, NodeId, Op, Type};

const BASE: i64 = 0x1000;

/// `f(ctx, x) = x + 1`, guarded by `x < 10` with frame `@7 [x]`.
fn guarded() -> (Graph, NodeId) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.param(e.start, 1, Type::I64).unwrap();
    let ten = g.iconst(Type::I64, 10).unwrap();
    let ok = g.cmp(CmpOp::Slt, x, ten).unwrap();
    let frame = g.frame_state(7, e.mem, &[x]).unwrap();
    let ctrl = g.guard(e.ctrl, ok, frame, 5).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let y = g.bin(BinOp::Add, x, one).unwrap();
    let r = g.ret(ctrl, e.mem, y).unwrap();
    g.finish(&[r]).unwrap();
    (g, ctx)
}

fn run(g: &Graph, x: i64, mem: &mut Memory) -> Result<i64, InterpError> {
    eval(g, &[BASE, x], mem, &mut |_, _| 0, 10_000)
}

fn abi(ctx: NodeId, capacity: usize) -> DeoptAbi {
    DeoptAbi {
        ctx,
        buffer_offset: 16,
        capacity,
        first_exit: 100,
        exit_type: Type::I64,
    }
}

#[test]
fn a_failing_guard_deoptimizes_to_its_frame() {
    let (g, _) = guarded();
    let mut mem = Memory::new(BASE, 64);
    assert_eq!(run(&g, 3, &mut mem), Ok(4));
    match run(&g, 20, &mut mem) {
        Err(InterpError::Deopt { resume, values, .. }) => {
            assert_eq!(resume, 7);
            assert_eq!(values, vec![20]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn lowered_guards_write_the_frame_and_return_the_exit_id() {
    let (mut g, ctx) = guarded();
    let guard_addr = g
        .live_nodes()
        .into_iter()
        .find(|&n| matches!(g.op(n), vssa::Op::Guard { .. }))
        .map(|n| g.addr(n))
        .unwrap();
    let table = lower_guards(&mut g, &abi(ctx, 2)).unwrap();
    assert!(vssa::verify::verify(&g).is_ok());
    assert!(!g.live_nodes().iter().any(|&n| matches!(
        g.op(n),
        vssa::Op::Guard { .. } | vssa::Op::FrameState { .. }
    )));
    assert_eq!(table.len(), 1);
    let exit = table.exit(100).unwrap();
    assert_eq!(exit.guard, guard_addr);
    assert_eq!((exit.reason, exit.resume), (5, 7));
    assert_eq!(exit.slots, vec![Type::I64]);
    let mut mem = Memory::new(BASE, 64);
    assert_eq!(run(&g, 3, &mut mem), Ok(4));
    assert_eq!(run(&g, -20, &mut mem), Ok(-19));
    assert_eq!(run(&g, 20, &mut mem), Ok(100));
    let slot = i64::from_le_bytes(mem.bytes()[16..24].try_into().unwrap());
    assert_eq!(slot, 20);
    let frame = table.frame(exit, &[slot]);
    assert_eq!(frame.values, vec![20]);
    // The same graph always gets the same table.
    let (mut again, ctx) = guarded();
    assert_eq!(lower_guards(&mut again, &abi(ctx, 2)).unwrap(), table);
}

#[test]
fn a_frame_larger_than_the_buffer_is_an_error() {
    let (mut g, ctx) = guarded();
    let e = lower_guards(&mut g, &abi(ctx, 0)).unwrap_err();
    assert!(
        matches!(
            e,
            LowerError::FrameTooLarge {
                slots: 1,
                capacity: 0,
                ..
            }
        ),
        "{e}"
    );
}

/// `f(ctx, x) = (x != 0 ? store 9 at ctx : nothing); return load ctx`,
/// with a site on the branch whose true side is never taken.
fn diamond() -> (Graph, NodeId, BranchSite) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.param(e.start, 1, Type::I64).unwrap();
    let frame = g.frame_state(3, e.mem, &[x]).unwrap();
    let (t, f) = g.branch(e.ctrl, x).unwrap();
    let nine = g.iconst(Type::I64, 9).unwrap();
    let stored = g.store(t, e.mem, ctx, 0, nine).unwrap();
    let merge = g.region(&[f, t]).unwrap();
    let mem = g.phi(merge, Type::Mem, &[e.mem, stored]).unwrap();
    let v = g.load(merge, mem, ctx, 0, Type::I64).unwrap();
    let r = g.ret(merge, mem, v).unwrap();
    g.finish(&[r]).unwrap();
    let branch = g.input(t, 0);
    let site = BranchSite {
        branch,
        taken: 1,
        merge,
        frame,
        reason: 9,
    };
    (g, ctx, site)
}

#[test]
fn speculation_turns_the_untaken_side_into_a_guard() {
    let (mut g, ctx, site) = diamond();
    let mut mem = Memory::new(BASE, 64);
    assert_eq!(run(&g, 1, &mut mem), Ok(9));
    let none = BTreeSet::new();
    let s = speculate_never_taken(&mut g, &[site], &|_| true, &none).unwrap();
    assert_eq!((s.guards.len(), s.refuted, s.skipped), (1, 0, 0));
    assert!(vssa::verify::verify(&g).is_ok());
    let mut mem = Memory::new(BASE, 64);
    assert_eq!(run(&g, 0, &mut mem), Ok(0));
    match run(&g, 1, &mut mem) {
        Err(InterpError::Deopt { resume, values, .. }) => {
            assert_eq!((resume, values), (3, vec![1]))
        }
        other => panic!("{other:?}"),
    }
    // The store on the untaken side is gone from the code.
    assert!(!g
        .live_nodes()
        .iter()
        .any(|&n| matches!(g.op(n), vssa::Op::Store { .. })));
    // Lowered, it is an exit like any other.
    let table = lower_guards(&mut g, &abi(ctx, 1)).unwrap();
    assert_eq!(table.exits[0].reason, 9);
    let mut mem = Memory::new(BASE, 64);
    assert_eq!(run(&g, 1, &mut mem), Ok(100));
}

#[test]
fn refuted_and_unchosen_sites_keep_the_general_code() {
    let (mut g, _, site) = diamond();
    let s = speculate_never_taken(&mut g, &[site], &|_| false, &BTreeSet::new()).unwrap();
    assert!(s.guards.is_empty());
    assert!(g.replacements().is_empty());
    // Refuted: find the guard's address by speculating on a copy.
    let (mut probe, _, site2) = diamond();
    let made = speculate_never_taken(&mut probe, &[site2], &|_| true, &BTreeSet::new()).unwrap();
    let refuted: BTreeSet<_> = made.guards.iter().map(|&n| probe.addr(n)).collect();
    let (mut g, _, site) = diamond();
    let s = speculate_never_taken(&mut g, &[site], &|_| true, &refuted).unwrap();
    assert_eq!((s.guards.len(), s.refuted), (0, 1));
    assert!(g.replacements().is_empty());
    let mut mem = Memory::new(BASE, 64);
    assert_eq!(run(&g, 1, &mut mem), Ok(9));
}

/// Control folding took the false side of `if 0` at the entry; a guard on
/// the same constant 0 now sits at the entry. Lowering it must not reuse
/// the folded `If` (whose false side stands for the entry now): its branch
/// needs both sides.
#[test]
fn a_guard_like_a_folded_branch_gets_a_branch_of_its_own() {
    let text = "\
n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 ptr = proj 2 n0
n4 i64 = proj 3 n0
n5 i8 = const 0
n6 tuple = if n1, n5
n7 ctrl = proj 0 n6
n8 ctrl = proj 1 n6
n9 frame = framestate @4 n2, n4
n10 ctrl = guard r1 n8, n5, n9
n11 ctrl = region n7, n10
n12 i64 = const 1
n13 ctrl = return n11, n2, n12
n14 ctrl = end n13
";
    let mut g = vssa::parse(text).unwrap();
    let ctx = NodeId::from_index(3);
    let folded = vssa::fold_control(&mut g).unwrap();
    assert_eq!((folded.branches, folded.regions), (1, 1));
    let table = lower_guards(&mut g, &abi(ctx, 2)).unwrap();
    vssa::verify(&g).unwrap();
    let ifs: Vec<NodeId> = g
        .live_nodes()
        .into_iter()
        .filter(|&n| g.op(n) == Op::If)
        .collect();
    assert_eq!(ifs.len(), 1, "{}", vssa::print::print(&g));
    let projs = g
        .live_nodes()
        .into_iter()
        .filter(|&n| matches!(g.op(n), Op::Proj { .. }) && g.input(n, 0) == ifs[0])
        .count();
    assert_eq!(projs, 2, "{}", vssa::print::print(&g));
    // It always deoptimizes, with its frame.
    let mut mem = Memory::new(BASE, 64);
    assert_eq!(run(&g, 42, &mut mem), Ok(100));
    assert_eq!(table.exits.len(), 1);
    assert_eq!(mem.bytes()[16..24], 42i64.to_le_bytes());
}

/// A caller `g(ctx, a)` that inlined `f(b) = b + 1` at `b = a * 2`: `f`
/// guards `b < 100` with its own frame (`@3`: `b`, `b` as an `f64`, `a`
/// boxed, and an object of class 7 whose allocation was removed, fields
/// `b` and `a`), linked to the caller's frame at the call (`@20`: `a` and
/// that object again, laid out anew).
fn inlined_callee() -> (Graph, NodeId) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let a = g.param(e.start, 1, Type::I64).unwrap();
    let two = g.iconst(Type::I64, 2).unwrap();
    let b = g.bin(BinOp::Mul, a, two).unwrap();
    let obj = g.materialize(7, &[b, a]).unwrap();
    let caller = g.frame_state(20, e.mem, &[a, obj]).unwrap();
    let h = g.fconv(vssa::FConvOp::SToF, Type::F64, b).unwrap();
    let boxed = g.boxed(a).unwrap();
    let frame = g
        .inlined_frame(3, e.mem, caller, &[b, h, boxed, obj])
        .unwrap();
    let hundred = g.iconst(Type::I64, 100).unwrap();
    let ok = g.cmp(CmpOp::Slt, b, hundred).unwrap();
    let ctrl = g.guard(e.ctrl, ok, frame, 1).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let r = g.bin(BinOp::Add, b, one).unwrap();
    let ret = g.ret(ctrl, e.mem, r).unwrap();
    g.finish(&[ret]).unwrap();
    (g, ctx)
}

#[test]
fn an_inlined_callee_deoptimizes_into_two_frames() {
    use crate::exit::SlotValue;
    use vssa::frame::SlotKind;
    let (g, _) = inlined_callee();
    vssa::verify::verify(&g).unwrap();
    // The text form keeps the chain, the boxed slot and the object.
    let text = vssa::print::print(&g);
    let back = vssa::parse(&text).unwrap();
    assert_eq!(vssa::live_graph_key(&back), vssa::live_graph_key(&g));
    vssa::verify::verify(&back).unwrap();
    let mut mem = Memory::new(BASE, 128);
    assert_eq!(run(&g, 10, &mut mem), Ok(21));
    // 60 * 2 = 120 fails the guard: the buffer's values, innermost frame
    // first, objects by their fields: b, h, a (boxed), b, a (the object's
    // fields), a (caller), and the object's fields again (each occurrence
    // of a `Materialize` is an object of its own).
    let h = vssa::float::bits_of_f64(120.0);
    let want = vec![120, h, 60, 120, 60, 60, 120, 60];
    match run(&g, 60, &mut mem) {
        Err(InterpError::Deopt { resume, values, .. }) => {
            assert_eq!((resume, &values), (3, &want));
        }
        other => panic!("{other:?}"),
    }
    // Lowered: the exit writes the same values, and the table decodes them
    // into the two frames.
    let (mut lowered, ctx) = inlined_callee();
    let table = lower_guards(&mut lowered, &abi(ctx, 8)).unwrap();
    vssa::verify::verify(&lowered).unwrap();
    let mut mem = Memory::new(BASE, 128);
    assert_eq!(run(&lowered, 60, &mut mem), Ok(100));
    let buffer: Vec<i64> = (0..8)
        .map(|i| i64::from_le_bytes(mem.bytes()[16 + 8 * i..24 + 8 * i].try_into().unwrap()))
        .collect();
    assert_eq!(buffer, want);
    let exit = table.exit(100).unwrap();
    assert_eq!(exit.resume, 3);
    let frames = table.frames(exit, &buffer);
    let val = |ty, kind, value| SlotValue::Value { ty, kind, value };
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].resume, 3);
    assert_eq!(
        frames[0].slots,
        vec![
            val(Type::I64, SlotKind::Int, 120),
            val(Type::F64, SlotKind::Float, h),
            val(Type::I64, SlotKind::Boxed, 60),
            SlotValue::Object {
                class: 7,
                fields: 2
            },
            val(Type::I64, SlotKind::Int, 120),
            val(Type::I64, SlotKind::Int, 60),
        ]
    );
    assert_eq!(frames[1].resume, 20);
    assert_eq!(
        frames[1].slots,
        vec![
            val(Type::I64, SlotKind::Int, 60),
            SlotValue::Object {
                class: 7,
                fields: 2
            },
            val(Type::I64, SlotKind::Int, 120),
            val(Type::I64, SlotKind::Int, 60),
        ]
    );
    // The table survives its byte form.
    let mut bytes = Vec::new();
    table.encode(&mut bytes);
    assert_eq!(ExitTable::decode(&bytes), Some(table));
}

#[test]
fn frame_annotations_are_only_for_frames() {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let a = g.param(e.start, 0, Type::I64).unwrap();
    let boxed = g.boxed(a).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let bad = g.bin(BinOp::Add, boxed, one).unwrap();
    let r = g.ret(e.ctrl, e.mem, bad).unwrap();
    g.finish(&[r]).unwrap();
    let errs = format!("{:?}", vssa::verify::verify(&g).unwrap_err());
    assert!(errs.contains("only frame slots may use"), "{errs}");
}

#[test]
fn guards_in_functions_with_signatures_are_refused() {
    let mut g = Graph::new();
    let sig = vssa::Signature::new(&[Type::Ptr, Type::I64], &[Type::I64]).unwrap();
    g.set_signature(sig);
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.param(e.start, 1, Type::I64).unwrap();
    let frame = g.frame_state(7, e.mem, &[x]).unwrap();
    let ctrl = g.guard(e.ctrl, x, frame, 0).unwrap();
    let r = g.ret_values(ctrl, e.mem, &[x]).unwrap();
    g.finish(&[r]).unwrap();
    let abi = DeoptAbi {
        ctx,
        buffer_offset: 0,
        capacity: 4,
        first_exit: 16,
        exit_type: Type::I32,
    };
    let e = lower_guards(&mut g, &abi).unwrap_err();
    assert!(e.to_string().contains("function with a signature"), "{e}");
}
