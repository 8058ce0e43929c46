//! # vssa-backend: native code through Cranelift
//!
//! The last stage of the vssa pipeline. A front-end builds a [`vssa::Graph`],
//! the optimizer simplifies it, `vssa-schedule` places every node in a basic
//! block ([`vssa_schedule::Schedule`]), and this crate
//!
//! 1. lowers the scheduled graph to one Cranelift IR function ([`lower()`]),
//! 2. compiles it in-process with `cranelift-jit` ([`Jit`]), and
//! 3. calls it as `extern "C" fn(*mut Context) -> u32` ([`CompiledCode::call`]).
//!
//! Code compiled into memory of its own ([`OwnedCode`]) can be kept in a
//! [`CodeCache`] keyed by the content of the unit it was compiled from, so
//! that a recompilation only generates code for units that changed.
//!
//! Generated code touches the outside world only through the context
//! pointer (loads and stores) and the embedder's [`HostFn`] table (calls).
//! Malformed graphs or schedules are reported as [`BackendError`]s before
//! Cranelift sees them.

pub mod cache;
mod cfg;
pub mod error;
pub mod host;
pub mod image;
pub mod jit;
pub mod lower;
pub mod stored;
pub mod typed;

pub use cache::{CacheStats, CodeCache};
pub use error::BackendError;
pub use host::HostFn;
pub use image::{CodeImage, CodeReloc, RelocKind, RelocTarget};
pub use jit::{CompileStats, CompiledCode, Jit, JitOptions, OwnedCode};
pub use lower::{entry_signature, function_signature, lower, lower_with, typed_signature};
pub use stored::CodeStore;
pub use typed::TypedCaller;
