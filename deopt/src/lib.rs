//! # vssa-deopt: deoptimization support (not yet built)
//!
//! This crate will hold what lets any guest speculate: `Guard` and
//! `FrameState` lowering support, the exit protocol (a failing guard writes
//! its frame state into the context's deopt buffer and returns its exit id),
//! per-guard deopt counters and the recompilation policy (see the
//! speculation and deoptimization issue).
//!
//! Today the Brainfuck guest already uses the protocol's core by hand: its
//! compiled code returns an exit id and leaves the cell index in the context
//! (`vssa_bf::build`), and the runtime resumes the interpreter at the
//! instruction the exit table names. That mechanism moves here when guards
//! become LIR nodes.

#![forbid(unsafe_code)]
