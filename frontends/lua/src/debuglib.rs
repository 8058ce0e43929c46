//! A small subset of the `debug` library: what the interpreter can answer
//! honestly from its frames and closures. `getinfo` fills the fields it
//! knows (`source`, `short_src`, `what`, `currentline`, `linedefined`,
//! `nups`, `nparams`, `isvararg`, `func`); it does not know a function's
//! name (`name` is nil) nor `lastlinedefined` (-1). `traceback` lists the
//! frames with the names lua5.4 gives them (`error_traceback`, the CLI's
//! block after an uncaught error, also names the library function that
//! raised it). `getmetatable`/`setmetatable` bypass `__metatable` (tables
//! only: other types have no metatables of their own here). Upvalue access:
//! `getupvalue`, `setupvalue`, `upvalueid` (an integer identity, where
//! lua5.4 gives a light userdata), `upvaluejoin`. No hooks (`sethook` is absent), no
//! locals, no user values.

use crate::heap::UpVal;
use crate::stdlib::{arg, arg_error, check_int, new_lib, reg};
use crate::table::Table;
use crate::value::Value;
use crate::vm::{FrameKind, LResult, Vm};

/// Installs `debug` (as a global and in `package.loaded`).
pub fn open(vm: &mut Vm) {
    let d = new_lib(vm, "debug");
    reg(vm, d, "getinfo", db_getinfo);
    reg(vm, d, "traceback", db_traceback);
    reg(vm, d, "getmetatable", db_getmetatable);
    reg(vm, d, "setmetatable", db_setmetatable);
    reg(vm, d, "getupvalue", db_getupvalue);
    reg(vm, d, "setupvalue", db_setupvalue);
    reg(vm, d, "upvalueid", db_upvalueid);
    reg(vm, d, "upvaluejoin", db_upvaluejoin);
}

fn set(vm: &mut Vm, t: &mut Table, k: &str, v: Value) {
    let k = vm.heap.str_value(k.as_bytes());
    t.set(k, v);
}

/// The frame index of Lua level `level` (1: the caller of the library
/// function), if that level is a Lua function; `Err(())` for a library
/// function's level (the level exists but has no frame).
fn level_frame(vm: &Vm, level: usize) -> Option<Result<usize, ()>> {
    // Level 1 is the innermost Lua frame (the library function itself,
    // level 0, has none). A frame entered from Rust (or through `pcall`)
    // has a library function below it, which is one level too.
    let mut l = 1;
    let mut i = vm.frames.len();
    while i > 0 {
        i -= 1;
        if l == level {
            return Some(Ok(i));
        }
        l += 1;
        if vm.frames[i].kind != FrameKind::Lua {
            if l == level {
                return Some(Err(()));
            }
            l += 1;
        }
    }
    None
}

fn db_getinfo(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let target = arg(vm, base, nargs, 0);
    let mut t = Table::default();
    let (func, line) = match target {
        Value::Func(_) | Value::Builtin(_) => (target, -1),
        Value::Int(_) | Value::Float(_) => {
            let level = check_int(vm, base, nargs, 0, "getinfo")?;
            if level < 0 {
                return Err(arg_error(vm, 0, "getinfo", "level out of range"));
            }
            if level == 0 {
                (Value::Builtin(0), -1)
            } else {
                match level_frame(vm, level as usize) {
                    None => return vm.rets(base + nargs, &[Value::Nil]),
                    Some(Err(())) => (Value::Builtin(0), -1),
                    Some(Ok(i)) => {
                        let f = &vm.frames[i];
                        let p = vm.frame_proto(f);
                        let line = p.lines.get(f.pc.saturating_sub(1)).copied().unwrap_or(0);
                        (Value::Func(f.closure), line as i64)
                    }
                }
            }
        }
        _ => return Err(arg_error(vm, 0, "getinfo", "function or level expected")),
    };
    match func {
        Value::Func(c) => {
            let cl = vm.heap.closures.get(c.0);
            let p = cl.proto.clone();
            let nups = cl.upvals.len();
            let src = vm.heap.str_value(p.chunk_name.as_bytes());
            let short = vm.heap.str_value(p.source.as_bytes());
            let what = if p.line_defined == 0 { "main" } else { "Lua" };
            let what = vm.heap.str_value(what.as_bytes());
            set(vm, &mut t, "source", src);
            set(vm, &mut t, "short_src", short);
            set(vm, &mut t, "what", what);
            set(vm, &mut t, "linedefined", Value::Int(p.line_defined as i64));
            set(vm, &mut t, "lastlinedefined", Value::Int(-1));
            set(vm, &mut t, "nups", Value::Int(nups as i64));
            set(vm, &mut t, "nparams", Value::Int(p.num_params as i64));
            set(vm, &mut t, "isvararg", Value::Bool(p.is_vararg));
        }
        _ => {
            let src = vm.heap.str_value(b"=[C]");
            let short = vm.heap.str_value(b"[C]");
            let what = vm.heap.str_value(b"C");
            set(vm, &mut t, "source", src);
            set(vm, &mut t, "short_src", short);
            set(vm, &mut t, "what", what);
            set(vm, &mut t, "linedefined", Value::Int(-1));
            set(vm, &mut t, "lastlinedefined", Value::Int(-1));
            set(vm, &mut t, "nups", Value::Int(0));
            set(vm, &mut t, "nparams", Value::Int(0));
            set(vm, &mut t, "isvararg", Value::Bool(true));
        }
    }
    set(vm, &mut t, "currentline", Value::Int(line));
    let namewhat = vm.heap.str_value(b"");
    set(vm, &mut t, "namewhat", namewhat);
    set(vm, &mut t, "func", func);
    let t = vm.heap.new_table(t);
    vm.rets(base + nargs, &[Value::Table(t)])
}

fn db_traceback(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let msg = arg(vm, base, nargs, 0);
    if !matches!(
        msg,
        Value::Nil | Value::Str(_) | Value::Int(_) | Value::Float(_)
    ) {
        return vm.rets(base + nargs, &[msg]);
    }
    let mut out = Vec::new();
    if vm.concat_piece(msg, &mut out) {
        out.push(b'\n');
    }
    out.extend_from_slice(traceback(vm).as_bytes());
    let s = vm.heap.str_value(&out);
    vm.rets(base + nargs, &[s])
}

/// lua5.4's `stack traceback:` block for the running frames, innermost
/// first, named as in [`error_traceback`].
pub fn traceback(vm: &Vm) -> String {
    let mut lines = Vec::new();
    frame_lines(vm, &mut lines);
    elide(&lines)
}

/// lua5.4's `stack traceback:` block for an error leaving the running
/// frames, as `lua.c`'s message handler prints it: the library function
/// that raised it (if one did), then every frame innermost first with the
/// name lua5.4 would give it (`function 'g'` for a function reachable from
/// `package.loaded`, else how its caller named it: `local 'f'`,
/// `upvalue 'f'`, `method 'm'`, `field 'h'`), and `[C]` lines where Rust
/// called into Lua. At most 22 lines, the middle elided as lua5.4 does.
pub fn error_traceback(vm: &Vm) -> String {
    let mut lines = Vec::new();
    let n = vm.frames.len();
    let top_is_bound = n > 0 && vm.frame_proto(&vm.frames[n - 1]).keeps_caller_frame.get();
    if !top_is_bound {
        if let Some(name) = n.checked_sub(1).and_then(|i| called_builtin(vm, i)) {
            lines.push(format!("\t[C]: in {name}"));
        }
    }
    frame_lines(vm, &mut lines);
    elide(&lines)
}

/// One line per frame (and per place Rust called into Lua), innermost
/// first. A frame standing for a library function (`stdlib::bind`: a
/// `coroutine.wrap` function, a `gmatch` iterator) is a `[C]` line.
fn frame_lines(vm: &Vm, lines: &mut Vec<String>) {
    for i in (0..vm.frames.len()).rev() {
        let f = &vm.frames[i];
        let p = vm.frame_proto(f);
        let line = p.lines.get(f.pc.saturating_sub(1)).copied().unwrap_or(0);
        if p.keeps_caller_frame.get() {
            lines.push(format!("\t[C]: in {}", frame_name(vm, i)));
        } else if p.line_defined == 0 {
            lines.push(format!("\t{}:{line}: in main chunk", p.source));
        } else {
            lines.push(format!("\t{}:{line}: in {}", p.source, frame_name(vm, i)));
        }
        match f.kind {
            FrameKind::Lua => {}
            FrameKind::PCall | FrameKind::Closing(false) => {
                lines.push("\t[C]: in function 'pcall'".into())
            }
            FrameKind::XPCall | FrameKind::Closing(true) => {
                lines.push("\t[C]: in function 'xpcall'".into())
            }
            FrameKind::Entry => {
                let by = i.checked_sub(1).and_then(|c| called_builtin(vm, c));
                lines.push(format!("\t[C]: in {}", by.as_deref().unwrap_or("?")));
            }
        }
    }
}

/// `stack traceback:` and `lines`; past 22 lines the first 10 and the last
/// 11 are kept, and the count in the line between is lua5.4's (`luaL_traceback`
/// counts one level fewer than it leaves out).
fn elide(lines: &[String]) -> String {
    let mut s = String::from("stack traceback:");
    let n = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if n > 22 && (10..n - 11).contains(&i) {
            if i == 10 {
                s.push_str(&format!("\n\t...\t(skipping {} levels)", n - 22));
            }
            continue;
        }
        s.push('\n');
        s.push_str(l);
    }
    s
}

/// The library function frame `i` is calling at its current instruction,
/// named as lua5.4 names it (`function 'string.rep'`), if it is calling one.
fn called_builtin(vm: &Vm, i: usize) -> Option<String> {
    let (reg, v) = called_value(vm, i)?;
    if !matches!(v, Value::Builtin(_)) {
        return None;
    }
    Some(global_name(vm, v).unwrap_or_else(|| code_name(vm, i, reg)))
}

/// The register and value frame `i`'s current instruction calls, if it is
/// a call.
fn called_value(vm: &Vm, i: usize) -> Option<(u8, Value)> {
    let f = vm.frames.get(i)?;
    let p = vm.frame_proto(f);
    let reg = match p.code.get(f.pc.checked_sub(1)?)? {
        crate::bytecode::Op::Call(a, ..) | crate::bytecode::Op::TailCall(a, ..) => *a,
        _ => return None,
    };
    Some((reg, *vm.stack.get(f.base + reg as usize)?))
}

/// How lua5.4 names the function of frame `i` in a traceback.
fn frame_name(vm: &Vm, i: usize) -> String {
    let f = &vm.frames[i];
    if let Some(g) = global_name(vm, Value::Func(f.closure)) {
        return g;
    }
    if f.kind == FrameKind::Lua && i > 0 {
        if let Some((reg, Value::Func(c))) = called_value(vm, i - 1) {
            if c == f.closure {
                return code_name(vm, i - 1, reg);
            }
        }
    }
    let p = vm.frame_proto(f);
    format!("function <{}:{}>", p.source, p.line_defined)
}

/// The name frame `caller`'s code gives register `reg` (`local 'f'`,
/// `method 'm'`, a global as `function 'g'`), or `?`.
fn code_name(vm: &Vm, caller: usize, reg: u8) -> String {
    let info = vm.var_info_in(caller, reg);
    let Some(inner) = info.strip_prefix(" (").and_then(|s| s.strip_suffix(')')) else {
        return "?".into();
    };
    match inner.split_once(' ') {
        Some(("global", name)) => format!("function {name}"),
        Some(("local" | "upvalue" | "method" | "field", _)) => inner.to_string(),
        _ => "?".into(),
    }
}

/// `function 'name'` for a function stored in a module of
/// `package.loaded`, as lua5.4's `pushglobalfuncname` finds it.
fn global_name(vm: &Vm, f: Value) -> Option<String> {
    loaded_name(vm, f).map(|n| format!("function '{n}'"))
}

/// Where `package.loaded` holds function `f`: `name` for `_G.name`,
/// `module.name` otherwise (`_G` first, then the modules by name).
pub(crate) fn loaded_name(vm: &Vm, f: Value) -> Option<String> {
    let name_in = |t: Value| -> Option<String> {
        let Value::Table(t) = t else { return None };
        let t = vm.heap.table(t);
        let mut k = Value::Nil;
        while let Ok(Some((key, v))) = t.next(k) {
            if let (Value::Str(s), true) = (key, v.raw_eq(f)) {
                return Some(String::from_utf8_lossy(vm.heap.str_bytes(s)).into_owned());
            }
            k = key;
        }
        None
    };
    let loaded = vm.heap.table(vm.loaded);
    let mut modules = Vec::new();
    let mut k = Value::Nil;
    while let Ok(Some((key, v))) = loaded.next(k) {
        if let Value::Str(s) = key {
            modules.push((vm.heap.str_bytes(s).to_vec(), v));
        }
        k = key;
    }
    modules.sort_by(|a, b| (a.0 != b"_G", &a.0).cmp(&(b.0 != b"_G", &b.0)));
    modules.into_iter().find_map(|(m, t)| {
        let name = name_in(t)?;
        Some(if m == b"_G" {
            name
        } else {
            format!("{}.{name}", String::from_utf8_lossy(&m))
        })
    })
}

fn db_getmetatable(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let v = arg(vm, base, nargs, 0);
    let m = vm.metatable(v).map(Value::Table).unwrap_or(Value::Nil);
    vm.rets(base + nargs, &[m])
}

fn db_setmetatable(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let v = arg(vm, base, nargs, 0);
    let m = match arg(vm, base, nargs, 1) {
        Value::Nil => None,
        Value::Table(m) => Some(m),
        _ => return Err(arg_error(vm, 1, "setmetatable", "nil or table expected")),
    };
    match v {
        Value::Table(t) => vm.heap.table_mut(t).meta = m,
        Value::Userdata(u) => vm.heap.userdata_mut(u).meta = m,
        Value::Str(_) => vm.string_meta = m,
        _ => {
            let slot = Vm::basic_type_slot(v).expect("a basic type");
            vm.type_metas[slot] = m;
        }
    }
    vm.rets(base, &[v])
}

/// The closure and upvalue index `n` (1-based) of a `getupvalue`-style
/// call, if the function has that upvalue.
fn upvalue_of(vm: &mut Vm, base: usize, nargs: usize, f: &str) -> LResult<Option<(u32, usize)>> {
    let n = check_int(vm, base, nargs, 1, f)?;
    match arg(vm, base, nargs, 0) {
        Value::Func(c) => {
            let len = vm.heap.closures.get(c.0).upvals.len() as i64;
            Ok((1..=len).contains(&n).then(|| (c.0, n as usize - 1)))
        }
        Value::Builtin(_) => Ok(None),
        _ => Err(arg_error(vm, 0, f, "function expected")),
    }
}

fn upvalue_name(vm: &mut Vm, c: u32, i: usize) -> Value {
    let p = vm.heap.closures.get(c).proto.clone();
    let name = p.upval_names.get(i).cloned().unwrap_or_default();
    let name = if name.is_empty() { b"?".to_vec() } else { name };
    vm.heap.str_value(&name)
}

fn db_getupvalue(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let Some((c, i)) = upvalue_of(vm, base, nargs, "getupvalue")? else {
        return vm.rets(base + nargs, &[]);
    };
    let u = vm.heap.closures.get(c).upvals[i];
    let v = vm.upvalue_value(u);
    let name = upvalue_name(vm, c, i);
    vm.rets(base + nargs, &[name, v])
}

fn db_setupvalue(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let v = arg(vm, base, nargs, 2);
    let Some((c, i)) = upvalue_of(vm, base, nargs, "setupvalue")? else {
        return vm.rets(base + nargs, &[]);
    };
    let u = vm.heap.closures.get(c).upvals[i];
    vm.set_upvalue_value(u, v);
    let name = upvalue_name(vm, c, i);
    vm.rets(base + nargs, &[name])
}

fn db_upvalueid(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    match upvalue_of(vm, base, nargs, "upvalueid")? {
        Some((c, i)) => {
            let u = vm.heap.closures.get(c).upvals[i];
            vm.rets(base + nargs, &[Value::Int(u.0 as i64 + 1)])
        }
        None => vm.rets(base + nargs, &[Value::Nil]),
    }
}

/// `debug.upvaluejoin(f1, n1, f2, n2)`: upvalue `n1` of Lua function `f1`
/// becomes the very upvalue `n2` of `f2` (shared from then on). Checks in
/// lua5.4's order: each index against its function, then that both are
/// Lua functions.
fn db_upvaluejoin(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let mut joined = [(0, 0); 2];
    for (j, at) in [0, 2].into_iter().enumerate() {
        let n = check_int(vm, base, nargs, at + 1, "upvaluejoin")?;
        let up = match arg(vm, base, nargs, at) {
            Value::Func(c) => {
                let len = vm.heap.closures.get(c.0).upvals.len() as i64;
                (1..=len).contains(&n).then(|| (c.0, n as usize - 1))
            }
            Value::Builtin(_) => None,
            _ => return Err(arg_error(vm, at, "upvaluejoin", "function expected")),
        };
        match up {
            Some(u) => joined[j] = u,
            None => {
                return Err(arg_error(
                    vm,
                    at + 1,
                    "upvaluejoin",
                    "invalid upvalue index",
                ))
            }
        }
    }
    let [(c1, i1), (c2, i2)] = joined;
    let u = vm.heap.closures.get(c2).upvals[i2];
    vm.heap.closures.get_mut(c1).upvals[i1] = u;
    vm.rets(base + nargs, &[])
}

/// The value an upvalue holds (open: in its thread's stack).
impl Vm {
    pub fn upvalue_value(&self, u: crate::heap::UpRef) -> Value {
        match *self.heap.upvals.get(u.0) {
            UpVal::Open(t, i) if t == self.cur_thread => self.stack[i],
            UpVal::Open(t, i) => self.heap.coroutines.get(t.0).state.stack[i],
            UpVal::Closed(v) => v,
        }
    }

    pub fn set_upvalue_value(&mut self, u: crate::heap::UpRef, v: Value) {
        match *self.heap.upvals.get(u.0) {
            UpVal::Open(t, i) if t == self.cur_thread => self.stack[i] = v,
            UpVal::Open(t, i) => self.heap.coroutines.get_mut(t.0).state.stack[i] = v,
            UpVal::Closed(_) => *self.heap.upvals.get_mut(u.0) = UpVal::Closed(v),
        }
    }
}
