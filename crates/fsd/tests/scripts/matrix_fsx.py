#!/usr/bin/python3
"""fsx-style randomized operation sequence (stdlib only).

    matrix_fsx.py run  ROOT SEED NOPS   # random ops under ROOT, one log line each
    matrix_fsx.py tree ROOT             # canonical listing of the tree under ROOT

The same SEED gives the same sequence of operations; every result is logged
(errno names, sizes, offsets, sha256 prefixes of data), never fd numbers or
times, so the logs of two filesystems can be compared line by line.
Operations reference open files by slot number (the library keeps fds of its
own, so raw fd numbers may legitimately differ).
"""
import errno
import fcntl
import hashlib
import os
import random
import stat
import sys

# BTFUSE_FSX_KNOWN_BUGS=1 also runs the op patterns of known bugs.
AVOID_KNOWN_BUGS = os.environ.get("BTFUSE_FSX_KNOWN_BUGS") != "1"
NAMES = ["a", "b", "c", "d0/a", "d0/b", "d0/sub/y", "d1/x", "d1/y", "d0", "d1", "d0/sub", "l0"]
FILE_NAMES = ["a", "b", "c", "d0/a", "d0/b", "d0/sub/y", "d1/x", "d1/y"]
DIR_NAMES = ["d0", "d1", "d0/sub", "d2"]
FLAGS = [
    ("RDONLY", os.O_RDONLY),
    ("WRONLY", os.O_WRONLY),
    ("RDWR", os.O_RDWR),
    ("RDWR|CREAT", os.O_RDWR | os.O_CREAT),
    ("WRONLY|CREAT|TRUNC", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ("RDWR|CREAT|EXCL", os.O_RDWR | os.O_CREAT | os.O_EXCL),
    ("WRONLY|APPEND", os.O_WRONLY | os.O_APPEND),
    ("RDWR|APPEND|CREAT", os.O_RDWR | os.O_APPEND | os.O_CREAT),
    ("RDWR|TRUNC", os.O_RDWR | os.O_TRUNC),
    ("RDONLY|DIRECTORY", os.O_RDONLY | os.O_DIRECTORY),
    ("RDONLY|NOFOLLOW", os.O_RDONLY | os.O_NOFOLLOW),
    ("RDWR|CLOEXEC", os.O_RDWR | os.O_CLOEXEC),
]


def digest(b):
    return "%d:%s" % (len(b), hashlib.sha256(b).hexdigest()[:16])


def ename(e):
    return "E:" + errno.errorcode.get(e.errno, str(e.errno))


class Fsx:
    def __init__(self, root, seed):
        self.root = root
        self.rng = random.Random(seed)
        self.slots = {}  # slot -> (fd, is_dir)
        self.next_slot = 0
        self.i = 0

    def p(self, name):
        # Half absolute, half relative to the cwd (the root): both are served.
        if self.rng.random() < 0.5:
            return os.path.join(self.root, name)
        return name

    def log(self, *parts):
        sys.stdout.write("%d %s\n" % (self.i, " ".join(str(x) for x in parts)))

    def data(self):
        r = self.rng.random()
        if r < 0.02:
            n = self.rng.randint(1, 5 << 20)  # larger than the 4 MiB bulk area
        elif r < 0.15:
            n = self.rng.randint(4096, 200000)
        else:
            n = self.rng.randint(0, 5000)
        return self.rng.randbytes(n)

    def offset(self):
        r = self.rng.random()
        if r < 0.1:
            return self.rng.randint(0, 3 << 20)
        return self.rng.randint(0, 70000)

    def slot(self):
        if not self.slots:
            return None
        return self.rng.choice(sorted(self.slots))

    def add(self, fd, is_dir):
        s = self.next_slot
        self.next_slot += 1
        self.slots[s] = (fd, is_dir)
        return s

    def st(self, s):
        kind = "f" if stat.S_ISREG(s.st_mode) else "d" if stat.S_ISDIR(s.st_mode) else "l" if stat.S_ISLNK(s.st_mode) else "?"
        size = s.st_size if not stat.S_ISDIR(s.st_mode) else "-"
        return "%s size=%s nlink=%d mode=%o" % (kind, size, s.st_nlink, stat.S_IMODE(s.st_mode))

    # ---- operations -----------------------------------------------------
    def op_open(self):
        name = self.rng.choice(NAMES + ["d2", "zz"])
        fname, flags = self.rng.choice(FLAGS)
        try:
            fd = os.open(self.p(name), flags, 0o644)
        except OSError as e:
            self.log("open", name, fname, ename(e))
            return
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        s = self.add(fd, is_dir)
        self.log("open", name, fname, "-> slot", s, "dir" if is_dir else "file", "pos", os.lseek(fd, 0, os.SEEK_CUR) if not is_dir else "-")

    def op_close(self):
        s = self.slot()
        if s is None:
            return
        fd, _ = self.slots.pop(s)
        os.close(fd)
        self.log("close", s)

    def op_read(self):
        s = self.slot()
        if s is None:
            return
        fd, _ = self.slots[s]
        n = self.rng.choice([0, 1, 100, 4096, 10000, 70000, 300000])
        try:
            b = os.read(fd, n)
            self.log("read", s, n, "->", digest(b), "pos", os.lseek(fd, 0, os.SEEK_CUR))
        except OSError as e:
            self.log("read", s, n, ename(e))

    def op_write(self):
        s = self.slot()
        if s is None:
            return
        fd, _ = self.slots[s]
        d = self.data()
        try:
            n = os.write(fd, d)
            self.log("write", s, digest(d), "->", n, "pos", os.lseek(fd, 0, os.SEEK_CUR))
        except OSError as e:
            self.log("write", s, digest(d), ename(e))

    def op_pread(self):
        s = self.slot()
        if s is None:
            return
        fd, _ = self.slots[s]
        n = self.rng.choice([1, 512, 4096, 9000, 100000])
        off = self.offset()
        try:
            b = os.pread(fd, n, off)
            self.log("pread", s, n, off, "->", digest(b))
        except OSError as e:
            self.log("pread", s, n, off, ename(e))

    def op_pwrite(self):
        s = self.slot()
        if s is None:
            return
        fd, _ = self.slots[s]
        d = self.data()
        off = self.offset()
        try:
            n = os.pwrite(fd, d, off)
            self.log("pwrite", s, digest(d), off, "->", n, "pos", os.lseek(fd, 0, os.SEEK_CUR))
        except OSError as e:
            self.log("pwrite", s, digest(d), off, ename(e))

    def op_lseek(self):
        s = self.slot()
        if s is None:
            return
        fd, is_dir = self.slots[s]
        if is_dir:
            return  # directory offsets are filesystem cookies
        whence, wn = self.rng.choice([(os.SEEK_SET, "SET"), (os.SEEK_CUR, "CUR"), (os.SEEK_END, "END")])
        off = self.rng.choice([0, self.offset(), -self.rng.randint(0, 5000), -(1 << 40)])
        try:
            self.log("lseek", s, off, wn, "->", os.lseek(fd, off, whence))
        except OSError as e:
            self.log("lseek", s, off, wn, ename(e))

    def op_fstat(self):
        s = self.slot()
        if s is None:
            return
        fd, _ = self.slots[s]
        self.log("fstat", s, self.st(os.fstat(fd)))

    def op_ftruncate(self):
        s = self.slot()
        if s is None:
            return
        fd, _ = self.slots[s]
        n = self.offset()
        try:
            os.ftruncate(fd, n)
            self.log("ftruncate", s, n, "ok pos", os.lseek(fd, 0, os.SEEK_CUR))
        except OSError as e:
            self.log("ftruncate", s, n, ename(e))

    def op_truncate(self):
        name = self.rng.choice(NAMES)
        n = self.offset()
        try:
            os.truncate(self.p(name), n)
            self.log("truncate", name, n, "ok")
        except OSError as e:
            self.log("truncate", name, n, ename(e))

    def op_stat(self):
        name = self.rng.choice(NAMES + DIR_NAMES)
        try:
            self.log("lstat", name, self.st(os.lstat(self.p(name))))
        except OSError as e:
            self.log("lstat", name, ename(e))
        try:
            self.log("stat", name, self.st(os.stat(self.p(name))))
        except OSError as e:
            self.log("stat", name, ename(e))

    def op_rename(self):
        a = self.rng.choice(NAMES + DIR_NAMES)
        b = self.rng.choice(NAMES + DIR_NAMES)
        try:
            os.rename(self.p(a), self.p(b))
            self.log("rename", a, b, "ok")
        except OSError as e:
            self.log("rename", a, b, ename(e))

    def op_unlink(self):
        name = self.rng.choice(NAMES)
        try:
            os.unlink(self.p(name))
            self.log("unlink", name, "ok")
        except OSError as e:
            self.log("unlink", name, ename(e))

    def op_link(self):
        a = self.rng.choice(FILE_NAMES + ["l0"])
        b = self.rng.choice(NAMES)
        try:
            os.link(self.p(a), self.p(b), follow_symlinks=False)
            self.log("link", a, b, "ok")
        except OSError as e:
            self.log("link", a, b, ename(e))

    def op_symlink(self):
        target = self.rng.choice(["a", "d0/a", "../a", "nowhere", "d1"])
        name = self.rng.choice(NAMES)
        try:
            os.symlink(target, self.p(name))
            self.log("symlink", target, name, "ok")
        except OSError as e:
            self.log("symlink", target, name, ename(e))
        try:
            self.log("readlink", name, os.readlink(self.p(name)))
        except OSError as e:
            self.log("readlink", name, ename(e))

    def op_mkdir(self):
        name = self.rng.choice(DIR_NAMES + NAMES)
        try:
            os.mkdir(self.p(name), 0o755)
            self.log("mkdir", name, "ok")
        except OSError as e:
            self.log("mkdir", name, ename(e))

    def op_rmdir(self):
        name = self.rng.choice(DIR_NAMES + NAMES)
        try:
            os.rmdir(self.p(name))
            self.log("rmdir", name, "ok")
        except OSError as e:
            self.log("rmdir", name, ename(e))

    def op_listdir(self):
        name = self.rng.choice(["."] + DIR_NAMES)
        try:
            self.log("listdir", name, sorted(os.listdir(self.p(name))))
        except OSError as e:
            self.log("listdir", name, ename(e))

    def op_dup(self):
        s = self.slot()
        if s is None:
            return
        fd, is_dir = self.slots[s]
        nfd = os.dup(fd)
        n = self.add(nfd, is_dir)
        self.log("dup", s, "-> slot", n)

    def op_dup2(self):
        s = self.slot()
        t = self.slot()
        if s is None or s == t:
            return
        fd, is_dir = self.slots[s]
        tfd, _ = self.slots[t]
        os.dup2(fd, tfd)
        self.slots[t] = (tfd, is_dir)
        self.log("dup2", s, t, "pos", os.lseek(tfd, 0, os.SEEK_CUR) if not is_dir else "-")

    def op_fork(self):
        s = self.slot()
        if s is None:
            return
        fd, is_dir = self.slots[s]
        if is_dir:
            return
        if AVOID_KNOWN_BUGS and self.known_bug_at_fork():
            return
        d = self.data()[:100000]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            # Child: write through the inherited fd (shared offset), report.
            try:
                os.close(r)
                try:
                    n = os.write(fd, d)
                    msg = "wrote %d pos %d" % (n, os.lseek(fd, 0, os.SEEK_CUR))
                except OSError as e:
                    msg = ename(e)
                try:
                    b = os.pread(fd, 64, 0)
                    msg += " head " + digest(b)
                except OSError as e:
                    msg += " head " + ename(e)
                os.write(w, msg.encode())
                os.close(w)
            finally:
                os._exit(0)
        os.close(w)
        msg = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            msg += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        self.log("fork", s, digest(d), "child:", msg.decode(), "status", status, "parent pos", os.lseek(fd, 0, os.SEEK_CUR), self.st(os.fstat(fd)))

    def known_bug_at_fork(self):
        # Known btfuse gap (see matrix.rs): after a fork every fd is a
        # kernel fd on the FUSE mount, and the kernel appends an O_APPEND
        # write at the file size it has cached, which a size change made
        # through the fast path since (truncate by path) leaves stale.
        # (Forks after an fd's file was unlinked or renamed used to break
        # it too; fixed: the fd is reopened by handle, not by path.)
        for fd, _ in self.slots.values():
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
                return True
        return False

    OPS = [
        (op_open, 12),
        (op_close, 8),
        (op_read, 10),
        (op_write, 10),
        (op_pread, 6),
        (op_pwrite, 8),
        (op_lseek, 8),
        (op_fstat, 4),
        (op_ftruncate, 4),
        (op_truncate, 3),
        (op_stat, 5),
        (op_rename, 4),
        (op_unlink, 3),
        (op_link, 2),
        (op_symlink, 2),
        (op_mkdir, 3),
        (op_rmdir, 2),
        (op_listdir, 3),
        (op_dup, 3),
        (op_dup2, 2),
        (op_fork, 1),
    ]

    def run(self, nops):
        os.chdir(self.root)
        funcs = [f for f, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        for self.i in range(nops):
            f = self.rng.choices(funcs, weights)[0]
            f(self)
            if len(self.slots) > 24:
                s = min(self.slots)
                os.close(self.slots.pop(s)[0])
                self.log("close", s, "(limit)")
            sys.stdout.flush()
        for s in sorted(self.slots):
            os.close(self.slots.pop(s)[0])
        self.i = nops
        self.log("end")


def tree(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            s = os.lstat(p)
            name = os.path.normpath(os.path.join(rel, n))
            if stat.S_ISLNK(s.st_mode):
                out.append("%s l -> %s" % (name, os.readlink(p)))
            elif stat.S_ISDIR(s.st_mode):
                out.append("%s d nlink=%d mode=%o" % (name, s.st_nlink, stat.S_IMODE(s.st_mode)))
            else:
                with open(p, "rb") as f:
                    data = f.read()
                out.append("%s f size=%d nlink=%d mode=%o sha256=%s" % (name, s.st_size, s.st_nlink, stat.S_IMODE(s.st_mode), hashlib.sha256(data).hexdigest()))
    print("\n".join(out))


def main():
    os.umask(0o022)
    if sys.argv[1] == "run":
        root, seed, nops = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print("fsx seed %d ops %d" % (seed, nops))
        Fsx(root, seed).run(nops)
    elif sys.argv[1] == "tree":
        tree(sys.argv[2])
    else:
        sys.exit("usage: matrix_fsx.py run ROOT SEED NOPS | tree ROOT")


if __name__ == "__main__":
    main()
