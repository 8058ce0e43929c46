//! The `lir` target: one random graph, four ways to run it.
//!
//! A generator builds a random well-formed function of one `Ptr` parameter
//! (a byte buffer of [`MEM_LEN`] bytes): arithmetic of every width with
//! conversions, selects and comparisons, integer division and remainder
//! (divisors that are often 0 or -1), `F32`/`F64` arithmetic, comparisons,
//! rounding, conversions to and from integers, fits tests and bit casts
//! (on constants that are often zeros of either sign, infinities, NaNs with
//! payloads or integer limits, and on floats loaded from the random
//! buffer), loads and stores of every value type at constant (and some
//! dynamic) offsets, in alias class 0 or in classes 1 to 3 that each own a
//! quarter of the buffer (so the classes' promise holds), host calls, diamonds with phis, and counted loops
//! with loop phis, nested a few deep, and guards (each with a frame state
//! of a few values of any type) that deoptimize on some inputs. It ends by
//! storing and returning a value. The same seed builds the same program
//! twice:
//!
//! 1. with construction peepholes off, run by the LIR interpreter: the
//!    reference;
//! 2. with peepholes on, then after [`vssa::optimize`], interpreted;
//! 3. native code (schedule, Cranelift) of the optimized graph and of the
//!    unoptimized one.
//!
//! Everything is compared bit for bit, floats included: the LIR defines a
//! computed NaN to be the canonical one (see `vssa::FBinOp`), so even NaN
//! signs and payloads must agree (a float that only moved, through loads,
//! stores, phis, selects, bit casts, negation or `copysign`, keeps its
//! bits, signalling NaNs too).
//!
//! All must return the same value and leave the same buffer, or all must
//! deoptimize to the same resume point with the same frame values and the
//! same buffer (the stores before the failing guard); the graph is
//! verified after each phase. Native code has its guards lowered by
//! [`vssa_deopt::lower_guards`] first, with a deopt buffer just past the
//! compared bytes and exit ids that no normal return can produce.
//!
//! A failure is minimised by regenerating the same seed with a smaller
//! statement budget: the generator draws the same numbers until the budget
//! runs out, so a smaller budget is a prefix of the same program.

use crate::rng::Rng;
use crate::{bump, guarded, Counters, Failure, Outcome};
use vssa::interp::{self, InterpError, Memory};
use vssa::{
    BinOp, CmpOp, ConvOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Graph, GraphError, NodeId,
    Signature, Type, UnOp,
};
use vssa_backend::{HostFn, Jit, JitOptions, OwnedCode};
use vssa_deopt::{DeoptAbi, ExitTable};

/// Bytes of the buffer the function works on.
pub const MEM_LEN: usize = 256;
/// Guard bytes on each side of the native buffer: a miscompiled address a
/// little off is caught as a changed guard instead of corrupting the heap.
const GUARD: usize = 4096;
const GUARD_BYTE: u8 = 0xA5;
/// The buffer's address for the interpreter.
const BASE: i64 = 0x10_0000;
/// Generated loops run at most a few hundred iterations in all.
const FUEL: u64 = 1 << 24;
/// Statement budget of a generated function.
const MAX_BUDGET: i64 = 40;
/// Compiles per [`Jit`] before a fresh one frees the code memory.
const COMPILES_PER_JIT: u32 = 200;
/// Most slots a generated frame has.
const MAX_SLOTS: usize = 3;
/// The deopt buffer's slots: a frame's slots, an object's fields and an
/// inlined frame's caller all take some (see `Gen::frame_slot`).
const BUFFER_SLOTS: usize = 10;
/// The native deopt buffer sits right after the `MEM_LEN` compared bytes,
/// where no generated access reaches (the interpreter's memory ends there).
const DEOPT_OFFSET: usize = MEM_LEN;
const DEOPT_LEN: usize = 8 * BUFFER_SLOTS;
/// The most callees (functions with signatures) a seed generates.
const MAX_CALLEES: usize = 3;
/// Statement budget of a callee.
const MAX_CALLEE_BUDGET: i64 = 12;
/// The callees' addresses, for indirect calls: slot `k` (8 bytes) holds
/// function `k`'s address (function 0 is the generated entry). Past the
/// deopt buffer, where no generated store reaches; in the interpreter's
/// memory too, holding the same (native) addresses.
const TABLE_OFFSET: usize = DEOPT_OFFSET + DEOPT_LEN;
const TABLE_LEN: usize = 8 * (MAX_CALLEES + 1);
/// Exit ids of lowered guards start here. A function with guards returns
/// an `I32` masked with [`RET_MASK`], so no normal return looks like an exit.
const FIRST_EXIT: i64 = 0x4000_0000;
const RET_MASK: i64 = FIRST_EXIT - 1;

const INTS: [Type; 4] = [Type::I8, Type::I16, Type::I32, Type::I64];
/// Every value type a generated value may have (pointers aside).
const VALUES: [Type; 6] = [
    Type::I8,
    Type::I16,
    Type::I32,
    Type::I64,
    Type::F32,
    Type::F64,
];
/// Float constants worth hitting: zeros of both signs, infinities, NaNs,
/// ties for rounding, the edges of the integer ranges.
const FLOAT_EDGES: [f64; 20] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -2.5,
    3.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
    5e-324,
    127.5,
    -128.0,
    255.9,
    2_147_483_648.0,
    -2_147_483_648.5,
    9_223_372_036_854_775_808.0,
    18_446_744_073_709_551_616.0,
    1e300,
];
/// NaNs that are not canonical: negative, with a payload, signalling.
const ODD_NANS: [u64; 3] = [
    0xfff8_0000_0000_1234,
    0x7ff0_0000_0000_0001,
    0x7ff8_dead_beef_0000,
];
const BINS: [BinOp; 13] = BinOp::ALL;
const CMPS: [CmpOp; 10] = CmpOp::ALL;

/// Host function 0 of the generated calls (also what the interpreter calls).
extern "C" fn host_mix(a: i64, b: i64) -> i64 {
    a.wrapping_mul(0x9E37_79B9).wrapping_add(b) ^ (b >> 7)
}

/// Host function 1.
extern "C" fn host_rot(a: i64, b: i64) -> i64 {
    a.rotate_left((b & 63) as u32).wrapping_sub(b)
}

/// Host function 2: two results, through the out-pointer.
extern "C" fn host_pair(a: i64, b: i64, out: *mut [i64; 2]) {
    // SAFETY: generated code passes its slot for two 8-byte results.
    unsafe { out.write(pair(a, b)) };
}

fn pair(a: i64, b: i64) -> [i64; 2] {
    [a.wrapping_add(b), (a ^ b).rotate_right(13)]
}

fn host_table() -> Vec<HostFn> {
    let sig = [Type::I64, Type::I64];
    vec![
        HostFn::new("mix", host_mix as *const u8, &sig, Some(Type::I64)),
        HostFn::new("rot", host_rot as *const u8, &sig, Some(Type::I64)),
        HostFn::with_results("pair", host_pair as *const u8, &sig, &sig),
    ]
}

fn interp_host(func: u32, args: &[i64]) -> Vec<i64> {
    let a = args.first().copied().unwrap_or(0);
    let b = args.get(1).copied().unwrap_or(0);
    match func {
        0 => vec![host_mix(a, b)],
        1 => vec![host_rot(a, b)],
        _ => pair(a, b).to_vec(),
    }
}

/// The signatures of seed `seed`'s callees (function `1 + j` has the
/// `j`-th): a buffer pointer, then up to three values; up to three results.
pub fn callee_sigs(seed: u64) -> Vec<Signature> {
    let mut rng = Rng::new(seed ^ 0x0CA1_1EE5);
    let n = rng.range(0, MAX_CALLEES as i64) as usize;
    (0..n)
        .map(|_| {
            let mut params = vec![Type::Ptr];
            for _ in 0..rng.range(0, 3) {
                params.push(*rng.pick(&VALUES));
            }
            let results: Vec<Type> = (0..rng.range(0, 3)).map(|_| *rng.pick(&VALUES)).collect();
            Signature::new(&params, &results).expect("a small signature of value types")
        })
        .collect()
}

/// Callee `j` of seed `seed` (function `1 + j`, of signature
/// `callee_sigs(seed)[j]`), with construction peepholes on or off: like the
/// entry, but no guards (a function with a signature has no exit codes),
/// and it calls only callees after it (so calls never recurse).
pub fn generate_callee(seed: u64, j: usize, simplify: bool) -> Result<Graph, GraphError> {
    let sigs = callee_sigs(seed);
    let sig = sigs[j];
    let mut rng = Rng::new(seed ^ 0x0CA1_1EE5 ^ ((j as u64 + 1) << 40));
    let budget = rng.range(1, MAX_CALLEE_BUDGET) as u32;
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    g.set_signature(sig);
    let e = g.entry()?;
    let base = g.param(e.start, 0, Type::Ptr)?;
    let mut vals = Vec::new();
    for (i, t) in sig.params().into_iter().enumerate().skip(1) {
        vals.push((g.param(e.start, i as u32, t)?, t));
    }
    let mut gen = Gen {
        g,
        rng: &mut rng,
        ctrl: e.ctrl,
        mem: e.mem,
        base,
        vals,
        next_key: 1,
        next_resume: 1,
        guards: 0,
        budget,
        guards_allowed: false,
        callees: sigs[j + 1..].to_vec(),
        first_callee: j as u32 + 2,
    };
    while gen.budget > 0 {
        gen.budget -= 1;
        gen.stmt(0)?;
    }
    let mut results = Vec::with_capacity(sig.result_count());
    for t in sig.results() {
        results.push(gen.pick(t)?);
    }
    let ret = gen.g.ret_values(gen.ctrl, gen.mem, &results)?;
    gen.g.finish(&[ret])?;
    Ok(gen.g)
}

/// A generated function.
pub struct Generated {
    pub graph: Graph,
    /// The type of the returned value (`I32` if the function has guards).
    pub ret_ty: Type,
    /// The buffer parameter (the deopt context of lowered guards).
    pub base: NodeId,
    /// Guards generated (some may have been folded away).
    pub guards: u32,
    /// Initial buffer contents.
    pub init: Vec<u8>,
    /// Statements generated.
    pub budget: u32,
}

/// Builds function `seed` with construction peepholes on or off, with at
/// most `budget` statements (`None`: the seed's own budget).
pub fn generate(seed: u64, simplify: bool, budget: Option<u32>) -> Result<Generated, GraphError> {
    let mut rng = Rng::new(seed);
    let own = rng.range(1, MAX_BUDGET) as u32;
    let budget = budget.map_or(own, |b| b.min(own));
    let init = rng.bytes(MEM_LEN);
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    let e = g.entry()?;
    let base = g.param(e.start, 0, Type::Ptr)?;
    let mut gen = Gen {
        g,
        rng: &mut rng,
        ctrl: e.ctrl,
        mem: e.mem,
        base,
        vals: Vec::new(),
        next_key: 1,
        next_resume: 1,
        guards: 0,
        budget,
        guards_allowed: true,
        callees: callee_sigs(seed),
        first_callee: 1,
    };
    // The top level runs until the budget is spent; nested blocks are short.
    while gen.budget > 0 {
        gen.budget -= 1;
        gen.stmt(0)?;
    }
    let mut ret_ty = *gen.rng.pick(&INTS);
    let mut v = gen.pick(ret_ty)?;
    let off = (MEM_LEN - 8) as i32;
    let mem = gen.g.store(gen.ctrl, gen.mem, base, off, v)?;
    if gen.guards > 0 {
        // Keep normal returns below the exit ids; the whole value is still
        // compared through the store above.
        v = match ret_ty {
            Type::I8 | Type::I16 => gen.g.conv(ConvOp::Uext, Type::I32, v)?,
            Type::I64 => gen.g.conv(ConvOp::Trunc, Type::I32, v)?,
            _ => v,
        };
        let mask = gen.g.iconst(Type::I32, RET_MASK)?;
        v = gen.g.bin(BinOp::And, v, mask)?;
        ret_ty = Type::I32;
    }
    let ret = gen.g.ret(gen.ctrl, mem, v)?;
    gen.g.finish(&[ret])?;
    Ok(Generated {
        graph: gen.g,
        ret_ty,
        base,
        guards: gen.guards,
        init,
        budget,
    })
}

/// The generator's state: where code goes and what values are in scope.
struct Gen<'r> {
    g: Graph,
    rng: &'r mut Rng,
    ctrl: NodeId,
    mem: NodeId,
    base: NodeId,
    /// Values that dominate the current point, with their types.
    vals: Vec<(NodeId, Type)>,
    next_key: u64,
    /// The resume point of the next frame state (distinct per guard, so
    /// runs of differently optimized graphs compare by it).
    next_resume: u64,
    guards: u32,
    budget: u32,
    /// Whether guards may be generated (not in functions with signatures).
    guards_allowed: bool,
    /// The signatures of the functions this one may call.
    callees: Vec<Signature>,
    /// The function number of `callees[0]`.
    first_callee: u32,
}

type R<T = ()> = Result<T, GraphError>;

impl Gen<'_> {
    fn konst(&mut self, ty: Type) -> i64 {
        if ty.is_float() {
            return self.float_konst(ty);
        }
        let bits = ty.bits().unwrap_or(64);
        let v = match self.rng.weighted(&[2, 2, 2, 4, 2, 2, 3]) {
            0 => 0,
            1 => 1,
            2 => -1,
            3 => self.rng.range(-8, 8),
            4 => (1i64 << (bits - 1)).wrapping_sub(1), // max
            5 => 1i64.wrapping_shl(bits - 1),          // min (after normalizing)
            _ => self.rng.next_u64() as i64,
        };
        ty.normalize(v)
    }

    /// The bits of a float constant of type `ty`.
    fn float_konst(&mut self, ty: Type) -> i64 {
        let x = match self.rng.weighted(&[6, 1, 2, 2]) {
            0 => *self.rng.pick(&FLOAT_EDGES),
            1 => {
                let bits = *self.rng.pick(&ODD_NANS);
                return match ty {
                    // The same sign and payload at 32 bits.
                    Type::F32 => ty.normalize(((bits >> 32) as u32 | 0x7f80_0000) as i64),
                    _ => bits as i64,
                };
            }
            2 => self.rng.range(-300, 300) as f64 / 4.0,
            _ => return ty.normalize(self.rng.next_u64() as i64),
        };
        match ty {
            Type::F32 => vssa::float::bits_of_f32(x as f32),
            _ => vssa::float::bits_of_f64(x),
        }
    }

    /// A value of type `ty` in scope, or a new constant.
    fn pick(&mut self, ty: Type) -> R<NodeId> {
        let n = self.vals.iter().filter(|v| v.1 == ty).count() as u64;
        if n == 0 || self.rng.chance(1, 8) {
            let v = self.konst(ty);
            return self.g.iconst(ty, v);
        }
        let k = self.rng.below(n) as usize;
        Ok(self
            .vals
            .iter()
            .filter(|v| v.1 == ty)
            .nth(k)
            .map_or(self.base, |v| v.0))
    }

    fn any_ty(&mut self) -> Type {
        *self.rng.pick(&INTS)
    }

    /// Any value type, floats included.
    fn any_value_ty(&mut self) -> Type {
        *self.rng.pick(&VALUES)
    }

    fn float_ty(&mut self) -> Type {
        *self.rng.pick(&[Type::F32, Type::F64])
    }

    /// One float operation (or an integer division, whose divisor is
    /// often 0 or -1) on values in scope.
    fn float_stmt(&mut self) -> R {
        let ty = self.float_ty();
        let (n, nty) = match self.rng.weighted(&[4, 3, 3, 4, 2, 2, 3]) {
            0 => {
                let op = *self.rng.pick(&FBinOp::ALL);
                let a = self.pick(ty)?;
                let b = self.pick(ty)?;
                (self.g.fbin(op, a, b)?, ty)
            }
            1 => {
                let op = *self.rng.pick(&FUnOp::ALL);
                let a = self.pick(ty)?;
                (self.g.fun(op, a)?, ty)
            }
            2 => {
                let op = *self.rng.pick(&FCmpOp::ALL);
                let a = self.pick(ty)?;
                let b = self.pick(ty)?;
                (self.g.fcmp(op, a, b)?, Type::I8)
            }
            3 => {
                let int = self.any_ty();
                let (op, from, to) = match self.rng.below(4) {
                    0 => (FConvOp::SToF, int, ty),
                    1 => (FConvOp::UToF, int, ty),
                    2 => (FConvOp::FToSSat, ty, int),
                    _ => (FConvOp::FToUSat, ty, int),
                };
                let a = self.pick(from)?;
                (self.g.fconv(op, to, a)?, to)
            }
            4 => {
                let op = *self.rng.pick(&FitsOp::ALL);
                let bits = *self.rng.pick(&[8u8, 16, 32, 64]);
                let a = self.pick(ty)?;
                (self.g.ffits(op, bits, a)?, Type::I8)
            }
            5 => {
                let int = if ty == Type::F32 {
                    Type::I32
                } else {
                    Type::I64
                };
                let (op, from, to) = match self.rng.below(4) {
                    0 => (FConvOp::Bitcast, ty, int),
                    1 => (FConvOp::Bitcast, int, ty),
                    2 => (FConvOp::Promote, Type::F32, Type::F64),
                    _ => (FConvOp::Demote, Type::F64, Type::F32),
                };
                let a = self.pick(from)?;
                (self.g.fconv(op, to, a)?, to)
            }
            _ => {
                let int = self.any_ty();
                let op = *self
                    .rng
                    .pick(&[BinOp::Sdiv, BinOp::Udiv, BinOp::Srem, BinOp::Urem]);
                let a = self.pick(int)?;
                let b = match self.rng.below(3) {
                    0 => self.g.iconst(int, 0)?,
                    1 => self.g.iconst(int, -1)?,
                    _ => self.pick(int)?,
                };
                (self.g.bin(op, a, b)?, int)
            }
        };
        self.vals.push((n, nty));
        Ok(())
    }

    fn block(&mut self, depth: u32) -> R {
        let n = self.rng.range(1, 6);
        for _ in 0..n {
            if self.budget == 0 {
                break;
            }
            self.budget -= 1;
            self.stmt(depth)?;
        }
        Ok(())
    }

    fn stmt(&mut self, depth: u32) -> R {
        let nest = if depth < 3 { 2 } else { 0 };
        let guard = if self.guards_allowed { 2 } else { 0 };
        let rotated = if self.guards_allowed { nest } else { 0 };
        match self.rng.weighted(&[
            1, 6, 2, 2, 2, 2, 3, 3, 1, guard, 5, nest, nest, 2, rotated, guard,
        ]) {
            0 => {
                let ty = self.any_value_ty();
                let v = self.konst(ty);
                let n = self.g.iconst(ty, v)?;
                self.vals.push((n, ty));
            }
            1 => {
                let ty = self.any_ty();
                let op = *self.rng.pick(&BINS);
                let a = self.pick(ty)?;
                let b = self.pick(ty)?;
                let n = self.g.bin(op, a, b)?;
                self.vals.push((n, ty));
            }
            2 => {
                let ty = self.any_ty();
                let op = *self.rng.pick(&[UnOp::Neg, UnOp::Not]);
                let a = self.pick(ty)?;
                let n = self.g.un(op, a)?;
                self.vals.push((n, ty));
            }
            3 => {
                let ty = self.any_ty();
                let op = *self.rng.pick(&CMPS);
                let a = self.pick(ty)?;
                let b = self.pick(ty)?;
                let n = self.g.cmp(op, a, b)?;
                self.vals.push((n, Type::I8));
            }
            4 => {
                let from = self.any_ty();
                let to = self.any_ty();
                let op = match (from.bits(), to.bits()) {
                    (Some(f), Some(t)) if t > f => *self.rng.pick(&[ConvOp::Uext, ConvOp::Sext]),
                    (Some(f), Some(t)) if t < f => ConvOp::Trunc,
                    _ => return Ok(()),
                };
                let a = self.pick(from)?;
                let n = self.g.conv(op, to, a)?;
                self.vals.push((n, to));
            }
            5 => {
                let cty = self.any_ty();
                let c = self.pick(cty)?;
                let ty = self.any_value_ty();
                let a = self.pick(ty)?;
                let b = self.pick(ty)?;
                let n = self.g.select(c, a, b)?;
                self.vals.push((n, ty));
            }
            6 => {
                let ty = self.any_value_ty();
                let (class, bytes) = self.alias_class();
                let (b, off) = self.address(ty, bytes)?;
                let n = self.g.load_class(self.ctrl, self.mem, b, off, ty, class)?;
                self.vals.push((n, ty));
            }
            7 => {
                let ty = self.any_value_ty();
                let v = self.pick(ty)?;
                let (class, bytes) = self.alias_class();
                let (b, off) = self.address(ty, bytes)?;
                self.mem = self.g.store_class(self.ctrl, self.mem, b, off, v, class)?;
            }
            8 => {
                let func = self.rng.below(2) as u32;
                let a = self.pick(Type::I64)?;
                let b = self.pick(Type::I64)?;
                let (m, r) = self
                    .g
                    .call(self.ctrl, self.mem, func, &[a, b], Some(Type::I64))?;
                self.mem = m;
                if let Some(r) = r {
                    self.vals.push((r, Type::I64));
                }
            }
            9 => self.guard()?,
            10 => self.float_stmt()?,
            11 => self.diamond(depth)?,
            12 => self.counted_loop(depth)?,
            13 => self.call()?,
            14 => self.rotated_loop(depth)?,
            _ => self.range_checks()?,
        }
        Ok(())
    }

    /// A call with several results: of the host function with two, or of
    /// a callee, directly or through its address in the table.
    fn call(&mut self) -> R {
        let kind = self.rng.below(3);
        if kind == 0 || self.callees.is_empty() {
            let a = self.pick(Type::I64)?;
            let b = self.pick(Type::I64)?;
            let (m, r) =
                self.g
                    .call_host(self.ctrl, self.mem, 2, &[a, b], &[Type::I64, Type::I64])?;
            self.mem = m;
            self.vals.extend(r.into_iter().map(|v| (v, Type::I64)));
            return Ok(());
        }
        let j = self.rng.below(self.callees.len() as u64) as usize;
        let sig = self.callees[j];
        let callee = self.first_callee + j as u32;
        let mut args = vec![self.base];
        for t in sig.params().into_iter().skip(1) {
            args.push(self.pick(t)?);
        }
        let (m, r) = if kind == 1 {
            self.g
                .call_direct(self.ctrl, self.mem, callee, sig, &args)?
        } else {
            let at = (TABLE_OFFSET + 8 * callee as usize) as i32;
            let target = self.g.load(self.ctrl, self.mem, self.base, at, Type::Ptr)?;
            self.g
                .call_indirect(self.ctrl, self.mem, target, sig, &args)?
        };
        self.mem = m;
        self.vals.extend(r.into_iter().zip(sig.results()));
        Ok(())
    }

    /// A guard on a condition that holds on most inputs, with a frame of up
    /// to [`MAX_SLOTS`] slots (sometimes the frame of inlined code, linked
    /// to a caller's frame of up to two slots); code goes on after it.
    fn guard(&mut self) -> R {
        let ty = self.any_ty();
        let cond = match self.rng.weighted(&[1, 4, 2]) {
            // A comparison result in scope: fails about half the time.
            0 if self.vals.iter().any(|v| v.1 == Type::I8) => self.pick(Type::I8)?,
            // `x != k` fails when x happens to be a small constant.
            1 => {
                let x = self.pick(ty)?;
                let k = self.konst(ty);
                let k = self.g.iconst(ty, k)?;
                self.g.cmp(CmpOp::Ne, x, k)?
            }
            // `x > small`: fails on the small (or, signed, negative) values.
            _ => {
                let a = self.pick(ty)?;
                let small = self.rng.range(0, 3);
                let b = self.g.iconst(ty, small)?;
                let op = *self.rng.pick(&[CmpOp::Ugt, CmpOp::Sgt]);
                self.g.cmp(op, a, b)?
            }
        };
        let n = self.rng.range(0, MAX_SLOTS as i64) as usize;
        let slots = self.frame_slots(n)?;
        let caller = if self.rng.chance(1, 4) {
            let n = self.rng.range(0, 2) as usize;
            let slots = self.frame_slots(n)?;
            let resume = self.next_resume;
            self.next_resume += 1;
            Some(self.g.frame_state(resume, self.mem, &slots)?)
        } else {
            None
        };
        let resume = self.next_resume;
        self.next_resume += 1;
        let frame = match caller {
            Some(c) => self.g.inlined_frame(resume, self.mem, c, &slots)?,
            None => self.g.frame_state(resume, self.mem, &slots)?,
        };
        let reason = self.rng.below(4) as u32;
        self.ctrl = self.g.guard(self.ctrl, cond, frame, reason)?;
        self.guards += 1;
        Ok(())
    }

    /// An alias class for an access and the bytes it may touch, keeping
    /// the classes' promise: class `k` of 1..=3 owns bytes
    /// `[64k, 64k + 64)` alone, class 0 (may alias anything) goes anywhere.
    fn alias_class(&mut self) -> (u32, std::ops::Range<i64>) {
        let class = self.rng.weighted(&[4, 1, 1, 1]) as u32;
        match class {
            0 => (0, 0..MEM_LEN as i64),
            k => (k, 64 * i64::from(k)..64 * i64::from(k) + 64),
        }
    }

    /// Up to `n` frame slots (fewer when nothing is in scope).
    fn frame_slots(&mut self, n: usize) -> R<Vec<NodeId>> {
        let mut slots = Vec::with_capacity(n);
        for _ in 0..n {
            if self.vals.is_empty() {
                break;
            }
            slots.push(self.frame_slot()?);
        }
        Ok(slots)
    }

    /// One frame slot: mostly a value in scope, sometimes a boxed `i64`, or
    /// an object to materialize with one or two fields (at most two buffer
    /// slots).
    fn frame_slot(&mut self) -> R<NodeId> {
        let k = self.rng.below(self.vals.len() as u64) as usize;
        let v = self.vals[k].0;
        match self.rng.weighted(&[6, 1, 1]) {
            0 => Ok(v),
            1 => {
                let x = self.pick(Type::I64)?;
                self.g.boxed(x)
            }
            _ => {
                let class = self.rng.below(3) as u32;
                let mut fields = vec![v];
                if self.rng.chance(1, 2) {
                    let k = self.rng.below(self.vals.len() as u64) as usize;
                    fields.push(self.vals[k].0);
                }
                self.g.materialize(class, &fields)
            }
        }
    }

    /// A base pointer and offset for an access of `ty` inside `bytes` of
    /// the buffer: the parameter itself, the parameter moved by a constant,
    /// or moved by a small computed amount (which the memory rules cannot
    /// see through).
    fn address(&mut self, ty: Type, bytes: std::ops::Range<i64>) -> R<(NodeId, i32)> {
        let width = ty.bytes().unwrap_or(8) as i64;
        let (lo, top) = (bytes.start, bytes.end - width);
        match self.rng.weighted(&[5, 2, 1]) {
            0 => Ok((self.base, self.rng.range(lo, top) as i32)),
            1 => {
                let total = self.rng.range(lo, top);
                let k = self.rng.range(0, MEM_LEN as i64 - 1);
                let kc = self.g.iconst(Type::I64, k)?;
                let b = self.g.ptr_add(self.base, kc)?;
                Ok((b, (total - k) as i32))
            }
            _ => {
                let x = self.pick(Type::I64)?;
                let seven = self.g.iconst(Type::I64, 7)?;
                let k = self.g.bin(BinOp::And, x, seven)?;
                let b = self.g.ptr_add(self.base, k)?;
                Ok((b, self.rng.range(lo, top - 7) as i32))
            }
        }
    }

    /// `if c { .. } else { .. }` with a memory phi and a few value phis.
    fn diamond(&mut self, depth: u32) -> R {
        let cty = self.any_ty();
        let c = if self.rng.chance(1, 2) {
            let a = self.pick(cty)?;
            let b = self.pick(cty)?;
            let op = *self.rng.pick(&CMPS);
            self.g.cmp(op, a, b)?
        } else {
            self.pick(cty)?
        };
        let (t, f) = self.g.branch(self.ctrl, c)?;
        let outer = self.vals.len();
        let mem0 = self.mem;
        let mut arms = Vec::with_capacity(2);
        for start in [t, f] {
            self.ctrl = start;
            self.mem = mem0;
            self.block(depth + 1)?;
            let defined: Vec<(NodeId, Type)> = self.vals.drain(outer..).collect();
            arms.push((self.ctrl, self.mem, defined));
        }
        let region = self.g.region(&[arms[0].0, arms[1].0])?;
        self.mem = self.g.phi(region, Type::Mem, &[arms[0].1, arms[1].1])?;
        self.ctrl = region;
        // A phi's inputs come from its arm, never from the other phis.
        let mut phis = Vec::new();
        for _ in 0..self.rng.range(0, 3) {
            let ty = self.any_value_ty();
            let mut ins = [region; 2];
            for (k, arm) in arms.iter().enumerate() {
                self.vals.extend_from_slice(&arm.2);
                ins[k] = self.pick(ty)?;
                self.vals.truncate(outer);
            }
            phis.push((self.g.phi(region, ty, &ins)?, ty));
        }
        self.vals.extend(phis);
        Ok(())
    }

    /// `for i in 0..n { .. }` with the memory and a few values carried.
    fn counted_loop(&mut self, depth: u32) -> R {
        let n = if self.rng.chance(1, 2) {
            let k = self.rng.range(0, 4);
            self.g.iconst(Type::I64, k)?
        } else {
            let x = self.pick(Type::I64)?;
            let three = self.g.iconst(Type::I64, 3)?;
            self.g.bin(BinOp::And, x, three)?
        };
        let key = self.next_key;
        self.next_key += 1;
        let lp = self.g.loop_header(key, self.ctrl)?;
        let zero = self.g.iconst(Type::I64, 0)?;
        let i = self.g.loop_phi(lp, key * 16, Type::I64, zero)?;
        let mphi = self.g.loop_phi(lp, key * 16 + 1, Type::Mem, self.mem)?;
        let mut carried = Vec::new();
        for k in 0..self.rng.range(0, 2) as u64 {
            let ty = self.any_value_ty();
            let entry = self.pick(ty)?;
            let p = self.g.loop_phi(lp, key * 16 + 2 + k, ty, entry)?;
            carried.push((p, ty));
        }
        let cond = self.g.cmp(CmpOp::Slt, i, n)?;
        let (body, exit) = self.g.branch(lp, cond)?;
        let outer = self.vals.len();
        self.vals.push((i, Type::I64));
        self.vals.extend_from_slice(&carried);
        self.ctrl = body;
        self.mem = mphi;
        self.block(depth + 1)?;
        let one = self.g.iconst(Type::I64, 1)?;
        let next = self.g.add(i, one)?;
        let mut backs = Vec::with_capacity(carried.len());
        for &(_, ty) in &carried {
            backs.push(self.pick(ty)?);
        }
        self.g.set_back_input(lp, self.ctrl)?;
        self.g.set_back_input(i, next)?;
        self.g.set_back_input(mphi, self.mem)?;
        for (&(p, _), &b) in carried.iter().zip(&backs) {
            self.g.set_back_input(p, b)?;
        }
        self.vals.truncate(outer + 1 + carried.len());
        self.ctrl = exit;
        self.mem = mphi;
        Ok(())
    }

    /// A rotated counted loop, `if entry { loop { top guards; ..; next =
    /// i ± 1 } while next rel bound }`, counting up from 0 to `n` or down
    /// from `n` (`n` at most 3) with a latch of any shape the induction
    /// analysis knows (`!=`, `<`, `<=`, signed or unsigned, sometimes
    /// negated or with swapped operands), so the guards at its top are
    /// invariant or induction-variable guards that hoisting moves.
    fn rotated_loop(&mut self, depth: u32) -> R {
        let n = if self.rng.chance(1, 2) {
            let k = self.rng.range(0, 3);
            self.g.iconst(Type::I64, k)?
        } else {
            let x = self.pick(Type::I64)?;
            let three = self.g.iconst(Type::I64, 3)?;
            self.g.bin(BinOp::And, x, three)?
        };
        let zero = self.g.iconst(Type::I64, 0)?;
        let one = self.g.iconst(Type::I64, 1)?;
        let up = self.rng.chance(1, 2);
        let kind = self.rng.below(4);
        // (start, step, the latch's `next rel bound`, the entry test)
        let (i0, step, rel, bound) = match (up, kind) {
            (true, 0) => (zero, 1, CmpOp::Ne, n),
            (true, 1) => (zero, 1, CmpOp::Slt, n),
            (true, 2) => (zero, 1, CmpOp::Ult, n),
            (true, _) => (zero, 1, CmpOp::Sle, self.g.sub(n, one)?),
            (false, 0) => (n, -1, CmpOp::Ne, zero),
            (false, 1) => (n, -1, CmpOp::Sgt, zero),
            (false, 2) => (n, -1, CmpOp::Ugt, zero),
            (false, _) => (n, -1, CmpOp::Sge, one),
        };
        // Entered when the first value is in range, so the loop ends.
        let entry = match rel {
            CmpOp::Ne if up => CmpOp::Slt,
            CmpOp::Ne => CmpOp::Sgt,
            r => r,
        };
        let test = self.g.cmp(entry, i0, bound)?;
        let (enter, skip) = self.g.branch(self.ctrl, test)?;
        let key = self.next_key;
        self.next_key += 1;
        let lp = self.g.loop_header(key, enter)?;
        let i = self.g.loop_phi(lp, key * 16, Type::I64, i0)?;
        let mem0 = self.mem;
        let mphi = self.g.loop_phi(lp, key * 16 + 1, Type::Mem, mem0)?;
        let outer = self.vals.len();
        let mut carried = Vec::new();
        for k in 0..self.rng.range(0, 1) as u64 {
            let ty = self.any_value_ty();
            let entry = self.pick(ty)?;
            let p = self.g.loop_phi(lp, key * 16 + 2 + k, ty, entry)?;
            carried.push((p, ty));
        }
        self.vals.push((i, Type::I64));
        self.vals.extend_from_slice(&carried);
        self.ctrl = lp;
        self.mem = mphi;
        self.top_guards(i, outer)?;
        self.block(depth + 1)?;
        let step = self.g.iconst(Type::I64, step)?;
        let next = self.g.add(i, step)?;
        let (a, b, rel) = if self.rng.chance(1, 4) {
            (bound, next, rel.mirrored())
        } else {
            (next, bound, rel)
        };
        // Sometimes the negated test, going round on its false side.
        let negated = self.rng.chance(1, 3);
        let latch = self
            .g
            .cmp(if negated { rel.negated() } else { rel }, a, b)?;
        let (t, f) = self.g.branch(self.ctrl, latch)?;
        let (again, out) = if negated { (f, t) } else { (t, f) };
        let mut backs = Vec::with_capacity(carried.len());
        for &(_, ty) in &carried {
            backs.push(self.pick(ty)?);
        }
        self.g.set_back_input(lp, again)?;
        self.g.set_back_input(i, next)?;
        self.g.set_back_input(mphi, self.mem)?;
        for (&(p, _), &b) in carried.iter().zip(&backs) {
            self.g.set_back_input(p, b)?;
        }
        // Nothing of the loop dominates the merge after it.
        self.vals.truncate(outer);
        let region = self.g.region(&[skip, out])?;
        self.mem = self.g.phi(region, Type::Mem, &[mem0, self.mem])?;
        self.ctrl = region;
        Ok(())
    }

    /// Up to three guards at the top of a loop (control at its header,
    /// memory its phi), sharing one frame: on a value from before the
    /// loop (invariant), on the counter `i` (`i + d` against a constant,
    /// mostly holding for the few values `i` takes), or on a comparison in
    /// scope. `outer` is how many values in scope come from before the loop.
    fn top_guards(&mut self, i: NodeId, outer: usize) -> R {
        let count = self.rng.range(0, 3);
        if count == 0 {
            return Ok(());
        }
        let mut slots = if self.rng.chance(2, 3) {
            vec![i]
        } else {
            Vec::new()
        };
        let more = self.rng.range(0, 2) as usize;
        slots.extend(self.frame_slots(more)?);
        let resume = self.next_resume;
        self.next_resume += 1;
        let frame = self.g.frame_state(resume, self.mem, &slots)?;
        let reason = self.rng.below(4) as u32;
        for _ in 0..count {
            let before: Vec<NodeId> = self.vals[..outer]
                .iter()
                .filter(|v| v.1 == Type::I64)
                .map(|v| v.0)
                .collect();
            let cond = match self.rng.weighted(&[2, 4, 1]) {
                0 if !before.is_empty() => {
                    let x = *self.rng.pick(&before);
                    let k = self.konst(Type::I64);
                    let k = self.g.iconst(Type::I64, k)?;
                    self.g.cmp(CmpOp::Ne, x, k)?
                }
                2 if self.vals.iter().any(|v| v.1 == Type::I8) => self.pick(Type::I8)?,
                _ => {
                    let d = self.rng.range(-1, 2);
                    let y = if d == 0 {
                        i
                    } else {
                        let d = self.g.iconst(Type::I64, d)?;
                        self.g.add(i, d)?
                    };
                    let (op, k) = match self.rng.below(4) {
                        0 => (CmpOp::Ult, self.rng.range(2, 6)),
                        1 => (CmpOp::Slt, self.rng.range(1, 6)),
                        2 => (CmpOp::Sgt, self.rng.range(-3, 0)),
                        _ => (CmpOp::Ne, self.rng.range(-2, 5)),
                    };
                    let k = self.g.iconst(Type::I64, k)?;
                    self.g.cmp(op, y, k)?
                }
            };
            self.ctrl = self.g.guard(self.ctrl, cond, frame, reason)?;
            self.guards += 1;
        }
        Ok(())
    }

    /// Two to four neighbouring range checks of one value, as a guest
    /// checks an index per access: `x + d` against the bounds of 32
    /// elements (`<u 32`, `<s 32`, `>=s 0`, `<=u 31`), all leaving with one
    /// frame, `x` mostly masked to 0..=31 so that most pass; now and then
    /// a guard on something else in between, with the same frame.
    fn range_checks(&mut self) -> R {
        let ty = *self.rng.pick(&INTS);
        let v = self.pick(ty)?;
        let x = if self.rng.chance(3, 4) {
            let mask = self.g.iconst(ty, 31)?;
            self.g.bin(BinOp::And, v, mask)?
        } else {
            v
        };
        let n = self.rng.range(0, MAX_SLOTS as i64) as usize;
        let slots = self.frame_slots(n)?;
        let resume = self.next_resume;
        self.next_resume += 1;
        let frame = self.g.frame_state(resume, self.mem, &slots)?;
        let reason = self.rng.below(4) as u32;
        for _ in 0..self.rng.range(2, 4) {
            let cond = if self.rng.chance(1, 6) && self.vals.iter().any(|v| v.1 == Type::I8) {
                self.pick(Type::I8)?
            } else {
                let d = self.rng.range(-3, 3);
                let y = if d == 0 {
                    x
                } else {
                    let d = self.g.iconst(ty, d)?;
                    self.g.add(x, d)?
                };
                let (op, k) = *self.rng.pick(&[
                    (CmpOp::Ult, 32),
                    (CmpOp::Slt, 32),
                    (CmpOp::Sge, 0),
                    (CmpOp::Ule, 31),
                ]);
                let k = self.g.iconst(ty, k)?;
                self.g.cmp(op, y, k)?
            };
            self.ctrl = self.g.guard(self.ctrl, cond, frame, reason)?;
            self.guards += 1;
        }
        Ok(())
    }
}

/// Checks a run of a graph whose induction-variable guards were hoisted
/// against the `reference` run, when they differ: hoisted, a guard at a
/// loop's top is tested at the loop's entry on every value the counter
/// will take, and fails there (with the loop's entry state) if it would
/// fail on any iteration. That is right for a guest, whose interpreter
/// resumes at that state and runs the iterations itself, but the LIR run
/// differs: it must have left through a guard at the top of a rotated
/// loop ([`top_resumes`]), where the reference, which runs the iterations,
/// left through some guard too (the loops have no other way out before
/// their last iteration).
fn hoisted_run(phase: &str, got: &Run, reference: &Run, top_resumes: &[u64]) -> Result<(), String> {
    match (&got.value, &reference.value) {
        (Ok(Exit::Deopt { resume, .. }), Ok(Exit::Deopt { .. }))
            if top_resumes.contains(resume) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{phase}: {:?}, reference {:?}{}",
            got.value,
            reference.value,
            first_diff(&got.mem, &reference.mem)
        )),
    }
}

/// The resume points of the frames of guards at the top of a loop (only
/// guards between its header and them): the guards hoisting may move.
fn top_resumes(g: &Graph) -> Vec<u64> {
    let mut out = Vec::new();
    for n in g.live_nodes() {
        if !matches!(g.op(n), vssa::Op::Guard { .. }) || g.arity(n) != 3 {
            continue;
        }
        let mut c = g.resolve(g.input(n, 0));
        while matches!(g.op(c), vssa::Op::Guard { .. }) && g.arity(c) == 3 {
            c = g.resolve(g.input(c, 0));
        }
        if !matches!(g.op(c), vssa::Op::Loop { .. }) {
            continue;
        }
        match g.op(g.resolve(g.input(n, 2))) {
            vssa::Op::FrameState { resume } | vssa::Op::InlinedFrame { resume } => out.push(resume),
            _ => {}
        }
    }
    out
}

/// How a run left the function.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Exit {
    Returned(i64),
    /// A guard failed. Guards are named by their frame's resume point,
    /// which survives optimization (node ids do not); `values` are the
    /// frame's slots, normalized to their types.
    Deopt {
        resume: u64,
        values: Vec<i64>,
    },
}

/// What a run of a graph produced: the exit (or the failure) and the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    value: Result<Exit, String>,
    mem: Vec<u8>,
}

/// The callees a generated function calls, for the interpreter: their
/// graphs (function `1 + j`) and every function's address (what the
/// table in memory holds: the native code's).
struct Callees {
    graphs: Vec<Graph>,
    addresses: Vec<i64>,
}

/// Interprets `g` (function 0, calling `callees`); `linear` also checks
/// that it threads memory linearly (true of every graph the generator
/// builds without peepholes). The buffer compared is the first
/// [`MEM_LEN`] bytes; the table of addresses follows it.
fn run_interp(g: &Graph, init: &[u8], linear: bool, callees: &Callees) -> Run {
    let mut bytes = init.to_vec();
    bytes.resize(TABLE_OFFSET, 0);
    for a in &callees.addresses {
        bytes.extend_from_slice(&a.to_le_bytes());
    }
    let mut mem = Memory::from_bytes(BASE, bytes);
    let mut functions = Vec::with_capacity(1 + callees.graphs.len());
    functions.push(g.clone());
    functions.extend(callees.graphs.iter().cloned());
    let module = interp::Module {
        functions: &functions,
        addresses: &callees.addresses,
    };
    let r = interp::eval_module(module, 0, &[BASE], &mut mem, &mut interp_host, FUEL, linear);
    let value = match r {
        Ok(v) => Ok(Exit::Returned(v.first().copied().unwrap_or(0))),
        Err(InterpError::Deopt { resume, values, .. }) => Ok(Exit::Deopt { resume, values }),
        Err(e) => Err(e.to_string()),
    };
    Run {
        value,
        mem: mem.bytes()[..MEM_LEN].to_vec(),
    }
}

fn verify(g: &Graph, phase: &str) -> Result<(), String> {
    vssa::verify(g).map_err(|errs| {
        let first: Vec<String> = errs.iter().take(3).map(|e| e.to_string()).collect();
        format!("{phase}: verifier: {}", first.join("; "))
    })
}

/// `g` printed and parsed back (verified); printing that and parsing it
/// again must give the same text.
fn text_round_trip(g: &Graph, phase: &str) -> Result<Graph, String> {
    let text = vssa::print::print(g);
    let h = vssa::parse(&text).map_err(|e| format!("{phase}: parsing its printed text: {e}"))?;
    verify(&h, &format!("{phase}, printed and parsed"))?;
    let again = vssa::print::print(&h);
    let h2 = vssa::parse(&again).map_err(|e| format!("{phase}: parsing it again: {e}"))?;
    if vssa::print::print(&h2) != again {
        return Err(format!(
            "{phase}: printed, parsed and printed twice: the texts differ"
        ));
    }
    Ok(h)
}

/// The low 32 bits the native entry returns for a value of `ty`: narrower
/// values are zero-extended, wider ones truncated.
fn native_ret(value: i64, ty: Type) -> u32 {
    let bits = ty.bits().unwrap_or(64).min(32);
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    ((value as u64) & mask) as u32
}

/// Runs the graphs of one seed through every phase; keeps a JIT across
/// inputs (creating one per input would dominate the run time).
pub struct Checker {
    jit: Option<Jit>,
    compiles: u32,
    /// How the reference runs ended: `returned` or `deopt`.
    counters: Counters,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            jit: None,
            compiles: 0,
            counters: Counters::new(),
        }
    }

    /// Checks function `seed` (at most `budget` statements).
    pub fn check(&mut self, seed: u64, budget: Option<u32>) -> Outcome {
        let o = guarded(|| match self.check_unguarded(seed, budget) {
            Ok(()) => Outcome::Pass,
            Err(m) => Outcome::Mismatch(m),
        });
        if matches!(o, Outcome::Crash(_)) {
            // A panic may have left the JIT half-way through a function.
            self.jit = None;
        }
        o
    }

    pub fn check_seed(&mut self, seed: u64) -> Outcome {
        self.check(seed, None)
    }

    /// How the reference runs of the checked functions ended so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn check_unguarded(&mut self, seed: u64, budget: Option<u32>) -> Result<(), String> {
        let gen_err = |e: GraphError| format!("generator: {e}");
        let (callees, _code) = self.callees(seed)?;
        let callees = &callees;
        let plain = generate(seed, false, budget).map_err(gen_err)?;
        verify(&plain.graph, "built without peepholes")?;
        let reference = run_interp(&plain.graph, &plain.init, true, callees);
        match &reference.value {
            Err(e) => return Err(format!("interpreter on the plain graph: {e}")),
            Ok(Exit::Returned(_)) => bump(&mut self.counters, "returned"),
            Ok(Exit::Deopt { .. }) => bump(&mut self.counters, "deopt"),
        }
        // What the optimized graph must do: the reference, until a guard
        // on an induction variable hoisted to its loop's entry may fail
        // there instead of on a later iteration (see `hoisted_run`).
        let mut expected = reference.clone();
        let same_as = |phase: &str, got: &Run, want: &Run| -> Result<(), String> {
            if got != want {
                Err(format!(
                    "{phase}: {:?}, expected {:?}{}",
                    got.value,
                    want.value,
                    first_diff(&got.mem, &want.mem)
                ))
            } else {
                Ok(())
            }
        };
        let same = |phase: &str, got: &Run| -> Result<(), String> {
            if *got != reference {
                Err(format!(
                    "{phase}: {:?}, reference {:?}{}",
                    got.value,
                    reference.value,
                    first_diff(&got.mem, &reference.mem)
                ))
            } else {
                Ok(())
            }
        };

        let simplified = generate(seed, true, budget).map_err(gen_err)?;
        let base = simplified.base;
        let mut g = simplified.graph;
        verify(&g, "built with peepholes")?;
        same(
            "built with peepholes",
            &run_interp(&g, &plain.init, true, callees),
        )?;
        let recorder = vssa_patch::Recorder::start(&g);
        vssa::optimize(&mut g).map_err(|e| format!("optimize: {e}"))?;
        verify(&g, "optimized")?;
        same("optimized", &run_interp(&g, &plain.init, true, callees))?;
        // Memory promoted to loop-carried values, then the optimizer.
        let promoted = vssa::promote(&mut g).map_err(|e| format!("promote: {e}"))?;
        if promoted.loads > 0 {
            bump(&mut self.counters, "promote: loads replaced");
        }
        vssa::optimize(&mut g).map_err(|e| format!("optimize after promote: {e}"))?;
        verify(&g, "promoted")?;
        same("promoted", &run_interp(&g, &plain.init, true, callees))?;
        // Closed forms of affine loops, then the optimizer.
        let closed = vssa::closed_forms(&mut g).map_err(|e| format!("closed_forms: {e}"))?;
        if closed.loops > 0 {
            bump(&mut self.counters, "closed forms");
        }
        vssa::optimize(&mut g).map_err(|e| format!("optimize after closed forms: {e}"))?;
        verify(&g, "closed forms")?;
        same("closed forms", &run_interp(&g, &plain.init, true, callees))?;
        // Facts from branches, then the optimizer on what they exposed.
        let facts = vssa::branch_facts(&mut g).map_err(|e| format!("branch_facts: {e}"))?;
        if facts.loads > 0 {
            bump(&mut self.counters, "facts: loads known");
        }
        if facts.guards > 0 {
            bump(&mut self.counters, "facts: guards implied");
        }
        verify(&g, "branch facts")?;
        same("branch facts", &run_interp(&g, &plain.init, true, callees))?;
        vssa::optimize(&mut g).map_err(|e| format!("optimize after facts: {e}"))?;
        // Neighbouring range checks merged: exactly the same runs.
        let merged =
            vssa::merge_range_guards(&mut g).map_err(|e| format!("merge_range_guards: {e}"))?;
        if merged.removed > 0 {
            bump(&mut self.counters, "range checks merged");
        }
        verify(&g, "range checks merged")?;
        same(
            "range checks merged",
            &run_interp(&g, &plain.init, true, callees),
        )?;
        // Guard hoisting, then the optimizer on what it exposed.
        let hoisted = vssa::hoist_guards(&mut g).map_err(|e| format!("hoist_guards: {e}"))?;
        if hoisted.hoisted > 0 {
            bump(&mut self.counters, "guards hoisted");
        }
        if hoisted.induction > 0 {
            bump(&mut self.counters, "induction guards hoisted");
        }
        verify(&g, "guards hoisted")?;
        let tops = top_resumes(&plain.graph);
        let run = run_interp(&g, &plain.init, true, callees);
        if run != reference {
            hoisted_run("guards hoisted", &run, &reference, &tops)?;
            bump(&mut self.counters, "induction guard failed at the entry");
            expected = run;
        }
        vssa::optimize(&mut g).map_err(|e| format!("optimize after hoisting: {e}"))?;
        // Control folding, then the optimizer on what it exposed; the
        // native runs below compile the result.
        let folded = vssa::fold_control(&mut g).map_err(|e| format!("fold_control: {e}"))?;
        if folded.changes() > 0 {
            bump(&mut self.counters, "control folded");
        }
        vssa::optimize(&mut g).map_err(|e| format!("optimize after folding: {e}"))?;
        verify(&g, "control folded")?;
        same_as(
            "control folded",
            &run_interp(&g, &plain.init, true, callees),
            &expected,
        )?;
        // The patch log of all that replays onto the graph built afresh.
        let log = recorder.log(&g).map_err(|e| format!("recording: {e}"))?;
        let mut again = generate(seed, true, budget).map_err(gen_err)?.graph;
        let report = vssa_patch::replay(&mut again, &log);
        if !report.complete() || vssa::live_graph_key(&again) != vssa::live_graph_key(&g) {
            return Err(format!(
                "patch log of optimize + promote + closed_forms + branch_facts + merge_range_guards + hoist_guards + fold_control: {} of {} patches applied ({} stale, \
                 {} conflicting), live graphs {}",
                report.applied,
                report.outcomes.len(),
                report.stale,
                report.conflicting,
                if vssa::live_graph_key(&again) == vssa::live_graph_key(&g) {
                    "equal"
                } else {
                    "differ"
                }
            ));
        }
        // Facts from branches on the graph built without peepholes (the
        // loads and guards as the generator wrote them).
        let mut plain_facts = plain.graph.clone();
        vssa::branch_facts(&mut plain_facts).map_err(|e| format!("branch_facts plain: {e}"))?;
        verify(&plain_facts, "plain, branch facts")?;
        same(
            "plain, branch facts",
            &run_interp(&plain_facts, &plain.init, true, callees),
        )?;
        // Merging and hoisting on the graph built without peepholes.
        let mut plain_hoisted = plain.graph.clone();
        vssa::merge_range_guards(&mut plain_hoisted)
            .map_err(|e| format!("merge_range_guards plain: {e}"))?;
        verify(&plain_hoisted, "plain, range checks merged")?;
        same(
            "plain, range checks merged",
            &run_interp(&plain_hoisted, &plain.init, true, callees),
        )?;
        vssa::hoist_guards(&mut plain_hoisted).map_err(|e| format!("hoist_guards plain: {e}"))?;
        verify(&plain_hoisted, "plain, guards hoisted")?;
        let run = run_interp(&plain_hoisted, &plain.init, true, callees);
        if run != reference {
            hoisted_run("plain, guards hoisted", &run, &reference, &tops)?;
        }
        // Folding the graph built without peepholes (branches on constants
        // the peepholes would have folded at construction).
        let mut plain_folded = plain.graph.clone();
        vssa::fold_control(&mut plain_folded).map_err(|e| format!("fold_control plain: {e}"))?;
        verify(&plain_folded, "plain, control folded")?;
        same(
            "plain, control folded",
            &run_interp(&plain_folded, &plain.init, true, callees),
        )?;
        // The text form: printed and parsed back, the graph runs the same.
        let parsed = text_round_trip(&plain.graph, "plain")?;
        if vssa::live_graph_key(&parsed) != vssa::live_graph_key(&plain.graph) {
            return Err("plain graph printed and parsed: another live graph key".into());
        }
        same(
            "plain, printed and parsed",
            &run_interp(&parsed, &plain.init, true, callees),
        )?;
        let parsed = text_round_trip(&g, "optimized")?;
        same_as(
            "optimized, printed and parsed",
            &run_interp(&parsed, &plain.init, true, callees),
            &expected,
        )?;

        let native_expect = |run: &Run| {
            let value = match run.value.clone() {
                Ok(Exit::Returned(v)) => Ok(Exit::Returned(i64::from(native_ret(v, plain.ret_ty)))),
                other => other,
            };
            Run {
                value,
                mem: run.mem.clone(),
            }
        };
        for (phase, graph, ctx, expect) in [
            ("native optimized", &g, base, native_expect(&expected)),
            (
                "native plain",
                &plain.graph,
                plain.base,
                native_expect(&reference),
            ),
        ] {
            let got = self
                .native(graph, ctx, plain.ret_ty, &plain.init, &callees.addresses)
                .map_err(|e| format!("{phase}: {e}"))?;
            if got != expect {
                return Err(format!(
                    "{phase}: {:?}, reference {:?}{}",
                    got.value,
                    expect.value,
                    first_diff(&got.mem, &expect.mem)
                ));
            }
        }
        Ok(())
    }

    /// The JIT, a fresh one every [`COMPILES_PER_JIT`] compiles, with
    /// `addresses[k]` defined as function `k` (`k > 0`) for direct calls.
    fn jit(&mut self, addresses: &[i64]) -> Result<&mut Jit, String> {
        if self.jit.is_none() || self.compiles >= COMPILES_PER_JIT {
            self.jit = None;
            let opts = JitOptions {
                verify: true,
                ..JitOptions::default()
            };
            self.jit = Some(Jit::new(opts).map_err(|e| e.to_string())?);
            self.compiles = 0;
        }
        self.compiles += 1;
        let Some(jit) = self.jit.as_mut() else {
            return Err("no JIT".into());
        };
        for (k, &a) in addresses.iter().enumerate().skip(1) {
            jit.define_function(k as u32, a as *const u8);
        }
        Ok(jit)
    }

    /// Seed `seed`'s callees: their graphs built without peepholes (for
    /// the interpreter) and the native code of their optimized graphs,
    /// compiled last to first (a callee calls only those after it), which
    /// must stay alive while anything calls it.
    fn callees(&mut self, seed: u64) -> Result<(Callees, Vec<OwnedCode>), String> {
        let n = callee_sigs(seed).len();
        let mut graphs = Vec::with_capacity(n);
        let mut addresses = vec![0i64; 1 + n];
        let mut code = Vec::with_capacity(n);
        for j in (0..n).rev() {
            let gen = |simplify| {
                generate_callee(seed, j, simplify).map_err(|e| format!("callee {j}: {e}"))
            };
            let plain = gen(false)?;
            verify(&plain, &format!("callee {j}"))?;
            let mut g = gen(true)?;
            vssa::optimize(&mut g).map_err(|e| format!("callee {j}: optimize: {e}"))?;
            vssa::fold_control(&mut g).map_err(|e| format!("callee {j}: fold_control: {e}"))?;
            vssa::optimize(&mut g).map_err(|e| format!("callee {j}: optimize: {e}"))?;
            verify(&g, &format!("callee {j}, optimized"))?;
            let s =
                vssa_schedule::schedule(&g).map_err(|e| format!("callee {j}: schedule: {e}"))?;
            let jit = self.jit(&addresses)?;
            let c = jit
                .compile_owned(&g, &s, &host_table(), "callee")
                .map_err(|e| format!("callee {j}: backend: {e}"))?;
            addresses[1 + j] = c.code_ptr() as i64;
            graphs.push(plain);
            code.push(c);
        }
        graphs.reverse();
        Ok((Callees { graphs, addresses }, code))
    }

    /// Lowers the guards of a copy of `g` (deopt context: its parameter
    /// `ctx`), schedules, compiles and runs it on a guarded copy of `init`
    /// followed by the deopt buffer and the table of `addresses`.
    fn native(
        &mut self,
        g: &Graph,
        ctx: NodeId,
        ret_ty: Type,
        init: &[u8],
        addresses: &[i64],
    ) -> Result<Run, String> {
        let mut g = g.clone();
        let abi = DeoptAbi {
            ctx,
            buffer_offset: DEOPT_OFFSET as i32,
            capacity: BUFFER_SLOTS,
            first_exit: FIRST_EXIT,
            exit_type: ret_ty,
        };
        let table =
            vssa_deopt::lower_guards(&mut g, &abi).map_err(|e| format!("lower_guards: {e}"))?;
        verify(&g, "guards lowered")?;
        let g = &g;
        let s = vssa_schedule::schedule(g).map_err(|e| format!("schedule: {e}"))?;
        let jit = self.jit(addresses)?;
        let code = jit
            .compile(g, &s, &host_table(), "fuzz")
            .map_err(|e| format!("backend: {e}"))?;
        let used = TABLE_OFFSET + TABLE_LEN;
        let mut buf = vec![GUARD_BYTE; GUARD + used + GUARD];
        buf[GUARD..GUARD + MEM_LEN].copy_from_slice(init);
        for (k, a) in addresses.iter().enumerate() {
            let at = GUARD + TABLE_OFFSET + 8 * k;
            buf[at..at + 8].copy_from_slice(&a.to_le_bytes());
        }
        let ctx = buf[GUARD..].as_mut_ptr();
        // SAFETY: `code` comes from `jit`, which is alive. The generated
        // graph only accesses its parameter plus offsets inside
        // `[0, MEM_LEN)` (the interpreter has just run the same graph with
        // bounds checks), and lowered guards the deopt buffer at
        // `[DEOPT_OFFSET, DEOPT_OFFSET + DEOPT_LEN)`; `buf` holds `GUARD`
        // spare bytes on both sides of those, so even a slightly wrong
        // address stays in `buf`, which no Rust reference aliases during
        // the call. The host functions are as declared in `host_table`
        // (`pair` writes its two results through the pointer the code
        // passes); direct and indirect calls reach the callees at
        // `addresses` (defined on the JIT, and in the table at
        // `TABLE_OFFSET`, which no generated store reaches), whose code the
        // caller keeps alive, of the signatures the calls name, and built
        // by the same generator, so their accesses are inside the buffer
        // too (the interpreter ran them with bounds checks as well).
        let r = unsafe { jit.call(&code, ctx) }.map_err(|e| e.to_string())?;
        let guards_ok = buf[..GUARD]
            .iter()
            .chain(&buf[GUARD + used..])
            .all(|&b| b == GUARD_BYTE);
        if !guards_ok {
            return Err("native code wrote outside the buffer".into());
        }
        let slots = &buf[GUARD + DEOPT_OFFSET..GUARD + used];
        Ok(Run {
            value: Ok(decode_exit(&table, r, slots)),
            mem: buf[GUARD..GUARD + MEM_LEN].to_vec(),
        })
    }
}

/// What native code's return `r` means: an exit of `table` (its frame read
/// from the deopt buffer `slots`, 8 little-endian bytes a slot) or a value.
fn decode_exit(table: &ExitTable, r: u32, slots: &[u8]) -> Exit {
    let Some(exit) = table.exit(i64::from(r)) else {
        return Exit::Returned(i64::from(r));
    };
    let raw: Vec<i64> = slots
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Exit::Deopt {
        resume: exit.resume,
        values: table.frame(exit, &raw).values,
    }
}

fn first_diff(got: &[u8], want: &[u8]) -> String {
    match (0..want.len().max(got.len())).find(|&i| got.get(i) != want.get(i)) {
        Some(i) => format!(
            "; byte {i} of the buffer is {:?}, reference {:?}",
            got.get(i),
            want.get(i)
        ),
        None => String::new(),
    }
}

/// Describes failing function `seed`, minimised to the smallest statement
/// budget that still fails, with its graph as text.
pub fn failure(seed: u64, outcome: Outcome) -> Failure {
    let mut checker = Checker::new();
    let own = generate(seed, false, None).map_or(0, |g| g.budget);
    let mut budget = own;
    let mut outcome = outcome;
    for b in 0..own {
        let o = checker.check(seed, Some(b));
        if o.is_failure() {
            budget = b;
            outcome = o;
            break;
        }
    }
    let mut text = match generate(seed, false, Some(budget)) {
        Ok(gen) => vssa::print::print(&gen.graph),
        Err(e) => format!("(cannot rebuild: {e})"),
    };
    for j in 0..callee_sigs(seed).len() {
        match generate_callee(seed, j, false) {
            Ok(g) => text.push_str(&format!("callee u{}:\n{}", j + 1, vssa::print::print(&g))),
            Err(e) => text.push_str(&format!("callee u{}: (cannot rebuild: {e})\n", j + 1)),
        }
    }
    Failure {
        input_seed: seed,
        reproducer: format!(
            "statement budget: {budget} (of {own})\nreproduce: vssa_fuzz::lir::Checker::new().check({seed:#x}, Some({budget}))\noutcome: {outcome:?}\ngraph (built without peepholes):\n{text}"
        ),
        outcome,
        raw: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed `seed`'s callees for the interpreter alone: no native code, so
    /// made-up addresses.
    fn interp_callees(seed: u64) -> Callees {
        let n = callee_sigs(seed).len();
        let graphs = (0..n)
            .map(|j| generate_callee(seed, j, false).unwrap())
            .collect();
        Callees {
            graphs,
            addresses: (0..=n as i64).map(|k| 0x7000 + 16 * k).collect(),
        }
    }

    fn no_callees() -> Callees {
        Callees {
            graphs: Vec::new(),
            addresses: vec![0],
        }
    }

    #[test]
    fn generated_graphs_verify_and_run() {
        for seed in 0..50 {
            let callees = interp_callees(seed);
            for g in &callees.graphs {
                vssa::verify(g).unwrap();
            }
            for simplify in [false, true] {
                let gen = generate(seed, simplify, None).unwrap();
                vssa::verify(&gen.graph).unwrap();
                let r = run_interp(&gen.graph, &gen.init, !simplify, &callees);
                assert!(r.value.is_ok(), "seed {seed}: {:?}", r.value);
            }
        }
    }

    /// The generator reaches every kind of call: the host's with two
    /// results, direct and indirect calls of callees with several results,
    /// and callees calling callees.
    #[test]
    fn generated_graphs_cover_calls() {
        use vssa::Op;
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let mut graphs = vec![generate(seed, false, None).unwrap().graph];
            graphs.extend(interp_callees(seed).graphs);
            for (k, g) in graphs.iter().enumerate() {
                for n in g.live_nodes() {
                    let what = match g.op(n) {
                        Op::Call { func: 2 } => "host, two results",
                        Op::CallDirect { sig, .. } if sig.result_count() > 1 => "direct, several",
                        Op::CallIndirect { sig } if sig.result_count() > 1 => "indirect, several",
                        Op::CallDirect { .. } | Op::CallIndirect { .. } if k > 0 => "callee calls",
                        _ => continue,
                    };
                    seen.insert(what);
                }
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
    }

    /// The generator reaches every float operation family, both float
    /// types in memory, phis and frame states, division and alias classes.
    #[test]
    fn generated_graphs_cover_floats_and_division() {
        use vssa::Op;
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let gen = generate(seed, false, None).unwrap();
            let g = &gen.graph;
            for n in g.live_nodes() {
                let float_input = g.inputs(n).iter().any(|&i| g.ty(i).is_float());
                let what = match g.op(n) {
                    Op::FBin(_) => "fbin",
                    Op::FUn(_) => "fun",
                    Op::FCmp(_) => "fcmp",
                    Op::FConv(_) => "fconv",
                    Op::FFits { .. } => "ffits",
                    Op::Bin(BinOp::Sdiv | BinOp::Udiv | BinOp::Srem | BinOp::Urem) => "div",
                    Op::Load { .. } if g.ty(n) == Type::F32 => "load f32",
                    Op::Store { .. } if g.ty(g.input(n, 3)) == Type::F64 => "store f64",
                    Op::Phi { .. } if g.ty(n).is_float() => "float phi",
                    Op::FrameState { .. } if float_input => "float frame slot",
                    Op::ClassLoad { .. } => "classed load",
                    Op::ClassStore { .. } => "classed store",
                    Op::InlinedFrame { .. } => "inlined frame",
                    Op::Boxed => "boxed slot",
                    Op::Materialize { .. } => "object slot",
                    _ => continue,
                };
                seen.insert(what);
            }
        }
        assert_eq!(seen.len(), 15, "{seen:?}");
    }

    #[test]
    fn a_smaller_budget_is_a_prefix() {
        let full = generate(3, false, None).unwrap();
        let small = generate(3, false, Some(1)).unwrap();
        assert_eq!(small.init, full.init);
        assert!(small.graph.len() <= full.graph.len());
    }

    #[test]
    fn native_return_widths() {
        assert_eq!(native_ret(-1, Type::I8), 0xFF);
        assert_eq!(native_ret(-1, Type::I32), u32::MAX);
        assert_eq!(native_ret(0x1_0000_0002, Type::I64), 2);
    }

    /// A hand-built guard that fails on `x == -123`: native code must hand
    /// over the interpreter's frame (resume point, an `I32` and an `I8`
    /// slot, both negative so that widening matters) and the store before
    /// the guard, but not the one after it.
    #[test]
    fn native_deopt_frame_matches_the_interpreter() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let base = g.param(e.start, 0, Type::Ptr).unwrap();
        let x = g.load(e.ctrl, e.mem, base, 0, Type::I32).unwrap();
        let seven = g.iconst(Type::I8, 0x77).unwrap();
        let m1 = g.store(e.ctrl, e.mem, base, 4, seven).unwrap();
        let t = g.conv(ConvOp::Trunc, Type::I8, x).unwrap();
        let k = g.iconst(Type::I8, -123).unwrap();
        let c = g.cmp(CmpOp::Ne, t, k).unwrap();
        let frame = g.frame_state(42, m1, &[x, t]).unwrap();
        let ctrl = g.guard(e.ctrl, c, frame, 3).unwrap();
        let m2 = g.store(ctrl, m1, base, 8, x).unwrap();
        let mask = g.iconst(Type::I32, RET_MASK).unwrap();
        let r = g.bin(BinOp::And, x, mask).unwrap();
        let ret = g.ret(ctrl, m2, r).unwrap();
        g.finish(&[ret]).unwrap();
        vssa::verify(&g).unwrap();

        let mut checker = Checker::new();
        let mut init = vec![0u8; MEM_LEN];
        init[..4].copy_from_slice(&(-123i32).to_le_bytes());
        let mut want_mem = init.clone();
        want_mem[4] = 0x77;
        let want = Run {
            value: Ok(Exit::Deopt {
                resume: 42,
                values: vec![-123, -123],
            }),
            mem: want_mem,
        };
        let none = no_callees();
        assert_eq!(run_interp(&g, &init, true, &none), want);
        let native = checker
            .native(&g, base, Type::I32, &init, &none.addresses)
            .unwrap();
        assert_eq!(native, want);

        // The guard holds: a normal return, and both stores ran.
        init[..4].copy_from_slice(&7i32.to_le_bytes());
        let native = checker
            .native(&g, base, Type::I32, &init, &none.addresses)
            .unwrap();
        assert_eq!(native.value, Ok(Exit::Returned(7)));
        assert_eq!(native.mem[4], 0x77);
        assert_eq!(native.mem[8..12], 7i32.to_le_bytes());
        assert_eq!(run_interp(&g, &init, true, &none), native);
    }

    /// Generated functions deoptimize on a good share of inputs (some with
    /// frame values), and every implementation agrees on those deopts.
    #[test]
    fn generated_guards_deoptimize_sometimes() {
        let mut checker = Checker::new();
        let mut with_values = 0;
        for seed in 0..300 {
            let gen = generate(seed, false, None).unwrap();
            let callees = interp_callees(seed);
            let run = run_interp(&gen.graph, &gen.init, true, &callees);
            if let Ok(Exit::Deopt { values, .. }) = run.value {
                with_values += usize::from(!values.is_empty());
            }
            let o = checker.check_seed(seed);
            assert!(!o.is_failure(), "seed {seed}: {o:?}");
        }
        let deopts = checker.counters().get("deopt").copied().unwrap_or(0);
        assert!((30..=150).contains(&deopts), "{:?}", checker.counters());
        assert!(with_values >= 10, "{with_values} deopts with values");
    }
}
