//! The public table: small files everyone may read are opened by a
//! preloaded process that has not connected, from the answers the daemon
//! publishes in its page file; nothing private ever reaches that file, and
//! a file opened from it behaves as any open file (later changes seen,
//! its bytes kept after an unlink).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use std::sync::atomic::Ordering;

use common::*;
use proto::changes::RECORDS;
use proto::public::{Table, FILE_LEN, OFFSET};
use proto::GenPage;

/// How many changes old the daemon lets an untouched entry's stamp grow
/// (twice its sweep's period, see `fs_core::public`, and the changes a
/// sweep may miss while it takes its lock).
const SWEPT_WITHIN: u64 = 2 * 384 + 64;

/// Runs `argv` preloaded with `lib` (as user and group `uid` if given).
fn run_preloaded(lib: &str, uid: Option<u32>, argv: &[&str]) -> std::process::Output {
    let mut cmd = command_as(uid, argv[0]);
    cmd.args(&argv[1..])
        .env("LD_PRELOAD", lib)
        .env("LC_ALL", "C");
    run_timeout(&mut cmd, Duration::from_secs(30))
}

/// Runs `argv`, preloaded, and returns its stdout; panics on failure.
fn preloaded(lib: &str, argv: &[&str]) -> String {
    let out = run_preloaded(lib, None, argv);
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page file of the mount at `m`.
fn page_file(m: &Path) -> PathBuf {
    let dev = std::fs::metadata(m).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    run_dir().join(format!("dev-{major}-{minor}.page"))
}

fn page_holds(m: &Path, marker: &[u8]) -> bool {
    let bytes = std::fs::read(page_file(m)).unwrap();
    bytes.windows(marker.len()).any(|w| w == marker)
}

/// A page of the page file, aligned as the file's mapping is.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The stamp of the table's entry for `name` in directory `dir` (an
/// inode number) if it has one, and the generation, as the page file of
/// the mount at `m` holds them now.
fn table_entry(m: &Path, dir: u64, name: &str) -> (Option<u64>, u64) {
    let bytes = std::fs::read(page_file(m)).unwrap();
    assert!(bytes.len() >= FILE_LEN);
    let mut pages: Vec<Page> = (0..FILE_LEN.div_ceil(4096))
        .map(|_| Page([0; 4096]))
        .collect();
    for (page, chunk) in pages.iter_mut().zip(bytes.chunks(4096)) {
        page.0[..chunk.len()].copy_from_slice(chunk);
    }
    let base = pages.as_ptr().cast::<u8>();
    // SAFETY: `pages` is a private copy of the file's first FILE_LEN bytes,
    // aligned as its mapping is, laid out as the daemon writes it (a
    // `GenPage` at 0, the `Table` at OFFSET); both are atomics and plain
    // words, valid with any bits, and live as long as `pages`.
    let (page, table) = unsafe { (&*base.cast::<GenPage>(), &*base.add(OFFSET).cast::<Table>()) };
    let stamp = table.find(dir, name.as_bytes()).map(|p| p.stamp);
    (stamp, page.begun.load(Ordering::Relaxed))
}

/// Waits until the table holds entries for `names` (each a directory's
/// inode number and a name) stamped at `gen` or later (published once
/// change `gen` ended).
fn wait_for_entries(m: &Path, names: &[(u64, &str)], gen: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !names
        .iter()
        .all(|&(dir, name)| table_entry(m, dir, name).0.is_some_and(|s| s >= gen))
    {
        let now: Vec<_> = names.iter().map(|&(d, n)| table_entry(m, d, n)).collect();
        assert!(
            std::time::Instant::now() < deadline,
            "the table never held {names:?} stamped at {gen} or later: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes `bytes` to `path`, readable by all, and has it read by two
/// preloaded `cat`s: their opens go to the daemon, which publishes the
/// file (the first one's answer may be voided by the kernel giving back
/// the pages the write left in its cache).
fn publish_file(lib: &str, path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    for _ in 0..2 {
        assert_eq!(
            preloaded(lib, &["cat", path.to_str().unwrap()]).as_bytes(),
            bytes
        );
    }
}

/// Channels the daemon has opened so far (fast-path requests served).
fn requests(m: &Path) -> u64 {
    stat_value(&stats(m), "fast-path requests")
}

#[test]
fn a_public_file_is_read_without_connecting() {
    let Some((lib, bt)) = preloaded_mount("a_public_file_is_read_without_connecting", "16M") else {
        return;
    };
    let m = bt.path();
    std::fs::create_dir(m.join("d")).unwrap();
    let f = m.join("d/f");
    publish_file(&lib, &f, b"public bytes\n");
    let path = f.to_str().unwrap();
    let before = requests(m);
    assert_eq!(preloaded(&lib, &["cat", path]), "public bytes\n");
    // `stat` of the file and of its directory, from the table too.
    let dir = m.join("d");
    let st = preloaded(&lib, &["stat", "-c", "%a %F", path, dir.to_str().unwrap()]);
    assert_eq!(st, "644 regular file\n755 directory\n");
    assert_eq!(preloaded(&lib, &["stat", "-c", "%s", path]), "13\n");
    assert_eq!(requests(m), before, "{}", stats(m));
    // A change voids the answer: the next reader asks the daemon.
    std::fs::write(&f, b"changed\n").unwrap();
    assert_eq!(preloaded(&lib, &["cat", path]), "changed\n");
    assert!(requests(m) > before);
}

#[test]
fn a_process_stats_a_directory_and_its_names_from_the_table() {
    let Some((lib, bt)) = preloaded_mount(
        "a_process_stats_a_directory_and_its_names_from_the_table",
        "16M",
    ) else {
        return;
    };
    let m = bt.path();
    let dir = m.join("d");
    std::fs::create_dir(&dir).unwrap();
    let names = ["a", "b", "c", "e"];
    for n in names {
        publish_file(&lib, &dir.join(n), n.as_bytes());
    }
    let paths: Vec<String> = names
        .iter()
        .map(|n| dir.join(n).to_str().unwrap().to_owned())
        .collect();
    let dot = format!("{}/.", dir.to_str().unwrap());
    let mut argv = vec!["stat", "-c", "%s %F"];
    argv.extend(paths.iter().map(String::as_str));
    argv.push(&dot);
    // What the kernel answers through the mount.
    let want = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    let want = String::from_utf8(want.stdout).unwrap();
    assert!(want.ends_with(" directory\n"), "{want}");
    // Each file's entry (with its bytes) was voided by the names created
    // after it; a `stat` the daemon answers stamps it again.
    for path in paths.iter().chain([&dot]) {
        preloaded(&lib, &["stat", path]);
    }
    let before = requests(m);
    // Misses of one process in one directory would list it (the sibling
    // prefetch), connecting, if the table did not answer them first.
    assert_eq!(preloaded(&lib, &argv), want);
    assert_eq!(requests(m), before, "{}", stats(m));
    // A name created since is no longer absent, through the table too.
    let (code, _) = preloaded_status(&lib, &["stat", dir.join("new").to_str().unwrap()]);
    assert_eq!(code, 1);
    std::fs::write(dir.join("new"), b"new").unwrap();
    let st = preloaded(
        &lib,
        &["stat", "-c", "%s", dir.join("new").to_str().unwrap()],
    );
    assert_eq!(st, "3\n");
}

#[test]
fn names_a_change_voided_are_published_again() {
    let Some((lib, bt)) = preloaded_mount("names_a_change_voided_are_published_again", "16M")
    else {
        return;
    };
    let m = bt.path();
    let dir = m.join("d");
    std::fs::create_dir(&dir).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    publish_file(&lib, &a, b"aaa");
    publish_file(&lib, &b, b"bbb");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let missing = dir.join("missing");
    let missing = missing.to_str().unwrap();
    assert_eq!(preloaded_status(&lib, &["stat", missing]).0, 1);
    // A name created beside them (through the kernel) voids every answer
    // in `d` and the directory's own; the daemon publishes them again.
    let before_c = table_entry(m, 1, "d").1;
    std::fs::write(dir.join("c"), b"c").unwrap();
    let d_ino = std::fs::metadata(&dir).unwrap().ino();
    let names = [(1, "d"), (d_ino, "a"), (d_ino, "b"), (d_ino, "missing")];
    wait_for_entries(m, &names, before_c + 1);
    let before = requests(m);
    assert_eq!(preloaded(&lib, &["cat", a, b]), "aaabbb");
    let (code, _) = preloaded_status(&lib, &["stat", missing]);
    assert_eq!(code, 1);
    let want = Command::new("stat")
        .args(["-c", "%s %Y", dir.to_str().unwrap()])
        .output();
    let want = String::from_utf8(want.unwrap().stdout).unwrap();
    assert_eq!(
        preloaded(&lib, &["stat", "-c", "%s %Y", dir.to_str().unwrap()]),
        want
    );
    assert_eq!(requests(m), before, "{}", stats(m));
    // Removed: published as absent.
    let before_rm = table_entry(m, 1, "d").1;
    std::fs::remove_file(dir.join("b")).unwrap();
    wait_for_entries(m, &[(d_ino, "b")], before_rm + 1);
    let (code, _) = preloaded_status(&lib, &["cat", b]);
    assert_eq!(code, 1);
    assert_eq!(requests(m), before, "{}", stats(m));
}

#[test]
fn answers_nothing_touched_outlive_the_change_log() {
    let Some((lib, bt)) = preloaded_mount("answers_nothing_touched_outlive_the_change_log", "64M")
    else {
        return;
    };
    let m = bt.path();
    std::fs::create_dir(m.join("d")).unwrap();
    let f = m.join("d/f");
    publish_file(&lib, &f, b"kept\n");
    // More changes elsewhere than the log holds (each file's create and
    // write are changes of their own).
    let busy = m.join("busy");
    std::fs::create_dir(&busy).unwrap();
    let gen = table_entry(m, 1, "d").1;
    for i in 0..RECORDS {
        std::fs::write(busy.join(i.to_string()), b"x").unwrap();
    }
    let now = table_entry(m, 1, "d").1;
    assert!(now - gen > RECORDS as u64, "{gen}..{now}");
    let d_ino = std::fs::metadata(m.join("d")).unwrap().ino();
    wait_for_entries(m, &[(1, "d"), (d_ino, "f")], now - SWEPT_WITHIN);
    let before = requests(m);
    assert_eq!(preloaded(&lib, &["cat", f.to_str().unwrap()]), "kept\n");
    assert_eq!(requests(m), before, "{}", stats(m));
}

#[test]
fn nothing_private_reaches_the_page_file() {
    let Some((lib, bt)) = preloaded_mount("nothing_private_reaches_the_page_file", "16M") else {
        return;
    };
    let m = bt.path();
    let mode = |p: &Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let files = [
        ("open", 0o644, "MARKER-open-to-all"),
        ("mine", 0o600, "MARKER-owner-only"),
        ("group", 0o640, "MARKER-group-only"),
        ("hidden/inside", 0o644, "MARKER-in-private-dir"),
    ];
    std::fs::create_dir(m.join("hidden")).unwrap();
    mode(&m.join("hidden"), 0o711);
    for (name, bits, text) in files {
        let p = m.join(name);
        std::fs::write(&p, text).unwrap();
        mode(&p, bits);
        for _ in 0..2 {
            assert_eq!(preloaded(&lib, &["cat", p.to_str().unwrap()]), text);
        }
    }
    assert!(
        page_holds(m, b"MARKER-open-to-all"),
        "the public file was published"
    );
    for (_, _, text) in &files[1..] {
        assert!(
            !page_holds(m, text.as_bytes()),
            "{text} is in the page file"
        );
    }
    // Made private after it was published: scrubbed before chmod returns.
    mode(&m.join("open"), 0o600);
    assert!(!page_holds(m, b"MARKER-open-to-all"));
}

#[test]
fn a_file_opened_from_the_table_sees_changes_and_outlives_its_name() {
    let Some((lib, bt)) = preloaded_mount(
        "a_file_opened_from_the_table_sees_changes_and_outlives_its_name",
        "16M",
    ) else {
        return;
    };
    let m = bt.path();
    publish_file(&lib, &m.join("w"), b"old\n");
    publish_file(&lib, &m.join("u"), b"kept\n");
    // The changes come from a process without the library, through the
    // kernel, while the preloaded one holds the files open.
    let code = format!(
        "import os, subprocess\n\
         env = {{k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}}\n\
         w = os.open({w:?}, os.O_RDONLY)\n\
         u = os.open({u:?}, os.O_RDONLY)\n\
         print(os.read(w, 100), os.read(u, 100))\n\
         subprocess.run(['sh', '-c', 'echo new > {w}; rm {u}'], env=env, check=True)\n\
         print(os.pread(w, 100, 0), os.pread(u, 100, 0), os.fstat(u).st_nlink)",
        w = m.join("w").to_str().unwrap(),
        u = m.join("u").to_str().unwrap(),
    );
    let out = preloaded(&lib, &[PYTHON, "-c", &code]);
    assert_eq!(out, "b'old\\n' b'kept\\n'\nb'new\\n' b'kept\\n' 0\n");
}

/// Free blocks of the file system at `m`, as the kernel reports them.
fn free_blocks(m: &Path) -> u64 {
    let out = Command::new("stat")
        .args(["-f", "-c", "%f", m.to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_removed_file_is_freed_once_its_reader_from_the_table_lets_go() {
    let Some((lib, bt)) = preloaded_mount(
        "a_removed_file_is_freed_once_its_reader_from_the_table_lets_go",
        "16M",
    ) else {
        return;
    };
    let m = bt.path();
    let empty = free_blocks(m);
    let f = m.join("f");
    publish_file(&lib, &f, &[b'x'; 4000]);
    // A reader holds the file open (from the table) while it is removed,
    // reads it after, and ends when told.
    let code = format!(
        "import os, sys\n\
         fd = os.open({:?}, os.O_RDONLY)\n\
         print('open', flush=True)\n\
         sys.stdin.readline()\n\
         print(len(os.pread(fd, 8192, 0)), flush=True)\n",
        f.to_str().unwrap()
    );
    let mut reader = Command::new(PYTHON)
        .args(["-c", &code])
        .env("LD_PRELOAD", &lib)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(reader.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "open\n");
    std::fs::remove_file(&f).unwrap();
    std::io::Write::write_all(reader.stdin.as_mut().unwrap(), b"go\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "4000\n", "the reader still reads the removed file");
    assert!(reader.wait().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while free_blocks(m) != empty {
        assert!(
            std::time::Instant::now() < deadline,
            "the removed file was never freed: {}",
            stats(m)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_child_reads_what_its_parent_opened_from_the_table() {
    let Some((lib, bt)) =
        preloaded_mount("a_child_reads_what_its_parent_opened_from_the_table", "16M")
    else {
        return;
    };
    let m = bt.path();
    let f = m.join("f");
    publish_file(&lib, &f, b"shared\n");
    // The fd opened from the table is inherited by a forked child and by
    // a program it runs (its stdin), and the parent reads it after.
    let code = format!(
        "import os, subprocess\n\
         fd = os.open({:?}, os.O_RDONLY)\n\
         pid = os.fork()\n\
         if pid == 0:\n\
         \x20   os._exit(0 if os.pread(fd, 100, 0) == b'shared\\n' else 1)\n\
         _, st = os.waitpid(pid, 0)\n\
         print(st, subprocess.run(['cat'], stdin=fd, capture_output=True).stdout, os.pread(fd, 100, 0))",
        f.to_str().unwrap()
    );
    let out = preloaded(&lib, &[PYTHON, "-c", &code]);
    assert_eq!(out, "0 b'shared\\n' b'shared\\n'\n");
}

/// Runs `argv` preloaded: its exit status and stderr.
fn preloaded_status(lib: &str, argv: &[&str]) -> (i32, String) {
    let out = run_preloaded(lib, None, argv);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn absent_names_and_links_are_answered_without_connecting() {
    let Some((lib, bt)) = preloaded_mount(
        "absent_names_and_links_are_answered_without_connecting",
        "16M",
    ) else {
        return;
    };
    let m = bt.path();
    let missing = m.join("missing");
    let path = missing.to_str().unwrap();
    let want = (1, format!("cat: {path}: No such file or directory\n"));
    for _ in 0..2 {
        assert_eq!(preloaded_status(&lib, &["cat", path]), want);
    }
    let before = requests(m);
    assert_eq!(preloaded_status(&lib, &["cat", path]), want);
    let (code, _) = preloaded_status(&lib, &["stat", path]);
    assert_eq!(code, 1);
    assert_eq!(requests(m), before, "{}", stats(m));
    // `readlink` of a published file: not a link.
    let f = m.join("f");
    publish_file(&lib, &f, b"x");
    let before_link = requests(m);
    let (code, _) = preloaded_status(&lib, &["readlink", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(requests(m), before_link, "{}", stats(m));
    // Created through the kernel: the absent answer is void at once.
    std::fs::write(&missing, b"here\n").unwrap();
    assert_eq!(preloaded(&lib, &["cat", path]), "here\n");
}

#[test]
fn a_dangling_link_is_never_published_as_absent() {
    let Some((lib, bt)) = preloaded_mount("a_dangling_link_is_never_published_as_absent", "16M")
    else {
        return;
    };
    let m = bt.path();
    std::os::unix::fs::symlink("missing", m.join("dangling")).unwrap();
    let link = m.join("dangling");
    let path = link.to_str().unwrap();
    // `stat -L` follows the link to nothing: ENOENT, for the target's name.
    for _ in 0..2 {
        assert_eq!(preloaded_status(&lib, &["stat", "-L", path]).0, 1);
    }
    assert_eq!(preloaded(&lib, &["readlink", path]), "missing\n");
    assert_eq!(
        preloaded(&lib, &["stat", "-c", "%F", path]),
        "symbolic link\n"
    );
}

/// Runs `argv` preloaded as uid/gid 65534: exit status and stdout.
fn preloaded_as_nobody(lib: &str, argv: &[&str]) -> (i32, String) {
    let out = run_preloaded(lib, Some(65534), argv);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn another_user_reads_public_files_from_the_table_and_nothing_else() {
    let Some((lib, bt)) = preloaded_mount(
        "another_user_reads_public_files_from_the_table_and_nothing_else",
        "16M",
    ) else {
        return;
    };
    let m = bt.path();
    // The private file first: a name added to the directory later voids
    // the table's answers for its other names (see README).
    let secret = m.join("secret");
    std::fs::write(&secret, b"root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        preloaded(&lib, &["cat", secret.to_str().unwrap()]),
        "root only\n"
    );
    let open = m.join("open");
    publish_file(&lib, &open, b"for all\n");
    let before = requests(m);
    let cat = |p: &Path| preloaded_as_nobody(&lib, &["cat", p.to_str().unwrap()]);
    assert_eq!(cat(&open), (0, "for all\n".into()));
    assert_eq!(requests(m), before, "{}", stats(m));
    assert_eq!(cat(&secret).0, 1);
}
