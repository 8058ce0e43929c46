//! End-to-end tests of `vssa run` on Lua programs.

mod common;

use common::scratch;
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
    let dir = scratch::root().join(format!("lua-cli-{tag}"));
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
        "vssa: runtime.lua:3: attempt to index a nil value (local 't')\n\
         stack traceback:\n\truntime.lua:3: in main chunk\n\t[C]: in ?\n"
    );

    std::fs::write(
        dir.join("deep.lua"),
        "local function f(n) return 1 + f(n + 1) end\nf(1)\n",
    )
    .unwrap();
    let (code, _, err) = vssa(&["run", "deep.lua"], &dir);
    assert_eq!(code, 1);
    // The traceback as lua5.4's: 10 levels, the elision, the last 11.
    assert!(
        err.starts_with(
            "vssa: deep.lua:1: stack overflow\nstack traceback:\n\tdeep.lua:1: in upvalue 'f'\n"
        ),
        "{err}"
    );
    assert!(
        err.ends_with("\tdeep.lua:1: in local 'f'\n\tdeep.lua:2: in main chunk\n\t[C]: in ?\n"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2 + 22, "{err}");
    assert!(
        err.lines()
            .nth(12)
            .unwrap()
            .starts_with("\t...\t(skipping "),
        "{err}"
    );

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

#[test]
fn lua_max_steps_stops_with_brainfuck_s_error_and_exit_code() {
    let dir = temp_dir("steps");
    std::fs::write(
        dir.join("loop.lua"),
        "print('start')\nlocal n = 0\nwhile true do\n  n = n + 1\nend\n",
    )
    .unwrap();
    let (code, out, err) = vssa(&["run", "--max-steps", "1000", "loop.lua"], &dir);
    assert_eq!((code, out.as_str()), (1, "start\n"));
    assert_eq!(
        err,
        "vssa: loop.lua:4: step limit exceeded (1000 instructions)\n"
    );
    // No pcall catches it.
    std::fs::write(
        dir.join("caught.lua"),
        "print(pcall(function() while true do end end))\nprint('after')\n",
    )
    .unwrap();
    let (code, out, err) = vssa(&["run", "--max-steps", "500", "caught.lua"], &dir);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("step limit exceeded (500 instructions)"),
        "{err}"
    );
    // Brainfuck's words and exit code are the same.
    std::fs::write(dir.join("loop.b"), "+[]").unwrap();
    let (code, _, err) = vssa(&["run", "--max-steps", "10", "loop.b"], &dir);
    assert_eq!(code, 1);
    assert!(err.contains("step limit exceeded (10 loop tests)"), "{err}");
}

#[test]
fn lua_stats_json_reports_phases_and_counts() {
    let dir = temp_dir("stats");
    std::fs::write(
        dir.join("p.lua"),
        "local t = {}\nfor i = 1, 200000 do t[i] = tostring(i) end\nprint(#t)\n",
    )
    .unwrap();
    let (code, out, err) = vssa(&["run", "--stats", "json", "p.lua"], &dir);
    assert_eq!((code, out.as_str()), (0, "200000\n"));
    let v: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON object");
    assert_eq!(v["lang"], "lua");
    assert_eq!(v["engine"], "interp");
    for k in ["parse_ms", "run_ms", "read_ms"] {
        assert!(v[k].as_f64().is_some_and(|x| x >= 0.0), "{k}: {v}");
    }
    assert!(v["compile_ms"]["bytecode"].as_f64().is_some(), "{v}");
    // Five instructions or more per iteration.
    assert!(v["instructions"].as_u64().unwrap() > 1_000_000, "{v}");
    assert!(v["gc_cycles"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["peak_heap_bytes"].as_u64().unwrap() > 4_000_000, "{v}");
    assert!(v.get("functions").is_none(), "only with -v: {v}");
    let (_, _, err) = vssa(&["run", "--stats", "json", "-v", "p.lua"], &dir);
    let v: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON object");
    assert_eq!(v["functions"], 1);
    assert!(v["bytecode_len"].as_u64().unwrap() > 5, "{v}");
    assert_eq!(v["max_memory"], 1u64 << 30);
    // Stats are printed for a run that fails too.
    let (code, _, err) = vssa(
        &["run", "--stats", "json", "--max-steps", "50", "p.lua"],
        &dir,
    );
    assert_eq!(code, 1);
    let mut lines = err.lines();
    let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(v["instructions"], 50);
    assert!(lines
        .next()
        .unwrap()
        .contains("step limit exceeded (50 instructions)"));
}

#[test]
fn lua_max_memory_is_a_catchable_error_and_uncaught_a_one_line_one() {
    let dir = temp_dir("memory");
    std::fs::write(
        dir.join("grow.lua"),
        "print(pcall(string.rep, 'x', 2e9))\nlocal s = 'x'\nwhile true do s = s .. s end\n",
    )
    .unwrap();
    let (code, out, err) = vssa(&["run", "--max-memory", "50000000", "grow.lua"], &dir);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "false\tnot enough memory\n", "vssa: not enough memory\n")
    );
}

#[test]
fn a_lua_script_that_is_a_device_or_too_large_is_a_one_line_error() {
    let dir = temp_dir("device");
    if std::path::Path::new("/dev/zero").exists() {
        let (code, out, err) = vssa(
            &[
                "run",
                "--lang",
                "lua",
                "--max-program-bytes",
                "1000",
                "/dev/zero",
            ],
            &dir,
        );
        assert_eq!((code, out.as_str()), (1, ""));
        assert_eq!(
            err,
            "vssa: /dev/zero: the program is larger than 1000 bytes (see --max-program-bytes)\n"
        );
    } else {
        println!("skipped the device case: no /dev/zero here");
    }
    std::fs::write(dir.join("big.lua"), "x = 1\n".repeat(1000)).unwrap();
    let (code, _, err) = vssa(&["run", "--max-program-bytes", "100", "big.lua"], &dir);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("larger than 100 bytes"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
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

/// An uncaught error's traceback names each frame as lua5.4 does (the text
/// lua5.4 5.4.4 printed for these programs, `lua5.4:` read as `vssa:`).
#[test]
fn tracebacks_name_frames_like_lua() {
    let dir = temp_dir("traceback");
    let cases: [(&str, &str, &str); 4] = [
        (
            "named.lua",
            "local function f(x)\n  error(\"boom\")\nend\nfunction g() f(1) end\n\
             local t = {}\nfunction t.h() g() end\nfunction t:m() t.h() end\nt:m()\n",
            "vssa: named.lua:2: boom\nstack traceback:\n\t[C]: in function 'error'\n\
             \tnamed.lua:2: in upvalue 'f'\n\tnamed.lua:4: in function 'g'\n\
             \tnamed.lua:6: in field 'h'\n\tnamed.lua:7: in method 'm'\n\
             \tnamed.lua:8: in main chunk\n\t[C]: in ?\n",
        ),
        (
            "table.lua",
            "error({})\n",
            "vssa: (error object is a table value)\nstack traceback:\n\
             \t[C]: in function 'error'\n\ttable.lua:1: in main chunk\n\t[C]: in ?\n",
        ),
        (
            "lib.lua",
            "string.rep()\n",
            "vssa: lib.lua:1: bad argument #1 to 'rep' (string expected, got no value)\n\
             stack traceback:\n\t[C]: in function 'string.rep'\n\
             \tlib.lua:1: in main chunk\n\t[C]: in ?\n",
        ),
        (
            "wrap.lua",
            "local co = coroutine.wrap(function() error(\"in co\") end)\nco()\n",
            "vssa: wrap.lua:2: wrap.lua:1: in co\nstack traceback:\n\
             \t[C]: in local 'co'\n\twrap.lua:2: in main chunk\n\t[C]: in ?\n",
        ),
    ];
    for (name, src, want) in cases {
        std::fs::write(dir.join(name), src).unwrap();
        let (code, _, err) = vssa(&["run", name], &dir);
        assert_eq!(code, 1, "{name}");
        assert_eq!(err, want, "{name}");
    }
    // An error caught by pcall leaves no traceback behind: the uncaught
    // one after it gets its own.
    std::fs::write(
        dir.join("caught.lua"),
        "local function bad() error('first') end\npcall(bad)\nlocal x = nil + 1\n",
    )
    .unwrap();
    let (_, _, err) = vssa(&["run", "caught.lua"], &dir);
    assert_eq!(
        err,
        "vssa: caught.lua:3: attempt to perform arithmetic on a nil value\n\
         stack traceback:\n\tcaught.lua:3: in main chunk\n\t[C]: in ?\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
