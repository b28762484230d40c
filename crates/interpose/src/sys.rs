//! The library's own system calls (oslib style).
//!
//! Everything goes through `libc::syscall`, never through the libc wrappers
//! that this library hooks (`open`, `close`, `fcntl`, ...), so the
//! library's own I/O can never recurse into its hooks. Each wrapper leaves
//! the thread's `errno` as it found it and returns the error instead.

use core::ffi::c_long;

/// A positive errno value.
pub(crate) type Errno = i32;

/// The calling thread's errno.
#[inline]
pub(crate) fn errno() -> i32 {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's errno.
#[inline]
pub(crate) fn set_errno(e: i32) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e };
}

/// `libc::syscall` with errno preserved: `Ok(ret)` or `Err(errno)`.
macro_rules! sc {
    ($($arg:expr),+ $(,)?) => {{
        let saved = $crate::sys::errno();
        // Every argument travels as a full `long`: a 32-bit value passed
        // through the variadic call may carry garbage in the upper half,
        // which the kernel reads for its `unsigned long` parameters (seen:
        // process_vm_readv's flags).
        #[allow(clippy::unnecessary_cast)]
        // SAFETY: each caller passes arguments valid for its syscall (see
        // the wrapper's own comment).
        let r: core::ffi::c_long = unsafe { libc::syscall($($arg as core::ffi::c_long),+) };
        if r == -1 {
            let e = $crate::sys::errno();
            $crate::sys::set_errno(saved);
            Err(e)
        } else {
            Ok(r)
        }
    }};
}
pub(crate) use sc;

/// `openat(AT_FDCWD, path, flags)`; `path` must be NUL-terminated.
pub(crate) fn open(path: &[u8], flags: i32) -> Result<i32, Errno> {
    debug_assert!(path.last() == Some(&0));
    sc!(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags, 0).map(|r| r as i32)
}

/// `read(2)`.
pub(crate) fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    sc!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()).map(|r| r as usize)
}

/// Reads a whole small file into `buf` (at most `buf.len()` bytes).
pub(crate) fn read_file(path: &[u8], buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = open(path, libc::O_RDONLY | libc::O_CLOEXEC)?;
    let mut n = 0;
    let r = loop {
        if n == buf.len() {
            break Ok(n);
        }
        match read(fd, &mut buf[n..]) {
            Ok(0) => break Ok(n),
            Ok(k) => n += k,
            Err(libc::EINTR) => {}
            Err(e) => break Err(e),
        }
    };
    close(fd);
    r
}

/// `close(2)`, errors ignored.
pub(crate) fn close(fd: i32) {
    let _ = sc!(libc::SYS_close, fd);
}

/// `fcntl(fd, cmd, arg)` with an integer argument.
pub(crate) fn fcntl(fd: i32, cmd: i32, arg: c_long) -> Result<i32, Errno> {
    sc!(libc::SYS_fcntl, fd, cmd, arg).map(|r| r as i32)
}

/// `dup3(2)`.
pub(crate) fn dup3(old: i32, new: i32, flags: i32) -> Result<i32, Errno> {
    sc!(libc::SYS_dup3, old, new, flags).map(|r| r as i32)
}

/// `socket(2)`.
pub(crate) fn socket(domain: i32, ty: i32, proto: i32) -> Result<i32, Errno> {
    sc!(libc::SYS_socket, domain, ty, proto).map(|r| r as i32)
}

/// `connect(2)`.
pub(crate) fn connect(fd: i32, addr: &libc::sockaddr_un, len: u32) -> Result<(), Errno> {
    sc!(libc::SYS_connect, fd, addr as *const libc::sockaddr_un, len).map(|_| ())
}

/// `sendmsg(2)`.
pub(crate) fn sendmsg(fd: i32, msg: &libc::msghdr, flags: i32) -> Result<usize, Errno> {
    sc!(libc::SYS_sendmsg, fd, msg as *const libc::msghdr, flags).map(|r| r as usize)
}

/// `poll(2)` on one fd with a timeout in milliseconds; returns `revents`.
pub(crate) fn poll1(fd: i32, events: i16, timeout_ms: i32) -> Result<i16, Errno> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: (timeout_ms / 1000) as _,
        tv_nsec: ((timeout_ms % 1000) * 1_000_000) as _,
    };
    sc!(
        libc::SYS_ppoll,
        &mut p as *mut libc::pollfd,
        1,
        &ts as *const libc::timespec,
        0,
        0
    )?;
    Ok(p.revents)
}

/// The soft `RLIMIT_NOFILE`.
pub(crate) fn nofile_limit() -> u64 {
    let mut r = libc::rlimit64 {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    let _ = sc!(
        libc::SYS_prlimit64,
        0,
        libc::RLIMIT_NOFILE,
        0usize,
        &mut r as *mut libc::rlimit64
    );
    r.rlim_cur
}

/// `munmap(2)`.
///
/// # Safety
/// The range must be a mapping nothing references any more.
pub(crate) unsafe fn munmap(p: *mut u8, len: usize) {
    let _ = sc!(libc::SYS_munmap, p, len);
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock shm-ring's waits use.
pub(crate) use shm_ring::monotonic_ns;

/// Writes a diagnostic line to stderr when `BTFUSE_DEBUG` was set (checked
/// once at initialisation).
pub(crate) fn debug(parts: &[&[u8]]) {
    if !crate::state::debug_enabled() {
        return;
    }
    for p in parts {
        let _ = sc!(libc::SYS_write, 2, p.as_ptr(), p.len());
    }
    let _ = sc!(libc::SYS_write, 2, b"\n".as_ptr(), 1);
}
