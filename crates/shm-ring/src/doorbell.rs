//! The doorbell: the sleep/wake handshake on one futex word, written once
//! and shared by both rings, both directions and the multi-channel wait.
//!
//! A ring has two doorbell words, `consumer_sleeping` ("I wait for data") and
//! `producer_sleeping` ("I wait for space"). Each holds [`AWAKE`] or
//! [`SLEEPING`]. The protocol is a Dekker handshake between the *index*
//! (head for data, tail for space, or the `closed` word) and the *doorbell*:
//!
//! ```text
//!  waker (after publishing)             sleeper
//!  ------------------------             -------
//!  W1 index.store(new, Release)         S1 bell.store(SLEEPING, Relaxed)
//!  W2 fence(SeqCst)                     S2 fence(SeqCst)
//!  W3 if bell.load(Relaxed)==SLEEPING   S3 if index.load(Acquire) changed:
//!  W4   && bell.swap(AWAKE)==SLEEPING        bell.store(AWAKE); done
//!  W5     futex_wake(bell)              S4 futex_wait(bell, SLEEPING, slice)
//! ```
//!
//! **Why no wakeup can be lost.** The two `SeqCst` fences W2 and S2 are
//! totally ordered.
//! * If W2 precedes S2, then W1 (sequenced before W2) is visible to S3
//!   (sequenced after S2) by the fence-fence rule: the sleeper sees the new
//!   index and does not sleep.
//! * If S2 precedes W2, then W3 reads S1's `SLEEPING` (or a later value of
//!   the word), so the waker swaps it to `AWAKE` and calls `futex_wake`. If
//!   the swap returns `AWAKE` instead, the sleeper itself already cancelled
//!   (it saw the index) or was woken, and re-checks before sleeping again.
//! * S4 is `FUTEX_WAIT(bell, SLEEPING)`: the kernel compares the word and
//!   queues the waiter atomically with respect to `FUTEX_WAKE` on the same
//!   word (hash-bucket lock + barriers). If W4 ran before S4 the word is
//!   `AWAKE` and S4 returns `EAGAIN` at once; if S4 queued first, W5 wakes
//!   it. A wake that returns the waiter also orders everything before W5
//!   before everything after S4, so the re-check after waking sees W1.
//!
//! The fast path costs the waker one `SeqCst` fence and one load of a cache
//! line that is only written when someone goes to sleep (so it stays shared
//! in both caches): no syscall and no RMW while both sides spin.
//!
//! Every sleep has a timeout (the caller's slice), so a corrupted doorbell
//! word written by a hostile peer can only cause spurious wakeups or a nap
//! of one slice, never a hang.
//!
//! Under `cfg(loom)` the atomics and the futex are loom's (see
//! `tests/loom.rs`, which model-checks exactly these functions). The
//! functions are `pub` (in a private module) only so that model can reach
//! them through `shm_ring::__loom` under that cfg.
#![allow(unreachable_pub)]

#[cfg(not(loom))]
pub use core::sync::atomic::{fence, AtomicU32, Ordering};
#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicU32, Ordering};

use crate::sys::FutexWait;

/// Doorbell value: nobody sleeps on this word.
pub const AWAKE: u32 = 0;
/// Doorbell value: the side that owns this word may be asleep in `futex_wait`.
pub const SLEEPING: u32 = 1;

/// S1+S2: announce that the caller is about to sleep on `bell`. The caller
/// must re-check its condition (S3) after this and before [`sleep`].
#[inline]
pub fn announce_sleep(bell: &AtomicU32) {
    // Relaxed: ordering against the index re-check comes from the fence.
    bell.store(SLEEPING, Ordering::Relaxed);
    // SeqCst: the Dekker fence S2, paired with the waker's fence W2.
    fence(Ordering::SeqCst);
}

/// Withdraw an announcement (the condition turned true, or the wait ended).
#[inline]
pub fn cancel_sleep(bell: &AtomicU32) {
    // Relaxed: only saves the peer a useless wake; correctness never
    // depends on it (a stale SLEEPING costs one futex_wake).
    bell.store(AWAKE, Ordering::Relaxed);
}

/// W2..W5: called by the waker right after its `Release` store of the
/// index/closed word. Issues `futex_wake` only if the peer announced sleep.
/// Returns whether a wake syscall was made.
#[inline]
pub fn ring(bell: &AtomicU32) -> bool {
    // SeqCst: the Dekker fence W2, paired with the sleeper's fence S2.
    fence(Ordering::SeqCst);
    // Relaxed load first: the common case (peer spinning) stays a plain
    // read of a line nobody is writing.
    if bell.load(Ordering::Relaxed) == SLEEPING
        // Relaxed swap: the fence above already ordered our publication;
        // the swap only makes sure exactly one waker pays for the syscall.
        && bell.swap(AWAKE, Ordering::Relaxed) == SLEEPING
    {
        futex::wake(bell);
        return true;
    }
    false
}

/// S4: sleep while `bell` still reads `SLEEPING`, for at most `timeout_ns`.
#[inline]
pub fn sleep(bell: &AtomicU32, timeout_ns: u64) -> FutexWait {
    futex::wait(bell, SLEEPING, timeout_ns)
}

#[cfg(not(loom))]
mod futex {
    use super::AtomicU32;
    use crate::sys::{futex_wait, futex_wake, FutexWait};

    #[inline]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout_ns: u64) -> FutexWait {
        futex_wait(word, expected, timeout_ns)
    }

    #[inline]
    pub(super) fn wake(word: &AtomicU32) {
        futex_wake(word, i32::MAX);
    }
}

/// A model of the kernel futex for loom: one bucket (mutex + condvar) for
/// every address. `wait` checks the value and blocks atomically with respect
/// to `wake`, which is exactly the guarantee the kernel gives. The model has
/// no timeouts: a lost wakeup therefore shows up as a loom deadlock.
#[cfg(loom)]
mod futex {
    use super::{AtomicU32, Ordering};
    use crate::sys::FutexWait;
    use loom::sync::{Condvar, Mutex};

    loom::lazy_static! {
        static ref BUCKET: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32, _timeout_ns: u64) -> FutexWait {
        let (lock, cv) = &*BUCKET;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::Acquire) != expected {
            return FutexWait::Mismatch;
        }
        drop(cv.wait(guard).unwrap());
        FutexWait::Woken
    }

    pub(super) fn wake(_word: &AtomicU32) {
        let (lock, cv) = &*BUCKET;
        let _guard = lock.lock().unwrap();
        cv.notify_all();
    }
}
