//! The handlers' shared steps: resolving a request's paths and handles
//! against the store, copying in parts, and shaping replies.

use super::*;

impl Handlers<'_> {
    /// `copy_file_range` in parts of [`COPY_CHUNK`], up to the store's
    /// [`inode_store::MAX_RW_COUNT`] per request, checking between parts
    /// that the client is still there. Every check is the whole call's (the
    /// first part's); a short part (the end of the input, a full
    /// filesystem) or an error after the first part ends it with the count
    /// so far.
    pub(super) fn copy_in_parts(
        &self,
        from: Fh,
        off_in: u64,
        to: Fh,
        off_out: u64,
        len: u64,
    ) -> OpResult<u64> {
        let c = &self.client.creds;
        let total = len.min(inode_store::MAX_RW_COUNT);
        // Each part is checked as the rest of the call (`len - done`, so
        // the first part's checks are the whole call's) and moves at most
        // COPY_CHUNK.
        let part = |done: u64| {
            self.store.copy_file_range_part(
                c,
                from,
                off_in + done,
                to,
                off_out + done,
                len - done,
                COPY_CHUNK.min(total - done),
            )
        };
        let mut done = part(0)? as u64;
        let mut last = done;
        while last == COPY_CHUNK && done < total && (self.client_alive)() {
            last = part(done).map_or(0, |n| n as u64);
            done += last;
        }
        Ok(done)
    }

    /// `open` with `O_PATH`: only of a directory (`O_DIRECTORY`), whose
    /// handle ([`HandleKind::Path`]) serves as the base of later paths, as
    /// the kernel's `O_PATH` descriptor it shadows (the library keeps both,
    /// see `interpose`'s `ops::located`). Everything else `O_PATH` is the
    /// kernel's. The path is searched as for any open; the directory itself
    /// needs no permission.
    pub(super) fn open_path(&self, req: &ops::Open, p: Paths<'_>, flags: i32) -> OpResult<OpenOut> {
        if flags & libc::O_DIRECTORY == 0 {
            return Err(OpError::Escaped);
        }
        self.client.room_for_handle()?;
        let stamp = self.store.quiet_stamp();
        let attr = self
            .walk(req.base, p.path, flags & libc::O_NOFOLLOW == 0)?
            .found()?;
        if attr.kind != FileKind::Directory {
            return Err(err(libc::ENOTDIR));
        }
        let fh = self.store.open_path(&self.client.creds, attr.ino)?;
        self.client.adopt(fh, HandleKind::Path);
        Ok(OpenOut {
            fh: fh.0,
            attr: attr.wire(),
            stamp: self.kept(stamp),
            dir: 0,
            data_stamp: 0,
        })
    }

    /// Inode of an owned handle of either kind.
    pub(super) fn handle_ino(&self, fh: u64) -> OpResult<Ino> {
        self.client.kind(fh)?;
        Ok(self.store.handle_ino(inode_store::Fh(fh))?)
    }

    /// Directory a path is relative to: the root, or an owned directory handle.
    pub(super) fn base(&self, fh: u64) -> OpResult<Ino> {
        if fh == 0 {
            return Ok(ROOT_INO);
        }
        let dir = self.client.check_base(fh)?;
        Ok(self.store.handle_ino(dir)?)
    }

    pub(super) fn walk(&self, base: u64, path: &[u8], follow: bool) -> OpResult<Resolved> {
        let last = if follow { Last::Follow } else { Last::NoFollow };
        self.resolve(base, path, last)
    }

    /// Resolves a path naming an entry to remove or rename (never follows).
    pub(super) fn walk_entry(&self, base: u64, path: &[u8]) -> OpResult<Resolved> {
        self.resolve(base, path, Last::Entry)
    }

    pub(super) fn resolve(&self, base: u64, path: &[u8], last: Last) -> OpResult<Resolved> {
        let base = self.base(base)?;
        let creds = &self.client.creds;
        resolve(self.store, creds, base, path, last, self.mount_path)
    }

    /// The inode a request names: `path` relative to `base`, or, with no
    /// path and `AT_EMPTY_PATH`, the handle `base` itself (the root when 0
    /// and `handle_or_root`); or why the last name is missing. With the
    /// directory that name was looked up in (0 for a handle itself) and
    /// the name there (after a final symlink, if followed). A failure
    /// before the last name is an error.
    pub(super) fn target_in(
        &self,
        base: u64,
        path: &[u8],
        flags: u32,
    ) -> OpResult<(Result<Attr, Errno>, u64, Vec<u8>)> {
        let flags = flags as i32;
        if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
            let ino = if base == 0 {
                ROOT_INO
            } else {
                self.handle_ino(base)?
            };
            return Ok((Ok(self.store.getattr(ino)?), 0, Vec::new()));
        }
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
        let r = self.walk(base, path, follow)?;
        Ok((r.found(), r.parent, r.name))
    }

    /// The inode an xattr request names: a path, or a handle with
    /// `AT_EMPTY_PATH` and no path.
    pub(super) fn xattr_target(&self, base: u64, path: &[u8], flags: u32) -> OpResult<Ino> {
        if path.is_empty() && flags as i32 & libc::AT_EMPTY_PATH != 0 {
            return self.handle_ino(base);
        }
        let follow = flags as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
        Ok(self.walk(base, path, follow)?.found()?.ino)
    }

    /// Resolves the parent of an entry about to be created: `EEXIST` if the
    /// name is taken (a symlink there counts), and, like the kernel, `ENOENT`
    /// for a trailing slash on anything but a new directory.
    pub(super) fn new_entry(&self, base: u64, path: &[u8], is_dir: bool) -> OpResult<Resolved> {
        let r = self.walk_entry(base, path)?;
        match r.target {
            Ok(_) => Err(err(libc::EEXIST)),
            Err(Errno(libc::ENOENT)) if r.trailing_slash && !is_dir => Err(err(libc::ENOENT)),
            Err(Errno(libc::ENOENT)) => Ok(r),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves the entry to remove: its parent, name and inode.
    pub(super) fn victim(
        &self,
        base: u64,
        path: &[u8],
        unlink: bool,
    ) -> OpResult<(Resolved, Attr)> {
        let r = self.walk_entry(base, path)?;
        let victim = r.found()?;
        if r.trailing_slash && victim.kind != FileKind::Directory {
            // "link-to-dir/" names the link itself, not a directory.
            return Err(err(libc::ENOTDIR));
        }
        if r.trailing_slash && unlink {
            return Err(err(libc::EISDIR));
        }
        Ok((r, victim))
    }

    pub(super) fn removed(&self, parent: Ino, name: &[u8], victim: Ino) {
        self.kernel.entry_changed(parent, name);
        self.kernel.inode_changed(parent);
        self.kernel.inode_changed(victim);
    }

    /// The bytes of a small regular file just opened read-only (handle
    /// `fh`, attributes `attr`) into the reply's payload `out`, for the
    /// reads that follow: their stamp, or 0 when none go (see
    /// `OpenOut::data_stamp`). As a read would, the kernel first gives back
    /// pages of the file it holds dirty.
    pub(super) fn first_bytes(
        &mut self,
        fh: Fh,
        attr: &Attr,
        out: &mut Payload<'_>,
        entry: (Ino, &[u8]),
    ) -> u64 {
        if attr.size == 0 {
            return 0;
        }
        let mut buf = [0u8; ops::OPEN_DATA_MAX];
        match self.whole_file(fh, attr, &mut buf) {
            Some((n, stamp, at)) if out.put(&buf[..n]).is_ok() => {
                self.transferred.read = n as u64;
                self.publish(entry, Some(&at), stamp, Some(&buf[..n]));
                stamp
            }
            _ => 0,
        }
    }

    /// The bytes of regular file `attr.ino`, open as `fh`, all of them,
    /// read into `buf` without updating the atime (the kernel's pages of
    /// it written back and dropped first), with the stamp under which they
    /// are the file's and its attributes then, if a read now would not
    /// update the atime and they fit `buf` (`peek_stamped`).
    pub(super) fn whole_file(
        &mut self,
        fh: Fh,
        attr: &Attr,
        buf: &mut [u8],
    ) -> Option<(usize, u64, Attr)> {
        let size = usize::try_from(attr.size)
            .ok()
            .filter(|&s| s <= buf.len())?;
        self.kernel.before_data(attr.ino, 0, attr.size);
        let kernel = &self.kernel;
        let peeked = self
            .store
            .peek_stamped(fh, &mut buf[..size], |ino| kernel.holds_pages(ino));
        match peeked {
            Ok(Some((n, stamp, now))) if n == size && now.size == attr.size => {
                Some((n, stamp, now))
            }
            _ => None,
        }
    }

    /// The stamp a reply carries (see `proto::GenPage`): the one taken by
    /// [`Store::quiet_stamp`] before the query, if no change began since;
    /// else 0 (the answer may not be kept).
    pub(super) fn kept(&self, stamp: Option<u64>) -> u64 {
        stamp.filter(|&s| self.store.still_quiet(s)).unwrap_or(0)
    }

    /// A readdir batch of handle `fh` after `cookie` (with attributes if
    /// `plus`) into the bulk area, entries whose plain records fit `limit`
    /// bytes: the bytes used, the entries, whether the area filled before
    /// the end, and the stamp of the store's listing.
    pub(super) fn readdir_entries(
        &mut self,
        fh: Fh,
        cookie: u64,
        plus: bool,
        limit: usize,
    ) -> OpResult<(usize, u64, bool, Option<u64>)> {
        let room = self.bulk.len();
        let (mut plain, mut entries, mut full) = (0usize, 0u64, false);
        // Gathered here and copied to the shared area at once: stores one
        // record at a time each took a line the client last read from its
        // CPU's cache, where one long copy streams (a readdirplus of 100
        // entries 5.6 -> 3.8 µs, median).
        let mut out = Vec::with_capacity(room.min(1 << 16));
        let stamp = self.store.readdir_stamped(fh, cookie, plus, |e| {
            if plain + e.plain_len() > limit || out.len() + e.record_len() > room {
                full = true;
                return false;
            }
            e.encode(&mut out);
            plain += e.plain_len();
            entries += 1;
            true
        })?;
        self.bulk.write(0, &out);
        Ok((out.len(), entries, full, stamp))
    }

    /// A bulk transfer length, checked against the bulk area.
    pub(super) fn bulk_len(&self, requested: u64) -> OpResult<usize> {
        usize::try_from(requested)
            .ok()
            .filter(|&n| n <= self.bulk.len())
            .ok_or(err(libc::EINVAL))
    }

    /// Puts an xattr value or list into the bulk area, or only tells its
    /// length when the caller's buffer is empty.
    pub(super) fn xattr_reply(&mut self, value: &[u8], room: u64) -> OpResult<CountOut> {
        let room = self.bulk_len(room)?;
        if room > 0 {
            if value.len() > room {
                return Err(err(libc::ERANGE));
            }
            self.bulk.write(0, value);
        }
        Ok(CountOut {
            count: value.len() as u64,
        })
    }
}
