//! The graph builder: a Brainfuck program, or one of its loops, as one vssa
//! function (a *compilation unit*).
//!
//! The compiled function has the native signature
//! `extern "C" fn(*mut Context) -> u32` and works on the interpreter's own
//! tape, so compiled code and interpreter always share the exact machine
//! state. It returns [`EXIT_DONE`], [`EXIT_ERROR`] (a host call recorded the
//! error), or a *deopt exit id* `>= EXIT_FIRST_DEOPT`: a guard failed, its
//! frame (the cell index and the fuel left) is in the context's deopt
//! buffer, and the interpreter resumes at the frame's instruction (see
//! `vssa_deopt`).
//!
//! * [`Unit::Program`] runs the whole program from its start; `EXIT_DONE`
//!   means the program ended.
//! * [`Unit::Loop`] is entered at a loop's header (its first body
//!   instruction, the cell known nonzero) with the cell index in
//!   `ctx.ptr`; `EXIT_DONE` means the loop ended, with the cell index and
//!   fuel written back to the context, and the interpreter goes on after
//!   its `]`. This is what the tiered runtime compiles.
//!
//! How the program maps onto the graph:
//! * The guest state is threaded as SSA values: control, memory, the cell
//!   index `p` (an `I64`), and, under a step limit, the remaining `fuel`.
//!   Every cell access is `load/store(ptr_add(tape, p))`; the memory
//!   peepholes fold the offsets and forward values, so runs of `+-<>` leave
//!   one load and one store per cell touched.
//! * `[ body ]` is a rotated loop: the `[` test guards entry, the `]` test is
//!   the back edge, and both exits meet in a `Region` after the loop.
//!   The tests' reads of the cell are reused: at the top of the body the
//!   cell is a loop phi of what the `[` and `]` tests read (so it stays in
//!   a register round the loop), and after the loop it is known to be 0
//!   (so a loop right after on the same cell is never built). Only loops
//!   at most `MAX_CELL_PHI_HEIGHT` (16) nested loops high get the phi: long
//!   chains of nested loops each carrying a value make Cranelift's compile
//!   time grow quadratically.
//! * Tape bounds are checked once per *segment*, over the whole range of
//!   cells the segment reaches. A *balanced* loop — one whose every
//!   iteration ends on the cell it started on, holding only balanced loops —
//!   starts on the same cell each time round, so its body is checked once
//!   when the loop is entered, not on every iteration; and since it leaves
//!   the pointer where it was, the segment around it runs straight through
//!   it. Other segments start at the program's start and at both ends of
//!   every unbalanced loop's body. To the left, a check covers only cells
//!   that code surely running after it reaches; to the right it also covers
//!   what the balanced loops in the segment may reach, so that they need no
//!   check of their own. The builder tracks which cells the checks on every
//!   path have covered ([`State`]'s `checked`, relative to the pointer) and
//!   leaves out a check those cells already cover. A failing check leaves to
//!   the interpreter at the segment's first instruction: nothing in the
//!   segment has run yet, so the state handed over is exact, and the
//!   interpreter reports the error at the exact move, or, if only the
//!   widened right side failed (within a loop body's reach of the tape's
//!   end), runs the segment without one. Each check is a `Guard` (reason
//!   [`REASON_BOUNDS`]).
//! * The step limit counts loop tests, as the interpreter does; running out
//!   leaves to the interpreter at the test, which reports it (a guard with
//!   reason [`REASON_STEPS`]).
//! * Every inner loop's entry test is a speculation *site*
//!   ([`CompiledProgram::sites`]): the runtime may ask
//!   `vssa_deopt::speculate_never_taken` to turn a loop the profile never
//!   saw entered into a guard (reason [`REASON_UNTAKEN`]) that resumes the
//!   interpreter at the `[`.

use crate::error::SrcPos;
use crate::parse::{InstKind, Program};
use std::collections::HashMap;
use vssa::{CmpOp, ConvOp, Graph, GraphError, NodeId, Op, Type};
use vssa_deopt::BranchSite;

/// The unit ran to its end (the program's end, or its loop's exit).
pub const EXIT_DONE: u32 = 0;
/// A host call failed (I/O); the host recorded the error.
pub const EXIT_ERROR: u32 = 1;
/// Deopt exit ids start here (`vssa_deopt::DeoptAbi::first_exit`).
pub const EXIT_FIRST_DEOPT: u32 = 2;

/// Guard reason: a segment's cells are not all on the tape.
pub const REASON_BOUNDS: u32 = 1;
/// Guard reason: the step limit is reached at a loop test.
pub const REASON_STEPS: u32 = 2;
/// Guard reason: a loop the profile never saw entered was entered (the
/// only speculative guard: recompiling without it fixes it).
pub const REASON_UNTAKEN: u32 = 3;

/// A frame's resume point is an instruction index in its low 32 bits; the
/// high 32 bits, when not 0, are a signed amount to add to the frame's
/// cell index before resuming (see [`resume_before_move`]).
const RESUME_PC_BITS: u32 = 32;

/// The resume point "just before the move at `pc`, which moved the
/// pointer by `moved`", for a frame that holds the cell index *after* the
/// move: the interpreter takes `moved` back off it and resumes at `pc`.
/// `None` when `pc` or `moved` does not fit the encoding.
pub fn resume_before_move(pc: usize, moved: i64) -> Option<u64> {
    let pc = u32::try_from(pc).ok()?;
    let back = i32::try_from(moved.checked_neg()?).ok()?;
    Some(u64::from(pc) | (u64::from(back as u32) << RESUME_PC_BITS))
}

/// A frame's resume point decoded: the instruction index and the amount to
/// add to the frame's cell index ([`resume_before_move`]; 0 for every
/// other frame).
pub fn decode_resume(resume: u64) -> (u64, i64) {
    let pc = resume & ((1u64 << RESUME_PC_BITS) - 1);
    let adjust = (resume >> RESUME_PC_BITS) as u32 as i32;
    (pc, i64::from(adjust))
}

/// Frame slots: the cell index, then (under a step limit) the fuel left.
pub const FRAME_PTR: usize = 0;
/// See [`FRAME_PTR`].
pub const FRAME_FUEL: usize = 1;
/// Slots the deopt buffer has.
pub const DEOPT_SLOTS: usize = 2;

/// Host function indexes of the calls the graph makes.
pub const HOST_PUTCHAR: u32 = 0;
/// See [`HOST_PUTCHAR`].
pub const HOST_GETCHAR: u32 = 1;

/// Byte offsets of the [`crate::runtime::Context`] fields the code touches.
pub mod ctx_offset {
    /// `*mut u8`: cell 0 of the tape.
    pub const TAPE: i32 = 0;
    /// `u64`: loop tests left before the step limit (read at entry, written at exits).
    pub const FUEL: i32 = 8;
    /// `i64`: the cell index on entry to a loop unit and when it ends.
    pub const PTR: i32 = 16;
    /// `[i64; DEOPT_SLOTS]`: where a failing guard leaves its frame.
    pub const DEOPT: i32 = 32;
}

/// What a graph compiles: the whole program, or one loop entered at its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Program,
    /// The loop whose `[` is instruction `open`.
    Loop {
        open: usize,
    },
}

/// What the builder needs to know about the run: everything here becomes
/// an immediate in the code.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// Number of cells the tape has; the bounds checks compare against it.
    pub tape_len: u64,
    /// Whether to count loop tests (compile the step limit in).
    pub step_limit: bool,
    /// Zero bytes the code may read (never write) on each side of the
    /// tape (`tape::GUARD_CELLS` on a [`crate::Tape`]; 0 for memory without
    /// such zones): walk loops whose stride fits in it test their cell
    /// before checking it (see [`WalkLoop`]).
    pub tape_guard: u64,
}

/// An inner loop's entry test, which the runtime may speculate on.
#[derive(Clone, Copy, Debug)]
pub struct LoopSite {
    /// The loop's `[`.
    pub open: usize,
    /// The test, its merge after the loop and the frame before the test;
    /// `taken` is 1 (the loop skipped) and `reason` [`REASON_UNTAKEN`].
    pub site: BranchSite,
}

/// A built unit: its graph, the context pointer node (for
/// `vssa_deopt::DeoptAbi`) and its speculation sites.
pub struct CompiledProgram {
    pub graph: Graph,
    pub ctx: NodeId,
    pub sites: Vec<LoopSite>,
}

/// Why the builder could not build the graph: an internal inconsistency,
/// never a property of the guest program (the parser rules those out).
#[derive(Debug)]
pub enum BuildError {
    /// The graph refused a node or an edge.
    Graph(GraphError),
    /// A loop unit was asked for at instruction `open`, which is not a `[`.
    NotALoop { open: usize },
    /// The `]` at instruction `pc` closes no loop.
    Unbalanced { pc: usize },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Graph(e) => write!(f, "graph construction failed: {e}"),
            BuildError::NotALoop { open } => {
                write!(
                    f,
                    "a loop unit must start at a `[`; instruction {open} is not one"
                )
            }
            BuildError::Unbalanced { pc } => {
                write!(f, "the `]` at instruction {pc} closes no loop")
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Graph(e) => Some(e),
            _ => None,
        }
    }
}

impl From<GraphError> for BuildError {
    fn from(e: GraphError) -> Self {
        BuildError::Graph(e)
    }
}

/// The guest state carried along the control flow as SSA values.
#[derive(Clone, Copy)]
struct State {
    ctrl: NodeId,
    mem: NodeId,
    p: NodeId,
    fuel: Option<NodeId>,
    /// Cell offsets from `p` that the guards on every path here have
    /// shown to be on the tape (always including 0: the pointer only
    /// moves to checked cells). The tape is contiguous, so two checked
    /// ranges prove everything between them too.
    checked: (i64, i64),
}

/// What is known on entry to a unit: only the current cell.
const CURRENT_CELL: (i64, i64) = (0, 0);

/// A loop whose `]` has not been reached yet.
struct OpenLoop {
    header: NodeId,
    phi_mem: NodeId,
    phi_p: NodeId,
    phi_fuel: Option<NodeId>,
    /// The value of the tested cell at the top of the body: what the `[`
    /// test read on entry, what the `]` test read on the back edge.
    phi_cell: NodeId,
    /// The state on the path where the `[` test skipped the loop (`None`
    /// for a loop unit's own loop, entered at its header), with the test
    /// and the frame before it.
    skipped: Option<(State, NodeId, NodeId)>,
    /// Whether the loop is balanced (its cells were checked before it).
    balanced: bool,
    /// Set for a walk loop, whose landing spot is checked after it ends.
    walk: Option<WalkLoop>,
}

/// Phi keys: a loop's phis are told apart by the slot they carry.
const PHI_MEM: u64 = 0;
const PHI_P: u64 = 1;
const PHI_FUEL: u64 = 2;
const PHI_CELL: u64 = 3;

/// Only loops at most this high (see [`LoopReach::height`]) keep their tested
/// cell in a phi. Hot loops are low, and a long chain of nested loops
/// each passing a value round its back edge makes Cranelift's compile
/// time grow quadratically (100 000 nested `[-` took minutes); this bound
/// keeps such chains short.
const MAX_CELL_PHI_HEIGHT: u32 = 16;

/// Nodes to make room for per instruction of a unit (see [`build_unit`]):
/// the build makes 2 to 6 (hanoi 2.0, mandelbrot 4.1, factor 4.3, dbfi
/// 6.1), the middle end adds about a third.
const NODES_PER_INST: usize = 6;

/// Steps a scan loop takes each time round (see [`Builder::scan_loop`]).
const SCAN_UNROLL: usize = 4;

/// Where a cell load reads: its (simplified) memory state, base and offset.
/// Two loads with the same place read the same value whatever their
/// control, since a memory state is one immutable version of the tape.
type CellPlace = (NodeId, NodeId, i32);

struct Builder<'a> {
    g: Graph,
    prog: &'a Program,
    reach: LoopReach,
    opts: BuildOptions,
    ctx: NodeId,
    tape: NodeId,
    returns: Vec<NodeId>,
    sites: Vec<LoopSite>,
    /// Cell values the loop tests already read, by the place a load of
    /// them would read (see [`Builder::know_cell`]). Only looked up, never
    /// iterated: the map's order cannot leak into the graph.
    known: HashMap<CellPlace, NodeId>,
}

/// Builds the whole program as one function. Iterative: any nesting depth.
pub fn build_program(prog: &Program, opts: BuildOptions) -> Result<CompiledProgram, BuildError> {
    build_unit(prog, Unit::Program, opts)
}

/// Builds `unit` as one function. Iterative: any nesting depth.
pub fn build_unit(
    prog: &Program,
    unit: Unit,
    opts: BuildOptions,
) -> Result<CompiledProgram, BuildError> {
    let mut g = Graph::new();
    // Room for every node of the build and of the middle end after it (a
    // few per instruction, the passes add a third), so that the node
    // arena and the graph's two maps are not copied again and again as
    // they grow.
    let insts = match unit {
        Unit::Program => prog.insts.len(),
        Unit::Loop { open } => match prog.insts.get(open).map(|i| i.kind) {
            Some(InstKind::Open { close }) => close.saturating_sub(open) + 1,
            _ => prog.insts.len(),
        },
    };
    g.reserve(insts.saturating_mul(NODES_PER_INST) + 64);
    let entry = g.entry()?;
    let ctx = g.param(entry.start, 0, Type::Ptr)?;
    let tape = g.load(entry.ctrl, entry.mem, ctx, ctx_offset::TAPE, Type::Ptr)?;
    let fuel = if opts.step_limit {
        Some(g.load(entry.ctrl, entry.mem, ctx, ctx_offset::FUEL, Type::I64)?)
    } else {
        None
    };
    let p = match unit {
        Unit::Program => g.iconst(Type::I64, 0)?,
        Unit::Loop { .. } => g.load(entry.ctrl, entry.mem, ctx, ctx_offset::PTR, Type::I64)?,
    };
    let mut b = Builder {
        g,
        reach: match unit {
            Unit::Program => LoopReach::of(prog),
            Unit::Loop { open } => match prog.insts.get(open).map(|i| i.kind) {
                Some(InstKind::Open { close }) => LoopReach::of_range(prog, open..close + 1),
                _ => LoopReach::of(prog),
            },
        },
        prog,
        opts,
        ctx,
        tape,
        returns: Vec::new(),
        sites: Vec::new(),
        known: HashMap::new(),
    };
    let mut st = State {
        ctrl: entry.ctrl,
        mem: entry.mem,
        p,
        fuel,
        checked: CURRENT_CELL,
    };
    let mut loops: Vec<OpenLoop> = Vec::new();
    let mut pc = match unit {
        Unit::Program => {
            st = b.segment_check(st, 0)?;
            0
        }
        Unit::Loop { open } => {
            let Some(InstKind::Open { .. }) = prog.insts.get(open).map(|i| i.kind) else {
                return Err(BuildError::NotALoop { open });
            };
            // Entered at the header: no `[` test read the cell yet.
            let cell = b.load_cell(st)?;
            st = b.open_loop(&mut loops, st, cell, open, None)?;
            open + 1
        }
    };
    while let Some(inst) = prog.insts.get(pc) {
        if let (InstKind::Open { close }, false) = (inst.kind, opts.step_limit) {
            // A loop on a cell known to be zero (e.g. right after another
            // loop on it) is never entered. (Under a step limit its test
            // still counts a step, so it stays.)
            let cell = b.load_cell(st)?;
            if b.g.op(cell) == (vssa::Op::Const { value: 0 }) {
                // The segment after an unbalanced loop was not checked
                // with this one (the `]` would have checked it).
                if !b.reach.is_balanced(pc) {
                    st = b.segment_check(st, close + 1)?;
                }
                pc = close + 1;
                continue;
            }
            if let Some(lp) = AffineLoop::at(prog, pc) {
                st = b.affine_loop(st, pc, &lp)?;
                pc = close + 1;
                continue;
            }
            if let Some(stride) = b.scan_stride(pc) {
                st = b.scan_loop(st, pc, stride)?;
                pc = close + 1;
                continue;
            }
        }
        match inst.kind {
            InstKind::Add(n) => {
                let v = b.load_cell(st)?;
                let k = b.g.iconst(Type::I8, n as i64)?;
                let v = b.g.add(v, k)?;
                st.mem = b.store_cell(st, v)?;
            }
            InstKind::Move(k) => {
                st.checked = (
                    st.checked.0.saturating_sub(k),
                    st.checked.1.saturating_sub(k),
                );
                let k = b.g.iconst(Type::I64, k)?;
                st.p = b.g.add(st.p, k)?;
            }
            InstKind::Out => st = b.output(st, pc)?,
            InstKind::In => st = b.input(st, pc)?,
            InstKind::Open { .. } => {
                // The state before the test: where a failed speculation
                // that the loop is never entered resumes.
                let frame = b.frame(st, pc)?;
                let (cell, enter, skip) = b.loop_test(&mut st, pc)?;
                let test = b.g.input(skip, 0);
                let entered = State { ctrl: enter, ..st };
                let skipped = Some((State { ctrl: skip, ..st }, test, frame));
                st = b.open_loop(&mut loops, entered, cell, pc, skipped)?;
            }
            InstKind::Close { .. } => {
                // The parser guarantees balance; an unmatched `]` cannot get here.
                let Some(lp) = loops.pop() else {
                    return Err(BuildError::Unbalanced { pc });
                };
                let (cell, again, mut leave) = b.loop_test(&mut st, pc)?;
                if let (Some(w), None) = (&lp.walk, &lp.skipped) {
                    // A loop unit's own walk: its landing cell is checked
                    // before the state goes back.
                    let out = State { ctrl: leave, ..st };
                    leave = b.landing_check(out, pc - 1, w.last_move, (0, 0))?.ctrl;
                }
                b.g.set_back_input(lp.header, again)?;
                b.g.set_back_input(lp.phi_mem, st.mem)?;
                b.g.set_back_input(lp.phi_p, st.p)?;
                b.g.set_back_input(lp.phi_cell, cell)?;
                if let (Some(phi), Some(f)) = (lp.phi_fuel, st.fuel) {
                    b.g.set_back_input(phi, f)?;
                }
                let Some((s, test, frame)) = lp.skipped else {
                    // A loop unit's own loop has ended: hand the state back.
                    st.ctrl = leave;
                    b.finish_loop_unit(st)?;
                    break;
                };
                let region = b.g.region(&[s.ctrl, leave])?;
                b.sites.push(LoopSite {
                    open: pc_of_open(prog, pc),
                    site: BranchSite {
                        branch: test,
                        taken: 1,
                        merge: region,
                        frame,
                        reason: REASON_UNTAKEN,
                    },
                });
                let mem = b.g.phi(region, Type::Mem, &[s.mem, st.mem])?;
                let p = b.g.phi(region, Type::I64, &[s.p, st.p])?;
                let fuel = match (s.fuel, st.fuel) {
                    (Some(a), Some(c)) => Some(b.g.phi(region, Type::I64, &[a, c])?),
                    _ => None,
                };
                st = State {
                    ctrl: region,
                    mem,
                    p,
                    fuel,
                    // A balanced loop leaves the pointer where it found
                    // it: what was known before the loop still holds.
                    checked: if lp.balanced { s.checked } else { CURRENT_CELL },
                };
                // Both ways out of a loop found the cell zero.
                let zero = b.g.iconst(Type::I8, 0)?;
                b.know_cell(st, zero)?;
                if let Some(w) = &lp.walk {
                    // The walk's landing cell, checked after the merge:
                    // skipped, the pointer did not move and its cell is on
                    // the tape, so the check fails only for a walk that
                    // went off it. Checked here rather than on the way
                    // out, the loop's exit uses only the pointer that goes
                    // round the loop, which reaches the merge as a phi
                    // input: the old pointer is dead at the exit branch
                    // and both share a register (no copy on the back
                    // edge). Only the landing cell: the check after it
                    // covers the segment.
                    st = b.landing_check(st, pc - 1, w.last_move, (0, 0))?;
                }
                if !lp.balanced {
                    st = b.segment_check(st, pc + 1)?;
                }
            }
        }
        pc += 1;
    }
    if unit == Unit::Program {
        let done = b.g.iconst(Type::I32, EXIT_DONE as i64)?;
        let r = b.g.ret(st.ctrl, st.mem, done)?;
        b.returns.push(r);
    }
    let returns = std::mem::take(&mut b.returns);
    b.g.finish(&returns)?;
    Ok(CompiledProgram {
        graph: b.g,
        ctx,
        sites: b.sites,
    })
}

/// The `[` that the `]` at `close` closes.
fn pc_of_open(prog: &Program, close: usize) -> usize {
    match prog.insts.get(close).map(|i| i.kind) {
        Some(InstKind::Close { open }) => open,
        _ => close,
    }
}

impl Builder<'_> {
    fn cell_ptr(&mut self, st: State) -> Result<NodeId, GraphError> {
        self.g.ptr_add(self.tape, st.p)
    }

    /// The current cell's value: a load, unless a loop test already read
    /// that cell in that memory state (or one the load's simplification
    /// reaches over stores to other cells).
    fn load_cell(&mut self, st: State) -> Result<NodeId, GraphError> {
        let ptr = self.cell_ptr(st)?;
        let v = self.g.load(st.ctrl, st.mem, ptr, 0, Type::I8)?;
        Ok(self
            .place(v)
            .and_then(|at| self.known.get(&at).copied())
            .unwrap_or(v))
    }

    /// Where the load `n` reads, if it is one.
    fn place(&self, n: NodeId) -> Option<CellPlace> {
        match self.g.op(n) {
            Op::Load { offset } => Some((self.g.input(n, 1), self.g.input(n, 2), offset)),
            _ => None,
        }
    }

    /// Records that the current cell holds `v` in `st`'s memory state, so
    /// that loads of it (also after stores to other cells) give `v`
    /// instead of reading the tape again. The place is that of a probe
    /// load, simplified as any load would be; the probe itself stays
    /// unused, so it is never scheduled.
    fn know_cell(&mut self, st: State, v: NodeId) -> Result<(), GraphError> {
        let ptr = self.cell_ptr(st)?;
        let probe = self.g.load(st.ctrl, st.mem, ptr, 0, Type::I8)?;
        if let Some(at) = self.place(probe) {
            self.known.insert(at, v);
        }
        Ok(())
    }

    fn store_cell(&mut self, st: State, v: NodeId) -> Result<NodeId, GraphError> {
        let ptr = self.cell_ptr(st)?;
        self.g.store(st.ctrl, st.mem, ptr, 0, v)
    }

    /// Opens the loop whose `[` is `pc`, on the control `entered` where its
    /// test went into the body, having found the cell to be `cell`;
    /// `skipped` is the other side of the test (`None` for a loop unit's
    /// own loop). Returns the state at the top of the body.
    ///
    /// The tested cell's value at the top of the body is a loop phi of
    /// what the `[` and `]` tests read, so the body does not read it again:
    /// it stays in a register across the back edge.
    fn open_loop(
        &mut self,
        loops: &mut Vec<OpenLoop>,
        mut entered: State,
        cell: NodeId,
        pc: usize,
        skipped: Option<(State, NodeId, NodeId)>,
    ) -> Result<State, GraphError> {
        let balanced = self.reach.is_balanced(pc);
        let walk = match balanced || self.opts.step_limit {
            // A walk's landing spot may be off the tape when its `]` test
            // counts a step, and a step guard must hand over a real cell.
            true => None,
            false => WalkLoop::at(self.prog, &self.reach, pc)
                .filter(|w| w.stride.unsigned_abs() <= self.opts.tape_guard),
        };
        if balanced {
            // Checked once here; every iteration starts on this cell.
            entered = self.segment_check(entered, pc + 1)?;
        }
        if let Some(w) = &walk {
            // The side the walk moves away from, checked once here.
            entered = self.range_check(entered, pc + 1, w.lo, w.hi)?;
        }
        let header = self.g.loop_header(pc as u64, entered.ctrl)?;
        let key = (pc as u64) * 4;
        let phi_mem = self
            .g
            .loop_phi(header, key + PHI_MEM, Type::Mem, entered.mem)?;
        let phi_p = self.g.loop_phi(header, key + PHI_P, Type::I64, entered.p)?;
        let phi_fuel = match entered.fuel {
            Some(f) => Some(self.g.loop_phi(header, key + PHI_FUEL, Type::I64, f)?),
            None => None,
        };
        let phi_cell = self.g.loop_phi(header, key + PHI_CELL, Type::I8, cell)?;
        loops.push(OpenLoop {
            header,
            phi_mem,
            phi_p,
            phi_fuel,
            phi_cell,
            skipped,
            balanced,
            walk,
        });
        let mut st = State {
            ctrl: header,
            mem: phi_mem,
            p: phi_p,
            fuel: phi_fuel,
            // Every iteration of a balanced loop starts on the entry cell.
            checked: if balanced {
                entered.checked
            } else {
                CURRENT_CELL
            },
        };
        if self.reach.height(pc) <= MAX_CELL_PHI_HEIGHT {
            self.know_cell(st, phi_cell)?;
        }
        match &walk {
            Some(w) => st = self.walk_check(st, pc + 1, w)?,
            None if !balanced => st = self.segment_check(st, pc + 1)?,
            None => {}
        }
        Ok(st)
    }

    /// A walk loop's check at the top of its body, every iteration: only
    /// the side it walks towards, and only if the body reaches past the
    /// cell it starts on there (a scan `[>>>]` needs none).
    fn walk_check(
        &mut self,
        mut st: State,
        start: usize,
        w: &WalkLoop,
    ) -> Result<State, GraphError> {
        let ok = if w.stride > 0 && w.hi > 0 {
            // Cells `p ..= p + hi`: the left side holds, so this compares
            // only the right one.
            Some(self.range_ok(st.p, 0, w.hi)?)
        } else if w.stride < 0 && w.lo < 0 {
            let min = self.g.iconst(Type::I64, -w.lo)?;
            Some(self.g.cmp(CmpOp::Sge, st.p, min)?)
        } else {
            None
        };
        if let Some(ok) = ok {
            st.ctrl = self.guard(st, ok, start, REASON_BOUNDS)?;
        }
        st.checked = (w.lo, w.hi);
        Ok(st)
    }

    /// The end of a loop unit: the cell index and fuel go back to the
    /// context, and the interpreter goes on after the loop.
    fn finish_loop_unit(&mut self, st: State) -> Result<(), GraphError> {
        let mut mem = self
            .g
            .store(st.ctrl, st.mem, self.ctx, ctx_offset::PTR, st.p)?;
        if let Some(f) = st.fuel {
            mem = self.g.store(st.ctrl, mem, self.ctx, ctx_offset::FUEL, f)?;
        }
        let done = self.g.iconst(Type::I32, EXIT_DONE as i64)?;
        let r = self.g.ret(st.ctrl, mem, done)?;
        self.returns.push(r);
        Ok(())
    }

    /// The interpreter's state at instruction `resume`, as a frame state:
    /// slot [`FRAME_PTR`] the cell index, [`FRAME_FUEL`] the fuel left.
    fn frame(&mut self, st: State, resume: usize) -> Result<NodeId, GraphError> {
        let values = self.frame_values(st);
        self.g.frame_state(resume as u64, st.mem, &values)
    }

    /// A frame's slots: the cell index, then the fuel left.
    fn frame_values(&self, st: State) -> Vec<NodeId> {
        let mut values = vec![st.p];
        values.extend(st.fuel);
        values
    }

    /// Returns to the host with [`EXIT_ERROR`] (the host recorded why).
    fn exit_error(&mut self, ctrl: NodeId, mem: NodeId) -> Result<(), GraphError> {
        let code = self.g.iconst(Type::I32, EXIT_ERROR as i64)?;
        let r = self.g.ret(ctrl, mem, code)?;
        self.returns.push(r);
        Ok(())
    }

    /// Goes on when `ok != 0`, else leaves to the interpreter at
    /// instruction `resume` with the state `st`; returns the control that
    /// goes on.
    fn guard(
        &mut self,
        st: State,
        ok: NodeId,
        resume: usize,
        reason: u32,
    ) -> Result<NodeId, GraphError> {
        let frame = self.frame(st, resume)?;
        self.g.guard(st.ctrl, ok, frame, reason)
    }

    /// The bounds check at the start of the segment beginning at `start`:
    /// every cell the segment reaches, `p + lo ..= p + hi`, must be on the
    /// tape. One unsigned compare: `(p + lo) as u64 > len - 1 - (hi - lo)`.
    fn segment_check(&mut self, st: State, start: usize) -> Result<State, GraphError> {
        let (lo, hi) = self.reach.segment_range(self.prog, start);
        self.range_check(st, start, lo, hi)
    }

    /// The check that cells `p + lo ..= p + hi` are on the tape, leaving
    /// to the interpreter at `start` if not; left out when the checks on
    /// every path here already cover them.
    fn range_check(
        &mut self,
        mut st: State,
        start: usize,
        lo: i64,
        hi: i64,
    ) -> Result<State, GraphError> {
        let (known_lo, known_hi) = st.checked;
        if known_lo <= lo && hi <= known_hi {
            // Every cell the segment reaches was checked on every path
            // here (at least the current cell, checked by whoever moved
            // the pointer there).
            return Ok(st);
        }
        let ok = self.range_ok(st.p, lo, hi)?;
        st.ctrl = self.guard(st, ok, start, REASON_BOUNDS)?;
        st.checked = (known_lo.min(lo), known_hi.max(hi));
        Ok(st)
    }

    /// Whether cells `p + lo ..= p + hi` are all on the tape: one unsigned
    /// compare, `(p + lo) as u64 <= len - 1 - (hi - lo)`.
    fn range_ok(&mut self, p: NodeId, lo: i64, hi: i64) -> Result<NodeId, GraphError> {
        let span = (hi - lo) as u64;
        let first = self.g.iconst(Type::I64, lo)?;
        let first = self.g.add(p, first)?;
        match self.opts.tape_len.checked_sub(1 + span) {
            Some(max_first) => {
                let max_first = self.g.iconst(Type::I64, max_first as i64)?;
                self.g.cmp(CmpOp::Ule, first, max_first)
            }
            // Wider than the tape: always leave; the interpreter reports it.
            None => self.g.iconst(Type::I8, 0),
        }
    }

    /// A `[` or `]` test: counts a step, reads the cell, and branches.
    /// Returns the cell's value and the (cell != 0, cell == 0) controls.
    fn loop_test(
        &mut self,
        st: &mut State,
        pc: usize,
    ) -> Result<(NodeId, NodeId, NodeId), GraphError> {
        if let Some(fuel) = st.fuel {
            let zero = self.g.iconst(Type::I64, 0)?;
            let left = self.g.cmp(CmpOp::Ne, fuel, zero)?;
            st.ctrl = self.guard(*st, left, pc, REASON_STEPS)?;
            let one = self.g.iconst(Type::I64, 1)?;
            st.fuel = Some(self.g.sub(fuel, one)?);
        }
        let v = self.load_cell(*st)?;
        let (nonzero, zero) = self.g.branch(st.ctrl, v)?;
        Ok((v, nonzero, zero))
    }

    /// A loop in closed form (see [`AffineLoop`]): when the tested cell `v`
    /// is not zero, the body's cells are checked as on loop entry, each
    /// other cell gets `n * delta` added, where `n` is the iteration count,
    /// and the tested cell is set to 0; when it is zero, nothing happens.
    /// Either way the tested cell is 0 afterwards, which later loads of it
    /// are told. A clear loop (`[-]`) just stores the 0: cheaper than a
    /// branch.
    fn affine_loop(&mut self, st: State, pc: usize, lp: &AffineLoop) -> Result<State, GraphError> {
        let mut after = st;
        let zero = self.g.iconst(Type::I8, 0)?;
        if lp.deltas.is_empty() {
            after.mem = self.store_cell(after, zero)?;
        } else {
            let v = self.load_cell(st)?;
            let (enter, skip) = self.g.branch(st.ctrl, v)?;
            let mut run = self.segment_check(State { ctrl: enter, ..st }, pc + 1)?;
            let inverse = self.g.iconst(Type::I8, lp.count_factor as i64)?;
            let n = self.g.bin(vssa::BinOp::Mul, v, inverse)?;
            for &(offset, delta) in &lp.deltas {
                let k = self.g.iconst(Type::I64, offset)?;
                let at = State {
                    p: self.g.add(run.p, k)?,
                    ..run
                };
                let old = self.load_cell(at)?;
                let d = self.g.iconst(Type::I8, delta as i64)?;
                let add = self.g.bin(vssa::BinOp::Mul, n, d)?;
                let new = self.g.add(old, add)?;
                run.mem = self.store_cell(at, new)?;
            }
            run.mem = self.store_cell(run, zero)?;
            let region = self.g.region(&[skip, run.ctrl])?;
            after.mem = self.g.phi(region, Type::Mem, &[st.mem, run.mem])?;
            after.ctrl = region;
        }
        self.know_cell(after, zero)?;
        Ok(after)
    }

    /// The stride of the scan loop (`[>>>]`, `[<]`: a walk loop whose body
    /// is one move) opened at `open`, if it is one that may be unrolled.
    fn scan_stride(&self, open: usize) -> Option<i64> {
        let prog = self.prog;
        match (
            prog.insts.get(open + 1)?.kind,
            prog.insts.get(open + 2)?.kind,
        ) {
            (InstKind::Move(k), InstKind::Close { .. })
                if !self.opts.step_limit && k.unsigned_abs() <= self.opts.tape_guard =>
            {
                Some(k)
            }
            _ => None,
        }
    }

    /// A scan loop opened at `open`, unrolled: each time round, the loop
    /// takes [`SCAN_UNROLL`] steps, each testing the cell it lands on and
    /// leaving on 0, so most steps cost a load, a test and a branch that is
    /// not taken. Reading ahead is safe for the reason any walk loop's
    /// test is (see [`WalkLoop`]): a step is taken only from a cell that
    /// read nonzero, so on the tape, and lands at most a stride away, in
    /// the tape or its guard zone. Nothing in the loop writes memory, so
    /// every step reads the memory state the loop was entered with.
    fn scan_loop(&mut self, st: State, open: usize, stride: i64) -> Result<State, GraphError> {
        let v = self.load_cell(st)?;
        let (enter, skip) = self.g.branch(st.ctrl, v)?;
        let header = self.g.loop_header(open as u64, enter)?;
        let phi_p = self
            .g
            .loop_phi(header, (open as u64) * 4 + PHI_P, Type::I64, st.p)?;
        let k = self.g.iconst(Type::I64, stride)?;
        let mut at = State {
            ctrl: header,
            p: phi_p,
            ..st
        };
        let mut exits = Vec::with_capacity(SCAN_UNROLL);
        let mut landed = Vec::with_capacity(SCAN_UNROLL);
        for _ in 0..SCAN_UNROLL {
            at.p = self.g.add(at.p, k)?;
            let c = self.load_cell(at)?;
            let (nonzero, zero) = self.g.branch(at.ctrl, c)?;
            exits.push(zero);
            landed.push(at.p);
            at.ctrl = nonzero;
        }
        self.g.set_back_input(header, at.ctrl)?;
        self.g.set_back_input(phi_p, at.p)?;
        let out = self.g.region(&exits)?;
        let p = self.g.phi(out, Type::I64, &landed)?;
        // Where the scan landed: one check of the cells the segment after
        // the loop reaches, which include the landing cell; failing, it
        // leaves at the scan's move, so the interpreter reports a landing
        // off the tape there (and otherwise redoes the move, finds the cell
        // 0 and runs the segment, as after any failed segment check).
        let reach = self.reach.segment_range(self.prog, open + 3);
        let landed = self.landing_check(State { ctrl: out, p, ..st }, open + 1, stride, reach)?;
        // Skipped, the pointer did not move: the segment's own check.
        let skipped = self.segment_check(State { ctrl: skip, ..st }, open + 3)?;
        let after = self.g.region(&[skipped.ctrl, landed.ctrl])?;
        let after = State {
            ctrl: after,
            mem: st.mem,
            p: self.g.phi(after, Type::I64, &[st.p, p])?,
            fuel: None,
            // Both ways checked at least the segment's cells.
            checked: landed.checked,
        };
        let zero = self.g.iconst(Type::I8, 0)?;
        self.know_cell(after, zero)?;
        Ok(after)
    }

    /// The check after a walk loop (see [`WalkLoop`]), whose last move (at
    /// `last`, by `moved`) may have landed in a guard zone, off the tape:
    /// cells `lo ..= hi` from the landing cell (0 included) must be on the
    /// tape. Failing, it leaves to the interpreter just before that move,
    /// which reports the move if it went off the tape, and otherwise
    /// redoes it, finds the cell 0 and goes on after the loop.
    fn landing_check(
        &mut self,
        mut st: State,
        last: usize,
        moved: i64,
        (lo, hi): (i64, i64),
    ) -> Result<State, GraphError> {
        let ok = self.range_ok(st.p, lo, hi)?;
        st.ctrl = match resume_before_move(last, moved) {
            // The frame holds the landing cell, the value the loop
            // carries, and the resume point says how far back the move
            // went: a frame value `p - moved` would be folded into the old
            // pointer plus a constant, keeping both pointers live at the
            // loop's exit (a register copy on every back edge).
            Some(resume) => {
                let frame = self.g.frame_state(resume, st.mem, &self.frame_values(st))?;
                self.g.guard(st.ctrl, ok, frame, REASON_BOUNDS)?
            }
            None => {
                let back = self.g.iconst(Type::I64, -moved)?;
                let before = State {
                    p: self.g.add(st.p, back)?,
                    ..st
                };
                self.guard(before, ok, last, REASON_BOUNDS)?
            }
        };
        st.checked = (lo, hi);
        Ok(st)
    }

    /// `.`: a host call; a failed write leaves with [`EXIT_ERROR`].
    fn output(&mut self, mut st: State, pc: usize) -> Result<State, GraphError> {
        let v = self.load_cell(st)?;
        let byte = self.g.conv(ConvOp::Uext, Type::I32, v)?;
        let at = self.g.iconst(Type::I64, pc as i64)?;
        let (mem, status) = self.g.call(
            st.ctrl,
            st.mem,
            HOST_PUTCHAR,
            &[self.ctx, byte, at],
            Some(Type::I32),
        )?;
        st.mem = mem;
        let status = status.expect("call built with a result type");
        let (fail, ok) = self.g.branch(st.ctrl, status)?;
        self.exit_error(fail, st.mem)?;
        st.ctrl = ok;
        Ok(st)
    }

    /// `,`: a host call returning the new cell value, or a negative number
    /// on a read error.
    fn input(&mut self, mut st: State, pc: usize) -> Result<State, GraphError> {
        let v = self.load_cell(st)?;
        let cur = self.g.conv(ConvOp::Uext, Type::I32, v)?;
        let at = self.g.iconst(Type::I64, pc as i64)?;
        let (mem, got) = self.g.call(
            st.ctrl,
            st.mem,
            HOST_GETCHAR,
            &[self.ctx, cur, at],
            Some(Type::I32),
        )?;
        st.mem = mem;
        let got = got.expect("call built with a result type");
        let zero = self.g.iconst(Type::I32, 0)?;
        let failed = self.g.cmp(CmpOp::Slt, got, zero)?;
        let (fail, ok) = self.g.branch(st.ctrl, failed)?;
        self.exit_error(fail, st.mem)?;
        st.ctrl = ok;
        let byte = self.g.conv(ConvOp::Trunc, Type::I8, got)?;
        st.mem = self.store_cell(st, byte)?;
        Ok(st)
    }
}

/// A loop in closed form: a balanced loop whose body only adds constants
/// to cells (no I/O, no inner loop), and changes the tested cell by an odd
/// constant `c`. It runs `n = cell * count_factor` times (mod 256, where
/// `count_factor` is the inverse of `-c`), which is exact for every start
/// value because `c` is odd; each other cell at `offset` ends up `delta * n`
/// higher, and the tested cell at 0. Clear loops (`[-]`), copy and multiply
/// loops (`[->+>++<<]`) are all of this form.
///
/// This is a front-end lowering rather than a middle-end loop rewrite: the
/// middle-end does not yet promote memory cells to loop-carried values, which
/// a generic closed-form rewrite would need.
#[derive(Debug, PartialEq, Eq)]
pub struct AffineLoop {
    pub count_factor: u8,
    /// `(offset, delta)` for every other cell the body changes, by offset.
    pub deltas: Vec<(i64, u8)>,
}

impl AffineLoop {
    /// The closed form of the loop opened at `open`, if it has one.
    pub fn at(prog: &Program, open: usize) -> Option<AffineLoop> {
        let InstKind::Open { close } = prog.insts.get(open)?.kind else {
            return None;
        };
        let mut at = 0i64;
        let mut deltas: Vec<(i64, u8)> = Vec::new();
        for inst in &prog.insts[open + 1..close] {
            match inst.kind {
                InstKind::Add(n) => match deltas.iter_mut().find(|(o, _)| *o == at) {
                    Some((_, d)) => *d = d.wrapping_add(n),
                    None => deltas.push((at, n)),
                },
                InstKind::Move(k) => at = at.checked_add(k)?,
                _ => return None,
            }
        }
        if at != 0 {
            return None;
        }
        let c = deltas.iter().find(|(o, _)| *o == 0).map_or(0, |&(_, d)| d);
        if c % 2 == 0 {
            return None;
        }
        deltas.retain(|&(o, d)| o != 0 && d != 0);
        deltas.sort_unstable();
        Some(AffineLoop {
            count_factor: inverse_mod_256(c.wrapping_neg()),
            deltas,
        })
    }
}

/// A *walk loop*: an unbalanced loop whose body ends with a move and holds
/// no unbalanced loop, so that every iteration moves the pointer by the
/// same `stride` and reaches the same cells around where it starts. Scans
/// (`[>>>>]`, `[<]`) are the simplest.
///
/// Such a loop needs no check of the cell its last move lands on: the
/// `]` test reads that cell first, and off the tape (at most a stride,
/// within the tape's guard zone) it reads 0, so the loop ends, and one
/// check after the loop finds out. Since the pointer only moves one way,
/// the side the walk moves away from is checked once, on entry; the other
/// side needs a check per iteration only if the body reaches past the cell
/// it starts on in the walk's direction. A scan thus runs with no check
/// inside.
///
/// A front-end lowering: that an off-tape cell reads 0 is a fact about the
/// Brainfuck runtime's tape, not something the middle-end can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkLoop {
    /// The net move of one iteration (never 0).
    pub stride: i64,
    /// The lowest and highest cell offsets, from the cell an iteration
    /// starts on, that it reaches before its last move (0 included;
    /// balanced inner loops' reach to the right included, as in
    /// [`LoopReach::segment_range`]).
    pub lo: i64,
    pub hi: i64,
    /// The body's last move.
    pub last_move: i64,
}

impl WalkLoop {
    /// The walk loop opened at `open`, if it is one.
    pub fn at(prog: &Program, reach: &LoopReach, open: usize) -> Option<WalkLoop> {
        let InstKind::Open { close } = prog.insts.get(open)?.kind else {
            return None;
        };
        let InstKind::Move(last_move) = prog.insts.get(close.checked_sub(1)?)?.kind else {
            return None;
        };
        // Every instruction before the last move, with no unbalanced loop.
        let body = reach.reach_between(prog, open + 1, close - 1);
        if body.stop != close - 1 {
            return None;
        }
        let stride = body.at.checked_add(last_move)?;
        (stride != 0).then_some(WalkLoop {
            stride,
            lo: body.lo,
            hi: body.hi,
            last_move,
        })
    }
}

/// The multiplicative inverse of an odd byte, modulo 256.
fn inverse_mod_256(x: u8) -> u8 {
    // Newton's iteration doubles the correct low bits each step: 3 → 6 → 12 → 24.
    let mut y = x;
    for _ in 0..3 {
        y = y.wrapping_mul(2u8.wrapping_sub(x.wrapping_mul(y)));
    }
    y
}

/// Which loops are balanced, and how high each loop is.
///
/// A loop is *balanced* when its body's moves add up to zero and every loop
/// inside it is balanced: each iteration then starts on the cell the loop
/// tests, and the loop leaves the pointer where it found it. A loop's
/// *height* is 1 with no loop inside, else one more than its highest inner
/// loop.
pub struct LoopReach {
    /// Indexed by instruction minus `base`: at the `Open` of a balanced
    /// loop, the highest cell offset its body (nested loops included)
    /// can reach, relative to the cell it tests.
    balanced: Vec<Option<i64>>,
    /// Indexed like `balanced`: at an `Open`, its loop's height; 0 elsewhere.
    heights: Vec<u32>,
    base: usize,
}

/// A loop (or the whole program) being measured.
struct Frame {
    open: usize,
    /// Net move so far.
    at: i64,
    /// Highest offset reached so far.
    hi: i64,
    /// No unbalanced loop inside so far.
    balanced: bool,
    /// The highest loop inside so far (0: none).
    height: u32,
}

impl LoopReach {
    /// One pass over the program with an explicit stack: any depth.
    pub fn of(prog: &Program) -> LoopReach {
        LoopReach::of_range(prog, 0..prog.insts.len())
    }

    /// [`LoopReach::of`] for the loops inside instructions `range` (a
    /// loop unit's): whether a loop is balanced depends on its body only,
    /// so compiling one loop of a big program costs time in that loop's
    /// size, not the program's.
    pub fn of_range(prog: &Program, range: std::ops::Range<usize>) -> LoopReach {
        let insts = prog.insts.get(range.clone()).unwrap_or(&[]);
        let base = range.start;
        let mut balanced = vec![None; insts.len()];
        let mut heights = vec![0u32; insts.len()];
        let mut stack = vec![Frame {
            open: usize::MAX,
            at: 0,
            hi: 0,
            balanced: true,
            height: 0,
        }];
        for (pc, inst) in insts.iter().enumerate() {
            match inst.kind {
                InstKind::Move(k) => {
                    let f = stack.last_mut().expect("the program frame is never popped");
                    f.at = f.at.saturating_add(k);
                    f.hi = f.hi.max(f.at);
                }
                InstKind::Open { .. } => stack.push(Frame {
                    open: pc,
                    at: 0,
                    hi: 0,
                    balanced: true,
                    height: 0,
                }),
                InstKind::Close { .. } if stack.len() > 1 => {
                    let inner = stack.pop().expect("checked above");
                    let outer = stack.last_mut().expect("checked above");
                    let height = inner.height.saturating_add(1);
                    heights[inner.open] = height;
                    outer.height = outer.height.max(height);
                    if inner.balanced && inner.at == 0 {
                        balanced[inner.open] = Some(inner.hi);
                        outer.hi = outer.hi.max(outer.at.saturating_add(inner.hi));
                    } else {
                        outer.balanced = false;
                    }
                }
                _ => {}
            }
        }
        LoopReach {
            balanced,
            heights,
            base,
        }
    }

    /// The height of the loop opened at instruction `open` (`u32::MAX`
    /// outside the range measured).
    pub fn height(&self, open: usize) -> u32 {
        open.checked_sub(self.base)
            .and_then(|i| self.heights.get(i))
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// Whether the loop opened at instruction `open` is balanced (false
    /// outside the range measured).
    pub fn is_balanced(&self, open: usize) -> bool {
        self.balanced_reach(open).is_some()
    }

    /// For a balanced loop, the highest cell offset its body can reach.
    fn balanced_reach(&self, open: usize) -> Option<i64> {
        open.checked_sub(self.base)
            .and_then(|i| self.balanced.get(i))
            .copied()
            .flatten()
    }

    /// The lowest and highest cell offsets (relative to the pointer at
    /// `start`) that the segment starting at instruction `start` checks: up
    /// to the next unbalanced loop's test, the end of the enclosing loop's
    /// body, or the program's end. To the left, exactly what the segment
    /// surely reaches. To the right, also what the balanced loops on the
    /// way may reach: they leave the pointer where it was, and their bodies
    /// (which may not run) then need no check of their own. That wider
    /// check can fail although the program stays on the tape, but only
    /// within a loop body's reach of the tape's right end; the interpreter
    /// then runs the segment, exactly. Programs work near cell 0 all the
    /// time, so the left side is never widened.
    pub fn segment_range(&self, prog: &Program, start: usize) -> (i64, i64) {
        let r = self.reach_between(prog, start, usize::MAX);
        (r.lo, r.hi)
    }

    /// What instructions `start..end` reach, as [`LoopReach::segment_range`]
    /// counts it, stopping early at a `]` or at an unbalanced loop's `[`.
    fn reach_between(&self, prog: &Program, start: usize, end: usize) -> Reach {
        let (mut at, mut lo, mut hi) = (0i64, 0i64, 0i64);
        let mut pc = start;
        while let Some(inst) = prog.insts.get(pc).filter(|_| pc < end) {
            match inst.kind {
                InstKind::Move(k) => {
                    at = at.saturating_add(k);
                    lo = lo.min(at);
                    hi = hi.max(at);
                }
                InstKind::Open { close } => match self.balanced_reach(pc) {
                    Some(reach) => {
                        hi = hi.max(at.saturating_add(reach));
                        pc = close;
                    }
                    None => break,
                },
                InstKind::Close { .. } => break,
                _ => {}
            }
            pc += 1;
        }
        Reach {
            lo,
            hi,
            at,
            stop: pc,
        }
    }
}

/// See [`LoopReach::reach_between`].
struct Reach {
    /// The lowest and highest offsets reached, from the start.
    lo: i64,
    hi: i64,
    /// The net move.
    at: i64,
    /// The instruction the walk stopped at.
    stop: usize,
}

/// The source position of instruction `pc` (for messages about exits).
pub fn position(prog: &Program, pc: usize) -> Option<SrcPos> {
    prog.insts.get(pc).map(|i| i.pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    #[test]
    fn a_loop_unit_not_at_a_bracket_is_a_typed_error() {
        let p = parse("+[-]").unwrap();
        let opts = BuildOptions {
            tape_len: 30_000,
            step_limit: false,
            tape_guard: 0,
        };
        match build_unit(&p, Unit::Loop { open: 0 }, opts) {
            Err(e @ BuildError::NotALoop { open: 0 }) => {
                assert!(std::error::Error::source(&e).is_none());
                assert!(e.to_string().contains("instruction 0"), "{e}");
            }
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("built a loop unit at a `+`"),
        }
        let e = BuildError::from(GraphError::UnknownNode(NodeId::from_index(9)));
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(source.to_string(), "unknown node n9");
    }

    #[test]
    fn resume_points_before_a_move_decode_to_the_pointer_before_it() {
        // Plain resume points (instruction indexes) decode to themselves.
        assert_eq!(decode_resume(17), (17, 0));
        for (pc, moved) in [
            (0, 1),
            (5, -9),
            (123_456, 4096),
            (7, -4096),
            (u32::MAX as usize, 3),
        ] {
            let r = resume_before_move(pc, moved).unwrap();
            assert_eq!(decode_resume(r), (pc as u64, -moved));
        }
        // What does not fit is refused (the caller builds `p - moved`).
        assert_eq!(resume_before_move(1 << 32, 1), None);
        assert_eq!(resume_before_move(3, i64::from(i32::MIN)), None);
        assert_eq!(resume_before_move(3, i64::MIN), None);
    }

    fn reach(src: &str) -> (Program, LoopReach) {
        let p = parse(src).unwrap();
        let r = LoopReach::of(&p);
        (p, r)
    }

    /// Bounds guards in the built graph of `src`.
    fn bounds_guards(src: &str) -> usize {
        let p = parse(src).unwrap();
        let opts = BuildOptions {
            tape_len: 30_000,
            step_limit: false,
            tape_guard: 0,
        };
        let g = build_program(&p, opts).unwrap().graph;
        g.live_nodes()
            .into_iter()
            .filter(|&n| {
                g.op(n)
                    == vssa::Op::Guard {
                        reason: REASON_BOUNDS,
                    }
            })
            .count()
    }

    /// Live loads of the current cell (offset 0 from the pointer) in the
    /// built (and, if `opt`, optimized) graph of `src` that read a phi's
    /// memory state: at the top of a loop body, or after a loop.
    fn loads_after_merges(src: &str, step_limit: bool, opt: bool) -> usize {
        let p = parse(src).unwrap();
        let opts = BuildOptions {
            tape_len: 30_000,
            step_limit,
            tape_guard: 0,
        };
        let mut g = build_program(&p, opts).unwrap().graph;
        vssa::verify(&g).unwrap();
        if opt {
            vssa::optimize(&mut g).unwrap();
            vssa::verify(&g).unwrap();
        }
        g.live_nodes()
            .into_iter()
            .filter(|&n| {
                g.op(n) == Op::Load { offset: 0 }
                    && g.ty(n) == Type::I8
                    && matches!(g.op(g.input(n, 1)), Op::Phi { .. })
            })
            .count()
    }

    #[test]
    fn a_loop_body_reuses_the_cell_its_tests_read() {
        for step_limit in [false, true] {
            for opt in [false, true] {
                // Balanced and unbalanced: `.` reads the tested cell at
                // the top of the body, the `[`/`]` tests already did.
                for src in [",[.-]", ",[.>]", ",[>+<.-]", ",[.[-<+>],]"] {
                    assert_eq!(loads_after_merges(src, step_limit, opt), 0, "{src}");
                }
            }
        }
    }

    #[test]
    fn a_cell_is_known_zero_after_its_loop() {
        for step_limit in [false, true] {
            // `+` after the loop adds to a known 0: it stores 1, no load.
            assert_eq!(loads_after_merges(",[,]+.", step_limit, false), 0);
            assert_eq!(loads_after_merges(",[>,]>+<+.", step_limit, false), 0);
        }
        // The second loop's `[` test folds: the loop is gone.
        let p = parse(",[.,][.]").unwrap();
        let opts = BuildOptions {
            tape_len: 30_000,
            step_limit: false,
            tape_guard: 0,
        };
        let g = build_program(&p, opts).unwrap().graph;
        let loops = g
            .live_nodes()
            .into_iter()
            .filter(|&n| matches!(g.op(n), Op::Loop { .. }))
            .count();
        assert_eq!(loops, 1);
    }

    #[test]
    fn a_skipped_loop_still_checks_the_segment_after_it() {
        // The second `[>]` is never entered (the first left a zero); the
        // check after the first loop ends at it, so the cells after it
        // need a check of their own, as if it were not there.
        assert_eq!(bounds_guards(",[>][>]>>>+"), bounds_guards(",[>]>>>+"));
    }

    #[test]
    fn loop_heights_count_the_deepest_inner_chain() {
        let p = parse("[[-]>[[-]]][]+").unwrap();
        let reach = LoopReach::of(&p);
        let opens: Vec<u32> = (0..p.insts.len())
            .filter(|&pc| matches!(p.insts[pc].kind, InstKind::Open { .. }))
            .map(|pc| reach.height(pc))
            .collect();
        assert_eq!(opens, vec![3, 1, 2, 1, 1]);
        // A loop unit measures its own loop only.
        let part = LoopReach::of_range(&p, 5..10);
        assert_eq!(
            (part.height(5), part.height(6), part.height(0)),
            (2, 1, u32::MAX)
        );
    }

    #[test]
    fn only_low_loops_keep_their_cell_in_a_phi() {
        let depth = MAX_CELL_PHI_HEIGHT as usize + 3;
        let src = format!(",{}{}", "[.".repeat(depth), "]".repeat(depth));
        // One `.` per loop too high to keep its cell in a phi.
        assert_eq!(loads_after_merges(&src, false, false), 3);
    }

    #[test]
    fn a_loop_unit_reads_its_cell_once_on_entry() {
        let p = parse(",[.-]").unwrap();
        let opts = BuildOptions {
            tape_len: 30_000,
            step_limit: false,
            tape_guard: 0,
        };
        let g = build_unit(&p, Unit::Loop { open: 1 }, opts).unwrap().graph;
        vssa::verify(&g).unwrap();
        let from_phis = g
            .live_nodes()
            .into_iter()
            .filter(|&n| {
                g.op(n) == Op::Load { offset: 0 } && matches!(g.op(g.input(n, 1)), Op::Phi { .. })
            })
            .count();
        assert_eq!(from_phis, 0);
    }

    #[test]
    fn a_loop_inside_checked_cells_needs_no_check_of_its_own() {
        // After `[>]` the cell index is unknown (at the start it is the
        // constant 0, and every check folds away). `[>]` itself checks its
        // body; the segment after it has no cells but the current one.
        const P: &str = "+[>]";
        let base = bounds_guards(P);
        assert_eq!(base, 1);
        let extra = |x: &str| bounds_guards(&format!("{P}{x}")) - base;
        // The segment checks cells 0..=2; the copy loop reaches 0..=1.
        assert_eq!(extra(">>+<<[->+<]"), 1);
        // The loop's right reach widens the segment's check instead.
        assert_eq!(extra("+[->>>+<<<]"), 1);
        // Also for a balanced loop that is not closed-form.
        assert_eq!(extra(">>>+<<<+[->>>[-]<<<.]"), 1);
        // The left side is never widened: the loop reaches cell -1.
        assert_eq!(extra("+>+<[-<+>]"), 2);
        // After an unbalanced loop only the current cell is known.
        assert_eq!(extra(">>+[>]<<[->+<]"), 3);
    }

    #[test]
    fn balanced_reach_includes_nested_loops() {
        let (_, r) = reach("[>[>>>+<<<-]<-]");
        assert_eq!(r.balanced_reach(0), Some(4));
        assert_eq!(r.balanced_reach(2), Some(3));
        let (_, r) = reach("[>]");
        assert_eq!(r.balanced_reach(0), None);
    }

    #[test]
    fn affine_loops() {
        let (p, _) = reach("[->+>++<<]");
        assert_eq!(
            AffineLoop::at(&p, 0),
            Some(AffineLoop {
                count_factor: 1,
                deltas: vec![(1, 1), (2, 2)]
            })
        );
        let (p, _) = reach("[+++>-<]");
        let lp = AffineLoop::at(&p, 0).unwrap();
        // 3 * n == -v (mod 256): n = v * inverse(-3).
        assert_eq!(lp.count_factor.wrapping_mul(253), 1);
        for src in ["[--]", "[->+<.]", "[->]", "[-[-]]", "[>+<]"] {
            let (p, _) = reach(src);
            assert_eq!(AffineLoop::at(&p, 0), None, "{src}");
        }
    }

    #[test]
    fn inverses_mod_256() {
        for x in (1..=255u8).step_by(2) {
            assert_eq!(x.wrapping_mul(inverse_mod_256(x)), 1, "{x}");
        }
    }

    #[test]
    fn a_range_measures_its_loops_as_the_whole_program_does() {
        let p = parse("+[>[-]<[>]+[->+<]<]>[<]").unwrap();
        let whole = LoopReach::of(&p);
        let InstKind::Open { close } = p.insts[1].kind else {
            panic!("expected a loop at 1")
        };
        let part = LoopReach::of_range(&p, 1..close + 1);
        for pc in 0..p.insts.len() {
            let inside = (1..=close).contains(&pc);
            let want = inside && whole.is_balanced(pc);
            assert_eq!(part.is_balanced(pc), want, "pc {pc}");
        }
        assert!((1..=close).any(|pc| part.is_balanced(pc)));
        assert!((1..=close)
            .any(|pc| matches!(p.insts[pc].kind, InstKind::Open { .. }) && !part.is_balanced(pc)));
    }

    #[test]
    fn balanced_and_unbalanced_loops() {
        let (p, r) = reach("[->+<][>]");
        assert!(r.is_balanced(0));
        let open2 = p
            .insts
            .iter()
            .rposition(|i| matches!(i.kind, InstKind::Open { .. }))
            .unwrap();
        assert!(!r.is_balanced(open2));
    }

    /// Bounds guards of the built graph of `src` that lie on a cycle of
    /// control: run on every iteration of some loop.
    fn bounds_guards_in_loops(src: &str, tape_guard: u64) -> usize {
        let p = parse(src).unwrap();
        let opts = BuildOptions {
            tape_len: 30_000,
            step_limit: false,
            tape_guard,
        };
        let g = build_program(&p, opts).unwrap().graph;
        let users = g.users();
        let is_control = |n: NodeId| {
            matches!(
                g.op(n),
                Op::Guard { .. } | Op::If | Op::Region | Op::Loop { .. }
            ) || (matches!(g.op(n), Op::Proj { .. }) && g.ty(n) == Type::Ctrl)
        };
        let guards = g.live_nodes().into_iter().filter(|&n| {
            g.op(n)
                == Op::Guard {
                    reason: REASON_BOUNDS,
                }
        });
        guards
            .filter(|&guard| {
                let mut seen = std::collections::HashSet::new();
                let mut work = vec![guard];
                while let Some(n) = work.pop() {
                    for &u in &users[n.index()] {
                        if u == guard {
                            return true;
                        }
                        if is_control(u) && seen.insert(u) {
                            work.push(u);
                        }
                    }
                }
                false
            })
            .count()
    }

    #[test]
    fn walk_loops_are_recognised() {
        let walk = |src: &str| {
            let (p, r) = reach(src);
            WalkLoop::at(&p, &r, 0)
        };
        let w = |stride, lo, hi, last_move| {
            Some(WalkLoop {
                stride,
                lo,
                hi,
                last_move,
            })
        };
        assert_eq!(walk("[>>>]"), w(3, 0, 0, 3));
        assert_eq!(walk("[<]"), w(-1, 0, 0, -1));
        // The clear loop reaches no further than its cell.
        assert_eq!(walk("[<[-]<<]"), w(-3, -1, 0, -2));
        // The copy loop's reach to the right counts, as in a segment.
        assert_eq!(walk("[>[->>+<<]<<]"), w(-1, 0, 3, -2));
        assert_eq!(walk("[-<+>>>]"), w(2, -1, 0, 3));
        // Not walks: ends on a cell change, holds an unbalanced loop, balanced.
        assert_eq!(walk("[>+]"), None);
        assert_eq!(walk("[[>]>]"), None);
        assert_eq!(walk("[->+<]"), None);
    }

    #[test]
    fn walk_loops_check_no_cell_on_every_iteration_when_they_need_not() {
        // Scans and walks that reach nothing past their start in the way
        // they go: no check inside the loop, given a guard zone.
        for src in [
            ",[>>>]",
            ",[<]",
            ",[>[-]<<<]",
            ",>>[-<+>>>]",
            ",[>[-<+>]<<]",
        ] {
            assert_eq!(bounds_guards_in_loops(src, 4096), 0, "{src}");
            assert!(bounds_guards_in_loops(src, 0) > 0, "{src}");
        }
        // Too long a stride for the guard zone: checked every time.
        assert!(bounds_guards_in_loops(",[>>>>>]", 4) > 0);
        // Reaching ahead of the walk: one one-sided check per iteration.
        assert_eq!(bounds_guards_in_loops(",[>>+<]", 4096), 1);
        assert_eq!(bounds_guards_in_loops(",[<[-]<<]", 4096), 1);
    }

    #[test]
    fn a_loop_holding_an_unbalanced_loop_is_unbalanced() {
        let (_, r) = reach("[[>]<]");
        assert!(!r.is_balanced(0));
    }

    #[test]
    fn segments_run_through_balanced_loops_without_their_bodies() {
        // The copy loop's body (reaching -1) may not run: it is not counted.
        let (p, r) = reach(">[<<+>>-]>>[>]");
        assert_eq!(r.segment_range(&p, 0), (0, 3));
        // The body itself, from its first instruction.
        assert_eq!(r.segment_range(&p, 2), (-2, 0));
    }

    #[test]
    fn segments_stop_at_the_end_of_the_enclosing_body() {
        let (p, r) = reach("[>>]<<<");
        assert_eq!(r.segment_range(&p, 1), (0, 2));
    }
}
