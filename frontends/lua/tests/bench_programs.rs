//! End to end: every program in `../shared/lua/bench` run with its
//! arguments gives exactly lua5.4's output (skipped, with the reason
//! printed, on a machine without the shared corpus).

mod common;

use common::{shared_lua, Capture};

#[test]
fn bench_programs_print_lua54_output() {
    let Some(dir) = shared_lua("bench") else {
        eprintln!("skipped: ../shared/lua/bench is not on this machine");
        return;
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("read bench dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "the corpus has programs");
    // One thread per program (each has its own interpreter): the
    // programs run at their recorded sizes, so this keeps the wall time
    // near the slowest one.
    let handles: Vec<_> = names
        .into_iter()
        .map(|path| {
            std::thread::spawn(move || {
                let src = std::fs::read(&path).expect("read program");
                let args: Vec<String> = std::fs::read_to_string(path.with_extension("lua.arg"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                let expected =
                    std::fs::read(path.with_extension("lua.out")).expect("expected output");
                let out = Capture::default();
                let name = path
                    .file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned();
                let r = vssa_lua::run_source(&src, &name, &args, Box::new(out.clone()));
                let got = out.bytes();
                (name, r, got, expected)
            })
        })
        .collect();
    for h in handles {
        let (name, r, got, expected) = h.join().expect("the program's thread");
        assert_eq!(r, Ok(()), "{name} failed");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{name}: output differs"
        );
    }
}
