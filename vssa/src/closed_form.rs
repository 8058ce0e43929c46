//! Closed forms of affine loops.
//!
//! After promotion ([`crate::promote`]) a loop that only counts carries
//! its values in loop phis: a *counter* `c` moved by an odd constant `k`
//! each trip, tested by the latch (`c + k != 0` goes round again), and
//! other values `x` moved by constants `d`, stored back each trip. Such a
//! loop's effect has a closed form: it runs `n = c0 * inv(-k)` times
//! (modulo `2^w` for a `w`-bit counter; `-k` is odd, so it has an inverse,
//! and the count is exact for every start value, `c0 = 0` going round
//! `2^w` times), after which `c` is 0 and each `x` is `x0 + n * d`, all
//! values of the counter's type so that `2^w * d` wraps to 0 as the loop
//! would. [`closed_forms`] replaces such a loop by its effect: the last
//! trip's stores, made on the loop's entry memory with the final values,
//! and the exit by the loop's entry. Brainfuck's clear, copy and multiply
//! loops (`[-]`, `[->+<]`, `[->++>+++<<]`) are all of this form.
//!
//! A rotated loop is entered under a test of its counter; when the test
//! read the counter and each value from memory as they are on entry, the
//! closed form changes nothing when the counter is 0 (no trip, and the
//! stores write back what is there), so the test's diamond goes too and
//! the effect runs unconditionally: no branch at all.
//!
//! The loop qualifies only in that exact shape: its body straight-line
//! control from the header to the latch `If`, one memory phi whose chain
//! holds only stores of the values' next trip values, every loop phi
//! affine, and nothing outside the loop reading anything of the body but
//! those values, the memory at the exit and the exit itself. Every change
//! is a [`Graph::replace`] (new nodes are hash-consed), so the patch log
//! records and replays it.

use crate::graph::{Graph, GraphError, NodeId, UserLists};
use crate::op::{BinOp, Op};
use crate::types::Type;

/// What [`closed_forms`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClosedFormStats {
    /// Loops replaced by their effect.
    pub loops: u32,
    /// Of those, loops whose entry test went too (no branch left).
    pub branchless: u32,
}

/// A loop phi moved by a constant each trip.
struct Affine {
    phi: NodeId,
    /// Its value on entry, its next-trip value and the step.
    entry: NodeId,
    next: NodeId,
    step: i64,
}

/// Replaces every affine loop of the live graph by its closed form (see
/// the module docs).
pub fn closed_forms(g: &mut Graph) -> Result<ClosedFormStats, GraphError> {
    let mut stats = ClosedFormStats::default();
    let live = g.live_nodes();
    let users = g.live_users();
    let loops: Vec<NodeId> = live
        .iter()
        .copied()
        .filter(|&n| matches!(g.op(n), Op::Loop { .. }) && g.back_input(n).is_some())
        .collect();
    for l in loops {
        // An earlier rewrite may have taken this loop (or a part) away.
        if g.resolve(l) != l {
            continue;
        }
        if let Some(shape) = Shape::of(g, &users, l) {
            let branchless = shape.rewrite(g, &users)?;
            stats.loops += 1;
            stats.branchless += u32::from(branchless);
        }
    }
    Ok(stats)
}

/// An affine loop, taken apart.
struct Shape {
    header: NodeId,
    exit: NodeId,
    mem: NodeId,
    back_mem: NodeId,
    counter: usize,
    values: Vec<Affine>,
    /// The stores of one trip, oldest first.
    stores: Vec<NodeId>,
}

impl Shape {
    fn of(g: &Graph, users: &UserLists, l: NodeId) -> Option<Shape> {
        let latch = g.back_input(l)?;
        if g.op(latch) != (Op::Proj { index: 0 }) {
            return None;
        }
        let iff = g.input(latch, 0);
        if g.op(iff) != Op::If || g.input(iff, 0) != l {
            return None;
        }
        let projs = &users[iff.index()];
        let exit = projs
            .iter()
            .copied()
            .find(|&p| g.op(p) == (Op::Proj { index: 1 }))?;
        if projs.iter().any(|&p| p != latch && p != exit) {
            return None;
        }
        let mut mem = None;
        let mut values = Vec::new();
        for &u in &users[l.index()] {
            if u == iff || (g.op(u).is_store() && g.input(u, 0) == l) {
                continue;
            }
            if !matches!(g.op(u), Op::Phi { .. }) || g.input(u, 0) != l {
                return None;
            }
            if g.ty(u) == Type::Mem {
                if mem.replace(u).is_some() {
                    return None;
                }
                continue;
            }
            let next = g.back_input(u)?;
            let step = step_of(g, u, next)?;
            // The phi feeds only its next value.
            if users[u.index()].iter().any(|&x| x != next) {
                return None;
            }
            values.push(Affine {
                phi: u,
                entry: g.input(u, 1),
                next,
                step,
            });
        }
        let mem = mem?;
        let back_mem = g.back_input(mem)?;
        let test = g.input(iff, 1);
        let counter = values.iter().position(|v| v.next == test)?;
        let ty = g.ty(values[counter].phi);
        if values[counter].step % 2 == 0 || values.iter().any(|v| g.ty(v.phi) != ty) {
            return None;
        }
        // The memory chain: stores of next-trip values only, each read
        // only by the next one (the last by the back edge and the exit).
        let mut stores = Vec::new();
        let mut m = back_mem;
        while m != mem {
            if !g.op(m).is_store() || g.arity(m) != 4 || g.input(m, 0) != l {
                return None;
            }
            if !values.iter().any(|v| v.next == g.input(m, 3)) {
                return None;
            }
            if m != back_mem && users[m.index()].iter().any(|&x| Some(&x) != stores.last()) {
                return None;
            }
            stores.push(m);
            m = g.input(m, 1);
        }
        let first = stores.last().copied().unwrap_or(back_mem);
        if users[mem.index()].iter().any(|&x| x != first && x != mem) {
            return None;
        }
        stores.reverse();
        Some(Shape {
            header: l,
            exit,
            mem,
            back_mem,
            counter,
            values,
            stores,
        })
    }

    /// Replaces the loop by its effect; returns whether the entry test
    /// went too.
    fn rewrite(&self, g: &mut Graph, users: &UserLists) -> Result<bool, GraphError> {
        let entry = g.input(self.header, 0);
        let entry_mem = g.input(self.mem, 1);
        let c = &self.values[self.counter];
        let ty = g.ty(c.phi);
        let inverse = inverse_odd(c.step.wrapping_neg());
        let inverse = g.iconst(ty, inverse as i64)?;
        let n = g.bin(BinOp::Mul, c.entry, inverse)?;
        let mut finals = Vec::with_capacity(self.values.len());
        for (k, v) in self.values.iter().enumerate() {
            let f = if k == self.counter {
                g.iconst(ty, 0)?
            } else {
                let d = g.iconst(ty, v.step)?;
                let moved = g.bin(BinOp::Mul, n, d)?;
                g.add(v.entry, moved)?
            };
            finals.push(f);
        }
        let diamond = self.entry_diamond(g, users, entry, entry_mem);
        let ctrl = match diamond {
            Some((above, _)) => above,
            None => entry,
        };
        let mut m = entry_mem;
        for &s in &self.stores {
            let value = g.input(s, 3);
            let k = self
                .values
                .iter()
                .position(|v| v.next == value)
                .expect("Shape::of checked every stored value");
            m = g.build(g.op(s), Type::Mem, &[ctrl, m, g.input(s, 2), finals[k]])?;
        }
        for (v, &f) in self.values.iter().zip(&finals) {
            if g.resolve(v.next) != g.resolve(f) {
                g.replace(v.next, f)?;
            }
        }
        if g.resolve(self.back_mem) != g.resolve(m) {
            g.replace(self.back_mem, m)?;
        }
        g.replace(self.exit, entry)?;
        if let Some((above, region)) = diamond {
            for &p in &users[region.index()] {
                if matches!(g.op(p), Op::Phi { .. }) && g.resolve(p) == p {
                    let v = if g.ty(p) == Type::Mem {
                        m
                    } else {
                        g.input(p, 2)
                    };
                    g.replace(p, v)?;
                }
            }
            g.replace(region, above)?;
        }
        Ok(diamond.is_some())
    }

    /// The region where the loop's entry test and its exit meet, and the
    /// control above the test, if the closed form may run whether or not
    /// the test enters the loop: the test reads the counter's entry value,
    /// each value's entry is a load of the place it is stored to on the
    /// entry memory, and the region's phis take the entry value on the
    /// skipping side and the final one on the loop's.
    fn entry_diamond(
        &self,
        g: &Graph,
        users: &UserLists,
        entry: NodeId,
        entry_mem: NodeId,
    ) -> Option<(NodeId, NodeId)> {
        if g.op(entry) != (Op::Proj { index: 0 }) {
            return None;
        }
        let test = g.input(entry, 0);
        if g.op(test) != Op::If || g.input(test, 1) != self.values[self.counter].entry {
            return None;
        }
        let skip = users[test.index()]
            .iter()
            .copied()
            .find(|&p| g.op(p) == (Op::Proj { index: 1 }))?;
        let region = match (&users[skip.index()][..], &users[self.exit.index()][..]) {
            ([r], [r2]) if r == r2 && g.op(*r) == Op::Region => *r,
            _ => return None,
        };
        if g.arity(region) != 2 || g.input(region, 0) != skip || g.input(region, 1) != self.exit {
            return None;
        }
        if users[entry.index()].iter().any(|&u| u != self.header) {
            return None;
        }
        let above = g.input(test, 0);
        // Each stored place held its value's entry on the entry memory,
        // as a load above the test read it: the place may be accessed
        // whether or not the loop runs.
        for &s in &self.stores {
            let v = self.values.iter().find(|v| v.next == g.input(s, 3))?;
            let ld = v.entry;
            let same_place = g.op(ld).access() == g.op(s).access()
                && g.op(ld).is_load()
                && g.arity(ld) == 3
                && g.input(ld, 0) == above
                && g.input(ld, 1) == entry_mem
                && g.input(ld, 2) == g.input(s, 2)
                && g.ty(ld) == g.ty(v.next);
            if !same_place {
                return None;
            }
        }
        // A value not stored must not come from the loop's side of the
        // test either: its final value is used above it.
        for v in &self.values {
            let stored = self.stores.iter().any(|&s| g.input(s, 3) == v.next);
            if !stored && !matches!(g.op(v.entry), Op::Const { .. }) {
                return None;
            }
        }
        for &p in &users[region.index()] {
            if !matches!(g.op(p), Op::Phi { .. }) || g.input(p, 0) != region {
                continue;
            }
            let ok = if g.ty(p) == Type::Mem {
                g.input(p, 1) == entry_mem && g.input(p, 2) == self.back_mem
            } else {
                self.values
                    .iter()
                    .any(|v| g.input(p, 1) == v.entry && g.input(p, 2) == v.next)
            };
            if !ok {
                return None;
            }
        }
        Some((above, region))
    }
}

/// The step of loop phi `phi` whose next value is `next`: `next = phi + d`.
fn step_of(g: &Graph, phi: NodeId, next: NodeId) -> Option<i64> {
    if g.op(next) != Op::Bin(BinOp::Add) || !g.ty(phi).is_int() {
        return None;
    }
    let (a, b) = (g.input(next, 0), g.input(next, 1));
    let k = match (a == phi, b == phi) {
        (true, false) => b,
        (false, true) => a,
        _ => return None,
    };
    match g.op(k) {
        Op::Const { value } => Some(value),
        _ => None,
    }
}

/// The inverse of odd `x` modulo `2^64` (and so modulo every smaller power
/// of two): Newton's iteration doubles the correct low bits each step.
fn inverse_odd(x: i64) -> u64 {
    let x = x as u64;
    let mut y = x;
    for _ in 0..6 {
        y = y.wrapping_mul(2u64.wrapping_sub(x.wrapping_mul(y)));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverses_of_odd_numbers() {
        for x in [1i64, 3, 5, 255, -1, -3, 12345679] {
            assert_eq!((x as u64).wrapping_mul(inverse_odd(x)), 1, "{x}");
        }
    }
}
