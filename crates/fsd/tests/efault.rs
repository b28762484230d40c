//! Bad pointers under the preload library get the kernel's answer, never a
//! crash the program would not have had (issue 13, item 1).
//!
//! `scripts/efault_prog.c` holds the table: every exported function of
//! `libbtfuse.so`, each pointer argument, called with four kinds of bad
//! pointer (unmapped, `PROT_NONE`, a `SIGBUS` page past the end of a
//! memfd, and the last 8 bytes of a page before a hole: a buffer or string
//! that starts readable), each call in its own child. The same program
//! runs without the library and with it, on tmpfs and on a btfuse mount:
//! the answers (return value and errno, or the signal where glibc itself
//! crashes) must be identical. The table must name every exported symbol,
//! so a new hook without a case fails here.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const RUN: Duration = Duration::from_secs(300);

fn prog(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    compiled_c(&BUILT, "efault_prog.c", test)
}

/// Runs the driver with `arg` in `cwd`, preloaded with `lib` when given.
fn driver(p: &Path, lib: Option<&str>, cwd: &Path, arg: &str) -> std::process::Output {
    let mut cmd = Command::new(p);
    preload(cmd.arg(arg).current_dir(cwd), lib);
    run_timeout(&mut cmd, RUN)
}

fn stdout_ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn work(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn table_covers_every_exported_hook() {
    let test = "table_covers_every_exported_hook";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm");
    assert!(nm.status.success(), "nm failed");
    let exported: BTreeSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && matches!(f[1], "T" | "W" | "i")).then(|| f[2].to_string())
        })
        .collect();
    assert!(exported.len() > 100, "nm listed too little: {exported:?}");
    let listed = stdout_ok(&driver(&p, None, Path::new("/"), "list"), "list");
    let listed: BTreeSet<String> = listed.lines().map(str::to_string).collect();
    let missing: Vec<&String> = exported.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "exported by libbtfuse.so but not in scripts/efault_prog.c's table: {missing:?}"
    );
}

#[test]
fn bad_pointers_get_the_kernels_answer_on_and_off_the_mount() {
    let test = "bad_pointers_get_the_kernels_answer_on_and_off_the_mount";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let tmp = TmpfsGuard::new("64M");
    let bt = BtfuseGuard::new("128M");
    for (fs, root) in [("tmpfs", tmp.path()), ("btfuse", bt.path())] {
        let want = stdout_ok(&driver(&p, None, &work(root, "plain"), "run"), "plain");
        assert!(want.lines().count() > 500, "reference too short:\n{want}");
        // The kernel's answer for the classic case, to be sure the
        // reference itself means something.
        assert!(
            want.contains("stat/0/unmapped: ret -1 errno 14\n")
                && want.contains("read/1/bus: ret -1 errno 14\n"),
            "{fs}: unexpected reference:\n{}",
            tail(&want, 40)
        );
        let got = stdout_ok(
            &driver(&p, Some(&lib), &work(root, "pre"), "run"),
            "preloaded",
        );
        let diff = all_differences(&want, &got, 40);
        assert!(
            diff.is_empty(),
            "{fs}: preloaded answers differ from the kernel's (line, kernel, preloaded):\n{diff:#?}"
        );
    }
}

#[test]
fn genuine_crashes_still_reach_the_program() {
    let test = "genuine_crashes_still_reach_the_program";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let bt = BtfuseGuard::new("64M");
    std::fs::write(bt.path().join("f"), b"x").expect("write");
    // Its own SIGSEGV handler on a sigaltstack: called, on that stack.
    let out = driver(&p, Some(&lib), bt.path(), "crash-handler");
    assert_eq!(
        out.status.code(),
        Some(42),
        "crash-handler: {:?}",
        out.status
    );
    // The default disposition: the process dies of SIGSEGV.
    use std::os::unix::process::ExitStatusExt;
    let out = driver(&p, Some(&lib), bt.path(), "crash-default");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "crash-default: {:?}",
        out.status
    );
}
