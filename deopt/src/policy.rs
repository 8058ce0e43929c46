//! Deopt counters and the recompilation policy.

use std::collections::HashMap;
use vssa::Addr;

/// When a failing speculation is given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecompilePolicy {
    /// Refute a speculative guard after this many failures (1: at once).
    /// A guard that fails rarely may be worth keeping: each failure costs a
    /// trip through the interpreter, a refutation costs a recompilation.
    AfterFailures(u32),
    /// Never recompile: every failure deoptimizes and the code stays.
    Never,
}

impl RecompilePolicy {
    /// The policy of a command-line count: refute after `n` failures, or
    /// never when `n` is 0.
    pub fn after(n: u32) -> RecompilePolicy {
        match n {
            0 => RecompilePolicy::Never,
            n => RecompilePolicy::AfterFailures(n),
        }
    }
}

impl Default for RecompilePolicy {
    fn default() -> Self {
        RecompilePolicy::AfterFailures(1)
    }
}

/// What to do after a guard failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the code; resume in the interpreter.
    Keep,
    /// Refute the guard and recompile its unit.
    Recompile,
}

/// Failures per guard, by guard address.
#[derive(Clone, Debug, Default)]
pub struct DeoptCounters {
    policy: RecompilePolicy,
    counts: HashMap<Addr, u32>,
    total: u64,
}

impl DeoptCounters {
    pub fn new(policy: RecompilePolicy) -> DeoptCounters {
        DeoptCounters {
            policy,
            ..DeoptCounters::default()
        }
    }

    /// Counts one failure of `guard`. `speculative` says whether the guard
    /// is a speculation (which recompiling without it fixes) or a check
    /// that the general code needs too (bounds, step limits): a check never
    /// asks for a recompilation.
    pub fn record(&mut self, guard: Addr, speculative: bool) -> Verdict {
        self.total += 1;
        let n = self.counts.entry(guard).or_insert(0);
        *n = n.saturating_add(1);
        match self.policy {
            RecompilePolicy::AfterFailures(k) if speculative && *n >= k.max(1) => {
                Verdict::Recompile
            }
            _ => Verdict::Keep,
        }
    }

    /// Failures of `guard` so far.
    pub fn count(&self, guard: &Addr) -> u32 {
        self.counts.get(guard).copied().unwrap_or(0)
    }

    /// Failures of every guard so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speculative_guards_are_refuted_after_n_failures_checks_never() {
        let a = Addr([1; 16]);
        let b = Addr([2; 16]);
        let mut c = DeoptCounters::new(RecompilePolicy::AfterFailures(3));
        assert_eq!(c.record(a, true), Verdict::Keep);
        assert_eq!(c.record(a, true), Verdict::Keep);
        assert_eq!(c.record(b, false), Verdict::Keep);
        assert_eq!(c.record(a, true), Verdict::Recompile);
        for _ in 0..10 {
            assert_eq!(c.record(b, false), Verdict::Keep);
        }
        assert_eq!(c.count(&a), 3);
        assert_eq!(c.count(&b), 11);
        assert_eq!(c.total(), 14);
        let mut now = DeoptCounters::default();
        assert_eq!(now.record(a, true), Verdict::Recompile);
        assert_eq!(RecompilePolicy::after(0), RecompilePolicy::Never);
        assert_eq!(RecompilePolicy::after(2), RecompilePolicy::AfterFailures(2));
        let mut never = DeoptCounters::new(RecompilePolicy::Never);
        assert_eq!(never.record(a, true), Verdict::Keep);
    }
}
