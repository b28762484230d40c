//! The transport: per-mount pools of shm-ring channels to the daemon.
//!
//! All use of `shm_ring` lives in this module. Each mount has [`NSLOTS`]
//! channel slots. A caller takes a slot with an atomic try-lock for one
//! request/reply round trip; a single-threaded program always gets slot 0,
//! and a signal handler that interrupts a call in progress simply takes
//! another slot (no deadlock). A thread that finds every connected slot
//! busy connects another (see [`acquire`]). A process's first channel
//! connects without waiting for the daemon:
//!
//! 1. connect a `socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`, moved to
//!    a high fd number (`F_DUPFD_CLOEXEC`) so the program's fd numbers are
//!    unaffected, to `$BTFUSE_RUN_DIR or /run/btfuse` + `/` +
//!    `proto::socket_name(major, minor)`: a daemon thread wakes from
//!    `accept` and reads who we are from the kernel meanwhile;
//! 2. make the channel: a sealed memfd of the shape
//!    [`proto::channel_config`] (`Region::create`), mapped here;
//! 3. put the first request into the channel;
//! 4. send [`proto::Hello`] with the memfd (`SCM_RIGHTS`), then close the
//!    memfd. The daemon thread finds the request waiting, claims it and
//!    serves it (no doorbell round trip). If no reply comes (the daemon
//!    refused the channel, has no thread free, or died), the client
//!    withdraws the request; a withdrawn request can never run
//!    (`shm_ring`'s claim word), so the call goes to the kernel.
//!
//! The socket is the liveness signal: after a wait slice with no reply it
//! is polled for `POLLHUP`. A slot that cannot connect marks the mount dead
//! for a while (`state::mark_dead`): path calls then go to the kernel.

use core::cell::UnsafeCell;
use core::mem::{size_of, MaybeUninit};
use core::ops::Range;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering,
};

use proto::ops::{self, Failure, Operation, ReplyError, ReplyHeader, RequestHeader};
use proto::Hello;
use shm_ring::{ClientEnd, Region};

use crate::mapped::Mapping;

mod ahead;
mod connect;
mod gens;
mod liveness;
mod passed_fd;
mod posted;
mod teardown;

use crate::state;
use crate::sys;
use crate::timeline::{self, Mark};
use ahead::Ahead;
pub(crate) use ahead::AheadKey;
use connect::{greet, new_conn};
pub(crate) use connect::{grow_fd_table_while_alone, high_fd_base, move_high};
use gens::read_hello_answer;
pub(crate) use gens::{generation, now};
use liveness::DaemonAlive;
pub(crate) use teardown::{close_all_at_exit, close_stale, forget_all_after_fork};

/// Channels per mount (concurrent round trips of one process).
pub(crate) const NSLOTS: usize = 16;

/// Room for the largest reply, 8-aligned.
pub(crate) const REPLY_BUF: usize = (proto::MAX_REPLY + 7) & !7;

/// Why a round trip failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChanError {
    /// No channel could be set up: the request never left; the caller may
    /// hand the call to the kernel.
    Unavailable,
    /// The request may have reached the daemon but no valid reply came
    /// back (daemon died, ring corrupt): `EIO` for the caller.
    Lost,
}

/// Why a round trip of an operation produced no reply struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The channel failed.
    Chan(ChanError),
    /// The daemon answered: the operation failed.
    Failed(Failure),
}

struct Conn {
    // Field order matters: `end` (which points into the region's mapping)
    // drops before `region` unmaps it.
    end: ClientEnd<'static>,
    region: Region,
    sock: i32,
    daemon_pid: i32,
    seq: u32,
    /// Set once the daemon answered a request on this channel: until then
    /// a failed round trip may mean the daemon refused the channel.
    confirmed: bool,
    /// Until the first request is in the ring, the socket is not connected
    /// and the memfd not sent (see the module comment).
    hello_due: bool,
    /// The daemon's answer to the hello was read from the socket.
    hello_read: bool,
    /// `state::epoch()` when it connected: a channel of an earlier epoch
    /// carries the credentials of an identity the process gave up, and is
    /// closed instead of used (see [`close_stale`]).
    epoch: u32,
    /// A directory opened and listed ahead (see `ahead`).
    ahead: Ahead,
}

struct Slot {
    lock: AtomicU32,
    live: AtomicBool,
    /// The daemon has taken this live channel (answered its hello or its
    /// first request): it can no longer be refused.
    answered: AtomicBool,
    /// The connection's socket (-1 when none), readable without the lock.
    sock: AtomicI32,
    /// Answers of posted requests not read yet (see `posted`); written by
    /// the lock holder.
    owed: AtomicU32,
    conn: UnsafeCell<MaybeUninit<Conn>>,
}

// SAFETY: `conn` is only touched by the holder of `lock` (or by the fork
// child handler, when no other thread exists).
unsafe impl Sync for Slot {}

/// The channel slots of one mount, made on its first use (see
/// [`slots_for`]) in a mapping of their own.
pub(crate) struct Slots {
    slots: [Slot; NSLOTS],
    /// Most channels this process opens to the mount: [`NSLOTS`], lowered
    /// to the number it has when the daemon refuses one more (its channel
    /// limits) or does not answer in time (stopped, busy), for
    /// [`CAP_LOWERED_NS`] from `cap_lowered_at`.
    cap: AtomicU32,
    /// When `cap` was lowered (monotonic ns).
    cap_lowered_at: AtomicU64,
    /// The daemon's change generations (`proto::GenPage`), mapped
    /// read-only once a hello answer brought them; null until then.
    gens: AtomicPtr<proto::GenPage>,
}

/// Most channels a process opens to a mount whatever its threads: one
/// more than the CPUs it may run on. More cannot carry round trips at
/// once (each needs the client's thread and a daemon thread running), and
/// each costs the process and the daemon some 300 µs to set up and a
/// daemon thread spinning after its requests: the 20 threads of a `git
/// status` on 2 CPUs made 7 channels and ran 20.0–21.3 ms; with 3,
/// 17.8–19.5 ms (interleaved `perf stat -r 30`). Worked out once; no
/// limit but [`NSLOTS`] where the kernel does not tell the CPUs.
fn cpu_cap() -> usize {
    #[link_section = ".data.btfuse_hot"]
    static CAP: AtomicU32 = AtomicU32::new(0);
    match CAP.load(Ordering::Relaxed) {
        0 => {
            let cap = sys::cpus_allowed().map_or(NSLOTS, |n| (n as usize + 1).min(NSLOTS));
            CAP.store(cap as u32, Ordering::Relaxed);
            cap
        }
        cap => cap as usize,
    }
}

/// How long a lowered [`Slots::cap`] holds: then the process tries one
/// more channel again (the daemon may have continued, or other clients
/// left).
const CAP_LOWERED_NS: u64 = 5_000_000_000;

impl Slots {
    /// The channel cap now (see [`Slots::cap`]).
    fn cap(&self) -> usize {
        let cap = self.cap.load(Ordering::Relaxed);
        if cap < NSLOTS as u32
            && sys::monotonic_ns().saturating_sub(self.cap_lowered_at.load(Ordering::Relaxed))
                >= CAP_LOWERED_NS
        {
            self.cap.store(NSLOTS as u32, Ordering::Relaxed);
            return cpu_cap();
        }
        (cap as usize).min(cpu_cap())
    }

    /// Shares the `n` channels the process has for a while (see
    /// [`Slots::cap`]).
    fn lower_cap(&self, n: usize) {
        self.cap_lowered_at
            .store(sys::monotonic_ns(), Ordering::Relaxed);
        self.cap.store(n as u32, Ordering::Relaxed);
    }
}

/// The slots of `mount`, made on first use; `None` if no memory.
fn slots_for(mount: usize) -> Option<&'static Slots> {
    let rt = &state::MOUNTS[mount];
    if let Some(s) = slots_in(rt) {
        return Some(s);
    }
    let map = Mapping::new(size_of::<Slots>())?;
    let fresh = map.as_ptr().cast::<Slots>();
    // SAFETY: a zero-filled mapping, page-aligned, of at least
    // `size_of::<Slots>()` bytes; all-zero is a valid `Slots` (atomics,
    // and `conn` is uninitialised until the slot is live). Ours alone
    // until published below.
    let slots = unsafe { &*fresh };
    for s in &slots.slots {
        s.sock.store(-1, Ordering::Relaxed);
    }
    slots.cap.store(NSLOTS as u32, Ordering::Relaxed);
    // Release: publishes the initialisation above.
    match rt.channels.compare_exchange(
        core::ptr::null_mut(),
        fresh.cast(),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            map.leak();
            Some(slots)
        }
        // Another thread made them first: ours is unmapped (drop).
        Err(theirs) => {
            // SAFETY: published initialised by the winner, never unmapped
            // (only this module stores there, always a `Slots`).
            Some(unsafe { &*theirs.cast::<Slots>() })
        }
    }
}

/// The slots of a mount, if it was ever used.
/// Whether this process has tried a channel to `mount` (its slots exist).
pub(crate) fn in_use(mount: usize) -> bool {
    slots_in(&state::MOUNTS[mount]).is_some()
}

fn slots_in(rt: &state::MountRt) -> Option<&'static Slots> {
    // Acquire: pairs with the publication in `slots_for`.
    let p = rt.channels.load(Ordering::Acquire).cast::<Slots>();
    // SAFETY: non-null only once published, initialised and leaked, and
    // always a `Slots` (only `slots_for` stores there).
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Every slot of every mount used so far. Only after [`SLOTS_USED`] was
/// seen set (with Acquire): the table is complete by then.
fn all_slots() -> impl Iterator<Item = &'static Slot> {
    state::MOUNTS
        .all()
        .iter()
        .filter_map(slots_in)
        .flat_map(|s| s.slots.iter())
}

/// Set before a slot is first locked: until then the slot table holds
/// nothing and need not be looked at (a process that never uses a mount
/// never touches its pages). Set first, so that a fork at any later point
/// finds it set and clears the table in the child.
#[link_section = ".data.btfuse_hot"]
static SLOTS_USED: AtomicBool = AtomicBool::new(false);

/// Whether this process (or the parent it was forked from) ever used a
/// channel: until then it holds no channel and no daemon handle.
pub(crate) fn ever_connected() -> bool {
    SLOTS_USED.load(Ordering::Relaxed)
}

/// A locked, connected channel of one mount.
pub(crate) struct Chan {
    mount: usize,
    slot: &'static Slot,
}

impl Drop for Chan {
    fn drop(&mut self) {
        // A channel taken but never used (the caller failed before its
        // call) still holds its memfd at a low fd number, and a daemon
        // thread waits for its hello: drop it rather than keep it for later.
        if self.slot.live.load(Ordering::Acquire) && self.conn().hello_due {
            close_locked(self.slot);
        }
        // SeqCst: our uses of the connection happen before the next
        // holder's, and a thread parking for a slot sees it free or is
        // woken (see `wait_for_slot`).
        self.slot.lock.store(0, Ordering::SeqCst);
        slot_freed();
    }
}

/// Takes a channel of `mount` for one round trip: a connected one nobody
/// is using, else (every one busy, or none yet) a newly connected one, up
/// to [`Slots::cap`], else the next connected one to become free. Other
/// channels still owing answers of posted requests are settled first, so
/// the call runs after those requests (see `posted`).
pub(crate) fn acquire(mount: usize) -> Result<Chan, ChanError> {
    let chan = acquire_slot(mount)?;
    posted::settle_others(mount, chan.slot);
    Ok(chan)
}

/// [`acquire`] without settling the other channels.
fn acquire_slot(mount: usize) -> Result<Chan, ChanError> {
    if !state::mount_alive(mount) {
        return Err(ChanError::Unavailable);
    }
    if !SLOTS_USED.load(Ordering::Relaxed) {
        // SeqCst: visible before any slot lock below is.
        SLOTS_USED.store(true, Ordering::SeqCst);
    }
    let Some(all) = slots_for(mount) else {
        return Err(ChanError::Unavailable);
    };
    let slots = &all.slots;
    let live = |s: &&Slot| s.live.load(Ordering::Acquire);
    let mut rounds = 0u32;
    let (mut waiting_since, mut busy_since) = (None, None);
    loop {
        for slot in slots.iter().filter(live) {
            let Some(chan) = take(mount, slot) else {
                continue;
            };
            if !stale_locked(slot, state::epoch()) {
                return Ok(chan);
            }
            // Connected as an identity the process gave up (setuid): never
            // send on it; another is connected with the current credentials.
            close_locked(slot);
        }
        let n_live = slots.iter().filter(live).count();
        let answered = |s: &&Slot| live(s) && s.answered.load(Ordering::Acquire);
        // A process's first channel goes out with its first request, before
        // the daemon's answer: until that answer no other one is made, so
        // that every further one waits for the daemon's answer to its hello
        // (see `connect_slot`) and a refusal never costs a request.
        let in_flight = || {
            slots
                .iter()
                .any(|s| s.lock.load(Ordering::Relaxed) == 1 && !s.answered.load(Ordering::Acquire))
        };
        let n_answered = slots.iter().filter(answered).count();
        let wait_first = n_answered == 0 && in_flight() && {
            let now = sys::monotonic_ns();
            now < *waiting_since.get_or_insert(now) + FIRST_CONNECT_WAIT_NS
        };
        // Another channel costs the process and the daemon some 300 µs; a
        // round trip on one of those it has, a few: a thread that finds them
        // all busy waits for one first, and connects another only if none
        // frees up soon (the 16 threads of a `git status` made 15 channels,
        // now 7: 23.9 -> 21.8 ms).
        let now = sys::monotonic_ns();
        let busy_long = n_live == 0 || now >= *busy_since.get_or_insert(now) + NEW_CHANNEL_AFTER_NS;
        // Channels being connected count against the cap too: threads that
        // all found every channel busy at once would each connect one (the
        // 20 threads of a `git status` on 2 CPUs made 7 under a cap of 3).
        let connecting = |s: &&Slot| !live(s) && s.lock.load(Ordering::Relaxed) != 0;
        let n_made = n_live + slots.iter().filter(connecting).count();
        if n_made < all.cap() && !wait_first && busy_long {
            let free = slots
                .iter()
                .find_map(|s| match s.live.load(Ordering::Acquire) {
                    true => None,
                    false => take(mount, s),
                });
            if let Some(chan) = free {
                return match connect_slot(mount, chan.slot, n_answered) {
                    true => Ok(chan),
                    false if n_live == 0 => {
                        drop(chan);
                        state::mark_dead(mount);
                        Err(ChanError::Unavailable)
                    }
                    false => {
                        drop(chan);
                        // No more channels for us: share the ones we have.
                        all.lower_cap(n_live);
                        continue;
                    }
                };
            }
        }
        // Every slot busy: spin for one, or park while others wait too.
        if wait_for_slot(slots) {
            continue;
        }
        // Wait a little; nap once that takes long (their calls wait for a
        // stopped daemon).
        rounds = rounds.wrapping_add(1);
        if rounds & 63 != 0 {
            core::hint::spin_loop();
        } else if rounds < BUSY_NAP_AFTER {
            let _ = sys::sc!(libc::SYS_sched_yield);
        } else {
            let nap = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            let _ = sys::sc!(libc::SYS_nanosleep, &nap as *const libc::timespec, 0usize);
            rounds = BUSY_NAP_AFTER;
        }
    }
}

/// Threads of this process in [`wait_for_slot`] now.
#[link_section = ".data.btfuse_hot"]
static WAITING: AtomicU32 = AtomicU32::new(0);
/// Threads of this process parked in [`wait_for_slot`].
#[link_section = ".data.btfuse_hot"]
static PARKED: AtomicU32 = AtomicU32::new(0);
/// Bumped (and a parked thread woken) when a slot is freed while threads
/// are parked.
#[link_section = ".data.btfuse_hot"]
static FREED: AtomicU32 = AtomicU32::new(0);

/// One round of waiting for a slot of `slots`, every one being busy: parks
/// the thread until a slot is freed (or 1 ms passed) if [`spinners`] other
/// threads are in this function at this moment (parked, or deciding) and
/// no connected slot has come free meanwhile. Whether it slept; if not,
/// the caller spins (or yields, or naps) one round as before. So a lone
/// waiter spins; once waiters meet here, they and every one that comes
/// while any sleeps park instead of spinning on the CPUs the daemon needs
/// to free a slot.
fn wait_for_slot(slots: &[Slot]) -> bool {
    let others = WAITING.fetch_add(1, Ordering::SeqCst);
    let mut slept = false;
    if others >= spinners() {
        PARKED.fetch_add(1, Ordering::SeqCst);
        let seen = FREED.load(Ordering::SeqCst);
        // A slot freed before we counted ourselves parked bumped nothing:
        // look once more before sleeping (see `slot_freed`). A slot not
        // connected counts as busy: only a connection makes it usable.
        let busy = |s: &Slot| !s.live.load(Ordering::Acquire) || s.lock.load(Ordering::SeqCst) != 0;
        if slots.iter().all(busy) {
            let nap = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            let _ = sys::sc!(
                libc::SYS_futex,
                FREED.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen,
                &nap as *const libc::timespec
            );
            slept = true;
        }
        PARKED.fetch_sub(1, Ordering::SeqCst);
    }
    WAITING.fetch_sub(1, Ordering::SeqCst);
    slept
}

/// How many threads of this process may wait for a busy slot without
/// parking: the CPUs it may run on but one, which the daemon needs.
fn spinners() -> u32 {
    cpu_cap().saturating_sub(2).max(1) as u32
}

/// A slot was freed: wakes one parked thread, if any.
fn slot_freed() {
    if PARKED.load(Ordering::SeqCst) > 0 {
        FREED.fetch_add(1, Ordering::SeqCst);
        let _ = sys::sc!(
            libc::SYS_futex,
            FREED.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1
        );
    }
}

/// How long every channel of a process must stay busy before a thread
/// waiting for one connects another.
const NEW_CHANNEL_AFTER_NS: u64 = 50_000;

/// Rounds of spinning and yielding for a busy slot (a few milliseconds)
/// before [`acquire`] naps 1 ms between looks instead.
const BUSY_NAP_AFTER: u32 = 64 * 1024;

/// `Slot::lock` of a slot closed at exit: never taken again, and nobody's
/// connection in progress.
const CLOSED_AT_EXIT: u32 = 2;

/// How long a thread waits for another one's first connection to a mount
/// before connecting one itself (that one is bounded by its first-reply
/// wait; this covers a lock lost to a `longjmp` out of a signal handler).
const FIRST_CONNECT_WAIT_NS: u64 = 5_000_000_000;

/// Locks `slot` for one round trip, if nobody holds it.
fn take(mount: usize, slot: &'static Slot) -> Option<Chan> {
    if slot.lock.load(Ordering::Relaxed) != 0
        || slot
            .lock
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return None;
    }
    Some(Chan { mount, slot })
}

/// Connects the empty `slot` (whose lock the caller holds), the process
/// having `n_answered` other channels to this mount that the daemon took;
/// whether it is usable.
///
/// The first channel says hello with its first request (see the module
/// comment). Another one is for a thread that found every channel busy: it
/// waits for the daemon's answer first, so that a refusal (the daemon's
/// channel limits) costs no request, and the thread uses the channels the
/// process has instead.
fn connect_slot(mount: usize, slot: &Slot, n_answered: usize) -> bool {
    if slot.live.load(Ordering::Acquire) {
        return true;
    }
    let Some(mut conn) = new_conn(mount) else {
        return false;
    };
    if n_answered > 0 && !(greet(&mut conn, mount) && accepted(conn.sock, mount)) {
        let sock = conn.sock;
        drop(conn);
        sys::close(sock);
        return false;
    }
    conn.hello_read = n_answered > 0;
    slot.sock.store(conn.sock, Ordering::Relaxed);
    // SAFETY: the caller holds the lock; the slot is empty.
    unsafe { (*slot.conn.get()).write(conn) };
    slot.answered.store(n_answered > 0, Ordering::Relaxed);
    slot.live.store(true, Ordering::Release);
    true
}

/// Waits (bounded) for the daemon's answer to a hello on `sock`: whether
/// it took the channel.
fn accepted(sock: i32, mount: usize) -> bool {
    const WAIT_MS: i32 = 2000;
    if !matches!(sys::poll1(sock, libc::POLLIN, WAIT_MS), Ok(r) if r & libc::POLLIN != 0) {
        return false;
    }
    read_hello_answer(sock, mount)
}

impl Chan {
    /// Whether the channel is still connected (see `bulk`).
    fn live(&self) -> bool {
        self.slot.live.load(Ordering::Relaxed)
    }

    fn conn(&mut self) -> &mut Conn {
        // SAFETY: we hold the slot lock and the slot is live.
        unsafe { (*self.slot.conn.get()).assume_init_mut() }
    }

    /// The bulk area, for a request about to be made: start and length.
    /// One request in flight per channel, so it is ours between acquire
    /// and drop, once the daemon is done with a listing ahead (see
    /// `ahead`); `Lost` if the channel failed meanwhile.
    pub(crate) fn bulk(&mut self) -> Result<(*mut u8, usize), ChanError> {
        if !self.bulk_for_another() {
            return Err(ChanError::Lost);
        }
        Ok(self.area())
    }

    /// The bulk area as it is (a live channel's).
    fn area(&mut self) -> (*mut u8, usize) {
        let b = &self.conn().end.bulk;
        (b.as_ptr(), b.len())
    }

    /// The first `len` bytes of the bulk area (at most all of it), as the
    /// daemon's reply to this channel's last call (or the listing ahead
    /// just taken) left them; nothing on a channel that failed.
    pub(crate) fn bulk_reply(&mut self, len: u64) -> &[u8] {
        if !self.live() {
            return &[];
        }
        let (p, n) = self.area();
        // SAFETY: the area is ours between acquire and drop (one request in
        // flight per channel) and `n` bytes long; the daemon wrote it
        // before it replied, and writes nothing more until our next call.
        unsafe {
            core::slice::from_raw_parts(
                p.cast_const(),
                usize::try_from(len).map_or(n, |l| l.min(n)),
            )
        }
    }

    /// One round trip of operation `O`: sends `args`, `path` and `path2`
    /// and receives the reply into `reply`. Returns the reply struct and
    /// where its inline payload lies in `reply`, or why there is none.
    pub(crate) fn call<O: Operation>(
        &mut self,
        args: &O,
        path: &[u8],
        path2: &[u8],
        reply: &mut [u8; REPLY_BUF],
    ) -> Result<(O::Reply, Range<usize>), CallError> {
        debug_assert!(path.len() <= proto::PATH_MAX && path2.len() <= proto::PATH_MAX);
        // A channel that failed in `bulk` (reading a listing ahead's answer).
        if !self.live() {
            return Err(CallError::Chan(ChanError::Lost));
        }
        let mount = self.mount;
        let conn = self.conn();
        // This call's answer may fill the bulk area.
        conn.ahead.bulk_reused();
        conn.seq = conn.seq.wrapping_add(1);
        let seq = conn.seq;
        let head = RequestHeader {
            op: O::OP as u32,
            seq,
            path_len: path.len() as u32,
            path2_len: path2.len() as u32,
        };
        let sock = conn.sock;
        let pid = conn.daemon_pid;
        let mut alive = DaemonAlive { sock, pid };
        let parts = [proto::bytes_of(&head), proto::bytes_of(args), path, path2];
        if conn.end.requests.send(&parts, &mut alive).is_err() {
            sys::debug(&[b"btfuse: send failed"]);
            return Err(CallError::Chan(self.fail()));
        }
        if conn.hello_due {
            if !greet(conn, mount) {
                // No daemon saw the request: it is withdrawn.
                return Err(CallError::Chan(self.fail()));
            }
            alive.pid = conn.daemon_pid;
        }
        // The answers this channel owes come first (the daemon served those
        // requests first).
        self.settle(1).map_err(CallError::Chan)?;
        let conn = self.conn();
        let mut got = conn.end.responses.recv(&mut reply[..], &mut alive);
        if got == Err(shm_ring::RecvError::TimedOut) && !conn.end.requests.withdraw() {
            // Only a first call times out; the daemon took it meanwhile:
            // its answer is coming.
            conn.end.responses.set_policy(REPLY_WAIT);
            got = conn.end.responses.recv(&mut reply[..], &mut alive);
        }
        let Ok(n) = got else {
            sys::debug(&[b"btfuse: reply lost"]);
            return Err(CallError::Chan(self.fail()));
        };
        if !conn.confirmed {
            timeline::mark(Mark::FirstReply);
            conn.confirmed = true;
            conn.end.responses.set_policy(REPLY_WAIT);
            // The daemon answered the hello before this reply: the answer
            // (with the generation page) is waiting.
            let unread = (!conn.hello_read).then_some(conn.sock);
            conn.hello_read = true;
            self.slot.answered.store(true, Ordering::Release);
            if let Some(sock) = unread {
                read_hello_answer(sock, mount);
            }
        }
        self.release_spent_ahead();
        match ops::decode_reply::<O>(&reply[..n], seq) {
            Ok((out, payload)) => {
                let start = size_of::<ReplyHeader>() + size_of::<O::Reply>();
                Ok((out, start..start + payload.len()))
            }
            Err(ReplyError::Failed(f)) => Err(CallError::Failed(f)),
            Err(ReplyError::Malformed) => {
                self.kill();
                Err(CallError::Chan(ChanError::Lost))
            }
        }
    }

    /// A round trip failed: drops the connection. If the daemon never took
    /// the channel's first request (it refused the channel, never accepted
    /// the connection, or is too slow to), the request is withdrawn and
    /// can never run: [`ChanError::Unavailable`], the call may go to the
    /// kernel. Otherwise it may have run: [`ChanError::Lost`].
    fn fail(&mut self) -> ChanError {
        let conn = self.conn();
        let refused = !conn.confirmed && conn.end.requests.withdraw();
        close_locked(self.slot);
        // Other channels the daemon took stay in use: only this one failed
        // before it ever served (a daemon too slow to answer it).
        let others = slots_for(self.mount)
            .into_iter()
            .flat_map(|s| s.slots.iter())
            .any(|s| s.live.load(Ordering::Acquire) && s.answered.load(Ordering::Acquire));
        if !(refused && others) {
            state::mark_dead(self.mount);
        }
        if refused {
            sys::debug(&[b"btfuse: daemon refused the channel"]);
            ChanError::Unavailable
        } else {
            ChanError::Lost
        }
    }

    /// Drops a broken connection and leaves the mount to the kernel for a
    /// while (fds already open on it get `EIO`).
    fn kill(&mut self) {
        // We hold the lock and the slot is live.
        close_locked(self.slot);
        state::mark_dead(self.mount);
    }
}

/// How a caller waits for its reply (or for ring space): spin (the daemon
/// answers in microseconds once awake, and waking a sleeping daemon thread
/// on an idle CPU takes ~50-60 µs in a VM), then sleep on the doorbell,
/// checking after every slice that the daemon still lives. (Yielding
/// instead of spinning was measured: it hands the core away for ~80 µs per
/// call.)
const REPLY_WAIT: shm_ring::WaitPolicy = shm_ring::WaitPolicy {
    spin_ns: 100_000,
    yield_ns: 0,
    sleep_slice_ns: 100_000_000,
    timeout_ns: None,
};

/// The wait for a new channel's first reply: sleep at once (the daemon
/// thread that accepts the connection has just been woken, often on this
/// very CPU, which a spin would keep from it), check the socket every
/// millisecond, so a daemon that refuses the channel sends the call to the
/// kernel without a noticeable delay, and give up after 2 s (a daemon with
/// no thread free to accept): the request is then withdrawn, unless the
/// daemon took it meanwhile.
const FIRST_REPLY_WAIT: shm_ring::WaitPolicy = shm_ring::WaitPolicy::SLEEP
    .with_sleep_slice_ns(1_000_000)
    .with_timeout_ns(2_000_000_000);

/// Whether `fd` is one of the library's own sockets (the program must not
/// close it or reuse its number through us without us noticing).
pub(crate) fn is_internal(fd: i32) -> bool {
    // Acquire: see `all_slots`.
    fd >= 0
        && SLOTS_USED.load(Ordering::Acquire)
        && all_slots().any(|s| s.sock.load(Ordering::Relaxed) == fd)
}

/// The lowest of the library's own sockets at or above fd `from` (for
/// `close_range`, which must leave them open).
pub(crate) fn next_internal(from: u32) -> Option<u32> {
    // Acquire: see `all_slots`.
    if !SLOTS_USED.load(Ordering::Acquire) {
        return None;
    }
    all_slots()
        .filter_map(|s| u32::try_from(s.sock.load(Ordering::Relaxed)).ok())
        .filter(|&fd| fd >= from)
        .min()
}

/// Takes the lock of a live slot nobody is using; `false` if it is not
/// live or busy.
fn lock_live(s: &Slot) -> bool {
    s.live.load(Ordering::Acquire)
        && s.lock
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
}

/// Whether a slot whose lock the caller holds is live and connected in an
/// epoch other than `now`.
fn stale_locked(s: &Slot, now: u32) -> bool {
    if !s.live.load(Ordering::Acquire) {
        return false;
    }
    // SAFETY: the caller holds the lock, and `conn` is initialised while
    // the slot is live.
    let conn = unsafe { (*s.conn.get()).assume_init_ref() };
    conn.epoch != now
}

/// Closes a live slot whose lock the caller holds: the rings are marked
/// closed (the daemon drops the channel, and with the last one the client
/// and its handles), the socket closed, the slot left empty.
fn close_locked(s: &Slot) {
    let conn = take_conn(s);
    let sock = conn.sock;
    // Dropping the halves marks both rings closed and wakes the daemon;
    // then the region is unmapped.
    drop(conn);
    sys::close(sock);
}

/// Takes the connection out of a live slot whose lock the caller holds,
/// leaving the slot empty.
fn take_conn(s: &Slot) -> Conn {
    // SAFETY: the caller holds the lock and the slot is live; it is marked
    // not live below, so the connection is never read from it again.
    let conn = unsafe { (*s.conn.get()).assume_init_read() };
    s.live.store(false, Ordering::Release);
    s.answered.store(false, Ordering::Relaxed);
    s.sock.store(-1, Ordering::Relaxed);
    s.owed.store(0, Ordering::Relaxed);
    conn
}
