/* Threads opening, reading and closing the same small files at once.
 *
 *   shared_opens DIR FILES THREADS ROUNDS
 *
 * Each round writes FILES fresh files f0..fN-1 of 100 bytes (a change
 * voids what the process kept of the previous round's), then THREADS
 * threads each open (read-only), read and close every file three times;
 * every read must return the file's 100 bytes. Prints "ok" or the first
 * failure (and exits 1). Run preloaded, it races the library's kept
 * handles (the file cache) of files opened again by several threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dir;
static int files;
static pthread_barrier_t start;

static void fail(const char *what, int i, long got, int err) {
    printf("%s of f%d: %ld (%s)\n", what, i, got, strerror(err));
    fflush(stdout);
    exit(1);
}

static void *reader(void *arg) {
    (void)arg;
    char path[4096], buf[200];
    pthread_barrier_wait(&start);
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < files; i++) {
            snprintf(path, sizeof path, "%s/f%d", dir, i);
            int fd = open(path, O_RDONLY);
            if (fd < 0) fail("open", i, fd, errno);
            ssize_t n = read(fd, buf, sizeof buf);
            if (n != 100) fail("read", i, n, errno);
            close(fd);
        }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: shared_opens DIR FILES THREADS ROUNDS\n");
        return 2;
    }
    dir = argv[1];
    files = atoi(argv[2]);
    int threads = atoi(argv[3]), rounds = atoi(argv[4]);
    pthread_t t[64];
    char path[4096], content[100];
    memset(content, 'x', sizeof content);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < files; i++) {
            snprintf(path, sizeof path, "%s/f%d", dir, i);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, content, sizeof content) != sizeof content) fail("write", i, fd, errno);
            close(fd);
        }
        pthread_barrier_init(&start, NULL, threads);
        for (int k = 0; k < threads; k++) pthread_create(&t[k], NULL, reader, NULL);
        for (int k = 0; k < threads; k++) pthread_join(t[k], NULL);
        pthread_barrier_destroy(&start);
    }
    printf("ok\n");
    return 0;
}
