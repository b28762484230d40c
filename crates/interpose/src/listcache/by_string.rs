//! Directories by the absolute path string a caller named them with:
//! `ls -l` of a tree names every file by its whole path, and asks for
//! `lstat` and then `lgetxattr` of each by that string. A string whose
//! directory part is remembered here (with the directory's inode number)
//! is answered by that directory's listing after a hash of the string and
//! one compare, with no resolution and without keeping an answer per name
//! under its string in the cache (a line of its 4 MiB table each, and
//! the table's pages faulted in).
//!
//! Direct-mapped by the directory string's hash; an entry holds while no
//! change since its stamp reached past the inodes its string named (see
//! `metacache::Now::paths_hold`) and the credential epoch is its owner's;
//! the listing it leads to, while that holds. A seqlock each: a writer that
//! finds an entry busy remembers nothing.
//!
//! So are the names of a listing the sibling prefetch brought (a walk by
//! names, `find -exec stat {} +`, or a loop over known names): an entry per
//! name made a one-shot `stat` process fault in the cache's table (~1 ms),
//! and a loop's second pass was no faster through it (144 against 128-210
//! ns a `stat`, 1 000 names).

use super::*;

/// Entries of the table.
pub(super) const DIR_STRING_SLOTS: usize = 64;

#[repr(C, align(64))]
struct DirString {
    /// Odd while written.
    seq: AtomicU64,
    /// The string's hash (`dir_hash` on the raw base; never 0 once set).
    hash: AtomicU64,
    stamp: AtomicU64,
    /// `metacache::owner` of the mount (which its high half is).
    owner: AtomicU64,
    ino: AtomicU64,
    len: AtomicU64,
    words: [AtomicU64; metacache::KEY_WORDS],
}

static DIR_STRINGS: [DirString; DIR_STRING_SLOTS] = [const {
    DirString {
        seq: AtomicU64::new(0),
        hash: AtomicU64::new(0),
        stamp: AtomicU64::new(0),
        owner: AtomicU64::new(0),
        ino: AtomicU64::new(0),
        len: AtomicU64::new(0),
        words: [const { AtomicU64::new(0) }; metacache::KEY_WORDS],
    }
}; DIR_STRING_SLOTS];

/// Set once a directory string is remembered: until then a lookup by
/// string has nothing to find (a stat loop over names the prefetch
/// brought never remembers one, and pays one load here).
#[link_section = ".data.btfuse_hot"]
static ANY_DIR_STRING: AtomicBool = AtomicBool::new(false);

/// The entry a directory string of hash `h` (a [`dir_hash`]) may sit in:
/// by the hash's high bits, as the buckets are (its low bit is always
/// set, so `h % DIR_STRING_SLOTS` used only the odd half).
fn dir_string(h: u64) -> &'static DirString {
    &DIR_STRINGS[slot_of(h)]
}

/// The index of that entry.
pub(super) fn slot_of(h: u64) -> usize {
    (h >> 40) as usize % DIR_STRING_SLOTS
}

/// A path string's directory part and name, if the name is one a listing
/// can answer for (the directory not the root, nor the cwd).
fn split_raw(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    dir_and_name(raw).filter(|(dir, _)| !dir.is_empty() && dir.len() <= metacache::KEY_MAX)
}

/// Remembers that the directory part of the path string `raw` (absolute,
/// `base` `metacache::RAW`, or relative to the cwd, `base` its raw base:
/// see `ops::stat_abs`) names directory `ino` of `mount` while the
/// generation is `stamp` (a listing of that directory just answered for
/// the string's name).
pub(crate) fn note_raw_dir(base: u64, raw: &[u8], mount: usize, ino: u64, stamp: u64) {
    let Some((dir, _)) = split_raw(raw).filter(|_| ino != 0 && stamp != 0) else {
        return;
    };
    let h = dir_hash(0, base, dir);
    let e = &dir_string(h);
    let owner = metacache::owner(mount);
    let seq = e.seq.load(Ordering::Relaxed);
    let same = e.hash.load(Ordering::Relaxed) == h
        && e.stamp.load(Ordering::Relaxed) == stamp
        && e.owner.load(Ordering::Relaxed) == owner
        && e.ino.load(Ordering::Relaxed) == ino;
    // A directory's every name after the first finds it remembered: no
    // write, the line stays shared between threads.
    if same
        || seq & 1 != 0
        || e.seq
            .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if !ANY_DIR_STRING.load(Ordering::Relaxed) {
        ANY_DIR_STRING.store(true, Ordering::Relaxed);
    }
    // Release fence: the odd count is visible before any word changes.
    fence(Ordering::Release);
    e.hash.store(h, Ordering::Relaxed);
    e.stamp.store(stamp, Ordering::Relaxed);
    e.owner.store(owner, Ordering::Relaxed);
    e.ino.store(ino, Ordering::Relaxed);
    e.len.store(dir.len() as u64, Ordering::Relaxed);
    for (w, c) in e.words.iter().zip(dir.chunks(8)) {
        w.store(metacache::key_word(c), Ordering::Relaxed);
    }
    e.seq.store(seq + 2, Ordering::Release);
}

/// The answer a kept listing gives for the path string `raw` of raw base
/// `base` (`how`: `stat` or `lstat`) through its remembered directory (see
/// [`note_raw_dir`]), with the mount's index; `now` tells a mount's
/// current generation.
pub(crate) fn lookup_raw(
    base: u64,
    padded: Padded<'_>,
    how: u64,
    now: impl Fn(usize) -> Option<Now>,
) -> Option<(usize, Hit)> {
    if !ANY_DIR_STRING.load(Ordering::Relaxed) {
        return None;
    }
    let t = table()?;
    let (dir, name) = split_raw(padded.path())?;
    // The string's words, made once for the hash and the compare.
    let n = dir.len().div_ceil(8);
    let mut words = [0; metacache::KEY_WORDS];
    for (i, w) in words[..n].iter_mut().enumerate() {
        *w = padded.le_word(i, dir.len());
    }
    let h = dir_hash_of_words(0, base, words[..n].iter().copied(), dir.len());
    let e = &dir_string(h);
    // Acquire: the words read below are at least as new as this count.
    let s1 = e.seq.load(Ordering::Acquire);
    if s1 & 1 != 0
        || e.hash.load(Ordering::Relaxed) != h
        || e.len.load(Ordering::Relaxed) != dir.len() as u64
    {
        return None;
    }
    let same = (0..n).all(|i| e.words[i].load(Ordering::Relaxed) == words[i]);
    let (stamp, owner, ino) = (
        e.stamp.load(Ordering::Relaxed),
        e.owner.load(Ordering::Relaxed),
        e.ino.load(Ordering::Relaxed),
    );
    // Acquire fence: the reads above happen before the re-check of `seq`.
    fence(Ordering::Acquire);
    let mount = (owner >> 32) as usize;
    if !same || e.seq.load(Ordering::Relaxed) != s1 || owner != metacache::owner(mount) {
        return None;
    }
    // Which directory the string names holds while no change since reached
    // past the inodes it named (a directory moved or made unsearchable);
    // its listing, while nothing touched it.
    let now = now(mount).filter(|n| n.paths_hold(stamp))?;
    let key = Key {
        mount,
        base: 0,
        path: name,
        how,
    };
    let name = padded.tail(dir.len() + 1);
    find(t, &key, Dir::Ino(ino), name, now).map(|hit| (mount, hit))
}
