/* stdio on files of one directory, printing every observable result, so
 * that a run on tmpfs and a run on a btfuse mount (plain or preloaded) can
 * be compared byte for byte. Built by tests/stdio.rs.
 *
 *   stdio_prog all DIR        every case below, in order
 *   stdio_prog fast DIR       the cases that must stay off the kernel
 *                             (fopen/fdopen/freopen of our streams), for strace
 *   stdio_prog exit DIR       fprintf without fclose, then exit(0); an atexit
 *                             handler writes more
 *   stdio_prog wide DIR       wide-character calls on a stream (must not crash)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

static const char *dir;
static char pbuf[4096];

static const char *at(const char *name)
{
	snprintf(pbuf, sizeof pbuf, "%s/%s", dir, name);
	return pbuf;
}

#define SAY(...) (printf(__VA_ARGS__), fflush(stdout))

static FILE *op(const char *name, const char *mode)
{
	errno = 0;
	FILE *f = fopen(at(name), mode);
	if (f)
		SAY("fopen %s %s: ok\n", name, mode);
	else
		SAY("fopen %s %s: %s\n", name, mode, strerror(errno));
	return f;
}

static void cat(const char *name)
{
	FILE *f = fopen(at(name), "r");
	if (!f) {
		SAY("cat %s: %s\n", name, strerror(errno));
		return;
	}
	char line[512];
	SAY("cat %s:\n", name);
	while (fgets(line, sizeof line, f))
		SAY("| %s", line);
	SAY("cat end feof=%d ferror=%d\n", feof(f), ferror(f));
	fclose(f);
}

static void check_fileno(FILE *f, const char *what)
{
	int fd = fileno(f);
	struct stat st;
	int r = fstat(fd, &st);
	SAY("%s fileno>=0=%d fstat=%d reg=%d size=%lld cloexec=%d\n", what, fd >= 0, r,
	    r == 0 && S_ISREG(st.st_mode), r == 0 ? (long long)st.st_size : -1LL,
	    (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
}

static void modes(void)
{
	FILE *f = op("m", "w");
	fprintf(f, "line %d\n", 1);
	fputs("line 2\n", f);
	fputc('x', f);
	fwrite("yz\n", 1, 3, f);
	SAY("w ftell=%ld\n", ftell(f));
	check_fileno(f, "w");
	SAY("fclose=%d\n", fclose(f));
	cat("m");

	f = op("m", "a");
	SAY("a ftell=%ld\n", ftell(f));
	fprintf(f, "appended %s\n", "A");
	SAY("a ftell after=%ld\n", ftell(f));
	fclose(f);

	f = op("m", "a+");
	SAY("a+ ftell=%ld\n", ftell(f));
	char line[128];
	SAY("a+ fgets=%s", fgets(line, sizeof line, f));
	fprintf(f, "appended %s\n", "A+");
	fflush(f);
	SAY("a+ ftell=%ld\n", ftell(f));
	rewind(f);
	SAY("a+ first=%s", fgets(line, sizeof line, f));
	fclose(f);
	cat("m");

	f = op("m", "r+");
	fseek(f, 2, SEEK_SET);
	fputs("NE", f);
	fflush(f);
	rewind(f);
	SAY("r+ first=%s", fgets(line, sizeof line, f));
	fseek(f, 0, SEEK_CUR);
	fputs("ZZ", f);
	fclose(f);
	cat("m");

	f = op("w+file", "w+");
	for (int i = 0; i < 100; i++)
		fprintf(f, "%03d\n", i);
	rewind(f);
	int sum = 0, v;
	while (fscanf(f, "%d", &v) == 1)
		sum += v;
	SAY("w+ sum=%d feof=%d\n", sum, feof(f));
	fclose(f);

	f = op("m", "wx");
	if (f)
		fclose(f);
	f = op("new-x", "wx");
	if (f) {
		fputs("x\n", f);
		fclose(f);
	}
	f = op("m", "re");
	check_fileno(f, "re");
	fclose(f);
	f = op("m", "rb");
	check_fileno(f, "rb");
	fclose(f);
	f = op("m", "rt");
	SAY("rt fgets=%s", fgets(line, sizeof line, f));
	fclose(f);
	op("missing", "r");
	op("sub", "w");
	f = op("sub", "r");
	if (f) {
		errno = 0;
		int c = fgetc(f);
		SAY("dir fgetc=%d ferror=%d errno=%s\n", c, ferror(f), strerror(errno));
		fclose(f);
	}
	op("missing/x", "w");
}

static void reading(void)
{
	FILE *f = op("r", "w");
	for (int i = 0; i < 2000; i++)
		fprintf(f, "row %d %s\n", i, i % 7 ? "plain" : "seventh");
	fclose(f);
	f = op("r", "r");
	char line[256];
	int n = 0;
	long last = 0;
	while (fgets(line, sizeof line, f)) {
		n++;
		if (n == 1000)
			last = ftell(f);
	}
	SAY("lines=%d pos1000=%ld feof=%d ferror=%d\n", n, last, feof(f), ferror(f));
	clearerr(f);
	SAY("after clearerr feof=%d\n", feof(f));
	rewind(f);
	static char big[100000];
	size_t got = fread(big, 1, sizeof big, f);
	unsigned h = 0;
	for (size_t i = 0; i < got; i++)
		h = h * 31 + (unsigned char)big[i];
	SAY("fread=%zu hash=%u feof=%d\n", got, h, feof(f));
	fseek(f, 5, SEEK_SET);
	SAY("fgetc@5=%c ftell=%ld\n", fgetc(f), ftell(f));
	fseek(f, -12, SEEK_END);
	SAY("tail=%s", fgets(line, sizeof line, f));
	fseek(f, 0, SEEK_SET);
	int c = fgetc(f);
	SAY("ungetc=%d", ungetc('Q', f));
	SAY(" next=%c then=%c ftell=%ld\n", fgetc(f), fgetc(f), ftell(f));
	(void)c;
	char *gl = NULL;
	size_t cap = 0;
	ssize_t k = getline(&gl, &cap, f);
	SAY("getline=%zd %s", k, gl);
	free(gl);
	errno = 0;
	SAY("fputc on r=%d ferror=%d errno=%s\n", fputc('z', f), ferror(f), strerror(errno));
	fclose(f);
}

static void big_and_buffers(void)
{
	static char blob[300000];
	for (size_t i = 0; i < sizeof blob; i++)
		blob[i] = (char)(i * 7 + i / 251);
	FILE *f = op("big", "w");
	SAY("fwrite=%zu\n", fwrite(blob, 1, sizeof blob, f));
	fclose(f);
	static char back[300001];
	f = op("big", "r");
	size_t got = fread(back, 1, sizeof back, f);
	SAY("fread=%zu same=%d\n", got, got == sizeof blob && !memcmp(blob, back, got));
	fclose(f);

	f = op("unbuf", "w");
	setvbuf(f, NULL, _IONBF, 0);
	fputs("un", f);
	cat("unbuf");
	fputs("buffered\n", f);
	fclose(f);
	f = op("linebuf", "w");
	setvbuf(f, NULL, _IOLBF, 0);
	fputs("one\ntw", f);
	cat("linebuf");
	fclose(f);
	cat("linebuf");
}

static void fdopens(void)
{
	int fd = open(at("fd"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	FILE *f = fdopen(fd, "r+");
	SAY("fdopen r+ ok=%d same fileno=%d\n", f != NULL, f && fileno(f) == fd);
	fprintf(f, "via fdopen %d\n", 42);
	fflush(f);
	SAY("lseek=%ld\n", (long)lseek(fd, 0, SEEK_CUR));
	rewind(f);
	char line[128];
	SAY("fdopen read=%s", fgets(line, sizeof line, f));
	SAY("fclose=%d fd closed=%d\n", fclose(f), fcntl(fd, F_GETFD) == -1 && errno == EBADF);

	fd = open(at("fd"), O_RDONLY);
	errno = 0;
	f = fdopen(fd, "w");
	SAY("fdopen w on O_RDONLY: %s %s\n", f ? "ok" : "NULL", strerror(errno));
	f = fdopen(fd, "r");
	SAY("fdopen r=%s", fgets(line, sizeof line, f));
	fclose(f);

	fd = open(at("fd"), O_WRONLY);
	f = fdopen(fd, "a");
	SAY("fdopen a: O_APPEND=%d ftell=%ld\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0, ftell(f));
	fputs("more\n", f);
	fclose(f);
	cat("fd");
	errno = 0;
	f = fdopen(12345, "r");
	SAY("fdopen bad fd: %s %s\n", f ? "ok" : "NULL", strerror(errno));
}

static void freopens(int fast)
{
	FILE *f = op("fr1", "w");
	fputs("first file\n", f);
	fclose(f);
	f = op("fr1", "r");
	char line[128];
	SAY("fr1=%s", fgets(line, sizeof line, f));
	int fd = fileno(f);
	FILE *g = freopen(at("fr2"), "w", f);
	SAY("freopen fr2 w same=%d fileno same=%d feof=%d\n", g == f, g && fileno(g) == fd,
	    g ? feof(g) : -1);
	fputs("second file\n", g);
	if (fast) {
		f = freopen(at("fr2"), "r", g);
	} else {
		/* Through "/proc/self/fd/N", as glibc does: the kernel path. */
		f = freopen(NULL, "r", g);
	}
	SAY("freopen r ok=%d\n", f != NULL);
	if (f) {
		SAY("fr2 reread=%s", fgets(line, sizeof line, f));
		SAY("fr2 eof=%p feof=%d\n", (void *)fgets(line, sizeof line, f), feof(f));
	}
	errno = 0;
	g = freopen(at("missing"), "r", f);
	SAY("freopen missing: %s %s\n", g ? "ok" : "NULL", strerror(errno));
	if (g)
		fclose(g);
	cat("fr2");
	if (fast)
		return;

	/* One of glibc's own streams reopened onto a file of the directory
	 * (glibc's freopen: the kernel path). */
	f = op("fr3", "w");
	fputs("for stdin\n", f);
	fclose(f);
	FILE *in = freopen(at("fr3"), "r", stdin);
	SAY("freopen stdin ok=%d getline=%s", in != NULL, fgets(line, sizeof line, stdin));
}

static void forks(void)
{
	FILE *f = op("fork", "w");
	fputs("parent before\n", f);
	fflush(f);
	pid_t pid = fork();
	if (pid == 0) {
		fputs("child\n", f);
		fclose(f);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	fputs("parent after\n", f);
	check_fileno(f, "after fork");
	fclose(f);
	cat("fork");

	f = op("sys", "w");
	fputs("before system\n", f);
	fflush(f);
	SAY("system=%d\n", system("true"));
	fputs("after system\n", f);
	fclose(f);
	cat("sys");
}

static FILE *atexit_f;
static void at_exit_write(void)
{
	fputs("from atexit\n", atexit_f);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	dir = argv[2];
	const char *what = argv[1];
	if (!strcmp(what, "exit")) {
		FILE *f = fopen(at("unflushed"), "w");
		atexit_f = fopen(at("unflushed-atexit"), "w");
		if (!f || !atexit_f)
			return 1;
		atexit(at_exit_write);
		fprintf(f, "never closed, %d\n", 7);
		exit(0);
	}
	if (!strcmp(what, "wide")) {
		FILE *f = fopen(at("wide"), "w");
		fputs("abc\n", f);
		fclose(f);
		f = fopen(at("wide"), "r");
		/* glibc's own streams start unoriented and read wide characters;
		 * the library's (cookie) streams are byte-oriented: fwide says -1
		 * and fgetwc fails (and must not crash). */
		int w = fwide(f, 0);
		wint_t c = fgetwc(f);
		SAY("wide fwide=%d fgetwc=%s\n", w, c == WEOF ? "WEOF" : c == L'a' ? "a" : "?");
		fclose(f);
		return 0;
	}
	if (mkdir(at("sub"), 0755) != 0 && errno != EEXIST)
		return 1;
	if (!strcmp(what, "fast")) {
		modes();
		reading();
		big_and_buffers();
		fdopens();
		freopens(1);
		return 0;
	}
	if (strcmp(what, "all"))
		return 2;
	modes();
	reading();
	big_and_buffers();
	fdopens();
	freopens(0);
	forks();
	return 0;
}
