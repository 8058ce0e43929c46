//! A guest written from scratch against `vssa-jit`: a small stack
//! language, its interpreter, its graph builder, and the glue — compile
//! with a speculation from the interpreter's profile, run, deoptimize back
//! into the interpreter when the speculation fails, refute it and
//! recompile from the patch log. `docs/embedding.md` walks through it.
//!
//! The language: a program is a list of instructions over a stack of
//! `i64`s and four locals.
//!
//! | instruction | effect |
//! |---|---|
//! | `push N` | push N |
//! | `get K`, `set K` | push local K; pop into local K |
//! | `add`, `sub`, `mul` | pop b, pop a, push a ∘ b (wrapping) |
//! | `lt` | pop b, pop a, push 1 if a < b else 0 |
//! | `print` | pop v and write it; a negative v is an error |
//! | `while` … `do` … `end` | loop: run the test, pop it, run the body while nonzero |
//! | `if` … `end` | pop c; run the body if c is nonzero |
//!
//! The stack must be empty at `while`, `do`'s body, `if`'s body and `end`
//! (the parser checks it), so that control merges carry only locals.

use vssa::{BinOp, CmpOp, ConvOp, Graph, NodeId, Type};
use vssa_backend::HostFn;
use vssa_deopt::{BranchSite, DeoptAbi};
use vssa_jit::{Built, Exit, Guest, JitConfig, JitReport, Site, UnitCompiler, UnitRequest};
use vssa_patch::LogBook;

const LOCALS: usize = 4;
/// Deopt slots: the locals, then what is on the stack (at most 4 deep at a
/// guard: the parser bounds the stack).
const SLOTS: usize = LOCALS + MAX_STACK;
const MAX_STACK: usize = 4;

/// Return codes: done, a host call failed, first deopt exit.
const DONE: u32 = 0;
const FAILED: u32 = 1;
const FIRST_EXIT: u32 = 2;
/// The guard reason of a speculated `if`.
const REASON_IF: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Inst {
    Push(i64),
    Get(usize),
    Set(usize),
    Add,
    Sub,
    Mul,
    Lt,
    Print,
    /// `test_end`: the loop's `do`.
    While {
        test_end: usize,
    },
    Do {
        end: usize,
    },
    If {
        end: usize,
    },
    /// `start`: the `while` of a loop's `end`, none for an `if`'s.
    End {
        start: Option<usize>,
    },
}

/// Parses the text form; an error names the instruction.
fn parse(src: &str) -> Result<Vec<Inst>, String> {
    let mut words = src.split_whitespace();
    let mut prog = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    while let Some(word) = words.next() {
        let pc = prog.len();
        let at = |what: &str| format!("instruction {pc} ({word}): {what}");
        let mut arg = |max: i64| {
            let v = words.next().and_then(|a| a.parse::<i64>().ok());
            v.filter(|v| (0..=max).contains(v))
                .ok_or_else(|| at(&format!("needs a number from 0 to {max}")))
        };
        let (inst, pops, pushes) = match word {
            "push" => (Inst::Push(arg(i64::MAX)?), 0, 1),
            "get" => (Inst::Get(arg(3)? as usize), 0, 1),
            "set" => (Inst::Set(arg(3)? as usize), 1, 0),
            "add" => (Inst::Add, 2, 1),
            "sub" => (Inst::Sub, 2, 1),
            "mul" => (Inst::Mul, 2, 1),
            "lt" => (Inst::Lt, 2, 1),
            "print" => (Inst::Print, 1, 0),
            "while" => (Inst::While { test_end: 0 }, 0, 0),
            "do" => (Inst::Do { end: 0 }, 1, 0),
            "if" => (Inst::If { end: 0 }, 1, 0),
            "end" => (Inst::End { start: None }, 0, 0),
            w => return Err(format!("instruction {pc}: unknown word {w:?}")),
        };
        depth = depth
            .checked_sub(pops)
            .ok_or_else(|| at("stack underflow"))?
            + pushes;
        if depth > MAX_STACK {
            return Err(at("stack deeper than 4"));
        }
        let merges = matches!(inst, Inst::While { .. } | Inst::Do { .. } | Inst::If { .. });
        if (merges || matches!(inst, Inst::End { .. })) && depth != 0 {
            return Err(at("the stack must be empty here"));
        }
        match inst {
            Inst::While { .. } | Inst::If { .. } => open.push(pc),
            Inst::Do { .. }
                if matches!(open.last().map(|&o| prog[o]), Some(Inst::While { .. })) =>
            {
                let w = open[open.len() - 1];
                prog[w] = Inst::While { test_end: pc };
                open.push(pc)
            }
            Inst::Do { .. } => return Err(at("`do` without `while`")),
            Inst::End { .. } => {
                let o = open.pop().ok_or_else(|| at("`end` closes nothing"))?;
                let start = match prog[o] {
                    Inst::Do { .. } => {
                        prog[o] = Inst::Do { end: pc };
                        open.pop()
                    }
                    Inst::If { .. } => {
                        prog[o] = Inst::If { end: pc };
                        None
                    }
                    _ => return Err(at("`while` without `do`")),
                };
                prog.push(Inst::End { start });
                continue;
            }
            _ => {}
        }
        prog.push(inst);
    }
    match open.last() {
        Some(&o) => Err(format!("instruction {o}: not closed")),
        None => Ok(prog),
    }
}

/// The interpreter's state: where it is, the locals, the stack.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    pc: usize,
    locals: [i64; LOCALS],
    stack: Vec<i64>,
}

/// Runs from `st` to the end. `taken[pc]` counts the `if`s whose body ran:
/// the profile the compiler speculates on.
fn interpret(
    prog: &[Inst],
    st: &mut State,
    out: &mut Vec<i64>,
    taken: &mut [u32],
) -> Result<(), String> {
    while let Some(&inst) = prog.get(st.pc) {
        let mut next = st.pc + 1;
        let mut pop = || st.stack.pop().ok_or("stack underflow");
        match inst {
            Inst::Push(n) => st.stack.push(n),
            Inst::Get(k) => st.stack.push(st.locals[k]),
            Inst::Set(k) => st.locals[k] = pop()?,
            Inst::Add | Inst::Sub | Inst::Mul | Inst::Lt => {
                let (b, a) = (pop()?, pop()?);
                st.stack.push(match inst {
                    Inst::Add => a.wrapping_add(b),
                    Inst::Sub => a.wrapping_sub(b),
                    Inst::Mul => a.wrapping_mul(b),
                    _ => i64::from(a < b),
                });
            }
            Inst::Print => {
                let v = pop()?;
                if v < 0 {
                    return Err(format!("instruction {}: negative output {v}", st.pc));
                }
                out.push(v);
            }
            Inst::While { .. } => {}
            Inst::Do { end } | Inst::If { end } => {
                if pop()? == 0 {
                    next = end + 1;
                } else if let Inst::If { .. } = inst {
                    taken[st.pc] += 1;
                }
            }
            Inst::End { start } => next = start.map_or(next, |w| w + 1),
        }
        st.pc = next;
    }
    Ok(())
}

/// The context the compiled code works on: the locals in and out, where
/// `print` writes, the deopt buffer.
#[repr(C)]
struct Context {
    locals: [i64; LOCALS],
    out: *mut Vec<i64>,
    deopt: [i64; SLOTS],
}

const OFF_LOCALS: i32 = 0;
const OFF_DEOPT: i32 = 40;

/// `print`: 0, or 1 for a negative value (the code then returns `FAILED`).
extern "C" fn host_print(ctx: *mut Context, v: i64) -> i32 {
    if v < 0 {
        return 1;
    }
    // SAFETY: compiled code passes the context `run` gave it, whose `out`
    // points to a vector `run` holds for the whole call.
    unsafe { (*(*ctx).out).push(v) };
    0
}

/// The builder's state along the control flow.
#[derive(Clone)]
struct Flow {
    ctrl: NodeId,
    mem: NodeId,
    locals: [NodeId; LOCALS],
}

/// Builds `prog` as one graph, `extern "C" fn(*mut Context) -> u32`.
/// The stack exists only here: each entry is the node of its value.
struct Builder<'p> {
    prog: &'p [Inst],
    g: Graph,
    ctx: NodeId,
    sites: Vec<Site>,
    returns: Vec<NodeId>,
}

type BlockResult = Result<(Flow, Vec<NodeId>), vssa::GraphError>;

impl Builder<'_> {
    /// Instructions `pc..to`, whole statements; the values left on the stack.
    fn block(&mut self, mut pc: usize, to: usize, mut f: Flow) -> BlockResult {
        let mut stack: Vec<NodeId> = Vec::new();
        while pc < to {
            let mut pop = || stack.pop().expect("the parser checked the stack");
            match self.prog[pc] {
                Inst::Push(n) => stack.push(self.g.iconst(Type::I64, n)?),
                Inst::Get(k) => stack.push(f.locals[k]),
                Inst::Set(k) => f.locals[k] = pop(),
                op @ (Inst::Add | Inst::Sub | Inst::Mul | Inst::Lt) => {
                    let (b, a) = (pop(), pop());
                    let v = match op {
                        Inst::Add => self.g.add(a, b)?,
                        Inst::Sub => self.g.sub(a, b)?,
                        Inst::Mul => self.g.bin(BinOp::Mul, a, b)?,
                        _ => {
                            let lt = self.g.cmp(CmpOp::Slt, a, b)?;
                            self.g.conv(ConvOp::Uext, Type::I64, lt)?
                        }
                    };
                    stack.push(v);
                }
                Inst::Print => {
                    let v = pop();
                    let (mem, r) =
                        self.g
                            .call(f.ctrl, f.mem, 0, &[self.ctx, v], Some(Type::I32))?;
                    f.mem = mem;
                    // A failed call returns FAILED; the code goes on otherwise.
                    let (failed, ok) = self.g.branch(f.ctrl, r.expect("a result"))?;
                    let code = self.g.iconst(Type::I32, i64::from(FAILED))?;
                    self.returns.push(self.g.ret(failed, f.mem, code)?);
                    f.ctrl = ok;
                }
                Inst::While { test_end } => {
                    let Inst::Do { end } = self.prog[test_end] else {
                        unreachable!("the parser pairs them")
                    };
                    f = self.while_loop(pc, test_end, end, f)?;
                    pc = end;
                }
                Inst::If { end } => {
                    let cond = pop();
                    f = self.if_statement(pc, end, cond, f)?;
                    pc = end;
                }
                Inst::Do { .. } | Inst::End { .. } => unreachable!("blocks end before"),
            }
            pc += 1;
        }
        Ok((f, stack))
    }

    /// `while` at `pc`, `do` at `test_end`, `end` at `end`: a loop header
    /// with a phi per local and one for memory, the test, the body, the
    /// back edge; the loop leaves from the test.
    fn while_loop(
        &mut self,
        pc: usize,
        test_end: usize,
        end: usize,
        f: Flow,
    ) -> Result<Flow, vssa::GraphError> {
        let key = pc as u64;
        let header = self.g.loop_header(key, f.ctrl)?;
        let mem = self.g.loop_phi(header, key << 8 | 1, Type::Mem, f.mem)?;
        let mut locals = f.locals;
        for (k, l) in locals.iter_mut().enumerate() {
            *l = self
                .g
                .loop_phi(header, key << 8 | (k as u64 + 2), Type::I64, *l)?;
        }
        let top = Flow {
            ctrl: header,
            mem,
            locals,
        };
        let (tested, test) = self.block(pc + 1, test_end, top)?;
        let (body, exit) = self.g.branch(tested.ctrl, test[0])?;
        let (back, _) = self.block(
            test_end + 1,
            end,
            Flow {
                ctrl: body,
                ..tested.clone()
            },
        )?;
        self.g.set_back_input(header, back.ctrl)?;
        self.g.set_back_input(mem, back.mem)?;
        for (phi, v) in locals.iter().zip(back.locals) {
            self.g.set_back_input(*phi, v)?;
        }
        Ok(Flow {
            ctrl: exit,
            ..tested
        })
    }

    /// `if` at `pc` … `end` at `end` on `cond`: a speculation site. Its
    /// frame is the state before the test — the locals, and `cond` on the
    /// stack — so that the interpreter resumes at the `if` itself.
    fn if_statement(
        &mut self,
        pc: usize,
        end: usize,
        cond: NodeId,
        f: Flow,
    ) -> Result<Flow, vssa::GraphError> {
        let mut slots = f.locals.to_vec();
        slots.push(cond);
        let frame = self.g.frame_state(pc as u64, f.mem, &slots)?;
        let (then, skip) = self.g.branch(f.ctrl, cond)?;
        let branch = self.g.input(then, 0);
        let (body, _) = self.block(
            pc + 1,
            end,
            Flow {
                ctrl: then,
                ..f.clone()
            },
        )?;
        // The side that skips the body joins as the merge's own input: the
        // shape `speculate_never_taken` turns into a guard.
        let merge = self.g.region(&[body.ctrl, skip])?;
        let mem = self.g.phi(merge, Type::Mem, &[body.mem, f.mem])?;
        let mut locals = f.locals;
        for (k, l) in locals.iter_mut().enumerate() {
            *l = self.g.phi(merge, Type::I64, &[body.locals[k], *l])?;
        }
        let site = BranchSite {
            branch,
            taken: 1,
            merge,
            frame,
            reason: REASON_IF,
        };
        self.sites.push(Site {
            branch: site,
            label: pc,
        });
        Ok(Flow {
            ctrl: merge,
            mem,
            locals,
        })
    }
}

/// The guest: one unit, the whole program.
struct Stack<'p> {
    prog: &'p [Inst],
}

impl Guest for Stack<'_> {
    type Unit = ();
    type Error = std::io::Error;

    fn build(&self, _unit: ()) -> Result<Built, vssa_jit::GuestFailure> {
        let mut g = Graph::new();
        let e = g.entry()?;
        let ctx = g.param(e.start, 0, Type::Ptr)?;
        let mut locals = [ctx; LOCALS];
        for (k, l) in locals.iter_mut().enumerate() {
            *l = g.load(e.ctrl, e.mem, ctx, OFF_LOCALS + 8 * k as i32, Type::I64)?;
        }
        let mut b = Builder {
            prog: self.prog,
            g,
            ctx,
            sites: Vec::new(),
            returns: Vec::new(),
        };
        let flow = Flow {
            ctrl: e.ctrl,
            mem: e.mem,
            locals,
        };
        let (f, _) = b.block(0, self.prog.len(), flow)?;
        let mut mem = f.mem;
        for (k, &l) in f.locals.iter().enumerate() {
            mem = b.g.store(f.ctrl, mem, ctx, OFF_LOCALS + 8 * k as i32, l)?;
        }
        let done = b.g.iconst(Type::I32, i64::from(DONE))?;
        let ret = b.g.ret(f.ctrl, mem, done)?;
        b.returns.push(ret);
        b.g.finish(&b.returns)?;
        Ok(Built {
            graph: b.g,
            ctx,
            sites: b.sites,
        })
    }

    fn size(&self, _unit: ()) -> vssa_jit::UnitSize {
        vssa_jit::UnitSize {
            insts: self.prog.len(),
            weight: self.prog.len(),
        }
    }

    fn source_key(&self, _unit: ()) -> Option<vssa::Addr> {
        None
    }

    fn hosts(&self) -> Vec<HostFn> {
        let print = host_print as *const u8;
        vec![HostFn::new(
            "print",
            print,
            &[Type::Ptr, Type::I64],
            Some(Type::I32),
        )]
    }

    fn deopt_abi(&self, ctx: NodeId) -> DeoptAbi {
        DeoptAbi {
            ctx,
            buffer_offset: OFF_DEOPT,
            capacity: SLOTS,
            first_exit: i64::from(FIRST_EXIT),
            exit_type: Type::I32,
        }
    }

    fn error_exit(&self) -> Option<u32> {
        Some(FAILED)
    }
}

/// How a compiled run ended.
#[derive(Debug, PartialEq)]
enum Ran {
    Done,
    Failed,
    /// Deoptimized at exit `index`; the interpreter finished the program.
    Deopt {
        index: usize,
        at: State,
    },
}

/// Runs `code` from the program's start, finishing in the interpreter
/// after a deoptimization.
fn run(
    prog: &[Inst],
    code: &vssa_jit::UnitCode,
    out: &mut Vec<i64>,
) -> Result<(Ran, State), String> {
    let mut ctx = Context {
        locals: [0; LOCALS],
        out,
        deopt: [0; SLOTS],
    };
    // SAFETY: `code` was built by `Stack` for `Context`'s layout, and
    // `ctx.out` points to a vector alive for the call.
    let exit = unsafe { code.call::<_, std::io::Error>(&mut ctx, |c| &c.deopt) };
    let locals = ctx.locals;
    match exit.map_err(|e| e.to_string())? {
        Exit::Returned(_) => Ok((
            Ran::Done,
            State {
                pc: prog.len(),
                locals,
                stack: vec![],
            },
        )),
        Exit::GuestError => Ok((Ran::Failed, State::default())),
        Exit::Deopt { index, frame } => {
            // The frame: resume pc, then the locals and the stack.
            let mut st = State {
                pc: frame.exit.resume as usize,
                locals: frame.values[..LOCALS].try_into().unwrap(),
                stack: frame.values[LOCALS..].to_vec(),
            };
            let at = st.clone();
            interpret(prog, &mut st, out, &mut vec![0; prog.len()])?;
            Ok((Ran::Deopt { index, at }, st))
        }
    }
}

/// Sums 0..n into local 1, printing i when the `if` says so: `limit < i`.
fn program(n: i64, limit: i64) -> String {
    format!(
        "push 0 set 0  push 0 set 1
         while get 0 push {n} lt do
           get 1 get 0 add set 1
           push {limit} get 0 lt if get 0 print end
           get 0 push 1 add set 0
         end
         get 1 print"
    )
}

fn reference(prog: &[Inst]) -> (Vec<i64>, State, Vec<u32>) {
    let mut st = State::default();
    let mut out = Vec::new();
    let mut taken = vec![0; prog.len()];
    interpret(prog, &mut st, &mut out, &mut taken).unwrap();
    (out, st, taken)
}

/// The builder addresses the context by these offsets.
#[test]
fn context_offsets_are_the_builders() {
    use std::mem::offset_of;
    assert_eq!(offset_of!(Context, locals), OFF_LOCALS as usize);
    assert_eq!(offset_of!(Context, deopt), OFF_DEOPT as usize);
}

#[test]
fn parse_errors_name_the_instruction() {
    assert!(parse("push 1 push 2 add print").is_ok());
    let e = parse("push 1 pop").unwrap_err();
    assert!(e.contains("instruction 1") && e.contains("pop"), "{e}");
    let e = parse("push 1 set 7").unwrap_err();
    assert!(
        e.contains("instruction 1 (set)") && e.contains("0 to 3"),
        "{e}"
    );
    assert!(parse("add").unwrap_err().contains("underflow"));
    assert!(parse("push 1 while").unwrap_err().contains("empty"));
    assert!(parse("while push 1 do").unwrap_err().contains("not closed"));
    assert!(parse("end").unwrap_err().contains("closes nothing"));
}

/// The whole story: profile, speculate, deoptimize exactly, refute,
/// recompile from the patch log, run without deoptimizing.
#[test]
fn a_failed_speculation_deoptimizes_into_the_interpreter_and_is_refuted() {
    // Profiling: the `if` is never taken when n stays below the limit.
    let profiled = parse(&program(20, 30)).unwrap();
    let (_, _, taken) = reference(&profiled);
    let if_pc = profiled
        .iter()
        .position(|i| matches!(i, Inst::If { .. }))
        .unwrap();
    assert_eq!(taken[if_pc], 0);

    // The real run goes past the limit: compile with the profile.
    let prog = parse(&program(40, 30)).unwrap();
    let (want, want_state, _) = reference(&prog);
    let never = |label: usize| taken[label] == 0;
    let cfg = JitConfig {
        optimize: true,
        verify: true,
        ..JitConfig::default()
    };
    let guest = Stack { prog: &prog };
    let mut c = UnitCompiler::new::<(), std::io::Error>(&cfg, 1 << 20, &guest.hosts()).unwrap();
    let empty = LogBook::new();
    let req = UnitRequest {
        unit: (),
        speculate: Some(&never),
        book: &empty,
        name: "stack_main",
    };
    let mut report = JitReport::default();
    let first = c.compile(&guest, &req, &mut report).unwrap();
    assert_eq!(report.speculated, 1, "{report:?}");
    let spec = first
        .exits
        .exits
        .iter()
        .position(|e| e.reason == REASON_IF)
        .expect("the if is a guard");

    // The guard fails at i = 31: the interpreter resumes at the `if`, with
    // the locals and the test's value on the stack, and finishes.
    let mut out = Vec::new();
    let (ran, end) = run(&prog, &first, &mut out).unwrap();
    let at = State {
        pc: if_pc,
        locals: [31, (0..=31).sum(), 0, 0],
        stack: vec![1],
    };
    assert_eq!(ran, Ran::Deopt { index: spec, at });
    assert_eq!((out, end), (want.clone(), want_state.clone()));

    // Refute the guard: the recompilation replays the patch log up to the
    // speculation and keeps the general code.
    let mut book = LogBook::new();
    let mut log = first.log.clone().unwrap();
    log.refute(first.exits.exits[spec].guard);
    book.insert(log);
    let mut report = JitReport::default();
    let again = c
        .compile(&guest, &UnitRequest { book: &book, ..req }, &mut report)
        .unwrap();
    assert!(
        report.patches_replayed > 0 && report.patches_refuted > 0,
        "{report:?}"
    );
    assert_eq!(report.speculated, 0);
    assert!(again.exits.is_empty());
    let mut out = Vec::new();
    let (ran, end) = run(&prog, &again, &mut out).unwrap();
    assert_eq!((ran, out, end), (Ran::Done, want, want_state));
}

/// Without speculation the code runs every program of a family like the
/// interpreter, and a host call's failure is the guest's error.
#[test]
fn compiled_code_agrees_with_the_interpreter() {
    let cfg = JitConfig {
        optimize: true,
        verify: true,
        ..JitConfig::default()
    };
    let mut c = UnitCompiler::new::<(), std::io::Error>(&cfg, 0, &[]).unwrap();
    for (n, limit) in [(0, 0), (1, 0), (5, 2), (17, 16), (100, 50)] {
        let prog = parse(&program(n, limit)).unwrap();
        let (want, want_state, _) = reference(&prog);
        let guest = Stack { prog: &prog };
        let req = UnitRequest {
            unit: (),
            speculate: None,
            book: &LogBook::new(),
            name: "stack_main",
        };
        let code = c.compile(&guest, &req, &mut JitReport::default()).unwrap();
        assert!(code.exits.is_empty());
        let mut out = Vec::new();
        let (ran, end) = run(&prog, &code, &mut out).unwrap();
        assert_eq!((ran, out, end), (Ran::Done, want, want_state), "n {n}");
    }
    let prog = parse("push 3 print push 0 push 2 sub print push 9 print").unwrap();
    let guest = Stack { prog: &prog };
    let req = UnitRequest {
        unit: (),
        speculate: None,
        book: &LogBook::new(),
        name: "failing",
    };
    let code = c.compile(&guest, &req, &mut JitReport::default()).unwrap();
    let mut out = Vec::new();
    let (ran, _) = run(&prog, &code, &mut out).unwrap();
    assert_eq!((ran, out), (Ran::Failed, vec![3]));
}
