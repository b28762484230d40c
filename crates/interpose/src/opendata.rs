//! The bytes of a small file that its open's reply brought
//! (`proto::ops::OpenOut::data_stamp`): the reads that follow on that open
//! file are copies, with no round trip, while no change since touched the
//! file (its bytes and attributes: see `metacache::Now::holds_for_long`)
//! and its atime is younger than a day (relatime: the daemon sends bytes
//! only when a read would not update the atime, and a read that would must
//! reach it). `cat`, a compiler reading its headers and `python`'s
//! `open().read()` open, read and close: one round trip instead of two.
//!
//! An open file is known by its handle, inode and fork epoch (a child's
//! reads of its parent's handles are not served here). A file opened again
//! by the same process is `filecache`'s business.
//!
//! Memory: [`SLOTS`] slots of [`DATA_MAX`] bytes in the library's `.bss`,
//! taken in turn (a newer open takes the oldest slot; an open file whose
//! bytes went asks the daemon), each faulted in at its first use and reused
//! after, so a process reading many files once touches no new page. A slot
//! has a lock; a caller that finds it busy asks the daemon (a read) or keeps
//! nothing (an open).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::metacache::Now;
use crate::trylock::{Guard, TryLock};

/// Slots.
const SLOTS: usize = 8;
/// Largest file whose bytes are kept (what an open's reply carries).
const DATA_MAX: usize = proto::ops::OPEN_DATA_MAX;
// Every file the public table holds fits (`ops::handoff`'s opens from it).
const _: () = assert!(DATA_MAX >= proto::public::DATA_MAX);
/// Seconds after which a read updates the atime (relatime).
const ATIME_DAY: i64 = 24 * 60 * 60;

/// An open file, as its bytes are kept under.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// The mount's index.
    pub(crate) mount: usize,
    /// The daemon's handle (never 0).
    pub(crate) fh: u64,
    /// The file's inode number.
    pub(crate) ino: u64,
    /// The fork epoch the handle belongs to.
    pub(crate) epoch: u32,
}

/// What a slot holds.
struct Held {
    key: Key,
    /// The change generation under which `data` holds.
    stamp: u64,
    atime: i64,
    len: usize,
    data: [u8; DATA_MAX],
}

/// Per slot, the handle whose bytes it holds (0: none): read without the
/// lock, in one line, to find the slot; the lock's holder checks the key.
#[link_section = ".data.btfuse_hot"]
static HANDLES: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

static TABLE: [TryLock<Held>; SLOTS] = [const {
    TryLock::new(Held {
        key: Key {
            mount: 0,
            fh: 0,
            ino: 0,
            epoch: 0,
        },
        stamp: 0,
        atime: 0,
        len: 0,
        data: [0; DATA_MAX],
    })
}; SLOTS];

/// The slot the next open takes.
#[link_section = ".data.btfuse_hot"]
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Slot `i`, held until dropped (`None` while another thread holds it).
struct Locked {
    i: usize,
    held: Guard<'static, Held>,
}

impl Locked {
    fn try_new(i: usize) -> Option<Locked> {
        TABLE[i].try_lock().map(|held| Locked { i, held })
    }

    fn held(&mut self) -> &mut Held {
        &mut self.held
    }

    /// Empties the slot.
    fn clear(&mut self) {
        HANDLES[self.i].store(0, Ordering::Relaxed);
        self.held.len = 0;
    }
}

/// Keeps `data`, the whole of the file `key` opened, as its open's reply
/// brought it under `stamp` with its atime `atime`.
pub(crate) fn keep(key: Key, stamp: u64, atime: i64, data: &[u8]) {
    // Checked before a slot is taken: taking one empties it.
    if !keepable(key, stamp, data.len()) {
        return;
    }
    if let Some(mut slot) = Reserved::take() {
        slot.bytes()[..data.len()].copy_from_slice(data);
        slot.keep(key, stamp, atime, data.len());
    }
}

/// Whether `len` bytes of the file `key` opened under `stamp` can be
/// kept: a daemon handle, a stamp, and bytes that fit.
fn keepable(key: Key, stamp: u64, len: usize) -> bool {
    key.fh != 0 && stamp != 0 && len != 0 && len <= DATA_MAX
}

/// The slot the next open takes, held (emptied) for bytes written into it
/// in place ([`Reserved::bytes`]) before their file is known
/// ([`Reserved::keep`]): the public table's bytes go there straight, with
/// no copy on the stack. Dropped without `keep`, it stays empty.
pub(crate) struct Reserved(Locked);

impl Reserved {
    /// The next slot, emptied; `None` while another thread holds it.
    pub(crate) fn take() -> Option<Reserved> {
        let i = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
        let mut slot = Locked::try_new(i)?;
        slot.clear();
        Some(Reserved(slot))
    }

    /// Room for the bytes.
    pub(crate) fn bytes(&mut self) -> &mut [u8; DATA_MAX] {
        &mut self.0.held().data
    }

    /// Keeps the first `len` bytes written as those of the file `key`
    /// opened, under `stamp` with its atime `atime` (as [`keep`]).
    pub(crate) fn keep(mut self, key: Key, stamp: u64, atime: i64, len: usize) {
        if !keepable(key, stamp, len) {
            return;
        }
        let h = self.0.held();
        h.key = key;
        h.stamp = stamp;
        h.atime = atime;
        h.len = len;
        HANDLES[self.0.i].store(key.fh, Ordering::Relaxed);
    }
}

/// Reads open file `key` from `off` through `copy` (given the kept bytes
/// from `off` on; it returns how many it took), if its bytes are kept and
/// still hold at `now()`, the mount's generation, and the wall clock
/// `secs()` (both asked only when bytes are kept); the count.
pub(crate) fn read(
    key: &Key,
    off: u64,
    now: impl FnOnce() -> Option<Now>,
    secs: impl FnOnce() -> i64,
    copy: impl FnOnce(&[u8]) -> usize,
) -> Option<usize> {
    let i = HANDLES
        .iter()
        .position(|h| h.load(Ordering::Relaxed) == key.fh)?;
    let mut slot = Locked::try_new(i)?;
    let h = slot.held();
    if h.key != *key || h.len == 0 || secs().saturating_sub(h.atime) >= ATIME_DAY {
        return None;
    }
    let Some(n) = now().filter(|n| n.holds_for_long(h.stamp, key.ino)) else {
        slot.clear();
        return None;
    };
    // The long check is paid once: later reads compare generations.
    h.stamp = n.gen;
    let from = usize::try_from(off).unwrap_or(usize::MAX).min(h.len);
    Some(copy(&h.data[from..h.len]))
}

/// Handle `fh` of `mount` is given back: its bytes go (the daemon may hand
/// the number out again).
pub(crate) fn forget(mount: usize, fh: u64) {
    for (i, h) in HANDLES.iter().enumerate() {
        if fh != 0 && h.load(Ordering::Relaxed) == fh {
            if let Some(mut slot) = Locked::try_new(i) {
                if slot.held().key.mount == mount {
                    slot.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::changes::{ChangeLog, Touched};

    /// The slots are the process's: one test at a time uses them.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn kept_bytes_are_read_until_the_file_changes_or_is_given_back() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let log: &'static ChangeLog = Box::leak(Box::new(ChangeLog::new()));
        let now = |g| Some(Now::new(g, Some(log)));
        let key = Key {
            mount: 1,
            fh: 9001,
            ino: 77,
            epoch: 3,
        };
        let read_at = |k: &Key, off, g, secs| read(k, off, || now(g), || secs, |b| b.len());
        keep(key, 10, 1_000, b"hello");
        assert_eq!(read_at(&key, 0, 10, 2_000), Some(5));
        assert_eq!(read_at(&key, 2, 10, 2_000), Some(3), "from offset 2");
        assert_eq!(read_at(&key, 9, 10, 2_000), Some(0), "past the end");
        assert_eq!(read_at(&key, 0, 10, 1_000 + ATIME_DAY), None, "atime due");
        let other = Key { epoch: 4, ..key };
        assert_eq!(read_at(&other, 0, 10, 2_000), None, "a forked child");
        let other = Key { ino: 78, ..key };
        assert_eq!(read_at(&other, 0, 10, 2_000), None, "another file");
        log.record(11, Touched::Inodes(&[5]));
        assert_eq!(
            read_at(&key, 0, 11, 2_000),
            Some(5),
            "another inode changed"
        );
        log.record(12, Touched::Inodes(&[77]));
        assert_eq!(read_at(&key, 0, 12, 2_000), None, "it changed");
        assert_eq!(read_at(&key, 0, 11, 2_000), None, "and its bytes went");
        keep(key, 12, 1_000, b"world");
        forget(2, key.fh);
        assert_eq!(
            read_at(&key, 0, 12, 2_000),
            Some(5),
            "another mount's handle"
        );
        forget(1, key.fh);
        assert_eq!(read_at(&key, 0, 12, 2_000), None, "given back");
        keep(key, 0, 1_000, b"x");
        assert_eq!(read_at(&key, 0, 12, 2_000), None, "no stamp, nothing kept");
    }

    #[test]
    fn bytes_written_in_place_are_kept_only_with_their_file() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let log: &'static ChangeLog = Box::leak(Box::new(ChangeLog::new()));
        let now = || Some(Now::new(20, Some(log)));
        let key = Key {
            mount: 3,
            fh: 4242,
            ino: 99,
            epoch: 1,
        };
        let mut slot = Reserved::take().expect("a free slot");
        slot.bytes()[..5].copy_from_slice(b"table");
        slot.keep(key, 20, 1_000, 5);
        let mut got = Vec::new();
        let n = read(
            &key,
            0,
            now,
            || 2_000,
            |b| {
                got = b.to_vec();
                b.len()
            },
        );
        assert_eq!((n, &got[..]), (Some(5), &b"table"[..]));
        // A reservation dropped without its file keeps nothing, and the
        // bytes written into it are nobody's.
        for _ in 0..SLOTS {
            let mut slot = Reserved::take().expect("a free slot");
            slot.bytes()[..3].copy_from_slice(b"xyz");
        }
        let other = Key { fh: 4243, ..key };
        assert_eq!(
            read(&other, 0, now, || 2_000, |b| b.len()),
            None,
            "nothing kept for a file never named"
        );
        assert_eq!(
            read(&key, 0, now, || 2_000, |b| b.len()),
            None,
            "its slot was taken (and emptied) since"
        );
    }
}
