#!/usr/bin/env python3
"""Soak worker for reliability.rs.

    rel_soak.py ROOT WORKER THREADS SECONDS SEED

Each thread owns ROOT/w<WORKER>_<t>/ and does random mixed operations
(create, overwrite, append, pwrite, truncate, rename, unlink, mkdir, rmdir,
hard link, read-back verify, listdir-vs-model check) for SECONDS, keeping an
exact model of its directory. Every thread also reads the shared read-only
file ROOT/shared (must never change). At the end it prints one line per
surviving path: "path<TAB>size<TAB>sha256" (dirs: "path/<TAB>dir"), then
"OPS <count>". Exits non-zero on any mismatch.
"""
import hashlib
import os
import random
import sys
import threading
import time

root, wid, nthreads, secs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
shared = open(os.path.join(root, "shared"), "rb").read()
results = {}
ops_total = [0]
lock = threading.Lock()
errors = []


def run(t):
    rnd = random.Random(seed * 1000 + wid * 10 + t)
    name = "w%d_%d" % (wid, t)
    d = os.path.join(root, name)
    os.mkdir(d)
    model = {}  # rel name -> bytes (files) ; dirs in dirs set
    dirs = set()
    ops = 0
    end = time.time() + secs
    try:
        while time.time() < end:
            op = rnd.randrange(12)
            files = sorted(model)
            if op <= 2 or not files:  # create / overwrite
                n = "f%d" % rnd.randrange(40)
                if dirs and rnd.random() < 0.3:
                    n = rnd.choice(sorted(dirs)) + "/" + n
                data = os.urandom(rnd.choice([0, 1, 100, 4095, 4096, 4097, 70000, 300000]))
                with open(os.path.join(d, n), "wb") as f:
                    f.write(data)
                model[n] = data
            elif op == 3:  # append
                n = rnd.choice(files)
                data = os.urandom(rnd.randrange(1, 9000))
                with open(os.path.join(d, n), "ab") as f:
                    f.write(data)
                model[n] += data
            elif op == 4:  # pwrite in the middle / past the end
                n = rnd.choice(files)
                off = rnd.randrange(len(model[n]) + 5000)
                data = os.urandom(rnd.randrange(1, 5000))
                fd = os.open(os.path.join(d, n), os.O_WRONLY)
                os.pwrite(fd, data, off)
                os.close(fd)
                old = model[n]
                if off > len(old):
                    old = old + b"\0" * (off - len(old))
                model[n] = old[:off] + data + old[off + len(data):]
            elif op == 5:  # truncate
                n = rnd.choice(files)
                size = rnd.randrange(len(model[n]) + 10000)
                os.truncate(os.path.join(d, n), size)
                old = model[n]
                model[n] = old[:size] + b"\0" * max(0, size - len(old))
            elif op == 6:  # rename (maybe over an existing name)
                a = rnd.choice(files)
                b = "r%d" % rnd.randrange(40)
                if b in dirs:
                    continue
                os.rename(os.path.join(d, a), os.path.join(d, b))
                model[b] = model.pop(a)
            elif op == 7:  # unlink
                n = rnd.choice(files)
                os.unlink(os.path.join(d, n))
                del model[n]
            elif op == 8:  # mkdir / rmdir
                n = "d%d" % rnd.randrange(5)
                p = os.path.join(d, n)
                if n in dirs:
                    if not any(k.startswith(n + "/") for k in model):
                        os.rmdir(p)
                        dirs.discard(n)
                else:
                    os.mkdir(p)
                    dirs.add(n)
            elif op == 9:  # hard link (a copy in the model: data is shared,
                # so only link names we never write again: use a frozen prefix)
                a = rnd.choice(files)
                b = "h%d" % rnd.randrange(10)
                if b in model:
                    continue
                os.link(os.path.join(d, a), os.path.join(d, b))
                # a later write to one name changes both: break the link by
                # rewriting 'a' only through create (O_TRUNC keeps the inode!)
                # -> simplest exact model: rename b away from sharing by copying
                data = model[a]
                os.unlink(os.path.join(d, b))
                with open(os.path.join(d, b), "wb") as f:
                    f.write(data)
                model[b] = data
            elif op == 10:  # read back and verify
                n = rnd.choice(files)
                with open(os.path.join(d, n), "rb") as f:
                    got = f.read()
                if got != model[n]:
                    raise AssertionError("%s/%s: %d bytes, expected %d" % (name, n, len(got), len(model[n])))
                if os.stat(os.path.join(d, n)).st_size != len(model[n]):
                    raise AssertionError("%s/%s: stat size" % (name, n))
            else:  # listing equals the model, shared file unchanged
                top = sorted(os.listdir(d))
                want = sorted({k.split("/")[0] for k in model} | dirs)
                if top != want:
                    raise AssertionError("%s: listing %s != %s" % (name, top, want))
                with open(os.path.join(root, "shared"), "rb") as f:
                    if f.read() != shared:
                        raise AssertionError("shared file changed")
            ops += 1
    except Exception as e:  # report, do not hang
        errors.append("%s: %r" % (name, e))
    with lock:
        ops_total[0] += ops
        for k, v in model.items():
            results[name + "/" + k] = v
        for k in dirs:
            results[name + "/" + k + "/"] = None


threads = [threading.Thread(target=run, args=(t,)) for t in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for k in sorted(results):
    v = results[k]
    if v is None:
        print("%s\tdir" % k)
    else:
        print("%s\t%d\t%s" % (k, len(v), hashlib.sha256(v).hexdigest()))
print("OPS %d" % ops_total[0])
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
