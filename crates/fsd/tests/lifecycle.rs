//! The CLI contract around mounting: SIGTERM unmounts cleanly and exits 0,
//! `--background` returns only once the mount is usable, `btfuse umount`
//! unmounts, and a missing mountpoint is a one-line error, not a panic.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn sigterm_unmounts_cleanly() {
    if !fuse_available("sigterm_unmounts_cleanly") {
        return;
    }
    let mut bt = BtfuseGuard::new("16M");
    std::fs::write(bt.path().join("x"), b"x").expect("write on mount");
    let (st, unmounted) = bt.terminate(Duration::from_secs(5));
    assert!(st.is_some(), "btfuse did not exit within 5 s of SIGTERM");
    assert!(unmounted, "mount still present after SIGTERM");
    assert!(
        st.unwrap().success(),
        "exit status after SIGTERM: {st:?}\n{}",
        bt.log_text()
    );
}

#[test]
fn background_mount_is_usable_on_return_and_umount_works() {
    if !fuse_available("background_mount_is_usable_on_return_and_umount_works") {
        return;
    }
    let dir = fresh_dir("bg");
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            // Bounded: the daemon exits when unmounted.
            detach(&self.0);
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _c = Cleanup(dir.clone());
    let out = run_timeout(
        Command::new(btfuse_bin())
            .arg("mount")
            .arg(&dir)
            .args(["--size", "16M", "--background"]),
        Duration::from_secs(15),
    );
    assert!(
        out.status.success(),
        "btfuse mount --background: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Usable at once, without polling.
    assert!(
        mount_fstype(&dir).is_some_and(|t| t.starts_with("fuse")),
        "not mounted when --background returned"
    );
    std::fs::write(dir.join("f"), b"hi").expect("write right after --background returned");
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"hi");
    let out = run_timeout(
        Command::new(btfuse_bin()).arg("umount").arg(&dir),
        Duration::from_secs(15),
    );
    assert!(
        out.status.success(),
        "btfuse umount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        mount_fstype(&dir).is_none(),
        "still mounted after btfuse umount"
    );
}

#[test]
fn missing_mountpoint_is_a_one_line_error() {
    if !fuse_available("missing_mountpoint_is_a_one_line_error") {
        return;
    }
    let out = run_timeout(
        Command::new(btfuse_bin()).args([
            "mount",
            "/nonexistent/btfuse-test-mnt",
            "--size",
            "16M",
            "--background",
        ]),
        Duration::from_secs(15),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mounting a missing dir succeeded");
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    assert_eq!(
        err.trim().lines().count(),
        1,
        "expected one line, got: {err}"
    );
}
