//! `os.date`, `os.time` (with a date table) and `os.clock`.
//!
//! Dates are computed in UTC by proleptic-Gregorian arithmetic (no libc
//! binding: the crate forbids unsafe code, and neither `chrono` nor `time`
//! is needed for fixed-offset arithmetic). "Local time" is therefore UTC:
//! the results equal lua5.4's when the process's time zone is UTC
//! (`TZ=UTC` or a UTC machine); `%Z` says "UTC" for local dates and "GMT"
//! for `!` dates, as glibc does. `os.time{...}` normalizes its fields the
//! way C's `mktime` does and writes them back into the table, as lua5.4
//! does; `isdst = true` moves the result an hour back, as glibc's `mktime`
//! does in a zone without summer time.

use crate::stdlib::{arg, arg_error, check_int, check_str, check_table};
use crate::table::Table;
use crate::value::{TableRef, Value};
use crate::vm::{LResult, Vm};
use std::fmt::Write as _;

/// Days from 1970-01-01 to `y-m-d` (month 1..=12) in the proleptic
/// Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Count years from March so the leap day ends the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a day number counted from 1970-01-01
/// (the inverse of [`days_from_civil`]); also what `vssa bench` dates its
/// reports with.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// A broken-down time (C's `struct tm`, with the full year and 1-based
/// month).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tm {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    /// Days since Sunday (0..=6).
    wday: i64,
    /// Days since January 1st (0..=365).
    yday: i64,
}

/// The UTC date of `t` seconds since the epoch; `None` when the year does
/// not fit C's `int tm_year` (lua5.4 then raises an error).
fn breakdown(t: i64) -> Option<Tm> {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    i32::try_from(year - 1900).ok()?;
    Some(Tm {
        year,
        month,
        day,
        hour: secs / 3600,
        min: secs / 60 % 60,
        sec: secs % 60,
        wday: (days + 4).rem_euclid(7),
        yday: days - days_from_civil(year, 1, 1),
    })
}

/// The ISO 8601 week-based year and week number of `tm`.
fn iso_week(tm: &Tm) -> (i64, i64) {
    let weeks_in = |y: i64| {
        let jan1 = (days_from_civil(y, 1, 1) + 4).rem_euclid(7);
        if jan1 == 4 || (jan1 == 3 && is_leap(y)) {
            53
        } else {
            52
        }
    };
    let iso_wd = (tm.wday + 6) % 7 + 1;
    let w = (tm.yday + 1 - iso_wd + 10) / 7;
    if w < 1 {
        (tm.year - 1, weeks_in(tm.year - 1))
    } else if w > weeks_in(tm.year) {
        (tm.year + 1, 1)
    } else {
        (tm.year, w)
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The conversions lua5.4 accepts (C99's): single letters, then the `E`
/// and `O` modified ones.
const SINGLE: &[u8] = b"aAbBcCdDeFgGhHIjmMnprRStTuUVwWxXyYzZ%";
const MODIFIED: &[&[u8]] = &[
    b"Ec", b"EC", b"Ex", b"EX", b"Ey", b"EY", b"Od", b"Oe", b"OH", b"OI", b"Om", b"OM", b"OS",
    b"Ou", b"OU", b"OV", b"Ow", b"OW", b"Oy",
];

/// Formats `tm` by the strftime `fmt` in the C locale. `Err` holds the
/// rest of the format from a conversion lua5.4 rejects.
fn strftime(fmt: &[u8], tm: &Tm, utc: bool) -> Result<Vec<u8>, Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] != b'%' {
            out.push(fmt[i]);
            i += 1;
            continue;
        }
        let rest = &fmt[i + 1..];
        let conv = if rest.len() >= 2 && MODIFIED.contains(&&rest[..2]) {
            i += 3;
            // The C locale's modified conversions are the plain ones.
            rest[1]
        } else if !rest.is_empty() && SINGLE.contains(&rest[0]) {
            i += 2;
            rest[0]
        } else {
            return Err(rest.to_vec());
        };
        let mut s = String::new();
        conversion(conv, tm, utc, &mut s);
        out.extend_from_slice(s.as_bytes());
    }
    Ok(out)
}

/// One conversion (`conv` is valid) appended to `s`.
fn conversion(conv: u8, tm: &Tm, utc: bool, s: &mut String) {
    let day = DAYS[tm.wday as usize];
    let month = MONTHS[(tm.month - 1) as usize];
    let hour12 = if tm.hour % 12 == 0 { 12 } else { tm.hour % 12 };
    let _ = match conv {
        b'a' => write!(s, "{}", &day[..3]),
        b'A' => write!(s, "{day}"),
        b'b' | b'h' => write!(s, "{}", &month[..3]),
        b'B' => write!(s, "{month}"),
        b'c' => {
            conversion(b'a', tm, utc, s);
            s.push(' ');
            conversion(b'b', tm, utc, s);
            let _ = write!(
                s,
                " {:2} {:02}:{:02}:{:02} ",
                tm.day, tm.hour, tm.min, tm.sec
            );
            conversion(b'Y', tm, utc, s);
            Ok(())
        }
        b'C' => write!(s, "{}", tm.year.div_euclid(100)),
        b'd' => write!(s, "{:02}", tm.day),
        b'D' | b'x' => write!(
            s,
            "{:02}/{:02}/{:02}",
            tm.month,
            tm.day,
            tm.year.rem_euclid(100)
        ),
        b'e' => write!(s, "{:2}", tm.day),
        b'F' => {
            conversion(b'Y', tm, utc, s);
            write!(s, "-{:02}-{:02}", tm.month, tm.day)
        }
        b'g' => write!(s, "{:02}", iso_week(tm).0.rem_euclid(100)),
        b'G' => write!(s, "{}", iso_week(tm).0),
        b'H' => write!(s, "{:02}", tm.hour),
        b'I' => write!(s, "{hour12:02}"),
        b'j' => write!(s, "{:03}", tm.yday + 1),
        b'm' => write!(s, "{:02}", tm.month),
        b'M' => write!(s, "{:02}", tm.min),
        b'n' => {
            s.push('\n');
            Ok(())
        }
        b'p' => write!(s, "{}", if tm.hour < 12 { "AM" } else { "PM" }),
        b'r' => write!(
            s,
            "{hour12:02}:{:02}:{:02} {}",
            tm.min,
            tm.sec,
            if tm.hour < 12 { "AM" } else { "PM" }
        ),
        b'R' => write!(s, "{:02}:{:02}", tm.hour, tm.min),
        b'S' => write!(s, "{:02}", tm.sec),
        b't' => {
            s.push('\t');
            Ok(())
        }
        b'T' | b'X' => write!(s, "{:02}:{:02}:{:02}", tm.hour, tm.min, tm.sec),
        b'u' => write!(s, "{}", (tm.wday + 6) % 7 + 1),
        b'U' => write!(s, "{:02}", (tm.yday + 7 - tm.wday) / 7),
        b'V' => write!(s, "{:02}", iso_week(tm).1),
        b'w' => write!(s, "{}", tm.wday),
        b'W' => write!(s, "{:02}", (tm.yday + 7 - (tm.wday + 6) % 7) / 7),
        b'y' => write!(s, "{:02}", tm.year.rem_euclid(100)),
        b'Y' => write!(s, "{}", tm.year),
        b'z' => write!(s, "+0000"),
        b'Z' => write!(s, "{}", if utc { "GMT" } else { "UTC" }),
        _ => write!(s, "%"),
    };
}

fn set_int(vm: &mut Vm, t: TableRef, key: &str, v: i64) {
    let k = vm.heap.str_value(key.as_bytes());
    vm.heap.table_mut(t).set(k, Value::Int(v));
}

/// Writes `tm`'s fields into `t` (lua5.4's `setallfields`).
fn set_all_fields(vm: &mut Vm, t: TableRef, tm: &Tm) {
    set_int(vm, t, "year", tm.year);
    set_int(vm, t, "month", tm.month);
    set_int(vm, t, "day", tm.day);
    set_int(vm, t, "hour", tm.hour);
    set_int(vm, t, "min", tm.min);
    set_int(vm, t, "sec", tm.sec);
    set_int(vm, t, "yday", tm.yday + 1);
    set_int(vm, t, "wday", tm.wday + 1);
    let k = vm.heap.str_value(b"isdst");
    vm.heap.table_mut(t).set(k, Value::Bool(false));
}

fn os_date(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let fmt = match arg(vm, base, nargs, 0) {
        Value::Nil => b"%c".to_vec(),
        _ => check_str(vm, base, nargs, 0, "date")?,
    };
    let t = match arg(vm, base, nargs, 1) {
        Value::Nil => now(),
        _ => check_int(vm, base, nargs, 1, "date")?,
    };
    let (utc, fmt) = match fmt.strip_prefix(b"!") {
        Some(rest) => (true, rest),
        None => (false, &fmt[..]),
    };
    let Some(tm) = breakdown(t) else {
        return Err(vm.rt_error("date result cannot be represented in this installation"));
    };
    if fmt == b"*t" {
        let t = vm.heap.new_table(Table::with_capacity(0, 9));
        set_all_fields(vm, t, &tm);
        return vm.rets(base + nargs, &[Value::Table(t)]);
    }
    match strftime(fmt, &tm, utc) {
        Ok(s) => {
            let v = vm.heap.str_value(&s);
            vm.rets(base + nargs, &[v])
        }
        Err(rest) => {
            let msg = format!(
                "invalid conversion specifier '%{}'",
                String::from_utf8_lossy(&rest)
            );
            Err(arg_error(vm, 0, "date", &msg))
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Field `key` of a date table (lua5.4's `getfield`): an integer within
/// C's `int` after subtracting `delta`; `default` when absent (none: an
/// error).
fn get_field(
    vm: &mut Vm,
    t: TableRef,
    key: &str,
    default: Option<i64>,
    delta: i64,
) -> LResult<i64> {
    let k = vm.heap.str_value(key.as_bytes());
    let v = vm.index(Value::Table(t), k, None)?;
    let n = match v {
        Value::Int(n) => Some(n),
        Value::Float(f) => crate::value::float_to_int_exact(f),
        Value::Str(s) => match crate::value::str_to_number(vm.heap.str_bytes(s)) {
            Some(Value::Int(n)) => Some(n),
            Some(Value::Float(f)) => crate::value::float_to_int_exact(f),
            _ => None,
        },
        _ => None,
    };
    match n {
        None if !matches!(v, Value::Nil) => {
            Err(vm.rt_error(format!("field '{key}' is not an integer")))
        }
        None => default.ok_or_else(|| vm.rt_error(format!("field '{key}' missing in date table"))),
        Some(n) => {
            let fits = if n >= 0 {
                n - delta <= i32::MAX as i64
            } else {
                i32::MIN as i64 + delta <= n
            };
            if fits {
                Ok(n - delta)
            } else {
                Err(vm.rt_error(format!("field '{key}' is out-of-bound")))
            }
        }
    }
}

/// Seconds since the epoch of a date table's fields, normalized as C's
/// `mktime` does (months beyond 12, negative days, ...); `None` when the
/// normalized year does not fit C's `int`.
fn make_time(year: i64, month0: i64, day: i64, hour: i64, min: i64, sec: i64) -> Option<i64> {
    let months = year * 12 + month0;
    let (y, m0) = (months.div_euclid(12), months.rem_euclid(12));
    let days = days_from_civil(y + 1900, m0 + 1, 1) + day - 1;
    let t = days * 86_400 + hour * 3600 + min * 60 + sec;
    breakdown(t).map(|_| t)
}

fn os_time(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    if matches!(arg(vm, base, nargs, 0), Value::Nil) {
        return vm.rets(base + nargs, &[Value::Int(now())]);
    }
    let t = check_table(vm, base, nargs, 0, "time")?;
    let year = get_field(vm, t, "year", None, 1900)?;
    let month = get_field(vm, t, "month", None, 1)?;
    let day = get_field(vm, t, "day", None, 0)?;
    let hour = get_field(vm, t, "hour", Some(12), 0)?;
    let min = get_field(vm, t, "min", Some(0), 0)?;
    let sec = get_field(vm, t, "sec", Some(0), 0)?;
    let k = vm.heap.str_value(b"isdst");
    let isdst = vm.index(Value::Table(t), k, None)?.truthy();
    let result = make_time(year, month, day, hour, min, sec)
        .map(|s| if isdst { s - 3600 } else { s })
        .and_then(|s| breakdown(s).map(|tm| (s, tm)));
    match result {
        // lua5.4 takes mktime's -1 for its failure.
        Some((s, tm)) if s != -1 => {
            set_all_fields(vm, t, &tm);
            vm.rets(base + nargs, &[Value::Int(s)])
        }
        _ => Err(vm.rt_error("time result cannot be represented in this installation")),
    }
}

/// The CPU time of the running thread in seconds (the interpreter is
/// single-threaded), from Linux's scheduler statistics; the time since the
/// interpreter started where they are not available.
fn cpu_seconds(vm: &Vm) -> f64 {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            return ns as f64 / 1e9;
        }
    }
    vm.start.elapsed().as_secs_f64()
}

fn os_clock(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    let t = cpu_seconds(vm);
    vm.rets(base + nargs, &[Value::Float(t)])
}

/// `os.setlocale([locale [, category]])`: only the C locale exists here
/// (numbers and dates are always formatted as in C), so a query, `"C"`,
/// `"POSIX"` and `""` (the environment's locale, taken to be C) give
/// `"C"` and any other locale is unavailable (nil), as lua5.4 answers
/// for a locale the system lacks.
fn os_setlocale(vm: &mut Vm, base: usize, nargs: usize) -> LResult<(usize, usize)> {
    const CATEGORIES: [&[u8]; 6] = [
        b"all",
        b"collate",
        b"ctype",
        b"monetary",
        b"numeric",
        b"time",
    ];
    let locale = match arg(vm, base, nargs, 0) {
        Value::Nil => None,
        _ => Some(check_str(vm, base, nargs, 0, "setlocale")?),
    };
    if !matches!(arg(vm, base, nargs, 1), Value::Nil) {
        let cat = check_str(vm, base, nargs, 1, "setlocale")?;
        if !CATEGORIES.contains(&cat.as_slice()) {
            let msg = format!("invalid option '{}'", String::from_utf8_lossy(&cat));
            return Err(arg_error(vm, 1, "setlocale", &msg));
        }
    }
    let r = match locale.as_deref() {
        None | Some(b"") | Some(b"C") | Some(b"POSIX") => vm.heap.str_value(b"C"),
        Some(_) => Value::Nil,
    };
    vm.rets(base + nargs, &[r])
}

/// Registers `clock`, `time`, `date` and `setlocale` in the `os` table `os`.
pub fn open(vm: &mut Vm, os: TableRef) {
    crate::stdlib::reg(vm, os, "setlocale", os_setlocale);
    crate::stdlib::reg(vm, os, "clock", os_clock);
    crate::stdlib::reg(vm, os, "time", os_time);
    crate::stdlib::reg(vm, os, "date", os_date);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        for z in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn breakdown_and_formats_match_glibc() {
        // Values printed by lua5.4 (glibc) for `os.date('!...', t)`.
        let tm = breakdown(-10_000_000_000).unwrap();
        let s = strftime(b"%Y %C %y %G %g %V %U %W %j %u %w %e %I %p", &tm, true).unwrap();
        assert_eq!(s, b"1653 16 53 1653 53 07 06 06 041 1 1 10 06 AM");
        let tm = breakdown(253_402_300_800).unwrap();
        let s = strftime(b"%Y|%C|%y|%G|%g|%c", &tm, true).unwrap();
        assert_eq!(s, b"10000|100|00|9999|99|Sat Jan  1 00:00:00 10000");
        assert_eq!(strftime(b"%Ez", &tm, true), Err(b"Ez".to_vec()));
        assert_eq!(strftime(b"x%", &tm, true), Err(Vec::new()));
        assert!(breakdown(1 << 60).is_none());
    }

    #[test]
    fn make_time_normalizes_as_mktime() {
        // lua5.4 with TZ=UTC: {year=2000, month=14, day=-3, hour=25,
        // min=61, sec=-5} is 980733655 (then an hour less for isdst).
        assert_eq!(make_time(100, 13, -3, 25, 61, -5), Some(980_733_655));
        assert_eq!(make_time(70, 0, 1, 0, 0, 0), Some(0));
    }
}
