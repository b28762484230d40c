/* A close's effect is seen by the process's next call (issue 15: the
 * library posts a close's release without waiting for the daemon's
 * answer). Each round creates a file in DIR, writes 256 KiB, unlinks it,
 * and closes it: the data is freed by that close only, so a statvfs right
 * after the close must show the blocks free again. A thread doing stat
 * calls all along keeps channels busy, so the close and the statvfs often
 * travel on different channels; with a second thread closing, the statvfs
 * runs in the main thread after a join. Prints "ok ROUNDS" or what failed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *dir;
static atomic_int stop;
static char data[256 << 10];

static void *stat_loop(void *arg) {
    (void)arg;
    struct stat st;
    while (!atomic_load(&stop))
        stat(dir, &st);
    return NULL;
}

static unsigned long long free_blocks(void) {
    struct statvfs v;
    if (statvfs(dir, &v) != 0) {
        perror("statvfs");
        exit(2);
    }
    return v.f_bfree;
}

struct round { int i; unsigned long long open_free; };

static void *one_file(void *arg) {
    struct round *r = arg;
    char path[4096];
    snprintf(path, sizeof path, "%s/posted-%d", dir, r->i);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, sizeof data) != (ssize_t)sizeof data || unlink(path) != 0) {
        perror(path);
        exit(2);
    }
    r->open_free = free_blocks();
    if (close(fd) != 0) {
        perror("close");
        exit(2);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: posted_close DIR ROUNDS\n");
        return 2;
    }
    dir = argv[1];
    int rounds = atoi(argv[2]);
    memset(data, 'p', sizeof data);
    /* The library's first call initialises it; a call another thread makes
     * meanwhile goes to the kernel (whose FUSE release is asynchronous):
     * initialise before the second thread starts. */
    free_blocks();
    pthread_t busy;
    pthread_create(&busy, NULL, stat_loop, NULL);
    for (int i = 0; i < rounds; i++) {
        struct round r = { i, 0 };
        if (i % 2) {
            pthread_t t;
            pthread_create(&t, NULL, one_file, &r);
            pthread_join(t, NULL);
        } else {
            one_file(&r);
        }
        unsigned long long after = free_blocks();
        if (after < r.open_free + (sizeof data / 4096) / 2) {
            printf("round %d: %llu free blocks after close, %llu while open\n", i, after, r.open_free);
            atomic_store(&stop, 1);
            pthread_join(busy, NULL);
            return 1;
        }
    }
    atomic_store(&stop, 1);
    pthread_join(busy, NULL);
    printf("ok %d\n", rounds);
    return 0;
}
