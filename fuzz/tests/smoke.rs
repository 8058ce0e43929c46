//! A short fixed-seed run of every target: the fuzzers themselves keep
//! working and the pipeline passes them. Release checks run them longer
//! (see docs/testing.md).

use vssa_fuzz::{run_target, Config, Limit, Target};

fn smoke(target: Target, count: u64) {
    let cfg = Config {
        seed: 0x5EED,
        limit: Limit::Count(count),
        out: None,
        shrink: true,
        progress: None,
    };
    let s = run_target(target, &cfg);
    assert_eq!(s.tried, count);
    assert!(s.failures.is_empty(), "{s}\n{:#?}", s.failures);
    assert_eq!(s.mismatches + s.crashes, 0, "{s}");
}

#[test]
fn bf_smoke() {
    smoke(Target::Bf, 100);
}

#[test]
fn lir_smoke() {
    smoke(Target::Lir, 400);
}

#[test]
fn bytes_smoke() {
    smoke(Target::Bytes, 300);
}

#[test]
fn replay_smoke() {
    smoke(Target::Replay, 60);
}

#[test]
fn logbytes_smoke() {
    smoke(Target::LogBytes, 600);
}

#[test]
fn lua_shapes_smoke() {
    // Small inputs only would be a different target: a short fixed run,
    // sizes as drawn (most are small).
    smoke(Target::LuaShapes, 40);
}
