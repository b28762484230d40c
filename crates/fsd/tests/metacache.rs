//! The library's metadata cache never gives a stale answer: a torture test
//! of writers and readers, preloaded and not, as root and as a user, on
//! one tree (`scripts/metacache_torture.py` says what each one does).
//!
//! A step's writer alternates between a preloaded process and one going
//! through the kernel; each checker is told a step only after the
//! writer's calls returned, and must then see exactly that version; free
//! readers run throughout and check that no version ever goes back.
//! `BTFUSE_TORTURE_STEPS` sets the number of steps (default 150;
//! `BTFUSE_TORTURE_LONG=1` makes it 5000).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;

/// One process of the test: its stdin and its stdout's lines.
struct Actor {
    name: String,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    _proc: Proc,
}

impl Actor {
    fn start(
        name: &str,
        lib: Option<&str>,
        uid: Option<u32>,
        script: &Path,
        root: &Path,
        role: &str,
    ) -> Actor {
        let mut cmd = command_as(uid, PYTHON);
        cmd.arg(script)
            .arg(root)
            .arg(role)
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(lib) = lib {
            cmd.env("LD_PRELOAD", lib);
        }
        let mut child = cmd.spawn().expect("spawn python");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Actor {
            name: name.to_string(),
            stdin,
            lines,
            _proc: Proc(child),
        }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("{}: {e}", self.name));
        stdin.flush().unwrap();
    }

    fn answer(&self) -> String {
        self.lines
            .recv_timeout(PY_ANSWER)
            .unwrap_or_else(|e| panic!("{}: no answer ({e})", self.name))
    }
}

#[test]
fn no_process_ever_sees_a_change_undone_once_it_returned() {
    let Some(lib) = preload_or_skip("no_process_ever_sees_a_change_undone_once_it_returned") else {
        return;
    };
    let steps = match std::env::var("BTFUSE_TORTURE_LONG").as_deref() {
        Ok("1") => 5000,
        _ => env_u64("BTFUSE_TORTURE_STEPS", 150),
    };
    let mnt = BtfuseGuard::new("256M");
    let root = mnt.path();
    let script = ScriptCopy::new("metacache_torture.py");
    let lib = Some(lib.as_str());
    let setup = Actor::start("setup", lib, None, &script.path, root, "setup");
    assert_eq!(setup.answer(), "ok");

    let mut writers = [
        Actor::start("preloaded writer", lib, None, &script.path, root, "writer"),
        Actor::start("kernel writer", None, None, &script.path, root, "writer"),
    ];
    let mut checkers = [
        Actor::start(
            "preloaded checker",
            lib,
            None,
            &script.path,
            root,
            "checker",
        ),
        Actor::start(
            "preloaded user checker",
            lib,
            Some(NOBODY),
            &script.path,
            root,
            "checker",
        ),
        Actor::start("kernel checker", None, None, &script.path, root, "checker"),
    ];
    let free = [
        Actor::start(
            "preloaded free reader",
            lib,
            None,
            &script.path,
            root,
            "free",
        ),
        Actor::start(
            "preloaded user free reader",
            lib,
            Some(NOBODY),
            &script.path,
            root,
            "free",
        ),
        Actor::start("kernel free reader", None, None, &script.path, root, "free"),
    ];
    let check = |checkers: &mut [Actor], k: u64| {
        for c in checkers.iter_mut() {
            c.say(&k.to_string());
        }
        for c in checkers.iter() {
            let a = c.answer();
            assert_eq!(a, format!("ok {k}"), "{}", c.name);
        }
    };
    check(&mut checkers, 0);
    for k in 1..=steps {
        let w = &mut writers[(k % 2) as usize];
        w.say(&k.to_string());
        assert_eq!(w.answer(), format!("done {k}"), "{}", w.name);
        check(&mut checkers, k);
    }
    std::fs::write(root.join("t/stop"), b"").expect("stop file");
    for f in &free {
        let a = f.answer();
        assert!(a.starts_with("ok "), "{}: {a}", f.name);
    }
}

/// A process that gives up root answers what the new identity may see:
/// the answers it kept as root are not used any more.
#[test]
fn a_credential_change_drops_what_root_was_told() {
    let Some((lib, mnt)) = preloaded_mount("a_credential_change_drops_what_root_was_told", "64M")
    else {
        return;
    };
    let secret = mnt.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("f"), b"x").unwrap();
    set_mode(&secret, 0o700);
    let script = r#"
import os, sys
p = sys.argv[1]
for _ in range(3):
    os.stat(p)                     # root: kept in the cache
os.setgid(65534)
os.setuid(65534)
try:
    os.stat(p)
    print("still visible")
except PermissionError:
    print("refused")
"#;
    let out = preloaded_python(&lib, script, &secret.join("f"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "refused",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A daemon killed while a process holds answers it gave is no longer
/// vouched for: the process's next stat fails, as for a process that kept
/// nothing, instead of giving the kept attributes.
#[test]
fn a_killed_daemon_voids_what_it_told() {
    let Some((lib, mnt)) = preloaded_mount("a_killed_daemon_voids_what_it_told", "64M") else {
        return;
    };
    let f = mnt.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    // The process stats the file until it is told the daemon is dead (a
    // line on stdin), then once more.
    let script = r#"
import os, sys
p = sys.argv[1]
for _ in range(3):
    os.stat(p)                     # answered, then kept in the cache
print("kept", flush=True)
sys.stdin.readline()
try:
    os.stat(p)
    print("still answered")
except OSError as e:
    print("refused", e.errno)
"#;
    let mut child = Proc(
        std::process::Command::new(PYTHON)
            .args(["-c", script])
            .arg(&f)
            .env("LD_PRELOAD", &lib)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python"),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "kept");
    // SAFETY: kill(2) of the daemon this test started.
    unsafe { libc::kill(mnt.pid() as libc::pid_t, libc::SIGKILL) };
    let deadline = std::time::Instant::now() + PY_ANSWER;
    // Until its last thread is gone: the one holding the liveness lock may
    // end after the leader (a zombie at once).
    while any_thread_alive(mnt.pid()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not die"
        );
        thread::sleep(Duration::from_millis(10));
    }
    writeln!(stdin, "go").unwrap();
    drop(stdin);
    line.clear();
    out.read_line(&mut line).unwrap();
    let _ = wait_timeout(&mut child.0, PY_ANSWER);
    // The library's answer for a daemon that died (EIO: the channel
    // broke) or the kernel's (ENOTCONN), never the kept attributes.
    let refused = [libc::EIO, libc::ENOTCONN].map(|e| format!("refused {e}"));
    assert!(
        refused.contains(&line.trim().to_string()),
        "a stat after the daemon died: {line}"
    );
}

/// What an open said of its file answers its `fstat` and its reads at the
/// end only while nothing changed: a file another process grew, through
/// either door, after this one's open and its read to the end, gives the
/// new bytes and the new size at once.
#[test]
fn an_open_file_grown_by_another_process_is_read_to_its_new_end() {
    let Some((lib, mnt)) = preloaded_mount(
        "an_open_file_grown_by_another_process_is_read_to_its_new_end",
        "64M",
    ) else {
        return;
    };
    let f = mnt.path().join("grows");
    std::fs::write(&f, b"first").unwrap();
    // The appender runs with the library (fast path) or without (FUSE door).
    let script = r#"
import os, subprocess, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDONLY)
out = [os.fstat(fd).st_size, os.read(fd, 100), os.read(fd, 100)]
for door, env in (("fast", dict(os.environ)), ("kernel", {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})):
    subprocess.run([sys.executable, "-c", "import sys; open(sys.argv[1], 'ab').write(b'+" + door + "')", p], env=env, check=True)
    out += [os.fstat(fd).st_size, os.read(fd, 100), os.read(fd, 100)]
print(out)
"#;
    assert_eq!(
        preloaded_python_ok(&lib, script, &f).trim(),
        "[5, b'first', b'', 10, b'+fast', b'', 17, b'+kernel', b'']"
    );
}

/// Paths relative to the cwd follow the cwd wherever its directories go:
/// the library keeps the cwd's path only while nothing changed on its
/// mount, so a rename of an ancestor, by another process through the
/// kernel or by this one, and a chdir all show at the next relative call.
#[test]
fn relative_paths_follow_the_cwd_through_renames_and_chdirs() {
    let Some((lib, mnt)) = preloaded_mount(
        "relative_paths_follow_the_cwd_through_renames_and_chdirs",
        "64M",
    ) else {
        return;
    };
    let script = r#"
import os, subprocess, sys
root = sys.argv[1]
env = {"PATH": os.environ["PATH"]}
os.makedirs(root + "/a/b")
os.chdir(root + "/a/b")
out = []
for step, other in (("g", ["mv", root + "/a", root + "/z"]), ("h", None)):
    with open(step, "w") as f:
        f.write(step * 3)
    out.append(sorted(os.listdir(".")))
    if other:
        subprocess.run(other, env=env, check=True)
    else:
        os.rename(root + "/z", root + "/y")
out.append(os.stat("g").st_size)
open("i", "w").close()
os.chdir("..")
out.append(sorted(os.listdir(".")))
os.chdir(root)
out.append(sorted(os.listdir("y/b")))
print(out)
"#;
    assert_eq!(
        preloaded_python_ok(&lib, script, mnt.path()).trim(),
        "[['g'], ['g', 'h'], 3, ['b'], ['g', 'h', 'i']]"
    );
}

/// The cwd's path stays kept through changes that cannot move it (files
/// made and removed where the process works), and not through the cwd's
/// removal by another process: relative calls then fail as on tmpfs, even
/// with a new directory of the same name in its place.
#[test]
fn a_removed_cwd_is_not_followed_to_its_namesake() {
    let Some((lib, mnt)) = preloaded_mount("a_removed_cwd_is_not_followed_to_its_namesake", "64M")
    else {
        return;
    };
    let tmp = TmpfsGuard::new("16m");
    let script = r#"
import os, subprocess, sys
root = sys.argv[1]
env = {"PATH": os.environ["PATH"]}
os.makedirs(root + "/x")
os.chdir(root + "/x")
out = []
for n in "abc":
    open(n, "w").close()
    out.append(os.stat(n).st_size)
    os.unlink(n)
for argv in (["rmdir", root + "/x"], ["mkdir", root + "/x"], ["touch", root + "/x/g"]):
    subprocess.run(argv, env=env, check=True)
for call in (lambda: os.stat("g").st_size, lambda: sorted(os.listdir(".")), lambda: open("h", "w").close()):
    try:
        out.append(call())
    except OSError as e:
        out.append(e.errno)
print(out)
"#;
    let want = preloaded_python_ok("", script, tmp.path());
    assert_eq!(want.trim(), "[0, 0, 0, 2, [], 2]");
    assert_eq!(preloaded_python_ok(&lib, script, mnt.path()), want);
}

/// `lstat` of paths relative to the cwd, answered by the string (see
/// `ops::stat_abs`), gives what tmpfs gives through chdirs to twin trees
/// (same relative names, other files), an `fchdir`, the cwd's own rename,
/// and its subdirectory replaced or moved, by this process or another
/// through the kernel; and once warm, the stats of a directory ask the
/// daemon nothing.
#[test]
fn stats_by_relative_strings_follow_chdirs_and_renames() {
    let Some((lib, mnt)) =
        preloaded_mount("stats_by_relative_strings_follow_chdirs_and_renames", "64M")
    else {
        return;
    };
    let script = r#"
import os, subprocess, sys
root = sys.argv[1]
env = {"PATH": os.environ["PATH"]}
for t, size in (("A", 1), ("B", 2)):
    os.makedirs("%s/%s/d" % (root, t))
    for i in range(40):
        with open("%s/%s/d/f%02d" % (root, t, i), "wb") as f:
            f.write(b"x" * (size + i % 3))
def sizes():
    out = []
    for i in range(40):
        try:
            out.append(os.lstat("d/f%02d" % i).st_size)
        except OSError as e:
            out.append(-e.errno)
    return out
out = []
os.chdir(root + "/A")
out += [sizes(), sizes()]
os.chdir(root + "/B")
out.append(sizes())
fd = os.open(root + "/A", os.O_RDONLY)
os.fchdir(fd)
os.close(fd)
out.append(sizes())
subprocess.run(["mv", root + "/A", root + "/C"], env=env, check=True)
out.append(sizes())
os.rename("d", "e")
os.mkdir("d")
with open("d/f07", "wb") as f:
    f.write(b"seven!!")
out.append(sizes())
subprocess.run(["rm", "-r", root + "/C/d"], env=env, check=True)
subprocess.run(["cp", "-r", root + "/B/d", root + "/C/d"], env=env, check=True)
out.append(sizes())
print("\n".join(" ".join(map(str, o)) for o in out))
"#;
    let tmp = TmpfsGuard::new("16M");
    let expected = preloaded_python_ok(&lib, script, tmp.path());
    let got = preloaded_python_ok(&lib, script, mnt.path());
    assert_same_output(
        "stats_by_relative_strings_follow_chdirs_and_renames",
        "tmpfs",
        &expected,
        "mount",
        &got,
    );
    // Warm: the second pass over A/d asked the daemon nothing.
    let warm = r#"
import os, sys
os.chdir(sys.argv[1] + "/B")
for _ in range(3):
    [os.lstat("d/f%02d" % i) for i in range(40)]
"#;
    let before = fast_path_count(mnt.path(), "stat");
    preloaded_python_ok(&lib, warm, mnt.path());
    let asked = fast_path_count(mnt.path(), "stat") - before;
    assert!(asked <= 2, "{asked} stat round trips for 120 stats");
}

/// `ls -l` asks for `security.selinux` of each file right after `lstat`ing
/// it by the same string: a file the cache holds as having no extended
/// attribute answers `ENODATA` with no round trip, and one that gained
/// such an attribute through the kernel since shows it at once.
#[test]
fn a_security_attribute_is_known_absent_by_path_and_never_stale() {
    let Some((lib, mnt)) = preloaded_mount(
        "a_security_attribute_is_known_absent_by_path_and_never_stale",
        "64M",
    ) else {
        return;
    };
    let f = mnt.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    let script = r#"
import os, subprocess, sys
p = sys.argv[1]
def sel():
    os.lstat(p)
    try:
        return os.getxattr(p, "security.test", follow_symlinks=False)
    except OSError as e:
        return e.errno
out = [sel(), sel()]
env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
setter = "import os, sys; os.setxattr(sys.argv[1], 'security.test', b'1', follow_symlinks=False)"
subprocess.run([sys.executable, "-c", setter, p], env=env, check=True)
out.append(sel())
print(out)
"#;
    let before = fast_path_count(mnt.path(), "getxattr");
    let text = preloaded_python_ok(&lib, script, &f);
    assert_eq!(text.trim(), format!("[{e}, {e}, b'1']", e = libc::ENODATA));
    // Only the last one, after the change, asks.
    let asked = fast_path_count(mnt.path(), "getxattr") - before;
    assert!(asked <= 1, "{asked} getxattr round trips");
}
