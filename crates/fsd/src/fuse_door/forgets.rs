//! Files the kernel unlinked whose `FORGET` is on its way.
//!
//! The kernel opens files without asking this door (`FUSE_NO_OPEN`), so
//! the last link of a file it unlinks is only dropped by the store at the
//! kernel's `FORGET` (it may still have the file open). For a file nobody
//! has open, `unlink` queues that `FORGET` before it returns, but another
//! worker thread may answer the caller's next request first: a `statfs`
//! right after `rm` would still count the file's blocks, which tmpfs never
//! does. So `statfs` first waits, briefly, for the `FORGET`s of files
//! unlinked a moment ago, and so does a call that found no space before it
//! tries again; a file still unforgotten after [`GRACE`] is one the kernel
//! keeps open, and is not waited for again.

use std::time::{Duration, Instant};

use inode_store::Ino;
use parking_lot::{Condvar, Mutex};

/// How long after its unlink a file's `FORGET` is waited for: it usually
/// comes within microseconds, but on a loaded two-CPU machine (a test
/// suite running beside it) 5 ms were seen not to suffice.
const GRACE: Duration = Duration::from_millis(50);

/// Recently unlinked files, each with the time of its unlink.
#[derive(Default)]
pub(super) struct PendingForgets {
    recent: Mutex<Vec<(Ino, Instant)>>,
    forgotten: Condvar,
}

impl PendingForgets {
    /// The kernel unlinked the last link of `ino`.
    pub(super) fn unlinked(&self, ino: Ino) {
        let now = Instant::now();
        let mut recent = self.recent.lock();
        recent.retain(|&(_, at)| now < at + GRACE);
        recent.push((ino, now));
    }

    /// The kernel forgot `ino` (its last lookup reference is gone).
    pub(super) fn forgotten(&self, ino: Ino) {
        let mut recent = self.recent.lock();
        let before = recent.len();
        recent.retain(|&(i, _)| i != ino);
        if recent.len() != before {
            self.forgotten.notify_all();
        }
    }

    /// Waits until every file unlinked less than [`GRACE`] ago is forgotten
    /// or has had its grace (at most [`GRACE`]); at once when there is none.
    /// Whether there was any to wait for.
    pub(super) fn settle(&self) -> bool {
        let mut recent = self.recent.lock();
        let mut waited = false;
        loop {
            let now = Instant::now();
            recent.retain(|&(_, at)| now < at + GRACE);
            let Some(deadline) = recent.iter().map(|&(_, at)| at + GRACE).max() else {
                return waited;
            };
            waited = true;
            self.forgotten.wait_until(&mut recent, deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_returns_at_once_when_the_forget_came_and_after_the_grace_otherwise() {
        let p = PendingForgets::default();
        p.unlinked(7);
        p.forgotten(7);
        let t = Instant::now();
        assert!(!p.settle());
        assert!(t.elapsed() < GRACE, "nothing was pending");
        p.unlinked(8);
        let t = Instant::now();
        assert!(p.settle());
        assert!(t.elapsed() >= GRACE / 2, "a pending forget is waited for");
        let t = Instant::now();
        assert!(!p.settle());
        assert!(
            t.elapsed() < GRACE,
            "an unforgotten file is waited for once"
        );
    }
}
