//! The hot part of the dispatch loop: the common instructions of one
//! frame, in a small function whose state (pc, the step budget, the code
//! and constant slices, the frame's registers) fits in machine registers.
//!
//! [`Vm::run_frames`] calls [`Vm::run_hot`] before each instruction it
//! dispatches itself. `run_hot` runs instructions until it meets one it
//! does not take — a call, a return, anything that can allocate, fail or
//! call a metamethod, or an operand that needs the general path — and
//! returns with the pc *at* that instruction, which the outer loop then
//! runs in full. An instruction is either done whole here or not started,
//! so nothing can fail, allocate or call out in this function, and every
//! instruction boundary stays a resume point.
//!
//! The registers are a window of [`WINDOW`] slots from the frame's base,
//! borrowed once per entry as a fixed-size array: a register number is a
//! `u8`, so indexing the window needs no bounds check.

use super::{
    arith_numbers, for_loop_step, index_chain, index_field, index_int, index_tables, int_for_count,
    no_len_metamethod, no_newindex, push_frame, sub_const, Event, FrameKind, Vm, MAX_STACK,
};
use crate::bytecode::{Op, Proto};
use crate::heap::{alloc_table, Arena, ArrayPool, GcStats, UpVal};
use crate::table::Table;
use crate::value::{FnRef, Value, BOOLS};

/// The slots of a frame's register window: every register number (a `u8`)
/// is inside it.
pub(super) const WINDOW: usize = 256;

/// The budget taken from [`Vm::fuel`] at a time when the loop runs out of
/// it (at most that much is out of `Vm::fuel` while the loop runs, given
/// back by the outer loop before any call out).
const HOT_SLICE: i64 = 1 << 24;

/// The instruction fetched past the end of the code or of the budget:
/// one the inner loop never runs (it punts, leaving the pc where the
/// fetch was).
static END: Op = Op::Close(0);

/// Why the inner loop stopped.
enum Leave<'p> {
    /// At an instruction for the outer loop (pc points at it), or at the
    /// end of the budget or of the code.
    Punt,
    /// A call of a Lua function whose frame fits in the stack.
    Call {
        func: usize,
        f: FnRef,
        callee: &'p Proto,
        nargs: usize,
        want: i32,
    },
    /// A tail call of a Lua function: the running frame gives way to it.
    TailCall {
        func: usize,
        f: FnRef,
        callee: &'p Proto,
        nargs: usize,
    },
    /// A return of `want` values from `first` to a Lua caller, to the
    /// slots from `dst` (the callee's function slot).
    Return {
        first: usize,
        dst: usize,
        want: usize,
    },
}

impl Vm {
    /// Runs the instructions of the running frame (closure `cl` with
    /// prototype `proto`, registers from `base`) from `pc` while they are
    /// common ones with operands that take the fast path, spending one
    /// unit of `left` each, following Lua-to-Lua calls and returns; returns
    /// the pc of the first instruction it did not run (not counted), the
    /// budget left, and whether the running frame changed (then that pc is
    /// also saved in the new running frame, for the outer loop to reload).
    ///
    /// The budget is not counted per instruction. The loop keeps `end`, the
    /// pc at which the budget would run out if the code ran on in straight
    /// line (so `end - pc` is what is left), and fetches instructions from
    /// `seg`, the code cut at `end`: the bounds check of the fetch is also
    /// the budget's test, and a straight-line instruction costs nothing
    /// more. A jump moves `end` by its offset (and cuts `seg` again), so
    /// what is left stays the same across it (a comparison that skips the
    /// `Jmp` after it is a jump by one). When `left` runs out, a slice of
    /// [`Vm::fuel`] is taken here ([`HOT_SLICE`]); the outer loop gives back
    /// what is left before anything that may run Lua code or fail, and
    /// counts one by one when no budget is left (`--max-steps` then stops
    /// after exactly its count).
    /// Leaves a frame whose window the stack does not hold whole to the
    /// outer loop ([`Vm::widen_window`]).
    #[inline(never)]
    pub(super) fn run_hot(
        &mut self,
        proto: &Proto,
        mut cl: FnRef,
        mut base: usize,
        mut pc: usize,
        mut left: i64,
    ) -> (usize, i64, bool) {
        let Vm {
            stack,
            heap,
            event_names,
            cur_thread,
            globals,
            string_meta,
            frames,
            open_upvals,
            top,
            fuel: pool,
            inline_builtins,
            ..
        } = self;
        let inline_builtins = &*inline_builtins;
        // The stack is not resized here: its address and length are taken
        // once, not reloaded from the `Vec` at every frame switch.
        let stack: &mut [Value] = stack;
        let stack_len = stack.len();
        let names = &event_names[..];
        let cur_thread = *cur_thread;
        let globals = *globals;
        let string_meta = *string_meta;
        // Whether the running frame is one entered here. Its prototype is
        // then borrowed from its closure in the heap (nothing here can free
        // a closure, and tables and upvalues are written through their own
        // arenas), so calls and returns copy no `Rc<Proto>`; a call hands
        // over the callee's, found by its arm, and a return looks up the
        // caller's once.
        let mut changed = false;
        let mut proto = proto;
        'frame: loop {
            let code = &proto.code[..];
            let consts = &proto.consts[..];
            if left <= 0 {
                // Out of budget: take a slice of the pool, if any is left.
                let take = (*pool).clamp(0, HOT_SLICE);
                if take == 0 {
                    break 'frame;
                }
                *pool -= take;
                left += take;
            }
            // What is left is `end - pc`; `seg` is the code up to `end`.
            let mut end = pc + left as usize;
            let mut seg = code.get(..end).unwrap_or(code);
            let hints = &proto.slot_hints[..];
            // Slots below the frame (open upvalues of enclosing functions) and
            // the frame's window, borrowed apart.
            let (below, rest) = stack.split_at_mut(base);
            let Some(regs) = rest.first_chunk_mut::<WINDOW>() else {
                break 'frame;
            };
            macro_rules! r {
                ($i:expr) => {
                    regs[$i as usize]
                };
            }
            // Leaves without running the current instruction.
            macro_rules! punt {
                () => {{
                    pc -= 1;
                    break Leave::Punt;
                }};
            }
            // The constant string key `K[k]` of a field instruction and its
            // inline cache (the hash slot where it was found last time).
            macro_rules! field_key {
                ($k:expr) => {{
                    let (Value::Str(s), Some(hint)) = (consts[$k as usize], hints.get(pc - 1))
                    else {
                        punt!()
                    };
                    (s, hint)
                }};
            }
            // A jump by `off` from the pc after the instruction: `end`
            // moves with it (the budget left stays `end - pc`).
            macro_rules! jump {
                ($off:expr) => {{
                    pc = (pc as i64 + $off as i64) as usize;
                    end = (end as i64 + $off as i64) as usize;
                    seg = code.get(..end).unwrap_or(code);
                }};
            }
            // A comparison decides whether to take the `Jmp` after it.
            macro_rules! take_jump {
                ($cond:expr) => {{
                    if $cond {
                        if let Some(&Op::Jmp(off)) = code.get(pc) {
                            jump!(off as i64 + 1);
                        } else {
                            jump!(1);
                        }
                    } else {
                        jump!(1);
                    }
                }};
            }
            // Arithmetic on numbers; anything else leaves it to the outer loop.
            macro_rules! arith {
                ($a:expr, $x:expr, $y:expr, $ev:expr) => {{
                    match arith_numbers($ev, $x, $y) {
                        Some(v) => r!($a) = v,
                        None => punt!(),
                    }
                }};
            }
            // `+`, `-`, `*`, `/` with both operands integers or both floats,
            // read in place: a float payload is loaded into a floating-point
            // register and the result stored from it, no round trip through
            // a general-purpose register (two moves of about 3 cycles each on
            // the dependency chain of a float loop). Mixed operands go to
            // `arith!`.
            macro_rules! arith2 {
                ($a:expr, $x:expr, $y:expr, $iop:ident, $fop:tt, $ev:expr) => {{
                    match (&$x, &$y) {
                        (&Value::Float(p), &Value::Float(q)) => r!($a) = Value::Float(p $fop q),
                        (&Value::Int(p), &Value::Int(q)) => r!($a) = Value::Int(p.$iop(q)),
                        _ => arith!($a, $x, $y, $ev),
                    }
                }};
            }
            // `/` with two floats in place, as `arith2!`.
            macro_rules! arith_f {
                ($a:expr, $x:expr, $y:expr, $fop:tt, $ev:expr) => {{
                    match (&$x, &$y) {
                        (&Value::Float(p), &Value::Float(q)) => r!($a) = Value::Float(p $fop q),
                        _ => arith!($a, $x, $y, $ev),
                    }
                }};
            }
            macro_rules! bitwise {
                ($a:expr, $x:expr, $y:expr, $f:expr) => {{
                    match (&$x, &$y) {
                        (&Value::Int(p), &Value::Int(q)) => r!($a) = Value::Int($f(p, q)),
                        _ => punt!(),
                    }
                }};
            }
            let leave = loop {
                // Matched by reference, not copied out: each arm loads the
                // operand fields it uses. A copy made LLVM load all four
                // of them before the jump, into five registers live across
                // it, which pushed the loop's own state (the code's address,
                // the register window) out to the stack.
                // Past the end of `seg` (the budget or the code) the fetch
                // gives `END`, which punts: the fetch is then a select, not
                // a branch, and one block with the jump table's jump.
                let op = seg.get(pc).unwrap_or(&END);
                pc += 1;
                match *op {
                    Op::Move(a, b) => Value::copy_within(regs, b as usize, a as usize),
                    Op::LoadK(a, k) => r!(a) = consts[k as usize],
                    Op::LoadI(a, i) => r!(a) = Value::Int(i as i64),
                    Op::LoadBool(a, b) => r!(a) = BOOLS[b as usize],
                    Op::LoadNil(a, n) => {
                        let Some(w) = regs.get_mut(a as usize..=a as usize + n as usize) else {
                            punt!()
                        };
                        w.fill(Value::Nil);
                    }
                    Op::GetUpval(a, u) => {
                        let up = heap.closures.get(cl.0).upvals[u as usize];
                        let v = match *heap.upvals.get(up.0) {
                            UpVal::Closed(v) => v,
                            UpVal::Open(t, idx) if t == cur_thread => match idx.checked_sub(base) {
                                None => below[idx],
                                Some(i) => match regs.get(i) {
                                    Some(&v) => v,
                                    None => punt!(),
                                },
                            },
                            UpVal::Open(..) => punt!(),
                        };
                        r!(a) = v;
                    }
                    Op::SetUpval(a, u) => {
                        let v = r!(a);
                        let up = heap.closures.get(cl.0).upvals[u as usize];
                        match heap.upvals.get_mut(up.0) {
                            UpVal::Closed(slot) => *slot = v,
                            &mut UpVal::Open(t, idx) if t == cur_thread => {
                                match idx.checked_sub(base) {
                                    None => below[idx] = v,
                                    Some(i) => match regs.get_mut(i) {
                                        Some(slot) => *slot = v,
                                        None => punt!(),
                                    },
                                }
                            }
                            UpVal::Open(..) => punt!(),
                        }
                    }
                    Op::GetGlobal(a, k) => {
                        let (s, hint) = field_key!(k);
                        let v = heap.table(globals).get_str_hinted(s, hint);
                        if matches!(v, Value::Nil) && heap.table(globals).meta.is_some() {
                            punt!()
                        }
                        r!(a) = *v;
                    }
                    Op::GetField(a, b, k) => {
                        let Value::Table(tr) = r!(b) else { punt!() };
                        let (s, hint) = field_key!(k);
                        if !index_field(heap, names, tr, s, hint, &mut r!(a)) {
                            punt!()
                        }
                    }
                    Op::GetIndex(a, b, i) => {
                        let Value::Table(tr) = r!(b) else { punt!() };
                        // An item of the array part copied from its slot.
                        if let Some(v) = heap.table(tr).array_item(i as i64) {
                            r!(a) = *v;
                            continue;
                        }
                        match index_int(heap, names, tr, i as i64) {
                            Some(v) => r!(a) = v,
                            None => punt!(),
                        }
                    }
                    Op::GetTable(a, b, c) => {
                        let Value::Table(tr) = r!(b) else { punt!() };
                        let hit = match r!(c) {
                            Value::Int(i) => match heap.table(tr).array_item(i) {
                                Some(v) => {
                                    r!(a) = *v;
                                    continue;
                                }
                                None => index_int(heap, names, tr, i),
                            },
                            key => index_tables(heap, names, tr, key),
                        };
                        match hit {
                            Some(v) => r!(a) = v,
                            None => punt!(),
                        }
                    }
                    Op::SelfOp(a, b, k) => {
                        if a == u8::MAX {
                            punt!()
                        }
                        let obj = r!(b);
                        let (s, hint) = field_key!(k);
                        let found = match obj {
                            Value::Table(tr) => index_field(heap, names, tr, s, hint, &mut r!(a)),
                            // `s:sub(i, j)`: the string library through the
                            // strings' metatable.
                            Value::Str(_) => match string_meta
                                .and_then(|mt| index_chain(heap, names, mt, Value::Str(s)))
                            {
                                Some(v) => {
                                    r!(a) = v;
                                    true
                                }
                                None => false,
                            },
                            _ => false,
                        };
                        if !found {
                            punt!()
                        }
                        r!(a as usize + 1) = obj;
                    }
                    Op::SetField(a, k, c) => {
                        // A field already present (one probe), or a raw store
                        // that needs no growth.
                        let Value::Table(tr) = r!(a) else { punt!() };
                        let (s, hint) = field_key!(k);
                        // After the cache's probe the key is absent or nil:
                        // no probe to ask whether `__newindex` applies, and
                        // the store finds the slot by the hint just set.
                        let v = r!(c);
                        let stored =
                            heap.tables
                                .get_mut(tr.0)
                                .replace_field_hinted(s, &r!(c), hint)
                                || (no_newindex(heap, names, tr)
                                    && heap
                                        .tables
                                        .get_mut(tr.0)
                                        .set_str_without_growth_hinted(s, v, hint));
                        if !stored {
                            punt!()
                        }
                    }
                    Op::SetTable(a, b, c) => {
                        // An existing array slot, or a present slot of a table
                        // without `__newindex`, or an append (no growth).
                        let (Value::Table(tr), Value::Int(i)) = (r!(a), r!(b)) else {
                            punt!()
                        };
                        let v = r!(c);
                        let tab = heap.tables.get_mut(tr.0);
                        let idx = (i as u64).wrapping_sub(1);
                        if idx < tab.arr.len() as u64
                            && (tab.meta.is_none() || !matches!(tab.arr[idx as usize], Value::Nil))
                        {
                            Value::copy_into(&mut tab.arr[idx as usize], &r!(c));
                        } else if !append(tab, idx, v) {
                            punt!()
                        }
                    }
                    Op::Add(a, b, c) => arith2!(a, r!(b), r!(c), wrapping_add, +, Event::Add),
                    Op::Sub(a, b, c) => arith2!(a, r!(b), r!(c), wrapping_sub, -, Event::Sub),
                    Op::Mul(a, b, c) => arith2!(a, r!(b), r!(c), wrapping_mul, *, Event::Mul),
                    Op::Div(a, b, c) => arith_f!(a, r!(b), r!(c), /, Event::Div),
                    Op::Mod(a, b, c) => arith!(a, r!(b), r!(c), Event::Mod),
                    Op::Pow(a, b, c) => arith!(a, r!(b), r!(c), Event::Pow),
                    Op::IDiv(a, b, c) => arith!(a, r!(b), r!(c), Event::IDiv),
                    Op::AddK(a, b, k) => {
                        arith2!(a, r!(b), consts[k as usize], wrapping_add, +, Event::Add)
                    }
                    Op::SubK(a, b, k) => match (&r!(b), &consts[k as usize]) {
                        (&Value::Float(p), &Value::Float(q)) => r!(a) = Value::Float(p - q),
                        (&Value::Int(p), &Value::Int(q)) => r!(a) = Value::Int(p.wrapping_sub(q)),
                        _ => match sub_const(r!(b), consts[k as usize]) {
                            Some(v) => r!(a) = v,
                            None => punt!(),
                        },
                    },
                    Op::MulK(a, b, k) => {
                        arith2!(a, r!(b), consts[k as usize], wrapping_mul, *, Event::Mul)
                    }
                    Op::DivK(a, b, k) => arith_f!(a, r!(b), consts[k as usize], /, Event::Div),
                    Op::ModK(a, b, k) => arith!(a, r!(b), consts[k as usize], Event::Mod),
                    Op::PowK(a, b, k) => arith!(a, r!(b), consts[k as usize], Event::Pow),
                    Op::IDivK(a, b, k) => arith!(a, r!(b), consts[k as usize], Event::IDiv),
                    Op::BAnd(a, b, c) => bitwise!(a, r!(b), r!(c), |p, q| p & q),
                    Op::BOr(a, b, c) => bitwise!(a, r!(b), r!(c), |p, q| p | q),
                    Op::BXor(a, b, c) => bitwise!(a, r!(b), r!(c), |p, q| p ^ q),
                    Op::Shl(a, b, c) => bitwise!(a, r!(b), r!(c), crate::value::shift_left),
                    Op::Shr(a, b, c) => bitwise!(a, r!(b), r!(c), |p, q: i64| {
                        crate::value::shift_left(p, q.wrapping_neg())
                    }),
                    Op::Unm(a, b) => match r!(b) {
                        Value::Int(i) => r!(a) = Value::Int(i.wrapping_neg()),
                        Value::Float(f) => r!(a) = Value::Float(-f),
                        _ => punt!(),
                    },
                    Op::BNot(a, b) => match r!(b) {
                        Value::Int(i) => r!(a) = Value::Int(!i),
                        _ => punt!(),
                    },
                    Op::Not(a, b) => r!(a) = Value::Bool(!r!(b).truthy()),
                    Op::Len(a, b) => match r!(b) {
                        Value::Table(t) if no_len_metamethod(heap, names, t) => {
                            r!(a) = Value::Int(heap.table(t).border())
                        }
                        Value::Str(s) => r!(a) = Value::Int(heap.str_bytes(s).len() as i64),
                        _ => punt!(),
                    },
                    Op::Jmp(off) => jump!(off),
                    Op::Eq(a, b, k) => {
                        let r = match (&r!(a), &r!(b)) {
                            (&Value::Table(_), &Value::Table(_)) => punt!(),
                            (x, y) => x.raw_eq(*y),
                        };
                        take_jump!(r == k);
                    }
                    Op::EqK(a, c, k) => take_jump!(r!(a).raw_eq(consts[c as usize]) == k),
                    Op::Lt(a, b, k) => {
                        let r = match (&r!(a), &r!(b)) {
                            (&Value::Int(p), &Value::Int(q)) => p < q,
                            (&Value::Float(p), &Value::Float(q)) => p < q,
                            _ => punt!(),
                        };
                        take_jump!(r == k);
                    }
                    Op::Le(a, b, k) => {
                        let r = match (&r!(a), &r!(b)) {
                            (&Value::Int(p), &Value::Int(q)) => p <= q,
                            (&Value::Float(p), &Value::Float(q)) => p <= q,
                            _ => punt!(),
                        };
                        take_jump!(r == k);
                    }
                    Op::LtI(a, i, k) => {
                        let r = match r!(a) {
                            Value::Int(p) => p < i as i64,
                            Value::Float(p) => p < i as f64,
                            _ => punt!(),
                        };
                        take_jump!(r == k);
                    }
                    Op::LeI(a, i, k) => {
                        let r = match r!(a) {
                            Value::Int(p) => p <= i as i64,
                            Value::Float(p) => p <= i as f64,
                            _ => punt!(),
                        };
                        take_jump!(r == k);
                    }
                    Op::GtI(a, i, k) => {
                        let r = match r!(a) {
                            Value::Int(p) => p > i as i64,
                            Value::Float(p) => p > i as f64,
                            _ => punt!(),
                        };
                        take_jump!(r == k);
                    }
                    Op::GeI(a, i, k) => {
                        let r = match r!(a) {
                            Value::Int(p) => p >= i as i64,
                            Value::Float(p) => p >= i as f64,
                            _ => punt!(),
                        };
                        take_jump!(r == k);
                    }
                    Op::Test(a, k) => take_jump!(r!(a).truthy() == k),
                    Op::ForPrep(a, off) => {
                        // An integer loop (a float or string operand, or a
                        // zero step, goes to `Vm::for_prep`).
                        let Some(w) = regs.get_mut(a as usize..a as usize + 4) else {
                            punt!()
                        };
                        match (&w[0], &w[1], &w[2]) {
                            (&Value::Int(i), &Value::Int(lim), &Value::Int(step)) if step != 0 => {
                                match int_for_count(i, lim, step) {
                                    None => jump!(off),
                                    Some(count) => {
                                        w[1] = Value::Int(count);
                                        w[3] = Value::Int(i);
                                    }
                                }
                            }
                            _ => punt!(),
                        }
                    }
                    Op::ForLoop(a, off) => {
                        let Some(w) = regs.get_mut(a as usize..a as usize + 4) else {
                            punt!()
                        };
                        match for_loop_step(w) {
                            Some(true) => jump!(off),
                            Some(false) => {}
                            None => punt!(),
                        }
                    }
                    Op::TForLoop(a, off) => {
                        let Some(w) = regs.get_mut(a as usize..a as usize + 5) else {
                            punt!()
                        };
                        if !matches!(w[4], Value::Nil) {
                            w[2] = w[4];
                            jump!(off);
                        }
                    }
                    Op::Call(a, b, c) => {
                        // A Lua function whose frame fits in the stack.
                        let f = match r!(a) {
                            Value::Func(f) => f,
                            Value::Builtin(id) => {
                                // `assert(x)`, `math.sqrt(x)` and the like,
                                // run here (`stdlib::inline_call`): at most
                                // one result wanted, the budget charged as
                                // for any library call (one step per
                                // argument and result), and room for the
                                // slots the ordinary call makes sure of.
                                // Its collector safe point is skipped:
                                // these calls allocate nothing.
                                let func = base + a as usize;
                                let nargs = (b as usize).wrapping_sub(1);
                                let want = (c as usize).wrapping_sub(1);
                                let Some(args) = regs.get(a as usize + 1..a as usize + b as usize)
                                else {
                                    punt!()
                                };
                                if want > 1 || func + nargs + 8 > stack_len {
                                    punt!()
                                }
                                let Some((v, results)) =
                                    crate::stdlib::inline_call(inline_builtins, id, args)
                                else {
                                    punt!()
                                };
                                let extra = nargs + results;
                                if end - pc < extra {
                                    punt!()
                                }
                                if want == 1 {
                                    r!(a) = v;
                                }
                                *top = func + want;
                                // The charge: the budget's end moves back.
                                end -= extra;
                                seg = code.get(..end).unwrap_or(code);
                                continue;
                            }
                            _ => punt!(),
                        };
                        let func = base + a as usize;
                        let nargs = if b == 0 {
                            *top - func - 1
                        } else {
                            b as usize - 1
                        };
                        let callee = &heap.closures.get(f.0).proto;
                        if func + nargs + callee.max_stack as usize + 2 > stack_len {
                            punt!()
                        }
                        break Leave::Call {
                            func,
                            f,
                            callee,
                            nargs,
                            want: c as i32 - 1,
                        };
                    }
                    Op::TailCall(a, b) => {
                        // A Lua function that does not keep the caller's
                        // frame, with no upvalue to close and its frame
                        // fitting in the stack where the running one starts.
                        let Value::Func(f) = r!(a) else { punt!() };
                        let func = base + a as usize;
                        let nargs = if b == 0 {
                            *top - func - 1
                        } else {
                            b as usize - 1
                        };
                        let callee = &heap.closures.get(f.0).proto;
                        let dst = frames.last().expect("the running frame").func;
                        if callee.keeps_caller_frame.get()
                            || dst + nargs + callee.max_stack as usize + 2 > stack_len
                            || open_upvals.last().is_some_and(|&(i, _)| i >= base)
                        {
                            punt!()
                        }
                        break Leave::TailCall {
                            func,
                            f,
                            callee,
                            nargs,
                        };
                    }
                    Op::Return(a, b) if b != 0 => {
                        // A fixed number of results to a Lua caller that wants
                        // at most that many, with no upvalue to close.
                        let frame = frames.last().expect("the running frame");
                        // `want` as `u32`: a negative one (all results) is
                        // above any count.
                        if frame.kind != FrameKind::Lua
                            || frame.want as u32 > b as u32 - 1
                            || open_upvals.last().is_some_and(|&(i, _)| i >= base)
                        {
                            punt!()
                        }
                        break Leave::Return {
                            first: base + a as usize,
                            dst: frame.func,
                            want: frame.want as usize,
                        };
                    }
                    // Every other instruction by name, no wildcard: the jump table then
                    // covers every opcode and needs no range check.
                    Op::NewTable(a, narr, nhash) => {
                        // Unless a collection is due (the outer loop runs
                        // it at this instruction, with every value rooted).
                        match new_table(
                            &mut heap.tables,
                            &mut heap.gc,
                            &mut heap.arrays,
                            narr,
                            nhash,
                        ) {
                            Some(t) => r!(a) = t,
                            None => punt!(),
                        }
                    }
                    Op::SetList(a, n, start) if n != 0 => {
                        let Value::Table(t) = r!(a) else { punt!() };
                        let Some(items) = regs.get(a as usize + 1..=a as usize + n as usize) else {
                            punt!()
                        };
                        if !set_list(heap.tables.get_mut(t.0), start, items) {
                            punt!()
                        }
                    }
                    Op::SetGlobal(..)
                    | Op::SetList(..)
                    | Op::Concat(..)
                    | Op::TForCall(..)
                    | Op::Return(..)
                    | Op::Closure(..)
                    | Op::VarArg(..)
                    | Op::Close(..)
                    | Op::Tbc(..) => punt!(),
                }
            };
            left = end as i64 - pc as i64;
            match leave {
                Leave::Punt if left <= 0 && pc < code.len() => continue 'frame,
                Leave::Punt => break 'frame,
                Leave::Call {
                    func,
                    f,
                    callee,
                    nargs,
                    want,
                } => {
                    frames.last_mut().expect("the running frame").pc = pc;
                    base = push_frame(stack, frames, callee, func, f, nargs, want, FrameKind::Lua);
                    changed = true;
                    proto = callee;
                    cl = f;
                    pc = 0;
                }
                Leave::TailCall {
                    func,
                    f,
                    callee,
                    nargs,
                } => {
                    // As `Vm::run_frames` does it (`close_upvals` has nothing
                    // to close here).
                    let frame = frames.pop().expect("the running frame");
                    stack.copy_within(func..func + 1 + nargs, frame.func);
                    base = push_frame(
                        stack, frames, callee, frame.func, f, nargs, frame.want, frame.kind,
                    );
                    changed = true;
                    proto = callee;
                    cl = f;
                    pc = 0;
                }
                Leave::Return { first, dst, want } => {
                    frames.pop();
                    // Usually one value or none: moved without a call of
                    // `memmove` or a loop.
                    match want {
                        0 => {}
                        1 => Value::copy_within(stack, first, dst),
                        _ => stack.copy_within(first..first + want, dst),
                    }
                    *top = dst + want;
                    let caller = frames.last().expect("a Lua caller");
                    proto = &heap.closures.get(caller.closure.0).proto;
                    cl = caller.closure;
                    base = caller.base;
                    pc = caller.pc;
                    changed = true;
                }
            }
        }
        if changed {
            frames.last_mut().expect("the running frame").pc = pc;
        }
        (pc, left, changed)
    }

    /// Grows the stack so the window of a frame at `base` fits in it (as
    /// [`Vm::ensure_stack`] would, but quietly: near the stack's limit, or
    /// without the memory, the frame just runs without [`Vm::run_hot`]).
    #[cold]
    pub(super) fn widen_window(&mut self, base: usize) {
        let n = base + WINDOW;
        if n <= MAX_STACK + 2000 && n > self.stack.len() {
            let new_len = (n * 2).clamp(1024, MAX_STACK + 2000).max(n);
            if self.account_stack(new_len) {
                self.stack.resize(new_len, Value::Nil);
            }
        }
    }
}

/// A constructor's table, its array buffer from the heap's pool (out of
/// line, as [`append`], to keep the loop's registers for the common arms).
#[inline(never)]
fn new_table(
    tables: &mut Arena<Table>,
    gc: &mut GcStats,
    arrays: &mut ArrayPool,
    narr: u16,
    nhash: u8,
) -> Option<Value> {
    if gc.debt > gc.threshold {
        return None;
    }
    Some(Value::Table(alloc_table(
        tables,
        gc,
        arrays,
        narr as usize,
        nhash as usize,
    )))
}

/// `SetList` of `items` from key `start` into a constructor's table whose
/// array part ends just before `start`, has room for them all and no hash
/// part (then `Table::set_list_item` would push each one): false, storing
/// nothing, otherwise.
#[inline(never)]
fn set_list(tab: &mut Table, start: u32, items: &[Value]) -> bool {
    let len = tab.arr.len();
    if start as usize == len + 1 && tab.arr.capacity() - len >= items.len() && tab.hash.is_empty() {
        tab.arr.extend_from_slice(items);
        true
    } else {
        false
    }
}

/// `t[idx + 1] = v` as an append to the array part of a table without
/// metatable or hash part, within its capacity (no growth to charge):
/// `Table::set_int`'s push. False, storing nothing, in any other case.
/// Out of line: inside the loop its code cost the other instructions
/// registers (Mandelbrot +8 % machine instructions).
#[inline(never)]
fn append(tab: &mut Table, idx: u64, v: Value) -> bool {
    let len = tab.arr.len();
    if idx == len as u64
        && len < tab.arr.capacity()
        && tab.meta.is_none()
        && tab.hash.is_empty()
        && !matches!(v, Value::Nil)
    {
        tab.arr.push(v);
        true
    } else {
        false
    }
}
