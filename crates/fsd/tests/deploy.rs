//! btfuse where users put filesystems: `mount -t fuse.btfuse` and fstab
//! (through mount(8) and mount.fuse3), each `-o` option's effect, a mount
//! by an unprivileged user through fusermount3 with its fast path, the
//! Prometheus endpoint read by a real parser, a taken metrics port, systemd
//! readiness, the log file, and the small CLI edges.
//!
//! Every mount is removed by a guard (also on panic); fstab entries live in
//! a temporary file given to `mount -T`, never in /etc/fstab.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(30);

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits (bounded) until `dir` is mounted (`true`) or not (`false`).
fn wait_mounted(dir: &Path, mounted: bool) {
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    while mount_fstype(dir).is_some() != mounted {
        assert!(
            Instant::now() < deadline,
            "{} mounted: {}",
            dir.display(),
            !mounted
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A scratch directory whose mounts are unmounted (bounded) on drop: for
/// mounts made by `mount`, `--background` or fusermount3, whose daemon is
/// not our child. The daemon exits on its own once unmounted.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        Scratch {
            dir: fresh_dir(tag),
        }
    }

    fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mnt = self.mnt();
        for _ in 0..8 {
            if mount_fstype(&mnt).is_none() {
                break;
            }
            detach(&mnt);
            thread::sleep(Duration::from_millis(50));
        }
        if mount_fstype(&mnt).is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("WARNING: {} still mounted", mnt.display());
        }
    }
}

/// `btfuse ARGS...` (bounded).
fn btfuse(args: &[&str]) -> Output {
    run_timeout(Command::new(btfuse_bin()).args(args), T)
}

fn mount_bg(mnt: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["mount", mnt.to_str().unwrap(), "--background"];
    args.extend_from_slice(extra);
    btfuse(&args)
}

/// `btfuse` on the PATH mount(8) gives its helpers (it drops the caller's
/// PATH): a symlink in /usr/local/sbin for the test's duration, unless an
/// installed btfuse is there already.
struct OnSystemPath {
    link: Option<PathBuf>,
}

impl OnSystemPath {
    fn new() -> OnSystemPath {
        let link = PathBuf::from("/usr/local/sbin/btfuse");
        if fs::symlink_metadata(&link).is_ok() {
            return OnSystemPath { link: None };
        }
        fs::create_dir_all("/usr/local/sbin").unwrap();
        std::os::unix::fs::symlink(btfuse_bin(), &link).unwrap();
        OnSystemPath { link: Some(link) }
    }
}

impl Drop for OnSystemPath {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            let _ = fs::remove_file(link);
        }
    }
}

#[test]
fn mount_t_fuse_btfuse_and_fstab_mount_and_umount_like_any_filesystem() {
    if !fuse_available("mount_t_fuse_btfuse_and_fstab_mount_and_umount_like_any_filesystem") {
        return;
    }
    if !Path::new("/sbin/mount.fuse3").exists() {
        eprintln!(
            "\n*** SKIPPED mount -t fuse.btfuse: mount.fuse3 missing (apt-get install fuse3) ***\n"
        );
        return;
    }
    let _path = OnSystemPath::new();
    let s = Scratch::new("mount-t");
    let mnt = s.mnt();
    fs::create_dir(&mnt).unwrap();
    let out = run_timeout(
        Command::new("mount")
            .args(["-t", "fuse.btfuse", "btfuse"])
            .arg(&mnt)
            .args(["-o", "size=8M,mode=1777,nofail,_netdev,x-test=1"]),
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mount_fstype(&mnt).as_deref(), Some("fuse.btfuse"));
    assert_eq!(fs::metadata(&mnt).unwrap().mode() & 0o7777, 0o1777);
    fs::write(mnt.join("f"), b"hello").unwrap();
    let out = run_timeout(Command::new("umount").arg(&mnt), T);
    assert!(out.status.success(), "{}", text(&out));
    wait_mounted(&mnt, false);

    // The same through an fstab line (a temporary fstab: never /etc/fstab).
    let fstab = s.dir.join("fstab");
    fs::write(
        &fstab,
        format!(
            "btfuse {} fuse.btfuse size=4M,allow_other,uid=65534 0 0\n",
            mnt.display()
        ),
    )
    .unwrap();
    let out = run_timeout(Command::new("mount").arg("-T").arg(&fstab).arg("-a"), T);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mount_fstype(&mnt).as_deref(), Some("fuse.btfuse"));
    assert_eq!(fs::metadata(&mnt).unwrap().uid(), 65534);
    assert!(!mnt.join("f").exists(), "a new mount starts empty");
    let df = run_timeout(
        Command::new("df").arg("-B1").arg("--output=size").arg(&mnt),
        T,
    );
    let size: u64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(size, 4 << 20);
    let out = run_timeout(Command::new("umount").arg(&mnt), T);
    assert!(out.status.success(), "{}", text(&out));
    wait_mounted(&mnt, false);
}

#[test]
fn each_mount_option_takes_effect() {
    if !fuse_available("each_mount_option_takes_effect") {
        return;
    }
    // ro: writes fail with EROFS, through the kernel and (no fast path on a
    // read-only mount) preloaded.
    let ro = BtfuseGuard::with_args("8M", &["-o", "ro"]);
    let e = fs::write(ro.path().join("f"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    if let Some(lib) = preload_lib() {
        let out = run_timeout(
            Command::new("sh")
                .arg("-c")
                .arg(format!("echo x > {}/f", ro.path().display()))
                .env("LD_PRELOAD", &lib),
            T,
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
            "{}",
            text(&out)
        );
    }
    drop(ro);

    // mode=, uid=, gid= of the root directory; size= as df reports it.
    let m = BtfuseGuard::with_args("1G", &["-o", "mode=1770,uid=65534,gid=100,size=2M"]);
    let meta = fs::metadata(m.path()).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o1770, 65534, 100)
    );
    let big = vec![7u8; 3 << 20];
    let e = fs::write(m.path().join("big"), &big).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    drop(m);

    // Root mounts are allow_other by default; noallow_other shuts other
    // users out, through the kernel and the fast path alike.
    let open = BtfuseGuard::with_args("8M", &["-o", "mode=755"]);
    let ok = run_timeout(command_as(Some(NOBODY), "stat").arg(open.path()), T);
    assert!(ok.status.success(), "{}", text(&ok));
    drop(open);
    let private = BtfuseGuard::with_args("8M", &["-o", "noallow_other,mode=755"]);
    fs::write(private.path().join("f"), b"secret").unwrap();
    let denied = run_timeout(
        command_as(Some(NOBODY), "cat").arg(private.path().join("f")),
        T,
    );
    assert!(!denied.status.success(), "{}", text(&denied));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Permission denied"),
        "{}",
        text(&denied)
    );
    if let Some(lib) = preload_lib() {
        let denied = run_timeout(
            command_as(Some(NOBODY), "cat")
                .arg(private.path().join("f"))
                .env("LD_PRELOAD", &lib),
            T,
        );
        assert!(!denied.status.success(), "preloaded: {}", text(&denied));
        assert_eq!(
            fast_path_requests(private.path(), &run_dir()),
            0,
            "no channel for nobody"
        );
    }
    drop(private);

    // Unknown and malformed options are named.
    let s = Scratch::new("badopt");
    fs::create_dir(s.mnt()).unwrap();
    for (opt, says) in [
        ("bogus", "unknown mount option \"bogus\""),
        ("mode=9", "bad mount option \"mode=9\""),
        ("size=1X", "bad mount option \"size=1X\""),
        ("nr_inodes=many", "bad mount option \"nr_inodes=many\""),
    ] {
        let out = mount_bg(&s.mnt(), &["-o", opt]);
        assert!(!out.status.success(), "{opt}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{opt}: {}",
            text(&out)
        );
        assert!(mount_fstype(&s.mnt()).is_none());
    }
}

/// /dev/fuse open to every user (as udev makes it), restored on drop.
struct DevFuseForAll {
    mode: u32,
}

impl DevFuseForAll {
    fn new() -> DevFuseForAll {
        let mode = fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o7777;
        fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(0o666)).unwrap();
        DevFuseForAll { mode }
    }
}

impl Drop for DevFuseForAll {
    fn drop(&mut self) {
        let _ = fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(self.mode));
    }
}

#[test]
fn a_user_mounts_through_fusermount3_and_only_that_user_gets_the_fast_path() {
    let Some(lib) =
        preload_or_skip("a_user_mounts_through_fusermount3_and_only_that_user_gets_the_fast_path")
    else {
        return;
    };
    if !Path::new("/usr/bin/fusermount3").exists() {
        eprintln!(
            "\n*** SKIPPED non-root mount: fusermount3 missing (apt-get install fuse3) ***\n"
        );
        return;
    }
    let _dev = DevFuseForAll::new();
    let s = Scratch::new("user");
    let (mnt, run) = (s.mnt(), s.dir.join("run"));
    for d in [&mnt, &run] {
        fs::create_dir(d).unwrap();
        chown(d, NOBODY, NOBODY);
    }
    set_mode(&run, 0o700);
    let as_user = |program: &str| {
        let mut c = command_as(Some(NOBODY), program);
        c.env(proto::RUN_DIR_ENV, &run).stdin(Stdio::null());
        c
    };
    let log = run.join("log");
    let out = run_timeout(
        as_user(btfuse_bin().to_str().unwrap()).args([
            "mount",
            mnt.to_str().unwrap(),
            "--background",
            "--log",
            log.to_str().unwrap(),
        ]),
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    let line = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = line
        .lines()
        .find(|l| l.contains(mnt.to_str().unwrap()))
        .unwrap()
        .to_string();
    assert!(
        line.contains("fuse.btfuse") && line.contains("user_id=65534"),
        "{line}"
    );
    assert!(
        !line.contains("allow_other"),
        "fuse.conf does not allow it: {line}"
    );
    let meta = fs::metadata(run.join(".")).unwrap();
    assert_eq!(meta.uid(), NOBODY);
    // The user writes through the kernel and reads through the fast path.
    let w = run_timeout(
        as_user("sh")
            .arg("-c")
            .arg(format!("echo hi > {}/f", mnt.display())),
        T,
    );
    assert!(w.status.success(), "{}", text(&w));
    let before = fast_path_requests(&mnt, &run);
    let r = run_timeout(as_user("cat").arg(mnt.join("f")).env("LD_PRELOAD", &lib), T);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hi\n", "{}", text(&r));
    let after = fast_path_requests(&mnt, &run);
    assert!(after > before, "fast-path requests {before} -> {after}");
    // Root is not the mounting user: refused by the kernel and the daemon.
    let r = run_timeout(
        Command::new("cat")
            .arg(mnt.join("f"))
            .env("LD_PRELOAD", &lib)
            .env(proto::RUN_DIR_ENV, &run),
        T,
    );
    assert!(!r.status.success(), "{}", text(&r));
    assert_eq!(fast_path_requests(&mnt, &run), after);
    // The user unmounts (through fusermount3 -u).
    let u = run_timeout(
        as_user(btfuse_bin().to_str().unwrap()).args(["umount", mnt.to_str().unwrap()]),
        T,
    );
    assert!(u.status.success(), "{}", text(&u));
    wait_mounted(&mnt, false);
    let log = fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("info: serving") && log.contains("for the mounting user only"),
        "{log}"
    );
}

fn fast_path_requests(mnt: &Path, run: &Path) -> u64 {
    let out = run_timeout(
        Command::new(btfuse_bin())
            .args(["stats", "--json"])
            .arg(mnt)
            .env(proto::RUN_DIR_ENV, run),
        T,
    );
    let json = String::from_utf8_lossy(&out.stdout);
    let at = json
        .find("\"fast_path\":{\"requests\":")
        .unwrap_or_else(|| panic!("{}", text(&out)));
    let rest = &json[at + "\"fast_path\":{\"requests\":".len()..];
    rest[..rest.find(',').unwrap()].parse().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn metrics_are_prometheus_histograms_that_a_real_parser_reads() {
    if !fuse_available("metrics_are_prometheus_histograms_that_a_real_parser_reads") {
        return;
    }
    let probe = run_timeout(
        Command::new("python3").args(["-c", "import prometheus_client"]),
        T,
    );
    if !probe.status.success() {
        eprintln!("\n*** SKIPPED metrics parser test: pip install prometheus_client ***\n");
        return;
    }
    let port = free_port();
    let m = BtfuseGuard::with_args("8M", &["--metrics", &format!("127.0.0.1:{port}")]);
    fs::write(m.path().join("f"), b"x").unwrap();
    for _ in 0..20 {
        assert!(fs::metadata(m.path().join("missing")).is_err());
    }
    let script = r#"
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
fams = {f.name: f for f in text_string_to_metric_families(body)}
h = fams["btfuse_request_duration_seconds"]
assert h.type == "histogram", h.type
lookups = [s for s in h.samples if s.labels.get("op") == "lookup" and s.labels.get("door") == "fuse"]
buckets = [s for s in lookups if s.name.endswith("_bucket")]
les = [float(s.labels["le"]) for s in buckets]
assert les == sorted(les) and les[-1] == float("inf"), les
counts = [s.value for s in buckets]
assert counts == sorted(counts), counts
count = [s.value for s in lookups if s.name.endswith("_count")][0]
assert counts[-1] == count >= 20, (counts, count)
req = {s.labels["outcome"]: s.value for s in fams["btfuse_requests"].samples
       if s.labels.get("op") == "lookup" and s.labels.get("door") == "fuse"}
assert req["absent"] >= 20 and req["error"] == 0, req
for name in ["process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds",
             "process_start_time_seconds", "btfuse_build_info"]:
    assert name in fams, name
assert fams["process_resident_memory_bytes"].samples[0].value > 0
print("ok")
"#;
    let out = run_timeout(
        Command::new("python3").args(["-c", script, &format!("http://127.0.0.1:{port}/metrics")]),
        T,
    );
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "{}",
        text(&out)
    );
    // The human report splits the same way: lookups of missing names are
    // "absent", not errors.
    let report = stats(m.path());
    let lookup = report
        .lines()
        .find(|l| l.trim_start().starts_with("lookup"))
        .unwrap()
        .to_string();
    let cols: Vec<&str> = lookup.split_whitespace().collect();
    assert!(
        cols[2].parse::<u64>().unwrap() >= 20 && cols[3] == "0",
        "{report}"
    );
}

#[test]
fn a_taken_metrics_port_fails_the_mount_with_a_message() {
    if !fuse_available("a_taken_metrics_port_fails_the_mount_with_a_message") {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let s = Scratch::new("port");
    fs::create_dir(s.mnt()).unwrap();
    for extra in [
        &["--metrics", &addr][..],
        &["-o", &format!("metrics={addr}")][..],
    ] {
        let out = mount_bg(&s.mnt(), extra);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot serve metrics on {addr}")),
            "{err}"
        );
        assert!(mount_fstype(&s.mnt()).is_none(), "nothing is left mounted");
    }
    // Foreground too.
    let out = btfuse(&["mount", s.mnt().to_str().unwrap(), "--metrics", &addr]);
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn systemd_hears_ready_once_the_mount_is_usable() {
    if !fuse_available("systemd_hears_ready_once_the_mount_is_usable") {
        return;
    }
    let s = Scratch::new("notify");
    fs::create_dir(s.mnt()).unwrap();
    let socket = s.dir.join("notify");
    let listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    listener.set_read_timeout(Some(T)).unwrap();
    let mut child = Command::new(btfuse_bin())
        .arg("mount")
        .arg(s.mnt())
        .env("NOTIFY_SOCKET", &socket)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let got = listener.recv(&mut buf);
    let mounted = mount_fstype(&s.mnt());
    // SAFETY: kill(2) on our own child: SIGTERM unmounts.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_timeout(&mut child, T);
    let n = got.expect("READY=1 within the timeout");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\nMAINPID="), "{msg}");
    assert_eq!(
        mounted.as_deref(),
        Some("fuse.btfuse"),
        "ready means mounted"
    );
    assert!(status.is_some_and(|s| s.success()));
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
}

#[test]
fn the_cli_edges_say_what_they_do() {
    // A missing path is missing, not "not a btfuse mount".
    let out = btfuse(&["umount", "/nonexistent/btfuse-test"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file or directory"),
        "{}",
        text(&out)
    );
    // The help says what happens to a non-empty mountpoint, and what GB means.
    let help = String::from_utf8_lossy(&btfuse(&["mount", "--help"]).stdout).into_owned();
    assert!(help.contains("non-empty one is mounted over"), "{help}");
    assert!(help.contains("KB/MB/GB/TB (powers of 1000)"), "{help}");
    // A bad size names the units.
    let out = btfuse(&["mount", "/tmp", "--size", "1QB"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("powers of 1000"),
        "{}",
        text(&out)
    );
    // The mount.fuse3 form without its mountpoint is a usage error.
    let out = btfuse(&["btfuse", "/tmp", "--size"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("usage: btfuse SOURCE MOUNTPOINT"),
        "{}",
        text(&out)
    );
    // bench.sh --help prints help without building.
    // (cargo is not on this PATH: a build would fail.)
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench.sh");
    let out = run_timeout(
        Command::new(&bench)
            .arg("--help")
            .env("PATH", "/usr/bin:/bin"),
        T,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Builds in release mode"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_non_empty_mountpoint_is_mounted_over_and_comes_back() {
    if !fuse_available("a_non_empty_mountpoint_is_mounted_over_and_comes_back") {
        return;
    }
    let s = Scratch::new("nonempty");
    fs::create_dir(s.mnt()).unwrap();
    fs::write(s.mnt().join("under"), b"u").unwrap();
    let out = mount_bg(
        &s.mnt(),
        &[
            "--size",
            "1GB",
            "--log",
            s.dir.join("log").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!s.mnt().join("under").exists(), "hidden while mounted");
    let df = run_timeout(
        Command::new("df")
            .arg("-B1")
            .arg("--output=size")
            .arg(s.mnt()),
        T,
    );
    let size: u64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        (999_000_000..=1_000_000_000).contains(&size),
        "1GB is 10^9 bytes: {size}"
    );
    let out = btfuse(&["umount", s.mnt().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    wait_mounted(&s.mnt(), false);
    assert_eq!(fs::read(s.mnt().join("under")).unwrap(), b"u");
    // The background daemon's log is kept, timestamped, with levels.
    let deadline = Instant::now() + T;
    loop {
        let log = fs::read_to_string(s.dir.join("log")).unwrap_or_default();
        if log.contains("unmounted, exiting") {
            let first = log.lines().next().unwrap();
            assert!(
                first.len() > 24 && &first[4..5] == "-" && &first[23..24] == "Z",
                "{log}"
            );
            assert!(first.contains(" btfuse: info: serving "), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        thread::sleep(Duration::from_millis(50));
    }
}
