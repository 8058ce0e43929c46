//! Guard hoisting: a loop-invariant guard at the top of a loop moves in
//! front of the loop, so it is tested once per entry instead of once per
//! iteration.
//!
//! A guard is *at the top* of a loop when only guards lie between the
//! loop header and it: every iteration tests it before anything else
//! happens, and its frame state's memory is the loop's memory phi (no
//! store of the loop ran before it). Its condition is *invariant* when it
//! is computed from values available before the loop (constants,
//! parameters, and nodes pinned to control that dominates the loop's
//! entry), never from the loop's phis or from loads inside the loop.
//! Such a guard fails on some iteration exactly when it fails on the
//! first, so it is tested before the loop, with the *loop's entry state*
//! as its frame: the guard's own frame with every phi of the loop replaced
//! by its entry value (the state the first iteration would have handed
//! over at the guard; nothing ran in between).
//!
//! The loop node itself cannot be rebuilt (a `Loop` or loop `Phi` is
//! never created by a pass: the patch log could not rebuild its back edge;
//! see docs/patch-log.md), so the guard goes in front of what the loop is
//! entered from, which is rebuilt instead:
//!
//! * entered from a guard `e`: `e` is replaced by `guard(hoisted, e's
//!   condition, e's frame)` with `hoisted = guard(e's control, condition,
//!   entry state)`. Testing the hoisted condition before `e` is sound:
//!   neither has an effect, and either frame describes the interpreter's
//!   exact state on that path;
//! * entered from one side of an `If` on `v`: the `If` is replaced by an
//!   `If` on `v` whose control is `guard(if's control, v takes the other
//!   side || condition, entry state)`, so the loop's side is tested only
//!   when control would enter the loop.
//!
//! Every rewrite is a [`Graph::replace`] (the hoisted guard's old place is
//! replaced by its control), so the patch log records and replays it. A
//! hoisted guard may be at the top of an enclosing loop in turn: the pass
//! repeats, at most [`MAX_ROUNDS`] times.

use crate::dom::ControlDom;
use crate::graph::{Graph, GraphError, NodeId};
use crate::op::{BinOp, CmpOp, Op};
use crate::types::Type;
use std::collections::HashMap;

/// Rounds of [`hoist_guards`]; each moves guards one loop level out.
pub const MAX_ROUNDS: u32 = 4;
/// Guards between a loop header and a guard the pass still looks at.
const MAX_TOP_GUARDS: usize = 64;
/// Nodes one invariance or substitution question may visit.
const MAX_VISIT: usize = 256;

/// What [`hoist_guards`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HoistStats {
    /// Guards moved out of a loop (a guard moved out of two loops counts twice).
    pub hoisted: u32,
    /// Rounds that moved something.
    pub rounds: u32,
}

/// Moves loop-invariant guards at the top of loops in front of the loops
/// (see the module docs).
pub fn hoist_guards(g: &mut Graph) -> Result<HoistStats, GraphError> {
    let mut stats = HoistStats::default();
    for _ in 0..MAX_ROUNDS {
        let moved = hoist_round(g)?;
        if moved == 0 {
            break;
        }
        stats.hoisted += moved;
        stats.rounds += 1;
    }
    Ok(stats)
}

fn hoist_round(g: &mut Graph) -> Result<u32, GraphError> {
    let live = g.live_nodes();
    // Guards at the top of a loop, and their loops, before anything costlier.
    let at_top: Vec<(NodeId, NodeId)> = live
        .iter()
        .filter(|&&n| matches!(g.op(n), Op::Guard { .. }) && g.arity(n) == 3)
        .filter_map(|&n| Some((n, loop_above(g, n)?)))
        .collect();
    if at_top.is_empty() {
        return Ok(0);
    }
    let dom = ControlDom::new(g, &live);
    let mut phis: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &n in &live {
        if g.is_loop_phi(n) {
            phis.entry(g.input(n, 0)).or_default().push(n);
        }
    }
    let mut moved = 0;
    // Loops already rewritten this round: their entry changed, and the
    // dominator tree no longer describes it.
    let mut touched: Vec<NodeId> = Vec::new();
    for (n, lp) in at_top {
        if g.resolve(n) != n {
            continue;
        }
        if touched.contains(&lp) || g.arity(lp) != 2 || !dom.is_reached(lp) {
            continue;
        }
        let lp_phis = phis.get(&lp).map(Vec::as_slice).unwrap_or(&[]);
        if hoist_one(g, &dom, n, lp, lp_phis)? {
            touched.push(lp);
            moved += 1;
        }
    }
    Ok(moved)
}

/// The loop whose header `guard` follows with only guards between.
fn loop_above(g: &Graph, guard: NodeId) -> Option<NodeId> {
    let mut c = g.input(guard, 0);
    for _ in 0..MAX_TOP_GUARDS {
        match g.op(c) {
            Op::Loop { .. } => return Some(c),
            Op::Guard { .. } if g.arity(c) == 3 => c = g.input(c, 0),
            _ => return None,
        }
    }
    None
}

/// The control a node is pinned to, if it is pinned: a load's, a store's,
/// a call's (through its projections), a phi's region.
fn pinned_at(g: &Graph, n: NodeId) -> Option<NodeId> {
    match g.op(n) {
        op if op.is_pinned() => (g.arity(n) > 0).then(|| g.input(n, 0)),
        Op::Proj { .. } if g.arity(n) == 1 => pinned_at(g, g.input(n, 0)),
        _ => None,
    }
}

/// Substitutes a loop's phis by their entry values in pure expressions,
/// and tells whether a value is available in front of the loop.
struct Entry<'a> {
    dom: &'a ControlDom,
    /// The control the hoisted guard hangs from.
    at: NodeId,
    /// The loop's phis and their entry values.
    phis: &'a [NodeId],
    done: HashMap<NodeId, NodeId>,
    visits: usize,
}

impl Entry<'_> {
    /// `n` as it is when control is at `self.at` about to enter the loop:
    /// the loop's phis by their entry values, pure nodes rebuilt on those,
    /// anything else only if it is already available there.
    fn value(&mut self, g: &mut Graph, n: NodeId) -> Result<Option<NodeId>, GraphError> {
        let n = g.resolve(n);
        if let Some(&v) = self.done.get(&n) {
            return Ok(Some(v));
        }
        self.visits += 1;
        if self.visits > MAX_VISIT {
            return Ok(None);
        }
        let out = if self.phis.contains(&n) {
            Some(g.input(n, 1))
        } else if let Some(c) = pinned_at(g, n) {
            // Defined at a control that runs before the loop's entry, or not usable.
            self.dom.dominates(c, self.at).then_some(n)
        } else {
            match g.op(n) {
                Op::Start | Op::Const { .. } => Some(n),
                Op::Proj { .. } if g.op(g.input(n, 0)) == Op::Start => Some(n),
                op if is_pure(op) => {
                    let mut ins = Vec::with_capacity(g.arity(n));
                    for i in g.inputs(n) {
                        match self.value(g, i)? {
                            Some(v) => ins.push(v),
                            None => return Ok(None),
                        }
                    }
                    if ins == g.inputs(n).as_slice() {
                        Some(n)
                    } else {
                        Some(g.build(op, g.ty(n), &ins)?)
                    }
                }
                _ => None,
            }
        };
        if let Some(v) = out {
            self.done.insert(n, v);
        }
        Ok(out)
    }
}

/// Operations that compute a value from their inputs alone.
fn is_pure(op: Op) -> bool {
    matches!(
        op,
        Op::Bin(_)
            | Op::Un(_)
            | Op::Cmp(_)
            | Op::Conv(_)
            | Op::Select
            | Op::PtrAdd
            | Op::FBin(_)
            | Op::FUn(_)
            | Op::FCmp(_)
            | Op::FConv(_)
            | Op::FFits { .. }
            | Op::Boxed
            | Op::Materialize { .. }
    )
}

/// Hoists `guard`, at the top of loop `lp`, in front of the loop if its
/// condition is invariant and its frame can be restated at the entry.
fn hoist_one(
    g: &mut Graph,
    dom: &ControlDom,
    guard: NodeId,
    lp: NodeId,
    phis: &[NodeId],
) -> Result<bool, GraphError> {
    let (cond, frame) = (g.input(guard, 1), g.input(guard, 2));
    let Op::Guard { reason } = g.op(guard) else {
        return Ok(false);
    };
    let enter = g.input(lp, 0);
    // Where the hoisted guard goes: before the guard or the `If` that
    // the loop is entered from.
    let (at, from_if) = match g.op(enter) {
        Op::Guard { .. } if g.arity(enter) == 3 => (g.input(enter, 0), None),
        Op::Proj { index } if index <= 1 && g.arity(enter) == 1 => {
            let iff = g.input(enter, 0);
            if g.op(iff) != Op::If || g.arity(iff) != 2 {
                return Ok(false);
            }
            (g.input(iff, 0), Some((iff, index)))
        }
        _ => return Ok(false),
    };
    if !dom.is_reached(at) {
        return Ok(false);
    }
    let mut entry = Entry {
        dom,
        at,
        phis,
        done: HashMap::new(),
        visits: 0,
    };
    // The condition must not change round the loop: computed from values
    // available in front of it (no phi of the loop substituted).
    match entry.value(g, cond)? {
        Some(c) if c == cond => {}
        _ => return Ok(false),
    }
    // The frame the first iteration would hand over at the guard. Its
    // memory must be the loop's memory phi: nothing stored yet.
    if !matches!(g.op(frame), Op::FrameState { .. }) || g.arity(frame) == 0 {
        return Ok(false);
    }
    let mem = g.input(frame, 0);
    if !phis.contains(&mem) {
        return Ok(false);
    }
    let mut ins = Vec::with_capacity(g.arity(frame));
    for i in g.inputs(frame) {
        match entry.value(g, i)? {
            Some(v) => ins.push(v),
            None => return Ok(false),
        }
    }
    let entry_frame = g.build(g.op(frame), Type::Frame, &ins)?;
    match from_if {
        None => {
            let hoisted = g.build(Op::Guard { reason }, Type::Ctrl, &[at, cond, entry_frame])?;
            if hoisted == enter {
                // The loop is entered through this very guard (same
                // condition, same entry state): the one at the top is
                // implied. Rebuilding `enter` on itself would be a cycle.
                g.replace(guard, g.input(guard, 0))?;
                return Ok(true);
            }
            let (ec, ef) = (g.input(enter, 1), g.input(enter, 2));
            let kept = g.build(g.op(enter), Type::Ctrl, &[hoisted, ec, ef])?;
            if kept == enter || hoisted == at {
                return Ok(false);
            }
            g.replace(enter, kept)?;
        }
        Some((iff, index)) => {
            let v = g.input(iff, 1);
            if !g.ty(v).is_int() || !g.ty(cond).is_int() {
                return Ok(false);
            }
            // Control takes the other side: the loop is not entered and
            // the guard must pass.
            let zero = g.iconst(g.ty(v), 0)?;
            let other = if index == 0 { CmpOp::Eq } else { CmpOp::Ne };
            let skips = g.build(Op::Cmp(other), Type::I8, &[v, zero])?;
            let holds = if g.ty(cond) == Type::I8 && is_boolean(g, cond) {
                cond
            } else {
                let z = g.iconst(g.ty(cond), 0)?;
                g.build(Op::Cmp(CmpOp::Ne), Type::I8, &[cond, z])?
            };
            let either = g.build(Op::Bin(BinOp::Or), Type::I8, &[skips, holds])?;
            let hoisted = g.build(Op::Guard { reason }, Type::Ctrl, &[at, either, entry_frame])?;
            let new_if = g.build(Op::If, Type::Tuple, &[hoisted, v])?;
            if new_if == iff || hoisted == at {
                return Ok(false);
            }
            g.replace(iff, new_if)?;
        }
    }
    g.replace(guard, g.input(guard, 0))?;
    Ok(true)
}

/// A value that is 0 or 1 (a comparison).
fn is_boolean(g: &Graph, n: NodeId) -> bool {
    matches!(g.op(n), Op::Cmp(_) | Op::FCmp(_) | Op::FFits { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{eval, InterpError, Memory};
    use crate::parse::parse;

    /// A rotated loop counting `i` from 0 to `n` (param 0 is `x`, 1 is
    /// `v`, 2 the pointer), storing `i`: at its top a guard on `x`
    /// (invariant) and one on `i` (not).
    const COUNTING: &str = "n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 i64 = proj 2 n0
n4 i8 = proj 3 n0
n5 ptr = proj 4 n0
n6 tuple = if n1, n4
n7 ctrl = proj 0 n6
n8 ctrl = proj 1 n6
n9 ctrl = loop #1 n7, n25
n10 i64 = const 0
n11 i64 = phi #1 n9, n10, n20
n12 mem = phi #2 n9, n2, n21
n13 i64 = const 100
n14 i8 = ule n3, n13
n15 frame = framestate @7 n12, n11
n16 ctrl = guard r1 n9, n14, n15
n17 i64 = const 50
n18 i8 = ult n11, n17
n19 ctrl = guard r1 n16, n18, n15
n22 i64 = const 1
n20 i64 = add n11, n22
n21 mem = store +0 n19, n12, n5, n20
n32 i64 = const 7
n23 i8 = ne n20, n32
n24 tuple = if n19, n23
n25 ctrl = proj 0 n24
n26 ctrl = proj 1 n24
n27 ctrl = region n8, n26
n28 mem = phi #3 n27, n2, n21
n29 i32 = const 0
n30 ctrl = return n27, n28, n29
n31 ctrl = end n30
";

    /// The result, or the deopt's resume point and frame values.
    type Outcome = Result<i64, (u64, Vec<i64>)>;

    /// What running `g` gives, and the memory after.
    fn run(g: &Graph, x: i64, v: i64) -> (Outcome, Vec<u8>) {
        let mut mem = Memory::new(4096, 16);
        let r = eval(g, &[x, v, 4096], &mut mem, &mut |_, _| 0, 100_000);
        let r = match r {
            Ok(v) => Ok(v),
            Err(InterpError::Deopt { resume, values, .. }) => Err((resume, values)),
            Err(e) => panic!("interpreter: {e}"),
        };
        (r, mem.bytes().to_vec())
    }

    #[test]
    fn an_invariant_guard_moves_out_and_means_the_same() {
        let before = parse(COUNTING).unwrap();
        let mut after = parse(COUNTING).unwrap();
        let stats = hoist_guards(&mut after).unwrap();
        assert_eq!(stats.hoisted, 1);
        crate::verify::verify(&after).unwrap();
        // The guard on `i` is still in the loop, the one on `x` is not.
        let live = after.live_nodes();
        let guards: Vec<NodeId> = live
            .iter()
            .copied()
            .filter(|&n| matches!(after.op(n), Op::Guard { .. }))
            .collect();
        assert_eq!(guards.len(), 2);
        assert!(guards
            .iter()
            .any(|&gd| after.input(gd, 0) == NodeId::from_index(1)));
        for x in [-1, 0, 7, 100, 101, 1 << 40] {
            for v in [0, 1, -3] {
                assert_eq!(run(&before, x, v), run(&after, x, v), "x = {x}, v = {v}");
            }
        }
        // Failing before the loop hands over the loop's entry state.
        assert_eq!(run(&after, 101, 1).0, Err((7, vec![0])));
        // Not entered: no deopt, whatever x is.
        assert_eq!(run(&after, 101, 0).0, Ok(0));
    }

    #[test]
    fn a_guard_the_loop_is_entered_through_is_not_rebuilt_on_itself() {
        // The loop is entered through `guard(x <= 100)` with the loop's
        // entry state, the same guard its top holds (as Brainfuck builds
        // a walk whose checks can never pass): the top one just goes.
        let src = COUNTING
            .replace("n9 ctrl = loop #1 n7, n25", "n9 ctrl = loop #1 n40, n25")
            .replace(
                "n29 i32 = const 0",
                "n29 i32 = const 0\nn41 frame = framestate @7 n2, n10\nn40 ctrl = guard r1 n7, n14, n41",
            );
        let before = parse(&src).unwrap();
        let mut after = parse(&src).unwrap();
        assert_eq!(hoist_guards(&mut after).unwrap().hoisted, 1);
        crate::verify::verify(&after).unwrap();
        for x in [-1, 0, 100, 101] {
            for v in [0, 1] {
                assert_eq!(run(&before, x, v), run(&after, x, v), "x = {x}, v = {v}");
            }
        }
    }

    #[test]
    fn a_second_run_finds_nothing_more() {
        let mut g = parse(COUNTING).unwrap();
        hoist_guards(&mut g).unwrap();
        assert_eq!(hoist_guards(&mut g).unwrap(), HoistStats::default());
    }
}
