//! The library's own system calls (oslib style).
//!
//! Everything goes through [`raw`], the `syscall` instruction itself:
//! never through the libc wrappers that this library hooks (`open`,
//! `close`, `fcntl`, ...), and not through libc's `syscall(3)` either,
//! which the library hooks too (see `process::syscall`) and to which its
//! own calls would bind (it links with `-Bsymbolic`). So the library's own
//! I/O can never recurse into its hooks. Each wrapper leaves the thread's
//! `errno` untouched and returns the error instead.

use core::ffi::c_long;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

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
    // SAFETY: `__errno_location` returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// System call `nr` with six arguments: the kernel's raw answer (`-errno`
/// on failure). errno is not touched.
///
/// # Safety
/// The arguments must be valid for that system call (pointers to memory
/// of the size and mutability it reads or writes).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) unsafe fn raw(nr: c_long, a: [c_long; 6]) -> c_long {
    let ret: c_long;
    // SAFETY: the x86_64 Linux system call convention: number in rax,
    // arguments in rdi, rsi, rdx, r10, r8, r9, result in rax; the
    // instruction clobbers rcx and r11 and nothing else (no stack use, so
    // `nostack`). Memory the call reads or writes is the caller's contract,
    // and the asm is not marked `nomem`, so the compiler assumes any.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// See the x86_64 version.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
#[inline]
pub(crate) unsafe fn raw(nr: c_long, a: [c_long; 6]) -> c_long {
    let ret: c_long;
    // SAFETY: the aarch64 Linux system call convention: number in x8,
    // arguments in x0..x5, result in x0; `svc 0` clobbers nothing else
    // and does not use the stack. Memory effects: as for x86_64.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] => ret,
            in("x1") a[1],
            in("x2") a[2],
            in("x3") a[3],
            in("x4") a[4],
            in("x5") a[5],
            options(nostack),
        );
    }
    ret
}

/// A raw return as `Ok(value)` or `Err(errno)` (the kernel's error range
/// is -4095..=-1).
#[inline]
pub(crate) fn check(r: c_long) -> Result<c_long, Errno> {
    if (-4095..0).contains(&r) {
        Err(-r as Errno)
    } else {
        Ok(r)
    }
}

/// A raw system call result in libc's convention: -1 with errno set on
/// failure.
pub(crate) fn libc_result(r: c_long) -> c_long {
    match check(r) {
        Ok(v) => v,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// [`raw`] with up to six arguments of any integer or pointer type:
/// `Ok(ret)` or `Err(errno)`, errno untouched.
macro_rules! sc {
    ($nr:expr $(, $arg:expr)* $(,)?) => {{
        // Every argument travels as a full `long` (a 32-bit value's upper
        // half is zero- or sign-extended here, never garbage, which the
        // kernel would read for its `unsigned long` parameters).
        #[allow(clippy::unnecessary_cast)]
        let given = [$($arg as core::ffi::c_long),*];
        let mut args = [0 as core::ffi::c_long; 6];
        args[..given.len()].copy_from_slice(&given);
        // SAFETY: each caller passes arguments valid for its syscall (see
        // the wrapper's own comment).
        $crate::sys::check(unsafe { $crate::sys::raw($nr as core::ffi::c_long, args) })
    }};
}
pub(crate) use sc;

/// The thread's effective and permitted capability sets (`capget`).
pub(crate) fn capabilities() -> Option<(u64, u64)> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    sc!(
        libc::SYS_capget,
        &mut header as *mut CapHeader,
        data.as_mut_ptr()
    )
    .ok()?;
    let join = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32;
    Some((join(|d| d.effective), join(|d| d.permitted)))
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two `CapData`.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Copy, Clone, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

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

/// The number of threads of the calling process (`/proc/self/stat`'s
/// 20th field), if it can be read.
pub(crate) fn thread_count() -> Option<u64> {
    let mut buf = [0u8; 1024];
    let n = read_file(b"/proc/self/stat\0", &mut buf).ok()?;
    // The fields after the command name, which may hold anything but ends
    // at the last ')': state is the 3rd field, the thread count the 20th.
    let after = buf[..n].iter().rposition(|&b| b == b')')? + 1;
    let field = buf[after..n]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(17)?;
    core::str::from_utf8(field).ok()?.parse().ok()
}

/// The calling process's id (a system call: glibc caches none).
pub(crate) fn getpid() -> i32 {
    sc!(libc::SYS_getpid).map_or(0, |p| p as i32)
}

/// `close(2)`, errors ignored.
pub(crate) fn close(fd: i32) {
    let _ = sc!(libc::SYS_close, fd);
}

/// `fcntl(fd, cmd, arg)` with an integer argument.
pub(crate) fn fcntl(fd: i32, cmd: i32, arg: c_long) -> Result<i32, Errno> {
    sc!(libc::SYS_fcntl, fd, cmd, arg).map(|r| r as i32)
}

/// `fstat(2)`.
pub(crate) fn fstat(fd: i32) -> Result<libc::stat, Errno> {
    // SAFETY: all-zero is a valid stat buffer for the kernel to fill.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    sc!(libc::SYS_fstat, fd, &mut st as *mut libc::stat).map(|_| st)
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

/// `recvmsg(2)`.
pub(crate) fn recvmsg(fd: i32, msg: &mut libc::msghdr, flags: i32) -> Result<usize, Errno> {
    sc!(libc::SYS_recvmsg, fd, msg as *mut libc::msghdr, flags).map(|r| r as usize)
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

/// The CPUs this thread may run on (`sched_getaffinity`), `None` if the
/// kernel does not say (more than 1 024 CPUs, or no such call).
pub(crate) fn cpus_allowed() -> Option<u32> {
    let mut set = [0u64; 16];
    sc!(
        libc::SYS_sched_getaffinity,
        0,
        core::mem::size_of_val(&set),
        set.as_mut_ptr()
    )
    .ok()
    .map(|_| set.iter().map(|w| w.count_ones()).sum::<u32>().max(1))
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

/// 64 random bits (`getrandom(2)`, non-blocking; the clock, the pid and a
/// counter mixed when it fails or gives 0, so never 0).
pub(crate) fn random_u64() -> u64 {
    #[link_section = ".data.btfuse_hot"]
    static CALLS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let mut r = 0u64;
    let got = sc!(
        libc::SYS_getrandom,
        &mut r as *mut u64,
        8usize,
        libc::GRND_NONBLOCK
    );
    if got.is_err() || r == 0 {
        let n = CALLS.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        r = monotonic_ns() ^ (u64::from(getpid() as u32) << 32) ^ n | 1;
    }
    r
}

/// The wall clock in whole seconds (`CLOCK_REALTIME_COARSE`, through the
/// vDSO: no system call), as file times count; 0 if it cannot be read.
pub(crate) fn wall_secs() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec of ours to write.
    match unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } {
        0 => ts.tv_sec,
        _ => 0,
    }
}

/// Whether [`debug`] writes (`BTFUSE_DEBUG`, read by `state` at
/// initialisation). Kept here, not in `state`, so that the raw-syscall layer
/// depends on no other module of the library.
#[link_section = ".data.btfuse_hot"]
static DEBUG: AtomicBool = AtomicBool::new(false);

/// Where [`debug`] writes: a copy of stderr made when debug output was
/// turned on, out of the program's way (programs such as `cat`, `find`
/// and `ls` close their stderr in an `atexit` handler, before the
/// library's exit reports run), or stderr itself if no copy could be made.
#[link_section = ".data.btfuse_hot"]
static DEBUG_FD: AtomicI32 = AtomicI32::new(2);

/// Lowest fd number of [`DEBUG_FD`]'s copy.
const DEBUG_FD_MIN: c_long = 512;

/// Turns [`debug`] output on.
pub(crate) fn enable_debug() {
    if let Ok(fd) = fcntl(2, libc::F_DUPFD_CLOEXEC, DEBUG_FD_MIN) {
        DEBUG_FD.store(fd, Ordering::Relaxed);
    }
    DEBUG.store(true, Ordering::Relaxed);
}

/// Whether [`debug`] writes.
pub(crate) fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Writes a diagnostic line to stderr when `BTFUSE_DEBUG` was set (checked
/// once at initialisation).
pub(crate) fn debug(parts: &[&[u8]]) {
    if !debug_enabled() {
        return;
    }
    let fd = DEBUG_FD.load(Ordering::Relaxed);
    for p in parts {
        let _ = sc!(libc::SYS_write, fd, p.as_ptr(), p.len());
    }
    let _ = sc!(libc::SYS_write, fd, b"\n".as_ptr(), 1);
}
