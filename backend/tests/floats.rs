//! Floats and integer division in native code against the LIR interpreter.
//!
//! Values enter through memory (the entry takes only the context pointer),
//! so nothing can be folded at compile time unless a test asks for it, and
//! every result is stored back; a run compares the whole buffer, byte for
//! byte, with the interpreter's. The LIR defines every bit of a float
//! result (computed NaNs are canonical), so the comparison is exact,
//! NaNs included.
//!
//! * `every_float_op_on_edge_values`: every float operation, conversion and
//!   test on all pairs of edge values (zeros of both signs, infinities,
//!   NaNs with payloads, subnormals, the limits of every integer width).
//! * `division_edges`: division and remainder of every width by 0 and -1.
//! * `random_float_expressions` (proptest): random expressions over loaded
//!   values and constants agree between the interpreter on the graph built
//!   without peepholes, the interpreter on the optimized graph, and native
//!   code of the optimized graph.

use proptest::prelude::*;
use vssa::interp::{self, Memory};
use vssa::{BinOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Graph, GraphError, NodeId, Type};
use vssa_backend::{Jit, JitOptions};

/// Where the buffer sits for the interpreter.
const BASE: i64 = 0x1_0000;
const BUF: usize = 1024;
/// Results go to 8-byte slots from here on.
const FIRST_SLOT: i32 = 64;

const INTS: [Type; 4] = [Type::I8, Type::I16, Type::I32, Type::I64];

fn jit() -> Jit {
    Jit::new(JitOptions {
        verify: true,
        ..JitOptions::default()
    })
    .unwrap()
}

/// Runs `g` natively on a copy of `buf` and returns the buffer after.
fn native(j: &mut Jit, g: &Graph, buf: &[u8]) -> Vec<u8> {
    let s = vssa_schedule::schedule(g).expect("schedule");
    let code = j.compile(g, &s, &[], "floats").expect("compile");
    let mut out = buf.to_vec();
    // SAFETY: the graphs here read and write only slots below `BUF`
    // (checked by the interpreter, whose memory is `BUF` bytes long, on the
    // same graph before), and call no host function.
    let r = unsafe { j.call(&code, out.as_mut_ptr()) }.expect("call");
    assert_eq!(r, 0);
    out
}

/// Runs `g` in the LIR interpreter on a copy of `buf`.
fn interpreted(g: &Graph, buf: &[u8]) -> Vec<u8> {
    let mut mem = Memory::from_bytes(BASE, buf.to_vec());
    let mut hosts = |_: u32, _: &[i64]| -> i64 { panic!("no host calls") };
    let r = interp::eval(g, &[BASE], &mut mem, &mut hosts, 1 << 20).expect("interpreter");
    assert_eq!(r, 0);
    mem.bytes().to_vec()
}

/// A straight-line function of the buffer: `body` gets the graph, the
/// buffer pointer and the control; it returns the values to store, which
/// go to consecutive slots from [`FIRST_SLOT`].
fn function(
    simplify: bool,
    body: impl FnOnce(&mut Graph, NodeId, NodeId, NodeId) -> Result<Vec<NodeId>, GraphError>,
) -> Graph {
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::Ptr).unwrap();
    let values = body(&mut g, p, e.ctrl, e.mem).unwrap();
    let mut mem = e.mem;
    for (k, v) in values.into_iter().enumerate() {
        mem = g
            .store(e.ctrl, mem, p, FIRST_SLOT + 8 * k as i32, v)
            .unwrap();
    }
    let zero = g.iconst(Type::I32, 0).unwrap();
    let r = g.ret(e.ctrl, mem, zero).unwrap();
    g.finish(&[r]).unwrap();
    vssa::verify(&g).unwrap();
    g
}

/// Every float operation of type `ty` on `a` (offset 0) and `b` (offset
/// 8), every conversion and fits test of `a`, and every integer-to-float
/// conversion of the integer at offset 16 (read at each width).
fn all_ops(ty: Type) -> Graph {
    function(true, |g, p, c, m| {
        let a = g.load(c, m, p, 0, ty)?;
        let b = g.load(c, m, p, 8, ty)?;
        let mut out = Vec::new();
        for op in FBinOp::ALL {
            out.push(g.fbin(op, a, b)?);
        }
        for op in FUnOp::ALL {
            out.push(g.fun(op, a)?);
        }
        for op in FCmpOp::ALL {
            out.push(g.fcmp(op, a, b)?);
        }
        for to in INTS {
            out.push(g.fconv(FConvOp::FToSSat, to, a)?);
            out.push(g.fconv(FConvOp::FToUSat, to, a)?);
            for bits in [8, 16, 32, 64] {
                for op in FitsOp::ALL {
                    out.push(g.ffits(op, bits, a)?);
                }
            }
            let i = g.load(c, m, p, 16, to)?;
            out.push(g.fconv(FConvOp::SToF, ty, i)?);
            out.push(g.fconv(FConvOp::UToF, ty, i)?);
        }
        let (other, int) = if ty == Type::F32 {
            (FConvOp::Promote, Type::I32)
        } else {
            (FConvOp::Demote, Type::I64)
        };
        let other_ty = if ty == Type::F32 {
            Type::F64
        } else {
            Type::F32
        };
        out.push(g.fconv(other, other_ty, a)?);
        out.push(g.fconv(FConvOp::Bitcast, int, a)?);
        let i = g.load(c, m, p, 16, int)?;
        out.push(g.fconv(FConvOp::Bitcast, ty, i)?);
        Ok(out)
    })
}

/// Edge values as `F64` bit patterns.
fn edges64() -> Vec<u64> {
    let mut v: Vec<u64> = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        0.1,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        127.5,
        -128.9,
        255.9,
        256.0,
        65_535.5,
        -32_768.7,
        2_147_483_647.5,
        -2_147_483_648.0,
        2_147_483_648.0,
        4_294_967_295.9,
        9_223_372_036_854_775_808.0,
        -9_223_372_036_854_775_808.0,
        18_446_744_073_709_551_616.0,
        9_007_199_254_740_993.0,
        1e300,
        3.4e38,
    ]
    .iter()
    .map(|x: &f64| x.to_bits())
    .collect();
    v.extend([
        0x7ff8_0000_0000_0000, // canonical NaN
        0xfff8_0000_0000_1234, // negative NaN with a payload
        0x7ff0_0000_0000_0001, // signalling NaN
    ]);
    v
}

/// Edge values as `F32` bit patterns.
fn edges32() -> Vec<u32> {
    let mut v: Vec<u32> = edges64()
        .iter()
        .filter(|&&b| !f64::from_bits(b).is_nan())
        .map(|&b| (f64::from_bits(b) as f32).to_bits())
        .collect();
    v.extend([
        0x7fc0_0000,
        0xffc0_1234,
        0x7f80_0001,
        0x0000_0001,
        0x8000_0001,
    ]);
    v
}

/// Integers for the integer-to-float conversions (and bit casts).
const INT_EDGES: [i64; 10] = [
    0,
    1,
    -1,
    i64::MIN,
    i64::MAX,
    (1 << 53) + 1,
    (1 << 24) + 1,
    0x7fff_ffff,
    0x8000_0000,
    0x7ff8_0000_0000_0001,
];

fn check_all_ops(ty: Type, values: &[u64]) {
    let g = all_ops(ty);
    let mut j = jit();
    let s = vssa_schedule::schedule(&g).unwrap();
    let code = j.compile(&g, &s, &[], "all_ops").unwrap();
    let mut runs = 0;
    for (k, &a) in values.iter().enumerate() {
        for &b in values {
            let mut buf = vec![0u8; BUF];
            buf[..8].copy_from_slice(&a.to_le_bytes());
            buf[8..16].copy_from_slice(&b.to_le_bytes());
            let i = INT_EDGES[(k + runs) % INT_EDGES.len()];
            buf[16..24].copy_from_slice(&i.to_le_bytes());
            let want = interpreted(&g, &buf);
            let mut got = buf.clone();
            // SAFETY: as in `native`: the interpreter has just run this
            // graph within `BUF` bytes.
            let r = unsafe { j.call(&code, got.as_mut_ptr()) }.unwrap();
            assert_eq!(r, 0);
            if got != want {
                let at = (0..BUF).find(|&x| got[x] != want[x]).unwrap();
                let slot = (at as i32 - FIRST_SLOT) / 8;
                panic!(
                    "{ty} a={a:#x} b={b:#x} i={i}: result {slot} differs: native {:02x?}, interpreter {:02x?}",
                    &got[at & !7..(at & !7) + 8],
                    &want[at & !7..(at & !7) + 8]
                );
            }
            runs += 1;
        }
    }
    assert!(runs > 1000, "{runs}");
}

#[test]
fn every_float_op_on_edge_values() {
    check_all_ops(Type::F64, &edges64());
    let e32: Vec<u64> = edges32().into_iter().map(u64::from).collect();
    check_all_ops(Type::F32, &e32);
}

#[test]
fn division_edges() {
    for ty in INTS {
        let g = function(true, |g, p, c, m| {
            let a = g.load(c, m, p, 0, ty)?;
            let b = g.load(c, m, p, 8, ty)?;
            let mut out = Vec::new();
            for op in [BinOp::Sdiv, BinOp::Udiv, BinOp::Srem, BinOp::Urem] {
                out.push(g.bin(op, a, b)?);
            }
            Ok(out)
        });
        let bits = ty.bits().unwrap();
        let min = ty.normalize(1i64 << (bits - 1));
        let mut j = jit();
        let values = [0, 1, -1, 2, -2, 7, -7, min, min + 1, ty.normalize(i64::MAX)];
        for a in values {
            for b in values {
                let mut buf = vec![0u8; BUF];
                buf[..8].copy_from_slice(&a.to_le_bytes());
                buf[8..16].copy_from_slice(&b.to_le_bytes());
                let want = interpreted(&g, &buf);
                let got = native(&mut j, &g, &buf);
                let results = FIRST_SLOT as usize..FIRST_SLOT as usize + 32;
                assert!(
                    got == want,
                    "{ty} {a} {b}: native {:?}, interpreter {:?}",
                    &got[results.clone()],
                    &want[results]
                );
            }
        }
        // The defined results, read back from the interpreter's run.
        let mut buf = vec![0u8; BUF];
        buf[..8].copy_from_slice(&min.to_le_bytes());
        buf[8..16].copy_from_slice(&(-1i64).to_le_bytes());
        let out = native(&mut j, &g, &buf);
        let slot = |k: usize| {
            let at = FIRST_SLOT as usize + 8 * k;
            ty.normalize(i64::from_le_bytes(out[at..at + 8].try_into().unwrap()))
        };
        assert_eq!((slot(0), slot(2)), (min, 0), "{ty}: MIN / -1, MIN % -1");
        buf[8..16].copy_from_slice(&0i64.to_le_bytes());
        let out = native(&mut j, &g, &buf);
        let slot = |k: usize| {
            let at = FIRST_SLOT as usize + 8 * k;
            ty.normalize(i64::from_le_bytes(out[at..at + 8].try_into().unwrap()))
        };
        assert_eq!(
            [slot(0), slot(1), slot(2), slot(3)],
            [0, 0, min, min],
            "{ty}: by 0"
        );
    }
}

extern "C" fn scale(a: f64, b: f32) -> f64 {
    a * f64::from(b)
}

/// Host functions take and return floats in float registers.
#[test]
fn host_calls_with_float_arguments_and_result() {
    let hosts = [vssa_backend::HostFn::new(
        "scale",
        scale as *const u8,
        &[Type::F64, Type::F32],
        Some(Type::F64),
    )];
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::Ptr).unwrap();
    let a = g.load(e.ctrl, e.mem, p, 0, Type::F64).unwrap();
    let b = g.load(e.ctrl, e.mem, p, 8, Type::F32).unwrap();
    let (m, r) = g.call(e.ctrl, e.mem, 0, &[a, b], Some(Type::F64)).unwrap();
    let m = g.store(e.ctrl, m, p, 16, r.unwrap()).unwrap();
    let zero = g.iconst(Type::I32, 0).unwrap();
    let ret = g.ret(e.ctrl, m, zero).unwrap();
    g.finish(&[ret]).unwrap();
    vssa::verify(&g).unwrap();
    let s = vssa_schedule::schedule(&g).unwrap();
    let mut j = jit();
    let code = j.compile(&g, &s, &hosts, "scale").unwrap();
    let mut buf = vec![0u8; 32];
    buf[..8].copy_from_slice(&1.5f64.to_le_bytes());
    buf[8..12].copy_from_slice(&(-4.0f32).to_le_bytes());
    // SAFETY: the graph reads 12 bytes and writes 8 at 16 of the 32-byte
    // buffer, and calls `scale` with the signature declared for it.
    let r = unsafe { j.call(&code, buf.as_mut_ptr()) }.unwrap();
    assert_eq!(r, 0);
    assert_eq!(f64::from_le_bytes(buf[16..24].try_into().unwrap()), -6.0);
}

// ---------------------------------------------------------------------------
// Random float expressions.
// ---------------------------------------------------------------------------

/// One step of a random expression; fields pick among earlier values
/// (modulo how many there are), so any numbers make a valid program.
#[derive(Clone, Debug)]
struct Step {
    kind: u8,
    sub: u8,
    a: u8,
    b: u8,
    k: u64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u64>(),
    )
        .prop_map(|(kind, sub, a, b, k)| Step { kind, sub, a, b, k })
}

/// A float input: mostly edge values, sometimes any bits.
fn float_bits() -> impl Strategy<Value = u64> {
    let edges = edges64();
    prop_oneof![
        3 => (0..edges.len()).prop_map(move |i| edges[i]),
        1 => any::<u64>(),
    ]
}

/// The values built so far, by type.
#[derive(Default)]
struct Pool {
    f32s: Vec<NodeId>,
    f64s: Vec<NodeId>,
    ints: Vec<NodeId>,
}

impl Pool {
    fn of(&mut self, ty: Type) -> &mut Vec<NodeId> {
        match ty {
            Type::F32 => &mut self.f32s,
            Type::F64 => &mut self.f64s,
            _ => &mut self.ints,
        }
    }
}

fn pick(v: &[NodeId], i: u8) -> NodeId {
    v[i as usize % v.len()]
}

/// Builds the program: loads of two `F64`s, two `F32`s and an `I64`, then
/// the steps; stores every value computed.
fn expression(steps: &[Step], simplify: bool) -> Graph {
    function(simplify, |g, p, c, m| {
        let mut pool = Pool::default();
        pool.f64s.push(g.load(c, m, p, 0, Type::F64)?);
        pool.f64s.push(g.load(c, m, p, 8, Type::F64)?);
        pool.f32s.push(g.load(c, m, p, 16, Type::F32)?);
        pool.f32s.push(g.load(c, m, p, 20, Type::F32)?);
        pool.ints.push(g.load(c, m, p, 24, Type::I64)?);
        let mut out = Vec::new();
        for s in steps {
            let ty = if s.sub & 0x80 == 0 {
                Type::F64
            } else {
                Type::F32
            };
            let a = pick(pool.of(ty), s.a);
            let b = pick(pool.of(ty), s.b);
            let (v, vty) = match s.kind % 8 {
                0 => (g.fbin(FBinOp::ALL[s.sub as usize % 7], a, b)?, ty),
                1 => (g.fun(FUnOp::ALL[s.sub as usize % 7], a)?, ty),
                2 => (g.fcmp(FCmpOp::ALL[s.sub as usize % 14], a, b)?, Type::I8),
                3 => {
                    let bits = [8, 16, 32, 64][s.b as usize % 4];
                    (g.ffits(FitsOp::ALL[s.sub as usize % 4], bits, a)?, Type::I8)
                }
                4 => {
                    let to = INTS[s.b as usize % 4];
                    let op = if s.sub & 1 == 0 {
                        FConvOp::FToSSat
                    } else {
                        FConvOp::FToUSat
                    };
                    let i = g.fconv(op, to, a)?;
                    // Widen to I64 for the integer pool.
                    let i = if to == Type::I64 {
                        i
                    } else {
                        g.conv(vssa::ConvOp::Sext, Type::I64, i)?
                    };
                    (i, Type::I64)
                }
                5 => {
                    let i = pick(&pool.ints, s.a);
                    let from = INTS[s.b as usize % 4];
                    let i = if from == Type::I64 {
                        i
                    } else {
                        g.conv(vssa::ConvOp::Trunc, from, i)?
                    };
                    let op = if s.sub & 1 == 0 {
                        FConvOp::SToF
                    } else {
                        FConvOp::UToF
                    };
                    (g.fconv(op, ty, i)?, ty)
                }
                6 => {
                    let (op, to) = if ty == Type::F32 {
                        (FConvOp::Promote, Type::F64)
                    } else {
                        (FConvOp::Demote, Type::F32)
                    };
                    (g.fconv(op, to, a)?, to)
                }
                _ => {
                    // A constant: folding must give the runtime result.
                    let v = if ty == Type::F32 {
                        g.iconst(Type::F32, i64::from(s.k as u32))?
                    } else {
                        g.iconst(Type::F64, s.k as i64)?
                    };
                    (v, ty)
                }
            };
            if vty == Type::I8 {
                let w = g.conv(vssa::ConvOp::Uext, Type::I64, v)?;
                pool.ints.push(w);
            } else {
                pool.of(vty).push(v);
            }
            out.push(v);
        }
        Ok(out)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_float_expressions(
        steps in prop::collection::vec(step(), 1..40),
        x in float_bits(),
        y in float_bits(),
        z in float_bits(),
        i in any::<i64>(),
    ) {
        let mut buf = vec![0u8; BUF];
        buf[..8].copy_from_slice(&x.to_le_bytes());
        buf[8..16].copy_from_slice(&y.to_le_bytes());
        buf[16..20].copy_from_slice(&(f64::from_bits(z) as f32).to_bits().to_le_bytes());
        buf[20..24].copy_from_slice(&(z as u32).to_le_bytes());
        buf[24..32].copy_from_slice(&i.to_le_bytes());
        let plain = expression(&steps, false);
        let want = interpreted(&plain, &buf);
        let mut opt = expression(&steps, true);
        vssa::optimize(&mut opt).unwrap();
        vssa::verify(&opt).unwrap();
        prop_assert_eq!(&interpreted(&opt, &buf), &want, "optimized");
        let mut j = jit();
        prop_assert_eq!(&native(&mut j, &opt, &buf), &want, "native optimized");
        prop_assert_eq!(&native(&mut j, &plain, &buf), &want, "native plain");
    }
}
