//! The patch-log file a run keeps (`JitConfig::patch_log`): loading it
//! (only when sealed by this user), warning about what did not replay,
//! saving it; and whether a code cache file may live beside it.

use crate::report::{CpuSpan, JitConfig, JitReport};
use std::time::Instant;
use vssa_patch::fsutil::ReadFrom;
use vssa_patch::{LogBook, SealKey, SealState};

/// Loads the patch-log file named by the configuration, if any; problems
/// become warnings (the program runs without the log). Empty otherwise.
///
/// Only a log sealed under this user's key is returned: a log that is not
/// (the text form, another user's or machine's, or edited) could say
/// anything its writer liked, and replay proves only that its nodes are
/// well formed, not that its rewrites are sound — so it is not replayed
/// at all, the optimizer runs instead, and the save replaces it with a
/// sealed log. See `docs/patch-log.md`, "Trust".
pub fn load_book<R>(cfg: &JitConfig<R>, report: &mut JitReport) -> LogBook {
    let Some(path) = cfg.patch_log.as_ref().filter(|_| cfg.optimize) else {
        return LogBook::new();
    };
    // Leftovers of writers killed during a save are removed by the next
    // save (`write_atomic_over`), not here: listing the folder on every
    // load cost a warm run as much as replaying a small program's log.
    let t = Instant::now();
    let cpu = CpuSpan::start();
    let key = SealKey::existing().unwrap_or_else(|e| {
        report.patch_log_warnings.push(format!("{e}"));
        None
    });
    let book = match LogBook::load_keyed(path, ReadFrom::RegularFile, key.as_ref()) {
        Ok(None) => LogBook::new(),
        Ok(Some((book, SealState::Verified))) => {
            report.patch_log_sealed = Some(true);
            book
        }
        Ok(Some((book, _))) => {
            report.patch_log_sealed = Some(false);
            if !book.is_empty() {
                report.patch_log_warnings.push(format!(
                    "{}: not sealed by this user (text form, written elsewhere, or edited): \
                     not replayed, optimizing instead",
                    path.display()
                ));
            }
            LogBook::new()
        }
        Err(e) => {
            report.patch_log_sealed = Some(false);
            report
                .patch_log_warnings
                .push(format!("{e} (running without the patch log)"));
            LogBook::new()
        }
    };
    report.replay += t.elapsed();
    report.replay_cpu += cpu.end();
    book
}

/// Warns about patches from the patch-log file that could not be replayed.
pub fn warn_replay<R>(cfg: &JitConfig<R>, report: &mut JitReport) {
    let Some(path) = &cfg.patch_log else {
        return;
    };
    if report.patches_stale + report.patches_conflicting > 0 {
        report.patch_log_warnings.push(format!(
            "{}: {} stale and {} conflicting patch(es) skipped",
            path.display(),
            report.patches_stale,
            report.patches_conflicting
        ));
    }
}

/// Saves `book` to the configured patch-log file (atomically).
pub fn save_book<R>(cfg: &JitConfig<R>, report: &mut JitReport, book: &LogBook) {
    let Some(path) = cfg.patch_log.as_ref().filter(|_| cfg.optimize) else {
        return;
    };
    let t = Instant::now();
    let key = SealKey::user()
        .map_err(|e| {
            report
                .patch_log_warnings
                .push(format!("cannot seal patch log {}: {e}", path.display()))
        })
        .ok();
    if let Err(e) = book.save(path, key.as_ref()) {
        report
            .patch_log_warnings
            .push(format!("cannot write patch log {}: {e}", path.display()));
    }
    report.patch_log_save += t.elapsed();
}

/// Whether the patch log at `path` may have a code cache beside it:
/// absent, or a regular writable file that is empty or a patch log.
/// Whatever the driver leaves alone as a log — a link, a directory, a
/// device, a read-only log, any other file — gets no code cache file next
/// to it either (`--patch-log /dev/null` must not make `/dev/null.code`).
pub(crate) fn may_keep_code_beside(path: &std::path::Path) -> bool {
    use std::io::Read;
    const MAGIC: &[u8] = b"vssa-patch-log ";
    match std::fs::symlink_metadata(path) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(m) if !m.file_type().is_file() || m.permissions().readonly() => false,
        Ok(_) => {
            let mut head = Vec::with_capacity(MAGIC.len());
            let read = std::fs::File::open(path)
                .and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut head));
            read.is_ok() && (head.starts_with(MAGIC) || MAGIC.starts_with(&head))
        }
    }
}
