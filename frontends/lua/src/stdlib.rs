//! The standard library this session provides: the base functions, and
//! parts of `string`, `table`, `math`, `io` and `os` (see docs/lua.md for
//! what is missing).

use crate::format::format as string_format;
use crate::table::Table;
use crate::value::*;
use crate::vm::{BuiltinFn, Event, LResult, LuaError, Vm};
use std::rc::Rc;

/// The builtin id of `next` (the interpreter iterates `pairs` loops over
/// it without a call).
pub const NEXT_ID: u32 = 0;
/// The builtin ids of `pcall` and `xpcall` (a call of a Lua function
/// through them from Lua code runs as a protected frame, see
/// [`crate::vm::FrameKind::PCall`]).
pub const PCALL_ID: u32 = 1;
pub const XPCALL_ID: u32 = 2;

pub(crate) fn reg(vm: &mut Vm, t: TableRef, name: &'static str, f: BuiltinFn) -> Value {
    let id = vm.builtins.len() as u32;
    vm.builtins.push((name, f));
    let k = vm.heap.str_value(name.as_bytes());
    vm.heap.table_mut(t).set(k, Value::Builtin(id));
    Value::Builtin(id)
}

pub(crate) fn new_lib(vm: &mut Vm, name: &str) -> TableRef {
    let t = vm.heap.new_table(Table::default());
    let k = vm.heap.str_value(name.as_bytes());
    vm.heap.table_mut(vm.globals).set(k, Value::Table(t));
    let loaded = vm.loaded;
    vm.heap.table_mut(loaded).set(k, Value::Table(t));
    t
}

fn set_field(vm: &mut Vm, t: TableRef, name: &str, v: Value) {
    let k = vm.heap.str_value(name.as_bytes());
    vm.heap.table_mut(t).set(k, v);
}

/// Installs the libraries into `vm`'s globals.
pub fn open(vm: &mut Vm) {
    let g = vm.globals;
    let next = reg(vm, g, "next", base_next);
    debug_assert!(matches!(next, Value::Builtin(NEXT_ID)));
    let pcall = reg(vm, g, "pcall", base_pcall);
    let xpcall = reg(vm, g, "xpcall", base_xpcall);
    debug_assert!(matches!(pcall, Value::Builtin(PCALL_ID)));
    debug_assert!(matches!(xpcall, Value::Builtin(XPCALL_ID)));
    reg(vm, g, "print", base_print);
    reg(vm, g, "type", base_type);
    reg(vm, g, "tostring", base_tostring);
    reg(vm, g, "tonumber", base_tonumber);
    reg(vm, g, "ipairs", base_ipairs);
    reg(vm, g, "pairs", base_pairs);
    reg(vm, g, "select", base_select);
    reg(vm, g, "error", base_error);
    let assert = reg(vm, g, "assert", base_assert);
    if let Value::Builtin(id) = assert {
        vm.inline_builtins.assert = id;
    }
    reg(vm, g, "setmetatable", base_setmetatable);
    reg(vm, g, "getmetatable", base_getmetatable);
    reg(vm, g, "rawget", base_rawget);
    reg(vm, g, "rawset", base_rawset);
    reg(vm, g, "rawequal", base_rawequal);
    reg(vm, g, "rawlen", base_rawlen);
    reg(vm, g, "require", base_require);
    reg(vm, g, "load", base_load);
    reg(vm, g, "dofile", base_dofile);
    reg(vm, g, "collectgarbage", base_collectgarbage);
    set_field(vm, g, "_G", Value::Table(g));
    let v = vm.heap.str_value(b"Lua 5.4");
    set_field(vm, g, "_VERSION", v);

    let t = new_lib(vm, "table");
    reg(vm, t, "insert", table_insert);
    reg(vm, t, "remove", table_remove);
    reg(vm, t, "concat", table_concat);
    reg(vm, t, "unpack", table_unpack);
    reg(vm, t, "pack", table_pack);
    reg(vm, t, "sort", table_sort);
    reg(vm, t, "move", table_move);

    let s = new_lib(vm, "string");
    reg(vm, s, "format", str_format);
    reg(vm, s, "sub", str_sub);
    reg(vm, s, "len", str_len);
    reg(vm, s, "rep", str_rep);
    reg(vm, s, "byte", str_byte);
    reg(vm, s, "char", str_char);
    reg(vm, s, "upper", str_upper);
    reg(vm, s, "lower", str_lower);
    reg(vm, s, "reverse", str_reverse);
    reg(vm, s, "find", crate::pattern::str_find);
    reg(vm, s, "match", crate::pattern::str_match);
    reg(vm, s, "gmatch", crate::pattern::str_gmatch);
    reg(vm, s, "gsub", crate::pattern::str_gsub);
    reg(vm, s, "pack", crate::strpack::str_pack);
    reg(vm, s, "unpack", crate::strpack::str_unpack);
    reg(vm, s, "packsize", crate::strpack::str_packsize);
    reg(vm, s, "dump", str_dump);
    let meta = vm.heap.new_table(Table::default());
    let idx = vm.event_name(Event::Index);
    vm.heap.table_mut(meta).set(idx, Value::Table(s));
    vm.string_meta = Some(meta);

    let m = new_lib(vm, "math");
    let floor = reg(vm, m, "floor", math_floor);
    reg(vm, m, "ceil", math_ceil);
    let abs = reg(vm, m, "abs", math_abs);
    let sqrt = reg(vm, m, "sqrt", math_sqrt);
    reg(vm, m, "sin", math_sin);
    reg(vm, m, "cos", math_cos);
    reg(vm, m, "tan", math_tan);
    reg(vm, m, "asin", math_asin);
    reg(vm, m, "acos", math_acos);
    reg(vm, m, "atan", math_atan);
    reg(vm, m, "exp", math_exp);
    reg(vm, m, "deg", math_deg);
    reg(vm, m, "rad", math_rad);
    reg(vm, m, "log", math_log);
    reg(vm, m, "fmod", math_fmod);
    reg(vm, m, "modf", math_modf);
    let max = reg(vm, m, "max", math_max);
    let min = reg(vm, m, "min", math_min);
    let id = |v: Value| match v {
        Value::Builtin(id) => id,
        _ => unreachable!("reg gives a builtin"),
    };
    vm.inline_builtins = InlineBuiltins {
        sqrt: id(sqrt),
        abs: id(abs),
        floor: id(floor),
        max: id(max),
        min: id(min),
        ..vm.inline_builtins
    };
    reg(vm, m, "tointeger", math_tointeger);
    reg(vm, m, "type", math_type);
    reg(vm, m, "ult", math_ult);
    reg(vm, m, "random", math_random);
    reg(vm, m, "randomseed", math_randomseed);
    set_field(vm, m, "pi", Value::Float(std::f64::consts::PI));
    set_field(vm, m, "huge", Value::Float(f64::INFINITY));
    set_field(vm, m, "maxinteger", Value::Int(i64::MAX));
    set_field(vm, m, "mininteger", Value::Int(i64::MIN));

    crate::iolib::open(vm);

    let os = new_lib(vm, "os");
    crate::oslib::open(vm, os);
    reg(vm, os, "getenv", os_getenv);
    reg(vm, os, "exit", os_exit);
    reg(vm, os, "remove", os_remove);
    reg(vm, os, "rename", os_rename);
    reg(vm, os, "tmpname", os_tmpname);
    reg(vm, os, "difftime", os_difftime);

    let u = new_lib(vm, "utf8");
    reg(vm, u, "char", crate::utf8lib::utf8_char);
    reg(vm, u, "codepoint", crate::utf8lib::utf8_codepoint);
    reg(vm, u, "len", crate::utf8lib::utf8_len);
    reg(vm, u, "offset", crate::utf8lib::utf8_offset);
    reg(vm, u, "codes", crate::utf8lib::utf8_codes);
    let pattern = vm.heap.str_value(b"[\x00-\x7F\xC2-\xFD][\x80-\xBF]*");
    set_field(vm, u, "charpattern", pattern);

    let package = new_lib(vm, "package");
    let loaded = vm.loaded;
    set_field(vm, package, "loaded", Value::Table(loaded));
    let path = vm.heap.str_value(b"/usr/local/share/lua/5.4/?.lua;/usr/local/share/lua/5.4/?/init.lua;/usr/local/lib/lua/5.4/?.lua;/usr/local/lib/lua/5.4/?/init.lua;./?.lua;./?/init.lua");
    set_field(vm, package, "path", path);
    let preload = vm.heap.new_table(Table::default());
    set_field(vm, package, "preload", Value::Table(preload));
    let cpath = vm.heap.str_value(b"");
    set_field(vm, package, "cpath", cpath);
    let config = vm.heap.str_value(b"/\n;\n?\n!\n-\n");
    set_field(vm, package, "config", config);

    crate::coroutine::open(vm);
    crate::debuglib::open(vm);

    let proto = crate::compile(&mut vm.heap, BIND_MAKER.as_bytes(), "=[C]")
        .expect("the bind maker compiles");
    proto.protos[0].protos[0].keeps_caller_frame.set(true);
    let f = vm.chunk_closure(proto, None);
    vm.bind_maker = vm
        .call_meta(Value::Func(f), &[])
        .expect("the bind maker runs");
    let proto = crate::compile(&mut vm.heap, PASS_THROUGH.as_bytes(), "=[C]")
        .expect("the pass-through compiles");
    let inner = proto.protos[0].clone();
    inner.keeps_caller_frame.set(true);
    vm.pass_through = Some(inner);
}

/// Source of the Lua function that stands for a library function where
/// only a Lua function lets a yield through (a coroutine's body, a
/// metamethod): `function(...) return f(...) end` with `f` the library
/// function, an upvalue. Its frame stands for the library function, as a
/// bound one's does; a yield in `f` returns through the tail call.
const PASS_THROUGH: &str = "local f return function(...) return f(...) end";

/// The library function the innermost frame passes through to, if that
/// frame is a pass-through's.
fn passed_through(vm: &Vm) -> Option<u32> {
    let f = vm.frames.last()?;
    let clo = vm.heap.closures.get(f.closure.0);
    if !vm
        .pass_through
        .as_ref()
        .is_some_and(|p| Rc::ptr_eq(p, &clo.proto))
    {
        return None;
    }
    match *vm.heap.upvals.get(clo.upvals[0].0) {
        crate::heap::UpVal::Closed(Value::Builtin(id)) => Some(id),
        _ => None,
    }
}

/// The Lua function that calls library function `id` (see
/// [`PASS_THROUGH`]); made once per library function and kept (a
/// collector root), without running Lua code, so it is no safe point.
pub fn pass_through(vm: &mut Vm, id: u32) -> Value {
    if let Some(&f @ Value::Func(_)) = vm.pass_throughs.get(id as usize) {
        return f;
    }
    let proto = vm
        .pass_through
        .clone()
        .expect("made when the library was installed");
    let u = vm
        .heap
        .new_upval(crate::heap::UpVal::Closed(Value::Builtin(id)));
    let f = Value::Func(vm.heap.new_closure(crate::heap::Closure {
        proto,
        upvals: Box::new([u]),
    }));
    if vm.pass_throughs.len() <= id as usize {
        vm.pass_throughs.resize(id as usize + 1, Value::Nil);
    }
    vm.pass_throughs[id as usize] = f;
    f
}

/// Source of the function that binds a library function to a state value:
/// `bind(f, state)` is a Lua closure that tail-calls `f(state, ...)`. It
/// gives library functions with state (`coroutine.wrap`'s, `gmatch`'s
/// iterator) as ordinary Lua functions; the closure's frame stands for the
/// library function (errors name its caller's line).
const BIND_MAKER: &str =
    "return function(f, state) return function(...) return f(state, ...) end end";

/// `f` bound to `state` (see [`BIND_MAKER`]).
pub fn bind(vm: &mut Vm, f: Value, state: Value) -> LResult<Value> {
    let maker = vm.bind_maker;
    vm.call_meta(maker, &[f, state])
}

// ---------- argument helpers ----------

#[inline]
pub fn arg(vm: &Vm, base: usize, nargs: usize, i: usize) -> Value {
    if i < nargs {
        vm.stack[base + i]
    } else {
        Value::Nil
    }
}

pub fn arg_error(vm: &mut Vm, i: usize, fname: &str, msg: &str) -> LuaError {
    // Called by a generic `for` as its iterator, it is "for iterator".
    if !vm.builtin_from_rust && vm.current_op_is_for_iterator() {
        return vm.rt_error(format!(
            "bad argument #{} to 'for iterator' ({})",
            i + 1,
            msg
        ));
    }
    // Called by a library function (`pcall(table.insert, …)`), the
    // function has no name in Lua code: lua5.4 then names it by where
    // `package.loaded` holds it (`'table.insert'`).
    // So is one called through its pass-through (a coroutine's body).
    let name = match (vm.builtin_from_rust, vm.running_builtin) {
        (true, Some(id)) => Some(id),
        _ => passed_through(vm),
    }
    .and_then(|id| crate::debuglib::loaded_name(vm, Value::Builtin(id)))
    .unwrap_or_else(|| fname.to_string());
    vm.rt_error(format!("bad argument #{} to '{}' ({})", i + 1, name, msg))
}

fn type_name_for_arg(vm: &Vm, base: usize, nargs: usize, i: usize) -> String {
    if i >= nargs {
        "no value".into()
    } else {
        vm.type_name_meta(vm.stack[base + i])
    }
}

pub fn check_table(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<TableRef> {
    match arg(vm, base, nargs, i) {
        Value::Table(t) => Ok(t),
        _ => {
            let got = type_name_for_arg(vm, base, nargs, i);
            Err(arg_error(vm, i, f, &format!("table expected, got {got}")))
        }
    }
}

#[inline]
pub fn check_int(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<i64> {
    match arg(vm, base, nargs, i) {
        Value::Int(n) => Ok(n),
        v => check_int_slow(vm, base, nargs, i, f, v),
    }
}

/// [`check_int`] of anything but an integer: a conversion or an error,
/// kept out of line so that the integer case inlines into its callers.
#[cold]
#[inline(never)]
fn check_int_slow(
    vm: &mut Vm,
    base: usize,
    nargs: usize,
    i: usize,
    f: &str,
    v: Value,
) -> LResult<i64> {
    match v {
        Value::Int(n) => Ok(n),
        Value::Float(x) => match float_to_int_exact(x) {
            Some(n) => Ok(n),
            None => Err(arg_error(vm, i, f, "number has no integer representation")),
        },
        Value::Str(s) => match str_to_number(vm.heap.str_bytes(s)) {
            Some(Value::Int(n)) => Ok(n),
            Some(Value::Float(x)) => match float_to_int_exact(x) {
                Some(n) => Ok(n),
                // A numeric string is a number to lua5.4's `interror`.
                None => Err(arg_error(vm, i, f, "number has no integer representation")),
            },
            _ => {
                let got = type_name_for_arg(vm, base, nargs, i);
                Err(arg_error(vm, i, f, &format!("number expected, got {got}")))
            }
        },
        _ => {
            let got = type_name_for_arg(vm, base, nargs, i);
            Err(arg_error(vm, i, f, &format!("number expected, got {got}")))
        }
    }
}

#[inline]
pub fn opt_int(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str, d: i64) -> LResult<i64> {
    if matches!(arg(vm, base, nargs, i), Value::Nil) {
        Ok(d)
    } else {
        check_int(vm, base, nargs, i, f)
    }
}

pub fn check_num(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<Value> {
    let v = arg(vm, base, nargs, i);
    match v {
        Value::Int(_) | Value::Float(_) => Ok(v),
        Value::Str(s) => match str_to_number(vm.heap.str_bytes(s)) {
            Some(n) => Ok(n),
            None => {
                let got = type_name_for_arg(vm, base, nargs, i);
                Err(arg_error(vm, i, f, &format!("number expected, got {got}")))
            }
        },
        _ => {
            let got = type_name_for_arg(vm, base, nargs, i);
            Err(arg_error(vm, i, f, &format!("number expected, got {got}")))
        }
    }
}

pub fn check_float(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<f64> {
    Ok(match check_num(vm, base, nargs, i, f)? {
        Value::Int(n) => n as f64,
        Value::Float(x) => x,
        _ => unreachable!("a number"),
    })
}

/// A string argument (numbers are converted), as owned bytes.
pub fn check_str(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<Vec<u8>> {
    let v = arg(vm, base, nargs, i);
    let mut out = Vec::new();
    if vm.concat_piece(v, &mut out) {
        // Reading a string is work in proportion to its size (limits.rs).
        vm.charge_bytes(out.len())?;
        Ok(out)
    } else {
        let got = type_name_for_arg(vm, base, nargs, i);
        Err(arg_error(vm, i, f, &format!("string expected, got {got}")))
    }
}

/// An optional string argument (`luaL_optstring`): nil or absent is
/// `None`, a number its text, anything else an argument error.
fn opt_str(vm: &mut Vm, base: usize, nargs: usize, i: usize, f: &str) -> LResult<Option<Vec<u8>>> {
    let v = arg(vm, base, nargs, i);
    if matches!(v, Value::Nil) {
        return Ok(None);
    }
    let mut out = Vec::new();
    if vm.concat_piece(v, &mut out) {
        return Ok(Some(out));
    }
    let got = type_name_for_arg(vm, base, nargs, i);
    Err(arg_error(vm, i, f, &format!("string expected, got {got}")))
}

/// [`check_str`] without copying a string argument: its bytes shared with
/// the heap (`s:sub(i, i)` on a long subject is then not a copy of the
/// whole subject per call); a number is converted as there.
pub fn check_str_shared(
    vm: &mut Vm,
    base: usize,
    nargs: usize,
    i: usize,
    f: &str,
) -> LResult<std::rc::Rc<[u8]>> {
    if let Value::Str(s) = arg(vm, base, nargs, i) {
        let bytes = vm.heap.str_rc(s);
        vm.charge_bytes(bytes.len())?;
        return Ok(bytes);
    }
    check_str(vm, base, nargs, i, f).map(std::rc::Rc::from)
}

/// A string argument as the heap's own string, its length charged as
/// [`check_str_shared`] charges it: no handle to clone and drop, for the
/// string functions called once per character (`s:sub(i, i)`,
/// `s:byte(i)`). `None` for any other value, which the caller hands to
/// [`check_str_shared`] (numbers are converted there, the rest refused).
fn str_arg(vm: &mut Vm, base: usize, nargs: usize, i: usize) -> LResult<Option<StrRef>> {
    match arg(vm, base, nargs, i) {
        Value::Str(s) => {
            let len = vm.heap.str_bytes(s).len();
            vm.charge_bytes(len)?;
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

/// `tostring(v)`, honouring `__tostring` and `__name`.
pub fn tostring(vm: &mut Vm, v: Value) -> LResult<Vec<u8>> {
    let mut out = Vec::new();
    if vm.concat_piece(v, &mut out) {
        return Ok(out);
    }
    let h = vm.metamethod(v, Event::ToString);
    if !matches!(h, Value::Nil) {
        let r = vm.call_meta(h, &[v])?;
        return match r {
            Value::Str(s) => Ok(vm.heap.str_bytes(s).to_vec()),
            Value::Int(_) | Value::Float(_) => {
                vm.concat_piece(r, &mut out);
                Ok(out)
            }
            _ => Err(vm.rt_error("'__tostring' must return a string")),
        };
    }
    let s = match (v, pointer_of(v)) {
        (Value::Nil, _) => "nil".to_string(),
        (Value::Bool(b), _) => b.to_string(),
        (_, Some(p)) => format!("{}: 0x{p:08x}", vm.type_name_meta(v)),
        _ => unreachable!("handled by concat_piece"),
    };
    Ok(s.into_bytes())
}

/// The address `tostring` and `string.format('%p')` show for an object
/// (made up from its arena index: stable while it lives, unique per
/// kind); `None` for values that are not objects (lua5.4's NULL).
pub fn pointer_of(v: Value) -> Option<u64> {
    let (kind, i) = match v {
        // A long string's own object number moves its address.
        Value::Str(s) => (
            0x5400_0000_0000u64.wrapping_add((s.1 as u64) << 37),
            s.0 as u64,
        ),
        Value::Table(t) => (0x5500_0000_0000, t.0 as u64),
        Value::Func(f) => (0x5600_0000_0000, f.0 as u64),
        Value::Builtin(b) => (0x5700_0000_0000, b as u64),
        Value::Thread(c) => (0x5800_0000_0000, c.0 as u64),
        Value::Userdata(u) => (0x5900_0000_0000, u.0 as u64),
        _ => return None,
    };
    Some(kind.wrapping_add(i * 64))
}

// ---------- base ----------

fn base_next(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "next")?;
    let k = arg(vm, base, nargs, 1);
    match vm.heap.table(t).next(k) {
        Ok(Some((k, v))) => vm.rets(base + nargs, &[k, v]),
        Ok(None) => vm.rets(base + nargs, &[Value::Nil]),
        Err(()) => Err(vm.core_error("invalid key to 'next'")),
    }
}

fn base_pairs(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let v = arg(vm, base, nargs, 0);
    let h = vm.metamethod(v, Event::Pairs);
    if !matches!(h, Value::Nil) {
        let at = base + nargs;
        vm.ensure_stack(at + 5)?;
        vm.stack[at] = h;
        vm.stack[at + 1] = v;
        // `pairs` called from Lua code: a yield may cross `__pairs` (lua5.4
        // calls it with a continuation); a resumed thread finishes the
        // call with the handler's three results (`Vm::finish_op`).
        let finishable =
            matches!(h, Value::Func(_)) && !vm.builtin_from_rust && vm.current_op_is_call();
        if finishable {
            vm.meta_calls += 1;
        }
        let r = vm.call_at(at, 1, 3);
        if finishable {
            vm.meta_calls -= 1;
        }
        r?;
        return Ok((at, 3));
    }
    // Any value, as lua5.4: `next` refuses a non-table when the loop
    // calls it ("bad argument #1 to 'for iterator'"), not `pairs`.
    if nargs == 0 {
        return Err(arg_error(vm, 0, "pairs", "value expected"));
    }
    vm.rets(base + nargs, &[Value::Builtin(NEXT_ID), v, Value::Nil])
}

fn ipairs_iter(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = arg(vm, base, nargs, 0);
    let i = match arg(vm, base, nargs, 1) {
        Value::Int(i) => i.wrapping_add(1),
        _ => 1,
    };
    if !matches!(t, Value::Table(_)) && matches!(vm.metamethod(t, Event::Index), Value::Nil) {
        // Raised inside a library function: no position (lua5.4's `lua_geti`).
        let tn = vm.type_name_meta(t);
        return Err(vm.plain_error(&format!("attempt to index a {tn} value")));
    }
    let v = vm.index(t, Value::Int(i), None)?;
    if matches!(v, Value::Nil) {
        vm.rets(base + nargs, &[Value::Nil])
    } else {
        vm.rets(base + nargs, &[Value::Int(i), v])
    }
}

fn base_ipairs(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        // lua5.4's `luaL_checkany`: any value will do, even nil.
        return Err(arg_error(vm, 0, "ipairs", "value expected"));
    }
    let t = arg(vm, base, nargs, 0);
    let id = match vm.builtins.iter().position(|(n, _)| *n == "ipairs_iter") {
        Some(i) => i as u32,
        None => {
            vm.builtins.push(("ipairs_iter", ipairs_iter));
            (vm.builtins.len() - 1) as u32
        }
    };
    vm.rets(base + nargs, &[Value::Builtin(id), t, Value::Int(0)])
}

fn base_print(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let mut line = Vec::new();
    for i in 0..nargs {
        if i > 0 {
            line.push(b'\t');
        }
        let v = vm.stack[base + i];
        line.extend(tostring(vm, v)?);
    }
    line.push(b'\n');
    if vm.out.write_all(&line).is_err() {
        return Err(vm.rt_error("cannot write to the output"));
    }
    Ok((base, 0))
}

fn base_type(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        return Err(arg_error(vm, 0, "type", "value expected"));
    }
    let v = vm.heap.str_value(vm.stack[base].type_name().as_bytes());
    vm.rets(base + nargs, &[v])
}

fn base_tostring(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        return Err(arg_error(vm, 0, "tostring", "value expected"));
    }
    let s = tostring(vm, vm.stack[base])?;
    let v = vm.heap.str_value(&s);
    vm.rets(base + nargs, &[v])
}

fn base_tonumber(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let v = arg(vm, base, nargs, 0);
    if nargs >= 2 && !matches!(arg(vm, base, nargs, 1), Value::Nil) {
        // lua5.4's order: the base an integer, then the value a string,
        // then the base in range.
        let b = check_int(vm, base, nargs, 1, "tonumber")?;
        let Value::Str(s) = v else {
            let got = type_name_for_arg(vm, base, nargs, 0);
            return Err(arg_error(
                vm,
                0,
                "tonumber",
                &format!("string expected, got {got}"),
            ));
        };
        if !(2..=36).contains(&b) {
            return Err(arg_error(vm, 1, "tonumber", "base out of range"));
        }
        let bytes = trim_ascii(vm.heap.str_bytes(s)).to_vec();
        let (neg, digits) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, &bytes[..]),
        };
        let mut n: i64 = 0;
        let mut ok = !digits.is_empty();
        for &c in digits {
            match (c as char).to_digit(36) {
                Some(d) if (d as i64) < b => n = n.wrapping_mul(b).wrapping_add(d as i64),
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        let r = if ok {
            Value::Int(if neg { n.wrapping_neg() } else { n })
        } else {
            Value::Nil
        };
        return vm.rets(base + nargs, &[r]);
    }
    if nargs == 0 {
        return Err(arg_error(vm, 0, "tonumber", "value expected"));
    }
    let r = match v {
        Value::Int(_) | Value::Float(_) => v,
        Value::Str(s) => str_to_number(vm.heap.str_bytes(s)).unwrap_or(Value::Nil),
        _ => Value::Nil,
    };
    vm.rets(base + nargs, &[r])
}

fn base_select(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if let Value::Str(s) = arg(vm, base, nargs, 0) {
        if vm.heap.str_bytes(s) == b"#" {
            return vm.rets(base + nargs, &[Value::Int(nargs as i64 - 1)]);
        }
    }
    let n = check_int(vm, base, nargs, 0, "select")?;
    let count = nargs as i64 - 1;
    let start = if n < 0 {
        // (`-n` would overflow for the smallest integer.)
        if n < -count {
            return Err(arg_error(vm, 0, "select", "index out of range"));
        }
        count + n
    } else if n == 0 {
        return Err(arg_error(vm, 0, "select", "index out of range"));
    } else {
        (n - 1).min(count)
    };
    Ok((base + 1 + start as usize, (count - start) as usize))
}

fn base_error(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let v = arg(vm, base, nargs, 0);
    let level = opt_int(vm, base, nargs, 1, "error", 1)?;
    let value = match v {
        Value::Str(s) if level > 0 => {
            let mut msg = vm.where_(level as usize - 1).into_bytes();
            msg.extend_from_slice(vm.heap.str_bytes(s));
            vm.heap.str_value(&msg)
        }
        _ => v,
    };
    Err(LuaError {
        value,
        exit: None,
        yielded: false,
    })
}

fn base_assert(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        return Err(arg_error(vm, 0, "assert", "value expected"));
    }
    if vm.stack[base].truthy() {
        return Ok((base, nargs));
    }
    let value = match vm.stack.get(base + 1).copied().filter(|_| nargs >= 2) {
        Some(Value::Str(s)) => {
            let mut msg = vm.where_(0).into_bytes();
            msg.extend_from_slice(vm.heap.str_bytes(s));
            vm.heap.str_value(&msg)
        }
        Some(v) => v,
        None => return Err(vm.rt_error("assertion failed!")),
    };
    Err(LuaError {
        value,
        exit: None,
        yielded: false,
    })
}

fn base_pcall(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        return Err(arg_error(vm, 0, "pcall", "value expected"));
    }
    let frames = vm.frames.len();
    let depth = vm.c_depth;
    let protected = vm.protected;
    match vm.call_at(base, nargs - 1, -1) {
        Ok(n) => {
            vm.stack[base - 1] = Value::Bool(true);
            Ok((base - 1, n + 1))
        }
        Err(e) if e.catchable() => {
            vm.error_trace = None;
            vm.close_upvals(base);
            vm.frames.truncate(frames);
            vm.c_depth = depth;
            vm.protected = protected;
            vm.stack[base - 1] = Value::Bool(false);
            vm.stack[base] = e.value;
            Ok((base - 1, 2))
        }
        Err(e) => Err(e),
    }
}

fn base_xpcall(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs < 2 {
        return Err(arg_error(vm, 1, "xpcall", "value expected"));
    }
    let frames = vm.frames.len();
    let depth = vm.c_depth;
    let protected = vm.protected;
    let handler = vm.stack[base + 1];
    // Arguments: f, handler, a1… → call f(a1…) at base+1.
    vm.stack[base + 1] = vm.stack[base];
    match vm.call_at(base + 1, nargs - 2, -1) {
        Ok(n) => {
            vm.stack[base] = Value::Bool(true);
            Ok((base, n + 1))
        }
        Err(e) if e.catchable() => {
            vm.error_trace = None;
            vm.frames.truncate(frames);
            vm.c_depth = depth;
            vm.protected = protected;
            vm.close_upvals(base);
            vm.stack[base] = handler;
            let r = vm.call_meta(handler, &[e.value])?;
            vm.rets(base, &[Value::Bool(false), r])
        }
        Err(e) => Err(e),
    }
}

fn base_setmetatable(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "setmetatable")?;
    let m = match arg(vm, base, nargs, 1) {
        // A missing metatable is not nil to lua5.4 ("got no value").
        Value::Nil if nargs > 1 => None,
        Value::Table(m) => Some(m),
        _ => {
            let got = type_name_for_arg(vm, base, nargs, 1);
            let msg = format!("nil or table expected, got {got}");
            return Err(arg_error(vm, 1, "setmetatable", &msg));
        }
    };
    if let Some(old) = vm.heap.table(t).meta {
        let k = vm.event_name(Event::Metatable);
        if !matches!(vm.heap.table(old).get_str(k), Value::Nil) {
            return Err(vm.rt_error("cannot change a protected metatable"));
        }
    }
    vm.heap.table_mut(t).meta = m;
    Ok((base, 1))
}

fn base_getmetatable(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        return Err(arg_error(vm, 0, "getmetatable", "value expected"));
    }
    let v = arg(vm, base, nargs, 0);
    let r = match vm.metatable(v) {
        None => Value::Nil,
        Some(m) => {
            let k = vm.event_name(Event::Metatable);
            let protected = vm.heap.table(m).get_str(k);
            if matches!(protected, Value::Nil) {
                Value::Table(m)
            } else {
                protected
            }
        }
    };
    vm.rets(base + nargs, &[r])
}

fn base_rawget(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "rawget")?;
    if nargs < 2 {
        return Err(arg_error(vm, 1, "rawget", "value expected"));
    }
    let v = vm.heap.table(t).get(arg(vm, base, nargs, 1));
    vm.rets(base + nargs, &[v])
}

fn base_rawset(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "rawset")?;
    for i in [1, 2] {
        if nargs <= i {
            return Err(arg_error(vm, i, "rawset", "value expected"));
        }
    }
    let (k, v) = (arg(vm, base, nargs, 1), arg(vm, base, nargs, 2));
    vm.raw_set(t, k, v)?;
    Ok((base, 1))
}

fn base_rawequal(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs < 2 {
        return Err(arg_error(vm, nargs, "rawequal", "value expected"));
    }
    let r = arg(vm, base, nargs, 0).raw_eq(arg(vm, base, nargs, 1));
    vm.rets(base + nargs, &[Value::Bool(r)])
}

fn base_rawlen(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let n = match arg(vm, base, nargs, 0) {
        Value::Table(t) => vm.heap.table(t).border(),
        Value::Str(s) => vm.heap.str_bytes(s).len() as i64,
        _ => {
            let got = type_name_for_arg(vm, base, nargs, 0);
            let msg = format!("table or string expected, got {got}");
            return Err(arg_error(vm, 0, "rawlen", &msg));
        }
    };
    vm.rets(base + nargs, &[Value::Int(n)])
}

fn base_collectgarbage(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let opt = match arg(vm, base, nargs, 0) {
        Value::Str(s) => String::from_utf8_lossy(vm.heap.str_bytes(s)).into_owned(),
        _ => "collect".into(),
    };
    match opt.as_str() {
        "count" => {
            let kb = (vm.heap.gc.live_bytes + vm.heap.gc.debt) as f64 / 1024.0;
            vm.rets(base + nargs, &[Value::Float(kb)])
        }
        "collect" | "step" => {
            // Everything live is below this builtin's arguments.
            vm.collect_garbage(base + nargs);
            vm.rets(base + nargs, &[Value::Int(0)])
        }
        _ => vm.rets(base + nargs, &[Value::Int(0)]),
    }
}

/// `load(chunk [, chunkname [, mode [, env]]])`: the chunk a string (or a
/// number's text) or a reader function.
fn base_load(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let chunk = arg(vm, base, nargs, 0);
    // lua5.4's order: the mode (#3), the chunk name (#2), then the chunk.
    let mode = opt_str(vm, base, nargs, 2, "load")?.unwrap_or_else(|| b"bt".to_vec());
    let given_name = opt_str(vm, base, nargs, 1, "load")?;
    // A string, or a number as its text (lua5.4's `lua_tolstring`), is
    // the source; otherwise a reader function gives it.
    let mut text = Vec::new();
    let is_text = vm.concat_piece(chunk, &mut text);
    let src = match chunk {
        _ if is_text => text,
        // A reader's error is load's error message.
        Value::Func(_) | Value::Builtin(_) => match read_pieces(vm, chunk) {
            Ok(src) => src,
            Err(e) if e.catchable() => return vm.rets(base + nargs, &[Value::Nil, e.value]),
            Err(e) => return Err(e),
        },
        _ => {
            let got = type_name_for_arg(vm, base, nargs, 0);
            let msg = format!("function expected, got {got}");
            return Err(arg_error(vm, 0, "load", &msg));
        }
    };
    // The name shown in messages, and the chunkname as given (`source`).
    let (name, chunk_name) = match &given_name {
        Some(n) => {
            let shown = match n.first() {
                Some(b'=') | Some(b'@') => String::from_utf8_lossy(&n[1..]).into_owned(),
                _ => chunk_id(n),
            };
            (shown, String::from_utf8_lossy(n).into_owned())
        }
        None if is_text => (chunk_id(&src), String::from_utf8_lossy(&src).into_owned()),
        None => ("(load)".to_string(), "=(load)".to_string()),
    };
    let binary = src.first() == Some(&0x1b);
    let refused = if binary && !mode.contains(&b'b') {
        Some(format!(
            "attempt to load a binary chunk (mode is '{}')",
            String::from_utf8_lossy(&mode)
        ))
    } else if !binary && !mode.contains(&b't') {
        Some(format!(
            "attempt to load a text chunk (mode is '{}')",
            String::from_utf8_lossy(&mode)
        ))
    } else {
        None
    };
    if let Some(msg) = refused {
        let m = vm.heap.str_value(msg.as_bytes());
        return vm.rets(base + nargs, &[Value::Nil, m]);
    }
    // A fourth argument, even nil, is the chunk's environment.
    let env = (nargs >= 4).then(|| vm.stack[base + 3]);
    if binary {
        let chunkname = match given_name {
            Some(n) => n,
            None if is_text => src.clone(),
            None => b"=(load)".to_vec(),
        };
        let r = match crate::dump::load(vm, &src, &chunkname, env) {
            Ok(f) => Value::Func(f),
            Err(msg) => {
                let m = vm.heap.str_value(msg.as_bytes());
                return vm.rets(base + nargs, &[Value::Nil, m]);
            }
        };
        return vm.rets(base + nargs, &[r]);
    }
    match crate::compile_env(&mut vm.heap, &src, &name, &chunk_name, env.is_some()) {
        Ok(proto) => {
            let f = vm.chunk_closure(proto, env);
            vm.rets(base + nargs, &[Value::Func(f)])
        }
        Err(msg) => {
            let m = vm.heap.str_value(msg.as_bytes());
            vm.rets(base + nargs, &[Value::Nil, m])
        }
    }
}

/// The chunk a `load` reader function gives: its pieces until it returns
/// nil or an empty string (at most `MAX_LOAD_BYTES`).
fn read_pieces(vm: &mut Vm, reader: Value) -> LResult<Vec<u8>> {
    const MAX_LOAD_BYTES: usize = 1 << 30;
    let mut src = Vec::new();
    loop {
        let piece = vm.call_meta(reader, &[])?;
        match piece {
            Value::Nil => return Ok(src),
            Value::Str(s) => {
                let b = vm.heap.str_bytes(s);
                if b.is_empty() {
                    return Ok(src);
                }
                if src.len() + b.len() > MAX_LOAD_BYTES {
                    return Err(vm.plain_error("not enough memory"));
                }
                src.extend_from_slice(b);
            }
            Value::Int(_) | Value::Float(_) => {
                // Numbers are strings to a reader, as in lua5.4.
                let mut b = Vec::new();
                vm.concat_piece(piece, &mut b);
                src.extend_from_slice(&b);
                if src.len() > MAX_LOAD_BYTES {
                    return Err(vm.plain_error("not enough memory"));
                }
            }
            _ => return Err(vm.plain_error("reader function must return a string")),
        }
    }
}

fn base_dofile(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let path = check_str(vm, base, nargs, 0, "dofile")?;
    let shown = String::from_utf8_lossy(&path).into_owned();
    let src = match std::fs::read(&shown) {
        Ok(s) => s,
        Err(e) => {
            let why = crate::stdlib::io_error_text(&e);
            return Err(vm.plain_error(&format!("cannot open {shown}: {why}")));
        }
    };
    let proto = match crate::compile(&mut vm.heap, crate::without_shebang(&src), &shown) {
        Ok(p) => p,
        Err(msg) => return Err(vm.plain_error(&msg)),
    };
    let f = vm.chunk_closure(proto, None);
    let at = base + nargs;
    vm.ensure_stack(at + 2)?;
    vm.stack[at] = Value::Func(f);
    let n = vm.call_at(at, 0, -1)?;
    Ok((at, n))
}

/// The text of an I/O error as C's strerror gives it.
pub fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_string()
        }
    }
}

/// lua5.4's name of a string chunk: `[string "first line..."]`.
fn chunk_id(src: &[u8]) -> String {
    let text = String::from_utf8_lossy(src);
    let first = text.lines().next().unwrap_or("");
    let multi = text.contains('\n');
    const MAX: usize = 60 - 15;
    if !multi && first.len() <= MAX {
        format!("[string \"{first}\"]")
    } else {
        let cut: String = first.chars().take(MAX.min(first.len())).collect();
        format!("[string \"{cut}...\"]")
    }
}

fn base_require(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let name = check_str(vm, base, nargs, 0, "require")?;
    let key = vm.heap.str_value(&name);
    let loaded = vm.loaded;
    let have = vm.heap.table(loaded).get(key);
    if !matches!(have, Value::Nil) {
        return vm.rets(base + nargs, &[have]);
    }
    let shown = String::from_utf8_lossy(&name).into_owned();
    let package = vm.heap.str_value(b"package");
    let package = match vm.heap.table(loaded).get(package) {
        Value::Table(t) => Some(t),
        _ => None,
    };
    let field = |vm: &mut Vm, f: &str| {
        let k = vm.heap.str_value(f.as_bytes());
        package
            .map(|p| vm.heap.table(p).get(k))
            .unwrap_or(Value::Nil)
    };
    // package.preload first, then the templates of package.path.
    let preload = field(vm, "preload");
    let loader = match preload {
        Value::Table(t) => vm.heap.table(t).get(key),
        _ => Value::Nil,
    };
    let (loader, extra) = if !matches!(loader, Value::Nil) {
        (loader, vm.heap.str_value(b":preload:"))
    } else {
        let path = match field(vm, "path") {
            Value::Str(s) => String::from_utf8_lossy(vm.heap.str_bytes(s)).into_owned(),
            _ => return Err(vm.rt_error("'package.path' must be a string")),
        };
        let rel = shown.replace('.', "/");
        let mut tried =
            format!("module '{shown}' not found:\n\tno field package.preload['{shown}']");
        let mut found = None;
        for template in path.split(';').filter(|t| !t.is_empty()) {
            let file = template.replace('?', &rel);
            match std::fs::read(&file) {
                Ok(src) => {
                    found = Some((file, src));
                    break;
                }
                Err(_) => tried.push_str(&format!("\n\tno file '{file}'")),
            }
        }
        let Some((file, src)) = found else {
            return Err(vm.rt_error(tried));
        };
        let proto = match crate::compile(&mut vm.heap, crate::without_shebang(&src), &file) {
            Ok(p) => p,
            Err(msg) => {
                return Err(vm.rt_error(format!(
                    "error loading module '{shown}' from file '{file}':\n\t{msg}"
                )))
            }
        };
        let f = vm.chunk_closure(proto, None);
        (Value::Func(f), vm.heap.str_value(file.as_bytes()))
    };
    let at = base + nargs;
    vm.ensure_stack(at + 4)?;
    vm.stack[at] = loader;
    vm.stack[at + 1] = key;
    vm.stack[at + 2] = extra;
    vm.call_at(at, 2, 1)?;
    let mut r = vm.stack[at];
    if matches!(r, Value::Nil) {
        r = vm.heap.table(loaded).get(key);
        if matches!(r, Value::Nil) {
            r = Value::Bool(true);
        }
    }
    vm.heap.table_mut(loaded).set(key, r);
    vm.rets(at, &[r, extra])
}

// ---------- table ----------

/// `#t` for the table functions: honours `__len`, which must give an
/// integer (lua5.4's `aux_getn`).
fn aux_len(vm: &mut Vm, t: TableRef) -> LResult<i64> {
    if vm.heap.table(t).meta.is_none() {
        return Ok(vm.heap.table(t).border());
    }
    match vm.length(Value::Table(t), None)? {
        Value::Int(n) => Ok(n),
        Value::Float(f) if float_to_int_exact(f).is_some() => {
            Ok(float_to_int_exact(f).unwrap_or(0))
        }
        _ => Err(vm.rt_error("object length is not an integer")),
    }
}

/// `t[i]` and `t[i] = v` for the table functions (with metamethods when
/// the table has a metatable).
fn tget(vm: &mut Vm, t: TableRef, i: i64) -> LResult<Value> {
    if vm.heap.table(t).meta.is_none() {
        return Ok(vm.heap.table(t).get_int(i));
    }
    vm.index(Value::Table(t), Value::Int(i), None)
}

fn tset(vm: &mut Vm, t: TableRef, i: i64, v: Value) -> LResult<()> {
    if vm.heap.table(t).meta.is_none() {
        vm.heap.table_mut(t).set_int(i, v);
        return Ok(());
    }
    vm.set_index(Value::Table(t), Value::Int(i), v, None)
}

fn table_insert(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "insert")?;
    let n = aux_len(vm, t)?;
    match nargs {
        2 => {
            let v = vm.stack[base + 1];
            tset(vm, t, n.wrapping_add(1), v)?;
        }
        3 => {
            let pos = check_int(vm, base, nargs, 1, "insert")?;
            if (pos as u64).wrapping_sub(1) >= (n as u64).wrapping_add(1) {
                return Err(arg_error(vm, 1, "insert", "position out of bounds"));
            }
            let mut i = n.wrapping_add(1);
            while i > pos {
                vm.charge_steps(1)?;
                let v = tget(vm, t, i - 1)?;
                tset(vm, t, i, v)?;
                i -= 1;
            }
            let v = vm.stack[base + 2];
            tset(vm, t, pos, v)?;
        }
        _ => return Err(vm.rt_error("wrong number of arguments to 'insert'")),
    }
    Ok((base, 0))
}

fn table_remove(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "remove")?;
    let size = aux_len(vm, t)?;
    let mut pos = opt_int(vm, base, nargs, 1, "remove", size)?;
    // lua5.4's check: a position other than the size must be in
    // [1, size + 1] (so `remove(t, #t)` of an empty table is fine).
    if pos != size && (pos as u64).wrapping_sub(1) > size as u64 {
        return Err(arg_error(vm, 1, "remove", "position out of bounds"));
    }
    let v = tget(vm, t, pos)?;
    while pos < size {
        vm.charge_steps(1)?;
        let next = tget(vm, t, pos + 1)?;
        tset(vm, t, pos, next)?;
        pos += 1;
    }
    tset(vm, t, pos, Value::Nil)?;
    vm.rets(base + nargs, &[v])
}

/// `table.concat` of a table with a metatable: elements read through
/// `__index` as lua5.4 reads them (kept rooted until the result is made).
fn concat_through_metamethods(
    vm: &mut Vm,
    at: usize,
    t: TableRef,
    sep: &[u8],
    i: i64,
    j: i64,
) -> LResult<(usize, usize)> {
    let roots = vm.extra_roots.len();
    let r = (|| {
        let mut k = i;
        let mut total = 0usize;
        while k <= j {
            vm.charge_steps(1)?;
            let v = tget(vm, t, k)?;
            if !matches!(v, Value::Str(_) | Value::Int(_) | Value::Float(_)) {
                let tn = vm.type_name_meta(v);
                return Err(vm.rt_error(format!(
                    "invalid value ({tn}) at index {k} in table for 'concat'"
                )));
            }
            total = total.saturating_add(vm.piece_len(v) + sep.len());
            vm.extra_roots.push(v);
            if k == i64::MAX {
                break;
            }
            k += 1;
        }
        vm.charge_bytes(total)?;
        vm.reserve_collecting(total)?;
        let mut out = Vec::with_capacity(total);
        let n = vm.extra_roots.len() - roots;
        for (x, idx) in (roots..roots + n).enumerate() {
            let v = vm.extra_roots[idx];
            vm.concat_piece(v, &mut out);
            if x + 1 < n {
                out.extend_from_slice(sep);
            }
        }
        Ok(vm.heap.str_value(&out))
    })();
    vm.extra_roots.truncate(roots);
    let s = r?;
    vm.rets(at, &[s])
}

fn table_concat(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "concat")?;
    let sep = match arg(vm, base, nargs, 1) {
        Value::Nil => Vec::new(),
        _ => check_str(vm, base, nargs, 1, "concat")?,
    };
    let i = opt_int(vm, base, nargs, 2, "concat", 1)?;
    let default_j = aux_len(vm, t)?;
    let j = opt_int(vm, base, nargs, 3, "concat", default_j)?;
    if vm.heap.table(t).meta.is_some() {
        return concat_through_metamethods(vm, base + nargs, t, &sep, i, j);
    }
    // The result's size first (it may not fit): the pieces, and a
    // separator between each two.
    let mut total = 0usize;
    let mut k = i;
    while k <= j {
        let v = vm.heap.table(t).get_int(k);
        if !matches!(v, Value::Str(_) | Value::Int(_) | Value::Float(_)) {
            break;
        }
        total = total.saturating_add(vm.piece_len(v));
        if k < j {
            total = total.saturating_add(sep.len());
        }
        if k == i64::MAX {
            break;
        }
        k += 1;
    }
    vm.charge_bytes(total)?;
    vm.reserve_collecting(total)?;
    let mut out = Vec::new();
    let mut k = i;
    while k <= j {
        let v = vm.heap.table(t).get_int(k);
        if !vm.concat_piece(v, &mut out) {
            // 5.4.7's wording (the reference's; 5.4.4 said "(at index k)").
            let tn = vm.type_name_meta(v);
            return Err(vm.rt_error(format!(
                "invalid value ({tn}) at index {k} in table for 'concat'"
            )));
        }
        if k < j {
            out.extend_from_slice(&sep);
        }
        if k == i64::MAX {
            break;
        }
        k += 1;
    }
    let v = vm.heap.str_value(&out);
    vm.rets(base + nargs, &[v])
}

/// `string.dump(f [, strip])`: the binary chunk of a Lua function (see
/// `dump.rs`; `strip` changes nothing, the text is the whole payload).
fn str_dump(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let bytes = match arg(vm, base, nargs, 0) {
        Value::Func(f) => {
            let p = vm.heap.closures.get(f.0).proto.clone();
            crate::dump::dump(&p)
        }
        Value::Builtin(_) => None,
        _ => {
            let got = type_name_for_arg(vm, base, nargs, 0);
            return Err(arg_error(
                vm,
                0,
                "dump",
                &format!("function expected, got {got}"),
            ));
        }
    };
    let Some(bytes) = bytes else {
        return Err(vm.rt_error("unable to dump given function"));
    };
    let s = vm.heap.str_value(&bytes);
    vm.rets(base + nargs, &[s])
}

fn table_unpack(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = arg(vm, base, nargs, 0);
    let i = opt_int(vm, base, nargs, 1, "unpack", 1)?;
    let j = match arg(vm, base, nargs, 2) {
        Value::Nil => match vm.length(t, None)? {
            Value::Int(n) => n,
            _ => 0,
        },
        _ => check_int(vm, base, nargs, 2, "unpack")?,
    };
    if i > j {
        return Ok((base + nargs, 0));
    }
    let n = (j as i128 - i as i128 + 1) as u128;
    let at = base + nargs;
    // As lua5.4's `lua_checkstack`: the results must fit in the stack
    // beside what it already holds (and its 5 spare slots).
    if n + at as u128 + 6 > crate::vm::MAX_STACK as u128 {
        return Err(vm.rt_error("too many results to unpack"));
    }
    let n = n as usize;
    vm.charge_steps(n as u64)?;
    vm.ensure_stack(at + n + 1)?;
    for k in 0..n {
        let v = vm.index(t, Value::Int(i + k as i64), None)?;
        vm.stack[at + k] = v;
    }
    Ok((at, n))
}

/// `table.move(a1, f, e, t [, a2])`: `a2[t..] = a1[f..=e]`, with
/// metamethods, in the order that is safe for overlapping ranges.
fn table_move(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let a1 = arg(vm, base, nargs, 0);
    if !matches!(a1, Value::Table(_)) {
        let got = type_name_for_arg(vm, base, nargs, 0);
        return Err(arg_error(
            vm,
            0,
            "move",
            &format!("table expected, got {got}"),
        ));
    }
    let f = check_int(vm, base, nargs, 1, "move")?;
    let e = check_int(vm, base, nargs, 2, "move")?;
    let t = check_int(vm, base, nargs, 3, "move")?;
    let a2 = match arg(vm, base, nargs, 4) {
        Value::Nil => a1,
        v @ Value::Table(_) => v,
        _ => {
            let got = type_name_for_arg(vm, base, nargs, 4);
            return Err(arg_error(
                vm,
                4,
                "move",
                &format!("table expected, got {got}"),
            ));
        }
    };
    if e >= f {
        if !(f > 0 || e < i64::MAX + f) {
            return Err(arg_error(vm, 2, "move", "too many elements to move"));
        }
        let n = e - f;
        if t > i64::MAX - n {
            return Err(arg_error(vm, 3, "move", "destination wrap around"));
        }
        let overlap_forward = t > e || t <= f || !a1.raw_eq(a2);
        for k in 0..=n {
            vm.charge_steps(1)?;
            let i = if overlap_forward { k } else { n - k };
            let v = vm.index(a1, Value::Int(f + i), None)?;
            vm.set_index(a2, Value::Int(t + i), v, None)?;
        }
    }
    vm.rets(base + nargs, &[a2])
}

fn table_pack(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    // The array part holds all `n` values, nils too (lua5.4's
    // `lua_createtable(L, n, 1)`): `#table.pack(nil, x)` is then 2, as
    // there.
    let mut t = Table::with_capacity(nargs, 1);
    t.arr.extend_from_slice(&vm.stack[base..base + nargs]);
    let k = vm.heap.str_value(b"n");
    t.set(k, Value::Int(nargs as i64));
    let t = vm.heap.new_table(t);
    vm.rets(base + nargs, &[Value::Table(t)])
}

fn table_sort(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = check_table(vm, base, nargs, 0, "sort")?;
    let n = aux_len(vm, t)?;
    if n > 1 {
        if n >= i32::MAX as i64 {
            return Err(arg_error(vm, 0, "sort", "array too big"));
        }
        let cmp = arg(vm, base, nargs, 1);
        if !matches!(cmp, Value::Nil | Value::Func(_) | Value::Builtin(_)) {
            let got = type_name_for_arg(vm, base, nargs, 1);
            return Err(arg_error(
                vm,
                1,
                "sort",
                &format!("function expected, got {got}"),
            ));
        }
        // The values a sort holds outside the table (the pivot, the two
        // being compared) stay rooted while the comparator runs.
        let roots = vm.extra_roots.len();
        vm.extra_roots.extend_from_slice(&[Value::Nil; 3]);
        let mut s = Sorter {
            t,
            cmp,
            roots,
            rnd: 0,
        };
        let r = s.sort(vm, 1, n);
        vm.extra_roots.truncate(roots);
        r?;
    }
    Ok((base, 0))
}

/// lua5.4's `table.sort`: a quicksort reading and writing the table
/// through its metamethods, with lua5.4's sequence of comparisons, so a
/// comparator with side effects sees what it sees in lua5.4 and an
/// inconsistent one is "invalid order function for sorting" where lua5.4
/// finds it. Recursion goes into the smaller part only (depth at most
/// log2 n).
struct Sorter {
    t: TableRef,
    cmp: Value,
    /// Where the three rooted slots start in `extra_roots`.
    roots: usize,
    /// Nonzero once a partition was too unbalanced: pivots are then
    /// taken off-centre from it.
    rnd: u64,
}

impl Sorter {
    fn get(&self, vm: &mut Vm, i: i64, slot: usize) -> LResult<Value> {
        let v = tget(vm, self.t, i)?;
        vm.extra_roots[self.roots + slot] = v;
        Ok(v)
    }

    fn less(&self, vm: &mut Vm, a: Value, b: Value) -> LResult<bool> {
        vm.charge_steps(1)?;
        if matches!(self.cmp, Value::Nil) {
            vm.less(a, b, false)
        } else {
            Ok(vm.call_meta(self.cmp, &[a, b])?.truthy())
        }
    }

    /// Swaps `a[i]` and `a[j]`, whose values are `vi` and `vj`.
    fn swap(&self, vm: &mut Vm, i: i64, vi: Value, j: i64, vj: Value) -> LResult<()> {
        tset(vm, self.t, i, vj)?;
        tset(vm, self.t, j, vi)
    }

    fn sort(&mut self, vm: &mut Vm, mut lo: i64, mut up: i64) -> LResult<()> {
        while lo < up {
            // Order a[lo], a[p], a[up].
            let (vl, vu) = (self.get(vm, lo, 0)?, self.get(vm, up, 1)?);
            if self.less(vm, vu, vl)? {
                self.swap(vm, lo, vl, up, vu)?;
            }
            if up - lo == 1 {
                break;
            }
            let p = if up - lo < 100 || self.rnd == 0 {
                (lo + up) / 2
            } else {
                let r4 = (up - lo) / 4;
                (self.rnd % (r4 as u64 * 2)) as i64 + lo + r4
            };
            let (vp, vl) = (self.get(vm, p, 0)?, self.get(vm, lo, 1)?);
            if self.less(vm, vp, vl)? {
                self.swap(vm, p, vp, lo, vl)?;
            } else {
                let vu = self.get(vm, up, 1)?;
                if self.less(vm, vu, vp)? {
                    self.swap(vm, p, vp, up, vu)?;
                }
            }
            if up - lo == 2 {
                break;
            }
            // The pivot goes to a[up - 1].
            let pivot = self.get(vm, p, 2)?;
            let v = self.get(vm, up - 1, 0)?;
            self.swap(vm, p, pivot, up - 1, v)?;
            let p = self.partition(vm, lo, up, pivot)?;
            let n;
            if p - lo < up - p {
                self.sort(vm, lo, p - 1)?;
                n = p - lo;
                lo = p + 1;
            } else {
                self.sort(vm, p + 1, up)?;
                n = up - p;
                up = p - 1;
            }
            if (up - lo) / 128 > n {
                // Too unbalanced: off-centre pivots from now on (lua5.4
                // takes this number from the clock; any will do).
                self.rnd = self.rnd.wrapping_mul(6_364_136_223_846_793_005) ^ (n as u64 | 1);
            }
        }
        Ok(())
    }

    /// Partitions `a[lo..=up]` around `pivot` (in `a[up - 1]`); returns
    /// the pivot's final index.
    fn partition(&self, vm: &mut Vm, lo: i64, up: i64, pivot: Value) -> LResult<i64> {
        let (mut i, mut j) = (lo, up - 1);
        loop {
            let vi = loop {
                i += 1;
                let v = self.get(vm, i, 0)?;
                if !self.less(vm, v, pivot)? {
                    break v;
                }
                if i == up - 1 {
                    return Err(vm.rt_error("invalid order function for sorting"));
                }
            };
            let vj = loop {
                j -= 1;
                let v = self.get(vm, j, 1)?;
                if !self.less(vm, pivot, v)? {
                    break v;
                }
                if j < i {
                    return Err(vm.rt_error("invalid order function for sorting"));
                }
            };
            if j < i {
                self.swap(vm, up - 1, pivot, i, vi)?;
                return Ok(i);
            }
            self.swap(vm, i, vi, j, vj)?;
        }
    }
}

// ---------- string ----------

fn str_format(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let fmt = check_str(vm, base, nargs, 0, "format")?;
    let out = string_format(vm, &fmt, base, nargs)?;
    vm.charge_bytes(out.len())?;
    vm.reserve(out.len())?;
    let v = vm.heap.str_value(&out);
    vm.rets(base + nargs, &[v])
}

/// Lua's string index translation: negative from the end, clamped.
fn str_range(len: usize, i: i64, j: i64) -> (usize, usize) {
    let len = len as i64;
    let i = if i < 0 {
        (len + i + 1).max(1)
    } else if i == 0 {
        1
    } else {
        i
    };
    let j = if j < 0 {
        len + j + 1
    } else if j > len {
        len
    } else {
        j
    };
    if i > j {
        (0, 0)
    } else {
        ((i - 1) as usize, j as usize)
    }
}

/// `string.sub(s, i [, j])`: `i` is required, as in lua5.4 (`s:sub()` is
/// "bad argument #2"; found by the differential fuzzer once it called
/// `string.sub`).
fn str_sub(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    // A string subject (the common case) is cut from the heap's copy.
    if let Some(s) = str_arg(vm, base, nargs, 0)? {
        let len = vm.heap.str_bytes(s).len();
        let i = check_int(vm, base, nargs, 1, "sub")?;
        let j = opt_int(vm, base, nargs, 2, "sub", -1)?;
        let (a, b) = str_range(len, i, j);
        let v = Value::Str(vm.heap.intern_range(s, a..b));
        return vm.rets(base + nargs, &[v]);
    }
    let s = check_str_shared(vm, base, nargs, 0, "sub")?;
    let i = check_int(vm, base, nargs, 1, "sub")?;
    let j = opt_int(vm, base, nargs, 2, "sub", -1)?;
    let (a, b) = str_range(s.len(), i, j);
    let v = vm.heap.str_value(&s[a..b]);
    vm.rets(base + nargs, &[v])
}

fn str_len(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if let Some(s) = str_arg(vm, base, nargs, 0)? {
        let len = vm.heap.str_bytes(s).len();
        return vm.rets(base + nargs, &[Value::Int(len as i64)]);
    }
    let s = check_str_shared(vm, base, nargs, 0, "len")?;
    vm.rets(base + nargs, &[Value::Int(s.len() as i64)])
}

fn str_rep(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "rep")?;
    let n = check_int(vm, base, nargs, 1, "rep")?;
    let sep = match arg(vm, base, nargs, 2) {
        Value::Nil => Vec::new(),
        _ => check_str(vm, base, nargs, 2, "rep")?,
    };
    // Nothing to repeat is the empty string at once, as in lua5.4 (not a
    // loop of n empty copies).
    if n <= 0 || s.len() + sep.len() == 0 {
        let v = vm.heap.str_value(b"");
        return vm.rets(base + nargs, &[v]);
    }
    // lua5.4's bound (MAXSIZE, an int's range); below it, the memory limit.
    let total = (s.len() + sep.len()) as u128 * n as u128;
    if (s.len() + sep.len()) as u128 > i32::MAX as u128 / n as u128 {
        return Err(vm.rt_error("resulting string too large"));
    }
    vm.charge_bytes(total as usize)?;
    // Holds no value of its own: a collection may run first.
    vm.reserve_collecting(total as usize)?;
    let mut out = Vec::with_capacity(total as usize);
    for k in 0..n {
        out.extend_from_slice(&s);
        if k + 1 < n {
            out.extend_from_slice(&sep);
        }
    }
    let v = vm.heap.str_value(&out);
    vm.rets(base + nargs, &[v])
}

fn str_byte(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    // A string subject (the common case): no handle; one byte (the most
    // common) without a vector either.
    if let Some(s) = str_arg(vm, base, nargs, 0)? {
        let len = vm.heap.str_bytes(s).len();
        let i = opt_int(vm, base, nargs, 1, "byte", 1)?;
        let j = opt_int(vm, base, nargs, 2, "byte", i)?;
        let (a, b) = str_range(len, i, j);
        let bytes = &vm.heap.str_bytes(s)[a..b];
        if let [c] = *bytes {
            return vm.rets(base + nargs, &[Value::Int(i64::from(c))]);
        }
        let vals: Vec<Value> = bytes.iter().map(|&c| Value::Int(i64::from(c))).collect();
        return vm.rets(base + nargs, &vals);
    }
    let s = check_str_shared(vm, base, nargs, 0, "byte")?;
    let i = opt_int(vm, base, nargs, 1, "byte", 1)?;
    let j = opt_int(vm, base, nargs, 2, "byte", i)?;
    let (a, b) = str_range(s.len(), i, j);
    let vals: Vec<Value> = s[a..b].iter().map(|&c| Value::Int(c as i64)).collect();
    vm.rets(base + nargs, &vals)
}

fn str_char(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let mut out = Vec::with_capacity(nargs);
    for i in 0..nargs {
        let c = check_int(vm, base, nargs, i, "char")?;
        if !(0..=255).contains(&c) {
            return Err(arg_error(vm, i, "char", "value out of range"));
        }
        out.push(c as u8);
    }
    let v = vm.heap.str_value(&out);
    vm.rets(base + nargs, &[v])
}

fn str_map(
    vm: &mut Vm,
    base: usize,
    nargs: usize,
    name: &str,
    f: fn(&mut Vec<u8>),
) -> LResult<(usize, usize)> {
    let mut s = check_str(vm, base, nargs, 0, name)?;
    f(&mut s);
    let v = vm.heap.str_value(&s);
    vm.rets(base + nargs, &[v])
}

fn str_upper(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    str_map(vm, base, nargs, "upper", |s| s.make_ascii_uppercase())
}
fn str_lower(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    str_map(vm, base, nargs, "lower", |s| s.make_ascii_lowercase())
}
fn str_reverse(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    str_map(vm, base, nargs, "reverse", |s| s.reverse())
}

// ---------- math ----------

fn float_to_num(f: f64) -> Value {
    match float_to_int_exact(f) {
        Some(i) => Value::Int(i),
        None => Value::Float(f),
    }
}

/// The builtin ids of the library functions the hot loop runs inline
/// ([`inline_call`]): `assert` and a few math functions; `u32::MAX` (no
/// builtin) before their library is opened.
#[derive(Clone, Copy, Debug)]
pub struct InlineBuiltins {
    assert: u32,
    sqrt: u32,
    abs: u32,
    floor: u32,
    max: u32,
    min: u32,
}

impl Default for InlineBuiltins {
    fn default() -> Self {
        let none = u32::MAX;
        InlineBuiltins {
            assert: none,
            sqrt: none,
            abs: none,
            floor: none,
            max: none,
            min: none,
        }
    }
}

/// The first result of builtin `id` called with `args` and how many it
/// returns, when the call cannot fail, allocate or call out: `assert` of
/// a true value (it returns its arguments, as [`base_assert`] does), or
/// one of [`inline_math`]'s cases. `None` otherwise (the caller then makes
/// the ordinary call).
#[inline]
pub(crate) fn inline_call(ids: &InlineBuiltins, id: u32, args: &[Value]) -> Option<(Value, usize)> {
    if id == ids.assert {
        return match args.first() {
            Some(&v) if v.truthy() => Some((v, args.len())),
            _ => None,
        };
    }
    inline_math(ids, id, args).map(|v| (v, 1))
}

/// The result of builtin `id` called with `args`, when it is `math.sqrt`,
/// `math.abs` or `math.floor` of one number, or `math.max` or `math.min`
/// of two integers or two floats: the cases where the library function
/// cannot fail, coerce or call out. The functions below use the same
/// helpers, so both paths give the same value and subtype. `None`
/// otherwise (the caller then makes the ordinary call).
#[inline]
fn inline_math(ids: &InlineBuiltins, id: u32, args: &[Value]) -> Option<Value> {
    match *args {
        [x] => {
            if id == ids.sqrt {
                match x {
                    Value::Float(f) => Some(Value::Float(f.sqrt())),
                    Value::Int(i) => Some(Value::Float((i as f64).sqrt())),
                    _ => None,
                }
            } else if id == ids.abs {
                match x {
                    Value::Float(f) => Some(abs_float(f)),
                    Value::Int(i) => Some(abs_int(i)),
                    _ => None,
                }
            } else if id == ids.floor {
                match x {
                    Value::Float(f) => Some(floor_float(f)),
                    Value::Int(_) => Some(x),
                    _ => None,
                }
            } else {
                None
            }
        }
        [x, y] => {
            let want_max = if id == ids.max {
                true
            } else if id == ids.min {
                false
            } else {
                return None;
            };
            // `math_minmax`'s `<` on two numbers of one subtype.
            let (best_lt_v, v_lt_best) = match (x, y) {
                (Value::Int(p), Value::Int(q)) => (p < q, q < p),
                (Value::Float(p), Value::Float(q)) => (p < q, q < p),
                _ => return None,
            };
            let better = if want_max { best_lt_v } else { v_lt_best };
            Some(if better { y } else { x })
        }
        _ => None,
    }
}

fn abs_int(i: i64) -> Value {
    Value::Int(i.wrapping_abs())
}

fn abs_float(f: f64) -> Value {
    Value::Float(f.abs())
}

fn floor_float(f: f64) -> Value {
    float_to_num(f.floor())
}

// Only an integer value is its own floor (or ceiling): a numeric string
// is taken as a float, as lua5.4's `lua_isinteger` test does
// (`math.floor('9223372036854775807')` is 2^63, a float).
fn math_floor(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let is_int = matches!(arg(vm, base, nargs, 0), Value::Int(_));
    let r = match check_num(vm, base, nargs, 0, "floor")? {
        Value::Float(f) => floor_float(f),
        Value::Int(i) if !is_int => float_to_num(i as f64),
        v => v,
    };
    vm.rets(base + nargs, &[r])
}

fn math_ceil(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let is_int = matches!(arg(vm, base, nargs, 0), Value::Int(_));
    let r = match check_num(vm, base, nargs, 0, "ceil")? {
        Value::Float(f) => float_to_num(f.ceil()),
        Value::Int(i) if !is_int => float_to_num(i as f64),
        v => v,
    };
    vm.rets(base + nargs, &[r])
}

fn math_abs(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    // Only an integer value stays one: a numeric string gives a float,
    // as lua5.4's `lua_isinteger` test does.
    let is_int = matches!(arg(vm, base, nargs, 0), Value::Int(_));
    let r = match check_num(vm, base, nargs, 0, "abs")? {
        Value::Int(i) if is_int => abs_int(i),
        Value::Int(i) => abs_float(i as f64),
        Value::Float(f) => abs_float(f),
        v => v,
    };
    vm.rets(base + nargs, &[r])
}

macro_rules! math_f1 {
    ($name:ident, $lname:expr, $f:expr) => {
        fn $name(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
            let x = check_float(vm, base, nargs, 0, $lname)?;
            let f: fn(f64) -> f64 = $f;
            vm.rets(base + nargs, &[Value::Float(f(x))])
        }
    };
}
math_f1!(math_sqrt, "sqrt", f64::sqrt);
math_f1!(math_sin, "sin", f64::sin);
math_f1!(math_cos, "cos", f64::cos);
math_f1!(math_tan, "tan", f64::tan);
math_f1!(math_asin, "asin", f64::asin);
math_f1!(math_acos, "acos", f64::acos);
math_f1!(math_exp, "exp", f64::exp);
math_f1!(math_deg, "deg", |x| x * (180.0 / std::f64::consts::PI));
math_f1!(math_rad, "rad", |x| x * (std::f64::consts::PI / 180.0));

fn math_atan(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let y = check_float(vm, base, nargs, 0, "atan")?;
    // `x` is optional, nil included (lua5.4's luaL_optnumber).
    let x = if matches!(arg(vm, base, nargs, 1), Value::Nil) {
        1.0
    } else {
        check_float(vm, base, nargs, 1, "atan")?
    };
    vm.rets(base + nargs, &[Value::Float(y.atan2(x))])
}

fn math_log(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let x = check_float(vm, base, nargs, 0, "log")?;
    let r = if nargs >= 2 && !matches!(arg(vm, base, nargs, 1), Value::Nil) {
        let b = check_float(vm, base, nargs, 1, "log")?;
        if b == 2.0 {
            x.log2()
        } else if b == 10.0 {
            x.log10()
        } else {
            x.ln() / b.ln()
        }
    } else {
        x.ln()
    };
    vm.rets(base + nargs, &[Value::Float(r)])
}

fn math_fmod(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    // The second argument is checked first, as the reference lua5.4 does
    // (its C compiler evaluates `fmod(check(1), check(2))` right to left).
    let b = check_num(vm, base, nargs, 1, "fmod")?;
    let a = check_num(vm, base, nargs, 0, "fmod")?;
    // The integer case is for integer values only (lua_isinteger): a
    // numeric string takes the float path.
    let ints = matches!(arg(vm, base, nargs, 0), Value::Int(_))
        && matches!(arg(vm, base, nargs, 1), Value::Int(_));
    let r = match (a, b) {
        (Value::Int(x), Value::Int(y)) if ints => {
            if y == 0 {
                return Err(arg_error(vm, 1, "fmod", "zero"));
            }
            Value::Int(x.wrapping_rem(y))
        }
        _ => {
            let f = |v: Value| match v {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
                _ => 0.0,
            };
            Value::Float(f(a) % f(b))
        }
    };
    vm.rets(base + nargs, &[r])
}

fn math_modf(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    // An integer is its own integral part, kept as it is (a float would
    // round math.maxinteger), as in lua5.4.
    if let Value::Int(n) = arg(vm, base, nargs, 0) {
        return vm.rets(base + nargs, &[Value::Int(n), Value::Float(0.0)]);
    }
    let x = check_float(vm, base, nargs, 0, "modf")?;
    let ip = if x.is_infinite() { x } else { x.trunc() };
    let frac = if x.is_infinite() { 0.0 } else { x - ip };
    let ipv = float_to_num(ip);
    vm.rets(base + nargs, &[ipv, Value::Float(frac)])
}

fn math_minmax(
    vm: &mut Vm,
    base: usize,
    nargs: usize,
    name: &str,
    want_max: bool,
) -> LResult<(usize, usize)> {
    // As lua5.4: any values, compared with `<` (a library function's
    // comparison errors carry no position).
    if nargs == 0 {
        return Err(arg_error(vm, 0, name, "value expected"));
    }
    let mut best = arg(vm, base, nargs, 0);
    for i in 1..nargs {
        let v = arg(vm, base, nargs, i);
        let better = if want_max {
            vm.library_less(best, v)?
        } else {
            vm.library_less(v, best)?
        };
        if better {
            best = v;
        }
    }
    vm.rets(base + nargs, &[best])
}

fn math_max(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    math_minmax(vm, base, nargs, "max", true)
}
fn math_min(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    math_minmax(vm, base, nargs, "min", false)
}

fn math_tointeger(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let r = match arg(vm, base, nargs, 0) {
        Value::Int(i) => Value::Int(i),
        Value::Float(f) => float_to_int_exact(f).map(Value::Int).unwrap_or(Value::Nil),
        Value::Str(s) => match str_to_number(vm.heap.str_bytes(s)) {
            Some(Value::Int(i)) => Value::Int(i),
            Some(Value::Float(f)) => float_to_int_exact(f).map(Value::Int).unwrap_or(Value::Nil),
            _ => Value::Nil,
        },
        _ => Value::Nil,
    };
    vm.rets(base + nargs, &[r])
}

fn math_type(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if nargs == 0 {
        return Err(arg_error(vm, 0, "type", "value expected"));
    }
    let r = match arg(vm, base, nargs, 0) {
        Value::Int(_) => vm.heap.str_value(b"integer"),
        Value::Float(_) => vm.heap.str_value(b"float"),
        _ => Value::Nil,
    };
    vm.rets(base + nargs, &[r])
}

fn math_ult(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let a = check_int(vm, base, nargs, 0, "ult")?;
    let b = check_int(vm, base, nargs, 1, "ult")?;
    vm.rets(base + nargs, &[Value::Bool((a as u64) < (b as u64))])
}

/// xoshiro256** (the generator lua5.4 uses).
fn next_rand(vm: &mut Vm) -> u64 {
    let s = &mut vm.rng;
    let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    result
}

fn math_random(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let r = next_rand(vm);
    let (lo, hi) = match nargs {
        0 => {
            let f = (r >> 11) as f64 * (0.5 / (1u64 << 52) as f64);
            return vm.rets(base + nargs, &[Value::Float(f)]);
        }
        1 => {
            let hi = check_int(vm, base, nargs, 0, "random")?;
            if hi == 0 {
                // `random(0)`: all 64 bits.
                return vm.rets(base + nargs, &[Value::Int(r as i64)]);
            }
            (1, hi)
        }
        2 => (
            check_int(vm, base, nargs, 0, "random")?,
            check_int(vm, base, nargs, 1, "random")?,
        ),
        _ => return Err(vm.rt_error("wrong number of arguments")),
    };
    if lo > hi {
        return Err(arg_error(vm, 0, "random", "interval is empty"));
    }
    let v = project(vm, r, (hi as u64).wrapping_sub(lo as u64));
    vm.rets(
        base + nargs,
        &[Value::Int((lo as u64).wrapping_add(v) as i64)],
    )
}

/// A random number in `[0, n]` from `ran`, as lua5.4's `project`: the
/// bits below `n`'s highest, drawing again while the result is above `n`
/// (so seeded sequences are lua5.4's).
fn project(vm: &mut Vm, mut ran: u64, n: u64) -> u64 {
    if n & n.wrapping_add(1) == 0 {
        return ran & n;
    }
    let lim = u64::MAX >> n.leading_zeros();
    loop {
        ran &= lim;
        if ran <= n {
            return ran;
        }
        ran = next_rand(vm);
    }
}

/// `math.randomseed([n1 [, n2]])`: lua5.4's state (`n1, 0xff, n2, 0`,
/// then 16 draws discarded); without arguments a seed from the clock and
/// the heap's address space. Returns the two seed parts.
fn math_randomseed(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let (n1, n2) = if nargs > 0 {
        let n1 = check_int(vm, base, nargs, 0, "randomseed")?;
        let n2 = opt_int(vm, base, nargs, 1, "randomseed", 0)?;
        (n1, n2)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (t as i64, std::process::id() as i64)
    };
    vm.rng = [n1 as u64, 0xff, n2 as u64, 0];
    for _ in 0..16 {
        next_rand(vm);
    }
    vm.rets(base + nargs, &[Value::Int(n1), Value::Int(n2)])
}

// ---------- io and os ----------

fn os_remove(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let name = check_str(vm, base, nargs, 0, "remove")?;
    let path = String::from_utf8_lossy(&name).into_owned();
    // C's remove() deletes a file or an empty directory.
    let r = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir(&path),
        _ => std::fs::remove_file(&path),
    };
    match r {
        Ok(()) => vm.rets(base + nargs, &[Value::Bool(true)]),
        Err(e) => crate::iolib::failure(vm, base + nargs, Some(&name), &e),
    }
}

fn os_rename(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let from = check_str(vm, base, nargs, 0, "rename")?;
    let to = check_str(vm, base, nargs, 1, "rename")?;
    let r = std::fs::rename(
        String::from_utf8_lossy(&from).as_ref(),
        String::from_utf8_lossy(&to).as_ref(),
    );
    match r {
        Ok(()) => vm.rets(base + nargs, &[Value::Bool(true)]),
        // lua5.4 names no file here.
        Err(e) => crate::iolib::failure(vm, base + nargs, None, &e),
    }
}

/// A new empty file `/tmp/lua_XXXXXX` (created, as lua5.4's mkstemp does).
fn os_tmpname(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ ((std::process::id() as u64) << 32);
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for attempt in 0..100u64 {
        let mut x = seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut name = String::from("/tmp/lua_");
        for _ in 0..6 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            name.push(CHARS[(x % CHARS.len() as u64) as usize] as char);
        }
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&name)
            .is_ok()
        {
            let v = vm.heap.str_value(name.as_bytes());
            return vm.rets(base + nargs, &[v]);
        }
    }
    Err(vm.rt_error("unable to generate a unique filename"))
}

fn os_difftime(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t2 = check_int(vm, base, nargs, 0, "difftime")?;
    let t1 = check_int(vm, base, nargs, 1, "difftime")?;
    vm.rets(base + nargs, &[Value::Float(t2 as f64 - t1 as f64)])
}

fn os_getenv(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let name = check_str(vm, base, nargs, 0, "getenv")?;
    let r = match std::env::var_os(String::from_utf8_lossy(&name).as_ref()) {
        Some(v) => vm.heap.str_value(v.to_string_lossy().as_bytes()),
        None => Value::Nil,
    };
    vm.rets(base + nargs, &[r])
}

fn os_exit(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let code = match arg(vm, base, nargs, 0) {
        Value::Nil | Value::Bool(true) => 0,
        Value::Bool(false) => 1,
        _ => check_int(vm, base, nargs, 0, "exit")? as i32,
    };
    Err(LuaError {
        value: Value::Nil,
        exit: Some(code),
        yielded: false,
    })
}
