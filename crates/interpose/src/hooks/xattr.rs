//! Handlers of the extended-attribute calls.

use core::ffi::{c_char, c_int, c_void};
use core::mem::MaybeUninit;

use libc::{size_t, ssize_t, AT_FDCWD};

use crate::ops::{self, At, Fail};
use crate::real;
use crate::sys::errno;
use crate::uaccess;

use super::common::*;

// ---- xattrs ---------------------------------------------------------------
//
// Served by the daemon, on fast-path fds and on paths under a mount (`ls -l`
// asks for ACLs and security labels of every file; `cp -a` and `tar` copy
// xattrs).

/// Runs an xattr request on the handle behind `fd`; `None` when `fd` is
/// not ours.
#[inline]
pub(super) fn fd_xattr(
    fd: c_int,
    f: impl FnOnce(&ops::XattrAt<'_>) -> ops::R<usize>,
) -> Option<ssize_t> {
    let file = ops::file(fd)?;
    let saved = errno();
    Some(match file.and_then(|file| f(&ops::XattrAt::file(&file)?)) {
        Ok(n) => ok(saved, n as ssize_t),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    })
}

/// Runs an xattr request on a path; `real` when it is not on a mount (or
/// leaves it).
#[inline]
pub(super) unsafe fn path_xattr(
    p: *const c_char,
    nofollow: bool,
    f: impl FnOnce(&ops::XattrAt<'_>) -> ops::R<usize>,
    real: impl Fn(*const c_char) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    match ops::resolve_at(AT_FDCWD, p, &mut ops::Target::new()) {
        At::Real => real(p),
        At::Err(e) => err(e),
        At::Ours(t) => match f(&ops::XattrAt::path(t, nofollow)) {
            Ok(n) => ok(saved, n as ssize_t),
            Err(Fail::Errno(e)) => err(e),
            Err(Fail::Real) => real(p),
        },
    }
}

/// Room for an attribute name: the kernel's 255 bytes and the NUL.
pub(super) const XATTR_NAME_BUF: [MaybeUninit<u8>; 256] = [MaybeUninit::uninit(); 256];

/// The caller's attribute name, copied as the kernel copies it: `EFAULT`
/// when it cannot be read, `ERANGE` when it is over 255 bytes.
#[inline]
pub(super) fn xattr_name(buf: &mut [MaybeUninit<u8>; 256], name: *const c_char) -> ops::R<&[u8]> {
    uaccess::strncpy_from_user(buf, name).map_err(|e| {
        Fail::Errno(match e {
            uaccess::StrError::Fault => libc::EFAULT,
            uaccess::StrError::TooLong => libc::ERANGE,
        })
    })
}

/// Writes the four path handlers of one xattr family (`get`, `list`,
/// `set`, `remove`), following symlinks or not.
macro_rules! xattr_hooks {
    ($get:ident, $list:ident, $set:ident, $remove:ident, nofollow = $nofollow:expr) => {
        #[inline]
        pub(super) unsafe fn $get(
            p: *const c_char,
            name: *const c_char,
            v: *mut c_void,
            n: size_t,
        ) -> ssize_t {
            let mut buf = XATTR_NAME_BUF;
            let Ok(key) = xattr_name(&mut buf, name) else {
                // SAFETY: forwards the caller's arguments (the kernel
                // answers for a name it cannot read).
                return unsafe { real::$get()(p, name, v, n) };
            };
            if ops::absent_by_string(p, $nofollow, key) {
                return err(libc::ENODATA);
            }
            // SAFETY: forwards the caller's arguments.
            unsafe {
                path_xattr(
                    p,
                    $nofollow,
                    |x| x.get(Some(key), v.cast(), n),
                    |q| real::$get()(q, name, v, n),
                )
            }
        }

        #[inline]
        pub(super) unsafe fn $list(p: *const c_char, list: *mut c_char, n: size_t) -> ssize_t {
            // SAFETY: forwards the caller's arguments.
            unsafe {
                path_xattr(
                    p,
                    $nofollow,
                    |x| x.get(None, list.cast(), n),
                    |q| real::$list()(q, list, n),
                )
            }
        }

        #[inline]
        pub(super) unsafe fn $set(
            p: *const c_char,
            name: *const c_char,
            v: *const c_void,
            n: size_t,
            flags: c_int,
        ) -> c_int {
            let mut buf = XATTR_NAME_BUF;
            let Ok(key) = xattr_name(&mut buf, name) else {
                // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
                return unsafe { real::$set()(p, name, v, n, flags) };
            };
            // SAFETY: forwards the caller's arguments.
            let r = unsafe {
                path_xattr(
                    p,
                    $nofollow,
                    |x| x.set(key, v.cast(), n, flags).map(|()| 0),
                    |q| real::$set()(q, name, v, n, flags) as ssize_t,
                )
            };
            r as c_int
        }

        #[inline]
        pub(super) unsafe fn $remove(p: *const c_char, name: *const c_char) -> c_int {
            let mut buf = XATTR_NAME_BUF;
            let Ok(key) = xattr_name(&mut buf, name) else {
                // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
                return unsafe { real::$remove()(p, name) };
            };
            // SAFETY: forwards the caller's arguments.
            let r = unsafe {
                path_xattr(
                    p,
                    $nofollow,
                    |x| x.remove(key).map(|()| 0),
                    |q| real::$remove()(q, name) as ssize_t,
                )
            };
            r as c_int
        }
    };
}

xattr_hooks!(getxattr, listxattr, setxattr, removexattr, nofollow = false);
xattr_hooks!(
    lgetxattr,
    llistxattr,
    lsetxattr,
    lremovexattr,
    nofollow = true
);

#[inline]
pub(super) unsafe fn fgetxattr(
    fd: c_int,
    name: *const c_char,
    v: *mut c_void,
    n: size_t,
) -> ssize_t {
    let mut buf = XATTR_NAME_BUF;
    let key = xattr_name(&mut buf, name);
    fd_xattr(fd, |x| x.get(Some(key?), v.cast(), n))
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        .unwrap_or_else(|| unsafe { real::fgetxattr()(fd, name, v, n) })
}

#[inline]
pub(super) unsafe fn flistxattr(fd: c_int, list: *mut c_char, n: size_t) -> ssize_t {
    fd_xattr(fd, |x| x.get(None, list.cast(), n))
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        .unwrap_or_else(|| unsafe { real::flistxattr()(fd, list, n) })
}

#[inline]
pub(super) unsafe fn fsetxattr(
    fd: c_int,
    name: *const c_char,
    v: *const c_void,
    n: size_t,
    flags: c_int,
) -> c_int {
    let mut buf = XATTR_NAME_BUF;
    let key = xattr_name(&mut buf, name);
    fd_xattr(fd, |x| x.set(key?, v.cast(), n, flags).map(|()| 0))
        .map(|r| r as c_int)
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        .unwrap_or_else(|| unsafe { real::fsetxattr()(fd, name, v, n, flags) })
}

#[inline]
pub(super) unsafe fn fremovexattr(fd: c_int, name: *const c_char) -> c_int {
    let mut buf = XATTR_NAME_BUF;
    let key = xattr_name(&mut buf, name);
    fd_xattr(fd, |x| x.remove(key?).map(|()| 0))
        .map(|r| r as c_int)
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        .unwrap_or_else(|| unsafe { real::fremovexattr()(fd, name) })
}
