//! The worklist optimizer: peepholes and value numbering to a fixed point.
//!
//! Construction-time peepholes see each node once, when it is built; after a
//! replacement, the users of the replaced node may simplify further, and two
//! nodes built on inputs that have since merged may now be one node. The
//! pass revisits exactly those nodes until nothing changes, then sweeps the
//! whole live graph once more (a rule that reads an input's input is not
//! woken by a change there), until a whole sweep changes nothing. Such a
//! sweep skips the nodes that no replacement since their last visit can
//! concern (see `Readers`), which gives the same visits that find
//! something, in the same order.
//!
//! Redundant phis are removed a whole group at a time (see
//! `remove_redundant_phis`): one phi at a time, a nest of `n` loops that
//! all carry an unchanged value would take `n` sweeps, each re-interning
//! everything inside, i.e. quadratic time.
//!
//! Value numbering looks nodes up by what they compute — operation, type
//! and *resolved* inputs (see [`Numbering`]) — instead of building each
//! node whose inputs were replaced again. A node stands for its resolved
//! form whatever its stored inputs are, so rebuilding it bought nothing
//! but a new address; and since that new node replaced the old one, its
//! users were rebuilt in turn, down the whole memory chain: folding one
//! loop near the top of a program rebuilt every load and store after it
//! (mandelbrot: 6 081 nodes after control folding, for 310 replacements).
//!
//! Every change is a [`Graph::replace`]: the graph's replacement list is the
//! whole record of what the pass did, so it can be logged and replayed.

use crate::graph::{Graph, GraphError, Inputs, NodeId, WordHasher};
use crate::op::Op;
use crate::types::Type;

use crate::peephole;
use std::hash::{Hash, Hasher};

/// What a run of [`optimize`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OptStats {
    /// Node visits (a node may be visited more than once), the skipped
    /// ones included.
    pub visited: u64,
    /// Visits skipped because nothing the rules read for the node has been
    /// replaced since its last visit, which found nothing (see `Readers`).
    pub skipped: u64,
    /// Replacements made (each one a patch).
    pub replaced: u64,
    /// Sweeps over the worklist in construction order. The first sweep
    /// covers every live node; a later one only what earlier changes woke up
    /// behind the sweep (typically loop phis after their back edge changed).
    pub rounds: u32,
    /// False when the visit budget ran out before a fixed point. The graph
    /// is valid either way, just possibly less simplified.
    pub converged: bool,
}

/// Visits per live node before the pass gives up. Each rule makes the graph
/// strictly simpler, so real graphs converge in a couple of visits per node;
/// the budget only guards against a rule bug turning into a hang.
const VISITS_PER_NODE: u64 = 16;

/// Simplifies the live graph to a fixed point. Iterative (no recursion over
/// the graph) and deterministic: nodes are visited in construction order
/// within a sweep, and a node woken behind the sweep waits for the next one.
///
/// For each visited node: control nodes are left alone; loop phis only
/// collapse when all their values (back edge included) are one node or the
/// phi itself, and are never re-interned (their back edge is not hashed);
/// every other node is asked to [`peephole::simplify_node`], and failing
/// that, looked up by its operation, type and resolved inputs among the
/// nodes seen before ([`Numbering`]), which merges it into an equal node
/// (value numbering). A different answer replaces the node and wakes its
/// users.
pub fn optimize(g: &mut Graph) -> Result<OptStats, GraphError> {
    let live = g.live_nodes();
    let mut users = Users::of(g);
    let budget = VISITS_PER_NODE.saturating_mul(live.len() as u64 + 16);
    let mut stats = OptStats {
        converged: true,
        ..OptStats::default()
    };
    let mut phis: Vec<NodeId> = live
        .iter()
        .copied()
        .filter(|&n| matches!(g.op(n), Op::Phi { .. }))
        .collect();
    let mut current = IdSet::default();
    let mut numbering = Numbering::with_capacity(live.len());
    let mut readers = Readers::new(g.len(), live.len());
    current.insert_all(g.live_bits());
    let mut next = IdSet::default();
    // The replacements counted when the last sweep over every live node
    // began: a rule may read past its inputs (an input's input), and a
    // change there wakes nobody, so when the worklist runs dry one more
    // sweep over the whole live graph looks again; the pass ends when such
    // a sweep changes nothing (a true fixed point, which replay relies on).
    // The first sweep is one of them.
    let mut at_full_sweep = 0;
    // Whether a phi got a new operand (one replaced) or a phi was made
    // since `remove_redundant_phis` last looked: if not, it would find
    // nothing (what it found then was replaced, what it did not find
    // depends only on the phis' operands), so it does not look again.
    let mut phis_changed = true;
    loop {
        if current.is_empty() {
            if stats.replaced == at_full_sweep {
                break;
            }
            at_full_sweep = stats.replaced;
            readers.sweep_begins();
            current.insert_all(g.live_bits());
        }
        stats.rounds += 1;
        // Whole groups of redundant phis first, so that what depends on
        // them is re-interned once, in the sweep below.
        if phis_changed {
            phis_changed = false;
            phis.retain(|&p| g.node(p).replaced_by().is_none());
            let mut woken: Vec<NodeId> = Vec::new();
            for (old, new) in remove_redundant_phis(g, &phis)? {
                stats.replaced += 1;
                users.fit(g.len());
                users.hand_over(old, new, |u| {
                    phis_changed |= is_phi(g, u);
                    current.insert(u);
                    woken.push(u);
                });
            }
            readers.fit(g.len());
            readers.mark(g, &users, &woken);
        }
        while let Some(n) = current.pop_first() {
            if stats.visited >= budget {
                stats.converged = false;
                return Ok(stats);
            }
            stats.visited += 1;
            if readers.is_clean(n) {
                // It found nothing last time and reads what it read then.
                stats.skipped += 1;
                continue;
            }
            readers.visiting(n);
            let before = g.len();
            let answer = visit(g, n, &mut numbering)?;
            let mut woken: Vec<NodeId> = Vec::new();
            users.fit(g.len());
            readers.fit(g.len());
            if let Some(r) = answer {
                g.replace(n, r)?;
                stats.replaced += 1;
                users.hand_over(n, r, |u| {
                    phis_changed |= is_phi(g, u);
                    woken.push(u);
                });
                readers.mark(g, &users, &woken);
            }
            // Nodes the rules created: record them as users of their inputs
            // (so later changes wake them) and visit them too.
            for i in before..g.len() {
                let id = NodeId::from_index(i);
                if is_phi(g, id) {
                    phis.push(id);
                    phis_changed = true;
                }
                for input in g.inputs(id) {
                    users.add(input, id);
                }
                woken.push(id);
            }
            for u in woken {
                if u > n {
                    current.insert(u);
                } else {
                    next.insert(u);
                }
            }
        }
        std::mem::swap(&mut current, &mut next);
    }
    Ok(stats)
}

/// The users of each node, as the optimizer keeps them: one linked list
/// per node in flat arrays, so that building them costs no allocation per
/// node and handing a replaced node's users to its replacement is a splice.
/// A user appears once per input slot; the order of a list does not matter
/// (its users are only ever woken, all of them).
struct Users {
    /// First and last entry of each node's list (`NIL`: empty).
    head: Vec<u32>,
    tail: Vec<u32>,
    /// Each entry's user and next entry.
    user: Vec<NodeId>,
    next: Vec<u32>,
}

const NIL: u32 = u32::MAX;

impl Users {
    /// The users of the live nodes through resolved inputs: the graph's
    /// [`Graph::live_users`] (kept from a pass before that changed
    /// nothing, or computed now), linked where they lie: each node's
    /// entries are one run, in the same order (as adding them one by one
    /// would link them, without following a tail per entry).
    fn of(g: &Graph) -> Users {
        let lists = g.live_users();
        let (start, users) = lists.flat();
        let len = g.len();
        let total = users.len();
        let mut user = Vec::with_capacity(total + total / 4 + 16);
        user.extend_from_slice(users);
        let mut next = Vec::with_capacity(user.capacity());
        next.extend(1..=total as u32);
        let mut head = vec![NIL; len];
        let mut tail = vec![NIL; len];
        // Nodes made since the lists were taken have no live users.
        for (k, w) in start.windows(2).enumerate().take(len) {
            let (a, b) = (w[0], w[1]);
            if a < b {
                head[k] = a;
                tail[k] = b - 1;
                next[b as usize - 1] = NIL;
            }
        }
        Users {
            head,
            tail,
            user,
            next,
        }
    }

    /// Room for nodes up to `len`.
    fn fit(&mut self, len: usize) {
        if self.head.len() < len {
            self.head.resize(len, NIL);
            self.tail.resize(len, NIL);
        }
    }

    /// Records `u` as a user of `n`.
    fn add(&mut self, n: NodeId, u: NodeId) {
        let e = u32::try_from(self.user.len()).expect("fewer than 2^32 uses");
        self.user.push(u);
        self.next.push(NIL);
        let n = n.index();
        match self.tail[n] {
            NIL => self.head[n] = e,
            t => self.next[t as usize] = e,
        }
        self.tail[n] = e;
    }

    /// Calls `f` on each user of `n`.
    fn each(&self, n: NodeId, mut f: impl FnMut(NodeId)) {
        let mut e = self.head.get(n.index()).copied().unwrap_or(NIL);
        while e != NIL {
            f(self.user[e as usize]);
            e = self.next[e as usize];
        }
    }

    /// Calls `f` on each user of `old`, then makes them users of `new`.
    fn hand_over(&mut self, old: NodeId, new: NodeId, f: impl FnMut(NodeId)) {
        self.each(old, f);
        let (old, new) = (old.index(), new.index());
        let first = std::mem::replace(&mut self.head[old], NIL);
        if first == NIL {
            return;
        }
        let last = std::mem::replace(&mut self.tail[old], NIL);
        match self.tail[new] {
            NIL => self.head[new] = first,
            t => self.next[t as usize] = first,
        }
        self.tail[new] = last;
    }
}

/// Which nodes may answer differently than at their last visit: the
/// readers of what was replaced since. A visit that found nothing finds
/// nothing again while nothing it reads is replaced (the rules are
/// functions of what they read, and use counts, the one other thing they
/// read, only grow, which never makes a rule apply); so a sweep over the
/// whole live graph, which the optimizer needs because a rule may read
/// past its inputs and a change there wakes nobody, visits only the nodes
/// marked here, and skips the others in place (the order of the visits it
/// makes, and so the result, is that of visiting them all).
///
/// What the rules read past a node's inputs bounds whom a replacement can
/// concern. When a node is replaced, its users' inputs change (depth 1);
/// rules read up to three levels of inputs (the address folding of an
/// access reads its base, the base's offset and the offset's operands),
/// so the users' users, and theirs, are marked; through a `PtrAdd` the
/// folding may go on (nested displacements), so a `PtrAdd` does not use up
/// a level; and a load or store walks its memory chain over up to
/// [`peephole::MAX_CHAIN_WALK`] stores, reading each one's inputs, so
/// from a store the users are followed that many stores further.
///
/// Marking has a budget per sweep (a few times the live nodes): past it,
/// every node counts as changed until the next whole sweep, which is what
/// the optimizer did without this record.
struct Readers {
    /// Per node: may answer differently than at its last visit. New nodes
    /// and nodes not visited yet do.
    dirty: Vec<bool>,
    /// The budget ran out: every node is dirty until the next sweep.
    all: bool,
    /// Marks made since the last sweep began, and how many are allowed.
    marks: usize,
    limit: usize,
    /// Work list: node, levels of users still to mark, stores still to
    /// follow along a memory chain.
    stack: Vec<(NodeId, u8, usize)>,
}

/// Levels of users marked beyond the users of a replaced node.
const READ_DEPTH: u8 = 2;

impl Readers {
    fn new(len: usize, live: usize) -> Readers {
        Readers {
            dirty: vec![true; len],
            all: false,
            marks: 0,
            limit: 4 * live + 1024,
            stack: Vec::new(),
        }
    }

    /// Room for nodes up to `len` (new nodes are dirty).
    fn fit(&mut self, len: usize) {
        if self.dirty.len() < len {
            self.dirty.resize(len, true);
        }
    }

    /// A sweep over every live node begins: the budget starts again.
    fn sweep_begins(&mut self) {
        if self.all {
            self.all = false;
            self.dirty.iter_mut().for_each(|d| *d = true);
        }
        self.marks = 0;
    }

    fn is_clean(&self, n: NodeId) -> bool {
        !self.all && self.dirty.get(n.index()).is_some_and(|&d| !d)
    }

    /// `n` is being visited: what it reads now is what it read last.
    fn visiting(&mut self, n: NodeId) {
        if let Some(d) = self.dirty.get_mut(n.index()) {
            *d = false;
        }
    }

    /// Marks the nodes whose rules may read an input of `changed` (the
    /// users of a node just replaced, whose inputs changed).
    fn mark(&mut self, g: &Graph, users: &Users, changed: &[NodeId]) {
        if self.all {
            return;
        }
        for &u in changed {
            self.stack.push((u, READ_DEPTH, peephole::MAX_CHAIN_WALK));
        }
        while let Some((u, depth, chain)) = self.stack.pop() {
            self.marks += 1;
            if self.marks > self.limit {
                self.all = true;
                self.stack.clear();
                return;
            }
            if let Some(d) = self.dirty.get_mut(u.index()) {
                *d = true;
            }
            let op = g.op(u);
            let store = op.is_store() && chain > 0;
            if depth == 0 && !store {
                continue;
            }
            let depth = match op {
                Op::PtrAdd => depth,
                _ => depth.saturating_sub(1),
            };
            let chain = if store { chain - 1 } else { 0 };
            let stack = &mut self.stack;
            users.each(u, |v| stack.push((v, depth, chain)));
        }
    }
}

fn is_phi(g: &Graph, n: NodeId) -> bool {
    matches!(g.op(n), Op::Phi { .. })
}

/// A set of nodes taken out in construction order: one bit per node, and
/// the first word that may have a bit set. The worklist's hot path (a
/// B-tree set cost more than the peepholes on large graphs).
#[derive(Default)]
struct IdSet {
    words: Vec<u64>,
    /// No bit is set in a word before this one.
    first: usize,
}

impl IdSet {
    fn insert(&mut self, n: NodeId) {
        let (w, bit) = (n.index() / 64, n.index() % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << bit;
        self.first = self.first.min(w);
    }

    /// The lowest node in the set, taken out.
    fn pop_first(&mut self) -> Option<NodeId> {
        while let Some(word) = self.words.get_mut(self.first) {
            if *word != 0 {
                let bit = word.trailing_zeros() as usize;
                *word &= *word - 1;
                return Some(NodeId::from_index(self.first * 64 + bit));
            }
            self.first += 1;
        }
        None
    }

    /// Adds every node of a bit set in the same layout (as
    /// [`Graph::live_bits`] gives it): a word at a time, where inserting
    /// the live nodes one by one cost a tenth of a run.
    fn insert_all(&mut self, bits: &[u64]) {
        if self.words.len() < bits.len() {
            self.words.resize(bits.len(), 0);
        }
        for (w, &b) in self.words.iter_mut().zip(bits) {
            *w |= b;
        }
        if let Some(w) = bits.iter().position(|&b| b != 0) {
            self.first = self.first.min(w);
        }
    }

    fn is_empty(&self) -> bool {
        self.words[self.first.min(self.words.len())..]
            .iter()
            .all(|&w| w == 0)
    }
}

/// Replaces every group of phis that merges only members of the group and
/// one outside value `v` by `v` (a loop-carried value no iteration changes,
/// across any depth of nested loops and the regions between them), and
/// returns the replacements made.
///
/// An optimistic analysis in linear time: each phi starts as "unknown" and
/// takes the meet of its operands, where a phi operand contributes its own
/// current state and any other node itself: one node `v`, or "many". States
/// only go down (unknown, one, many), so each phi changes at most twice.
/// At the fixed point, a phi in state "one `v`" only ever receives `v`.
/// Loop phis without their back edge are not candidates (their value is not
/// known yet) and count as ordinary values.
fn remove_redundant_phis(
    g: &mut Graph,
    phis: &[NodeId],
) -> Result<Vec<(NodeId, NodeId)>, GraphError> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Unknown,
        One(NodeId),
        Many,
    }
    fn meet(a: State, b: State) -> State {
        match (a, b) {
            (State::Unknown, x) | (x, State::Unknown) => x,
            (State::One(x), State::One(y)) if x == y => a,
            _ => State::Many,
        }
    }
    let cand: Vec<NodeId> = phis
        .iter()
        .copied()
        .filter(|&p| {
            g.node(p).replaced_by().is_none()
                && g.arity(p) >= 2
                && match g.op(g.input(p, 0)) {
                    Op::Region => true,
                    Op::Loop { .. } => g.arity(p) == 3,
                    _ => false,
                }
        })
        .collect();
    // Candidate index by node (dense: this runs every round the phis
    // changed, and maps, per-phi vectors and their allocations were most
    // of its cost).
    let mut pos = vec![u32::MAX; g.len()];
    for (i, &p) in cand.iter().enumerate() {
        pos[p.index()] = i as u32;
    }
    // Operands as candidate indexes or plain nodes, flat (those of
    // candidate `i` are `operands[start[i]..start[i + 1]]`), and the
    // candidates using each candidate, flat the same way.
    let mut operands: Vec<Result<u32, NodeId>> = Vec::with_capacity(cand.len() * 2);
    let mut start: Vec<usize> = Vec::with_capacity(cand.len() + 1);
    let mut use_count = vec![0u32; cand.len() + 1];
    for &p in &cand {
        start.push(operands.len());
        for &v in &g.node(p).raw_inputs()[1..] {
            let v = g.resolve(v);
            if v == p {
                continue;
            }
            match pos[v.index()] {
                u32::MAX => operands.push(Err(v)),
                j => {
                    use_count[j as usize] += 1;
                    operands.push(Ok(j));
                }
            }
        }
    }
    start.push(operands.len());
    // Prefix sums: candidate `j`'s users are `users[user_start[j]..user_start[j + 1]]`,
    // in candidate order (as pushing them one by one would give).
    let mut user_start = Vec::with_capacity(cand.len() + 1);
    let mut total = 0u32;
    for &c in &use_count {
        user_start.push(total);
        total += c;
    }
    let mut fill = user_start.clone();
    let mut phi_users = vec![0u32; total as usize];
    for i in 0..cand.len() {
        for op in &operands[start[i]..start[i + 1]] {
            if let Ok(j) = *op {
                phi_users[fill[j as usize] as usize] = i as u32;
                fill[j as usize] += 1;
            }
        }
    }
    let mut state = vec![State::Unknown; cand.len()];
    let mut work: Vec<usize> = (0..cand.len()).rev().collect();
    let mut queued = vec![true; cand.len()];
    while let Some(i) = work.pop() {
        queued[i] = false;
        let new =
            operands[start[i]..start[i + 1]]
                .iter()
                .fold(State::Unknown, |acc, op| match *op {
                    Ok(j) => meet(acc, state[j as usize]),
                    Err(v) => meet(acc, State::One(v)),
                });
        if new != state[i] {
            state[i] = new;
            let (a, b) = (user_start[i] as usize, user_start[i + 1] as usize);
            for &u in &phi_users[a..b] {
                let u = u as usize;
                if !queued[u] {
                    queued[u] = true;
                    work.push(u);
                }
            }
        }
    }
    let mut done = Vec::new();
    for (i, &p) in cand.iter().enumerate() {
        if let State::One(v) = state[i] {
            if g.ty(v) == g.ty(p) && g.resolve(v) != p {
                g.replace(p, v)?;
                done.push((p, v));
            }
        }
    }
    Ok(done)
}

/// The node that should stand for `n`, if different. Never numbers a
/// loop phi or a control node.
fn visit(
    g: &mut Graph,
    n: NodeId,
    numbering: &mut Numbering,
) -> Result<Option<NodeId>, GraphError> {
    if g.node(n).replaced_by().is_some() {
        return Ok(None);
    }
    let op = g.op(n);
    if let Op::Guard { .. } = op {
        // The one control node with a rule: a guard that cannot fail goes.
        return peephole::simplify_node(g, n);
    }
    if op.is_control() {
        return Ok(None);
    }
    if g.is_loop_phi(n) {
        return peephole::simplify_node(g, n);
    }
    // Resolved once for the rules and the numbering both (rules never
    // replace a node, so they stay resolved).
    let inputs = g.inputs(n);
    let found = match peephole::simplify_node_with(g, n, &inputs)? {
        Some(r) => Some(r),
        None => numbering.equal(g, n, &inputs),
    };
    Ok(found.map(|r| g.resolve(r)).filter(|&r| r != n))
}

/// Value numbering within one run of [`optimize`]: the first node seen
/// for each operation, type and resolved inputs. Interning already keeps
/// nodes built with equal inputs one node; what it cannot see is two nodes
/// built on different inputs that were later replaced by the same one,
/// and a node built on resolved inputs beside an older one whose stored
/// inputs were replaced since (their addresses differ).
///
/// An open-addressing table of its own (this lookup ran once per visit
/// and cost as much as the peepholes): the key is hashed once, straight
/// from the node's stored inputs resolved, compared against the stored
/// keys only on a hash match, and copied out only when inserted.
struct Numbering {
    /// `(hash, entry + 1)`, `0` for an empty slot; a power of two long.
    slots: Vec<(u64, u32)>,
    /// `64 - log2(slots.len())`: a slot is the hash's top bits.
    shift: u32,
    /// Each entry's key: operation, type, resolved inputs (as inserted).
    /// (their inputs are `key_inputs[start..start + len]`: one flat array,
    /// where a small vector per entry cost a copy through an iterator).
    keys: Vec<(Op, Type, u32, u32)>,
    key_inputs: Vec<NodeId>,
    /// Each entry's node: the first seen, or what replaced it since.
    nodes: Vec<NodeId>,
}

impl Numbering {
    fn with_capacity(n: usize) -> Numbering {
        let len = (2 * n).next_power_of_two().max(16);
        Numbering {
            slots: vec![(0, 0); len],
            shift: 64 - len.trailing_zeros(),
            keys: Vec::with_capacity(n),
            key_inputs: Vec::with_capacity(3 * n),
            nodes: Vec::with_capacity(n),
        }
    }

    /// A node seen before that computes what `n` computes, if any;
    /// otherwise `n` is now the one. `inputs` are `n`'s inputs resolved.
    fn equal(&mut self, g: &Graph, n: NodeId, inputs: &Inputs) -> Option<NodeId> {
        let (op, ty) = (g.op(n), g.ty(n));
        let mut h = WordHasher::default();
        op.hash(&mut h);
        ty.hash(&mut h);
        for &i in inputs {
            h.write_u64(i.index() as u64);
        }
        let hash = h.finish();
        let mask = self.slots.len() - 1;
        let mut s = (hash >> self.shift) as usize;
        loop {
            let (sh, e) = self.slots[s];
            if e == 0 {
                break;
            }
            let e = (e - 1) as usize;
            if sh == hash {
                let (kop, kty, start, len) = self.keys[e];
                let kin = &self.key_inputs[start as usize..(start + len) as usize];
                if kop == op && kty == ty && kin == &inputs[..] {
                    // It may have been replaced since: by an equal node.
                    let m = g.resolve(self.nodes[e]);
                    self.nodes[e] = m;
                    return Some(m).filter(|&m| m != n);
                }
            }
            s = (s + 1) & mask;
        }
        let start = self.key_inputs.len() as u32;
        self.key_inputs.extend_from_slice(inputs);
        self.keys.push((op, ty, start, inputs.len() as u32));
        self.nodes.push(n);
        self.slots[s] = (hash, self.keys.len() as u32);
        if self.keys.len() * 2 > self.slots.len() {
            self.grow();
        }
        None
    }

    /// Doubles the table (the stored hashes place the entries again).
    fn grow(&mut self) {
        let len = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); len]);
        self.shift -= 1;
        let mask = len - 1;
        for (hash, e) in old {
            if e == 0 {
                continue;
            }
            let mut s = (hash >> self.shift) as usize;
            while self.slots[s].1 != 0 {
                s = (s + 1) & mask;
            }
            self.slots[s] = (hash, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinOp, CmpOp};
    use crate::types::Type;

    #[test]
    fn merges_nodes_whose_inputs_merged() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let zero = g.iconst(Type::I64, 0).unwrap();
        let x0 = g.add(x, zero).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let a = g.add(x0, one).unwrap();
        let b = g.add(x, one).unwrap();
        let s = g.sub(a, b).unwrap();
        let r = g.ret(e.ctrl, e.mem, s).unwrap();
        g.finish(&[r]).unwrap();
        let stats = optimize(&mut g).unwrap();
        assert!(stats.converged);
        assert_eq!(g.resolve(x0), x);
        assert_eq!(
            g.resolve(a),
            g.resolve(b),
            "value numbering after x + 0 = x"
        );
        let v = g.input(r, 2);
        assert_eq!(g.op(v), Op::Const { value: 0 }, "a - a = 0");
        assert_eq!(stats.replaced as usize, g.replacements().len());
        // A second run finds nothing.
        let again = optimize(&mut g).unwrap();
        assert_eq!(again.replaced, 0);
    }

    #[test]
    fn collapses_loop_phis_through_their_back_edge() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let lp = g.loop_header(1, e.ctrl).unwrap();
        let phi = g.loop_phi(lp, 0, Type::I64, x).unwrap();
        let zero = g.iconst(Type::I64, 0).unwrap();
        let same = g.add(phi, zero).unwrap();
        let cond = g.cmp(CmpOp::Ne, same, zero).unwrap();
        let (again, out) = g.branch(lp, cond).unwrap();
        g.set_back_input(lp, again).unwrap();
        g.set_back_input(phi, same).unwrap();
        let r = g.ret(out, e.mem, same).unwrap();
        g.finish(&[r]).unwrap();
        let stats = optimize(&mut g).unwrap();
        assert!(stats.converged);
        assert_eq!(g.resolve(phi), x);
        assert_eq!(g.input(r, 2), x);
        assert_eq!(g.resolve(lp), lp, "control is left alone");
        assert_eq!(g.back_input(lp), Some(again));
    }

    #[test]
    fn a_real_loop_keeps_its_phi() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let lp = g.loop_header(1, e.ctrl).unwrap();
        let zero = g.iconst(Type::I64, 0).unwrap();
        let phi = g.loop_phi(lp, 0, Type::I64, zero).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let inc = g.bin(BinOp::Add, phi, one).unwrap();
        let ten = g.iconst(Type::I64, 10).unwrap();
        let cond = g.cmp(CmpOp::Slt, inc, ten).unwrap();
        let (again, out) = g.branch(lp, cond).unwrap();
        g.set_back_input(lp, again).unwrap();
        g.set_back_input(phi, inc).unwrap();
        let r = g.ret(out, e.mem, inc).unwrap();
        g.finish(&[r]).unwrap();
        let stats = optimize(&mut g).unwrap();
        assert_eq!(stats.replaced, 0);
        assert_eq!(stats.rounds, 1);
        assert_eq!(g.resolve(phi), phi);
    }

    #[test]
    fn memory_rules_run_in_the_pass() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let tape = g.param(e.start, 0, Type::Ptr).unwrap();
        let p = g.param(e.start, 1, Type::I64).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let p1 = g.add(p, one).unwrap();
        let a = g.ptr_add(tape, p).unwrap();
        let b = g.ptr_add(tape, p1).unwrap();
        let x = g.iconst(Type::I8, 7).unwrap();
        let s = g.store(e.ctrl, e.mem, b, 0, x).unwrap();
        let l = g.load(e.ctrl, s, a, 1, Type::I8).unwrap();
        let r = g.ret(e.ctrl, s, l).unwrap();
        g.finish(&[r]).unwrap();
        optimize(&mut g).unwrap();
        assert_eq!(
            g.input(r, 2),
            x,
            "store to [tape+p+1] forwards to load [tape+p]+1"
        );
        assert_eq!(optimize(&mut g).unwrap().replaced, 0);
        let s2 = g.input(r, 1);
        assert_eq!((g.op(s2), g.input(s2, 2)), (Op::Store { offset: 1 }, a));
    }

    /// A change to a store's input concerns the loads and stores that walk
    /// the memory chain over it, and the users of a replaced node up to
    /// three levels; nothing else is visited again.
    #[test]
    fn readers_are_the_chain_walkers_and_the_nearby_users() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let tape = g.param(e.start, 0, Type::Ptr).unwrap();
        let x = g.param(e.start, 1, Type::I8).unwrap();
        let y = g.param(e.start, 2, Type::I8).unwrap();
        let mut mem = e.mem;
        let mut stores = Vec::new();
        for off in 0..4 {
            mem = g.store(e.ctrl, mem, tape, off, x).unwrap();
            stores.push(mem);
        }
        let l = g.load(e.ctrl, mem, tape, 9, Type::I8).unwrap();
        let far = g.add(y, y).unwrap();
        let r = g.ret(e.ctrl, mem, l).unwrap();
        g.finish(&[r]).unwrap();
        let live = g.live_nodes();
        let users = Users::of(&g);
        let mut readers = Readers::new(g.len(), live.len());
        for n in g.ids() {
            readers.visiting(n);
        }
        // The first store's value changed: the store, the stores above it
        // and the load on top walk over it.
        readers.mark(&g, &users, &[stores[0]]);
        for n in stores.iter().chain([&l]) {
            assert!(!readers.is_clean(*n), "{n}");
        }
        assert!(readers.is_clean(far));
        assert!(readers.is_clean(y));
        // Past the budget every node counts as changed, until a sweep.
        readers.limit = 0;
        readers.mark(&g, &users, &[far]);
        assert!(!readers.is_clean(far) && !readers.is_clean(y));
        readers.sweep_begins();
        readers.visiting(y);
        assert!(readers.is_clean(y) && !readers.is_clean(far));
    }

    /// Nested loops carrying an unchanged value through regions: one group.
    #[test]
    fn removes_nested_redundant_phi_groups_at_once() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let c = g.param(e.start, 1, Type::I8).unwrap();
        let depth = 50;
        let (mut ctrl, mut v) = (e.ctrl, x);
        let mut open = Vec::new();
        for k in 0..depth {
            let (enter, skip) = g.branch(ctrl, c).unwrap();
            let lp = g.loop_header(k, enter).unwrap();
            let phi = g.loop_phi(lp, 0, Type::I64, v).unwrap();
            open.push((lp, phi, skip, v));
            (ctrl, v) = (lp, phi);
        }
        let mut all_phis = Vec::new();
        while let Some((lp, phi, skip, before)) = open.pop() {
            let (again, leave) = g.branch(ctrl, c).unwrap();
            g.set_back_input(lp, again).unwrap();
            g.set_back_input(phi, v).unwrap();
            let region = g.region(&[skip, leave]).unwrap();
            let merged = g.phi(region, Type::I64, &[before, v]).unwrap();
            all_phis.extend([phi, merged]);
            (ctrl, v) = (region, merged);
        }
        let r = g.ret(ctrl, e.mem, v).unwrap();
        g.finish(&[r]).unwrap();
        let stats = optimize(&mut g).unwrap();
        assert!(stats.converged);
        assert!(stats.rounds <= 2, "{stats:?}");
        for p in all_phis {
            assert_eq!(g.resolve(p), x);
        }
        assert_eq!(g.input(r, 2), x);
    }

    #[test]
    fn phi_groups_with_two_outside_values_stay() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let y = g.param(e.start, 1, Type::I64).unwrap();
        let c = g.param(e.start, 2, Type::I8).unwrap();
        let lp = g.loop_header(0, e.ctrl).unwrap();
        let phi = g.loop_phi(lp, 0, Type::I64, x).unwrap();
        let (t, f) = g.branch(lp, c).unwrap();
        let region = g.region(&[t, f]).unwrap();
        let merged = g.phi(region, Type::I64, &[phi, y]).unwrap();
        let (again, out) = g.branch(region, c).unwrap();
        g.set_back_input(lp, again).unwrap();
        g.set_back_input(phi, merged).unwrap();
        let r = g.ret(out, e.mem, merged).unwrap();
        g.finish(&[r]).unwrap();
        let stats = optimize(&mut g).unwrap();
        assert_eq!(stats.replaced, 0);
        assert_eq!(
            remove_redundant_phis(&mut g, &[phi, merged]).unwrap(),
            vec![]
        );
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let mut v = x;
        for _ in 0..200_000 {
            v = g.add(v, one).unwrap();
        }
        let r = g.ret(e.ctrl, e.mem, v).unwrap();
        g.finish(&[r]).unwrap();
        let stats = optimize(&mut g).unwrap();
        assert!(stats.converged);
        let v = g.input(r, 2);
        assert_eq!(g.input(v, 0), x);
        assert_eq!(g.op(g.input(v, 1)), Op::Const { value: 200_000 });
    }
}
