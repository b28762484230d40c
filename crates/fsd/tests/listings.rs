//! The listing cache (`crates/interpose/src/listcache`) and what the
//! sibling prefetch fills it with: a walk's names, their attributes and
//! their absence answered from one listing per directory, never stale
//! (each test changes the tree through the kernel and asks again).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A process that stats the names of one directory one by one (`git
/// status`, `find -exec stat`) gets the directory's attributes in one
/// listing instead of a round trip per name, and what the listing told it
/// is still never stale: a change made through the kernel afterwards shows
/// at once.
#[test]
fn stats_of_siblings_are_listed_once_and_never_stale() {
    let Some((lib, mnt)) =
        preloaded_mount("stats_of_siblings_are_listed_once_and_never_stale", "64M")
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
    let before = fast_path_count(mnt.path(), "stat");
    let text = preloaded_python_ok(&lib, script, &dir);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["['0o100644']", "0o600", "0o644"], "{text}");
    let asked = fast_path_count(mnt.path(), "stat") - before;
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
    let Some((lib, mnt)) = preloaded_mount(
        "a_walk_lists_each_further_directory_at_its_first_miss",
        "64M",
    ) else {
        return;
    };
    let top = walk_tree(mnt.path(), |_| 1);
    let script = r#"
import os, sys
t = sys.argv[1]
print(sum(os.lstat(os.path.join(t, "d%02d" % d, "f%d" % i)).st_size for d in range(12) for i in range(10)))
"#;
    let before = fast_path_count(mnt.path(), "stat");
    assert_eq!(preloaded_python_ok(&lib, script, &top).trim(), "120");
    let asked = fast_path_count(mnt.path(), "stat") - before;
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
    let Some((lib, mnt)) = preloaded_mount(
        "stats_after_listings_nobody_stat_ed_are_still_answered_by_listings",
        "64M",
    ) else {
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
    let before = fast_path_count(mnt.path(), "stat");
    let text = preloaded_python_ok(&lib, script, &top);
    assert_eq!(text.lines().collect::<Vec<_>>(), ["60", "270"], "{text}");
    let asked = fast_path_count(mnt.path(), "stat") - before;
    // The first stat, and a miss under the first directory listed without
    // attributes (it turns them back on, and starts a listing); none after.
    assert!(
        asked <= 4,
        "{asked} stat round trips for 61 stats after 6 listings nobody stat-ed"
    );
}

/// A directory listed with attributes answers `stat` of its names, by the
/// listing's fd and by path, and of names it lacks (`ENOENT`), without a
/// round trip each; a symlink is followed by asking. What it told is
/// never stale: a name created and a mode changed through the kernel
/// afterwards show at once.
#[test]
fn a_listed_directory_answers_its_names_and_their_absence_never_stale() {
    let Some((lib, mnt)) = preloaded_mount(
        "a_listed_directory_answers_its_names_and_their_absence_never_stale",
        "64M",
    ) else {
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
    let before = fast_path_count(mnt.path(), "stat");
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
    let asked = fast_path_count(mnt.path(), "stat") - before;
    // The first stat of the directory, the followed symlink in each
    // survey, and a few stats python makes of its own.
    assert!(asked <= 12, "{asked} stat round trips for ~420 stats");
}

/// Threads that miss in one directory at once (the 20 threads of a `git
/// status` start together) wait for the one that lists it instead of each
/// listing it, and every answer is right.
#[test]
fn threads_missing_in_one_directory_at_once_list_it_once() {
    let Some((lib, mnt)) = preloaded_mount(
        "threads_missing_in_one_directory_at_once_list_it_once",
        "64M",
    ) else {
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
    let Some((lib, mnt)) = preloaded_mount(
        "an_open_of_a_name_a_listing_lacks_fails_at_once_and_never_stale",
        "64M",
    ) else {
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
    let Some((lib, mnt)) = preloaded_mount(
        "names_walked_by_their_whole_path_are_answered_by_the_listing_never_stale",
        "64M",
    ) else {
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
    let before = fast_path_count(mnt.path(), "stat");
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
    let asked = fast_path_count(mnt.path(), "stat") - before;
    // Each directory string's first name resolves once; the change voids
    // what was kept, so the nine looks after it ask.
    assert!(asked <= 16, "{asked} stat round trips for ~600 stats");
}

/// A walker's directory opens bring their first batch (fts: `openat`,
/// then `fdopendir`), and a listing still shows what the directory held
/// when it was asked for: the same names as on tmpfs after opens that are
/// never listed, fds closed and reused, dups, and names created between
/// the open and the listing.
#[test]
fn directories_opened_for_listing_list_what_they_hold_when_listed() {
    let Some((lib, mnt)) = preloaded_mount(
        "directories_opened_for_listing_list_what_they_hold_when_listed",
        "64M",
    ) else {
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
