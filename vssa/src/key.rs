//! Content keys of whole graphs, for caching what was compiled from them.
//!
//! A node's address covers its op and its inputs *as built*. After
//! replacements, the graph that a backend compiles is the *live* graph:
//! the nodes reachable from `End` through resolved inputs, with edges to
//! the resolved inputs. Two graphs with the same live graph compile to the
//! same code, whatever path (building, optimizing, replaying patches) led
//! there, and whatever dead nodes they still hold.
//!
//! [`live_graph_key`] hashes exactly that: every live node's address and
//! the addresses of its resolved inputs, back edges included (addresses
//! alone leave them out, see [`crate::addr`]), in construction order.
//!
//! Equal keys mean equal live graphs. The converse holds only for graphs
//! that got there the same way: a live node keeps the address it was built
//! with, and nodes are taken in the order they were made, so the same code
//! reached through other replacements can have another key. A cache keyed by it misses then, which costs a compile,
//! never a wrong hit. Units rebuilt and replayed from the same log take
//! the same way, which is the case a recompilation cache is for.

use crate::addr::{Addr, ENCODING_VERSION};
use crate::graph::Graph;

/// The content key of `g`'s live graph (see the module docs). A graph
/// without `End` has the key of the empty graph.
pub fn live_graph_key(g: &Graph) -> Addr {
    let live = g.live_nodes();
    let mut h = blake3::Hasher::new();
    h.update(b"vssa live graph key v1\0");
    h.update(&ENCODING_VERSION.to_le_bytes());
    h.update(&(live.len() as u64).to_le_bytes());
    // A graph with a signature adds it; one without hashes as it always did.
    if let Some(sig) = g.signature() {
        h.update(b"signature\0");
        h.update(&sig.bits().to_le_bytes());
    }
    // Hashed in chunks: one buffer per node would cost more than the hash.
    let mut buf = Vec::with_capacity(64 * 1024);
    for &id in &live {
        buf.extend_from_slice(&g.addr(id).0);
        let inputs = g.node(id).raw_inputs();
        buf.extend_from_slice(&(inputs.len() as u32).to_le_bytes());
        for &i in inputs {
            buf.extend_from_slice(&g.addr(g.resolve(i)).0);
        }
        if buf.len() > 60 * 1024 {
            h.update(&buf);
            buf.clear();
        }
    }
    h.update(&buf);
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    Addr(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Graph, Type};

    /// `return load(p) + k` with a counting loop around it when `looped`;
    /// the loop's back value is `x + step`.
    fn build(k: i64, step: i64) -> Graph {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let head = g.loop_header(1, e.ctrl).unwrap();
        let zero = g.iconst(Type::I32, 0).unwrap();
        let x = g.loop_phi(head, 1, Type::I32, zero).unwrap();
        let s = g.iconst(Type::I32, step).unwrap();
        let next = g.add(x, s).unwrap();
        let kk = g.iconst(Type::I32, k).unwrap();
        let (again, out) = g.branch(head, x).unwrap();
        g.set_back_input(head, again).unwrap();
        g.set_back_input(x, next).unwrap();
        let v = g.add(x, kk).unwrap();
        let r = g.ret(out, e.mem, v).unwrap();
        g.finish(&[r]).unwrap();
        g
    }

    #[test]
    fn same_graph_same_key() {
        assert_eq!(live_graph_key(&build(3, 1)), live_graph_key(&build(3, 1)));
    }

    #[test]
    fn a_different_immediate_changes_the_key() {
        assert_ne!(live_graph_key(&build(3, 1)), live_graph_key(&build(4, 1)));
    }

    #[test]
    fn back_edges_count() {
        // The two graphs differ only in the loop's back value: every
        // address but the step constant's and the add's is the same, and
        // those are reached only through the back edge.
        let (a, b) = (build(3, 1), build(3, 2));
        assert_eq!(a.addr(a.end().unwrap()), b.addr(b.end().unwrap()));
        assert_ne!(live_graph_key(&a), live_graph_key(&b));
    }

    #[test]
    fn replacements_count_and_dead_nodes_do_not() {
        let mut a = build(3, 1);
        let before = live_graph_key(&a);
        // A dead node changes nothing.
        a.iconst(Type::I64, 99).unwrap();
        assert_eq!(live_graph_key(&a), before);
        // Replacing a live constant does.
        let k = a.iconst(Type::I32, 3).unwrap();
        let k2 = a.iconst(Type::I32, 5).unwrap();
        a.replace(k, k2).unwrap();
        assert_ne!(live_graph_key(&a), before);
    }
}
