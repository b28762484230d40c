//! The preload fast path: it is really taken (no syscall on the mount's
//! paths), it changes nothing outside btfuse mounts, and the two doors stay
//! coherent (a change made through one is seen through the other at once).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const RUN: Duration = Duration::from_secs(30);

/// Runs `argv` (preloaded when `lib` is given) and returns stdout; panics on
/// failure.
fn run(lib: Option<&str>, argv: &[&str]) -> String {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).env("LC_ALL", "C");
    if let Some(lib) = lib {
        cmd.env("LD_PRELOAD", lib);
    }
    let out = run_timeout(&mut cmd, RUN);
    assert!(
        out.status.success(),
        "{argv:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Syscalls of a preloaded `argv` (followed into children) that name a
/// path under `mnt` or read a directory, as strace prints them.
fn kernel_calls_on(lib: &str, mnt: &Path, argv: &[&str]) -> Vec<String> {
    let log = mnt
        .parent()
        .unwrap()
        .join(format!("strace-{}.log", std::process::id()));
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o"])
        .arg(&log)
        .args(["-e", "trace=%file,getdents64,read,pread64"])
        .args(argv)
        .env("LD_PRELOAD", lib)
        .env("LC_ALL", "C");
    let out = run_timeout(&mut cmd, RUN);
    assert!(
        out.status.success(),
        "strace {argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).expect("strace log");
    let _ = std::fs::remove_file(&log);
    let m = mnt.display().to_string();
    // The mount's ".." is the directory it is mounted on: not on the mount.
    let parent = format!("\"{m}/..\"");
    text.lines()
        // The command line itself names the mount; that is not an access.
        .filter(|l| !l.contains("execve(") && !l.contains(&parent))
        .filter(|l| l.contains(&m) || l.contains("getdents64("))
        .map(str::to_owned)
        .collect()
}

#[test]
fn preloaded_programs_make_no_syscall_on_the_mount() {
    let test = "preloaded_programs_make_no_syscall_on_the_mount";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    if !have_strace(test) {
        return;
    }
    let bt = BtfuseGuard::new("64M");
    let m = bt.path();
    std::fs::create_dir_all(m.join("d/e")).unwrap();
    for i in 0..20 {
        std::fs::write(m.join(format!("d/e/f{i}")), vec![b'x'; i * 100]).unwrap();
    }
    std::fs::write(m.join("file"), b"through shared memory\n").unwrap();
    let file = m.join("file").display().to_string();
    let dir = m.display().to_string();
    let edited = m.join("d/e/f1").display().to_string();
    for argv in [
        vec!["cat", file.as_str()],
        vec!["stat", file.as_str()],
        vec!["find", dir.as_str(), "-size", "+0"],
        vec!["ls", "-laR", dir.as_str()],
        // A temporary file beside the target, renamed over it. (`cp`
        // probes its target with an `O_PATH` open, which stays the
        // kernel's, and python reads its own directories: `compat.rs`
        // checks their copies.)
        vec!["sed", "-i", "s/x/y/g", edited.as_str()],
    ] {
        let calls = kernel_calls_on(&lib, m, &argv);
        assert!(
            calls.is_empty(),
            "{argv:?} entered the kernel for the mount:\n{}",
            calls.join("\n")
        );
    }
    // And the answers are the mount's.
    assert_eq!(run(Some(&lib), &["cat", &file]), "through shared memory\n");
    assert_eq!(std::fs::read(&edited).unwrap(), vec![b'y'; 100]);
    let found = run(Some(&lib), &["find", &dir, "-type", "f", "-size", "+0"]);
    assert_eq!(found.lines().count(), 20, "{found}");
}

/// Files a preloaded `argv` opens (followed into children), as strace
/// prints them, with `env` added.
fn opened_by(lib: &str, env: &[(&str, &Path)], argv: &[&str]) -> String {
    let log = std::env::temp_dir().join(format!("btfuse-opens-{}.log", std::process::id()));
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=openat,open", "-o"])
        .arg(&log)
        .args(argv)
        .env("LD_PRELOAD", lib);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_timeout(&mut cmd, RUN);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).expect("strace log");
    let _ = std::fs::remove_file(&log);
    text
}

/// A run directory of the test's own (for `BTFUSE_RUN_DIR`) holding
/// `registry` as its mount registry.
fn alt_run_dir(registry: &str) -> std::path::PathBuf {
    let alt = fresh_dir("rundir");
    std::fs::create_dir_all(&alt).unwrap();
    std::fs::write(alt.join(proto::mountinfo::REGISTRY_FILE), registry).unwrap();
    alt
}

/// The daemons' mount registry as it stands.
fn registry_text() -> String {
    std::fs::read_to_string(run_dir().join(proto::mountinfo::REGISTRY_FILE)).unwrap()
}

/// Discovery reads the daemons' registry, not `/proc/self/mountinfo`
/// (whose formatting costs every preloaded process ~100 µs); a registry
/// written in another view (mount namespace, root) is not trusted: the
/// library reads mountinfo instead and still finds the mount.
#[test]
fn discovery_reads_the_registry_of_its_own_view_only() {
    let test = "discovery_reads_the_registry_of_its_own_view_only";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    if !have_strace(test) {
        return;
    }
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    std::fs::write(m.join("f"), b"found\n").unwrap();
    let file = m.join("f").display().to_string();
    let registry = run_dir().join(proto::mountinfo::REGISTRY_FILE);
    let opens = opened_by(&lib, &[], &["cat", &file]);
    assert!(opens.contains(&registry.display().to_string()), "{opens}");
    assert!(!opens.contains("mountinfo"), "{opens}");
    assert!(kernel_calls_on(&lib, m, &["cat", &file]).is_empty());

    // In a mount namespace of its own, the process has another view.
    if Command::new("unshare").arg("--help").output().is_ok() {
        let opens = opened_by(&lib, &[], &["unshare", "-m", "cat", &file]);
        assert!(opens.contains("/proc/self/mountinfo"), "{opens}");
    }

    // Another run directory holding the same registry, but for another
    // root mount, and a link to the daemon's socket.
    let text = registry_text();
    let (head, lines) = text.split_once('\n').unwrap();
    let mut words: Vec<String> = head.split(' ').map(str::to_owned).collect();
    let (kind, id) = words[1].split_at(1);
    words[1] = format!("{kind}{}", id.parse::<u64>().unwrap() ^ 1);
    let alt = alt_run_dir(&format!("{}\n{lines}", words.join(" ")));
    let sock = socket_of(m);
    std::os::unix::fs::symlink(&sock, alt.join(sock.file_name().unwrap())).unwrap();
    let opens = opened_by(&lib, &[("BTFUSE_RUN_DIR", &alt)], &["cat", &file]);
    assert!(opens.contains("/proc/self/mountinfo"), "{opens}");
    let before = stat_value(&stats(m), "fast-path requests");
    let mut cmd = Command::new("cat");
    cmd.arg(&file)
        .env("LD_PRELOAD", &lib)
        .env("BTFUSE_RUN_DIR", &alt);
    assert_eq!(run_timeout(&mut cmd, RUN).stdout, b"found\n");
    assert!(
        stat_value(&stats(m), "fast-path requests") > before,
        "fast path not taken"
    );
    std::fs::remove_dir_all(&alt).unwrap();
}

/// A daemon that never takes a new client's channel (here: a socket that
/// is listened on but never accepted from) costs the client's first call a
/// bounded wait, after which the call runs through the kernel, once.
#[test]
fn a_daemon_that_never_answers_sends_the_first_call_to_the_kernel() {
    let test = "a_daemon_that_never_answers_sends_the_first_call_to_the_kernel";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    let alt = alt_run_dir(&registry_text());
    let sock = alt.join(socket_of(m).file_name().unwrap());
    let _deaf = deaf_listener(&sock);
    let t = std::time::Instant::now();
    let mut cmd = Command::new("mkdir");
    cmd.arg(m.join("made-once"))
        .env("LD_PRELOAD", &lib)
        .env("BTFUSE_RUN_DIR", &alt);
    let out = run_timeout(&mut cmd, RUN);
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "mkdir ran twice or failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(m.join("made-once").is_dir());
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(10)).contains(&took),
        "{took:?}"
    );
    std::fs::remove_dir_all(&alt).unwrap();
}

/// A `SOCK_SEQPACKET` socket listening at `path` that never accepts.
fn deaf_listener(path: &Path) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: a new fd owned here.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path.as_os_str().as_bytes()) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: a valid address of `len` bytes on our socket.
    assert_eq!(unsafe { libc::bind(fd, (&raw const addr).cast(), len) }, 0);
    // SAFETY: our bound socket.
    assert_eq!(unsafe { libc::listen(fd, 8) }, 0);
    owned
}

/// A stale registry line (a dead daemon's mount, its device number since
/// reused by another btfuse mount) must not route paths to the wrong
/// store: the daemon refuses a hello naming another mountpoint, and the
/// call goes to the kernel.
#[test]
fn a_stale_registry_line_never_routes_to_another_mount() {
    let test = "a_stale_registry_line_never_routes_to_another_mount";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let tmp = TmpfsGuard::new("16M");
    std::fs::write(bt.path().join("f"), b"btfuse's file\n").unwrap();
    std::fs::write(tmp.path().join("f"), b"tmpfs's file\n").unwrap();
    // The registry as it would read had the tmpfs directory been a btfuse
    // mount with this daemon's device number.
    let text = registry_text();
    let (head, lines) = text.split_once('\n').unwrap();
    let ours = format!(" {} ", bt.path().display());
    let line = lines.lines().find(|l| l.contains(&ours)).expect("our line");
    let stale = line.replacen(&ours, &format!(" {} ", tmp.path().display()), 1);
    let alt = alt_run_dir(&format!("{head}\n{stale}\n"));
    let sock = socket_of(bt.path());
    std::os::unix::fs::symlink(&sock, alt.join(sock.file_name().unwrap())).unwrap();
    let mut cmd = Command::new("cat");
    cmd.arg(tmp.path().join("f"))
        .env("LD_PRELOAD", &lib)
        .env("BTFUSE_RUN_DIR", &alt);
    assert_eq!(
        String::from_utf8_lossy(&run_timeout(&mut cmd, RUN).stdout),
        "tmpfs's file\n"
    );
    std::fs::remove_dir_all(&alt).unwrap();
}

/// The registry follows the mount table: a mount leaves it with its daemon.
#[test]
fn the_registry_follows_mounts_and_unmounts() {
    if !fuse_available("the_registry_follows_mounts_and_unmounts") {
        return;
    }
    let mut a = BtfuseGuard::new("16M");
    let b = BtfuseGuard::new("16M");
    assert!(registry_lists(a.path()) && registry_lists(b.path()));
    let (status, gone) = a.terminate(Duration::from_secs(10));
    assert!(status.is_some() && gone, "daemon did not exit cleanly");
    assert!(
        !registry_lists(a.path()),
        "an unmounted mount stays in the registry"
    );
    assert!(registry_lists(b.path()));
}

#[test]
fn outside_btfuse_mounts_the_library_changes_nothing() {
    let test = "outside_btfuse_mounts_the_library_changes_nothing";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    // A btfuse mount exists, but every path used here is elsewhere.
    let _bt = BtfuseGuard::new("16M");
    let tmp = TmpfsGuard::new("16M");
    let t = tmp.path();
    std::fs::create_dir_all(t.join("a/b")).unwrap();
    std::fs::write(t.join("a/b/f"), b"plain tmpfs\n").unwrap();
    std::os::unix::fs::symlink("b/f", t.join("a/l")).unwrap();
    let td = t.display().to_string();
    let script = format!(
        "cd {td} && cat a/b/f a/l && ls -la --time-style=+ a a/b | sed 's/  */ /g' && \
         stat -c '%s %h %F' a/b/f a && find . | sort && du -a --apparent-size . | sort -k2 && \
         cp -a a c && mv c/b/f c/b/g && rm -r c/b && ls c && rm -r c && \
         echo data > new && cat new && rm new"
    );
    let plain = run(None, &["sh", "-c", &script]);
    let preloaded = run(Some(&lib), &["sh", "-c", &script]);
    assert_eq!(plain, preloaded);
    let py = "import os; print(sorted(os.listdir('.'))); print(open('a/b/f').read())";
    let py_plain = run(
        None,
        &["sh", "-c", &format!("cd {td} && {PYTHON} -c \"{py}\"")],
    );
    let py_preloaded = run(
        Some(&lib),
        &["sh", "-c", &format!("cd {td} && {PYTHON} -c \"{py}\"")],
    );
    assert_eq!(py_plain, py_preloaded);
}

/// Writes through the fast path (python under the preload library).
fn fast_write(lib: &str, path: &Path, text: &str) {
    let code = format!(
        "open({:?}, 'w').write({text:?})",
        path.display().to_string()
    );
    run(Some(lib), &[PYTHON, "-c", &code]);
}

#[test]
fn fast_path_changes_are_seen_through_the_kernel_at_once() {
    let test = "fast_path_changes_are_seen_through_the_kernel_at_once";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    let f = m.join("f");
    std::fs::write(&f, b"old").unwrap();
    // Prime the kernel's attribute and entry caches.
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 3);
    assert_eq!(std::fs::read(&f).unwrap(), b"old");

    fast_write(&lib, &f, "new and longer");
    assert_eq!(
        std::fs::metadata(&f).unwrap().len(),
        14,
        "stale size through FUSE"
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "new and longer");

    let code = format!(
        "import os; os.rename({0:?} + '/f', {0:?} + '/g')",
        m.display().to_string()
    );
    run(Some(&lib), &[PYTHON, "-c", &code]);
    assert!(!f.exists(), "the kernel still sees the old name");
    assert_eq!(
        std::fs::read_to_string(m.join("g")).unwrap(),
        "new and longer"
    );

    let code = format!(
        "import os; os.unlink({:?})",
        m.join("g").display().to_string()
    );
    run(Some(&lib), &[PYTHON, "-c", &code]);
    assert!(
        !m.join("g").exists(),
        "the kernel still sees an unlinked file"
    );

    let code = format!("import os; os.chmod({:?}, 0o600)", m.display().to_string());
    run(Some(&lib), &[PYTHON, "-c", &code]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(m).unwrap().permissions().mode() & 0o7777,
        0o600
    );
}

#[test]
fn kernel_changes_are_seen_through_the_fast_path_at_once() {
    let test = "kernel_changes_are_seen_through_the_fast_path_at_once";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    let f = m.join("f").display().to_string();
    for round in 0..5 {
        let text = format!("round {round}\n");
        std::fs::write(m.join("f"), &text).unwrap();
        assert_eq!(run(Some(&lib), &["cat", &f]), text);
        assert_eq!(
            run(Some(&lib), &["stat", "-c", "%s", &f]).trim(),
            text.len().to_string()
        );
    }
    std::fs::remove_file(m.join("f")).unwrap();
    let mut cmd = Command::new("cat");
    cmd.arg(&f).env("LD_PRELOAD", &lib);
    assert!(
        !run_timeout(&mut cmd, RUN).status.success(),
        "read a deleted file"
    );
}

#[test]
fn redirections_share_offsets_like_the_kernel() {
    let test = "redirections_share_offsets_like_the_kernel";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let tmp = TmpfsGuard::new("16M");
    // A shell reads part of a file through a dup'd fd, a child continues
    // from the shared offset; appends through several fds interleave.
    let script = "printf 'one\\ntwo\\nthree\\n' > f; exec 3<f; read -r a <&3; echo \"read:$a\"; \
                  cat <&3; exec 4>>f; echo four >&4; (echo five; echo six >&4) >&4; \
                  dd if=f bs=3 skip=1 count=2 status=none; echo; cat f";
    let on = |dir: &Path, preload: Option<&str>| {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(script).current_dir(dir);
        if let Some(lib) = preload {
            cmd.env("LD_PRELOAD", lib);
        }
        let out = run_timeout(&mut cmd, RUN);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let reference = on(tmp.path(), None);
    assert!(
        reference.starts_with("read:one\ntwo\nthree\n"),
        "{reference}"
    );
    assert_eq!(on(bt.path(), Some(&lib)), reference);
}

/// Runs the program `argv(dir)` in a fresh directory `dir` prepared by
/// `prepare(dir)`: on tmpfs without the library, then on a btfuse mount
/// with `lib` preloaded; the two outputs must be the same. Returns it.
fn same_as_tmpfs(lib: &str, prepare: impl Fn(&Path), argv: impl Fn(&str) -> Vec<String>) -> String {
    let bt = BtfuseGuard::new("16M");
    let tmp = TmpfsGuard::new("16M");
    let on = |dir: &Path, preload: Option<&str>| {
        prepare(dir);
        let argv = argv(dir.to_str().unwrap());
        run(
            preload,
            &argv.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let reference = on(tmp.path(), None);
    assert_eq!(on(bt.path(), Some(lib)), reference);
    reference
}

/// Closes and duplications made through `syscall(3)` (how programs built
/// against a glibc without a `close_range` wrapper call it) on fast-path
/// fds, then the same numbers reused by kernel files: what is read from
/// each number must be what tmpfs gives. (A `syscall(SYS_close)` once went
/// to the kernel alone, and a kernel file opened next at that number was
/// read as the fast-path file.)
const SYSCALL_FDS: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_close, SYS_dup, SYS_dup2, SYS_close_range = 3, 32, 33, 436
here, outside = sys.argv[1] + "/a", sys.argv[2]
def read(fd):
    os.lseek(fd, 0, 0)
    return os.read(fd, 100)
fd = os.open(here, os.O_RDONLY)
assert libc.syscall(SYS_close, fd) == 0
k = os.open(outside, os.O_RDONLY)
print("close", k == fd, read(k))
d = libc.syscall(SYS_dup, os.open(here, os.O_RDONLY))
print("dup", read(d))
assert libc.syscall(SYS_dup2, k, d) == d
print("dup2", read(d))
assert libc.syscall(SYS_close_range, 3, 0xFFFFFFFF, 0) == 0
k = os.open(outside, os.O_RDONLY)
print("close_range", read(k), read(os.open(here, os.O_RDONLY)))
"#;

#[test]
fn closes_and_dups_through_syscall_keep_the_fd_table_exact() {
    let test = "closes_and_dups_through_syscall_keep_the_fd_table_exact";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    // The kernel file the script opens, outside either directory.
    let elsewhere = TmpfsGuard::new("1M");
    let outside = elsewhere.path().join("outside");
    std::fs::write(&outside, "a kernel file\n").unwrap();
    let reference = same_as_tmpfs(
        &lib,
        |dir| std::fs::write(dir.join("a"), "on the mount\n").unwrap(),
        |dir| {
            let outside = outside.to_str().unwrap();
            ["python3", "-c", SYSCALL_FDS, dir, outside]
                .map(String::from)
                .to_vec()
        },
    );
    assert!(
        reference.starts_with("close True b'a kernel file\\n'"),
        "{reference}"
    );
}

/// A fast-path fd reopened, stat'ed and listed through `/proc/self/fd/N`
/// and `/dev/fd/N`, by the process itself: what it reads must be what
/// tmpfs gives. (The kernel resolved those names to the fd's placeholder,
/// and the process read `/dev/null`.)
const PROC_FD: &str = r#"
import os, sys
fd = os.open(sys.argv[1] + "/a", os.O_RDONLY)
d = os.open(sys.argv[1] + "/d", os.O_RDONLY | os.O_DIRECTORY)
for name in ("/proc/self/fd/%d" % fd, "/dev/fd/%d" % fd, "/proc/%d/fd/%d" % (os.getpid(), fd)):
    with open(name, "rb") as f:
        print(name.split("/")[1], f.read(), os.stat(name).st_size)
print("dir", sorted(os.listdir("/proc/self/fd/%d" % d)))
with open("/proc/self/fd/%d/inner" % d) as f:
    print("through dir", f.read())
os.dup2(fd, 0)
print("stdin", open("/dev/stdin", "rb").read())
"#;

#[test]
fn a_fast_path_fd_named_through_proc_is_the_file() {
    let test = "a_fast_path_fd_named_through_proc_is_the_file";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let prepare = |dir: &Path| {
        std::fs::write(dir.join("a"), "on the mount\n").unwrap();
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("d/inner"), "inside").unwrap();
    };
    let argv = |dir: &str| ["python3", "-c", PROC_FD, dir].map(String::from).to_vec();
    let reference = same_as_tmpfs(&lib, prepare, argv);
    assert!(
        reference.starts_with("proc b'on the mount\\n' 13\n"),
        "{reference}"
    );
}

/// Calls on fast-path fds that glibc makes with its own system calls
/// (`isatty`, `tcgetattr`, `ttyname_r`) or that have no other way in
/// (`readahead`, `syncfs`, `sync_file_range`, `getdents64`) answer what
/// tmpfs answers (`scripts/fd_calls.c`). They reached the fd's placeholder
/// and said `EBADF`.
#[test]
fn calls_the_placeholder_would_answer_get_the_files_answers() {
    let test = "calls_the_placeholder_would_answer_get_the_files_answers";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    static BUILT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(prog) = compiled_c(&BUILT, "fd_calls.c", test) else {
        return;
    };
    let prepare = |dir: &Path| {
        std::fs::write(dir.join("f"), "some bytes").unwrap();
        std::fs::create_dir_all(dir.join("d")).unwrap();
    };
    let prog = prog.to_str().unwrap();
    let argv = |dir: &str| vec![prog.to_string(), format!("{dir}/f"), format!("{dir}/d")];
    let reference = same_as_tmpfs(&lib, prepare, argv);
    assert!(
        reference.contains("isatty 0 Inappropriate ioctl"),
        "{reference}"
    );
    assert!(
        reference.contains("ioctl TCGETS dir -1 Inappropriate ioctl"),
        "{reference}"
    );
}

/// A terminal query made with `ioctl` itself (python's `fcntl.ioctl`) on a
/// fast-path file is answered by the library (`ENOTTY`, as the plain mount
/// answers): the file does not become kernel-backed for it, so the FUSE
/// door sees no request at all.
#[test]
fn terminal_queries_on_fast_path_files_make_no_kernel_request() {
    let Some(lib) = preload_or_skip("terminal_queries_on_fast_path_files_make_no_kernel_request")
    else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    let file = m.join("f");
    std::fs::write(&file, b"data").unwrap();
    let code = format!(
        "import errno, fcntl, os, termios\n\
         fd = os.open({:?}, os.O_RDONLY)\n\
         for req in (termios.TCGETS, termios.TIOCGWINSZ, termios.TIOCGPGRP):\n\
         \x20   try:\n\
         \x20       fcntl.ioctl(fd, req, bytes(64))\n\
         \x20   except OSError as e:\n\
         \x20       print(errno.errorcode[e.errno])\n\
         print(os.read(fd, 10))",
        file.display().to_string()
    );
    // What the kernel would ask for such a file (a `FORGET` may come at
    // any time: the kernel drops cached inodes under memory pressure).
    let asked = || {
        ["lookup", "getattr", "open", "read", "ioctl", "release"]
            .map(|op| door_count(m, "FUSE door", op))
    };
    let before = asked();
    let out = run(Some(&lib), &[PYTHON, "-c", &code]);
    assert_eq!(out, "ENOTTY\nENOTTY\nENOTTY\nb'data'\n");
    assert_eq!(asked(), before, "{}", stats(m));
}

#[test]
fn exited_clients_leave_nothing_behind_in_the_daemon() {
    let test = "exited_clients_leave_nothing_behind_in_the_daemon";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let m = bt.path();
    std::fs::write(m.join("f"), b"data").unwrap();
    let before = stat_value(&stats(m), "fast-path requests");
    // A process that holds files open when it exits, one that is killed
    // (open for writing: a read-only open of a file the process opened
    // before shares that open's handle).
    let keep_open = format!(
        "import os; fds = [os.open({:?}, os.O_RDWR) for _ in range(20)]",
        m.join("f").display().to_string()
    );
    run(Some(&lib), &[PYTHON, "-c", &keep_open]);
    let mut victim = Command::new(PYTHON);
    victim
        .args(["-c", &format!("{keep_open}; import time; time.sleep(60)")])
        .env("LD_PRELOAD", &lib);
    let mut child = victim.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stat_value(&stats(m), "fast-path handles") < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the victim never opened its files"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Channels of dead clients are noticed within one sleep slice (200 ms).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(m);
        if stat_value(&s, "fast-path channels") == 0 && stat_value(&s, "fast-path handles") == 0 {
            assert_eq!(stat_value(&s, "open handles (all)"), 0, "{s}");
            assert!(stat_value(&s, "fast-path requests") >= before + 40, "{s}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "daemon kept a dead client's state:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_small_private_mapping_is_a_copy_of_what_the_file_holds() {
    let test = "a_small_private_mapping_is_a_copy_of_what_the_file_holds";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("64M");
    let m = bt.path();
    let bytes = |n: usize| (0..n).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>();
    std::fs::write(m.join("small"), bytes(200)).unwrap();
    std::fs::write(m.join("two-pages"), bytes(5000)).unwrap();
    std::fs::write(m.join("large"), bytes(100 * 1024)).unwrap();
    let script = r#"
import mmap, os, sys
d = sys.argv[1]
def mapped(name, offset=0, length=0, mode=os.O_RDONLY, **kw):
    fd = os.open(os.path.join(d, name), mode)
    try:
        with mmap.mmap(fd, length, offset=offset, **kw) as m:
            return m[:]
    finally:
        os.close(fd)
def held(name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()
private = dict(flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
print(mapped("small", **private) == held("small"))
print(mapped("two-pages", offset=4096, **private) == held("two-pages")[4096:])
print(mapped("large", **private) == held("large"))
# Copy-on-write: the mapping changes, the file does not.
fd = os.open(os.path.join(d, "small"), os.O_RDWR)
with mmap.mmap(fd, 0, access=mmap.ACCESS_COPY) as m:
    m[0:4] = b"COPY"
    print(m[:4], held("small")[:4] == bytes([0, 7, 14, 21]))
os.close(fd)
# A file opened for writing only cannot be mapped for reading.
try:
    mapped("small", length=200, mode=os.O_WRONLY, **private)
    print("mapped")
except OSError as e:
    print(e.errno == 13)
"#;
    let reopened = || fast_path_count(m, "drop_handle_name");
    let before = reopened();
    let out = preloaded_python_ok(&lib, script, m);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["True", "True", "True", "b'COPY' True", "True"],
        "{out}"
    );
    // The small mappings were copies; the large one went through the
    // kernel (its file reopened by the reserved name, then dropped), and
    // so did the write-only open's refused one.
    let through_kernel = reopened() - before;
    assert!(
        (1..=2).contains(&through_kernel),
        "{through_kernel} reopened"
    );
}

/// POSIX ACL attributes through the fast path answer as the kernel's FUSE
/// client answers them on the plain mount (no `FUSE_POSIX_ACL`): refused,
/// except a default ACL of a file that is not a directory, which the
/// kernel refuses with `EACCES` (and whose removal is nothing to do) before
/// it asks for ACL support (the fast path said `EOPNOTSUPP`).
#[test]
fn acl_attributes_answer_as_on_the_plain_mount() {
    let test = "acl_attributes_answer_as_on_the_plain_mount";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let script = scripts_dir().join("acl_attrs.py");
    let script = script.to_str().expect("utf-8 path");
    let tree = |name: &str| {
        let d = bt.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d.to_str().expect("utf-8 path").to_string()
    };
    let plain = run(None, &[PYTHON, script, &tree("plain")]);
    let fast = run(Some(&lib), &[PYTHON, script, &tree("fast")]);
    assert_same_output(test, "plain", &plain, "fast", &fast);
    assert!(plain.contains("f acl_default f set28 EACCES"), "{plain}");
}
