#!/usr/bin/env python3
"""bench-fs.py — btfuse vs tmpfs vs a stock FUSE filesystem (bindfs), one run.

Measures, on each target, medians over --runs repetitions:
  stat                  µs per stat() (C loop over 1000 files)
  open+read4K+close     µs per open/read 4 KiB/close (C loop over 1000 files)
  readdir 500           µs per opendir+readdir(all 500)+closedir (C loop)
  find -size +0 10k     ms for `find DIR -size +0` over 10 000 files (100 dirs)
  seq write 512 MiB     MB/s, dd bs=1M (conv=fsync with --fsync)
  seq read 512 MiB      MB/s, dd bs=1M
  cat small x500        ms for 500 `cat` processes of a 100-byte file

Targets (columns): tmpfs; btfuse FUSE mount warm (caches primed) and cold
(`echo 2 > /proc/sys/vm/drop_caches` before each timed run); bindfs over a
tmpfs, warm and cold (apt-get installs bindfs if missing; --no-bindfs skips);
and with --preload PATH, the same btfuse mount with LD_PRELOAD=PATH in every
measured program's environment (skipped with a note if PATH is absent).

Ratios are target time / tmpfs time (for throughputs: tmpfs MB/s / target
MB/s), so 1.0 = as fast as tmpfs, higher = slower. Absolute numbers are only
comparable within one run (shared, noisy machine).

Every mount this script makes is unmounted on any exit (normal, exception,
SIGINT/SIGTERM); the btfuse daemon child is terminated.

Needs root (mounting, drop_caches), gcc, python3 stdlib only.

Examples:
  cargo build --release && sudo benches/bench-fs.py
  benches/bench-fs.py --quick --btfuse target/debug/btfuse
  benches/bench-fs.py --preload target/release/libbtfuse.so
"""

import argparse
import atexit
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

C_HELPER = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* usage: bfhelper stat|openread DIR NFILES ROUNDS
          bfhelper readdir DIR - ROUNDS
   prints one line per round: nanoseconds per operation */
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage\n"); return 2; }
    const char *mode = argv[1], *dir = argv[2];
    int n = atoi(argv[3]), rounds = atoi(argv[4]);
    char path[4096], buf[4096];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        long ops = 0;
        if (!strcmp(mode, "stat")) {
            struct stat st;
            for (int i = 0; i < n; i++) {
                snprintf(path, sizeof path, "%s/f%04d", dir, i);
                if (stat(path, &st) != 0) { perror(path); return 1; }
                ops++;
            }
        } else if (!strcmp(mode, "openread")) {
            for (int i = 0; i < n; i++) {
                snprintf(path, sizeof path, "%s/f%04d", dir, i);
                int fd = open(path, O_RDONLY);
                if (fd < 0) { perror(path); return 1; }
                if (read(fd, buf, sizeof buf) != 4096) { perror("read"); return 1; }
                close(fd);
                ops++;
            }
        } else if (!strcmp(mode, "readdir")) {
            for (int k = 0; k < 20; k++) {
                DIR *d = opendir(dir);
                if (!d) { perror(dir); return 1; }
                int c = 0;
                while (readdir(d)) c++;
                closedir(d);
                if (c != 502) { fprintf(stderr, "readdir: %d entries\n", c); return 1; }
                ops++;
            }
        } else { fprintf(stderr, "bad mode\n"); return 2; }
        printf("%.1f\n", (now_ns() - t0) / ops);
    }
    return 0;
}
"""


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, env=None, check=True, **kw):
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(map(str, cmd)), r.returncode, r.stderr.strip()))
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
        log("signal %d: cleaning up" % signum)
        self.cleanup()
        sys.exit(128 + signum)

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
        p = self.dir(name)
        args = [binary, "mount", p, "--size", size]
        if threads:
            args += ["--threads", str(threads)]
        logf = open(os.path.join(self.base, name + ".log"), "w")
        child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        self.children.append(child)
        self.mounts.append(p)
        self.wait_mounted(p, "fuse", child)
        return p

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


def populate(root, seq_mb):
    """Test data under root (same on every target)."""
    ops = os.path.join(root, "ops")
    os.mkdir(ops)
    block = b"b" * 4096
    for i in range(1000):
        with open(os.path.join(ops, "f%04d" % i), "wb") as f:
            f.write(block)
    rd = os.path.join(root, "rd500")
    os.mkdir(rd)
    for i in range(500):
        open(os.path.join(rd, "e%03d" % i), "wb").close()
    tree = os.path.join(root, "tree")
    os.mkdir(tree)
    for d in range(100):
        dd = os.path.join(tree, "d%02d" % d)
        os.mkdir(dd)
        for i in range(100):
            with open(os.path.join(dd, "f%02d" % i), "wb") as f:
                if i % 2:
                    f.write(b"x")
    with open(os.path.join(root, "small"), "wb") as f:
        f.write(b"s" * 100)


def measure(target, helper, args):
    """Returns {op: (value, unit, higher_is_better)} for one target."""
    root, env, cold = target["root"], target["env"], target["cold"]
    runs = args.runs
    res = {}

    def prep():
        if cold:
            drop_caches()

    def c_loop(mode, d, n):
        vals = []
        for _ in range(runs):
            prep()
            # cold: the first pass after drop_caches; warm: second pass
            out = run([helper, mode, d, str(n), "1" if cold else "2"], env=env).stdout.split()
            vals.append(float(out[-1 if not cold else 0]) / 1000.0)
        return statistics.median(vals)

    res["stat"] = (c_loop("stat", os.path.join(root, "ops"), 1000), "µs", False)
    res["open+read4K+close"] = (c_loop("openread", os.path.join(root, "ops"), 1000), "µs", False)
    res["readdir 500"] = (c_loop("readdir", os.path.join(root, "rd500"), "-"), "µs", False)

    vals = []
    tree = os.path.join(root, "tree")
    if not cold:
        run(["find", tree, "-size", "+0"], env=env)
    for _ in range(runs):
        prep()
        t0 = time.perf_counter()
        out = run(["find", tree, "-size", "+0"], env=env).stdout
        vals.append((time.perf_counter() - t0) * 1000)
        # 5000 non-empty files, plus directories whose st_size is > 0
        if not 5000 <= out.count("\n") <= 5101:
            raise RuntimeError("find on %s returned %d lines" % (tree, out.count("\n")))
    res["find -size +0 (10k files)"] = (statistics.median(vals), "ms", False)

    big = os.path.join(root, "seq.bin")
    mb = args.seq_mb
    wv, rv = [], []
    for _ in range(runs):
        prep()
        conv = ["conv=fsync"] if args.fsync else []
        t0 = time.perf_counter()
        run(["dd", "if=/dev/zero", "of=" + big, "bs=1M", "count=%d" % mb, "status=none"] + conv, env=env)
        wv.append(mb / (time.perf_counter() - t0))
        if cold:
            drop_caches()
        t0 = time.perf_counter()
        run(["dd", "if=" + big, "of=/dev/null", "bs=1M", "status=none"], env=env)
        rv.append(mb / (time.perf_counter() - t0))
        os.unlink(big)
    res["seq write %d MiB" % mb] = (statistics.median(wv) * 1.048576, "MB/s", True)
    res["seq read %d MiB" % mb] = (statistics.median(rv) * 1.048576, "MB/s", True)

    small = os.path.join(root, "small")
    loop = 'for i in $(seq %d); do cat "$1"; done > /dev/null' % args.cats
    vals = []
    for _ in range(runs):
        prep()
        t0 = time.perf_counter()
        run(["bash", "-c", loop, "bench", small], env=env)
        vals.append((time.perf_counter() - t0) * 1000)
    res["cat small x%d" % args.cats] = (statistics.median(vals), "ms", False)
    return res


def ensure_bindfs():
    if shutil.which("bindfs"):
        return True
    log("bindfs not found: installing with apt-get")
    r = subprocess.run(["apt-get", "install", "-y", "-q", "bindfs"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = subprocess.run(["apt-get", "install", "-y", "-q", "bindfs"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or not shutil.which("bindfs"):
        log("could not install bindfs: %s" % r.stderr.strip()[-300:])
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
    if unit == "MB/s":
        return "%.0f MB/s" % v
    if v >= 100:
        return "%.0f %s" % (v, unit)
    if v >= 10:
        return "%.1f %s" % (v, unit)
    return "%.2f %s" % (v, unit)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--btfuse", help="btfuse binary (default: target/{release,debug}/btfuse)")
    ap.add_argument("--preload", help="libbtfuse.so: adds a 'btfuse preload' column (skipped if absent)")
    ap.add_argument("--no-bindfs", action="store_true", help="skip the bindfs columns")
    ap.add_argument("--no-btfuse", action="store_true", help="skip the btfuse columns")
    ap.add_argument("--runs", type=int, default=5, help="repetitions per measurement (median)")
    ap.add_argument("--seq-mb", type=int, default=512, help="size of the sequential write/read")
    ap.add_argument("--cats", type=int, default=500, help="number of cat processes")
    ap.add_argument("--fsync", action="store_true", help="dd conv=fsync on the sequential write")
    ap.add_argument("--threads", type=int, default=0, help="btfuse --threads")
    ap.add_argument("--quick", action="store_true", help="3 runs, 64 MiB, 100 cats (smoke test)")
    ap.add_argument("--json", help="also write raw results as JSON to this file")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.seq_mb, args.cats = 3, 64, 100
    if os.geteuid() != 0:
        ap.error("must run as root (mounts, drop_caches)")

    m = Mounts()
    helper = os.path.join(m.base, "bfhelper")
    with open(helper + ".c", "w") as f:
        f.write(C_HELPER)
    run(["gcc", "-O2", "-o", helper, helper + ".c"])
    size = "%dM" % (args.seq_mb + 1024)

    targets = []  # (column name, dict)
    base_env = dict(os.environ, LC_ALL="C")
    base_env.pop("LD_PRELOAD", None)

    t = m.tmpfs("tmpfs", size)
    populate(t, args.seq_mb)
    targets.append(("tmpfs", {"root": t, "env": base_env, "cold": False}))

    notes = []
    if not args.no_btfuse:
        b = find_btfuse(args.btfuse)
        if b and os.path.exists(b):
            p = m.btfuse("btfuse", b, size, args.threads)
            populate(p, args.seq_mb)
            targets.append(("btfuse FUSE warm", {"root": p, "env": base_env, "cold": False}))
            targets.append(("btfuse FUSE cold", {"root": p, "env": base_env, "cold": True}))
            if args.preload:
                lib = os.path.abspath(args.preload)
                if os.path.exists(lib):
                    penv = dict(base_env, LD_PRELOAD=lib)
                    targets.append(("btfuse preload", {"root": p, "env": penv, "cold": False}))
                else:
                    notes.append("preload column skipped: %s does not exist" % lib)
            notes.append("btfuse binary: %s" % b)
        else:
            notes.append("btfuse columns skipped: no btfuse binary (build it, or pass --btfuse)")
    if not args.no_bindfs:
        if ensure_bindfs():
            src = m.tmpfs("bind_src", size)
            bp = m.bindfs("bindfs", src)
            populate(bp, args.seq_mb)
            targets.append(("bindfs warm", {"root": bp, "env": base_env, "cold": False}))
            targets.append(("bindfs cold", {"root": bp, "env": base_env, "cold": True}))
        else:
            notes.append("bindfs columns skipped: bindfs unavailable")

    results = {}
    for name, tg in targets:
        log("measuring %s ..." % name)
        try:
            results[name] = measure(tg, helper, args)
        except Exception as e:  # one broken target must not lose the others
            notes.append("%s failed: %s" % (name, e))
            log("  failed: %s" % e)

    names = [n for n, _ in targets if n in results]
    ref = results.get("tmpfs")
    ops = list(ref.keys()) if ref else []
    print("| operation | " + " | ".join(names) + " |")
    print("| --- | " + " | ".join("---" for _ in names) + " |")
    for op in ops:
        cells = []
        rv, unit, hib = ref[op]
        for n in names:
            v, _, _ = results[n][op]
            if n == "tmpfs":
                cells.append(fmt(v, unit))
            else:
                ratio = (rv / v) if hib else (v / rv)
                cells.append("%s (%.1f×)" % (fmt(v, unit), ratio))
        print("| %s | %s |" % (op, " | ".join(cells)))
    print()
    print("Medians of %d runs; (N×) = target time / tmpfs time (throughput: tmpfs MB/s / target MB/s); "
          "cold = drop_caches before every timed run (per-op loops: first pass; warm: second pass)." % args.runs)
    for n in notes:
        print("- " + n)
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump({n: {op: v[0] for op, v in r.items()} for n, r in results.items()}, f, indent=1)
    m.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
