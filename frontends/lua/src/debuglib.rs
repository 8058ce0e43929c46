//! A small subset of the `debug` library: what the interpreter can answer
//! honestly from its frames and closures. `getinfo` fills the fields it
//! knows (`source`, `short_src`, `what`, `currentline`, `linedefined`,
//! `nups`, `nparams`, `isvararg`, `func`); it does not know a function's
//! name (`name` is nil) nor `lastlinedefined` (-1). `traceback` lists the
//! Lua frames. `getmetatable`/`setmetatable` bypass `__metatable` (tables
//! only: other types have no metatables of their own here). Upvalue access:
//! `getupvalue`, `setupvalue`, `upvalueid` (an integer identity, where
//! lua5.4 gives a light userdata). No hooks (`sethook` is absent), no
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
            let src = vm.heap.str_value(format!("@{}", p.source).as_bytes());
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

/// lua5.4's `stack traceback:` block for the Lua frames, innermost first
/// (at most 22 lines, the middle elided as lua5.4 does).
pub fn traceback(vm: &Vm) -> String {
    let mut lines = Vec::new();
    for f in vm.frames.iter().rev() {
        let p = vm.frame_proto(f);
        let line = p.lines.get(f.pc.saturating_sub(1)).copied().unwrap_or(0);
        lines.push(if p.line_defined == 0 {
            format!("\t{}:{}: in main chunk", p.source, line)
        } else {
            format!(
                "\t{}:{}: in function <{}:{}>",
                p.source, line, p.source, p.line_defined
            )
        });
        if f.kind != FrameKind::Lua {
            lines.push("\t[C]: in ?".to_string());
        }
    }
    let mut s = String::from("stack traceback:");
    let n = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if n > 22 && (10..n - 11).contains(&i) {
            if i == 10 {
                s.push_str(&format!("\n\t...\t(skipping {} levels)", n - 21));
            }
            continue;
        }
        s.push('\n');
        s.push_str(l);
    }
    s
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
        _ => {
            let tn = v.type_name();
            return Err(vm.rt_error(format!(
                "debug.setmetatable: metatables of type '{tn}' are not supported"
            )));
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
