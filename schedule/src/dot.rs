//! Graphviz DOT of a scheduled graph: one cluster per block, nodes in their
//! scheduled order, CFG edges between blocks.

use crate::{Schedule, Terminator};
use std::fmt::Write;
use vssa::Graph;

/// The schedule `s` of `g` as DOT: blocks are clusters labelled with their
/// loop depth; within a block, nodes are chained in execution order.
pub fn to_dot(g: &Graph, s: &Schedule, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", title.replace('"', "'"));
    let _ = writeln!(out, "  node [shape=box, fontname=monospace, fontsize=10];");
    for (b, block) in s.blocks.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_b{b} {{");
        let _ = writeln!(out, "    label=\"b{b} (depth {})\";", block.loop_depth);
        let mut prev: Option<String> = None;
        let members = std::iter::once(block.head)
            .chain(block.phis.iter().copied())
            .chain(block.nodes.iter().copied());
        for n in members {
            let id = format!("b{b}_{}", n.index());
            let inputs: Vec<String> = g.inputs(n).iter().map(|i| i.to_string()).collect();
            let label = format!("{n}: {} {} {}", g.op(n), g.ty(n), inputs.join(", "));
            let _ = writeln!(out, "    {id} [label=\"{}\"];", label.replace('"', "'"));
            if let Some(p) = prev {
                let _ = writeln!(out, "    {p} -> {id} [style=invis];");
            }
            prev = Some(id);
        }
        let term = match &block.term {
            Terminator::Jump { .. } => "jump".to_string(),
            Terminator::Branch { cond, .. } => format!("branch {cond}"),
            Terminator::Return { value, .. } => format!("return {value}"),
        };
        let _ = writeln!(out, "    b{b}_term [label=\"{term}\", shape=plaintext];");
        if let Some(p) = prev {
            let _ = writeln!(out, "    {p} -> b{b}_term [style=invis];");
        }
        let _ = writeln!(out, "  }}");
    }
    for (b, block) in s.blocks.iter().enumerate() {
        let targets: Vec<(usize, &str)> = match &block.term {
            Terminator::Jump { target } => vec![(target.index(), "")],
            Terminator::Branch {
                if_true, if_false, ..
            } => vec![(if_true.index(), "T"), (if_false.index(), "F")],
            Terminator::Return { .. } => vec![],
        };
        for (t, label) in targets {
            let head = s.blocks[t].head.index();
            let _ = writeln!(
                out,
                "  b{b}_term -> b{t}_{head} [label=\"{label}\", style=bold, color=red];"
            );
        }
    }
    out.push_str("}\n");
    out
}
