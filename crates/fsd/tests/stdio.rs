//! stdio streams on mount files under the preload library: `fopen`,
//! `fdopen` and `freopen` streams give byte-identical results to tmpfs and
//! to the plain mount (`scripts/stdio_prog.c`, compiled here with `cc`),
//! really skip the kernel (strace), keep their unflushed output at `exit`,
//! and text tools (sed, sort, awk, ...) on mount files do too.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const RUN: Duration = Duration::from_secs(60);

/// `scripts/stdio_prog.c`, compiled once per test binary; `None` (with a
/// loud skip) when there is no C compiler.
fn prog(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    compiled_c(&BUILT, "stdio_prog.c", test)
}

/// Runs `argv` in `cwd` (preloaded with `lib` when given, plus `env`);
/// returns stdout, panicking on failure.
fn run(lib: Option<&str>, cwd: &Path, argv: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(argv[0]);
    preload(
        cmd.args(&argv[1..]).current_dir(cwd).env("LC_ALL", "C"),
        lib,
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_timeout(&mut cmd, RUN);
    assert!(
        out.status.success(),
        "{argv:?} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        tail(&String::from_utf8_lossy(&out.stdout), 20)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh directory `name` under `root`.
fn work(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn streams_on_mount_files_match_tmpfs_plain_and_preloaded() {
    let test = "streams_on_mount_files_match_tmpfs_plain_and_preloaded";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let p = p.display().to_string();
    let tmp = TmpfsGuard::new("64M");
    let bt = BtfuseGuard::new("128M");
    let _ = work(tmp.path(), "t");
    let want = run(None, tmp.path(), &[&p, "all", "t"], &[]);
    assert!(want.lines().count() > 100, "reference too short:\n{want}");
    for (name, l, dir) in [
        ("plain", None, "plain"),
        ("preload", Some(lib.as_str()), "pre"),
    ] {
        let d = work(bt.path(), dir);
        let got = run(
            l,
            bt.path(),
            &[&p, "all", d.file_name().unwrap().to_str().unwrap()],
            &[],
        );
        assert_same_output(test, "tmpfs", &want, name, &got);
    }
}

#[test]
fn preloaded_streams_make_no_syscall_on_the_mount() {
    let test = "preloaded_streams_make_no_syscall_on_the_mount";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    if !have_strace(test) {
        return;
    }
    let Some(p) = prog(test) else {
        return;
    };
    let p = p.display().to_string();
    let tmp = TmpfsGuard::new("64M");
    let _ = work(tmp.path(), "t");
    let bt = BtfuseGuard::new("128M");
    let m = bt.path();
    let d = work(m, "s").display().to_string();
    let calls = mount_syscalls(Some(&lib), m, m, &[&p, "fast", &d], &[]);
    assert!(
        calls.is_empty(),
        "fopen/fdopen/freopen streams entered the kernel for the mount:\n{}",
        calls.join("\n")
    );
    let want = run(None, tmp.path(), &[&p, "fast", "t"], &[]);
    let d2 = work(m, "s2").display().to_string();
    let got = run(Some(&lib), m, &[&p, "fast", &d2], &[]);
    assert_same_output(test, "tmpfs", &want, "preload", &got);
    // The switch: BTFUSE_STDIO=0 leaves streams to glibc (the kernel path),
    // with the same results.
    let d3 = work(m, "s3").display().to_string();
    let off = [("BTFUSE_STDIO", "0")];
    let calls = mount_syscalls(Some(&lib), m, m, &[&p, "fast", &d3], &off);
    assert!(
        calls.iter().any(|l| l.contains("openat(")),
        "BTFUSE_STDIO=0 should leave fopen to the kernel"
    );
    let d4 = work(m, "s4").display().to_string();
    let got = run(Some(&lib), m, &[&p, "fast", &d4], &off);
    assert_same_output(test, "tmpfs", &want, "stdio-off", &got);
}

#[test]
fn unflushed_streams_reach_the_daemon_at_exit() {
    let test = "unflushed_streams_reach_the_daemon_at_exit";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let bt = BtfuseGuard::new("64M");
    let d = work(bt.path(), "x");
    run(
        Some(&lib),
        bt.path(),
        &[p.to_str().unwrap(), "exit", d.to_str().unwrap()],
        &[],
    );
    // Read back through the kernel (the FUSE mount).
    let text = |n: &str| std::fs::read_to_string(d.join(n)).unwrap_or_else(|e| format!("{e}"));
    assert_eq!(text("unflushed"), "never closed, 7\n");
    assert_eq!(text("unflushed-atexit"), "from atexit\n");
}

#[test]
fn wide_calls_on_a_preloaded_stream_fail_without_crashing() {
    let test = "wide_calls_on_a_preloaded_stream_fail_without_crashing";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let Some(p) = prog(test) else {
        return;
    };
    let bt = BtfuseGuard::new("64M");
    let p = p.to_str().unwrap();
    let d = work(bt.path(), "w");
    let d = d.to_str().unwrap();
    // The documented difference: glibc's stream reads wide characters,
    // the library's is byte-oriented.
    let plain = run(None, bt.path(), &[p, "wide", d], &[]);
    assert_eq!(plain, "wide fwide=0 fgetwc=a\n");
    let pre = run(Some(&lib), bt.path(), &[p, "wide", d], &[]);
    assert_eq!(pre, "wide fwide=-1 fgetwc=WEOF\n");
}

/// The text tools of the strace check: their outputs on a 10 000-line file
/// must equal tmpfs's, and preloaded they must not touch the mount.
fn text_tools(file: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["sed", "-n", "s/line/LINE/p", file]),
        v(&["sort", file]),
        v(&["sort", "-k3,3n", "-t", " ", file]),
        v(&["mawk", "{ s += $3 } END { print NR, s }", file]),
        v(&["awk", "$2 ~ /99/", file]),
        v(&["grep", "-c", "7", file]),
        v(&["cut", "-c1-8", file]),
        v(&["head", "-n", "3", file]),
        v(&["tail", "-n", "3", file]),
        v(&["wc", file]),
        v(&["tac", file]),
        v(&["md5sum", file]),
    ]
}

fn write_lines(dir: &Path) -> String {
    let mut s = String::new();
    for i in 1..=10_000u64 {
        s.push_str(&format!("line {:05} {}\n", (i * 7919) % 10_000, i));
    }
    let f = dir.join("lines.txt");
    std::fs::write(&f, s).unwrap();
    f.display().to_string()
}

#[test]
fn text_tools_on_mount_files_skip_the_kernel_and_match_tmpfs() {
    let test = "text_tools_on_mount_files_skip_the_kernel_and_match_tmpfs";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    if !have_strace(test) {
        return;
    }
    let tmp = TmpfsGuard::new("64M");
    let bt = BtfuseGuard::new("64M");
    let m = bt.path();
    let tf = write_lines(tmp.path());
    let mf = write_lines(m);
    for (want_argv, got_argv) in text_tools(&tf).iter().zip(text_tools(&mf)) {
        let a: Vec<&str> = got_argv.iter().map(String::as_str).collect();
        if Command::new(a[0]).arg("--version").output().is_err() {
            eprintln!("{test}: {} not installed, not checked", a[0]);
            continue;
        }
        let calls = mount_syscalls(Some(&lib), m, m, &a, &[]);
        assert!(
            calls.is_empty(),
            "{a:?} entered the kernel for the mount:\n{}",
            calls.join("\n")
        );
        let w: Vec<&str> = want_argv.iter().map(String::as_str).collect();
        let want = run(None, tmp.path(), &w, &[]).replace(&tf, "FILE");
        let got = run(Some(&lib), m, &a, &[]).replace(&mf, "FILE");
        assert_same_output(&format!("{test} {}", a[0]), "tmpfs", &want, "preload", &got);
    }
}
