//! The graph builder: a whole Brainfuck program as one vssa function.
//!
//! The compiled function has the native signature
//! `extern "C" fn(*mut Context) -> u32` and works on the interpreter's own
//! tape, so compiled code and interpreter always share the exact machine
//! state. It returns [`EXIT_DONE`], [`EXIT_ERROR`] (a host call recorded the
//! error), or an *exit id* `>= EXIT_FIRST_RESUME`: the code stopped before a
//! point it does not handle and the interpreter resumes there (see
//! [`CompiledProgram::exits`]).
//!
//! How the program maps onto the graph:
//! * The guest state is threaded as SSA values: control, memory, the cell
//!   index `p` (an `I64`), and, under a step limit, the remaining `fuel`.
//!   Every cell access is `load/store(ptr_add(tape, p))`; the memory
//!   peepholes fold the offsets and forward values, so runs of `+-<>` leave
//!   one load and one store per cell touched.
//! * `[ body ]` is a rotated loop: the `[` test guards entry, the `]` test is
//!   the back edge, and both exits meet in a `Region` after the loop.
//! * Tape bounds are checked once per *segment* (the straight-line code
//!   between two loop tests), over the whole range of cells the segment
//!   reaches. A failing check leaves to the interpreter at the segment's first
//!   instruction, which then reports the error at the exact move (or, under a
//!   larger limit, would run on). Nothing in the segment has run yet, so the
//!   state handed over is exact.
//! * The step limit counts loop tests, as the interpreter does; running out
//!   leaves to the interpreter at the test, which reports it.

use crate::error::SrcPos;
use crate::parse::{InstKind, Program};
use vssa::{CmpOp, ConvOp, Graph, GraphError, NodeId, Type};

/// The program ran to its end.
pub const EXIT_DONE: u32 = 0;
/// A host call failed (I/O); the host recorded the error.
pub const EXIT_ERROR: u32 = 1;
/// Exit ids from here on index [`CompiledProgram::exits`].
pub const EXIT_FIRST_RESUME: u32 = 2;

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
    /// `i64`: the cell index at an exit to the interpreter.
    pub const EXIT_PTR: i32 = 16;
}

/// What the builder needs to know about the run: everything here becomes
/// an immediate in the code.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// Number of cells the tape has; the bounds checks compare against it.
    pub tape_len: u64,
    /// Whether to count loop tests (compile the step limit in).
    pub step_limit: bool,
}

/// A built program: its graph and the table that gives meaning to exit ids.
pub struct CompiledProgram {
    pub graph: Graph,
    /// `exits[id - EXIT_FIRST_RESUME]` is the instruction index at which the
    /// interpreter resumes after that exit.
    pub exits: Vec<usize>,
}

/// Why the builder could not build the graph: an internal inconsistency
/// reported by the graph, never a property of the guest program.
#[derive(Debug)]
pub struct BuildError(pub GraphError);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "graph construction failed: {}", self.0)
    }
}

impl std::error::Error for BuildError {}

impl From<GraphError> for BuildError {
    fn from(e: GraphError) -> Self {
        BuildError(e)
    }
}

/// The guest state carried along the control flow as SSA values.
#[derive(Clone, Copy)]
struct State {
    ctrl: NodeId,
    mem: NodeId,
    p: NodeId,
    fuel: Option<NodeId>,
}

/// A loop whose `]` has not been reached yet.
struct OpenLoop {
    header: NodeId,
    phi_mem: NodeId,
    phi_p: NodeId,
    phi_fuel: Option<NodeId>,
    /// The state on the path where the `[` test skipped the loop.
    skipped: State,
}

/// Phi keys: a loop's phis are told apart by the slot they carry.
const SLOT_MEM: u64 = 0;
const SLOT_P: u64 = 1;
const SLOT_FUEL: u64 = 2;

struct Builder<'a> {
    g: Graph,
    prog: &'a Program,
    opts: BuildOptions,
    ctx: NodeId,
    tape: NodeId,
    returns: Vec<NodeId>,
    exits: Vec<usize>,
}

/// Builds the whole program as one function. Iterative: any nesting depth.
pub fn build_program(prog: &Program, opts: BuildOptions) -> Result<CompiledProgram, BuildError> {
    let mut g = Graph::new();
    let entry = g.entry()?;
    let ctx = g.param(entry.start, 0, Type::Ptr)?;
    let tape = g.load(entry.ctrl, entry.mem, ctx, ctx_offset::TAPE, Type::Ptr)?;
    let fuel = if opts.step_limit {
        Some(g.load(entry.ctrl, entry.mem, ctx, ctx_offset::FUEL, Type::I64)?)
    } else {
        None
    };
    let p = g.iconst(Type::I64, 0)?;
    let mut b = Builder {
        g,
        prog,
        opts,
        ctx,
        tape,
        returns: Vec::new(),
        exits: Vec::new(),
    };
    let mut st = State {
        ctrl: entry.ctrl,
        mem: entry.mem,
        p,
        fuel,
    };
    st = b.segment_check(st, 0)?;
    let mut loops: Vec<OpenLoop> = Vec::new();
    for (pc, inst) in prog.insts.iter().enumerate() {
        match inst.kind {
            InstKind::Add(n) => {
                let v = b.load_cell(st)?;
                let k = b.g.iconst(Type::I8, n as i64)?;
                let v = b.g.add(v, k)?;
                st.mem = b.store_cell(st, v)?;
            }
            InstKind::Move(k) => {
                let k = b.g.iconst(Type::I64, k)?;
                st.p = b.g.add(st.p, k)?;
            }
            InstKind::Out => st = b.output(st, pc)?,
            InstKind::In => st = b.input(st, pc)?,
            InstKind::Open { .. } => {
                let (enter, skip) = b.loop_test(&mut st, pc)?;
                let header = b.g.loop_header(pc as u64, enter)?;
                let key = (pc as u64) * 4;
                let phi_mem = b.g.loop_phi(header, key + SLOT_MEM, Type::Mem, st.mem)?;
                let phi_p = b.g.loop_phi(header, key + SLOT_P, Type::I64, st.p)?;
                let phi_fuel = match st.fuel {
                    Some(f) => Some(b.g.loop_phi(header, key + SLOT_FUEL, Type::I64, f)?),
                    None => None,
                };
                loops.push(OpenLoop {
                    header,
                    phi_mem,
                    phi_p,
                    phi_fuel,
                    skipped: State { ctrl: skip, ..st },
                });
                st = State {
                    ctrl: header,
                    mem: phi_mem,
                    p: phi_p,
                    fuel: phi_fuel,
                };
                st = b.segment_check(st, pc + 1)?;
            }
            InstKind::Close { .. } => {
                // The parser guarantees balance; an unmatched `]` cannot get here.
                let Some(lp) = loops.pop() else {
                    return Err(BuildError(GraphError::BadBackEdge {
                        node: st.ctrl,
                        reason: "unbalanced program reached the builder",
                    }));
                };
                let (again, leave) = b.loop_test(&mut st, pc)?;
                b.g.set_back_input(lp.header, again)?;
                b.g.set_back_input(lp.phi_mem, st.mem)?;
                b.g.set_back_input(lp.phi_p, st.p)?;
                if let (Some(phi), Some(f)) = (lp.phi_fuel, st.fuel) {
                    b.g.set_back_input(phi, f)?;
                }
                let s = lp.skipped;
                let region = b.g.region(&[s.ctrl, leave])?;
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
                };
                st = b.segment_check(st, pc + 1)?;
            }
        }
    }
    let done = b.g.iconst(Type::I32, EXIT_DONE as i64)?;
    let r = b.g.ret(st.ctrl, st.mem, done)?;
    b.returns.push(r);
    let returns = std::mem::take(&mut b.returns);
    b.g.finish(&returns)?;
    Ok(CompiledProgram {
        graph: b.g,
        exits: b.exits,
    })
}

impl Builder<'_> {
    fn cell_ptr(&mut self, st: State) -> Result<NodeId, GraphError> {
        self.g.ptr_add(self.tape, st.p)
    }

    fn load_cell(&mut self, st: State) -> Result<NodeId, GraphError> {
        let ptr = self.cell_ptr(st)?;
        self.g.load(st.ctrl, st.mem, ptr, 0, Type::I8)
    }

    fn store_cell(&mut self, st: State, v: NodeId) -> Result<NodeId, GraphError> {
        let ptr = self.cell_ptr(st)?;
        self.g.store(st.ctrl, st.mem, ptr, 0, v)
    }

    /// Leaves to the interpreter at instruction `resume`, handing over the
    /// cell index and the fuel left.
    fn exit_to_interpreter(&mut self, st: State, resume: usize) -> Result<(), GraphError> {
        let mut mem = self
            .g
            .store(st.ctrl, st.mem, self.ctx, ctx_offset::EXIT_PTR, st.p)?;
        if let Some(f) = st.fuel {
            mem = self.g.store(st.ctrl, mem, self.ctx, ctx_offset::FUEL, f)?;
        }
        let id = EXIT_FIRST_RESUME as usize + self.exits.len();
        self.exits.push(resume);
        let code = self.g.iconst(Type::I32, id as i64)?;
        let r = self.g.ret(st.ctrl, mem, code)?;
        self.returns.push(r);
        Ok(())
    }

    /// Returns to the host with [`EXIT_ERROR`] (the host recorded why).
    fn exit_error(&mut self, ctrl: NodeId, mem: NodeId) -> Result<(), GraphError> {
        let code = self.g.iconst(Type::I32, EXIT_ERROR as i64)?;
        let r = self.g.ret(ctrl, mem, code)?;
        self.returns.push(r);
        Ok(())
    }

    /// Branches to an exit when `cond != 0`; returns the control that goes on.
    fn exit_if(&mut self, st: State, cond: NodeId, resume: usize) -> Result<NodeId, GraphError> {
        let (bail, stay) = self.g.branch(st.ctrl, cond)?;
        self.exit_to_interpreter(State { ctrl: bail, ..st }, resume)?;
        Ok(stay)
    }

    /// The bounds check at the start of the segment beginning at `start`:
    /// every cell the segment reaches, `p + lo ..= p + hi`, must be on the
    /// tape. One unsigned compare: `(p + lo) as u64 > len - 1 - (hi - lo)`.
    fn segment_check(&mut self, mut st: State, start: usize) -> Result<State, GraphError> {
        let (lo, hi) = segment_range(self.prog, start);
        if lo == 0 && hi == 0 {
            // The segment stays on the cell it starts on, which was checked
            // by whoever moved the pointer there.
            return Ok(st);
        }
        let span = (hi - lo) as u64;
        let first = self.g.iconst(Type::I64, lo)?;
        let first = self.g.add(st.p, first)?;
        let cond = match self.opts.tape_len.checked_sub(1 + span) {
            Some(max_first) => {
                let max_first = self.g.iconst(Type::I64, max_first as i64)?;
                self.g.cmp(CmpOp::Ugt, first, max_first)?
            }
            // Wider than the tape: always leave; the interpreter reports it.
            None => self.g.iconst(Type::I8, 1)?,
        };
        st.ctrl = self.exit_if(st, cond, start)?;
        Ok(st)
    }

    /// A `[` or `]` test: counts a step, reads the cell, and branches.
    /// Returns (cell != 0, cell == 0) controls.
    fn loop_test(&mut self, st: &mut State, pc: usize) -> Result<(NodeId, NodeId), GraphError> {
        if let Some(fuel) = st.fuel {
            let zero = self.g.iconst(Type::I64, 0)?;
            let empty = self.g.cmp(CmpOp::Eq, fuel, zero)?;
            st.ctrl = self.exit_if(*st, empty, pc)?;
            let one = self.g.iconst(Type::I64, 1)?;
            st.fuel = Some(self.g.sub(fuel, one)?);
        }
        let v = self.load_cell(*st)?;
        self.g.branch(st.ctrl, v)
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

/// The lowest and highest cell offsets (relative to the pointer at `start`)
/// that the segment starting at instruction `start` reaches, up to and
/// including the next loop test (or the program's end).
pub fn segment_range(prog: &Program, start: usize) -> (i64, i64) {
    let (mut at, mut lo, mut hi) = (0i64, 0i64, 0i64);
    for inst in &prog.insts[start.min(prog.insts.len())..] {
        match inst.kind {
            InstKind::Move(k) => {
                at = at.saturating_add(k);
                lo = lo.min(at);
                hi = hi.max(at);
            }
            InstKind::Open { .. } | InstKind::Close { .. } => break,
            _ => {}
        }
    }
    (lo, hi)
}

/// The source position of instruction `pc` (for messages about exits).
pub fn position(prog: &Program, pc: usize) -> Option<SrcPos> {
    prog.insts.get(pc).map(|i| i.pos)
}
