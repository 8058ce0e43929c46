//! End-to-end tests of the `vssa` command.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn vssa(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vssa");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().expect("exited by a signal"),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = common::scratch::root().join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn demo_runs_in_both_engines_with_the_same_output() {
    let (c1, jit, _) = vssa(&["run"], b"");
    let (c2, interp, _) = vssa(&["run", "--engine", "interp"], b"");
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(jit, interp);
    assert!(String::from_utf8_lossy(&jit).starts_with("vssa demo"));
}

#[test]
fn stats_json_has_the_promised_fields() {
    let (code, _, err) = vssa(&["run", "--stats", "json"], b"");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON object");
    for k in [
        "engine",
        "nodes_built",
        "nodes_after_opt",
        "compile_ms",
        "run_ms",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    for k in ["build", "optimize", "schedule", "codegen"] {
        assert!(v["compile_ms"].get(k).is_some(), "missing compile_ms.{k}");
    }
    assert_eq!(v["engine"], "tiered");
    for k in [
        "units_compiled",
        "deopts",
        "recompiles",
        "recompile_ms",
        "interp_ms",
        "native_ms",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert!(v.get("units").is_none(), "per-unit detail only with -v");
    let (code, _, err) = vssa(&["run", "--stats", "json", "-v", "--hot-loop", "1"], b"");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON object");
    let units = v["units"].as_array().expect("per-unit detail with -v");
    assert_eq!(units.len() as u64, v["units_compiled"].as_u64().unwrap());
    let (code, _, err) = vssa(&["run", "--engine", "jit", "--stats", "json"], b"");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON object");
    assert_eq!(v["engine"], "jit");
    // The jit compiled the demo: every phase has a rate, and the middle
    // end's share is a fraction.
    for k in ["build", "optimize", "schedule", "codegen"] {
        let rate = v["nodes_per_s"][k].as_f64();
        assert!(rate.is_some_and(|r| r > 0.0), "nodes_per_s.{k}: {v}");
    }
    let share = v["middle_end_share"].as_f64().expect("middle_end_share");
    assert!(share > 0.0 && share < 1.0, "{share}");
}

#[test]
fn unbalanced_brackets_name_the_position() {
    let p = temp_file("open.b", b"++\n+[[-]\n");
    let (code, out, err) = vssa(&["run", p.to_str().unwrap()], b"");
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains(":2:2 (byte 4)") && err.contains("unmatched '['"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let p = temp_file("close.b", b"+]");
    let (code, _, err) = vssa(&["run", "--engine", "interp", p.to_str().unwrap()], b"");
    assert_eq!(code, 1);
    assert!(
        err.contains(":1:2 (byte 1)") && err.contains("unmatched ']'"),
        "{err}"
    );
}

#[test]
fn underflow_is_an_error_not_a_crash() {
    let p = temp_file("under.b", b"+.<.");
    for engine in ["jit", "interp"] {
        let (code, out, err) = vssa(&["run", "--engine", engine, p.to_str().unwrap()], b"");
        assert_eq!(code, 1, "{engine}");
        assert_eq!(out, vec![1], "{engine}: output before the error is kept");
        assert!(
            err.contains("1:3") && err.contains("left of cell 0"),
            "{engine}: {err}"
        );
    }
}

#[test]
fn runaway_program_stops_at_the_step_limit() {
    let p = temp_file("forever.b", b"+[]");
    for engine in ["jit", "interp"] {
        let (code, _, err) = vssa(
            &[
                "run",
                "--engine",
                engine,
                "--max-steps",
                "100000",
                p.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(code, 1, "{engine}");
        assert!(err.contains("step limit"), "{engine}: {err}");
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let (code, _, err) = vssa(&["run", "/nonexistent/x.b"], b"");
    assert_eq!(code, 1);
    assert!(
        err.starts_with("vssa: cannot read /nonexistent/x.b"),
        "{err}"
    );
}

#[test]
fn dump_dot_writes_every_phase() {
    let dir = common::scratch::root().join("dot");
    let (code, _, err) = vssa(
        &[
            "run",
            "--engine",
            "jit",
            "--dump-dot",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    for f in ["1-built.dot", "2-optimized.dot", "3-scheduled.dot"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.starts_with("digraph"), "{f}");
    }
}

#[test]
fn ten_megabyte_program() {
    let mut src = Vec::with_capacity(10 << 20);
    while src.len() < (10 << 20) {
        src.extend_from_slice(b"+>+<-- comment >>-<<\n");
    }
    src.extend_from_slice(b"+++[-].");
    let p = temp_file("big.b", &src);
    let (code, out, err) = vssa(&["run", p.to_str().unwrap()], b"");
    assert_eq!(code, 0, "{err}");
    let (_, out2, _) = vssa(&["run", "--engine", "interp", p.to_str().unwrap()], b"");
    assert_eq!(out, out2);
}
