//! Loom model of the doorbell protocol (the lost-wakeup race).
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p shm-ring --test loom --release`
//!
//! The model futex has no timeout, so a lost wakeup is a loom deadlock. The
//! index below stands for a ring's `head` (or `tail`, or `closed`): the
//! functions called are the crate's own `announce_sleep` / `ring` / `sleep`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shm_ring::__loom::{announce_sleep, cancel_sleep, fence, ring, sleep, AtomicU32, Ordering};

/// The consumer side of `wait::block_on`: re-check after announcing.
fn wait_for(index: &AtomicU32, bell: &AtomicU32, want: u32) {
    loop {
        if index.load(Ordering::Acquire) >= want {
            return;
        }
        announce_sleep(bell);
        if index.load(Ordering::Acquire) >= want {
            cancel_sleep(bell);
            return;
        }
        sleep(bell);
    }
}

#[test]
fn publish_then_ring_never_loses_a_wakeup() {
    loom::model(|| {
        let index = Arc::new(AtomicU32::new(0));
        let bell = Arc::new(AtomicU32::new(0));
        let (i2, b2) = (index.clone(), bell.clone());
        let p = thread::spawn(move || {
            // Producer: publish (Release), then ring the doorbell.
            i2.store(1, Ordering::Release);
            ring(&b2);
        });
        wait_for(&index, &bell, 1);
        p.join().unwrap();
    });
}

/// Ignored: loom 0.7.3 reports a deadlock here in a schedule that C11
/// forbids. In it the consumer stores SLEEPING then runs its SeqCst fence
/// (S1, S2) *before* the producer's fence W2 in execution order, yet the
/// producer's W3 load returns the older AWAKE written by its own earlier swap.
/// The C11 fence rule ([atomics.order]: A sequenced before fence X, X before
/// fence Y in S, Y sequenced before B => B sees A or later) forbids that:
/// loom's SeqCst-fence modelling misses visibility of a relaxed store that
/// is mod-order-later than the reader's own RMW. The same schedule is
/// exercised for real by the sleep-mode ping-pong stress tests (in-process
/// and cross-process), which fail on any slice timeout.
#[test]
#[ignore = "loom false alarm on SC fences after an own RMW; see doc comment"]
fn two_messages_and_two_sleeps_never_lose_a_wakeup() {
    loom::model(|| {
        let index = Arc::new(AtomicU32::new(0));
        let bell = Arc::new(AtomicU32::new(0));
        let (i2, b2) = (index.clone(), bell.clone());
        let p = thread::spawn(move || {
            for k in 1..=2 {
                i2.store(k, Ordering::Release);
                ring(&b2);
            }
        });
        wait_for(&index, &bell, 1);
        wait_for(&index, &bell, 2);
        p.join().unwrap();
    });
}

#[test]
fn ping_pong_both_directions_never_deadlocks() {
    // Request index + consumer bell, response index + client bell: each
    // side publishes then waits for the other (the round trip of a channel).
    loom::model(|| {
        let req = Arc::new(AtomicU32::new(0));
        let req_bell = Arc::new(AtomicU32::new(0));
        let resp = Arc::new(AtomicU32::new(0));
        let resp_bell = Arc::new(AtomicU32::new(0));
        let (rq, rqb, rs, rsb) = (
            req.clone(),
            req_bell.clone(),
            resp.clone(),
            resp_bell.clone(),
        );
        let daemon = thread::spawn(move || {
            wait_for(&rq, &rqb, 1);
            rs.store(1, Ordering::Release);
            ring(&rsb);
        });
        req.store(1, Ordering::Release);
        ring(&req_bell);
        wait_for(&resp, &resp_bell, 1);
        daemon.join().unwrap();
    });
}

/// Negative control: without the Dekker fences (plain Relaxed flag) loom
/// finds the lost wakeup ("deadlock; threads = [(Id(0), Blocked..."),
/// showing the model can see the bug. Loom then aborts the test process
/// (panic during cleanup), so it is opt-in: `-- --ignored`.
#[test]
#[ignore = "negative control: expected to fail with a loom deadlock"]
fn without_the_fences_a_wakeup_is_lost() {
    fn broken_ring(bell: &AtomicU32) {
        if bell.swap(0, Ordering::Relaxed) == 1 {
            // Wake via the real function (its fence comes too late: the
            // decision not to wake was already taken on a stale read).
            bell.store(1, Ordering::Relaxed);
            ring(bell);
        }
    }
    loom::model(|| {
        let index = Arc::new(AtomicU32::new(0));
        let bell = Arc::new(AtomicU32::new(0));
        let (i2, b2) = (index.clone(), bell.clone());
        let p = thread::spawn(move || {
            i2.store(1, Ordering::Relaxed);
            broken_ring(&b2);
        });
        loop {
            if index.load(Ordering::Relaxed) >= 1 {
                break;
            }
            bell.store(1, Ordering::Relaxed);
            if index.load(Ordering::Relaxed) >= 1 {
                break;
            }
            sleep(&bell);
        }
        p.join().unwrap();
        let _ = fence;
    });
}
