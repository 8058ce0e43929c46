//! Why a graph could not be scheduled.

use crate::BlockId;
use std::fmt;
use vssa::NodeId;

/// A graph the scheduler cannot turn into blocks. Each variant names the
/// node at fault so that a dump of the graph shows where to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// The graph has no `End` (`Graph::finish` was never called).
    NoEnd,
    /// Nothing live reaches `Start`: the `End` has no `Return`.
    NoStart,
    /// A node breaks the shape rules of control or pinned nodes (wrong
    /// input count, a value where control is expected, a phi whose inputs
    /// do not match its region, a control fork without an `If`, ...).
    Malformed { node: NodeId, reason: &'static str },
    /// `user` reads `def` at a point that `def`'s block does not dominate:
    /// there is no single place where the value exists for that use.
    NotDominated { def: NodeId, user: NodeId },
    /// Floating nodes depend on each other in a cycle (only possible after
    /// a replacement that made a node its own input).
    DataCycle { node: NodeId },
    /// Inside `block`, data, memory and anti-dependences form a cycle, so
    /// there is no valid order; `node` is one node on or after the cycle.
    OrderCycle { block: BlockId, node: NodeId },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::NoEnd => write!(f, "the graph has no End node"),
            ScheduleError::NoStart => {
                write!(
                    f,
                    "no Start is reachable from End (the graph has no Return)"
                )
            }
            ScheduleError::Malformed { node, reason } => {
                write!(f, "malformed graph at {node}: {reason}")
            }
            ScheduleError::NotDominated { def, user } => write!(
                f,
                "{user} uses {def} at a point that {def}'s definition does not dominate"
            ),
            ScheduleError::DataCycle { node } => {
                write!(f, "the data dependences of {node} form a cycle")
            }
            ScheduleError::OrderCycle { block, node } => write!(
                f,
                "no valid order in {block}: the dependences of {node} form a cycle"
            ),
        }
    }
}

impl std::error::Error for ScheduleError {}
