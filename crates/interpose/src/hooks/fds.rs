//! Handlers of the data calls on fds: `read`/`write` and their positioned and vector forms, `lseek`, allocation, `fsync`, and attribute changes through an fd.

use core::ffi::{c_int, c_uint, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;

use libc::{mode_t, off64_t, off_t, size_t, ssize_t};
use proto::SetAttrReq;

use crate::ops::{self, Fail};
use crate::real;
use crate::state::FDS;
use crate::sys::errno;
use crate::uaccess;

use super::common::*;
use crate::callargs::chown_req;

// ---- data --------------------------------------------------------------------

#[inline]
pub(super) fn iov1(buf: *mut c_void, n: size_t) -> [libc::iovec; 1] {
    [libc::iovec {
        iov_base: buf,
        iov_len: n,
    }]
}

#[inline]
pub(super) fn read_ours(f: &ops::FileRef, iov: &[libc::iovec]) -> ops::R<usize> {
    f.with_pos(|_| {
        let off = f.position()?;
        let n = f.pread(iov, off)?;
        f.set_position(off + n as u64)?;
        Ok(n)
    })
}

#[inline]
pub(super) fn write_ours(f: &ops::FileRef, iov: &[libc::iovec]) -> ops::R<usize> {
    let append = f.ofd().flags.load(Ordering::Relaxed) & libc::O_APPEND as u32 != 0;
    f.with_pos(|_| {
        let off = f.position()?;
        let (n, end) = f.pwrite(iov, off, append)?;
        f.set_position(end)?;
        Ok(n)
    })
}

#[inline]
pub(super) unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::read()(fd, buf, n) }
        }
        Some(f) => {
            let saved = errno();
            ret_len(saved, f.and_then(|f| read_ours(&f, &iov1(buf, n))))
        }
    }
}

/// `readv`/`writev` on a fast-path fd through `io`; `None` when `fd` is not
/// ours.
///
/// # Safety
/// `iov` is the caller's array of `cnt` iovecs (the C contract).
#[inline]
pub(super) unsafe fn iov_call(
    fd: c_int,
    iov: *const libc::iovec,
    cnt: c_int,
    io: fn(&ops::FileRef, &[libc::iovec]) -> ops::R<usize>,
) -> Option<ssize_t> {
    let f = ops::file(fd)?;
    let saved = errno();
    let mut buf = [MaybeUninit::uninit(); IOV_MAX];
    Some(match iovs(iov, cnt, &mut buf) {
        Ok(v) => ret_len(saved, f.and_then(|f| io(&f, v))),
        Err(e) => err(e),
    })
}

#[inline]
pub(super) unsafe fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { iov_call(fd, iov, cnt, read_ours).unwrap_or_else(|| real::readv()(fd, iov, cnt)) }
}

#[inline]
pub(super) unsafe fn pread_impl(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off64_t,
) -> Option<ssize_t> {
    let f = ops::file(fd)?;
    let saved = errno();
    if off < 0 {
        return Some(err(libc::EINVAL));
    }
    Some(ret_len(
        saved,
        f.and_then(|f| f.pread(&iov1(buf, n), off as u64)),
    ))
}

#[inline]
pub(super) unsafe fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { pread_impl(fd, buf, n, off).unwrap_or_else(|| real::pread()(fd, buf, n, off)) }
}

#[inline]
pub(super) unsafe fn pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off64_t) -> ssize_t {
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe { pread_impl(fd, buf, n, off).unwrap_or_else(|| real::pread64()(fd, buf, n, off)) }
}

#[inline]
pub(super) unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::write()(fd, buf, n) }
        }
        Some(f) => {
            let saved = errno();
            ret_len(
                saved,
                f.and_then(|f| write_ours(&f, &iov1(buf as *mut c_void, n))),
            )
        }
    }
}

#[inline]
pub(super) unsafe fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { iov_call(fd, iov, cnt, write_ours).unwrap_or_else(|| real::writev()(fd, iov, cnt)) }
}

#[inline]
pub(super) unsafe fn pwrite_impl(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    off: off64_t,
) -> Option<ssize_t> {
    let f = ops::file(fd)?;
    let saved = errno();
    if off < 0 {
        return Some(err(libc::EINVAL));
    }
    Some(ret_len(
        saved,
        f.and_then(|f| {
            // Linux: pwrite on an O_APPEND file appends.
            let append = f.ofd().flags.load(Ordering::Relaxed) & libc::O_APPEND as u32 != 0;
            f.pwrite(&iov1(buf as *mut c_void, n), off as u64, append)
                .map(|(n, _)| n)
        }),
    ))
}

#[inline]
pub(super) unsafe fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { pwrite_impl(fd, buf, n, off).unwrap_or_else(|| real::pwrite()(fd, buf, n, off)) }
}

#[inline]
pub(super) unsafe fn pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off64_t) -> ssize_t {
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe { pwrite_impl(fd, buf, n, off).unwrap_or_else(|| real::pwrite64()(fd, buf, n, off)) }
}

#[inline]
pub(super) fn lseek_ours(f: &ops::FileRef, off: i64, whence: c_int) -> ops::R<i64> {
    if f.is_dir() {
        // Directory streams keep their own cookie; only a rewind is meaningful.
        return if whence == libc::SEEK_SET && off == 0 {
            f.ofd().offset.store(0, Ordering::Relaxed);
            Ok(0)
        } else {
            Err(Fail::Errno(libc::EINVAL))
        };
    }
    f.with_pos(|pos| {
        let cur = pos.load(Ordering::Relaxed) as i64;
        let size = || ops::stat_handle(f.mount, f.fh()?).map(|a| a.size as i64);
        let new = match whence {
            libc::SEEK_SET => off,
            libc::SEEK_CUR => cur.checked_add(off).ok_or(Fail::Errno(libc::EOVERFLOW))?,
            libc::SEEK_END => size()?
                .checked_add(off)
                .ok_or(Fail::Errno(libc::EOVERFLOW))?,
            libc::SEEK_DATA | libc::SEEK_HOLE => f.seek_data_hole(off, whence)?,
            _ => return Err(Fail::Errno(libc::EINVAL)),
        };
        if new < 0 {
            return Err(Fail::Errno(libc::EINVAL));
        }
        pos.store(new as u64, Ordering::Relaxed);
        Ok(new)
    })
}

#[inline]
pub(super) unsafe fn lseek(fd: c_int, off: off_t, whence: c_int) -> off_t {
    match ops::file(fd) {
        // A kernel-backed fd's offset lives in the kernel.
        Some(Ok(f)) if f.kernel_backed() => {
            drop(f);
            // SAFETY: forwards the caller's arguments.
            unsafe { real::lseek()(fd, off, whence) }
        }
        None => {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::lseek()(fd, off, whence) }
        }
        Some(f) => {
            let saved = errno();
            match f.and_then(|f| lseek_ours(&f, off, whence)) {
                Ok(v) => ok(saved, v),
                Err(Fail::Errno(e)) => err(e),
                Err(Fail::Real) => err(libc::EIO),
            }
        }
    }
}

#[inline]
pub(super) unsafe fn posix_fadvise(fd: c_int, off: off_t, len: off_t, advice: c_int) -> c_int {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::posix_fadvise()(fd, off, len, advice) }
        }
        // Advice only; posix_fadvise returns the error number itself.
        Some(Ok(_)) => 0,
        Some(Err(_)) => libc::EBADF,
    }
}

#[inline]
pub(super) unsafe fn copy_file_range(
    fdin: c_int,
    offin: *mut off64_t,
    fdout: c_int,
    offout: *mut off64_t,
    len: size_t,
    flags: c_uint,
) -> ssize_t {
    let (input, output) = match (ops::file(fdin), ops::file(fdout)) {
        (None, None) => {
            // SAFETY: forwards the caller's arguments.
            return unsafe { real::copy_file_range()(fdin, offin, fdout, offout, len, flags) };
        }
        (Some(Ok(i)), Some(Ok(o))) if i.mount == o.mount => (i, o),
        (Some(Err(Fail::Errno(e))), _) | (_, Some(Err(Fail::Errno(e)))) => return err(e),
        // One end elsewhere (or on another mount): like the kernel between
        // two filesystems; callers fall back to read/write.
        _ => return err(libc::EXDEV),
    };
    if flags != 0 {
        return err(libc::EINVAL);
    }
    let saved = errno();
    // Explicit offsets are read and updated through the pointers; otherwise
    // the file offsets are used and advanced.
    let explicit = |p: *mut off64_t| -> ops::R<Option<u64>> {
        if p.is_null() {
            return Ok(None);
        }
        let v = uaccess::read_val(p).map_err(|_| Fail::Errno(libc::EFAULT))?;
        u64::try_from(v)
            .map(Some)
            .map_err(|_| Fail::Errno(libc::EINVAL))
    };
    let result = (|| {
        let (oin, oout) = (explicit(offin)?, explicit(offout)?);
        let pos_in = match oin {
            Some(p) => p,
            None => input.position()?,
        };
        let pos_out = match oout {
            Some(p) => p,
            None => output.position()?,
        };
        let n = input.copy_to(pos_in, &output, pos_out, len)?;
        // An offset that cannot be written back: EFAULT after the copy,
        // as the kernel's.
        let advance = |p: *mut off64_t, explicit: Option<u64>, f: &ops::FileRef, pos: u64| {
            let new = pos + n as u64;
            match explicit {
                Some(_) => {
                    uaccess::write_val(p, &(new as off64_t)).map_err(|_| Fail::Errno(libc::EFAULT))
                }
                None => {
                    let _ = f.set_position(new);
                    Ok(())
                }
            }
        };
        let a = advance(offin, oin, &input, pos_in);
        let b = advance(offout, oout, &output, pos_out);
        a.and(b).map(|()| n)
    })();
    match result {
        Ok(n) => ok(saved, n as ssize_t),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    }
}

#[inline]
pub(super) unsafe fn fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::fallocate()(fd, mode, off, len) }
        }
        Some(f) => {
            let saved = errno();
            match f.and_then(|f| f.fallocate(mode, off, len)) {
                Ok(()) => ok(saved, 0),
                Err(Fail::Errno(e)) => err(e),
                Err(Fail::Real) => err(libc::EIO),
            }
        }
    }
}

/// glibc's `posix_fallocate` calls the syscall internally (no hook sees it)
/// and returns the error number instead of setting errno.
#[inline]
pub(super) unsafe fn posix_fallocate(fd: c_int, off: off_t, len: off_t) -> c_int {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::posix_fallocate()(fd, off, len) }
        }
        Some(f) => match f.and_then(|f| f.fallocate(0, off, len)) {
            Ok(()) => 0,
            Err(Fail::Errno(e)) => e,
            Err(Fail::Real) => libc::EIO,
        },
    }
}

#[inline]
pub(super) unsafe fn fsync(fd: c_int) -> c_int {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards the caller's argument.
            unsafe { real::fsync()(fd) }
        }
        Some(f) => {
            let saved = errno();
            let r = f.and_then(|f| {
                if f.is_dir() {
                    // Nothing to flush for an in-memory directory.
                    return Ok(0);
                }
                ops::request(f.mount, &proto::ops::Fsync { fh: f.fh()? }, b"", b"").map(|_| 0)
            });
            ret_int(saved, r)
        }
    }
}

#[inline]
pub(super) unsafe fn fdatasync(fd: c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on under the C contract this handler is called with.
    unsafe {
        if FDS.is_ours(fd) {
            super::fsync(fd)
        } else {
            real::fdatasync()(fd)
        }
    }
}

#[inline]
pub(super) unsafe fn ftruncate(fd: c_int, len: off_t) -> c_int {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::ftruncate()(fd, len) }
        }
        Some(f) => {
            let saved = errno();
            let r = f.and_then(|f| {
                if len < 0 || f.is_dir() || (f.flags as i32 & libc::O_ACCMODE) == libc::O_RDONLY {
                    return Err(Fail::Errno(libc::EINVAL));
                }
                let s = SetAttrReq {
                    valid: proto::set::SIZE,
                    size: len as u64,
                    ..Default::default()
                };
                ops::setattr(f.mount, None, f.fh()?, false, &s).map(|_| 0)
            });
            ret_int(saved, r)
        }
    }
}

#[inline]
pub(super) fn fd_setattr(fd: c_int, s: ops::R<SetAttrReq>) -> Option<c_int> {
    let f = ops::file(fd)?;
    let saved = errno();
    Some(ret_int(
        saved,
        f.and_then(|f| ops::setattr(f.mount, None, f.fh()?, false, &s?).map(|_| 0)),
    ))
}

#[inline]
pub(super) unsafe fn fchmod(fd: c_int, mode: mode_t) -> c_int {
    let s = SetAttrReq {
        valid: proto::set::MODE,
        mode: mode & 0o7777,
        ..Default::default()
    };
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    fd_setattr(fd, Ok(s)).unwrap_or_else(|| unsafe { real::fchmod()(fd, mode) })
}

#[inline]
pub(super) unsafe fn fchown(fd: c_int, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    fd_setattr(fd, Ok(chown_req(uid, gid)))
        .unwrap_or_else(|| unsafe { real::fchown()(fd, uid, gid) })
}

#[inline]
pub(super) unsafe fn futimens(fd: c_int, times: *const libc::timespec) -> c_int {
    if !FDS.is_ours(fd) {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::futimens()(fd, times) };
    }
    fd_setattr(fd, ops::times_req(times)).unwrap_or_else(|| err(libc::EBADF))
}

// ---- vector reads and writes at an offset ------------------------------------

/// Room for a copy of the caller's iovec array (16 KiB of stack, only on
/// the fast path: the kernel copies the array too before it uses it).
pub(super) type IovBuf = [MaybeUninit<libc::iovec>; IOV_MAX];
pub(super) const IOV_MAX: usize = 1024;

/// The caller's iovec array, copied into `buf` and checked like the kernel
/// (`IOV_MAX`, `EFAULT`).
#[inline]
pub(super) fn iovs(
    iov: *const libc::iovec,
    cnt: c_int,
    buf: &mut IovBuf,
) -> Result<&[libc::iovec], i32> {
    if !(0..=IOV_MAX as c_int).contains(&cnt) {
        return Err(libc::EINVAL);
    }
    let n = cnt as usize;
    // SAFETY: `buf` holds IOV_MAX >= n iovecs; the caller's side is
    // fault-tolerant.
    unsafe {
        uaccess::copy_in(
            buf.as_mut_ptr().cast(),
            iov.cast(),
            n * core::mem::size_of::<libc::iovec>(),
        )
    }
    .map_err(|_| libc::EFAULT)?;
    // SAFETY: the first `n` were written by the copy; iovec is plain data.
    Ok(unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n) })
}

/// `preadv2`/`pwritev2` semantics on a fast-path fd: offset -1 means the
/// file offset (like `readv`/`writev`); flags other than 0 are the
/// kernel's business (the file becomes kernel-backed, `None` is returned
/// and the caller calls the real function).
#[inline]
pub(super) fn rw_vec(
    fd: c_int,
    iov: *const libc::iovec,
    cnt: c_int,
    off: off64_t,
    flags: c_int,
    write: bool,
) -> Option<ssize_t> {
    if !FDS.is_ours(fd) {
        return None;
    }
    if flags != 0 {
        return match ops::kernel_fd(fd) {
            Ok(()) => None,
            Err(e) => Some(err(e)),
        };
    }
    let f = ops::file(fd)?;
    let saved = errno();
    let mut buf = [MaybeUninit::uninit(); IOV_MAX];
    let v = match iovs(iov, cnt, &mut buf) {
        Ok(v) => v,
        Err(e) => return Some(err(e)),
    };
    if off < -1 {
        return Some(err(libc::EINVAL));
    }
    Some(ret_len(
        saved,
        f.and_then(|f| match (write, off) {
            (false, -1) => read_ours(&f, v),
            (true, -1) => write_ours(&f, v),
            (false, o) => f.pread(v, o as u64),
            (true, o) => {
                // Linux: pwritev on an O_APPEND file appends.
                let append = f.ofd().flags.load(Ordering::Relaxed) & libc::O_APPEND as u32 != 0;
                f.pwrite(v, o as u64, append).map(|(n, _)| n)
            }
        }),
    ))
}

/// Writes the handlers of the positioned vector calls (`v1`: `preadv`
/// and friends; `v2`: the `*v2` forms with flags) over [`rw_vec`].
macro_rules! vec_hooks {
    ($( $name:ident($offt:ty, $write:expr, $v2:tt) ; )*) => {
        $(
            vec_hooks!(@one $name, $offt, $write, $v2);
        )*
    };
    (@one $name:ident, $offt:ty, $write:expr, v1) => {
        #[inline]
        pub(super) unsafe fn $name(
            fd: c_int,
            iov: *const libc::iovec,
            cnt: c_int,
            off: $offt,
        ) -> ssize_t {
            if off < 0 && FDS.is_ours(fd) {
                return err(libc::EINVAL);
            }
            rw_vec(fd, iov, cnt, off, 0, $write).unwrap_or_else(|| {
                // SAFETY: forwards the caller's arguments.
                unsafe { real::$name()(fd, iov, cnt, off) }
            })
        }
    };
    (@one $name:ident, $offt:ty, $write:expr, v2) => {
        #[inline]
        pub(super) unsafe fn $name(
            fd: c_int,
            iov: *const libc::iovec,
            cnt: c_int,
            off: $offt,
            flags: c_int,
        ) -> ssize_t {
            rw_vec(fd, iov, cnt, off, flags, $write).unwrap_or_else(|| {
                // SAFETY: forwards the caller's arguments.
                unsafe { real::$name()(fd, iov, cnt, off, flags) }
            })
        }
    };
}

vec_hooks! {
    preadv(off_t, false, v1);
    preadv64(off64_t, false, v1);
    pwritev(off_t, true, v1);
    pwritev64(off64_t, true, v1);
    preadv2(off_t, false, v2);
    preadv64v2(off64_t, false, v2);
    pwritev2(off_t, true, v2);
    pwritev64v2(off64_t, true, v2);
}
