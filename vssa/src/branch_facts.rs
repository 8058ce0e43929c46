//! Facts from branches: what a branch or a guard proves holds in all the
//! code it dominates.
//!
//! The peepholes see one node at a time, and a node's value is the same
//! wherever it is used, so they cannot use what control flow has learned:
//! after `if x == 0` took its true side, `x` is 0 there and only there.
//! [`branch_facts`] walks control *up* from a node's position, along the
//! chain of nodes that dominate it: an `If` projection (its test went that
//! way), a `Guard` (its condition held), a `Loop` (to its entry: a value
//! defined before the loop is the same in every iteration), and at a
//! `Region` every predecessor in turn (a fact holds after the merge if it
//! holds on every way in). Two rewrites use the facts it finds:
//!
//! * **loads with a known value** — a load reads a *place*: a memory state
//!   (immutable: one version of memory), an address and a type. If an
//!   edge above it tested a load of the same place (`if v` went to its
//!   false side: `v` is 0; `v == k` to its true side: `v` is `k`), or a
//!   load of the same place sits above it, the load is replaced by that
//!   value. At a region the place is taken apart per predecessor (the
//!   region's phis of memory and address replaced by their values on that
//!   edge, the load's own peepholes applied to the result), and the load
//!   is known when every edge gives the same value. This is how "the cell
//!   is 0 after its loop" is found: both ways out of a rotated loop tested
//!   it;
//! * **guards implied by dominating facts** — a guard whose condition
//!   held already (the same condition node), or whose comparison of a
//!   value (plus a constant) with a constant holds for every value the
//!   dominating comparisons of it leave possible (integer ranges, signed
//!   and unsigned, wrapping exactly as the ops do), is replaced by its
//!   control input: it cannot fail. Two range checks of one index in a
//!   row make a third one between them redundant.
//!
//! Every rewrite is a [`Graph::replace`], so the patch log records it and
//! replays it. The walks are bounded: at most [`QUERY_STEPS`] control nodes
//! per question and [`MAX_JOIN_DEPTH`] regions deep, answers at regions are
//! remembered, so the pass is linear in the graph for a fixed bound; a
//! walk cut short only knows less.

use crate::dom::ControlDom;
use crate::graph::{Graph, GraphError, NodeId};
use crate::op::{BinOp, CmpOp, Op};
use crate::types::Type;
use std::collections::HashMap;

/// Control nodes one question may visit (all its regions' walks together).
pub const QUERY_STEPS: u32 = 256;
/// Merges one question's ranges are joined over, all levels together
/// (value questions take places apart at merges without this bound).
pub const RANGE_JOINS: u32 = 16;
/// Regions nested in one question's walk before it gives up on the rest.
pub const MAX_JOIN_DEPTH: u32 = 12;

/// What [`branch_facts`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FactStats {
    /// Loads replaced by a value known where they read.
    pub loads: u32,
    /// Guards removed because dominating facts imply them.
    pub guards: u32,
}

impl FactStats {
    /// Rewrites made.
    pub fn changes(&self) -> u32 {
        self.loads + self.guards
    }
}

/// What a load reads: memory state, address, offset and type.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Place {
    mem: NodeId,
    base: NodeId,
    offset: i32,
    ty: Type,
}

fn place_of(g: &Graph, n: NodeId) -> Option<Place> {
    match g.op(n) {
        Op::Load { offset } if g.arity(n) == 3 => Some(Place {
            mem: g.input(n, 1),
            base: g.input(n, 2),
            offset,
            ty: g.ty(n),
        }),
        _ => None,
    }
}

/// The fact an edge proves: control came through `c` only if `cond` was
/// nonzero (`holds`) or zero.
fn edge_fact(g: &Graph, c: NodeId) -> Option<(NodeId, bool)> {
    match g.op(c) {
        Op::Proj { index } if index <= 1 && g.ty(c) == Type::Ctrl && g.arity(c) == 1 => {
            let iff = g.input(c, 0);
            (g.op(iff) == Op::If && g.arity(iff) == 2).then(|| (g.input(iff, 1), index == 0))
        }
        Op::Guard { .. } if g.arity(c) == 3 => Some((g.input(c, 1), true)),
        _ => None,
    }
}

fn konst(g: &Graph, n: NodeId) -> Option<i64> {
    match g.op(n) {
        Op::Const { value } if g.ty(n).is_int() => Some(g.ty(n).normalize(value)),
        _ => None,
    }
}

/// `n`'s value on input `i` of `region`, if `n` is one of its phis.
fn on_edge(g: &Graph, n: NodeId, region: NodeId, i: usize) -> NodeId {
    let is_phi = matches!(g.op(n), Op::Phi { .. })
        && g.arity(n) == g.arity(region) + 1
        && g.input(n, 0) == region;
    if is_phi {
        g.input(n, 1 + i)
    } else {
        n
    }
}

/// A set of integers, closed.
type Range = (i128, i128);

fn width_range(ty: Type) -> Option<Range> {
    if !ty.is_int() {
        return None;
    }
    let bits = ty.bits()?;
    Some((-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1))
}

/// A comparison of `x + d` with the constant `k`, as a branch tests it.
struct Test {
    x: NodeId,
    d: i128,
    op: CmpOp,
    k: i128,
}

/// `cond` as a test on some value, if it has that shape: `cmp(x + d, k)`,
/// `cmp(x, k)`, or the value `x` itself (`x != 0`).
fn test_of(g: &Graph, cond: NodeId) -> Option<Test> {
    if let Op::Cmp(op) = g.op(cond) {
        if g.arity(cond) != 2 {
            return None;
        }
        let (a, b) = (g.input(cond, 0), g.input(cond, 1));
        let k = konst(g, b)?;
        if !g.ty(a).is_int() {
            return None;
        }
        let (x, d) = match g.op(a) {
            Op::Bin(BinOp::Add) if g.arity(a) == 2 => match konst(g, g.input(a, 1)) {
                Some(d) => (g.input(a, 0), d),
                None => (a, 0),
            },
            _ => (a, 0),
        };
        return Some(Test {
            x,
            d: d.into(),
            op,
            k: k.into(),
        });
    }
    g.ty(cond).is_int().then_some(Test {
        x: cond,
        d: 0,
        op: CmpOp::Ne,
        k: 0,
    })
}

/// The values of `t.x` for which the test gives `holds`, as at most a few
/// disjoint ranges (exact, wrapping as the ops do).
fn truth_set(g: &Graph, t: &Test, holds: bool) -> Vec<Range> {
    let Some((min, max)) = width_range(g.ty(t.x)) else {
        return Vec::new();
    };
    let modulus = max - min + 1;
    let op = if holds { t.op } else { t.op.negated() };
    // The passing values of `y = x + d`, signed or unsigned as `op` reads.
    let umax = modulus - 1;
    let ku = t.k.rem_euclid(modulus);
    let ys: Vec<Range> = match op {
        CmpOp::Eq => vec![(t.k, t.k)],
        CmpOp::Ne => vec![(min, t.k - 1), (t.k + 1, max)],
        CmpOp::Slt => vec![(min, t.k - 1)],
        CmpOp::Sle => vec![(min, t.k)],
        CmpOp::Sgt => vec![(t.k + 1, max)],
        CmpOp::Sge => vec![(t.k, max)],
        CmpOp::Ult => vec![(0, ku - 1)],
        CmpOp::Ule => vec![(0, ku)],
        CmpOp::Ugt => vec![(ku + 1, umax)],
        CmpOp::Uge => vec![(ku, umax)],
    };
    let mut out = Vec::new();
    for (lo, hi) in ys {
        if lo > hi {
            continue;
        }
        // `x = y - d` modulo 2^w, as signed values of x's type.
        for j in -2..=2 {
            let (a, b) = (lo - t.d + j * modulus, hi - t.d + j * modulus);
            let (a, b) = (a.max(min), b.min(max));
            if a <= b {
                out.push((a, b));
            }
        }
    }
    out
}

fn hull(set: &[Range]) -> Option<Range> {
    let lo = set.iter().map(|r| r.0).min()?;
    let hi = set.iter().map(|r| r.1).max()?;
    Some((lo, hi))
}

fn intersect(a: Range, b: Range) -> Range {
    (a.0.max(b.0), a.1.min(b.1))
}

/// What the dominating edges prove, indexed for the questions, and the
/// answers remembered across questions.
struct Facts {
    dom: ControlDom,
    /// Per node index: the nearest `Region` at or above that control node
    /// in the dominator tree, and the nearest `Region` or `Loop`.
    region_above: Vec<Option<NodeId>>,
    join_above: Vec<Option<NodeId>>,
    /// Live loads of each place.
    loads_of: HashMap<Place, Vec<NodeId>>,
    /// Edges that tested a load of a place: below them it holds the value.
    tested_of: HashMap<Place, Vec<(NodeId, i64)>>,
    /// Edges below which a condition holds.
    holds_of: HashMap<NodeId, Vec<NodeId>>,
    /// Edges that tested a value: below them it is in the range.
    ranges_of: HashMap<NodeId, Vec<(NodeId, Range)>>,
    /// Live phis of each loop.
    loop_phis: HashMap<NodeId, Vec<NodeId>>,
    places: HashMap<(NodeId, Place), Option<NodeId>>,
    /// Loop questions being answered (a place read round a loop asks
    /// about itself on the back edge: that answer is "unknown").
    asking: Vec<(NodeId, Place)>,
    ranges: HashMap<(NodeId, NodeId), Range>,
    steps: u32,
    /// Merges a range question may still look through.
    joins: u32,
}

impl Facts {
    fn new(g: &Graph, live: &[NodeId]) -> Facts {
        let dom = ControlDom::new(g, live);
        let mut facts = Facts {
            region_above: vec![None; g.len()],
            join_above: vec![None; g.len()],
            loads_of: HashMap::new(),
            tested_of: HashMap::new(),
            holds_of: HashMap::new(),
            ranges_of: HashMap::new(),
            loop_phis: HashMap::new(),
            places: HashMap::new(),
            asking: Vec::new(),
            ranges: HashMap::new(),
            steps: 0,
            joins: 0,
            dom,
        };
        for &c in facts.dom.order() {
            let up = facts.dom.idom(c);
            let (region, join) = match g.op(c) {
                Op::Region => (Some(c), Some(c)),
                Op::Loop { .. } => (up.and_then(|u| facts.region_above[u.index()]), Some(c)),
                _ => match up {
                    Some(u) => (facts.region_above[u.index()], facts.join_above[u.index()]),
                    None => (None, None),
                },
            };
            facts.region_above[c.index()] = region;
            facts.join_above[c.index()] = join;
            let Some((cond, holds)) = edge_fact(g, c) else {
                continue;
            };
            if holds {
                facts.holds_of.entry(cond).or_default().push(c);
            }
            if let Some(t) = test_of(g, cond) {
                if let Some(r) = hull(&truth_set(g, &t, holds)) {
                    facts.ranges_of.entry(t.x).or_default().push((c, r));
                }
            }
            if let Some((place, k)) = tested_value(g, cond, holds) {
                facts.tested_of.entry(place).or_default().push((c, k));
            }
        }
        for &n in live {
            if let Some(place) = place_of(g, n) {
                facts.loads_of.entry(place).or_default().push(n);
            }
            if g.is_loop_phi(n) {
                facts.loop_phis.entry(g.input(n, 0)).or_default().push(n);
            }
        }
        facts
    }

    /// Whether edge (or control node) `e` dominates control `c`, charged
    /// to the question's budget.
    fn above(&mut self, e: NodeId, c: NodeId) -> bool {
        self.steps = self.steps.saturating_sub(1);
        self.dom.dominates(e, c)
    }

    /// The value that `place` holds at control `c`, if known: a load of it
    /// above `c` (not `skip`), what an edge above `c` proved it to be, or
    /// what it holds on every way into the merge or loop above.
    fn place_value(
        &mut self,
        g: &mut Graph,
        c: NodeId,
        place: Place,
        skip: NodeId,
        depth: u32,
    ) -> Result<Option<NodeId>, GraphError> {
        if self.steps == 0 || !self.dom.is_reached(c) {
            return Ok(None);
        }
        self.steps -= 1;
        let loads = self.loads_of.get(&place).cloned().unwrap_or_default();
        if loads.len() <= 1 && !self.tested_of.contains_key(&place) && !splits(g, place) {
            // Nothing else reads or tests this place, and no merge above
            // takes it apart into other places: nothing can know it.
            return Ok(None);
        }
        for l in loads {
            if self.steps == 0 {
                return Ok(None);
            }
            if l != skip && g.resolve(l) != skip && self.above(g.input(l, 0), c) {
                return Ok(Some(g.resolve(l)));
            }
        }
        let tested = self.tested_of.get(&place).cloned().unwrap_or_default();
        for (e, k) in tested {
            if self.steps == 0 {
                return Ok(None);
            }
            if self.above(e, c) {
                return Ok(Some(g.iconst(place.ty, k)?));
            }
        }
        // Nothing above the memory state's own position can know it.
        let written = written_at(g, place.mem);
        let mut at = c;
        while let Some(j) = self.join_above[at.index()] {
            if self.steps == 0 {
                return Ok(None);
            }
            self.steps -= 1;
            if let Some(w) = written {
                if w == j || !self.dom.dominates(w, j) {
                    return Ok(None);
                }
            }
            if g.op(j) == Op::Region {
                return self.join_place(g, j, place, depth);
            }
            if on_edge(g, place.mem, j, 0) != place.mem {
                return self.loop_place(g, j, place, depth);
            }
            match self.dom.idom(j) {
                Some(up) => at = up,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The value of `place`, in a memory state that is a phi of `lp`, at
    /// the loop's header: the loop phi whose value on the entry edge and
    /// on the back edge is what the place holds there (a value a front
    /// end already carries round the loop in a register).
    fn loop_place(
        &mut self,
        g: &mut Graph,
        lp: NodeId,
        place: Place,
        depth: u32,
    ) -> Result<Option<NodeId>, GraphError> {
        if depth >= MAX_JOIN_DEPTH || g.arity(lp) != 2 || self.asking.contains(&(lp, place)) {
            return Ok(None);
        }
        if let Some(&known) = self.places.get(&(lp, place)) {
            return Ok(known);
        }
        let candidates: Vec<NodeId> = self
            .loop_phis
            .get(&lp)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&p| g.resolve(p) == p && g.ty(p) == place.ty && g.arity(p) == 3)
            .collect();
        if !self.dom.is_reached(g.input(lp, 1)) {
            // The loop never goes round: the header sees the entry only.
            return self.edge_value(g, lp, 0, place, depth);
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        self.asking.push((lp, place));
        let mut edge_values = [None, None];
        for (i, slot) in edge_values.iter_mut().enumerate() {
            *slot = self.edge_value(g, lp, i, place, depth)?;
            if slot.is_none() {
                break;
            }
        }
        self.asking.pop();
        let answer = match edge_values {
            [Some(entry), Some(back)] => candidates.into_iter().find(|&p| {
                g.resolve(g.input(p, 1)) == g.resolve(entry)
                    && g.resolve(g.input(p, 2)) == g.resolve(back)
            }),
            _ => None,
        };
        self.places.insert((lp, place), answer);
        Ok(answer)
    }

    /// What `place`, read at merge `region`, holds on its input `i`.
    fn edge_value(
        &mut self,
        g: &mut Graph,
        region: NodeId,
        i: usize,
        place: Place,
        depth: u32,
    ) -> Result<Option<NodeId>, GraphError> {
        let pred = g.input(region, i);
        let mem = on_edge(g, place.mem, region, i);
        let base = match g.op(place.base) {
            Op::PtrAdd if g.arity(place.base) == 2 => {
                let (a, b) = (g.input(place.base, 0), g.input(place.base, 1));
                let (ea, eb) = (on_edge(g, a, region, i), on_edge(g, b, region, i));
                if (ea, eb) == (a, b) {
                    place.base
                } else {
                    simplified(g, Op::PtrAdd, Type::Ptr, &[ea, eb])?
                }
            }
            _ => on_edge(g, place.base, region, i),
        };
        if (mem, base) == (place.mem, place.base) {
            // The same place on this edge: no new load to ask about.
            return match self.place_value(g, pred, place, region, depth + 1)? {
                Some(v) => Ok(Some(self.refine(g, pred, v, depth + 1)?)),
                None => Ok(None),
            };
        }
        // The load as it would read on this edge, simplified as any
        // load is (forwarded from a store, or its place normalized).
        let op = Op::Load {
            offset: place.offset,
        };
        let probe = simplified(g, op, place.ty, &[pred, mem, base])?;
        let value = match place_of(g, probe) {
            Some(p) => self.place_value(g, pred, p, probe, depth + 1)?,
            None => Some(probe),
        };
        // A value forwarded from a store may be what a test saw.
        match value {
            Some(v) => Ok(Some(self.refine(g, pred, v, depth + 1)?)),
            None => Ok(None),
        }
    }

    /// [`Facts::place_value`] at a region: the same value on every way in.
    fn join_place(
        &mut self,
        g: &mut Graph,
        region: NodeId,
        place: Place,
        depth: u32,
    ) -> Result<Option<NodeId>, GraphError> {
        if let Some(&known) = self.places.get(&(region, place)) {
            return Ok(known);
        }
        if depth >= MAX_JOIN_DEPTH {
            return Ok(None);
        }
        let mut answer: Option<NodeId> = None;
        for i in 0..g.arity(region) {
            if !self.dom.is_reached(g.input(region, i)) {
                continue;
            }
            let value = self.edge_value(g, region, i, place, depth)?;
            let Some(v) = value else {
                answer = None;
                break;
            };
            match answer {
                Some(a) if g.resolve(a) != g.resolve(v) => {
                    answer = None;
                    break;
                }
                _ => answer = Some(v),
            }
        }
        self.places.insert((region, place), answer);
        Ok(answer)
    }

    /// `v`, or the constant it must be at control `c`.
    fn refine(
        &mut self,
        g: &mut Graph,
        c: NodeId,
        v: NodeId,
        depth: u32,
    ) -> Result<NodeId, GraphError> {
        if konst(g, v).is_some() || !g.ty(v).is_int() {
            return Ok(v);
        }
        let (lo, hi) = self.range_at(g, c, v, depth);
        match i64::try_from(lo) {
            Ok(k) if lo == hi => g.iconst(g.ty(v), k),
            _ => Ok(v),
        }
    }

    /// The values `x` may have at control `c`: the tests of it on the edges
    /// that dominate `c`, and what holds on every way into the merge above.
    fn range_at(&mut self, g: &Graph, c: NodeId, x: NodeId, depth: u32) -> Range {
        let Some(full) = width_range(g.ty(x)) else {
            return (i128::MIN, i128::MAX);
        };
        if !self.dom.is_reached(c) {
            return full;
        }
        let mut known = full;
        let count = self.ranges_of.get(&x).map_or(0, Vec::len);
        for i in 0..count {
            if self.steps == 0 {
                return known;
            }
            let (e, r) = self.ranges_of[&x][i];
            if self.above(e, c) {
                known = intersect(known, r);
            }
        }
        // Only a value that was tested somewhere, or a phi (tested on its
        // ways in), can be known better after a merge.
        let may_join = count > 0 || matches!(g.op(x), Op::Phi { .. });
        match self.region_above[c.index()] {
            Some(r) if may_join && self.steps > 0 && self.joins > 0 => {
                self.steps -= 1;
                self.joins -= 1;
                intersect(known, self.join_range(g, r, x, depth))
            }
            _ => known,
        }
    }

    /// [`Facts::range_at`] at a region: the hull of the ranges on the ways in.
    fn join_range(&mut self, g: &Graph, region: NodeId, x: NodeId, depth: u32) -> Range {
        let full = width_range(g.ty(x)).unwrap_or((i128::MIN, i128::MAX));
        if let Some(&known) = self.ranges.get(&(region, x)) {
            return known;
        }
        if depth >= MAX_JOIN_DEPTH {
            return full;
        }
        let mut out: Option<Range> = None;
        for i in 0..g.arity(region) {
            let pred = g.input(region, i);
            if !self.dom.is_reached(pred) {
                continue;
            }
            let xi = on_edge(g, x, region, i);
            let r = self.range_at(g, pred, xi, depth + 1);
            // An empty range is code no input reaches: it adds nothing,
            // but is not trusted either (the walk may have been cut).
            if r.0 > r.1 {
                out = Some(full);
                break;
            }
            out = Some(match out {
                None => r,
                Some(o) => (o.0.min(r.0), o.1.max(r.1)),
            });
        }
        let r = out.unwrap_or(full);
        self.ranges.insert((region, x), r);
        r
    }

    /// Whether `cond` is nonzero whenever control reaches `c`.
    fn holds_at(&mut self, g: &Graph, c: NodeId, cond: NodeId) -> bool {
        // The same condition on a dominating edge's true side.
        let edges = self.holds_of.get(&cond).cloned().unwrap_or_default();
        if edges.into_iter().any(|e| self.dom.dominates(e, c)) {
            return true;
        }
        let Some(t) = test_of(g, cond) else {
            return false;
        };
        let known = self.range_at(g, c, t.x, 0);
        known.0 <= known.1
            && truth_set(g, &t, true)
                .iter()
                .any(|r| r.0 <= known.0 && known.1 <= r.1)
    }
}

/// The control a memory state is made at (a store's, a call's), if it is
/// not a phi or the entry's.
fn written_at(g: &Graph, mem: NodeId) -> Option<NodeId> {
    match g.op(mem) {
        Op::Store { .. } if g.arity(mem) == 4 => Some(g.input(mem, 0)),
        Op::Proj { .. } => {
            let t = g.input(mem, 0);
            match g.op(t) {
                op if op.is_call() && g.arity(t) >= 1 => Some(g.input(t, 0)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The node for `op` on `inputs`, with the peepholes applied whether or
/// not the graph applies them on construction.
fn simplified(g: &mut Graph, op: Op, ty: Type, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
    let inputs: Vec<NodeId> = inputs.iter().map(|&i| g.resolve(i)).collect();
    match crate::peephole::simplify(g, op, ty, &inputs)? {
        Some(n) => Ok(g.resolve(n)),
        None => g.intern(op, ty, &inputs),
    }
}

/// Whether a merge may read `place` as another place on its ways in: its
/// memory state or its address is (built from) a phi.
fn splits(g: &Graph, place: Place) -> bool {
    let phi = |n: NodeId| matches!(g.op(n), Op::Phi { .. });
    phi(place.mem)
        || phi(place.base)
        || (g.op(place.base) == Op::PtrAdd && g.inputs(place.base).iter().any(|&i| phi(i)))
}

/// The place whose load an edge's test read and the value it proved
/// there: 0 on the false side of `if v`, `k` on the side where `v == k`.
fn tested_value(g: &Graph, cond: NodeId, holds: bool) -> Option<(Place, i64)> {
    if let Some(place) = place_of(g, cond) {
        return (!holds).then_some((place, 0));
    }
    let Op::Cmp(op) = g.op(cond) else {
        return None;
    };
    if g.arity(cond) != 2 {
        return None;
    }
    let place = place_of(g, g.input(cond, 0))?;
    let k = konst(g, g.input(cond, 1))?;
    match (op, holds) {
        (CmpOp::Eq, true) | (CmpOp::Ne, false) => Some((place, k)),
        _ => None,
    }
}

/// Which rewrites [`branch_facts_of`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FactKinds {
    /// Loads with a known value.
    pub loads: bool,
    /// Guards implied by dominating facts (guard elimination).
    pub guards: bool,
}

impl FactKinds {
    /// Both rewrites.
    pub const ALL: FactKinds = FactKinds {
        loads: true,
        guards: true,
    };
}

/// Replaces loads whose value dominating branches or loads already know,
/// and removes guards dominating facts imply (see the module docs).
pub fn branch_facts(g: &mut Graph) -> Result<FactStats, GraphError> {
    branch_facts_of(g, FactKinds::ALL)
}

/// [`branch_facts`], making only the rewrites `kinds` asks for.
pub fn branch_facts_of(g: &mut Graph, kinds: FactKinds) -> Result<FactStats, GraphError> {
    let live = g.live_nodes();
    let mut facts = Facts::new(g, &live);
    let mut stats = FactStats::default();
    for &n in &live {
        if g.resolve(n) != n {
            continue;
        }
        match g.op(n) {
            Op::Load { .. } if kinds.loads => {
                let Some(place) = place_of(g, n) else {
                    continue;
                };
                facts.steps = QUERY_STEPS;
                facts.joins = RANGE_JOINS;
                let ctrl = g.input(n, 0);
                let Some(v) = facts.place_value(g, ctrl, place, n, 0)? else {
                    continue;
                };
                let v = facts.refine(g, ctrl, v, 0)?;
                let v = g.resolve(v);
                if v != n && g.ty(v) == g.ty(n) {
                    g.replace(n, v)?;
                    stats.loads += 1;
                }
            }
            Op::Guard { .. } if kinds.guards && g.arity(n) == 3 => {
                facts.steps = QUERY_STEPS;
                facts.joins = RANGE_JOINS;
                let (ctrl, cond) = (g.input(n, 0), g.input(n, 1));
                if facts.holds_at(g, ctrl, cond) && ctrl != n {
                    g.replace(n, ctrl)?;
                    stats.guards += 1;
                }
            }
            _ => {}
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(x: NodeId, d: i128, op: CmpOp, k: i128) -> Test {
        Test { x, d, op, k }
    }

    /// Every value of an `i8` against the sets, for every op and a few
    /// offsets and constants: the sets are exact.
    #[test]
    fn truth_sets_are_exact_on_i8() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I8).unwrap();
        for op in CmpOp::ALL {
            for d in [-128i128, -3, 0, 1, 127] {
                for k in [-128i128, -1, 0, 5, 127] {
                    let t = test(x, d, op, k);
                    for holds in [true, false] {
                        let set = truth_set(&g, &t, holds);
                        for v in -128i64..=127 {
                            let y = Type::I8.normalize(v + d as i64);
                            let r = crate::eval::eval_cmp(op, Type::I8, y, k as i64);
                            let want = r == holds;
                            let got = set.iter().any(|s| s.0 <= v as i128 && v as i128 <= s.1);
                            assert_eq!(got, want, "{op:?} x{d:+} vs {k}, {holds}, x={v}");
                        }
                    }
                }
            }
        }
    }
}
