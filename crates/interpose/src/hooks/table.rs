// The hook table (see `hooks!` in mod.rs): one entry per exported C
// function. Included by `hooks/mod.rs` and by the `hook_table` tests.

hooks! {
    /// `open(2)`: a file on a btfuse mount opens as a fast-path fd; any other path goes to libc.
    fn open(p: *const c_char, flags: c_int, mode: mode_t) -> c_int => open::open;
    /// Large-file alias of [`open()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn open64(p: *const c_char, flags: c_int, mode: mode_t) -> c_int => open(p, flags, mode);
    /// `mkstemp(3)`: a temporary file on a mount is created through [`open()`], so it is a fast-path file (glibc creates it with an internal `open` no hook sees); elsewhere glibc's.
    fn mkstemp(t: *mut c_char) -> c_int => open::mktemp(t, 0, 0, || real::mkstemp()(t));
    /// Large-file alias of [`mkstemp()`].
    fn mkstemp64(t: *mut c_char) -> c_int => open::mktemp(t, 0, 0, || real::mkstemp64()(t));
    /// `mkostemp(3)`: as [`mkstemp()`], with open flags.
    fn mkostemp(t: *mut c_char, flags: c_int) -> c_int => open::mktemp(t, 0, flags, || real::mkostemp()(t, flags));
    /// Large-file alias of [`mkostemp()`].
    fn mkostemp64(t: *mut c_char, flags: c_int) -> c_int => open::mktemp(t, 0, flags, || real::mkostemp64()(t, flags));
    /// `mkstemps(3)`: as [`mkstemp()`], the `XXXXXX` before a suffix.
    fn mkstemps(t: *mut c_char, suffix: c_int) -> c_int => open::mktemp(t, suffix, 0, || real::mkstemps()(t, suffix));
    /// Large-file alias of [`mkstemps()`].
    fn mkstemps64(t: *mut c_char, suffix: c_int) -> c_int => open::mktemp(t, suffix, 0, || real::mkstemps64()(t, suffix));
    /// `mkostemps(3)`: as [`mkstemps()`], with open flags.
    fn mkostemps(t: *mut c_char, suffix: c_int, flags: c_int) -> c_int => open::mktemp(t, suffix, flags, || real::mkostemps()(t, suffix, flags));
    /// Large-file alias of [`mkostemps()`].
    fn mkostemps64(t: *mut c_char, suffix: c_int, flags: c_int) -> c_int => open::mktemp(t, suffix, flags, || real::mkostemps64()(t, suffix, flags));
    /// Fortified `open` (no mode argument): as [`open()`] with mode 0.
    fn __open_2(p: *const c_char, flags: c_int) -> c_int => open(p, flags, 0);
    /// Fortified `open64` (no mode argument): as [`open()`] with mode 0.
    fn __open64_2(p: *const c_char, flags: c_int) -> c_int => open(p, flags, 0);
    /// `openat(2)`: as [`open()`], relative to a directory fd (ours or the kernel's).
    fn openat(dirfd: c_int, p: *const c_char, flags: c_int, mode: mode_t) -> c_int => open::openat;
    /// Large-file alias of [`openat()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn openat64(dirfd: c_int, p: *const c_char, flags: c_int, mode: mode_t) -> c_int => openat(dirfd, p, flags, mode);
    /// Fortified `openat` (no mode argument): as [`openat()`] with mode 0.
    fn __openat_2(dirfd: c_int, p: *const c_char, flags: c_int) -> c_int => openat(dirfd, p, flags, 0);
    /// Fortified `openat64` (no mode argument): as [`openat()`] with mode 0.
    fn __openat64_2(dirfd: c_int, p: *const c_char, flags: c_int) -> c_int => openat(dirfd, p, flags, 0);
    /// `creat(2)`: `open` with `O_CREAT | O_WRONLY | O_TRUNC`.
    fn creat(p: *const c_char, mode: mode_t) -> c_int => open(p, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode);
    /// Large-file alias of [`creat()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn creat64(p: *const c_char, mode: mode_t) -> c_int => creat(p, mode);
    /// `close(2)`: drops a fast-path fd; the library's own sockets stay open.
    fn close(fd: c_int) -> c_int => open::close;
    /// `close_range(2)`: also drops the fast-path fds in range; the library's own sockets stay open.
    fn close_range(lo: c_uint, hi: c_uint, flags: c_int) -> c_int => open::close_range;
    /// `closefrom(3)`: `close_range(lo, ~0U, 0)`.
    fn closefrom(lo: c_int) => open::closefrom;
    /// `read(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => fds::read;
    /// Fortified [`read()`]: aborts through `__chk_fail` when the count exceeds the buffer.
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t, chk(n <= buflen) => read(fd, buf, n);
    /// `readv(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t => fds::readv;
    /// `pread(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t => fds::pread;
    /// `pread64(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off64_t) -> ssize_t => fds::pread64;
    /// Fortified [`pread()`]: aborts through `__chk_fail` when the count exceeds the buffer.
    fn __pread_chk(fd: c_int, buf: *mut c_void, n: size_t, off: off_t, buflen: size_t) -> ssize_t, chk(n <= buflen) => pread(fd, buf, n, off);
    /// Fortified [`pread64()`]: aborts through `__chk_fail` when the count exceeds the buffer.
    fn __pread64_chk(fd: c_int, buf: *mut c_void, n: size_t, off: off64_t, buflen: size_t) -> ssize_t, chk(n <= buflen) => pread64(fd, buf, n, off);
    /// `write(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t => fds::write;
    /// `writev(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t => fds::writev;
    /// `pwrite(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t => fds::pwrite;
    /// `pwrite64(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off64_t) -> ssize_t => fds::pwrite64;
    /// `lseek(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn lseek(fd: c_int, off: off_t, whence: c_int) -> off_t => fds::lseek;
    /// Large-file alias of [`lseek()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn lseek64(fd: c_int, off: off64_t, whence: c_int) -> off64_t => lseek(fd, off, whence);
    /// `posix_fadvise(2)`: advice only: accepted on a fast-path fd.
    fn posix_fadvise(fd: c_int, off: off_t, len: off_t, advice: c_int) -> c_int => fds::posix_fadvise;
    /// Large-file alias of [`posix_fadvise()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn posix_fadvise64(fd: c_int, off: off64_t, len: off64_t, advice: c_int) -> c_int => posix_fadvise(fd, off, len, advice);
    /// `copy_file_range(2)`: a copy inside the daemon between two files of one mount; `EXDEV` across mounts.
    fn copy_file_range(fdin: c_int, offin: *mut off64_t, fdout: c_int, offout: *mut off64_t, len: size_t, flags: c_uint) -> ssize_t => fds::copy_file_range;
    /// `fallocate(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int => fds::fallocate;
    /// Large-file alias of [`fallocate()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn fallocate64(fd: c_int, mode: c_int, off: off64_t, len: off64_t) -> c_int => fallocate(fd, mode, off, len);
    /// `posix_fallocate(3)`: the daemon allocates (glibc calls the syscall internally).
    fn posix_fallocate(fd: c_int, off: off_t, len: off_t) -> c_int => fds::posix_fallocate;
    /// Large-file alias of [`posix_fallocate()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn posix_fallocate64(fd: c_int, off: off64_t, len: off64_t) -> c_int => posix_fallocate(fd, off, len);
    /// `fsync(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn fsync(fd: c_int) -> c_int => fds::fsync;
    /// `fdatasync(2)`: as `fsync` on a fast-path fd.
    fn fdatasync(fd: c_int) -> c_int => fds::fdatasync;
    /// `ftruncate(2)`: a size change by the daemon for a fast-path fd.
    fn ftruncate(fd: c_int, len: off_t) -> c_int => fds::ftruncate;
    /// Large-file alias of [`ftruncate()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn ftruncate64(fd: c_int, len: off64_t) -> c_int => ftruncate(fd, len);
    /// `fchmod(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn fchmod(fd: c_int, mode: mode_t) -> c_int => fds::fchmod;
    /// `fchown(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn fchown(fd: c_int, uid: libc::uid_t, gid: libc::gid_t) -> c_int => fds::fchown;
    /// `futimens(2)` on a fast-path fd, served over the channel; libc's for any other fd.
    fn futimens(fd: c_int, times: *const libc::timespec) -> c_int => fds::futimens;
    /// `fstat(2)`: the daemon's attributes for a fast-path fd.
    fn fstat(fd: c_int, st: *mut libc::stat) -> c_int => stat::fstat;
    /// `fstat64`: the daemon's attributes for a path or fd on a mount; libc's otherwise.
    fn fstat64(fd: c_int, st: *mut libc::stat64) -> c_int => stat::fstat64;
    /// `stat(2)`: `fstatat(AT_FDCWD, .., 0)`.
    fn stat(p: *const c_char, st: *mut libc::stat) -> c_int => stat::stat_at(AT_FDCWD, p, st, 0);
    /// `stat64`: the daemon's attributes for a path or fd on a mount; libc's otherwise.
    fn stat64(p: *const c_char, st: *mut libc::stat64) -> c_int => stat::stat_at(AT_FDCWD, p, st.cast(), 0);
    /// `lstat(2)`: `fstatat` with `AT_SYMLINK_NOFOLLOW`.
    fn lstat(p: *const c_char, st: *mut libc::stat) -> c_int => stat::stat_at(AT_FDCWD, p, st, libc::AT_SYMLINK_NOFOLLOW);
    /// `lstat64`: the daemon's attributes for a path or fd on a mount; libc's otherwise.
    fn lstat64(p: *const c_char, st: *mut libc::stat64) -> c_int => stat::stat_at(AT_FDCWD, p, st.cast(), libc::AT_SYMLINK_NOFOLLOW);
    /// `fstatat(2)`: the daemon's attributes for a path on a mount.
    fn fstatat(d: c_int, p: *const c_char, st: *mut libc::stat, flags: c_int) -> c_int => stat::stat_at(d, p, st, flags);
    /// `fstatat64`: the daemon's attributes for a path or fd on a mount; libc's otherwise.
    fn fstatat64(d: c_int, p: *const c_char, st: *mut libc::stat64, flags: c_int) -> c_int => stat::stat_at(d, p, st.cast(), flags);
    /// Pre-2.33 `stat` entry point (the version argument is the `struct stat` layout).
    fn __xstat(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int => stat::stat_at(AT_FDCWD, p, st, 0);
    /// Pre-2.33 alias entry point: as [`stat()`].
    fn __xstat64(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int => stat::stat_at(AT_FDCWD, p, st, 0);
    /// Pre-2.33 `lstat` entry point.
    fn __lxstat(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int => stat::stat_at(AT_FDCWD, p, st, libc::AT_SYMLINK_NOFOLLOW);
    /// Pre-2.33 alias entry point: as [`lstat()`].
    fn __lxstat64(_v: c_int, p: *const c_char, st: *mut libc::stat) -> c_int => stat::stat_at(AT_FDCWD, p, st, libc::AT_SYMLINK_NOFOLLOW);
    /// Pre-2.33 `fstat` entry point.
    fn __fxstat(_v: c_int, fd: c_int, st: *mut libc::stat) -> c_int => fstat(fd, st);
    /// Pre-2.33 alias entry point: as [`fstat()`].
    fn __fxstat64(_v: c_int, fd: c_int, st: *mut libc::stat) -> c_int => fstat(fd, st);
    /// Pre-2.33 `fstatat` entry point.
    fn __fxstatat(_v: c_int, d: c_int, p: *const c_char, st: *mut libc::stat, fl: c_int) -> c_int => stat::stat_at(d, p, st, fl);
    /// Pre-2.33 alias entry point: as [`fstatat()`].
    fn __fxstatat64(_v: c_int, d: c_int, p: *const c_char, st: *mut libc::stat, fl: c_int) -> c_int => stat::stat_at(d, p, st, fl);
    /// `statx(2)`: the daemon's attributes for a path or fast-path fd.
    fn statx(d: c_int, p: *const c_char, flags: c_int, mask: c_uint, buf: *mut libc::statx) -> c_int => stat::statx;
    /// `statfs(2)`: one round trip for a path on a mount.
    fn statfs(p: *const c_char, out: *mut libc::statfs) -> c_int => stat::statfs;
    /// Large-file alias of [`statfs()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn statfs64(p: *const c_char, out: *mut libc::statfs64) -> c_int => statfs(p, out.cast());
    /// `statfs` of a fast-path fd's mount.
    fn fstatfs(fd: c_int, out: *mut libc::statfs) -> c_int => stat::fstatfs;
    /// Large-file alias of [`fstatfs()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn fstatfs64(fd: c_int, out: *mut libc::statfs64) -> c_int => fstatfs(fd, out.cast());
    /// `statvfs(3)`: from the daemon's `statfs`, converted as glibc converts.
    fn statvfs(p: *const c_char, out: *mut libc::statvfs) -> c_int => stat::statvfs_impl(p, out);
    /// `statvfs64`: the daemon's attributes for a path or fd on a mount; libc's otherwise.
    fn statvfs64(p: *const c_char, out: *mut libc::statvfs64) -> c_int => stat::statvfs_impl(p, out.cast());
    /// `fstatvfs(3)`: as [`statvfs()`] for a fast-path fd.
    fn fstatvfs(fd: c_int, out: *mut libc::statvfs) -> c_int => stat::fstatvfs;
    /// `fstatvfs64`: the daemon's attributes for a path or fd on a mount; libc's otherwise.
    fn fstatvfs64(fd: c_int, out: *mut libc::statvfs64) -> c_int => stat::fstatvfs64;
    /// `utimes(2)`: converted to `utimensat`.
    fn utimes(p: *const c_char, tv: *const libc::timeval) -> c_int => paths::utimes_at(AT_FDCWD, p, tv, 0);
    /// `lutimes(3)`: converted to `utimensat` with `AT_SYMLINK_NOFOLLOW`.
    fn lutimes(p: *const c_char, tv: *const libc::timeval) -> c_int => paths::utimes_at(AT_FDCWD, p, tv, libc::AT_SYMLINK_NOFOLLOW);
    /// `futimesat(2)`: converted to `utimensat` (a null path means the fd itself).
    fn futimesat(d: c_int, p: *const c_char, tv: *const libc::timeval) -> c_int => paths::utimes_at(d, p, tv, 0);
    /// `utime(2)`: converted to `utimensat`.
    fn utime(p: *const c_char, t: *const libc::utimbuf) -> c_int => paths::utime;
    /// `futimes(3)`: converted to `futimens`.
    fn futimes(fd: c_int, tv: *const libc::timeval) -> c_int => paths::futimes;
    /// `name_to_handle_at(2)`: the kernel answers, with a kernel fd in place of a fast-path one.
    fn name_to_handle_at(d: c_int, p: *const c_char, h: *mut c_void, mnt: *mut c_int, flags: c_int) -> c_int => paths::name_to_handle_at;
    /// `access(2)`: `faccessat(AT_FDCWD, p, mode, 0)`.
    fn access(p: *const c_char, mode: c_int) -> c_int => faccessat(AT_FDCWD, p, mode, 0);
    /// `faccessat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn faccessat(d: c_int, p: *const c_char, mode: c_int, flags: c_int) -> c_int => paths::faccessat;
    /// `euidaccess(3)`: `faccessat` with `AT_EACCESS` (glibc calls it internally).
    fn euidaccess(p: *const c_char, mode: c_int) -> c_int => faccessat(AT_FDCWD, p, mode, libc::AT_EACCESS);
    /// `eaccess(3)`: as [`euidaccess()`].
    fn eaccess(p: *const c_char, mode: c_int) -> c_int => faccessat(AT_FDCWD, p, mode, libc::AT_EACCESS);
    /// `mkdir(2)`: `mkdirat(AT_FDCWD, ..)`.
    fn mkdir(p: *const c_char, mode: mode_t) -> c_int => mkdirat(AT_FDCWD, p, mode);
    /// `mkdirat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn mkdirat(d: c_int, p: *const c_char, mode: mode_t) -> c_int => paths::mkdirat;
    /// `mknodat` for regular files, FIFOs and sockets (device nodes too: the
    /// daemon checks privileges exactly like the FUSE door).
    fn mknodat(d: c_int, p: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int => paths::mknodat;
    /// `mknod(2)`: `mknodat(AT_FDCWD, ..)`.
    fn mknod(p: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int => mknodat(AT_FDCWD, p, mode, dev);
    /// `mkfifoat(3)`: `mknodat` with `S_IFIFO`, as glibc's.
    fn mkfifoat(d: c_int, p: *const c_char, mode: mode_t) -> c_int => mknodat(d, p, libc::S_IFIFO | (mode & 0o7777), 0);
    /// `mkfifo(3)`: `mkfifoat(AT_FDCWD, ..)`.
    fn mkfifo(p: *const c_char, mode: mode_t) -> c_int => mkfifoat(AT_FDCWD, p, mode);
    /// `rmdir(2)`: `unlinkat(.., AT_REMOVEDIR)`.
    fn rmdir(p: *const c_char) -> c_int => unlinkat(AT_FDCWD, p, libc::AT_REMOVEDIR);
    /// `unlink(2)`: `unlinkat(AT_FDCWD, .., 0)`.
    fn unlink(p: *const c_char) -> c_int => unlinkat(AT_FDCWD, p, 0);
    /// `unlinkat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn unlinkat(d: c_int, p: *const c_char, flags: c_int) -> c_int => paths::unlinkat;
    /// `symlink(2)`: `symlinkat(target, AT_FDCWD, ..)`.
    fn symlink(target: *const c_char, p: *const c_char) -> c_int => symlinkat(target, AT_FDCWD, p);
    /// `symlinkat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn symlinkat(target: *const c_char, d: c_int, p: *const c_char) -> c_int => paths::symlinkat;
    /// `readlink(2)`: `readlinkat(AT_FDCWD, ..)`.
    fn readlink(p: *const c_char, buf: *mut c_char, n: size_t) -> ssize_t => readlinkat(AT_FDCWD, p, buf, n);
    /// Fortified [`readlink()`]: aborts through `__chk_fail` when the count exceeds the buffer.
    fn __readlink_chk(p: *const c_char, buf: *mut c_char, n: size_t, buflen: size_t) -> ssize_t, chk(n <= buflen) => readlinkat(AT_FDCWD, p, buf, n);
    /// Fortified [`readlinkat()`]: aborts through `__chk_fail` when the count exceeds the buffer.
    fn __readlinkat_chk(d: c_int, p: *const c_char, buf: *mut c_char, n: size_t, buflen: size_t) -> ssize_t, chk(n <= buflen) => readlinkat(d, p, buf, n);
    /// `readlinkat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn readlinkat(d: c_int, p: *const c_char, buf: *mut c_char, n: size_t) -> ssize_t => paths::readlinkat;
    /// `realpath(3)`: glibc's algorithm over the library's own `readlink` and `faccessat` (glibc's internal ones reach the kernel, a mount's paths too), with glibc's answers and errnos.
    fn realpath(name: *const c_char, resolved: *mut c_char) -> *mut c_char => realpath::realpath;
    /// `canonicalize_file_name(3)`: [`realpath()`] into a `malloc`ed buffer.
    fn canonicalize_file_name(name: *const c_char) -> *mut c_char => realpath(name, core::ptr::null_mut());
    /// Fortified [`realpath()`]: aborts through `__chk_fail` when the buffer is smaller than `PATH_MAX`.
    fn __realpath_chk(name: *const c_char, resolved: *mut c_char, resolved_len: size_t) -> *mut c_char => realpath::realpath_chk(name, resolved, resolved_len);
    /// `rename(2)`: `renameat2` without flags.
    fn rename(a: *const c_char, b: *const c_char) -> c_int => renameat2(AT_FDCWD, a, AT_FDCWD, b, 0);
    /// `renameat(2)`: `renameat2` without flags.
    fn renameat(d1: c_int, a: *const c_char, d2: c_int, b: *const c_char) -> c_int => renameat2(d1, a, d2, b, 0);
    /// `renameat2(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn renameat2(d1: c_int, a: *const c_char, d2: c_int, b: *const c_char, flags: c_uint) -> c_int => paths::renameat2;
    /// `link(2)`: `linkat(AT_FDCWD, .., AT_FDCWD, .., 0)`.
    fn link(a: *const c_char, b: *const c_char) -> c_int => linkat(AT_FDCWD, a, AT_FDCWD, b, 0);
    /// `linkat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn linkat(d1: c_int, a: *const c_char, d2: c_int, b: *const c_char, flags: c_int) -> c_int => paths::linkat;
    /// `truncate(2)`: a size change by the daemon for a path on a mount.
    fn truncate(p: *const c_char, len: off_t) -> c_int => paths::truncate;
    /// Large-file alias of [`truncate()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn truncate64(p: *const c_char, len: off64_t) -> c_int => truncate(p, len);
    /// `chmod(2)`: `fchmodat(AT_FDCWD, ..)`.
    fn chmod(p: *const c_char, mode: mode_t) -> c_int => fchmodat(AT_FDCWD, p, mode, 0);
    /// `lchmod(3)`: `fchmodat` with `AT_SYMLINK_NOFOLLOW` (glibc's calls its
    /// own `fchmodat` internally, past the hook: rsync changes every file's
    /// mode with it).
    fn lchmod(p: *const c_char, mode: mode_t) -> c_int => fchmodat(AT_FDCWD, p, mode, libc::AT_SYMLINK_NOFOLLOW);
    /// `fchmodat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn fchmodat(d: c_int, p: *const c_char, mode: mode_t, flags: c_int) -> c_int => paths::fchmodat;
    /// `chown(2)`: `fchownat(AT_FDCWD, .., 0)`.
    fn chown(p: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int => fchownat(AT_FDCWD, p, uid, gid, 0);
    /// `lchown(2)`: `fchownat` with `AT_SYMLINK_NOFOLLOW`.
    fn lchown(p: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int => fchownat(AT_FDCWD, p, uid, gid, libc::AT_SYMLINK_NOFOLLOW);
    /// `fchownat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn fchownat(d: c_int, p: *const c_char, uid: libc::uid_t, gid: libc::gid_t, flags: c_int) -> c_int => paths::fchownat;
    /// `utimensat(2)` of a path on a btfuse mount, served by the daemon; libc's otherwise.
    fn utimensat(d: c_int, p: *const c_char, times: *const libc::timespec, flags: c_int) -> c_int => paths::utimensat;
    /// `chdir(2)`: libc's, then the cwd classification is redone.
    fn chdir(p: *const c_char) -> c_int => paths::chdir;
    /// `fchdir(2)`: to a fast-path directory through a kernel `O_PATH` fd of it.
    fn fchdir(fd: c_int) -> c_int => paths::fchdir;
    /// `dup(2)`: a copy of a fast-path fd shares its open file description.
    fn dup(fd: c_int) -> c_int => kernel::dup;
    /// `dup2(2)`: as [`dup3()`] without flags.
    fn dup2(old: c_int, new: c_int) -> c_int => kernel::dup2;
    /// `dup3(2)`: the new fd shares the fast-path open file; onto 0..=2 the file becomes kernel-backed first.
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int => kernel::dup3_impl(old, new, flags, || real::dup3()(old, new, flags));
    /// `mmap(2)`: a small private mapping of a fast-path file is a copy (`ops::private_copy`); otherwise the fd becomes kernel-backed first, then libc's maps it.
    fn mmap(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void => kernel::mmap;
    /// Large-file alias of [`mmap()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn mmap64(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off64_t) -> *mut c_void => mmap(addr, len, prot, flags, fd, off);
    /// `lockf(3)`: on a kernel-backed fd (glibc calls its internal `fcntl`).
    fn lockf(fd: c_int, cmd: c_int, len: off_t) -> c_int => kernel::lockf;
    /// Large-file alias of [`lockf()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn lockf64(fd: c_int, cmd: c_int, len: off64_t) -> c_int => lockf(fd, cmd, len);
    /// `flock(2)`: on a kernel-backed fd (locks are the kernel's).
    fn flock(fd: c_int, op: c_int) -> c_int => kernel::backed(fd, || real::flock()(fd, op));
    /// `readahead(2)`: on a kernel-backed fd (the placeholder answered `EBADF`).
    fn readahead(fd: c_int, off: off64_t, count: size_t) -> ssize_t => kernel::backed(fd, || real::readahead()(fd, off, count));
    /// `syncfs(2)`: on a kernel-backed fd, so the mount's filesystem is the one synced.
    fn syncfs(fd: c_int) -> c_int => kernel::backed(fd, || real::syncfs()(fd));
    /// `sync_file_range(2)`: on a kernel-backed fd (the placeholder answered `EBADF`).
    fn sync_file_range(fd: c_int, off: off64_t, n: off64_t, flags: c_uint) -> c_int => kernel::backed(fd, || real::sync_file_range()(fd, off, n, flags));
    /// `getdents64(2)` called by the program: on a kernel-backed fd, so the kernel lists the directory (the placeholder answered `EBADF`).
    fn getdents64(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => kernel::backed(fd, || real::getdents64()(fd, buf, n));
    /// `isatty(3)`: a fast-path fd is a file or directory, never a terminal (`ENOTTY`, as glibc's own `ioctl` missed the hook and said `EBADF`).
    fn isatty(fd: c_int) -> c_int => kernel::isatty;
    /// `tcgetattr(3)`: `ENOTTY` on a fast-path fd, as [`isatty()`].
    fn tcgetattr(fd: c_int, t: *mut libc::termios) -> c_int => kernel::tcgetattr;
    /// `ttyname(3)`: `ENOTTY` on a fast-path fd, as [`isatty()`].
    fn ttyname(fd: c_int) -> *mut c_char => kernel::ttyname;
    /// `ttyname_r(3)`: `ENOTTY` on a fast-path fd, as [`isatty()`].
    fn ttyname_r(fd: c_int, buf: *mut c_char, n: size_t) -> c_int => kernel::ttyname_r;
    /// `poll(2)`: fast-path fds in the array become kernel-backed, then libc's.
    fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int => kernel::poll;
    /// Fortified `poll`: as [`poll()`].
    fn __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, fdslen: size_t) -> c_int => kernel::__poll_chk;
    /// `ppoll(2)`: as [`poll()`].
    fn ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: *const libc::timespec, mask: *const libc::sigset_t) -> c_int => kernel::ppoll;
    /// Fortified `ppoll`: as [`poll()`].
    fn __ppoll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: *const libc::timespec, mask: *const libc::sigset_t, fdslen: size_t) -> c_int => kernel::__ppoll_chk;
    /// `select(2)`: fast-path fds in the sets become kernel-backed, then libc's.
    fn select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, timeout: *mut libc::timeval) -> c_int => kernel::select;
    /// `pselect(2)`: as [`select()`].
    fn pselect(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, timeout: *const libc::timespec, mask: *const libc::sigset_t) -> c_int => kernel::pselect;
    /// `epoll_ctl(2)`: a fast-path fd added becomes kernel-backed first.
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut libc::epoll_event) -> c_int => kernel::epoll_ctl;
    /// `ioctl(2)`: reflink requests between two files of one mount answered here; otherwise on a kernel-backed fd.
    fn ioctl(fd: c_int, req: libc::c_ulong, arg: *mut c_void) -> c_int => kernel::ioctl;
    /// `sendfile(2)`: a copy inside the daemon between two files of one mount, through the channel's bulk area between a fast-path file and a kernel fd, else on kernel-backed fds.
    fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t => kernel::sendfile;
    /// Large-file alias of [`sendfile()`]: the same function on the supported 64-bit targets (one `off_t`, one `struct stat` layout).
    fn sendfile64(out: c_int, inp: c_int, off: *mut off64_t, n: size_t) -> ssize_t => sendfile(out, inp, off, n);
    /// `splice(2)`: on kernel-backed fds.
    fn splice(fd_in: c_int, off_in: *mut off64_t, fd_out: c_int, off_out: *mut off64_t, len: size_t, flags: c_uint) -> ssize_t => kernel::splice;
    /// `fcntl(2)`: flags and duplication of fast-path fds served here; locks and the rest on a kernel-backed fd.
    fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int => kernel::fcntl_impl(fd, cmd, arg, || real::fcntl()(fd, cmd, arg));
    /// `fcntl64`: as [`fcntl()`].
    fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int => kernel::fcntl_impl(fd, cmd, arg, || real::fcntl64()(fd, cmd, arg));
    /// `umask(2)`: also remembered for the modes of files the daemon creates.
    fn umask(m: mode_t) -> mode_t => kernel::umask;
    /// `opendir(3)`: a directory on a mount becomes a library-owned stream.
    fn opendir(p: *const c_char) -> *mut DIR => dirs::opendir;
    /// `fdopendir(3)`: a stream over a fast-path directory fd.
    fn fdopendir(fd: c_int) -> *mut DIR => dirs::fdopendir;
    /// `readdir64(3)`: the next entry of a library-owned stream.
    fn readdir64(d: *mut DIR) -> *mut libc::dirent64 => dirs::readdir64;
    /// `readdir(3)`: as [`readdir64()`] (one layout on the 64-bit targets).
    fn readdir(d: *mut DIR) -> *mut libc::dirent => dirs::readdir;
    /// `readdir64_r(3)`: [`readdir64()`] copied into the caller's entry.
    fn readdir64_r(d: *mut DIR, entry: *mut libc::dirent64, result: *mut *mut libc::dirent64) -> c_int => dirs::readdir64_r;
    /// `readdir_r(3)`: as [`readdir64_r()`].
    fn readdir_r(d: *mut DIR, entry: *mut libc::dirent, result: *mut *mut libc::dirent) -> c_int => dirs::readdir_r;
    /// `closedir(3)`: frees a library-owned stream and closes its fd.
    fn closedir(d: *mut DIR) -> c_int => dirs::closedir;
    /// `dirfd(3)`: the fd of a library-owned stream.
    fn dirfd(d: *mut DIR) -> c_int => dirs::dirfd;
    /// `rewinddir(3)`: rewinds a library-owned stream.
    fn rewinddir(d: *mut DIR) => dirs::rewinddir;
    /// `telldir(3)`: the position cookie of a library-owned stream.
    fn telldir(d: *mut DIR) -> c_long => dirs::telldir;
    /// `seekdir(3)`: moves a library-owned stream to a cookie from `telldir`.
    fn seekdir(d: *mut DIR, loc: c_long) => dirs::seekdir;
    /// `fgetxattr(2)` served by the daemon on a mount; libc's otherwise.
    fn fgetxattr(fd: c_int, name: *const c_char, v: *mut c_void, n: size_t) -> ssize_t => xattr::fgetxattr;
    /// `flistxattr(2)` served by the daemon on a mount; libc's otherwise.
    fn flistxattr(fd: c_int, list: *mut c_char, n: size_t) -> ssize_t => xattr::flistxattr;
    /// `fsetxattr(2)` served by the daemon on a mount; libc's otherwise.
    fn fsetxattr(fd: c_int, name: *const c_char, v: *const c_void, n: size_t, flags: c_int) -> c_int => xattr::fsetxattr;
    /// `fremovexattr(2)` served by the daemon on a mount; libc's otherwise.
    fn fremovexattr(fd: c_int, name: *const c_char) -> c_int => xattr::fremovexattr;
    /// `preadv(2)`: vector reads at an offset on a fast-path fd; libc's for any other fd.
    fn preadv(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t) -> ssize_t => fds::preadv;
    /// `preadv64(2)`: vector reads at an offset on a fast-path fd; libc's for any other fd.
    fn preadv64(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off64_t) -> ssize_t => fds::preadv64;
    /// `pwritev(2)`: vector writes at an offset on a fast-path fd; libc's for any other fd.
    fn pwritev(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t) -> ssize_t => fds::pwritev;
    /// `pwritev64(2)`: vector writes at an offset on a fast-path fd; libc's for any other fd.
    fn pwritev64(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off64_t) -> ssize_t => fds::pwritev64;
    /// `preadv2(2)`: vector reads at an offset on a fast-path fd (flags other than 0: the kernel's, on a kernel-backed fd); libc's for any other fd.
    fn preadv2(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t => fds::preadv2;
    /// `preadv64v2(2)`: vector reads at an offset on a fast-path fd (flags other than 0: the kernel's, on a kernel-backed fd); libc's for any other fd.
    fn preadv64v2(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off64_t, flags: c_int) -> ssize_t => fds::preadv64v2;
    /// `pwritev2(2)`: vector writes at an offset on a fast-path fd (flags other than 0: the kernel's, on a kernel-backed fd); libc's for any other fd.
    fn pwritev2(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t => fds::pwritev2;
    /// `pwritev64v2(2)`: vector writes at an offset on a fast-path fd (flags other than 0: the kernel's, on a kernel-backed fd); libc's for any other fd.
    fn pwritev64v2(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off64_t, flags: c_int) -> ssize_t => fds::pwritev64v2;
    /// `getxattr(2)`: one attribute of a path on a mount (following symlinks), from the daemon; libc's elsewhere.
    fn getxattr(p: *const c_char, name: *const c_char, v: *mut c_void, n: size_t) -> ssize_t => xattr::getxattr;
    /// `listxattr(2)`: the attribute names of a path on a mount (following symlinks); libc's elsewhere.
    fn listxattr(p: *const c_char, list: *mut c_char, n: size_t) -> ssize_t => xattr::listxattr;
    /// `setxattr(2)`: sets an attribute of a path on a mount (following symlinks); libc's elsewhere.
    fn setxattr(p: *const c_char, name: *const c_char, v: *const c_void, n: size_t, flags: c_int) -> c_int => xattr::setxattr;
    /// `removexattr(2)`: removes an attribute of a path on a mount (following symlinks); libc's elsewhere.
    fn removexattr(p: *const c_char, name: *const c_char) -> c_int => xattr::removexattr;
    /// `lgetxattr(2)`: one attribute of a path on a mount (of the link itself), from the daemon; libc's elsewhere.
    fn lgetxattr(p: *const c_char, name: *const c_char, v: *mut c_void, n: size_t) -> ssize_t => xattr::lgetxattr;
    /// `llistxattr(2)`: the attribute names of a path on a mount (of the link itself); libc's elsewhere.
    fn llistxattr(p: *const c_char, list: *mut c_char, n: size_t) -> ssize_t => xattr::llistxattr;
    /// `lsetxattr(2)`: sets an attribute of a path on a mount (of the link itself); libc's elsewhere.
    fn lsetxattr(p: *const c_char, name: *const c_char, v: *const c_void, n: size_t, flags: c_int) -> c_int => xattr::lsetxattr;
    /// `lremovexattr(2)`: removes an attribute of a path on a mount (of the link itself); libc's elsewhere.
    fn lremovexattr(p: *const c_char, name: *const c_char) -> c_int => xattr::lremovexattr;
}
