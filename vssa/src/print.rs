//! Text form of a graph, for humans, tests and diffs.
//!
//! One line per live node in construction order:
//!
//! ```text
//! n12 @1a2b3c4d i8 = add n10, n11
//! ```
//!
//! Inputs are shown resolved, so a replaced node's users name its
//! replacement; a loop or loop phi lists its back edge last.

use crate::float::{f32_of, f64_of};
use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Type;
use std::fmt::Write;

/// The live graph, one node per line.
pub fn print(g: &Graph) -> String {
    let mut out = String::new();
    if let Some(sig) = g.signature() {
        let _ = writeln!(out, "signature {sig}");
    }
    for n in g.live_nodes() {
        write_node(&mut out, g, n);
        out.push('\n');
    }
    out
}

/// One node as `nID @ADDR TYPE = OP INPUTS`.
pub fn node_line(g: &Graph, n: NodeId) -> String {
    let mut s = String::new();
    write_node(&mut s, g, n);
    s
}

fn write_node(out: &mut String, g: &Graph, n: NodeId) {
    let _ = write!(out, "{n} @");
    write_short_addr(out, g, n);
    let _ = write!(out, " {} = ", g.ty(n));
    write_op(out, g, n);
    for (i, input) in g.inputs(n).iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(out, "{sep}{input}");
    }
}

/// `n`'s operation and immediates, as [`crate::Op`]'s `Display` shows them,
/// except that a float constant shows its value and, exactly, its bits:
/// `const 1.5 (0x3ff8000000000000)`, `const -0 (0x80000000)`, `const NaN
/// (0x7ff8000000000000)`.
pub fn write_op(out: &mut String, g: &Graph, n: NodeId) {
    let ty = g.ty(n);
    match g.op(n) {
        Op::Const { value } if ty == Type::F64 => {
            let _ = write!(out, "const {} ({:#018x})", f64_of(value), value as u64);
        }
        Op::Const { value } if ty == Type::F32 => {
            let _ = write!(out, "const {} ({:#010x})", f32_of(value), value as u32);
        }
        op => {
            let _ = write!(out, "{op}");
        }
    }
}

/// The first 8 hex digits of the node's address (what `Addr::short` gives,
/// without building the full hex string: graphs can have millions of nodes).
pub(crate) fn write_short_addr(out: &mut String, g: &Graph, n: NodeId) {
    for b in &g.addr(n).0[..4] {
        let _ = write!(out, "{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_constants_show_value_and_bits() {
        let mut g = Graph::new();
        let a = g.f64const(1.5).unwrap();
        let b = g.f32const(-0.0).unwrap();
        let c = g.iconst(Type::F64, 0x7ff8_0000_0000_0001).unwrap();
        assert!(node_line(&g, a).ends_with("f64 = const 1.5 (0x3ff8000000000000)"));
        assert!(node_line(&g, b).ends_with("f32 = const -0 (0x80000000)"));
        assert!(node_line(&g, c).ends_with("f64 = const NaN (0x7ff8000000000001)"));
    }

    #[test]
    fn prints_live_nodes_with_resolved_inputs() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I8).unwrap();
        let k = g.iconst(Type::I8, 7).unwrap();
        let sum = g.add(x, k).unwrap();
        let r = g.ret(e.ctrl, e.mem, sum).unwrap();
        g.finish(&[r]).unwrap();
        let text = print(&g);
        let a = |n: NodeId| g.addr(n).short();
        let expected_sum = format!("{sum} @{} i8 = add {x}, {k}", a(sum));
        assert!(text.lines().any(|l| l == expected_sum), "{text}");
        assert_eq!(
            text.lines().next().unwrap(),
            format!("n0 @{} tuple = start", a(e.start))
        );
        assert!(text.contains(&format!("{k} @{} i8 = const 7\n", a(k))));
        assert_eq!(text.lines().count(), g.live_nodes().len());
        for n in g.live_nodes() {
            assert!(node_line(&g, n).starts_with(&format!("{n} @{} ", g.addr(n).short())));
        }

        let eight = g.iconst(Type::I8, 8).unwrap();
        g.replace(sum, eight).unwrap();
        let text = print(&g);
        assert!(
            text.contains(&format!("ctrl = return {}, {}, {eight}", e.ctrl, e.mem)),
            "{text}"
        );
        assert!(!text.contains(" = add "), "the replaced add is dead");
    }

    #[test]
    fn prints_immediates() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let v = g.load(e.ctrl, e.mem, p, -4, Type::I32).unwrap();
        let r = g.ret(e.ctrl, e.mem, v).unwrap();
        g.finish(&[r]).unwrap();
        let text = print(&g);
        assert!(
            text.contains(&format!("i32 = load -4 {}, {}, {p}", e.ctrl, e.mem)),
            "{text}"
        );
        assert!(text.contains("ptr = proj 2 n0"), "{text}");
    }
}
