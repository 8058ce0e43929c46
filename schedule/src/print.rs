//! A text form of a schedule, for tests, dumps and debugging.

use crate::{Schedule, Terminator};
use std::fmt::Write;
use vssa::{Graph, NodeId};

/// Renders `s` (a schedule of `g`) block by block:
///
/// ```text
/// b1 (n7 loop #0) <- [b0, b3] depth 1
///   n8: i64 = phi #0 n7, n4, n12
///   n9: i8 = slt n8, n5
///   branch n9 ? b2 : b4
/// ```
///
/// Each node shows its type, operation and resolved inputs; the head line
/// shows the head node, the predecessors and the loop depth.
pub fn print(g: &Graph, s: &Schedule) -> String {
    let mut out = String::new();
    let node = |out: &mut String, n: NodeId| {
        if g.get(n).is_none() {
            let _ = writeln!(out, "  {n}: <not in this graph>");
            return;
        }
        let ins: Vec<String> = g.inputs(n).iter().map(|i| i.to_string()).collect();
        let _ = write!(out, "  {n}: {} = {}", g.ty(n), g.op(n));
        if !ins.is_empty() {
            let _ = write!(out, " {}", ins.join(", "));
        }
        out.push('\n');
    };
    for (b, block) in s.blocks.iter().enumerate() {
        let preds: Vec<String> = block.preds.iter().map(|p| p.to_string()).collect();
        let head_op = g
            .get(block.head)
            .map_or("?".to_string(), |h| h.op().to_string());
        let _ = writeln!(
            out,
            "b{b} ({} {head_op}) <- [{}] depth {}",
            block.head,
            preds.join(", "),
            block.loop_depth
        );
        for &p in &block.phis {
            node(&mut out, p);
        }
        for &n in &block.nodes {
            node(&mut out, n);
        }
        let _ = match block.term {
            Terminator::Jump { target } => writeln!(out, "  jump {target}"),
            Terminator::Branch {
                cond,
                if_true,
                if_false,
            } => writeln!(out, "  branch {cond} ? {if_true} : {if_false}"),
            Terminator::Return { ret, value } => writeln!(out, "  return {value} ({ret})"),
        };
    }
    out
}
