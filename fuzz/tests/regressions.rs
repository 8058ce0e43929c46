//! Inputs the fuzzers once failed on, kept as tests.

use vssa::interp::{eval, eval_linear, Memory};
use vssa::{CmpOp, Graph, Type};
use vssa_fuzz::lir::Checker;
use vssa_fuzz::Outcome;

/// `lir` seeds that failed with "does not continue the newest memory
/// state": the optimizer's forked memory chain (see below) made the first
/// interpreter reject graphs the machine runs correctly. The interpreter
/// now runs stores in machine order; these must pass.
#[test]
fn lir_memory_fork_seeds_pass() {
    let mut c = Checker::new();
    for seed in [
        0x6c27_53c0_402b_acdb,
        0xaf0d_e83c_c53e_2ecf,
        0xeb62_1635_f044_ff01,
        0xe1a9_2a9b_2692_a1a9,
        0x790d_769e_4b7d_3d06,
        0x2a08_19d8_653f_2881,
        0xe645_532c_cac0_c515,
        0x37bd_5632_c450_3dda,
        0x75f5_b65f_f4b7_8830,
        0x78fe_b153_c4e9_107f,
    ] {
        assert_eq!(c.check_seed(seed), Outcome::Pass, "seed {seed:#x}");
    }
}

/// The fork in its smallest form: `S1` writes bytes 0..2; on one path `S3`
/// overwrites bytes 0..4, so `store_over_store` rebuilds that path's chain
/// on the state *before* `S1` — while `S1` stays live for the other path
/// and still runs first on the machine. Harmless (every byte `S1` wrote is
/// overwritten before that path can read it), and the interpreter and
/// native code agree; but it breaks the linear-memory contract that
/// `vssa/src/peephole.rs` states for front-ends.
fn forked_graph(simplify: bool) -> Graph {
    let mut g = Graph::new();
    g.set_simplify_on_build(simplify);
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::Ptr).unwrap();
    let x = g.param(e.start, 1, Type::I64).unwrap();
    let v16 = g.iconst(Type::I16, 0x1111).unwrap();
    let v8 = g.iconst(Type::I8, 0x22).unwrap();
    let v32 = g.iconst(Type::I32, 0x3333_3333).unwrap();
    let s1 = g.store(e.ctrl, e.mem, p, 0, v16).unwrap();
    let zero = g.iconst(Type::I64, 0).unwrap();
    let c = g.cmp(CmpOp::Ne, x, zero).unwrap();
    let (t, f) = g.branch(e.ctrl, c).unwrap();
    let s2 = g.store(t, s1, p, 10, v8).unwrap();
    let s3 = g.store(t, s2, p, 0, v32).unwrap();
    let r = g.region(&[t, f]).unwrap();
    let m = g.phi(r, Type::Mem, &[s3, s1]).unwrap();
    let one = g.iconst(Type::I8, 1).unwrap();
    let ret = g.ret(r, m, one).unwrap();
    g.finish(&[ret]).unwrap();
    vssa::verify(&g).unwrap();
    g
}

fn run(g: &Graph, x: i64, linear: bool) -> (Result<i64, String>, Vec<u8>) {
    let mut mem = Memory::new(0x1000, 16);
    let f = if linear { eval_linear } else { eval };
    let r = f(g, &[0x1000, x], &mut mem, &mut |_, _| 0, 10_000).map_err(|e| e.to_string());
    (r, mem.bytes().to_vec())
}

#[test]
fn forked_memory_runs_like_the_machine() {
    for x in [0, 1] {
        let want = run(&forked_graph(false), x, true);
        assert!(want.0.is_ok());
        assert_eq!(run(&forked_graph(true), x, false), want, "x = {x}");
    }
}

/// Fixed: `store_over_store` only drops stores under the new store's own
/// control, so the peephole-built graph keeps memory linear.
#[test]
fn peepholes_keep_memory_linear() {
    for x in [0, 1] {
        let got = run(&forked_graph(true), x, true);
        assert!(got.0.is_ok(), "x = {x}: {:?}", got.0);
    }
}

/// `logbytes` finding: a well-formed log with a valid checksum whose one
/// patch `replace T B` names two nodes that both exist in the graph but
/// where `B` does not dominate `T`'s uses (here: the optimizer's own lines
/// with target and replacement swapped) is applied by replay, passes the
/// graph verifier, and then makes the scheduler fail ("n27 uses n77 at a
/// point that n77's definition does not dominate", or "the data
/// dependences of n3385 form a cycle"), so the driver stops with an
/// internal error instead of skipping the patch. First found as input
/// `0x38150cef94d31a07` of `--target logbytes --seed 1` (corpus program
/// 10), minimised to one line. Logs the optimizer wrote never do this, and
/// the checksum catches accidental damage, so only a forged log gets here;
/// the fuzzer counts such runs as `forged-rejected`. This test swaps every
/// recipe-less patch of the corpus programs' logs in turn (so it does not
/// depend on which addresses today's optimizer produces). Fixed in the
/// driver: a unit whose replayed log leaves a graph that does not compile
/// is compiled again without the log, with a warning
/// (`vssa_bf::runtime::compile_unit`). Replay itself still accepts such a
/// patch; refusing it there would need a dominance check. Since logs are
/// sealed, the driver does not replay a forged (unsealed) log at all.
#[test]
fn forged_swapped_patch_is_refused_not_fatal() {
    use vssa_fuzz::bf::{run_interp, run_jit};
    use vssa_fuzz::logbytes::{corpus_case, fix_checksum, CORPUS_SIZE};
    use vssa_fuzz::TempFile;
    let file = TempFile::new("regression");
    let mut tried = 0;
    for i in 0..CORPUS_SIZE {
        let case = corpus_case(i);
        let prog = vssa_bf::parse(&case.source).unwrap();
        let want = run_interp(&prog, &case);
        let _ = std::fs::remove_file(file.path());
        run_jit(&prog, &case, true, Some(file.path())).unwrap();
        // The text form of the log the driver wrote (binary, sealed).
        let log = vssa_patch::LogBook::parse(&std::fs::read(file.path()).unwrap(), "log")
            .unwrap()
            .to_text();
        // The header lines (any format version), without the checksum.
        let head: String = log
            .lines()
            .filter(|l| !l.starts_with("replace ") && !l.starts_with("checksum "))
            .map(|l| format!("{l}\n"))
            .collect();
        for line in log.lines().filter(|l| l.starts_with("replace ")) {
            let toks: Vec<&str> = line.split(' ').collect();
            if toks.len() != 3 {
                continue;
            }
            let forged = format!("{head}replace {} {}\n", toks[2], toks[1]);
            let bytes = fix_checksum(forged.as_bytes(), true);
            assert_eq!(vssa_fuzz::logbytes::parse_log(&bytes), Ok(1), "{forged}");
            std::fs::write(file.path(), bytes).unwrap();
            match run_jit(&prog, &case, true, Some(file.path())) {
                Ok((r, _)) => assert_eq!(r, want, "corpus program {i}, swapped `{line}`"),
                Err(e) => panic!("corpus program {i}, swapped `{line}`: {e}"),
            }
            tried += 1;
        }
    }
    assert!(tried > 0);
}

/// A `lir` seed whose code would not schedule ("uses n150 at a point that
/// n150's definition does not dominate"): a loop that stores nothing has
/// no memory phi, so its loads read the memory of the loop before it, and
/// `promote` carried such a load's place round that earlier loop although
/// the address is the later loop's counter. Promotion now takes a value of
/// an untracked loop as computed before a loop only if that loop comes
/// before it on the control paths.
#[test]
fn lir_promote_after_a_loop_seed_passes() {
    let mut c = Checker::new();
    assert_eq!(
        c.check(0xfaab_980d_87c7_e317, Some(34)),
        Outcome::Pass,
        "budget 34"
    );
    assert_eq!(c.check_seed(0xfaab_980d_87c7_e317), Outcome::Pass);
}
