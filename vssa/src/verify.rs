//! The verifier: checks that a graph is well formed before it is scheduled.
//!
//! A graph reaches the scheduler and backend from front-ends, peepholes and
//! replayed patches; a malformed one would make them fail obscurely (or emit
//! wrong code). [`verify`] checks every live node against the input
//! conventions documented on [`Op`] and reports all problems at once, each
//! naming the node. It never panics, whatever the graph holds.

use crate::addr::Addr;
use crate::eval::conv_widths_ok;
use crate::float::{fconv_types_ok, fits_bits_ok};
use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Type;
use std::fmt;

/// One problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The node at fault; `None` for a problem of the whole graph.
    pub node: Option<NodeId>,
    pub op: Option<Op>,
    pub addr: Option<Addr>,
    pub problem: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.node, self.op, self.addr) {
            (Some(n), Some(op), Some(a)) => {
                write!(f, "{n} ({op} @{}): {}", a.short(), self.problem)
            }
            (Some(n), _, _) => write!(f, "{n}: {}", self.problem),
            _ => write!(f, "graph: {}", self.problem),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Every problem [`verify`] found, as one error (for pipelines that stop
/// at the first failing phase): shows how many and the first few; its
/// `source()` is the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyErrors(pub Vec<VerifyError>);

/// How many problems [`VerifyErrors`] shows.
const SHOWN: usize = 5;

impl fmt::Display for VerifyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s)", self.0.len())?;
        for (i, e) in self.0.iter().take(SHOWN).enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyErrors {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.first().map(|e| e as _)
    }
}

impl From<Vec<VerifyError>> for VerifyErrors {
    fn from(errors: Vec<VerifyError>) -> Self {
        VerifyErrors(errors)
    }
}

/// Checks every live node (reachable from `End`): arity and input types per
/// opcode, dangling input ids, unset back edges, phi/region agreement, and
/// that there is exactly one `Start`.
pub fn verify(g: &Graph) -> Result<(), Vec<VerifyError>> {
    let mut errors = Vec::new();
    let graph_error = |problem: String| VerifyError {
        node: None,
        op: None,
        addr: None,
        problem,
    };
    let Some(end) = g.end() else {
        return Err(vec![graph_error("no End was set (Graph::finish)".into())]);
    };
    let live = live_nodes(g, end, &mut errors);
    if g.op(end) != Op::End {
        errors.push(node_error(g, end, "the graph's sink is not an End".into()));
    }
    let starts = live.iter().filter(|&&n| g.op(n) == Op::Start).count();
    if starts != 1 {
        errors.push(graph_error(format!(
            "{starts} live Start nodes, expected exactly one"
        )));
    }
    let mut problems = Vec::new();
    for &n in &live {
        let Some(ins) = resolved_inputs(g, n) else {
            continue;
        };
        check_node(g, n, &ins, &mut problems);
        for p in problems.drain(..) {
            errors.push(node_error(g, n, p));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn node_error(g: &Graph, n: NodeId, problem: String) -> VerifyError {
    VerifyError {
        node: Some(n),
        op: Some(g.op(n)),
        addr: Some(g.addr(n)),
        problem,
    }
}

/// Follows replacements without trusting them: `None` for an id out of
/// range or a forwarding cycle.
fn resolve(g: &Graph, mut id: NodeId) -> Option<NodeId> {
    for _ in 0..=g.len() {
        match g.get(id)?.replaced_by() {
            None => return Some(id),
            Some(next) => id = next,
        }
    }
    None
}

fn resolved_inputs(g: &Graph, n: NodeId) -> Option<Vec<NodeId>> {
    g.node(n)
        .raw_inputs()
        .iter()
        .map(|&i| resolve(g, i))
        .collect()
}

/// Live nodes in construction order, reporting dangling inputs instead of
/// following them. Iterative.
fn live_nodes(g: &Graph, end: NodeId, errors: &mut Vec<VerifyError>) -> Vec<NodeId> {
    let mut seen = vec![false; g.len()];
    let mut stack = vec![end];
    seen[end.index()] = true;
    while let Some(n) = stack.pop() {
        for (slot, &raw) in g.node(n).raw_inputs().iter().enumerate() {
            match resolve(g, raw) {
                Some(i) => {
                    if !seen[i.index()] {
                        seen[i.index()] = true;
                        stack.push(i);
                    }
                }
                None => errors.push(node_error(
                    g,
                    n,
                    format!("input {slot} ({raw}) is dangling (unknown id or forwarding cycle)"),
                )),
            }
        }
    }
    (0..g.len())
        .filter(|&i| seen[i])
        .map(NodeId::from_index)
        .collect()
}

/// A node that control flows out of: what a block can start from or branch on.
fn is_flow(g: &Graph, n: NodeId) -> bool {
    g.ty(n) == Type::Ctrl && !matches!(g.op(n), Op::Return | Op::End)
}

/// Checks one node; `ins` are its resolved inputs (all in range).
fn check_node(g: &Graph, n: NodeId, ins: &[NodeId], out: &mut Vec<String>) {
    let op = g.op(n);
    let ty = g.ty(n);
    let mut want_ty = |expected: &str, ok: bool| {
        if !ok {
            out.push(format!("has type {ty}, expected {expected}"));
        }
    };
    match op {
        Op::Start => want_ty("tuple", ty == Type::Tuple),
        Op::Region | Op::Loop { .. } | Op::Return | Op::End | Op::Guard { .. } => {
            want_ty("ctrl", ty == Type::Ctrl)
        }
        Op::FrameState { .. } | Op::InlinedFrame { .. } => want_ty("frame", ty == Type::Frame),
        Op::Boxed => want_ty("i64 or ptr", matches!(ty, Type::I64 | Type::Ptr)),
        Op::Materialize { .. } => want_ty("ptr", ty == Type::Ptr),
        Op::If | Op::Call { .. } | Op::CallDirect { .. } | Op::CallIndirect { .. } => {
            want_ty("tuple", ty == Type::Tuple)
        }
        Op::Const { .. } | Op::Select | Op::Load { .. } | Op::ClassLoad { .. } => {
            want_ty("a value type", ty.is_value())
        }
        Op::Bin(_) | Op::Un(_) => want_ty("an integer or ptr", ty.is_int_or_ptr()),
        Op::FBin(_) | Op::FUn(_) => want_ty("a float", ty.is_float()),
        Op::Cmp(_) | Op::FCmp(_) | Op::FFits { .. } => want_ty("i8", ty == Type::I8),
        Op::PtrAdd => want_ty("ptr", ty == Type::Ptr),
        Op::Store { .. } | Op::ClassStore { .. } => want_ty("mem", ty == Type::Mem),
        Op::Phi { .. } => want_ty("a value type or mem", ty.is_value() || ty == Type::Mem),
        Op::Conv(_) | Op::FConv(_) | Op::Proj { .. } => {}
    }
    if let Op::ClassLoad { class: 0, .. } | Op::ClassStore { class: 0, .. } = op {
        out.push("has alias class 0, which is the plain load or store".into());
    }
    let arity_ok = match op {
        Op::Start | Op::Const { .. } => ins.is_empty(),
        Op::Region => !ins.is_empty(),
        Op::Loop { .. } => {
            if ins.len() == 1 {
                out.push("loop back edge is not set".into());
                return;
            }
            ins.len() == 2
        }
        Op::If | Op::Bin(_) | Op::Cmp(_) | Op::PtrAdd | Op::FBin(_) | Op::FCmp(_) => ins.len() == 2,
        Op::Proj { .. } | Op::Un(_) | Op::Conv(_) | Op::FUn(_) | Op::FConv(_) => ins.len() == 1,
        Op::FFits { .. } => ins.len() == 1,
        Op::Return => ins.len() == 2 + g.signature().map_or(1, |s| s.result_count()),
        Op::Select | Op::Load { .. } | Op::ClassLoad { .. } | Op::Guard { .. } => ins.len() == 3,
        Op::FrameState { .. } => !ins.is_empty(),
        Op::InlinedFrame { .. } => ins.len() >= 2,
        Op::Boxed => ins.len() == 1,
        Op::Materialize { .. } => true,
        Op::Store { .. } | Op::ClassStore { .. } => ins.len() == 4,
        Op::Call { .. } => ins.len() >= 2,
        Op::CallDirect { sig, .. } => ins.len() == 2 + sig.param_count(),
        Op::CallIndirect { sig } => ins.len() == 3 + sig.param_count(),
        Op::End => true,
        Op::Phi { .. } => !ins.is_empty(),
    };
    if !arity_ok {
        out.push(format!(
            "has {} inputs, which is wrong for {}",
            ins.len(),
            op.mnemonic()
        ));
        return;
    }
    // Frame annotations are no values code can compute with.
    let slots_from = match op {
        Op::FrameState { .. } => 1,
        Op::InlinedFrame { .. } => 2,
        Op::Materialize { .. } => 0,
        _ => usize::MAX,
    };
    for (i, &x) in ins.iter().enumerate() {
        if matches!(g.op(x), Op::Boxed | Op::Materialize { .. }) && i < slots_from {
            out.push(format!(
                "input {i} ({x}) is a {}, which only frame slots may use",
                g.op(x).mnemonic()
            ));
        }
    }
    // Input problems collect here, the others straight in `out`.
    let mut bad_inputs: Vec<String> = Vec::new();
    let mut want = |i: usize, expected: &str, ok: bool| {
        if !ok {
            bad_inputs.push(format!(
                "input {i} ({}) is a {} of type {}, expected {expected}",
                ins[i],
                g.op(ins[i]).mnemonic(),
                g.ty(ins[i])
            ));
        }
    };
    let t = |i: usize| g.ty(ins[i]);
    match op {
        Op::Start => {}
        Op::Region | Op::Loop { .. } => {
            for (i, &c) in ins.iter().enumerate() {
                want(i, "control flow", is_flow(g, c));
            }
        }
        Op::If => {
            want(0, "control flow", is_flow(g, ins[0]));
            want(1, "an integer", t(1).is_int());
        }
        Op::Proj { index } => check_proj(g, ins[0], index, ty, out),
        Op::Return => {
            want(0, "control flow", is_flow(g, ins[0]));
            want(1, "mem", t(1) == Type::Mem);
            match g.signature() {
                None => want(2, "a value", t(2).is_value()),
                Some(sig) => {
                    for (k, r) in sig.results().into_iter().enumerate() {
                        want(2 + k, &format!("{r} (result {k})"), t(2 + k) == r);
                    }
                }
            }
        }
        Op::Guard { .. } => {
            want(0, "control flow", is_flow(g, ins[0]));
            want(1, "an integer", t(1).is_int());
            want(2, "a frame state", g.op(ins[2]).is_frame());
        }
        Op::FrameState { .. } => {
            want(0, "mem", t(0) == Type::Mem);
            for i in 1..ins.len() {
                want(i, "a value", t(i).is_value());
            }
        }
        Op::InlinedFrame { .. } => {
            want(0, "mem", t(0) == Type::Mem);
            want(1, "a caller frame state", g.op(ins[1]).is_frame());
            for i in 2..ins.len() {
                want(i, "a value", t(i).is_value());
            }
        }
        Op::Boxed => want(0, &ty.to_string(), t(0) == ty),
        Op::Materialize { .. } => {
            for i in 0..ins.len() {
                want(i, "a value", t(i).is_value());
            }
        }
        Op::End => {
            for (i, &r) in ins.iter().enumerate() {
                want(i, "a return", g.op(r) == Op::Return);
            }
        }
        Op::Const { value } => {
            if ty.is_value() && ty.normalize(value) != value {
                out.push(format!("constant {value} is not normalized to {ty}"));
            }
        }
        Op::Bin(_) | Op::FBin(_) => {
            want(0, &ty.to_string(), t(0) == ty);
            want(1, &ty.to_string(), t(1) == ty);
        }
        Op::Un(_) | Op::FUn(_) => want(0, &ty.to_string(), t(0) == ty),
        Op::Cmp(_) => {
            want(0, "an integer or ptr", t(0).is_int_or_ptr());
            want(1, &format!("{} like input 0", t(0)), t(1) == t(0));
        }
        Op::FCmp(_) => {
            want(0, "a float", t(0).is_float());
            want(1, &format!("{} like input 0", t(0)), t(1) == t(0));
        }
        Op::FConv(c) => {
            if !fconv_types_ok(c, t(0), ty) {
                out.push(format!("cannot {} {} to {ty}", op.mnemonic(), t(0)));
            }
        }
        Op::FFits { bits, .. } => {
            want(0, "a float", t(0).is_float());
            if !fits_bits_ok(bits) {
                out.push(format!("tests for {bits}-bit integers (8, 16, 32 or 64)"));
            }
        }
        Op::Conv(c) => {
            if !conv_widths_ok(c, t(0), ty) {
                out.push(format!("cannot {} {} to {ty}", op.mnemonic(), t(0)));
            }
        }
        Op::Select => {
            want(0, "an integer", t(0).is_int());
            want(1, &ty.to_string(), t(1) == ty);
            want(2, &ty.to_string(), t(2) == ty);
        }
        Op::PtrAdd => {
            want(0, "ptr", t(0) == Type::Ptr);
            want(1, "i64", t(1) == Type::I64);
        }
        Op::Phi { .. } => {
            let region = ins[0];
            match g.op(region) {
                Op::Region => {
                    let expected = 1 + g.arity(region);
                    if ins.len() != expected {
                        out.push(format!(
                            "has {} inputs, but its region {region} has {} predecessors (expected {expected})",
                            ins.len(),
                            g.arity(region)
                        ));
                    }
                }
                Op::Loop { .. } => {
                    if ins.len() == 2 {
                        out.push("loop phi back edge is not set".into());
                    } else if ins.len() != 3 {
                        out.push(format!("loop phi has {} inputs, expected 3", ins.len()));
                    }
                }
                _ => want(0, "a region or loop", false),
            }
            for i in 1..ins.len() {
                want(i, &ty.to_string(), t(i) == ty);
            }
        }
        Op::Load { .. } | Op::ClassLoad { .. } => {
            want(0, "control flow", is_flow(g, ins[0]));
            want(1, "mem", t(1) == Type::Mem);
            want(2, "ptr", t(2) == Type::Ptr);
        }
        Op::Store { .. } | Op::ClassStore { .. } => {
            want(0, "control flow", is_flow(g, ins[0]));
            want(1, "mem", t(1) == Type::Mem);
            want(2, "ptr", t(2) == Type::Ptr);
            want(3, "a value", t(3).is_value());
        }
        Op::Call { .. } => {
            want(0, "control flow", is_flow(g, ins[0]));
            want(1, "mem", t(1) == Type::Mem);
            for i in 2..ins.len() {
                want(i, "a value", t(i).is_value());
            }
        }
        Op::CallDirect { sig, .. } | Op::CallIndirect { sig } => {
            want(0, "control flow", is_flow(g, ins[0]));
            want(1, "mem", t(1) == Type::Mem);
            let from = op.call_args_from().unwrap_or(2);
            if from == 3 {
                want(2, "ptr (the callee's address)", t(2) == Type::Ptr);
            }
            for (k, p) in sig.params().into_iter().enumerate() {
                want(from + k, &format!("{p} (parameter {k})"), t(from + k) == p);
            }
        }
    }
    out.append(&mut bad_inputs);
}

/// A projection must name an existing part of its tuple with that part's type.
fn check_proj(g: &Graph, tuple: NodeId, index: u32, ty: Type, out: &mut Vec<String>) {
    let expected: Option<(&str, bool)> = match (g.op(tuple), index) {
        (Op::Start, 0) | (Op::If, 0 | 1) => Some(("ctrl", ty == Type::Ctrl)),
        (op, 0) if op.is_call() => Some(("mem", ty == Type::Mem)),
        (Op::Start, 1) => Some(("mem", ty == Type::Mem)),
        (Op::Start, i) => match g.signature() {
            None => Some(("a value type", ty.is_value())),
            Some(sig) => sig
                .param(i as usize - 2)
                .map(|p| ("the signature's parameter type", ty == p)),
        },
        // A host call's results are in the host table, not the graph.
        (Op::Call { .. }, _) => Some(("a value type", ty.is_value())),
        (Op::CallDirect { sig, .. } | Op::CallIndirect { sig }, i) => sig
            .result(i as usize - 1)
            .map(|r| ("the signature's result type", ty == r)),
        (Op::If, _) => None,
        (other, _) => {
            out.push(format!(
                "projects {tuple}, a {} that is not a tuple producer",
                other.mnemonic()
            ));
            return;
        }
    };
    match expected {
        None => out.push(format!(
            "index {index} does not exist on {} {tuple}",
            g.op(tuple).mnemonic()
        )),
        Some((what, false)) => out.push(format!("has type {ty}, expected {what} for part {index}")),
        Some((_, true)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::BinOp;

    /// A small well-formed graph with a loop; returns it and interesting ids.
    fn good() -> (Graph, NodeId, NodeId) {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let lp = g.loop_header(1, e.ctrl).unwrap();
        let phi = g.loop_phi(lp, 0, Type::I64, x).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let inc = g.add(phi, one).unwrap();
        let (again, out) = g.branch(lp, inc).unwrap();
        g.set_back_input(lp, again).unwrap();
        g.set_back_input(phi, inc).unwrap();
        let r = g.ret(out, e.mem, inc).unwrap();
        g.finish(&[r]).unwrap();
        (g, x, e.ctrl)
    }

    fn problems(g: &Graph) -> Vec<String> {
        match verify(g) {
            Ok(()) => vec![],
            Err(es) => es.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_a_well_formed_graph() {
        assert_eq!(problems(&good().0), Vec::<String>::new());
    }

    #[test]
    fn float_operations_take_floats_and_integer_ones_do_not() {
        use crate::op::{FCmpOp, FConvOp, FitsOp};
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let f = g.param(e.start, 0, Type::F64).unwrap();
        let i = g.param(e.start, 1, Type::I64).unwrap();
        let nodes = [
            g.intern(Op::Bin(BinOp::Add), Type::F64, &[f, f]).unwrap(),
            g.intern(Op::Cmp(crate::CmpOp::Eq), Type::I8, &[f, f])
                .unwrap(),
            g.intern(Op::FBin(crate::FBinOp::Add), Type::I64, &[i, i])
                .unwrap(),
            g.intern(Op::FCmp(FCmpOp::Lt), Type::I8, &[i, i]).unwrap(),
            g.intern(Op::FConv(FConvOp::Bitcast), Type::I32, &[f])
                .unwrap(),
            g.intern(Op::FConv(FConvOp::Promote), Type::F64, &[f])
                .unwrap(),
            g.intern(Op::Conv(crate::ConvOp::Trunc), Type::F32, &[f])
                .unwrap(),
            g.intern(
                Op::FFits {
                    op: FitsOp::ExactS,
                    bits: 7,
                },
                Type::I8,
                &[f],
            )
            .unwrap(),
        ];
        let good = [
            g.intern(Op::FConv(FConvOp::Bitcast), Type::I64, &[f])
                .unwrap(),
            g.intern(Op::FConv(FConvOp::SToF), Type::F32, &[i]).unwrap(),
            g.intern(
                Op::FFits {
                    op: FitsOp::TruncU,
                    bits: 64,
                },
                Type::I8,
                &[f],
            )
            .unwrap(),
        ];
        let mut mem = e.mem;
        for (k, &n) in nodes.iter().chain(&good).enumerate() {
            mem = g.store(e.ctrl, mem, i, 8 * k as i32, n).unwrap();
        }
        // `i` used as a pointer is wrong too, but reported once per store.
        let r = g.ret(e.ctrl, mem, i).unwrap();
        g.finish(&[r]).unwrap();
        let all = problems(&g);
        for n in nodes {
            assert!(
                all.iter().any(|p| p.starts_with(&format!("{n} "))),
                "{n} not reported: {all:?}"
            );
        }
        for n in good {
            assert!(
                !all.iter().any(|p| p.starts_with(&format!("{n} "))),
                "{all:?}"
            );
        }
    }

    #[test]
    fn reports_missing_end() {
        let mut g = Graph::new();
        g.entry().unwrap();
        assert_eq!(
            problems(&g),
            vec!["graph: no End was set (Graph::finish)".to_string()]
        );
    }

    #[test]
    fn verify_errors_show_a_count_and_the_first_five() {
        let problem = |i: u32| VerifyError {
            node: None,
            op: None,
            addr: None,
            problem: format!("p{i}"),
        };
        let errs = VerifyErrors((0..7).map(problem).collect());
        assert_eq!(
            errs.to_string(),
            "7 problem(s): graph: p0; graph: p1; graph: p2; graph: p3; graph: p4"
        );
        let first = std::error::Error::source(&errs).unwrap();
        assert_eq!(first.to_string(), "graph: p0");
    }

    #[test]
    fn reports_type_errors_naming_the_node() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let y = g.param(e.start, 1, Type::I8).unwrap();
        let bad = g.intern(Op::Bin(BinOp::Add), Type::I64, &[x, y]).unwrap();
        let ld = g
            .intern(Op::Load { offset: 0 }, Type::I8, &[e.ctrl, e.mem, x])
            .unwrap();
        let sum = g.intern(Op::Bin(BinOp::Add), Type::I8, &[ld, y]).unwrap();
        let r1 = g.ret(e.ctrl, e.mem, bad).unwrap();
        let r2 = g.ret(e.ctrl, e.mem, sum).unwrap();
        g.finish(&[r1, r2]).unwrap();
        let p = problems(&g);
        let short = g.addr(bad).short();
        assert!(
            p.contains(&format!(
                "{bad} (add @{short}): input 1 ({y}) is a proj of type i8, expected i64"
            )),
            "{p:?}"
        );
        assert!(p
            .iter()
            .any(|s| s.starts_with(&format!("{ld} (load +0")) && s.contains("expected ptr")));
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn reports_unset_back_edges() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let lp = g.loop_header(1, e.ctrl).unwrap();
        let phi = g.loop_phi(lp, 0, Type::I64, x).unwrap();
        let r = g.ret(lp, e.mem, phi).unwrap();
        g.finish(&[r]).unwrap();
        let p = problems(&g);
        assert!(p
            .iter()
            .any(|s| s.starts_with(&format!("{lp} (loop")) && s.contains("back edge is not set")));
        assert!(p
            .iter()
            .any(|s| s.starts_with(&format!("{phi} (phi")) && s.contains("back edge is not set")));
    }

    #[test]
    fn reports_phi_region_mismatch_and_bad_projections() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let (t, f) = g.branch(e.ctrl, x).unwrap();
        let region = g.region(&[t, f]).unwrap();
        let phi = g
            .intern(Op::Phi { key: 0 }, Type::I64, &[region, x])
            .unwrap();
        let iff = g.input(t, 0);
        let p2 = g.intern(Op::Proj { index: 2 }, Type::Ctrl, &[iff]).unwrap();
        let pm = g
            .intern(Op::Proj { index: 1 }, Type::I64, &[e.start])
            .unwrap();
        let c = g.iconst(Type::I8, 3).unwrap();
        let pc = g.intern(Op::Proj { index: 0 }, Type::I8, &[c]).unwrap();
        let sum = g
            .intern(Op::Bin(BinOp::Add), Type::I64, &[phi, pm])
            .unwrap();
        let r = g.ret(region, e.mem, sum).unwrap();
        let r2 = g.ret(p2, e.mem, pc).unwrap();
        g.finish(&[r, r2]).unwrap();
        let p = problems(&g);
        assert!(
            p.iter()
                .any(|s| s.starts_with(&format!("{phi} ")) && s.contains("2 predecessors")),
            "{p:?}"
        );
        assert!(p
            .iter()
            .any(|s| s.starts_with(&format!("{p2} ")) && s.contains("index 2 does not exist")));
        assert!(p
            .iter()
            .any(|s| s.starts_with(&format!("{pm} ")) && s.contains("expected mem")));
        assert!(p
            .iter()
            .any(|s| s.starts_with(&format!("{pc} ")) && s.contains("not a tuple producer")));
    }

    #[test]
    fn reports_end_inputs_conv_widths_and_unnormalized_constants() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let widen = g
            .intern(Op::Conv(crate::ConvOp::Uext), Type::I8, &[x])
            .unwrap();
        let r = g.ret(e.ctrl, e.mem, widen).unwrap();
        let end = g.intern(Op::End, Type::Ctrl, &[r, e.ctrl]).unwrap();
        g.set_end(end);
        let p = problems(&g);
        assert!(
            p.iter().any(|s| s.contains("cannot uext i64 to i8")),
            "{p:?}"
        );
        assert!(p
            .iter()
            .any(|s| s.starts_with(&format!("{end} (end")) && s.contains("expected a return")));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn verifies_after_replacements() {
        let (mut g, x, _) = good();
        crate::opt::optimize(&mut g).unwrap();
        assert!(verify(&g).is_ok());
        // A replacement is seen through: replacing the parameter by a
        // constant of the same type keeps the graph valid.
        let c = g.iconst(Type::I64, 4).unwrap();
        g.replace(x, c).unwrap();
        assert!(verify(&g).is_ok());
    }

    #[test]
    fn calls_and_returns_are_checked_against_signatures() {
        use crate::sig::Signature;
        let sig = |p: &[Type], r: &[Type]| Signature::new(p, r).unwrap();
        let callee = sig(&[Type::Ptr, Type::I32], &[Type::I64, Type::F64]);
        let mut g = Graph::new();
        g.set_signature(sig(&[Type::Ptr, Type::I32], &[Type::I64]));
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let x = g.param(e.start, 1, Type::I32).unwrap();
        let (m, r) = g.call_direct(e.ctrl, e.mem, 4, callee, &[p, x]).unwrap();
        let (m, r2) = g.call_indirect(e.ctrl, m, p, callee, &[p, x]).unwrap();
        let (m, h) = g
            .call_host(e.ctrl, m, 0, &[x], &[Type::I8, Type::F32])
            .unwrap();
        let ret = g.ret_values(e.ctrl, m, &[r[0]]).unwrap();
        g.finish(&[ret]).unwrap();
        assert_eq!(problems(&g), Vec::<String>::new());
        assert_eq!((r.len(), r2.len(), h.len()), (2, 2, 2));

        // Arguments of the wrong type or number, a result index past the
        // signature or of the wrong type, a parameter the signature lacks.
        let bad = [
            g.intern(
                Op::CallDirect {
                    callee: 4,
                    sig: callee,
                },
                Type::Tuple,
                &[e.ctrl, m, x, x],
            )
            .unwrap(),
            g.intern(
                Op::CallIndirect { sig: callee },
                Type::Tuple,
                &[e.ctrl, m, p, p],
            )
            .unwrap(),
            g.intern(
                Op::CallIndirect { sig: callee },
                Type::Tuple,
                &[e.ctrl, m, x, p, x],
            )
            .unwrap(),
        ];
        let call = g.resolve(g.input(r[0], 0));
        let projs = [
            g.intern(Op::Proj { index: 3 }, Type::I64, &[call]).unwrap(),
            g.intern(Op::Proj { index: 2 }, Type::I64, &[call]).unwrap(),
            g.intern(Op::Proj { index: 4 }, Type::I64, &[e.start])
                .unwrap(),
            g.intern(Op::Proj { index: 3 }, Type::I64, &[e.start])
                .unwrap(),
        ];
        let two = g.ret_values(e.ctrl, m, &[r[0], r[0]]).unwrap();
        let wrong = g.ret_values(e.ctrl, m, &[r[1]]).unwrap();
        // The bad nodes are not live, so they are checked one by one.
        let mut msgs = Vec::new();
        for n in [two, wrong].into_iter().chain(bad).chain(projs) {
            let ins: Vec<NodeId> = g.inputs(n).iter().map(|&i| g.resolve(i)).collect();
            let mut out = Vec::new();
            check_node(&g, n, &ins, &mut out);
            assert!(!out.is_empty(), "{n} ({}) passed", g.op(n));
            msgs.push(out.join("; "));
        }
        let all = msgs.join("\n");
        assert!(all.contains("wrong for return"), "{all}");
        assert!(all.contains("expected i64 (result 0)"), "{all}");
        assert!(all.contains("expected ptr (parameter 0)"), "{all}");
        assert!(all.contains("wrong for call_indirect"), "{all}");
        assert!(all.contains("ptr (the callee's address)"), "{all}");
        assert!(all.contains("index 3 does not exist"), "{all}");
        assert!(
            all.contains("expected the signature's result type"),
            "{all}"
        );
        assert!(all.contains("index 4 does not exist on start"), "{all}");
        assert!(
            all.contains("expected the signature's parameter type"),
            "{all}"
        );
    }
}
