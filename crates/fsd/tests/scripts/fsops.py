#!/usr/bin/env python3
"""Differential filesystem operation sequence for btfuse.

Usage:
    fsops.py setup ROOT [--owner UID:GID]   # as root: fixtures owned by root under ROOT/fx
    fsops.py run ROOT [--skip SECTION ...]   # as the user under test: the operation sequence

`run` chdirs into ROOT and performs a fixed, deterministic sequence of
filesystem operations (happy paths and error paths), printing one JSON line
per operation on stdout:

    {"i": N, "op": NAME, "args": [...], "r": RESULT}

RESULT is either {"ok": value} or {"err": "ENOENT"}-style errno names.  Paths
in args are relative to ROOT.  Stat results carry only what a program can
observe and that is deterministic across filesystems: file type + mode bits
(octal), nlink, size, blocks, uid, gid, rdev.  Times are reported only as
relations ("m": mtime changed, "c": ctime changed) or as equality with a value
that the sequence itself set (utime with ns).  Inode numbers and st_dev never
appear.

The same script is run on tmpfs, on a btfuse FUSE mount and (later) as a
program under LD_PRELOAD=libbtfuse.so; the outputs must be identical line by
line.  Differences that are accepted on purpose are listed in EXCEPTIONS below
and are applied identically to every run (so they never hide a difference
silently: they change what is *reported*, for everyone).

Stdlib only (ctypes for renameat2, lchmod, fallocate, utimensat).
"""

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import random
import stat
import sys
import time

# ---------------------------------------------------------------------------
# Documented exceptions.  Each entry: name -> (enabled, reason).  An enabled
# exception changes the report for every filesystem alike.
# ---------------------------------------------------------------------------
EXCEPTIONS = {
    # Access times: tmpfs updates atime under relatime rules inside the kernel;
    # a FUSE filesystem's atime is whatever the daemon keeps, and the kernel
    # does not forward read-side atime updates.  atime is therefore compared
    # only when the sequence sets it explicitly (utime).
    "no_atime_relations": (True, "atime after reads is not comparable between tmpfs and FUSE"),
}

SECTIONS = [
    "basic", "names", "rw", "sparse", "fallocate", "unlinkopen", "links",
    "symlinks", "rename", "dirs", "attrs", "times", "xattr", "special",
    "statvfs", "large", "dirfd", "perms", "mmap", "many",
]

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_SYMLINK_NOFOLLOW = 0x100

# CDLL(None): symbols as a normally linked program binds them (global
# scope, so an LD_PRELOAD library comes first). dlopen("libc.so.6") would
# bypass any preloaded library.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_libc.renameat2.restype = ctypes.c_int
_libc.fallocate64.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.fallocate64.restype = ctypes.c_int


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec), ctypes.c_int]
_libc.utimensat.restype = ctypes.c_int


def _check(rc):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


def renameat2(old, new, flags):
    return _check(_libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags))


def lchmod(path, mode):
    return _check(_libc.lchmod(path.encode(), mode))


def fallocate(fd, mode, off, length):
    return _check(_libc.fallocate64(fd, mode, off, length))


def utimensat(path, atime, mtime, flags=0):
    ts = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    return _check(_libc.utimensat(AT_FDCWD, path.encode(), ts, flags))


# ---------------------------------------------------------------------------
# Reporting helpers
# ---------------------------------------------------------------------------

def st_dict(s):
    d = {
        "mode": oct(s.st_mode),
        "nlink": s.st_nlink,
        "size": s.st_size,
        "blocks": s.st_blocks,
        "uid": s.st_uid,
        "gid": s.st_gid,
    }
    if stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode):
        d["rdev"] = [os.major(s.st_rdev), os.minor(s.st_rdev)]
    return d


def lst(path):
    return st_dict(os.lstat(path))


def listing(path):
    """Sorted directory listing with entry types as readdir reports them."""
    out = []
    with os.scandir(path) as it:
        for e in it:
            if e.is_symlink():
                t = "l"
            elif e.is_dir(follow_symlinks=False):
                t = "d"
            elif e.is_file(follow_symlinks=False):
                t = "f"
            else:
                t = "o"
            out.append(e.name + ":" + t)
    out.sort()
    return out


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def rd(path):
    """File content, short ones verbatim, long ones as a hash."""
    data = read_all(path)
    if len(data) <= 64:
        return data.decode("latin-1")
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_file(path, data, mode=0o644, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, mode)
    try:
        n = 0
        while n < len(data):
            n += os.write(fd, data[n:])
    finally:
        os.close(fd)
    return len(data)


class Runner:
    def __init__(self):
        self.i = 0
        self.out = sys.stdout

    def emit(self, op, args, r):
        line = json.dumps({"i": self.i, "op": op, "args": args, "r": r}, sort_keys=True)
        self.out.write(line + "\n")
        self.i += 1

    def do(self, op, args, fn):
        """Run fn(); report its (JSON-able) value or the errno name."""
        try:
            v = fn()
            r = {"ok": v}
        except OSError as e:
            r = {"err": errno.errorcode.get(e.errno, str(e.errno))}
        self.emit(op, list(args), r)
        return r

    def timed(self, op, args, fn, watch):
        """Run fn() and report, for each watched path, whether mtime/ctime changed.

        Sleeps 15 ms first so that a coarse kernel clock tick has passed.
        """
        before = {}
        for p in watch:
            try:
                before[p] = os.lstat(p)
            except OSError:
                before[p] = None
        time.sleep(0.015)
        try:
            v = fn()
            r = {"ok": v}
        except OSError as e:
            r = {"err": errno.errorcode.get(e.errno, str(e.errno))}
        rel = {}
        for p in watch:
            try:
                a = os.lstat(p)
            except OSError:
                rel[p] = "gone"
                continue
            b = before[p]
            if b is None:
                rel[p] = "new"
                continue
            if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
                # The name now holds another inode (rename over it, exchange):
                # comparing two inodes' times says nothing about the operation,
                # only about clock granularity (tmpfs ticks coarsely).
                rel[p] = "replaced"
                continue
            rel[p] = {"m": a.st_mtime_ns != b.st_mtime_ns, "c": a.st_ctime_ns != b.st_ctime_ns}
            if not EXCEPTIONS["no_atime_relations"][0]:
                rel[p]["a"] = a.st_atime_ns != b.st_atime_ns
        r["times"] = rel
        self.emit(op, list(args), r)
        return r


def data_of(seed, n):
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------------------
# Fixtures (run as root by the harness before `run`)
# ---------------------------------------------------------------------------

def setup(root, owner):
    os.umask(0o022)
    fx = os.path.join(root, "fx")
    os.mkdir(fx, 0o755)
    write_file(os.path.join(fx, "root_file"), b"root\n", 0o644)
    os.chmod(os.path.join(fx, "root_file"), 0o644)
    os.mkdir(os.path.join(fx, "root_ro_dir"), 0o755)
    write_file(os.path.join(fx, "root_ro_dir", "inner"), b"inner\n", 0o666)
    os.chmod(os.path.join(fx, "root_ro_dir", "inner"), 0o666)
    os.mkdir(os.path.join(fx, "root_private"), 0o700)
    write_file(os.path.join(fx, "root_private", "secret"), b"secret\n", 0o644)
    os.mkdir(os.path.join(fx, "sticky"))
    os.chmod(os.path.join(fx, "sticky"), 0o1777)
    write_file(os.path.join(fx, "sticky", "root_owned"), b"ro\n", 0o666)
    os.chmod(os.path.join(fx, "sticky", "root_owned"), 0o666)
    write_file(os.path.join(fx, "group_file"), b"g\n", 0o664)
    os.chmod(os.path.join(fx, "group_file"), 0o664)
    write_file(os.path.join(fx, "noexec_file"), b"#!/bin/sh\n", 0o644)
    write_file(os.path.join(fx, "root_suid"), b"suid\n", 0o755)
    os.chmod(os.path.join(fx, "root_suid"), 0o4755)
    write_file(os.path.join(fx, "world_rw"), b"world\n", 0o666)
    os.chmod(os.path.join(fx, "world_rw"), 0o666)
    os.mkdir(os.path.join(fx, "sgid_dir"))
    os.chown(os.path.join(fx, "sgid_dir"), 0, 4321)
    os.chmod(os.path.join(fx, "sgid_dir"), 0o2777)
    os.mkdir(os.path.join(fx, "nosearch"), 0o766)
    os.chmod(os.path.join(fx, "nosearch"), 0o766)
    write_file(os.path.join(fx, "nosearch", "f"), b"f\n", 0o644)
    os.setxattr(os.path.join(fx, "root_file"), "user.owner", b"root")
    if owner is not None:
        os.chown(root, owner[0], owner[1])
    os.chmod(root, 0o755)


# ---------------------------------------------------------------------------
# The sequence
# ---------------------------------------------------------------------------

def sec_basic(R):
    R.do("mkdir", ["d"], lambda: (os.mkdir("d", 0o755), lst("d"))[1])
    R.do("mkdir", ["d"], lambda: os.mkdir("d"))
    def create():
        fd = os.open("d/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        n = os.write(fd, b"hello\n")
        os.close(fd)
        return [n, lst("d/f")]
    R.timed("create", ["d/f", "O_EXCL"], create, ["d"])
    R.do("open", ["d/f", "O_CREAT|O_EXCL"], lambda: os.open("d/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    R.do("stat", ["d/f"], lambda: st_dict(os.stat("d/f")))
    R.do("read", ["d/f"], lambda: rd("d/f"))
    R.do("open", ["d/missing"], lambda: os.open("d/missing", os.O_RDONLY))
    R.do("stat", ["missing/x"], lambda: st_dict(os.stat("missing/x")))
    R.do("stat", ["d/f/x"], lambda: st_dict(os.stat("d/f/x")))
    R.do("open", ["d", "O_WRONLY"], lambda: os.open("d", os.O_WRONLY))
    R.do("open", ["d", "O_RDWR"], lambda: os.open("d", os.O_RDWR))
    R.do("open", ["d/f", "O_DIRECTORY"], lambda: os.open("d/f", os.O_RDONLY | os.O_DIRECTORY))
    R.do("open", ["d/f/", "O_RDONLY"], lambda: os.open("d/f/", os.O_RDONLY))
    R.do("open", ["d/new/", "O_CREAT"], lambda: os.open("d/new/", os.O_WRONLY | os.O_CREAT, 0o644))
    R.do("mkdir", ["d/f/sub"], lambda: os.mkdir("d/f/sub"))
    R.do("mkdir", ["nonexist/sub"], lambda: os.mkdir("nonexist/sub"))
    R.do("mkdir", ["d2/"], lambda: (os.mkdir("d2/"), lst("d2"))[1])
    R.do("rmdir", ["d"], lambda: os.rmdir("d"))
    R.do("rmdir", ["d/f"], lambda: os.rmdir("d/f"))
    R.do("rmdir", ["."], lambda: os.rmdir("."))
    R.do("rmdir", ["d2/."], lambda: os.rmdir("d2/."))
    R.do("rmdir", ["d/missing"], lambda: os.rmdir("d/missing"))
    R.do("unlink", ["d"], lambda: os.unlink("d"))
    R.do("unlink", ["d/missing"], lambda: os.unlink("d/missing"))
    R.do("mkdir", [""], lambda: os.mkdir(""))
    R.do("open", ["d/f", "O_CREAT mode 0600 existing"], lambda: (os.close(os.open("d/f", os.O_RDONLY | os.O_CREAT, 0o600)), lst("d/f"))[1])
    R.do("mkdir", ["d3", "0777 umask 022"], lambda: (os.mkdir("d3", 0o777), lst("d3"))[1])
    R.do("create", ["d3/x", "0777 umask 022"], lambda: (os.close(os.open("d3/x", os.O_CREAT | os.O_WRONLY, 0o777)), lst("d3/x"))[1])
    R.do("access", ["d/f", "R_OK,W_OK,X_OK,F_OK"], lambda: [os.access("d/f", m) for m in (os.R_OK, os.W_OK, os.X_OK, os.F_OK)])
    R.do("access", ["d", "R_OK,W_OK,X_OK"], lambda: [os.access("d", m) for m in (os.R_OK, os.W_OK, os.X_OK)])
    R.do("access", ["nope", "F_OK"], lambda: os.access("nope", os.F_OK))
    R.do("listdir", ["."], lambda: listing("."))
    R.do("listdir", ["d"], lambda: listing("d"))
    R.do("listdir", ["d/f"], lambda: listing("d/f"))
    R.do("listdir", ["nope"], lambda: listing("nope"))


def sec_names(R):
    n255 = "n" * 255
    n256 = "n" * 256
    R.do("create", ["n*255"], lambda: (write_file(n255, b"x"), lst(n255))[1])
    R.do("create", ["n*256"], lambda: write_file(n256, b"x"))
    R.do("mkdir", ["n*256"], lambda: os.mkdir(n256))
    R.do("stat", ["n*256"], lambda: lst(n256))
    R.do("rename", ["n*255", "n*256"], lambda: os.rename(n255, n256))
    R.do("symlink", ["x", "n*256"], lambda: os.symlink("x", n256))
    R.do("link", ["n*255", "n*256"], lambda: os.link(n255, n256))
    R.do("listdir", ["."], lambda: [x if len(x) < 64 else "len%d" % len(x) for x in listing(".")])
    R.do("unlink", ["n*255"], lambda: os.unlink(n255))
    R.do("create", ["sp ace\\ttab\\nnl"], lambda: (write_file("sp ace\ttab\nnl", b"w"), lst("sp ace\ttab\nnl"))[1])
    R.do("create", ["utf8 \u00e9\u00df\u2603"], lambda: (write_file("utf8 \u00e9\u00df\u2603", b"u"), lst("utf8 \u00e9\u00df\u2603"))[1])
    R.do("listdir", ["."], lambda: listing("."))
    R.do("unlink", ["sp ace\\ttab\\nnl"], lambda: os.unlink("sp ace\ttab\nnl"))
    R.do("unlink", ["utf8"], lambda: os.unlink("utf8 \u00e9\u00df\u2603"))


def sec_rw(R):
    os.mkdir("rw")
    write_file("rw/t", b"some content that is longer\n")
    R.timed("open", ["rw/t", "O_TRUNC"], lambda: (os.close(os.open("rw/t", os.O_WRONLY | os.O_TRUNC)), lst("rw/t"))[1], ["rw/t"])
    R.timed("open", ["rw/t", "O_TRUNC on empty"], lambda: (os.close(os.open("rw/t", os.O_WRONLY | os.O_TRUNC)), lst("rw/t"))[1], ["rw/t"])
    def append():
        write_file("rw/a", b"ab")
        fd = os.open("rw/a", os.O_WRONLY | os.O_APPEND)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"cd")
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        os.pwrite(fd, b"ef", 0)  # Linux: pwrite on O_APPEND appends
        pos2 = os.lseek(fd, 0, os.SEEK_CUR)
        os.close(fd)
        return [pos, pos2, rd("rw/a")]
    R.do("append", ["rw/a"], append)
    def pwrite():
        fd = os.open("rw/p", os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"0123456789")
        os.pwrite(fd, b"X", 15)
        s = lst("rw/p")
        a = os.pread(fd, 3, 2)
        b = os.pread(fd, 100, 8)
        c = os.pread(fd, 10, 100)
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        end = os.lseek(fd, 0, os.SEEK_END)
        os.close(fd)
        return [s, a.hex(), b.hex(), c.hex(), pos, end]
    R.do("pwrite_pread", ["rw/p"], pwrite)
    R.do("lseek", ["rw/p", "-1 SEEK_SET"], lambda: os.lseek(fd_ro("rw/p"), -1, os.SEEK_SET))
    R.do("lseek", ["rw/p", "100 SEEK_SET then read"], lambda: read_at_seek("rw/p", 100))
    R.do("write", ["rw/p", "on O_RDONLY"], lambda: with_fd("rw/p", os.O_RDONLY, lambda fd: os.write(fd, b"x")))
    R.do("read", ["rw/p", "on O_WRONLY"], lambda: with_fd("rw/p", os.O_WRONLY, lambda fd: os.read(fd, 1)))
    R.do("read", ["rw", "dir fd"], lambda: with_fd("rw", os.O_RDONLY, lambda fd: os.read(fd, 1)))
    R.timed("truncate", ["rw/p", 100000], lambda: (os.truncate("rw/p", 100000), lst("rw/p"))[1], ["rw/p"])
    R.do("read", ["rw/p", "tail of extension"], lambda: with_fd("rw/p", os.O_RDONLY, lambda fd: os.pread(fd, 8, 99990).hex()))
    R.timed("truncate", ["rw/p", 5], lambda: (os.truncate("rw/p", 5), lst("rw/p"))[1], ["rw/p"])
    R.timed("truncate", ["rw/p", "5 same size"], lambda: (os.truncate("rw/p", 5), lst("rw/p"))[1], ["rw/p"])
    R.timed("ftruncate", ["rw/p", "5 same size"], lambda: with_fd("rw/p", os.O_WRONLY, lambda fd: (os.ftruncate(fd, 5), st_dict(os.fstat(fd)))[1]), ["rw/p"])
    R.do("read", ["rw/p"], lambda: rd("rw/p"))
    R.do("truncate", ["rw/p", -1], lambda: os.truncate("rw/p", -1))
    R.do("truncate", ["rw", 0], lambda: os.truncate("rw", 0))
    R.do("truncate", ["rw/missing", 0], lambda: os.truncate("rw/missing", 0))
    R.do("ftruncate", ["rw/p", "O_RDONLY"], lambda: with_fd("rw/p", os.O_RDONLY, lambda fd: os.ftruncate(fd, 0)))
    def rdwr():
        fd = os.open("rw/rw", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"abcdef")
        os.lseek(fd, 2, os.SEEK_SET)
        x = os.read(fd, 2)
        os.write(fd, b"ZZ")
        os.lseek(fd, 0, os.SEEK_SET)
        y = os.read(fd, 100)
        z = os.read(fd, 100)
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        return [x.decode(), y.decode(), z.decode(), lst("rw/rw")]
    R.do("rdwr", ["rw/rw"], rdwr)
    def two_fds():
        a = os.open("rw/two", os.O_RDWR | os.O_CREAT, 0o644)
        b = os.open("rw/two", os.O_RDONLY)
        os.write(a, b"first")
        r1 = os.read(b, 100)
        os.write(a, b"second")
        r2 = os.read(b, 100)
        os.close(a)
        os.close(b)
        return [r1.decode(), r2.decode()]
    R.do("two_fds", ["rw/two"], two_fds)
    R.do("copy_file_range", ["rw/two", "rw/cfr"], lambda: copy_range("rw/two", "rw/cfr", 3, 100))
    R.do("read", ["rw/cfr"], lambda: rd("rw/cfr"))
    R.do("dup", ["rw/two", "shared offset"], dup_offset)


def fd_ro(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, -1, os.SEEK_SET)
    finally:
        os.close(fd)


def read_at_seek(path, off):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, off, os.SEEK_SET)
        return os.read(fd, 10).hex()
    finally:
        os.close(fd)


def with_fd(path, flags, fn):
    fd = os.open(path, flags)
    try:
        return fn(fd)
    finally:
        os.close(fd)


def copy_range(src, dst, off, n):
    a = os.open(src, os.O_RDONLY)
    b = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        got = 0
        while got < n:
            k = os.copy_file_range(a, b, n - got, off + got)
            if k == 0:
                break
            got += k
        return got
    finally:
        os.close(a)
        os.close(b)


def dup_offset():
    fd = os.open("rw/two", os.O_RDONLY)
    fd2 = os.dup(fd)
    os.read(fd, 3)
    x = os.read(fd2, 3)
    os.close(fd)
    y = os.read(fd2, 100)
    os.close(fd2)
    return [x.decode(), y.decode()]


def sec_sparse(R):
    os.mkdir("sp")
    def sparse():
        fd = os.open("sp/s", os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd, b"Z", 1 << 20)
        s1 = st_dict(os.fstat(fd))
        hole = os.pread(fd, 4096, 0)
        os.pwrite(fd, b"a", 0)
        s2 = st_dict(os.fstat(fd))
        os.close(fd)
        return [s1, hole == bytes(4096), s2]
    R.do("sparse_write", ["sp/s"], sparse)
    def seeks():
        fd = os.open("sp/s", os.O_RDONLY)
        res = []
        for off, wh, name in [(0, os.SEEK_DATA, "DATA"), (0, os.SEEK_HOLE, "HOLE"),
                              (4096, os.SEEK_DATA, "DATA"), (1 << 20, os.SEEK_HOLE, "HOLE"),
                              (5000, os.SEEK_HOLE, "HOLE"), ((1 << 20) + 1, os.SEEK_DATA, "DATA"),
                              ((1 << 20) + 1, os.SEEK_HOLE, "HOLE"), (-1, os.SEEK_DATA, "DATA")]:
            try:
                res.append([name, off, os.lseek(fd, off, wh)])
            except OSError as e:
                res.append([name, off, errno.errorcode[e.errno]])
        os.close(fd)
        return res
    R.do("lseek_data_hole", ["sp/s"], seeks)
    R.do("truncate", ["sp/big", 1 << 30], lambda: (write_file("sp/big", b""), os.truncate("sp/big", 1 << 30), lst("sp/big"))[2])
    R.do("read", ["sp/big", "middle of 1 GiB hole"], lambda: with_fd("sp/big", os.O_RDONLY, lambda fd: os.pread(fd, 65536, 512 << 20) == bytes(65536)))
    R.do("lseek_data", ["sp/big", "all hole"], lambda: with_fd("sp/big", os.O_RDONLY, lambda fd: os.lseek(fd, 0, os.SEEK_DATA)))
    R.do("write", ["sp/big", "near 1 GiB end"], lambda: (with_fd("sp/big", os.O_WRONLY, lambda fd: os.pwrite(fd, b"e" * 5000, (1 << 30) - 100)), lst("sp/big"))[1])
    R.do("unlink", ["sp/big"], lambda: os.unlink("sp/big"))
    def tail_zero():
        write_file("sp/t", b"x" * 6000)
        os.truncate("sp/t", 100)
        os.truncate("sp/t", 6000)
        d = read_all("sp/t")
        return [lst("sp/t"), d[:100] == b"x" * 100, d[100:] == bytes(5900)]
    R.do("truncate_shrink_grow_zeroes", ["sp/t"], tail_zero)


def sec_fallocate(R):
    os.mkdir("fa")
    def falloc():
        fd = os.open("fa/f", os.O_RDWR | os.O_CREAT, 0o644)
        os.posix_fallocate(fd, 0, 65536)
        s1 = st_dict(os.fstat(fd))
        os.pwrite(fd, b"q" * 65536, 0)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192)
        s2 = st_dict(os.fstat(fd))
        d = os.pread(fd, 65536, 0)
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 65536, 8192)
        s3 = st_dict(os.fstat(fd))
        os.close(fd)
        return [s1, s2, d[:4096] == b"q" * 4096, d[4096:12288] == bytes(8192), d[12288:] == b"q" * (65536 - 12288), s3]
    R.do("fallocate_punch", ["fa/f"], falloc)
    R.do("fallocate", ["fa/f", "PUNCH_HOLE without KEEP_SIZE"], lambda: with_fd("fa/f", os.O_RDWR, lambda fd: fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)))
    R.do("fallocate", ["fa/f", "COLLAPSE_RANGE"], lambda: with_fd("fa/f", os.O_RDWR, lambda fd: fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096)))
    R.do("fallocate", ["fa/f", "O_RDONLY"], lambda: with_fd("fa/f", os.O_RDONLY, lambda fd: fallocate(fd, 0, 0, 4096)))
    R.do("fallocate", ["fa/f", "len 0"], lambda: with_fd("fa/f", os.O_RDWR, lambda fd: fallocate(fd, 0, 0, 0)))
    R.do("fallocate", ["fa/g", "extend unaligned"], lambda: (with_fd("fa/g", os.O_RDWR | os.O_CREAT, lambda fd: fallocate(fd, 0, 100, 5000)), lst("fa/g"))[1])
    R.do("lseek_data_hole", ["fa/f"], lambda: with_fd("fa/f", os.O_RDONLY, lambda fd: [os.lseek(fd, 0, os.SEEK_HOLE), os.lseek(fd, 4096, os.SEEK_DATA)]))


def sec_unlinkopen(R):
    os.mkdir("uo")
    def uo():
        fd = os.open("uo/f", os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"persist")
        os.unlink("uo/f")
        s = st_dict(os.fstat(fd))
        a = os.pread(fd, 100, 0)
        os.pwrite(fd, b"-more", 7)
        b = os.pread(fd, 100, 0)
        s2 = st_dict(os.fstat(fd))
        lsd = listing("uo")
        try:
            os.stat("uo/f")
            ex = True
        except FileNotFoundError:
            ex = False
        os.fchmod(fd, 0o600)
        s3 = st_dict(os.fstat(fd))
        os.close(fd)
        return [s, a.decode(), b.decode(), s2, lsd, ex, s3]
    R.do("unlink_while_open", ["uo/f"], uo)
    def uo_big():
        fd = os.open("uo/big", os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, data_of(7, 3 << 20))
        os.unlink("uo/big")
        h = hashlib.sha256()
        os.lseek(fd, 0, os.SEEK_SET)
        while True:
            c = os.read(fd, 1 << 20)
            if not c:
                break
            h.update(c)
        os.close(fd)
        return h.hexdigest() == hashlib.sha256(data_of(7, 3 << 20)).hexdigest()
    R.do("unlink_while_open", ["uo/big", "3 MiB"], uo_big)
    def rename_over_open():
        write_file("uo/a", b"old")
        write_file("uo/b", b"new")
        fd = os.open("uo/a", os.O_RDONLY)
        os.rename("uo/b", "uo/a")
        x = os.read(fd, 100)
        s = st_dict(os.fstat(fd))
        os.close(fd)
        return [x.decode(), s, rd("uo/a")]
    R.do("rename_over_open_file", ["uo/b", "uo/a"], rename_over_open)
    R.do("rmdir_cwd_like", ["uo/dd"], rmdir_open_dir)


def rmdir_open_dir():
    os.mkdir("uo/dd")
    fd = os.open("uo/dd", os.O_RDONLY | os.O_DIRECTORY)
    os.rmdir("uo/dd")
    s = st_dict(os.fstat(fd))
    try:
        os.open("x", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
        r = "created"
    except OSError as e:
        r = errno.errorcode[e.errno]
    ls = os.listdir(fd)
    os.close(fd)
    return [s, r, ls]


def sec_links(R):
    os.mkdir("ln")
    write_file("ln/a", b"linked")
    R.timed("link", ["ln/a", "ln/b"], lambda: (os.link("ln/a", "ln/b"), lst("ln/a"), lst("ln/b"))[1:], ["ln/a", "ln"])
    R.do("link", ["ln/a", "ln/b", "exists"], lambda: os.link("ln/a", "ln/b"))
    R.do("link", ["ln", "ln/dirlink"], lambda: os.link("ln", "ln/dirlink"))
    R.do("link", ["ln/missing", "ln/c"], lambda: os.link("ln/missing", "ln/c"))
    R.do("link", ["ln/a", "ln/nodir/c"], lambda: os.link("ln/a", "ln/nodir/c"))
    R.do("link", ["ln/a", "ln/c"], lambda: (os.link("ln/a", "ln/c"), lst("ln/c"))[1])
    R.do("write_via_link", ["ln/b"], lambda: (write_file("ln/b", b"changed!", flags=os.O_WRONLY | os.O_TRUNC), rd("ln/a"), lst("ln/a"))[1:])
    R.timed("unlink", ["ln/a"], lambda: (os.unlink("ln/a"), lst("ln/b"))[1], ["ln/b", "ln"])
    R.do("rename", ["ln/b", "ln/c", "same inode"], lambda: (os.rename("ln/b", "ln/c"), listing("ln"), lst("ln/c"))[1:])
    R.do("unlink", ["ln/b"], lambda: (os.unlink("ln/b"), lst("ln/c"))[1])
    R.do("listdir", ["ln"], lambda: listing("ln"))
    def many_links():
        write_file("ln/m", b"m")
        for k in range(20):
            os.link("ln/m", "ln/m%02d" % k)
        s = lst("ln/m")
        for k in range(0, 20, 2):
            os.unlink("ln/m%02d" % k)
        return [s, lst("ln/m"), listing("ln")]
    R.do("many_links", ["ln/m"], many_links)
    os.symlink("c", "ln/sym")
    R.do("link", ["ln/sym", "ln/symlink_hard", "linkat no follow"], lambda: (os.link("ln/sym", "ln/symlink_hard", follow_symlinks=False), lst("ln/symlink_hard"), lst("ln/sym"))[1:])
    R.do("link", ["ln/sym", "ln/symfollow", "follow"], lambda: (os.link("ln/sym", "ln/symfollow", follow_symlinks=True), lst("ln/symfollow"))[1])


def sec_symlinks(R):
    os.mkdir("sl")
    write_file("sl/target", b"tgt")
    R.timed("symlink", ["target", "sl/s"], lambda: (os.symlink("target", "sl/s"), lst("sl/s"))[1], ["sl"])
    R.do("readlink", ["sl/s"], lambda: os.readlink("sl/s"))
    R.do("stat", ["sl/s", "follow"], lambda: st_dict(os.stat("sl/s")))
    R.do("read", ["sl/s"], lambda: rd("sl/s"))
    R.do("symlink", ["x", "sl/s", "exists"], lambda: os.symlink("x", "sl/s"))
    R.do("readlink", ["sl/target"], lambda: os.readlink("sl/target"))
    R.do("readlink", ["sl/missing"], lambda: os.readlink("sl/missing"))
    R.do("symlink", ["nowhere", "sl/dangling"], lambda: (os.symlink("nowhere", "sl/dangling"), lst("sl/dangling"))[1])
    R.do("stat", ["sl/dangling"], lambda: st_dict(os.stat("sl/dangling")))
    R.do("open", ["sl/dangling", "O_CREAT|O_EXCL"], lambda: os.open("sl/dangling", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    R.do("open", ["sl/dangling", "O_CREAT"], lambda: (os.close(os.open("sl/dangling", os.O_CREAT | os.O_WRONLY, 0o640)), lst("sl/nowhere"))[1])
    R.do("open", ["sl/s", "O_NOFOLLOW"], lambda: os.open("sl/s", os.O_RDONLY | os.O_NOFOLLOW))
    R.do("open", ["sl/s", "O_PATH|O_NOFOLLOW fstat"], lambda: with_fd("sl/s", os.O_PATH | os.O_NOFOLLOW, lambda fd: st_dict(os.fstat(fd))))
    os.symlink("l2", "sl/l1")
    os.symlink("l1", "sl/l2")
    R.do("stat", ["sl/l1", "loop"], lambda: st_dict(os.stat("sl/l1")))
    R.do("open", ["sl/l1/x", "loop in middle"], lambda: os.open("sl/l1/x", os.O_RDONLY))
    os.mkdir("sl/dir")
    write_file("sl/dir/inner", b"in")
    R.do("symlink", ["dir", "sl/dl"], lambda: (os.symlink("dir", "sl/dl"), listing("sl/dl"), rd("sl/dl/inner"))[1:])
    R.do("symlink", ["../sl/dir/inner", "sl/dir/up"], lambda: (os.symlink("../dir/inner", "sl/dir/up"), rd("sl/dir/up"))[1])
    R.do("symlink", ["/abs/target", "sl/abs"], lambda: (os.symlink("/nonexistent-btfuse-target", "sl/abs"), os.readlink("sl/abs"), lst("sl/abs"))[1:])
    R.do("symlink", ["t*200", "sl/long"], lambda: (os.symlink("t" * 200, "sl/long"), lst("sl/long"), len(os.readlink("sl/long")))[1:])
    R.do("symlink", ["t*4095", "sl/vlong"], lambda: (os.symlink("t/" * 2047 + "t", "sl/vlong"), len(os.readlink("sl/vlong")))[1])
    R.do("symlink", ["t*4096", "sl/toolong"], lambda: os.symlink("t/" * 2048, "sl/toolong"))
    R.do("symlink", ["", "sl/empty"], lambda: os.symlink("", "sl/empty"))
    R.do("rmdir", ["sl/dl", "symlink to dir"], lambda: os.rmdir("sl/dl"))
    R.do("unlink", ["sl/dl/", "trailing slash"], lambda: os.unlink("sl/dl/"))
    R.do("unlink", ["sl/dl"], lambda: (os.unlink("sl/dl"), listing("sl/dir"))[1])
    R.do("chmod", ["sl/s", "follows"], lambda: (os.chmod("sl/s", 0o600), lst("sl/target"), lst("sl/s"))[1:])
    R.do("listdir", ["sl"], lambda: listing("sl"))


def sec_rename(R):
    os.mkdir("rn")
    os.mkdir("rn/a")
    os.mkdir("rn/b")
    write_file("rn/a/f", b"F")
    write_file("rn/a/g", b"G")
    R.timed("rename", ["rn/a/f", "rn/b/f"], lambda: (os.rename("rn/a/f", "rn/b/f"), listing("rn/a"), listing("rn/b"))[1:], ["rn/a", "rn/b", "rn/b/f"])
    R.timed("rename", ["rn/a/g", "rn/b/f", "replace"], lambda: (os.rename("rn/a/g", "rn/b/f"), rd("rn/b/f"), listing("rn/b"))[1:], ["rn/a", "rn/b"])
    R.do("rename", ["rn/missing", "rn/x"], lambda: os.rename("rn/missing", "rn/x"))
    R.do("rename", ["rn/b/f", "rn/nodir/x"], lambda: os.rename("rn/b/f", "rn/nodir/x"))
    R.do("rename", ["rn/b/f", "rn/b/f/x"], lambda: os.rename("rn/b/f", "rn/b/f/x"))
    os.mkdir("rn/a/sub")
    os.mkdir("rn/a/sub/deep")
    R.do("rename", ["rn/a", "rn/a/sub/deep/a", "into own subtree"], lambda: os.rename("rn/a", "rn/a/sub/deep/a"))
    R.do("rename", ["rn/a", "rn/a/sub", "onto own child"], lambda: os.rename("rn/a", "rn/a/sub"))
    R.do("rename", ["rn/a/sub", "rn/a", "onto ancestor"], lambda: os.rename("rn/a/sub", "rn/a"))
    R.do("rename", ["rn/b/f", "rn/a", "file over dir"], lambda: os.rename("rn/b/f", "rn/a"))
    R.do("rename", ["rn/a", "rn/b/f", "dir over file"], lambda: os.rename("rn/a", "rn/b/f"))
    R.do("rename", ["rn/b", "rn/a", "dir over non-empty dir"], lambda: os.rename("rn/b", "rn/a"))
    os.mkdir("rn/empty")
    R.timed("rename", ["rn/a/sub", "rn/empty", "dir over empty dir"], lambda: (os.rename("rn/a/sub", "rn/empty"), lst("rn/a"), lst("rn/empty"), lst("rn"), listing("rn/empty"))[1:], ["rn/a", "rn", "rn/empty"])
    R.do("rename", ["rn/empty", "rn/b", "moves subdir, parent nlink"], lambda: (os.rename("rn/empty", "rn/b/moved"), lst("rn"), lst("rn/b"))[1:])
    R.do("rename", ["rn/b/f", "rn/b/f", "self"], lambda: (os.rename("rn/b/f", "rn/b/f"), rd("rn/b/f"))[1])
    R.do("rename", ["rn/b/f", "rn/b/f/", "trailing slash on file"], lambda: os.rename("rn/b/f", "rn/b/f2/"))
    R.do("rename", ["rn/b/moved/", "rn/b/moved2/", "trailing slash on dir"], lambda: (os.rename("rn/b/moved/", "rn/b/moved2/"), listing("rn/b"))[1])
    R.do("rename", [".", "rn/x"], lambda: os.rename(".", "rn/x"))
    R.do("rename", ["rn/b/f", "."], lambda: os.rename("rn/b/f", "."))
    write_file("rn/x", b"X")
    write_file("rn/y", b"Y")
    R.do("renameat2", ["rn/x", "rn/y", "NOREPLACE existing"], lambda: renameat2("rn/x", "rn/y", RENAME_NOREPLACE))
    R.do("renameat2", ["rn/x", "rn/z", "NOREPLACE new"], lambda: (renameat2("rn/x", "rn/z", RENAME_NOREPLACE), listing("rn"))[1])
    R.timed("renameat2", ["rn/y", "rn/z", "EXCHANGE"], lambda: (renameat2("rn/y", "rn/z", RENAME_EXCHANGE), rd("rn/y"), rd("rn/z"))[1:], ["rn", "rn/y", "rn/z"])
    R.do("renameat2", ["rn/y", "rn/missing", "EXCHANGE missing"], lambda: renameat2("rn/y", "rn/missing", RENAME_EXCHANGE))
    R.do("renameat2", ["rn/y", "rn/b", "EXCHANGE file<->dir"], lambda: (renameat2("rn/y", "rn/b", RENAME_EXCHANGE), lst("rn/y"), lst("rn/b"), listing("rn/y"))[1:])
    R.do("renameat2", ["rn/y", "rn/y/moved2/q", "EXCHANGE into own subtree"], lambda: (write_file("rn/y/moved2/q", b"q"), renameat2("rn/y", "rn/y/moved2/q", RENAME_EXCHANGE))[1])
    R.do("renameat2", ["rn/y", "rn/z", "NOREPLACE|EXCHANGE"], lambda: renameat2("rn/y", "rn/z", RENAME_NOREPLACE | RENAME_EXCHANGE))
    R.do("renameat2", ["rn/y", "rn/z", "flags 8"], lambda: renameat2("rn/y", "rn/z", 8))
    os.mkdir("rn/p1")
    os.mkdir("rn/p2")
    os.mkdir("rn/p1/c")
    R.do("renameat2", ["rn/p1/c", "rn/p2", "EXCHANGE dirs, nlinks"], lambda: (renameat2("rn/p1/c", "rn/p2", RENAME_EXCHANGE), lst("rn/p1"), lst("rn/p2"), lst("rn/p1/c"), lst("rn"), listing("rn/p1"), listing("rn"))[1:])
    def rename_dir_dotdot():
        os.mkdir("rn/p3")
        os.mkdir("rn/p3/k")
        os.rename("rn/p3/k", "rn/p1/k")
        return [os.path.samefile("rn/p1/k/..", "rn/p1"), lst("rn/p3"), lst("rn/p1")]
    R.do("rename", ["rn/p3/k", "rn/p1/k", "dotdot follows"], rename_dir_dotdot)
    R.do("listdir", ["rn"], lambda: listing("rn"))


def sec_dirs(R):
    os.mkdir("dn")
    R.do("stat", ["dn"], lambda: lst("dn"))
    R.timed("mkdir", ["dn/c1"], lambda: (os.mkdir("dn/c1"), lst("dn"))[1], ["dn"])
    R.do("mkdir", ["dn/c2"], lambda: (os.mkdir("dn/c2"), lst("dn"))[1])
    write_file("dn/file", b"")
    R.do("stat", ["dn", "with a file"], lambda: lst("dn"))
    R.timed("rmdir", ["dn/c1"], lambda: (os.rmdir("dn/c1"), lst("dn"))[1], ["dn"])
    R.do("rmdir", ["dn/c2/.."], lambda: os.rmdir("dn/c2/.."))
    R.do("mkdir", ["dn/c2/.."], lambda: os.mkdir("dn/c2/.."))
    R.do("stat", ["dn/c2/../file"], lambda: lst("dn/c2/../file"))
    R.do("listdir", ["dn"], lambda: listing("dn"))
    def fill():
        for k in range(150):
            write_file("dn/c2/e%03d" % k, b"")
        for k in range(0, 150, 3):
            os.unlink("dn/c2/e%03d" % k)
        names = os.listdir("dn/c2")
        return [len(names), len(set(names)), sorted(names)[:3], sorted(names)[-3:], lst("dn/c2")]
    R.do("readdir_150", ["dn/c2"], fill)
    def readdir_raw():
        fd = os.open("dn/c2", os.O_RDONLY | os.O_DIRECTORY)
        a = sorted(os.listdir(fd))
        b = sorted(os.listdir(fd))  # listdir(fd) rewinds
        os.close(fd)
        return [a == b, len(a)]
    R.do("readdir_twice_same_fd", ["dn/c2"], readdir_raw)
    def rmtree():
        for n in os.listdir("dn/c2"):
            os.unlink("dn/c2/" + n)
        os.rmdir("dn/c2")
        return [lst("dn"), listing("dn")]
    R.do("rm_rf", ["dn/c2"], rmtree)
    R.do("fsync", ["dn", "dir fd"], lambda: with_fd("dn", os.O_RDONLY | os.O_DIRECTORY, lambda fd: (os.fsync(fd), 0)[1]))


def sec_attrs(R):
    os.mkdir("at")
    write_file("at/f", b"attrs")
    R.timed("chmod", ["at/f", "0600"], lambda: (os.chmod("at/f", 0o600), lst("at/f"))[1], ["at/f"])
    R.timed("chmod", ["at/f", "0600 same"], lambda: (os.chmod("at/f", 0o600), lst("at/f"))[1], ["at/f"])
    R.do("chmod", ["at/f", "07777"], lambda: (os.chmod("at/f", 0o7777), lst("at/f"))[1])
    R.do("chmod", ["at/f", "04755"], lambda: (os.chmod("at/f", 0o4755), lst("at/f"))[1])
    R.do("write", ["at/f", "clears suid for non-root"], lambda: (write_file("at/f", b"w", flags=os.O_WRONLY | os.O_APPEND), lst("at/f"))[1])
    R.do("chmod", ["at/f", "06775"], lambda: (os.chmod("at/f", 0o6775), lst("at/f"))[1])
    R.do("truncate", ["at/f", "clears suid/sgid for non-root"], lambda: (os.truncate("at/f", 2), lst("at/f"))[1])
    R.do("chmod", ["at/f", "02755"], lambda: (os.chmod("at/f", 0o2755), lst("at/f"))[1])
    R.do("chown", ["at/f", "-1 -1"], lambda: (os.chown("at/f", -1, -1), lst("at/f"))[1])
    R.do("chown", ["at/f", "own uid, own gid"], lambda: (os.chown("at/f", os.geteuid(), os.getegid()), lst("at/f"))[1])
    R.do("chmod", ["at/f", "04755 again"], lambda: (os.chmod("at/f", 0o4755), lst("at/f"))[1])
    R.timed("chown", ["at/f", "1000:1000"], lambda: (os.chown("at/f", 1000, 1000), lst("at/f"))[1], ["at/f"])
    R.do("chown", ["at/f", "-1:4321"], lambda: (os.chown("at/f", -1, 4321), lst("at/f"))[1])
    R.do("chmod", ["at/missing"], lambda: os.chmod("at/missing", 0o644))
    os.symlink("f", "at/s")
    R.do("lchown", ["at/s", "-1 -1"], lambda: (os.lchown("at/s", -1, -1), lst("at/s"))[1])
    R.do("lchown", ["at/s", "2000:2000"], lambda: (os.lchown("at/s", 2000, 2000), lst("at/s"), lst("at/f"))[1:])
    # glibc's lchmod: a file's mode changes, a symlink's cannot (EOPNOTSUPP).
    R.do("lchmod", ["at/f", "0640"], lambda: (lchmod("at/f", 0o640), lst("at/f"))[1])
    R.do("lchmod", ["at/s", "0600"], lambda: (lchmod("at/s", 0o600), lst("at/s"), lst("at/f"))[1:])
    os.mkdir("at/d")
    R.do("chmod", ["at/d", "0700"], lambda: (os.chmod("at/d", 0o700), lst("at/d"))[1])
    R.do("chmod", ["at/d", "03777"], lambda: (os.chmod("at/d", 0o3777), lst("at/d"))[1])
    R.do("mkdir", ["at/d/sub", "inherits sgid"], lambda: (os.mkdir("at/d/sub", 0o755), lst("at/d/sub"))[1])


def sec_times(R):
    os.mkdir("tm")
    write_file("tm/f", b"times")
    R.do("utime", ["tm/f", "ns"], lambda: (os.utime("tm/f", ns=(1000000001, 2000000003)), ts_eq("tm/f", 1000000001, 2000000003))[1])
    R.do("utime", ["tm/f", "large ns"], lambda: (os.utime("tm/f", ns=(1234567890123456789, 1700000000999999999)), ts_eq("tm/f", 1234567890123456789, 1700000000999999999))[1])
    R.do("utime", ["tm/f", "negative"], lambda: (os.utime("tm/f", ns=(-1000000000, -5)), ts_eq("tm/f", -1000000000, -5))[1])
    R.timed("utime", ["tm/f", "now"], lambda: (os.utime("tm/f"), recent("tm/f"))[1], ["tm/f"])
    R.do("utimensat", ["tm/f", "OMIT atime, set mtime"], lambda: (os.utime("tm/f", ns=(111, 222)), utimensat("tm/f", (0, UTIME_OMIT), (5, 6)), ts_eq("tm/f", 111, 5000000006))[2])
    R.do("utimensat", ["tm/f", "NOW mtime, OMIT atime"], lambda: (utimensat("tm/f", (0, UTIME_OMIT), (0, UTIME_NOW)), os.stat("tm/f").st_atime_ns == 111, recent("tm/f"))[1:])
    R.do("utimensat", ["tm/f", "bad nsec"], lambda: utimensat("tm/f", (0, 1000000000), (0, 0)))
    os.symlink("f", "tm/s")
    R.do("lutimes", ["tm/s"], lambda: (os.utime("tm/s", ns=(7, 8), follow_symlinks=False), ts_eq("tm/s", 7, 8, follow=False), ts_eq("tm/f", 111, None))[1:])
    R.timed("write", ["tm/f"], lambda: with_fd("tm/f", os.O_WRONLY, lambda fd: os.write(fd, b"W")), ["tm/f", "tm"])
    R.timed("write", ["tm/f", "zero bytes"], lambda: with_fd("tm/f", os.O_WRONLY, lambda fd: os.write(fd, b"")), ["tm/f"])
    R.timed("read", ["tm/f"], lambda: rd("tm/f"), ["tm/f"])
    R.timed("ftruncate", ["tm/f", "grow"], lambda: with_fd("tm/f", os.O_WRONLY, lambda fd: os.ftruncate(fd, 100)), ["tm/f"])
    R.timed("truncate", ["tm/f", "shrink"], lambda: os.truncate("tm/f", 3), ["tm/f"])
    R.timed("create", ["tm/g"], lambda: write_file("tm/g", b""), ["tm", "tm/f"])
    R.timed("rename", ["tm/g", "tm/h"], lambda: os.rename("tm/g", "tm/h"), ["tm", "tm/h"])
    R.timed("link", ["tm/h", "tm/h2"], lambda: os.link("tm/h", "tm/h2"), ["tm", "tm/h"])
    R.timed("unlink", ["tm/h2"], lambda: os.unlink("tm/h2"), ["tm", "tm/h"])
    R.timed("setxattr", ["tm/h", "user.t"], lambda: os.setxattr("tm/h", "user.t", b"v"), ["tm/h"])
    R.timed("listdir", ["tm"], lambda: listing("tm"), ["tm"])
    R.timed("mkdir", ["tm/sub"], lambda: os.mkdir("tm/sub"), ["tm"])
    R.timed("open", ["tm/h", "O_RDONLY no change"], lambda: with_fd("tm/h", os.O_RDONLY, lambda fd: 0), ["tm/h"])
    R.timed("open", ["tm/h", "O_WRONLY no write"], lambda: with_fd("tm/h", os.O_WRONLY, lambda fd: 0), ["tm/h"])
    R.timed("failed_unlink", ["tm/nope"], lambda: os.unlink("tm/nope"), ["tm"])
    R.timed("renameat2", ["tm/h", "tm/sub", "EXCHANGE"], lambda: renameat2("tm/h", "tm/sub", RENAME_EXCHANGE), ["tm", "tm/h", "tm/sub"])


def ts_eq(path, a, m, follow=True):
    s = os.stat(path) if follow else os.lstat(path)
    out = {"atime_eq": s.st_atime_ns == a if a is not None else None}
    if m is not None:
        out["mtime_eq"] = s.st_mtime_ns == m
    return out


def recent(path):
    s = os.stat(path)
    now = time.time_ns()
    return {"mtime_recent": abs(now - s.st_mtime_ns) < 60 * 10**9, "ctime_ge_mtime": s.st_ctime_ns >= s.st_mtime_ns - 10**7}


def sec_xattr(R):
    os.mkdir("xa")
    write_file("xa/f", b"x")
    R.do("setxattr", ["xa/f", "user.a"], lambda: os.setxattr("xa/f", "user.a", b"1"))
    R.do("setxattr", ["xa/f", "user.b", "binary"], lambda: os.setxattr("xa/f", "user.b", bytes(range(256))))
    R.do("setxattr", ["xa/f", "user.empty"], lambda: os.setxattr("xa/f", "user.empty", b""))
    R.do("getxattr", ["xa/f", "user.a"], lambda: os.getxattr("xa/f", "user.a").hex())
    R.do("getxattr", ["xa/f", "user.b"], lambda: hashlib.sha256(os.getxattr("xa/f", "user.b")).hexdigest())
    R.do("getxattr", ["xa/f", "user.empty"], lambda: os.getxattr("xa/f", "user.empty").hex())
    R.do("listxattr", ["xa/f"], lambda: sorted(x for x in os.listxattr("xa/f") if not x.startswith("security.")))
    R.do("setxattr", ["xa/f", "user.a", "CREATE existing"], lambda: os.setxattr("xa/f", "user.a", b"2", os.XATTR_CREATE))
    R.do("setxattr", ["xa/f", "user.zz", "REPLACE missing"], lambda: os.setxattr("xa/f", "user.zz", b"2", os.XATTR_REPLACE))
    R.do("setxattr", ["xa/f", "user.a", "REPLACE existing"], lambda: (os.setxattr("xa/f", "user.a", b"22", os.XATTR_REPLACE), os.getxattr("xa/f", "user.a").hex())[1])
    R.do("removexattr", ["xa/f", "user.a"], lambda: (os.removexattr("xa/f", "user.a"), sorted(os.listxattr("xa/f")))[1])
    R.do("removexattr", ["xa/f", "user.a", "missing"], lambda: os.removexattr("xa/f", "user.a"))
    R.do("getxattr", ["xa/f", "user.a", "missing"], lambda: os.getxattr("xa/f", "user.a"))
    R.do("getxattr", ["xa/missing", "user.a"], lambda: os.getxattr("xa/missing", "user.a"))
    R.do("setxattr", ["xa/f", "nonamespace"], lambda: os.setxattr("xa/f", "nonamespace", b"1"))
    R.do("setxattr", ["xa/f", "user."], lambda: os.setxattr("xa/f", "user.", b"1"))
    R.do("setxattr", ["xa/f", "user.big", "65536"], lambda: os.setxattr("xa/f", "user.big", b"v" * 65536))
    R.do("setxattr", ["xa/f", "user.big", "65537"], lambda: os.setxattr("xa/f", "user.big", b"v" * 65537))
    R.do("setxattr", ["xa/f", "user.n*255"], lambda: os.setxattr("xa/f", "user." + "n" * 250, b"1"))
    R.do("setxattr", ["xa/f", "user.n*256"], lambda: os.setxattr("xa/f", "user." + "n" * 251, b"1"))
    R.do("setxattr", ["xa/f", "trusted.t"], lambda: os.setxattr("xa/f", "trusted.t", b"t"))
    R.do("listxattr", ["xa/f"], lambda: sorted(x if len(x) < 40 else "len%d" % len(x) for x in os.listxattr("xa/f") if not x.startswith("security.")))
    R.do("removexattr", ["xa/f", "trusted.t"], lambda: os.removexattr("xa/f", "trusted.t"))
    R.do("getxattr", ["xa/f", "user.b", "too small buffer via ctypes"], small_getxattr)
    os.symlink("f", "xa/s")
    R.do("setxattr", ["xa/s", "user.l", "nofollow"], lambda: os.setxattr("xa/s", "user.l", b"1", follow_symlinks=False))
    R.do("setxattr", ["xa/s", "user.l", "follow"], lambda: (os.setxattr("xa/s", "user.l", b"1"), os.getxattr("xa/f", "user.l").hex())[1])
    R.do("listxattr", ["xa/s", "nofollow"], lambda: sorted(os.listxattr("xa/s", follow_symlinks=False)))
    os.mkdir("xa/d")
    R.do("setxattr", ["xa/d", "user.d"], lambda: (os.setxattr("xa/d", "user.d", b"dir"), os.getxattr("xa/d", "user.d").hex())[1])
    R.do("xattr_survives_rename", ["xa/f", "xa/f2"], lambda: (os.rename("xa/f", "xa/f2"), os.getxattr("xa/f2", "user.b") == bytes(range(256)))[1])
    R.do("xattr_on_hardlink", ["xa/f2", "xa/f3"], lambda: (os.link("xa/f2", "xa/f3"), os.getxattr("xa/f3", "user.empty").hex())[1])
    for act, fn in FILE_CAPS_ACTS:
        R.do("file_caps_after", [act], lambda fn=fn: file_caps_after(fn))
    R.do("getxattr", ["fx/root_file", "user.owner", "other's file"], lambda: os.getxattr("fx/root_file", "user.owner").hex())
    R.do("setxattr", ["fx/root_file", "user.x", "other's file"], lambda: os.setxattr("fx/root_file", "user.x", b"1"))


# A v2 `security.capability` value (`setcap cap_net_raw+ep`).
FILE_CAPS = b"\x01\0\0\x02\0\x20\0\0\0\x20\0\0\0\0\0\0\0\0\0\0"


def rewrite_first_byte(path):
    with open(path, "r+b") as f:
        f.write(b"y")


# What a file's capabilities survive: Linux drops them at every write,
# truncate and chown (`file_remove_privs`, `chown_common`), whoever calls.
FILE_CAPS_ACTS = [
    ("write", lambda: rewrite_first_byte("xa/c")),
    ("truncate", lambda: os.truncate("xa/c", 0)),
    ("open O_TRUNC", lambda: os.close(os.open("xa/c", os.O_WRONLY | os.O_TRUNC))),
    ("chown -1 -1", lambda: os.chown("xa/c", -1, -1)),
    ("chmod", lambda: os.chmod("xa/c", 0o750)),
    ("read", lambda: read_all("xa/c")),
]


def file_caps_after(act):
    write_file("xa/c", b"x", mode=0o755)
    os.setxattr("xa/c", "security.capability", FILE_CAPS)
    act()
    try:
        return os.getxattr("xa/c", "security.capability").hex()
    except OSError as e:
        return "errno %s" % errno.errorcode[e.errno]


def small_getxattr():
    lib = _libc
    lib.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.getxattr.restype = ctypes.c_ssize_t
    n = lib.getxattr(b"xa/f", b"user.b", None, 0)
    buf = ctypes.create_string_buffer(10)
    r = lib.getxattr(b"xa/f", b"user.b", buf, 10)
    e = errno.errorcode.get(ctypes.get_errno(), "?") if r < 0 else None
    lib.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.listxattr.restype = ctypes.c_ssize_t
    ln = lib.listxattr(b"xa/f", None, 0)
    r2 = lib.listxattr(b"xa/f", buf, 2)
    e2 = errno.errorcode.get(ctypes.get_errno(), "?") if r2 < 0 else None
    return [n, r, e, ln > 0, r2, e2]


def sec_special(R):
    os.mkdir("sx")
    R.do("mkfifo", ["sx/fifo"], lambda: (os.mkfifo("sx/fifo", 0o644), lst("sx/fifo"))[1])
    R.do("mkfifo", ["sx/fifo", "exists"], lambda: os.mkfifo("sx/fifo"))
    R.do("mknod", ["sx/chr", "1:3"], lambda: (os.mknod("sx/chr", stat.S_IFCHR | 0o600, os.makedev(1, 3)), lst("sx/chr"))[1])
    R.do("mknod", ["sx/blk", "7:0"], lambda: (os.mknod("sx/blk", stat.S_IFBLK | 0o600, os.makedev(7, 0)), lst("sx/blk"))[1])
    R.do("mknod", ["sx/sock"], lambda: (os.mknod("sx/sock", stat.S_IFSOCK | 0o644), lst("sx/sock"))[1])
    R.do("mknod", ["sx/reg"], lambda: (os.mknod("sx/reg", stat.S_IFREG | 0o640), lst("sx/reg"))[1])
    R.do("setxattr", ["sx/fifo", "user.f"], lambda: os.setxattr("sx/fifo", "user.f", b"1"))
    R.do("fifo_io", ["sx/fifo"], fifo_io)
    R.do("listdir", ["sx"], lambda: listing("sx"))
    R.do("rename", ["sx/fifo", "sx/fifo2"], lambda: (os.rename("sx/fifo", "sx/fifo2"), lst("sx/fifo2"))[1])
    R.do("link", ["sx/fifo2", "sx/fifo3"], lambda: (os.link("sx/fifo2", "sx/fifo3"), lst("sx/fifo3"))[1])
    R.do("truncate", ["sx/fifo2"], lambda: os.truncate("sx/fifo2", 0))


def fifo_io():
    rfd = os.open("sx/fifo", os.O_RDONLY | os.O_NONBLOCK)
    wfd = os.open("sx/fifo", os.O_WRONLY | os.O_NONBLOCK)
    os.write(wfd, b"through fifo")
    d = os.read(rfd, 100)
    os.close(wfd)
    os.close(rfd)
    return [d.decode(), lst("sx/fifo")["size"]]


def sec_statvfs(R):
    def sv():
        s = os.statvfs(".")
        return {"namemax": s.f_namemax, "bsize": s.f_bsize, "frsize": s.f_frsize,
                "bfree_le_blocks": s.f_bfree <= s.f_blocks, "bavail_le_bfree": s.f_bavail <= s.f_bfree,
                "total_bytes": s.f_blocks * s.f_frsize, "ffree_le_files": s.f_ffree <= s.f_files,
                "files_gt_0": s.f_files > 0}
    R.do("statvfs", ["."], sv)
    def delta():
        s1 = os.statvfs(".")
        fd = os.open("sv_1m", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"s" * (1 << 20))
        os.fsync(fd)
        os.close(fd)
        s2 = os.statvfs(".")
        os.unlink("sv_1m")
        s3 = os.statvfs(".")
        used = (s1.f_bfree - s2.f_bfree) * s1.f_frsize // 4096
        # btfuse also counts the new inode's metadata (a few hundred bytes)
        # in used blocks: at most one more than tmpfs.
        return {"used_blocks_1m": min(used, 256), "metadata_le_1_block": used - 256 <= 1,
                "freed_back": s3.f_bfree == s1.f_bfree}
    R.do("statvfs_delta", ["sv_1m"], delta)
    R.do("statvfs", ["missing"], lambda: os.statvfs("missing").f_namemax)
    R.do("fstatvfs", ["."], lambda: with_fd(".", os.O_RDONLY, lambda fd: os.fstatvfs(fd).f_namemax))


def sec_large(R):
    os.mkdir("lg")
    total = 8 << 20
    data = data_of(42, total)
    want = hashlib.sha256(data).hexdigest()
    def wr():
        fd = os.open("lg/big", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        off = 0
        step = 65537
        while off < total:
            off += os.write(fd, data[off:off + step])
        os.fsync(fd)
        os.close(fd)
        return lst("lg/big")
    R.do("write_8m", ["lg/big"], wr)
    def rdh():
        h = hashlib.sha256()
        fd = os.open("lg/big", os.O_RDONLY)
        while True:
            c = os.read(fd, 1 << 20)
            if not c:
                break
            h.update(c)
        os.close(fd)
        return h.hexdigest() == want
    R.do("read_8m_sha256", ["lg/big"], rdh)
    def odd_reads():
        fd = os.open("lg/big", os.O_RDONLY)
        res = []
        for off, n in [(0, 1), (4095, 2), (131071, 131073), (total - 10, 100), (total, 10), (3 << 20, 1 << 20)]:
            res.append(os.pread(fd, n, off) == data[off:off + n])
        os.close(fd)
        return res
    R.do("pread_unaligned", ["lg/big"], odd_reads)
    R.do("copy_file_range", ["lg/big", "lg/copy", "2 MiB at 1 MiB+1"], lambda: (copy_range("lg/big", "lg/copy", (1 << 20) + 1, 2 << 20), hashlib.sha256(read_all("lg/copy")).hexdigest() == hashlib.sha256(data[(1 << 20) + 1:(3 << 20) + 1]).hexdigest(), lst("lg/copy"))[1:])
    R.do("truncate", ["lg/big", "3 MiB+5"], lambda: (os.truncate("lg/big", (3 << 20) + 5), lst("lg/big"), hashlib.sha256(read_all("lg/big")).hexdigest() == hashlib.sha256(data[:(3 << 20) + 5]).hexdigest())[1:])
    def overwrite_middle():
        fd = os.open("lg/big", os.O_RDWR)
        os.pwrite(fd, b"\xff" * 10000, 1 << 20)
        d = os.pread(fd, 20000, (1 << 20) - 5000)
        os.close(fd)
        exp = data[(1 << 20) - 5000:1 << 20] + b"\xff" * 10000 + data[(1 << 20) + 10000:(1 << 20) + 15000]
        return d == exp
    R.do("overwrite_middle", ["lg/big"], overwrite_middle)
    R.do("unlink", ["lg/big"], lambda: (os.unlink("lg/big"), listing("lg"))[1])


def sec_dirfd(R):
    os.mkdir("df")
    dfd = os.open("df", os.O_RDONLY | os.O_DIRECTORY)
    try:
        R.do("openat", ["df", "f", "O_CREAT"], lambda: (os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=dfd)), st_dict(os.stat("f", dir_fd=dfd)))[1])
        R.do("mkdirat", ["df", "sub"], lambda: (os.mkdir("sub", dir_fd=dfd), st_dict(os.stat("sub", dir_fd=dfd)))[1])
        R.do("renameat", ["df", "f", "df", "sub/g"], lambda: (os.rename("f", "sub/g", src_dir_fd=dfd, dst_dir_fd=dfd), listing("df/sub"))[1])
        R.do("symlinkat", ["df", "lnk"], lambda: (os.symlink("sub/g", "lnk", dir_fd=dfd), os.readlink("lnk", dir_fd=dfd))[1])
        R.do("fstatat", ["df", "lnk", "nofollow"], lambda: st_dict(os.stat("lnk", dir_fd=dfd, follow_symlinks=False)))
        R.do("fstatat", ["df", "..", "is root"], lambda: os.path.samestat(os.stat("..", dir_fd=dfd), os.stat(".")))
        R.do("faccessat", ["df", "sub/g"], lambda: os.access("sub/g", os.R_OK, dir_fd=dfd))
        R.do("unlinkat", ["df", "lnk"], lambda: (os.unlink("lnk", dir_fd=dfd), listing("df"))[1])
        R.do("unlinkat", ["df", "sub", "AT_REMOVEDIR non-empty"], lambda: os.rmdir("sub", dir_fd=dfd))
        R.do("openat", ["file fd", "x"], lambda: with_fd("df/sub/g", os.O_RDONLY, lambda fd: os.open("x", os.O_RDONLY, dir_fd=fd)))
        R.do("fchdir_relative", ["df/sub"], fchdir_rel)
    finally:
        os.close(dfd)


def fchdir_rel():
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.chdir("df/sub")
        write_file("rel", b"relative")
        r = [sorted(os.listdir(".")), st_dict(os.stat("../sub/rel")), os.path.exists("../../df")]
    finally:
        os.fchdir(here)
        os.close(here)
    return r + [rd("df/sub/rel")]


def sec_perms(R):
    """Operations on fixtures owned by root (see setup).  As root they mostly
    succeed, as an unprivileged user they give EACCES/EPERM; both runs are
    compared with the same run on tmpfs."""
    R.do("read", ["fx/root_private/secret"], lambda: rd("fx/root_private/secret"))
    R.do("listdir", ["fx/root_private"], lambda: listing("fx/root_private"))
    R.do("stat", ["fx/root_private/secret"], lambda: lst("fx/root_private/secret"))
    R.do("create", ["fx/root_ro_dir/new"], lambda: write_file("fx/root_ro_dir/new", b"n"))
    R.do("unlink", ["fx/root_ro_dir/inner"], lambda: os.unlink("fx/root_ro_dir/inner"))
    R.do("write", ["fx/root_ro_dir/inner", "world writable file in ro dir"], lambda: (write_file("fx/root_ro_dir/inner", b"rewritten\n", flags=os.O_WRONLY | os.O_TRUNC), rd("fx/root_ro_dir/inner"))[1])
    R.do("rename", ["fx/root_ro_dir/inner", "moved"], lambda: os.rename("fx/root_ro_dir/inner", "moved_inner"))
    R.do("open", ["fx/root_file", "O_WRONLY"], lambda: with_fd("fx/root_file", os.O_WRONLY, lambda fd: 0))
    R.do("open", ["fx/root_file", "O_RDONLY|O_TRUNC"], lambda: with_fd("fx/root_file", os.O_RDONLY | os.O_TRUNC, lambda fd: 0))
    R.do("truncate", ["fx/root_file"], lambda: os.truncate("fx/root_file", 5))
    R.do("chmod", ["fx/root_file"], lambda: os.chmod("fx/root_file", 0o644))
    R.do("chown", ["fx/root_file", "-1 -1"], lambda: os.chown("fx/root_file", -1, -1))
    R.do("utime", ["fx/root_file", "now"], lambda: os.utime("fx/root_file"))
    R.do("utime", ["fx/root_file", "explicit"], lambda: os.utime("fx/root_file", ns=(5, 5)))
    R.do("utime", ["fx/world_rw", "now, writable"], lambda: (os.utime("fx/world_rw"), 0)[1])
    R.do("utime", ["fx/world_rw", "explicit, writable"], lambda: os.utime("fx/world_rw", ns=(5, 5)))
    R.do("access", ["fx/root_file", "R,W,X"], lambda: [os.access("fx/root_file", m) for m in (os.R_OK, os.W_OK, os.X_OK)])
    R.do("access", ["fx/noexec_file", "X"], lambda: os.access("fx/noexec_file", os.X_OK))
    R.do("access", ["fx/root_suid", "R,W,X"], lambda: [os.access("fx/root_suid", m) for m in (os.R_OK, os.W_OK, os.X_OK)])
    R.do("write", ["fx/group_file"], lambda: write_file("fx/group_file", b"g", flags=os.O_WRONLY | os.O_APPEND))
    R.do("write", ["fx/world_rw", "append"], lambda: (write_file("fx/world_rw", b"+", flags=os.O_WRONLY | os.O_APPEND), rd("fx/world_rw"))[1])
    R.do("stat", ["fx/nosearch/f", "dir without x"], lambda: lst("fx/nosearch/f"))
    R.do("listdir", ["fx/nosearch", "dir without x"], lambda: sorted(os.listdir("fx/nosearch")))
    R.do("unlink", ["fx/sticky/root_owned", "sticky"], lambda: os.unlink("fx/sticky/root_owned"))
    R.do("rename", ["fx/sticky/root_owned", "fx/sticky/x", "sticky"], lambda: os.rename("fx/sticky/root_owned", "fx/sticky/x"))
    R.do("create", ["fx/sticky/mine"], lambda: (write_file("fx/sticky/mine", b"m"), lst("fx/sticky/mine"))[1])
    R.do("rename", ["fx/sticky/mine", "fx/sticky/root_owned", "sticky over other's"], lambda: os.rename("fx/sticky/mine", "fx/sticky/root_owned"))
    R.do("unlink", ["fx/sticky/mine"], lambda: os.unlink("fx/sticky/mine"))
    R.do("create", ["fx/sgid_dir/f", "setgid inheritance"], lambda: (write_file("fx/sgid_dir/f", b"s"), lst("fx/sgid_dir/f"))[1])
    R.do("mkdir", ["fx/sgid_dir/d", "setgid inheritance"], lambda: (os.mkdir("fx/sgid_dir/d", 0o755), lst("fx/sgid_dir/d"))[1])
    R.do("chmod", ["fx/sgid_dir/f", "02755 not in group"], lambda: (os.chmod("fx/sgid_dir/f", 0o2755), lst("fx/sgid_dir/f"))[1])
    R.do("chown", ["fx/sgid_dir/f", "-1:0 not in group"], lambda: os.chown("fx/sgid_dir/f", -1, 0))
    R.do("mknod", ["chr_unpriv", "1:3"], lambda: (os.mknod("chr2", stat.S_IFCHR | 0o600, os.makedev(1, 3)), lst("chr2"))[1])
    R.do("link", ["fx/root_file", "hard_to_root_file"], lambda: (os.link("fx/root_file", "hard_to_root_file"), lst("hard_to_root_file"))[1])
    R.do("rmdir", ["fx/root_private"], lambda: os.rmdir("fx/root_private"))
    R.do("setxattr", ["fx/world_rw", "user.w"], lambda: (os.setxattr("fx/world_rw", "user.w", b"1"), 0)[1])
    R.do("lstat", ["fx"], lambda: [lst("fx/" + n) for n in sorted(os.listdir("fx"))])


def sec_mmap(R):
    import mmap
    os.mkdir("mm")
    write_file("mm/f", b"a" * 10000)
    def mm():
        fd = os.open("mm/f", os.O_RDWR)
        m = mmap.mmap(fd, 10000)
        a = m[9998:10000]
        m[0:5] = b"HELLO"
        m.flush()
        m.close()
        b = os.pread(fd, 5, 0)
        os.close(fd)
        return [a.decode(), b.decode(), rd("mm/f")]
    R.do("mmap_shared_write", ["mm/f"], mm)
    def mm_private():
        fd = os.open("mm/f", os.O_RDONLY)
        m = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        a = m[:]
        m.close()
        os.close(fd)
        return [len(a), a[:5].decode(), a[-2:].decode()]
    R.do("mmap_private_read", ["mm/f"], mm_private)


def sec_many(R):
    os.mkdir("many")
    def create_many():
        for k in range(500):
            write_file("many/f%04d" % k, b"%d" % k)
        names = os.listdir("many")
        return [len(names), len(set(names)), lst("many")["nlink"]]
    R.do("create_500", ["many"], create_many)
    def remove_odd():
        for k in range(1, 500, 2):
            os.unlink("many/f%04d" % k)
        names = sorted(os.listdir("many"))
        return [len(names), names == ["f%04d" % k for k in range(0, 500, 2)]]
    R.do("unlink_250", ["many"], remove_odd)
    def contents():
        return all(read_all("many/f%04d" % k) == b"%d" % k for k in range(0, 500, 2))
    R.do("read_250", ["many"], contents)
    R.do("listdir", ["."], lambda: listing("."))


def run(root, skip):
    os.umask(0o022)
    os.chdir(root)
    R = Runner()
    R.emit("whoami", [], {"ok": {"uid": os.geteuid(), "gid": os.getegid()}})
    R.emit("exceptions", [], {"ok": sorted(k for k, (on, _) in EXCEPTIONS.items() if on)})
    for name in SECTIONS:
        if name in skip:
            R.emit("skipped_section", [name], {"ok": True})
            continue
        R.emit("section", [name], {"ok": True})
        globals()["sec_" + name](R)
    R.emit("done", [], {"ok": R.i + 1})


def main(argv):
    if len(argv) < 3 or argv[1] not in ("setup", "run"):
        sys.stderr.write(__doc__)
        return 2
    root = argv[2]
    if argv[1] == "setup":
        owner = None
        if "--owner" in argv:
            u, g = argv[argv.index("--owner") + 1].split(":")
            owner = (int(u), int(g))
        setup(root, owner)
        return 0
    skip = set()
    i = 3
    while i < len(argv):
        if argv[i] == "--skip":
            skip.add(argv[i + 1])
            i += 2
        else:
            sys.stderr.write("unknown argument %r\n" % argv[i])
            return 2
    unknown = skip - set(SECTIONS)
    if unknown:
        sys.stderr.write("unknown sections %r\n" % sorted(unknown))
        return 2
    run(root, skip)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
