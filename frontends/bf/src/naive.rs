//! The naive baseline: a program lowered straight to Cranelift, no
//! middle-end.
//!
//! This exists to measure what the vssa middle-end buys over "just hand it
//! to Cranelift" (`vssa run --engine naive`, `vssa bench bf`). Each folded
//! instruction becomes a few Cranelift instructions: the cell index `p` is
//! a Cranelift variable, every `+`/`-` is a load, add and store, every move
//! adds to `p` and checks it against the tape (the interpreter's exact
//! check, at the same instruction), `[`/`]` are block branches, and `.`/`,`
//! call the JIT runtime's host functions. Only Cranelift's own optimizer
//! (`opt_level=speed`) runs on it.
//!
//! The compiled function is `extern "C" fn(*mut Context) -> i64`. It
//! returns [`DONE`], [`HOST_ERROR`] (a host call recorded the error), or
//! `TAPE_ERROR_BASE + pc` for a move at instruction `pc` that left the
//! tape, with the offending index in `Context::ptr`.

use crate::error::{RunError, RunErrorKind};
use crate::interp::{Io, RunOptions};
use crate::parse::{InstKind, Program};
use crate::runtime::{host_getchar, host_putchar, Context, HostState};
use crate::tape::Tape;
use cranelift_codegen::ir::{
    self, types, AbiParam, InstBuilder, MemFlagsData, Signature, UserFuncName,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

/// The program ran to its end.
const DONE: i64 = 0;
/// A host call failed; the host state holds the error.
const HOST_ERROR: i64 = 1;
/// `TAPE_ERROR_BASE + pc`: the move at `pc` left the tape.
const TAPE_ERROR_BASE: i64 = 2;

/// Above this loop nesting depth Cranelift's optimizer is switched off: its
/// cost grows with depth times size (see the backend's
/// `max_optimized_loop_depth`), and no benchmark nests this deep.
const MAX_OPTIMIZED_DEPTH: usize = 1000;

/// Byte offsets into [`Context`] (`#[repr(C)]`: tape, fuel, ptr, host).
const CTX_TAPE: i32 = 0;
const CTX_PTR: i32 = 16;

/// Why the naive engine could not run a program (never a guest error).
#[derive(Debug)]
pub enum NaiveError {
    /// A guest error, exactly as the interpreter reports it.
    Run(RunError),
    /// The tape could not be allocated.
    Tape(crate::error::TapeError),
    /// Cranelift refused the function or the host.
    Codegen(String),
    /// A run option this baseline does not implement.
    Unsupported(&'static str),
}

impl std::fmt::Display for NaiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NaiveError::Run(e) => write!(f, "{e}"),
            NaiveError::Tape(e) => write!(f, "{e}"),
            NaiveError::Codegen(e) => write!(f, "internal error: naive codegen: {e}"),
            NaiveError::Unsupported(what) => write!(f, "the naive engine does not support {what}"),
        }
    }
}

impl std::error::Error for NaiveError {}

/// Where the time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct NaiveReport {
    /// Building the Cranelift IR.
    pub lower: Duration,
    /// Cranelift compilation and finalization.
    pub codegen: Duration,
    pub run: Duration,
    pub clif_insts: usize,
    pub code_size: usize,
}

impl NaiveReport {
    pub fn compile(&self) -> Duration {
        self.lower + self.codegen
    }
}

/// A compiled program; owns the machine code.
struct NaiveCode {
    module: ManuallyDrop<JITModule>,
    entry: *const u8,
}

impl Drop for NaiveCode {
    fn drop(&mut self) {
        // SAFETY: the module is not used after this take, and no code of it
        // runs: calls borrow `self`, which is being dropped.
        let module = unsafe { ManuallyDrop::take(&mut self.module) };
        // SAFETY: as above, nothing will call into the freed code.
        unsafe { module.free_memory() };
    }
}

/// Compiles and runs `prog` on a fresh tape of `tape_limit` cells.
/// Output, input, and errors (kind and position) are the interpreter's.
pub fn run_naive(
    prog: &Program,
    tape_limit: usize,
    io: &mut Io<'_>,
    opts: &RunOptions,
) -> (NaiveReport, Result<(), NaiveError>) {
    let mut report = NaiveReport::default();
    let result = (|| {
        if opts.max_steps.is_some() {
            return Err(NaiveError::Unsupported("a step limit"));
        }
        let mut tape = Tape::new(tape_limit).map_err(NaiveError::Tape)?;
        let code = compile(prog, tape.len(), &mut report)?;
        let t = Instant::now();
        let mut host = HostState {
            prog,
            io,
            eof: opts.eof,
            error: None,
        };
        let mut ctx = Context::new(&mut tape, 0, &mut host as *mut HostState as *mut c_void);
        // SAFETY: `entry` is the finalized code of a function built by
        // `compile` with the C ABI signature `fn(*mut Context) -> i64`, alive
        // while `code` is. It reads `ctx.tape` and accesses tape cells only
        // at indexes it has checked to be below `tape.len()` (the length it
        // was compiled for), writes only `ctx.ptr`, and calls only the
        // runtime's host functions, whose contract (a context whose `host`
        // is a live `HostState`, not otherwise borrowed) holds for the call.
        let status = unsafe {
            let f: extern "C" fn(*mut Context) -> i64 = std::mem::transmute(code.entry);
            f(&mut ctx)
        };
        report.run = t.elapsed();
        let error = host.error.take();
        match status {
            DONE => Ok(()),
            HOST_ERROR => Err(NaiveError::Run(error.unwrap_or_else(|| {
                RunError::new(
                    RunErrorKind::Io {
                        kind: std::io::ErrorKind::Other,
                        message: "compiled code reported an error without a cause".into(),
                    },
                    None,
                )
            }))),
            s => {
                let pc = (s - TAPE_ERROR_BASE) as usize;
                let kind = if ctx.ptr < 0 {
                    RunErrorKind::TapeUnderflow
                } else {
                    RunErrorKind::TapeLimit { limit: tape.len() }
                };
                Err(NaiveError::Run(RunError::new(
                    kind,
                    crate::build::position(prog, pc),
                )))
            }
        }
    })();
    (report, result)
}

fn codegen_err(e: impl std::fmt::Display) -> NaiveError {
    NaiveError::Codegen(e.to_string())
}

/// The host ISA (`opt_level=speed` unless the nesting is very deep).
fn isa(opt_level: &str) -> Result<cranelift_codegen::isa::OwnedTargetIsa, NaiveError> {
    let mut flags = settings::builder();
    for (k, v) in [
        ("opt_level", opt_level),
        (
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        ),
        ("is_pic", "false"),
        ("use_colocated_libcalls", "false"),
    ] {
        flags.set(k, v).map_err(codegen_err)?;
    }
    let isa = cranelift_native::builder()
        .map_err(codegen_err)?
        .finish(settings::Flags::new(flags))
        .map_err(codegen_err)?;
    if isa.pointer_bits() != 64 {
        return Err(NaiveError::Codegen("needs a 64-bit host".into()));
    }
    Ok(isa)
}

/// Deepest loop nesting, to choose the optimization level.
fn max_depth(prog: &Program) -> usize {
    let mut depth = 0usize;
    let mut max = 0;
    for inst in &prog.insts {
        match inst.kind {
            InstKind::Open { .. } => {
                depth += 1;
                max = max.max(depth);
            }
            InstKind::Close { .. } => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Lowers `prog` instruction by instruction and compiles it.
fn compile(
    prog: &Program,
    tape_len: usize,
    report: &mut NaiveReport,
) -> Result<NaiveCode, NaiveError> {
    let t = Instant::now();
    let opt = if max_depth(prog) <= MAX_OPTIMIZED_DEPTH {
        "speed"
    } else {
        "none"
    };
    let isa = isa(opt)?;
    let call_conv = isa.default_call_conv();
    let config = isa.frontend_config();
    let mut module = ManuallyDrop::new(JITModule::new(JITBuilder::with_isa(
        isa,
        default_libcall_names(),
    )));
    // From here on `code` owns the module, so errors free it.
    let mut code = NaiveCode {
        // SAFETY: `module` is never used again after this take.
        module: ManuallyDrop::new(unsafe { ManuallyDrop::take(&mut module) }),
        entry: std::ptr::null(),
    };
    let module = &mut *code.module;

    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    // Both host functions: fn(*mut Context, i32, i64) -> i32.
    let mut host_sig = Signature::new(call_conv);
    host_sig.params.push(AbiParam::new(types::I64));
    host_sig.params.push(AbiParam::new(types::I32));
    host_sig.params.push(AbiParam::new(types::I64));
    host_sig.returns.push(AbiParam::new(types::I32));

    let mut ctx = module.make_context();
    ctx.func = ir::Function::with_name_signature(UserFuncName::user(0, 0), sig.clone());
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let host_sig_ref = b.import_signature(host_sig);
        // Cells are always in bounds (checked at each move); the context
        // is valid for the call.
        let flags = MemFlagsData::new().with_notrap();

        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ctxp = b.block_params(entry)[0];
        let tape = b.ins().load(types::I64, flags, ctxp, CTX_TAPE);
        let p = b.declare_var(types::I64);
        let zero = b.ins().iconst(types::I64, 0);
        b.def_var(p, zero);

        // Shared exits: a tape error (block params pc, p) and a host error.
        let tape_err = b.create_block();
        b.append_block_param(tape_err, types::I64);
        b.append_block_param(tape_err, types::I64);
        b.set_cold_block(tape_err);
        let host_err = b.create_block();
        b.set_cold_block(host_err);

        let cell_addr = |b: &mut FunctionBuilder, p| {
            let pv = b.use_var(p);
            b.ins().iadd(tape, pv)
        };
        // (body, after) blocks of the open loops.
        let mut loops: Vec<(ir::Block, ir::Block)> = Vec::new();
        for (pc, inst) in prog.insts.iter().enumerate() {
            match inst.kind {
                InstKind::Add(n) => {
                    let a = cell_addr(&mut b, p);
                    let v = b.ins().load(types::I8, flags, a, 0);
                    let v = b.ins().iadd_imm_s(v, i64::from(n));
                    b.ins().store(flags, v, a, 0);
                }
                InstKind::Move(n) => {
                    let pv = b.use_var(p);
                    let np = b.ins().iadd_imm_s(pv, n);
                    b.def_var(p, np);
                    // Unsigned: a negative index is huge, so one compare
                    // catches both ends.
                    let bad = b.ins().icmp_imm_s(
                        ir::condcodes::IntCC::UnsignedGreaterThanOrEqual,
                        np,
                        tape_len as i64,
                    );
                    let ok = b.create_block();
                    let pcv = b.ins().iconst(types::I64, pc as i64);
                    b.ins()
                        .brif(bad, tape_err, &[pcv.into(), np.into()], ok, &[]);
                    b.switch_to_block(ok);
                }
                InstKind::Out => {
                    let a = cell_addr(&mut b, p);
                    let v = b.ins().uload8(types::I32, flags, a, 0);
                    let pcv = b.ins().iconst(types::I64, pc as i64);
                    let f = b.ins().iconst(types::I64, host_putchar as *const u8 as i64);
                    let call = b.ins().call_indirect(host_sig_ref, f, &[ctxp, v, pcv]);
                    let r = b.inst_results(call)[0];
                    let ok = b.create_block();
                    b.ins().brif(r, host_err, &[], ok, &[]);
                    b.switch_to_block(ok);
                }
                InstKind::In => {
                    let a = cell_addr(&mut b, p);
                    let v = b.ins().uload8(types::I32, flags, a, 0);
                    let pcv = b.ins().iconst(types::I64, pc as i64);
                    let f = b.ins().iconst(types::I64, host_getchar as *const u8 as i64);
                    let call = b.ins().call_indirect(host_sig_ref, f, &[ctxp, v, pcv]);
                    let r = b.inst_results(call)[0];
                    let bad = b
                        .ins()
                        .icmp_imm_s(ir::condcodes::IntCC::SignedLessThan, r, 0);
                    let ok = b.create_block();
                    b.ins().brif(bad, host_err, &[], ok, &[]);
                    b.switch_to_block(ok);
                    let byte = b.ins().ireduce(types::I8, r);
                    b.ins().store(flags, byte, a, 0);
                }
                InstKind::Open { .. } => {
                    let body = b.create_block();
                    let after = b.create_block();
                    let a = cell_addr(&mut b, p);
                    let v = b.ins().load(types::I8, flags, a, 0);
                    b.ins().brif(v, body, &[], after, &[]);
                    b.switch_to_block(body);
                    loops.push((body, after));
                }
                InstKind::Close { .. } => {
                    let Some((body, after)) = loops.pop() else {
                        return Err(NaiveError::Codegen("unbalanced program".into()));
                    };
                    let a = cell_addr(&mut b, p);
                    let v = b.ins().load(types::I8, flags, a, 0);
                    b.ins().brif(v, body, &[], after, &[]);
                    b.switch_to_block(after);
                }
            }
        }
        let done = b.ins().iconst(types::I64, DONE);
        b.ins().return_(&[done]);

        b.switch_to_block(tape_err);
        let pc = b.block_params(tape_err)[0];
        let bad_p = b.block_params(tape_err)[1];
        b.ins().store(flags, bad_p, ctxp, CTX_PTR);
        let code_v = b.ins().iadd_imm_s(pc, TAPE_ERROR_BASE);
        b.ins().return_(&[code_v]);

        b.switch_to_block(host_err);
        let e = b.ins().iconst(types::I64, HOST_ERROR);
        b.ins().return_(&[e]);

        b.seal_all_blocks();
        b.finalize(config);
    }
    report.clif_insts = ctx.func.dfg.num_insts();
    report.lower = t.elapsed();

    let t = Instant::now();
    let id = module
        .declare_function("bf_naive", Linkage::Local, &sig)
        .map_err(codegen_err)?;
    module.define_function(id, &mut ctx).map_err(codegen_err)?;
    report.code_size = ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(codegen_err)?;
    code.entry = module.get_finalized_function(id);
    report.codegen = t.elapsed();
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::EofMode;

    /// Runs `src` on `input` with both the interpreter and the naive
    /// engine and checks they agree on output and result.
    fn check(src: &str, input: &[u8], tape: usize) -> (Vec<u8>, Result<(), RunError>) {
        let prog = crate::parse(src).unwrap();
        let opts = RunOptions {
            max_steps: None,
            eof: EofMode::Unchanged,
        };
        let mut want_out = Vec::new();
        let mut inp = input;
        let want = {
            let mut t = Tape::new(tape).unwrap();
            let mut io = Io::new(&mut inp, &mut want_out);
            crate::run(&prog, &mut t, &mut io, &opts).map(|_| ())
        };
        let mut got_out = Vec::new();
        let mut inp = input;
        let (_, got) = {
            let mut io = Io::new(&mut inp, &mut got_out);
            run_naive(&prog, tape, &mut io, &opts)
        };
        let got = got.map_err(|e| match e {
            NaiveError::Run(e) => e,
            other => panic!("pipeline failure: {other}"),
        });
        assert_eq!(got_out, want_out, "output of {src:?}");
        assert_eq!(got, want, "result of {src:?}");
        (got_out, got)
    }

    #[test]
    fn matches_the_interpreter() {
        let hello = "++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.>>.<-.<.+++.------.--------.>>+.>++.";
        let (out, r) = check(hello, b"", 30_000);
        assert_eq!(out, b"Hello World!\n");
        assert!(r.is_ok());
        // Echo until EOF (the cell is cleared before each `,`, and EOF
        // leaves it unchanged, so the loop ends there).
        let (out, _) = check(",[.[-],]", b"echo me", 30_000);
        assert_eq!(out, b"echo me");
        // Wrapping and nested loops.
        let (out, _) = check("-.+.+[-]++++[>++++[>++++<-]<-]>>.", b"", 30_000);
        assert_eq!(out, [255, 0, 64]);
        assert!(check("", b"", 30_000).0.is_empty());
    }

    #[test]
    fn tape_errors_match() {
        let (_, r) = check("+.<", b"", 30_000);
        assert_eq!(r.unwrap_err().kind, RunErrorKind::TapeUnderflow);
        let (_, r) = check("+[>+]", b"", 30_000);
        assert_eq!(
            r.unwrap_err().kind,
            RunErrorKind::TapeLimit { limit: 30_000 }
        );
        // A folded run is checked where it ends, so this is fine.
        assert!(check("<>.>>><<<", b"", 30_000).1.is_ok());
        let (_, r) = check("\n  +++[.>]", b"", 30_000);
        assert!(r.is_ok());
        let (_, r) = check("+++[<+>-]", b"", 30_000);
        assert_eq!(r.unwrap_err().pos.map(|p| p.col), Some(5));
    }

    #[test]
    fn io_errors_are_reported_at_the_instruction() {
        struct Broken;
        impl std::io::Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let prog = crate::parse("+\n.").unwrap();
        let mut inp: &[u8] = b"";
        let mut out = Broken;
        let mut io = Io::new(&mut inp, &mut out);
        let (_, r) = run_naive(&prog, 30_000, &mut io, &RunOptions::default());
        match r {
            Err(NaiveError::Run(e)) => {
                assert!(matches!(e.kind, RunErrorKind::Io { .. }));
                assert_eq!(e.pos.map(|p| p.line), Some(2));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn step_limit_is_refused() {
        let prog = crate::parse("+").unwrap();
        let mut inp: &[u8] = b"";
        let mut out = Vec::new();
        let mut io = Io::new(&mut inp, &mut out);
        let opts = RunOptions {
            max_steps: Some(1),
            ..RunOptions::default()
        };
        assert!(matches!(
            run_naive(&prog, 30_000, &mut io, &opts).1,
            Err(NaiveError::Unsupported(_))
        ));
    }

    #[test]
    fn deep_nesting_compiles() {
        let n = 5000;
        let src = "+".to_string() + &"[-".repeat(n) + &"]".repeat(n) + ".";
        assert!(check(&src, b"", 30_000).1.is_ok());
    }
}
