//! Replay: applying a log to a freshly built graph by address lookup.
//!
//! No analysis runs: each patch is checked against the graph, its new nodes
//! are interned as recorded, and its replacement is made. Every patch gets
//! an [`Outcome`]; stale and conflicting patches are skipped and leave the
//! graph as it was. Nothing here panics on any log.
//!
//! A whole log is stale when it was recorded for another program or in
//! another address encoding (see [`LogMismatch`]): addresses alone cannot
//! tell two programs apart that differ only in a loop's back edge, so the
//! log's program key must match before any patch is considered.
//!
//! A log's refuted guards ([`Log::refuted`]) cut it: the first patch that
//! builds one, and every later patch, are [`Outcome::Refuted`] and not
//! applied. Those patches were recorded on a graph that had the
//! speculation which failed at run time.

use crate::format::Log;
use crate::model::{program_key, Patch};
use vssa::{Addr, Graph, NodeId, Op};

/// What happened to one patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or found already applied: the target already stands for `by`).
    Applied,
    /// Skipped: the log is for another program or encoding, or an address
    /// the patch relies on is not in the graph.
    Stale { missing: Option<Addr> },
    /// Skipped: the addresses are there but the graph disagrees (the target
    /// or an input is already replaced differently, a node would come out
    /// with another address, or the graph refused the replacement).
    Conflicting { reason: String },
    /// Skipped because of a run-time deopt decision: this patch, or an
    /// earlier one of the same log, builds (or replaces by) the guard
    /// `guard`, which is in [`Log::refuted`]. Every patch from the first
    /// such one on was recorded on a graph that had the failed
    /// speculation, so none of them is replayed; the optimizer redoes
    /// what is left.
    Refuted { guard: Addr },
}

/// Why a whole log does not belong to this graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogMismatch {
    /// Recorded with another address encoding (`vssa::ENCODING_VERSION`).
    Encoding { log: u32, current: u32 },
    /// Recorded for a graph with another [`program_key`].
    Program { log: Addr, graph: Addr },
}

impl std::fmt::Display for LogMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogMismatch::Encoding { log, current } => write!(
                f,
                "the log uses address encoding {log}, this build uses {current}"
            ),
            LogMismatch::Program { log, graph } => write!(
                f,
                "the log is for program {}, this graph is {}",
                log.short(),
                graph.short()
            ),
        }
    }
}

/// The outcome of a replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// One outcome per patch of the log, in order.
    pub outcomes: Vec<Outcome>,
    pub applied: usize,
    pub stale: usize,
    pub conflicting: usize,
    /// Patches skipped because of a refuted guard ([`Outcome::Refuted`]).
    pub refuted: usize,
    /// Set when the whole log was skipped as stale.
    pub mismatch: Option<LogMismatch>,
}

impl ReplayReport {
    /// Every patch applied: the graph is what the recording run optimized
    /// it to, and the optimizer has nothing left to find from the log.
    pub fn complete(&self) -> bool {
        self.applied == self.outcomes.len()
    }
}

/// Applies `log` to `g`, which must be freshly built (as the recorder saw
/// it). Returns one outcome per patch; never fails, never panics.
pub fn replay(g: &mut Graph, log: &Log) -> ReplayReport {
    let key = program_key(g);
    replay_keyed(g, log, key)
}

/// [`replay`] with the graph's [`program_key`] already computed.
pub(crate) fn replay_keyed(g: &mut Graph, log: &Log, key: Addr) -> ReplayReport {
    if let Some(m) = mismatch(log.encoding, log.program, key) {
        return ReplayReport {
            outcomes: vec![Outcome::Stale { missing: None }; log.patches.len()],
            stale: log.patches.len(),
            mismatch: Some(m),
            ..ReplayReport::default()
        };
    }
    // `Log::refute` keeps the list sorted; a hand-built log may not.
    if log.refuted.windows(2).all(|w| w[0] < w[1]) {
        apply_patches(g, &log.patches, &log.refuted, log.is_sealed())
    } else {
        let mut sorted = log.refuted.clone();
        sorted.sort();
        apply_patches(g, &log.patches, &sorted, log.is_sealed())
    }
}

/// Why a log recorded in address encoding `encoding` for program
/// `program` does not belong to a graph with program key `key`, if so.
pub(crate) fn mismatch(encoding: u32, program: Addr, key: Addr) -> Option<LogMismatch> {
    if encoding != vssa::ENCODING_VERSION {
        Some(LogMismatch::Encoding {
            log: encoding,
            current: vssa::ENCODING_VERSION,
        })
    } else {
        (key != program).then_some(LogMismatch::Program {
            log: program,
            graph: key,
        })
    }
}

/// The refuted guard a patch builds or replaces by, if any. `refuted` is
/// sorted (a [`Log`] keeps it so), hence the binary search.
fn builds_refuted(p: &Patch, refuted: &[Addr]) -> Option<Addr> {
    let hit = |a: &Addr| refuted.binary_search(a).is_ok();
    if hit(&p.by) {
        return Some(p.by);
    }
    p.nodes.iter().map(|n| n.addr).find(hit)
}

/// Applies patches without the program check: the per-patch rules, and the
/// refute rule (from the first patch that builds a guard in `refuted` on,
/// every patch is [`Outcome::Refuted`]). `refuted` must be sorted.
/// `trusted`: the recipe addresses come from a [`Log::is_sealed`] log.
pub(crate) fn apply_patches(
    g: &mut Graph,
    patches: &[Patch],
    refuted: &[Addr],
    trusted: bool,
) -> ReplayReport {
    let mut report = ReplayReport::default();
    report.outcomes.reserve(patches.len());
    // Room for every new node up front: growing the address map while
    // replaying rehashes it several times.
    g.reserve(patches.iter().map(|p| p.nodes.len()).sum());
    let mut cut: Option<Addr> = None;
    let mut scratch = Scratch::default();
    for p in patches {
        if cut.is_none() && !refuted.is_empty() {
            cut = builds_refuted(p, refuted);
        }
        let o = match cut {
            Some(guard) => Outcome::Refuted { guard },
            None => apply(g, p, &mut scratch, trusted),
        };
        match o {
            Outcome::Applied => report.applied += 1,
            Outcome::Stale { .. } => report.stale += 1,
            Outcome::Conflicting { .. } => report.conflicting += 1,
            Outcome::Refuted { .. } => report.refuted += 1,
        }
        report.outcomes.push(o);
    }
    report
}

pub(crate) fn conflict(reason: impl Into<String>) -> Outcome {
    Outcome::Conflicting {
        reason: reason.into(),
    }
}

/// Where a recipe input comes from: a node already in the graph, or the
/// `k`-th new node of the same recipe.
#[derive(Clone, Copy)]
pub(crate) enum Src {
    Graph(NodeId),
    Recipe(usize),
}

impl Src {
    /// The node, once the recipe's nodes so far are `built`.
    pub(crate) fn node(self, built: &[NodeId]) -> NodeId {
        match self {
            Src::Graph(id) => id,
            Src::Recipe(j) => built[j],
        }
    }
}

/// How many of a new node's inputs `srcs` its address hashes: a phi on a
/// loop of the graph (recipes build no loops) is built on its first two,
/// its back edge (returned) set once the whole recipe is built.
pub(crate) fn hashed_inputs(g: &Graph, op: Op, srcs: &[Src]) -> (usize, Option<Src>) {
    let on_loop = matches!(op, Op::Phi { .. })
        && matches!(srcs.first(), Some(&Src::Graph(r)) if matches!(g.op(r), Op::Loop { .. }));
    match (on_loop, srcs.get(2)) {
        (true, Some(&b)) => (2, Some(b)),
        _ => (srcs.len(), None),
    }
}

/// Sets the back edges of the new loop phis a recipe built: `backs` holds
/// each phi's index in `built` and its back edge. A phi that has one
/// already (replaying twice) must have the same.
pub(crate) fn set_back_edges(
    g: &mut Graph,
    built: &[NodeId],
    backs: &[(usize, Src)],
) -> Result<(), Outcome> {
    for &(k, src) in backs {
        let phi = built[k];
        let value = src.node(built);
        match g.back_input(phi) {
            None => {
                if let Err(e) = g.set_back_input(phi, value) {
                    return Err(conflict(format!("loop phi {}: {e}", g.addr(phi).short())));
                }
            }
            Some(b) if b == g.resolve(value) => {}
            Some(_) => {
                return Err(conflict(format!(
                    "loop phi {} already has another back edge",
                    g.addr(phi).short()
                )))
            }
        }
    }
    Ok(())
}

/// The index of `a` among the first `upto` recipe nodes, if there.
fn in_recipe(p: &Patch, upto: usize, a: &Addr) -> Option<usize> {
    p.nodes[..upto].iter().rposition(|n| n.addr == *a)
}

/// Recipes up to this many nodes are searched before the graph: most
/// inputs named by a small recipe that are not in the graph are its own
/// nodes, and a short scan is cheaper than a hash-map miss.
const SMALL_RECIPE: usize = 8;

/// Buffers reused from patch to patch (replay's per-patch work is small;
/// allocating them per patch showed in profiles).
#[derive(Default)]
struct Scratch {
    srcs: Vec<Src>,
    built: Vec<NodeId>,
    inputs: Vec<NodeId>,
    /// New loop phis (index into `built`) and their back edges.
    backs: Vec<(usize, Src)>,
}

/// One patch: check everything first, so that a skipped patch changes
/// nothing; each address is looked up once.
fn apply(g: &mut Graph, p: &Patch, s: &mut Scratch, trusted: bool) -> Outcome {
    let Some(target) = g.lookup(&p.target) else {
        return Outcome::Stale {
            missing: Some(p.target),
        };
    };
    let small = p.nodes.len() <= SMALL_RECIPE;
    s.srcs.clear();
    s.backs.clear();
    for (k, n) in p.nodes.iter().enumerate() {
        if matches!(n.op, Op::Loop { .. }) {
            return conflict(format!("new node {} is a loop", n.addr.short()));
        }
        let mut on_loop = false;
        for (slot, a) in n.inputs.iter().enumerate() {
            // A loop phi's back edge (its third input, not hashed) may be
            // built later in the same recipe: it is set after them all.
            let back = on_loop && slot == 2;
            let early = if back {
                in_recipe(p, p.nodes.len(), a)
            } else if small {
                in_recipe(p, k, a)
            } else {
                None
            };
            let src = match early
                .map(Src::Recipe)
                .or_else(|| g.lookup(a).map(Src::Graph))
            {
                Some(Src::Graph(id)) => {
                    if g.resolve(id) != id {
                        return conflict(format!(
                            "input {} of new node {} is already replaced",
                            a.short(),
                            n.addr.short()
                        ));
                    }
                    // A phi on a loop carries its back edge as a third input.
                    if slot == 0
                        && matches!(n.op, Op::Phi { .. })
                        && matches!(g.op(id), Op::Loop { .. })
                    {
                        if n.inputs.len() != 3 {
                            return conflict(format!(
                                "new loop phi {} has no back edge",
                                n.addr.short()
                            ));
                        }
                        on_loop = true;
                    }
                    Src::Graph(id)
                }
                Some(r) => r,
                None => match (!small).then(|| in_recipe(p, k, a)).flatten() {
                    Some(j) => Src::Recipe(j),
                    None => return Outcome::Stale { missing: Some(*a) },
                },
            };
            s.srcs.push(src);
        }
    }
    // `by` is most often the recipe's last node.
    let last = p.nodes.len().checked_sub(1);
    let by = match last.filter(|&j| p.nodes[j].addr == p.by) {
        Some(j) => Src::Recipe(j),
        None => match g.lookup(&p.by) {
            Some(id) => Src::Graph(id),
            None => match in_recipe(p, p.nodes.len(), &p.by) {
                Some(j) => Src::Recipe(j),
                None => {
                    return Outcome::Stale {
                        missing: Some(p.by),
                    }
                }
            },
        },
    };
    if g.node(target).replaced_by().is_some() {
        let by_now = match by {
            Src::Graph(b) => Some(b),
            // Built before (replaying twice): the graph has it.
            Src::Recipe(_) => g.lookup(&p.by),
        };
        let same = by_now.is_some_and(|b| g.resolve(b) == g.resolve(target));
        return if same {
            Outcome::Applied
        } else {
            conflict(format!("target {} is already replaced", p.target.short()))
        };
    }
    // Build the new nodes exactly as recorded (no peepholes).
    s.built.clear();
    let mut next = 0;
    for n in &p.nodes {
        let srcs = &s.srcs[next..next + n.inputs.len()];
        next += n.inputs.len();
        let (hashed, back) = hashed_inputs(g, n.op, srcs);
        if let Some(b) = back {
            s.backs.push((s.built.len(), b));
        }
        s.inputs.clear();
        s.inputs
            .extend(srcs[..hashed].iter().map(|src| src.node(&s.built)));
        let built = if trusted {
            g.intern_recorded(n.op, n.ty, &s.inputs, n.addr)
        } else {
            g.intern(n.op, n.ty, &s.inputs)
        };
        match built {
            Ok(id) if g.addr(id) == n.addr => s.built.push(id),
            Ok(_) => {
                return conflict(format!(
                    "new node {} came out with another address",
                    n.addr.short()
                ))
            }
            Err(e) => return conflict(format!("new node {}: {e}", n.addr.short())),
        }
    }
    if let Err(o) = set_back_edges(g, &s.built, &s.backs) {
        return o;
    }
    match g.replace(target, by.node(&s.built)) {
        Ok(()) => Outcome::Applied,
        Err(e) => conflict(e.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::tests::sample;
    use crate::model::Recorder;
    use vssa::Type;

    fn recorded() -> (Graph, Log) {
        let mut g = sample();
        let rec = Recorder::start(&g);
        vssa::optimize(&mut g).unwrap();
        let log = rec.log(&g).unwrap();
        (g, log)
    }

    fn live_addrs(g: &Graph) -> Vec<Addr> {
        g.live_nodes().into_iter().map(|n| g.addr(n)).collect()
    }

    /// Brainfuck `[>[->+<]<-]` as plain loads and stores: promotion makes
    /// loop phis (with back edges) on both loops and region phis after the
    /// inner one.
    pub(crate) const NESTED: &str = "n0 tuple = start
n1 ctrl = proj 0 n0
n2 mem = proj 1 n0
n3 ptr = proj 2 n0
n4 i8 = load +0 n1, n2, n3
n5 tuple = if n1, n4
n6 ctrl = proj 0 n5
n7 ctrl = proj 1 n5
n8 ctrl = loop #1 n6, n51
n9 mem = phi #2 n8, n2, n48
n10 i8 = load +1 n8, n9, n3
n11 tuple = if n8, n10
n12 ctrl = proj 0 n11
n13 ctrl = proj 1 n11
n14 ctrl = loop #3 n12, n29
n15 mem = phi #4 n14, n9, n27
n16 i8 = load +1 n14, n15, n3
n17 i8 = const -1
n18 i8 = add n16, n17
n19 mem = store +1 n14, n15, n3, n18
n20 i8 = load +2 n14, n19, n3
n21 i8 = const 1
n22 i8 = add n20, n21
n27 mem = store +2 n14, n19, n3, n22
n28 tuple = if n14, n18
n29 ctrl = proj 0 n28
n30 ctrl = proj 1 n28
n40 ctrl = region n13, n30
n41 mem = phi #5 n40, n9, n27
n42 i8 = load +0 n40, n41, n3
n43 i8 = add n42, n17
n48 mem = store +0 n40, n41, n3, n43
n50 tuple = if n40, n43
n51 ctrl = proj 0 n50
n52 ctrl = proj 1 n50
n60 ctrl = region n7, n52
n61 mem = phi #6 n60, n2, n48
n62 i8 = load +2 n60, n61, n3
n63 ctrl = return n60, n61, n62
n64 ctrl = end n63
";

    #[test]
    fn new_loop_phis_replay_with_their_back_edges() {
        let mut opt = vssa::parse(NESTED).unwrap();
        let rec = Recorder::start(&opt);
        vssa::optimize(&mut opt).unwrap();
        let promoted = vssa::promote(&mut opt).unwrap();
        assert!(promoted.values >= 4, "{promoted:?}");
        vssa::optimize(&mut opt).unwrap();
        for log in [rec.log(&opt).unwrap(), rec.full_log(&opt).unwrap()] {
            // Through the text form too: the back edge is the third input.
            let log = Log::parse(log.to_text().as_bytes(), "t").unwrap();
            let mut g = vssa::parse(NESTED).unwrap();
            let r = replay(&mut g, &log);
            assert!(r.complete(), "{r:?}");
            vssa::verify(&g).unwrap();
            assert_eq!(vssa::live_graph_key(&g), vssa::live_graph_key(&opt));
        }
    }

    #[test]
    fn replay_rebuilds_the_optimized_graph() {
        let (opt, log) = recorded();
        let mut g = sample();
        let r = replay(&mut g, &log);
        assert!(r.complete(), "{r:?}");
        assert_eq!(r.applied, log.patches.len());
        assert_eq!(live_addrs(&g), live_addrs(&opt));
        assert_eq!(g.len(), opt.len().min(g.len()));
        // Nothing left for the optimizer.
        assert_eq!(vssa::optimize(&mut g).unwrap().replaced, 0);
    }

    #[test]
    fn replaying_twice_is_harmless() {
        let (_, log) = recorded();
        let mut g = sample();
        replay(&mut g, &log);
        // (The program key no longer matches a replayed graph: per patch.)
        let again = apply_patches(&mut g, &log.patches, &[], false);
        assert_eq!(again.applied, log.patches.len());
        assert_eq!(again.stale + again.conflicting, 0, "{again:?}");
    }

    #[test]
    fn another_program_is_stale_as_a_whole() {
        let (_, mut log) = recorded();
        log.program = Addr([7; 16]);
        let mut g = sample();
        let before = live_addrs(&g);
        let r = replay(&mut g, &log);
        assert!(matches!(r.mismatch, Some(LogMismatch::Program { .. })));
        assert_eq!(r.stale, log.patches.len());
        assert_eq!(live_addrs(&g), before);
        log.encoding += 1;
        let r = replay(&mut g, &log);
        assert!(matches!(r.mismatch, Some(LogMismatch::Encoding { .. })));
    }

    #[test]
    fn missing_prerequisites_are_stale_and_change_nothing() {
        let (_, log) = recorded();
        let mut g = Graph::new();
        let e = g.entry().unwrap();
        let c = g.iconst(Type::I64, 3).unwrap();
        let r = g.ret(e.ctrl, e.mem, c).unwrap();
        g.finish(&[r]).unwrap();
        let len = g.len();
        let rep = apply_patches(&mut g, &log.patches, &[], false);
        assert_eq!(rep.stale, log.patches.len(), "{rep:?}");
        assert_eq!(g.len(), len);
        assert!(g.replacements().is_empty());
    }

    #[test]
    fn a_target_replaced_differently_conflicts() {
        let (_, log) = recorded();
        let mut g = sample();
        let first = &log.patches[0];
        let target = g.lookup(&first.target).unwrap();
        // Replace the target by some other node of its type first.
        let other = g.iconst(g.ty(target), 12345).unwrap();
        g.replace(target, other).unwrap();
        let rep = apply_patches(&mut g, std::slice::from_ref(first), &[], false);
        assert!(
            matches!(rep.outcomes[0], Outcome::Conflicting { .. }),
            "{rep:?}"
        );
        assert_eq!(g.resolve(target), other);
    }

    /// A sample with a guard-like node: the refute rule only looks at
    /// addresses, so any node a patch builds can stand for the guard.
    #[test]
    fn a_refuted_guard_cuts_the_log_from_the_patch_that_builds_it() {
        let (opt, log) = recorded();
        let k = log
            .patches
            .iter()
            .position(|p| !p.nodes.is_empty())
            .expect("the sample builds nodes");
        let guard = log.patches[k].nodes[0].addr;
        let mut cut = log.clone();
        assert!(cut.refute(guard));
        assert!(!cut.refute(guard), "refuted twice");
        cut.refute(Addr([0xff; 16])); // never built: no effect on its own
        assert_eq!(cut.refuted.len(), 2);
        assert!(cut.refuted.windows(2).all(|w| w[0] < w[1]));
        let mut g = sample();
        let r = replay(&mut g, &cut);
        assert_eq!(r.applied, k, "{r:?}");
        assert_eq!(r.refuted, log.patches.len() - k);
        assert!(!r.complete());
        for o in &r.outcomes[k..] {
            assert_eq!(*o, Outcome::Refuted { guard });
        }
        assert_eq!(
            g.replacements().len(),
            k,
            "nothing from the guard's patch on"
        );
        // The optimizer redoes the rest and reaches the same graph.
        vssa::optimize(&mut g).unwrap();
        assert_eq!(live_addrs(&g), live_addrs(&opt));
        // A refute list out of order (hand-built) still works.
        let mut unsorted = log.clone();
        unsorted.refuted = vec![Addr([0xff; 16]), guard];
        let r = replay(&mut sample(), &unsorted);
        assert_eq!(r.refuted, log.patches.len() - k);
        // A refuted address nothing builds changes nothing.
        let mut other = log.clone();
        other.refute(Addr([0xee; 16]));
        assert!(replay(&mut sample(), &other).complete());
    }

    #[test]
    fn a_refuted_replacement_cuts_too() {
        let (_, log) = recorded();
        let mut cut = log.clone();
        cut.refute(log.patches[0].by);
        let r = replay(&mut sample(), &cut);
        assert_eq!(r.refuted, log.patches.len(), "{r:?}");
        assert_eq!(r.applied, 0);
    }

    #[test]
    fn a_recipe_with_a_lying_address_conflicts() {
        let (_, log) = recorded();
        let mut patches = log.patches.clone();
        let Some(p) = patches.iter_mut().find(|p| !p.nodes.is_empty()) else {
            panic!("the sample creates nodes")
        };
        let wrong = Addr([9; 16]);
        let old = p.nodes[0].addr;
        p.nodes[0].addr = wrong;
        if p.by == old {
            p.by = wrong;
        }
        let mut g = sample();
        let rep = apply_patches(&mut g, &patches, &[], false);
        assert!(rep.conflicting + rep.stale > 0, "{rep:?}");
    }
}
