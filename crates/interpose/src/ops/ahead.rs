//! Opening ahead: the small files of a directory, opened and read for the
//! file cache in one round trip, for a process that reads them one by one.
//!
//! `cat` of a `find`'s output, `xargs cat`, python walking a tree, rsync
//! sending one: each opens, reads and closes one small file after another,
//! in the order the directory lists them (name order), and in a fresh
//! process each open is a cache miss and a round trip (~4 µs more a file
//! than tmpfs). Once [`STREAK`] plain read-only opens in a row under one
//! directory missed the cache, the last of them asks the daemon to open
//! its file and the ones that follow it ([`OpenAhead`]: read-only handles
//! with the files' bytes, under one stamp), which `filecache` keeps: the
//! following opens, reads and closes of those files need no round trip.
//! The window grows from [`FIRST_WINDOW`] each time the process reads past
//! it, like the kernel's readahead, and a process seen reading the files
//! of [`WALK`] directories so opens ahead at its first miss in the next; a
//! window left mostly unread (files read in another order) starts it over,
//! and two in a row stop it for that directory ([`KEPT`]).
//!
//! A file opened ahead is what an open of it would give the process right
//! then: the daemon opens it with the process's credentials (no read
//! permission, not opened), only while a read of it would not update its
//! atime, after the kernel gave back its pages of it, as for a read (see
//! [`OpenAhead`]), and the cache answers an open by its path only while no
//! change since the stamp touched the name or the file (`filecache::open`).
//! A process that opens one file of a directory pays nothing for this.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use proto::ops::{OpenAhead, OpenAheadOut};
use proto::{AheadRecord, WireAttr};

use crate::{channel, filecache, metacache};

use super::siblings::key_hash;
use super::Target;

/// Directories followed at once (by the hash of their key).
const SLOTS: usize = 64;
/// Misses in a row under one directory that start opening ahead: the last
/// of them is the first file opened ahead.
const STREAK: u64 = 2;
/// Files the first open ahead in a directory asks for (the file being
/// opened included); each next one asks for [`GROWTH`] times as many, up
/// to [`LAST_WINDOW`] (the daemon's own bound).
const FIRST_WINDOW: u64 = 16;
const GROWTH: u64 = 8;
const LAST_WINDOW: u64 = 256;
/// Directories opened ahead in after which the process is taken to walk a
/// tree reading its files: the first miss under another directory then
/// opens ahead at once, with [`WALK_WINDOW`].
const WALK: u64 = 2;
const WALK_WINDOW: u64 = 128;
/// Directories this process opened ahead in (saturating at [`WALK`]).
#[link_section = ".data.btfuse_hot"]
static WALKED: AtomicU64 = AtomicU64::new(0);

/// The directory a slot follows (its key's hash; 0: none).
static DIR: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Its misses still to come before the next open ahead, and that one's
/// window (`due | window << 32`), or [`OFF`].
static STATE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// The state of a directory whose open ahead kept nothing (its files are
/// not for the cache: large, or their reads update their atimes), or whose
/// files opened ahead went unread (the process does not read them in name
/// order): not opened ahead again.
const OFF: u64 = u64::MAX;
/// Per slot: the files its last open ahead kept, and `filecache::ahead_used`
/// then. If fewer than one in [`MOST_UNUSED`] of them was opened before
/// the next miss, the process reads the directory in another order (or
/// only a few files of it) or a change voided what it kept: the window
/// starts over; twice in a row, and the directory is not opened ahead
/// again (opening ahead would only cost the process).
static KEPT: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static USED_AT: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Per slot: whether its last open ahead went unread so.
static UNREAD: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
const MOST_UNUSED: u64 = 4;

/// Called when a plain read-only open of `t` missed the file cache:
/// opens `t`'s file and the ones after it in its directory into the cache
/// if the process reads that directory's files one by one. Whether it kept
/// `t`'s (the caller then looks in the cache again). Races between threads
/// only cost an open ahead more or less: every kept file is stamped.
pub(crate) fn on_miss(t: &Target) -> bool {
    let rel = t.rel();
    let (dir, name) = crate::path::split_last(rel);
    let h = key_hash(t.mount, t.base, dir);
    // Above the bit `key_hash` always sets.
    let i = (h >> 1) as usize % SLOTS;
    // Relaxed: hints, see above.
    let state = match DIR[i].load(Ordering::Relaxed) == h {
        true => STATE[i].load(Ordering::Relaxed),
        false => {
            DIR[i].store(h, Ordering::Relaxed);
            KEPT[i].store(0, Ordering::Relaxed);
            UNREAD[i].store(false, Ordering::Relaxed);
            match WALKED.load(Ordering::Relaxed) >= WALK {
                true => WALK_WINDOW << 32,
                false => (STREAK - 1) | (FIRST_WINDOW << 32),
            }
        }
    };
    if state == OFF {
        return false;
    }
    let (due, mut window) = (state & 0xffff_ffff, state >> 32);
    if due > 0 {
        STATE[i].store((due - 1) | window << 32, Ordering::Relaxed);
        return false;
    }
    let kept = KEPT[i].load(Ordering::Relaxed);
    let used = filecache::ahead_used() - USED_AT[i].load(Ordering::Relaxed);
    let unread = used.saturating_mul(MOST_UNUSED) < kept;
    if unread && UNREAD[i].swap(true, Ordering::Relaxed) {
        STATE[i].store(OFF, Ordering::Relaxed);
        return false;
    }
    if unread {
        window = FIRST_WINDOW;
    } else {
        UNREAD[i].store(false, Ordering::Relaxed);
    }
    let ahead = open_ahead(t, dir, name, window);
    KEPT[i].store(ahead.kept as u64, Ordering::Relaxed);
    USED_AT[i].store(filecache::ahead_used(), Ordering::Relaxed);
    // The files it looked at but skipped miss as this one did; the miss
    // after those is past what was opened ahead, and opens ahead at once,
    // further.
    let next = match ahead.kept {
        0 => OFF,
        _ => ahead.skipped | (window * GROWTH).min(LAST_WINDOW) << 32,
    };
    if ahead.kept > 0 && WALKED.load(Ordering::Relaxed) < WALK {
        WALKED.fetch_add(1, Ordering::Relaxed);
    }
    STATE[i].store(next, Ordering::Relaxed);
    ahead.has_name
}

/// What an open ahead did.
struct Ahead {
    /// Files kept in the cache.
    kept: usize,
    /// Whether the file named was one of them.
    has_name: bool,
    /// Entries after that name that it looked at and skipped.
    skipped: u64,
}

/// Asks the daemon to open `t`'s file (`name` in directory `dir`, `t`'s
/// path up to its last slash) and up to `window - 1` after it, and keeps
/// them in the file cache.
fn open_ahead(t: &Target, dir: &[u8], name: &[u8], window: u64) -> Ahead {
    let mut ahead = Ahead {
        kept: 0,
        has_name: false,
        skipped: 0,
    };
    let Ok(mut ch) = channel::acquire(t.mount) else {
        return ahead;
    };
    let req = OpenAhead {
        base: t.base,
        max: window as u32,
        _pad: 0,
    };
    let mut reply = [0u8; channel::REPLY_BUF];
    let Ok((out, _)) = ch.call::<OpenAhead>(&req, t.rel(), b"", &mut reply) else {
        return ahead;
    };
    let OpenAheadOut {
        count,
        scanned,
        bytes,
        stamp,
        dir: dir_ino,
    } = out;
    let mut unkept = Unkept::new();
    let mut path = [0u8; metacache::KEY_MAX];
    let prefix = match dir.len() {
        0 => 0,
        n => n + 1,
    };
    for r in records(ch.bulk_reply(bytes)).take(count as usize) {
        // The path the process will open it by: `dir/name`.
        let named = (prefix + r.name.len() <= path.len()).then(|| {
            if prefix > 0 {
                path[..dir.len()].copy_from_slice(dir);
                path[dir.len()] = b'/';
            }
            path[prefix..prefix + r.name.len()].copy_from_slice(r.name);
            filecache::Named {
                base: t.base,
                path: &path[..prefix + r.name.len()],
                dir: dir_ino,
            }
        });
        let (ok, displaced) = match named {
            Some(n) => filecache::keep_ahead(t.mount, r.fh, &r.attr, stamp, &n, r.data),
            None => (false, None),
        };
        if ok {
            ahead.kept += 1;
            ahead.has_name |= r.name == name;
        } else {
            unkept.push(r.fh);
        }
        if let Some(old) = displaced {
            unkept.push(old);
        }
    }
    for &fh in unkept.handles() {
        let _ = ch.post(&proto::ops::Release { fh });
    }
    // The named file is the first entry looked at.
    ahead.skipped = (scanned - count.min(scanned)).saturating_sub(u64::from(!ahead.has_name));
    ahead
}

/// One file of an `OpenAhead` reply.
struct Record<'a> {
    fh: u64,
    attr: WireAttr,
    name: &'a [u8],
    data: &'a [u8],
}

/// The whole records of an `OpenAhead` reply's bulk bytes, in order.
fn records(bytes: &[u8]) -> impl Iterator<Item = Record<'_>> {
    let (hl, al) = (size_of::<AheadRecord>(), size_of::<WireAttr>());
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let header = proto::decode::<AheadRecord>(bytes.get(at..)?)?;
        let (nl, dl) = (usize::from(header.name_len), usize::from(header.data_len));
        let record = bytes.get(at..at + AheadRecord::record_len(nl, dl))?;
        at += record.len();
        Some(Record {
            fh: header.fh,
            attr: proto::decode::<WireAttr>(&record[hl..])?,
            name: &record[hl + al..hl + al + nl],
            data: &record[hl + al + nl..hl + al + nl + dl],
        })
    })
}

/// Handles of a reply to give back (at most one per file opened, and one
/// each that the kept ones displaced).
struct Unkept {
    fhs: [u64; 2 * LAST_WINDOW as usize],
    n: usize,
}

impl Unkept {
    fn new() -> Unkept {
        Unkept {
            fhs: [0; 2 * LAST_WINDOW as usize],
            n: 0,
        }
    }

    fn push(&mut self, fh: u64) {
        if let Some(slot) = self.fhs.get_mut(self.n) {
            *slot = fh;
            self.n += 1;
        }
    }

    fn handles(&self) -> &[u64] {
        &self.fhs[..self.n]
    }
}
