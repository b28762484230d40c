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
//! first use. A slot has a lock; a caller that finds it busy asks the
//! daemon or keeps nothing.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

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

struct Slot {
    lock: AtomicBool,
    held: UnsafeCell<Held>,
}

// SAFETY: `held` is only touched by the holder of `lock` (see `Locked`).
unsafe impl Sync for Slot {}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        lock: AtomicBool::new(false),
        held: UnsafeCell::new(Held {
            mount: 0,
            ino: 0,
            len: 0,
            target: [0; TARGET_MAX],
        }),
    }
}; SLOTS];

/// The slot of inode `ino` of `mount`, locked until dropped; `None` when
/// another thread holds it.
struct Locked(&'static Slot);

impl Locked {
    fn of(mount: usize, ino: u64) -> Option<Locked> {
        let h = (ino ^ (mount as u64) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
        let slot = &TABLE[h as usize % SLOTS];
        slot.lock
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(Locked(slot))
    }

    fn held(&mut self) -> &mut Held {
        // SAFETY: this guard holds the slot's lock, so no other reference
        // to `held` exists while this one lives.
        unsafe { &mut *self.0.held.get() }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.0.lock.store(false, Ordering::Release);
    }
}

/// Keeps `target`, the target of link `ino` of `mount` as read from the
/// daemon.
pub(crate) fn keep(mount: usize, ino: u64, target: &[u8]) {
    if ino == 0 || target.is_empty() || target.len() > TARGET_MAX {
        return;
    }
    let Some(mut slot) = Locked::of(mount, ino) else {
        return;
    };
    let h = slot.held();
    h.mount = mount;
    h.ino = ino;
    h.len = target.len();
    h.target[..target.len()].copy_from_slice(target);
}

/// Hands the kept target of link `ino` of `mount` to `copy`, if kept.
pub(crate) fn with<T>(mount: usize, ino: u64, copy: impl FnOnce(&[u8]) -> T) -> Option<T> {
    let mut slot = Locked::of(mount, ino)?;
    let h = slot.held();
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
