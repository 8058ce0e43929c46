//! Calling a compiled function of any signature from Rust.
//!
//! A compiled function with a [`Signature`] uses the platform's C calling
//! convention with Cranelift's multi-value returns, which Rust cannot
//! name for a signature known only at run time. A [`TypedCaller`] is a
//! small adapter compiled once per signature, itself an ordinary vssa
//! graph with the entry shape `extern "C" fn(*mut u8) -> u32`: it reads
//! the target's address and the arguments from a frame of 8-byte slots,
//! calls the target with `CallIndirect`, and writes the results back into
//! the frame. So every signature the backend can compile is callable, and
//! the adapter goes through the same lowering as any call.

use crate::error::BackendError;
use crate::host::HostFn;
use crate::jit::{Jit, OwnedCode};
use vssa::{Graph, GraphError, Signature, Type};

/// An adapter that calls functions of one signature (see the module docs).
#[derive(Debug)]
pub struct TypedCaller {
    sig: Signature,
    code: OwnedCode,
}

/// The adapter's frame: slot 0 the target, then one slot per parameter,
/// then one per result.
fn adapter(sig: Signature) -> Result<Graph, GraphError> {
    let mut g = Graph::new();
    let e = g.entry()?;
    let frame = g.param(e.start, 0, Type::Ptr)?;
    let slot = |k: usize| 8 * k as i32;
    let target = g.load(e.ctrl, e.mem, frame, slot(0), Type::Ptr)?;
    let mut args = Vec::with_capacity(sig.param_count());
    for (k, t) in sig.params().into_iter().enumerate() {
        args.push(g.load(e.ctrl, e.mem, frame, slot(1 + k), t)?);
    }
    let (mut mem, results) = g.call_indirect(e.ctrl, e.mem, target, sig, &args)?;
    for (k, r) in results.into_iter().enumerate() {
        mem = g.store(e.ctrl, mem, frame, slot(1 + sig.param_count() + k), r)?;
    }
    let zero = g.iconst(Type::I32, 0)?;
    let ret = g.ret(e.ctrl, mem, zero)?;
    g.finish(&[ret])?;
    Ok(g)
}

impl TypedCaller {
    /// Compiles the adapter for `sig` with `jit`.
    pub fn new(jit: &mut Jit, sig: Signature) -> Result<TypedCaller, BackendError> {
        let g = adapter(sig).map_err(|e| BackendError::Codegen(format!("adapter graph: {e}")))?;
        let s = vssa_schedule::schedule(&g)
            .map_err(|e| BackendError::Codegen(format!("adapter schedule: {e}")))?;
        let hosts: &[HostFn] = &[];
        let code = jit.compile_owned(&g, &s, hosts, &format!("call {sig}"))?;
        Ok(TypedCaller { sig, code })
    }

    /// The signature this adapter calls.
    pub fn signature(&self) -> Signature {
        self.sig
    }

    /// Calls the function at `target` with `args` (one per parameter, as
    /// the LIR carries values: an `i64` of the value's bits, floats as
    /// their bit patterns); returns one value per result, normalized to
    /// its type ([`Type::normalize`]).
    ///
    /// # Safety
    ///
    /// `target` is a function of this adapter's signature as the backend
    /// compiles it (or an `extern "C"` function of the same machine
    /// signature), alive for the call, and whatever it reads, writes and
    /// calls is valid for the arguments given.
    pub unsafe fn call(&self, target: *const u8, args: &[i64]) -> Result<Vec<i64>, BackendError> {
        let (np, nr) = (self.sig.param_count(), self.sig.result_count());
        if args.len() != np {
            return Err(BackendError::Codegen(format!(
                "{} takes {np} arguments, {} given",
                self.sig,
                args.len()
            )));
        }
        let mut frame = vec![0i64; 1 + np + nr];
        frame[0] = target as i64;
        frame[1..=np].copy_from_slice(args);
        // SAFETY: the adapter reads and writes exactly the slots of
        // `frame` (slot 0, the parameters, the results), and calls
        // `target`, which the caller vouches for.
        unsafe { self.code.call(frame.as_mut_ptr().cast()) };
        let results = self.sig.results();
        Ok(results
            .iter()
            .zip(&frame[1 + np..])
            .map(|(t, &v)| t.normalize(v))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JitOptions;

    extern "C" fn mix(a: i64, b: f64, c: u8) -> f64 {
        a as f64 * b + f64::from(c)
    }

    #[test]
    fn calls_an_extern_c_function_of_the_same_signature() {
        let mut jit = Jit::new(JitOptions {
            verify: true,
            ..JitOptions::default()
        })
        .unwrap();
        let sig = Signature::new(&[Type::I64, Type::F64, Type::I8], &[Type::F64]).unwrap();
        let caller = TypedCaller::new(&mut jit, sig).unwrap();
        let args = [3, 0.5f64.to_bits() as i64, 200];
        // SAFETY: `mix` has the machine signature of `sig`.
        let r = unsafe { caller.call(mix as *const u8, &args) }.unwrap();
        assert_eq!(r, vec![201.5f64.to_bits() as i64]);
        // SAFETY: as above; the argument count is checked first.
        assert!(unsafe { caller.call(mix as *const u8, &args[..2]) }.is_err());
    }
}
