//! The compiler: syntax tree to register bytecode ([`crate::bytecode`]).
//!
//! One pass over the tree per function. Locals live in fixed registers in
//! declaration order; temporaries are allocated above them stack-wise.
//! Names resolve to a local register, an upvalue (captured from an
//! enclosing function, possibly through several levels) or a global.

use crate::ast::*;
use crate::bytecode::{LocalInfo, Op, Proto, Reg, UpvalDesc};
use crate::heap::Heap;
use crate::parser::SyntaxError;
use crate::value::{StrRef, Value};
use std::collections::HashMap;
use std::rc::Rc;

/// Registers a function may use (lua5.4's limit is 255 too).
const MAX_REGS: usize = 250;
/// Items flushed to a table constructor at a time.
const FIELDS_PER_FLUSH: usize = 50;

struct ActiveLocal {
    name: Name,
    reg: Reg,
    attrib: Attrib,
    info: usize,
}

struct Scope {
    /// Active locals when the scope began.
    nactive: usize,
    is_loop: bool,
    breaks: Vec<usize>,
    /// (name, pc, active locals, line)
    labels: Vec<(Name, usize, usize, u32)>,
    /// Forward gotos not yet matched: (jump pc, label, nactive at goto
    /// (at most the scope's), line, whether it leaves locals of a scope
    /// already closed: the label must close them, as lua5.4's `close`
    /// mark on a goto moved out of a block).
    gotos: Vec<(usize, Name, usize, u32, bool)>,
}

#[derive(PartialEq, Eq, Hash)]
enum ConstKey {
    Int(i64),
    Float(u64),
    Str(u32),
}

struct FuncState {
    code: Vec<Op>,
    lines: Vec<u32>,
    consts: Vec<Value>,
    const_map: HashMap<ConstKey, u32>,
    protos: Vec<Rc<Proto>>,
    upvals: Vec<UpvalDesc>,
    upval_names: Vec<Name>,
    local_infos: Vec<LocalInfo>,
    actives: Vec<ActiveLocal>,
    scopes: Vec<Scope>,
    free_reg: usize,
    max_stack: usize,
    num_params: u8,
    is_vararg: bool,
    has_inner: bool,
    /// A `<close>` variable was declared (scopes then close on exit).
    has_tbc: bool,
    /// Generic `for` loops being compiled (each has a closing value).
    tfor_depth: u32,
    line_defined: u32,
}

enum VarKind {
    Local(Reg),
    Upval(u8),
    /// A free name, read and written in the globals table directly.
    Global,
    /// A free name, a field of the `_ENV` variable in scope.
    Env(EnvVar),
}

/// Where the `_ENV` variable in scope lives.
#[derive(Clone, Copy)]
enum EnvVar {
    Local(Reg),
    Upval(u8),
}

pub struct Compiler<'h> {
    heap: &'h mut Heap,
    funcs: Vec<FuncState>,
    source: Rc<str>,
    chunk_name: Rc<str>,
    line: u32,
    /// Free names index the `_ENV` variable in scope (a local or the main
    /// function's upvalue 0) instead of the globals table directly: set
    /// when the chunk mentions `_ENV` or runs with an environment of its own.
    env_dynamic: bool,
    /// The label being compiled is followed only by labels in its block.
    label_at_end: bool,
    /// Long string constants by their bytes' index: equal literals of one
    /// chunk are one string object (lua5.4's lexer reuses them too).
    long_strings: HashMap<u32, StrRef>,
    /// The chunk's text (for `string.dump`), if the caller keeps it.
    text: Option<Rc<[u8]>>,
    /// The number the next function begun gets (`Proto::origin`).
    next_function: u32,
}

type CResult<T> = Result<T, SyntaxError>;

/// Compiles a parsed chunk into its main function's prototype. The main
/// function has one upvalue, `_ENV` (the loader supplies it: the globals
/// table or `load`'s `env`). With `env_dynamic` false free names read and
/// write the globals table directly (`GetGlobal`/`SetGlobal`), which is
/// exact when `_ENV` is that table and nothing can change it: the chunk
/// never names `_ENV` and has no environment of its own.
pub fn compile_chunk(
    heap: &mut Heap,
    chunk: &FuncBody,
    source: Rc<str>,
    chunk_name: Rc<str>,
    env_dynamic: bool,
    text: Option<Rc<[u8]>>,
) -> CResult<Rc<Proto>> {
    let mut c = Compiler {
        heap,
        funcs: Vec::new(),
        source,
        chunk_name,
        line: 0,
        env_dynamic,
        label_at_end: false,
        long_strings: HashMap::new(),
        text,
        next_function: 0,
    };
    c.function(chunk)
}

impl Compiler<'_> {
    fn fs(&mut self) -> &mut FuncState {
        self.funcs.last_mut().expect("inside a function")
    }

    fn err(&self, msg: String) -> SyntaxError {
        SyntaxError {
            line: self.line,
            msg,
        }
    }

    fn emit(&mut self, op: Op) -> usize {
        let line = self.line;
        let fs = self.fs();
        fs.code.push(op);
        fs.lines.push(line);
        fs.code.len() - 1
    }

    fn pc(&mut self) -> usize {
        self.fs().code.len()
    }

    fn emit_jmp(&mut self) -> usize {
        self.emit(Op::Jmp(0))
    }

    /// Points the jump at `at` to `target`.
    fn patch(&mut self, at: usize, target: usize) {
        let off = target as i32 - (at as i32 + 1);
        let fs = self.fs();
        fs.code[at] = match fs.code[at] {
            Op::Jmp(_) => Op::Jmp(off),
            Op::ForPrep(a, _) => Op::ForPrep(a, off),
            Op::ForLoop(a, _) => Op::ForLoop(a, off),
            Op::TForLoop(a, _) => Op::TForLoop(a, off),
            other => other,
        };
    }

    fn patch_here(&mut self, jumps: Vec<usize>) {
        let here = self.pc();
        for j in jumps {
            self.patch(j, here);
        }
    }

    fn alloc_reg(&mut self) -> CResult<Reg> {
        let fs = self.fs();
        let r = fs.free_reg;
        fs.free_reg += 1;
        if fs.free_reg > fs.max_stack {
            fs.max_stack = fs.free_reg;
        }
        if r >= MAX_REGS {
            return Err(self.err("function or expression needs too many registers".into()));
        }
        Ok(r as Reg)
    }

    fn reserve(&mut self, n: usize) -> CResult<Reg> {
        let first = self.fs().free_reg;
        for _ in 0..n {
            self.alloc_reg()?;
        }
        Ok(first as Reg)
    }

    fn free_reg(&mut self) -> usize {
        self.fs().free_reg
    }

    fn set_free(&mut self, r: usize) {
        self.fs().free_reg = r;
    }

    fn add_const(&mut self, v: Value) -> u32 {
        let key = match v {
            Value::Int(i) => ConstKey::Int(i),
            Value::Float(f) => ConstKey::Float(f.to_bits()),
            Value::Str(s) => ConstKey::Str(s.0),
            _ => unreachable!("only numbers and strings are constants"),
        };
        let fs = self.fs();
        if let Some(&i) = fs.const_map.get(&key) {
            return i;
        }
        fs.consts.push(v);
        let i = (fs.consts.len() - 1) as u32;
        fs.const_map.insert(key, i);
        i
    }

    fn str_const(&mut self, s: &[u8]) -> u32 {
        let r = self.heap.intern(s);
        let r = *self.long_strings.entry(r.0).or_insert(r);
        self.add_const(Value::Str(r))
    }

    fn function(&mut self, f: &FuncBody) -> CResult<Rc<Proto>> {
        let number = self.next_function;
        self.next_function += 1;
        self.funcs.push(FuncState {
            code: Vec::new(),
            lines: Vec::new(),
            consts: Vec::new(),
            const_map: HashMap::new(),
            protos: Vec::new(),
            upvals: Vec::new(),
            upval_names: Vec::new(),
            local_infos: Vec::new(),
            actives: Vec::new(),
            scopes: Vec::new(),
            free_reg: 0,
            max_stack: 2,
            num_params: f.params.len() as u8,
            is_vararg: f.vararg,
            has_inner: f.has_inner,
            has_tbc: false,
            tfor_depth: 0,
            line_defined: f.line,
        });
        if self.funcs.len() == 1 {
            let fs = self.fs();
            fs.upvals.push(UpvalDesc {
                in_stack: false,
                index: 0,
            });
            fs.upval_names.push(b"_ENV".to_vec());
        }
        if f.params.len() > MAX_REGS {
            return Err(self.err("too many parameters".into()));
        }
        self.open_scope(false);
        for p in &f.params {
            let r = self.alloc_reg()?;
            self.activate(p.clone(), r, Attrib::None);
        }
        self.block_stats(&f.body, true)?;
        self.line = f.end_line;
        self.close_scope()?;
        self.emit(Op::Return(0, 1));
        let fs = self.funcs.pop().expect("pushed above");
        Ok(Rc::new(Proto {
            slot_hints: vec![std::cell::Cell::new(0); fs.code.len()],
            code: fs.code,
            lines: fs.lines,
            consts: fs.consts,
            protos: fs.protos,
            upvals: fs.upvals,
            upval_names: fs.upval_names,
            locals: fs.local_infos,
            num_params: fs.num_params,
            is_vararg: fs.is_vararg,
            max_stack: fs.max_stack.min(255) as u8,
            line_defined: fs.line_defined,
            source: self.source.clone(),
            chunk_name: self.chunk_name.clone(),
            gc_epoch: std::cell::Cell::new(0),
            origin: self.text.clone().map(|t| (t, number)),
            keeps_caller_frame: std::cell::Cell::new(false),
        }))
    }

    fn activate(&mut self, name: Name, reg: Reg, attrib: Attrib) {
        let pc = self.pc() as u32;
        let fs = self.fs();
        fs.local_infos.push(LocalInfo {
            name: name.clone(),
            reg,
            start_pc: pc,
            end_pc: u32::MAX,
        });
        let info = fs.local_infos.len() - 1;
        fs.actives.push(ActiveLocal {
            name,
            reg,
            attrib,
            info,
        });
    }

    fn open_scope(&mut self, is_loop: bool) {
        let nactive = self.fs().actives.len();
        self.fs().scopes.push(Scope {
            nactive,
            is_loop,
            breaks: Vec::new(),
            labels: Vec::new(),
            gotos: Vec::new(),
        });
    }

    /// The first register of the locals declared since `nactive`.
    fn level_of(&mut self, nactive: usize) -> Reg {
        let fs = self.fs();
        fs.actives
            .get(nactive)
            .map(|l| l.reg)
            .unwrap_or(fs.free_reg as Reg)
    }

    /// Whether leaving a scope must close something: upvalues (inner
    /// functions exist) or to-be-closed variables.
    fn closes(&mut self) -> bool {
        let fs = self.fs();
        fs.has_inner || fs.has_tbc
    }

    /// Whether a `<close>` variable is in scope (returns then close it,
    /// and a `return f()` is not a tail call).
    fn tbc_active(&mut self) -> bool {
        let fs = self.fs();
        fs.tfor_depth > 0 || fs.actives.iter().any(|l| l.attrib == Attrib::Close)
    }

    /// `Return(a, b)`, closing the function's to-be-closed variables first.
    fn emit_return(&mut self, a: Reg, b: u8) {
        if self.tbc_active() {
            self.emit(Op::Close(0));
        }
        self.emit(Op::Return(a, b));
    }

    /// Ends a scope: its locals die (closing their upvalues if the function
    /// has inner functions), its breaks are resolved by the caller.
    fn close_scope_keep_breaks(&mut self) -> CResult<Scope> {
        let scope = self.fs().scopes.pop().expect("a scope is open");
        let pc = self.pc() as u32;
        let has_locals = self.fs().actives.len() > scope.nactive;
        if has_locals && self.closes() {
            let level = self.level_of(scope.nactive);
            self.emit(Op::Close(level));
        }
        let fs = self.fs();
        while fs.actives.len() > scope.nactive {
            let l = fs.actives.pop().expect("checked");
            fs.local_infos[l.info].end_pc = pc;
        }
        let level = fs.actives.last().map(|l| l.reg as usize + 1).unwrap_or(0);
        fs.free_reg = level;
        // Pending gotos move out to the enclosing scope.
        let nactive = scope.nactive;
        if let Some(parent) = fs.scopes.last_mut() {
            for (pc, name, na, line, left) in scope.gotos.iter().cloned() {
                parent
                    .gotos
                    .push((pc, name, na.min(nactive), line, left || na > nactive));
            }
        } else if let Some((_, name, _, line, _)) = scope.gotos.first() {
            return Err(SyntaxError {
                line: *line,
                msg: format!(
                    "no visible label '{}' for <goto> at line {line}",
                    String::from_utf8_lossy(name)
                ),
            });
        }
        Ok(scope)
    }

    fn close_scope(&mut self) -> CResult<()> {
        let s = self.close_scope_keep_breaks()?;
        if !s.breaks.is_empty() {
            // Breaks belong to loops; a plain scope passes them outwards.
            if let Some(parent) = self.fs().scopes.last_mut() {
                parent.breaks.extend(s.breaks);
            }
        }
        Ok(())
    }

    fn block(&mut self, b: &Block) -> CResult<()> {
        self.open_scope(false);
        self.block_stats(b, true)?;
        self.close_scope()
    }

    /// `ends_scope`: the block's end ends its locals' scope (not so for a
    /// `repeat` body).
    fn block_stats(&mut self, b: &Block, ends_scope: bool) -> CResult<()> {
        for (i, s) in b.stats.iter().enumerate() {
            if matches!(s, Stat::Label(..)) {
                self.label_at_end = ends_scope
                    && b.stats[i + 1..]
                        .iter()
                        .all(|s| matches!(s, Stat::Label(..)));
            }
            self.stat(s)?;
            let level = self
                .fs()
                .actives
                .last()
                .map(|l| l.reg as usize + 1)
                .unwrap_or(0);
            self.set_free(level);
        }
        Ok(())
    }

    fn resolve(&mut self, name: &[u8]) -> VarKind {
        let depth = self.funcs.len() - 1;
        match self.resolve_in(depth, name) {
            VarKind::Global if self.env_dynamic => match self.resolve_in(depth, b"_ENV") {
                VarKind::Local(r) => VarKind::Env(EnvVar::Local(r)),
                VarKind::Upval(u) => VarKind::Env(EnvVar::Upval(u)),
                _ => unreachable!("the main function has the upvalue _ENV"),
            },
            v => v,
        }
    }

    /// A register holding the `_ENV` table (loaded from its upvalue).
    fn env_reg(&mut self, env: EnvVar) -> CResult<Reg> {
        match env {
            EnvVar::Local(r) => Ok(r),
            EnvVar::Upval(u) => {
                let r = self.alloc_reg()?;
                self.emit(Op::GetUpval(r, u));
                Ok(r)
            }
        }
    }

    /// `R[dst] = _ENV[name]`.
    fn get_env(&mut self, env: EnvVar, name: &[u8], dst: Reg) -> CResult<()> {
        let save = self.free_reg();
        let t = self.env_reg(env)?;
        let k = self.str_const(name);
        if k <= u16::MAX as u32 {
            self.emit(Op::GetField(dst, t, k as u16));
        } else {
            let kr = self.alloc_reg()?;
            self.emit(Op::LoadK(kr, k));
            self.emit(Op::GetTable(dst, t, kr));
        }
        self.set_free(save);
        Ok(())
    }

    /// `_ENV[name] = R[v]`.
    fn set_env(&mut self, env: EnvVar, name: &[u8], v: Reg) -> CResult<()> {
        let save = self.free_reg();
        let t = self.env_reg(env)?;
        let k = self.str_const(name);
        if k <= u16::MAX as u32 {
            self.emit(Op::SetField(t, k as u16, v));
        } else {
            let kr = self.alloc_reg()?;
            self.emit(Op::LoadK(kr, k));
            self.emit(Op::SetTable(t, kr, v));
        }
        self.set_free(save);
        Ok(())
    }

    fn resolve_in(&mut self, depth: usize, name: &[u8]) -> VarKind {
        let fs = &self.funcs[depth];
        if let Some(l) = fs.actives.iter().rev().find(|l| l.name == name) {
            return VarKind::Local(l.reg);
        }
        if let Some(i) = fs.upval_names.iter().position(|n| n == name) {
            return VarKind::Upval(i as u8);
        }
        if depth == 0 {
            return VarKind::Global;
        }
        let desc = match self.resolve_in(depth - 1, name) {
            VarKind::Global | VarKind::Env(_) => return VarKind::Global,
            VarKind::Local(r) => UpvalDesc {
                in_stack: true,
                index: r,
            },
            VarKind::Upval(i) => UpvalDesc {
                in_stack: false,
                index: i,
            },
        };
        let fs = &mut self.funcs[depth];
        fs.upvals.push(desc);
        fs.upval_names.push(name.to_vec());
        VarKind::Upval((fs.upvals.len() - 1) as u8)
    }

    fn check_const(&self, name: &[u8]) -> CResult<()> {
        // The innermost function declaring the name binds it (an upvalue
        // of the functions inside).
        for fs in self.funcs.iter().rev() {
            if let Some(l) = fs.actives.iter().rev().find(|l| l.name == name) {
                if l.attrib != Attrib::None {
                    return Err(self.err(format!(
                        "attempt to assign to const variable '{}'",
                        String::from_utf8_lossy(name)
                    )));
                }
                return Ok(());
            }
        }
        Ok(())
    }

    // ---- statements ----

    fn stat(&mut self, s: &Stat) -> CResult<()> {
        match s {
            Stat::Local(names, exprs, line) => {
                self.line = *line;
                let ntbc = names.iter().filter(|(_, a)| *a == Attrib::Close).count();
                if ntbc > 1 {
                    return Err(self.err("multiple to-be-closed variables in local list".into()));
                }
                let base = self.free_reg();
                self.explist_to(exprs, base, names.len())?;
                for (i, (n, a)) in names.iter().enumerate() {
                    self.activate(n.clone(), (base + i) as Reg, *a);
                    if *a == Attrib::Close {
                        self.fs().has_tbc = true;
                        self.emit(Op::Tbc((base + i) as Reg));
                    }
                }
                self.set_free(base + names.len());
            }
            Stat::LocalFunction(name, body) => {
                let r = self.alloc_reg()?;
                self.activate(name.clone(), r, Attrib::None);
                self.closure(body, r)?;
            }
            Stat::Assign(targets, exprs, line) => {
                self.line = *line;
                self.assign(targets, exprs)?;
            }
            Stat::Call(e) => {
                let base = self.free_reg();
                self.call(e, 0)?;
                self.set_free(base);
            }
            Stat::Do(b) => self.block(b)?,
            Stat::While(cond, body) => {
                let start = self.pc();
                let exits = self.cond_jump(cond, false)?;
                self.open_scope(true);
                self.block(body)?;
                let j = self.emit_jmp();
                self.patch(j, start);
                let scope = self.close_scope_keep_breaks()?;
                self.patch_here(exits);
                self.patch_here(scope.breaks);
            }
            Stat::Repeat(body, cond) => {
                let start = self.pc();
                self.open_scope(true);
                self.open_scope(false);
                // `until` sees the body's locals: a final label is inside their scope.
                self.block_stats(body, false)?;
                let has_locals = {
                    let fs = self.fs();
                    fs.actives.len() > fs.scopes.last().map(|s| s.nactive).unwrap_or(0)
                };
                let needs_close = has_locals && self.closes();
                if needs_close {
                    let exits = self.cond_jump(cond, true)?;
                    let nactive = self.fs().scopes.last().map(|s| s.nactive).unwrap_or(0);
                    let level = self.level_of(nactive);
                    self.emit(Op::Close(level));
                    let j = self.emit_jmp();
                    self.patch(j, start);
                    self.patch_here(exits);
                } else {
                    let back = self.cond_jump(cond, false)?;
                    for j in back {
                        self.patch(j, start);
                    }
                }
                self.close_scope()?;
                let scope = self.close_scope_keep_breaks()?;
                self.patch_here(scope.breaks);
            }
            Stat::If(arms, els) => {
                let mut ends = Vec::new();
                for (i, (cond, body)) in arms.iter().enumerate() {
                    let f = self.cond_jump(cond, false)?;
                    self.block(body)?;
                    if i + 1 < arms.len() || els.is_some() {
                        ends.push(self.emit_jmp());
                    }
                    self.patch_here(f);
                }
                if let Some(b) = els {
                    self.block(b)?;
                }
                self.patch_here(ends);
            }
            Stat::NumFor(var, parts, body, line) => {
                self.line = *line;
                let base = self.free_reg();
                for (i, e) in parts.iter().enumerate() {
                    let r = self.alloc_reg()?;
                    debug_assert_eq!(r as usize, base + i);
                    self.expr_to_reg(e, r)?;
                }
                self.line = *line;
                let prep = self.emit(Op::ForPrep(base as Reg, 0));
                self.open_scope(true);
                let v = self.alloc_reg()?;
                self.activate(var.clone(), v, Attrib::None);
                let body_start = self.pc();
                self.block(body)?;
                self.line = *line;
                if self.fs().has_inner {
                    // A fresh loop variable per iteration for closures.
                    self.emit(Op::Close(v));
                }
                let lp = self.emit(Op::ForLoop(base as Reg, 0));
                self.patch(lp, body_start);
                let after = self.pc();
                self.patch(prep, after);
                let scope = self.close_scope_keep_breaks()?;
                self.patch_here(scope.breaks);
            }
            Stat::GenFor(names, exprs, body, line) => {
                self.line = *line;
                // Iterator, state, control and closing value (a
                // to-be-closed variable), then the loop's variables.
                let base = self.free_reg();
                self.explist_to(exprs, base, 4)?;
                self.set_free(base + 4);
                // Room for the iterator's call (function and two arguments).
                self.reserve(3)?;
                self.set_free(base + 4);
                self.emit(Op::Tbc((base + 3) as Reg));
                let j = self.emit_jmp();
                self.fs().tfor_depth += 1;
                self.open_scope(true);
                for n in names {
                    let r = self.alloc_reg()?;
                    self.activate(n.clone(), r, Attrib::None);
                }
                let body_start = self.pc();
                self.block(body)?;
                if self.fs().has_inner {
                    self.emit(Op::Close((base + 4) as Reg));
                }
                self.patch_here(vec![j]);
                self.line = *line;
                self.emit(Op::TForCall(base as Reg, names.len() as u8));
                let lp = self.emit(Op::TForLoop(base as Reg, 0));
                self.patch(lp, body_start);
                let scope = self.close_scope_keep_breaks()?;
                self.patch_here(scope.breaks);
                self.fs().tfor_depth -= 1;
                // The closing value is closed when the loop ends.
                self.emit(Op::Close((base + 3) as Reg));
            }
            Stat::Return(exprs, line) => {
                self.line = *line;
                self.ret(exprs)?;
            }
            Stat::Break(line) => {
                self.line = *line;
                let Some(li) = self.fs().scopes.iter().rposition(|s| s.is_loop) else {
                    return Err(self.err(
                        "break outside a loop at line ".to_string()
                            + &line.to_string()
                            + " near <eof>",
                    ));
                };
                let nactive = self.fs().scopes[li].nactive;
                if self.closes() && self.fs().actives.len() > nactive {
                    let level = self.level_of(nactive);
                    self.emit(Op::Close(level));
                }
                let j = self.emit_jmp();
                self.fs().scopes[li].breaks.push(j);
            }
            Stat::Goto(name, line) => {
                self.line = *line;
                // A label already seen in this or an enclosing scope: jump back.
                let fs = self.fs();
                let found = fs
                    .scopes
                    .iter()
                    .rev()
                    .flat_map(|s| s.labels.iter())
                    .find(|(n, _, _, _)| n == name)
                    .map(|&(_, pc, na, _)| (pc, na));
                if let Some((_, na)) = found {
                    // Leaving the scope of locals: close them first.
                    if self.closes() && self.fs().actives.len() > na {
                        let level = self.level_of(na);
                        self.emit(Op::Close(level));
                    }
                }
                let j = self.emit_jmp();
                let fs = self.fs();
                match found.map(|(pc, _)| pc) {
                    Some(target) => self.patch(j, target),
                    None => {
                        let na = fs.actives.len();
                        fs.scopes.last_mut().expect("a scope is open").gotos.push((
                            j,
                            name.clone(),
                            na,
                            *line,
                            false,
                        ));
                    }
                }
            }
            Stat::Label(name, line) => {
                self.line = *line;
                let pc = self.pc();
                let at_end = self.label_at_end;
                let fs = self.fs();
                if let Some(&(_, _, _, l)) = fs
                    .scopes
                    .iter()
                    .flat_map(|s| s.labels.iter())
                    .find(|(n, _, _, _)| n == name)
                {
                    return Err(self.err(format!(
                        "label '{}' already defined on line {l}",
                        String::from_utf8_lossy(name)
                    )));
                }
                // A label that ends its block is outside its locals' scope.
                let scope_na = fs.scopes.last().expect("a scope is open").nactive;
                let na = if at_end { scope_na } else { fs.actives.len() };
                let scope = fs.scopes.last_mut().expect("a scope is open");
                scope.labels.push((name.clone(), pc, na, *line));
                let mut i = 0;
                let mut resolved = Vec::new();
                let mut leaves_scope = false;
                let mut into_scope = None;
                while i < scope.gotos.len() {
                    if scope.gotos[i].1 == *name {
                        let g = scope.gotos.remove(i);
                        leaves_scope |= g.2 > na || g.4;
                        if g.2 < na && into_scope.is_none() {
                            into_scope = Some((g.2, g.3));
                        }
                        resolved.push(g.0);
                    } else {
                        i += 1;
                    }
                }
                if let Some((gna, gline)) = into_scope {
                    let local = String::from_utf8_lossy(&fs.actives[gna].name).into_owned();
                    return Err(SyntaxError {
                        line: gline,
                        msg: format!(
                            "<goto {}> at line {gline} jumps into the scope of local '{local}'",
                            String::from_utf8_lossy(name)
                        ),
                    });
                }
                for j in resolved {
                    self.patch(j, pc);
                }
                // A goto from a deeper scope left locals behind: they are
                // closed here, at the label (harmless on other paths,
                // where nothing above this level is open).
                if leaves_scope && self.closes() {
                    let level = self.level_of(na);
                    self.emit(Op::Close(level));
                }
            }
        }
        Ok(())
    }

    fn ret(&mut self, exprs: &[Expr]) -> CResult<()> {
        if exprs.len() == 1 && !self.tbc_active() {
            match &exprs[0] {
                e @ (Expr::Call(..) | Expr::Method(..)) => {
                    let base = self.free_reg();
                    self.call_inner(e, -1, true)?;
                    self.emit(Op::Return(base as Reg, 0));
                    return Ok(());
                }
                Expr::Name(n, _) if !exprs[0].is_multi() => {
                    if let VarKind::Local(r) = self.resolve(n) {
                        self.emit(Op::Return(r, 2));
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        let base = self.free_reg();
        if let Some(last) = exprs.last().filter(|e| e.is_multi()) {
            for e in &exprs[..exprs.len() - 1] {
                let r = self.alloc_reg()?;
                self.expr_to_reg(e, r)?;
            }
            let r = self.free_reg();
            self.multi(last, r, -1)?;
            self.emit_return(base as Reg, 0);
        } else {
            for e in exprs {
                let r = self.alloc_reg()?;
                self.expr_to_reg(e, r)?;
            }
            self.emit_return(base as Reg, exprs.len() as u8 + 1);
        }
        Ok(())
    }

    /// Evaluates `exprs` into `want` consecutive registers from `base`
    /// (which must be the first free register), adjusting like Lua.
    fn explist_to(&mut self, exprs: &[Expr], base: usize, want: usize) -> CResult<()> {
        debug_assert_eq!(base, self.free_reg());
        for (i, e) in exprs.iter().enumerate() {
            let last = i + 1 == exprs.len();
            if last && e.is_multi() && i < want {
                let n = want - i;
                self.set_free(base + i);
                self.multi(e, base + i, n as i32)?;
                self.set_free(base + want);
                self.reserve(0)?;
                return Ok(());
            }
            let r = self.alloc_reg()?;
            self.expr_to_reg(e, r)?;
        }
        if exprs.len() < want {
            let from = base + exprs.len();
            let n = want - exprs.len();
            self.emit(Op::LoadNil(from as Reg, (n - 1) as u8));
        }
        self.set_free(base.max(base + want));
        if self.fs().free_reg > self.fs().max_stack {
            let f = self.fs().free_reg;
            self.fs().max_stack = f;
        }
        Ok(())
    }

    /// A multi-value expression into registers from `dst` (== free reg):
    /// `want` values, or all (-1, setting the top).
    fn multi(&mut self, e: &Expr, dst: usize, want: i32) -> CResult<()> {
        debug_assert_eq!(dst, self.free_reg());
        match e {
            Expr::Dots => {
                self.emit(Op::VarArg(dst as Reg, (want + 1) as u8));
                if want > 0 {
                    self.reserve(want as usize)?;
                }
            }
            _ => {
                self.call(e, want)?;
            }
        }
        Ok(())
    }

    fn assign(&mut self, targets: &[Expr], exprs: &[Expr]) -> CResult<()> {
        if targets.len() == 1 && exprs.len() == 1 {
            return self.assign_one(&targets[0], &exprs[0]);
        }
        // Evaluate the targets' table and key expressions, then the values,
        // then store right to left.
        enum Place {
            Local(Reg),
            Upval(u8),
            Global(u32),
            Env(EnvVar, Name),
            Index(Reg, Reg),
        }
        let mut places = Vec::new();
        for t in targets {
            places.push(match t {
                Expr::Name(n, _) => {
                    self.check_const(n)?;
                    match self.resolve(n) {
                        VarKind::Local(r) => Place::Local(r),
                        VarKind::Upval(u) => Place::Upval(u),
                        VarKind::Global => Place::Global(self.str_const(n)),
                        VarKind::Env(env) => Place::Env(env, n.clone()),
                    }
                }
                Expr::Index(obj, key, _) => {
                    let o = self.alloc_reg()?;
                    self.expr_to_reg(obj, o)?;
                    let k = self.alloc_reg()?;
                    self.expr_to_reg(key, k)?;
                    Place::Index(o, k)
                }
                _ => return Err(self.err("syntax error".into())),
            });
        }
        let base = self.free_reg();
        self.explist_to(exprs, base, targets.len())?;
        self.set_free(base + targets.len());
        for (i, p) in places.iter().enumerate().rev() {
            let v = (base + i) as Reg;
            match *p {
                Place::Env(env, ref n) => {
                    self.set_env(env, n, v)?;
                }
                Place::Local(r) => {
                    self.emit(Op::Move(r, v));
                }
                Place::Upval(u) => {
                    self.emit(Op::SetUpval(v, u));
                }
                Place::Global(k) => {
                    self.emit(Op::SetGlobal(v, k));
                }
                Place::Index(o, k) => {
                    self.emit(Op::SetTable(o, k, v));
                }
            }
        }
        Ok(())
    }

    fn assign_one(&mut self, target: &Expr, e: &Expr) -> CResult<()> {
        match target {
            Expr::Name(n, _) => {
                self.check_const(n)?;
                match self.resolve(n) {
                    VarKind::Local(r) => {
                        if reads_before_write(e) {
                            self.expr_to_reg(e, r)?;
                        } else {
                            let t = self.alloc_reg()?;
                            self.expr_to_reg(e, t)?;
                            self.emit(Op::Move(r, t));
                        }
                    }
                    VarKind::Upval(u) => {
                        let v = self.any_reg(e)?;
                        self.emit(Op::SetUpval(v, u));
                    }
                    VarKind::Global => {
                        let v = self.any_reg(e)?;
                        let k = self.str_const(n);
                        self.emit(Op::SetGlobal(v, k));
                    }
                    VarKind::Env(env) => {
                        let v = self.any_reg(e)?;
                        self.set_env(env, n, v)?;
                    }
                }
            }
            Expr::Index(obj, key, line) => {
                let o = self.any_reg(obj)?;
                let field = match &**key {
                    Expr::Str(s) => {
                        let k = self.str_const(s);
                        (k <= u16::MAX as u32).then_some(k as u16)
                    }
                    _ => None,
                };
                match field {
                    Some(k) => {
                        let v = self.any_reg(e)?;
                        self.line = *line;
                        self.emit(Op::SetField(o, k, v));
                    }
                    None => {
                        let k = self.any_reg(key)?;
                        let v = self.any_reg(e)?;
                        self.line = *line;
                        self.emit(Op::SetTable(o, k, v));
                    }
                }
            }
            _ => return Err(self.err("syntax error".into())),
        }
        Ok(())
    }

    fn closure(&mut self, body: &FuncBody, dst: Reg) -> CResult<()> {
        let saved = self.line;
        let proto = self.function(body)?;
        self.line = saved;
        let fs = self.fs();
        fs.protos.push(proto);
        let idx = (fs.protos.len() - 1) as u32;
        self.emit(Op::Closure(dst, idx));
        Ok(())
    }

    // ---- expressions ----

    /// The register holding `e`: a local's own register, else a new
    /// temporary.
    fn any_reg(&mut self, e: &Expr) -> CResult<Reg> {
        if let Expr::Name(n, _) = e {
            if let VarKind::Local(r) = self.resolve(n) {
                return Ok(r);
            }
        }
        let r = self.alloc_reg()?;
        self.expr_to_reg(e, r)?;
        Ok(r)
    }

    fn number_const(&mut self, e: &Expr) -> Option<u16> {
        let v = match e {
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            _ => return None,
        };
        let k = self.add_const(v);
        (k <= u16::MAX as u32).then_some(k as u16)
    }

    /// Evaluates `e` into `dst`; temporaries above the free register are
    /// released afterwards.
    fn expr_to_reg(&mut self, e: &Expr, dst: Reg) -> CResult<()> {
        let save = self.free_reg();
        self.expr_inner(e, dst)?;
        self.set_free(save);
        Ok(())
    }

    fn expr_inner(&mut self, e: &Expr, dst: Reg) -> CResult<()> {
        match e {
            Expr::Nil => {
                self.emit(Op::LoadNil(dst, 0));
            }
            Expr::True => {
                self.emit(Op::LoadBool(dst, true));
            }
            Expr::False => {
                self.emit(Op::LoadBool(dst, false));
            }
            Expr::Int(i) => {
                if let Ok(small) = i32::try_from(*i) {
                    self.emit(Op::LoadI(dst, small));
                } else {
                    let k = self.add_const(Value::Int(*i));
                    self.emit(Op::LoadK(dst, k));
                }
            }
            Expr::Float(f) => {
                let k = self.add_const(Value::Float(*f));
                self.emit(Op::LoadK(dst, k));
            }
            Expr::Str(s) => {
                let k = self.str_const(s);
                self.emit(Op::LoadK(dst, k));
            }
            Expr::Dots => {
                if !self.fs().is_vararg {
                    return Err(
                        self.err("cannot use '...' outside a vararg function near '...'".into())
                    );
                }
                self.emit(Op::VarArg(dst, 2));
            }
            Expr::Name(n, line) => {
                self.line = *line;
                match self.resolve(n) {
                    VarKind::Local(r) => {
                        if r != dst {
                            self.emit(Op::Move(dst, r));
                        }
                    }
                    VarKind::Upval(u) => {
                        self.emit(Op::GetUpval(dst, u));
                    }
                    VarKind::Global => {
                        let k = self.str_const(n);
                        self.emit(Op::GetGlobal(dst, k));
                    }
                    VarKind::Env(env) => self.get_env(env, n, dst)?,
                }
            }
            Expr::Index(obj, key, line) => {
                let o = self.any_reg(obj)?;
                match &**key {
                    Expr::Str(s) => {
                        let k = self.str_const(s);
                        self.line = *line;
                        if k <= u16::MAX as u32 {
                            self.emit(Op::GetField(dst, o, k as u16));
                        } else {
                            let kr = self.alloc_reg()?;
                            self.emit(Op::LoadK(kr, k));
                            self.emit(Op::GetTable(dst, o, kr));
                        }
                    }
                    Expr::Int(i) if (1..=255).contains(i) => {
                        self.line = *line;
                        self.emit(Op::GetIndex(dst, o, *i as u8));
                    }
                    k => {
                        let kr = self.any_reg(k)?;
                        self.line = *line;
                        self.emit(Op::GetTable(dst, o, kr));
                    }
                }
            }
            Expr::Call(..) | Expr::Method(..) => {
                let base = self.call(e, 1)?;
                if base != dst {
                    self.emit(Op::Move(dst, base));
                }
            }
            Expr::Paren(inner) => self.expr_inner(inner, dst)?,
            Expr::Function(body) => self.closure(body, dst)?,
            // A constant left operand decides at compile time (as lua5.4).
            Expr::And(a, b) if const_truth(a) == Some(true) => self.expr_inner(b, dst)?,
            Expr::Or(a, b) if const_truth(a) == Some(false) => self.expr_inner(b, dst)?,
            // `(x or 'k') and b` is b whatever x is: x is evaluated, then b
            // with no jump over its code, as lua5.4 compiles it — which its
            // error messages show (`((x or 'k') and 'c') << 1` names the
            // constant 'c'); likewise `(x and false) or b`.
            Expr::And(a, b) if truth_after_constant(a) == Some(true) => {
                let Expr::Or(x, _) = &**a else {
                    unreachable!("an `or`")
                };
                self.expr_to_reg(x, dst)?;
                self.expr_inner(b, dst)?
            }
            Expr::Or(a, b) if truth_after_constant(a) == Some(false) => {
                let Expr::And(x, _) = &**a else {
                    unreachable!("an `and`")
                };
                self.expr_to_reg(x, dst)?;
                self.expr_inner(b, dst)?
            }
            // The same when that constant is deeper (`(x or (y or 'k'))
            // and b`): the left side has no exit to the other outcome, so
            // it is evaluated as it is (its own jumps land where b starts)
            // and b follows with no test.
            Expr::And(a, b) if outcome_fixed(a, true) => {
                self.expr_to_reg(a, dst)?;
                self.expr_inner(b, dst)?
            }
            Expr::Or(a, b) if outcome_fixed(a, false) => {
                self.expr_to_reg(a, dst)?;
                self.expr_inner(b, dst)?
            }
            Expr::And(a, b) => {
                self.expr_to_reg(a, dst)?;
                self.emit(Op::Test(dst, false));
                let j = self.emit_jmp();
                self.expr_to_reg(b, dst)?;
                self.patch_here(vec![j]);
            }
            Expr::Or(a, b) => {
                self.expr_to_reg(a, dst)?;
                self.emit(Op::Test(dst, true));
                let j = self.emit_jmp();
                self.expr_to_reg(b, dst)?;
                self.patch_here(vec![j]);
            }
            Expr::Un(op, a, line) => {
                if *op == UnOp::Not {
                    let r = self.any_reg(a)?;
                    self.emit(Op::Not(dst, r));
                    return Ok(());
                }
                let r = self.any_reg(a)?;
                self.line = *line;
                self.emit(match op {
                    UnOp::Neg => Op::Unm(dst, r),
                    UnOp::Len => Op::Len(dst, r),
                    UnOp::BNot => Op::BNot(dst, r),
                    UnOp::Not => unreachable!(),
                });
            }
            Expr::Bin(op, a, b, line) => self.binary(*op, a, b, *line, dst)?,
            Expr::Table(fields, line) => {
                self.line = *line;
                self.table(fields, dst)?;
            }
        }
        Ok(())
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, line: u32, dst: Reg) -> CResult<()> {
        use BinOp::*;
        match op {
            Eq | Ne | Lt | Le | Gt | Ge => {
                let e = Expr::Bin(op, Box::new(Expr::Nil), Box::new(Expr::Nil), line);
                let _ = e;
                let f = self.compare_jump(op, a, b, line, false)?;
                self.emit(Op::LoadBool(dst, true));
                let j = self.emit_jmp();
                self.patch_here(f);
                self.emit(Op::LoadBool(dst, false));
                self.patch_here(vec![j]);
                return Ok(());
            }
            Concat => {
                // Flatten the right-associative chain into consecutive registers.
                let mut items = vec![a];
                let mut rest = b;
                while let Expr::Bin(Concat, x, y, _) = rest {
                    items.push(x);
                    rest = y;
                }
                items.push(rest);
                // Into a temporary on top (a new local's register): the
                // operands start there, as in lua5.4, so no stale value
                // stays in it meanwhile (the collector would keep it: a
                // weak entry read into it by a loop's condition).
                let fs = self.fs();
                let dst_is_top = dst as usize + 1 == fs.free_reg
                    && fs.actives.last().is_none_or(|l| l.reg < dst);
                let base = if dst_is_top {
                    self.set_free(dst as usize);
                    dst as usize
                } else {
                    self.free_reg()
                };
                for it in &items {
                    let r = self.alloc_reg()?;
                    self.expr_to_reg(it, r)?;
                }
                self.line = line;
                self.emit(Op::Concat(dst, base as Reg, items.len().min(255) as u8));
                return Ok(());
            }
            _ => {}
        }
        let ra = self.any_reg(a)?;
        if let Some(k) = self.number_const(b) {
            let op = match op {
                Add => Some(Op::AddK(dst, ra, k)),
                Sub => Some(Op::SubK(dst, ra, k)),
                Mul => Some(Op::MulK(dst, ra, k)),
                Div => Some(Op::DivK(dst, ra, k)),
                Mod => Some(Op::ModK(dst, ra, k)),
                Pow => Some(Op::PowK(dst, ra, k)),
                IDiv => Some(Op::IDivK(dst, ra, k)),
                _ => None,
            };
            if let Some(op) = op {
                self.line = line;
                self.emit(op);
                return Ok(());
            }
        }
        let rb = self.any_reg(b)?;
        self.line = line;
        self.emit(match op {
            Add => Op::Add(dst, ra, rb),
            Sub => Op::Sub(dst, ra, rb),
            Mul => Op::Mul(dst, ra, rb),
            Div => Op::Div(dst, ra, rb),
            Mod => Op::Mod(dst, ra, rb),
            Pow => Op::Pow(dst, ra, rb),
            IDiv => Op::IDiv(dst, ra, rb),
            BAnd => Op::BAnd(dst, ra, rb),
            BOr => Op::BOr(dst, ra, rb),
            BXor => Op::BXor(dst, ra, rb),
            Shl => Op::Shl(dst, ra, rb),
            Shr => Op::Shr(dst, ra, rb),
            _ => unreachable!("handled above"),
        });
        Ok(())
    }

    /// Emits a comparison and the jump taken when its truth equals
    /// `jump_if`; returns the jump to patch.
    fn compare_jump(
        &mut self,
        op: BinOp,
        a: &Expr,
        b: &Expr,
        line: u32,
        jump_if: bool,
    ) -> CResult<Vec<usize>> {
        use BinOp::*;
        let save = self.free_reg();
        let small = |e: &Expr| match e {
            Expr::Int(i) => i16::try_from(*i).ok(),
            _ => None,
        };
        let inst = match op {
            Eq | Ne => {
                let k = if op == Eq { jump_if } else { !jump_if };
                let konst = match b {
                    Expr::Str(s) => Some(self.str_const(s)),
                    Expr::Int(i) => Some(self.add_const(Value::Int(*i))),
                    Expr::Float(f) => Some(self.add_const(Value::Float(*f))),
                    _ => None,
                }
                .filter(|&k| k <= u16::MAX as u32);
                let ra = self.any_reg(a)?;
                match konst {
                    Some(c) => Op::EqK(ra, c as u16, k),
                    None => {
                        let rb = self.any_reg(b)?;
                        Op::Eq(ra, rb, k)
                    }
                }
            }
            Lt | Le | Gt | Ge => {
                if let Some(i) = small(b) {
                    let ra = self.any_reg(a)?;
                    match op {
                        Lt => Op::LtI(ra, i, jump_if),
                        Le => Op::LeI(ra, i, jump_if),
                        Gt => Op::GtI(ra, i, jump_if),
                        _ => Op::GeI(ra, i, jump_if),
                    }
                } else if let (Some(i), false) = (small(a), matches!(b, Expr::Int(_))) {
                    let rb = self.any_reg(b)?;
                    // i < b  ==  b > i
                    match op {
                        Lt => Op::GtI(rb, i, jump_if),
                        Le => Op::GeI(rb, i, jump_if),
                        Gt => Op::LtI(rb, i, jump_if),
                        _ => Op::LeI(rb, i, jump_if),
                    }
                } else {
                    let ra = self.any_reg(a)?;
                    let rb = self.any_reg(b)?;
                    match op {
                        Lt => Op::Lt(ra, rb, jump_if),
                        Le => Op::Le(ra, rb, jump_if),
                        Gt => Op::Lt(rb, ra, jump_if),
                        _ => Op::Le(rb, ra, jump_if),
                    }
                }
            }
            _ => unreachable!("not a comparison"),
        };
        self.line = line;
        self.emit(inst);
        let j = self.emit_jmp();
        self.set_free(save);
        Ok(vec![j])
    }

    /// Emits code that jumps (returned jumps, to patch) when the truth of
    /// `e` equals `jump_if`, and falls through otherwise.
    fn cond_jump(&mut self, e: &Expr, jump_if: bool) -> CResult<Vec<usize>> {
        use BinOp::*;
        match e {
            Expr::Un(UnOp::Not, inner, _) => self.cond_jump(inner, !jump_if),
            Expr::And(a, b) => {
                if jump_if {
                    let skip = self.cond_jump(a, false)?;
                    let j = self.cond_jump(b, true)?;
                    self.patch_here(skip);
                    Ok(j)
                } else {
                    let mut j = self.cond_jump(a, false)?;
                    j.extend(self.cond_jump(b, false)?);
                    Ok(j)
                }
            }
            Expr::Or(a, b) => {
                if jump_if {
                    let mut j = self.cond_jump(a, true)?;
                    j.extend(self.cond_jump(b, true)?);
                    Ok(j)
                } else {
                    let skip = self.cond_jump(a, true)?;
                    let j = self.cond_jump(b, false)?;
                    self.patch_here(skip);
                    Ok(j)
                }
            }
            Expr::Bin(op @ (Eq | Ne | Lt | Le | Gt | Ge), a, b, line) => {
                self.compare_jump(*op, a, b, *line, jump_if)
            }
            Expr::True | Expr::Int(_) | Expr::Float(_) | Expr::Str(_) => Ok(if jump_if {
                vec![self.emit_jmp()]
            } else {
                vec![]
            }),
            Expr::Nil | Expr::False => Ok(if jump_if {
                vec![]
            } else {
                vec![self.emit_jmp()]
            }),
            _ => {
                let save = self.free_reg();
                let r = self.any_reg(e)?;
                self.emit(Op::Test(r, jump_if));
                let j = self.emit_jmp();
                self.set_free(save);
                Ok(vec![j])
            }
        }
    }

    /// Compiles a call with its function at the first free register;
    /// `want` results (-1: all, setting the top). Returns that register.
    fn call(&mut self, e: &Expr, want: i32) -> CResult<Reg> {
        self.call_inner(e, want, false)
    }

    fn call_inner(&mut self, e: &Expr, want: i32, tail: bool) -> CResult<Reg> {
        let base = self.alloc_reg()?;
        let (args, line) = match e {
            Expr::Call(f, args, line) => {
                self.expr_to_reg(f, base)?;
                (args, *line)
            }
            Expr::Method(obj, name, args, line) => {
                let o = self.any_reg(obj)?;
                self.set_free(base as usize + 1);
                let k = self.str_const(name);
                self.alloc_reg()?;
                self.line = *line;
                if k <= u16::MAX as u32 {
                    self.emit(Op::SelfOp(base, o, k as u16));
                } else {
                    return Err(self.err("too many constants".into()));
                }
                (args, *line)
            }
            _ => unreachable!("not a call"),
        };
        let mut nargs: i32 = if matches!(e, Expr::Method(..)) { 1 } else { 0 };
        self.set_free(base as usize + 1 + nargs as usize);
        for (i, a) in args.iter().enumerate() {
            if i + 1 == args.len() && a.is_multi() {
                let r = self.free_reg();
                self.multi(a, r, -1)?;
                nargs = -1;
                break;
            }
            let r = self.alloc_reg()?;
            self.expr_to_reg(a, r)?;
            nargs += 1;
        }
        self.line = line;
        if tail {
            self.emit(Op::TailCall(base, (nargs + 1) as u8));
        } else {
            self.emit(Op::Call(base, (nargs + 1) as u8, (want + 1) as u8));
        }
        self.set_free(base as usize + want.max(0) as usize);
        if want > 0 {
            let f = self.fs().free_reg.max(self.fs().max_stack);
            self.fs().max_stack = f;
        }
        Ok(base)
    }

    fn table(&mut self, fields: &[Field], dst: Reg) -> CResult<()> {
        let narr = fields
            .iter()
            .filter(|f| matches!(f, Field::Item(_)))
            .count();
        let nhash = fields.len() - narr;
        let t = if dst as usize + 1 == self.free_reg()
            && self.fs().actives.iter().all(|l| l.reg != dst)
        {
            dst
        } else {
            self.alloc_reg()?
        };
        self.emit(Op::NewTable(
            t,
            narr.min(u16::MAX as usize) as u16,
            nhash.min(255) as u8,
        ));
        let mut pending = 0usize;
        let mut stored = 0u32;
        for (i, f) in fields.iter().enumerate() {
            match f {
                Field::Item(e) => {
                    if i + 1 == fields.len() && e.is_multi() {
                        let r = self.free_reg();
                        self.multi(e, r, -1)?;
                        self.emit(Op::SetList(t, 0, stored + 1));
                        pending = 0;
                        self.set_free(t as usize + 1);
                        continue;
                    }
                    let r = self.alloc_reg()?;
                    self.expr_to_reg(e, r)?;
                    pending += 1;
                    if pending == FIELDS_PER_FLUSH {
                        self.emit(Op::SetList(t, pending as u8, stored + 1));
                        stored += pending as u32;
                        pending = 0;
                        self.set_free(t as usize + 1);
                    }
                }
                Field::Pair(k, v) => {
                    let save = self.free_reg();
                    match k {
                        Expr::Str(s) if self.str_const(s) <= u16::MAX as u32 => {
                            let kc = self.str_const(s) as u16;
                            let vr = self.any_reg(v)?;
                            self.emit(Op::SetField(t, kc, vr));
                        }
                        _ => {
                            let kr = self.any_reg(k)?;
                            let vr = self.any_reg(v)?;
                            self.emit(Op::SetTable(t, kr, vr));
                        }
                    }
                    self.set_free(save);
                }
            }
        }
        if pending > 0 {
            self.emit(Op::SetList(t, pending as u8, stored + 1));
        }
        if t != dst {
            self.emit(Op::Move(dst, t));
        }
        Ok(())
    }
}

/// Whether evaluating `e` straight into a local's register is safe: the
/// expression reads all its operands before its one final write.
fn reads_before_write(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Nil
            | Expr::True
            | Expr::False
            | Expr::Int(_)
            | Expr::Float(_)
            | Expr::Str(_)
            | Expr::Name(..)
            | Expr::Index(..)
            | Expr::Call(..)
            | Expr::Method(..)
            | Expr::Function(_)
            | Expr::Un(..)
            | Expr::Dots
    ) || matches!(e, Expr::Bin(op, ..) if !matches!(op, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge))
}

/// Whether `e`'s truth is `truth` whatever its operands are, by its
/// shape as lua5.4's jump lists see it: a constant of that truth, an
/// `or` (for true; `and` for false) whose right side is fixed so, or an
/// `and` (`or`) whose both sides are.
fn outcome_fixed(e: &Expr, truth: bool) -> bool {
    match e {
        Expr::Paren(x) => outcome_fixed(x, truth),
        Expr::Or(_, y) if truth => outcome_fixed(y, true),
        Expr::And(x, y) if truth => outcome_fixed(x, true) && outcome_fixed(y, true),
        Expr::And(_, y) => outcome_fixed(y, false),
        Expr::Or(x, y) => outcome_fixed(x, false) && outcome_fixed(y, false),
        e => const_truth(e) == Some(truth),
    }
}

/// The truth of a constant expression, if it is one.
/// The truth an `or` whose right side is a true constant (always true)
/// or an `and` whose right side is a false constant (always false) has,
/// whatever its left side is.
fn truth_after_constant(e: &Expr) -> Option<bool> {
    match e {
        Expr::Or(_, k) if const_truth(k) == Some(true) => Some(true),
        Expr::And(_, k) if const_truth(k) == Some(false) => Some(false),
        _ => None,
    }
}

fn const_truth(e: &Expr) -> Option<bool> {
    match e {
        Expr::Nil | Expr::False => Some(false),
        Expr::True | Expr::Int(_) | Expr::Float(_) | Expr::Str(_) => Some(true),
        _ => None,
    }
}
