#!/usr/bin/env python3
"""bench-fs.py — btfuse vs tmpfs vs a stock FUSE filesystem (bindfs), one run.

Columns (targets):
  tmpfs            the kernel's own in-memory filesystem: the practical limit
  bindfs           a stock FUSE filesystem (bindfs over a tmpfs; apt-get
                   installs it if missing; --no-bindfs skips it), warm caches
  FUSE warm        the btfuse mount, no preload, kernel caches primed
  FUSE cold        the same, `echo 2 > /proc/sys/vm/drop_caches` before each
                   timed run (per-op loops: the first pass after the drop)
  preload          the same mount through libbtfuse.so (--preload PATH)
and ratios computed from the medians of this run:
  preload vs FUSE  speed-up of preload over FUSE warm / cold (>1 = preload faster)
  preload/tmpfs    cost of preload relative to tmpfs (1.0 = as fast as tmpfs)

Workloads (rows): per-op loops in a C helper (stat, open+read 4 KiB+close,
fopen+fread 4 KiB+fclose, create+write 4 KiB+close+unlink, readdir of 500 entries, mkdir+rmdir, random
4 KiB preads over a 256 MiB file, 1/2/4 client threads doing stat and
open+read+close); whole programs (find over 10 000 and, in the full run,
100 000 files, plain and -size +0; ls -lR over 10 000 files; tar x of a
generated source-tree-like archive; python reading 5 000 small files (os.walk +
open().read()); cat of a small file as N processes; sed
and sort over a 10 000-line file; dd
sequential write and read); and the btfuse daemon's memory per GiB stored
(RSS growth while a file is written through the mount).

Every figure is the median of --runs runs (shown with min–max); the runs of
all targets are interleaved, so machine noise hits every column alike.
Output: a markdown table on stdout, OUT/results.json (commit, date, machine
facts, every value) and OUT/ratios.png (matplotlib; installed with pip if
missing, skipped with a message if that fails). OUT is target/bench.
A progress line goes to stderr. Every mount made here is unmounted on any
exit (normal, exception, SIGINT/SIGTERM/SIGHUP).

Needs root (mounting, drop_caches), gcc, python3.

Examples:
  cargo build --release && sudo benches/bench-fs.py --quick \\
      --btfuse target/release/btfuse --preload target/release/libbtfuse.so
  scripts/bench.sh --quick          # builds, then runs this
"""

import argparse
import atexit
import datetime
import io
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

C_HELPER = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

#define THREAD_PASSES 10

struct job { const char *mode, *dir; int n, id, passes; long ops; };

/* `passes` passes of the per-file loops over DIR/f0000..f(n-1), starting
   at a per-thread offset so threads do not walk in lock step. */
static void *file_loop(void *arg) {
    struct job *j = arg;
    char path[4096], buf[4096];
    struct stat st;
    /* Counted here, stored once: the threads' jobs share cache lines. */
    long ops = 0;
    for (int k = 0; k < j->n * j->passes; k++) {
        int i = (k % j->n + j->id * 257) % j->n;
        snprintf(path, sizeof path, "%s/f%04d", j->dir, i);
        if (!strcmp(j->mode, "stat")) {
            if (stat(path, &st) != 0) die(path);
        } else if (!strcmp(j->mode, "fopenread")) {
            FILE *f = fopen(path, "r");
            if (!f) die(path);
            if (fread(buf, 1, sizeof buf, f) != 4096) die("fread");
            fclose(f);
        } else {
            int fd = open(path, O_RDONLY);
            if (fd < 0) die(path);
            if (read(fd, buf, sizeof buf) != 4096) die("read");
            close(fd);
        }
        ops++;
    }
    j->ops = ops;
    return NULL;
}

/* usage: bfhelper MODE PATH N ROUNDS [THREADS]
     stat|openread DIR N      stat / open+read 4 KiB+close of DIR/f0000..
     fopenread DIR N          fopen+fread 4 KiB+fclose of DIR/f0000..
     create DIR N             create+write 4 KiB+close+unlink DIR/cNNNNN
     mkdir DIR N              mkdir+rmdir DIR/mNNNNN
     readdir DIR -            20x opendir+readdir all (502 entries)+closedir
     randread FILE N          N preads of 4 KiB at random aligned offsets
     ioctl FILE N             N ioctl(TCGETS) of FILE (ENOTTY: not a terminal)
     tstat|topenread DIR N .. T   T threads each doing THREAD_PASSES stat/openread
                              passes (so a round times the calls, not the
                              threads' start: at 0.14 us a stat, one pass
                              of 1000 took less than starting a thread)
   prints one line per round: nanoseconds per operation (threads: wall time
   divided by the operations of all threads) */
int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage\n"); return 2; }
    const char *mode = argv[1], *dir = argv[2];
    int n = atoi(argv[3]), rounds = atoi(argv[4]);
    int threads = argc > 5 ? atoi(argv[5]) : 1;
    char path[4096], buf[4096];
    memset(buf, 'w', sizeof buf);
    unsigned seed = 12345;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        long ops = 0;
        if (!strcmp(mode, "stat") || !strcmp(mode, "openread") || !strcmp(mode, "fopenread")) {
            struct job j = { mode, dir, n, 0, 1, 0 };
            file_loop(&j);
            ops = j.ops;
        } else if (!strcmp(mode, "tstat") || !strcmp(mode, "topenread")) {
            pthread_t tid[64];
            struct job jobs[64];
            if (threads < 1 || threads > 64) { fprintf(stderr, "threads\n"); return 2; }
            for (int t = 0; t < threads; t++) {
                jobs[t] = (struct job){ mode + 1, dir, n, t, THREAD_PASSES, 0 };
                if (pthread_create(&tid[t], NULL, file_loop, &jobs[t])) die("pthread_create");
            }
            for (int t = 0; t < threads; t++) {
                pthread_join(tid[t], NULL);
                ops += jobs[t].ops;
            }
        } else if (!strcmp(mode, "create")) {
            for (int i = 0; i < n; i++) {
                snprintf(path, sizeof path, "%s/c%05d", dir, i);
                int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
                if (fd < 0) die(path);
                if (write(fd, buf, sizeof buf) != 4096) die("write");
                if (close(fd) != 0) die("close");
                if (unlink(path) != 0) die("unlink");
                ops++;
            }
        } else if (!strcmp(mode, "mkdir")) {
            for (int i = 0; i < n; i++) {
                snprintf(path, sizeof path, "%s/m%05d", dir, i);
                if (mkdir(path, 0755) != 0) die(path);
                if (rmdir(path) != 0) die("rmdir");
                ops++;
            }
        } else if (!strcmp(mode, "readdir")) {
            for (int k = 0; k < 20; k++) {
                DIR *d = opendir(dir);
                if (!d) die(dir);
                int c = 0;
                while (readdir(d)) c++;
                closedir(d);
                if (c != 502) { fprintf(stderr, "readdir: %d entries\n", c); return 1; }
                ops++;
            }
        } else if (!strcmp(mode, "randread")) {
            int fd = open(dir, O_RDONLY);
            if (fd < 0) die(dir);
            struct stat st;
            if (fstat(fd, &st) != 0) die("fstat");
            long blocks = st.st_size / 4096;
            t0 = now_ns();  /* the open is not part of the figure */
            for (int i = 0; i < n; i++) {
                long b = (long)(rand_r(&seed) % blocks);
                if (pread(fd, buf, 4096, b * 4096) != 4096) die("pread");
                ops++;
            }
            close(fd);
        } else if (!strcmp(mode, "ioctl")) {
            int fd = open(dir, O_RDONLY);
            if (fd < 0) die(dir);
            struct termios tio;
            t0 = now_ns();  /* the open is not part of the figure */
            for (int i = 0; i < n; i++) {
                if (ioctl(fd, TCGETS, &tio) == 0 || errno != ENOTTY) die("ioctl");
                ops++;
            }
            close(fd);
        } else { fprintf(stderr, "bad mode\n"); return 2; }
        printf("%.1f\n", (now_ns() - t0) / ops);
    }
    return 0;
}
"""

# Column names.
TMPFS, BINDFS, WARM, COLD, PRELOAD = "tmpfs", "bindfs", "FUSE warm", "FUSE cold", "preload"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Progress:
    """One status line on stderr, rewritten in place on a terminal."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.t0 = time.time()
        self.printed = 0.0

    def show(self, text):
        line = "[%4.0fs] %s" % (time.time() - self.t0, text)
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:150])
            sys.stderr.flush()
        elif time.time() - self.printed >= 5:
            # Not a terminal (a log file): one line every few seconds.
            log(line)
            self.printed = time.time()

    def done(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def run(cmd, env=None, check=True, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    r = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(map(str, cmd)), r.returncode, (r.stderr or "").strip()[-400:]))
    return r


def mount_fstype(path):
    """fstype of the topmost mount exactly at path, or None."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = line.split(" ")
            if len(p) > 4 and p[4].replace("\\040", " ") == path:
                found = p[p.index("-") + 1]
    return found


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Mounts:
    """Everything mounted or spawned here, torn down in reverse on exit."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="bench-fs-")
        self.mounts = []
        self.children = []
        atexit.register(self.cleanup)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        signal.signal(signum, signal.SIG_IGN)
        log("\nsignal %d: cleaning up" % signum)
        self.cleanup()
        os._exit(128 + signum)

    def dir(self, name):
        p = os.path.join(self.base, name)
        os.makedirs(p, exist_ok=True)
        return p

    def tmpfs(self, name, size):
        p = self.dir(name)
        run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", p])
        self.mounts.append(p)
        return p

    def wait_mounted(self, p, prefix, child=None, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = mount_fstype(p)
            if t and t.startswith(prefix):
                return
            if child is not None and child.poll() is not None:
                raise RuntimeError("mount daemon for %s exited with %s" % (p, child.returncode))
            time.sleep(0.02)
        raise RuntimeError("%s did not appear within %ds" % (p, timeout))

    def btfuse(self, name, binary, size, threads):
        """Mounts in the foreground (child = the daemon); returns (path, child)."""
        p = self.dir(name)
        args = [binary, "mount", p, "--size", size]
        if threads:
            args += ["--threads", str(threads)]
        logf = open(os.path.join(self.base, name + ".log"), "w")
        child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        self.children.append(child)
        self.mounts.append(p)
        self.wait_mounted(p, "fuse", child)
        return p, child

    def bindfs(self, name, src):
        p = self.dir(name)
        self.mounts.append(p)
        run(["bindfs", "--no-allow-other", src, p])
        self.wait_mounted(p, "fuse")
        return p

    def cleanup(self):
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for p in reversed(self.mounts):
            for _ in range(4):
                if mount_fstype(p) is None:
                    break
                subprocess.run(["umount", "-l", p], stderr=subprocess.DEVNULL)
        for child in self.children:
            if child.poll() is None:
                child.kill()
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.children = []
        self.mounts = []
        if os.path.isdir(self.base) and not any(mount_fstype(os.path.join(self.base, d)) for d in os.listdir(self.base)):
            shutil.rmtree(self.base, ignore_errors=True)


def make_tree(root, name, ndirs, per_dir):
    """ndirs directories of per_dir files; every odd file holds one byte."""
    tree = os.path.join(root, name)
    os.mkdir(tree)
    for d in range(ndirs):
        dd = os.path.join(tree, "d%03d" % d)
        os.mkdir(dd)
        for i in range(per_dir):
            with open(os.path.join(dd, "f%03d" % i), "wb") as f:
                if i % 2:
                    f.write(b"x")


def make_git_repo(root, name, nfiles):
    """A git repository of nfiles committed files (100 per directory),
    its index fresh, for `git status`."""
    repo = os.path.join(root, name)
    make_tree(root, name, nfiles // 100, 100)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@b")
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tree"], ["status", "--porcelain"]):
        subprocess.run(["git", "-C", repo] + cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def metadata_rows(bench, R):
    """Whole-tree metadata walks (issue 16) beside `du -s` (a row of
    shortlived_workloads): `git status` in a 10 000-file repository."""
    ms = lambda s: s * 1000.0
    return [
        ("git status 10k files", "ms", False, True,
         lambda t: ms(bench.timed(t, ["git", "-C", R(t) + "/git10k", "status", "--porcelain"], (0, 0)))),
    ]


def populate(root, args):
    """Test data under root (the same on every target)."""
    ops = os.path.join(root, "ops")
    os.mkdir(ops)
    block = b"b" * 4096
    for i in range(1000):
        with open(os.path.join(ops, "f%04d" % i), "wb") as f:
            f.write(block)
    os.mkdir(os.path.join(root, "scratch"))
    rd = os.path.join(root, "rd500")
    os.mkdir(rd)
    for i in range(500):
        open(os.path.join(rd, "e%03d" % i), "wb").close()
    make_tree(root, "tree10k", 100, 100)
    py = os.path.join(root, "py5k")
    os.mkdir(py)
    for d in range(50):
        pd = os.path.join(py, "p%02d" % d)
        os.mkdir(pd)
        for i in range(100):
            with open(os.path.join(pd, "m%03d.py" % i), "wb") as f:
                f.write(b"# small module %d/%d\n" % (d, i) * 12)
    make_git_repo(root, "git10k", 10000)
    if args.big_find:
        make_tree(root, "tree100k", 1000, 100)
    with open(os.path.join(root, "small"), "wb") as f:
        f.write(b"s" * 100)
    with open(os.path.join(root, "lines10k"), "w") as f:
        for i in range(1, 10001):
            f.write("line %05d %d of the stdio workloads\n" % (i * 7919 % 10000, i))
    chunk = os.urandom(1 << 20)
    with open(os.path.join(root, "rand.bin"), "wb") as f:
        for _ in range(args.rand_mb):
            f.write(chunk)


# Reads every file of a tree (os.walk + open().read()), like an
# interpreter importing a package tree; prints the file count.
PY_READ = """
import os, sys
n = 0
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            fh.read()
        n += 1
assert n == 5000, n
print(n)
"""


def make_source_archive(path, nfiles):
    """A tar that looks like a source tree: nested directories, mostly small
    text files of log-normally distributed sizes, a few larger ones."""
    rng = random.Random(7)
    words = [b"static ", b"int ", b"return ", b"struct ", b"if (x) ", b"{\n", b"}\n", b"/* note */\n", b"fn ", b"let "]
    with tarfile.open(path, "w") as tar:
        dirs = ["src"]
        for i in range(nfiles // 25):
            parent = rng.choice(dirs)
            dirs.append("%s/m%03d" % (parent, i))
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            tar.addfile(ti)
        for i in range(nfiles):
            size = min(int(rng.lognormvariate(8.3, 1.2)), 1 << 20)
            body = b"".join(rng.choice(words) for _ in range(size // 6 + 1))[:size]
            ti = tarfile.TarInfo("%s/file%05d.%s" % (rng.choice(dirs), i, rng.choice("chrs")))
            ti.size, ti.mode, ti.mtime = len(body), 0o644, 1700000000
            tar.addfile(ti, io.BytesIO(body))
    return len(dirs), nfiles


def print_checks(title, unit, checks):
    """One line per (description, value, met) target check, under `title`."""
    if not checks:
        return
    print()
    print(title)
    for desc, value, ok in checks:
        if value is None:
            print("- %s: not measured" % desc)
        else:
            print("- %s: %.2f%s — %s" % (desc, value, unit, "met" if ok else "MISSED"))


def print_per_process(per_process, n, runs):
    """The per-process overhead table (see `per_process_overhead`)."""
    rows, base = per_process
    print()
    print("Per-process overhead, µs per process above `cat` (resp. a one-`stat` program) without any library on "
          "tmpfs (%.0f µs wall), loops of %d processes started by bash, medians of %d interleaved runs; CPU = the "
          "processes' own (user+sys) and the daemon's threads':" % (base, n, runs))
    print()
    print("| process | wall µs | wall min–max | process CPU µs | daemon CPU µs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, wall, lo, hi, cpu, dcpu in rows:
        rng = "—" if lo is None else "%.0f–%.0f" % (lo, hi)
        print("| %s | %.0f | %s | %.0f | %.0f |" % (label, wall, rng, cpu, dcpu))


def make_c_project(root, nfiles=45, nheaders=6):
    """A generated C project under root/cproj: nheaders headers, nfiles
    sources each including three of them, and a Makefile that compiles
    every source to an object and links them (the `make -j2` workload)."""
    proj = os.path.join(root, "cproj")
    os.makedirs(os.path.join(proj, "include"))
    for h in range(nheaders):
        with open(os.path.join(proj, "include", "h%d.h" % h), "w") as f:
            f.write("#pragma once\n#include <stddef.h>\n")
            for k in range(20):
                f.write("static inline int h%d_f%d(int x) { return x * %d + %d; }\n" % (h, k, k + 1, h))
    for i in range(nfiles):
        with open(os.path.join(proj, "s%02d.c" % i), "w") as f:
            for h in (i % nheaders, (i + 1) % nheaders, (i + 3) % nheaders):
                f.write('#include "h%d.h"\n' % h)
            f.write("int f%02d(int x) {\n  int s = 0;\n" % i)
            for k in range(30):
                f.write("  s += h%d_f%d(x + %d);\n" % (i % nheaders, k % 20, k))
            f.write("  return s;\n}\n")
    with open(os.path.join(proj, "main.c"), "w") as f:
        f.write("".join("int f%02d(int);\n" % i for i in range(nfiles)))
        f.write("int main(void) { int s = 0;\n%s  return s & 1; }\n" % "".join("  s += f%02d(%d);\n" % (i, i) for i in range(nfiles)))
    objs = " ".join("s%02d.o" % i for i in range(nfiles)) + " main.o"
    with open(os.path.join(proj, "Makefile"), "w") as f:
        f.write("CFLAGS = -O1 -Iinclude\nprog: %s\n\t$(CC) -o $@ $^\n%%.o: %%.c $(wildcard include/*.h)\n\t$(CC) $(CFLAGS) -c -o $@ $<\n" % objs)
    return proj


def populate_shortlived(root):
    """Extra data of the short-lived-process workloads (issue 15)."""
    make_c_project(root)


# Source of the one-call program of the per-process table: one stat of
# argv[1], so that its cost on and off the mount shows the first call.
ONE_STAT_C = r"""
#include <sys/stat.h>
int main(int argc, char **argv) { struct stat st; return argc > 1 && stat(argv[1], &st) != 0; }
"""


def build_probe_programs(base):
    """The empty preload library and the one-stat program of the
    per-process table; returns (empty_lib, one_stat)."""
    empty_c, empty_so = os.path.join(base, "empty.c"), os.path.join(base, "libempty.so")
    with open(empty_c, "w") as f:
        f.write("int btfuse_bench_empty_library;\n")
    run(["gcc", "-O2", "-shared", "-fPIC", "-o", empty_so, empty_c])
    stat_c, stat_bin = os.path.join(base, "onestat.c"), os.path.join(base, "onestat")
    with open(stat_c, "w") as f:
        f.write(ONE_STAT_C)
    run(["gcc", "-O2", "-o", stat_bin, stat_c])
    return empty_so, stat_bin


def daemon_cpu_s(pid):
    """CPU seconds the daemon's threads ran so far (schedstat, ns)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        except OSError:  # a thread that ended meanwhile
            pass
    return total / 1e9


def per_process_loop(prog, path, n, lib, daemon_pid):
    """(wall seconds, CPU seconds of the processes, CPU seconds of the
    daemon) for n processes of `prog path` started by a bash loop, with
    `lib` preloaded into each of them only (not into bash)."""
    env = dict(os.environ, LC_ALL="C", L=lib or "")
    env.pop("LD_PRELOAD", None)
    pre = 'LD_PRELOAD=$L ' if lib else ""
    script = 'for i in $(seq %d); do %s"$1" "$2"; done > /dev/null' % (n, pre)
    ru0, d0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), daemon_cpu_s(daemon_pid), time.perf_counter()
    run(["bash", "-c", script, "bench", prog, path], env=env)
    wall = time.perf_counter() - t0
    ru1, d1 = resource.getrusage(resource.RUSAGE_CHILDREN), daemon_cpu_s(daemon_pid)
    cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
    return wall, cpu, d1 - d0


def per_process_overhead(tmp_root, fuse_root, lib, empty_lib, one_stat, runs, n, daemon_pid):
    """µs per process above a process without any library on tmpfs, for
    the variants that show where a short-lived preloaded process's time
    goes: wall time, and CPU time (the processes' own plus the daemon's,
    which a loaded machine inflates far less than wall time). Returns
    (rows of (label, wall, wall min, wall max, process CPU, daemon CPU),
    base wall µs); the variants interleaved, medians."""
    cat = shutil.which("cat") or "/bin/cat"
    variants = [
        ("base", cat, tmp_root, None),
        ("empty preloaded library (cat, tmpfs)", cat, tmp_root, empty_lib),
        ("libbtfuse off the mount (cat, tmpfs)", cat, tmp_root, lib),
        ("plain FUSE (cat, no library)", cat, fuse_root, None),
        ("libbtfuse on the mount (whole cat)", cat, fuse_root, lib),
        ("stat base", one_stat, tmp_root, None),
        ("libbtfuse off the mount (one stat)", one_stat, tmp_root, lib),
        ("libbtfuse on the mount (one stat)", one_stat, fuse_root, lib),
    ]
    times = {v[0]: [] for v in variants}
    for r in range(runs + 1):  # the first round warms caches up, unrecorded
        for label, prog, root, l in variants:
            m = per_process_loop(prog, os.path.join(root, "small"), n, l, daemon_pid)
            if r:
                times[label].append(m)
    us = lambda label, i: statistics.median(t[i] for t in times[label]) / n * 1e6
    rows = []
    for label, prog, root, l in variants:
        if label in ("base", "stat base"):
            continue
        base = "stat base" if prog == one_stat else "base"
        extra = [(t[0] - us(base, 0) * n / 1e6) / n * 1e6 for t in times[label]]
        rows.append((label, us(label, 0) - us(base, 0), min(extra), max(extra),
                     us(label, 1) - us(base, 1), us(label, 2) - us(base, 2)))
    by = dict((r[0], r) for r in rows)
    on, off = by["libbtfuse on the mount (one stat)"], by["libbtfuse off the mount (one stat)"]
    rows.append(("first call on the mount (one stat: on − off)", on[1] - off[1], None, None,
                 on[4] - off[4], on[5] - off[5]))
    return rows, us("base", 0)



class Bench:
    def __init__(self, args, helper, targets, archive):
        self.args, self.helper, self.targets, self.archive = args, helper, targets, archive
        self.counter = 0

    # -- measurement functions: (target) -> one value ---------------------

    def c_loop(self, t, mode, path, n, *extra):
        if t["cold"]:
            drop_caches()
        # cold: the first pass after drop_caches; otherwise the second pass
        out = run([self.helper, mode, path, str(n), "1" if t["cold"] else "2"] + [str(e) for e in extra], env=t["env"]).stdout.split()
        return float(out[-1])

    def timed(self, t, cmd, check_lines=None, stdout=subprocess.PIPE):
        if t["cold"]:
            drop_caches()
        t0 = time.perf_counter()
        r = run(cmd, env=t["env"], stdout=stdout)
        dt = time.perf_counter() - t0
        if check_lines is not None:
            lo, hi = check_lines
            n = r.stdout.count("\n")
            if not lo <= n <= hi:
                raise RuntimeError("%s printed %d lines, expected %d..%d" % (cmd[0], n, lo, hi))
        return dt

    def workloads(self):
        """(key, unit, higher_is_better, warmed before each run?, fn(target) -> value)."""
        a = self.args
        us = lambda ns: ns / 1000.0
        kops = lambda ns: 1e6 / ns
        ms = lambda s: s * 1000.0
        w = []
        R = lambda t: t["root"]
        w.append(("stat", "µs", False, False, lambda t: us(self.c_loop(t, "stat", R(t) + "/ops", 1000))))
        w.append(("open+read 4K+close", "µs", False, False, lambda t: us(self.c_loop(t, "openread", R(t) + "/ops", 1000))))
        w.append(("fopen+fread 4K+fclose", "µs", False, False, lambda t: us(self.c_loop(t, "fopenread", R(t) + "/ops", 1000))))
        w.append(("create+write 4K+close+unlink", "µs", False, False, lambda t: us(self.c_loop(t, "create", R(t) + "/scratch", 1000))))
        w.append(("readdir 500 entries", "µs", False, False, lambda t: us(self.c_loop(t, "readdir", R(t) + "/rd500", "-"))))
        w.append(("mkdir+rmdir", "µs", False, False, lambda t: us(self.c_loop(t, "mkdir", R(t) + "/scratch", 1000))))
        w.append(("random 4K pread (%d MiB file)" % a.rand_mb, "µs", False, False,
                  lambda t: us(self.c_loop(t, "randread", R(t) + "/rand.bin", a.rand_reads))))
        # What `isatty` asks of every file python opens; through FUSE a
        # request the daemon answers at once: the door's bare round trip.
        w.append(("ioctl TCGETS of a file", "µs", False, False,
                  lambda t: us(self.c_loop(t, "ioctl", R(t) + "/ops/f0000", 2000))))
        for mode, label in (("tstat", "stat"), ("topenread", "open+read+close")):
            for th in (1, 2, 4):
                w.append(("%s, %d thread%s" % (label, th, "s" if th > 1 else ""), "kops/s", True, False,
                          lambda t, mode=mode, th=th: kops(self.c_loop(t, mode, R(t) + "/ops", 1000, th))))
        trees = [("10k", "tree10k", 10000)] + ([("100k", "tree100k", 100000)] if a.big_find else [])
        for label, name, nfiles in trees:
            ndirs = nfiles // 100
            w.append(("find %s files" % label, "ms", False, True,
                      lambda t, name=name, n=nfiles + nfiles // 100 + 1: ms(self.timed(t, ["find", R(t) + "/" + name], (n, n)))))
            w.append(("find -size +0, %s files" % label, "ms", False, True,
                      lambda t, name=name, n=nfiles, d=ndirs: ms(self.timed(t, ["find", R(t) + "/" + name, "-size", "+0"], (n // 2, n // 2 + d + 1)))))
        w.append(("ls -lR 10k files", "ms", False, True,
                  lambda t: ms(self.timed(t, ["ls", "-lR", R(t) + "/tree10k"], stdout=subprocess.DEVNULL))))
        w.append(("python read 5000 small files", "ms", False, True,
                  lambda t: ms(self.timed(t, [sys.executable, "-c", PY_READ, R(t) + "/py5k"], (1, 1)))))
        w += metadata_rows(self, R)
        w.append(("tar x (%d files, %.0f MiB)" % (a.tar_files, os.path.getsize(self.archive) / 2 ** 20), "ms", False, False,
                  lambda t: ms(self.tar_x(t))))
        w.append(("cat small x%d (processes)" % a.cats, "ms", False, True,
                  lambda t: ms(self.timed(t, ["bash", "-c", 'for i in $(seq %d); do cat "$1"; done > /dev/null' % a.cats, "bench", R(t) + "/small"]))))
        w += self.shortlived_workloads()
        # stdio on one file (fopen + getc/fread loops in glibc).
        for label, argv in (("sed 10k lines", ["sed", "-n", "s/line/LINE/p"]), ("sort 10k lines", ["sort"])):
            w.append((label + " (process)", "ms", False, True,
                      lambda t, argv=argv: ms(self.timed(t, argv + [R(t) + "/lines10k"], (10000, 10000)))))
        w.append(("seq write %d MiB (dd 1M)" % a.seq_mb, "MB/s", True, False, lambda t: self.seq(t, True)))
        # The same write into a file that does not exist yet (`dd` making
        # its output): through FUSE a file made by `CREATE` can be written
        # around the page cache, one the kernel opens itself cannot.
        w.append(("seq write %d MiB, new file (dd 1M)" % a.seq_mb, "MB/s", True, False,
                  lambda t: self.seq(t, True, fresh=True)))
        w.append(("seq read %d MiB (dd 1M)" % a.seq_mb, "MB/s", True, True, lambda t: self.seq(t, False)))
        if a.only:
            w = [x for x in w if re.search(a.only, x[0])]
        return w

    def shortlived_workloads(self):
        """Programs made of many short-lived processes (issue 15)."""
        ms = lambda s: s * 1000.0
        R = lambda t: t["root"]
        w = [("make -j2, C project (46 sources, 6 headers)", "ms", False, True, lambda t: ms(self.make_project(t))),
             ("du -s 10k files", "ms", False, True,
              lambda t: ms(self.timed(t, ["du", "-s", R(t) + "/tree10k"], (1, 1)))),
             ("find -exec stat {} +, 10k files", "ms", False, True,
              lambda t: ms(self.timed(t, ["find", R(t) + "/tree10k", "-type", "f", "-exec", "stat", "-c", "%s", "{}", "+"],
                                      (10000, 10000)))),
             ("find | xargs -n 100 cat, 10k files", "ms", False, True,
              lambda t: ms(self.timed(t, ["bash", "-c", 'find "$1" -type f -print0 | xargs -0 -n 100 cat | wc -c',
                                          "bench", R(t) + "/tree10k"], (1, 1)))),
             ("rsync -a into the target, 10k files", "ms", False, False, lambda t: ms(self.rsync(t, True))),
             ("rsync -a out of the target, 10k files", "ms", False, True, lambda t: ms(self.rsync(t, False)))]
        return w

    def rsync(self, t, into):
        """Seconds of `rsync -a` of the 10k-file tree from tmpfs into a new
        directory of target t, or from t into a new directory of tmpfs
        (removed after)."""
        tmpfs_root = dict(self.targets)[TMPFS]["root"]
        self.counter += 1
        src_root, dest_root = (tmpfs_root, t["root"]) if into else (t["root"], tmpfs_root)
        dest = os.path.join(dest_root, "scratch", "rsync%d" % self.counter)
        try:
            return self.timed(t, ["rsync", "-a", os.path.join(src_root, "tree10k") + "/", dest + "/"])
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def make_project(self, t):
        """Seconds of `make -j2` of the generated C project, from clean."""
        proj = os.path.join(t["root"], "cproj")
        for name in os.listdir(proj):
            if name.endswith(".o") or name == "prog":
                os.unlink(os.path.join(proj, name))
        return self.timed(t, ["make", "-s", "-j2", "-C", proj])

    def tar_x(self, t):
        self.counter += 1
        dest = os.path.join(t["root"], "scratch", "tarx%d" % self.counter)
        os.mkdir(dest)
        try:
            return self.timed(t, ["tar", "xf", self.archive, "-C", dest])
        finally:
            shutil.rmtree(dest)

    def seq(self, t, write, fresh=False):
        big = os.path.join(t["root"], "scratch", "seq.bin")
        mb = self.args.seq_mb
        if fresh and os.path.exists(big):
            os.unlink(big)
        if write or not os.path.exists(big):
            if t["cold"]:
                drop_caches()
            t0 = time.perf_counter()
            run(["dd", "if=/dev/zero", "of=" + big, "bs=1M", "count=%d" % mb, "status=none"], env=t["env"])
            dt = time.perf_counter() - t0
            if write:
                return mb * 1.048576 / dt
        if t["cold"]:
            drop_caches()
        t0 = time.perf_counter()
        run(["dd", "if=" + big, "of=/dev/null", "bs=1M", "status=none"], env=t["env"])
        return mb * 1.048576 / (time.perf_counter() - t0)

    def measure_all(self, progress):
        """{workload: {column: [values]}}; runs of all targets interleaved."""
        ws = self.workloads()
        total = len(ws) * self.args.runs * len(self.targets)
        step = 0
        results, meta, failed = {}, {}, {}
        for key, unit, hib, warmup, fn in ws:
            meta[key] = (unit, hib)
            results[key] = {}
            for r in range(self.args.runs):
                for name, t in self.targets:
                    step += 1
                    progress.show("%3d/%d  %s · %s · run %d/%d" % (step, total, key, name, r + 1, self.args.runs))
                    if (name + ": " + key) in failed:
                        continue
                    try:
                        if warmup and not t["cold"]:
                            # Warmed right before: the targets of one mount
                            # share its files, and a cold target's drop or a
                            # fast-path read (which takes a file's pages from
                            # the kernel) in between leaves "warm" cold.
                            # Twice: a run that reads a file's pages through
                            # FUSE makes the kernel forget the file's atime
                            # (`fuse_invalidate_atime` after every READ), so
                            # the run after it still asks a GETATTR per file
                            # (python reading 5 000 files: 183-211, then
                            # 138-141, then 108-120 ms); the second is the
                            # steady state a program run again meets.
                            fn(t)
                            fn(t)
                        results[key].setdefault(name, []).append(fn(t))
                    except Exception as e:  # one broken target must not lose the others
                        failed[name + ": " + key] = str(e)
                        results[key].pop(name, None)
            for name, t in self.targets:
                big = os.path.join(t["root"], "scratch", "seq.bin")
                if key.startswith("seq read") and os.path.exists(big):
                    os.unlink(big)
        return results, meta, failed


# The daemon keeps freed memory this long for reuse before unmapping it
# (inode_store::IDLE_DECAY, 5 s; its trimmer runs every second).
IDLE_DECAY_S = 5


def settled_rss(pid):
    """The daemon's RSS once memory freed before the call has gone back to
    the OS."""
    time.sleep(IDLE_DECAY_S + 1.5)
    return rss_bytes(pid)


def daemon_memory(root, pid, mb):
    """RSS growth of the daemon while `mb` MiB are written through the mount,
    and its RSS once they are deleted (after the idle-memory decay)."""
    big = os.path.join(root, "scratch", "mem.bin")
    before = settled_rss(pid)
    run(["dd", "if=/dev/urandom", "of=" + big, "bs=1M", "count=%d" % mb, "status=none"])
    stored = rss_bytes(pid)
    os.unlink(big)
    after = settled_rss(pid)
    per_gib = (stored - before) / 2 ** 20 / (mb / 1024.0)
    return {"written_mib": mb, "rss_before_mib": before / 2 ** 20, "rss_stored_mib": stored / 2 ** 20,
            "rss_after_unlink_mib": after / 2 ** 20, "rss_mib_per_gib_stored": per_gib}


def ensure_installed(program, package):
    """Whether `program` is on PATH, installing Debian's `package` if not."""
    if shutil.which(program):
        return True
    log("%s not found: installing %s with apt-get" % (program, package))
    cmd = ["apt-get", "install", "-y", "-q", package]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or not shutil.which(program):
        log("could not install %s: %s" % (package, r.stderr.strip()[-300:]))
        return False
    return True


def find_btfuse(arg):
    if arg:
        return os.path.abspath(arg)
    for prof in ("release", "debug"):
        for tdir in (os.environ.get("CARGO_TARGET_DIR"), os.path.join(REPO, "target")):
            if tdir and os.path.exists(os.path.join(tdir, prof, "btfuse")):
                return os.path.join(tdir, prof, "btfuse")
    return None


def fmt(v, unit):
    if unit in ("MB/s", "kops/s"):
        return "%.0f %s" % (v, unit) if v >= 100 else "%.1f %s" % (v, unit)
    if v >= 100:
        return "%.0f %s" % (v, unit)
    if v >= 10:
        return "%.1f %s" % (v, unit)
    return "%.2f %s" % (v, unit)


def fmt_range(vals):
    lo, hi = min(vals), max(vals)
    f = (lambda v: "%.0f" % v) if hi >= 100 else (lambda v: "%.1f" % v) if hi >= 10 else (lambda v: "%.2f" % v)
    return "%s–%s" % (f(lo), f(hi))


def cost(a, b, hib):
    """How many times slower a is than b (time ratio; for throughputs inverted)."""
    if a is None or b is None or a == 0 or b == 0:
        return None
    return b / a if hib else a / b


def machine_facts():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()
    try:
        with open("/sys/module/fuse/parameters/enable_uring") as f:
            uring = f.read().strip() in ("Y", "1")
    except OSError:
        uring = False
    return {"nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu, "mem_mib": mem,
            "loadavg_at_start": [round(x, 2) for x in load], "fuse_over_io_uring": uring}


def git_commit():
    try:
        c = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        return c + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


# Okabe-Ito: distinguishable with every common form of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"]

# Panels of the figure, by the unit a workload is measured in.
FAMILIES = [
    ("Per-operation latency (C loops)", lambda r: r["unit"] == "µs"),
    ("Whole programs", lambda r: r["unit"] == "ms"),
    ("Throughput", lambda r: r["unit"] in ("MB/s", "kops/s")),
]


def ratio_range(row, col):
    """(low, high) of a column's cost relative to tmpfs's median, from the
    column's min and max (for error bars)."""
    t = row["median"].get(TMPFS)
    lo, hi = row["min"].get(col), row["max"].get(col)
    ends = [cost(v, t, row["higher_is_better"]) for v in (lo, hi)]
    ends = [e for e in ends if e]
    return (min(ends), max(ends)) if ends else (None, None)


def plot(path, rows, columns, subtitle):
    """Each workload's cost relative to tmpfs per column, one panel per
    family (latency, whole programs, throughput): bars grow from 1.0 (as
    fast as tmpfs) on a log axis, with min–max error bars."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log("matplotlib missing: pip install matplotlib")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            return "plot skipped: pip install matplotlib failed (%s)" % r.stderr.strip().splitlines()[-1:]
        import importlib
        importlib.invalidate_caches()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except Exception as e:
        return "plot skipped: matplotlib unusable (%s)" % e
    cols = [c for c in columns if c != TMPFS]
    panels = [(title, [r for r in rows if pick(r)]) for title, pick in FAMILIES]
    panels = [(t, rs) for t, rs in panels if rs]
    heights = [max(2.0, 0.5 * len(rs) * max(1, len(cols)) / 2.2 + 0.9) for _, rs in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, sum(heights) + 1.2),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    values = [v for r in rows for c in cols for v in ratio_range(r, c) + (r["vs_tmpfs"].get(c),) if v]
    left = min([0.5] + values) / 1.3
    right = max([2.0] + values) * 1.3
    label = lambda x, _: ("%g" % x) if x >= 0.1 else ("%.2g" % x)
    for ax, (title, rs) in zip(axes[:, 0], panels):
        h = 0.8 / max(1, len(cols))
        for j, c in enumerate(cols):
            ys, xs, errs = [], [], [[], []]
            for i, r in enumerate(rs):
                x = r["vs_tmpfs"].get(c)
                if not x:
                    continue
                lo, hi = ratio_range(r, c)
                ys.append(i + (j - (len(cols) - 1) / 2) * h)
                xs.append(x)
                errs[0].append(max(0.0, x - (lo or x)))
                errs[1].append(max(0.0, (hi or x) - x))
            colour = PALETTE[j % len(PALETTE)]
            ax.barh(ys, [x - 1 for x in xs], left=1, height=h, color=colour, label=c)
            ax.errorbar(xs, ys, xerr=errs, fmt="none", ecolor="#333333", elinewidth=0.8, capsize=2)
        ax.axvline(1.0, color="black", linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(label))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(range(len(rs)))
        ax.set_yticklabels([r["workload"] for r in rs], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(axis="x", which="major", alpha=0.3)
    axes[-1, 0].set_xlabel("cost relative to tmpfs (time ratio, log scale; 1 = tmpfs, left of 1 = faster "
                           "than tmpfs); bars: medians, whiskers: min–max")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.suptitle("btfuse against tmpfs, per column\n" + subtitle, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def target_checks(rows):
    """The preload issue's targets, checked on this run's medians."""
    by = {r["workload"]: r for r in rows}

    def get(prefix, col):
        for k, r in by.items():
            if k.startswith(prefix):
                return r["median"].get(col), r["higher_is_better"]
        return None, False

    checks = []

    def check(desc, prefix, a, b, limit, le):
        va, hib = get(prefix, a)
        vb, _ = get(prefix, b)
        c = cost(va, vb, hib)
        if c is None:
            checks.append((desc, None, None))
            return
        # cost(a, b) = how many times slower a is than b
        value = c if le else 1 / c
        checks.append((desc, value, value <= limit if le else value >= limit))

    check("stat: preload ≤ 1.5× tmpfs", "stat", PRELOAD, TMPFS, 1.5, True)
    check("open+read+close: preload ≥ 10× faster than FUSE warm", "open+read 4K", PRELOAD, WARM, 10, False)
    check("open+read+close: preload ≤ 1.5× tmpfs", "open+read 4K", PRELOAD, TMPFS, 1.5, True)
    check("find -size +0 10k: preload ≤ 2× tmpfs", "find -size +0, 10k", PRELOAD, TMPFS, 2, True)
    check("find -size +0 10k: preload ≥ 10× faster than FUSE cold", "find -size +0, 10k", PRELOAD, COLD, 10, False)
    check("cat small: preload ≤ 1.12× tmpfs", "cat small", PRELOAD, TMPFS, 1.12, True)
    check("cat small: preload faster than FUSE warm", "cat small", PRELOAD, WARM, 1, False)
    check("cat small: preload faster than bindfs", "cat small", PRELOAD, BINDFS, 1, False)
    check("make -j2: preload ≤ FUSE warm", "make -j2", PRELOAD, WARM, 1, True)
    check("make -j2: preload ≤ 1.05× tmpfs", "make -j2", PRELOAD, TMPFS, 1.05, True)
    check("du -s 10k: preload ≤ 1.2× tmpfs", "du -s 10k", PRELOAD, TMPFS, 1.2, True)
    check("find -exec stat {} +: preload ≤ FUSE warm", "find -exec stat", PRELOAD, WARM, 1, True)
    check("xargs pipeline: preload ≤ FUSE warm", "find | xargs", PRELOAD, WARM, 1, True)
    check("rsync -a into: preload ≥ 2× faster than FUSE warm", "rsync -a into", PRELOAD, WARM, 2, False)
    check("rsync -a out of: preload ≥ 2× faster than FUSE warm", "rsync -a out of", PRELOAD, WARM, 2, False)
    check("seq write: preload ≥ 5× FUSE warm", "seq write", PRELOAD, WARM, 5, False)
    check("seq read: preload ≥ 1× FUSE warm", "seq read", PRELOAD, WARM, 1, False)
    return checks


def fuse_checks(rows):
    """The plain-mount issue's targets: (description, value, met) of this run."""
    by = {r["workload"]: r for r in rows}
    out = []

    def ratio(prefix, a, b, limit, le, desc):
        for k, r in by.items():
            if k.startswith(prefix):
                c = cost(r["median"].get(a), r["median"].get(b), r["higher_is_better"])
                if c is None:
                    break
                value = c if le else 1 / c
                out.append((desc % k, value, value <= limit if le else value >= limit))
                return
        out.append((desc % prefix, None, None))

    for r in rows:
        if BINDFS in r["median"] and WARM in r["median"]:
            ratio(r["workload"], WARM, BINDFS, 1.0, True, "%s: FUSE warm ≤ 1× bindfs")
    ratio("open+read 4K", WARM, TMPFS, 3, True, "%s: FUSE warm ≤ 3× tmpfs")
    ratio("readdir 500", WARM, TMPFS, 1.5, True, "%s: FUSE warm ≤ 1.5× tmpfs")
    ratio("find -size +0, 10k", COLD, TMPFS, 2, True, "%s: FUSE cold ≤ 2× tmpfs")
    ratio("tar x", WARM, TMPFS, 4, True, "%s: FUSE warm ≤ 4× tmpfs")
    ratio("python read", WARM, TMPFS, 1.5, True, "%s: FUSE warm ≤ 1.5× tmpfs")
    for col in (WARM, COLD):
        for k, r in by.items():
            if k.startswith("seq write"):
                v = r["median"].get(col)
                out.append(("%s: %s ≥ 1500 MB/s (absolute, MB/s)" % (k, col), v, v is not None and v >= 1500))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--btfuse", help="btfuse binary (default: target/{release,debug}/btfuse)")
    ap.add_argument("--preload", help="libbtfuse.so: the 'preload' column (skipped if absent)")
    ap.add_argument("--no-bindfs", action="store_true", help="skip the bindfs column")
    ap.add_argument("--runs", type=int, help="repetitions per measurement (median; default 5, --quick 3)")
    ap.add_argument("--seq-mb", type=int, help="size of the sequential write/read (default 1024, --quick 512)")
    ap.add_argument("--rand-mb", type=int, default=256, help="size of the random-read file (MiB)")
    ap.add_argument("--cats", type=int, default=500, help="number of cat processes")
    ap.add_argument("--threads", type=int, default=0, help="btfuse --threads")
    ap.add_argument("--per-process", type=int, default=300,
                    help="processes per loop of the per-process overhead table (0: skip the table)")
    ap.add_argument("--only", help="run only the workloads whose name matches this regex")
    ap.add_argument("--quick", action="store_true", help="3 runs, 512 MiB, 10k-file find only (a few minutes)")
    ap.add_argument("--out", default=os.path.join(REPO, "target", "bench"), help="directory for results.json and plots")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG")
    args = ap.parse_args()
    args.runs = args.runs or (3 if args.quick else 5)
    args.seq_mb = args.seq_mb or (512 if args.quick else 1024)
    args.big_find = not args.quick
    args.rand_reads = 2000 if args.quick else 10000
    args.tar_files = 1500 if args.quick else 4000
    if os.geteuid() != 0:
        ap.error("must run as root (mounts, drop_caches)")

    started = datetime.datetime.now(datetime.timezone.utc)
    facts = machine_facts()
    m = Mounts()
    progress = Progress()
    helper = os.path.join(m.base, "bfhelper")
    with open(helper + ".c", "w") as f:
        f.write(C_HELPER)
    run(["gcc", "-O2", "-pthread", "-o", helper, helper + ".c"])
    size = "%dM" % (args.seq_mb + args.rand_mb + 2048)

    src = m.tmpfs("src", "1G")
    archive = os.path.join(src, "tree.tar")
    progress.show("generating the source-tree archive")
    make_source_archive(archive, args.tar_files)

    targets = []  # (column, {root, env, cold})
    base_env = dict(os.environ, LC_ALL="C")
    base_env.pop("LD_PRELOAD", None)
    notes = []

    for program in ("git", "make", "rsync"):  # the git status, make -j2 and rsync rows
        ensure_installed(program, program)
    progress.show("populating tmpfs")
    t = m.tmpfs("tmpfs", size)
    populate(t, args)
    populate_shortlived(t)
    targets.append((TMPFS, {"root": t, "env": base_env, "cold": False}))

    if not args.no_bindfs:
        if ensure_installed("bindfs", "bindfs"):
            bsrc = m.tmpfs("bind_src", size)
            bp = m.bindfs("bindfs", bsrc)
            progress.show("populating bindfs")
            populate(bp, args)
            populate_shortlived(bp)
            targets.append((BINDFS, {"root": bp, "env": base_env, "cold": False}))
        else:
            notes.append("bindfs column skipped: bindfs unavailable")

    daemon = None
    b = find_btfuse(args.btfuse)
    btroot = None
    if b and os.path.exists(b):
        btroot, daemon = m.btfuse("btfuse", b, size, args.threads)
        progress.show("populating btfuse")
        populate(btroot, args)
        populate_shortlived(btroot)
        targets.append((WARM, {"root": btroot, "env": base_env, "cold": False}))
        targets.append((COLD, {"root": btroot, "env": base_env, "cold": True}))
        if args.preload:
            lib = os.path.abspath(args.preload)
            if os.path.exists(lib):
                targets.append((PRELOAD, {"root": btroot, "env": dict(base_env, LD_PRELOAD=lib), "cold": False}))
            else:
                notes.append("preload column skipped: %s does not exist" % lib)
        else:
            notes.append("preload column skipped: no --preload")
    else:
        notes.append("btfuse columns skipped: no btfuse binary (build it, or pass --btfuse)")

    bench = Bench(args, helper, targets, archive)
    results, meta, failed = bench.measure_all(progress)
    per_process = None
    if args.per_process and btroot and PRELOAD in [n for n, _ in targets]:
        progress.show("per-process overhead table")
        empty_lib, one_stat = build_probe_programs(m.base)
        per_process = per_process_overhead(t, btroot, os.path.abspath(args.preload), empty_lib, one_stat,
                                           args.runs, args.per_process, daemon.pid)
    for k, e in failed.items():
        notes.append("%s failed: %s" % (k, e))

    memory = None
    daemon_stats = None
    if daemon is not None and daemon.poll() is None:
        progress.show("daemon memory per GiB stored")
        try:
            daemon_stats = json.loads(run([b, "stats", "--json", btroot]).stdout)
        except Exception as e:
            notes.append("btfuse stats --json failed: %s" % e)
        try:
            memory = daemon_memory(btroot, daemon.pid, min(args.seq_mb, 1024))
        except Exception as e:
            notes.append("daemon memory measurement failed: %s" % e)
    progress.done()

    columns = [n for n, _ in targets]
    rows = []
    for key, per in results.items():
        unit, hib = meta[key]
        med = {c: statistics.median(v) for c, v in per.items() if v}
        row = {"workload": key, "unit": unit, "higher_is_better": hib,
               "median": med, "min": {c: min(v) for c, v in per.items() if v},
               "max": {c: max(v) for c, v in per.items() if v}, "values": per,
               "vs_tmpfs": {c: cost(med.get(c), med.get(TMPFS), hib) for c in columns if c != TMPFS},
               "preload_speedup_vs_fuse_warm": cost(med.get(WARM), med.get(PRELOAD), hib),
               "preload_speedup_vs_fuse_cold": cost(med.get(COLD), med.get(PRELOAD), hib)}
        rows.append(row)

    ratio_cols = ["preload vs FUSE warm", "preload vs FUSE cold", "preload / tmpfs"]
    print("| workload | " + " | ".join(columns) + " | " + " | ".join(ratio_cols) + " |")
    print("| --- | " + " | ".join("---:" for _ in columns + ratio_cols) + " |")
    r2 = lambda x: "—" if x is None else ("%.2f×" % x if x < 10 else "%.0f×" % x if x >= 100 else "%.1f×" % x)
    for row in rows:
        cells = []
        for c in columns:
            v = row["values"].get(c)
            cells.append(("%s (%s)" % (fmt(row["median"][c], row["unit"]), fmt_range(v))) if v else "—")
        cells += [r2(row["preload_speedup_vs_fuse_warm"]), r2(row["preload_speedup_vs_fuse_cold"]),
                  r2(row["vs_tmpfs"].get(PRELOAD))]
        print("| %s | %s |" % (row["workload"], " | ".join(cells)))
    if memory:
        print("| daemon RSS per GiB stored | " + " | ".join(
            ("%.0f MiB/GiB" % memory["rss_mib_per_gib_stored"]) if c == WARM else "—" for c in columns)
            + " | " + " | ".join("—" for _ in ratio_cols) + " |")
    print()
    print("Medians of %d interleaved runs (min–max in brackets), %s, commit %s, %d CPUs (%s), kernel %s, "
          "load average %s at start; FUSE over io_uring %s." % (
              args.runs, started.strftime("%Y-%m-%d %H:%M UTC"), git_commit(), facts["nproc"], facts["cpu"],
              facts["kernel"], " ".join("%.2f" % x for x in facts["loadavg_at_start"]),
              "on" if facts["fuse_over_io_uring"] else "off (fuse.enable_uring)"))
    print("preload vs FUSE = FUSE time / preload time (>1: preload faster); preload / tmpfs = preload time / tmpfs time "
          "(1.0: as fast as tmpfs). Throughputs are inverted accordingly. FUSE cold = drop_caches before every timed run.")
    if memory:
        print("Daemon memory: %(rss_before_mib).0f MiB RSS before, %(rss_stored_mib).0f MiB with %(written_mib)d MiB "
              "stored, %(rss_after_unlink_mib).0f MiB after unlinking it." % memory)
    if per_process:
        print_per_process(per_process, args.per_process, args.runs)
    checks = target_checks(rows) if PRELOAD in columns else []
    door_checks = fuse_checks(rows)
    print_checks("Targets of the preload issue (this run):", "×", checks)
    print_checks("Targets of the plain-mount issue (this run; ratios are FUSE cost over the other column):", "",
                 door_checks)
    for n in notes:
        print("- " + n)

    os.makedirs(args.out, exist_ok=True)
    doc = {"commit": git_commit(), "date": started.isoformat(timespec="seconds"), "machine": facts,
           "args": {k: v for k, v in vars(args).items()}, "columns": columns, "workloads": rows,
           "daemon_memory": memory,
           "per_process_us": per_process and {"base_us": per_process[1],
                                              "rows": [{"what": r[0], "wall": r[1], "wall_min": r[2], "wall_max": r[3],
                                                        "process_cpu": r[4], "daemon_cpu": r[5]}
                                                       for r in per_process[0]]}, "daemon_stats_after_run": daemon_stats,
           "targets": [{"target": d, "value": v, "met": ok} for d, v, ok in checks + door_checks], "notes": notes}
    out_json = os.path.join(args.out, "results.json")
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
    log("wrote %s" % out_json)
    if not args.no_plot and rows:
        png = os.path.join(args.out, "ratios.png")
        subtitle = "%s · commit %s · %d CPUs (%s) · kernel %s · medians of %d runs" % (
            started.strftime("%Y-%m-%d %H:%M UTC"), git_commit(), facts["nproc"], facts["cpu"],
            facts["kernel"], args.runs)
        why = plot(png, rows, columns, subtitle)
        log(why or "wrote %s" % png)
    m.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
