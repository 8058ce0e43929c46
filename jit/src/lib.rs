//! # vssa-jit: the compile pipeline any guest drives
//!
//! A language implementation (a *guest*) implements [`Guest`]: it builds a
//! unit's graph, says how large the unit is and what its source key is,
//! and names its host functions and its deopt ABI. This crate does the
//! rest, the same for every guest:
//!
//! * [`UnitCompiler::compile`]: build → verify (optional) → replay the
//!   unit's patch log (sealed) or run the middle end ([`middle_end`]:
//!   optimize, speculate, fold control) → record the log → lower guards →
//!   the code cache (in memory, then the file beside the patch log) or
//!   schedule + Cranelift.
//! * [`UnitCode::call`]: run the code and decode its return into an
//!   [`Exit`] — returned, guest error, or deoptimized at exit N with the
//!   frame's values.
//! * [`load_book`], [`save_book`]: the patch-log file across runs.
//! * [`Tiers`]: hotness counters per unit entry, the compile budget and
//!   the "lying profile" rule, the compile thread, deopt counters and
//!   recompilation after refuted speculations — the tiering policy, for a
//!   guest ([`TieredGuest`]) whose interpreter reports unit entries.
//!
//! `docs/embedding.md` walks through a small guest written against it.

mod book;
mod call;
mod error;
mod guest;
mod pipeline;
mod report;
mod tiers;

pub use book::{load_book, save_book, warn_replay};
pub use call::Exit;
pub use error::{GuestFailure, JitError};
pub use guest::{Built, Guest, Site, UnitSize, MAX_UNIT_INSTS, MAX_UNIT_WEIGHT};
pub use pipeline::{
    code_target, compile_program, middle_end, verify, UnitCode, UnitCompiler, UnitRequest,
};
pub use report::{thread_cpu_time, JitConfig, JitReport};
pub use tiers::{
    spare_core, Hotness, TieredConfig, TieredGuest, TieredReport, Tiers, UnitReport,
    DEFAULT_HOT_LOOP, NO_ENTRY,
};
