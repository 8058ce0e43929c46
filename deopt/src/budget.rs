//! The compile budget: how much a tiering runtime may spend compiling.
//!
//! A unit is compiled on the bet that its code will run long enough to win
//! back the compile time. Profiles cannot promise that: a program of a
//! million loops that each go hot once and never run again would spend
//! nearly all its time compiling. The budget bounds the loss whatever the
//! program does: compile time so far, plus the estimate for the next unit,
//! may not exceed `share` times the time the program has run (interpreter
//! and compiled code together), plus a small fixed `allowance`. Whatever
//! the units then earn, a program runs at most about `1 + share` times as
//! long as its run time plus the allowance — one compile's misestimate at
//! most beyond that.
//!
//! The estimate is the unit's size (in whatever the guest counts: the
//! Brainfuck guest counts instructions), plus a fixed [`OVERHEAD_UNITS`]
//! for what every compilation costs however small, times the compile time
//! per size unit measured on the units compiled so far, which starts at a
//! prior.
//! A runtime that defers a unit asks again later (the Brainfuck tiers ask
//! again when the loop has gone round twice as often), by which time the
//! program has run longer and the budget has grown.

use std::time::Duration;

/// What a compilation costs besides its size, in size units: setting up
/// the graph, the scheduler and the code generator, and mapping the code.
/// A four-instruction Brainfuck loop costs about as much as twenty.
pub const OVERHEAD_UNITS: usize = 16;

/// Compile time as a share of run time (see the module documentation).
#[derive(Clone, Debug)]
pub struct CompileBudget {
    /// Compile time allowed per unit of run time.
    share: f64,
    /// Compile time allowed before the program has run at all.
    allowance: Duration,
    /// Compile time booked and not yet repaid ([`CompileBudget::repay`]).
    spent: Duration,
    /// Seconds of compile time per size unit, a running average.
    per_unit: f64,
    /// Compilations the budget refused.
    deferred: u64,
}

/// The budget's defaults, measured on the Brainfuck corpus: compiling costs
/// 5–30 µs per instruction and a unit's overhead. A program whose every
/// compilation is wasted then runs within 1.25× of its run time, which
/// leaves room for the profiling interpreter's own cost (10–15 %) under
/// the 1.5× the tiered engine may take at most; measurements in
/// docs/deopt.md.
impl Default for CompileBudget {
    fn default() -> Self {
        CompileBudget::new(0.25, Duration::from_micros(500), Duration::from_micros(20))
    }
}

impl CompileBudget {
    /// A budget of `share` times run time plus `allowance`, whose first
    /// estimate charges `prior` per size unit.
    pub fn new(share: f64, allowance: Duration, prior: Duration) -> CompileBudget {
        CompileBudget {
            share: share.max(0.0),
            allowance,
            spent: Duration::ZERO,
            per_unit: prior.as_secs_f64(),
            deferred: 0,
        }
    }

    /// This budget with another share of run time (`f64::INFINITY`:
    /// allows everything, like [`CompileBudget::unlimited`]).
    pub fn with_share(self, share: f64) -> CompileBudget {
        CompileBudget {
            share: share.max(0.0),
            ..self
        }
    }

    /// A budget that allows everything (for tests and `--engine jit`-like
    /// runtimes that compile eagerly on purpose).
    pub fn unlimited() -> CompileBudget {
        CompileBudget {
            share: f64::INFINITY,
            ..CompileBudget::default()
        }
    }

    /// The expected compile time of a unit of `size`.
    pub fn estimate(&self, size: usize) -> Duration {
        let units = size.saturating_add(OVERHEAD_UNITS) as f64;
        Duration::try_from_secs_f64(self.per_unit * units).unwrap_or(Duration::MAX)
    }

    /// Whether a unit of `size` may be compiled now, after the program has
    /// run for `ran`. A refusal is counted ([`CompileBudget::deferred`]).
    pub fn allows(&mut self, size: usize, ran: Duration) -> bool {
        let ok = self.allows_quietly(size, ran);
        if !ok {
            self.deferred += 1;
        }
        ok
    }

    /// [`CompileBudget::allows`] without counting a refusal: for a runtime
    /// that polls whether a wanted unit has become affordable.
    pub fn allows_quietly(&self, size: usize, ran: Duration) -> bool {
        let limit = self.allowance.as_secs_f64() + self.share * ran.as_secs_f64();
        let need = self.spent.saturating_add(self.estimate(size)).as_secs_f64();
        self.share == f64::INFINITY || need <= limit
    }

    /// [`CompileBudget::allows`] for a compilation on a thread the program
    /// does not wait for: allowed when what is booked already (compiled
    /// and not yet repaid, or under way) fits the budget, whatever the new
    /// unit's own estimate — unless the share is zero (compile nothing).
    ///
    /// The program loses no wall time to such a compilation (it interprets
    /// meanwhile, and at its end abandons a compilation under way), only
    /// the thread's CPU time; and since a unit started this way is booked
    /// like any other, the next one waits until the share covers it. So the
    /// compile time not yet repaid stays within the share's bound plus one
    /// unit's compile time (the bound [`CompileBudget::allows`] already
    /// leaves for one misestimate) — while a program whose one large unit
    /// does all the work (mandelbrot: a 4 000-instruction nest, some 80 ms
    /// to compile) gets it as soon as it is hot, instead of interpreting
    /// until the program has run twice as long as that unit's estimate.
    ///
    /// `superseded` is what is booked for compilations under way that the
    /// new unit makes moot: units nested in it, whose code the program
    /// stops entering once the new unit's arrives. It does not count
    /// against the new unit, which otherwise would wait behind the very
    /// compilations it replaces (factor.b: its main loop, wanted 0.2 ms
    /// after a 5 ms loop inside it was sent, waited for that loop's
    /// compilation and then for the budget). What is not yet repaid then
    /// stays within the bound above plus the estimates of the units under
    /// way inside the one sent: a nest's inner units, each counted again
    /// by every enclosing unit sent while it is under way.
    pub fn allows_in_background(
        &mut self,
        size: usize,
        ran: Duration,
        superseded: Duration,
    ) -> bool {
        if self.booked_fits(ran, superseded) {
            return true;
        }
        self.allows(size, ran)
    }

    /// [`CompileBudget::allows_in_background`] without counting a refusal.
    pub fn allows_in_background_quietly(
        &self,
        size: usize,
        ran: Duration,
        superseded: Duration,
    ) -> bool {
        self.booked_fits(ran, superseded) || self.allows_quietly(size, ran)
    }

    /// Whether what is booked, less `superseded`, fits the budget after
    /// `ran`, with a share above zero.
    fn booked_fits(&self, ran: Duration, superseded: Duration) -> bool {
        let limit = self.allowance.as_secs_f64() + self.share * ran.as_secs_f64();
        let booked = self.spent.saturating_sub(superseded);
        self.share > 0.0 && booked.as_secs_f64() <= limit
    }

    /// Takes `paid` off the compile time booked: the runtime calls this as
    /// a unit runs natively, up to the unit's own compile time. Compiled
    /// code that is at least twice as fast as the interpreter saves at
    /// least its own run time, so a unit that has run as long as it took to
    /// compile has earned its compilation back and no longer counts against
    /// the budget: what the budget bounds is compile time *not yet* repaid.
    pub fn repay(&mut self, paid: Duration) {
        self.spent = self.spent.saturating_sub(paid);
    }

    /// Books a compilation of a unit of `size` that took `took`, and learns
    /// from it for the next estimate.
    pub fn charge(&mut self, size: usize, took: Duration) {
        self.spent += took;
        let observed = took.as_secs_f64() / size.saturating_add(OVERHEAD_UNITS) as f64;
        self.per_unit = 0.5 * self.per_unit + 0.5 * observed;
    }
    /// Books a compilation of `size` at its estimate before it runs: a
    /// compile thread's time is known only when it ends, and what is under
    /// way must count against the budget meanwhile. [`CompileBudget::settle`]
    /// replaces the estimate with what it took.
    pub fn reserve(&mut self, size: usize) -> Duration {
        let estimate = self.estimate(size);
        self.spent = self.spent.saturating_add(estimate);
        estimate
    }

    /// Settles a [`CompileBudget::reserve`]d compilation that took `took`.
    pub fn settle(&mut self, reserved: Duration, size: usize, took: Duration) {
        self.spent = self.spent.saturating_sub(reserved);
        self.charge(size, took);
    }

    /// Whether this budget allows everything ([`CompileBudget::unlimited`]):
    /// the runtime then compiles every hot loop, as it did before budgets.
    pub fn is_unlimited(&self) -> bool {
        self.share == f64::INFINITY
    }

    /// Compile time booked and not yet repaid.
    pub fn spent(&self) -> Duration {
        self.spent
    }

    /// Compilations refused so far.
    pub fn deferred(&self) -> u64 {
        self.deferred
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_unit_waits_until_the_program_has_run_long_enough() {
        let mut b = CompileBudget::new(0.5, Duration::ZERO, Duration::from_micros(10));
        // 1000 units at 10 µs: 10 ms, allowed after 20 ms of running.
        let size = 1000 - OVERHEAD_UNITS;
        assert_eq!(b.estimate(size), 10 * MS);
        assert!(!b.allows(size, 19 * MS));
        assert!(b.allows(size, 20 * MS));
        assert_eq!(b.deferred(), 1);
    }

    #[test]
    fn spending_uses_the_budget_up() {
        let mut b = CompileBudget::new(0.5, Duration::ZERO, Duration::from_micros(10));
        let size = 1000 - OVERHEAD_UNITS;
        b.charge(size, 10 * MS);
        // 10 ms spent: the next 10 ms unit needs 40 ms of running.
        assert!(!b.allows(size, 39 * MS));
        assert!(b.allows(size, 40 * MS));
        assert_eq!(b.spent(), 10 * MS);
    }

    #[test]
    fn repaid_compile_time_frees_the_budget() {
        let mut b = CompileBudget::new(0.5, Duration::ZERO, Duration::from_micros(10));
        let size = 1000 - OVERHEAD_UNITS;
        b.charge(size, 10 * MS);
        assert!(!b.allows(size, 20 * MS));
        b.repay(6 * MS);
        assert_eq!(b.spent(), 4 * MS);
        assert!(b.allows(size, 28 * MS)); // 4 + 10 <= 0.5 × 28
        b.repay(100 * MS); // never below zero
        assert_eq!(b.spent(), Duration::ZERO);
    }

    #[test]
    fn estimates_follow_what_compiles_cost() {
        let mut b = CompileBudget::new(0.5, Duration::ZERO, Duration::from_micros(10));
        let size = 100 - OVERHEAD_UNITS;
        b.charge(size, 3 * MS); // 30 µs per unit observed
        assert_eq!(b.estimate(size), Duration::from_micros(2000)); // (10 + 30) / 2
        assert_eq!(b.spent(), 3 * MS);
        // A tiny unit costs its overhead: 1 ms for 16 units, 62.5 µs each.
        b.charge(0, MS);
        assert_eq!(b.estimate(size), Duration::from_micros(4125)); // 100 × (20 + 62.5) / 2
    }

    #[test]
    fn the_allowance_pays_for_a_first_small_unit() {
        let mut b = CompileBudget::new(0.5, MS, Duration::from_micros(10));
        assert!(b.allows(100 - OVERHEAD_UNITS, Duration::ZERO));
        assert!(!b.allows(101 - OVERHEAD_UNITS, Duration::ZERO));
    }

    #[test]
    fn a_reservation_counts_until_settled() {
        let mut b = CompileBudget::new(0.5, Duration::ZERO, Duration::from_micros(10));
        let size = 1000 - OVERHEAD_UNITS;
        let r = b.reserve(size);
        assert_eq!(r, 10 * MS);
        assert!(!b.allows(size, 39 * MS)); // 10 reserved + 10 more > 19.5
        b.settle(r, size, 2 * MS);
        assert_eq!(b.spent(), 2 * MS);
        assert!(b.allows_quietly(size, 39 * MS));
    }

    #[test]
    fn a_background_unit_starts_when_what_is_booked_fits() {
        let mut b = CompileBudget::new(0.5, MS, Duration::from_micros(10));
        let size = 1000 - OVERHEAD_UNITS;
        // 10 ms estimated, nothing run: refused in the foreground, allowed
        // on the thread, since nothing is booked.
        assert!(!b.allows_quietly(size, Duration::ZERO));
        assert!(b.allows_in_background(size, Duration::ZERO, Duration::ZERO));
        let r = b.reserve(size);
        // 10 ms under way: the next one waits until the share covers them
        // (10 <= 1 + 0.5 × 20), not for its own estimate too.
        assert!(!b.allows_in_background(size, 17 * MS, Duration::ZERO));
        assert!(b.allows_in_background(size, 20 * MS, Duration::ZERO));
        assert!(!b.allows_quietly(size, 20 * MS));
        assert_eq!(b.deferred(), 1);
        b.settle(r, size, 4 * MS);
        assert!(!b.allows_in_background_quietly(size, 5 * MS, Duration::ZERO));
        assert!(b.allows_in_background_quietly(size, 7 * MS, Duration::ZERO));
        // Paid back: the next one goes at once again.
        b.repay(4 * MS);
        assert!(b.allows_in_background_quietly(size, Duration::ZERO, Duration::ZERO));
        // A share of zero compiles nothing, on the thread too.
        let mut none = CompileBudget::new(0.0, MS, Duration::from_micros(10));
        assert!(!none.allows_in_background(size, Duration::from_secs(1), Duration::ZERO));
    }

    #[test]
    fn a_unit_goes_before_the_compilations_it_supersedes() {
        let mut b = CompileBudget::new(0.5, MS, Duration::from_micros(10));
        let inner = b.reserve(1000 - OVERHEAD_UNITS); // 10 ms under way
        let outer = 3000 - OVERHEAD_UNITS;
        // Booked 10 ms > 1 + 0.5 × 2: an unrelated unit waits...
        assert!(!b.allows_in_background(outer, 2 * MS, Duration::ZERO));
        // ...the unit around the one under way does not.
        assert!(b.allows_in_background(outer, 2 * MS, inner));
        b.reserve(outer);
        // What else is booked still counts: 30 ms more.
        assert!(!b.allows_in_background_quietly(outer, 2 * MS, inner));
    }

    #[test]
    fn unlimited_allows_everything_and_huge_estimates_do_not_overflow() {
        let mut b = CompileBudget::unlimited();
        assert!(b.allows(usize::MAX, Duration::ZERO));
        let mut b = CompileBudget::default().with_share(f64::INFINITY);
        assert!(b.allows(usize::MAX, Duration::ZERO));
        let mut b = CompileBudget::default();
        assert!(!b.allows(usize::MAX, Duration::from_secs(3600)));
    }
}
