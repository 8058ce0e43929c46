//! End to end with control flow: Brainfuck programs built the way the
//! front-end builds them (cell index and memory as SSA values, rotated
//! loops with loop phis, a region merging the skip and exit paths) run on a
//! small graph interpreter and must leave the same tape as a direct
//! Brainfuck interpreter, before and after `optimize`, with peepholes on or
//! off at construction. The graphs must verify.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use vssa::{CmpOp, Graph, NodeId, Op, Type};

const TAPE: i64 = 0x10_000;

// ---------------------------------------------------------------------------
// Building.
// ---------------------------------------------------------------------------

struct Bf {
    g: Graph,
    entry_ctrl: NodeId,
}

fn build(prog: &str, simplify: bool) -> Bf {
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    let e = g.entry().unwrap();
    let tape = g.param(e.start, 0, Type::Ptr).unwrap();
    let (mut ctrl, mut mem) = (e.ctrl, e.mem);
    let mut p = g.iconst(Type::I64, 0).unwrap();
    struct Open {
        header: NodeId,
        phi_mem: NodeId,
        phi_p: NodeId,
        skip: (NodeId, NodeId, NodeId),
    }
    let mut open: Vec<Open> = Vec::new();
    for (pc, ch) in prog.chars().enumerate() {
        let cell = |g: &mut Graph, p| g.ptr_add(tape, p).unwrap();
        match ch {
            '+' | '-' => {
                let c = cell(&mut g, p);
                let v = g.load(ctrl, mem, c, 0, Type::I8).unwrap();
                let k = g.iconst(Type::I8, if ch == '+' { 1 } else { -1 }).unwrap();
                let v = g.add(v, k).unwrap();
                mem = g.store(ctrl, mem, c, 0, v).unwrap();
            }
            '>' | '<' => {
                let k = g.iconst(Type::I64, if ch == '>' { 1 } else { -1 }).unwrap();
                p = g.add(p, k).unwrap();
            }
            '[' => {
                let c = cell(&mut g, p);
                let v = g.load(ctrl, mem, c, 0, Type::I8).unwrap();
                let (enter, skip) = g.branch(ctrl, v).unwrap();
                let header = g.loop_header(pc as u64, enter).unwrap();
                let phi_mem = g.loop_phi(header, 0, Type::Mem, mem).unwrap();
                let phi_p = g.loop_phi(header, 1, Type::I64, p).unwrap();
                open.push(Open {
                    header,
                    phi_mem,
                    phi_p,
                    skip: (skip, mem, p),
                });
                (ctrl, mem, p) = (header, phi_mem, phi_p);
            }
            ']' => {
                let lp = open.pop().expect("balanced");
                let c = cell(&mut g, p);
                let v = g.load(ctrl, mem, c, 0, Type::I8).unwrap();
                // Also exercise Cmp/Select on the way: branch on (v != 0).
                let zero = g.iconst(Type::I8, 0).unwrap();
                let nz = g.cmp(CmpOp::Ne, v, zero).unwrap();
                let (again, leave) = g.branch(ctrl, nz).unwrap();
                g.set_back_input(lp.header, again).unwrap();
                g.set_back_input(lp.phi_mem, mem).unwrap();
                g.set_back_input(lp.phi_p, p).unwrap();
                let (s_ctrl, s_mem, s_p) = lp.skip;
                let region = g.region(&[s_ctrl, leave]).unwrap();
                mem = g.phi(region, Type::Mem, &[s_mem, mem]).unwrap();
                p = g.phi(region, Type::I64, &[s_p, p]).unwrap();
                ctrl = region;
            }
            _ => {}
        }
    }
    assert!(open.is_empty());
    let r = g.ret(ctrl, mem, p).unwrap();
    g.finish(&[r]).unwrap();
    Bf {
        g,
        entry_ctrl: e.ctrl,
    }
}

// ---------------------------------------------------------------------------
// Running.
// ---------------------------------------------------------------------------

type Memory = Rc<BTreeMap<u64, u8>>;

#[derive(Clone, Debug)]
enum Val {
    Int(i64),
    Mem(Memory),
}

/// Evaluates a data node in the current context (phi values fixed).
fn eval(
    g: &Graph,
    root: NodeId,
    phis: &HashMap<NodeId, Val>,
    memo: &mut HashMap<NodeId, Val>,
    params: &[i64],
) -> Val {
    let mut stack = vec![(root, false)];
    while let Some((n, ready)) = stack.pop() {
        if memo.contains_key(&n) {
            continue;
        }
        if let Op::Phi { .. } = g.op(n) {
            memo.insert(
                n,
                phis.get(&n)
                    .unwrap_or_else(|| panic!("{n} read before its block ran"))
                    .clone(),
            );
            continue;
        }
        let ins = g.inputs(n);
        let data: Vec<NodeId> = match g.op(n) {
            Op::Load { .. } | Op::Store { .. } => ins[1..].to_vec(),
            Op::Proj { .. } => vec![],
            _ => ins.to_vec(),
        };
        if !ready {
            stack.push((n, true));
            stack.extend(
                data.iter()
                    .filter(|i| !memo.contains_key(i))
                    .map(|&i| (i, false)),
            );
            continue;
        }
        let int = |i: usize| match &memo[&ins[i]] {
            Val::Int(v) => *v,
            other => panic!("{n}: input {i} is {other:?}"),
        };
        let ty = g.ty(n);
        let v = match g.op(n) {
            Op::Proj { index: 1 } => Val::Mem(Rc::new(BTreeMap::new())),
            Op::Proj { index } => Val::Int(params[index as usize - 2]),
            Op::Const { value } => Val::Int(value),
            Op::Bin(op) => Val::Int(vssa::eval::eval_bin(op, ty, int(0), int(1))),
            Op::Cmp(op) => Val::Int(i64::from(vssa::eval::eval_cmp(
                op,
                g.ty(ins[0]),
                int(0),
                int(1),
            ))),
            Op::Select => Val::Int(if int(0) != 0 { int(1) } else { int(2) }),
            Op::PtrAdd => Val::Int(int(0).wrapping_add(int(1))),
            Op::Load { offset } => {
                let Val::Mem(m) = &memo[&ins[1]] else {
                    panic!()
                };
                let a = (int(2) + i64::from(offset)) as u64;
                Val::Int(ty.normalize(i64::from(*m.get(&a).unwrap_or(&0))))
            }
            Op::Store { offset } => {
                let Val::Mem(m) = &memo[&ins[1]] else {
                    panic!()
                };
                assert_eq!(g.ty(ins[3]), Type::I8, "only bytes in these programs");
                let mut m2 = (**m).clone();
                m2.insert((int(2) + i64::from(offset)) as u64, int(3) as u8);
                Val::Mem(Rc::new(m2))
            }
            other => panic!("unexpected {other:?} in data"),
        };
        memo.insert(n, v);
    }
    memo[&root].clone()
}

/// Runs the graph's control flow from the entry; `None` past `max_steps`
/// block transitions. Returns the final memory and the returned value.
fn run(bf: &Bf, max_steps: usize) -> Option<(BTreeMap<u64, u8>, i64)> {
    let g = &bf.g;
    let params = [TAPE];
    let users = g.users();
    let mut phis: HashMap<NodeId, Val> = HashMap::new();
    let mut memo: HashMap<NodeId, Val> = HashMap::new();
    let mut ctrl = g.resolve(bf.entry_ctrl);
    for _ in 0..max_steps {
        // The one control node that continues from `ctrl`.
        let next: Vec<NodeId> = users[ctrl.index()]
            .iter()
            .copied()
            .filter(|&u| matches!(g.op(u), Op::If | Op::Region | Op::Loop { .. } | Op::Return))
            .collect();
        let &[next] = next.as_slice() else {
            panic!("{ctrl} has control users {next:?}")
        };
        match g.op(next) {
            Op::If => {
                let Val::Int(c) = eval(g, g.input(next, 1), &phis, &mut memo, &params) else {
                    panic!()
                };
                let want = if c != 0 { 0 } else { 1 };
                ctrl = users[next.index()]
                    .iter()
                    .copied()
                    .find(|&u| g.op(u) == Op::Proj { index: want })
                    .expect("both projections are live");
            }
            Op::Region | Op::Loop { .. } => {
                let slot = g.inputs(next).iter().position(|&i| i == ctrl).unwrap();
                let mut incoming = Vec::new();
                for &u in &users[next.index()] {
                    if matches!(g.op(u), Op::Phi { .. }) && g.input(u, 0) == next {
                        incoming
                            .push((u, eval(g, g.input(u, slot + 1), &phis, &mut memo, &params)));
                    }
                }
                phis.extend(incoming);
                memo.clear();
                ctrl = next;
            }
            Op::Return => {
                let Val::Mem(m) = eval(g, g.input(next, 1), &phis, &mut memo, &params) else {
                    panic!()
                };
                let Val::Int(v) = eval(g, g.input(next, 2), &phis, &mut memo, &params) else {
                    panic!()
                };
                return Some(((*m).clone(), v));
            }
            _ => unreachable!(),
        }
    }
    None
}

/// The reference: a plain Brainfuck interpreter on a zeroed tape.
fn reference(prog: &str, max_steps: usize) -> Option<(BTreeMap<u64, u8>, i64)> {
    let code: Vec<char> = prog.chars().collect();
    let mut jump = vec![0; code.len()];
    let mut st = Vec::new();
    for (i, &c) in code.iter().enumerate() {
        if c == '[' {
            st.push(i);
        } else if c == ']' {
            let o = st.pop()?;
            jump[o] = i;
            jump[i] = o;
        }
    }
    let mut tape: BTreeMap<u64, u8> = BTreeMap::new();
    let (mut pc, mut p, mut steps) = (0usize, 0i64, 0usize);
    while pc < code.len() {
        steps += 1;
        if steps > max_steps {
            return None;
        }
        let a = (TAPE + p) as u64;
        let cell = *tape.get(&a).unwrap_or(&0);
        match code[pc] {
            '+' => drop(tape.insert(a, cell.wrapping_add(1))),
            '-' => drop(tape.insert(a, cell.wrapping_sub(1))),
            '>' => p += 1,
            '<' => p -= 1,
            '[' if cell == 0 => pc = jump[pc],
            ']' if cell != 0 => pc = jump[pc],
            _ => {}
        }
        pc += 1;
    }
    Some((tape, p))
}

fn same_tape(a: &BTreeMap<u64, u8>, b: &BTreeMap<u64, u8>) -> bool {
    a.keys()
        .chain(b.keys())
        .all(|k| a.get(k).copied().unwrap_or(0) == b.get(k).copied().unwrap_or(0))
}

fn check(prog: &str) -> Result<(), TestCaseError> {
    let Some((want_tape, want_p)) = reference(prog, 20_000) else {
        return Ok(()); // runs too long: not a useful case
    };
    for simplify in [true, false] {
        let mut bf = build(prog, simplify);
        for phase in ["built", "optimized", "promoted", "closed"] {
            if phase == "optimized" {
                let stats = vssa::optimize(&mut bf.g).unwrap();
                prop_assert!(stats.converged);
            }
            if phase == "promoted" {
                vssa::promote(&mut bf.g).unwrap();
                let stats = vssa::optimize(&mut bf.g).unwrap();
                prop_assert!(stats.converged);
            }
            if phase == "closed" {
                vssa::closed_forms(&mut bf.g).unwrap();
                let stats = vssa::optimize(&mut bf.g).unwrap();
                prop_assert!(stats.converged);
            }
            if let Err(errs) = vssa::verify(&bf.g) {
                let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                return Err(TestCaseError::fail(format!("{prog} {phase}: {errs:?}")));
            }
            let Some((tape, p)) = run(&bf, 100_000) else {
                return Err(TestCaseError::fail(format!(
                    "{prog} {phase}: graph ran too long"
                )));
            };
            prop_assert!(
                same_tape(&tape, &want_tape) && p == want_p,
                "{} (simplify {}, {}): tape {:?} p {} vs {:?} p {}\n{}",
                prog,
                simplify,
                phase,
                tape,
                p,
                want_tape,
                want_p,
                vssa::print::print(&bf.g)
            );
        }
    }
    Ok(())
}

/// Random balanced programs over `+-<>[]`.
fn program() -> impl Strategy<Value = String> {
    let leaf = prop::collection::vec(
        prop::sample::select(vec!['+', '-', '>', '<', '+', '+']),
        0..8,
    )
    .prop_map(|v| v.into_iter().collect::<String>());
    leaf.prop_recursive(4, 64, 4, |inner| {
        prop::collection::vec(
            prop_oneof![inner.clone(), inner.prop_map(|s| format!("[{s}]"))],
            1..4,
        )
        .prop_map(|v| v.concat())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn random_programs_agree(prog in program()) {
        check(&prog)?;
    }
}

#[test]
fn known_programs_agree() {
    for prog in [
        "+>+<+",
        "+++[>++<-]>",
        "++[>+++[>++<-]<-]>>",
        "+[-]",
        "[>+<-]",
        "++++[>+>++<<-]>[<+>-]",
        "+>>+++[<+>-]<<[->+<]",
        "-[>+<-----]>",
    ] {
        check(prog).unwrap();
    }
}

/// A clear loop's cell index does not change: its phi collapses, and the
/// loop body is one load and one store.
#[test]
fn clear_loop_index_phi_collapses() {
    let mut bf = build(">+[-]", true);
    let before = bf.g.live_nodes().len();
    let stats = vssa::optimize(&mut bf.g).unwrap();
    assert!(stats.replaced >= 1, "{stats:?}");
    assert!(bf.g.live_nodes().len() < before);
    let live = bf.g.live_nodes();
    let p_phis = live
        .iter()
        .filter(|&&n| matches!(bf.g.op(n), Op::Phi { .. }) && bf.g.ty(n) == Type::I64)
        .count();
    assert_eq!(p_phis, 0, "{}", vssa::print::print(&bf.g));
    let loads = live
        .iter()
        .filter(|&&n| matches!(bf.g.op(n), Op::Load { .. }))
        .count();
    let stores = live
        .iter()
        .filter(|&&n| matches!(bf.g.op(n), Op::Store { .. }))
        .count();
    // Entry cell 1 (+1 stored, forwarded into the `[` test), body: load, store.
    assert_eq!((loads, stores), (2, 2), "{}", vssa::print::print(&bf.g));
}

/// 100 000 nested loops: building, optimizing, verifying, printing and
/// exporting never recurse (and stay linear).
#[test]
fn deeply_nested_loops() {
    for (depth, simplify) in [(100_000, true), (10_000, false)] {
        let prog = format!("{}+{}", "[".repeat(depth), "]".repeat(depth));
        let mut bf = build(&prog, simplify);
        vssa::verify(&bf.g).unwrap();
        let stats = vssa::optimize(&mut bf.g).unwrap();
        assert!(stats.converged);
        let promoted = vssa::promote(&mut bf.g).unwrap();
        // Only the innermost loops are low enough to carry values.
        assert!(promoted.loops <= vssa::MAX_PROMOTE_HEIGHT, "{promoted:?}");
        vssa::verify(&bf.g).unwrap();
        let _ = vssa::print::print(&bf.g);
        let _ = vssa::dot::to_dot(&bf.g, "deep");
    }
}
