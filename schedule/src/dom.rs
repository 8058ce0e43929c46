//! The dominator tree of the blocks, with fast ancestor queries.
//!
//! Immediate dominators come from petgraph's `simple_fast` (Cooper, Harvey
//! and Kennedy). Code motion then asks two questions many times: "does `a`
//! dominate `b`" and "what is the lowest common dominator of `a` and `b`".
//! Walking the tree one parent at a time costs the depth of the tree, which
//! is 100 000s for deeply nested loops, so each node also gets a *jump
//! pointer* (Myers' skew-binary scheme): one extra pointer per block, built
//! in a single forward pass, that makes every ancestor search `O(log n)`.
//! The jump length depends only on a block's depth, which is what lets two
//! blocks at the same depth jump in lock step when looking for their LCA.

use crate::cfg::Cfg;
use crate::error::ScheduleError;
use petgraph::algo::dominators::simple_fast;
use petgraph::graph::{DiGraph, NodeIndex};

/// Dominator tree over blocks `0..n`, block 0 the root, every block's
/// immediate dominator numbered before it.
#[derive(Clone, Debug)]
pub(crate) struct DomTree {
    idom: Vec<u32>,
    depth: Vec<u32>,
    jump: Vec<u32>,
}

impl DomTree {
    /// Computes the dominator tree of `cfg`, whose blocks are in reverse
    /// postorder (so every block comes after its immediate dominator).
    pub(crate) fn new(cfg: &Cfg) -> Result<DomTree, ScheduleError> {
        let n = cfg.len();
        let edges: usize = (0..n).map(|b| cfg.succs(b).len()).sum();
        let mut pg: DiGraph<(), (), u32> = DiGraph::with_capacity(n, edges);
        for _ in 0..n {
            pg.add_node(());
        }
        for b in 0..n {
            for &s in cfg.succs(b) {
                pg.add_edge(NodeIndex::new(b), NodeIndex::new(s as usize), ());
            }
        }
        let doms = simple_fast(&pg, NodeIndex::new(0));
        let mut idom = Vec::with_capacity(n);
        for b in 0..n {
            let d = match doms.immediate_dominator(NodeIndex::new(b)) {
                None => 0,
                Some(d) => d.index() as u32,
            };
            idom.push(d);
        }
        DomTree::from_idom(idom).map_err(|b| ScheduleError::Malformed {
            node: cfg.head(b),
            reason: "this block has no dominator ahead of it in reverse postorder",
        })
    }

    /// Builds the tree from immediate dominators (`idom[0]` is ignored: the
    /// root). Fails with the first block whose dominator does not precede it.
    pub(crate) fn from_idom(mut idom: Vec<u32>) -> Result<DomTree, usize> {
        let n = idom.len();
        let mut depth = vec![0u32; n];
        let mut jump = vec![0u32; n];
        if let Some(root) = idom.first_mut() {
            *root = 0;
        }
        for b in 1..n {
            let p = idom[b] as usize;
            if p >= b {
                return Err(b);
            }
            depth[b] = depth[p] + 1;
            // Myers: jump twice as far as the parent when the parent's two
            // next jumps are equally long, else just to the parent.
            let jp = jump[p] as usize;
            let jjp = jump[jp] as usize;
            jump[b] = if depth[p] - depth[jp] == depth[jp] - depth[jjp] {
                jjp as u32
            } else {
                p as u32
            };
        }
        Ok(DomTree { idom, depth, jump })
    }

    /// Immediate dominator of `b` (the root is its own).
    pub(crate) fn idom(&self, b: u32) -> u32 {
        self.idom[b as usize]
    }

    /// Depth of `b` in the tree (root 0).
    pub(crate) fn depth(&self, b: u32) -> u32 {
        self.depth[b as usize]
    }

    /// The jump pointer of `b`: a proper ancestor (the root for the root).
    pub(crate) fn jump(&self, b: u32) -> u32 {
        self.jump[b as usize]
    }

    /// The ancestor of `b` at depth `d` (`b` itself if `d >= depth(b)`).
    pub(crate) fn ancestor_at_depth(&self, mut b: u32, d: u32) -> u32 {
        while self.depth(b) > d {
            let j = self.jump(b);
            b = if self.depth(j) >= d { j } else { self.idom(b) };
        }
        b
    }

    /// Whether `a` dominates `b` (every block dominates itself).
    pub(crate) fn dominates(&self, a: u32, b: u32) -> bool {
        self.depth(a) <= self.depth(b) && self.ancestor_at_depth(b, self.depth(a)) == a
    }

    /// The lowest block that dominates both `a` and `b`.
    pub(crate) fn lca(&self, a: u32, b: u32) -> u32 {
        let d = self.depth(a).min(self.depth(b));
        let mut a = self.ancestor_at_depth(a, d);
        let mut b = self.ancestor_at_depth(b, d);
        while a != b {
            // Same depth, so the jumps land at the same depth too: jump
            // while that stays below the meeting point, else step up.
            if self.jump(a) != self.jump(b) {
                a = self.jump(a);
                b = self.jump(b);
            } else {
                a = self.idom(a);
                b = self.idom(b);
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_ancestors(idom: &[u32], mut b: u32) -> Vec<u32> {
        let mut out = vec![b];
        while b != 0 {
            b = idom[b as usize];
            out.push(b);
        }
        out
    }

    #[test]
    fn chain_queries_are_logarithmic_in_steps() {
        // A path of 100 000 blocks: the shape of a deep loop nest.
        let n = 100_000u32;
        let idom: Vec<u32> = (0..n).map(|b| b.saturating_sub(1)).collect();
        let t = DomTree::from_idom(idom).unwrap();
        assert_eq!(t.depth(n - 1), n - 1);
        assert_eq!(t.ancestor_at_depth(n - 1, 3), 3);
        assert!(t.dominates(5, n - 1));
        assert!(!t.dominates(n - 1, 5));
        assert_eq!(t.lca(n - 1, 7), 7);
        // Count steps of one ancestor search.
        let mut steps = 0;
        let mut b = n - 1;
        while t.depth(b) > 1 {
            let j = t.jump(b);
            b = if t.depth(j) >= 1 { j } else { t.idom(b) };
            steps += 1;
        }
        assert!(steps < 64, "{steps} steps");
    }

    #[test]
    fn idom_after_block_is_rejected() {
        assert_eq!(DomTree::from_idom(vec![0, 2, 0]).unwrap_err(), 1);
    }

    proptest! {
        #[test]
        fn lca_and_dominance_match_naive(parents in prop::collection::vec(any::<u32>(), 1..200),
                                         qs in prop::collection::vec((any::<u32>(), any::<u32>()), 1..50)) {
            // Random tree: each block's parent is some earlier block.
            let n = parents.len() + 1;
            let mut idom = vec![0u32];
            for (i, p) in parents.iter().enumerate() {
                idom.push(p % (i as u32 + 1));
            }
            let t = DomTree::from_idom(idom.clone()).unwrap();
            for (a, b) in qs {
                let (a, b) = (a % n as u32, b % n as u32);
                let aa = naive_ancestors(&idom, a);
                let ab = naive_ancestors(&idom, b);
                let lca = *aa.iter().find(|x| ab.contains(x)).unwrap();
                prop_assert_eq!(t.lca(a, b), lca);
                prop_assert_eq!(t.dominates(a, b), ab.contains(&a));
            }
        }
    }
}
