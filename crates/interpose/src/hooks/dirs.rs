//! Handlers of the `DIR` stream calls.

use core::ffi::{c_char, c_int, c_long};

use libc::{AT_FDCWD, DIR};

use crate::dir;
use crate::ops::{self, At, Fail};
use crate::real;
use crate::state::FDS;
use crate::sys::{errno, set_errno};

use super::{common::*, open::*};

// ---- directories -----------------------------------------------------------

#[inline]
pub(super) unsafe fn opendir(p: *const c_char) -> *mut DIR {
    let saved = errno();
    let real = |_: c_int, q: *const c_char| {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        unsafe { real::opendir()(q) }
    };
    match ops::resolve_at(AT_FDCWD, p, &mut ops::Target::new()) {
        At::Real => real(AT_FDCWD, p),
        At::Err(e) => {
            set_errno(e);
            core::ptr::null_mut()
        }
        At::Ours(t) => match dir::open(t) {
            Ok(d) => ok(saved, d),
            Err(Fail::Errno(e)) => {
                set_errno(e);
                core::ptr::null_mut()
            }
            Err(Fail::Real) => real(AT_FDCWD, p),
        },
    }
}

#[inline]
pub(super) unsafe fn fdopendir(fd: c_int) -> *mut DIR {
    let Some(f) = ops::file(fd) else {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::fdopendir()(fd) };
    };
    let saved = errno();
    if let Some(d) = dir::take_pending(fd) {
        return ok(saved, d);
    }
    match f {
        Ok(f) if f.is_dir() => match dir::new_stream(fd, None) {
            Some(d) => ok(saved, d),
            None => {
                set_errno(libc::EMFILE);
                core::ptr::null_mut()
            }
        },
        Ok(_) => {
            set_errno(libc::ENOTDIR);
            core::ptr::null_mut()
        }
        Err(_) => {
            set_errno(libc::EBADF);
            core::ptr::null_mut()
        }
    }
}

#[inline]
pub(super) unsafe fn readdir64(d: *mut DIR) -> *mut libc::dirent64 {
    let Some(o) = dir::ours(d) else {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::readdir64()(d) };
    };
    let saved = errno();
    match o.next() {
        Ok(Some(e)) => ok(saved, e),
        Ok(None) => ok(saved, core::ptr::null_mut()),
        Err(Fail::Errno(e)) => {
            set_errno(e);
            core::ptr::null_mut()
        }
        Err(Fail::Real) => {
            set_errno(libc::EIO);
            core::ptr::null_mut()
        }
    }
}

#[inline]
pub(super) unsafe fn readdir(d: *mut DIR) -> *mut libc::dirent {
    if dir::ours(d).is_none() {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::readdir()(d) };
    }
    // SAFETY: dirent and dirent64 share one layout on the 64-bit targets.
    unsafe { super::readdir64(d).cast() }
}

#[inline]
pub(super) unsafe fn readdir64_r(
    d: *mut DIR,
    entry: *mut libc::dirent64,
    result: *mut *mut libc::dirent64,
) -> c_int {
    if dir::ours(d).is_none() {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::readdir64_r()(d, entry, result) };
    }
    let saved = errno();
    set_errno(0);
    // SAFETY: our stream.
    let e = unsafe { super::readdir64(d) };
    let r = errno();
    set_errno(saved);
    if e.is_null() {
        // SAFETY: the caller's out pointer.
        unsafe { *result = core::ptr::null_mut() };
        return r;
    }
    // SAFETY: copying one entry into the caller's buffer.
    unsafe {
        core::ptr::copy_nonoverlapping(e, entry, 1);
        *result = entry;
    }
    0
}

#[inline]
pub(super) unsafe fn readdir_r(
    d: *mut DIR,
    entry: *mut libc::dirent,
    result: *mut *mut libc::dirent,
) -> c_int {
    if dir::ours(d).is_none() {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::readdir_r()(d, entry, result) };
    }
    // SAFETY: the caller's arguments under its C contract; the two pointee types share one layout on the supported 64-bit targets.
    unsafe { super::readdir64_r(d, entry.cast(), result.cast()) }
}

#[inline]
pub(super) unsafe fn closedir(d: *mut DIR) -> c_int {
    let Some(o) = dir::ours(d) else {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::closedir()(d) };
    };
    let saved = errno();
    let fd = o.fd();
    dir::free(o);
    if FDS.is_ours(fd) {
        close_ours(fd);
        ok(saved, 0)
    } else {
        // No longer a fast-path fd (a credential change made it a plain
        // kernel fd): close it in the kernel.
        // SAFETY: closes the stream's own descriptor.
        unsafe { real::close()(fd) }
    }
}

#[inline]
pub(super) unsafe fn dirfd(d: *mut DIR) -> c_int {
    match dir::ours(d) {
        Some(o) => o.fd(),
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        None => unsafe { real::dirfd()(d) },
    }
}

#[inline]
pub(super) unsafe fn rewinddir(d: *mut DIR) {
    match dir::ours(d) {
        Some(o) => o.rewind(),
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        None => unsafe { real::rewinddir()(d) },
    }
}

#[inline]
pub(super) unsafe fn telldir(d: *mut DIR) -> c_long {
    match dir::ours(d) {
        Some(o) => o.tell() as c_long,
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        None => unsafe { real::telldir()(d) },
    }
}

#[inline]
pub(super) unsafe fn seekdir(d: *mut DIR, loc: c_long) {
    match dir::ours(d) {
        Some(o) => o.seek(loc as u64),
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        None => unsafe { real::seekdir()(d, loc) },
    }
}
