//! The `lua-shapes` target: hostile Lua scripts under resource limits
//! (the Lua version of [`crate::shapes`]).
//!
//! Shapes: very deep nesting (parentheses, blocks, table constructors,
//! nested functions), long `..` and `+` chains, many functions, long
//! straight-line scripts, huge scripts of real code, random bytes and
//! random tokens as scripts, strings and tables that grow without end,
//! patterns that backtrack badly, deep recursion (Lua calls, metamethods,
//! library callbacks). Each runs on the Lua interpreter with a step limit
//! ([`MAX_STEPS`]) and a heap limit ([`MAX_MEMORY`]); its outcome must be
//! a normal end or an error, never a panic, and it must stay within:
//!
//! * time: [`TIME_BASE`] plus [`TIME_PER_MB`] per megabyte of source, in
//!   CPU time of the running thread;
//! * memory: peak resident memory at most [`MEM_BASE`] plus
//!   [`MEM_PER_BYTE`] per source byte above the resident size before the
//!   run (measured as `shapes` does).
//!
//! Generated shapes (not random input) must also end with an error that
//! is one line, or normally.

use crate::rng::Rng;
use crate::shapes::{peak_rss, reset_peak, size, thread_cpu_time};
use crate::{guarded, Counters, Outcome};
use std::io::Write;
use std::time::{Duration, Instant};
use vssa_lua::{Limits, RunError};

/// Steps (instructions and pattern-matching steps) per input.
pub const MAX_STEPS: u64 = 3_000_000;
/// Heap bytes per input.
pub const MAX_MEMORY: usize = 64 << 20;
/// CPU time allowed per input ...
pub const TIME_BASE: Duration = Duration::from_secs(5);
/// ... plus this per megabyte of source.
pub const TIME_PER_MB: Duration = Duration::from_secs(2);
/// Peak resident memory allowed besides what the source's size explains.
pub const MEM_BASE: u64 = 256 << 20;
/// Peak resident memory allowed per source byte.
pub const MEM_PER_BYTE: u64 = 200;
/// Output kept per input (the rest is counted and dropped).
const OUTPUT_KEPT: usize = 1 << 16;

/// The shapes generated, with their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    DeepParens,
    DeepBlocks,
    DeepTables,
    NestedFunctions,
    LongConcat,
    LongArith,
    ManyFunctions,
    StraightLine,
    Huge,
    RandomBytes,
    RandomTokens,
    GrowingString,
    GrowingTable,
    BadPattern,
    DeepRecursion,
}

const SHAPES: [(Shape, u32); 15] = [
    (Shape::DeepParens, 2),
    (Shape::DeepBlocks, 2),
    (Shape::DeepTables, 2),
    (Shape::NestedFunctions, 2),
    (Shape::LongConcat, 2),
    (Shape::LongArith, 2),
    (Shape::ManyFunctions, 2),
    (Shape::StraightLine, 2),
    (Shape::Huge, 1),
    (Shape::RandomBytes, 3),
    (Shape::RandomTokens, 3),
    (Shape::GrowingString, 2),
    (Shape::GrowingTable, 2),
    (Shape::BadPattern, 2),
    (Shape::DeepRecursion, 2),
];

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::DeepParens => "deep-parens",
            Shape::DeepBlocks => "deep-blocks",
            Shape::DeepTables => "deep-tables",
            Shape::NestedFunctions => "nested-functions",
            Shape::LongConcat => "long-concat",
            Shape::LongArith => "long-arith",
            Shape::ManyFunctions => "many-functions",
            Shape::StraightLine => "straight-line",
            Shape::Huge => "huge",
            Shape::RandomBytes => "random-bytes",
            Shape::RandomTokens => "random-tokens",
            Shape::GrowingString => "growing-string",
            Shape::GrowingTable => "growing-table",
            Shape::BadPattern => "bad-pattern",
            Shape::DeepRecursion => "deep-recursion",
        }
    }

    /// Random input: its errors may quote any bytes (newlines too).
    fn is_random(self) -> bool {
        matches!(self, Shape::RandomBytes | Shape::RandomTokens)
    }
}

fn nest(open: &str, mid: &str, close: &str, depth: usize) -> String {
    let mut s = String::with_capacity((open.len() + close.len()) * depth + mid.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(mid);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

/// Case `seed`: its shape and source.
pub fn generate(seed: u64) -> (Shape, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let weights: Vec<u32> = SHAPES.iter().map(|s| s.1).collect();
    let shape = SHAPES[rng.weighted(&weights)].0;
    let src = match shape {
        Shape::DeepParens => {
            let d = size(&mut rng, 300_000);
            let what = *rng.pick(&["(", "-(", "not (", "#{("]);
            let close = if what == "#{(" { ")}" } else { ")" };
            format!("local x = {}\nprint(x)\n", nest(what, "1", close, d))
        }
        Shape::DeepBlocks => {
            let d = size(&mut rng, 200_000);
            let (open, close) = *rng.pick(&[
                ("do ", "end "),
                ("if true then ", "end "),
                ("while true do ", "break end "),
                ("for i = 1, 2 do ", "end "),
                ("repeat ", "until true "),
            ]);
            format!("local n = 0\n{}\nprint(n)\n", nest(open, "n = n + 1 ", close, d))
        }
        Shape::DeepTables => {
            let d = size(&mut rng, 200_000);
            let (open, close) = *rng.pick(&[("{", "}"), ("{1, ", "}"), ("{a = ", "}"), ("{[", "] = 1}")]);
            format!("local t = {}\nprint(type(t))\n", nest(open, "0", close, d))
        }
        Shape::NestedFunctions => {
            let d = size(&mut rng, 100_000);
            let (open, close) = *rng.pick(&[
                ("return function() ", " end"),
                ("local function f() ", " end return f()"),
                ("return (function() ", " end)()"),
            ]);
            format!(
                "local f = function() {} end\nprint(type(f()))\n",
                nest(open, "return 1", close, d)
            )
        }
        Shape::LongConcat => {
            let n = size(&mut rng, 500_000);
            let mut s = String::from("local s = 'a'");
            for i in 0..n {
                s.push_str(if i % 3 == 0 { " .. 'b'" } else { " .. 1" });
            }
            s.push_str("\nprint(#s)\n");
            s
        }
        Shape::LongArith => {
            let n = size(&mut rng, 500_000);
            let op = *rng.pick(&[" + 1", " * 1", " - x", " + x * 2", " // 1", " | 1", " == 1"]);
            let mut s = String::from("local x = 1\nlocal y = x");
            for _ in 0..n {
                s.push_str(op);
            }
            s.push_str("\nprint(y)\n");
            s
        }
        Shape::ManyFunctions => {
            let n = size(&mut rng, 100_000);
            let mut s = String::new();
            for i in 0..n {
                s.push_str(&format!("function f{i}(x) return x + {i} end\n"));
            }
            s.push_str("local t = 0\n");
            for i in (0..n).step_by(97) {
                s.push_str(&format!("t = t + f{i}(1)\n"));
            }
            s.push_str("print(t)\n");
            s
        }
        Shape::StraightLine => {
            let n = size(&mut rng, 300_000);
            let mut s = String::from("local t, x, s = {}, 0, ''\n");
            for i in 0..n {
                let stmt = match rng.below(6) {
                    0 => format!("x = x + {i}\n"),
                    1 => format!("t[{}] = x\n", i % 1000),
                    2 => "s = #s < 100 and s .. 'ab' or ''\n".to_string(),
                    3 => format!("if x > {i} then x = x - 1 else x = x + 1 end\n"),
                    4 => "x = x ~ (t[1] or 0)\n".to_string(),
                    _ => format!("t.f{} = s\n", i % 50),
                };
                s.push_str(&stmt);
            }
            s.push_str("print(x, #s)\n");
            s
        }
        Shape::Huge => {
            // Real code repeated: locals in do-blocks (200 locals per
            // function at most), a loop, a closure, a table.
            let chunk = "do local t = {} for i = 1, 3 do t[i] = i * 2 end local f = function(a) return a + #t end acc = (acc or 0) + f(1) end\n";
            let reps = size(&mut rng, 8_000_000 / chunk.len() as u64);
            let mut s = chunk.repeat(reps);
            s.push_str("print(acc)\n");
            s
        }
        Shape::RandomBytes => {
            let n = size(&mut rng, 1_000_000);
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.chance(1, 2) {
                        *rng.pick(b"()[]{}=.,;:'\"-+*/%^#<>~ \n")
                    } else {
                        rng.below(256) as u8
                    }
                })
                .collect();
            return (shape, bytes);
        }
        Shape::RandomTokens => {
            let n = size(&mut rng, 200_000);
            const TOKENS: [&str; 60] = [
                "local", "function", "end", "if", "then", "else", "elseif", "while", "do",
                "for", "in", "repeat", "until", "return", "break", "goto", "::l::", "nil",
                "true", "false", "and", "or", "not", "x", "y", "t", "f", "print", "(", ")",
                "{", "}", "[", "]", "=", "==", "~=", "<", "..", "...", "+", "-", "*", "/",
                "//", "%", "^", "#", ",", ";", ":", ".", "1", "2.5", "0x10", "'s'", "[[l]]",
                "1e308", "\n", "string.rep",
            ];
            let mut s = String::new();
            for _ in 0..n {
                let tok: &&str = rng.pick(&TOKENS);
                s.push_str(tok);
                s.push(' ');
            }
            s
        }
        Shape::GrowingString => rng
            .pick(&[
                "local s = 'x' while true do s = s .. s end",
                "local s = 'x' while true do s = s .. s .. s end",
                "print(string.rep('x', 1e12))",
                "print(pcall(string.rep, 'ab', 2^40, ','))",
                "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) end",
                "local s = 'x' while true do s = table.concat({s, s, s}) end",
                "local s = ('x'):rep(1000) while true do s = s:gsub('x', 'xx') end",
                "local s = 'x' while true do s = string.format('%s%s', s, s) end",
                "local s = 'ab' while true do s = s:rep(2) .. s:upper() end",
                "local s = 'x' for i = 1, 100 do pcall(function() while true do s = s .. s end end) s = 'x' end print('done')",
            ])
            .to_string(),
        Shape::GrowingTable => rng
            .pick(&[
                "local t = {} local i = 0 while true do i = i + 1 t[i] = i end",
                "local t = {} local i = 0 while true do i = i + 1 t['k' .. i] = i end",
                "local t = {} local i = 0 while true do i = i + 1 t[i * 1.5] = {} end",
                "local t = {} while true do t = {t, t} end",
                "local t = {} while true do table.insert(t, {}) end",
                "local function f(...) return f(1, 2, 3, ...) end f()",
                "local t = {} for i = 1, 1e9 do t[#t + 1] = function() return i end end",
                "print(pcall(table.unpack, {}, 1, 1e8))",
                "print(pcall(function() local t = {} while true do t[#t + 1] = t end end))",
            ])
            .to_string(),
        Shape::BadPattern => {
            let n = size(&mut rng, 200_000);
            let k = 1 + rng.below(30) as usize;
            let pat = match rng.below(7) {
                0 => ".-".repeat(k) + "b",
                1 => ".*".repeat(k) + "b",
                2 => "a?".repeat(k) + &"a".repeat(k),
                3 => "(".repeat(k.min(40)) + "a" + &")".repeat(k.min(40)),
                4 => "%b()".repeat(k),
                5 => "[a-z]*".repeat(k) + "$",
                _ => "(.-)%1".repeat(k.min(5)),
            };
            let subject = *rng.pick(&["'a'", "'ab'", "'('", "'()'"]);
            let call = *rng.pick(&["find", "match", "gsub", "gmatch"]);
            let body = if call == "gsub" {
                format!("s:gsub('{pat}', '%0%0')")
            } else if call == "gmatch" {
                format!("(function() local c = 0 for _ in s:gmatch('{pat}') do c = c + 1 end return c end)()")
            } else {
                format!("s:{call}('{pat}')")
            };
            format!("local s = ({subject}):rep({n})\nprint(pcall(function() return {body} end))\n")
        }
        Shape::DeepRecursion => rng
            .pick(&[
                "local function f(n) return 1 + f(n + 1) end print(pcall(f, 1))",
                "local function f(n) return f(n + 1) end f(1)",
                "local function f(n) local t = {} return f(n + 1) + 1 end f(1)",
                "local t = setmetatable({}, {__index = function(t, k) return t[k + 1] end}) print(pcall(function() return t[1] end))",
                "local mt = {} mt.__add = function(a, b) return a + b end local x = setmetatable({}, mt) print(pcall(function() return x + 1 end))",
                "local function f() return pcall(f) end print(f())",
                "local function f(s) return (s:gsub('.', f)) end print(pcall(f, 'abc'))",
                "local function f() table.sort({3, 2, 1}, function(a, b) f() return a < b end) end print(pcall(f))",
                "local t = setmetatable({}, {__tostring = function(t) return tostring(t) end}) print(pcall(tostring, t))",
                "local function f(...) return select('#', ...) + f(...) end print(pcall(f, 1, 2, 3))",
                "local co co = function(n) if n > 0 then return co(n - 1) end return 0 end print(co(1e9))",
                "local t = {} t.__index = t setmetatable(t, t) print(pcall(function() return t.x end))",
            ])
            .to_string(),
    };
    (shape, src.into_bytes())
}

/// Resident memory now, in bytes (`VmRSS`).
fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// An output sink that keeps the first [`OUTPUT_KEPT`] bytes and counts
/// the rest (a script may print without end).
struct Capped(std::rc::Rc<std::cell::RefCell<(Vec<u8>, u64)>>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut b = self.0.borrow_mut();
        let room = OUTPUT_KEPT.saturating_sub(b.0.len());
        b.0.extend_from_slice(&buf[..buf.len().min(room)]);
        b.1 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks case `seed`; counts what it did in `counters`.
pub fn check_seed(seed: u64, counters: &mut Counters) -> Outcome {
    guarded(|| check(seed, counters))
}

fn check(seed: u64, counters: &mut Counters) -> Outcome {
    let (shape, src) = generate(seed);
    crate::bump(counters, shape.name());
    let limits = Limits {
        max_steps: Some(MAX_STEPS),
        max_memory: MAX_MEMORY,
    };
    // The high-water mark restarts from the current resident size, which
    // earlier inputs may have left high (the allocator keeps freed memory):
    // the limit is on what this input adds to it.
    let before = current_rss().unwrap_or(0);
    let measured = reset_peak();
    let out = std::rc::Rc::new(std::cell::RefCell::new((Vec::new(), 0u64)));
    let t = Instant::now();
    let cpu = thread_cpu_time();
    let (r, stats) = vssa_lua::run_source_with(
        &src,
        "shape.lua",
        &[],
        Box::new(Capped(out.clone())),
        &limits,
    );
    let time = match (cpu, thread_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => t.elapsed(),
    };
    let peak = if measured {
        peak_rss().map(|p| p.saturating_sub(before))
    } else {
        None
    };
    let mb = src.len() as u32 / (1 << 20);
    let time_limit = TIME_BASE + TIME_PER_MB * mb;
    let mem_limit = MEM_BASE + MEM_PER_BYTE * src.len() as u64;
    let what = || format!("a {shape:?} of {} bytes", src.len());
    if time > time_limit {
        return Outcome::Mismatch(format!(
            "took {time:?} on {} (limit {time_limit:?})",
            what()
        ));
    }
    if let Some(peak) = peak {
        if peak > mem_limit {
            return Outcome::Mismatch(format!(
                "peaked at {} MB on {} (limit {} MB)",
                peak >> 20,
                what(),
                mem_limit >> 20
            ));
        }
    }
    if stats.peak_heap_bytes > 2 * MAX_MEMORY {
        return Outcome::Mismatch(format!(
            "the heap peaked at {} bytes on {} (limit {MAX_MEMORY})",
            stats.peak_heap_bytes,
            what()
        ));
    }
    let msg = match &r {
        Ok(()) => {
            crate::bump(counters, "ended");
            return Outcome::Pass;
        }
        Err(RunError::Exit(_)) => {
            crate::bump(counters, "exited");
            return Outcome::Pass;
        }
        Err(RunError::Syntax(m)) => {
            crate::bump(counters, "syntax-errors");
            m
        }
        Err(RunError::Runtime(m)) => {
            crate::bump(
                counters,
                if m.contains("step limit exceeded") {
                    "step-limit"
                } else if m.contains("not enough memory") {
                    "out-of-memory"
                } else {
                    "runtime-errors"
                },
            );
            m
        }
    };
    if msg.is_empty() || (!shape.is_random() && msg.contains('\n')) {
        return Outcome::Mismatch(format!("error {msg:?} on {}", what()));
    }
    Outcome::Pass
}

/// The reproducer of a failing case: its seed regenerates it; the source
/// is saved whole.
pub fn failure(seed: u64, outcome: Outcome) -> crate::Failure {
    let (shape, src) = generate(seed);
    crate::Failure {
        input_seed: seed,
        outcome,
        reproducer: format!(
            "a {shape:?} of {} bytes (saved beside this file)",
            src.len()
        ),
        raw: Some(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_generated() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..600 {
            seen.insert(generate(seed).0.name());
        }
        assert_eq!(seen.len(), SHAPES.len(), "{seen:?}");
    }

    #[test]
    fn small_cases_pass() {
        let mut c = Counters::new();
        let mut ran = 0;
        for seed in 0..200 {
            let (_, src) = generate(seed);
            if src.len() > 20_000 {
                continue;
            }
            ran += 1;
            assert_eq!(check_seed(seed, &mut c), Outcome::Pass, "seed {seed}");
        }
        assert!(ran > 50, "{ran}");
        // The limits were reached, not only clean ends.
        assert!(c.get("step-limit").is_some_and(|&n| n > 0), "{c:?}");
    }
}
