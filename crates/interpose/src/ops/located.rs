//! Kernel `O_PATH` directory fds on a mount, shadowed by fast-path handles.
//!
//! Programs that walk a tree safely (rsync since 3.2, `openat2`-style
//! walkers) open every directory `O_PATH | O_DIRECTORY` and name everything
//! relative to those fds. An `O_PATH` fd stays the kernel's: it does all
//! an `O_PATH` fd does (`fchdir`, `fstat`, `/proc/self/fd`, `EBADF` for
//! reading) with no hook involved. But every call relative to it would
//! cross the FUSE door, so an `O_PATH | O_DIRECTORY` open of a path on a
//! mount is made twice: by the kernel (the fd the program gets) and on the
//! fast path (a handle of the same directory that serves only as the base
//! of paths, checked to be the same inode), and the calls relative to the
//! fd resolve their paths from that handle ([`located_dir`]).
//!
//! The shadow goes when the library sees the fd closed or replaced
//! (`close`, `close_range`, `dup2`/`dup3` onto it). A number the program
//! closed behind the library's back (a raw system call) keeps its shadow,
//! so every use first checks that the fd still is the same directory: the
//! same device and inode number, by `statx` with `AT_STATX_DONT_SYNC` (the
//! kernel's cached answer: no FUSE request). A daemon never gives an inode
//! number twice, so a match is the same directory.

use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, Ordering};

use proto::ops;

use super::{put, release, request, Target};
use crate::fdtable::{OfdInit, OfdRef, KIND_DIR};
use crate::state::{self, FDS};
use crate::sys;

/// Open flags the daemon gives a shadow for (with `O_NOFOLLOW` or not).
pub(crate) const SHADOWED: c_int = libc::O_PATH | libc::O_DIRECTORY;

/// After the kernel opened `t` as `O_PATH | O_DIRECTORY` into `k` (with
/// the caller's `flags`): shadows `k` with a fast-path handle of the same
/// directory when the daemon gives one. The open has succeeded whatever
/// happens here; errno is left alone.
pub(crate) fn shadow(t: &Target, flags: c_int, k: c_int) {
    if k < 0 || k as usize >= FDS.capacity() {
        return;
    }
    let saved = sys::errno();
    let open = ops::Open {
        base: t.base,
        flags: (SHADOWED | flags & libc::O_NOFOLLOW) as u32,
        mode: 0,
    };
    if let Ok(ops::OpenOut { fh, attr, .. }) = request(t.mount, &open, t.rel(), b"") {
        let init = OfdInit {
            flags: SHADOWED as u32 | KIND_DIR,
            handle: fh,
            mount: t.mount as u32,
            epoch: state::epoch(),
            ino: attr.ino,
        };
        // The kernel and the daemon each looked the path up: a rename in
        // between may have made them different directories.
        match (kernel_ino(k, t.mount) == Some(attr.ino)).then(|| FDS.alloc(init)) {
            Some(Some(r)) => {
                ANY.store(true, Ordering::Relaxed);
                if let Some(prev) = FDS.install_located(k, r) {
                    put(prev);
                }
            }
            _ => release(t.mount, fh),
        }
    }
    sys::set_errno(saved);
}

/// Whether this process ever shadowed a kernel fd: until then the fd
/// table's map of shadows is not looked at (its page would be a page
/// fault of every process that closes an fd).
#[link_section = ".data.btfuse_hot"]
static ANY: AtomicBool = AtomicBool::new(false);

/// Whether kernel fd `fd` has a shadow now.
pub(crate) fn is_located(fd: c_int) -> bool {
    ANY.load(Ordering::Relaxed) && FDS.is_located(fd)
}

/// The shadow of kernel fd `dirfd` (a counted reference), if it has one
/// and `dirfd` still is that directory; a stale shadow is dropped.
pub(crate) fn located_dir(dirfd: c_int) -> Option<OfdRef> {
    if !ANY.load(Ordering::Relaxed) {
        return None;
    }
    let r = FDS.get_located(dirfd)?;
    let o = FDS.ofd(r.idx);
    let mount = o.mount.load(Ordering::Relaxed) as usize;
    if o.epoch.load(Ordering::Relaxed) == state::epoch()
        && kernel_ino(dirfd, mount) == Some(o.ino.load(Ordering::Relaxed))
    {
        return Some(r);
    }
    put(r);
    forget_located(dirfd);
    None
}

/// Drops the shadow of kernel fd `fd` (being closed or replaced).
pub(crate) fn forget_located(fd: c_int) {
    if is_located(fd) {
        if let Some(r) = FDS.remove_located(fd) {
            put(r);
        }
    }
}

/// The inode number of what kernel fd `fd` is open on, if that is on
/// `mount`, from the kernel's cache (device and inode never change: no
/// FUSE request is needed to know them).
pub(crate) fn kernel_ino(fd: c_int, mount: usize) -> Option<u64> {
    // SAFETY: all-zero is a valid statx buffer for the kernel to fill.
    let mut stx: libc::statx = unsafe { core::mem::zeroed() };
    sys::sc!(
        libc::SYS_statx,
        fd,
        c"".as_ptr(),
        libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
        libc::STATX_INO,
        &mut stx as *mut libc::statx
    )
    .ok()?;
    let dev = libc::makedev(stx.stx_dev_major, stx.stx_dev_minor);
    (dev == state::MOUNTS[mount].dev.load(Ordering::Relaxed)).then_some(stx.stx_ino)
}
