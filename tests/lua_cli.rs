//! End-to-end tests of `vssa run` on Lua programs.

use std::process::Command;

fn vssa(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn vssa");
    (
        out.status.code().expect("exited by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vssa-lua-cli-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn lua_file_runs_with_its_arguments_and_modules() {
    let dir = temp_dir("args");
    std::fs::write(
        dir.join("helper.lua"),
        "return {twice = function(x) return 2 * x end}",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.lua"),
        "local h = require('helper')\nprint(#arg, arg[0], arg[1], arg[2], ...)\nprint(h.twice(21), require('helper') == h)\n",
    )
    .unwrap();
    let (code, out, err) = vssa(&["run", "main.lua", "a", "-b"], &dir);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, "2\tmain.lua\ta\t-b\ta\t-b\n42\ttrue\n");
    // --lang lua picks the guest whatever the extension.
    std::fs::copy(dir.join("main.lua"), dir.join("main.txt")).unwrap();
    let (code, out, _) = vssa(&["run", "--lang", "lua", "main.txt", "x"], &dir);
    assert_eq!(code, 0);
    assert!(out.starts_with("1\tmain.txt\tx"), "{out}");
}

#[test]
fn lua_errors_are_one_line_with_the_position_and_exit_1() {
    let dir = temp_dir("errors");
    std::fs::write(dir.join("syntax.lua"), "local x = 1\nif x then\n").unwrap();
    let (code, out, err) = vssa(&["run", "syntax.lua"], &dir);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "vssa: syntax.lua:3: 'end' expected (to close 'if' at line 2) near <eof>\n"
    );

    std::fs::write(
        dir.join("runtime.lua"),
        "print('before')\nlocal t = nil\nprint(t.x)\n",
    )
    .unwrap();
    let (code, out, err) = vssa(&["run", "runtime.lua"], &dir);
    assert_eq!((code, out.as_str()), (1, "before\n"));
    assert_eq!(
        err,
        "vssa: runtime.lua:3: attempt to index a nil value (local 't')\n"
    );

    std::fs::write(
        dir.join("deep.lua"),
        "local function f(n) return 1 + f(n + 1) end\nf(1)\n",
    )
    .unwrap();
    let (code, _, err) = vssa(&["run", "deep.lua"], &dir);
    assert_eq!(code, 1);
    assert_eq!(err, "vssa: deep.lua:1: stack overflow\n");

    std::fs::write(dir.join("exit.lua"), "io.write('bye\\n') os.exit(3)").unwrap();
    let (code, out, _) = vssa(&["run", "exit.lua"], &dir);
    assert_eq!((code, out.as_str()), (3, "bye\n"));
}

#[test]
fn lua_runs_only_on_the_interpreter() {
    let dir = temp_dir("engine");
    std::fs::write(dir.join("p.lua"), "print(1)").unwrap();
    let (code, out, _) = vssa(&["run", "--engine", "interp", "p.lua"], &dir);
    assert_eq!((code, out.as_str()), (0, "1\n"));
    let (code, _, err) = vssa(&["run", "--engine", "jit", "p.lua"], &dir);
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("--engine interp only"), "{err}");
}

/// Runs `prog` with `input` on stdin; returns the exit code and stdout.
fn vssa_with_stdin(prog: &str, input: &[u8], tag: &str) -> (i32, String) {
    use std::io::Write as _;
    let dir = temp_dir(tag);
    std::fs::write(dir.join("p.lua"), prog).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(["run", "p.lua"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn vssa");
    child
        .stdin
        .take()
        .expect("a pipe")
        .write_all(input)
        .unwrap();
    let out = child.wait_with_output().expect("vssa ends");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().expect("exited by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn lua_reads_stdin_with_every_format() {
    let prog = "print(io.read('n', 'n')) print(io.read()) print(io.read('L')) \
                print(io.read(3), io.read(0)) for l in io.lines() do io.write('[', l, ']') end \
                print() print(io.read('a') == '', io.read('l'), io.read(0))";
    let (code, out) = vssa_with_stdin(prog, b" 12 0x10 rest\nline two\nabcdef\nx\ny", "stdin");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "12\t16\n rest\nline two\n\nabc\t\n[def][x][y]\ntrue\tnil\tnil\n"
    );
}

#[test]
fn lua_files_left_open_are_flushed_at_exit() {
    let dir = temp_dir("atexit");
    let prog = "KEEP = io.open('out.txt', 'w') KEEP:write('kept') io.write('done') os.exit(0)";
    std::fs::write(dir.join("p.lua"), prog).unwrap();
    let (code, out, _) = vssa(&["run", "p.lua"], &dir);
    assert_eq!((code, out.as_str()), (0, "done"));
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "kept"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lua_os_clock_is_the_cpu_time_used() {
    let dir = temp_dir("clock");
    // A fresh process has used little CPU time; a busy loop adds to it.
    let prog = "local c0 = os.clock() local x = 0 for i = 1, 3e7 do x = x + i end \
                local c1 = os.clock() print(c0 < 1, c1 > c0, math.type(c1))";
    std::fs::write(dir.join("p.lua"), prog).unwrap();
    let (code, out, _) = vssa(&["run", "p.lua"], &dir);
    assert_eq!((code, out.as_str()), (0, "true\ttrue\tfloat\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
