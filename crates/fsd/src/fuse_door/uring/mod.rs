//! FUSE over io_uring: the kernel's per-CPU request queues, served by one
//! daemon thread bound to each CPU.
//!
//! Through `/dev/fuse` a request wakes whichever daemon thread waited
//! longest, and the scheduler sends a woken thread to an idle CPU; on a
//! virtual machine whose idle vCPUs halt, each of the two wake-ups of a
//! round trip (the daemon's, then the caller's) is a halted vCPU woken by
//! the host. Measured here (2 vCPUs, an `ioctl` answered `ENOTTY` in a
//! loop): 10 µs a round trip with the caller and the daemon on one CPU,
//! 85 µs with them pinned apart, 22–70 µs left to the scheduler. With
//! `FUSE_OVER_IO_URING` the kernel queues a request on the ring of the
//! CPU its caller runs on, and that ring's thread, bound to that CPU, is
//! woken there: the caller sleeps and the thread answers on its CPU
//! (11.6–14.9 µs a round trip in that loop). The caller's own wake-up is
//! placed by the scheduler, on an idle CPU if there is one; while the
//! machine has CPUs to spare the queue threads run at `SCHED_IDLE`, so that
//! the CPU the caller slept on counts as idle and it wakes there
//! ([`Yielding`]).
//!
//! Each ring entry is a request buffer the kernel fills: a header area
//! (`fuse_in_header`, the operation's own header, the entry's commit id
//! and payload size) and a payload area (names, written data). A request
//! is laid out as `/dev/fuse` would deliver it and dispatched to the same
//! filesystem as the device's requests ([`fuser::Dispatcher`]); the reply
//! is written back into the entry and committed with the fetch of the
//! next request, in one submission. FORGET and INTERRUPT still come
//! through `/dev/fuse`, to `fuser`'s threads.
//!
//! Written here because `fuser` has no io_uring transport (its request
//! decoding and dispatch are reused through `vendor/fuser`'s patch).
//! Needs the kernel's `fuse.enable_uring=1` (the kernel offers
//! `FUSE_OVER_IO_URING` only then); without it the mount is served through
//! `/dev/fuse` alone, as before.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fuser::{Dispatcher, Filesystem};
use io_uring::{cqueue, opcode, squeue, types, IoUring};

use yielding::Yielding;

mod yielding;

/// `FUSE_IO_URING_CMD_REGISTER`: hands the kernel an entry's buffers.
const CMD_REGISTER: u32 = 1;
/// `FUSE_IO_URING_CMD_COMMIT_AND_FETCH`: commits a reply, waits for the
/// next request.
const CMD_COMMIT_AND_FETCH: u32 = 2;
/// Entries per CPU: requests the kernel can hand one thread at once.
const DEPTH: usize = 4;
/// `FUSE_URING_IN_OUT_HEADER_SZ` and `FUSE_URING_OP_IN_OUT_SZ`.
const IN_OUT_SZ: usize = 128;
const OP_IN_SZ: usize = 128;
/// `sizeof(struct fuse_in_header)`, `sizeof(struct fuse_out_header)`.
const IN_HEADER: usize = 40;
const OUT_HEADER: usize = 16;
/// Room before an entry's payload for the request's headers, so that a
/// request is one contiguous buffer without copying its payload.
const PREFIX: usize = IN_HEADER + OP_IN_SZ;
/// Bytes of an entry's header area (`ReqHeader`, cache-line rounded).
const HEADER_AREA: usize = size_of::<ReqHeader>().next_multiple_of(64);

/// `struct fuse_uring_req_header`.
#[repr(C)]
struct ReqHeader {
    in_out: [u8; IN_OUT_SZ],
    op_in: [u8; OP_IN_SZ],
    /// `struct fuse_uring_ent_in_out`.
    flags: u64,
    commit_id: u64,
    payload_sz: u32,
    padding: u32,
    reserved: u64,
}

/// `struct fuse_uring_cmd_req`, the command area of a ring SQE.
#[repr(C)]
struct CmdReq {
    flags: u64,
    commit_id: u64,
    qid: u16,
    padding: [u8; 6],
}

/// Starts one thread per possible CPU (the kernel uses the ring only once
/// every CPU's queue has an entry), each bound to its CPU where allowed.
/// `fuse` is the mount's `/dev/fuse` connection; `payload` the largest
/// request or reply payload (the kernel's `max_write`/`max_pages`).
/// The threads end when the connection does. On an error some queues may
/// have started: the kernel keeps using `/dev/fuse` until every queue has
/// an entry.
pub fn start<FS: Filesystem + 'static>(
    fuse: OwnedFd,
    dispatcher: Dispatcher<FS>,
    payload: usize,
) -> io::Result<()> {
    let fuse = Arc::new(fuse);
    let dispatcher = Arc::new(dispatcher);
    for qid in 0..possible_cpus()? {
        let (fuse, dispatcher) = (fuse.clone(), dispatcher.clone());
        let queue = Queue::new(fuse.as_raw_fd(), qid as u16, payload)?;
        std::thread::Builder::new()
            .name(format!("btfuse-ring-{qid}"))
            .spawn(move || {
                crate::cpu_affinity::bind_to(qid);
                if let Err(e) = queue.serve(&dispatcher) {
                    log::warn!("FUSE io_uring queue {qid}: {e}");
                }
                drop(fuse);
            })?;
    }
    Ok(())
}

/// One CPU's ring and its entries.
struct Queue {
    /// Dropped first (field order): its commands refer to the entries.
    ring: IoUring<squeue::Entry128, cqueue::Entry>,
    fuse: RawFd,
    qid: u16,
    entries: Vec<Entry>,
}

/// A request buffer the kernel fills and the reply written back into it.
struct Entry {
    /// The header area, then [`PREFIX`] spare bytes, then the payload.
    mem: Region,
    /// The two areas, as the kernel is given them at registration.
    iov: Box<[libc::iovec; 2]>,
    /// Where this entry's replies go.
    slot: Arc<Slot>,
    reply: fuser::RawReplySender,
}

// SAFETY: an entry owns its region and the iovecs pointing into it; it is
// moved to its queue's thread before registration and used there alone.
unsafe impl Send for Entry {}

impl Queue {
    fn new(fuse: RawFd, qid: u16, payload: usize) -> io::Result<Queue> {
        let ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
            .setup_submit_all()
            .setup_cqsize(2 * DEPTH as u32)
            .build(DEPTH as u32)?;
        let entries = (0..DEPTH)
            .map(|_| Entry::new(payload))
            .collect::<io::Result<_>>()?;
        Ok(Queue {
            ring,
            fuse,
            qid,
            entries,
        })
    }

    /// Registers the entries and serves requests until the connection ends.
    fn serve<FS: Filesystem>(mut self, dispatcher: &Dispatcher<FS>) -> io::Result<()> {
        for i in 0..self.entries.len() {
            self.push(i, CMD_REGISTER)?;
        }
        let mut done: Vec<(usize, i32)> = Vec::with_capacity(2 * DEPTH);
        let mut yielding = Yielding::default();
        loop {
            yielding.follow_the_load();
            // The replies out, the next requests in, in one system call.
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
            done.clear();
            done.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data() as usize, c.result())),
            );
            for &(i, res) in &done {
                match res {
                    0 => {
                        self.entries[i].serve(dispatcher);
                        self.push(i, CMD_COMMIT_AND_FETCH)?;
                    }
                    // The kernel asks again for the same command.
                    e if e == -libc::EINTR || e == -libc::EAGAIN => {
                        let cmd = if self.entries[i].header().commit_id == 0 {
                            CMD_REGISTER
                        } else {
                            CMD_COMMIT_AND_FETCH
                        };
                        self.push(i, cmd)?;
                    }
                    // The connection ended (unmount, abort).
                    e if e == -libc::ENOTCONN || e == -libc::ENODEV => return Ok(()),
                    e => return Err(io::Error::from_raw_os_error(-e)),
                }
            }
        }
    }

    /// Queues `cmd` for entry `i` (submitted by the next `submit_and_wait`).
    fn push(&mut self, i: usize, cmd: u32) -> io::Result<()> {
        let entry = &self.entries[i];
        let req = CmdReq {
            flags: 0,
            commit_id: if cmd == CMD_REGISTER {
                0
            } else {
                entry.header().commit_id
            },
            qid: self.qid,
            padding: [0; 6],
        };
        let mut area = [0u8; 80];
        // SAFETY: `CmdReq` is plain data of 24 bytes, within the 80.
        let bytes = unsafe {
            std::slice::from_raw_parts((&req as *const CmdReq).cast::<u8>(), size_of::<CmdReq>())
        };
        area[..bytes.len()].copy_from_slice(bytes);
        let mut sqe = opcode::UringCmd80::new(types::Fd(self.fuse), cmd)
            .cmd(area)
            .addr(Some(entry.iov.as_ptr() as u64))
            .build()
            .user_data(i as u64);
        if cmd == CMD_REGISTER {
            set_sqe_len(&mut sqe, 2);
        }
        // SAFETY: the entry's buffers and iovecs live in `self.entries`
        // until the ring (and so every command on it) is gone: `entries`
        // is dropped after `ring` (field order).
        unsafe { self.ring.submission().push(&sqe) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))
    }
}

impl Entry {
    fn new(payload: usize) -> io::Result<Entry> {
        let mem = Region::new(HEADER_AREA + PREFIX + payload)?;
        let base = mem.ptr;
        // SAFETY: within the region (its length above).
        let payload_ptr = unsafe { base.add(HEADER_AREA + PREFIX) };
        let iov = Box::new([
            libc::iovec {
                iov_base: base.cast(),
                iov_len: size_of::<ReqHeader>(),
            },
            libc::iovec {
                iov_base: payload_ptr.cast(),
                iov_len: payload,
            },
        ]);
        let slot = Arc::new(Slot {
            header: SendPtr(base),
            payload: SendPtr(payload_ptr),
            payload_len: payload,
            replied: AtomicBool::new(false),
            stage: AtomicBool::new(false),
            staged: parking_lot::Mutex::new(Vec::new()),
        });
        let to = slot.clone();
        let reply: fuser::RawReplySender = Arc::new(move |bufs: &[IoSlice<'_>]| {
            to.reply(bufs);
            Ok(())
        });
        Ok(Entry {
            mem,
            iov,
            slot,
            reply,
        })
    }

    fn header(&self) -> &ReqHeader {
        // SAFETY: the region starts with a `ReqHeader` (plain data, any
        // bytes valid), page-aligned; the kernel writes it only while the
        // entry is with the kernel, not while this thread reads it.
        unsafe { &*self.mem.ptr.cast::<ReqHeader>() }
    }

    /// Dispatches the request the kernel put in this entry; its reply is
    /// in the entry when this returns.
    fn serve<FS: Filesystem>(&self, dispatcher: &Dispatcher<FS>) {
        let h = self.header();
        let in_header = &h.in_out[..IN_HEADER];
        let len = u32::from_ne_bytes(in_header[..4].try_into().unwrap()) as usize;
        let unique = u64::from_ne_bytes(in_header[8..16].try_into().unwrap());
        let payload_sz = (h.payload_sz as usize).min(self.slot.payload_len);
        // The operation's header is what the request's length leaves
        // beside the fixed header and the payload.
        let op_len = len.saturating_sub(IN_HEADER + payload_sz).min(OP_IN_SZ);
        // The headers go right before the payload: one contiguous request.
        let start = HEADER_AREA + PREFIX - IN_HEADER - op_len;
        // SAFETY: `start..start + IN_HEADER + op_len` is the spare room
        // before the payload, which nothing else uses; the header area is
        // read through `h`, a different range.
        let request = unsafe {
            let dst = self.mem.ptr.add(start);
            std::ptr::copy_nonoverlapping(h.in_out.as_ptr(), dst, IN_HEADER);
            std::ptr::copy_nonoverlapping(h.op_in.as_ptr(), dst.add(IN_HEADER), op_len);
            std::slice::from_raw_parts(dst, IN_HEADER + op_len + payload_sz)
        };
        // A handler may still read the request's payload after it replied
        // (a write is acknowledged before its bytes are copied), and the
        // reply goes where the payload is: such replies wait aside.
        self.slot.begin(payload_sz > 0);
        if dispatcher.dispatch(request, self.reply.clone()).is_err() {
            log::warn!("FUSE io_uring: malformed request {unique}");
        }
        if !self.slot.finish() {
            // Every request is answered, or its caller waits forever.
            let h = out_header(unique, -libc::EIO, 0);
            self.slot.reply(&[IoSlice::new(&h)]);
        }
    }
}

/// An entry's reply target: the reply's header goes into the header area,
/// the rest into the payload area, its length beside them.
struct Slot {
    header: SendPtr,
    payload: SendPtr,
    payload_len: usize,
    /// Set once the request is answered.
    replied: AtomicBool,
    /// Whether a reply is kept in `staged` until the handler returns.
    stage: AtomicBool,
    staged: parking_lot::Mutex<Vec<u8>>,
}

impl Slot {
    /// Starts a request; `stage`: keep its reply aside until [`Slot::finish`].
    fn begin(&self, stage: bool) {
        self.replied.store(false, Ordering::Relaxed);
        self.stage.store(stage, Ordering::Relaxed);
    }

    /// Ends a request (its handler returned): writes a reply kept aside.
    /// Whether it was answered.
    fn finish(&self) -> bool {
        if !self.replied.load(Ordering::Acquire) {
            return false;
        }
        if self.stage.swap(false, Ordering::Relaxed) {
            self.write(&[IoSlice::new(&self.staged.lock())]);
        }
        true
    }

    /// The reply callback: the reply as the device would receive it.
    fn reply(&self, bufs: &[IoSlice<'_>]) {
        if self.stage.load(Ordering::Relaxed) {
            let mut staged = self.staged.lock();
            staged.clear();
            for b in bufs {
                staged.extend_from_slice(b);
            }
        } else {
            self.write(bufs);
        }
        self.replied.store(true, Ordering::Release);
    }

    /// Writes a reply into the entry (`EIO` for one that does not fit).
    fn write(&self, bufs: &[IoSlice<'_>]) {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let fits = total >= OUT_HEADER && total - OUT_HEADER <= self.payload_len;
        let mut out = [0u8; OUT_HEADER];
        let mut at = 0usize;
        let mut written = 0usize;
        for b in bufs {
            let mut rest = &b[..];
            if at < OUT_HEADER {
                let n = rest.len().min(OUT_HEADER - at);
                out[at..at + n].copy_from_slice(&rest[..n]);
                at += n;
                rest = &rest[n..];
            }
            if fits && !rest.is_empty() {
                // SAFETY: `written + rest.len() <= payload_len` (`fits`),
                // within the payload area.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        rest.as_ptr(),
                        self.payload.0.add(written),
                        rest.len(),
                    )
                };
                written += rest.len();
            }
        }
        if !fits {
            let unique = u64::from_ne_bytes(out[8..16].try_into().unwrap());
            out = out_header(unique, -libc::EIO, 0);
            written = 0;
        }
        // SAFETY: the header area starts with this entry's `ReqHeader`,
        // which the kernel does not touch until the reply is committed.
        unsafe {
            let h = self.header.0.cast::<ReqHeader>();
            std::ptr::copy_nonoverlapping(out.as_ptr(), (*h).in_out.as_mut_ptr(), OUT_HEADER);
            (*h).payload_sz = written as u32;
        }
    }
}

/// The fixed reply header: length, error, unique.
fn out_header(unique: u64, error: i32, len: usize) -> [u8; OUT_HEADER] {
    let mut h = [0u8; OUT_HEADER];
    h[..4].copy_from_slice(&((OUT_HEADER + len) as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&error.to_ne_bytes());
    h[8..].copy_from_slice(&unique.to_ne_bytes());
    h
}

/// A pointer into an entry's region, shared with its reply callback.
struct SendPtr(*mut u8);
// SAFETY: the region outlives the callback's uses (the entry owns both and
// the callback runs only while the entry's request is being served).
unsafe impl Send for SendPtr {}
// SAFETY: as above; one request of an entry is served at a time.
unsafe impl Sync for SendPtr {}

/// Sets an SQE's `len` (the iovec count a registration needs), which the
/// `io-uring` crate's `UringCmd80` leaves 0.
fn set_sqe_len(sqe: &mut squeue::Entry128, len: u32) {
    /// Offset of `len` in `struct io_uring_sqe` (the kernel's ABI).
    const LEN_OFFSET: usize = 24;
    const _: () = assert!(size_of::<squeue::Entry128>() == 128);
    // SAFETY: `Entry128` is the 128-byte SQE (asserted above), `len` a u32
    // at its ABI offset.
    unsafe {
        let p = (sqe as *mut squeue::Entry128).cast::<u8>().add(LEN_OFFSET);
        p.cast::<u32>().write_unaligned(len);
    }
}

/// Anonymous memory for an entry (page-aligned, as the kernel pins it).
struct Region {
    ptr: *mut u8,
    len: usize,
}

impl Region {
    fn new(len: usize) -> io::Result<Region> {
        // SAFETY: a fresh private anonymous mapping; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Region {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`: the
/// kernel makes one queue per possible CPU).
fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let last = text
        .trim()
        .split(',')
        .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok())
        .max()
        .ok_or_else(|| io::Error::other("cannot parse the possible CPUs"))?;
    Ok(last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_the_kernels() {
        assert_eq!(size_of::<ReqHeader>(), 288);
        assert_eq!(size_of::<CmdReq>(), 24);
    }

    #[test]
    fn out_header_says_length_error_and_unique() {
        let h = out_header(7, -libc::EIO, 4);
        assert_eq!(u32::from_ne_bytes(h[..4].try_into().unwrap()), 20);
        assert_eq!(i32::from_ne_bytes(h[4..8].try_into().unwrap()), -libc::EIO);
        assert_eq!(u64::from_ne_bytes(h[8..].try_into().unwrap()), 7);
    }
}
