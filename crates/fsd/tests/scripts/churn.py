#!/usr/bin/env python3
"""Concurrency workload for btfuse.

    churn.py prepare ROOT           # shared dirs + STABLE long-named entries
    churn.py worker ROOT ID N       # create/rename/delete churn, deterministic survivors
    churn.py reader ROOT STOPFILE   # list dirs until STOPFILE exists; check invariants
    churn.py expect ROOT WORKERS N  # print the expected final tree (sorted)
    churn.py tree ROOT              # print the actual final tree (sorted)

Worker ID, iteration i (all in the shared dirs a/ and b/):
  create a/w{ID}_{i} (content "ID:i"), rename it to b/w{ID}_{i};
  i % 3 == 0: unlink it;
  i % 5 == 0 (and not deleted): rename it back to a/w{ID}_{i}.r;
  i % 7 == 0: mkdir a/d{ID}_{i}, create a file in it, rename the dir to
              b/d{ID}_{i}; i % 14 == 0: remove it again.
  every 10th i: rename a/slot{ID} <-> b/slot{ID} (RENAME_EXCHANGE is not
  needed: a plain rename moves it back and forth, it ends where parity says).

The reader lists a/ and b/ repeatedly: a listing must never hold a name
twice, and must always contain every STABLE name (never touched by anyone),
which proves readdir neither duplicates nor skips entries while others change.
"""
import os
import sys
import time

STABLE = 300  # long names: several FUSE readdir pages per listing


def stable_names():
    return ["stable_%04d_%s" % (k, "x" * 40) for k in range(STABLE)]


def prepare(root):
    for d in ("a", "b"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
        for n in stable_names():
            open(os.path.join(root, d, n), "w").close()


def final_names(wid, n):
    a, b = [], []
    for i in range(n):
        name = "w%d_%d" % (wid, i)
        if i % 3 != 0:
            if i % 5 == 0:
                a.append(name + ".r")
            else:
                b.append(name)
        if i % 7 == 0 and i % 14 != 0:
            b.append("d%d_%d/" % (wid, i))
            b.append("d%d_%d/inner" % (wid, i))
    moves = len(range(0, n, 10))
    (b if moves % 2 == 1 else a).append("slot%d" % wid)
    return a, b


def worker(root, wid, n):
    os.chdir(root)
    open("a/slot%d" % wid, "w").close()
    slot_in_a = True
    for i in range(n):
        name = "w%d_%d" % (wid, i)
        with open("a/" + name, "w") as f:
            f.write("%d:%d" % (wid, i))
        os.rename("a/" + name, "b/" + name)
        if i % 3 == 0:
            os.unlink("b/" + name)
        elif i % 5 == 0:
            os.rename("b/" + name, "a/" + name + ".r")
        if i % 7 == 0:
            d = "d%d_%d" % (wid, i)
            os.mkdir("a/" + d)
            open("a/%s/inner" % d, "w").close()
            os.rename("a/" + d, "b/" + d)
            if i % 14 == 0:
                os.unlink("b/%s/inner" % d)
                os.rmdir("b/" + d)
        if i % 10 == 0:
            src, dst = ("a", "b") if slot_in_a else ("b", "a")
            os.rename("%s/slot%d" % (src, wid), "%s/slot%d" % (dst, wid))
            slot_in_a = not slot_in_a


def reader(root, stop):
    stable = set(stable_names())
    listings = 0
    bad = 0
    deadline = time.time() + 120
    while not os.path.exists(stop) and time.time() < deadline:
        for d in ("a", "b"):
            names = os.listdir(os.path.join(root, d))
            listings += 1
            if len(names) != len(set(names)):
                dup = sorted({x for x in names if names.count(x) > 1})[:5]
                print("DUPLICATE in %s: %s" % (d, dup))
                bad += 1
            missing = stable - set(names)
            if missing:
                print("SKIPPED stable entries in %s: %d, e.g. %s" % (d, len(missing), sorted(missing)[:3]))
                bad += 1
            if bad > 20:
                break
    print("listings %d bad %d" % (listings, bad))
    return 1 if bad or listings < 4 else 0


def expect(root, workers, n):
    out = []
    for d in ("a", "b"):
        out += ["%s/%s" % (d, s) for s in stable_names()]
    for w in range(workers):
        a, b = final_names(w, n)
        out += ["a/" + x for x in a] + ["b/" + x for x in b]
    for x in sorted(out):
        print(x)


def tree(root):
    out = []
    for d in ("a", "b"):
        for n in os.listdir(os.path.join(root, d)):
            p = os.path.join(root, d, n)
            if os.path.isdir(p) and not os.path.islink(p):
                out.append("%s/%s/" % (d, n))
                out += ["%s/%s/%s" % (d, n, x) for x in os.listdir(p)]
            else:
                out.append("%s/%s" % (d, n))
    for x in sorted(out):
        print(x)


def main(a):
    cmd = a[1]
    if cmd == "prepare":
        prepare(a[2])
    elif cmd == "worker":
        worker(a[2], int(a[3]), int(a[4]))
    elif cmd == "reader":
        return reader(a[2], a[3])
    elif cmd == "expect":
        expect(a[2], int(a[3]), int(a[4]))
    elif cmd == "tree":
        tree(a[2])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
