//! Shared support for the fsd integration tests: scratch tmpfs and btfuse
//! mounts that always go away (even on panic), bounded waits, and a runner
//! that kills a child process group on timeout.
//!
//! Every wait here has a timeout; no helper may hang a test or leave a mount
//! behind.
#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The unprivileged identity used for permission runs.
pub const NOBODY: u32 = 65534;
/// Interpreter used by the scripts; must be readable and executable by
/// `NOBODY` (pyenv shims under /root are not).
pub const PYTHON: &str = "/usr/bin/python3";

/// How long a btfuse mount may take to appear.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// `true` when the FUSE tests can run here; otherwise prints a loud skip
/// notice naming the test and returns `false` (callers `return`).
pub fn fuse_available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let why = if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse is absent")
    } else if euid != 0 {
        Some("not running as root (mounting needs CAP_SYS_ADMIN)")
    } else {
        None
    };
    match why {
        Some(w) => {
            eprintln!("\n*** SKIPPED {test}: {w} ***\n");
            false
        }
        None => true,
    }
}

/// `true` when tmpfs can be mounted (root); loud skip otherwise.
pub fn root_available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("\n*** SKIPPED {test}: not running as root ***\n");
        return false;
    }
    true
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory `/tmp/btfuse-test-<tag>-<pid>-<n>` (mode 0755 so
/// that an unprivileged uid may traverse it). Removed by the guards.
pub fn fresh_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let p = PathBuf::from(format!(
        "/tmp/btfuse-test-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    fs::create_dir(&p).expect("create scratch dir");
    set_mode(&p, 0o755);
    p
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The fstype of the mount at exactly `dir`, from /proc/self/mountinfo.
pub fn mount_fstype(dir: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = dir.to_str()?;
    let mut found = None;
    for line in info.lines() {
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 5 || unescape_mountinfo(fields[4]) != want {
            continue;
        }
        if let Some(sep) = fields.iter().position(|f| *f == "-") {
            // the last (topmost) mount on this path wins
            found = fields.get(sep + 1).map(|s| s.to_string());
        }
    }
    found
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Lazy unmount (MNT_DETACH); errors are ignored (not mounted, already gone).
pub fn detach(dir: &Path) {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("path with NUL");
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    unsafe {
        libc::umount2(c.as_ptr(), libc::MNT_DETACH);
    }
}

/// Unmounts every mount stacked on `dir` (bounded), then removes the dir.
fn teardown_dir(dir: &Path) {
    for _ in 0..8 {
        if mount_fstype(dir).is_none() {
            break;
        }
        detach(dir);
    }
    if mount_fstype(dir).is_some() {
        eprintln!("WARNING: {} is still mounted after teardown", dir.display());
        return; // never rm -rf into a live mount
    }
    let _ = fs::remove_dir(dir);
}

/// A tmpfs mounted on a fresh temp dir; unmounted (lazily) on drop.
pub struct TmpfsGuard {
    pub dir: PathBuf,
}

impl TmpfsGuard {
    /// `size` as tmpfs understands it: bytes, or with k/m/g suffix.
    pub fn new(size: &str) -> TmpfsGuard {
        let dir = fresh_dir("tmpfs");
        let guard = TmpfsGuard { dir };
        let out = run_timeout(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&guard.dir),
            Duration::from_secs(10),
        );
        assert!(
            out.status.success(),
            "mount tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        guard
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        teardown_dir(&self.dir);
    }
}

/// Path of the btfuse binary under test.
pub fn btfuse_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_btfuse"))
}

/// `libbtfuse.so` next to the binary (target/<profile>/), if it was built.
pub fn preload_lib() -> Option<PathBuf> {
    let p = btfuse_bin().parent()?.join("libbtfuse.so");
    p.exists().then_some(p)
}

/// A `btfuse mount DIR --size S` daemon in the foreground, as our child.
/// Drop: SIGTERM (which must unmount cleanly), then MNT_DETACH and SIGKILL
/// as a fallback, each wait bounded.
pub struct BtfuseGuard {
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl BtfuseGuard {
    pub fn new(size: &str) -> BtfuseGuard {
        Self::with_args(size, &[])
    }

    pub fn with_args(size: &str, extra: &[&str]) -> BtfuseGuard {
        let dir = fresh_dir("btfuse");
        let log = PathBuf::from(format!("{}.log", dir.display()));
        let logf = fs::File::create(&log).expect("create daemon log");
        let child = Command::new(btfuse_bin())
            .arg("mount")
            .arg(&dir)
            .args(["--size", size])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup log"))
            .stderr(logf)
            .spawn()
            .expect("spawn btfuse");
        let mut g = BtfuseGuard {
            dir,
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if let Some(t) = mount_fstype(&g.dir) {
                if t.starts_with("fuse") {
                    break;
                }
            }
            if let Some(st) = g.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "btfuse exited before mounting ({st}); log:\n{}",
                    g.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "btfuse did not mount within {MOUNT_TIMEOUT:?}; log:\n{}",
                    g.log_text()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        g
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident set size of the daemon in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let s = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM and wait (bounded) for exit. Returns the exit status (None on
    /// timeout) and whether the mount was gone afterwards.
    pub fn terminate(&mut self, timeout: Duration) -> (Option<ExitStatus>, bool) {
        let Some(mut child) = self.child.take() else {
            return (None, mount_fstype(&self.dir).is_none());
        };
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let st = wait_timeout(&mut child, timeout);
        let unmounted = mount_fstype(&self.dir).is_none();
        if st.is_none() {
            let _ = child.kill();
            detach(&self.dir);
            let _ = wait_timeout(&mut child, Duration::from_secs(5));
        }
        (st, unmounted)
    }
}

impl Drop for BtfuseGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
                eprintln!(
                    "btfuse pid {} ignored SIGTERM for 5 s; detaching + SIGKILL",
                    child.id()
                );
                detach(&self.dir);
                let _ = child.kill();
                let _ = wait_timeout(&mut child, Duration::from_secs(5));
            }
        }
        if thread::panicking() {
            eprintln!(
                "--- btfuse daemon log ({}) ---\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        teardown_dir(&self.dir);
        let _ = fs::remove_file(&self.log);
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` in its own process group, collecting stdout/stderr; on timeout
/// the whole group gets SIGKILL and the test panics with what was printed.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let st = wait_timeout(&mut child, timeout);
    let status = match st {
        Some(s) => s,
        None => {
            // SAFETY: kill(2) on the process group we created for this child.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = wait_timeout(&mut child, Duration::from_secs(5));
            let stdout = t1.join().unwrap_or_default();
            let stderr = t2.join().unwrap_or_default();
            panic!(
                "TIMEOUT after {timeout:?}: {desc}\n--- stdout (tail) ---\n{}\n--- stderr ---\n{}",
                tail(&String::from_utf8_lossy(&stdout), 40),
                String::from_utf8_lossy(&stderr)
            );
        }
    };
    Output {
        status,
        stdout: t1.join().unwrap_or_default(),
        stderr: t2.join().unwrap_or_default(),
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// Directory of the helper scripts in the source tree.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scripts")
}

/// A world-readable copy of a helper script (for runs as `NOBODY`, whose
/// access to the source checkout is not guaranteed). Lives in its own fresh dir.
pub struct ScriptCopy {
    dir: PathBuf,
    pub path: PathBuf,
}

impl ScriptCopy {
    pub fn new(name: &str) -> ScriptCopy {
        let dir = fresh_dir("script");
        let path = dir.join(name);
        fs::copy(scripts_dir().join(name), &path).expect("copy script");
        set_mode(&path, 0o755);
        ScriptCopy { dir, path }
    }
}

impl Drop for ScriptCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A Command that runs `program` as `uid` (gid = uid, no supplementary
/// groups) via setpriv, or directly when `uid` is None.
pub fn command_as(uid: Option<u32>, program: &str) -> Command {
    match uid {
        None => Command::new(program),
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={u}"),
                &format!("--regid={u}"),
                "--clear-groups",
                program,
            ]);
            c
        }
    }
}

pub fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
}

/// First line where `a` and `b` differ: (1-based line number, a's line, b's line).
pub fn first_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    for i in 0..la.len().max(lb.len()) {
        let x = la.get(i).copied().unwrap_or("<end of output>");
        let y = lb.get(i).copied().unwrap_or("<end of output>");
        if x != y {
            return Some((i + 1, x.to_string(), y.to_string()));
        }
    }
    None
}

/// Every differing line (up to `max`), for a fuller failure report.
pub fn all_differences(a: &str, b: &str, max: usize) -> Vec<(usize, String, String)> {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    let mut out = Vec::new();
    for i in 0..la.len().max(lb.len()) {
        let x = la.get(i).copied().unwrap_or("<end of output>");
        let y = lb.get(i).copied().unwrap_or("<end of output>");
        if x != y {
            out.push((i + 1, x.to_string(), y.to_string()));
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

/// Asserts that two outputs are identical, reporting the first difference
/// (and a few more), and saving both outputs under /tmp for inspection.
pub fn assert_same_output(
    what: &str,
    expected_name: &str,
    expected: &str,
    actual_name: &str,
    actual: &str,
) {
    if expected == actual {
        return;
    }
    let tag = what.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let pa = format!("/tmp/btfuse-diff-{tag}-{expected_name}.txt");
    let pb = format!("/tmp/btfuse-diff-{tag}-{actual_name}.txt");
    let _ = fs::write(&pa, expected);
    let _ = fs::write(&pb, actual);
    let diffs = all_differences(expected, actual, 15);
    let mut msg = format!(
        "{what}: outputs differ ({} shown; full outputs in {pa} and {pb})\n",
        diffs.len()
    );
    for (i, (n, x, y)) in diffs.iter().enumerate() {
        if i == 0 {
            msg.push_str(&format!("FIRST DIFFERENCE at line {n}:\n"));
        } else {
            msg.push_str(&format!("line {n}:\n"));
        }
        msg.push_str(&format!(
            "  {expected_name:>8}: {x}\n  {actual_name:>8}: {y}\n"
        ));
    }
    panic!("{msg}");
}
