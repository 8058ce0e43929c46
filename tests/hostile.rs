//! The edges of the `vssa` process under hostile conditions: outputs that
//! cannot be written, programs that are devices or too large, options out
//! of range. Each test pins one defect that was observed before its fix.

mod common;

use common::scratch;
use std::io::Write;
use std::process::{Command, Stdio};

const ENGINES: [&str; 4] = ["interp", "jit", "tiered", "naive"];

fn vssa_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vssa"));
    c.args(args).stdin(Stdio::null());
    c
}

/// Runs vssa with stdin empty; returns exit code, stdout and stderr.
fn vssa(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = vssa_cmd(args).output().expect("spawn vssa");
    (
        out.status.code().expect("exited by a signal"),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = scratch::root().join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn dev_full() -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .ok()
}

#[test]
fn an_unwritable_stderr_is_exit_1_not_a_panic() {
    let Some(full) = dev_full() else {
        println!("skipped: no /dev/full on this system");
        return;
    };
    let p = temp_file("bad.b", b"<");
    for engine in ENGINES {
        let status = vssa_cmd(&["run", "--engine", engine, p.to_str().unwrap()])
            .stdout(full.try_clone().unwrap())
            .stderr(full.try_clone().unwrap())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{engine}");
    }
}

#[test]
fn a_closed_pipe_on_stdout_and_stderr_is_exit_1_not_a_panic() {
    // `vssa run yes.b 2>&1 | head -c1`: the program writes for ever; the
    // reader goes away, the write fails, and so does the error message.
    let p = temp_file("yes.b", b"+[.]");
    for engine in ENGINES {
        let mut child = vssa_cmd(&["run", "--engine", engine, p.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        std::io::Read::read_exact(&mut out, &mut one).unwrap();
        drop(out);
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "{engine}: {status}");
    }
}

#[test]
fn a_failing_final_flush_names_the_last_output_instruction() {
    let Some(full) = dev_full() else {
        println!("skipped: no /dev/full on this system");
        return;
    };
    // Two lines: the last `.` is at 2:2 (byte 4).
    let p = temp_file("hi.b", b"+.\n+.+");
    for engine in ENGINES {
        let out = vssa_cmd(&["run", "--engine", engine, p.to_str().unwrap()])
            .stdout(full.try_clone().unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{engine}: {err}");
        assert!(
            err.starts_with(&format!("vssa: {}:2:2 (byte 4): I/O error: ", p.display())),
            "{engine}: {err}"
        );
    }
}

#[test]
fn runtime_errors_have_the_readme_format_in_every_engine() {
    let p = temp_file("under.b", b"+.\n >><<<");
    let want = format!("vssa: {}:2:2 (byte 4): moved left of cell 0\n", p.display());
    for engine in ENGINES {
        let (code, out, err) = vssa(&["run", "--engine", engine, p.to_str().unwrap()]);
        assert_eq!(code, 1, "{engine}");
        assert_eq!(out, [1], "{engine}");
        assert_eq!(err, want, "{engine}");
    }
    // The 11th test is the `]` at 2:3.
    let p = temp_file("forever.b", b"\n+[]");
    let want = format!(
        "vssa: {}:2:3 (byte 3): step limit exceeded (10 loop tests)\n",
        p.display()
    );
    for engine in ["interp", "jit", "tiered"] {
        let (code, _, err) = vssa(&[
            "run",
            "--engine",
            engine,
            "--max-steps",
            "10",
            p.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{engine}");
        assert_eq!(err, want, "{engine}");
    }
}

#[test]
fn a_tape_limit_below_the_minimum_is_a_usage_error_in_every_engine() {
    let p = temp_file("ok.b", b"+.");
    let mut first: Option<String> = None;
    for engine in ENGINES {
        let (code, out, err) = vssa(&[
            "run",
            "--engine",
            engine,
            "--tape-limit",
            "1",
            p.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{engine}: {err}");
        assert!(out.is_empty(), "{engine}");
        assert!(
            err.contains("below the minimum of 30000"),
            "{engine}: {err}"
        );
        match &first {
            None => first = Some(err),
            Some(f) => assert_eq!(&err, f, "{engine}: same message in every engine"),
        }
    }
}

#[test]
fn a_program_that_is_a_device_or_too_large_is_refused() {
    if std::path::Path::new("/dev/zero").exists() {
        let (code, _, err) = vssa(&["run", "/dev/zero"]);
        assert_eq!(code, 1);
        assert!(
            err.starts_with("vssa: /dev/zero: the program is larger than"),
            "{err}"
        );
    } else {
        println!("skipped the /dev/zero case: no /dev/zero on this system");
    }
    let p = temp_file("eleven.b", b"+++++++++++");
    let (code, _, err) = vssa(&["run", "--max-program-bytes", "10", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("larger than 10 bytes"), "{err}");
    let (code, _, err) = vssa(&["run", "--max-program-bytes", "11", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_program_from_an_endless_pipe_is_refused() {
    // An endless stream on a FIFO-like path: /dev/stdin fed by a writer
    // that never stops.
    if !std::path::Path::new("/dev/stdin").exists() {
        println!("skipped: no /dev/stdin on this system");
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(["run", "--max-program-bytes", "100000", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = [b'+'; 4096];
        // Stops when vssa closes its end (the write fails).
        while stdin.write_all(&chunk).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than 100000 bytes"), "{err}");
}

#[test]
fn many_loops_that_go_hot_once_are_not_all_compiled() {
    // 2 000 loops that each go round 100 times and are never met again:
    // compiling each (a few hundred µs) would cost far more than running it
    // (about a µs), so the default compile budget refuses nearly all.
    let src: String = (0..2000)
        .map(|_| format!("{}[-]>", "+".repeat(100)))
        .collect();
    let p = temp_file("loops.b", src.as_bytes());
    let (code, _, err) = vssa(&["run", "--stats", "json", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    let units = stats["units_compiled"].as_u64().unwrap();
    let deferred = stats["compiles_deferred"].as_u64().unwrap();
    assert!(units < 200, "{units} of 2000 loops compiled");
    assert!(deferred > 1000, "{deferred} compilations deferred");
}

#[test]
fn the_jit_runs_a_program_too_large_to_compile_whole_with_the_tiered_engine() {
    // 1 000 000 nested brackets took the jit engine over a minute and
    // gigabytes; now it is refused at once and the tiered engine runs it.
    let src = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
    let p = temp_file("nest.b", src.as_bytes());
    let (code, out, err) = vssa(&[
        "run",
        "--engine",
        "jit",
        "--stats",
        "json",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    let stats: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(stats["engine"], "jit");
    assert_eq!(stats["jit_fallback"], "tiered");
    assert_eq!(stats["nodes_built"], 0);
}

#[test]
fn a_lua_script_that_is_a_device_or_too_large_is_refused() {
    if std::path::Path::new("/dev/zero").exists() {
        let (code, _, err) = vssa(&["run", "--lang", "lua", "/dev/zero"]);
        assert_eq!(code, 1);
        assert!(
            err.starts_with("vssa: /dev/zero: the program is larger than"),
            "{err}"
        );
    }
    let p = temp_file("hi.lua", b"print('hi')\n");
    let (code, _, err) = vssa(&["run", "--max-program-bytes", "11", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("larger than 11 bytes"), "{err}");
    let (code, out, err) = vssa(&["run", "--max-program-bytes", "12", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, b"hi\n");
}
