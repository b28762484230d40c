//! The SPSC byte ring: variable-length framed records over a power-of-two
//! data area, with `u32` wrapping byte counters as indices.
//!
//! Record framing (every record starts on a multiple of 8 bytes, so the
//! 8-byte header never wraps; the payload may wrap and is then copied in two
//! pieces):
//!
//! ```text
//! | len: u32 | reserved: u32 = 0 | payload (len bytes) | pad to 8 |
//! ```
//!
//! Both halves keep their own index privately (`Producer::head`,
//! `Consumer::tail`) and only *publish* it to shared memory; the peer's index
//! is read from shared memory, validated, and cached (rtrb-style: reloaded
//! only when the ring looks full or empty). Nothing read from shared memory
//! is ever trusted: see [`Consumer::try_recv`] for the checks.

use core::fmt;
use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::doorbell;
use crate::layout::{
    record_len, RingCtl, RingDesc, CLAIMED, CLOSED_BY_CONSUMER, CLOSED_BY_PRODUCER, RECORD_ALIGN,
    RECORD_HEADER, WITHDRAWN,
};
use crate::sys;
use crate::wait::{block_on, Blocked, Liveness, WaitPolicy};

/// Error of [`Producer::try_send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// Not enough free space now; retry or use [`Producer::send`].
    Full,
    /// The message is longer than the ring's maximum message size.
    TooLarge {
        /// Total length of the parts.
        len: usize,
        /// The ring's `max_message`.
        max: usize,
    },
    /// Either side closed the ring.
    Closed,
    /// The shared state is inconsistent; the ring is dead.
    Corrupt,
}

/// Error of [`Producer::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The message is longer than the ring's maximum message size.
    TooLarge {
        /// Total length of the parts.
        len: usize,
        /// The ring's `max_message`.
        max: usize,
    },
    /// Either side closed the ring.
    Closed,
    /// The liveness check reported the consumer dead while the ring was full.
    PeerDead,
    /// The policy's timeout passed while the ring was full.
    TimedOut,
    /// The shared state is inconsistent; the ring is dead.
    Corrupt,
}

/// Error of [`Consumer::try_recv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// No message now.
    Empty,
    /// The producer closed the ring and every message was received (or this
    /// side closed it).
    Closed,
    /// The next message needs a buffer of `needed` bytes; it stays queued.
    BufferTooSmall {
        /// Length of the next message.
        needed: usize,
    },
    /// The shared state is inconsistent; the ring is dead.
    Corrupt,
}

/// Error of [`Consumer::recv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// The producer closed the ring and every message was received.
    Closed,
    /// The liveness check reported the producer dead while the ring was empty.
    PeerDead,
    /// The policy's timeout passed while the ring was empty.
    TimedOut,
    /// The next message needs a buffer of `needed` bytes; it stays queued.
    BufferTooSmall {
        /// Length of the next message.
        needed: usize,
    },
    /// The shared state is inconsistent; the ring is dead.
    Corrupt,
}

impl From<Blocked> for SendError {
    fn from(b: Blocked) -> Self {
        match b {
            Blocked::PeerDead => SendError::PeerDead,
            Blocked::TimedOut => SendError::TimedOut,
        }
    }
}

impl From<Blocked> for RecvError {
    fn from(b: Blocked) -> Self {
        match b {
            Blocked::PeerDead => RecvError::PeerDead,
            Blocked::TimedOut => RecvError::TimedOut,
        }
    }
}

macro_rules! display {
    ($t:ty { $($pat:pat => $msg:expr),* $(,)? }) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($pat => $msg(f)),* }
            }
        }
        #[cfg(feature = "std")]
        impl std::error::Error for $t {}
    };
}

display!(TrySendError {
    TrySendError::Full => |f: &mut fmt::Formatter<'_>| f.write_str("ring full"),
    TrySendError::TooLarge { len, max } =>
        |f: &mut fmt::Formatter<'_>| write!(f, "message of {len} bytes exceeds the maximum of {max}"),
    TrySendError::Closed => |f: &mut fmt::Formatter<'_>| f.write_str("ring closed"),
    TrySendError::Corrupt => |f: &mut fmt::Formatter<'_>| f.write_str("shared ring state corrupt"),
});
display!(SendError {
    SendError::TooLarge { len, max } =>
        |f: &mut fmt::Formatter<'_>| write!(f, "message of {len} bytes exceeds the maximum of {max}"),
    SendError::Closed => |f: &mut fmt::Formatter<'_>| f.write_str("ring closed"),
    SendError::PeerDead => |f: &mut fmt::Formatter<'_>| f.write_str("peer is dead"),
    SendError::TimedOut => |f: &mut fmt::Formatter<'_>| f.write_str("timed out waiting for space"),
    SendError::Corrupt => |f: &mut fmt::Formatter<'_>| f.write_str("shared ring state corrupt"),
});
display!(TryRecvError {
    TryRecvError::Empty => |f: &mut fmt::Formatter<'_>| f.write_str("ring empty"),
    TryRecvError::Closed => |f: &mut fmt::Formatter<'_>| f.write_str("ring closed"),
    TryRecvError::BufferTooSmall { needed } =>
        |f: &mut fmt::Formatter<'_>| write!(f, "buffer too small, need {needed} bytes"),
    TryRecvError::Corrupt => |f: &mut fmt::Formatter<'_>| f.write_str("shared ring state corrupt"),
});
display!(RecvError {
    RecvError::Closed => |f: &mut fmt::Formatter<'_>| f.write_str("ring closed"),
    RecvError::PeerDead => |f: &mut fmt::Formatter<'_>| f.write_str("peer is dead"),
    RecvError::TimedOut => |f: &mut fmt::Formatter<'_>| f.write_str("timed out waiting for a message"),
    RecvError::BufferTooSmall { needed } =>
        |f: &mut fmt::Formatter<'_>| write!(f, "buffer too small, need {needed} bytes"),
    RecvError::Corrupt => |f: &mut fmt::Formatter<'_>| f.write_str("shared ring state corrupt"),
});

/// Whether a ring index is not on a record boundary (a multiple of 8).
#[inline]
fn misaligned(index: u32) -> bool {
    index & (RECORD_ALIGN as u32 - 1) != 0
}

/// Local state of one half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// This half called `close` (or was dropped).
    Closed,
    /// Corruption was detected; every call fails with `Corrupt`.
    Corrupt,
}

/// Pointers to one ring inside a mapped region.
#[derive(Clone, Copy)]
pub(crate) struct RawRing {
    ctl: *const RingCtl,
    data: *mut u8,
    cap: u32,
    max_message: u32,
}

impl RawRing {
    /// # Safety
    /// `base` must point to a live mapping that contains `desc` entirely
    /// (checked by `RegionLayout`), 4096-aligned, and outlives every use.
    pub(crate) unsafe fn new(base: *mut u8, desc: &RingDesc) -> RawRing {
        RawRing {
            // SAFETY: in bounds of the mapping (caller).
            ctl: unsafe { base.add(desc.ctl_off as usize) }.cast(),
            // SAFETY: in bounds of the mapping (caller).
            data: unsafe { base.add(desc.data_off as usize) },
            cap: desc.capacity,
            max_message: desc.max_message,
        }
    }

    /// Settles the fate of the ring's first message as `decision`
    /// ([`CLAIMED`] or [`WITHDRAWN`]) unless the peer settled it first;
    /// whether it is settled as `decision`.
    fn decide_first(&self, decision: u32) -> bool {
        // AcqRel: one decision, seen by both sides.
        match self
            .ctl()
            .claim
            .0
            .compare_exchange(0, decision, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(v) => v == decision,
        }
    }

    #[inline]
    fn ctl(&self) -> &RingCtl {
        // SAFETY: `ctl` points to a live, aligned RingCtl made only of
        // atomics, so shared references are fine even though the peer
        // process writes it concurrently.
        unsafe { &*self.ctl }
    }

    #[inline]
    fn mask(&self) -> u32 {
        self.cap - 1
    }

    /// The 32-bit word at ring index `pos` (8-aligned).
    #[inline]
    fn word(&self, pos: u32) -> &AtomicU32 {
        debug_assert_eq!(pos % 4, 0);
        // SAFETY: `pos & mask` < cap and is a multiple of 8 (callers only
        // pass record starts, +4 for the reserved word), so the 4 bytes are
        // inside the page-aligned data area and 4-aligned. The memory is
        // shared with the peer, hence accessed only through an atomic.
        unsafe {
            &*self
                .data
                .add((pos & self.mask()) as usize)
                .cast::<AtomicU32>()
        }
    }

    /// Copies `src` into the ring at index `pos`, wrapping at the end.
    /// `src.len() <= cap`.
    #[inline]
    fn write_at(&self, pos: u32, src: &[u8]) {
        let off = (pos & self.mask()) as usize;
        let first = src.len().min(self.cap as usize - off);
        // SAFETY: off + first <= cap and src.len() - first <= cap (src fits
        // in the ring: checked against max_message < cap), so both copies
        // stay in the data area. `src` is private memory and cannot overlap
        // the shared data area. Bytes here are owned by the producer until
        // published (the peer may still scribble on them: it only hurts
        // itself, the producer never reads them back).
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), self.data.add(off), first);
            ptr::copy_nonoverlapping(src.as_ptr().add(first), self.data, src.len() - first);
        }
    }

    /// Copies ring bytes at index `pos` into `dst`, wrapping at the end.
    /// `dst.len() <= cap`.
    #[inline]
    fn read_at(&self, pos: u32, dst: &mut [u8]) {
        let off = (pos & self.mask()) as usize;
        let first = dst.len().min(self.cap as usize - off);
        // SAFETY: as in `write_at`, both ranges are inside the data area.
        // The source is shared memory a hostile peer may be writing: we
        // copy it once into private memory and never look at it again
        // (no TOCTOU); `u8` has no invalid values.
        unsafe {
            ptr::copy_nonoverlapping(self.data.add(off), dst.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(self.data, dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }

    /// Marks the ring closed by `bit` and wakes whichever side sleeps.
    fn close(&self, bit: u32) {
        // Release: everything we published before closing is visible to a
        // peer that observes the bit with Acquire.
        self.ctl().closed.0.fetch_or(bit, Ordering::Release);
        // Close is rare: ring both doorbells (each does the Dekker fence).
        doorbell::ring(&self.ctl().consumer_sleeping.0);
        doorbell::ring(&self.ctl().producer_sleeping.0);
    }
}

/// The sending half of a ring. `Send`, not `Clone`: one producer per ring.
/// Dropping it closes the ring for sending.
pub struct Producer<'a> {
    ring: RawRing,
    /// Our head: authoritative, never read back from shared memory.
    head: u32,
    /// Last validated value of the consumer's tail.
    cached_tail: u32,
    state: State,
    policy: WaitPolicy,
    /// Our last published CPU hint (`RingCtl::producer_cpu`).
    cpu: u32,
    _region: PhantomData<&'a mut [u8]>,
}

// SAFETY: a Producer only holds pointers into a shared mapping that outlives
// 'a; it is the unique producer of its ring, and all shared accesses are
// atomics or copies of bytes it owns, so moving it to another thread is fine.
unsafe impl Send for Producer<'_> {}

impl<'a> Producer<'a> {
    /// # Safety
    /// `ring` must stay valid for `'a`, and this must be the only producer.
    pub(crate) unsafe fn new(ring: RawRing) -> Producer<'a> {
        // The shared head may have been written by a hostile peer: it is
        // validated (relative to the tail) on first use.
        // Acquire: not needed for data (we only write), Relaxed suffices; we
        // use Acquire to see a head published by an earlier producer.
        let head = ring.ctl().head.0.load(Ordering::Acquire);
        let tail = ring.ctl().tail.0.load(Ordering::Acquire);
        let mut p = Producer {
            ring,
            head,
            cached_tail: tail,
            state: State::Open,
            policy: WaitPolicy::DEFAULT,
            cpu: 0,
            _region: PhantomData,
        };
        if misaligned(head) || misaligned(tail) || head.wrapping_sub(tail) > ring.cap {
            p.corrupt();
        }
        p
    }

    /// Capacity of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.cap as usize
    }

    /// Largest payload a single message may have.
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// The policy used by [`Producer::send`].
    pub fn policy(&self) -> WaitPolicy {
        self.policy
    }

    /// Sets the policy used by [`Producer::send`].
    pub fn set_policy(&mut self, policy: WaitPolicy) {
        self.policy = policy;
    }

    fn corrupt(&mut self) {
        self.state = State::Corrupt;
        self.ring.close(CLOSED_BY_PRODUCER);
    }

    /// Re-reads and validates the consumer's tail.
    fn refresh_tail(&mut self) -> Result<(), TrySendError> {
        // Acquire: pairs with the consumer's Release store of tail, so its
        // copies out of the freed bytes happen-before we overwrite them.
        let t = self.ring.ctl().tail.0.load(Ordering::Acquire);
        let outstanding = self.head.wrapping_sub(self.cached_tail);
        let advanced = t.wrapping_sub(self.cached_tail);
        // The tail may only move forward, never past our head, and only by
        // whole records.
        if advanced > outstanding || misaligned(t) {
            self.corrupt();
            return Err(TrySendError::Corrupt);
        }
        self.cached_tail = t;
        Ok(())
    }

    /// Sends one message made of `parts` (gathered, no concatenation needed)
    /// if there is room now.
    pub fn try_send(&mut self, parts: &[&[u8]]) -> Result<(), TrySendError> {
        match self.state {
            State::Open => {}
            State::Closed => return Err(TrySendError::Closed),
            State::Corrupt => return Err(TrySendError::Corrupt),
        }
        let len = parts.iter().fold(0usize, |a, p| a.saturating_add(p.len()));
        let max = self.ring.max_message as usize;
        if len > max {
            return Err(TrySendError::TooLarge { len, max });
        }
        // Acquire: a consumer that closed after reading is done with it all.
        // This line is written once, so the load is a shared-cache hit.
        if self.ring.ctl().closed.0.load(Ordering::Acquire) & CLOSED_BY_CONSUMER != 0 {
            return Err(TrySendError::Closed);
        }
        // len <= max_message, whose record fits in cap (RegionLayout::new).
        let rec = record_len(len as u32) as u32;
        if self.ring.cap - self.head.wrapping_sub(self.cached_tail) < rec {
            self.refresh_tail()?;
            if self.ring.cap - self.head.wrapping_sub(self.cached_tail) < rec {
                return Err(TrySendError::Full);
            }
        }
        let h = self.head;
        // Relaxed: the record header is published by the Release store of
        // head below, like the payload.
        self.ring.word(h).store(len as u32, Ordering::Relaxed);
        self.ring
            .word(h.wrapping_add(4))
            .store(0, Ordering::Relaxed);
        let mut pos = h.wrapping_add(RECORD_HEADER as u32);
        for p in parts {
            self.ring.write_at(pos, p);
            pos = pos.wrapping_add(p.len() as u32);
        }
        self.head = h.wrapping_add(rec);
        // Release: publishes the record header and payload written above.
        self.note_cpu();
        self.ring.ctl().head.0.store(self.head, Ordering::Release);
        // Wake the consumer only if it announced sleep (no syscall otherwise).
        doorbell::ring(&self.ring.ctl().consumer_sleeping.0);
        Ok(())
    }

    /// Publishes the CPU this thread runs on as the producer's CPU hint
    /// (done by every send; call it before the first send when the consumer
    /// may start waiting earlier).
    pub fn note_cpu(&mut self) {
        let cpu = sys::cpu_hint();
        if cpu != self.cpu {
            self.cpu = cpu;
            // Relaxed: a hint, no data depends on it.
            self.ring.ctl().producer_cpu.0.store(cpu, Ordering::Relaxed);
        }
    }

    /// Sends one message, waiting (per the policy) while the ring is full.
    /// Never drops: it returns only once the message is in the ring, or with
    /// an error. `peer` is asked after each idle sleep slice.
    pub fn send<L: Liveness + ?Sized>(
        &mut self,
        parts: &[&[u8]],
        peer: &mut L,
    ) -> Result<(), SendError> {
        let policy = self.policy;
        let ring = self.ring;
        let r = block_on(
            &policy,
            &ring.ctl().producer_sleeping.0,
            None,
            peer,
            || match self.try_send(parts) {
                Err(TrySendError::Full) => None,
                other => Some(other),
            },
        );
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(TrySendError::TooLarge { len, max })) => Err(SendError::TooLarge { len, max }),
            Ok(Err(TrySendError::Closed)) => Err(SendError::Closed),
            Ok(Err(TrySendError::Corrupt)) => Err(SendError::Corrupt),
            Ok(Err(TrySendError::Full)) => unreachable!("Full is retried"),
            Err(b) => Err(b.into()),
        }
    }

    /// Whether the consumer closed the ring (or this side did).
    pub fn is_closed(&self) -> bool {
        self.state != State::Open
            // Relaxed: a hint only.
            || self.ring.ctl().closed.0.load(Ordering::Relaxed) & CLOSED_BY_CONSUMER != 0
    }

    /// Gives up on the ring's first message, unless the consumer already
    /// claimed it ([`Consumer::claim`]): `true` means the consumer has not
    /// acted on it and never will, `false` that it has taken it (wait for
    /// its answer). For protocols whose first message may be sent before
    /// the consumer exists, such as a connection that may be refused.
    pub fn withdraw(&self) -> bool {
        self.ring.decide_first(WITHDRAWN)
    }

    /// Closes the ring for sending: the consumer drains what was sent, then
    /// gets `Closed`. Wakes the consumer if it sleeps. Idempotent.
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.state = State::Closed;
        }
        self.ring.close(CLOSED_BY_PRODUCER);
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Producer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.ring.cap)
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail)
            .field("state", &self.state)
            .finish()
    }
}

/// The receiving half of a ring. `Send`, not `Clone`: one consumer per ring.
/// Dropping it closes the ring (the producer then gets `Closed`).
pub struct Consumer<'a> {
    ring: RawRing,
    /// Our tail: authoritative, never read back from shared memory.
    tail: u32,
    /// Last validated value of the producer's head.
    cached_head: u32,
    state: State,
    policy: WaitPolicy,
    _region: PhantomData<&'a mut [u8]>,
}

// SAFETY: as for Producer: unique consumer, pointers into a mapping that
// outlives 'a, shared accesses are atomics or copies.
unsafe impl Send for Consumer<'_> {}

impl<'a> Consumer<'a> {
    /// # Safety
    /// `ring` must stay valid for `'a`, and this must be the only consumer.
    pub(crate) unsafe fn new(ring: RawRing) -> Consumer<'a> {
        // Acquire: see records published before we were created.
        let tail = ring.ctl().tail.0.load(Ordering::Acquire);
        let mut c = Consumer {
            ring,
            tail,
            cached_head: tail,
            state: State::Open,
            policy: WaitPolicy::DEFAULT,
            _region: PhantomData,
        };
        if misaligned(tail) {
            c.corrupt();
        }
        c
    }

    /// Capacity of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.cap as usize
    }

    /// Largest payload a single message may have (a buffer this large always
    /// suffices).
    pub fn max_message(&self) -> usize {
        self.ring.max_message as usize
    }

    /// The policy used by [`Consumer::recv`].
    pub fn policy(&self) -> WaitPolicy {
        self.policy
    }

    /// Sets the policy used by [`Consumer::recv`].
    pub fn set_policy(&mut self, policy: WaitPolicy) {
        self.policy = policy;
    }

    fn corrupt(&mut self) {
        self.state = State::Corrupt;
        self.ring.close(CLOSED_BY_CONSUMER);
    }

    /// Re-reads and validates the producer's head.
    fn refresh_head(&mut self) -> Result<(), TryRecvError> {
        // Acquire: pairs with the producer's Release store of head, making
        // every record before it visible.
        let h = self.ring.ctl().head.0.load(Ordering::Acquire);
        let avail = h.wrapping_sub(self.tail);
        // The head may only move forward, by whole records, and never more
        // than a ring's worth ahead of our tail.
        if avail > self.ring.cap
            || avail < self.cached_head.wrapping_sub(self.tail)
            || misaligned(h)
        {
            self.corrupt();
            return Err(TryRecvError::Corrupt);
        }
        self.cached_head = h;
        Ok(())
    }

    /// The CPU the producer last sent from, by its own hint (`None` if not
    /// known). Only a hint: the producer writes it and may write anything.
    pub fn peer_cpu(&self) -> Option<u32> {
        // Relaxed: a hint.
        let hint = self.ring.ctl().producer_cpu.0.load(Ordering::Relaxed);
        hint.checked_sub(1)
    }

    /// Whether a call to `try_recv` would not return `Empty` right now
    /// (a message, closed, or corrupt). Does not consume anything.
    pub fn is_ready(&self) -> bool {
        self.state != State::Open
            // Acquire: as in refresh_head.
            || self.ring.ctl().head.0.load(Ordering::Acquire) != self.tail
            // Acquire: as in try_recv's closed check.
            || self.ring.ctl().closed.0.load(Ordering::Acquire) != 0
    }

    /// The doorbell this consumer sleeps on (for the multi-channel wait).
    pub(crate) fn bell(&self) -> &AtomicU32 {
        &self.ring.ctl().consumer_sleeping.0
    }

    /// Receives one message into `buf` if one is queued, returning its
    /// length. The message is *copied* out of shared memory before anything
    /// looks at it, so the peer cannot change it afterwards.
    ///
    /// Checks on every value read from shared memory: the head moves forward
    /// by a multiple of 8 and at most `capacity` ahead of our tail; the
    /// record's `len <= max_message`, its reserved word is 0, and the whole
    /// record lies below the head. Any violation returns `Corrupt` and kills
    /// the ring (both sides then see it closed).
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, TryRecvError> {
        match self.state {
            State::Open => {}
            State::Closed => return Err(TryRecvError::Closed),
            State::Corrupt => return Err(TryRecvError::Corrupt),
        }
        if self.cached_head == self.tail {
            self.refresh_head()?;
            if self.cached_head == self.tail {
                // Acquire: pairs with the producer's Release fetch_or in
                // close; records published before closing are then visible
                // to the head reload below.
                let closed = self.ring.ctl().closed.0.load(Ordering::Acquire);
                if closed == 0 {
                    return Err(TryRecvError::Empty);
                }
                self.refresh_head()?;
                if self.cached_head == self.tail {
                    return Err(TryRecvError::Closed);
                }
            }
        }
        let avail = self.cached_head.wrapping_sub(self.tail);
        // Relaxed: the record is covered by the Acquire load of head.
        let len = self.ring.word(self.tail).load(Ordering::Relaxed);
        let reserved = self
            .ring
            .word(self.tail.wrapping_add(4))
            .load(Ordering::Relaxed);
        if len > self.ring.max_message || reserved != 0 || record_len(len) > avail as u64 {
            self.corrupt();
            return Err(TryRecvError::Corrupt);
        }
        let len = len as usize;
        let Some(dst) = buf.get_mut(..len) else {
            return Err(TryRecvError::BufferTooSmall { needed: len });
        };
        self.ring
            .read_at(self.tail.wrapping_add(RECORD_HEADER as u32), dst);
        self.tail = self.tail.wrapping_add(record_len(len as u32) as u32);
        // Release: our copy-out above happens-before the producer reuses
        // these bytes (it loads tail with Acquire).
        self.ring.ctl().tail.0.store(self.tail, Ordering::Release);
        // Wake the producer only if it announced it waits for space.
        doorbell::ring(&self.ring.ctl().producer_sleeping.0);
        Ok(len)
    }

    /// Receives one message, waiting per the policy while the ring is empty.
    /// `peer` is asked after each idle sleep slice.
    pub fn recv<L: Liveness + ?Sized>(
        &mut self,
        buf: &mut [u8],
        peer: &mut L,
    ) -> Result<usize, RecvError> {
        let policy = self.policy;
        let ring = self.ring;
        let r = block_on(
            &policy,
            &ring.ctl().consumer_sleeping.0,
            Some(&ring.ctl().producer_cpu.0),
            peer,
            || match self.try_recv(buf) {
                Err(TryRecvError::Empty) => None,
                other => Some(other),
            },
        );
        match r {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(TryRecvError::Closed)) => Err(RecvError::Closed),
            Ok(Err(TryRecvError::Corrupt)) => Err(RecvError::Corrupt),
            Ok(Err(TryRecvError::BufferTooSmall { needed })) => {
                Err(RecvError::BufferTooSmall { needed })
            }
            Ok(Err(TryRecvError::Empty)) => unreachable!("Empty is retried"),
            Err(b) => Err(b.into()),
        }
    }

    /// Takes the ring's first message for good, before acting on it:
    /// `false` if the producer withdrew it ([`Producer::withdraw`]), in
    /// which case it must not be acted on.
    pub fn claim(&self) -> bool {
        self.ring.decide_first(CLAIMED)
    }

    /// Closes the ring from the receiving side: the producer's next send
    /// fails with `Closed`, and a producer waiting for space is woken.
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.state = State::Closed;
        }
        self.ring.close(CLOSED_BY_CONSUMER);
    }
}

impl Drop for Consumer<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Consumer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.ring.cap)
            .field("tail", &self.tail)
            .field("cached_head", &self.cached_head)
            .field("state", &self.state)
            .finish()
    }
}
