/* vfork under the preload library (tests/shortlived.rs).
 *
 * usage: vfork_child DIR   (DIR on a btfuse mount, empty, the cwd's mount)
 *
 * A: a process that holds no fast-path fd gets a real vfork (the child's
 *    write to memory is the parent's); the child stats, opens and reads a
 *    file on the mount through the kernel, changes its cwd, closes every
 *    fd above 2, dups, asks a terminal query of a file it leaves open and
 *    exits; the parent then finds its own state as it was: its cwd, its
 *    fds, its relative opens, a new file written and read back.
 * B: a process that holds a fast-path fd gets a fork (no shared memory);
 *    the child reads the inherited fd.
 * C: a vfork child that execs `cat` of the file writes it to a pipe.
 * D: a process with a second thread gets a fork.
 * Prints "ok A real", "ok B fork", "ok C", "ok D fork" or what went wrong.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int touched, child_fd = -1;

static int check_file(const char *p, const char *want) {
    char buf[64] = {0};
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, n) == 0;
}

static void *idle_thread(void *arg) {
    (void)arg;
    pause();
    return NULL;
}

static int wait_ok(pid_t pid) {
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv) {
    if (argc != 2 || chdir(argv[1]) != 0) {
        printf("usage\n");
        return 2;
    }
    FILE *f = fopen("a", "w");
    if (!f || fputs("hello", f) < 0 || fclose(f) != 0 || mkdir("sub", 0755) != 0) {
        printf("setup failed\n");
        return 1;
    }
    struct stat st;
    char cwd[4096], cwd2[4096];
    if (stat("a", &st) != 0 || !check_file("a", "hello") || !getcwd(cwd, sizeof cwd)) {
        printf("setup reads failed\n");
        return 1;
    }

    /* A */
    touched = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        struct stat cs;
        int ok = stat("a", &cs) == 0 && cs.st_size == 5 && check_file("a", "hello")
                 && chdir("sub") == 0 && syscall(SYS_close_range, 3, ~0U, 0) == 0
                 && dup2(1, 9) == 9 && close(9) == 0;
        /* Left open: the child's fd, never the parent's; its terminal
         * query reaches the daemon through the kernel (the library would
         * answer it itself). */
        child_fd = open("../a", O_RDONLY);
        struct termios t;
        ok = ok && ioctl(child_fd, TCGETS, &t) == -1 && errno == ENOTTY;
        touched = 1;
        _exit(ok ? 0 : 3);
    }
    if (!wait_ok(pid)) {
        printf("A: child failed\n");
        return 1;
    }
    errno = 0;
    if (touched && (child_fd < 0 || fcntl(child_fd, F_GETFD) != -1 || errno != EBADF)) {
        printf("A: the child's fd %d is the parent's\n", child_fd);
        return 1;
    }
    f = fopen("b", "w");
    int parent_ok = getcwd(cwd2, sizeof cwd2) && strcmp(cwd, cwd2) == 0 && check_file("a", "hello")
                    && stat("sub", &st) == 0 && S_ISDIR(st.st_mode) && f && fputs("world", f) >= 0
                    && fclose(f) == 0 && check_file("b", "world");
    if (!parent_ok) {
        printf("A: parent's state changed\n");
        return 1;
    }
    printf("ok A %s\n", touched ? "real" : "fork");

    /* B */
    int held = open("a", O_RDONLY);
    touched = 0;
    pid = vfork();
    if (pid == 0) {
        char buf[8] = {0};
        int ok = held >= 0 && pread(held, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0;
        touched = 1;
        _exit(ok ? 0 : 3);
    }
    if (!wait_ok(pid)) {
        printf("B: child failed\n");
        return 1;
    }
    close(held);
    printf("ok B %s\n", touched ? "real" : "fork");

    /* C */
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid = vfork();
    if (pid == 0) {
        dup2(p[1], 1);
        execl("/bin/cat", "cat", "a", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char out[16] = {0};
    ssize_t n = read(p[0], out, sizeof out - 1);
    if (!wait_ok(pid) || n != 5 || memcmp(out, "hello", 5) != 0) {
        printf("C: exec'd child's output %zd '%s'\n", n, out);
        return 1;
    }
    printf("ok C\n");

    /* D */
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
        return 1;
    touched = 0;
    pid = vfork();
    if (pid == 0) {
        touched = 1;
        _exit(0);
    }
    if (!wait_ok(pid)) {
        printf("D: child failed\n");
        return 1;
    }
    printf("ok D %s\n", touched ? "real" : "fork");
    return 0;
}
