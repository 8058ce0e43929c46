//! End-to-end: the code cache `vssa run --patch-log LOG` keeps in
//! `LOG.code`. A warm run places the stored code instead of compiling;
//! an entry that is damaged (a flipped code byte, a truncated file),
//! sealed under another key, or made for another target is not used, the
//! program still runs right, and the entry is written anew; a cache path
//! that is a link or a directory is a warning and left alone;
//! `vssa cache stats|clear` see and remove it.

mod common;

use common::scratch;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PROG: &[u8] = b"++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.\n";
const PROG_OUT: &[u8] = b"Hello";

struct Run {
    stdout: Vec<u8>,
    stderr: String,
    stats: Value,
}

/// A fresh scratch folder holding `p.b`; its `key` folder is the runs'
/// cache folder (their seal key), never the user's.
fn scratch(name: &str) -> PathBuf {
    let d = scratch::fresh(&format!("code-cache-{name}"));
    std::fs::write(d.join("p.b"), PROG).unwrap();
    d
}

/// `vssa run --engine ENGINE --patch-log D/p.log --stats json D/p.b`,
/// with the seal key in `key_dir`; asserts it ran right.
fn run_in(d: &Path, key_dir: &Path, engine: &str, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(["run", "--engine", engine, "--hot-loop", "1"])
        .args(["--compile-budget", "inf", "--stats", "json"])
        .args(extra)
        .arg("--patch-log")
        .arg(d.join("p.log"))
        .arg(d.join("p.b"))
        .env("VSSA_CACHE_DIR", key_dir)
        .stdin(Stdio::null())
        .output()
        .expect("spawn vssa");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(out.stdout, PROG_OUT, "{stderr}");
    let json = stderr.lines().last().expect("stats line");
    let stats = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    Run {
        stdout: out.stdout,
        stderr,
        stats,
    }
}

fn run(d: &Path, engine: &str) -> Run {
    run_in(d, &d.join("key"), engine, &[])
}

fn stat(r: &Run, name: &str) -> u64 {
    r.stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {}", r.stats))
}

/// `vssa cache ARGS LOG`, with the runs' key (`LOG`'s folder's `key`).
fn vssa_cache(args: &[&str], log: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .arg("cache")
        .args(args)
        .arg(log)
        .env("VSSA_CACHE_DIR", log.parent().unwrap().join("key"))
        .output()
        .expect("spawn vssa");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_warm_run_places_stored_code_instead_of_compiling() {
    for engine in ["jit", "tiered"] {
        let d = scratch(&format!("warm-{engine}"));
        let cold = run(&d, engine);
        assert_eq!(stat(&cold, "code_cache_loads"), 0);
        assert!(stat(&cold, "code_cache_misses") >= 1);
        assert!(d.join("p.log.code").is_file());
        let warm = run(&d, engine);
        assert_eq!(
            stat(&warm, "code_cache_loads"),
            stat(&cold, "code_cache_misses"),
            "{engine}: {}",
            warm.stderr
        );
        assert_eq!(stat(&warm, "code_cache_misses"), 0);
        assert_eq!(warm.stats["compile_ms"]["cranelift"].as_f64(), Some(0.0));
        assert_eq!(warm.stdout, cold.stdout);
        assert!(!warm.stderr.contains("warning"), "{}", warm.stderr);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// The middle byte of every entry's body in a cache file (the entries:
/// a varint length, the body, a 32-byte seal; see `vssa_backend::stored`).
fn entry_middles(cache: &[u8]) -> Vec<usize> {
    let mut at = vssa_backend::stored::MAGIC.len();
    let mut middles = Vec::new();
    while at < cache.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = cache[at];
            at += 1;
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        middles.push(at + len / 2);
        at += len + 32;
    }
    middles
}

#[test]
fn a_flipped_code_byte_is_not_used_and_the_entry_is_rebuilt() {
    let d = scratch("flip");
    run(&d, "jit");
    let path = d.join("p.log.code");
    let clean = std::fs::read(&path).unwrap();
    // Two entries: the unit's code, and the unit entry that lets a warm
    // run place it without building the graph.
    let middles = entry_middles(&clean);
    assert_eq!(middles.len(), 2);
    let warm = run(&d, "jit");
    assert_eq!(stat(&warm, "code_cache_direct"), 1);
    for (k, &at) in middles.iter().enumerate() {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let r = run(&d, "jit");
        assert_eq!(stat(&r, "code_cache_direct"), 0, "entry {k}");
        assert_eq!(stat(&r, "code_cache_rejected"), 1, "entry {k}");
        assert!(r.stderr.contains("seal does not verify"), "{}", r.stderr);
        // Rewritten: the next run places it again without building.
        let r = run(&d, "jit");
        assert_eq!(stat(&r, "code_cache_direct"), 1, "entry {k}");
        assert_eq!(stat(&r, "code_cache_rejected"), 0);
    }
    // Both flipped: nothing placed at all; the unit is compiled.
    let mut bytes = clean.clone();
    for &at in &middles {
        bytes[at] ^= 0x01;
    }
    std::fs::write(&path, &bytes).unwrap();
    let r = run(&d, "jit");
    assert_eq!(stat(&r, "code_cache_loads"), 0);
    assert_eq!(stat(&r, "code_cache_rejected"), 2);
    assert!(r.stats["compile_ms"]["cranelift"].as_f64().unwrap() > 0.0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_entry_sealed_under_another_key_is_not_used() {
    let d = scratch("otherkey");
    run(&d, "jit");
    // Another user (another key) with a copy of the log and its cache:
    // the log is not replayed and the code not placed.
    let other = d.join("other-key");
    let r = run_in(&d, &other, "jit", &[]);
    assert_eq!(stat(&r, "code_cache_loads"), 0);
    assert_eq!(
        stat(&r, "code_cache_rejected"),
        2,
        "the unit entry and the code"
    );
    // (That user had no key yet: it is made when the run saves.)
    assert!(r.stderr.contains("no seal key"), "{}", r.stderr);
    let _ = std::fs::remove_file(d.join("p.log.code"));
    let _ = std::fs::remove_file(d.join("p.log"));
    // With a key of its own, the first user's entry fails its seal.
    run(&d, "jit");
    let r = run_in(&d, &other, "jit", &[]);
    assert_eq!(stat(&r, "code_cache_rejected"), 2);
    assert_eq!(stat(&r, "code_cache_loads"), 0);
    assert!(r.stderr.contains("seal does not verify"), "{}", r.stderr);
    // It rewrote both under its key; the first key's runs now reject them.
    let r = run_in(&d, &other, "jit", &[]);
    assert_eq!(stat(&r, "code_cache_loads"), 1);
    let r = run(&d, "jit");
    assert_eq!(stat(&r, "code_cache_loads"), 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn code_for_another_target_is_not_used() {
    let d = scratch("target");
    run(&d, "jit");
    // `--verify` turns on Cranelift's verifier, one of the target's
    // flags: another target id, so the stored code is not this run's.
    let r = run_in(&d, &d.join("key"), "jit", &["--verify"]);
    assert_eq!(stat(&r, "code_cache_loads"), 0);
    assert_eq!(stat(&r, "code_cache_misses"), 1);
    assert_eq!(stat(&r, "code_cache_rejected"), 0);
    // Both targets' entries are kept, each found by its own runs.
    let (ok, text) = vssa_cache(&["stats"], &d.join("p.log"));
    assert!(ok && text.contains(" 4 entries"), "{text}");
    assert_eq!(stat(&run(&d, "jit"), "code_cache_loads"), 1);
    let r = run_in(&d, &d.join("key"), "jit", &["--verify"]);
    assert_eq!(stat(&r, "code_cache_loads"), 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_truncated_cache_is_rebuilt() {
    let d = scratch("trunc");
    run(&d, "jit");
    let path = d.join("p.log.code");
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 5, 18, 19, 60, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let r = run(&d, "jit");
        assert_eq!(stat(&r, "code_cache_loads"), 0, "cut {cut}");
        // The run wrote it whole again.
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            bytes.len(),
            "cut {cut}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_cache_path_that_is_a_link_or_a_directory_is_left_alone() {
    use std::os::unix::fs::symlink;
    let d = scratch("alone");
    let target = d.join("elsewhere");
    std::fs::write(&target, "precious\n").unwrap();
    symlink(&target, d.join("p.log.code")).unwrap();
    let r = run(&d, "jit");
    assert!(
        r.stderr.contains("not a regular file (a symbolic link)"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(d.join("p.log.code"))
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_file(d.join("p.log.code")).unwrap();
    std::fs::create_dir(d.join("p.log.code")).unwrap();
    let r = run(&d, "jit");
    assert!(r.stderr.contains("a directory"), "{}", r.stderr);
    assert!(d.join("p.log.code").is_dir());
    let (ok, text) = vssa_cache(&["clear"], &d.join("p.log"));
    assert!(!ok && text.contains("not a regular file"), "{text}");
    assert!(d.join("p.log.code").is_dir());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn cache_stats_and_clear() {
    let d = scratch("cmd");
    let log = d.join("p.log");
    let (ok, text) = vssa_cache(&["stats"], &log);
    assert!(ok && text.contains("no code cache"), "{text}");
    run(&d, "jit");
    let (ok, text) = vssa_cache(&["stats"], &log);
    assert!(ok && text.contains(" 2 entries"), "{text}");
    let (ok, text) = vssa_cache(&["clear"], &log);
    assert!(ok && text.contains("removed"), "{text}");
    assert!(!d.join("p.log.code").exists() && log.exists());
    let (ok, text) = vssa_cache(&["clear"], &log);
    assert!(ok && text.contains("no code cache"), "{text}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn no_code_cache_file_with_zero_bytes() {
    let d = scratch("zero");
    let r = run_in(&d, &d.join("key"), "jit", &["--code-cache-bytes", "0"]);
    assert_eq!(stat(&r, "code_cache_misses"), 0);
    assert!(!d.join("p.log.code").exists());
    std::fs::remove_dir_all(&d).unwrap();
}
