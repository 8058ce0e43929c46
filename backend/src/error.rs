//! The one error type of the backend.
//!
//! A graph or schedule that the backend cannot lower is reported here
//! instead of reaching Cranelift: without its verifier (off in release
//! builds) Cranelift may panic or miscompile on malformed IR, so every
//! invariant Cranelift relies on is checked while lowering.

use std::fmt;
use vssa::NodeId;

/// Why a graph could not be lowered or compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The schedule has no blocks.
    EmptySchedule,
    /// A block of the schedule is malformed (bad target, unreachable,
    /// placed before its dominator, ...).
    BadBlock { block: usize, reason: String },
    /// A schedule names a node that the graph never handed out.
    UnknownNode(NodeId),
    /// A node whose op, type or inputs this backend cannot lower.
    Unsupported { node: NodeId, reason: String },
    /// `user` uses `node`, which has no Cranelift value (control, memory or
    /// a tuple).
    NoValue { node: NodeId, user: NodeId },
    /// `user` uses `node` where no definition of it is available: it is
    /// not scheduled, scheduled later, or in a block that does not
    /// dominate the use.
    NotAvailable { node: NodeId, user: NodeId },
    /// The schedule lists a node twice.
    Duplicate(NodeId),
    /// A call names a host function that the table does not have.
    HostIndex { node: NodeId, func: u32, len: usize },
    /// A call's arguments do not match its host function's parameters.
    HostSignature {
        node: NodeId,
        func: u32,
        reason: String,
    },
    /// The machine this runs on is not supported by Cranelift or vssa.
    Isa(String),
    /// Cranelift's verifier rejected the lowered function (a backend bug).
    Verifier(String),
    /// Cranelift or the JIT module failed.
    Codegen(String),
    /// Compiled code handed to a `Jit` that did not compile it.
    ForeignCode,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::EmptySchedule => write!(f, "the schedule has no blocks"),
            BackendError::BadBlock { block, reason } => write!(f, "block b{block}: {reason}"),
            BackendError::UnknownNode(n) => write!(f, "the schedule names unknown node {n}"),
            BackendError::Unsupported { node, reason } => {
                write!(f, "cannot lower {node}: {reason}")
            }
            BackendError::NoValue { node, user } => {
                write!(f, "{user} uses {node}, which has no value")
            }
            BackendError::NotAvailable { node, user } => write!(
                f,
                "{user} uses {node}, which is not defined in a block dominating the use"
            ),
            BackendError::Duplicate(n) => write!(f, "{n} is scheduled twice"),
            BackendError::HostIndex { node, func, len } => write!(
                f,
                "{node} calls host function {func}, but the table has {len} entries"
            ),
            BackendError::HostSignature { node, func, reason } => {
                write!(f, "{node} calls host function {func}: {reason}")
            }
            BackendError::Isa(msg) => write!(f, "unsupported host machine: {msg}"),
            BackendError::Verifier(msg) => {
                write!(f, "Cranelift verifier rejected the function:\n{msg}")
            }
            BackendError::Codegen(msg) => write!(f, "code generation failed: {msg}"),
            BackendError::ForeignCode => {
                write!(
                    f,
                    "compiled code was passed to a Jit that did not compile it"
                )
            }
        }
    }
}

impl std::error::Error for BackendError {}
