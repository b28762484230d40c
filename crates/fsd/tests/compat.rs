//! Compatibility of the preload library with process-level events: real
//! programs (sh, bash, python3, coreutils) run once on tmpfs without the
//! library and once on a btfuse mount with it; their outputs must match
//! (the scratch root is printed as "ROOT").
//!
//! * credential changes (`setuid` & co., `seteuid` round trips,
//!   `setfsuid`): the process must lose root's access for new opens while
//!   fds opened before the change keep working;
//! * `exec*`, `posix_spawn`, `system`, `popen`, `vfork` (Python's
//!   subprocess): fast-path fds inherited by a child are real fds there;
//! * the rest of the surface: `utime*`, `statvfs`, `euidaccess`,
//!   `preadv`/`pwritev` (+2).
//!
//! Every run is bounded (`run_timeout`) and every mount is a guard.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A scratch directory for scripts (world-readable), removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: fresh_dir("compat"),
        }
    }

    fn script(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::write(&p, text).expect("write script");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod script");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `LD_PRELOAD` value, or a loud skip.
fn lib(test: &str) -> Option<String> {
    if !fuse_available(test) {
        return None;
    }
    match preload_lib() {
        Some(l) => Some(l.display().to_string()),
        None => {
            eprintln!("\n*** SKIPPED {test}: libbtfuse.so not built ***\n");
            None
        }
    }
}

/// What a run printed: stdout, then stderr, then the exit code, with the
/// scratch root replaced by "ROOT".
struct Run {
    out: String,
    /// stderr alone (the library's debug lines go there).
    err: String,
}

fn run(program: &str, args: &[&str], root: &Path, preload: Option<&str>, debug: bool) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args).arg(root).current_dir(root);
    cmd.env_remove("LD_PRELOAD").env_remove("BTFUSE_DEBUG");
    if let Some(l) = preload {
        cmd.env("LD_PRELOAD", l);
        if debug {
            cmd.env("BTFUSE_DEBUG", "1");
        }
    }
    let o = run_timeout(&mut cmd, RUN_TIMEOUT);
    let root_s = root.display().to_string();
    let stdout = String::from_utf8_lossy(&o.stdout).replace(&root_s, "ROOT");
    let stderr = String::from_utf8_lossy(&o.stderr).replace(&root_s, "ROOT");
    // Debug lines are the library's, not the program's.
    let program_err: String = stderr
        .lines()
        .filter(|l| !l.starts_with("btfuse: "))
        .map(|l| format!("{l}\n"))
        .collect();
    Run {
        out: format!(
            "{stdout}--- stderr ---\n{program_err}### exit {:?}\n",
            o.status.code()
        ),
        err: stderr,
    }
}

/// Runs `program script` on tmpfs (no preload) and on btfuse (preload),
/// after `setup` prepared each root; asserts equal outputs and returns
/// the btfuse run.
fn differential(
    test: &str,
    program: &str,
    script: &Path,
    setup: impl Fn(&Path),
    debug: bool,
) -> Option<(String, Run)> {
    let lib = lib(test)?;
    let tmp = TmpfsGuard::new("64M");
    set_mode(tmp.path(), 0o755);
    setup(tmp.path());
    let s = script.to_str().expect("utf-8 path");
    let want = run(program, &[s], tmp.path(), None, false);
    let bt = BtfuseGuard::new("64M");
    setup(bt.path());
    let got = run(program, &[s], bt.path(), Some(&lib), debug);
    assert_same_output(test, "tmpfs", &want.out, "btfuse", &got.out);
    Some((want.out, got))
}

/// A root-only secret and a world-readable file.
fn secret_setup(root: &Path) {
    fs::write(root.join("secret"), "secret\n").expect("write secret");
    set_mode(&root.join("secret"), 0o600);
    fs::write(root.join("public"), "public\n").expect("write public");
    set_mode(&root.join("public"), 0o644);
}

const SETUID_PY: &str = r#"
import os, sys
d = sys.argv[1]
def try_open(name):
    try:
        fd = os.open(os.path.join(d, name), os.O_RDONLY)
        data = os.read(fd, 100)
        os.close(fd)
        return "read %r" % data
    except OSError as e:
        return "errno %d" % e.errno
old = os.open(os.path.join(d, "secret"), os.O_RDONLY)
print("before:", os.read(old, 3))
dup = os.dup(old)
lst = os.listdir(d)
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
print("ids:", os.getresuid(), os.getresgid())
print("open secret:", try_open("secret"))
print("open public:", try_open("public"))
try:
    with open(os.path.join(d, "secret")) as f:
        print("fopen secret:", f.read())
except OSError as e:
    print("fopen secret: errno", e.errno)
print("old fd reads on:", os.read(old, 100))
print("dup shares offset:", os.lseek(dup, 0, os.SEEK_CUR))
print("old fd pread:", os.pread(old, 100, 0))
print("fstat old:", oct(os.fstat(old).st_mode), os.fstat(old).st_uid)
print("access secret R_OK:", os.access(os.path.join(d, "secret"), os.R_OK))
print("stat secret:", oct(os.stat(os.path.join(d, "secret")).st_mode))
print("listdir:", sorted(os.listdir(d)) == sorted(lst))
try:
    os.open(os.path.join(d, "new"), os.O_CREAT | os.O_WRONLY, 0o644)
    print("create in root dir: ok")
except OSError as e:
    print("create in root dir: errno", e.errno)
try:
    os.chmod(os.path.join(d, "secret"), 0o644)
    print("chmod secret: ok")
except OSError as e:
    print("chmod secret: errno", e.errno)
os.close(old)
os.close(dup)
"#;

/// After `setresuid(65534)` a process that connected as root must not keep
/// root's channel: new opens of a 0600 root file fail with EACCES (through
/// the fast path, on a new channel), while fds opened before keep reading
/// (POSIX: an open fd keeps its access).
#[test]
fn setuid_drops_root_access_but_keeps_open_fds() {
    let t = "setuid_drops_root_access_but_keeps_open_fds";
    let s = Scratch::new();
    let py = s.script("setuid.py", SETUID_PY);
    let Some((want, got)) = differential(t, PYTHON, &py, secret_setup, true) else {
        return;
    };
    assert!(want.contains("open secret: errno 13"), "{want}");
    assert!(want.contains("old fd reads on: b'ret\\n'"), "{want}");
    // The fast path was really used after the change: a second channel
    // was connected (with the new credentials).
    let connects = got.err.matches("channel connected").count();
    assert!(
        connects >= 2,
        "expected a reconnection after setuid, debug log:\n{}",
        got.err
    );
}

const SETEUID_PY: &str = r#"
import os, sys
d = sys.argv[1]
s = os.path.join(d, "secret")
def try_open(p):
    try:
        fd = os.open(p, os.O_RDONLY)
        os.close(fd)
        return "ok"
    except OSError as e:
        return "errno %d" % e.errno
os.setegid(65534)
os.seteuid(65534)
print("euid open:", try_open(s))
print("access (real ids):", os.access(s, os.R_OK))
print("access (effective ids):", os.access(s, os.R_OK, effective_ids=True))
os.seteuid(0)
os.setegid(0)
print("back to root open:", try_open(s))
print("access again:", os.access(s, os.R_OK, effective_ids=True))
"#;

/// `seteuid` there and back: new opens follow the effective ids, `access`
/// keeps checking the real ones (root), `euidaccess` the effective ones.
#[test]
fn seteuid_round_trip_follows_effective_ids() {
    let t = "seteuid_round_trip_follows_effective_ids";
    let s = Scratch::new();
    let py = s.script("seteuid.py", SETEUID_PY);
    let Some((want, _)) = differential(t, PYTHON, &py, secret_setup, false) else {
        return;
    };
    assert!(want.contains("euid open: errno 13"), "{want}");
    assert!(want.contains("access (real ids): True"), "{want}");
    assert!(want.contains("back to root open: ok"), "{want}");
}

const SETFSUID_PY: &str = r#"
import ctypes, os, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
old = os.open(os.path.join(d, "secret"), os.O_RDONLY)
libc.setfsgid(65534)
libc.setfsuid(65534)
for name in ("secret", "public"):
    try:
        fd = os.open(os.path.join(d, name), os.O_RDONLY)
        print(name, os.read(fd, 100))
        os.close(fd)
    except OSError as e:
        print(name, "errno", e.errno)
print("old fd:", os.read(old, 100))
"#;

/// `setfsuid` changes the identity the kernel's FUSE requests carry, which
/// the daemon cannot learn from its peer credentials: the process must
/// still be refused like on the kernel path.
#[test]
fn setfsuid_is_honoured() {
    let t = "setfsuid_is_honoured";
    let s = Scratch::new();
    let py = s.script("setfsuid.py", SETFSUID_PY);
    let Some((want, _)) = differential(t, PYTHON, &py, secret_setup, false) else {
        return;
    };
    assert!(want.contains("secret errno 13"), "{want}");
}

const EXEC_SH: &str = r#"
cd "$1"
printf 'line1\nline2\nline3\n' > f
# exec without fork: the new program inherits fd 3 (preloaded or not).
sh -c 'exec 3<f; read -r x <&3; echo "sh read $x"; exec /usr/bin/python3 -c "import os; print(\"py read\", os.read(3, 100))"'
sh -c 'exec 3<f; exec env -u LD_PRELOAD /usr/bin/python3 -c "import os; print(\"plain py read\", os.read(3, 100))"'
sh -c 'exec 3<f; cat <&3'
bash -c 'exec 4>g; echo one >&4; /bin/echo two >&4; exec 4>&-; cat g'
bash -c 'exec 5>>g; echo three >&5; exec env -u LD_PRELOAD sh -c "echo four >&5"'
cat g
bash -c 'cat < f > h; wc -c h; exec 6<h; head -c 6 <&6; exec cat <&6'
echo "--- find -exec"
find . -name f -exec cat {} +
"#;

/// Shells and their children: fds opened by a preloaded shell work in
/// exec'd programs, preloaded or not, with the offset shared.
#[test]
fn exec_inherits_working_fds() {
    let t = "exec_inherits_working_fds";
    let s = Scratch::new();
    let sh = s.script("exec.sh", EXEC_SH);
    let Some((want, _)) = differential(t, "bash", &sh, |_| {}, false) else {
        return;
    };
    assert!(want.contains("py read b'line2\\nline3\\n'"), "{want}");
    assert!(want.contains("three\nfour\n"), "{want}");
}

const SPAWN_PY: &str = r#"
import ctypes, os, subprocess, sys
d = sys.argv[1]
os.chdir(d)
with open("f", "w") as w:
    w.write("alpha\nbeta\ngamma\n")
fd = os.open("f", os.O_RDONLY)
os.read(fd, 6)
# subprocess (vfork + exec in CPython 3.11), pass_fds.
r = subprocess.run(["/usr/bin/python3", "-c", "import os,sys; print(os.read(int(sys.argv[1]), 5))", str(fd)],
                   pass_fds=[fd], capture_output=True)
print("subprocess:", r.stdout, r.returncode)
print("offset now:", os.lseek(fd, 0, os.SEEK_CUR))
# posix_spawn with a dup2 file action of a close-on-exec fast-path fd.
out = os.open("spawned", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
src = os.open("f", os.O_RDONLY)
pid = os.posix_spawn("/bin/cat", ["cat"], dict(os.environ),
                     file_actions=[(os.POSIX_SPAWN_DUP2, src, 0), (os.POSIX_SPAWN_DUP2, out, 1)])
print("posix_spawn status:", os.waitpid(pid, 0)[1])
os.close(out)
print("spawned file:", open("spawned").read().split())
# os.system and os.popen (glibc-internal spawns).
os.set_inheritable(src, True)
os.lseek(src, 0, os.SEEK_SET)
print("system:", os.system("head -c 6 <&%d" % src))
libc = ctypes.CDLL(None, use_errno=True)
libc.popen.restype = ctypes.c_void_p
libc.popen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fread.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
libc.pclose.argtypes = [ctypes.c_void_p]
fp = libc.popen(b"cat <&%d" % src, b"r")
buf = ctypes.create_string_buffer(4096)
n = libc.fread(buf, 1, 4096, fp)
print("popen:", buf.raw[:n].split(), libc.pclose(fp))
# stdin redirection from a fast-path file.
with open("f") as fin:
    print("stdin:", subprocess.run(["wc", "-l"], stdin=fin, capture_output=True).stdout)
# execle / execlp (variadic) replace this process: last.
os.lseek(src, 0, os.SEEK_SET)
sys.stdout.flush()
if os.fork() == 0:
    env = (ctypes.c_char_p * 2)(b"WHO=execle", None)
    libc.execle(b"/bin/sh", b"sh", b"-c", b"echo $WHO; head -n 1 <&%d" % src, None, env)
    os._exit(99)
print("execle child:", os.wait()[1])
sys.stdout.flush()
libc.execlp(b"sh", b"sh", b"-c", b"echo execlp; cat <&%d" % src, None)
print("execlp failed", ctypes.get_errno())
"#;

/// Python's spawning paths (vfork-based subprocess, posix_spawn with file
/// actions, system, popen, the variadic execle/execlp): every child sees
/// working fds on the files the parent opened through the fast path.
#[test]
fn spawned_children_inherit_working_fds() {
    let t = "spawned_children_inherit_working_fds";
    let s = Scratch::new();
    let py = s.script("spawn.py", SPAWN_PY);
    let Some((want, _)) = differential(t, PYTHON, &py, |_| {}, false) else {
        return;
    };
    assert!(want.contains(r#"subprocess: b"b'beta\\n'\n" 0"#), "{want}");
    assert!(want.contains("popen: [b'beta', b'gamma'] 0"), "{want}");
    assert!(want.contains("execlp\nbeta\ngamma"), "{want}");
}

const SURFACE_PY: &str = r#"
import ctypes, os, sys
d = sys.argv[1]
os.chdir(d)
libc = ctypes.CDLL(None, use_errno=True)
class TV(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]
class UB(ctypes.Structure):
    _fields_ = [("actime", ctypes.c_long), ("modtime", ctypes.c_long)]
def tv(a, b):
    return (TV * 2)(TV(*a), TV(*b))
def times(p, follow=True):
    st = os.stat(p, follow_symlinks=follow)
    return (st.st_atime_ns, st.st_mtime_ns)
def rc(r):
    return "ok" if r == 0 else "errno %d" % ctypes.get_errno()
with open("f", "w") as w:
    w.write("0123456789")
os.symlink("f", "l")
print("utimes", rc(libc.utimes(b"f", tv((1000, 5), (2000, 7)))), times("f"))
print("utimes bad usec", rc(libc.utimes(b"f", tv((1, 1000000), (2, 0)))), times("f"))
print("utime", rc(libc.utime(b"f", ctypes.byref(UB(3000, 4000)))), times("f"))
print("lutimes", rc(libc.lutimes(b"l", tv((5000, 1), (6000, 2)))), times("l", False), times("f"))
fd = os.open("f", os.O_RDWR)
print("futimes", rc(libc.futimes(fd, tv((7000, 3), (8000, 4)))), times("f"))
dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
print("futimesat", rc(libc.futimesat(dfd, b"f", tv((9000, 0), (9100, 0)))), times("f"))
print("futimesat null path", rc(libc.futimesat(fd, None, tv((9200, 0), (9300, 0)))), times("f"))
print("futimesat missing", rc(libc.futimesat(dfd, b"nope", tv((1, 0), (1, 0)))))
print("utimes now", rc(libc.utimes(b"f", None)))
print("euidaccess", rc(libc.euidaccess(b"f", os.R_OK | os.W_OK)), rc(libc.euidaccess(b"nope", os.F_OK)))
print("eaccess", rc(libc.eaccess(b"f", os.X_OK)), rc(libc.eaccess(b"l", os.R_OK)))
print("pwritev", os.pwritev(fd, [b"ab", b"cd"], 3))
print("preadv", os.preadv(fd, [bytearray(2), bytearray(3)], 1))
b1, b2 = bytearray(4), bytearray(4)
print("preadv bufs", os.preadv(fd, [b1, b2], 2), bytes(b1), bytes(b2))
print("pwritev2 sync", os.pwritev(fd, [b"XY"], 0, os.RWF_SYNC))
print("preadv at end", os.preadv(fd, [bytearray(8)], 100))
try:
    b = bytearray(2)
    print("preadv -1 (file offset)", os.preadv(fd, [b], -1), bytes(b))
except OSError as e:
    print("preadv -1 errno", e.errno)
print("offset untouched", os.lseek(fd, 0, os.SEEK_CUR))
a = os.open("f", os.O_WRONLY | os.O_APPEND)
print("pwritev append", os.pwritev(a, [b"++"], 0))
print("content", open("f", "rb").read())
rfd = os.open("f", os.O_RDONLY)
try:
    os.pwritev(rfd, [b"no"], 0)
except OSError as e:
    print("pwritev on O_RDONLY errno", e.errno)
buf = ctypes.create_string_buffer(256)
ctypes.memmove(buf, (128).to_bytes(4, "little"), 4)
mid = ctypes.c_int()
print("name_to_handle_at dirfd", rc(libc.name_to_handle_at(dfd, b"f", buf, ctypes.byref(mid), 0)))
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.fgets.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.fileno.argtypes = [ctypes.c_void_p]
sfd = os.open("f", os.O_RDWR)
os.read(sfd, 2)
fp = libc.fdopen(sfd, b"r+")
line = ctypes.create_string_buffer(64)
libc.fgets(line, 5, fp)
print("fdopen fgets", line.value, libc.fileno(fp) == sfd)
print("fdopen fputs", libc.fputs(b"<stdio>", fp) >= 0, libc.fclose(fp))
print("after stdio", open("f", "rb").read())
print("name_to_handle_at empty path", rc(libc.name_to_handle_at(fd, b"", buf, ctypes.byref(mid), 0x1000)))
"#;

/// utime/utimes/lutimes/futimes/futimesat, euidaccess/eaccess,
/// preadv/pwritev (+2), name_to_handle_at: same results as tmpfs.
#[test]
fn remaining_surface_matches_tmpfs() {
    let t = "remaining_surface_matches_tmpfs";
    let s = Scratch::new();
    let py = s.script("surface.py", SURFACE_PY);
    let Some((want, _)) = differential(t, PYTHON, &py, |_| {}, false) else {
        return;
    };
    assert!(
        want.contains("utimes ok (1000000005000, 2000000007000)"),
        "{want}"
    );
    assert!(want.contains("content b'XY2abcd789++'"), "{want}");
}

const STATVFS_SH: &str = r#"
cd "$1"
echo data > f
/usr/bin/python3 -c '
import os
fd = os.open("f", os.O_RDONLY)
for r in (os.statvfs("."), os.statvfs("f"), os.fstatvfs(fd)):
    print(r.f_bsize, r.f_frsize, r.f_blocks, r.f_bfree, r.f_bavail, r.f_files, r.f_ffree, r.f_favail, r.f_flag, r.f_namemax)
try:
    os.statvfs("missing")
except OSError as e:
    print("missing", e.errno)
'
df --output=itotal,iused,size,used,avail . | tr -s ' '
stat -f -c '%T %b %f %a %c %d %l %S %s' f
"#;

/// `statvfs`/`fstatvfs` (python, df) through the fast path equal the FUSE
/// mount's answers (tmpfs has other numbers).
#[test]
fn statvfs_matches_the_fuse_mount() {
    let t = "statvfs_matches_the_fuse_mount";
    let Some(lib) = lib(t) else {
        return;
    };
    let s = Scratch::new();
    let sh = s.script("statvfs.sh", STATVFS_SH);
    let sh = sh.to_str().expect("utf-8 path");
    let bt = BtfuseGuard::new("64M");
    let plain = run("bash", &[sh], bt.path(), None, false);
    let fast = run("bash", &[sh], bt.path(), Some(&lib), false);
    assert_same_output(t, "fuse", &plain.out, "preload", &fast.out);
    assert!(plain.out.contains("missing 2"), "{}", plain.out);
}

const READINESS_PY: &str = r#"
import os, select, sys
os.chdir(sys.argv[1])
with open("f", "w") as w:
    w.write("ready\n")
fd = os.open("f", os.O_RDWR)
p = select.poll()
p.register(fd, select.POLLIN | select.POLLOUT)
print("poll", p.poll(0))
print("select", select.select([fd], [fd], [fd], 0))
ep = select.epoll()
try:
    ep.register(fd, select.EPOLLIN | select.EPOLLOUT)
    print("epoll", ep.poll(0))
except OSError as e:
    print("epoll error", e.errno)
print("read", os.read(fd, 100))
os.write(fd, b"more\n")
os.lseek(fd, 0, os.SEEK_SET)
print("after", os.read(fd, 100))
"#;

/// `poll`, `select` and `epoll` on a fast-path fd answer as on the plain
/// mount (ready; epoll accepts the file), not as on a placeholder fd
/// (`POLLNVAL`, `EBADF`), and the file keeps working afterwards.
#[test]
fn readiness_calls_behave_as_on_the_plain_mount() {
    let t = "readiness_calls_behave_as_on_the_plain_mount";
    let Some(lib) = lib(t) else {
        return;
    };
    let s = Scratch::new();
    let py = s.script("readiness.py", READINESS_PY);
    let py = py.to_str().expect("utf-8 path");
    let bt = BtfuseGuard::new("16M");
    let plain = run(PYTHON, &[py], bt.path(), None, false);
    let fast = run(PYTHON, &[py], bt.path(), Some(&lib), false);
    assert_same_output(t, "fuse", &plain.out, "preload", &fast.out);
    assert!(plain.out.contains("poll [(3, 5)]"), "{}", plain.out);
}

const SENDFILE_PY: &str = r#"
import os, sys
os.chdir(sys.argv[1])
with open("src", "wb") as f:
    f.write(bytes(range(256)) * 40)
i = os.open("src", os.O_RDONLY)
o = os.open("dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
print("whole", os.sendfile(o, i, None, 6000), os.lseek(i, 0, os.SEEK_CUR), os.lseek(o, 0, os.SEEK_CUR))
print("rest", os.sendfile(o, i, None, 1 << 20), os.lseek(i, 0, os.SEEK_CUR))
print("at eof", os.sendfile(o, i, None, 100))
print("offset", os.sendfile(o, i, 100, 50), os.lseek(i, 0, os.SEEK_CUR), os.lseek(o, 0, os.SEEK_CUR))
os.close(o)
print("same", open("dst", "rb").read() == open("src", "rb").read() + bytes(range(100, 150)))
a = os.open("dst", os.O_WRONLY | os.O_APPEND)
try:
    os.sendfile(a, i, 0, 10)
except OSError as e:
    print("append", e.errno)
r = os.open("dst", os.O_RDONLY)
try:
    os.sendfile(r, i, 0, 10)
except OSError as e:
    print("read-only out", e.errno)
pr, pw = os.pipe()
print("to a pipe", os.sendfile(pw, i, 0, 64), len(os.read(pr, 100)))
"#;

/// `sendfile` between two mount files is served by the daemon (no
/// `sendfile` syscall) with the kernel's offset rules and errnos; with a
/// pipe at one end, the pipe is written from the channel's bulk area.
#[test]
fn sendfile_between_mount_files_is_served_by_the_daemon() {
    let t = "sendfile_between_mount_files_is_served_by_the_daemon";
    let s = Scratch::new();
    let py = s.script("sendfile.py", SENDFILE_PY);
    let Some((want, _)) = differential(t, PYTHON, &py, |_| {}, false) else {
        return;
    };
    assert!(
        want.contains("same True") && want.contains("append 22"),
        "{want}"
    );
    if !have_strace(t) {
        return;
    }
    let lib = lib(t).unwrap();
    let bt = BtfuseGuard::new("16M");
    let log = bt.path().with_extension("strace");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=sendfile", "-o"])
        .arg(&log)
        .args([PYTHON, py.to_str().unwrap()])
        .arg(bt.path())
        .env("LD_PRELOAD", &lib);
    assert!(run_timeout(&mut cmd, RUN_TIMEOUT).status.success());
    let calls = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    // None reaches the kernel: the one with a pipe at one end writes to
    // the pipe from the channel's bulk area.
    assert_eq!(
        calls.lines().filter(|l| l.contains("sendfile(")).count(),
        0,
        "{calls}"
    );
}

const CLONE_PY: &str = r#"
import os, fcntl, sys, struct
FICLONE = 0x40049409
FICLONERANGE = 0x4020940d
os.chdir(sys.argv[1])
s = os.open("cl_src", os.O_RDWR|os.O_CREAT, 0o644); os.write(s, b"abc")
d = os.open("cl_dst", os.O_RDWR|os.O_CREAT, 0o644)
ro = os.open("cl_dst", os.O_RDONLY)
ap = os.open("cl_dst", os.O_WRONLY|os.O_APPEND)
dd = os.open(".", os.O_RDONLY|os.O_DIRECTORY)
# Ends on other filesystems: a pipe, /dev/null; and an O_PATH fd.
pr, pw = os.pipe()
null = os.open("/dev/null", os.O_RDWR)
path = os.open("cl_src", os.O_PATH)
for name, dst, src in (("clone", d, s), ("ro dst", ro, s), ("append dst", ap, s), ("dir", dd, s), ("dir src", d, dd), ("bad src", d, 999),
                       ("pipe src", d, pr), ("null src", d, null), ("opath src", d, path), ("to pipe", pw, s), ("to null", null, s),
                       ("opath dst", path, s)):
    try:
        fcntl.ioctl(dst, FICLONE, src); print(name, "ok")
    except OSError as e:
        print(name, e.errno)
try:
    fcntl.ioctl(d, FICLONERANGE, struct.pack("qQQQ", s, 0, 0, 0)); print("range ok")
except OSError as e:
    print("range", e.errno)
print(os.read(d, 10), os.lseek(d, 0, os.SEEK_CUR))
"#;

/// `FICLONE`/`FICLONERANGE` (tried by `cp` before it copies) between two
/// mount files answer as on tmpfs and the plain mount (no reflinks:
/// `EOPNOTSUPP`, after `EISDIR`/`EBADF`) without sending either file to
/// the kernel; with the other end on another filesystem, `EXDEV` (after
/// `EBADF` for no open file or an `O_PATH` one), whichever end is the
/// mount's.
#[test]
fn reflink_ioctls_answer_as_without_the_library() {
    let t = "reflink_ioctls_answer_as_without_the_library";
    let s = Scratch::new();
    let py = s.script("clone.py", CLONE_PY);
    let Some((want, _)) = differential(t, PYTHON, &py, |_| {}, false) else {
        return;
    };
    assert!(
        want.contains("clone 95") && want.contains("range 95") && want.contains("to pipe 18"),
        "{want}"
    );
}

const SENDFILE_ELSEWHERE_PY: &str = r#"
import os, shutil, sys, tempfile
os.chdir(sys.argv[1])
other = tempfile.mkdtemp(dir="/tmp")
try:
    src = os.open("sf_src", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(src, b"0123456789" * 1000)
    o = os.open(os.path.join(other, "o"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    at = lambda fd: os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(src, 3, os.SEEK_SET)
    print("to other", os.sendfile(o, src, None, 25), at(src), at(o))
    print("to other at", os.sendfile(o, src, 9990, 100), at(src), at(o))
    os.lseek(o, 0, os.SEEK_SET)
    print(os.read(o, 200))
    d = os.open("sf_dst", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.lseek(o, 5, os.SEEK_SET)
    print("from other", os.sendfile(d, o, None, 20), at(o), at(d))
    print("from other at", os.sendfile(d, o, 0, 1000), at(o), at(d))
    os.lseek(d, 0, os.SEEK_SET)
    print(os.read(d, 2000))
    r, w = os.pipe()
    print("to pipe", os.sendfile(w, src, 0, 50), os.read(r, 100), at(src))
    ap = os.open("sf_dst", os.O_WRONLY | os.O_APPEND)
    ro = os.open("sf_dst", os.O_RDONLY)
    wo = os.open(os.path.join(other, "o"), os.O_WRONLY)
    for name, out_fd, in_fd in (("append out", ap, o), ("rdonly out", ro, o), ("wronly in", d, wo),
                                ("bad in", d, 999), ("append src", o, ap), ("wronly src", o, d)):
        try:
            print(name, os.sendfile(out_fd, in_fd, None, 10))
        except OSError as e:
            print(name, e.errno)
    print("zero", os.sendfile(d, o, None, 0), at(o), at(d))
    shutil.copyfile("sf_src", os.path.join(other, "copy"))
    shutil.copyfile(os.path.join(other, "copy"), "sf_back")
    print(open("sf_back", "rb").read() == open("sf_src", "rb").read())
finally:
    shutil.rmtree(other)
"#;

/// `sendfile` between a mount file and a file elsewhere (or a pipe), as
/// python's `shutil.copyfile` copies: data, offsets and errnos as on
/// tmpfs, and the mount file stays a fast-path file (it used to be made
/// kernel-backed for each copy).
#[test]
fn sendfile_with_another_filesystem_answers_as_without_the_library() {
    let t = "sendfile_with_another_filesystem_answers_as_without_the_library";
    let s = Scratch::new();
    let py = s.script("sendfile_elsewhere.py", SENDFILE_ELSEWHERE_PY);
    let Some((want, _)) = differential(t, PYTHON, &py, |_| {}, false) else {
        return;
    };
    assert!(
        want.contains("to other 25 28 25") && want.contains("\nTrue\n"),
        "{want}"
    );
}

const MKSTEMP_PY: &str = r#"
import ctypes, fcntl, os, stat, sys
os.chdir(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def made(fn, template, *args):
    b = ctypes.create_string_buffer(template)
    fd = fn(b, *args)
    if fd < 0:
        return "errno %d, template of %d" % (ctypes.get_errno(), len(b.value))
    name = b.value.decode()
    st = os.fstat(fd)
    os.write(fd, b"x")
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    os.close(fd)
    return "%s %d %o %s %d %s" % (name.startswith(template.decode().split("X")[0]), len(name),
                                   stat.S_IMODE(st.st_mode), bool(fl & os.O_APPEND), os.path.getsize(name),
                                   os.path.exists(name))
print("mkstemp", made(libc.mkstemp, b"tmpXXXXXX"))
print("mkstemp dir", made(libc.mkstemp, b"sub/tmpXXXXXX"))
print("mkostemp append", made(libc.mkostemp, b"appXXXXXX", os.O_APPEND))
print("mkstemps", made(libc.mkstemps, b"sfxXXXXXX.txt", 4))
print("mkostemps", made(libc.mkostemps, b"sfoXXXXXX.c", 2, os.O_CLOEXEC))
print("few X", made(libc.mkstemp, b"badXXXXX"))
print("no dir", made(libc.mkstemp, b"nodir/tXXXXXX"))
print("long suffix", made(libc.mkstemps, b"aXXXXXX", 9))
print("suffixes kept", sorted(f.rsplit(".", 1)[1] for f in os.listdir(".") if "." in f))
print("files", sorted(len(f) for f in os.listdir(".") if f != "sub"), sorted(len(f) for f in os.listdir("sub")))
"#;

/// The `mkstemp` family on the mount (glibc creates the file with its own
/// `open`, which the library replaces so the file is a fast-path file):
/// names, modes, flags and errnos as on tmpfs.
#[test]
fn mkstemp_family_answers_as_without_the_library() {
    let t = "mkstemp_family_answers_as_without_the_library";
    let s = Scratch::new();
    let py = s.script("mkstemp.py", MKSTEMP_PY);
    let Some((want, _)) = differential(
        t,
        PYTHON,
        &py,
        |r| fs::create_dir(r.join("sub")).unwrap(),
        false,
    ) else {
        return;
    };
    assert!(
        want.contains("mkstemp True 9 600 False 1 True") && want.contains("few X errno 22"),
        "{want}"
    );
}

/// `cp` (coreutils 9 tries a reflink before every copy) of files from
/// tmpfs into the mount: the copies stay fast-path files (each reflink
/// attempt used to make its file kernel-backed: `cp -a` of 10 000 files
/// 1 383 ms against 380 now, 1 120 on the plain mount).
#[test]
fn cp_into_the_mount_keeps_its_files_on_the_fast_path() {
    let t = "cp_into_the_mount_keeps_its_files_on_the_fast_path";
    let Some(lib) = lib(t) else {
        return;
    };
    let tmp = TmpfsGuard::new("16M");
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..20 {
        fs::write(src.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    let bt = BtfuseGuard::new("16M");
    let dst = bt.path().join("dst");
    let handed = fast_path_count(bt.path(), "drop_handle_name");
    let out = run_timeout(
        Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(&dst)
            .env("LD_PRELOAD", &lib),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..20 {
        let got = fs::read_to_string(dst.join(format!("f{i}"))).unwrap();
        assert_eq!(got, format!("file {i}\n"));
    }
    assert_eq!(fast_path_count(bt.path(), "drop_handle_name"), handed);
}

/// A process that starts a thread before its first call on the mount: the
/// library grows the fd table (for its descriptors, above 960) before the
/// table is shared, as growing a shared table waits for an RCU grace
/// period: the thread's first call took 10-28 ms instead of 0.2-0.4 ms.
#[test]
fn the_fd_table_grows_before_a_second_thread_shares_it() {
    let test = "the_fd_table_grows_before_a_second_thread_shares_it";
    let Some(lib) = lib(test) else {
        return;
    };
    let Some(prog) = compiled_c(&FIRST_CALLS, "first_calls.c", test) else {
        return;
    };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0);
    if lim.rlim_cur < 1024 {
        eprintln!("{test}: skipped: RLIMIT_NOFILE {} < 1024", lim.rlim_cur);
        return;
    }
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    std::fs::write(m.join("t0"), "t0").unwrap();
    let fdsize = |preload: bool| {
        let mut cmd = Command::new(&prog);
        cmd.arg(m).arg("fdsize");
        if preload {
            cmd.env("LD_PRELOAD", &lib);
        }
        let out = run_timeout(&mut cmd, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("FDSize? {text:?}"))
    };
    let plain = fdsize(false);
    if plain >= 1024 {
        // Inherited from a parent with that many fds: nothing to show.
        eprintln!("{test}: skipped: FDSize {plain} without the library");
        return;
    }
    let preloaded = fdsize(true);
    assert!(
        preloaded >= 1024,
        "FDSize {preloaded} when the thread started"
    );
}

static FIRST_CALLS: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Threads whose first fast-path calls start together each connect a
/// channel at the same moment; all of them must be one client to the daemon
/// (one process image), or a descriptor opened by one thread reads as
/// `EBADF` on another thread's channel (seen in the 4-thread benchmark:
/// the image number was chosen twice by racing threads).
#[test]
fn threads_starting_together_are_one_client() {
    let test = "threads_starting_together_are_one_client";
    let Some(lib) = lib(test) else {
        return;
    };
    let Some(prog) = compiled_c(&FIRST_CALLS, "first_calls.c", test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    for i in 0..8 {
        std::fs::write(m.join(format!("t{i}")), format!("t{i}")).unwrap();
    }
    let rounds = env_u64("BTFUSE_FIRST_CALL_ROUNDS", 150);
    for round in 0..rounds {
        let out = run_timeout(
            Command::new(&prog).arg(m).env("LD_PRELOAD", &lib),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
