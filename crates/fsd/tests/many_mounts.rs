//! Any number of mounts: every btfuse mount of a machine crowded with
//! mounts (and with other daemons coming and going) gets the fast path.
//!
//! Knobs: `BTFUSE_MANY_MOUNTS` (default 40) btfuse mounts,
//! `BTFUSE_MANY_TMPFS` (default 100) tmpfs mounts beside them.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;

/// Mounts `n` of something in parallel (a few threads: each mount waits
/// for its daemon, the machine has few cores). If one fails, the others
/// are unmounted before the panic goes on.
fn in_parallel<T: Send + 'static>(n: usize, make: fn() -> T) -> Vec<T> {
    let workers = 4;
    let handles: Vec<_> = (0..workers)
        .map(|w| thread::spawn(move || (w..n).step_by(workers).map(|_| make()).collect::<Vec<_>>()))
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    let mut made = Vec::new();
    let mut failed = None;
    for r in results {
        match r {
            Ok(v) => made.extend(v),
            Err(e) => failed = Some(e),
        }
    }
    if let Some(e) = failed {
        drop(made);
        std::panic::resume_unwind(e);
    }
    made
}

/// A daemon mounting and unmounting in a loop on a thread of its own, so
/// that other daemons come and go (and rewrite the registry) meanwhile.
/// Stopped and joined on drop.
struct Churn {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Churn {
    fn start() -> Churn {
        let (stop, rounds) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, r) = (stop.clone(), rounds.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                drop(BtfuseGuard::new("1M"));
                r.fetch_add(1, Ordering::Relaxed);
            }
        });
        Churn {
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    /// Stops the loop; how many rounds it made.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().unwrap();
        t.join().expect("the churning daemon failed");
        self.rounds.load(Ordering::Relaxed)
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A run directory of this test's own (`BTFUSE_RUN_DIR`, for its daemons
/// and clients), removed on drop. Daemons of other versions on this
/// machine may rewrite or remove the shared registry at any time (before
/// this version, one of more than 8 mounts removed it): their mounts are
/// still around, in the mount table every daemon here reads.
struct PrivateRunDir(std::path::PathBuf);

impl PrivateRunDir {
    fn new() -> PrivateRunDir {
        let dir = fresh_dir("run");
        // Set before any daemon or client starts, while this test (the
        // file's only one) runs no other thread.
        std::env::set_var(proto::RUN_DIR_ENV, &dir);
        PrivateRunDir(dir)
    }
}

impl Drop for PrivateRunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads `f` on every mount given, preloaded.
const READ_ALL: &str = r#"
import sys
for m in sys.argv[1:]:
    with open(m + "/f") as f:
        assert f.read() == m + "\n", m
print("read", len(sys.argv) - 1)
"#;

/// 40 btfuse mounts at once, 100 tmpfs mounts beside them, and a daemon
/// mounting and unmounting in a loop: every mount is in the registry, a
/// preloaded process reaches each one through the fast path (each daemon
/// counts its requests), and `cat` on the last one makes no syscall on it.
#[test]
fn forty_mounts_among_many_all_take_the_fast_path() {
    let test = "forty_mounts_among_many_all_take_the_fast_path";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    if !have_strace(test) {
        return;
    }
    let _run_dir = PrivateRunDir::new();
    let n_bt = env_u64("BTFUSE_MANY_MOUNTS", 40) as usize;
    let n_tmpfs = env_u64("BTFUSE_MANY_TMPFS", 100) as usize;
    let tmpfs = in_parallel(n_tmpfs, || TmpfsGuard::new("1m"));
    let churn = Churn::start();
    let mounts = in_parallel(n_bt, || BtfuseGuard::new("1M"));
    let paths: Vec<String> = mounts
        .iter()
        .map(|b| b.path().display().to_string())
        .collect();
    for p in &paths {
        std::fs::write(Path::new(p).join("f"), format!("{p}\n")).unwrap();
        assert!(registry_lists(Path::new(p)), "{p} not in the registry");
    }
    let out = run_timeout(
        Command::new(PYTHON)
            .args(["-c", READ_ALL])
            .args(&paths)
            .env("LD_PRELOAD", &lib),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "preloaded reads failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = |mounts: &[BtfuseGuard]| -> Vec<u64> {
        mounts
            .iter()
            .map(|b| stat_value(&stats(b.path()), "fast-path requests"))
            .collect()
    };
    let missed = |before: &[u64], after: &[u64]| -> Vec<String> {
        let gained = before.iter().zip(after).map(|(b, a)| a > b);
        paths
            .iter()
            .zip(gained)
            .filter(|(_, g)| !g)
            .map(|(p, _)| p.clone())
            .collect()
    };
    let none = vec![0; n_bt];
    let by_registry = served(&mounts);
    assert_eq!(
        missed(&none, &by_registry),
        Vec::<String>::new(),
        "no fast path"
    );
    let last = mounts.last().unwrap().path();
    let file = last.join("f").display().to_string();
    let calls = mount_syscalls(Some(&lib), last, Path::new("/"), &["cat", &file], &[]);
    assert!(
        calls.is_empty(),
        "cat on the last of {n_bt} mounts entered the kernel:\n{}",
        calls.join("\n")
    );
    let rounds = churn.finish();
    // Without a registry (as in another view), a process reads mountinfo
    // itself, all of it (well over 8 KiB here), and finds every mount too.
    let registry_file = run_dir().join(proto::mountinfo::REGISTRY_FILE);
    let registry = std::fs::read(&registry_file).unwrap();
    std::fs::remove_file(&registry_file).unwrap();
    let mountinfo = std::fs::read("/proc/self/mountinfo").unwrap().len();
    let out = run_timeout(
        Command::new(PYTHON)
            .args(["-c", READ_ALL])
            .args(&paths)
            .env("LD_PRELOAD", &lib),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_mountinfo = served(&mounts);
    assert_eq!(
        missed(&by_registry, &by_mountinfo),
        Vec::<String>::new(),
        "no fast path from mountinfo ({mountinfo} bytes)"
    );
    eprintln!(
        "{n_bt} btfuse + {n_tmpfs} tmpfs mounts: all served by the fast path, found in a \
         registry of {} bytes and in a mountinfo of {mountinfo} bytes; {rounds} \
         mount/unmount rounds of another daemon meanwhile",
        registry.len()
    );
    drop(mounts);
    drop(tmpfs);
}
