//! A process that reads a directory's small files one by one has them
//! opened ahead (`interpose`'s `ops::ahead`, the `OpenAhead` request): a
//! round trip for many files, and every open and read still the answer
//! tmpfs gives at that moment, whatever changed the files since, through
//! whichever door, and as root or not.

mod common;

use common::*;

/// After [`TWO_WRITERS`]: makes 60 files in `argv[1]` (some empty, one too
/// large to open ahead, one a directory), reads each once (their atimes
/// are then not due), reads the first two again (the second misses twice
/// in a row: the files from there on are opened ahead), has the writers
/// change some of them, through the library and through the kernel, and
/// reads all of them in order: prints what each read gave (bytes or
/// errno), a line a file.
const READ_WHILE_CHANGED: &str = r#"
names = ["f%03d" % i for i in range(60)]
for i, n in enumerate(names):
    if n == "f030":
        os.mkdir(os.path.join(d, n))
        continue
    with open(os.path.join(d, n), "wb") as fh:
        fh.write(b"x" * 9000 if n == "f020" else (b"v1-%d;" % i) * (i % 3))
def read(n):
    try:
        with open(os.path.join(d, n), "rb") as fh:
            return fh.read()
    except OSError as e:
        return "errno %d" % e.errno
for n in names:
    read(n)
out = [read("f000"), read("f001")]
for writer, code in [
    (fast, "open(d + '/f005', 'r+b').write(b'X')"),
    (slow, "open(d + '/f007', 'r+b').write(b'Y')"),
    (slow, "os.unlink(d + '/f008')"),
    (fast, "os.chmod(d + '/f010', 0)"),
    (slow, "os.chmod(d + '/f011', 0)"),
    (slow, "open(d + '/n', 'wb').write(b'new'); os.rename(d + '/n', d + '/f013')"),
    (fast, "open(d + '/f014', 'ab').write(b'+')"),
    (slow, "os.truncate(d + '/f016', 1)"),
    (fast, "os.utime(d + '/f017', (1, 1))"),
    (fast, "os.rename(d + '/f019', d + '/g019')"),
    (slow, "os.unlink(d + '/f023'); os.symlink('f001', d + '/f023')"),
    (fast, "open(d + '/f045', 'wb').write(b'late')"),
]:
    change(writer, code)
for n in names[2:]:
    out.append(read(n))
stop_writers()
print("\n".join("%s %r" % (n, r if len(r) < 100 else "%d bytes" % len(r)) for n, r in zip(names, out)))
"#;

/// Runs [`READ_WHILE_CHANGED`] in a fresh directory of `root` owned by
/// `uid` (if given), as that user, preloaded with `lib`: its output.
fn read_while_changed(root: &std::path::Path, uid: Option<u32>, lib: &str) -> String {
    let d = root.join(format!("ahead-{}", uid.unwrap_or(0)));
    std::fs::create_dir(&d).unwrap();
    if let Some(u) = uid {
        chown(&d, u, u);
    }
    let script = format!("{TWO_WRITERS}{READ_WHILE_CHANGED}");
    let out = preloaded_python_as(uid, lib, &script, &d);
    assert!(
        out.status.success(),
        "{}",
        tail(&String::from_utf8_lossy(&out.stderr), 20)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The same reads on tmpfs and through the library on a mount give the
/// same bytes and errors, as root and as an unprivileged user (whom the
/// `chmod 0` shuts out), and the mount's files were opened ahead.
fn same_as_tmpfs(test: &str, uid: Option<u32>) {
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    if uid.is_some() && !root_available(test) {
        return;
    }
    let tmp = TmpfsGuard::new("16M");
    let bt = BtfuseGuard::new("16M");
    let expected = read_while_changed(tmp.path(), uid, &lib);
    let (opens, ahead) = (
        fast_path_count(bt.path(), "open"),
        fast_path_count(bt.path(), "open_ahead"),
    );
    let got = read_while_changed(bt.path(), uid, &lib);
    assert_same_output(test, "tmpfs", &expected, "mount", &got);
    assert!(
        fast_path_count(bt.path(), "open_ahead") > ahead,
        "nothing was opened ahead"
    );
    // 60 files made, 60 read, 60 read again: far fewer opens than reads
    // once the files are opened ahead (the writers' opens count too).
    let opened = fast_path_count(bt.path(), "open") - opens;
    assert!(opened < 150, "{opened} opens for 180 reads");
}

#[test]
fn files_opened_ahead_read_as_on_tmpfs_as_root() {
    same_as_tmpfs("files_opened_ahead_read_as_on_tmpfs_as_root", None);
}

#[test]
fn files_opened_ahead_read_as_on_tmpfs_as_a_user() {
    same_as_tmpfs("files_opened_ahead_read_as_on_tmpfs_as_a_user", Some(65534));
}

/// Reads every file of `argv[1]`'s directories in order, `argv[2]` times.
const READ_TREE: &str = r#"
import os, sys
seen = []
for _ in range(int(sys.argv[2])):
    for d, dirs, files in os.walk(sys.argv[1]):
        dirs.sort()
        for f in sorted(files):
            with open(os.path.join(d, f), "rb") as fh:
                seen.append(fh.read())
print(len(seen), len(set(seen)))
"#;

/// A walk that reads a tree's files once more asks the daemon once per
/// window of files, not once per file.
#[test]
fn a_tree_read_again_is_opened_ahead_in_few_round_trips() {
    let Some(lib) = preload_or_skip("a_tree_read_again_is_opened_ahead_in_few_round_trips") else {
        return;
    };
    let bt = BtfuseGuard::new("64M");
    let tree = bt.path().join("tree");
    for d in 0..4 {
        let dir = tree.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..200 {
            std::fs::write(dir.join(format!("f{f:03}")), format!("{d}/{f}")).unwrap();
        }
    }
    // First read: through the library, so that the atimes are not due
    // (and the kernel holds no page of the files).
    let run = |times: &str| {
        preloaded_python_args_ok(&lib, READ_TREE, &[tree.as_os_str(), times.as_ref()])
            .trim()
            .to_string()
    };
    assert_eq!(run("1"), "800 800");
    let (opens, ahead) = (
        fast_path_count(bt.path(), "open"),
        fast_path_count(bt.path(), "open_ahead"),
    );
    assert_eq!(run("1"), "800 800");
    let opens = fast_path_count(bt.path(), "open") - opens;
    let ahead = fast_path_count(bt.path(), "open_ahead") - ahead;
    assert!(
        opens + ahead <= 20,
        "800 files read with {opens} opens and {ahead} opens ahead"
    );
}

/// Reads `argv[2]` files of `argv[1]` in a random order (seeded by
/// `argv[3]`): prints the total of their bytes.
const READ_SHUFFLED: &str = r#"
import os, random, sys
d = sys.argv[1]
random.seed(int(sys.argv[3]))
total = 0
for name in random.sample(sorted(os.listdir(d)), int(sys.argv[2])):
    with open(os.path.join(d, name), "rb") as f:
        total += len(f.read())
print(total)
"#;

/// A process that reads a directory's files in another order than its
/// names' leaves the files opened ahead unread: it is not opened ahead
/// again (two small windows lost at most, then plain opens).
#[test]
fn a_directory_read_out_of_order_is_not_opened_ahead_again() {
    let Some(lib) = preload_or_skip("a_directory_read_out_of_order_is_not_opened_ahead_again")
    else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let d = bt.path().join("d");
    std::fs::create_dir(&d).unwrap();
    for i in 0..500 {
        std::fs::write(d.join(format!("f{i:03}")), b"0123456789").unwrap();
    }
    let run = |seed: &str| {
        preloaded_python_args_ok(
            &lib,
            READ_SHUFFLED,
            &[d.as_os_str(), "200".as_ref(), seed.as_ref()],
        )
        .trim()
        .to_string()
    };
    // The first reads make the atimes not due, whatever they open ahead.
    for seed in ["1", "2", "3"] {
        run(seed);
    }
    let ahead = fast_path_count(bt.path(), "open_ahead");
    assert_eq!(run("4"), "2000");
    let ahead = fast_path_count(bt.path(), "open_ahead") - ahead;
    assert!(
        ahead <= 2,
        "{ahead} opens ahead for 200 files read out of order"
    );
}
