//! Content addresses: the stable 128-bit name of a node.
//!
//! An address is the first 16 bytes of the blake3 hash of the node's
//! canonical encoding (see [`encode`]). It depends only on what the node
//! *is* — opcode, type, immediates and the addresses of its hashed inputs —
//! never on where or when it was built, so the same program built in two
//! processes yields the same addresses.

use crate::op::Op;
use crate::types::Type;
use std::fmt;

/// Version of the canonical encoding. Bumped whenever the bytes hashed for
/// any node change; patch logs record it so that logs written by another
/// encoding are recognised as incompatible instead of being misapplied.
pub const ENCODING_VERSION: u32 = 1;

/// Prefix hashed before every node: a domain separator carrying the version.
const DOMAIN: &[u8; 8] = b"vssa\x00n\x01\x00";

/// A node's content address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub [u8; 16]);

impl Addr {
    /// Lower-case hex, 32 digits.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Addr> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Addr(out))
    }

    /// The first 8 hex digits, for humans.
    pub fn short(&self) -> String {
        self.to_hex()[..8].to_string()
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.short())
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The bytes of a node's canonical encoding ([`encode`]).
pub type Encoding = smallvec::SmallVec<[u8; 128]>;

/// The canonical encoding of a node, the bytes its address hashes:
///
/// ```text
/// DOMAIN (8 bytes) | opcode tag (u16 LE) | type tag (u8) |
/// immediates (per opcode, LE) | hashed input count (u32 LE) |
/// each hashed input's address (16 bytes)
/// ```
///
/// Built on the stack for nodes of up to six inputs: every node built or
/// replayed is hashed, and a heap allocation per hash showed in profiles.
pub fn encode(op: &Op, ty: Type, hashed_inputs: &[Addr]) -> Encoding {
    let mut out = Encoding::new();
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&op.tag().to_le_bytes());
    out.push(ty.tag());
    op.encode_immediates(&mut out);
    out.extend_from_slice(&(hashed_inputs.len() as u32).to_le_bytes());
    for a in hashed_inputs {
        out.extend_from_slice(&a.0);
    }
    out
}

/// The address of a node with these parts.
pub fn address(op: &Op, ty: Type, hashed_inputs: &[Addr]) -> Addr {
    address_by(op, ty, hashed_inputs.len(), |i| hashed_inputs[i])
}

/// Input addresses that fit beside the longest header in [`address_by`]'s
/// stack buffer.
const INLINE_INPUTS: usize = 6;

/// [`address`] of a node with `count` hashed inputs, the address of input
/// `i` being `input(i)`: the encoding is written into a buffer on the stack
/// straight from where the caller keeps the addresses (a graph's nodes),
/// with no copy of them gathered first. Equal to hashing [`encode`]'s
/// bytes: a node of more inputs than the buffer holds streams them into
/// the hasher, which gives the hash of the same bytes.
pub fn address_by(op: &Op, ty: Type, count: usize, input: impl Fn(usize) -> Addr) -> Addr {
    const HEADER: usize = 8 + 2 + 1 + Op::MAX_IMMEDIATE_BYTES + 4;
    let mut buf = [0u8; HEADER + 16 * INLINE_INPUTS];
    let mut len = 0;
    let mut put = |buf: &mut [u8], bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(&mut buf, DOMAIN);
    put(&mut buf, &op.tag().to_le_bytes());
    put(&mut buf, &[ty.tag()]);
    let (imm, imm_len) = op.immediates();
    put(&mut buf, &imm[..imm_len]);
    put(&mut buf, &(count as u32).to_le_bytes());
    let hash = if count <= INLINE_INPUTS {
        for i in 0..count {
            put(&mut buf, &input(i).0);
        }
        blake3::hash(&buf[..len])
    } else {
        let mut h = blake3::Hasher::new();
        h.update(&buf[..len]);
        for i in 0..count {
            h.update(&input(i).0);
        }
        h.finalize()
    };
    let mut a = [0u8; 16];
    a.copy_from_slice(&hash.as_bytes()[..16]);
    Addr(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let a = address(&Op::Const { value: 7 }, Type::I8, &[]);
        assert_eq!(Addr::from_hex(&a.to_hex()), Some(a));
        assert_eq!(Addr::from_hex("xyz"), None);
        assert_eq!(Addr::from_hex(&"g".repeat(32)), None);
    }

    /// The stack-buffer address is the hash of the documented encoding,
    /// for every operation and for input counts on both sides of the
    /// buffer's size.
    #[test]
    fn address_is_the_hash_of_the_encoding() {
        use crate::op::{BinOp, FitsOp};
        use crate::sig::Signature;
        let ops = [
            Op::Start,
            Op::Const { value: -5 },
            Op::Bin(BinOp::Add),
            Op::Phi { key: u64::MAX },
            Op::Load { offset: -3 },
            Op::ClassStore {
                offset: 7,
                class: 9,
            },
            Op::FFits {
                op: FitsOp::TruncU,
                bits: 32,
            },
            Op::CallDirect {
                callee: u32::MAX,
                sig: Signature::from_bits(0).unwrap(),
            },
            Op::FrameState { resume: 77 },
        ];
        let inputs: Vec<Addr> = (0..20u8)
            .map(|i| address(&Op::Const { value: i.into() }, Type::I8, &[]))
            .collect();
        for op in ops {
            let (_, len) = op.immediates();
            assert!(len <= Op::MAX_IMMEDIATE_BYTES);
            for n in 0..inputs.len() {
                let bytes = encode(&op, Type::I64, &inputs[..n]);
                let mut want = [0u8; 16];
                want.copy_from_slice(&blake3::hash(&bytes).as_bytes()[..16]);
                assert_eq!(
                    address(&op, Type::I64, &inputs[..n]),
                    Addr(want),
                    "{op} {n}"
                );
            }
        }
    }

    #[test]
    fn immediates_and_types_change_the_address() {
        let a = address(&Op::Const { value: 1 }, Type::I8, &[]);
        let b = address(&Op::Const { value: 2 }, Type::I8, &[]);
        let c = address(&Op::Const { value: 1 }, Type::I16, &[]);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
