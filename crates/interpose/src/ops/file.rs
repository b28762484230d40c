//! Data calls on an open fast-path file (`FileRef`) and the iovec
//! helpers they use.

use super::*;

/// Validated view of one of our fds for a data call.
pub(crate) struct FileRef {
    pub(crate) r: OfdRef,
    /// The fd number it was reached by.
    pub(crate) fd: c_int,
    pub(crate) mount: usize,
    /// The OFD's handle when reached: a daemon handle, or the number of a
    /// file opened from the public table (see [`FileRef::fh`]).
    pub(crate) handle: u64,
    pub(crate) flags: u32,
}

impl Drop for FileRef {
    fn drop(&mut self) {
        put(OfdRef { idx: self.r.idx });
    }
}

/// A fast-path fd inherited across `fork`: its daemon handle belongs to
/// the parent and is left alone. The prepare handler made it
/// kernel-backed: it is a kernel fd on the same file (shared offset), used
/// like any other from now on, so it leaves the table. If it could not,
/// it stays in the table and every call on it fails with `EBADF` (the
/// calls the library does not catch fail on its `O_PATH` placeholder),
/// never acting on another file: only the handle's holder may reopen it
/// through the kernel (see [`kernel_reopen`]).
pub(crate) fn forget_inherited(fd: c_int) -> R<()> {
    if !is_kernel_backed(fd) {
        return Err(Fail::Errno(libc::EBADF));
    }
    if let Some(r) = FDS.remove(fd) {
        // Not ours to release: `put` only releases handles of this epoch.
        put(r);
    }
    Ok(())
}

/// The OFD behind `fd`, checked against the fork epoch. `None` when `fd`
/// is not ours (any more: an fd inherited across fork is a kernel fd,
/// see [`forget_inherited`]).
pub(crate) fn file(fd: c_int) -> Option<R<FileRef>> {
    let r = FDS.get(fd)?;
    let o = FDS.ofd(r.idx);
    if o.epoch.load(Ordering::Relaxed) != state::epoch() {
        put(r);
        return match forget_inherited(fd) {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        };
    }
    let f = FileRef {
        fd,
        mount: o.mount.load(Ordering::Relaxed) as usize,
        handle: o.handle.load(Ordering::Relaxed),
        flags: o.flags.load(Ordering::Relaxed),
        r,
    };
    Some(Ok(f))
}

impl FileRef {
    /// The daemon's handle of the file (see [`daemon_handle`]).
    pub(crate) fn fh(&self) -> R<u64> {
        match self.handle & public::TABLE_FH {
            0 => Ok(self.handle),
            _ => daemon_handle(self.mount, self.ofd()),
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.flags & KIND_DIR != 0
    }
    pub(crate) fn readable(&self) -> bool {
        (self.flags as i32 & libc::O_ACCMODE) != libc::O_WRONLY
    }
    fn writable(&self) -> bool {
        (self.flags as i32 & libc::O_ACCMODE) != libc::O_RDONLY
    }
    pub(crate) fn ofd(&self) -> &'static crate::fdtable::Ofd {
        FDS.ofd(self.r.idx)
    }

    /// `fcntl(F_SETFL)` adding `O_NOATIME`: the daemon decides, as the
    /// kernel does, whether the caller may (`EPERM` unless it owns the file
    /// or holds `CAP_FOWNER`).
    pub(crate) fn may_set_noatime(&self) -> R<()> {
        request(self.mount, &ops::SetNoatime { fh: self.fh()? }, b"", b"").map(drop)
    }

    /// Whether the fd is a real kernel fd whose offset is authoritative.
    pub(crate) fn kernel_backed(&self) -> bool {
        self.flags & KIND_KERNEL != 0
    }

    /// The file offset: the kernel fd's for kernel-backed fds (stdio may
    /// have moved it), else the OFD's.
    pub(crate) fn position(&self) -> R<u64> {
        if self.kernel_backed() {
            let p =
                sys::sc!(libc::SYS_lseek, self.fd, 0i64, libc::SEEK_CUR).map_err(Fail::Errno)?;
            return Ok(p as u64);
        }
        Ok(self.ofd().offset.load(Ordering::Relaxed))
    }

    /// Moves the file offset (see [`FileRef::position`]).
    pub(crate) fn set_position(&self, pos: u64) -> R<()> {
        if self.kernel_backed() {
            sys::sc!(libc::SYS_lseek, self.fd, pos as i64, libc::SEEK_SET).map_err(Fail::Errno)?;
            return Ok(());
        }
        self.ofd().offset.store(pos, Ordering::Relaxed);
        Ok(())
    }

    /// Runs `f` with the OFD's offset lock (bounded spin: a signal handler
    /// that re-enters on the same OFD proceeds unlocked rather than hang).
    pub(crate) fn with_pos<T>(&self, f: impl FnOnce(&AtomicU64Like) -> T) -> T {
        let o = self.ofd();
        let mut locked = false;
        for i in 0..10_000u32 {
            if o.pos_lock
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                locked = true;
                break;
            }
            if i % 128 == 127 {
                let _ = sys::sc!(libc::SYS_sched_yield);
            }
            core::hint::spin_loop();
        }
        let v = f(&o.offset);
        if locked {
            o.pos_lock.store(0, Ordering::Release);
        }
        v
    }

    /// Reads up to `len` bytes at `off` into the scatter list `iov`.
    pub(crate) fn pread(&self, iov: &[libc::iovec], off: u64) -> R<usize> {
        if self.is_dir() {
            return Err(Fail::Errno(libc::EISDIR));
        }
        if !self.readable() {
            return Err(Fail::Errno(libc::EBADF));
        }
        // At or past the end the open saw, nothing having changed since: the
        // end of the file, without asking (`cat` and python read until a
        // read returns 0).
        if super::open_attr(self).is_some_and(|a| off >= a.size) {
            return Ok(0);
        }
        let total = iov_total(iov);
        let ino = self.ofd().ino.load(Ordering::Relaxed);
        if let Some(n) = self.read_kept(ino, iov, off, total) {
            return n;
        }
        // Before a channel is held: it may take a round trip of its own.
        let fh = self.fh()?;
        let mut done = 0usize;
        while done < total {
            let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
            let (bulk, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
            let want = (total - done).min(blen);
            let read = ops::Read {
                fh,
                offset: off + done as u64,
                len: want as u64,
            };
            let mut reply = [0u8; REPLY_BUF];
            let out = match ch.call(&read, b"", b"", &mut reply) {
                Ok((out, _)) => out,
                Err(CallError::Chan(_)) => return Err(Fail::Errno(libc::EIO)),
                Err(_) if done > 0 => break,
                Err(e) => return Err(e.into()),
            };
            let got = (out.count as usize).min(want);
            // The read updated the atime: the file's attributes now, for
            // the `fstat` and the read at the end that usually follow.
            super::renew_open_attr(self.ofd(), &out.attr, out.stamp);
            if off == 0 && done == 0 && got <= filecache::DATA_MAX {
                // SAFETY: as below.
                let bytes = unsafe { core::slice::from_raw_parts(bulk, got) };
                filecache::keep_data(self.mount, ino, &out.attr, out.stamp, bytes);
            }
            // SAFETY: `got <= blen` bytes of the bulk area, which is ours
            // until `ch` drops; copied out before anything looks at it.
            let put = unsafe { iov_scatter(iov, done, bulk, got) };
            done += put;
            // A caller's buffer that faults: as the kernel, a short count
            // when some bytes arrived, EFAULT when none did (the offset
            // moves only by what was copied).
            if put < got && done == 0 {
                return Err(Fail::Errno(libc::EFAULT));
            }
            if put < want {
                break;
            }
        }
        Ok(done)
    }

    /// [`Self::pread`] of kept bytes of file `ino`, if they still hold: the
    /// ones this open brought (`opendata`), or those of a file the process
    /// opened before (`filecache`); `total`: the bytes `iov` asks for.
    fn read_kept(&self, ino: u64, iov: &[libc::iovec], off: u64, total: usize) -> Option<R<usize>> {
        let now = || channel::now(self.mount);
        let mut want = 0;
        let mut copy = |b: &[u8]| {
            want = b.len().min(total);
            // SAFETY: `want` bytes of `b`.
            unsafe { iov_scatter(iov, 0, b.as_ptr(), want) }
        };
        let opened = opendata::Key {
            mount: self.mount,
            fh: self.handle,
            ino,
            epoch: state::epoch(),
        };
        let put = opendata::read(&opened, off, now, sys::wall_secs, &mut copy)
            .or_else(|| filecache::read(self.mount, ino, off, now, sys::wall_secs, &mut copy))?;
        // As the kernel: EFAULT when no byte could be copied.
        Some(match put {
            0 if want > 0 => Err(Fail::Errno(libc::EFAULT)),
            n => Ok(n),
        })
    }

    /// Writes the gather list `iov` at `off` (ignored with `O_APPEND`).
    /// Returns (bytes written, offset after the write).
    pub(crate) fn pwrite(&self, iov: &[libc::iovec], off: u64, append: bool) -> R<(usize, u64)> {
        if self.is_dir() {
            return Err(Fail::Errno(libc::EBADF));
        }
        if !self.writable() {
            return Err(Fail::Errno(libc::EBADF));
        }
        let total = iov_total(iov);
        let fh = self.fh()?;
        let mut done = 0usize;
        let mut end = off;
        loop {
            let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
            let (bulk, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
            let want = (total - done).min(blen);
            // SAFETY: `want <= blen` bytes of our bulk area.
            let got = unsafe { iov_gather(iov, done, bulk, want) };
            // A caller's buffer that faults: as the kernel, only what could
            // be read is written (a short count), EFAULT when nothing.
            let faulted = got < want;
            if faulted && got == 0 {
                if done == 0 {
                    return Err(Fail::Errno(libc::EFAULT));
                }
                break;
            }
            let want = got;
            let write = ops::Write {
                fh,
                offset: off + done as u64,
                len: want as u64,
                flags: if append { libc::O_APPEND as u32 } else { 0 },
                _pad: 0,
            };
            let mut reply = [0u8; REPLY_BUF];
            let out = match ch.call(&write, b"", b"", &mut reply) {
                Ok((out, _)) => out,
                Err(CallError::Chan(_)) => return Err(Fail::Errno(libc::EIO)),
                Err(_) if done > 0 => break,
                Err(e) => return Err(e.into()),
            };
            let put_n = (out.count as usize).min(want);
            done += put_n;
            end = out.offset.saturating_add(put_n as u64);
            if put_n < want || done >= total || faulted {
                break;
            }
        }
        Ok((done, end))
    }
}

impl FileRef {
    /// The file half of a `sendfile` from kernel fd `src` (read with
    /// `pread` at `src_off`) into this file at `off`: up to `len` bytes,
    /// read straight into the channel's bulk area and written from there,
    /// so the file stays a fast-path file. The bytes written.
    pub(crate) fn send_from(&self, off: u64, src: c_int, src_off: u64, len: usize) -> R<usize> {
        if self.is_dir() || !self.writable() {
            return Err(Fail::Errno(libc::EBADF));
        }
        let fh = self.fh()?;
        let mut done = 0usize;
        while done < len {
            let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
            let (bulk, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
            let want = (len - done).min(blen);
            let at = (src_off + done as u64) as i64;
            let got = match sys::sc!(libc::SYS_pread64, src, bulk, want, at) {
                Ok(0) => break,
                Ok(n) => n as usize,
                Err(_) if done > 0 => break,
                Err(e) => return Err(Fail::Errno(e)),
            };
            let write = ops::Write {
                fh,
                offset: off + done as u64,
                len: got as u64,
                flags: 0,
                _pad: 0,
            };
            let mut reply = [0u8; REPLY_BUF];
            let put = match ch.call(&write, b"", b"", &mut reply) {
                Ok((out, _)) => (out.count as usize).min(got),
                Err(CallError::Chan(_)) => return Err(Fail::Errno(libc::EIO)),
                Err(_) if done > 0 => break,
                Err(e) => return Err(e.into()),
            };
            done += put;
            if put < got || got < want {
                break;
            }
        }
        Ok(done)
    }

    /// The file half of a `sendfile` from this file at `off` to kernel fd
    /// `dst` (written with `write` at its own offset): up to `len` bytes,
    /// read into the channel's bulk area and written from there. The bytes
    /// written (a short count when `dst` took fewer).
    pub(crate) fn send_to(&self, off: u64, dst: c_int, len: usize) -> R<usize> {
        if self.is_dir() || !self.readable() {
            return Err(Fail::Errno(libc::EBADF));
        }
        let fh = self.fh()?;
        let mut done = 0usize;
        while done < len {
            let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
            let (bulk, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
            let read = ops::Read {
                fh,
                offset: off + done as u64,
                len: (len - done).min(blen) as u64,
            };
            let mut reply = [0u8; REPLY_BUF];
            let got = match ch.call(&read, b"", b"", &mut reply) {
                Ok((out, _)) => (out.count as usize).min(blen),
                Err(CallError::Chan(_)) => return Err(Fail::Errno(libc::EIO)),
                Err(_) if done > 0 => break,
                Err(e) => return Err(e.into()),
            };
            if got == 0 {
                break;
            }
            let put = match sys::sc!(libc::SYS_write, dst, bulk, got) {
                Ok(n) => n as usize,
                Err(_) if done > 0 => break,
                Err(e) => return Err(Fail::Errno(e)),
            };
            done += put;
            if put < got {
                break;
            }
        }
        Ok(done)
    }

    /// `lseek(SEEK_DATA | SEEK_HOLE)`, answered by the daemon from the
    /// file's allocated blocks.
    pub(crate) fn seek_data_hole(&self, off: i64, whence: c_int) -> R<i64> {
        if off < 0 {
            return Err(Fail::Errno(libc::ENXIO));
        }
        let seek = ops::Lseek {
            fh: self.fh()?,
            offset: off as u64,
            whence: whence as u32,
            _pad: 0,
        };
        let out = request(self.mount, &seek, b"", b"")?;
        i64::try_from(out.offset).map_err(|_| Fail::Errno(libc::EOVERFLOW))
    }

    /// `fallocate(2)`, with the checks the kernel makes before the
    /// filesystem sees the call.
    pub(crate) fn fallocate(&self, mode: c_int, off: i64, len: i64) -> R<()> {
        if off < 0 || len <= 0 {
            return Err(Fail::Errno(libc::EINVAL));
        }
        if !self.writable() {
            return Err(Fail::Errno(libc::EBADF));
        }
        if self.is_dir() {
            return Err(Fail::Errno(libc::EISDIR));
        }
        let falloc = ops::Fallocate {
            fh: self.fh()?,
            offset: off as u64,
            len: len as u64,
            mode: mode as u32,
            _pad: 0,
        };
        request(self.mount, &falloc, b"", b"").map(drop)
    }

    /// `copy_file_range(2)` from this file to `out` on the same mount,
    /// served inside the daemon (no data crosses the ring).
    pub(crate) fn copy_to(&self, off_in: u64, out: &FileRef, off_out: u64, len: usize) -> R<usize> {
        if !self.readable() || !out.writable() || out.flags as i32 & libc::O_APPEND != 0 {
            return Err(Fail::Errno(libc::EBADF));
        }
        if self.is_dir() || out.is_dir() {
            return Err(Fail::Errno(libc::EISDIR));
        }
        let copy = ops::CopyFileRange {
            fh_in: self.fh()?,
            off_in,
            fh_out: out.fh()?,
            off_out,
            len: len as u64,
        };
        let out = request(self.mount, &copy, b"", b"")?;
        Ok((out.count as usize).min(len))
    }
}

/// The offset cell of an OFD.
pub(crate) type AtomicU64Like = core::sync::atomic::AtomicU64;

pub(crate) fn iov_total(iov: &[libc::iovec]) -> usize {
    iov.iter().fold(0usize, |a, v| a.saturating_add(v.iov_len))
}

/// Visits the first `n` bytes of an iovec list after `skip`: calls `f` with
/// each piece's start, its position among the `n` bytes, and its length.
fn iov_walk(
    iov: &[libc::iovec],
    mut skip: usize,
    n: usize,
    mut f: impl FnMut(*mut u8, usize, usize),
) {
    let mut done = 0;
    for v in iov {
        if done == n {
            break;
        }
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        let k = (v.iov_len - skip).min(n - done);
        f(v.iov_base.cast::<u8>().wrapping_add(skip), done, k);
        done += k;
        skip = 0;
    }
}

/// Copies `n` bytes from `src` into the scatter list, starting `skip` bytes
/// in; returns how many were copied (fewer when a caller's buffer faults).
///
/// # Safety
/// `src..src+n` readable (the iovecs may name anything).
unsafe fn iov_scatter(iov: &[libc::iovec], skip: usize, src: *const u8, n: usize) -> usize {
    let mut copied = 0;
    let mut faulted = false;
    iov_walk(iov, skip, n, |piece, at, k| {
        if faulted {
            return;
        }
        // SAFETY: per the contract; `at + k <= n`; the caller's side is
        // fault-tolerant.
        match unsafe { uaccess::copy_out(piece, src.add(at), k) } {
            Ok(()) => copied += k,
            Err(c) => {
                copied += c;
                faulted = true;
            }
        }
    });
    copied
}

/// Copies `n` bytes of the gather list, starting `skip` bytes in, to `dst`;
/// returns how many were copied (fewer when a caller's buffer faults).
///
/// # Safety
/// `dst..dst+n` writable (the iovecs may name anything).
unsafe fn iov_gather(iov: &[libc::iovec], skip: usize, dst: *mut u8, n: usize) -> usize {
    let mut copied = 0;
    let mut faulted = false;
    iov_walk(iov, skip, n, |piece, at, k| {
        if faulted {
            return;
        }
        // SAFETY: per the contract; `at + k <= n`; the caller's side is
        // fault-tolerant.
        match unsafe { uaccess::copy_in(dst.add(at), piece.cast_const(), k) } {
            Ok(()) => copied += k,
            Err(c) => {
                copied += c;
                faulted = true;
            }
        }
    });
    copied
}
