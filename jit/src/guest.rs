//! What a guest provides to the pipeline: its units' graphs, their sizes
//! and source keys, its host functions and its deopt ABI.

use vssa::{Addr, Graph, NodeId};
use vssa_backend::HostFn;
use vssa_deopt::{BranchSite, DeoptAbi};

/// The most guest instructions one unit may span. Compile time and memory
/// grow with a unit's size (for Brainfuck about 5–30 µs and 5–12 KB per
/// instruction, measured on its corpus); this keeps one compilation under
/// about a second and a few hundred megabytes.
pub const MAX_UNIT_INSTS: usize = 32_768;

/// The largest [`UnitSize::weight`] one unit may have. Cranelift's egraph
/// pass walks every value's loop nest, so its time grows with
/// instructions × nesting depth: 800 nested Brainfuck loops (1 602
/// instructions) took 0.7 s, 1 000 took 1 s; 2^18 keeps a deep nest under
/// about 0.2 s.
pub const MAX_UNIT_WEIGHT: usize = 1 << 18;

/// How large a unit is, for the bounds on what one compilation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitSize {
    /// Guest instructions the unit spans.
    pub insts: usize,
    /// The sum over its instructions of 1 + how many of the unit's loops
    /// enclose it; a guest may leave it 0 when `insts` is already too many.
    pub weight: usize,
}

impl UnitSize {
    /// Whether one compilation may take this unit.
    pub fn fits(&self) -> bool {
        self.insts <= MAX_UNIT_INSTS && self.weight <= MAX_UNIT_WEIGHT
    }
}

/// A unit's graph as the guest built it.
pub struct Built {
    /// Finished (`Graph::finish`) and not yet optimized.
    pub graph: Graph,
    /// The context pointer the code reads: a `Ptr` node of `graph`
    /// (normally parameter 0). Lowered guards store their frames through it.
    pub ctx: NodeId,
    /// Every branch the pipeline may speculate on, with the guest's label
    /// for it (what [`crate::UnitRequest::speculate`] is asked about).
    pub sites: Vec<Site>,
}

/// A speculation site: a branch the profile may show going one way only.
#[derive(Clone, Copy, Debug)]
pub struct Site {
    pub branch: BranchSite,
    /// The guest's name for the site (Brainfuck: the loop's `[`).
    pub label: usize,
}

/// What a language implementation provides so that the pipeline can
/// compile its units. Everything else — optimization, patch logs, guard
/// lowering, the code caches, code generation — is the pipeline's.
pub trait Guest {
    /// How the guest names a unit (the whole program, a loop, a function).
    type Unit: Copy;
    /// What the guest's code reports when it fails (an I/O error, a limit):
    /// [`crate::JitError::Run`] carries it.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Builds the unit's graph. A failure is an internal error of the
    /// guest's builder, never a property of the guest program.
    fn build(&self, unit: Self::Unit) -> Result<Built, Box<dyn std::error::Error + Send + Sync>>;

    /// How large the unit is; a unit that does not [fit](UnitSize::fits)
    /// is refused before anything is built.
    fn size(&self, unit: Self::Unit) -> UnitSize;

    /// A key of everything the unit's built graph depends on (its code,
    /// build options, `vssa::ENCODING_VERSION`), stable across processes:
    /// the code cache file may then give the unit's code without building
    /// it. `None`: never place code without building.
    fn source_key(&self, unit: Self::Unit) -> Option<Addr>;

    /// The host functions the code calls, by `u2:i` index.
    fn hosts(&self) -> Vec<HostFn>;

    /// How lowered guards hand their frames over, for a graph whose
    /// context is `ctx`.
    fn deopt_abi(&self, ctx: NodeId) -> DeoptAbi;

    /// The return code by which the code says "a host call failed and
    /// recorded why" ([`crate::Exit::GuestError`]), if the guest has one.
    fn error_exit(&self) -> Option<u32>;

    /// The file name (without `.dot`) of the graph dump of `phase` of the
    /// unit compiled under `name`.
    fn dump_label(&self, name: &str, phase: &str) -> String {
        format!("{name}-{phase}")
    }
}
