//! The kernel's view of a file stays current while the fast path changes it
//! (see `crates/fsd/src/fuse_door/coherence.rs`), and fast-path fds survive leaving
//! the process: `scripts/coherence.c` (compiled here with `cc`) and
//! `sqlite3` give the same output on tmpfs and through the preload library.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const RUN: Duration = Duration::from_secs(120);

/// `scripts/coherence.c`, compiled once per test binary.
fn prog(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    compiled_c(&BUILT, "coherence.c", test)
}

/// Runs `argv` (preloaded with `lib` when given); its stdout, which must
/// come with a zero exit status.
fn run(lib: Option<&str>, argv: &[&str]) -> String {
    let mut cmd = Command::new(argv[0]);
    preload(cmd.args(&argv[1..]).env("LC_ALL", "C"), lib);
    let out = run_timeout(&mut cmd, RUN);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{argv:?} failed ({:?}):\n{}\n{}",
        out.status,
        tail(&stdout, 20),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The same program on tmpfs and preloaded on a btfuse mount: `argv` names
/// the file as `{}`.
fn same_as_tmpfs(what: &str, lib: &str, argv: &[&str]) {
    let tmpfs = TmpfsGuard::new("64m");
    let mnt = BtfuseGuard::new("256M");
    let on = |dir: &Path| -> Vec<String> {
        argv.iter()
            .map(|a| a.replace("{}", &dir.join("f").display().to_string()))
            .collect()
    };
    let args = on(tmpfs.path());
    let expected = run(None, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = on(mnt.path());
    let got = run(
        Some(lib),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_same_output(what, "tmpfs", &expected, "preload", &got);
}

#[test]
fn growing_through_the_fast_path_then_mapping_the_new_range_works() {
    let test = "growing_through_the_fast_path_then_mapping_the_new_range_works";
    let (Some(lib), Some(p)) = (preload_or_skip(test), prog(test)) else {
        return;
    };
    let p = p.display().to_string();
    for how in ["lock", "map"] {
        for by in ["ftruncate", "pwrite"] {
            same_as_tmpfs(
                &format!("{how} then {by}"),
                &lib,
                &[&p, "grow", "{}", how, by],
            );
        }
    }
}

#[test]
fn random_mix_of_fast_path_mapping_and_truncate_matches_tmpfs() {
    let test = "random_mix_of_fast_path_mapping_and_truncate_matches_tmpfs";
    let (Some(lib), Some(p)) = (preload_or_skip(test), prog(test)) else {
        return;
    };
    let p = p.display().to_string();
    let steps = env_u64("BTFUSE_COHERENCE_STEPS", 600).to_string();
    let first = env_u64("BTFUSE_COHERENCE_SEED", 1);
    for seed in first..first + 4 {
        same_as_tmpfs(
            &format!("seed {seed}"),
            &lib,
            &[&p, "random", "{}", &seed.to_string(), &steps],
        );
    }
}

/// A process without the library holds an `O_APPEND` fd; a preloaded one
/// truncates the file through the fast path; the next append's offset is
/// the real end.
#[test]
fn kernel_append_after_a_fast_path_truncate_reports_the_real_end() {
    let test = "kernel_append_after_a_fast_path_truncate_reports_the_real_end";
    let (Some(lib), Some(p)) = (preload_or_skip(test), prog(test)) else {
        return;
    };
    let p = p.display().to_string();
    let tmpfs = TmpfsGuard::new("16m");
    let mnt = BtfuseGuard::new("64M");
    let session = |dir: &Path| -> String {
        let f = dir.join("ap");
        std::fs::write(&f, "0123456789").unwrap();
        let f = f.display().to_string();
        let mut appender = Proc(
            Command::new(&p)
                .args(["appender", &f])
                .env_remove("LD_PRELOAD")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut input = appender.0.stdin.take().unwrap();
        let mut output = BufReader::new(appender.0.stdout.take().unwrap());
        let mut log = String::new();
        let mut line = |log: &mut String| {
            let mut l = String::new();
            output.read_line(&mut l).unwrap();
            log.push_str(&l);
        };
        line(&mut log);
        for size in ["100", "20", "4000"] {
            writeln!(input).unwrap();
            line(&mut log);
            log.push_str(&run(Some(&lib), &[&p, "truncate", &f, size]));
        }
        writeln!(input).unwrap();
        line(&mut log);
        drop(input);
        assert_eq!(
            wait_timeout(&mut appender.0, RUN).map(|s| s.success()),
            Some(true)
        );
        log
    };
    let expected = session(tmpfs.path());
    let got = session(mnt.path());
    assert_same_output(test, "tmpfs", &expected, "preload", &got);
}

/// sqlite3 in WAL mode (its `-shm` index is mapped, and grown with
/// `pwrite`) and in rollback-journal mode, a few thousand transactions.
#[test]
fn sqlite_wal_and_rollback_journal_match_tmpfs() {
    let test = "sqlite_wal_and_rollback_journal_match_tmpfs";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    if Command::new("sqlite3").arg("-version").output().is_err() {
        eprintln!("\n*** SKIPPED {test}: no sqlite3 ***\n");
        return;
    }
    let txns = env_u64("BTFUSE_SQLITE_TXNS", 2000);
    let tmpfs = TmpfsGuard::new("64m");
    let mnt = BtfuseGuard::new("256M");
    for mode in ["wal", "delete"] {
        let mut sql = format!(
            "PRAGMA journal_mode={mode};\nCREATE TABLE a(k INTEGER PRIMARY KEY, v TEXT);\n"
        );
        for i in 0..txns {
            sql.push_str(&format!(
                "BEGIN; INSERT INTO a(v) VALUES (printf('%0{}d', {i})); UPDATE a SET v = v || 'x' WHERE k % 7 = {}; COMMIT;\n",
                1 + i % 300,
                i % 7
            ));
            if i % 500 == 499 {
                sql.push_str("DELETE FROM a WHERE k % 3 = 0;\n");
            }
        }
        sql.push_str("SELECT count(*), sum(length(v)), sum(k) FROM a;\nPRAGMA integrity_check;\n");
        // Read by sqlite3 itself (`.read`): too long for an argument.
        let script = std::env::temp_dir().join(format!(
            "btfuse-coherence-{mode}-{}.sql",
            std::process::id()
        ));
        std::fs::write(&script, &sql).unwrap();
        let read = format!(".read {}", script.display());
        let db = |dir: &Path| dir.join(format!("{mode}.db")).display().to_string();
        let expected = run(None, &["sqlite3", &db(tmpfs.path()), &read]);
        let got = run(Some(&lib), &["sqlite3", &db(mnt.path()), &read]);
        let _ = std::fs::remove_file(&script);
        assert!(expected.ends_with("ok\n"), "{expected}");
        assert_same_output(
            &format!("sqlite {mode}"),
            "tmpfs",
            &expected,
            "preload",
            &got,
        );
        // And the file the library wrote reads the same through the kernel.
        let again = run(
            None,
            &[
                "sqlite3",
                &db(mnt.path()),
                "SELECT count(*), sum(length(v)), sum(k) FROM a;",
            ],
        );
        assert_eq!(
            expected.lines().rev().nth(1),
            again.lines().last(),
            "{mode}"
        );
    }
}

/// A fast-path fd sent over a unix socket (`SCM_RIGHTS`) to a process
/// started before the file was opened, with and without the library:
/// the receiver reads and writes the file, and the offset is shared.
#[test]
fn fast_path_fd_sent_over_a_unix_socket_works() {
    let test = "fast_path_fd_sent_over_a_unix_socket_works";
    let (Some(lib), Some(p)) = (preload_or_skip(test), prog(test)) else {
        return;
    };
    let p = p.display().to_string();
    let tmpfs = TmpfsGuard::new("16m");
    let mnt = BtfuseGuard::new("64M");
    for child in ["plain", "preload"] {
        let session = |dir: &Path, lib: Option<&str>| {
            let f = dir.join("s");
            std::fs::write(&f, "abcdefghijklmnop").unwrap();
            run(lib, &[&p, "sendfd", &f.display().to_string(), child])
        };
        let expected = session(tmpfs.path(), None);
        assert!(expected.contains("child read 3 def"), "{expected}");
        let got = session(mnt.path(), Some(&lib));
        assert_same_output(
            &format!("send to {child}"),
            "tmpfs",
            &expected,
            "preload",
            &got,
        );
    }
}

/// A program without the library rewrites a file in 1 MiB writes (the
/// FUSE door answers each write before the store has copied its bytes,
/// see `Store::write_acked`) while a preloaded one reads it through the
/// fast path: no read returns a byte the writer had not written yet (a
/// block placed but not filled). Each fast-path read is one request,
/// atomic against the store's writes; a reader through the kernel is not
/// checked the same way, as reads racing writes and truncation are not
/// atomic there (on tmpfs either: a 64 KiB read can span two rounds).
#[test]
fn fast_path_reads_beside_the_kernels_writes_never_see_unwritten_bytes() {
    let test = "fast_path_reads_beside_the_kernels_writes_never_see_unwritten_bytes";
    let (Some(lib), Some(p)) = (preload_or_skip(test), prog(test)) else {
        return;
    };
    let mnt = BtfuseGuard::new("256M");
    let file = mnt.path().join("race").display().to_string();
    let p = p.display().to_string();
    let ms = env_u64("BTFUSE_RACE_MS", 2000).to_string();
    let mut writer = Command::new(&p)
        .args(["rewrite", &file, &ms])
        .spawn()
        .expect("start the writer");
    let read = run(Some(&lib), &[&p, "uniform", &file, &ms]);
    let reads: u64 = read.trim().parse().unwrap_or(0);
    assert!(reads > 0, "the reader read nothing: {read}");
    let status = wait_timeout(&mut writer, RUN).expect("the writer ends");
    assert!(status.success(), "writer: {status:?}");
}
