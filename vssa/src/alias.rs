//! Alias classes: which memory accesses may touch the same bytes.
//!
//! A guest tags each load and store with an *alias class*, a small integer
//! immediate of the node ([`Op::ClassLoad`], [`Op::ClassStore`]): e.g.
//! "tape", "context", "field #k of objects", "array elements". The promise
//! it makes is that two accesses of two *different nonzero* classes never
//! touch the same byte. Class 0 ([`UNKNOWN`], the plain `Load` and `Store`)
//! promises nothing: it may alias every class.
//!
//! Memory stays one chain of states. What classes buy is that a rule may
//! *step over* an access that cannot alias: store-to-load forwarding and
//! dead-store removal (`peephole/memory.rs`) look through stores of other
//! classes, and the scheduler orders a load only before the stores that may
//! alias it (its anti-dependences), so loads move freely across stores of
//! other classes. Every rule asks [`may_alias`], so there is one definition.
//!
//! The interpreter ignores classes; a guest that breaks its promise gets
//! code that may read stale values, as with any wrong aliasing promise.

use crate::graph::{Graph, NodeId};

/// The alias class of an access; see the module docs.
pub type AliasClass = u32;

/// The class that may alias every class: plain `Load` and `Store`.
pub const UNKNOWN: AliasClass = 0;

/// Whether an access of class `a` and one of class `b` may touch the same
/// bytes: unless both are known and they differ.
pub fn classes_may_alias(a: AliasClass, b: AliasClass) -> bool {
    a == UNKNOWN || b == UNKNOWN || a == b
}

/// Where a load or store reads or writes: resolved base, offset, width in
/// bytes and class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub base: NodeId,
    pub offset: i64,
    pub width: i64,
    pub class: AliasClass,
}

/// The access node `n` makes, if it is a well-formed load or store whose
/// width is known (a load's type, a stored value's type).
pub fn access(g: &Graph, n: NodeId) -> Option<Access> {
    let (offset, class) = g.op(n).access()?;
    let width = if g.op(n).is_load() {
        (g.arity(n) == 3).then(|| g.ty(n).bytes())??
    } else {
        (g.arity(n) == 4).then(|| g.ty(g.input(n, 3)).bytes())??
    };
    Some(Access {
        base: g.input(n, 2),
        offset: i64::from(offset),
        width: i64::from(width),
        class,
    })
}

impl Access {
    /// Whether the two accesses may touch a common byte: their classes may
    /// alias and they are not provably apart (the same base at disjoint
    /// byte ranges). Different bases may point anywhere.
    pub fn may_alias(&self, other: &Access) -> bool {
        if !classes_may_alias(self.class, other.class) {
            return false;
        }
        self.base != other.base
            || (self.offset < other.offset + other.width && other.offset < self.offset + self.width)
    }
}

/// Whether nodes `a` and `b` may touch a common byte of memory. Loads and
/// stores answer by [`Access::may_alias`]; anything else with an effect on
/// memory (a call) may touch everything, and nodes that touch no memory
/// touch nothing.
pub fn may_alias(g: &Graph, a: NodeId, b: NodeId) -> bool {
    let touches = |n: NodeId| {
        let op = g.op(n);
        op.access().is_some() || op.is_call()
    };
    if !touches(a) || !touches(b) {
        return false;
    }
    match (access(g, a), access(g, b)) {
        (Some(x), Some(y)) => x.may_alias(&y),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;
    use crate::types::Type;

    #[test]
    fn class_zero_aliases_everything_other_classes_only_themselves() {
        assert!(classes_may_alias(0, 0));
        assert!(classes_may_alias(0, 7));
        assert!(classes_may_alias(7, 0));
        assert!(classes_may_alias(7, 7));
        assert!(!classes_may_alias(7, 8));
    }

    #[test]
    fn nodes_alias_by_class_base_and_bytes() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let q = g.param(e.start, 1, Type::Ptr).unwrap();
        let x = g.param(e.start, 2, Type::I16).unwrap();
        let s0 = g.store(e.ctrl, e.mem, p, 0, x).unwrap();
        let s1 = g.store_class(e.ctrl, e.mem, p, 0, x, 1).unwrap();
        let s2 = g.store_class(e.ctrl, e.mem, q, 0, x, 2).unwrap();
        let l1 = g.load_class(e.ctrl, e.mem, q, 0, Type::I8, 1).unwrap();
        let l1far = g.load_class(e.ctrl, e.mem, p, 2, Type::I8, 1).unwrap();
        let l1near = g.load_class(e.ctrl, e.mem, p, 1, Type::I8, 1).unwrap();
        let (m, _) = g.call(e.ctrl, e.mem, 0, &[], None).unwrap();
        let call = g.input(m, 0);
        assert!(may_alias(&g, s0, s1), "class 0 aliases class 1");
        assert!(may_alias(&g, s0, s2), "and class 2");
        assert!(!may_alias(&g, s1, s2), "classes 1 and 2 never do");
        assert!(may_alias(&g, l1, s1), "other bases may point anywhere");
        assert!(!may_alias(&g, l1far, s1), "same base, bytes 2 vs 0..2");
        assert!(may_alias(&g, l1near, s1), "byte 1 is written");
        assert!(may_alias(&g, call, l1), "a call may touch anything");
        assert!(!may_alias(&g, x, s0), "a parameter touches no memory");
        assert_eq!(
            g.op(s1),
            Op::ClassStore {
                offset: 0,
                class: 1
            }
        );
        assert_eq!(
            g.load_class(e.ctrl, e.mem, p, 0, Type::I8, 0),
            g.load(e.ctrl, e.mem, p, 0, Type::I8),
            "class 0 is the plain load"
        );
    }
}
