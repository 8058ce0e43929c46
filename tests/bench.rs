//! Tests of `vssa bench bf`, `vssa bench recompile`, `vssa bench lua`, `vssa run --engine naive` and
//! `vssa translate-c`.

mod common;

use common::scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn vssa(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("spawn vssa")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = scratch::root().join(format!("bench-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HELLO: &str = "++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.>>.<-.<.+++.------.--------.>>+.>++.";

#[test]
fn smoke_on_the_shared_corpus() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bf");
    if !corpus.join("hello.b").is_file() || !corpus.join("bench.b").is_file() {
        eprintln!("skipped: no ../shared/bf corpus with hello.b and bench.b");
        return;
    }
    let dir = temp_dir("smoke");
    let md = dir.join("bench.md");
    let json = dir.join("bench.json");
    let out = vssa(
        &[
            "bench",
            "bf",
            "--runs",
            "1",
            "--only",
            "hello,bench",
            "--corpus",
            corpus.to_str().unwrap(),
            "--out",
            md.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[1/2] bench"), "{stderr}");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains(&format!(
        "target/release/vssa bench bf --runs 1 --corpus {} --only hello,bench",
        corpus.display()
    )));
    assert!(
        text.contains("| hello |") && text.contains("| bench |"),
        "{text}"
    );
    assert!(
        !text.contains("| FAIL") && !text.contains("## Notes"),
        "{text}"
    );
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let progs = j["programs"].as_array().unwrap();
    assert_eq!(progs.len(), 2);
    assert_eq!(progs[0]["name"], "bench");
    assert_eq!(progs[1]["engines"]["jit"]["ok"], true);
    assert!(progs[1]["engines"]["jit"]["median_ms"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_output_is_a_failure() {
    let dir = temp_dir("fail");
    std::fs::write(dir.join("hello.b"), HELLO).unwrap();
    std::fs::write(dir.join("hello.b.out"), "Goodbye\n").unwrap();
    std::fs::write(dir.join("other.b"), "+.").unwrap();
    let out = vssa(
        &[
            "bench", "bf", "--runs", "1", "--corpus", ".", "--only", "hello", "--out", "b.md",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FAIL: hello/interp"), "{stderr}");
    let text = std::fs::read_to_string(dir.join("b.md")).unwrap();
    assert!(text.contains("| hello | FAIL | FAIL | FAIL |"), "{text}");
    assert!(!text.contains("other"), "{text}");
    // An unknown name is an error, not an empty table.
    let out = vssa(
        &[
            "bench", "bf", "--corpus", ".", "--only", "nope", "--out", "c.md",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("c.md").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn naive_engine_reports_errors_like_the_interpreter() {
    let dir = temp_dir("naive");
    for (name, src) in [
        ("hello.b", HELLO),
        ("under.b", "+.\n >+.<<<"),
        ("over.b", "+[>+]"),
    ] {
        std::fs::write(dir.join(name), src).unwrap();
        let run = |engine: &str| {
            vssa(
                &["run", "--engine", engine, "--tape-limit", "30000", name],
                &dir,
            )
        };
        let (i, n) = (run("interp"), run("naive"));
        assert_eq!(n.stdout, i.stdout, "{name}");
        assert_eq!(n.status.code(), i.status.code(), "{name}");
        assert_eq!(n.stderr, i.stderr, "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn translate_c_prints_a_program() {
    let dir = temp_dir("translate");
    std::fs::write(dir.join("p.b"), "+[-]>,.").unwrap();
    let plain = vssa(&["translate-c", "p.b"], &dir);
    let idioms = vssa(&["translate-c", "--idioms", "p.b"], &dir);
    assert!(plain.status.success() && idioms.status.success());
    let (plain, idioms) = (
        String::from_utf8(plain.stdout).unwrap(),
        String::from_utf8(idioms.stdout).unwrap(),
    );
    assert!(plain.contains("int main(void)") && plain.contains("while (*p) {"));
    assert!(idioms.contains("p[0] = 0;") && !idioms.contains("while (*p) {"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vssa bench recompile` on a tiny corpus of its own and small generated
/// programs: every file is written, every strategy measured, and the cache
/// serves every unit the deopt did not touch.
#[test]
fn recompile_bench_writes_tables_json_and_charts() {
    let dir = temp_dir("recompile");
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(corpus.join("nested.b"), "+[>+[.-]<-]+[>+[,-]<-]").unwrap();
    let out_dir = dir.join("out");
    let out = vssa(
        &[
            "bench",
            "recompile",
            "--runs",
            "1",
            "--max-units",
            "10",
            "--unit-nodes",
            "200",
            "--corpus",
            corpus.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let md = std::fs::read_to_string(out_dir.join("recompile-bench.md")).unwrap();
    assert!(md.contains("| nested | 2 | 1 |"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("recompile-bench.json")).unwrap())
            .unwrap();
    let grows = json["program_grows"].as_array().unwrap();
    assert_eq!(grows.len(), 2, "1 and 10 units");
    let ten = &grows[1];
    assert_eq!(ten["units"], 10);
    assert_eq!(ten["cache_hits"], 9);
    for k in ["full", "replay", "replay_cache", "unit"] {
        assert!(ten["recompile_ms"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    for svg in ["recompile-size.svg", "recompile-change.svg"] {
        let text = std::fs::read_to_string(out_dir.join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.ends_with("</svg>\n"),
            "{svg}"
        );
        assert!(text.contains("<polyline"), "{svg}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn has(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `vssa bench lua` at tiny sizes on the shared programs: every engine's
/// output is checked, the section lands in the Markdown file between its
/// markers (the rest kept), the JSON has the ratios.
#[test]
fn lua_bench_at_tiny_sizes() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/lua");
    if !shared.join("awfy/harness.lua").is_file() || !shared.join("bench").is_dir() {
        eprintln!("skipped: no ../shared/lua with awfy/ and bench/");
        return;
    }
    if !has("lua5.4") {
        eprintln!("skipped: no lua5.4 to compare with");
        return;
    }
    let dir = temp_dir("lua");
    let md = dir.join("bench.md");
    std::fs::write(&md, "# Benchmarks\n\nthe Brainfuck part\n").unwrap();
    let json = dir.join("bench.json");
    let out = vssa(
        &[
            "bench",
            "lua",
            "--runs",
            "1",
            "--only",
            "Towers,Sieve,recursive-fib",
            "--size",
            "Towers=2,Sieve=2,recursive-fib=12",
            "--awfy",
            shared.join("awfy").to_str().unwrap(),
            "--bench",
            shared.join("bench").to_str().unwrap(),
            "--out",
            md.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# Benchmarks\n\nthe Brainfuck part\n\n<!-- vssa bench lua: begin"));
    assert!(text.contains("| Towers | Towers 1 2 |"), "{text}");
    assert!(text.contains("| recursive-fib | 12 |"), "{text}");
    assert!(text.contains("geometric mean, Are-We-Fast-Yet"), "{text}");
    assert!(
        !text.contains("| FAIL") && !text.contains("Failures:"),
        "{text}"
    );
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let progs = j["programs"].as_array().unwrap();
    assert_eq!(progs.len(), 3);
    for p in progs {
        assert_eq!(p["engines"]["interp"]["ok"], true, "{p}");
        assert_eq!(p["engines"]["lua5.4"]["ok"], true, "{p}");
        assert!(p["engines"]["interp"]["wall_median_ms"].as_f64().unwrap() > 0.0);
        assert!(p["ratios"]["interp/lua5.4"]["wall"].as_f64().unwrap() > 0.0);
    }
    // A second run replaces its section, keeps the rest.
    let again = vssa(
        &[
            "bench",
            "lua",
            "--runs",
            "1",
            "--only",
            "recursive-fib",
            "--size",
            "recursive-fib=10",
            "--engines",
            "interp",
            "--bench",
            shared.join("bench").to_str().unwrap(),
            "--awfy",
            shared.join("awfy").to_str().unwrap(),
            "--out",
            md.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(again.status.success());
    let text = std::fs::read_to_string(&md).unwrap();
    assert_eq!(text.matches("<!-- vssa bench lua: begin").count(), 1);
    assert!(text.contains("| recursive-fib | 10 |") && !text.contains("| Towers |"));
    assert!(text.starts_with("# Benchmarks\n\nthe Brainfuck part\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bench program whose output differs from its `.out` is a FAIL and the
/// command fails (vssa alone: no other Lua needed).
#[test]
fn lua_bench_checks_outputs() {
    let dir = temp_dir("lua-fail");
    let bench = dir.join("bench");
    std::fs::create_dir_all(&bench).unwrap();
    std::fs::write(bench.join("hi.lua"), "print('hi', ...)").unwrap();
    std::fs::write(bench.join("hi.lua.arg"), "7").unwrap();
    std::fs::write(bench.join("hi.lua.out"), "hi\t8\n").unwrap();
    std::fs::write(bench.join("ok.lua"), "print('ok', ...)").unwrap();
    std::fs::write(bench.join("ok.lua.arg"), "7").unwrap();
    std::fs::write(bench.join("ok.lua.out"), "ok\t7\n").unwrap();
    let out = vssa(
        &[
            "bench",
            "lua",
            "--runs",
            "1",
            "--engines",
            "interp",
            "--awfy",
            "nowhere",
            "--bench",
            "bench",
            "--out",
            "b.md",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FAIL: hi/interp"), "{stderr}");
    let text = std::fs::read_to_string(dir.join("b.md")).unwrap();
    assert!(text.contains("| hi | 7 | FAIL |"), "{text}");
    assert!(
        text.contains("| ok | 7 |") && !text.contains("| ok | 7 | FAIL"),
        "{text}"
    );
    assert!(text.contains("output differs from hi.lua.out"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
