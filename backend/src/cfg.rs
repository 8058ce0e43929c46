//! The control-flow graph of a schedule, checked before lowering.
//!
//! Lowering maps every vssa node to one Cranelift value, so a use is only
//! correct if the definition's block dominates the use's block. The
//! scheduler promises that, but a broken schedule must become an error
//! rather than a Cranelift panic, so the backend computes dominators itself
//! from the terminators (the edges it will actually emit) and answers
//! "does block A dominate block B" in constant time.
//!
//! Everything here is iterative: schedules of 100 000 nested loops are fine.

use crate::error::BackendError;
use vssa_schedule::{Schedule, Terminator};

/// Dominator facts about a schedule's blocks.
#[derive(Debug)]
pub(crate) struct Dominators {
    /// Preorder/postorder numbers in the dominator tree: `a` dominates `b`
    /// iff `b`'s interval nests in `a`'s.
    pre: Vec<u32>,
    post: Vec<u32>,
}

const UNDEF: u32 = u32::MAX;

/// The successors a block's terminator branches to.
pub(crate) fn successors(t: &Terminator) -> impl Iterator<Item = usize> {
    let (a, b) = match *t {
        Terminator::Jump { target } => (Some(target.index()), None),
        Terminator::Branch {
            if_true, if_false, ..
        } => (Some(if_true.index()), Some(if_false.index())),
        Terminator::Return { .. } => (None, None),
    };
    a.into_iter().chain(b)
}

impl Dominators {
    /// Checks the block structure and computes dominators.
    ///
    /// Errors: no blocks, a branch to a block that does not exist or to the
    /// entry block (Cranelift's entry block takes the function's
    /// parameters, so it cannot be a branch target), a block unreachable
    /// from the entry, or a block placed before its immediate dominator
    /// (lowering defines values in schedule order, so a dominator must come
    /// first).
    pub(crate) fn compute(s: &Schedule) -> Result<Dominators, BackendError> {
        let n = s.blocks.len();
        if n == 0 {
            return Err(BackendError::EmptySchedule);
        }
        if u32::try_from(n).is_err() {
            return Err(BackendError::BadBlock {
                block: n,
                reason: "too many blocks".into(),
            });
        }
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (b, block) in s.blocks.iter().enumerate() {
            for t in successors(&block.term) {
                if t >= n {
                    return Err(BackendError::BadBlock {
                        block: b,
                        reason: format!("branches to b{t}, but there are only {n} blocks"),
                    });
                }
                if t == 0 {
                    return Err(BackendError::BadBlock {
                        block: b,
                        reason: "branches to the entry block".into(),
                    });
                }
                preds[t].push(b);
            }
        }

        // Reverse postorder from the entry, by an explicit DFS stack.
        let mut rpo_num = vec![UNDEF; n];
        let mut order = Vec::with_capacity(n); // postorder
        let mut visited = vec![false; n];
        let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
        visited[0] = true;
        while let Some(&mut (b, ref mut next)) = stack.last_mut() {
            let succ = successors(&s.blocks[b].term).nth(*next);
            *next += 1;
            match succ {
                Some(t) if !visited[t] => {
                    visited[t] = true;
                    stack.push((t, 0));
                }
                Some(_) => {}
                None => {
                    order.push(b);
                    stack.pop();
                }
            }
        }
        if let Some(b) = visited.iter().position(|&v| !v) {
            return Err(BackendError::BadBlock {
                block: b,
                reason: "unreachable from the entry block".into(),
            });
        }
        order.reverse();
        for (i, &b) in order.iter().enumerate() {
            rpo_num[b] = i as u32;
        }

        // Cooper, Harvey and Kennedy's iterative algorithm over RPO.
        let mut idom = vec![UNDEF; n];
        idom[0] = 0;
        let mut changed = true;
        while changed {
            changed = false;
            for &b in order.iter().skip(1) {
                let mut new = UNDEF;
                for &p in &preds[b] {
                    if idom[p] == UNDEF {
                        continue;
                    }
                    new = if new == UNDEF {
                        p as u32
                    } else {
                        intersect(&idom, &rpo_num, p as u32, new)
                    };
                }
                if idom[b] != new {
                    idom[b] = new;
                    changed = true;
                }
            }
        }

        for (b, &d) in idom.iter().enumerate().skip(1) {
            if d as usize >= b {
                return Err(BackendError::BadBlock {
                    block: b,
                    reason: format!("placed before its immediate dominator b{d}"),
                });
            }
        }

        // Number the dominator tree (children lists by counting sort).
        let mut child_start = vec![0u32; n + 1];
        for &d in idom.iter().skip(1) {
            child_start[d as usize + 1] += 1;
        }
        for i in 0..n {
            child_start[i + 1] += child_start[i];
        }
        let mut fill = child_start.clone();
        let mut children = vec![0u32; n.saturating_sub(1)];
        for (b, &d) in idom.iter().enumerate().skip(1) {
            children[fill[d as usize] as usize] = b as u32;
            fill[d as usize] += 1;
        }
        let mut pre = vec![0u32; n];
        let mut post = vec![0u32; n];
        let mut clock = 0u32;
        let mut stack: Vec<(u32, u32)> = vec![(0, child_start[0])];
        pre[0] = clock;
        clock += 1;
        while let Some(&mut (b, ref mut next)) = stack.last_mut() {
            if *next < child_start[b as usize + 1] {
                let c = children[*next as usize];
                *next += 1;
                pre[c as usize] = clock;
                clock += 1;
                stack.push((c, child_start[c as usize]));
            } else {
                post[b as usize] = clock;
                clock += 1;
                stack.pop();
            }
        }
        Ok(Dominators { pre, post })
    }

    /// Whether block `a` dominates block `b` (every block dominates itself).
    pub(crate) fn dominates(&self, a: usize, b: usize) -> bool {
        self.pre[a] <= self.pre[b] && self.post[b] <= self.post[a]
    }
}

/// The nearest common dominator of `a` and `b` (both already processed).
fn intersect(idom: &[u32], rpo: &[u32], mut a: u32, mut b: u32) -> u32 {
    while a != b {
        while rpo[a as usize] > rpo[b as usize] {
            a = idom[a as usize];
        }
        while rpo[b as usize] > rpo[a as usize] {
            b = idom[b as usize];
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use vssa::NodeId;
    use vssa_schedule::{Block, BlockId};

    fn block(term: Terminator) -> Block {
        Block {
            head: NodeId::from_index(0),
            phis: vec![],
            nodes: vec![],
            preds: vec![],
            term,
            loop_depth: 0,
        }
    }

    fn jump(t: u32) -> Terminator {
        Terminator::Jump { target: BlockId(t) }
    }

    fn branch(t: u32, f: u32) -> Terminator {
        Terminator::Branch {
            cond: NodeId::from_index(0),
            if_true: BlockId(t),
            if_false: BlockId(f),
        }
    }

    fn ret() -> Terminator {
        Terminator::Return {
            ret: NodeId::from_index(0),
            value: NodeId::from_index(0),
        }
    }

    #[test]
    fn diamond() {
        // 0 -> 1, 2 -> 3
        let s = Schedule {
            blocks: vec![
                block(branch(1, 2)),
                block(jump(3)),
                block(jump(3)),
                block(ret()),
            ],
        };
        let d = Dominators::compute(&s).unwrap();
        assert!(d.dominates(0, 3));
        assert!(d.dominates(0, 1));
        assert!(!d.dominates(1, 3));
        assert!(!d.dominates(2, 3));
        assert!(!d.dominates(1, 2));
        assert!(d.dominates(3, 3));
        assert!(!d.dominates(3, 0));
    }

    #[test]
    fn loop_with_exit() {
        // 0 -> 1 (header) -> 2 (body) -> 1; 1 -> 3 (exit)
        let s = Schedule {
            blocks: vec![
                block(jump(1)),
                block(branch(2, 3)),
                block(jump(1)),
                block(ret()),
            ],
        };
        let d = Dominators::compute(&s).unwrap();
        assert!(d.dominates(1, 2));
        assert!(d.dominates(1, 3));
        assert!(!d.dominates(2, 3));
        assert!(!d.dominates(2, 1));
    }

    #[test]
    fn rejects_bad_structure() {
        let s = Schedule { blocks: vec![] };
        assert_eq!(
            Dominators::compute(&s).unwrap_err(),
            BackendError::EmptySchedule
        );
        let s = Schedule {
            blocks: vec![block(jump(5))],
        };
        assert!(matches!(
            Dominators::compute(&s),
            Err(BackendError::BadBlock { block: 0, .. })
        ));
        let s = Schedule {
            blocks: vec![block(jump(1)), block(jump(0))],
        };
        assert!(Dominators::compute(&s).is_err());
        // Block 1 is unreachable.
        let s = Schedule {
            blocks: vec![block(ret()), block(ret())],
        };
        assert!(matches!(
            Dominators::compute(&s),
            Err(BackendError::BadBlock { block: 1, .. })
        ));
        // Block 1 is dominated by block 2 but comes first.
        let s = Schedule {
            blocks: vec![block(jump(2)), block(ret()), block(jump(1))],
        };
        assert!(matches!(
            Dominators::compute(&s),
            Err(BackendError::BadBlock { block: 1, .. })
        ));
    }

    #[test]
    fn deep_chain_does_not_recurse() {
        let n = 200_000u32;
        let mut blocks: Vec<Block> = (0..n - 1).map(|i| block(jump(i + 1))).collect();
        blocks.push(block(ret()));
        let d = Dominators::compute(&Schedule { blocks }).unwrap();
        assert!(d.dominates(0, n as usize - 1));
        assert!(d.dominates(1000, 1001));
        assert!(!d.dominates(1001, 1000));
    }
}
