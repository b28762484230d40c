//! Handlers of `open` and `close` and their relatives.

use core::ffi::{c_char, c_int, c_uint};

use libc::{mode_t, AT_FDCWD};

use crate::channel;
use crate::dir;
use crate::ops::{self, At, Fail};
use crate::real;
use crate::state::FDS;
use crate::sys::{self, errno};

use super::common::*;
use crate::callargs::needs_mode;

// ---- open / close ----------------------------------------------------------

#[inline]
pub(super) unsafe fn do_openat(
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
    real: impl FnOnce(c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(dirfd, p, &mut ops::Target::new()) {
        At::Real => real(dirfd, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            // O_TMPFILE includes the O_DIRECTORY bit: compare all of it.
            if flags & libc::O_TMPFILE == libc::O_TMPFILE {
                return real_at(t, dirfd, p, real);
            }
            if flags & libc::O_PATH != 0 {
                // The kernel's fd; a directory's is shadowed for the paths
                // relative to it (see `ops::located`).
                let k = real_at(t, dirfd, p, real);
                if flags & ops::SHADOWED == ops::SHADOWED {
                    ops::shadow(t, flags, k);
                }
                return k;
            }
            let r = match dir::lists_on_open(flags) {
                true => dir::open_for_listing(t, flags),
                false => ops::open(t, flags, mode),
            };
            finish!(saved, r, t, dirfd, p, |d, q| real(d, q))
        }
    }
}

#[inline]
pub(super) unsafe fn open(p: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    // SAFETY: forwards the caller's arguments.
    unsafe {
        do_openat(AT_FDCWD, p, flags, mode, |d, q| {
            real::openat()(d, q, flags, mode)
        })
    }
}

#[inline]
pub(super) unsafe fn openat(dirfd: c_int, p: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe {
        do_openat(dirfd, p, flags, mode, |d, q| {
            real::openat()(d, q, flags, mode)
        })
    }
}

/// Drops our mapping of `fd` and closes its placeholder.
#[inline]
pub(super) fn close_ours(fd: c_int) {
    if let Some(r) = FDS.remove(fd) {
        sys::close(fd);
        ops::close_drops_locks(&r);
        ops::put(r);
    }
}

#[inline]
pub(super) unsafe fn close(fd: c_int) -> c_int {
    if FDS.is_ours(fd) {
        let saved = errno();
        close_ours(fd);
        return ok(saved, 0);
    }
    if channel::is_internal(fd) {
        // The library's own socket: the program closes "everything"; keep
        // it (its number is high and close-on-exec) and report success.
        return 0;
    }
    if ops::is_nullfd(fd) {
        ops::evict_internal(fd);
    }
    ops::forget_located(fd);
    // SAFETY: forwards the caller's argument.
    unsafe { real::close()(fd) }
}

/// Closes `[lo, hi]` except the library's own sockets.
#[inline]
pub(super) unsafe fn close_range_impl(lo: c_uint, hi: c_uint, flags: c_int) -> c_int {
    let saved = errno();
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        FDS.for_each_in(lo, hi, close_ours);
    }
    ops::forget_nullfd_in(lo, hi);
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        FDS.for_each_located_in(lo, hi, ops::forget_located);
    }
    // Our sockets in range, ascending, stay open.
    let mut start = lo as u64;
    let mut r = 0;
    while let Some(k) = channel::next_internal(start as u32).filter(|&k| k <= hi) {
        if k as u64 > start {
            // SAFETY: plain integer arguments.
            r |= unsafe { real::close_range()(start as c_uint, k - 1, flags) };
        }
        start = k as u64 + 1;
    }
    if start <= hi as u64 {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        r |= unsafe { real::close_range()(start as c_uint, hi, flags) };
    }
    if r == 0 {
        ok(saved, 0)
    } else {
        -1
    }
}

#[inline]
pub(super) unsafe fn close_range(lo: c_uint, hi: c_uint, flags: c_int) -> c_int {
    if lo > hi {
        return err(libc::EINVAL);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { close_range_impl(lo, hi, flags) }
}

#[inline]
pub(super) unsafe fn closefrom(lo: c_int) {
    // SAFETY: plain integer arguments.
    unsafe { close_range_impl(lo.max(0) as c_uint, c_uint::MAX, 0) };
}
