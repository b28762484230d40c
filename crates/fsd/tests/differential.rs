//! Differential suite: `tests/scripts/fsops.py` performs ~350 deterministic
//! filesystem operations (happy and error paths) and prints one normalized
//! JSON line each. The output on a btfuse mount must equal the output on a
//! tmpfs mount, line by line, both as root and as an unprivileged uid.
//!
//! A third run through the preload library (`LD_PRELOAD=libbtfuse.so` on the
//! btfuse mount) is `differential_*_preload`; it skips loudly while
//! `libbtfuse.so` is not built next to the `btfuse` binary.
//!
//! Documented exceptions live in `fsops.py` (`EXCEPTIONS`), not here.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

/// Same size for both filesystems: `statvfs` totals are part of the output.
const SIZE: &str = "512M";
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Prepares `<mnt>/work` (fixtures made by root, dir owned by the user under
/// test) and runs the sequence there; returns stdout. Panics with stderr if
/// the script itself fails (a crash is a finding too).
fn run_suite(mnt: &Path, uid: Option<u32>, env: &[(&str, String)], skip: &[&str]) -> String {
    let script = ScriptCopy::new("fsops.py");
    let root = mnt.join("work");
    std::fs::create_dir(&root).expect("mkdir work");
    set_mode(&root, 0o755);
    let mut setup = Command::new(PYTHON);
    setup.arg(&script.path).arg("setup").arg(&root);
    if let Some(u) = uid {
        setup.args(["--owner", &format!("{u}:{u}")]);
    }
    let out = run_timeout(&mut setup, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "fsops setup failed on {}: {}",
        mnt.display(),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut cmd = command_as(uid, PYTHON);
    cmd.arg(&script.path).arg("run").arg(&root);
    for section in skip {
        cmd.args(["--skip", section]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_timeout(&mut cmd, RUN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "fsops run failed on {} (uid {uid:?}, {}): {}\n--- last lines ---\n{}",
        mnt.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        tail(&stdout, 5)
    );
    assert!(
        stdout.lines().last().unwrap_or("").contains("\"done\""),
        "fsops output incomplete"
    );
    stdout
}

use std::process::Command;

fn differential(uid: Option<u32>, preload: bool, name: &str) {
    if !fuse_available(name) {
        return;
    }
    let mut env = Vec::new();
    if preload {
        match preload_lib() {
            Some(lib) => env.push(("LD_PRELOAD", lib.display().to_string())),
            None => {
                eprintln!(
                    "\n*** SKIPPED {name}: libbtfuse.so not built next to {} ***\n",
                    btfuse_bin().display()
                );
                return;
            }
        }
    }
    let skip: &[&str] = &[];
    let tmp = TmpfsGuard::new(SIZE);
    let reference = run_suite(tmp.path(), uid, &[], skip);
    let bt = BtfuseGuard::new(SIZE);
    let got = run_suite(bt.path(), uid, &env, skip);
    assert!(reference.lines().count() > 150, "reference run too short");
    assert_same_output(name, "tmpfs", &reference, "btfuse", &got);
}

#[test]
fn differential_root_matches_tmpfs() {
    differential(None, false, "differential_root_matches_tmpfs");
}

#[test]
fn differential_unprivileged_matches_tmpfs() {
    differential(
        Some(NOBODY),
        false,
        "differential_unprivileged_matches_tmpfs",
    );
}

#[test]
fn differential_root_preload_matches_tmpfs() {
    differential(None, true, "differential_root_preload_matches_tmpfs");
}

#[test]
fn differential_unprivileged_preload_matches_tmpfs() {
    differential(
        Some(NOBODY),
        true,
        "differential_unprivileged_preload_matches_tmpfs",
    );
}

/// The suite is deterministic: two tmpfs runs agree (guards against a flaky
/// script blaming the daemon).
#[test]
fn differential_script_is_deterministic_on_tmpfs() {
    if !root_available("differential_script_is_deterministic_on_tmpfs") {
        return;
    }
    let a = TmpfsGuard::new(SIZE);
    let b = TmpfsGuard::new(SIZE);
    let ra = run_suite(a.path(), Some(NOBODY), &[], &[]);
    let rb = run_suite(b.path(), Some(NOBODY), &[], &[]);
    assert_same_output("determinism", "tmpfs_a", &ra, "tmpfs_b", &rb);
}
