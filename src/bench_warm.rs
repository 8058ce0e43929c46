//! `vssa bench warm`: what a second process saves by the patch log and
//! the code cache.
//!
//! For every program of the corpus, `vssa run --engine jit` three ways,
//! their runs interleaved (so that the machine's load falls on all three
//! alike):
//!
//! * **cold**: no patch log, no code cache: build, optimize, schedule,
//!   Cranelift;
//! * **warm, log only**: `--patch-log L --code-cache-bytes 0`, with `L`
//!   written by an earlier run: build, replay (sealed), schedule,
//!   Cranelift;
//! * **warm, log + code cache**: `--patch-log L` with `L` and `L.code`
//!   written by an earlier run: build, replay, place the stored code.
//!
//! Compile time is everything before the program's first native
//! instruction — process start-up, reading and parsing the program,
//! building, replay or optimization, code generation or placing — as the
//! CPU time the process had used at that point (`cpu_before_run_ms` of
//! `--stats json`), so that other processes on the machine do not count.
//! Medians over `--runs`; every output is checked against `NAME.b.out`,
//! and every warm run must have replayed a sealed log with nothing stale
//! (and, with the cache, placed its code). The replay columns are the
//! log-only warm runs' `replay_cpu_ms` (reading the key and the log,
//! checking the seal, parsing and replaying, summed over units) against
//! the cold runs' `optimize_cpu_ms` (the middle end, summed over units),
//! both CPU time of the compiling thread. That is everything the warm run
//! does because of its log: it must not record, compare or save the log
//! again (`patch_log_save_ms` zero, checked), and its file upkeep (stale
//! temporaries) waits for a run that saves.

use crate::bench::{corpus, Program};
use crate::bench_report::{median, pct, sig3};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(clap::Args)]
pub struct WarmArgs {
    /// Folder of programs: NAME.b, with NAME.b.in (input, optional) and
    /// NAME.b.out (expected output).
    #[arg(long, value_name = "DIR", default_value = "../shared/bf")]
    corpus: PathBuf,
    /// Runs per program and way (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Only these programs (comma-separated names without `.b`).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the Markdown table to FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// The three ways a program is run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Cold,
    Log,
    LogAndCache,
}

/// Figures of one way on one program, one per run.
#[derive(Default)]
struct Series {
    cpu_ms: Vec<f64>,
    /// `optimize_cpu_ms` (cold) or `replay_cpu_ms` (warm).
    phase_ms: Vec<f64>,
}

pub fn run(args: WarmArgs) -> Result<(), String> {
    let programs = corpus(&args.corpus, &args.only)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find vssa itself: {e}"))?;
    let scratch = std::env::temp_dir().join(format!("vssa-bench-warm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot make {}: {e}", scratch.display()))?;
    let result = measure_all(&exe, &scratch, &programs, args.runs);
    let _ = std::fs::remove_dir_all(&scratch);
    let rows = result?;
    let table = markdown(&rows, args.runs);
    print!("{table}");
    if let Some(out) = &args.out {
        vssa_patch::write_atomic(out, table.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    Ok(())
}

struct Row {
    name: String,
    cold: Series,
    log: Series,
    cache: Series,
}

fn measure_all(
    exe: &Path,
    scratch: &Path,
    programs: &[Program],
    runs: u32,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for prog in programs {
        eprintln!("bench warm: {}", prog.name);
        let log = scratch.join(format!("{}.log", prog.name));
        let log_and_cache = scratch.join(format!("{}.cached.log", prog.name));
        let keys = scratch.join("key");
        // The earlier runs that write what the warm runs read.
        once(exe, &keys, prog, Way::Log, &log)?;
        once(exe, &keys, prog, Way::LogAndCache, &log_and_cache)?;
        let mut row = Row {
            name: prog.name.clone(),
            cold: Series::default(),
            log: Series::default(),
            cache: Series::default(),
        };
        for _ in 0..runs {
            for (way, path, series) in [
                (Way::Cold, &log, &mut row.cold),
                (Way::Log, &log, &mut row.log),
                (Way::LogAndCache, &log_and_cache, &mut row.cache),
            ] {
                let stats = once(exe, &keys, prog, way, path)?;
                check_warm(&stats, way).map_err(|e| format!("{}: {e}", prog.name))?;
                let num = |k: &str| stats.get(k).and_then(Value::as_f64);
                series.cpu_ms.push(
                    num("cpu_before_run_ms").ok_or("no cpu_before_run_ms (needs Linux's /proc)")?,
                );
                let phase = if way == Way::Cold {
                    "optimize_cpu_ms"
                } else {
                    "replay_cpu_ms"
                };
                series.phase_ms.push(num(phase).unwrap_or(0.0));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// One run of `prog` the given way (`log` is the patch log of the warm
/// ways); returns its `--stats json` object after checking its output.
fn once(exe: &Path, keys: &Path, prog: &Program, way: Way, log: &Path) -> Result<Value, String> {
    let mut cmd = Command::new(exe);
    cmd.args(["run", "--engine", "jit", "--stats", "json"])
        .env("VSSA_CACHE_DIR", keys);
    match way {
        Way::Cold => {}
        Way::Log => {
            cmd.arg("--patch-log").arg(log);
            cmd.args(["--code-cache-bytes", "0"]);
        }
        Way::LogAndCache => {
            cmd.arg("--patch-log").arg(log);
        }
    }
    cmd.arg(&prog.path);
    let stdin = match &prog.input {
        Some(p) => Stdio::from(
            std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?,
        ),
        None => Stdio::null(),
    };
    let out = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{}: exited with an error: {err}", prog.name));
    }
    if let Some(want) = &prog.expected {
        if *want != out.stdout {
            return Err(format!("{}: output differs from its .out", prog.name));
        }
    }
    let last = err.lines().last().unwrap_or("");
    serde_json::from_str(last).map_err(|e| format!("{}: no stats ({e}): {err}", prog.name))
}

/// A warm run must have done what it is measured for.
fn check_warm(stats: &Value, way: Way) -> Result<(), String> {
    let int = |k: &str| stats.get(k).and_then(Value::as_u64).unwrap_or(0);
    if way == Way::Cold {
        return Ok(());
    }
    if stats.get("patch_log_sealed") != Some(&Value::Bool(true)) {
        return Err("the warm run did not read a sealed log".into());
    }
    if int("patches_stale") + int("patches_conflicting") > 0 || int("patches_recorded") > 0 {
        return Err("the warm run did not replay its log completely".into());
    }
    // Work on the log besides loading and replaying it would belong in the
    // replay column; a warm run that replays in full has none.
    if stats.get("patch_log_save_ms").and_then(Value::as_f64) != Some(0.0) {
        return Err("the warm run recorded or saved its log again".into());
    }
    if way == Way::LogAndCache && int("code_cache_loads") != 1 {
        return Err("the warm run did not place its code from the cache".into());
    }
    Ok(())
}

fn markdown(rows: &[Row], runs: u32) -> String {
    let mut s = String::from(
        "| program | cold: compile CPU ms | warm, log only | warm, log + code cache | \
         log only / cold | log + cache / cold | cold optimize, CPU ms | warm replay, CPU ms | \
         replay / optimize |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let fmt = |x: Option<f64>| x.map_or("–".into(), sig3);
    for r in rows {
        let (c, l, k) = (
            median(&r.cold.cpu_ms),
            median(&r.log.cpu_ms),
            median(&r.cache.cpu_ms),
        );
        let (opt, rep) = (median(&r.cold.phase_ms), median(&r.log.phase_ms));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            fmt(c),
            fmt(l),
            fmt(k),
            pct(l, c),
            pct(k, c),
            fmt(opt),
            fmt(rep),
            pct(rep, opt)
        ));
    }
    s.push_str(&format!(
        "\nMedians of {runs} runs each (`vssa run --engine jit`); compile CPU ms: the CPU time \
         the process had used when the program's first native instruction ran \
         (`cpu_before_run_ms`).\n"
    ));
    s
}
