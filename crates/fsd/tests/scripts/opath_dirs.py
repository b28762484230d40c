"""O_PATH directory fds as the base of relative paths (what rsync does).

Usage: opath_dirs.py ROOT OTHER
ROOT: an empty directory on the filesystem under test; OTHER: an empty
directory elsewhere (never under test). Prints one line per step: what a
call returned or its errno, never a path, so the output on tmpfs, on the
FUSE mount and through the preload library can be compared byte for byte.
Run it as root: the last part drops to uid/gid 65534 in a child.
"""
import ctypes
import errno
import os
import platform
import sys

ROOT, OTHER = sys.argv[1], sys.argv[2]
O_PATH_DIR = os.O_PATH | os.O_DIRECTORY


def step(label, f):
    try:
        r = f()
    except OSError as e:
        r = "errno %s" % errno.errorcode.get(e.errno, e.errno)
    print("%s: %s" % (label, r))


def mode(st):
    return "%o" % st.st_mode


os.mkdir(os.path.join(ROOT, "a"))
os.mkdir(os.path.join(ROOT, "a", "deep"))
with open(os.path.join(ROOT, "a", "f"), "w") as f:
    f.write("in a\n")
os.symlink("deep", os.path.join(ROOT, "a", "link"))
with open(os.path.join(OTHER, "only_in_other"), "w") as f:
    f.write("other\n")

# An O_PATH fd of a directory: relative calls work, I/O on the fd does not.
d = os.open(os.path.join(ROOT, "a"), O_PATH_DIR)
step("stat f", lambda: os.stat("f", dir_fd=d).st_size)
step("read f", lambda: os.read(os.open("f", os.O_RDONLY, dir_fd=d), 100))
step("mkdir sub", lambda: os.mkdir("sub", 0o750, dir_fd=d))
step("stat sub", lambda: mode(os.stat("sub", dir_fd=d)))
step("create g", lambda: os.close(os.open("g", os.O_CREAT | os.O_WRONLY, 0o640, dir_fd=d)))
step("rename g h", lambda: os.rename("g", "h", src_dir_fd=d, dst_dir_fd=d))
step("stat h", lambda: mode(os.stat("h", dir_fd=d)))
step("chmod h", lambda: os.chmod("h", 0o600, dir_fd=d))
step("utime h", lambda: os.utime("h", ns=(10**9, 2 * 10**9), dir_fd=d))
step("stat h times", lambda: (os.stat("h", dir_fd=d).st_mtime_ns, mode(os.stat("h", dir_fd=d))))
step("unlink h", lambda: os.unlink("h", dir_fd=d))
step("stat h gone", lambda: os.stat("h", dir_fd=d))
step("readlink link", lambda: os.readlink("link", dir_fd=d))
step("O_PATH through link", lambda: os.close(os.open("link", O_PATH_DIR, dir_fd=d)))
step("O_PATH nofollow link", lambda: os.open("link", O_PATH_DIR | os.O_NOFOLLOW, dir_fd=d))
step("O_PATH of a file", lambda: os.open("f", O_PATH_DIR, dir_fd=d))
step("listdir fd", lambda: sorted(os.listdir(d)))
step("read fd", lambda: os.read(d, 10))
step("fstat fd", lambda: mode(os.fstat(d)))
step("fchmod fd", lambda: os.fchmod(d, 0o755))
step("missing", lambda: os.stat("nope", dir_fd=d))
step("file as dir", lambda: os.stat("f/x", dir_fd=d))
step("dotdot", lambda: sorted(os.listdir(os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=d))))

# A walk one component at a time from the root, as rsync's receiver does.
w = os.open("/", O_PATH_DIR)
for comp in [c for c in ROOT.split("/") if c] + ["a", "deep"]:
    n = os.open(comp, O_PATH_DIR | os.O_NOFOLLOW, dir_fd=w)
    os.close(w)
    w = n
step("walked create", lambda: os.close(os.open("made", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=w)))
step("walked listing", lambda: sorted(os.listdir(os.path.join(ROOT, "a", "deep"))))
step("fchdir", lambda: os.fchdir(w))
step("cwd relative", lambda: os.stat("made").st_size)
os.chdir("/")
os.close(w)

# The same number for another directory: after close, after dup2 onto it,
# and after a close the library does not see (a raw system call).
os.close(d)
e = os.open(OTHER, O_PATH_DIR)
step("reused number sees other", lambda: (e == d, os.stat("only_in_other", dir_fd=e).st_size))
step("reused number not a", lambda: os.stat("f", dir_fd=e))
os.close(e)
d = os.open(os.path.join(ROOT, "a"), O_PATH_DIR)
o = os.open(OTHER, O_PATH_DIR)
os.dup2(o, d)
step("dup2 onto it sees other", lambda: os.stat("only_in_other", dir_fd=d).st_size)
os.close(o)
os.close(d)
d = os.open(os.path.join(ROOT, "a"), O_PATH_DIR)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall(3 if platform.machine() == "x86_64" else 57, d)  # SYS_close
e = os.open(OTHER, O_PATH_DIR)
step("raw close then reuse sees other", lambda: (e == d, os.stat("only_in_other", dir_fd=e).st_size))
step("raw close then reuse not a", lambda: os.stat("f", dir_fd=e))
os.close(e)

# Permissions: an O_PATH fd needs only the search of its path, and gives
# nothing the directory's own mode refuses.
x = os.path.join(ROOT, "xonly")
os.mkdir(x, 0o711)
with open(os.path.join(x, "r"), "w") as f:
    f.write("readable\n")
os.chmod(os.path.join(x, "r"), 0o644)
os.mkdir(os.path.join(ROOT, "closed"), 0o700)
with open(os.path.join(ROOT, "closed", "s"), "w") as f:
    f.write("secret\n")
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    step("user O_PATH xonly", lambda: os.close(os.open(x, O_PATH_DIR)))
    xd = os.open(x, O_PATH_DIR)
    step("user stat r", lambda: os.stat("r", dir_fd=xd).st_size)
    step("user read r", lambda: os.read(os.open("r", os.O_RDONLY, dir_fd=xd), 100))
    step("user create in xonly", lambda: os.open("new", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=xd))
    step("user listdir xonly", lambda: os.listdir(x))
    step("user O_PATH closed", lambda: os.close(os.open(os.path.join(ROOT, "closed"), O_PATH_DIR)))
    cd = os.open(os.path.join(ROOT, "closed"), O_PATH_DIR)
    step("user stat through closed", lambda: os.stat("s", dir_fd=cd))
    step("user open through closed", lambda: os.open("s", os.O_RDONLY, dir_fd=cd))
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
print("done")
