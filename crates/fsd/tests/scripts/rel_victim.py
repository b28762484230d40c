#!/usr/bin/env python3
"""A fast-path client meant to be SIGKILLed at a random point (reliability.rs).

    rel_victim.py DIR SEED

Two threads (so the process holds several channels) loop over mixed
operations in DIR/<pid>: create, write, read back, keep some files open
after unlinking them (their blocks must be freed when the process dies),
rename, list, stat, mkdir/rmdir, truncate. Runs until killed (or 30 s).
"""
import os
import random
import sys
import threading
import time

base, seed = sys.argv[1], int(sys.argv[2])
me = os.path.join(base, str(os.getpid()))
os.makedirs(me, exist_ok=True)
held = []  # fds of unlinked files, kept open on purpose
end = time.time() + 30


def work(tid):
    rnd = random.Random(seed * 31 + tid)
    d = os.path.join(me, "t%d" % tid)
    os.makedirs(d, exist_ok=True)
    i = 0
    while time.time() < end:
        f = os.path.join(d, "f%d" % (i % 8))
        data = bytes([i & 0xFF]) * rnd.randrange(1, 300_000)
        fd = os.open(f, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
        os.write(fd, data)
        assert os.pread(fd, 16, 0) == data[:16]
        if rnd.random() < 0.3:
            os.unlink(f)
            held.append(fd)  # unlinked but open: freed only when we die
        else:
            os.close(fd)
            if rnd.random() < 0.3:
                os.rename(f, f + ".r")
        os.listdir(d)
        os.stat(d)
        sub = os.path.join(d, "sub%d" % i)
        os.mkdir(sub)
        os.rmdir(sub)
        i += 1


threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
