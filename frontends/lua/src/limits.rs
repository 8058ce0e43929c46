//! Resource limits of a Lua run and what a run measured.
//!
//! * **Steps** (`--max-steps N`): a budget of executed bytecode
//!   instructions, counted exactly: the dispatch loops take slices of
//!   [`Vm::fuel`] into a local (the outer loop counts it down one per
//!   instruction; the inner loop, `vm/hot.rs`, folds it into the bound of
//!   its instruction fetch and moves that bound at jumps, so a
//!   straight-line instruction pays nothing), and give back what they did
//!   not use before anything that may run Lua code or fail.
//!   Pattern matching, which runs inside one `find`/`match`/`gmatch`/`gsub`
//!   call, charges one step per match attempt and per backtracking step
//!   to the same budget, so a pattern that backtracks badly runs out of
//!   steps too. Work outside the loop counts as well, so that time stays
//!   proportional to the budget: a library call one step per value it
//!   takes and returns, string work one step per [`BYTES_PER_STEP`] bytes
//!   (each string argument read, each string made by `rep`, `..`,
//!   `table.concat`, `gsub`, `format`), table functions one step per
//!   element they move or sort, `...` one step per value it copies. Running out is not a Lua error: no `pcall` catches it; the
//!   run stops with `prog.lua:LINE: step limit exceeded (N instructions)`.
//! * **Memory** (`--max-memory BYTES`, default [`DEFAULT_MAX_MEMORY`]):
//!   the heap accounts every allocation (strings, tables and their growth,
//!   closures, upvalues, the value stack); an allocation that would pass
//!   the limit is the Lua error `not enough memory` (caught by `pcall`, as
//!   in lua5.4). Big allocations (`string.rep`, `..`, `table.concat`,
//!   `gsub`'s result, table growth, stack growth) are checked before they
//!   are made, so a string or table that grows without end stops at the
//!   limit in bounded time; where every live value is rooted a collection
//!   runs first (lua5.4's emergency collection).

use crate::heap::Heap;
use crate::vm::{LResult, LuaError, Vm};
use crate::Value;
use std::time::Duration;

/// Instructions the dispatch loop takes from [`Vm::fuel`] at a time (it
/// gives back what is left before it calls out, so the count stays exact;
/// the slice only bounds how often it comes back for more).
pub(crate) const FUEL_SLICE: i64 = 1 << 12;

/// String bytes copied, scanned or made that count as one step: about the
/// time of one instruction (hashing and copying run at a few bytes per
/// nanosecond), so a loop of library calls on big strings is bounded by
/// the budget as an instruction loop is.
pub const BYTES_PER_STEP: usize = 16;

/// The heap limit without `--max-memory`: 1 GiB.
pub const DEFAULT_MAX_MEMORY: usize = 1 << 30;

/// lua5.4's message for a failed allocation.
pub const MEMORY_ERROR: &str = "not enough memory";

/// What a run may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Instructions (and pattern-matching steps) allowed; `None`: no bound.
    pub max_steps: Option<u64>,
    /// Heap bytes allowed.
    pub max_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: None,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// The heap's byte accounting against the limit.
#[derive(Clone, Copy, Debug)]
pub struct MemoryAccount {
    pub limit: usize,
    /// The most bytes in use seen (at collections and at the end).
    pub peak: usize,
    /// Bytes of the value stack (not collected, but accounted).
    pub stack_bytes: usize,
}

impl Default for MemoryAccount {
    fn default() -> Self {
        MemoryAccount {
            limit: DEFAULT_MAX_MEMORY,
            peak: 0,
            stack_bytes: 0,
        }
    }
}

impl Heap {
    /// Bytes in use: live after the last collection, plus everything
    /// allocated since (garbage included), plus the value stack.
    pub fn in_use(&self) -> usize {
        self.gc.live_bytes + self.gc.debt + self.mem.stack_bytes
    }

    /// Whether `extra` more bytes fit under the limit.
    #[inline]
    pub fn fits(&self, extra: usize) -> bool {
        self.in_use().saturating_add(extra) <= self.mem.limit
    }

    /// Records the current use in the peak.
    pub fn note_peak(&mut self) {
        self.mem.peak = self.mem.peak.max(self.in_use());
    }
}

/// What a run measured (`--stats json`).
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub source_bytes: usize,
    /// Source to syntax tree.
    pub parse: Duration,
    /// Syntax tree to bytecode.
    pub compile: Duration,
    pub run: Duration,
    /// Prototypes (functions) compiled, the main chunk included.
    pub functions: usize,
    /// Bytecode instructions of all prototypes.
    pub code_len: usize,
    /// Instructions executed (with pattern-matching steps).
    pub instructions: u64,
    pub gc_cycles: u64,
    pub peak_heap_bytes: usize,
    /// After an uncaught runtime error: lua5.4's `stack traceback:` block
    /// (the CLI prints it under the message).
    pub traceback: Option<String>,
}

impl Vm {
    /// Applies `limits` to this interpreter (before it runs).
    pub fn set_limits(&mut self, limits: &Limits) {
        self.max_steps = limits.max_steps;
        self.fuel = match limits.max_steps {
            Some(n) => n.min(i64::MAX as u64 - 1) as i64,
            None => i64::MAX,
        };
        self.heap.mem.limit = limits.max_memory;
    }

    /// Instructions (and matching steps) executed so far.
    pub fn steps_executed(&self) -> u64 {
        let start = match self.max_steps {
            Some(n) => n.min(i64::MAX as u64 - 1) as i64,
            None => i64::MAX,
        };
        (start - self.fuel.max(0)) as u64
    }

    /// The dispatch loop's counter went below zero (it is at instruction
    /// `pc`, already counted): lends it the next slice of the budget, or
    /// fails with the step limit.
    #[cold]
    #[inline(never)]
    pub(crate) fn borrow_fuel(&mut self, local: i64, pc: usize) -> LResult<i64> {
        // `local` < 0: what the loop spent beyond what it had borrowed.
        let left = self.fuel.saturating_add(local);
        if left < 0 {
            self.fuel = 0;
            if let Some(f) = self.frames.last_mut() {
                f.pc = pc + 1;
            }
            return Err(self.step_limit_error());
        }
        let take = left.min(FUEL_SLICE);
        self.fuel = left - take;
        Ok(take)
    }

    /// The step budget ran out: an error no `pcall` catches (it travels
    /// as an exit, with the message kept in [`Vm::halt`]), naming the
    /// current instruction's line.
    pub fn step_limit_error(&mut self) -> LuaError {
        self.fuel = -1;
        let msg = format!(
            "{}step limit exceeded ({} instructions)",
            self.where_(0),
            self.max_steps.unwrap_or(u64::MAX)
        );
        let value = self.heap.str_value(msg.as_bytes());
        self.halt = Some(msg);
        LuaError {
            value,
            exit: Some(1),
            yielded: false,
        }
    }

    /// Charges `n` steps for work done outside the dispatch loop (library
    /// functions, bulk copies); past the budget, the step-limit error.
    #[inline]
    pub fn charge_steps(&mut self, n: u64) -> LResult<()> {
        self.fuel = self.fuel.saturating_sub(n.min(i64::MAX as u64) as i64);
        if self.fuel < 0 {
            return Err(self.step_limit_error());
        }
        Ok(())
    }

    /// [`Vm::charge_steps`] for `bytes` of string work.
    #[inline]
    pub fn charge_bytes(&mut self, bytes: usize) -> LResult<()> {
        self.charge_steps((bytes / BYTES_PER_STEP) as u64)
    }

    /// lua5.4's `not enough memory` (no position, as lua5.4 words it).
    pub fn memory_error(&mut self) -> LuaError {
        let value = self.heap.str_value(MEMORY_ERROR.as_bytes());
        LuaError {
            value,
            exit: None,
            yielded: false,
        }
    }

    /// Checks that `bytes` more fit under the memory limit (no collection:
    /// for callers that may hold values outside the roots).
    #[inline]
    pub fn reserve(&mut self, bytes: usize) -> LResult<()> {
        if self.heap.fits(bytes) {
            return Ok(());
        }
        self.heap.note_peak();
        Err(self.memory_error())
    }

    /// [`Vm::reserve`], collecting garbage first when the bytes do not fit.
    /// Only where every live value is rooted (on the value stack up to the
    /// innermost frame's top, or in the globals): the interpreter at an
    /// instruction, or a library function that holds no `Value` of its own
    /// outside its arguments.
    pub fn reserve_collecting(&mut self, bytes: usize) -> LResult<()> {
        if self.heap.fits(bytes) {
            return Ok(());
        }
        self.heap.note_peak();
        let top = self.frame_top();
        self.collect_garbage(top);
        self.reserve(bytes)
    }

    /// Accounts the value stack's size (called when it grows); false when
    /// it no longer fits under the limit.
    pub(crate) fn account_stack(&mut self, slots: usize) -> bool {
        let bytes = slots * std::mem::size_of::<Value>();
        let grow = bytes.saturating_sub(self.heap.mem.stack_bytes);
        if !self.heap.fits(grow) {
            return false;
        }
        self.heap.mem.stack_bytes = bytes;
        true
    }

    /// The length `..` gives `v` (0 for values that are neither strings
    /// nor numbers: the operation fails on them before allocating).
    pub fn piece_len(&self, v: Value) -> usize {
        match v {
            Value::Str(s) => self.heap.str_bytes(s).len(),
            Value::Int(_) | Value::Float(_) => 32,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, limits: Limits) -> (Result<(), crate::RunError>, String, RunStats) {
        let out = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let (r, stats) = crate::run_source_with(
            src.as_bytes(),
            "t.lua",
            &[],
            Box::new(crate::SharedBuf(out.clone())),
            &limits,
        );
        let text = String::from_utf8_lossy(&out.borrow()).into_owned();
        (r, text, stats)
    }

    /// The body of a loop for [`budgets_across_slices_stop_exactly_there`].
    const MIXED_LOOP: &str = "for j = 1, 10 do if j % 2 == 0 then z = z + j else z = z - 1 end end";

    fn steps(n: u64) -> Limits {
        Limits {
            max_steps: Some(n),
            ..Limits::default()
        }
    }

    #[test]
    fn the_step_count_is_exact_and_the_limit_stops_there() {
        let src = "local x = 0\nfor i = 1, 10 do x = x + i end\nprint(x)\n";
        let (r, out, stats) = run(src, Limits::default());
        assert_eq!((r, out.as_str()), (Ok(()), "55\n"));
        let n = stats.instructions;
        assert!(n > 20 && n < 60, "{n}");
        // Exactly that many is enough; one fewer stops.
        let (r, _, _) = run(src, steps(n));
        assert_eq!(r, Ok(()));
        let (r, _, stats) = run(src, steps(n - 1));
        let crate::RunError::Runtime(m) = r.unwrap_err() else {
            panic!("a runtime error")
        };
        assert!(
            m.ends_with(&format!("step limit exceeded ({} instructions)", n - 1)),
            "{m}"
        );
        assert!(m.starts_with("t.lua:"), "{m}");
        assert_eq!(stats.instructions, n - 1);
    }

    /// A program with every kind of control flow the dispatch loops take
    /// apart: jumps, comparisons, both `for` loops, calls, tail calls,
    /// returns, methods through `__index`, instructions left to the outer
    /// loop (`__index` functions, `..`, library calls, `pcall`).
    const MIXED: &str = "local C = {}\nC.__index = C\n\
        function C.new(v) return setmetatable({v = v}, C) end\n\
        function C:get() return self.v end\n\
        local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end\n\
        local function count(n, acc) if n == 0 then return acc end return count(n - 1, acc + 1) end\n\
        local lazy = setmetatable({}, {__index = function(t, k) return k * 2 end})\n\
        local s, t = 0, {}\n\
        for i = 1, 12 do t[i] = C.new(i) end\n\
        for i, o in ipairs(t) do s = s + o:get() + lazy[i] end\n\
        for x = 0.5, 3, 0.5 do s = s + x end\n\
        local i = 0\n\
        while i < 10 do i = i + 1; if i % 3 == 0 then s = s - 1 elseif i > 7 then s = s + 2 end end\n\
        s = s + fib(8) + count(20, 0)\n\
        local ok, e = pcall(function() return nil .. 'x' end)\n\
        print(s, ok, #tostring(e) > 0, ('ab'):rep(3) .. i)\n\
        repeat i = i - 1 until i <= 0\n\
        goto done\n\
        s = 0\n\
        ::done::\n\
        print(s)\n";

    /// Runs `src` with a budget of `k` for each `k` of `ks`: below the
    /// unbounded count `n` it stops after exactly `k` instructions, with
    /// the output so far a prefix of the whole output; at `n` it finishes.
    /// `n` is first checked against the outer dispatch loop's own count.
    fn check_budgets(src: &str, ks: impl Iterator<Item = u64>) {
        let (r, full, stats) = run(src, Limits::default());
        assert_eq!(r, Ok(()));
        let n = stats.instructions;
        let count = |no_hot_loop| {
            let mut vm = Vm::new(Box::new(std::io::sink()));
            vm.no_hot_loop = no_hot_loop;
            assert_eq!(crate::run_in(&mut vm, src.as_bytes(), "t.lua", &[]), Ok(()));
            vm.steps_executed()
        };
        assert_eq!(count(false), count(true), "against the outer loop's count");
        let (r, out, stats) = run(src, steps(n));
        assert_eq!(
            (r, out.as_str(), stats.instructions),
            (Ok(()), full.as_str(), n)
        );
        for k in ks.filter(|&k| k < n) {
            let (r, out, stats) = run(src, steps(k));
            let Err(crate::RunError::Runtime(m)) = r else {
                panic!("budget {k} of {n}: {r:?}")
            };
            assert!(
                m.ends_with(&format!("step limit exceeded ({k} instructions)")),
                "{k}: {m}"
            );
            assert_eq!(stats.instructions, k, "{m}");
            assert!(full.starts_with(&out), "{k}: {out:?}");
        }
    }

    #[test]
    fn every_budget_stops_exactly_there() {
        check_budgets(MIXED, 0..10_000);
    }

    #[test]
    fn budgets_across_slices_stop_exactly_there() {
        // Longer than the dispatch loop's slices of the budget: budgets
        // around their multiples, and a spread of others.
        let src = format!("{MIXED}\nlocal z = 0\nfor r = 1, 400 do {MIXED_LOOP} end\nprint(z)\n");
        let around = (1..12u64).flat_map(|m| (m * 4096 - 3)..(m * 4096 + 3));
        check_budgets(&src, around.chain((0..40_000).step_by(997)));
    }

    #[test]
    fn inline_library_calls_charge_as_ordinary_ones() {
        // `assert` and `math.abs` run inside the hot loop: the same
        // count as the ordinary calls of the outer loop, and every budget
        // stops exactly.
        let src = "local s = 0\nfor i = 1, 40 do assert(i) s = s + assert(i, 'm') + math.abs(-i) end\nprint(s)\n";
        check_budgets(src, 0..2_000);
    }

    #[test]
    fn pcall_does_not_catch_the_step_limit() {
        let src = "while true do pcall(function() while true do end end) end";
        let (r, _, _) = run(src, steps(10_000));
        let crate::RunError::Runtime(m) = r.unwrap_err() else {
            panic!("a runtime error")
        };
        assert_eq!(m, "t.lua:1: step limit exceeded (10000 instructions)");
    }

    #[test]
    fn backtracking_patterns_count_steps() {
        let src = "local s = ('a'):rep(3000)\nprint(s:find('.-.-.-.-b'))\n";
        let (r, out, _) = run(src, steps(1_000_000));
        assert_eq!(out, "");
        let crate::RunError::Runtime(m) = r.unwrap_err() else {
            panic!("a runtime error")
        };
        assert!(m.contains("step limit exceeded"), "{m}");
    }

    #[test]
    fn balance_scans_count_steps() {
        // Found by lua-shapes: each start position scanned to the end
        // (quadratic) while charging one step per attempt.
        let src = "local s = ('('):rep(150000)\nprint(s:match('%b()'))\n";
        let (r, out, _) = run(src, steps(3_000_000));
        assert_eq!(out, "");
        let crate::RunError::Runtime(m) = r.unwrap_err() else {
            panic!("a runtime error")
        };
        assert!(m.contains("step limit exceeded"), "{m}");
    }

    #[test]
    fn growth_without_end_is_a_catchable_memory_error() {
        let small = Limits {
            max_memory: 32 << 20,
            ..Limits::default()
        };
        for (what, src) in [
            ("rep", "print(pcall(string.rep, 'x', 2e9))"),
            (
                "concat",
                "local s = 'x' print(pcall(function() while true do s = s .. s end end))",
            ),
            (
                "table",
                "local t = {} print(pcall(function() for i = 1, math.huge do t[i] = i end end))",
            ),
            (
                "hash",
                "local t = {} print(pcall(function() for i = 1, math.huge do t['k' .. i] = i end end))",
            ),
            (
                "table.concat",
                "local t = {} for i = 1, 100 do t[i] = ('y'):rep(100000) end \
                 print(pcall(table.concat, t, ('z'):rep(1000000)))",
            ),
            (
                "gsub",
                "local s = ('ab'):rep(100000) print(pcall(string.gsub, s, 'a', ('q'):rep(10000)))",
            ),
            (
                "stack",
                "local function f(n) return 1 + f(n) end print(pcall(f, 1))",
            ),
        ] {
            let (r, out, stats) = run(src, small);
            assert_eq!(r, Ok(()), "{what}");
            assert!(
                out == "false\tnot enough memory\n" || (what == "stack" && out.starts_with("false\t")),
                "{what}: {out}"
            );
            assert!(
                stats.peak_heap_bytes <= 2 * small.max_memory,
                "{what}: {}",
                stats.peak_heap_bytes
            );
        }
    }

    #[test]
    fn garbage_is_collected_before_the_limit_is_declared() {
        // Each string is garbage at once; the loop makes 100 MB of them
        // under a 16 MB limit.
        let src = "for i = 1, 1000 do local s = string.rep('x', 100000 + i) end print('ok')";
        let limits = Limits {
            max_memory: 16 << 20,
            ..Limits::default()
        };
        let (r, out, stats) = run(src, limits);
        assert_eq!((r, out.as_str()), (Ok(()), "ok\n"));
        assert!(stats.gc_cycles > 0);
    }
}
