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
use std::path::{Path, PathBuf};
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

/// The library and a fresh 64 MiB mount for `test`, or `None` when the
/// test is skipped (no root, FUSE or library).
fn preloaded_mount(test: &str) -> Option<(String, BtfuseGuard)> {
    let lib = preload_or_skip(test)?;
    Some((lib, BtfuseGuard::new("64M")))
}

/// A process that gives up root answers what the new identity may see:
/// the answers it kept as root are not used any more.
#[test]
fn a_credential_change_drops_what_root_was_told() {
    let Some((lib, mnt)) = preloaded_mount("a_credential_change_drops_what_root_was_told") else {
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
    let Some((lib, mnt)) = preloaded_mount("a_killed_daemon_voids_what_it_told") else {
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

/// The fast-path `stat` requests a stats report counts.
fn fast_path_stats(m: &Path) -> u64 {
    fast_path_count(m, "stat")
}

/// A process that stats the names of one directory one by one (`git
/// status`, `find -exec stat`) gets the directory's attributes in one
/// listing instead of a round trip per name, and what the listing told it
/// is still never stale: a change made through the kernel afterwards shows
/// at once.
#[test]
fn stats_of_siblings_are_listed_once_and_never_stale() {
    let Some((lib, mnt)) = preloaded_mount("stats_of_siblings_are_listed_once_and_never_stale")
    else {
        return;
    };
    let dir = mnt.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..300 {
        std::fs::write(dir.join(format!("f{i:03}")), b"x").unwrap();
    }
    let script = r#"
import os, subprocess, sys
d = sys.argv[1]
modes = {os.lstat(os.path.join(d, "f%03d" % i)).st_mode for i in range(300)}
print(sorted(oct(m) for m in modes))
subprocess.run(["chmod", "600", os.path.join(d, "f250")], env={"PATH": os.environ["PATH"]}, check=True)
print(oct(os.lstat(os.path.join(d, "f250")).st_mode & 0o7777))
print(oct(os.lstat(os.path.join(d, "f251")).st_mode & 0o7777))
"#;
    let before = fast_path_stats(mnt.path());
    let text = preloaded_python_ok(&lib, script, &dir);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["['0o100644']", "0o600", "0o644"], "{text}");
    let asked = fast_path_stats(mnt.path()) - before;
    // Two misses start the listing; the chmod voids what was kept, so the
    // two stats after it ask (and start nothing: two is a streak again).
    assert!(asked <= 8, "{asked} stat round trips for 302 stats");
}

/// `root/w/d00..d11`, each holding `f0..f9` of `size(i)` bytes; `root/w`.
fn walk_tree(root: &Path, size: impl Fn(usize) -> usize) -> PathBuf {
    let top = root.join("w");
    for d in 0..12 {
        let dir = top.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..10 {
            std::fs::write(dir.join(format!("f{i}")), vec![b'x'; size(i)]).unwrap();
        }
    }
    top
}

/// Once a process walked two directories, the first miss under each
/// further one lists it: one round trip per directory, not two.
#[test]
fn a_walk_lists_each_further_directory_at_its_first_miss() {
    let Some((lib, mnt)) = preloaded_mount("a_walk_lists_each_further_directory_at_its_first_miss")
    else {
        return;
    };
    let top = walk_tree(mnt.path(), |_| 1);
    let script = r#"
import os, sys
t = sys.argv[1]
print(sum(os.lstat(os.path.join(t, "d%02d" % d, "f%d" % i)).st_size for d in range(12) for i in range(10)))
"#;
    let before = fast_path_stats(mnt.path());
    assert_eq!(preloaded_python_ok(&lib, script, &top).trim(), "120");
    let asked = fast_path_stats(mnt.path()) - before;
    // The first miss of each of the first two directories; none after.
    assert!(
        asked <= 3,
        "{asked} stat round trips for 120 stats in 12 directories"
    );
}

/// A process that lists directories without stat-ing their names (the
/// untracked scan of a `git status`, `ls`) stops asking for the entries'
/// attributes (until a `stat` misses): a walk that stats what it lists
/// afterwards still gets tmpfs's answers, from its listings but for a
/// miss or two.
#[test]
fn stats_after_listings_nobody_stat_ed_are_still_answered_by_listings() {
    let Some((lib, mnt)) =
        preloaded_mount("stats_after_listings_nobody_stat_ed_are_still_answered_by_listings")
    else {
        return;
    };
    let top = walk_tree(mnt.path(), |i| i);
    for d in 0..12 {
        // Listed once (its access time updated), a listing can be kept.
        assert_eq!(
            std::fs::read_dir(top.join(format!("d{d:02}")))
                .unwrap()
                .count(),
            10
        );
    }
    let script = r#"
import os, sys
t = sys.argv[1]
os.lstat(t)
print(sum(len(os.listdir(os.path.join(t, "d%02d" % d))) for d in range(6)))
total = 0
for d in range(6, 12):
    dd = os.path.join(t, "d%02d" % d)
    total += sum(os.lstat(os.path.join(dd, n)).st_size for n in sorted(os.listdir(dd)))
print(total)
"#;
    let before = fast_path_stats(mnt.path());
    let text = preloaded_python_ok(&lib, script, &top);
    assert_eq!(text.lines().collect::<Vec<_>>(), ["60", "270"], "{text}");
    let asked = fast_path_stats(mnt.path()) - before;
    // The first stat, and a miss under the first directory listed without
    // attributes (it turns them back on, and starts a listing); none after.
    assert!(
        asked <= 4,
        "{asked} stat round trips for 61 stats after 6 listings nobody stat-ed"
    );
}

/// What an open said of its file answers its `fstat` and its reads at the
/// end only while nothing changed: a file another process grew, through
/// either door, after this one's open and its read to the end, gives the
/// new bytes and the new size at once.
#[test]
fn an_open_file_grown_by_another_process_is_read_to_its_new_end() {
    let Some((lib, mnt)) =
        preloaded_mount("an_open_file_grown_by_another_process_is_read_to_its_new_end")
    else {
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

/// A directory listed with attributes answers `stat` of its names, by the
/// listing's fd and by path, and of names it lacks (`ENOENT`), without a
/// round trip each; a symlink is followed by asking. What it told is
/// never stale: a name created and a mode changed through the kernel
/// afterwards show at once.
#[test]
fn a_listed_directory_answers_its_names_and_their_absence_never_stale() {
    let Some((lib, mnt)) =
        preloaded_mount("a_listed_directory_answers_its_names_and_their_absence_never_stale")
    else {
        return;
    };
    let dir = mnt.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..200 {
        std::fs::write(dir.join(format!("f{i:03}")), b"x").unwrap();
    }
    std::os::unix::fs::symlink("f007", dir.join("ln")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let script = r#"
import os, stat, subprocess, sys
d = sys.argv[1]
os.stat(d)  # a first miss: listings carry attributes from now on
def look(name, **kw):
    try:
        return stat.filemode(os.stat(name, **kw).st_mode)
    except FileNotFoundError:
        return "ENOENT"
def survey():
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    names = sorted(e.name for e in os.scandir(fd))
    by_fd = {look(n, dir_fd=fd, follow_symlinks=False) for n in names if n.startswith("f")}
    extra = [look(n, dir_fd=fd, follow_symlinks=False) for n in ("ln", "sub", "new")]
    extra.append(look("ln", dir_fd=fd))
    os.close(fd)
    names2 = sorted(os.listdir(d))
    by_path = [look(os.path.join(d, n), follow_symlinks=False) for n in ("f010", "new")]
    return [len(names), names == names2, sorted(by_fd)] + extra + by_path
print(survey())
env = {"PATH": os.environ["PATH"]}
subprocess.run(["sh", "-c", 'touch "$1/new" && chmod 644 "$1/new" && chmod 600 "$1/f010"', "sh", d], env=env, check=True)
print(survey())
"#;
    let before = fast_path_stats(mnt.path());
    let text = preloaded_python_ok(&lib, script, &dir);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "[202, True, ['-rw-r--r--'], 'lrwxrwxrwx', 'drwxr-xr-x', 'ENOENT', '-rw-r--r--', '-rw-r--r--', 'ENOENT']",
            "[203, True, ['-rw-------', '-rw-r--r--'], 'lrwxrwxrwx', 'drwxr-xr-x', '-rw-r--r--', '-rw-r--r--', '-rw-------', '-rw-r--r--']",
        ],
        "{text}"
    );
    let asked = fast_path_stats(mnt.path()) - before;
    // The first stat of the directory, the followed symlink in each
    // survey, and a few stats python makes of its own.
    assert!(asked <= 12, "{asked} stat round trips for ~420 stats");
}

/// Threads that miss in one directory at once (the 20 threads of a `git
/// status` start together) wait for the one that lists it instead of each
/// listing it, and every answer is right.
#[test]
fn threads_missing_in_one_directory_at_once_list_it_once() {
    let Some((lib, mnt)) = preloaded_mount("threads_missing_in_one_directory_at_once_list_it_once")
    else {
        return;
    };
    let dir = mnt.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..300 {
        std::fs::write(dir.join(format!("f{i:03}")), vec![b'x'; i]).unwrap();
    }
    for other in ["a", "b"] {
        std::fs::create_dir(mnt.path().join(other)).unwrap();
        for i in 0..3 {
            std::fs::write(mnt.path().join(other).join(format!("f{i}")), b"").unwrap();
        }
    }
    let script = r#"
import os, sys, threading
d = sys.argv[1]
for other in ("a", "b"):  # a walk: two directories listed
    for i in range(3):
        os.lstat(os.path.join(os.path.dirname(d), other, "f%d" % i))
start = threading.Barrier(16)
wrong = []
def walk(k):
    start.wait()
    for i in list(range(k, 300)) + list(range(k)):
        if os.lstat(os.path.join(d, "f%03d" % i)).st_size != i:
            wrong.append(i)
threads = [threading.Thread(target=walk, args=(k * 18,)) for k in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print("wrong", wrong)
"#;
    // `a` and `b` listed first: the threads' first misses in `d` each
    // list it at once, but one does. A directory changed since it was
    // last listed is listed twice (the first listing moves its atime, see
    // `siblings::list`): 6 listings, rarely 7; 17-21 when each thread
    // listed `d`.
    let before = fast_path_count(mnt.path(), "list");
    let text = preloaded_python_ok(&lib, script, &dir);
    assert_eq!(text.trim(), "wrong []", "{text}");
    let listed = fast_path_count(mnt.path(), "list") - before;
    assert!(listed <= 8, "{listed} listings of three directories");
}

/// An open that does not create, of a name its directory's listing lacks
/// (a compiler looking for a header in the source's directory first), fails
/// with `ENOENT` from the listing, with no round trip; and never stale: a
/// file made afterwards by another process, through the kernel or the fast
/// path, opens at once, and one made by `O_CREAT` is not refused.
#[test]
fn an_open_of_a_name_a_listing_lacks_fails_at_once_and_never_stale() {
    let Some((lib, mnt)) =
        preloaded_mount("an_open_of_a_name_a_listing_lacks_fails_at_once_and_never_stale")
    else {
        return;
    };
    let dir = mnt.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..50 {
        std::fs::write(dir.join(format!("f{i:02}")), b"x").unwrap();
    }
    let script = r#"
import os, subprocess, sys
d = sys.argv[1]
for i in range(50):
    os.lstat(os.path.join(d, "f%02d" % i))  # lists the directory
def opened(name, flags=os.O_RDONLY):
    try:
        fd = os.open(os.path.join(d, name), flags, 0o644)
    except FileNotFoundError:
        return "ENOENT"
    data = os.read(fd, 16)
    os.close(fd)
    return data.decode().strip() or "empty"
print([opened("h%d.h" % i) for i in range(20)], opened("f07"), opened("sub/h.h"))
subprocess.run(["sh", "-c", 'echo kernel > "$1/h3.h"', "sh", d], env={"PATH": os.environ["PATH"]}, check=True)
print(opened("h3.h"), opened("h4.h"))
subprocess.run([sys.executable, "-c", "import sys; open(sys.argv[1] + '/h4.h', 'w').write('fast')", d], check=True)
print(opened("h4.h"), opened("h5.h", os.O_RDWR | os.O_CREAT), opened("h5.h"), opened("h6.h", os.O_WRONLY | os.O_TRUNC))
"#;
    let before = fast_path_count(mnt.path(), "open");
    let text = preloaded_python_ok(&lib, script, &dir);
    let lines: Vec<&str> = text.lines().collect();
    let absent = format!("{:?}", vec!["ENOENT"; 20]).replace('"', "'");
    assert_eq!(
        lines,
        [
            format!("{absent} x ENOENT").as_str(),
            "kernel ENOENT",
            "fast empty empty ENOENT",
        ],
        "{text}"
    );
    let asked = fast_path_count(mnt.path(), "open") - before;
    // The opens of names that exist (and python's own few); none of the
    // 26 opens of absent names.
    assert!(asked <= 10, "{asked} open round trips");
}

/// A walk that lists a directory and then names each entry by its whole
/// path (`ls -lR` of a tree: `lstat` and `lgetxattr` of every file by the
/// same string) is answered by the listing through the directory's
/// string, also through a symlink or a `..` in it, without a round trip
/// each; and never stale: a mode changed, a name renamed away and one
/// renamed in through the kernel show at once, by the same strings.
#[test]
fn names_walked_by_their_whole_path_are_answered_by_the_listing_never_stale() {
    let Some((lib, mnt)) =
        preloaded_mount("names_walked_by_their_whole_path_are_answered_by_the_listing_never_stale")
    else {
        return;
    };
    let dir = mnt.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..100 {
        std::fs::write(dir.join(format!("f{i:03}")), b"x").unwrap();
    }
    std::fs::create_dir(mnt.path().join("e")).unwrap();
    std::os::unix::fs::symlink("d", mnt.path().join("ln")).unwrap();
    let script = r#"
import errno, os, stat, subprocess, sys
m = sys.argv[1]
def look(p):
    try:
        mode = stat.filemode(os.lstat(p).st_mode)
    except FileNotFoundError:
        return "ENOENT"
    try:
        os.getxattr(p, "security.selinux", follow_symlinks=False)
        return mode + " xattr"
    except OSError as e:
        return mode if e.errno == errno.ENODATA else mode + " " + errno.errorcode[e.errno]
def walk(d):
    names = sorted(os.listdir(d))
    return names, {look(os.path.join(d, n)) for n in names}
out = []
for d in (m + "/d", m + "/ln", m + "/e/../d"):
    names, modes = walk(d)
    out.append([len(names), sorted(modes), look(d + "/f010"), look(d + "/gone"), look(d + "/new")])
print(out)
env = {"PATH": os.environ["PATH"]}
subprocess.run(["sh", "-c", 'chmod 600 "$1/d/f010" && mv "$1/d/f020" "$1/e/f020" && touch "$1/e/new" && mv "$1/e/new" "$1/d/new"', "sh", m], env=env, check=True)
print([[look(d + "/f010"), look(d + "/f020"), look(d + "/new")] for d in (m + "/d", m + "/ln", m + "/e/../d")])
"#;
    let before = fast_path_stats(mnt.path());
    let text = preloaded_python_ok(&lib, script, mnt.path());
    let lines: Vec<&str> = text.lines().collect();
    let walked = "[100, ['-rw-r--r--'], '-rw-r--r--', 'ENOENT', 'ENOENT']";
    let after = "['-rw-------', 'ENOENT', '-rw-r--r--']";
    assert_eq!(
        lines,
        [
            format!("[{walked}, {walked}, {walked}]"),
            format!("[{after}, {after}, {after}]"),
        ],
        "{text}"
    );
    let asked = fast_path_stats(mnt.path()) - before;
    // Each directory string's first name resolves once; the change voids
    // what was kept, so the nine looks after it ask.
    assert!(asked <= 16, "{asked} stat round trips for ~600 stats");
}

/// Paths relative to the cwd follow the cwd wherever its directories go:
/// the library keeps the cwd's path only while nothing changed on its
/// mount, so a rename of an ancestor, by another process through the
/// kernel or by this one, and a chdir all show at the next relative call.
#[test]
fn relative_paths_follow_the_cwd_through_renames_and_chdirs() {
    let Some((lib, mnt)) =
        preloaded_mount("relative_paths_follow_the_cwd_through_renames_and_chdirs")
    else {
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
    let Some((lib, mnt)) = preloaded_mount("a_removed_cwd_is_not_followed_to_its_namesake") else {
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
    let Some((lib, mnt)) = preloaded_mount("stats_by_relative_strings_follow_chdirs_and_renames")
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
    let before = fast_path_stats(mnt.path());
    preloaded_python_ok(&lib, warm, mnt.path());
    let asked = fast_path_stats(mnt.path()) - before;
    assert!(asked <= 2, "{asked} stat round trips for 120 stats");
}

/// A walker's directory opens bring their first batch (fts: `openat`,
/// then `fdopendir`), and a listing still shows what the directory held
/// when it was asked for: the same names as on tmpfs after opens that are
/// never listed, fds closed and reused, dups, and names created between
/// the open and the listing.
#[test]
fn directories_opened_for_listing_list_what_they_hold_when_listed() {
    let Some((lib, mnt)) =
        preloaded_mount("directories_opened_for_listing_list_what_they_hold_when_listed")
    else {
        return;
    };
    let tmp = TmpfsGuard::new("16m");
    let script = r#"
import os, sys
root = sys.argv[1]
for d in "abcdef":
    os.makedirs(os.path.join(root, d))
    for i in range(3):
        open(os.path.join(root, d, d + str(i)), "w").close()
D = os.O_RDONLY | os.O_DIRECTORY
def ls(fd):
    return sorted(os.listdir(fd))
out = [ls(os.open(root, D))]
fa, fb = os.open(root + "/a", D), os.open(root + "/b", D)
out += [ls(fa), ls(fb)]
fc = os.open(root + "/c", D)
os.close(fc)
fd = os.open(root + "/d", D)
out.append(ls(fd))
fe = os.open(root + "/e", D)
open(root + "/e/new", "w").close()
os.unlink(root + "/e/e0")
out.append(ls(fe))
ff = os.open(root + "/f", D)
out.append(ls(os.dup(ff)))
print(out)
"#;
    let run = |root: &Path, preload: Option<&str>| {
        let mut cmd = std::process::Command::new(PYTHON);
        cmd.args(["-c", script]).arg(root).env_remove("LD_PRELOAD");
        if let Some(lib) = preload {
            cmd.env("LD_PRELOAD", lib);
        }
        let out = run_timeout(&mut cmd, PY_ANSWER);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let want = run(tmp.path(), None);
    assert!(want.contains("'e1', 'e2', 'new'"), "{want}");
    assert_eq!(run(mnt.path(), Some(&lib)), want);
}

/// `ls -l` asks for `security.selinux` of each file right after `lstat`ing
/// it by the same string: a file the cache holds as having no extended
/// attribute answers `ENODATA` with no round trip, and one that gained
/// such an attribute through the kernel since shows it at once.
#[test]
fn a_security_attribute_is_known_absent_by_path_and_never_stale() {
    let Some((lib, mnt)) =
        preloaded_mount("a_security_attribute_is_known_absent_by_path_and_never_stale")
    else {
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
