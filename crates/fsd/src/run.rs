//! `btfuse run -- CMD ARGS...`: run a program with the fast path preloaded.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// File name of the preload library, installed next to the `btfuse` binary.
pub const LIBRARY: &str = "libbtfuse.so";

/// Why `btfuse run` could not start the program.
#[derive(Debug)]
pub enum RunError {
    /// `libbtfuse.so` is not next to the binary.
    LibraryMissing(PathBuf),
    /// `exec` failed.
    Exec(OsString, io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::LibraryMissing(p) => {
                write!(
                    f,
                    "{} not found (build it with cargo build --release)",
                    p.display()
                )
            }
            RunError::Exec(cmd, e) => write!(f, "cannot run {}: {e}", cmd.to_string_lossy()),
        }
    }
}

impl std::error::Error for RunError {}

/// Absolute path of the preload library that belongs to this binary.
pub fn library_path() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name(LIBRARY))
}

/// `LD_PRELOAD` with `lib` first, keeping whatever was already preloaded.
fn preload_value(lib: &OsStr, existing: Option<OsString>) -> OsString {
    let mut value = lib.to_os_string();
    if let Some(old) = existing.filter(|o| !o.is_empty()) {
        value.push(" ");
        value.push(old);
    }
    value
}

/// Replaces this process with `cmd` (only returns on failure).
pub fn run(cmd: &[OsString]) -> RunError {
    let lib = match library_path() {
        Ok(lib) if lib.is_file() => lib,
        Ok(lib) => return RunError::LibraryMissing(lib),
        Err(e) => return RunError::Exec(cmd[0].clone(), e),
    };
    let preload = preload_value(lib.as_os_str(), std::env::var_os("LD_PRELOAD"));
    // The library looks in $BTFUSE_RUN_DIR or /run/btfuse: tell it where a
    // user's own daemons listen (`daemon::run_dir`).
    let err = Command::new(&cmd[0])
        .args(&cmd[1..])
        .env("LD_PRELOAD", preload)
        .env(proto::RUN_DIR_ENV, crate::daemon::run_dir())
        .exec();
    RunError::Exec(cmd[0].clone(), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_keeps_existing_libraries_after_ours() {
        let lib = OsStr::new("/x/libbtfuse.so");
        assert_eq!(preload_value(lib, None), "/x/libbtfuse.so");
        assert_eq!(preload_value(lib, Some("".into())), "/x/libbtfuse.so");
        assert_eq!(
            preload_value(lib, Some("/y/a.so".into())),
            "/x/libbtfuse.so /y/a.so"
        );
    }
}
