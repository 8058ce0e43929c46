//! The tiered runtime: interpret, compile hot loops, speculate, deoptimize,
//! recompile.
//!
//! The interpreter runs the program and counts, per loop, how often its
//! body is entered ([`Profile`]). When a loop gets hot, it is compiled as a
//! *unit* ([`Unit::Loop`]) whose entry is the loop's header; from then on
//! the interpreter calls the unit every time it is about to run that
//! loop's body, and the unit returns when the loop ends (the interpreter
//! goes on after its `]`) or when a guard fails (the interpreter resumes
//! exactly where the guard's frame says).
//!
//! Speculation: an inner loop the profile never saw entered is compiled as
//! a guard (`vssa_deopt::speculate_never_taken`), not as code. When that
//! guard fails, the [`DeoptCounters`] apply the [`RecompilePolicy`]: the
//! guard is *refuted* and only its unit is recompiled, replaying the unit's
//! patch log up to the failed speculation instead of optimizing again.
//! The refutation is kept with the unit's patches in the patch-log book, so
//! a later process that loads the patch log (`--patch-log`) never
//! speculates there again, and replays every unit's optimization instead
//! of redoing it.
//!
//! Compiling is bounded twice over. A unit larger than one compilation
//! may take ([`runtime::UnitSize::fits`]: instructions, and instructions
//! weighted by loop depth) is never compiled: the interpreter runs that
//! loop, and its inner loops get units of their own. And every
//! compilation asks the [`CompileBudget`] first, which keeps compile time
//! within a share of the time the program has run: a loop it refuses now is
//! asked about again when it has gone round twice as often, and a smaller
//! loop inside the refused one may be compiled meanwhile. So a program of
//! many loops that go hot once and never again runs at about the
//! interpreter's speed instead of compiling all the time.
//!
//! Tape bounds and the step limit are guards too (never refuted: the
//! general code needs them); when one fails the interpreter reports the
//! error at the exact instruction.

use crate::build::{Unit, REASON_UNTAKEN};
use crate::error::SrcPos;
use crate::interp::{self, InterpState, Io, LoopHook};
use crate::parse::{InstKind, Program};
use crate::runtime::{
    self, call_unit, Context, Ended, HostState, JitConfig, JitError, JitReport, Speculate,
    UnitCode, UnitCompiler, UnitRequest,
};
use crate::tape::Tape;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vssa::Addr;
use vssa_deopt::{Background, CompileBudget, DeoptCounters, DeoptExit, RecompilePolicy, Verdict};
use vssa_patch::{Log, LogBook};

/// Loop-body entries after which a loop is compiled.
pub const DEFAULT_HOT_LOOP: u32 = 50;

/// How the tiered runtime runs a program.
#[derive(Clone, Debug)]
pub struct TieredConfig {
    /// The pipeline's options (and the run's: step limit, EOF).
    pub jit: JitConfig,
    /// Body entries (counted by the interpreter) that make a loop hot.
    pub hot_loop: u32,
    /// When a failing speculation is given up and its unit recompiled.
    pub policy: RecompilePolicy,
    /// Bytes of machine code the code cache keeps (0: no cache). A unit
    /// whose final graph was compiled before takes that code.
    pub code_cache_bytes: usize,
    /// How much compiling the run may do (the budget's state starts here).
    pub budget: CompileBudget,
    /// Compile on a thread of its own while the interpreter goes on
    /// (see [`vssa_deopt::Background`]), instead of stopping the program
    /// for every compilation. On by default when the machine has a core to
    /// spare; tests that count compilations turn it off, since with it
    /// *when* code arrives depends on the machine.
    pub compile_thread: bool,
}

/// Whether this machine has a core to spare for a compile thread.
pub fn spare_core() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

impl Default for TieredConfig {
    fn default() -> Self {
        TieredConfig {
            jit: JitConfig {
                optimize: true,
                ..JitConfig::default()
            },
            hot_loop: DEFAULT_HOT_LOOP,
            policy: RecompilePolicy::default(),
            code_cache_bytes: vssa_backend::cache::DEFAULT_CACHE_BYTES,
            budget: CompileBudget::default(),
            compile_thread: spare_core(),
        }
    }
}

/// One compiled loop, for `--stats -v`.
#[derive(Clone, Debug, Default)]
pub struct UnitReport {
    /// The loop's `[` and where it is in the source.
    pub open: usize,
    pub pos: Option<SrcPos>,
    /// Compilations (the first one and every recompilation).
    pub compiles: u32,
    /// Calls from the interpreter.
    pub entries: u64,
    /// Guard failures, and how many of them were speculations.
    pub deopts: u64,
    pub speculation_failures: u64,
    /// Guards in the current code, and how many are speculations.
    pub guards: usize,
    pub speculated: usize,
    /// Refuted guards (speculations given up).
    pub refuted: usize,
    /// Compile time, all compilations together.
    pub compile: Duration,
    pub code_size: usize,
}

/// Where the time went and what the tiers did.
#[derive(Clone, Debug, Default)]
pub struct TieredReport {
    /// Every compilation's phases and counts, added up.
    pub jit: JitReport,
    pub units_compiled: usize,
    pub deopts: u64,
    pub recompiles: u64,
    /// Time spent recompiling after deopts (part of the compile time).
    pub recompile: Duration,
    /// Time in the interpreter and in compiled code.
    pub interp: Duration,
    pub native: Duration,
    /// Loop tests counted (exact under a step limit).
    pub steps: u64,
    /// Compilations the budget put off, and loops too large to compile.
    pub compiles_deferred: u64,
    /// The hot threshold at the end: [`TieredConfig::hot_loop`], doubled
    /// each time compiled units kept paying back nothing.
    pub hot_loop: u32,
    pub loops_too_large: usize,
    pub units: Vec<UnitReport>,
}

impl TieredReport {
    /// Total compile time (first compilations and recompilations).
    pub fn compile(&self) -> Duration {
        self.jit.compile()
    }
}

/// What an observer of deoptimizations sees: the guard, and the
/// interpreter state and tape the run resumes from.
pub struct DeoptEvent<'a> {
    /// The `[` of the unit that deoptimized.
    pub unit: usize,
    pub exit: &'a DeoptExit,
    pub state: &'a InterpState,
    pub tape: &'a Tape,
    pub verdict: Verdict,
}

/// The interpreter's loop profile, and the loops that have code.
struct Profile {
    /// Per instruction, for the loop opened there, in one word so that the
    /// hook touches one place: body entries (low half) and the body entries
    /// at which the interpreter next stops there (high half: 0 for `hot`;
    /// [`STOP_ALWAYS`] once the loop has a unit; [`STOP_NEVER`] once it is
    /// delegated or too large; twice the entries each time the compile
    /// budget said not yet). Zero-initialised like the other tables, so a
    /// run that compiles nothing never touches their pages.
    counts: Vec<u64>,
    /// Per instruction: whether the loop opened there fits one compilation
    /// ([`FIT_UNKNOWN`] until asked: weighing a loop reads all of it).
    fit: Vec<u8>,
    /// Per instruction: 1 + the index of the loop's unit, 0 for none, or
    /// [`DELEGATED`].
    unit_of: Vec<u32>,
    hot: u32,
}

/// [`Profile::fit`]: not weighed yet, fits, too large.
const FIT_UNKNOWN: u8 = 0;
const FIT_YES: u8 = 1;
const FIT_NO: u8 = 2;

/// A hot loop that the interpreter runs for good: an enclosing loop's unit
/// was compiled instead (the interpreter runs the loop until it reaches
/// that loop's header), or the loop is too large to compile.
const DELEGATED: u32 = u32::MAX;
/// [`Profile::unit_of`]: the loop's unit is being compiled on the compile
/// thread; the interpreter runs the loop meanwhile.
const PENDING: u32 = u32::MAX - 1;

/// [`Profile::counts`]: stop at every entry (the loop has a unit to call).
const STOP_ALWAYS: u32 = 1;
/// [`Profile::counts`]: never stop (the interpreter runs the loop for good).
const STOP_NEVER: u32 = u32::MAX;

impl Profile {
    /// Body entries of the loop opened at `pc`.
    fn entered(&self, pc: usize) -> u32 {
        self.counts.get(pc).map_or(0, |&c| c as u32)
    }

    /// Sets where the interpreter next stops at the loop opened at `pc`.
    fn stop_at(&mut self, pc: usize, next: u32) {
        let c = &mut self.counts[pc];
        *c = (u64::from(next) << 32) | (*c & 0xffff_ffff);
    }
}

impl LoopHook for Profile {
    #[inline]
    fn enter_body(&mut self, open: usize) -> bool {
        let c = &mut self.counts[open];
        let n = (*c as u32).saturating_add(1);
        let next = (*c >> 32) as u32;
        *c = (u64::from(next) << 32) | u64::from(n);
        n >= if next == 0 { self.hot } else { next } && next != STOP_NEVER
    }
}

/// The loops that enclose others: per instruction, the `[` of the loop
/// around the loop opened there. Four bytes an instruction (the runtime
/// keeps a few such tables, so their width is its memory per instruction).
struct EnclosingLoops(Vec<u32>);

impl EnclosingLoops {
    /// No enclosing loop (programs have fewer than `u32::MAX` instructions:
    /// the program size bound keeps them far below).
    const NONE: u32 = u32::MAX;

    fn of(prog: &Program) -> EnclosingLoops {
        let mut parent = vec![Self::NONE; prog.insts.len()];
        let mut open: Vec<u32> = Vec::new();
        for (pc, inst) in prog.insts.iter().enumerate() {
            match inst.kind {
                InstKind::Open { .. } => {
                    parent[pc] = open.last().copied().unwrap_or(Self::NONE);
                    open.push(pc as u32);
                }
                InstKind::Close { .. } => {
                    open.pop();
                }
                _ => {}
            }
        }
        EnclosingLoops(parent)
    }

    /// The `[` of the loop around the loop opened at `pc`, if any.
    fn around(&self, pc: usize) -> Option<usize> {
        match self.0.get(pc) {
            Some(&p) if p != Self::NONE => Some(p as usize),
            _ => None,
        }
    }
}

/// A loop's unit: its code and what it did. Its patch log and refuted
/// guards are in [`Tiers::book`], under `code.key`.
struct UnitSlot {
    open: usize,
    close: usize,
    code: UnitCode,
    report: UnitReport,
    /// Compile time of this unit that its runs have not yet paid back
    /// ([`CompileBudget::repay`]).
    unpaid: Duration,
}

/// What the compile thread is asked to do.
enum Job {
    /// Compile the loop at `open`, after refuting a guard of its unit's
    /// log when recompiling.
    Compile {
        open: usize,
        never_entered: Vec<usize>,
        refute: Option<(Addr, Addr)>,
    },
    /// Write the code cache on disk ([`UnitCompiler::save_code`]): the
    /// thread's compiler holds it. Its [`Done`] has no code.
    SaveCode,
}

/// What the compile thread hands back: the code, the CPU time it took, and
/// the thread's running total of the pipeline's phases and counts.
struct Done {
    code: Option<Result<UnitCode, JitError>>,
    took: Duration,
    report: JitReport,
}

/// A compilation under way on the compile thread.
struct Pending {
    open: usize,
    /// The unit it replaces (a recompilation), or none (a first one).
    unit: Option<usize>,
    /// The budget booked for it ([`CompileBudget::reserve`]).
    reserved: Duration,
}

/// Units in a row that paid back almost nothing before the next one came,
/// after which the hot threshold doubles ([`Tiers::distrust_a_lying_profile`]).
const WASTED_STREAK: u32 = 4;
/// The highest the hot threshold goes.
const MAX_HOT_LOOP: u32 = 1 << 20;

/// How often (loop-body entries) the interpreter stops at the header of a
/// loop whose unit is being compiled, to switch to its code once it is
/// there: seldom enough to cost little, often enough to switch soon.
const POLL_ENTRIES: u32 = 16;

/// The runtime's state besides the interpreter's.
struct Tiers<'p> {
    prog: &'p Arc<Program>,
    cfg: &'p TieredConfig,
    tape_len: usize,
    /// Made at the first compilation on this thread: a run that compiles
    /// nothing does not pay for setting up the code generator.
    compiler: Option<UnitCompiler>,
    /// The compile thread (with [`TieredConfig::compile_thread`]), started
    /// at the first compilation, and what it is working on, in order.
    thread: Option<Background<Job, Done>>,
    pending: VecDeque<Pending>,
    /// [`TieredConfig::compile_thread`], off if the thread cannot start.
    use_thread: bool,
    budget: CompileBudget,
    /// Units in a row that paid back almost nothing
    /// ([`Tiers::distrust_a_lying_profile`]).
    wasted_streak: u32,
    /// An outer loop to compile once the budget allows ([`Tiers::upgrade`]).
    wanted: Option<usize>,

    profile: Profile,
    units: Vec<UnitSlot>,
    /// Every unit's patch log (loaded from the patch-log file, if any, and
    /// updated by every compilation); `dirty` once it differs from the file.
    book: LogBook,
    dirty: bool,
    /// Which loop encloses which.
    /// (Made when a loop first gets hot.)
    parent: Option<EnclosingLoops>,
    counters: DeoptCounters,
    report: TieredReport,
}

/// Compiles (or recompiles) the unit of the loop at `open`, on whichever
/// thread compiles: replaying its log from `book` if it has one, and
/// speculating that the loops in `never_entered` (sorted) are never
/// entered.
#[allow(clippy::too_many_arguments)]
fn compile_loop(
    compiler: &mut Option<UnitCompiler>,
    cfg: &TieredConfig,
    prog: &Program,
    tape_len: usize,
    open: usize,
    never_entered: &[usize],
    book: &LogBook,
    report: &mut JitReport,
) -> Result<UnitCode, JitError> {
    let name = format!("bf_loop_{open}");
    let compiler = match compiler {
        Some(c) => c,
        None => compiler.insert(UnitCompiler::new(&cfg.jit, cfg.code_cache_bytes)?),
    };
    let never = |pc: usize| never_entered.binary_search(&pc).is_ok();
    compiler.compile(
        prog,
        &UnitRequest {
            unit: Unit::Loop { open },
            tape_len,
            speculate: Some(Speculate {
                never_entered: &never,
            }),
            book,
            name: &name,
        },
        report,
    )
}

/// Records that `guard` of the unit whose program key is `key` failed for
/// good: never speculated on again, in this run and in later ones.
fn refute(book: &mut LogBook, key: Addr, guard: Addr) {
    if let Some(log) = book.unit_mut(&key) {
        log.refute(guard);
    } else {
        // Not optimizing: no log to cut, but the refutation is kept.
        let mut log = Log::new(key, Vec::new());
        log.refute(guard);
        book.insert(log);
    }
}

/// Files a unit's new log in `book`; whether that changed the book.
fn file_log(book: &mut LogBook, code: &UnitCode) -> bool {
    match &code.log {
        Some(log) if book.unit(&code.key) != Some(log) => {
            book.insert(log.clone());
            true
        }
        _ => false,
    }
}

impl Tiers<'_> {
    /// The loops inside the loop at `open` (itself included) that the
    /// profile never saw entered although the loop around each went round
    /// often: speculate only on a mature profile, where the loop around
    /// (whose every iteration tests the inner one once) went round at
    /// least a quarter of `hot` times (and twice) in the interpreter.
    fn never_entered(&mut self, open: usize) -> Vec<usize> {
        let profile = &self.profile;
        let parent = self
            .parent
            .get_or_insert_with(|| EnclosingLoops::of(self.prog));
        let mature = (profile.hot / 4).max(2);
        let close = match self.prog.insts[open].kind {
            InstKind::Open { close } => close,
            _ => open,
        };
        (open..=close)
            .filter(|&pc| {
                matches!(self.prog.insts[pc].kind, InstKind::Open { .. })
                    && profile.entered(pc) == 0
                    && parent
                        .around(pc)
                        .is_some_and(|p| profile.entered(p) >= mature)
            })
            .collect()
    }

    /// Compiles (or recompiles) the unit of the loop at `open` on this
    /// thread, and files its new log in the book.
    fn compile(&mut self, open: usize) -> Result<UnitCode, JitError> {
        let never_entered = self.never_entered(open);
        let t = Instant::now();
        let code = compile_loop(
            &mut self.compiler,
            self.cfg,
            self.prog,
            self.tape_len,
            open,
            &never_entered,
            &self.book,
            &mut self.report.jit,
        );
        self.budget.charge(
            runtime::unit_len(self.prog, Unit::Loop { open }),
            t.elapsed(),
        );
        let code = code?;
        self.dirty |= file_log(&mut self.book, &code);
        Ok(code)
    }

    /// Whether units go to the compile thread: it is on, and started (now,
    /// at the first compilation). A thread that cannot start leaves the
    /// compiling to this one.
    fn thread_ready(&mut self) -> bool {
        if !self.use_thread || self.thread.is_some() {
            return self.use_thread;
        }
        let prog = Arc::clone(self.prog);
        let cfg = self.cfg.clone();
        let tape_len = self.tape_len;
        let mut book = self.book.clone();
        let mut report = self.report.jit.clone();
        let mut compiler = None;
        let thread = Background::spawn("vssa-compile", move |job: Job| {
            // The thread's CPU time, not its wall time: on a busy machine the
            // thread waits for a core, and what the program loses is what the
            // thread runs.
            let t = Instant::now();
            let cpu = runtime::thread_cpu_time();
            let code = match job {
                Job::Compile {
                    open,
                    never_entered,
                    refute: refuted,
                } => {
                    if let Some((key, guard)) = refuted {
                        refute(&mut book, key, guard);
                    }
                    let code = compile_loop(
                        &mut compiler,
                        &cfg,
                        &prog,
                        tape_len,
                        open,
                        &never_entered,
                        &book,
                        &mut report,
                    );
                    if let Ok(c) = &code {
                        file_log(&mut book, c);
                    }
                    Some(code)
                }
                Job::SaveCode => {
                    if let Some(c) = &mut compiler {
                        c.save_code(&mut report);
                    }
                    None
                }
            };
            let took = match (cpu, runtime::thread_cpu_time()) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => t.elapsed(),
            };
            Done {
                code,
                took,
                report: report.clone(),
            }
        });
        self.thread = thread.ok();
        self.use_thread = self.thread.is_some();
        self.use_thread
    }

    /// Hands the unit of the loop at `open` to the compile thread (which
    /// must be [ready](Tiers::thread_ready)); the interpreter runs the loop
    /// until its code arrives ([`Tiers::collect`]).
    fn submit(
        &mut self,
        open: usize,
        unit: Option<usize>,
        refute: Option<(Addr, Addr)>,
    ) -> Result<(), JitError> {
        let never_entered = self.never_entered(open);
        let reserved = self
            .budget
            .reserve(runtime::unit_len(self.prog, Unit::Loop { open }));
        if let Some(thread) = &mut self.thread {
            thread.submit(Job::Compile {
                open,
                never_entered,
                refute,
            })?;
        }
        self.pending.push_back(Pending {
            open,
            unit,
            reserved,
        });
        self.profile.unit_of[open] = PENDING;
        self.poll_later(open);
        Ok(())
    }

    /// Makes the interpreter stop at the loop at `open` again a few
    /// entries from now.
    fn poll_later(&mut self, open: usize) {
        let next = self.profile.entered(open).saturating_add(POLL_ENTRIES);
        self.profile.stop_at(open, next.min(STOP_NEVER - 1));
    }

    /// Takes the compile thread's finished units and makes the
    /// interpreter call them from their loops' next entries.
    fn collect(&mut self) -> Result<(), JitError> {
        self.take_done(false)
    }

    /// [`Tiers::collect`], waiting for every unit under way if `wait`.
    fn take_done(&mut self, wait: bool) -> Result<(), JitError> {
        loop {
            let done = match &mut self.thread {
                Some(thread) if wait => thread.wait()?,
                Some(thread) => thread.poll()?,
                None => None,
            };
            let Some(done) = done else {
                return Ok(());
            };
            let Some(p) = self.pending.pop_front() else {
                return Ok(());
            };
            self.report.jit = done.report;
            let size = runtime::unit_len(self.prog, Unit::Loop { open: p.open });
            self.budget.settle(p.reserved, size, done.took);
            let Some(code) = done.code else {
                continue;
            };
            let code = code?;
            self.dirty |= file_log(&mut self.book, &code);
            match p.unit {
                None => {
                    self.install(p.open, code, done.took);
                }
                Some(i) => {
                    self.replace(i, code, done.took);
                    self.profile.unit_of[p.open] = i as u32 + 1;
                    self.profile.stop_at(p.open, STOP_ALWAYS);
                }
            }
        }
    }

    /// Has the compile thread write the code cache its compiler holds, if
    /// a patch log (beside which the cache lives) is kept, and waits for it.
    fn save_code_on_thread(&mut self) -> Result<(), JitError> {
        let Some(thread) = &mut self.thread else {
            return Ok(());
        };
        if self.cfg.jit.patch_log.is_none() || thread.in_flight() > 0 {
            return Ok(());
        }
        thread.submit(Job::SaveCode)?;
        if let Some(done) = thread.wait()? {
            self.report.jit = done.report;
        }
        Ok(())
    }

    /// Compiles the unit of the loop at `open`: now, or on the compile
    /// thread. Its index when it is ready now.
    fn start(&mut self, open: usize) -> Result<Option<usize>, JitError> {
        if self.thread_ready() {
            self.submit(open, None, None)?;
            Ok(None)
        } else {
            self.compile_new(open).map(Some)
        }
    }

    /// The unit to call at the header of the loop at `open`, compiled now
    /// if it has none; `None` when the loop was hot but a unit for an
    /// enclosing loop was compiled instead, the loop is too large to
    /// compile, its unit is being compiled on the compile thread, or the
    /// compile budget says not yet.
    ///
    /// Inner loops get hot first. Compiling each one as it does would
    /// compile every nest level again (each outer unit holds the inner
    /// loops): instead, the outermost enclosing loop that has itself gone
    /// round at least twice (so its header comes round again) is compiled,
    /// and the interpreter goes on to that header. When the budget cannot
    /// pay for that loop yet, nothing is compiled: the loop is *wanted*, and
    /// compiled as soon as the budget allows ([`Tiers::upgrade`], or the
    /// next time a loop inside it gets hot).
    fn unit_for(&mut self, open: usize) -> Result<Option<usize>, JitError> {
        self.collect()?;
        match self.profile.unit_of[open] {
            0 => {}
            DELEGATED => return Ok(None),
            PENDING => {
                self.poll_later(open);
                return Ok(None);
            }
            i => return Ok(Some(i as usize - 1)),
        }
        let prog = self.prog;
        let size = |pc: usize| runtime::unit_len(prog, Unit::Loop { open: pc });
        let fit = &mut self.profile.fit;
        let mut fits = |pc: usize| {
            if fit[pc] == FIT_UNKNOWN {
                let ok = runtime::unit_size(prog, Unit::Loop { open: pc }).fits();
                fit[pc] = if ok { FIT_YES } else { FIT_NO };
            }
            fit[pc] == FIT_YES
        };
        if !fits(open) {
            self.profile.unit_of[open] = DELEGATED;
            self.profile.stop_at(open, STOP_NEVER);
            self.report.loops_too_large += 1;
            return Ok(None);
        }
        // From `open` out to the outermost loop worth compiling.
        let mut target = open;
        let parent = self
            .parent
            .get_or_insert_with(|| EnclosingLoops::of(self.prog));
        // A loop delegated to an enclosing one is passed through (a loop too
        // large to compile is not: it fails `fits`), so that a loop deep
        // inside a unit under way waits for that unit too.
        while let Some(up) = parent.around(target) {
            if (self.profile.counts[up] as u32) < 2 || !fits(up) {
                break;
            }
            target = up;
        }
        let ran = self.report.interp + self.report.native;
        // Only the outermost loop: compiling the inner ones first instead
        // (when the budget cannot pay for it yet) was measured to cost more
        // than waiting: mandelbrot made some 200 small units, whose compile
        // time and interpreted glue made it 1.7x slower than one early unit.
        if self.profile.unit_of[target] == 0 && !self.budget.allows(size(target), ran) {
            // Not yet: ask again when the loop has gone round twice as often.
            self.wanted = Some(target);
            let next = self.profile.entered(open).saturating_mul(2);
            self.profile.stop_at(open, next.min(STOP_NEVER - 1));
            self.report.compiles_deferred += 1;
            return Ok(None);
        }
        if target != open {
            if self.profile.unit_of[target] == 0 {
                self.start(target)?;
            }
            self.profile.unit_of[open] = DELEGATED;
            self.profile.stop_at(open, STOP_NEVER);
            return Ok(None);
        }
        self.start(open)
    }

    /// Compiles the wanted loop (an outer loop the budget could not pay for
    /// when an inner one got hot) if the budget now allows. Called before
    /// every call of a unit: while inner units run, the interpreter may not
    /// stop at the outer loop's header for a long time.
    fn upgrade(&mut self) -> Result<(), JitError> {
        self.collect()?;
        let Some(open) = self.wanted else {
            return Ok(());
        };
        let ran = self.report.interp + self.report.native;
        if self.profile.unit_of[open] != 0 {
            self.wanted = None;
        } else if self
            .budget
            .allows_quietly(runtime::unit_len(self.prog, Unit::Loop { open }), ran)
        {
            self.wanted = None;
            self.start(open)?;
        }
        Ok(())
    }

    /// Compiles the first unit of the loop at `open` on this thread.
    fn compile_new(&mut self, open: usize) -> Result<usize, JitError> {
        let t = Instant::now();
        let code = self.compile(open)?;
        Ok(self.install(open, code, t.elapsed()))
    }

    /// Makes `code` the unit of the loop at `open`; its index.
    fn install(&mut self, open: usize, code: UnitCode, took: Duration) -> usize {
        self.distrust_a_lying_profile();
        let close = match self.prog.insts[open].kind {
            InstKind::Open { close } => close,
            _ => open,
        };
        let report = UnitReport {
            open,
            pos: self.prog.insts.get(open).map(|i| i.pos),
            compiles: 1,
            guards: code.exits.len(),
            speculated: count_speculative(&code),
            refuted: self.book.unit(&code.key).map_or(0, |l| l.refuted.len()),
            compile: took,
            code_size: code.code.stats().code_size,
            ..UnitReport::default()
        };
        self.units.push(UnitSlot {
            open,
            close,
            code,
            report,
            unpaid: took,
        });
        self.report.units_compiled += 1;
        self.profile.unit_of[open] = self.units.len() as u32;
        self.profile.stop_at(open, STOP_ALWAYS);
        self.units.len() - 1
    }

    /// Raises the hot threshold when the profile keeps promising work that
    /// never comes: when [`WASTED_STREAK`] units in a row had paid back less
    /// than a tenth of their compile time by the time the next one arrived,
    /// loops are going hot once and never again (the 200 000 hot-once loops
    /// of the `shapes` fuzz target), so a loop must now go round twice as
    /// often to be called hot. Units that run for a while reset the streak.
    /// An unlimited budget turns this off with the rest of the cost
    /// control: every hot loop is compiled.
    fn distrust_a_lying_profile(&mut self) {
        let Some(last) = self.units.last() else {
            return;
        };
        if self.budget.is_unlimited() {
            return;
        }
        let paid = last.report.compile.saturating_sub(last.unpaid);
        if paid * 10 >= last.report.compile {
            self.wasted_streak = 0;
            return;
        }
        self.wasted_streak += 1;
        if self.wasted_streak >= WASTED_STREAK {
            self.wasted_streak = 0;
            self.profile.hot = self.profile.hot.saturating_mul(2).min(MAX_HOT_LOOP);
            self.report.hot_loop = self.profile.hot;
        }
    }

    /// Refutes `guard` in unit `i` and recompiles the unit, replaying its
    /// patch log up to the failed speculation. On the compile thread, the
    /// interpreter runs the loop meanwhile.
    fn recompile(&mut self, i: usize, guard: Addr) -> Result<(), JitError> {
        let key = self.units[i].code.key;
        refute(&mut self.book, key, guard);
        self.dirty = true;
        let open = self.units[i].open;
        if self.thread_ready() {
            return self.submit(open, Some(i), Some((key, guard)));
        }
        let t = Instant::now();
        let code = self.compile(open)?;
        self.replace(i, code, t.elapsed());
        Ok(())
    }

    /// Makes `code`, a recompilation that took `took`, unit `i`'s code.
    fn replace(&mut self, i: usize, code: UnitCode, took: Duration) {
        let refuted = self.book.unit(&code.key).map_or(0, |l| l.refuted.len());
        let u = &mut self.units[i];
        u.report.compiles += 1;
        u.report.refuted = refuted;
        u.report.guards = code.exits.len();
        u.report.speculated = count_speculative(&code);
        u.report.code_size = code.code.stats().code_size;
        u.code = code;
        u.report.compile += took;
        u.unpaid += took;
        self.report.recompile += took;
        self.report.recompiles += 1;
    }
}

fn count_speculative(code: &UnitCode) -> usize {
    code.exits
        .exits
        .iter()
        .filter(|e| e.reason == REASON_UNTAKEN)
        .count()
}

/// Runs `prog` on a fresh tape of `tape_limit` cells with the tiered
/// runtime. The report is returned whatever happened.
pub fn run_tiered(
    prog: &Arc<Program>,
    tape_limit: usize,
    io: &mut Io<'_>,
    cfg: &TieredConfig,
) -> (TieredReport, Result<(), JitError>) {
    run_tiered_observed(prog, tape_limit, io, cfg, &mut |_| {})
}

/// [`run_tiered`], calling `observer` after every deoptimization with the
/// state the interpreter resumes from (for tests of exactness).
pub fn run_tiered_observed(
    prog: &Arc<Program>,
    tape_limit: usize,
    io: &mut Io<'_>,
    cfg: &TieredConfig,
    observer: &mut dyn FnMut(&DeoptEvent<'_>),
) -> (TieredReport, Result<(), JitError>) {
    match Tape::new(tape_limit) {
        Ok(mut tape) => run_tiered_on(prog, &mut tape, io, cfg, observer),
        Err(e) => (TieredReport::default(), Err(JitError::Tape(e))),
    }
}

/// [`run_tiered_observed`] on a tape the caller owns (normally fresh), so
/// that the final tape can be inspected.
pub fn run_tiered_on(
    prog: &Arc<Program>,
    tape: &mut Tape,
    io: &mut Io<'_>,
    cfg: &TieredConfig,
    observer: &mut dyn FnMut(&DeoptEvent<'_>),
) -> (TieredReport, Result<(), JitError>) {
    let n = prog.insts.len();
    let mut report = TieredReport {
        hot_loop: cfg.hot_loop.max(1),
        ..TieredReport::default()
    };
    let book = runtime::load_book(&cfg.jit, &mut report.jit);
    let mut tiers = Tiers {
        prog,
        cfg,
        tape_len: tape.len(),
        compiler: None,
        thread: None,
        pending: VecDeque::new(),
        use_thread: cfg.compile_thread,
        budget: cfg.budget.clone(),
        wasted_streak: 0,
        wanted: None,

        profile: Profile {
            counts: vec![0; n],
            fit: vec![FIT_UNKNOWN; n],
            unit_of: vec![0; n],
            hot: cfg.hot_loop.max(1),
        },
        units: Vec::new(),
        book,
        dirty: false,
        parent: None,
        counters: DeoptCounters::new(cfg.policy),
        report,
    };
    let mut result = run_loop(&mut tiers, tape, io, observer);
    // Keep what the compile thread finished, and abandon what it has not
    // (the program is done; it will not run that code) — unless a patch
    // log is kept: then its units are waited for, so that the log has
    // them and the next run replays them.
    if let Err(e) = tiers.take_done(cfg.jit.patch_log.is_some()) {
        result = result.and(Err(e));
    }
    // (Before anything else adds to the report: the thread's running total
    // replaces it.)
    if let Err(e) = tiers.save_code_on_thread() {
        result = result.and(Err(e));
    }
    tiers.thread = None;
    runtime::warn_replay(&cfg.jit, &mut tiers.report.jit);
    if tiers.dirty {
        runtime::save_book(&cfg.jit, &mut tiers.report.jit, &tiers.book);
    }
    if let Some(c) = &mut tiers.compiler {
        c.save_code(&mut tiers.report.jit);
    }
    let mut report = tiers.report;
    report.units = tiers.units.into_iter().map(|u| u.report).collect();
    (report, result)
}

fn run_loop(
    tiers: &mut Tiers<'_>,
    tape: &mut Tape,
    io: &mut Io<'_>,
    observer: &mut dyn FnMut(&DeoptEvent<'_>),
) -> Result<(), JitError> {
    let prog = tiers.prog;
    let opts = tiers.cfg.jit.run;
    let mut state = InterpState::default();
    loop {
        let t = Instant::now();
        let stop = interp::run_hooked(prog, tape, &mut state, io, &opts, &mut tiers.profile);
        tiers.report.interp += t.elapsed();
        tiers.report.steps = state.steps;
        let Some(open) = stop? else {
            return Ok(());
        };
        let Some(i) = tiers.unit_for(open)? else {
            continue;
        };
        tiers.upgrade()?;
        let t = Instant::now();
        let ended = {
            let mut host = HostState {
                prog,
                io: &mut *io,
                eof: opts.eof,
                error: None,
            };
            let fuel = opts.max_steps.map_or(0, |m| m.saturating_sub(state.steps));
            let host_ptr = &mut host as *mut HostState as *mut c_void;
            let mut ctx = Context::new(tape, fuel, host_ptr);
            ctx.ptr = state.ptr;
            let unit = &tiers.units[i];
            // SAFETY: the unit was compiled for this program, this tape's
            // length and this step-limit setting; `ctx` and the host state
            // outlive the call; the interpreter left the cell index on the
            // tape and the run at the loop's header.
            unsafe { call_unit(&unit.code, &mut ctx, || host.error.take(), &opts) }
        };
        let dt = t.elapsed();
        tiers.report.native += dt;
        let unit = &mut tiers.units[i];
        unit.report.entries += 1;
        // Running natively pays the unit's compile time back (see
        // `CompileBudget::repay`).
        let paid = unit.unpaid.min(dt);
        unit.unpaid -= paid;
        tiers.budget.repay(paid);
        match ended.map_err(JitError::Run)? {
            Ended::Done { ptr, fuel } => {
                state.pc = tiers.units[i].close + 1;
                state.ptr = ptr;
                if let Some(m) = opts.max_steps {
                    state.steps = m.saturating_sub(fuel);
                }
            }
            Ended::Deopt {
                state: resume,
                exit,
            } => {
                let e = tiers.units[i].code.exits.exits[exit].clone();
                let speculative = e.reason == REASON_UNTAKEN;
                let verdict = tiers.counters.record(e.guard, speculative);
                tiers.report.deopts += 1;
                let u = &mut tiers.units[i].report;
                u.deopts += 1;
                u.speculation_failures += u64::from(speculative);
                if opts.max_steps.is_none() {
                    // Compiled code does not count tests without a limit.
                    state = InterpState {
                        steps: state.steps,
                        ..resume
                    };
                } else {
                    state = resume;
                }
                observer(&DeoptEvent {
                    unit: tiers.units[i].open,
                    exit: &e,
                    state: &state,
                    tape,
                    verdict,
                });
                if verdict == Verdict::Recompile {
                    tiers.recompile(i, e.guard)?;
                }
            }
        }
    }
}
