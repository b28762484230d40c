//! `realpath(3)`, `canonicalize_file_name(3)` and `__realpath_chk` under
//! the preload library: glibc resolves with its own internal `readlink`
//! and `faccessat`, which went to the kernel even for a mount's paths; the
//! library resolves with its own. `scripts/realpath_prog.c` resolves ~50
//! names (files, directories, `.`/`..`, relative and absolute links,
//! chains, loops, a chain one link past glibc's limit, dangling links,
//! trailing slashes, a directory the caller may not enter), absolute and
//! from the cwd, through all three functions: the answers, errnos and
//! partial results must be those of tmpfs and of the plain mount, as root
//! and as uid 65534, and the preloaded run makes no FUSE request.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const RUN: Duration = Duration::from_secs(60);

fn prog(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    compiled_c(&BUILT, "realpath_prog.c", test)
}

/// Runs `prog MODE ROOT` as `uid`, preloaded with `lib` when given; stdout.
fn run(prog: &Path, mode: &str, root: &Path, uid: Option<u32>, lib: Option<&str>) -> String {
    let mut cmd = command_as(uid, prog.to_str().unwrap());
    preload(cmd.arg(mode).arg(root), lib);
    let out = run_timeout(&mut cmd, RUN);
    assert!(
        out.status.success(),
        "realpath_prog {mode} {} ({uid:?}, {lib:?}): {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn realpath_answers_as_on_tmpfs_without_the_kernel() {
    let test = "realpath_answers_as_on_tmpfs_without_the_kernel";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(prog) = prog(test) else {
        return;
    };
    let tmp = TmpfsGuard::new("16M");
    let bt = BtfuseGuard::new("16M");
    for root in [tmp.path(), bt.path()] {
        set_mode(root, 0o755);
        run(&prog, "make", root, None, None);
    }
    for uid in [None, Some(65534)] {
        let want = run(&prog, "run", tmp.path(), uid, None);
        assert!(want.lines().count() > 300, "{want}");
        let plain = run(&prog, "run", bt.path(), uid, None);
        let who = format!("realpath_prog as {uid:?}");
        assert_same_output(&who, "tmpfs", &want, "the plain mount", &plain);
        let before = stats(bt.path());
        let fast = run(&prog, "run", bt.path(), uid, Some(&lib));
        let after = stats(bt.path());
        assert_same_output(&who, "tmpfs", &want, "preloaded", &fast);
        let fuse = stat_value(&after, "FUSE door:") - stat_value(&before, "FUSE door:");
        let served = stat_value(&after, "fast-path door:") - stat_value(&before, "fast-path door:");
        assert_eq!(fuse, 0, "preloaded realpath reached the kernel's FUSE door");
        // Served by the daemon: each directory and link read once, the
        // rest from the process's caches.
        assert!(served > 100, "{served} fast-path requests");
    }
}

/// A link's target is kept by its inode (`linkcache`): a link replaced by
/// another process, through the plain mount, is read with its new target
/// at once, by `readlink` and by `realpath`, in a process that read the old
/// one several times.
#[test]
fn a_replaced_link_reads_its_new_target() {
    let test = "a_replaced_link_reads_its_new_target";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let code = r#"
import os, subprocess, sys
d = sys.argv[1]
os.mkdir(d + "/a"); os.mkdir(d + "/b")
os.symlink("a", d + "/l")
for _ in range(3):
    assert os.readlink(d + "/l") == "a"
    assert os.path.realpath(d + "/l") == d + "/a"
env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
for target in ("b", "a", "b"):
    # Replaced through the kernel (the plain mount), not by this process.
    subprocess.run(["ln", "-sfn", target, d + "/l"], env=env, check=True)
    for _ in range(2):
        assert os.readlink(d + "/l") == target, (os.readlink(d + "/l"), target)
        assert os.path.realpath(d + "/l") == d + "/" + target
print("ok")
"#;
    let mut cmd = std::process::Command::new(PYTHON);
    cmd.args(["-c", code])
        .arg(bt.path())
        .env("LD_PRELOAD", &lib);
    let out = run_timeout(&mut cmd, RUN);
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
