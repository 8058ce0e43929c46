//! Writing and reading files safely (patch logs, graph dumps, CLIF dumps:
//! every file vssa writes goes through [`write_atomic`]).
//!
//! * A write never leaves a half-written file: it goes to a temporary in
//!   the same folder (see [`crate::temporaries`]: random name, exclusive,
//!   never through a link), is synced, and is renamed over the target.
//! * A write only ever replaces a regular, writable file (or creates a
//!   missing one): a device node, a directory, a FIFO, a socket, a symbolic
//!   link or a read-only file is left alone and the write fails with an
//!   error saying why. A replaced file keeps its permission bits.
//! * A read is bounded ([`read_bounded`]): an endless or huge file is an
//!   error after at most `max + 1` bytes, never unbounded memory.

use crate::temporaries::{self, Temporary};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The largest patch-log file vssa reads (64 MiB; the largest corpus log,
/// `hanoi.b`'s, is 2.4 MB as text).
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// Writes `bytes` to `path` atomically: into a temporary file in the same
/// folder, flushed to disk, then renamed over `path`. A reader sees the old
/// file or the new one, never a mix; an interrupted write leaves the old
/// one. Refuses (with an error, touching nothing) a `path` that exists and
/// is not a regular writable file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_over(path, bytes, |_| Ok(()))
}

/// [`write_atomic`], and if `path` exists, `check` must accept its
/// current content first (it is given the file, opened for reading
/// without following links). The patch-log writer uses it to replace only
/// files that are patch logs.
pub fn write_atomic_over(
    path: &Path,
    bytes: &[u8],
    mut check: impl FnMut(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| refused("the name is not a file name in UTF-8"))?;
    // Another writer may rename its file over `path` between the look
    // and the open (concurrent runs sharing a log): then look again.
    let mut attempts = 0;
    let existing = loop {
        attempts += 1;
        match std::fs::symlink_metadata(path) {
            Ok(meta) => match replaceable(path, &meta, &mut check) {
                Err(Changed::Yes) if attempts < 8 => continue,
                Err(Changed::Yes) => return Err(refused("the file changed while it was checked")),
                Err(Changed::No(e)) => return Err(e),
                Ok(meta) => break Some(meta),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => break None,
            Err(e) => return Err(e),
        }
    };
    temporaries::remove_stale(dir, name);
    let mut tmp = Temporary::create(dir, name)?;
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    tmp.file.write_all(first)?;
    pause_for_tests();
    tmp.file.write_all(rest)?;
    if let Some(meta) = existing {
        tmp.file.set_permissions(meta.permissions())?;
    }
    tmp.file.sync_all()?;
    std::fs::rename(&tmp.path, path)?;
    tmp.keep();
    Ok(())
}

/// Removes the folders `{prefix}{pid}` of the temporary directory whose
/// process `pid` no longer runs: scratch folders named after the process
/// that made them (fuzzers, test processes), which a process cannot always
/// remove at its end. Best effort, like [`remove_stale_temporaries`]:
/// errors are ignored, and without `/proc` nothing is removed.
pub fn remove_folders_of_finished_processes(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let finished = temporaries::process_exists(pid) == Some(false);
        if finished && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes the temporaries that writers of `path` killed during a save
/// left behind (their process is gone). Every save does it first (not
/// every load: a run that replays its log and has nothing to save leaves
/// them to the next run that saves).
pub fn remove_stale_temporaries(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
        temporaries::remove_stale(dir, name);
    }
}

/// `VSSA_SAVE_PAUSE_MS=N`: sleep N ms (at most 10 s) in the middle of
/// writing a temporary. Only for tests that kill or signal a process
/// while it saves (`tests/log_faults.rs`); unset, it costs one lookup.
fn pause_for_tests() {
    if let Some(ms) = std::env::var("VSSA_SAVE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(10_000)));
    }
}

/// An error for a path vssa will not replace.
fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{why}: left it alone"))
}

/// What kind of file `meta` describes, for messages.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a regular file"
    }
}

/// Checks that the existing `path` (described by `meta`, not following
/// links) may be replaced, and returns its metadata (whose permissions the
/// new file gets).
/// Why [`replaceable`] said no: the file was swapped for another while it
/// was looked at (worth looking again), or an error.
enum Changed {
    Yes,
    No(io::Error),
}

impl From<io::Error> for Changed {
    fn from(e: io::Error) -> Changed {
        Changed::No(e)
    }
}

fn replaceable(
    path: &Path,
    meta: &Metadata,
    check: &mut impl FnMut(&mut File) -> io::Result<()>,
) -> Result<Metadata, Changed> {
    if !meta.file_type().is_file() {
        return Err(refused(&format!("not a regular file ({})", kind_of(meta))).into());
    }
    if meta.permissions().readonly() {
        return Err(refused("the file is read-only").into());
    }
    // Open without following links and without blocking (a FIFO swapped
    // in after the check above), then make sure it is the file checked.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let now = f.metadata()?;
    if !now.file_type().is_file() || now.ino() != meta.ino() || now.dev() != meta.dev() {
        return Err(Changed::Yes);
    }
    check(&mut f)?;
    Ok(now)
}

/// How [`read_bounded`] treats files that are not regular files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// Regular files only (a file vssa will also replace): anything else
    /// is an error, found without blocking.
    RegularFile,
    /// Also pipes and devices (a viewer's input, e.g. `<(zcat log.gz)`),
    /// read up to the bound like a file.
    AnyFile,
}

/// Reads `path` whole, or fails once it holds more than `max` bytes
/// (reading at most `max + 1`): memory stays bounded even for an endless
/// file. A directory is always an error; see [`ReadFrom`] for the rest.
pub fn read_bounded(path: &Path, max: u64, from: ReadFrom) -> io::Result<Vec<u8>> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    if from == ReadFrom::RegularFile {
        opts.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let f = opts.open(path)?;
    let meta = f.metadata()?;
    let regular = meta.file_type().is_file();
    if meta.is_dir() || (from == ReadFrom::RegularFile && !regular) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", kind_of(&meta)),
        ));
    }
    if regular && meta.len() > max {
        return Err(too_large(max));
    }
    if regular && meta.len() > 0 {
        return read_sized(&f, meta.len() as usize);
    }
    // Pipes and devices, and files whose size says nothing (`/proc`).
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// The first `len` bytes of `f`, the size its metadata gave: one `read`
/// call, where reading to the end costs a second one to see the end. A
/// file cut short meanwhile gives fewer bytes (its reader then finds it
/// truncated); one that grew gives its first `len`, so the bound holds.
fn read_sized(mut f: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read(&mut bytes[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(got);
    Ok(bytes)
}

fn too_large(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than {max} bytes, the most vssa reads"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vssa-patch-fsutil-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let p = dir.join("out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(names(&dir), ["out.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn links_directories_and_read_only_files_are_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("refuse");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = write_atomic(&link, b"x").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());

        let sub = dir.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let e = write_atomic(&sub, b"x").unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        assert!(sub.is_dir());

        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o444)).unwrap();
        let e = write_atomic(&victim, b"x").unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(names(&dir), ["link", "sub", "victim"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replaced_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let p = dir.join("f");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_check_can_refuse_the_existing_content() {
        let dir = scratch("check");
        let p = dir.join("f");
        std::fs::write(&p, b"source code").unwrap();
        let r = write_atomic_over(&p, b"log", |f| {
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            if s.starts_with("log") {
                Ok(())
            } else {
                Err(refused("not a log"))
            }
        });
        assert!(r.unwrap_err().to_string().contains("not a log"));
        assert_eq!(std::fs::read(&p).unwrap(), b"source code");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_link_at_the_temporary_name_is_never_followed() {
        let dir = scratch("planted");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let planted = dir.join(format!(
            ".out.{}.00000000000000aa.vssa-tmp",
            std::process::id()
        ));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        // Every attempt gets the planted name: creation fails, the victim
        // is untouched.
        let r = Temporary::create_with(&dir, "out", || Ok("00000000000000aa".into()));
        assert_eq!(
            r.err().map(|e| e.kind()),
            Some(io::ErrorKind::AlreadyExists)
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        // The next name is free: that one is used, and removed on drop.
        let mut n = 0u8;
        let t = Temporary::create_with(&dir, "out", || {
            n += 1;
            Ok(format!("00000000000000{:02x}", 0xa9 + n))
        })
        .unwrap();
        assert!(t.path.ends_with(format!(
            ".out.{}.00000000000000ab.vssa-tmp",
            std::process::id()
        )));
        drop(t);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(std::fs::symlink_metadata(&planted).unwrap().is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_on_the_next_save() {
        let dir = scratch("stale");
        // A process that has exited: its pid is free (until reused, which
        // would only keep its temporary one more save).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.join(format!(".out.{dead}.0123456789abcdef.vssa-tmp"));
        std::fs::write(&stale, b"half").unwrap();
        let mine = dir.join(format!(
            ".out.{}.0123456789abcdef.vssa-tmp",
            std::process::id()
        ));
        std::fs::write(&mine, b"being written").unwrap();
        let other = dir.join(format!(".other.{dead}.0123456789abcdef.vssa-tmp"));
        std::fs::write(&other, b"not ours").unwrap();
        write_atomic(&dir.join("out"), b"new").unwrap();
        let left = names(&dir);
        assert!(!left.contains(&stale.file_name().unwrap().to_string_lossy().into_owned()));
        assert!(left.contains(&mine.file_name().unwrap().to_string_lossy().into_owned()));
        assert!(left.contains(&other.file_name().unwrap().to_string_lossy().into_owned()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_are_bounded() {
        let dir = scratch("bounded");
        let p = dir.join("f");
        std::fs::write(&p, vec![b'x'; 100]).unwrap();
        assert_eq!(
            read_bounded(&p, 100, ReadFrom::RegularFile).unwrap().len(),
            100
        );
        let e = read_bounded(&p, 99, ReadFrom::RegularFile).unwrap_err();
        assert!(e.to_string().contains("larger than 99 bytes"), "{e}");
        let e = read_bounded(&dir, 99, ReadFrom::AnyFile).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        // An endless device: refused as a regular file, cut off otherwise.
        let zero = Path::new("/dev/zero");
        if zero.exists() {
            let e = read_bounded(zero, 1 << 16, ReadFrom::RegularFile).unwrap_err();
            assert!(e.to_string().contains("character device"), "{e}");
            let e = read_bounded(zero, 1 << 16, ReadFrom::AnyFile).unwrap_err();
            assert!(e.to_string().contains("larger than"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
