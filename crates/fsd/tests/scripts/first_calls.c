/* Threads whose first fast-path calls start at the same instant.
 *
 * usage: first_calls DIR   (DIR holds files t0..t7, file ti containing "ti")
 *
 * Eight threads wait at a barrier, then each opens its own file (so each
 * may connect a channel of its own at the same moment); after a second
 * barrier each reads the file another thread opened. Every descriptor must
 * read as its own file whichever channel serves the read. Exits 0, or 1
 * with a message.
 *
 * usage: first_calls DIR fdsize
 *
 * One thread is started before any call on the mount; it prints the fd
 * table's size (`FDSize` of /proc/self/status: the library grows it before
 * the table is shared, as growing a shared one waits for an RCU grace
 * period, 10-28 ms on a VM), then reads DIR/t0.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T 8

static pthread_barrier_t start, opened;
static int fds[T];
static const char *dir;

static void *run(void *arg) {
    long i = (long)arg;
    char path[4096], want[16], got[16] = {0};
    snprintf(path, sizeof path, "%s/t%ld", dir, i);
    pthread_barrier_wait(&start);
    fds[i] = open(path, O_RDONLY);
    if (fds[i] < 0) {
        perror(path);
        exit(1);
    }
    pthread_barrier_wait(&opened);
    long j = (i + 1) % T;
    snprintf(want, sizeof want, "t%ld", j);
    ssize_t n = pread(fds[j], got, sizeof got - 1, 0);
    if (n < 0 || strcmp(got, want) != 0) {
        fprintf(stderr, "thread %ld read fd %d of thread %ld: %s (%s)\n", i, fds[j], j,
                n < 0 ? "error" : got, n < 0 ? strerror(errno) : "wrong data");
        exit(1);
    }
    return NULL;
}

/* Prints FDSize, then reads DIR/t0 (the thread's first call on the mount). */
static void *fdsize_then_read(void *arg) {
    (void)arg;
    char line[256], got[16] = {0};
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        perror("/proc/self/status");
        exit(1);
    }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "FDSize:", 7))
            printf("%ld\n", strtol(line + 7, NULL, 10));
    fclose(f);
    snprintf(line, sizeof line, "%s/t0", dir);
    int fd = open(line, O_RDONLY);
    if (fd < 0 || read(fd, got, sizeof got - 1) != 2 || strcmp(got, "t0") != 0) {
        fprintf(stderr, "%s: %s\n", line, fd < 0 ? strerror(errno) : "wrong data");
        exit(1);
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[2], "fdsize")) {
        dir = argv[1];
        pthread_t t;
        if (pthread_create(&t, NULL, fdsize_then_read, NULL)) {
            perror("pthread_create");
            return 1;
        }
        pthread_join(t, NULL);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: first_calls DIR [fdsize]\n");
        return 2;
    }
    dir = argv[1];
    pthread_t tid[T];
    pthread_barrier_init(&start, NULL, T);
    pthread_barrier_init(&opened, NULL, T);
    for (long i = 0; i < T; i++)
        if (pthread_create(&tid[i], NULL, run, (void *)i)) {
            perror("pthread_create");
            return 1;
        }
    for (int i = 0; i < T; i++)
        pthread_join(tid[i], NULL);
    return 0;
}
