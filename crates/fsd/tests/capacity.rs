//! Capacity and memory: writes past `--size` fail with ENOSPC (never an
//! abort), statfs then reports ~0 free, and deleting makes room again; the
//! daemon's RSS returns near its baseline after 1 GiB is written and deleted.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// Python: fill `path` 1 MiB at a time until an error; print errno name,
/// bytes written, statvfs free bytes (after the error).
const FILL: &str = r#"
import errno, os, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
buf = b"\xab" * (1 << 20)
n = 0
err = "none"
try:
    while n < (1 << 32):
        n += os.write(fd, buf)
    os.fsync(fd)
except OSError as e:
    err = errno.errorcode[e.errno]
try:
    os.close(fd)
except OSError as e:
    err2 = errno.errorcode[e.errno]
s = os.statvfs(os.path.dirname(p))
print(err, n, s.f_bavail * s.f_frsize, s.f_bfree * s.f_frsize, s.f_blocks * s.f_frsize)
"#;

fn fill(path: &std::path::Path) -> (String, u64, u64, u64, u64) {
    let out = run_timeout(
        Command::new(PYTHON).args(["-c", FILL]).arg(path),
        Duration::from_secs(120),
    );
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "fill failed: {s} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<&str> = s.split_whitespace().collect();
    (
        v[0].to_string(),
        v[1].parse().unwrap(),
        v[2].parse().unwrap(),
        v[3].parse().unwrap(),
        v[4].parse().unwrap(),
    )
}

fn enospc_then_recover(dir: &std::path::Path, what: &str) {
    const MIB: u64 = 1 << 20;
    let (err, written, avail, free, total) = fill(&dir.join("fill1"));
    eprintln!("{what}: err={err} written={written} avail={avail} free={free} total={total}");
    assert_eq!(err, "ENOSPC", "{what}: filling must end with ENOSPC");
    assert!(
        (56 * MIB..=64 * MIB).contains(&written),
        "{what}: wrote {written} bytes into a 64 MiB filesystem"
    );
    assert!(
        avail < 2 * MIB && free < 2 * MIB,
        "{what}: statfs reports {avail} available / {free} free after ENOSPC"
    );
    assert!(
        (60 * MIB..=64 * MIB).contains(&total),
        "{what}: statfs total {total}"
    );
    std::fs::remove_file(dir.join("fill1")).expect("rm fill1");
    let s = statvfs_free(dir);
    assert!(s > 60 * MIB, "{what}: after delete statfs free is only {s}");
    let out = run_timeout(
        Command::new("dd")
            .args([
                "if=/dev/zero",
                "bs=1M",
                "count=32",
                "conv=fsync",
                "status=none",
            ])
            .arg(format!("of={}", dir.join("again").display())),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{what}: writing after delete failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(dir.join("again")).unwrap().len(),
        32 * MIB
    );
}

fn statvfs_free(dir: &std::path::Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: zeroed statvfs is a valid out-parameter; `c` is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer for the duration of the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    assert_eq!(rc, 0, "statvfs");
    s.f_bavail as u64 * s.f_frsize as u64
}

#[test]
fn enospc_at_size_limit_and_recovery_on_btfuse() {
    if !fuse_available("enospc_at_size_limit_and_recovery_on_btfuse") {
        return;
    }
    let bt = BtfuseGuard::new("64M");
    enospc_then_recover(bt.path(), "btfuse");
}

#[test]
fn enospc_reference_on_tmpfs() {
    if !root_available("enospc_reference_on_tmpfs") {
        return;
    }
    let t = TmpfsGuard::new("64M");
    enospc_then_recover(t.path(), "tmpfs");
}

#[test]
fn memory_returns_after_deleting_1gib() {
    if !fuse_available("memory_returns_after_deleting_1gib") {
        return;
    }
    const MIB: u64 = 1024;
    let bt = BtfuseGuard::new("2G");
    std::thread::sleep(Duration::from_millis(200));
    let base = bt.rss_kib();
    let f = bt.path().join("big");
    let out = run_timeout(
        Command::new("dd")
            .args([
                "if=/dev/zero",
                "bs=1M",
                "count=1024",
                "conv=fsync",
                "status=none",
            ])
            .arg(format!("of={}", f.display())),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = bt.rss_kib();
    eprintln!("daemon VmRSS: baseline {base} KiB, after writing 1 GiB {full} KiB");
    assert!(
        full > base + 512 * MIB,
        "RSS did not grow with data ({base} -> {full} KiB): measuring the wrong process?"
    );
    std::fs::remove_file(&f).expect("rm big");
    // Freeing may be asynchronous (FUSE forget / release); poll for up to 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = bt.rss_kib();
    while now > base + 64 * MIB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = bt.rss_kib();
    }
    eprintln!("daemon VmRSS after delete: {now} KiB");
    assert!(
        now <= base + 64 * MIB,
        "daemon RSS stays high after deleting 1 GiB: baseline {base} KiB, after delete {now} KiB"
    );
    // And the space is reusable.
    let free = statvfs_free(bt.path());
    assert!(
        free > (2u64 << 30) - (16 << 20),
        "statfs free after delete: {free}"
    );
}
