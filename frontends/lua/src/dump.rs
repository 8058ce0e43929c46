//! Binary chunks: `string.dump` and `load` of what it returns.
//!
//! The format is this interpreter's own. It starts with lua5.4's header
//! (signature, version 0x54, format 0, the six check bytes, the sizes of
//! an instruction, an integer and a float, then the integer 0x5678 and the
//! float 370.5), so tools that look at the header see a Lua 5.4 chunk and
//! a damaged header is refused with lua5.4's messages. What follows is not
//! bytecode but the text of the chunk the function was compiled from and
//! the function's number in it; `load` compiles that text again and takes
//! the function. A binary chunk so can never carry instructions the
//! compiler did not make (the interpreter trusts its bytecode), and it is
//! as portable as the source. Every field has a known length, so a cut
//! chunk is "truncated" wherever it is cut.
//!
//! A loaded function's upvalues are fresh (nil) but the first, which is
//! `load`'s environment, as in lua5.4. Its chunk is compiled with free
//! names going through `_ENV`, so the upvalues are those lua5.4 lists.

use crate::bytecode::Proto;
use crate::heap::{Closure, UpRef, UpVal};
use crate::value::{FnRef, Value};
use crate::vm::Vm;
use std::rc::Rc;

/// lua5.4's header: `"\x1bLua"`, version, format, `LUAC_DATA`, and the
/// sizes of an instruction, a `lua_Integer` and a `lua_Number`.
const HEADER: &[u8] = b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08";
/// lua5.4's `LUAC_INT` and `LUAC_NUM`, written after the header.
const CHECK_INT: i64 = 0x5678;
const CHECK_NUM: f64 = 370.5;
/// What marks the rest as this interpreter's payload (and its version).
const PAYLOAD_TAG: &[u8] = b"vssa\x01";

/// What a binary chunk holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The function's number in its chunk (`Proto::origin`).
    pub function: u32,
    /// The chunk name shown in messages, and as loaded (`source`).
    pub source: String,
    pub chunk_name: String,
    /// The chunk's text.
    pub text: Vec<u8>,
}

/// The binary chunk of `p`; None for a function the interpreter made
/// itself (it has no text to compile again).
pub fn dump(p: &Proto) -> Option<Vec<u8>> {
    let (text, function) = p.origin.as_ref()?;
    if &*p.source == "=[C]" {
        return None;
    }
    let mut out = HEADER.to_vec();
    out.extend_from_slice(&CHECK_INT.to_ne_bytes());
    out.extend_from_slice(&CHECK_NUM.to_ne_bytes());
    out.extend_from_slice(PAYLOAD_TAG);
    out.extend_from_slice(&function.to_le_bytes());
    for field in [p.source.as_bytes(), p.chunk_name.as_bytes(), text] {
        out.extend_from_slice(&(field.len() as u64).to_le_bytes());
        out.extend_from_slice(field);
    }
    Some(out)
}

/// A reader over a binary chunk whose failures are lua5.4's reasons.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(n).ok_or("truncated chunk")?;
        let b = self.bytes.get(self.at..end).ok_or("truncated chunk")?;
        self.at = end;
        Ok(b)
    }

    /// `n` bytes that must equal `want`, else `why`.
    fn expect(&mut self, want: &[u8], why: &'static str) -> Result<(), &'static str> {
        if self.take(want.len())? == want {
            Ok(())
        } else {
            Err(why)
        }
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn field(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| "truncated chunk")?;
        self.take(n)
    }
}

/// Reads a binary chunk; `Err` is the reason (`truncated chunk`,
/// `version mismatch`, ...), which `load` shows as
/// `NAME: bad binary format (REASON)`.
pub fn undump(bytes: &[u8]) -> Result<Chunk, &'static str> {
    let mut r = Reader { bytes, at: 0 };
    // The checks and their order are lua5.4's (`checkHeader`).
    r.take(1)?;
    r.expect(&HEADER[1..4], "not a binary chunk")?;
    r.expect(&HEADER[4..5], "version mismatch")?;
    r.expect(&HEADER[5..6], "format mismatch")?;
    r.expect(&HEADER[6..12], "corrupted chunk")?;
    r.expect(&HEADER[12..13], "Instruction size mismatch")?;
    r.expect(&HEADER[13..14], "lua_Integer size mismatch")?;
    r.expect(&HEADER[14..15], "lua_Number size mismatch")?;
    r.expect(&CHECK_INT.to_ne_bytes(), "integer format mismatch")?;
    r.expect(&CHECK_NUM.to_ne_bytes(), "float format mismatch")?;
    r.expect(PAYLOAD_TAG, "not a chunk of this interpreter's string.dump")?;
    let function = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
    let source = String::from_utf8_lossy(r.field()?).into_owned();
    let chunk_name = String::from_utf8_lossy(r.field()?).into_owned();
    let text = r.field()?.to_vec();
    Ok(Chunk {
        function,
        source,
        chunk_name,
        text,
    })
}

/// The function numbered `n` in the chunk whose main function is `main`.
pub fn find_function(main: &Rc<Proto>, n: u32) -> Option<Rc<Proto>> {
    let mut work = vec![main.clone()];
    while let Some(p) = work.pop() {
        if p.origin.as_ref().map(|o| o.1) == Some(n) {
            return Some(p);
        }
        work.extend(p.protos.iter().cloned());
    }
    None
}

/// `load` of a binary chunk: the function it holds as a closure whose
/// first upvalue is `env` (the globals table when None) and the others
/// fresh; `Err` is `load`'s message. `chunkname` is `load`'s (the chunk
/// itself when none was given).
pub fn load(
    vm: &mut Vm,
    bytes: &[u8],
    chunkname: &[u8],
    env: Option<Value>,
) -> Result<FnRef, String> {
    let bad = |why: &str| format!("{}: bad binary format ({why})", error_name(chunkname));
    let c = undump(bytes).map_err(bad)?;
    let chunk = crate::parser::parse_chunk(&c.text)
        .map_err(|e| format!("{}:{}: {}", c.source, e.line, e.msg))?;
    let main = crate::compiler::compile_chunk(
        &mut vm.heap,
        &chunk,
        Rc::from(c.source.as_str()),
        Rc::from(c.chunk_name.as_str()),
        true,
        Some(Rc::from(c.text)),
    )
    .map_err(|e| format!("{}:{}: {}", c.source, e.line, e.msg))?;
    let proto = find_function(&main, c.function).ok_or_else(|| bad("corrupted chunk"))?;
    let env = env.unwrap_or(Value::Table(vm.globals));
    let upvals: Box<[UpRef]> = (0..proto.upvals.len())
        .map(|i| {
            let v = if i == 0 { env } else { Value::Nil };
            vm.heap.new_upval(UpVal::Closed(v))
        })
        .collect();
    Ok(vm.heap.new_closure(Closure { proto, upvals }))
}

/// The name a binary chunk's errors show (lua5.4's `luaU_undump`): the
/// chunkname without its `@`/`=`, "binary string" when the chunkname is
/// the chunk itself.
pub fn error_name(chunkname: &[u8]) -> String {
    match chunkname.first() {
        Some(b'@') | Some(b'=') => String::from_utf8_lossy(&chunkname[1..]).into_owned(),
        Some(0x1b) => "binary string".into(),
        _ => String::from_utf8_lossy(chunkname).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_of(src: &str) -> (Rc<Proto>, Vec<u8>) {
        let mut heap = crate::heap::Heap::default();
        let main = crate::compile(&mut heap, src.as_bytes(), "t").expect("compiles");
        let inner = main.protos[0].clone();
        let bytes = dump(&inner).expect("dumpable");
        (inner, bytes)
    }

    #[test]
    fn a_dump_reads_back() {
        let src = "local a = 1 return function() return function() return a end end";
        let (inner, bytes) = chunk_of(src);
        assert!(bytes.starts_with(HEADER));
        let c = undump(&bytes).expect("reads");
        assert_eq!(c.function, inner.origin.as_ref().expect("has one").1);
        assert_eq!(c.function, 1);
        assert_eq!(c.text, src.as_bytes());
        assert_eq!(c.source, "t");
        assert_eq!(c.chunk_name, "@t");
    }

    #[test]
    fn every_cut_is_truncated_and_every_header_byte_checked() {
        let (_, bytes) = chunk_of("return function() end");
        for n in 0..bytes.len() {
            assert_eq!(undump(&bytes[..n]), Err("truncated chunk"), "cut at {n}");
        }
        for i in 1..HEADER.len() + 16 {
            let mut b = bytes.clone();
            b[i] = b[i].wrapping_add(1);
            assert!(undump(&b).is_err(), "byte {i} changed");
        }
        let mut b = bytes.clone();
        b[5] = 1;
        assert_eq!(undump(&b), Err("format mismatch"));
    }

    #[test]
    fn a_huge_length_is_truncated_not_a_panic() {
        let (_, mut bytes) = chunk_of("return function() end");
        let at = HEADER.len() + 16 + PAYLOAD_TAG.len() + 4;
        bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(undump(&bytes), Err("truncated chunk"));
    }

    #[test]
    fn internal_functions_are_not_dumped() {
        let mut heap = crate::heap::Heap::default();
        let p = crate::compile(&mut heap, b"return 1", "=[C]").expect("compiles");
        assert!(dump(&p).is_none());
    }
}
