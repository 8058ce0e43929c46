//! `vssa bench bf`: the Brainfuck benchmark, every engine side by side.
//!
//! For each program of the corpus it measures, as whole-process wall time
//! (like `hyperfine`), the median over `--runs` runs of:
//! * `vssa run --engine interp|naive|jit` (this very binary, spawned with
//!   the program's `.in` on stdin; the JIT's compile time alone comes from
//!   its `--stats json` line);
//! * the program translated to C ([`vssa_bf::c_translate`], run-length and
//!   idioms styles) and compiled with `gcc -O2`, when gcc is present: the
//!   physical-limit anchor. gcc's own compile time is reported apart.
//!
//! Every run's output is compared with the program's `.out`; a mismatch
//! or a failed run marks the cell FAIL and makes the command fail at the
//! end. The engines are a list ([`VARIANTS`]), so a new one is one entry.

use crate::bench_report::{commit_label, cpu_model, cpus, first_line_of, fmt_ms, median, utc_now};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vssa_bf::c_translate::{self, CStyle, C_TAPE_LEN};

/// `vssa bench` subcommands.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(clap::Subcommand)]
enum BenchWhat {
    /// Measure the Brainfuck corpus: vssa's interpreter, the naive
    /// Cranelift baseline, the JIT (compile time included and alone) and
    /// the tiered engine,
    /// against the same programs translated to C and compiled with
    /// `gcc -O2` (run-length and loop-idiom translations). Reports medians
    /// of whole-process wall time over --runs runs, checks every output
    /// against the program's .out, and writes a Markdown table (--out) and
    /// optionally JSON (--json).
    Bf(BfArgs),
    /// Measure recompilation after a deoptimization: fresh compile by
    /// phase, then recompile latency with full re-optimization, patch
    /// replay, replay + code cache, and the changed unit only, on the
    /// corpus and on generated programs as the program and the change
    /// grow. Writes a Markdown table, JSON and two SVG charts (--out-dir).
    Recompile(crate::bench_recompile::RecompileArgs),
    /// Measure warm starts: each program of the corpus cold (no patch
    /// log), warm with its patch log, and warm with its log and code
    /// cache; compile time as CPU time up to the first native
    /// instruction, medians, ratios, and replay against optimization.
    Warm(crate::bench_warm::WarmArgs),
    /// Measure the Lua guest: the Are-We-Fast-Yet benchmarks (through
    /// their harness) and ../shared/lua/bench under vssa, lua5.4 and
    /// luajit; medians of wall and CPU time, interleaved runs, outputs
    /// checked, ratios to lua5.4, geometric means; writes its section of
    /// docs/benchmarks.md (--out) and optionally JSON (--json).
    Lua(crate::bench_lua::LuaArgs),
}

#[derive(clap::Args)]
struct BfArgs {
    /// Folder of programs: NAME.b, with NAME.b.in (input, optional) and
    /// NAME.b.out (expected output).
    #[arg(long, value_name = "DIR", default_value = "../shared/bf")]
    corpus: PathBuf,
    /// Timed runs per program and engine (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Only these programs (comma-separated names without `.b`).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    only: Vec<String>,
    /// Only these columns (comma-separated keys: interp, naive, jit,
    /// tiered, gcc_rl, gcc_idioms); e.g. `interp,jit,tiered` for programs
    /// the unbounded naive baseline or gcc should not be given.
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    engines: Vec<String>,
    /// Where to write the Markdown report.
    #[arg(long, value_name = "FILE", default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// How one column is produced.
#[derive(Clone, Copy)]
enum Kind {
    /// `vssa run --engine ENGINE`.
    Vssa(&'static str),
    /// The C translation compiled with `gcc -O2`.
    Gcc(CStyle),
}

/// One engine of the table.
struct Variant {
    /// JSON key.
    key: &'static str,
    /// Column header.
    label: &'static str,
    kind: Kind,
}

/// The engines, in column order. A new engine is one entry here (and, if
/// it should get ratio columns, one line in [`RATIOS`]).
const VARIANTS: &[Variant] = &[
    Variant {
        key: "interp",
        label: "vssa interp",
        kind: Kind::Vssa("interp"),
    },
    Variant {
        key: "naive",
        label: "naive Cranelift",
        kind: Kind::Vssa("naive"),
    },
    Variant {
        key: "jit",
        label: "vssa jit",
        kind: Kind::Vssa("jit"),
    },
    Variant {
        key: "tiered",
        label: "vssa tiered",
        kind: Kind::Vssa("tiered"),
    },
    Variant {
        key: "gcc_rl",
        label: "gcc -O2 run-length",
        kind: Kind::Gcc(CStyle::RunLength),
    },
    Variant {
        key: "gcc_idioms",
        label: "gcc -O2 idioms",
        kind: Kind::Gcc(CStyle::Idioms),
    },
];

/// Ratio columns: (numerator key, denominator key, header).
const RATIOS: &[(&str, &str, &str)] = &[
    ("tiered", "gcc_rl", "tiered / gcc run-length"),
    ("jit", "gcc_rl", "jit / gcc run-length"),
    ("jit", "gcc_idioms", "jit / gcc idioms"),
    ("interp", "jit", "interp / jit"),
    ("naive", "jit", "naive / jit"),
    ("tiered", "interp", "tiered / interp"),
];

/// A program of the corpus.
pub(crate) struct Program {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) input: Option<PathBuf>,
    pub(crate) expected: Option<Vec<u8>>,
}

/// What one engine did on one program.
#[derive(Default)]
struct Cell {
    /// Wall time of each timed run, in ms.
    wall_ms: Vec<f64>,
    /// The JIT's compile time of each timed run, in ms (vssa engines).
    compile_ms: Vec<f64>,
    /// gcc's compile time, in ms (C variants).
    cc_ms: Option<f64>,
    /// Why the cell is FAIL, if it is.
    fail: Option<String>,
    /// Why the cell was not measured, if it was not (e.g. no gcc).
    skipped: Option<String>,
}

impl Cell {
    fn median(&self) -> Option<f64> {
        median(&self.wall_ms)
    }
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    match args.what {
        BenchWhat::Bf(a) => bench_bf(a),
        BenchWhat::Recompile(a) => crate::bench_recompile::run(a),
        BenchWhat::Warm(a) => crate::bench_warm::run(a),
        BenchWhat::Lua(a) => crate::bench_lua::run(a),
    }
}

fn bench_bf(args: BfArgs) -> Result<(), String> {
    if let Some(bad) = args
        .engines
        .iter()
        .find(|e| !VARIANTS.iter().any(|v| v.key == e.as_str()))
    {
        return Err(format!("unknown column {bad:?} in --engines"));
    }
    let programs = corpus(&args.corpus, &args.only)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the vssa binary: {e}"))?;
    let gcc = gcc_version();
    if gcc.is_none() {
        note!("vssa bench: gcc not found; the C columns are skipped");
    }
    let tmp = std::env::temp_dir().join(format!("vssa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;

    let started = Instant::now();
    let mut rows: Vec<(String, Vec<Cell>)> = Vec::new();
    for (i, prog) in programs.iter().enumerate() {
        let mut cells = Vec::new();
        for v in VARIANTS {
            if !args.engines.is_empty() && !args.engines.iter().any(|e| e == v.key) {
                cells.push(Cell {
                    skipped: Some("not asked for (--engines)".into()),
                    ..Cell::default()
                });
                continue;
            }
            note_part!(
                "[{}/{}] {} / {}: ",
                i + 1,
                programs.len(),
                prog.name,
                v.label
            );
            let cell = match v.kind {
                Kind::Vssa(engine) => {
                    let mut cmd = Command::new(&exe);
                    cmd.args(["run", "--engine", engine, "--stats", "json"])
                        .arg(&prog.path);
                    measure(&mut cmd, prog, args.runs, true)
                }
                Kind::Gcc(style) => match &gcc {
                    None => Cell {
                        skipped: Some("gcc not found".into()),
                        ..Cell::default()
                    },
                    Some(_) => measure_c(prog, style, &tmp, args.runs),
                },
            };
            match (&cell.fail, &cell.skipped, cell.median()) {
                (Some(f), _, _) => note!("FAIL: {f}"),
                (_, Some(s), _) => note!("skipped: {s}"),
                (_, _, Some(m)) => note!("median {}", fmt_ms(m)),
                _ => note!("no result"),
            }
            cells.push(cell);
        }
        rows.push((prog.name.clone(), cells));
    }
    let _ = std::fs::remove_dir_all(&tmp);

    let machine = machine_info(gcc.as_deref());
    let md = markdown(&rows, &machine, &args);
    vssa_bf::fsutil::write_atomic(&args.out, md.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    note!(
        "vssa bench: wrote {} ({:.0} s)",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let j = to_json(&rows, &machine, &args);
        let text = serde_json::to_string_pretty(&j).map_err(|e| e.to_string())? + "\n";
        vssa_bf::fsutil::write_atomic(path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        note!("vssa bench: wrote {}", path.display());
    }
    crate::log_cmd::emit(&tables(&rows))?;
    let fails: Vec<String> = rows
        .iter()
        .flat_map(|(name, cells)| {
            cells
                .iter()
                .zip(VARIANTS)
                .filter(|(c, _)| c.fail.is_some())
                .map(move |(_, v)| format!("{name}/{}", v.key))
        })
        .collect();
    if fails.is_empty() {
        Ok(())
    } else {
        Err(format!("FAIL: {}", fails.join(", ")))
    }
}

/// The programs of `dir` (all `*.b`, sorted by name), filtered by `only`.
pub(crate) fn corpus(dir: &Path, only: &[String]) -> Result<Vec<Program>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut programs = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("b") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let with = |ext: &str| PathBuf::from(format!("{}.{ext}", path.display()));
        let input = Some(with("in")).filter(|p| p.is_file());
        let expected = std::fs::read(with("out")).ok();
        programs.push(Program {
            name: name.to_string(),
            path,
            input,
            expected,
        });
    }
    programs.sort_by(|a, b| a.name.cmp(&b.name));
    if !only.is_empty() {
        for want in only {
            if !programs.iter().any(|p| &p.name == want) {
                return Err(format!("no program {want}.b in {}", dir.display()));
            }
        }
        programs.retain(|p| only.contains(&p.name));
    }
    if programs.is_empty() {
        return Err(format!("no .b programs in {}", dir.display()));
    }
    Ok(programs)
}

/// What one spawned run did.
struct RunResult {
    wall: Duration,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    success: bool,
}

/// Spawns `cmd` with the program's input on stdin and waits for it; the
/// time is from spawn to exit, output included.
fn run_once(cmd: &mut Command, prog: &Program) -> Result<RunResult, String> {
    let stdin = match &prog.input {
        Some(p) => Stdio::from(
            std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?,
        ),
        None => Stdio::null(),
    };
    let t = Instant::now();
    let child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {:?}: {e}", cmd.get_program()))?;
    Ok(RunResult {
        wall: t.elapsed(),
        stdout: out.stdout,
        stderr: out.stderr,
        success: out.status.success(),
    })
}

/// A run's failure, if it failed or its output differs from `.out`.
fn check(r: &RunResult, prog: &Program) -> Option<String> {
    if !r.success {
        let err = String::from_utf8_lossy(&r.stderr);
        let line = err
            .lines()
            .find(|l| !l.starts_with('{'))
            .unwrap_or("")
            .trim();
        return Some(format!("exited with an error: {line}"));
    }
    match &prog.expected {
        Some(want) if *want != r.stdout => Some(format!(
            "output differs from {}.b.out ({} bytes, expected {})",
            prog.name,
            r.stdout.len(),
            want.len()
        )),
        _ => None,
    }
}

/// The `compile_ms.total` of the `--stats json` line on stderr.
fn compile_ms(stderr: &[u8]) -> Option<f64> {
    let text = String::from_utf8_lossy(stderr);
    text.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l.trim()).ok()?;
        v.get("compile_ms")?.get("total")?.as_f64()
    })
}

/// `runs` timed runs of `cmd`. The first run is a warm-up (page cache,
/// binary loading) and not timed when it takes under a second; a longer
/// one counts, so slow programs do not run `runs + 1` times.
fn measure(cmd: &mut Command, prog: &Program, runs: u32, vssa: bool) -> Cell {
    let mut cell = Cell::default();
    let mut first = true;
    while cell.wall_ms.len() < runs as usize {
        let r = match run_once(cmd, prog) {
            Ok(r) => r,
            Err(e) => {
                cell.fail = Some(e);
                return cell;
            }
        };
        if let Some(f) = check(&r, prog) {
            cell.fail = Some(f);
            return cell;
        }
        let warmup = first && r.wall < Duration::from_secs(1);
        first = false;
        if warmup {
            continue;
        }
        cell.wall_ms.push(r.wall.as_secs_f64() * 1e3);
        if vssa {
            if let Some(c) = compile_ms(&r.stderr) {
                cell.compile_ms.push(c);
            }
        }
        note_part!(".");
    }
    cell
}

/// Translates, compiles with `gcc -O2` (timed apart) and measures.
fn measure_c(prog: &Program, style: CStyle, tmp: &Path, runs: u32) -> Cell {
    let fail = |f: String| Cell {
        fail: Some(f),
        ..Cell::default()
    };
    let source = match std::fs::read(&prog.path) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot read {}: {e}", prog.path.display())),
    };
    let parsed = match vssa_bf::parse(&source) {
        Ok(p) => p,
        Err(e) => return fail(format!("{}: {e}", prog.path.display())),
    };
    let base = tmp.join(format!("{}-{}", prog.name, style.name()));
    let cfile = base.with_extension("c");
    if let Err(e) = std::fs::write(&cfile, c_translate::translate(&parsed, style)) {
        return fail(format!("cannot write {}: {e}", cfile.display()));
    }
    let t = Instant::now();
    let cc = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&base)
        .arg(&cfile)
        .output();
    let cc_ms = t.elapsed().as_secs_f64() * 1e3;
    match cc {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            return fail(format!("gcc failed: {}", err.lines().next().unwrap_or("")));
        }
        Err(e) => return fail(format!("cannot run gcc: {e}")),
    }
    note_part!("(gcc {}) ", fmt_ms(cc_ms));
    let mut cell = measure(&mut Command::new(&base), prog, runs, false);
    cell.cc_ms = Some(cc_ms);
    cell
}

/// `gcc --version`'s first line, or `None` without a working gcc.
fn gcc_version() -> Option<String> {
    first_line_of("gcc", &["--version"])
}

/// Where the numbers were taken.
struct Machine {
    nproc: usize,
    cpu: String,
    rustc: String,
    gcc: String,
    date: String,
    commit: String,
}

fn machine_info(gcc: Option<&str>) -> Machine {
    Machine {
        nproc: cpus(),
        cpu: cpu_model(),
        rustc: first_line_of("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
        gcc: gcc.unwrap_or("not found").to_string(),
        date: utc_now(),
        commit: commit_label(),
    }
}

fn cell_text(c: &Cell) -> String {
    match (&c.fail, &c.skipped, c.median()) {
        (Some(_), _, _) => "FAIL".into(),
        (_, Some(_), _) => "—".into(),
        (_, _, Some(m)) => fmt_ms(m),
        _ => "—".into(),
    }
}

fn key_index(key: &str) -> Option<usize> {
    VARIANTS.iter().position(|v| v.key == key)
}

/// `a / b` of two cells' medians, when both are measured and passed.
fn ratio(cells: &[Cell], a: &str, b: &str) -> Option<f64> {
    let get = |k: &str| {
        let c = &cells[key_index(k)?];
        if c.fail.is_some() {
            return None;
        }
        c.median()
    };
    let (x, y) = (get(a)?, get(b)?);
    (y > 0.0).then(|| x / y)
}

/// The two Markdown tables: medians, then ratios with a geometric mean.
fn tables(rows: &[(String, Vec<Cell>)]) -> String {
    let mut s = String::new();
    // Medians.
    s.push_str("| program |");
    for v in VARIANTS {
        s.push_str(&format!(" {} |", v.label));
    }
    s.push_str(" jit compile | gcc compile (run-length / idioms) |\n|---|");
    for _ in VARIANTS {
        s.push_str("---:|");
    }
    s.push_str("---:|---:|\n");
    for (name, cells) in rows {
        s.push_str(&format!("| {name} |"));
        for c in cells {
            s.push_str(&format!(" {} |", cell_text(c)));
        }
        let jit_compile = key_index("jit")
            .and_then(|i| median(&cells[i].compile_ms))
            .map_or("—".into(), fmt_ms);
        let cc = |k: &str| {
            key_index(k)
                .and_then(|i| cells[i].cc_ms)
                .map_or("—".into(), fmt_ms)
        };
        s.push_str(&format!(
            " {jit_compile} | {} / {} |\n",
            cc("gcc_rl"),
            cc("gcc_idioms")
        ));
    }
    // Ratios.
    s.push_str("\n| program |");
    for (_, _, h) in RATIOS {
        s.push_str(&format!(" {h} |"));
    }
    s.push_str("\n|---|");
    for _ in RATIOS {
        s.push_str("---:|");
    }
    s.push('\n');
    let mut logs: Vec<Vec<f64>> = vec![Vec::new(); RATIOS.len()];
    for (name, cells) in rows {
        s.push_str(&format!("| {name} |"));
        for (j, (a, b, _)) in RATIOS.iter().enumerate() {
            match ratio(cells, a, b) {
                Some(r) => {
                    logs[j].push(r.ln());
                    s.push_str(&format!(" {r:.2}× |"));
                }
                None => s.push_str(" — |"),
            }
        }
        s.push('\n');
    }
    s.push_str("| **geometric mean** |");
    for l in &logs {
        if l.is_empty() {
            s.push_str(" — |");
        } else {
            let g = (l.iter().sum::<f64>() / l.len() as f64).exp();
            s.push_str(&format!(" **{g:.2}×** |"));
        }
    }
    s.push('\n');
    s
}

fn markdown(rows: &[(String, Vec<Cell>)], m: &Machine, args: &BfArgs) -> String {
    let mut s = String::new();
    s.push_str("# Benchmarks\n\n");
    s.push_str("Generated by `vssa bench bf`. To reproduce (from the workspace root, with the\ncorpus in `../shared/bf`):\n\n");
    s.push_str("```sh\ncargo build --release\n");
    let mut flags = String::new();
    if args.corpus != Path::new("../shared/bf") {
        flags += &format!(" --corpus {}", args.corpus.display());
    }
    if !args.only.is_empty() {
        flags += &format!(" --only {}", args.only.join(","));
    }
    if !args.engines.is_empty() {
        flags += &format!(" --engines {}", args.engines.join(","));
    }
    s.push_str(&format!(
        "target/release/vssa bench bf --runs {}{flags}\n```\n\n",
        args.runs
    ));
    s.push_str("## What is measured\n\n");
    s.push_str(&format!(
        "* Every cell is the **median of {} runs** of whole-process wall time (spawn to exit, like\n  `hyperfine -N`), with the program's `.in` on stdin and stdout captured. The first run\n  is an untimed warm-up when it takes under a second.\n",
        args.runs
    ));
    s.push_str("* **vssa interp**: `vssa run --engine interp`, the reference interpreter.\n");
    s.push_str("* **naive Cranelift**: `vssa run --engine naive`: each folded instruction lowered\n  straight to a few Cranelift instructions (no vssa middle-end, bounds check on every\n  move), Cranelift `opt_level=speed`. Compile time included.\n");
    s.push_str("* **vssa jit**: `vssa run --engine jit`, the whole vssa pipeline, compile time included;\n  **jit compile** is its compile time alone (`--stats json`, `compile_ms.total`).\n");
    s.push_str("* **vssa tiered**: `vssa run --engine tiered` (the default): interpreter, hot loops compiled as units, speculation and deopts; compile time included.\n");
    s.push_str(&format!(
        "* **gcc -O2**: the program translated to C by `vssa_bf::c_translate` (`vssa translate-c`),\n  compiled with `gcc -O2`: **run-length** is one C statement per folded instruction;\n  **idioms** also turns clear loops into `p[0] = 0`, copy/multiply loops into\n  `p[k] += f * p[0]`, and `[>]` into `memchr`. Same semantics as vssa (8-bit cells, EOF\n  leaves the cell unchanged, a `calloc` tape of {C_TAPE_LEN} cells like vssa's default\n  limit) but **no bounds checks**: the physical-limit anchor. gcc's compile time is\n  reported apart, not included.\n"
    ));
    s.push_str("* Every run's output is compared with the program's `.out`: FAIL marks a mismatch or a\n  failed run (the command then exits non-zero).\n\n");
    s.push_str("## Machine\n\n");
    s.push_str(&format!(
        "* CPU: {} ({} logical CPUs available, `nproc`)\n* {}\n* {}\n* vssa commit: {}\n* date: {}\n\n",
        m.cpu, m.nproc, m.rustc, m.gcc, m.commit, m.date
    ));
    s.push_str("## Medians\n\n");
    s.push_str(&tables(rows));
    let notes: Vec<String> = rows
        .iter()
        .flat_map(|(name, cells)| {
            cells.iter().zip(VARIANTS).filter_map(move |(c, v)| {
                c.fail
                    .as_ref()
                    .map(|f| format!("* {name} / {}: FAIL: {f}", v.label))
                    .or_else(|| {
                        c.skipped
                            .as_ref()
                            .map(|k| format!("* {name} / {}: skipped: {k}", v.label))
                    })
            })
        })
        .collect();
    if !notes.is_empty() {
        s.push_str("\n## Notes\n\n");
        for n in notes {
            s.push_str(&n);
            s.push('\n');
        }
    }
    s
}

fn to_json(rows: &[(String, Vec<Cell>)], m: &Machine, args: &BfArgs) -> Value {
    let programs: Vec<Value> = rows
        .iter()
        .map(|(name, cells)| {
            let mut engines = serde_json::Map::new();
            for (c, v) in cells.iter().zip(VARIANTS) {
                engines.insert(
                    v.key.to_string(),
                    json!({
                        "label": v.label,
                        "ok": c.fail.is_none() && c.skipped.is_none(),
                        "fail": c.fail,
                        "skipped": c.skipped,
                        "median_ms": c.median(),
                        "wall_ms": c.wall_ms,
                        "compile_median_ms": median(&c.compile_ms),
                        "compile_ms": c.compile_ms,
                        "cc_ms": c.cc_ms,
                    }),
                );
            }
            let mut ratios = serde_json::Map::new();
            for (a, b, _) in RATIOS {
                ratios.insert(format!("{a}/{b}"), json!(ratio(cells, a, b)));
            }
            json!({ "name": name, "engines": engines, "ratios": ratios })
        })
        .collect();
    json!({
        "runs": args.runs,
        "corpus": args.corpus.display().to_string(),
        "machine": {
            "nproc": m.nproc,
            "cpu": m.cpu,
            "rustc": m.rustc,
            "gcc": m.gcc,
            "commit": m.commit,
            "date": m.date,
        },
        "c_tape_cells": C_TAPE_LEN,
        "programs": programs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_time_is_read_from_stats() {
        let err = b"vssa: warning: x\n{\"engine\":\"jit\",\"compile_ms\":{\"total\":12.5}}\n";
        assert_eq!(compile_ms(err), Some(12.5));
        assert_eq!(compile_ms(b"nothing"), None);
    }

    #[test]
    fn ratios_skip_failures() {
        let cell = |ms: f64| Cell {
            wall_ms: vec![ms],
            ..Cell::default()
        };
        let mut cells: Vec<Cell> = VARIANTS.iter().map(|_| cell(10.0)).collect();
        let jit = key_index("jit").unwrap();
        cells[jit] = cell(5.0);
        assert_eq!(ratio(&cells, "interp", "jit"), Some(2.0));
        cells[jit].fail = Some("x".into());
        assert_eq!(ratio(&cells, "interp", "jit"), None);
        let t = tables(&[("p".into(), cells)]);
        assert!(t.contains("| p | 10.0 ms | 10.0 ms | FAIL |"), "{t}");
    }
}
