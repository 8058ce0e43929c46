//! The interpreter: one value stack, a stack of Lua call frames, and a
//! dispatch loop over [`Op`]. Lua-to-Lua calls and returns stay inside the
//! loop (no Rust recursion); standard-library functions and metamethods
//! that call back into Lua re-enter it, bounded by [`MAX_C_DEPTH`].
//!
//! Every frame's state is `(closure, base, pc)` in [`Frame`], saved before
//! anything that can call out or fail, so execution can resume at any
//! instruction — the property the JIT tier will deoptimize into.

use crate::bytecode::{Op, Proto};
use crate::heap::{Closure, Heap, UpRef, UpVal};
use crate::limits::FUEL_SLICE;
use crate::table::Table;
use crate::value::*;
use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;

mod hot;

/// Nested re-entries of the interpreter from Rust (metamethods, `pcall`,
/// `sort` comparators …): lua5.4's LUAI_MAXCCALLS.
pub const MAX_C_DEPTH: u32 = 200;

/// The longest chain of `__call` handlers one call follows (a callable
/// table whose handler is a callable table, ...).
pub const MAX_CALL_CHAIN: u32 = 1000;
/// Value-stack slots (lua5.4's LUAI_MAXSTACK): deeper Lua recursion is a
/// "stack overflow" error.
pub const MAX_STACK: usize = 1_000_000;
/// `__index` tables the dispatch loop follows itself before handing a
/// lookup to [`Vm::index`] (longer chains are rare and still work there).
const FAST_INDEX_CHAIN: usize = 8;

/// A Lua error: the error value, or a request to exit the process, or a
/// coroutine's yield unwinding to its `resume`.
#[derive(Debug, Clone)]
pub struct LuaError {
    pub value: Value,
    /// `os.exit(code)`: not catchable by `pcall`.
    pub exit: Option<i32>,
    /// A `coroutine.yield`: not an error, not catchable by `pcall`; the
    /// yielded values are in [`Vm::transfer`].
    pub yielded: bool,
}

impl LuaError {
    /// An error `pcall` catches (not an exit, not a yield).
    #[inline]
    pub fn catchable(&self) -> bool {
        self.exit.is_none() && !self.yielded
    }
}

/// What a frame's return means besides handing its results to the caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameKind {
    /// A Lua function called from Lua code.
    Lua,
    /// The frame an interpreter loop was entered for: the loop returns
    /// when it does.
    Entry,
    /// A function `pcall` runs from Lua code: its errors stop here (the
    /// `pcall` slot, just below the frame, receives `false, error`), its
    /// results get a `true` in front. No Rust frame is involved, so a
    /// coroutine can yield across it.
    PCall,
    /// As `PCall` for `xpcall`; the message handler waits in the slot.
    XPCall,
    /// A `PCall` (`xpcall`: true) frame whose error is unwinding: its
    /// to-be-closed variables' handlers are being called, which may
    /// yield ([`Vm::go_on_closing`] goes on when a handler returns); the
    /// error waits in the function's slot. Never runs code again.
    Closing(bool),
}

pub type LResult<T> = Result<T, LuaError>;

/// A standard-library function: arguments at `stack[base..base + nargs]`;
/// returns where its results are (start, count).
pub type BuiltinFn = fn(&mut Vm, usize, usize) -> LResult<(usize, usize)>;

/// A Lua call frame.
pub struct Frame {
    /// The stack slot holding the called function (results go here).
    pub func: usize,
    /// Register 0.
    pub base: usize,
    /// The next instruction.
    pub pc: usize,
    pub closure: FnRef,
    pub nvarargs: usize,
    /// Results the caller wants (-1: all).
    pub want: i32,
    pub kind: FrameKind,
}

/// Metamethod events with a name string interned at start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    Index,
    NewIndex,
    Call,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Unm,
    IDiv,
    BAnd,
    BOr,
    BXor,
    Shl,
    Shr,
    BNot,
    Concat,
    Len,
    Eq,
    Lt,
    Le,
    ToString,
    Name,
    Metatable,
    Pairs,
    Close,
}

// Events are bits of a `u32` in a table's cached facts (`Table::known_absent`).
const _: () = assert!(EVENT_NAMES.len() <= 32);

const EVENT_NAMES: [&str; 27] = [
    "__index",
    "__newindex",
    "__call",
    "__add",
    "__sub",
    "__mul",
    "__div",
    "__mod",
    "__pow",
    "__unm",
    "__idiv",
    "__band",
    "__bor",
    "__bxor",
    "__shl",
    "__shr",
    "__bnot",
    "__concat",
    "__len",
    "__eq",
    "__lt",
    "__le",
    "__tostring",
    "__name",
    "__metatable",
    "__pairs",
    "__close",
];

/// The interpreter state.
pub struct Vm {
    pub heap: Heap,
    pub stack: Vec<Value>,
    pub frames: Vec<Frame>,
    /// First free slot after a variable number of results.
    pub top: usize,
    pub globals: TableRef,
    /// `package.loaded`.
    pub loaded: TableRef,
    /// The metatable of strings (`__index` = the string library).
    pub string_meta: Option<TableRef>,
    /// The metatables of the other basic types, set by
    /// `debug.setmetatable` (indexed by [`Vm::basic_type_slot`]).
    pub type_metas: [Option<TableRef>; 5],
    /// Private state of library modules (the `io` library's default files
    /// and file metatable), a collector root.
    pub lib_state: Option<TableRef>,
    pub builtins: Vec<(&'static str, BuiltinFn)>,
    /// The library functions the hot loop calls inline (vm/hot.rs).
    pub(crate) inline_builtins: crate::stdlib::InlineBuiltins,
    pub(crate) open_upvals: Vec<(usize, UpRef)>,
    /// Stack slots of the running thread's to-be-closed variables, in
    /// declaration order.
    pub(crate) tbc: Vec<usize>,
    /// Stack slots beyond the limit that an `xpcall` message handler may
    /// use (it runs where the error was raised, maybe a stack overflow
    /// whose frames reach the end of the stack: 2000 slots to that end,
    /// 1000 for the handler; lua5.4's `ERRORSTACKSIZE`).
    error_headroom: usize,
    event_names: Vec<Value>,
    pub c_depth: u32,
    /// How many of the `c_depth` re-entries are metamethod calls a yield
    /// may cross ([`Vm::call_meta_with`]).
    pub meta_calls: u32,
    /// Protected frames (`pcall` from Lua code) of the running thread:
    /// they count against [`MAX_C_DEPTH`] as lua5.4's C-level `pcall` does.
    pub(crate) protected: u32,
    /// The running thread (its stack, frames and open upvalues are the
    /// fields above; every other thread's are saved in its object).
    pub cur_thread: CoRef,
    pub main_thread: CoRef,
    /// Threads that resumed the running one, innermost last (collector
    /// roots: their saved states are reachable only from here).
    pub resumers: Vec<CoRef>,
    /// Values passed by `resume` and `yield` between threads.
    pub transfer: Vec<Value>,
    /// Binds a library function to a state (`stdlib::bind`; a Lua closure
    /// made at start).
    pub bind_maker: Value,
    /// The prototype of [`crate::stdlib::pass_through`]'s functions.
    pub pass_through: Option<Rc<Proto>>,
    /// Those functions, by library function (`Nil`: not made yet).
    pub pass_throughs: Vec<Value>,
    /// The running library function was called by another one (not by
    /// Lua code): its errors carry no position, as in lua5.4.
    pub(crate) builtin_from_rust: bool,
    /// The library function Rust code called last (`call_at`), while it
    /// runs: its argument errors name it as lua5.4 does (`stdlib::arg_error`).
    pub(crate) running_builtin: Option<u32>,
    /// A library function is running (not Lua code): errors raised by the
    /// call machinery itself then carry no position, as in lua5.4.
    pub(crate) in_builtin: bool,
    /// Values a builtin holds while it calls back into Lua (collector roots).
    pub extra_roots: Vec<Value>,
    pub out: Box<dyn Write>,
    pub start: std::time::Instant,
    pub rng: [u64; 4],
    /// Instructions left before the step limit (`i64::MAX` without one;
    /// see `limits.rs`), less what the dispatch loops hold in hand.
    pub fuel: i64,
    /// Tests only: run every instruction in the outer dispatch loop, which
    /// counts steps one at a time (the reference for the inner loop's count).
    #[cfg(test)]
    pub(crate) no_hot_loop: bool,
    /// `--max-steps`, for the message.
    pub max_steps: Option<u64>,
    /// Why a limit stopped the run: the error then travels past every
    /// `pcall` (as an exit) and the run reports this message.
    pub halt: Option<String>,
    /// The `stack traceback:` of the last error that reached an interpreter
    /// loop's entry frame uncaught, with that error's value (the CLI prints
    /// it after an uncaught error; `debuglib::error_traceback`).
    pub error_trace: Option<(Value, String)>,
}

macro_rules! rk {
    ($self:ident, $base:ident, $r:expr) => {
        $self.stack[$base + $r as usize]
    };
}

impl Vm {
    pub fn new(out: Box<dyn Write>) -> Self {
        let mut heap = Heap::default();
        let main_thread = heap.new_coroutine(crate::coroutine::Coroutine::main());
        let globals = heap.new_table(Table::default());
        let loaded = heap.new_table(Table::default());
        let event_names = EVENT_NAMES
            .iter()
            .map(|n| heap.str_value(n.as_bytes()))
            .collect();
        let mode = heap.intern(b"__mode");
        heap.set_mode_key(mode);
        let mut vm = Vm {
            heap,
            stack: vec![Value::Nil; 1024],
            frames: Vec::new(),
            top: 0,
            globals,
            loaded,
            string_meta: None,
            type_metas: [None; 5],
            lib_state: None,
            builtins: Vec::new(),
            inline_builtins: Default::default(),
            open_upvals: Vec::new(),
            tbc: Vec::new(),
            error_headroom: 0,
            event_names,
            c_depth: 0,
            meta_calls: 0,
            protected: 0,
            cur_thread: main_thread,
            main_thread,
            resumers: Vec::new(),
            transfer: Vec::new(),
            bind_maker: Value::Nil,
            pass_through: None,
            pass_throughs: Vec::new(),
            builtin_from_rust: false,
            running_builtin: None,
            in_builtin: false,
            extra_roots: Vec::new(),
            out,
            start: std::time::Instant::now(),
            rng: [
                0x9E37_79B9_7F4A_7C15,
                0xBF58_476D_1CE4_E5B9,
                0x94D0_49BB_1331_11EB,
                1,
            ],
            fuel: i64::MAX,
            #[cfg(test)]
            no_hot_loop: false,
            max_steps: None,
            halt: None,
            error_trace: None,
        };
        crate::stdlib::open(&mut vm);
        vm
    }

    // ---------- errors ----------

    /// The chunk and line of the function `level` calls down (0: the
    /// innermost Lua function), as `chunk:line: `; empty when that
    /// function is not Lua code (a library function called it).
    pub fn where_(&self, level: usize) -> String {
        // Called by a library function: level 0 is that function (no
        // position), the levels above it count from the innermost Lua one.
        let level = match (self.builtin_from_rust, level) {
            (true, 0) => return String::new(),
            (true, l) => l - 1,
            (false, l) => l,
        };
        if self.frames.len() <= level {
            return String::new();
        }
        let mut top = self.frames.len() - 1;
        // A frame standing for a library function (`stdlib::bind`) is
        // not a level: its caller is.
        let f = &self.frames[top];
        if self.frame_proto(f).keeps_caller_frame.get() {
            if f.kind != FrameKind::Lua || top < level + 1 {
                return String::new();
            }
            top -= 1;
        }
        for l in 0..level {
            if self.frames[top - l].kind != FrameKind::Lua {
                return String::new();
            }
        }
        let f = &self.frames[top - level];
        let p = self.frame_proto(f);
        let line = p.lines.get(f.pc.saturating_sub(1)).copied().unwrap_or(0);
        format!("{}:{}: ", p.source, line)
    }

    /// A runtime error at the current instruction (`chunk:line: msg`).
    #[cold]
    pub fn rt_error(&mut self, msg: impl AsRef<str>) -> LuaError {
        let s = format!("{}{}", self.where_(0), msg.as_ref());
        let v = self.heap.str_value(s.as_bytes());
        LuaError {
            value: v,
            exit: None,
            yielded: false,
        }
    }

    /// An error the core raises on an operation (lua5.4's `luaG_runerror`:
    /// a type error, a comparison, a division by zero): positioned at the
    /// running Lua line, or at none while a library function runs, whose
    /// operations on its arguments (`table.unpack(5)` taking a length) have
    /// no line in lua5.4.
    pub fn core_error(&mut self, msg: impl AsRef<str>) -> LuaError {
        if self.in_builtin {
            self.plain_error(msg.as_ref())
        } else {
            self.rt_error(msg)
        }
    }

    /// An error with a plain message and no position.
    pub fn plain_error(&mut self, msg: &str) -> LuaError {
        let v = self.heap.str_value(msg.as_bytes());
        LuaError {
            value: v,
            exit: None,
            yielded: false,
        }
    }

    /// The prototype a frame runs.
    #[inline]
    pub fn frame_proto(&self, f: &Frame) -> &Proto {
        &self.heap.closures.get(f.closure.0).proto
    }

    #[inline(always)]
    fn save_pc(&mut self, pc: usize) {
        if let Some(f) = self.frames.last_mut() {
            f.pc = pc;
        }
    }

    /// How error messages name register `reg` of the running function at
    /// its current instruction: ` (local 'x')`, ` (global 'x')`, …
    pub fn var_info(&self, reg: u8) -> String {
        match self.frames.len() {
            0 => String::new(),
            n => self.var_info_in(n - 1, reg),
        }
    }

    /// [`Vm::var_info`] for frame `frame` at its current instruction.
    pub fn var_info_in(&self, frame: usize, reg: u8) -> String {
        let Some(f) = self.frames.get(frame) else {
            return String::new();
        };
        let p = self.frame_proto(f);
        let pc = f.pc.saturating_sub(1) as u32;
        let mut found = None;
        for l in &p.locals {
            if l.reg == reg && l.start_pc <= pc && pc < l.end_pc {
                found = Some(&l.name);
            }
        }
        if let Some(n) = found {
            return format!(" (local '{}')", String::from_utf8_lossy(n));
        }
        let kname = |k: usize| match p.consts.get(k) {
            Some(Value::Str(s)) => String::from_utf8_lossy(self.heap.str_bytes(*s)).into_owned(),
            _ => "?".into(),
        };
        // The last instruction before pc that wrote the register, unless
        // that write is conditional (inside a region a jump skips), like
        // lua5.4's findsetreg.
        let mut setreg = None;
        let mut jmptarget = 0usize;
        for i in 0..pc as usize {
            let op = p.code[i];
            if let Op::Jmp(off) = op {
                let dest = (i as i64 + 1 + off as i64) as usize;
                if dest <= pc as usize && dest > jmptarget {
                    jmptarget = dest;
                }
                continue;
            }
            if op_writes(op, reg) {
                setreg = (i >= jmptarget).then_some(i);
            }
        }
        let Some(i) = setreg else {
            return String::new();
        };
        match p.code[i] {
            Op::GetGlobal(_, k) => format!(" (global '{}')", kname(k as usize)),
            Op::GetField(_, t, k) if self.is_env_reg(p, i, t) => {
                format!(" (global '{}')", kname(k as usize))
            }
            Op::GetField(_, _, k) => format!(" (field '{}')", kname(k as usize)),
            Op::SelfOp(a, _, k) if a == reg => format!(" (method '{}')", kname(k as usize)),
            // lua5.4 names a computed key '?' (a constant string key is a
            // GetField), an integer immediate 'integer index'.
            Op::GetIndex(..) => " (field 'integer index')".to_string(),
            // `t[0]` (our compiler loads keys outside 1..=255 into a
            // temporary): lua5.4 reads 0..=255 with GETI, 'integer index'.
            Op::GetTable(_, _, kr)
                if i > 0
                    && matches!(p.code[i - 1], Op::LoadI(r, 0..=255) if r == kr)
                    // Not the end of `(b and 0)`, whose load a jump skips.
                    && !p.code.iter().enumerate().any(|(j, op)| {
                        matches!(op, Op::Jmp(off) if j as i64 + 1 + *off as i64 == i as i64)
                    })
                    && !p.locals.iter().any(|l| {
                        l.reg == kr && l.start_pc <= i as u32 && (i as u32) < l.end_pc
                    }) =>
            {
                " (field 'integer index')".to_string()
            }
            Op::GetTable(..) => " (field '?')".to_string(),
            Op::GetUpval(_, u) => format!(
                " (upvalue '{}')",
                p.upval_names
                    .get(u as usize)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default()
            ),
            Op::LoadK(_, k) => match p.consts.get(k as usize) {
                Some(Value::Str(_)) => format!(" (constant '{}')", kname(k as usize)),
                _ => String::new(),
            },
            Op::Move(_, b) if b < reg => {
                // Named after the local it copies, if any.
                let mut n = String::new();
                for l in &p.locals {
                    if l.reg == b && l.start_pc <= i as u32 && (i as u32) < l.end_pc {
                        n = format!(" (local '{}')", String::from_utf8_lossy(&l.name));
                    }
                }
                n
            }
            _ => String::new(),
        }
    }

    /// Whether register `r` holds `_ENV` at instruction `i` (a local
    /// named `_ENV`, or loaded from the upvalue `_ENV` just before), so a
    /// field read from it is a global, as lua5.4 names it.
    fn is_env_reg(&self, p: &Proto, i: usize, r: u8) -> bool {
        let i32_ = i as u32;
        if p.locals
            .iter()
            .any(|l| l.reg == r && l.start_pc <= i32_ && i32_ < l.end_pc && l.name == b"_ENV")
        {
            return true;
        }
        match i.checked_sub(1).map(|j| p.code[j]) {
            Some(Op::GetUpval(a, u)) if a == r => {
                p.upval_names.get(u as usize).map(|n| n.as_slice()) == Some(b"_ENV")
            }
            _ => false,
        }
    }

    #[cold]
    fn type_error(&mut self, v: Value, what: &str, reg: Option<u8>) -> LuaError {
        let info = reg.map(|r| self.var_info(r)).unwrap_or_default();
        let tn = self.type_name_meta(v);
        self.core_error(format!("attempt to {what} a {tn} value{info}"))
    }

    /// A value's type name, honouring `__name` in its metatable.
    pub fn type_name_meta(&self, v: Value) -> String {
        if let Some(mt) = self.metatable(v) {
            if let Value::Str(s) = self
                .heap
                .table(mt)
                .get_str(self.event_names[Event::Name as usize])
            {
                return String::from_utf8_lossy(self.heap.str_bytes(s)).into_owned();
            }
        }
        v.type_name().to_string()
    }

    // ---------- stack ----------

    /// Makes `stack[..n]` addressable; a stack beyond [`MAX_STACK`] is a
    /// "stack overflow" error.
    #[inline]
    pub fn ensure_stack(&mut self, n: usize) -> LResult<()> {
        if n > self.stack.len() {
            if n > MAX_STACK + 1000 + self.error_headroom {
                return Err(self.rt_error("stack overflow"));
            }
            let new_len = (n * 2).clamp(1024, MAX_STACK + 2000 + self.error_headroom);
            if !self.account_stack(new_len) {
                return Err(self.memory_error());
            }
            self.stack.resize(new_len, Value::Nil);
        }
        Ok(())
    }

    /// Writes `vals` at `at` (growing the stack) and returns them as a
    /// builtin's results.
    pub fn rets(&mut self, at: usize, vals: &[Value]) -> LResult<(usize, usize)> {
        self.ensure_stack(at + vals.len() + 1)?;
        self.stack[at..at + vals.len()].copy_from_slice(vals);
        Ok((at, vals.len()))
    }

    // ---------- upvalues ----------

    fn find_upval(&mut self, idx: usize) -> UpRef {
        let mut pos = self.open_upvals.len();
        while pos > 0 {
            let (i, u) = self.open_upvals[pos - 1];
            if i == idx {
                return u;
            }
            if i < idx {
                break;
            }
            pos -= 1;
        }
        let u = self.heap.new_upval(UpVal::Open(self.cur_thread, idx));
        self.open_upvals.insert(pos, (idx, u));
        u
    }

    /// Closes the open upvalues of slots `>= level`.
    pub fn close_upvals(&mut self, level: usize) {
        while let Some(&(i, u)) = self.open_upvals.last() {
            if i < level {
                break;
            }
            *self.heap.upvals.get_mut(u.0) = UpVal::Closed(self.stack[i]);
            self.open_upvals.pop();
        }
    }

    #[inline]
    fn upval_get(&self, cl: FnRef, i: u8) -> Value {
        let u = self.heap.closures.get(cl.0).upvals[i as usize];
        match *self.heap.upvals.get(u.0) {
            UpVal::Open(t, idx) if t == self.cur_thread => self.stack[idx],
            UpVal::Open(t, idx) => self.heap.coroutines.get(t.0).state.stack[idx],
            UpVal::Closed(v) => v,
        }
    }

    #[inline]
    fn upval_set(&mut self, cl: FnRef, i: u8, v: Value) {
        let u = self.heap.closures.get(cl.0).upvals[i as usize];
        match self.heap.upvals.get_mut(u.0) {
            UpVal::Open(t, idx) => {
                let (t, idx) = (*t, *idx);
                if t == self.cur_thread {
                    self.stack[idx] = v;
                } else {
                    self.heap.coroutines.get_mut(t.0).state.stack[idx] = v;
                }
            }
            UpVal::Closed(slot) => *slot = v,
        }
    }

    // ---------- collector ----------

    /// A full collection with the stack live up to `live_top`.
    #[cold]
    pub fn collect_garbage(&mut self, live_top: usize) {
        let live_top = live_top.min(self.stack.len());
        for v in &mut self.stack[live_top..] {
            *v = Value::Nil;
        }
        let mut roots: Vec<Value> = Vec::with_capacity(live_top + 64);
        roots.extend_from_slice(&self.stack[..live_top]);
        roots.push(Value::Table(self.globals));
        roots.push(Value::Table(self.loaded));
        if let Some(m) = self.string_meta {
            roots.push(Value::Table(m));
        }
        if let Some(s) = self.lib_state {
            roots.push(Value::Table(s));
        }
        roots.extend(self.type_metas.iter().flatten().map(|&m| Value::Table(m)));
        roots.extend(self.event_names.iter().copied());
        roots.extend(self.extra_roots.iter().copied());
        roots.extend(self.transfer.iter().copied());
        roots.push(self.bind_maker);
        roots.extend(self.pass_throughs.iter().copied());
        roots.push(Value::Thread(self.main_thread));
        roots.push(Value::Thread(self.cur_thread));
        roots.extend(self.resumers.iter().map(|&c| Value::Thread(c)));
        for f in &self.frames {
            roots.push(Value::Func(f.closure));
        }
        let ups: Vec<UpRef> = self.open_upvals.iter().map(|&(_, u)| u).collect();
        self.heap.collect(roots, &ups);
    }

    /// The top of the innermost frame (everything above is dead).
    pub(crate) fn live_top(&self) -> usize {
        self.frame_top()
    }

    /// Sets the flags for running Lua code in a new thread; returns the
    /// old ones for [`Vm::restore_flags`].
    pub(crate) fn enter_lua_flags(&mut self) -> (bool, bool) {
        (
            std::mem::replace(&mut self.builtin_from_rust, false),
            std::mem::replace(&mut self.in_builtin, false),
        )
    }

    pub(crate) fn restore_flags(&mut self, (from_rust, in_builtin): (bool, bool)) {
        self.builtin_from_rust = from_rust;
        self.in_builtin = in_builtin;
    }

    /// The top of the innermost frame (everything above is dead).
    pub(crate) fn frame_top(&self) -> usize {
        self.frames
            .last()
            .map(|f| f.base + self.frame_proto(f).max_stack as usize)
            .unwrap_or(self.top)
            .max(self.top)
    }

    /// Collects if enough was allocated; only called where every live
    /// value is rooted.
    #[inline]
    pub fn gc_check(&mut self) {
        if self.heap.should_collect() {
            let top = self.frame_top();
            self.collect_garbage(top);
        }
    }

    // ---------- metatables and indexing ----------

    pub fn metatable(&self, v: Value) -> Option<TableRef> {
        match v {
            Value::Table(t) => self.heap.table(t).meta,
            Value::Userdata(u) => self.heap.userdata(u).meta,
            Value::Str(_) => self.string_meta,
            _ => self.type_metas[Self::basic_type_slot(v)?],
        }
    }

    /// Where [`Vm::type_metas`] keeps the metatable shared by all values of
    /// `v`'s type (`None` for tables, userdata and strings, whose
    /// metatables live elsewhere).
    pub fn basic_type_slot(v: Value) -> Option<usize> {
        match v {
            Value::Nil => Some(0),
            Value::Bool(_) => Some(1),
            Value::Int(_) | Value::Float(_) => Some(2),
            Value::Func(_) | Value::Builtin(_) => Some(3),
            Value::Thread(_) => Some(4),
            Value::Table(_) | Value::Userdata(_) | Value::Str(_) => None,
        }
    }

    pub fn event_name(&self, e: Event) -> Value {
        self.event_names[e as usize]
    }

    /// The metamethod `e` of `v`, or nil.
    pub fn metamethod(&self, v: Value, e: Event) -> Value {
        match self.metatable(v) {
            Some(mt) => self.meta_field(mt, e),
            None => Value::Nil,
        }
    }

    /// The raw field of event `e` in the metatable `mt` ([`meta_field`]).
    #[inline(always)]
    fn meta_field(&self, mt: TableRef, e: Event) -> Value {
        meta_field(&self.heap, &self.event_names, mt, e)
    }

    /// `t[k]` for a table `t` without a metamethod call ([`index_tables`]).
    #[inline(always)]
    fn index_tables(&self, tr: TableRef, k: Value) -> Option<Value> {
        index_tables(&self.heap, &self.event_names, tr, k)
    }

    /// [`Vm::index_tables`] for an integer key ([`index_int`]).
    #[inline(always)]
    fn index_int(&self, tr: TableRef, i: i64) -> Option<Value> {
        index_int(&self.heap, &self.event_names, tr, i)
    }

    /// The walk up an `__index` chain ([`index_chain`]).
    #[inline(always)]
    fn index_chain(&self, mt: TableRef, k: Value) -> Option<Value> {
        index_chain(&self.heap, &self.event_names, mt, k)
    }

    /// Whether `#t` is the raw border (no `__len` in `t`'s metatable).
    #[inline]
    fn no_len_metamethod(&self, t: TableRef) -> bool {
        no_len_metamethod(&self.heap, &self.event_names, t)
    }

    /// Whether `t[k] = v` on table `t` is a raw store ([`newindex_is_raw`]).
    #[inline]
    fn newindex_is_raw(&self, tr: TableRef, k: Value) -> bool {
        newindex_is_raw(&self.heap, &self.event_names, tr, k)
    }

    /// `t[k]` with `__index`. `reg` names `t` in error messages.
    #[cold]
    pub fn index(&mut self, t: Value, k: Value, reg: Option<u8>) -> LResult<Value> {
        let mut t = t;
        for _ in 0..2000 {
            let mm = match t {
                Value::Table(tr) => {
                    let tab = self.heap.table(tr);
                    let v = tab.get(k);
                    if !matches!(v, Value::Nil) {
                        return Ok(v);
                    }
                    match tab.meta {
                        None => return Ok(Value::Nil),
                        Some(mt) => {
                            let h = self.meta_field(mt, Event::Index);
                            if matches!(h, Value::Nil) {
                                return Ok(Value::Nil);
                            }
                            h
                        }
                    }
                }
                _ => {
                    let h = self.metamethod(t, Event::Index);
                    if matches!(h, Value::Nil) {
                        let what = match k {
                            Value::Str(s) if reg.is_some() => {
                                let _ = s;
                                "index"
                            }
                            _ => "index",
                        };
                        let mut e = self.type_error(t, what, reg);
                        if reg.is_none() {
                            if let Value::Str(s) = k {
                                let name =
                                    String::from_utf8_lossy(self.heap.str_bytes(s)).into_owned();
                                let tn = self.type_name_meta(t);
                                e = self.core_error(format!(
                                    "attempt to index a {tn} value (field '{name}')"
                                ));
                            }
                        }
                        return Err(e);
                    }
                    h
                }
            };
            if matches!(mm, Value::Func(_) | Value::Builtin(_)) {
                return self.call_meta(mm, &[t, k]);
            }
            t = mm;
        }
        Err(self.rt_error("'__index' chain too long; possible loop"))
    }

    /// `t[k] = v` with `__newindex`.
    #[cold]
    pub fn set_index(&mut self, t: Value, k: Value, v: Value, reg: Option<u8>) -> LResult<()> {
        let mut t = t;
        for _ in 0..2000 {
            let mm = match t {
                Value::Table(tr) => {
                    let tab = self.heap.table(tr);
                    let mm = match tab.meta {
                        None => Value::Nil,
                        Some(mt) => {
                            if !matches!(tab.get(k), Value::Nil) {
                                Value::Nil
                            } else {
                                self.meta_field(mt, Event::NewIndex)
                            }
                        }
                    };
                    if matches!(mm, Value::Nil) {
                        return self.raw_set(tr, k, v);
                    }
                    mm
                }
                _ => {
                    let h = self.metamethod(t, Event::NewIndex);
                    if matches!(h, Value::Nil) {
                        return Err(self.type_error(t, "index", reg));
                    }
                    h
                }
            };
            if matches!(mm, Value::Func(_) | Value::Builtin(_)) {
                self.call_meta(mm, &[t, k, v])?;
                return Ok(());
            }
            t = mm;
        }
        Err(self.rt_error("'__newindex' chain too long; possible loop"))
    }

    /// `t[i] = v` raw, charging the collector for any growth; growth past
    /// the memory limit is a "not enough memory" error.
    #[inline]
    fn table_set_int(&mut self, t: TableRef, i: i64, v: Value) -> LResult<()> {
        let tab = self.heap.table_mut(t);
        let before = tab.arr.capacity() + tab.hash.capacity();
        tab.set_int(i, v);
        let after = tab.arr.capacity() + tab.hash.capacity();
        if after > before {
            return self.charge_growth(after - before);
        }
        Ok(())
    }

    /// A constructor's positional item (`Table::set_list_item`), charging
    /// for growth.
    fn table_set_list_item(&mut self, t: TableRef, i: i64, v: Value) -> LResult<()> {
        let tab = self.heap.table_mut(t);
        let before = tab.arr.capacity() + tab.hash.capacity();
        tab.set_list_item(i, v);
        let after = tab.arr.capacity() + tab.hash.capacity();
        if after > before {
            return self.charge_growth(after - before);
        }
        Ok(())
    }

    /// `t[k] = v` raw (k not nil or NaN), charging for growth.
    #[inline]
    fn table_set(&mut self, t: TableRef, k: Value, v: Value) -> LResult<()> {
        let tab = self.heap.table_mut(t);
        let before = tab.arr.capacity() + tab.hash.capacity();
        tab.set(k, v);
        let after = tab.arr.capacity() + tab.hash.capacity();
        if after > before {
            return self.charge_growth(after - before);
        }
        Ok(())
    }

    /// Charges a table's growth by `slots`; past the limit, an error (the
    /// growth step itself is made: the limit is passed by at most one
    /// table's last doubling).
    #[cold]
    fn charge_growth(&mut self, slots: usize) -> LResult<()> {
        self.heap.charge(slots * 24);
        self.reserve(0)
    }

    /// A raw store with Lua's key checks. Inside a library function
    /// (`rawset`) the error has no position: lua5.4 raises it in the core,
    /// which names only a Lua function's line.
    pub fn raw_set(&mut self, t: TableRef, k: Value, v: Value) -> LResult<()> {
        let msg = match k {
            Value::Nil => "table index is nil",
            Value::Float(f) if f.is_nan() => "table index is NaN",
            _ => return self.table_set(t, k, v),
        };
        Err(self.core_error(msg))
    }

    // ---------- calls ----------

    /// Calls `f` with `args` from Rust; returns its first result. A Lua
    /// metamethod called for an instruction ([`Vm::op_finishable`]) may
    /// yield: see [`Vm::call_meta_with`].
    pub fn call_meta(&mut self, f: Value, args: &[Value]) -> LResult<Value> {
        let f = self.yieldable_meta(f);
        let finishable = self.op_finishable(f);
        self.call_meta_with(f, args, finishable)
    }

    /// A library function called in a coroutine as the metamethod of the
    /// running instruction is called through its Lua pass-through
    /// (`stdlib::pass_through`), so a yield inside it
    /// (`__close = coroutine.yield`) crosses the call as it crosses a Lua
    /// metamethod, as in lua5.4; anything else is called as it is.
    pub(crate) fn yieldable_meta(&mut self, f: Value) -> Value {
        match f {
            Value::Builtin(id) if self.cur_thread != self.main_thread && self.op_has_finish() => {
                crate::stdlib::pass_through(self, id)
            }
            _ => f,
        }
    }

    /// [`Vm::call_meta`]; `finishable`: the call stands for the running
    /// frame's current instruction, whose result a resumed thread can
    /// write itself (`Vm::finish_op`) once the Rust caller is gone, so a
    /// yield may cross it (counted in `meta_calls`, as lua5.4's
    /// `luaV_finishOp` lets a yield cross a metamethod).
    pub(crate) fn call_meta_with(
        &mut self,
        f: Value,
        args: &[Value],
        finishable: bool,
    ) -> LResult<Value> {
        let at = self.frame_top();
        self.call_meta_at(at, f, args, finishable)
    }

    /// [`Vm::call_meta_with`] with `f` placed at `stack[at]` (above every
    /// live value).
    fn call_meta_at(
        &mut self,
        at: usize,
        f: Value,
        args: &[Value],
        finishable: bool,
    ) -> LResult<Value> {
        self.ensure_stack(at + args.len() + 2)?;
        self.stack[at] = f;
        self.stack[at + 1..at + 1 + args.len()].copy_from_slice(args);
        if finishable {
            self.meta_calls += 1;
        }
        let r = self.call_at(at, args.len(), 1);
        if finishable {
            self.meta_calls -= 1;
        }
        r?;
        Ok(self.stack[at])
    }

    /// The running Lua frame's current instruction (the one whose
    /// execution called into the library or a metamethod), if any.
    fn current_op(&self) -> Option<crate::bytecode::Op> {
        let fr = self.frames.last()?;
        let i = fr.pc.checked_sub(1)?;
        self.frame_proto(fr).code.get(i).copied()
    }

    /// Whether the running Lua frame's current instruction is a call (a
    /// library function it called may let a yield cross it).
    pub(crate) fn current_op_is_call(&self) -> bool {
        use crate::bytecode::Op;
        matches!(self.current_op(), Some(Op::Call(..) | Op::TailCall(..)))
    }

    /// Whether the running Lua frame's current instruction is a generic
    /// `for`'s call of its iterator (lua5.4 names the callee "for
    /// iterator" in argument errors).
    pub(crate) fn current_op_is_for_iterator(&self) -> bool {
        use crate::bytecode::Op;
        matches!(self.current_op(), Some(Op::TForCall(..)))
    }

    /// Whether a call of `f` made now is a metamethod of the running Lua
    /// frame's current instruction that [`Vm::finish_op`] can complete: a
    /// Lua function, called from the dispatch loop (no library function
    /// running), for a read, write, arithmetic, length or comparison.
    pub(crate) fn op_finishable(&self, f: Value) -> bool {
        matches!(f, Value::Func(_)) && self.op_has_finish()
    }

    /// [`Vm::op_finishable`] but for the callee: called from the dispatch
    /// loop, for an instruction [`Vm::finish_op`] completes.
    fn op_has_finish(&self) -> bool {
        use crate::bytecode::Op;
        if self.in_builtin {
            return false;
        }
        let Some(op) = self.current_op() else {
            return false;
        };
        matches!(
            op,
            Op::GetGlobal(..)
                | Op::SetGlobal(..)
                | Op::GetTable(..)
                | Op::GetField(..)
                | Op::GetIndex(..)
                | Op::SetTable(..)
                | Op::SetField(..)
                | Op::SelfOp(..)
                | Op::Add(..)
                | Op::Sub(..)
                | Op::Mul(..)
                | Op::Div(..)
                | Op::Mod(..)
                | Op::Pow(..)
                | Op::IDiv(..)
                | Op::BAnd(..)
                | Op::BOr(..)
                | Op::BXor(..)
                | Op::Shl(..)
                | Op::Shr(..)
                | Op::AddK(..)
                | Op::SubK(..)
                | Op::MulK(..)
                | Op::DivK(..)
                | Op::ModK(..)
                | Op::PowK(..)
                | Op::IDivK(..)
                | Op::Unm(..)
                | Op::Len(..)
                | Op::BNot(..)
                | Op::Eq(..)
                | Op::Lt(..)
                | Op::Le(..)
                | Op::LtI(..)
                | Op::LeI(..)
                | Op::GtI(..)
                | Op::GeI(..)
                | Op::Concat(..)
        )
    }

    /// Calls the value at `stack[func]` with the `nargs` values after it;
    /// leaves the results from `stack[func]` (exactly `want` of them, or
    /// all when `want` is -1) and returns how many.
    pub fn call_at(&mut self, func: usize, nargs: usize, want: i32) -> LResult<usize> {
        self.c_depth += 1;
        if self.c_depth + self.protected > MAX_C_DEPTH {
            self.c_depth -= 1;
            return Err(self.core_error("C stack overflow"));
        }
        let r = self.call_at_inner(func, nargs, want);
        self.c_depth -= 1;
        r
    }

    fn call_at_inner(&mut self, func: usize, mut nargs: usize, want: i32) -> LResult<usize> {
        loop {
            match self.stack[func] {
                Value::Func(cl) => {
                    self.push_lua_frame(func, cl, nargs, want, FrameKind::Entry)?;
                    let saved = std::mem::replace(&mut self.builtin_from_rust, false);
                    let saved_in = std::mem::replace(&mut self.in_builtin, false);
                    let r = self.execute();
                    self.builtin_from_rust = saved;
                    self.in_builtin = saved_in;
                    r?;
                    let n = self.top - func;
                    return Ok(n);
                }
                Value::Builtin(id) => {
                    let f = self.builtins[id as usize].1;
                    self.ensure_stack(func + nargs + 8)?;
                    self.top = func + 1 + nargs;
                    let saved = std::mem::replace(&mut self.builtin_from_rust, true);
                    let saved_in = std::mem::replace(&mut self.in_builtin, true);
                    let saved_id = self.running_builtin.replace(id);
                    let r = f(self, func + 1, nargs);
                    self.builtin_from_rust = saved;
                    self.in_builtin = saved_in;
                    self.running_builtin = saved_id;
                    let (start, n) = r?;
                    self.charge_steps((nargs + n) as u64)?;
                    return Ok(self.place_results(func, start, n, want));
                }
                other => {
                    if self.in_builtin && matches!(self.metamethod(other, Event::Call), Value::Nil)
                    {
                        // Called by a library function: no position.
                        let tn = self.type_name_meta(other);
                        return Err(self.plain_error(&format!("attempt to call a {tn} value")));
                    }
                    nargs = self.insert_call_handlers(func, nargs, other, None)?;
                }
            }
        }
    }

    /// Moves `n` results from `start` to `dst`, adjusting to `want`; sets
    /// the top; returns the number of values left.
    #[inline]
    pub(crate) fn place_results(&mut self, dst: usize, start: usize, n: usize, want: i32) -> usize {
        if start != dst {
            if n <= 4 {
                // Usually one or two values: a loop beats a memmove call.
                for i in 0..n {
                    self.stack[dst + i] = self.stack[start + i];
                }
            } else {
                self.stack.copy_within(start..start + n, dst);
            }
        }
        let count = if want < 0 {
            n
        } else {
            let w = want as usize;
            if self.stack.len() < dst + w + 1 {
                self.stack.resize(dst + w + 1, Value::Nil);
            }
            for i in n..w {
                self.stack[dst + i] = Value::Nil;
            }
            w
        };
        self.top = dst + count;
        count
    }

    /// For a call of a non-function: inserts its `__call` handler below the
    /// arguments; returns the new argument count.
    #[cold]
    fn insert_call_handler(
        &mut self,
        func: usize,
        nargs: usize,
        v: Value,
        reg: Option<u8>,
    ) -> LResult<usize> {
        let h = self.metamethod(v, Event::Call);
        if matches!(h, Value::Nil) {
            return Err(self.type_error(v, "call", reg));
        }
        self.ensure_stack(func + nargs + 3)?;
        self.stack.copy_within(func..func + 1 + nargs, func + 1);
        self.stack[func] = h;
        Ok(nargs + 1)
    }

    /// For a call of a non-function: follows its `__call` handlers (a
    /// handler may itself be a callable table) until a function is at
    /// `stack[func]`; returns the new argument count. The chain is bounded
    /// ([`MAX_CALL_CHAIN`]): each link shifts the arguments up by one.
    fn insert_call_handlers(
        &mut self,
        func: usize,
        mut nargs: usize,
        v: Value,
        reg: Option<u8>,
    ) -> LResult<usize> {
        nargs = self.insert_call_handler(func, nargs, v, reg)?;
        let mut links = 1;
        while !matches!(self.stack[func], Value::Func(_) | Value::Builtin(_)) {
            links += 1;
            if links > MAX_CALL_CHAIN {
                return Err(self.rt_error("'__call' chain too long"));
            }
            self.charge_steps(nargs as u64)?;
            let next = self.stack[func];
            if reg.is_none()
                && self.in_builtin
                && matches!(self.metamethod(next, Event::Call), Value::Nil)
            {
                // Called by a library function: no position.
                let tn = self.type_name_meta(next);
                return Err(self.plain_error(&format!("attempt to call a {tn} value")));
            }
            // lua5.4 names the called variable, with the handler's type.
            nargs = self.insert_call_handler(func, nargs, next, reg)?;
        }
        Ok(nargs)
    }

    /// Pushes a frame for closure `cl` at `stack[func]` with `nargs`
    /// arguments (vararg functions get their extra arguments below the
    /// frame, as in lua5.4).
    #[inline(always)]
    pub(crate) fn push_lua_frame(
        &mut self,
        func: usize,
        cl: FnRef,
        nargs: usize,
        want: i32,
        kind: FrameKind,
    ) -> LResult<()> {
        let proto = &self.heap.closures.get(cl.0).proto;
        self.ensure_stack(frame_end(proto, func, nargs))?;
        let proto = &self.heap.closures.get(cl.0).proto;
        push_frame(
            &mut self.stack,
            &mut self.frames,
            proto,
            func,
            cl,
            nargs,
            want,
            kind,
        );
        Ok(())
    }

    // ---------- arithmetic slow paths ----------

    fn tonumber_coerce(&self, v: Value) -> Option<Value> {
        match v {
            Value::Int(_) | Value::Float(_) => Some(v),
            Value::Str(s) => str_to_number(self.heap.str_bytes(s)),
            _ => None,
        }
    }

    fn to_int_bitwise(&self, v: Value) -> Result<i64, bool> {
        // Err(true): a number without integer representation; Err(false): not a number.
        // Strings are not coerced for bitwise operators (lua5.4's string
        // metamethods cover arithmetic only).
        let n = match v {
            Value::Str(_) => None,
            _ => self.tonumber_coerce(v),
        };
        match n {
            Some(Value::Int(i)) => Ok(i),
            Some(Value::Float(f)) => float_to_int_exact(f).ok_or(true),
            _ => Err(false),
        }
    }

    /// Arithmetic on two numbers (after coercion).
    fn arith_num(&mut self, ev: Event, x: Value, y: Value) -> LResult<Value> {
        match arith_numbers(ev, x, y) {
            Some(v) => Ok(v),
            None if ev == Event::Mod => Err(self.core_error("attempt to perform 'n%0'")),
            None => Err(self.core_error("attempt to divide by zero")),
        }
    }

    /// The general binary operation `ev` on `x`, `y`: coercions, then
    /// metamethods, then the error naming the culprit.
    #[cold]
    pub fn arith(
        &mut self,
        ev: Event,
        x: Value,
        y: Value,
        rx: Option<u8>,
        ry: Option<u8>,
    ) -> LResult<Value> {
        use Event::*;
        let bitwise = matches!(ev, BAnd | BOr | BXor | Shl | Shr | BNot);
        if bitwise {
            match (self.to_int_bitwise(x), self.to_int_bitwise(y)) {
                (Ok(a), Ok(b)) => {
                    return Ok(Value::Int(match ev {
                        BAnd => a & b,
                        BOr => a | b,
                        BXor => a ^ b,
                        Shl => shift_left(a, b),
                        Shr => shift_left(a, b.wrapping_neg()),
                        BNot => !a,
                        _ => unreachable!(),
                    }))
                }
                (ea, eb) => {
                    let h = self.bin_metamethod(x, y, ev);
                    if !matches!(h, Value::Nil) {
                        return self.call_meta(h, &[x, y]);
                    }
                    if ea == Err(true) || eb == Err(true) {
                        if matches!(ea, Err(false)) || matches!(eb, Err(false)) {
                            // fallthrough to the type error below
                        } else {
                            let reg = if matches!(ea, Err(true)) { rx } else { ry };
                            let info = reg.map(|r| self.var_info(r)).unwrap_or_default();
                            return Err(self
                                .rt_error(format!("number{info} has no integer representation")));
                        }
                    }
                    let (bad, reg) = if ea.is_err() && !matches!(ea, Err(true)) {
                        (x, rx)
                    } else {
                        (y, ry)
                    };
                    return Err(self.type_error(bad, "perform bitwise operation on", reg));
                }
            }
        }
        if let (Some(a), Some(b)) = (self.tonumber_coerce(x), self.tonumber_coerce(y)) {
            if matches!(x, Value::Str(_)) || matches!(y, Value::Str(_)) {
                // Done by the string library's metamethod (a library
                // function): its errors carry no position.
                let saved = std::mem::replace(&mut self.builtin_from_rust, true);
                let r = self.arith_num(ev, a, b);
                self.builtin_from_rust = saved;
                return r;
            }
            return self.arith_num(ev, a, b);
        }
        // Strings take part through the string library's arithmetic
        // metamethods (lua5.4): the first operand's handler wins.
        let hx = self.metamethod(x, ev);
        if matches!(x, Value::Str(_)) || (matches!(hx, Value::Nil) && matches!(y, Value::Str(_))) {
            let hy = self.metamethod(y, ev);
            if matches!(y, Value::Str(_)) || matches!(hy, Value::Nil) {
                let name = EVENT_NAMES[ev as usize].trim_start_matches("__");
                return Err(self.rt_error(format!(
                    "attempt to {name} a '{}' with a '{}'",
                    x.type_name(),
                    y.type_name()
                )));
            }
            return self.call_meta(hy, &[x, y]);
        }
        let h = self.bin_metamethod(x, y, ev);
        if !matches!(h, Value::Nil) {
            return self.call_meta(h, &[x, y]);
        }
        let (bad, reg) = if self.tonumber_coerce(x).is_none() {
            (x, rx)
        } else {
            (y, ry)
        };
        if let Value::Str(_) = bad {
            return Err(self.type_error(bad, "perform arithmetic on", reg));
        }
        Err(self.type_error(bad, "perform arithmetic on", reg))
    }

    fn bin_metamethod(&self, x: Value, y: Value, ev: Event) -> Value {
        let h = self.metamethod(x, ev);
        if matches!(h, Value::Nil) {
            self.metamethod(y, ev)
        } else {
            h
        }
    }

    /// `x == y` with `__eq`.
    pub fn equals(&mut self, x: Value, y: Value) -> LResult<bool> {
        if x.raw_eq(y) {
            return Ok(true);
        }
        if let (Value::Table(_), Value::Table(_)) = (x, y) {
            let h = self.bin_metamethod(x, y, Event::Eq);
            if !matches!(h, Value::Nil) {
                return Ok(self.call_meta(h, &[x, y])?.truthy());
            }
        }
        Ok(false)
    }

    /// `x < y` (or `<=` when `le`) with `__lt`/`__le`.
    #[cold]
    pub fn less(&mut self, x: Value, y: Value, le: bool) -> LResult<bool> {
        match (x, y) {
            (Value::Int(a), Value::Int(b)) => return Ok(if le { a <= b } else { a < b }),
            (Value::Float(a), Value::Float(b)) => return Ok(if le { a <= b } else { a < b }),
            (Value::Int(a), Value::Float(b)) => return Ok(int_float_cmp(a, b, le, false)),
            (Value::Float(a), Value::Int(b)) => return Ok(int_float_cmp(b, a, le, true)),
            (Value::Str(a), Value::Str(b)) => {
                let (sa, sb) = (self.heap.str_bytes(a), self.heap.str_bytes(b));
                return Ok(if le { sa <= sb } else { sa < sb });
            }
            _ => {}
        }
        let ev = if le { Event::Le } else { Event::Lt };
        let h = self.bin_metamethod(x, y, ev);
        if !matches!(h, Value::Nil) {
            return Ok(self.call_meta(h, &[x, y])?.truthy());
        }
        if le {
            // lua5.4 as built (LUA_COMPAT_LT_LE, on in Debian's lua5.4 and
            // in the reference): `x <= y` without `__le` is `not (y < x)`
            // by `__lt`.
            let h = self.bin_metamethod(y, x, Event::Lt);
            if !matches!(h, Value::Nil) {
                // Negated: a resumed thread could not finish it.
                return Ok(!self.call_meta_with(h, &[y, x], false)?.truthy());
            }
        }
        let (t1, t2) = (self.type_name_meta(x), self.type_name_meta(y));
        if t1 == t2 {
            Err(self.core_error(format!("attempt to compare two {t1} values")))
        } else {
            Err(self.core_error(format!("attempt to compare {t1} with {t2}")))
        }
    }

    /// `x < y` as a library function compares (`math.min`): its errors
    /// carry no position, as lua5.4's C functions' do.
    pub fn library_less(&mut self, x: Value, y: Value) -> LResult<bool> {
        let saved = std::mem::replace(&mut self.builtin_from_rust, true);
        let r = self.less(x, y, false);
        self.builtin_from_rust = saved;
        r
    }

    /// `#v` with `__len`.
    #[cold]
    pub fn length(&mut self, v: Value, reg: Option<u8>) -> LResult<Value> {
        match v {
            Value::Str(s) => Ok(Value::Int(self.heap.str_bytes(s).len() as i64)),
            Value::Table(t) => {
                let h = self.metamethod(v, Event::Len);
                if matches!(h, Value::Nil) {
                    Ok(Value::Int(self.heap.table(t).border()))
                } else {
                    // lua5.4 passes the operand twice, as to every unary event.
                    self.call_meta(h, &[v, v])
                }
            }
            _ => {
                let h = self.metamethod(v, Event::Len);
                if matches!(h, Value::Nil) {
                    Err(self.type_error(v, "get length of", reg))
                } else {
                    // lua5.4 passes the operand twice, as to every unary event.
                    self.call_meta(h, &[v, v])
                }
            }
        }
    }

    /// Appends the string form of a number or string for `..`; false if
    /// `v` is neither.
    pub fn concat_piece(&self, v: Value, out: &mut Vec<u8>) -> bool {
        match v {
            Value::Str(s) => out.extend_from_slice(self.heap.str_bytes(s)),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) => {
                let mut s = String::new();
                fmt_float(f, &mut s);
                out.extend_from_slice(s.as_bytes());
            }
            _ => return false,
        }
        true
    }

    /// `R[first] .. … .. R[first + n - 1]` (with `__concat`, right to left).
    #[cold]
    pub(crate) fn concat(&mut self, first: usize, n: usize, first_reg: u8) -> LResult<Value> {
        let mut buf = Vec::new();
        if (0..n).all(|i| {
            matches!(
                self.stack[first + i],
                Value::Str(_) | Value::Int(_) | Value::Float(_)
            )
        }) {
            let len = (0..n).map(|i| self.piece_len(self.stack[first + i])).sum();
            self.charge_bytes(len)?;
            self.reserve_collecting(len)?;
            buf.reserve_exact(len);
            for i in 0..n {
                let v = self.stack[first + i];
                self.concat_piece(v, &mut buf);
            }
            return Ok(self.heap.str_value(&buf));
        }
        let mut acc = self.stack[first + n - 1];
        for i in (0..n - 1).rev() {
            let left = self.stack[first + i];
            let mut b = Vec::new();
            self.reserve(self.piece_len(left) + self.piece_len(acc))?;
            if self.concat_piece(left, &mut b) && self.concat_piece(acc, &mut b) {
                acc = self.heap.str_value(&b);
                continue;
            }
            let h = self.bin_metamethod(left, acc, Event::Concat);
            if matches!(h, Value::Nil) {
                let (bad, reg) = if matches!(left, Value::Str(_) | Value::Int(_) | Value::Float(_))
                {
                    (
                        acc,
                        if i + 2 == n {
                            Some(first_reg + i as u8 + 1)
                        } else {
                            None
                        },
                    )
                } else {
                    (left, Some(first_reg + i as u8))
                };
                return Err(self.type_error(bad, "concatenate", reg));
            }
            // Keep the partial result rooted while the handler runs, and
            // in its register as lua5.4 does: a thread resumed after a
            // yield inside the handler goes on from there.
            self.stack[first + i + 1] = acc;
            acc = self.concat_meta(h, left, acc, i)?;
        }
        Ok(acc)
    }

    /// Calls `__concat` for registers `i, i + 1` of the running `Concat`.
    /// The handler's slot, `i` slots above the frame's registers
    /// ([`Vm::concat_slot`]), tells a thread resumed after a yield inside
    /// it how far the concatenation got (`Vm::finish_op`), as lua5.4 tells
    /// it by the stack top.
    fn concat_meta(&mut self, h: Value, left: Value, acc: Value, i: usize) -> LResult<Value> {
        let h = self.yieldable_meta(h);
        let finishable = self.op_finishable(h);
        let at = self.concat_slot(i);
        self.ensure_stack(at + 4)?;
        self.stack[at] = h;
        self.stack[at + 1] = left;
        self.stack[at + 2] = acc;
        if finishable {
            self.meta_calls += 1;
        }
        let r = self.call_at(at, 2, 1);
        if finishable {
            self.meta_calls -= 1;
        }
        r?;
        Ok(self.stack[at])
    }

    /// Where [`Vm::concat_meta`] calls the handler for the pair at
    /// registers `i, i + 1`: above all of the running frame's registers.
    pub(crate) fn concat_slot(&self, i: usize) -> usize {
        let f = self.frames.last().expect("the frame running Concat");
        f.base + self.frame_proto(f).max_stack as usize + 1 + i
    }

    // ---------- the interpreter loop ----------

    /// Runs the innermost frame until the frame that entered (an
    /// [`FrameKind::Entry`] frame) returns. An error inside a protected
    /// frame above that one (a `pcall` from Lua code) is caught here and
    /// the loop goes on in the frame that called `pcall`.
    pub fn execute(&mut self) -> LResult<()> {
        loop {
            match self.run_frames() {
                Ok(()) => return Ok(()),
                Err(e) => self.catch(e)?,
            }
        }
    }

    /// Calls `__close(v, nil)` of the to-be-closed variables at slots
    /// `>= level`, innermost first (a block, `break`, `goto` or `return`
    /// leaves their scope). An error propagates; the variables not closed
    /// yet stay registered and are closed by the unwinding.
    #[cold]
    pub(crate) fn close_tbc(&mut self, level: usize) -> LResult<()> {
        let top = self.top;
        // Called by `Close` only: a yield inside a handler may cross it
        // (a resumed thread closes the rest, `Vm::finish_op`). Before a
        // `return` of all values, which counts them by the top, the
        // handlers are called at the top, so their slot keeps it.
        let finishable = !self.in_builtin;
        let at = self.close_needs_top().then_some(top);
        while let Some(&slot) = self.tbc.last().filter(|&&s| s >= level) {
            self.tbc.pop();
            let v = self.stack[slot];
            self.call_close_with(v, Value::Nil, finishable, at)?;
        }
        self.top = top;
        Ok(())
    }

    /// Whether the running `Close` is followed by a `return` of a variable
    /// number of values (which are counted by the stack top).
    pub(crate) fn close_needs_top(&self) -> bool {
        use crate::bytecode::Op;
        self.frames.last().is_none_or(|f| {
            matches!(
                self.frame_proto(f).code.get(f.pc),
                Some(Op::Return(_, 0)) | None
            )
        })
    }

    /// Calls `__close(v, err)` of the to-be-closed variables at slots
    /// `>= level` while an error unwinds past them; an error in a handler
    /// becomes the error. Returns the error value.
    #[cold]
    pub(crate) fn close_tbc_unwinding(&mut self, level: usize, mut err: LuaError) -> LuaError {
        // The error value lives only here meanwhile: a collector root.
        let root = self.extra_roots.len();
        self.extra_roots.push(err.value);
        while let Some(&slot) = self.tbc.last().filter(|&&s| s >= level) {
            self.tbc.pop();
            if !err.catchable() {
                continue;
            }
            let v = self.stack[slot];
            if let Err(e) = self.call_close(v, err.value) {
                err = e;
                self.extra_roots[root] = err.value;
            }
        }
        self.extra_roots.truncate(root);
        err
    }

    /// Calls `v`'s `__close(v, err)` (gone since the declaration: an error).
    pub(crate) fn call_close(&mut self, v: Value, err: Value) -> LResult<()> {
        self.call_close_with(v, err, false, None)
    }

    /// [`Vm::call_close`]; `finishable` as for [`Vm::call_meta_with`] (a
    /// Lua handler only); `at`: the slot to call the handler at, if not
    /// the frame's top.
    fn call_close_with(
        &mut self,
        v: Value,
        err: Value,
        finishable: bool,
        at: Option<usize>,
    ) -> LResult<()> {
        let h = self.metamethod(v, Event::Close);
        if matches!(h, Value::Nil) {
            return Err(self.rt_error("attempt to call a nil value (metamethod 'close')"));
        }
        // A library function as the handler: through its pass-through,
        // as `Vm::yieldable_meta` (the running `Close` is finishable).
        let h = match h {
            Value::Builtin(id) if finishable && self.cur_thread != self.main_thread => {
                crate::stdlib::pass_through(self, id)
            }
            h => h,
        };
        let finishable = finishable && matches!(h, Value::Func(_));
        let at = at.unwrap_or_else(|| self.frame_top());
        self.call_meta_at(at, h, &[v, err], finishable)?;
        Ok(())
    }

    /// The name of the local in register `r` at the current instruction.
    fn local_name(&self, r: u8) -> String {
        let Some(f) = self.frames.last() else {
            return "?".into();
        };
        let p = self.frame_proto(f);
        let pc = f.pc as u32;
        p.locals
            .iter()
            .rev()
            .find(|l| l.reg == r && l.start_pc <= pc && pc <= l.end_pc)
            .map(|l| String::from_utf8_lossy(&l.name).into_owned())
            .unwrap_or_else(|| "?".into())
    }

    /// Whether a call of builtin `id` from Lua code is a `pcall` or
    /// `xpcall` of a Lua function, run as a protected frame — or, in a
    /// coroutine, of a library function, which then runs through its Lua
    /// pass-through so a yield inside it can cross (`xpcall(pcall, h, f)`
    /// with `f` yielding).
    #[inline]
    fn protects_lua_call(&self, id: u32, func: usize, nargs: usize) -> bool {
        (id == crate::stdlib::PCALL_ID && nargs >= 1
            || id == crate::stdlib::XPCALL_ID && nargs >= 2)
            && match self.stack[func + 1] {
                Value::Func(_) => true,
                Value::Builtin(_) => self.cur_thread != self.main_thread,
                _ => false,
            }
    }

    /// Pushes the protected frame of `pcall(f, ...)` (or
    /// `xpcall(f, handler, ...)`) called at `stack[func]`: `f` runs at
    /// `func + 1`; for `xpcall` the handler moves to `stack[func]`.
    #[cold]
    fn enter_protected(&mut self, func: usize, nargs: usize, want: i32, id: u32) -> LResult<()> {
        if let Value::Builtin(b) = self.stack[func + 1] {
            self.stack[func + 1] = crate::stdlib::pass_through(self, b);
        }
        let Value::Func(f) = self.stack[func + 1] else {
            unreachable!("protects_lua_call checked it")
        };
        if self.c_depth + self.protected >= MAX_C_DEPTH {
            return Err(self.plain_error("C stack overflow"));
        }
        self.protected += 1;
        if id == crate::stdlib::PCALL_ID {
            self.push_lua_frame(func + 1, f, nargs - 1, want, FrameKind::PCall)
        } else {
            self.stack[func] = self.stack[func + 2];
            self.stack.copy_within(func + 3..func + 1 + nargs, func + 2);
            self.push_lua_frame(func + 1, f, nargs - 2, want, FrameKind::XPCall)
        }
    }

    /// Unwinds a catchable error to the innermost protected frame above
    /// this loop's entry frame, leaving `false, error` (after the message
    /// handler, for `xpcall`) as its results; otherwise returns the error
    /// (an exit or a yield passes every protected frame).
    #[cold]
    pub(crate) fn catch(&mut self, e: LuaError) -> LResult<()> {
        let mut k = self.frames.len();
        loop {
            if k == 0 {
                return Err(e);
            }
            k -= 1;
            match self.frames[k].kind {
                FrameKind::Lua => {}
                FrameKind::Entry => {
                    // Uncaught here: this loop's frames go (a yield keeps
                    // them: the thread resumes into them), their
                    // to-be-closed variables closed with the error.
                    if e.yielded {
                        return Err(e);
                    }
                    if e.catchable() {
                        self.note_error_trace(e.value);
                    }
                    let func = self.frames[k].func;
                    let e = self.close_tbc_unwinding(func, e);
                    self.frames.truncate(k);
                    return Err(e);
                }
                FrameKind::PCall | FrameKind::XPCall | FrameKind::Closing(_) if e.catchable() => {
                    break
                }
                FrameKind::PCall | FrameKind::XPCall | FrameKind::Closing(_) => {}
            }
        }
        self.error_trace = None;
        let e = self.handle_message(k, e)?;
        // The frames above the protected one are gone, their upvalues
        // closed first (as lua5.4's `luaF_close`); the protected frame
        // stays while the handlers of its to-be-closed variables run, so
        // one of them can yield (`Vm::go_on_closing`). An error in a
        // handler replaces the error.
        let f = &mut self.frames[k];
        let func = f.func;
        f.kind = match f.kind {
            FrameKind::PCall => FrameKind::Closing(false),
            FrameKind::XPCall => FrameKind::Closing(true),
            kind => kind,
        };
        self.close_upvals(func);
        self.frames.truncate(k + 1);
        self.in_builtin = false;
        self.builtin_from_rust = false;
        self.stack[func] = e.value;
        self.go_on_closing()
    }

    /// Goes on unwinding the error of the innermost frame, a
    /// [`FrameKind::Closing`] one (the error in its function's slot):
    /// calls the `__close` handlers of its variables still open (a yield
    /// in one leaves, and the resumed thread comes back here when the
    /// handler returns), then completes the protected call with `false`
    /// and the error (after `xpcall`'s message handler).
    pub(crate) fn go_on_closing(&mut self) -> LResult<()> {
        let k = self.frames.len() - 1;
        let func = self.frames[k].func;
        while let Some(&slot) = self.tbc.last().filter(|&&s| s >= func) {
            self.tbc.pop();
            let v = self.stack[slot];
            let err = self.stack[func];
            self.top = slot + 1;
            match self.call_close_with(v, err, true, Some(slot + 1)) {
                Ok(()) => {}
                Err(e) if e.yielded => return Err(e),
                Err(e) if e.catchable() => {
                    let e = self.handle_message(k, e)?;
                    self.stack[func] = e.value;
                }
                Err(e) => {
                    self.protected -= 1;
                    self.frames.truncate(k);
                    return Err(e);
                }
            }
        }
        self.protected -= 1;
        let want = self.frames[k].want;
        let err = self.stack[func];
        self.frames.truncate(k);
        let slot = func - 1;
        self.stack[slot] = Value::Bool(false);
        self.stack[slot + 1] = err;
        self.place_results(slot, slot, 2, want);
        Ok(())
    }

    /// `xpcall`'s message handler (waiting below the frame at `k`) applied
    /// to error `e` where it was raised, before anything is closed, as in
    /// lua5.4 (a traceback then shows where); an error in the handler is
    /// the result. `pcall`'s frame keeps `e`.
    fn handle_message(&mut self, k: usize, e: LuaError) -> LResult<LuaError> {
        if !matches!(
            self.frames[k].kind,
            FrameKind::XPCall | FrameKind::Closing(true)
        ) {
            return Ok(e);
        }
        let h = self.stack[self.frames[k].func - 1];
        let headroom = self.error_headroom;
        self.error_headroom = headroom + 3000;
        let r = self.call_meta_with(h, &[e.value], false);
        self.error_headroom = headroom;
        // The limit is checked when the stack grows: it must not stay
        // longer than the limit allows outside the handler (upvalues still
        // open up there are closed first).
        if self.stack.len() > MAX_STACK + 2000 + headroom {
            self.close_upvals(MAX_STACK + 2000 + headroom);
            self.stack.truncate(MAX_STACK + 2000 + headroom);
        }
        let value = match r {
            Ok(v) => v,
            Err(e2) if e2.catchable() => e2.value,
            Err(e2) => {
                self.protected -= 1;
                self.frames.truncate(k);
                return Err(e2);
            }
        };
        Ok(LuaError { value, ..e })
    }

    /// Keeps the traceback of error `v` while its frames are still there,
    /// unless it is the error already noted (passing an outer loop's entry).
    #[cold]
    fn note_error_trace(&mut self, v: Value) {
        if self.error_trace.as_ref().is_some_and(|(w, _)| w.raw_eq(v)) {
            return;
        }
        let t = crate::debuglib::error_traceback(self);
        self.error_trace = Some((v, t));
    }

    /// The dispatch loop of [`Vm::execute`].
    fn run_frames(&mut self) -> LResult<()> {
        let (mut proto, mut base, mut pc, mut cl) = {
            let f = self.frames.last().expect("a frame to run");
            (
                self.heap.closures.get(f.closure.0).proto.clone(),
                f.base,
                f.pc,
                f.closure,
            )
        };
        // Instructions borrowed from `self.fuel` (limits.rs): counted down
        // here in a register; `sync!` gives back what is left before any
        // call out (which may run Lua code that spends `self.fuel` itself,
        // or fail), so `self.fuel + fuel` is always the true budget.
        let mut fuel: i64 = 0;
        macro_rules! give_back {
            () => {{
                self.fuel += fuel;
                fuel = 0;
            }};
        }
        macro_rules! sync {
            () => {{
                self.save_pc(pc);
                give_back!();
            }};
        }
        // Leaves with error `e` (after `save_pc`), giving the fuel back.
        macro_rules! fail {
            ($e:expr) => {{
                let e = $e;
                self.fuel += fuel;
                return Err(e);
            }};
        }
        macro_rules! reload {
            () => {{
                let f = self.frames.last().expect("a frame to run");
                proto = self.heap.closures.get(f.closure.0).proto.clone();
                base = f.base;
                pc = f.pc;
                cl = f.closure;
            }};
        }
        macro_rules! take_jump {
            ($cond:expr) => {{
                if $cond {
                    if let Op::Jmp(off) = proto.code[pc] {
                        pc = (pc as i64 + 1 + off as i64) as usize;
                    } else {
                        pc += 1;
                    }
                } else {
                    pc += 1;
                }
            }};
        }
        macro_rules! arith_rr {
            ($a:expr, $b:expr, $c:expr, $ev:expr, $iop:expr, $fop:expr) => {{
                // Matched by reference: the operands' tags are read in
                // place rather than after copying both 16-byte values.
                let r = match (&rk!(self, base, $b), &rk!(self, base, $c)) {
                    (&Value::Int(p), &Value::Int(q)) => Value::Int($iop(p, q)),
                    (&Value::Float(p), &Value::Float(q)) => Value::Float($fop(p, q)),
                    (&Value::Int(p), &Value::Float(q)) => Value::Float($fop(p as f64, q)),
                    (&Value::Float(p), &Value::Int(q)) => Value::Float($fop(p, q as f64)),
                    (&x, &y) => {
                        sync!();
                        self.arith($ev, x, y, Some($b), Some($c))?
                    }
                };
                rk!(self, base, $a) = r;
            }};
        }
        macro_rules! arith_rk {
            ($a:expr, $b:expr, $k:expr, $ev:expr, $iop:expr, $fop:expr) => {{
                let r = match (&rk!(self, base, $b), &proto.consts[$k as usize]) {
                    (&Value::Int(p), &Value::Int(q)) => Value::Int($iop(p, q)),
                    (&Value::Float(p), &Value::Float(q)) => Value::Float($fop(p, q)),
                    (&Value::Int(p), &Value::Float(q)) => Value::Float($fop(p as f64, q)),
                    (&Value::Float(p), &Value::Int(q)) => Value::Float($fop(p, q as f64)),
                    (&x, &y) => {
                        sync!();
                        self.arith($ev, x, y, Some($b), None)?
                    }
                };
                rk!(self, base, $a) = r;
            }};
        }
        macro_rules! arith_slow_only {
            ($a:expr, $x:expr, $y:expr, $ev:expr, $rx:expr, $ry:expr) => {{
                let r = match (&$x, &$y) {
                    (&Value::Float(p), &Value::Float(q)) if $ev == Event::Div => {
                        Value::Float(p / q)
                    }
                    (&x, &y) => {
                        sync!();
                        self.arith($ev, x, y, $rx, $ry)?
                    }
                };
                rk!(self, base, $a) = r;
            }};
        }
        loop {
            // The common instructions run in the hot loop, which returns
            // here for the others (and at a fast path's miss).
            #[cfg(test)]
            let hot = !self.no_hot_loop;
            #[cfg(not(test))]
            let hot = true;
            if hot {
                if self.stack.len() < base + hot::WINDOW {
                    self.widen_window(base);
                }
                let changed;
                (pc, fuel, changed) = self.run_hot(&proto, cl, base, pc, fuel);
                if changed {
                    reload!();
                }
            }
            // The step budget: one per instruction (limits.rs).
            fuel -= 1;
            if fuel < 0 {
                // Usually just after a call out gave the fuel back.
                if self.fuel.saturating_add(fuel) >= FUEL_SLICE {
                    self.fuel += fuel - FUEL_SLICE;
                    fuel = FUEL_SLICE;
                } else {
                    fuel = self.borrow_fuel(fuel, pc)?;
                }
            }
            let op = proto.code[pc];
            pc += 1;
            match op {
                Op::Move(a, b) => rk!(self, base, a) = rk!(self, base, b),
                Op::LoadK(a, k) => rk!(self, base, a) = proto.consts[k as usize],
                Op::LoadI(a, i) => rk!(self, base, a) = Value::Int(i as i64),
                Op::LoadNil(a, n) => {
                    for i in 0..=n as usize {
                        self.stack[base + a as usize + i] = Value::Nil;
                    }
                }
                Op::LoadBool(a, b) => rk!(self, base, a) = Value::Bool(b),
                Op::GetUpval(a, u) => rk!(self, base, a) = self.upval_get(cl, u),
                Op::SetUpval(a, u) => {
                    let v = rk!(self, base, a);
                    self.upval_set(cl, u, v);
                }
                Op::GetGlobal(a, k) => {
                    let key = proto.consts[k as usize];
                    let v = self.heap.table(self.globals).get_str(key);
                    if matches!(v, Value::Nil) && self.heap.table(self.globals).meta.is_some() {
                        sync!();
                        let v = self.index(Value::Table(self.globals), key, None)?;
                        rk!(self, base, a) = v;
                    } else {
                        rk!(self, base, a) = v;
                    }
                }
                Op::SetGlobal(a, k) => {
                    let key = proto.consts[k as usize];
                    let v = rk!(self, base, a);
                    if self.heap.table(self.globals).meta.is_some() {
                        sync!();
                        self.set_index(Value::Table(self.globals), key, v, None)?;
                    } else {
                        self.heap.table_mut(self.globals).set(key, v);
                    }
                }
                // Table operands are matched in place (`match rk!(..)`):
                // a value is copied out only for the slow path, so no
                // 16-byte copy waits on the stores that just wrote it.
                Op::GetField(a, b, k) => {
                    if let Value::Table(tr) = rk!(self, base, b) {
                        if let Some(v) = self.index_tables(tr, proto.consts[k as usize]) {
                            rk!(self, base, a) = v;
                            continue;
                        }
                    }
                    sync!();
                    let (t, key) = (rk!(self, base, b), proto.consts[k as usize]);
                    let v = self.index(t, key, Some(b))?;
                    rk!(self, base, a) = v;
                }
                Op::GetIndex(a, b, i) => {
                    if let Value::Table(tr) = rk!(self, base, b) {
                        if let Some(v) = self.index_int(tr, i as i64) {
                            rk!(self, base, a) = v;
                            continue;
                        }
                    }
                    sync!();
                    let t = rk!(self, base, b);
                    let v = self.index(t, Value::Int(i as i64), Some(b))?;
                    rk!(self, base, a) = v;
                }
                Op::GetTable(a, b, c) => {
                    if let Value::Table(tr) = rk!(self, base, b) {
                        let hit = match rk!(self, base, c) {
                            Value::Int(i) => self.index_int(tr, i),
                            key => self.index_tables(tr, key),
                        };
                        if let Some(v) = hit {
                            rk!(self, base, a) = v;
                            continue;
                        }
                    }
                    sync!();
                    let (t, key) = (rk!(self, base, b), rk!(self, base, c));
                    let v = self.index(t, key, Some(b))?;
                    rk!(self, base, a) = v;
                }
                Op::SetField(a, k, c) => {
                    let key = proto.consts[k as usize];
                    if let Value::Table(tr) = rk!(self, base, a) {
                        let v = rk!(self, base, c);
                        if self.heap.table_mut(tr).replace_field(key, v) {
                            continue;
                        }
                        if self.newindex_is_raw(tr, key) {
                            if let Err(e) = self.table_set(tr, key, v) {
                                fail!(e);
                            }
                            continue;
                        }
                    }
                    sync!();
                    let (t, v) = (rk!(self, base, a), rk!(self, base, c));
                    self.set_index(t, key, v, Some(a))?;
                }
                Op::SetTable(a, b, c) => {
                    if let Value::Table(tr) = rk!(self, base, a) {
                        let done = match rk!(self, base, b) {
                            Value::Int(i) => {
                                let v = rk!(self, base, c);
                                let tab = self.heap.table_mut(tr);
                                let idx = (i as u64).wrapping_sub(1);
                                if idx < tab.arr.len() as u64
                                    && (tab.meta.is_none()
                                        || !matches!(tab.arr[idx as usize], Value::Nil))
                                {
                                    // An existing array slot: no growth, no
                                    // `__newindex`.
                                    tab.arr[idx as usize] = v;
                                    Some(Ok(()))
                                } else if self.newindex_is_raw(tr, Value::Int(i)) {
                                    Some(self.table_set_int(tr, i, v))
                                } else {
                                    None
                                }
                            }
                            // Keys Lua rejects take the general path.
                            Value::Nil => None,
                            Value::Float(f) if f.is_nan() => None,
                            key if self.newindex_is_raw(tr, key) => {
                                let v = rk!(self, base, c);
                                Some(self.table_set(tr, key, v))
                            }
                            _ => None,
                        };
                        if let Some(r) = done {
                            if let Err(e) = r {
                                fail!(e);
                            }
                            continue;
                        }
                    }
                    sync!();
                    let (t, key, v) = (rk!(self, base, a), rk!(self, base, b), rk!(self, base, c));
                    self.set_index(t, key, v, Some(a))?;
                }
                Op::NewTable(a, narr, nhash) => {
                    sync!();
                    self.gc_check();
                    let t = self.heap.new_table_sized(narr as usize, nhash as usize);
                    rk!(self, base, a) = Value::Table(t);
                }
                Op::SetList(a, n, start) => {
                    let n = if n == 0 {
                        self.top - (base + a as usize + 1)
                    } else {
                        n as usize
                    };
                    let Value::Table(t) = rk!(self, base, a) else {
                        unreachable!("SetList on a constructor's table")
                    };
                    for i in 0..n {
                        let v = self.stack[base + a as usize + 1 + i];
                        if let Err(e) = self.table_set_list_item(t, start as i64 + i as i64, v) {
                            fail!(e);
                        }
                    }
                }
                Op::SelfOp(a, b, k) => {
                    let obj = rk!(self, base, b);
                    let key = proto.consts[k as usize];
                    rk!(self, base, a + 1) = obj;
                    let hit = match rk!(self, base, b) {
                        Value::Table(tr) => self.index_tables(tr, key),
                        // `s:sub(i, j)`: the string library through the
                        // strings' metatable.
                        Value::Str(_) => self.string_meta.and_then(|mt| self.index_chain(mt, key)),
                        _ => None,
                    };
                    if let Some(v) = hit {
                        rk!(self, base, a) = v;
                        continue;
                    }
                    sync!();
                    let v = self.index(obj, key, Some(b))?;
                    rk!(self, base, a) = v;
                }
                Op::Add(a, b, c) => {
                    arith_rr!(a, b, c, Event::Add, i64::wrapping_add, |p: f64, q: f64| p
                        + q)
                }
                Op::Sub(a, b, c) => {
                    arith_rr!(a, b, c, Event::Sub, i64::wrapping_sub, |p: f64, q: f64| p
                        - q)
                }
                Op::Mul(a, b, c) => {
                    arith_rr!(a, b, c, Event::Mul, i64::wrapping_mul, |p: f64, q: f64| p
                        * q)
                }
                Op::AddK(a, b, k) => {
                    arith_rk!(a, b, k, Event::Add, i64::wrapping_add, |p: f64, q: f64| p
                        + q)
                }
                Op::SubK(a, b, k) => {
                    let (x, y) = (rk!(self, base, b), proto.consts[k as usize]);
                    rk!(self, base, a) = match sub_const(x, y) {
                        Some(v) => v,
                        None => {
                            sync!();
                            self.arith(Event::Sub, x, y, Some(b), None)?
                        }
                    };
                }
                Op::MulK(a, b, k) => {
                    arith_rk!(a, b, k, Event::Mul, i64::wrapping_mul, |p: f64, q: f64| p
                        * q)
                }
                Op::Div(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::Div,
                        Some(b),
                        Some(c)
                    )
                }
                Op::DivK(a, b, k) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        proto.consts[k as usize],
                        Event::Div,
                        Some(b),
                        None
                    )
                }
                Op::Mod(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::Mod,
                        Some(b),
                        Some(c)
                    )
                }
                Op::ModK(a, b, k) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        proto.consts[k as usize],
                        Event::Mod,
                        Some(b),
                        None
                    )
                }
                Op::Pow(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::Pow,
                        Some(b),
                        Some(c)
                    )
                }
                Op::PowK(a, b, k) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        proto.consts[k as usize],
                        Event::Pow,
                        Some(b),
                        None
                    )
                }
                Op::IDiv(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::IDiv,
                        Some(b),
                        Some(c)
                    )
                }
                Op::IDivK(a, b, k) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        proto.consts[k as usize],
                        Event::IDiv,
                        Some(b),
                        None
                    )
                }
                Op::BAnd(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::BAnd,
                        Some(b),
                        Some(c)
                    )
                }
                Op::BOr(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::BOr,
                        Some(b),
                        Some(c)
                    )
                }
                Op::BXor(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::BXor,
                        Some(b),
                        Some(c)
                    )
                }
                Op::Shl(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::Shl,
                        Some(b),
                        Some(c)
                    )
                }
                Op::Shr(a, b, c) => {
                    arith_slow_only!(
                        a,
                        rk!(self, base, b),
                        rk!(self, base, c),
                        Event::Shr,
                        Some(b),
                        Some(c)
                    )
                }
                Op::Unm(a, b) => {
                    let x = rk!(self, base, b);
                    let r = match x {
                        Value::Int(i) => Value::Int(i.wrapping_neg()),
                        Value::Float(f) => Value::Float(-f),
                        _ => {
                            sync!();
                            let h = self.metamethod(x, Event::Unm);
                            if self.tonumber_coerce(x).is_none() && !matches!(h, Value::Nil) {
                                self.call_meta(h, &[x, x])?
                            } else {
                                self.arith(Event::Unm, x, x, Some(b), Some(b))?
                            }
                        }
                    };
                    rk!(self, base, a) = r;
                }
                Op::BNot(a, b) => {
                    let x = rk!(self, base, b);
                    let r = match x {
                        Value::Int(i) => Value::Int(!i),
                        _ => {
                            sync!();
                            self.arith(Event::BNot, x, x, Some(b), Some(b))?
                        }
                    };
                    rk!(self, base, a) = r;
                }
                Op::Not(a, b) => rk!(self, base, a) = Value::Bool(!rk!(self, base, b).truthy()),
                Op::Len(a, b) => {
                    let x = rk!(self, base, b);
                    let r = match x {
                        Value::Table(t) if self.no_len_metamethod(t) => {
                            Value::Int(self.heap.table(t).border())
                        }
                        _ => {
                            sync!();
                            self.length(x, Some(b))?
                        }
                    };
                    rk!(self, base, a) = r;
                }
                Op::Concat(a, b, n) => {
                    sync!();
                    self.gc_check();
                    let v = self.concat(base + b as usize, n as usize, b)?;
                    rk!(self, base, a) = v;
                }
                Op::Jmp(off) => pc = (pc as i64 + off as i64) as usize,
                Op::Eq(a, b, k) => {
                    let r = match (&rk!(self, base, a), &rk!(self, base, b)) {
                        (&Value::Table(_), &Value::Table(_)) => {
                            sync!();
                            let (x, y) = (rk!(self, base, a), rk!(self, base, b));
                            self.equals(x, y)?
                        }
                        (x, y) => x.raw_eq(*y),
                    };
                    take_jump!(r == k);
                }
                Op::EqK(a, c, k) => {
                    let r = rk!(self, base, a).raw_eq(proto.consts[c as usize]);
                    take_jump!(r == k);
                }
                Op::Lt(a, b, k) => {
                    let r = match (&rk!(self, base, a), &rk!(self, base, b)) {
                        (&Value::Int(p), &Value::Int(q)) => p < q,
                        (&Value::Float(p), &Value::Float(q)) => p < q,
                        (&x, &y) => {
                            sync!();
                            self.less(x, y, false)?
                        }
                    };
                    take_jump!(r == k);
                }
                Op::Le(a, b, k) => {
                    let r = match (&rk!(self, base, a), &rk!(self, base, b)) {
                        (&Value::Int(p), &Value::Int(q)) => p <= q,
                        (&Value::Float(p), &Value::Float(q)) => p <= q,
                        (&x, &y) => {
                            sync!();
                            self.less(x, y, true)?
                        }
                    };
                    take_jump!(r == k);
                }
                Op::LtI(a, i, k) | Op::LeI(a, i, k) | Op::GtI(a, i, k) | Op::GeI(a, i, k) => {
                    let i = i as i64;
                    // A match on the register itself: the value is
                    // copied out only in the slow arm.
                    let r = match rk!(self, base, a) {
                        Value::Int(p) => match op {
                            Op::LtI(..) => p < i,
                            Op::LeI(..) => p <= i,
                            Op::GtI(..) => p > i,
                            _ => p >= i,
                        },
                        Value::Float(p) => {
                            let q = i as f64;
                            match op {
                                Op::LtI(..) => p < q,
                                Op::LeI(..) => p <= q,
                                Op::GtI(..) => p > q,
                                _ => p >= q,
                            }
                        }
                        x => {
                            sync!();
                            let y = Value::Int(i);
                            match op {
                                Op::LtI(..) => self.less(x, y, false)?,
                                Op::LeI(..) => self.less(x, y, true)?,
                                Op::GtI(..) => self.less(y, x, false)?,
                                _ => self.less(y, x, true)?,
                            }
                        }
                    };
                    take_jump!(r == k);
                }
                Op::Test(a, k) => take_jump!(rk!(self, base, a).truthy() == k),
                Op::Call(a, b, c) => {
                    let func = base + a as usize;
                    let nargs = if b == 0 {
                        self.top - func - 1
                    } else {
                        b as usize - 1
                    };
                    let want = c as i32 - 1;
                    self.save_pc(pc);
                    match self.stack[func] {
                        // Pushing a frame runs no Lua code: the fuel stays.
                        Value::Func(f) => {
                            if let Err(e) =
                                self.push_lua_frame(func, f, nargs, want, FrameKind::Lua)
                            {
                                fail!(e);
                            }
                            reload!();
                        }
                        Value::Builtin(id) if self.protects_lua_call(id, func, nargs) => {
                            if let Err(e) = self.enter_protected(func, nargs, want, id) {
                                fail!(e);
                            }
                            reload!();
                        }
                        Value::Builtin(id) => {
                            give_back!();
                            let bf = self.builtins[id as usize].1;
                            self.top = func + 1 + nargs;
                            self.ensure_stack(func + nargs + 8)?;
                            // A safe point: library functions allocate too
                            // (a loop of string.rep calls must collect).
                            self.gc_check();
                            self.in_builtin = true;
                            let r = bf(self, func + 1, nargs);
                            self.in_builtin = false;
                            let (start, n) = r?;
                            self.charge_steps((nargs + n) as u64)?;
                            self.place_results(func, start, n, want);
                        }
                        other => {
                            // `__call` handlers: a Lua one runs in this loop
                            // (no Rust re-entry, so a yield can cross it).
                            give_back!();
                            let nargs = self.insert_call_handlers(func, nargs, other, Some(a))?;
                            if let Value::Func(f) = self.stack[func] {
                                if let Err(e) =
                                    self.push_lua_frame(func, f, nargs, want, FrameKind::Lua)
                                {
                                    fail!(e);
                                }
                                reload!();
                            } else {
                                self.call_at(func, nargs, want)?;
                            }
                        }
                    }
                }
                Op::TailCall(a, b) => {
                    let func = base + a as usize;
                    let nargs = if b == 0 {
                        self.top - func - 1
                    } else {
                        b as usize - 1
                    };
                    self.save_pc(pc);
                    match self.stack[func] {
                        // As for Call: the fuel stays.
                        Value::Func(f)
                            if self.heap.closures.get(f.0).proto.keeps_caller_frame.get() =>
                        {
                            // Called as by `Call`; the `Return` after this
                            // instruction returns its results.
                            if let Err(e) = self.push_lua_frame(func, f, nargs, -1, FrameKind::Lua)
                            {
                                fail!(e);
                            }
                            reload!();
                        }
                        Value::Func(f) => {
                            self.close_upvals(base);
                            let frame = self.frames.pop().expect("the running frame");
                            let dst = frame.func;
                            self.stack.copy_within(func..func + 1 + nargs, dst);
                            if let Err(e) =
                                self.push_lua_frame(dst, f, nargs, frame.want, frame.kind)
                            {
                                fail!(e);
                            }
                            reload!();
                        }
                        Value::Builtin(id) if self.protects_lua_call(id, func, nargs) => {
                            // `return pcall(f)`: a protected frame; the
                            // `Return` after this instruction returns its results.
                            if let Err(e) = self.enter_protected(func, nargs, -1, id) {
                                fail!(e);
                            }
                            reload!();
                        }
                        Value::Builtin(id) => {
                            give_back!();
                            let bf = self.builtins[id as usize].1;
                            self.top = func + 1 + nargs;
                            self.ensure_stack(func + nargs + 8)?;
                            self.in_builtin = true;
                            let r = bf(self, func + 1, nargs);
                            self.in_builtin = false;
                            let (start, n) = r?;
                            self.charge_steps((nargs + n) as u64)?;
                            self.place_results(func, start, n, -1);
                        }
                        other => {
                            // `__call` handlers: a Lua one is tail-called in
                            // this loop, so a chain of them does not grow
                            // the Rust stack (calls.lua's 10 000 deep chain).
                            give_back!();
                            let nargs = self.insert_call_handlers(func, nargs, other, Some(a))?;
                            match self.stack[func] {
                                Value::Func(f)
                                    if !self
                                        .heap
                                        .closures
                                        .get(f.0)
                                        .proto
                                        .keeps_caller_frame
                                        .get() =>
                                {
                                    self.close_upvals(base);
                                    let frame = self.frames.pop().expect("the running frame");
                                    let dst = frame.func;
                                    self.stack.copy_within(func..func + 1 + nargs, dst);
                                    if let Err(e) =
                                        self.push_lua_frame(dst, f, nargs, frame.want, frame.kind)
                                    {
                                        fail!(e);
                                    }
                                    reload!();
                                }
                                Value::Func(f) => {
                                    if let Err(e) =
                                        self.push_lua_frame(func, f, nargs, -1, FrameKind::Lua)
                                    {
                                        fail!(e);
                                    }
                                    reload!();
                                }
                                _ => {
                                    self.call_at(func, nargs, -1)?;
                                }
                            }
                        }
                    }
                }
                Op::Return(a, b) => {
                    let first = base + a as usize;
                    let n = if b == 0 {
                        self.top - first
                    } else {
                        b as usize - 1
                    };
                    if let Some(&(i, _)) = self.open_upvals.last() {
                        if i >= base {
                            self.close_upvals(base);
                        }
                    }
                    let (dst, want, kind) = {
                        let f = self.frames.last().expect("the running frame");
                        (f.func, f.want, f.kind)
                    };
                    self.frames.truncate(self.frames.len() - 1);
                    if kind == FrameKind::Lua && want >= 0 && n >= want as usize {
                        // The common case inline: a fixed number of results
                        // the function has (usually one).
                        let w = want as usize;
                        for i in 0..w {
                            self.stack[dst + i] = self.stack[first + i];
                        }
                        self.top = dst + w;
                    } else if kind == FrameKind::Lua {
                        self.place_results(dst, first, n, want);
                    } else if kind == FrameKind::Entry {
                        self.place_results(dst, first, n, want);
                        self.fuel += fuel;
                        return Ok(());
                    } else {
                        // A protected call returns normally: `true` first.
                        self.protected -= 1;
                        self.place_results(dst, first, n, -1);
                        self.stack[dst - 1] = Value::Bool(true);
                        self.place_results(dst - 1, dst - 1, n + 1, want);
                    }
                    reload!();
                }
                Op::ForPrep(a, off) => {
                    let ra = base + a as usize;
                    let (init, limit, step) =
                        (self.stack[ra], self.stack[ra + 1], self.stack[ra + 2]);
                    sync!();
                    match self.for_prep(init, limit, step)? {
                        None => pc = (pc as i64 + off as i64) as usize,
                        Some((i, l, s)) => {
                            self.stack[ra] = i;
                            self.stack[ra + 1] = l;
                            self.stack[ra + 2] = s;
                            self.stack[ra + 3] = i;
                        }
                    }
                }
                Op::ForLoop(a, off) => {
                    // The four loop registers as one slice: one bounds check.
                    let w = &mut self.stack[base + a as usize..base + a as usize + 4];
                    match for_loop_step(w) {
                        Some(true) => pc = (pc as i64 + off as i64) as usize,
                        Some(false) => {}
                        None => unreachable!("ForPrep normalized the loop"),
                    }
                }
                Op::TForCall(a, c) => {
                    let ra = base + a as usize;
                    let f = self.stack[ra];
                    if let (Value::Builtin(id), Value::Table(t)) = (f, self.stack[ra + 1]) {
                        if id == crate::stdlib::NEXT_ID {
                            let k = self.stack[ra + 2];
                            match self.heap.table(t).next(k) {
                                Ok(Some((nk, nv))) => {
                                    self.stack[ra + 4] = nk;
                                    if c >= 2 {
                                        self.stack[ra + 5] = nv;
                                    }
                                }
                                Ok(None) => self.stack[ra + 4] = Value::Nil,
                                Err(()) => {
                                    self.save_pc(pc);
                                    // Raised inside `next`: no position.
                                    fail!(self.plain_error("invalid key to 'next'"));
                                }
                            }
                            for i in 2..c as usize {
                                self.stack[ra + 4 + i] = Value::Nil;
                            }
                            continue;
                        }
                    }
                    self.stack[ra + 4] = f;
                    self.stack[ra + 5] = self.stack[ra + 1];
                    self.stack[ra + 6] = self.stack[ra + 2];
                    sync!();
                    match f {
                        Value::Func(fr) => {
                            self.push_lua_frame(ra + 4, fr, 2, c as i32, FrameKind::Lua)?;
                            reload!();
                        }
                        Value::Builtin(id) => {
                            // Called from Lua code, like `Call`.
                            let bf = self.builtins[id as usize].1;
                            self.top = ra + 7;
                            self.ensure_stack(ra + 17)?;
                            self.in_builtin = true;
                            let r = bf(self, ra + 5, 2);
                            self.in_builtin = false;
                            let (start, n) = r?;
                            self.place_results(ra + 4, start, n, c as i32);
                        }
                        _ => {
                            self.top = ra + 7;
                            self.call_at(ra + 4, 2, c as i32)?;
                        }
                    }
                }
                Op::TForLoop(a, off) => {
                    let ra = base + a as usize;
                    let v = self.stack[ra + 4];
                    if !matches!(v, Value::Nil) {
                        self.stack[ra + 2] = v;
                        pc = (pc as i64 + off as i64) as usize;
                    }
                }
                Op::Closure(a, idx) => {
                    sync!();
                    self.gc_check();
                    let p = proto.protos[idx as usize].clone();
                    let mut ups = Vec::with_capacity(p.upvals.len());
                    for d in &p.upvals {
                        if d.in_stack {
                            ups.push(self.find_upval(base + d.index as usize));
                        } else {
                            ups.push(self.heap.closures.get(cl.0).upvals[d.index as usize]);
                        }
                    }
                    let f = self.heap.new_closure(Closure {
                        proto: p,
                        upvals: ups.into_boxed_slice(),
                    });
                    rk!(self, base, a) = Value::Func(f);
                }
                Op::VarArg(a, c) => {
                    let nvar = self.frames.last().expect("running").nvarargs;
                    let from = base - nvar;
                    let dst = base + a as usize;
                    if c == 0 {
                        sync!();
                        self.ensure_stack(dst + nvar + 1)?;
                        self.stack.copy_within(from..from + nvar, dst);
                        self.top = dst + nvar;
                        // A bulk copy: one step per value (limits.rs).
                        fuel -= nvar as i64;
                    } else {
                        let want = c as usize - 1;
                        for i in 0..want {
                            self.stack[dst + i] = if i < nvar {
                                self.stack[from + i]
                            } else {
                                Value::Nil
                            };
                        }
                    }
                }
                Op::Close(a) => {
                    let level = base + a as usize;
                    self.close_upvals(level);
                    if self.tbc.last().is_some_and(|&s| s >= level) {
                        self.save_pc(pc);
                        self.close_tbc(level)?;
                    }
                }
                Op::Tbc(a) => {
                    let v = rk!(self, base, a);
                    if !matches!(v, Value::Nil | Value::Bool(false)) {
                        if matches!(self.metamethod(v, Event::Close), Value::Nil) {
                            self.save_pc(pc);
                            let name = self.local_name(a);
                            return Err(self
                                .rt_error(format!("variable '{name}' got a non-closable value")));
                        }
                        self.tbc.push(base + a as usize);
                    }
                }
            }
        }
    }

    /// A `for` control value that is not a number, in the reference's
    /// (5.4.7's) words; 5.4.4 said "'for' limit must be a number".
    #[cold]
    fn for_error(&mut self, what: &str, v: Value) -> LuaError {
        let tn = self.type_name_meta(v);
        self.rt_error(format!("bad 'for' {what} (number expected, got {tn})"))
    }

    /// Normalizes a numeric for loop: `None` if it runs zero times, else
    /// (index, limit-or-count, step). Integer loops precompute their
    /// iteration count so they never overflow.
    fn for_prep(
        &mut self,
        init: Value,
        limit: Value,
        step: Value,
    ) -> LResult<Option<(Value, Value, Value)>> {
        // A numeric string is a number here (lua5.4's `forprep` converts
        // it): the limit becomes an integer or a float, and a string start
        // or step makes the loop a float loop.
        let limit = match limit {
            Value::Str(_) => self.tonumber_coerce(limit).unwrap_or(limit),
            _ => limit,
        };
        if let (Value::Int(i), Value::Int(s)) = (init, step) {
            if s == 0 {
                return Err(self.rt_error("'for' step is zero"));
            }
            let lim = match limit {
                Value::Int(l) => l,
                Value::Float(f) => {
                    if f.is_nan() {
                        return Ok(None);
                    }
                    let fl = if s > 0 { f.floor() } else { f.ceil() };
                    // Beyond the integers (lua5.4's `forlimit`): a loop
                    // towards it is clipped, one away from it never runs.
                    if fl >= 9.223_372_036_854_776e18 {
                        if s < 0 {
                            return Ok(None);
                        }
                        i64::MAX
                    } else if fl < -9.223_372_036_854_776e18 {
                        if s > 0 {
                            return Ok(None);
                        }
                        i64::MIN
                    } else {
                        fl as i64
                    }
                }
                _ => return Err(self.for_error("limit", limit)),
            };
            return Ok(int_for_count(i, lim, s)
                .map(|count| (Value::Int(i), Value::Int(count), Value::Int(s))));
        }
        let f = |vm: &Vm, v: Value| match vm.tonumber_coerce(v) {
            Some(Value::Int(i)) => Some(i as f64),
            Some(Value::Float(f)) => Some(f),
            _ => None,
        };
        let Some(fl) = f(self, limit) else {
            return Err(self.for_error("limit", limit));
        };
        let Some(fs) = f(self, step) else {
            return Err(self.for_error("step", step));
        };
        let Some(fi) = f(self, init) else {
            return Err(self.for_error("initial value", init));
        };
        if fs == 0.0 {
            return Err(self.rt_error("'for' step is zero"));
        }
        if if fs > 0.0 { fi > fl } else { fi < fl } {
            return Ok(None);
        }
        Ok(Some((Value::Float(fi), Value::Float(fl), Value::Float(fs))))
    }

    /// A main function's closure: its one upvalue `_ENV` holds `env`, or
    /// the globals table.
    pub fn chunk_closure(&mut self, proto: Rc<Proto>, env: Option<Value>) -> FnRef {
        let env = env.unwrap_or(Value::Table(self.globals));
        let u = self.heap.new_upval(UpVal::Closed(env));
        self.heap.new_closure(Closure {
            proto,
            upvals: Box::new([u]),
        })
    }

    /// Compiles and runs a chunk as the main function with `args` as `...`.
    pub fn run_main(&mut self, proto: Rc<Proto>, args: &[Value]) -> LResult<()> {
        let f = self.chunk_closure(proto, None);
        let at = self.frame_top();
        self.ensure_stack(at + args.len() + 2)?;
        self.stack[at] = Value::Func(f);
        self.stack[at + 1..at + 1 + args.len()].copy_from_slice(args);
        self.call_at(at, args.len(), 0)?;
        Ok(())
    }
}

/// The stack length a call of `proto` at `func` with `nargs` arguments
/// needs: its registers (above the extra arguments of a vararg function)
/// and one slot more.
#[inline(always)]
fn frame_end(proto: &Proto, func: usize, nargs: usize) -> usize {
    let base = if proto.is_vararg {
        func + 1 + nargs
    } else {
        func + 1
    };
    base + proto.max_stack as usize + 1
}

/// Pushes the frame of a call of closure `cl` (prototype `proto`) at
/// `func` with `nargs` arguments, whose [`frame_end`] is within `stack`:
/// missing parameters become nil; a vararg function's fixed parameters
/// are copied above its extra arguments (as in lua5.4).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn push_frame(
    stack: &mut [Value],
    frames: &mut Vec<Frame>,
    proto: &Proto,
    func: usize,
    cl: FnRef,
    nargs: usize,
    want: i32,
    kind: FrameKind,
) -> usize {
    let np = proto.num_params as usize;
    let (base, nvarargs) = if proto.is_vararg {
        let nvar = nargs.saturating_sub(np);
        let base = func + 1 + nargs;
        for i in 0..np {
            stack[base + i] = if i < nargs {
                stack[func + 1 + i]
            } else {
                Value::Nil
            };
        }
        (base, nvar)
    } else {
        let base = func + 1;
        // Usually every parameter has its argument: one test.
        if nargs < np {
            stack[base + nargs..base + np].fill(Value::Nil);
        }
        (base, 0)
    };
    frames.push(Frame {
        func,
        base,
        pc: 0,
        closure: cl,
        nvarargs,
        want,
        kind,
    });
    base
}

/// The raw field of event `e` in the metatable `mt`, answered from the
/// table's cached facts when it was looked up before and the table has
/// not been written since (lua5.4's `fasttm`): objects' misses and new
/// keys ask their metatable for `__index`/`__newindex` every time.
/// `names` are the interned event names ([`Vm::event_name`]). Free
/// functions over the heap (not `Vm` methods) so the dispatch loop's hot
/// part can call them while it holds the value stack borrowed.
#[inline(always)]
fn meta_field(heap: &Heap, names: &[Value], mt: TableRef, e: Event) -> Value {
    let t = heap.table(mt);
    if e == Event::Index {
        if let Some(class) = t.known_index_table() {
            return Value::Table(class);
        }
    }
    if t.known_absent(e as u32) {
        return Value::Nil;
    }
    let v = t.get_str(names[e as usize]);
    match v {
        Value::Nil => t.learn_absent(e as u32),
        Value::Table(class) if e == Event::Index => t.learn_index_table(class),
        _ => {}
    }
    v
}

/// `t[k]` for a table `t`, following `__index` fields that are tables
/// (the class chains of object-oriented code) without leaving the
/// dispatch loop: `Some(v)` when no step needs a metamethod call or an
/// error, `None` to take the general [`Vm::index`] (same result). The
/// first probe is inlined (a field of the object itself); the walk up
/// the chain is not.
#[inline(always)]
fn index_tables(heap: &Heap, names: &[Value], tr: TableRef, k: Value) -> Option<Value> {
    let tab = heap.table(tr);
    let v = match k {
        Value::Str(_) => tab.get_str(k),
        _ => tab.get(k),
    };
    if !matches!(v, Value::Nil) {
        return Some(v);
    }
    let mt = match tab.meta {
        None => return Some(Value::Nil),
        Some(mt) => mt,
    };
    // The first step up the chain inline when the metatable's `__index`
    // is known to be a table (a method of the object's class).
    if let Some(class) = heap.table(mt).known_index_table() {
        let tab = heap.table(class);
        let v = match k {
            Value::Str(_) => tab.get_str(k),
            _ => tab.get(k),
        };
        return match (v, tab.meta) {
            (Value::Nil, Some(next)) => index_chain(heap, names, next, k),
            _ => Some(v),
        };
    }
    index_chain(heap, names, mt, k)
}

/// [`index_tables`] for a constant string key `s` (`obj.name`,
/// `obj:name()`), with the instruction's inline cache `hint` tried first
/// in the object and in its class ([`Table::get_str_hinted`]): a field of
/// the object or a method of its class is usually found without hashing.
/// The value is copied from its slot to `dst` whole; false, leaving `dst`
/// alone, when the general path must answer.
#[inline(always)]
fn index_field(
    heap: &Heap,
    names: &[Value],
    tr: TableRef,
    s: StrRef,
    hint: &Cell<u32>,
    dst: &mut Value,
) -> bool {
    let tab = heap.table(tr);
    let v = tab.get_str_hinted(s, hint);
    if !matches!(v, Value::Nil) {
        *dst = *v;
        return true;
    }
    let mt = match tab.meta {
        None => {
            *dst = Value::Nil;
            return true;
        }
        Some(mt) => mt,
    };
    if let Some(class) = heap.table(mt).known_index_table() {
        let tab = heap.table(class);
        let v = tab.get_str_hinted(s, hint);
        if !matches!(v, Value::Nil) || tab.meta.is_none() {
            *dst = *v;
            return true;
        }
        let next = tab.meta.expect("checked above");
        return index_chain_to(heap, names, next, Value::Str(s), dst);
    }
    index_chain_to(heap, names, mt, Value::Str(s), dst)
}

/// [`index_chain`] into `dst` (left alone when it gives up).
#[inline(always)]
fn index_chain_to(heap: &Heap, names: &[Value], mt: TableRef, k: Value, dst: &mut Value) -> bool {
    match index_chain(heap, names, mt, k) {
        Some(v) => {
            *dst = v;
            true
        }
        None => false,
    }
}

/// [`index_tables`] for an integer key (the array part first).
#[inline(always)]
fn index_int(heap: &Heap, names: &[Value], tr: TableRef, i: i64) -> Option<Value> {
    let tab = heap.table(tr);
    let v = tab.get_int(i);
    if !matches!(v, Value::Nil) {
        return Some(v);
    }
    match tab.meta {
        None => Some(Value::Nil),
        Some(mt) => index_chain(heap, names, mt, Value::Int(i)),
    }
}

/// [`index_tables`] after a miss on a table whose metatable is `mt`.
#[inline(never)]
fn index_chain(heap: &Heap, names: &[Value], mut mt: TableRef, k: Value) -> Option<Value> {
    for _ in 0..FAST_INDEX_CHAIN {
        let next = match meta_field(heap, names, mt, Event::Index) {
            Value::Table(next) => next,
            Value::Nil => return Some(Value::Nil),
            // A function (a call) or a value to index further.
            _ => return None,
        };
        let tab = heap.table(next);
        let v = match k {
            Value::Str(_) => tab.get_str(k),
            _ => tab.get(k),
        };
        if !matches!(v, Value::Nil) {
            return Some(v);
        }
        match tab.meta {
            Some(m) => mt = m,
            // The end of the chain: the key is absent.
            None => return Some(Value::Nil),
        }
    }
    None
}

/// Whether `#t` is the raw border (no `__len` in `t`'s metatable).
#[inline]
fn no_len_metamethod(heap: &Heap, names: &[Value], t: TableRef) -> bool {
    match heap.table(t).meta {
        None => true,
        Some(mt) => matches!(meta_field(heap, names, mt, Event::Len), Value::Nil),
    }
}

/// Whether `t[k] = v` on table `t` is a raw store (no `__newindex`
/// applies): `t` has no metatable, `k` is present, or the metatable
/// has no `__newindex`.
#[inline]
fn newindex_is_raw(heap: &Heap, names: &[Value], tr: TableRef, k: Value) -> bool {
    let tab = heap.table(tr);
    match tab.meta {
        None => true,
        Some(mt) => {
            let present = match k {
                Value::Str(_) => tab.get_str(k),
                _ => tab.get(k),
            };
            !matches!(present, Value::Nil)
                || matches!(meta_field(heap, names, mt, Event::NewIndex), Value::Nil)
        }
    }
}

/// [`newindex_is_raw`] for a key known to be absent or nil in `tr` (an
/// inline-cache probe just found it so): no second probe.
#[inline]
pub(crate) fn no_newindex(heap: &Heap, names: &[Value], tr: TableRef) -> bool {
    match heap.table(tr).meta {
        None => true,
        Some(mt) => matches!(meta_field(heap, names, mt, Event::NewIndex), Value::Nil),
    }
}

/// One step of a numeric `for` loop whose four registers `w` (index,
/// remaining count or limit, step, visible copy) `ForPrep` normalized:
/// `Some(true)` when the loop goes round again (the registers advanced),
/// `Some(false)` when it ends, `None` when they are not of the normalized
/// kinds. Shared by both dispatch loops.
#[inline(always)]
pub(crate) fn for_loop_step(w: &mut [Value]) -> Option<bool> {
    match (&w[0], &w[1], &w[2]) {
        (&Value::Int(i), &Value::Int(count), &Value::Int(step)) => {
            if count <= 0 {
                return Some(false);
            }
            let next = i.wrapping_add(step);
            w[0] = Value::Int(next);
            w[1] = Value::Int(count - 1);
            w[3] = Value::Int(next);
            Some(true)
        }
        (&Value::Float(i), &Value::Float(limit), &Value::Float(step)) => {
            let next = i + step;
            if if step > 0.0 {
                next <= limit
            } else {
                limit <= next
            } {
                w[0] = Value::Float(next);
                w[3] = Value::Float(next);
                Some(true)
            } else {
                Some(false)
            }
        }
        _ => None,
    }
}

/// How many more times an integer `for` loop from `i` to `lim` by `s`
/// (not 0) steps after its first iteration, or `None` if it runs zero
/// times. Counting the iterations up front means the index never overflows.
pub(crate) fn int_for_count(i: i64, lim: i64, s: i64) -> Option<i64> {
    if if s > 0 { i > lim } else { i < lim } {
        return None;
    }
    let count = if s > 0 {
        (lim as u64).wrapping_sub(i as u64) / s as u64
    } else {
        let s1 = (s.wrapping_add(1)).wrapping_neg() as u64 + 1;
        (i as u64).wrapping_sub(lim as u64) / s1
    };
    Some(count.min(i64::MAX as u64) as i64)
}

/// `x - k` for a number `x` and the constant `k` of a `SubK`, as lua5.4
/// computes it: its code generator compiles `x - k` for a small integer
/// `k` as `x + (-k)` (`OP_ADDI`), which differs from a subtraction only
/// for `k = 0` and a float `x`: `-0.0 - 0` is `0.0`. `None` as for
/// [`arith_numbers`].
#[inline(always)]
fn sub_const(x: Value, k: Value) -> Option<Value> {
    match (x, k) {
        (Value::Float(p), Value::Int(0)) => Some(Value::Float(p + 0.0)),
        _ => arith_numbers(Event::Sub, x, k),
    }
}

/// Arithmetic event `ev` (not bitwise) on two numbers, as lua5.4 does it;
/// `None` for an integer `%` or `//` by zero (an error), or operands that
/// are not both numbers.
#[inline(always)]
fn arith_numbers(ev: Event, x: Value, y: Value) -> Option<Value> {
    use Event::*;
    if let (Value::Int(a), Value::Int(b)) = (x, y) {
        return Some(Value::Int(match ev {
            Add => a.wrapping_add(b),
            Sub => a.wrapping_sub(b),
            Mul => a.wrapping_mul(b),
            Mod => {
                if b == 0 {
                    return None;
                }
                int_mod(a, b)
            }
            IDiv => {
                if b == 0 {
                    return None;
                }
                int_floor_div(a, b)
            }
            Unm => a.wrapping_neg(),
            Div => return Some(Value::Float(a as f64 / b as f64)),
            Pow => return Some(Value::Float((a as f64).powf(b as f64))),
            _ => unreachable!("not arithmetic"),
        }));
    }
    let f = |v: Value| match v {
        Value::Int(i) => Some(i as f64),
        Value::Float(f) => Some(f),
        _ => None,
    };
    let (a, b) = (f(x)?, f(y)?);
    Some(Value::Float(match ev {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div => a / b,
        Mod => {
            if b.is_infinite() && a.is_finite() {
                if (a >= 0.0) == (b > 0.0) {
                    a
                } else {
                    b
                }
            } else {
                float_mod(a, b)
            }
        }
        // As lua5.4's `luai_numpow`: squares multiply, the rest is C's
        // `pow` (not `sqrt` for 0.5: `pow(-0.0, 0.5)` is `0.0`,
        // `pow(-inf, 0.5)` is `inf`).
        Pow => {
            if b == 2.0 {
                a * a
            } else {
                a.powf(b)
            }
        }
        IDiv => (a / b).floor(),
        Unm => -a,
        _ => unreachable!("not arithmetic"),
    }))
}

/// `i < f` (or `<=`), or with `swapped` `f < i`, exactly.
fn int_float_cmp(i: i64, f: f64, le: bool, swapped: bool) -> bool {
    if f.is_nan() {
        return false;
    }
    // Compare in the integers when f is in range, else by f's sign.
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        if !swapped {
            // i < f  <=>  i < ceil(f);  i <= f  <=>  i <= floor(f)
            if le {
                i <= f.floor() as i64
            } else {
                i < f.ceil() as i64
            }
        } else {
            // f < i  <=>  floor(f) < i;  f <= i  <=>  ceil(f) <= i
            if le {
                (f.ceil() as i64) <= i
            } else {
                (f.floor() as i64) < i
            }
        }
    } else if !swapped {
        f > 0.0
    } else {
        f < 0.0
    }
}

/// Whether `op` writes register `r` (for naming values in errors).
fn op_writes(op: Op, r: u8) -> bool {
    match op {
        Op::Move(a, _)
        | Op::LoadK(a, _)
        | Op::LoadI(a, _)
        | Op::LoadBool(a, _)
        | Op::GetUpval(a, _)
        | Op::GetGlobal(a, _)
        | Op::GetTable(a, _, _)
        | Op::GetField(a, _, _)
        | Op::GetIndex(a, _, _)
        | Op::NewTable(a, _, _)
        | Op::Add(a, _, _)
        | Op::Sub(a, _, _)
        | Op::Mul(a, _, _)
        | Op::Div(a, _, _)
        | Op::Mod(a, _, _)
        | Op::Pow(a, _, _)
        | Op::IDiv(a, _, _)
        | Op::BAnd(a, _, _)
        | Op::BOr(a, _, _)
        | Op::BXor(a, _, _)
        | Op::Shl(a, _, _)
        | Op::Shr(a, _, _)
        | Op::AddK(a, _, _)
        | Op::SubK(a, _, _)
        | Op::MulK(a, _, _)
        | Op::DivK(a, _, _)
        | Op::ModK(a, _, _)
        | Op::PowK(a, _, _)
        | Op::IDivK(a, _, _)
        | Op::Unm(a, _)
        | Op::Not(a, _)
        | Op::Len(a, _)
        | Op::BNot(a, _)
        | Op::Concat(a, _, _)
        | Op::Closure(a, _) => a == r,
        Op::LoadNil(a, n) => (a..=a.saturating_add(n)).contains(&r),
        Op::SelfOp(a, _, _) => a == r || a + 1 == r,
        Op::Call(a, _, _) | Op::TForCall(a, _) | Op::VarArg(a, _) => r >= a,
        _ => false,
    }
}
