//! The `vssa` command: runs Brainfuck programs through the vssa pipeline.
//!
//! `vssa run [FILE]` runs FILE (or the bundled demo) with stdin and stdout.
//! It exits 0 on success and 1 with a one-line error on stderr otherwise;
//! usage errors exit 2.

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use vssa_bf::runtime::JitError;
use vssa_bf::runtime::{self, JitConfig, JitReport};
use vssa_bf::tiered::{self, TieredConfig, TieredReport};
use vssa_bf::{EofMode, Io, RunError, RunOptions, Tape, DEFAULT_TAPE_LIMIT, MIN_TAPE_LIMIT};
use vssa_deopt::{CompileBudget, RecompilePolicy};

/// `eprintln!` that never panics: when stderr cannot be written (a closed
/// pipe, a full disk) the line is dropped, and the exit code still tells.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see [`note!`]).
macro_rules! note_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod bench_lua;
mod bench_recompile;
mod bench_report;
mod bench_warm;
mod cache_cmd;
mod log_cmd;
mod plot;

/// The demo program `vssa run` runs when no FILE is given.
const DEMO: &str = include_str!("../demo/demo.b");

/// The largest program `vssa run` reads unless `--max-program-bytes` says
/// otherwise. The interpreter needs about 32 bytes per instruction and a
/// program has at most one instruction per byte, so this bounds memory
/// too; a device or an endless stream as the program fails at this size.
const DEFAULT_MAX_PROGRAM_BYTES: u64 = 64 << 20;

#[derive(Parser)]
#[command(
    name = "vssa",
    version,
    about = "A versioned sea-of-nodes JIT middle-end, driven by a Brainfuck guest"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Brainfuck or Lua program (the bundled demo when FILE is omitted).
    Run(RunArgs),
    /// Inspect patch logs (`show`, `diff`).
    Log(log_cmd::LogArgs),
    /// The code cache beside a patch log (`stats`, `clear`).
    Cache(cache_cmd::CacheArgs),
    /// Benchmarks (`bf`: every engine against gcc -O2 on the corpus).
    Bench(bench::BenchArgs),
    /// Print a Brainfuck program translated to C (the benchmark's gcc anchor).
    TranslateC(TranslateCArgs),
}

#[derive(clap::Args)]
struct TranslateCArgs {
    /// The program.
    file: PathBuf,
    /// Also rewrite clear, copy/multiply and scan loops.
    #[arg(long)]
    idioms: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The program; omitted: the bundled demo.
    file: Option<PathBuf>,
    /// Arguments for a Lua program (its `arg` table and `...`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    script_args: Vec<String>,
    /// The guest language (default: by the file's extension, `.lua` is Lua).
    #[arg(long, value_enum)]
    lang: Option<Lang>,
    /// Which engine runs the program (default: tiered for Brainfuck,
    /// interp — the only one yet — for Lua).
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// Tiered engine: compile a loop once its body has been entered N times.
    #[arg(long, value_name = "N", default_value_t = vssa_bf::tiered::DEFAULT_HOT_LOOP)]
    hot_loop: u32,
    /// Tiered engine: give up a speculation (and recompile its loop) after
    /// it failed N times; 0 never recompiles.
    #[arg(long, value_name = "N", default_value_t = 1)]
    recompile_after: u32,
    /// Tiered engine: compile time allowed per second the program has run
    /// (`inf`: compile every hot loop at once). Default: 0.5 with a compile
    /// thread, 0.25 without.
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    compile_budget: Option<f64>,
    /// Tiered engine: compile on a thread of its own while the interpreter
    /// goes on (default: on when the machine has two cores or more).
    #[arg(long, value_name = "WHEN", value_enum)]
    compile_thread: Option<Toggle>,
    /// With `--stats`: also list every compiled loop.
    #[arg(short, long)]
    verbose: bool,
    /// Print statistics on stderr when done (one JSON object).
    #[arg(long, value_enum)]
    stats: Option<StatsFormat>,
    /// Write the graph as Graphviz DOT after each phase into DIR.
    #[arg(long, value_name = "DIR")]
    dump_dot: Option<PathBuf>,
    /// Write the Cranelift IR of the compiled program to FILE.
    #[arg(long, value_name = "FILE")]
    dump_clif: Option<PathBuf>,
    /// Stop with an error after N steps (Brainfuck: each `[` or `]` test;
    /// Lua: each bytecode instruction and pattern-matching step).
    #[arg(long, value_name = "N")]
    max_steps: Option<u64>,
    /// Lua: the heap's size limit in bytes (strings, tables, closures, the
    /// stack); an allocation past it is the Lua error "not enough memory".
    #[arg(long, value_name = "BYTES", default_value_t = vssa_lua::limits::DEFAULT_MAX_MEMORY)]
    max_memory: usize,
    /// What `,` stores at end of input.
    #[arg(long, value_enum, default_value_t = Eof::Unchanged)]
    eof: Eof,
    /// Tape size limit in cells (the tape grows on demand up to it; at
    /// least 30000).
    #[arg(long, value_name = "CELLS", default_value_t = DEFAULT_TAPE_LIMIT,
          value_parser = parse_tape_limit)]
    tape_limit: usize,
    /// The largest program file read, in bytes (a larger one, a device or
    /// an endless stream is an error).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_PROGRAM_BYTES)]
    max_program_bytes: u64,
    /// Skip the optimizer (construction-time peepholes still run).
    #[arg(long)]
    no_opt: bool,
    /// Run the graph verifier after each phase and Cranelift's verifier.
    #[arg(long)]
    verify: bool,
    /// Replay the optimizer's patches from FILE if it exists (instead of
    /// optimizing), then save the updated log there.
    #[arg(long, value_name = "FILE")]
    patch_log: Option<PathBuf>,
    /// With --patch-log FILE: keep compiled code in FILE.code, at most
    /// BYTES of it (least recently used evicted); 0: no code cache file.
    #[arg(long, value_name = "BYTES", default_value_t = vssa_backend::stored::DEFAULT_STORE_BYTES)]
    code_cache_bytes: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    /// The reference interpreter.
    Interp,
    /// The whole program compiled to native code before it runs.
    Jit,
    /// The interpreter, compiling hot loops, speculating on the profile and
    /// deoptimizing when a speculation fails.
    Tiered,
    /// Benchmark baseline: straight to Cranelift, no vssa middle-end.
    #[value(hide = true)]
    Naive,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    Bf,
    Lua,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatsFormat {
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Toggle {
    On,
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Eof {
    Unchanged,
    #[value(name = "0")]
    Zero,
    #[value(name = "255")]
    MaxByte,
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Log(args) => log_cmd::run(args),
        Command::Cache(args) => cache_cmd::run(args),
        Command::Bench(args) => bench::run(args),
        Command::TranslateC(args) => translate_c(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            note!("vssa: {msg}");
            ExitCode::from(1)
        }
    }
}

/// `--tape-limit`: a number of cells no smaller than the minimum, checked
/// while parsing the command line, so every engine refuses it the same way
/// (a usage error, exit 2).
fn parse_tape_limit(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if n < MIN_TAPE_LIMIT {
        return Err(format!(
            "{n} cells is below the minimum of {MIN_TAPE_LIMIT}"
        ));
    }
    Ok(n)
}

/// The default `--compile-budget` when compiling stops the program: what a
/// program whose every compilation is wasted loses (see docs/deopt.md).
const INLINE_COMPILE_SHARE: f64 = 0.25;
/// The default `--compile-budget` with a compile thread: the program does
/// not wait for it, so the share bounds the thread's CPU time — what the
/// program loses when no core is spare after all (a loaded machine).
const THREAD_COMPILE_SHARE: f64 = 0.5;

/// `--compile-budget`: a share of run time, 0 or more (`inf` allowed).
fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x >= 0.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a share of run time (0 or more, or inf)"
        )),
    }
}

/// Reads the program at `path`, at most `max` bytes of it: a larger file,
/// a device or an endless stream is an error, not unbounded memory.
/// `cannot_open` words a file that cannot be opened (each guest says it
/// its own way: Lua as lua5.4 does, "cannot open").
fn read_program(path: &std::path::Path, max: u64, cannot_open: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let name = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{cannot_open} {name}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{name}: the program is larger than {max} bytes (see --max-program-bytes)"
        ));
    }
    Ok(bytes)
}

/// A run-time error as `FILE:LINE:COL (byte N): message`, or `FILE:
/// message` when no instruction is to blame: one format for every engine.
fn run_error(name: &str, e: &RunError) -> String {
    match e.pos {
        Some(_) => format!("{name}:{e}"),
        None => format!("{name}: {e}"),
    }
}

/// [`run_error`] for the compiled engines' errors.
fn jit_error(name: &str, e: &JitError) -> String {
    match e {
        JitError::Run(r) => run_error(name, r),
        other => format!("{name}: {other}"),
    }
}

/// Logging goes through `tracing`, off unless `VSSA_LOG` names a filter
/// (e.g. `VSSA_LOG=debug`).
fn init_logging() {
    if let Ok(filter) = std::env::var("VSSA_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The Lua guest: chosen by `--lang lua` or a `.lua` file; runs on the
/// Lua interpreter and exits with the program's `os.exit` code.
fn run_lua(args: &RunArgs) -> Result<bool, String> {
    let is_lua = match args.lang {
        Some(lang) => lang == Lang::Lua,
        None => args
            .file
            .as_ref()
            .is_some_and(|f| f.extension().is_some_and(|e| e == "lua")),
    };
    if !is_lua {
        if !args.script_args.is_empty() {
            return Err("program arguments are only for Lua programs".into());
        }
        return Ok(false);
    }
    if args.engine.is_some_and(|e| e != Engine::Interp) {
        note!("vssa: usage: Lua programs run on --engine interp only (no Lua JIT tier yet)");
        std::process::exit(2);
    }
    let file = args.file.as_ref().ok_or("usage: --lang lua needs a FILE")?;
    let name = file.display().to_string();
    let t = Instant::now();
    let src = read_program(file, args.max_program_bytes, "cannot open")?;
    let read_ms = ms(t.elapsed());
    let limits = vssa_lua::Limits {
        max_steps: args.max_steps,
        max_memory: args.max_memory,
    };
    let (r, stats) = vssa_lua::run_program(&src, &name, &args.script_args, &limits);
    if args.stats.is_some() {
        note!(
            "{}",
            lua_stats(&name, read_ms, &stats, &limits, args.verbose)
        );
    }
    let code = r?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(true)
}

/// `--stats json` of a Lua run: phase timings and counts.
fn lua_stats(
    name: &str,
    read_ms: f64,
    s: &vssa_lua::RunStats,
    limits: &vssa_lua::Limits,
    verbose: bool,
) -> serde_json::Value {
    let mut v = json!({
        "engine": "interp",
        "lang": "lua",
        "program": name,
        "source_bytes": s.source_bytes,
        "read_ms": read_ms,
        "parse_ms": ms(s.parse),
        "compile_ms": { "bytecode": ms(s.compile), "total": ms(s.compile) },
        "run_ms": ms(s.run),
        "instructions": s.instructions,
        "gc_cycles": s.gc_cycles,
        "peak_heap_bytes": s.peak_heap_bytes,
    });
    if verbose {
        v["functions"] = json!(s.functions);
        v["bytecode_len"] = json!(s.code_len);
        v["max_steps"] = json!(limits.max_steps);
        v["max_memory"] = json!(limits.max_memory);
    }
    v
}

fn run(args: RunArgs) -> Result<(), String> {
    if run_lua(&args)? {
        return Ok(());
    }
    let engine = args.engine.unwrap_or(Engine::Tiered);
    let (name, source) = match &args.file {
        Some(path) => {
            let bytes = read_program(path, args.max_program_bytes, "cannot read")?;
            (path.display().to_string(), bytes)
        }
        None => ("<demo>".to_string(), DEMO.as_bytes().to_vec()),
    };
    let t = Instant::now();
    let prog = Arc::new(vssa_bf::parse(&source).map_err(|e| format!("{name}:{e}"))?);
    let parse_ms = ms(t.elapsed());

    let opts = RunOptions {
        max_steps: args.max_steps,
        eof: match args.eof {
            Eof::Unchanged => EofMode::Unchanged,
            Eof::Zero => EofMode::Zero,
            Eof::MaxByte => EofMode::MaxByte,
        },
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut output = BufWriter::with_capacity(1 << 16, stdout.lock());

    let (outcome, stats) = match engine {
        Engine::Interp => {
            let t = Instant::now();
            let mut tape = Tape::new(args.tape_limit).map_err(|e| format!("{name}: {e}"))?;
            let mut io = Io::new(&mut input, &mut output);
            let r = vssa_bf::run(&prog, &mut tape, &mut io, &opts);
            let r = r.and_then(|s| io.finish().map(|()| s));
            let run_ms = ms(t.elapsed());
            let steps = r.as_ref().map(|s| s.steps).unwrap_or(0);
            let stats = json!({
                "engine": "interp",
                "program": name,
                "insts": prog.insts.len(),
                "parse_ms": parse_ms,
                "nodes_built": 0,
                "nodes_after_opt": 0,
                "compile_ms": { "total": 0.0 },
                "run_ms": run_ms,
                "steps": steps,
            });
            (r.map(|_| ()).map_err(|e| run_error(&name, &e)), stats)
        }
        Engine::Naive => {
            let mut io = Io::new(&mut input, &mut output);
            let (report, r) = vssa_bf::naive::run_naive(&prog, args.tape_limit, &mut io, &opts);
            let r = r.and_then(|()| io.finish().map_err(vssa_bf::naive::NaiveError::Run));
            let stats = json!({
                "engine": "naive",
                "program": name,
                "insts": prog.insts.len(),
                "parse_ms": parse_ms,
                "clif_insts": report.clif_insts,
                "code_bytes": report.code_size,
                "compile_ms": {
                    "lower": ms(report.lower),
                    "cranelift": ms(report.codegen),
                    "total": ms(report.compile()),
                },
                "run_ms": ms(report.run),
            });
            let r = r.map_err(|e| match e {
                vssa_bf::naive::NaiveError::Run(r) => run_error(&name, &r),
                other => format!("{name}: {other}"),
            });
            (r, stats)
        }
        Engine::Jit | Engine::Tiered => {
            let cfg = JitConfig {
                run: opts,
                optimize: !args.no_opt,
                verify: args.verify,
                dump_dot: args.dump_dot.clone(),
                capture_clif: args.dump_clif.is_some(),
                patch_log: patch_log_path(&args),
                code_store_bytes: args.code_cache_bytes,
            };
            let mut io = Io::new(&mut input, &mut output);
            let thread = match args.compile_thread {
                Some(t) => t == Toggle::On,
                None => tiered::spare_core(),
            };
            let tcfg = TieredConfig {
                jit: cfg.clone(),
                hot_loop: args.hot_loop,
                policy: RecompilePolicy::after(args.recompile_after),
                budget: CompileBudget::default().with_share(args.compile_budget.unwrap_or(
                    if thread {
                        THREAD_COMPILE_SHARE
                    } else {
                        INLINE_COMPILE_SHARE
                    },
                )),
                compile_thread: thread,
                ..TieredConfig::default()
            };
            let jit = if engine == Engine::Jit {
                match runtime::run_jit(&prog, args.tape_limit, &mut io, &cfg) {
                    // Too large to compile whole: nothing ran yet; the
                    // tiered engine compiles its loops instead.
                    (_, Err(JitError::TooLarge(_))) => None,
                    (report, r) => {
                        let stats = jit_stats("jit", &name, &prog, parse_ms, &report);
                        Some((report, r, stats))
                    }
                }
            } else {
                None
            };
            let (report, r, stats) = match jit {
                Some(done) => done,
                None => {
                    let (t, r) = tiered::run_tiered(&prog, args.tape_limit, &mut io, &tcfg);
                    let mut stats = tiered_stats(&name, &prog, parse_ms, &t, args.verbose);
                    if engine == Engine::Jit {
                        stats["engine"] = json!("jit");
                        stats["jit_fallback"] = json!("tiered");
                    }
                    (t.jit, r, stats)
                }
            };
            let r = r
                .and_then(|()| io.finish().map_err(JitError::Run))
                .map_err(|e| jit_error(&name, &e));
            for w in &report.patch_log_warnings {
                note!("vssa: warning: {w}");
            }
            if let (Some(path), Some(clif)) = (&args.dump_clif, &report.clif) {
                vssa_bf::fsutil::write_atomic(path, clif.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            (r, stats)
        }
    };
    if args.stats.is_some() {
        note!("{stats}");
    }
    // Every engine flushed through `Io::finish`, which reported a failure;
    // this one only empties the buffer of what an error left in it.
    let _ = output.flush();
    outcome
}

/// The `--patch-log` path, unless it names the program's own file (which
/// a save must never replace, even when it is empty): then a warning.
fn patch_log_path(args: &RunArgs) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let log = args.patch_log.as_ref()?;
    let id = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let same = args
        .file
        .as_deref()
        .and_then(id)
        .is_some_and(|f| id(log) == Some(f));
    if same {
        note!(
            "vssa: warning: {}: the patch log is the program itself: running without the patch log",
            log.display()
        );
        return None;
    }
    Some(log.clone())
}

/// `--stats json` of the tiered engine: the JIT's fields (over all
/// compilations) plus the tiers' own.
fn tiered_stats(
    name: &str,
    prog: &vssa_bf::Program,
    parse_ms: f64,
    t: &TieredReport,
    verbose: bool,
) -> serde_json::Value {
    let mut v = jit_stats("tiered", name, prog, parse_ms, &t.jit);
    v["run_ms"] = json!(ms(t.interp + t.native));
    v["interp_ms"] = json!(ms(t.interp));
    v["native_ms"] = json!(ms(t.native));
    v["steps"] = json!(t.steps);
    v["units_compiled"] = json!(t.units_compiled);
    v["deopts"] = json!(t.deopts);
    v["recompiles"] = json!(t.recompiles);
    v["recompile_ms"] = json!(ms(t.recompile));
    v["compiles_deferred"] = json!(t.compiles_deferred);
    v["hot_loop_final"] = json!(t.hot_loop);
    v["loops_too_large"] = json!(t.loops_too_large);
    v["speculated"] = json!(t.jit.speculated);
    if verbose {
        let units: Vec<serde_json::Value> = t
            .units
            .iter()
            .map(|u| {
                json!({
                    "open": u.open,
                    "at": prog.insts.get(u.open).map(|i| i.pos.to_string()),
                    "compiles": u.compiles,
                    "entries": u.entries,
                    "deopts": u.deopts,
                    "speculation_failures": u.speculation_failures,
                    "guards": u.guards,
                    "speculated": u.speculated,
                    "refuted": u.refuted,
                    "compile_ms": ms(u.compile),
                    "code_bytes": u.code_size,
                })
            })
            .collect();
        v["units"] = json!(units);
    }
    v
}

fn jit_stats(
    engine: &str,
    name: &str,
    prog: &vssa_bf::Program,
    parse_ms: f64,
    r: &JitReport,
) -> serde_json::Value {
    json!({
        "engine": engine,
        "program": name,
        "insts": prog.insts.len(),
        "parse_ms": parse_ms,
        "nodes_built": r.nodes_built,
        "build_requests": r.build_requests,
        "nodes_live_built": r.nodes_live_built,
        "nodes_after_opt": r.nodes_after_opt,
        "replacements": r.replacements,
        "blocks": r.blocks,
        "clif_insts": r.clif_insts,
        "code_bytes": r.code_size,
        "compile_ms": {
            "build": ms(r.build),
            "optimize": ms(r.optimize),
            "replay": ms(r.replay),
            "verify": ms(r.verify),
            "schedule": ms(r.schedule),
            "code_key": ms(r.code_key),
            "lower": ms(r.lower),
            "codegen": ms(r.lower + r.codegen),
            "cranelift": ms(r.codegen),
            "total": ms(r.compile()),
        },
        "nodes_per_s": nodes_per_s(r),
        "middle_end_share": middle_end_share(r),
        "run_ms": ms(r.run),
        "exits_to_interp": r.exits_to_interp,
        "guards": r.guards,
        "patches_recorded": r.patches_recorded,
        "patches_replayed": r.patches_replayed,
        "patches_stale": r.patches_stale,
        "patches_conflicting": r.patches_conflicting,
        "patches_refuted": r.patches_refuted,
        "code_cache_hits": r.code_cache_hits,
        "code_cache_loads": r.code_cache_loads,
        "code_cache_misses": r.code_cache_misses,
        "code_cache_rejected": r.code_cache_rejected,
        "code_cache_direct": r.code_cache_direct,
        "code_cache_load_ms": ms(r.code_cache_load),
        "code_cache_save_ms": ms(r.code_cache_save),
        "cpu_before_run_ms": r.cpu_before_run.map(ms),
        "replay_cpu_ms": ms(r.replay_cpu),
        "optimize_cpu_ms": ms(r.optimize_cpu),
        "replay_ms": ms(r.replay),
        "optimize_ms": ms(r.optimize),
        "patch_log_save_ms": ms(r.patch_log_save),
        "patch_log_sealed": r.patch_log_sealed == Some(true),
    })
}

/// Nodes per second of each compile phase: nodes built for `build`, live
/// nodes as built for `optimize` (what it works on), live nodes after
/// optimizing for `schedule` and `codegen` (null for a phase that took no
/// time, e.g. one the code cache skipped).
fn nodes_per_s(r: &JitReport) -> serde_json::Value {
    let rate = |nodes: usize, d: std::time::Duration| {
        (d > std::time::Duration::ZERO).then(|| (nodes as f64 / d.as_secs_f64()).round())
    };
    json!({
        "build": rate(r.nodes_built, r.build),
        "optimize": rate(r.nodes_live_built, r.optimize + r.replay),
        "schedule": rate(r.nodes_after_opt, r.schedule),
        "codegen": rate(r.nodes_after_opt, r.lower + r.codegen),
    })
}

/// The middle end's share of compile time: building, replaying and
/// optimizing (speculation included) against the whole (which adds guard
/// lowering, scheduling and Cranelift); null before anything compiled.
fn middle_end_share(r: &JitReport) -> Option<f64> {
    let total = r.compile().as_secs_f64();
    let middle = (r.build + r.replay + r.optimize).as_secs_f64();
    (total > 0.0).then(|| (middle / total * 1000.0).round() / 1000.0)
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `vssa translate-c`: the C that `vssa bench bf` compiles with gcc.
fn translate_c(args: TranslateCArgs) -> Result<(), String> {
    let path = &args.file;
    let source = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let prog = vssa_bf::parse(&source).map_err(|e| format!("{}:{e}", path.display()))?;
    let style = if args.idioms {
        vssa_bf::c_translate::CStyle::Idioms
    } else {
        vssa_bf::c_translate::CStyle::RunLength
    };
    let c = vssa_bf::c_translate::translate(&prog, style);
    let mut out = std::io::stdout().lock();
    out.write_all(c.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write output: {e}"))
}
