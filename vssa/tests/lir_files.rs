//! File tests of the LIR passes: every `tests/lir/*.lir` file holds an
//! input graph in the text form ([`vssa::parse`]), the passes to run on it
//! and the graph they must produce, as the printer writes it:
//!
//! ```text
//! ; run: optimize
//! n0 tuple = start
//! ...
//! ; expect:
//! n0 @8f3a0c1d tuple = start
//! ...
//! ```
//!
//! The input is parsed, checked by the verifier, and each pass named on
//! the `; run:` line runs in order, the verifier after each. A first pass
//! `build` parses the input through the construction-time peepholes
//! ([`vssa::parse_building`]), as a front end would get it. A mismatch
//! shows a line diff of expected and actual output. `VSSA_BLESS=1 cargo
//! test --test lir_files` writes the actual output into the files instead
//! (review the change before committing it). See docs/testing.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vssa::print::print;
use vssa::Graph;

const EXPECT: &str = "; expect:";
const RUN: &str = "; run:";
/// `; interp: ARGS | BYTES`: run the graph before and after the passes
/// with these parameters on a memory of 256 bytes at [`MEM_BASE`] that
/// starts with BYTES (the rest 0); result and memory must agree (a
/// deopt by its resume point and values).
const INTERP: &str = "; interp:";
const MEM_BASE: i64 = 4096;

/// Numbers separated by spaces or commas.
fn numbers(text: &str) -> Result<Vec<i64>, String> {
    text.split([' ', ','])
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().map_err(|_| format!("`{w}` is not a number")))
        .collect()
}

/// Runs `before` and `after` on the `; interp:` line's input (see [`INTERP`]).
fn same_run(before: &Graph, after: &Graph, line: &str) -> Result<(), String> {
    let (args, bytes) = line.split_once('|').unwrap_or((line, ""));
    let args = numbers(args)?;
    let mut start = vec![0u8; 256];
    for (k, b) in numbers(bytes)?.into_iter().enumerate().take(256) {
        start[k] = b as u8;
    }
    let run = |g: &Graph| {
        let mut mem = vssa::interp::Memory::from_bytes(MEM_BASE, start.clone());
        let r = vssa::interp::eval(g, &args, &mut mem, &mut |_, a| a.len() as i64, 1_000_000)
            .map_err(|e| match e {
                // A deopt is named by its frame, not by the guard node
                // (merged or hoisted guards are other nodes).
                vssa::interp::InterpError::Deopt { resume, values, .. } => {
                    format!("deoptimized to resume point {resume} with {values:?}")
                }
                e => e.to_string(),
            });
        (r, mem.bytes().to_vec())
    };
    let (want, got) = (run(before), run(after));
    if want != got {
        return Err(format!(
            "interp `{line}`: before the passes {:?}, after {:?}",
            want.0, got.0
        ));
    }
    Ok(())
}

/// A pass a file may name.
type Pass = fn(&mut Graph) -> Result<(), String>;

fn pass(name: &str) -> Option<Pass> {
    let p: Pass = match name {
        "optimize" => |g| {
            let stats = vssa::optimize(g).map_err(|e| e.to_string())?;
            if stats.converged {
                Ok(())
            } else {
                Err("the optimizer did not converge".into())
            }
        },
        "fold-control" => |g| {
            vssa::fold_control(g).map_err(|e| e.to_string())?;
            Ok(())
        },
        "branch-facts" => |g| {
            vssa::branch_facts(g).map_err(|e| e.to_string())?;
            Ok(())
        },
        "hoist-guards" => |g| {
            vssa::hoist_guards(g).map_err(|e| e.to_string())?;
            Ok(())
        },
        "merge-ranges" => |g| {
            vssa::merge_range_guards(g).map_err(|e| e.to_string())?;
            Ok(())
        },
        "promote" => |g| {
            vssa::promote(g).map_err(|e| e.to_string())?;
            Ok(())
        },
        "closed-forms" => |g| {
            vssa::closed_forms(g).map_err(|e| e.to_string())?;
            Ok(())
        },
        "standard" => |g| {
            vssa::standard(g, vssa::PassConfig::default(), &mut |_| Ok(0))
                .map_err(|e| e.to_string())?;
            Ok(())
        },
        _ => return None,
    };
    Some(p)
}

fn verify(g: &Graph, after: &str) -> Result<(), String> {
    vssa::verify(g).map_err(|errs| {
        let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        format!("verifier after {after}: {}", all.join("; "))
    })
}

/// The output of the file's passes on its input, or what went wrong.
fn run_file(text: &str) -> Result<String, String> {
    let input = text.split(EXPECT).next().unwrap_or(text);
    let passes: Vec<&str> = input
        .lines()
        .filter_map(|l| l.trim().strip_prefix(RUN))
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if passes.is_empty() {
        return Err(format!("no `{RUN} PASS, ...` line"));
    }
    // `build` first: the input as a front end builds it, with the
    // construction-time peepholes (else as written).
    let building = passes.first() == Some(&"build");
    let parsed = if building {
        vssa::parse_building(input)
    } else {
        vssa::parse(input)
    };
    let mut g = parsed.map_err(|e| format!("input: {e}"))?;
    verify(&g, "parsing")?;
    let before = g.clone();
    for &name in &passes[usize::from(building)..] {
        let run = pass(name).ok_or_else(|| format!("unknown pass `{name}`"))?;
        run(&mut g).map_err(|e| format!("{name}: {e}"))?;
        verify(&g, name)?;
    }
    for line in input.lines().filter_map(|l| l.trim().strip_prefix(INTERP)) {
        same_run(&before, &g, line)?;
    }
    Ok(print(&g))
}

/// The expected section, or `None` when the file has no `; expect:` line.
fn expected(text: &str) -> Option<String> {
    let (_, after) = text.split_once(EXPECT)?;
    let body = after.strip_prefix('\n').unwrap_or(after);
    Some(
        body.lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect(),
    )
}

/// `text` with its expected section replaced by `actual`.
fn blessed(text: &str, actual: &str) -> String {
    let input = text.split(EXPECT).next().unwrap_or(text);
    let mut out = input.trim_end().to_string();
    out.push('\n');
    out.push_str(EXPECT);
    out.push('\n');
    out.push_str(actual);
    out
}

/// A line diff of `want` and `got` (longest common subsequence): `-` lines
/// only expected, `+` lines only produced.
fn diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    // lcs[i][j]: common lines of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

fn lir_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "lir"))
        .collect();
    files.sort();
    files
}

#[test]
fn lir_file_tests() {
    let bless = std::env::var_os("VSSA_BLESS").is_some_and(|v| v == "1");
    let files = lir_files();
    assert!(!files.is_empty(), "no tests/lir/*.lir files");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let actual = match run_file(&text) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if expected(&text).as_deref() == Some(actual.as_str()) {
            continue;
        }
        if bless {
            std::fs::write(path, blessed(&text, &actual)).unwrap();
            eprintln!("blessed {name}");
            continue;
        }
        match expected(&text) {
            None => failures.push(format!("{name}: no `{EXPECT}` section; output:\n{actual}")),
            Some(want) => failures.push(format!(
                "{name}: output differs (- expected, + actual):\n{}",
                diff(&want, &actual)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} file tests failed (VSSA_BLESS=1 rewrites the expected output):\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn diff_marks_missing_and_extra_lines() {
    let d = diff("a\nb\nc\n", "a\nx\nc\nd\n");
    assert_eq!(d, "  a\n- b\n+ x\n  c\n+ d\n");
}

#[test]
fn bless_replaces_only_the_expected_section() {
    let text = "; run: optimize\nn0 ctrl = end\n; expect:\nold\n";
    assert_eq!(
        blessed(text, "new\n"),
        "; run: optimize\nn0 ctrl = end\n; expect:\nnew\n"
    );
    assert_eq!(expected(&blessed(text, "new\n")).unwrap(), "new\n");
    assert_eq!(
        blessed("; run: x\nn0 ctrl = end\n", "out\n"),
        "; run: x\nn0 ctrl = end\n; expect:\nout\n"
    );
}

#[test]
fn run_file_reports_bad_files() {
    assert!(run_file("n0 ctrl = end\n")
        .unwrap_err()
        .contains("no `; run:"));
    let e = run_file("; run: nonsense\nn0 tuple = start\nn1 ctrl = proj 0 n0\nn2 mem = proj 1 n0\nn3 i8 = const 1\nn4 ctrl = return n1, n2, n3\nn5 ctrl = end n4\n").unwrap_err();
    assert!(e.contains("unknown pass `nonsense`"), "{e}");
    let e = run_file("; run: optimize\nn0 i8 = const 1\nn1 ctrl = end n0\n").unwrap_err();
    assert!(e.contains("verifier after parsing"), "{e}");
}
