//! The `replay` target: a patch log recorded for one program, replayed
//! onto a mutated copy of it by the real driver.
//!
//! Each input is a random Brainfuck program `A` and a mutation `A'` of it
//! (instructions inserted, deleted or changed, loops wrapped or unwrapped,
//! idioms inserted; and edits that leave the graph as it was: comment
//! bytes, `+-`). Two runs of the JIT driver share one patch-log file, as
//! two invocations of `vssa run --patch-log FILE` would:
//!
//! 1. `A`, optimizing: the file does not exist yet, so the optimizer runs
//!    and the driver saves its log; the run must match the interpreter.
//! 2. `A'`, optimizing: the driver loads `A`'s log, replays it (applied,
//!    stale or conflicting patch by patch; the whole log is stale when the
//!    program key differs), optimizes only if something did not apply,
//!    compiles and runs. Its output, error (kind and position) and final
//!    tape must equal the interpreter's run of `A'`.
//!
//! When `A'` is `A` byte for byte the log must also apply in full: that is
//! what the log is for. Otherwise how the log fared is only counted
//! (`applied-fully`, `stale`, `partial`, `with-conflicts`, `log-empty` in
//! the summary), since a mutation may or may not change the graph.

use crate::bf::{self, run_interp, run_jit, Case};
use crate::rng::Rng;
use crate::shrink::{matching_close, shrink_bytes};
use crate::{bump, guarded, Counters, Failure, Outcome, TempFile};
use vssa_bf::parse;

/// A program and its mutation; both run with `a`'s input, step limit and
/// EOF mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayCase {
    pub a: Case,
    pub mutated: Vec<u8>,
}

/// Generates input `seed`.
pub fn generate(seed: u64) -> ReplayCase {
    let mut rng = Rng::new(seed);
    let mut a = bf::generate(rng.next_u64(), false);
    let mut mutated = a.source.clone();
    // Sometimes none at all: the log must then apply in full.
    let n = rng.weighted(&[1, 6, 3, 2]);
    for _ in 0..n {
        mutate(&mut rng, &mut mutated);
    }
    // A mutation may add the first loop: every run must still end.
    if a.max_steps.is_none() && mutated.contains(&b'[') {
        a.max_steps = Some(rng.below(20_000));
    }
    ReplayCase { a, mutated }
}

/// Non-bracket commands.
const PLAIN: &[u8] = b"+-<>.,";

/// One random edit that keeps `src` balanced.
pub fn mutate(rng: &mut Rng, src: &mut Vec<u8>) {
    let at = rng.below(src.len() as u64 + 1) as usize;
    match rng.below(9) {
        // Comment bytes: the same program.
        0 => {
            for _ in 0..rng.range(1, 3) {
                src.insert(at, *rng.pick(b" \nab#\xff"));
            }
        }
        // Adds that cancel: normally the same graph.
        1 => {
            let pair: &[u8] = rng.pick::<&[u8]>(&[b"+-", b"-+"]);
            src.splice(at..at, pair.iter().copied());
        }
        2 => src.insert(at, *rng.pick(PLAIN)),
        // Delete or change a plain command (the first at or after `at`).
        3 | 4 => {
            let found = (at..src.len())
                .chain(0..at)
                .find(|&i| PLAIN.contains(&src[i]));
            if let Some(i) = found {
                if rng.chance(1, 2) {
                    src.remove(i);
                } else {
                    src[i] = *rng.pick(PLAIN);
                }
            }
        }
        5 => {
            let idiom: &[u8] = rng.pick::<&[u8]>(&bf::IDIOMS);
            src.splice(at..at, idiom.iter().copied());
        }
        // Wrap a balanced stretch starting at `at` in a loop.
        6 => {
            let mut ends = vec![at];
            let mut depth = 0usize;
            for (i, &b) in src.iter().enumerate().skip(at) {
                match b {
                    b'[' => depth += 1,
                    b']' if depth == 0 => break,
                    b']' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    ends.push(i + 1);
                }
            }
            let end = *rng.pick(&ends);
            src.insert(end, b']');
            src.insert(at, b'[');
            if rng.chance(1, 2) {
                src.insert(at + 1, b'-');
            }
        }
        // Unwrap a loop: remove a matched pair.
        7 => {
            let open = (at..src.len()).chain(0..at).find(|&i| src[i] == b'[');
            if let Some(i) = open {
                if let Some(j) = matching_close(src, i) {
                    src.remove(j);
                    src.remove(i);
                }
            }
        }
        // Duplicate a short balanced-free stretch of plain commands.
        _ => {
            let end = (at..src.len())
                .take(8)
                .take_while(|&i| PLAIN.contains(&src[i]))
                .last()
                .map_or(at, |i| i + 1);
            let piece = src[at..end].to_vec();
            src.splice(end..end, piece);
        }
    }
}

/// Checks `case`, counting how the log fared in `stats`.
pub fn check(case: &ReplayCase, stats: &mut Counters) -> Outcome {
    guarded(|| check_unguarded(case, stats))
}

/// Generates and checks input `seed`.
pub fn check_seed(seed: u64, stats: &mut Counters) -> Outcome {
    check(&generate(seed), stats)
}

fn check_unguarded(case: &ReplayCase, stats: &mut Counters) -> Outcome {
    let (pa, pm) = match (parse(&case.a.source), parse(&case.mutated)) {
        (Ok(a), Ok(m)) => (a, m),
        (a, m) => {
            return Outcome::Mismatch(format!(
                "a generated program does not parse: {:?} / {:?}",
                a.err(),
                m.err()
            ))
        }
    };
    let log = TempFile::new("replay");
    let recorded = match run_jit(&pa, &case.a, true, Some(log.path())) {
        Ok((r, report)) => {
            if let Some(diff) = bf::compare(&run_interp(&pa, &case.a), &r) {
                return Outcome::Mismatch(format!("run 1 (recording A): {diff}"));
            }
            if !report.patch_log_warnings.is_empty() {
                return Outcome::Mismatch(format!(
                    "run 1 (recording A): {:?}",
                    report.patch_log_warnings
                ));
            }
            report.patches_recorded
        }
        Err(e) => return Outcome::Mismatch(format!("run 1 (recording A): pipeline error: {e}")),
    };
    if !log.path().exists() {
        return Outcome::Mismatch("run 1 saved no patch log".into());
    }
    let mcase = Case {
        source: case.mutated.clone(),
        ..case.a.clone()
    };
    let (r, report) = match run_jit(&pm, &mcase, true, Some(log.path())) {
        Ok(x) => x,
        Err(e) => {
            return Outcome::Mismatch(format!("run 2 (replaying onto A'): pipeline error: {e}"))
        }
    };
    if let Some(diff) = bf::compare(&run_interp(&pm, &mcase), &r) {
        return Outcome::Mismatch(format!(
            "run 2 (replaying onto A'): {diff} (log: {recorded} patches, {} applied, {} stale, {} conflicting)",
            report.patches_replayed, report.patches_stale, report.patches_conflicting
        ));
    }
    let (applied, stale, conflicting) = (
        report.patches_replayed,
        report.patches_stale,
        report.patches_conflicting,
    );
    let identical = case.mutated == case.a.source;
    if identical {
        bump(stats, "identical-source");
        if applied != recorded || stale + conflicting > 0 {
            return Outcome::Mismatch(format!(
                "the log of A replayed onto A itself: {applied} of {recorded} patches applied, \
                 {stale} stale, {conflicting} conflicting ({:?})",
                report.patch_log_warnings
            ));
        }
    }
    bump(
        stats,
        if recorded == 0 {
            "log-empty"
        } else if applied == recorded {
            "applied-fully"
        } else if applied == 0 {
            "stale"
        } else {
            "partial"
        },
    );
    if conflicting > 0 {
        bump(stats, "with-conflicts");
    }
    Outcome::Pass
}

/// Describes (and, if asked, minimises) failing input `seed`: first the
/// mutated program with `A` fixed, then `A` with the mutation fixed.
pub fn failure(seed: u64, outcome: Outcome, shrink: bool) -> Failure {
    let mut case = generate(seed);
    let mut outcome = outcome;
    let mut scratch = Counters::new();
    if shrink {
        let mut attempt = case.clone();
        let mut fails = |src: &[u8]| {
            attempt.mutated = src.to_vec();
            bf::balanced(src) && check(&attempt, &mut scratch).is_failure()
        };
        case.mutated = shrink_bytes(&case.mutated, 200, &mut fails);
        let mut attempt = case.clone();
        let mut fails = |src: &[u8]| {
            attempt.a.source = src.to_vec();
            bf::balanced(src) && check(&attempt, &mut scratch).is_failure()
        };
        case.a.source = shrink_bytes(&case.a.source, 200, &mut fails);
        outcome = check(&case, &mut scratch);
    }
    Failure {
        input_seed: seed,
        reproducer: format!(
            "A: {:?}\nA': {:?}\ninput: {:?}\nmax_steps: {:?}\neof: {:?}\noutcome after shrinking: {:?}",
            String::from_utf8_lossy(&case.a.source),
            String::from_utf8_lossy(&case.mutated),
            case.a.input,
            case.a.max_steps,
            case.a.eof,
            outcome
        ),
        outcome,
        raw: Some(case.mutated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_balanced_and_vary() {
        let mut changed = 0;
        for seed in 0..300 {
            let c = generate(seed);
            assert!(bf::balanced(&c.mutated), "seed {seed}: {:?}", c.mutated);
            if c.mutated != c.a.source {
                changed += 1;
            }
            if c.mutated.contains(&b'[') {
                assert!(c.a.max_steps.is_some(), "seed {seed}");
            }
        }
        assert!(changed > 150 && changed < 300, "{changed} of 300 changed");
    }

    #[test]
    fn every_mutation_kind_keeps_balance() {
        let mut rng = Rng::new(9);
        let mut src = b"+[->+<]>.[[-]<]".to_vec();
        for _ in 0..2000 {
            mutate(&mut rng, &mut src);
            assert!(bf::balanced(&src), "{:?}", String::from_utf8_lossy(&src));
            if src.len() > 400 {
                src.truncate(0);
            }
        }
    }

    #[test]
    fn an_unchanged_program_replays_its_whole_log() {
        let a = Case {
            source: b"++>+++[-<+>]<[->>+<<]>>.".to_vec(),
            input: vec![],
            max_steps: Some(1000),
            eof: vssa_bf::EofMode::Unchanged,
        };
        let mut stats = Counters::new();
        let case = ReplayCase {
            mutated: a.source.clone(),
            a: a.clone(),
        };
        assert_eq!(check(&case, &mut stats), Outcome::Pass);
        assert_eq!(stats.get("identical-source"), Some(&1));
        assert_eq!(stats.get("applied-fully"), Some(&1), "{stats:?}");
        // A changed constant: another program key, so the log is stale.
        let case = ReplayCase {
            mutated: b"+++>+++[-<+>]<[->>+<<]>>.".to_vec(),
            a,
        };
        assert_eq!(check(&case, &mut stats), Outcome::Pass);
        assert_eq!(stats.get("stale"), Some(&1), "{stats:?}");
    }
}
