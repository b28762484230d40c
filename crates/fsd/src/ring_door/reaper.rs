//! Closing the descriptors clients pass, off the serving threads.

use std::io;
use std::os::fd::OwnedFd;

/// Closes the descriptors clients pass with their hello, on a thread of
/// its own: closing a hostile one can block without limit (a socket set to
/// linger behind a full peer window, a file of a FUSE mount whose daemon
/// never answers FLUSH), which must not hold a serving thread. If the
/// reaper itself is stuck and its queue full, further descriptors are
/// leaked instead (bounded by the fd limit; each is counted in the log).
pub(super) struct Reaper {
    queue: std::sync::mpsc::SyncSender<OwnedFd>,
}

/// Descriptors queued for the reaper before fds are leaked instead.
const REAPER_QUEUE: usize = 1024;

impl Reaper {
    pub(super) fn start() -> io::Result<Reaper> {
        let (queue, rx) = std::sync::mpsc::sync_channel::<OwnedFd>(REAPER_QUEUE);
        std::thread::Builder::new()
            .name("btfuse-reaper".into())
            .spawn(move || rx.into_iter().for_each(drop))?;
        Ok(Reaper { queue })
    }

    fn dispose(&self, fds: impl IntoIterator<Item = OwnedFd>) {
        for fd in fds {
            match self.queue.try_send(fd) {
                Ok(()) => {}
                Err(std::sync::mpsc::TrySendError::Full(fd))
                | Err(std::sync::mpsc::TrySendError::Disconnected(fd)) => {
                    log::warn!("a client's descriptor is left open: the reaper is stuck");
                    std::mem::forget(fd);
                }
            }
        }
    }
}

/// Descriptors received with a hello, handed to the reaper on drop.
pub(super) struct Passed<'a> {
    pub(super) reaper: &'a Reaper,
    pub(super) fds: Vec<OwnedFd>,
}

impl Drop for Passed<'_> {
    fn drop(&mut self) {
        self.reaper.dispose(self.fds.drain(..));
    }
}
