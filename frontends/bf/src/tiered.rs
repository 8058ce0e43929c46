//! The tiered runtime: interpret, compile hot loops, speculate, deoptimize,
//! recompile. The policy — hotness, budget, compile thread, refutation —
//! is `vssa_jit::Tiers`; this module is Brainfuck's side of it: loops as
//! units, the interpreter's hook, and calling units on the tape.
//!
//! The interpreter runs the program and counts, per loop, how often its
//! body is entered (`vssa_jit::Hotness`). When a loop gets hot, it is compiled as a
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
//! may take (`vssa_jit::UnitSize::fits`: instructions, and instructions
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
use crate::interp::{self, InterpState, Io, LoopHook, RunOptions};
use crate::parse::{InstKind, Program};
use crate::runtime::{self, call_unit, BfUnits, Context, Ended, HostState, JitError};
use crate::tape::Tape;
use std::ffi::c_void;
use std::sync::Arc;
use std::time::Instant;
use vssa_deopt::{DeoptExit, Verdict};
use vssa_jit::{Hotness, Tiers, NO_ENTRY};

pub use vssa_jit::{spare_core, TieredReport, UnitReport, DEFAULT_HOT_LOOP};

/// How the tiered runtime runs a program: the tiers' options and the run's.
pub type TieredConfig = vssa_jit::TieredConfig<RunOptions>;

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

/// The interpreter counts loop-body entries in the tiers' profile.
impl LoopHook for Hotness {
    #[inline]
    fn enter_body(&mut self, open: usize) -> bool {
        self.enter(open)
    }
}

/// Brainfuck's units for tiering: loops, entered at their headers.
impl vssa_jit::TieredGuest for BfUnits<Arc<Program>> {
    fn unit_at(&self, open: usize) -> Unit {
        Unit::Loop { open }
    }

    fn unit_len(&self, open: usize) -> usize {
        runtime::unit_len(&self.prog, Unit::Loop { open })
    }

    /// Per `[`, the `[` of the loop around it. Four bytes an instruction
    /// (the runtime keeps a few such tables, so their width is its memory
    /// per instruction; programs have far fewer than `u32::MAX`).
    fn enclosing(&self) -> Vec<u32> {
        let mut parent = vec![NO_ENTRY; self.prog.insts.len()];
        let mut open: Vec<u32> = Vec::new();
        for (pc, inst) in self.prog.insts.iter().enumerate() {
            match inst.kind {
                InstKind::Open { .. } => {
                    parent[pc] = open.last().copied().unwrap_or(NO_ENTRY);
                    open.push(pc as u32);
                }
                InstKind::Close { .. } => {
                    open.pop();
                }
                _ => {}
            }
        }
        parent
    }

    fn nested(&self, open: usize) -> Vec<usize> {
        (open..=close_of(&self.prog, open))
            .filter(|&pc| matches!(self.prog.insts[pc].kind, InstKind::Open { .. }))
            .collect()
    }

    fn is_speculation(&self, exit: &DeoptExit) -> bool {
        exit.reason == REASON_UNTAKEN
    }

    fn unit_name(&self, open: usize) -> String {
        format!("bf_loop_{open}")
    }
}

/// The `]` of the loop opened at `open`.
fn close_of(prog: &Program, open: usize) -> usize {
    match prog.insts[open].kind {
        InstKind::Open { close } => close,
        _ => open,
    }
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
        Err(e) => (TieredReport::default(), Err(JitError::Setup(Box::new(e)))),
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
    let mut loaded = vssa_jit::JitReport::default();
    let book = vssa_jit::load_book(&cfg.jit, &mut loaded);
    let guest = BfUnits {
        prog: Arc::clone(prog),
        opts: runtime::build_options(tape.len(), &cfg.jit.run),
    };
    let mut tiers = Tiers::new(guest, cfg, prog.insts.len(), book);
    tiers.report.jit = loaded;
    let result = run_loop(&mut tiers, prog, cfg.jit.run, tape, io, observer);
    tiers.finish(&cfg.jit, result)
}

fn run_loop(
    tiers: &mut Tiers<BfUnits<Arc<Program>>>,
    prog: &Program,
    opts: RunOptions,
    tape: &mut Tape,
    io: &mut Io<'_>,
    observer: &mut dyn FnMut(&DeoptEvent<'_>),
) -> Result<(), JitError> {
    let mut state = InterpState::default();
    loop {
        let t = Instant::now();
        let stop = interp::run_hooked(prog, tape, &mut state, io, &opts, &mut tiers.hotness);
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
            // SAFETY: the unit was compiled for this program, this tape's
            // length and this step-limit setting; `ctx` and the host state
            // outlive the call; the interpreter left the cell index on the
            // tape and the run at the loop's header.
            unsafe { call_unit(tiers.code(i), &mut ctx, || host.error.take(), &opts) }
        };
        tiers.ran_native(i, t.elapsed());
        match ended.map_err(JitError::Run)? {
            Ended::Done { ptr, fuel } => {
                state.pc = close_of(prog, tiers.entry(i)) + 1;
                state.ptr = ptr;
                if let Some(m) = opts.max_steps {
                    state.steps = m.saturating_sub(fuel);
                }
            }
            Ended::Deopt {
                state: resume,
                exit,
            } => {
                let (e, verdict) = tiers.deoptimized(i, exit);
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
                    unit: tiers.entry(i),
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
