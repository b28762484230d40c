/* Changes credentials the way libcap, libcap-ng and hand-written code do,
 * without glibc's named wrappers, then tries what the new identity may
 * not do. Usage: raw_creds MODE ROOT, MODE one of
 *   capset        syscall(SYS_capset) dropping CAP_DAC_OVERRIDE and
 *                 CAP_DAC_READ_SEARCH from the effective set
 *   capset-libc   the same through glibc's capset()
 *   setresuid     syscall(SYS_setresuid, 65534, 65534, 65534)
 * ROOT holds o (0600, uid 1000) and d/ (0700, uid 1000). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int capset(cap_user_header_t h, const cap_user_data_t d);

static void try_all(const char *when, const char *root)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/o", root);
    int fd = open(p, O_RDONLY);
    if (fd < 0) {
        printf("%s open o: errno %d\n", when, errno);
    } else {
        char b[64];
        printf("%s open o: read %zd\n", when, read(fd, b, sizeof b));
        close(fd);
    }
    snprintf(p, sizeof p, "%s/d", root);
    DIR *d = opendir(p);
    if (!d) {
        printf("%s opendir d: errno %d\n", when, errno);
    } else {
        int n = 0;
        while (readdir(d))
            n++;
        printf("%s opendir d: %d entries\n", when, n);
        closedir(d);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    try_all("before", argv[2]);
    if (!strncmp(argv[1], "capset", 6)) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) != 0)
            return 3;
        d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
        long r = strcmp(argv[1], "capset-libc") ? syscall(SYS_capset, &h, d) : capset(&h, d);
        printf("%s: %ld\n", argv[1], r);
    } else if (!strcmp(argv[1], "setresuid")) {
        printf("setresuid: %ld\n", syscall(SYS_setresuid, 65534, 65534, 65534));
    } else {
        return 2;
    }
    try_all("after", argv[2]);
    return 0;
}
