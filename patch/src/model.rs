//! The patch model and the recorder.
//!
//! A [`Patch`] says "the node at address `target` is replaced by the node
//! at address `by`", plus the [`NewNode`]s to build first: the nodes the
//! optimizer created since the previous patch, in creation order, each as
//! op, type and input addresses. Everything is named by address, so a patch
//! means the same thing in any graph of the same program, in any process.
//!
//! # Why a patch carries the nodes created *before* it, not "B's subgraph"
//!
//! [`Graph::intern`] resolves inputs through replacements. A node the pass
//! built on input `x` must therefore be rebuilt while `x` is still
//! unreplaced, or it would come out as a different node (with a different
//! address). The recorder puts each new node in the latest patch before
//! which it certainly existed and its inputs were still unreplaced (see
//! [`Recorder::finish`]); replaying in that order rebuilds every node with
//! its recorded address and in its original relative order, so the replayed
//! graph is the optimized graph, node for node.

use std::fmt;
use vssa::{Addr, Graph, NodeId, Op, Type};

/// A recipe node's input addresses: nodes have few inputs, and a log
/// holds tens of thousands of recipe nodes, so they are kept inline (no
/// allocation per node when a log is read).
pub type RecipeInputs = smallvec::SmallVec<[Addr; 3]>;

/// A node a patch builds before its replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNode {
    /// Its content address, checked against `op`, `ty` and `inputs`.
    pub addr: Addr,
    pub op: Op,
    pub ty: Type,
    /// Input addresses, in input order; a new loop phi's back edge is its
    /// third (replay builds the phi on the first two, then sets it).
    pub inputs: RecipeInputs,
}

/// A patch's new nodes: most patches build none or one, so one is kept
/// inline (a log is read without an allocation per patch, and replay walks
/// the patches and their nodes in one contiguous array).
pub type PatchNodes = smallvec::SmallVec<[NewNode; 1]>;

/// One optimizing mutation: build `nodes` in order, then replace `target` by `by`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub target: Addr,
    pub by: Addr,
    pub nodes: PatchNodes,
}

impl Patch {
    /// The addresses this patch relies on: the target, and every address it
    /// names (inputs, `by`) that it does not build itself. First occurrence
    /// order, no duplicates. A patch whose prerequisite is absent is stale.
    pub fn prerequisites(&self) -> Vec<Addr> {
        let built: std::collections::HashSet<Addr> = self.nodes.iter().map(|n| n.addr).collect();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let named = std::iter::once(self.target)
            .chain(self.nodes.iter().flat_map(|n| n.inputs.iter().copied()))
            .chain(std::iter::once(self.by));
        for a in named {
            if (a == self.target || !built.contains(&a)) && seen.insert(a) {
                out.push(a);
            }
        }
        out
    }
}

/// Why a graph's changes cannot be written as patches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The pass created a `Loop` (whose back edge is not hashed, so no
    /// recipe could rebuild it), or a `Phi` on a `Loop` without its back
    /// edge. New loop phis with their back edge set are recorded (loop
    /// promotion makes them).
    CycleNode { node: NodeId, op: Op },
    /// The graph has fewer nodes or replacements than when recording began:
    /// it is not the graph the recorder was started on.
    NotTheSameGraph,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::CycleNode { node, op } => write!(
                f,
                "cannot record {node} ({op}): a node closing a cycle cannot be rebuilt from its address"
            ),
            RecordError::NotTheSameGraph => {
                f.write_str("the graph is not the one recording started on")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// The key of a built program: the first 16 bytes of a blake3 hash over
/// the `End`'s address; for every `Loop` and loop `Phi` (in construction
/// order), its address and its back-edge input's address; and the number
/// of nodes and the sum of all their addresses.
///
/// An address hashes a node's inputs, and theirs, all the way down, but not
/// back edges: the `End` address alone pins every node reachable from it
/// except through a back edge, so two programs that differ only inside a
/// loop body can share it, and a patch recorded for one (say, "this loop
/// phi is redundant") would be wrong for the other. With every back edge
/// in the key, a node with a given address means the same in every graph
/// with the same key, so a patch never applies where it would be wrong.
/// The count and sum tell apart builds of the same live program with
/// different dead nodes (patches may name dead nodes: a speculation site's
/// frame state is dead until a guard uses it), so that a matching key
/// means the whole log applies; the sum is no defence against a program
/// crafted to collide, but safety does not rest on it. Cheap: one pass
/// over the nodes, hashing only loops and phis (hashing every node's
/// address cost a third of a replay).
pub fn program_key(g: &Graph) -> Addr {
    let mut buf = Vec::with_capacity(64 * 32);
    buf.extend_from_slice(b"vssa-patch program key v2\0");
    buf.extend_from_slice(&vssa::ENCODING_VERSION.to_le_bytes());
    buf.extend_from_slice(&g.end().map_or([0u8; 16], |e| g.addr(e).0));
    // A function's signature is part of what it is (graphs without one
    // keep the keys they always had).
    if let Some(sig) = g.signature() {
        buf.extend_from_slice(b"signature");
        buf.extend_from_slice(&sig.bits().to_le_bytes());
    }
    let mut sum = 0u128;
    for id in g.ids() {
        let n = g.node(id);
        sum = sum.wrapping_add(u128::from_le_bytes(n.addr().0));
        if !matches!(n.op(), Op::Loop { .. } | Op::Phi { .. }) {
            continue;
        }
        if let Some(&back) = n.raw_inputs().get(g.hashed_arity(id)) {
            buf.extend_from_slice(&n.addr().0);
            buf.extend_from_slice(&g.addr(back).0);
        }
    }
    buf.extend_from_slice(&(g.len() as u64).to_le_bytes());
    buf.extend_from_slice(&sum.to_le_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&blake3::hash(&buf).as_bytes()[..16]);
    Addr(key)
}

/// Records the mutations made to a graph after construction.
///
/// Start it on the freshly built graph (before replay or optimization);
/// [`Recorder::finish`] then turns every replacement made since into a
/// patch. Construction-time canonicalization happened before `start` and is
/// not recorded: the front-end redoes it when it rebuilds the graph.
#[derive(Clone, Debug)]
pub struct Recorder {
    base_len: usize,
    base_replacements: usize,
    program: Addr,
}

impl Recorder {
    pub fn start(g: &Graph) -> Recorder {
        Recorder {
            base_len: g.len(),
            base_replacements: g.replacements().len(),
            program: program_key(g),
        }
    }

    /// The [`program_key`] of the graph as built.
    pub fn program(&self) -> Addr {
        self.program
    }

    /// Every replacement since [`Recorder::start`], as patches, in order:
    /// the full record of what the passes did. [`Recorder::net`] is the
    /// shorter log with the same result, which [`Recorder::log`] hands out.
    pub fn finish(&self, g: &Graph) -> Result<Vec<Patch>, RecordError> {
        Ok(every_patch(g, &self.timeline(g)?))
    }

    /// The net effect of every replacement since [`Recorder::start`]: only
    /// the new nodes and replacements the optimized graph can observe, with
    /// chains of replacements shortened to their end (see [`crate::net`]).
    /// Replaying it gives the same live graph as replaying
    /// [`Recorder::finish`], and a refuted guard cuts it at the same point.
    pub fn net(&self, g: &Graph) -> Result<Vec<Patch>, RecordError> {
        let t = self.timeline(g)?;
        // A case the net form does not cover: the full record is right.
        Ok(crate::net::net_patches(g, &t).unwrap_or_else(|| every_patch(g, &t)))
    }

    /// Where each node created since [`Recorder::start`] goes among the
    /// replacements made since.
    ///
    /// New node `m` goes into patch `pos(m)`, the suffix minimum (over `m`
    /// and every later node) of the first replacement that either names a
    /// node at or after `m` (so `m` existed) or replaces an input of `m`
    /// (so `m` was built before it). Monotone in creation order, so nodes
    /// are rebuilt in their original order; nodes created after the last
    /// replacement are dead and get `usize::MAX`. Linear in new nodes +
    /// replacements.
    pub(crate) fn timeline<'g>(&self, g: &'g Graph) -> Result<Timeline<'g>, RecordError> {
        let all = g.replacements();
        if all.len() < self.base_replacements || g.len() < self.base_len {
            return Err(RecordError::NotTheSameGraph);
        }
        let repls = &all[self.base_replacements..];
        let base = self.base_len;
        let n = g.len();
        // First replacement of each node (a node is replaced at most once).
        let mut first_repl = vec![usize::MAX; n];
        for (j, &(old, _)) in repls.iter().enumerate() {
            let slot = &mut first_repl[old.index()];
            if *slot == usize::MAX {
                *slot = j;
            }
        }
        let mut pos = vec![usize::MAX; n - base];
        // Existence bound: replacement j names ids up to the running max.
        let mut next = base;
        let mut max_named = 0usize;
        for (j, &(old, new)) in repls.iter().enumerate() {
            max_named = max_named.max(old.index()).max(new.index());
            while next <= max_named && next < n {
                pos[next - base] = j;
                next += 1;
            }
        }
        for i in base..n {
            let id = NodeId::from_index(i);
            let op = g.op(id);
            // A new loop phi is recorded with its back edge as a third
            // input (replay sets it); a new loop could not be rebuilt.
            if matches!(op, Op::Loop { .. }) || (built_on_loop(g, id) && g.arity(id) < 3) {
                return Err(RecordError::CycleNode { node: id, op });
            }
            for &x in g.node(id).raw_inputs() {
                let p = &mut pos[i - base];
                *p = (*p).min(first_repl[x.index()]);
            }
        }
        for k in (0..pos.len().saturating_sub(1)).rev() {
            pos[k] = pos[k].min(pos[k + 1]);
        }
        // A new loop phi's back edge, built after it, is rebuilt in the
        // same patch (replay sets back edges once a patch's nodes exist).
        for i in base..n {
            let id = NodeId::from_index(i);
            let Some(b) = built_on_loop(g, id)
                .then(|| g.node(id).raw_inputs().get(2))
                .flatten()
            else {
                continue;
            };
            for k in i + 1..=b.index() {
                pos[k - base] = pos[k - base].min(pos[i - base]);
            }
        }
        Ok(Timeline { repls, base, pos })
    }

    /// [`crate::replay()`] onto the graph this recorder was started on, reusing
    /// its program key (saves hashing the graph twice). Call it before any
    /// other change to the graph.
    pub fn replay(&self, g: &mut Graph, log: &crate::Log) -> crate::ReplayReport {
        crate::replay::replay_keyed(g, log, self.program)
    }

    /// [`Recorder::net`] wrapped in a [`crate::Log`] for this program: the
    /// log to store and replay.
    pub fn log(&self, g: &Graph) -> Result<crate::Log, RecordError> {
        Ok(crate::Log::sealed(self.program, self.net(g)?))
    }

    /// [`Recorder::finish`] (every replacement) wrapped in a [`crate::Log`].
    pub fn full_log(&self, g: &Graph) -> Result<crate::Log, RecordError> {
        Ok(crate::Log::sealed(self.program, self.finish(g)?))
    }
}

/// A phi built on a `Loop` (which a later pass may have replaced: what
/// counts is what replay builds it on).
fn built_on_loop(g: &Graph, id: NodeId) -> bool {
    matches!(g.op(id), Op::Phi { .. })
        && g.node(id)
            .raw_inputs()
            .first()
            .is_some_and(|&r| matches!(g.op(r), Op::Loop { .. }))
}

/// The replacements made since [`Recorder::start`] and where each new node
/// would be rebuilt among them ([`Recorder::timeline`]).
pub(crate) struct Timeline<'g> {
    /// The replacements since recording started, in order.
    pub repls: &'g [(NodeId, NodeId)],
    /// Nodes below this index were built before recording started.
    pub base: usize,
    /// For new node `base + k`, the index of the replacement before which
    /// it is rebuilt (`usize::MAX`: created after the last one, dead).
    pub pos: Vec<usize>,
}

/// Every replacement of `t` as a patch, each with the new nodes placed
/// before it ([`Recorder::finish`]).
fn every_patch(g: &Graph, t: &Timeline<'_>) -> Vec<Patch> {
    let mut patches = Vec::with_capacity(t.repls.len());
    let mut k = 0usize;
    for (j, &(old, new)) in t.repls.iter().enumerate() {
        let mut nodes = PatchNodes::new();
        while k < t.pos.len() && t.pos[k] == j {
            nodes.push(new_node(g, NodeId::from_index(t.base + k)));
            k += 1;
        }
        patches.push(Patch {
            target: g.addr(old),
            by: g.addr(new),
            nodes,
        });
    }
    patches
}

/// A node as a recipe entry.
pub(crate) fn new_node(g: &Graph, id: NodeId) -> NewNode {
    NewNode {
        addr: g.addr(id),
        op: g.op(id),
        ty: g.ty(id),
        inputs: g.node(id).raw_inputs().iter().map(|&x| g.addr(x)).collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vssa::BinOp;

    /// `(x + 0) + 1` and `x + 1` merge; `(x + 1) + 2` becomes `x + 3`, a
    /// rewrite that builds a node with inputs (the constant 3 is there
    /// already).
    pub(crate) fn sample() -> Graph {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let zero = g.iconst(Type::I64, 0).unwrap();
        let x0 = g.add(x, zero).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let a = g.add(x0, one).unwrap();
        let b = g.add(x, one).unwrap();
        let m = g.bin(BinOp::Mul, a, b).unwrap();
        let two = g.iconst(Type::I64, 2).unwrap();
        g.iconst(Type::I64, 3).unwrap();
        let c = g.add(b, two).unwrap();
        let s = g.sub(m, c).unwrap();
        let r = g.ret(e.ctrl, e.mem, s).unwrap();
        g.finish(&[r]).unwrap();
        g
    }

    /// The log of optimizing [`sample`].
    pub(crate) fn recorded() -> crate::Log {
        let mut g = sample();
        let rec = Recorder::start(&g);
        vssa::optimize(&mut g).unwrap();
        rec.log(&g).unwrap()
    }

    #[test]
    fn records_every_replacement_in_order() {
        let mut g = sample();
        let rec = Recorder::start(&g);
        vssa::optimize(&mut g).unwrap();
        let patches = rec.finish(&g).unwrap();
        assert!(!patches.is_empty());
        assert_eq!(patches.len(), g.replacements().len());
        for (p, &(old, new)) in patches.iter().zip(g.replacements()) {
            assert_eq!(p.target, g.addr(old));
            assert_eq!(p.by, g.addr(new));
            assert_eq!(p.prerequisites()[0], p.target);
        }
        let built: usize = patches.iter().map(|p| p.nodes.len()).sum();
        assert!(built <= g.len() - rec.base_len);
    }

    #[test]
    fn nothing_to_record_before_a_pass() {
        let g = sample();
        let rec = Recorder::start(&g);
        assert_eq!(rec.finish(&g).unwrap(), vec![]);
        assert_eq!(rec.program(), program_key(&g));
    }

    #[test]
    fn another_graph_is_refused() {
        let mut g = sample();
        vssa::optimize(&mut g).unwrap();
        let rec = Recorder::start(&g);
        let fresh = sample();
        assert_eq!(rec.finish(&fresh), Err(RecordError::NotTheSameGraph));
    }

    #[test]
    fn program_key_sees_back_edges() {
        let make = |step: i64| {
            let mut g = Graph::new();
            let e = g.entry().unwrap();
            let lp = g.loop_header(1, e.ctrl).unwrap();
            let zero = g.iconst(Type::I64, 0).unwrap();
            let phi = g.loop_phi(lp, 0, Type::I64, zero).unwrap();
            // A test at the top: the exit does not depend on the body.
            let ten = g.iconst(Type::I64, 10).unwrap();
            let cond = g.cmp(vssa::CmpOp::Slt, phi, ten).unwrap();
            let (again, out) = g.branch(lp, cond).unwrap();
            let k = g.iconst(Type::I64, step).unwrap();
            let inc = g.add(phi, k).unwrap();
            g.set_back_input(lp, again).unwrap();
            g.set_back_input(phi, inc).unwrap();
            let r = g.ret(out, e.mem, phi).unwrap();
            g.finish(&[r]).unwrap();
            g
        };
        let (a, b) = (make(1), make(2));
        assert_eq!(a.addr(a.end().unwrap()), b.addr(b.end().unwrap()));
        assert_ne!(program_key(&a), program_key(&b));
        assert_eq!(program_key(&a), program_key(&make(1)));
    }

    #[test]
    fn prerequisites_skip_what_the_patch_builds() {
        let a = |b: u8| Addr([b; 16]);
        let p = Patch {
            target: a(1),
            by: a(3),
            nodes: vec![NewNode {
                addr: a(3),
                op: Op::Bin(BinOp::Add),
                ty: Type::I64,
                inputs: vec![a(2), a(2)].into(),
            }]
            .into(),
        };
        assert_eq!(p.prerequisites(), vec![a(1), a(2)]);
    }
}
