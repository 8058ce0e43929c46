//! The binary patch-log file (format version 3): what `vssa run` writes.
//!
//! The text form (versions 1 and 2) spells every address as 32 hex digits
//! and every node is hashed again on replay; parsing it alone cost 20–40 %
//! of optimizing. This form names each address once per unit, in the
//! unit's *node table*, and refers to it by index; immediates are packed
//! (LEB128, zigzag for signed values). It ends with a blake3 checksum and,
//! when a key was at hand, a seal ([`crate::seal`]): a sealed file replays
//! without hashing its nodes again.
//!
//! ```text
//! "vssa-patch-log 3\n"          the magic line (the text form's first word)
//! varint encoding, varint N     the address encoding, the number of units
//! N units, keys increasing:
//!   [16] program key
//!   varint R, R × [16]          refuted guards, increasing
//!   varint T, T × [16]          the node table: every address the patches name
//!   varint P, P patches:
//!     varint target, varint by, varint K (table indexes; K new nodes:)
//!       varint addr, u8 type, u8 op, [varint immediate], varint I, I × varint input
//! u8 sealed (0 or 1)
//! [32] checksum: blake3 of every byte before it
//! [32] seal: keyed blake3 of the same bytes under the user's key (0 if not sealed)
//! ```
//!
//! `docs/patch-log.md` is the full specification.

use crate::book::LogBook;
use crate::format::{immediate, parse_op, Log, LogError};
use crate::seal::SealKey;
use crate::table::{TableLog, TableNode, TablePatch};
use std::collections::HashMap;
use std::sync::OnceLock;
use vssa::{Addr, Op, Type};

/// The first line of a binary log.
pub const BINARY_MAGIC: &[u8] = b"vssa-patch-log 3\n";

/// The binary format's version (the number in [`BINARY_MAGIC`]).
pub const BINARY_VERSION: u32 = 3;

/// Checksum and seal: 32 bytes each, after the `sealed` byte.
const TRAILER: usize = 1 + 32 + 32;

/// Op codes: an op's index in this list. Frozen with the format version;
/// new ops only append (a reader of an older build rejects their codes as
/// unknown ops).
const MNEMONICS: [&str; 90] = [
    "start",
    "region",
    "loop",
    "if",
    "proj",
    "return",
    "end",
    "guard",
    "framestate",
    "const",
    "add",
    "sub",
    "mul",
    "and",
    "or",
    "xor",
    "shl",
    "ushr",
    "sshr",
    "neg",
    "not",
    "eq",
    "ne",
    "slt",
    "sle",
    "sgt",
    "sge",
    "ult",
    "ule",
    "ugt",
    "uge",
    "uext",
    "sext",
    "trunc",
    "select",
    "ptradd",
    "phi",
    "load",
    "store",
    "call",
    "cload",
    "cstore",
    "inlinedframe",
    "boxed",
    "materialize",
    "sdiv",
    "udiv",
    "srem",
    "urem",
    "fadd",
    "fsub",
    "fmul",
    "fdiv",
    "fmin",
    "fmax",
    "fcopysign",
    "fneg",
    "fabs",
    "sqrt",
    "floor",
    "ceil",
    "ftrunc",
    "nearest",
    "feq",
    "fone",
    "flt",
    "fle",
    "fgt",
    "fge",
    "ford",
    "funo",
    "fueq",
    "fune",
    "fult",
    "fule",
    "fugt",
    "fuge",
    "sitof",
    "uitof",
    "ftosi_sat",
    "ftoui_sat",
    "fpromote",
    "fdemote",
    "bitcast",
    "fits_trunc_s",
    "fits_trunc_u",
    "fits_exact_s",
    "fits_exact_u",
    "call_direct",
    "call_indirect",
];

/// Each op code's op, with a zero immediate where it has one.
#[cfg(test)]
fn templates() -> [Op; MNEMONICS.len()] {
    MNEMONICS.map(make_template)
}

/// The op of op code `code`, with a zero immediate where it has one; made
/// on first use, so that a process reading a log parses only the
/// mnemonics it uses (making all of them cost a fresh process a third of
/// a small log's load).
fn template(code: u8) -> Option<Op> {
    static T: [OnceLock<Op>; MNEMONICS.len()] = [const { OnceLock::new() }; MNEMONICS.len()];
    let m = MNEMONICS.get(usize::from(code))?;
    Some(*T[usize::from(code)].get_or_init(|| make_template(m)))
}

fn make_template(m: &str) -> Op {
    // No immediate, a zero one, or (float range tests) a width.
    parse_op(m, "-")
        .or_else(|_| parse_op(m, "0"))
        .or_else(|_| parse_op(m, "8"))
        .expect("every mnemonic parses")
}

fn op_code(op: &Op) -> u8 {
    let m = op.mnemonic();
    MNEMONICS
        .iter()
        .position(|x| *x == m)
        .expect("every op has a code") as u8
}

/// `template` with its immediate set to `v`; `None` if `v` does not fit.
fn with_immediate(template: Op, v: i128) -> Option<Op> {
    Some(match template {
        Op::Loop { .. } => Op::Loop {
            key: u64::try_from(v).ok()?,
        },
        Op::Phi { .. } => Op::Phi {
            key: u64::try_from(v).ok()?,
        },
        Op::Proj { .. } => Op::Proj {
            index: u32::try_from(v).ok()?,
        },
        Op::Const { .. } => Op::Const {
            value: i64::try_from(v).ok()?,
        },
        Op::Load { .. } => Op::Load {
            offset: i32::try_from(v).ok()?,
        },
        Op::Store { .. } => Op::Store {
            offset: i32::try_from(v).ok()?,
        },
        Op::ClassLoad { .. } => {
            let (offset, class) = crate::format::unpack_access(v)?;
            Op::ClassLoad { offset, class }
        }
        Op::ClassStore { .. } => {
            let (offset, class) = crate::format::unpack_access(v)?;
            Op::ClassStore { offset, class }
        }
        Op::Call { .. } => Op::Call {
            func: u32::try_from(v).ok()?,
        },
        Op::CallDirect { .. } => {
            let (callee, sig) = crate::format::unpack_call(v)?;
            Op::CallDirect { callee, sig }
        }
        Op::CallIndirect { .. } => Op::CallIndirect {
            sig: vssa::Signature::from_bits(u64::try_from(v).ok()?)?,
        },
        Op::Guard { .. } => Op::Guard {
            reason: u32::try_from(v).ok()?,
        },
        Op::FrameState { .. } => Op::FrameState {
            resume: u64::try_from(v).ok()?,
        },
        Op::InlinedFrame { .. } => Op::InlinedFrame {
            resume: u64::try_from(v).ok()?,
        },
        Op::Materialize { .. } => Op::Materialize {
            class: u32::try_from(v).ok()?,
        },
        Op::FFits { op, .. } => {
            let bits = u8::try_from(v)
                .ok()
                .filter(|&b| vssa::float::fits_bits_ok(b))?;
            Op::FFits { op, bits }
        }
        other => other,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn unzigzag(z: u128) -> i128 {
    ((z >> 1) as i128) ^ -((z & 1) as i128)
}

/// The binary file of `units` (in key order), sealed under `key` if given.
pub(crate) fn write_binary<'a>(
    encoding: u32,
    units: impl ExactSizeIterator<Item = &'a Log>,
    key: Option<&SealKey>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(BINARY_MAGIC);
    put_varint(&mut out, encoding.into());
    put_varint(&mut out, units.len() as u128);
    for log in units {
        out.extend_from_slice(&log.program.0);
        let mut refuted = log.refuted.clone();
        refuted.sort();
        refuted.dedup();
        put_varint(&mut out, refuted.len() as u128);
        for a in &refuted {
            out.extend_from_slice(&a.0);
        }
        // The node table, in order of first use.
        let mut index: HashMap<Addr, u32> = HashMap::new();
        let mut table: Vec<Addr> = Vec::new();
        let mut slot = |a: Addr| -> u32 {
            *index.entry(a).or_insert_with(|| {
                table.push(a);
                (table.len() - 1) as u32
            })
        };
        let mut body = Vec::with_capacity(16 * log.patches.len());
        for p in &log.patches {
            put_varint(&mut body, slot(p.target).into());
            put_varint(&mut body, slot(p.by).into());
            put_varint(&mut body, p.nodes.len() as u128);
            for n in &p.nodes {
                put_varint(&mut body, slot(n.addr).into());
                body.push(type_code(n.ty));
                body.push(op_code(&n.op));
                if let Some(v) = immediate(&n.op) {
                    put_varint(&mut body, zigzag(v));
                }
                put_varint(&mut body, n.inputs.len() as u128);
                for a in &n.inputs {
                    put_varint(&mut body, slot(*a).into());
                }
            }
        }
        put_varint(&mut out, table.len() as u128);
        for a in &table {
            out.extend_from_slice(&a.0);
        }
        put_varint(&mut out, log.patches.len() as u128);
        out.extend_from_slice(&body);
    }
    out.push(u8::from(key.is_some()));
    let sum = blake3::hash(&out);
    let seal = key.map_or([0u8; 32], |k| k.seal(&out));
    out.extend_from_slice(sum.as_bytes());
    out.extend_from_slice(&seal);
    out
}

fn type_code(t: Type) -> u8 {
    Type::ALL
        .iter()
        .position(|x| *x == t)
        .expect("every type is in ALL") as u8
}

/// What a binary file says about its seal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealState {
    /// Sealed, and the seal verifies under the key given.
    Verified,
    /// Written without a seal.
    Unsealed,
    /// Sealed, but not under the key given (another user's or machine's
    /// key, or no key here, or the file was edited and its checksum
    /// recomputed).
    NotVerified,
}

/// Reads a binary log (`bytes` starts with [`BINARY_MAGIC`]). Every unit
/// is marked sealed only if the seal verifies under `key`.
pub(crate) fn parse_binary(
    bytes: &[u8],
    file: &str,
    key: Option<&SealKey>,
) -> Result<(LogBook, SealState), LogError> {
    let err = |at: usize, message: String| LogError {
        file: file.to_string(),
        line: None,
        message: format!("byte {at}: {message}"),
    };
    if bytes.len() < BINARY_MAGIC.len() + TRAILER {
        return Err(err(
            bytes.len(),
            "truncated: no room for the checksum".into(),
        ));
    }
    let body_end = bytes.len() - 64;
    let sum: &[u8; 32] = bytes[body_end..body_end + 32].try_into().expect("32 bytes");
    let seal: &[u8; 32] = bytes[body_end + 32..].try_into().expect("32 bytes");
    // A seal that verifies vouches for every byte the checksum covers, so
    // the checksum is only computed when it does not.
    let flag = bytes[body_end - 1];
    let verified = flag == 1 && key.is_some_and(|k| k.verifies(&bytes[..body_end], seal));
    if !verified && blake3::hash(&bytes[..body_end]) != blake3::Hash::from_bytes(*sum) {
        return Err(err(
            body_end,
            "checksum mismatch: the log was changed, damaged or truncated after it was written"
                .into(),
        ));
    }
    let state = match flag {
        _ if verified => SealState::Verified,
        0 => SealState::Unsealed,
        1 => SealState::NotVerified,
        b => return Err(err(body_end - 1, format!("bad seal flag {b}"))),
    };
    let mut r = Reader {
        bytes: &bytes[..body_end - 1],
        at: BINARY_MAGIC.len(),
    };
    match read_units(&mut r, state == SealState::Verified) {
        Ok(book) => Ok((book, state)),
        Err(Fail(what)) => Err(err(r.at, what.to_string())),
    }
}

/// Reads the units of a binary body (after the magic, before the seal
/// flag). On failure `r.at` is the offending byte.
fn read_units(r: &mut Reader<'_>, sealed: bool) -> Result<LogBook, Fail> {
    let encoding = u32::try_from(r.varint()?).map_err(|_| Fail("bad encoding"))?;
    let units = r.count(16)?;
    let mut book = LogBook::with_encoding(encoding);
    let mut prev: Option<Addr> = None;
    for _ in 0..units {
        let unit_at = r.at;
        let program = r.addr()?;
        if prev.is_some_and(|p| p >= program) {
            return Err(r.fail_at(unit_at, "unit keys are not increasing"));
        }
        prev = Some(program);
        let n_refuted = r.count(16)?;
        let mut refuted = Vec::with_capacity(n_refuted);
        for _ in 0..n_refuted {
            let a = r.addr()?;
            if refuted.last().is_some_and(|p| *p >= a) {
                return Err(Fail("refuted guards are not increasing"));
            }
            refuted.push(a);
        }
        let n_table = r.count(16)?;
        let mut table = Vec::with_capacity(n_table);
        for _ in 0..n_table {
            table.push(r.addr()?);
        }
        let n_patches = r.count(3)?;
        // Most patches build one node or none, of two inputs or fewer.
        let mut log = TableLog {
            encoding,
            program,
            refuted,
            sealed,
            table,
            patches: Vec::with_capacity(n_patches),
            nodes: Vec::with_capacity(n_patches),
            inputs: Vec::with_capacity(2 * n_patches),
        };
        for _ in 0..n_patches {
            let target = r.index(n_table)?;
            let by = r.index(n_table)?;
            let n_nodes = r.count(5)?;
            for _ in 0..n_nodes {
                let addr = r.index(n_table)?;
                let ty = *Type::ALL
                    .get(usize::from(r.byte()?))
                    .ok_or(Fail("unknown type"))?;
                let op_at = r.at;
                let template = template(r.byte()?).ok_or(Fail("unknown op"))?;
                if matches!(template, Op::Loop { .. }) {
                    return Err(r.fail_at(op_at, "a patch cannot build a loop"));
                }
                let op = if immediate(&template).is_some() {
                    let v = unzigzag(r.varint()?);
                    with_immediate(template, v).ok_or(Fail("immediate out of range"))?
                } else {
                    template
                };
                let n_inputs = r.count(1)?;
                for _ in 0..n_inputs {
                    log.inputs.push(r.index(n_table)?);
                }
                log.nodes.push(TableNode {
                    addr,
                    op,
                    ty,
                    // At most one input per byte of a file bounded far
                    // below 4 GiB: fits.
                    inputs_end: log.inputs.len() as u32,
                });
            }
            log.patches.push(TablePatch {
                target,
                by,
                nodes_end: log.nodes.len() as u32,
            });
        }
        book.insert_table(log);
    }
    if r.at != r.bytes.len() {
        return Err(Fail("bytes after the last unit"));
    }
    Ok(book)
}

/// What was wrong where a binary body stopped reading ([`Reader::at`] is
/// where). A bare message keeps the reader's results two words wide, so
/// its hot paths return in registers; the full [`LogError`] is made once.
#[derive(Clone, Copy, Debug)]
struct Fail(&'static str);

/// A cursor over the body of a binary log.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// A failure at byte `at` rather than where the cursor stands.
    fn fail_at(&mut self, at: usize, what: &'static str) -> Fail {
        self.at = at;
        Fail(what)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Fail> {
        let b = *self.bytes.get(self.at).ok_or(Fail("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    /// A varint of up to 128 bits (immediates).
    fn varint(&mut self) -> Result<u128, Fail> {
        let mut v = 0u128;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            let bits = u128::from(b & 0x7f);
            if shift == 126 && bits > 3 {
                return Err(Fail("number too large"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Fail("number too large"))
    }

    /// A varint of at most 64 bits (node indexes, counts: most of a log's
    /// numbers), without the 128-bit arithmetic of [`Reader::varint`].
    #[inline]
    fn varint64(&mut self) -> Result<u64, Fail> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Fail("number too large"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Fail("number too large"))
    }

    /// A count of items that take at least `min_bytes` each: bounded by
    /// what is left, so a forged count never makes a huge allocation.
    #[inline]
    fn count(&mut self, min_bytes: usize) -> Result<usize, Fail> {
        let v = self.varint64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if v.saturating_mul(min_bytes as u64) > left {
            return Err(Fail("a count larger than the rest of the file"));
        }
        Ok(v as usize)
    }

    fn addr(&mut self) -> Result<Addr, Fail> {
        let s = self
            .bytes
            .get(self.at..self.at + 16)
            .ok_or(Fail("truncated"))?;
        self.at += 16;
        Ok(Addr(s.try_into().expect("16 bytes")))
    }

    /// An index into a node table of `len` entries.
    #[inline]
    fn index(&mut self, len: usize) -> Result<u32, Fail> {
        let i = self.varint64()?;
        if i < len as u64 {
            Ok(i as u32)
        } else {
            Err(Fail("a node index past the node table"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewNode, Patch};

    fn sample_book() -> LogBook {
        let a = |n: u8| Addr([n; 16]);
        let node = |addr, op, ty, inputs: &[Addr]| NewNode {
            addr,
            op,
            ty,
            inputs: inputs.iter().copied().collect(),
        };
        let mut u1 = Log::new(
            a(1),
            vec![
                Patch {
                    target: a(10),
                    by: a(11),
                    nodes: [
                        node(a(11), Op::Const { value: -5 }, Type::I64, &[]),
                        node(a(12), Op::Bin(vssa::BinOp::Add), Type::I64, &[a(11), a(10)]),
                    ]
                    .into_iter()
                    .collect(),
                },
                Patch {
                    target: a(12),
                    by: a(10),
                    nodes: Default::default(),
                },
            ],
        );
        u1.refute(a(40));
        u1.refute(a(30));
        let mut ops = Vec::new();
        for (k, t) in templates().iter().enumerate() {
            if matches!(t, Op::Loop { .. }) {
                continue;
            }
            let op = with_immediate(*t, -(k as i128) * 1000).unwrap_or(*t);
            ops.push(node(
                a(100 + k as u8),
                op,
                Type::ALL[k % 9],
                &[a(1), a(2), a(3)],
            ));
        }
        let u2 = Log::new(
            a(2),
            vec![Patch {
                target: a(7),
                by: a(100),
                nodes: ops.into_iter().collect(),
            }],
        );
        let mut b = LogBook::from(u1);
        b.insert(u2);
        b
    }

    #[test]
    fn a_book_round_trips_and_is_sealed_only_under_its_key() {
        let book = sample_book();
        let k = SealKey::from_bytes([9; 32]);
        let bytes = book.to_binary(Some(&k));
        let (back, state) = parse_binary(&bytes, "f", Some(&k)).unwrap();
        assert_eq!(back, book);
        assert_eq!(state, SealState::Verified);
        assert!(back.units().all(|u| u.is_sealed()));
        let other = SealKey::from_bytes([8; 32]);
        let (back, state) = parse_binary(&bytes, "f", Some(&other)).unwrap();
        assert_eq!(
            (state, back.units().any(|u| u.is_sealed())),
            (SealState::NotVerified, false)
        );
        let (_, state) = parse_binary(&bytes, "f", None).unwrap();
        assert_eq!(state, SealState::NotVerified);
        let plain = book.to_binary(None);
        let (back, state) = parse_binary(&plain, "f", Some(&k)).unwrap();
        assert_eq!((back, state), (book, SealState::Unsealed));
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_an_error() {
        let book = sample_book();
        let k = SealKey::from_bytes([9; 32]);
        let bytes = book.to_binary(Some(&k));
        for cut in 0..bytes.len() {
            assert!(
                parse_binary(&bytes[..cut], "f", Some(&k)).is_err(),
                "cut {cut}"
            );
        }
        for at in 0..bytes.len() - 64 {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            assert!(parse_binary(&b, "f", Some(&k)).is_err(), "flip {at}");
        }
        // The checksum: not even read when the seal verifies (which covers
        // the same bytes); an error without the key.
        for at in bytes.len() - 64..bytes.len() - 32 {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            let (_, state) = parse_binary(&b, "f", Some(&k)).unwrap();
            assert_eq!(state, SealState::Verified);
            assert!(parse_binary(&b, "f", None).is_err(), "flip {at}");
        }
    }

    #[test]
    fn an_edit_with_its_checksum_recomputed_is_not_sealed() {
        let book = sample_book();
        let k = SealKey::from_bytes([9; 32]);
        let mut bytes = book.to_binary(Some(&k));
        let end = bytes.len() - 64;
        // Point the first patch's target somewhere else (index 0 -> 1).
        let at = bytes.len() - 65 - 1;
        bytes[at] ^= 1;
        let sum = blake3::hash(&bytes[..end]);
        bytes[end..end + 32].copy_from_slice(sum.as_bytes());
        // An error (the edit broke the structure) is fine too.
        if let Ok((b, state)) = parse_binary(&bytes, "f", Some(&k)) {
            assert_eq!(state, SealState::NotVerified);
            assert!(b.units().all(|u| !u.is_sealed()));
        }
    }

    /// `bytes` with its checksum recomputed (a deliberate edit).
    fn rechecksummed(mut bytes: Vec<u8>) -> Vec<u8> {
        if bytes.len() >= BINARY_MAGIC.len() + TRAILER {
            let end = bytes.len() - 64;
            let sum = blake3::hash(&bytes[..end]);
            bytes[end..end + 32].copy_from_slice(sum.as_bytes());
        }
        bytes
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Edits of a sealed log with the checksum recomputed: never a
        /// panic, never a log that counts as sealed.
        #[test]
        fn edited_logs_never_panic_and_are_never_sealed(
            edits in proptest::collection::vec((0usize..4096, 0u8..=255, 0u8..3), 1..6)
        ) {
            let k = SealKey::from_bytes([9; 32]);
            let mut bytes = sample_book().to_binary(Some(&k));
            let original = bytes.clone();
            for (at, v, how) in edits {
                let body = bytes.len().saturating_sub(64).max(1);
                let i = at % body;
                match how {
                    0 => bytes[i] = v,
                    1 => bytes.insert(i, v),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            let bytes = rechecksummed(bytes);
            if let Ok((book, state)) = parse_binary(&bytes, "f", Some(&k)) {
                if bytes != original {
                    proptest::prop_assert_ne!(state, SealState::Verified);
                    proptest::prop_assert!(book.units().all(|u| !u.is_sealed()));
                }
            }
        }

        /// Random bodies behind the magic, under a valid checksum.
        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(0u8..=255, 0..300)) {
            let mut bytes = BINARY_MAGIC.to_vec();
            bytes.extend_from_slice(&body);
            bytes.push(0);
            bytes.extend_from_slice(&[0; 64]);
            let _ = parse_binary(&rechecksummed(bytes), "f", None);
        }
    }

    /// One op of every kind, immediates set to something other than zero.
    fn every_op() -> Vec<Op> {
        use vssa::{BinOp, CmpOp, ConvOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, UnOp};
        let mut ops = vec![
            Op::Start,
            Op::Region,
            Op::Loop { key: 3 },
            Op::If,
            Op::Proj { index: 1 },
            Op::Return,
            Op::End,
            Op::Guard { reason: 2 },
            Op::FrameState { resume: 5 },
            Op::InlinedFrame { resume: 6 },
            Op::Boxed,
            Op::Materialize { class: 7 },
            Op::Const { value: -7 },
            Op::Select,
            Op::PtrAdd,
            Op::Phi { key: 4 },
            Op::Load { offset: -3 },
            Op::Store { offset: 9 },
            Op::ClassLoad {
                offset: 2,
                class: 3,
            },
            Op::ClassStore {
                offset: -1,
                class: 2,
            },
            Op::Call { func: 1 },
            Op::CallDirect {
                callee: 3,
                sig: vssa::Signature::new(&[vssa::Type::Ptr, vssa::Type::F64], &[vssa::Type::I32])
                    .unwrap(),
            },
            Op::CallIndirect {
                sig: vssa::Signature::new(&[vssa::Type::I64], &[vssa::Type::I64, vssa::Type::F32])
                    .unwrap(),
            },
            Op::Un(UnOp::Neg),
            Op::Un(UnOp::Not),
            Op::Conv(ConvOp::Uext),
            Op::Conv(ConvOp::Sext),
            Op::Conv(ConvOp::Trunc),
        ];
        ops.extend(BinOp::ALL.map(Op::Bin));
        ops.extend(CmpOp::ALL.map(Op::Cmp));
        ops.extend(FBinOp::ALL.map(Op::FBin));
        ops.extend(FUnOp::ALL.map(Op::FUn));
        ops.extend(FCmpOp::ALL.map(Op::FCmp));
        ops.extend(FConvOp::ALL.map(Op::FConv));
        ops.extend(FitsOp::ALL.map(|op| Op::FFits { op, bits: 32 }));
        ops
    }

    #[test]
    fn every_op_has_a_code_that_reads_back() {
        let ops = every_op();
        assert_eq!(ops.len(), MNEMONICS.len(), "an op kind without a code");
        for op in ops {
            let template = templates()[usize::from(op_code(&op))];
            let back = match immediate(&op) {
                Some(v) => with_immediate(template, v).expect("immediate fits"),
                None => template,
            };
            assert_eq!(back, op);
        }
    }

    #[test]
    fn forged_counts_are_errors_not_allocations() {
        let mut bytes = BINARY_MAGIC.to_vec();
        put_varint(&mut bytes, 1);
        put_varint(&mut bytes, u64::MAX.into());
        bytes.push(0);
        let sum = blake3::hash(&bytes);
        bytes.extend_from_slice(sum.as_bytes());
        bytes.extend_from_slice(&[0; 32]);
        let e = parse_binary(&bytes, "f", None).unwrap_err();
        assert!(e.to_string().contains("larger than the rest"), "{e}");
    }
}
