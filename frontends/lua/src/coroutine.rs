//! Coroutines: threads with their own value stack, call frames and open
//! upvalues, and the `coroutine` library.
//!
//! The interpreter works on the running thread's state, kept in the
//! [`Vm`]'s own fields (`stack`, `frames`, `top`, open upvalues) so the
//! dispatch loop never looks further. `resume` swaps the resumed thread's
//! saved [`ThreadState`] in (the resumer's goes into its own object) and
//! runs the interpreter loop; `yield` unwinds that loop with a
//! [`LuaError`] marked `yielded`, leaving the thread's frames as they are:
//! every frame's pc is saved, so the next `resume` writes the values it
//! passes as the results of the call that yielded and runs on from there.
//! A compiled frame would do the same (spill its registers into its window,
//! return to the loop).
//!
//! A yield can cross Lua-to-Lua calls and `pcall`s made from Lua code
//! (protected frames, no Rust recursion), and the Rust re-entries a
//! resumed thread can finish itself: a Lua metamethod called for an
//! instruction, `__pairs` called by `pairs` (`Vm::meta_calls`,
//! `Vm::finish_op`, as lua5.4's continuations). Not a library function
//! that re-entered the interpreter (a `table.sort` comparator): the thread
//! records the Rust nesting depth its loop runs at, and `yield` from any
//! other depth is lua5.4's "attempt to yield across a C-call boundary".
//! Each `resume`
//! nests one Rust call, counted against the same bound as every other
//! re-entry (lua5.4's "C stack overflow", returned by `resume`).

use crate::heap::UpRef;
use crate::stdlib::{arg, arg_error};
use crate::value::{CoRef, Value};
use crate::vm::{Frame, FrameKind, LResult, LuaError, Vm, MAX_C_DEPTH};
use crate::Value as V;

/// What `coroutine.status` says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CoStatus {
    Suspended,
    Running,
    /// It resumed another thread and waits for it.
    Normal,
    Dead,
}

/// A thread's execution state while it does not run.
#[derive(Default)]
pub struct ThreadState {
    pub stack: Vec<Value>,
    pub frames: Vec<Frame>,
    /// (stack slot, upvalue), by slot.
    pub open_upvals: Vec<(usize, UpRef)>,
    /// Slots of its to-be-closed variables.
    pub tbc: Vec<usize>,
    pub top: usize,
    /// Its protected frames (see `Vm::protected`).
    pub protected: u32,
}

/// How a `resume` ended.
pub enum Resumed {
    /// The thread yielded (it stays suspended); the values are in `transfer`.
    Yielded,
    /// Its body returned (it is dead); the values are in `transfer`.
    Returned,
    /// It could not be resumed, or died of this error.
    Failed(Value),
}

/// A thread object (the main thread is one too, for `coroutine.running`).
pub struct Coroutine {
    /// Saved while the thread does not run (empty while it does).
    pub state: ThreadState,
    pub status: CoStatus,
    /// The function to run, until the first resume.
    pub body: Option<Value>,
    /// Stack slots live while suspended (what the collector marks).
    pub live_top: usize,
    /// The Rust nesting depth (`Vm::c_depth`) its interpreter loop runs
    /// at: it can yield exactly there.
    pub depth: u32,
    /// `Vm::meta_calls` when it was resumed: the re-entries above `depth`
    /// that are finishable metamethod calls do not stop a yield.
    pub meta_base: u32,
    /// The error it died of, until `coroutine.close` reports it.
    pub error: Option<Value>,
}

impl Coroutine {
    pub fn main() -> Self {
        Coroutine {
            state: ThreadState::default(),
            status: CoStatus::Running,
            body: None,
            live_top: 0,
            depth: 0,
            meta_base: 0,
            error: None,
        }
    }

    fn new(body: Value) -> Self {
        Coroutine {
            state: ThreadState {
                stack: vec![Value::Nil; 64],
                ..ThreadState::default()
            },
            status: CoStatus::Suspended,
            body: Some(body),
            live_top: 0,
            depth: 0,
            meta_base: 0,
            error: None,
        }
    }
}

/// Installs the `coroutine` library.
pub fn open(vm: &mut Vm) {
    let t = crate::stdlib::new_lib(vm, "coroutine");
    crate::stdlib::reg(vm, t, "create", co_create);
    crate::stdlib::reg(vm, t, "resume", co_resume);
    crate::stdlib::reg(vm, t, "yield", co_yield);
    crate::stdlib::reg(vm, t, "status", co_status);
    crate::stdlib::reg(vm, t, "running", co_running);
    crate::stdlib::reg(vm, t, "isyieldable", co_isyieldable);
    crate::stdlib::reg(vm, t, "close", co_close);
    crate::stdlib::reg(vm, t, "wrap", co_wrap);
    vm.builtins.push((WRAP_RESUME, wrap_resume));
}

/// The name of the builtin `coroutine.wrap`'s functions call.
const WRAP_RESUME: &str = "wrap (resume)";

/// The builtin `coroutine.wrap`'s functions call.
fn wrap_resume_id(vm: &Vm) -> u32 {
    vm.builtins
        .iter()
        .position(|(n, _)| *n == WRAP_RESUME)
        .expect("registered by open") as u32
}

impl Vm {
    /// Saves the running thread's state into its object (with `status`)
    /// and makes `to` the running thread.
    fn switch_to(&mut self, to: CoRef, status: CoStatus) {
        let live_top = self.live_top();
        let from = self.cur_thread;
        let co = self.heap.coroutines.get_mut(from.0);
        std::mem::swap(&mut self.stack, &mut co.state.stack);
        std::mem::swap(&mut self.frames, &mut co.state.frames);
        std::mem::swap(&mut self.open_upvals, &mut co.state.open_upvals);
        std::mem::swap(&mut self.tbc, &mut co.state.tbc);
        co.state.top = self.top;
        co.state.protected = self.protected;
        co.live_top = live_top;
        co.status = status;
        let co = self.heap.coroutines.get_mut(to.0);
        std::mem::swap(&mut self.stack, &mut co.state.stack);
        std::mem::swap(&mut self.frames, &mut co.state.frames);
        std::mem::swap(&mut self.open_upvals, &mut co.state.open_upvals);
        std::mem::swap(&mut self.tbc, &mut co.state.tbc);
        self.top = co.state.top;
        self.protected = co.state.protected;
        co.status = CoStatus::Running;
        self.cur_thread = to;
    }

    /// Resumes `co` with the `nargs` values at `stack[args..]`; an `Err`
    /// is an exit (`os.exit`), which no thread catches.
    pub fn resume(&mut self, co: CoRef, args: usize, nargs: usize) -> LResult<Resumed> {
        let status = self.heap.coroutines.get(co.0).status;
        let refuse = match status {
            CoStatus::Suspended => None,
            CoStatus::Dead => Some("cannot resume dead coroutine"),
            _ => Some("cannot resume non-suspended coroutine"),
        };
        if let Some(msg) = refuse {
            return Ok(Resumed::Failed(self.heap.str_value(msg.as_bytes())));
        }
        if self.c_depth + self.protected >= MAX_C_DEPTH {
            return Ok(Resumed::Failed(self.heap.str_value(b"C stack overflow")));
        }
        self.transfer.clear();
        self.transfer
            .extend_from_slice(&self.stack[args..args + nargs]);
        let from = self.cur_thread;
        self.resumers.push(from);
        self.switch_to(co, CoStatus::Normal);
        self.c_depth += 1;
        let c = self.heap.coroutines.get_mut(co.0);
        c.depth = self.c_depth;
        c.meta_base = self.meta_calls;
        let flags = self.enter_lua_flags();
        let r = self.run_thread(co);
        self.restore_flags(flags);
        self.c_depth -= 1;
        let outcome = match r {
            Ok(()) => {
                // Returned: its results are the whole stack from slot 0.
                self.transfer.clear();
                self.transfer.extend_from_slice(&self.stack[..self.top]);
                Ok(Resumed::Returned)
            }
            Err(e) if e.yielded => Ok(Resumed::Yielded),
            Err(e) if e.catchable() => {
                self.error_trace = None;
                Ok(Resumed::Failed(e.value))
            }
            Err(e) => Err(e),
        };
        let dead = !matches!(outcome, Ok(Resumed::Yielded));
        if dead {
            self.close_upvals(0);
            self.frames.clear();
            self.tbc.clear();
            self.protected = 0;
        }
        self.resumers.pop();
        self.switch_to(
            from,
            if dead {
                CoStatus::Dead
            } else {
                CoStatus::Suspended
            },
        );
        let c = self.heap.coroutines.get_mut(co.0);
        if dead {
            c.state = ThreadState::default();
            c.live_top = 0;
            if let Ok(Resumed::Failed(v)) = &outcome {
                c.error = Some(*v);
            }
        }
        outcome
    }

    /// Runs the (just switched-in) thread `co` from its start or from
    /// the call that yielded, until it returns or yields.
    fn run_thread(&mut self, co: CoRef) -> LResult<()> {
        let n = self.transfer.len();
        if let Some(body) = self.heap.coroutines.get_mut(co.0).body.take() {
            self.ensure_stack(n + 2)?;
            self.stack[0] = body;
            self.stack[1..1 + n].copy_from_slice(&self.transfer);
            self.transfer.clear();
            self.top = 1 + n;
            return match body {
                Value::Func(cl) => {
                    self.push_lua_frame(0, cl, n, -1, FrameKind::Entry)?;
                    self.execute()?;
                    Ok(())
                }
                _ => {
                    // A library function (or a callable) as the body: called
                    // once, it cannot yield.
                    self.call_at(0, n, -1)?;
                    Ok(())
                }
            };
        }
        // The call that yielded gets the values as its results.
        let (func, want) = self.yield_site();
        self.ensure_stack(func + n + 2)?;
        self.stack[func..func + n].copy_from_slice(&self.transfer);
        self.transfer.clear();
        self.place_results(func, func, n, want);
        // Metamethod calls the yield crossed have lost their Rust callers:
        // when one returns (the loop stops at its entry frame), its
        // instruction is finished here; an error in one goes on unwinding
        // into the frames below it.
        let mut r = self.execute();
        loop {
            match r {
                Ok(()) if self.frames.is_empty() => return Ok(()),
                Ok(()) => r = self.finish_op().and_then(|()| self.execute()),
                Err(e) if e.yielded || self.frames.is_empty() => return Err(e),
                Err(e) => r = self.catch(e).and_then(|()| self.execute()),
            }
        }
    }

    /// Completes the running frame's current instruction with the result
    /// of the metamethod it called (at `stack[top - 1]`), as lua5.4's
    /// `luaV_finishOp`: a read or arithmetic stores it, a comparison takes
    /// its jump or not, a write has nothing left to do, a concatenation
    /// goes on from the pair joined, a call of `pairs` gets `__pairs`'s
    /// three results. Only the instructions
    /// `Vm::op_finishable` accepts, and calls of `pairs`, get here.
    fn finish_op(&mut self) -> LResult<()> {
        use crate::bytecode::Op;
        // A `__close` handler run while an error unwinds returned.
        if let Some(crate::vm::FrameKind::Closing(_)) = self.frames.last().map(|f| f.kind) {
            return self.go_on_closing();
        }
        let res = self.stack[self.top - 1];
        let f = self.frames.last().expect("the interrupted frame");
        let (base, fpc) = (f.base, f.pc);
        let (op, next) = {
            let code = &self.frame_proto(f).code;
            (code[fpc - 1], code.get(fpc).copied())
        };
        let store = |vm: &mut Vm, a: u8| vm.stack[base + a as usize] = res;
        match op {
            Op::GetGlobal(a, _)
            | Op::GetTable(a, ..)
            | Op::GetField(a, ..)
            | Op::GetIndex(a, ..)
            | Op::SelfOp(a, ..)
            | Op::Add(a, ..)
            | Op::Sub(a, ..)
            | Op::Mul(a, ..)
            | Op::Div(a, ..)
            | Op::Mod(a, ..)
            | Op::Pow(a, ..)
            | Op::IDiv(a, ..)
            | Op::BAnd(a, ..)
            | Op::BOr(a, ..)
            | Op::BXor(a, ..)
            | Op::Shl(a, ..)
            | Op::Shr(a, ..)
            | Op::AddK(a, ..)
            | Op::SubK(a, ..)
            | Op::MulK(a, ..)
            | Op::DivK(a, ..)
            | Op::ModK(a, ..)
            | Op::PowK(a, ..)
            | Op::IDivK(a, ..)
            | Op::Unm(a, _)
            | Op::Len(a, _)
            | Op::BNot(a, _) => store(self, a),
            Op::SetGlobal(..) | Op::SetTable(..) | Op::SetField(..) => {}
            // A `__close` handler returned: close the rest of the block's
            // variables (which may yield again).
            // (Before a `return` of all values the handler was called at
            // the top, which the return counts them by: restored.)
            Op::Close(a) => {
                if self.close_needs_top() {
                    self.top -= 1;
                }
                self.close_tbc(base + a as usize)?
            }
            // The pair at registers `i, i + 1` was joined by `__concat`:
            // its result replaces them, and the rest is joined on (which
            // may call, and yield in, `__concat` again).
            Op::Concat(a, b, _) => {
                let i = self.top - 1 - self.concat_slot(0);
                let first = base + b as usize;
                self.stack[first + i] = res;
                let v = if i == 0 {
                    res
                } else {
                    self.concat(first, i + 1, b)?
                };
                self.stack[base + a as usize] = v;
            }
            // `pairs` whose `__pairs` yielded: its three results.
            Op::Call(a, _, c) => {
                let top = self.top;
                self.place_results(base + a as usize, top - 3, 3, c as i32 - 1);
            }
            Op::TailCall(a, _) => {
                let top = self.top;
                self.place_results(base + a as usize, top - 3, 3, -1);
            }
            Op::Eq(_, _, k)
            | Op::Lt(_, _, k)
            | Op::Le(_, _, k)
            | Op::LtI(_, _, k)
            | Op::LeI(_, _, k)
            | Op::GtI(_, _, k)
            | Op::GeI(_, _, k) => {
                // As the dispatch loop's `take_jump!`.
                let pc = match next {
                    Some(Op::Jmp(off)) if res.truthy() == k => {
                        (fpc as i64 + 1 + off as i64) as usize
                    }
                    _ => fpc + 1,
                };
                self.frames.last_mut().expect("the interrupted frame").pc = pc;
            }
            op => unreachable!("no metamethod call to finish for {op:?}"),
        }
        Ok(())
    }

    /// Where the innermost frame's last instruction (the call that
    /// yielded) wants its results: (slot, count or -1).
    fn yield_site(&self) -> (usize, i32) {
        use crate::bytecode::Op;
        let f = self.frames.last().expect("a suspended thread has a frame");
        let p = self.frame_proto(f);
        match p.code[f.pc - 1] {
            Op::Call(a, _, c) => (f.base + a as usize, c as i32 - 1),
            Op::TForCall(a, c) => (f.base + a as usize + 4, c as i32),
            Op::TailCall(a, _) => (f.base + a as usize, -1),
            op => unreachable!("a thread yields only from a call, not {op:?}"),
        }
    }
}

fn check_co(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<CoRef> {
    match arg(vm, base, nargs, i) {
        Value::Thread(c) => Ok(c),
        v => {
            let got = if i >= nargs {
                "no value".to_string()
            } else {
                vm.type_name_meta(v)
            };
            Err(arg_error(vm, i, f, &format!("thread expected, got {got}")))
        }
    }
}

fn co_create(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let c = new_thread(vm, base, nargs, "create")?;
    vm.rets(base + nargs, &[Value::Thread(c)])
}

/// A new suspended thread running the function argument 1 of `fname`.
fn new_thread(vm: &mut Vm, base: usize, nargs: usize, fname: &str) -> LResult<CoRef> {
    let f = arg(vm, base, nargs, 0);
    if !matches!(f, Value::Func(_) | Value::Builtin(_)) {
        let got = if nargs == 0 {
            "no value".to_string()
        } else {
            vm.type_name_meta(f)
        };
        return Err(arg_error(
            vm,
            0,
            fname,
            &format!("function expected, got {got}"),
        ));
    }
    // A library function runs through its Lua pass-through, so a yield
    // inside it (`coroutine.create(pcall)` yielding in the protected
    // function) returns to the body's frame, as in lua5.4.
    let f = match f {
        Value::Builtin(id) => crate::stdlib::pass_through(vm, id),
        f => f,
    };
    vm.gc_check();
    Ok(vm.heap.new_coroutine(Coroutine::new(f)))
}

/// The values a resumed thread hands back must fit in the resumer's stack
/// from `base` (lua5.4's `lua_checkstack` in `auxresume`: the stack's
/// limit, with its 5 spare slots); else the resume fails with "too many
/// results to resume" (the thread keeps the state it reached).
fn fit_results(vm: &mut Vm, base: usize, r: Resumed) -> Resumed {
    match r {
        Resumed::Yielded | Resumed::Returned
            if base + vm.transfer.len() + 6 > crate::vm::MAX_STACK =>
        {
            vm.transfer.clear();
            Resumed::Failed(vm.heap.str_value(b"too many results to resume"))
        }
        r => r,
    }
}

/// Resumes and hands the outcome back as `resume` does: `true, values…`
/// or `false, error`.
fn co_resume(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let co = check_co(vm, base, nargs, 0, "resume")?;
    let r = vm.resume(co, base + 1, nargs.saturating_sub(1))?;
    match fit_results(vm, base, r) {
        Resumed::Yielded | Resumed::Returned => {
            let vals = std::mem::take(&mut vm.transfer);
            vm.ensure_stack(base + vals.len() + 2)?;
            vm.stack[base] = V::Bool(true);
            vm.stack[base + 1..base + 1 + vals.len()].copy_from_slice(&vals);
            let n = vals.len() + 1;
            vm.transfer = vals;
            vm.transfer.clear();
            Ok((base, n))
        }
        Resumed::Failed(v) => vm.rets(base, &[V::Bool(false), v]),
    }
}

/// The function `coroutine.wrap` returns calls this with its coroutine:
/// values on success, else the error (a string error gets the caller's
/// position in front, as lua5.4's auxwrap does).
fn wrap_resume(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let Value::Thread(co) = arg(vm, base, nargs, 0) else {
        unreachable!("the wrap maker passes its coroutine")
    };
    let r = vm.resume(co, base + 1, nargs.saturating_sub(1))?;
    match fit_results(vm, base, r) {
        Resumed::Yielded | Resumed::Returned => {
            let vals = std::mem::take(&mut vm.transfer);
            let r = vm.rets(base, &vals);
            vm.transfer = vals;
            vm.transfer.clear();
            r
        }
        Resumed::Failed(v) => {
            let value = match v {
                Value::Str(s) => {
                    // The caller of the wrapped function (whose own frame
                    // stands for a library function and is skipped).
                    let mut msg = vm.where_(0).into_bytes();
                    msg.extend_from_slice(vm.heap.str_bytes(s));
                    vm.heap.str_value(&msg)
                }
                v => v,
            };
            Err(LuaError {
                value,
                exit: None,
                yielded: false,
            })
        }
    }
}

fn co_yield(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let cur = vm.cur_thread;
    if cur == vm.main_thread {
        return Err(vm.plain_error("attempt to yield from outside a coroutine"));
    }
    if !yieldable_here(vm, cur) {
        return Err(vm.plain_error("attempt to yield across a C-call boundary"));
    }
    vm.transfer.clear();
    vm.transfer.extend_from_slice(&vm.stack[base..base + nargs]);
    Err(LuaError {
        value: Value::Nil,
        exit: None,
        yielded: true,
    })
}

/// Whether the running thread `cur` can yield now: every Rust re-entry
/// since it was resumed is a metamethod call a resumed thread can finish.
fn yieldable_here(vm: &Vm, cur: CoRef) -> bool {
    let c = vm.heap.coroutines.get(cur.0);
    vm.c_depth.wrapping_sub(c.depth) == vm.meta_calls.wrapping_sub(c.meta_base)
}

fn status_name(vm: &Vm, co: CoRef) -> &'static str {
    if co == vm.cur_thread {
        return "running";
    }
    match vm.heap.coroutines.get(co.0).status {
        CoStatus::Suspended => "suspended",
        CoStatus::Running => "running",
        CoStatus::Normal => "normal",
        CoStatus::Dead => "dead",
    }
}

fn co_status(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let co = check_co(vm, base, nargs, 0, "status")?;
    let s = vm.heap.str_value(status_name(vm, co).as_bytes());
    vm.rets(base + nargs, &[s])
}

fn co_running(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let cur = vm.cur_thread;
    let is_main = cur == vm.main_thread;
    vm.rets(base + nargs, &[Value::Thread(cur), Value::Bool(is_main)])
}

fn co_isyieldable(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let co = if nargs == 0 {
        vm.cur_thread
    } else {
        check_co(vm, base, nargs, 0, "isyieldable")?
    };
    let y = co != vm.main_thread && (co != vm.cur_thread || yieldable_here(vm, co));
    vm.rets(base + nargs, &[Value::Bool(y)])
}

fn co_close(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let co = check_co(vm, base, nargs, 0, "close")?;
    match status_name(vm, co) {
        "suspended" | "dead" => {
            // Close its open upvalues against its own stack.
            let c = vm.heap.coroutines.get_mut(co.0);
            // Its pending to-be-closed variables, innermost first.
            let pending: Vec<Value> = c
                .state
                .tbc
                .iter()
                .rev()
                .map(|&slot| c.state.stack[slot])
                .collect();
            let ups = std::mem::take(&mut c.state.open_upvals);
            let vals: Vec<(UpRef, Value)> =
                ups.iter().map(|&(i, u)| (u, c.state.stack[i])).collect();
            c.state = ThreadState::default();
            c.live_top = 0;
            c.body = None;
            // While its handlers run, it counts as running (lua5.4 runs
            // them on the thread itself): closing or resuming it from one
            // is refused.
            c.status = CoStatus::Running;
            let mut err = c.error.take();
            for (u, v) in vals {
                *vm.heap.upvals.get_mut(u.0) = crate::heap::UpVal::Closed(v);
            }
            // Rooted on the stack while their handlers run.
            vm.ensure_stack(base + nargs + pending.len() + 1)?;
            vm.stack[base + nargs..base + nargs + pending.len()].copy_from_slice(&pending);
            vm.top = base + nargs + pending.len();
            let root = vm.extra_roots.len();
            vm.extra_roots.push(err.unwrap_or(Value::Nil));
            for v in pending {
                let e = err.unwrap_or(Value::Nil);
                match vm.call_close(v, e) {
                    Ok(_) => {}
                    Err(x) if x.catchable() => {
                        err = Some(x.value);
                        vm.extra_roots[root] = x.value;
                    }
                    Err(x) => {
                        vm.extra_roots.truncate(root);
                        vm.heap.coroutines.get_mut(co.0).status = CoStatus::Dead;
                        return Err(x);
                    }
                }
            }
            vm.heap.coroutines.get_mut(co.0).status = CoStatus::Dead;
            vm.extra_roots.truncate(root);
            match err {
                None => vm.rets(base + nargs, &[Value::Bool(true)]),
                Some(e) => vm.rets(base + nargs, &[Value::Bool(false), e]),
            }
        }
        s => Err(vm.rt_error(format!("cannot close a {s} coroutine"))),
    }
}

fn co_wrap(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let co = new_thread(vm, base, nargs, "wrap")?;
    // Rooted on the stack while the maker runs.
    vm.stack[base] = Value::Thread(co);
    let id = wrap_resume_id(vm);
    let f = crate::stdlib::bind(vm, Value::Builtin(id), Value::Thread(co))?;
    vm.rets(base + nargs, &[f])
}
