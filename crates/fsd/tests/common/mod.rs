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

mod daemon_stats;
mod preloaded;
#[allow(unused_imports)] // each test binary uses a different subset
pub use daemon_stats::*;
#[allow(unused_imports)]
pub use preloaded::*;

/// The unprivileged identity used for permission runs.
pub const NOBODY: u32 = 65534;
/// Interpreter used by the scripts; must be readable and executable by
/// `NOBODY` (pyenv shims under /root are not).
pub const PYTHON: &str = "/usr/bin/python3";

/// How long a btfuse mount may take to appear (and reach the registry):
/// generous, for a machine busy with other builds, tests and daemons.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

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
        // The daemon creates its fast-path socket once the mount (and so its
        // device number) exists: wait for it, so preloaded clients started
        // right away take the fast path.
        let sock = socket_of(&g.dir);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "no fast-path socket {}; log:\n{}",
                sock.display(),
                g.log_text()
            );
            thread::sleep(Duration::from_millis(10));
        }
        // Then for the registry to name it (written right after the socket).
        while !registry_serves(&g.dir) {
            assert!(
                Instant::now() < deadline,
                "{} not in the mount registry; log:\n{}",
                g.dir.display(),
                g.log_text()
            );
            thread::sleep(Duration::from_millis(10));
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

// ---- helpers shared by the fast-path suites ---------------------------------

/// A numeric environment knob (test durations, counts, seeds).
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The daemon socket of the btfuse mount at `mnt` (discovery rule of
/// `proto::socket_name`).
pub fn socket_of(mnt: &Path) -> PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = mnt.to_str().unwrap();
    let devno = info
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 4 && f[4] == want).then(|| f[2].to_string())
        })
        .next_back()
        .expect("mount in mountinfo");
    let (maj, min) = devno.split_once(':').unwrap();
    let mut name = [0u8; 32];
    let n = proto::socket_name(maj.parse().unwrap(), min.parse().unwrap(), &mut name);
    run_dir().join(std::str::from_utf8(&name[..n]).unwrap())
}

/// `scripts/NAME` (a C program) compiled with `cc` once per test binary
/// (`cache` holds the result); `None`, with a loud skip for `test`, when
/// there is no C compiler. A program that does not compile fails the test:
/// a broken test program must never pass as a skip.
#[allow(dead_code)]
pub fn compiled_c(
    cache: &std::sync::OnceLock<Option<PathBuf>>,
    name: &str,
    test: &str,
) -> Option<PathBuf> {
    let built = cache.get_or_init(|| {
        let stem = name.trim_end_matches(".c");
        let out = std::env::temp_dir().join(format!("btfuse-{stem}-{}", std::process::id()));
        let status = Command::new("cc")
            .args(["-O1", "-Wall", "-pthread", "-o"])
            .arg(&out)
            .arg(scripts_dir().join(name))
            .status()
            .ok()?;
        assert!(status.success(), "scripts/{name} does not compile");
        Some(out)
    });
    if built.is_none() {
        eprintln!("\n*** SKIPPED {test}: no C compiler (cc) ***\n");
    }
    built.clone()
}

/// The fast-path run directory (sockets, mount registry).
pub fn run_dir() -> PathBuf {
    PathBuf::from(std::env::var(proto::RUN_DIR_ENV).unwrap_or_else(|_| proto::RUN_DIR.into()))
}

/// Whether a preloaded process started now finds the mount at `mnt`
/// (which mountinfo already shows): the registry names it, or there is no
/// registry, and the process reads mountinfo itself. (Daemons of older
/// versions on a busy machine remove the registry when it holds more than
/// 8 mounts.)
pub fn registry_serves(mnt: &Path) -> bool {
    match fs::read(run_dir().join(proto::mountinfo::REGISTRY_FILE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        _ => registry_lists(mnt),
    }
}

/// Whether the daemons' mount registry names a mount at `mnt`.
pub fn registry_lists(mnt: &Path) -> bool {
    let reg = fs::read(run_dir().join(proto::mountinfo::REGISTRY_FILE)).unwrap_or_default();
    let want = format!(" {} ", mnt.display());
    String::from_utf8_lossy(&reg)
        .lines()
        .any(|l| l.contains(&want))
}

/// The preload library, or `None` (with a loud skip) when it or FUSE is
/// missing.
pub fn preload_or_skip(test: &str) -> Option<String> {
    if !fuse_available(test) {
        return None;
    }
    match preload_lib() {
        Some(lib) => Some(lib.display().to_string()),
        None => {
            eprintln!("\n*** SKIPPED {test}: libbtfuse.so not built ***\n");
            None
        }
    }
}

/// `cmd` with `lib` preloaded, or with no library at all (an inherited
/// `LD_PRELOAD` removed).
pub fn preload<'a>(cmd: &'a mut Command, lib: Option<&str>) -> &'a mut Command {
    match lib {
        Some(lib) => cmd.env("LD_PRELOAD", lib),
        None => cmd.env_remove("LD_PRELOAD"),
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let st = s.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
            !matches!(st, Some('Z') | Some('X'))
        })
        .unwrap_or(false)
}

/// Whether any thread of process `pid` may still run: its leader lives,
/// or another thread has not finished exiting (a killed process's leader
/// turns zombie while its other threads still exit, and what a thread's
/// exit does, a robust futex marked `OWNER_DIED`, is done only then).
#[allow(dead_code)]
pub fn any_thread_alive(pid: u32) -> bool {
    process_alive(pid)
        || fs::read_dir(format!("/proc/{pid}/task"))
            .map(|tasks| {
                tasks
                    .flatten()
                    .any(|t| t.file_name().to_str() != Some(pid.to_string().as_str()))
            })
            .unwrap_or(false)
}

/// A child process, SIGKILLed and reaped on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = wait_timeout(&mut self.0, Duration::from_secs(5));
    }
}

/// Kernel-door client: write, read back, list until `stop`; counts rounds.
pub fn fuse_client(
    dir: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ops: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        fs::create_dir_all(&dir).unwrap();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let f = dir.join(format!("f{}", i % 16));
            let data = format!("fuse {i}\n").repeat(1 + (i % 50) as usize);
            fs::write(&f, &data).unwrap();
            assert_eq!(fs::read_to_string(&f).unwrap(), data);
            assert!(fs::read_dir(&dir).unwrap().count() >= 1);
            i += 1;
            ops.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// splitmix64: a seedable, reproducible PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Values that tend to break bounds checks.
    pub fn interesting_u32(&mut self) -> u32 {
        match self.below(6) {
            0 => 0,
            1 => u32::MAX,
            2 => 1 << self.below(32),
            3 => (1u32 << self.below(32)).wrapping_sub(1),
            4 => self.below(70_000) as u32,
            _ => self.next() as u32,
        }
    }
}

/// Whether strace is installed (a loud skip otherwise; .ci/run installs it).
pub fn have_strace(test: &str) -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("\n*** SKIPPED {test}: strace not installed (.ci/run installs it) ***\n");
    }
    ok
}

/// Syscalls of `argv` (and its children) under `strace -f -y` that act on
/// the mount `mnt`: a path argument on it, or an fd on it (`-y` prints the
/// file behind each fd). `lib` is preloaded when given; `env` is added.
/// The program's exit status is not checked (the caller runs it again for
/// its output).
pub fn mount_syscalls(
    lib: Option<&str>,
    mnt: &Path,
    cwd: &Path,
    argv: &[&str],
    env: &[(&str, &str)],
) -> Vec<String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let log = mnt.parent().unwrap().join(format!(
        "strace-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-y", "-o"])
        .arg(&log)
        .args(["-e", "trace=%file,read,write,lseek,getdents64"])
        .args(argv)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .env_remove("LD_PRELOAD");
    if let Some(l) = lib {
        cmd.env("LD_PRELOAD", l);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let _ = run_timeout(&mut cmd, Duration::from_secs(60));
    let text = fs::read_to_string(&log).expect("strace log");
    let _ = fs::remove_file(&log);
    let m = mnt.display().to_string();
    // A path argument ("MNT...") or an fd on the mount (<MNT...>); data
    // that merely contains the path (a write of a file name) is neither.
    let (quoted, decorated) = (format!("\"{m}"), format!("<{m}"));
    // The mount's ".." is the directory it is mounted on: not on the mount.
    let parent = format!("\"{m}/..\"");
    text.lines()
        .map(strip_cwd)
        // getcwd is answered from the kernel's dentry cache, not by the mount.
        .filter(|l| !l.contains("execve(") && !l.contains("getcwd(") && !l.contains(&parent))
        .filter(|l| l.contains(&quoted) || l.contains(&decorated))
        .collect()
}

/// `-y` decorates AT_FDCWD with the cwd (on the mount here): a call with a
/// path outside the mount relative to nothing is not a call on the mount.
fn strip_cwd(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find("AT_FDCWD<") {
        out.push_str(&rest[..i + "AT_FDCWD".len()]);
        let after = &rest[i + "AT_FDCWD<".len()..];
        rest = after.find('>').map_or("", |j| &after[j + 1..]);
    }
    out.push_str(rest);
    out
}
