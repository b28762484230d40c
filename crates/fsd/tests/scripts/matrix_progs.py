#!/usr/bin/python3
"""Programs of the preload matrix (stdlib only). Output is deterministic.

    matrix_progs.py setup-make ROOT     # a small C project under ROOT/mk
    matrix_progs.py setup-diff ROOT     # two similar trees ROOT/t1, ROOT/t2
    matrix_progs.py lock ROOT           # record locks across two processes
    matrix_progs.py threads ROOT [N M]  # N threads x M files, verified
    matrix_progs.py forkwrite ROOT      # parent and child write to one fd
    matrix_progs.py setup-tree ROOT     # a tree for cat/ls/find/tar/cp
"""
import fcntl
import hashlib
import os
import select
import subprocess
import sys
import threading
import time

OLD = 1_000_000_000


def w(path, data, mtime=OLD):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.utime(path, (mtime, mtime))


def setup_make(root):
    mk = os.path.join(root, "mk")
    w(os.path.join(mk, "inc.h"), "#define SCALE 3\nint fa(int); int fb(int); int fc(int);\n")
    w(os.path.join(mk, "a.c"), '#include "inc.h"\nint fa(int x) { return x * SCALE; }\n')
    w(os.path.join(mk, "b.c"), '#include "inc.h"\nint fb(int x) { return x + SCALE; }\n')
    w(os.path.join(mk, "c.c"), "int fc(int x) { return x - 1; }\n")
    w(
        os.path.join(mk, "main.c"),
        '#include <stdio.h>\n#include "inc.h"\n'
        'int main(void) { printf("fa=%d fb=%d fc=%d\\n", fa(2), fb(2), fc(2)); return 0; }\n',
    )
    w(
        os.path.join(mk, "Makefile"),
        "OBJS = main.o a.o b.o c.o\n"
        "prog: $(OBJS)\n\tgcc -o prog $(OBJS)\n"
        "main.o: main.c inc.h\n\tgcc -c -o main.o main.c\n"
        "a.o: a.c inc.h\n\tgcc -c -o a.o a.c\n"
        "b.o: b.c inc.h\n\tgcc -c -o b.o b.c\n"
        "c.o: c.c\n\tgcc -c -o c.o c.c\n"
        "clean:\n\trm -f prog $(OBJS)\n",
    )


def setup_diff(root):
    for t in ("t1", "t2"):
        for i in range(12):
            body = "".join("line %d of file %d\n" % (k, i) for k in range(40))
            if t == "t2" and i % 4 == 1:
                body = body.replace("line 7 ", "LINE 7 ").replace("line 30 ", "line thirty ")
            w(os.path.join(root, t, "d%d" % (i % 3), "f%d.txt" % i), body)
        w(os.path.join(root, t, "only-in-%s" % t), "x\n")
        w(os.path.join(root, t, "same.bin"), bytes(range(256)) * 64)


def setup_tree(root):
    for i in range(60):
        w(os.path.join(root, "tree", "d%d" % (i % 6), "s%d" % (i % 2), "f%d" % i), ("%d\n" % i) * (i * 37 % 500))
    os.symlink("d0/s0/f0", os.path.join(root, "tree", "link"))


# ---- locking ---------------------------------------------------------------

LOCKER = r"""
import fcntl, os, sys, time
path = sys.argv[1]
fd = os.open(path, os.O_RDWR)
def say(*a):
    print(*a, flush=True)
def attempt(what, fn):
    try:
        fn()
        say(what, "ok")
    except OSError as e:
        say(what, "errno", __import__("errno").errorcode[e.errno])
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "lockf-nb":
        attempt("lockf-nb %s %s" % (cmd[1], cmd[2]), lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(cmd[2]), int(cmd[1])))
    elif cmd[0] == "rdlock-nb":
        attempt("rdlock-nb %s %s" % (cmd[1], cmd[2]), lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, int(cmd[2]), int(cmd[1])))
    elif cmd[0] == "unlock":
        attempt("unlock", lambda: fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0))
    elif cmd[0] == "lockf-block":
        say("blocking")
        fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
        say("acquired")
    elif cmd[0] == "flock-nb":
        attempt("flock-nb", lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
    elif cmd[0] == "flock-un":
        attempt("flock-un", lambda: fcntl.flock(fd, fcntl.LOCK_UN))
    elif cmd[0] == "getlk":
        import struct
        req = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 10, 0)
        r = fcntl.fcntl(fd, fcntl.F_GETLK, req)
        t, wh, st, ln, pid = struct.unpack("hhqqi", r)
        say("getlk type", {fcntl.F_UNLCK: "UNLCK", fcntl.F_WRLCK: "WRLCK", fcntl.F_RDLCK: "RDLCK"}[t], "start", st, "len", ln, "holder-is-parent", pid == int(cmd[1]))
    elif cmd[0] == "write":
        say("write", os.pwrite(fd, cmd[1].encode(), 100))
    elif cmd[0] == "quit":
        break
"""


def lock(root):
    path = os.path.join(root, "lockfile")
    with open(path, "wb") as f:
        f.write(b"\0" * 200)
    fd = os.open(path, os.O_RDWR)
    child = subprocess.Popen(
        [sys.executable, "-c", LOCKER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )

    def ask(cmd, wait=True):
        child.stdin.write(cmd + "\n")
        child.stdin.flush()
        if wait:
            line = child.stdout.readline().strip()
            print("child:", cmd.split()[0], "->", line, flush=True)
            return line

    def quiet(seconds):
        r, _, _ = select.select([child.stdout], [], [], seconds)
        return not r

    me = str(os.getpid())
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)  # bytes 0..9
    print("parent lockf 0..9 ok")
    ask("lockf-nb 0 10")
    ask("lockf-nb 5 1")
    ask("lockf-nb 10 10")  # adjacent range: free
    ask("rdlock-nb 0 1")
    ask("getlk " + me)
    ask("flock-nb")  # flock and POSIX locks are independent on Linux
    ask("flock-un")
    fcntl.flock(fd, fcntl.LOCK_SH)
    print("parent flock SH ok")
    ask("flock-nb")
    fcntl.flock(fd, fcntl.LOCK_UN)
    # Blocking lock: the child waits until the parent unlocks.
    ask("lockf-block 0", wait=False)
    print("child:", child.stdout.readline().strip())
    print("child still blocked after 0.3 s:", quiet(0.3))
    fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
    print("parent unlocked")
    print("child got it within 10 s:", not quiet(10), child.stdout.readline().strip())
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        print("parent relock: ok")
    except OSError as e:
        print("parent relock: errno", e.errno)
    ask("unlock")
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
    print("parent relock after child unlock ok")
    if os.environ.get("MATRIX_LOCK_CLOSE") == "1":
        # POSIX: closing ANY fd of the file releases the process's locks on
        # it (known bug under preload, see matrix.rs).
        other = os.open(path, os.O_RDONLY)
        os.close(other)
        ask("lockf-nb 0 10")
        ask("unlock")
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
    ask("write data")
    ask("quit", wait=False)
    child.stdin.close()
    print("child exit", child.wait(timeout=10))
    with open(path, "rb") as f:
        print("content", hashlib.sha256(f.read()).hexdigest()[:16])


# ---- threads ---------------------------------------------------------------


def threads(root, n=8, m=6):
    d = os.path.join(root, "thr")
    os.makedirs(d, exist_ok=True)
    errors = []

    def content(t, j, gen):
        return (("t%d f%d g%d|" % (t, j, gen)) * (50 + 97 * j + 13 * t)).encode()

    def worker(t):
        try:
            for gen in range(6):
                for j in range(m):
                    p = os.path.join(d, "t%d-f%d" % (t, j))
                    data = content(t, j, gen)
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    half = len(data) // 2
                    os.write(fd, data[:half])
                    os.pwrite(fd, data[half:], half)
                    os.close(fd)
                    with open(p, "rb") as f:
                        if f.read() != data:
                            errors.append("readback %s gen %d" % (p, gen))
                    # read another thread's file: must be one complete generation
                    q = os.path.join(d, "t%d-f%d" % ((t + 1) % n, j))
                    try:
                        fd = os.open(q, os.O_RDONLY)
                        got = b""
                        while True:
                            b = os.read(fd, 1000)
                            if not b:
                                break
                            got += b
                        os.close(fd)
                    except FileNotFoundError:
                        continue
                    # (a concurrent O_TRUNC + rewrite may mix generations
                    # mid-read, on tmpfs too: only the final state is checked)
                # a shared file: each thread writes its own 4 KiB slot
                fd = os.open(os.path.join(d, "shared"), os.O_RDWR | os.O_CREAT, 0o644)
                os.pwrite(fd, (b"%d" % t) * 4096, t * 4096)
                os.close(fd)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("thread %d: %r" % (t, e))

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    print("alive threads:", sum(t.is_alive() for t in ts))
    print("errors:", errors[:5])
    ok = 0
    for t in range(n):
        for j in range(m):
            with open(os.path.join(d, "t%d-f%d" % (t, j)), "rb") as f:
                ok += f.read() == content(t, j, 5)
    print("final files correct: %d/%d" % (ok, n * m))
    with open(os.path.join(d, "shared"), "rb") as f:
        s = f.read()
    print("shared ok:", s == b"".join((b"%d" % t) * 4096 for t in range(n)))
    print("listing:", len(os.listdir(d)))


# ---- fork + write ----------------------------------------------------------


def forkwrite(root, modes=("shared-offset", "append")):
    for mode, flags in (("shared-offset", 0), ("append", os.O_APPEND)):
        if mode not in modes:
            continue
        p = os.path.join(root, "fw-" + mode)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o644)
        os.write(fd, b"header\n")
        pid = os.fork()
        who = "child" if pid == 0 else "parent"
        for i in range(300):
            os.write(fd, ("%s %03d %s\n" % (who, i, "x" * (i % 50))).encode())
        if pid == 0:
            os._exit(0)
        _, st = os.waitpid(pid, 0)
        os.write(fd, b"trailer\n")
        end = os.lseek(fd, 0, os.SEEK_CUR)
        os.close(fd)
        with open(p, "rb") as f:
            data = f.read()
        lines = data.decode().splitlines()
        expect = sorted(
            ["header", "trailer"] + ["%s %03d %s" % (w_, i, "x" * (i % 50)) for w_ in ("parent", "child") for i in range(300)]
        )
        print(mode, "child status", st, "size", len(data), "end offset", end)
        print(mode, "first", lines[0], "last", lines[-1])
        print(mode, "lines as expected (order-insensitive):", sorted(lines) == expect)
        print(mode, "per-writer order kept:", all(
            [l for l in lines if l.startswith(w_)] == ["%s %03d %s" % (w_, i, "x" * (i % 50)) for i in range(300)]
            for w_ in ("parent", "child")
        ))


def main():
    cmd, root = sys.argv[1], sys.argv[2]
    os.umask(0o022)
    if cmd == "setup-make":
        setup_make(root)
    elif cmd == "setup-diff":
        setup_diff(root)
    elif cmd == "setup-tree":
        setup_tree(root)
    elif cmd == "lock":
        lock(root)
    elif cmd == "threads":
        threads(root, *[int(x) for x in sys.argv[3:5]])
    elif cmd == "forkwrite":
        forkwrite(root, *sys.argv[3:4])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
