//! Handlers of `stat`, `statx`, `statfs` and `statvfs` in all their forms.

use core::ffi::{c_char, c_int, c_uint};

use libc::AT_FDCWD;

use crate::ops::{self, Abs, At, Fail};
use crate::real;
use crate::state::FDS;
use crate::sys::errno;
use crate::uaccess;

use super::common::*;

// ---- stat --------------------------------------------------------------------

#[inline]
pub(super) fn fstat_ours(fd: c_int, st: *mut libc::stat) -> Option<c_int> {
    let f = ops::file(fd)?;
    let saved = errno();
    Some(ret_int(
        saved,
        f.and_then(|f| {
            let a = ops::stat_file(&f)?;
            ops::fill_stat(st, &a, dev(f.mount)).map(|()| 0)
        }),
    ))
}

#[inline]
pub(super) unsafe fn fstat(fd: c_int, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards the caller's arguments.
    fstat_ours(fd, st).unwrap_or_else(|| unsafe { real::fstat()(fd, st) })
}

#[inline]
pub(super) unsafe fn fstat64(fd: c_int, st: *mut libc::stat64) -> c_int {
    // SAFETY: stat and stat64 share one layout on the 64-bit targets.
    fstat_ours(fd, st.cast()).unwrap_or_else(|| unsafe { real::fstat64()(fd, st) })
}

#[inline]
pub(super) unsafe fn stat_at(
    dirfd: c_int,
    p: *const c_char,
    st: *mut libc::stat,
    flags: c_int,
) -> c_int {
    if flags & libc::AT_EMPTY_PATH != 0
        && !p.is_null()
        && uaccess::read_val(p) == Ok(0)
        && FDS.is_ours(dirfd)
    {
        return fstat_ours(dirfd, st).unwrap_or_else(|| err(libc::EBADF));
    }
    let saved = errno();
    let real = |d: c_int, q: *const c_char| {
        // SAFETY: forwards the caller's arguments.
        unsafe { real::fstatat()(d, q, st, flags) }
    };
    let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
    if flags & !KNOWN_STAT_FLAGS == 0 {
        if let Some((m, r)) = ops::stat_listed(dirfd, p, nofollow) {
            return ret_int(
                saved,
                r.map_err(Fail::Errno)
                    .and_then(|a| ops::fill_stat(st, &a, dev(m)).map(|()| 0)),
            );
        }
    }
    let (q, raw) = match ops::stat_abs(dirfd, p, nofollow) {
        Abs::Hit(m, r) => {
            return ret_int(
                saved,
                r.and_then(|a| ops::fill_stat(st, &a, dev(m)).map(|()| 0)),
            )
        }
        Abs::Miss(raw) => (raw.as_ptr(), Some(raw)),
        Abs::No => (p, None),
    };
    match ops::resolve_at(dirfd, q, &mut ops::Target::new()) {
        At::Real => real(dirfd, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = ops::stat_path(t, nofollow, raw.as_ref())
                .and_then(|a| ops::fill_stat(st, &a, dev(t.mount)).map(|()| 0));
            finish!(saved, r, t, dirfd, p, |d, q| real(d, q))
        }
    }
}

/// The flags `fstatat` knows: with any other the kernel answers `EINVAL`,
/// which only the full path reproduces.
const KNOWN_STAT_FLAGS: c_int =
    libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT | libc::AT_EMPTY_PATH;

// Pre-2.33 binaries: `__xstat(ver, ...)`; the version is 1 (kernel layout)
// on x86_64 and 0 on aarch64, both the layout of `struct stat`.

#[inline]
pub(super) unsafe fn statx(
    d: c_int,
    p: *const c_char,
    flags: c_int,
    mask: c_uint,
    buf: *mut libc::statx,
) -> c_int {
    let saved = errno();
    if flags & libc::AT_EMPTY_PATH != 0 && !p.is_null() && uaccess::read_val(p) == Ok(0) {
        if let Some(f) = ops::file(d) {
            let r = f.and_then(|f| {
                let a = ops::stat_file(&f)?;
                ops::fill_statx(buf, &a, f.mount).map(|()| 0)
            });
            return ret_int(saved, r);
        }
    }
    let real = |dd: c_int, q: *const c_char| {
        // SAFETY: forwards the caller's arguments.
        unsafe { real::statx()(dd, q, flags, mask, buf) }
    };
    let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
    let (q, raw) = match ops::stat_abs(d, p, nofollow) {
        Abs::Hit(m, r) => {
            return ret_int(
                saved,
                r.and_then(|a| ops::fill_statx(buf, &a, m).map(|()| 0)),
            )
        }
        Abs::Miss(raw) => (raw.as_ptr(), Some(raw)),
        Abs::No => (p, None),
    };
    match ops::resolve_at(d, q, &mut ops::Target::new()) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = ops::stat_path(t, nofollow, raw.as_ref())
                .and_then(|a| ops::fill_statx(buf, &a, t.mount).map(|()| 0));
            finish!(saved, r, t, d, p, |dd, q| real(dd, q))
        }
    }
}

/// `statfs`/`statvfs` of a path: one round trip (the daemon checks that the
/// path exists), the kernel for paths not on a mount.
#[inline]
pub(super) unsafe fn path_fs_query(
    p: *const c_char,
    query: impl FnOnce(&ops::FsOf<'_>) -> ops::R<()>,
    real: impl Fn(*const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(AT_FDCWD, p, &mut ops::Target::new()) {
        At::Real => real(p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = query(&ops::FsOf::path(t)).map(|()| 0);
            finish!(saved, r, t, AT_FDCWD, p, |_d, q| real(q))
        }
    }
}

#[inline]
pub(super) unsafe fn statfs(p: *const c_char, out: *mut libc::statfs) -> c_int {
    // SAFETY: forwards the caller's arguments.
    unsafe { path_fs_query(p, |at| ops::statfs(at, out), |q| real::statfs()(q, out)) }
}

#[inline]
pub(super) unsafe fn fstatfs(fd: c_int, out: *mut libc::statfs) -> c_int {
    match ops::file(fd) {
        None => {
            // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
            unsafe { real::fstatfs()(fd, out) }
        }
        Some(f) => {
            let saved = errno();
            ret_int(
                saved,
                f.and_then(|f| ops::statfs(&ops::FsOf::file(&f)?, out).map(|_| 0)),
            )
        }
    }
}

/// `statvfs`: glibc's calls its internal `statfs` (no hook sees it);
/// served from the daemon's `statfs`, converted as glibc converts.
#[inline]
pub(super) unsafe fn statvfs_impl(p: *const c_char, out: *mut libc::statvfs) -> c_int {
    // SAFETY: forwards the caller's arguments.
    unsafe { path_fs_query(p, |at| ops::statvfs(at, out), |q| real::statvfs()(q, out)) }
}

#[inline]
pub(super) fn fstatvfs_ours(fd: c_int, out: *mut libc::statvfs) -> Option<c_int> {
    let f = ops::file(fd)?;
    let saved = errno();
    Some(ret_int(
        saved,
        f.and_then(|f| ops::statvfs(&ops::FsOf::file(&f)?, out).map(|_| 0)),
    ))
}

#[inline]
pub(super) unsafe fn fstatvfs(fd: c_int, out: *mut libc::statvfs) -> c_int {
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    fstatvfs_ours(fd, out).unwrap_or_else(|| unsafe { real::fstatvfs()(fd, out) })
}

#[inline]
pub(super) unsafe fn fstatvfs64(fd: c_int, out: *mut libc::statvfs64) -> c_int {
    // SAFETY: same layout on the 64-bit targets.
    fstatvfs_ours(fd, out.cast()).unwrap_or_else(|| unsafe { real::fstatvfs64()(fd, out) })
}
