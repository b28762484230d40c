#!/usr/bin/env python3
"""Permission probe for reliability.rs.

    rel_perms.py setup ROOT      # as root: the tree below
    rel_perms.py probe ROOT      # as an unprivileged uid: one line per attempt

Every attempt prints "op path -> OK[ detail]" or "op path -> ERRNAME", so a
run without the preload library and a run with it can be compared line by
line: the fast path must refuse exactly what the kernel refuses, with the
same errno, and never return data the kernel would not.
"""
import errno
import os
import sys

NOBODY = 65534


def setup(root):
    def mk(p, mode, uid=0, data=None, d=False):
        full = os.path.join(root, p)
        if d:
            os.mkdir(full)
        else:
            with open(full, "wb") as f:
                f.write(data if data is not None else b"data of " + p.encode())
        os.chown(full, uid, uid)
        os.chmod(full, mode)

    mk("secret", 0o600, data=b"root only")
    mk("group", 0o640)
    mk("public", 0o644)
    mk("pubw", 0o666)
    mk("mine_ro", 0o400, uid=NOBODY)
    mk("mine_rw", 0o600, uid=NOBODY)
    mk("noperm", 0o000, uid=NOBODY)
    mk("priv", 0o700, d=True)
    mk("priv/f", 0o644)
    mk("xonly", 0o711, d=True)
    mk("xonly/f", 0o644)
    mk("ronly", 0o744, d=True)
    mk("ronly/f", 0o644)
    mk("sticky", 0o1777, d=True)
    mk("sticky/rootfile", 0o666)
    mk("mine", 0o755, uid=NOBODY, d=True)
    mk("mine/locked", 0o500, uid=NOBODY, d=True)
    mk("mine/locked/f", 0o644, uid=NOBODY)
    mk("rootdir", 0o755, d=True)
    mk("rootdir/f", 0o666)
    os.symlink("secret", os.path.join(root, "link_secret"))
    os.symlink("priv/f", os.path.join(root, "link_priv"))
    os.lchown(os.path.join(root, "link_priv"), 0, 0)


def attempt(op, path, fn):
    try:
        r = fn()
        print("%s %s -> OK%s" % (op, path, "" if r is None else " " + str(r)))
    except OSError as e:
        print("%s %s -> %s" % (op, path, errno.errorcode.get(e.errno, e.errno)))


def read_all(p, flags=os.O_RDONLY):
    fd = os.open(p, flags)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def write_some(p, flags):
    fd = os.open(p, flags)
    try:
        return os.write(fd, b"x")
    finally:
        os.close(fd)


def probe(root):
    os.chdir(root)
    paths = ["secret", "group", "public", "pubw", "mine_ro", "mine_rw", "noperm",
             "priv", "priv/f", "xonly", "xonly/f", "ronly", "ronly/f", "sticky",
             "sticky/rootfile", "mine", "mine/locked", "mine/locked/f", "rootdir",
             "rootdir/f", "link_secret", "link_priv", "missing", "priv/missing"]
    for p in paths:
        attempt("stat", p, lambda: oct(os.stat(p).st_mode))
        attempt("lstat", p, lambda: os.lstat(p).st_size)
        attempt("read", p, lambda: read_all(p))
        attempt("open_wr", p, lambda: write_some(p, os.O_WRONLY))
        attempt("open_append", p, lambda: write_some(p, os.O_WRONLY | os.O_APPEND))
        attempt("open_trunc", p, lambda: write_some(p, os.O_WRONLY | os.O_TRUNC))
        attempt("listdir", p, lambda: sorted(os.listdir(p)))
        for m, n in ((os.R_OK, "R"), (os.W_OK, "W"), (os.X_OK, "X")):
            attempt("access_" + n, p, lambda: os.access(p, m))
        attempt("create_in", p, lambda: write_some(os.path.join(p, "new"), os.O_CREAT | os.O_WRONLY))
        attempt("mkdir_in", p, lambda: os.mkdir(os.path.join(p, "newd")))
        attempt("truncate", p, lambda: os.truncate(p, 1))
        attempt("chmod", p, lambda: os.chmod(p, 0o644))
        attempt("chown", p, lambda: os.chown(p, 0, 0))
        attempt("utime_now", p, lambda: os.utime(p))
        attempt("utime_set", p, lambda: os.utime(p, (1, 1)))
        attempt("setxattr", p, lambda: os.setxattr(p, "user.t", b"v"))
        attempt("getxattr", p, lambda: os.getxattr(p, "user.t"))
        attempt("listxattr", p, lambda: sorted(os.listxattr(p)))
        attempt("readlink", p, lambda: os.readlink(p))
        attempt("link", p, lambda: os.link(p, "mine/hl"))
        attempt("rename", p, lambda: os.rename(p, "mine/moved"))
        attempt("rename_back", p, lambda: os.rename("mine/moved", p))
        attempt("unlink", p, lambda: os.unlink(p))
        attempt("rmdir", p, lambda: os.rmdir(p))
        for extra in ("mine/hl", os.path.join(p, "new")):
            try:
                os.unlink(extra)
            except OSError:
                pass
        try:
            os.rmdir(os.path.join(p, "newd"))
        except OSError:
            pass


if __name__ == "__main__":
    {"setup": setup, "probe": probe}[sys.argv[1]](sys.argv[2])
