//! Rules of the nodes that choose a value: `Select`, `Phi`, and `Guard`
//! (which chooses between going on and leaving).

use super::{konst, R};
use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Type;

/// Rules of `Select`: `select_const_cond` picks an arm, `select_same_arms`
/// (`c ? x : x = x`), and `select_of_bool` (`cmp ? 1 : 0 = cmp`, for every
/// comparison or test that gives 0 or 1). Arms of any value type: a select
/// moves bits, so float arms are no different.
pub(super) fn select(g: &mut Graph, ty: Type, inputs: &[NodeId]) -> R {
    let &[c, a, b] = inputs else { return Ok(None) };
    if !ty.is_value() || !g.ty(c).is_int() || g.ty(a) != ty || g.ty(b) != ty {
        return Ok(None);
    }
    if let Some(k) = konst(g, c) {
        return Ok(Some(if k != 0 { a } else { b }));
    }
    if a == b {
        return Ok(Some(a));
    }
    if ty == Type::I8
        && matches!(g.op(c), Op::Cmp(_) | Op::FCmp(_) | Op::FFits { .. })
        && konst(g, a) == Some(1)
        && konst(g, b) == Some(0)
    {
        return Ok(Some(c));
    }
    Ok(None)
}

/// Rule `phi_same_value`: a phi whose values are all one node `v` (or the
/// phi itself, around a loop) is `v`. A loop phi is only judged with its
/// back edge: at build time it has none yet and is left alone.
pub(super) fn phi_same_value(
    g: &Graph,
    op: Op,
    ty: Type,
    inputs: &[NodeId],
    this: Option<NodeId>,
) -> Option<NodeId> {
    let (&region, values) = inputs.split_first()?;
    let me = match g.op(region) {
        Op::Region => this,
        Op::Loop { .. } => {
            if values.len() != 2 {
                return None;
            }
            // Without `this` (a direct call), find the phi by its hashed part.
            this.or_else(|| g.lookup(&g.address_of(&op, ty, &inputs[..2])))
        }
        _ => return None,
    };
    let mut found: Option<NodeId> = None;
    for &v in values {
        if Some(v) == me {
            continue;
        }
        match found {
            None => found = Some(v),
            Some(f) if f == v => {}
            Some(_) => return None,
        }
    }
    found
}

/// Rule `guard_passes`: a guard whose condition is a nonzero constant never
/// fails, so it is its control input. (A guard on a zero constant always
/// fails; it stays, and deoptimizes every time it is reached.)
pub(super) fn guard_passes(g: &Graph, inputs: &[NodeId]) -> Option<NodeId> {
    let &[ctrl, cond, _frame] = inputs else {
        return None;
    };
    (konst(g, cond)? != 0).then_some(ctrl)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{simplify, simplify_node};
    use crate::op::{BinOp, Op};
    use crate::types::Type;

    #[test]
    fn phi_rules() {
        let mut t = setup();
        let g = &mut t.g;
        let (tc, fc) = g.branch(t.e.ctrl, t.x).unwrap();
        let r = g.region(&[tc, fc]).unwrap();
        assert_eq!(g.phi(r, Type::I8, &[t.y, t.y]).unwrap(), t.y);
        let two = g.phi(r, Type::I8, &[t.x, t.y]).unwrap();
        assert_eq!(g.op(two), Op::Phi { key: 0 });

        let lp = g.loop_header(1, r).unwrap();
        let phi = g.loop_phi(lp, 7, Type::I8, t.x).unwrap();
        assert_eq!(
            g.op(phi),
            Op::Phi { key: 7 },
            "no back edge yet: left alone"
        );
        let one = c(g, Type::I8, 1);
        let same = bin(g, BinOp::Mul, phi, one);
        assert_eq!(same, phi);
        g.set_back_input(phi, same).unwrap();
        assert_eq!(
            simplify_node(g, phi).unwrap(),
            Some(t.x),
            "phi(x, itself) = x"
        );
        // A direct call with the back edge finds the phi by its address.
        let ins = g.inputs(phi);
        assert_eq!(
            simplify(g, Op::Phi { key: 7 }, Type::I8, &ins).unwrap(),
            Some(t.x)
        );

        let phi2 = g.loop_phi(lp, 8, Type::I8, t.x).unwrap();
        let inc = bin(g, BinOp::Add, phi2, one);
        g.set_back_input(phi2, inc).unwrap();
        assert_eq!(
            simplify_node(g, phi2).unwrap(),
            None,
            "a real induction variable"
        );
    }
}
