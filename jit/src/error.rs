//! The pipeline's typed errors.

use crate::guest::{UnitSize, MAX_UNIT_INSTS, MAX_UNIT_WEIGHT};

/// A boxed error of the guest's own (its builder, its set-up).
pub type GuestFailure = Box<dyn std::error::Error + Send + Sync>;

/// Why compiling or running through the pipeline failed. Only
/// [`JitError::Run`] is the guest program's own failure (`E`, the guest's
/// error type); every other variant is a failure of the pipeline or the
/// machine, reported as such so that it is never mistaken for one.
#[derive(Debug)]
pub enum JitError<E> {
    /// The guest program failed (as the guest's interpreter would report it).
    Run(E),
    /// The guest's builder failed (an internal error).
    Build(GuestFailure),
    /// The guest could not set up a run (e.g. allocate its memory).
    Setup(GuestFailure),
    /// The optimizer or the speculation pass failed on the graph.
    Optimize(vssa::GraphError),
    /// The verifier found the graph malformed.
    Verify(vssa::VerifyErrors),
    /// Guards could not be lowered to exits.
    LowerGuards(vssa_deopt::LowerError),
    Schedule(vssa_schedule::ScheduleError),
    Backend(vssa_backend::BackendError),
    /// A graph dump could not be written.
    Dump(std::io::Error),
    /// The unit is larger than one compilation may be ([`UnitSize::fits`]):
    /// compiling it would take too long or too much memory. Not a failure
    /// of the program: interpret it, or compile smaller units inside it.
    TooLarge(UnitSize),
    /// The compile thread stopped (a compilation panicked).
    CompileThread(vssa_deopt::WorkerGone),
    /// Compiled code returned a code that is neither a normal return nor
    /// one of its exits.
    UnknownExit(u32),
}

impl<E: std::fmt::Display> std::fmt::Display for JitError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JitError::Run(e) => write!(f, "{e}"),
            JitError::Build(e) => write!(f, "internal error: {e}"),
            JitError::Setup(e) => write!(f, "{e}"),
            JitError::Optimize(e) => write!(f, "internal error: optimizer: {e}"),
            JitError::Verify(e) => write!(f, "internal error: graph verifier: {e}"),
            JitError::LowerGuards(e) => write!(f, "internal error: guard lowering: {e}"),
            JitError::Schedule(e) => write!(f, "internal error: scheduler: {e}"),
            JitError::Backend(e) => write!(f, "internal error: backend: {e}"),
            JitError::Dump(e) => write!(f, "cannot write graph dump: {e}"),
            JitError::TooLarge(size) => write!(
                f,
                "a unit of {} instructions (nesting weight {}) is larger than one compilation \
                 takes (at most {MAX_UNIT_INSTS} instructions and weight {MAX_UNIT_WEIGHT})",
                size.insts, size.weight
            ),
            JitError::CompileThread(e) => write!(f, "internal error: {e}"),
            JitError::UnknownExit(code) => {
                write!(
                    f,
                    "internal error: compiled code returned unknown exit {code}"
                )
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for JitError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JitError::Run(e) => Some(e),
            JitError::Build(e) | JitError::Setup(e) => Some(e.as_ref()),
            JitError::Optimize(e) => Some(e),
            JitError::Verify(e) => Some(e),
            JitError::LowerGuards(e) => Some(e),
            JitError::Schedule(e) => Some(e),
            JitError::Backend(e) => Some(e),
            JitError::Dump(e) => Some(e),
            JitError::CompileThread(e) => Some(e),
            JitError::TooLarge(_) | JitError::UnknownExit(_) => None,
        }
    }
}

impl<E> From<vssa_deopt::WorkerGone> for JitError<E> {
    fn from(e: vssa_deopt::WorkerGone) -> Self {
        JitError::CompileThread(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    type E = JitError<std::io::Error>;

    #[test]
    fn errors_are_typed_with_their_source() {
        let graph = vssa::GraphError::UnknownNode(vssa::NodeId::from_index(3));
        let e = E::Optimize(graph.clone());
        assert_eq!(e.to_string(), "internal error: optimizer: unknown node n3");
        let source = e.source().unwrap().downcast_ref::<vssa::GraphError>();
        assert_eq!(source, Some(&graph));
        let e = E::Schedule(vssa_schedule::ScheduleError::NoEnd);
        assert!(e.source().unwrap().is::<vssa_schedule::ScheduleError>());
        let run = E::Run(std::io::Error::other("disk full"));
        assert_eq!(run.to_string(), "disk full");
        assert!(run.source().unwrap().is::<std::io::Error>());
        let size = UnitSize {
            insts: 1,
            weight: 1,
        };
        assert!(E::TooLarge(size).source().is_none());
        assert!(E::UnknownExit(9).to_string().contains("unknown exit 9"));
    }
}
