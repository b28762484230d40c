//! Keeping the tree across restarts: `--from DIR` loads, `btfuse save`
//! images, `--image FILE` loads of them, `--save-on-exit`.
//!
//! * [`save`] takes a [`inode_store::Snapshot`] (a consistent cut; writers
//!   go on) and streams it into `FILE.tmp` in `FILE`'s directory through
//!   `io_uring`, then fsyncs, renames over `FILE` and fsyncs the directory:
//!   a good image is never replaced by a partial one.
//! * [`load`] reads an image with `io_uring` read-ahead, checks every
//!   checksum, length and count and builds a new store; only a store that
//!   passed everything is ever served.
//! * [`from_dir`] walks a directory tree and reads file data in parallel
//!   through `io_uring`.
//!
//! [`PROGRESS`] tells how far a long load or save is (the terminal line and
//! `btfuse stats`).

mod format;
mod from_dir;
mod load;
mod progress;
mod save;
mod uring;

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use from_dir::from_dir;
pub use load::load;
pub use progress::{show_on_terminal, Phase, PROGRESS};
pub use save::save;

/// Why an image (or a `--from` tree) could not be loaded or saved; one line.
#[derive(Debug)]
pub enum ImageError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The file does not start with the image magic.
    NotAnImage,
    /// An image of a format version this daemon does not read.
    Version(u32),
    /// The file ends before the image does.
    Truncated,
    /// A checksum does not match (at this byte offset of the file).
    Checksum(u64),
    /// The bytes are checksummed but do not make sense.
    Corrupt(&'static str),
    /// The tree the image describes is invalid or does not fit.
    Restore(inode_store::RestoreError),
    /// A `--from` source entry could not be read.
    Source(PathBuf, io::Error),
    /// Another save of this mount is running.
    Busy,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Io(e) => write!(f, "{e}"),
            ImageError::NotAnImage => write!(f, "not a btfuse image (bad magic)"),
            ImageError::Version(v) => write!(
                f,
                "image format version {v} is not supported (this btfuse reads version {})",
                format::VERSION
            ),
            ImageError::Truncated => write!(f, "image is truncated"),
            ImageError::Checksum(at) => {
                write!(f, "image is corrupt (checksum mismatch at byte {at})")
            }
            ImageError::Corrupt(what) => write!(f, "image is corrupt ({what})"),
            ImageError::Restore(e) => write!(f, "image is corrupt or too large: {e}"),
            ImageError::Source(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            ImageError::Busy => write!(f, "another save of this mount is running"),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<io::Error> for ImageError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ImageError::Truncated
        } else {
            ImageError::Io(e)
        }
    }
}

impl From<inode_store::RestoreError> for ImageError {
    fn from(e: inode_store::RestoreError) -> Self {
        ImageError::Restore(e)
    }
}

/// Buffers in flight per ring.
const DEPTH: usize = 8;
/// Bytes per read or write buffer.
const BUF_BYTES: usize = 2 << 20;
