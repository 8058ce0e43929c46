//! The tape: the Brainfuck program's memory.
//!
//! The whole tape, `limit` cells, is reserved up front as one zeroed
//! allocation. For large sizes the allocator maps fresh zero pages from the
//! OS, which commits physical memory only for the pages actually touched, so
//! in effect *the tape grows to the right on demand up to the limit*, at no
//! cost per access. A fixed buffer also means the base address never moves:
//! compiled code can keep a raw pointer to cell 0 for the whole run and
//! bounds checks are one compare against a constant.
//!
//! On each side of the cells lies a *guard zone* of [`GUARD_CELLS`] zero
//! bytes that belongs to the tape but is never written: no slice the tape
//! hands out covers it, and compiled code checks every write. Compiled code
//! may *read* it: a loop that walks the tape in steps of at most
//! `GUARD_CELLS` can test the cell it lands on before checking that the
//! cell exists, because a landing spot off the tape reads 0 and ends the
//! loop, which then reports the move (see `build`'s walk loops).

use crate::error::TapeError;

/// The default tape limit: 64 MiB of cells.
pub const DEFAULT_TAPE_LIMIT: usize = 64 << 20;

/// The smallest accepted limit: the classic 30 000 cells that portable
/// Brainfuck programs are entitled to.
pub const MIN_TAPE_LIMIT: usize = 30_000;

/// Zero bytes readable (never written) on each side of the cells: one page.
pub const GUARD_CELLS: usize = 4096;

/// A zero-initialized tape of 8-bit cells. The pointer starts at cell 0; the
/// pointer itself lives in the interpreter state, not here.
pub struct Tape {
    /// The guard zone, the `limit` cells, the guard zone.
    cells: Vec<u8>,
}

impl Tape {
    /// A tape of `limit` cells, all 0.
    ///
    /// Fails when `limit` is below [`MIN_TAPE_LIMIT`], or when the address
    /// space cannot be reserved (a huge limit is an error, not an abort).
    pub fn new(limit: usize) -> Result<Tape, TapeError> {
        if limit < MIN_TAPE_LIMIT {
            return Err(TapeError::TooSmall {
                requested: limit,
                minimum: MIN_TAPE_LIMIT,
            });
        }
        let with_guards = limit
            .checked_add(2 * GUARD_CELLS)
            .ok_or(TapeError::AllocFailed { requested: limit })?;
        Ok(Tape {
            cells: alloc_zeroed_vec(with_guards)
                .map_err(|_| TapeError::AllocFailed { requested: limit })?,
        })
    }

    /// A tape of [`DEFAULT_TAPE_LIMIT`] cells.
    pub fn with_default_limit() -> Result<Tape, TapeError> {
        Tape::new(DEFAULT_TAPE_LIMIT)
    }

    /// Number of cells: the limit. Valid cell indexes are `0..len()`.
    pub fn len(&self) -> usize {
        self.cells.len() - 2 * GUARD_CELLS
    }

    /// Always false (a tape has at least [`MIN_TAPE_LIMIT`] cells); here
    /// because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell 0, for compiled code. Valid for `len()` bytes while the tape
    /// lives and is not otherwise borrowed, and readable (never to be
    /// written) [`GUARD_CELLS`] bytes further on each side; the buffer
    /// never moves.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.cells[GUARD_CELLS..].as_mut_ptr()
    }

    /// All cells. Reading the whole slice commits every page, so prefer
    /// looking at a prefix for large tapes.
    pub fn as_slice(&self) -> &[u8] {
        let len = self.len();
        &self.cells[GUARD_CELLS..GUARD_CELLS + len]
    }

    /// All cells, mutable (the guard zones stay out of reach).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len();
        &mut self.cells[GUARD_CELLS..GUARD_CELLS + len]
    }

    /// Whether both guard zones still hold only zeros (for tests: nothing
    /// may ever write them).
    pub fn guards_are_zero(&self) -> bool {
        let len = self.len();
        self.cells[..GUARD_CELLS]
            .iter()
            .chain(&self.cells[GUARD_CELLS + len..])
            .all(|&c| c == 0)
    }
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Printing the cells would touch (and commit) the whole tape.
        f.debug_struct("Tape").field("len", &self.len()).finish()
    }
}

/// `vec![0u8; len]`, except that running out of address space is an error
/// instead of an abort. Same allocation call as `vec!` (`alloc_zeroed`), so
/// the same lazily committed pages.
fn alloc_zeroed_vec(len: usize) -> Result<Vec<u8>, TapeError> {
    let failed = TapeError::AllocFailed { requested: len };
    let layout = std::alloc::Layout::array::<u8>(len).map_err(|_| failed)?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has non-zero size (checked just above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(failed);
    }
    // SAFETY: `ptr` was allocated by the global allocator (the one `Vec`
    // uses) with the layout of `[u8; len]`, i.e. size `len` and alignment 1,
    // so capacity `len` describes the allocation exactly; all `len` bytes
    // are initialized (to zero) by `alloc_zeroed`; and ownership passes to
    // the Vec, which will free it with that same layout.
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_small_limits() {
        assert_eq!(
            Tape::new(29_999).unwrap_err(),
            TapeError::TooSmall {
                requested: 29_999,
                minimum: 30_000
            }
        );
        assert!(Tape::new(0).is_err());
        assert_eq!(Tape::new(30_000).unwrap().len(), 30_000);
    }

    #[test]
    fn starts_zeroed() {
        let mut t = Tape::new(40_000).unwrap();
        assert!(t.as_slice().iter().all(|&c| c == 0));
        t.as_mut_slice()[39_999] = 7;
        assert_eq!(t.as_slice()[39_999], 7);
        assert!(!t.is_empty());
        assert!(!t.as_mut_ptr().is_null());
        assert!(t.guards_are_zero());
    }

    #[test]
    fn default_limit_is_lazy_enough() {
        let t = Tape::with_default_limit().unwrap();
        assert_eq!(t.len(), DEFAULT_TAPE_LIMIT);
        assert_eq!(t.as_slice()[DEFAULT_TAPE_LIMIT - 1], 0);
        assert_eq!(
            format!("{t:?}"),
            format!("Tape {{ len: {DEFAULT_TAPE_LIMIT} }}")
        );
    }

    #[test]
    fn absurd_limit_is_an_error() {
        assert_eq!(
            Tape::new(usize::MAX).unwrap_err(),
            TapeError::AllocFailed {
                requested: usize::MAX
            }
        );
    }
}
