//! FUSE over io_uring: where the kernel offers it (`fuse.enable_uring=1`,
//! which `.ci/run` turns on), the FUSE door takes requests through one
//! queue per CPU, served by a thread bound to that CPU; every other suite
//! then runs through it too. Here: the queues are there and serve (their
//! threads are woken by the requests, `/dev/fuse`'s are not), requests with
//! large payloads both ways and with payloads the reply overwrites come out
//! right, and `-o noio_uring` keeps the device alone.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use common::*;

/// Whether the kernel serves FUSE over io_uring; a loud skip otherwise.
fn kernel_offers_uring(test: &str) -> bool {
    let on = fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .map(|s| matches!(s.trim(), "Y" | "1"))
        .unwrap_or(false);
    if !on {
        eprintln!("\n*** SKIPPED {test}: the kernel's fuse.enable_uring is off ***\n");
    }
    on
}

/// Possible CPUs: the kernel makes a queue for each.
fn possible_cpus() -> usize {
    let text = fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let last = text
        .trim()
        .split(',')
        .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok());
    last.max().unwrap() + 1
}

/// The daemon's threads whose name starts with `prefix`, with their
/// voluntary context switches (one per wake-up).
fn threads(pid: u32, prefix: &str) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let name = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let name = name.trim().to_string();
        if !name.starts_with(prefix) {
            continue;
        }
        let status = fs::read_to_string(dir.join("status")).unwrap_or_default();
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        found.push((name, switches));
    }
    found.sort();
    found
}

fn wakeups(pid: u32, prefix: &str) -> u64 {
    threads(pid, prefix).iter().map(|t| t.1).sum()
}

/// Writes, reads back and lists through the mount: large and small
/// payloads in both directions, names in requests, values in replies.
fn round_trips(dir: &Path) {
    // 3 MiB, beyond one request's 1 MiB payload, not a multiple of a page.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 123)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let big = dir.join("big");
    fs::File::create(&big).unwrap().write_all(&data).unwrap();
    // Read back from the daemon: the kernel's pages of the file dropped.
    let mut f = fs::File::open(&big).unwrap();
    // SAFETY: an open fd; advice only.
    let advised = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(advised, 0);
    let mut back = Vec::new();
    f.read_to_end(&mut back).unwrap();
    assert!(back == data, "3 MiB written and read back differ");
    // A write's reply goes where its bytes were: each of many small writes
    // must land whole.
    let small = dir.join("small");
    let mut f = fs::File::create(&small).unwrap();
    for i in 0..200u32 {
        f.write_all(format!("line {i:05}\n").as_bytes()).unwrap();
        f.flush().unwrap();
    }
    drop(f);
    let expect: String = (0..200u32).map(|i| format!("line {i:05}\n")).collect();
    assert_eq!(fs::read_to_string(&small).unwrap(), expect);
    // Names in requests (create, lookup, readdir).
    let sub = dir.join("d");
    fs::create_dir(&sub).unwrap();
    for i in 0..300 {
        fs::write(sub.join(format!("entry-with-a-longer-name-{i:04}")), b"x").unwrap();
    }
    let mut names: Vec<String> = fs::read_dir(&sub)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 300);
    assert_eq!(names[299], "entry-with-a-longer-name-0299");
    // An extended attribute: the name in the request, the value in the
    // reply.
    let out = std::process::Command::new("setfattr")
        .args(["-n", "user.k", "-v", "value-of-k"])
        .arg(&small)
        .output();
    if let Ok(out) = out {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::process::Command::new("getfattr")
            .args(["--only-values", "-n", "user.k"])
            .arg(&small)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got.stdout), "value-of-k");
    }
}

#[test]
fn the_fuse_door_serves_through_per_cpu_io_uring_queues() {
    let test = "the_fuse_door_serves_through_per_cpu_io_uring_queues";
    if !fuse_available(test) || !kernel_offers_uring(test) {
        return;
    }
    let m = BtfuseGuard::new("256M");
    let pid = m.pid();
    let rings = threads(pid, "btfuse-ring-");
    assert_eq!(
        rings.len(),
        possible_cpus(),
        "one queue thread per CPU: {rings:?}"
    );
    let (ring_before, device_before) = (wakeups(pid, "btfuse-ring-"), wakeups(pid, "fuser-"));
    round_trips(m.path());
    let (ring_after, device_after) = (wakeups(pid, "btfuse-ring-"), wakeups(pid, "fuser-"));
    // Hundreds of requests: the queue threads woke for them, the device's
    // threads (forgets and interrupts only) for next to none.
    assert!(
        ring_after - ring_before >= 300,
        "queue threads woke {} times",
        ring_after - ring_before
    );
    assert!(
        device_after - device_before < 50,
        "/dev/fuse threads woke {} times",
        device_after - device_before
    );
}

#[test]
fn noio_uring_keeps_the_device_alone() {
    let test = "noio_uring_keeps_the_device_alone";
    if !fuse_available(test) {
        return;
    }
    let m = BtfuseGuard::with_args("256M", &["-o", "noio_uring"]);
    assert!(threads(m.pid(), "btfuse-ring-").is_empty());
    let before = wakeups(m.pid(), "fuser-");
    round_trips(m.path());
    assert!(wakeups(m.pid(), "fuser-") - before >= 300);
}
