//! The middle end's guard passes in the patch log: guard hoisting
//! (invariant and induction-variable guards), range-check merging and
//! guards removed by facts from branches are replacements, so the log
//! recorded over them replays in full onto the graph built afresh and
//! gives the same live graph: by address, and by index from the binary
//! file's node table.

use vssa::Graph;
use vssa_patch::{replay, LogBook, Recorder};

/// A rotated loop counting `i` to 7 (params: `x`, `v`, a pointer), with a
/// guard on `x` (invariant: hoisted) and one on `i <u 50` at its top (an
/// induction variable going 0 ..= 6: hoisted as a test of that range),
/// and after the loop `x <=u 100` and then `x <=u 200` (another reason:
/// no merge), which the first implies; then two checks `x + 1 <u 64`,
/// `x + 3 <u 64` with one frame and reason, which merge.
const LOOP: &str = "n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 i64 = proj 2 n0
n4 i8 = proj 3 n0
n5 ptr = proj 4 n0
n6 tuple = if n1, n4
n7 ctrl = proj 0 n6
n8 ctrl = proj 1 n6
n9 ctrl = loop #1 n7, n25
n10 i64 = const 0
n11 i64 = phi #1 n9, n10, n20
n12 mem = phi #2 n9, n2, n21
n13 i64 = const 100
n14 i8 = ule n3, n13
n15 frame = framestate @7 n12, n11
n16 ctrl = guard r1 n9, n14, n15
n17 i64 = const 50
n18 i8 = ult n11, n17
n19 ctrl = guard r1 n16, n18, n15
n22 i64 = const 1
n20 i64 = add n11, n22
n21 mem = store +0 n19, n12, n5, n20
n32 i64 = const 7
n23 i8 = ne n20, n32
n24 tuple = if n19, n23
n25 ctrl = proj 0 n24
n26 ctrl = proj 1 n24
n33 frame = framestate @9 n21, n20
n34 ctrl = guard r1 n26, n14, n33
n35 i64 = const 200
n36 i8 = ule n3, n35
n37 ctrl = guard r3 n34, n36, n33
n38 i64 = const 1
n39 i64 = add n3, n38
n40 i64 = const 64
n41 i8 = ult n39, n40
n42 ctrl = guard r2 n37, n41, n33
n43 i64 = const 3
n44 i64 = add n3, n43
n45 i8 = ult n44, n40
n46 ctrl = guard r2 n42, n45, n33
n29 i32 = const 0
n30 ctrl = return n46, n21, n29
n27 ctrl = return n8, n2, n29
n31 ctrl = end n30, n27
";

fn passes(g: &mut Graph) -> (u32, u32, u32) {
    let merged = vssa::merge_range_guards(g).unwrap().removed;
    let hoisted = vssa::hoist_guards(g).unwrap().hoisted;
    let facts = vssa::branch_facts(g).unwrap();
    vssa::optimize(g).unwrap();
    (merged, hoisted, facts.guards)
}

#[test]
fn hoisting_and_implied_guards_replay_in_full() {
    let mut g = vssa::parse(LOOP).unwrap();
    let rec = Recorder::start(&g);
    let (merged, hoisted, implied) = passes(&mut g);
    assert_eq!(merged, 1, "x + 3 <u 64 merges into x + 1 <u 64");
    assert_eq!(hoisted, 2, "the guards on x and on i leave the loop");
    assert_eq!(implied, 1, "x <=u 200 after x <=u 100 goes");
    let log = rec.log(&g).unwrap();
    assert!(!log.patches.is_empty());
    let mut again = vssa::parse(LOOP).unwrap();
    let report = replay(&mut again, &log);
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.stale, 0);
    assert_eq!(vssa::live_graph_key(&again), vssa::live_graph_key(&g));
}

#[test]
fn merged_and_hoisted_guards_replay_by_index_from_a_binary_log() {
    let mut g = vssa::parse(LOOP).unwrap();
    let rec = Recorder::start(&g);
    let (merged, hoisted, _) = passes(&mut g);
    assert_eq!((merged, hoisted), (1, 2));
    let mut book = LogBook::new();
    book.insert(rec.log(&g).unwrap());
    // Unsealed: read back, the unit is kept in the file's table form.
    let bytes = book.to_binary(None);
    let read = LogBook::parse(&bytes, "hoist.vlog").unwrap();
    let mut again = vssa::parse(LOOP).unwrap();
    let rec_again = Recorder::start(&again);
    let report = read.replay_unit(&mut again, &rec_again).unwrap();
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.stale, 0);
    assert_eq!(report.applied, report.outcomes.len());
    assert_eq!(vssa::live_graph_key(&again), vssa::live_graph_key(&g));
    // Nothing is left for the passes to do on the replayed graph.
    assert_eq!(passes(&mut again), (0, 0, 0));
    assert_eq!(vssa::live_graph_key(&again), vssa::live_graph_key(&g));
}
