//! A walk's next directory is opened and listed ahead (`interpose`'s
//! `walk` and `channel::ahead`): `find`, `du`, `ls -R` and a python walk
//! take each next directory from a listing the daemon made while they
//! worked on the one before, and what they list is still what tmpfs
//! lists at that moment, whatever changed the directories since.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// `root/w/dNN` for NN in 00..12, each holding `f0..f5` and, for even NN,
/// a subdirectory `sub` holding `g0..g2`.
fn tree(root: &Path) {
    for d in 0..12 {
        let dir = root.join(format!("w/d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..6 {
            std::fs::write(dir.join(format!("f{i}")), vec![b'x'; i]).unwrap();
        }
        if d % 2 == 0 {
            std::fs::create_dir(dir.join("sub")).unwrap();
            for i in 0..3 {
                std::fs::write(dir.join(format!("sub/g{i}")), b"y").unwrap();
            }
        }
    }
}

/// Runs `argv` (with `LD_PRELOAD=lib` and `BTFUSE_DEBUG` if `lib`), in
/// `dir`: its output, and the listings made ahead that it took (0 without
/// the library).
fn run_in(dir: &Path, lib: Option<&str>, argv: &[&str]) -> (String, u64) {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .current_dir(dir)
        .env_remove("LD_PRELOAD")
        .env("LC_ALL", "C");
    if let Some(lib) = lib {
        cmd.env("LD_PRELOAD", lib).env("BTFUSE_DEBUG", "1");
    }
    let out = run_timeout(&mut cmd, PY_ANSWER);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{argv:?}: {err}");
    // "btfuse: metadata cache: ... listings ahead: N taken, M not"
    let taken = err
        .lines()
        .filter_map(|l| l.split("listings ahead: ").nth(1))
        .filter_map(|t| t.split(' ').next()?.parse::<u64>().ok())
        .sum();
    (String::from_utf8(out.stdout).unwrap(), taken)
}

/// The library, a mount and a tmpfs holding [`tree`], for `test`, or
/// `None` when the test is skipped (no root, FUSE or library). The mount's
/// tree was walked once: a directory is listed ahead only when that
/// leaves its atime as it is (relatime), and a first walk updates them.
fn set_up(test: &str) -> Option<(String, BtfuseGuard, TmpfsGuard)> {
    let lib = preload_or_skip(test)?;
    let mnt = BtfuseGuard::new("64M");
    let tmp = TmpfsGuard::new("16m");
    tree(mnt.path());
    tree(tmp.path());
    run_in(mnt.path(), Some(&lib), &["ls", "-R", "w"]);
    Some((lib, mnt, tmp))
}

#[test]
fn walks_take_each_next_directory_listed_ahead() {
    let Some((lib, mnt, tmp)) = set_up("walks_take_each_next_directory_listed_ahead") else {
        return;
    };
    // 18 directories below `w`: after the first, each is the one guessed.
    for argv in [
        &["find", "w", "-size", "+0"][..],
        &["du", "-a", "w"],
        &["ls", "-lR", "--time-style=+", "w"],
    ] {
        // In each filesystem's own listing order (tmpfs lists the newest
        // first): the same lines.
        let sorted = |s: String| {
            let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let (want, _) = run_in(tmp.path(), None, argv);
        let before = fast_path_count(mnt.path(), "open_list");
        let (got, taken) = run_in(mnt.path(), Some(&lib), argv);
        let listed = fast_path_count(mnt.path(), "open_list") - before;
        assert_eq!(sorted(got), sorted(want), "{argv:?}");
        assert!(
            taken >= 15,
            "{argv:?}: {taken} of 19 directories taken ahead"
        );
        // Guesses not taken cost a listing each: a handful at most.
        assert!(
            listed <= 23,
            "{argv:?}: {listed} listings for 20 directories"
        );
    }
}

/// Lists `w`'s directories one after another (each listing of `dNN`
/// made ahead while the one before was listed) and has a process of the
/// plain mount change some of them between two listings: the listings
/// show the changes, as on tmpfs, and so do the errors of directories
/// removed or made unreadable.
const LIST_WHILE_CHANGED: &str = r#"
import os, subprocess, sys
w = os.path.join(sys.argv[1], "w")
def change():
    env = {"PATH": os.environ["PATH"]}
    for argv in (["touch", w + "/d04/new"], ["rm", w + "/d05/f0"], ["rm", "-r", w + "/d06"],
                 ["mkdir", w + "/d07/made"], ["mv", w + "/d08/f1", w + "/d09/moved"]):
        subprocess.run(argv, env=env, check=True)
out = []
for d in sorted(os.listdir(w)):
    try:
        out.append((d, sorted(os.listdir(os.path.join(w, d)))))
    except OSError as e:
        out.append((d, e.errno))
    if d == "d03":
        change()
print(out)
"#;

#[test]
fn a_directory_listed_ahead_lists_what_it_holds_when_opened() {
    let Some((lib, mnt, tmp)) = set_up("a_directory_listed_ahead_lists_what_it_holds_when_opened")
    else {
        return;
    };
    let py = |root: &Path, lib: Option<&str>| {
        run_in(root, lib, &[PYTHON, "-c", LIST_WHILE_CHANGED, "."])
    };
    let (want, _) = py(tmp.path(), None);
    assert!(
        want.contains("'new'") && want.contains("('d06', 2)"),
        "{want}"
    );
    let (got, taken) = py(mnt.path(), Some(&lib));
    assert_eq!(got, want);
    // The listings before the change were taken ahead: the walk guessed.
    assert!(taken >= 2, "{taken} listings taken ahead");
}
