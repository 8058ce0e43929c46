//! The middle end's standard pass sequence, behind one call.
//!
//! A guest's pipeline driver calls [`standard`] on a freshly built graph
//! (never on one a patch log was replayed onto completely: the log already
//! holds the result). Every pass records its rewrites as replacements, so
//! the whole sequence is one patch log. Speculation needs the guest's
//! profile and lives in `vssa-deopt`; the driver passes it in as a hook.

use crate::branch_facts::{branch_facts_of, FactKinds, FactStats};
use crate::closed_form::{closed_forms, ClosedFormStats};
use crate::control_fold::{fold_control, FoldStats};
use crate::graph::{Graph, GraphError};
use crate::guard_hoist::{hoist_guards, HoistStats};
use crate::opt::optimize;
use crate::promote::{promote, PromoteStats};
use crate::range_merge::{merge_range_guards, MergeStats};

/// Rounds of facts and folding at most (each round after the first only
/// if the one before folded something). Folding a merge lets facts reach
/// further, but each round walks the whole graph again.
pub const FACT_ROUNDS: u32 = 2;

/// Which optional passes [`standard`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassConfig {
    /// Facts from branches ([`branch_facts`]). Off for Brainfuck for now:
    /// its builder still knows the same facts (cells known 0 after their
    /// loops, cells carried in loop phis) and the pass's walks cost more
    /// compile time on its largest programs than they save (hanoi).
    pub branch_facts: bool,
    /// Of the facts from branches, loads with a known value (the other
    /// half, guards implied by dominating facts, always runs with
    /// `branch_facts`). A guest whose builder already carries values
    /// round its loops may leave it off: it costs most of the pass.
    pub load_facts: bool,
    /// Guard hoisting ([`hoist_guards`]): loop-invariant guards at the top
    /// of a loop move in front of it; before it, neighbouring range guards
    /// merge ([`merge_range_guards`]).
    pub hoist_guards: bool,
    /// Promotion of memory places to loop-carried values
    /// ([`crate::promote::promote`]), after the first optimizer run.
    pub promote: bool,
    /// Closed forms of affine loops ([`crate::closed_form::closed_forms`]),
    /// after speculation (a speculation site's branch may be the entry
    /// test a closed form removes).
    pub closed_forms: bool,
}

impl Default for PassConfig {
    fn default() -> Self {
        PassConfig {
            branch_facts: true,
            load_facts: true,
            hoist_guards: true,
            promote: true,
            closed_forms: true,
        }
    }
}

impl PassConfig {
    fn fact_kinds(&self) -> FactKinds {
        FactKinds {
            loads: self.load_facts,
            guards: true,
        }
    }
}

/// What [`standard`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Runs of the worklist optimizer.
    pub optimize_runs: u32,
    /// Replacements the optimizer made, all runs together.
    pub optimized: u64,
    /// Facts from branches.
    pub facts: FactStats,
    /// Guard hoisting.
    pub hoist: HoistStats,
    /// Range-check merging.
    pub merged: MergeStats,
    /// What the speculation hook reported it did (guards made).
    pub speculated: usize,
    /// Control folding.
    pub fold: FoldStats,
    /// Promotion of memory to loop-carried values.
    pub promoted: PromoteStats,
    /// Closed forms of affine loops.
    pub closed: ClosedFormStats,
}

/// Optimizes `g`: the worklist optimizer; promotion of memory places to
/// loop-carried values if `config` asks for it (the optimizer again if it
/// replaced loads); facts from branches if `config` asks for them (loads
/// with known values, implied guards); guard hoisting if it asks for it;
/// the optimizer again after each if they changed
/// anything; `speculate` (which returns how many guards it made; the
/// optimizer runs again if any); closed forms of affine loops if `config`
/// asks for them (and the optimizer if it found any); control folding, and the optimizer on
/// what it exposed.
///
/// The order matters for the patch log only in that replay must see the
/// same graph the recorder saw: any fixed order does.
pub fn standard(
    g: &mut Graph,
    config: PassConfig,
    speculate: &mut dyn FnMut(&mut Graph) -> Result<usize, GraphError>,
) -> Result<PassStats, GraphError> {
    let mut stats = PassStats::default();
    let opt = |g: &mut Graph, stats: &mut PassStats| -> Result<(), GraphError> {
        let o = optimize(g)?;
        stats.optimize_runs += 1;
        stats.optimized += o.replaced;
        Ok(())
    };
    opt(g, &mut stats)?;
    if config.promote {
        stats.promoted = promote(g)?;
        if stats.promoted.loads > 0 {
            opt(g, &mut stats)?;
        }
    }
    if config.branch_facts {
        stats.facts = branch_facts_of(g, config.fact_kinds())?;
        // A guard removed gives the peepholes nothing new; a known load may.
        if stats.facts.loads > 0 {
            opt(g, &mut stats)?;
        }
    }
    // Before speculation: a speculation's guard is refuted by its
    // address, which a hoisted copy would not have.
    if config.hoist_guards {
        stats.merged = merge_range_guards(g)?;
        stats.hoist = hoist_guards(g)?;
        if stats.hoist.hoisted > 0 || stats.merged.removed > 0 {
            opt(g, &mut stats)?;
        }
    }
    stats.speculated = speculate(g)?;
    if stats.speculated > 0 {
        opt(g, &mut stats)?;
    }
    if config.closed_forms {
        stats.closed = closed_forms(g)?;
        if stats.closed.loops > 0 {
            opt(g, &mut stats)?;
        }
    }
    // Branches the optimizer and the facts made constant: their dead
    // sides go.
    stats.fold = fold_control(g)?;
    if stats.fold.changes() > 0 {
        opt(g, &mut stats)?;
    }
    // Folding removes merges, which lets facts reach further, which
    // makes more branches constant.
    for _ in 1..FACT_ROUNDS {
        if !config.branch_facts || stats.fold.changes() == 0 {
            break;
        }
        let facts = branch_facts_of(g, config.fact_kinds())?;
        stats.facts.loads += facts.loads;
        stats.facts.guards += facts.guards;
        if facts.changes() == 0 {
            break;
        }
        if facts.loads > 0 {
            opt(g, &mut stats)?;
        }
        let fold = fold_control(g)?;
        stats.fold.branches += fold.branches;
        stats.fold.regions += fold.regions;
        stats.fold.phis += fold.phis;
        stats.fold.loops += fold.loops;
        stats.fold.returns += fold.returns;
        stats.fold.rounds += fold.rounds;
        if fold.changes() == 0 {
            break;
        }
        opt(g, &mut stats)?;
    }
    Ok(stats)
}
