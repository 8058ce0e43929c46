//! Patch logs end to end: record while optimizing, replay onto a fresh
//! graph, through files and through the JIT driver; damaged logs; the
//! shared corpus; and (ignored) the replay/optimize time measurement.

mod common;

use common::*;
use proptest::prelude::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vssa::{Addr, Graph};
use vssa_bf::build::{build_program, BuildOptions};
use vssa_bf::runtime::{self, JitConfig, JitReport};
use vssa_bf::{EofMode, Io, Program, RunError, DEFAULT_TAPE_LIMIT};
use vssa_patch::{program_key, replay, Log, LogBook, Outcome as PatchOutcome, Recorder};

fn build(prog: &Program) -> Graph {
    build_program(
        prog,
        BuildOptions {
            tape_len: SMALL_TAPE as u64,
            step_limit: false,
            tape_guard: 0,
        },
    )
    .expect("build")
    .graph
}

/// Builds and optimizes with recording: the optimized graph and its log.
fn record(prog: &Program) -> (Graph, Log) {
    let r = record_all(prog);
    (r.opt, r.net)
}

/// One recorded optimization, with everything the log tests compare.
struct Recorded {
    /// The graph as built.
    fresh: Graph,
    /// The graph after the optimizer.
    opt: Graph,
    /// The log the recorder hands out (the net effect).
    net: Log,
    /// Every replacement the optimizer made.
    full: Log,
}

fn record_all(prog: &Program) -> Recorded {
    record_with(prog, |g| {
        vssa::optimize(g).expect("optimize");
    })
}

/// [`record_all`] with the JIT's middle end (guard hoisting, promotion,
/// closed forms) instead of the optimizer alone.
fn record_middle_end(prog: &Program) -> Recorded {
    record_with(prog, |g| {
        vssa_jit::middle_end(g, &[], None, &Default::default()).expect("middle end");
    })
}

/// Builds `prog` and runs `pass` on a copy under a recorder.
fn record_with(prog: &Program, pass: impl FnOnce(&mut Graph)) -> Recorded {
    let fresh = build(prog);
    let mut opt = fresh.clone();
    let rec = Recorder::start(&opt);
    pass(&mut opt);
    let net = rec.log(&opt).expect("record");
    let full = rec.full_log(&opt).expect("record");
    Recorded {
        fresh,
        opt,
        net,
        full,
    }
}

/// The guards the front-end built that the full record replaces some
/// node by (guard hoisting dropping a loop's top guard for the one above).
fn front_end_guards_replacing(r: &Recorded) -> Vec<Addr> {
    let mut v: Vec<Addr> = r
        .full
        .patches
        .iter()
        .map(|p| p.by)
        .filter(|a| {
            r.fresh
                .lookup(a)
                .is_some_and(|id| matches!(r.fresh.op(id), vssa::Op::Guard { .. }))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Replays `log` refuting `guard` on a copy of `fresh`: how many patches
/// the cut dropped, the live addresses, and where every node the
/// front-end built resolves to.
fn replay_refuting(fresh: &Graph, log: &Log, guard: Addr) -> (usize, Vec<Addr>, Vec<Addr>) {
    let mut log = log.clone();
    log.refute(guard);
    let mut g = fresh.clone();
    let r = replay(&mut g, &log);
    let resolved = (0..fresh.len())
        .map(|i| g.addr(g.resolve(vssa::NodeId::from_index(i))))
        .collect();
    (r.refuted, live_addrs(&g), resolved)
}

/// Checks that the net log cuts where the full record does for every
/// front-end guard some node is replaced by; how many there were.
fn check_front_end_guard_cuts(r: &Recorded) -> usize {
    let guards = front_end_guards_replacing(r);
    for &guard in &guards {
        let (net_cut, net_live, net_resolved) = replay_refuting(&r.fresh, &r.net, guard);
        let (full_cut, full_live, full_resolved) = replay_refuting(&r.fresh, &r.full, guard);
        assert!(net_cut > 0 && full_cut > 0, "no cut at {}", guard.short());
        assert_eq!(net_live, full_live, "live nodes after the cut");
        assert_eq!(net_resolved, full_resolved, "front-end nodes after the cut");
    }
    guards.len()
}

#[test]
fn a_net_log_cuts_where_a_front_end_guard_replaces_a_node() {
    // Loops entered through a bounds guard their top repeats (found by the
    // random programs below): guard hoisting replaces the top guard by the
    // front-end's. The net log used to give up on such a record and keep
    // it whole.
    for src in ["[<<]+<>[[<>.]]>", "[+]+<+><>[++]"] {
        let r = record_middle_end(&vssa_bf::parse(src).unwrap());
        assert!(check_front_end_guard_cuts(&r) > 0, "{src}: no such guard");
        let mut g = r.fresh.clone();
        assert!(replay(&mut g, &r.net).complete());
        assert_eq!(live_addrs(&g), live_addrs(&r.opt));
    }
    // With a nest after it, some of the optimizer's steps are its own
    // rewrites of earlier ones: a net log (not the whole record kept as a
    // fallback) is shorter, and still cuts at the front-end guard.
    let r = record_middle_end(&vssa_bf::parse("[<<]+<>[[<>.]]>+++[>+++[>++<-]<-]>>.").unwrap());
    assert!(check_front_end_guard_cuts(&r) > 0, "no front-end guard");
    assert!(
        r.net.patches.len() < r.full.patches.len(),
        "the net log is the full record"
    );
}

fn live_addrs(g: &Graph) -> Vec<Addr> {
    let mut v: Vec<Addr> = g.live_nodes().into_iter().map(|n| g.addr(n)).collect();
    v.sort();
    v
}

/// One block by address: head, phis, nodes, predecessor block indexes.
type BlockAddrs = (Addr, Vec<Addr>, Vec<Addr>, Vec<u32>);

/// The graph as the driver schedules it: a copy with its guards lowered
/// to deopt exits (`prog` gives the context node, the same in every graph
/// built from it).
fn lowered(g: &Graph, prog: &Program) -> Graph {
    let ctx = build_program(
        prog,
        BuildOptions {
            tape_len: SMALL_TAPE as u64,
            step_limit: false,
            tape_guard: 0,
        },
    )
    .expect("build")
    .ctx;
    let mut g = g.clone();
    vssa_deopt::lower_guards(
        &mut g,
        &vssa_deopt::DeoptAbi {
            ctx,
            buffer_offset: vssa_bf::build::ctx_offset::DEOPT,
            capacity: vssa_bf::build::DEOPT_SLOTS,
            first_exit: vssa_bf::build::EXIT_FIRST_DEOPT as i64,
            exit_type: vssa::Type::I32,
        },
    )
    .expect("lower guards");
    g
}

/// The schedule (of the lowered graph) with every node named by address.
fn schedule_addrs(g: &Graph, prog: &Program) -> Vec<BlockAddrs> {
    let g = &lowered(g, prog);
    let s = vssa_schedule::schedule(g).expect("schedule");
    s.blocks
        .iter()
        .map(|b| {
            (
                g.addr(b.head),
                b.phis.iter().map(|&n| g.addr(n)).collect(),
                b.nodes.iter().map(|&n| g.addr(n)).collect(),
                b.preds.iter().map(|p| p.0).collect(),
            )
        })
        .collect()
}

/// A name no other case of this process uses.
fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "{prefix}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    common::scratch::fresh(&format!("patch-log-{name}"))
}

/// Loop tests allowed to generated programs (they may loop forever).
const STEPS: Option<u64> = Some(20_000);

/// Runs `prog` through the JIT with a patch log.
fn run_with_log(
    prog: &Program,
    input: &[u8],
    steps: Option<u64>,
    tape: usize,
    log: Option<PathBuf>,
) -> (Outcome, JitReport) {
    private_seal_key();
    let mut inp = input;
    let mut output = Vec::new();
    let cfg = JitConfig {
        run: opts(steps, EofMode::Unchanged),
        optimize: true,
        verify: false,
        dump_dot: None,
        capture_clif: false,
        patch_log: log,
        code_store_bytes: 0,
    };
    let (report, r) = {
        let mut io = Io::new(&mut inp, &mut output);
        runtime::run_jit(prog, tape, &mut io, &cfg)
    };
    let error: Option<RunError> = match r {
        Ok(()) => None,
        Err(runtime::JitError::Run(e)) => Some(e),
        Err(e) => panic!("pipeline failure: {e}"),
    };
    (Outcome { output, error }, report)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Record then replay (through the text format): same live addresses,
    /// same schedule, nothing left for the optimizer.
    #[test]
    fn replay_reproduces_the_optimized_graph(src in random_program()) {
        let prog = vssa_bf::parse(&src).unwrap();
        let (opt, log) = record(&prog);
        let log = Log::parse(log.to_text().as_bytes(), "mem").unwrap();
        let mut g = build(&prog);
        let r = replay(&mut g, &log);
        prop_assert!(r.complete(), "{:?}", r);
        prop_assert_eq!(live_addrs(&g), live_addrs(&opt));
        prop_assert_eq!(schedule_addrs(&g, &prog), schedule_addrs(&opt, &prog));
        prop_assert_eq!(vssa::optimize(&mut g).unwrap().replaced, 0);
    }

    /// The net log (what the recorder hands out) and the full record of
    /// every replacement rebuild the same live graph and schedule, and a
    /// recompilation's sealed log replays exactly like its text.
    #[test]
    fn net_and_full_logs_agree(src in random_program()) {
        let prog = vssa_bf::parse(&src).unwrap();
        let Recorded { fresh, opt, net, full } = record_all(&prog);
        prop_assert!(net.patches.len() <= full.patches.len());
        let parsed = Log::parse(net.to_text().as_bytes(), "mem").unwrap();
        prop_assert!(net.is_sealed() && !parsed.is_sealed());
        let mut graphs = Vec::new();
        for log in [&net, &full, &parsed] {
            let mut g = fresh.clone();
            let r = replay(&mut g, log);
            prop_assert!(r.complete(), "{:?}", r);
            prop_assert_eq!(live_addrs(&g), live_addrs(&opt));
            prop_assert_eq!(schedule_addrs(&g, &prog), schedule_addrs(&opt, &prog));
            graphs.push(g);
        }
        // Recording a replayed graph gives the net log back.
        prop_assert_eq!(&Recorder::start(&fresh).log(&graphs[0]).unwrap(), &net);
        prop_assert_eq!(&Recorder::start(&fresh).log(&graphs[1]).unwrap(), &net);
    }

    /// With the JIT's middle end (guard hoisting): net and full logs
    /// rebuild the same graph, and cut alike at every front-end guard a
    /// node was replaced by.
    #[test]
    fn net_logs_of_the_middle_end_cut_like_full_ones(src in random_program()) {
        let prog = vssa_bf::parse(&src).unwrap();
        let r = record_middle_end(&prog);
        for log in [&r.net, &r.full] {
            let mut g = r.fresh.clone();
            let rep = replay(&mut g, log);
            prop_assert!(rep.complete(), "{:?}", rep);
            prop_assert_eq!(live_addrs(&g), live_addrs(&r.opt));
        }
        check_front_end_guard_cuts(&r);
    }

    /// Another program's log is stale as a whole and changes nothing.
    #[test]
    fn a_log_never_changes_another_program(a in random_program(), b in random_program()) {
        let (pa, pb) = (vssa_bf::parse(&a).unwrap(), vssa_bf::parse(&b).unwrap());
        let (_, log) = record(&pa);
        let mut g = build(&pb);
        let fresh = build(&pb);
        let r = replay(&mut g, &log);
        if a != b && r.mismatch.is_some() {
            prop_assert_eq!(r.stale, log.patches.len());
            prop_assert_eq!(live_addrs(&g), live_addrs(&fresh));
        } else {
            // Same graph (the builder can fold different sources alike).
            prop_assert!(r.complete());
        }
        // And the program behaves as without the log.
        let dir = scratch(&unique("other"));
        let file = dir.join("a.log");
        // Sealed under this test's key, so that the driver would replay it.
        private_seal_key();
        let key = vssa_patch::SealKey::user().unwrap();
        LogBook::from(log.clone()).save(&file, Some(&key)).unwrap();
        let input = b"xyz";
        let (with, _) = run_with_log(&pb, input, STEPS, SMALL_TAPE, Some(file));
        let reference = run_interp(&pb, input, opts(STEPS, EofMode::Unchanged), SMALL_TAPE);
        prop_assert_eq!(with, reference);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Through the driver: run 1 records, run 2 replays everything, same output.
    #[test]
    fn second_run_replays_everything(src in random_program()) {
        let prog = vssa_bf::parse(&src).unwrap();
        let dir = scratch(&unique("run"));
        let file = dir.join("p.log");
        let (o1, r1) = run_with_log(&prog, b"ab", STEPS, SMALL_TAPE, Some(file.clone()));
        let (o2, r2) = run_with_log(&prog, b"ab", STEPS, SMALL_TAPE, Some(file.clone()));
        prop_assert_eq!(&o1, &o2);
        prop_assert_eq!(r2.patches_replayed, r1.patches_recorded);
        prop_assert_eq!(r2.patches_stale + r2.patches_conflicting + r2.patches_recorded, 0);
        prop_assert_eq!(r2.nodes_after_opt, r1.nodes_after_opt);
        prop_assert!(r2.patch_log_warnings.is_empty(), "{:?}", r2.patch_log_warnings);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Everything a replay left in `g`, by address: every node in order and
/// every replacement.
fn graph_by_addr(g: &Graph) -> (Vec<Addr>, Vec<(Addr, Addr)>) {
    (
        g.ids().map(|i| g.addr(i)).collect(),
        g.replacements()
            .iter()
            .map(|&(a, b)| (g.addr(a), g.addr(b)))
            .collect(),
    )
}

/// One edit of a log: which patch, which address of `pool`, what to do.
type Edit = (usize, usize, u8);

/// `log` with `edits` made: targets, replacements and recipe inputs
/// pointed at other addresses, patches dropped or swapped, guards refuted.
fn edited(log: &Log, pool: &[Addr], edits: &[Edit]) -> Log {
    let mut log = log.clone();
    log.unseal();
    for &(i, j, how) in edits {
        let n = log.patches.len();
        if n == 0 {
            break;
        }
        let (i, a) = (i % n, pool[j % pool.len()]);
        match how {
            0 => log.patches[i].target = a,
            1 => log.patches[i].by = a,
            2 => {
                // A recipe input, of this patch or the next that has one:
                // half the time an earlier patch's target (replaced by
                // then, which replay must notice).
                let Some(k) = (0..n)
                    .map(|d| (i + d) % n)
                    .find(|&k| log.patches[k].nodes.iter().any(|n| !n.inputs.is_empty()))
                else {
                    continue;
                };
                let a = match j % 2 {
                    0 if k > 0 => log.patches[j % k].target,
                    _ => a,
                };
                let inputs = log.patches[k]
                    .nodes
                    .iter_mut()
                    .flat_map(|n| n.inputs.iter_mut());
                if let Some(x) = inputs.last() {
                    *x = a;
                }
            }
            3 => {
                log.patches.remove(i);
            }
            4 => log.patches.swap(i, j % n),
            _ => {
                log.refute(a);
            }
        }
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Replay from a binary file's node table by index (what a later run
    /// does) and replay of the same log spelled out with addresses agree
    /// patch for patch — the same outcomes, the same nodes and
    /// replacements — on the log as recorded (sealed) and on edited
    /// copies (unsealed, so both check every node by hashing it).
    #[test]
    fn table_replay_agrees_with_log_replay(
        src in random_program(),
        edits in proptest::collection::vec((0usize..1000, 0usize..1000, 0u8..6), 0..12),
    ) {
        let prog = vssa_bf::parse(&src).unwrap();
        let Recorded { fresh, net, .. } = record_all(&prog);
        let key = vssa_patch::SealKey::from_bytes([7; 32]);
        // The pool of addresses edits use: the log's, the graph's, and
        // one that is nowhere.
        let mut pool: Vec<Addr> = net
            .patches
            .iter()
            .flat_map(|p| {
                let mut v = vec![p.target, p.by];
                v.extend(p.nodes.iter().flat_map(|n| n.inputs.iter().copied().chain([n.addr])));
                v
            })
            .collect();
        pool.extend(fresh.ids().step_by(7).map(|i| fresh.addr(i)));
        pool.push(Addr([0xee; 16]));
        let cases = [(net.clone(), Some(&key)), (edited(&net, &pool, &edits), None)];
        for (log, seal) in cases {
            let file = LogBook::from(log.clone()).to_binary(seal);
            let (book, _) = LogBook::parse_keyed(&file, "mem", seal).unwrap();
            let mut by_index = fresh.clone();
            let rec = Recorder::start(&by_index);
            let r1 = book.replay_unit(&mut by_index, &rec).expect("the unit is there");
            let mut by_addr = fresh.clone();
            let r2 = replay(&mut by_addr, &log);
            prop_assert_eq!(&r1, &r2);
            prop_assert_eq!(graph_by_addr(&by_index), graph_by_addr(&by_addr));
            // The book compares equal to the log it was written from
            // without spelling its unit out, and unequal to another.
            prop_assert!(book.holds(&log));
            let mut other = log.clone();
            other.refute(Addr([0xef; 16]));
            prop_assert!(!book.holds(&other));
        }
    }
}

/// A program with loops, I/O and plenty for the optimizer to do.
const SAMPLE: &str =
    "++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.,[.[-],]";

/// Damaged copies of a log file's `text`, each with what was done to it:
/// truncated every `cut_step` bytes, bits flipped every `flip_step` bytes,
/// and every pair of different lines swapped (swapping equal lines would
/// give the file back unchanged).
fn damaged(text: &[u8], cut_step: usize, flip_step: usize) -> Vec<(String, Vec<u8>)> {
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in (0..text.len()).step_by(cut_step) {
        variants.push((format!("truncated at {cut}"), text[..cut].to_vec()));
    }
    for at in (0..text.len()).step_by(flip_step) {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut t = text.to_vec();
            t[at] ^= flip;
            variants.push((format!("byte {at} ^ {flip:#x}"), t));
        }
    }
    for i in 0..lines.len() {
        for j in i + 1..lines.len() {
            if lines[i] != lines[j] {
                let mut l = lines.clone();
                l.swap(i, j);
                variants.push((format!("lines {} and {} swapped", i + 1, j + 1), l.concat()));
            }
        }
    }
    variants
}

/// The net log (only the rewrites the result can see) is never longer
/// than the record of every replacement, and both rebuild the optimized
/// graph, on the bundled demo and the samples here. (The demo's net log
/// used to be shorter: value numbering rebuilt nodes on resolved inputs,
/// and the optimizer then rewrote its own rewrites; since it looks nodes
/// up instead, these programs' two logs are the same length.)
#[test]
fn the_net_log_and_the_full_record_both_rebuild_the_graph() {
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/demo.b")).unwrap();
    let nodes = |l: &Log| l.patches.iter().map(|p| p.nodes.len()).sum::<usize>();
    let demo_full = record_all(&vssa_bf::parse(&demo).unwrap()).full;
    assert!(!demo_full.patches.is_empty(), "the demo is optimized");
    for src in [demo.as_str(), SAMPLE, UNITS[1], UNITS[2]] {
        let prog = vssa_bf::parse(src).unwrap();
        let Recorded {
            fresh,
            opt,
            net,
            full,
        } = record_all(&prog);
        assert!(net.patches.len() <= full.patches.len(), "{src}");
        assert!(nodes(&net) <= nodes(&full), "{src}");
        for log in [&net, &full] {
            let mut g = fresh.clone();
            assert!(replay(&mut g, log).complete(), "{src}");
            assert_eq!(live_addrs(&g), live_addrs(&opt), "{src}");
            assert_eq!(
                schedule_addrs(&g, &prog),
                schedule_addrs(&opt, &prog),
                "{src}"
            );
        }
    }
}

/// Every kind of damage: an error naming a line or a stale log, never a
/// panic, and the program still runs correctly.
#[test]
fn damaged_logs_are_errors_or_stale_never_panics() {
    let prog = vssa_bf::parse(SAMPLE).unwrap();
    let (_, log) = record(&prog);
    let text = log.to_text().into_bytes();
    let variants = damaged(&text, 7, 5);
    let reference = run_interp(&prog, b"in", opts(None, EofMode::Unchanged), SMALL_TAPE);
    let dir = scratch("damaged");
    let file = dir.join("d.log");
    let mut errors = 0;
    for (k, (what, bytes)) in variants.iter().enumerate() {
        match Log::parse(bytes, "d.log") {
            Err(e) => {
                errors += 1;
                let msg = e.to_string();
                // A damage that turns the magic line into the binary
                // form's (`2` -> `3`) gets an error naming a byte.
                let named = e.line.is_some() || msg.starts_with("d.log: byte ");
                assert!(
                    named && msg.starts_with("d.log:") && !msg.contains('\n'),
                    "{what}: {msg}"
                );
            }
            Ok(parsed) => {
                // Only a change that keeps the log valid (none expected
                // here): it must replay without misapplying anything.
                let mut g = build(&prog);
                let r = replay(&mut g, &parsed);
                assert_eq!(r.outcomes.len(), parsed.patches.len(), "{what}");
            }
        }
        // The driver runs the program correctly whatever the file holds
        // (a sample of the variants: each run compiles).
        if k % 97 == 0 {
            std::fs::write(&file, bytes).unwrap();
            let (out, report) = run_with_log(&prog, b"in", None, SMALL_TAPE, Some(file.clone()));
            assert_eq!(out, reference, "{what}");
            assert_eq!(report.patches_replayed, 0, "{what}: a damaged log was used");
            // One warning for the damage; a second if it hit the magic
            // (then the file is not recognisably a log, and is kept; an
            // empty file is replaced).
            let magic_ok = bytes.is_empty() || bytes.starts_with(b"vssa-patch-log ");
            let w = &report.patch_log_warnings;
            assert_eq!(w.len(), if magic_ok { 1 } else { 2 }, "{what}: {w:?}");
            if !magic_ok {
                assert!(w[1].contains("not a vssa patch log"), "{what}: {w:?}");
                assert_eq!(&std::fs::read(&file).unwrap(), bytes, "{what}");
            }
        }
    }
    assert_eq!(errors, variants.len(), "every damaged variant is rejected");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A valid log (checksum recomputed) whose patch names absent addresses or
/// was recorded for another program: stale, not applied, not an error.
#[test]
fn stale_logs_are_reported_not_misapplied() {
    let prog = vssa_bf::parse(SAMPLE).unwrap();
    let (_, log) = record(&prog);
    // Another program: every patch stale.
    let other = vssa_bf::parse("+[>+<-]>.").unwrap();
    let mut g = build(&other);
    let before = live_addrs(&g);
    let r = replay(&mut g, &Log::parse(log.to_text().as_bytes(), "x").unwrap());
    assert!(r.mismatch.is_some());
    assert_eq!(r.stale, log.patches.len());
    assert_eq!(live_addrs(&g), before);
    // An older encoding: stale as a whole.
    let mut old = log.clone();
    old.encoding = 0;
    let mut g = build(&prog);
    let r = replay(&mut g, &Log::parse(old.to_text().as_bytes(), "x").unwrap());
    assert!(r.mismatch.is_some() && r.stale == log.patches.len());
    // A target that does not exist: that patch stale, later ones that
    // depend on it stale or applied, never a panic; the result still runs.
    let mut edited = log.clone();
    edited.patches[0].target = Addr([0xab; 16]);
    let mut g = build(&prog);
    let r = replay(&mut g, &edited);
    assert_eq!(
        r.outcomes[0],
        PatchOutcome::Stale {
            missing: Some(Addr([0xab; 16]))
        }
    );
    vssa::optimize(&mut g).unwrap();
    vssa_schedule::schedule(&lowered(&g, &prog)).unwrap();
}

/// Sources for a book of several units (each its own program, as the
/// tiered JIT's loops are).
const UNITS: [&str; 3] = [SAMPLE, "+[>+<-]>.", ",[>++<-]>[-<+>]<."];

/// A book of the units above, the second with a refuted guard (the first
/// node its log builds stands in for one).
fn unit_book() -> (LogBook, Vec<Program>) {
    let mut book = LogBook::new();
    let mut progs = Vec::new();
    for (i, src) in UNITS.iter().enumerate() {
        let prog = vssa_bf::parse(src).unwrap();
        let (_, mut log) = record(&prog);
        if i == 1 {
            if let Some(n) = log.patches.iter().flat_map(|p| &p.nodes).next() {
                let a = n.addr;
                log.refute(a);
            }
            log.refute(Addr([0x5a; 16]));
        }
        book.insert(log);
        progs.push(prog);
    }
    (book, progs)
}

/// Every unit of a book, through the text, replays onto its own program
/// (looked up by program key) like its own log would.
#[test]
fn a_book_replays_each_unit_by_key() {
    let (book, progs) = unit_book();
    assert_eq!(book.len(), UNITS.len());
    let back = LogBook::parse(book.to_text().as_bytes(), "book").unwrap();
    assert_eq!(back, book);
    for (i, prog) in progs.iter().enumerate() {
        let (opt, _) = record(prog);
        let mut g = build(prog);
        let unit = back.unit(&program_key(&g)).expect("a unit per program");
        let r = replay(&mut g, unit);
        assert_eq!(r.outcomes.len(), unit.patches.len());
        assert_eq!(r.stale + r.conflicting, 0, "unit {i}: {r:?}");
        if unit.refuted.len() > 1 {
            assert!(r.refuted > 0 && !r.complete(), "unit {i}: {r:?}");
        } else {
            assert!(r.complete(), "unit {i}: {r:?}");
        }
        // What replay left, the optimizer finishes: the same graph.
        vssa::optimize(&mut g).unwrap();
        assert_eq!(live_addrs(&g), live_addrs(&opt), "unit {i}");
        assert_eq!(
            schedule_addrs(&g, prog),
            schedule_addrs(&opt, prog),
            "unit {i}"
        );
    }
}

/// Truncations, byte flips and swapped lines of a book of several units:
/// every one an error naming a line, never a panic, never a book.
#[test]
fn damaged_books_are_errors_never_panics() {
    let (book, _) = unit_book();
    let text = book.to_text().into_bytes();
    let variants = damaged(&text, 3, 3);
    for (what, bytes) in &variants {
        match LogBook::parse(bytes, "b.log") {
            Err(e) => {
                let msg = e.to_string();
                // A damage that turns the magic line into the binary
                // form's (`2` -> `3`) gets an error naming a byte.
                let named = e.line.is_some() || msg.starts_with("b.log: byte ");
                assert!(
                    named && msg.starts_with("b.log:") && !msg.contains('\n'),
                    "{what}: {msg}"
                );
            }
            Ok(_) => panic!("{what}: a damaged book was accepted"),
        }
    }
}

/// `vssa run --patch-log` on every corpus program: the second run replays
/// every patch, none stale, no optimizer, identical output.
#[test]
fn corpus_second_run_replays_every_patch() {
    let programs = corpus();
    if programs.is_empty() {
        println!("skipped: ../shared/bf is absent on this machine");
        return;
    }
    let dir = scratch("corpus");
    for p in programs {
        let prog = vssa_bf::parse(&p.source).unwrap();
        let file = dir.join(format!("{}.log", p.name));
        let (o1, r1) = run_with_log(
            &prog,
            &p.input,
            None,
            DEFAULT_TAPE_LIMIT,
            Some(file.clone()),
        );
        let (o2, r2) = run_with_log(
            &prog,
            &p.input,
            None,
            DEFAULT_TAPE_LIMIT,
            Some(file.clone()),
        );
        assert!(o1.output == p.expected && o1.error.is_none(), "{}", p.name);
        assert_eq!(o2, o1, "{}", p.name);
        assert_eq!(r2.patches_replayed, r1.patches_recorded, "{}", p.name);
        assert_eq!(r2.patches_stale + r2.patches_conflicting, 0, "{}", p.name);
        assert_eq!(r2.optimize, Duration::ZERO, "{}: optimizer ran", p.name);
        assert_eq!(r2.nodes_after_opt, r1.nodes_after_opt, "{}", p.name);
        println!(
            "{}: {} patches replayed (replay {:?}, first optimize {:?})",
            p.name, r2.patches_replayed, r2.replay, r1.optimize
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The measurement behind docs/patch-log.md: per corpus program, the
/// optimizer and the replay of its (net) log on fresh graphs, side by side,
/// medians of 31: the program key (both paths compute it), parsing the
/// file text (checksum included), replaying the parsed log (every recipe
/// node hashed again: "checked"), and replaying the recorder's own sealed
/// log, as a recompilation in the same process does ("sealed"). Run with
/// `cargo test --release --test patch_log -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_replay_vs_optimize() {
    const ROUNDS: usize = 31;
    let programs = corpus();
    if programs.is_empty() {
        println!("skipped: ../shared/bf is absent on this machine");
        return;
    }
    println!(
        "| program | patches (every / net) | text bytes | binary bytes | optimize ms | program key ms | text parse ms | replay, checked ms | binary parse + seal ms | replay from file, sealed ms | (text parse + checked) / optimize | (binary parse + sealed) / optimize | sealed in process / optimize |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let key = vssa_patch::SealKey::from_bytes([0x42; 32]);
    for p in programs {
        let prog = vssa_bf::parse(&p.source).unwrap();
        let (full, log) = {
            let mut g = build(&prog);
            let rec = Recorder::start(&g);
            vssa::optimize(&mut g).unwrap();
            (rec.finish(&g).unwrap().len(), rec.log(&g).unwrap())
        };
        let text = log.to_text();
        let binary = LogBook::from(log.clone()).to_binary(Some(&key));
        let mut t: [Vec<f64>; 7] = Default::default();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for _ in 0..ROUNDS {
            let mut g = build(&prog);
            let at = Instant::now();
            vssa::optimize(&mut g).unwrap();
            t[0].push(ms(at.elapsed()));
            drop(g);

            // The program key: both paths compute it (to find the log, or
            // to file the new one), so it is reported apart.
            let mut g = build(&prog);
            let at = Instant::now();
            let rec = Recorder::start(&g);
            t[1].push(ms(at.elapsed()));
            // The text form from a file: its recipe addresses are hashed
            // again ("checked").
            let at = Instant::now();
            let parsed = Log::parse(text.as_bytes(), "log").unwrap();
            t[2].push(ms(at.elapsed()));
            let at = Instant::now();
            let r = rec.replay(&mut g, &parsed);
            t[3].push(ms(at.elapsed()));
            assert!(r.complete() && !parsed.is_sealed());
            drop(g);

            // The binary form from a file, its seal checked: what a later
            // `vssa run` does.
            let mut g = build(&prog);
            let rec = Recorder::start(&g);
            let at = Instant::now();
            let (book, _) = LogBook::parse_keyed(&binary, "log", Some(&key)).unwrap();
            t[4].push(ms(at.elapsed()));
            // Replayed by index from the file's node table.
            let at = Instant::now();
            let r = book.replay_unit(&mut g, &rec).unwrap();
            t[5].push(ms(at.elapsed()));
            assert!(r.complete() && book.unit(&log.program).unwrap().is_sealed());
            drop(g);

            // A recompilation in the same process: the recorder's own log.
            let mut g = build(&prog);
            let rec = Recorder::start(&g);
            let at = Instant::now();
            let r = rec.replay(&mut g, &log);
            t[6].push(ms(at.elapsed()));
            assert!(r.complete() && log.is_sealed());
        }
        let [opt, key_ms, parse, checked, bparse, bsealed, sealed] = t.map(|mut v| median(&mut v));
        println!(
            "| {} | {} / {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} % | {:.1} % | {:.1} % |",
            p.name,
            full,
            log.patches.len(),
            text.len(),
            binary.len(),
            opt,
            key_ms,
            parse,
            checked,
            bparse,
            bsealed,
            100.0 * (parse + checked) / opt,
            100.0 * (bparse + bsealed) / opt,
            100.0 * sealed / opt
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A loop for profilers (`perf record`): parses and replays one corpus
/// program's log (`VSSA_PROFILE`, default `hanoi.b`) on copies of its
/// built graph, `VSSA_PROFILE_ITERS` times (default 20).
#[test]
#[ignore]
fn profile_replay() {
    let name = std::env::var("VSSA_PROFILE").unwrap_or_else(|_| "hanoi.b".into());
    let iters: usize = std::env::var("VSSA_PROFILE_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let Some(p) = corpus().into_iter().find(|p| p.name == name) else {
        println!("skipped: {name} is not in ../shared/bf");
        return;
    };
    let prog = vssa_bf::parse(&p.source).unwrap();
    let (_, log) = record(&prog);
    let text = log.to_text();
    let base = build(&prog);
    let (mut parse, mut key, mut apply) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..iters {
        let mut g = base.clone();
        let t = Instant::now();
        let parsed = Log::parse(text.as_bytes(), "log").unwrap();
        parse = parse.min(t.elapsed());
        if std::env::var_os("VSSA_PROFILE_PARSE_ONLY").is_some() {
            continue;
        }
        let t = Instant::now();
        let rec = Recorder::start(&g);
        key = key.min(t.elapsed());
        let t = Instant::now();
        assert!(rec.replay(&mut g, &parsed).complete());
        apply = apply.min(t.elapsed());
    }
    println!("{name}: best of {iters}: parse {parse:?}, program key {key:?}, apply {apply:?}");
}
