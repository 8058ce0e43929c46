//! The JIT runtime: compiles a whole program through the vssa pipeline and
//! runs it on the interpreter's tape, handing over to the interpreter when
//! the compiled code exits early.
//!
//! This module and [`host`](self) functions are the only places in the
//! crate that cross into generated code; each `unsafe` block says why it
//! holds.

use crate::build::{self, BuildOptions, CompiledProgram, EXIT_DONE, EXIT_ERROR, EXIT_FIRST_RESUME};
use crate::error::{RunError, RunErrorKind};
use crate::interp::{self, EofMode, InterpState, Io, RunOptions};
use crate::parse::Program;
use crate::tape::Tape;
use std::ffi::c_void;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vssa::Type;
use vssa_backend::{HostFn, Jit, JitOptions};

/// The memory the compiled code reads and writes besides the tape. Field
/// offsets are [`build::ctx_offset`]; a test pins them.
#[repr(C)]
pub struct Context {
    pub tape: *mut u8,
    pub fuel: u64,
    pub exit_ptr: i64,
    /// The [`HostState`] of the running call, for host functions.
    pub host: *mut c_void,
}

/// What host functions need while compiled code runs.
pub(crate) struct HostState<'p, 'io, 'b> {
    pub(crate) prog: &'p Program,
    pub(crate) io: &'io mut Io<'b>,
    pub(crate) eof: EofMode,
    /// The error a host function hit; the code then returns [`EXIT_ERROR`].
    pub(crate) error: Option<RunError>,
}

/// How the JIT runs a program.
#[derive(Clone, Debug, Default)]
pub struct JitConfig {
    pub run: RunOptions,
    /// Run the worklist optimizer after construction (on by default in the CLI).
    pub optimize: bool,
    /// Run the vssa verifier after each graph phase and Cranelift's verifier.
    pub verify: bool,
    /// Write the graph as Graphviz DOT after each phase into this folder.
    pub dump_dot: Option<PathBuf>,
    /// Keep the Cranelift IR text (see [`JitReport::clif`]).
    pub capture_clif: bool,
    /// A patch log (see `vssa-patch`): when `optimize` is on, it is loaded
    /// if it exists and replayed instead of optimizing (the optimizer then
    /// only runs if some patch did not apply), and the updated log is saved.
    /// An unreadable or stale log is reported in
    /// [`JitReport::patch_log_warnings`] and otherwise ignored.
    pub patch_log: Option<PathBuf>,
}

/// Where the time went and what the pipeline produced.
#[derive(Clone, Debug, Default)]
pub struct JitReport {
    /// Nodes interned by the builder.
    pub nodes_built: usize,
    /// Builder requests, including those answered by value numbering or peepholes.
    pub build_requests: u64,
    /// Live nodes after construction.
    pub nodes_live_built: usize,
    /// Live nodes after optimization.
    pub nodes_after_opt: usize,
    /// Replacements the optimizer made (each a patch).
    pub replacements: usize,
    pub blocks: usize,
    pub code_size: usize,
    pub clif_insts: usize,
    pub build: Duration,
    pub optimize: Duration,
    pub verify: Duration,
    pub schedule: Duration,
    pub lower: Duration,
    pub codegen: Duration,
    pub run: Duration,
    /// Exits to the interpreter taken (0 or 1 per run for a whole-program unit).
    pub exits_to_interp: u64,
    pub clif: Option<String>,
    /// Loop tests performed.
    pub steps: u64,
    /// Replacements the optimizer made in this run (each recorded as a patch).
    pub patches_recorded: usize,
    /// Patches of the loaded log that applied.
    pub patches_replayed: usize,
    /// Patches of the loaded log skipped as stale (another program or
    /// encoding, or an address missing).
    pub patches_stale: usize,
    /// Patches of the loaded log skipped as conflicting with the graph.
    pub patches_conflicting: usize,
    /// Loading, checking and replaying the patch log.
    pub replay: Duration,
    /// Recording and saving the updated patch log (when it changed).
    pub patch_log_save: Duration,
    /// Why the patch log was not (fully) used or not saved, one line each.
    pub patch_log_warnings: Vec<String>,
}

impl JitReport {
    /// Total compile time: every phase before the run.
    pub fn compile(&self) -> Duration {
        self.build
            + self.replay
            + self.optimize
            + self.patch_log_save
            + self.verify
            + self.schedule
            + self.lower
            + self.codegen
    }
}

/// A failure of the pipeline itself (never of the guest program): reported
/// as such so that it is never mistaken for a guest error.
#[derive(Debug)]
pub enum JitError {
    Run(RunError),
    Build(build::BuildError),
    Verify(String),
    Schedule(String),
    Backend(String),
    Dump(std::io::Error),
    Tape(crate::error::TapeError),
}

impl std::fmt::Display for JitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JitError::Run(e) => write!(f, "{e}"),
            JitError::Build(e) => write!(f, "internal error: {e}"),
            JitError::Verify(e) => write!(f, "internal error: graph verifier: {e}"),
            JitError::Schedule(e) => write!(f, "internal error: scheduler: {e}"),
            JitError::Backend(e) => write!(f, "internal error: backend: {e}"),
            JitError::Dump(e) => write!(f, "cannot write graph dump: {e}"),
            JitError::Tape(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for JitError {}

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
    match host_io(st, pc, "output writer", |io| io.write_byte(byte as u8)) {
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

/// A program compiled to native code, ready to run (possibly many times).
pub struct NativeProgram {
    jit: Jit,
    code: vssa_backend::CompiledCode,
    exits: Vec<usize>,
    step_limit: bool,
    tape_len: usize,
}

/// Runs the pipeline on `prog`: build, optimize, verify, schedule, lower,
/// codegen. `tape_len` and whether a step limit applies are compiled in.
pub fn compile(
    prog: &Program,
    tape_len: usize,
    cfg: &JitConfig,
    report: &mut JitReport,
) -> Result<NativeProgram, JitError> {
    let step_limit = cfg.run.max_steps.is_some();
    let t = Instant::now();
    let CompiledProgram { mut graph, exits } = build::build_program(
        prog,
        BuildOptions {
            tape_len: tape_len as u64,
            step_limit,
        },
    )
    .map_err(JitError::Build)?;
    report.build = t.elapsed();
    report.nodes_built = graph.len();
    report.build_requests = graph.build_requests();
    report.nodes_live_built = graph.live_nodes().len();
    dump(cfg, &graph, "1-built")?;

    if cfg.verify {
        let t = Instant::now();
        verify(&graph)?;
        report.verify += t.elapsed();
    }
    if cfg.optimize {
        optimize_or_replay(&mut graph, cfg, report)?;
        report.replacements = graph.replacements().len();
        dump(cfg, &graph, "2-optimized")?;
        if cfg.verify {
            let t = Instant::now();
            verify(&graph)?;
            report.verify += t.elapsed();
        }
    }
    report.nodes_after_opt = graph.live_nodes().len();

    let t = Instant::now();
    let schedule =
        vssa_schedule::schedule(&graph).map_err(|e| JitError::Schedule(e.to_string()))?;
    report.schedule = t.elapsed();
    report.blocks = schedule.blocks.len();
    if let Some(dir) = &cfg.dump_dot {
        let dot = vssa_schedule::to_dot(&graph, &schedule, "3-scheduled");
        write_dump(dir, "3-scheduled", &dot)?;
    }

    let mut jit = Jit::new(JitOptions {
        verify: cfg.verify,
        capture_clif: cfg.capture_clif,
        ..JitOptions::default()
    })
    .map_err(|e| JitError::Backend(e.to_string()))?;
    let code = jit
        .compile(&graph, &schedule, &host_table(), "bf_main")
        .map_err(|e| JitError::Backend(e.to_string()))?;
    let stats = code.stats();
    report.lower = stats.lower;
    report.codegen = stats.compile;
    report.code_size = stats.code_size;
    report.clif_insts = stats.clif_insts;
    report.clif = code.clif().map(str::to_string);
    Ok(NativeProgram {
        jit,
        code,
        exits,
        step_limit,
        tape_len,
    })
}

/// The optimize phase: replays the patch log if there is one, runs the
/// optimizer unless every patch applied, and saves the updated log.
fn optimize_or_replay(
    graph: &mut vssa::Graph,
    cfg: &JitConfig,
    report: &mut JitReport,
) -> Result<(), JitError> {
    use vssa_patch::{Log, Recorder};
    let mut recorder = None;
    let mut loaded = None;
    if let Some(path) = &cfg.patch_log {
        let t = Instant::now();
        let rec = Recorder::start(graph);
        match Log::load(path) {
            Ok(Some(log)) => {
                let r = rec.replay(graph, &log);
                report.patches_replayed = r.applied;
                report.patches_stale = r.stale;
                report.patches_conflicting = r.conflicting;
                if let Some(m) = r.mismatch {
                    report
                        .patch_log_warnings
                        .push(format!("{}: stale patch log: {m}", path.display()));
                } else if !r.complete() {
                    report.patch_log_warnings.push(format!(
                        "{}: {} stale and {} conflicting patch(es) skipped",
                        path.display(),
                        r.stale,
                        r.conflicting
                    ));
                }
                if r.complete() {
                    loaded = Some(log);
                }
            }
            Ok(None) => {}
            Err(e) => report
                .patch_log_warnings
                .push(format!("{e} (running without the patch log)")),
        }
        recorder = Some(rec);
        report.replay = t.elapsed();
    }
    if loaded.is_none() {
        let t = Instant::now();
        let before = graph.replacements().len();
        vssa::opt::optimize(graph).map_err(|e| JitError::Verify(e.to_string()))?;
        report.optimize = t.elapsed();
        report.patches_recorded = graph.replacements().len() - before;
    }
    // A complete replay with nothing new reproduces the loaded log exactly:
    // nothing to save.
    if let (Some(path), Some(rec), None) = (&cfg.patch_log, &recorder, &loaded) {
        let t = Instant::now();
        match rec.log(graph) {
            Ok(log) => {
                if let Err(e) = log.save(path) {
                    report
                        .patch_log_warnings
                        .push(format!("cannot write patch log {}: {e}", path.display()));
                }
            }
            Err(e) => report
                .patch_log_warnings
                .push(format!("patch log {} not saved: {e}", path.display())),
        }
        report.patch_log_save = t.elapsed();
    }
    Ok(())
}

fn verify(g: &vssa::Graph) -> Result<(), JitError> {
    vssa::verify::verify(g).map_err(|errs| {
        let first: Vec<String> = errs.iter().take(5).map(|e| e.to_string()).collect();
        JitError::Verify(format!("{} problem(s): {}", errs.len(), first.join("; ")))
    })
}

fn dump(cfg: &JitConfig, g: &vssa::Graph, phase: &str) -> Result<(), JitError> {
    match &cfg.dump_dot {
        Some(dir) => write_dump(dir, phase, &vssa::dot::to_dot(g, phase)),
        None => Ok(()),
    }
}

fn write_dump(dir: &std::path::Path, phase: &str, text: &str) -> Result<(), JitError> {
    std::fs::create_dir_all(dir).map_err(JitError::Dump)?;
    crate::fsutil::write_atomic(&dir.join(format!("{phase}.dot")), text.as_bytes())
        .map_err(JitError::Dump)
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
        let mut ctx = Context {
            tape: tape.as_mut_ptr(),
            fuel: opts.max_steps.unwrap_or(0),
            exit_ptr: 0,
            host: &mut host as *mut HostState as *mut c_void,
        };
        // SAFETY: the code was compiled by `self.jit` (alive: borrowed) for
        // exactly this `Context` layout and a tape of `self.tape_len` cells,
        // which `tape` has (asserted above); every access the code makes is
        // bounds-checked against that length before it happens. `ctx` and
        // the host state it points to outlive the call, and nothing else
        // touches the tape or the host state until it returns.
        let code = unsafe {
            self.jit
                .call(&self.code, &mut ctx as *mut Context as *mut u8)
        }
        .expect("code compiled by this JIT");
        let error = host.error.take();
        let result = match code {
            EXIT_DONE => Ok(InterpState {
                pc: prog.insts.len(),
                ptr: 0,
                steps: 0,
            }),
            EXIT_ERROR => Err(error.unwrap_or_else(|| {
                RunError::new(
                    RunErrorKind::Io {
                        kind: std::io::ErrorKind::Other,
                        message: "compiled code reported an error without a cause".into(),
                    },
                    None,
                )
            })),
            id => {
                let index = (id - EXIT_FIRST_RESUME) as usize;
                let pc = self.exits[index];
                let steps = opts.max_steps.map_or(0, |m| m - ctx.fuel);
                let mut state = InterpState {
                    pc,
                    ptr: ctx.exit_ptr,
                    steps,
                };
                report.exits_to_interp += 1;
                interp::run_from(prog, tape, &mut state, io, opts).map(|()| state)
            }
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
        let mut tape = Tape::new(tape_limit).map_err(JitError::Tape)?;
        let native = compile(prog, tape.len(), cfg, &mut report)?;
        let state = native.run(prog, &mut tape, io, &cfg.run, &mut report)?;
        report.steps = state.steps;
        Ok(())
    })();
    (report, result)
}
