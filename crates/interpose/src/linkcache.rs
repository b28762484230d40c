//! Targets of symbolic links this process read, by inode.
//!
//! A link's target never changes (a new target is a new link, a new
//! inode; the store changes no link in place) and a daemon never reuses an
//! inode number, so a target read once is the answer to every later
//! `readlink` of a path that the metadata cache shows, still true, to name
//! that inode: no round trip and no staleness check of its own. A mount's
//! daemon stays the same while the process may use the mount (its
//! generation page is mapped once and vouches for nothing once that daemon
//! is gone, `channel::now`), so inode numbers are the same daemon's too.
//!
//! Memory: [`SLOTS`] slots of [`TARGET_MAX`] bytes in the library's `.bss`,
//! one per inode hash (a newer link takes the slot), each faulted in at its
//! first use. A slot held by another thread is done without (`TryLock`):
//! the caller asks the daemon or keeps nothing.

use crate::trylock::TryLock;

/// Slots (a power of two).
const SLOTS: usize = 256;
/// Longest target kept.
const TARGET_MAX: usize = 256;

/// What a slot holds (`ino` 0: nothing).
struct Held {
    mount: usize,
    ino: u64,
    len: usize,
    target: [u8; TARGET_MAX],
}

static TABLE: [TryLock<Held>; SLOTS] = [const {
    TryLock::new(Held {
        mount: 0,
        ino: 0,
        len: 0,
        target: [0; TARGET_MAX],
    })
}; SLOTS];

/// The slot of inode `ino` of `mount`.
fn slot(mount: usize, ino: u64) -> &'static TryLock<Held> {
    let h = (ino ^ (mount as u64) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
    &TABLE[h as usize % SLOTS]
}

/// Keeps `target`, the target of link `ino` of `mount` as read from the
/// daemon.
pub(crate) fn keep(mount: usize, ino: u64, target: &[u8]) {
    if ino == 0 || target.is_empty() || target.len() > TARGET_MAX {
        return;
    }
    let Some(mut h) = slot(mount, ino).try_lock() else {
        return;
    };
    h.mount = mount;
    h.ino = ino;
    h.len = target.len();
    h.target[..target.len()].copy_from_slice(target);
}

/// Hands the kept target of link `ino` of `mount` to `copy`, if kept.
pub(crate) fn with<T>(mount: usize, ino: u64, copy: impl FnOnce(&[u8]) -> T) -> Option<T> {
    let h = slot(mount, ino).try_lock()?;
    (h.ino == ino && h.mount == mount && ino != 0).then(|| copy(&h.target[..h.len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_kept_by_mount_and_inode() {
        keep(1, 77, b"../x");
        assert_eq!(with(1, 77, <[u8]>::to_vec), Some(b"../x".to_vec()));
        assert_eq!(with(2, 77, <[u8]>::to_vec), None, "another mount");
        assert_eq!(with(1, 78, <[u8]>::to_vec), None);
        keep(1, 79, &[b'a'; TARGET_MAX + 1]);
        assert_eq!(with(1, 79, <[u8]>::to_vec), None, "too long to keep");
        keep(1, 0, b"y");
        assert_eq!(with(1, 0, <[u8]>::to_vec), None, "no inode 0");
    }
}
