//! File data: reads and writes (into and from caller buffers),
//! fallocate, SEEK_DATA/SEEK_HOLE and copy_file_range.

use super::*;

impl Store {
    /// Counts a change of `ino`'s bytes that the store does not see: a
    /// front door lets a cache outside it (the kernel's pages) hold them,
    /// where a store through a shared mapping stays until written back. An
    /// answer about the bytes kept elsewhere must not outlive that.
    pub fn kernel_takes_pages(&self, ino: Ino) {
        let mut change = self.change();
        change.touches(&[ino]);
    }

    /// Reads at `offset`; short only at EOF. Takes no tree lock and only the
    /// file's read lock; allocates nothing.
    pub fn read(&self, fh: impl Into<FileRef>, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.read_into(fh, offset, buf)
    }

    /// [`Store::read`] into any [`DataSink`] (e.g. shared memory), with no
    /// intermediate buffer.
    pub fn read_into(
        &self,
        fh: impl Into<FileRef>,
        offset: u64,
        buf: &mut (impl DataSink + ?Sized),
    ) -> Result<usize> {
        let node = self.node_to_read(fh, offset, buf.len())?;
        if buf.is_empty() {
            return Ok(0);
        }
        let st = node.st.read();
        let n = st.file.read_at(offset, buf);
        node.touch_atime(&st, &self.gens);
        Ok(n)
    }

    /// The first `buf.len()` bytes of the file behind `fh` (read-only
    /// handle), without reading it: no atime update, so `None` when a read
    /// now would make one (relatime), as it must reach the store then. Else
    /// the count, the stamp under which they are the file's bytes and its
    /// attributes then, as [`Store::read_stamped`] gives them (`None` where
    /// that gives no stamp).
    pub fn peek_stamped(
        &self,
        fh: impl Into<FileRef>,
        buf: &mut [u8],
        kept_elsewhere: impl FnOnce(Ino) -> bool,
    ) -> Result<Option<(usize, u64, Attr)>> {
        let node = self.node_to_read(fh, 0, buf.len())?;
        let Some(stamp) = self.quiet_stamp() else {
            return Ok(None);
        };
        let (n, attr, due) = {
            let st = node.st.read();
            (
                st.file.read_at(0, buf),
                node.attr_of(&st),
                node.atime_due_now(&st),
            )
        };
        if due || kept_elsewhere(node.ino) || !self.still_quiet(stamp) {
            return Ok(None);
        }
        Ok(Some((n, stamp, attr)))
    }

    /// [`Store::read_into`], with the stamp under which the bytes are the
    /// file's and its attributes then (see the `generation` module), unless
    /// a change was in progress or `kept_elsewhere` says the file's bytes
    /// may be held outside the store (asked after the read). The read's own
    /// atime update (relatime) comes first, so that it does not void them.
    pub fn read_stamped(
        &self,
        fh: impl Into<FileRef>,
        offset: u64,
        buf: &mut (impl DataSink + ?Sized),
        kept_elsewhere: impl FnOnce(Ino) -> bool,
    ) -> Result<(usize, Option<(u64, Attr)>)> {
        let node = self.node_to_read(fh, offset, buf.len())?;
        node.touch_atime(&node.st.read(), &self.gens);
        let stamp = self.quiet_stamp();
        let (n, attr) = {
            let st = node.st.read();
            (st.file.read_at(offset, buf), node.attr_of(&st))
        };
        let stamp = stamp.filter(|&s| !kept_elsewhere(node.ino) && self.still_quiet(s));
        Ok((n, stamp.map(|s| (s, attr))))
    }

    /// The node behind `fh`, if it may be read `len` bytes at `offset`.
    fn node_to_read(&self, fh: impl Into<FileRef>, offset: u64, len: usize) -> Result<Arc<Node>> {
        let (node, readable, _, _) = self.handle(fh)?;
        if node.kind == FileKind::Directory {
            return Err(Errno::EISDIR);
        }
        if !readable {
            return Err(Errno::EBADF);
        }
        check_span(offset, len)?;
        Ok(node)
    }

    /// Writes at `offset` (at EOF for O_APPEND handles). A write that runs
    /// out of space midway returns the short count; ENOSPC if nothing fit.
    pub fn write(
        &self,
        c: &Creds,
        fh: impl Into<FileRef>,
        offset: u64,
        data: &[u8],
    ) -> Result<Written> {
        self.write_from(c, fh, offset, data, false)
    }

    /// Writes at the end of the file, atomically with respect to other
    /// writers, whatever the handle's open flags (`O_APPEND` set later with
    /// `fcntl(F_SETFL)`).
    pub fn append(&self, c: &Creds, fh: Fh, data: &[u8]) -> Result<Written> {
        self.write_from(c, fh, 0, data, true)
    }

    /// [`Store::write`] (or, with `append`, [`Store::append`]) from any
    /// [`DataSource`] (e.g. shared memory), with no intermediate buffer.
    pub fn write_from(
        &self,
        c: &Creds,
        fh: impl Into<FileRef>,
        offset: u64,
        data: &(impl DataSource + ?Sized),
        force_append: bool,
    ) -> Result<Written> {
        self.write_acked(c, fh, offset, data, force_append, |_| ())
    }

    /// [`Store::write_from`] that calls `acked` with the outcome as soon as
    /// it is decided (blocks allocated, size and times set), before the
    /// bytes are copied, so that a caller can answer its writer while the
    /// copy runs. Nothing can fail after `acked`; the file's lock is held
    /// until the copy is done and the change stays in progress, so no
    /// reader sees the file, and no cached answer about it is trusted,
    /// before the bytes are in. `acked` is not called on an error.
    pub fn write_acked(
        &self,
        c: &Creds,
        fh: impl Into<FileRef>,
        offset: u64,
        data: &(impl DataSource + ?Sized),
        force_append: bool,
        acked: impl FnOnce(Written),
    ) -> Result<Written> {
        let mut change = self.change();
        let (node, _, writable, append) = self.handle(fh)?;
        change.touches(&node.attrs_touch());
        let append = append || force_append;
        if !writable {
            return Err(Errno::EBADF);
        }
        check_span(offset, data.len())?;
        let mut guard = node.st.write();
        let st = &mut *guard;
        let offset = if append { st.file.size } else { offset };
        if data.is_empty() {
            let written = Written { offset, len: 0 };
            acked(written);
            return Ok(written);
        }
        if offset >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let len = (data.len() as u64).min(MAX_FILE_SIZE - offset) as usize;
        let kill = node.owner_of(st).kill_on_write(c);
        let now = Timespec::now();
        if kill != 0 {
            st.perm &= !kill;
            st.ctime = now;
        }
        st.drop_file_caps(&self.pool);
        let n = st.file.write_prefix(&self.pool, offset, data, len, |n| {
            st.mtime = now;
            st.ctime = now;
            acked(Written { offset, len: n });
        })?;
        Ok(Written { offset, len: n })
    }

    /// fallocate(2): mode 0, FALLOC_FL_KEEP_SIZE, or
    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE.
    ///
    /// `c` is the caller: for a kernel-opened inode its privileges decide
    /// whether setid bits survive; a handle's opener's do otherwise (the
    /// fast path's caller is its opener).
    pub fn fallocate(
        &self,
        c: &Creds,
        fh: impl Into<FileRef>,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> Result<()> {
        let fh = fh.into();
        let mut change = self.change();
        const SUPPORTED: i32 = libc::FALLOC_FL_KEEP_SIZE
            | libc::FALLOC_FL_PUNCH_HOLE
            | libc::FALLOC_FL_COLLAPSE_RANGE
            | libc::FALLOC_FL_ZERO_RANGE
            | libc::FALLOC_FL_INSERT_RANGE
            | libc::FALLOC_FL_UNSHARE_RANGE;
        let (node, _, writable, _) = self.handle(fh)?;
        change.touches(&node.attrs_touch());
        if offset > MAX_FILE_SIZE || len == 0 || len > MAX_FILE_SIZE {
            return Err(Errno::EINVAL);
        }
        if mode & !SUPPORTED != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let punch = mode & libc::FALLOC_FL_PUNCH_HOLE != 0;
        let keep = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        if punch && (mode & libc::FALLOC_FL_ZERO_RANGE != 0 || !keep) {
            return Err(Errno::EOPNOTSUPP);
        }
        for excl in [libc::FALLOC_FL_COLLAPSE_RANGE, libc::FALLOC_FL_INSERT_RANGE] {
            if mode & excl != 0 && mode & !excl != 0 {
                return Err(Errno::EINVAL);
            }
        }
        if !writable {
            return Err(Errno::EBADF);
        }
        match node.kind {
            FileKind::Regular => {}
            FileKind::Fifo => return Err(Errno::ESPIPE),
            FileKind::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENODEV),
        }
        if offset + len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        if mode & !(libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let opener = match fh {
            FileRef::Inode(_) => c.clone(),
            FileRef::Handle(fh) => {
                let h = self.handles.read();
                h.get(&fh).ok_or(Errno::EBADF)?.opener.clone()
            }
        };
        let mut st = node.st.write();
        if punch {
            st.file.punch(&self.pool, offset, len);
        } else {
            st.file.allocate(&self.pool, offset, len, keep)?;
        }
        // file_modified: clear setid bits, update mtime and ctime.
        let kill = node.owner_of(&st).kill_on_write(&opener);
        st.perm &= !kill;
        st.drop_file_caps(&self.pool);
        let now = Timespec::now();
        st.mtime = now;
        st.ctime = now;
        Ok(())
    }

    /// lseek(2) with SEEK_DATA or SEEK_HOLE (others: EINVAL).
    pub fn lseek(&self, fh: impl Into<FileRef>, offset: u64, whence: i32) -> Result<u64> {
        let (node, _, _, _) = self.handle(fh)?;
        if node.kind != FileKind::Regular {
            return Err(Errno::EINVAL);
        }
        let st = node.st.read();
        match whence {
            libc::SEEK_DATA => st.file.seek_data(offset),
            libc::SEEK_HOLE => st.file.seek_hole(offset),
            _ => Err(Errno::EINVAL),
        }
    }

    /// copy_file_range(2): copies up to `len` bytes, at most
    /// [`MAX_RW_COUNT`] (holes stay holes and cost nothing); 0 at EOF of the
    /// input.
    pub fn copy_file_range(
        &self,
        c: &Creds,
        fh_in: impl Into<FileRef>,
        off_in: u64,
        fh_out: impl Into<FileRef>,
        off_out: u64,
        len: u64,
    ) -> Result<usize> {
        self.copy_file_range_part(c, fh_in, off_in, fh_out, off_out, len, MAX_RW_COUNT)
    }

    /// [`Store::copy_file_range`] of `len` bytes (every check, overlap
    /// included, is of the whole call) that moves at most `most` of them
    /// (and never more than [`MAX_RW_COUNT`]): a front door that splits a
    /// long copy into parts calls it for each, with the offsets advanced.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_file_range_part(
        &self,
        c: &Creds,
        fh_in: impl Into<FileRef>,
        off_in: u64,
        fh_out: impl Into<FileRef>,
        off_out: u64,
        len: u64,
        most: u64,
    ) -> Result<usize> {
        let mut change = self.change();
        let most = most.min(MAX_RW_COUNT);
        let (nin, rin, _, _) = self.handle(fh_in)?;
        let (nout, _, wout, aout) = self.handle(fh_out)?;
        change.touches(&nout.attrs_touch());
        if nin.kind == FileKind::Directory || nout.kind == FileKind::Directory {
            return Err(Errno::EISDIR);
        }
        if nin.kind != FileKind::Regular || nout.kind != FileKind::Regular {
            return Err(Errno::EINVAL);
        }
        if !rin || !wout || aout {
            return Err(Errno::EBADF);
        }
        check_off(off_in)?;
        check_off(off_out)?;
        // generic_copy_file_checks: only a real wrap is EOVERFLOW (callers
        // such as cp pass huge lengths).
        if off_in.checked_add(len).is_none() || off_out.checked_add(len).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        // Shorten to the input's EOF, then to the maximum file size (the
        // kernel's checks, overlap included, see this count); the copy then
        // moves at most `most` (MAX_RW_COUNT, as in the kernel: the caller
        // gets a short count and calls again).
        let count = |size_in: u64| -> Result<u64> {
            let count = len.min(size_in.saturating_sub(off_in));
            if off_out >= MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
            Ok(count.min(MAX_FILE_SIZE - off_out))
        };
        // Lock order between two nodes: lower ino first.
        if Arc::ptr_eq(&nin, &nout) {
            let mut st = nin.st.write();
            let count = count(st.file.size)?;
            if off_out + count > off_in && off_out < off_in + count {
                return Err(Errno::EINVAL);
            }
            let count = count.min(most);
            self.copy_locked(c, &nout, None, &mut st, off_in, off_out, count)
        } else {
            let (sin, mut sout) = if nin.ino < nout.ino {
                let sin = nin.st.read();
                (sin, nout.st.write())
            } else {
                let sout = nout.st.write();
                (nin.st.read(), sout)
            };
            let count = count(sin.file.size)?.min(most);
            let n = self.copy_locked(c, &nout, Some(&sin.file), &mut sout, off_in, off_out, count);
            nin.touch_atime(&sin, &self.gens);
            n
        }
    }

    /// The copy loop of `copy_file_range`, with both nodes locked. `src` is
    /// `None` when copying within `out` itself.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_locked(
        &self,
        c: &Creds,
        nout: &Node,
        src: Option<&FileData>,
        out: &mut Meta,
        off_in: u64,
        off_out: u64,
        count: u64,
    ) -> Result<usize> {
        if count == 0 {
            return Ok(0);
        }
        let kill = nout.owner_of(out).kill_on_write(c);
        out.perm &= !kill;
        out.drop_file_caps(&self.pool);
        let bs = BLOCK_SIZE as u64;
        let mut tmp = [0u8; BLOCK_SIZE];
        let end = off_in + count;
        let mut done = 0u64;
        // Walks the source's written blocks only: a hole, however long, is
        // one step (the destination's blocks inside it are zeroed).
        while done < count {
            let pos = off_in + done;
            let dpos = off_out + done;
            let data = {
                let source = src.unwrap_or(&out.file);
                let data = source.next_written(pos, end).unwrap_or(end);
                if data == pos {
                    source.read_at(pos, &mut tmp[..(bs - pos % bs).min(end - pos) as usize]);
                }
                data
            };
            if data > pos {
                out.file.zero_range_extend(dpos, data - pos);
                done += data - pos;
                continue;
            }
            let n = (bs - pos % bs).min(end - pos);
            match out.file.write_at(&self.pool, dpos, &tmp[..n as usize]) {
                Ok(w) if w as u64 == n => {}
                Ok(w) => {
                    done += w as u64;
                    break;
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
            done += n;
        }
        let now = Timespec::now();
        out.mtime = now;
        out.ctime = now;
        Ok(done as usize)
    }
}
