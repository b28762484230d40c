//! One thread waiting on many channels' doorbells at once.
//!
//! [`wait_any`] announces sleep on every consumer's doorbell, re-checks
//! every ring (the same Dekker handshake as a single wait, see
//! [`crate::doorbell`]), then sleeps in one `futex_waitv(2)` over all the
//! doorbell words. A producer that publishes on any of them sees its
//! consumer "sleeping", swaps the word to AWAKE and calls `futex_wake`, which
//! ends the wait.
//!
//! ## Why `futex_waitv`
//!
//! Measured on this machine (2 vCPU VM, Linux 6.18) with `benches/ring.rs`:
//! sleep-mode round trip (both sides asleep on every message) where the
//! serving side waits on N channels and channel 0 is the active one,
//! medians of 5 interleaved runs of 10 000 round trips:
//!
//! | serving side waits with            | round trip |
//! | ---------------------------------- | ---------- |
//! | single futex (`Consumer::recv`)    | 4.3 µs     |
//! | `futex_waitv` (`wait_any`), N = 1  | 4.4 µs     |
//! | `futex_waitv` (`wait_any`), N = 16 | 7.2 µs     |
//! | `futex_waitv` (`wait_any`), N = 64 | 5.0 µs     |
//! | epoll + eventfd, N = 1 / 64        | 4.2 µs     |
//!
//! Sleep-mode figures on this shared VM swing by 10x between runs (another
//! run gave 42-45 µs for every variant alike); within one run the variants
//! are within noise of each other. So the choice is made on the other
//! costs:
//!
//! * `futex_waitv` needs nothing from the client beyond what a single-channel
//!   wait needs: the producer's wake is the same `futex_wake` on the same
//!   doorbell word, issued only when the daemon announced sleep. No extra fd,
//!   no extra syscall on the client's fast path.
//! * `epoll` + one `eventfd` per channel needs an fd per channel in the
//!   client (which a preloaded library must hide from programs that close
//!   fds they did not open) and a `write(eventfd)` syscall on every wake;
//!   no faster in the table above.
//! * `io_uring` `FUTEX_WAIT` ops (6.7+) need a ring per serving thread and
//!   the `io-uring` dependency for the same kernel wait; no gain for a
//!   synchronous server.
//! * A single daemon-wide doorbell word would need memory that every client
//!   can write: one hostile client could then spin it or keep it AWAKE and
//!   starve the wakeups of all others. Per-channel doorbells keep a
//!   client's reach inside its own region.
//!
//! The limit is 128 words per call (the kernel's `FUTEX_WAITV_MAX`); a
//! thread serving more channels splits them over several threads.

use crate::doorbell;
use crate::ring::Consumer;
use crate::sys::{self, Errno, FutexWait, FutexWaitv, FUTEX2_SIZE_U32, FUTEX_WAITV_MAX};

/// Result of [`wait_any`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitAny {
    /// At least one consumer may be ready (data, closed or corrupt), or the
    /// wait was interrupted: poll them all with `try_recv`.
    Ready,
    /// Nothing happened within the timeout.
    TimedOut,
}

/// Most consumers one [`wait_any`] call accepts.
pub const MAX_WAIT_ANY: usize = FUTEX_WAITV_MAX;

/// Sleeps until one of `consumers` has a message (or is closed/corrupt), or
/// `timeout_ns` passes. Returns at once if one is already ready. Spurious
/// `Ready` results are possible; callers poll every consumer afterwards.
///
/// Errors: `EINVAL` for more than [`MAX_WAIT_ANY`] consumers; on a kernel
/// without `futex_waitv` (before 5.16) it falls back to 1 ms naps.
pub fn wait_any(consumers: &[&Consumer<'_>], timeout_ns: u64) -> Result<WaitAny, Errno> {
    if consumers.len() > MAX_WAIT_ANY {
        return Err(Errno(libc::EINVAL));
    }
    if consumers.is_empty() {
        return Ok(WaitAny::TimedOut);
    }
    // S1+S2 for every channel (announce_sleep includes the SeqCst fence).
    for c in consumers {
        doorbell::announce_sleep(c.bell());
    }
    let cancel_all = || {
        for c in consumers {
            doorbell::cancel_sleep(c.bell());
        }
    };
    // S3: re-check every ring after announcing.
    if consumers.iter().any(|c| c.is_ready()) {
        cancel_all();
        return Ok(WaitAny::Ready);
    }
    let mut entries = [FutexWaitv::default(); FUTEX_WAITV_MAX];
    for (e, c) in entries.iter_mut().zip(consumers) {
        *e = FutexWaitv {
            val: doorbell::SLEEPING as u64,
            uaddr: c.bell().as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        };
    }
    // S4 over all doorbells at once.
    let outcome = match sys::futex_waitv(&entries[..consumers.len()], timeout_ns) {
        Ok(w) => w,
        Err(_) => {
            // No futex_waitv: nap on the first bell and report Ready so the
            // caller polls (degraded, but never a hang or a lost message).
            doorbell::sleep(consumers[0].bell(), timeout_ns.min(1_000_000));
            FutexWait::Woken
        }
    };
    cancel_all();
    match outcome {
        FutexWait::TimedOut if !consumers.iter().any(|c| c.is_ready()) => Ok(WaitAny::TimedOut),
        _ => Ok(WaitAny::Ready),
    }
}
