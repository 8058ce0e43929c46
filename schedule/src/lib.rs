//! # vssa-schedule: global code motion
//!
//! A vssa graph is a *sea of nodes*: only control nodes, loads, stores,
//! calls and phis are tied to a place in the control flow; arithmetic
//! floats, ordered by nothing but its inputs. A backend needs the opposite:
//! basic blocks with instructions in order. This crate bridges the two with
//! Click's *global code motion* (PLDI 1995) and sits between the optimizer
//! and `vssa-backend` in the pipeline:
//!
//! ```text
//! front-end -> vssa::Graph -> optimizer -> schedule() -> Schedule -> backend
//! ```
//!
//! The steps, one module each:
//!
//! 1. `cfg`: blocks from the control nodes, in reverse postorder.
//! 2. `dom`: the dominator tree (petgraph's `simple_fast`), with jump
//!    pointers so that ancestor and LCA queries cost `O(log n)` even in
//!    dominator trees 100 000 levels deep.
//! 3. `loops`: loop nesting and loop depth of every block.
//! 4. `gcm`: pinned nodes go to their control's block; floating nodes are
//!    scheduled early, late, and then placed on the dominator path between
//!    the two at the shallowest loop depth (loop-invariant code motion).
//! 5. `order`: a deterministic order inside each block that respects
//!    data, memory and anti-dependences.
//!
//! [`print()`] renders a schedule as text and [`to_dot`] as Graphviz, for
//! tests and dumps. Every algorithm is iterative, so no input overflows the
//! stack, and malformed graphs are reported as [`ScheduleError`]s, never
//! panics.

#![forbid(unsafe_code)]

mod cfg;
mod dom;
mod dot;
mod error;
mod gcm;
mod loops;
mod order;
mod print;

#[cfg(test)]
mod tests;

pub use dot::to_dot;
pub use error::ScheduleError;
pub use print::print;

use vssa::{Graph, NodeId};

/// Index of a block in [`Schedule::blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub u32);

impl BlockId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b{}", self.0)
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
    /// Returns `value` (the `Return` node is `ret`). A function with a
    /// signature returns every value input of `ret` (input 2 on); `value`
    /// is the first of them, or `ret`'s memory state if it returns none.
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

impl Schedule {
    /// The block that holds each scheduled node (phis included), indexed by
    /// node index; `None` for nodes the schedule does not list (control
    /// nodes, dead nodes). Sized for a graph of `graph_len` nodes.
    pub fn block_of_nodes(&self, graph_len: usize) -> Vec<Option<BlockId>> {
        let mut out = vec![None; graph_len];
        for (b, block) in self.blocks.iter().enumerate() {
            for &n in block.phis.iter().chain(&block.nodes) {
                if let Some(slot) = out.get_mut(n.index()) {
                    *slot = Some(BlockId(b as u32));
                }
            }
        }
        out
    }
}

/// Schedules the live nodes of `g` into basic blocks.
///
/// The graph is read through resolved inputs and is not modified. Errors
/// describe graphs the scheduler cannot give a meaning to: no `End`, broken
/// control structure, a value used where its definition does not reach, or
/// dependences that form a cycle.
pub fn schedule(g: &Graph) -> Result<Schedule, ScheduleError> {
    let live = g.live_nodes();
    let users = g.users_of(&live);
    let cfg = cfg::Cfg::build(g, &live, &users)?;
    let dom = dom::DomTree::new(&cfg)?;
    let loops = loops::LoopNest::new(g, &cfg, &dom);
    let placement = gcm::place(g, &live, &users, &cfg, &dom, &loops)?;
    let nodes = order::order_blocks(g, &live, &users, &placement)?;

    let mut blocks = Vec::with_capacity(cfg.len());
    for (b, nodes) in nodes.into_iter().enumerate() {
        blocks.push(Block {
            head: cfg.head(b),
            phis: placement.phis[b].clone(),
            nodes,
            preds: cfg.preds(b).iter().map(|&p| BlockId(p)).collect(),
            term: cfg.terminator(g, b),
            loop_depth: loops.depth(b),
        });
    }
    Ok(Schedule { blocks })
}
