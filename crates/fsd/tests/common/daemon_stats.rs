//! What a daemon reports of itself (`btfuse stats`), read by the tests.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::{btfuse_bin, run_timeout};

/// `btfuse stats MOUNT` output.
pub fn stats(m: &Path) -> String {
    let out = run_timeout(
        Command::new(btfuse_bin()).arg("stats").arg(m),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "btfuse stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The leading number of the `key` line of a stats report.
pub fn stat_value(text: &str, key: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("{key} missing:\n{text}"));
    line[key.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits (bounded) until the daemon holds no fast-path client, channel or
/// handle (and, with `all_handles`, no open handle of either door beyond
/// the FUSE door's one of the root directory, which the kernel never forgets).
pub fn wait_reclaimed(m: &Path, timeout: Duration, all_handles: bool) -> String {
    let deadline = Instant::now() + timeout;
    if all_handles {
        // The FUSE door keeps one handle per directory the kernel has
        // opened until the kernel forgets the directory: make it forget
        // the ones nobody uses any more. It never forgets the root, whose
        // handle (once listed) stays: at most one.
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "2");
    }
    loop {
        let s = stats(m);
        let idle = stat_value(&s, "fast-path channels") == 0
            && stat_value(&s, "fast-path handles") == 0
            && stat_value(&s, "fast-path clients") == 0
            && (!all_handles || stat_value(&s, "open handles (all)") <= 1);
        if idle {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon kept state of gone clients:\n{s}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The fast-path requests of operation `op` a stats report counts.
pub fn fast_path_count(m: &Path, op: &str) -> u64 {
    door_count(m, "fast-path door", op)
}

/// The requests of operation `op` that the stats report counts in the
/// section of `door` ("fast-path door", "FUSE door").
pub fn door_count(m: &Path, door: &str, op: &str) -> u64 {
    let s = stats(m);
    let section = s
        .split(door)
        .nth(1)
        .unwrap_or_else(|| panic!("no {door} section:\n{s}"));
    section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&op))
        .map_or(0, |w| w[1].parse().unwrap())
}
