//! Identity is more than uid and gid: both doors decide by the caller's
//! effective capabilities, as the kernel (tmpfs) does, and a credential
//! change made through `syscall(3)` or `capset` takes effect on the fast
//! path at once. Also errno parity for O_NOATIME, malformed POSIX ACL
//! values and RENAME_WHITEOUT.
//!
//! Each identity runs `scripts/identity_ops.py` three ways: on tmpfs, on
//! the btfuse mount without the library (the FUSE door) and with it (the
//! ring door); the outputs must be equal.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The identities under test: a name and the `setpriv` options that make
/// it (empty: plain root).
const IDENTITIES: [(&str, &[&str]); 4] = [
    ("root", &[]),
    (
        "reduced_root",
        &["--bounding-set=-dac_override,-dac_read_search,-fowner,-chown,-fsetid"],
    ),
    (
        "dac_user",
        &[
            "--reuid=1001",
            "--regid=1001",
            "--clear-groups",
            "--inh-caps=+dac_override,+dac_read_search",
            "--ambient-caps=+dac_override,+dac_read_search",
        ],
    ),
    ("user", &["--reuid=1001", "--regid=1001", "--clear-groups"]),
];

/// What `identity_ops.py` expects in its directory (made by full root).
fn setup(dir: &Path) {
    fs::create_dir(dir).expect("mkdir");
    set_mode(dir, 0o755);
    fs::write(dir.join("o"), "secret\n").unwrap();
    set_mode(&dir.join("o"), 0o600);
    chown(&dir.join("o"), 1000, 1000);
    fs::create_dir(dir.join("d")).unwrap();
    fs::write(dir.join("d/f"), "inner\n").unwrap();
    set_mode(&dir.join("d/f"), 0o600);
    chown(&dir.join("d/f"), 1000, 1000);
    set_mode(&dir.join("d"), 0o700);
    chown(&dir.join("d"), 1000, 1000);
    fs::create_dir(dir.join("w")).unwrap();
    fs::write(dir.join("w/src"), "src\n").unwrap();
    chown(&dir.join("w/src"), 1000, 1000);
    set_mode(&dir.join("w"), 0o755);
    chown(&dir.join("w"), 1000, 1000);
    fs::write(dir.join("pub"), "public\n").unwrap();
    set_mode(&dir.join("pub"), 0o666);
    chown(&dir.join("pub"), 1000, 1000);
}

/// Runs `argv` (under `setpriv OPTS` when given), with the library
/// preloaded (and its debug log on) when `preload` is set; returns stdout
/// with `dir` replaced by "DIR", and stderr.
fn run(opts: &[&str], argv: &[&str], dir: &Path, preload: Option<&str>) -> (String, String) {
    let mut cmd = if opts.is_empty() {
        Command::new(argv[0])
    } else {
        let mut c = Command::new("setpriv");
        c.args(opts).arg(argv[0]);
        c
    };
    cmd.args(&argv[1..]).arg(dir);
    cmd.env_remove("LD_PRELOAD").env_remove("BTFUSE_DEBUG");
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib).env("BTFUSE_DEBUG", "1");
    }
    let o = run_timeout(&mut cmd, RUN_TIMEOUT);
    let d = dir.display().to_string();
    let out = String::from_utf8_lossy(&o.stdout).replace(&d, "DIR");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let program_err: String = err.lines().filter(|l| !l.starts_with("btfuse: ")).collect();
    (
        format!(
            "{out}--- stderr ---\n{program_err}\n### {:?}\n",
            o.status.code()
        ),
        err,
    )
}

/// tmpfs, the FUSE door and the ring door agree for `argv` run as each
/// identity in its own prepared directory; returns the tmpfs outputs.
fn three_ways(test: &str, argv: &[&str]) -> Option<Vec<String>> {
    let lib = preload_or_skip(test)?;
    let tmp = TmpfsGuard::new("64M");
    let bt = BtfuseGuard::new("64M");
    let mut outputs = Vec::new();
    for (name, opts) in IDENTITIES {
        let want_dir = tmp.path().join(name);
        setup(&want_dir);
        let (want, _) = run(opts, argv, &want_dir, None);
        let fuse_dir = bt.path().join(format!("{name}-fuse"));
        setup(&fuse_dir);
        let (fuse, _) = run(opts, argv, &fuse_dir, None);
        let ring_dir = bt.path().join(format!("{name}-ring"));
        setup(&ring_dir);
        let (ring, log) = run(opts, argv, &ring_dir, Some(&lib));
        assert!(
            log.contains("channel connected"),
            "{name}: the fast path was not used:\n{log}"
        );
        assert_same_output(
            &format!("{test}-{name}-fuse"),
            "tmpfs",
            &want,
            "fuse",
            &fuse,
        );
        assert_same_output(
            &format!("{test}-{name}-ring"),
            "tmpfs",
            &want,
            "preload",
            &ring,
        );
        outputs.push(want);
    }
    Some(outputs)
}

/// A root without the file capabilities is refused what tmpfs refuses it
/// (another user's 0600 file, a 0700 directory, chown to root, chmod,
/// utimes), a user holding CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH gets what
/// tmpfs gives it, through both doors; O_NOATIME on another's file is
/// EPERM (at open and when `fcntl(F_SETFL)` adds it, where O_APPEND,
/// O_NONBLOCK, O_DIRECT and O_ASYNC behave as on tmpfs), a malformed ACL
/// value EINVAL, and
/// RENAME_WHITEOUT leaves a whiteout everywhere.
#[test]
fn capabilities_decide_like_tmpfs_through_both_doors() {
    let t = "capabilities_decide_like_tmpfs_through_both_doors";
    if !root_available(t) {
        return;
    }
    let script = scripts_dir().join("identity_ops.py");
    let script = script.to_str().unwrap();
    let Some(outputs) = three_ways(t, &[PYTHON, script]) else {
        return;
    };
    // The reference itself says what the identities are.
    let [root, reduced, dac, user] = &outputs[..] else {
        unreachable!()
    };
    assert!(root.contains("read o: ok b'secret\\n'"), "{root}");
    assert!(reduced.contains("read o: errno 13"), "{reduced}");
    assert!(reduced.contains("list d: errno 13"), "{reduced}");
    assert!(reduced.contains("chown o to root: errno 1"), "{reduced}");
    assert!(reduced.contains("utime o set: errno 1"), "{reduced}");
    assert!(dac.contains("list d: ok ['f']"), "{dac}");
    assert!(dac.contains("create d/new: ok (1001, 1001)"), "{dac}");
    assert!(dac.contains("chown o to root: errno 1"), "{dac}");
    assert!(user.contains("noatime pub: errno 1"), "{user}");
    assert!(
        user.contains("setfl noatime pub: ok ['errno 1', "),
        "{user}"
    );
    assert!(
        reduced.contains("setfl noatime pub: ok ['errno 1', "),
        "{reduced}"
    );
    assert!(
        root.contains("setfl noatime pub: ok ['0o1000000', "),
        "{root}"
    );
    assert!(user.contains("acl bad size: errno 22"), "{user}");
    assert!(user.contains("acl bad version: errno 95"), "{user}");
    assert!(
        root.contains("whiteout left: ok (8192, 0, 0, 0, 0)"),
        "{root}"
    );
    assert!(
        dac.contains("whiteout left: ok (8192, 0, 0, 1001, 1001)"),
        "{dac}"
    );
}

/// A preloaded program that drops capabilities or ids through `syscall(3)`
/// or glibc's `capset` is refused at once through the fast path (as on
/// tmpfs), and reconnects with its new identity.
#[test]
fn raw_credential_changes_take_effect_on_the_fast_path() {
    let t = "raw_credential_changes_take_effect_on_the_fast_path";
    if !root_available(t) {
        return;
    }
    static BUILT: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    let Some(prog) = compiled_c(&BUILT, "raw_creds.c", t) else {
        return;
    };
    let Some(lib) = preload_or_skip(t) else {
        return;
    };
    let prog = prog.to_str().unwrap();
    let tmp = TmpfsGuard::new("16M");
    let bt = BtfuseGuard::new("16M");
    for mode in ["capset", "capset-libc", "setresuid"] {
        let want_dir = tmp.path().join(mode);
        setup(&want_dir);
        let (want, _) = run(&[], &[prog, mode], &want_dir, None);
        assert!(want.contains("before open o: read 7"), "{want}");
        assert!(want.contains("after open o: errno 13"), "{want}");
        let ring_dir = bt.path().join(mode);
        setup(&ring_dir);
        let (got, log) = run(&[], &[prog, mode], &ring_dir, Some(&lib));
        assert_same_output(&format!("{t}-{mode}"), "tmpfs", &want, "preload", &got);
        assert!(
            log.matches("channel connected").count() >= 2,
            "{mode}: expected a reconnection after the change:\n{log}"
        );
    }
}
