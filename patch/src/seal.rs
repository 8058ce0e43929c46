//! The per-user key that seals patch logs.
//!
//! A log file's checksum only finds accidents: anyone who edits a log can
//! recompute it. A *seal* is blake3 in keyed mode over the file under a
//! 32-byte key that only this user can read; a log whose seal verifies was
//! written by vssa for this user, from a graph's own addresses, so replay
//! may trust its recipes (build nodes under their recorded addresses
//! without hashing them). A log that is not sealed is never replayed by the
//! driver (see `docs/patch-log.md`, "Trust").
//!
//! The key lives in `KEY_FILE` in the first of `$VSSA_CACHE_DIR`,
//! `$XDG_CACHE_HOME/vssa`, `~/.cache/vssa`; it is made on first use (mode
//! 0600, folder 0700), from the operating system's random source.

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The key's file name in the cache folder.
pub const KEY_FILE: &str = "patch-log.key";

/// A 32-byte key for blake3's keyed mode.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// A key from its bytes (tests; a key read from its file).
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(bytes)
    }

    /// The seal of `bytes` under this key.
    pub fn seal(&self, bytes: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.0, bytes).as_bytes()
    }

    /// Whether `seal` is the seal of `bytes` (compared in constant time).
    pub fn verifies(&self, bytes: &[u8], seal: &[u8; 32]) -> bool {
        blake3::keyed_hash(&self.0, bytes) == blake3::Hash::from_bytes(*seal)
    }

    /// This user's key if it exists (`Ok(None)` if not: nothing can be
    /// sealed by this user yet). Never creates anything.
    pub fn existing() -> io::Result<Option<SealKey>> {
        let Some(dir) = cache_dir() else {
            return Ok(None);
        };
        match read_key(&dir.join(KEY_FILE)) {
            Ok(k) => Ok(Some(k)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// This user's key, made now if there is none yet.
    pub fn user() -> io::Result<SealKey> {
        let dir = cache_dir().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no cache folder (set VSSA_CACHE_DIR, XDG_CACHE_HOME or HOME)",
            )
        })?;
        load_or_create(&dir)
    }
}

/// `$VSSA_CACHE_DIR`, else `$XDG_CACHE_HOME/vssa`, else `$HOME/.cache/vssa`
/// (empty values count as unset).
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("VSSA_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("vssa")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("vssa")))
}

/// Reads the key in `dir`, or makes it: written to a private temporary
/// and then hard-linked to its name, so that of two processes making it at
/// once one wins and the other reads the winner's whole key.
fn load_or_create(dir: &Path) -> io::Result<SealKey> {
    let path = dir.join(KEY_FILE);
    match read_key(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| io::Error::other(format!("no random numbers: {e}")))?;
    let tmp = dir.join(format!(
        ".{KEY_FILE}.{}.{:016x}",
        std::process::id(),
        getrandom::u64().map_err(|e| io::Error::other(e.to_string()))?
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    if written? {
        Ok(SealKey(key))
    } else {
        read_key(&path)
    }
}

/// Reads a key file: a regular file (not a link) of exactly 32 bytes that
/// nobody but its owner may read or write.
fn read_key(path: &Path) -> io::Result<SealKey> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why}: logs are not sealed", path.display()),
        )
    };
    if !meta.is_file() {
        return Err(bad("the seal key is not a regular file"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(bad("the seal key is readable or writable by others"));
    }
    // The size from the metadata, then one read (reading to the end would
    // take a second call to find it).
    let mut key = [0u8; 32];
    if meta.len() != 32 || (&f).read_exact(&mut key).is_err() {
        return Err(bad("the seal key is not 32 bytes"));
    }
    Ok(SealKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vssa-seal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_key_is_made_once_private_and_then_read_back() {
        let d = scratch("make").join("vssa");
        let k1 = load_or_create(&d).unwrap();
        let k2 = load_or_create(&d).unwrap();
        assert_eq!(k1, k2);
        let mode = std::fs::metadata(d.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
        // Only the key is left in the folder.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        // Another folder, another key.
        let other = load_or_create(&scratch("make2")).unwrap();
        assert_ne!(k1, other);
        let _ = std::fs::remove_dir_all(scratch("make"));
        let _ = std::fs::remove_dir_all(scratch("make2"));
    }

    #[test]
    fn a_key_others_can_read_or_of_the_wrong_size_is_refused() {
        let d = scratch("bad");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(KEY_FILE);
        std::fs::write(&p, [7u8; 32]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&d).unwrap_err();
        assert!(
            e.to_string().contains("readable or writable by others"),
            "{e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_or_create(&d).unwrap(), SealKey([7u8; 32]));
        std::fs::write(&p, [7u8; 31]).unwrap();
        let e = load_or_create(&d).unwrap_err();
        assert!(e.to_string().contains("not 32 bytes"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn seals_verify_only_under_their_key_and_bytes() {
        let a = SealKey([1; 32]);
        let b = SealKey([2; 32]);
        let s = a.seal(b"log");
        assert!(a.verifies(b"log", &s));
        assert!(!b.verifies(b"log", &s));
        assert!(!a.verifies(b"log!", &s));
    }
}
