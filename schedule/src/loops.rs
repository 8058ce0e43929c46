//! Loop nesting and loop depth, and the "shallowest block on a dominator
//! path" query that code motion uses to hoist loop-invariant code.
//!
//! A `Loop` head whose back edge comes from a block it dominates is a
//! natural loop; its body is every block that reaches the back-edge block
//! without passing the header. Walking each body separately costs
//! `O(depth * size)` for nested loops, so headers are processed innermost
//! first (reverse postorder, backwards) and a finished inner loop is
//! collapsed into its header with a union-find: an outer loop's walk jumps
//! over the whole inner loop in one step. Total work is near linear.
//!
//! The query walks the dominator tree with its jump pointers; each jump
//! also stores the smallest loop depth on the stretch it skips, so the
//! query is `O(log n)` however deep the tree.

use crate::cfg::{Cfg, NONE};
use crate::dom::DomTree;
use vssa::{Graph, Op};

/// Loop depth of every block, plus the jump-pointer minima for
/// [`LoopNest::shallowest_on_path`].
#[derive(Clone, Debug)]
pub(crate) struct LoopNest {
    depth: Vec<u32>,
    /// Smallest loop depth on the tree path from a block (included) up to
    /// its jump pointer (excluded); `u32::MAX` for an empty stretch.
    jmin: Vec<u32>,
}

/// Union-find representative with path compression (iterative).
fn find(uf: &mut [u32], b: u32) -> u32 {
    let mut r = b;
    while uf[r as usize] != r {
        r = uf[r as usize];
    }
    let mut x = b;
    while uf[x as usize] != r {
        let next = uf[x as usize];
        uf[x as usize] = r;
        x = next;
    }
    r
}

impl LoopNest {
    /// Finds the natural loops of `cfg` and the loop depth of each block.
    pub(crate) fn new(g: &Graph, cfg: &Cfg, dom: &DomTree) -> LoopNest {
        let n = cfg.len();
        let mut headers = Vec::new();
        for b in 0..n {
            if matches!(cfg.preds(b), [_, _]) && matches!(g.op(cfg.head(b)), Op::Loop { .. }) {
                headers.push(b as u32);
            }
        }
        let latch = |h: u32| cfg.preds(h as usize)[1];
        Self::from_parts(n, |b| cfg.preds(b as usize), &headers, latch, dom)
    }

    /// The algorithm on plain data: `preds` of each block, loop `headers`
    /// in increasing block order, the back-edge block of each header.
    fn from_parts<'a>(
        n: usize,
        preds: impl Fn(u32) -> &'a [u32],
        headers: &[u32],
        latch: impl Fn(u32) -> u32,
        dom: &DomTree,
    ) -> LoopNest {
        // innermost[b]: header of the innermost loop holding b (a header
        // holds itself); parent[h]: the loop around loop h.
        let mut innermost = vec![NONE; n];
        let mut parent = vec![NONE; n];
        let mut uf: Vec<u32> = (0..n as u32).collect();
        let mut stack = Vec::new();
        for &h in headers.iter().rev() {
            let l = latch(h);
            if !dom.dominates(h, l) {
                // The back edge enters from outside: not a natural loop
                // (irreducible flow). It adds no depth; placement stays
                // correct because it only relies on dominance.
                continue;
            }
            innermost[h as usize] = h;
            stack.push(l);
            while let Some(b) = stack.pop() {
                let r = find(&mut uf, b);
                if r == h || !dom.dominates(h, r) {
                    continue;
                }
                // r is a block no loop holds yet, or the header of an
                // inner loop that no loop holds yet: it joins loop h.
                uf[r as usize] = h;
                if innermost[r as usize] == NONE {
                    innermost[r as usize] = h;
                } else {
                    parent[r as usize] = h;
                }
                stack.extend_from_slice(preds(r));
            }
        }

        // Depths in block order: a loop's parent header and a block's
        // innermost header dominate it, so they come first.
        let mut depth = vec![0u32; n];
        for b in 0..n {
            let h = innermost[b];
            if h == NONE {
                continue;
            }
            depth[b] = if h as usize == b {
                let p = parent[b];
                1 + if p == NONE { 0 } else { depth[p as usize] }
            } else {
                depth[h as usize]
            };
        }

        Self::with_depths(depth, dom)
    }

    /// Completes a nest from per-block loop depths: computes the minima
    /// over each jump pointer's stretch, parents first.
    fn with_depths(depth: Vec<u32>, dom: &DomTree) -> LoopNest {
        let n = depth.len();
        let mut jmin = vec![u32::MAX; n];
        for b in 1..n {
            let (p, j) = (dom.idom(b as u32), dom.jump(b as u32));
            jmin[b] = if j == p {
                depth[b]
            } else {
                // The jump skips b, then the parent's stretch, then the
                // stretch of the parent's jump.
                depth[b]
                    .min(jmin[p as usize])
                    .min(jmin[dom.jump(p) as usize])
            };
        }
        LoopNest { depth, jmin }
    }

    /// Loop depth of block `b`: 0 outside loops, +1 per enclosing loop.
    pub(crate) fn depth(&self, b: usize) -> u32 {
        self.depth[b]
    }

    /// On the dominator path from `late` up to `early` (both included;
    /// `early` must dominate `late`), the block with the smallest loop
    /// depth, the one nearest `late` among equals: Click's choice, which
    /// leaves loops but otherwise keeps code as late (as conditional) as
    /// possible.
    pub(crate) fn shallowest_on_path(&self, dom: &DomTree, late: u32, early: u32) -> u32 {
        let ed = dom.depth(early);
        let ld = |b: u32| self.depth[b as usize];
        // First the smallest depth on the path ...
        let mut m = ld(early);
        let mut v = late;
        while dom.depth(v) > ed {
            let j = dom.jump(v);
            if dom.depth(j) >= ed {
                m = m.min(self.jmin[v as usize]);
                v = j;
            } else {
                m = m.min(ld(v));
                v = dom.idom(v);
            }
        }
        // ... then the first block from `late` that has it: jump over
        // stretches that do not contain it.
        let mut v = late;
        loop {
            if ld(v) == m || dom.depth(v) <= ed {
                return v;
            }
            let j = dom.jump(v);
            v = if dom.depth(j) >= ed && self.jmin[v as usize] > m {
                j
            } else {
                dom.idom(v)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The loop nest of a CFG given as preds lists, dominators computed by
    /// the tree builder from the given idoms.
    fn nest(preds: &[Vec<u32>], idom: Vec<u32>, headers: &[u32]) -> (LoopNest, DomTree) {
        let dom = DomTree::from_idom(idom).unwrap();
        let l = LoopNest::from_parts(
            preds.len(),
            |b| &preds[b as usize],
            headers,
            |h| preds[h as usize][1],
            &dom,
        );
        (l, dom)
    }

    #[test]
    fn nested_loops_add_up() {
        // 0 -> 1(H outer) -> 2 -> 3(H inner) -> 4 -> 3 ; 3 -> 5 -> 1 ; 1 -> 6
        let preds = vec![
            vec![],
            vec![0, 5],
            vec![1],
            vec![2, 4],
            vec![3],
            vec![3],
            vec![1],
        ];
        let idom = vec![0, 0, 1, 2, 3, 3, 1];
        let (l, _) = nest(&preds, idom, &[1, 3]);
        let depths: Vec<u32> = (0..7).map(|b| l.depth(b)).collect();
        assert_eq!(depths, vec![0, 1, 1, 2, 2, 1, 0]);
    }

    #[test]
    fn back_edge_from_outside_is_not_a_loop() {
        // 0 -> 1 -> 2 -> 3(Loop, preds [2, 1]) : 1 does not come after 3.
        let preds = vec![vec![], vec![0], vec![1], vec![2, 1]];
        let (l, _) = nest(&preds, vec![0, 0, 1, 1], &[3]);
        assert!((0..4).all(|b| l.depth(b) == 0));
    }

    #[test]
    fn deep_nest_is_fast() {
        // A chain 0 -> 1 -> ... -> n-1 where block k (k >= 1) is a loop
        // header whose back edge comes from block n-1 (all nested).
        let n = 100_000u32;
        let mut preds: Vec<Vec<u32>> = vec![vec![]];
        for k in 1..n {
            preds.push(vec![k - 1, n - 1]);
        }
        let idom: Vec<u32> = (0..n).map(|b| b.saturating_sub(1)).collect();
        let headers: Vec<u32> = (1..n).collect();
        let (l, dom) = nest(&preds, idom, &headers);
        assert_eq!(l.depth(n as usize - 1), n - 1);
        assert_eq!(l.shallowest_on_path(&dom, n - 1, 0), 0);
        assert_eq!(l.shallowest_on_path(&dom, n - 1, 5), 5);
    }

    proptest! {
        #[test]
        fn shallowest_matches_naive(parents in prop::collection::vec(any::<u32>(), 1..150),
                                    depths in prop::collection::vec(0u32..4, 150),
                                    qs in prop::collection::vec((any::<u32>(), any::<u32>()), 1..40)) {
            let n = parents.len() + 1;
            let mut idom = vec![0u32];
            for (i, p) in parents.iter().enumerate() {
                idom.push(p % (i as u32 + 1));
            }
            let dom = DomTree::from_idom(idom.clone()).unwrap();
            // Arbitrary depths (not from loops) exercise the query alone.
            let l = LoopNest::with_depths(depths[..n].to_vec(), &dom);
            for (a, e) in qs {
                let late = a % n as u32;
                // Pick `early` among late's ancestors.
                let mut path = vec![late];
                let mut x = late;
                while x != 0 { x = idom[x as usize]; path.push(x); }
                let early = path[(e as usize) % path.len()];
                let upto = path.iter().position(|&b| b == early).unwrap();
                let m = path[..=upto].iter().map(|&b| l.depth[b as usize]).min().unwrap();
                let want = *path[..=upto].iter().find(|&&b| l.depth[b as usize] == m).unwrap();
                prop_assert_eq!(l.shallowest_on_path(&dom, late, early), want);
            }
        }
    }
}
