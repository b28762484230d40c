//! Concurrency: several processes create, rename and delete in the same two
//! directories of one mount while a reader lists them over and over. readdir
//! must never return a name twice nor skip an entry that nobody touches, and
//! the final tree must equal the model computed from the deterministic
//! workload (`tests/scripts/churn.py`).

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORKERS: u32 = 4;
const ITERS: u32 = 400;

fn py(script: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(PYTHON);
    c.arg(script).args(args);
    c
}

fn churn(root: &Path) {
    let script = scripts_dir().join("churn.py");
    let r = root.to_str().expect("utf8 path");
    let out = run_timeout(&mut py(&script, &["prepare", r]), Duration::from_secs(60));
    assert!(
        out.status.success(),
        "prepare: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let stop = root.join("STOP_READER");
    let stop_s = stop.to_str().expect("utf8").to_string();
    let mut reader = py(&script, &["reader", r, &stop_s])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn reader");
    let mut workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            py(&script, &["worker", r, &w.to_string(), &ITERS.to_string()])
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut failures = Vec::new();
    for (i, w) in workers.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_timeout(w, left) {
            Some(st) if st.success() => {}
            Some(st) => {
                let mut e = String::new();
                use std::io::Read;
                let _ = w.stderr.take().map(|mut s| s.read_to_string(&mut e));
                failures.push(format!("worker {i} failed ({st}): {e}"));
            }
            None => {
                // SAFETY: kill(2) on the worker's own process group.
                unsafe { libc::kill(-(w.id() as libc::pid_t), libc::SIGKILL) };
                let _ = wait_timeout(w, Duration::from_secs(5));
                failures.push(format!("worker {i} timed out"));
            }
        }
    }
    // Stop the reader from outside the mount's namespace of worries: the stop
    // file lives on the mount, so also bound the reader's own run (120 s max).
    let _ = std::fs::write(&stop, b"");
    let st = wait_timeout(&mut reader, Duration::from_secs(30));
    if st.is_none() {
        // SAFETY: kill(2) on the reader's own process group.
        unsafe { libc::kill(-(reader.id() as libc::pid_t), libc::SIGKILL) };
        let _ = wait_timeout(&mut reader, Duration::from_secs(5));
    }
    let mut rout = String::new();
    {
        use std::io::Read;
        let _ = reader
            .stdout
            .take()
            .map(|mut s| s.read_to_string(&mut rout));
        let _ = reader
            .stderr
            .take()
            .map(|mut s| s.read_to_string(&mut rout));
    }
    let _ = std::fs::remove_file(&stop);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        matches!(st, Some(s) if s.success()),
        "reader found readdir anomalies ({st:?}):\n{}",
        tail(&rout, 30)
    );

    let expect = run_timeout(
        &mut py(
            &script,
            &["expect", r, &WORKERS.to_string(), &ITERS.to_string()],
        ),
        Duration::from_secs(30),
    );
    let tree = run_timeout(&mut py(&script, &["tree", r]), Duration::from_secs(30));
    assert!(
        tree.status.success(),
        "tree: {}",
        String::from_utf8_lossy(&tree.stderr)
    );
    assert_same_output(
        &format!("final tree {}", root.display()),
        "expected",
        &String::from_utf8_lossy(&expect.stdout),
        "actual",
        &String::from_utf8_lossy(&tree.stdout),
    );
    eprintln!("reader: {}", rout.trim());
}

use std::os::unix::process::CommandExt;

#[test]
fn concurrent_churn_keeps_readdir_and_tree_consistent_on_btfuse() {
    if !fuse_available("concurrent_churn_keeps_readdir_and_tree_consistent_on_btfuse") {
        return;
    }
    let bt = BtfuseGuard::new("256M");
    churn(bt.path());
}

/// The workload and its model agree on the reference filesystem.
#[test]
fn concurrent_churn_model_holds_on_tmpfs() {
    if !root_available("concurrent_churn_model_holds_on_tmpfs") {
        return;
    }
    let t = TmpfsGuard::new("256M");
    churn(t.path());
}
