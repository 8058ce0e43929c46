//! What the Lua guest's end-to-end tests share: where the shared test data
//! is, and a writer that keeps what a program prints.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `../shared/lua/SUB` beside the workspace, when this machine has it (tests
/// that need it skip with a printed reason otherwise).
pub fn shared_lua(sub: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/lua")
        .join(sub);
    dir.is_dir().then_some(dir)
}

/// A writer the test can read back after the run (the program's stdout).
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// Everything written so far as text (lossy: output may hold bytes
    /// that are not UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
