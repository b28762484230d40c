//! What the process's exit, a credential change and a `fork` do to its
//! channels.

use super::*;

/// Closes this process's channels when it exits normally (`.fini_array`):
/// each daemon thread then learns at once that its client is gone, instead
/// of after its next sleep slice. Slots another thread is using are left
/// alone (their daemon threads notice the socket hang-up instead).
///
/// The regions stay mapped: the exit that follows unmaps the whole address
/// space at once, while a `munmap` of each here costs the exiting process
/// its own page-table walk and TLB flush first (the `BTFUSE_DEBUG`
/// timeline's exit took 35–50 µs with it, 12–40 µs without, on a busy
/// machine).
pub(crate) extern "C" fn close_all_at_exit() {
    // Acquire: see `all_slots`.
    if !SLOTS_USED.load(Ordering::Acquire) {
        return;
    }
    for s in all_slots() {
        if lock_live(s) {
            close_locked_keeping_map(s);
            // Left locked: nothing may use the slot after exit began.
            s.lock.store(CLOSED_AT_EXIT, Ordering::Relaxed);
        }
    }
}

/// [`close_locked`] for the exit: the rings are marked closed and the
/// socket closed, but the region is left mapped (see
/// [`close_all_at_exit`]).
fn close_locked_keeping_map(s: &Slot) {
    let Conn {
        end, region, sock, ..
    } = take_conn(s);
    // Marks both rings closed and wakes the daemon.
    drop(end);
    core::mem::forget(region);
    sys::close(sock);
}

/// After a credential change (the epoch was bumped first): closes every
/// channel of an earlier epoch that no other thread is using right now.
/// A channel in use is closed by the next [`acquire`] that finds it stale,
/// so no request starts on an old identity's channel after this.
pub(crate) fn close_stale() {
    // Acquire: see `all_slots`.
    if !SLOTS_USED.load(Ordering::Acquire) {
        return;
    }
    let now = state::epoch();
    for s in all_slots() {
        if !lock_live(s) {
            continue;
        }
        if stale_locked(s, now) {
            close_locked(s);
        }
        // SeqCst: our teardown happens before the next holder's use, and
        // a thread parked for a slot sees it (see `wait_for_slot`).
        s.lock.store(0, Ordering::SeqCst);
        slot_freed();
    }
}

/// `fork` child: forget every channel of the parent without touching the
/// shared memory (the parent still uses it): no ring close, just unmap and
/// close our copies of the descriptors.
pub(crate) fn forget_all_after_fork() {
    // Threads of the parent waiting for a slot are not the child's.
    WAITING.store(0, Ordering::Relaxed);
    PARKED.store(0, Ordering::Relaxed);
    for slots in state::MOUNTS.all().iter().filter_map(slots_in) {
        slots.cap.store(NSLOTS as u32, Ordering::Relaxed);
        for s in slots.slots.iter() {
            if s.live.load(Ordering::Relaxed) {
                // SAFETY: single-threaded child; the slot is live.
                let conn = unsafe { (*s.conn.get()).assume_init_read() };
                let (base, len) = (conn.region.as_ptr(), conn.region.len());
                let sock = conn.sock;
                let conn_memfd = conn.region.fd();
                // Dropping the halves would mark the rings closed in shared
                // memory, killing the parent's channel: leak them instead,
                // and unmap the region by hand.
                core::mem::forget(conn);
                // SAFETY: the mapping is ours (the child's copy); nothing
                // references it after the forget above.
                unsafe { sys::munmap(base, len) };
                if let Some(memfd) = conn_memfd {
                    sys::close(memfd);
                }
                sys::close(sock);
                s.live.store(false, Ordering::Relaxed);
                s.answered.store(false, Ordering::Relaxed);
                s.sock.store(-1, Ordering::Relaxed);
                s.owed.store(0, Ordering::Relaxed);
            }
            s.lock.store(0, Ordering::Relaxed);
        }
    }
}
