//! Property tests: the peepholes and the optimizer preserve meaning.
//!
//! Random straight-line programs (pure expressions over parameters of every
//! width; loads and stores through `tape + p + k` and a second base that may
//! alias the tape) are run three ways and must agree:
//!
//! * a reference interpreter written here with Rust's native fixed-width
//!   integers (independent of `vssa::peephole`'s folding code);
//! * a small evaluator of the built graph, with construction-time peepholes
//!   on, and off;
//! * the same evaluator after `optimize` on both graphs.
//!
//! Every graph must also pass the verifier.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use vssa::{BinOp, CmpOp, ConvOp, Graph, NodeId, Op, Type, UnOp};

const INTS: [Type; 4] = [Type::I8, Type::I16, Type::I32, Type::I64];
const BINS: [BinOp; 13] = BinOp::ALL;
const CMPS: [CmpOp; 10] = CmpOp::ALL;

// ---------------------------------------------------------------------------
// Reference semantics on native integers.
// ---------------------------------------------------------------------------

/// Runs `$body` with `$t` (and `$u`) bound to the signed (and unsigned)
/// native integer of `ty`'s width. At `i64` some casts in the bodies are
/// identities, hence the `allow`.
macro_rules! at_width {
    ($ty:expr, |$t:ident| $body:expr) => {
        at_width!($ty, |$t, _U| $body)
    };
    ($ty:expr, |$t:ident, $u:ident| $body:expr) => {{
        #[allow(clippy::unnecessary_cast, dead_code)]
        let r = match $ty {
            Type::I8 => {
                type $t = i8;
                type $u = u8;
                $body
            }
            Type::I16 => {
                type $t = i16;
                type $u = u16;
                $body
            }
            Type::I32 => {
                type $t = i32;
                type $u = u32;
                $body
            }
            _ => {
                type $t = i64;
                type $u = u64;
                $body
            }
        };
        r
    }};
}

fn ref_bin(op: BinOp, ty: Type, a: i64, b: i64) -> i64 {
    at_width!(ty, |S, U| {
        let (x, y) = (a as S, b as S);
        let r: S = match op {
            BinOp::Add => x.wrapping_add(y),
            BinOp::Sub => x.wrapping_sub(y),
            BinOp::Mul => x.wrapping_mul(y),
            BinOp::And => x & y,
            BinOp::Or => x | y,
            BinOp::Xor => x ^ y,
            // Rust's wrapping shifts take the amount modulo the width.
            BinOp::Shl => x.wrapping_shl(y as u32),
            BinOp::Ushr => (x as U).wrapping_shr(y as u32) as S,
            BinOp::Sshr => x.wrapping_shr(y as u32),
            // Defined results: x/0 = 0, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0.
            BinOp::Sdiv => x.checked_div(y).unwrap_or(if y == 0 { 0 } else { x }),
            BinOp::Srem => x.checked_rem(y).unwrap_or(if y == 0 { x } else { 0 }),
            BinOp::Udiv => (x as U).checked_div(y as U).unwrap_or(0) as S,
            BinOp::Urem => (x as U).checked_rem(y as U).unwrap_or(x as U) as S,
        };
        r as i64
    })
}

fn ref_un(op: UnOp, ty: Type, a: i64) -> i64 {
    at_width!(ty, |S| {
        let x = a as S;
        (match op {
            UnOp::Neg => x.wrapping_neg(),
            UnOp::Not => !x,
        }) as i64
    })
}

fn ref_cmp(op: CmpOp, ty: Type, a: i64, b: i64) -> i64 {
    at_width!(ty, |S, U| {
        let (x, y) = (a as S, b as S);
        let (ux, uy) = (x as U, y as U);
        i64::from(match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Slt => x < y,
            CmpOp::Sle => x <= y,
            CmpOp::Sgt => x > y,
            CmpOp::Sge => x >= y,
            CmpOp::Ult => ux < uy,
            CmpOp::Ule => ux <= uy,
            CmpOp::Ugt => ux > uy,
            CmpOp::Uge => ux >= uy,
        })
    })
}

/// Reinterprets `a` (an `i64` holding a `from` value) as `to`.
fn ref_conv(op: ConvOp, from: Type, to: Type, a: i64) -> i64 {
    let wide: i64 = match op {
        ConvOp::Uext => at_width!(from, |S, U| (a as S as U) as i64),
        ConvOp::Sext | ConvOp::Trunc => at_width!(from, |S| (a as S) as i64),
    };
    at_width!(to, |S| (wide as S) as i64)
}

// ---------------------------------------------------------------------------
// A tiny evaluator of graphs (no loops): iterative, memoized.
// ---------------------------------------------------------------------------

type Memory = Rc<BTreeMap<u64, u8>>;

#[derive(Clone, Debug)]
enum Val {
    Int(i64),
    Mem(Memory),
    Other,
}

/// The byte at `addr` before any store.
fn initial_byte(addr: u64) -> u8 {
    (addr.wrapping_mul(0x9e37_79b9).wrapping_add(addr >> 7) >> 3) as u8
}

fn read(mem: &BTreeMap<u64, u8>, addr: u64, ty: Type) -> i64 {
    let n = ty.bytes().unwrap() as u64;
    let mut v: u64 = 0;
    for i in (0..n).rev() {
        let a = addr.wrapping_add(i);
        v = (v << 8) | u64::from(*mem.get(&a).unwrap_or(&initial_byte(a)));
    }
    ty.normalize(v as i64)
}

fn write(mem: &mut BTreeMap<u64, u8>, addr: u64, ty: Type, v: i64) {
    for i in 0..ty.bytes().unwrap() as u64 {
        mem.insert(addr.wrapping_add(i), (v >> (8 * i)) as u8);
    }
}

fn eval(g: &Graph, root: NodeId, params: &[i64]) -> Val {
    let mut memo: HashMap<NodeId, Val> = HashMap::new();
    let mut stack = vec![(g.resolve(root), false)];
    while let Some((n, ready)) = stack.pop() {
        if memo.contains_key(&n) {
            continue;
        }
        let ins = g.inputs(n);
        if !ready {
            stack.push((n, true));
            for &i in &ins {
                if !memo.contains_key(&i) {
                    stack.push((i, false));
                }
            }
            continue;
        }
        let int = |i: usize| match memo[&ins[i]] {
            Val::Int(v) => v,
            ref other => panic!("{n}: input {i} is {other:?}"),
        };
        let ty = g.ty(n);
        let v = match g.op(n) {
            Op::Start
            | Op::If
            | Op::Return
            | Op::End
            | Op::Region
            | Op::Loop { .. }
            | Op::Guard { .. }
            | Op::FrameState { .. }
            | Op::InlinedFrame { .. }
            | Op::Boxed
            | Op::Materialize { .. }
            | Op::Call { .. }
            | Op::CallDirect { .. }
            | Op::CallIndirect { .. } => Val::Other,
            Op::Proj { index } => match (g.op(ins[0]), index) {
                (Op::Start, 1) => Val::Mem(Rc::new(BTreeMap::new())),
                (Op::Start, i) if i >= 2 => Val::Int(ty.normalize(params[(i - 2) as usize])),
                _ => Val::Other,
            },
            Op::Const { value } => Val::Int(value),
            Op::Bin(op) => Val::Int(ref_bin(op, ty, int(0), int(1))),
            Op::Un(op) => Val::Int(ref_un(op, ty, int(0))),
            Op::Cmp(op) => Val::Int(ref_cmp(op, g.ty(ins[0]), int(0), int(1))),
            Op::Conv(op) => Val::Int(ref_conv(op, g.ty(ins[0]), ty, int(0))),
            Op::Select => Val::Int(if int(0) != 0 { int(1) } else { int(2) }),
            Op::PtrAdd => Val::Int(int(0).wrapping_add(int(1))),
            Op::Phi { .. } => panic!("no phis in these programs"),
            Op::FBin(_) | Op::FUn(_) | Op::FCmp(_) | Op::FConv(_) | Op::FFits { .. } => {
                panic!("no float operations in these programs")
            }
            Op::Load { offset } | Op::ClassLoad { offset, .. } => {
                let Val::Mem(m) = &memo[&ins[1]] else {
                    panic!("load of non-mem")
                };
                let addr = (int(2) as u64).wrapping_add(offset as i64 as u64);
                Val::Int(read(m, addr, ty))
            }
            Op::Store { offset } | Op::ClassStore { offset, .. } => {
                let Val::Mem(m) = &memo[&ins[1]] else {
                    panic!("store on non-mem")
                };
                let mut m2 = (**m).clone();
                let addr = (int(2) as u64).wrapping_add(offset as i64 as u64);
                write(&mut m2, addr, g.ty(ins[3]), int(3));
                Val::Mem(Rc::new(m2))
            }
        };
        memo.insert(n, v);
    }
    memo.remove(&g.resolve(root)).unwrap()
}

// ---------------------------------------------------------------------------
// Random programs.
// ---------------------------------------------------------------------------

/// One instruction; operand fields pick among earlier values of the needed
/// type (modulo how many there are), so any bytes make a valid program.
#[derive(Clone, Debug)]
struct Inst {
    kind: u8,
    ty: u8,
    sub: u8,
    a: u16,
    b: u16,
    c: u16,
    k: i64,
}

fn inst() -> impl Strategy<Value = Inst> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        prop_oneof![
            -9i64..9,
            any::<i64>(),
            Just(i64::MIN),
            Just(-1i64),
            Just(0i64)
        ],
    )
        .prop_map(|(kind, ty, sub, a, b, c, k)| Inst {
            kind,
            ty,
            sub,
            a,
            b,
            c,
            k,
        })
}

/// Parameters: two of each int type, then `tape`, `other` (pointers) and `p`.
const N_INT_PARAMS: usize = 8;
const TAPE: u32 = 8;
const OTHER: u32 = 9;
const P: u32 = 10;

fn param_values(ints: [i64; N_INT_PARAMS], alias: u8, p: i64) -> Vec<i64> {
    let tape = 0x1000i64;
    // The second base aliases the tape at a small distance (or not at all).
    let other = tape + [0, 1, 3, 8, 0x800][alias as usize % 5];
    let mut v = ints.to_vec();
    v.extend([tape, other, p]);
    v
}

/// The same program built into a graph and run by the reference interpreter.
struct Built {
    graph: Graph,
    /// (graph node, reference value) of every value the program computed.
    values: Vec<(NodeId, i64)>,
    final_mem: NodeId,
    ref_mem: BTreeMap<u64, u8>,
}

fn build(insts: &[Inst], params: &[i64], simplify: bool, with_memory: bool) -> Built {
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    let e = g.entry().unwrap();
    // Pools of (node, value) per int type.
    let mut pool: HashMap<Type, Vec<(NodeId, i64)>> = HashMap::new();
    let mut values = Vec::new();
    for (i, &v) in params.iter().take(N_INT_PARAMS).enumerate() {
        let ty = INTS[i / 2];
        let n = g.param(e.start, i as u32, ty).unwrap();
        pool.entry(ty).or_default().push((n, ty.normalize(v)));
    }
    let tape = g.param(e.start, TAPE, Type::Ptr).unwrap();
    let other = g.param(e.start, OTHER, Type::Ptr).unwrap();
    let mut p = (g.param(e.start, P, Type::I64).unwrap(), params[P as usize]);
    let (tape_v, other_v) = (params[TAPE as usize], params[OTHER as usize]);
    let far = other_v.wrapping_sub(tape_v) >= 0x800;
    let mut mem = e.mem;
    let mut ref_mem: BTreeMap<u64, u8> = BTreeMap::new();
    let pick = |pool: &HashMap<Type, Vec<(NodeId, i64)>>, ty: Type, i: u16| {
        let v = &pool[&ty];
        v[i as usize % v.len()]
    };
    let kinds = if with_memory { 9 } else { 6 };
    for ins in insts {
        let ty = INTS[ins.ty as usize % 4];
        let made: Option<(Type, NodeId, i64)> = match ins.kind % kinds {
            0 => {
                let op = BINS[ins.sub as usize % BINS.len()];
                let (a, av) = pick(&pool, ty, ins.a);
                let (b, bv) = if ins.c % 3 == 0 {
                    let k = ty.normalize(ins.k);
                    (g.iconst(ty, k).unwrap(), k)
                } else {
                    pick(&pool, ty, ins.b)
                };
                let n = g.bin(op, a, b).unwrap();
                Some((ty, n, ref_bin(op, ty, av, bv)))
            }
            1 => {
                let op = if ins.sub % 2 == 0 {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                let (a, av) = pick(&pool, ty, ins.a);
                Some((ty, g.un(op, a).unwrap(), ref_un(op, ty, av)))
            }
            2 => {
                let op = CMPS[ins.sub as usize % CMPS.len()];
                let (a, av) = pick(&pool, ty, ins.a);
                let (b, bv) = if ins.c % 3 == 0 {
                    let k = ty.normalize(ins.k);
                    (g.iconst(ty, k).unwrap(), k)
                } else {
                    pick(&pool, ty, ins.b)
                };
                Some((Type::I8, g.cmp(op, a, b).unwrap(), ref_cmp(op, ty, av, bv)))
            }
            3 => {
                let to = INTS[ins.sub as usize % 4];
                let (op, from) = match (ty.bits().unwrap(), to.bits().unwrap()) {
                    (f, t) if f < t => (
                        if ins.c % 2 == 0 {
                            ConvOp::Uext
                        } else {
                            ConvOp::Sext
                        },
                        ty,
                    ),
                    (f, t) if f > t => (ConvOp::Trunc, ty),
                    _ => continue,
                };
                let (a, av) = pick(&pool, from, ins.a);
                Some((to, g.conv(op, to, a).unwrap(), ref_conv(op, from, to, av)))
            }
            4 => {
                let (c, cv) = if ins.c % 4 == 0 {
                    let k = ins.k & 1;
                    (g.iconst(Type::I8, k).unwrap(), k)
                } else {
                    pick(&pool, Type::I8, ins.c)
                };
                let (a, av) = pick(&pool, ty, ins.a);
                let (b, bv) = pick(&pool, ty, ins.b);
                Some((
                    ty,
                    g.select(c, a, b).unwrap(),
                    if cv != 0 { av } else { bv },
                ))
            }
            5 => {
                let k = ty.normalize(ins.k);
                Some((ty, g.iconst(ty, k).unwrap(), k))
            }
            // ---- memory ----
            6 => {
                // p += small k (Brainfuck `>`/`<`).
                let k = ins.k.rem_euclid(7) - 3;
                let kn = g.iconst(Type::I64, k).unwrap();
                p = (g.add(p.0, kn).unwrap(), p.1.wrapping_add(k));
                None
            }
            7 | 8 => {
                let off = (ins.c % 12) as i32 - 4;
                let (base, base_v) = if ins.sub % 3 == 0 {
                    (other, other_v)
                } else {
                    let ptr = g.ptr_add(tape, p.0).unwrap();
                    (ptr, tape_v.wrapping_add(p.1))
                };
                let addr = (base_v as u64).wrapping_add(off as i64 as u64);
                // Alias classes only where the promise holds: the tape is
                // class 1 and `other` class 2 when they lie far apart;
                // class 0 (may alias anything) is always allowed.
                let class = match (far && ins.b % 3 != 0, ins.sub % 3 == 0) {
                    (false, _) => 0,
                    (true, true) => 2,
                    (true, false) => 1,
                };
                if ins.kind % kinds == 7 {
                    let n = g.load_class(e.ctrl, mem, base, off, ty, class).unwrap();
                    Some((ty, n, read(&ref_mem, addr, ty)))
                } else {
                    let (v, vv) = pick(&pool, ty, ins.a);
                    mem = g.store_class(e.ctrl, mem, base, off, v, class).unwrap();
                    write(&mut ref_mem, addr, ty, vv);
                    None
                }
            }
            _ => unreachable!(),
        };
        if let Some((ty, n, v)) = made {
            pool.entry(ty).or_default().push((n, v));
            values.push((n, v));
        }
    }
    // Every value is returned, so all of it is live and verified.
    let mut rets = Vec::new();
    for &(n, _) in &values {
        rets.push(g.ret(e.ctrl, mem, n).unwrap());
    }
    let (pn, _) = p;
    rets.push(g.ret(e.ctrl, mem, pn).unwrap());
    g.finish(&rets).unwrap();
    Built {
        graph: g,
        values,
        final_mem: mem,
        ref_mem,
    }
}

fn same_memory(a: &BTreeMap<u64, u8>, b: &BTreeMap<u64, u8>) -> Result<(), String> {
    for &addr in a.keys().chain(b.keys()) {
        let x = a.get(&addr).copied().unwrap_or(initial_byte(addr));
        let y = b.get(&addr).copied().unwrap_or(initial_byte(addr));
        if x != y {
            return Err(format!("byte at {addr:#x}: {x} vs {y}"));
        }
    }
    Ok(())
}

/// Checks a built graph (as built, then optimized) against the reference.
fn check(mut b: Built, params: &[i64]) -> Result<(), TestCaseError> {
    for phase in ["built", "optimized"] {
        if phase == "optimized" {
            let stats =
                vssa::optimize(&mut b.graph).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(stats.converged);
        }
        let g = &b.graph;
        if let Err(errs) = vssa::verify(g) {
            let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            return Err(TestCaseError::fail(format!(
                "{phase}: {text:?}\n{}",
                vssa::print::print(g)
            )));
        }
        no_store_forks(g)?;
        for &(n, want) in &b.values {
            let got = match eval(g, n, params) {
                Val::Int(v) => v,
                other => return Err(TestCaseError::fail(format!("{n} gave {other:?}"))),
            };
            prop_assert_eq!(
                got,
                want,
                "{} {}: {}\n{}",
                phase,
                n,
                vssa::print::node_line(g, g.resolve(n)),
                vssa::print::print(g)
            );
        }
        match eval(g, b.final_mem, params) {
            Val::Mem(m) => {
                if let Err(e) = same_memory(&m, &b.ref_mem) {
                    return Err(TestCaseError::fail(format!(
                        "{phase}: {e}\n{}",
                        vssa::print::print(g)
                    )));
                }
            }
            other => return Err(TestCaseError::fail(format!("final mem gave {other:?}"))),
        }
    }
    Ok(())
}

/// Memory is one physical thing: in straight-line code the live stores form
/// a single chain, so no memory state may feed two live stores. (Value
/// semantics alone would not notice a fork; the scheduler would.)
fn no_store_forks(g: &Graph) -> Result<(), TestCaseError> {
    let mut seen: HashMap<NodeId, NodeId> = HashMap::new();
    for n in g.live_nodes() {
        if let Op::Store { .. } = g.op(n) {
            let m = g.input(n, 1);
            if let Some(first) = seen.insert(m, n) {
                return Err(TestCaseError::fail(format!(
                    "memory state {m} feeds stores {first} and {n}\n{}",
                    vssa::print::print(g)
                )));
            }
        }
    }
    Ok(())
}

fn int_params() -> impl Strategy<Value = [i64; N_INT_PARAMS]> {
    prop::array::uniform8(prop_oneof![
        -3i64..3,
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX)
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pure_expressions_agree(
        insts in prop::collection::vec(inst(), 1..40),
        ints in int_params(),
    ) {
        let params = param_values(ints, 0, 0);
        for simplify in [true, false] {
            check(build(&insts, &params, simplify, false), &params)?;
        }
    }

    #[test]
    fn memory_programs_agree(
        insts in prop::collection::vec(inst(), 1..60),
        ints in int_params(),
        alias in any::<u8>(),
        p in -4i64..4,
    ) {
        let params = param_values(ints, alias, p);
        for simplify in [true, false] {
            check(build(&insts, &params, simplify, true), &params)?;
        }
    }
}

/// Building the same program twice gives the same text, addresses included.
#[test]
fn construction_is_deterministic() {
    let insts: Vec<Inst> = (0..200u16)
        .map(|i| Inst {
            kind: (i * 7 % 9) as u8,
            ty: (i % 4) as u8,
            sub: (i * 13 % 11) as u8,
            a: i * 3,
            b: i * 5,
            c: i,
            k: i64::from(i) - 100,
        })
        .collect();
    let params = param_values([1, -2, 3, -4, 5, -6, 7, -8], 1, 0);
    let mut a = build(&insts, &params, true, true).graph;
    let mut b = build(&insts, &params, true, true).graph;
    assert_eq!(vssa::print::print(&a), vssa::print::print(&b));
    vssa::optimize(&mut a).unwrap();
    vssa::optimize(&mut b).unwrap();
    assert_eq!(vssa::print::print(&a), vssa::print::print(&b));
    assert_eq!(a.replacements(), b.replacements());
}
