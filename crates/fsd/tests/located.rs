//! `O_PATH` directory fds on the mount (`interpose`'s `ops::located`):
//! the kernel keeps the fd, the calls relative to it take the fast path.
//!
//! * `tests/scripts/opath_dirs.py` (relative calls, I/O on the fd itself,
//!   symlinks, a reused fd number after `close`, `dup2` and a raw `close`,
//!   permissions as uid 65534) prints the same on tmpfs, on the plain
//!   mount and preloaded, and preloaded no call relative to the fd reaches
//!   the kernel (strace);
//! * a preloaded `rsync -a` (which names everything relative to `O_PATH`
//!   fds) copies a tree into and out of the mount exactly, into it with a
//!   handful of FUSE requests instead of one per call.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn opath_run(root: &Path, other: &Path, lib: Option<&str>, strace_log: Option<&Path>) -> String {
    std::fs::create_dir(root).expect("mkdir root");
    std::fs::create_dir(other).expect("mkdir other");
    let script = scripts_dir().join("opath_dirs.py");
    let mut cmd = match strace_log {
        Some(log) => {
            let mut c = Command::new("strace");
            c.arg("-f").arg("-o").arg(log).arg(PYTHON);
            c
        }
        None => Command::new(PYTHON),
    };
    cmd.arg(script).arg(root).arg(other);
    let out = run_timeout(preload(&mut cmd, lib), LIMIT);
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s.push_str(&format!("### exit {:?}\n", out.status.code()));
    s
}

#[test]
fn o_path_dirs_match_tmpfs_and_their_relative_calls_skip_the_kernel() {
    let name = "o_path_dirs_match_tmpfs_and_their_relative_calls_skip_the_kernel";
    let Some(lib) = preload_or_skip(name) else {
        return;
    };
    let tmp = TmpfsGuard::new("64M");
    let reference = opath_run(&tmp.path().join("t"), &tmp.path().join("o1"), None, None);
    assert!(
        reference.contains("\ndone\n") && reference.lines().count() > 40,
        "reference run:\n{reference}"
    );
    let bt = BtfuseGuard::new("64M");
    let plain = opath_run(&bt.path().join("plain"), &tmp.path().join("o2"), None, None);
    assert_same_output(name, "tmpfs", &reference, "FUSE mount", &plain);
    let log = tmp.path().join("strace.log");
    let fast = opath_run(
        &bt.path().join("fast"),
        &tmp.path().join("o3"),
        Some(&lib),
        Some(&log),
    );
    assert_same_output(name, "tmpfs", &reference, "preloaded", &fast);
    // The names the script uses only relative to its O_PATH fd of "a".
    let trace = std::fs::read_to_string(&log).expect("strace log");
    for relative in ["\"sub\"", "\"g\"", "\"h\""] {
        let hits: Vec<&str> = trace.lines().filter(|l| l.contains(relative)).collect();
        assert!(
            hits.is_empty(),
            "{relative} reached the kernel:\n{}",
            hits.join("\n")
        );
    }
}

/// A tree of `dirs` directories of `files` files (sizes and modes varied,
/// times set), a symlink and an empty directory.
fn make_tree(root: &Path, dirs: usize, files: usize) {
    use std::os::unix::fs::PermissionsExt;
    for d in 0..dirs {
        let dir = root.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            let p = dir.join(format!("f{f:03}"));
            std::fs::write(&p, vec![b'a' + (f % 26) as u8; (d * 131 + f * 17) % 9000]).unwrap();
            let mode = if f % 7 == 0 { 0o600 } else { 0o644 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    std::os::unix::fs::symlink("d00/f001", root.join("link")).unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    // Times in the past, one file's another: rsync leaves a directory's
    // time alone when it is within the source's second (measured on
    // tmpfs too), so a tree made just now would not show a lost time.
    for (path, when) in [
        (root.to_path_buf(), "2001-02-03 04:05:06"),
        (root.join("d01/f002"), "1999-12-31 23:59:59"),
    ] {
        let touched = run_timeout(
            Command::new("find")
                .arg(&path)
                .args(["-exec", "touch", "-h", "-d", when, "{}", "+"]),
            LIMIT,
        );
        assert!(touched.status.success());
    }
}

/// What `rsync -a` must keep: every entry's type, mode, size, mtime and
/// link target, relative to `root`, sorted.
fn listing(root: &Path) -> String {
    let out = run_timeout(
        Command::new("find")
            .arg(root)
            .arg("-mindepth")
            .arg("1")
            .arg("-printf")
            .arg("%P %y %m %s %T@ %l\n"),
        LIMIT,
    );
    assert!(out.status.success(), "find {}", root.display());
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            // Directories' sizes differ by filesystem; keep the rest.
            let f: Vec<&str> = l.split(' ').collect();
            if f[1] == "d" {
                format!("{} d {} - {} {}", f[0], f[2], f[4], f[5])
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn rsync(from: &Path, to: &Path, lib: &str) {
    let mut cmd = Command::new("rsync");
    cmd.arg("-a")
        .arg(format!("{}/", from.display()))
        .arg(format!("{}/", to.display()));
    let out = run_timeout(preload(&mut cmd, Some(lib)), LIMIT);
    assert!(
        out.status.success(),
        "rsync {} -> {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn same_tree(a: &Path, b: &Path) {
    let diff = run_timeout(Command::new("diff").arg("-r").arg(a).arg(b), LIMIT);
    assert!(
        diff.status.success(),
        "diff -r {} {}:\n{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&diff.stdout)
    );
    assert_eq!(listing(a), listing(b), "{} vs {}", a.display(), b.display());
}

#[test]
fn rsync_preloaded_copies_into_and_out_of_the_mount_on_the_fast_path() {
    let name = "rsync_preloaded_copies_into_and_out_of_the_mount_on_the_fast_path";
    let Some(lib) = preload_or_skip(name) else {
        return;
    };
    assert!(
        Command::new("rsync").arg("--version").output().is_ok(),
        "{name} needs rsync (.ci/run installs it)"
    );
    let tmp = TmpfsGuard::new("256M");
    let src = tmp.path().join("src");
    make_tree(&src, 20, 25);
    let bt = BtfuseGuard::new("256M");
    let into = bt.path().join("copy");
    let before = stats(bt.path());
    rsync(&src, &into, &lib);
    let after = stats(bt.path());
    same_tree(&src, &into);
    let fuse = stat_value(&after, "FUSE door:") - stat_value(&before, "FUSE door:");
    let fast = stat_value(&after, "fast-path door:") - stat_value(&before, "fast-path door:");
    // 500 files: the plain mount takes ~14 requests per file; what is left
    // preloaded is the kernel's lookups for rsync's walk to the target.
    assert!(
        fuse < 100 && fast > 2000,
        "rsync into the mount: {fuse} FUSE requests, {fast} fast-path ones"
    );
    let out = tmp.path().join("out");
    rsync(&into, &out, &lib);
    same_tree(&src, &out);
}
