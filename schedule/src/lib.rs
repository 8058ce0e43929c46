//! # vssa-schedule: global code motion
//!
//! Turns a (floating) vssa graph into an ordered list of basic blocks that a
//! backend can emit top to bottom.
//!
//! (Implementation in progress: the types below are the contract with the backend.)

#![forbid(unsafe_code)]

use vssa::NodeId;

/// Index of a block in [`Schedule::blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub u32);

impl BlockId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a block ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// Falls into `target` (a `Region` or `Loop` block); the block passes,
    /// for each phi of the target, that phi's input for this predecessor.
    Jump { target: BlockId },
    /// Two-way branch on a resolved value node (`cond != 0` takes `if_true`).
    Branch {
        cond: NodeId,
        if_true: BlockId,
        if_false: BlockId,
    },
    /// Returns `value` (the `Return` node is `ret`).
    Return { ret: NodeId, value: NodeId },
}

/// One basic block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The control node that begins the block: the `Proj 0` of `Start`, a
    /// `Region`, a `Loop`, or a `Proj` of an `If`.
    pub head: NodeId,
    /// Phis of a `Region`/`Loop` head, in a deterministic order.
    pub phis: Vec<NodeId>,
    /// Every other node placed here, in execution order (data and memory
    /// dependences respected). Constants, `Start` projections etc. included;
    /// control nodes (`If`, `Return`, projections of `If`) are not.
    pub nodes: Vec<NodeId>,
    /// Predecessor blocks. For a `Region`/`Loop` head, `preds[i]` is the block
    /// whose control is the head's input `i` (for a loop: 0 = entry, 1 = back edge).
    pub preds: Vec<BlockId>,
    pub term: Terminator,
    /// 0 outside loops, +1 per enclosing loop.
    pub loop_depth: u32,
}

/// A whole function's schedule: `blocks[0]` is the entry block; blocks are in
/// reverse postorder of the CFG (every block after its dominator).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Schedule {
    pub blocks: Vec<Block>,
}
