//! Where a walk goes next: a process that lists a directory and then the
//! directories in it (`find`, `du`, `ls -R`, `git status`'s untracked
//! scan, python's `os.walk`) opens, after a directory, its first
//! subdirectory, else the next subdirectory of its parent. `dir` asks
//! for that directory ahead (`channel::AheadKey`) while the process still
//! works on the one before; what is remembered here is the order of the
//! subdirectories of the last directories listed (their parents' listings
//! are long gone from the stream, and often from the listing cache, by the
//! time a walk comes back to them) and whether the guesses are taken.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::trylock::TryLock;

/// Directories whose subdirectories are remembered: a walk's ancestors
/// and the directories below them still walked (`.git`'s few levels before
/// the work tree's directories).
const DIRS: usize = 16;
/// Bytes of names remembered per directory (each with a length byte).
const NAMES: usize = 4096;

/// The subdirectories of one directory, in listing order, and where the
/// directory itself is (when known): entry `name` of directory `parent`.
struct Subdirs {
    ino: u64,
    /// When it was last written or read ([`Remembered::clock`]).
    used_at: u64,
    parent: u64,
    name_len: usize,
    name: [u8; NAME_MAX],
    used: usize,
    names: [u8; NAMES],
}

/// Longest name.
const NAME_MAX: usize = 255;

struct Remembered {
    dirs: [Subdirs; DIRS],
    /// Counts writes and reads: the entry longest unused is replaced (a
    /// walk's ancestors are read at the end of each subtree below them,
    /// a finished subtree's directories never again).
    clock: u64,
}

static REMEMBERED: TryLock<Remembered> = TryLock::new(Remembered {
    dirs: [const {
        Subdirs {
            ino: 0,
            used_at: 0,
            parent: 0,
            name_len: 0,
            name: [0; NAME_MAX],
            used: 0,
            names: [0; NAMES],
        }
    }; DIRS],
    clock: 0,
});

/// Runs `f` on what is remembered, unless another thread is at it (these
/// are hints: nothing waits for them).
fn with<T>(f: impl FnOnce(&mut Remembered) -> T) -> Option<T> {
    let mut held = REMEMBERED.try_lock()?;
    Some(f(&mut held))
}

/// Remembers `subdirs` (names, in listing order) as the subdirectories of
/// directory `ino`, as many as fit, and that it is entry `name` of
/// directory `parent` (0, empty: not known).
pub(crate) fn remember<'a>(
    ino: u64,
    (parent, name): (u64, &[u8]),
    subdirs: impl Iterator<Item = &'a [u8]>,
) {
    with(|r| {
        let i = match r.dirs.iter().position(|d| d.ino == ino) {
            Some(i) => i,
            None => (0..DIRS).min_by_key(|&i| r.dirs[i].used_at).unwrap_or(0),
        };
        r.clock += 1;
        let d = &mut r.dirs[i];
        let known = !name.is_empty() && name.len() <= NAME_MAX && parent != 0;
        if known {
            d.parent = parent;
            d.name_len = name.len();
            d.name[..name.len()].copy_from_slice(name);
        } else if d.ino != ino {
            // Where it is, unknown; kept for a directory listed again.
            d.parent = 0;
            d.name_len = 0;
        }
        d.ino = ino;
        d.used_at = r.clock;
        d.used = 0;
        for name in subdirs {
            let end = d.used + 1 + name.len();
            if end > NAMES || name.len() > usize::from(u8::MAX) {
                break;
            }
            d.names[d.used] = name.len() as u8;
            d.names[d.used + 1..end].copy_from_slice(name);
            d.used = end;
        }
    });
}

/// Where a walk that just went through entry `name` of directory `dir`
/// (and all below it) goes next: the subdirectory after `name` in `dir`,
/// else the one after `dir` in its parent, and so on up as far as the
/// directories are remembered. Copied into `out`: its length, the
/// directory it is in, and how many levels above `dir` that is.
pub(crate) fn next_after(dir: u64, name: &[u8], out: &mut [u8]) -> Option<(usize, u64, usize)> {
    with(|r| {
        let mut me = [0u8; NAME_MAX];
        let mut me_len = name.len().min(NAME_MAX);
        me[..me_len].copy_from_slice(&name[..me_len]);
        let mut dir = dir;
        for up in 0..DIRS {
            r.clock += 1;
            let d = r.dirs.iter_mut().find(|d| d.ino == dir && dir != 0)?;
            d.used_at = r.clock;
            let mut names = Names {
                bytes: &d.names[..d.used],
            };
            names.find(|&n| n == &me[..me_len])?;
            if let Some(next) = names.next() {
                out.get_mut(..next.len())?.copy_from_slice(next);
                return Some((next.len(), dir, up));
            }
            // Past the last: on from where `dir` is in its parent.
            if d.parent == 0 {
                return None;
            }
            me_len = d.name_len;
            me[..me_len].copy_from_slice(&d.name[..me_len]);
            dir = d.parent;
        }
        None
    })
    .flatten()
}

/// The names of a [`Subdirs`], in order.
struct Names<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for Names<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.bytes.split_first()?;
        let (name, rest) = rest.split_at_checked(usize::from(len))?;
        self.bytes = rest;
        Some(name)
    }
}

/// Guesses not taken in a row after which a process stops asking ahead
/// (its walk goes in another order, or it opens no more directories).
const MISSES: u32 = 4;
static MISSED: AtomicU32 = AtomicU32::new(0);

/// Whether to ask for the next directory ahead.
pub(crate) fn guessing() -> bool {
    // Relaxed: a hint; either answer is correct.
    MISSED.load(Ordering::Relaxed) < MISSES
}

/// Notes whether a directory asked for ahead was the one opened next.
pub(crate) fn guessed(taken: bool) {
    crate::metacache::count_ahead(taken);
    let missed = MISSED.load(Ordering::Relaxed);
    let now = if taken { 0 } else { missed.saturating_add(1) };
    if now != missed {
        MISSED.store(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_subdirectory_follows_the_one_named_or_its_parent() {
        // 7 holds a, bb, c; 9 is 7's "bb" and holds x, y.
        let top: [&[u8]; 3] = [b"a", b"bb", b"c"];
        remember(7, (0, b""), top.into_iter());
        let below: [&[u8]; 2] = [b"x", b"y"];
        remember(9, (7, b"bb"), below.into_iter());
        let mut out = [0u8; 255];
        assert_eq!(next_after(7, b"a", &mut out), Some((2, 7, 0)));
        assert_eq!(&out[..2], b"bb");
        assert_eq!(next_after(9, b"x", &mut out), Some((1, 9, 0)));
        assert_eq!(&out[..1], b"y");
        // Past 9's last: 7's entry after "bb".
        assert_eq!(next_after(9, b"y", &mut out), Some((1, 7, 1)));
        assert_eq!(&out[..1], b"c");
        assert_eq!(next_after(7, b"c", &mut out), None);
        assert_eq!(next_after(8, b"a", &mut out), None);
    }
}
