//! Handlers of the calls on paths: create, remove, rename, link, read links, attribute changes, the `utime` family, access checks, and the cwd.

use core::ffi::{c_char, c_int, c_uint, c_void};
use core::mem::MaybeUninit;

use libc::{mode_t, off_t, size_t, ssize_t, AT_FDCWD};
use proto::ops::Operation;
use proto::{SetAttrReq, PATH_MAX};

use crate::linkcache;
use crate::ops::{self, At, Fail};
use crate::public;
use crate::real;
use crate::state::{self, FDS};
use crate::sys::{self, errno};
use crate::uaccess;

use super::{common::*, fds::*};
use crate::callargs::{chown_req, timeval_to_timespec};

// ---- utime family ------------------------------------------------------------
//
// glibc implements these with internal `utimensat` calls; converted here
// and served by the `utimensat`/`futimens` hooks.

/// Two `timeval`s (or null: now) as two `timespec`s; `EINVAL` for
/// microseconds out of range, as glibc checks.
#[inline]
pub(super) fn timevals(tv: *const libc::timeval) -> Result<Option<[libc::timespec; 2]>, i32> {
    if tv.is_null() {
        return Ok(None);
    }
    let mut ts = [libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }; 2];
    for (i, t) in ts.iter_mut().enumerate() {
        // SAFETY: the caller passes an array of two timevals.
        let v = unsafe { *tv.add(i) };
        *t = timeval_to_timespec(v)?;
    }
    Ok(Some(ts))
}

#[inline]
pub(super) unsafe fn utimes_at(
    d: c_int,
    p: *const c_char,
    tv: *const libc::timeval,
    flags: c_int,
) -> c_int {
    match timevals(tv) {
        Err(e) => err(e),
        // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
        Ok(None) => unsafe { super::utimensat(d, p, core::ptr::null(), flags) },
        // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
        Ok(Some(ts)) => unsafe { super::utimensat(d, p, ts.as_ptr(), flags) },
    }
}

#[inline]
pub(super) unsafe fn utime(p: *const c_char, t: *const libc::utimbuf) -> c_int {
    if t.is_null() {
        // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
        return unsafe { super::utimensat(AT_FDCWD, p, core::ptr::null(), 0) };
    }
    // SAFETY: the caller's utimbuf.
    let t = unsafe { *t };
    let ts = [
        libc::timespec {
            tv_sec: t.actime,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: t.modtime,
            tv_nsec: 0,
        },
    ];
    // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
    unsafe { super::utimensat(AT_FDCWD, p, ts.as_ptr(), 0) }
}

#[inline]
pub(super) unsafe fn futimes(fd: c_int, tv: *const libc::timeval) -> c_int {
    if !FDS.is_ours(fd) {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::futimes()(fd, tv) };
    }
    match timevals(tv) {
        Err(e) => err(e),
        // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
        Ok(None) => unsafe { super::futimens(fd, core::ptr::null()) },
        // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
        Ok(Some(ts)) => unsafe { super::futimens(fd, ts.as_ptr()) },
    }
}

/// `name_to_handle_at` is answered by the kernel (the FUSE mount exports
/// handles); only a fast-path directory fd or `AT_EMPTY_PATH` on a
/// fast-path fd needs help (an absolute path, or a kernel-backed fd).
#[inline]
pub(super) unsafe fn name_to_handle_at(
    d: c_int,
    p: *const c_char,
    h: *mut c_void,
    mnt: *mut c_int,
    flags: c_int,
) -> c_int {
    let real = |dd: c_int, q: *const c_char| {
        // SAFETY: forwards the caller's arguments.
        unsafe { real::name_to_handle_at()(dd, q, h, mnt, flags) }
    };
    if flags & libc::AT_EMPTY_PATH != 0 && !p.is_null() && uaccess::read_val(p) == Ok(0) {
        return match ops::kernel_fd(d) {
            Ok(()) => real(d, p),
            Err(e) => err(e),
        };
    }
    match ops::resolve_at(d, p, &mut ops::Target::new()) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => real_at(t, d, p, real),
    }
}

// ---- simple path operations ----------------------------------------------

/// A path operation whose reply carries nothing the caller needs: the
/// request is `args` of the path's base directory.
#[inline]
pub(super) unsafe fn path_op<O: Operation>(
    dirfd: c_int,
    p: *const c_char,
    args: impl FnOnce(u64) -> O,
    real: impl Fn(c_int, *const c_char) -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { path_op_then(dirfd, p, args, |_, _| {}, real) }
}

/// [`path_op`] that hands the daemon's reply to `then` (with the mount).
///
/// # Safety
/// As [`path_op`].
pub(super) unsafe fn path_op_then<O: Operation>(
    dirfd: c_int,
    p: *const c_char,
    args: impl FnOnce(u64) -> O,
    then: impl FnOnce(usize, &O::Reply),
    real: impl Fn(c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(dirfd, p, &mut ops::Target::new()) {
        At::Real => real(dirfd, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = ops::request(t.mount, &args(t.base), t.rel(), b"").map(|out| {
                then(t.mount, &out);
                0
            });
            finish!(saved, r, t, dirfd, p, |d, q| real(d, q))
        }
    }
}

#[inline]
pub(super) unsafe fn faccessat(d: c_int, p: *const c_char, mode: c_int, flags: c_int) -> c_int {
    if flags & libc::AT_EACCESS == 0 && state::access_by_kernel() {
        // access(2) checks the real ids; the daemon knows the effective
        // ones only: the kernel answers (with an absolute path when `d`
        // is one of our directories).
        let real = |dd: c_int, q: *const c_char| {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::faccessat()(dd, q, mode, flags) }
        };
        return match ops::resolve_at(d, p, &mut ops::Target::new()) {
            At::Real => real(d, p),
            At::Err(e) => err(e),
            At::Ours(t) => real_at(t, d, p, real),
        };
    }
    if mode == libc::F_OK && flags & !(libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW) == 0 {
        let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
        if let Some((_, answer)) = cached_stat(d, p, nofollow) {
            return match answer {
                Ok(_) => 0,
                Err(e) => err(e),
            };
        }
    }
    let access = |base| proto::ops::Access {
        base,
        mask: mode as u32,
        flags: flags as u32,
    };
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe { path_op(d, p, access, |dd, q| real::faccessat()(dd, q, mode, flags)) }
}

#[inline]
pub(super) unsafe fn mkdirat(d: c_int, p: *const c_char, mode: mode_t) -> c_int {
    let mode_in = mode & 0o7777 & !state::umask();
    let mkdir = |base| proto::ops::Mkdir {
        base,
        mode: mode_in,
        _pad: 0,
    };
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe { path_op(d, p, mkdir, |dd, q| real::mkdirat()(dd, q, mode)) }
}

/// `mknodat` for regular files, FIFOs and sockets (device nodes too: the
/// daemon checks privileges exactly like the FUSE door).
#[inline]
pub(super) unsafe fn mknodat(d: c_int, p: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int {
    let Ok(rdev) = u32::try_from(dev) else {
        // Larger device numbers than the store keeps: let the kernel answer.
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::mknodat()(d, p, mode, dev) };
    };
    // A zero type means a regular file, as in mknod(2).
    let kind = if mode & libc::S_IFMT == 0 {
        libc::S_IFREG
    } else {
        mode & libc::S_IFMT
    };
    let m = kind | (mode & 0o7777 & !state::umask());
    let saved = errno();
    match ops::resolve_at(d, p, &mut ops::Target::new()) {
        // SAFETY: forwards the caller's arguments.
        At::Real => unsafe { real::mknodat()(d, p, mode, dev) },
        At::Err(e) => err(e),
        At::Ours(t) => {
            let mknod = proto::ops::Mknod {
                base: t.base,
                mode: m,
                rdev,
            };
            let r = ops::request(t.mount, &mknod, t.rel(), b"").map(|_| 0);
            // SAFETY: forwards the caller's arguments (with the path made
            // absolute for a dirfd the kernel does not know).
            finish!(saved, r, t, d, p, |dd, q| unsafe {
                real::mknodat()(dd, q, mode, dev)
            })
        }
    }
}

#[inline]
pub(super) unsafe fn unlinkat(d: c_int, p: *const c_char, flags: c_int) -> c_int {
    if flags & !libc::AT_REMOVEDIR != 0 {
        return err(libc::EINVAL);
    }
    // SAFETY: libc's own function, called with the caller's flags and the
    // path as it resolves.
    let real = |dd, q| unsafe { real::unlinkat()(dd, q, flags) };
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe {
        if flags & libc::AT_REMOVEDIR != 0 {
            path_op(d, p, |base| proto::ops::Rmdir { base }, real)
        } else {
            let then = |m, out: &proto::ops::RemovedOut| ops::let_go(m, out.file);
            path_op_then(d, p, |base| proto::ops::Unlink { base }, then, real)
        }
    }
}

#[inline]
pub(super) unsafe fn symlinkat(target: *const c_char, d: c_int, p: *const c_char) -> c_int {
    let saved = errno();
    let real = |dd: c_int, q: *const c_char| {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        unsafe { real::symlinkat()(target, dd, q) }
    };
    match ops::resolve_at(d, p, &mut ops::Target::new()) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let mut buf = [MaybeUninit::uninit(); PATH_MAX];
            // A target that cannot be read (or is too long): the kernel
            // answers, in its own order.
            let Ok(tx) = uaccess::strncpy_from_user(&mut buf, target) else {
                return real_at(t, d, p, real);
            };
            if tx.is_empty() {
                return err(libc::ENOENT);
            }
            let symlink = proto::ops::Symlink { base: t.base };
            let r = ops::request(t.mount, &symlink, t.rel(), tx).map(|_| 0);
            finish!(saved, r, t, d, p, |dd, q| real(dd, q))
        }
    }
}

#[inline]
pub(super) unsafe fn readlinkat(
    d: c_int,
    p: *const c_char,
    buf: *mut c_char,
    n: size_t,
) -> ssize_t {
    let saved = errno();
    let real = |dd: c_int, q: *const c_char| {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        unsafe { real::readlinkat()(dd, q, buf, n) }
    };
    // Up to `n` bytes of `target` to the caller, as `readlink` hands them.
    let hand = |target: &[u8]| -> ops::R<ssize_t> {
        let k = target.len().min(n);
        uaccess::copy_to_user(buf.cast::<u8>(), &target[..k])
            .map_err(|_| Fail::Errno(libc::EFAULT))?;
        Ok(k as ssize_t)
    };
    // The link the metadata cache shows at the path, if it shows one.
    let mut link = None;
    if n != 0 && n <= isize::MAX as usize {
        match cached_stat(d, p, true) {
            Some((m, Ok(attr))) if attr.mode & libc::S_IFMT == libc::S_IFLNK => {
                if let Some(r) = linkcache::with(m, attr.ino, hand) {
                    return ret_len(saved, r.map(|k| k as usize));
                }
                link = Some((m, attr.ino));
            }
            // `readlink` resolves the path as `lstat` does.
            Some((_, Ok(_))) => return err(libc::EINVAL),
            Some((_, Err(e))) => return err(e),
            None => {}
        }
    }
    match ops::resolve_at(d, p, &mut ops::Target::new()) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            if n == 0 || n > isize::MAX as usize {
                return err(libc::EINVAL);
            }
            if let Some(e) = public::readlink(t.mount, t.base, t.rel()) {
                return err(e);
            }
            let readlink = proto::ops::Readlink { base: t.base };
            let r = ops::call_with(t.mount, &readlink, t.rel(), b"", |_, target| {
                // Kept only if the path still names that link now: then it
                // named it all along, and this is its target.
                if let Some((m, ino)) = link {
                    if matches!(cached_stat(d, p, true), Some((mm, Ok(a))) if mm == m && a.ino == ino)
                    {
                        linkcache::keep(m, ino, target);
                    }
                }
                hand(target)
            });
            finish!(saved, r, t, d, p, |dd, q| real(dd, q))
        }
    }
}

/// The `stat` (`lstat` with `nofollow`) answer the metadata caches hold
/// for `p` relative to `d`, with its mount, if they hold one that is still
/// true: what a call that resolves the path the same way and looks at no
/// more than the file's existence, type and inode answers without a round
/// trip.
fn cached_stat(
    d: c_int,
    p: *const c_char,
    nofollow: bool,
) -> Option<(usize, Result<proto::WireAttr, c_int>)> {
    match ops::stat_listed(d, p, nofollow) {
        Some(hit) => Some(hit),
        None => match ops::stat_abs(d, p, nofollow) {
            ops::Abs::Hit(m, Ok(attr)) => Some((m, Ok(attr))),
            ops::Abs::Hit(m, Err(Fail::Errno(e))) => Some((m, Err(e))),
            _ => None,
        },
    }
}

/// Two-path operations (rename, link): served only when both paths are on
/// the same mount; otherwise the kernel decides (EXDEV and friends).
#[inline]
/// The request is `args` of the two paths' base directories.
pub(super) unsafe fn two_paths<O: Operation>(
    d1: c_int,
    p1: *const c_char,
    d2: c_int,
    p2: *const c_char,
    args: impl FnOnce(u64, u64) -> O,
    then: impl FnOnce(usize, &O::Reply),
    real: impl Fn(c_int, *const c_char, c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    let (mut slot1, mut slot2) = (ops::Target::new(), ops::Target::new());
    let t1 = ops::resolve_at(d1, p1, &mut slot1);
    let t2 = ops::resolve_at(d2, p2, &mut slot2);
    // With kernel fds of the same directories in place of ours.
    let call_real = |t1: &At, t2: &At| -> c_int {
        let with_dir = |t: &At, d: c_int, f: &mut dyn FnMut(c_int) -> c_int| match t {
            At::Ours(t) if t.dir.is_some() => t.with_kernel_dir(f).unwrap_or_else(err),
            _ => f(d),
        };
        with_dir(t1, d1, &mut |x1| {
            with_dir(t2, d2, &mut |x2| real(x1, p1, x2, p2))
        })
    };
    match (&t1, &t2) {
        (At::Err(e), _) | (_, At::Err(e)) => err(*e),
        (At::Ours(a), At::Ours(b)) if a.mount == b.mount => {
            match ops::request(a.mount, &args(a.base, b.base), a.rel(), b.rel()) {
                Ok(out) => {
                    then(a.mount, &out);
                    ok(saved, 0)
                }
                Err(Fail::Errno(e)) => err(e),
                Err(Fail::Real) => call_real(&t1, &t2),
            }
        }
        _ => call_real(&t1, &t2),
    }
}

#[inline]
pub(super) unsafe fn renameat2(
    d1: c_int,
    a: *const c_char,
    d2: c_int,
    b: *const c_char,
    flags: c_uint,
) -> c_int {
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe {
        let rename = |base, base2| proto::ops::Rename {
            base,
            base2,
            flags,
            _pad: 0,
        };
        let then = |m, out: &proto::ops::RemovedOut| ops::let_go(m, out.file);
        two_paths(d1, a, d2, b, rename, then, |w, x, y, z| {
            real::renameat2()(w, x, y, z, flags)
        })
    }
}

#[inline]
pub(super) unsafe fn linkat(
    d1: c_int,
    a: *const c_char,
    d2: c_int,
    b: *const c_char,
    flags: c_int,
) -> c_int {
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return err(libc::EINVAL);
    }
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe {
        let link = |base, base2| proto::ops::Link {
            base,
            base2,
            flags: flags as u32,
            _pad: 0,
        };
        two_paths(
            d1,
            a,
            d2,
            b,
            link,
            |_, _| {},
            |w, x, y, z| real::linkat()(w, x, y, z, flags),
        )
    }
}

#[inline]
pub(super) unsafe fn setattr_path(
    d: c_int,
    p: *const c_char,
    nofollow: bool,
    s: ops::R<SetAttrReq>,
    real: impl Fn(c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(d, p, &mut ops::Target::new()) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = s
                .and_then(|s| ops::setattr(t.mount, Some(t), 0, nofollow, &s))
                .map(|_| 0);
            finish!(saved, r, t, d, p, |dd, q| real(dd, q))
        }
    }
}

#[inline]
pub(super) unsafe fn truncate(p: *const c_char, len: off_t) -> c_int {
    let s = if len < 0 {
        Err(Fail::Errno(libc::EINVAL))
    } else {
        Ok(SetAttrReq {
            valid: proto::set::SIZE,
            size: len as u64,
            ..Default::default()
        })
    };
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe { setattr_path(AT_FDCWD, p, false, s, |_, q| real::truncate()(q, len)) }
}

#[inline]
pub(super) unsafe fn fchmodat(d: c_int, p: *const c_char, mode: mode_t, flags: c_int) -> c_int {
    let s = SetAttrReq {
        valid: proto::set::MODE,
        mode: mode & 0o7777,
        ..Default::default()
    };
    // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
    unsafe {
        setattr_path(
            d,
            p,
            flags & libc::AT_SYMLINK_NOFOLLOW != 0,
            Ok(s),
            |dd, q| real::fchmodat()(dd, q, mode, flags),
        )
    }
}

#[inline]
pub(super) unsafe fn fchownat(
    d: c_int,
    p: *const c_char,
    uid: libc::uid_t,
    gid: libc::gid_t,
    flags: c_int,
) -> c_int {
    if flags & libc::AT_EMPTY_PATH != 0
        && !p.is_null()
        && uaccess::read_val(p) == Ok(0)
        && FDS.is_ours(d)
    {
        return fd_setattr(d, Ok(chown_req(uid, gid))).unwrap_or_else(|| err(libc::EBADF));
    }
    // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
    unsafe {
        setattr_path(
            d,
            p,
            flags & libc::AT_SYMLINK_NOFOLLOW != 0,
            Ok(chown_req(uid, gid)),
            |dd, q| real::fchownat()(dd, q, uid, gid, flags),
        )
    }
}

#[inline]
pub(super) unsafe fn utimensat(
    d: c_int,
    p: *const c_char,
    times: *const libc::timespec,
    flags: c_int,
) -> c_int {
    if p.is_null() && FDS.is_ours(d) {
        return fd_setattr(d, ops::times_req(times)).unwrap_or_else(|| err(libc::EBADF));
    }
    if flags & libc::AT_EMPTY_PATH != 0
        && !p.is_null()
        && uaccess::read_val(p) == Ok(0)
        && FDS.is_ours(d)
    {
        return fd_setattr(d, ops::times_req(times)).unwrap_or_else(|| err(libc::EBADF));
    }
    // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
    unsafe {
        setattr_path(
            d,
            p,
            flags & libc::AT_SYMLINK_NOFOLLOW != 0,
            ops::times_req(times),
            |dd, q| real::utimensat()(dd, q, times, flags),
        )
    }
}

// ---- cwd -------------------------------------------------------------------

#[inline]
pub(super) unsafe fn chdir(p: *const c_char) -> c_int {
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    let r = unsafe { real::chdir()(p) };
    if r == 0 {
        state::cwd_changed();
    }
    r
}

#[inline]
pub(super) unsafe fn fchdir(fd: c_int) -> c_int {
    let Some(f) = ops::file(fd) else {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        let r = unsafe { real::fchdir()(fd) };
        if r == 0 {
            state::cwd_changed();
        }
        return r;
    };
    let saved = errno();
    let f = match f {
        Ok(f) => f,
        Err(Fail::Errno(e)) => return err(e),
        Err(Fail::Real) => return err(libc::EIO),
    };
    if !f.is_dir() {
        return err(libc::ENOTDIR);
    }
    // The kernel moves its own cwd to an `O_PATH` fd of the same directory
    // wherever it now is (checked to be the same inode, never whatever now
    // has its old path; a removed one works, as on tmpfs).
    let k = match ops::kernel_reopen(f.ofd(), ops::Reopen::Locate) {
        Ok(k) => k,
        Err(Fail::Errno(e)) => return err(e),
        Err(Fail::Real) => return err(libc::EIO),
    };
    let r = sys::sc!(libc::SYS_fchdir, k);
    sys::close(k);
    match r {
        Ok(_) => {
            state::cwd_changed();
            ok(saved, 0)
        }
        Err(e) => err(e),
    }
}
