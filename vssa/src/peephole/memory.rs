//! Rules of loads and stores: address folding and the memory chain.
//!
//! See the contract in the [`super`] module docs: accesses to one base
//! node at disjoint bytes commute, different bases may alias unless the
//! accesses' alias classes say otherwise ([`crate::alias`]), and dropping
//! an overwritten store relies on use counts and on front ends threading
//! memory linearly.

use super::{konst, mk, parts, MAX_CHAIN_WALK, R};
use crate::alias::{classes_may_alias, AliasClass};
use crate::graph::{Graph, GraphError, NodeId};
use crate::op::{BinOp, Op};
use crate::types::Type;
use smallvec::SmallVec;

/// Nodes a rule collects along a memory chain: few, so kept on the stack
/// (a vector per store visit cost an allocation and a free each).
type Links = SmallVec<[NodeId; 8]>;

/// A store's resolved parts and byte range `[offset, offset + width)`.
struct StoreParts {
    ctrl: NodeId,
    mem: NodeId,
    base: NodeId,
    value: NodeId,
    offset: i64,
    width: i64,
    class: AliasClass,
}

fn store_parts(g: &Graph, n: NodeId) -> Option<StoreParts> {
    let op = g.op(n);
    let (offset, class) = op.access().filter(|_| op.is_store())?;
    if g.arity(n) != 4 {
        return None;
    }
    let value = g.input(n, 3);
    Some(StoreParts {
        ctrl: g.input(n, 0),
        mem: g.input(n, 1),
        base: g.input(n, 2),
        value,
        offset: i64::from(offset),
        width: i64::from(g.ty(value).bytes()?),
        class,
    })
}

fn disjoint(o1: i64, w1: i64, o2: i64, w2: i64) -> bool {
    o1 + w1 <= o2 || o2 + w2 <= o1
}

/// Rule `fold_address`: moves constant displacements of the address into the
/// access's offset: `[PtrAdd(b, c)] + off -> [b] + (off + c)` and
/// `[PtrAdd(b, x + c)] + off -> [PtrAdd(b, x)] + (off + c)`. Accesses to
/// cells `p`, `p+1`, `p-3` then share one base node `PtrAdd(tape, p)`, which
/// is what lets the other memory rules compare them. Stops when the offset
/// would leave `i32`.
fn fold_address(
    g: &mut Graph,
    base: NodeId,
    offset: i32,
    depth: u32,
) -> Result<(NodeId, i32), GraphError> {
    let (mut base, mut offset) = (base, offset);
    for _ in 0..MAX_CHAIN_WALK {
        let Some([p, d]) = parts::<2>(g, base, Op::PtrAdd) else {
            break;
        };
        if g.ty(p) != Type::Ptr || g.ty(d) != Type::I64 {
            break;
        }
        if let Some(c) = konst(g, d) {
            let Some(o) = add_offset(offset, c) else {
                break;
            };
            (base, offset) = (p, o);
            continue;
        }
        let Some([x, c]) = parts::<2>(g, d, Op::Bin(BinOp::Add)) else {
            break;
        };
        let Some(c) = konst(g, c) else { break };
        let Some(o) = add_offset(offset, c) else {
            break;
        };
        base = mk(g, depth, Op::PtrAdd, Type::Ptr, &[p, x])?;
        offset = o;
    }
    Ok((base, offset))
}

fn add_offset(offset: i32, c: i64) -> Option<i32> {
    i64::from(offset)
        .checked_add(c)
        .and_then(|o| i32::try_from(o).ok())
}

/// Rules of `Load` (and `ClassLoad`): `fold_address`, then walk the memory
/// chain: `load_skips_other_class` (a store whose alias class cannot alias
/// the load's is stepped over), `load_after_store` (a store of the same type
/// to the same base and offset gives its value) and
/// `load_skips_disjoint_store` (a store to the same base at a disjoint byte
/// range is stepped over). The load keeps its own control input.
pub(super) fn load(g: &mut Graph, op: Op, ty: Type, inputs: &[NodeId], depth: u32) -> R {
    let &[ctrl, mem, base] = inputs else {
        return Ok(None);
    };
    let Some((offset, class)) = op.access() else {
        return Ok(None);
    };
    let Some(width) = ty.bytes() else {
        return Ok(None);
    };
    if g.ty(mem) != Type::Mem || g.ty(base) != Type::Ptr {
        return Ok(None);
    }
    let (b, off) = fold_address(g, base, offset, depth)?;
    let (o, w) = (i64::from(off), i64::from(width));
    let mut m = mem;
    for _ in 0..MAX_CHAIN_WALK {
        let Some(s) = store_parts(g, m) else { break };
        if !classes_may_alias(s.class, class) {
            m = s.mem;
            continue;
        }
        if s.base != b {
            break;
        }
        if s.offset == o && s.width == w && g.ty(s.value) == ty {
            return Ok(Some(s.value));
        }
        if !disjoint(s.offset, s.width, o, w) {
            break;
        }
        m = s.mem;
    }
    if (b, off, m) == (base, offset, mem) {
        return Ok(None);
    }
    Ok(Some(g.intern(Op::load(off, class), ty, &[ctrl, m, b])?))
}

/// Rules of `Store` (and `ClassStore`): `fold_address`, then repeatedly
/// `store_of_loaded_value` and `store_over_store` until neither applies
/// (each step removes a store, so this ends).
pub(super) fn store(
    g: &mut Graph,
    op: Op,
    ty: Type,
    inputs: &[NodeId],
    this: Option<NodeId>,
    depth: u32,
) -> R {
    let &[ctrl, mem, base, value] = inputs else {
        return Ok(None);
    };
    let Some((offset, class)) = op.access() else {
        return Ok(None);
    };
    let Some(width) = g.ty(value).bytes() else {
        return Ok(None);
    };
    if ty != Type::Mem || g.ty(mem) != Type::Mem || g.ty(base) != Type::Ptr {
        return Ok(None);
    }
    let (b, off) = fold_address(g, base, offset, depth)?;
    let (o, w) = (i64::from(off), i64::from(width));
    // Uses that are no observers: they belong to nodes that are dead once the
    // answer stands in for the store. The pass's node uses its memory input,
    // and each dropped store uses its own.
    let mut dead_uses: Links = this
        .filter(|&t| g.arity(t) == 4)
        .map(|t| g.input(t, 1))
        .into_iter()
        .collect();
    let mut m = mem;
    for _ in 0..MAX_CHAIN_WALK {
        if store_of_loaded_value(g, m, b, o, value) {
            return Ok(Some(m));
        }
        let place = Place {
            base: b,
            offset: o,
            width: w,
            class,
        };
        match store_over_store(g, ctrl, m, place, &dead_uses)? {
            Some((shorter, dropped_mem)) => {
                dead_uses.push(dropped_mem);
                m = shorter;
            }
            None => break,
        }
    }
    if (b, off, m) == (base, offset, mem) {
        return Ok(None);
    }
    Ok(Some(g.intern(
        Op::store(off, class),
        Type::Mem,
        &[ctrl, m, b, value],
    )?))
}

/// The bytes a store writes: base, byte range and alias class.
#[derive(Clone, Copy)]
struct Place {
    base: NodeId,
    offset: i64,
    width: i64,
    class: AliasClass,
}

impl Place {
    /// Whether store `s` provably writes none of these bytes: its class
    /// cannot alias, or it writes disjoint bytes of the same base.
    fn apart_from(&self, s: &StoreParts) -> bool {
        !classes_may_alias(s.class, self.class)
            || (s.base == self.base && disjoint(s.offset, s.width, self.offset, self.width))
    }
}

/// Rule `store_of_loaded_value`: writing back what a load read from the same
/// place is a no-op, when the load read memory state `m` or a state that `m`
/// reaches over stores that write none of its bytes (disjoint bytes of the
/// same base, or a class that cannot alias the load's).
fn store_of_loaded_value(g: &Graph, m: NodeId, base: NodeId, offset: i64, value: NodeId) -> bool {
    let lop = g.op(value);
    let Some((lo, class)) = lop.access().filter(|_| lop.is_load()) else {
        return false;
    };
    let Some([_, lm, lb]) = parts::<3>(g, value, lop) else {
        return false;
    };
    let Some(w) = g.ty(value).bytes().map(i64::from) else {
        return false;
    };
    if lb != base || i64::from(lo) != offset {
        return false;
    }
    let read = Place {
        base,
        offset,
        width: w,
        class,
    };
    let mut cur = m;
    for _ in 0..MAX_CHAIN_WALK {
        if cur == lm {
            return true;
        }
        let Some(s) = store_parts(g, cur) else {
            return false;
        };
        if !read.apart_from(&s) {
            return false;
        }
        cur = s.mem;
    }
    false
}

/// Rule `store_over_store`: a new store to `place` on top of `top` makes
/// dead an earlier store `T` to the same base whose bytes it covers, if
/// between them there are only stores that write none of `place`'s bytes
/// (disjoint bytes of the same base, or a class that cannot alias the new
/// store's) and no one but the next link observes any of those
/// states. Observers are counted with [`crate::Node::use_count`]: a link may
/// have one use (the next link; none for `top`, whose next link is the store
/// being built) plus its occurrences in `dead_uses`, uses by nodes known to
/// die with the old chain. Returns the chain rebuilt without `T` (the stores
/// above `T`, in order, on `T`'s memory input) and `T`'s memory input.
///
/// Every store walked must be under the new store's control `ctrl` (the
/// same block): a front-end that threads memory linearly gives an older
/// state new users only across control (the other arm of a branch built
/// later), which use counts taken now cannot see.
fn store_over_store(
    g: &mut Graph,
    ctrl: NodeId,
    top: NodeId,
    place: Place,
    dead_uses: &[NodeId],
) -> Result<Option<(NodeId, NodeId)>, GraphError> {
    let Place {
        base,
        offset,
        width,
        class,
    } = place;
    let mut above: Links = Links::new();
    let mut cur = top;
    for _ in 0..MAX_CHAIN_WALK {
        let Some(s) = store_parts(g, cur) else {
            return Ok(None);
        };
        let dead = dead_uses.iter().filter(|&&d| d == cur).count();
        let allowed = u32::try_from(dead)
            .unwrap_or(u32::MAX)
            .saturating_add(u32::from(!above.is_empty()));
        // Only within the new store's block: a store under another control
        // may get more users later (the other side of a branch built after
        // this store), and dropping it from this chain would fork memory.
        if s.ctrl != g.resolve(ctrl) || g.node(cur).use_count() > allowed {
            return Ok(None);
        }
        if s.base == base
            && classes_may_alias(s.class, class)
            && s.offset >= offset
            && s.offset + s.width <= offset + width
        {
            let mut m = s.mem;
            for &link in above.iter().rev() {
                let Some(l) = store_parts(g, link) else {
                    return Ok(None);
                };
                let Ok(lo) = i32::try_from(l.offset) else {
                    return Ok(None);
                };
                let link = g.intern(
                    Op::store(lo, l.class),
                    Type::Mem,
                    &[l.ctrl, m, l.base, l.value],
                )?;
                m = g.resolve(link);
            }
            return Ok(Some((m, s.mem)));
        }
        if !place.apart_from(&s) {
            return Ok(None);
        }
        above.push(cur);
        cur = s.mem;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::build::Entry;

    fn load(g: &mut Graph, e: &Entry, mem: NodeId, base: NodeId, off: i32, ty: Type) -> NodeId {
        g.load(e.ctrl, mem, base, off, ty).unwrap()
    }

    fn store(g: &mut Graph, e: &Entry, mem: NodeId, base: NodeId, off: i32, v: NodeId) -> NodeId {
        g.store(e.ctrl, mem, base, off, v).unwrap()
    }

    #[test]
    fn fold_address_into_offsets() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let k3 = c(g, Type::I64, 3);
        let p3 = bin(g, BinOp::Add, t.p, k3);
        let cell = g.ptr_add(t.tape, p3).unwrap();
        let l = load(g, &e, e.mem, cell, 2, Type::I8);
        assert_eq!(g.op(l), Op::Load { offset: 5 });
        let base = g.input(l, 2);
        assert_eq!(
            (g.op(base), g.inputs(base).as_slice()),
            (Op::PtrAdd, &[t.tape, t.p][..])
        );
        let k8 = c(g, Type::I64, 8);
        let field = g.ptr_add(t.other, k8).unwrap();
        let s = store(g, &e, e.mem, field, 4, t.x);
        assert_eq!(g.op(s), Op::Store { offset: 12 });
        assert_eq!(g.input(s, 2), t.other);
        // An offset that would leave i32 stays in the address.
        let far = c(g, Type::I64, i64::from(i32::MAX));
        let fp = g.ptr_add(t.other, far).unwrap();
        let l = load(g, &e, e.mem, fp, 1, Type::I8);
        assert_eq!((g.op(l), g.input(l, 2)), (Op::Load { offset: 1 }, fp));
    }

    #[test]
    fn load_after_store_forwards_the_value() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s = store(g, &e, e.mem, t.tape, 4, t.x);
        assert_eq!(load(g, &e, s, t.tape, 4, Type::I8), t.x);
        // Other width or type: no forwarding, and no skipping (overlap).
        let l = load(g, &e, s, t.tape, 4, Type::I16);
        assert_eq!((g.op(l), g.input(l, 1)), (Op::Load { offset: 4 }, s));
        let l = load(g, &e, s, t.tape, 3, Type::I16);
        assert_eq!(g.input(l, 1), s);
        let sp = store(g, &e, e.mem, t.tape, 0, t.tape);
        let l = load(g, &e, sp, t.tape, 0, Type::I64);
        assert_eq!(g.input(l, 1), sp, "ptr stored, i64 loaded: not forwarded");
    }

    #[test]
    fn load_skips_disjoint_stores_only() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let s2 = store(g, &e, s1, t.tape, 2, t.y);
        let l = load(g, &e, s2, t.tape, 1, Type::I8);
        assert_eq!((g.input(l, 1), g.input(l, 0)), (e.mem, e.ctrl));
        // Forwarding across a disjoint store.
        assert_eq!(load(g, &e, s2, t.tape, 0, Type::I8), t.x);
        // A different base may alias: stop there.
        let s3 = store(g, &e, s2, t.other, 0, t.x);
        let l = load(g, &e, s3, t.tape, 1, Type::I8);
        assert_eq!(g.input(l, 1), s3);
        // Overlapping range: stop.
        let l = load(g, &e, s2, t.tape, 1, Type::I16);
        assert_eq!(g.input(l, 1), s2);
    }

    #[test]
    fn store_over_store_drops_the_dead_store() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let s2 = store(g, &e, s1, t.tape, 0, t.y);
        assert_eq!(g.inputs(s2).as_slice(), &[e.ctrl, e.mem, t.tape, t.y]);
        // Through a disjoint store: rebuilt chain without the dead one.
        let a = store(g, &e, s2, t.tape, 0, t.x);
        let b = store(g, &e, a, t.tape, 1, t.x);
        let c2 = store(g, &e, b, t.tape, 0, t.p);
        assert_eq!(g.op(c2), Op::Store { offset: 0 });
        assert_eq!(
            g.input(c2, 1),
            e.mem,
            "the i64 store covers every i8 store below it"
        );
        let a = store(g, &e, s2, t.tape, 0, t.x);
        let b = store(g, &e, a, t.tape, 1, t.x);
        let c3 = store(g, &e, b, t.tape, 0, t.y);
        let b2 = g.input(c3, 1);
        assert_eq!(g.op(b2), Op::Store { offset: 1 });
        assert_eq!(g.input(b2, 1), e.mem, "both i8 stores at 0 below are gone");
    }

    #[test]
    fn store_over_store_respects_observers() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let s1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let s2 = store(g, &e, s1, t.tape, 1, t.x);
        // A load observes s2 (it reads bytes 1..3, which overlap s2).
        let l = load(g, &e, s2, t.tape, 1, Type::I16);
        assert_eq!(g.input(l, 1), s2);
        let s3 = store(g, &e, s2, t.tape, 0, t.y);
        assert_eq!(g.input(s3, 1), s2, "s2 is observed: s1 must stay");
        // A store to another base stops the walk.
        let o1 = store(g, &e, e.mem, t.tape, 0, t.x);
        let o2 = store(g, &e, o1, t.other, 0, t.x);
        let o3 = store(g, &e, o2, t.tape, 0, t.y);
        assert_eq!(g.input(o3, 1), o2);
        // A partial overwrite keeps the earlier store.
        let w = store(g, &e, e.mem, t.other, 8, t.p);
        let n = store(g, &e, w, t.other, 8, t.x);
        assert_eq!(g.input(n, 1), w);
    }

    #[test]
    fn store_of_loaded_value_is_a_no_op() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let v = load(g, &e, e.mem, t.tape, 3, Type::I8);
        assert_eq!(store(g, &e, e.mem, t.tape, 3, v), e.mem);
        let s = store(g, &e, e.mem, t.tape, 0, t.x);
        let l = load(g, &e, s, t.tape, 3, Type::I8);
        assert_eq!(l, v, "skipped the disjoint store");
        assert_eq!(store(g, &e, s, t.tape, 3, v), s);
        assert_ne!(store(g, &e, s, t.tape, 4, v), s, "other place");
        // `+-` in Brainfuck: load, +1, store, load, -1, store = nothing.
        let cell = g.ptr_add(t.tape, t.p).unwrap();
        let v = load(g, &e, e.mem, cell, 0, Type::I8);
        let one = c(g, Type::I8, 1);
        let v1 = bin(g, BinOp::Add, v, one);
        let m1 = store(g, &e, e.mem, cell, 0, v1);
        let w = load(g, &e, m1, cell, 0, Type::I8);
        assert_eq!(w, v1);
        let m1n = c(g, Type::I8, -1);
        let w1 = bin(g, BinOp::Add, w, m1n);
        assert_eq!(w1, v);
        assert_eq!(store(g, &e, m1, cell, 0, w1), e.mem);
    }

    #[test]
    fn alias_classes_let_the_chain_walks_step_over_other_classes() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let sc = |g: &mut Graph, mem, base, off, v, class| {
            g.store_class(e.ctrl, mem, base, off, v, class).unwrap()
        };
        // Class 1 on the tape, class 2 on another base.
        let s1 = sc(g, e.mem, t.tape, 0, t.x, 1);
        let s2 = sc(g, s1, t.other, 0, t.y, 2);
        let l = g.load_class(e.ctrl, s2, t.tape, 0, Type::I8, 1).unwrap();
        assert_eq!(l, t.x, "forwarded across the class-2 store");
        let l = g.load_class(e.ctrl, s2, t.tape, 1, Type::I8, 1).unwrap();
        assert_eq!(
            (g.op(l), g.input(l, 1)),
            (
                Op::ClassLoad {
                    offset: 1,
                    class: 1
                },
                e.mem
            ),
            "skips both stores"
        );
        // Class 0 on either side may alias: the walk stops.
        let l0 = load(g, &e, s2, t.tape, 0, Type::I8);
        assert_eq!((g.op(l0), g.input(l0, 1)), (Op::Load { offset: 0 }, s2));
        let s0 = store(g, &e, s1, t.other, 0, t.y);
        let l = g.load_class(e.ctrl, s0, t.tape, 0, Type::I8, 1).unwrap();
        assert_eq!(g.input(l, 1), s0, "a class-0 store stops a class-1 load");
        // Dead store across a store of another class and base.
        let a = sc(g, e.mem, t.tape, 0, t.y, 1);
        let b = sc(g, a, t.other, 0, t.y, 2);
        let c3 = sc(g, b, t.tape, 0, t.x, 1);
        let b2 = g.input(c3, 1);
        assert_eq!(
            g.op(b2),
            Op::ClassStore {
                offset: 0,
                class: 2
            }
        );
        assert_eq!(g.input(b2, 1), e.mem, "the first class-1 store is dead");
        // Writing back a loaded value across a store of another class.
        let v = g.load_class(e.ctrl, e.mem, t.tape, 3, Type::I8, 1).unwrap();
        let w = sc(g, e.mem, t.other, 3, t.x, 2);
        assert_eq!(sc(g, w, t.tape, 3, v, 1), w);
    }

    #[test]
    fn long_runs_of_disjoint_stores_stay_linear_and_correct() {
        let mut t = setup();
        let e = t.e;
        let g = &mut t.g;
        let mut mem = e.mem;
        for i in 0..1000 {
            mem = store(g, &e, mem, t.tape, i, t.x);
        }
        // Cell 0 is beyond the walk bound: the load stays on a later state.
        let l = load(g, &e, mem, t.tape, 0, Type::I8);
        assert_eq!(g.op(l), Op::Load { offset: 0 });
        // Cell 999 is near: forwarded.
        assert_eq!(load(g, &e, mem, t.tape, 999, Type::I8), t.x);
    }
}
