//! A process that changes what paths name (`chroot`, a new mount
//! namespace with a mount over the btfuse mount) gets the kernel's answers
//! from the preload library, not the mount's (issue 13, the preload door is
//! safe under any program): the same absolute path names the jail's file,
//! or the tmpfs's, exactly as without the library, while an fd opened
//! before the change still reads the mount's file, in the process and in a
//! forked child. `scripts/jail_prog.c` does the calls; its output with and
//! without the library must be identical.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const RUN: Duration = Duration::from_secs(120);

fn prog(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    compiled_c(&BUILT, "jail_prog.c", test)
}

/// `jail_prog MODE MNT [JAIL]`, preloaded with `lib` when given: its
/// stdout (it must succeed).
fn run(p: &Path, lib: Option<&str>, args: &[&Path], mode: &str) -> String {
    let mut cmd = Command::new(p);
    preload(cmd.arg(mode).args(args), lib);
    let out = run_timeout(&mut cmd, RUN);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "jail_prog {mode} (preloaded: {}) failed ({}):\n{stdout}\n{}",
        lib.is_some(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `mode` without and with the library: the answers must be the
/// same, and `must_see` (what the kernel shows after the change) must be
/// among them, so the change really moved the path.
fn same_answers(test: &str, mode: &str, jail: bool, must_see: &str) {
    if !root_available(test) {
        return;
    }
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let m = BtfuseGuard::new("64m");
    std::fs::write(m.path().join("f"), "mount file\n").expect("write mount file");
    // The jail holds the same absolute path with other content.
    let jail = jail.then(|| {
        let j = TmpfsGuard::new("8m");
        let inner = j.path().join(m.path().strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(&inner).expect("mkdir in jail");
        std::fs::write(inner.join("f"), "jail\n").expect("write jail file");
        j
    });
    let mut args = vec![m.path()];
    args.extend(jail.as_ref().map(|j| j.path()));
    let plain = run(&p, None, &args, mode);
    assert!(
        plain.contains(must_see),
        "without the library the change shows no {must_see:?}:\n{plain}"
    );
    assert!(plain.contains("after kept fd: 11 mount file"), "{plain}");
    let preloaded = run(&p, Some(&lib), &args, mode);
    assert_same_output(test, "plain", &plain, "preloaded", &preloaded);
}

#[test]
fn after_chroot_a_path_names_the_jails_file() {
    same_answers(
        "after_chroot_a_path_names_the_jails_file",
        "chroot",
        true,
        "after read: 5 jail",
    );
}

#[test]
fn after_chroot_by_syscall_a_path_names_the_jails_file() {
    same_answers(
        "after_chroot_by_syscall_a_path_names_the_jails_file",
        "chroot-sys",
        true,
        "after read: 5 jail",
    );
}

#[test]
fn in_a_new_mount_namespace_a_mount_over_the_path_is_seen() {
    same_answers(
        "in_a_new_mount_namespace_a_mount_over_the_path_is_seen",
        "unshare",
        false,
        "after read: 6 tmpfs",
    );
}

#[test]
fn in_a_mount_namespace_made_by_syscall_a_mount_over_the_path_is_seen() {
    same_answers(
        "in_a_mount_namespace_made_by_syscall_a_mount_over_the_path_is_seen",
        "unshare-sys",
        false,
        "after read: 6 tmpfs",
    );
}

#[test]
fn a_child_cloned_into_a_mount_namespace_sees_a_mount_over_the_path() {
    same_answers(
        "a_child_cloned_into_a_mount_namespace_sees_a_mount_over_the_path",
        "clone",
        false,
        "cloned read: 6 tmpfs",
    );
}

#[test]
fn after_setns_into_another_mount_namespace_its_mount_over_the_path_is_seen() {
    same_answers(
        "after_setns_into_another_mount_namespace_its_mount_over_the_path_is_seen",
        "setns",
        false,
        "after read: 6 tmpfs",
    );
}
