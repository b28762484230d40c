//! A stopped daemon is a live daemon: preloaded clients wait for it as a
//! kernel FUSE caller waits, and keep every open file once it continues.
//!
//! Knob: `BTFUSE_STOP_SECS` (default `2,10,30`): the stop durations, one
//! mount each, all stopped at once (the test takes about the longest).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A preloaded client under load: one thread reads, writes, truncates and
/// stats four files it keeps open for its whole life (fast-path fds), one
/// creates, writes, reads back, stats, renames and removes files by path;
/// each checks every answer. The main thread prints `ready` once both ran
/// one round, then `P <fd rounds> <path rounds>` every 50 ms; at the end
/// (argv[2] exists) `E <what>` for each failure and `DONE`.
const CLIENT: &str = r#"
import os, sys, threading, time
d, stop = sys.argv[1], sys.argv[2]
counts = [0, 0]
errors = []

def fd_loop():
    fds = [os.open(os.path.join(d, "k%d" % i), os.O_RDWR | os.O_CREAT, 0o644) for i in range(4)]
    n = 0
    while not os.path.exists(stop):
        for i, fd in enumerate(fds):
            data = (b"%d:%d\n" % (n, i)) * (1 + n % 7)
            os.ftruncate(fd, 0)
            if os.pwrite(fd, data, 0) != len(data):
                raise AssertionError("short write")
            if os.pread(fd, 4096, 0) != data:
                raise AssertionError("k%d: read back other data" % i)
            if os.fstat(fd).st_size != len(data):
                raise AssertionError("k%d: fstat size" % i)
            os.lseek(fd, 1, os.SEEK_SET)
            if os.read(fd, len(data)) != data[1:]:
                raise AssertionError("k%d: read at offset" % i)
        n += 1
        counts[0] = n
    # Every fd still works after the last round, and closes cleanly.
    for fd in fds:
        os.fstat(fd)
        os.close(fd)

def path_loop():
    n = 0
    while not os.path.exists(stop):
        p = os.path.join(d, "p%d" % (n % 8))
        data = b"path %d\n" % n
        with open(p, "wb") as f:
            f.write(data)
        if os.stat(p).st_size != len(data):
            raise AssertionError("stat size of " + p)
        with open(p, "rb") as f:
            if f.read() != data:
                raise AssertionError("read back " + p)
        os.rename(p, p + ".moved")
        os.unlink(p + ".moved")
        n += 1
        counts[1] = n

def run(fn):
    try:
        fn()
    except OSError as e:
        errors.append("%s: errno %d (%s)" % (fn.__name__, e.errno, e))
    except Exception as e:
        errors.append("%s: %r" % (fn.__name__, e))

threads = [threading.Thread(target=run, args=(f,)) for f in (fd_loop, path_loop)]
for t in threads:
    t.start()
while (counts[0] == 0 or counts[1] == 0) and not errors and any(t.is_alive() for t in threads):
    time.sleep(0.01)
print("ready", flush=True)
while any(t.is_alive() for t in threads):
    print("P %d %d" % (counts[0], counts[1]), flush=True)
    time.sleep(0.05)
for e in errors:
    print("E " + e, flush=True)
print("DONE", flush=True)
"#;

/// The client's output lines, read by a thread of their own.
struct Lines {
    rx: Receiver<String>,
    /// The last progress line: rounds of each loop.
    progress: (u64, u64),
    /// Every line that is not progress.
    other: Vec<String>,
}

impl Lines {
    fn new(out: std::process::ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            progress: (0, 0),
            other: Vec::new(),
        }
    }

    /// Takes lines until `done` holds for what was read (true) or
    /// `timeout` passes or the output ends (false).
    fn until(&mut self, timeout: Duration, mut done: impl FnMut(&Lines) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.rx.recv_timeout(left) else {
                return false;
            };
            match line.strip_prefix("P ").and_then(|p| p.split_once(' ')) {
                Some((a, b)) => self.progress = (a.parse().unwrap(), b.parse().unwrap()),
                None => self.other.push(line),
            }
        }
        true
    }
}

/// What one stop/continue run saw.
struct Outcome {
    stop: Duration,
    /// Rounds (fd loop, path loop) made while the daemon was stopped
    /// (after the first second, by which calls in flight are waiting).
    during_stop: (u64, u64),
    /// How long after SIGCONT both loops made 5 more rounds.
    resumed_after: Duration,
    /// Fast-path requests the daemon served after SIGCONT.
    fast_requests_after: u64,
}

/// Mounts, starts a client, stops the daemon for `stop`, continues it and
/// checks that the client carries on with its open files.
fn stop_and_continue(lib: &str, stop: Duration) -> Outcome {
    let bt = BtfuseGuard::new("64M");
    let m = bt.path().to_path_buf();
    // Dropped after the client (killed on drop), also on panic.
    let stop_file = StopFile(PathBuf::from(format!("{}.stop", m.display())));
    let mut client = Proc(
        Command::new(PYTHON)
            .args(["-c", CLIENT])
            .arg(&m)
            .arg(&stop_file.0)
            .env("LD_PRELOAD", lib)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = Lines::new(client.0.stdout.take().unwrap());
    assert!(
        lines.until(Duration::from_secs(60), |l| !l.other.is_empty()),
        "client never got ready"
    );
    assert_eq!(lines.other, ["ready"], "client failed before the stop");
    lines.other.clear();
    // Its files are open through the fast path.
    let s = stats(&m);
    assert!(stat_value(&s, "fast-path handles") >= 4, "{s}");
    let cont = Cont(bt.pid());
    signal(bt.pid(), libc::SIGSTOP);
    thread::sleep(Duration::from_secs(1));
    lines.until(Duration::from_millis(100), |_| false);
    let at_stop = lines.progress;
    // A process started during the stop (its first channel gets no answer,
    // so its calls go to the kernel, which waits too) finishes after it.
    let mut newcomer = Proc(
        Command::new(PYTHON)
            .args(["-c", "import os, sys; os.stat(sys.argv[1] + '/k0')"])
            .arg(&m)
            .env("LD_PRELOAD", lib)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    thread::sleep(stop.saturating_sub(Duration::from_secs(1)));
    lines.until(Duration::from_millis(100), |_| false);
    let before_cont = lines.progress;
    drop(cont);
    let continued = Instant::now();
    let requests_at_cont = stat_value(&stats(&m), "fast-path requests");
    let (a, b) = before_cont;
    assert!(
        lines.until(Duration::from_secs(60), |l| l.progress.0 >= a + 5
            && l.progress.1 >= b + 5
            || !l.other.is_empty()),
        "client made no progress after SIGCONT (stopped {stop:?}): {before_cont:?} -> {:?}, {:?}",
        lines.progress,
        lines.other
    );
    let resumed_after = continued.elapsed();
    let st = wait_timeout(&mut newcomer.0, Duration::from_secs(60)).expect("newcomer exit");
    assert!(
        st.success(),
        "a process started during the stop failed: {st}"
    );
    assert!(
        lines.other.is_empty(),
        "client failed after a stop of {stop:?}: {:?}",
        lines.other
    );
    let fast_requests_after = stat_value(&stats(&m), "fast-path requests") - requests_at_cont;
    stop_file.tell();
    assert!(
        lines.until(Duration::from_secs(60), |l| l
            .other
            .last()
            .is_some_and(|l| l == "DONE")),
        "client did not finish: {:?}",
        lines.other
    );
    assert_eq!(
        lines.other,
        ["DONE"],
        "client failed after a stop of {stop:?}"
    );
    let st = wait_timeout(&mut client.0, Duration::from_secs(30)).expect("client exit");
    assert!(st.success(), "client exit status {st}");
    // The files hold what the client wrote last, seen through the kernel.
    for i in 0..4 {
        let data = std::fs::read(m.join(format!("k{i}"))).unwrap();
        let text = String::from_utf8(data).unwrap();
        assert!(text.ends_with(&format!(":{i}\n")), "k{i}: {text:?}");
    }
    Outcome {
        stop,
        during_stop: (before_cont.0 - at_stop.0, before_cont.1 - at_stop.1),
        resumed_after,
        fast_requests_after,
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// SIGCONTs the daemon on drop, so no test leaves it stopped.
struct Cont(u32);

impl Drop for Cont {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

/// The file whose existence tells the client to finish; removed on drop.
struct StopFile(PathBuf);

impl StopFile {
    fn tell(&self) {
        std::fs::write(&self.0, b"").unwrap();
    }
}

impl Drop for StopFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Stop durations from `BTFUSE_STOP_SECS`.
fn stop_durations() -> Vec<Duration> {
    std::env::var("BTFUSE_STOP_SECS")
        .unwrap_or_else(|_| "2,10,30".into())
        .split(',')
        .map(|s| Duration::from_secs(s.trim().parse().expect("BTFUSE_STOP_SECS")))
        .collect()
}

/// Daemons stopped (SIGSTOP) for 2, 10 and 30 s while preloaded clients
/// read, write and stat on open fast-path fds and on paths: the calls wait,
/// and after SIGCONT every client goes on with its open files, through the
/// fast path, with no error and the right data; a process started during
/// the stop completes after it.
#[test]
fn a_stopped_daemon_keeps_its_clients_and_their_open_files() {
    let test = "a_stopped_daemon_keeps_its_clients_and_their_open_files";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let runs: Vec<_> = stop_durations()
        .into_iter()
        .map(|stop| {
            let lib = lib.clone();
            thread::spawn(move || stop_and_continue(&lib, stop))
        })
        .collect();
    let mut failed = Vec::new();
    for r in runs {
        match r.join() {
            Ok(o) => {
                eprintln!(
                    "stopped {:?}: rounds while stopped {:?}, both loops 5 rounds on {:?} \
                     after SIGCONT, {} fast-path requests after",
                    o.stop, o.during_stop, o.resumed_after, o.fast_requests_after
                );
                assert!(o.fast_requests_after > 0, "no fast path after SIGCONT");
            }
            Err(e) => failed.push(e),
        }
    }
    if let Some(e) = failed.pop() {
        std::panic::resume_unwind(e);
    }
}
