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
    let mismatch = if log.encoding != vssa::ENCODING_VERSION {
        Some(LogMismatch::Encoding {
            log: log.encoding,
            current: vssa::ENCODING_VERSION,
        })
    } else {
        (key != log.program).then_some(LogMismatch::Program {
            log: log.program,
            graph: key,
        })
    };
    if let Some(m) = mismatch {
        return ReplayReport {
            outcomes: vec![Outcome::Stale { missing: None }; log.patches.len()],
            stale: log.patches.len(),
            mismatch: Some(m),
            ..ReplayReport::default()
        };
    }
    apply_patches(g, &log.patches)
}

/// Applies patches without the program check: the per-patch rules only.
pub(crate) fn apply_patches(g: &mut Graph, patches: &[Patch]) -> ReplayReport {
    let mut report = ReplayReport::default();
    for p in patches {
        let o = apply(g, p);
        match o {
            Outcome::Applied => report.applied += 1,
            Outcome::Stale { .. } => report.stale += 1,
            Outcome::Conflicting { .. } => report.conflicting += 1,
        }
        report.outcomes.push(o);
    }
    report
}

fn conflict(reason: impl Into<String>) -> Outcome {
    Outcome::Conflicting {
        reason: reason.into(),
    }
}

/// Where a recipe input comes from: a node already in the graph, or the
/// `k`-th new node of the same recipe.
#[derive(Clone, Copy)]
enum Src {
    Graph(NodeId),
    Recipe(usize),
}

/// The index of `a` among the first `upto` recipe nodes, if there.
fn in_recipe(p: &Patch, upto: usize, a: &Addr) -> Option<usize> {
    p.nodes[..upto].iter().rposition(|n| n.addr == *a)
}

/// One patch: check everything first, so that a skipped patch changes
/// nothing; each address is looked up once.
fn apply(g: &mut Graph, p: &Patch) -> Outcome {
    let Some(target) = g.lookup(&p.target) else {
        return Outcome::Stale {
            missing: Some(p.target),
        };
    };
    let mut srcs: Vec<Src> = Vec::with_capacity(p.nodes.iter().map(|n| n.inputs.len()).sum());
    for (k, n) in p.nodes.iter().enumerate() {
        if matches!(n.op, Op::Loop { .. }) {
            return conflict(format!("new node {} is a loop", n.addr.short()));
        }
        for (slot, a) in n.inputs.iter().enumerate() {
            let src = match g.lookup(a) {
                Some(id) => {
                    if g.resolve(id) != id {
                        return conflict(format!(
                            "input {} of new node {} is already replaced",
                            a.short(),
                            n.addr.short()
                        ));
                    }
                    // A phi on a loop would need a back edge no recipe carries.
                    if slot == 0
                        && matches!(n.op, Op::Phi { .. })
                        && matches!(g.op(id), Op::Loop { .. })
                    {
                        return conflict(format!(
                            "new node {} would be a loop phi",
                            n.addr.short()
                        ));
                    }
                    Src::Graph(id)
                }
                None => match in_recipe(p, k, a) {
                    Some(j) => Src::Recipe(j),
                    None => return Outcome::Stale { missing: Some(*a) },
                },
            };
            srcs.push(src);
        }
    }
    let by = match g.lookup(&p.by) {
        Some(id) => Src::Graph(id),
        None => match in_recipe(p, p.nodes.len(), &p.by) {
            Some(j) => Src::Recipe(j),
            None => {
                return Outcome::Stale {
                    missing: Some(p.by),
                }
            }
        },
    };
    if g.node(target).replaced_by().is_some() {
        let same = matches!(by, Src::Graph(b) if g.resolve(b) == g.resolve(target));
        return if same {
            Outcome::Applied
        } else {
            conflict(format!("target {} is already replaced", p.target.short()))
        };
    }
    // Build the new nodes exactly as recorded (no peepholes).
    let mut built: Vec<NodeId> = Vec::with_capacity(p.nodes.len());
    let mut next = 0;
    let mut inputs: Vec<NodeId> = Vec::new();
    for n in &p.nodes {
        inputs.clear();
        for s in &srcs[next..next + n.inputs.len()] {
            inputs.push(match *s {
                Src::Graph(id) => id,
                Src::Recipe(j) => built[j],
            });
        }
        next += n.inputs.len();
        match g.intern(n.op, n.ty, &inputs) {
            Ok(id) if g.addr(id) == n.addr => built.push(id),
            Ok(_) => {
                return conflict(format!(
                    "new node {} came out with another address",
                    n.addr.short()
                ))
            }
            Err(e) => return conflict(format!("new node {}: {e}", n.addr.short())),
        }
    }
    let by = match by {
        Src::Graph(id) => id,
        Src::Recipe(j) => built[j],
    };
    match g.replace(target, by) {
        Ok(()) => Outcome::Applied,
        Err(e) => conflict(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
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
        let again = apply_patches(&mut g, &log.patches);
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
        let rep = apply_patches(&mut g, &log.patches);
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
        let rep = apply_patches(&mut g, std::slice::from_ref(first));
        assert!(
            matches!(rep.outcomes[0], Outcome::Conflicting { .. }),
            "{rep:?}"
        );
        assert_eq!(g.resolve(target), other);
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
        let rep = apply_patches(&mut g, &patches);
        assert!(rep.conflicting + rep.stale > 0, "{rep:?}");
    }
}
