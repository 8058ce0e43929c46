//! End-to-end: what `vssa run --patch-log PATH` and `vssa log show PATH` do
//! with paths that are not patch logs — device nodes, the program's own
//! file, other files, links, directories, read-only logs, endless files —
//! and with links planted under the names of its temporary files. Every
//! case must warn, leave the path alone and still run the program right.

mod common;

use common::scratch;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A program the optimizer rewrites (so its log has patches).
/// Where the spawned runs keep their seal key: never the user's.
fn key_dir() -> PathBuf {
    scratch::root().join("key")
}

const PROG: &[u8] = b"++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.\n";
const PROG_OUT: &[u8] = b"Hello";
/// Another program: its run finds a log of `PROG` stale and saves anew.
const OTHER: &[u8] = b"++++++[>++++++++<-]>.+.\n";
const OTHER_OUT: &[u8] = b"01";

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

fn vssa(args: &[&Path]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(args)
        .env("VSSA_CACHE_DIR", key_dir())
        .stdin(Stdio::null())
        .output()
        .expect("spawn vssa");
    Run {
        code: out.status.code().expect("vssa died of a signal"),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `vssa run --engine jit --patch-log LOG PROG`.
fn run_with_log(prog: &Path, log: &Path) -> Run {
    vssa(&[
        Path::new("run"),
        Path::new("--engine"),
        Path::new("jit"),
        Path::new("--patch-log"),
        log,
        prog,
    ])
}

/// A fresh scratch folder holding `p.b` (PROG) and `q.b` (OTHER).
fn scratch(name: &str) -> PathBuf {
    let d = scratch::fresh(&format!("log-files-{name}"));
    std::fs::write(d.join("p.b"), PROG).unwrap();
    std::fs::write(d.join("q.b"), OTHER).unwrap();
    d
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The run printed the right output, exited 0, and warned with `warning`.
fn assert_ran_and_warned(r: &Run, out: &[u8], warning: &str) {
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, out, "{}", r.stderr);
    assert!(
        r.stderr.contains("vssa: warning:") && r.stderr.contains(warning),
        "expected a warning with {warning:?}, got: {}",
        r.stderr
    );
}

fn is_root() -> bool {
    // The owner of a file this process just created.
    use std::os::unix::fs::MetadataExt;
    let d = scratch("whoami");
    let uid = std::fs::metadata(&d).unwrap().uid();
    std::fs::remove_dir_all(&d).unwrap();
    uid == 0
}

#[test]
fn a_device_node_is_never_replaced() {
    if !is_root() {
        eprintln!("skipped: creating a device node needs root");
        return;
    }
    let d = scratch("device");
    // Our own copy of /dev/null (char 1:3), never the system's.
    let null = d.join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !made {
        eprintln!("skipped: mknod failed (no mknod, or no device nodes here)");
        return;
    }
    let r = run_with_log(&d.join("p.b"), &null);
    assert_ran_and_warned(&r, PROG_OUT, "not a regular file (a character device)");
    assert!(std::fs::symlink_metadata(&null)
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(names(&d), ["null", "p.b", "q.b"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_programs_own_file_and_other_files_are_never_replaced() {
    let d = scratch("own");
    let p = d.join("p.b");
    let r = run_with_log(&p, &p);
    assert_ran_and_warned(&r, PROG_OUT, "the patch log is the program itself");
    assert_eq!(std::fs::read(&p).unwrap(), PROG);
    // Through another name (a hard link) too.
    let alias = d.join("alias.b");
    std::fs::hard_link(&p, &alias).unwrap();
    let r = run_with_log(&p, &alias);
    assert_ran_and_warned(&r, PROG_OUT, "the patch log is the program itself");
    // Another program's source, and any other file: not a log.
    let r = run_with_log(&p, &d.join("q.b"));
    assert_ran_and_warned(&r, PROG_OUT, "not a vssa patch log: left it alone");
    assert_eq!(std::fs::read(d.join("q.b")).unwrap(), OTHER);
    assert_eq!(std::fs::read(&p).unwrap(), PROG);
    assert_eq!(names(&d), ["alias.b", "p.b", "q.b"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn links_and_directories_are_warnings_and_left_alone() {
    let d = scratch("links");
    // A link to a valid log: read (harmless), never replaced.
    let real = d.join("real.log");
    assert_eq!(run_with_log(&d.join("p.b"), &real).code, 0);
    let before = std::fs::read(&real).unwrap();
    let link = d.join("link.log");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let r = run_with_log(&d.join("q.b"), &link);
    assert_ran_and_warned(&r, OTHER_OUT, "not a regular file (a symbolic link)");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), before);
    // A dangling link: not created through.
    let dangling = d.join("dangling.log");
    std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
    let r = run_with_log(&d.join("q.b"), &dangling);
    assert_ran_and_warned(&r, OTHER_OUT, "a symbolic link");
    assert!(!d.join("nowhere").exists());
    // A directory.
    let dir = d.join("dir.log");
    std::fs::create_dir(&dir).unwrap();
    let r = run_with_log(&d.join("q.b"), &dir);
    assert_ran_and_warned(&r, OTHER_OUT, "not a regular file (a directory)");
    assert!(names(&dir).is_empty());
    assert_eq!(
        names(&d),
        [
            "dangling.log",
            "dir.log",
            "link.log",
            "p.b",
            "q.b",
            "real.log",
            // The code cache of the one real log (none beside the others).
            "real.log.code"
        ]
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_read_only_log_is_left_alone() {
    let d = scratch("readonly");
    let log = d.join("p.log");
    assert_eq!(run_with_log(&d.join("p.b"), &log).code, 0);
    let before = std::fs::read(&log).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o444)).unwrap();
    // It still replays...
    let r = run_with_log(&d.join("p.b"), &log);
    assert_eq!((r.code, r.stdout.as_slice()), (0, PROG_OUT), "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // ...and a run that would rewrite it warns and leaves it as it was.
    let r = run_with_log(&d.join("q.b"), &log);
    assert_ran_and_warned(&r, OTHER_OUT, "read-only: left it alone");
    assert_eq!(std::fs::read(&log).unwrap(), before);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    // (The code cache is the first run's, from before the log was pinned.)
    assert_eq!(names(&d), ["p.b", "p.log", "p.log.code", "q.b"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_writable_log_keeps_its_mode() {
    let d = scratch("mode");
    let log = d.join("p.log");
    assert_eq!(run_with_log(&d.join("p.b"), &log).code, 0);
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run_with_log(&d.join("q.b"), &log);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let show = vssa(&[Path::new("log"), Path::new("show"), &log]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_link_planted_under_a_temporary_name_is_removed_not_followed() {
    let d = scratch("planted");
    let victim = d.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    // Temporary names of a writer that is gone (a pid of an exited child)
    // and of this process (alive: a live writer's file is left alone).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let planted = d.join(format!(".p.log.{dead}.00000000deadbeef.vssa-tmp"));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let live = d.join(format!(
        ".p.log.{}.00000000deadbeef.vssa-tmp",
        std::process::id()
    ));
    std::os::unix::fs::symlink(&victim, &live).unwrap();
    let r = run_with_log(&d.join("p.b"), &d.join("p.log"));
    assert_eq!((r.code, r.stdout.as_slice()), (0, PROG_OUT), "{}", r.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(&planted).is_err(),
        "stale link kept"
    );
    assert!(std::fs::symlink_metadata(&live).unwrap().is_symlink());
    let show = vssa(&[Path::new("log"), Path::new("show"), &d.join("p.log")]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A writer that feeds the FIFO at `path` zeros for ever (it dies of
/// SIGPIPE when its reader goes, or is killed on drop).
struct Feeder(std::process::Child);

impl Feeder {
    fn new(path: &Path) -> Feeder {
        let child = Command::new("sh")
            .arg("-c")
            .arg("exec cat /dev/zero > \"$1\"")
            .arg("sh")
            .arg(path)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        Feeder(child)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn endless_files_fail_quickly_with_a_clear_error() {
    let d = scratch("endless");
    let fifo = d.join("fifo.log");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo failed");
        return;
    }
    // `--patch-log`: not a regular file, refused without reading.
    let feeder = Feeder::new(&fifo);
    let r = run_with_log(&d.join("p.b"), &fifo);
    assert_ran_and_warned(&r, PROG_OUT, "not a regular file (a FIFO)");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    drop(feeder);
    // `log show`: reads a pipe, but only up to the bound.
    let feeder = Feeder::new(&fifo);
    let r = vssa(&[Path::new("log"), Path::new("show"), &fifo]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("larger than 67108864 bytes"),
        "{}",
        r.stderr
    );
    drop(feeder);
    // A regular file of 1 GiB (sparse): refused by its size, unread.
    let huge = d.join("huge.log");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let r = run_with_log(&d.join("p.b"), &huge);
    assert_ran_and_warned(&r, PROG_OUT, "larger than 67108864 bytes");
    assert_eq!(std::fs::metadata(&huge).unwrap().len(), 1 << 30);
    // /dev/zero, only ever read here.
    let r = vssa(&[Path::new("log"), Path::new("show"), Path::new("/dev/zero")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("larger than 67108864 bytes"),
        "{}",
        r.stderr
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Starts a run that pauses in the middle of writing its temporary
/// (`VSSA_SAVE_PAUSE_MS`), waits until that temporary exists, and returns
/// the process.
fn start_slow_save(d: &Path, log: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vssa"))
        .args(["run", "--engine", "jit", "--patch-log"])
        .arg(log)
        .arg(d.join("p.b"))
        .env("VSSA_CACHE_DIR", key_dir())
        .env("VSSA_SAVE_PAUSE_MS", "10000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vssa");
    // Polls (no time is measured): the temporary appears once the run
    // reaches its save.
    for _ in 0..6000 {
        if temporaries(d) > 0 {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the save never started");
}

fn temporaries(d: &Path) -> usize {
    names(d).iter().filter(|n| n.ends_with(".vssa-tmp")).count()
}

#[test]
fn temporaries_are_removed_on_sigint_and_sigterm() {
    use std::os::unix::process::ExitStatusExt;
    for (sig, number) in [("INT", 2), ("TERM", 15)] {
        let d = scratch(&format!("signal-{sig}"));
        let log = d.join("p.log");
        let mut child = start_slow_save(&d, &log);
        let sent = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(number), "{status:?}");
        assert_eq!(temporaries(&d), 0, "{:?}", names(&d));
        assert!(!log.exists(), "a log appeared although the save was cut");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn a_killed_save_leaves_a_temporary_the_next_save_removes() {
    let d = scratch("sigkill");
    let log = d.join("p.log");
    let mut child = start_slow_save(&d, &log);
    child.kill().unwrap(); // SIGKILL: nothing can clean up.
    child.wait().unwrap();
    assert_eq!(temporaries(&d), 1, "{:?}", names(&d));
    assert!(!log.exists());
    let r = run_with_log(&d.join("p.b"), &log);
    assert_eq!((r.code, r.stdout.as_slice()), (0, PROG_OUT), "{}", r.stderr);
    assert_eq!(names(&d), ["p.b", "p.log", "p.log.code", "q.b"]);
    std::fs::remove_dir_all(&d).unwrap();
}
