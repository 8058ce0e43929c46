//! What every `vssa bench` report shares: its statistics (median,
//! geometric mean), how it prints numbers, and the facts about where and
//! when it was measured (CPU, load, tool versions, commit, date).
//!
//! One place for these keeps the reports of `bench bf`, `bench lua`,
//! `bench recompile` and `bench warm` alike: the same number is printed
//! the same way in every table.

use std::process::Command;

/// The median, or `None` of nothing.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The geometric mean, or `None` of nothing.
pub fn geomean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp())
}

/// `x` with three significant digits (`123`, `12.3`, `1.23`, `0.123`;
/// `0` for zero), `–` when it is not a finite number.
pub fn sig3(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "–".into()
    } else if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A time in milliseconds with its unit: seconds from one second up,
/// three significant digits (`1.23 s`, `456 ms`, `7.89 ms`, `0.012 ms`).
pub fn fmt_ms(ms: f64) -> String {
    if ms.is_finite() && ms >= 1000.0 {
        format!("{:.2} s", ms / 1e3)
    } else if ms.is_finite() {
        format!("{} ms", sig3(ms))
    } else {
        "–".into()
    }
}

/// `part` as a percentage of `whole` (`12.3 %`), `–` when either is
/// missing or `whole` is not positive.
pub fn pct(part: Option<f64>, whole: Option<f64>) -> String {
    match (part, whole) {
        (Some(p), Some(w)) if p.is_finite() && w.is_finite() && w > 0.0 => {
            format!("{:.1} %", 100.0 * p / w)
        }
        _ => "–".into(),
    }
}

/// The first line a command prints (its output, or else its error
/// stream: some tools print their version there), or `None` when it does
/// not run or fails.
pub fn first_line_of(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    let text = [o.stdout, o.stderr].concat();
    let line = String::from_utf8_lossy(&text)
        .lines()
        .next()?
        .trim()
        .to_string();
    Some(line)
}

/// The CPU's model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The logical CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The checked-out commit, marked when the tree has uncommitted changes.
pub fn commit_label() -> String {
    match first_line_of("git", &["rev-parse", "--short", "HEAD"]) {
        Some(c) => {
            let dirty = Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=no"])
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false);
            if dirty {
                format!("{c} (with uncommitted changes)")
            } else {
                c
            }
        }
        None => "unknown".into(),
    }
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (no date crate needed).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // The calendar arithmetic of Lua's `os.date`, the project's one copy.
    let (y, m, d) = vssa_lua::oslib::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn geometric_means() {
        assert_eq!(geomean(&[]), None);
        assert!((geomean(&[2.0, 8.0]).unwrap() - 4.0).abs() < 1e-12);
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(fmt_ms(2345.0), "2.35 s");
        assert_eq!(fmt_ms(456.4), "456 ms");
        assert_eq!(fmt_ms(45.64), "45.6 ms");
        assert_eq!(fmt_ms(4.564), "4.56 ms");
        assert_eq!(fmt_ms(0.0123), "0.012 ms");
        assert_eq!(fmt_ms(f64::NAN), "–");
        assert_eq!(sig3(123.4), "123");
        assert_eq!(fmt_ms(0.0), "0 ms");
        assert_eq!(pct(Some(1.0), Some(8.0)), "12.5 %");
        assert_eq!(pct(Some(1.0), Some(0.0)), "–");
        assert_eq!(pct(None, Some(1.0)), "–");
    }
}
