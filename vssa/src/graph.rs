//! The graph: an arena of interned nodes with replaced-by forwarding.
//!
//! Nodes are referred to by [`NodeId`] (a dense index, cheap to copy and
//! compare) inside one graph, and by [`Addr`] (their content address) across
//! graphs and processes. Interning guarantees one node per address.
//!
//! A node is never edited once interned. Two things may happen to it later:
//! a cycle-closing node (`Loop`, loop `Phi`) receives its back-edge input
//! once ([`Graph::set_back_input`]), and any node may be *replaced*
//! ([`Graph::replace`]): its `replaced_by` is set and every reader goes
//! through [`Graph::resolve`]. Neither changes an address.

use crate::addr::{address_by, Addr};
use crate::op::Op;
use crate::sig::Signature;
use crate::types::Type;
use smallvec::SmallVec;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// A node's index in its graph.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The arena index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of arena slot `i`.
    #[inline]
    pub fn from_index(i: usize) -> NodeId {
        NodeId(u32::try_from(i).expect("graph larger than 2^32 nodes"))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Inputs are few; four fit without a heap allocation.
pub type Inputs = SmallVec<[NodeId; INLINE_INPUTS]>;

/// How many inputs [`Inputs`] holds without a heap allocation.
const INLINE_INPUTS: usize = 4;

/// One interned node.
#[derive(Clone, Debug)]
pub struct Node {
    op: Op,
    ty: Type,
    inputs: Inputs,
    addr: Addr,
    replaced_by: Option<NodeId>,
    /// Input slots of other nodes that name this node, plus those of nodes
    /// replaced by it. Never decreases, so it over-approximates live uses:
    /// rules that need "only one user" stay safe with it.
    uses: u32,
}

impl Node {
    #[inline]
    pub fn op(&self) -> Op {
        self.op
    }
    #[inline]
    pub fn ty(&self) -> Type {
        self.ty
    }
    /// Inputs as built (not resolved). Use [`Graph::input`] to read through replacements.
    #[inline]
    pub fn raw_inputs(&self) -> &[NodeId] {
        &self.inputs
    }
    #[inline]
    pub fn addr(&self) -> Addr {
        self.addr
    }
    #[inline]
    pub fn replaced_by(&self) -> Option<NodeId> {
        self.replaced_by
    }
    #[inline]
    pub fn use_count(&self) -> u32 {
        self.uses
    }
}

/// Errors from building or mutating a graph. None of them is a panic: an
/// embedder's bad request is reported and the graph stays as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// Two different nodes hashed to one address.
    Collision { addr: Addr, existing: NodeId },
    /// An input id that this graph never handed out.
    UnknownNode(NodeId),
    /// `set_back_input` on a node that does not close a cycle, or twice.
    BadBackEdge { node: NodeId, reason: &'static str },
    /// `replace` of a node that is already replaced.
    AlreadyReplaced { node: NodeId, by: NodeId },
    /// `replace(a, b)` where `b` resolves to `a`.
    ReplacementCycle { node: NodeId, by: NodeId },
    /// `replace(a, b)` with `a` and `b` of different types.
    ReplacementType { node: NodeId, by: NodeId },
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Collision { addr, existing } => write!(
                f,
                "address collision: a different node already has address {addr} ({existing})"
            ),
            GraphError::UnknownNode(n) => write!(f, "unknown node {n}"),
            GraphError::BadBackEdge { node, reason } => {
                write!(f, "cannot set the back edge of {node}: {reason}")
            }
            GraphError::AlreadyReplaced { node, by } => {
                write!(f, "{node} is already replaced by {by}")
            }
            GraphError::ReplacementCycle { node, by } => {
                write!(f, "replacing {node} by {by} would make a forwarding cycle")
            }
            GraphError::ReplacementType { node, by } => {
                write!(f, "cannot replace {node} by {by}: their types differ")
            }
        }
    }
}

impl std::error::Error for GraphError {}

/// Hashes an [`Addr`] by its first eight bytes. An address is already the
/// output of a cryptographic hash, so hashing it again (as the default
/// SipHash would) only costs time.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Addresses arrive as one 16-byte write (after a length prefix,
        // which `write_usize` ignores); fold anything else in too.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }

    fn write_usize(&mut self, _: usize) {}
}

/// A multiply-rotate hasher over machine words, for keys made of small
/// integers and node ids (the optimizer's value numbering, the graph's
/// [`Graph::intern`] shortcut): hashed by the million in one run, where the
/// standard library's SipHash cost more than the lookups it served.
#[derive(Default)]
pub struct WordHasher(u64);

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// Passes a `u64` key through (it is already a [`WordHasher`] output).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// The key of [`Graph::by_parts`]: operation, type and (hashed, resolved)
/// inputs, hashed with [`WordHasher`].
fn parts_key(op: &Op, ty: Type, inputs: &[NodeId]) -> u64 {
    let mut h = WordHasher::default();
    op.hash(&mut h);
    ty.hash(&mut h);
    for i in inputs {
        h.write_u32(i.0);
    }
    let k = h.finish();
    k ^ (k >> 29)
}

/// The users of every live node (see [`Graph::users_of`]): node `n`'s
/// users are `users[start[n]..start[n + 1]]`, in the order of the live
/// nodes; indexed by node index. A node the graph did not have when they
/// were taken has none.
#[derive(Clone, Debug, Default)]
pub struct UserLists {
    start: Vec<u32>,
    users: Vec<NodeId>,
}

impl UserLists {
    /// The users of `n`, once per input slot, in the order of the live
    /// nodes they were taken from.
    pub fn of(&self, n: NodeId) -> &[NodeId] {
        self.get(n.index())
    }

    /// The two arrays: node `n`'s users are `users[start[n]..start[n + 1]]`
    /// (`start` is one longer than the graph was when they were taken).
    pub(crate) fn flat(&self) -> (&[u32], &[NodeId]) {
        (&self.start, &self.users)
    }

    fn get(&self, i: usize) -> &[NodeId] {
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.users[a as usize..b as usize],
            _ => &[],
        }
    }
}

impl std::ops::Index<usize> for UserLists {
    type Output = [NodeId];

    fn index(&self, i: usize) -> &[NodeId] {
        self.get(i)
    }
}

/// A content-addressed sea-of-nodes graph.
#[derive(Clone, Debug)]
pub struct Graph {
    nodes: Vec<Node>,
    by_addr: HashMap<Addr, NodeId, BuildHasherDefault<AddrHasher>>,
    /// Nodes by what they were interned from ([`parts_key`]): interning a
    /// node that exists finds it here without computing its address (a
    /// blake3 hash, most of what interning cost). One node per key, the
    /// latest: a key two nodes share finds at most one, and a miss falls
    /// back to the address, so this only ever saves work.
    by_parts: HashMap<u64, NodeId, BuildHasherDefault<KeyHasher>>,
    end: Option<NodeId>,
    /// Every replacement, in order: what the patch log records.
    replacements: Vec<(NodeId, NodeId)>,
    /// Construction-time peepholes (on by default).
    simplify_on_build: bool,
    /// Requests to build a node (including those answered by an existing node
    /// or by a peephole), for statistics.
    build_requests: u64,
    /// The function's parameter and result types; `None` is the entry
    /// shape `(ptr) -> exit code` every guest unit had before signatures.
    signature: Option<Signature>,
    /// [`Graph::live_nodes`] as last computed, until a change that can
    /// change it: a replacement, a back edge or the `End` set. Interning
    /// cannot (a new node is unreachable until one of those makes it an
    /// input of a live node). Passes ask for the live nodes of a graph the
    /// pass before them left unchanged (each optimizer run ends with a
    /// sweep that changes nothing, after it the next pass asks again).
    live: OnceLock<Live>,
    /// [`Graph::live_users`] as last computed, until the same changes.
    /// Passes that only read users (closed forms, control folding) often
    /// follow one that changed nothing.
    users: OnceLock<Arc<UserLists>>,
}

/// The live nodes (see [`Graph::live_nodes`]), as a list in order and as
/// one bit per node.
#[derive(Clone, Debug, Default)]
struct Live {
    nodes: Vec<NodeId>,
    bits: Vec<u64>,
    /// Per node index plus one: how many input slots of live nodes name
    /// it (counted by the walk, which reads every one of them anyway), so
    /// that [`Graph::live_users`] fills its lists in one pass.
    uses: Vec<u32>,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    pub fn new() -> Graph {
        Graph {
            nodes: Vec::new(),
            by_addr: HashMap::default(),
            by_parts: HashMap::default(),
            end: None,
            replacements: Vec::new(),
            simplify_on_build: true,
            build_requests: 0,
            signature: None,
            live: OnceLock::new(),
            users: OnceLock::new(),
        }
    }

    /// Gives the graph a signature: parameter `i` is `Proj 2+i` of `Start`
    /// with type `sig.param(i)`, and every `Return` returns one value per
    /// result. Part of the graph's code key ([`crate::live_graph_key`]).
    pub fn set_signature(&mut self, sig: Signature) {
        self.signature = Some(sig);
    }

    /// The graph's signature, `None` for the classic entry shape (one
    /// pointer parameter, one value returned as the exit code).
    pub fn signature(&self) -> Option<Signature> {
        self.signature
    }

    /// Turns construction-time peepholes on or off (on by default). Off is
    /// for tests and for measuring what the peepholes do.
    pub fn set_simplify_on_build(&mut self, on: bool) {
        self.simplify_on_build = on;
    }

    pub fn simplify_on_build(&self) -> bool {
        self.simplify_on_build
    }

    /// Number of nodes ever interned (live or not).
    #[inline]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many nodes the builder asked for, hits and peephole answers included.
    pub fn build_requests(&self) -> u64 {
        self.build_requests
    }

    #[inline]
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// `Some` if `id` was handed out by this graph.
    #[inline]
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    #[inline]
    pub fn op(&self, id: NodeId) -> Op {
        self.nodes[id.index()].op
    }

    #[inline]
    pub fn ty(&self, id: NodeId) -> Type {
        self.nodes[id.index()].ty
    }

    #[inline]
    pub fn addr(&self, id: NodeId) -> Addr {
        self.nodes[id.index()].addr
    }

    /// The node with this address, if interned (resolved or not).
    pub fn lookup(&self, addr: &Addr) -> Option<NodeId> {
        self.by_addr.get(addr).copied()
    }

    /// All node ids, in construction order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).map(NodeId::from_index)
    }

    /// Follows `replaced_by` to the node that currently stands for `id`.
    #[inline]
    pub fn resolve(&self, mut id: NodeId) -> NodeId {
        while let Some(next) = self.nodes[id.index()].replaced_by {
            id = next;
        }
        id
    }

    /// Input `i` of `id`, resolved.
    #[inline]
    pub fn input(&self, id: NodeId, i: usize) -> NodeId {
        self.resolve(self.nodes[id.index()].inputs[i])
    }

    /// All inputs of `id`, resolved.
    pub fn inputs(&self, id: NodeId) -> Inputs {
        let raw = &self.nodes[id.index()].inputs;
        if raw.len() <= INLINE_INPUTS {
            // Filled in place: collecting through an iterator cost more
            // than the resolving (this runs on every optimizer visit).
            let mut buf = [NodeId(0); INLINE_INPUTS];
            for (slot, &i) in buf.iter_mut().zip(raw.iter()) {
                *slot = self.resolve(i);
            }
            Inputs::from_buf_and_len(buf, raw.len())
        } else {
            raw.iter().map(|&i| self.resolve(i)).collect()
        }
    }

    /// Number of inputs (including a back edge once set).
    #[inline]
    pub fn arity(&self, id: NodeId) -> usize {
        self.nodes[id.index()].inputs.len()
    }

    /// How many leading inputs the address covers: all of them, except the
    /// back edge of a `Loop` and of a `Phi` on a `Loop`.
    pub fn hashed_arity(&self, id: NodeId) -> usize {
        let n = &self.nodes[id.index()];
        match n.op {
            Op::Loop { .. } => 1.min(n.inputs.len()),
            Op::Phi { .. } if self.is_loop_phi(id) => 2.min(n.inputs.len()),
            _ => n.inputs.len(),
        }
    }

    /// A `Phi` whose region is a `Loop`.
    pub fn is_loop_phi(&self, id: NodeId) -> bool {
        let n = &self.nodes[id.index()];
        matches!(n.op, Op::Phi { .. })
            && n.inputs
                .first()
                .is_some_and(|&r| matches!(self.op(self.resolve(r)), Op::Loop { .. }))
    }

    /// The back-edge input of a `Loop` or loop `Phi`, if set (resolved).
    pub fn back_input(&self, id: NodeId) -> Option<NodeId> {
        let h = self.hashed_arity(id);
        let n = &self.nodes[id.index()];
        if matches!(n.op, Op::Loop { .. } | Op::Phi { .. }) && n.inputs.len() > h {
            Some(self.resolve(n.inputs[h]))
        } else {
            None
        }
    }

    /// The graph's `End`, once [`Graph::set_end`] was called.
    pub fn end(&self) -> Option<NodeId> {
        self.end.map(|e| self.resolve(e))
    }

    /// The `End` as set, before resolving replacements: what a graph
    /// rebuilt from the same program starts from.
    pub fn end_as_built(&self) -> Option<NodeId> {
        self.end
    }

    /// Marks `end` (an `End` node) as the sink that liveness starts from.
    pub fn set_end(&mut self, end: NodeId) {
        self.forget_live();
        self.end = Some(end);
    }

    /// Every replacement made so far, in order.
    pub fn replacements(&self) -> &[(NodeId, NodeId)] {
        &self.replacements
    }

    /// Builds a node: resolves the inputs, lets the construction-time
    /// peepholes answer with an equivalent node if they can, and otherwise
    /// interns it. This is the entry point for front-ends and passes.
    pub fn build(&mut self, op: Op, ty: Type, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        self.build_requests += 1;
        let inputs = self.resolve_all(inputs)?;
        if self.simplify_on_build {
            if let Some(n) = crate::peephole::simplify_resolved(self, op, ty, &inputs)? {
                return Ok(n);
            }
        }
        self.intern_resolved(op, ty, &inputs)
    }

    /// Interns a node as given (inputs are resolved, no peepholes): returns
    /// the existing node with the same address, or a new one.
    pub fn intern(&mut self, op: Op, ty: Type, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        let inputs = self.resolve_all(inputs)?;
        self.intern_resolved(op, ty, &inputs)
    }

    fn resolve_all(&self, inputs: &[NodeId]) -> Result<Inputs, GraphError> {
        if inputs.len() <= INLINE_INPUTS {
            let mut buf = [NodeId(0); INLINE_INPUTS];
            for (slot, &i) in buf.iter_mut().zip(inputs) {
                if i.index() >= self.nodes.len() {
                    return Err(GraphError::UnknownNode(i));
                }
                *slot = self.resolve(i);
            }
            return Ok(Inputs::from_buf_and_len(buf, inputs.len()));
        }
        inputs
            .iter()
            .map(|&i| {
                if i.index() < self.nodes.len() {
                    Ok(self.resolve(i))
                } else {
                    Err(GraphError::UnknownNode(i))
                }
            })
            .collect()
    }

    /// The address a node with these (already resolved) parts would get.
    /// For `Loop` and loop `Phi`, pass only the hashed inputs.
    pub fn address_of(&self, op: &Op, ty: Type, inputs: &[NodeId]) -> Addr {
        address_by(op, ty, inputs.len(), |i| self.nodes[inputs[i].index()].addr)
    }

    fn intern_resolved(
        &mut self,
        op: Op,
        ty: Type,
        inputs: &[NodeId],
    ) -> Result<NodeId, GraphError> {
        let op = match op {
            Op::Const { value } => Op::Const {
                value: ty.normalize(value),
            },
            other => other,
        };
        let key = parts_key(&op, ty, inputs);
        if let Some(&id) = self.by_parts.get(&key) {
            // The same operation, type and hashed inputs: the same address.
            let e = &self.nodes[id.index()];
            if e.op == op && e.ty == ty && e.inputs[..self.hashed_arity(id)] == *inputs {
                return Ok(id);
            }
        }
        let addr = self.address_of(&op, ty, inputs);
        self.intern_at(op, ty, inputs, addr, key)
    }

    /// [`Graph::intern`] under an address the caller vouches for, without
    /// hashing: for replaying a patch log made by a recorder in this
    /// process, which read `addr` off the graph that built the same node
    /// (op, type and input addresses). Hashing is most of a replay's cost.
    /// Never pass an address read from outside (a file): use `intern`,
    /// which computes it. If `addr` is taken, the node there must have the
    /// same content, or this is a collision error as in `intern`.
    pub fn intern_recorded(
        &mut self,
        op: Op,
        ty: Type,
        inputs: &[NodeId],
        addr: Addr,
    ) -> Result<NodeId, GraphError> {
        // Replay passes unreplaced inputs; anything else is resolved first.
        let unreplaced = inputs.iter().all(|&i| {
            self.nodes
                .get(i.index())
                .is_some_and(|n| n.replaced_by.is_none())
        });
        if !unreplaced {
            let inputs = self.resolve_all(inputs)?;
            return self.intern_recorded(op, ty, &inputs, addr);
        }
        debug_assert_eq!(addr, self.address_of(&op, ty, inputs), "{op} {ty}");
        let key = parts_key(&op, ty, inputs);
        self.intern_at(op, ty, inputs, addr, key)
    }

    /// Makes room for `additional` more nodes.
    pub fn reserve(&mut self, additional: usize) {
        self.nodes.reserve(additional);
        self.by_addr.reserve(additional);
        self.by_parts.reserve(additional);
    }

    /// Interns at `addr`; `key` is [`parts_key`] of the same parts.
    fn intern_at(
        &mut self,
        op: Op,
        ty: Type,
        inputs: &[NodeId],
        addr: Addr,
        key: u64,
    ) -> Result<NodeId, GraphError> {
        // One probe of the address map for a hit or a new node alike.
        let id = NodeId::from_index(self.nodes.len());
        let existing = match self.by_addr.entry(addr) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(v) => {
                v.insert(id);
                id
            }
        };
        if existing != id {
            let e = &self.nodes[existing.index()];
            let h = self.hashed_arity(existing);
            let same = e.op == op && e.ty == ty && e.inputs[..h] == *inputs;
            return if same {
                Ok(existing)
            } else {
                Err(GraphError::Collision { addr, existing })
            };
        }
        for &i in inputs {
            self.nodes[i.index()].uses += 1;
        }
        self.by_parts.insert(key, id);
        self.nodes.push(Node {
            op,
            ty,
            inputs: Inputs::from_slice(inputs),
            addr,
            replaced_by: None,
            uses: 0,
        });
        Ok(id)
    }

    /// Closes a cycle: gives a `Loop` or loop `Phi` its back-edge input.
    /// Allowed once per node; the address does not change.
    pub fn set_back_input(&mut self, node: NodeId, value: NodeId) -> Result<(), GraphError> {
        if node.index() >= self.nodes.len() {
            return Err(GraphError::UnknownNode(node));
        }
        if value.index() >= self.nodes.len() {
            return Err(GraphError::UnknownNode(value));
        }
        let n = &self.nodes[node.index()];
        let expected = match n.op {
            Op::Loop { .. } => 1,
            Op::Phi { .. } if self.is_loop_phi(node) => 2,
            _ => {
                return Err(GraphError::BadBackEdge {
                    node,
                    reason: "only a Loop or a Phi on a Loop has a back edge",
                })
            }
        };
        if n.inputs.len() != expected {
            return Err(GraphError::BadBackEdge {
                node,
                reason: "the back edge is already set",
            });
        }
        let value = self.resolve(value);
        self.forget_live();
        self.nodes[value.index()].uses += 1;
        self.nodes[node.index()].inputs.push(value);
        Ok(())
    }

    /// Records that `old` is replaced by `new`: every reader of `old` now
    /// sees `new`. Addresses do not change. This is the only mutation passes
    /// make, and each one is a patch.
    pub fn replace(&mut self, old: NodeId, new: NodeId) -> Result<(), GraphError> {
        for n in [old, new] {
            if n.index() >= self.nodes.len() {
                return Err(GraphError::UnknownNode(n));
            }
        }
        if let Some(by) = self.nodes[old.index()].replaced_by {
            return Err(GraphError::AlreadyReplaced { node: old, by });
        }
        let target = self.resolve(new);
        if target == old {
            return Err(GraphError::ReplacementCycle { node: old, by: new });
        }
        if self.ty(old) != self.ty(target) {
            return Err(GraphError::ReplacementType { node: old, by: new });
        }
        let moved = self.nodes[old.index()].uses;
        let t = &mut self.nodes[target.index()];
        t.uses = t.uses.saturating_add(moved);
        self.forget_live();
        self.nodes[old.index()].replaced_by = Some(new);
        self.replacements.push((old, new));
        Ok(())
    }

    /// Drops what was computed of the live graph: a replacement, a back
    /// edge or the `End` may change it.
    fn forget_live(&mut self) {
        self.live = OnceLock::new();
        self.users = OnceLock::new();
    }

    /// The nodes reachable backwards from `End` through resolved inputs
    /// (back edges included), in construction order. Iterative: any depth.
    pub fn live_nodes(&self) -> Vec<NodeId> {
        self.live.get_or_init(|| self.walk_live()).nodes.clone()
    }

    /// The live nodes as a bit set: bit `i % 64` of word `i / 64` is set
    /// when the node of index `i` is live (words past the end: none). For
    /// a pass that puts every live node in a set of its own.
    pub fn live_bits(&self) -> &[u64] {
        &self.live.get_or_init(|| self.walk_live()).bits
    }

    /// The walk behind [`Graph::live_nodes`].
    fn walk_live(&self) -> Live {
        // One bit per node, read out in order at the end: every pass asks
        // for the live nodes, some of them several times.
        let mut seen = vec![0u64; self.nodes.len().div_ceil(64)];
        let mut uses = vec![0u32; self.nodes.len() + 1];
        let mut stack: Vec<NodeId> = Vec::with_capacity(64);
        let mut count = 0;
        if let Some(e) = self.end() {
            seen[e.index() / 64] |= 1 << (e.index() % 64);
            stack.push(e);
            count += 1;
        }
        while let Some(n) = stack.pop() {
            for &i in &self.nodes[n.index()].inputs {
                let i = self.resolve(i);
                uses[i.index() + 1] += 1;
                let (w, bit) = (i.index() / 64, 1u64 << (i.index() % 64));
                if seen[w] & bit == 0 {
                    seen[w] |= bit;
                    stack.push(i);
                    count += 1;
                }
            }
        }
        let mut live = Vec::with_capacity(count);
        for (w, &word) in seen.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                live.push(NodeId::from_index(w * 64 + rest.trailing_zeros() as usize));
                rest &= rest - 1;
            }
        }
        Live {
            nodes: live,
            bits: seen,
            uses,
        }
    }

    /// Users of every live node through resolved inputs, indexed by node id
    /// (dead nodes have none). A user appears once per input slot.
    pub fn users(&self) -> UserLists {
        self.users_of(&self.live_nodes())
    }

    /// [`Graph::users`], kept until a change to the live graph (as
    /// [`Graph::live_nodes`] is): a pass that follows one that changed
    /// nothing gets them without a walk.
    pub fn live_users(&self) -> Arc<UserLists> {
        self.users
            .get_or_init(|| {
                let live = self.live.get_or_init(|| self.walk_live());
                Arc::new(self.fill_users(&live.nodes, live.uses.clone()))
            })
            .clone()
    }

    /// [`Graph::users`] for a caller that already has the live nodes
    /// (from [`Graph::live_nodes`], with no change to the graph since):
    /// walking the graph once instead of twice. Two flat arrays
    /// ([`UserLists`]), no list allocated per node.
    pub fn users_of(&self, live: &[NodeId]) -> UserLists {
        // Counted, summed into each node's first slot, then filled.
        let mut start = vec![0u32; self.nodes.len() + 1];
        for &n in live {
            for &i in &self.nodes[n.index()].inputs {
                start[self.resolve(i).index() + 1] += 1;
            }
        }
        self.fill_users(live, start)
    }

    /// The users of `live`, given in `start[n + 1]` how many input slots
    /// of theirs name node `n` (one entry per node and one more).
    fn fill_users(&self, live: &[NodeId], mut start: Vec<u32>) -> UserLists {
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut fill = start.clone();
        // `start` may be shorter than the graph: nodes made since the walk
        // have no live users.
        let total = start.last().copied().unwrap_or(0);
        let mut users = vec![NodeId(0); total as usize];
        for &n in live {
            for &i in &self.nodes[n.index()].inputs {
                let slot = &mut fill[self.resolve(i).index()];
                users[*slot as usize] = n;
                *slot += 1;
            }
        }
        UserLists { start, users }
    }
}
