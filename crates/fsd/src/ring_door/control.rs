//! The control requests on the ring door's socket: `btfuse stats` and
//! `btfuse save` (a [`Hello`] with [`STATS_MAGIC`] instead of a channel),
//! both the daemon's side and the command's.

use std::ffi::OsStr;
use std::io;
use std::mem::size_of;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use proto::{bytes_of, Hello, STATS_MAGIC};

use crate::sock;

use super::{Shared, HANDSHAKE_TIMEOUT};

/// Output format of a statistics query.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StatsFormat {
    /// The human report.
    Text,
    /// One JSON object.
    Json,
}

/// A statistics query is a [`Hello`] with [`STATS_MAGIC`], optionally
/// followed by one little-endian `u32` format (0 = text, 1 = JSON); the
/// bare 8-byte form asks for text. The answer is one message of UTF-8.
pub(super) fn stats_request(msg: &[u8], hello: &Hello) -> Option<StatsFormat> {
    if hello.magic != STATS_MAGIC || hello.version != proto::VERSION {
        return None;
    }
    match &msg[size_of::<Hello>().min(msg.len())..] {
        [] | [0, 0, 0, 0] => Some(StatsFormat::Text),
        [1, 0, 0, 0] => Some(StatsFormat::Json),
        _ => None,
    }
}

/// A save request is a [`Hello`] with [`STATS_MAGIC`], the little-endian
/// `u32` 2, and the absolute path of the image to write.
pub(super) fn save_request<'a>(msg: &'a [u8], hello: &Hello) -> Option<&'a Path> {
    if hello.magic != STATS_MAGIC || hello.version != proto::VERSION {
        return None;
    }
    match &msg[size_of::<Hello>().min(msg.len())..] {
        [2, 0, 0, 0, path @ ..] if path.first() == Some(&b'/') => {
            Some(Path::new(OsStr::from_bytes(path)))
        }
        _ => None,
    }
}

/// Runs a `btfuse save`: progress messages (`progress LINE`) about every
/// 500 ms, then `ok SUMMARY` or `error MESSAGE`. Only root may ask: the
/// image holds every file whatever its permissions, and the daemon writes
/// it as root.
pub(super) fn serve_save(shared: &Shared, conn: &OwnedFd, uid: u32, path: &Path) {
    let answer = if uid != 0 {
        "error only root may save an image".to_string()
    } else {
        let mut last = Instant::now();
        let mut tick = || {
            if last.elapsed() >= Duration::from_millis(500) {
                last = Instant::now();
                if let Some(line) = crate::image::PROGRESS.line() {
                    let _ = sock::send(conn, format!("progress {line}").as_bytes());
                }
            }
        };
        match crate::image::save(&shared.store, path, &mut tick) {
            Ok(s) => format!(
                "ok saved {} inodes, {} data bytes, {} image bytes to {} (fsync {:.3} s)",
                s.nodes,
                s.data_bytes,
                s.image_bytes,
                path.display(),
                s.fsync.as_secs_f64()
            ),
            Err(e) => format!("error cannot save {}: {e}", path.display()),
        }
    };
    let _ = sock::send(conn, answer.as_bytes());
}

/// Asks the daemon listening on `socket` to save an image at `path`
/// (absolute); `progress` gets each progress line. Returns the summary.
pub fn request_save(
    socket: &Path,
    path: &Path,
    progress: &mut dyn FnMut(&str),
) -> io::Result<String> {
    let conn = sock::connect(socket)?;
    // Progress comes at least every second while the save runs; the cut
    // itself is short.
    sock::set_timeouts(&conn, Duration::from_secs(120))?;
    let hello = Hello {
        magic: STATS_MAGIC,
        version: proto::VERSION,
        image: 0,
    };
    let mut msg = bytes_of(&hello).to_vec();
    msg.extend_from_slice(&2u32.to_le_bytes());
    msg.extend_from_slice(path.as_os_str().as_bytes());
    sock::send(&conn, &msg)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = sock::recv(&conn, &mut buf)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some(line) = text.strip_prefix("progress ") {
            progress(line);
        } else if let Some(summary) = text.strip_prefix("ok ") {
            return Ok(summary.to_string());
        } else if let Some(e) = text.strip_prefix("error ") {
            return Err(io::Error::other(e.to_string()));
        } else {
            return Err(io::Error::other("the daemon closed the connection"));
        }
    }
}

/// Asks the daemon listening on `socket` for its statistics.
pub fn query_stats(socket: &Path, format: StatsFormat) -> io::Result<String> {
    let conn = sock::connect(socket)?;
    sock::set_timeouts(&conn, HANDSHAKE_TIMEOUT)?;
    let hello = Hello {
        magic: STATS_MAGIC,
        version: proto::VERSION,
        image: 0,
    };
    let mut msg = bytes_of(&hello).to_vec();
    if format == StatsFormat::Json {
        msg.extend_from_slice(&1u32.to_le_bytes());
    }
    sock::send(&conn, &msg)?;
    let mut buf = vec![0u8; 256 << 10];
    let n = sock::recv(&conn, &mut buf)?;
    buf.truncate(n);
    String::from_utf8(buf).map_err(io::Error::other)
}
