//! End-to-end tests: hand-built graphs and schedules, compiled with the
//! Cranelift verifier on, run on Rust buffers.
//!
//! Values come from memory (or the context pointer) wherever possible, so
//! the tests mean the same whether or not the peephole optimizer folds
//! constants.

use super::*;
use crate::host::HostFn;
use vssa::{BinOp, CmpOp, ConvOp, Graph, NodeId, Op, Type, UnOp};
use vssa_schedule::{Block, BlockId, Schedule, Terminator};

fn jit() -> Jit {
    Jit::new(JitOptions {
        verify: true,
        capture_clif: true,
        ..JitOptions::default()
    })
    .unwrap()
}

fn block(
    head: NodeId,
    phis: &[NodeId],
    nodes: Vec<NodeId>,
    preds: &[u32],
    term: Terminator,
) -> Block {
    Block {
        head,
        phis: phis.to_vec(),
        nodes,
        preds: preds.iter().map(|&p| BlockId(p)).collect(),
        term,
        loop_depth: 0,
    }
}

fn ret_term(g: &Graph, ret: NodeId) -> Terminator {
    Terminator::Return {
        ret,
        value: g.input(ret, 2),
    }
}

/// A one-block schedule for a straight-line graph: every live non-control
/// node in construction order (which is a topological order).
fn straight(g: &Graph, head: NodeId, ret: NodeId) -> Schedule {
    let nodes = g
        .live_nodes()
        .into_iter()
        .filter(|&n| g.ty(n) != Type::Ctrl && g.op(n) != Op::Start)
        .collect();
    Schedule {
        blocks: vec![block(head, &[], nodes, &[], ret_term(g, ret))],
    }
}

/// Runs `code` on `buf`.
fn run(jit: &Jit, code: &CompiledCode, buf: &mut [u8]) -> u32 {
    // SAFETY: every graph in these tests accesses only offsets inside the
    // buffer it is run on, and calls only host functions of matching type.
    unsafe { jit.call(code, buf.as_mut_ptr()).unwrap() }
}

fn mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn write(buf: &mut [u8], at: usize, ty: Type, v: i64) {
    let n = ty.bytes().unwrap() as usize;
    buf[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
}

fn read(buf: &[u8], at: usize, ty: Type) -> i64 {
    let n = ty.bytes().unwrap() as usize;
    let mut b = [0u8; 8];
    b[..n].copy_from_slice(&buf[at..at + n]);
    ty.normalize(i64::from_le_bytes(b))
}

#[test]
fn returns_a_constant() {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let c = g.iconst(Type::I32, 42).unwrap();
    let r = g.ret(e.ctrl, e.mem, c).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "const").unwrap();
    assert_eq!(run(&j, &code, &mut [0u8; 8]), 42);
    assert!(code.stats().code_size > 0);
    assert!(code.clif().unwrap().contains("iconst.i32 42"));
}

#[test]
fn returns_narrow_and_wide_values() {
    // The return value is zero-extended or truncated to 32 bits.
    for (ty, v, want) in [
        (Type::I8, -1i64, 0xffu32),
        (Type::I16, -2, 0xfffe),
        (Type::I64, 0x1_0000_0007, 7),
        (Type::I32, -1, u32::MAX),
    ] {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
        let x = g.load(e.ctrl, e.mem, ctx, 0, ty).unwrap();
        let r = g.ret(e.ctrl, e.mem, x).unwrap();
        g.finish(&[r]).unwrap();
        let s = straight(&g, e.ctrl, r);
        let mut j = jit();
        let code = j.compile(&g, &s, &[], "ret").unwrap();
        let mut buf = [0u8; 8];
        write(&mut buf, 0, ty, v);
        assert_eq!(run(&j, &code, &mut buf), want, "{ty}");
    }
}

const BINS: [BinOp; 13] = BinOp::ALL;
const CMPS: [CmpOp; 10] = CmpOp::ALL;

fn bin_ref(op: BinOp, ty: Type, a: i64, b: i64) -> i64 {
    let w = ty.bits().unwrap();
    let amt = (b as u64 & (w as u64 - 1)) as u32;
    let v = match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Shl => a.wrapping_shl(amt),
        BinOp::Ushr => ((a as u64 & mask(w)) >> amt) as i64,
        BinOp::Sshr => a >> amt,
        // The LIR's defined results: x/0 = 0, x%0 = x, MIN/-1 = MIN.
        BinOp::Sdiv if b == 0 => 0,
        BinOp::Sdiv => a.wrapping_div(b),
        BinOp::Srem if b == 0 => a,
        BinOp::Srem => a.wrapping_rem(b),
        BinOp::Udiv => (a as u64 & mask(w))
            .checked_div(b as u64 & mask(w))
            .map_or(0, |q| q as i64),
        BinOp::Urem => (a as u64 & mask(w))
            .checked_rem(b as u64 & mask(w))
            .map_or(a, |r| r as i64),
    };
    ty.normalize(v)
}

fn cmp_ref(op: CmpOp, ty: Type, a: i64, b: i64) -> i64 {
    let m = mask(ty.bits().unwrap());
    let (ua, ub) = (a as u64 & m, b as u64 & m);
    let r = match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Slt => a < b,
        CmpOp::Sle => a <= b,
        CmpOp::Sgt => a > b,
        CmpOp::Sge => a >= b,
        CmpOp::Ult => ua < ub,
        CmpOp::Ule => ua <= ub,
        CmpOp::Ugt => ua > ub,
        CmpOp::Uge => ua >= ub,
    };
    r as i64
}

/// Loads `a` (offset 0) and `b` (offset 8) of type `ty`, stores every
/// binary, unary and comparison result at 16, 24, ...; returns `a + b`.
fn arith_graph(ty: Type) -> (Graph, Schedule) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let a = g.load(e.ctrl, e.mem, ctx, 0, ty).unwrap();
    let b = g.load(e.ctrl, e.mem, ctx, 8, ty).unwrap();
    let mut mem = e.mem;
    let mut slot = 16;
    let mut results = Vec::new();
    for op in BINS {
        results.push(g.bin(op, a, b).unwrap());
    }
    for op in [UnOp::Neg, UnOp::Not] {
        results.push(g.un(op, a).unwrap());
    }
    for op in CMPS {
        results.push(g.cmp(op, a, b).unwrap());
    }
    for &v in &results {
        mem = g.store(e.ctrl, mem, ctx, slot, v).unwrap();
        slot += 8;
    }
    let r = g.ret(e.ctrl, mem, results[0]).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    (g, s)
}

fn check_arith(ty: Type, j: &Jit, code: &CompiledCode) {
    let pairs: [(i64, i64); 14] = [
        // MIN / -1 of each width, and division by zero.
        (-128, -1),
        (-32_768, -1),
        (-2_147_483_648, -1),
        (i64::MIN, -1),
        (5, 0),
        (-7, 2),
        (200, 100), // wraps in i8
        (-128, 9),  // shift amount taken modulo the width
        (7, -3),
        (-5, 70),
        (i64::MAX, 1),
        (123_456_789, 65),
        (0, 0),
        (-1, 31),
    ];
    for (a, b) in pairs {
        let (a, b) = (ty.normalize(a), ty.normalize(b));
        let mut buf = [0u8; 256];
        write(&mut buf, 0, ty, a);
        write(&mut buf, 8, ty, b);
        let got = run(j, code, &mut buf);
        let want_ret =
            (bin_ref(BinOp::Add, ty, a, b) as u64 & mask(ty.bits().unwrap().min(32))) as u32;
        assert_eq!(got, want_ret, "{ty} return of {a}+{b}");
        let mut at = 16;
        for op in BINS {
            assert_eq!(
                read(&buf, at, ty),
                bin_ref(op, ty, a, b),
                "{ty} {op:?} {a} {b}"
            );
            at += 8;
        }
        assert_eq!(
            read(&buf, at, ty),
            ty.normalize(a.wrapping_neg()),
            "{ty} neg {a}"
        );
        assert_eq!(read(&buf, at + 8, ty), ty.normalize(!a), "{ty} not {a}");
        at += 16;
        for op in CMPS {
            assert_eq!(
                read(&buf, at, Type::I8),
                cmp_ref(op, ty, a, b),
                "{ty} {op:?} {a} {b}"
            );
            at += 8;
        }
    }
}

const WIDTHS: [Type; 4] = [Type::I8, Type::I16, Type::I32, Type::I64];

#[test]
fn arithmetic_of_every_width() {
    for ty in WIDTHS {
        let (g, s) = arith_graph(ty);
        let mut j = jit();
        let code = j.compile(&g, &s, &[], "arith").unwrap();
        check_arith(ty, &j, &code);
    }
}

#[test]
fn wrapping_i8_add() {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let a = g.load(e.ctrl, e.mem, ctx, 0, Type::I8).unwrap();
    let one = g.iconst(Type::I8, 1).unwrap();
    let v = g.add(a, one).unwrap();
    let m = g.store(e.ctrl, e.mem, ctx, 0, v).unwrap();
    let r = g.ret(e.ctrl, m, v).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "inc").unwrap();
    let mut buf = [255u8, 7, 7, 7];
    assert_eq!(run(&j, &code, &mut buf), 0);
    assert_eq!(buf, [0, 7, 7, 7]);
    assert_eq!(run(&j, &code, &mut buf), 1);
}

#[test]
fn conversions_and_select() {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let b8 = g.load(e.ctrl, e.mem, ctx, 0, Type::I8).unwrap();
    let w64 = g.load(e.ctrl, e.mem, ctx, 8, Type::I64).unwrap();
    let x = g.load(e.ctrl, e.mem, ctx, 16, Type::I32).unwrap();
    let y = g.load(e.ctrl, e.mem, ctx, 20, Type::I32).unwrap();
    let c32 = g.load(e.ctrl, e.mem, ctx, 24, Type::I32).unwrap();
    let outs = [
        g.conv(ConvOp::Uext, Type::I32, b8).unwrap(),
        g.conv(ConvOp::Sext, Type::I32, b8).unwrap(),
        g.conv(ConvOp::Uext, Type::I64, b8).unwrap(),
        g.conv(ConvOp::Sext, Type::I16, b8).unwrap(),
        g.conv(ConvOp::Trunc, Type::I8, w64).unwrap(),
        g.conv(ConvOp::Trunc, Type::I16, w64).unwrap(),
        g.conv(ConvOp::Trunc, Type::I32, w64).unwrap(),
        g.conv(ConvOp::Uext, Type::I64, w64).unwrap(), // same width: identity
        g.select(b8, x, y).unwrap(),
        g.select(c32, x, y).unwrap(),
    ];
    let mut mem = e.mem;
    for (k, &v) in outs.iter().enumerate() {
        mem = g.store(e.ctrl, mem, ctx, 32 + 8 * k as i32, v).unwrap();
    }
    let r = g.ret(e.ctrl, mem, outs[0]).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "conv").unwrap();

    for (byte, sel32) in [(0x85u8, 0i32), (0u8, 0x100)] {
        let mut buf = [0u8; 128];
        buf[0] = byte;
        write(&mut buf, 8, Type::I64, 0x1234_5678_9abc_def0);
        write(&mut buf, 16, Type::I32, 111);
        write(&mut buf, 20, Type::I32, 222);
        write(&mut buf, 24, Type::I32, sel32 as i64);
        assert_eq!(run(&j, &code, &mut buf), byte as u32);
        let sb = byte as i8 as i64;
        let want = [
            (Type::I32, byte as i64),
            (Type::I32, sb),
            (Type::I64, byte as i64),
            (Type::I16, sb),
            (Type::I8, 0xf0u8 as i8 as i64),
            (Type::I16, 0xdef0u16 as i16 as i64),
            (Type::I32, 0x9abc_def0u32 as i32 as i64),
            (Type::I64, 0x1234_5678_9abc_def0),
            (Type::I32, if byte != 0 { 111 } else { 222 }),
            (Type::I32, if sel32 != 0 { 111 } else { 222 }),
        ];
        for (k, (ty, v)) in want.into_iter().enumerate() {
            assert_eq!(
                read(&buf, 32 + 8 * k, ty),
                v,
                "output {k} for byte {byte:#x}"
            );
        }
    }
}

/// Copies unaligned values of every width, also through a moved pointer
/// with negative offsets.
fn mem_graph() -> (Graph, Schedule) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    // Unaligned on purpose: tape accesses need not be aligned.
    let l8 = g.load(e.ctrl, e.mem, ctx, 1, Type::I8).unwrap();
    let l16 = g.load(e.ctrl, e.mem, ctx, 3, Type::I16).unwrap();
    let l32 = g.load(e.ctrl, e.mem, ctx, 5, Type::I32).unwrap();
    let l64 = g.load(e.ctrl, e.mem, ctx, 9, Type::I64).unwrap();
    let m = g.store(e.ctrl, e.mem, ctx, 20, l8).unwrap();
    let m = g.store(e.ctrl, m, ctx, 22, l16).unwrap();
    let m = g.store(e.ctrl, m, ctx, 25, l32).unwrap();
    let m = g.store(e.ctrl, m, ctx, 33, l64).unwrap();
    // Through a moved pointer, with a negative offset.
    let forty_eight = g.iconst(Type::I64, 48).unwrap();
    let p = g.ptr_add(ctx, forty_eight).unwrap();
    let m = g.store(e.ctrl, m, p, 2, l8).unwrap(); // byte 50
    let back = g.load(e.ctrl, m, p, -28, Type::I8).unwrap(); // reads byte 20
    let m = g.store(e.ctrl, m, p, -1, back).unwrap(); // byte 47
    let r = g.ret(e.ctrl, m, l32).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    (g, s)
}

fn check_mem(j: &Jit, code: &CompiledCode) {
    let mut buf = [0u8; 64];
    for (i, b) in buf.iter_mut().enumerate().take(17) {
        *b = (i as u8).wrapping_mul(17).wrapping_add(3);
    }
    let orig = buf;
    let got = run(j, code, &mut buf);
    assert_eq!(got, u32::from_le_bytes(orig[5..9].try_into().unwrap()));
    assert_eq!(buf[20], orig[1]);
    assert_eq!(buf[22..24], orig[3..5]);
    assert_eq!(buf[25..29], orig[5..9]);
    assert_eq!(buf[33..41], orig[9..17]);
    assert_eq!(buf[50], orig[1]);
    assert_eq!(buf[47], orig[1]);
    // Nothing else was written.
    for i in [21, 24, 29, 30, 31, 32, 41, 46, 48, 49, 51, 63] {
        assert_eq!(buf[i], 0, "byte {i}");
    }
}

#[test]
fn loads_and_stores_of_every_width_and_offset() {
    let (g, s) = mem_graph();
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "mem").unwrap();
    check_mem(&j, &code);
}

/// `x = *ctx; if x < 10 { y = x + 100; ctx[16] = 1 } else { y = x * 2; ctx[16] = 2 };
/// ctx[8] = y; return y` — a diamond with a value phi and a memory phi.
fn diamond() -> (Graph, Schedule, [NodeId; 8]) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.load(e.ctrl, e.mem, ctx, 0, Type::I32).unwrap();
    let ten = g.iconst(Type::I32, 10).unwrap();
    let c = g.cmp(CmpOp::Slt, x, ten).unwrap();
    let (t, f) = g.branch(e.ctrl, c).unwrap();
    let hundred = g.iconst(Type::I32, 100).unwrap();
    let a = g.add(x, hundred).unwrap();
    let one = g.iconst(Type::I8, 1).unwrap();
    let mt = g.store(t, e.mem, ctx, 16, one).unwrap();
    let two = g.iconst(Type::I32, 2).unwrap();
    let b = g.bin(BinOp::Mul, x, two).unwrap();
    let two8 = g.iconst(Type::I8, 2).unwrap();
    let mf = g.store(f, e.mem, ctx, 16, two8).unwrap();
    let region = g.region(&[t, f]).unwrap();
    let y = g.phi(region, Type::I32, &[a, b]).unwrap();
    let mp = g.phi(region, Type::Mem, &[mt, mf]).unwrap();
    let m = g.store(region, mp, ctx, 8, y).unwrap();
    let r = g.ret(region, m, y).unwrap();
    g.finish(&[r]).unwrap();
    let s = Schedule {
        blocks: vec![
            block(
                e.ctrl,
                &[],
                vec![ctx, x, ten, c],
                &[],
                Terminator::Branch {
                    cond: c,
                    if_true: BlockId(1),
                    if_false: BlockId(2),
                },
            ),
            block(
                t,
                &[],
                vec![hundred, a, one, mt],
                &[0],
                Terminator::Jump { target: BlockId(3) },
            ),
            block(
                f,
                &[],
                vec![two, b, two8, mf],
                &[0],
                Terminator::Jump { target: BlockId(3) },
            ),
            block(region, &[y, mp], vec![m], &[1, 2], ret_term(&g, r)),
        ],
    };
    (g, s, [ctx, x, a, b, y, mp, m, r])
}

fn check_diamond(j: &Jit, code: &CompiledCode) {
    for (x, y, tag) in [
        (3i32, 103i32, 1u8),
        (10, 20, 2),
        (-50, 50, 1),
        (1000, 2000, 2),
    ] {
        let mut buf = [0u8; 32];
        buf[..4].copy_from_slice(&x.to_le_bytes());
        assert_eq!(run(j, code, &mut buf) as i32, y, "x = {x}");
        assert_eq!(read(&buf, 8, Type::I32), y as i64);
        assert_eq!(buf[16], tag);
    }
}

#[test]
fn diamond_with_phis() {
    let (g, s, _) = diamond();
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "diamond").unwrap();
    check_diamond(&j, &code);
}

#[test]
fn phi_inputs_follow_the_predecessor_order() {
    // Same diamond, but the region lists its predecessors as [f, t] in the
    // schedule's block order b1 = false arm, b2 = true arm.
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.load(e.ctrl, e.mem, ctx, 0, Type::I8).unwrap();
    let (t, f) = g.branch(e.ctrl, x).unwrap();
    let seven = g.iconst(Type::I32, 7).unwrap();
    let nine = g.iconst(Type::I32, 9).unwrap();
    let region = g.region(&[f, t]).unwrap();
    let y = g.phi(region, Type::I32, &[seven, nine]).unwrap();
    let r = g.ret(region, e.mem, y).unwrap();
    g.finish(&[r]).unwrap();
    let jump3 = Terminator::Jump { target: BlockId(3) };
    let s = Schedule {
        blocks: vec![
            block(
                e.ctrl,
                &[],
                vec![ctx, x, seven, nine],
                &[],
                Terminator::Branch {
                    cond: x,
                    if_true: BlockId(2),
                    if_false: BlockId(1),
                },
            ),
            block(f, &[], vec![], &[0], jump3.clone()),
            block(t, &[], vec![], &[0], jump3),
            block(region, &[y], vec![], &[1, 2], ret_term(&g, r)),
        ],
    };
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "order").unwrap();
    assert_eq!(run(&j, &code, &mut [0u8; 4]), 7);
    assert_eq!(run(&j, &code, &mut [5u8; 4]), 9);
}

/// `n = *ctx; i = 1; sum = 0; while i <= n { sum += i; i += 1 }; return sum`.
fn counting_loop() -> (Graph, Schedule) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let n = g.load(e.ctrl, e.mem, ctx, 0, Type::I32).unwrap();
    let zero = g.iconst(Type::I32, 0).unwrap();
    let one = g.iconst(Type::I32, 1).unwrap();
    let lp = g.loop_header(1, e.ctrl).unwrap();
    let i = g.loop_phi(lp, 1, Type::I32, one).unwrap();
    let sum = g.loop_phi(lp, 2, Type::I32, zero).unwrap();
    let c = g.cmp(CmpOp::Sle, i, n).unwrap();
    let (body, exit) = g.branch(lp, c).unwrap();
    let sum2 = g.add(sum, i).unwrap();
    let i2 = g.add(i, one).unwrap();
    g.set_back_input(lp, body).unwrap();
    g.set_back_input(i, i2).unwrap();
    g.set_back_input(sum, sum2).unwrap();
    let r = g.ret(exit, e.mem, sum).unwrap();
    g.finish(&[r]).unwrap();
    let s = Schedule {
        blocks: vec![
            block(
                e.ctrl,
                &[],
                vec![ctx, n, zero, one],
                &[],
                Terminator::Jump { target: BlockId(1) },
            ),
            block(
                lp,
                &[i, sum],
                vec![c],
                &[0, 2],
                Terminator::Branch {
                    cond: c,
                    if_true: BlockId(2),
                    if_false: BlockId(3),
                },
            ),
            block(
                body,
                &[],
                vec![sum2, i2],
                &[1],
                Terminator::Jump { target: BlockId(1) },
            ),
            block(exit, &[], vec![], &[1], ret_term(&g, r)),
        ],
    };
    (g, s)
}

fn check_sum(j: &Jit, code: &CompiledCode) {
    for (n, want) in [(10u32, 55u32), (0, 0), (1, 1), (100, 5050)] {
        let mut buf = n.to_le_bytes();
        assert_eq!(run(j, code, &mut buf), want, "n = {n}");
    }
}

#[test]
fn counting_loop_sums() {
    let (g, s) = counting_loop();
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "sum").unwrap();
    check_sum(&j, &code);
    let clif = code.clif().unwrap();
    assert!(clif.contains("brif"), "{clif}");
    assert!(code.stats().clif_blocks >= 4);
}

extern "C" fn record(ctx: *mut u8, x: i32) -> i32 {
    // SAFETY: only called by the test graph, with a 64-byte buffer.
    unsafe { ctx.cast::<[u8; 4]>().write((x + 1000).to_le_bytes()) };
    x * 2 + 1
}

fn record_host() -> HostFn {
    HostFn::new(
        "record",
        record as *const u8,
        &[Type::Ptr, Type::I32],
        Some(Type::I32),
    )
}

/// `x = ctx[8]; r = record(ctx, x); ctx[12] = r; return ctx[0] + r`.
fn call_graph(func: u32, args_from_x: bool) -> (Graph, Schedule) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.load(e.ctrl, e.mem, ctx, 8, Type::I32).unwrap();
    let args: Vec<NodeId> = if args_from_x { vec![ctx, x] } else { vec![ctx] };
    let (m1, r) = g.call(e.ctrl, e.mem, func, &args, Some(Type::I32)).unwrap();
    let r = r.unwrap();
    let m2 = g.store(e.ctrl, m1, ctx, 12, r).unwrap();
    let back = g.load(e.ctrl, m2, ctx, 0, Type::I32).unwrap();
    let sum = g.add(back, r).unwrap();
    let ret = g.ret(e.ctrl, m2, sum).unwrap();
    g.finish(&[ret]).unwrap();
    let s = straight(&g, e.ctrl, ret);
    (g, s)
}

fn check_call(j: &Jit, code: &CompiledCode) {
    let mut buf = [0u8; 64];
    buf[8..12].copy_from_slice(&21i32.to_le_bytes());
    let got = run(j, code, &mut buf);
    assert_eq!(read(&buf, 0, Type::I32), 1021);
    assert_eq!(read(&buf, 12, Type::I32), 43);
    assert_eq!(got, 1021 + 43);
}

#[test]
fn host_call_records_into_the_buffer() {
    let (g, s) = call_graph(0, true);
    let mut j = jit();
    let code = j.compile(&g, &s, &[record_host()], "call").unwrap();
    check_call(&j, &code);
    assert!(code.clif().unwrap().contains("call fn0"));
}

#[test]
fn bad_host_calls_are_errors() {
    let (g, s) = call_graph(3, true);
    let mut j = jit();
    let err = j.compile(&g, &s, &[record_host()], "bad").unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::HostIndex {
                func: 3,
                len: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("host function 3"));

    let (g, s) = call_graph(0, false);
    let err = j.compile(&g, &s, &[record_host()], "arity").unwrap_err();
    assert!(matches!(err, BackendError::HostSignature { .. }), "{err}");

    // An argument of the wrong type.
    let wrong = HostFn::new(
        "w",
        record as *const u8,
        &[Type::Ptr, Type::I64],
        Some(Type::I32),
    );
    let (g, s) = call_graph(0, true);
    let err = j.compile(&g, &s, &[wrong], "types").unwrap_err();
    assert!(matches!(err, BackendError::HostSignature { .. }), "{err}");

    // The JIT still works after errors.
    let code = j.compile(&g, &s, &[record_host()], "ok").unwrap();
    let mut buf = [0u8; 64];
    run(&j, &code, &mut buf);
    assert_eq!(read(&buf, 12, Type::I32), 1);
}

#[test]
fn names_may_repeat_and_code_stays_valid() {
    let (g, s) = counting_loop();
    let mut j = jit();
    let a = j.compile(&g, &s, &[], "f").unwrap();
    let b = j.compile(&g, &s, &[], "f").unwrap();
    assert_ne!(a.func_id(), b.func_id());
    let mut buf = 10u32.to_le_bytes();
    assert_eq!(run(&j, &a, &mut buf), 55);
    assert_eq!(run(&j, &b, &mut buf), 55);

    // A handle from another JIT is refused.
    let other = jit();
    // SAFETY: the call is refused before any code runs.
    let r = unsafe { other.call(&a, buf.as_mut_ptr()) };
    assert_eq!(r, Err(BackendError::ForeignCode));
}

#[test]
fn clif_text_without_compiling() {
    let (g, s, _) = diamond();
    let mut j = Jit::new(JitOptions::default()).unwrap();
    let text = j.clif_text(&g, &s, &[], "diamond").unwrap();
    assert!(text.contains("function %diamond(i64) -> i32"), "{text}");
    assert!(text.contains("load.i32 notrap"), "{text}");
    assert!(text.matches("block").count() >= 4, "{text}");
}

// ---- malformed input ----

fn expect_err(g: &Graph, s: &Schedule) -> BackendError {
    let mut j = jit();
    let e = j.compile(g, s, &[], "bad").unwrap_err();
    // Display works for every error.
    assert!(!e.to_string().is_empty());
    e
}

#[test]
fn use_of_a_node_without_value() {
    let (g, mut s, [.., m, r]) = diamond();
    // Return a memory state.
    s.blocks[3].term = Terminator::Return { ret: r, value: m };
    assert_eq!(
        expect_err(&g, &s),
        BackendError::NoValue { node: m, user: r }
    );
}

#[test]
fn use_of_an_unscheduled_or_non_dominating_node() {
    let (g, mut s, [_, x, a, ..]) = diamond();
    // `x` is not scheduled at all.
    s.blocks[0].nodes.retain(|&n| n != x);
    assert!(matches!(expect_err(&g, &s), BackendError::NotAvailable { node, .. } if node == x));

    // `a` is defined in the true arm but returned from the merge.
    let (g, mut s, [.., r]) = diamond();
    s.blocks[3].term = Terminator::Return { ret: r, value: a };
    assert_eq!(
        expect_err(&g, &s),
        BackendError::NotAvailable { node: a, user: r }
    );
}

#[test]
fn scheduling_a_node_twice_is_an_error() {
    let (g, mut s, [_, x, ..]) = diamond();
    s.blocks[1].nodes.insert(0, x);
    assert_eq!(expect_err(&g, &s), BackendError::Duplicate(x));
}

#[test]
fn bad_block_structure_is_an_error() {
    let (g, mut s, _) = diamond();
    s.blocks[3].preds = vec![BlockId(1)];
    assert!(matches!(
        expect_err(&g, &s),
        BackendError::BadBlock { block: 3, .. }
    ));

    let (g, mut s, _) = diamond();
    s.blocks[1].term = Terminator::Jump { target: BlockId(9) };
    assert!(matches!(
        expect_err(&g, &s),
        BackendError::BadBlock { block: 1, .. }
    ));

    let (g, mut s, [.., y, _, _, _]) = diamond();
    s.blocks[3].phis.retain(|&p| p != y);
    s.blocks[2].phis.push(y);
    assert!(matches!(
        expect_err(&g, &s),
        BackendError::BadBlock { block: 2, .. }
    ));

    let (g, _, _) = diamond();
    assert_eq!(
        expect_err(&g, &Schedule::default()),
        BackendError::EmptySchedule
    );

    let (g, mut s, _) = diamond();
    s.blocks[0].nodes.push(NodeId::from_index(g.len() + 5));
    assert!(matches!(expect_err(&g, &s), BackendError::UnknownNode(_)));
}

#[test]
fn unsupported_nodes_are_errors() {
    // A narrowing `Uext`.
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.load(e.ctrl, e.mem, ctx, 0, Type::I32).unwrap();
    let y = g.conv(ConvOp::Uext, Type::I8, x).unwrap();
    let r = g.ret(e.ctrl, e.mem, y).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    assert!(matches!(expect_err(&g, &s), BackendError::Unsupported { node, .. } if node == y));

    // A second entry parameter.
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let p1 = g.param(e.start, 1, Type::I32).unwrap();
    let r = g.ret(e.ctrl, e.mem, p1).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    assert!(matches!(expect_err(&g, &s), BackendError::Unsupported { node, .. } if node == p1));

    // Mixed operand types (built with `intern`, bypassing any checks).
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let a = g.load(e.ctrl, e.mem, ctx, 0, Type::I32).unwrap();
    let b = g.load(e.ctrl, e.mem, ctx, 4, Type::I8).unwrap();
    let bad = g.intern(Op::Bin(BinOp::Add), Type::I32, &[a, b]).unwrap();
    let r = g.ret(e.ctrl, e.mem, bad).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    assert!(matches!(expect_err(&g, &s), BackendError::Unsupported { node, .. } if node == bad));

    // A node with too few inputs.
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let short = g.intern(Op::Bin(BinOp::Add), Type::I32, &[]).unwrap();
    let r = g.ret(e.ctrl, e.mem, short).unwrap();
    g.finish(&[r]).unwrap();
    let s = straight(&g, e.ctrl, r);
    assert!(matches!(expect_err(&g, &s), BackendError::Unsupported { node, .. } if node == short));
}

#[test]
fn loop_phi_without_back_edge_is_an_error() {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let n = g.load(e.ctrl, e.mem, ctx, 0, Type::I32).unwrap();
    let lp = g.loop_header(1, e.ctrl).unwrap();
    let i = g.loop_phi(lp, 1, Type::I32, n).unwrap();
    let (body, exit) = g.branch(lp, i).unwrap();
    g.set_back_input(lp, body).unwrap();
    let r = g.ret(exit, e.mem, i).unwrap();
    g.finish(&[r]).unwrap();
    let s = Schedule {
        blocks: vec![
            block(
                e.ctrl,
                &[],
                vec![ctx, n],
                &[],
                Terminator::Jump { target: BlockId(1) },
            ),
            block(
                lp,
                &[i],
                vec![],
                &[0, 2],
                Terminator::Branch {
                    cond: i,
                    if_true: BlockId(2),
                    if_false: BlockId(3),
                },
            ),
            block(
                body,
                &[],
                vec![],
                &[1],
                Terminator::Jump { target: BlockId(1) },
            ),
            block(exit, &[], vec![], &[1], ret_term(&g, r)),
        ],
    };
    assert!(matches!(expect_err(&g, &s), BackendError::Unsupported { node, .. } if node == i));
}

/// `depth` nested loops `[[[ ... ]]]` over cell 0 (Brainfuck style, with a
/// memory phi per loop); the innermost body clears the cell. Returns the
/// graph and a schedule in dominator order.
fn nested_loops(depth: usize) -> (Graph, Schedule) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let zero = g.iconst(Type::I8, 0).unwrap();
    let zero32 = g.iconst(Type::I32, 7).unwrap();
    // Per level: header, mem phi, exit ctrl; blocks are numbered as
    // entry, (H_k, B_k) for k = 0..depth, then exits X_{depth-1}..X_0.
    let h = |k: usize| 1 + 2 * k as u32;
    let bb = |k: usize| 2 + 2 * k as u32;
    let x = |k: usize| (1 + 2 * depth + (depth - 1 - k)) as u32;
    let mut blocks = vec![block(
        e.ctrl,
        &[],
        vec![ctx, zero, zero32],
        &[],
        Terminator::Jump {
            target: BlockId(h(0)),
        },
    )];
    let mut headers = Vec::with_capacity(depth);
    let (mut ctrl, mut mem) = (e.ctrl, e.mem);
    for k in 0..depth {
        let lp = g.loop_header(k as u64, ctrl).unwrap();
        let mp = g.loop_phi(lp, 0, Type::Mem, mem).unwrap();
        let cell = g.load(lp, mp, ctx, 0, Type::I8).unwrap();
        let c = g.cmp(CmpOp::Ne, cell, zero).unwrap();
        let (t, f) = g.branch(lp, c).unwrap();
        let entry_pred = if k == 0 { 0 } else { bb(k - 1) };
        let mut header = block(
            lp,
            &[mp],
            vec![cell, c],
            &[entry_pred, x(k)],
            Terminator::Branch {
                cond: c,
                if_true: BlockId(bb(k)),
                if_false: BlockId(x(k)),
            },
        );
        header.loop_depth = k as u32 + 1;
        blocks.push(header);
        let mut body = block(
            t,
            &[],
            vec![],
            &[h(k)],
            Terminator::Jump {
                target: BlockId(if k + 1 < depth { h(k + 1) } else { h(k) }),
            },
        );
        body.loop_depth = k as u32 + 1;
        blocks.push(body);
        headers.push((lp, mp, t, f));
        ctrl = t;
        mem = mp;
    }
    // Innermost body: clear the cell and loop.
    let (lp, mp, t, _) = headers[depth - 1];
    let st = g.store(t, mp, ctx, 0, zero).unwrap();
    blocks[bb(depth - 1) as usize].nodes.push(st);
    blocks[h(depth - 1) as usize].preds[1] = BlockId(bb(depth - 1));
    g.set_back_input(lp, t).unwrap();
    g.set_back_input(mp, st).unwrap();
    // Each exit closes the enclosing loop.
    for k in (1..depth).rev() {
        let (_, mp_k, _, f_k) = headers[k];
        let (outer, outer_mp, _, _) = headers[k - 1];
        g.set_back_input(outer, f_k).unwrap();
        g.set_back_input(outer_mp, mp_k).unwrap();
        let mut exit = block(
            f_k,
            &[],
            vec![],
            &[h(k)],
            Terminator::Jump {
                target: BlockId(h(k - 1)),
            },
        );
        exit.loop_depth = k as u32;
        blocks.push(exit);
    }
    let (_, mp0, _, f0) = headers[0];
    let r = g.ret(f0, mp0, zero32).unwrap();
    g.finish(&[r]).unwrap();
    blocks.push(block(f0, &[], vec![], &[h(0)], ret_term(&g, r)));
    (g, Schedule { blocks })
}

#[test]
fn nested_loops_compile_and_run() {
    let (g, s) = nested_loops(200);
    for limit in [1000, 100] {
        let mut j = Jit::new(JitOptions {
            verify: true,
            capture_clif: false,
            max_optimized_loop_depth: limit,
        })
        .unwrap();
        let code = j.compile(&g, &s, &[], "nest").unwrap();
        assert_eq!(code.stats().optimized, limit >= 200);
        check_nest(&j, &code);
    }
}

fn check_nest(j: &Jit, code: &CompiledCode) {
    let mut buf = [5u8; 4];
    assert_eq!(run(j, code, &mut buf), 7);
    assert_eq!(buf[0], 0);
    let mut buf = [0u8; 4];
    assert_eq!(run(j, code, &mut buf), 7);
}

#[test]
fn unoptimized_path_runs_calls_and_loops() {
    let mut j = Jit::new(JitOptions {
        verify: true,
        capture_clif: false,
        max_optimized_loop_depth: 0,
    })
    .unwrap();
    let (g, mut s) = counting_loop();
    s.blocks[1].loop_depth = 1;
    s.blocks[2].loop_depth = 1;
    let code = j.compile(&g, &s, &[], "sum").unwrap();
    assert!(!code.stats().optimized);
    let mut buf = 10u32.to_le_bytes();
    assert_eq!(run(&j, &code, &mut buf), 55);

    // Host calls through the unoptimized path (the depth is only a hint).
    let (g, mut s) = call_graph(0, true);
    s.blocks[0].loop_depth = 1;
    let code = j.compile(&g, &s, &[record_host()], "call").unwrap();
    assert!(!code.stats().optimized);
    let mut buf = [0u8; 64];
    buf[8] = 4;
    assert_eq!(run(&j, &code, &mut buf), 1004 + 9);
}

#[test]
fn hundred_thousand_nested_loops_lower() {
    let (g, s) = nested_loops(100_000);
    let j = Jit::new(JitOptions::default()).unwrap();
    let func = crate::lower(&g, &s, &[], j.frontend_config(), "deep").unwrap();
    assert_eq!(func.dfg.num_blocks(), s.blocks.len());
}

#[test]
#[ignore = "slow unless built with --release: compiles 300 000 blocks"]
fn hundred_thousand_nested_loops_compile() {
    let env = |k: &str| std::env::var(k).ok().and_then(|d| d.parse().ok());
    let (g, s) = nested_loops(env("VSSA_DEPTH").unwrap_or(100_000));
    let mut j = Jit::new(JitOptions {
        max_optimized_loop_depth: env("VSSA_MAX_OPT_DEPTH")
            .map_or(1000, |d| u32::try_from(d).unwrap_or(u32::MAX)),
        ..JitOptions::default()
    })
    .unwrap();
    let code = j.compile(&g, &s, &[], "deep").unwrap();
    let mut buf = [1u8; 4];
    assert_eq!(run(&j, &code, &mut buf), 7);
    assert_eq!(buf[0], 0);
    eprintln!("{:?}", code.stats());
    eprintln!("{}", cranelift_codegen::timing::take_current());
}

// ---- through the real scheduler ----

/// Compiles `g` as `vssa_schedule::schedule` places it.
fn compile_scheduled(j: &mut Jit, g: &Graph, hosts: &[HostFn], name: &str) -> CompiledCode {
    let s = vssa_schedule::schedule(g).unwrap();
    j.compile(g, &s, hosts, name)
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", vssa_schedule::print(g, &s)))
}

#[test]
fn scheduled_straight_line_graphs() {
    let mut j = jit();
    for ty in WIDTHS {
        let (g, _) = arith_graph(ty);
        let code = compile_scheduled(&mut j, &g, &[], "arith");
        check_arith(ty, &j, &code);
    }
    let (g, _) = mem_graph();
    let code = compile_scheduled(&mut j, &g, &[], "mem");
    check_mem(&j, &code);
    let (g, _) = call_graph(0, true);
    let code = compile_scheduled(&mut j, &g, &[record_host()], "call");
    check_call(&j, &code);
}

#[test]
fn scheduled_control_flow() {
    let mut j = jit();
    let (g, _, _) = diamond();
    let code = compile_scheduled(&mut j, &g, &[], "diamond");
    check_diamond(&j, &code);
    let (g, _) = counting_loop();
    let code = compile_scheduled(&mut j, &g, &[], "sum");
    check_sum(&j, &code);
    let (g, _) = nested_loops(50);
    let code = compile_scheduled(&mut j, &g, &[], "nest");
    check_nest(&j, &code);
}

#[test]
fn scheduled_deep_nest_lowers() {
    let (g, _) = nested_loops(100_000);
    let s = vssa_schedule::schedule(&g).unwrap();
    assert!(s.blocks.iter().any(|b| b.loop_depth == 100_000));
    let j = Jit::new(JitOptions::default()).unwrap();
    let func = crate::lower(&g, &s, &[], j.frontend_config(), "deep").unwrap();
    assert_eq!(func.dfg.num_blocks(), s.blocks.len());
}

/// `i = 0; do { i += 1 } while i != n; return i`, with the back edge
/// through an empty latch block, as a rotated loop's `If` projection
/// makes it.
fn rotated_loop() -> (Graph, Schedule) {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let n = g.load(e.ctrl, e.mem, ctx, 0, Type::I32).unwrap();
    let zero = g.iconst(Type::I32, 0).unwrap();
    let one = g.iconst(Type::I32, 1).unwrap();
    let lp = g.loop_header(1, e.ctrl).unwrap();
    let i = g.loop_phi(lp, 1, Type::I32, zero).unwrap();
    let i2 = g.add(i, one).unwrap();
    let c = g.cmp(CmpOp::Ne, i2, n).unwrap();
    let (again, exit) = g.branch(lp, c).unwrap();
    g.set_back_input(lp, again).unwrap();
    g.set_back_input(i, i2).unwrap();
    let r = g.ret(exit, e.mem, i2).unwrap();
    g.finish(&[r]).unwrap();
    let s = Schedule {
        blocks: vec![
            block(
                e.ctrl,
                &[],
                vec![ctx, n, zero, one],
                &[],
                Terminator::Jump { target: BlockId(1) },
            ),
            block(
                lp,
                &[i],
                vec![i2, c],
                &[0, 2],
                Terminator::Branch {
                    cond: c,
                    if_true: BlockId(2),
                    if_false: BlockId(3),
                },
            ),
            block(
                again,
                &[],
                vec![],
                &[1],
                Terminator::Jump { target: BlockId(1) },
            ),
            block(exit, &[], vec![], &[1], ret_term(&g, r)),
        ],
    };
    (g, s)
}

#[test]
fn a_back_edge_through_an_empty_latch_is_one_branch() {
    let (g, s) = rotated_loop();
    let mut j = jit();
    let code = j.compile(&g, &s, &[], "rotated").unwrap();
    for n in [1u32, 2, 7, 1000] {
        assert_eq!(run(&j, &code, &mut n.to_le_bytes()), n, "n = {n}");
    }
    // The header's own conditional branch goes back to it, with the new
    // `i` as the argument: the latch block is passed through.
    let clif = code.clif().unwrap();
    let header_branch = clif
        .lines()
        .skip_while(|l| !l.starts_with("block1("))
        .find(|l| l.contains("brif"))
        .unwrap_or_else(|| panic!("no branch in the header:\n{clif}"));
    assert!(header_branch.contains("block1(v"), "{clif}");
}

extern "C" fn record_other(ctx: *mut u8, x: i32) -> i32 {
    // SAFETY: only called by the test graph, with a 64-byte buffer.
    unsafe { ctx.cast::<[u8; 4]>().write((x + 5000).to_le_bytes()) };
    x * 3
}

/// Runs owned code on a buffer whose offset 8 holds 21.
fn run_owned(code: &OwnedCode) -> (u32, [u8; 64]) {
    let mut buf = [0u8; 64];
    buf[8..12].copy_from_slice(&21i32.to_le_bytes());
    // SAFETY: the graph reads and writes within the first 16 bytes of the
    // buffer and calls its one host with (buf, i32), as declared.
    let got = unsafe { code.call(buf.as_mut_ptr()) };
    (got, buf)
}

#[test]
fn a_host_call_is_a_relocation_by_number() {
    let (g, s) = call_graph(0, true);
    let mut j = jit();
    let code = j.compile_owned(&g, &s, &[record_host()], "call").unwrap();
    let img = code.image();
    let hosts: Vec<_> = img
        .relocs
        .iter()
        .filter(|r| r.target == crate::RelocTarget::Host(0))
        .collect();
    assert_eq!(hosts.len(), 1, "{:?}", img.relocs);
    assert_eq!(hosts[0].kind, crate::RelocKind::Abs8);
    // The stored bytes do not hold the host's address.
    let addr = (record as *const u8 as u64).to_le_bytes();
    assert!(!img.bytes.windows(8).any(|w| w == addr));
}

#[test]
fn an_image_placed_again_calls_the_host_table_it_is_given() {
    let (g, s) = call_graph(0, true);
    let mut j = jit();
    let code = j.compile_owned(&g, &s, &[record_host()], "call").unwrap();
    let (got, buf) = run_owned(&code);
    assert_eq!(got, 1021 + 43);
    assert_eq!(read(&buf, 12, Type::I32), 43);
    let img = code.image().clone();
    drop(code);
    drop(j);
    // Another JIT (as in another process), another function at the same
    // number: the placed code calls it.
    let mut other = jit();
    let hosts = [HostFn::new(
        "record",
        record_other as *const u8,
        &[Type::Ptr, Type::I32],
        Some(Type::I32),
    )];
    let placed = other.load_owned(&img, &hosts, "again").unwrap();
    let (got, buf) = run_owned(&placed);
    assert_eq!(read(&buf, 0, Type::I32), 5021);
    assert_eq!(read(&buf, 12, Type::I32), 63);
    assert_eq!(got, 5021 + 63);
    assert_eq!(placed.image(), &img);
}

#[test]
fn placing_an_image_checks_its_relocations() {
    let (g, s) = call_graph(0, true);
    let mut j = jit();
    let code = j.compile_owned(&g, &s, &[record_host()], "call").unwrap();
    let img = code.image().clone();
    // No host table: host 0 does not exist.
    assert!(j.load_owned(&img, &[], "none").is_err());
    // A relocation past the end of the code.
    let mut bad = img.clone();
    bad.relocs[0].offset = bad.bytes.len() as u32 - 4;
    assert!(j.load_owned(&bad, &[record_host()], "past").is_err());
}

#[test]
fn the_target_id_depends_on_the_host_table() {
    let j = jit();
    let a = j.target_id(&[record_host()]);
    assert_eq!(a, jit().target_id(&[record_host()]));
    let mut other = record_host();
    other.params = vec![Type::Ptr, Type::I64];
    assert_ne!(a, j.target_id(&[other]));
    assert_ne!(a, j.target_id(&[]));
}

/// `divmod(a, b, out)`: a host function with two results, written through
/// the out-pointer (see `HostFn`).
extern "C" fn divmod(a: i64, b: i64, out: *mut [i64; 2]) {
    // SAFETY: generated code passes a slot of two 8-byte results.
    unsafe { out.write([a / b, a % b]) };
}

fn sig(params: &[Type], results: &[Type]) -> vssa::Signature {
    vssa::Signature::new(params, results).unwrap()
}

/// `b(x, y) = (x + y, x - y)`.
fn sum_and_difference() -> Graph {
    let mut g = Graph::new();
    g.set_signature(sig(&[Type::I64, Type::I64], &[Type::I64, Type::I64]));
    let e = g.entry().unwrap();
    let x = g.param(e.start, 0, Type::I64).unwrap();
    let y = g.param(e.start, 1, Type::I64).unwrap();
    let s = g.add(x, y).unwrap();
    let d = g.sub(x, y).unwrap();
    let r = g.ret_values(e.ctrl, e.mem, &[s, d]).unwrap();
    g.finish(&[r]).unwrap();
    g
}

/// `c(x: f64, k: i8) = x * k` as `f64`.
fn scale() -> Graph {
    let mut g = Graph::new();
    g.set_signature(sig(&[Type::F64, Type::I8], &[Type::F64]));
    let e = g.entry().unwrap();
    let x = g.param(e.start, 0, Type::F64).unwrap();
    let k = g.param(e.start, 1, Type::I8).unwrap();
    let k64 = g.conv(ConvOp::Sext, Type::I64, k).unwrap();
    let kf = g.fconv(vssa::FConvOp::SToF, Type::F64, k64).unwrap();
    let p = g.fbin(vssa::FBinOp::Mul, x, kf).unwrap();
    let r = g.ret_values(e.ctrl, e.mem, &[p]).unwrap();
    g.finish(&[r]).unwrap();
    g
}

/// The classic entry `a(ctx)`: `(s, d) = b(ctx[0], ctx[8])` directly
/// (function 1),
/// `f = c(ctx[16], -3)` through the address at `ctx[24]`, `(q, r) =
/// divmod(s, d)` on the host; stores `s, d, f, q, r` at `ctx[32..72]`.
fn caller() -> Graph {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let ctx = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.load(e.ctrl, e.mem, ctx, 0, Type::I64).unwrap();
    let y = g.load(e.ctrl, e.mem, ctx, 8, Type::I64).unwrap();
    let b_sig = sig(&[Type::I64, Type::I64], &[Type::I64, Type::I64]);
    let (m, sd) = g.call_direct(e.ctrl, e.mem, 1, b_sig, &[x, y]).unwrap();
    let xf = g.load(e.ctrl, m, ctx, 16, Type::F64).unwrap();
    let target = g.load(e.ctrl, m, ctx, 24, Type::Ptr).unwrap();
    let k = g.iconst(Type::I8, -3).unwrap();
    let c_sig = sig(&[Type::F64, Type::I8], &[Type::F64]);
    let (m, f) = g.call_indirect(e.ctrl, m, target, c_sig, &[xf, k]).unwrap();
    let (mut m, qr) = g
        .call_host(e.ctrl, m, 0, &[sd[0], sd[1]], &[Type::I64, Type::I64])
        .unwrap();
    for (k, v) in [sd[0], sd[1], f[0], qr[0], qr[1]].into_iter().enumerate() {
        m = g.store(e.ctrl, m, ctx, 32 + 8 * k as i32, v).unwrap();
    }
    let zero = g.iconst(Type::I32, 0).unwrap();
    let r = g.ret(e.ctrl, m, zero).unwrap();
    g.finish(&[r]).unwrap();
    g
}

#[test]
fn compiled_functions_call_each_other_and_hosts_with_several_results() {
    let mut j = jit();
    let hosts = [HostFn::with_results(
        "divmod",
        divmod as *const u8,
        &[Type::I64, Type::I64],
        &[Type::I64, Type::I64],
    )];
    let compile = |j: &mut Jit, g: &Graph, name| {
        vssa::verify(g).unwrap();
        let s = vssa_schedule::schedule(g).unwrap();
        j.compile_owned(g, &s, &hosts, name).unwrap()
    };
    let (b, c, a) = (sum_and_difference(), scale(), caller());
    let b_code = compile(&mut j, &b, "b");
    let c_code = compile(&mut j, &c, "c");
    // A direct callee must be defined before code calling it is placed.
    let s = vssa_schedule::schedule(&a).unwrap();
    let e = j.compile_owned(&a, &s, &hosts, "a").unwrap_err();
    assert!(e.to_string().contains("u1 is not defined"), "{e}");
    j.define_function(1, b_code.code_ptr());
    let a_code = compile(&mut j, &a, "a");
    assert!(a_code
        .image()
        .relocs
        .iter()
        .any(|r| r.target == RelocTarget::Function(1)));

    let mut buf = [0i64; 9];
    buf[0] = 40;
    buf[1] = 9;
    buf[2] = 1.5f64.to_bits() as i64;
    buf[3] = c_code.code_ptr() as i64;
    // SAFETY: `a` reads and writes `buf`'s 72 bytes and calls `b`, `c`
    // and `divmod`, all alive and of the signatures its calls name.
    assert_eq!(unsafe { a_code.call(buf.as_mut_ptr().cast()) }, 0);
    assert_eq!(&buf[4..6], &[49, 31]);
    assert_eq!(f64::from_bits(buf[6] as u64), -4.5);
    assert_eq!(&buf[7..9], &[1, 18]);

    // The same through the LIR interpreter (function numbers: `a` 0, `b`
    // 1, `c` 2), with the same addresses.
    let functions = [a, b, c];
    let addresses = [0, 0, c_code.code_ptr() as i64];
    let module = vssa::interp::Module {
        functions: &functions,
        addresses: &addresses,
    };
    let mut bytes = Vec::new();
    for v in &buf[..4] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.resize(72, 0);
    let mut mem = vssa::interp::Memory::from_bytes(0x1000, bytes);
    let mut host = |_: u32, a: &[i64]| vec![a[0] / a[1], a[0] % a[1]];
    vssa::interp::eval_module(module, 0, &[0x1000], &mut mem, &mut host, 1000, true).unwrap();
    let got: Vec<i64> = mem
        .bytes()
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(&got[4..9], &buf[4..9]);

    // A typed function called from Rust through its adapter.
    let caller = crate::TypedCaller::new(&mut j, functions[1].signature().unwrap()).unwrap();
    // SAFETY: `b` has the adapter's signature and reads no memory.
    let r = unsafe { caller.call(b_code.code_ptr(), &[7, 10]) }.unwrap();
    assert_eq!(r, vec![17, -3]);
}

#[test]
fn typed_functions_check_returns_and_parameters() {
    // A return whose value count differs from the signature is an error,
    // not malformed IR.
    let mut g = Graph::new();
    g.set_signature(sig(&[Type::I64], &[Type::I64, Type::I64]));
    let e = g.entry().unwrap();
    let x = g.param(e.start, 0, Type::I64).unwrap();
    let r = g.ret_values(e.ctrl, e.mem, &[x]).unwrap();
    g.finish(&[r]).unwrap();
    let s = vssa_schedule::schedule(&g).unwrap();
    let err = jit().compile(&g, &s, &[], "bad").unwrap_err();
    assert!(err.to_string().contains("returns 1 values"), "{err}");
}

#[test]
fn more_results_than_return_registers() {
    // Four integer and four float results: more than x86-64's two of each
    // return registers, so Cranelift returns the rest through memory.
    let ints = [Type::I64, Type::I32, Type::I8, Type::I64];
    let floats = [Type::F64, Type::F32, Type::F64, Type::F32];
    for results in [ints, floats] {
        let mut g = Graph::new();
        let s = sig(&[Type::I64], &results);
        g.set_signature(s);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let mut vals = Vec::new();
        for (k, &t) in results.iter().enumerate() {
            let kc = g.iconst(Type::I64, k as i64 + 1).unwrap();
            let v = g.bin(BinOp::Mul, x, kc).unwrap();
            vals.push(match t {
                Type::I64 => v,
                Type::F32 | Type::F64 => g.fconv(vssa::FConvOp::SToF, t, v).unwrap(),
                _ => g.conv(ConvOp::Trunc, t, v).unwrap(),
            });
        }
        let r = g.ret_values(e.ctrl, e.mem, &vals).unwrap();
        g.finish(&[r]).unwrap();
        let sched = vssa_schedule::schedule(&g).unwrap();
        let mut j = jit();
        let code = j.compile_owned(&g, &sched, &[], "many").unwrap();
        let caller = crate::TypedCaller::new(&mut j, s).unwrap();
        // SAFETY: `code` has signature `s` and touches no memory.
        let got = unsafe { caller.call(code.code_ptr(), &[300]) }.unwrap();
        let mut mem = vssa::interp::Memory::new(0, 0);
        let functions = [g];
        let module = vssa::interp::Module {
            functions: &functions,
            addresses: &[],
        };
        let want =
            vssa::interp::eval_module(module, 0, &[300], &mut mem, &mut |_, _| vec![], 100, true);
        assert_eq!(Ok(got), want);
    }
}
