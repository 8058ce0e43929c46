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
    let bytes = encode(op, ty, hashed_inputs);
    let hash = blake3::hash(&bytes);
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

    #[test]
    fn immediates_and_types_change_the_address() {
        let a = address(&Op::Const { value: 1 }, Type::I8, &[]);
        let b = address(&Op::Const { value: 2 }, Type::I8, &[]);
        let c = address(&Op::Const { value: 1 }, Type::I16, &[]);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
