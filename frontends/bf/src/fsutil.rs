//! Writing files so that a crash never leaves a half-written one.
//!
//! The helper lives in `vssa-patch` (patch logs are the files that most
//! need it, and that crate must not depend on a front-end); it is
//! re-exported here so the front-end's callers keep their path.

pub use vssa_patch::write_atomic;
