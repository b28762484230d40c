//! # shm-ring: a futex-signalled shared-memory SPSC channel between processes
//!
//! Carries every fast-path request of btfuse from the preloaded client
//! library (`libbtfuse.so`, a `#![no_std]` cdylib living inside arbitrary
//! programs) to the daemon, and every reply back.
//!
//! `#![no_std]` by default: core + libc only, no allocation, no panics on
//! any path driven by shared memory. The `std` feature adds only daemon
//! conveniences (`std::error::Error` impls, `Duration` helpers,
//! `From<Errno> for io::Error`); memfd creation and mapping use libc and
//! work without it.
//!
//! ## Shape
//!
//! One channel is one shared region (a sealed memfd): a request ring
//! (client → daemon), a response ring (daemon → client) and a bulk area for
//! large payloads.
//!
//! ```text
//! offset        contents                                   written by
//! 0             Header (repr(C)): magic "BTFSHMRG",        the creator,
//!               version, header size, region_len, per      once, before
//!               ring {ctl_off, data_off, capacity,         the fd is
//!               max_message}, bulk_off, bulk_len, pids     handed out
//! 128           request RingCtl, 7 lines of 128 B:
//!                 head              (producer = client)
//!                 tail              (consumer = daemon)
//!                 consumer_sleeping (doorbell: daemon waits for data)
//!                 producer_sleeping (doorbell: client waits for space)
//!                 closed            (bit 1 producer, bit 2 consumer)
//!                 producer_cpu      (hint: where the producer last ran)
//!                 claim             (fate of the first message)
//! 1024          response RingCtl (same; producer = daemon)
//! 4096          request data:  capacity bytes (power of two)
//! page-aligned  response data: capacity bytes
//! page-aligned  bulk area: bulk_len bytes (e.g. 1-8 MiB)
//! ```
//!
//! Records in a ring: `| len: u32 | 0u32 | payload | pad to 8 |`, starting
//! on multiples of 8; the payload wraps around the end of the data area
//! (copied in two pieces). A message longer than `max_message` is refused
//! with [`SendError::TooLarge`]; large reads and writes go through the bulk
//! area (the client is synchronous, one request in flight per channel).
//! A full ring makes the producer wait; nothing is ever dropped.
//!
//! Setup is two-phase: one side [`Region::create`]s (memfd, `ftruncate`,
//! seals `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`, mmap, header) and
//! passes [`Region::fd`] over a Unix socket (`SCM_RIGHTS`); the other
//! attaches (mmap, copy the header once, validate it: magic, version, and
//! offsets equal to the canonical layout for its sizes, within the
//! mapping). A daemon adopting a channel its client made uses
//! [`Region::attach_fd_expecting`], which also insists on the exact shape
//! it expects and all three seals, and keeps its own copy of the layout. Each side then splits once: [`Region::daemon`] gives
//! ([`Consumer`] of requests, [`Producer`] of responses, [`Bulk`]),
//! [`Region::client`] the mirror. Halves are `Send`, not `Clone`, and borrow
//! the Region.
//!
//! ## Trust model
//!
//! The daemon treats every byte of the region as hostile: a buggy or
//! malicious client can write anything anywhere in it, at any time.
//!
//! * The daemon never reads layout information back from the header; it
//!   keeps the [`RegionLayout`] it computed. Its own indices (`tail` of the
//!   request ring, `head` of the response ring) live in its private memory
//!   and are only *published* to the region.
//! * Every value it reads from the region is validated before use: the
//!   peer's index must move forward by whole 8-byte units and stay within one
//!   capacity of ours; a record's `len` must be `<= max_message`, its
//!   reserved word 0, and the record must end at or before the head. All
//!   ring offsets are masked by `capacity - 1`, so no value can address
//!   memory outside the data area. A violation returns `Corrupt`, marks the
//!   ring dead (every later call returns `Corrupt`) and closes it.
//! * Messages are *copied* into the caller's buffer before anything looks at
//!   them ([`Consumer::recv`]), and the bulk area is read with
//!   [`Bulk::read`]: the client cannot change bytes the daemon is parsing
//!   (no TOCTOU). A client that rewrites a payload while it is copied only
//!   gets garbage answered.
//! * No loop is driven by shared values: every wait is bounded by its
//!   policy (sleep slices + liveness check + optional timeout). A corrupted
//!   doorbell can cause a spurious wakeup or one slice of sleep, never a
//!   hang.
//! * The memfd is sealed against shrinking and growing (and further
//!   sealing), so a client cannot `ftruncate` it to make the daemon's
//!   accesses `SIGBUS`. (Punching holes is still possible; on shmem a hole
//!   reads back as zeros: just more garbage, handled as above.)
//! * The bytes are shared with another process, outside the Rust abstract
//!   machine: control words are accessed only through atomics; payload bytes
//!   are moved with `copy_nonoverlapping` into or out of private memory and
//!   never referenced in place.
//!
//! The client trusts the daemon to be the daemon, but still validates the
//! header and every index exactly as above (the same code), so a dead or
//! confused daemon gives errors, not crashes.
//!
//! ## Waiting and waking
//!
//! Adaptive ([`WaitPolicy`]): spin with `spin_loop` for `spin_ns` (the peer
//! is usually awake and answers in well under a microsecond), optionally
//! `sched_yield` for `yield_ns`, then sleep on the ring's doorbell futex in
//! slices of `sleep_slice_ns`. After a slice with no progress the caller's
//! [`Liveness`] check runs ([`Pidfd`], [`PidAlive`], a closure, ...): a dead
//! peer yields `PeerDead`; `timeout_ns` bounds the whole call (`TimedOut`).
//!
//! The sleeper announces itself in the shared doorbell word before its
//! final re-check; the waker publishes its index, then issues `futex_wake`
//! only if the doorbell says someone sleeps, so there is no syscall while
//! both sides spin. Shared futexes only (no `FUTEX_PRIVATE_FLAG`). The
//! memory-ordering argument that makes lost wakeups impossible is in the
//! `doorbell` module source. `tests/loom.rs` model-checks the crate's own
//! doorbell functions with loom
//! (`RUSTFLAGS="--cfg loom" cargo test -p shm-ring --test loom --release`):
//! one message, and a full round trip both ways, pass; a two-message model
//! is `#[ignore]`d because loom 0.7 reports a deadlock in a schedule that
//! C11's SeqCst-fence rule forbids (explained at the test). The sleep-mode
//! ping-pong stress tests (in-process and across processes) cover that
//! schedule for real: a liveness hook fails them if any wait ever needed a
//! slice timeout.
//!
//! Every producer publishes the CPU it last sent from (a hint,
//! [`Producer::note_cpu`], [`Consumer::peer_cpu`]); a consumer whose peer
//! runs on its own CPU skips the spin and sleeps at once, because spinning
//! there only keeps the peer from running.
//!
//! Either side can close a ring ([`Producer::close`], [`Consumer::close`],
//! also on drop): the flag is published like an index and the peer is
//! woken. A consumer drains what was sent before the close, then gets
//! `Closed`.
//!
//! A producer may send before its consumer exists (a client that does not
//! wait for the daemon to take its channel). The fate of that first message
//! is decided once, by compare-and-swap on a shared word: the consumer
//! [`Consumer::claim`]s it before acting on it, or the producer
//! [`Producer::withdraw`]s it after giving up; never both.
//!
//! ## Many channels on one thread
//!
//! [`wait_any`] sleeps on up to 128 channels' doorbells with one
//! `futex_waitv(2)`; see the `multi` module source for the measurements
//! behind that choice over epoll + eventfd, io_uring futex ops and a shared
//! daemon doorbell.
//!
//! ## Memory ordering, index by index
//!
//! * `head`: producer stores with `Release` after writing the record;
//!   consumer loads with `Acquire` before reading it.
//! * `tail`: consumer stores with `Release` after copying the record out;
//!   producer loads with `Acquire` before overwriting those bytes.
//! * record header words: `Relaxed`, ordered by the `head` pair above.
//! * `closed`: `fetch_or(Release)` / `load(Acquire)`, so records sent before
//!   a close are seen by the consumer that sees the close.
//! * doorbells: `Relaxed` stores/loads around a `SeqCst` fence on each side
//!   (a Dekker handshake); see `doorbell`.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]
// MSRV is 1.85 (workspace rust-version); `is_multiple_of` is 1.87+.
#![allow(clippy::manual_is_multiple_of)]
#![cfg_attr(loom, allow(dead_code, unused_imports))]

mod doorbell;
#[cfg(not(loom))]
mod layout;
#[cfg(not(loom))]
mod multi;
#[cfg(not(loom))]
mod region;
#[cfg(not(loom))]
mod ring;
mod sys;
#[cfg(not(loom))]
mod wait;

#[cfg(not(loom))]
pub use layout::{
    record_len, Config, LayoutError, RegionLayout, RingDesc, CACHE_LINE, MAGIC, MAX_BULK,
    MAX_CAPACITY, MIN_CAPACITY, PAGE, RECORD_ALIGN, RECORD_HEADER, VERSION,
};
#[cfg(not(loom))]
pub use multi::{wait_any, WaitAny, MAX_WAIT_ANY};
#[cfg(not(loom))]
pub use region::{Bulk, ClientEnd, DaemonEnd, Mapping, OutOfBounds, Region, RegionError};
#[cfg(not(loom))]
pub use ring::{Consumer, Producer, RecvError, SendError, TryRecvError, TrySendError};
pub use sys::{monotonic_ns, Errno};
#[cfg(not(loom))]
pub use wait::{AssumeAlive, Liveness, PidAlive, Pidfd, WaitPolicy};

/// The doorbell protocol with loom's atomics and futex model, for
/// `tests/loom.rs` only.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::doorbell::{
        announce_sleep, cancel_sleep, fence, ring, AtomicU32, Ordering, AWAKE, SLEEPING,
    };

    /// S4 of the protocol (the model futex has no timeout).
    pub fn sleep(bell: &AtomicU32) {
        let _ = crate::doorbell::sleep(bell, u64::MAX);
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
