//! Calling a compiled unit and decoding how it ended.

use crate::error::JitError;
use crate::pipeline::UnitCode;
use vssa_deopt::Frame;

/// How a call of a compiled unit ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit<'a> {
    /// The unit returned normally with this code (below the first exit id;
    /// its meaning is the guest's).
    Returned(u32),
    /// The unit returned the guest's error code ([`crate::Guest::error_exit`]):
    /// a host call failed and recorded why where the guest can find it.
    GuestError,
    /// A guard failed: exit `index` of the unit's [`vssa_deopt::ExitTable`],
    /// with the frame's values read from the deopt buffer. The guest turns
    /// the frame into its interpreter's state (`vssa_deopt::Guest`).
    Deopt { index: usize, frame: Frame<'a> },
}

impl UnitCode {
    /// Calls the unit on context `ctx`, whose deopt buffer `deopt_buffer`
    /// reads after the call, and decodes its return code.
    ///
    /// # Safety
    /// The unit was compiled for `C`'s layout (every offset the graph
    /// loads and stores at is in bounds of a `C` and valid for the access)
    /// and for the state `ctx` describes (e.g. the guest memory it points
    /// to); whatever the host functions reach through `ctx` is live for
    /// the call.
    pub unsafe fn call<'u, C, E>(
        &'u self,
        ctx: &mut C,
        deopt_buffer: impl FnOnce(&C) -> &[i64],
    ) -> Result<Exit<'u>, JitError<E>> {
        // SAFETY: the caller's contract; the code is alive (`self` holds it).
        let code = unsafe { self.code.call(ctx as *mut C as *mut u8) };
        self.decode(code, deopt_buffer(ctx))
    }

    /// Calls a unit whose graph has a signature (not the entry shape
    /// [`UnitCode::call`] runs) with `args`, one per parameter (an `i64`
    /// holding the value's bits), through `caller`, the adapter for its
    /// signature ([`crate::UnitCompiler::typed_caller`]); returns one value
    /// per result. Such a unit has no exit codes: a guard in it is not
    /// supported (`vssa_deopt::lower_guards` refuses it).
    ///
    /// # Safety
    /// The unit's graph has `caller`'s signature, and everything it loads,
    /// stores and calls through its arguments is valid for the call.
    pub unsafe fn call_typed<E>(
        &self,
        caller: &vssa_backend::TypedCaller,
        args: &[i64],
    ) -> Result<Vec<i64>, JitError<E>> {
        // SAFETY: the caller's contract; the code is alive (`self` holds it).
        unsafe { caller.call(self.code.code_ptr(), args) }.map_err(JitError::Backend)
    }

    /// What return code `code` means, with the deopt buffer `buffer`.
    pub fn decode<E>(&self, code: u32, buffer: &[i64]) -> Result<Exit<'_>, JitError<E>> {
        if Some(code) == self.error_exit {
            return Ok(Exit::GuestError);
        }
        if i64::from(code) < self.exits.first_exit {
            return Ok(Exit::Returned(code));
        }
        let exit = self
            .exits
            .exit(i64::from(code))
            .ok_or(JitError::UnknownExit(code))?;
        Ok(Exit::Deopt {
            index: (i64::from(code) - self.exits.first_exit) as usize,
            frame: self.exits.frame(exit, buffer),
        })
    }
}
