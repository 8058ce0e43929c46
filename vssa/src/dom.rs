//! The dominator tree of a graph's control nodes, for passes that ask
//! "does this edge dominate that node" many times.
//!
//! The scheduler has its own dominator tree, over the blocks it derives
//! once guards are lowered; the middle end works on the graph before that,
//! where every control node (`If` projection, `Guard`, `Loop`, `Region`)
//! is its own point of the control-flow graph. [`ControlDom::new`] follows
//! control forward from the entry (a constant `If` only into the side it
//! takes, as control folding sees it), numbers what it reaches in reverse
//! postorder, computes immediate dominators with the iterative algorithm
//! of Cooper, Harvey and Kennedy, and numbers the tree in preorder, so
//! that [`ControlDom::dominates`] is two comparisons. Everything is
//! iterative and linear in the control graph (the iteration converges in
//! a few rounds on reducible graphs), so any depth of nesting is fine.

use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Type;
use smallvec::SmallVec;

const NONE: u32 = u32::MAX;

/// Dominators of the control nodes the entry reaches.
#[derive(Clone, Debug)]
pub struct ControlDom {
    /// Per node index: its position in reverse postorder, or [`NONE`].
    rpo: Vec<u32>,
    /// The reached control nodes in reverse postorder (the entry first).
    order: Vec<NodeId>,
    /// Per position: the position of the immediate dominator (the entry
    /// its own).
    idom: Vec<u32>,
    /// Per position: preorder number in the tree and the last preorder
    /// number below it.
    first: Vec<u32>,
    last: Vec<u32>,
}

/// A node that is a point of the control-flow graph.
fn is_flow(g: &Graph, n: NodeId) -> bool {
    match g.op(n) {
        Op::Region | Op::Loop { .. } | Op::If | Op::Guard { .. } | Op::Return => true,
        Op::Proj { .. } => {
            g.ty(n) == Type::Ctrl
                && g.arity(n) == 1
                && matches!(g.op(g.input(n, 0)), Op::Start | Op::If)
        }
        _ => false,
    }
}

/// Whether control flows from `c` into its user `u` (a constant `If`
/// only into the side it takes).
fn flows_into(g: &Graph, c: NodeId, u: NodeId) -> bool {
    match g.op(u) {
        Op::Region => true,
        Op::Loop { .. } => (0..g.arity(u).min(2)).any(|i| g.input(u, i) == c),
        Op::If | Op::Return | Op::Guard { .. } => g.arity(u) > 0 && g.input(u, 0) == c,
        Op::Proj { index } => {
            if g.op(c) != Op::If || g.arity(c) != 2 {
                return g.op(c) == Op::Start && index == 0;
            }
            match constant(g, g.input(c, 1)) {
                Some(k) => index == u32::from(k == 0),
                None => index <= 1,
            }
        }
        _ => false,
    }
}

fn constant(g: &Graph, n: NodeId) -> Option<i64> {
    match g.op(n) {
        Op::Const { value } if g.ty(n).is_int() => Some(g.ty(n).normalize(value)),
        _ => None,
    }
}

/// The control predecessors of flow node `u`.
fn preds(g: &Graph, u: NodeId) -> SmallVec<[NodeId; 2]> {
    match g.op(u) {
        Op::Region => g.inputs(u).into_iter().collect(),
        Op::Loop { .. } => (0..g.arity(u).min(2)).map(|i| g.input(u, i)).collect(),
        Op::Start => SmallVec::new(),
        _ if g.arity(u) > 0 => SmallVec::from_slice(&[g.input(u, 0)]),
        _ => SmallVec::new(),
    }
}

/// Lists of values grouped by a small key, in two flat arrays: the
/// values of key `k` are `items[start[k]..start[k + 1]]`, in the order
/// they were given.
struct Flat<T> {
    start: Vec<u32>,
    items: Vec<T>,
}

impl<T: Copy> Flat<T> {
    /// Groups `(key, value)` pairs (keys below `keys`) by key, keeping
    /// their order within each key.
    fn group<E>(keys: usize, pairs: &[E], kv: impl Fn(&E) -> (usize, T)) -> Flat<T> {
        let mut start = vec![0u32; keys + 1];
        for e in pairs {
            start[kv(e).0 + 1] += 1;
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut fill = start.clone();
        // Every slot is written below; the first value only fills them.
        let mut items = match pairs.first() {
            Some(e) => vec![kv(e).1; pairs.len()],
            None => Vec::new(),
        };
        for e in pairs {
            let (k, v) = kv(e);
            items[fill[k] as usize] = v;
            fill[k] += 1;
        }
        Flat { start, items }
    }

    fn of(&self, k: usize) -> &[T] {
        &self.items[self.start[k] as usize..self.start[k + 1] as usize]
    }
}

impl ControlDom {
    /// The tree of `g`'s control, with `live` from [`Graph::live_nodes`]
    /// (the graph unchanged since).
    pub fn new(g: &Graph, live: &[NodeId]) -> ControlDom {
        // Successors through the predecessor lists of the flow nodes only
        // (the users of every node would cost a pass over all inputs),
        // flat: the edges in the order of the live nodes, then grouped by
        // predecessor (a counting sort, so each node's successors keep
        // that order). A list per node cost more than the rest of the
        // pass (an allocation and a free per control node).
        let mut edges: Vec<(NodeId, NodeId)> = Vec::new();
        for &u in live {
            if is_flow(g, u) {
                for p in preds(g, u) {
                    edges.push((p, u));
                }
            }
        }
        let succs = Flat::group(g.len(), &edges, |&(p, u)| (p.index(), u));
        let entry = live.iter().copied().find(|&n| {
            g.op(n) == Op::Proj { index: 0 }
                && g.ty(n) == Type::Ctrl
                && g.arity(n) == 1
                && g.op(g.input(n, 0)) == Op::Start
        });
        let mut dom = ControlDom {
            rpo: vec![NONE; g.len()],
            order: Vec::new(),
            idom: Vec::new(),
            first: Vec::new(),
            last: Vec::new(),
        };
        let Some(entry) = entry else {
            return dom;
        };
        // Postorder by an explicit stack: (node, next user to look at).
        let mut seen = vec![false; g.len()];
        let mut post = Vec::new();
        let mut stack: Vec<(NodeId, usize)> = vec![(entry, 0)];
        seen[entry.index()] = true;
        while let Some(top) = stack.last_mut() {
            let (c, i) = *top;
            let us = succs.of(c.index());
            if i < us.len() {
                top.1 += 1;
                let u = us[i];
                if !seen[u.index()] && is_flow(g, u) && flows_into(g, c, u) {
                    seen[u.index()] = true;
                    stack.push((u, 0));
                }
            } else {
                post.push(c);
                stack.pop();
            }
        }
        post.reverse();
        for (i, &c) in post.iter().enumerate() {
            dom.rpo[c.index()] = i as u32;
        }
        dom.order = post;
        dom.compute_idoms(g);
        dom.number_tree();
        dom
    }

    /// Cooper, Harvey and Kennedy: iterate `idom(b) = ∩ idom(preds)` in
    /// reverse postorder until nothing changes.
    fn compute_idoms(&mut self, g: &Graph) {
        let n = self.order.len();
        self.idom = vec![NONE; n];
        if n == 0 {
            return;
        }
        self.idom[0] = 0;
        // The reached predecessors' positions of each position, flat.
        let mut pred_start: Vec<u32> = Vec::with_capacity(n + 1);
        let mut pred_pos: Vec<u32> = Vec::with_capacity(2 * n);
        for &c in &self.order {
            pred_start.push(pred_pos.len() as u32);
            for p in preds(g, c) {
                match self.rpo[p.index()] {
                    NONE => {}
                    p => pred_pos.push(p),
                }
            }
        }
        pred_start.push(pred_pos.len() as u32);
        let mut changed = true;
        while changed {
            changed = false;
            for b in 1..n {
                let preds = &pred_pos[pred_start[b] as usize..pred_start[b + 1] as usize];
                let mut new = NONE;
                for &p in preds {
                    if self.idom[p as usize] == NONE {
                        continue;
                    }
                    new = if new == NONE {
                        p
                    } else {
                        self.intersect(p, new)
                    };
                }
                if new != self.idom[b] {
                    self.idom[b] = new;
                    changed = true;
                }
            }
        }
    }

    fn intersect(&self, mut a: u32, mut b: u32) -> u32 {
        while a != b {
            while a > b {
                a = self.idom[a as usize];
            }
            while b > a {
                b = self.idom[b as usize];
            }
        }
        a
    }

    /// Preorder intervals of the tree, for constant-time dominance: the
    /// numbering a depth-first walk gives that takes each node's children
    /// in increasing position, computed from subtree sizes without the
    /// walk (a node's position is after its immediate dominator's, so one
    /// pass up sums the sizes and one pass down hands out the numbers).
    fn number_tree(&mut self) {
        let n = self.order.len();
        self.first = vec![NONE; n];
        self.last = vec![NONE; n];
        if n == 0 {
            return;
        }
        let mut size = vec![1u32; n];
        for b in (1..n).rev() {
            let d = self.idom[b];
            if d != NONE {
                size[d as usize] += size[b];
            }
        }
        // The next number free under each node (its first child's first).
        let mut free = vec![0u32; n];
        self.first[0] = 0;
        self.last[0] = size[0] - 1;
        free[0] = 1;
        for b in 1..n {
            let d = self.idom[b];
            if d == NONE {
                continue;
            }
            let f = free[d as usize];
            free[d as usize] += size[b];
            self.first[b] = f;
            self.last[b] = f + size[b] - 1;
            free[b] = f + 1;
        }
    }

    /// The walk [`ControlDom::number_tree`] replaces, for its test.
    #[cfg(test)]
    fn number_tree_by_walk(&mut self) {
        let n = self.order.len();
        // Each position's children in increasing order, flat.
        let tree: Vec<(usize, u32)> = (1..n)
            .filter(|&b| self.idom[b] != NONE)
            .map(|b| (self.idom[b] as usize, b as u32))
            .collect();
        let children = Flat::group(n, &tree, |&(d, b)| (d, b));
        self.first = vec![NONE; n];
        self.last = vec![NONE; n];
        if n == 0 {
            return;
        }
        let mut next = 0u32;
        let mut stack: Vec<(u32, usize)> = vec![(0, 0)];
        self.first[0] = 0;
        while let Some(top) = stack.last_mut() {
            let (b, i) = *top;
            if let Some(&c) = children.of(b as usize).get(i) {
                top.1 += 1;
                next += 1;
                self.first[c as usize] = next;
                stack.push((c, 0));
            } else {
                self.last[b as usize] = next;
                stack.pop();
            }
        }
    }

    fn pos(&self, c: NodeId) -> Option<usize> {
        match self.rpo.get(c.index()) {
            Some(&p) if p != NONE => Some(p as usize),
            _ => None,
        }
    }

    /// Whether the entry reaches control node `c`.
    pub fn is_reached(&self, c: NodeId) -> bool {
        self.pos(c).is_some()
    }

    /// The immediate dominator of `c` (`None` for the entry and for
    /// control the entry does not reach).
    pub fn idom(&self, c: NodeId) -> Option<NodeId> {
        let p = self.pos(c)?;
        match self.idom[p] {
            d if d == NONE || d as usize == p => None,
            d => Some(self.order[d as usize]),
        }
    }

    /// Whether every path from the entry to `b` passes `a` (`a == b`
    /// included). False when either is not reached.
    pub fn dominates(&self, a: NodeId, b: NodeId) -> bool {
        match (self.pos(a), self.pos(b)) {
            (Some(a), Some(b)) => {
                self.first[a] != NONE
                    && self.first[b] != NONE
                    && self.first[a] <= self.first[b]
                    && self.first[b] <= self.last[a]
            }
            _ => false,
        }
    }

    /// The reached control nodes, the entry first, every node after its
    /// immediate dominator.
    pub fn order(&self) -> &[NodeId] {
        &self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    #[test]
    fn a_diamond_and_a_loop() {
        let g = parse(
            "n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 i8 = proj 2 n0
n4 tuple = if n1, n3
n5 ctrl = proj 0 n4
n6 ctrl = proj 1 n4
n7 ctrl = region n5, n6
n8 ctrl = loop #1 n7, n10
n9 tuple = if n8, n3
n10 ctrl = proj 0 n9
n11 ctrl = proj 1 n9
n12 i32 = const 0
n13 ctrl = return n11, n2, n12
n14 ctrl = end n13
",
        )
        .unwrap();
        let live = g.live_nodes();
        let d = ControlDom::new(&g, &live);
        let mut walked = d.clone();
        walked.number_tree_by_walk();
        assert_eq!((&d.first, &d.last), (&walked.first, &walked.last));
        let n = NodeId::from_index;
        assert_eq!(d.idom(n(7)), Some(n(4)));
        assert_eq!(d.idom(n(8)), Some(n(7)));
        assert_eq!(d.idom(n(9)), Some(n(8)));
        assert!(d.dominates(n(1), n(13)));
        assert!(d.dominates(n(8), n(10)));
        assert!(!d.dominates(n(10), n(8)));
        assert!(!d.dominates(n(5), n(7)));
        assert!(!d.dominates(n(6), n(13)));
        assert!(d.dominates(n(9), n(11)));
        assert_eq!(d.order().first(), Some(&n(1)));
    }

    #[test]
    fn a_constant_branch_reaches_one_side() {
        let g = parse(
            "n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 i8 = const 1
n4 tuple = if n1, n3
n5 ctrl = proj 0 n4
n6 ctrl = proj 1 n4
n7 ctrl = region n5, n6
n8 i32 = const 0
n9 ctrl = return n7, n2, n8
n10 ctrl = end n9
",
        )
        .unwrap();
        let live = g.live_nodes();
        let d = ControlDom::new(&g, &live);
        let n = NodeId::from_index;
        assert!(d.is_reached(n(5)));
        assert!(!d.is_reached(n(6)));
        // The region has one way in left: the taken side dominates it.
        assert!(d.dominates(n(5), n(9)));
    }
}
