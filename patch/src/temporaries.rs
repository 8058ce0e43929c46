//! The temporary files of atomic writes: unguessable names, exclusive
//! creation, removal on SIGINT/SIGTERM/SIGHUP, and removal of the ones a
//! killed process left behind.
//!
//! A temporary for `DIR/NAME` is `DIR/.NAME.PID.RANDOM.vssa-tmp`: `PID` is
//! the writing process (so a later save can tell a dead writer's leftover
//! from a live writer's file), `RANDOM` 16 hex digits from the operating
//! system's random source (so nobody can plant a link under the name in
//! advance). It is created with `O_EXCL` and `O_NOFOLLOW`: a file or a
//! link already under that name makes the creation fail, never opens it.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The suffix every temporary's name ends with.
const SUFFIX: &str = ".vssa-tmp";

/// Hex digits of the random part of a name.
const RANDOM_DIGITS: usize = 16;

/// Names tried before giving up (a clash needs 64 equal random bits).
const ATTEMPTS: usize = 8;

/// The temporaries this process is writing now; the signal thread removes
/// them. Holding the lock while a temporary is created and registered
/// means the signal thread never misses one that exists.
fn registry() -> &'static Mutex<Vec<PathBuf>> {
    static LIVE: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(Vec::new()))
}

/// A temporary file being written. Dropping it removes the file unless it
/// was [`Temporary::keep`]-ed (renamed into place).
pub(crate) struct Temporary {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    kept: bool,
}

impl Temporary {
    /// Creates a fresh temporary for `target_name` in `dir`: exclusively,
    /// never through a link, with a random name. Installs the signal
    /// cleanup first (once per process).
    pub(crate) fn create(dir: &Path, target_name: &str) -> io::Result<Temporary> {
        install_signal_cleanup();
        Self::create_with(dir, target_name, random_hex)
    }

    /// [`Temporary::create`] with the random part from `random` (tests
    /// use a fixed one to plant a link under the name).
    pub(crate) fn create_with(
        dir: &Path,
        target_name: &str,
        mut random: impl FnMut() -> io::Result<String>,
    ) -> io::Result<Temporary> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let path = dir.join(temp_name(target_name, std::process::id(), &random()?));
            let mut live = registry().lock().unwrap_or_else(|e| e.into_inner());
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(file) => {
                    live.push(path.clone());
                    return Ok(Temporary {
                        path,
                        file,
                        kept: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }

    /// The file was renamed into place: nothing to remove any more.
    pub(crate) fn keep(mut self) {
        self.kept = true;
        forget(&self.path);
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
            forget(&self.path);
        }
    }
}

fn forget(path: &Path) {
    let mut live = registry().lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|p| p != path);
}

/// `.NAME.PID.RANDOM.vssa-tmp`.
fn temp_name(target_name: &str, pid: u32, random: &str) -> String {
    format!(".{target_name}.{pid}.{random}{SUFFIX}")
}

/// 16 hex digits from the operating system's random source.
fn random_hex() -> io::Result<String> {
    let n = getrandom::u64().map_err(|e| io::Error::other(format!("no random numbers: {e}")))?;
    Ok(format!("{n:016x}"))
}

/// The writer's pid, if `file_name` is a temporary of `target_name`.
fn writer_of(file_name: &str, target_name: &str) -> Option<u32> {
    let rest = file_name
        .strip_prefix('.')?
        .strip_prefix(target_name)?
        .strip_prefix('.')?
        .strip_suffix(SUFFIX)?;
    let (pid, random) = rest.split_once('.')?;
    let hex = random.len() == RANDOM_DIGITS
        && random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if hex && digits {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether process `pid` exists, or `None` if this system cannot tell
/// (no `/proc`).
pub(crate) fn process_exists(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes the temporaries of `target_name` in `dir` whose writer is no
/// longer running (killed during a save, e.g. by SIGKILL). Best effort:
/// errors are ignored, and without `/proc` nothing is removed. A link
/// under such a name is removed itself, never followed.
pub(crate) fn remove_stale(dir: &Path, target_name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| writer_of(n, target_name)) else {
            continue;
        };
        if pid != me && process_exists(pid) == Some(false) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP: remove the temporaries being written,
/// then die of the signal as the default action would. The handler itself
/// only wakes a thread (signal-hook's self-pipe); the thread does the file
/// work, so nothing unsafe runs in signal context. Installed once, on the
/// first save: a process that never saves keeps the default actions.
fn install_signal_cleanup() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("vssa-tmp-cleanup".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Keep the lock: no new temporary appears after this.
                    let live = registry().lock().unwrap_or_else(|e| e.into_inner());
                    for p in live.iter() {
                        let _ = std::fs::remove_file(p);
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    // Not reached for these signals (their default action
                    // ends the process); if it were, exit as a shell would.
                    std::process::exit(128 + sig);
                }
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_names_are_not_temporaries() {
        let n = temp_name("p.log", 4242, "0123456789abcdef");
        assert_eq!(n, ".p.log.4242.0123456789abcdef.vssa-tmp");
        assert_eq!(writer_of(&n, "p.log"), Some(4242));
        assert_eq!(writer_of(&n, "p"), None);
        for other in [
            ".p.log.4242.tmp",
            ".p.log.4242.0123456789ABCDEF.vssa-tmp",
            ".p.log.x.0123456789abcdef.vssa-tmp",
            ".p.log.4242.0123456789abcde.vssa-tmp",
            "p.log.4242.0123456789abcdef.vssa-tmp",
            "p.log",
        ] {
            assert_eq!(writer_of(other, "p.log"), None, "{other}");
        }
    }

    #[test]
    fn random_names_differ() {
        assert_ne!(random_hex().unwrap(), random_hex().unwrap());
    }
}
