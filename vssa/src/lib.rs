//! # vssa: the LIR
//!
//! The low-level IR of vssa is a **content-addressed sea-of-nodes graph**.
//! Pure nodes float, ordered only by their inputs; control nodes form the
//! CFG; loads, stores and host calls are threaded on a memory chain.
//!
//! * Every node has an [`Addr`]: a blake3 hash of its opcode, type,
//!   immediates and its inputs' addresses ([`addr`]). Building a node that
//!   exists returns it ([`Graph::build`]), so value numbering is free.
//! * A node is never edited: a pass builds the new node and *replaces* the
//!   old one ([`Graph::replace`]). Readers see through replacements with
//!   [`Graph::resolve`]. Each replacement is a patch that the `vssa-patch`
//!   crate records and replays.
//! * Cycles (loops) are closed by back edges that are not hashed, so
//!   addresses form a DAG even though the graph does not.
//!
//! Pipeline: a front-end builds a graph with the typed builder ([`build`]),
//! the optimizer runs, `vssa-schedule` turns the graph into blocks, and
//! `vssa-backend` emits native code through Cranelift.

#![forbid(unsafe_code)]

pub mod addr;
pub mod alias;
pub mod branch_facts;
pub mod build;
pub mod closed_form;
pub mod control_fold;
pub mod dom;
pub mod dot;
pub mod eval;
pub mod float;
pub mod frame;
pub mod graph;
pub mod guard_hoist;
pub mod interp;
pub mod key;
pub mod op;
pub mod opt;
pub mod parse;
pub mod passes;
pub mod peephole;
pub mod print;
pub mod promote;
pub mod range_merge;
pub mod sig;
pub mod types;
pub mod verify;

pub use addr::{Addr, ENCODING_VERSION};
pub use branch_facts::{branch_facts, branch_facts_of, FactKinds, FactStats};
pub use build::Entry;
pub use closed_form::{closed_forms, ClosedFormStats};
pub use control_fold::{fold_control, FoldStats};
pub use graph::{Graph, GraphError, Node, NodeId, UserLists};
pub use guard_hoist::{hoist_guards, HoistStats};
pub use key::live_graph_key;
pub use op::{BinOp, CmpOp, ConvOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Op, UnOp};
pub use opt::{optimize, OptStats};
pub use parse::{parse, parse_building, ParseError};
pub use passes::{standard, PassConfig, PassStats};
pub use promote::{promote, PromoteStats, MAX_PROMOTE_HEIGHT};
pub use range_merge::{merge_range_guards, MergeStats};
pub use sig::{SigError, Signature};
pub use types::Type;
pub use verify::{verify, VerifyError, VerifyErrors};
