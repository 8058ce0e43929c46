//! Guard hoisting: a loop-invariant guard at the top of a loop, or a
//! range check of the loop's induction variable, moves in front of the
//! loop, so it is tested once per entry instead of once per iteration.
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
//! A guard at the top whose condition is not invariant may still move
//! when it is a range check of an *induction variable*, `cmp(i + d, k)`
//! with `k` a constant (it holds for the values of `i` on one arc, see
//! [`crate::range_merge`]), where:
//!
//! * `i` is a phi of the loop whose back edge is `next = i + 1` or
//!   `next = i - 1`, starting at `i0` (available before the loop);
//! * the loop goes round only through its latch: its back edge is one
//!   side of an `If` on `next` compared with a value `n` available before
//!   the loop (either side, either operand order), going round while
//!   `next != n`, `next < n` or `next <= n` (signed or unsigned; `>`,
//!   `>=` counting down).
//!
//! Then the values `i` takes at the top are exactly the arc from `i0` to
//! `last` (up for `+1`, down for `-1`; wrapping round is allowed), with
//! `last = n ∓ 1` for `!=`, `last = next0 < n ? n - 1 : i0` for `<`
//! (`next0 = i0 + 1`, the first latch test), `last = next0 <= n ? n : i0`
//! for `<=` (which never ends when `n` is the type's maximum: the hoisted
//! test then fails). Other ways out of the loop only end it earlier. The
//! guard holds on every iteration iff that arc lies inside its own: two
//! comparisons of `i0 - start` and `last - start`. That test goes in
//! front of the loop like an invariant guard, with the loop's entry
//! state. Where the guard would fail on a later iteration, the hoisted
//! one fails at the entry instead: the guest's interpreter resumes at the
//! loop's entry and runs those iterations itself (so this is sound for a
//! guest whose frame states are exact, but a LIR run deoptimizes with
//! another state than before; the `lir` fuzzer allows exactly that).
//! Brainfuck's pointer loops are not of this shape (they end on a cell's
//! value, so the pointer's last value is not known before the loop).
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
    /// Of those, guards on an induction variable (tested at the entry on
    /// every value the variable takes).
    pub induction: u32,
    /// Rounds that moved something.
    pub rounds: u32,
}

/// Moves loop-invariant guards at the top of loops in front of the loops
/// (see the module docs).
pub fn hoist_guards(g: &mut Graph) -> Result<HoistStats, GraphError> {
    let mut stats = HoistStats::default();
    for _ in 0..MAX_ROUNDS {
        let moved = hoist_round(g, &mut stats)?;
        if moved == 0 {
            break;
        }
        stats.hoisted += moved;
        stats.rounds += 1;
    }
    Ok(stats)
}

fn hoist_round(g: &mut Graph, stats: &mut HoistStats) -> Result<u32, GraphError> {
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
        if hoist_one(g, &dom, n, lp, lp_phis, stats)? {
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
    stats: &mut HoistStats,
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
    // available in front of it (no phi of the loop substituted); or be a
    // range check of an induction variable, tested before the loop on
    // every value the variable takes.
    let (cond, induction) = match entry.value(g, cond)? {
        Some(c) if c == cond => (cond, false),
        _ => match induction_check(g, &mut entry, lp, cond)? {
            Some(c) => (c, true),
            None => return Ok(false),
        },
    };
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
                stats.induction += u32::from(induction);
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
    stats.induction += u32::from(induction);
    Ok(true)
}

/// The condition, at a loop's entry, that a guard on an induction
/// variable of the loop passes on every iteration, if the guard has that
/// shape (see the module docs): the guard tests `cmp(i + d, k)` (a
/// constant `k`, so it holds on one arc of values, see
/// [`crate::range_merge`]); `i` is a phi of the loop starting at `i0`
/// whose back edge is `next = i + s`, `s` being 1 or -1; and the loop
/// goes round only through its latch, an `If` on `next` against a value
/// `n` computed before the loop. The values `i` takes are then the arc
/// from `i0` to `last` (going up for `s = 1`, down for `s = -1`), where
/// `last` follows from `n`: `n - 1` for `next != n`, `next <s n` or
/// `next <u n` (with `i0` itself when the first test already fails),
/// `n` for `<=` (which never ends when `n` is the type's maximum: that
/// case deoptimizes at the entry), and the mirror images going down.
fn induction_check(
    g: &mut Graph,
    entry: &mut Entry,
    lp: NodeId,
    cond: NodeId,
) -> Result<Option<NodeId>, GraphError> {
    let Some((i, arc)) = crate::range_merge::guard_arc(g, cond) else {
        return Ok(None);
    };
    let ty = g.ty(i);
    if !entry.phis.contains(&i) || !ty.is_int() || g.arity(i) != 3 {
        return Ok(None);
    }
    let next = g.resolve(g.input(i, 2));
    let step = match g.op(next) {
        Op::Bin(BinOp::Add) if g.arity(next) == 2 => {
            let (p, q) = (g.resolve(g.input(next, 0)), g.resolve(g.input(next, 1)));
            match (p == i, q == i) {
                (true, false) => int_const(g, q),
                (false, true) => int_const(g, p),
                _ => None,
            }
        }
        _ => None,
    };
    let up = match step {
        Some(1) => true,
        Some(-1) => false,
        _ => return Ok(None),
    };
    // The latch: the back edge is one side of an `If` on `next` and `n`.
    let back = g.resolve(g.input(lp, 1));
    let Op::Proj { index } = g.op(back) else {
        return Ok(None);
    };
    let iff = g.resolve(g.input(back, 0));
    if g.op(iff) != Op::If || g.arity(iff) != 2 || index > 1 {
        return Ok(None);
    }
    let test = g.resolve(g.input(iff, 1));
    let Op::Cmp(op) = g.op(test) else {
        return Ok(None);
    };
    let (a, b) = (g.resolve(g.input(test, 0)), g.resolve(g.input(test, 1)));
    let (n, op) = match (a == next, b == next) {
        (true, false) => (b, op),
        (false, true) => (a, op.mirrored()),
        _ => return Ok(None),
    };
    // The relation `next rel n` under which the loop goes round.
    let rel = if index == 0 { op } else { op.negated() };
    let i0 = g.input(i, 1);
    let (Some(i0), Some(n_at)) = (entry.value(g, i0)?, entry.value(g, n)?) else {
        return Ok(None);
    };
    if n_at != n {
        return Ok(None);
    }
    let bits = ty.bits().unwrap_or(64);
    let (smin, smax) = (
        ty.normalize(1i64 << (bits - 1)),
        ty.normalize(!(1i64 << (bits - 1))),
    );
    let one = g.iconst(ty, if up { 1 } else { -1 })?;
    let first_next = g.add(i0, one)?;
    let n_back = g.sub(n, one)?;
    // `last`, and a value of `n` for which the loop never ends.
    let (last, endless) = match (up, rel) {
        (_, CmpOp::Ne) => (n_back, None),
        (true, CmpOp::Slt | CmpOp::Ult) | (false, CmpOp::Sgt | CmpOp::Ugt) => {
            let more = g.cmp(rel, first_next, n)?;
            (g.select(more, n_back, i0)?, None)
        }
        (true, CmpOp::Sle | CmpOp::Ule) | (false, CmpOp::Sge | CmpOp::Uge) => {
            let more = g.cmp(rel, first_next, n)?;
            let never = match rel {
                CmpOp::Sle => smax,
                CmpOp::Ule => -1,
                CmpOp::Sge => smin,
                _ => 0,
            };
            (g.select(more, n, i0)?, Some(never))
        }
        _ => return Ok(None),
    };
    let (lo, hi) = if up { (i0, last) } else { (last, i0) };
    let mut ok = if arc.is_full() {
        g.iconst(Type::I8, 1)?
    } else {
        // `lo ..= hi` (going up) lies on the arc `[start, start + len)`:
        // both are on it and `hi` is not before `lo` from its start.
        let (start, len) = arc.start_len();
        let neg = ty.normalize((start as i64).wrapping_neg());
        let shift = g.iconst(ty, neg)?;
        let off_lo = g.add(lo, shift)?;
        let off_hi = g.add(hi, shift)?;
        let len = g.iconst(ty, ty.normalize(len as i64))?;
        let ordered = g.cmp(CmpOp::Ule, off_lo, off_hi)?;
        let inside = g.cmp(CmpOp::Ult, off_hi, len)?;
        g.bin(BinOp::And, ordered, inside)?
    };
    if let Some(never) = endless {
        let never = g.iconst(ty, never)?;
        let ends = g.cmp(CmpOp::Ne, n, never)?;
        ok = g.bin(BinOp::And, ok, ends)?;
    }
    Ok(Some(ok))
}

/// An integer constant, normalized to its type.
fn int_const(g: &Graph, n: NodeId) -> Option<i64> {
    let n = g.resolve(n);
    match g.op(n) {
        Op::Const { value } if g.ty(n).is_int() => Some(g.ty(n).normalize(value)),
        _ => None,
    }
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

    /// A rotated loop counting `i` from 0 to 7 (param 0 is `x`, 1 is
    /// `v`, 2 the pointer), storing `i`: at its top a guard on `x`
    /// (invariant) and one on `i <u x` (not: its bound is no constant).
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
n18 i8 = ult n11, n3
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
    fn an_induction_guard_is_tested_on_every_value_at_the_entry() {
        // `i <u 3` in a loop where `i` goes 0, 1, …, 6 (`i + 1 != 7`):
        // it fails on the fourth iteration. Hoisted, it fails at the
        // entry and hands over the loop's entry state instead (`i` 0,
        // nothing stored yet), from which the guest redoes those
        // iterations.
        let src = COUNTING
            .replace("n18 i8 = ult n11, n3", "n18 i8 = ult n11, n17")
            .replace("n17 i64 = const 50", "n17 i64 = const 3");
        let before = parse(&src).unwrap();
        let mut after = parse(&src).unwrap();
        assert_eq!(hoist_guards(&mut after).unwrap().hoisted, 2);
        crate::verify::verify(&after).unwrap();
        let (b, b_mem) = run(&before, 0, 1);
        let (a, a_mem) = run(&after, 0, 1);
        assert_eq!(b, Err((7, vec![3])));
        assert_eq!(a, Err((7, vec![0])));
        assert_eq!(b_mem[0], 3);
        assert!(a_mem.iter().all(|&x| x == 0));
        // With a bound every value passes, nothing changes, and the
        // guard is gone from the loop.
        let wide = src.replace("n17 i64 = const 3", "n17 i64 = const 7");
        let before = parse(&wide).unwrap();
        let mut after = parse(&wide).unwrap();
        assert_eq!(hoist_guards(&mut after).unwrap().hoisted, 2);
        for x in [0, 100, 101] {
            for v in [0, 1] {
                assert_eq!(run(&before, x, v), run(&after, x, v), "x = {x}, v = {v}");
            }
        }
    }

    #[test]
    fn induction_ranges_follow_the_latch() {
        // `i` from param x by `step` while `i + step rel n` (param n);
        // the guard `i + d <u 16` hoisted must fail at the entry exactly
        // when some iteration's test would fail (the loop has no other
        // way out): checked on i8 for every start and bound.
        for (step, rel) in [
            (1, "ne"),
            (1, "slt"),
            (1, "ult"),
            (1, "sle"),
            (1, "ule"),
            (-1, "ne"),
            (-1, "sgt"),
            (-1, "ugt"),
            (-1, "sge"),
            (-1, "uge"),
        ] {
            let src = format!(
                "n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 i8 = proj 2 n0
n4 i8 = proj 3 n0
n30 i8 = const 1
n31 tuple = if n1, n30
n32 ctrl = proj 0 n31
n33 ctrl = proj 1 n31
n5 ctrl = loop #1 n32, n13
n6 i8 = phi #1 n5, n3, n11
n7 mem = phi #2 n5, n2, n7
n8 i8 = const 3
n9 i8 = add n6, n8
n10 i8 = const 16
n20 i8 = ult n9, n10
n21 frame = framestate @1 n7, n6
n22 ctrl = guard r1 n5, n20, n21
n23 i8 = const {step}
n11 i8 = add n6, n23
n12 i8 = {rel} n11, n4
n14 tuple = if n22, n12
n13 ctrl = proj 0 n14
n15 ctrl = proj 1 n14
n16 i32 = const 0
n17 ctrl = return n15, n7, n16
n34 ctrl = return n33, n2, n16
n18 ctrl = end n17, n34
"
            );
            let before = parse(&src).unwrap();
            let mut after = parse(&src).unwrap();
            assert_eq!(hoist_guards(&mut after).unwrap().hoisted, 1, "{step} {rel}");
            crate::verify::verify(&after).unwrap();
            for x in -128..128 {
                for n in [-128, -127, -100, -5, -4, -1, 0, 1, 2, 12, 13, 14, 126, 127] {
                    let go = |g: &Graph| {
                        let mut mem = Memory::new(4096, 16);
                        match eval(g, &[x, n], &mut mem, &mut |_, _| 0, 2_000) {
                            Ok(_) => Some(true),
                            Err(InterpError::Deopt { .. }) => Some(false),
                            Err(InterpError::OutOfFuel) => None,
                            Err(e) => panic!("interpreter: {e}"),
                        }
                    };
                    let (b, a) = (go(&before), go(&after));
                    match b {
                        // An endless loop (all passing) may deoptimize
                        // at the entry when it would go round every value.
                        None => assert_ne!(a, Some(true), "{step} {rel} x {x} n {n}"),
                        Some(b) => assert_eq!(Some(b), a, "{step} {rel} x {x} n {n}"),
                    }
                }
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
