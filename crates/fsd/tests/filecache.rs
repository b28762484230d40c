//! A file a process opens and reads again is opened and read from what
//! the process kept (`interpose`'s `filecache`): no round trip, and never
//! stale nor more than the process may read now, whatever changed it and
//! through whichever door.

mod common;

use common::*;
use std::process::Command;

/// Reads file `argv[1]` `argv[2]` times (open, read, close each time)
/// and prints what the reads gave.
const READ_AGAIN: &str = r#"
import os, sys
seen = set()
for _ in range(int(sys.argv[2])):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    seen.add(os.read(fd, 100))
    os.close(fd)
print(sorted(seen))
"#;

/// Runs [`READ_AGAIN`] through the library: its output.
fn read_again(lib: &str, f: &std::path::Path, times: u32) -> String {
    let times = times.to_string();
    preloaded_python_args_ok(lib, READ_AGAIN, &[f.as_os_str(), times.as_ref()])
        .trim()
        .to_string()
}

/// Runs python `script` preloaded on a fresh mount's file `f`, made with
/// `content` and `mode`: its output, or `None` when `test` is skipped.
fn python_on_file(test: &str, content: &[u8], mode: u32, script: &str) -> Option<String> {
    let lib = preload_or_skip(test)?;
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    std::fs::write(&f, content).unwrap();
    set_mode(&f, mode);
    Some(preloaded_python_ok(&lib, script, &f).trim().to_string())
}

#[test]
fn a_file_read_again_asks_the_daemon_once() {
    let Some(lib) = preload_or_skip("a_file_read_again_asks_the_daemon_once") else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    std::fs::write(&f, b"kept").unwrap();
    let (opens, reads) = (
        fast_path_count(bt.path(), "open"),
        fast_path_count(bt.path(), "read"),
    );
    assert_eq!(read_again(&lib, &f, 200), "[b'kept']");
    // A file is kept once opened again: the first two opens ask, and the
    // reads of the first three (its bytes are kept once it is read again).
    assert!(fast_path_count(bt.path(), "open") - opens <= 2);
    assert!(fast_path_count(bt.path(), "read") - reads <= 3);
}

/// An open of a small file brings its bytes (`interpose`'s `opendata`):
/// its read needs no round trip.
#[test]
fn an_open_brings_a_small_files_bytes() {
    let Some(lib) = preload_or_skip("an_open_brings_a_small_files_bytes") else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    std::fs::write(&f, b"abc").unwrap();
    // Read once: a read now would not update the atime (relatime), which
    // a read that would must reach the daemon for.
    assert_eq!(std::fs::read(&f).unwrap(), b"abc");
    let reads = fast_path_count(bt.path(), "read");
    assert_eq!(read_again(&lib, &f, 1), "[b'abc']");
    assert_eq!(fast_path_count(bt.path(), "read"), reads);
}

/// After [`TWO_WRITERS`] (started before the opens): between the open
/// that brought the bytes and the read, a writer changes the file, through
/// either door: the read sees the change.
const CHANGED_AFTER_OPEN: &str = r#"
out = []
for code, writer in [
    ("open(f, 'r+b').write(b'v2')", fast),
    ("open(f, 'r+b').write(b'v3')", slow),
    ("os.truncate(f, 1)", slow),
    ("open(f, 'ab').write(b'+')", fast),
    ("os.utime(f, (1, 1))", slow),
]:
    # Read first, so that the open brings the bytes (the atime is not due).
    with open(f, "rb") as r:
        r.read()
    fd = os.open(f, os.O_RDONLY)
    change(writer, code)
    out.append(os.read(fd, 100))
    os.close(fd)
stop_writers()
print(out)
"#;

#[test]
fn bytes_an_open_brought_never_outlive_a_change() {
    let Some(out) = python_on_file(
        "bytes_an_open_brought_never_outlive_a_change",
        b"v1",
        0o644,
        &format!("{TWO_WRITERS}{CHANGED_AFTER_OPEN}"),
    ) else {
        return;
    };
    // As on tmpfs; the last read, after an atime set a day back, reaches
    // the daemon (relatime updates it).
    assert_eq!(out, "[b'v2', b'v3', b'v', b'v+', b'v+']");
}

/// The reader keeps reading while other processes change the file: each
/// change, once it returned, is what the next read sees.
const READ_WHILE_CHANGED: &str = r#"
import os, subprocess, sys
f = sys.argv[1]
MAPPER = """
import mmap, sys
f = open(sys.argv[1], 'r+b')
m = mmap.mmap(f.fileno(), 2)
m[0:1] = b'm'
print('stored', flush=True)
sys.stdin.read()
"""
kernel = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
def read():
    fd = os.open(f, os.O_RDONLY)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)
def other(code, env):
    subprocess.run([sys.executable, "-c", code, f], env=env, check=True)
out = []
for step, (code, env) in enumerate([
    ("import sys; open(sys.argv[1], 'r+b').write(b'v2')", dict(os.environ)),
    ("import sys; open(sys.argv[1], 'r+b').write(b'v3')", kernel),
    (None, kernel),
    ("import os, sys; os.truncate(sys.argv[1], 1)", kernel),
    ("import sys; open(sys.argv[1], 'ab').write(b'+')", dict(os.environ)),
]):
    read(); read()
    if code:
        other(code, env)
        out.append(read())
        continue
    # A store through a shared mapping the writer keeps: in the kernel's
    # page only, until it is written back.
    w = subprocess.Popen([sys.executable, "-c", MAPPER, f], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert w.stdout.readline() == b"stored\n"
    out.append(read())
    w.stdin.close()
    w.wait()
print(out)
"#;

#[test]
fn what_a_reader_kept_never_outlives_a_change_through_either_door() {
    let Some(out) = python_on_file(
        "what_a_reader_kept_never_outlives_a_change_through_either_door",
        b"v1",
        0o644,
        READ_WHILE_CHANGED,
    ) else {
        return;
    };
    assert_eq!(out, "[b'v2', b'v3', b'm3', b'm', b'm+']");
}

/// What a user may read once and not after a chmod: the kept handle never
/// opens it for them again.
const OPEN_TWICE: &str = r#"
import os, sys
out = []
for _ in range(2):
    try:
        fd = os.open(sys.argv[1], os.O_RDONLY)
        out.append(os.read(fd, 100))
        os.close(fd)
    except PermissionError:
        out.append("EACCES")
print(out)
"#;

#[test]
fn a_kept_handle_opens_nothing_the_caller_may_no_longer_read() {
    let Some(lib) = preload_or_skip("a_kept_handle_opens_nothing_the_caller_may_no_longer_read")
    else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    std::fs::write(&f, b"open").unwrap();
    set_mode(&f, 0o644);
    // One process: it reads, the file is made unreadable for it (through
    // the kernel), it tries again, the file is made readable, again.
    let script = format!(
        "{OPEN_TWICE}\nimport subprocess\nsubprocess.run(['kill', '-STOP', str(os.getpid())])\n{}",
        OPEN_TWICE.replace("out = []", "out = []  # after")
    );
    let mut child = command_as(Some(NOBODY), PYTHON)
        .args(["-c", &script])
        .arg(&f)
        .env("LD_PRELOAD", &lib)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + PY_ANSWER;
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit(')')
            .next()
            .is_none_or(|r| !r.trim_start().starts_with('T'))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader never stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    set_mode(&f, 0o600);
    let cont = std::process::Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status();
    assert!(cont.is_ok_and(|s| s.success()));
    let status = wait_timeout(&mut child, PY_ANSWER).expect("the reader never ended");
    assert!(status.success());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    assert_eq!(text, "[b'open', b'open']\n['EACCES', 'EACCES']\n");
}

/// A file removed by the process that read it: gone, its blocks free at
/// once; one removed while open: still readable, free once closed.
const READ_THEN_REMOVE: &str = r#"
import os, sys
d = sys.argv[1]
def free():
    s = os.statvfs(d)
    return s.f_bfree, s.f_ffree
def read(p):
    fd = os.open(p, os.O_RDONLY)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)
before = free()
out = []
for name, how in (("a", "unlink"), ("b", "rename over")):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(b"x" * 3000)
    read(p); read(p)
    if how == "unlink":
        os.unlink(p)
    else:
        with open(p + ".new", "wb") as f:
            pass
        os.rename(p + ".new", p)
        os.unlink(p)
    out.append(free() == before)
p = os.path.join(d, "c")
with open(p, "wb") as f:
    f.write(b"open")
read(p)
fd = os.open(p, os.O_RDONLY)
os.unlink(p)
out.append(os.read(fd, 100))
os.close(fd)
out.append(free() == before)
print(out)
"#;

#[test]
fn a_file_the_reader_removes_is_freed_as_on_tmpfs() {
    let Some(lib) = preload_or_skip("a_file_the_reader_removes_is_freed_as_on_tmpfs") else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let d = bt.path().join("d");
    std::fs::create_dir(&d).unwrap();
    assert_eq!(
        preloaded_python_ok(&lib, READ_THEN_REMOVE, &d).trim(),
        "[True, True, b'open', True]"
    );
}

/// Root reads a file only root may read three times (the file is kept),
/// then becomes another user; [`OPEN_TWICE`] follows.
const READ_THEN_DROP_ROOT: &str = r#"
import os, sys
out = []
for _ in range(3):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    out.append(os.read(fd, 100))
    os.close(fd)
print(out)
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
"#;

/// The kept handle is root's: it never opens the file for the new user.
#[test]
fn a_credential_change_leaves_the_kept_handles_behind() {
    let script = format!("{READ_THEN_DROP_ROOT}{OPEN_TWICE}");
    let test = "a_credential_change_leaves_the_kept_handles_behind";
    let Some(out) = python_on_file(test, b"root only", 0o600, &script) else {
        return;
    };
    assert_eq!(
        out,
        "[b'root only', b'root only', b'root only']\n['EACCES', 'EACCES']"
    );
}

/// A child forked after its parent kept a file reads it through its own
/// handles (the parent's are not the child's), and sees a change the
/// parent made after the fork.
const FORK_AFTER_KEEPING: &str = r#"
import os, sys
p = sys.argv[1]
def read():
    fd = os.open(p, os.O_RDONLY)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)
for _ in range(3):
    read()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)
    os.write(1, repr([read(), read()]).encode() + b"\n")
    os._exit(0)
os.close(r)
with open(p, "r+b") as f:
    f.write(b"NEW")
os.write(w, b"x")
os.waitpid(pid, 0)
"#;

#[test]
fn a_child_reads_what_its_parent_kept_only_through_its_own_handles() {
    let Some(out) = python_on_file(
        "a_child_reads_what_its_parent_kept_only_through_its_own_handles",
        b"old",
        0o644,
        FORK_AFTER_KEEPING,
    ) else {
        return;
    };
    assert_eq!(out, "[b'NEW', b'NEW']");
}

/// Threads that open the same files again at once never get a handle the
/// process let go: two of them keeping one file made it two entries of
/// the cache, and a later open of its path got a released handle (`EBADF`
/// from its read). `scripts/shared_opens.c`; a race, which one run of this
/// size caught about every other time.
#[test]
fn threads_opening_the_same_files_at_once_read_them_all() {
    let test = "threads_opening_the_same_files_at_once_read_them_all";
    static BUILT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(prog) = compiled_c(&BUILT, "shared_opens.c", test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let out = run_timeout(
        Command::new(&prog)
            .arg(bt.path())
            .args(["1000", "4", "60"])
            .env("LD_PRELOAD", &lib),
        PY_ANSWER,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.trim() == "ok", "{text}");
}
