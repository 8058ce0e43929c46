//! Lua patterns (`find`, `match`, `gmatch`, `gsub`): a backtracking
//! matcher over bytes whose recursion is bounded ("pattern too complex").

use crate::limits::BYTES_PER_STEP;
use crate::stdlib::{arg, arg_error, check_int, check_str, opt_int, tostring};
use crate::table::Table;
use crate::value::Value;
use crate::vm::{LResult, Vm};

const MAX_CAPTURES: usize = 32;
const MAX_DEPTH: u32 = 200;
const CAP_UNFINISHED: isize = -1;
const CAP_POSITION: isize = -2;

struct MatchState<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    capture: [(usize, isize); MAX_CAPTURES],
    depth: u32,
    /// The step budget (`Vm::fuel`), one per match attempt and per
    /// backtracking step; below zero the match stops.
    fuel: i64,
}

/// The message a match that ran out of steps stops with (turned into the
/// step-limit error by [`run_match`]).
const OUT_OF_STEPS: &str = "\0out of steps";

type MResult<T> = Result<T, String>;

fn class_end(ms: &MatchState, mut p: usize) -> MResult<usize> {
    let c = ms.pat[p];
    p += 1;
    if c == b'%' {
        if p >= ms.pat.len() {
            return Err("malformed pattern (ends with '%')".into());
        }
        return Ok(p + 1);
    }
    if c == b'[' {
        if p < ms.pat.len() && ms.pat[p] == b'^' {
            p += 1;
        }
        loop {
            if p >= ms.pat.len() {
                return Err("malformed pattern (missing ']')".into());
            }
            let cc = ms.pat[p];
            p += 1;
            if cc == b'%' {
                p += 1;
            }
            if p < ms.pat.len() && ms.pat[p] == b']' {
                return Ok(p + 1);
            }
            if p >= ms.pat.len() {
                return Err("malformed pattern (missing ']')".into());
            }
        }
    }
    Ok(p)
}

fn single_class(c: u8, cl: u8) -> bool {
    let res = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0,
        _ => return cl == c,
    };
    if cl.is_ascii_uppercase() {
        !res
    } else {
        res
    }
}

fn match_bracket(ms: &MatchState, c: u8, mut p: usize, ec: usize) -> bool {
    let mut sig = true;
    if ms.pat[p + 1] == b'^' {
        sig = false;
        p += 1;
    }
    p += 1;
    while p < ec {
        if ms.pat[p] == b'%' {
            p += 1;
            if single_class(c, ms.pat[p]) {
                return sig;
            }
            p += 1;
        } else if p + 2 < ec && ms.pat[p + 1] == b'-' {
            if ms.pat[p] <= c && c <= ms.pat[p + 2] {
                return sig;
            }
            p += 3;
        } else {
            if ms.pat[p] == c {
                return sig;
            }
            p += 1;
        }
    }
    !sig
}

fn single_match(ms: &MatchState, s: usize, p: usize, ep: usize) -> bool {
    if s >= ms.src.len() {
        return false;
    }
    let c = ms.src[s];
    match ms.pat[p] {
        b'.' => true,
        b'%' => single_class(c, ms.pat[p + 1]),
        b'[' => match_bracket(ms, c, p, ep - 1),
        pc => pc == c,
    }
}

fn do_match(ms: &mut MatchState, mut s: usize, mut p: usize) -> MResult<Option<usize>> {
    ms.fuel -= 1;
    if ms.fuel < 0 {
        return Err(OUT_OF_STEPS.into());
    }
    ms.depth += 1;
    if ms.depth > MAX_DEPTH {
        return Err("pattern too complex".into());
    }
    let r = loop {
        if p >= ms.pat.len() {
            break Some(s);
        }
        match ms.pat[p] {
            b'(' => {
                break if ms.pat.get(p + 1) == Some(&b')') {
                    start_capture(ms, s, p + 2, CAP_POSITION)?
                } else {
                    start_capture(ms, s, p + 1, CAP_UNFINISHED)?
                };
            }
            b')' => break end_capture(ms, s, p + 1)?,
            b'$' if p + 1 == ms.pat.len() => {
                break if s == ms.src.len() { Some(s) } else { None };
            }
            b'%' if ms.pat.get(p + 1) == Some(&b'b') => {
                // Both delimiters must follow (lua5.4's `matchbalance`).
                if p + 4 > ms.pat.len() {
                    return Err("malformed pattern (missing arguments to '%b')".into());
                }
                let found = match_balance(ms, s, p + 2);
                // The scan's length, as steps (limits.rs).
                let scanned = found.unwrap_or(ms.src.len()).saturating_sub(s);
                ms.fuel -= (scanned / BYTES_PER_STEP) as i64;
                match found {
                    Some(ns) => {
                        s = ns;
                        p += 4;
                        continue;
                    }
                    None => break None,
                }
            }
            b'%' if ms.pat.get(p + 1) == Some(&b'f') => {
                p += 2;
                if ms.pat.get(p) != Some(&b'[') {
                    return Err("missing '[' after '%f' in pattern".into());
                }
                let ep = class_end(ms, p)?;
                let prev = if s == 0 { 0 } else { ms.src[s - 1] };
                let cur = ms.src.get(s).copied().unwrap_or(0);
                if !match_bracket(ms, prev, p, ep - 1) && match_bracket(ms, cur, p, ep - 1) {
                    p = ep;
                    continue;
                }
                break None;
            }
            b'%' if ms.pat.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                let l = ms.pat[p + 1] as i64 - b'1' as i64;
                if l < 0 || l as usize >= ms.level || ms.capture[l as usize].1 == CAP_UNFINISHED {
                    return Err(format!("invalid capture index %{}", l + 1));
                }
                let l = l as usize;
                let (start, len) = ms.capture[l];
                let len = len as usize;
                ms.fuel -= (len / BYTES_PER_STEP) as i64;
                if ms.src.len() - s >= len && ms.src[start..start + len] == ms.src[s..s + len] {
                    s += len;
                    p += 2;
                    continue;
                }
                break None;
            }
            _ => {
                let ep = class_end(ms, p)?;
                let epc = ms.pat.get(ep).copied();
                if !single_match(ms, s, p, ep) {
                    if matches!(epc, Some(b'*' | b'?' | b'-')) {
                        p = ep + 1;
                        continue;
                    }
                    break None;
                }
                match epc {
                    Some(b'?') => {
                        if let Some(r) = do_match(ms, s + 1, ep + 1)? {
                            break Some(r);
                        }
                        p = ep + 1;
                        continue;
                    }
                    Some(b'+') => break max_expand(ms, s + 1, p, ep)?,
                    Some(b'*') => break max_expand(ms, s, p, ep)?,
                    Some(b'-') => break min_expand(ms, s, p, ep)?,
                    _ => {
                        s += 1;
                        p = ep;
                        continue;
                    }
                }
            }
        }
    };
    ms.depth -= 1;
    Ok(r)
}

fn max_expand(ms: &mut MatchState, s: usize, p: usize, ep: usize) -> MResult<Option<usize>> {
    let mut i = 0;
    while single_match(ms, s + i, p, ep) {
        i += 1;
    }
    ms.fuel -= i as i64;
    loop {
        if let Some(r) = do_match(ms, s + i, ep + 1)? {
            return Ok(Some(r));
        }
        if i == 0 {
            return Ok(None);
        }
        i -= 1;
    }
}

fn min_expand(ms: &mut MatchState, mut s: usize, p: usize, ep: usize) -> MResult<Option<usize>> {
    loop {
        if let Some(r) = do_match(ms, s, ep + 1)? {
            return Ok(Some(r));
        }
        if single_match(ms, s, p, ep) {
            s += 1;
        } else {
            return Ok(None);
        }
    }
}

fn start_capture(ms: &mut MatchState, s: usize, p: usize, what: isize) -> MResult<Option<usize>> {
    if ms.level >= MAX_CAPTURES {
        return Err("too many captures".into());
    }
    ms.capture[ms.level] = (s, what);
    ms.level += 1;
    let r = do_match(ms, s, p)?;
    if r.is_none() {
        ms.level -= 1;
    }
    Ok(r)
}

fn end_capture(ms: &mut MatchState, s: usize, p: usize) -> MResult<Option<usize>> {
    let Some(l) = (0..ms.level)
        .rev()
        .find(|&i| ms.capture[i].1 == CAP_UNFINISHED)
    else {
        return Err("invalid pattern capture".into());
    };
    ms.capture[l].1 = (s - ms.capture[l].0) as isize;
    let r = do_match(ms, s, p)?;
    if r.is_none() {
        ms.capture[l].1 = CAP_UNFINISHED;
    }
    Ok(r)
}

fn match_balance(ms: &MatchState, s: usize, p: usize) -> Option<usize> {
    if p + 1 >= ms.pat.len() || s >= ms.src.len() || ms.src[s] != ms.pat[p] {
        return None;
    }
    let (b, e) = (ms.pat[p], ms.pat[p + 1]);
    let mut cont = 1;
    let mut i = s + 1;
    while i < ms.src.len() {
        let c = ms.src[i];
        if c == e {
            cont -= 1;
            if cont == 0 {
                return Some(i + 1);
            }
        } else if c == b {
            cont += 1;
        }
        i += 1;
    }
    None
}

/// Capture `i` (or the whole match when there are none) as a value.
fn get_capture(vm: &mut Vm, ms: &MatchState, i: usize, s: usize, e: usize) -> MResult<Value> {
    if i >= ms.level {
        if i == 0 {
            return Ok(vm.heap.str_value(&ms.src[s..e]));
        }
        return Err(format!("invalid capture index %{}", i + 1));
    }
    let (start, len) = ms.capture[i];
    if len == CAP_POSITION {
        return Ok(Value::Int(start as i64 + 1));
    }
    if len == CAP_UNFINISHED {
        return Err("unfinished capture".into());
    }
    Ok(vm.heap.str_value(&ms.src[start..start + len as usize]))
}

fn captures(
    vm: &mut Vm,
    ms: &MatchState,
    s: usize,
    e: usize,
    whole_if_none: bool,
) -> MResult<Vec<Value>> {
    let n = if ms.level == 0 && whole_if_none {
        1
    } else {
        ms.level
    };
    (0..n).map(|i| get_capture(vm, ms, i, s, e)).collect()
}

fn new_state<'a>(vm: &Vm, src: &'a [u8], pat: &'a [u8]) -> MatchState<'a> {
    MatchState {
        src,
        pat,
        level: 0,
        capture: [(0, 0); MAX_CAPTURES],
        depth: 0,
        fuel: vm.fuel,
    }
}

/// Matches from `s`, charging the steps taken to the interpreter's
/// budget; a pattern error is a Lua error, running out of steps the
/// step-limit error.
fn run_match(vm: &mut Vm, ms: &mut MatchState, s: usize) -> LResult<Option<usize>> {
    let r = do_match(ms, s, 0);
    vm.fuel = ms.fuel;
    match r {
        Ok(r) => Ok(r),
        Err(m) if m == OUT_OF_STEPS => Err(vm.step_limit_error()),
        Err(m) => Err(vm.rt_error(m)),
    }
}

/// The first place `needle` (not empty) occurs in `hay`, and the bytes
/// looked at to find it (the search's cost, charged as steps).
fn plain_find(hay: &[u8], needle: &[u8]) -> (Option<usize>, usize) {
    let (first, rest) = (needle[0], &needle[1..]);
    let mut work = 0;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let Some(k) = hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&c| c == first)
        else {
            return (None, work + hay.len() - i);
        };
        i += k;
        let same = rest
            .iter()
            .zip(&hay[i + 1..])
            .take_while(|(a, b)| a == b)
            .count();
        work += k + 1 + same;
        if same == rest.len() {
            return (Some(i), work);
        }
        i += 1;
    }
    (None, work)
}

fn has_specials(p: &[u8]) -> bool {
    p.iter().any(|c| b"^$*+?.([%-".contains(c))
}

fn str_find_aux(vm: &mut Vm, base: usize, nargs: usize, find: bool) -> LResult<(usize, usize)> {
    let name = if find { "find" } else { "match" };
    let s = check_str(vm, base, nargs, 0, name)?;
    let p = check_str(vm, base, nargs, 1, name)?;
    let init = opt_int(vm, base, nargs, 2, name, 1)?;
    let len = s.len() as i64;
    let init = if init > 0 {
        init
    } else if init == 0 || init < -len {
        1
    } else {
        len + init + 1
    };
    if init > len + 1 {
        return vm.rets(base + nargs, &[Value::Nil]);
    }
    let init = (init - 1) as usize;
    if find && (arg(vm, base, nargs, 3).truthy() || !has_specials(&p)) {
        let pos = if p.is_empty() {
            Some(init)
        } else {
            let (found, work) = plain_find(&s[init..], &p);
            vm.charge_bytes(work)?;
            found.map(|i| i + init)
        };
        return match pos {
            Some(i) => vm.rets(
                base + nargs,
                &[Value::Int(i as i64 + 1), Value::Int((i + p.len()) as i64)],
            ),
            None => vm.rets(base + nargs, &[Value::Nil]),
        };
    }
    let (anchor, pstart) = if p.first() == Some(&b'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut s1 = init;
    loop {
        let mut ms = new_state(vm, &s, &p[pstart..]);
        let r = run_match(vm, &mut ms, s1)?;
        if let Some(e) = r {
            let mut vals = Vec::new();
            if find {
                vals.push(Value::Int(s1 as i64 + 1));
                vals.push(Value::Int(e as i64));
                vals.extend(captures(vm, &ms, s1, e, false).map_err(|m| vm.rt_error(m))?);
            } else {
                vals = captures(vm, &ms, s1, e, true).map_err(|m| vm.rt_error(m))?;
            }
            return vm.rets(base + nargs, &vals);
        }
        s1 += 1;
        if anchor || s1 > s.len() {
            return vm.rets(base + nargs, &[Value::Nil]);
        }
    }
}

pub fn str_find(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    str_find_aux(vm, base, nargs, true)
}

pub fn str_match(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    str_find_aux(vm, base, nargs, false)
}

/// `gmatch(s, p)` returns an iterator: `gmatch_iter` bound to a state
/// table holding the subject, the pattern and the position.
pub fn str_gmatch(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "gmatch")?;
    let p = check_str(vm, base, nargs, 1, "gmatch")?;
    let init = opt_int(vm, base, nargs, 2, "gmatch", 1)?;
    let len = s.len() as i64;
    let init = if init > 0 {
        init - 1
    } else if init == 0 || init < -len {
        0
    } else {
        len + init
    };
    let start = init.min(len + 1);
    let mut t = Table::with_capacity(4, 0);
    let sv = vm.heap.str_value(&s);
    let pv = vm.heap.str_value(&p);
    t.set_int(1, sv);
    t.set_int(2, pv);
    t.set_int(3, Value::Int(start));
    t.set_int(4, Value::Int(-1));
    let t = vm.heap.new_table(t);
    let id = match vm.builtins.iter().position(|(n, _)| *n == "gmatch_iter") {
        Some(i) => i as u32,
        None => {
            vm.builtins.push(("gmatch_iter", gmatch_iter));
            (vm.builtins.len() - 1) as u32
        }
    };
    // Rooted on the stack while the closure is made.
    vm.stack[base] = Value::Table(t);
    let f = crate::stdlib::bind(vm, Value::Builtin(id), Value::Table(t))?;
    vm.rets(base + nargs, &[f])
}

fn gmatch_iter(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let Value::Table(st) = arg(vm, base, nargs, 0) else {
        return Err(
            vm.rt_error("gmatch iterator called without its state (call it from a generic for)")
        );
    };
    let (sv, pv, pos, last) = {
        let t = vm.heap.table(st);
        (t.get_int(1), t.get_int(2), t.get_int(3), t.get_int(4))
    };
    let (Value::Str(ss), Value::Str(ps), Value::Int(pos), Value::Int(last)) = (sv, pv, pos, last)
    else {
        return Err(vm.rt_error("bad gmatch state"));
    };
    let s = vm.heap.str_bytes(ss).to_vec();
    let p = vm.heap.str_bytes(ps).to_vec();
    let (anchor, pstart) = if p.first() == Some(&b'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut src = pos as usize;
    while src <= s.len() {
        let mut ms = new_state(vm, &s, &p[pstart..]);
        let r = run_match(vm, &mut ms, src)?;
        if let Some(e) = r {
            if e as i64 != last {
                let vals = captures(vm, &ms, src, e, true).map_err(|m| vm.rt_error(m))?;
                let t = vm.heap.table_mut(st);
                t.set_int(3, Value::Int(e as i64));
                t.set_int(4, Value::Int(e as i64));
                return vm.rets(base + nargs, &vals);
            }
        }
        if anchor {
            break;
        }
        src += 1;
    }
    vm.heap
        .table_mut(st)
        .set_int(3, Value::Int(s.len() as i64 + 1));
    // Exhausted: no values (a generic for sees nil).
    vm.rets(base + nargs, &[])
}

pub fn str_gsub(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let s = check_str(vm, base, nargs, 0, "gsub")?;
    let p = check_str(vm, base, nargs, 1, "gsub")?;
    let repl = arg(vm, base, nargs, 2);
    if !matches!(
        repl,
        Value::Str(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Table(_)
            | Value::Func(_)
            | Value::Builtin(_)
    ) {
        let got = vm.type_name_meta(repl);
        return Err(arg_error(
            vm,
            2,
            "gsub",
            &format!(
                "string/function/table expected, got {}",
                if nargs < 3 {
                    "no value".to_string()
                } else {
                    got
                }
            ),
        ));
    }
    let max_n = opt_int(vm, base, nargs, 3, "gsub", i64::MAX)?;
    let repl_str = match repl {
        Value::Str(_) | Value::Int(_) | Value::Float(_) => {
            Some(check_str(vm, base, nargs, 2, "gsub")?)
        }
        _ => None,
    };
    let (anchor, pstart) = if p.first() == Some(&b'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut out = Vec::new();
    let mut src = 0;
    let mut n = 0;
    let mut last_match = usize::MAX;
    let mut checked = 1 << 16;
    // Whether any match was replaced by something else than itself.
    let mut changed = false;
    while n < max_n {
        let mut ms = new_state(vm, &s, &p[pstart..]);
        let r = run_match(vm, &mut ms, src)?;
        match r {
            Some(e) if e != last_match => {
                n += 1;
                changed |= add_value(
                    vm,
                    &ms,
                    &s,
                    src,
                    e,
                    repl,
                    repl_str.as_deref(),
                    base + nargs,
                    &mut out,
                )?;
                src = e;
                last_match = e;
                if out.len() > checked {
                    // The result grows: check it still fits, again each
                    // time it doubles.
                    vm.reserve(out.len())?;
                    checked = out.len() * 2;
                }
            }
            _ if src < s.len() => {
                out.push(s[src]);
                src += 1;
            }
            _ => break,
        }
        if anchor {
            break;
        }
    }
    if src < s.len() {
        out.extend_from_slice(&s[src..]);
    }
    let v = match arg(vm, base, nargs, 0) {
        // Nothing replaced: the subject itself, as lua5.4 (the same
        // object, which `%p` shows for a long string).
        v @ Value::Str(_) if !changed => v,
        _ => {
            vm.charge_bytes(out.len())?;
            vm.reserve(out.len())?;
            vm.heap.str_value(&out)
        }
    };
    let _ = check_int;
    vm.rets(base + nargs, &[v, Value::Int(n)])
}

/// Appends the replacement of the match `src..e` (gsub's add_value);
/// false if that is the match itself (a table or function answered
/// `nil` or `false`).
#[allow(clippy::too_many_arguments)]
fn add_value(
    vm: &mut Vm,
    ms: &MatchState,
    s: &[u8],
    src: usize,
    e: usize,
    repl: Value,
    repl_str: Option<&[u8]>,
    scratch: usize,
    out: &mut Vec<u8>,
) -> LResult<bool> {
    if let Some(rs) = repl_str {
        let mut i = 0;
        while i < rs.len() {
            let c = rs[i];
            i += 1;
            if c != b'%' {
                out.push(c);
                continue;
            }
            let Some(&d) = rs.get(i) else {
                return Err(vm.rt_error("invalid use of '%' in replacement string"));
            };
            i += 1;
            if d == b'%' {
                out.push(b'%');
            } else if d.is_ascii_digit() {
                let v = if d == b'0' {
                    vm.heap.str_value(&s[src..e])
                } else {
                    get_capture(vm, ms, (d - b'1') as usize, src, e).map_err(|m| vm.rt_error(m))?
                };
                let piece = tostring(vm, v)?;
                out.extend(piece);
            } else {
                return Err(vm.rt_error("invalid use of '%' in replacement string"));
            }
        }
        return Ok(true);
    }
    let cap = get_capture(vm, ms, 0, src, e).map_err(|m| vm.rt_error(m))?;
    let v = match repl {
        Value::Table(_) => vm.index(repl, cap, None)?,
        _ => {
            let caps = captures(vm, ms, src, e, true).map_err(|m| vm.rt_error(m))?;
            vm.ensure_stack(scratch + caps.len() + 2)?;
            vm.stack[scratch] = repl;
            vm.stack[scratch + 1..scratch + 1 + caps.len()].copy_from_slice(&caps);
            vm.call_at(scratch, caps.len(), 1)?;
            vm.stack[scratch]
        }
    };
    match v {
        Value::Nil | Value::Bool(false) => {
            out.extend_from_slice(&s[src..e]);
            Ok(false)
        }
        Value::Str(_) | Value::Int(_) | Value::Float(_) => {
            vm.concat_piece(v, out);
            Ok(true)
        }
        _ => {
            let tn = vm.type_name_meta(v);
            Err(vm.rt_error(format!("invalid replacement value (a {tn})")))
        }
    }
}
