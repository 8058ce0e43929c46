//! Pins the content addresses of a small graph. Addresses are the names that
//! patch logs and caches store, so an accidental change of the canonical
//! encoding (opcode or type tags, immediates, domain prefix, input order)
//! must fail here. If the encoding changes on purpose, `ENCODING_VERSION` is
//! bumped and these constants are recomputed.

use vssa::{Addr, BinOp, Graph, Op, Type, ENCODING_VERSION};

const START: &str = "b73096d7489363101946decc7916a28b";
const CTRL: &str = "92e37fa96a5e5a9679530811c97a01f3";
const MEM: &str = "e03b7392461a68b2d0ab30f48ff5fddd";
const PARAM0_I8: &str = "29c0358b23c18f5c68008c7e34b65d40";
const CONST_I8_7: &str = "dcebf66916f18ca8e3bc98f1e737881d";
const ADD: &str = "3ac9c431553192e879202a01d9a376c5";

#[test]
fn addresses_are_pinned() {
    assert_eq!(
        ENCODING_VERSION, 1,
        "a new encoding needs new pinned addresses"
    );
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let x = g.param(e.start, 0, Type::I8).unwrap();
    let k = g.iconst(Type::I8, 7).unwrap();
    let sum = g.add(x, k).unwrap();
    assert_eq!(g.op(sum), Op::Bin(BinOp::Add));
    let got: Vec<String> = [e.start, e.ctrl, e.mem, x, k, sum]
        .iter()
        .map(|&n| g.addr(n).to_hex())
        .collect();
    assert_eq!(got, [START, CTRL, MEM, PARAM0_I8, CONST_I8_7, ADD]);
    // Lookup by address finds the node.
    assert_eq!(g.lookup(&Addr::from_hex(ADD).unwrap()), Some(sum));
}

/// The layout documented in `addr.rs`, written out by hand and hashed with
/// blake3 directly, gives the same addresses as the graph.
#[test]
fn documented_layout_matches() {
    fn hash(bytes: &[u8]) -> String {
        let h = blake3::hash(bytes);
        h.as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
    let domain = b"vssa\x00n\x01\x00";
    // Start: opcode 1, type Tuple (2), no immediates, no inputs.
    let mut start = domain.to_vec();
    start.extend_from_slice(&[1, 0, 2, 0, 0, 0, 0]);
    assert_eq!(hash(&start), START);
    // Const i8 7: opcode 16, type I8 (3), value as i64 LE, no inputs.
    let mut k = domain.to_vec();
    k.extend_from_slice(&[16, 0, 3]);
    k.extend_from_slice(&7i64.to_le_bytes());
    k.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(hash(&k), CONST_I8_7);
    // Add i8: opcode 17, type I8, BinOp::Add (0), two inputs' addresses.
    let mut add = domain.to_vec();
    add.extend_from_slice(&[17, 0, 3, 0, 2, 0, 0, 0]);
    add.extend_from_slice(&Addr::from_hex(PARAM0_I8).unwrap().0);
    add.extend_from_slice(&Addr::from_hex(CONST_I8_7).unwrap().0);
    assert_eq!(hash(&add), ADD);
}

/// The float types and ops follow the documented layout too: type tags
/// `f32` = 9 and `f64` = 10, opcode tags `FBin` = 24 and `FFits` = 28, a
/// float constant's immediate is its bit pattern (`f32` sign-extended).
#[test]
fn documented_float_layout_matches() {
    fn hash(bytes: &[u8]) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&blake3::hash(bytes).as_bytes()[..16]);
        a
    }
    let domain = b"vssa\x00n\x01\x00";
    let mut g = Graph::new();
    let m0 = g.f64const(-0.0).unwrap();
    let mut k = domain.to_vec();
    k.extend_from_slice(&[16, 0, 10]);
    k.extend_from_slice(&(-0.0f64).to_bits().to_le_bytes());
    k.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(g.addr(m0).0, hash(&k));
    let h = g.f32const(-1.5).unwrap();
    let mut k32 = domain.to_vec();
    k32.extend_from_slice(&[16, 0, 9]);
    k32.extend_from_slice(&i64::from((-1.5f32).to_bits() as i32).to_le_bytes());
    k32.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(g.addr(h).0, hash(&k32));
    let e = g.entry().unwrap();
    let x = g.param(e.start, 0, Type::F64).unwrap();
    let sum = g.fbin(vssa::FBinOp::Add, x, m0).unwrap();
    let mut add = domain.to_vec();
    add.extend_from_slice(&[24, 0, 10, 0, 2, 0, 0, 0]);
    add.extend_from_slice(&g.addr(x).0);
    add.extend_from_slice(&g.addr(m0).0);
    assert_eq!(g.addr(sum).0, hash(&add));
    let fits = g.ffits(vssa::FitsOp::ExactU, 32, x).unwrap();
    let mut f = domain.to_vec();
    f.extend_from_slice(&[28, 0, 3, 3, 32, 1, 0, 0, 0]);
    f.extend_from_slice(&g.addr(x).0);
    assert_eq!(g.addr(fits).0, hash(&f));
}

#[test]
fn interning_gives_one_node_per_content() {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    assert_eq!(g.entry().unwrap().start, e.start);
    let x = g.param(e.start, 0, Type::I16).unwrap();
    assert_eq!(g.param(e.start, 0, Type::I16).unwrap(), x);
    assert_ne!(g.param(e.start, 1, Type::I16).unwrap(), x, "other index");
    assert_ne!(g.param(e.start, 0, Type::I32).unwrap(), x, "other type");
    let a = g.iconst(Type::I16, 5).unwrap();
    let b = g.iconst(Type::I16, 5).unwrap();
    let c = g.iconst(Type::I16, 6).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(g.addr(a), g.addr(c));
    // Normalized immediates: i8 255 is i8 -1.
    assert_eq!(
        g.iconst(Type::I8, 255).unwrap(),
        g.iconst(Type::I8, -1).unwrap()
    );
    let l1 = g.load(e.ctrl, e.mem, e.start, 0, Type::I8);
    assert!(
        l1.is_ok(),
        "the builder does not type-check; the verifier does"
    );
    let p = g.param(e.start, 2, Type::Ptr).unwrap();
    let l0 = g.load(e.ctrl, e.mem, p, 0, Type::I8).unwrap();
    let l0b = g.load(e.ctrl, e.mem, p, 0, Type::I8).unwrap();
    let l4 = g.load(e.ctrl, e.mem, p, 4, Type::I8).unwrap();
    assert_eq!(l0, l0b);
    assert_ne!(l0, l4, "other offset");
    let s1 = g.add(x, a).unwrap();
    let s2 = g.add(x, b).unwrap();
    let s3 = g.add(x, c).unwrap();
    assert_eq!(s1, s2);
    assert_ne!(s1, s3);
    let n = g.len();
    g.add(x, a).unwrap();
    assert_eq!(g.len(), n, "a hit interns nothing");
}
