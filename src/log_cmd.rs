//! `vssa log show FILE` and `vssa log diff A B`: patch logs for humans.
//!
//! The file format is already text, but its lines carry full 32-digit
//! addresses; these commands print short addresses and one new node per
//! line, and compare two logs patch by patch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vssa_patch::format::write_patch;
use vssa_patch::{Log, Patch};

#[derive(clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(clap::Subcommand)]
enum LogCommand {
    /// Print a patch log readably (header, then each patch and its new nodes).
    Show {
        /// The patch log.
        file: PathBuf,
    },
    /// Show how two patch logs differ: header fields, then patches only in
    /// A (`-`) and only in B (`+`).
    Diff {
        /// The old log.
        a: PathBuf,
        /// The new log.
        b: PathBuf,
    },
}

pub fn run(args: LogArgs) -> Result<(), String> {
    match args.command {
        LogCommand::Show { file } => emit(&show(&load(&file)?, &file)),
        LogCommand::Diff { a, b } => emit(&diff(&load(&a)?, &load(&b)?)),
    }
}

/// Writes to stdout; a closed pipe (`vssa log show F | head`) is not an error.
fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write output: {e}"))
        }
        _ => Ok(()),
    }
}

fn load(path: &Path) -> Result<Log, String> {
    match Log::load(path) {
        Ok(Some(log)) => Ok(log),
        Ok(None) => Err(format!("{}: no such file", path.display())),
        Err(e) => Err(e.to_string()),
    }
}

fn encoding_note(log: &Log) -> &'static str {
    if log.encoding == vssa::ENCODING_VERSION {
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

fn show(log: &Log, file: &Path) -> String {
    let nodes: usize = log.patches.iter().map(|p| p.nodes.len()).sum();
    let mut s = format!(
        "patch log {}\n  format {}, address encoding {} {}\n  program {}\n  {} patches, {} new nodes\n",
        file.display(),
        vssa_patch::FORMAT_VERSION,
        log.encoding,
        encoding_note(log),
        log.program,
        log.patches.len(),
        nodes
    );
    for (i, p) in log.patches.iter().enumerate() {
        s.push_str(&patch_text(i + 1, p));
    }
    s
}

/// Header differences, then a multiset difference of patch lines (in each
/// log's order), then a one-line summary.
fn diff(a: &Log, b: &Log) -> String {
    let mut s = String::new();
    if a.encoding != b.encoding {
        s.push_str(&format!("encoding: {} -> {}\n", a.encoding, b.encoding));
    }
    if a.program != b.program {
        s.push_str(&format!(
            "program: {} -> {} (logs of different programs)\n",
            a.program, b.program
        ));
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
        "{only_a} patch(es) only in A, {only_b} only in B, {common} in both{}\n",
        if only_a == 0 && only_b == 0 && !same_order {
            " (in a different order)"
        } else if a == b {
            " (identical)"
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
                inputs: vec![],
            }],
        }
    }

    #[test]
    fn show_lists_patches_and_nodes() {
        let log = Log::new(Addr([1; 16]), vec![patch(2, 3)]);
        let s = show(&log, Path::new("x.log"));
        assert!(s.contains("1 patches, 1 new nodes"), "{s}");
        assert!(s.contains("#1 replace @02020202 by @03030303"), "{s}");
        assert!(s.contains("@03030303 = i8 const 3"), "{s}");
    }

    #[test]
    fn diff_shows_each_side() {
        let a = Log::new(Addr([1; 16]), vec![patch(2, 3), patch(4, 5)]);
        let b = Log::new(Addr([1; 16]), vec![patch(4, 5), patch(6, 7)]);
        let d = diff(&a, &b);
        assert!(d.contains("- #1 replace @02020202"), "{d}");
        assert!(d.contains("+ #2 replace @06060606"), "{d}");
        assert!(
            d.ends_with("1 patch(es) only in A, 1 only in B, 1 in both\n"),
            "{d}"
        );
        assert!(diff(&a, &a).contains("(identical)"));
        let swapped = Log::new(Addr([1; 16]), vec![patch(4, 5), patch(2, 3)]);
        assert!(diff(&a, &swapped).contains("different order"));
    }
}
