//! End-to-end: sealed binary patch logs through the `vssa` binary.
//!
//! A run writes its log in the binary form, sealed under the user's key
//! (here always a key in a scratch folder, through `VSSA_CACHE_DIR`); a
//! later run replays a sealed log without optimizing. A log that is not
//! sealed under this key — the text form, a log sealed under another key,
//! a log edited with its checksum recomputed, a forgery sealed under the
//! forger's key — must never change what the program does: it is not
//! replayed, the program is optimized and runs right, and the log is
//! replaced by a sealed one.

mod common;

use common::scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vssa_patch::{LogBook, SealKey};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/demo.b");

struct Run {
    stdout: Vec<u8>,
    stderr: String,
    stats: serde_json::Value,
}

fn scratch(name: &str) -> PathBuf {
    scratch::fresh(&format!("log-seal-{name}"))
}

/// `vssa run --engine ENGINE --stats json --patch-log LOG demo.b`, with the
/// seal key in `keys` (and every hot loop compiled, however short the run:
/// the tests are about the units' logs).
/// A run with the patch log and no code cache (which would let a warm
/// `jit` run skip replay altogether: see tests/code_cache.rs).
fn run(engine: &str, log: &Path, keys: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(["run", "--engine", engine, "--compile-budget", "inf"])
        .args(["--code-cache-bytes", "0"])
        .args(["--stats", "json", "--patch-log"])
        .arg(log)
        .arg(DEMO)
        .env("VSSA_CACHE_DIR", keys)
        .stdin(Stdio::null())
        .output()
        .expect("spawn vssa");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let json = stderr.lines().last().unwrap_or_default();
    let stats = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    Run {
        stdout: out.stdout,
        stderr,
        stats,
    }
}

fn vssa_log(args: &[&str], file: &Path, keys: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .arg("log")
        .args(args)
        .arg(file)
        .env("VSSA_CACHE_DIR", keys)
        .output()
        .expect("spawn vssa");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn n(r: &Run, k: &str) -> u64 {
    r.stats[k]
        .as_u64()
        .unwrap_or_else(|| panic!("{k}: {}", r.stats))
}

/// Not replayed, optimized, right output, said so.
fn assert_not_replayed(r: &Run, want: &[u8]) {
    assert_eq!(r.stdout, want);
    assert_eq!(r.stats["patch_log_sealed"], false, "{}", r.stats);
    assert_eq!(n(r, "patches_replayed"), 0, "{}", r.stats);
    assert!(n(r, "patches_recorded") > 0, "{}", r.stats);
    assert!(r.stderr.contains("not sealed by this user"), "{}", r.stderr);
}

#[test]
fn a_second_run_replays_its_sealed_log_without_optimizing() {
    for engine in ["jit", "tiered"] {
        let d = scratch(&format!("second-{engine}"));
        let (log, keys) = (d.join("demo.log"), d.join("keys"));
        let first = run(engine, &log, &keys);
        assert_eq!(first.stats["patch_log_sealed"], false);
        let recorded = n(&first, "patches_recorded");
        assert!(recorded > 0, "{}", first.stats);
        let bytes = std::fs::read(&log).unwrap();
        assert!(bytes.starts_with(vssa_patch::binary::BINARY_MAGIC));
        // The key was made on first use, private.
        use std::os::unix::fs::PermissionsExt;
        let key = keys.join(vssa_patch::seal::KEY_FILE);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = run(engine, &log, &keys);
        assert_eq!(second.stdout, first.stdout);
        assert_eq!(second.stats["patch_log_sealed"], true, "{}", second.stats);
        assert_eq!(n(&second, "patches_replayed"), recorded, "{}", second.stats);
        assert_eq!(n(&second, "patches_recorded"), 0, "{}", second.stats);
        assert_eq!(
            n(&second, "patches_stale") + n(&second, "patches_conflicting"),
            0
        );
        assert!(second.stderr.lines().count() == 1, "{}", second.stderr);
        // Nothing changed: the file was not rewritten.
        assert_eq!(std::fs::read(&log).unwrap(), bytes);
        let (ok, shown) = vssa_log(&["show"], &log, &keys);
        assert!(ok && shown.contains("sealed by this user"), "{shown}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn a_log_sealed_under_another_key_is_not_replayed() {
    let d = scratch("other-key");
    let (log, mine, theirs) = (d.join("demo.log"), d.join("mine"), d.join("theirs"));
    let want = run("jit", &log, &theirs).stdout;
    let r = run("jit", &log, &mine);
    assert_not_replayed(&r, &want);
    let (ok, shown) = vssa_log(&["show"], &log, &theirs);
    assert!(ok && shown.contains("not under this user's key"), "{shown}");
    // It was replaced by a log sealed under this user's key.
    let again = run("jit", &log, &mine);
    assert_eq!(again.stats["patch_log_sealed"], true, "{}", again.stats);
    assert!(n(&again, "patches_replayed") > 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_text_form_is_shown_exported_and_read_but_not_replayed() {
    let d = scratch("text");
    let (log, keys) = (d.join("demo.log"), d.join("keys"));
    let want = run("jit", &log, &keys).stdout;
    let (ok, text) = vssa_log(&["export", "--text"], &log, &keys);
    assert!(ok, "{text}");
    assert!(text.starts_with("vssa-patch-log 2\n"), "{text}");
    let txt = d.join("demo.txt.log");
    std::fs::write(&txt, &text).unwrap();
    // Both forms hold the same book.
    let bin = LogBook::parse(&std::fs::read(&log).unwrap(), "bin").unwrap();
    assert_eq!(LogBook::parse(text.as_bytes(), "text").unwrap(), bin);
    let out = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(["log", "diff"])
        .arg(&log)
        .arg(&txt)
        .output()
        .unwrap();
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{diff}");
    assert!(!diff.lines().any(|l| l.starts_with(['-', '+'])), "{diff}");
    let (ok, shown) = vssa_log(&["show"], &txt, &keys);
    assert!(ok && shown.contains("not sealed"), "{shown}");
    // Read, not replayed, replaced by the sealed binary form.
    let r = run("jit", &txt, &keys);
    assert_not_replayed(&r, &want);
    let now = std::fs::read(&txt).unwrap();
    assert!(now.starts_with(vssa_patch::binary::BINARY_MAGIC));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every patch's replacement pointed at another node of the same type that
/// the log names (the attack), each forgery written with a valid
/// checksum — under no key, and sealed under the forger's own key: the
/// program must run exactly as without a log.
#[test]
fn forged_logs_never_change_what_the_program_does() {
    let d = scratch("forged");
    let (log, keys) = (d.join("demo.log"), d.join("keys"));
    let want = run("jit", &log, &keys).stdout;
    let book = LogBook::parse(&std::fs::read(&log).unwrap(), "demo").unwrap();
    let forger = SealKey::from_bytes([0x5a; 32]);
    let mut forgeries = 0;
    for unit in book.units() {
        // Every address of a known type in this unit.
        let typed: Vec<(vssa::Addr, vssa::Type)> = unit
            .patches
            .iter()
            .flat_map(|p| p.nodes.iter().map(|n| (n.addr, n.ty)))
            .collect();
        for (i, p) in unit.patches.iter().enumerate() {
            let Some(ty) = typed.iter().find(|(a, _)| *a == p.by).map(|t| t.1) else {
                continue;
            };
            let Some(&(other, _)) = typed.iter().find(|(a, t)| *t == ty && *a != p.by) else {
                continue;
            };
            let mut forged = unit.clone();
            forged.patches[i].by = other;
            let fb = LogBook::from(forged);
            for key in [None, Some(&forger)] {
                std::fs::write(&log, fb.to_binary(key)).unwrap();
                let r = run("jit", &log, &keys);
                assert_not_replayed(&r, &want);
                forgeries += 1;
            }
            if forgeries >= 24 {
                break;
            }
        }
    }
    assert!(forgeries > 0, "no patch to forge");
    std::fs::remove_dir_all(&d).unwrap();
}
