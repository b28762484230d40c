//! The kernel's cwd, kept while it is on a mount where nothing changed.
//!
//! Every path relative to the cwd needs the cwd's path: `git status` lstats
//! its 10 000 files by paths relative to its repository, and each cost a
//! `getcwd(2)` (10 282 of them, 70% of its system-call time under strace).
//! That path changes only by a chdir of this process (the hooks count them:
//! `state::cwd_epoch`) or a rename of one of the cwd's directories, a change
//! on its mount, which moves that mount's generation first. So the path
//! read under generation `g` of mount `m`, and read again unchanged after
//! `g` was, still is the cwd's path while `m`'s generation is `g` and no
//! chdir happened. A cwd off the mounts is not kept (nothing tells when
//! its path changes).

use core::mem::MaybeUninit;
use core::sync::atomic::{fence, AtomicU64, Ordering};

use proto::PATH_MAX;

use crate::channel;
use crate::path::{self, Comps};
use crate::state;

/// Odd while written; 0 until the first write.
#[link_section = ".data.btfuse_hot"]
static SEQ: AtomicU64 = AtomicU64::new(0);
/// The chdir count, mount, and mount generation it was read under.
#[link_section = ".data.btfuse_hot"]
static EPOCH: AtomicU64 = AtomicU64::new(0);
#[link_section = ".data.btfuse_hot"]
static MOUNT: AtomicU64 = AtomicU64::new(0);
#[link_section = ".data.btfuse_hot"]
static STAMP: AtomicU64 = AtomicU64::new(0);
/// The path: its length and its bytes as words.
#[link_section = ".data.btfuse_hot"]
static LEN: AtomicU64 = AtomicU64::new(0);
static WORDS: [AtomicU64; PATH_MAX / 8] = [const { AtomicU64::new(0) }; PATH_MAX / 8];

/// The kernel's cwd, written into `buf` (see `state::kernel_cwd`).
pub(crate) fn cwd(buf: &mut [MaybeUninit<u8>; PATH_MAX]) -> Option<&[u8]> {
    let n = match kept(buf) {
        Some(n) => n,
        None => {
            let cwd = state::kernel_cwd(buf)?;
            keep(cwd);
            cwd.len()
        }
    };
    // SAFETY: `kept` or the kernel wrote the first `n` bytes.
    Some(unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n) })
}

/// The mount the cwd is on, if a cwd on a mount was kept since the last
/// chdir: a cwd stays on its mount until a chdir (a rename moves its path,
/// not its inode), whatever else changed.
pub(crate) fn kept_mount() -> Option<usize> {
    // Acquire: the words read below are at least as new as this count.
    let s1 = SEQ.load(Ordering::Acquire);
    if s1 == 0 || s1 & 1 != 0 {
        return None;
    }
    let (epoch, m) = (EPOCH.load(Ordering::Relaxed), MOUNT.load(Ordering::Relaxed));
    // Acquire fence: the reads above happen before the re-check of `SEQ`.
    fence(Ordering::Acquire);
    (SEQ.load(Ordering::Relaxed) == s1 && epoch == state::cwd_epoch()).then_some(m as usize)
}

/// The kept path, written into `buf` if it still holds; its length.
fn kept(buf: &mut [MaybeUninit<u8>; PATH_MAX]) -> Option<usize> {
    // Acquire: the words read below are at least as new as this count.
    let s1 = SEQ.load(Ordering::Acquire);
    if s1 == 0 || s1 & 1 != 0 || EPOCH.load(Ordering::Relaxed) != state::cwd_epoch() {
        return None;
    }
    let m = MOUNT.load(Ordering::Relaxed) as usize;
    if channel::generation(m) != Some(STAMP.load(Ordering::Relaxed)) {
        return None;
    }
    let n = (LEN.load(Ordering::Relaxed) as usize).min(PATH_MAX);
    for (chunk, w) in buf[..n].chunks_mut(8).zip(&WORDS) {
        let bytes = w.load(Ordering::Relaxed).to_ne_bytes();
        chunk.write_copy_of_slice(&bytes[..chunk.len()]);
    }
    // Acquire fence: the reads above happen before the re-check of `SEQ`.
    fence(Ordering::Acquire);
    (SEQ.load(Ordering::Relaxed) == s1).then_some(n)
}

/// Keeps `cwd`, just read from the kernel, if it is on a mount and reads
/// the same again after that mount's generation and the chdir count were.
fn keep(cwd: &[u8]) {
    // A vfork child's cwd may be its own; the kept one is its parent's.
    if state::in_vfork_child() {
        return;
    }
    let Some((m, _)) = path::classify(state::table(), Comps::new(cwd, b"")) else {
        return;
    };
    let Some(stamp) = channel::generation(m) else {
        return;
    };
    let epoch = state::cwd_epoch();
    let mut again = [const { MaybeUninit::uninit() }; PATH_MAX];
    if state::kernel_cwd(&mut again) != Some(cwd) {
        return;
    }
    let s = SEQ.load(Ordering::Relaxed);
    if s & 1 != 0
        || SEQ
            .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    // Release fence: the odd count is visible before any word changes.
    fence(Ordering::Release);
    EPOCH.store(epoch, Ordering::Relaxed);
    MOUNT.store(m as u64, Ordering::Relaxed);
    STAMP.store(stamp, Ordering::Relaxed);
    LEN.store(cwd.len() as u64, Ordering::Relaxed);
    for (chunk, w) in cwd.chunks(8).zip(&WORDS) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        w.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    }
    // Release: the words above are visible before the even count.
    SEQ.store(s + 2, Ordering::Release);
}
