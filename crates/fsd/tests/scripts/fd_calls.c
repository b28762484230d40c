/* Calls on the fds of a file and a directory that glibc makes with its own
 * system calls, or that a program makes itself: isatty, tcgetattr, ttyname_r
 * (glibc's internal ioctl), the terminal queries made with ioctl itself,
 * readahead, syncfs, sync_file_range, fpathconf and getdents64. Prints each
 * result and errno, for a differential run
 * (fast_path.rs): usage: fd_calls FILE DIR */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static void say(const char *what, long r, int e) { printf("%s %ld %s\n", what, r, strerror(e)); }

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    int fd = open(argv[1], O_RDONLY);
    int d = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (fd < 0 || d < 0)
        return 1;
    struct termios t;
    char name[64], buf[4096];
    long r;
    errno = 0;
    r = isatty(fd);
    say("isatty", r, errno);
    errno = 0;
    r = tcgetattr(fd, &t);
    say("tcgetattr", r, errno);
    r = ttyname_r(fd, name, sizeof name);
    say("ttyname_r", r, (int)r);
    struct winsize ws;
    pid_t pgrp;
    int fds[2] = {fd, d};
    for (int i = 0; i < 2; i++) {
        errno = 0;
        r = ioctl(fds[i], TCGETS, &t);
        say(i ? "ioctl TCGETS dir" : "ioctl TCGETS", r, errno);
        errno = 0;
        r = ioctl(fds[i], TIOCGWINSZ, &ws);
        say(i ? "ioctl TIOCGWINSZ dir" : "ioctl TIOCGWINSZ", r, errno);
        errno = 0;
        r = ioctl(fds[i], TIOCGPGRP, &pgrp);
        say(i ? "ioctl TIOCGPGRP dir" : "ioctl TIOCGPGRP", r, errno);
    }
    /* Still the file: a read at its start after the queries. */
    errno = 0;
    r = pread(fd, buf, sizeof buf, 0);
    say("pread after the queries", r, errno);
    errno = 0;
    r = readahead(fd, 0, 4096);
    say("readahead", r, errno);
    errno = 0;
    r = syncfs(fd);
    say("syncfs", r, errno);
    errno = 0;
    r = sync_file_range(fd, 0, 0, 0);
    say("sync_file_range", r, errno);
    errno = 0;
    r = fpathconf(fd, _PC_NAME_MAX);
    say("fpathconf", r, errno);
    errno = 0;
    r = getdents64(d, buf, sizeof buf) > 0;
    say("getdents64 read something", r, errno);
    return 0;
}
