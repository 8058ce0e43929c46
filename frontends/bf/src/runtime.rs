//! The JIT runtime: compiles a whole program through the vssa pipeline and
//! runs it on the interpreter's tape, handing over to the interpreter when
//! the compiled code exits early.
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
use std::collections::BTreeSet;
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vssa::{Addr, Type};
use vssa_backend::{CodeCache, CodeStore, HostFn, Jit, JitOptions, OwnedCode};
use vssa_deopt::{DeoptAbi, ExitTable, Frame, Guest};
use vssa_patch::fsutil::ReadFrom;
use vssa_patch::{Log, LogBook, SealKey, SealState};

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
    /// With a patch log: the bound, in bytes, of the persistent code cache
    /// kept beside it (`FILE.code`, see `vssa_backend::stored`), from
    /// which a later run places unchanged units' machine code instead of
    /// generating it; 0: no code cache on disk.
    pub code_store_bytes: u64,
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
    /// Guards in the compiled code (each an exit to the interpreter).
    pub guards: usize,
    /// Guards made by speculation (loops never entered while profiling).
    pub speculated: usize,
    /// Patches not replayed because they follow a refuted speculation.
    pub patches_refuted: usize,
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
    /// Patches in the logs recorded by the compilations that ran the
    /// optimizer (a log holds the net effect of the optimizer's
    /// replacements: see `vssa_patch::net`). 0 when every unit replayed its
    /// log in full.
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
    /// Whether the patch log read carried this user's seal (only a sealed
    /// log is replayed); `None` when no log file was read.
    pub patch_log_sealed: Option<bool>,
    /// Units whose machine code came from the code cache (their final
    /// graph had been compiled before): scheduling and codegen skipped.
    pub code_cache_hits: usize,
    /// Computing units' code-cache keys.
    pub code_key: Duration,
    /// The persistent code cache (`JitConfig::code_store_bytes`): units
    /// whose code was placed from the file, units it did not have, and
    /// entries it had but failed their seal, target or image check.
    pub code_cache_loads: u64,
    pub code_cache_misses: u64,
    pub code_cache_rejected: u64,
    /// Reading the code-cache file and placing code from it.
    pub code_cache_load: Duration,
    /// Writing the code-cache file (when it changed).
    pub code_cache_save: Duration,
    /// Units placed from the code-cache file by a unit entry, without
    /// building their graph (see `place_direct`).
    pub code_cache_direct: u64,
    /// CPU time this thread (the program's) had used from its start to
    /// just before the compiled program's first instruction: process
    /// start-up, reading and parsing the program, and compiling (the
    /// `jit` engine; see [`thread_cpu_time`]). Unlike the phase times it
    /// does not grow when other processes take the CPU.
    pub cpu_before_run: Option<Duration>,
    /// [`JitReport::replay`] and [`JitReport::optimize`] as CPU time of
    /// the compiling thread: what they cost whatever else the machine
    /// runs.
    pub replay_cpu: Duration,
    pub optimize_cpu: Duration,
}

/// CPU time of the calling thread over a span of code (zero where the
/// clock is unavailable).
struct CpuSpan(Option<Duration>);

impl CpuSpan {
    fn start() -> CpuSpan {
        CpuSpan(thread_cpu_time())
    }

    fn end(self) -> Duration {
        match (self.0, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        }
    }
}

/// The CPU time the calling thread has used since it started
/// (`CLOCK_THREAD_CPUTIME_ID`: exact, unlike `/proc`'s figures, which
/// lag by up to a scheduler tick); `None` if the clock is unavailable.
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: FFI call with a valid pointer to a `timespec` we own; the
    // clock id is a constant the C library defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

impl JitReport {
    /// Total compile time: every phase before the run.
    pub fn compile(&self) -> Duration {
        self.build
            + self.replay
            + self.optimize
            + self.patch_log_save
            + self.verify
            + self.code_key
            + self.code_cache_load
            + self.code_cache_save
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
    /// The optimizer or the speculation pass failed on the graph.
    Optimize(vssa::GraphError),
    /// The verifier found the graph malformed (`--verify`).
    Verify(vssa::VerifyErrors),
    /// Guards could not be lowered to exits.
    LowerGuards(vssa_deopt::LowerError),
    Schedule(vssa_schedule::ScheduleError),
    Backend(vssa_backend::BackendError),
    Dump(std::io::Error),
    Tape(crate::error::TapeError),
    /// The unit is larger than one compilation may be ([`UnitSize::fits`]):
    /// compiling it would take too long or too much memory. Not a failure
    /// of the program: run it in the interpreter, or compile its loops as
    /// units of their own.
    TooLarge(UnitSize),
    /// The compile thread stopped (a compilation panicked).
    CompileThread(vssa_deopt::WorkerGone),
}

/// The most instructions one unit may have. Compile time and memory grow
/// with a unit's size (about 5–30 µs and 5–12 KB per instruction,
/// measured on the corpus); this keeps one compilation under about a
/// second and a few hundred megabytes.
pub const MAX_UNIT_INSTS: usize = 32_768;

/// The largest [`UnitSize::weight`] one unit may have. Cranelift's egraph
/// pass walks every value's loop nest, so its time grows with
/// instructions × nesting depth: 800 nested loops (1 602 instructions)
/// took 0.7 s, 1 000 took 1 s. The corpus's largest unit weighs about
/// 90 000 (hanoi); 2^18 keeps a deep nest under about 0.2 s.
pub const MAX_UNIT_WEIGHT: usize = 1 << 18;

/// How large a unit is, for the bounds on what one compilation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitSize {
    /// Instructions from the unit's first to its last.
    pub insts: usize,
    /// The sum over its instructions of 1 + how many of the unit's loops
    /// enclose it; computed only when `insts` is within bounds (else 0).
    pub weight: usize,
}

impl UnitSize {
    /// Whether one compilation may take this unit.
    pub fn fits(&self) -> bool {
        self.insts <= MAX_UNIT_INSTS && self.weight <= MAX_UNIT_WEIGHT
    }
}

impl std::fmt::Display for JitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JitError::Run(e) => write!(f, "{e}"),
            JitError::Build(e) => write!(f, "internal error: {e}"),
            JitError::Optimize(e) => write!(f, "internal error: optimizer: {e}"),
            JitError::Verify(e) => write!(f, "internal error: graph verifier: {e}"),
            JitError::LowerGuards(e) => write!(f, "internal error: guard lowering: {e}"),
            JitError::Schedule(e) => write!(f, "internal error: scheduler: {e}"),
            JitError::Backend(e) => write!(f, "internal error: backend: {e}"),
            JitError::Dump(e) => write!(f, "cannot write graph dump: {e}"),
            JitError::Tape(e) => write!(f, "{e}"),
            JitError::TooLarge(size) => write!(
                f,
                "a unit of {} instructions (nesting weight {}) is larger than one compilation \
                 takes (at most {MAX_UNIT_INSTS} instructions and weight {MAX_UNIT_WEIGHT})",
                size.insts, size.weight
            ),
            JitError::CompileThread(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for JitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JitError::Run(e) => Some(e),
            JitError::Build(e) => Some(e),
            JitError::Optimize(e) => Some(e),
            JitError::Verify(e) => Some(e),
            JitError::LowerGuards(e) => Some(e),
            JitError::Schedule(e) => Some(e),
            JitError::Backend(e) => Some(e),
            JitError::Dump(e) => Some(e),
            JitError::Tape(e) => Some(e),
            JitError::TooLarge(_) => None,
            JitError::CompileThread(e) => Some(e),
        }
    }
}

impl From<vssa_deopt::WorkerGone> for JitError {
    fn from(e: vssa_deopt::WorkerGone) -> Self {
        JitError::CompileThread(e)
    }
}

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

/// A compiled unit.
pub struct UnitCode {
    /// The machine code, shared with the code cache (freed when neither
    /// holds it any more).
    pub code: Arc<OwnedCode>,
    pub exits: ExitTable,
    /// The content key of the final graph ([`vssa::live_graph_key`]):
    /// its key in the code cache.
    pub code_key: Addr,
    /// Whether the code came from the cache.
    pub cached: bool,
    /// The program key of the unit's built graph: its key in the [`LogBook`].
    pub key: Addr,
    /// What the optimizer and speculation did, as patches, with the
    /// refuted guards (when optimizing).
    pub log: Option<Log>,
}

/// Compiles units: the pipeline's options, the JIT, and the code cache
/// that lets a recompilation skip code generation for every unit whose
/// final graph it has compiled before.
pub struct UnitCompiler {
    jit: Jit,
    cfg: JitConfig,
    /// Machine code by final-graph key ([`UnitCode::code_key`]).
    pub cache: CodeCache,
    /// The code cache on disk beside the patch log, if configured: asked
    /// after `cache`, written by [`UnitCompiler::save_code`].
    store: Option<CodeStore>,
}

impl UnitCompiler {
    /// A compiler for `cfg` whose code cache keeps up to `cache_bytes` of
    /// machine code (0: no cache).
    pub fn new(cfg: &JitConfig, cache_bytes: usize) -> Result<UnitCompiler, JitError> {
        let jit = new_jit(cfg)?;
        let store = cfg
            .patch_log
            .as_ref()
            .filter(|_| cfg.optimize && cfg.code_store_bytes > 0)
            // Dumps show what code generation did: compile every unit.
            .filter(|_| !cfg.capture_clif && cfg.dump_dot.is_none())
            .filter(|log| may_keep_code_beside(log))
            .map(|log| {
                let key = SealKey::existing().ok().flatten();
                let path = vssa_backend::stored::path_beside(log);
                CodeStore::open(
                    &path,
                    jit.target_id(&host_table()),
                    cfg.code_store_bytes,
                    key,
                )
            });
        Ok(UnitCompiler {
            jit,
            cfg: cfg.clone(),
            cache: CodeCache::new(cache_bytes),
            store,
        })
    }

    /// Writes the code cache on disk if it changed, and adds what it did
    /// (loads, misses, times, warnings) to `report`.
    pub fn save_code(&mut self, report: &mut JitReport) {
        let Some(store) = &mut self.store else {
            return;
        };
        if store.is_dirty() {
            match SealKey::user() {
                Ok(key) => store.save(&key),
                Err(e) => report.patch_log_warnings.push(format!(
                    "cannot seal code cache {}: {e}",
                    store.path().display()
                )),
            }
        }
        let stats = store.stats();
        report.code_cache_loads = stats.loads;
        report.code_cache_misses = stats.misses;
        report.code_cache_rejected = stats.rejected;
        report.code_cache_load = stats.load_time;
        report.code_cache_save = stats.save_time;
        report.patch_log_warnings.extend(store.take_warnings());
    }

    pub fn config(&self) -> &JitConfig {
        &self.cfg
    }

    /// The pipeline for one unit: build, verify, replay or optimize (and
    /// speculate), record, lower guards, then the code cache or schedule
    /// and codegen. Phase times and counts add up in `report`.
    ///
    /// A patch log can only be checked patch by patch: a log edited on
    /// purpose (its checksum recomputed) may hold patches that each look
    /// valid yet leave a graph the scheduler or the backend rejects. If a
    /// unit whose log was replayed fails to compile, it is compiled again
    /// without the log, with a warning, so a bad log never stops a program.
    pub fn compile(
        &mut self,
        prog: &Program,
        req: &UnitRequest<'_>,
        report: &mut JitReport,
    ) -> Result<UnitCode, JitError> {
        let size = unit_size(prog, req.unit);
        if !size.fits() {
            return Err(JitError::TooLarge(size));
        }
        let replayed_before = report.patches_replayed;
        match compile_unit_once(self, prog, req, report) {
            Err(
                e @ (JitError::Optimize(_)
                | JitError::Verify(_)
                | JitError::LowerGuards(_)
                | JitError::Schedule(_)
                | JitError::Backend(_)),
            ) if report.patches_replayed > replayed_before => {
                report.patch_log_warnings.push(format!(
                    "unit {}: the replayed patch log left a graph that does not compile ({e}); \
                     compiled without it",
                    req.name
                ));
                let empty = LogBook::new();
                let without = UnitRequest {
                    book: &empty,
                    ..*req
                };
                compile_unit_once(self, prog, &without, report)
            }
            other => other,
        }
    }
}

fn compile_unit_once(
    uc: &mut UnitCompiler,
    prog: &Program,
    req: &UnitRequest<'_>,
    report: &mut JitReport,
) -> Result<UnitCode, JitError> {
    let opts = BuildOptions {
        tape_len: req.tape_len as u64,
        step_limit: uc.cfg.run.max_steps.is_some(),
        tape_guard: crate::tape::GUARD_CELLS as u64,
    };
    // Without speculation a unit's source decides its code: a unit entry
    // of the code cache file may then give the code without building.
    let direct = (uc.store.is_some() && uc.cfg.optimize && req.speculate.is_none())
        .then(|| unit_source_key(prog, req.unit, &opts));
    if let Some(source) = direct {
        if let Some(code) = place_direct(uc, source, req, report) {
            return Ok(code);
        }
    }
    let unit = compile_unit_built(uc, prog, req, opts, report)?;
    if let (Some(source), Some(store)) = (direct, &mut uc.store) {
        // Only a unit whose log has no refuted guards: its graph is then
        // what its source and the optimizer make (a log replayed in full
        // gives the graph optimizing gives).
        if req
            .book
            .unit(&unit.key)
            .is_none_or(|l| l.refuted.is_empty())
        {
            let mut data = unit.key.0.to_vec();
            unit.exits.encode(&mut data);
            store.put_unit(source, unit.code_key, data);
        }
    }
    Ok(unit)
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

/// The unit's code placed from a unit entry of the code cache file,
/// without building its graph; `None` (the unit is then built as usual)
/// if there is no such entry, its data does not decode, the code is not
/// there, or the patch log has no unit for it (the code is used only
/// beside the log it was compiled with).
fn place_direct(
    uc: &mut UnitCompiler,
    source: Addr,
    req: &UnitRequest<'_>,
    report: &mut JitReport,
) -> Option<UnitCode> {
    let store = uc.store.as_mut()?;
    let (code_key, data) = store.get_unit(&source)?;
    let key = Addr(data.get(..16)?.try_into().ok()?);
    let exits = ExitTable::decode(&data[16..])?;
    req.book.unit(&key)?;
    let code = match uc.cache.get(&code_key) {
        Some(c) => c,
        None => {
            let c = Arc::new(store.load(&code_key, &mut uc.jit, &host_table(), req.name)?);
            uc.cache.insert(code_key, Arc::clone(&c));
            c
        }
    };
    report.code_cache_hits += 1;
    report.code_cache_direct += 1;
    report.code_size += code.stats().code_size;
    report.guards += exits.len();
    Some(UnitCode {
        code,
        exits,
        code_key,
        cached: true,
        key,
        log: None,
    })
}

/// The pipeline for one unit from its source: build, replay or optimize,
/// lower guards, then the code caches or schedule and codegen.
fn compile_unit_built(
    uc: &mut UnitCompiler,
    prog: &Program,
    req: &UnitRequest<'_>,
    opts: BuildOptions,
    report: &mut JitReport,
) -> Result<UnitCode, JitError> {
    let cfg = &uc.cfg;
    let t = Instant::now();
    let CompiledProgram {
        mut graph,
        ctx,
        sites,
    } = build::build_unit(prog, req.unit, opts).map_err(JitError::Build)?;
    report.build += t.elapsed();
    report.nodes_built += graph.len();
    report.build_requests += graph.build_requests();
    report.nodes_live_built += graph.live_nodes().len();
    dump(cfg, &graph, req.name, "1-built")?;
    if cfg.verify {
        let t = Instant::now();
        verify(&graph)?;
        report.verify += t.elapsed();
    }
    let mut log = None;
    let rec = vssa_patch::Recorder::start(&graph);
    let key = rec.program();
    if cfg.optimize {
        let prior = req.book.unit(&key);
        let refuted: BTreeSet<Addr> =
            prior.map_or_else(BTreeSet::new, |l| l.refuted.iter().copied().collect());
        let mut replayed_all = false;
        if let Some(prior) = prior {
            let t = Instant::now();
            let cpu = CpuSpan::start();
            let r = rec.replay(&mut graph, prior);
            report.patches_replayed += r.applied;
            report.patches_stale += r.stale;
            report.patches_conflicting += r.conflicting;
            report.patches_refuted += r.refuted;
            // An optimizing run that recorded nothing leaves an empty log:
            // replaying it is complete. An empty log with refutations was
            // not recorded that way (a refuted guard was built by a
            // recorded patch), so it proves nothing: the optimizer looks.
            replayed_all = r.complete() && (!prior.patches.is_empty() || prior.refuted.is_empty());
            report.replay += t.elapsed();
            report.replay_cpu += cpu.end();
        }
        if !replayed_all {
            let t = Instant::now();
            let cpu = CpuSpan::start();
            let mut speculate = |g: &mut vssa::Graph| match &req.speculate {
                Some(spec) => {
                    let all: Vec<_> = sites.iter().map(|s| s.site).collect();
                    let chosen = |k: usize| (spec.never_entered)(sites[k].open);
                    let done = vssa_deopt::speculate_never_taken(g, &all, &chosen, &refuted)?;
                    Ok(done.guards.len())
                }
                None => Ok(0),
            };
            // The builder still knows what facts from branches would find.
            let passes = vssa::PassConfig {
                branch_facts: false,
            };
            report.speculated += vssa::standard(&mut graph, passes, &mut speculate)
                .map_err(JitError::Optimize)?
                .speculated;
            report.optimize += t.elapsed();
            report.optimize_cpu += cpu.end();
        }
        report.replacements += graph.replacements().len();
        dump(cfg, &graph, req.name, "2-optimized")?;
        if cfg.verify {
            let t = Instant::now();
            verify(&graph)?;
            report.verify += t.elapsed();
        }
        let t = Instant::now();
        match rec.log(&graph) {
            Ok(mut l) => {
                if !replayed_all {
                    report.patches_recorded += l.patches.len();
                }
                for &g in &refuted {
                    l.refute(g);
                }
                log = Some(l);
            }
            Err(e) => report
                .patch_log_warnings
                .push(format!("unit {}: patches not recorded: {e}", req.name)),
        }
        report.patch_log_save += t.elapsed();
    }
    report.nodes_after_opt += graph.live_nodes().len();

    let t = Instant::now();
    let exits = vssa_deopt::lower_guards(
        &mut graph,
        &DeoptAbi {
            ctx,
            buffer_offset: build::ctx_offset::DEOPT,
            capacity: DEOPT_SLOTS,
            first_exit: EXIT_FIRST_DEOPT as i64,
            exit_type: Type::I32,
        },
    )
    .map_err(JitError::LowerGuards)?;
    report.guards += exits.len();
    report.schedule += t.elapsed();
    let t = Instant::now();
    let code_key = vssa::live_graph_key(&graph);
    let mut cached = uc.cache.get(&code_key);
    report.code_key += t.elapsed();
    if cached.is_none() {
        if let Some(store) = &mut uc.store {
            cached = store
                .load(&code_key, &mut uc.jit, &host_table(), req.name)
                .map(Arc::new);
            if let Some(code) = &cached {
                uc.cache.insert(code_key, Arc::clone(code));
            }
        }
    }
    if let Some(code) = cached {
        report.code_cache_hits += 1;
        report.code_size += code.stats().code_size;
        return Ok(UnitCode {
            code,
            exits,
            code_key,
            cached: true,
            key,
            log,
        });
    }
    let t = Instant::now();
    let schedule = vssa_schedule::schedule(&graph).map_err(JitError::Schedule)?;
    report.schedule += t.elapsed();
    report.blocks += schedule.blocks.len();
    if let Some(dir) = &cfg.dump_dot {
        let phase = dump_label(req.name, "3-scheduled");
        let dot = vssa_schedule::to_dot(&graph, &schedule, &phase);
        write_dump(dir, &phase, &dot)?;
    }
    let code = uc
        .jit
        .compile_owned(&graph, &schedule, &host_table(), req.name)
        .map_err(JitError::Backend)?;
    let stats = code.stats();
    report.lower += stats.lower;
    report.codegen += stats.compile;
    report.code_size += stats.code_size;
    report.clif_insts += stats.clif_insts;
    if let Some(c) = code.clif() {
        report.clif.get_or_insert_with(String::new).push_str(c);
    }
    if let Some(store) = &mut uc.store {
        store.put(code_key, code.image());
    }
    let code = Arc::new(code);
    uc.cache.insert(code_key, Arc::clone(&code));
    Ok(UnitCode {
        code,
        exits,
        code_key,
        cached: false,
        key,
        log,
    })
}

/// The target id ([`Jit::target_id`]) of the code this runtime compiles
/// for `cfg`: which entries of a code cache it can use.
pub fn code_target(cfg: &JitConfig) -> Result<[u8; 32], JitError> {
    Ok(new_jit(cfg)?.target_id(&host_table()))
}

/// Whether the patch log at `path` may have a code cache beside it:
/// absent, or a regular writable file that is empty or a patch log.
/// Whatever the driver leaves alone as a log — a link, a directory, a
/// device, a read-only log, any other file — gets no code cache file next
/// to it either (`--patch-log /dev/null` must not make `/dev/null.code`).
fn may_keep_code_beside(path: &std::path::Path) -> bool {
    use std::io::Read;
    const MAGIC: &[u8] = b"vssa-patch-log ";
    match std::fs::symlink_metadata(path) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(m) if !m.file_type().is_file() || m.permissions().readonly() => false,
        Ok(_) => {
            let mut head = Vec::with_capacity(MAGIC.len());
            let read = std::fs::File::open(path)
                .and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut head));
            read.is_ok() && (head.starts_with(MAGIC) || MAGIC.starts_with(&head))
        }
    }
}

/// A JIT for the runtime's options.
pub(crate) fn new_jit(cfg: &JitConfig) -> Result<Jit, JitError> {
    Jit::new(JitOptions {
        verify: cfg.verify,
        capture_clif: cfg.capture_clif,
        ..JitOptions::default()
    })
    .map_err(JitError::Backend)
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
    // SAFETY: the caller's contract: the code (alive: `unit` holds it) was
    // compiled for this context layout and tape length; every tape access
    // it makes is bounds-checked against that length first.
    let code = unsafe { unit.code.call(ctx as *mut Context as *mut u8) };
    match code {
        EXIT_DONE => Ok(Ended::Done {
            ptr: ctx.ptr,
            fuel: ctx.fuel,
        }),
        EXIT_ERROR => Err(host_error().unwrap_or_else(|| {
            RunError::new(
                RunErrorKind::Io {
                    kind: std::io::ErrorKind::Other,
                    message: "compiled code reported an error without a cause".into(),
                },
                None,
            )
        })),
        id => {
            let Some(exit) = unit.exits.exit(i64::from(id)) else {
                return Err(RunError::new(
                    RunErrorKind::Io {
                        kind: std::io::ErrorKind::Other,
                        message: format!(
                            "internal error: compiled code returned unknown exit {id}"
                        ),
                    },
                    None,
                ));
            };
            let frame = unit.exits.frame(exit, &ctx.deopt);
            let guest = BfGuest {
                max_steps: opts.max_steps,
            };
            Ok(Ended::Deopt {
                state: guest.resume_state(&frame)?,
                exit: (id - EXIT_FIRST_DEOPT) as usize,
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
        let pc = usize::try_from(frame.exit.resume).map_err(|_| bad("resumes nowhere"))?;
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
    // One unit, compiled once: nothing to cache.
    let mut compiler = UnitCompiler::new(cfg, 0)?;
    let mut book = load_book(cfg, report);
    let unit = compiler.compile(
        prog,
        &UnitRequest {
            unit: Unit::Program,
            tape_len,
            speculate: None,
            book: &book,
            name: "bf_main",
        },
        report,
    )?;
    warn_replay(cfg, report);
    compiler.save_code(report);
    if !book.is_empty() && book.unit(&unit.key).is_none() {
        // The whole program is one unit: a book without it was recorded
        // for another program (or another build of this one).
        if let Some(path) = &cfg.patch_log {
            report.patch_log_warnings.push(format!(
                "{}: stale patch log: it has no unit for this program",
                path.display()
            ));
        }
        book = LogBook::new();
    }
    if let Some(log) = &unit.log {
        if book.unit(&unit.key) != Some(log) {
            book.insert(log.clone());
            save_book(cfg, report, &book);
        }
    }
    Ok(NativeProgram {
        unit,
        step_limit: cfg.run.max_steps.is_some(),
        tape_len,
    })
}

/// Loads the patch-log file named by the configuration, if any; problems
/// become warnings (the program runs without the log). Empty otherwise.
///
/// Only a log sealed under this user's key is returned: a log that is not
/// (the text form, another user's or machine's, or edited) could say
/// anything its writer liked, and replay proves only that its nodes are
/// well formed, not that its rewrites are sound — so it is not replayed
/// at all, the optimizer runs instead, and the save replaces it with a
/// sealed log. See `docs/patch-log.md`, "Trust".
pub(crate) fn load_book(cfg: &JitConfig, report: &mut JitReport) -> LogBook {
    let Some(path) = cfg.patch_log.as_ref().filter(|_| cfg.optimize) else {
        return LogBook::new();
    };
    // Leftovers of writers killed during a save (file upkeep: counted
    // with saving, not replay).
    let t = Instant::now();
    vssa_patch::fsutil::remove_stale_temporaries(path);
    report.patch_log_save += t.elapsed();
    let t = Instant::now();
    let cpu = CpuSpan::start();
    let key = SealKey::existing().unwrap_or_else(|e| {
        report.patch_log_warnings.push(format!("{e}"));
        None
    });
    let book = match LogBook::load_keyed(path, ReadFrom::RegularFile, key.as_ref()) {
        Ok(None) => LogBook::new(),
        Ok(Some((book, SealState::Verified))) => {
            report.patch_log_sealed = Some(true);
            book
        }
        Ok(Some((book, _))) => {
            report.patch_log_sealed = Some(false);
            if !book.is_empty() {
                report.patch_log_warnings.push(format!(
                    "{}: not sealed by this user (text form, written elsewhere, or edited): \
                     not replayed, optimizing instead",
                    path.display()
                ));
            }
            LogBook::new()
        }
        Err(e) => {
            report.patch_log_sealed = Some(false);
            report
                .patch_log_warnings
                .push(format!("{e} (running without the patch log)"));
            LogBook::new()
        }
    };
    report.replay += t.elapsed();
    report.replay_cpu += cpu.end();
    book
}

/// Warns about patches from the patch-log file that could not be replayed.
pub(crate) fn warn_replay(cfg: &JitConfig, report: &mut JitReport) {
    let Some(path) = &cfg.patch_log else {
        return;
    };
    if report.patches_stale + report.patches_conflicting > 0 {
        report.patch_log_warnings.push(format!(
            "{}: {} stale and {} conflicting patch(es) skipped",
            path.display(),
            report.patches_stale,
            report.patches_conflicting
        ));
    }
}

/// Saves `book` to the configured patch-log file (atomically).
pub(crate) fn save_book(cfg: &JitConfig, report: &mut JitReport, book: &LogBook) {
    let Some(path) = cfg.patch_log.as_ref().filter(|_| cfg.optimize) else {
        return;
    };
    let t = Instant::now();
    let key = SealKey::user()
        .map_err(|e| {
            report
                .patch_log_warnings
                .push(format!("cannot seal patch log {}: {e}", path.display()))
        })
        .ok();
    if let Err(e) = book.save(path, key.as_ref()) {
        report
            .patch_log_warnings
            .push(format!("cannot write patch log {}: {e}", path.display()));
    }
    report.patch_log_save += t.elapsed();
}

fn verify(g: &vssa::Graph) -> Result<(), JitError> {
    vssa::verify::verify(g).map_err(|errs| JitError::Verify(errs.into()))
}

/// The dump file name of `phase` of unit `name` (the whole program's
/// dumps keep the bare phase name).
fn dump_label(name: &str, phase: &str) -> String {
    if name == "bf_main" {
        phase.to_string()
    } else {
        format!("{name}-{phase}")
    }
}

fn dump(cfg: &JitConfig, g: &vssa::Graph, name: &str, phase: &str) -> Result<(), JitError> {
    match &cfg.dump_dot {
        Some(dir) => {
            let label = dump_label(name, phase);
            write_dump(dir, &label, &vssa::dot::to_dot(g, &label))
        }
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
        let mut tape = Tape::new(tape_limit).map_err(JitError::Tape)?;
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
        let e = verify(&g).unwrap_err();
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
