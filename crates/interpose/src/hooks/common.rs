//! Helpers every hook family shares: the caller's errno kept on success, the `-1`/errno convention, and the kernel fallback of a path call.

use core::ffi::{c_char, c_int};
use core::sync::atomic::Ordering;

use libc::ssize_t;

use crate::ops::{self, Fail, Target};
use crate::state::{self};
use crate::sys::set_errno;

#[inline]
pub(super) fn ok<T>(saved: i32, v: T) -> T {
    set_errno(saved);
    v
}

#[inline]
pub(super) fn err<T: From<i8>>(e: i32) -> T {
    set_errno(e);
    T::from(-1)
}

#[inline]
pub(super) fn dev(mount: usize) -> u64 {
    state::MOUNTS[mount].dev.load(Ordering::Relaxed)
}

/// Calls `f` with the arguments the kernel needs for a call that the fast
/// path hands back: the original ones, with a kernel fd of the same
/// directory in place of one of our directory fds.
#[inline]
pub(super) fn real_at<T: From<i8>>(
    t: &Target,
    dirfd: c_int,
    p: *const c_char,
    f: impl FnOnce(c_int, *const c_char) -> T,
) -> T {
    if t.dir.is_none() {
        return f(dirfd, p);
    }
    t.with_kernel_dir(|k| f(k, p)).unwrap_or_else(err)
}

#[inline]
pub(super) fn ret_len(saved: i32, r: ops::R<usize>) -> ssize_t {
    match r {
        Ok(n) => ok(saved, n as ssize_t),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    }
}
#[inline]
pub(super) fn ret_int(saved: i32, r: ops::R<c_int>) -> c_int {
    match r {
        Ok(v) => ok(saved, v),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    }
}
