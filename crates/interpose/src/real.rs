//! The real libc functions behind our hooks, resolved lazily with
//! `dlsym(RTLD_NEXT, name)` on first use and cached in an atomic.
//!
//! Nothing is resolved at load time (the load-cost lesson). `dlsym` may
//! allocate or take the loader lock, but it never calls the functions we
//! hook, so resolving from inside a hook cannot recurse.

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use libc::{mode_t, off64_t, off_t, size_t, ssize_t, DIR};

#[cold]
fn resolve(name: &'static [u8]) -> usize {
    // SAFETY: `name` is NUL-terminated (built with concat!(.., "\0")).
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        crate::sys::debug(&[b"btfuse: no real symbol ", &name[..name.len() - 1]]);
        // The program links to a function its libc does not have: it could
        // not have run without us either.
        // SAFETY: abort never returns.
        unsafe { libc::abort() }
    }
    p as usize
}

/// Resolves the `exec` family now: a process about to fork (a shell, `make`)
/// does it once for all its children, each of which would otherwise look
/// the name up between its fork and its `exec` (`dlsym` in a fresh copy of
/// the parent's pages: ~8 page faults a child, 25 µs here).
pub(crate) fn resolve_exec_family() {
    let _ = (
        execve(),
        execv(),
        execvp(),
        execvpe(),
        fexecve(),
        execveat(),
    );
    let _ = (execl(), execlp(), execle());
}

macro_rules! reals {
    ($( $name:ident ( $($a:ty),* ) -> $r:ty ; )*) => {
        $(
            #[inline]
            #[allow(dead_code)]
            pub(crate) fn $name() -> unsafe extern "C" fn($($a),*) -> $r {
                #[link_section = ".data.btfuse_hot"]
                static SLOT: AtomicUsize = AtomicUsize::new(0);
                // Relaxed: the value is a function address that every
                // thread resolves to the same thing; a race resolves twice.
                let mut p = SLOT.load(Ordering::Relaxed);
                if p == 0 {
                    p = resolve(concat!(stringify!($name), "\0").as_bytes());
                    SLOT.store(p, Ordering::Relaxed);
                }
                // SAFETY: `p` is the address of the libc function of that
                // name, whose C prototype is the one written here.
                unsafe { core::mem::transmute::<usize, unsafe extern "C" fn($($a),*) -> $r>(p) }
            }
        )*
    };
}

reals! {
    open(*const c_char, c_int, mode_t) -> c_int;
    open64(*const c_char, c_int, mode_t) -> c_int;
    openat(c_int, *const c_char, c_int, mode_t) -> c_int;
    openat64(c_int, *const c_char, c_int, mode_t) -> c_int;
    __open_2(*const c_char, c_int) -> c_int;
    __open64_2(*const c_char, c_int) -> c_int;
    __openat_2(c_int, *const c_char, c_int) -> c_int;
    __openat64_2(c_int, *const c_char, c_int) -> c_int;
    creat(*const c_char, mode_t) -> c_int;
    creat64(*const c_char, mode_t) -> c_int;
    close(c_int) -> c_int;
    close_range(c_uint, c_uint, c_int) -> c_int;
    closefrom(c_int) -> ();
    read(c_int, *mut c_void, size_t) -> ssize_t;
    pread(c_int, *mut c_void, size_t, off_t) -> ssize_t;
    pread64(c_int, *mut c_void, size_t, off64_t) -> ssize_t;
    readv(c_int, *const libc::iovec, c_int) -> ssize_t;
    write(c_int, *const c_void, size_t) -> ssize_t;
    pwrite(c_int, *const c_void, size_t, off_t) -> ssize_t;
    pwrite64(c_int, *const c_void, size_t, off64_t) -> ssize_t;
    writev(c_int, *const libc::iovec, c_int) -> ssize_t;
    lseek(c_int, off_t, c_int) -> off_t;
    lseek64(c_int, off64_t, c_int) -> off64_t;
    fstat(c_int, *mut libc::stat) -> c_int;
    fstat64(c_int, *mut libc::stat64) -> c_int;
    stat(*const c_char, *mut libc::stat) -> c_int;
    stat64(*const c_char, *mut libc::stat64) -> c_int;
    lstat(*const c_char, *mut libc::stat) -> c_int;
    lstat64(*const c_char, *mut libc::stat64) -> c_int;
    fstatat(c_int, *const c_char, *mut libc::stat, c_int) -> c_int;
    fstatat64(c_int, *const c_char, *mut libc::stat64, c_int) -> c_int;
    statx(c_int, *const c_char, c_int, c_uint, *mut libc::statx) -> c_int;
    access(*const c_char, c_int) -> c_int;
    faccessat(c_int, *const c_char, c_int, c_int) -> c_int;
    eaccess(*const c_char, c_int) -> c_int;
    euidaccess(*const c_char, c_int) -> c_int;
    readlink(*const c_char, *mut c_char, size_t) -> ssize_t;
    readlinkat(c_int, *const c_char, *mut c_char, size_t) -> ssize_t;
    mkdir(*const c_char, mode_t) -> c_int;
    mkdirat(c_int, *const c_char, mode_t) -> c_int;
    mknodat(c_int, *const c_char, mode_t, libc::dev_t) -> c_int;
    rmdir(*const c_char) -> c_int;
    unlink(*const c_char) -> c_int;
    unlinkat(c_int, *const c_char, c_int) -> c_int;
    rename(*const c_char, *const c_char) -> c_int;
    renameat(c_int, *const c_char, c_int, *const c_char) -> c_int;
    renameat2(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int;
    symlink(*const c_char, *const c_char) -> c_int;
    symlinkat(*const c_char, c_int, *const c_char) -> c_int;
    link(*const c_char, *const c_char) -> c_int;
    linkat(c_int, *const c_char, c_int, *const c_char, c_int) -> c_int;
    truncate(*const c_char, off_t) -> c_int;
    truncate64(*const c_char, off64_t) -> c_int;
    ftruncate(c_int, off_t) -> c_int;
    ftruncate64(c_int, off64_t) -> c_int;
    fsync(c_int) -> c_int;
    fdatasync(c_int) -> c_int;
    chmod(*const c_char, mode_t) -> c_int;
    fchmod(c_int, mode_t) -> c_int;
    fchmodat(c_int, *const c_char, mode_t, c_int) -> c_int;
    chown(*const c_char, libc::uid_t, libc::gid_t) -> c_int;
    lchown(*const c_char, libc::uid_t, libc::gid_t) -> c_int;
    fchown(c_int, libc::uid_t, libc::gid_t) -> c_int;
    fchownat(c_int, *const c_char, libc::uid_t, libc::gid_t, c_int) -> c_int;
    utimensat(c_int, *const c_char, *const libc::timespec, c_int) -> c_int;
    futimens(c_int, *const libc::timespec) -> c_int;
    statfs(*const c_char, *mut libc::statfs) -> c_int;
    statfs64(*const c_char, *mut libc::statfs64) -> c_int;
    fstatfs(c_int, *mut libc::statfs) -> c_int;
    fstatfs64(c_int, *mut libc::statfs64) -> c_int;
    opendir(*const c_char) -> *mut DIR;
    sigaction(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
    __sigaction(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
    signal(c_int, libc::sighandler_t) -> libc::sighandler_t;
    bsd_signal(c_int, libc::sighandler_t) -> libc::sighandler_t;
    ssignal(c_int, libc::sighandler_t) -> libc::sighandler_t;
    sysv_signal(c_int, libc::sighandler_t) -> libc::sighandler_t;
    __sysv_signal(c_int, libc::sighandler_t) -> libc::sighandler_t;
    sigset(c_int, libc::sighandler_t) -> libc::sighandler_t;
    fdopendir(c_int) -> *mut DIR;
    readdir(*mut DIR) -> *mut libc::dirent;
    readdir64(*mut DIR) -> *mut libc::dirent64;
    readdir_r(*mut DIR, *mut libc::dirent, *mut *mut libc::dirent) -> c_int;
    readdir64_r(*mut DIR, *mut libc::dirent64, *mut *mut libc::dirent64) -> c_int;
    closedir(*mut DIR) -> c_int;
    dirfd(*mut DIR) -> c_int;
    rewinddir(*mut DIR) -> ();
    telldir(*mut DIR) -> c_long;
    seekdir(*mut DIR, c_long) -> ();
    chdir(*const c_char) -> c_int;
    fchdir(c_int) -> c_int;
    getcwd(*mut c_char, size_t) -> *mut c_char;
    realpath(*const c_char, *mut c_char) -> *mut c_char;
    fcntl(c_int, c_int, usize) -> c_int;
    fcntl64(c_int, c_int, usize) -> c_int;
    dup(c_int) -> c_int;
    dup2(c_int, c_int) -> c_int;
    dup3(c_int, c_int, c_int) -> c_int;
    posix_fadvise(c_int, off_t, off_t, c_int) -> c_int;
    posix_fadvise64(c_int, off64_t, off64_t, c_int) -> c_int;
    copy_file_range(c_int, *mut off64_t, c_int, *mut off64_t, size_t, c_uint) -> ssize_t;
    fallocate(c_int, c_int, off_t, off_t) -> c_int;
    mmap(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;
    flock(c_int, c_int) -> c_int;
    readahead(c_int, off64_t, size_t) -> ssize_t;
    syncfs(c_int) -> c_int;
    sync_file_range(c_int, off64_t, off64_t, c_uint) -> c_int;
    getdents64(c_int, *mut c_void, size_t) -> ssize_t;
    isatty(c_int) -> c_int;
    tcgetattr(c_int, *mut libc::termios) -> c_int;
    ttyname(c_int) -> *mut c_char;
    ttyname_r(c_int, *mut c_char, size_t) -> c_int;
    poll(*mut libc::pollfd, libc::nfds_t, c_int) -> c_int;
    __poll_chk(*mut libc::pollfd, libc::nfds_t, c_int, size_t) -> c_int;
    ppoll(*mut libc::pollfd, libc::nfds_t, *const libc::timespec, *const libc::sigset_t) -> c_int;
    __ppoll_chk(*mut libc::pollfd, libc::nfds_t, *const libc::timespec, *const libc::sigset_t, size_t) -> c_int;
    select(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *mut libc::timeval) -> c_int;
    pselect(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *const libc::timespec, *const libc::sigset_t) -> c_int;
    epoll_ctl(c_int, c_int, c_int, *mut libc::epoll_event) -> c_int;
    lockf(c_int, c_int, off_t) -> c_int;
    sendmsg(c_int, *const libc::msghdr, c_int) -> ssize_t;
    sendmmsg(c_int, *mut libc::mmsghdr, c_uint, c_int) -> c_int;
    ioctl(c_int, libc::c_ulong, *mut c_void) -> c_int;
    sendfile(c_int, c_int, *mut off_t, size_t) -> ssize_t;
    splice(c_int, *mut off64_t, c_int, *mut off64_t, size_t, c_uint) -> ssize_t;
    posix_fallocate(c_int, off_t, off_t) -> c_int;
    umask(mode_t) -> mode_t;
    fclose(*mut libc::FILE) -> c_int;
    fopen(*const c_char, *const c_char) -> *mut libc::FILE;
    fopen64(*const c_char, *const c_char) -> *mut libc::FILE;
    freopen(*const c_char, *const c_char, *mut libc::FILE) -> *mut libc::FILE;
    freopen64(*const c_char, *const c_char, *mut libc::FILE) -> *mut libc::FILE;
    fdopen(c_int, *const c_char) -> *mut libc::FILE;
    fgetxattr(c_int, *const c_char, *mut c_void, size_t) -> ssize_t;
    flistxattr(c_int, *mut c_char, size_t) -> ssize_t;
    fsetxattr(c_int, *const c_char, *const c_void, size_t, c_int) -> c_int;
    fremovexattr(c_int, *const c_char) -> c_int;
    getxattr(*const c_char, *const c_char, *mut c_void, size_t) -> ssize_t;
    lgetxattr(*const c_char, *const c_char, *mut c_void, size_t) -> ssize_t;
    listxattr(*const c_char, *mut c_char, size_t) -> ssize_t;
    llistxattr(*const c_char, *mut c_char, size_t) -> ssize_t;
    setxattr(*const c_char, *const c_char, *const c_void, size_t, c_int) -> c_int;
    lsetxattr(*const c_char, *const c_char, *const c_void, size_t, c_int) -> c_int;
    removexattr(*const c_char, *const c_char) -> c_int;
    lremovexattr(*const c_char, *const c_char) -> c_int;
    fileno(*mut libc::FILE) -> c_int;
    setuid(libc::uid_t) -> c_int;
    seteuid(libc::uid_t) -> c_int;
    setreuid(libc::uid_t, libc::uid_t) -> c_int;
    setresuid(libc::uid_t, libc::uid_t, libc::uid_t) -> c_int;
    setgid(libc::gid_t) -> c_int;
    setegid(libc::gid_t) -> c_int;
    setregid(libc::gid_t, libc::gid_t) -> c_int;
    setresgid(libc::gid_t, libc::gid_t, libc::gid_t) -> c_int;
    setgroups(size_t, *const libc::gid_t) -> c_int;
    initgroups(*const c_char, libc::gid_t) -> c_int;
    setfsuid(libc::uid_t) -> c_int;
    setfsgid(libc::gid_t) -> c_int;
    execve(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
    vfork() -> libc::pid_t;
    execv(*const c_char, *const *const c_char) -> c_int;
    execvp(*const c_char, *const *const c_char) -> c_int;
    execvpe(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
    fexecve(c_int, *const *const c_char, *const *const c_char) -> c_int;
    execveat(c_int, *const c_char, *const *const c_char, *const *const c_char, c_int) -> c_int;
    execl(*const c_char, *const c_char) -> c_int;
    clone(*mut c_void, *mut c_void, c_int, *mut c_void) -> c_int;
    mkstemp(*mut c_char) -> c_int;
    mkstemp64(*mut c_char) -> c_int;
    mkostemp(*mut c_char, c_int) -> c_int;
    mkostemp64(*mut c_char, c_int) -> c_int;
    mkstemps(*mut c_char, c_int) -> c_int;
    mkstemps64(*mut c_char, c_int) -> c_int;
    mkostemps(*mut c_char, c_int, c_int) -> c_int;
    mkostemps64(*mut c_char, c_int, c_int) -> c_int;
    pthread_create(
        *mut libc::pthread_t,
        *const libc::pthread_attr_t,
        extern "C" fn(*mut c_void) -> *mut c_void,
        *mut c_void
    ) -> c_int;
    execlp(*const c_char, *const c_char) -> c_int;
    execle(*const c_char, *const c_char) -> c_int;
    posix_spawn(
        *mut libc::pid_t,
        *const c_char,
        *const libc::posix_spawn_file_actions_t,
        *const libc::posix_spawnattr_t,
        *const *mut c_char,
        *const *mut c_char
    ) -> c_int;
    posix_spawnp(
        *mut libc::pid_t,
        *const c_char,
        *const libc::posix_spawn_file_actions_t,
        *const libc::posix_spawnattr_t,
        *const *mut c_char,
        *const *mut c_char
    ) -> c_int;
    system(*const c_char) -> c_int;
    statvfs(*const c_char, *mut libc::statvfs) -> c_int;
    statvfs64(*const c_char, *mut libc::statvfs64) -> c_int;
    fstatvfs(c_int, *mut libc::statvfs) -> c_int;
    fstatvfs64(c_int, *mut libc::statvfs64) -> c_int;
    preadv(c_int, *const libc::iovec, c_int, off_t) -> ssize_t;
    preadv64(c_int, *const libc::iovec, c_int, off64_t) -> ssize_t;
    preadv2(c_int, *const libc::iovec, c_int, off_t, c_int) -> ssize_t;
    preadv64v2(c_int, *const libc::iovec, c_int, off64_t, c_int) -> ssize_t;
    pwritev(c_int, *const libc::iovec, c_int, off_t) -> ssize_t;
    pwritev64(c_int, *const libc::iovec, c_int, off64_t) -> ssize_t;
    pwritev2(c_int, *const libc::iovec, c_int, off_t, c_int) -> ssize_t;
    pwritev64v2(c_int, *const libc::iovec, c_int, off64_t, c_int) -> ssize_t;
    futimes(c_int, *const libc::timeval) -> c_int;
    name_to_handle_at(c_int, *const c_char, *mut c_void, *mut c_int, c_int) -> c_int;
    popen(*const c_char, *const c_char) -> *mut libc::FILE;
}
