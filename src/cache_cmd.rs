//! `vssa cache stats LOG` and `vssa cache clear LOG`: the code cache a run
//! with `--patch-log LOG` keeps beside its log, in `LOG.code` (see
//! `vssa_backend::stored`).

use std::path::PathBuf;
use vssa_backend::stored::{self, path_beside};
use vssa_bf::runtime::{self, JitConfig};
use vssa_patch::SealKey;

#[derive(clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(clap::Subcommand)]
enum CacheCommand {
    /// What the code cache beside patch log LOG holds: entries, bytes,
    /// how many are sealed by this user and usable by this build.
    Stats {
        /// The patch log (its code cache is LOG.code).
        log: PathBuf,
    },
    /// Remove the code cache beside patch log LOG (the log stays).
    Clear {
        /// The patch log (its code cache is LOG.code).
        log: PathBuf,
    },
}

pub fn run(args: CacheArgs) -> Result<(), String> {
    match args.command {
        CacheCommand::Stats { log } => {
            let path = path_beside(&log);
            let target = runtime::code_target(&JitConfig::default()).ok();
            let key = SealKey::existing().ok().flatten();
            let summary = stored::summarize(&path, target.as_ref(), key.as_ref())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let text = match summary {
                None => format!("{}: no code cache\n", path.display()),
                Some(s) => {
                    let mut t = format!(
                        "{}: {} entries ({} of them unit entries), {} bytes ({} of machine \
                         code); {} sealed by this user, {} for this build and machine\n",
                        path.display(),
                        s.entries,
                        s.units,
                        s.bytes,
                        s.code_bytes,
                        s.sealed,
                        s.for_target
                    );
                    if let Some(d) = s.damage {
                        t.push_str(&format!("{}: {d}\n", path.display()));
                    }
                    t
                }
            };
            print(&text)
        }
        CacheCommand::Clear { log } => {
            let path = path_beside(&log);
            let removed = stored::clear(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            print(&if removed {
                format!("{}: removed\n", path.display())
            } else {
                format!("{}: no code cache\n", path.display())
            })
        }
    }
}

/// Writes to stdout; a closed pipe is not an error.
fn print(text: &str) -> Result<(), String> {
    use std::io::Write;
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}
