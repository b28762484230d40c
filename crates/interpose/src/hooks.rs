//! The exported libc entry points.
//!
//! Each hook answers one of three ways (bytehound/mirrord style): served on
//! the fast path, not ours (the real libc function, via `real::*`), or an
//! error. "Not ours" is decided first and cheaply: one relaxed load of the
//! fd table for fd calls; for path calls a first-byte test plus, for
//! absolute paths, a component-wise prefix match against the (few) btfuse
//! mountpoints. The caller's errno is preserved on success and set only
//! for the caller's result.
//!
//! Variadic C functions (`open`, `openat`, `fcntl`) are defined with their
//! optional argument as a fixed one: on x86_64 and aarch64 Linux the
//! optional integer argument travels in the same register either way, and
//! it is only read when the flags say it is there.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;

use libc::{mode_t, off64_t, off_t, size_t, ssize_t, AT_FDCWD, DIR};
use proto::ops::Operation;
use proto::{SetAttrReq, PATH_MAX};

use crate::channel;
use crate::dir;
use crate::ops::{self, At, Fail, Target};
use crate::real;
use crate::state::{self, FDS};
use crate::sys::{self, errno, set_errno};
use crate::uaccess;

extern "C" {
    fn __chk_fail() -> !;
}

#[inline]
fn ok<T>(saved: i32, v: T) -> T {
    set_errno(saved);
    v
}

#[inline]
fn err<T: From<i8>>(e: i32) -> T {
    set_errno(e);
    T::from(-1)
}

fn dev(mount: usize) -> u64 {
    state::MOUNTS[mount].dev.load(Ordering::Relaxed)
}

/// Calls `f` with the arguments the kernel needs for a call that the fast
/// path hands back: the original ones, with a kernel fd of the same
/// directory in place of one of our directory fds.
fn real_at<T: From<i8>>(
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

/// Standard ending of a path hook: success value, errno, or the kernel.
macro_rules! finish {
    ($saved:expr, $res:expr, $t:expr, $dirfd:expr, $p:expr, |$d:ident, $q:ident| $real:expr) => {
        match $res {
            Ok(v) => ok($saved, v),
            Err(Fail::Errno(e)) => err(e),
            Err(Fail::Real) => real_at(&$t, $dirfd, $p, |$d, $q| $real),
        }
    };
}

// ---- open / close ----------------------------------------------------------

unsafe fn do_openat(
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
    real: impl FnOnce(c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(dirfd, p) {
        At::Real => real(dirfd, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            // O_TMPFILE includes the O_DIRECTORY bit: compare all of it.
            if flags & libc::O_PATH != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
                return real_at(&t, dirfd, p, real);
            }
            let r = ops::open(&t, flags, mode);
            finish!(saved, r, t, dirfd, p, |d, q| real(d, q))
        }
    }
}

fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

#[no_mangle]
pub unsafe extern "C" fn open(p: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    // SAFETY: forwards the caller's arguments.
    unsafe {
        do_openat(AT_FDCWD, p, flags, mode, |d, q| {
            real::openat()(d, q, flags, mode)
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn open64(p: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: as above.
    unsafe { open(p, flags, mode) }
}

#[no_mangle]
pub unsafe extern "C" fn __open_2(p: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as above (the fortified form has no mode).
    unsafe { open(p, flags, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn __open64_2(p: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as above.
    unsafe { open(p, flags, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    // SAFETY: as above.
    unsafe {
        do_openat(dirfd, p, flags, mode, |d, q| {
            real::openat()(d, q, flags, mode)
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: as above.
    unsafe { openat(dirfd, p, flags, mode) }
}

#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, p: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as above.
    unsafe { openat(dirfd, p, flags, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, p: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as above.
    unsafe { openat(dirfd, p, flags, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn creat(p: *const c_char, mode: mode_t) -> c_int {
    // SAFETY: as above.
    unsafe { open(p, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode) }
}

#[no_mangle]
pub unsafe extern "C" fn creat64(p: *const c_char, mode: mode_t) -> c_int {
    // SAFETY: as above.
    unsafe { creat(p, mode) }
}

/// Drops our mapping of `fd` and closes its placeholder.
fn close_ours(fd: c_int) {
    if let Some(r) = FDS.remove(fd) {
        sys::close(fd);
        ops::close_drops_locks(&r);
        ops::put(r);
    }
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
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
    // SAFETY: forwards the caller's argument.
    unsafe { real::close()(fd) }
}

/// Closes `[lo, hi]` except the library's own sockets.
unsafe fn close_range_impl(lo: c_uint, hi: c_uint, flags: c_int) -> c_int {
    let saved = errno();
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        FDS.for_each_in(lo, hi, close_ours);
    }
    ops::forget_nullfd_in(lo, hi);
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
        // SAFETY: as above.
        r |= unsafe { real::close_range()(start as c_uint, hi, flags) };
    }
    if r == 0 {
        ok(saved, 0)
    } else {
        -1
    }
}

#[no_mangle]
pub unsafe extern "C" fn close_range(lo: c_uint, hi: c_uint, flags: c_int) -> c_int {
    if lo > hi {
        return err(libc::EINVAL);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { close_range_impl(lo, hi, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn closefrom(lo: c_int) {
    // SAFETY: as above.
    unsafe { close_range_impl(lo.max(0) as c_uint, c_uint::MAX, 0) };
}

// ---- data --------------------------------------------------------------------

fn iov1(buf: *mut c_void, n: size_t) -> [libc::iovec; 1] {
    [libc::iovec {
        iov_base: buf,
        iov_len: n,
    }]
}

fn read_ours(f: &ops::FileRef, iov: &[libc::iovec]) -> ops::R<usize> {
    f.with_pos(|_| {
        let off = f.position()?;
        let n = f.pread(iov, off)?;
        f.set_position(off + n as u64)?;
        Ok(n)
    })
}

fn write_ours(f: &ops::FileRef, iov: &[libc::iovec]) -> ops::R<usize> {
    let append = f.ofd().flags.load(Ordering::Relaxed) & libc::O_APPEND as u32 != 0;
    f.with_pos(|_| {
        let off = f.position()?;
        let (n, end) = f.pwrite(iov, off, append)?;
        f.set_position(end)?;
        Ok(n)
    })
}

fn ret_len(saved: i32, r: ops::R<usize>) -> ssize_t {
    match r {
        Ok(n) => ok(saved, n as ssize_t),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
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

#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: glibc's fortify failure, never returns.
        unsafe { __chk_fail() }
    }
    // SAFETY: as above.
    unsafe { read(fd, buf, n) }
}

/// `readv`/`writev` on a fast-path fd through `io`; `None` when `fd` is not
/// ours.
///
/// # Safety
/// `iov` is the caller's array of `cnt` iovecs (the C contract).
unsafe fn iov_call(
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

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { iov_call(fd, iov, cnt, read_ours).unwrap_or_else(|| real::readv()(fd, iov, cnt)) }
}

unsafe fn pread_impl(fd: c_int, buf: *mut c_void, n: size_t, off: off64_t) -> Option<ssize_t> {
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

#[no_mangle]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { pread_impl(fd, buf, n, off).unwrap_or_else(|| real::pread()(fd, buf, n, off)) }
}

#[no_mangle]
pub unsafe extern "C" fn pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off64_t) -> ssize_t {
    // SAFETY: as above.
    unsafe { pread_impl(fd, buf, n, off).unwrap_or_else(|| real::pread64()(fd, buf, n, off)) }
}

#[no_mangle]
pub unsafe extern "C" fn __pread_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: never returns.
        unsafe { __chk_fail() }
    }
    // SAFETY: as above.
    unsafe { pread(fd, buf, n, off) }
}

#[no_mangle]
pub unsafe extern "C" fn __pread64_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off64_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: never returns.
        unsafe { __chk_fail() }
    }
    // SAFETY: as above.
    unsafe { pread64(fd, buf, n, off) }
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
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

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { iov_call(fd, iov, cnt, write_ours).unwrap_or_else(|| real::writev()(fd, iov, cnt)) }
}

unsafe fn pwrite_impl(fd: c_int, buf: *const c_void, n: size_t, off: off64_t) -> Option<ssize_t> {
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

#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t {
    // SAFETY: forwards the caller's arguments.
    unsafe { pwrite_impl(fd, buf, n, off).unwrap_or_else(|| real::pwrite()(fd, buf, n, off)) }
}

#[no_mangle]
pub unsafe extern "C" fn pwrite64(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    off: off64_t,
) -> ssize_t {
    // SAFETY: as above.
    unsafe { pwrite_impl(fd, buf, n, off).unwrap_or_else(|| real::pwrite64()(fd, buf, n, off)) }
}

fn lseek_ours(f: &ops::FileRef, off: i64, whence: c_int) -> ops::R<i64> {
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
        let size = || ops::stat_handle(f.mount, f.fh).map(|a| a.size as i64);
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

#[no_mangle]
pub unsafe extern "C" fn lseek(fd: c_int, off: off_t, whence: c_int) -> off_t {
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

#[no_mangle]
pub unsafe extern "C" fn lseek64(fd: c_int, off: off64_t, whence: c_int) -> off64_t {
    // SAFETY: off_t is 64-bit on the supported targets.
    unsafe { lseek(fd, off, whence) }
}

#[no_mangle]
pub unsafe extern "C" fn posix_fadvise(fd: c_int, off: off_t, len: off_t, advice: c_int) -> c_int {
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

#[no_mangle]
pub unsafe extern "C" fn posix_fadvise64(
    fd: c_int,
    off: off64_t,
    len: off64_t,
    advice: c_int,
) -> c_int {
    // SAFETY: as above.
    unsafe { posix_fadvise(fd, off, len, advice) }
}

#[no_mangle]
pub unsafe extern "C" fn copy_file_range(
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

#[no_mangle]
pub unsafe extern "C" fn fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int {
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

#[no_mangle]
pub unsafe extern "C" fn fallocate64(fd: c_int, mode: c_int, off: off64_t, len: off64_t) -> c_int {
    // SAFETY: off_t is 64-bit on the supported targets.
    unsafe { fallocate(fd, mode, off, len) }
}

/// glibc's `posix_fallocate` calls the syscall internally (no hook sees it)
/// and returns the error number instead of setting errno.
#[no_mangle]
pub unsafe extern "C" fn posix_fallocate(fd: c_int, off: off_t, len: off_t) -> c_int {
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

#[no_mangle]
pub unsafe extern "C" fn posix_fallocate64(fd: c_int, off: off64_t, len: off64_t) -> c_int {
    // SAFETY: off_t is 64-bit on the supported targets.
    unsafe { posix_fallocate(fd, off, len) }
}

#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
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
                ops::request(f.mount, &proto::ops::Fsync { fh: f.fh }, b"", b"").map(|_| 0)
            });
            ret_int(saved, r)
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    // SAFETY: forwards.
    unsafe {
        if FDS.is_ours(fd) {
            fsync(fd)
        } else {
            real::fdatasync()(fd)
        }
    }
}

fn ret_int(saved: i32, r: ops::R<c_int>) -> c_int {
    match r {
        Ok(v) => ok(saved, v),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    }
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
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
                ops::setattr(f.mount, None, f.fh, false, &s).map(|_| 0)
            });
            ret_int(saved, r)
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off64_t) -> c_int {
    // SAFETY: forwards.
    unsafe { ftruncate(fd, len) }
}

fn fd_setattr(fd: c_int, s: ops::R<SetAttrReq>) -> Option<c_int> {
    let f = ops::file(fd)?;
    let saved = errno();
    Some(ret_int(
        saved,
        f.and_then(|f| ops::setattr(f.mount, None, f.fh, false, &s?).map(|_| 0)),
    ))
}

#[no_mangle]
pub unsafe extern "C" fn fchmod(fd: c_int, mode: mode_t) -> c_int {
    let s = SetAttrReq {
        valid: proto::set::MODE,
        mode: mode & 0o7777,
        ..Default::default()
    };
    // SAFETY: forwards.
    fd_setattr(fd, Ok(s)).unwrap_or_else(|| unsafe { real::fchmod()(fd, mode) })
}

fn chown_req(uid: libc::uid_t, gid: libc::gid_t) -> SetAttrReq {
    let mut s = SetAttrReq {
        valid: proto::set::CHOWN,
        ..SetAttrReq::default()
    };
    if uid != u32::MAX {
        s.valid |= proto::set::UID;
        s.uid = uid;
    }
    if gid != u32::MAX {
        s.valid |= proto::set::GID;
        s.gid = gid;
    }
    s
}

#[no_mangle]
pub unsafe extern "C" fn fchown(fd: c_int, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    // SAFETY: forwards.
    fd_setattr(fd, Ok(chown_req(uid, gid)))
        .unwrap_or_else(|| unsafe { real::fchown()(fd, uid, gid) })
}

#[no_mangle]
pub unsafe extern "C" fn futimens(fd: c_int, times: *const libc::timespec) -> c_int {
    if !FDS.is_ours(fd) {
        // SAFETY: forwards.
        return unsafe { real::futimens()(fd, times) };
    }
    fd_setattr(fd, ops::times_req(times)).unwrap_or_else(|| err(libc::EBADF))
}

// ---- stat --------------------------------------------------------------------

fn fstat_ours(fd: c_int, st: *mut libc::stat) -> Option<c_int> {
    let f = ops::file(fd)?;
    let saved = errno();
    Some(ret_int(
        saved,
        f.and_then(|f| {
            let a = ops::stat_handle(f.mount, f.fh)?;
            ops::fill_stat(st, &a, dev(f.mount)).map(|()| 0)
        }),
    ))
}

#[no_mangle]
pub unsafe extern "C" fn fstat(fd: c_int, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards the caller's arguments.
    fstat_ours(fd, st).unwrap_or_else(|| unsafe { real::fstat()(fd, st) })
}

#[no_mangle]
pub unsafe extern "C" fn fstat64(fd: c_int, st: *mut libc::stat64) -> c_int {
    // SAFETY: stat and stat64 share one layout on the 64-bit targets.
    fstat_ours(fd, st.cast()).unwrap_or_else(|| unsafe { real::fstat64()(fd, st) })
}

unsafe fn stat_at(dirfd: c_int, p: *const c_char, st: *mut libc::stat, flags: c_int) -> c_int {
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
    match ops::resolve_at(dirfd, p) {
        At::Real => real(dirfd, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = ops::stat_path(&t, flags & libc::AT_SYMLINK_NOFOLLOW != 0)
                .and_then(|a| ops::fill_stat(st, &a, dev(t.mount)).map(|()| 0));
            finish!(saved, r, t, dirfd, p, |d, q| real(d, q))
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn stat(p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(AT_FDCWD, p, st, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn stat64(p: *const c_char, st: *mut libc::stat64) -> c_int {
    // SAFETY: same layout.
    unsafe { stat_at(AT_FDCWD, p, st.cast(), 0) }
}

#[no_mangle]
pub unsafe extern "C" fn lstat(p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(AT_FDCWD, p, st, libc::AT_SYMLINK_NOFOLLOW) }
}

#[no_mangle]
pub unsafe extern "C" fn lstat64(p: *const c_char, st: *mut libc::stat64) -> c_int {
    // SAFETY: same layout.
    unsafe { stat_at(AT_FDCWD, p, st.cast(), libc::AT_SYMLINK_NOFOLLOW) }
}

#[no_mangle]
pub unsafe extern "C" fn fstatat(
    d: c_int,
    p: *const c_char,
    st: *mut libc::stat,
    flags: c_int,
) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(d, p, st, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn fstatat64(
    d: c_int,
    p: *const c_char,
    st: *mut libc::stat64,
    flags: c_int,
) -> c_int {
    // SAFETY: same layout.
    unsafe { stat_at(d, p, st.cast(), flags) }
}

// Pre-2.33 binaries: `__xstat(ver, ...)`; the version is 1 (kernel layout)
// on x86_64 and 0 on aarch64, both the layout of `struct stat`.
#[no_mangle]
pub unsafe extern "C" fn __xstat(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(AT_FDCWD, p, st, 0) }
}
#[no_mangle]
pub unsafe extern "C" fn __xstat64(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(AT_FDCWD, p, st, 0) }
}
#[no_mangle]
pub unsafe extern "C" fn __lxstat(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(AT_FDCWD, p, st, libc::AT_SYMLINK_NOFOLLOW) }
}
#[no_mangle]
pub unsafe extern "C" fn __lxstat64(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(AT_FDCWD, p, st, libc::AT_SYMLINK_NOFOLLOW) }
}
#[no_mangle]
pub unsafe extern "C" fn __fxstat(_v: c_int, fd: c_int, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { fstat(fd, st) }
}
#[no_mangle]
pub unsafe extern "C" fn __fxstat64(_v: c_int, fd: c_int, st: *mut libc::stat) -> c_int {
    // SAFETY: forwards.
    unsafe { fstat(fd, st) }
}
#[no_mangle]
pub unsafe extern "C" fn __fxstatat(
    _v: c_int,
    d: c_int,
    p: *const c_char,
    st: *mut libc::stat,
    fl: c_int,
) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(d, p, st, fl) }
}
#[no_mangle]
pub unsafe extern "C" fn __fxstatat64(
    _v: c_int,
    d: c_int,
    p: *const c_char,
    st: *mut libc::stat,
    fl: c_int,
) -> c_int {
    // SAFETY: forwards.
    unsafe { stat_at(d, p, st, fl) }
}

#[no_mangle]
pub unsafe extern "C" fn statx(
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
                let a = ops::stat_handle(f.mount, f.fh)?;
                ops::fill_statx(buf, &a, f.mount).map(|()| 0)
            });
            return ret_int(saved, r);
        }
    }
    let real = |dd: c_int, q: *const c_char| {
        // SAFETY: forwards the caller's arguments.
        unsafe { real::statx()(dd, q, flags, mask, buf) }
    };
    match ops::resolve_at(d, p) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = ops::stat_path(&t, flags & libc::AT_SYMLINK_NOFOLLOW != 0)
                .and_then(|a| ops::fill_statx(buf, &a, t.mount).map(|()| 0));
            finish!(saved, r, t, d, p, |dd, q| real(dd, q))
        }
    }
}

/// `statfs`/`statvfs` of a path: one round trip (the daemon checks that the
/// path exists), the kernel for paths not on a mount.
unsafe fn path_fs_query(
    p: *const c_char,
    query: impl FnOnce(&ops::FsOf<'_>) -> ops::R<()>,
    real: impl Fn(*const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(AT_FDCWD, p) {
        At::Real => real(p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = query(&ops::FsOf::path(&t)).map(|()| 0);
            finish!(saved, r, t, AT_FDCWD, p, |_d, q| real(q))
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn statfs(p: *const c_char, out: *mut libc::statfs) -> c_int {
    // SAFETY: forwards the caller's arguments.
    unsafe { path_fs_query(p, |at| ops::statfs(at, out), |q| real::statfs()(q, out)) }
}

#[no_mangle]
pub unsafe extern "C" fn statfs64(p: *const c_char, out: *mut libc::statfs64) -> c_int {
    // SAFETY: same layout on the 64-bit targets.
    unsafe { statfs(p, out.cast()) }
}

#[no_mangle]
pub unsafe extern "C" fn fstatfs(fd: c_int, out: *mut libc::statfs) -> c_int {
    match ops::file(fd) {
        None => {
            // SAFETY: forwards.
            unsafe { real::fstatfs()(fd, out) }
        }
        Some(f) => {
            let saved = errno();
            ret_int(
                saved,
                f.and_then(|f| ops::statfs(&ops::FsOf::file(&f), out).map(|_| 0)),
            )
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn fstatfs64(fd: c_int, out: *mut libc::statfs64) -> c_int {
    // SAFETY: same layout.
    unsafe { fstatfs(fd, out.cast()) }
}

/// `statvfs`: glibc's calls its internal `statfs` (no hook sees it);
/// served from the daemon's `statfs`, converted as glibc converts.
unsafe fn statvfs_impl(p: *const c_char, out: *mut libc::statvfs) -> c_int {
    // SAFETY: forwards the caller's arguments.
    unsafe { path_fs_query(p, |at| ops::statvfs(at, out), |q| real::statvfs()(q, out)) }
}

#[no_mangle]
pub unsafe extern "C" fn statvfs(p: *const c_char, out: *mut libc::statvfs) -> c_int {
    // SAFETY: forwards.
    unsafe { statvfs_impl(p, out) }
}

#[no_mangle]
pub unsafe extern "C" fn statvfs64(p: *const c_char, out: *mut libc::statvfs64) -> c_int {
    // SAFETY: same layout on the 64-bit targets.
    unsafe { statvfs_impl(p, out.cast()) }
}

fn fstatvfs_ours(fd: c_int, out: *mut libc::statvfs) -> Option<c_int> {
    let f = ops::file(fd)?;
    let saved = errno();
    Some(ret_int(
        saved,
        f.and_then(|f| ops::statvfs(&ops::FsOf::file(&f), out).map(|_| 0)),
    ))
}

#[no_mangle]
pub unsafe extern "C" fn fstatvfs(fd: c_int, out: *mut libc::statvfs) -> c_int {
    // SAFETY: forwards.
    fstatvfs_ours(fd, out).unwrap_or_else(|| unsafe { real::fstatvfs()(fd, out) })
}

#[no_mangle]
pub unsafe extern "C" fn fstatvfs64(fd: c_int, out: *mut libc::statvfs64) -> c_int {
    // SAFETY: same layout on the 64-bit targets.
    fstatvfs_ours(fd, out.cast()).unwrap_or_else(|| unsafe { real::fstatvfs64()(fd, out) })
}

// ---- vector reads and writes at an offset ------------------------------------

/// Room for a copy of the caller's iovec array (16 KiB of stack, only on
/// the fast path: the kernel copies the array too before it uses it).
type IovBuf = [MaybeUninit<libc::iovec>; IOV_MAX];
const IOV_MAX: usize = 1024;

/// The caller's iovec array, copied into `buf` and checked like the kernel
/// (`IOV_MAX`, `EFAULT`).
fn iovs(iov: *const libc::iovec, cnt: c_int, buf: &mut IovBuf) -> Result<&[libc::iovec], i32> {
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
fn rw_vec(
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

macro_rules! vec_hooks {
    ($( $name:ident($offt:ty, $write:expr, $v2:tt) ; )*) => {
        $(
            vec_hooks!(@one $name, $offt, $write, $v2);
        )*
    };
    (@one $name:ident, $offt:ty, $write:expr, v1) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(
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
        #[no_mangle]
        pub unsafe extern "C" fn $name(
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

// ---- utime family ------------------------------------------------------------
//
// glibc implements these with internal `utimensat` calls; converted here
// and served by the `utimensat`/`futimens` hooks.

/// Two `timeval`s (or null: now) as two `timespec`s; `EINVAL` for
/// microseconds out of range, as glibc checks.
fn timevals(tv: *const libc::timeval) -> Result<Option<[libc::timespec; 2]>, i32> {
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
        if !(0..1_000_000).contains(&v.tv_usec) {
            return Err(libc::EINVAL);
        }
        t.tv_sec = v.tv_sec;
        t.tv_nsec = (v.tv_usec * 1000) as _;
    }
    Ok(Some(ts))
}

unsafe fn utimes_at(d: c_int, p: *const c_char, tv: *const libc::timeval, flags: c_int) -> c_int {
    match timevals(tv) {
        Err(e) => err(e),
        // SAFETY: forwards.
        Ok(None) => unsafe { utimensat(d, p, core::ptr::null(), flags) },
        // SAFETY: forwards.
        Ok(Some(ts)) => unsafe { utimensat(d, p, ts.as_ptr(), flags) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn utimes(p: *const c_char, tv: *const libc::timeval) -> c_int {
    // SAFETY: forwards.
    unsafe { utimes_at(AT_FDCWD, p, tv, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn lutimes(p: *const c_char, tv: *const libc::timeval) -> c_int {
    // SAFETY: forwards.
    unsafe { utimes_at(AT_FDCWD, p, tv, libc::AT_SYMLINK_NOFOLLOW) }
}

#[no_mangle]
pub unsafe extern "C" fn futimesat(d: c_int, p: *const c_char, tv: *const libc::timeval) -> c_int {
    // SAFETY: forwards (a null path means `d` itself, as in glibc).
    unsafe { utimes_at(d, p, tv, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn utime(p: *const c_char, t: *const libc::utimbuf) -> c_int {
    if t.is_null() {
        // SAFETY: forwards.
        return unsafe { utimensat(AT_FDCWD, p, core::ptr::null(), 0) };
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
    // SAFETY: forwards.
    unsafe { utimensat(AT_FDCWD, p, ts.as_ptr(), 0) }
}

#[no_mangle]
pub unsafe extern "C" fn futimes(fd: c_int, tv: *const libc::timeval) -> c_int {
    if !FDS.is_ours(fd) {
        // SAFETY: forwards.
        return unsafe { real::futimes()(fd, tv) };
    }
    match timevals(tv) {
        Err(e) => err(e),
        // SAFETY: forwards.
        Ok(None) => unsafe { futimens(fd, core::ptr::null()) },
        // SAFETY: forwards.
        Ok(Some(ts)) => unsafe { futimens(fd, ts.as_ptr()) },
    }
}

/// `name_to_handle_at` is answered by the kernel (the FUSE mount exports
/// handles); only a fast-path directory fd or `AT_EMPTY_PATH` on a
/// fast-path fd needs help (an absolute path, or a kernel-backed fd).
#[no_mangle]
pub unsafe extern "C" fn name_to_handle_at(
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
    match ops::resolve_at(d, p) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => real_at(&t, d, p, real),
    }
}

// ---- simple path operations ----------------------------------------------

/// A path operation whose reply carries nothing the caller needs: the
/// request is `args` of the path's base directory.
unsafe fn path_op<O: Operation>(
    dirfd: c_int,
    p: *const c_char,
    args: impl FnOnce(u64) -> O,
    real: impl Fn(c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(dirfd, p) {
        At::Real => real(dirfd, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = ops::request(t.mount, &args(t.base), t.rel(), b"").map(|_| 0);
            finish!(saved, r, t, dirfd, p, |d, q| real(d, q))
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn access(p: *const c_char, mode: c_int) -> c_int {
    // SAFETY: forwards.
    unsafe { faccessat(AT_FDCWD, p, mode, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn faccessat(d: c_int, p: *const c_char, mode: c_int, flags: c_int) -> c_int {
    if flags & libc::AT_EACCESS == 0 && state::access_by_kernel() {
        // access(2) checks the real ids; the daemon knows the effective
        // ones only: the kernel answers (with an absolute path when `d`
        // is one of our directories).
        let real = |dd: c_int, q: *const c_char| {
            // SAFETY: forwards the caller's arguments.
            unsafe { real::faccessat()(dd, q, mode, flags) }
        };
        return match ops::resolve_at(d, p) {
            At::Real => real(d, p),
            At::Err(e) => err(e),
            At::Ours(t) => real_at(&t, d, p, real),
        };
    }
    // SAFETY: forwards.
    unsafe {
        let access = |base| proto::ops::Access {
            base,
            mask: mode as u32,
            flags: flags as u32,
        };
        path_op(d, p, access, |dd, q| real::faccessat()(dd, q, mode, flags))
    }
}

/// glibc's `euidaccess` checks the effective ids through internal calls:
/// caught here, served as `faccessat(AT_EACCESS)`.
#[no_mangle]
pub unsafe extern "C" fn euidaccess(p: *const c_char, mode: c_int) -> c_int {
    // SAFETY: forwards.
    unsafe { faccessat(AT_FDCWD, p, mode, libc::AT_EACCESS) }
}

#[no_mangle]
pub unsafe extern "C" fn eaccess(p: *const c_char, mode: c_int) -> c_int {
    // SAFETY: forwards.
    unsafe { faccessat(AT_FDCWD, p, mode, libc::AT_EACCESS) }
}

#[no_mangle]
pub unsafe extern "C" fn mkdir(p: *const c_char, mode: mode_t) -> c_int {
    // SAFETY: forwards.
    unsafe { mkdirat(AT_FDCWD, p, mode) }
}

#[no_mangle]
pub unsafe extern "C" fn mkdirat(d: c_int, p: *const c_char, mode: mode_t) -> c_int {
    let mode_in = mode & 0o7777 & !state::umask();
    let mkdir = |base| proto::ops::Mkdir {
        base,
        mode: mode_in,
        _pad: 0,
    };
    // SAFETY: forwards.
    unsafe { path_op(d, p, mkdir, |dd, q| real::mkdirat()(dd, q, mode)) }
}

/// `mknodat` for regular files, FIFOs and sockets (device nodes too: the
/// daemon checks privileges exactly like the FUSE door).
#[no_mangle]
pub unsafe extern "C" fn mknodat(
    d: c_int,
    p: *const c_char,
    mode: mode_t,
    dev: libc::dev_t,
) -> c_int {
    let Ok(rdev) = u32::try_from(dev) else {
        // Larger device numbers than the store keeps: let the kernel answer.
        // SAFETY: forwards.
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
    match ops::resolve_at(d, p) {
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

#[no_mangle]
pub unsafe extern "C" fn mknod(p: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int {
    // SAFETY: forwards.
    unsafe { mknodat(AT_FDCWD, p, mode, dev) }
}

#[no_mangle]
pub unsafe extern "C" fn mkfifoat(d: c_int, p: *const c_char, mode: mode_t) -> c_int {
    // SAFETY: forwards (glibc's mkfifoat is mknodat with S_IFIFO).
    unsafe { mknodat(d, p, libc::S_IFIFO | (mode & 0o7777), 0) }
}

#[no_mangle]
pub unsafe extern "C" fn mkfifo(p: *const c_char, mode: mode_t) -> c_int {
    // SAFETY: forwards.
    unsafe { mkfifoat(AT_FDCWD, p, mode) }
}

#[no_mangle]
pub unsafe extern "C" fn rmdir(p: *const c_char) -> c_int {
    // SAFETY: forwards.
    unsafe { unlinkat(AT_FDCWD, p, libc::AT_REMOVEDIR) }
}

#[no_mangle]
pub unsafe extern "C" fn unlink(p: *const c_char) -> c_int {
    // SAFETY: forwards.
    unsafe { unlinkat(AT_FDCWD, p, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn unlinkat(d: c_int, p: *const c_char, flags: c_int) -> c_int {
    if flags & !libc::AT_REMOVEDIR != 0 {
        return err(libc::EINVAL);
    }
    // SAFETY: forwards the caller's flags with the path it resolves to.
    let real = |dd, q| unsafe { real::unlinkat()(dd, q, flags) };
    // SAFETY: forwards.
    unsafe {
        if flags & libc::AT_REMOVEDIR != 0 {
            path_op(d, p, |base| proto::ops::Rmdir { base }, real)
        } else {
            path_op(d, p, |base| proto::ops::Unlink { base }, real)
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn symlink(target: *const c_char, p: *const c_char) -> c_int {
    // SAFETY: forwards.
    unsafe { symlinkat(target, AT_FDCWD, p) }
}

#[no_mangle]
pub unsafe extern "C" fn symlinkat(target: *const c_char, d: c_int, p: *const c_char) -> c_int {
    let saved = errno();
    let real = |dd: c_int, q: *const c_char| {
        // SAFETY: forwards.
        unsafe { real::symlinkat()(target, dd, q) }
    };
    match ops::resolve_at(d, p) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let mut buf = [MaybeUninit::uninit(); PATH_MAX];
            // A target that cannot be read (or is too long): the kernel
            // answers, in its own order.
            let Ok(tx) = uaccess::strncpy_from_user(&mut buf, target) else {
                return real_at(&t, d, p, real);
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

#[no_mangle]
pub unsafe extern "C" fn readlink(p: *const c_char, buf: *mut c_char, n: size_t) -> ssize_t {
    // SAFETY: forwards.
    unsafe { readlinkat(AT_FDCWD, p, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn __readlink_chk(
    p: *const c_char,
    buf: *mut c_char,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: never returns.
        unsafe { __chk_fail() }
    }
    // SAFETY: forwards.
    unsafe { readlinkat(AT_FDCWD, p, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn __readlinkat_chk(
    d: c_int,
    p: *const c_char,
    buf: *mut c_char,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: never returns.
        unsafe { __chk_fail() }
    }
    // SAFETY: forwards.
    unsafe { readlinkat(d, p, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn readlinkat(
    d: c_int,
    p: *const c_char,
    buf: *mut c_char,
    n: size_t,
) -> ssize_t {
    let saved = errno();
    let real = |dd: c_int, q: *const c_char| {
        // SAFETY: forwards.
        unsafe { real::readlinkat()(dd, q, buf, n) }
    };
    match ops::resolve_at(d, p) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            if n == 0 || n > isize::MAX as usize {
                return err(libc::EINVAL);
            }
            let readlink = proto::ops::Readlink { base: t.base };
            let r = ops::call_with(t.mount, &readlink, t.rel(), b"", |_, target| {
                let k = target.len().min(n);
                uaccess::copy_to_user(buf.cast::<u8>(), &target[..k])
                    .map_err(|_| Fail::Errno(libc::EFAULT))?;
                Ok(k as ssize_t)
            });
            finish!(saved, r, t, d, p, |dd, q| real(dd, q))
        }
    }
}

/// Two-path operations (rename, link): served only when both paths are on
/// the same mount; otherwise the kernel decides (EXDEV and friends).
/// The request is `args` of the two paths' base directories.
unsafe fn two_paths<O: Operation>(
    d1: c_int,
    p1: *const c_char,
    d2: c_int,
    p2: *const c_char,
    args: impl FnOnce(u64, u64) -> O,
    real: impl Fn(c_int, *const c_char, c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    let t1 = ops::resolve_at(d1, p1);
    let t2 = ops::resolve_at(d2, p2);
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
                Ok(_) => ok(saved, 0),
                Err(Fail::Errno(e)) => err(e),
                Err(Fail::Real) => call_real(&t1, &t2),
            }
        }
        _ => call_real(&t1, &t2),
    }
}

#[no_mangle]
pub unsafe extern "C" fn rename(a: *const c_char, b: *const c_char) -> c_int {
    // SAFETY: forwards.
    unsafe { renameat2(AT_FDCWD, a, AT_FDCWD, b, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn renameat(
    d1: c_int,
    a: *const c_char,
    d2: c_int,
    b: *const c_char,
) -> c_int {
    // SAFETY: forwards.
    unsafe { renameat2(d1, a, d2, b, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn renameat2(
    d1: c_int,
    a: *const c_char,
    d2: c_int,
    b: *const c_char,
    flags: c_uint,
) -> c_int {
    // SAFETY: forwards.
    unsafe {
        let rename = |base, base2| proto::ops::Rename {
            base,
            base2,
            flags,
            _pad: 0,
        };
        two_paths(d1, a, d2, b, rename, |w, x, y, z| {
            real::renameat2()(w, x, y, z, flags)
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn link(a: *const c_char, b: *const c_char) -> c_int {
    // SAFETY: forwards.
    unsafe { linkat(AT_FDCWD, a, AT_FDCWD, b, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn linkat(
    d1: c_int,
    a: *const c_char,
    d2: c_int,
    b: *const c_char,
    flags: c_int,
) -> c_int {
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return err(libc::EINVAL);
    }
    // SAFETY: forwards.
    unsafe {
        let link = |base, base2| proto::ops::Link {
            base,
            base2,
            flags: flags as u32,
            _pad: 0,
        };
        two_paths(d1, a, d2, b, link, |w, x, y, z| {
            real::linkat()(w, x, y, z, flags)
        })
    }
}

unsafe fn setattr_path(
    d: c_int,
    p: *const c_char,
    nofollow: bool,
    s: ops::R<SetAttrReq>,
    real: impl Fn(c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(d, p) {
        At::Real => real(d, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            let r = s
                .and_then(|s| ops::setattr(t.mount, Some(&t), 0, nofollow, &s))
                .map(|_| 0);
            finish!(saved, r, t, d, p, |dd, q| real(dd, q))
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn truncate(p: *const c_char, len: off_t) -> c_int {
    let s = if len < 0 {
        Err(Fail::Errno(libc::EINVAL))
    } else {
        Ok(SetAttrReq {
            valid: proto::set::SIZE,
            size: len as u64,
            ..Default::default()
        })
    };
    // SAFETY: forwards.
    unsafe { setattr_path(AT_FDCWD, p, false, s, |_, q| real::truncate()(q, len)) }
}

#[no_mangle]
pub unsafe extern "C" fn truncate64(p: *const c_char, len: off64_t) -> c_int {
    // SAFETY: forwards.
    unsafe { truncate(p, len) }
}

#[no_mangle]
pub unsafe extern "C" fn chmod(p: *const c_char, mode: mode_t) -> c_int {
    // SAFETY: forwards.
    unsafe { fchmodat(AT_FDCWD, p, mode, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn fchmodat(d: c_int, p: *const c_char, mode: mode_t, flags: c_int) -> c_int {
    let s = SetAttrReq {
        valid: proto::set::MODE,
        mode: mode & 0o7777,
        ..Default::default()
    };
    // SAFETY: forwards.
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

#[no_mangle]
pub unsafe extern "C" fn chown(p: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    // SAFETY: forwards.
    unsafe { fchownat(AT_FDCWD, p, uid, gid, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn lchown(p: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    // SAFETY: forwards.
    unsafe { fchownat(AT_FDCWD, p, uid, gid, libc::AT_SYMLINK_NOFOLLOW) }
}

#[no_mangle]
pub unsafe extern "C" fn fchownat(
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
    // SAFETY: forwards.
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

#[no_mangle]
pub unsafe extern "C" fn utimensat(
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
    // SAFETY: forwards.
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

// ---- fd table operations -------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let Some(r) = FDS.get(fd) else {
        // SAFETY: forwards.
        return unsafe { real::dup()(fd) };
    };
    let saved = errno();
    match sys::fcntl(fd, libc::F_DUPFD, 0) {
        Ok(n) if (n as usize) < FDS.capacity() => {
            if let Some(prev) = FDS.install(n, r) {
                ops::put(prev);
            }
            ok(saved, n)
        }
        Ok(n) => {
            sys::close(n);
            ops::put(r);
            err(libc::EMFILE)
        }
        Err(e) => {
            ops::put(r);
            err(e)
        }
    }
}

unsafe fn dup3_impl(old: c_int, new: c_int, flags: c_int, real: impl FnOnce() -> c_int) -> c_int {
    let saved = errno();
    ops::evict_internal(new);
    let Some(r) = FDS.get(old) else {
        let res = real();
        if res >= 0 && FDS.is_ours(new) {
            if let Some(prev) = FDS.remove(new) {
                ops::put(prev);
            }
        }
        return res;
    };
    if (new as u32 as usize) >= FDS.capacity() {
        ops::put(r);
        return err(libc::EBADF);
    }
    if (0..=2).contains(&new) {
        // stdin/stdout/stderr are used by glibc's stdio and by exec'd
        // children, neither of which goes through our hooks: the file
        // becomes kernel-backed first (a real kernel fd on the FUSE mount,
        // shared offset), then is duplicated like any kernel fd.
        if let Err(e) = ops::upgrade(old) {
            ops::put(r);
            return match e {
                Fail::Errno(e) => err(e),
                Fail::Real => err(libc::EIO),
            };
        }
    }
    match sys::dup3(old, new, flags) {
        Ok(n) => {
            if let Some(prev) = FDS.install(n, r) {
                ops::put(prev);
            }
            ok(saved, n)
        }
        Err(e) => {
            ops::put(r);
            err(e)
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        if FDS.is_ours(old) {
            return old;
        }
        // SAFETY: forwards.
        return unsafe { real::dup2()(old, new) };
    }
    // SAFETY: forwards.
    unsafe { dup3_impl(old, new, 0, || real::dup2()(old, new)) }
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: forwards.
    unsafe { dup3_impl(old, new, flags, || real::dup3()(old, new, flags)) }
}

unsafe fn fcntl_impl(fd: c_int, cmd: c_int, arg: usize, real: impl FnOnce() -> c_int) -> c_int {
    let Some(f) = ops::file(fd) else {
        return real();
    };
    let saved = errno();
    let f = match f {
        Ok(f) => f,
        Err(Fail::Errno(e)) => return err(e),
        Err(Fail::Real) => return err(libc::EIO),
    };
    let o = f.ofd();
    if f.kernel_backed() && !matches!(cmd, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC) {
        // A real kernel fd: the kernel answers (locks included); mirror
        // O_APPEND, which the fast path's writes honour.
        let r = real();
        if r >= 0 && cmd == libc::F_SETFL {
            let append = libc::O_APPEND as u32;
            let want = if arg as c_int & libc::O_APPEND != 0 {
                append
            } else {
                0
            };
            let _ = o
                .flags
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |fl| {
                    Some(fl & !append | want)
                });
        }
        return r;
    }
    match cmd {
        libc::F_GETFL => {
            let fl = o.flags.load(Ordering::Relaxed) & !crate::fdtable::KIND_DIR;
            ok(
                saved,
                fl as c_int | 0o100000, /* O_LARGEFILE, as the kernel reports */
            )
        }
        libc::F_SETFL => {
            let want = arg as c_int;
            const SETTABLE: c_int = libc::O_APPEND | libc::O_NONBLOCK | libc::O_NOATIME;
            if want & (libc::O_DIRECT | libc::O_ASYNC) != 0 {
                return err(libc::EINVAL);
            }
            let mut cur = o.flags.load(Ordering::Relaxed);
            loop {
                let new = (cur & !(SETTABLE as u32)) | (want & SETTABLE) as u32;
                match o
                    .flags
                    .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(c) => cur = c,
                }
            }
            ok(saved, 0)
        }
        // Per-fd flags live on the placeholder kernel fd itself.
        libc::F_GETFD | libc::F_SETFD => match sys::fcntl(fd, cmd, arg as c_long) {
            Ok(v) => ok(saved, v),
            Err(e) => err(e),
        },
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let r = FDS.clone_ref(&f.r);
            match sys::fcntl(fd, cmd, arg as c_long) {
                Ok(n) if (n as usize) < FDS.capacity() => {
                    if let Some(prev) = FDS.install(n, r) {
                        ops::put(prev);
                    }
                    ok(saved, n)
                }
                Ok(n) => {
                    sys::close(n);
                    ops::put(r);
                    err(libc::EMFILE)
                }
                Err(e) => {
                    ops::put(r);
                    err(e)
                }
            }
        }
        // Record locks, leases, notifications, ...: the kernel's business.
        // The file becomes kernel-backed, then the kernel answers.
        _ => {
            drop(f);
            if matches!(cmd, libc::F_SETLK | libc::F_SETLKW) {
                ops::record_locks_used();
            }
            match ops::upgrade(fd) {
                Ok(()) => real(),
                Err(Fail::Errno(e)) => err(e),
                Err(Fail::Real) => err(libc::EIO),
            }
        }
    }
}

// ---- calls only the kernel can serve ---------------------------------------
//
// mmap, locks, ioctl, sendfile, splice on a fast-path fd: the file first
// becomes kernel-backed (a real kernel fd on the FUSE mount, same offset,
// see `ops::upgrade`), then the real function runs on it. The data calls the
// library catches keep using the fast path afterwards.

#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    if flags & libc::MAP_ANONYMOUS == 0 {
        if let Err(e) = ops::kernel_fd(fd) {
            set_errno(e);
            return libc::MAP_FAILED;
        }
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::mmap()(addr, len, prot, flags, fd, off) }
}

#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off64_t,
) -> *mut c_void {
    // SAFETY: off_t is 64-bit on the supported targets.
    unsafe { mmap(addr, len, prot, flags, fd, off) }
}

/// glibc's `lockf` calls its internal `fcntl`, which no hook sees.
#[no_mangle]
pub unsafe extern "C" fn lockf(fd: c_int, cmd: c_int, len: off_t) -> c_int {
    if let Err(e) = ops::kernel_fd(fd) {
        return err(e);
    }
    if FDS.is_ours(fd) {
        ops::record_locks_used();
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::lockf()(fd, cmd, len) }
}

#[no_mangle]
pub unsafe extern "C" fn lockf64(fd: c_int, cmd: c_int, len: off64_t) -> c_int {
    // SAFETY: off_t is 64-bit on the supported targets.
    unsafe { lockf(fd, cmd, len) }
}

#[no_mangle]
pub unsafe extern "C" fn flock(fd: c_int, op: c_int) -> c_int {
    if let Err(e) = ops::kernel_fd(fd) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::flock()(fd, op) }
}

/// Makes every fast-path fd among `fds` kernel-backed: readiness (`poll`,
/// `select`, `epoll`) is the kernel's business, and on a placeholder fd the
/// kernel answers `POLLNVAL`/`EBADF`, where the plain mount answers ready.
fn kernel_fds(fds: impl IntoIterator<Item = c_int>) -> Result<(), c_int> {
    fds.into_iter().try_for_each(ops::kernel_fd)
}

/// The fds of a `pollfd` array (negative ones are ignored by the kernel),
/// up to the first entry that cannot be read (the kernel then answers
/// `EFAULT` for the whole call).
///
/// # Safety
/// None beyond the C contract: the array is read fault-tolerantly.
unsafe fn poll_fds(fds: *const libc::pollfd, n: libc::nfds_t) -> impl Iterator<Item = c_int> {
    let n = if fds.is_null() { 0 } else { n as usize };
    (0..n)
        .map_while(move |i| uaccess::read_val(fds.wrapping_add(i)).ok())
        .map(|p: libc::pollfd| p.fd)
        .filter(|&fd| fd >= 0)
}

/// The fds set in any of `select`'s three sets below `n` (a set that
/// cannot be read counts as empty: the kernel answers `EFAULT` for it).
///
/// # Safety
/// None beyond the C contract: the sets are read fault-tolerantly.
unsafe fn select_fds(n: c_int, sets: [*const libc::fd_set; 3]) -> impl Iterator<Item = c_int> {
    let n = n.clamp(0, libc::FD_SETSIZE as c_int);
    let sets = sets.map(|s| (!s.is_null()).then(|| uaccess::read_val(s).ok()).flatten());
    (0..n).filter(move |&fd| {
        sets.iter()
            // SAFETY: a copy of an fd_set; fd < FD_SETSIZE.
            .any(|s| s.as_ref().is_some_and(|s| unsafe { libc::FD_ISSET(fd, s) }))
    })
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    // SAFETY: the program's own array of `n` entries.
    if let Err(e) = kernel_fds(unsafe { poll_fds(fds, n) }) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::poll()(fds, n, timeout) }
}

#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    // SAFETY: the program's own array of `n` entries (glibc checks `n`
    // against `fdslen` in the call below).
    if let Err(e) = kernel_fds(unsafe { poll_fds(fds, n.min(fdslen as libc::nfds_t / 8)) }) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::__poll_chk()(fds, n, timeout, fdslen) }
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: the program's own array of `n` entries.
    if let Err(e) = kernel_fds(unsafe { poll_fds(fds, n) }) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::ppoll()(fds, n, timeout, mask) }
}

#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
    fdslen: size_t,
) -> c_int {
    // SAFETY: as in `__poll_chk`.
    if let Err(e) = kernel_fds(unsafe { poll_fds(fds, n.min(fdslen as libc::nfds_t / 8)) }) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::__ppoll_chk()(fds, n, timeout, mask, fdslen) }
}

#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *mut libc::timeval,
) -> c_int {
    // SAFETY: the program's own sets.
    if let Err(x) = kernel_fds(unsafe { select_fds(n, [r, w, e].map(|s| s.cast_const())) }) {
        return err(x);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::select()(n, r, w, e, timeout) }
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: the program's own sets.
    if let Err(x) = kernel_fds(unsafe { select_fds(n, [r, w, e].map(|s| s.cast_const())) }) {
        return err(x);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::pselect()(n, r, w, e, timeout, mask) }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut libc::epoll_event,
) -> c_int {
    if op != libc::EPOLL_CTL_DEL {
        if let Err(e) = ops::kernel_fd(fd) {
            return err(e);
        }
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::epoll_ctl()(epfd, op, fd, ev) }
}

/// `ioctl(fd, request, arg)`: the one optional argument is pointer-sized on
/// every request programs use, so it is passed on as such.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: libc::c_ulong, arg: *mut c_void) -> c_int {
    if let Some(e) = clone_between_fast_path_files(fd, req, arg) {
        return err(e);
    }
    if let Err(e) = ops::kernel_fd(fd) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::ioctl()(fd, req, arg) }
}

/// `FICLONE` / `FICLONERANGE` (reflink; `cp` tries it before copying) with
/// both files on one mount: answered here with the kernel's errno for a
/// filesystem without reflinks (`EOPNOTSUPP`, after its `EISDIR`/`EBADF`
/// checks), so neither file has to become kernel-backed. `None` for any
/// other request, or a source elsewhere (the kernel answers those).
fn clone_between_fast_path_files(fd: c_int, req: libc::c_ulong, arg: *mut c_void) -> Option<c_int> {
    const FICLONE: libc::c_ulong = 0x4004_9409;
    const FICLONERANGE: libc::c_ulong = 0x4020_940d;
    let src_fd = match req {
        FICLONE => arg as usize as c_int,
        // The range struct starts with the source fd (an i64), behind a
        // pointer that may be bad (the kernel's answer is then EFAULT).
        FICLONERANGE => uaccess::read_val(arg.cast_const().cast::<i64>()).ok()? as c_int,
        _ => return None,
    };
    let (Some(Ok(src)), Some(Ok(dst))) = (ops::file(src_fd), ops::file(fd)) else {
        return None;
    };
    if src.mount != dst.mount {
        return None;
    }
    let access = |f: &ops::FileRef| f.flags as c_int & libc::O_ACCMODE;
    Some(if src.is_dir() || dst.is_dir() {
        libc::EISDIR
    } else if access(&src) == libc::O_WRONLY
        || access(&dst) == libc::O_RDONLY
        || dst.flags as c_int & libc::O_APPEND != 0
    {
        libc::EBADF
    } else {
        libc::EOPNOTSUPP
    })
}

/// `sendfile` between two files of one mount is a copy inside the daemon
/// (as `copy_file_range`); with any other end it is the kernel's, on
/// kernel-backed fds.
#[no_mangle]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    if let (Some(Ok(i)), Some(Ok(o))) = (ops::file(inp), ops::file(out)) {
        if i.mount == o.mount {
            // SAFETY: `off` is the caller's pointer (valid or null).
            if let Some(r) = unsafe { sendfile_in_daemon(&i, &o, off, n) } {
                return r;
            }
        }
    }
    if let Err(e) = ops::kernel_fd(out).and_then(|()| ops::kernel_fd(inp)) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::sendfile()(out, inp, off, n) }
}

/// Largest transfer of one `sendfile` call (Linux's limit).
const SENDFILE_MAX: usize = 0x7fff_f000;

/// `sendfile` from `input` to `output` (one mount) done by the daemon;
/// `None` when the kernel should decide instead (a case the daemon's copy
/// refuses, such as overlapping ranges of one file).
///
/// # Safety
/// `off` is null or points to a valid `off_t`.
unsafe fn sendfile_in_daemon(
    input: &ops::FileRef,
    output: &ops::FileRef,
    off: *mut off_t,
    n: size_t,
) -> Option<ssize_t> {
    if output.flags as c_int & libc::O_APPEND != 0 {
        return Some(err(libc::EINVAL));
    }
    let saved = errno();
    let pos_in = if off.is_null() {
        input.position()
    } else {
        uaccess::read_val(off)
            .map_err(|_| Fail::Errno(libc::EFAULT))
            .and_then(|o| u64::try_from(o).map_err(|_| Fail::Errno(libc::EINVAL)))
    };
    let copied = pos_in.and_then(|pin| {
        let pout = output.position()?;
        let k = input.copy_to(pin, output, pout, n.min(SENDFILE_MAX))?;
        Ok((pin, pout, k))
    });
    let (pin, pout, k) = match copied {
        Ok(done) => done,
        // Nothing was copied: the kernel may decide.
        Err(Fail::Errno(libc::EINVAL | libc::EXDEV | libc::EOPNOTSUPP)) | Err(Fail::Real) => {
            return None
        }
        Err(Fail::Errno(e)) => return Some(err(e)),
    };
    // Copied: from here on the answer is ours, whatever happens.
    let moved = output.set_position(pout + k as u64).and_then(|()| {
        if off.is_null() {
            input.set_position(pin + k as u64)
        } else {
            uaccess::write_val(off, &((pin + k as u64) as off_t))
                .map_err(|_| Fail::Errno(libc::EFAULT))
        }
    });
    Some(match moved {
        Ok(()) => ok(saved, k as ssize_t),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    })
}

#[no_mangle]
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    inp: c_int,
    off: *mut off64_t,
    n: size_t,
) -> ssize_t {
    // SAFETY: off_t is 64-bit on the supported targets.
    unsafe { sendfile(out, inp, off, n) }
}

#[no_mangle]
pub unsafe extern "C" fn splice(
    fd_in: c_int,
    off_in: *mut off64_t,
    fd_out: c_int,
    off_out: *mut off64_t,
    len: size_t,
    flags: c_uint,
) -> ssize_t {
    if let Err(e) = ops::kernel_fd(fd_in).and_then(|()| ops::kernel_fd(fd_out)) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::splice()(fd_in, off_in, fd_out, off_out, len, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: forwards.
    unsafe { fcntl_impl(fd, cmd, arg, || real::fcntl()(fd, cmd, arg)) }
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: forwards.
    unsafe { fcntl_impl(fd, cmd, arg, || real::fcntl64()(fd, cmd, arg)) }
}

#[no_mangle]
pub unsafe extern "C" fn umask(m: mode_t) -> mode_t {
    // SAFETY: forwards.
    let old = unsafe { real::umask()(m) };
    state::set_umask(m);
    old
}

// ---- cwd -------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn chdir(p: *const c_char) -> c_int {
    // SAFETY: forwards.
    let r = unsafe { real::chdir()(p) };
    if r == 0 {
        state::cwd_changed();
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fchdir(fd: c_int) -> c_int {
    let Some(f) = ops::file(fd) else {
        // SAFETY: forwards.
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

// ---- directories -----------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn opendir(p: *const c_char) -> *mut DIR {
    let saved = errno();
    let real = |_: c_int, q: *const c_char| {
        // SAFETY: forwards.
        unsafe { real::opendir()(q) }
    };
    match ops::resolve_at(AT_FDCWD, p) {
        At::Real => real(AT_FDCWD, p),
        At::Err(e) => {
            set_errno(e);
            core::ptr::null_mut()
        }
        At::Ours(t) => match ops::open(&t, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)
        {
            Ok(fd) => match dir::new_stream(fd) {
                Some(d) => ok(saved, d),
                None => {
                    close_ours(fd);
                    set_errno(libc::EMFILE);
                    core::ptr::null_mut()
                }
            },
            Err(Fail::Errno(e)) => {
                set_errno(e);
                core::ptr::null_mut()
            }
            Err(Fail::Real) => real(AT_FDCWD, p),
        },
    }
}

#[no_mangle]
pub unsafe extern "C" fn fdopendir(fd: c_int) -> *mut DIR {
    let Some(f) = ops::file(fd) else {
        // SAFETY: forwards.
        return unsafe { real::fdopendir()(fd) };
    };
    let saved = errno();
    match f {
        Ok(f) if f.is_dir() => match dir::new_stream(fd) {
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

#[no_mangle]
pub unsafe extern "C" fn readdir64(d: *mut DIR) -> *mut libc::dirent64 {
    let Some(o) = dir::ours(d) else {
        // SAFETY: forwards.
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

#[no_mangle]
pub unsafe extern "C" fn readdir(d: *mut DIR) -> *mut libc::dirent {
    if dir::ours(d).is_none() {
        // SAFETY: forwards.
        return unsafe { real::readdir()(d) };
    }
    // SAFETY: dirent and dirent64 share one layout on the 64-bit targets.
    unsafe { readdir64(d).cast() }
}

#[no_mangle]
pub unsafe extern "C" fn readdir64_r(
    d: *mut DIR,
    entry: *mut libc::dirent64,
    result: *mut *mut libc::dirent64,
) -> c_int {
    if dir::ours(d).is_none() {
        // SAFETY: forwards.
        return unsafe { real::readdir64_r()(d, entry, result) };
    }
    let saved = errno();
    set_errno(0);
    // SAFETY: our stream.
    let e = unsafe { readdir64(d) };
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

#[no_mangle]
pub unsafe extern "C" fn readdir_r(
    d: *mut DIR,
    entry: *mut libc::dirent,
    result: *mut *mut libc::dirent,
) -> c_int {
    if dir::ours(d).is_none() {
        // SAFETY: forwards.
        return unsafe { real::readdir_r()(d, entry, result) };
    }
    // SAFETY: same layout.
    unsafe { readdir64_r(d, entry.cast(), result.cast()) }
}

#[no_mangle]
pub unsafe extern "C" fn closedir(d: *mut DIR) -> c_int {
    let Some(o) = dir::ours(d) else {
        // SAFETY: forwards.
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

#[no_mangle]
pub unsafe extern "C" fn dirfd(d: *mut DIR) -> c_int {
    match dir::ours(d) {
        Some(o) => o.fd(),
        // SAFETY: forwards.
        None => unsafe { real::dirfd()(d) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn rewinddir(d: *mut DIR) {
    match dir::ours(d) {
        Some(o) => o.rewind(),
        // SAFETY: forwards.
        None => unsafe { real::rewinddir()(d) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn telldir(d: *mut DIR) -> c_long {
    match dir::ours(d) {
        Some(o) => o.tell() as c_long,
        // SAFETY: forwards.
        None => unsafe { real::telldir()(d) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn seekdir(d: *mut DIR, loc: c_long) {
    match dir::ours(d) {
        Some(o) => o.seek(loc as u64),
        // SAFETY: forwards.
        None => unsafe { real::seekdir()(d, loc) },
    }
}

// ---- xattrs ---------------------------------------------------------------
//
// Served by the daemon, on fast-path fds and on paths under a mount (`ls -l`
// asks for ACLs and security labels of every file; `cp -a` and `tar` copy
// xattrs).

/// Runs an xattr request on the handle behind `fd`; `None` when `fd` is
/// not ours.
fn fd_xattr(fd: c_int, f: impl FnOnce(&ops::XattrAt<'_>) -> ops::R<usize>) -> Option<ssize_t> {
    let file = ops::file(fd)?;
    let saved = errno();
    Some(match file.and_then(|file| f(&ops::XattrAt::file(&file))) {
        Ok(n) => ok(saved, n as ssize_t),
        Err(Fail::Errno(e)) => err(e),
        Err(Fail::Real) => err(libc::EIO),
    })
}

/// Runs an xattr request on a path; `real` when it is not on a mount (or
/// leaves it).
unsafe fn path_xattr(
    p: *const c_char,
    nofollow: bool,
    f: impl FnOnce(&ops::XattrAt<'_>) -> ops::R<usize>,
    real: impl Fn(*const c_char) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    match ops::resolve_at(AT_FDCWD, p) {
        At::Real => real(p),
        At::Err(e) => err(e),
        At::Ours(t) => match f(&ops::XattrAt::path(&t, nofollow)) {
            Ok(n) => ok(saved, n as ssize_t),
            Err(Fail::Errno(e)) => err(e),
            Err(Fail::Real) => real(p),
        },
    }
}

/// Room for an attribute name: the kernel's 255 bytes and the NUL.
const XATTR_NAME_BUF: [MaybeUninit<u8>; 256] = [MaybeUninit::uninit(); 256];

/// The caller's attribute name, copied as the kernel copies it: `EFAULT`
/// when it cannot be read, `ERANGE` when it is over 255 bytes.
fn xattr_name(buf: &mut [MaybeUninit<u8>; 256], name: *const c_char) -> ops::R<&[u8]> {
    uaccess::strncpy_from_user(buf, name).map_err(|e| {
        Fail::Errno(match e {
            uaccess::StrError::Fault => libc::EFAULT,
            uaccess::StrError::TooLong => libc::ERANGE,
        })
    })
}

macro_rules! xattr_hooks {
    ($get:ident, $list:ident, $set:ident, $remove:ident, nofollow = $nofollow:expr) => {
        #[no_mangle]
        pub unsafe extern "C" fn $get(
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

        #[no_mangle]
        pub unsafe extern "C" fn $list(p: *const c_char, list: *mut c_char, n: size_t) -> ssize_t {
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

        #[no_mangle]
        pub unsafe extern "C" fn $set(
            p: *const c_char,
            name: *const c_char,
            v: *const c_void,
            n: size_t,
            flags: c_int,
        ) -> c_int {
            let mut buf = XATTR_NAME_BUF;
            let Ok(key) = xattr_name(&mut buf, name) else {
                // SAFETY: as above.
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

        #[no_mangle]
        pub unsafe extern "C" fn $remove(p: *const c_char, name: *const c_char) -> c_int {
            let mut buf = XATTR_NAME_BUF;
            let Ok(key) = xattr_name(&mut buf, name) else {
                // SAFETY: as above.
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

#[no_mangle]
pub unsafe extern "C" fn fgetxattr(
    fd: c_int,
    name: *const c_char,
    v: *mut c_void,
    n: size_t,
) -> ssize_t {
    let mut buf = XATTR_NAME_BUF;
    let key = xattr_name(&mut buf, name);
    fd_xattr(fd, |x| x.get(Some(key?), v.cast(), n))
        // SAFETY: forwards.
        .unwrap_or_else(|| unsafe { real::fgetxattr()(fd, name, v, n) })
}

#[no_mangle]
pub unsafe extern "C" fn flistxattr(fd: c_int, list: *mut c_char, n: size_t) -> ssize_t {
    fd_xattr(fd, |x| x.get(None, list.cast(), n))
        // SAFETY: forwards.
        .unwrap_or_else(|| unsafe { real::flistxattr()(fd, list, n) })
}

#[no_mangle]
pub unsafe extern "C" fn fsetxattr(
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
        // SAFETY: forwards.
        .unwrap_or_else(|| unsafe { real::fsetxattr()(fd, name, v, n, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn fremovexattr(fd: c_int, name: *const c_char) -> c_int {
    let mut buf = XATTR_NAME_BUF;
    let key = xattr_name(&mut buf, name);
    fd_xattr(fd, |x| x.remove(key?).map(|()| 0))
        .map(|r| r as c_int)
        // SAFETY: forwards.
        .unwrap_or_else(|| unsafe { real::fremovexattr()(fd, name) })
}
