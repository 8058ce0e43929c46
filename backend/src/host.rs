//! Host functions: the embedder's table that `Op::Call { func }` indexes.
//!
//! Generated code reaches the embedder (I/O, runtime helpers, deopt exits)
//! only through these functions. A call names its function by number: the
//! code carries a relocation "host function `i`", filled in with the
//! function's address when the code is placed in memory, so the same code
//! can be stored and placed again in another process (see
//! [`crate::image`]), and the table can differ per compile.

use cranelift_codegen::ir::{self, AbiParam};
use cranelift_codegen::isa::CallConv;
use vssa::Type;

/// One host function that generated code may call.
///
/// The function must use the platform's C calling convention
/// (`extern "C"`), take exactly `params` and return `ret` (nothing when
/// `None`). `Ptr` is a 64-bit pointer. `I8` and `I16` arguments are passed
/// zero-extended to 32 bits, so declare them unsigned (`u8`, `u16`) on the
/// host side; `I32` and `I64` may be signed or unsigned.
///
/// A function with several results ([`HostFn::with_results`]) returns
/// them through memory: it takes one more parameter after `params`, a
/// pointer to one 8-byte slot per result (in the caller's stack frame,
/// 8-byte aligned), writes result `k` in the low bytes of slot `k` (an
/// `f32`/`f64` as its bits), and returns nothing. That works the same for
/// every mix and count of types, where registers (x86-64 SysV returns at
/// most two integers and two floats) would not; the host side is plain
/// Rust: `extern "C" fn(a: i64, out: *mut [u64; 2])`.
///
/// The address is only stored here; it is called by generated code, whose
/// safety contract ([`crate::CompiledCode::call`]) requires it to be valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFn {
    /// For diagnostics and IR dumps.
    pub name: String,
    pub addr: *const u8,
    pub params: Vec<Type>,
    pub ret: Option<Type>,
    /// The results written through the out-pointer (empty: `ret`, if any,
    /// is the one result, returned in a register).
    pub out_results: Vec<Type>,
}

impl HostFn {
    /// A table entry; `addr` is typically `my_fn as *const u8`.
    pub fn new(
        name: impl Into<String>,
        addr: *const u8,
        params: &[Type],
        ret: Option<Type>,
    ) -> HostFn {
        HostFn {
            name: name.into(),
            addr,
            params: params.to_vec(),
            ret,
            out_results: Vec::new(),
        }
    }

    /// A table entry with several results, returned through an
    /// out-pointer (see [`HostFn`]).
    pub fn with_results(
        name: impl Into<String>,
        addr: *const u8,
        params: &[Type],
        results: &[Type],
    ) -> HostFn {
        HostFn {
            name: name.into(),
            addr,
            params: params.to_vec(),
            ret: None,
            out_results: results.to_vec(),
        }
    }

    /// The result types, in projection order (`Proj 1..`).
    pub fn results(&self) -> Vec<Type> {
        if self.out_results.is_empty() {
            self.ret.into_iter().collect()
        } else {
            self.out_results.clone()
        }
    }

    /// The Cranelift signature calls to this function use, or the offending
    /// type if one is not a value type.
    pub fn signature(&self, call_conv: CallConv) -> Result<ir::Signature, Type> {
        let mut sig = ir::Signature::new(call_conv);
        for &p in &self.params {
            let ty = clif_type(p).ok_or(p)?;
            let mut param = AbiParam::new(ty);
            if ty.bits() < 32 {
                param = param.uext();
            }
            sig.params.push(param);
        }
        if !self.out_results.is_empty() {
            for &r in &self.out_results {
                clif_type(r).ok_or(r)?;
            }
            sig.params.push(AbiParam::new(ir::types::I64));
            return Ok(sig);
        }
        if let Some(r) = self.ret {
            sig.returns.push(AbiParam::new(clif_type(r).ok_or(r)?));
        }
        Ok(sig)
    }
}

/// The Cranelift type of a vssa value type (`Ptr` is `I64`); `None` for
/// control, memory and tuples, which have no Cranelift value.
pub fn clif_type(t: Type) -> Option<ir::Type> {
    match t {
        Type::I8 => Some(ir::types::I8),
        Type::I16 => Some(ir::types::I16),
        Type::I32 => Some(ir::types::I32),
        Type::I64 | Type::Ptr => Some(ir::types::I64),
        Type::F32 => Some(ir::types::F32),
        Type::F64 => Some(ir::types::F64),
        Type::Ctrl | Type::Mem | Type::Tuple | Type::Frame => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::ArgumentExtension;

    #[test]
    fn signature_extends_narrow_params() {
        let h = HostFn::new(
            "f",
            std::ptr::null(),
            &[Type::Ptr, Type::I8, Type::I32],
            Some(Type::I16),
        );
        let sig = h.signature(CallConv::SystemV).unwrap();
        assert_eq!(sig.params.len(), 3);
        assert_eq!(sig.params[0].value_type, ir::types::I64);
        assert_eq!(sig.params[1].extension, ArgumentExtension::Uext);
        assert_eq!(sig.params[2].extension, ArgumentExtension::None);
        assert_eq!(sig.returns[0].value_type, ir::types::I16);
    }

    #[test]
    fn signature_rejects_non_values() {
        let h = HostFn::new("f", std::ptr::null(), &[Type::Mem], None);
        assert_eq!(h.signature(CallConv::SystemV), Err(Type::Mem));
        let h = HostFn::new("f", std::ptr::null(), &[], Some(Type::Tuple));
        assert_eq!(h.signature(CallConv::SystemV), Err(Type::Tuple));
    }
}
