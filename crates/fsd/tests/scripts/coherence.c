/* Kernel-backed calls (mmap, locks, fork, O_APPEND through the kernel)
 * mixed with calls the preload library serves through the fast path: run on
 * tmpfs, on the plain btfuse mount and preloaded, the output must be the
 * same. Modes:
 *   grow FILE lock|map ftruncate|pwrite   lock or map, grow, map the new range, touch it
 *   appender FILE                         (not preloaded) O_APPEND fd; on each stdin line,
 *                                         write "x" and print the offset
 *   truncate FILE SIZE                    truncate(2)
 *   readonly FILE                         create 0444 O_RDWR, write, mmap, fork, write
 *   random FILE SEED STEPS                seeded mix of pwrite/ftruncate/mmap/read/append
 *   sendfd FILE preload|plain             open, read, send the fd over a unix socket to a
 *                                         child (itself, "recvfd", preloaded or not) that
 *                                         reads and writes; then read on
 *   rewrite FILE MS                       for MS ms: empty FILE, then write it whole in 1 MiB
 *                                         chunks, all bytes one value per round (1..255)
 *   uniform FILE MS                       for MS ms: read FILE in 64 KiB reads, each of which
 *                                         must be all one nonzero value; prints the count
 *                                         of nonempty reads
 * A SIGBUS prints "SIGBUS" and exits 2. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void on_sigbus(int sig) {
    (void)sig;
    static const char msg[] = "SIGBUS\n";
    write(1, msg, sizeof msg - 1);
    _exit(2);
}

static void die(const char *what) {
    printf("%s: %s\n", what, strerror(errno));
    exit(1);
}

static int grow(const char *file, const char *how, const char *by) {
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open");
    char page[4096];
    memset(page, 'a', sizeof page);
    if (write(fd, page, sizeof page) != (ssize_t)sizeof page) die("write");
    if (!strcmp(how, "lock")) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLKW, &fl) < 0) die("fcntl");
    } else {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) die("mmap small");
        p[10] = 'm';
        munmap(p, 4096);
    }
    const off_t size = 64 * 1024;
    if (!strcmp(by, "ftruncate")) {
        if (ftruncate(fd, size) < 0) die("ftruncate");
    } else if (pwrite(fd, "z", 1, size - 1) != 1) {
        die("pwrite");
    }
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    p[size - 2] = 'q';
    printf("last bytes %d %d, mapped[10] %c\n", p[size - 2], p[size - 1], p[10]);
    char back[2];
    if (pread(fd, back, 2, size - 2) != 2) die("pread");
    printf("read back %d %d\n", back[0], back[1]);
    struct stat st;
    fstat(fd, &st);
    printf("size %lld\n", (long long)st.st_size);
    return 0;
}

static int appender(const char *file) {
    int fd = open(file, O_WRONLY | O_APPEND);
    if (fd < 0) die("open");
    char line[64];
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        if (write(fd, "x", 1) != 1) die("write");
        printf("offset %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
        fflush(stdout);
    }
    return 0;
}

static int readonly(const char *file) {
    int fd = open(file, O_CREAT | O_EXCL | O_RDWR, 0444);
    if (fd < 0) die("open");
    if (write(fd, "hello", 5) != 5) die("write");
    char *p = mmap(NULL, 5, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    p[0] = 'H';
    munmap(p, 5);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        ssize_t n = write(fd, " world", 6);
        _exit(n == 6 ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    printf("child %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "wrote" : "failed");
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    printf("read %zd \"%s\" offset %lld\n", n, buf, (long long)lseek(fd, 0, SEEK_CUR));
    struct stat st;
    fstat(fd, &st);
    printf("mode %o\n", st.st_mode & 07777);
    return 0;
}

static uint64_t rng;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t sum(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static int random_mix(const char *file, uint64_t seed, int steps) {
    enum { MAX = 192 * 1024 };
    rng = seed * 2654435761u + 1;
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int other = open(file, O_RDWR);
    int app = open(file, O_WRONLY | O_APPEND);
    if (fd < 0 || other < 0 || app < 0) die("open");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
    if (fcntl(fd, F_SETLK, &fl) < 0) die("lock");
    unsigned char *map = mmap(NULL, MAX, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    static unsigned char buf[MAX];
    for (int i = 0; i < steps; i++) {
        struct stat st;
        if (fstat(other, &st) < 0) die("fstat");
        size_t size = st.st_size;
        size_t off = next() % MAX, len = 1 + next() % 9000;
        if (off + len > MAX) len = MAX - off;
        unsigned char c = 'A' + i % 26;
        int op = next() % 8;
        switch (op) {
        case 0: /* fast-path write, maybe growing */
            memset(buf, c, len);
            printf("%d pwrite %zu+%zu = %zd\n", i, off, len, pwrite(next() % 2 ? fd : other, buf, len, off));
            break;
        case 1: /* fast-path truncate */
            printf("%d ftruncate %zu = %d\n", i, off, ftruncate(next() % 2 ? fd : other, off));
            break;
        case 2: /* store through the mapping, inside the file */
            if (size == 0) break;
            off %= size;
            if (off + len > size) len = size - off;
            memset(map + off, c, len);
            printf("%d map-store %zu+%zu\n", i, off, len);
            break;
        case 3: /* load through the mapping */
            if (size == 0) break;
            off %= size;
            if (off + len > size) len = size - off;
            printf("%d map-load %zu+%zu %08x\n", i, off, len, sum(map + off, len));
            break;
        case 4: { /* fast-path read */
            ssize_t n = pread(other, buf, len, off);
            printf("%d pread %zu+%zu = %zd %08x\n", i, off, len, n, n > 0 ? sum(buf, n) : 0);
            break;
        }
        case 5: /* fast-path append, then where the kernel-backed fd says it is */
            memset(buf, c, len % 3000 + 1);
            if (size + len % 3000 + 1 > MAX) break;
            printf("%d append %zd\n", i, write(app, buf, len % 3000 + 1));
            break;
        case 6: /* the end as the kernel-backed fd sees it */
            printf("%d seek-end %lld size %zu\n", i, (long long)lseek(fd, 0, SEEK_END), size);
            break;
        default: /* whole-file checksum through the mapping */
            printf("%d map-sum %zu %08x\n", i, size, sum(map, size));
            break;
        }
    }
    struct stat st;
    fstat(fd, &st);
    ssize_t n = pread(fd, buf, MAX, 0);
    printf("final %lld %zd %08x\n", (long long)st.st_size, n, n > 0 ? sum(buf, n) : 0);
    return 0;
}

static int sendfd(const char *self, const char *file, const char *how) {
    /* The child starts first: a fork would hand the file to the kernel. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) die("socketpair");
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        char sock[16];
        snprintf(sock, sizeof sock, "%d", sv[1]);
        if (!strcmp(how, "plain")) unsetenv("LD_PRELOAD");
        execl(self, self, "recvfd", sock, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    int fd = open(file, O_RDWR);
    if (fd < 0) die("open");
    char buf[32] = {0};
    printf("parent read %zd %.3s\n", read(fd, buf, 3), buf);
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    struct iovec iov = {.iov_base = "f", .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                       .msg_controllen = sizeof ctl.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t sent = sendmsg(sv[0], &m, 0);
    int status;
    waitpid(child, &status, 0);
    /* Printed after the child's lines, whatever the scheduling. */
    printf("sendmsg %zd\n", sent);
    printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    memset(buf, 0, sizeof buf);
    printf("parent read %zd %.3s\n", read(fd, buf, 3), buf);
    memset(buf, 0, sizeof buf);
    printf("whole %zd %s\n", pread(fd, buf, sizeof buf - 1, 0), buf);
    return 0;
}

static int recvfd(int sock) {
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    char one;
    struct iovec iov = {.iov_base = &one, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                       .msg_controllen = sizeof ctl.b};
    if (recvmsg(sock, &m, 0) != 1) die("recvmsg");
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS) die("no fd");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    char buf[8] = {0};
    ssize_t n = read(fd, buf, 3);
    printf("child read %zd %s%s\n", n, buf, n < 0 ? strerror(errno) : "");
    printf("child write %zd\n", write(fd, "XY", 2));
    printf("child offset %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    return 0;
}

#define ROUND_MB 8
#define CHUNK (1 << 20)
#define PIECE (64 << 10)

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int rewrite(const char *file, double ms) {
    static unsigned char chunk[CHUNK];
    double end = now_ms() + ms;
    for (int round = 0; now_ms() < end; round++) {
        memset(chunk, round % 255 + 1, sizeof chunk);
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die("open");
        for (int i = 0; i < ROUND_MB; i++)
            if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) die("write");
        close(fd);
    }
    return 0;
}

static int uniform(const char *file, double ms) {
    static unsigned char piece[PIECE];
    long seen = 0;
    double end = now_ms() + ms;
    while (now_ms() < end) {
        int fd = open(file, O_RDONLY);
        if (fd < 0) {
            if (errno == ENOENT) continue;
            die("open");
        }
        for (off_t off = 0; off < (off_t)ROUND_MB * CHUNK; off += PIECE) {
            ssize_t n = pread(fd, piece, sizeof piece, off);
            if (n < 0) die("pread");
            if (n == 0) break;
            for (ssize_t i = 0; i < n; i++)
                if (piece[i] != piece[0] || piece[0] == 0) {
                    printf("read at %lld: byte %zd is %d, byte 0 is %d\n", (long long)off, i,
                           piece[i], piece[0]);
                    return 1;
                }
            seen++;
        }
        close(fd);
    }
    printf("%ld\n", seen);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGBUS, on_sigbus);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && !strcmp(argv[1], "grow")) return grow(argv[2], argv[3], argv[4]);
    if (argc == 3 && !strcmp(argv[1], "appender")) return appender(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "truncate")) {
        int r = truncate(argv[2], atoll(argv[3]));
        printf("truncate %d\n", r);
        return r != 0;
    }
    if (argc == 3 && !strcmp(argv[1], "readonly")) return readonly(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "random"))
        return random_mix(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "sendfd")) return sendfd(argv[0], argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "recvfd")) return recvfd(atoi(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "rewrite")) return rewrite(argv[2], atof(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "uniform")) return uniform(argv[2], atof(argv[3]));
    fprintf(stderr, "usage: see the comment at the top\n");
    return 64;
}
