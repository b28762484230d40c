//! Short-lived processes (issue 15): what the library does to make a
//! process's few calls cheap keeps their meaning.
//!
//! A `close` posts its release without waiting for the daemon's answer;
//! `scripts/posted_close.c` checks that the process's next call (on the
//! same channel or another one, from the same thread or after a join)
//! sees the close's effect: an unlinked file's blocks are free again.
//! `vfork` is a real one when the child cannot disturb the library;
//! `scripts/vfork_child.c` checks both kinds and what the parent finds
//! after its child.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

fn prog(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    compiled_c(&BUILT, "posted_close.c", test)
}

/// A process that holds no fast-path fd gets a real `vfork`: its child
/// (which stats, opens and reads on the mount, through the kernel, changes
/// its cwd, closes every fd above 2 and dups) leaves the parent's state as
/// it was (its cwd, its fds, relative opens, a file written and read back
/// through the fast path); one that holds a fast-path fd gets a `fork`,
/// whose child reads the inherited fd; a vfork child execs `cat` of a file
/// on the mount; a process with a second thread gets a `fork`.
#[test]
fn vfork_is_real_when_the_child_cannot_disturb_the_library() {
    let test = "vfork_is_real_when_the_child_cannot_disturb_the_library";
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = compiled_c(&BUILT, "vfork_child.c", test) else {
        return;
    };
    let bt = BtfuseGuard::new("64M");
    let dir = bt.path().join("vf");
    std::fs::create_dir(&dir).unwrap();
    let before = stat_value(&stats(bt.path()), "fast-path requests");
    let out = run_timeout(
        Command::new(&p).arg(&dir).env("LD_PRELOAD", &lib),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text == "ok A real\nok B fork\nok C\nok D fork\n",
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let after = stat_value(&stats(bt.path()), "fast-path requests");
    assert!(after > before, "the parent used the fast path");
    assert_eq!(
        door_count(bt.path(), "FUSE door", "ioctl"),
        1,
        "the vfork child's calls went to the kernel"
    );
}

#[test]
fn a_posted_close_is_seen_by_the_next_call() {
    let test = "a_posted_close_is_seen_by_the_next_call";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let bt = BtfuseGuard::new("64M");
    let out = run_timeout(
        Command::new(&p)
            .arg(bt.path())
            .arg("200")
            .env("LD_PRELOAD", &lib),
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("ok 200"),
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    // The closes went through the fast path: its door served the releases.
    let s = stats(bt.path());
    let fast = s.split("fast-path door:").nth(1).unwrap_or("");
    let released = fast
        .lines()
        .find_map(|l| l.trim().strip_prefix("release "))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    assert!(
        released.is_some_and(|n| n >= 200),
        "fast-path releases: {released:?}\n{s}"
    );
}
