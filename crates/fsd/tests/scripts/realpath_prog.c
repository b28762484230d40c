/* realpath(3), canonicalize_file_name(3) and __realpath_chk over a tree
 * with every kind of component: the driver of crates/fsd/tests/realpath.rs.
 *
 *   realpath_prog make ROOT   builds the tree under ROOT
 *   realpath_prog run ROOT    resolves each name below, absolute and from
 *                             ROOT as the cwd; one line a call, with ROOT
 *                             written as "ROOT": the result, or the errno
 *                             and what the caller's buffer holds
 *
 * The same output is expected on tmpfs, on the plain mount and through the
 * preload library. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char *__realpath_chk(const char *, char *, size_t);

static const char *root;

static void at(const char *rel, char *out) { snprintf(out, PATH_MAX, "%s/%s", root, rel); }

static void must(int ok, const char *what) {
    if (!ok) { perror(what); exit(1); }
}

static void mk(void) {
    char p[PATH_MAX], t[PATH_MAX];
    const char *dirs[] = {"d", "d/e", "d/e/f", "locked", "locked/in", 0};
    for (int i = 0; dirs[i]; i++) { at(dirs[i], p); must(mkdir(p, 0755) == 0, p); }
    const char *files[] = {"file", "d/e/g", "locked/in/x", 0};
    for (int i = 0; files[i]; i++) {
        at(files[i], p);
        int fd = open(p, O_CREAT | O_WRONLY, 0644);
        must(fd >= 0, p);
        close(fd);
    }
    /* name -> target (relative); "@" targets are made absolute under ROOT */
    const char *links[][2] = {
        {"rel", "d/e"}, {"up", "d/../file"}, {"chain1", "chain2"}, {"chain2", "rel/f"},
        {"loop1", "loop2"}, {"loop2", "loop1"}, {"self", "self"}, {"dangling", "nowhere"},
        {"d/e/back", "../.."}, {"d/e/dot", "."}, {"abs", "@d/e/g"}, {"absdir", "@d"},
        {"tofile", "file"}, {"d/deep", "e/f/../../e/./g"}, {"slashes", "d//e///f/"},
        {"outside", "/tmp"}, {"esc", ".."}, {"d/escd", "../../.."}, {0, 0}};
    for (int i = 0; links[i][0]; i++) {
        at(links[i][0], p);
        if (links[i][1][0] == '@') at(links[i][1] + 1, t); else snprintf(t, sizeof t, "%s", links[i][1]);
        must(symlink(t, p) == 0, p);
    }
    /* a chain of 41 links: one more than glibc follows */
    for (int i = 0; i <= 40; i++) {
        char name[32], target[32];
        snprintf(name, sizeof name, "long%d", i);
        snprintf(target, sizeof target, i == 40 ? "file" : "long%d", i + 1);
        at(name, p);
        must(symlink(target, p) == 0, p);
    }
    /* and one of 40, which resolves */
    for (int i = 0; i < 40; i++) {
        char name[32], target[32];
        snprintf(name, sizeof name, "ok%d", i);
        snprintf(target, sizeof target, i == 39 ? "file" : "ok%d", i + 1);
        at(name, p);
        must(symlink(target, p) == 0, p);
    }
    at("locked", p);
    must(chmod(p, 0) == 0, p);
}

/* Prints `s` with ROOT for the root's path. */
static void show(const char *s) {
    size_t n = strlen(root);
    if (strncmp(s, root, n) == 0) printf("ROOT%s", s + n); else printf("%s", s);
}

static void one(const char *how, const char *name) {
    char buf[PATH_MAX];
    memset(buf, 'Z', sizeof buf);
    buf[sizeof buf - 1] = 0;
    errno = 0;
    char *r;
    if (!strcmp(how, "buf")) r = realpath(name, buf);
    else if (!strcmp(how, "chk")) r = __realpath_chk(name, buf, sizeof buf);
    else if (!strcmp(how, "null")) r = realpath(name, NULL);
    else r = canonicalize_file_name(name);
    int e = errno;
    printf("%s %s: ", how, name[0] == '/' ? "abs" : "rel");
    show(name[0] == '/' ? name + strlen(root) : name);
    printf(" -> ");
    if (r) {
        show(r);
        if (r != buf) free(r);
    } else {
        printf("NULL errno %d", e);
        if (strcmp(how, "buf") == 0 || strcmp(how, "chk") == 0) {
            printf(" buf ");
            if (buf[0] == 'Z') printf("(untouched)"); else show(buf);
        }
    }
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: realpath_prog make|run ROOT\n"); return 2; }
    root = argv[2];
    if (!strcmp(argv[1], "make")) { mk(); return 0; }
    const char *names[] = {
        ".", "./", "file", "file/", "file/.", "file/..", "file/x", "d", "d/", "d/.", "d/..",
        "d/e/g", "d//e/./g", "d/e/f/../g", "d/e/f/../../e/g", "d/e/g/..", "missing",
        "missing/x", "d/missing", "d/missing/", "rel", "rel/", "rel/g", "rel/..", "up", "chain1",
        "loop1", "self", "dangling", "dangling/", "d/e/back", "d/e/back/file", "d/e/dot",
        "d/e/dot/g", "abs", "abs/", "absdir/e/g", "tofile/", "tofile/x", "d/deep", "slashes",
        "slashes/..", "outside", "long0", "ok0", "locked", "locked/in", "locked/in/x",
        "d/e/../../file", "esc", "esc/", "d/escd", "d/../..", "../" , 0};
    const char *hows[] = {"buf", "null", "canon", "chk", 0};
    char p[PATH_MAX];
    for (int h = 0; hows[h]; h++)
        for (int i = 0; names[i]; i++) {
            at(names[i], p);
            one(hows[h], p);
        }
    must(chdir(root) == 0, "chdir");
    for (int h = 0; hows[h]; h++)
        for (int i = 0; names[i]; i++) one(hows[h], names[i]);
    errno = 0;
    char *r = realpath("", NULL);
    printf("empty -> %s errno %d\n", r ? r : "NULL", errno);
    errno = 0;
    r = realpath(NULL, p);
    printf("null name -> %s errno %d\n", r ? r : "NULL", errno);
    return 0;
}
