"""Permission-sensitive operations in DIR (argv[1]), one result line each.

DIR was prepared by root (see identity.rs): o (0600 1000:1000, "secret"),
d/ (0700 1000:1000) holding f (0600), w/ (0755 1000:1000) holding src
(0644), pub (0666 1000:1000). The caller's identity is what is under test.
"""
import ctypes
import os
import stat
import sys

d = sys.argv[1]
p = lambda n: os.path.join(d, n)


def attempt(name, fn):
    try:
        r = fn()
        print("%s: ok %s" % (name, "" if r is None else repr(r)))
    except OSError as e:
        print("%s: errno %d" % (name, e.errno))


def read(n, flags=0):
    fd = os.open(p(n), os.O_RDONLY | flags)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def write(n):
    fd = os.open(p(n), os.O_WRONLY | os.O_APPEND)
    try:
        return os.write(fd, b"+")
    finally:
        os.close(fd)


def create(n):
    fd = os.open(p(n), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.close(fd)
    st = os.stat(p(n))
    return (st.st_uid, st.st_gid)


attempt("read o", lambda: read("o"))
attempt("list d", lambda: sorted(os.listdir(p("d"))))
attempt("read d/f", lambda: read("d/f"))
attempt("stat d/f", lambda: oct(os.stat(p("d/f")).st_mode))
attempt("write o", lambda: write("o"))
attempt("access o R", lambda: os.access(p("o"), os.R_OK))
attempt("access o W", lambda: os.access(p("o"), os.W_OK))
attempt("access o R eff", lambda: os.access(p("o"), os.R_OK, effective_ids=True))
attempt("create w/new", lambda: create("w/new"))
attempt("create d/new", lambda: create("d/new"))
attempt("utime o now", lambda: os.utime(p("o")))
attempt("utime o set", lambda: os.utime(p("o"), (1, 2)))
attempt("utime pub now", lambda: os.utime(p("pub")))
attempt("chmod o", lambda: os.chmod(p("o"), 0o640))
attempt("chown o to root", lambda: os.chown(p("o"), 0, 0))
attempt("chgrp pub", lambda: os.chown(p("pub"), -1, 0))
attempt("noatime pub", lambda: read("pub", os.O_NOATIME))
bad_acl = b"\x02\x00\x00\x00x"
attempt("acl bad size", lambda: os.setxattr(p("pub"), "system.posix_acl_access", bad_acl))
bad_tag = b"\x02\x00\x00\x00" + b"\x40\x00\x07\x00\x00\x00\x00\x00"
attempt("acl bad tag", lambda: os.setxattr(p("pub"), "system.posix_acl_default", bad_tag))
attempt("acl bad version", lambda: os.setxattr(p("pub"), "system.posix_acl_access", b"\x01\x00\x00\x00"))
attempt("trusted set", lambda: os.setxattr(p("pub"), "trusted.t", b"1"))
attempt("user set", lambda: os.setxattr(p("pub"), "user.u", b"1"))
attempt("listxattr", lambda: sorted(os.listxattr(p("pub"))))
RENAME_EXCHANGE, RENAME_WHITEOUT = 2, 4
libc = ctypes.CDLL(None, use_errno=True)


def renameat2(a, b, flags):
    if libc.renameat2(-100, p(a).encode(), -100, p(b).encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def kind(n):
    st = os.lstat(p(n))
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_rdev, st.st_uid, st.st_gid)


attempt("whiteout+exchange", lambda: renameat2("w/src", "w/dst", RENAME_WHITEOUT | RENAME_EXCHANGE))
attempt("rename whiteout", lambda: renameat2("w/src", "w/dst", RENAME_WHITEOUT))
attempt("whiteout left", lambda: kind("w/src"))
attempt("mknod whiteout", lambda: os.mknod(p("w/wh"), stat.S_IFCHR, 0))
attempt("mknod device", lambda: os.mknod(p("w/dev"), stat.S_IFCHR, os.makedev(1, 3)))
attempt("unlink d/f", lambda: os.unlink(p("d/f")))
SETFL_SEEN = os.O_APPEND | os.O_NONBLOCK | os.O_NOATIME | os.O_ASYNC | os.O_DIRECT


def setfl(n, mode, steps):
    """F_SETFL each of `steps` in turn on a fresh fd of n; after each, the
    flags F_GETFL shows (of SETFL_SEEN), then one byte written."""
    import fcntl

    fd = os.open(p(n), mode)
    try:
        seen = []
        for fl in steps:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, fl)
                seen.append(oct(fcntl.fcntl(fd, fcntl.F_GETFL) & SETFL_SEEN))
            except OSError as e:
                seen.append("errno %d" % e.errno)
            if mode != os.O_RDONLY:
                os.write(fd, b"%d" % len(seen))
        return seen
    finally:
        os.close(fd)


attempt("setfl noatime pub", lambda: setfl("pub", os.O_RDONLY, [os.O_NOATIME, 0]))
attempt("setfl noatime pub again", lambda: setfl("pub", os.O_RDONLY, [os.O_NOATIME, os.O_NOATIME | os.O_NONBLOCK]))
attempt(
    "setfl toggles pub",
    lambda: setfl("pub", os.O_RDWR, [os.O_APPEND, os.O_NONBLOCK, os.O_APPEND | os.O_NONBLOCK, 0, os.O_APPEND]),
)
attempt("setfl noatime+append pub", lambda: setfl("pub", os.O_WRONLY, [os.O_APPEND | os.O_NOATIME, os.O_APPEND]))
attempt("setfl async direct pub", lambda: setfl("pub", os.O_RDONLY, [os.O_ASYNC, os.O_DIRECT, os.O_ASYNC | os.O_APPEND, 0]))
attempt("read pub", lambda: read("pub"))
for n in ("o", "pub", "d"):
    st = os.stat(p(n))
    print("final %s: %o %d:%d" % (n, st.st_mode, st.st_uid, st.st_gid))
