//! Files a process opens again: their read-only handle and, for a small
//! file, its bytes, kept so that `open`, `read` and `close` of a file it
//! already read need no round trip. Files the daemon opened ahead for the
//! process (`ops::ahead`) are kept the same way, with their bytes, before
//! any open of them.
//!
//! An entry holds, for one inode of one mount, a daemon handle this
//! process opened read-only (the kernel's answer to "may it read this
//! file": yes), the file's attributes and the stamp under which they (and
//! its bytes, if kept) were the store's. While no change since that stamp
//! touched the inode (its attributes, permissions and ACLs included; the
//! kernel taking pages of it counts, see `proto::ops::ReadOut`), a plain
//! read-only open of a path the process knows names it ([`open`]) shares
//! the handle, as a second open would have been granted, and reads of the
//! bytes are copies ([`read`]). Both also need the credential and fork
//! epoch the entry was made under (the handle is the process's, for those
//! credentials), and a read an atime younger than a day (else the daemon
//! updates it, relatime, so the read must reach it).
//!
//! Memory: [`ENTRIES`] entries of a few lines and up to [`DATA_MAX`]
//! bytes, [`WAYS`]-way set associative by inode number, mapped on the
//! first entry kept. Only the index is laid out by set; an entry and its
//! bytes sit at a place handed out in order the first time its index is
//! written, so that a process keeping a few hundred files touches a few
//! dozen pages, not one per file (a short `cat` of 100 files faulted or
//! populated ~220 pages, more than its own start-up). An entry counts the
//! open files that share its handle and gives it back only when none does
//! (its replacement then waits); each entry has a lock, and a caller that
//! finds one busy keeps nothing or asks the daemon.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};

use proto::WireAttr;

use crate::lazy_table::LazyTable;
use crate::metacache::{self, Now};

/// Entries (a power of two), and the entries an inode may sit in.
const ENTRIES: usize = 2048;
const WAYS: usize = 4;
/// Largest file whose bytes are kept.
pub(crate) const DATA_MAX: usize = 4096;
/// Seconds after which the daemon updates a read file's atime (relatime).
const ATIME_DAY: i64 = 24 * 60 * 60;

/// The table: its index first (per entry the inode it keeps, 0: none,
/// read without the lock to pick the way, the lock's holder checks
/// `inner`; the entry's lock; its place), then the entries and their bytes
/// by place, so that a lookup reads the set's inodes in one line and its
/// entry in another, and entries made one after another share pages.
#[repr(C)]
struct Table {
    inos: [AtomicU64; ENTRIES],
    /// 1 while entry `i` is held (see [`Table::lock`]).
    locks: [AtomicU32; ENTRIES],
    /// Entry `i`'s place plus one (0: none yet), written once, under its
    /// lock.
    places: [AtomicU16; ENTRIES],
    /// By a hash of the path an entry was opened by: a tag of the hash
    /// and the entry's index plus one (see [`path_word`]; 0: none). A path
    /// sits in one of [`PROBES`] slots from the one its hash picks; the
    /// entry's holder checks the path itself.
    paths: [AtomicU32; PATHS],
    /// Places handed out so far (at most one an entry).
    placed: AtomicU32,
    /// [`populate_index`] faults in what is before this.
    entries: [UnsafeCell<Inner>; ENTRIES],
    /// A place's bytes, in `small` when they fit (many to a page), else in
    /// `data` (a page each).
    small: [UnsafeCell<[u8; SMALL_MAX]>; ENTRIES],
    data: [UnsafeCell<[u8; DATA_MAX]>; ENTRIES],
}

/// Largest file whose bytes share a page with others' (16 to a page).
const SMALL_MAX: usize = 256;

/// Slots of the path index (a power of two), and the run of them a path
/// may sit in (a lost slot makes a file ask the daemon on every open).
const PATHS: usize = 8192;
const PROBES: usize = 4;
const _: () = assert!(ENTRIES < 1 << 12 && ENTRIES < u16::MAX as usize);

/// A path index slot's word: the tag of hash `h` above the entry index
/// plus one.
fn path_word(h: u64, i: usize) -> u32 {
    ((h >> 40) as u32) << 12 | (i as u32 + 1)
}

/// How the process named a file it opened: the base handle and path of
/// the open (at most `metacache::KEY_MAX` bytes), and the directory the
/// path's last name was looked up in (`proto::ops::OpenOut::dir`).
#[derive(Clone, Copy)]
pub(crate) struct Named<'a> {
    pub(crate) base: u64,
    pub(crate) path: &'a [u8],
    pub(crate) dir: u64,
}

/// The hash of `path` relative to `base` of `mount`.
fn path_hash(mount: usize, base: u64, path: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ base ^ (mount as u64) << 56;
    for &b in path {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ h >> 29
}

/// The path index slots hash `h` may sit in.
fn path_slots(t: &Table, h: u64) -> impl Iterator<Item = &AtomicU32> {
    let first = h as usize & (PATHS - 1);
    (0..PROBES).map(move |k| &t.paths[(first + k) & (PATHS - 1)])
}

// SAFETY: the entry and bytes at entry `i`'s place are only touched by the
// holder of `locks[i]` (a place is handed out once, to one entry).
unsafe impl Sync for Table {}

/// What an entry keeps (all-zero: empty).
struct Inner {
    /// 0: empty; else 1 (the entry) plus the open files sharing `fh`.
    refs: u32,
    /// `metacache::owner` of the mount when made: its credential and fork
    /// epoch.
    owner: u64,
    ino: u64,
    fh: u64,
    stamp: u64,
    attr: WireAttr,
    /// Bytes kept (the whole file, in `Table::data`), if `Some`.
    len: Option<u16>,
    /// The handle was shared by a later open: the file is read again, and
    /// its bytes are worth a page (a process that reads each file once,
    /// `cat` of many files, python reading a tree, would fault one in per
    /// file for nothing).
    reopened: bool,
    /// Opened ahead and not opened since (see [`ahead_used`]).
    unused_ahead: bool,
    /// How the process named it (see [`Named`]); the path's first
    /// `path_len` bytes.
    base: u64,
    dir: u64,
    path_len: u8,
    path: [u8; metacache::KEY_MAX],
}

// SAFETY: an all-zero table is valid (atomics, integers, `None`, bytes).
#[link_section = ".data.btfuse_hot"]
static TABLE: LazyTable<Table> = unsafe { LazyTable::new() };

/// What an entry without a place holds: nothing.
// SAFETY: all-zero is an empty `Inner` (integers, `None`, bytes).
static EMPTY: Inner = unsafe { core::mem::zeroed() };

impl Table {
    /// Entry `i`'s contents while its lock is held (`None`: busy; with
    /// `wait`, spins until it is free: callers that must not give up hold
    /// it for a few stores only).
    fn lock(&'static self, i: usize, wait: bool) -> Option<Held> {
        loop {
            if self.locks[i]
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // Relaxed: written only under this lock, which we hold.
                let place = self.places[i].load(Ordering::Relaxed);
                let place = usize::from(place).checked_sub(1);
                return Some(Held { t: self, i, place });
            }
            if !wait {
                return None;
            }
            core::hint::spin_loop();
        }
    }
}

/// A held entry lock.
struct Held {
    t: &'static Table,
    i: usize,
    /// The entry's place, if it has one yet.
    place: Option<usize>,
}

impl Held {
    /// The entry's place, handed out now if it had none.
    fn place(&mut self) -> usize {
        *self.place.get_or_insert_with(|| {
            // Relaxed: a count; every entry takes at most one place, so
            // there are enough.
            let p = self.t.placed.fetch_add(1, Ordering::Relaxed) as usize;
            debug_assert!(p < ENTRIES);
            self.t.places[self.i].store(p as u16 + 1, Ordering::Relaxed);
            p
        })
    }

    /// Room for `len` bytes of the entry's file.
    fn bytes_mut(&mut self, len: usize) -> &mut [u8] {
        let p = self.place();
        // SAFETY: the entry's lock is ours until drop, and `p` its place.
        unsafe {
            match len <= SMALL_MAX {
                true => &mut (&mut *self.t.small[p].get())[..len],
                false => &mut (&mut *self.t.data[p].get())[..len],
            }
        }
    }

    /// The entry's kept bytes (`len` of them, as [`Held::bytes_mut`]).
    fn bytes(&mut self, len: usize) -> &[u8] {
        self.bytes_mut(len)
    }

    /// Records which inode the entry keeps, for lookups.
    fn set_ino(&mut self, ino: u64) {
        self.ino = ino;
        self.t.inos[self.i].store(ino, Ordering::Relaxed);
    }

    /// Empties the entry (its handle is the caller's to release).
    fn clear(&mut self) {
        self.refs = 0;
        self.len = None;
        self.set_ino(0);
    }
}

impl core::ops::Deref for Held {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        match self.place {
            // SAFETY: the lock is ours until drop, and `p` the entry's place.
            Some(p) => unsafe { &*self.t.entries[p].get() },
            None => &EMPTY,
        }
    }
}

impl core::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut Inner {
        let p = self.place();
        // SAFETY: the lock is ours until drop, and `p` the entry's place.
        unsafe { &mut *self.t.entries[p].get() }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Release: what we wrote is seen by the next holder.
        self.t.locks[self.i].store(0, Ordering::Release);
    }
}

/// The entries inode `ino` may sit in (their indices).
fn set_of(ino: u64) -> core::ops::Range<usize> {
    let set = (ino.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & (ENTRIES / WAYS - 1);
    set * WAYS..set * WAYS + WAYS
}

/// The way of `ino`'s set that keeps it, by the inodes' array.
fn way_of(t: &Table, ino: u64) -> Option<usize> {
    set_of(ino).find(|&i| t.inos[i].load(Ordering::Relaxed) == ino)
}

/// The entry of `ino` of `mount` made under this process's current epoch,
/// held, if any.
fn held(mount: usize, ino: u64, wait: bool) -> Option<Held> {
    let t = TABLE.get()?;
    let e = t.lock(way_of(t, ino)?, wait)?;
    (e.refs != 0 && e.ino == ino && e.owner == metacache::owner(mount)).then_some(e)
}

/// In a forked child: frees the entry locks the parent's other threads
/// held at the fork. Those threads do not exist here, and a lock of theirs
/// would make the child's next `unref` of that inode wait forever; what
/// they were writing is of the parent's epoch, which the child never
/// trusts (see [`held`]). Only locks found held are written (a read does
/// not copy the page).
pub(crate) fn after_fork_child() {
    let Some(t) = TABLE.get() else {
        return;
    };
    for l in t.locks.iter().filter(|l| l.load(Ordering::Relaxed) != 0) {
        l.store(0, Ordering::Relaxed);
    }
}

/// Files opened before, as bits by a hash of mount and inode (a false
/// "yes" only keeps a file opened once).
static OPENED: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];

/// Whether this process opened file `ino` of `mount` before (as far as
/// [`OPENED`] tells); it has now.
pub(crate) fn opened_before(mount: usize, ino: u64) -> bool {
    let h = (ino ^ (mount as u64) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48;
    let (word, bit) = (&OPENED[(h >> 6) as usize % OPENED.len()], 1u64 << (h & 63));
    // Relaxed: a hint.
    word.load(Ordering::Relaxed) & bit != 0 || word.fetch_or(bit, Ordering::Relaxed) & bit != 0
}

/// Keeps handle `fh` of `mount`, just opened read-only by this process on
/// regular file `attr.ino` (its attributes under `stamp`) by the path
/// `named`, for later opens of that path. Whether it did, and so holds a
/// reference for the open file that holds `fh` (give it back with
/// [`unref`]); and a handle the entry held that no file shares any more,
/// for the caller to release.
pub(crate) fn keep(
    mount: usize,
    fh: u64,
    attr: &WireAttr,
    stamp: u64,
    named: &Named<'_>,
) -> (bool, Option<u64>) {
    keep_entry(mount, fh, attr, stamp, named, None)
}

/// Keeps handle `fh` of `mount` that the daemon opened read-only for this
/// process ahead of its open (`ops::OpenAhead`), with the file's bytes
/// `data`, all of them: like [`keep`], but no open file holds the handle
/// yet. Whether it did (if not, `fh` is the caller's to release); and a
/// handle the entry held that no file shares any more, for the caller to
/// release.
pub(crate) fn keep_ahead(
    mount: usize,
    fh: u64,
    attr: &WireAttr,
    stamp: u64,
    named: &Named<'_>,
    data: &[u8],
) -> (bool, Option<u64>) {
    if attr.size != data.len() as u64 {
        return (false, None);
    }
    keep_entry(mount, fh, attr, stamp, named, Some(data))
}

/// [`keep`] (`data` `None`: the caller's open file holds the handle) or
/// [`keep_ahead`].
fn keep_entry(
    mount: usize,
    fh: u64,
    attr: &WireAttr,
    stamp: u64,
    named: &Named<'_>,
    data: Option<&[u8]>,
) -> (bool, Option<u64>) {
    // Only small files: a kept handle keeps an unlinked file allocated
    // until the process lets it go (see `forget`).
    if stamp == 0
        || attr.size > DATA_MAX as u64
        || named.dir == 0
        || named.path.len() > metacache::KEY_MAX
    {
        return (false, None);
    }
    let Some(t) = TABLE.get_or_map() else {
        return (false, None);
    };
    if data.is_some() {
        populate_index(t);
    }
    let owner = metacache::owner(mount);
    // The whole set, under its ways' locks, or nothing kept (another thread
    // works in it): two threads keeping one file at once made it two
    // entries, and the close of the one whose entry `way_of` did not find
    // released a handle its entry still handed out (a read of a later open
    // of the path then failed with EBADF: 1 run in 20 of four threads
    // opening the same 1 000 files). Every write of an entry's inode is
    // under its lock, so under all of them the set's inodes are known.
    let mut ways = set_of(attr.ino).map(|i| t.lock(i, false));
    let mut set: [Option<Held>; WAYS] = core::array::from_fn(|_| ways.next().flatten());
    if set.iter().any(Option::is_none) {
        return (false, None);
    }
    // The inode's entry if it has one (taken only while no open file
    // shares its handle), else the way that costs least: an empty one,
    // one of an earlier epoch, one no open file shares (a handle some open
    // file shares stays: its closing gives it back).
    let cost = |e: &Held| match e.refs {
        0 => Some(0),
        _ if e.owner != owner => Some(1),
        1 => Some(2),
        _ => None,
    };
    let mine = set.iter().position(|e| {
        e.as_ref()
            .is_some_and(|e| e.refs != 0 && e.ino == attr.ino && e.owner == owner)
    });
    let chosen = match mine {
        Some(w) => set[w].as_ref().and_then(cost).map(|_| w),
        None => (0..WAYS)
            .filter_map(|w| set[w].as_ref().and_then(cost).map(|c| (c, w)))
            .min()
            .map(|(_, w)| w),
    };
    let Some(mut e) = chosen.and_then(|w| set[w].take()) else {
        return (false, None);
    };
    drop(set);
    // An earlier epoch's handle is not ours to give back.
    let old = (e.refs == 1 && e.owner == owner).then_some(e.fh);
    // The entry's own reference, and the open file's if there is one.
    e.refs = if data.is_some() { 1 } else { 2 };
    e.owner = owner;
    e.set_ino(attr.ino);
    e.fh = fh;
    e.stamp = stamp;
    e.attr = *attr;
    // Bytes opened ahead are read next: worth their page (an empty file
    // touches none).
    e.reopened = data.is_some();
    e.unused_ahead = data.is_some();
    e.len = data.map(|d| d.len() as u16);
    if let Some(d) = data.filter(|d| !d.is_empty()) {
        e.bytes_mut(d.len()).copy_from_slice(d);
    }
    e.base = named.base;
    e.dir = named.dir;
    e.path_len = named.path.len() as u8;
    e.path[..named.path.len()].copy_from_slice(named.path);
    // Into the slot that holds this entry or this tag, else an empty one,
    // else the first (that path then asks the daemon again).
    let h = path_hash(mount, named.base, named.path);
    let word = path_word(h, e.i);
    let same = |v: u32| v == word || v & 0xfff == e.i as u32 + 1 || v >> 12 == word >> 12;
    let slots = || path_slots(t, h);
    let slot = slots()
        .find(|s| same(s.load(Ordering::Relaxed)))
        .or_else(|| slots().find(|s| s.load(Ordering::Relaxed) == 0))
        .unwrap_or(&t.paths[h as usize & (PATHS - 1)]);
    slot.store(word, Ordering::Relaxed);
    (true, old)
}

/// Faults in, once, the table's index (inodes, locks, places and paths:
/// 15 pages that a process's kept files land on at random, at ~1.5 µs a
/// fault here, where `MADV_POPULATE_WRITE` takes ~0.5 µs a page) when files
/// start to be opened ahead (`ops::ahead`): a process that reads a
/// directory's files one by one keeps many. Entries and bytes come in as
/// written, in order. A kernel without `MADV_POPULATE_WRITE` (before 5.14)
/// refuses, and pages then come in one by one.
fn populate_index(t: &'static Table) {
    #[link_section = ".data.btfuse_hot"]
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.load(Ordering::Relaxed) || DONE.swap(true, Ordering::Relaxed) {
        return;
    }
    #[cfg(not(test))]
    let _ = crate::sys::sc!(
        libc::SYS_madvise,
        t as *const Table,
        core::mem::offset_of!(Table, entries),
        libc::MADV_POPULATE_WRITE
    );
    #[cfg(test)]
    let _ = t;
}

/// A read-only open of `path` relative to `base` of `mount`: the kept
/// handle of the file an earlier open of that path kept, its attributes
/// and stamp, if the path still names it and they still hold at `now()`,
/// the mount's generation (asked only when an entry is found; no change
/// since touched the directory's names or the file: see the module docs).
/// The caller's open file holds a reference from then ([`unref`]).
pub(crate) fn open(
    mount: usize,
    base: u64,
    path: &[u8],
    now: impl FnOnce() -> Option<Now>,
) -> Option<(u64, WireAttr, u64)> {
    let t = TABLE.get()?;
    let h = path_hash(mount, base, path);
    let tag = path_word(h, 0) >> 12;
    let i = path_slots(t, h)
        .map(|s| s.load(Ordering::Relaxed))
        .find(|&v| v != 0 && v >> 12 == tag)?;
    let mut e = t.lock((i & 0xfff) as usize - 1, false)?;
    let same = e.refs != 0
        && e.owner == metacache::owner(mount)
        && e.base == base
        && &e.path[..usize::from(e.path_len)] == path;
    if !same {
        return None;
    }
    let now = now().filter(|n| n.holds_for_name(e.stamp, e.dir, e.ino))?;
    e.stamp = now.gen;
    e.refs += 1;
    e.reopened = true;
    if e.unused_ahead {
        e.unused_ahead = false;
        // Relaxed: a count for a heuristic.
        AHEAD_USED.fetch_add(1, Ordering::Relaxed);
    }
    Some((e.fh, e.attr, e.stamp))
}

/// Files opened ahead that an open then used, so far.
#[link_section = ".data.btfuse_hot"]
static AHEAD_USED: AtomicU64 = AtomicU64::new(0);

/// How many files opened ahead ([`keep_ahead`]) an open has used so far in
/// this process (`ops::ahead` compares it with what it opened ahead).
pub(crate) fn ahead_used() -> u64 {
    AHEAD_USED.load(Ordering::Relaxed)
}

/// Whether a held entry of `ino` still holds at `now`; if so it is known
/// to hold under `now` from then (its next check is one compare).
fn holds(e: &mut Held, ino: u64, now: Now) -> bool {
    if !now.holds_for_long(e.stamp, ino) {
        return false;
    }
    e.stamp = now.gen;
    true
}

/// Gives back an open file's reference to handle `fh` of `ino`; whether
/// the caller must release `fh`: it was not the kept one, or it was and no
/// open file uses it any more while a change since touched the file (an
/// unlink, say: the kept handle would keep it allocated). `now()`: the
/// mount's generation, asked only then.
pub(crate) fn unref(mount: usize, ino: u64, fh: u64, now: impl FnOnce() -> Option<Now>) -> bool {
    let Some(mut e) = held(mount, ino, true) else {
        return true;
    };
    if e.fh != fh || e.refs < 2 {
        return true;
    }
    e.refs -= 1;
    if e.refs == 1 && (e.attr.nlink == 0 || !now().is_some_and(|n| holds(&mut e, ino, n))) {
        e.clear();
        return true;
    }
    false
}

/// Drops the kept handle of `ino` if no open file uses it: the handle, for
/// the caller to release. (One an open file uses goes at its last close.)
pub(crate) fn forget(mount: usize, ino: u64) -> Option<u64> {
    let mut e = held(mount, ino, false).filter(|e| e.refs == 1)?;
    let fh = e.fh;
    e.clear();
    Some(fh)
}

/// Keeps `data`, read from the start of file `ino` of `mount`, with the
/// file's attributes `attr` as they were under `stamp` (then the bytes
/// are the whole file, if its size is their length).
pub(crate) fn keep_data(mount: usize, ino: u64, attr: &WireAttr, stamp: u64, data: &[u8]) {
    if stamp == 0 || data.len() > DATA_MAX || attr.size != data.len() as u64 {
        return;
    }
    let Some(mut e) = held(mount, ino, false) else {
        return;
    };
    if !e.reopened || stamp < e.stamp {
        return;
    }
    // An unlinked file keeps its attributes only: its last close lets the
    // handle go (`unref`).
    e.attr = *attr;
    if attr.nlink == 0 {
        return;
    }
    e.stamp = stamp;
    e.len = Some(data.len() as u16);
    e.bytes_mut(data.len()).copy_from_slice(data);
}

/// Reads file `ino` of `mount` from `off` through `copy` (given the kept
/// bytes from `off` on; it returns how many it took), if its bytes are
/// kept and still hold at `now()`, the mount's generation, and the wall
/// clock `secs()` (both asked only when bytes are kept; see the module
/// docs); the count.
pub(crate) fn read(
    mount: usize,
    ino: u64,
    off: u64,
    now: impl FnOnce() -> Option<Now>,
    secs: impl FnOnce() -> i64,
    copy: impl FnOnce(&[u8]) -> usize,
) -> Option<usize> {
    let mut e = held(mount, ino, false)?;
    let len = usize::from(e.len?);
    if secs().saturating_sub(e.attr.atime) >= ATIME_DAY {
        return None;
    }
    if !now().is_some_and(|n| holds(&mut e, ino, n)) {
        return None;
    }
    let from = usize::try_from(off).unwrap_or(usize::MAX).min(len);
    Some(copy(&e.bytes(len)[from..]))
}

#[cfg(test)]
mod tests;
