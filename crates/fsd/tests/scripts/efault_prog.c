/* Bad pointers, every hook of libbtfuse.so: the driver of
 * crates/fsd/tests/efault.rs.
 *
 *   efault_prog list      the hook names the table covers (one a line)
 *   efault_prog run       every case, each in a child, in the cwd (a work
 *                         directory: it creates f, d, l there); one line a
 *                         case: "hook/arg/kind: ret R errno E" or
 *                         "hook/arg/kind: signal N"
 *   efault_prog crash-handler | crash-default
 *                         a genuine NULL write after the library's handler
 *                         is in place: with the program's own SIGSEGV
 *                         handler on a sigaltstack (exit 42 when it ran on
 *                         that stack), or with the default (dies of 11)
 *
 * Each case passes a bad pointer of one kind in one argument: "unmapped"
 * (0xdeadc0de), "none" (a PROT_NONE page), "bus" (a page of a shared
 * mapping past the end of an empty memfd: SIGBUS when touched), "edge"
 * (the last 8 bytes of a page before a PROT_NONE one: a buffer or a string
 * that starts readable and runs into the hole). */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>
#include <utime.h>
#include <linux/fs.h>

extern int __open_2(const char *, int);
extern int __open64_2(const char *, int);
extern int __openat_2(int, const char *, int);
extern int __openat64_2(int, const char *, int);
extern ssize_t __read_chk(int, void *, size_t, size_t);
extern ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
extern ssize_t __pread64_chk(int, void *, size_t, off64_t, size_t);
extern ssize_t __readlink_chk(const char *, char *, size_t, size_t);
extern ssize_t __readlinkat_chk(int, const char *, char *, size_t, size_t);
extern char *__realpath_chk(const char *, char *, size_t);
extern int __poll_chk(struct pollfd *, nfds_t, int, size_t);
extern int __ppoll_chk(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
extern int __xstat(int, const char *, struct stat *);
extern int __xstat64(int, const char *, struct stat64 *);
extern int __lxstat(int, const char *, struct stat *);
extern int __lxstat64(int, const char *, struct stat64 *);
extern int __fxstat(int, int, struct stat *);
extern int __fxstat64(int, int, struct stat64 *);
extern int __fxstatat(int, int, const char *, struct stat *, int);
extern int __fxstatat64(int, int, const char *, struct stat64 *, int);
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
extern __sighandler_t sysv_signal(int, __sighandler_t);
extern __sighandler_t __sysv_signal(int, __sighandler_t);
extern __sighandler_t bsd_signal(int, __sighandler_t);
extern __sighandler_t ssignal(int, __sighandler_t);
extern pid_t __vfork(void);
extern int pivot_root(const char *, const char *);
extern int capset(void *, void *);

static void *B; /* the bad pointer of the current kind */
static int fd, dfd, sp[2];
static DIR *dp;
static char buf[8192];
static struct stat st;

/* Exported symbols with no pointer argument that the library reads or
 * writes (fds, numbers, flags, a handler address): covered by name. */
static const char *no_pointer[] = {
    "close", "close_range", "closefrom", "dup", "dup2", "dup3", "fallocate", "fallocate64",
    "posix_fallocate", "posix_fallocate64", "posix_fadvise", "posix_fadvise64", "fsync",
    "fdatasync", "ftruncate", "ftruncate64", "fchmod", "fchown", "fchdir", "lockf", "lockf64",
    "flock", "lseek", "lseek64", "umask", "vfork", "__vfork", "setegid", "seteuid", "setfsgid",
    "setfsuid", "setgid", "setregid", "setresgid", "setresuid", "setreuid", "setuid", "mmap",
    "mmap64", "fdopendir", "signal", "bsd_signal", "ssignal", "sysv_signal", "__sysv_signal",
    "sigset", "unshare", "setns", "clone", "isatty", "ttyname", "readahead", "syncfs",
    "sync_file_range", "pthread_create",
    /* not a hook: the Rust runtime's personality stub */
    "rust_eh_personality", 0};



/* One case: `expr` (int-like result) with B in argument `a` of `h`. */
#define CI(h, a, expr) \
    if (mode_list) { printf("%s\n", #h); } else { pid_t p = fork(); if (p == 0) { setup(); errno = 0; long r = (long)(expr); report(#h, a, kind, r == -1, r); } done(#h, a, kind, p); }
/* The same for a pointer result (NULL is the failure, any other is 1). */
#define CP(h, a, expr) \
    if (mode_list) { printf("%s\n", #h); } else { pid_t p = fork(); if (p == 0) { setup(); errno = 0; void *r = (void *)(expr); report(#h, a, kind, r == 0, r != 0); } done(#h, a, kind, p); }

static int mode_list;

static void setup(void) {
    struct rlimit no = {0, 0};
    setrlimit(RLIMIT_CORE, &no);
    alarm(10);
    fd = open("f", O_RDWR);
    dfd = open("d", O_RDONLY | O_DIRECTORY);
    dp = opendir("d");
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) { perror("socketpair"); _exit(99); }
    if (fd < 0 || dfd < 0 || !dp) { perror("setup"); _exit(99); }
}

static void report(const char *h, int a, const char *kind, int failed, long r) {
    /* A count or an fd: "positive", but exact for a buffer that runs into
       a hole (the kernel copies up to it: a short count). */
    if (r != -1 && r != 0 && r != 1 && strcmp(kind, "edge")) r = 2;
    dprintf(1, "%s/%d/%s: ret %ld errno %d\n", h, a, kind, r, failed ? errno : 0);
    _exit(0);
}

static void done(const char *h, int a, const char *kind, pid_t p) {
    int s;
    if (p < 0 || waitpid(p, &s, 0) != p) { perror("fork/wait"); exit(1); }
    if (WIFSIGNALED(s)) printf("%s/%d/%s: signal %d\n", h, a, kind, WTERMSIG(s));
    else if (WEXITSTATUS(s) != 0) printf("%s/%d/%s: exit %d\n", h, a, kind, WEXITSTATUS(s));
    fflush(stdout);
}

static void cases(const char *kind) {
    char *const argv[] = {"true", 0};
    struct iovec iov = {B, 16};
    struct iovec iov2 = {buf, 16};
    struct pollfd pf = {0, POLLIN, 0};
    struct timespec ts[2] = {{0, 0}, {0, 0}};
    struct timeval tv[2] = {{0, 0}, {0, 0}};
    struct utimbuf ub = {0, 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    fd_set rs;
    FD_ZERO(&rs);
    loff_t o = 0;
    off_t oo = 0;
    int mnt;
    struct flock fl = {F_RDLCK, SEEK_SET, 0, 0, 0};
    struct epoll_event ev = {EPOLLIN, {0}};
    pid_t pid;
    (void)fl; (void)ev;

    CI(open, 0, open(B, O_RDONLY)) CI(open64, 0, open64(B, O_RDONLY))
    CI(__open_2, 0, __open_2(B, O_RDONLY)) CI(__open64_2, 0, __open64_2(B, O_RDONLY))
    CI(openat, 1, openat(dfd, B, O_RDONLY)) CI(openat64, 1, openat64(AT_FDCWD, B, O_RDONLY))
    CI(__openat_2, 1, __openat_2(dfd, B, O_RDONLY)) CI(__openat64_2, 1, __openat64_2(AT_FDCWD, B, O_RDONLY))
    CI(creat, 0, creat(B, 0644)) CI(creat64, 0, creat64(B, 0644))
    CI(mkstemp, 0, mkstemp(B)) CI(mkstemp64, 0, mkstemp64(B))
    CI(mkostemp, 0, mkostemp(B, 0)) CI(mkostemp64, 0, mkostemp64(B, 0))
    CI(mkstemps, 0, mkstemps(B, 0)) CI(mkstemps64, 0, mkstemps64(B, 0))
    CI(mkostemps, 0, mkostemps(B, 0, 0)) CI(mkostemps64, 0, mkostemps64(B, 0, 0))
    CI(stat, 0, stat(B, &st)) CI(stat, 1, stat("f", B)) CI(stat, 1, stat("missing", B))
    CI(stat64, 0, stat64(B, (void *)&st)) CI(stat64, 1, stat64("f", B))
    CI(lstat, 0, lstat(B, &st)) CI(lstat, 1, lstat("l", B))
    CI(lstat64, 0, lstat64(B, (void *)&st)) CI(lstat64, 1, lstat64("l", B))
    CI(fstatat, 1, fstatat(dfd, B, &st, 0)) CI(fstatat, 2, fstatat(AT_FDCWD, "f", B, 0))
    CI(fstatat, 2, fstatat(fd, "", B, AT_EMPTY_PATH))
    CI(fstatat64, 1, fstatat64(AT_FDCWD, B, (void *)&st, 0)) CI(fstatat64, 2, fstatat64(AT_FDCWD, "f", B, 0))
    CI(__xstat, 1, __xstat(1, B, &st)) CI(__xstat, 2, __xstat(1, "f", B))
    CI(__xstat64, 1, __xstat64(1, B, (void *)&st)) CI(__xstat64, 2, __xstat64(1, "f", B))
    CI(__lxstat, 1, __lxstat(1, B, &st)) CI(__lxstat, 2, __lxstat(1, "l", B))
    CI(__lxstat64, 1, __lxstat64(1, B, (void *)&st)) CI(__lxstat64, 2, __lxstat64(1, "l", B))
    CI(__fxstatat, 2, __fxstatat(1, AT_FDCWD, B, &st, 0)) CI(__fxstatat, 3, __fxstatat(1, AT_FDCWD, "f", B, 0))
    CI(__fxstatat64, 2, __fxstatat64(1, AT_FDCWD, B, (void *)&st, 0)) CI(__fxstatat64, 3, __fxstatat64(1, AT_FDCWD, "f", B, 0))
    CI(fstat, 1, fstat(fd, B)) CI(fstat64, 1, fstat64(fd, B))
    CI(__fxstat, 2, __fxstat(1, fd, B)) CI(__fxstat64, 2, __fxstat64(1, fd, B))
    CI(statx, 1, statx(AT_FDCWD, B, 0, STATX_BASIC_STATS, (void *)buf))
    CI(statx, 4, statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, B))
    CI(statx, 4, statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, B))
    CI(statfs, 0, statfs(B, (void *)buf)) CI(statfs, 1, statfs("f", B))
    CI(statfs64, 0, statfs64(B, (void *)buf)) CI(statfs64, 1, statfs64("f", B))
    CI(fstatfs, 1, fstatfs(fd, B)) CI(fstatfs64, 1, fstatfs64(fd, B))
    CI(statvfs, 0, statvfs(B, (void *)buf)) CI(statvfs, 1, statvfs("f", B))
    CI(statvfs64, 0, statvfs64(B, (void *)buf)) CI(statvfs64, 1, statvfs64("f", B))
    CI(fstatvfs, 1, fstatvfs(fd, B)) CI(fstatvfs64, 1, fstatvfs64(fd, B))
    CI(access, 0, access(B, R_OK)) CI(faccessat, 1, faccessat(dfd, B, R_OK, 0))
    CI(euidaccess, 0, euidaccess(B, R_OK)) CI(eaccess, 0, eaccess(B, R_OK))
    CI(mkdir, 0, mkdir(B, 0755)) CI(mkdirat, 1, mkdirat(dfd, B, 0755))
    CI(mknod, 0, mknod(B, S_IFREG | 0644, 0)) CI(mknodat, 1, mknodat(dfd, B, S_IFREG | 0644, 0))
    CI(mkfifo, 0, mkfifo(B, 0644)) CI(mkfifoat, 1, mkfifoat(dfd, B, 0644))
    CI(rmdir, 0, rmdir(B)) CI(unlink, 0, unlink(B)) CI(unlinkat, 1, unlinkat(dfd, B, 0))
    CI(symlink, 0, symlink(B, "newlink")) CI(symlink, 1, symlink("f", B))
    CI(symlinkat, 0, symlinkat(B, dfd, "newlink")) CI(symlinkat, 2, symlinkat("f", dfd, B))
    CI(readlink, 0, readlink(B, buf, 100)) CI(readlink, 1, readlink("l", B, 100)) CI(readlink, 1, readlink("f", B, 100))
    CI(readlinkat, 1, readlinkat(AT_FDCWD, B, buf, 100)) CI(readlinkat, 2, readlinkat(AT_FDCWD, "l", B, 100))
    CI(__readlink_chk, 0, __readlink_chk(B, buf, 100, 100)) CI(__readlink_chk, 1, __readlink_chk("l", B, 100, 100))
    CI(__readlinkat_chk, 1, __readlinkat_chk(AT_FDCWD, B, buf, 100, 100)) CI(__readlinkat_chk, 2, __readlinkat_chk(AT_FDCWD, "l", B, 100, 100))
    CP(realpath, 0, realpath(B, buf)) CP(realpath, 1, realpath("f", B)) CP(canonicalize_file_name, 0, canonicalize_file_name(B))
    CP(__realpath_chk, 0, __realpath_chk(B, buf, 4096)) CP(__realpath_chk, 1, __realpath_chk("f", B, 4096))
    CI(rename, 0, rename(B, "g")) CI(rename, 1, rename("f", B))
    CI(renameat, 1, renameat(AT_FDCWD, B, AT_FDCWD, "g")) CI(renameat, 3, renameat(AT_FDCWD, "f", dfd, B))
    CI(renameat2, 1, renameat2(AT_FDCWD, B, AT_FDCWD, "g", 0)) CI(renameat2, 3, renameat2(AT_FDCWD, "f", AT_FDCWD, B, 0))
    CI(link, 0, link(B, "g")) CI(link, 1, link("f", B))
    CI(linkat, 1, linkat(AT_FDCWD, B, AT_FDCWD, "g", 0)) CI(linkat, 3, linkat(AT_FDCWD, "f", dfd, B, 0))
    CI(truncate, 0, truncate(B, 0)) CI(truncate64, 0, truncate64(B, 0))
    CI(chmod, 0, chmod(B, 0644)) CI(lchmod, 0, lchmod(B, 0644)) CI(fchmodat, 1, fchmodat(dfd, B, 0644, 0))
    CI(chown, 0, chown(B, -1, -1)) CI(lchown, 0, lchown(B, -1, -1)) CI(fchownat, 1, fchownat(dfd, B, -1, -1, 0))
    CI(utimensat, 1, utimensat(AT_FDCWD, B, ts, 0)) CI(utimensat, 2, utimensat(AT_FDCWD, "f", B, 0))
    CI(futimens, 1, futimens(fd, B))
    CI(utimes, 0, utimes(B, tv)) CI(utimes, 1, utimes("f", B))
    CI(lutimes, 0, lutimes(B, tv)) CI(lutimes, 1, lutimes("f", B))
    CI(futimesat, 1, futimesat(dfd, B, tv)) CI(futimesat, 2, futimesat(AT_FDCWD, "f", B))
    CI(futimes, 1, futimes(fd, B))
    CI(utime, 0, utime(B, &ub)) CI(utime, 1, utime("f", B))
    CI(chdir, 0, chdir(B))
    CP(opendir, 0, opendir(B))
    CI(name_to_handle_at, 1, name_to_handle_at(AT_FDCWD, B, (void *)buf, &mnt, 0))
    CI(name_to_handle_at, 2, name_to_handle_at(AT_FDCWD, "f", B, &mnt, 0))
    CI(name_to_handle_at, 3, (((struct file_handle *)buf)->handle_bytes = 128, name_to_handle_at(AT_FDCWD, "f", (void *)buf, B, 0)))
    CI(getxattr, 0, getxattr(B, "user.a", buf, 100)) CI(getxattr, 1, getxattr("f", B, buf, 100))
    CI(getxattr, 1, getxattr("missing", B, buf, 100))
    CI(getxattr, 2, (setxattr("f", "user.a", "v", 1, 0), getxattr("f", "user.a", B, 100)))
    CI(lgetxattr, 0, lgetxattr(B, "user.a", buf, 100)) CI(lgetxattr, 1, lgetxattr("f", B, buf, 100))
    CI(lgetxattr, 2, (setxattr("f", "user.a", "v", 1, 0), lgetxattr("f", "user.a", B, 100)))
    CI(fgetxattr, 1, fgetxattr(fd, B, buf, 100))
    CI(fgetxattr, 2, (setxattr("f", "user.a", "v", 1, 0), fgetxattr(fd, "user.a", B, 100)))
    CI(setxattr, 0, setxattr(B, "user.a", "v", 1, 0)) CI(setxattr, 1, setxattr("f", B, "v", 1, 0))
    CI(setxattr, 2, setxattr("f", "user.a", B, 1, 0))
    CI(lsetxattr, 0, lsetxattr(B, "user.a", "v", 1, 0)) CI(lsetxattr, 1, lsetxattr("f", B, "v", 1, 0))
    CI(lsetxattr, 2, lsetxattr("f", "user.a", B, 1, 0))
    CI(fsetxattr, 1, fsetxattr(fd, B, "v", 1, 0)) CI(fsetxattr, 2, fsetxattr(fd, "user.a", B, 1, 0))
    CI(removexattr, 0, removexattr(B, "user.a")) CI(removexattr, 1, removexattr("f", B))
    CI(lremovexattr, 0, lremovexattr(B, "user.a")) CI(lremovexattr, 1, lremovexattr("f", B))
    CI(fremovexattr, 1, fremovexattr(fd, B))
    CI(listxattr, 0, listxattr(B, buf, 100)) CI(listxattr, 1, (setxattr("f", "user.a", "v", 1, 0), listxattr("f", B, 100)))
    CI(llistxattr, 0, llistxattr(B, buf, 100)) CI(llistxattr, 1, (setxattr("f", "user.a", "v", 1, 0), llistxattr("f", B, 100)))
    CI(flistxattr, 1, (setxattr("f", "user.a", "v", 1, 0), flistxattr(fd, B, 100)))
    CI(read, 1, read(fd, B, 100)) CI(__read_chk, 1, __read_chk(fd, B, 100, 100))
    CI(getdents64, 1, getdents64(dfd, B, 4096))
    CI(tcgetattr, 1, tcgetattr(fd, B)) CI(ttyname_r, 1, ttyname_r(fd, B, 100))
    CI(pread, 1, pread(fd, B, 100, 0)) CI(pread64, 1, pread64(fd, B, 100, 0))
    CI(__pread_chk, 1, __pread_chk(fd, B, 100, 0, 100)) CI(__pread64_chk, 1, __pread64_chk(fd, B, 100, 0, 100))
    CI(write, 1, write(fd, B, 100)) CI(pwrite, 1, pwrite(fd, B, 100, 0)) CI(pwrite64, 1, pwrite64(fd, B, 100, 0))
    CI(readv, 1, readv(fd, B, 1)) CI(readv, 2, readv(fd, &iov, 1))
    CI(writev, 1, writev(fd, B, 1)) CI(writev, 2, writev(fd, &iov, 1))
    CI(preadv, 1, preadv(fd, B, 1, 0)) CI(preadv, 2, preadv(fd, &iov, 1, 0))
    CI(preadv64, 1, preadv64(fd, B, 1, 0)) CI(preadv64, 2, preadv64(fd, &iov, 1, 0))
    CI(preadv2, 1, preadv2(fd, B, 1, 0, 0)) CI(preadv2, 2, preadv2(fd, &iov, 1, -1, 0))
    CI(preadv64v2, 1, preadv64v2(fd, B, 1, 0, 0)) CI(preadv64v2, 2, preadv64v2(fd, &iov, 1, 0, 0))
    CI(pwritev, 1, pwritev(fd, B, 1, 0)) CI(pwritev, 2, pwritev(fd, &iov, 1, 0))
    CI(pwritev64, 1, pwritev64(fd, B, 1, 0)) CI(pwritev64, 2, pwritev64(fd, &iov, 1, 0))
    CI(pwritev2, 1, pwritev2(fd, B, 1, 0, 0)) CI(pwritev2, 2, pwritev2(fd, &iov, 1, -1, 0))
    CI(pwritev64v2, 1, pwritev64v2(fd, B, 1, 0, 0)) CI(pwritev64v2, 2, pwritev64v2(fd, &iov, 1, 0, 0))
    CI(readv, 3, (iov2.iov_base = buf, readv(fd, (struct iovec[]){iov2, iov}, 2)))
    /* sendmsg/sendmmsg read the header and its control buffer for the fds
     * they pass (argument 1 is the header, "2" its control buffer). */
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov2;
    mh.msg_iovlen = 1;
    mh.msg_controllen = CMSG_SPACE(sizeof(int));
    CI(sendmsg, 1, sendmsg(sp[0], B, 0))
    CI(sendmsg, 2, (mh.msg_control = B, sendmsg(sp[0], &mh, 0)))
    CI(sendmmsg, 1, sendmmsg(sp[0], B, 1, 0))
    CI(sendmmsg, 2, (mh.msg_control = B, sendmmsg(sp[0], (struct mmsghdr[]){{mh, 0}}, 1, 0)))
    CI(copy_file_range, 1, copy_file_range(fd, B, open("g", O_RDWR | O_CREAT, 0644), 0, 10, 0))
    CI(copy_file_range, 3, copy_file_range(fd, &o, open("g", O_RDWR | O_CREAT, 0644), B, 10, 0))
    CI(sendfile, 2, sendfile(open("g", O_RDWR | O_CREAT, 0644), fd, B, 10))
    CI(sendfile64, 2, sendfile64(open("g", O_RDWR | O_CREAT, 0644), fd, B, 10))
    CI(splice, 1, splice(fd, B, open("g", O_RDWR | O_CREAT, 0644), 0, 10, 0))
    CI(splice, 3, splice(fd, &o, open("g", O_RDWR | O_CREAT, 0644), B, 10, 0))
    (void)oo;
    CI(fcntl, 2, fcntl(fd, F_GETLK, B)) CI(fcntl64, 2, fcntl64(fd, F_SETLK, B))
    CI(ioctl, 2, ioctl(open("g", O_RDWR | O_CREAT, 0644), FICLONERANGE, B))
    CI(ioctl, 2, ioctl(fd, FIONREAD, B))
    CI(poll, 0, poll(B, 1, 0)) CI(__poll_chk, 0, __poll_chk(B, 1, 0, 8))
    CI(ppoll, 0, ppoll(B, 1, ts, 0)) CI(ppoll, 2, (pf.fd = fd, ppoll(&pf, 1, B, 0)))
    CI(__ppoll_chk, 0, __ppoll_chk(B, 1, ts, 0, 8))
    CI(select, 1, select(fd + 1, B, 0, 0, tv)) CI(select, 4, (FD_SET(fd, &rs), select(fd + 1, &rs, 0, 0, B)))
    CI(pselect, 1, pselect(fd + 1, B, 0, 0, ts, 0)) CI(pselect, 4, (FD_SET(fd, &rs), pselect(fd + 1, &rs, 0, 0, B, 0)))
    CI(epoll_ctl, 3, epoll_ctl(epoll_create1(0), EPOLL_CTL_ADD, open("g", O_RDWR | O_CREAT, 0644) * 0 + dfd, B))
    /* A DIR * is glibc's object, not a buffer: one that starts readable
       holds a lock word glibc waits on for good (until the alarm). */
    if (strcmp(kind, "edge")) {
        CP(readdir, 0, readdir(B)) CP(readdir64, 0, readdir64(B))
        CI(readdir_r, 0, readdir_r(B, (void *)buf, (void *)&o))
        CI(readdir64_r, 0, readdir64_r(B, (void *)buf, (void *)&o))
        CI(closedir, 0, closedir(B)) CI(dirfd, 0, dirfd(B)) CI(rewinddir, 0, (rewinddir(B), 0))
        CI(telldir, 0, telldir(B)) CI(seekdir, 0, (seekdir(B, 0), 0))
    }
    CI(readdir_r, 1, readdir_r(dp, B, (void *)&o)) CI(readdir_r, 2, readdir_r(dp, (void *)buf, B))
    CI(readdir64_r, 1, readdir64_r(dp, B, (void *)&o))
    CP(fopen, 0, fopen(B, "r")) CP(fopen, 1, fopen("f", B))
    CP(fopen64, 0, fopen64(B, "r")) CP(fopen64, 1, fopen64("f", B))
    CP(freopen, 0, freopen(B, "r", fopen("f", "r"))) CP(freopen, 1, freopen("f", B, fopen("f", "r")))
    CP(freopen, 2, freopen("f", "r", B))
    CP(freopen64, 0, freopen64(B, "r", fopen("f", "r"))) CP(freopen64, 2, freopen64("f", "r", B))
    CP(fdopen, 1, fdopen(fd, B)) CI(fclose, 0, fclose(B))
    CP(popen, 0, popen(B, "r")) CP(popen, 1, popen("true", B))
    CI(system, 0, system(B))
    CI(execve, 0, execve(B, argv, environ)) CI(execve, 1, execve("/bin/true", B, environ))
    CI(execve, 2, execve("/bin/true", argv, B))
    CI(execveat, 1, execveat(AT_FDCWD, B, argv, environ, 0)) CI(execveat, 2, execveat(AT_FDCWD, "/bin/true", B, environ, 0))
    CI(fexecve, 1, fexecve(open("/bin/true", O_RDONLY), B, environ))
    CI(execv, 0, execv(B, argv)) CI(execv, 1, execv("/bin/true", B))
    CI(execvp, 0, execvp(B, argv)) CI(execvp, 1, execvp("true", B))
    CI(execvpe, 0, execvpe(B, argv, environ)) CI(execvpe, 2, execvpe("true", argv, B))
    CI(execl, 0, execl(B, "true", (char *)0)) CI(execl, 1, execl("/bin/true", B, (char *)0))
    CI(execle, 0, execle(B, "true", (char *)0, environ)) CI(execle, 2, execle("/bin/true", "true", (char *)0, B))
    CI(execlp, 0, execlp(B, "true", (char *)0))
    CI(posix_spawn, 0, posix_spawn(B, "/bin/true", 0, 0, argv, environ))
    CI(posix_spawn, 1, posix_spawn(&pid, B, 0, 0, argv, environ))
    CI(posix_spawnp, 1, posix_spawnp(&pid, B, 0, 0, argv, environ))
    CI(setgroups, 1, setgroups(1, B)) CI(initgroups, 0, initgroups(B, 0))
    CI(chroot, 0, chroot(B)) CI(pivot_root, 0, pivot_root(B, "/")) CI(pivot_root, 1, pivot_root("/", B))
    CI(capset, 0, capset(B, 0)) CI(syscall, 1, syscall(SYS_chroot, B)) CI(syscall, 1, syscall(SYS_clone3, B, 88))
    CI(sigaction, 1, sigaction(SIGSEGV, B, 0)) CI(sigaction, 2, sigaction(SIGSEGV, 0, B))
    CI(sigaction, 1, sigaction(SIGUSR1, B, 0)) CI(sigaction, 2, sigaction(SIGUSR1, &sa, B))
    CI(__sigaction, 1, __sigaction(SIGBUS, B, 0)) CI(__sigaction, 2, __sigaction(SIGBUS, 0, B))
}

static char altstack[1 << 16];
static void on_segv(int sig, siginfo_t *si, void *ctx) {
    char here;
    (void)si; (void)ctx;
    _exit(sig == SIGSEGV && &here >= altstack && &here < altstack + sizeof altstack ? 42 : 43);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "list")) {
        mode_list = 1;
        for (const char **p = no_pointer; *p; p++) printf("%s\n", *p);
        cases("list");
        return 0;
    }
    if (!strncmp(argv[1], "crash-", 6)) {
        struct stat s;
        if (stat("f", &s) != 0 || stat((char *)0xdeadc0de, &s) != -1 || errno != EFAULT) return 3;
        if (!strcmp(argv[1], "crash-handler")) {
            stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = on_segv;
            sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
            if (sigaltstack(&ss, 0) || sigaction(SIGSEGV, &sa, 0)) return 4;
            /* a bad pointer still gets EFAULT with the program's handler set */
            if (stat((char *)0xdeadc0de, &s) != -1 || errno != EFAULT) return 5;
        }
        *(volatile int *)0 = 1;
        return 6;
    }
    if (strcmp(argv[1], "run")) return 2;
    int f = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    memset(buf, 'x', sizeof buf);
    if (f < 0 || write(f, buf, sizeof buf) != sizeof buf) { perror("f"); return 1; }
    close(f);
    mkdir("d", 0755);
    unlink("l");
    if (symlink("f", "l")) { perror("l"); return 1; }
    void *none = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int m = memfd_create("efault", 0);
    void *bus = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    char *two = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (none == MAP_FAILED || bus == MAP_FAILED || two == MAP_FAILED || mprotect(two + 4096, 4096, PROT_NONE)) {
        perror("mmap");
        return 1;
    }
    memset(two + 4088, 'f', 8); /* no NUL before the hole */
    struct { const char *name; void *p; } kinds[] = {
        {"unmapped", (void *)(uintptr_t)0xdeadc0deUL}, {"none", none}, {"bus", bus}, {"edge", two + 4088}};
    for (int k = 0; k < 4; k++) {
        B = kinds[k].p;
        const char *kind = kinds[k].name;
        cases(kind);
    }
    return 0;
}
