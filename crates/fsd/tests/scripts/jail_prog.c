/* Looks at one absolute path on a btfuse mount before and after the
 * process changes what paths name. Usage: jail_prog MODE MNT [JAIL]:
 *   chroot        chroot(JAIL) (glibc's)     JAIL holds its own MNT/f
 *   chroot-sys    syscall(SYS_chroot, JAIL)
 *   unshare       unshare(CLONE_NEWNS), then a tmpfs mounted over MNT
 *   unshare-sys   the same through syscall(SYS_unshare)
 *   clone         the same in a child made by glibc's clone(CLONE_NEWNS)
 *                 (its answers are labelled "cloned")
 *   setns         setns() into the mount namespace of a child that made
 *                 its own and covered MNT there
 * Before the change it stats and reads MNT/f and keeps an fd of it; after
 * it, it does the same again, reads the kept fd, and does both once more
 * in a forked child. Every answer goes to stdout, so a run with the
 * preload library must print exactly what one without it prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[4096];

static void look(const char *when)
{
    struct stat st;
    for (int i = 0; i < 3; i++) { /* repeated: the cache answers the later ones */
        if (stat(path, &st) != 0)
            printf("%s stat: errno %d\n", when, errno);
        else
            printf("%s stat: size %lld mode %o\n", when, (long long)st.st_size, st.st_mode);
    }
    if (lstat(path, &st) != 0)
        printf("%s lstat: errno %d\n", when, errno);
    else
        printf("%s lstat: size %lld\n", when, (long long)st.st_size);
    printf("%s access: %d\n", when, access(path, R_OK) == 0 ? 0 : errno);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s open: errno %d\n", when, errno);
        return;
    }
    char b[64] = {0};
    ssize_t n = read(fd, b, sizeof b - 1);
    printf("%s read: %zd %s", when, n, n > 0 ? b : "\n");
    close(fd);
}

static void kept(const char *when, int fd)
{
    char b[64] = {0};
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    printf("%s kept fd: %zd %s", when, n, n > 0 ? b : "\n");
}

/* Covers MNT with a tmpfs holding its own f, in the caller's mount
 * namespace, which must be its own. */
static int cover(const char *mnt)
{
    /* Private first: the tmpfs must not reach the test's namespace. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0
        || mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        perror("mount");
        return 1;
    }
    int w = open(path, O_CREAT | O_WRONLY, 0640);
    if (w < 0 || write(w, "tmpfs\n", 6) != 6) { perror("tmpfs file"); return 1; }
    close(w);
    return 0;
}

static int kept_fd;

static int cloned(void *mnt)
{
    if (cover(mnt)) return 1;
    look("cloned");
    kept("cloned", kept_fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    const char *mode = argv[1];
    snprintf(path, sizeof path, "%s/f", argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    look("before");
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    kept("before", fd);
    int r;
    if (!strncmp(mode, "chroot", 6)) {
        if (argc < 4) return 2;
        r = strcmp(mode, "chroot-sys") ? chroot(argv[3]) : syscall(SYS_chroot, argv[3]);
        if (r != 0 || chdir("/") != 0) { perror("chroot"); return 1; }
    } else if (!strcmp(mode, "clone")) {
        static char stack[256 * 1024];
        int s;
        kept_fd = fd;
        pid_t c = clone(cloned, stack + sizeof stack, CLONE_NEWNS | SIGCHLD, argv[2]);
        if (c < 0 || waitpid(c, &s, 0) != c || !WIFEXITED(s) || WEXITSTATUS(s) != 0) {
            perror("clone");
            return 1;
        }
    } else if (!strcmp(mode, "setns")) {
        int ready[2], hold[2];
        char c, ns[64];
        if (pipe(ready) || pipe(hold)) { perror("pipe"); return 1; }
        pid_t h = fork();
        if (h == 0) {
            /* The namespace's holder: covers MNT, then waits to be let go. */
            close(hold[1]);
            if (unshare(CLONE_NEWNS) != 0 || cover(argv[2])) _exit(1);
            if (write(ready[1], "r", 1) != 1) _exit(1);
            _exit(read(hold[0], &c, 1) == 0 ? 0 : 1);
        }
        close(hold[0]);
        if (h < 0 || read(ready[0], &c, 1) != 1) { printf("holder failed\n"); return 1; }
        snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)h);
        int nfd = open(ns, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, CLONE_NEWNS) != 0) { perror("setns"); return 1; }
        close(nfd);
        close(hold[1]);
        int s;
        if (waitpid(h, &s, 0) != h || !WIFEXITED(s) || WEXITSTATUS(s) != 0) {
            printf("holder failed\n");
            return 1;
        }
    } else {
        r = strcmp(mode, "unshare-sys") ? unshare(CLONE_NEWNS) : syscall(SYS_unshare, CLONE_NEWNS);
        if (r != 0) { perror("unshare"); return 1; }
        if (cover(argv[2])) return 1;
    }
    look("after");
    kept("after", fd);
    pid_t p = fork();
    if (p == 0) {
        look("child");
        kept("child", fd);
        _exit(0);
    }
    int s;
    if (p < 0 || waitpid(p, &s, 0) != p || !WIFEXITED(s) || WEXITSTATUS(s) != 0) {
        printf("child failed\n");
        return 1;
    }
    return 0;
}
