//! # vssa-deopt: deoptimization for any vssa guest
//!
//! A JIT that speculates needs a way back: when a speculation fails, the
//! compiled code must stop and hand the guest's interpreter its exact state.
//! In vssa that is two LIR nodes and this crate:
//!
//! * [`vssa::Op::Guard`] `[ctrl, cond, frame]` goes on when `cond != 0`,
//!   else deoptimizes to `frame`, a [`vssa::Op::FrameState`] `[mem, v0, v1,
//!   ...]` naming the guest's resume point and the values of its live
//!   slots. The optimizer treats guards as control, so nothing they protect
//!   moves above them; the LIR interpreter runs them (`InterpError::Deopt`).
//! * [`lower_guards`] turns every guard into plain LIR just before
//!   scheduling: a branch to an exit that stores the frame's values into the
//!   context's *deopt buffer* and returns the guard's *exit id*. The
//!   scheduler and backend need nothing special, and the [`ExitTable`] maps
//!   each exit id back to its guard and frame-state description. No stack
//!   walking, no signal handlers.
//! * [`speculate_never_taken`] is the first speculation: a branch side the
//!   profile never saw becomes a guard (an *uncommon trap*) instead of code.
//!   It is an optimization pass like any other, so its changes are patches.
//! * [`DeoptCounters`] counts failures per guard and applies the
//!   [`RecompilePolicy`]; a guard that should no longer be trusted is
//!   *refuted*: the guest records its address with the unit's patches and
//!   never speculates there again (the patch-log file format can carry
//!   refutations across processes: `vssa_patch::LogBook`).
//! * [`CompileBudget`] bounds what a tiering runtime spends compiling to a
//!   share of the time the program has run, so that no profile, however
//!   misleading, makes a program much slower than interpreting it.
//! * [`Background`] is a compile thread: a tiering runtime hands it units
//!   to compile and goes on interpreting until their code arrives.
//! * [`Guest`] is what a guest implements to turn a frame into its
//!   interpreter state.
//!
//! Pipeline position: front-end builds → optimize (patches) →
//! `speculate_never_taken` (patches) → optimize (patches) → record the log →
//! **`lower_guards`** → schedule → backend. `docs/deopt.md` describes the
//! protocol; `docs/embedding.md` walks through a guest written against
//! `vssa-jit`, the crate that drives this pipeline.

#![forbid(unsafe_code)]

mod background;
mod budget;
mod exit;
mod lower;
mod policy;
mod speculate;

pub use background::{Background, WorkerGone};
pub use budget::CompileBudget;
pub use exit::{DecodedFrame, DeoptAbi, DeoptExit, ExitTable, Frame, Guest, SlotValue};
pub use lower::{lower_guards, LowerError};
pub use policy::{DeoptCounters, RecompilePolicy, Verdict};
pub use speculate::{speculate_never_taken, BranchSite, Speculation};

#[cfg(test)]
mod tests;
