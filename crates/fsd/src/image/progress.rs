//! How far a long load or save is: one process-wide record (a daemon loads
//! or saves one tree at a time), read by `btfuse stats` and by the
//! terminal progress line.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// What is running.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Nothing.
    Idle,
    /// Loading a tree (`--from` or `--image`).
    Loading,
    /// Saving an image.
    Saving,
}

/// Counters of the running load or save (Relaxed: figures for display).
pub struct Progress {
    phase: AtomicU8,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    files_done: AtomicU64,
    files_total: AtomicU64,
    started: Mutex<Option<Instant>>,
}

/// The daemon's progress record.
pub static PROGRESS: Progress = Progress {
    phase: AtomicU8::new(0),
    bytes_done: AtomicU64::new(0),
    bytes_total: AtomicU64::new(0),
    files_done: AtomicU64::new(0),
    files_total: AtomicU64::new(0),
    started: Mutex::new(None),
};

impl Progress {
    /// Starts a phase with its totals (0 = not known yet).
    pub fn begin(&self, phase: Phase, bytes_total: u64, files_total: u64) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        self.files_done.store(0, Ordering::Relaxed);
        self.set_totals(bytes_total, files_total);
        *self.started.lock() = Some(Instant::now());
    }

    /// Sets the totals once known.
    pub fn set_totals(&self, bytes_total: u64, files_total: u64) {
        self.bytes_total.store(bytes_total, Ordering::Relaxed);
        self.files_total.store(files_total, Ordering::Relaxed);
    }

    /// Counts work done.
    pub fn add(&self, bytes: u64, files: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        self.files_done.fetch_add(files, Ordering::Relaxed);
    }

    /// Ends the phase.
    pub fn end(&self) {
        self.phase.store(Phase::Idle as u8, Ordering::Relaxed);
    }

    /// The running phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Loading,
            2 => Phase::Saving,
            _ => Phase::Idle,
        }
    }

    /// `(bytes done, bytes total, files done, files total, seconds)`.
    pub fn figures(&self) -> (u64, u64, u64, u64, f64) {
        let secs = self
            .started
            .lock()
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        (
            self.bytes_done.load(Ordering::Relaxed),
            self.bytes_total.load(Ordering::Relaxed),
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
            secs,
        )
    }

    /// One line such as `saving: 512/1024 MiB, 10/20 files, 1.2 s`, or
    /// `None` when idle.
    pub fn line(&self) -> Option<String> {
        let what = match self.phase() {
            Phase::Idle => return None,
            Phase::Loading => "loading",
            Phase::Saving => "saving",
        };
        let (b, bt, f, ft, secs) = self.figures();
        Some(format!(
            "{what}: {}/{} MiB, {f}/{ft} files, {secs:.1} s",
            b >> 20,
            bt >> 20
        ))
    }
}

/// Draws `line` as the progress line on stderr, or clears it (`None`), if
/// stderr is a terminal.
pub fn show_on_terminal(line: Option<&str>) {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = match line {
            Some(l) => write!(err, "\r\x1b[Kbtfuse: {l}"),
            None => write!(err, "\r\x1b[K"),
        };
    }
}

/// While alive, redraws the progress line on stderr every 200 ms if stderr
/// is a terminal; clears it when dropped.
pub struct TerminalLine {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TerminalLine {
    /// Starts drawing `line()` (nothing if stderr is not a terminal).
    pub fn start(line: impl Fn() -> Option<String> + Send + 'static) -> TerminalLine {
        if !std::io::stderr().is_terminal() {
            return TerminalLine {
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_millis(200))
            {
                if let Some(l) = line() {
                    show_on_terminal(Some(&l));
                }
            }
            show_on_terminal(None);
        });
        TerminalLine {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TerminalLine {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
