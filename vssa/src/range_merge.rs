//! Range-check merging: neighbouring guards that test one value against
//! constant bounds become one guard on the values all of them allow.
//!
//! A guest checks an index once per access: `guard(p + 2 <u len)`,
//! `guard(p - 1 <u len)`, `guard(p + 5 <u len)`, … Each such condition
//! `cmp(x + d, k)` (any signed or unsigned comparison with a constant,
//! or the value `x` itself, meaning `x != 0`) holds exactly for the values
//! of `x` on one *arc* of the integers modulo `2^w` (an interval that may
//! wrap round). The guards on one `x` hold together exactly on the
//! intersection of their arcs; when that is again one arc `[s, s + n)`
//! (or empty), one comparison tests it: `x - s <=u n - 1`. So the guards
//! merge into that one, and the conjunction it tests is exactly theirs:
//! nothing about `x` is assumed.
//!
//! Merging moves the later guards' tests up to the first one's place,
//! which is sound only where deoptimizing there is the same as
//! deoptimizing where they were. The pass therefore merges only within a
//! *run*: guards that follow one another directly on the control chain
//! (each the control input of the next), with the same frame state (the
//! same node: the same resume point and values, the same memory) and the
//! same reason, and with no store or call pinned between them. Any guard
//! of a run failing leaves with that one frame, so testing the run's
//! conditions in another order or together leaves the same way. Guards on
//! other values in the run stay where they are.
//!
//! Every rewrite is a [`Graph::replace`]: the first guard of a merged
//! group by the merged guard, the others by their control inputs. So the
//! patch log records and replays it.

use crate::graph::{Graph, GraphError, NodeId};
use crate::op::{BinOp, CmpOp, Op};
use crate::types::Type;
use std::collections::{HashMap, HashSet};

/// Guards of one run the pass looks at; longer runs are cut there.
const MAX_RUN: usize = 256;

/// What [`merge_range_guards`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Groups of guards merged into one.
    pub groups: u32,
    /// Guards removed (their tests now in a merged guard).
    pub removed: u32,
}

/// Merges the neighbouring range guards of `g` (see the module docs).
pub fn merge_range_guards(g: &mut Graph) -> Result<MergeStats, GraphError> {
    let live = g.live_nodes();
    let mut stats = MergeStats::default();
    // Controls with a store or call pinned to them: a run does not go on
    // past one.
    let effects: HashSet<NodeId> = live
        .iter()
        .filter(|&&n| g.op(n).has_effect() && g.arity(n) > 0)
        .map(|&n| g.resolve(g.input(n, 0)))
        .collect();
    let is_guard = |g: &Graph, n: NodeId| matches!(g.op(n), Op::Guard { .. }) && g.arity(n) == 3;
    // The next guard of a run, by the guard before it; a guard with two
    // such followers (not a well-formed control chain) links none.
    let mut next: HashMap<NodeId, Option<NodeId>> = HashMap::new();
    for &n in &live {
        if !is_guard(g, n) {
            continue;
        }
        let c = g.resolve(g.input(n, 0));
        if !is_guard(g, c) || effects.contains(&c) || !same_exit(g, c, n) {
            continue;
        }
        next.entry(c).and_modify(|f| *f = None).or_insert(Some(n));
    }
    let followers: HashSet<NodeId> = next.values().flatten().copied().collect();
    // Heads in the order of the live nodes, so the pass is deterministic.
    let heads: Vec<NodeId> = live
        .iter()
        .copied()
        .filter(|n| matches!(next.get(n), Some(Some(_))) && !followers.contains(n))
        .collect();
    for head in heads {
        let mut run = vec![head];
        let mut at = head;
        while let Some(Some(n)) = next.get(&at) {
            if run.len() >= MAX_RUN {
                break;
            }
            run.push(*n);
            at = *n;
        }
        merge_run(g, &run, &mut stats)?;
    }
    Ok(stats)
}

/// Whether guards `a` and `b` leave the same way: same frame, same reason.
fn same_exit(g: &Graph, a: NodeId, b: NodeId) -> bool {
    g.op(a) == g.op(b) && g.resolve(g.input(a, 2)) == g.resolve(g.input(b, 2))
}

/// Merges the groups of guards on one value within `run`.
fn merge_run(g: &mut Graph, run: &[NodeId], stats: &mut MergeStats) -> Result<(), GraphError> {
    // The guards by the value they test, in run order; values in the
    // order first tested.
    let mut order: Vec<NodeId> = Vec::new();
    let mut by_value: HashMap<NodeId, Vec<(NodeId, Arc)>> = HashMap::new();
    for &gd in run {
        let Some((x, arc)) = guard_arc(g, g.input(gd, 1)) else {
            continue;
        };
        by_value
            .entry(x)
            .or_insert_with(|| {
                order.push(x);
                Vec::new()
            })
            .push((gd, arc));
    }
    for x in order {
        let members = &by_value[&x];
        if members.len() < 2 {
            continue;
        }
        // Grow the intersection in run order; a guard whose arc would
        // split it in two stays as it is.
        let (first, mut acc) = members[0];
        let mut merged = Vec::new();
        for &(gd, arc) in &members[1..] {
            if let Some(both) = acc.intersect(arc) {
                acc = both;
                merged.push(gd);
            }
        }
        if merged.is_empty() {
            continue;
        }
        let cond = acc.test(g, x)?;
        let Op::Guard { reason } = g.op(first) else {
            continue;
        };
        let (ctrl, frame) = (g.input(first, 0), g.input(first, 2));
        let one = g.build(Op::Guard { reason }, Type::Ctrl, &[ctrl, cond, frame])?;
        if one != first {
            g.replace(first, one)?;
        }
        for gd in merged {
            let c = g.input(gd, 0);
            g.replace(gd, c)?;
            stats.removed += 1;
        }
        stats.groups += 1;
    }
    Ok(())
}

/// The value a guard's condition tests and the arc of values for which
/// it holds: `cmp(x + d, k)`, `cmp(x - d, k)`, `cmp(k, x + d)` with `d`
/// and `k` constants, or `x` itself (`x != 0`).
pub(crate) fn guard_arc(g: &Graph, cond: NodeId) -> Option<(NodeId, Arc)> {
    let cond = g.resolve(cond);
    let Op::Cmp(op) = g.op(cond) else {
        let bits = bits_of(g.ty(cond))?;
        // `x != 0`: everything but 0.
        return Some((cond, Arc::of_test(bits, CmpOp::Ne, 0, 0)));
    };
    if g.arity(cond) != 2 {
        return None;
    }
    let (a, b) = (g.resolve(g.input(cond, 0)), g.resolve(g.input(cond, 1)));
    let (y, k, op) = match (konst(g, a), konst(g, b)) {
        (None, Some(k)) => (a, k, op),
        (Some(k), None) => (b, k, op.mirrored()),
        _ => return None,
    };
    let bits = bits_of(g.ty(y))?;
    let (x, d) = match g.op(y) {
        Op::Bin(BinOp::Add) if g.arity(y) == 2 => {
            let (p, q) = (g.resolve(g.input(y, 0)), g.resolve(g.input(y, 1)));
            match (konst(g, p), konst(g, q)) {
                (None, Some(d)) => (p, d),
                (Some(d), None) => (q, d),
                _ => (y, 0),
            }
        }
        Op::Bin(BinOp::Sub) if g.arity(y) == 2 => match konst(g, g.resolve(g.input(y, 1))) {
            Some(d) => (g.resolve(g.input(y, 0)), d.wrapping_neg()),
            None => (y, 0),
        },
        _ => (y, 0),
    };
    Some((x, Arc::of_test(bits, op, d, k)))
}

/// The width of the integer types whose values the pass reasons about.
fn bits_of(ty: Type) -> Option<u32> {
    ty.is_int().then(|| ty.bits()).flatten()
}

fn konst(g: &Graph, n: NodeId) -> Option<i64> {
    match g.op(n) {
        Op::Const { value } if g.ty(n).is_int() => Some(g.ty(n).normalize(value)),
        _ => None,
    }
}

/// The integers `start, start + 1, …, start + len - 1` modulo `2^bits`
/// (as unsigned residues): an interval that may wrap round. `len` is
/// `2^bits` for every value, 0 for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arc {
    bits: u32,
    start: u128,
    len: u128,
}

impl Arc {
    fn modulus(bits: u32) -> u128 {
        1u128 << bits
    }

    /// The values of `x` for which `cmp(x + d, k)` holds.
    pub(crate) fn of_test(bits: u32, op: CmpOp, d: i64, k: i64) -> Arc {
        let m = Arc::modulus(bits);
        let res = |v: i128| v.rem_euclid(m as i128) as u128;
        let (smin, smax) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
        // Normalized to the width, signed.
        let ks = {
            let u = res(k.into());
            if u > smax as u128 {
                u as i128 - m as i128
            } else {
                u as i128
            }
        };
        let ku = res(ks);
        // The passing values of `y = x + d`, as (first, count).
        let (first, count): (i128, u128) = match op {
            CmpOp::Eq => (ks, 1),
            CmpOp::Ne => (ks + 1, m - 1),
            CmpOp::Slt => (smin, (ks - smin) as u128),
            CmpOp::Sle => (smin, (ks - smin + 1) as u128),
            CmpOp::Sgt => (ks + 1, (smax - ks) as u128),
            CmpOp::Sge => (ks, (smax - ks + 1) as u128),
            CmpOp::Ult => (0, ku),
            CmpOp::Ule => (0, ku + 1),
            CmpOp::Ugt => (ku as i128 + 1, m - 1 - ku),
            CmpOp::Uge => (ku as i128, m - ku),
        };
        Arc {
            bits,
            start: res(first - i128::from(d)),
            len: count,
        }
        .normal()
    }

    /// The canonical form: the empty and the full arc start at 0.
    fn normal(self) -> Arc {
        if self.len == 0 || self.len == Arc::modulus(self.bits) {
            Arc { start: 0, ..self }
        } else {
            self
        }
    }

    /// Whether the arc holds every value of its width.
    pub(crate) fn is_full(&self) -> bool {
        self.len == Arc::modulus(self.bits)
    }

    /// The first value on the arc (a residue) and how many there are.
    pub(crate) fn start_len(&self) -> (u128, u128) {
        (self.start, self.len)
    }

    /// Whether residue `v` is on the arc.
    #[cfg(test)]
    fn contains(&self, v: u128) -> bool {
        let m = Arc::modulus(self.bits);
        (v + m - self.start) % m < self.len
    }

    /// The values on both arcs, if they form one arc (or none).
    pub(crate) fn intersect(self, other: Arc) -> Option<Arc> {
        let m = Arc::modulus(self.bits);
        if self.len == 0 || other.len == 0 {
            return Some(Arc { len: 0, ..self }.normal());
        }
        if self.len == m {
            return Some(other);
        }
        if other.len == m {
            return Some(self);
        }
        // `self` as [0, la); `other` as [b, b + lb), b + lb < 2m: it meets
        // [0, la) and the copy [m, m + la).
        let la = self.len;
        let b = (other.start + m - self.start) % m;
        let e = b + other.len;
        let pieces: Vec<(u128, u128)> = [(0, la), (m, m + la)]
            .into_iter()
            .filter_map(|(lo, hi)| {
                let (s, t) = (b.max(lo), e.min(hi));
                (s < t).then_some((s - lo, t - s))
            })
            .collect();
        match pieces.as_slice() {
            [] => Some(Arc {
                bits: self.bits,
                start: 0,
                len: 0,
            }),
            [(s, n)] => Some(
                Arc {
                    bits: self.bits,
                    start: (s + self.start) % m,
                    len: *n,
                }
                .normal(),
            ),
            // Two pieces that touch at the top of `self` and its start
            // are still one arc only if `self` is full, handled above.
            _ => None,
        }
    }

    /// A condition on `x` (of this arc's width) that holds exactly on the
    /// arc: `x - start <=u len - 1`, or a constant.
    pub(crate) fn test(&self, g: &mut Graph, x: NodeId) -> Result<NodeId, GraphError> {
        let ty = g.ty(x);
        if self.len == 0 {
            return g.iconst(Type::I8, 0);
        }
        if self.len == Arc::modulus(self.bits) {
            return g.iconst(Type::I8, 1);
        }
        let shifted = if self.start == 0 {
            x
        } else {
            let neg = (Arc::modulus(self.bits) - self.start) as i128;
            let k = g.iconst(ty, ty.normalize(neg as i64))?;
            g.add(x, k)?
        };
        let top = g.iconst(ty, ty.normalize((self.len - 1) as i64))?;
        g.cmp(CmpOp::Ule, shifted, top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::eval_cmp;
    use crate::interp::{eval, InterpError, Memory};
    use crate::parse::parse;

    /// Whether `cmp(x + d, k)` holds on `i8`, computed as the LIR does.
    fn holds(op: CmpOp, x: i64, d: i64, k: i64) -> bool {
        let y = Type::I8.normalize(x.wrapping_add(d));
        eval_cmp(op, Type::I8, y, Type::I8.normalize(k))
    }

    #[test]
    fn arcs_of_tests_are_exact_on_i8() {
        for op in CmpOp::ALL {
            for d in [-128, -5, -1, 0, 1, 3, 127] {
                for k in [-128, -1, 0, 1, 2, 100, 127] {
                    let arc = Arc::of_test(8, op, d, k);
                    for x in -128..128i64 {
                        let r = (x as u8) as u128;
                        assert_eq!(arc.contains(r), holds(op, x, d, k), "{op:?} {d} {k} {x}");
                    }
                }
            }
        }
    }

    #[test]
    fn intersections_are_exact_when_they_are_one_arc() {
        let mut arcs = Vec::new();
        for op in CmpOp::ALL {
            for (d, k) in [(0, 0), (3, 10), (-7, 100), (100, -3), (1, 127)] {
                arcs.push(Arc::of_test(8, op, d, k));
            }
        }
        let mut one = 0;
        for &a in &arcs {
            for &b in &arcs {
                match a.intersect(b) {
                    Some(c) => {
                        one += 1;
                        for r in 0..256u128 {
                            assert_eq!(c.contains(r), a.contains(r) && b.contains(r));
                        }
                    }
                    // Two pieces: some value is on both arcs and some
                    // value between two such is not.
                    None => {
                        let on: Vec<bool> = (0..256u128)
                            .map(|r| a.contains(r) && b.contains(r))
                            .collect();
                        let changes = (0..256).filter(|&i| on[i] != on[(i + 1) % 256]).count();
                        assert!(changes >= 4, "{a:?} {b:?}");
                    }
                }
            }
        }
        assert!(one > arcs.len() * arcs.len() / 2);
    }

    /// Three bounds checks of `p + 2`, `p - 1`, `p + 5` against 64 bytes
    /// (param 0 is `p`), all with the frame `@4 [p]`, then a store; then
    /// a check with another frame, which stays.
    const RUN: &str = "n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 i64 = proj 2 n0
n4 ptr = proj 3 n0
n5 i64 = const 64
n6 i64 = const 2
n7 i64 = add n3, n6
n8 i8 = ult n7, n5
n9 frame = framestate @4 n2, n3
n10 ctrl = guard r1 n1, n8, n9
n11 i64 = const -1
n12 i64 = add n3, n11
n13 i8 = ult n12, n5
n14 ctrl = guard r1 n10, n13, n9
n15 i64 = const 5
n16 i64 = add n3, n15
n17 i8 = ult n16, n5
n18 ctrl = guard r1 n14, n17, n9
n19 mem = store +0 n18, n2, n4, n3
n20 frame = framestate @5 n19, n3
n21 i64 = const 60
n22 i8 = slt n3, n21
n23 ctrl = guard r1 n18, n22, n20
n24 i32 = const 0
n25 ctrl = return n23, n19, n24
n26 ctrl = end n25
";

    type Outcome = Result<i64, (u64, Vec<i64>)>;

    fn run(g: &Graph, p: i64) -> (Outcome, Vec<u8>) {
        let mut mem = Memory::new(4096, 16);
        let r = match eval(g, &[p, 4096], &mut mem, &mut |_, _| 0, 10_000) {
            Ok(v) => Ok(v),
            Err(InterpError::Deopt { resume, values, .. }) => Err((resume, values)),
            Err(e) => panic!("interpreter: {e}"),
        };
        (r, mem.bytes().to_vec())
    }

    fn guards(g: &Graph) -> usize {
        g.live_nodes()
            .into_iter()
            .filter(|&n| matches!(g.op(n), Op::Guard { .. }))
            .count()
    }

    #[test]
    fn a_run_of_bounds_checks_becomes_one_and_means_the_same() {
        let before = parse(RUN).unwrap();
        let mut after = parse(RUN).unwrap();
        let stats = merge_range_guards(&mut after).unwrap();
        assert_eq!(
            stats,
            MergeStats {
                groups: 1,
                removed: 2
            }
        );
        crate::verify::verify(&after).unwrap();
        assert_eq!(guards(&after), 2);
        for p in [-3, -2, -1, 0, 1, 2, 7, 58, 59, 60, 61, 62, 63, 64, 1 << 40] {
            assert_eq!(run(&before, p), run(&after, p), "p = {p}");
        }
        // A second run finds nothing more.
        assert_eq!(
            merge_range_guards(&mut after).unwrap(),
            MergeStats::default()
        );
    }

    #[test]
    fn guards_with_other_frames_or_a_store_between_stay() {
        // The second check with a frame of its own: no run.
        let other = RUN.replace(
            "n14 ctrl = guard r1 n10, n13, n9",
            "n27 frame = framestate @6 n2, n3\nn14 ctrl = guard r1 n10, n13, n27",
        );
        let mut g = parse(&other).unwrap();
        let stats = merge_range_guards(&mut g).unwrap();
        // Only n18 could follow n14, which has another frame than n10.
        assert_eq!(stats.removed, 0);
        // A store pinned to the first check: the run stops there.
        let stored = RUN.replace(
            "n19 mem = store +0 n18, n2, n4, n3",
            "n19 mem = store +0 n10, n2, n4, n3",
        );
        let mut g = parse(&stored).unwrap();
        let stats = merge_range_guards(&mut g).unwrap();
        assert_eq!(stats.removed, 1, "n14 and n18 still merge");
    }
}
