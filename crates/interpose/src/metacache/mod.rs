//! The metadata cache: answers `stat`-family calls from this process's
//! memory while the daemon's change generation says they still hold.
//!
//! Every entry is an answer the daemon gave this process (a `Stat` or
//! `Fstat` reply, or an entry of a readdirplus), stamped by the daemon with
//! the change generation it held under (`proto::GenPage`). An entry is used
//! only while
//!
//! * the mount's generation page still shows that stamp (`begun`, one
//!   `Acquire` load): no change of any kind, through either door, began
//!   since the daemon computed it, so asking again would give the same
//!   answer; a change moves `begun` before it becomes visible, so before
//!   the changing call returns in any process; or the page's change log
//!   says that no change since touched what the answer depends on (the
//!   directory the daemon looked its last name up in, and the inode it
//!   names: see [`Now`] and `proto::changes`), and the entry is then
//!   re-stamped (readers write its line only then);
//! * the process's credential epoch (`state::epoch`) is the one it was
//!   stored under: the daemon computed it for these credentials
//!   (permissions included), and a credential change starts a new epoch.
//!
//! So a hit is exactly the answer a round trip would give now: the cache
//! never shows a stale state nor anything the caller could not see by
//! asking. Keys are exact request bytes (mount, base handle, path,
//! follow/nofollow): handles are never reused by a daemon, and a path is
//! relative to the mount root or to such a handle.
//!
//! Memory: one fixed table of [`NENT`] entries of 256 bytes, mapped on the
//! first insert (nothing at load, nothing for a process that never
//! stats a mount file), [`WAYS`]-way set associative, the oldest stamp
//! evicted (a copy under a second key, [`insert_spare`], evicts nothing
//! current: three keys of one set must not take turns missing).
//! Each entry is a seqlock: readers write no shared line but to re-stamp
//! an entry, so threads of one process hit in parallel; a writer that
//! finds an entry busy simply does not cache.

use core::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

use proto::WireAttr;

use crate::lazy_table::LazyTable;
#[cfg(not(test))]
use crate::state;

/// Entries in the table (a power of two).
pub(crate) const NENT: usize = 1 << 14;
/// Longest path kept (longer ones are not cached).
pub(crate) const KEY_MAX: usize = 14 * 8;
use crate::fdtable::ATTR_WORDS;
/// Words of the longest path kept.
pub(crate) const KEY_WORDS: usize = KEY_MAX / 8;
const META_WORDS: usize = 6;
const WORDS: usize = 1 + META_WORDS + ATTR_WORDS + KEY_WORDS;
const _: () = assert!(size_of::<WireAttr>() == ATTR_WORDS * 8);
const _: () = assert!(WORDS == 32);

/// The entry answers `stat` (follows a final symlink).
pub(crate) const FOLLOW: u64 = 1;
/// The entry answers `lstat` (`AT_SYMLINK_NOFOLLOW`).
pub(crate) const NOFOLLOW: u64 = 2;
/// The entry answers `fstat` of the handle `base`.
const FSTAT: u64 = 4;
/// `Key::base` of an absolute path as the caller wrote it (before the
/// library resolved it to a mount and a path in it; the mount table is
/// fixed for the life of a process image, so that resolution is too).
/// Never a handle (daemons count those up from 1).
pub(crate) const RAW: u64 = u64::MAX;

/// What a lookup is for.
#[derive(Clone, Copy)]
pub(crate) struct Key<'a> {
    /// Mount index.
    pub(crate) mount: usize,
    /// Base handle (0: the mount root), or the handle for `fstat`.
    pub(crate) base: u64,
    /// Path relative to `base` (empty for `fstat`).
    pub(crate) path: &'a [u8],
    /// [`FOLLOW`], [`NOFOLLOW`] (or the internal `FSTAT`).
    pub(crate) how: u64,
}

impl<'a> Key<'a> {
    /// The key of `fstat` of handle `fh`.
    pub(crate) fn fstat(mount: usize, fh: u64) -> Key<'a> {
        Key {
            mount,
            base: fh,
            path: b"",
            how: FSTAT,
        }
    }

    /// The path as the entry stores it (zero-padded words), and the hash
    /// that places the key: a word at a time (a byte at a time was a fifth
    /// of a cached `stat`), each step folding the high half of the product
    /// down so that every byte reaches the low bits the set index uses.
    fn words_and_hash(&self) -> ([u64; KEY_WORDS], u64) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let words = key_words(self.path);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.base.wrapping_mul(K);
        for &w in &words[..self.path.len().div_ceil(8)] {
            h = (h ^ w).wrapping_mul(K);
            h ^= h >> 32;
        }
        h = (h ^ self.path.len() as u64).wrapping_mul(K);
        h ^= h >> 29;
        // A raw path's mount is what its entry tells, not part of the key.
        let mount = if self.base == RAW {
            0
        } else {
            self.mount as u64
        };
        (words, h ^ (mount << 48) ^ ((self.how & FSTAT) << 40))
    }
}

/// One entry: `seq` (odd while written), then the words
/// `[hash, stamp, base, epoch | mount << 32, path_len | how << 32, dir, attr.., path..]`.
#[repr(C, align(64))]
struct Entry {
    seq: AtomicU64,
    w: [AtomicU64; WORDS - 1],
}

const W_HASH: usize = 0;
const W_STAMP: usize = 1;
const W_BASE: usize = 2;
const W_OWNER: usize = 3;
const W_SHAPE: usize = 4;
/// The directory the answer's last name was looked up in (0: unknown).
const W_DIR: usize = 5;
const W_ATTR: usize = META_WORDS;
const W_KEY: usize = META_WORDS + ATTR_WORDS;

// SAFETY: an all-zero table is valid (atomics).
#[link_section = ".data.btfuse_hot"]
static TABLE: LazyTable<[Entry; NENT]> = unsafe { LazyTable::new() };

/// Calls answered from the cache, and by the daemon, for `BTFUSE_DEBUG`'s
/// exit line (see [`count`]).
#[link_section = ".data.btfuse_hot"]
static HITS: AtomicU64 = AtomicU64::new(0);
#[link_section = ".data.btfuse_hot"]
static MISSES: AtomicU64 = AtomicU64::new(0);
/// Calls the public table answered, for the exit report (see
/// [`count_table`]).
static TABLE_ANSWERS: AtomicU64 = AtomicU64::new(0);
/// Listings made ahead that an open took, and those it did not, for the
/// exit report (see [`count_ahead`]).
static AHEAD: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// Pages of the table.
const PAGES: usize = size_of::<[Entry; NENT]>() / 4096;
const _: () = assert!(PAGES.is_multiple_of(64) && (4096 / size_of::<Entry>()).is_multiple_of(WAYS));

/// One bit per page of the table, set once an insert wrote an entry in
/// it: a lookup reads no page before that (a set lies in one page). A
/// read would map the kernel's shared zero page, and the first write then
/// has to replace it, flushing it from the TLB of every CPU the process's
/// threads ran on (IPIs: 9% of a preloaded `git status`, 20 threads).
#[link_section = ".data.btfuse_hot"]
static WRITTEN: [AtomicU64; PAGES / 64] = [const { AtomicU64::new(0) }; PAGES / 64];

/// The page of the set of hash `h`, as (word, bit) of [`WRITTEN`].
fn page_bit(h: u64) -> (&'static AtomicU64, u64) {
    let page = (h as usize & (NENT - 1)) * size_of::<Entry>() / 4096;
    (&WRITTEN[page / 64], 1 << (page % 64))
}

/// Whether an insert has written in the page of the set of hash `h`.
fn written(h: u64) -> bool {
    let (word, bit) = page_bit(h);
    word.load(Ordering::Relaxed) & bit != 0
}

/// Pages inserts have written so far, up to [`POPULATE_AFTER`].
#[link_section = ".data.btfuse_hot"]
static PAGES_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Pages inserts fault in one by one before the whole table is faulted
/// in at once. A single fault costs ~1.5 µs here, one
/// `MADV_POPULATE_WRITE` of the table's 1 024 pages 500–750 µs (~0.55
/// µs a page): populating pays off only for a process that goes on to
/// write several hundred pages more, which one that already wrote a
/// quarter of them usually does (a stat loop over 1 000 names, a tree
/// walk's `find -exec stat`). Counted in pages written, not answers kept:
/// answers land on random pages, and a `git status` keeping 20–80 (its
/// 20 threads miss a few each before the sibling prefetch lists their
/// directories) paid a whole populate, 1 ms of its 16, when 64 answers
/// triggered it. Listings are kept apart (`listcache`) and count for
/// nothing here, so a compiler that lists its project's directory stays
/// below, and a `cat` never comes near. (Before lookups skipped pages no
/// insert wrote, see [`WRITTEN`], a page first read by one faulted
/// twice and was flushed from every CPU's TLB.)
const POPULATE_AFTER: u64 = PAGES as u64 / 4;

fn table() -> Option<&'static [Entry; NENT]> {
    TABLE.get()
}

/// Whether anything was ever cached (until then no lookup can hit).
pub(crate) fn in_use() -> bool {
    table().is_some()
}

fn table_or_map() -> Option<&'static [Entry; NENT]> {
    TABLE.get_or_map()
}

/// The process's credential epoch (`state::epoch`).
#[cfg(not(test))]
fn epoch() -> u32 {
    state::epoch()
}

#[cfg(test)]
static TEST_EPOCH: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

#[cfg(test)]
fn epoch() -> u32 {
    TEST_EPOCH.load(Ordering::Relaxed)
}

/// The owner word of an answer for `mount`: this credential epoch's.
pub(crate) fn owner(mount: usize) -> u64 {
    epoch() as u64 | (mount as u64) << 32
}

/// `path` as zero-padded words.
pub(crate) fn key_words(path: &[u8]) -> [u64; KEY_WORDS] {
    let mut w = [0u64; KEY_WORDS];
    for (i, chunk) in path.chunks(8).enumerate() {
        w[i] = key_word(chunk);
    }
    w
}

/// Up to 8 bytes of a path as a word of [`key_words`] (zero-padded,
/// little-endian): `path::Padded`'s word of a path with nothing after it.
pub(crate) fn key_word(chunk: &[u8]) -> u64 {
    crate::path::Padded::plain(chunk).le_word(0, chunk.len())
}

/// Entries per set. Two made some processes of a stat loop over 1 000
/// names (~3 000 keys with the listings' and the raw paths') miss one
/// name per pass for good, the daemon then kept busy answering them.
const WAYS: usize = 4;

/// The set of hash `h`, its ways in the order lookups probe them and
/// inserts prefer them: from a way the hash picks, so that most keys sit
/// in the first way probed (one cache line per hit, as with two ways).
fn set_of(t: &'static [Entry; NENT], h: u64) -> [&'static Entry; WAYS] {
    let i = (h as usize) & (NENT - 1) & !(WAYS - 1);
    let first = (h >> 62) as usize;
    core::array::from_fn(|k| &t[i + (first + k) % WAYS])
}

/// A cached answer: the attributes, or the errno of a missing name.
pub(crate) type Answer = Result<WireAttr, i32>;

/// Bit of the shape word: the answer is `ENOENT`.
const ABSENT: u64 = 1 << 48;

/// A mount's change generation now, and its change log
/// (`proto::changes`), through which an answer stamped earlier may still
/// be shown to hold.
#[derive(Clone, Copy)]
pub(crate) struct Now {
    /// The mount's `begun`.
    pub(crate) gen: u64,
    log: Option<&'static proto::changes::ChangeLog>,
}

impl Now {
    /// Generation `gen` of a mount whose change log is `log` (`None`: only
    /// an answer stamped `gen` holds).
    pub(crate) fn new(gen: u64, log: Option<&'static proto::changes::ChangeLog>) -> Now {
        Now { gen, log }
    }

    /// Whether an answer stamped `stamp` that depends on the attributes
    /// (or bytes) of inode `ino` (0: unknown) still holds.
    pub(crate) fn holds_for(&self, stamp: u64, ino: u64) -> bool {
        stamp == self.gen || (ino != 0 && self.untouched(stamp, &[ino]))
    }

    /// [`Now::holds_for`], checking every change the log still holds (up
    /// to `proto::changes::RECORDS`), for a caller that then keeps the
    /// answer under [`Now::gen`]: the long check is paid once.
    pub(crate) fn holds_for_long(&self, stamp: u64, ino: u64) -> bool {
        stamp == self.gen || (ino != 0 && self.untouched_long(stamp, &[ino]))
    }

    /// Whether a listing of directory `dir` (0: unknown) stamped `stamp`
    /// still holds: its names, and the attributes it lists.
    pub(crate) fn listing_holds(&self, stamp: u64, dir: u64) -> bool {
        stamp == self.gen
            || (dir != 0 && self.untouched(stamp, &[dir, dir | proto::changes::LISTED]))
    }

    /// Whether the answer for a path, stamped `stamp`, still holds: its
    /// last name was looked up in directory `dir` (0: unknown) and named
    /// inode `ino` (0: nothing). Only a change to that directory's names,
    /// to that inode's attributes, or one reaching past the inodes it
    /// touched can change it (see `proto::changes`).
    pub(crate) fn holds_for_name(&self, stamp: u64, dir: u64, ino: u64) -> bool {
        stamp == self.gen || (dir != 0 && self.untouched_long(stamp, &[dir, ino]))
    }

    /// Whether an answer that depends on which directory a path names
    /// (and on nothing listed in it) still holds: no change since `stamp`
    /// reached past the inodes it named.
    pub(crate) fn paths_hold(&self, stamp: u64) -> bool {
        stamp == self.gen || self.untouched(stamp, &[])
    }

    fn untouched(&self, stamp: u64, inodes: &[u64]) -> bool {
        self.log
            .is_some_and(|l| l.untouched(stamp, self.gen, inodes))
    }

    fn untouched_long(&self, stamp: u64, inodes: &[u64]) -> bool {
        let most = proto::changes::RECORDS as u64;
        self.log
            .is_some_and(|l| l.untouched_within(stamp, self.gen, inodes, most))
    }
}

/// The cached answer for `key` if it still holds at the mount's
/// generation `now`.
pub(crate) fn lookup(key: &Key<'_>, now: Now) -> Option<Answer> {
    lookup_with(key, |_| Some(now)).map(|(a, _)| a)
}

/// The cached answer for `key` and its mount, if it still holds at that
/// mount's generation (`now`; `None`: unknown). For a [`RAW`] key,
/// `key.mount` is ignored: the entry tells the mount.
pub(crate) fn lookup_with(
    key: &Key<'_>,
    now: impl Fn(usize) -> Option<Now>,
) -> Option<(Answer, usize)> {
    if key.path.len() > KEY_MAX {
        return None;
    }
    let t = table()?;
    let (want, h) = key.words_and_hash();
    if !written(h) {
        return None;
    }
    set_of(t, h)
        .into_iter()
        .find_map(|e| read(e, key, h, &want, &now))
}

/// Whether this process's directory listings should carry the entries'
/// attributes (a readdirplus): only once it asked the daemon for
/// attributes, and not after a listing kept with them answered nothing
/// (see `dir`) until it asks again, so a program that lists without
/// stat-ing the entries (a readdir loop, `ls` without `-l`, the untracked
/// scan of a `git status` after its `lstat`s) does not pay for keeping
/// them.
#[link_section = ".data.btfuse_hot"]
static LISTINGS_WANT_ATTRS: AtomicBool = AtomicBool::new(false);

/// Whether the next directory listing should be a readdirplus.
pub(crate) fn listings_want_attrs() -> bool {
    // Relaxed: a hint; either answer is correct.
    LISTINGS_WANT_ATTRS.load(Ordering::Relaxed)
}

/// A listing kept with attributes answered no `stat`: the next listings
/// go without, until a `stat` misses again.
pub(crate) fn listings_went_unused() {
    if LISTINGS_WANT_ATTRS.load(Ordering::Relaxed) {
        LISTINGS_WANT_ATTRS.store(false, Ordering::Relaxed);
    }
}

/// Counts one `stat`-family call answered from the cache (`hit`) or by
/// the daemon, for the exit report; only with `BTFUSE_DEBUG` (a shared
/// counter would make the threads of a process contend for its line). A
/// miss also makes later listings carry attributes.
pub(crate) fn count(hit: bool) {
    if !hit && !LISTINGS_WANT_ATTRS.load(Ordering::Relaxed) {
        LISTINGS_WANT_ATTRS.store(true, Ordering::Relaxed);
    }
    if !debug_enabled() {
        return;
    }
    let c = if hit { &HITS } else { &MISSES };
    c.fetch_add(1, Ordering::Relaxed);
}

#[cfg(not(test))]
fn debug_enabled() -> bool {
    crate::sys::debug_enabled()
}

#[cfg(test)]
fn debug_enabled() -> bool {
    true
}

fn read(
    e: &Entry,
    key: &Key<'_>,
    h: u64,
    want: &[u64; KEY_WORDS],
    now: &impl Fn(usize) -> Option<Now>,
) -> Option<(Answer, usize)> {
    let w = |i: usize| e.w[i].load(Ordering::Relaxed);
    // Acquire: the words read below are at least as new as this count.
    let s1 = e.seq.load(Ordering::Acquire);
    if s1 & 1 != 0 || w(W_HASH) != h || w(W_BASE) != key.base {
        return None;
    }
    let owner = w(W_OWNER);
    let mount = (owner >> 32) as usize;
    if owner as u32 != epoch() || (key.base != RAW && mount != key.mount) {
        return None;
    }
    let (stamp, dir) = (w(W_STAMP), w(W_DIR));
    let shape = w(W_SHAPE);
    if shape as usize & 0xffff != key.path.len() || (shape >> 32) & key.how != key.how {
        return None;
    }
    let n = key.path.len().div_ceil(8);
    if (0..n).any(|i| w(W_KEY + i) != want[i]) {
        return None;
    }
    let mut words = [0u64; ATTR_WORDS];
    for (i, v) in words.iter_mut().enumerate() {
        *v = w(W_ATTR + i);
    }
    // Acquire fence: the reads above happen before the re-check of `seq`.
    fence(Ordering::Acquire);
    if e.seq.load(Ordering::Relaxed) != s1 {
        return None;
    }
    let answer = match shape & ABSENT {
        0 => Ok(attr_of_words(words)),
        _ => Err(libc::ENOENT),
    };
    let ino = answer.map_or(0, |a| a.ino);
    let n = now(mount)?;
    let holds = match key.how & FSTAT {
        0 => n.holds_for_name(stamp, dir, ino),
        _ => n.holds_for_long(stamp, ino),
    };
    if !holds {
        return None;
    }
    if stamp != n.gen {
        restamp(e, s1, n.gen);
    }
    Some((answer, mount))
}

/// Keeps entry `e`, read at count `s1` and found to hold at generation
/// `gen`, under `gen` (its next check is one compare), unless a writer
/// came first.
fn restamp(e: &Entry, s1: u64, gen: u64) {
    if e.seq
        .compare_exchange(s1, s1 + 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // Release fence: the odd count is visible before the stamp changes.
    fence(Ordering::Release);
    e.w[W_STAMP].store(gen, Ordering::Relaxed);
    // Release: the stamp is visible before the even count.
    e.seq.store(s1 + 2, Ordering::Release);
}

/// `attr` as the words the cache and an open file description keep.
pub(crate) fn attr_words(attr: &WireAttr) -> [u64; ATTR_WORDS] {
    // SAFETY: WireAttr is plain integers, exactly ATTR_WORDS words long
    // (asserted above).
    unsafe { core::mem::transmute::<WireAttr, [u64; ATTR_WORDS]>(*attr) }
}

/// The attributes [`attr_words`] made `words` of.
pub(crate) fn attr_of_words(words: [u64; ATTR_WORDS]) -> WireAttr {
    // SAFETY: as in `attr_words`; any bit pattern is a valid WireAttr.
    unsafe { core::mem::transmute::<[u64; ATTR_WORDS], WireAttr>(words) }
}

/// What the daemon said of an answer: the generation it holds under (0:
/// not to be kept), and the directory its last name was looked up in (0:
/// unknown; see `proto::ops::StatOut::dir`).
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    pub(crate) gen: u64,
    pub(crate) dir: u64,
}

/// Keeps `answer`, the daemon's answer for `key` stamped `stamp`.
/// `key.how` may hold both [`FOLLOW`] and [`NOFOLLOW`] when the answer is
/// the same for both (see [`reuse`]).
pub(crate) fn insert(key: &Key<'_>, answer: &Answer, stamp: Stamp) {
    put(key, answer, stamp, u64::MAX);
}

/// [`insert`] of a second key of an answer kept under another: it takes
/// only a free entry or one of an older stamp (likely stale), never one
/// as new.
pub(crate) fn insert_spare(key: &Key<'_>, answer: &Answer, stamp: Stamp) {
    put(key, answer, stamp, stamp.gen);
}

/// Keeps `answer` in the entry of its set with the oldest stamp, if that
/// stamp is below `evict_below`.
fn put(key: &Key<'_>, answer: &Answer, stamp: Stamp, evict_below: u64) {
    let Stamp { gen: stamp, dir } = stamp;
    if stamp == 0 || key.path.len() > KEY_MAX {
        return;
    }
    let Some(t) = table_or_map() else {
        return;
    };
    let (path_words, h) = key.words_and_hash();
    // The first way probed if it is free or stale (usually: one line read),
    // else the entry with the oldest stamp (on a tie the first probed). In
    // a page nothing was written to, all are free: not even read (see
    // `WRITTEN`), the first is taken with a write.
    let ways = set_of(t, h);
    let fresh = !written(h);
    let stamp_of = |e: &&Entry| e.w[W_STAMP].load(Ordering::Relaxed);
    let oldest = || ways.into_iter().min_by_key(stamp_of);
    let Some(e) = Some(ways[0])
        .filter(|e| fresh || stamp_of(e) < stamp)
        .or_else(oldest)
        .filter(|e| fresh || stamp_of(e) < evict_below)
    else {
        return;
    };
    let s = if fresh {
        0
    } else {
        e.seq.load(Ordering::Relaxed)
    };
    if s & 1 != 0
        || e.seq
            .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    // Release fence: the odd count is visible before any word changes.
    fence(Ordering::Release);
    let set = |i: usize, v: u64| e.w[i].store(v, Ordering::Relaxed);
    set(W_HASH, h);
    set(W_STAMP, stamp);
    set(W_BASE, key.base);
    set(W_OWNER, owner(key.mount));
    let (attr, absent) = match answer {
        Ok(a) => (*a, 0),
        Err(_) => (WireAttr::default(), ABSENT),
    };
    set(W_SHAPE, key.path.len() as u64 | key.how << 32 | absent);
    set(W_DIR, dir);
    for (i, v) in attr_words(&attr).iter().enumerate() {
        set(W_ATTR + i, *v);
    }
    for (i, v) in path_words.iter().enumerate() {
        set(W_KEY + i, *v);
    }
    // Release: the words above are visible before the even count.
    e.seq.store(s + 2, Ordering::Release);
    let (word, bit) = page_bit(h);
    // Relaxed: a count; exactly one insert sees POPULATE_AFTER.
    if fresh
        && word.fetch_or(bit, Ordering::Relaxed) & bit == 0
        && PAGES_WRITTEN.fetch_add(1, Ordering::Relaxed) + 1 == POPULATE_AFTER
    {
        populate(t);
    }
}

/// Faults the whole table in (see [`POPULATE_AFTER`]); a kernel without
/// `MADV_POPULATE_WRITE` (before 5.14) refuses, and pages then come in
/// one by one as before.
#[cfg(not(test))]
fn populate(t: &'static [Entry; NENT]) {
    let _ = crate::sys::sc!(
        libc::SYS_madvise,
        t.as_ptr(),
        size_of::<[Entry; NENT]>(),
        libc::MADV_POPULATE_WRITE
    );
}

#[cfg(test)]
fn populate(_: &'static [Entry; NENT]) {}

/// How a `stat` answer may be reused: for the same `how`, and an `lstat`
/// answer for both forms when it is not a symlink (`lstat` of a
/// non-symlink is its `stat`, and a name `lstat` finds missing is missing
/// for `stat`; `stat` answers may come from a symlink, or be `ENOENT`
/// for a dangling one).
pub(crate) fn reuse(how: u64, answer: &Answer) -> u64 {
    let symlink = answer
        .as_ref()
        .is_ok_and(|a| a.mode & libc::S_IFMT == libc::S_IFLNK);
    reuse_as(how, symlink)
}

/// [`reuse`] of an answer that is a symlink's attributes or not.
pub(crate) fn reuse_as(how: u64, symlink: bool) -> u64 {
    if how == NOFOLLOW && !symlink {
        FOLLOW | NOFOLLOW
    } else {
        how
    }
}

/// Counts one call answered from the public table (`crate::public`) for
/// the exit report, only with `BTFUSE_DEBUG`; a `stat` so answered is
/// also counted as a miss of the cache.
pub(crate) fn count_table() {
    if debug_enabled() {
        TABLE_ANSWERS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a listing made ahead (see `dir`) that an open took or did not,
/// for the exit report, only with `BTFUSE_DEBUG`.
pub(crate) fn count_ahead(taken: bool) {
    if debug_enabled() {
        AHEAD[usize::from(taken)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Hits and misses so far.
pub(crate) fn counts() -> (u64, u64) {
    (HITS.load(Ordering::Relaxed), MISSES.load(Ordering::Relaxed))
}

/// Writes `v` in decimal into `buf`; the digits.
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// At exit, with `BTFUSE_DEBUG`: one line of hits and misses, if the
/// cache was ever asked.
#[cfg(not(test))]
pub(crate) fn report_at_exit() {
    // Without it the counters' page was never touched: reading it now
    // would cost a page fault at every exit.
    if !debug_enabled() {
        return;
    }
    let (hits, misses) = counts();
    let table = TABLE_ANSWERS.load(Ordering::Relaxed);
    let [untaken, taken] = AHEAD.each_ref().map(|c| c.load(Ordering::Relaxed));
    if hits + misses + table + untaken + taken == 0 {
        return;
    }
    let (mut a, mut b, mut c) = ([0u8; 20], [0u8; 20], [0u8; 20]);
    let (mut d, mut e) = ([0u8; 20], [0u8; 20]);
    crate::sys::debug(&[
        b"btfuse: metadata cache: ",
        decimal(hits, &mut a),
        b" hits, ",
        decimal(misses, &mut b),
        b" misses; public table: ",
        decimal(table, &mut c),
        b" answers; listings ahead: ",
        decimal(taken, &mut d),
        b" taken, ",
        decimal(untaken, &mut e),
        b" not",
    ]);
}

#[cfg(test)]
mod tests;
