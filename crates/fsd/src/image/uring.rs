//! Reads and writes of whole buffers at file offsets through one `io_uring`
//! (the `io-uring` crate): several in flight at once, so the kernel copies
//! while this thread checksums or fills the next buffer.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;

use io_uring::{opcode, types, IoUring};

/// One operation in flight: its buffer (kept alive and unmoved until the
/// kernel completes it), file, offset and length asked for.
struct Slot<T> {
    write: bool,
    buf: Vec<u8>,
    fd: RawFd,
    offset: u64,
    len: usize,
    tag: T,
}

/// A ring with at most `depth` operations in flight, each tagged with a `T`
/// that comes back with its completion.
pub(super) struct Ring<T> {
    ring: IoUring,
    slots: Vec<Option<Slot<T>>>,
    in_flight: usize,
}

/// A completed operation: its tag, buffer and offset; for a read, `buf`
/// holds exactly the bytes read (short only at end of file).
pub(super) struct Done<T> {
    pub(super) tag: T,
    pub(super) buf: Vec<u8>,
    pub(super) offset: u64,
}

impl<T> Ring<T> {
    /// A ring for up to `depth` operations at once.
    pub(super) fn new(depth: usize) -> io::Result<Ring<T>> {
        Ok(Ring {
            ring: IoUring::new(depth.next_power_of_two() as u32)?,
            slots: (0..depth).map(|_| None).collect(),
            in_flight: 0,
        })
    }

    /// Whether another operation can be started without waiting.
    pub(super) fn has_room(&self) -> bool {
        self.in_flight < self.slots.len()
    }

    /// Operations in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Starts reading `len` bytes at `offset` of `fd` into `buf` (resized),
    /// or writing all of `buf` there, at the next [`Ring::submit`] or
    /// [`Ring::wait`]. The caller keeps `fd` open until the operation
    /// completes. Needs [`Ring::has_room`].
    pub(super) fn start(
        &mut self,
        write: bool,
        fd: &impl AsRawFd,
        offset: u64,
        mut buf: Vec<u8>,
        len: usize,
        tag: T,
    ) -> io::Result<()> {
        let i = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or_else(|| io::Error::other("io_uring: no free slot"))?;
        if !write {
            buf.resize(len, 0);
        }
        let fd = fd.as_raw_fd();
        let slot = self.slots[i].insert(Slot {
            write,
            buf,
            fd,
            offset,
            len,
            tag,
        });
        let ptr = slot.buf.as_mut_ptr();
        let n = u32::try_from(slot.len).map_err(|_| io::Error::other("buffer too large"))?;
        let entry = if write {
            opcode::Write::new(types::Fd(fd), ptr, n)
                .offset(offset)
                .build()
        } else {
            opcode::Read::new(types::Fd(fd), ptr, n)
                .offset(offset)
                .build()
        }
        .user_data(i as u64);
        // SAFETY: the buffer lives in `self.slots[i]` until its completion is
        // reaped in `wait` (a Vec's heap memory does not move with it), and
        // `Drop` waits for every operation in flight before freeing slots.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        if pushed.is_err() {
            self.slots[i] = None;
            return Err(io::Error::other("io_uring submission queue full"));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Hands the operations started so far to the kernel (`wait` does too).
    pub(super) fn submit(&mut self) -> io::Result<()> {
        self.ring.submit()?;
        Ok(())
    }

    /// Waits for one operation to complete and returns it. A short read or
    /// write is finished with a plain pread/pwrite; a failed one is the error.
    pub(super) fn wait(&mut self) -> io::Result<Done<T>> {
        loop {
            if let Some(cqe) = self.ring.completion().next() {
                let i = cqe.user_data() as usize;
                let mut slot = self.slots[i].take().expect("completion of a started slot");
                self.in_flight -= 1;
                let res = cqe.result();
                if res < 0 {
                    return Err(io::Error::from_raw_os_error(-res));
                }
                let n = res as usize;
                if n < slot.len {
                    finish_short(&mut slot, n)?;
                }
                return Ok(Done {
                    tag: slot.tag,
                    buf: slot.buf,
                    offset: slot.offset,
                });
            }
            if self.in_flight == 0 {
                return Err(io::Error::other("io_uring: nothing in flight"));
            }
            self.ring.submit_and_wait(1)?;
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // The kernel may still write into (or read from) our buffers: wait
        // for every operation before they are freed.
        while self.in_flight > 0 {
            if self.ring.completion().next().is_some() {
                self.in_flight -= 1;
            } else if self.ring.submit_and_wait(1).is_err() {
                // Cannot wait: leak the buffers rather than free them under
                // the kernel's feet.
                for slot in self.slots.drain(..).flatten() {
                    std::mem::forget(slot.buf);
                }
                return;
            }
        }
    }
}

/// Completes a short transfer synchronously (a write must go through; a
/// read stops at end of file, and `buf` is cut to what was read).
fn finish_short<T>(slot: &mut Slot<T>, done: usize) -> io::Result<()> {
    // SAFETY: the descriptor stays open for the whole operation (caller's
    // contract in `start`); ManuallyDrop keeps us from closing it.
    let file = std::mem::ManuallyDrop::new(unsafe {
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(slot.fd)
    });
    let mut pos = done;
    let write = slot.write;
    while pos < slot.len {
        let off = slot.offset + pos as u64;
        let n = if write {
            file.write_at(&slot.buf[pos..slot.len], off)?
        } else {
            file.read_at(&mut slot.buf[pos..slot.len], off)?
        };
        if n == 0 {
            if write {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            break;
        }
        pos += n;
    }
    slot.buf.truncate(pos);
    Ok(())
}
