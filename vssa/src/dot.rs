//! Graphviz export of the live graph (`dot -Tsvg`).
//!
//! Edges run from an input to its user. Control edges are bold, memory
//! edges dashed and blue, back edges dotted (and do not constrain the
//! layout, so loops still read top to bottom). Control nodes are boxes.

use crate::graph::Graph;
use crate::op::Op;
use crate::types::Type;
use std::fmt::Write;

/// The live graph as a DOT digraph named `title`.
pub fn to_dot(g: &Graph, title: &str) -> String {
    let title = escape(title);
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{title}\" {{");
    let _ = writeln!(out, "  label=\"{title}\"; labelloc=t;");
    let _ = writeln!(out, "  node [fontname=\"monospace\", fontsize=10];");
    let live = g.live_nodes();
    for &n in &live {
        let op = g.op(n);
        let control = op.is_control() || (matches!(op, Op::Proj { .. }) && g.ty(n) == Type::Ctrl);
        let shape = if control { "box" } else { "ellipse" };
        let color = if g.ty(n) == Type::Mem {
            ", color=blue"
        } else {
            ""
        };
        let mut text = format!("{n} ");
        crate::print::write_op(&mut text, g, n);
        let label = escape(&format!("{text}\n{}", g.ty(n)));
        let _ = writeln!(out, "  {n} [label=\"{label}\", shape={shape}{color}];");
    }
    for &n in &live {
        let back_from = match g.op(n) {
            Op::Loop { .. } | Op::Phi { .. } => g.hashed_arity(n),
            _ => usize::MAX,
        };
        for (i, input) in g.inputs(n).into_iter().enumerate() {
            let mut attrs: Vec<&str> = Vec::new();
            match g.ty(input) {
                Type::Ctrl => attrs.push("style=bold"),
                Type::Mem => attrs.push("style=dashed, color=blue"),
                _ => {}
            }
            if i >= back_from {
                attrs.retain(|a| !a.starts_with("style"));
                attrs.push("style=dotted, constraint=false");
                if g.ty(input) == Type::Mem {
                    attrs.push("color=blue");
                }
            }
            if attrs.is_empty() {
                let _ = writeln!(out, "  {input} -> {n};");
            } else {
                let _ = writeln!(out, "  {input} -> {n} [{}];", attrs.join(", "));
            }
        }
    }
    out.push_str("}\n");
    out
}

/// Escapes a string for a double-quoted DOT id; newlines become `\n`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_styles_and_escapes() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let tape = g.param(e.start, 0, Type::Ptr).unwrap();
        let lp = g.loop_header(3, e.ctrl).unwrap();
        let phi = g.loop_phi(lp, 0, Type::Mem, e.mem).unwrap();
        let v = g.load(lp, phi, tape, 0, Type::I8).unwrap();
        let m = g.store(lp, phi, tape, 1, v).unwrap();
        let (again, out) = g.branch(lp, v).unwrap();
        g.set_back_input(lp, again).unwrap();
        g.set_back_input(phi, m).unwrap();
        let r = g.ret(out, m, v).unwrap();
        g.finish(&[r]).unwrap();
        let dot = to_dot(&g, "a \"b\"");
        assert!(dot.starts_with("digraph \"a \\\"b\\\"\" {\n"), "{dot}");
        assert!(dot.ends_with("}\n"));
        assert!(
            dot.contains(&format!(
                "  {lp} [label=\"{lp} loop #3\\nctrl\", shape=box];"
            )),
            "{dot}"
        );
        assert!(dot.contains(&format!(
            "  {v} [label=\"{v} load +0\\ni8\", shape=ellipse];"
        )));
        assert!(dot.contains(&format!("  {} -> {lp} [style=bold];", e.ctrl)));
        assert!(
            dot.contains(&format!(
                "  {again} -> {lp} [style=dotted, constraint=false];"
            )),
            "{dot}"
        );
        assert!(dot.contains(&format!(
            "  {m} -> {phi} [style=dotted, constraint=false, color=blue];"
        )));
        assert!(dot.contains(&format!("  {phi} -> {v} [style=dashed, color=blue];")));
        assert!(dot.contains(&format!("  {tape} -> {v};")));
        // One edge per input of every live node.
        let edges = dot.lines().filter(|l| l.contains(" -> ")).count();
        let inputs: usize = g.live_nodes().iter().map(|&n| g.arity(n)).sum();
        assert_eq!(edges, inputs);
    }
}
