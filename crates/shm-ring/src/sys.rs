//! The only place that talks to the kernel (oslib style): every `libc` call
//! of the crate lives here, behind a small safe function that turns `-1` +
//! `errno` into an [`Errno`].
//!
//! All futex operations are *shared* (no `FUTEX_PRIVATE_FLAG`): the futex
//! words live in a `MAP_SHARED` memfd mapping and the peer is another
//! process, so the kernel must key the futex by (inode, offset), not by
//! (mm, address).

use core::fmt;
use core::sync::atomic::AtomicU32;

/// A raw `errno` value returned by a failed system call.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({})", self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errno {}", self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Errno {}

#[cfg(feature = "std")]
impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// The calling thread's current `errno`.
pub(crate) fn last_errno() -> Errno {
    // SAFETY: `__errno_location` returns a valid pointer to this thread's
    // errno for the whole life of the thread.
    Errno(unsafe { *libc::__errno_location() })
}

/// Turns a `c_int`/`c_long` return value into `Result`, reading errno on -1.
fn check<T: Copy + PartialEq + From<i8>>(ret: T) -> Result<T, Errno> {
    if ret == T::from(-1) {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (vDSO, no syscall on x86_64/aarch64):
/// the clock of every [`WaitPolicy`](crate::WaitPolicy) deadline.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

fn timespec_from_ns(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000).min(i64::MAX as u64) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// Outcome of a futex wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWait {
    /// Woken by `futex_wake` (or spuriously).
    Woken,
    /// The word did not hold the expected value (`EAGAIN`).
    Mismatch,
    /// The timeout elapsed (`ETIMEDOUT`).
    TimedOut,
    /// A signal interrupted the wait (`EINTR`).
    Interrupted,
}

fn classify_wait(ret: libc::c_long) -> FutexWait {
    if ret >= 0 {
        return FutexWait::Woken;
    }
    match last_errno().0 {
        libc::EAGAIN => FutexWait::Mismatch,
        libc::ETIMEDOUT => FutexWait::TimedOut,
        libc::EINTR => FutexWait::Interrupted,
        // EFAULT/EINVAL cannot happen for a valid, aligned, mapped word;
        // treat anything else as a spurious wakeup: every caller re-checks.
        _ => FutexWait::Woken,
    }
}

/// `FUTEX_WAIT` (shared) on `word` while it holds `expected`, for at most
/// `timeout_ns` (relative, `CLOCK_MONOTONIC`).
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: u64) -> FutexWait {
    let ts = timespec_from_ns(timeout_ns);
    // SAFETY: `word` is a valid, 4-byte aligned u32 for the duration of the
    // call; `ts` is a valid timespec. The kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            core::ptr::null::<u32>(),
            0u32,
        )
    };
    classify_wait(ret)
}

/// `FUTEX_WAKE` (shared): wakes up to `n` waiters on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a valid aligned u32; FUTEX_WAKE only uses its
    // address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            0u32,
        )
    };
}

/// One entry of `futex_waitv(2)` (`struct futex_waitv` of the kernel UAPI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FutexWaitv {
    pub(crate) val: u64,
    pub(crate) uaddr: u64,
    pub(crate) flags: u32,
    pub(crate) reserved: u32,
}

/// `FUTEX2_SIZE_U32`: a 32-bit futex; no `FUTEX2_PRIVATE` (shared futex).
pub(crate) const FUTEX2_SIZE_U32: u32 = 0x02;
/// Kernel limit on the number of entries of one `futex_waitv` call.
pub(crate) const FUTEX_WAITV_MAX: usize = 128;

/// `futex_waitv(2)` with a relative timeout. Returns `Ok(FutexWait)`, or
/// `Err(ENOSYS)` on kernels older than 5.16.
pub(crate) fn futex_waitv(entries: &[FutexWaitv], timeout_ns: u64) -> Result<FutexWait, Errno> {
    // futex_waitv takes an absolute timeout on the given clock.
    let ts = timespec_from_ns(monotonic_ns().saturating_add(timeout_ns));
    // SAFETY: `entries` points to `entries.len()` valid `struct futex_waitv`
    // (repr(C), same layout as the UAPI), each naming a live aligned u32;
    // `ts` is a valid timespec. The kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            entries.as_ptr(),
            entries.len() as libc::c_uint,
            0u32,
            &ts as *const libc::timespec,
            libc::CLOCK_MONOTONIC,
        )
    };
    if ret < 0 && last_errno().0 == libc::ENOSYS {
        return Err(Errno(libc::ENOSYS));
    }
    Ok(classify_wait(ret))
}

/// `sched_yield(2)`.
pub(crate) fn sched_yield() {
    // SAFETY: no arguments, cannot fail in a way that matters.
    unsafe { libc::sched_yield() };
}

/// The CPU the calling thread runs on, plus one; 0 if unknown. (glibc
/// reads it from the thread's rseq area: no syscall.)
pub(crate) fn cpu_hint() -> u32 {
    // SAFETY: no arguments.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).map_or(0, |c| c.wrapping_add(1))
}

/// `getpid(2)`.
pub(crate) fn getpid() -> i32 {
    // SAFETY: always safe.
    unsafe { libc::getpid() }
}

/// `kill(pid, 0)`: false only when the process certainly does not exist.
pub(crate) fn pid_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || last_errno().0 != libc::ESRCH
}

/// `pidfd_open(2)`.
pub(crate) fn pidfd_open(pid: i32) -> Result<i32, Errno> {
    // SAFETY: plain syscall with integer arguments.
    let r = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) })?;
    Ok(r as i32)
}

/// Whether `fd` (a pidfd) reports its process as exited: `poll(POLLIN, 0)`.
pub(crate) fn pidfd_exited(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd; timeout 0 never blocks.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && (p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLNVAL)) != 0
}

/// `close(2)`, ignoring errors (there is nothing useful to do with them).
pub(crate) fn close(fd: i32) {
    // SAFETY: the caller owns `fd` and never uses it again.
    unsafe { libc::close(fd) };
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, sized to `len`
/// and sealed against shrinking, growing and further sealing.
pub(crate) fn sealed_memfd(len: usize) -> Result<i32, Errno> {
    // SAFETY: the name is a valid NUL-terminated string.
    let fd = check(unsafe {
        libc::memfd_create(
            c"btfuse-shm-ring".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    })?;
    let setup = || -> Result<(), Errno> {
        // SAFETY: `fd` is the memfd we just created.
        check(unsafe { libc::ftruncate(fd, len as libc::off_t) })?;
        // SAFETY: as above; F_ADD_SEALS with a plain flag set.
        check(unsafe {
            libc::fcntl(
                fd,
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
            )
        })?;
        Ok(())
    };
    match setup() {
        Ok(()) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

/// Size in bytes of the file behind `fd` (`fstat`).
pub(crate) fn fd_size(fd: i32) -> Result<u64, Errno> {
    // SAFETY: all-zero is a valid `stat`.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is a valid writable stat buffer.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_size.max(0) as u64)
}

/// `F_GET_SEALS` of `fd`.
pub(crate) fn fd_seals(fd: i32) -> Result<i32, Errno> {
    // SAFETY: plain fcntl query.
    check(unsafe { libc::fcntl(fd, libc::F_GET_SEALS) })
}

/// `mmap(NULL, len, READ|WRITE, MAP_SHARED, fd, 0)`.
pub(crate) fn mmap_shared(fd: i32, len: usize) -> Result<*mut u8, Errno> {
    // SAFETY: a fresh mapping chosen by the kernel; aliases nothing.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(last_errno())
    } else {
        Ok(p.cast())
    }
}

/// `munmap(2)`.
///
/// # Safety
/// `ptr..ptr+len` must be a mapping owned by the caller that nothing
/// references any more.
pub(crate) unsafe fn munmap(ptr: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::munmap(ptr.cast(), len) };
}
