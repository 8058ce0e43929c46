//! Helpers shared by the workspace tests.
#![allow(dead_code)]

pub mod scratch;

use proptest::prelude::*;
use std::path::PathBuf;
use vssa_bf::runtime::{self, JitConfig};
use vssa_bf::{EofMode, Io, Program, RunError, RunOptions, Tape};

/// Points `VSSA_CACHE_DIR` (where the key that seals patch logs lives) at
/// a folder of this test process, once: tests never make or use the
/// user's own key. Call it before anything reads or writes a patch log;
/// pass [`test_cache_dir`] to spawned `vssa` commands.
pub fn private_seal_key() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("VSSA_CACHE_DIR", test_cache_dir()));
}

/// The `VSSA_CACHE_DIR` of this test process.
pub fn test_cache_dir() -> PathBuf {
    scratch::root().join("key")
}

/// The shared benchmark corpus, if this machine has it.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bf");
    dir.is_dir().then_some(dir)
}

/// A corpus program with its input and expected output.
pub struct CorpusProgram {
    pub name: String,
    pub source: Vec<u8>,
    pub input: Vec<u8>,
    pub expected: Vec<u8>,
}

/// Every corpus program that has an expected output, by name.
pub fn corpus() -> Vec<CorpusProgram> {
    let Some(dir) = corpus_dir() else {
        return Vec::new();
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("read corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "b"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        let expected = p.with_extension("b.out");
        if !expected.exists() {
            continue;
        }
        let input = std::fs::read(p.with_extension("b.in")).unwrap_or_default();
        out.push(CorpusProgram {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            source: std::fs::read(&p).unwrap(),
            input,
            expected: std::fs::read(expected).unwrap(),
        });
    }
    out
}

/// What a run produced: output bytes and the error, if any (as text).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub output: Vec<u8>,
    pub error: Option<RunError>,
}

pub const SMALL_TAPE: usize = 65_536;

pub fn run_interp(prog: &Program, input: &[u8], opts: RunOptions, tape_len: usize) -> Outcome {
    let mut tape = Tape::new(tape_len).unwrap();
    let mut inp = input;
    let mut output = Vec::new();
    let r = {
        let mut io = Io::new(&mut inp, &mut output);
        vssa_bf::run(prog, &mut tape, &mut io, &opts)
    };
    Outcome {
        output,
        error: r.err(),
    }
}

pub fn run_jit(prog: &Program, input: &[u8], opts: RunOptions, tape_len: usize) -> Outcome {
    let mut inp = input;
    let mut output = Vec::new();
    let cfg = checked_config(opts);
    let r = {
        let mut io = Io::new(&mut inp, &mut output);
        runtime::run_jit(prog, tape_len, &mut io, &cfg)
    };
    Outcome {
        output,
        error: guest_error(r.1),
    }
}

/// The pipeline with the optimizer and both verifiers on.
pub fn checked_config(opts: RunOptions) -> JitConfig {
    JitConfig {
        run: opts,
        optimize: true,
        verify: true,
        dump_dot: None,
        capture_clif: false,
        patch_log: None,
        code_store_bytes: 0,
    }
}

/// The guest's error from a compiled run; a failure of the pipeline itself
/// fails the test.
fn guest_error(r: Result<(), runtime::JitError>) -> Option<RunError> {
    match r {
        Ok(()) => None,
        Err(runtime::JitError::Run(e)) => Some(e),
        Err(e) => panic!("pipeline failure (not a guest error): {e}"),
    }
}

pub fn opts(max_steps: Option<u64>, eof: EofMode) -> RunOptions {
    RunOptions { max_steps, eof }
}

/// A random balanced program over all eight commands.
pub fn random_program() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        4 => Just("+"), 3 => Just("-"), 3 => Just(">"), 2 => Just("<"),
        2 => Just("."), 1 => Just(","),
    ];
    let leaf = prop::collection::vec(atom, 0..12).prop_map(|v| v.concat());
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop::collection::vec(
            prop_oneof![
                3 => inner.clone(),
                1 => inner.prop_map(|s| format!("[{s}]")),
            ],
            1..5,
        )
        .prop_map(|v| v.concat())
    })
}

/// Runs `prog` with the tiered engine (verifiers on), compiling loops after
/// `hot_loop` body entries and giving up a speculation after `recompile_after`
/// failures (0: never).
pub fn run_tiered(
    prog: &Program,
    input: &[u8],
    opts: RunOptions,
    tape_len: usize,
    hot_loop: u32,
    recompile_after: u32,
) -> (Outcome, vssa_bf::tiered::TieredReport) {
    use vssa_bf::tiered::{self, TieredConfig};
    let mut inp = input;
    let mut output = Vec::new();
    let cfg = TieredConfig {
        jit: checked_config(opts),
        hot_loop,
        policy: vssa_deopt::RecompilePolicy::after(recompile_after),
        // These tests are about what compiled units do: every hot loop is
        // compiled, however briefly the program has run.
        budget: vssa_deopt::CompileBudget::unlimited(),
        // And compiled at once: with a compile thread, when code arrives
        // (so what the counts in the report say) depends on the machine.
        compile_thread: false,
        ..TieredConfig::default()
    };
    let prog = std::sync::Arc::new(prog.clone());
    let (report, r) = {
        let mut io = Io::new(&mut inp, &mut output);
        tiered::run_tiered(&prog, tape_len, &mut io, &cfg)
    };
    (
        Outcome {
            output,
            error: guest_error(r),
        },
        report,
    )
}
