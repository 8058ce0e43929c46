//! The JIT runtime: the Brainfuck guest's side of the `vssa-jit`
//! pipeline (its units, context, host functions and deopt frames), and the
//! `jit` engine, which compiles a whole program and runs it on the
//! interpreter's tape, handing over to the interpreter when the compiled
//! code exits early.
//!
//! This module and [`host`](self) functions are the only places in the
//! crate that cross into generated code; each `unsafe` block says why it
//! holds.

use crate::build::{
    self, BuildOptions, CompiledProgram, Unit, DEOPT_SLOTS, EXIT_DONE, EXIT_ERROR,
    EXIT_FIRST_DEOPT, FRAME_FUEL, FRAME_PTR,
};
use crate::error::{RunError, RunErrorKind};
use crate::interp::{self, EofMode, InterpState, Io, RunOptions};
use crate::parse::Program;
use crate::tape::Tape;
use std::ffi::c_void;
use std::time::Instant;
use vssa::{Addr, NodeId, Type};
use vssa_backend::HostFn;
use vssa_deopt::{DeoptAbi, Frame, Guest};
use vssa_jit::{Built, Exit, Site};
use vssa_patch::LogBook;

pub use vssa_jit::{
    thread_cpu_time, JitReport, UnitCode, UnitSize, MAX_UNIT_INSTS, MAX_UNIT_WEIGHT,
};

/// The memory the compiled code reads and writes besides the tape. Field
/// offsets are [`build::ctx_offset`]; a test pins them.
#[repr(C)]
pub struct Context {
    pub tape: *mut u8,
    pub fuel: u64,
    /// The cell index on entry to a loop unit and when it ends.
    pub ptr: i64,
    /// The [`HostState`] of the running call, for host functions.
    pub host: *mut c_void,
    /// Where a failing guard leaves its frame (`vssa_deopt::DeoptAbi`).
    pub deopt: [i64; DEOPT_SLOTS],
}

impl Context {
    /// A context for a run on `tape` with `fuel` loop tests left.
    pub(crate) fn new(tape: &mut Tape, fuel: u64, host: *mut c_void) -> Context {
        Context {
            tape: tape.as_mut_ptr(),
            fuel,
            ptr: 0,
            host,
            deopt: [0; DEOPT_SLOTS],
        }
    }
}

/// What host functions need while compiled code runs.
pub(crate) struct HostState<'p, 'io, 'b> {
    pub(crate) prog: &'p Program,
    pub(crate) io: &'io mut Io<'b>,
    pub(crate) eof: EofMode,
    /// The error a host function hit; the code then returns [`EXIT_ERROR`].
    pub(crate) error: Option<RunError>,
}

/// How the JIT runs a program: the pipeline's options and the run's.
pub type JitConfig = vssa_jit::JitConfig<RunOptions>;

/// A failure of the pipeline (never of the guest program, which is
/// [`vssa_jit::JitError::Run`]): reported as such so that it is never
/// mistaken for a guest error.
pub type JitError = vssa_jit::JitError<RunError>;

impl From<RunError> for JitError {
    fn from(e: RunError) -> Self {
        JitError::Run(e)
    }
}

/// The host functions the graph calls, indexed by [`build::HOST_PUTCHAR`] etc.
fn host_table() -> Vec<HostFn> {
    vec![
        HostFn::new(
            "bf_putchar",
            host_putchar as *const u8,
            &[Type::Ptr, Type::I32, Type::I64],
            Some(Type::I32),
        ),
        HostFn::new(
            "bf_getchar",
            host_getchar as *const u8,
            &[Type::Ptr, Type::I32, Type::I64],
            Some(Type::I32),
        ),
    ]
}

/// Recovers the host state behind a context.
///
/// # Safety
/// `ctx` is the context [`run_jit`] passed to the compiled code, whose
/// `host` points to the `HostState` living on `run_jit`'s stack for the
/// whole call, and no other reference to that state is live.
unsafe fn host_state<'a>(ctx: *mut Context) -> &'a mut HostState<'a, 'a, 'a> {
    // SAFETY: the caller's contract above.
    unsafe { &mut *((*ctx).host as *mut HostState<'a, 'a, 'a>) }
}

/// Runs one I/O step of a host call. A failure, or a panic in the
/// embedder's reader or writer (which must not unwind into compiled code),
/// is recorded against instruction `pc` and gives `None`.
fn host_io<T>(
    st: &mut HostState<'_, '_, '_>,
    pc: i64,
    what: &str,
    step: impl FnOnce(&mut Io<'_>) -> std::io::Result<T>,
) -> Option<T> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&mut *st.io)));
    let kind = match r {
        Ok(Ok(v)) => return Some(v),
        Ok(Err(e)) => RunErrorKind::io(&e),
        Err(_) => RunErrorKind::Io {
            kind: std::io::ErrorKind::Other,
            message: format!("the {what} panicked"),
        },
    };
    st.error = Some(RunError::new(kind, build::position(st.prog, pc as usize)));
    None
}

/// `.`: writes `byte`; returns 0, or 1 after recording an error.
pub(crate) extern "C" fn host_putchar(ctx: *mut Context, byte: i32, pc: i64) -> i32 {
    // SAFETY: only compiled code calls this, with the context run_jit gave it.
    let st = unsafe { host_state(ctx) };
    let at = build::position(st.prog, pc as usize);
    match host_io(st, pc, "output writer", |io| io.write_byte(byte as u8, at)) {
        Some(()) => 0,
        None => 1,
    }
}

/// `,`: returns the cell's new value (0..=255), or -1 after recording an error.
pub(crate) extern "C" fn host_getchar(ctx: *mut Context, cur: i32, pc: i64) -> i32 {
    // SAFETY: only compiled code calls this, with the context run_jit gave it.
    let st = unsafe { host_state(ctx) };
    let eof = st.eof;
    match host_io(st, pc, "input reader", |io| io.read_cell(cur as u8, eof)) {
        Some(b) => i32::from(b),
        None => -1,
    }
}

/// What to speculate on while compiling a unit.
#[derive(Clone, Copy)]
pub struct Speculate<'a> {
    /// Whether the loop opened at a pc was never entered while profiling.
    pub never_entered: &'a dyn Fn(usize) -> bool,
}

/// What [`UnitCompiler::compile`] needs besides the program.
#[derive(Clone, Copy)]
pub struct UnitRequest<'a> {
    pub unit: Unit,
    pub tape_len: usize,
    /// `None`: no speculation (the `jit` engine).
    pub speculate: Option<Speculate<'a>>,
    /// The units' patch logs (from the patch-log file, or earlier
    /// compilations in this run). If it has this unit's log, its patches
    /// are replayed instead of optimizing, up to the first one that builds
    /// a refuted guard, and refuted guards are never speculated on again.
    pub book: &'a LogBook,
    /// Function name for the JIT.
    pub name: &'a str,
}

/// A program's units as the pipeline's guest: what `build` needs to
/// build one (`P`: a reference to the program, or an `Arc` for the
/// compile thread).
#[derive(Clone)]
pub(crate) struct BfUnits<P> {
    pub(crate) prog: P,
    pub(crate) opts: BuildOptions,
}

/// The build options of units run on a tape of `tape_len` cells with `run`.
pub(crate) fn build_options(tape_len: usize, run: &RunOptions) -> BuildOptions {
    BuildOptions {
        tape_len: tape_len as u64,
        step_limit: run.max_steps.is_some(),
        tape_guard: crate::tape::GUARD_CELLS as u64,
    }
}

impl<P: std::ops::Deref<Target = Program>> vssa_jit::Guest for BfUnits<P> {
    type Unit = Unit;
    type Error = RunError;

    fn build(&self, unit: Unit) -> Result<Built, vssa_jit::GuestFailure> {
        let CompiledProgram { graph, ctx, sites } = build::build_unit(&self.prog, unit, self.opts)?;
        let sites = sites
            .iter()
            .map(|s| Site {
                branch: s.site,
                label: s.open,
            })
            .collect();
        Ok(Built { graph, ctx, sites })
    }

    fn size(&self, unit: Unit) -> UnitSize {
        unit_size(&self.prog, unit)
    }

    fn source_key(&self, unit: Unit) -> Option<Addr> {
        Some(unit_source_key(&self.prog, unit, &self.opts))
    }

    fn hosts(&self) -> Vec<HostFn> {
        host_table()
    }

    fn deopt_abi(&self, ctx: NodeId) -> DeoptAbi {
        DeoptAbi {
            ctx,
            buffer_offset: build::ctx_offset::DEOPT,
            capacity: DEOPT_SLOTS,
            first_exit: EXIT_FIRST_DEOPT as i64,
            exit_type: Type::I32,
        }
    }

    fn error_exit(&self) -> Option<u32> {
        Some(EXIT_ERROR)
    }

    /// The whole program's dumps keep the bare phase name.
    fn dump_label(&self, name: &str, phase: &str) -> String {
        if name == "bf_main" {
            phase.to_string()
        } else {
            format!("{name}-{phase}")
        }
    }
}

/// Compiles units of Brainfuck programs: the `vssa-jit` pipeline, with
/// its JIT and code caches, and the run options compiled in.
pub struct UnitCompiler {
    pub pipeline: vssa_jit::UnitCompiler,
    run: RunOptions,
}

impl UnitCompiler {
    /// A compiler for `cfg` whose code cache keeps up to `cache_bytes` of
    /// machine code (0: no cache).
    pub fn new(cfg: &JitConfig, cache_bytes: usize) -> Result<UnitCompiler, JitError> {
        Ok(UnitCompiler {
            pipeline: vssa_jit::UnitCompiler::new(cfg, cache_bytes, &host_table())?,
            run: cfg.run,
        })
    }

    /// Writes the code cache on disk if it changed (see
    /// [`vssa_jit::UnitCompiler::save_code`]).
    pub fn save_code(&mut self, report: &mut JitReport) {
        self.pipeline.save_code(report);
    }

    /// The pipeline for one unit of `prog` ([`vssa_jit::UnitCompiler::compile`]).
    pub fn compile(
        &mut self,
        prog: &Program,
        req: &UnitRequest<'_>,
        report: &mut JitReport,
    ) -> Result<UnitCode, JitError> {
        let opts = build_options(req.tape_len, &self.run);
        let request = vssa_jit::UnitRequest {
            unit: req.unit,
            speculate: req.speculate.map(|s| s.never_entered),
            book: req.book,
            name: req.name,
        };
        self.pipeline
            .compile(&BfUnits { prog, opts }, &request, report)
    }
}

/// The key of a unit's source, for the code cache's unit entries: the
/// unit's instructions with their positions (frame states name them), the
/// build options, and the address encoding. The rest of what the code
/// depends on (vssa's version, the target) is in the entries' target id.
fn unit_source_key(prog: &Program, unit: Unit, opts: &BuildOptions) -> Addr {
    use crate::parse::InstKind;
    let range = unit_range(prog, unit);
    let mut h = blake3::Hasher::new();
    h.update(b"vssa bf unit source 1");
    h.update(&vssa::ENCODING_VERSION.to_le_bytes());
    for v in [
        opts.tape_len,
        u64::from(opts.step_limit),
        opts.tape_guard,
        u64::from(matches!(unit, Unit::Program)),
        range.start as u64,
        range.len() as u64,
    ] {
        h.update(&v.to_le_bytes());
    }
    for inst in &prog.insts[range] {
        let (tag, v): (u8, u64) = match inst.kind {
            InstKind::Add(n) => (1, u64::from(n)),
            InstKind::Move(d) => (2, d as u64),
            InstKind::Out => (3, 0),
            InstKind::In => (4, 0),
            InstKind::Open { close } => (5, close as u64),
            InstKind::Close { open } => (6, open as u64),
        };
        h.update(&[tag]);
        h.update(&v.to_le_bytes());
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    Addr(key)
}

/// The target id of the code this runtime compiles for `cfg`: which
/// entries of a code cache it can use.
pub fn code_target(cfg: &JitConfig) -> Result<[u8; 32], JitError> {
    vssa_jit::code_target(cfg, &host_table())
}

/// How a call of compiled code ended, for the interpreter to go on from.
pub(crate) enum Ended {
    /// The unit finished: the program's end, or after its loop.
    Done { ptr: i64, fuel: u64 },
    /// A guard failed: resume at `state`; `exit` indexes the unit's table.
    Deopt { state: InterpState, exit: usize },
}

/// Runs `code` on the context, turning its exit code into what happened.
///
/// # Safety
/// `unit` was compiled from a unit of `prog` for a tape of `tape.len()`
/// cells and the current step-limit setting, and `ctx` is a context on
/// `tape` whose host state is live for the call.
pub(crate) unsafe fn call_unit(
    unit: &UnitCode,
    ctx: &mut Context,
    host_error: impl FnOnce() -> Option<RunError>,
    opts: &RunOptions,
) -> Result<Ended, RunError> {
    let internal = |message: String| {
        let kind = std::io::ErrorKind::Other;
        RunError::new(RunErrorKind::Io { kind, message }, None)
    };
    // SAFETY: the caller's contract: the code (alive: `unit` holds it) was
    // compiled for this context layout and tape length; every tape access
    // it makes is bounds-checked against that length first.
    let exit = unsafe { unit.call::<_, RunError>(ctx, |c| &c.deopt) };
    match exit.map_err(|e| internal(e.to_string()))? {
        Exit::Returned(EXIT_DONE) => Ok(Ended::Done {
            ptr: ctx.ptr,
            fuel: ctx.fuel,
        }),
        Exit::Returned(code) => Err(internal(format!(
            "internal error: compiled code returned unknown exit {code}"
        ))),
        Exit::GuestError => Err(host_error()
            .unwrap_or_else(|| internal("compiled code reported an error without a cause".into()))),
        Exit::Deopt { index, frame } => {
            let guest = BfGuest {
                max_steps: opts.max_steps,
            };
            Ok(Ended::Deopt {
                state: guest.resume_state(&frame)?,
                exit: index,
            })
        }
    }
}

/// The Brainfuck guest's side of the deopt protocol: a frame (resume =
/// instruction index; slots: cell index, then the fuel left under a step
/// limit) becomes the interpreter's state.
pub struct BfGuest {
    /// The run's step limit: steps taken = limit - fuel left.
    pub max_steps: Option<u64>,
}

impl Guest for BfGuest {
    type State = InterpState;
    type Error = RunError;

    fn resume_state(&self, frame: &Frame<'_>) -> Result<InterpState, RunError> {
        let bad = |what: &str| {
            RunError::new(
                RunErrorKind::Io {
                    kind: std::io::ErrorKind::Other,
                    message: format!("internal error: deopt frame {what}"),
                },
                None,
            )
        };
        let ptr = *frame
            .values
            .get(FRAME_PTR)
            .ok_or_else(|| bad("without a cell index"))?;
        let steps = match self.max_steps {
            Some(max) => {
                let fuel = *frame
                    .values
                    .get(FRAME_FUEL)
                    .ok_or_else(|| bad("without fuel"))?;
                max.saturating_sub(fuel as u64)
            }
            None => 0,
        };
        let (pc, adjust) = crate::build::decode_resume(frame.exit.resume);
        let pc = usize::try_from(pc).map_err(|_| bad("resumes nowhere"))?;
        let ptr = ptr.wrapping_add(adjust);
        Ok(InterpState { pc, ptr, steps })
    }
}

/// The instructions a unit spans: the whole program, or a loop from its
/// `[` to its `]`.
fn unit_range(prog: &Program, unit: Unit) -> std::ops::Range<usize> {
    match unit {
        Unit::Program => 0..prog.len(),
        Unit::Loop { open } => match prog.insts.get(open).map(|i| i.kind) {
            Some(crate::parse::InstKind::Open { close }) => open..close.max(open) + 1,
            _ => open..open + 1,
        },
    }
}

/// How many instructions `unit` spans (constant time; [`unit_size`] also
/// weighs them).
pub fn unit_len(prog: &Program, unit: Unit) -> usize {
    unit_range(prog, unit).len()
}

/// How large `unit` is ([`UnitSize`]); the weight is computed only for a
/// unit within the instruction bound, so this takes at most
/// [`MAX_UNIT_INSTS`] steps.
pub fn unit_size(prog: &Program, unit: Unit) -> UnitSize {
    use crate::parse::InstKind;
    let range = unit_range(prog, unit);
    let insts = range.len();
    if insts > MAX_UNIT_INSTS {
        return UnitSize { insts, weight: 0 };
    }
    let (mut depth, mut weight) = (0usize, 0usize);
    for inst in &prog.insts[range] {
        if let InstKind::Close { .. } = inst.kind {
            depth = depth.saturating_sub(1);
        }
        weight += 1 + depth;
        if let InstKind::Open { .. } = inst.kind {
            depth += 1;
        }
    }
    UnitSize { insts, weight }
}

/// A program compiled to native code as one unit, ready to run (possibly
/// many times): the `jit` engine.
pub struct NativeProgram {
    unit: UnitCode,
    step_limit: bool,
    tape_len: usize,
}

/// Runs the pipeline on the whole program: build, optimize (or replay the
/// patch log), verify, schedule, lower, codegen. `tape_len` and whether a
/// step limit applies are compiled in.
pub fn compile(
    prog: &Program,
    tape_len: usize,
    cfg: &JitConfig,
    report: &mut JitReport,
) -> Result<NativeProgram, JitError> {
    let guest = BfUnits {
        prog,
        opts: build_options(tape_len, &cfg.run),
    };
    let unit = vssa_jit::compile_program(&guest, cfg, Unit::Program, "bf_main", report)?;
    Ok(NativeProgram {
        unit,
        step_limit: cfg.run.max_steps.is_some(),
        tape_len,
    })
}

impl NativeProgram {
    /// Runs the compiled program from its start on `tape` (normally fresh),
    /// finishing in the interpreter if the code exits early.
    pub fn run(
        &self,
        prog: &Program,
        tape: &mut Tape,
        io: &mut Io<'_>,
        opts: &RunOptions,
        report: &mut JitReport,
    ) -> Result<InterpState, RunError> {
        assert_eq!(
            tape.len(),
            self.tape_len,
            "the tape must have the length the program was compiled for"
        );
        assert_eq!(opts.max_steps.is_some(), self.step_limit);
        let t = Instant::now();
        let mut host = HostState {
            prog,
            io,
            eof: opts.eof,
            error: None,
        };
        let fuel = opts.max_steps.unwrap_or(0);
        let mut ctx = Context::new(tape, fuel, &mut host as *mut HostState as *mut c_void);
        // SAFETY: the unit was compiled for this program, a tape of
        // `self.tape_len` cells (asserted above) and this step-limit
        // setting; `ctx` and the host state it points to outlive the call.
        let ended = unsafe { call_unit(&self.unit, &mut ctx, || host.error.take(), opts) };
        let result = match ended {
            Ok(Ended::Done { .. }) => Ok(InterpState {
                pc: prog.insts.len(),
                ptr: 0,
                steps: 0,
            }),
            Ok(Ended::Deopt { mut state, .. }) => {
                report.exits_to_interp += 1;
                interp::run_from(prog, tape, &mut state, io, opts).map(|()| state)
            }
            Err(e) => Err(e),
        };
        report.run = t.elapsed();
        result
    }
}

/// Compiles and runs `prog` with a fresh tape of `tape_limit` cells. The
/// report is returned whatever happened, with what the run got to.
pub fn run_jit(
    prog: &Program,
    tape_limit: usize,
    io: &mut Io<'_>,
    cfg: &JitConfig,
) -> (JitReport, Result<(), JitError>) {
    let mut report = JitReport::default();
    let result = (|| {
        let mut tape = Tape::new(tape_limit).map_err(|e| JitError::Setup(Box::new(e)))?;
        let native = compile(prog, tape.len(), cfg, &mut report)?;
        report.cpu_before_run = thread_cpu_time();
        let state = native.run(prog, &mut tape, io, &cfg.run, &mut report)?;
        report.steps = state.steps;
        Ok(())
    })();
    (report, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;
    use std::sync::Arc;

    #[test]
    fn pipeline_errors_are_typed_with_their_source() {
        use std::error::Error;
        let graph = vssa::GraphError::UnknownNode(vssa::NodeId::from_index(3));
        let e = JitError::Optimize(graph.clone());
        assert_eq!(e.to_string(), "internal error: optimizer: unknown node n3");
        let source = e.source().unwrap().downcast_ref::<vssa::GraphError>();
        assert_eq!(source, Some(&graph));
        // An unfinished graph fails the verifier: the typed list of
        // problems, whose own source is the first problem.
        let mut g = vssa::Graph::new();
        g.entry().unwrap();
        let e = vssa_jit::verify::<RunError>(&g).unwrap_err();
        let JitError::Verify(errs) = &e else {
            panic!("{e}");
        };
        assert_eq!(errs.0.len(), 1);
        let first = e.source().and_then(|s| s.source()).unwrap();
        assert_eq!(first.to_string(), errs.0[0].to_string());
        let e = JitError::Schedule(vssa_schedule::ScheduleError::NoEnd);
        assert!(e.source().unwrap().is::<vssa_schedule::ScheduleError>());
        assert!(JitError::TooLarge(UnitSize {
            insts: 1,
            weight: 1
        })
        .source()
        .is_none());
    }

    #[test]
    fn unit_sizes_weigh_instructions_by_their_loop_depth() {
        // `+[-[-]>]`: + at depth 0, [ 0, - 1, [ 1, - 2, ] 1, > 1, ] 0.
        let prog = crate::parse("+[-[-]>]").unwrap();
        let whole = unit_size(&prog, Unit::Program);
        assert_eq!(
            (whole.insts, whole.weight),
            (8, 1 + 1 + 2 + 2 + 3 + 2 + 2 + 1)
        );
        let outer = unit_size(&prog, Unit::Loop { open: 1 });
        assert_eq!((outer.insts, outer.weight), (7, 1 + 2 + 2 + 3 + 2 + 2 + 1));
        assert!(whole.fits());
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let deep = unit_size(&crate::parse(deep.as_bytes()).unwrap(), Unit::Program);
        assert_eq!(deep.insts, 2000);
        assert!(deep.weight > MAX_UNIT_WEIGHT && !deep.fits());
        let long = "+>".repeat(MAX_UNIT_INSTS);
        let long = unit_size(&crate::parse(long.as_bytes()).unwrap(), Unit::Program);
        assert_eq!((long.insts, long.weight), (2 * MAX_UNIT_INSTS, 0));
        assert!(!long.fits());
    }

    /// A unit compiled again to the same final graph takes the cached
    /// code; a unit whose graph changed (a refuted speculation) does not.
    #[test]
    fn the_code_cache_serves_unchanged_units_only() {
        let prog = crate::parse("+[>,[-.]<-]").unwrap();
        let cfg = JitConfig {
            optimize: true,
            verify: true,
            ..JitConfig::default()
        };
        let mut c = UnitCompiler::new(&cfg, 1 << 20).unwrap();
        let never = |pc: usize| pc == 4;
        let mut book = LogBook::new();
        let compile = |c: &mut UnitCompiler, book: &LogBook, r: &mut JitReport| {
            c.compile(
                &prog,
                &UnitRequest {
                    unit: Unit::Loop { open: 1 },
                    tape_len: crate::MIN_TAPE_LIMIT,
                    speculate: Some(Speculate {
                        never_entered: &never,
                    }),
                    book,
                    name: "u",
                },
                r,
            )
            .unwrap()
        };
        let mut r = JitReport::default();
        let first = compile(&mut c, &book, &mut r);
        assert!(!first.cached);
        let guard = first
            .exits
            .exits
            .iter()
            .find(|e| e.reason == build::REASON_UNTAKEN)
            .expect("the inner loop is speculated on")
            .guard;
        book.insert(first.log.clone().unwrap());
        let again = compile(&mut c, &book, &mut r);
        assert!(again.cached);
        assert_eq!(again.code_key, first.code_key);
        assert!(Arc::ptr_eq(&again.code, &first.code));
        assert_eq!(r.code_cache_hits, 1);
        book.unit_mut(&first.key).unwrap().refute(guard);
        let refuted = compile(&mut c, &book, &mut r);
        assert!(!refuted.cached);
        assert_ne!(refuted.code_key, first.code_key);
        assert_eq!(r.code_cache_hits, 1);
    }

    /// The compiled code addresses the context by these offsets.
    #[test]
    fn context_offsets_are_the_builders() {
        use build::ctx_offset;
        assert_eq!(offset_of!(Context, tape), ctx_offset::TAPE as usize);
        assert_eq!(offset_of!(Context, fuel), ctx_offset::FUEL as usize);
        assert_eq!(offset_of!(Context, ptr), ctx_offset::PTR as usize);
        assert_eq!(offset_of!(Context, deopt), ctx_offset::DEOPT as usize);
        assert_eq!(std::mem::size_of::<[i64; DEOPT_SLOTS]>(), 8 * DEOPT_SLOTS);
    }
}
