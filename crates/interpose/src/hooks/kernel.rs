//! Handlers of the fd-table calls (`dup`, `fcntl`) and of the calls only the kernel can serve (`mmap`, locks, readiness, `ioctl`, `sendfile`, `splice`): the file becomes kernel-backed first (see `ops::upgrade`).

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use core::sync::atomic::Ordering;

use libc::{mode_t, off64_t, off_t, size_t, ssize_t};

use crate::ops::{self, Fail};
use crate::real;
use crate::state::{self, FDS};
use crate::sys::{self, errno, set_errno};
use crate::uaccess;

use super::common::*;
use crate::callargs;

// ---- fd table operations -------------------------------------------------

#[inline]
pub(super) unsafe fn dup(fd: c_int) -> c_int {
    let Some(r) = FDS.get(fd) else {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
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

#[inline]
pub(super) unsafe fn dup3_impl(
    old: c_int,
    new: c_int,
    flags: c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if state::in_vfork_child() {
        // See `crate::process`: nothing of the library's own is touched.
        return real();
    }
    let saved = errno();
    ops::evict_internal(new);
    ops::forget_located(new);
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

#[inline]
pub(super) unsafe fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        if FDS.is_ours(old) {
            return old;
        }
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        return unsafe { real::dup2()(old, new) };
    }
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe { dup3_impl(old, new, 0, || real::dup2()(old, new)) }
}

#[inline]
pub(super) unsafe fn fcntl_impl(
    fd: c_int,
    cmd: c_int,
    arg: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
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
            let fl = o.flags.load(Ordering::Relaxed);
            ok(saved, callargs::getfl(fl, crate::fdtable::KIND_DIR))
        }
        libc::F_SETFL => {
            let want = arg as c_int;
            let mut cur = o.flags.load(Ordering::Relaxed);
            // As the kernel's `setfl`: adding O_NOATIME is checked (before
            // the other flags), keeping it is not.
            if want & libc::O_NOATIME != 0 && cur & libc::O_NOATIME as u32 == 0 {
                match f.may_set_noatime() {
                    Ok(()) => {}
                    Err(Fail::Errno(e)) => return err(e),
                    Err(Fail::Real) => return err(libc::EIO),
                }
            }
            loop {
                let new = callargs::setfl(cur, want);
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
// mmap (but a small private one, see `ops::private_copy`), locks, ioctl,
// sendfile, splice on a fast-path fd: the file first becomes kernel-backed
// (a real kernel fd on the FUSE mount, same offset, see `ops::upgrade`),
// then the real function runs on it. The data calls the library catches
// keep using the fast path afterwards.

#[inline]
pub(super) unsafe fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    if flags & libc::MAP_ANONYMOUS == 0 {
        if let Some(Ok(f)) = ops::file(fd) {
            let saved = errno();
            if let Some(map) = ops::private_copy(&f, addr, len, prot, flags, off) {
                set_errno(saved);
                return map;
            }
        }
        if let Err(e) = ops::kernel_fd(fd) {
            set_errno(e);
            return libc::MAP_FAILED;
        }
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::mmap()(addr, len, prot, flags, fd, off) }
}

/// glibc's `lockf` calls its internal `fcntl`, which no hook sees.
#[inline]
pub(super) unsafe fn lockf(fd: c_int, cmd: c_int, len: off_t) -> c_int {
    if let Err(e) = ops::kernel_fd(fd) {
        return err(e);
    }
    if FDS.is_ours(fd) {
        ops::record_locks_used();
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::lockf()(fd, cmd, len) }
}

/// Runs `real` on `fd` made kernel-backed first if it is a fast-path fd: a
/// call the kernel answers for any file (`flock`, whose locks are the
/// kernel's; `readahead`, `syncfs`, `sync_file_range`, `getdents64`, which
/// on the placeholder answered `EBADF`).
#[inline]
pub(super) fn backed<T: From<i8>>(fd: c_int, real: impl FnOnce() -> T) -> T {
    match ops::kernel_fd(fd) {
        Ok(()) => real(),
        Err(e) => {
            sys::set_errno(e);
            T::from(-1)
        }
    }
}

/// `isatty`: a fast-path fd (a file or a directory) is never a terminal.
/// glibc asks with its own `ioctl`, which reached the placeholder: `EBADF`
/// where the plain mount says `ENOTTY`.
#[inline]
pub(super) unsafe fn isatty(fd: c_int) -> c_int {
    if FDS.is_ours(fd) {
        sys::set_errno(libc::ENOTTY);
        return 0;
    }
    // SAFETY: forwards the caller's argument.
    unsafe { real::isatty()(fd) }
}

/// `tcgetattr`: `ENOTTY` on a fast-path fd (see [`isatty`]).
#[inline]
pub(super) unsafe fn tcgetattr(fd: c_int, t: *mut libc::termios) -> c_int {
    if FDS.is_ours(fd) {
        return err(libc::ENOTTY);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::tcgetattr()(fd, t) }
}

/// `ttyname`: `ENOTTY` on a fast-path fd (see [`isatty`]).
#[inline]
pub(super) unsafe fn ttyname(fd: c_int) -> *mut c_char {
    if FDS.is_ours(fd) {
        sys::set_errno(libc::ENOTTY);
        return core::ptr::null_mut();
    }
    // SAFETY: forwards the caller's argument.
    unsafe { real::ttyname()(fd) }
}

/// `ttyname_r`: `ENOTTY` on a fast-path fd (see [`isatty`]); it returns
/// the error number.
#[inline]
pub(super) unsafe fn ttyname_r(fd: c_int, buf: *mut c_char, n: size_t) -> c_int {
    if FDS.is_ours(fd) {
        return libc::ENOTTY;
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::ttyname_r()(fd, buf, n) }
}

/// Makes every fast-path fd among `fds` kernel-backed: readiness (`poll`,
/// `select`, `epoll`) is the kernel's business, and on a placeholder fd the
/// kernel answers `POLLNVAL`/`EBADF`, where the plain mount answers ready.
#[inline]
pub(super) fn kernel_fds(fds: impl IntoIterator<Item = c_int>) -> Result<(), c_int> {
    fds.into_iter().try_for_each(ops::kernel_fd)
}

/// The fds of a `pollfd` array (negative ones are ignored by the kernel),
/// up to the first entry that cannot be read (the kernel then answers
/// `EFAULT` for the whole call).
///
/// # Safety
/// None beyond the C contract: the array is read fault-tolerantly.
#[inline]
pub(super) unsafe fn poll_fds(
    fds: *const libc::pollfd,
    n: libc::nfds_t,
) -> impl Iterator<Item = c_int> {
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
#[inline]
pub(super) unsafe fn select_fds(
    n: c_int,
    sets: [*const libc::fd_set; 3],
) -> impl Iterator<Item = c_int> {
    let n = n.clamp(0, libc::FD_SETSIZE as c_int);
    let sets = sets.map(|s| (!s.is_null()).then(|| uaccess::read_val(s).ok()).flatten());
    (0..n).filter(move |&fd| {
        sets.iter()
            // SAFETY: a copy of an fd_set; fd < FD_SETSIZE.
            .any(|s| s.as_ref().is_some_and(|s| unsafe { libc::FD_ISSET(fd, s) }))
    })
}

#[inline]
pub(super) unsafe fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    // SAFETY: the program's own array of `n` entries.
    if let Err(e) = kernel_fds(unsafe { poll_fds(fds, n) }) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::poll()(fds, n, timeout) }
}

#[inline]
pub(super) unsafe fn __poll_chk(
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

#[inline]
pub(super) unsafe fn ppoll(
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

#[inline]
pub(super) unsafe fn __ppoll_chk(
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

#[inline]
pub(super) unsafe fn select(
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

#[inline]
pub(super) unsafe fn pselect(
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

#[inline]
pub(super) unsafe fn epoll_ctl(
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
#[inline]
pub(super) unsafe fn ioctl(fd: c_int, req: libc::c_ulong, arg: *mut c_void) -> c_int {
    if asks_for_a_terminal(req) && FDS.is_ours(fd) {
        return err(libc::ENOTTY);
    }
    if let Some(e) = clone_between_fast_path_files(fd, req, arg) {
        return err(e);
    }
    // A reflink the kernel answers names a second file, its source.
    let source = clone_source(req, arg).map_or(Ok(()), ops::kernel_fd);
    if let Err(e) = ops::kernel_fd(fd).and(source) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::ioctl()(fd, req, arg) }
}

/// Whether `req` asks a terminal about itself, as programs do to learn
/// whether an fd is one (`TCGETS`, which `isatty` sends, the window
/// size, the process group, the session). A file or a directory answers
/// `ENOTTY` to these on tmpfs (the VFS finds no handler) and through the
/// plain mount (the daemon answers so), so a fast-path fd answers the
/// same at once: without this it would become kernel-backed for an answer
/// known in advance, one `open` and one `ioctl` through the kernel.
#[inline]
fn asks_for_a_terminal(req: libc::c_ulong) -> bool {
    matches!(
        req,
        libc::TCGETS | libc::TCGETS2 | libc::TIOCGWINSZ | libc::TIOCGPGRP | libc::TIOCGSID
    )
}

/// `FICLONE` / `FICLONERANGE` (reflink; `cp` tries it before every copy)
/// with a fast-path file at either end, answered here with the kernel's
/// errno, so that neither file has to become kernel-backed (a copy into
/// the mount would then write through the kernel): both on one mount, the
/// errno of a filesystem without reflinks (`EOPNOTSUPP`, after its
/// `EISDIR`/`EBADF` checks); the other end elsewhere, `EXDEV` (after
/// `EBADF` for no open file, as the kernel's `fdget`). `None` for any other
/// request, or another end on the mount's device that is not a fast-path
/// file (a kernel fd through the FUSE door, or a bind mount of it, which the
/// kernel tells apart): the kernel answers those.
#[inline]
pub(super) fn clone_between_fast_path_files(
    fd: c_int,
    req: libc::c_ulong,
    arg: *mut c_void,
) -> Option<c_int> {
    let src_fd = clone_source(req, arg)?;
    let (src, dst) = match (ops::file(src_fd), ops::file(fd)) {
        (Some(Ok(src)), Some(Ok(dst))) => (src, dst),
        // One end is the kernel's (or no file at all).
        (None, Some(Ok(f))) => return other_end_elsewhere(src_fd, f.mount),
        (Some(Ok(f)), None) => return other_end_elsewhere(fd, f.mount),
        _ => return None,
    };
    if src.mount != dst.mount {
        return Some(libc::EXDEV);
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

/// The source fd of a reflink request (`FICLONE`, `FICLONERANGE`); `None`
/// for another request.
fn clone_source(req: libc::c_ulong, arg: *mut c_void) -> Option<c_int> {
    const FICLONE: libc::c_ulong = 0x4004_9409;
    const FICLONERANGE: libc::c_ulong = 0x4020_940d;
    match req {
        FICLONE => Some(arg as usize as c_int),
        // `struct file_clone_range` (four 64-bit words) starts with the
        // source fd, behind a pointer that may be bad: the kernel copies
        // the whole struct first (`EFAULT` if any of it cannot be read).
        FICLONERANGE => {
            Some(uaccess::read_val(arg.cast_const().cast::<[i64; 4]>()).ok()?[0] as c_int)
        }
        _ => None,
    }
}

/// The kernel's answer to a reflink between a fast-path file of `mount`
/// and kernel fd `fd`: `EBADF` if `fd` is no open file (an `O_PATH` one
/// included: the kernel's `fdget` refuses those), `EXDEV` if it is on
/// another device; `None` if it is on the mount's (see above).
fn other_end_elsewhere(fd: c_int, mount: usize) -> Option<c_int> {
    let Some((fl, st)) = kernel_end(fd) else {
        return Some(libc::EBADF);
    };
    if fl & libc::O_PATH != 0 {
        return Some(libc::EBADF);
    }
    let dev = state::MOUNTS[mount].dev.load(Ordering::Relaxed);
    (dev != 0 && st.st_dev != dev).then_some(libc::EXDEV)
}

/// The open flags and `fstat` of the kernel's end `fd` of a two-file call;
/// `None` if it is no open file.
fn kernel_end(fd: c_int) -> Option<(c_int, libc::stat)> {
    let fl = sys::fcntl(fd, libc::F_GETFL, 0).ok()?;
    Some((fl, sys::fstat(fd).ok()?))
}

/// `sendfile` between two files of one mount is a copy inside the daemon
/// (as `copy_file_range`); between a fast-path file and a kernel fd it goes
/// through the channel's bulk area ([`sendfile_with_kernel`]); otherwise
/// it is the kernel's, on kernel-backed fds.
#[inline]
pub(super) unsafe fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    match (ops::file(inp), ops::file(out)) {
        (Some(Ok(i)), Some(Ok(o))) if i.mount == o.mount => {
            // SAFETY: `off` is the caller's pointer (valid or null).
            if let Some(r) = unsafe { sendfile_in_daemon(&i, &o, off, n) } {
                return r;
            }
        }
        (Some(Ok(i)), None) => {
            // SAFETY: as above.
            if let Some(r) = unsafe { sendfile_with_kernel(Side::In(&i), out, off, n) } {
                return r;
            }
        }
        (None, Some(Ok(o))) => {
            // SAFETY: as above.
            if let Some(r) = unsafe { sendfile_with_kernel(Side::Out(&o), inp, off, n) } {
                return r;
            }
        }
        _ => {}
    }
    if let Err(e) = ops::kernel_fd(out).and_then(|()| ops::kernel_fd(inp)) {
        return err(e);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::sendfile()(out, inp, off, n) }
}

/// Which end of a `sendfile` the fast-path file is.
enum Side<'a> {
    /// It is read from.
    In(&'a ops::FileRef),
    /// It is written to.
    Out(&'a ops::FileRef),
}

/// `sendfile` between a fast-path regular file and kernel fd `other` (a
/// regular file to read from, or anything to write to), through the
/// channel's bulk area: the file stays a fast-path file (python's
/// `shutil.copyfile` sends every file it copies; made kernel-backed, each
/// copied file cost a reopen through the kernel and its writes went through
/// it). The offsets move as the kernel moves them: by the bytes written.
/// `None` when the kernel should decide (a directory, a kernel-backed file,
/// a source that is not a regular file, an `O_APPEND` or unreadable fd:
/// its answer is the errno).
///
/// # Safety
/// `off` is null or points to a valid `off_t`.
unsafe fn sendfile_with_kernel(
    file: Side<'_>,
    other: c_int,
    off: *mut off_t,
    n: size_t,
) -> Option<ssize_t> {
    let (f, writes_file) = match file {
        Side::In(f) => (f, false),
        Side::Out(f) => (f, true),
    };
    if f.is_dir() || f.kernel_backed() || writes_file && f.flags as c_int & libc::O_APPEND != 0 {
        return None;
    }
    let (fl, st) = kernel_end(other)?;
    let other_ok = if writes_file {
        st.st_mode & libc::S_IFMT == libc::S_IFREG && fl & libc::O_ACCMODE != libc::O_WRONLY
    } else {
        fl & (libc::O_APPEND | libc::O_PATH) == 0 && fl & libc::O_ACCMODE != libc::O_RDONLY
    };
    if !other_ok {
        return None;
    }
    let saved = errno();
    let n = n.min(SENDFILE_MAX);
    // Where reading starts: `*off`, or the source's offset.
    let at = if !off.is_null() {
        match uaccess::read_val(off) {
            Ok(o) if o >= 0 => o as u64,
            Ok(_) => return Some(err(libc::EINVAL)),
            Err(_) => return Some(err(libc::EFAULT)),
        }
    } else if writes_file {
        sys::sc!(libc::SYS_lseek, other, 0i64, libc::SEEK_CUR).ok()? as u64
    } else {
        f.position().ok()?
    };
    let moved = if writes_file {
        f.position()
            .and_then(|pos| Ok((pos, f.send_from(pos, other, at, n)?)))
            .and_then(|(pos, k)| f.set_position(pos + k as u64).map(|()| k))
    } else {
        f.send_to(at, other, n)
    };
    let k = match moved {
        Ok(k) => k,
        Err(Fail::Errno(e)) => return Some(err(e)),
        Err(Fail::Real) => return Some(err(libc::EIO)),
    };
    let end = at + k as u64;
    let source_moved = if !off.is_null() {
        uaccess::write_val(off, &(end as off_t)).map_err(|_| libc::EFAULT)
    } else if writes_file {
        sys::sc!(libc::SYS_lseek, other, end as i64, libc::SEEK_SET).map(drop)
    } else {
        f.set_position(end).map_err(|_| libc::EIO)
    };
    Some(match source_moved {
        Ok(()) => ok(saved, k as ssize_t),
        Err(e) => err(e),
    })
}

/// Largest transfer of one `sendfile` call (Linux's limit).
pub(super) const SENDFILE_MAX: usize = 0x7fff_f000;

/// `sendfile` from `input` to `output` (one mount) done by the daemon;
/// `None` when the kernel should decide instead (a case the daemon's copy
/// refuses, such as overlapping ranges of one file).
///
/// # Safety
/// `off` is null or points to a valid `off_t`.
#[inline]
pub(super) unsafe fn sendfile_in_daemon(
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

#[inline]
pub(super) unsafe fn splice(
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

#[inline]
pub(super) unsafe fn umask(m: mode_t) -> mode_t {
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    let old = unsafe { real::umask()(m) };
    // A vfork child's umask is its own; the recorded one is its parent's.
    if !state::in_vfork_child() {
        state::set_umask(m);
    }
    old
}
