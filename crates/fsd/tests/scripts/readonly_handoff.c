/* A file the process creates read-only (open(O_CREAT|O_RDWR, 0444)) and
 * keeps open read-write is handed to the kernel like any other: mapped
 * read-write, written by a forked child through the inherited fd, read by
 * an exec'd program from the inherited fd, and sent to another process.
 * One line per step; the output must be the same on tmpfs and through
 * the library.
 *
 * usage: readonly_handoff FILE          (FILE must not exist)
 *        readonly_handoff --read-fd N   (the exec'd reader)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *step, int fd) {
    char buf[80];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    printf("%s: ", step);
    if (n < 0) {
        printf("pread errno %d\n", errno);
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        putchar(buf[i] >= 32 && buf[i] < 127 ? buf[i] : '.');
    printf(" (%zd bytes, offset %lld)\n", n, (long long)lseek(fd, 0, SEEK_CUR));
}

static int read_fd(int fd) {
    char buf[80];
    if (lseek(fd, 0, SEEK_SET) < 0) {
        printf("exec reader: lseek errno %d\n", errno);
        return 1;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
        printf("exec reader: read errno %d\n", errno);
        return 1;
    }
    printf("exec reader: %.*s\n", (int)(n > 14 ? 14 : n), buf);
    if (write(fd, "exec!", 5) != 5)
        printf("exec reader: write errno %d\n", errno);
    return 0;
}

static int wait_child(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--read-fd") == 0)
        return read_fd(atoi(argv[2]));
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = open(argv[1], O_CREAT | O_EXCL | O_RDWR, 0444);
    if (fd < 0) {
        printf("open: errno %d\n", errno);
        return 1;
    }
    if (write(fd, "created read-only\n", 18) != 18)
        printf("write: errno %d\n", errno);
    struct stat st;
    fstat(fd, &st);
    printf("mode %o\n", (unsigned)(st.st_mode & 07777));

    /* mmap read-write, shared: the kernel needs a writable fd. */
    if (ftruncate(fd, 64) < 0)
        printf("ftruncate: errno %d\n", errno);
    char *p = mmap(NULL, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        printf("mmap rw: errno %d\n", errno);
    } else {
        memcpy(p, "MAPPED", 6);
        msync(p, 64, MS_SYNC);
        munmap(p, 64);
        printf("mmap rw: ok\n");
    }
    show("after mmap", fd);

    /* A forked child writes through the inherited fd (shared offset). */
    lseek(fd, 20, SEEK_SET);
    pid_t pid = fork();
    if (pid == 0) {
        if (write(fd, "child", 5) != 5) {
            printf("child write: errno %d\n", errno);
            _exit(1);
        }
        _exit(0);
    }
    printf("fork child: exit %d\n", wait_child(pid));
    show("after fork", fd);

    /* An exec'd program reads (and writes) the inherited fd. */
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "--read-fd", num, (char *)NULL);
        printf("exec: errno %d\n", errno);
        _exit(127);
    }
    printf("exec child: exit %d\n", wait_child(pid));
    show("after exec", fd);

    /* Sent to another process over a Unix socket. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        printf("socketpair: errno %d\n", errno);
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char c;
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {&c, 1};
        struct msghdr m = {0};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        if (recvmsg(sv[1], &m, 0) != 1) {
            printf("recvmsg: errno %d\n", errno);
            _exit(1);
        }
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        int got;
        memcpy(&got, CMSG_DATA(h), sizeof got);
        char buf[8] = {0};
        if (pread(got, buf, 6, 0) != 6)
            printf("receiver pread: errno %d\n", errno);
        else
            printf("receiver read: %.6s\n", buf);
        if (pwrite(got, "sent", 4, 40) != 4)
            printf("receiver write: errno %d\n", errno);
        _exit(0);
    }
    close(sv[1]);
    char c = 'x';
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {&c, 1};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    if (sendmsg(sv[0], &m, 0) != 1)
        printf("sendmsg: errno %d\n", errno);
    close(sv[0]); /* the receiver gets EOF if nothing was sent */
    printf("receiver: exit %d\n", wait_child(pid));
    show("after sendmsg", fd);
    printf("flags %o\n", fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND));
    close(fd);

    /* Write-only and O_APPEND, mode 0: a forked child appends. */
    char name[4096];
    snprintf(name, sizeof name, "%s.append", argv[1]);
    fd = open(name, O_CREAT | O_EXCL | O_WRONLY | O_APPEND, 0);
    if (write(fd, "one,", 4) != 4)
        printf("append write: errno %d\n", errno);
    lseek(fd, 0, SEEK_SET);
    pid = fork();
    if (pid == 0)
        _exit(write(fd, "two,", 4) == 4 ? 0 : 1);
    printf("append child: exit %d\n", wait_child(pid));
    if (write(fd, "three", 5) != 5)
        printf("append write: errno %d\n", errno);
    fstat(fd, &st);
    printf("append: size %lld, offset %lld, flags %o\n", (long long)st.st_size,
           (long long)lseek(fd, 0, SEEK_CUR), fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND));
    char buf[16] = {0};
    printf("append read: %s\n", pread(fd, buf, 15, 0) < 0 ? strerror(errno) : buf);
    close(fd);
    return 0;
}
