//! Scratch folders of a test process. All of them live under one folder
//! of the temporary directory named after the process, and the folders of
//! earlier test processes that are gone are removed on first use, so test
//! runs do not pile folders up in `/tmp` (a test process has no hook at
//! its end to remove its own).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PREFIX: &str = "vssa-tests-";

/// This process's folder: made on first use, after removing the folders
/// of test processes that no longer run.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        sweep_finished();
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder in the temporary directory");
        dir
    })
}

/// `root()/name`, made empty.
pub fn fresh(name: &str) -> PathBuf {
    let dir = root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Removes the folders of earlier test processes whose id is not running.
/// Only where `/proc` tells which processes run: elsewhere nothing goes.
fn sweep_finished() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let running = Path::new("/proc").join(pid.to_string()).exists();
        if !running && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
