//! `vssa bench lua`: the Lua guest against PUC Lua and LuaJIT.
//!
//! Two sets of programs:
//! * the Are-We-Fast-Yet benchmarks (`--awfy`, default `../shared/lua/awfy`),
//!   each run through the suite's harness (`harness.lua NAME 1 SIZE`, one
//!   iteration at the suite's usual inner size, [`AWFY`]); the harness
//!   checks each benchmark's result and fails when it is wrong;
//! * the programs of `--bench` (default `../shared/lua/bench`): `NAME.lua`
//!   with its command-line arguments in `NAME.lua.arg` and its exact
//!   expected output in `NAME.lua.out`.
//!
//! Each program runs under every engine of [`ENGINES`] — `vssa run` with
//! each engine the Lua guest has (today `interp`), `lua5.4` and `luajit`
//! (skipped with a note when not installed) — `--runs` times, the engines'
//! runs interleaved so that the machine's load falls on all alike. Two
//! figures per run: whole-process wall time (spawn to exit) and the CPU
//! time (user + system) the process used, read from this process's
//! children's times in `/proc/self/stat` — steadier than wall time on a
//! shared machine. Medians, ratios to `lua5.4`, geometric means per set.
//! Every run's output is checked; a failure marks the cell FAIL and makes
//! the command fail at the end.
//!
//! The report is a Markdown section written into `--out` (default
//! `docs/benchmarks.md`) between two marker lines, replacing the section
//! an earlier run wrote and leaving the rest of the file as it is.

use crate::bench_report::{
    commit_label, cpu_model, cpus, first_line_of, fmt_ms, geomean, load_average, median,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct LuaArgs {
    /// The Are-We-Fast-Yet folder (harness.lua and the benchmarks).
    #[arg(long, value_name = "DIR", default_value = "../shared/lua/awfy")]
    awfy: PathBuf,
    /// Folder of programs NAME.lua with NAME.lua.arg and NAME.lua.out.
    #[arg(long, value_name = "DIR", default_value = "../shared/lua/bench")]
    bench: PathBuf,
    /// Timed runs per program and engine (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Only these programs (comma-separated: Are-We-Fast-Yet names such as
    /// `Richards`, bench names without `.lua`).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    only: Vec<String>,
    /// Other sizes (comma-separated NAME=N): an Are-We-Fast-Yet benchmark's
    /// inner iterations, or a bench program's (single) argument; such a
    /// program's output is then checked against lua5.4's, not its `.out`.
    #[arg(long, value_name = "NAME=N,...", value_delimiter = ',')]
    size: Vec<String>,
    /// Only these engines (comma-separated keys: interp, lua5.4, luajit).
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    engines: Vec<String>,
    /// The Markdown file the report's section is written into.
    #[arg(long, value_name = "FILE", default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The Are-We-Fast-Yet benchmarks and their usual inner iterations (the
/// suite's configuration, as `../shared/lua/README.md` lists them).
const AWFY: &[(&str, u32)] = &[
    ("DeltaBlue", 12000),
    ("Richards", 100),
    ("Json", 100),
    ("Bounce", 1500),
    ("Queens", 1000),
    ("Storage", 1000),
    ("List", 1500),
    ("Mandelbrot", 500),
    ("NBody", 250000),
    ("Permute", 1000),
    ("Sieve", 3000),
    ("Towers", 600),
];

/// How one column is produced.
#[derive(Clone, Copy)]
enum Kind {
    /// `vssa run --engine ENGINE`.
    Vssa(&'static str),
    /// An installed Lua executable.
    Exe(&'static str),
}

/// One engine of the table.
struct Engine {
    key: &'static str,
    label: &'static str,
    kind: Kind,
}

/// The engines, in column order; ratios are to [`BASELINE`]. A new Lua
/// engine of vssa (the JIT tier) is one entry here.
const ENGINES: &[Engine] = &[
    Engine {
        key: "interp",
        label: "vssa interp",
        kind: Kind::Vssa("interp"),
    },
    Engine {
        key: "lua5.4",
        label: "lua5.4",
        kind: Kind::Exe("lua5.4"),
    },
    Engine {
        key: "luajit",
        label: "luajit",
        kind: Kind::Exe("luajit"),
    },
];

/// The engine every ratio divides by.
const BASELINE: &str = "lua5.4";

/// Which set a program belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Set {
    Awfy,
    Bench,
}

impl Set {
    fn title(self) -> &'static str {
        match self {
            Set::Awfy => "Are-We-Fast-Yet",
            Set::Bench => "bench",
        }
    }
}

/// How a run's output is judged.
enum Check {
    /// The harness verified the result: exit 0 and its closing line.
    Harness,
    /// Exactly these bytes (the program's `.out`).
    Exact(Vec<u8>),
    /// Whatever the baseline printed (a size other than the `.arg`'s).
    Baseline,
}

/// One program: where it runs, with which arguments, how it is checked.
struct Program {
    name: String,
    set: Set,
    dir: PathBuf,
    /// The script and its arguments, relative to `dir`.
    args: Vec<String>,
    check: Check,
}

/// One engine's runs of one program.
#[derive(Default)]
struct Cell {
    wall_ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    fail: Option<String>,
    skipped: Option<String>,
}

impl Cell {
    fn ok(&self) -> bool {
        self.fail.is_none() && self.skipped.is_none() && !self.wall_ms.is_empty()
    }
}

/// Wall or CPU time: the two figures every table has.
#[derive(Clone, Copy)]
enum Measure {
    Wall,
    Cpu,
}

impl Measure {
    fn of(self, c: &Cell) -> Option<f64> {
        if !c.ok() {
            return None;
        }
        median(match self {
            Measure::Wall => &c.wall_ms,
            Measure::Cpu => &c.cpu_ms,
        })
    }
}

pub fn run(args: LuaArgs) -> Result<(), String> {
    if let Some(bad) = args
        .engines
        .iter()
        .find(|e| !ENGINES.iter().any(|v| v.key == e.as_str()))
    {
        return Err(format!("unknown engine {bad:?} in --engines"));
    }
    let sizes = parse_sizes(&args.size)?;
    let programs = programs(&args, &sizes)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the vssa binary: {e}"))?;
    let versions: Vec<Option<String>> = ENGINES
        .iter()
        .map(|e| match e.kind {
            Kind::Vssa(_) => Some("this vssa binary (commit below)".to_string()),
            Kind::Exe(cmd) => first_line_of(cmd, &["-v"]),
        })
        .collect();
    for (e, v) in ENGINES.iter().zip(&versions) {
        if v.is_none() {
            note!("vssa bench lua: {} not found; its column is skipped", e.key);
        }
    }
    let load_before = load_average();
    let commit = commit_label();
    let started = Instant::now();
    let mut rows = Vec::new();
    for (i, prog) in programs.iter().enumerate() {
        note_part!("[{}/{}] {}: ", i + 1, programs.len(), prog.name);
        let cells = measure_program(&exe, prog, &versions, &args);
        for (c, e) in cells.iter().zip(ENGINES) {
            match (&c.fail, &c.skipped, Measure::Wall.of(c)) {
                (Some(f), _, _) => note_part!(" {}: FAIL ({f});", e.key),
                (_, Some(_), _) => {}
                (_, _, Some(m)) => note_part!(" {} {};", e.key, fmt_ms(m)),
                _ => {}
            }
        }
        note!("");
        rows.push(cells);
    }
    let machine = Machine {
        cpu: cpu_model(),
        nproc: cpus(),
        load_before,
        load_after: load_average(),
        versions,
        commit,
    };
    let section = markdown(&programs, &rows, &machine, &args);
    write_section(&args.out, &section)?;
    note!(
        "vssa bench lua: wrote {} ({:.0} s)",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let j = to_json(&programs, &rows, &machine, &args);
        let text = serde_json::to_string_pretty(&j).map_err(|e| e.to_string())? + "\n";
        vssa_bf::fsutil::write_atomic(path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        note!("vssa bench lua: wrote {}", path.display());
    }
    let fails: Vec<String> = programs
        .iter()
        .zip(&rows)
        .flat_map(|(p, cells)| {
            cells
                .iter()
                .zip(ENGINES)
                .filter(|(c, _)| c.fail.is_some())
                .map(move |(_, e)| format!("{}/{}", p.name, e.key))
        })
        .collect();
    if fails.is_empty() {
        Ok(())
    } else {
        Err(format!("FAIL: {}", fails.join(", ")))
    }
}

/// `NAME=N` pairs of `--size`.
fn parse_sizes(items: &[String]) -> Result<Vec<(String, u64)>, String> {
    items
        .iter()
        .map(|s| {
            let (name, n) = s
                .split_once('=')
                .ok_or_else(|| format!("--size {s:?}: expected NAME=N"))?;
            let n = n
                .parse::<u64>()
                .map_err(|_| format!("--size {s:?}: {n:?} is not a size"))?;
            Ok((name.to_string(), n))
        })
        .collect()
}

/// Both sets, in table order (Are-We-Fast-Yet first), filtered by `--only`.
fn programs(args: &LuaArgs, sizes: &[(String, u64)]) -> Result<Vec<Program>, String> {
    let size_of = |name: &str| sizes.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    let mut all = Vec::new();
    if args.awfy.join("harness.lua").is_file() {
        for (name, size) in AWFY {
            let size = size_of(name).unwrap_or(u64::from(*size));
            all.push(Program {
                name: name.to_string(),
                set: Set::Awfy,
                dir: args.awfy.clone(),
                args: vec![
                    "harness.lua".into(),
                    name.to_string(),
                    "1".into(),
                    size.to_string(),
                ],
                check: Check::Harness,
            });
        }
    } else {
        note!(
            "vssa bench lua: no {}; the Are-We-Fast-Yet set is skipped",
            args.awfy.join("harness.lua").display()
        );
    }
    match std::fs::read_dir(&args.bench) {
        Ok(entries) => {
            let mut bench = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                let Some(name) = file.strip_suffix(".lua") else {
                    continue;
                };
                let with = |ext: &str| args.bench.join(format!("{file}.{ext}"));
                let arg_text = std::fs::read_to_string(with("arg")).unwrap_or_default();
                let mut argv = vec![file.to_string()];
                let check = match size_of(name) {
                    Some(n) => {
                        argv.push(n.to_string());
                        Check::Baseline
                    }
                    None => {
                        argv.extend(arg_text.split_whitespace().map(str::to_string));
                        match std::fs::read(with("out")) {
                            Ok(out) => Check::Exact(out),
                            Err(_) => Check::Baseline,
                        }
                    }
                };
                bench.push(Program {
                    name: name.to_string(),
                    set: Set::Bench,
                    dir: args.bench.clone(),
                    args: argv,
                    check,
                });
            }
            bench.sort_by(|a, b| a.name.cmp(&b.name));
            all.extend(bench);
        }
        Err(e) => note!(
            "vssa bench lua: cannot read {} ({e}); the bench set is skipped",
            args.bench.display()
        ),
    }
    for want in args.only.iter().chain(sizes.iter().map(|(n, _)| n)) {
        if !all.iter().any(|p| &p.name == want) {
            return Err(format!("no program named {want:?}"));
        }
    }
    if !args.only.is_empty() {
        all.retain(|p| args.only.contains(&p.name));
    }
    if all.is_empty() {
        return Err("no programs to measure".into());
    }
    Ok(all)
}

/// What one spawned run did.
struct RunResult {
    wall: Duration,
    /// User + system time of the process, when the kernel told it.
    cpu: Option<Duration>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    success: bool,
}

/// The command line of `engine` running `prog`.
fn command(exe: &Path, engine: &Engine, prog: &Program) -> Command {
    let mut cmd = match engine.kind {
        Kind::Vssa(name) => {
            let mut c = Command::new(exe);
            c.args(["run", "--engine", name]);
            c
        }
        Kind::Exe(name) => Command::new(name),
    };
    cmd.args(&prog.args).current_dir(&prog.dir);
    cmd
}

/// Spawns `cmd` with no input and waits for it.
fn run_once(mut cmd: Command) -> Result<RunResult, String> {
    let before = children_cpu();
    let t = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {:?}: {e}", cmd.get_program()))?;
    let wall = t.elapsed();
    let cpu = match (before, children_cpu()) {
        (Some(a), Some(b)) => b.checked_sub(a),
        _ => None,
    };
    Ok(RunResult {
        wall,
        cpu,
        stdout: out.stdout,
        stderr: out.stderr,
        success: out.status.success(),
    })
}

/// The CPU time (user + system) of this process's waited-for children
/// (`cutime` + `cstime` of `/proc/self/stat`, in clock ticks of 1/100 s:
/// Linux's `USER_HZ` on every architecture it runs on). `None` off Linux.
fn children_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    ticks_of_children(&stat).map(|t| Duration::from_millis(t * 10))
}

/// `cutime + cstime` (fields 16 and 17) of a `/proc/PID/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces, so the
/// fields are counted from the last `)`.
fn ticks_of_children(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (the state).
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    Some(cutime + cstime)
}

/// Why a run failed, if it did.
fn check(r: &RunResult, prog: &Program, baseline_out: Option<&[u8]>) -> Option<String> {
    if !r.success {
        let err = String::from_utf8_lossy(&r.stderr);
        let line = err.lines().next().unwrap_or("").trim();
        return Some(format!("exited with an error: {line}"));
    }
    match &prog.check {
        Check::Harness => {
            let out = String::from_utf8_lossy(&r.stdout);
            (!out.contains("Total Runtime:"))
                .then(|| "the harness printed no `Total Runtime` line".to_string())
        }
        Check::Exact(want) => (*want != r.stdout).then(|| {
            format!(
                "output differs from {}.lua.out ({} bytes, expected {})",
                prog.name,
                r.stdout.len(),
                want.len()
            )
        }),
        Check::Baseline => match baseline_out {
            Some(want) if want != r.stdout => Some(format!(
                "output differs from {BASELINE}'s ({} bytes, expected {})",
                r.stdout.len(),
                want.len()
            )),
            _ => None,
        },
    }
}

/// Every engine on one program, interleaved: round after round, each
/// engine that still needs runs runs once. An engine's first run is an
/// untimed warm-up when it takes under a second.
fn measure_program(
    exe: &Path,
    prog: &Program,
    versions: &[Option<String>],
    args: &LuaArgs,
) -> Vec<Cell> {
    let mut cells: Vec<Cell> = ENGINES
        .iter()
        .zip(versions)
        .map(|(e, v)| {
            let skipped = if !args.engines.is_empty() && !args.engines.iter().any(|k| k == e.key) {
                Some("not asked for (--engines)".to_string())
            } else if v.is_none() {
                Some(format!("{} not installed", e.key))
            } else {
                None
            };
            Cell {
                skipped,
                ..Cell::default()
            }
        })
        .collect();
    let base = ENGINES.iter().position(|e| e.key == BASELINE);
    let mut baseline_out: Option<Vec<u8>> = None;
    if matches!(prog.check, Check::Baseline) && base.is_none_or(|b| cells[b].skipped.is_some()) {
        note_part!("(output not checked: no {BASELINE}) ");
    }
    let mut warmed = vec![false; ENGINES.len()];
    loop {
        let mut ran = false;
        // The baseline first, so its output is there to check the others.
        let order = base
            .into_iter()
            .chain((0..ENGINES.len()).filter(|&i| Some(i) != base));
        for i in order {
            let cell = &mut cells[i];
            if cell.skipped.is_some()
                || cell.fail.is_some()
                || cell.wall_ms.len() >= args.runs as usize
            {
                continue;
            }
            ran = true;
            let r = match run_once(command(exe, &ENGINES[i], prog)) {
                Ok(r) => r,
                Err(e) => {
                    cell.fail = Some(e);
                    continue;
                }
            };
            if Some(i) == base && baseline_out.is_none() && r.success {
                baseline_out = Some(r.stdout.clone());
            }
            if let Some(f) = check(&r, prog, baseline_out.as_deref()) {
                cell.fail = Some(f);
                continue;
            }
            if !warmed[i] {
                warmed[i] = true;
                if r.wall < Duration::from_secs(1) {
                    continue;
                }
            }
            cell.wall_ms.push(r.wall.as_secs_f64() * 1e3);
            if let Some(c) = r.cpu {
                cell.cpu_ms.push(c.as_secs_f64() * 1e3);
            }
            note_part!(".");
        }
        if !ran {
            break;
        }
    }
    cells
}

/// Where the numbers were taken.
struct Machine {
    cpu: String,
    nproc: usize,
    load_before: String,
    load_after: String,
    versions: Vec<Option<String>>,
    commit: String,
}

/// `engine / BASELINE` of one measure, when both passed.
fn ratio(cells: &[Cell], key: &str, m: Measure) -> Option<f64> {
    let at = |k: &str| ENGINES.iter().position(|e| e.key == k);
    let x = m.of(&cells[at(key)?])?;
    let y = m.of(&cells[at(BASELINE)?])?;
    // A CPU time under one tick reads 0: no ratio.
    (x > 0.0 && y > 0.0).then(|| x / y)
}

/// One table: medians of `m` for every engine, the ratios to the
/// baseline, and per set a geometric-mean row.
fn table(programs: &[Program], rows: &[Vec<Cell>], m: Measure) -> String {
    let others: Vec<&Engine> = ENGINES.iter().filter(|e| e.key != BASELINE).collect();
    let mut s = String::from("| program | arguments |");
    for e in ENGINES {
        s.push_str(&format!(" {} |", e.label));
    }
    for e in &others {
        s.push_str(&format!(" {} / {BASELINE} |", e.label));
    }
    s.push_str("\n|---|---|");
    for _ in 0..ENGINES.len() + others.len() {
        s.push_str("---:|");
    }
    s.push('\n');
    for set in [Set::Awfy, Set::Bench] {
        let mut logs: Vec<Vec<f64>> = vec![Vec::new(); others.len()];
        let mut any = false;
        for (p, cells) in programs.iter().zip(rows).filter(|(p, _)| p.set == set) {
            any = true;
            let shown: Vec<&str> = p.args.iter().skip(1).map(String::as_str).collect();
            s.push_str(&format!("| {} | {} |", p.name, shown.join(" ")));
            for c in cells {
                let text = match (&c.fail, &c.skipped, m.of(c)) {
                    (Some(_), _, _) => "FAIL".to_string(),
                    (_, _, Some(v)) => fmt_ms(v),
                    _ => "—".to_string(),
                };
                s.push_str(&format!(" {text} |"));
            }
            for (j, e) in others.iter().enumerate() {
                match ratio(cells, e.key, m) {
                    Some(r) => {
                        logs[j].push(r);
                        s.push_str(&format!(" {r:.2}× |"));
                    }
                    None => s.push_str(" — |"),
                }
            }
            s.push('\n');
        }
        if !any {
            continue;
        }
        s.push_str(&format!(
            "| **geometric mean, {}** | |{}",
            set.title(),
            " |".repeat(ENGINES.len())
        ));
        for l in &logs {
            match geomean(l) {
                Some(g) => s.push_str(&format!(" **{g:.2}×** ({}) |", l.len())),
                None => s.push_str(" — |"),
            }
        }
        s.push('\n');
    }
    s
}

const BEGIN: &str =
    "<!-- vssa bench lua: begin (generated; the lines up to the end marker are rewritten) -->";
const END: &str = "<!-- vssa bench lua: end -->";

fn markdown(programs: &[Program], rows: &[Vec<Cell>], m: &Machine, args: &LuaArgs) -> String {
    let mut s = format!("{BEGIN}\n## Lua: vssa against lua5.4 and luajit\n\n");
    s.push_str("Generated by `vssa bench lua`. To reproduce (from the workspace root, with the\nprograms in `../shared/lua`):\n\n```sh\ncargo build --release\n");
    let mut flags = String::new();
    if args.awfy != Path::new("../shared/lua/awfy") {
        flags += &format!(" --awfy {}", args.awfy.display());
    }
    if args.bench != Path::new("../shared/lua/bench") {
        flags += &format!(" --bench {}", args.bench.display());
    }
    if !args.only.is_empty() {
        flags += &format!(" --only {}", args.only.join(","));
    }
    if !args.size.is_empty() {
        flags += &format!(" --size {}", args.size.join(","));
    }
    if !args.engines.is_empty() {
        flags += &format!(" --engines {}", args.engines.join(","));
    }
    s.push_str(&format!(
        "target/release/vssa bench lua --runs {}{flags}\n```\n\n",
        args.runs
    ));
    s.push_str(&format!(
        "* Each cell is the **median of {} runs**; the engines' runs are interleaved (one run of\n  each, round after round); an engine's first run is an untimed warm-up when it takes\n  under a second.\n",
        args.runs
    ));
    s.push_str("* **Wall** is whole-process time from spawn to exit; **CPU** is the user + system\n  time the process used (its parent's children times, 10 ms ticks): on a shared\n  machine CPU time is the steadier figure.\n");
    s.push_str("* Are-We-Fast-Yet: `harness.lua NAME 1 SIZE` in its folder (one iteration at the\n  suite's usual inner size), whose own verification must pass; bench: `NAME.lua` with the\n  arguments of `NAME.lua.arg`, its output compared byte for byte with `NAME.lua.out`.\n  FAIL marks a failed run or a wrong output (the command then exits non-zero).\n");
    s.push_str(&format!(
        "* Ratios are to `{BASELINE}` (above 1 is slower); geometric means per set, with the\n  number of programs in parentheses.\n\n"
    ));
    s.push_str("Machine:\n\n");
    s.push_str(&format!(
        "* CPU: {} ({} logical CPUs available)\n* load average (1, 5, 15 min): {} before, {} after\n",
        m.cpu, m.nproc, m.load_before, m.load_after
    ));
    for (e, v) in ENGINES.iter().zip(&m.versions) {
        s.push_str(&format!(
            "* {}: {}\n",
            e.label,
            v.as_deref().unwrap_or("not installed (skipped)")
        ));
    }
    s.push_str(&format!("* vssa commit: {}\n\n", m.commit));
    s.push_str("### CPU time\n\n");
    s.push_str(&table(programs, rows, Measure::Cpu));
    s.push_str("\n### Wall time\n\n");
    s.push_str(&table(programs, rows, Measure::Wall));
    let notes: Vec<String> = programs
        .iter()
        .zip(rows)
        .flat_map(|(p, cells)| {
            cells.iter().zip(ENGINES).filter_map(move |(c, e)| {
                c.fail
                    .as_ref()
                    .map(|f| format!("* {} / {}: FAIL: {f}", p.name, e.label))
            })
        })
        .collect();
    if !notes.is_empty() {
        s.push_str("\nFailures:\n\n");
        for n in notes {
            s.push_str(&n);
            s.push('\n');
        }
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// Writes `section` into `path`: in place of the section between the
/// markers if the file has one, else at its end (a new file if none).
fn write_section(path: &Path, section: &str) -> Result<(), String> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let text = splice(&old, section);
    vssa_bf::fsutil::write_atomic(path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `old` with its marked section replaced by `section` (which carries the
/// markers), or with `section` appended.
fn splice(old: &str, section: &str) -> String {
    if let (Some(a), Some(b)) = (old.find(BEGIN), old.find(END)) {
        if a < b {
            let after = &old[b + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            return format!("{}{section}{after}", &old[..a]);
        }
    }
    if old.is_empty() {
        section.to_string()
    } else if old.ends_with("\n\n") {
        format!("{old}{section}")
    } else if old.ends_with('\n') {
        format!("{old}\n{section}")
    } else {
        format!("{old}\n\n{section}")
    }
}

fn to_json(programs: &[Program], rows: &[Vec<Cell>], m: &Machine, args: &LuaArgs) -> Value {
    let progs: Vec<Value> = programs
        .iter()
        .zip(rows)
        .map(|(p, cells)| {
            let mut engines = serde_json::Map::new();
            for (c, e) in cells.iter().zip(ENGINES) {
                engines.insert(
                    e.key.to_string(),
                    json!({
                        "label": e.label,
                        "ok": c.ok(),
                        "fail": c.fail,
                        "skipped": c.skipped,
                        "wall_median_ms": Measure::Wall.of(c),
                        "cpu_median_ms": Measure::Cpu.of(c),
                        "wall_ms": c.wall_ms,
                        "cpu_ms": c.cpu_ms,
                    }),
                );
            }
            let mut ratios = serde_json::Map::new();
            for e in ENGINES.iter().filter(|e| e.key != BASELINE) {
                ratios.insert(
                    format!("{}/{BASELINE}", e.key),
                    json!({
                        "wall": ratio(cells, e.key, Measure::Wall),
                        "cpu": ratio(cells, e.key, Measure::Cpu),
                    }),
                );
            }
            json!({
                "name": p.name,
                "set": p.set.title(),
                "args": p.args,
                "engines": engines,
                "ratios": ratios,
            })
        })
        .collect();
    let mut means = serde_json::Map::new();
    for set in [Set::Awfy, Set::Bench] {
        let mut per = serde_json::Map::new();
        for e in ENGINES.iter().filter(|e| e.key != BASELINE) {
            let of = |m: Measure| {
                let rs: Vec<f64> = programs
                    .iter()
                    .zip(rows)
                    .filter(|(p, _)| p.set == set)
                    .filter_map(|(_, cells)| ratio(cells, e.key, m))
                    .collect();
                geomean(&rs)
            };
            per.insert(
                format!("{}/{BASELINE}", e.key),
                json!({ "wall": of(Measure::Wall), "cpu": of(Measure::Cpu) }),
            );
        }
        means.insert(set.title().to_string(), Value::Object(per));
    }
    json!({
        "runs": args.runs,
        "awfy": args.awfy.display().to_string(),
        "bench": args.bench.display().to_string(),
        "machine": {
            "cpu": m.cpu,
            "nproc": m.nproc,
            "load_before": m.load_before,
            "load_after": m.load_after,
            "commit": m.commit,
            "versions": ENGINES.iter().zip(&m.versions)
                .map(|(e, v)| (e.key.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
        },
        "programs": progs,
        "geometric_means": means,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_times_are_read_past_the_command_name() {
        // A command name with spaces and a `)`; fields 3 (S) to 19 follow,
        // so field 16 (cutime) is 13 and field 17 (cstime) is 250.
        let stat = "4242 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 250 17 20 0";
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        assert_eq!(rest[0], "S");
        assert_eq!(ticks_of_children(stat), Some(13 + 250));
        assert_eq!(ticks_of_children("no parens"), None);
        assert_eq!(ticks_of_children("1 (x) S 1 2"), None);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(
            parse_sizes(&["Towers=2".into()]).unwrap(),
            vec![("Towers".to_string(), 2)]
        );
        assert!(parse_sizes(&["Towers".into()]).is_err());
        assert!(parse_sizes(&["Towers=x".into()]).is_err());
    }

    #[test]
    fn the_section_replaces_its_old_self_only() {
        let sec = |body: &str| format!("{BEGIN}\n{body}\n{END}\n");
        let first = splice("# Benchmarks\n\nbf part\n", &sec("one"));
        assert_eq!(first, format!("# Benchmarks\n\nbf part\n\n{}", sec("one")));
        let with_tail = format!("{first}\n## Later\n");
        let second = splice(&with_tail, &sec("two"));
        assert_eq!(
            second,
            format!("# Benchmarks\n\nbf part\n\n{}\n## Later\n", sec("two"))
        );
        assert_eq!(splice("", &sec("x")), sec("x"));
    }

    #[test]
    fn ratios_to_the_baseline() {
        let cell = |ms: f64| Cell {
            wall_ms: vec![ms],
            cpu_ms: vec![ms / 2.0],
            ..Cell::default()
        };
        let mut cells = vec![cell(30.0), cell(10.0), cell(5.0)];
        assert_eq!(ratio(&cells, "interp", Measure::Wall), Some(3.0));
        assert_eq!(ratio(&cells, "luajit", Measure::Cpu), Some(0.5));
        cells[1].fail = Some("x".into());
        assert_eq!(ratio(&cells, "interp", Measure::Wall), None);
    }
}
