//! Keeping the kernel's view of a file current while the fast path reads
//! and changes it.
//!
//! The kernel keeps three things of a FUSE file that the fast path can make
//! stale: its size (`i_size`: page faults of a mapping past it get
//! `SIGBUS`, and an `O_APPEND` write through the kernel starts there), its
//! page cache (clean pages that a fast-path write outdates) and dirty pages
//! written through a shared writable mapping that have not reached the
//! store yet. The rule, applied by the ring server to every fast-path
//! request, synchronously before the reply leaves (so before the call
//! returns in the client, and before any kernel-backed call of any process
//! can observe the file again):
//!
//! 1. **Before** a fast-path read or change of bytes of a file whose
//!    pages the kernel may hold ([`KernelPages`]: only such a file can have
//!    dirty pages, through a shared writable mapping), all the kernel's
//!    pages of the file are invalidated, which writes the dirty ones back
//!    to the store first (`launder_folio`), and the file is no longer
//!    counted as held: until the kernel reads or writes it again it holds
//!    no page, so later fast-path calls cost nothing. A fast-path read then
//!    sees what was stored through the mapping, and a fast-path write is
//!    not undone later by the write-back of a page that held the old bytes.
//! 2. **After** a change, the kernel's attributes and its pages of the
//!    changed range are invalidated (`inval_inode(ino, off, len)`).
//! 3. When the change may have moved the end of the file, the kernel's size
//!    is refreshed: invalidation alone leaves `i_size` as it was until
//!    something asks for the attributes, and neither a page fault nor a
//!    kernel `O_APPEND` write asks. The daemon asks itself: it opens the
//!    inode by handle (`open_by_handle_at`, `O_PATH`: the kernel finds the
//!    inode it caches by its node id, nothing reaches the daemon's `open`)
//!    and `fstat`s it, which makes the kernel send `GETATTR` and store the
//!    size. (`FUSE_NOTIFY_STORE` could only grow it, and only by storing
//!    data.)
//!
//! All three are done only for inodes the kernel knows (it looked them up
//! and has not forgotten them); the common fast-path file costs nothing.
//!
//! What remains: a thread that writes through a shared mapping *while*
//! another thread of any process writes the same page through the fast
//! path can have its page written back over the fast-path bytes (the kernel
//! writes back whole pages); on tmpfs the two writes touch only their own
//! bytes. Programs that share a file this way order such writes with locks,
//! and then the rule above holds.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use inode_store::Ino;
use parking_lot::Mutex;

/// Inodes whose pages the kernel may hold: those it has read or written
/// through the FUSE door since it last forgot them.
///
/// The kernel opens files without asking (OPEN is answered `ENOSYS`), so
/// the daemon cannot count the kernel's writable opens. It sees something
/// as good: a page enters the kernel's cache of a FUSE file only through a
/// `READ` (a `read`, readahead, a page fault of a mapping) or a `WRITE` (a
/// `write` fills the pages it copies), both served by the FUSE door; a
/// dirty page, written through a shared writable mapping, was such a page
/// first. The kernel drops an inode's pages when it evicts the inode,
/// before it sends the `FORGET` that drops the last lookup reference.
#[derive(Debug, Default)]
pub struct KernelPages {
    inodes: Mutex<HashSet<Ino>>,
    /// Their number: the common "none at all" answer is one atomic load.
    count: AtomicU64,
}

impl KernelPages {
    /// The FUSE door serves a `READ` or `WRITE` of `ino`: whether the
    /// kernel was not known to hold pages of it before.
    pub fn filled(&self, ino: Ino) -> bool {
        let new = self.inodes.lock().insert(ino);
        if new {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        new
    }

    /// The kernel dropped lookup references on `ino`; `still_known` says
    /// whether it holds any left. Checked under the set's lock: a `READ`
    /// after a new lookup marks the inode again after this returns, or its
    /// lookup is seen here.
    pub fn forgotten(&self, ino: Ino, still_known: impl FnOnce() -> bool) {
        let mut inodes = self.inodes.lock();
        if inodes.contains(&ino) && !still_known() {
            inodes.remove(&ino);
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether the kernel may hold pages of `ino`.
    pub fn holds(&self, ino: Ino) -> bool {
        // Relaxed: see `take`.
        self.count.load(Ordering::Relaxed) != 0 && self.inodes.lock().contains(&ino)
    }

    /// Whether the kernel may hold pages, and so dirty pages, of `ino`;
    /// if so, `ino` is no longer counted: the caller drops all of them.
    /// Taken before they are dropped: a page of a `READ` or `WRITE` the
    /// door serves meanwhile was put in the kernel's cache (locked) before
    /// the request was sent, so the invalidation waits for it and drops
    /// it, and a later one marks `ino` again.
    pub fn take(&self, ino: Ino) -> bool {
        // Relaxed: a kernel read that races with the fast-path call is
        // unordered with it anyway; one that finished before the call's
        // request was sent is visible (the FUSE reply happened before).
        if self.count.load(Ordering::Relaxed) == 0 || !self.inodes.lock().remove(&ino) {
            return false;
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        true
    }
}

/// `struct file_handle` with the FUSE encoding of a node (`fuse_encode_fh`:
/// `FILEID_INO64_GEN`, node id high and low words, generation).
#[repr(C)]
struct FuseFileHandle {
    handle_bytes: u32,
    handle_type: i32,
    nodeid_hi: u32,
    nodeid_lo: u32,
    generation: u32,
}

/// `FILEID_INO64_GEN` (include/linux/exportfs.h).
const FILEID_INO64_GEN: i32 = 0x81;

/// Makes the kernel fetch the attributes of `ino` of the FUSE mount at
/// `mountpoint` now (rule 3 of the module docs): the caller invalidated
/// them, so the `fstat` below sends `GETATTR`, and the kernel stores the
/// size it answers. Served by the FUSE door's threads; the caller must hold
/// no lock of the store.
pub fn refresh_kernel_attrs(mountpoint: &[u8], ino: Ino) -> io::Result<()> {
    let root = match mountpoint {
        b"" => CString::new("/"),
        p => CString::new(p),
    }
    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // Opened for each refresh: a descriptor kept open would make the
    // mount busy for `umount`. Not `O_PATH`: `open_by_handle_at` refuses
    // those as `mount_fd`.
    let root = open_raw(|| {
        // SAFETY: a NUL-terminated path.
        unsafe {
            libc::open(
                root.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        }
    })?;
    let mut fh = FuseFileHandle {
        handle_bytes: 12,
        handle_type: FILEID_INO64_GEN,
        nodeid_hi: (ino >> 32) as u32,
        nodeid_lo: ino as u32,
        // Every entry the FUSE door answers has generation 0.
        generation: 0,
    };
    let file = open_raw(|| {
        // SAFETY: a valid directory fd of the mount and a file_handle whose
        // `handle_bytes` matches the bytes that follow its header.
        unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                root.as_raw_fd(),
                &mut fh as *mut FuseFileHandle,
                libc::O_PATH | libc::O_CLOEXEC,
            ) as i32
        }
    })?;
    // SAFETY: all-zero is a valid stat buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a stat buffer of the right size.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs an fd-returning libc call; its fd, owned.
fn open_raw(call: impl FnOnce() -> i32) -> io::Result<OwnedFd> {
    let fd = call();
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

const _: () = assert!(size_of::<FuseFileHandle>() == 8 + 12);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_held_from_the_first_fill_until_the_last_forget() {
        let p = KernelPages::default();
        assert!(!p.take(5));
        p.filled(5);
        p.filled(5);
        // A forget that leaves a lookup reference keeps the pages.
        p.forgotten(5, || true);
        assert!(p.take(5));
        assert!(!p.take(6));
        // Once taken (and dropped by the caller), until the next fill.
        assert!(!p.take(5));
        p.filled(5);
        p.forgotten(5, || false);
        assert!(!p.take(5));
        // A forget of an inode never read is ignored.
        p.forgotten(7, || false);
        assert_eq!(p.count.load(Ordering::Relaxed), 0);
    }
}
