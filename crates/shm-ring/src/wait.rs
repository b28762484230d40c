//! Adaptive waiting: spin, then (optionally) yield, then sleep on the
//! doorbell futex in slices, checking the peer's liveness after every slice
//! that brought no progress.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::doorbell;
use crate::sys;

/// How a blocking call waits. All durations are in nanoseconds.
///
/// The default spins for 50 µs (a peer that is awake answers in well under
/// a microsecond), then sleeps on the futex in 100 ms slices, checking the
/// peer's liveness after each slice, with no overall timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Busy-wait budget (`spin_loop` hint) before yielding or sleeping.
    pub spin_ns: u64,
    /// `sched_yield` budget after spinning, before sleeping (0 = none).
    pub yield_ns: u64,
    /// Longest single futex sleep; after a slice with no progress the
    /// liveness check runs. Clamped to at least 1 µs.
    pub sleep_slice_ns: u64,
    /// Overall limit of one blocking call; `None` = wait as long as the peer
    /// is alive.
    pub timeout_ns: Option<u64>,
}

impl WaitPolicy {
    /// Spin 50 µs, then sleep in 100 ms slices, no timeout.
    pub const DEFAULT: WaitPolicy = WaitPolicy {
        spin_ns: 50_000,
        yield_ns: 0,
        sleep_slice_ns: 100_000_000,
        timeout_ns: None,
    };
    /// Sleep at once (no spinning): lowest CPU use, ~10 µs wake cost.
    pub const SLEEP: WaitPolicy = WaitPolicy {
        spin_ns: 0,
        ..WaitPolicy::DEFAULT
    };

    /// A policy that spins for `spin_ns` before sleeping.
    pub const fn spinning(spin_ns: u64) -> WaitPolicy {
        WaitPolicy {
            spin_ns,
            ..WaitPolicy::DEFAULT
        }
    }

    /// The same policy with an overall timeout.
    pub const fn with_timeout_ns(self, timeout_ns: u64) -> WaitPolicy {
        WaitPolicy {
            timeout_ns: Some(timeout_ns),
            ..self
        }
    }

    /// The same policy with another sleep slice (liveness-check period).
    pub const fn with_sleep_slice_ns(self, sleep_slice_ns: u64) -> WaitPolicy {
        WaitPolicy {
            sleep_slice_ns,
            ..self
        }
    }

    /// The same policy with an overall timeout.
    #[cfg(feature = "std")]
    pub fn with_timeout(self, timeout: std::time::Duration) -> WaitPolicy {
        self.with_timeout_ns(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The same policy with a spin budget.
    #[cfg(feature = "std")]
    pub fn with_spin(self, spin: std::time::Duration) -> WaitPolicy {
        WaitPolicy {
            spin_ns: u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX),
            ..self
        }
    }
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy::DEFAULT
    }
}

/// Tells a waiting side whether its peer still lives. Runs only after a
/// sleep slice passed with no progress, so it may make a syscall.
pub trait Liveness {
    /// `false` once the peer is known to be gone.
    fn is_alive(&mut self) -> bool;
}

impl<F: FnMut() -> bool> Liveness for F {
    fn is_alive(&mut self) -> bool {
        self()
    }
}

/// A [`Liveness`] that never declares the peer dead (use with a timeout).
#[derive(Clone, Copy, Debug, Default)]
pub struct AssumeAlive;

impl Liveness for AssumeAlive {
    fn is_alive(&mut self) -> bool {
        true
    }
}

/// `kill(pid, 0)` liveness. Cheap, but a zombie counts as alive and a pid
/// can be reused: prefer [`Pidfd`] when the kernel has it (5.3+).
#[derive(Clone, Copy, Debug)]
pub struct PidAlive(pub i32);

impl Liveness for PidAlive {
    fn is_alive(&mut self) -> bool {
        sys::pid_exists(self.0)
    }
}

/// A pidfd: reports death exactly (zombies count as dead) and is immune to
/// pid reuse. Closed on drop.
#[derive(Debug)]
pub struct Pidfd {
    fd: i32,
}

impl Pidfd {
    /// `pidfd_open(pid)`. Open it while the pid is known to be the peer
    /// (e.g. right after `SO_PEERCRED` or `fork`).
    pub fn open(pid: i32) -> Result<Pidfd, sys::Errno> {
        sys::pidfd_open(pid).map(|fd| Pidfd { fd })
    }

    /// The raw descriptor (still owned by `self`).
    pub fn as_raw_fd(&self) -> i32 {
        self.fd
    }
}

impl Liveness for Pidfd {
    fn is_alive(&mut self) -> bool {
        !sys::pidfd_exited(self.fd)
    }
}

impl Drop for Pidfd {
    fn drop(&mut self) {
        sys::close(self.fd);
    }
}

/// Why a blocking wait gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Blocked {
    PeerDead,
    TimedOut,
}

/// Whether the peer last ran on the CPU we run on now (per its hint): then
/// spinning would only keep it from running.
fn peer_on_our_cpu(peer_cpu: Option<&AtomicU32>) -> bool {
    // Relaxed: a hint.
    peer_cpu.is_some_and(|c| {
        let theirs = c.load(Ordering::Relaxed);
        theirs != 0 && theirs == sys::cpu_hint()
    })
}

/// Runs `attempt` until it yields `Some`, following `policy`: spin, yield,
/// then announce-and-sleep on `bell` (see [`crate::doorbell`]). `attempt`
/// must re-read the shared index it depends on every time it is called
/// (the doorbell protocol relies on that re-check after `announce_sleep`).
///
/// `peer_cpu` is the peer's CPU hint, if it publishes one: while the peer
/// was last seen on our own CPU, spinning is skipped (and stopped): the
/// peer cannot make progress while we hold the CPU, and sleeping at once
/// hands it over in a context switch. (On a 2-vCPU VM the scheduler often
/// wakes a daemon thread on its client's CPU; spinning there made each
/// round trip wait for a scheduler tick.)
pub(crate) fn block_on<R, L: Liveness + ?Sized>(
    policy: &WaitPolicy,
    bell: &AtomicU32,
    peer_cpu: Option<&AtomicU32>,
    peer: &mut L,
    mut attempt: impl FnMut() -> Option<R>,
) -> Result<R, Blocked> {
    if let Some(r) = attempt() {
        return Ok(r);
    }
    let start = sys::monotonic_ns();
    let deadline = policy.timeout_ns.map(|t| start.saturating_add(t));
    let past = |now: u64, limit: u64| now.saturating_sub(start) >= limit;

    // Phase 1: spin. The clock and the peer's CPU are read every 64
    // iterations only.
    if policy.spin_ns > 0 && !peer_on_our_cpu(peer_cpu) {
        let mut i: u32 = 0;
        loop {
            if let Some(r) = attempt() {
                return Ok(r);
            }
            core::hint::spin_loop();
            i = i.wrapping_add(1);
            if i & 63 == 0 {
                let now = sys::monotonic_ns();
                if past(now, policy.spin_ns)
                    || deadline.is_some_and(|d| now >= d)
                    || peer_on_our_cpu(peer_cpu)
                {
                    break;
                }
            }
        }
    }
    // Phase 2: yield.
    if policy.yield_ns > 0 {
        let limit = policy.spin_ns.saturating_add(policy.yield_ns);
        loop {
            if let Some(r) = attempt() {
                return Ok(r);
            }
            sys::sched_yield();
            let now = sys::monotonic_ns();
            if past(now, limit) || deadline.is_some_and(|d| now >= d) {
                break;
            }
        }
    }
    // Phase 3: sleep in slices.
    let slice = policy.sleep_slice_ns.max(1_000);
    let mut next_check = sys::monotonic_ns().saturating_add(slice);
    loop {
        doorbell::announce_sleep(bell);
        if let Some(r) = attempt() {
            doorbell::cancel_sleep(bell);
            return Ok(r);
        }
        let now = sys::monotonic_ns();
        if deadline.is_some_and(|d| now >= d) {
            doorbell::cancel_sleep(bell);
            return Err(Blocked::TimedOut);
        }
        if now >= next_check {
            if !peer.is_alive() {
                doorbell::cancel_sleep(bell);
                return Err(Blocked::PeerDead);
            }
            next_check = now.saturating_add(slice);
        }
        let mut nap = next_check - now;
        if let Some(d) = deadline {
            nap = nap.min(d - now);
        }
        doorbell::sleep(bell, nap);
    }
}
