//! Relocatable machine code: what Cranelift emitted for one function,
//! before it was placed in memory.
//!
//! A [`CodeImage`] holds the code bytes and, for every place in them that
//! names something outside the function, a [`CodeReloc`] saying *what*
//! symbolically — the embedder's host function number `i`, a Cranelift
//! library routine by name, or an offset inside the function itself —
//! never an address. Placing an image in executable memory fills the
//! addresses in (`Jit::load_owned`), so the same image runs in any process
//! whose host table has the same functions: this is what the persistent
//! code cache ([`crate::stored`]) stores. Every compilation goes through
//! an image too, so loading is the path every compiled unit takes.
//!
//! [`CodeImage::encode`] and [`CodeImage::decode`] are the image's bytes
//! in a cache entry; decoding checks every length and offset, so a damaged
//! image is an error, never a relocation written outside the code.

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::LibCall;
use std::str::FromStr;

/// The Cranelift external-name namespace host function calls use; the
/// index is the host function's number in the embedder's table.
pub(crate) const HOST_NAMESPACE: u32 = 2;

/// The namespace of direct calls between compiled functions
/// (`Op::CallDirect`); the index is the callee's function number, whose
/// address the embedder supplies ([`crate::Jit::define_function`]).
pub(crate) const FUNCTION_NAMESPACE: u32 = 3;

/// The most code bytes one image may hold (a unit is at most 32 768
/// Brainfuck instructions: far below this).
pub const MAX_IMAGE_BYTES: usize = 64 << 20;

/// The most relocations one image may hold.
pub const MAX_IMAGE_RELOCS: usize = 1 << 20;

/// One function's machine code with its relocations described by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeImage {
    /// The code as emitted (constants and jump tables included), every
    /// relocated field still zero.
    pub bytes: Vec<u8>,
    /// The alignment the code needs, in bytes (a power of two).
    pub align: u32,
    pub relocs: Vec<CodeReloc>,
}

/// A field of the code to fill in when the code is placed in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeReloc {
    /// Where the field starts in [`CodeImage::bytes`].
    pub offset: u32,
    pub kind: RelocKind,
    pub target: RelocTarget,
    /// Added to the target's address.
    pub addend: i64,
}

/// How a relocated field is written (the subset of Cranelift's kinds that
/// vssa's code uses; a function needing another one is not made into an
/// image, see [`RelocKind::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocKind {
    /// The absolute address, 8 bytes.
    Abs8,
    /// The absolute address, 4 bytes.
    Abs4,
    /// x86: the address relative to the field, 4 bytes.
    X86PcRel4,
    /// x86: a call's target relative to the field, 4 bytes.
    X86CallPcRel4,
    /// AArch64: a `bl`'s 26-bit word offset.
    Arm64Call,
}

impl RelocKind {
    /// vssa's name for a Cranelift relocation kind, if it is one of these.
    pub fn of(r: Reloc) -> Option<RelocKind> {
        Some(match r {
            Reloc::Abs8 => RelocKind::Abs8,
            Reloc::Abs4 => RelocKind::Abs4,
            Reloc::X86PCRel4 => RelocKind::X86PcRel4,
            Reloc::X86CallPCRel4 => RelocKind::X86CallPcRel4,
            Reloc::Arm64Call => RelocKind::Arm64Call,
            _ => return None,
        })
    }

    pub fn to_cranelift(self) -> Reloc {
        match self {
            RelocKind::Abs8 => Reloc::Abs8,
            RelocKind::Abs4 => Reloc::Abs4,
            RelocKind::X86PcRel4 => Reloc::X86PCRel4,
            RelocKind::X86CallPcRel4 => Reloc::X86CallPCRel4,
            RelocKind::Arm64Call => Reloc::Arm64Call,
        }
    }

    /// Bytes the field takes.
    pub fn width(self) -> usize {
        match self {
            RelocKind::Abs8 => 8,
            _ => 4,
        }
    }

    fn tag(self) -> u8 {
        match self {
            RelocKind::Abs8 => 1,
            RelocKind::Abs4 => 2,
            RelocKind::X86PcRel4 => 3,
            RelocKind::X86CallPcRel4 => 4,
            RelocKind::Arm64Call => 5,
        }
    }

    fn from_tag(t: u8) -> Option<RelocKind> {
        Some(match t {
            1 => RelocKind::Abs8,
            2 => RelocKind::Abs4,
            3 => RelocKind::X86PcRel4,
            4 => RelocKind::X86CallPcRel4,
            5 => RelocKind::Arm64Call,
            _ => return None,
        })
    }
}

/// What a relocated field refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// The embedder's host function of this number ([`crate::HostFn`]
    /// table index); only through an [`RelocKind::Abs8`] field.
    Host(u32),
    /// The embedder's compiled function of this number (the callee of an
    /// `Op::CallDirect`); only through an [`RelocKind::Abs8`] field.
    Function(u32),
    /// A Cranelift library routine (e.g. `floorf` without SSE4.1), found
    /// by name in the process when the code is placed.
    LibCall(LibCall),
    /// An offset inside the function itself.
    Within(u32),
}

/// Why image bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageError(pub String);

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl CodeImage {
    /// The image's bytes (inside a cache entry, which seals them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.align));
        put_varint(out, self.bytes.len() as u64);
        out.extend_from_slice(&self.bytes);
        put_varint(out, self.relocs.len() as u64);
        for r in &self.relocs {
            out.push(r.kind.tag());
            put_varint(out, u64::from(r.offset));
            put_varint(out, zigzag(r.addend));
            match r.target {
                RelocTarget::Host(i) => {
                    out.push(1);
                    put_varint(out, u64::from(i));
                }
                RelocTarget::Within(o) => {
                    out.push(2);
                    put_varint(out, u64::from(o));
                }
                RelocTarget::Function(i) => {
                    out.push(4);
                    put_varint(out, u64::from(i));
                }
                RelocTarget::LibCall(lc) => {
                    out.push(3);
                    let name = lc.to_string();
                    put_varint(out, name.len() as u64);
                    out.extend_from_slice(name.as_bytes());
                }
            }
        }
    }

    /// Reads an image written by [`CodeImage::encode`] from the start of
    /// `bytes`; returns it and the number of bytes it took. Every field is
    /// checked: the alignment is a power of two at most 4096, sizes within
    /// [`MAX_IMAGE_BYTES`] and [`MAX_IMAGE_RELOCS`], every relocated field
    /// inside the code, every target known.
    pub fn decode(bytes: &[u8]) -> Result<(CodeImage, usize), ImageError> {
        let mut r = Reader { bytes, pos: 0 };
        let align = r.varint("alignment")?;
        if !align.is_power_of_two() || align > 4096 {
            return Err(r.error(&format!(
                "alignment {align} is not a power of two up to 4096"
            )));
        }
        let len = r.len("code length", MAX_IMAGE_BYTES)?;
        let code = r.take(len, "code")?.to_vec();
        let n = r.len("relocation count", MAX_IMAGE_RELOCS)?;
        let mut relocs = Vec::with_capacity(n.min(bytes.len()));
        for _ in 0..n {
            let tag = r.byte("relocation kind")?;
            let kind =
                RelocKind::from_tag(tag).ok_or_else(|| r.error("unknown relocation kind"))?;
            let offset = r.varint("relocation offset")?;
            if offset.saturating_add(kind.width() as u64) > code.len() as u64 {
                return Err(r.error("relocation outside the code"));
            }
            let addend = unzigzag(r.varint("relocation addend")?);
            let target =
                match r.byte("relocation target")? {
                    1 => RelocTarget::Host(r.u32("host function")?),
                    2 => {
                        let o = r.u32("function offset")?;
                        if o as usize > code.len() {
                            return Err(r.error("function offset outside the code"));
                        }
                        RelocTarget::Within(o)
                    }
                    3 => {
                        let n = r.len("library routine name", 64)?;
                        let at = r.pos;
                        let name = std::str::from_utf8(r.take(n, "library routine name")?).ok();
                        let lc = name.and_then(|n| LibCall::from_str(n).ok());
                        RelocTarget::LibCall(lc.ok_or_else(|| {
                            ImageError(format!("byte {at}: unknown library routine"))
                        })?)
                    }
                    4 => RelocTarget::Function(r.u32("compiled function")?),
                    _ => return Err(r.error("unknown relocation target")),
                };
            if matches!(target, RelocTarget::Host(_) | RelocTarget::Function(_))
                && kind != RelocKind::Abs8
            {
                return Err(r.error("a called function is reached through an 8-byte address"));
            }
            relocs.push(CodeReloc {
                offset: offset as u32,
                kind,
                target,
                addend,
            });
        }
        Ok((
            CodeImage {
                bytes: code,
                align: align as u32,
                relocs,
            },
            r.pos,
        ))
    }
}

/// An unsigned LEB128 number.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over bytes being decoded; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn error(&self, what: &str) -> ImageError {
        ImageError(format!("byte {}: {what}", self.pos))
    }

    pub fn byte(&mut self, what: &str) -> Result<u8, ImageError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.error(&format!("truncated: {what} missing")))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self, what: &str) -> Result<u64, ImageError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.error(&format!("{what} overflows 64 bits")));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.error(&format!("{what} overflows 64 bits")))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, ImageError> {
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| self.error(&format!("{what} {v} is too large")))
    }

    /// A length at most `max`.
    pub fn len(&mut self, what: &str, max: usize) -> Result<usize, ImageError> {
        let v = self.varint(what)?;
        if v > max as u64 {
            return Err(self.error(&format!("{what} {v} is above {max}")));
        }
        Ok(v as usize)
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ImageError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.error(&format!("truncated: {what} missing")))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CodeImage {
        CodeImage {
            bytes: (0..64).collect(),
            align: 16,
            relocs: vec![
                CodeReloc {
                    offset: 2,
                    kind: RelocKind::Abs8,
                    target: RelocTarget::Host(1),
                    addend: 0,
                },
                CodeReloc {
                    offset: 20,
                    kind: RelocKind::Abs8,
                    target: RelocTarget::LibCall(LibCall::FloorF64),
                    addend: -4,
                },
                CodeReloc {
                    offset: 40,
                    kind: RelocKind::X86PcRel4,
                    target: RelocTarget::Within(60),
                    addend: -4,
                },
            ],
        }
    }

    #[test]
    fn encode_decode_round_trips() {
        let img = sample();
        let mut bytes = vec![];
        img.encode(&mut bytes);
        bytes.push(0xee); // whatever follows is not read
        let (back, used) = CodeImage::decode(&bytes).unwrap();
        assert_eq!(back, img);
        assert_eq!(used, bytes.len() - 1);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut bytes = vec![];
        sample().encode(&mut bytes);
        for n in 0..bytes.len() {
            assert!(CodeImage::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn a_relocation_outside_the_code_is_refused() {
        let mut img = sample();
        img.relocs[0].offset = 60; // 60 + 8 > 64
        let mut bytes = vec![];
        img.encode(&mut bytes);
        let e = CodeImage::decode(&bytes).unwrap_err();
        assert!(e.0.contains("outside the code"), "{e}");
    }

    #[test]
    fn a_host_call_must_be_an_absolute_address() {
        let mut img = sample();
        img.relocs[0].kind = RelocKind::X86PcRel4;
        let mut bytes = vec![];
        img.encode(&mut bytes);
        assert!(CodeImage::decode(&bytes).is_err());
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, i64::MIN, i64::MAX, -4, 12345] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
