//! A unit's log as the binary file stores it, and replay by index.
//!
//! The binary form names each address once, in the unit's *node table*,
//! and refers to it by index. Turning that back into address-based
//! [`Patch`]es, only for replay to look every address up again by hash,
//! cost as much as the replay itself. A [`TableLog`] keeps the file's
//! shape instead — the table, and patches, new nodes and inputs as flat
//! arrays of indexes — and [`replay_table`] applies it with one graph
//! lookup per table entry at most: a new node's id is known once it is
//! built, and every later mention of its index uses it.
//!
//! The rules are [`crate::replay`]'s, patch for patch (the same outcomes,
//! the same graph; tested against it on edited logs): everything a patch
//! names is checked before anything is built, stale and conflicting
//! patches are skipped, a refuted guard cuts the log, and only a sealed log
//! builds its nodes under their recorded addresses without hashing them.

use crate::format::Log;
use crate::model::{NewNode, Patch, PatchNodes, RecipeInputs};
use crate::replay::{
    conflict, hashed_inputs, mismatch, set_back_edges, Outcome, ReplayReport, Src,
};
use vssa::{Addr, Graph, NodeId, Op, Type};

/// One patch: replace `target` by `by` (table indexes) after building the
/// new nodes up to `nodes_end` (an index into [`TableLog::nodes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TablePatch {
    pub target: u32,
    pub by: u32,
    pub nodes_end: u32,
}

/// One new node: its address (a table index), op and type, and its inputs
/// up to `inputs_end` (an index into [`TableLog::inputs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TableNode {
    pub addr: u32,
    pub op: Op,
    pub ty: Type,
    pub inputs_end: u32,
}

/// One unit's log in the binary file's shape. Every index is checked
/// against the table when the file is read, so nothing here can point
/// outside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableLog {
    pub(crate) encoding: u32,
    pub(crate) program: Addr,
    /// Sorted, no duplicates (the reader checks).
    pub(crate) refuted: Vec<Addr>,
    /// Whether the file's seal verified under this user's key.
    pub(crate) sealed: bool,
    /// Every address the patches name, each once.
    pub(crate) table: Vec<Addr>,
    pub(crate) patches: Vec<TablePatch>,
    pub(crate) nodes: Vec<TableNode>,
    pub(crate) inputs: Vec<u32>,
}

impl TableLog {
    /// Number of patches.
    pub fn len(&self) -> usize {
        self.patches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patches.is_empty()
    }

    /// The refuted guards (sorted).
    pub fn refuted(&self) -> &[Addr] {
        &self.refuted
    }

    /// The new nodes of patch `p` and where its inputs start.
    fn nodes_of(&self, p: usize) -> (&[TableNode], usize) {
        let start = p.checked_sub(1).map_or(0, |q| self.patches[q].nodes_end) as usize;
        let nodes = &self.nodes[start..self.patches[p].nodes_end as usize];
        let first_input = start
            .checked_sub(1)
            .map_or(0, |q| self.nodes[q].inputs_end as usize);
        (nodes, first_input)
    }

    /// The same log with addresses spelled out: for viewers, editing, and
    /// writing the book again.
    pub fn to_log(&self) -> Log {
        let mut patches = Vec::with_capacity(self.patches.len());
        for (p, tp) in self.patches.iter().enumerate() {
            let (nodes, mut at) = self.nodes_of(p);
            let mut new = PatchNodes::with_capacity(nodes.len());
            for n in nodes {
                let end = n.inputs_end as usize;
                let inputs: RecipeInputs = self.inputs[at..end]
                    .iter()
                    .map(|&i| self.table[i as usize])
                    .collect();
                at = end;
                new.push(NewNode {
                    addr: self.table[n.addr as usize],
                    op: n.op,
                    ty: n.ty,
                    inputs,
                });
            }
            patches.push(Patch {
                target: self.table[tp.target as usize],
                by: self.table[tp.by as usize],
                nodes: new,
            });
        }
        let mut log = Log::new(self.program, patches);
        log.encoding = self.encoding;
        log.refuted = self.refuted.clone();
        log.sealed = self.sealed;
        log
    }

    /// Whether `log` records exactly this (compared in place, without
    /// spelling this log out).
    pub fn same_as(&self, log: &Log) -> bool {
        if self.encoding != log.encoding
            || self.program != log.program
            || self.refuted != log.refuted
            || self.patches.len() != log.patches.len()
        {
            return false;
        }
        let addr = |i: u32| self.table[i as usize];
        self.patches
            .iter()
            .zip(&log.patches)
            .enumerate()
            .all(|(p, (tp, lp))| {
                let (nodes, mut at) = self.nodes_of(p);
                addr(tp.target) == lp.target
                    && addr(tp.by) == lp.by
                    && nodes.len() == lp.nodes.len()
                    && nodes.iter().zip(&lp.nodes).all(|(n, ln)| {
                        let end = n.inputs_end as usize;
                        let ins = &self.inputs[at..end];
                        at = end;
                        addr(n.addr) == ln.addr
                            && n.op == ln.op
                            && n.ty == ln.ty
                            && ins.len() == ln.inputs.len()
                            && ins
                                .iter()
                                .zip(ln.inputs.iter())
                                .all(|(&i, a)| addr(i) == *a)
                    })
            })
    }
}

/// What replay knows about one table entry.
#[derive(Clone, Copy)]
struct Slot {
    /// The node's id once looked up or built ([`UNKNOWN`] before).
    id: u32,
    /// 1 + the patch whose recipe builds this entry as node `k` (0: none
    /// seen yet): an input naming it refers to that earlier recipe node.
    patch: u32,
    k: u32,
}

const UNKNOWN: u32 = u32::MAX;

/// Table entries' ids, found once each.
struct Slots<'t> {
    table: &'t [Addr],
    slots: Vec<Slot>,
}

impl Slots<'_> {
    /// The node of table entry `i`, if the graph has it (looked up once;
    /// an address, once in the graph, always names the same node).
    fn node(&mut self, g: &Graph, i: u32) -> Option<NodeId> {
        let s = &mut self.slots[i as usize];
        if s.id != UNKNOWN {
            return Some(NodeId::from_index(s.id as usize));
        }
        let id = g.lookup(&self.table[i as usize])?;
        s.id = id.index() as u32;
        Some(id)
    }

    /// The recipe node of patch `p` that entry `i` names, if one was
    /// checked before.
    fn recipe(&self, p: usize, i: u32) -> Option<usize> {
        let s = self.slots[i as usize];
        (s.patch as usize == p + 1).then_some(s.k as usize)
    }

    fn stale(&self, i: u32) -> Outcome {
        Outcome::Stale {
            missing: Some(self.table[i as usize]),
        }
    }
}

/// Applies `log` to `g`, freshly built with program key `key`: the
/// table-form twin of [`crate::replay()`], with the same outcomes.
pub fn replay_table(g: &mut Graph, log: &TableLog, key: Addr) -> ReplayReport {
    if let Some(m) = mismatch(log.encoding, log.program, key) {
        return ReplayReport {
            outcomes: vec![Outcome::Stale { missing: None }; log.patches.len()],
            stale: log.patches.len(),
            mismatch: Some(m),
            ..ReplayReport::default()
        };
    }
    let mut report = ReplayReport::default();
    report.outcomes.reserve(log.patches.len());
    g.reserve(log.nodes.len());
    let mut slots = Slots {
        table: &log.table,
        slots: vec![
            Slot {
                id: UNKNOWN,
                patch: 0,
                k: 0
            };
            log.table.len()
        ],
    };
    let refuted = |i: u32| log.refuted.binary_search(&log.table[i as usize]).is_ok();
    let mut cut: Option<Addr> = None;
    let mut scratch = Scratch::default();
    for (p, tp) in log.patches.iter().enumerate() {
        let (nodes, first_input) = log.nodes_of(p);
        if cut.is_none() && !log.refuted.is_empty() {
            cut = std::iter::once(tp.by)
                .chain(nodes.iter().map(|n| n.addr))
                .find(|&i| refuted(i))
                .map(|i| log.table[i as usize]);
        }
        let o = match cut {
            Some(guard) => Outcome::Refuted { guard },
            None => {
                let inputs = &log.inputs[first_input..];
                apply(
                    g,
                    &mut slots,
                    &mut scratch,
                    p,
                    tp,
                    nodes,
                    inputs,
                    first_input,
                    log.sealed,
                )
            }
        };
        match o {
            Outcome::Applied => report.applied += 1,
            Outcome::Stale { .. } => report.stale += 1,
            Outcome::Conflicting { .. } => report.conflicting += 1,
            Outcome::Refuted { .. } => report.refuted += 1,
        }
        report.outcomes.push(o);
    }
    report
}

/// Buffers reused from patch to patch.
#[derive(Default)]
struct Scratch {
    srcs: Vec<Src>,
    built: Vec<NodeId>,
    inputs: Vec<NodeId>,
    /// Back edges of new loop phis, found once the whole recipe is known:
    /// their place in `srcs` and their table entry.
    later: Vec<(usize, u32)>,
    /// New loop phis (index into `built`) and their back edges.
    backs: Vec<(usize, Src)>,
}

/// One patch, checked whole before anything is built (as
/// `replay::apply`). `inputs` starts at the patch's first input, whose
/// index in [`TableLog::inputs`] is `base`.
#[allow(clippy::too_many_arguments)]
fn apply(
    g: &mut Graph,
    slots: &mut Slots<'_>,
    s: &mut Scratch,
    p: usize,
    tp: &TablePatch,
    nodes: &[TableNode],
    inputs: &[u32],
    base: usize,
    trusted: bool,
) -> Outcome {
    let Some(target) = slots.node(g, tp.target) else {
        return slots.stale(tp.target);
    };
    let table = slots.table;
    let addr = |i: u32| table[i as usize];
    s.srcs.clear();
    s.later.clear();
    s.backs.clear();
    let mut at = 0;
    for (k, n) in nodes.iter().enumerate() {
        if matches!(n.op, Op::Loop { .. }) {
            return conflict(format!("new node {} is a loop", addr(n.addr).short()));
        }
        let end = n.inputs_end as usize - base;
        let mut on_loop = false;
        for (slot, &i) in inputs[at..end].iter().enumerate() {
            // A loop phi's back edge (its third input, not hashed) may be
            // built later in the same recipe: found once all are known.
            if on_loop && slot == 2 {
                s.later.push((s.srcs.len(), i));
                s.srcs.push(Src::Recipe(usize::MAX));
                continue;
            }
            let src = match slots.recipe(p, i) {
                Some(j) => Src::Recipe(j),
                None => match slots.node(g, i) {
                    Some(id) => {
                        if g.resolve(id) != id {
                            return conflict(format!(
                                "input {} of new node {} is already replaced",
                                addr(i).short(),
                                addr(n.addr).short()
                            ));
                        }
                        // A phi on a loop carries its back edge as a third input.
                        if slot == 0
                            && matches!(n.op, Op::Phi { .. })
                            && matches!(g.op(id), Op::Loop { .. })
                        {
                            if end - at != 3 {
                                return conflict(format!(
                                    "new loop phi {} has no back edge",
                                    addr(n.addr).short()
                                ));
                            }
                            on_loop = true;
                        }
                        Src::Graph(id)
                    }
                    None => return slots.stale(i),
                },
            };
            s.srcs.push(src);
        }
        at = end;
        // Later inputs naming this entry mean this node (the latest one,
        // should a recipe build an address twice).
        let slot = &mut slots.slots[n.addr as usize];
        slot.patch = p as u32 + 1;
        slot.k = k as u32;
    }
    for &(at, i) in &s.later {
        s.srcs[at] = match slots.recipe(p, i) {
            Some(j) => Src::Recipe(j),
            None => match slots.node(g, i) {
                Some(id) if g.resolve(id) != id => {
                    return conflict(format!(
                        "back edge {} of a new loop phi is already replaced",
                        addr(i).short()
                    ))
                }
                Some(id) => Src::Graph(id),
                None => return slots.stale(i),
            },
        };
    }
    let by = match slots.recipe(p, tp.by) {
        Some(j) => Src::Recipe(j),
        None => match slots.node(g, tp.by) {
            Some(id) => Src::Graph(id),
            None => return slots.stale(tp.by),
        },
    };
    if g.node(target).replaced_by().is_some() {
        let by_now = match by {
            Src::Graph(b) => Some(b),
            // Built before (replaying twice): the graph has it.
            Src::Recipe(_) => slots.node(g, tp.by),
        };
        let same = by_now.is_some_and(|b| g.resolve(b) == g.resolve(target));
        return if same {
            Outcome::Applied
        } else {
            conflict(format!(
                "target {} is already replaced",
                addr(tp.target).short()
            ))
        };
    }
    // Build the new nodes exactly as recorded (no peepholes).
    s.built.clear();
    let mut next = 0;
    let mut at = 0;
    for n in nodes {
        let end = n.inputs_end as usize - base;
        let count = end - at;
        at = end;
        let srcs = &s.srcs[next..next + count];
        next += count;
        let (hashed, back) = hashed_inputs(g, n.op, srcs);
        if let Some(b) = back {
            s.backs.push((s.built.len(), b));
        }
        s.inputs.clear();
        s.inputs
            .extend(srcs[..hashed].iter().map(|src| src.node(&s.built)));
        let want = addr(n.addr);
        let built = if trusted {
            g.intern_recorded(n.op, n.ty, &s.inputs, want)
        } else {
            g.intern(n.op, n.ty, &s.inputs)
        };
        match built {
            Ok(id) if g.addr(id) == want => {
                s.built.push(id);
                slots.slots[n.addr as usize].id = id.index() as u32;
            }
            Ok(_) => {
                return conflict(format!(
                    "new node {} came out with another address",
                    want.short()
                ))
            }
            Err(e) => return conflict(format!("new node {}: {e}", want.short())),
        }
    }
    if let Err(o) = set_back_edges(g, &s.built, &s.backs) {
        return o;
    }
    match g.replace(target, by.node(&s.built)) {
        Ok(()) => Outcome::Applied,
        Err(e) => conflict(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::LogBook;
    use crate::model::tests::{recorded, sample};
    use crate::model::Recorder;

    fn as_table(log: &Log) -> LogBook {
        let bytes = LogBook::from(log.clone()).to_binary(None);
        LogBook::parse_keyed(&bytes, "f", None).unwrap().0
    }

    #[test]
    fn a_table_unit_spells_out_as_its_log_and_replays_like_it() {
        let log = recorded();
        let book = as_table(&log);
        assert!(book.holds(&log));
        let mut g = sample();
        let rec = Recorder::start(&g);
        let r = book.replay_unit(&mut g, &rec).unwrap();
        assert!(r.complete() && r.applied == log.patches.len(), "{r:?}");
        let mut h = sample();
        assert_eq!(crate::replay(&mut h, &log), r);
        assert_eq!(g.replacements(), h.replacements());
        assert_eq!(book.unit(&log.program), Some(&log));
    }

    #[test]
    fn promoted_loop_phis_replay_from_the_table() {
        // Promotion builds loop phis whose back edge is a third input,
        // sometimes a node built later in the same recipe.
        let src = crate::replay::tests::NESTED;
        let mut opt = vssa::parse(src).unwrap();
        let rec = Recorder::start(&opt);
        vssa::optimize(&mut opt).unwrap();
        assert!(vssa::promote(&mut opt).unwrap().values >= 4);
        vssa::optimize(&mut opt).unwrap();
        let log = rec.log(&opt).unwrap();
        let book = as_table(&log);
        let mut g = vssa::parse(src).unwrap();
        let rec = Recorder::start(&g);
        let r = book.replay_unit(&mut g, &rec).unwrap();
        assert!(r.complete() && r.applied == log.patches.len(), "{r:?}");
        vssa::verify(&g).unwrap();
        assert_eq!(vssa::live_graph_key(&g), vssa::live_graph_key(&opt));
    }

    #[test]
    fn same_as_sees_every_field() {
        let log = recorded();
        let book = as_table(&log);
        let p = log
            .patches
            .iter()
            .position(|p| p.nodes.first().is_some_and(|n| !n.inputs.is_empty()))
            .expect("a patch with a new node with inputs");
        let elsewhere = Addr([1; 16]);
        let edits: [fn(&mut Log, usize, Addr); 9] = [
            |l, p, a| l.patches[p].target = a,
            |l, p, a| l.patches[p].by = a,
            |l, p, a| l.patches[p].nodes[0].addr = a,
            |l, p, a| l.patches[p].nodes[0].inputs[0] = a,
            |l, p, _| l.patches[p].nodes[0].op = Op::Const { value: 12345 },
            |l, p, _| l.patches[p].nodes[0].ty = Type::Frame,
            |l, p, _| l.patches[p].nodes.clear(),
            |l, _, a| {
                l.refute(a);
            },
            |l, _, _| l.encoding += 1,
        ];
        for (k, edit) in edits.iter().enumerate() {
            let mut other = log.clone();
            edit(&mut other, p, elsewhere);
            assert!(!book.holds(&other), "edit {k}");
        }
        let mut shorter = log.clone();
        shorter.patches.pop();
        assert!(!book.holds(&shorter));
    }
}
