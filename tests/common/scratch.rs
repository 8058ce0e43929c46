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
        vssa_patch::fsutil::remove_folders_of_finished_processes(PREFIX);
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
