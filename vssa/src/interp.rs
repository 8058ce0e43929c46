//! A reference interpreter for the LIR: runs a [`Graph`] directly.
//!
//! It is the middle-end's oracle. A graph means the same thing before and
//! after the optimizer, and native code compiled from it must agree too; this
//! interpreter gives the graph a meaning without the scheduler or the
//! backend, so the differential fuzzer can compare all three. It reads the
//! graph only through resolved inputs, so it runs graphs at any point of the
//! pipeline.
//!
//! # How it runs
//!
//! Control walks from `Start`'s control projection, one *control point*
//! (the `Proj 0` of `Start`, a `Region`, a `Loop`, or a projection of an
//! `If`) at a time. On entering a control point it executes that point's
//! pinned nodes (loads, stores, calls), each on demand with its inputs, then
//! follows the point's single control user: an `If` picks a projection, a
//! `Return` ends the run, a `Region` or `Loop` is entered through input `k`
//! and all its phis take their input `1 + k` *simultaneously* (all are read
//! before any is written), as in any SSA interpreter.
//!
//! Values follow SSA's dynamic rule: a node stands for its most recent
//! execution. Pure nodes are recomputed on demand and memoized only within
//! one visit of a control point, because a phi they depend on may change
//! at the next one. Demand evaluation uses an explicit stack, so no graph
//! depth overflows the Rust stack.
//!
//! Arithmetic is [`crate::eval`]'s reference semantics ([`eval_bin`]
//! etc.) and, for floats, [`crate::float`]'s ([`eval_fbin`] etc.: IEEE-754,
//! Rust's `f32`/`f64` operations, with canonical NaN results), so constant
//! folding and this oracle cannot disagree by definition. Every value is an
//! `i64`; a float is its bit pattern.
//!
//! # Memory
//!
//! Memory states are *versions*, so a load reads the memory state its `mem`
//! input names, even when stores of a later state already ran (the
//! peepholes let loads skip stores to other bytes, and the scheduler orders
//! them by anti-dependences; here no ordering is needed). One flat buffer
//! holds the newest state and an undo log of overwritten bytes rebuilds
//! older ones.
//!
//! Stores and calls run in execution order on top of everything that ran
//! before, as on the machine, even when their `mem` input is an older state
//! than the newest. Graphs from front-ends thread memory linearly and the
//! peepholes keep them so (an earlier `store_over_store` did not, see bug 3
//! in `docs/testing.md`); should a graph fork its memory chain anyway, the
//! machine runs every store, and so does this interpreter. [`eval_linear`]
//! instead rejects any fork as [`InterpError::NonLinearMemory`]: the
//! fuzzer's check that graphs stay linear.
//!
//! Addresses are `i64` values. [`Memory`] covers `[base, base + len)`; any
//! access outside is [`InterpError::OutOfBounds`]. Nothing here panics on a
//! malformed graph: problems are [`InterpError`]s.

use crate::eval::{eval_bin, eval_cmp, eval_conv, eval_un};
use crate::float::{eval_fbin, eval_fcmp, eval_fconv, eval_ffits, eval_fun};
use crate::frame::frame_chain;
use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Type;
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// How many overwritten byte ranges the undo log keeps. A load that reads a
/// memory state older than the log reaches is [`InterpError::StaleMemory`];
/// real graphs only ever read a few stores back.
pub const UNDO_LOG_LIMIT: usize = 1 << 16;

/// How deep calls between a module's functions may nest. Each level is a
/// nested interpreter on the Rust stack, so recursion is bounded here
/// rather than by a stack overflow.
pub const MAX_CALL_DEPTH: u32 = 64;

/// The functions calls reach: `CallDirect { callee: i }` runs
/// `functions[i]`, and `CallIndirect` runs the function whose address in
/// `addresses` equals its target (so the embedder may give the real
/// addresses of compiled code, and memory holding them means the same to
/// the interpreter and to native code).
#[derive(Clone, Copy, Debug, Default)]
pub struct Module<'m> {
    pub functions: &'m [Graph],
    /// `addresses[i]` is function `i`'s address for indirect calls.
    pub addresses: &'m [i64],
}

/// A host function for [`eval_module`]: `(func, args)` to one value per
/// result of the host table's entry.
pub type HostCalls<'h> = dyn FnMut(u32, &[i64]) -> Vec<i64> + 'h;

/// Why [`eval`] stopped without a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterpError {
    /// The fuel ran out (one unit per node evaluated and per control step).
    OutOfFuel,
    /// A load or store touched bytes outside the [`Memory`].
    OutOfBounds { node: NodeId, addr: i64, len: u32 },
    /// A node's value was needed before any execution defined it (a use
    /// not dominated by its definition).
    Undefined { node: NodeId },
    /// A store, call or return did not continue the newest memory state.
    NonLinearMemory { node: NodeId },
    /// A load read a memory state older than the undo log reaches.
    StaleMemory { node: NodeId },
    /// A parameter index with no argument given.
    MissingArg { node: NodeId, index: u32 },
    /// A `Guard` failed: the function deoptimized to the frame with
    /// resume point `resume`, whose slot values (normalized to their types)
    /// are `values`; for a chain of frames or objects to materialize, the
    /// values of [`crate::frame::frame_chain`]'s layout, in its order. Not a fault of the graph: the way a guarded function
    /// leaves when a speculation or check does not hold.
    Deopt {
        guard: NodeId,
        resume: u64,
        values: Vec<i64>,
    },
    /// Calls nested deeper than [`MAX_CALL_DEPTH`].
    CallTooDeep { node: NodeId },
    /// A call whose callee is not in the [`Module`] (`callee` is the
    /// function number or the indirect target's address), or whose
    /// signature differs from the callee's.
    BadCallee {
        node: NodeId,
        callee: i64,
        reason: &'static str,
    },
    /// The graph does not have a shape this interpreter can run.
    BadGraph {
        node: Option<NodeId>,
        reason: &'static str,
    },
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpError::OutOfFuel => write!(f, "out of fuel"),
            InterpError::OutOfBounds { node, addr, len } => {
                write!(
                    f,
                    "{node}: access of {len} byte(s) at {addr:#x} is out of bounds"
                )
            }
            InterpError::Undefined { node } => write!(f, "{node}: used before it is defined"),
            InterpError::NonLinearMemory { node } => {
                write!(f, "{node}: does not continue the newest memory state")
            }
            InterpError::StaleMemory { node } => {
                write!(f, "{node}: reads a memory state older than the undo log")
            }
            InterpError::MissingArg { node, index } => {
                write!(f, "{node}: parameter {index} has no argument")
            }
            InterpError::Deopt {
                guard,
                resume,
                values,
            } => write!(
                f,
                "{guard}: deoptimized to resume point {resume} with {values:?}"
            ),
            InterpError::CallTooDeep { node } => {
                write!(f, "{node}: calls nest deeper than {MAX_CALL_DEPTH}")
            }
            InterpError::BadCallee {
                node,
                callee,
                reason,
            } => write!(f, "{node}: callee {callee:#x}: {reason}"),
            InterpError::BadGraph {
                node: Some(n),
                reason,
            } => write!(f, "{n}: {reason}"),
            InterpError::BadGraph { node: None, reason } => write!(f, "graph: {reason}"),
        }
    }
}

impl std::error::Error for InterpError {}

/// A flat byte-addressed memory covering `[base, base + len)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    base: i64,
    bytes: Vec<u8>,
}

impl Memory {
    /// `len` zero bytes starting at address `base`.
    pub fn new(base: i64, len: usize) -> Memory {
        Memory {
            base,
            bytes: vec![0; len],
        }
    }

    /// A memory holding `bytes` at address `base`.
    pub fn from_bytes(base: i64, bytes: Vec<u8>) -> Memory {
        Memory { base, bytes }
    }

    pub fn base(&self) -> i64 {
        self.base
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The buffer range of `len` bytes at `addr`, if all inside.
    fn range(&self, addr: i64, len: u32) -> Option<std::ops::Range<usize>> {
        let off = addr.checked_sub(self.base)?;
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(len as usize)?;
        (end <= self.bytes.len()).then_some(start..end)
    }
}

/// Runs `g` from `Start` to a `Return` and gives the returned value
/// (normalized to its type, as an `i64`).
///
/// `args[i]` is parameter `i` (`Proj 2+i` of `Start`); pointers are
/// addresses in `mem`. `hosts(func, args)` answers `Call { func }`; its
/// result is normalized to the call's result type. `fuel` bounds the work.
pub fn eval(
    g: &Graph,
    args: &[i64],
    mem: &mut Memory,
    hosts: &mut dyn FnMut(u32, &[i64]) -> i64,
    fuel: u64,
) -> Result<i64, InterpError> {
    first(run(g, args, mem, hosts, fuel, false))
}

/// [`eval`], but every store and call must extend the newest memory state
/// and every `Return` must return it, else [`InterpError::NonLinearMemory`].
pub fn eval_linear(
    g: &Graph,
    args: &[i64],
    mem: &mut Memory,
    hosts: &mut dyn FnMut(u32, &[i64]) -> i64,
    fuel: u64,
) -> Result<i64, InterpError> {
    first(run(g, args, mem, hosts, fuel, true))
}

/// The value an entry without a signature returns (its one value).
fn first(values: Result<Vec<i64>, InterpError>) -> Result<i64, InterpError> {
    Ok(values?.first().copied().unwrap_or(0))
}

fn run(
    g: &Graph,
    args: &[i64],
    mem: &mut Memory,
    hosts: &mut dyn FnMut(u32, &[i64]) -> i64,
    fuel: u64,
    linear: bool,
) -> Result<Vec<i64>, InterpError> {
    let mut hosts = |f: u32, a: &[i64]| vec![hosts(f, a)];
    let mut fuel = fuel;
    let calls = Calls {
        module: Module::default(),
        depth: 0,
    };
    run_function(g, args, mem, &mut hosts, &mut fuel, linear, calls)
}

/// Runs function `entry` of `module` on `args`: every value its `Return`
/// returns (one per result of its signature; one value for a graph without
/// a signature). Calls run the module's functions on the same memory, and
/// `hosts` answers host calls with one value per result. `linear` is
/// [`eval_linear`]'s check; `fuel` bounds the work of all calls together.
pub fn eval_module(
    module: Module,
    entry: usize,
    args: &[i64],
    mem: &mut Memory,
    hosts: &mut HostCalls,
    fuel: u64,
    linear: bool,
) -> Result<Vec<i64>, InterpError> {
    let g = module.functions.get(entry).ok_or(InterpError::BadGraph {
        node: None,
        reason: "the module has no such function",
    })?;
    let mut fuel = fuel;
    let calls = Calls { module, depth: 0 };
    run_function(g, args, mem, hosts, &mut fuel, linear, calls)
}

/// What a running function's calls reach.
#[derive(Clone, Copy)]
struct Calls<'m> {
    module: Module<'m>,
    /// How many calls the function runs inside.
    depth: u32,
}

fn run_function(
    g: &Graph,
    args: &[i64],
    mem: &mut Memory,
    hosts: &mut HostCalls,
    fuel: &mut u64,
    linear: bool,
    calls: Calls,
) -> Result<Vec<i64>, InterpError> {
    let shape = Shape::new(g)?;
    let mut m = Machine {
        g,
        shape: &shape,
        args,
        mem,
        hosts,
        calls,
        results: HashMap::new(),
        fuel: *fuel,
        linear,
        gen: 0,
        cur: shape.entry,
        val: vec![0; g.len()],
        stamp: vec![NEVER; g.len()],
        call_mem: vec![0; g.len()],
        in_progress: vec![false; g.len()],
        latest: 0,
        undo: VecDeque::new(),
        floor: 0,
    };
    let r = m.run();
    *fuel = m.fuel;
    r
}

/// A stamp that no visit has.
const NEVER: u64 = u64::MAX;

/// Where each node sits in the control structure: computed once per run.
struct Shape {
    /// The entry control point (`Proj 0` of `Start`).
    entry: NodeId,
    /// The start node (its projections are parameters).
    start: NodeId,
    /// Per control point: its pinned loads, stores and calls, in
    /// construction order.
    pinned: Vec<Vec<NodeId>>,
    /// Per `Region`/`Loop`: its phis, in construction order.
    phis: Vec<Vec<NodeId>>,
    /// Per control point: the control node that uses it and the input slot.
    succ: Vec<Option<(NodeId, usize)>>,
    /// Per `If`: its two live control projections (true, false).
    if_projs: Vec<[Option<NodeId>; 2]>,
}

impl Shape {
    fn new(g: &Graph) -> Result<Shape, InterpError> {
        let bad = |node: Option<NodeId>, reason| InterpError::BadGraph { node, reason };
        let n = g.len();
        let live = g.live_nodes();
        if live.is_empty() {
            return Err(bad(None, "no End was set"));
        }
        let mut start = None;
        let mut entry = None;
        let mut pinned = vec![Vec::new(); n];
        let mut phis = vec![Vec::new(); n];
        let mut succ: Vec<Option<(NodeId, usize)>> = vec![None; n];
        let mut if_projs = vec![[None, None]; n];
        for &id in &live {
            let ins = g.inputs(id);
            let op = g.op(id);
            match op {
                Op::Start if start.is_some() => {
                    return Err(bad(Some(id), "more than one live Start"));
                }
                Op::Start => start = Some(id),
                Op::Proj { index } => {
                    let Some(&t) = ins.first() else {
                        return Err(bad(Some(id), "a projection without input"));
                    };
                    match (g.op(t), index) {
                        (Op::Start, 0) => entry = Some(id),
                        (Op::If, 0 | 1) => if_projs[t.index()][index as usize] = Some(id),
                        _ => {}
                    }
                }
                Op::Load { .. }
                | Op::Store { .. }
                | Op::Call { .. }
                | Op::CallDirect { .. }
                | Op::CallIndirect { .. }
                | Op::ClassLoad { .. }
                | Op::ClassStore { .. } => {
                    let Some(&c) = ins.first() else {
                        return Err(bad(Some(id), "a pinned node without control"));
                    };
                    pinned[c.index()].push(id);
                }
                Op::Phi { .. } => {
                    let Some(&r) = ins.first() else {
                        return Err(bad(Some(id), "a phi without region"));
                    };
                    phis[r.index()].push(id);
                }
                Op::If | Op::Return | Op::Guard { .. } | Op::Region | Op::Loop { .. } => {
                    let slots = match op {
                        Op::If | Op::Return | Op::Guard { .. } => 1.min(ins.len()),
                        _ => ins.len(),
                    };
                    for (k, &c) in ins[..slots].iter().enumerate() {
                        // A point used twice (e.g. a region listing one
                        // predecessor twice) keeps its first use.
                        let s = &mut succ[c.index()];
                        if s.is_none() {
                            *s = Some((id, k));
                        }
                    }
                }
                _ => {}
            }
        }
        let start = start.ok_or(bad(None, "no live Start"))?;
        let entry = entry.ok_or(bad(Some(start), "Start has no live control projection"))?;
        Ok(Shape {
            entry,
            start,
            pinned,
            phis,
            succ,
            if_projs,
        })
    }
}

/// The running state.
struct Machine<'a, 'h> {
    g: &'a Graph,
    shape: &'a Shape,
    args: &'a [i64],
    mem: &'a mut Memory,
    hosts: &'a mut HostCalls<'h>,
    calls: Calls<'a>,
    /// Every result of the calls that ran (a call's `val` is its first).
    results: HashMap<NodeId, Vec<i64>>,
    fuel: u64,
    /// Reject memory forks ([`eval_linear`]).
    linear: bool,
    /// The current visit: incremented on entering every control point.
    gen: u64,
    /// The control point being executed.
    cur: NodeId,
    /// Each node's most recent value (memory states are version numbers;
    /// a call's slot holds its result).
    val: Vec<i64>,
    /// The visit that computed `val` (`NEVER`: not yet). Phis and pinned
    /// nodes keep their value across visits; pure nodes only within one.
    stamp: Vec<u64>,
    /// A call's resulting memory version.
    call_mem: Vec<i64>,
    /// Nodes on the demand stack, to report cycles instead of looping.
    in_progress: Vec<bool>,
    /// The newest memory version.
    latest: i64,
    /// Overwritten bytes, oldest first: `(version made by the write, addr,
    /// old bytes, length)`.
    undo: VecDeque<(i64, i64, [u8; 8], u32)>,
    /// The oldest version the undo log can still rebuild.
    floor: i64,
}

impl Machine<'_, '_> {
    fn burn(&mut self) -> Result<(), InterpError> {
        if self.fuel == 0 {
            return Err(InterpError::OutOfFuel);
        }
        self.fuel -= 1;
        Ok(())
    }

    fn input(&self, n: NodeId, i: usize) -> Result<NodeId, InterpError> {
        if i < self.g.arity(n) {
            Ok(self.g.input(n, i))
        } else {
            Err(InterpError::BadGraph {
                node: Some(n),
                reason: "too few inputs",
            })
        }
    }

    /// The main loop: one control point per iteration.
    fn run(&mut self) -> Result<Vec<i64>, InterpError> {
        let g = self.g;
        let shape = self.shape;
        self.enter(shape.entry)?;
        loop {
            let c = self.cur;
            for &p in &shape.pinned[c.index()] {
                self.demand(p)?;
            }
            let Some((next, slot)) = shape.succ[c.index()] else {
                return Err(InterpError::BadGraph {
                    node: Some(c),
                    reason: "control point without a live successor",
                });
            };
            match g.op(next) {
                Op::If => {
                    let cond = self.demand(self.input(next, 1)?)?;
                    let which = usize::from(cond == 0);
                    let Some(target) = shape.if_projs[next.index()][which] else {
                        return Err(InterpError::BadGraph {
                            node: Some(next),
                            reason: "the taken branch has no live projection",
                        });
                    };
                    self.enter(target)?;
                }
                Op::Return => {
                    let mem = self.demand(self.input(next, 1)?)?;
                    if self.linear && mem != self.latest {
                        return Err(InterpError::NonLinearMemory { node: next });
                    }
                    // One value without a signature, one per result with one.
                    let end = match g.signature() {
                        Some(_) => g.arity(next),
                        None => 3,
                    };
                    let mut values = Vec::with_capacity(end.saturating_sub(2));
                    for i in 2..end {
                        values.push(self.demand(self.input(next, i)?)?);
                    }
                    return Ok(values);
                }
                Op::Guard { .. } => {
                    // A guard is a control point of its own: what it
                    // protects is pinned to it and runs only if it passes.
                    if self.demand(self.input(next, 1)?)? != 0 {
                        self.enter(next)?;
                        continue;
                    }
                    return Err(self.deopt(next)?);
                }
                Op::Region | Op::Loop { .. } => {
                    // All phis read their inputs in the predecessor's visit,
                    // then take them at once.
                    let phis = &shape.phis[next.index()];
                    let mut values = Vec::with_capacity(phis.len());
                    for &phi in phis {
                        let v = self.input(phi, 1 + slot)?;
                        values.push(self.demand(v)?);
                    }
                    self.enter(next)?;
                    for (&phi, v) in phis.iter().zip(values) {
                        self.val[phi.index()] = v;
                        self.stamp[phi.index()] = self.gen;
                    }
                }
                _ => {
                    return Err(InterpError::BadGraph {
                        node: Some(next),
                        reason: "unexpected control user",
                    })
                }
            }
        }
    }

    /// The state a failing `guard` hands over: its frame's values, laid
    /// out as the deopt buffer holds them ([`crate::frame::frame_chain`]).
    fn deopt(&mut self, guard: NodeId) -> Result<InterpError, InterpError> {
        let frame = self.input(guard, 2)?;
        let chain = frame_chain(self.g, frame).map_err(|reason| InterpError::BadGraph {
            node: Some(guard),
            reason,
        })?;
        let mem = self.demand(chain.mem)?;
        if self.linear && mem != self.latest {
            return Err(InterpError::NonLinearMemory { node: frame });
        }
        let mut values = Vec::with_capacity(chain.values.len());
        for &v in &chain.values {
            values.push(self.demand(v)?);
        }
        Ok(InterpError::Deopt {
            guard,
            resume: chain.frames[0].resume,
            values,
        })
    }

    fn enter(&mut self, c: NodeId) -> Result<(), InterpError> {
        self.burn()?;
        self.gen += 1;
        self.cur = c;
        Ok(())
    }

    /// Whether `n`'s stored value may be used now.
    fn ready(&self, n: NodeId) -> Result<bool, InterpError> {
        let s = self.stamp[n.index()];
        match self.g.op(n) {
            Op::Const { .. } => Ok(true),
            Op::Phi { .. } => {
                if s == NEVER {
                    Err(InterpError::Undefined { node: n })
                } else {
                    Ok(true)
                }
            }
            Op::Load { .. }
            | Op::Store { .. }
            | Op::Call { .. }
            | Op::CallDirect { .. }
            | Op::CallIndirect { .. }
            | Op::ClassLoad { .. }
            | Op::ClassStore { .. } => {
                if self.input(n, 0)? == self.cur {
                    Ok(s == self.gen)
                } else if s == NEVER {
                    // Defined in another control point that has not run.
                    Err(InterpError::Undefined { node: n })
                } else {
                    Ok(true)
                }
            }
            _ => Ok(s == self.gen),
        }
    }

    /// The inputs of `n` that carry values (not control).
    fn value_inputs(&self, n: NodeId) -> Result<std::ops::Range<usize>, InterpError> {
        let arity = self.g.arity(n);
        let first = match self.g.op(n) {
            Op::Load { .. }
            | Op::Store { .. }
            | Op::Call { .. }
            | Op::CallDirect { .. }
            | Op::CallIndirect { .. }
            | Op::ClassLoad { .. }
            | Op::ClassStore { .. } => 1,
            // Start's projections read the arguments, not Start.
            Op::Proj { .. } if self.g.op(self.input(n, 0)?) == Op::Start => return Ok(0..0),
            Op::Proj { .. } => 0,
            Op::Phi { .. } | Op::Const { .. } => return Ok(0..0),
            op if op.is_control() => {
                return Err(InterpError::BadGraph {
                    node: Some(n),
                    reason: "a control node used as a value",
                })
            }
            _ => 0,
        };
        Ok(first.min(arity)..arity)
    }

    /// `n`'s value now, computing what it needs with an explicit stack.
    fn demand(&mut self, root: NodeId) -> Result<i64, InterpError> {
        if self.ready(root)? {
            return self.value(root);
        }
        let mut stack: Vec<(NodeId, bool)> = vec![(root, false)];
        let result = self.demand_loop(&mut stack);
        for &(n, _) in &stack {
            self.in_progress[n.index()] = false;
        }
        result?;
        self.value(root)
    }

    /// Entries are `(node, expanded)`. A node may be pushed more than once
    /// (e.g. `x - x`); a later entry finds it computed and is dropped. An
    /// unexpanded entry for a node that is being expanded below it is a
    /// cycle.
    fn demand_loop(&mut self, stack: &mut Vec<(NodeId, bool)>) -> Result<(), InterpError> {
        while let Some(&(n, expanded)) = stack.last() {
            if !expanded {
                if self.ready(n)? {
                    stack.pop();
                    continue;
                }
                if self.in_progress[n.index()] {
                    return Err(InterpError::BadGraph {
                        node: Some(n),
                        reason: "a cycle that does not pass through a phi",
                    });
                }
                self.in_progress[n.index()] = true;
                if let Some(top) = stack.last_mut() {
                    top.1 = true;
                }
                for i in self.value_inputs(n)? {
                    let x = self.g.input(n, i);
                    if !self.ready(x)? {
                        stack.push((x, false));
                    }
                }
            } else {
                self.burn()?;
                self.compute(n)?;
                self.stamp[n.index()] = self.gen;
                self.in_progress[n.index()] = false;
                stack.pop();
            }
        }
        Ok(())
    }

    /// The stored value of a ready node.
    fn value(&self, n: NodeId) -> Result<i64, InterpError> {
        match self.g.op(n) {
            Op::Const { value } => Ok(self.g.ty(n).normalize(value)),
            _ => Ok(self.val[n.index()]),
        }
    }

    /// Value of input `i` of `n` (ready by now).
    fn arg(&self, n: NodeId, i: usize) -> Result<i64, InterpError> {
        self.value(self.input(n, i)?)
    }

    /// Computes `n` from its ready inputs, performing its effect.
    fn compute(&mut self, n: NodeId) -> Result<(), InterpError> {
        let g = self.g;
        let ty = g.ty(n);
        let v = match g.op(n) {
            Op::Bin(op) => eval_bin(op, ty, self.arg(n, 0)?, self.arg(n, 1)?),
            Op::Un(op) => eval_un(op, ty, self.arg(n, 0)?),
            Op::Cmp(op) => {
                let t = g.ty(self.input(n, 0)?);
                i64::from(eval_cmp(op, t, self.arg(n, 0)?, self.arg(n, 1)?))
            }
            Op::Conv(op) => {
                let from = g.ty(self.input(n, 0)?);
                eval_conv(op, from, ty, self.arg(n, 0)?)
            }
            Op::FBin(op) => eval_fbin(op, ty, self.arg(n, 0)?, self.arg(n, 1)?),
            Op::FUn(op) => eval_fun(op, ty, self.arg(n, 0)?),
            Op::FCmp(op) => {
                let t = g.ty(self.input(n, 0)?);
                i64::from(eval_fcmp(op, t, self.arg(n, 0)?, self.arg(n, 1)?))
            }
            Op::FConv(op) => {
                let from = g.ty(self.input(n, 0)?);
                eval_fconv(op, from, ty, self.arg(n, 0)?)
            }
            Op::FFits { op, bits } => {
                let t = g.ty(self.input(n, 0)?);
                i64::from(eval_ffits(op, bits, t, self.arg(n, 0)?))
            }
            Op::Select => {
                if self.arg(n, 0)? != 0 {
                    self.arg(n, 1)?
                } else {
                    self.arg(n, 2)?
                }
            }
            Op::PtrAdd => self.arg(n, 0)?.wrapping_add(self.arg(n, 1)?),
            Op::Proj { index } => self.project(n, index)?,
            // Alias classes are promises for the optimizer; memory is one.
            Op::Load { offset } | Op::ClassLoad { offset, .. } => {
                let version = self.arg(n, 1)?;
                let addr = self.arg(n, 2)?.wrapping_add(i64::from(offset));
                ty.normalize(self.load(n, version, addr, value_bytes(n, ty)?)?)
            }
            Op::Store { offset } | Op::ClassStore { offset, .. } => {
                self.check_newest(n, self.arg(n, 1)?)?;
                let addr = self.arg(n, 2)?.wrapping_add(i64::from(offset));
                let vty = g.ty(self.input(n, 3)?);
                let value = self.arg(n, 3)?;
                self.store(n, addr, value_bytes(n, vty)?, value)?;
                self.latest
            }
            Op::Call { func } => {
                self.check_newest(n, self.arg(n, 1)?)?;
                let mut args = Vec::with_capacity(g.arity(n).saturating_sub(2));
                for i in 2..g.arity(n) {
                    args.push(self.arg(n, i)?);
                }
                let r = (self.hosts)(func, &args);
                self.latest += 1;
                self.call_mem[n.index()] = self.latest;
                self.finish_call(n, r)
            }
            Op::CallDirect { callee, sig } => {
                self.check_newest(n, self.arg(n, 1)?)?;
                let module = self.calls.module;
                let f = Self::callee(module, n, sig, i64::from(callee), Some(callee as usize))?;
                let r = self.call_function(n, f, 2)?;
                self.finish_call(n, r)
            }
            Op::CallIndirect { sig } => {
                self.check_newest(n, self.arg(n, 1)?)?;
                let target = self.arg(n, 2)?;
                let addresses = self.calls.module.addresses;
                let index = addresses.iter().position(|&a| a == target);
                let f = Self::callee(self.calls.module, n, sig, target, index)?;
                let r = self.call_function(n, f, 3)?;
                self.finish_call(n, r)
            }
            _ => {
                return Err(InterpError::BadGraph {
                    node: Some(n),
                    reason: "this node has no value",
                })
            }
        };
        self.val[n.index()] = v;
        Ok(())
    }

    fn project(&self, n: NodeId, index: u32) -> Result<i64, InterpError> {
        let g = self.g;
        let t = self.input(n, 0)?;
        let ty = g.ty(n);
        match g.op(t) {
            Op::Start if t == self.shape.start => match index {
                1 => Ok(0),
                i if i >= 2 => {
                    let a = self.args.get((i - 2) as usize).copied().ok_or(
                        InterpError::MissingArg {
                            node: n,
                            index: i - 2,
                        },
                    )?;
                    Ok(ty.normalize(a))
                }
                _ => Err(InterpError::BadGraph {
                    node: Some(n),
                    reason: "the control projection used as a value",
                }),
            },
            op if op.is_call() => match index {
                0 => Ok(self.call_mem[t.index()]),
                i => {
                    let r = self.results.get(&t).and_then(|r| r.get(i as usize - 1));
                    let r = r.copied().ok_or(InterpError::BadGraph {
                        node: Some(n),
                        reason: "the call returned fewer results",
                    })?;
                    Ok(ty.normalize(r))
                }
            },
            _ => Err(InterpError::BadGraph {
                node: Some(n),
                reason: "a projection of something without values",
            }),
        }
    }

    /// Keeps call `n`'s results; its value is the first (0 if none).
    fn finish_call(&mut self, n: NodeId, results: Vec<i64>) -> i64 {
        let first = results.first().copied().unwrap_or(0);
        self.results.insert(n, results);
        first
    }

    /// The module function `index` (found for `callee`, a number or an
    /// address) that call `n` of signature `sig` runs.
    fn callee<'m>(
        module: Module<'m>,
        n: NodeId,
        sig: crate::sig::Signature,
        callee: i64,
        index: Option<usize>,
    ) -> Result<&'m Graph, InterpError> {
        let bad = |reason| InterpError::BadCallee {
            node: n,
            callee,
            reason,
        };
        let f = index
            .and_then(|i| module.functions.get(i))
            .ok_or(bad("no such function in the module"))?;
        if f.signature() != Some(sig) {
            return Err(bad("the callee has another signature"));
        }
        Ok(f)
    }

    /// Runs `callee` on call `n`'s arguments (its inputs from `args_from`)
    /// on this memory, and records what it wrote as one new memory version
    /// (so that loads of older versions still read the bytes before it).
    fn call_function(
        &mut self,
        n: NodeId,
        callee: &Graph,
        args_from: usize,
    ) -> Result<Vec<i64>, InterpError> {
        if self.calls.depth >= MAX_CALL_DEPTH {
            return Err(InterpError::CallTooDeep { node: n });
        }
        let mut args = Vec::with_capacity(self.g.arity(n).saturating_sub(args_from));
        for i in args_from..self.g.arity(n) {
            args.push(self.arg(n, i)?);
        }
        let before = self.mem.bytes.clone();
        let calls = Calls {
            module: self.calls.module,
            depth: self.calls.depth + 1,
        };
        let results = run_function(
            callee,
            &args,
            self.mem,
            self.hosts,
            &mut self.fuel,
            self.linear,
            calls,
        )?;
        self.latest += 1;
        self.call_mem[n.index()] = self.latest;
        let base = self.mem.base;
        let mut at = 0;
        while at < before.len() {
            let len = (before.len() - at).min(8);
            if before[at..at + len] != self.mem.bytes[at..at + len] {
                let mut old = [0u8; 8];
                old[..len].copy_from_slice(&before[at..at + len]);
                self.undo
                    .push_back((self.latest, base + at as i64, old, len as u32));
                if self.undo.len() > UNDO_LOG_LIMIT {
                    if let Some((made, ..)) = self.undo.pop_front() {
                        self.floor = made;
                    }
                }
            }
            at += len;
        }
        Ok(results)
    }

    fn check_newest(&self, n: NodeId, version: i64) -> Result<(), InterpError> {
        if !self.linear || version == self.latest {
            Ok(())
        } else {
            Err(InterpError::NonLinearMemory { node: n })
        }
    }

    /// Reads `len` bytes at `addr` as of memory `version`, little-endian.
    fn load(&self, n: NodeId, version: i64, addr: i64, len: u32) -> Result<i64, InterpError> {
        let oob = InterpError::OutOfBounds { node: n, addr, len };
        let r = self.mem.range(addr, len).ok_or(oob)?;
        let mut buf = [0u8; 8];
        buf[..len as usize].copy_from_slice(&self.mem.bytes[r]);
        if version != self.latest {
            if version < self.floor || version > self.latest {
                return Err(InterpError::StaleMemory { node: n });
            }
            // Undo newer writes, newest first: the oldest one wins, and it
            // holds the bytes as they were at `version`.
            for &(made, waddr, old, wlen) in self.undo.iter().rev() {
                if made <= version {
                    break;
                }
                for k in 0..len as i64 {
                    let a = addr.wrapping_add(k);
                    let d = a.wrapping_sub(waddr);
                    if (0..i64::from(wlen)).contains(&d) {
                        buf[k as usize] = old[d as usize];
                    }
                }
            }
        }
        Ok(i64::from_le_bytes(buf))
    }

    /// Writes the low `len` bytes of `value` at `addr`: a new version.
    fn store(&mut self, n: NodeId, addr: i64, len: u32, value: i64) -> Result<(), InterpError> {
        let oob = InterpError::OutOfBounds { node: n, addr, len };
        let r = self.mem.range(addr, len).ok_or(oob)?;
        let mut old = [0u8; 8];
        old[..len as usize].copy_from_slice(&self.mem.bytes[r.clone()]);
        self.mem.bytes[r].copy_from_slice(&value.to_le_bytes()[..len as usize]);
        self.latest += 1;
        self.undo.push_back((self.latest, addr, old, len));
        if self.undo.len() > UNDO_LOG_LIMIT {
            if let Some((made, ..)) = self.undo.pop_front() {
                self.floor = made;
            }
        }
        Ok(())
    }
}

/// Bytes a load or store of `ty` moves.
fn value_bytes(n: NodeId, ty: Type) -> Result<u32, InterpError> {
    ty.bytes().ok_or(InterpError::BadGraph {
        node: Some(n),
        reason: "a memory access of a non-value type",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinOp, CmpOp, ConvOp};

    const BASE: i64 = 0x1000;

    fn no_hosts() -> impl FnMut(u32, &[i64]) -> i64 {
        |_, _| panic!("no host calls expected")
    }

    fn run(g: &Graph, args: &[i64], mem: &mut Memory) -> Result<i64, InterpError> {
        eval(g, args, mem, &mut no_hosts(), 100_000)
    }

    /// Builds `f(a: i32, b: i32)` returning `expr(a, b)`, peepholes off so
    /// the interpreter, not the folder, computes.
    fn binary(op: BinOp, ty: Type, a: i64, b: i64) -> i64 {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, ty).unwrap();
        let y = g.param(e.start, 1, ty).unwrap();
        let r = g.bin(op, x, y).unwrap();
        let ret = g.ret(e.ctrl, e.mem, r).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        run(&g, &[a, b], &mut Memory::new(BASE, 0)).unwrap()
    }

    #[test]
    fn arithmetic_wraps_at_the_type_width() {
        assert_eq!(binary(BinOp::Add, Type::I8, 127, 1), -128);
        assert_eq!(
            binary(BinOp::Mul, Type::I16, 300, 300),
            (90_000i64 as i16) as i64
        );
        assert_eq!(binary(BinOp::Ushr, Type::I8, -1, 4), 15);
        assert_eq!(binary(BinOp::Sshr, Type::I32, -16, 2), -4);
        assert_eq!(binary(BinOp::Shl, Type::I32, 1, 33), 2);
        assert_eq!(binary(BinOp::Sub, Type::I64, i64::MIN, 1), i64::MAX);
    }

    #[test]
    fn division_by_zero_and_min_by_minus_one_are_defined() {
        assert_eq!(binary(BinOp::Sdiv, Type::I32, 7, 0), 0);
        assert_eq!(binary(BinOp::Srem, Type::I32, 7, 0), 7);
        assert_eq!(binary(BinOp::Udiv, Type::I16, -1, 0), 0);
        assert_eq!(binary(BinOp::Urem, Type::I16, -1, 0), -1);
        assert_eq!(binary(BinOp::Sdiv, Type::I64, i64::MIN, -1), i64::MIN);
        assert_eq!(binary(BinOp::Srem, Type::I64, i64::MIN, -1), 0);
        assert_eq!(binary(BinOp::Sdiv, Type::I8, -128, -1), -128);
        assert_eq!(binary(BinOp::Sdiv, Type::I8, -100, 7), -14);
        assert_eq!(binary(BinOp::Udiv, Type::I8, -100, 7), 22);
    }

    /// Loads two floats of type `ty` from memory, computes `f(a, b)` and
    /// stores it after them: floats reach and leave the interpreter as bytes.
    fn float_through_memory(
        ty: Type,
        a: f64,
        b: f64,
        f: impl Fn(&mut Graph, NodeId, NodeId) -> NodeId,
    ) -> Vec<u8> {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let w = ty.bytes().unwrap() as i32;
        let x = g.load(e.ctrl, e.mem, p, 0, ty).unwrap();
        let y = g.load(e.ctrl, e.mem, p, w, ty).unwrap();
        let r = f(&mut g, x, y);
        let m = g.store(e.ctrl, e.mem, p, 2 * w, r).unwrap();
        let zero = g.iconst(Type::I8, 0).unwrap();
        let ret = g.ret(e.ctrl, m, zero).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        let mut bytes = Vec::new();
        if ty == Type::F32 {
            bytes.extend_from_slice(&(a as f32).to_le_bytes());
            bytes.extend_from_slice(&(b as f32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&a.to_le_bytes());
            bytes.extend_from_slice(&b.to_le_bytes());
        }
        bytes.resize(bytes.len() + 8, 0);
        let mut m = Memory::from_bytes(BASE, bytes);
        assert_eq!(run(&g, &[BASE], &mut m), Ok(0));
        m.bytes()[2 * w as usize..].to_vec()
    }

    #[test]
    fn float_operations_on_values_from_memory() {
        use crate::op::{FBinOp, FCmpOp, FConvOp, FUnOp};
        let f64_at = |b: &[u8]| f64::from_le_bytes(b[..8].try_into().unwrap());
        let f32_at = |b: &[u8]| f32::from_le_bytes(b[..4].try_into().unwrap());
        let add = |g: &mut Graph, x, y| g.fbin(FBinOp::Add, x, y).unwrap();
        assert_eq!(
            f64_at(&float_through_memory(Type::F64, 0.5, 0.25, add)),
            0.75
        );
        assert_eq!(
            f32_at(&float_through_memory(Type::F32, 3e38, 3e38, add)),
            f32::INFINITY
        );
        let min = |g: &mut Graph, x, y| g.fbin(FBinOp::Min, x, y).unwrap();
        let r = float_through_memory(Type::F64, 0.0, -0.0, min);
        assert_eq!(f64_at(&r).to_bits(), (-0.0f64).to_bits());
        let sub = |g: &mut Graph, x, y| g.fbin(FBinOp::Sub, x, y).unwrap();
        let r = float_through_memory(Type::F32, f64::INFINITY, f64::INFINITY, sub);
        assert_eq!(f32_at(&r).to_bits(), crate::float::CANONICAL_NAN_F32);
        let sqrt = |g: &mut Graph, x, _| g.fun(FUnOp::Sqrt, x).unwrap();
        assert_eq!(
            f64_at(&float_through_memory(Type::F64, 2.0, 0.0, sqrt)),
            2f64.sqrt()
        );
        let lt = |g: &mut Graph, x, y| g.fcmp(FCmpOp::Ult, x, y).unwrap();
        assert_eq!(float_through_memory(Type::F64, f64::NAN, 1.0, lt)[0], 1);
        assert_eq!(float_through_memory(Type::F64, 2.0, 1.0, lt)[0], 0);
        let to_int = |g: &mut Graph, x, _| g.fconv(FConvOp::FToSSat, Type::I32, x).unwrap();
        let r = float_through_memory(Type::F64, -3e9, 0.0, to_int);
        assert_eq!(i32::from_le_bytes(r[..4].try_into().unwrap()), i32::MIN);
        let demote = |g: &mut Graph, x, _| g.fconv(FConvOp::Demote, Type::F32, x).unwrap();
        let r = float_through_memory(Type::F64, 0.1, 0.0, demote);
        assert_eq!(f32_at(&r), 0.1f32);
    }

    #[test]
    fn cmp_conv_select() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I8).unwrap();
        let zero = g.iconst(Type::I8, 0).unwrap();
        let neg = g.cmp(CmpOp::Slt, x, zero).unwrap();
        let u = g.conv(ConvOp::Uext, Type::I32, x).unwrap();
        let s = g.conv(ConvOp::Sext, Type::I32, x).unwrap();
        let r = g.select(neg, u, s).unwrap();
        let ret = g.ret(e.ctrl, e.mem, r).unwrap();
        g.finish(&[ret]).unwrap();
        let mut m = Memory::new(BASE, 0);
        assert_eq!(run(&g, &[-1], &mut m), Ok(255));
        assert_eq!(run(&g, &[5], &mut m), Ok(5));
    }

    #[test]
    fn diamond_picks_the_taken_side() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let ten = g.iconst(Type::I64, 10).unwrap();
        let c = g.cmp(CmpOp::Sgt, x, ten).unwrap();
        let (t, f) = g.branch(e.ctrl, c).unwrap();
        let a = g.add(x, ten).unwrap();
        let b = g.sub(x, ten).unwrap();
        let r = g.region(&[t, f]).unwrap();
        let p = g.phi(r, Type::I64, &[a, b]).unwrap();
        let ret = g.ret(r, e.mem, p).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        let mut m = Memory::new(BASE, 0);
        assert_eq!(run(&g, &[11], &mut m), Ok(21));
        assert_eq!(run(&g, &[3], &mut m), Ok(-7));
    }

    /// `s = 0; i = 1; while i <= 10 { s += i; i += 1 }; return s`.
    fn sum_loop() -> Graph {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let zero = g.iconst(Type::I64, 0).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let ten = g.iconst(Type::I64, 10).unwrap();
        let lp = g.loop_header(1, e.ctrl).unwrap();
        let s = g.loop_phi(lp, 1, Type::I64, zero).unwrap();
        let i = g.loop_phi(lp, 2, Type::I64, one).unwrap();
        let c = g.cmp(CmpOp::Sle, i, ten).unwrap();
        let (body, exit) = g.branch(lp, c).unwrap();
        let s2 = g.add(s, i).unwrap();
        let i2 = g.add(i, one).unwrap();
        g.set_back_input(lp, body).unwrap();
        g.set_back_input(s, s2).unwrap();
        g.set_back_input(i, i2).unwrap();
        let ret = g.ret(exit, e.mem, s).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        g
    }

    #[test]
    fn loop_sums_one_to_ten() {
        let g = sum_loop();
        assert_eq!(run(&g, &[], &mut Memory::new(BASE, 0)), Ok(55));
    }

    #[test]
    fn loop_phis_update_simultaneously() {
        // (a, b) = (b, a) three times, starting from (1, 2): a ends as 2.
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let two = g.iconst(Type::I64, 2).unwrap();
        let three = g.iconst(Type::I64, 3).unwrap();
        let zero = g.iconst(Type::I64, 0).unwrap();
        let lp = g.loop_header(1, e.ctrl).unwrap();
        let a = g.loop_phi(lp, 1, Type::I64, one).unwrap();
        let b = g.loop_phi(lp, 2, Type::I64, two).unwrap();
        let i = g.loop_phi(lp, 3, Type::I64, zero).unwrap();
        let c = g.cmp(CmpOp::Slt, i, three).unwrap();
        let (body, exit) = g.branch(lp, c).unwrap();
        let i2 = g.add(i, one).unwrap();
        g.set_back_input(lp, body).unwrap();
        g.set_back_input(a, b).unwrap();
        g.set_back_input(b, a).unwrap();
        g.set_back_input(i, i2).unwrap();
        let ten = g.iconst(Type::I64, 10).unwrap();
        let a10 = g.bin(BinOp::Mul, a, ten).unwrap();
        let r = g.add(a10, b).unwrap();
        let ret = g.ret(exit, e.mem, r).unwrap();
        g.finish(&[ret]).unwrap();
        assert_eq!(run(&g, &[], &mut Memory::new(BASE, 0)), Ok(21));
    }

    #[test]
    fn load_store_and_old_memory_states() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let v = g.iconst(Type::I32, 0x0102_0304).unwrap();
        let m1 = g.store(e.ctrl, e.mem, p, 4, v).unwrap();
        // A load of the state before the store sees the old bytes.
        let old = g.load(e.ctrl, e.mem, p, 4, Type::I16).unwrap();
        let new = g.load(e.ctrl, m1, p, 5, Type::I16).unwrap();
        let old64 = g.conv(ConvOp::Uext, Type::I64, old).unwrap();
        let new64 = g.conv(ConvOp::Uext, Type::I64, new).unwrap();
        let k = g.iconst(Type::I64, 1 << 16).unwrap();
        let hi = g.bin(BinOp::Mul, new64, k).unwrap();
        let r = g.add(hi, old64).unwrap();
        let ret = g.ret(e.ctrl, m1, r).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        let mut m = Memory::from_bytes(BASE, vec![0xAA; 16]);
        assert_eq!(run(&g, &[BASE], &mut m), Ok(0x0203_AAAA));
        assert_eq!(&m.bytes()[4..8], &[4, 3, 2, 1]);
    }

    #[test]
    fn out_of_range_memory_is_an_error() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let x = g.load(e.ctrl, e.mem, p, 6, Type::I32).unwrap();
        let ret = g.ret(e.ctrl, e.mem, x).unwrap();
        g.finish(&[ret]).unwrap();
        let r = run(&g, &[BASE], &mut Memory::new(BASE, 8));
        assert!(
            matches!(r, Err(InterpError::OutOfBounds { len: 4, .. })),
            "{r:?}"
        );
        let r = run(&g, &[i64::MAX], &mut Memory::new(BASE, 8));
        assert!(matches!(r, Err(InterpError::OutOfBounds { .. })), "{r:?}");
        assert_eq!(
            run(&g, &[], &mut Memory::new(BASE, 8)),
            Err(InterpError::MissingArg { node: p, index: 0 })
        );
    }

    #[test]
    fn fuel_bounds_the_run() {
        let g = sum_loop();
        let mut m = Memory::new(BASE, 0);
        assert_eq!(
            eval(&g, &[], &mut m, &mut no_hosts(), 20),
            Err(InterpError::OutOfFuel)
        );
        // An infinite loop stops too.
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let lp = g.loop_header(1, e.ctrl).unwrap();
        let one = g.iconst(Type::I8, 1).unwrap();
        let (body, exit) = g.branch(lp, one).unwrap();
        g.set_back_input(lp, body).unwrap();
        let ret = g.ret(exit, e.mem, one).unwrap();
        g.finish(&[ret]).unwrap();
        assert_eq!(
            eval(&g, &[], &mut m, &mut no_hosts(), 10_000),
            Err(InterpError::OutOfFuel)
        );
    }

    #[test]
    fn host_calls_thread_memory() {
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let a = g.iconst(Type::I64, 20).unwrap();
        let (m1, r) = g.call(e.ctrl, e.mem, 7, &[a], Some(Type::I8)).unwrap();
        let ret = g.ret(e.ctrl, m1, r.unwrap()).unwrap();
        g.finish(&[ret]).unwrap();
        let mut seen = Vec::new();
        let mut host = |f: u32, args: &[i64]| {
            seen.push((f, args.to_vec()));
            args[0] + 236
        };
        let r = eval(&g, &[], &mut Memory::new(BASE, 0), &mut host, 100);
        assert_eq!(r, Ok(0)); // 256 wraps to 0 as an I8.
        assert_eq!(seen, vec![(7, vec![20])]);
    }

    #[test]
    fn forked_memory_is_reported() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let v = g.iconst(Type::I8, 1).unwrap();
        let m1 = g.store(e.ctrl, e.mem, p, 0, v).unwrap();
        let m2 = g.store(e.ctrl, e.mem, p, 1, v).unwrap();
        let x = g.load(e.ctrl, m2, p, 0, Type::I8).unwrap();
        let ret = g.ret(e.ctrl, m1, x).unwrap();
        g.finish(&[ret]).unwrap();
        let r = eval_linear(&g, &[BASE], &mut Memory::new(BASE, 4), &mut no_hosts(), 100);
        assert!(
            matches!(r, Err(InterpError::NonLinearMemory { .. })),
            "{r:?}"
        );
        // Machine order: both stores run, and the load, after them, sees
        // both bytes.
        let mut m = Memory::new(BASE, 4);
        assert_eq!(run(&g, &[BASE], &mut m), Ok(1));
        assert_eq!(m.bytes(), &[1, 1, 0, 0]);
    }

    /// Found by the fuzzer: `x - x` pushed `x` twice and was taken for a
    /// cycle.
    #[test]
    fn repeated_inputs_are_not_a_cycle() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let y = g.add(x, x).unwrap();
        let z = g.sub(y, y).unwrap();
        let w = g.add(z, y).unwrap();
        let ret = g.ret(e.ctrl, e.mem, w).unwrap();
        g.finish(&[ret]).unwrap();
        assert_eq!(run(&g, &[21], &mut Memory::new(BASE, 0)), Ok(42));
    }

    #[test]
    fn deep_expression_does_not_overflow() {
        let mut g = Graph::new();
        g.set_simplify_on_build(false);
        let e = g.entry().unwrap();
        let mut x = g.param(e.start, 0, Type::I64).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        for _ in 0..200_000 {
            x = g.add(x, one).unwrap();
        }
        let ret = g.ret(e.ctrl, e.mem, x).unwrap();
        g.finish(&[ret]).unwrap();
        let r = eval(
            &g,
            &[5],
            &mut Memory::new(BASE, 0),
            &mut no_hosts(),
            1 << 20,
        );
        assert_eq!(r, Ok(200_005));
    }
}

#[cfg(test)]
mod call_tests {
    use super::*;
    use crate::op::BinOp;
    use crate::sig::Signature;

    const BASE: i64 = 0x1000;

    fn sig(params: &[Type], results: &[Type]) -> Signature {
        Signature::new(params, results).unwrap()
    }

    fn no_hosts() -> impl FnMut(u32, &[i64]) -> Vec<i64> {
        |_, _| panic!("no host calls expected")
    }

    /// `f(p, a)`: stores `a + 1` at `p`, returns `a * 3`.
    fn store_and_triple() -> Graph {
        let mut g = Graph::new();
        g.set_signature(sig(&[Type::Ptr, Type::I64], &[Type::I64]));
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let a = g.param(e.start, 1, Type::I64).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let three = g.iconst(Type::I64, 3).unwrap();
        let a1 = g.add(a, one).unwrap();
        let m = g.store(e.ctrl, e.mem, p, 0, a1).unwrap();
        let r = g.bin(BinOp::Mul, a, three).unwrap();
        let ret = g.ret_values(e.ctrl, m, &[r]).unwrap();
        g.finish(&[ret]).unwrap();
        g
    }

    #[test]
    fn direct_call_runs_the_callee_on_the_same_memory() {
        // f0(p, x): store 5 at p; r = f1(p, x); returns (r + p[0] after the
        // call, p[0] in the memory state before the call).
        let mut g = Graph::new();
        let s1 = sig(&[Type::Ptr, Type::I64], &[Type::I64]);
        g.set_signature(sig(&[Type::Ptr, Type::I64], &[Type::I64, Type::I64]));
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let x = g.param(e.start, 1, Type::I64).unwrap();
        let five = g.iconst(Type::I64, 5).unwrap();
        let m0 = g.store(e.ctrl, e.mem, p, 0, five).unwrap();
        let (m1, r) = g.call_direct(e.ctrl, m0, 1, s1, &[p, x]).unwrap();
        let after = g.load(e.ctrl, m1, p, 0, Type::I64).unwrap();
        let before = g.load(e.ctrl, m0, p, 0, Type::I64).unwrap();
        let sum = g.add(r[0], after).unwrap();
        let ret = g.ret_values(e.ctrl, m1, &[sum, before]).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        let functions = [g, store_and_triple()];
        let module = Module {
            functions: &functions,
            addresses: &[],
        };
        let mut mem = Memory::new(BASE, 16);
        let r = eval_module(
            module,
            0,
            &[BASE, 10],
            &mut mem,
            &mut no_hosts(),
            1000,
            true,
        );
        assert_eq!(r, Ok(vec![30 + 11, 5]));
        assert_eq!(mem.bytes()[0], 11);
    }

    /// `f0(target, x)`: `(a, b) = call_indirect target(x)`; returns `a - b`.
    fn indirect_caller(callee: Signature) -> Graph {
        let mut g = Graph::new();
        g.set_signature(sig(&[Type::Ptr, Type::I64], &[Type::I64]));
        let e = g.entry().unwrap();
        let t = g.param(e.start, 0, Type::Ptr).unwrap();
        let x = g.param(e.start, 1, Type::I64).unwrap();
        let (m, r) = g.call_indirect(e.ctrl, e.mem, t, callee, &[x]).unwrap();
        let d = g.sub(r[0], r[1]).unwrap();
        let ret = g.ret_values(e.ctrl, m, &[d]).unwrap();
        g.finish(&[ret]).unwrap();
        g
    }

    /// `f(x) = (x * 2, x + 1)`.
    fn two_results() -> Graph {
        let mut g = Graph::new();
        g.set_signature(sig(&[Type::I64], &[Type::I64, Type::I64]));
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let d = g.add(x, x).unwrap();
        let one = g.iconst(Type::I64, 1).unwrap();
        let x1 = g.add(x, one).unwrap();
        let ret = g.ret_values(e.ctrl, e.mem, &[d, x1]).unwrap();
        g.finish(&[ret]).unwrap();
        g
    }

    #[test]
    fn indirect_call_finds_the_callee_by_address() {
        let s = sig(&[Type::I64], &[Type::I64, Type::I64]);
        let functions = [indirect_caller(s), two_results()];
        let module = Module {
            functions: &functions,
            addresses: &[0x100, 0x200],
        };
        let mut mem = Memory::new(BASE, 0);
        let mut run = |target| {
            eval_module(
                module,
                0,
                &[target, 7],
                &mut mem,
                &mut no_hosts(),
                1000,
                true,
            )
        };
        assert_eq!(run(0x200), Ok(vec![14 - 8]));
        // No function there; a function of another signature there.
        assert!(matches!(
            run(0x300),
            Err(InterpError::BadCallee { callee: 0x300, .. })
        ));
        assert!(matches!(
            run(0x100),
            Err(InterpError::BadCallee { callee: 0x100, reason, .. }) if reason.contains("signature")
        ));
    }

    #[test]
    fn host_calls_return_several_results() {
        let mut g = Graph::new();
        g.set_signature(sig(&[Type::I32], &[Type::I32, Type::I8]));
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I32).unwrap();
        let (m, r) = g
            .call_host(e.ctrl, e.mem, 3, &[x], &[Type::I32, Type::I8])
            .unwrap();
        let ret = g.ret_values(e.ctrl, m, &[r[0], r[1]]).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        let functions = [g];
        let module = Module {
            functions: &functions,
            addresses: &[],
        };
        let mut hosts = |f: u32, a: &[i64]| {
            assert_eq!(f, 3);
            vec![a[0] + 1, a[0] * 2]
        };
        let mut mem = Memory::new(BASE, 0);
        // Results are normalized to their projections' types.
        let r = eval_module(module, 0, &[200], &mut mem, &mut hosts, 100, true);
        assert_eq!(r, Ok(vec![201, -112]));
        // A host that gives fewer results than the graph projects.
        let mut short = |_: u32, _: &[i64]| vec![1];
        let r = eval_module(module, 0, &[200], &mut mem, &mut short, 100, true);
        assert!(matches!(r, Err(InterpError::BadGraph { .. })), "{r:?}");
    }

    #[test]
    fn a_function_may_return_nothing() {
        // f0(p) calls f1(p), which stores 9 at p and returns nothing.
        let s = sig(&[Type::Ptr], &[]);
        let mut callee = Graph::new();
        callee.set_signature(s);
        let e = callee.entry().unwrap();
        let p = callee.param(e.start, 0, Type::Ptr).unwrap();
        let nine = callee.iconst(Type::I8, 9).unwrap();
        let m = callee.store(e.ctrl, e.mem, p, 0, nine).unwrap();
        let ret = callee.ret_values(e.ctrl, m, &[]).unwrap();
        callee.finish(&[ret]).unwrap();
        let mut g = Graph::new();
        g.set_signature(s);
        let e = g.entry().unwrap();
        let p = g.param(e.start, 0, Type::Ptr).unwrap();
        let (m, r) = g.call_direct(e.ctrl, e.mem, 1, s, &[p]).unwrap();
        assert!(r.is_empty());
        let ret = g.ret_values(e.ctrl, m, &[]).unwrap();
        g.finish(&[ret]).unwrap();
        crate::verify(&g).unwrap();
        let functions = [g, callee];
        let module = Module {
            functions: &functions,
            addresses: &[],
        };
        let mut mem = Memory::new(BASE, 1);
        let r = eval_module(module, 0, &[BASE], &mut mem, &mut no_hosts(), 100, true);
        assert_eq!(r, Ok(vec![]));
        assert_eq!(mem.bytes(), &[9]);
    }

    #[test]
    fn recursion_and_work_are_bounded() {
        // f0(x) = f0(x): never returns.
        let mut g = Graph::new();
        let s = sig(&[Type::I64], &[Type::I64]);
        g.set_signature(s);
        let e = g.entry().unwrap();
        let x = g.param(e.start, 0, Type::I64).unwrap();
        let (m, r) = g.call_direct(e.ctrl, e.mem, 0, s, &[x]).unwrap();
        let ret = g.ret_values(e.ctrl, m, &[r[0]]).unwrap();
        g.finish(&[ret]).unwrap();
        let functions = [g];
        let module = Module {
            functions: &functions,
            addresses: &[],
        };
        let mut mem = Memory::new(BASE, 0);
        let r = eval_module(module, 0, &[1], &mut mem, &mut no_hosts(), 1 << 20, false);
        assert!(matches!(r, Err(InterpError::CallTooDeep { .. })), "{r:?}");
        // Fuel is shared by all the calls.
        let r = eval_module(module, 0, &[1], &mut mem, &mut no_hosts(), 20, false);
        assert_eq!(r, Err(InterpError::OutOfFuel));
        // A callee number outside the module.
        let module = Module {
            functions: &functions[..0],
            addresses: &[],
        };
        let r = eval_module(module, 0, &[1], &mut mem, &mut no_hosts(), 20, false);
        assert!(matches!(r, Err(InterpError::BadGraph { .. })), "{r:?}");
    }
}
