//! The queue threads' scheduling class, which follows the machine's load
//! (see [`Yielding`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A queue thread's scheduling class: `SCHED_IDLE` while the machine has
/// CPUs to spare, normal otherwise.
///
/// A reply wakes its caller, and the scheduler puts a woken task on an idle
/// CPU when there is one: the other vCPU, halted, which the host must wake
/// (40–80 µs here), and the caller's next request then goes to that CPU's
/// queue. A CPU that runs only `SCHED_IDLE` tasks counts as idle to the
/// scheduler: the caller is woken on the CPU it ran on, where the queue
/// thread just answered it, and takes that CPU at once. Python reading
/// 5 000 files (one round trip each): 226–362 ms against 666–924 with
/// queue threads of the normal class (tmpfs 152–173). But a `SCHED_IDLE`
/// thread waits behind every normal one: a caller sharing its CPU with a
/// CPU-bound task waited 93 µs a round trip against 11 µs. So the class
/// follows the load: normal while the machine's runnable tasks (the
/// `/proc/loadavg` count, read at most every [`LOAD_EVERY`] by one of the
/// mount's queue threads) fill its CPUs.
#[derive(Default)]
pub(super) struct Yielding {
    /// Whether this thread is `SCHED_IDLE` now.
    idle: bool,
}

/// How often the load is read again while requests come.
const LOAD_EVERY: Duration = Duration::from_millis(10);

/// The last reading of the load, shared by every queue thread.
static LOAD: Load = Load {
    read_at: AtomicU64::new(0),
    busy: AtomicBool::new(true),
};

struct Load {
    /// When it was read (ns since [`load_epoch`]; 0: never).
    read_at: AtomicU64,
    /// Whether the runnable tasks filled the CPUs then.
    busy: AtomicBool,
}

/// The clock of [`Load::read_at`].
fn load_epoch() -> &'static Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now)
}

impl Yielding {
    /// Reads the load if it is due and takes the class it calls for.
    pub(super) fn follow_the_load(&mut self) {
        let now = load_epoch().elapsed().as_nanos() as u64 + 1;
        let last = LOAD.read_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOAD_EVERY.as_nanos() as u64
            && LOAD
                .read_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            if let Some(busy) = machine_busy() {
                LOAD.busy.store(busy, Ordering::Relaxed);
            }
        }
        let idle = !LOAD.busy.load(Ordering::Relaxed);
        if idle != self.idle {
            let policy = if idle {
                libc::SCHED_IDLE
            } else {
                libc::SCHED_OTHER
            };
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: a valid policy and parameter for this thread (0).
            if unsafe { libc::sched_setscheduler(0, policy, &param) } == 0 {
                self.idle = idle;
            }
        }
    }
}

/// Whether the machine's runnable tasks fill its online CPUs (`None` when
/// unknown).
fn machine_busy() -> Option<bool> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let running = runnable_tasks(&text)?;
    // SAFETY: no arguments; -1 on failure.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    Some(running >= u64::try_from(cpus).ok()?.max(1))
}

/// The runnable tasks of a `/proc/loadavg` line ("0.10 0.20 0.30 2/345 678":
/// the fourth field's numerator; the reader itself is one of them).
fn runnable_tasks(loadavg: &str) -> Option<u64> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runnable_tasks_are_the_fourth_fields_numerator() {
        assert_eq!(runnable_tasks("0.10 0.20 0.30 2/345 678\n"), Some(2));
        assert_eq!(runnable_tasks("0.10 0.20 0.30 17/1200 9"), Some(17));
        assert_eq!(runnable_tasks("garbage"), None);
    }
}
