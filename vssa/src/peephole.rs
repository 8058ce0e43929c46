//! Peephole rules (placeholder: filled in by the optimizer work).

use crate::graph::{Graph, GraphError, NodeId};
use crate::op::Op;
use crate::types::Type;

/// Returns an existing or new node equivalent to `op(inputs)`, or `None`
/// when no rule applies. Inputs are resolved.
pub fn simplify(
    _g: &mut Graph,
    _op: Op,
    _ty: Type,
    _inputs: &[NodeId],
) -> Result<Option<NodeId>, GraphError> {
    Ok(None)
}
