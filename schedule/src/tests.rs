//! Whole-pipeline tests of `schedule`: hand-built graphs, a validity
//! checker that recomputes dominators naively (so it shares no code with
//! the scheduler's fast structures), and a property test over random
//! structured programs.

use crate::order::provably_disjoint;
use crate::*;
use proptest::prelude::*;
use std::collections::HashMap;
use vssa::{BinOp, CmpOp, Graph, NodeId, Op, Type};

fn successors(t: &Terminator) -> Vec<usize> {
    match *t {
        Terminator::Jump { target } => vec![target.index()],
        Terminator::Branch {
            if_true, if_false, ..
        } => vec![if_true.index(), if_false.index()],
        Terminator::Return { .. } => vec![],
    }
}

/// Whether a live node must appear in the schedule (phis or nodes).
fn is_scheduled_kind(g: &Graph, v: NodeId) -> bool {
    match g.op(v) {
        Op::Start | Op::Region | Op::Loop { .. } | Op::If | Op::Return | Op::End => false,
        Op::Proj { index } => match g.op(g.input(v, 0)) {
            Op::If => false,
            Op::Start => index != 0,
            _ => true,
        },
        _ => true,
    }
}

/// Checks everything the backend relies on; panics with a dump otherwise.
fn check(g: &Graph, s: &Schedule) {
    let dump = print(g, s);
    let nb = s.blocks.len();
    assert!(nb > 0, "no blocks");

    // Predecessors from the terminators must match `preds` (as multisets).
    let mut preds_t: Vec<Vec<usize>> = vec![Vec::new(); nb];
    for (b, blk) in s.blocks.iter().enumerate() {
        for t in successors(&blk.term) {
            assert!(t < nb && t != 0, "bad target {t}\n{dump}");
            preds_t[t].push(b);
        }
    }
    for (b, blk) in s.blocks.iter().enumerate() {
        let mut a: Vec<usize> = blk.preds.iter().map(|p| p.index()).collect();
        let mut c = preds_t[b].clone();
        a.sort();
        c.sort();
        assert_eq!(a, c, "preds of b{b}\n{dump}");
        // Preds follow the head's control inputs.
        if matches!(g.op(blk.head), Op::Region | Op::Loop { .. }) {
            for (i, p) in blk.preds.iter().enumerate() {
                let ctl = g.input(blk.head, i);
                assert_eq!(s.blocks[p.index()].head, ctl, "pred {i} of b{b}\n{dump}");
            }
        }
    }

    // Naive dominator sets: dom[b][d] = d dominates b.
    let mut dom = vec![vec![true; nb]; nb];
    dom[0] = (0..nb).map(|d| d == 0).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for b in 1..nb {
            let mut new = vec![true; nb];
            for &p in &preds_t[b] {
                for d in 0..nb {
                    new[d] &= dom[p][d];
                }
            }
            new[b] = true;
            if new != dom[b] {
                dom[b] = new;
                changed = true;
            }
        }
    }
    for (b, doms) in dom.iter().enumerate() {
        for (d, &yes) in doms.iter().enumerate() {
            assert!(
                !yes || d <= b,
                "b{d} dominates b{b} but comes after it\n{dump}"
            );
        }
    }

    // Every scheduled node exactly once; positions.
    let mut pos: HashMap<NodeId, (usize, Option<usize>)> = HashMap::new();
    for (b, blk) in s.blocks.iter().enumerate() {
        for &p in &blk.phis {
            assert!(matches!(g.op(p), Op::Phi { .. }));
            assert_eq!(g.input(p, 0), blk.head, "phi {p} not on its region\n{dump}");
            assert!(pos.insert(p, (b, None)).is_none(), "{p} twice\n{dump}");
        }
        for (i, &n) in blk.nodes.iter().enumerate() {
            assert!(is_scheduled_kind(g, n) && !matches!(g.op(n), Op::Phi { .. }));
            assert!(pos.insert(n, (b, Some(i))).is_none(), "{n} twice\n{dump}");
        }
    }
    for v in g.live_nodes() {
        if is_scheduled_kind(g, v) {
            assert!(pos.contains_key(&v), "live {v} not scheduled\n{dump}");
        }
    }

    // Definitions are available at every use.
    let avail = |d: NodeId, b: usize, at: Option<usize>, what: &str| {
        let &(db, dp) = pos
            .get(&d)
            .unwrap_or_else(|| panic!("{d} used by {what} is not scheduled\n{dump}"));
        if db == b {
            match (dp, at) {
                (None, _) => {}       // a phi of the block
                (Some(_), None) => {} // used at the block's end
                (Some(dp), Some(at)) => assert!(dp < at, "{d} after its use {what}\n{dump}"),
            }
        } else {
            assert!(
                dom[b][db],
                "{d} (b{db}) does not dominate {what} (b{b})\n{dump}"
            );
        }
    };
    for (b, blk) in s.blocks.iter().enumerate() {
        for &p in &blk.phis {
            for i in 1..g.arity(p) {
                let pred = blk.preds[i - 1].index();
                avail(g.input(p, i), pred, None, &format!("{p}"));
            }
        }
        for (i, &n) in blk.nodes.iter().enumerate() {
            let first = match g.op(n) {
                op if op.access().is_some() || matches!(op, Op::Call { .. }) => {
                    assert_eq!(g.input(n, 0), blk.head, "{n} moved off its control\n{dump}");
                    1
                }
                Op::Proj { .. } if g.op(g.input(n, 0)) == Op::Start => {
                    assert_eq!(b, 0, "start projection outside the entry\n{dump}");
                    continue;
                }
                _ => 0,
            };
            for slot in first..g.arity(n) {
                avail(g.input(n, slot), b, Some(i), &format!("{n}"));
            }
        }
        match blk.term {
            Terminator::Branch { cond, .. } => avail(cond, b, None, "a branch"),
            Terminator::Return { ret, value } => {
                assert_eq!(g.input(ret, 0), blk.head);
                avail(value, b, None, "a return");
                avail(g.input(ret, 1), b, None, "a return's memory");
            }
            Terminator::Jump { .. } => {}
        }
    }

    // Start's projections open the entry block.
    let entry = &s.blocks[0];
    let is_sp = |n: NodeId| matches!(g.op(n), Op::Proj { .. }) && g.op(g.input(n, 0)) == Op::Start;
    let k = entry.nodes.iter().take_while(|&&n| is_sp(n)).count();
    assert!(entry.nodes[k..].iter().all(|&n| !is_sp(n)), "{dump}");

    // Anti-dependences: a load precedes the aliasing stores/calls that follow
    // its memory state, directly or behind stores disjoint from it (found by
    // an unbounded walk backwards from the store, unlike the scheduler).
    let follows_disjointly = |l: NodeId, e: NodeId| {
        let mut m = g.input(e, 1);
        loop {
            if m == g.input(l, 1) {
                return true;
            }
            if !provably_disjoint(g, l, m) {
                return false;
            }
            m = g.input(m, 1);
        }
    };
    for blk in &s.blocks {
        for (i, &l) in blk.nodes.iter().enumerate() {
            if !g.op(l).is_load() {
                continue;
            }
            for (j, &e) in blk.nodes.iter().enumerate() {
                let eff = g.op(e).is_store() || matches!(g.op(e), Op::Call { .. });
                if eff && !provably_disjoint(g, l, e) && follows_disjointly(l, e) {
                    assert!(i < j, "{l} must precede {e}\n{dump}");
                }
            }
        }
    }

    // Loop headers with a back edge are in a loop.
    for blk in &s.blocks {
        if matches!(g.op(blk.head), Op::Loop { .. }) && blk.preds.len() == 2 {
            assert!(blk.loop_depth >= 1, "{dump}");
        }
    }
}

fn new_graph() -> Graph {
    let mut g = Graph::new();
    g.set_simplify_on_build(false);
    g
}

/// The block holding `n`.
fn block_of(s: &Schedule, n: NodeId) -> usize {
    s.blocks
        .iter()
        .position(|b| b.nodes.contains(&n) || b.phis.contains(&n))
        .unwrap_or_else(|| panic!("{n} not scheduled"))
}

fn block_headed(s: &Schedule, head: NodeId) -> usize {
    s.blocks.iter().position(|b| b.head == head).unwrap()
}

fn pos_in(s: &Schedule, n: NodeId) -> usize {
    s.blocks[block_of(s, n)]
        .nodes
        .iter()
        .position(|&x| x == n)
        .unwrap()
}

#[test]
fn straight_line() {
    let mut g = new_graph();
    let c2 = g.iconst(Type::I64, 2).unwrap(); // built before the params
    let e = g.entry().unwrap();
    let a = g.param(e.start, 0, Type::I64).unwrap();
    let b = g.param(e.start, 1, Type::I64).unwrap();
    let base = g.param(e.start, 2, Type::Ptr).unwrap();
    let x = g.add(a, b).unwrap();
    let y = g.bin(BinOp::Mul, x, c2).unwrap();
    let m = g.store(e.ctrl, e.mem, base, 0, y).unwrap();
    let r = g.ret(e.ctrl, m, y).unwrap();
    g.finish(&[r]).unwrap();
    let s = schedule(&g).unwrap();
    check(&g, &s);
    assert_eq!(s.blocks.len(), 1);
    let b0 = &s.blocks[0];
    assert_eq!(b0.head, e.ctrl);
    assert!(b0.preds.is_empty() && b0.phis.is_empty());
    assert_eq!(b0.nodes, vec![e.mem, a, b, base, c2, x, y, m]);
    assert_eq!(b0.term, Terminator::Return { ret: r, value: y });
    let text = print(&g, &s);
    let want = format!(
        "b0 ({} proj 0) <- [] depth 0\n  {}: mem = proj 1 {}\n",
        e.ctrl, e.mem, e.start
    );
    assert!(text.starts_with(&want), "{text}");
    assert!(
        text.contains(&format!("  {y}: i64 = mul {x}, {c2}\n")),
        "{text}"
    );
    assert!(text.ends_with(&format!("  return {y} ({r})\n")), "{text}");
}

#[test]
fn diamond_with_phi_sinks_into_branches() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::I64).unwrap();
    let ten = g.iconst(Type::I64, 10).unwrap();
    let c = g.cmp(CmpOp::Slt, p, ten).unwrap();
    let (t, f) = g.branch(e.ctrl, c).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let x1 = g.add(p, one).unwrap();
    let two = g.iconst(Type::I64, 2).unwrap();
    let x2 = g.bin(BinOp::Mul, p, two).unwrap();
    let r = g.region(&[t, f]).unwrap();
    let phi = g.phi(r, Type::I64, &[x1, x2]).unwrap();
    let ret = g.ret(r, e.mem, phi).unwrap();
    g.finish(&[ret]).unwrap();
    let s = schedule(&g).unwrap();
    check(&g, &s);
    assert_eq!(s.blocks.len(), 4);
    let (bt, bf, br) = (
        block_headed(&s, t),
        block_headed(&s, f),
        block_headed(&s, r),
    );
    assert_eq!(block_of(&s, c), 0);
    assert_eq!(
        s.blocks[0].term,
        Terminator::Branch {
            cond: c,
            if_true: BlockId(bt as u32),
            if_false: BlockId(bf as u32)
        }
    );
    // Each arm's value (and its constant) is computed only on that arm.
    assert_eq!(block_of(&s, x1), bt);
    assert_eq!(block_of(&s, one), bt);
    assert_eq!(block_of(&s, x2), bf);
    assert_eq!(s.blocks[br].phis, vec![phi]);
    assert_eq!(
        s.blocks[br].preds,
        vec![BlockId(bt as u32), BlockId(bf as u32)]
    );
    assert_eq!(
        s.blocks[bt].term,
        Terminator::Jump {
            target: BlockId(br as u32)
        }
    );
    assert!(s.blocks.iter().all(|b| b.loop_depth == 0));
}

/// `for (i = 0; i < n; i++) acc += p * 3; return acc;`
#[test]
fn loop_invariant_is_hoisted() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::I64).unwrap();
    let n = g.param(e.start, 1, Type::I64).unwrap();
    let zero = g.iconst(Type::I64, 0).unwrap();
    let lp = g.loop_header(1, e.ctrl).unwrap();
    let i = g.loop_phi(lp, 0, Type::I64, zero).unwrap();
    let acc = g.loop_phi(lp, 1, Type::I64, zero).unwrap();
    let c = g.cmp(CmpOp::Slt, i, n).unwrap();
    let (body, exit) = g.branch(lp, c).unwrap();
    let three = g.iconst(Type::I64, 3).unwrap();
    let x = g.bin(BinOp::Mul, p, three).unwrap();
    let acc2 = g.add(acc, x).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let i2 = g.add(i, one).unwrap();
    g.set_back_input(lp, body).unwrap();
    g.set_back_input(i, i2).unwrap();
    g.set_back_input(acc, acc2).unwrap();
    let ret = g.ret(exit, e.mem, acc).unwrap();
    g.finish(&[ret]).unwrap();

    let s = schedule(&g).unwrap();
    check(&g, &s);
    let (bh, bb, bx) = (
        block_headed(&s, lp),
        block_headed(&s, body),
        block_headed(&s, exit),
    );
    assert_eq!(s.blocks[bh].loop_depth, 1);
    assert_eq!(s.blocks[bb].loop_depth, 1);
    assert_eq!(s.blocks[bx].loop_depth, 0);
    assert_eq!(s.blocks[bh].preds, vec![BlockId(0), BlockId(bb as u32)]);
    assert_eq!(s.blocks[bh].phis, vec![i, acc]);
    assert_eq!(s.blocks[block_of(&s, x)].loop_depth, 0);
    assert_eq!(block_of(&s, x), 0);
    assert_eq!(block_of(&s, three), 0);
    assert_eq!(block_of(&s, acc2), bb);
    assert_eq!(block_of(&s, i2), bb);
    assert_eq!(block_of(&s, c), bh);
}

#[test]
fn nested_loop_hoists_to_the_outer_body() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let n = g.param(e.start, 0, Type::I64).unwrap();
    let zero = g.iconst(Type::I64, 0).unwrap();
    let three = g.iconst(Type::I64, 3).unwrap();
    let lp1 = g.loop_header(1, e.ctrl).unwrap();
    let i = g.loop_phi(lp1, 0, Type::I64, zero).unwrap();
    let c1 = g.cmp(CmpOp::Slt, i, n).unwrap();
    let (b1, x1) = g.branch(lp1, c1).unwrap();
    let lp2 = g.loop_header(2, b1).unwrap();
    let j = g.loop_phi(lp2, 0, Type::I64, zero).unwrap();
    let c2 = g.cmp(CmpOp::Slt, j, n).unwrap();
    let (b2, x2) = g.branch(lp2, c2).unwrap();
    let y = g.bin(BinOp::Mul, i, three).unwrap(); // invariant in the inner loop only
    let j2 = g.add(j, y).unwrap();
    g.set_back_input(lp2, b2).unwrap();
    g.set_back_input(j, j2).unwrap();
    let i2 = g.add(i, j).unwrap();
    g.set_back_input(lp1, x2).unwrap();
    g.set_back_input(i, i2).unwrap();
    let ret = g.ret(x1, e.mem, i).unwrap();
    g.finish(&[ret]).unwrap();

    let s = schedule(&g).unwrap();
    check(&g, &s);
    let depth = |h: NodeId| s.blocks[block_headed(&s, h)].loop_depth;
    assert_eq!(
        [
            depth(e.ctrl),
            depth(lp1),
            depth(b1),
            depth(lp2),
            depth(b2),
            depth(x2),
            depth(x1)
        ],
        [0, 1, 1, 2, 2, 1, 0]
    );
    // y is computed once per outer iteration, in the inner loop's preheader.
    assert_eq!(block_of(&s, y), block_headed(&s, b1));
    assert_eq!(block_of(&s, j2), block_headed(&s, b2));
    assert_eq!(block_of(&s, i2), block_headed(&s, x2));
    assert_eq!(block_of(&s, three), 0);
}

#[test]
fn loads_and_stores_keep_memory_order() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let base = g.param(e.start, 0, Type::Ptr).unwrap();
    let v = g.iconst(Type::I64, 5).unwrap();
    let s1 = g.store(e.ctrl, e.mem, base, 0, v).unwrap();
    // Reads the state before s1 at the same bytes: must run before s1
    // although it was built after it.
    let l_alias = g.load(e.ctrl, e.mem, base, 0, Type::I64).unwrap();
    // Reads the state before s1 at other bytes (as a peephole would make
    // it): no constraint, so construction order puts it after s1.
    let l_disj = g.load(e.ctrl, e.mem, base, 8, Type::I64).unwrap();
    // Reads s1's state: after s1.
    let l_after = g.load(e.ctrl, s1, base, 0, Type::I64).unwrap();
    let sum = g.add(l_alias, l_disj).unwrap();
    let sum = g.add(sum, l_after).unwrap();
    let (cm, _) = g.call(e.ctrl, s1, 0, &[sum], None).unwrap();
    // Reads the state the call consumes: before the call.
    let l_before_call = g.load(e.ctrl, s1, base, 16, Type::I64).unwrap();
    let total = g.add(sum, l_before_call).unwrap();
    let ret = g.ret(e.ctrl, cm, total).unwrap();
    g.finish(&[ret]).unwrap();

    let s = schedule(&g).unwrap();
    check(&g, &s);
    let call = g.input(cm, 0);
    let p = |n| pos_in(&s, n);
    assert!(p(l_alias) < p(s1));
    assert!(p(s1) < p(l_disj), "{}", print(&g, &s));
    assert!(p(s1) < p(l_after));
    assert!(p(l_before_call) < p(call));
    assert!(p(call) < p(cm));
}

#[test]
fn unorderable_memory_is_an_error() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let base = g.param(e.start, 0, Type::Ptr).unwrap();
    let v = g.iconst(Type::I64, 5).unwrap();
    let s1 = g.store(e.ctrl, e.mem, base, 0, v).unwrap();
    let ptr2 = g.load(e.ctrl, s1, base, 16, Type::Ptr).unwrap();
    // Reads the state before s1 through a pointer loaded after s1: it may
    // alias s1, so it must run before s1 and after it.
    let l = g.load(e.ctrl, e.mem, ptr2, 0, Type::I64).unwrap();
    let ret = g.ret(e.ctrl, s1, l).unwrap();
    g.finish(&[ret]).unwrap();
    let err = schedule(&g).unwrap_err();
    assert!(
        matches!(
            err,
            ScheduleError::OrderCycle {
                block: BlockId(0),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no valid order in b0"), "{err}");
}

#[test]
fn value_from_one_arm_used_after_the_merge_is_an_error() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let base = g.param(e.start, 0, Type::Ptr).unwrap();
    let c = g.param(e.start, 1, Type::I8).unwrap();
    let (t, f) = g.branch(e.ctrl, c).unwrap();
    let x = g.load(t, e.mem, base, 0, Type::I64).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let y = g.add(x, one).unwrap();
    let r = g.region(&[t, f]).unwrap();
    let ret = g.ret(r, e.mem, y).unwrap();
    g.finish(&[ret]).unwrap();
    assert_eq!(
        schedule(&g).unwrap_err(),
        ScheduleError::NotDominated { def: y, user: ret }
    );
}

#[test]
fn self_dependent_value_is_a_data_cycle() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::I64).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let a = g.add(p, one).unwrap();
    let b = g.add(a, one).unwrap();
    g.replace(a, b).unwrap(); // b now reads itself
    let ret = g.ret(e.ctrl, e.mem, b).unwrap();
    g.finish(&[ret]).unwrap();
    assert_eq!(
        schedule(&g).unwrap_err(),
        ScheduleError::DataCycle { node: b }
    );
}

#[test]
fn phi_arity_mismatch_is_malformed() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let c = g.param(e.start, 0, Type::I8).unwrap();
    let (t, f) = g.branch(e.ctrl, c).unwrap();
    let r = g.region(&[t, f]).unwrap();
    let phi = g.phi(r, Type::I8, &[c]).unwrap();
    let ret = g.ret(r, e.mem, phi).unwrap();
    g.finish(&[ret]).unwrap();
    assert!(matches!(
        schedule(&g).unwrap_err(),
        ScheduleError::Malformed { node, .. } if node == phi
    ));
}

#[test]
fn unused_floating_nodes_are_not_scheduled() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::I64).unwrap();
    let dead = g.add(p, p).unwrap();
    let ret = g.ret(e.ctrl, e.mem, p).unwrap();
    g.finish(&[ret]).unwrap();
    let s = schedule(&g).unwrap();
    check(&g, &s);
    assert!(!s.blocks[0].nodes.contains(&dead));
    assert_eq!(s.block_of_nodes(g.len())[p.index()], Some(BlockId(0)));
}

/// `depth` nested loops; level k tests its phi against its own constant
/// (one use per level of a value defined at the entry).
fn deep_nest(depth: u64) -> (Graph, Vec<NodeId>, NodeId) {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::I64).unwrap();
    let one = g.iconst(Type::I64, 1).unwrap();
    let (mut ctrl, mut x) = (e.ctrl, p);
    let mut frames = Vec::new();
    let mut consts = Vec::new();
    let mut innermost = e.ctrl;
    for k in 0..depth {
        let lp = g.loop_header(k, ctrl).unwrap();
        let ph = g.loop_phi(lp, 0, Type::I64, x).unwrap();
        let ck = g.iconst(Type::I64, 1000 + k as i64).unwrap();
        let cond = g.cmp(CmpOp::Slt, ph, ck).unwrap();
        let (t, f) = g.branch(lp, cond).unwrap();
        frames.push((lp, ph, f));
        consts.push(ck);
        (ctrl, x, innermost) = (t, ph, lp);
    }
    while let Some((lp, ph, f)) = frames.pop() {
        let nx = g.add(x, one).unwrap();
        g.set_back_input(lp, ctrl).unwrap();
        g.set_back_input(ph, nx).unwrap();
        (ctrl, x) = (f, ph);
    }
    let ret = g.ret(ctrl, e.mem, x).unwrap();
    g.finish(&[ret]).unwrap();
    (g, consts, innermost)
}

#[test]
fn deep_nest_small_is_valid() {
    let (g, consts, inner) = deep_nest(6);
    let s = schedule(&g).unwrap();
    check(&g, &s);
    assert_eq!(s.blocks[block_headed(&s, inner)].loop_depth, 6);
    assert!(consts.iter().all(|&c| block_of(&s, c) == 0));
}

/// Runs on the default test thread (2 MiB stack in debug builds): every
/// pass must be iterative and near linear.
#[test]
fn hundred_thousand_nested_loops() {
    let n = 100_000;
    let (g, consts, inner) = deep_nest(n);
    let t0 = std::time::Instant::now();
    let s = schedule(&g).unwrap();
    let took = t0.elapsed();
    assert_eq!(s.blocks.len(), 3 * n as usize + 1);
    let at = s.block_of_nodes(g.len());
    assert_eq!(s.blocks[block_headed(&s, inner)].loop_depth, n as u32);
    assert!(consts.iter().all(|c| at[c.index()] == Some(BlockId(0))));
    assert!(took.as_secs() < 60, "scheduling took {took:?}");
    let again = schedule(&g).unwrap();
    assert!(again == s, "not deterministic");
}

// ---- property test over random structured programs ----

#[derive(Clone, Debug)]
enum Stmt {
    Bin(u8, u8, u8, u8),
    Const(u8, i8),
    Load(u8, u8),
    /// A load that reads the memory before the last store when their bytes
    /// are disjoint, as a peephole would build it.
    LoadSkip(u8, u8),
    Store(u8, u8),
    Call(u8, u8),
    If(u8),
    Else,
    EndIf,
    Loop(u8),
    EndLoop,
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let v = 0u8..4;
    prop_oneof![
        4 => (0u8..6, v.clone(), v.clone(), v.clone()).prop_map(|(o, d, a, b)| Stmt::Bin(o, d, a, b)),
        1 => (v.clone(), any::<i8>()).prop_map(|(d, k)| Stmt::Const(d, k)),
        2 => (v.clone(), 0u8..4).prop_map(|(d, s)| Stmt::Load(d, s)),
        2 => (v.clone(), 0u8..4).prop_map(|(d, s)| Stmt::LoadSkip(d, s)),
        2 => (v.clone(), 0u8..4).prop_map(|(d, s)| Stmt::Store(d, s)),
        1 => (v.clone(), v.clone()).prop_map(|(d, a)| Stmt::Call(d, a)),
        2 => v.clone().prop_map(Stmt::If),
        1 => Just(Stmt::Else),
        2 => Just(Stmt::EndIf),
        2 => v.prop_map(Stmt::Loop),
        2 => Just(Stmt::EndLoop),
    ]
}

#[derive(Clone, Copy)]
struct State {
    ctrl: NodeId,
    mem: NodeId,
    vars: [NodeId; 4],
}

enum Frame {
    If {
        other: NodeId,
        before: State,
        then_end: Option<State>,
    },
    Loop {
        lp: NodeId,
        mem: NodeId,
        vars: [NodeId; 4],
        exit: NodeId,
    },
}

/// Builds a function from `prog` (unbalanced constructs are ignored or
/// closed at the end), the way a front-end would: variables in SSA form,
/// phis at merges and loop headers.
fn build_program(prog: &[Stmt], simplify: bool) -> Graph {
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    let e = g.entry().unwrap();
    let base = g.param(e.start, 0, Type::Ptr).unwrap();
    let p0 = g.param(e.start, 1, Type::I64).unwrap();
    let p1 = g.param(e.start, 2, Type::I64).unwrap();
    let k1 = g.iconst(Type::I64, 1).unwrap();
    let k0 = g.iconst(Type::I64, 0).unwrap();
    let mut st = State {
        ctrl: e.ctrl,
        mem: e.mem,
        vars: [p0, p1, k1, k0],
    };
    let mut last_store: Option<(NodeId, i32)> = None;
    let mut frames: Vec<Frame> = Vec::new();
    let mut key = 0u64;
    let ops = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::And,
        BinOp::Xor,
        BinOp::Shl,
    ];

    let merge = |g: &mut Graph, a: State, b: State| -> State {
        let r = g.region(&[a.ctrl, b.ctrl]).unwrap();
        let mut phi = |ty, x: NodeId, y: NodeId| {
            if x == y {
                x
            } else {
                g.phi(r, ty, &[x, y]).unwrap()
            }
        };
        let mem = phi(Type::Mem, a.mem, b.mem);
        let mut vars = a.vars;
        for (k, v) in vars.iter_mut().enumerate() {
            *v = phi(Type::I64, a.vars[k], b.vars[k]);
        }
        State { ctrl: r, mem, vars }
    };
    let end_loop = |g: &mut Graph, st: State, f: Frame| -> State {
        let Frame::Loop {
            lp,
            mem,
            vars,
            exit,
        } = f
        else {
            unreachable!()
        };
        g.set_back_input(lp, st.ctrl).unwrap();
        g.set_back_input(mem, st.mem).unwrap();
        for (&phi, &v) in vars.iter().zip(&st.vars) {
            g.set_back_input(phi, v).unwrap();
        }
        State {
            ctrl: exit,
            mem,
            vars,
        }
    };
    let end_if = |g: &mut Graph, st: State, f: Frame| -> State {
        let Frame::If {
            other,
            before,
            then_end,
        } = f
        else {
            unreachable!()
        };
        match then_end {
            None => merge(
                g,
                st,
                State {
                    ctrl: other,
                    ..before
                },
            ),
            Some(t) => merge(g, t, st),
        }
    };

    for s in prog {
        match *s {
            Stmt::Bin(o, d, a, b) => {
                let (a, b) = (st.vars[a as usize], st.vars[b as usize]);
                st.vars[d as usize] = g.bin(ops[o as usize], a, b).unwrap();
            }
            Stmt::Const(d, k) => st.vars[d as usize] = g.iconst(Type::I64, k as i64).unwrap(),
            Stmt::Load(d, slot) => {
                let off = slot as i32 * 4;
                st.vars[d as usize] = g.load(st.ctrl, st.mem, base, off, Type::I64).unwrap();
            }
            Stmt::LoadSkip(d, slot) => {
                let off = slot as i32 * 4;
                let mem = match last_store {
                    Some((before, soff)) if off + 8 <= soff || soff + 8 <= off => before,
                    _ => st.mem,
                };
                st.vars[d as usize] = g.load(st.ctrl, mem, base, off, Type::I64).unwrap();
            }
            Stmt::Store(v, slot) => {
                let off = slot as i32 * 4;
                let before = st.mem;
                st.mem = g
                    .store(st.ctrl, st.mem, base, off, st.vars[v as usize])
                    .unwrap();
                last_store = Some((before, off));
            }
            Stmt::Call(d, a) => {
                let (m, r) = g
                    .call(st.ctrl, st.mem, 0, &[st.vars[a as usize]], Some(Type::I64))
                    .unwrap();
                st.mem = m;
                st.vars[d as usize] = r.unwrap();
                last_store = None;
            }
            Stmt::If(c) => {
                let lim = g.iconst(Type::I64, 3).unwrap();
                let cond = g.cmp(CmpOp::Slt, st.vars[c as usize], lim).unwrap();
                let (t, f) = g.branch(st.ctrl, cond).unwrap();
                frames.push(Frame::If {
                    other: f,
                    before: st,
                    then_end: None,
                });
                st.ctrl = t;
                last_store = None;
            }
            Stmt::Else => {
                if let Some(Frame::If {
                    other,
                    before,
                    then_end: then_end @ None,
                }) = frames.last_mut()
                {
                    *then_end = Some(st);
                    st = State {
                        ctrl: *other,
                        ..*before
                    };
                    last_store = None;
                }
            }
            Stmt::EndIf => {
                if matches!(frames.last(), Some(Frame::If { .. })) {
                    let f = frames.pop().unwrap();
                    st = end_if(&mut g, st, f);
                    last_store = None;
                }
            }
            Stmt::Loop(c) => {
                key += 1;
                let lp = g.loop_header(key, st.ctrl).unwrap();
                let mem = g.loop_phi(lp, 0, Type::Mem, st.mem).unwrap();
                let mut vars = st.vars;
                for (k, v) in vars.iter_mut().enumerate() {
                    *v = g.loop_phi(lp, 1 + k as u64, Type::I64, *v).unwrap();
                }
                let lim = g.iconst(Type::I64, 10).unwrap();
                let cond = g.cmp(CmpOp::Slt, vars[c as usize], lim).unwrap();
                let (t, f) = g.branch(lp, cond).unwrap();
                frames.push(Frame::Loop {
                    lp,
                    mem,
                    vars,
                    exit: f,
                });
                st = State { ctrl: t, mem, vars };
                last_store = None;
            }
            Stmt::EndLoop => {
                if matches!(frames.last(), Some(Frame::Loop { .. })) {
                    let f = frames.pop().unwrap();
                    st = end_loop(&mut g, st, f);
                    last_store = None;
                }
            }
        }
    }
    while let Some(f) = frames.pop() {
        st = match f {
            Frame::If { .. } => end_if(&mut g, st, f),
            Frame::Loop { .. } => end_loop(&mut g, st, f),
        };
    }
    let ret = g.ret(st.ctrl, st.mem, st.vars[0]).unwrap();
    g.finish(&[ret]).unwrap();
    g
}

#[test]
fn determinism() {
    use Stmt::*;
    let prog = [
        Loop(0),
        Load(1, 0),
        Bin(2, 2, 1, 3),
        If(1),
        Store(2, 1),
        LoadSkip(3, 3),
        Else,
        Call(0, 2),
        EndIf,
        Loop(1),
        Bin(0, 0, 2, 2),
        EndLoop,
        EndLoop,
    ];
    let g = build_program(&prog, false);
    let a = schedule(&g).unwrap();
    check(&g, &a);
    let b = schedule(&g).unwrap();
    let c = schedule(&g.clone()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(print(&g, &a), print(&g, &b));
    assert!(a.blocks.iter().any(|b| b.loop_depth == 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_programs_schedule_validly(
        prog in prop::collection::vec(stmt(), 0..40),
        simplify in any::<bool>(),
    ) {
        let g = build_program(&prog, simplify);
        let s = schedule(&g).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(&g, &s);
        prop_assert_eq!(schedule(&g).unwrap(), s);
    }
}

#[test]
fn million_node_straight_line() {
    // 1e6 nodes: loads, stores and arithmetic in one block.
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let base = g.param(e.start, 0, Type::Ptr).unwrap();
    let mut mem = e.mem;
    let mut x = g.param(e.start, 1, Type::I64).unwrap();
    for k in 0..200_000i64 {
        let c = g.iconst(Type::I64, k).unwrap();
        x = g.add(x, c).unwrap();
        let l = g
            .load(e.ctrl, mem, base, (k % 64) as i32 * 8, Type::I64)
            .unwrap();
        x = g.add(x, l).unwrap();
        mem = g
            .store(e.ctrl, mem, base, ((k + 3) % 64) as i32 * 8, x)
            .unwrap();
    }
    let r = g.ret(e.ctrl, mem, x).unwrap();
    g.finish(&[r]).unwrap();
    let t0 = std::time::Instant::now();
    let s = schedule(&g).unwrap();
    let took = t0.elapsed();
    assert_eq!(s.blocks.len(), 1);
    assert_eq!(s.blocks[0].nodes.len(), g.len() - 4);
    assert!(took.as_secs() < 60, "scheduling took {took:?}");
}

/// A chain of 100 000 adds defined at the entry and used only by the test
/// of the innermost of 100 000 nested loops: each add's late block is the
/// deepest one, so a walk up the dominator tree per node would be
/// quadratic. The jump-pointer query keeps it near linear.
#[test]
fn invariant_chain_used_in_the_deepest_loop() {
    // Deep nest whose innermost test uses a chain of 100k entry-only adds.
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::I64).unwrap();
    let n = 100_000u64;
    let mut acc = p;
    for k in 0..n as i64 {
        let c = g.iconst(Type::I64, 7 + k).unwrap();
        acc = g.add(acc, c).unwrap();
    }
    let pc = g.cmp(CmpOp::Slt, p, p).unwrap();
    let ac = g.cmp(CmpOp::Slt, acc, p).unwrap();
    let mut ctrl = e.ctrl;
    let mut frames = vec![];
    for k in 0..n {
        let lp = g.loop_header(k, ctrl).unwrap();
        let (t, f) = g.branch(lp, if k == n - 1 { ac } else { pc }).unwrap();
        frames.push((lp, f));
        ctrl = t;
    }
    while let Some((lp, f)) = frames.pop() {
        g.set_back_input(lp, ctrl).unwrap();
        ctrl = f;
    }
    let r = g.ret(ctrl, e.mem, p).unwrap();
    g.finish(&[r]).unwrap();
    let t0 = std::time::Instant::now();
    let s = schedule(&g).unwrap();
    let took = t0.elapsed();
    assert!(took.as_secs() < 60, "scheduling took {took:?}");
    let at = s.block_of_nodes(g.len());
    assert_eq!(at[acc.index()], Some(BlockId(0)));
}

/// The peephole `load_skips_disjoint_store` lets a load name the state
/// before a store to other bytes; a later store to the load's bytes, built
/// on the skipped store, must still come after the load.
#[test]
fn load_that_skipped_a_store_precedes_the_next_aliasing_store() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let a = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.param(e.start, 1, Type::I8).unwrap();
    let y = g.param(e.start, 2, Type::I8).unwrap();
    let s1 = g.store(e.ctrl, e.mem, a, 0, x).unwrap();
    let l = g.load(e.ctrl, s1, a, 1, Type::I8).unwrap();
    let s2 = g.store(e.ctrl, s1, a, 1, y).unwrap();
    let r = g.ret(e.ctrl, s2, l).unwrap();
    g.finish(&[r]).unwrap();
    vssa::optimize(&mut g).unwrap();
    let l = g.resolve(l);
    assert_eq!(g.input(l, 1), e.mem, "the load skipped s1");
    let s = schedule(&g).unwrap();
    check(&g, &s);
    let p = |n| pos_in(&s, n);
    assert!(p(l) < p(s2), "{}", print(&g, &s));
}

/// Stores `value` at the given offsets of `base`, one after the other.
fn store_run(g: &mut Graph, ctrl: NodeId, mem: NodeId, base: NodeId, offs: &[i32]) -> Vec<NodeId> {
    let v = g.iconst(Type::I8, 9).unwrap();
    let mut m = mem;
    offs.iter()
        .map(|&o| {
            m = g.store(ctrl, m, base, o, v).unwrap();
            m
        })
        .collect()
}

#[test]
fn load_precedes_an_aliasing_store_behind_three_disjoint_ones() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let a = g.param(e.start, 0, Type::Ptr).unwrap();
    let st = store_run(&mut g, e.ctrl, e.mem, a, &[0, 2, 3, 1]);
    // Built last, as a peephole would: reads byte 1 of the entry memory.
    let l = g.load(e.ctrl, e.mem, a, 1, Type::I8).unwrap();
    let r = g.ret(e.ctrl, st[3], l).unwrap();
    g.finish(&[r]).unwrap();
    let s = schedule(&g).unwrap();
    check(&g, &s);
    let p = |n| pos_in(&s, n);
    // No edges to the disjoint stores: construction order keeps the load
    // after them; the aliasing one waits for it.
    assert!(p(st[2]) < p(l), "{}", print(&g, &s));
    assert!(p(l) < p(st[3]), "{}", print(&g, &s));
}

#[test]
fn load_precedes_a_call_behind_a_disjoint_store() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let a = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.param(e.start, 1, Type::I64).unwrap();
    let s1 = g.store(e.ctrl, e.mem, a, 0, x).unwrap();
    let (cm, cr) = g.call(e.ctrl, s1, 0, &[x], Some(Type::I64)).unwrap();
    let l = g.load(e.ctrl, e.mem, a, 8, Type::I64).unwrap();
    let sum = g.add(cr.unwrap(), l).unwrap();
    let r = g.ret(e.ctrl, cm, sum).unwrap();
    g.finish(&[r]).unwrap();
    let s = schedule(&g).unwrap();
    check(&g, &s);
    let call = g.input(cm, 0);
    let p = |n| pos_in(&s, n);
    assert!(p(s1) < p(l), "{}", print(&g, &s));
    assert!(p(l) < p(call), "{}", print(&g, &s));
}

/// The skipped store is in the dominating block, the aliasing one in the
/// load's block, behind another disjoint one.
#[test]
fn load_skipping_a_store_of_a_dominating_block() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let a = g.param(e.start, 0, Type::Ptr).unwrap();
    let c = g.param(e.start, 1, Type::I8).unwrap();
    let s1 = store_run(&mut g, e.ctrl, e.mem, a, &[0])[0];
    let (t, f) = g.branch(e.ctrl, c).unwrap();
    let run = store_run(&mut g, t, s1, a, &[2, 1]);
    let (s2, s3) = (run[0], run[1]);
    let l = g.load(t, e.mem, a, 1, Type::I8).unwrap();
    let r1 = g.ret(t, s3, l).unwrap();
    let r2 = g.ret(f, s1, c).unwrap();
    g.finish(&[r1, r2]).unwrap();
    let s = schedule(&g).unwrap();
    check(&g, &s);
    assert_eq!(block_of(&s, l), block_of(&s, s3));
    // Walked through s1 and s2 precisely: no edge to the disjoint s2.
    let p = |n| pos_in(&s, n);
    assert!(p(s2) < p(l) && p(l) < p(s3), "{}", print(&g, &s));
}

/// Past the walk's bound the scheduler stays conservative: an edge to the
/// store reached in the block, or to the block's first stores when the
/// walk ran out in a dominating block.
#[test]
fn long_disjoint_runs_stay_ordered() {
    let offs: Vec<i32> = (0..300).map(|k| 8 + k).chain([0]).collect();
    for split in [false, true] {
        let mut g = new_graph();
        let e = g.entry().unwrap();
        let a = g.param(e.start, 0, Type::Ptr).unwrap();
        let c = g.param(e.start, 1, Type::I8).unwrap();
        let (ctrl, other) = if split {
            let (t, f) = g.branch(e.ctrl, c).unwrap();
            (t, Some(f))
        } else {
            (e.ctrl, None)
        };
        // With `split`, the disjoint run is in the entry block and only the
        // aliasing store follows the branch.
        let run = store_run(&mut g, e.ctrl, e.mem, a, &offs[..300]);
        let last = store_run(&mut g, ctrl, run[299], a, &offs[300..])[0];
        let l = g.load(ctrl, e.mem, a, 0, Type::I64).unwrap();
        let mut rets = vec![g.ret(ctrl, last, l).unwrap()];
        if let Some(f) = other {
            rets.push(g.ret(f, run[299], c).unwrap());
        }
        g.finish(&rets).unwrap();
        let s = schedule(&g).unwrap();
        check(&g, &s);
        assert!(pos_in(&s, l) < pos_in(&s, last), "{}", print(&g, &s));
        if !split {
            // The bound turned a disjoint store into an edge target.
            assert!(pos_in(&s, l) <= pos_in(&s, run[crate::order::MAX_ANTI_WALK]));
        }
    }
}

/// Many loads in front of a long run of stores they all skip: the bounded
/// walk keeps this linear (unbounded, it would be 50 000 * 50 000 steps).
#[test]
fn many_loads_before_a_long_disjoint_run() {
    let mut g = new_graph();
    let e = g.entry().unwrap();
    let a = g.param(e.start, 0, Type::Ptr).unwrap();
    let n = 50_000;
    let offs: Vec<i32> = (0..n).collect();
    let run = store_run(&mut g, e.ctrl, e.mem, a, &offs);
    let mut acc = g.iconst(Type::I8, 0).unwrap();
    let mut loads = Vec::new();
    for k in 1..=n {
        let l = g.load(e.ctrl, e.mem, a, -k, Type::I8).unwrap();
        acc = g.add(acc, l).unwrap();
        loads.push(l);
    }
    let r = g.ret(e.ctrl, run[n as usize - 1], acc).unwrap();
    g.finish(&[r]).unwrap();
    let t0 = std::time::Instant::now();
    let s = schedule(&g).unwrap();
    let took = t0.elapsed();
    assert!(took.as_secs() < 60, "scheduling took {took:?}");
    let mut pos = vec![usize::MAX; g.len()];
    for (i, &v) in s.blocks[0].nodes.iter().enumerate() {
        pos[v.index()] = i;
    }
    // Built after the run, yet every load precedes the store the bound
    // made an edge target.
    let edge = pos[run[crate::order::MAX_ANTI_WALK].index()];
    assert!(loads.iter().all(|&l| pos[l.index()] < edge));
}
