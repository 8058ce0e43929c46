//! End-to-end: patch logs under concurrency and faults.
//!
//! * Eight `vssa run --patch-log L` at once, sharing one log and its code
//!   cache `L.code`: each prints the right output, and the log and the
//!   cache are valid afterwards (every save writes a whole file to its own
//!   temporary and renames it into place: the last rename wins, each one
//!   is complete); a run after them finds nothing in the cache to
//!   reject.
//! * A loop of runs killed with SIGKILL at random points, many of them in
//!   the middle of their save (`VSSA_SAVE_PAUSE_MS` holds the save open
//!   halfway through its temporary): the log is always absent (before the
//!   first save) or a valid log, never damaged, and the code cache absent
//!   or whole with every entry sealed (its save is paused the same way);
//!   the next complete save leaves no temporary behind. `VSSA_KILL_LOOP=N` sets the number
//!   of runs (default 40; docs/testing.md says what was run in full).

mod common;

use common::scratch;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vssa_patch::LogBook;

/// Where the spawned runs keep their seal key: never the user's.
fn key_dir() -> PathBuf {
    scratch::root().join("key")
}

const PROG: &[u8] = b"++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.\n";
const PROG_OUT: &[u8] = b"Hello";
const OTHER: &[u8] = b"++++++[>++++++++<-]>.+.\n";
const OTHER_OUT: &[u8] = b"01";

fn scratch(name: &str) -> PathBuf {
    let d = scratch::fresh(&format!("log-faults-{name}"));
    std::fs::write(d.join("p.b"), PROG).unwrap();
    std::fs::write(d.join("q.b"), OTHER).unwrap();
    d
}

fn spawn(engine: &str, prog: &Path, log: &Path, pause_ms: Option<u64>) -> Child {
    spawn_with(engine, prog, log, pause_ms, &[])
}

/// [`spawn`] with more options.
fn spawn_with(
    engine: &str,
    prog: &Path,
    log: &Path,
    pause_ms: Option<u64>,
    extra: &[String],
) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vssa"));
    c.args([
        "run",
        "--engine",
        engine,
        "--hot-loop",
        "1",
        "--compile-budget",
        "inf",
    ])
    .args(extra)
    .arg("--patch-log")
    .arg(log)
    .arg(prog)
    .env("VSSA_CACHE_DIR", key_dir())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(ms) = pause_ms {
        c.env("VSSA_SAVE_PAUSE_MS", ms.to_string());
    }
    c.spawn().expect("spawn vssa")
}

/// The log at `path` parses (checksum included), or there is none.
fn valid_or_absent(path: &Path) -> Result<Option<usize>, String> {
    match std::fs::read(path) {
        Ok(bytes) => LogBook::parse(&bytes, "log")
            .map(|b| Some(b.len()))
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The code cache at `path` is absent, or whole (no damage) with every
/// entry sealed under the runs' key; returns its entry count.
fn cache_valid_or_absent(path: &Path) -> Result<usize, String> {
    let key = std::fs::read(key_dir().join(vssa_patch::seal::KEY_FILE))
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(vssa_patch::SealKey::from_bytes);
    match vssa_backend::stored::summarize(path, None, key.as_ref()) {
        Ok(None) => Ok(0),
        Ok(Some(s)) if s.damage.is_none() && s.sealed == s.entries => Ok(s.entries),
        Ok(Some(s)) => Err(format!("{s:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn temporaries(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".vssa-tmp"))
        .collect()
}

#[test]
fn eight_concurrent_runs_share_one_log() {
    for engine in ["jit", "tiered"] {
        let d = scratch(&format!("concurrent-{engine}"));
        let log = d.join("shared.log");
        // Round 1: the same program eight times; round 2: two programs
        // (each run finds the other's log and saves its own).
        for round in 0..2 {
            let progs: Vec<(PathBuf, &[u8])> = (0..8)
                .map(|i| {
                    if round == 1 && i % 2 == 1 {
                        (d.join("q.b"), OTHER_OUT)
                    } else {
                        (d.join("p.b"), PROG_OUT)
                    }
                })
                .collect();
            let children: Vec<Child> = progs
                .iter()
                .map(|(p, _)| spawn(engine, p, &log, None))
                .collect();
            for (child, (p, want)) in children.into_iter().zip(&progs) {
                let out = child.wait_with_output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "{engine} {}: {err}", p.display());
                assert_eq!(out.stdout, *want, "{engine} {}: {err}", p.display());
                assert!(!err.contains("cannot write"), "{engine}: {err}");
            }
            let units = valid_or_absent(&log).unwrap();
            assert!(units.is_some_and(|n| n > 0), "{engine} round {round}");
            let cache = d.join("shared.log.code");
            let entries = cache_valid_or_absent(&cache).unwrap();
            assert!(entries > 0, "{engine} round {round}");
            assert!(temporaries(&d).is_empty(), "{:?}", temporaries(&d));
        }
        // A later run with the shared log and cache runs right and finds
        // nothing in the cache to reject.
        let out = spawn(engine, &d.join("p.b"), &log, None);
        let out = out.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.stdout, PROG_OUT, "{err}");
        assert!(!err.contains("code cache"), "{engine}: {err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// Runs in the kill loop: `VSSA_KILL_LOOP`, else a number small enough
/// for CI.
fn kill_loop_runs() -> usize {
    std::env::var("VSSA_KILL_LOOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

#[test]
fn runs_killed_at_random_points_never_damage_the_log() {
    let d = scratch("kill");
    let log = d.join("k.log");
    let progs = [(d.join("p.b"), PROG_OUT), (d.join("q.b"), OTHER_OUT)];
    const PAUSE_MS: u64 = 20;
    // A code cache with room for one program's entries (plus slack for
    // the stamps growing): each run evicts the other program's, so every
    // run writes the cache as well as the log, and kills land in both.
    let mut budget = 0;
    for (i, (p, _)) in progs.iter().enumerate() {
        let alone = d.join(format!("alone{i}.log"));
        let out = spawn("jit", p, &alone, None).wait_with_output().unwrap();
        assert!(out.status.success());
        let code = std::fs::metadata(d.join(format!("alone{i}.log.code"))).unwrap();
        budget = budget.max(code.len() - vssa_backend::stored::MAGIC.len() as u64 + 16);
    }
    let extra = ["--code-cache-bytes".to_string(), budget.to_string()];
    // How long a run with a paused save takes here (the shortest of three,
    // each saving): the kill points are spread over it. This only picks
    // delays; nothing is asserted about time.
    let mut span = u64::MAX;
    for i in 0..3 {
        let t = Instant::now();
        let out = spawn_with("jit", &progs[i % 2].0, &log, Some(PAUSE_MS), &extra)
            .wait_with_output()
            .unwrap();
        assert!(out.status.success());
        span = span.min(t.elapsed().as_micros().max(1) as u64);
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let runs = kill_loop_runs();
    let (mut in_save, mut in_cache_save, mut finished) = (0, 0, 0);
    for i in 0..runs {
        // Alternate programs, so that every run has a log to save.
        let (prog, want) = &progs[i % 2];
        let before = temporaries(&d);
        let mut child = spawn_with("jit", prog, &log, Some(PAUSE_MS), &extra);
        std::thread::sleep(Duration::from_micros(next() % span));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            // It ended before the kill: then it ran right.
            finished += 1;
            assert_eq!(out.stdout, *want);
        }
        let new: Vec<String> = temporaries(&d)
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect();
        if !new.is_empty() {
            in_save += 1;
        }
        if new.iter().any(|t| t.starts_with(".k.log.code.")) {
            in_cache_save += 1;
        }
        if let Err(e) = valid_or_absent(&log) {
            panic!("run {i}: the log is damaged: {e}");
        }
        if let Err(e) = cache_valid_or_absent(&d.join("k.log.code")) {
            panic!("run {i}: the code cache is damaged: {e}");
        }
    }
    // Complete runs of both programs: one of them at least saves its log
    // (the other's unit replaces the one the file holds), and a save removes
    // every leftover (a run that only replays its log leaves them).
    for (prog, want) in [&progs[1], &progs[0]] {
        let out = spawn_with("jit", prog, &log, None, &extra)
            .wait_with_output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, *want);
    }
    assert!(valid_or_absent(&log).unwrap().is_some());
    assert!(cache_valid_or_absent(&d.join("k.log.code")).unwrap() > 0);
    assert!(temporaries(&d).is_empty(), "{:?}", temporaries(&d));
    eprintln!(
        "{runs} runs: {in_save} killed during their save ({in_cache_save} in the code \
         cache's), {finished} finished first"
    );
    assert!(in_save > 0, "no kill landed in a save");
    std::fs::remove_dir_all(&d).unwrap();
}
