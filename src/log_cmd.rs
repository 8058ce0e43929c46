//! `vssa log show FILE`, `vssa log diff A B` and `vssa log export --text
//! FILE`: patch logs for humans.
//!
//! Runs write the binary form (sealed, see `vssa_patch::binary`); these
//! commands read it or the text form, print short addresses and one new
//! node per line, compare two files unit by unit (units are matched by
//! program key), patch by patch, and turn a log into the text form.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vssa_patch::format::write_patch;
use vssa_patch::fsutil::ReadFrom;
use vssa_patch::{Log, LogBook, Patch, SealKey, SealState};

#[derive(clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(clap::Subcommand)]
enum LogCommand {
    /// Print a patch-log file readably: each unit's key, refuted guards,
    /// then each patch and its new nodes.
    Show {
        /// The patch log.
        file: PathBuf,
    },
    /// Show how two patch-log files differ: units only in A or B, then for
    /// units in both, refutes and patches only in A (`-`) and only in B (`+`).
    Diff {
        /// The old log.
        a: PathBuf,
        /// The new log.
        b: PathBuf,
    },
    /// Print a patch-log file in the text form (format version 2), which
    /// `vssa run` also reads (but does not replay: it is not sealed).
    Export {
        /// The text form (the only one so far; required, so that another
        /// form can be added without changing what this command means).
        #[arg(long, required = true)]
        text: bool,
        /// The patch log.
        file: PathBuf,
    },
}

pub fn run(args: LogArgs) -> Result<(), String> {
    match args.command {
        LogCommand::Show { file } => {
            let (book, seal) = load(&file)?;
            emit(&show(&book, seal, &file))
        }
        LogCommand::Diff { a, b } => emit(&diff(&load(&a)?.0, &load(&b)?.0)),
        LogCommand::Export { text: _, file } => emit(&load(&file)?.0.to_text()),
    }
}

/// Writes to stdout; a closed pipe (`vssa log show F | head`) is not an error.
pub(crate) fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write output: {e}"))
        }
        _ => Ok(()),
    }
}

/// Reads a log in any form, from any file (pipes too, up to the size
/// bound), checking its seal with this user's key if there is one (never
/// making one).
fn load(path: &Path) -> Result<(LogBook, SealState), String> {
    let key = SealKey::existing().ok().flatten();
    match LogBook::load_keyed(path, ReadFrom::AnyFile, key.as_ref()) {
        Ok(Some(book)) => Ok(book),
        Ok(None) => Err(format!("{}: no such file", path.display())),
        Err(e) => Err(e.to_string()),
    }
}

fn encoding_note(encoding: u32) -> &'static str {
    if encoding == vssa::ENCODING_VERSION {
        "(current)"
    } else {
        "(not this build's: every patch is stale)"
    }
}

/// One patch: `replace @target by @by`, then `  @addr = ty op inputs`.
fn patch_text(i: usize, p: &Patch) -> String {
    let mut s = format!("#{i} replace {:?} by {:?}\n", p.target, p.by);
    for n in &p.nodes {
        s.push_str(&format!("    {:?} = {} {}", n.addr, n.ty, n.op));
        for a in &n.inputs {
            s.push_str(&format!(" {a:?}"));
        }
        s.push('\n');
    }
    s
}

/// A unit's one-line summary.
fn unit_head(log: &Log) -> String {
    let nodes: usize = log.patches.iter().map(|p| p.nodes.len()).sum();
    format!(
        "unit {}: {} refuted, {} patches, {} new nodes\n",
        log.program,
        log.refuted.len(),
        log.patches.len(),
        nodes
    )
}

fn seal_note(seal: SealState) -> &'static str {
    match seal {
        SealState::Verified => "sealed by this user (replayed without hashing)",
        SealState::Unsealed => "not sealed (text form, or written without a key): not replayed",
        SealState::NotVerified => {
            "sealed, but not under this user's key (another user or machine, or edited): not replayed"
        }
    }
}

fn show(book: &LogBook, seal: SealState, file: &Path) -> String {
    let patches: usize = book.units().map(|l| l.patches.len()).sum();
    let mut s = format!(
        "patch log {}\n  {}\n  address encoding {} {}\n  {} units, {} patches\n",
        file.display(),
        seal_note(seal),
        book.encoding(),
        encoding_note(book.encoding()),
        book.len(),
        patches
    );
    for log in book.units() {
        s.push_str(&unit_head(log));
        for g in &log.refuted {
            s.push_str(&format!("  refuted guard {g:?}\n"));
        }
        for (i, p) in log.patches.iter().enumerate() {
            s.push_str(&patch_text(i + 1, p));
        }
    }
    s
}

/// The encoding, then units only in A (`-`) or only in B (`+`), then for
/// each unit in both its refute and patch differences, then a summary.
fn diff(a: &LogBook, b: &LogBook) -> String {
    let mut s = String::new();
    if a.encoding() != b.encoding() {
        s.push_str(&format!("encoding: {} -> {}\n", a.encoding(), b.encoding()));
    }
    let (mut only_a, mut only_b, mut differ, mut same) = (0, 0, 0, 0);
    let keys: std::collections::BTreeSet<vssa::Addr> =
        a.units().chain(b.units()).map(|l| l.program).collect();
    for k in keys {
        match (a.unit(&k), b.unit(&k)) {
            (Some(x), None) => {
                only_a += 1;
                s.push_str(&format!("- {}", unit_head(x)));
            }
            (None, Some(y)) => {
                only_b += 1;
                s.push_str(&format!("+ {}", unit_head(y)));
            }
            (Some(x), Some(y)) if x == y => same += 1,
            (Some(x), Some(y)) => {
                differ += 1;
                s.push_str(&format!("unit {}:\n", k));
                s.push_str(&unit_diff(x, y));
            }
            (None, None) => {}
        }
    }
    s.push_str(&format!(
        "{only_a} unit(s) only in A, {only_b} only in B, {differ} differing, {same} identical\n"
    ));
    s
}

/// Refutes only in one log, then a multiset difference of patch lines (in
/// each log's order), then a one-line summary, for one unit.
fn unit_diff(a: &Log, b: &Log) -> String {
    let mut s = String::new();
    for g in a.refuted.iter().filter(|g| !b.is_refuted(g)) {
        s.push_str(&format!("- refuted guard {g:?}\n"));
    }
    for g in b.refuted.iter().filter(|g| !a.is_refuted(g)) {
        s.push_str(&format!("+ refuted guard {g:?}\n"));
    }
    let key = |p: &Patch| {
        let mut k = String::new();
        write_patch(&mut k, p);
        k
    };
    let count = |log: &Log| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for p in &log.patches {
            *m.entry(key(p)).or_default() += 1;
        }
        m
    };
    let (ca, cb) = (count(a), count(b));
    let mut only = |log: &Log, other: &BTreeMap<String, usize>, sign: char| {
        let mut left = other.clone();
        let mut n = 0;
        for (i, p) in log.patches.iter().enumerate() {
            match left.get_mut(&key(p)) {
                Some(c) if *c > 0 => *c -= 1,
                _ => {
                    n += 1;
                    for line in patch_text(i + 1, p).lines() {
                        s.push_str(&format!("{sign} {line}\n"));
                    }
                }
            }
        }
        n
    };
    let only_a = only(a, &cb, '-');
    let only_b = only(b, &ca, '+');
    let common = a.patches.len() - only_a;
    let same_order = a.patches == b.patches;
    s.push_str(&format!(
        "  {only_a} patch(es) only in A, {only_b} only in B, {common} in both{}\n",
        if only_a == 0 && only_b == 0 && !same_order {
            " (in a different order)"
        } else if a.patches == b.patches {
            " (identical patches)"
        } else {
            ""
        }
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use vssa::{Addr, Op, Type};
    use vssa_patch::NewNode;

    fn patch(t: u8, b: u8) -> Patch {
        Patch {
            target: Addr([t; 16]),
            by: Addr([b; 16]),
            nodes: vec![NewNode {
                addr: Addr([b; 16]),
                op: Op::Const { value: 3 },
                ty: Type::I8,
                inputs: Default::default(),
            }]
            .into(),
        }
    }

    fn book(units: Vec<Log>) -> LogBook {
        let mut b = LogBook::new();
        for u in units {
            b.insert(u);
        }
        b
    }

    #[test]
    fn show_lists_units_refutes_patches_and_nodes() {
        let mut one = Log::new(Addr([1; 16]), vec![patch(2, 3)]);
        one.refute(Addr([0xab; 16]));
        let two = Log::new(Addr([9; 16]), vec![]);
        let s = show(
            &book(vec![two, one]),
            SealState::Unsealed,
            Path::new("x.log"),
        );
        assert!(s.contains("2 units, 1 patches"), "{s}");
        let u1 = s.find("unit 0101").unwrap();
        let u9 = s.find("unit 0909").unwrap();
        assert!(u1 < u9, "key order: {s}");
        assert!(s.contains(": 1 refuted, 1 patches, 1 new nodes"), "{s}");
        assert!(s.contains("refuted guard @abababab"), "{s}");
        assert!(s.contains("#1 replace @02020202 by @03030303"), "{s}");
        assert!(s.contains("@03030303 = i8 const 3"), "{s}");
    }

    #[test]
    fn diff_matches_units_by_key() {
        let key = Addr([1; 16]);
        let a = Log::new(key, vec![patch(2, 3), patch(4, 5)]);
        let mut b = Log::new(key, vec![patch(4, 5), patch(6, 7)]);
        b.refute(Addr([0xcd; 16]));
        let gone = Log::new(Addr([7; 16]), vec![]);
        let new = Log::new(Addr([8; 16]), vec![patch(1, 1)]);
        let same = Log::new(Addr([9; 16]), vec![patch(6, 6)]);
        let d = diff(
            &book(vec![a.clone(), gone, same.clone()]),
            &book(vec![b, new, same]),
        );
        assert!(d.contains("- unit 0707"), "{d}");
        assert!(d.contains("+ unit 0808"), "{d}");
        assert!(d.contains("+ refuted guard @cdcdcdcd"), "{d}");
        assert!(d.contains("- #1 replace @02020202"), "{d}");
        assert!(d.contains("+ #2 replace @06060606"), "{d}");
        assert!(
            d.contains("1 patch(es) only in A, 1 only in B, 1 in both\n"),
            "{d}"
        );
        assert!(
            d.ends_with("1 unit(s) only in A, 1 only in B, 1 differing, 1 identical\n"),
            "{d}"
        );
        let one = book(vec![a.clone()]);
        assert!(diff(&one, &one).ends_with("0 differing, 1 identical\n"));
        let swapped = Log::new(key, vec![patch(4, 5), patch(2, 3)]);
        assert!(diff(&one, &book(vec![swapped])).contains("different order"));
    }
}
