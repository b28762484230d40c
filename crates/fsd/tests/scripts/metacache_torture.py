#!/usr/bin/python3
"""One process of the metadata-cache torture test (tests/metacache.rs).

    metacache_torture.py ROOT writer   steps on stdin ("K"), "done K" on stdout
    metacache_torture.py ROOT checker  checks on stdin ("K"), "ok K" or "FAIL ..."
    metacache_torture.py ROOT free     runs until ROOT/t/stop exists, then "ok N"

Version K of the tree (the writer makes K from K-1, one call at a time):
  t/d/obj.vK        the one obj.* name (renamed from obj.v(K-1))
  t/d/mode          permission bits mode(K)
  t/d/size          K bytes long (truncate)
  t/d/eK            the one e* name (created, then e(K-1) unlinked)
  t/pN/x            parent directory renamed from p(N-1) at every step K
                    that is a multiple of 4 (N: their count, `every(K, 0)`)
  t/g/y             t/g is 0755 for even N, 0700 (root only) for odd N
  security.k        an xattr of t/d/size holding K for odd K, none for even K
  t/h1/hf, t/h2/hf  one file with two names, every(K, 1) bytes long
                    (truncated through h1 at the steps K = 1 mod 4)
  t/o/w             K bytes long: the only change in t/o
  t/l               a symlink to lA (even every(K, 2)) or lB (odd), replaced
                    at the steps K = 2 mod 4 by a rename over it (to lB) or
                    an unlink and a new symlink (to lA); t/lA/z is 1 byte
                    long, t/lB/z 2
  t/mN/q            a file moved between t/m1 (even K) and t/m2 (odd K)

Every change in t/d, t/o and t/m* touches one or two directories' listings
and one file's attributes, so a cached answer about another directory
outlives it (the store's change log); a moved directory, a directory's
permissions, a file with two names and a symlink replaced reach further
and void everything. Steps K = 3 mod 4 make only changes of the first kind:
what a process cached at K-1 is then still partly current, and must still
never be stale.

A checker is told K only after the writer's calls for K returned: every
call it makes must then see version K exactly (no cached answer of K-1),
through paths, a directory fd held across versions, listings and reads,
as root or as a user whose search permission on t/g comes and goes. It
asks each question twice: the first answer is the daemon's or a cached
one made stale by the change, the second one is usually cached.

A free reader never waits: it stats and lists as fast as it can and
checks that versions never go back, and that when t/d/size says K the
rename to obj.vK (made earlier in the same step) is already visible.
"""
import errno
import os
import sys

ROOT = sys.argv[1]
ROLE = sys.argv[2]
T = os.path.join(ROOT, "t")
D = os.path.join(T, "d")


def mode(k):
    return 0o400 | (k % 64)


def every(k, r):
    """How many of the steps 1..k are r modulo 4."""
    return sum(1 for j in range(1, k + 1) if j % 4 == r)


def setup():
    os.makedirs(D)
    os.chmod(T, 0o755)
    os.chmod(D, 0o755)
    open(os.path.join(D, "obj.v0"), "w").close()
    open(os.path.join(D, "mode"), "w").close()
    os.chmod(os.path.join(D, "mode"), mode(0))
    open(os.path.join(D, "size"), "w").close()
    os.chmod(os.path.join(D, "size"), 0o644)
    open(os.path.join(D, "e0"), "w").close()
    os.makedirs(os.path.join(T, "p0"))
    open(os.path.join(T, "p0", "x"), "w").close()
    os.makedirs(os.path.join(T, "g"))
    os.chmod(os.path.join(T, "g"), 0o755)
    open(os.path.join(T, "g", "y"), "w").close()
    for d in ("h1", "h2", "o", "lA", "lB", "m1", "m2"):
        os.makedirs(os.path.join(T, d))
        os.chmod(os.path.join(T, d), 0o755)
    open(os.path.join(T, "h1", "hf"), "w").close()
    os.link(os.path.join(T, "h1", "hf"), os.path.join(T, "h2", "hf"))
    for f, n in (("h1/hf", 0), ("o/w", 0), ("lA/z", 1), ("lB/z", 2), ("m1/q", 0)):
        with open(os.path.join(T, f), "wb") as out:
            out.write(b"x" * n)
        os.chmod(os.path.join(T, f), 0o644)
    os.symlink("lA", os.path.join(T, "l"))


def step(k):
    os.rename(os.path.join(D, f"obj.v{k-1}"), os.path.join(D, f"obj.v{k}"))
    os.chmod(os.path.join(D, "mode"), mode(k))
    os.truncate(os.path.join(D, "size"), k)
    open(os.path.join(D, f"e{k}"), "w").close()
    os.unlink(os.path.join(D, f"e{k-1}"))
    if k % 4 == 0:
        n = every(k, 0)
        os.rename(os.path.join(T, f"p{n-1}"), os.path.join(T, f"p{n}"))
        os.chmod(os.path.join(T, "g"), 0o755 if n % 2 == 0 else 0o700)
    if k % 2:
        os.setxattr(os.path.join(D, "size"), "security.k", str(k).encode())
    else:
        os.removexattr(os.path.join(D, "size"), "security.k")
    if k % 4 == 1:
        os.truncate(os.path.join(T, "h1", "hf"), every(k, 1))
    os.truncate(os.path.join(T, "o", "w"), k)
    link = os.path.join(T, "l")
    if k % 4 == 2 and every(k, 2) % 2:
        os.symlink("lB", link + ".new")
        os.rename(link + ".new", link)
    elif k % 4 == 2:
        os.unlink(link)
        os.symlink("lA", link)
    src, dst = ("m1", "m2") if k % 2 else ("m2", "m1")
    os.rename(os.path.join(T, src, "q"), os.path.join(T, dst, "q"))


def exists(path, **kw):
    try:
        os.stat(path, **kw)
        return True
    except FileNotFoundError:
        return False


def check(k, dfd, errs):
    def want(cond, what):
        if not cond:
            errs.append(what)

    want(exists(os.path.join(D, f"obj.v{k}")), f"stat obj.v{k}: missing")
    if k > 0:
        want(not exists(os.path.join(D, f"obj.v{k-1}")), f"stat obj.v{k-1}: still there")
        want(
            not exists(f"obj.v{k-1}", dir_fd=dfd, follow_symlinks=False),
            f"fstatat(dirfd, obj.v{k-1}): still there",
        )
    want(
        exists(f"obj.v{k}", dir_fd=dfd, follow_symlinks=False),
        f"fstatat(dirfd, obj.v{k}): missing",
    )
    m = os.stat(os.path.join(D, "mode")).st_mode & 0o777
    want(m == mode(k), f"mode {m:o}, want {mode(k):o}")
    s = os.stat(os.path.join(D, "size")).st_size
    want(s == k, f"size {s}, want {k}")
    s = os.stat("size", dir_fd=dfd, follow_symlinks=False).st_size
    want(s == k, f"fstatat size {s}, want {k}")
    fd = os.open(os.path.join(D, "size"), os.O_RDONLY)
    try:
        want(os.fstat(fd).st_size == k, "fstat size")
        n = len(os.read(fd, 1 << 20))
        want(n == k, f"read {n} bytes, want {k}")
    finally:
        os.close(fd)
    names = set(os.listdir(D))
    want(f"e{k}" in names, f"listing lacks e{k}")
    want(k == 0 or f"e{k-1}" not in names, f"listing still has e{k-1}")
    objs = sorted(n for n in names if n.startswith("obj."))
    want(objs == [f"obj.v{k}"], f"listing has {objs}")
    # Listing through the held fd, then fstatat on each name (readdirplus).
    for n in os.listdir(dfd):
        want(exists(n, dir_fd=dfd, follow_symlinks=False), f"listed {n} but fstatat fails")
    n = every(k, 0)
    want(exists(os.path.join(T, f"p{n}", "x")), f"p{n}/x missing")
    want(n == 0 or not exists(os.path.join(T, f"p{n-1}", "x")), f"p{n-1}/x still there")
    try:
        os.stat(os.path.join(T, "g", "y"))
        seen = True
    except PermissionError:
        seen = False
    allowed = os.geteuid() == 0 or n % 2 == 0
    want(seen == allowed, f"g/y visible={seen}, want {allowed}")
    try:
        x = os.getxattr(os.path.join(D, "size"), "security.k").decode()
    except OSError as e:
        x = None if e.errno == errno.ENODATA else f"errno {e.errno}"
    want(x == (str(k) if k % 2 else None), f"security.k is {x!r} at {k}")
    for d, name, size in (("h2", "hf", every(k, 1)), ("o", "w", k)):
        path = os.path.join(T, d, name)
        s = os.stat(path).st_size
        want(s == size, f"{d}/{name} size {s}, want {size}")
        fd = os.open(os.path.join(T, d), os.O_RDONLY | os.O_DIRECTORY)
        try:
            # A listing (with attributes once the process asked for them)
            # and a stat of each name through it.
            for n in os.listdir(fd):
                s = os.stat(n, dir_fd=fd, follow_symlinks=False).st_size
                want(s == size, f"fstatat({d}, {n}) size {s}, want {size}")
        finally:
            os.close(fd)
    # Listed through the symlink (after the first stat: what a listing of
    # the previous version left must not answer it): its directory is then
    # known by the path.
    for listed in (False, True):
        if listed:
            want(os.listdir(os.path.join(T, "l")) == ["z"], "listing of l")
        s = os.stat(os.path.join(T, "l", "z")).st_size
        want(s == (2 if every(k, 2) % 2 else 1), f"l/z size {s} at {k}: the old symlink")
    at, gone = ("m2", "m1") if k % 2 else ("m1", "m2")
    want(exists(os.path.join(T, at, "q")), f"{at}/q missing")
    want(not exists(os.path.join(T, gone, "q")), f"{gone}/q still there")
    want("q" in os.listdir(os.path.join(T, at)), f"listing of {at} lacks q")


def obj_version(names):
    objs = [n for n in names if n.startswith("obj.v")]
    if len(objs) != 1:
        return None, objs
    return int(objs[0][5:]), objs


def free():
    best_size = 0
    best_obj = 0
    n = 0
    stop = os.path.join(T, "stop")
    dfd = os.open(D, os.O_RDONLY | os.O_DIRECTORY)
    while True:
        n += 1
        if n % 64 == 0 and exists(stop):
            print(f"ok {n}", flush=True)
            return
        size = os.stat(os.path.join(D, "size")).st_size
        if size < best_size:
            print(f"FAIL size went back from {best_size} to {size}", flush=True)
            return
        best_size = size
        v, objs = obj_version(os.listdir(dfd) if n % 2 else os.listdir(D))
        if v is None:
            print(f"FAIL listing has {objs}", flush=True)
            return
        if v < best_obj or v < size:
            print(f"FAIL obj.v{v} seen after obj.v{best_obj} / size {size}", flush=True)
            return
        best_obj = v
        if not exists(f"obj.v{v}", dir_fd=dfd, follow_symlinks=False) and exists(
            os.path.join(D, f"obj.v{v-1}")
        ):
            print(f"FAIL obj.v{v-1} back after obj.v{v}", flush=True)
            return


def main():
    if ROLE == "setup":
        setup()
        print("ok", flush=True)
    elif ROLE == "writer":
        for line in sys.stdin:
            k = int(line)
            step(k)
            print(f"done {k}", flush=True)
    elif ROLE == "checker":
        dfd = os.open(D, os.O_RDONLY | os.O_DIRECTORY)
        for line in sys.stdin:
            k = int(line)
            errs = []
            check(k, dfd, errs)
            check(k, dfd, errs)
            if errs:
                print(f"FAIL at {k}: " + "; ".join(errs), flush=True)
            else:
                print(f"ok {k}", flush=True)
    elif ROLE == "free":
        free()


main()
