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
//!
//! Nor do most changes after `g` move it: a process that writes where it
//! works (`rsync` receiving, `make`, `tar x`) changed the mount before
//! nearly every call by a relative path, and paid a `getcwd(2)` for each
//! (82 000 in an `rsync -a` of 10 000 files into the mount). The change
//! log says more (`proto::changes`): a directory renamed is a change that
//! reaches past the inodes it names, which voids every path; removing the
//! cwd (the only directory on its path that can be removed while it is
//! the cwd) changes its parent's names. So the path also still holds
//! while no change since `g` touched the parent's names or reached past
//! its inodes, and is then kept as read under the newer generation.

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
/// The inode number of the cwd's parent on the mount (0: not known, or
/// the cwd is the mount's root: only an unchanged generation holds).
#[link_section = ".data.btfuse_hot"]
static PARENT: AtomicU64 = AtomicU64::new(0);
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
    let (stamp, parent) = (
        STAMP.load(Ordering::Relaxed),
        PARENT.load(Ordering::Relaxed),
    );
    let now = channel::now(m)?;
    let later = now.gen != stamp;
    if later && (parent == 0 || !now.holds_for(stamp, parent)) {
        return None;
    }
    let n = (LEN.load(Ordering::Relaxed) as usize).min(PATH_MAX);
    for (chunk, w) in buf[..n].chunks_mut(8).zip(&WORDS) {
        let bytes = w.load(Ordering::Relaxed).to_ne_bytes();
        chunk.write_copy_of_slice(&bytes[..chunk.len()]);
    }
    // Acquire fence: the reads above happen before the re-check of `SEQ`.
    fence(Ordering::Acquire);
    if SEQ.load(Ordering::Relaxed) != s1 {
        return None;
    }
    if later {
        restamp(s1, now.gen);
    }
    Some(n)
}

/// Keeps the path read under seqlock count `s1` as holding at generation
/// `gen` too (checked), unless it was written since: the next check reads
/// the changes after `gen` only.
fn restamp(s1: u64, gen: u64) {
    if SEQ
        .compare_exchange(s1, s1 + 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        // Release fence: the odd count is visible before the stamp changes.
        fence(Ordering::Release);
        STAMP.store(gen, Ordering::Relaxed);
        SEQ.store(s1 + 2, Ordering::Release);
    }
}

/// The inode number of the cwd's parent, if the cwd is below its mount's
/// root (`..` of a directory below the root is on the mount; the kernel
/// answers from its caches).
fn parent_ino(below_root: bool) -> u64 {
    if !below_root {
        return 0;
    }
    // SAFETY: all-zero is a valid stat; the kernel writes it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = crate::sys::sc!(
        libc::SYS_newfstatat,
        libc::AT_FDCWD,
        c"..".as_ptr(),
        &mut st as *mut libc::stat,
        libc::AT_SYMLINK_NOFOLLOW
    );
    match r {
        Ok(_) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => st.st_ino,
        _ => 0,
    }
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
    let parent = parent_ino(cwd.len() > state::mountpoint(m).len());
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
    PARENT.store(parent, Ordering::Relaxed);
    LEN.store(cwd.len() as u64, Ordering::Relaxed);
    for (chunk, w) in cwd.chunks(8).zip(&WORDS) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        w.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    }
    // Release: the words above are visible before the even count.
    SEQ.store(s + 2, Ordering::Release);
}
