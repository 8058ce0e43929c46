//! `vssa bench recompile`: what a recompilation after one deoptimization
//! costs, by strategy, as programs and changes grow.
//!
//! A program is split into compilation units, one per top-level loop (what
//! the tiered runtime compiles; its inner loops are speculation sites).
//! A *fresh compile* compiles every unit from scratch: build, optimize,
//! speculate, record the patch log, lower guards, schedule, generate code.
//! Then one speculation is refuted (as after a failed guard), and the
//! program is recompiled four ways, each measured alone:
//!
//! * **full**: every unit rebuilt and re-optimized, no log, no code cache
//!   (what a JIT without vssa's machinery does);
//! * **replay**: every unit rebuilt and its patch log replayed instead of
//!   optimizing (up to the refuted guard, in the changed unit), then
//!   scheduled and compiled;
//! * **replay+cache**: as replay, but a unit whose final graph has the same
//!   content key as before takes its machine code from the code cache: only
//!   the changed unit is scheduled and compiled;
//! * **unit**: only the unit that deoptimized is rebuilt, replayed and
//!   compiled; what the tiered runtime does, since it knows which unit
//!   failed.
//!
//! Workloads: the corpus programs, and generated programs of growing size
//! (a fixed-size unit repeated) for the two growth curves: the program grows
//! with one changed unit, and the number of changed units grows in a fixed
//! program. Every figure is the median of `--runs` repetitions measured in
//! one process, side by side.

use crate::bench_report::{fmt_ms, pct};
use crate::plot::{Chart, Series};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vssa_bf::build::{Unit, REASON_UNTAKEN};
use vssa_bf::runtime::{JitConfig, JitReport, Speculate, UnitCode, UnitCompiler, UnitRequest};
use vssa_bf::{parse, InstKind, Program, DEFAULT_TAPE_LIMIT};
use vssa_patch::{Log, LogBook};

#[derive(clap::Args)]
pub struct RecompileArgs {
    /// Folder of corpus programs (NAME.b); if it is missing, only generated
    /// programs are measured.
    #[arg(long, value_name = "DIR", default_value = "../shared/bf")]
    corpus: PathBuf,
    /// Repetitions of every measurement (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The largest generated program, in units; sizes go 1, 10, 100, ... up
    /// to it.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_units: usize,
    /// Approximate nodes per generated unit.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    unit_nodes: usize,
    /// Speculation sites (guards) per generated unit.
    #[arg(long, value_name = "N", default_value_t = 4)]
    sites: usize,
    /// Where to write recompile-bench.md, recompile-bench.json and the two
    /// SVG charts.
    #[arg(long, value_name = "DIR", default_value = "docs")]
    out_dir: PathBuf,
}

/// A program cut into units, with the inner loops to speculate on.
struct Workload {
    name: String,
    prog: Program,
    /// The `[` of every top-level loop: one unit each.
    units: Vec<usize>,
    /// Inner loops compiled as "never entered" guards.
    speculate: BTreeSet<usize>,
}

/// One recompilation strategy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strategy {
    Full,
    Replay,
    ReplayCache,
    UnitOnly,
}

const STRATEGIES: [Strategy; 4] = [
    Strategy::Full,
    Strategy::Replay,
    Strategy::ReplayCache,
    Strategy::UnitOnly,
];

impl Strategy {
    fn key(self) -> &'static str {
        match self {
            Strategy::Full => "full",
            Strategy::Replay => "replay",
            Strategy::ReplayCache => "replay_cache",
            Strategy::UnitOnly => "unit",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Strategy::Full => "full re-opt",
            Strategy::Replay => "patch replay",
            Strategy::ReplayCache => "replay + code cache",
            Strategy::UnitOnly => "changed unit only",
        }
    }
}

/// Medians of one workload with `changed` refuted units.
#[derive(Clone, Debug, Default)]
struct Row {
    name: String,
    units: usize,
    changed: usize,
    nodes: usize,
    /// Fresh compile, total and by phase (ms).
    fresh_ms: f64,
    phases: Vec<(&'static str, f64)>,
    /// Recompile latency by strategy (ms), in [`STRATEGIES`] order.
    recompile_ms: Vec<f64>,
    /// Replay time and the optimize time it replaces (ms, all units).
    replay_ms: f64,
    optimize_ms: f64,
    /// Code-cache hits of one replay+cache recompilation.
    cache_hits: usize,
    note: Option<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median, NaN for no values (drawn as a gap, printed as `–`).
fn median(xs: &[f64]) -> f64 {
    crate::bench_report::median(xs).unwrap_or(f64::NAN)
}

fn config() -> JitConfig {
    JitConfig {
        optimize: true,
        ..JitConfig::default()
    }
}

/// Compiles the units `which` of `w` (indexes into `w.units`).
fn compile_units(
    c: &mut UnitCompiler,
    w: &Workload,
    which: &[usize],
    book: &LogBook,
    report: &mut JitReport,
) -> Result<Vec<UnitCode>, String> {
    let never_entered = |pc: usize| w.speculate.contains(&pc);
    let mut out = Vec::with_capacity(which.len());
    for &i in which {
        let open = w.units[i];
        let name = format!("bf_loop_{open}");
        let code = c
            .compile(
                &w.prog,
                &UnitRequest {
                    unit: Unit::Loop { open },
                    tape_len: DEFAULT_TAPE_LIMIT,
                    speculate: Some(Speculate {
                        never_entered: &never_entered,
                    }),
                    book,
                    name: &name,
                },
                report,
            )
            .map_err(|e| format!("{}: unit at {open}: {e}", w.name))?;
        out.push(code);
    }
    Ok(out)
}

/// The phases of a fresh compile, as reported.
fn phases(r: &JitReport) -> Vec<(&'static str, f64)> {
    vec![
        ("build", ms(r.build)),
        ("optimize", ms(r.optimize)),
        ("record", ms(r.patch_log_save)),
        ("schedule", ms(r.schedule)),
        ("code_key", ms(r.code_key)),
        ("lower", ms(r.lower)),
        ("codegen", ms(r.codegen)),
    ]
}

/// Measures `w` with the speculation of the first `changed` units (that
/// have one) refuted.
fn measure(w: &Workload, changed: usize, runs: u32) -> Result<Row, String> {
    let cfg = config();
    let all: Vec<usize> = (0..w.units.len()).collect();
    let mut fresh = Vec::new();
    let mut phase_runs: Vec<Vec<(&'static str, f64)>> = Vec::new();
    let mut warm: Option<(UnitCompiler, Vec<UnitCode>, JitReport)> = None;
    for _ in 0..runs {
        let mut c = UnitCompiler::new(&cfg, vssa_backend::cache::DEFAULT_CACHE_BYTES)
            .map_err(|e| e.to_string())?;
        let mut r = JitReport::default();
        let t = Instant::now();
        let codes = compile_units(&mut c, w, &all, &LogBook::new(), &mut r)?;
        fresh.push(ms(t.elapsed()));
        phase_runs.push(phases(&r));
        warm = Some((c, codes, r));
    }
    let Some((mut warm, codes, fresh_report)) = warm else {
        return Err("no run".into());
    };
    let mut row = Row {
        name: w.name.clone(),
        units: w.units.len(),
        changed,
        nodes: fresh_report.nodes_built,
        fresh_ms: median(&fresh),
        phases: phase_runs[0]
            .iter()
            .enumerate()
            .map(|(k, &(name, _))| {
                let v: Vec<f64> = phase_runs.iter().map(|p| p[k].1).collect();
                (name, median(&v))
            })
            .collect(),
        ..Row::default()
    };

    // The deopts: the first speculative guard of the first `changed` units
    // that have one.
    let mut book = LogBook::new();
    for code in &codes {
        if let Some(log) = &code.log {
            book.insert(log.clone());
        }
    }
    let mut full_book = LogBook::new();
    let mut hit_units = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        if hit_units.len() == changed {
            break;
        }
        let Some(exit) = code.exits.exits.iter().find(|e| e.reason == REASON_UNTAKEN) else {
            continue;
        };
        match book.unit_mut(&code.key) {
            Some(log) => {
                log.refute(exit.guard);
            }
            None => return Err(format!("{}: unit {i} recorded no log", w.name)),
        }
        let mut empty = Log::new(code.key, Vec::new());
        let _ = empty.refute(exit.guard);
        full_book.insert(empty);
        hit_units.push(i);
    }
    if hit_units.len() < changed {
        row.note = Some(format!(
            "only {} of {changed} units have a speculation to refute",
            hit_units.len()
        ));
        if hit_units.is_empty() {
            return Ok(row);
        }
        row.changed = hit_units.len();
    }

    let mut cold = UnitCompiler::new(&cfg, 0).map_err(|e| e.to_string())?;
    let (mut replay, mut optimize) = (Vec::new(), Vec::new());
    for s in STRATEGIES {
        let mut times = Vec::new();
        for _ in 0..runs {
            let mut r = JitReport::default();
            let t = Instant::now();
            let codes = match s {
                Strategy::Full => compile_units(&mut cold, w, &all, &full_book, &mut r)?,
                Strategy::Replay => compile_units(&mut cold, w, &all, &book, &mut r)?,
                Strategy::ReplayCache => compile_units(&mut warm, w, &all, &book, &mut r)?,
                Strategy::UnitOnly => compile_units(&mut cold, w, &hit_units, &book, &mut r)?,
            };
            times.push(ms(t.elapsed()));
            if s == Strategy::Replay {
                replay.push(ms(r.replay));
            }
            if s == Strategy::Full {
                optimize.push(ms(r.optimize));
            }
            if s == Strategy::ReplayCache {
                row.cache_hits = r.code_cache_hits;
                // Forget what this recompilation added, so that every
                // repetition starts from the cache after the fresh compile.
                for code in codes.iter().filter(|c| !c.cached) {
                    warm.pipeline.cache.remove(&code.code_key);
                }
            }
        }
        row.recompile_ms.push(median(&times));
    }
    row.replay_ms = median(&replay);
    row.optimize_ms = median(&optimize);
    Ok(row)
}

/// Top-level loops of `prog`, and for each the last inner loop that the
/// builder will treat as a speculation site (one with I/O, an inner loop,
/// or a net pointer move: not a closed-form loop).
fn workload(name: &str, prog: Program) -> Workload {
    let mut units = Vec::new();
    let mut speculate = BTreeSet::new();
    let mut pc = 0;
    while let Some(inst) = prog.insts.get(pc) {
        if let InstKind::Open { close } = inst.kind {
            units.push(pc);
            if let Some(site) = (pc + 1..close).rev().find(|&k| site_like(&prog, k)) {
                speculate.insert(site);
            }
            pc = close + 1;
        } else {
            pc += 1;
        }
    }
    Workload {
        name: name.to_string(),
        prog,
        units,
        speculate,
    }
}

fn site_like(prog: &Program, open: usize) -> bool {
    let InstKind::Open { close } = prog.insts[open].kind else {
        return false;
    };
    let mut moved = 0i64;
    for inst in &prog.insts[open + 1..close] {
        match inst.kind {
            InstKind::Open { .. } | InstKind::In | InstKind::Out => return true,
            InstKind::Move(k) => moved += k,
            _ => {}
        }
    }
    moved != 0
}

/// A generated program of `units` top-level loops, each of about
/// `unit_nodes` nodes with `sites` inner loops to speculate on. Units
/// differ in their constants, so none is a copy of another.
fn generated(units: usize, unit_nodes: usize, sites: usize) -> Workload {
    // About 16 nodes built per cell touched (move, load, add, store, the
    // output call and its projections, the frame state of the next site).
    let cells = (unit_nodes / 16).max(1);
    let mut src = String::new();
    for i in 0..units {
        src.push_str("+[");
        for j in 0..cells {
            src.push('>');
            for _ in 0..1 + (i * 7 + j) % 5 {
                src.push('+');
            }
            src.push('.');
        }
        src.push_str(&"<".repeat(cells));
        for _ in 0..sites {
            src.push_str("[.-]>");
        }
        src.push_str(&"<".repeat(sites));
        src.push_str("-]\n");
    }
    let prog = parse(&src).expect("generated programs are balanced");
    let mut w = workload(&format!("gen-{units}x{unit_nodes}"), prog);
    // Every inner loop is a site here.
    w.speculate = (0..w.prog.insts.len())
        .filter(|&k| !w.units.contains(&k) && matches!(w.prog.insts[k].kind, InstKind::Open { .. }))
        .collect();
    w
}

pub fn run(args: RecompileArgs) -> Result<(), String> {
    let started = Instant::now();
    let mut corpus_rows = Vec::new();
    match corpus(&args.corpus) {
        Ok(programs) => {
            for (name, prog) in programs {
                note_part!("corpus {name}: ");
                let row = measure(&workload(&name, prog), 1, args.runs)?;
                note!("{}", summary(&row));
                corpus_rows.push(row);
            }
        }
        Err(e) => note!("vssa bench recompile: corpus skipped: {e}"),
    }
    let mut size_rows = Vec::new();
    let mut n = 1;
    while n <= args.max_units.max(1) {
        note_part!("program of {n} units: ");
        let row = measure(&generated(n, args.unit_nodes, args.sites), 1, args.runs)?;
        note!("{}", summary(&row));
        size_rows.push(row);
        n *= 10;
    }
    let fixed = 100.min(args.max_units.max(1));
    let base = generated(fixed, args.unit_nodes, args.sites);
    let mut change_rows = Vec::new();
    for changed in [1, 2, 5, 10, 20, 50, 100] {
        if changed > fixed {
            break;
        }
        note_part!("{changed} of {fixed} units changed: ");
        let row = measure(&base, changed, args.runs)?;
        note!("{}", summary(&row));
        change_rows.push(row);
    }

    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.out_dir.display()))?;
    let md = markdown(&corpus_rows, &size_rows, &change_rows, &args);
    write(&args.out_dir.join("recompile-bench.md"), &md)?;
    let j = json!({
        "runs": args.runs,
        "unit_nodes": args.unit_nodes,
        "sites_per_unit": args.sites,
        "corpus": corpus_rows.iter().map(row_json).collect::<Vec<_>>(),
        "program_grows": size_rows.iter().map(row_json).collect::<Vec<_>>(),
        "change_grows": change_rows.iter().map(row_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&j).map_err(|e| e.to_string())? + "\n";
    write(&args.out_dir.join("recompile-bench.json"), &text)?;
    let charts = [
        (
            "recompile-size.svg",
            chart(
                "Recompile after one deopt, as the program grows",
                "program size (nodes built)",
                &size_rows,
                |r| r.nodes as f64,
                true,
            ),
        ),
        (
            "recompile-change.svg",
            chart(
                &format!("Recompile as the change grows ({fixed} units)"),
                "units changed",
                &change_rows,
                |r| r.changed as f64,
                false,
            ),
        ),
    ];
    for (file, c) in &charts {
        write(&args.out_dir.join(file), &c.to_svg())?;
    }
    note!(
        "vssa bench recompile: wrote recompile-bench.md, recompile-bench.json, \
         recompile-size.svg, recompile-change.svg in {} ({:.0} s)",
        args.out_dir.display(),
        started.elapsed().as_secs_f64()
    );
    crate::log_cmd::emit(&md)?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    vssa_bf::fsutil::write_atomic(path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The corpus programs (`*.b`, by name), parsed; an error if the folder
/// is unreadable or holds none.
fn corpus(dir: &Path) -> Result<Vec<(String, Program)>, String> {
    let mut out = Vec::new();
    for p in crate::bench::corpus(dir, &[])? {
        let src =
            std::fs::read(&p.path).map_err(|e| format!("cannot read {}: {e}", p.path.display()))?;
        let prog = parse(&src).map_err(|e| format!("{}:{e}", p.path.display()))?;
        out.push((p.name, prog));
    }
    Ok(out)
}

fn summary(r: &Row) -> String {
    let mut s = format!(
        "{} units, {} nodes, fresh {}",
        r.units,
        r.nodes,
        fmt_ms(r.fresh_ms)
    );
    for (st, v) in STRATEGIES.iter().zip(&r.recompile_ms) {
        s.push_str(&format!(", {} {}", st.key(), fmt_ms(*v)));
    }
    if let Some(n) = &r.note {
        s.push_str(&format!(" ({n})"));
    }
    s
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| workload | units | changed | nodes | fresh compile | full | replay | replay + cache | unit only | unit only / fresh | cache hits |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let get = |k: usize| r.recompile_ms.get(k).copied().unwrap_or(f64::NAN);
        s.push_str(&format!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.note.as_ref().map_or(String::new(), |n| format!(" ({n})")),
            r.units,
            r.changed,
            r.nodes,
            fmt_ms(r.fresh_ms),
            fmt_ms(get(0)),
            fmt_ms(get(1)),
            fmt_ms(get(2)),
            fmt_ms(get(3)),
            pct(Some(get(3)), Some(r.fresh_ms)),
            r.cache_hits
        ));
    }
    s
}

fn phase_table(rows: &[Row]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let mut s = String::from("| workload | nodes |");
    for (name, _) in &first.phases {
        s.push_str(&format!(" {name} |"));
    }
    s.push_str(" replay / optimize |\n|---|---:|");
    for _ in &first.phases {
        s.push_str("---:|");
    }
    s.push_str("---:|\n");
    for r in rows {
        s.push_str(&format!("| {} | {} |", r.name, r.nodes));
        for (_, v) in &r.phases {
            s.push_str(&format!(" {} |", fmt_ms(*v)));
        }
        s.push_str(&format!(
            " {} |\n",
            pct(Some(r.replay_ms), Some(r.optimize_ms))
        ));
    }
    s
}

fn markdown(corpus: &[Row], size: &[Row], change: &[Row], args: &RecompileArgs) -> String {
    let mut s = String::from(
        "# Recompilation benchmark\n\n\
         Generated by `vssa bench recompile` (see [recompilation.md](recompilation.md) for what \
         it measures and how to read it). Medians of ",
    );
    s.push_str(&format!(
        "{} runs, in one process. Generated units: about {} nodes and {} speculation sites \
         each.\n\n",
        args.runs, args.unit_nodes, args.sites
    ));
    s.push_str(&format!(
        "Machine: {} logical CPUs, vssa commit {}.\n\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        crate::bench_report::commit_label()
    ));
    if !corpus.is_empty() {
        s.push_str("## Corpus programs, one deopt\n\n");
        s.push_str(&table(corpus));
        s.push('\n');
    }
    s.push_str("## The program grows, one unit changes\n\n![](recompile-size.svg)\n\n");
    s.push_str(&table(size));
    s.push_str("\n## The change grows in a fixed program\n\n![](recompile-change.svg)\n\n");
    s.push_str(&table(change));
    s.push_str("\n## Fresh compile by phase\n\n");
    let all: Vec<Row> = corpus.iter().chain(size).cloned().collect();
    s.push_str(&phase_table(&all));
    s
}

fn row_json(r: &Row) -> Value {
    let mut rec = serde_json::Map::new();
    for (st, v) in STRATEGIES.iter().zip(&r.recompile_ms) {
        rec.insert(st.key().into(), json!(v));
    }
    let ph: serde_json::Map<String, Value> = r
        .phases
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "workload": r.name,
        "units": r.units,
        "changed": r.changed,
        "nodes_built": r.nodes,
        "fresh_ms": r.fresh_ms,
        "fresh_phases_ms": ph,
        "recompile_ms": rec,
        "replay_ms": r.replay_ms,
        "optimize_ms": r.optimize_ms,
        "cache_hits": r.cache_hits,
        "note": r.note,
    })
}

fn chart(title: &str, x_label: &str, rows: &[Row], x: fn(&Row) -> f64, fresh: bool) -> Chart {
    let mut series = Vec::new();
    if fresh {
        series.push(Series::new(
            "fresh compile",
            rows.iter().map(|r| (x(r), r.fresh_ms)).collect(),
        ));
    }
    for (k, st) in STRATEGIES.iter().enumerate() {
        series.push(Series::new(
            st.label(),
            rows.iter()
                .filter_map(|r| r.recompile_ms.get(k).map(|&v| (x(r), v)))
                .collect(),
        ));
    }
    Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "latency (ms)".into(),
        log_x: true,
        log_y: true,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_units_are_separate_loops_with_sites() {
        let w = generated(3, 200, 2);
        assert_eq!(w.units.len(), 3);
        assert_eq!(w.speculate.len(), 6);
    }

    #[test]
    fn one_changed_unit_misses_the_cache_and_the_rest_hit() {
        let w = generated(4, 200, 1);
        let row = measure(&w, 1, 1).unwrap();
        assert_eq!(row.note, None);
        assert_eq!(row.changed, 1);
        assert_eq!(row.cache_hits, 3, "every unchanged unit reuses its code");
        assert_eq!(row.recompile_ms.len(), STRATEGIES.len());
        assert!(row.nodes > 4 * 100, "{} nodes", row.nodes);
    }

    #[test]
    fn a_program_without_sites_reports_it() {
        let w = workload("t", parse("+[->+<]").unwrap());
        let row = measure(&w, 1, 1).unwrap();
        assert!(row.note.is_some());
        assert!(row.recompile_ms.is_empty());
    }
}
