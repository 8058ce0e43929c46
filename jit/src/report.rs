//! What the pipeline is asked to do ([`JitConfig`]) and what it reports
//! ([`JitReport`]): phase times, counts, patch-log and code-cache figures.

use std::path::PathBuf;
use std::time::Duration;

/// How the pipeline compiles, and how the guest runs (`R`: the guest's
/// own run options, e.g. a step limit).
#[derive(Clone, Debug, Default)]
pub struct JitConfig<R = ()> {
    /// The guest's run options (the pipeline passes them through).
    pub run: R,
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

impl<R> JitConfig<R> {
    /// The same pipeline options without the guest's run options.
    pub fn pipeline(&self) -> JitConfig {
        JitConfig {
            run: (),
            optimize: self.optimize,
            verify: self.verify,
            dump_dot: self.dump_dot.clone(),
            capture_clif: self.capture_clif,
            patch_log: self.patch_log.clone(),
            code_store_bytes: self.code_store_bytes,
        }
    }
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
    /// Guards made by speculation (sites the profile never saw taken).
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
    /// Exits to the interpreter taken (by the guest's runtime).
    pub exits_to_interp: u64,
    pub clif: Option<String>,
    /// Steps the guest counted (Brainfuck: loop tests).
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
    /// start-up, reading and parsing the program, and compiling (set by
    /// a guest that compiles before running; see [`thread_cpu_time`]). Unlike the phase times it
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
pub(crate) struct CpuSpan(Option<Duration>);

impl CpuSpan {
    pub(crate) fn start() -> CpuSpan {
        CpuSpan(thread_cpu_time())
    }

    pub(crate) fn end(self) -> Duration {
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
