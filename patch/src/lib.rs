//! # vssa-patch: record, store and replay what the optimizer did
//!
//! A vssa graph is content-addressed and never edited: the optimizer's
//! every change is a [`vssa::Graph::replace`] of one node by another. This
//! crate turns those changes into **patches** that name nothing but
//! addresses — "the node at address A is replaced by B, where B is built by
//! this recipe" — so that the work of an optimization run can be written to
//! a file and *replayed* onto a freshly built graph of the same program in
//! a later process, without running the analysis again.
//!
//! Where it sits in the pipeline:
//!
//! ```text
//! front-end builds G ──► Recorder::start(G) ──► replay(G, book.unit(key)) ──► optimize(G) (only if
//!                                               (applies patches)             something was not applied)
//!                    ──► Recorder::log(G) ──► book.insert(log) ──► save (atomic) ──► schedule, codegen
//! ```
//!
//! * [`model`]: the patch model and the recorder (graph → patches).
//! * [`net`]: the net effect of a recording, the short log that
//!   [`Recorder::log`] hands out (chains of rewrites shortened, what the
//!   optimized graph cannot observe left out).
//! * [`mod@replay`]: applying a log by address lookup, with an outcome per patch
//!   (applied, stale, conflicting, or refuted: cut by a guard that failed
//!   at run time); never panics, never misapplies.
//! * [`mod@format`]: a unit's [`Log`] and the syntax of one patch line.
//! * [`book`]: the patch-log file, [`LogBook`]: every unit's log in one
//!   versioned, checksummed file — [`binary`] (what runs write: a node
//!   table and indexes, sealed) or text (one patch per line, for reading,
//!   diffing, exporting; still read).
//! * [`seal`]: the per-user key whose keyed hash seals a binary log, so
//!   that it replays without hashing its nodes again.
//! * [`fsutil`]: temp-file-and-rename writes that replace only regular
//!   writable files (shared with the front-ends), and bounded reads.
//!
//! `docs/patch-log.md` describes the model, the file format and the
//! staleness rules in full.

#![forbid(unsafe_code)]

pub mod binary;
pub mod book;
pub mod format;
pub mod fsutil;
pub mod model;
pub mod net;
pub mod replay;
pub mod seal;
pub mod table;
mod temporaries;

pub use binary::SealState;
pub use book::LogBook;
pub use format::{Log, LogError, FORMAT_VERSION};
pub use fsutil::{write_atomic, MAX_LOG_BYTES};
pub use model::{program_key, NewNode, Patch, PatchNodes, RecipeInputs, RecordError, Recorder};
pub use replay::{replay, LogMismatch, Outcome, ReplayReport};
pub use seal::SealKey;
pub use table::TableLog;
