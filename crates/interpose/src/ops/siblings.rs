//! Sibling prefetch: the attributes of a directory's entries, in one round
//! trip, for a process that stats them one by one.
//!
//! `git status` lstats every file of its index, `find -exec stat {} +` and
//! `xargs stat` every name they are given, `make` its prerequisites: names
//! of one directory after another, in name order. In a fresh process each
//! is a cache miss and a round trip. After [`STREAK`] misses in a row under
//! one directory (one, once [`WALK`] directories were listed so: a walk is
//! going on) the library lists that directory with attributes, once
//! (its first ~2 000 names: a cookie means something only to the handle
//! that gave it, so a listing cannot go on from where an earlier one
//! stopped), so the names that follow are answered from the cache.
//!
//! A listing tells the process only what it could learn by asking: it is
//! opened with the process's credentials (no read permission, no prefetch:
//! the stat itself goes on as before), and its entries are kept under the
//! listing's stamp by the cache's usual rules (`listcache`), so a
//! change anywhere after the listing voids them.

use core::sync::atomic::{AtomicU64, Ordering};

use proto::ops::{List, ListOut};

use crate::channel;
use crate::listing::{self, Named};

use super::Target;

/// Directories followed at once (by the hash of their key).
const SLOTS: usize = 64;
/// Misses in a row under one directory that start a listing of it.
const STREAK: u64 = 2;
/// Directories listed whole for a walk after which a walk is going on: the
/// first miss under another directory then lists it at once (one round
/// trip where a miss and a listing took two).
const WALK: u64 = 2;
/// Directories this process listed whole for a walk (saturating at [`WALK`]).
#[link_section = ".data.btfuse_hot"]
static WALKED: AtomicU64 = AtomicU64::new(0);
/// Bytes of plain records (header and name) asked for in a listing: some
/// 2 000 entries of short names, at most ~0.5 ms for a process that stats
/// two names of a huge directory.
const BATCH: u64 = 64 * 1024;

/// Misses under a directory already listed that list it again (a change
/// on the mount voided what was kept). One with more names than a listing
/// brings is not listed again: that would bring the same names.
const RELIST: u64 = 64;

/// The directory a slot follows (its key's hash; 0: none).
static DIR: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Its misses since it was taken or last listed, plus [`LISTED`] once
/// listed (or [`PARTLY_LISTED`]).
static STATE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

const LISTED: u64 = 1 << 32;
/// The state of a directory listed but for names a listing does not bring.
const PARTLY_LISTED: u64 = u64::MAX;

/// Called on a cache miss of `stat` of `t`: lists `t`'s directory into the
/// cache if the misses say a walk of it is going on. Whether it did, or
/// another thread did meanwhile (the caller then looks in the cache
/// again). A thread that misses in a directory another thread is listing
/// waits for that listing ([`Listing`]); other races between threads only
/// cost a listing more or less: every entry kept is stamped.
pub(crate) fn on_miss(t: &Target) -> bool {
    let rel = t.rel();
    let parent = crate::path::split_last(rel).0;
    let h = key_hash(t.mount, t.base, parent);
    // Above the bit `key_hash` always sets (or only the odd half of the
    // slots would ever be used).
    let i = (h >> 1) as usize % SLOTS;
    let listings_before = Listing::done_in(i);
    // Relaxed: hints, see above.
    let walking = WALKED.load(Ordering::Relaxed) >= WALK;
    if DIR[i].load(Ordering::Relaxed) != h {
        DIR[i].store(h, Ordering::Relaxed);
        STATE[i].store(1, Ordering::Relaxed);
        if !walking {
            return false;
        }
    } else {
        let state = STATE[i].load(Ordering::Relaxed);
        if state == PARTLY_LISTED {
            return false;
        }
        let state = state + 1;
        let due = if state & LISTED != 0 { RELIST } else { STREAK };
        if state & !LISTED < due {
            STATE[i].store(state, Ordering::Relaxed);
            return false;
        }
    }
    let Some(listing) = Listing::claim(i, h) else {
        // Another thread lists this directory right now: its listing
        // answers (the 20 threads of a `git status` start at once, and
        // each listed the repository's top directory).
        return Listing::wait(i, h);
    };
    if Listing::done_in(i) != listings_before {
        // Listed by another thread since this miss: that listing answers.
        return true;
    }
    let listed = list(t.mount, t.base, parent);
    listing.done();
    let whole = listed == Some(true);
    if whole && !walking {
        WALKED.fetch_add(1, Ordering::Relaxed);
    }
    STATE[i].store(
        if whole { LISTED } else { PARTLY_LISTED },
        Ordering::Relaxed,
    );
    listed.is_some()
}

/// Per slot: the directory (its key's hash) a thread of this process is
/// listing now (0: none).
static LISTING: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// Per slot: listings of its directories done so far.
static DONE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// How long a thread waits for another one's listing of the directory it
/// missed in (a listing takes tens of µs, more on a CPU shared with the
/// walk's other threads), before it asks the daemon for its own name.
const LISTING_WAIT_NS: u64 = 2_000_000;

/// This thread's listing of a directory: announced in [`LISTING`] (in
/// the slot it holds, if any) until dropped.
struct Listing(Option<usize>);

impl Listing {
    /// Announces that this thread lists the directory of hash `h` (slot
    /// `i`), unless another thread lists it now (`None`). A slot another
    /// directory's listing holds is not waited for: both list, and this
    /// one is announced nowhere.
    fn claim(i: usize, h: u64) -> Option<Listing> {
        // Relaxed: a hint; a listing more or less is only a round trip.
        match LISTING[i].compare_exchange(0, h, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => Some(Listing(Some(i))),
            Err(other) if other == h => None,
            Err(_) => Some(Listing(None)),
        }
    }

    /// Counts the listing made (the listing cache holds it now).
    fn done(&self) {
        if let Some(i) = self.0 {
            // Release: pairs with the Acquire in `done_in`.
            DONE[i].fetch_add(1, Ordering::Release);
        }
    }

    /// Listings done in slot `i` so far.
    fn done_in(i: usize) -> u64 {
        // Acquire: pairs with the Release in `done`.
        DONE[i].load(Ordering::Acquire)
    }

    /// Waits until no thread lists the directory of hash `h` (slot `i`),
    /// at most [`LISTING_WAIT_NS`] (then frees the slot); whether it
    /// finished (the caller then looks in the cache again).
    fn wait(i: usize, h: u64) -> bool {
        let start = crate::sys::monotonic_ns();
        // Acquire: pairs with the Release in `drop`, after which the
        // listing is in the cache.
        while LISTING[i].load(Ordering::Acquire) == h {
            if crate::sys::monotonic_ns().saturating_sub(start) > LISTING_WAIT_NS {
                // A lister that never finished (a thread gone mid-call, a
                // fork's child): the directory may be listed again.
                let _ = LISTING[i].compare_exchange(h, 0, Ordering::Relaxed, Ordering::Relaxed);
                return false;
            }
            let _ = crate::sys::sc!(libc::SYS_sched_yield);
        }
        true
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            // Release: pairs with the Acquire in `wait`.
            LISTING[i].store(0, Ordering::Release);
        }
    }
}

/// Lists directory `dir` (relative to `base`) into the cache; if it kept
/// anything, whether that was the whole directory.
///
/// The entries are kept by path only if nothing changed between the open
/// and the listing (the path may have stopped naming the directory). The
/// first listing of a directory changed since it was last listed changes
/// something itself (its atime, relatime), so a second try then lists
/// under the open's stamp.
fn list(mount: usize, base: u64, dir: &[u8]) -> Option<bool> {
    let path: &[u8] = if dir.is_empty() { b"." } else { dir };
    for _ in 0..2 {
        let kept = list_once(mount, base, dir, path);
        if kept.is_some() {
            return kept;
        }
    }
    None
}

/// One [`List`] of `path` (`dir` relative to `base`), its entries kept in
/// the cache as answers for `dir`'s paths if nothing changed since the
/// open; then whether they were the whole directory.
fn list_once(mount: usize, base: u64, dir: &[u8], path: &[u8]) -> Option<bool> {
    let mut ch = channel::acquire(mount).ok()?;
    let (_, blen) = ch.bulk().ok()?;
    let req = List {
        base,
        max: BATCH.min(blen as u64),
    };
    let mut reply = [0u8; channel::REPLY_BUF];
    let (out, _): (ListOut, _) = ch.call(&req, path, b"", &mut reply).ok()?;
    let ListOut { ino, stamp, list } = out;
    let named = Named::new(base, dir, stamp);
    named
        .filter(|n| list.stamp != 0 && n.stamp() == list.stamp)
        .map(|named| {
            let records = ch.bulk_reply(list.bytes);
            let _ = listing::keep(
                mount,
                Some(ino),
                Some(&named),
                records,
                list.stamp,
                (true, list.eof == 1),
            );
            list.eof == 1
        })
}

/// FNV-1a of the directory's key (never 0, the empty slot).
pub(super) fn key_hash(mount: usize, base: u64, dir: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let words = [mount as u64, base];
    for b in words
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .chain(dir.iter().copied())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}
