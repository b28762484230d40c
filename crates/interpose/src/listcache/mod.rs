//! Listings kept whole: `stat` of a name in a directory this process
//! listed with attributes (a readdirplus) is answered from that listing,
//! kept as the daemon sent it (in name order) with a hash table of its
//! names (or, in a slot too full for one, a binary search).
//!
//! A tree walk (`find`, `du`, `ls -lR`, `git status` after the sibling
//! prefetch) lists each directory once and then stats each of its names
//! once. Kept as one `metacache` entry per name (two: by the directory's
//! handle and by its path) every name cost two inserts and a lookup, each
//! a cold line of a 4 MiB table: 35 µs of client time for a 100-entry
//! directory against 13 µs on tmpfs. A listing kept whole is written once,
//! in order, and searched while still in the CPU's cache.
//!
//! A slot answers exactly what the cache would (see `metacache`): only
//! while the mount's generation still is the listing's stamp, or its change
//! log says that no change since touched the directory's listing (which
//! covers its names and every listed entry's attributes), and the
//! process's credential epoch is the one it was listed under, and only for
//! a caller who may search the directory (the daemon stamps a listing
//! for no one else). A name's attributes answer `lstat`, and `stat` when
//! it is not a symlink. A listing that is the whole directory also
//! answers `ENOENT` for a name it lacks: a name missing from a directory
//! the caller can search is missing for `stat` and `lstat` alike.
//!
//! A slot is found by its directory: its inode number, for a name relative
//! to any fd of it (`fstatat(dirfd, name)`; fts reopens a directory by
//! `..` on its way back up, a new handle each time), and the path it was
//! opened by relative to a base (`lstat("dir/name")`), while nothing
//! changed since that open.
//! A key (its hash) leads to its slot through [`BUCKETS`] buckets; the
//! parts of a long listing are chained, the latest first.
//!
//! Memory: [`SLOTS`] slots of [`SLOT_WORDS`] words, mapped on the first
//! listing kept and faulted in as written, the longest unused reused first
//! (see `victim`: a walk's recent directories stay, and it is served by
//! the few slots whose pages it already faulted in); a slot is a
//! seqlock, so a process's threads search in parallel, and a writer that
//! finds a slot busy keeps nothing.

use core::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

use crate::fdtable::ATTR_WORDS;
use crate::lazy_table::LazyTable;
use crate::metacache::{self, Answer, Key, Now};
use crate::path::Padded;
use proto::WireAttr;

/// Listings kept at once: enough for a walk's depth times the threads
/// walking.
const SLOTS: usize = 32;
/// Words of a slot (256 KiB: the ~2 000 entries of a 64 KiB sibling
/// prefetch; a longer listing keeps the names that fit).
const SLOT_WORDS: usize = 1 << 15;
/// Longest name (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// Words of a record: its name's length, attributes, name.
const RECORD_MAX: usize = 1 + ATTR_WORDS + NAME_MAX.div_ceil(8);

/// A slot's words: header, then the records (name length, attributes,
/// name) upwards, and from the top down the index: one record offset per
/// name, in name order. One pass writes both.
#[repr(C, align(64))]
struct Slot {
    /// Odd while written.
    seq: AtomicU64,
    w: [AtomicU64; SLOT_WORDS - 1],
}

const H_STAMP: usize = 0;
/// `epoch | mount << 32`, as the cache's owner word.
const H_OWNER: usize = 1;
/// Names, with [`WHOLE`].
const H_COUNT: usize = 2;
/// The directory's inode number (0: unknown; inodes count from 1).
const H_INO: usize = 3;
/// The base and path (length, words) the directory was opened by
/// ([`NO_PATH`]: none).
const H_BASE: usize = 4;
const H_DIR_LEN: usize = 5;
/// The slot's two keys' hashes (by inode, by path; 0: none), and for each
/// the key ([`KeyIndex`]) kept before it under the same hash (an earlier
/// part of a long listing; [`NO_KEY`]: none).
const H_HASH: usize = 6;
const H_PREV: usize = 8;
/// Where the listing's hash table starts, and the log2 of its words
/// (`at | bits << 32`; 0: none, the index is searched instead).
const H_TABLE: usize = 10;
const H_DIR: usize = 11;
const H_RECORDS: usize = H_DIR + metacache::KEY_WORDS;
/// Where name `i`'s record offset is: `TOP - i`.
const TOP: usize = SLOT_WORDS - 2;

/// The word of a record's attributes that holds the mode, and its shift
/// (little-endian).
const MODE_WORD: usize = core::mem::offset_of!(WireAttr, mode) / 8;
const MODE_SHIFT: usize = core::mem::offset_of!(WireAttr, mode) % 8 * 8;

/// Bit of the count word: the listing is the whole directory.
const WHOLE: u64 = 1 << 63;
const NO_PATH: u64 = u64::MAX;
const NO_KEY: u64 = u64::MAX;

/// A kept key: `2 × slot`, plus 1 for the slot's key by path.
type KeyIndex = usize;
/// Buckets of keys (a power of two), and the run of them a key may sit in
/// from the one its hash picks: a lookup reads one line.
const BUCKETS: usize = 1024;
const PROBES: usize = 4;
/// Per bucket: a kept key, as its hash's high bits and, in the low byte,
/// [`TAGGED`] and the key index; 0 when empty. One per hash: a key kept
/// again under its hash takes its bucket.
static KEYS: [AtomicU64; BUCKETS] = [const { AtomicU64::new(0) }; BUCKETS];
const TAGGED: u64 = 0x80;
const _: () = assert!(2 * SLOTS <= 0x40 && BUCKETS.is_multiple_of(PROBES));

/// The first of the buckets key hash `h` may sit in.
fn first_bucket(h: u64) -> usize {
    ((h >> 40) as usize % BUCKETS) & !(PROBES - 1)
}

/// The buckets key hash `h` may sit in: an aligned run (one line).
fn buckets(h: u64) -> impl Iterator<Item = &'static AtomicU64> {
    let first = first_bucket(h);
    KEYS[first..first + PROBES].iter()
}

/// The key kept under hash `h`, if any.
fn kept_key(h: u64) -> Option<KeyIndex> {
    buckets(h).find_map(|b| tagged(b.load(Ordering::Relaxed), h))
}

/// The bucket for a key of hash `h`: the one it sits in, else a free one,
/// else one whose key its slot no longer holds, else the first.
fn bucket_for(t: &Table, h: u64) -> &'static AtomicU64 {
    let held = |v: u64| {
        let j = (v & 0x3f) as usize;
        t[j / 2].w[H_HASH + j % 2].load(Ordering::Relaxed) & !0xff == v & !0xff
    };
    let load = |b: &&AtomicU64| b.load(Ordering::Relaxed);
    buckets(h)
        .find(|b| tagged(load(b), h).is_some())
        .or_else(|| buckets(h).find(|b| load(b) == 0))
        .or_else(|| buckets(h).find(|b| !held(load(b))))
        .unwrap_or(&KEYS[first_bucket(h)])
}

fn tag(h: u64, j: KeyIndex) -> u64 {
    (h & !0xff) | TAGGED | j as u64
}

/// The key index a bucket word holds for hash `h`, if it is for `h`.
fn tagged(v: u64, h: u64) -> Option<KeyIndex> {
    (v & TAGGED != 0 && v & !0xff == h & !0xff).then_some((v & 0x3f) as usize)
}

/// Listings kept so far (a clock for [`LAST_USE`]).
static KEPT: AtomicU64 = AtomicU64::new(0);
/// Per slot: the [`KEPT`] count when it was last written or answered a
/// lookup; 0 while it was never written.
static LAST_USE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Listings kept since a slot was last used after which it may be reused
/// while slots never written remain, per thread keeping listings: a
/// walk's directory and the few before it keep their listings (a parent
/// asked again on the way back up), and so does each of the threads that
/// walk at once (the 20 of a `git status`, each in its own directories:
/// with 8 for all of them, a thread's listing was taken by the others'
/// before it used it, and its next 64 `stat`s asked the daemon, 13–245 a
/// run instead of 12).
const RECENT: u64 = 8;

/// The stack regions (see [`walkers`]) of the threads that kept the last
/// listings, in turn.
static KEEPERS: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];

/// How many threads kept the last 16 listings (by their stacks, megabytes
/// apart; at least 1): the walks going on at once.
fn walkers(now: u64) -> u64 {
    let here = 0u8;
    let me = core::ptr::addr_of!(here) as u64 >> 21;
    // Relaxed: hints; any count is correct.
    KEEPERS[now as usize % KEEPERS.len()].store(me, Ordering::Relaxed);
    let seen: [u64; 16] = core::array::from_fn(|i| KEEPERS[i].load(Ordering::Relaxed));
    let distinct = (0..seen.len())
        .filter(|&i| seen[i] != 0 && !seen[..i].contains(&seen[i]))
        .count();
    distinct.max(1) as u64
}

/// The slot to reuse: the one longest unused among those written before,
/// unless one of the last [`RECENT`] listings a walker needed it; else one
/// never written; else the one longest unused. A slot first written faults
/// its pages in (~20 µs a 100-name listing): a walk that took the slots
/// round robin paid that for each of them, 0.7 ms of a `find` over 10 000
/// files, where a handful of slots serve it.
fn victim() -> usize {
    let now = KEPT.fetch_add(1, Ordering::Relaxed) + 1;
    let recent = RECENT * walkers(now);
    let (mut oldest, mut oldest_at, mut fresh) = (0, u64::MAX, None);
    for (s, at) in LAST_USE.iter().enumerate() {
        // Relaxed: hints; any choice is correct.
        match at.load(Ordering::Relaxed) {
            0 => {
                fresh.get_or_insert(s);
            }
            at if at < oldest_at => (oldest, oldest_at) = (s, at),
            _ => {}
        }
    }
    match fresh {
        Some(f) if now.saturating_sub(oldest_at) <= recent || oldest_at == u64::MAX => f,
        _ => oldest,
    }
}

/// Notes that slot `s` was written or answered a lookup.
fn used(s: usize) {
    let now = KEPT.load(Ordering::Relaxed);
    if LAST_USE[s].load(Ordering::Relaxed) != now {
        LAST_USE[s].store(now.max(1), Ordering::Relaxed);
    }
}

// SAFETY: an all-zero table is valid (atomics).
#[link_section = ".data.btfuse_hot"]
static TABLE: LazyTable<Table> = unsafe { LazyTable::new() };

type Table = [Slot; SLOTS];

fn table() -> Option<&'static Table> {
    TABLE.get()
}

/// Whether a listing was ever kept (until then no lookup can hit).
pub(crate) fn in_use() -> bool {
    table().is_some()
}

/// Word `k` of `name`, big-endian so that comparing words compares bytes
/// (names hold no NUL, so the zero padding sorts a prefix first).
fn name_word(name: &[u8], k: usize) -> u64 {
    Padded::plain(name).be_word(k)
}

/// Marks the base of an inode number's key: never a handle's.
const BY_INO: u64 = 1 << 63;

/// The hash of a name given as its words (`name_word`), as the slots'
/// hash tables keep it: never 0. Finished with murmur3's 64-bit mix: a
/// product carries a word's bits only upwards, and short names differ in
/// their high bytes (big-endian words), so without it the 100 names
/// `f00`..`f99` took 23 probes each on average in a 256-word table
/// instead of 0.3 (every lookup and every insert of such a listing).
fn name_hash(words: impl Iterator<Item = u64>) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = words.fold(0x243f_6a88_85a3_08d3, |h, w| {
        let h = (h ^ w).wrapping_mul(K);
        h ^ (h >> 29)
    });
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 32) as u32 | 1
}

/// Where a name of hash `h` is first looked for in a slot's hash table
/// (masked by the table's size): above the bit `name_hash` always sets,
/// or every name would start at an odd place and half the table would
/// serve only as overflow.
fn first_probe(h: u32) -> usize {
    (h >> 1) as usize
}

/// Builds, at word `at` of `slot` (past its `n` records, below their
/// index), a hash table of the records by name: 2 to 4 words a name, each
/// `offset << 32 | name_hash`, so that a lookup reads one or two words and
/// one record instead of searching the index (seven probes of two lines
/// each in a 100-name directory). `H_TABLE`'s word, 0 if it does not fit.
fn hash_table(slot: &Slot, at: usize, n: usize) -> u64 {
    let size = (2 * n).max(2).next_power_of_two();
    if n == 0 || at + size > TOP + 1 - n {
        return 0;
    }
    let w = |i: usize| slot.w[i].load(Ordering::Relaxed);
    for i in 0..size {
        slot.w[at + i].store(0, Ordering::Relaxed);
    }
    for i in 0..n {
        let r = w(TOP - i) as usize;
        let words = (w(r) as usize).div_ceil(8);
        let h = name_hash((0..words).map(|k| w(r + 1 + ATTR_WORDS + k)));
        let mut p = first_probe(h);
        while w(at + (p & (size - 1))) != 0 {
            p += 1;
        }
        slot.w[at + (p & (size - 1))].store((r as u64) << 32 | u64::from(h), Ordering::Relaxed);
    }
    at as u64 | u64::from(size.trailing_zeros()) << 32
}

/// The hash of directory `dir` relative to `base` on `mount` (never 0);
/// `dir_hash(mount, ino | BY_INO, b"")` is that of inode `ino`.
fn dir_hash(mount: usize, base: u64, dir: &[u8]) -> u64 {
    dir_hash_of_words(
        mount,
        base,
        dir.chunks(8).map(metacache::key_word),
        dir.len(),
    )
}

/// [`dir_hash`] of a directory given as its `len` bytes' words
/// (`metacache::key_word`).
fn dir_hash_of_words(mount: usize, base: u64, words: impl Iterator<Item = u64>, len: usize) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (0xcbf2_9ce4_8422_2325 ^ base).wrapping_mul(K) ^ mount as u64;
    for w in words {
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 32;
    }
    (h ^ len as u64).wrapping_mul(K) | 1
}

/// The directory a listing is kept under.
pub(crate) struct ListedDir<'a> {
    pub(crate) mount: usize,
    /// Its inode number, if known.
    pub(crate) ino: Option<u64>,
    /// The base and path it was opened by, if they still name it (nothing
    /// changed between that open and the listing).
    pub(crate) path: Option<(u64, &'a [u8])>,
}

/// A listing's answer for a name: the answer, and the directory's inode
/// number (0 if unknown).
pub(crate) struct Hit {
    pub(crate) answer: Answer,
    pub(crate) dir_ino: u64,
}

/// Keeps a listing's named entries (`name`, attributes as the listing's
/// record holds them: a `WireAttr`'s bytes) in name order,
/// stamped `stamp` (0: not to be kept); `from_start`: the listing began at
/// the directory's start (it then replaces what was kept of the
/// directory); `whole`: it also reached its end. Entries out of order
/// keep nothing.
pub(crate) fn keep<'n>(
    dir: &ListedDir<'_>,
    entries: impl Iterator<Item = (&'n [u8], &'n [u8])>,
    stamp: u64,
    from_start: bool,
    whole: bool,
) -> Option<usize> {
    let path = dir.path.filter(|(_, p)| p.len() <= metacache::KEY_MAX);
    if stamp == 0 || (dir.ino.is_none() && path.is_none()) {
        return None;
    }
    let t = TABLE.get_or_map()?;
    let hashes = [
        dir.ino.map_or(0, |i| dir_hash(dir.mount, i | BY_INO, b"")),
        path.map_or(0, |(b, p)| dir_hash(dir.mount, b, p)),
    ];
    // A listing from the start replaces the one kept of the directory.
    let same = from_start
        .then(|| {
            hashes
                .iter()
                .filter(|&&h| h != 0)
                .find_map(|&h| kept_key(h))
        })
        .flatten();
    let s = same.map_or_else(victim, |j| j / 2);
    used(s);
    let slot = &t[s];
    let seq = slot.seq.load(Ordering::Relaxed);
    if seq & 1 != 0
        || slot
            .seq
            .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return None;
    }
    ANSWERED[s].store(false, Ordering::Relaxed);
    // Lookups stop finding the slot by its old keys before its words
    // change (a bucket since taken by another key stays).
    for k in 0..2 {
        let old = slot.w[H_HASH + k].load(Ordering::Relaxed);
        if old != 0 {
            let taken = tag(old, 2 * s + k);
            for b in buckets(old) {
                let _ = b.compare_exchange(taken, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }
    // Release fence: the odd count is visible before any word changes.
    fence(Ordering::Release);
    let set = |i: usize, v: u64| slot.w[i].store(v, Ordering::Relaxed);
    let (mut at, mut kept, mut ordered, mut all) = (H_RECORDS, 0usize, true, true);
    let mut last: &[u8] = b"";
    for (name, attr) in entries {
        if name == b"." || name == b".." || name.len() > NAME_MAX || attr.len() != ATTR_WORDS * 8 {
            continue;
        }
        if kept > 0 && name <= last {
            ordered = false;
            break;
        }
        let words = name.len().div_ceil(8);
        let len = 1 + ATTR_WORDS + words;
        if at + len > TOP - kept {
            all = false;
            break;
        }
        set(TOP - kept, at as u64);
        set(at, name.len() as u64);
        // Word by word from the record (a `WireAttr` is its words, as
        // `metacache::attr_words` reads it), not through a decoded copy.
        for (i, w) in attr.chunks_exact(8).take(ATTR_WORDS).enumerate() {
            set(
                at + 1 + i,
                u64::from_ne_bytes(w.try_into().unwrap_or_default()),
            );
        }
        for k in 0..words {
            set(at + 1 + ATTR_WORDS + k, name_word(name, k));
        }
        last = name;
        at += len;
        kept += 1;
    }
    let whole = whole && all;
    set(H_TABLE, hash_table(slot, at, kept));
    set(H_STAMP, stamp);
    set(H_OWNER, metacache::owner(dir.mount));
    set(H_COUNT, kept as u64 | if whole { WHOLE } else { 0 });
    set(H_INO, dir.ino.unwrap_or(0));
    for (k, &h) in hashes.iter().enumerate() {
        set(H_HASH + k, if ordered { h } else { 0 });
        let prev = (h != 0).then(|| kept_key(h)).flatten();
        set(
            H_PREV + k,
            prev.filter(|&j| j / 2 != s).map_or(NO_KEY, |j| j as u64),
        );
    }
    match path {
        Some((base, p)) => {
            set(H_BASE, base);
            set(H_DIR_LEN, p.len() as u64);
            for (i, c) in p.chunks(8).enumerate() {
                set(H_DIR + i, metacache::key_word(c));
            }
        }
        None => set(H_DIR_LEN, NO_PATH),
    }
    // Release: the words above are visible before the even count.
    slot.seq.store(seq + 2, Ordering::Release);
    if ordered {
        for (k, &h) in hashes.iter().enumerate().filter(|(_, &h)| h != 0) {
            bucket_for(t, h).store(tag(h, 2 * s + k), Ordering::Relaxed);
        }
    }
    Some(s)
}

/// Whether slot `s` answered a lookup since it was last written.
static ANSWERED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// Whether the listing [`keep`] put in slot `s` has answered no lookup
/// yet (it may since have been replaced: a hint).
pub(crate) fn unanswered(s: usize) -> bool {
    ANSWERED.get(s).is_some_and(|a| !a.load(Ordering::Relaxed))
}

/// The answer a kept listing gives for `key` (a `stat` or `lstat` of a
/// path relative to a base whose inode number is `base_ino`, 0 if
/// unknown) if it still holds at the mount's generation `now`.
pub(crate) fn lookup(key: &Key<'_>, base_ino: u64, now: Now) -> Option<Answer> {
    lookup_hit(key, base_ino, now).map(|h| h.answer)
}

/// [`lookup`], with where the answer came from.
pub(crate) fn lookup_hit(key: &Key<'_>, base_ino: u64, now: Now) -> Option<Hit> {
    let t = table()?;
    if key.base == metacache::RAW || key.path.len() > metacache::KEY_MAX {
        return None;
    }
    let (dir, name) = dir_and_name(key.path)?;
    let by_ino = (dir.is_empty() && base_ino != 0).then_some(base_ino);
    by_ino
        .and_then(|ino| find(t, key, Dir::Ino(ino), Padded::plain(name), now))
        .or_else(|| find(t, key, Dir::Path(dir), Padded::plain(name), now))
}

/// A path's directory part (empty for a bare name) and its last
/// component, if that is a name a listing holds (not `.` or `..`).
fn dir_and_name(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let (dir, name) = crate::path::split_last(path);
    let named = !(name.is_empty() || name == b"." || name == b".." || name.len() > NAME_MAX);
    named.then_some((dir, name))
}

/// A directory as a lookup names it.
#[derive(Clone, Copy)]
enum Dir<'a> {
    Ino(u64),
    /// A path relative to the key's base.
    Path(&'a [u8]),
}

/// The answer the listings kept of `dir` give for `name`.
fn find(t: &Table, key: &Key<'_>, dir: Dir<'_>, name: Padded<'_>, now: Now) -> Option<Hit> {
    let h = match dir {
        Dir::Ino(ino) => dir_hash(key.mount, ino | BY_INO, b""),
        Dir::Path(p) => dir_hash(key.mount, key.base, p),
    };
    let mut j = kept_key(h)?;
    // The key's listings, the latest first: at most one per slot.
    for _ in 0..SLOTS {
        match search(&t[j / 2], h, key, dir, name, now) {
            Found::Answer(hit) => {
                used(j / 2);
                // A load first: the threads of a walk read the flag, once
                // set, without taking its line from each other.
                if !ANSWERED[j / 2].load(Ordering::Relaxed) {
                    ANSWERED[j / 2].store(true, Ordering::Relaxed);
                }
                return Some(hit);
            }
            Found::Earlier(prev) => j = prev,
            Found::Nothing => return None,
        }
    }
    None
}

/// What a slot says of a name.
enum Found {
    Answer(Hit),
    /// Not in this part of the listing: try the key kept before it.
    Earlier(KeyIndex),
    Nothing,
}

/// Looks for `name` in `slot` if it holds (part of) the listing of `dir`,
/// whose key's hash is `h`, and the listing still holds at `now`.
fn search(slot: &Slot, h: u64, key: &Key<'_>, dir: Dir<'_>, name: Padded<'_>, now: Now) -> Found {
    let w = |i: usize| slot.w[i.min(SLOT_WORDS - 2)].load(Ordering::Relaxed);
    // Acquire: the words read below are at least as new as this count.
    let s1 = slot.seq.load(Ordering::Acquire);
    let k = usize::from(matches!(dir, Dir::Path(_)));
    if s1 & 1 != 0 || w(H_HASH + k) != h || w(H_OWNER) != metacache::owner(key.mount) {
        return Found::Nothing;
    }
    let stamp = w(H_STAMP);
    let mine = match dir {
        Dir::Path(p) => {
            w(H_BASE) == key.base
                && w(H_DIR_LEN) == p.len() as u64
                && p.chunks(8)
                    .enumerate()
                    .all(|(i, c)| w(H_DIR + i) == metacache::key_word(c))
        }
        Dir::Ino(ino) => w(H_INO) == ino,
    };
    if !mine {
        return Found::Nothing;
    }
    let prev = w(H_PREV + k);
    let ino = w(H_INO);
    let count = w(H_COUNT);
    let found = match w(H_TABLE) {
        0 => find_sorted(&w, (count & !WHOLE) as usize, name),
        table => find_hashed(&w, table, name),
    };
    let (answer, symlink) = match found {
        Some(r) => {
            let attr = metacache::attr_of_words(core::array::from_fn(|i| w(r + 1 + i)));
            // The mode by a load of its own: taken from `attr`, it had the
            // compiler store that word in two halves, and the caller's
            // copy of the answer then waited on them (a load of one word
            // is not forwarded from two stores).
            let mode = (w(r + 1 + MODE_WORD) >> MODE_SHIFT) as u32;
            (Some(Ok(attr)), mode & libc::S_IFMT == libc::S_IFLNK)
        }
        None if count & WHOLE != 0 => (Some(Err(libc::ENOENT)), false),
        None => (None, false),
    };
    // Acquire fence: the reads above happen before the re-check of `seq`.
    fence(Ordering::Acquire);
    if slot.seq.load(Ordering::Relaxed) != s1 || !now.listing_holds(stamp, ino) {
        return Found::Nothing;
    }
    match answer {
        // A listing's attributes are `lstat`'s answers, `stat`'s too
        // unless a symlink (the cache's rule: `metacache::reuse`).
        Some(answer) if metacache::reuse_as(metacache::NOFOLLOW, symlink) & key.how == key.how => {
            Found::Answer(Hit {
                answer,
                dir_ino: ino,
            })
        }
        Some(_) => Found::Nothing,
        None if prev < 2 * SLOTS as u64 => Found::Earlier(prev as usize),
        None => Found::Nothing,
    }
}

/// The record of `name` in a slot read through `w`, by its hash table
/// (`H_TABLE`'s word `table`).
fn find_hashed(w: &impl Fn(usize) -> u64, table: u64, name: Padded<'_>) -> Option<usize> {
    // Bounded so that a torn read stays in the slot (the caller's re-check
    // of `seq` then discards what it found).
    let size = 1usize << ((table >> 32) as usize).min(15);
    let at = (table as u32 as usize).min(SLOT_WORDS - 1 - size);
    let words = name.path().len().div_ceil(8);
    let h = name_hash((0..words).map(|k| name.be_word(k)));
    let p = first_probe(h);
    (p..p + size)
        .map(|p| w(at + (p & (size - 1))))
        .take_while(|&e| e != 0)
        .filter(|&e| e as u32 == h)
        .map(|e| ((e >> 32) as usize).min(SLOT_WORDS - 1 - RECORD_MAX))
        .find(|&r| {
            w(r) as usize == name.path().len()
                && (0..words).all(|k| w(r + 1 + ATTR_WORDS + k) == name.be_word(k))
        })
}

/// The record of `name` among the `n` records of a slot read through `w`,
/// by a binary search of their index (for a slot too full for a table).
fn find_sorted(w: &impl Fn(usize) -> u64, n: usize, name: Padded<'_>) -> Option<usize> {
    // Bounded as in `find_hashed`.
    let n = n.min(TOP - H_RECORDS);
    let record = |i: usize| (w(TOP - i) as usize).min(SLOT_WORDS - 1 - RECORD_MAX);
    // Words past a name's end are zero, its and ours: compared up to the
    // longer of the two.
    let ours = name.path().len().div_ceil(8);
    let compare = |i: usize| {
        let r = record(i);
        let theirs = (w(r) as usize).min(NAME_MAX).div_ceil(8);
        let word = |k: usize| {
            if k < theirs {
                w(r + 1 + ATTR_WORDS + k)
            } else {
                0
            }
        };
        (0..theirs.max(ours))
            .map(|k| word(k).cmp(&name.be_word(k)))
            .find(|o| o.is_ne())
            .unwrap_or(core::cmp::Ordering::Equal)
    };
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match compare(mid) {
            core::cmp::Ordering::Less => lo = mid + 1,
            core::cmp::Ordering::Greater => hi = mid,
            core::cmp::Ordering::Equal => return Some(record(mid)),
        }
    }
    None
}

mod by_string;

pub(crate) use by_string::{lookup_raw, note_raw_dir};

#[cfg(test)]
mod tests;
