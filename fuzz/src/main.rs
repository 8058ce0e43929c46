//! `vssa-fuzz`: differential fuzzing from the command line.
//!
//! ```text
//! vssa-fuzz [--target bf|lir|bytes|replay|logbytes|shapes|lua-shapes|lua|all] [--seconds N] [--count N] [--seed S] [--out DIR] [--no-shrink] [--quiet] | --write-shapes DIR
//! ```
//!
//! Prints a progress line every minute on stderr (`--quiet`: none), and
//! one summary line per target and exits with status 1 if any
//! input failed (reproducers go to `--out`, default `fuzz-failures`).
//! Given both `--seconds` and `--count`, a target stops at whichever comes
//! first (a count goal under a deadline).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vssa_fuzz::{run_target, Config, Limit, Target};

const USAGE: &str =
    "usage: vssa-fuzz [--target bf|lir|bytes|replay|logbytes|shapes|lua-shapes|lua|all] [--seconds N] [--count N] \
[--seed S] [--out DIR] [--no-shrink] [--quiet] | --write-shapes DIR";

struct Args {
    targets: Vec<Target>,
    cfg: Config,
}

fn parse_args() -> Result<Args, String> {
    let mut targets = Target::ALL.to_vec();
    let mut cfg = Config {
        seed: 0,
        limit: Limit::Count(1000),
        out: Some(PathBuf::from("fuzz-failures")),
        shrink: true,
        progress: Some(Duration::from_secs(60)),
    };
    let mut seconds = None;
    let mut count = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--target" => {
                let v = value("--target")?;
                targets = if v == "all" {
                    Target::ALL.to_vec()
                } else {
                    vec![Target::from_name(&v).ok_or(format!("unknown target {v:?}"))?]
                };
            }
            "--seconds" => {
                let v = value("--seconds")?;
                let s: f64 = v.parse().map_err(|_| format!("bad --seconds {v:?}"))?;
                if !(s.is_finite() && s >= 0.0) {
                    return Err(format!("bad --seconds {v:?}"));
                }
                seconds = Some(Duration::from_secs_f64(s));
            }
            "--count" => {
                let v = value("--count")?;
                count = Some(v.parse().map_err(|_| format!("bad --count {v:?}"))?);
            }
            "--seed" => {
                let v = value("--seed")?;
                cfg.seed = match v.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => v.parse(),
                }
                .map_err(|_| format!("bad --seed {v:?}"))?;
            }
            "--out" => cfg.out = Some(PathBuf::from(value("--out")?)),
            "--write-shapes" => {
                let dir = PathBuf::from(value("--write-shapes")?);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                for (name, src) in vssa_fuzz::shapes::named() {
                    let path = dir.join(format!("{name}.b"));
                    std::fs::write(&path, src)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                std::process::exit(0);
            }
            "--no-shrink" => cfg.shrink = false,
            "--quiet" => cfg.progress = None,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (count, seconds) {
        (Some(n), Some(d)) => cfg.limit = Limit::Either(n, d),
        (Some(n), None) => cfg.limit = Limit::Count(n),
        (None, Some(d)) => cfg.limit = Limit::Time(d),
        (None, None) => {}
    }
    Ok(Args { targets, cfg })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vssa-fuzz: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Panics are caught and counted; keep their default report short.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("vssa-fuzz: caught panic: {info}");
    }));
    let mut failed = false;
    for &t in &args.targets {
        let s = run_target(t, &args.cfg);
        println!("{s}");
        for f in &s.failures {
            println!("  seed {:#018x}: {:?}", f.input_seed, f.outcome);
        }
        failed |= s.mismatches + s.crashes > 0;
    }
    vssa_fuzz::remove_scratch_dir();
    if failed {
        if let Some(dir) = &args.cfg.out {
            println!("reproducers in {}", dir.display());
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
