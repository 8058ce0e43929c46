//! The Lua 5.4 guest of vssa: source → syntax tree → register bytecode →
//! interpreter, with a tracing collector and (part of) the standard
//! library. This is the interpreter tier; the JIT tier on the vssa middle
//! end will compile hot functions from the same bytecode and deoptimize
//! back into this interpreter (it can resume at any instruction).
//!
//! Pipeline: [`lexer`] → [`parser`] (to [`ast`]) → [`compiler`] (to
//! [`bytecode`]) → [`vm`] (values in [`value`], objects in the [`heap`]
//! arenas, tables in [`table`], library in [`stdlib`], [`format`],
//! [`pattern`], [`utf8lib`]). See `docs/lua.md` for the design and what is not done.

#![forbid(unsafe_code)]

pub mod ast;
pub mod bytecode;
pub mod compiler;
pub mod coroutine;
pub mod debuglib;
pub mod dump;
pub mod format;
pub mod heap;
pub mod iolib;
pub mod lexer;
pub mod limits;
pub mod oslib;
pub mod parser;
pub mod pattern;
pub mod stdlib;
pub mod strpack;
pub mod table;
pub mod utf8lib;
pub mod value;
pub mod vm;

use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

pub use limits::{Limits, RunStats};
pub use value::Value;
pub use vm::{LuaError, Vm};

/// Compiles a chunk whose `_ENV` is the globals table; a syntax error is
/// `name:LINE: message` (lua5.4's form).
pub fn compile(
    heap: &mut heap::Heap,
    src: &[u8],
    name: &str,
) -> Result<Rc<bytecode::Proto>, String> {
    compile_env(heap, src, name, &format!("@{name}"), false)
}

/// Compiles a chunk shown in messages as `name`, loaded as `chunk_name`
/// (lua5.4's chunkname: `@file`, `=name` or the text itself); `own_env`:
/// it will run with an environment other than the globals table
/// (`load`'s `env`).
pub fn compile_env(
    heap: &mut heap::Heap,
    src: &[u8],
    name: &str,
    chunk_name: &str,
    own_env: bool,
) -> Result<Rc<bytecode::Proto>, String> {
    let chunk = parser::parse_chunk(src).map_err(|e| format!("{name}:{}: {}", e.line, e.msg))?;
    let env_dynamic = own_env || src.windows(4).any(|w| w == b"_ENV");
    compiler::compile_chunk(
        heap,
        &chunk,
        Rc::from(name),
        Rc::from(chunk_name),
        env_dynamic,
        Some(Rc::from(src)),
    )
    .map_err(|e| format!("{name}:{}: {}", e.line, e.msg))
}

/// A file's text as lua5.4's `luaL_loadfile` reads it: a first line
/// starting with `#` (a shebang) is dropped, its newline kept so line
/// numbers stay. Strings given to `load` are taken as they are.
pub fn without_shebang(src: &[u8]) -> &[u8] {
    if src.first() == Some(&b'#') {
        let end = src.iter().position(|&c| c == b'\n').unwrap_or(src.len());
        &src[end..]
    } else {
        src
    }
}

/// How a run ended other than normally.
#[derive(Debug, PartialEq, Eq)]
pub enum RunError {
    /// A syntax error (`prog.lua:LINE: message near 'token'`).
    Syntax(String),
    /// An uncaught Lua error, as lua5.4 prints it (`prog.lua:LINE: message`).
    Runtime(String),
    /// `os.exit(code)`.
    Exit(i32),
}

/// Runs `src` as the main chunk named `name`, with `args` as `arg` and
/// `...`, writing output to `out`.
pub fn run_source(
    src: &[u8],
    name: &str,
    args: &[String],
    out: Box<dyn Write>,
) -> Result<(), RunError> {
    run_source_with(src, name, args, out, &Limits::default()).0
}

/// [`run_source`] under `limits`, with what the run measured.
pub fn run_source_with(
    src: &[u8],
    name: &str,
    args: &[String],
    out: Box<dyn Write>,
    limits: &Limits,
) -> (Result<(), RunError>, RunStats) {
    let mut vm = Vm::new(out);
    vm.set_limits(limits);
    let mut stats = RunStats {
        source_bytes: src.len(),
        ..RunStats::default()
    };
    let r = run_measured(&mut vm, src, name, args, &mut stats);
    if matches!(r, Err(RunError::Runtime(_))) {
        stats.traceback = vm.error_trace.take().map(|(_, t)| t);
    }
    let _ = vm.out.flush();
    vm.heap.note_peak();
    stats.instructions = vm.steps_executed();
    stats.gc_cycles = vm.heap.gc.collections;
    stats.peak_heap_bytes = vm.heap.mem.peak;
    (r, stats)
}

/// Runs a chunk in an existing interpreter.
pub fn run_in(vm: &mut Vm, src: &[u8], name: &str, args: &[String]) -> Result<(), RunError> {
    run_measured(vm, src, name, args, &mut RunStats::default())
}

/// [`run_in`], timing the phases into `stats`.
fn run_measured(
    vm: &mut Vm,
    src: &[u8],
    name: &str,
    args: &[String],
    stats: &mut RunStats,
) -> Result<(), RunError> {
    let t = Instant::now();
    let src = without_shebang(src);
    let chunk = parser::parse_chunk(src)
        .map_err(|e| RunError::Syntax(format!("{name}:{}: {}", e.line, e.msg)))?;
    stats.parse = t.elapsed();
    let t = Instant::now();
    let env_dynamic = src.windows(4).any(|w| w == b"_ENV");
    let chunk_name: Rc<str> = Rc::from(format!("@{name}"));
    let proto = compiler::compile_chunk(
        &mut vm.heap,
        &chunk,
        Rc::from(name),
        chunk_name,
        env_dynamic,
        Some(Rc::from(src)),
    )
    .map_err(|e| RunError::Syntax(format!("{name}:{}: {}", e.line, e.msg)))?;
    drop(chunk);
    stats.compile = t.elapsed();
    let (functions, code_len) = proto_sizes(&proto);
    stats.functions = functions;
    stats.code_len = code_len;
    let t = Instant::now();
    let r = run_proto(vm, proto, name, args);
    stats.run = t.elapsed();
    r
}

/// Prototypes and instructions in `p` and its nested functions.
fn proto_sizes(p: &bytecode::Proto) -> (usize, usize) {
    let mut work = vec![p];
    let (mut n, mut len) = (0, 0);
    while let Some(p) = work.pop() {
        n += 1;
        len += p.code.len();
        work.extend(p.protos.iter().map(|c| &**c));
    }
    (n, len)
}

/// Runs a compiled main chunk.
fn run_proto(
    vm: &mut Vm,
    proto: Rc<bytecode::Proto>,
    name: &str,
    args: &[String],
) -> Result<(), RunError> {
    // arg[0] is the script, arg[1..] its arguments.
    let mut t = table::Table::default();
    let script = vm.heap.str_value(name.as_bytes());
    t.set_int(0, script);
    let mut argv = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let v = vm.heap.str_value(a.as_bytes());
        t.set_int(i as i64 + 1, v);
        argv.push(v);
    }
    let t = vm.heap.new_table(t);
    let k = vm.heap.str_value(b"arg");
    let g = vm.globals;
    vm.heap.table_mut(g).set(k, Value::Table(t));
    match vm.run_main(proto, &argv) {
        Ok(()) => Ok(()),
        // A limit stopped the run (no pcall caught it).
        Err(_) if vm.halt.is_some() => {
            vm.error_trace = None;
            Err(RunError::Runtime(vm.halt.take().unwrap_or_default()))
        }
        Err(LuaError {
            exit: Some(code), ..
        }) => Err(RunError::Exit(code)),
        Err(e) => {
            // The traceback noted while the error's frames were there; an
            // error no loop saw (out of memory before the chunk ran) has
            // lua.c's outermost line only. Out of memory gets none, as in
            // lua5.4 (its message handler does not run).
            let noted = vm.error_trace.take().filter(|(v, _)| v.raw_eq(e.value));
            let text = error_text(vm, e.value);
            vm.error_trace = if text == "not enough memory" {
                None
            } else {
                Some((
                    e.value,
                    noted.map_or_else(|| "stack traceback:\n\t[C]: in ?".to_string(), |(_, t)| t),
                ))
            };
            Err(RunError::Runtime(text))
        }
    }
}

/// The text lua5.4 prints for an uncaught error value.
pub fn error_text(vm: &mut Vm, v: Value) -> String {
    match v {
        Value::Str(_) | Value::Int(_) | Value::Float(_) => {
            let mut b = Vec::new();
            vm.concat_piece(v, &mut b);
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => {
            if !matches!(vm.metamethod(v, vm::Event::ToString), Value::Nil) {
                if let Ok(s) = stdlib::tostring(vm, v) {
                    return String::from_utf8_lossy(&s).into_owned();
                }
            }
            format!("(error object is a {} value)", v.type_name())
        }
    }
}

/// Runs the script `src` read from the file `name` (the CLI's entry point,
/// which reads the file within its size bound) with stdout as output,
/// under `limits`: the process exit code, or the error message lua5.4
/// would print (a runtime error's with its `stack traceback:` block); and
/// what the run measured.
pub fn run_program(
    src: &[u8],
    name: &str,
    args: &[String],
    limits: &Limits,
) -> (Result<i32, String>, RunStats) {
    let out = Box::new(std::io::BufWriter::with_capacity(
        1 << 16,
        std::io::stdout(),
    ));
    let (r, stats) = run_source_with(src, name, args, out, limits);
    let r = match r {
        Ok(()) => Ok(0),
        Err(RunError::Exit(code)) => Ok(code),
        Err(RunError::Syntax(m)) => Err(m),
        Err(RunError::Runtime(m)) => match &stats.traceback {
            Some(t) => Err(format!("{m}\n{t}")),
            None => Err(m),
        },
    };
    (r, stats)
}

/// An output sink that shares its bytes (for tests and fuzzers that read
/// what a run printed).
#[derive(Clone, Default)]
pub struct SharedBuf(pub Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
