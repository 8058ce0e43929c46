//! Tiering: which units to compile and when, for a guest whose
//! interpreter reports unit entries.
//!
//! The interpreter counts, per *entry* (an instruction where a unit can
//! start: Brainfuck's loop headers), how often it is reached
//! ([`Hotness`]). When an entry gets hot, its unit is compiled — or the
//! outermost enclosing unit that itself went round, so that nests are not
//! compiled level by level — and from then on the interpreter calls it.
//!
//! Speculation: a nested entry the profile never saw reached is compiled
//! as a guard, not as code. When that guard fails, the [`DeoptCounters`]
//! apply the [`RecompilePolicy`]: the guard is *refuted* and only its unit
//! is recompiled, replaying the unit's patch log up to the failed
//! speculation. The refutation is kept with the unit's patches in the
//! book, so a later process that loads the patch log never speculates
//! there again.
//!
//! Compiling is bounded twice over. A unit larger than one compilation
//! may take ([`UnitSize::fits`](crate::UnitSize::fits)) is never compiled:
//! the interpreter runs it, and units inside it get compiled. And every
//! compilation asks the [`CompileBudget`] first, which keeps compile time
//! within a share of the time the program has run: an entry it refuses now
//! is asked about again when it has been reached twice as often. When
//! units keep paying back nothing, the hot threshold doubles (a profile
//! that lies). Units compile on a thread of their own
//! ([`Background`]) when the machine has a core to spare.

use crate::error::JitError;
use crate::guest::Guest;
use crate::pipeline::{UnitCode, UnitCompiler, UnitRequest};
use crate::report::{thread_cpu_time, JitConfig, JitReport};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use vssa::Addr;
use vssa_deopt::{Background, CompileBudget, DeoptCounters, DeoptExit, RecompilePolicy, Verdict};
use vssa_patch::{Log, LogBook};

/// Entries after which a unit is compiled.
pub const DEFAULT_HOT_LOOP: u32 = 50;

/// What a guest adds to [`Guest`] for tiering: its units named by entry.
pub trait TieredGuest: Guest + Clone + Send + 'static {
    /// The unit that starts at `entry`.
    fn unit_at(&self, entry: usize) -> Self::Unit;
    /// How many instructions the unit at `entry` spans (constant time:
    /// what the compile budget estimates by).
    fn unit_len(&self, entry: usize) -> usize;
    /// Per instruction, the entry of the unit around the unit at that
    /// entry ([`NO_ENTRY`] for none or for a non-entry). Asked once, when
    /// the first entry gets hot.
    fn enclosing(&self) -> Vec<u32>;
    /// The entries inside the unit at `entry` (itself included): where it
    /// may speculate. The sites are unit entries, labelled by their entry
    /// (`Site::label`), profiled by [`Hotness`]: an entry never reached
    /// is speculated never taken (Brainfuck's inner loops).
    fn nested(&self, entry: usize) -> Vec<usize>;
    /// Whether `exit` is a speculation (may be refuted), not a check the
    /// general code needs too.
    fn is_speculation(&self, exit: &DeoptExit) -> bool;
    /// The function name of the unit at `entry`.
    fn unit_name(&self, entry: usize) -> String;
}

/// [`TieredGuest::enclosing`]: no enclosing unit.
pub const NO_ENTRY: u32 = u32::MAX;

/// How the tiered runtime runs a program (`R`: the guest's run options).
#[derive(Clone, Debug)]
pub struct TieredConfig<R = ()> {
    /// The pipeline's options (and the run's).
    pub jit: JitConfig<R>,
    /// Entries (counted by the interpreter) that make a unit hot.
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

impl<R: Default> Default for TieredConfig<R> {
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

/// One compiled unit, for `--stats -v`.
#[derive(Clone, Debug, Default)]
pub struct UnitReport {
    /// The unit's entry (Brainfuck: its loop's `[`).
    pub open: usize,
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
    /// Time in the interpreter and in compiled code (the guest's runtime
    /// adds them up).
    pub interp: Duration,
    pub native: Duration,
    /// Steps the guest counted (Brainfuck: loop tests, exact under a
    /// step limit).
    pub steps: u64,
    /// Compilations the budget put off, and units too large to compile.
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

/// The interpreter's profile of entries, and the entries that have code:
/// what the interpreter's hook asks at every entry ([`Hotness::enter`]).
pub struct Hotness {
    /// Per instruction, for the entry there, in one word so that the hook
    /// touches one place: times reached (low half) and the count at which
    /// the interpreter next stops there (high half: 0 for `hot`;
    /// [`STOP_ALWAYS`] once the entry has a unit; [`STOP_NEVER`] once it is
    /// delegated or too large; twice the count each time the compile
    /// budget said not yet). Zero-initialised like the other tables, so a
    /// run that compiles nothing never touches their pages.
    counts: Vec<u64>,
    /// Per instruction: whether the unit at that entry fits one
    /// compilation ([`FIT_UNKNOWN`] until asked: weighing a unit reads all of it).
    fit: Vec<u8>,
    /// Per instruction: 1 + the index of the entry's unit, 0 for none, or
    /// [`DELEGATED`] / [`PENDING`].
    unit_of: Vec<u32>,
    hot: u32,
}

/// [`Hotness::fit`]: not weighed yet, fits, too large.
const FIT_UNKNOWN: u8 = 0;
const FIT_YES: u8 = 1;
const FIT_NO: u8 = 2;

/// A hot entry that the interpreter runs for good: an enclosing unit was
/// compiled instead (the interpreter runs until it reaches that unit's
/// entry), or the unit is too large to compile.
const DELEGATED: u32 = u32::MAX;
/// [`Hotness::unit_of`]: the entry's unit is being compiled on the compile
/// thread; the interpreter runs it meanwhile.
const PENDING: u32 = u32::MAX - 1;

/// [`Hotness::counts`]: stop at every entry (the entry has a unit to call).
const STOP_ALWAYS: u32 = 1;
/// [`Hotness::counts`]: never stop (the interpreter runs the unit for good).
const STOP_NEVER: u32 = u32::MAX;

impl Hotness {
    /// Counts one arrival at `entry`; whether the interpreter should stop
    /// there and ask [`Tiers::unit_for`].
    #[inline]
    pub fn enter(&mut self, entry: usize) -> bool {
        let c = &mut self.counts[entry];
        let n = (*c as u32).saturating_add(1);
        let next = (*c >> 32) as u32;
        *c = (u64::from(next) << 32) | u64::from(n);
        n >= if next == 0 { self.hot } else { next } && next != STOP_NEVER
    }

    /// Times `entry` was reached.
    fn entered(&self, entry: usize) -> u32 {
        self.counts.get(entry).map_or(0, |&c| c as u32)
    }

    /// Sets where the interpreter next stops at `entry`.
    fn stop_at(&mut self, entry: usize, next: u32) {
        let c = &mut self.counts[entry];
        *c = (u64::from(next) << 32) | (*c & 0xffff_ffff);
    }
}

/// A compiled unit: its code and what it did. Its patch log and refuted
/// guards are in [`Tiers::book`], under `code.key`.
struct UnitSlot {
    open: usize,
    code: UnitCode,
    report: UnitReport,
    /// Compile time of this unit that its runs have not yet paid back
    /// ([`CompileBudget::repay`]).
    unpaid: Duration,
}

/// What the compile thread is asked to do.
enum Job {
    /// Compile the unit at `open`, after refuting a guard of its unit's
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
struct Done<E> {
    code: Option<Result<UnitCode, JitError<E>>>,
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

/// How often (entries) the interpreter stops at the entry of a unit being
/// compiled, to switch to its code once it is there: seldom enough to cost
/// little, often enough to switch soon.
const POLL_ENTRIES: u32 = 16;

/// What the compiling side needs: on this thread, or moved to the compile
/// thread.
struct Compiling<G> {
    guest: G,
    cfg: JitConfig,
    cache_bytes: usize,
    /// Made at the first compilation: a run that compiles nothing does not
    /// pay for setting up the code generator.
    compiler: Option<UnitCompiler>,
}

type Error<G> = JitError<<G as Guest>::Error>;

impl<G: TieredGuest> Compiling<G> {
    /// Compiles (or recompiles) the unit at `open`: replaying its log from
    /// `book` if it has one, and speculating that the entries in
    /// `never_entered` (sorted) are never reached.
    fn compile(
        &mut self,
        open: usize,
        never_entered: &[usize],
        book: &LogBook,
        report: &mut JitReport,
    ) -> Result<UnitCode, Error<G>> {
        let compiler = match &mut self.compiler {
            Some(c) => c,
            None => self.compiler.insert(UnitCompiler::new(
                &self.cfg,
                self.cache_bytes,
                &self.guest.hosts(),
            )?),
        };
        let never = |pc: usize| never_entered.binary_search(&pc).is_ok();
        let name = self.guest.unit_name(open);
        let req = UnitRequest {
            unit: self.guest.unit_at(open),
            speculate: Some(&never),
            book,
            name: &name,
        };
        compiler.compile(&self.guest, &req, report)
    }
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
        Some(log) if !book.holds(log) => {
            book.insert(log.clone());
            true
        }
        _ => false,
    }
}

/// The tiering state of one run besides the interpreter's: the profile,
/// the units and their code, the book of patch logs, the budget, the
/// compile thread and the deopt counters.
pub struct Tiers<G: TieredGuest> {
    guest: G,
    /// The compiler on this thread (also when a compile thread runs: it
    /// holds the code cache written at the end).
    here: Compiling<G>,
    /// The compile thread (with [`TieredConfig::compile_thread`]), started
    /// at the first compilation, and what it is working on, in order.
    thread: Option<Background<Job, Done<G::Error>>>,
    pending: VecDeque<Pending>,
    /// [`TieredConfig::compile_thread`], off if the thread cannot start.
    use_thread: bool,
    /// Whether a patch log file is kept (then the thread's units are
    /// waited for at the end, and its code cache written).
    keep_log: bool,
    budget: CompileBudget,
    /// Units in a row that paid back almost nothing
    /// ([`Tiers::distrust_a_lying_profile`]).
    wasted_streak: u32,
    /// An outer unit to compile once the budget allows ([`Tiers::upgrade`]).
    wanted: Option<usize>,

    /// The interpreter's hook: pass it to the interpreter.
    pub hotness: Hotness,
    units: Vec<UnitSlot>,
    /// Every unit's patch log (loaded from the patch-log file, if any, and
    /// updated by every compilation); `dirty` once it differs from the file.
    book: LogBook,
    dirty: bool,
    /// Which entry encloses which (made when an entry first gets hot).
    parent: Option<Vec<u32>>,
    counters: DeoptCounters,
    /// What the tiers did; the guest adds its interpreter's figures.
    pub report: TieredReport,
}

impl<G: TieredGuest> Tiers<G> {
    /// Tiers for a program of `len` instructions, compiling with `guest`,
    /// starting from the patch-log `book`.
    pub fn new<R>(guest: G, cfg: &TieredConfig<R>, len: usize, book: LogBook) -> Tiers<G> {
        let hot = cfg.hot_loop.max(1);
        Tiers {
            here: Compiling {
                guest: guest.clone(),
                cfg: cfg.jit.pipeline(),
                cache_bytes: cfg.code_cache_bytes,
                compiler: None,
            },
            guest,
            thread: None,
            pending: VecDeque::new(),
            use_thread: cfg.compile_thread,
            keep_log: cfg.jit.patch_log.is_some(),
            budget: cfg.budget.clone(),
            wasted_streak: 0,
            wanted: None,
            hotness: Hotness {
                counts: vec![0; len],
                fit: vec![FIT_UNKNOWN; len],
                unit_of: vec![0; len],
                hot,
            },
            units: Vec::new(),
            book,
            dirty: false,
            parent: None,
            counters: DeoptCounters::new(cfg.policy),
            report: TieredReport {
                hot_loop: hot,
                ..TieredReport::default()
            },
        }
    }

    /// The code of unit `i` (an index [`Tiers::unit_for`] gave).
    pub fn code(&self, i: usize) -> &UnitCode {
        &self.units[i].code
    }

    /// The entry of unit `i`.
    pub fn entry(&self, i: usize) -> usize {
        self.units[i].open
    }

    /// The whole time the program has run, interpreted and compiled.
    fn ran(&self) -> Duration {
        self.report.interp + self.report.native
    }

    /// Counts a call of unit `i` that ran natively for `dt`: running pays
    /// the unit's compile time back (see [`CompileBudget::repay`]).
    pub fn ran_native(&mut self, i: usize, dt: Duration) {
        self.report.native += dt;
        let unit = &mut self.units[i];
        unit.report.entries += 1;
        let paid = unit.unpaid.min(dt);
        unit.unpaid -= paid;
        self.budget.repay(paid);
    }

    /// Counts a deoptimization of unit `i` at exit `index`: the exit and
    /// what the policy says to do ([`Tiers::recompile`] on
    /// [`Verdict::Recompile`]).
    pub fn deoptimized(&mut self, i: usize, index: usize) -> (DeoptExit, Verdict) {
        let e = self.units[i].code.exits.exits[index].clone();
        let speculative = self.guest.is_speculation(&e);
        let verdict = self.counters.record(e.guard, speculative);
        self.report.deopts += 1;
        tracing::debug!(
            unit = %self.guest.unit_name(self.units[i].open),
            exit = index,
            speculative,
            ?verdict,
            ran_ms = ms(self.ran()),
            "deoptimized"
        );
        let u = &mut self.units[i].report;
        u.deopts += 1;
        u.speculation_failures += u64::from(speculative);
        (e, verdict)
    }

    /// The entries inside the unit at `open` (itself included) that the
    /// profile never saw reached although the unit around each went round
    /// often: speculate only on a mature profile, where the unit around
    /// (whose every round reaches the inner entry's test once) went round
    /// at least a quarter of `hot` times (and twice) in the interpreter.
    fn never_entered(&mut self, open: usize) -> Vec<usize> {
        let hotness = &self.hotness;
        let parent = self.parent.get_or_insert_with(|| self.guest.enclosing());
        let mature = (hotness.hot / 4).max(2);
        let mut nested = self.guest.nested(open);
        nested.retain(|&pc| {
            hotness.entered(pc) == 0
                && around(parent, pc).is_some_and(|p| hotness.entered(p) >= mature)
        });
        nested
    }

    /// Compiles (or recompiles) the unit at `open` on this thread, and
    /// files its new log in the book.
    fn compile(&mut self, open: usize) -> Result<UnitCode, Error<G>> {
        let never_entered = self.never_entered(open);
        let t = Instant::now();
        let code = self
            .here
            .compile(open, &never_entered, &self.book, &mut self.report.jit);
        self.budget.charge(self.guest.unit_len(open), t.elapsed());
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
        let mut compiling = Compiling {
            guest: self.guest.clone(),
            cfg: self.here.cfg.clone(),
            cache_bytes: self.here.cache_bytes,
            compiler: None,
        };
        let mut book = self.book.clone();
        let mut report = self.report.jit.clone();
        let thread = Background::spawn("vssa-compile", move |job: Job| {
            // The thread's CPU time, not its wall time: on a busy machine the
            // thread waits for a core, and what the program loses is what the
            // thread runs.
            let t = Instant::now();
            let cpu = thread_cpu_time();
            let code = match job {
                Job::Compile {
                    open,
                    never_entered,
                    refute: refuted,
                } => {
                    if let Some((key, guard)) = refuted {
                        refute(&mut book, key, guard);
                    }
                    let code = compiling.compile(open, &never_entered, &book, &mut report);
                    if let Ok(c) = &code {
                        file_log(&mut book, c);
                    }
                    Some(code)
                }
                Job::SaveCode => {
                    if let Some(c) = &mut compiling.compiler {
                        c.save_code(&mut report);
                    }
                    None
                }
            };
            let took = match (cpu, thread_cpu_time()) {
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

    /// Hands the unit at `open` to the compile thread (which must be
    /// [ready](Tiers::thread_ready)); the interpreter runs it until its
    /// code arrives ([`Tiers::collect`]).
    fn submit(
        &mut self,
        open: usize,
        unit: Option<usize>,
        refute: Option<(Addr, Addr)>,
    ) -> Result<(), Error<G>> {
        let never_entered = self.never_entered(open);
        let reserved = self.budget.reserve(self.guest.unit_len(open));
        tracing::debug!(
            unit = %self.guest.unit_name(open),
            recompile = unit.is_some(),
            size = self.guest.unit_len(open),
            estimate_ms = ms(reserved),
            ran_ms = ms(self.ran()),
            speculated = never_entered.len(),
            "compile submitted"
        );
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
        // A recompilation leaves the unit's old code in place until the
        // new code arrives: it is still right (a refuted guard only
        // deoptimizes again), and native up to that guard is better than
        // interpreting the whole unit — which, for the outer loop of a
        // nest, is the rest of the program's run for as long as the
        // recompilation takes.
        if unit.is_none() {
            self.hotness.unit_of[open] = PENDING;
            self.poll_later(open);
        }
        Ok(())
    }

    /// Makes the interpreter stop at `open` again a few entries from now.
    fn poll_later(&mut self, open: usize) {
        let next = self.hotness.entered(open).saturating_add(POLL_ENTRIES);
        self.hotness.stop_at(open, next.min(STOP_NEVER - 1));
    }

    /// Takes the compile thread's finished units and makes the
    /// interpreter call them from their entries' next arrivals.
    fn collect(&mut self) -> Result<(), Error<G>> {
        self.take_done(false)
    }

    /// [`Tiers::collect`], waiting for every unit under way if `wait`.
    fn take_done(&mut self, wait: bool) -> Result<(), Error<G>> {
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
            let size = self.guest.unit_len(p.open);
            self.budget.settle(p.reserved, size, done.took);
            tracing::debug!(
                unit = %self.guest.unit_name(p.open),
                took_ms = ms(done.took),
                ran_ms = ms(self.ran()),
                "compile done"
            );
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
                    self.hotness.unit_of[p.open] = i as u32 + 1;
                    self.hotness.stop_at(p.open, STOP_ALWAYS);
                }
            }
        }
    }

    /// Has the compile thread write the code cache its compiler holds, if
    /// a patch log (beside which the cache lives) is kept, and waits for it.
    fn save_code_on_thread(&mut self) -> Result<(), Error<G>> {
        let Some(thread) = &mut self.thread else {
            return Ok(());
        };
        if !self.keep_log || thread.in_flight() > 0 {
            return Ok(());
        }
        thread.submit(Job::SaveCode)?;
        if let Some(done) = thread.wait()? {
            self.report.jit = done.report;
        }
        Ok(())
    }

    /// Compiles the unit at `open`: now, or on the compile thread. Its
    /// index when it is ready now.
    fn start(&mut self, open: usize) -> Result<Option<usize>, Error<G>> {
        if self.thread_ready() {
            self.submit(open, None, None)?;
            Ok(None)
        } else {
            self.compile_new(open).map(Some)
        }
    }

    /// The unit to call at `open` (where the interpreter stopped because
    /// [`Hotness::enter`] said so), compiled now if it has none; `None`
    /// when the entry was hot but a unit for an enclosing entry was
    /// compiled instead, the unit is too large to compile, it is being
    /// compiled on the compile thread, or the compile budget says not yet.
    ///
    /// Inner units get hot first. Compiling each one as it does would
    /// compile every nest level again (each outer unit holds the inner
    /// ones): instead, the outermost enclosing unit that has itself gone
    /// round at least twice (so its entry comes round again) is compiled,
    /// and the interpreter goes on to that entry. When the budget cannot
    /// pay for that unit yet, nothing is compiled: the unit is *wanted*, and
    /// compiled as soon as the budget allows ([`Tiers::upgrade`], or the
    /// next time a unit inside it gets hot).
    pub fn unit_for(&mut self, open: usize) -> Result<Option<usize>, Error<G>> {
        self.collect()?;
        match self.hotness.unit_of[open] {
            0 => {}
            DELEGATED => return Ok(None),
            PENDING => {
                self.poll_later(open);
                return Ok(None);
            }
            i => return Ok(Some(i as usize - 1)),
        }
        let guest = &self.guest;
        let fit = &mut self.hotness.fit;
        let mut fits = |pc: usize| {
            if fit[pc] == FIT_UNKNOWN {
                let ok = guest.size(guest.unit_at(pc)).fits();
                fit[pc] = if ok { FIT_YES } else { FIT_NO };
            }
            fit[pc] == FIT_YES
        };
        if !fits(open) {
            self.hotness.unit_of[open] = DELEGATED;
            self.hotness.stop_at(open, STOP_NEVER);
            self.report.loops_too_large += 1;
            return Ok(None);
        }
        // From `open` out to the outermost unit worth compiling.
        let mut target = open;
        let parent = self.parent.get_or_insert_with(|| guest.enclosing());
        // An entry delegated to an enclosing one is passed through (a unit
        // too large to compile is not: it fails `fits`), so that an entry
        // deep inside a unit under way waits for that unit too.
        while let Some(up) = around(parent, target) {
            if (self.hotness.counts[up] as u32) < 2 || !fits(up) {
                break;
            }
            target = up;
        }
        let ran = self.ran();
        // Only the outermost unit: compiling the inner ones first instead
        // (when the budget cannot pay for it yet) was measured to cost more
        // than waiting: mandelbrot made some 200 small units, whose compile
        // time and interpreted glue made it 1.7x slower than one early unit.
        if self.hotness.unit_of[target] == 0 && !self.affordable(target, ran) {
            // Not yet: ask again when the entry has come round twice as often.
            if self.wanted != Some(target) {
                tracing::debug!(
                    unit = %self.guest.unit_name(target),
                    hot = %self.guest.unit_name(open),
                    booked_ms = ms(self.budget.spent()),
                    ran_ms = ms(ran),
                    "compile deferred"
                );
            }
            self.wanted = Some(target);
            let next = self.hotness.entered(open).saturating_mul(2);
            self.hotness.stop_at(open, next.min(STOP_NEVER - 1));
            self.report.compiles_deferred += 1;
            return Ok(None);
        }
        if target != open {
            if self.hotness.unit_of[target] == 0 {
                self.start(target)?;
            }
            self.hotness.unit_of[open] = DELEGATED;
            self.hotness.stop_at(open, STOP_NEVER);
            return Ok(None);
        }
        self.start(open)
    }

    /// Whether the budget pays for compiling the unit at `open` now, after
    /// the program has run for `ran` (a refusal is counted). On the
    /// compile thread a unit also goes when nothing is unpaid
    /// ([`CompileBudget::allows_in_background`]): the program does not
    /// wait for it, so the one large unit of a program that lives in one
    /// nest is compiled as soon as it is hot.
    fn affordable(&mut self, open: usize, ran: Duration) -> bool {
        let size = self.guest.unit_len(open);
        if self.use_thread {
            let superseded = self.superseded_by(open);
            self.budget.allows_in_background(size, ran, superseded)
        } else {
            self.budget.allows(size, ran)
        }
    }

    /// [`Tiers::affordable`] without counting a refusal.
    fn affordable_quietly(&self, open: usize, ran: Duration) -> bool {
        let size = self.guest.unit_len(open);
        if self.use_thread {
            let superseded = self.superseded_by(open);
            self.budget
                .allows_in_background_quietly(size, ran, superseded)
        } else {
            self.budget.allows_quietly(size, ran)
        }
    }

    /// What is booked for first compilations under way of units nested in
    /// the unit at `open`: the unit makes them moot
    /// ([`CompileBudget::allows_in_background`]).
    fn superseded_by(&self, open: usize) -> Duration {
        let Some(parent) = self.parent.as_deref() else {
            return Duration::ZERO;
        };
        // An enclosing unit opens before the units inside it: the walk up
        // stops once it has passed `open`.
        let inside = |mut pc: usize| loop {
            match around(parent, pc) {
                Some(up) if up == open => return true,
                Some(up) if up > open => pc = up,
                _ => return false,
            }
        };
        self.pending
            .iter()
            .filter(|p| p.unit.is_none() && inside(p.open))
            .map(|p| p.reserved)
            .sum()
    }

    /// Compiles the wanted unit (an outer unit the budget could not pay for
    /// when an inner one got hot) if the budget now allows. Call it before
    /// every call of a unit: while inner units run, the interpreter may not
    /// stop at the outer unit's entry for a long time.
    pub fn upgrade(&mut self) -> Result<(), Error<G>> {
        self.collect()?;
        let Some(open) = self.wanted else {
            return Ok(());
        };
        let ran = self.ran();
        if self.hotness.unit_of[open] != 0 {
            self.wanted = None;
        } else if self.affordable_quietly(open, ran) {
            self.wanted = None;
            self.start(open)?;
        }
        Ok(())
    }

    /// Compiles the first unit at `open` on this thread.
    fn compile_new(&mut self, open: usize) -> Result<usize, Error<G>> {
        let t = Instant::now();
        let code = self.compile(open)?;
        tracing::debug!(
            unit = %self.guest.unit_name(open),
            took_ms = ms(t.elapsed()),
            ran_ms = ms(self.ran()),
            "compiled"
        );
        Ok(self.install(open, code, t.elapsed()))
    }

    /// Makes `code` the unit at `open`; its index.
    fn install(&mut self, open: usize, code: UnitCode, took: Duration) -> usize {
        self.distrust_a_lying_profile();
        let report = UnitReport {
            open,
            compiles: 1,
            guards: code.exits.len(),
            speculated: self.count_speculative(&code),
            refuted: self.book.refuted(&code.key).map_or(0, <[Addr]>::len),
            compile: took,
            code_size: code.code.stats().code_size,
            ..UnitReport::default()
        };
        self.units.push(UnitSlot {
            open,
            code,
            report,
            unpaid: took,
        });
        self.report.units_compiled += 1;
        self.hotness.unit_of[open] = self.units.len() as u32;
        self.hotness.stop_at(open, STOP_ALWAYS);
        self.units.len() - 1
    }

    /// Raises the hot threshold when the profile keeps promising work that
    /// never comes: when [`WASTED_STREAK`] units in a row had paid back less
    /// than a tenth of their compile time by the time the next one arrived,
    /// units are going hot once and never again (the 200 000 hot-once loops
    /// of the `shapes` fuzz target), so an entry must now come round twice
    /// as often to be called hot. Units that run for a while reset the
    /// streak. An unlimited budget turns this off with the rest of the cost
    /// control: every hot unit is compiled.
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
            self.hotness.hot = self.hotness.hot.saturating_mul(2).min(MAX_HOT_LOOP);
            self.report.hot_loop = self.hotness.hot;
        }
    }

    /// Refutes `guard` in unit `i` and recompiles the unit, replaying its
    /// patch log up to the failed speculation. On the compile thread, the
    /// unit's old code runs meanwhile (see [`Tiers::submit`]).
    pub fn recompile(&mut self, i: usize, guard: Addr) -> Result<(), Error<G>> {
        let key = self.units[i].code.key;
        // The old code runs while its recompilation is under way, so a
        // guard refuted already may fail again meanwhile: nothing new.
        let known = self.book.refuted(&key).is_some_and(|r| r.contains(&guard));
        if known && self.pending.iter().any(|p| p.unit == Some(i)) {
            return Ok(());
        }
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
        let refuted = self.book.refuted(&code.key).map_or(0, <[Addr]>::len);
        let speculated = self.count_speculative(&code);
        let u = &mut self.units[i];
        u.report.compiles += 1;
        u.report.refuted = refuted;
        u.report.guards = code.exits.len();
        u.report.speculated = speculated;
        u.report.code_size = code.code.stats().code_size;
        u.code = code;
        u.report.compile += took;
        u.unpaid += took;
        self.report.recompile += took;
        self.report.recompiles += 1;
    }

    fn count_speculative(&self, code: &UnitCode) -> usize {
        code.exits
            .exits
            .iter()
            .filter(|e| self.guest.is_speculation(e))
            .count()
    }

    /// Ends the run: keeps what the compile thread finished and abandons
    /// what it has not (the program is done; it will not run that code) —
    /// unless a patch log is kept: then its units are waited for, so that
    /// the log has them and the next run replays them; saves the patch log
    /// and the code cache. The report, and the first error.
    pub fn finish<R>(
        mut self,
        cfg: &JitConfig<R>,
        mut result: Result<(), Error<G>>,
    ) -> (TieredReport, Result<(), Error<G>>) {
        if let Err(e) = self.take_done(self.keep_log) {
            result = result.and(Err(e));
        }
        // (Before anything else adds to the report: the thread's running total
        // replaces it.)
        if let Err(e) = self.save_code_on_thread() {
            result = result.and(Err(e));
        }
        self.thread = None;
        crate::warn_replay(cfg, &mut self.report.jit);
        if self.dirty {
            crate::save_book(cfg, &mut self.report.jit, &self.book);
        }
        if let Some(c) = &mut self.here.compiler {
            c.save_code(&mut self.report.jit);
        }
        let mut report = self.report;
        report.units = self.units.into_iter().map(|u| u.report).collect();
        (report, result)
    }
}

/// Milliseconds, for the log.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The entry of the unit around the unit at `pc`, if any.
fn around(parent: &[u32], pc: usize) -> Option<usize> {
    match parent.get(pc) {
        Some(&p) if p != NO_ENTRY => Some(p as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hotness(len: usize, hot: u32) -> Hotness {
        Hotness {
            counts: vec![0; len],
            fit: vec![FIT_UNKNOWN; len],
            unit_of: vec![0; len],
            hot,
        }
    }

    /// An entry stops the interpreter from its `hot`-th arrival on, until
    /// told otherwise: at every arrival once it has a unit, never once it
    /// is delegated, at a given count when the budget said not yet.
    #[test]
    fn entries_stop_the_interpreter_as_their_state_says() {
        let mut h = hotness(4, 3);
        assert_eq!((h.enter(1), h.enter(1), h.enter(1)), (false, false, true));
        assert!(!h.enter(2), "counts are per entry");
        h.stop_at(1, STOP_ALWAYS);
        assert!(h.enter(1) && h.enter(1));
        h.stop_at(1, STOP_NEVER);
        assert!(!h.enter(1));
        h.stop_at(2, 10);
        assert!((2..10).all(|_| !h.enter(2)) && h.enter(2));
        assert_eq!((h.entered(1), h.entered(2), h.entered(9)), (6, 10, 0));
    }

    #[test]
    fn enclosing_entries_are_looked_up_by_instruction() {
        let parent = [NO_ENTRY, 0, NO_ENTRY, 1];
        assert_eq!(around(&parent, 0), None);
        assert_eq!(around(&parent, 1), Some(0));
        assert_eq!(around(&parent, 3), Some(1));
        assert_eq!(around(&parent, 7), None);
    }
}
