//! Compiled functions calling each other through `vssa-jit`: a guest whose
//! units are functions with signatures. Unit `A` (the classic entry shape
//! `(ctx) -> exit code`) calls `B` directly, `C` through a pointer read
//! from memory and a host function with two results; unit `D` has a
//! signature of its own with two results and is called from Rust through
//! a typed adapter. Every result is checked against the LIR interpreter
//! running the same built graphs as one module.

use vssa::interp::{eval_module, Memory, Module};
use vssa::{BinOp, CmpOp, ConvOp, FBinOp, FConvOp, Graph, GraphError, NodeId, Signature, Type};
use vssa_backend::HostFn;
use vssa_deopt::DeoptAbi;
use vssa_jit::{Built, Exit, Guest, JitConfig, JitReport, UnitCompiler, UnitRequest};
use vssa_patch::LogBook;

/// The units, by function number (`CallDirect { callee }` names these).
const A: u32 = 0;
const B: u32 = 1;
const C: u32 = 2;
const D: u32 = 3;

fn sig(params: &[Type], results: &[Type]) -> Signature {
    Signature::new(params, results).unwrap()
}

/// `B(ctx, n, k) = (0 + 1 + … + (n-1) + k, n * k)`.
fn b_sig() -> Signature {
    sig(&[Type::Ptr, Type::I64, Type::I64], &[Type::I64, Type::I64])
}

/// `C(ctx, x, k) = x * k + x`, in `f64`.
fn c_sig() -> Signature {
    sig(&[Type::Ptr, Type::F64, Type::I64], &[Type::F64])
}

/// `D(ctx, n) = B(ctx, n, n)` with its results swapped.
fn d_sig() -> Signature {
    sig(&[Type::Ptr, Type::I64], &[Type::I64, Type::I64])
}

/// `divmod(a, b, out)`: two results through the out-pointer (`HostFn`).
extern "C" fn divmod(a: i64, b: i64, out: *mut [i64; 2]) {
    let (q, r) = if b == 0 { (0, a) } else { (a / b, a % b) };
    // SAFETY: generated code passes its slot for two 8-byte results.
    unsafe { out.write([q, r]) };
}

fn host_divmod(args: &[i64]) -> Vec<i64> {
    let (a, b) = (args[0], args[1]);
    if b == 0 {
        vec![0, a]
    } else {
        vec![a / b, a % b]
    }
}

struct Functions;

fn build_a(g: &mut Graph) -> Result<(NodeId, NodeId), GraphError> {
    // ctx[0] = n, ctx[8] = k, ctx[16] = x (f64), ctx[24] = C's address;
    // results at ctx[32..].
    let e = g.entry()?;
    let ctx = g.param(e.start, 0, Type::Ptr)?;
    let n = g.load(e.ctrl, e.mem, ctx, 0, Type::I64)?;
    let k = g.load(e.ctrl, e.mem, ctx, 8, Type::I64)?;
    let (m, sp) = g.call_direct(e.ctrl, e.mem, B, b_sig(), &[ctx, n, k])?;
    let x = g.load(e.ctrl, m, ctx, 16, Type::F64)?;
    let target = g.load(e.ctrl, m, ctx, 24, Type::Ptr)?;
    let (m, f) = g.call_indirect(e.ctrl, m, target, c_sig(), &[ctx, x, sp[1]])?;
    let (mut m, qr) = g.call_host(e.ctrl, m, 0, &[sp[0], k], &[Type::I64, Type::I64])?;
    for (i, v) in [sp[0], sp[1], f[0], qr[0], qr[1]].into_iter().enumerate() {
        m = g.store(e.ctrl, m, ctx, 32 + 8 * i as i32, v)?;
    }
    let zero = g.iconst(Type::I32, 0)?;
    let ret = g.ret(e.ctrl, m, zero)?;
    g.finish(&[ret])?;
    Ok((ctx, ret))
}

fn build_b(g: &mut Graph) -> Result<NodeId, GraphError> {
    g.set_signature(b_sig());
    let e = g.entry()?;
    let ctx = g.param(e.start, 0, Type::Ptr)?;
    let n = g.param(e.start, 1, Type::I64)?;
    let k = g.param(e.start, 2, Type::I64)?;
    let zero = g.iconst(Type::I64, 0)?;
    let one = g.iconst(Type::I64, 1)?;
    // while i < n { acc += i; i += 1 }
    let lp = g.loop_header(1, e.ctrl)?;
    let i = g.loop_phi(lp, 1, Type::I64, zero)?;
    let acc = g.loop_phi(lp, 2, Type::I64, k)?;
    let more = g.cmp(CmpOp::Slt, i, n)?;
    let (body, exit) = g.branch(lp, more)?;
    let acc2 = g.add(acc, i)?;
    let i2 = g.add(i, one)?;
    g.set_back_input(lp, body)?;
    g.set_back_input(i, i2)?;
    g.set_back_input(acc, acc2)?;
    let prod = g.bin(BinOp::Mul, n, k)?;
    let ret = g.ret_values(exit, e.mem, &[acc, prod])?;
    g.finish(&[ret])?;
    Ok(ctx)
}

fn build_c(g: &mut Graph) -> Result<NodeId, GraphError> {
    g.set_signature(c_sig());
    let e = g.entry()?;
    let ctx = g.param(e.start, 0, Type::Ptr)?;
    let x = g.param(e.start, 1, Type::F64)?;
    let k = g.param(e.start, 2, Type::I64)?;
    let kf = g.fconv(FConvOp::SToF, Type::F64, k)?;
    let p = g.fbin(FBinOp::Mul, x, kf)?;
    let s = g.fbin(FBinOp::Add, p, x)?;
    let ret = g.ret_values(e.ctrl, e.mem, &[s])?;
    g.finish(&[ret])?;
    Ok(ctx)
}

fn build_d(g: &mut Graph) -> Result<NodeId, GraphError> {
    g.set_signature(d_sig());
    let e = g.entry()?;
    let ctx = g.param(e.start, 0, Type::Ptr)?;
    let n = g.param(e.start, 1, Type::I64)?;
    let (m, r) = g.call_direct(e.ctrl, e.mem, B, b_sig(), &[ctx, n, n])?;
    // Narrow and widen one result so that types other than i64 cross.
    let t = g.conv(ConvOp::Trunc, Type::I32, r[0])?;
    let w = g.conv(ConvOp::Sext, Type::I64, t)?;
    let ret = g.ret_values(e.ctrl, m, &[r[1], w])?;
    g.finish(&[ret])?;
    Ok(ctx)
}

impl Guest for Functions {
    type Unit = u32;
    type Error = std::io::Error;

    fn build(&self, unit: u32) -> Result<Built, vssa_jit::GuestFailure> {
        let mut g = Graph::new();
        let ctx = match unit {
            A => build_a(&mut g)?.0,
            B => build_b(&mut g)?,
            C => build_c(&mut g)?,
            _ => build_d(&mut g)?,
        };
        Ok(Built {
            graph: g,
            ctx,
            sites: Vec::new(),
        })
    }

    fn size(&self, _unit: u32) -> vssa_jit::UnitSize {
        vssa_jit::UnitSize {
            insts: 8,
            weight: 8,
        }
    }

    fn source_key(&self, _unit: u32) -> Option<vssa::Addr> {
        None
    }

    fn hosts(&self) -> Vec<HostFn> {
        vec![HostFn::with_results(
            "divmod",
            divmod as *const u8,
            &[Type::I64, Type::I64],
            &[Type::I64, Type::I64],
        )]
    }

    fn deopt_abi(&self, ctx: NodeId) -> DeoptAbi {
        DeoptAbi {
            ctx,
            buffer_offset: 128,
            capacity: 0,
            first_exit: 16,
            exit_type: Type::I32,
        }
    }

    fn error_exit(&self) -> Option<u32> {
        None
    }
}

#[test]
fn compiled_functions_call_directly_indirectly_and_hosts_with_two_results() {
    let guest = Functions;
    let cfg = JitConfig {
        optimize: true,
        verify: true,
        ..JitConfig::default()
    };
    let mut c = UnitCompiler::new::<(), std::io::Error>(&cfg, 1 << 20, &guest.hosts()).unwrap();
    let book = LogBook::new();
    let mut report = JitReport::default();
    let mut compile = |c: &mut UnitCompiler, unit: u32| {
        let req = UnitRequest {
            unit,
            speculate: None,
            book: &book,
            name: "f",
        };
        c.compile(&guest, &req, &mut report).unwrap()
    };
    // Callees first: a direct call links to the address defined for it.
    let b = compile(&mut c, B);
    c.define_function(B, b.code.code_ptr());
    let cc = compile(&mut c, C);
    let a = compile(&mut c, A);
    let d = compile(&mut c, D);

    // The interpreter runs the built graphs as one module, indirect calls
    // finding C at its real address.
    let graphs: Vec<Graph> = [A, B, C, D]
        .iter()
        .map(|&u| guest.build(u).unwrap().graph)
        .collect();
    let c_addr = cc.code.code_ptr() as i64;
    let addresses = [0, 0, c_addr, 0];
    let module = Module {
        functions: &graphs,
        addresses: &addresses,
    };

    for (n, k, x) in [(10i64, 3i64, 1.5f64), (0, -7, -0.25), (1000, 1 << 40, 3.0)] {
        let mut buf = [0i64; 16];
        buf[0] = n;
        buf[1] = k;
        buf[2] = x.to_bits() as i64;
        buf[3] = c_addr;
        let mut mem_bytes: Vec<u8> = buf.iter().flat_map(|v| v.to_le_bytes()).collect();
        // SAFETY: A reads and writes the first 72 bytes of `buf` and calls
        // B (defined above), C (its address in `buf`) and `divmod`.
        let exit: Result<Exit, vssa_jit::JitError<std::io::Error>> =
            unsafe { a.call(&mut buf, |_| -> &[i64] { &[] }) };
        assert_eq!(exit.unwrap(), Exit::Returned(0));
        let mut mem = Memory::from_bytes(0x10_0000, std::mem::take(&mut mem_bytes));
        let mut hosts = |_: u32, a: &[i64]| host_divmod(a);
        let r = eval_module(module, 0, &[0x10_0000], &mut mem, &mut hosts, 1 << 20, true);
        assert_eq!(r, Ok(vec![0]));
        let want: Vec<i64> = mem
            .bytes()
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(&buf[4..9], &want[4..9], "n={n} k={k} x={x}");
        let sum = n * (n - 1) / 2 + k;
        assert_eq!(buf[4], sum);
        assert_eq!(buf[5], n.wrapping_mul(k));
        assert_eq!(
            f64::from_bits(buf[6] as u64),
            x * (n.wrapping_mul(k) as f64) + x
        );
    }

    // D, a unit with a signature, called through its typed adapter.
    let caller = c.typed_caller::<std::io::Error>(d_sig()).unwrap();
    let mut ctx = [0u8; 8];
    for n in [0i64, 5, 100_000] {
        let args = [ctx.as_mut_ptr() as i64, n];
        // SAFETY: D has `d_sig()` and touches no memory; B is defined.
        let got = unsafe { d.call_typed::<std::io::Error>(&caller, &args) }.unwrap();
        let mut mem = Memory::new(ctx.as_mut_ptr() as i64, 8);
        let want = eval_module(
            module,
            3,
            &args,
            &mut mem,
            &mut |_, _| vec![],
            1 << 24,
            true,
        );
        assert_eq!(Ok(got.clone()), want, "n={n}");
        assert_eq!(got[0], n * n);
    }
}
