//! The fast path's operations on the store: one handler per operation of
//! the protocol table (`proto::ops`).
//!
//! Transport-free: the ring door decodes a message with
//! [`proto::ops::dispatch`], which calls these handlers with typed
//! requests. Every field and handle comes from an untrusted process and is
//! checked here; paths are resolved like the kernel would (`resolve`), the
//! store is called with the client's credentials (the same rules as the
//! FUSE door), and the kernel is told which of its cached entries and
//! attributes went stale ([`KernelCache`]).

use std::os::fd::{AsFd, BorrowedFd};

use inode_store::{Attr, Errno, Fh, FileKind, Ino, SetAttr, Store, TimeSet, Timespec, ROOT_INO};
use proto::ops::{
    self, AttrOut, CountOut, Done, Handler, ListOut, OffsetOut, OpenListOut, OpenOut, Paths,
    Payload, ReadOut, ReaddirOut, RemovedOut, StatOut, StatfsOut, WriteOut,
};
use proto::{set, WireAttr, WireStatFs};

use crate::fs_core::clients::{Client, HandleKind};
use crate::fs_core::public::Public;
use crate::fs_core::resolve::{resolve, Last, OpError, Resolved};
use crate::fs_core::KernelCache;

mod ahead;
mod attrs;
mod bulk;
mod helpers;
mod public;

use attrs::attr_out;
pub use bulk::BulkArea;
use bulk::{BulkSink, BulkSource};

type OpResult<T> = Result<T, OpError>;

fn err(e: i32) -> OpError {
    OpError::Errno(Errno(e))
}

/// File bytes the last request moved, for the door's metrics.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub written: u64,
}

/// Everything one client's requests run against.
pub struct Handlers<'a> {
    /// The filesystem.
    pub store: &'a Store,
    /// The calling process.
    pub client: &'a Client,
    /// Mountpoint as clients see it (absolute symlinks under it stay inside).
    pub mount_path: &'a [u8],
    /// Kernel cache invalidation.
    pub kernel: &'a dyn KernelCache,
    /// The channel's bulk area.
    pub bulk: &'a mut dyn BulkArea,
    /// What the last request transferred.
    pub transferred: Transferred,
    /// Whether the client is still there: a long request stops working
    /// for a client that is gone.
    pub client_alive: &'a dyn Fn() -> bool,
    /// Passes a kernel fd to the client (the ring door: `SCM_RIGHTS` on
    /// the channel's socket), before the reply.
    pub send_fd: &'a dyn Fn(BorrowedFd<'_>) -> std::io::Result<()>,
    /// Where answers every process may see are published, if anywhere.
    pub public: Option<&'a Public>,
}

/// Bytes a copy moves between two checks that its client is still there
/// (a few tens of milliseconds of copying).
const COPY_CHUNK: u64 = 64 << 20;

impl Handler for Handlers<'_> {
    type Error = OpError;

    fn stat(&mut self, req: &ops::Stat, p: Paths<'_>, _: &mut Payload<'_>) -> OpResult<StatOut> {
        let stamp = self.store.quiet_stamp();
        let (attr, absent, dir) = match self.target_in(req.base, p.path, req.flags) {
            Ok((Ok(attr), dir, name)) => {
                self.publish((dir, &name), Some(&attr), self.kept(stamp), None);
                (attr.wire(), 0, dir)
            }
            // A negative answer the client may keep too.
            Ok((Err(Errno(libc::ENOENT)), dir, name)) => {
                self.publish((dir, &name), None, self.kept(stamp), None);
                (WireAttr::default(), libc::ENOENT as u32, dir)
            }
            Err(OpError::Errno(Errno(libc::ENOENT))) => {
                (WireAttr::default(), libc::ENOENT as u32, 0)
            }
            Ok((Err(e), _, _)) => return Err(e.into()),
            Err(e) => return Err(e),
        };
        Ok(StatOut {
            attr,
            stamp: self.kept(stamp),
            absent,
            _pad: 0,
            dir,
        })
    }

    fn fstat(&mut self, req: &ops::Fstat, _: Paths<'_>, _: &mut Payload<'_>) -> OpResult<StatOut> {
        let stamp = self.store.quiet_stamp();
        let ino = self.handle_ino(req.fh)?;
        let attr = self.store.getattr(ino)?.wire();
        Ok(StatOut {
            attr,
            stamp: self.kept(stamp),
            ..StatOut::default()
        })
    }

    fn open(&mut self, req: &ops::Open, p: Paths<'_>, out: &mut Payload<'_>) -> OpResult<OpenOut> {
        let flags = req.flags as i32;
        if flags & libc::O_PATH != 0 {
            return self.open_path(req, p, flags);
        }
        let creat = flags & libc::O_CREAT != 0;
        let excl = creat && flags & libc::O_EXCL != 0;
        let follow = !excl && flags & libc::O_NOFOLLOW == 0;
        self.client.room_for_handle()?;
        let stamp = self.store.quiet_stamp();
        let r = self.walk(req.base, p.path, follow)?;
        let c = &self.client.creds;
        let attr = match r.target {
            Ok(_) if excl => return Err(err(libc::EEXIST)),
            Ok(attr) => attr,
            Err(Errno(libc::ENOENT)) if !creat => {
                self.publish((r.parent, &r.name), None, self.kept(stamp), None);
                return Err(err(libc::ENOENT));
            }
            Err(Errno(libc::ENOENT)) if creat => {
                if r.trailing_slash {
                    return Err(err(libc::EISDIR));
                }
                let (attr, fh) = self.store.create(c, r.parent, &r.name, req.mode, flags)?;
                self.client.adopt(fh, HandleKind::File);
                self.kernel.inode_changed(r.parent);
                return Ok(OpenOut {
                    fh: fh.0,
                    attr: attr.wire(),
                    stamp: 0,
                    dir: 0,
                    data_stamp: 0,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let accmode = flags & libc::O_ACCMODE;
        let (fh, kind) = match attr.kind {
            FileKind::Symlink => return Err(err(libc::ELOOP)),
            FileKind::Directory if accmode != libc::O_RDONLY || creat => {
                return Err(err(libc::EISDIR))
            }
            FileKind::Directory => (self.store.opendir(c, attr.ino)?, HandleKind::Dir),
            _ if flags & libc::O_DIRECTORY != 0 => return Err(err(libc::ENOTDIR)),
            FileKind::Regular => {
                let truncates = flags & libc::O_TRUNC != 0 && accmode != libc::O_RDONLY;
                if truncates {
                    self.kernel.before_data(attr.ino, 0, 0);
                }
                let fh = self.store.open(c, attr.ino, flags)?;
                if truncates {
                    self.kernel.data_changed(attr.ino, 0, 0);
                }
                (fh, HandleKind::File)
            }
            // FIFOs, sockets and devices need the kernel.
            _ => return Err(OpError::Escaped),
        };
        self.client.adopt(fh, kind);
        let attr = self.store.getattr(attr.ino)?;
        let data_stamp = match kind {
            HandleKind::File if accmode == libc::O_RDONLY => {
                self.first_bytes(fh, &attr, out, (r.parent, &r.name))
            }
            _ => 0,
        };
        Ok(OpenOut {
            fh: fh.0,
            attr: attr.wire(),
            stamp: self.kept(stamp),
            dir: r.parent,
            data_stamp,
        })
    }

    fn release(&mut self, req: &ops::Release, _: Paths<'_>, _: &mut Payload<'_>) -> OpResult<Done> {
        self.client.release(self.store, req.fh)?;
        Ok(Done {})
    }

    fn read(&mut self, req: &ops::Read, _: Paths<'_>, _: &mut Payload<'_>) -> OpResult<ReadOut> {
        let fh = self.client.check(req.fh, HandleKind::File)?;
        let len = self.bulk_len(req.len)?;
        let ino = self.store.handle_ino(fh)?;
        self.kernel.before_data(ino, req.offset, len.max(1) as u64);
        // After the kernel's pages went (if it held any): a page it takes
        // from here on is a change (`Store::kernel_takes_pages`), and one
        // it took before is seen by `holds_pages`.
        let mut sink = BulkSink {
            area: &mut *self.bulk,
            len,
        };
        let kernel = &self.kernel;
        let (n, kept) = self
            .store
            .read_stamped(fh, req.offset, &mut sink, |ino| kernel.holds_pages(ino))?;
        self.transferred.read = n as u64;
        let (stamp, attr) = kept.map_or((0, WireAttr::default()), |(s, a)| (s, a.wire()));
        Ok(ReadOut {
            count: n as u64,
            stamp,
            attr,
        })
    }

    fn write(&mut self, req: &ops::Write, _: Paths<'_>, _: &mut Payload<'_>) -> OpResult<WriteOut> {
        let fh = self.client.check(req.fh, HandleKind::File)?;
        let len = self.bulk_len(req.len)?;
        let data = BulkSource {
            area: &*self.bulk,
            len,
        };
        // The client's current O_APPEND (fcntl may have changed it).
        let append = req.flags as i32 & libc::O_APPEND != 0;
        let ino = self.store.handle_ino(fh)?;
        // Where an append lands is known only once it is done.
        let (at, span) = if append {
            (0, 0)
        } else {
            (req.offset, len as u64)
        };
        self.kernel.before_data(ino, at, span.max(1));
        let creds = &self.client.creds;
        let written = self
            .store
            .write_from(creds, fh, req.offset, &data, append)?;
        if written.len > 0 {
            self.kernel
                .data_changed(ino, written.offset, written.len as u64);
        }
        self.transferred.written = written.len as u64;
        Ok(WriteOut {
            count: written.len as u64,
            offset: written.offset,
        })
    }

    fn readdir(
        &mut self,
        req: &ops::Readdir,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<ReaddirOut> {
        let fh = self.client.check(req.fh, HandleKind::Dir)?;
        // At most `max` bytes of plain entries (0: as much as fits).
        let limit = match usize::try_from(req.max) {
            Ok(0) | Err(_) => self.bulk.len(),
            Ok(b) => b.min(self.bulk.len()),
        };
        let plus = req.plus == 1;
        let room = self.bulk.len();
        let kept = match plus && req.cookie == 0 {
            true => self.store.readdir_records(fh, room, limit)?,
            false => None,
        };
        let (used, entries, full, stamp) = match kept {
            // A kept listing from the start: its records as they were
            // made once (a readdirplus of 100 entries was 100 records
            // made one by one).
            Some(batch) => {
                let mut used = 0;
                for part in batch.records() {
                    self.bulk.write(used, part);
                    used += part.len();
                }
                (used, batch.entries as u64, !batch.complete, batch.stamp)
            }
            None => self.readdir_entries(fh, req.cookie, plus, limit)?,
        };
        // The attributes answer `fstatat(dir, name)` only for a caller
        // who may search the directory.
        let searchable = plus
            && self
                .store
                .access(&self.client.creds, self.store.handle_ino(fh)?, libc::X_OK)
                .is_ok();
        Ok(ReaddirOut {
            bytes: used as u64,
            entries,
            stamp: if searchable { self.kept(stamp) } else { 0 },
            eof: u32::from(!full),
            _pad: 0,
        })
    }

    fn open_list(
        &mut self,
        req: &ops::OpenList,
        p: Paths<'_>,
        out: &mut Payload<'_>,
    ) -> OpResult<OpenListOut> {
        let flags = req.flags as i32 & (libc::O_NOFOLLOW | libc::O_NOATIME);
        let open = ops::Open {
            base: req.base,
            flags: (flags | libc::O_RDONLY | libc::O_DIRECTORY) as u32,
            mode: 0,
        };
        let open = self.open(&open, p, out)?;
        if req.flags & ops::LIST_AHEAD != 0 && self.store.listing_touches_atime(Fh(open.fh))? {
            self.client.release(self.store, open.fh)?;
            return Err(err(libc::EAGAIN));
        }
        let list = ops::Readdir {
            fh: open.fh,
            cookie: 0,
            max: req.max,
            plus: req.plus,
            _pad: 0,
        };
        let none = Paths {
            path: b"",
            path2: b"",
        };
        let list = self.readdir(&list, none, out).unwrap_or_default();
        Ok(OpenListOut { open, list })
    }

    fn list(&mut self, req: &ops::List, p: Paths<'_>, out: &mut Payload<'_>) -> OpResult<ListOut> {
        let open_list = ops::OpenList {
            base: req.base,
            max: req.max,
            plus: 1,
            flags: 0,
        };
        let OpenListOut { open, list } = self.open_list(&open_list, p, out)?;
        self.client.release(self.store, open.fh)?;
        Ok(ListOut {
            ino: open.attr.ino,
            stamp: open.stamp,
            list,
        })
    }

    fn open_ahead(
        &mut self,
        req: &ops::OpenAhead,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<ops::OpenAheadOut> {
        self.open_files_ahead(req, p)
    }

    fn open_inode(
        &mut self,
        req: &ops::OpenInode,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<OpenOut> {
        self.reopen_published(req)
    }

    fn access(&mut self, req: &ops::Access, p: Paths<'_>, _: &mut Payload<'_>) -> OpResult<Done> {
        let follow = req.flags as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
        let attr = self.walk(req.base, p.path, follow)?.found()?;
        self.store
            .access(&self.client.creds, attr.ino, req.mask as i32)?;
        Ok(Done {})
    }

    fn readlink(
        &mut self,
        req: &ops::Readlink,
        p: Paths<'_>,
        out: &mut Payload<'_>,
    ) -> OpResult<Done> {
        let stamp = self.store.quiet_stamp();
        let r = self.walk(req.base, p.path, false)?;
        let found = r.found().ok();
        // What `readlink` of a file, a directory or nothing answers, the
        // public table answers too (a compiler reads the links of its
        // input's path).
        if found.is_none_or(|a| a.kind != FileKind::Symlink) {
            self.publish((r.parent, &r.name), found.as_ref(), self.kept(stamp), None);
        }
        let attr = r.found()?;
        if attr.kind != FileKind::Symlink {
            return Err(err(libc::EINVAL));
        }
        out.put(&self.store.readlink(attr.ino)?)?;
        Ok(Done {})
    }

    fn mkdir(&mut self, req: &ops::Mkdir, p: Paths<'_>, _: &mut Payload<'_>) -> OpResult<AttrOut> {
        let r = self.new_entry(req.base, p.path, true)?;
        let creds = &self.client.creds;
        let attr = self.store.mkdir(creds, r.parent, &r.name, req.mode)?;
        self.kernel.inode_changed(r.parent);
        Ok(attr_out(attr))
    }

    fn mknod(&mut self, req: &ops::Mknod, p: Paths<'_>, _: &mut Payload<'_>) -> OpResult<AttrOut> {
        let r = self.new_entry(req.base, p.path, false)?;
        let creds = &self.client.creds;
        let attr = self
            .store
            .mknod(creds, r.parent, &r.name, req.mode, req.rdev)?;
        self.kernel.inode_changed(r.parent);
        Ok(attr_out(attr))
    }

    fn unlink(
        &mut self,
        req: &ops::Unlink,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<RemovedOut> {
        let (r, victim) = self.victim(req.base, p.path, true)?;
        self.store.unlink(&self.client.creds, r.parent, &r.name)?;
        self.removed(r.parent, &r.name, victim.ino);
        Ok(removed_out(Some(victim)))
    }

    fn rmdir(&mut self, req: &ops::Rmdir, p: Paths<'_>, _: &mut Payload<'_>) -> OpResult<Done> {
        let (r, victim) = self.victim(req.base, p.path, false)?;
        self.store.rmdir(&self.client.creds, r.parent, &r.name)?;
        self.removed(r.parent, &r.name, victim.ino);
        Ok(Done {})
    }

    fn symlink(
        &mut self,
        req: &ops::Symlink,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<AttrOut> {
        if p.path2.is_empty() {
            return Err(err(libc::ENOENT));
        }
        let r = self.new_entry(req.base, p.path, false)?;
        let creds = &self.client.creds;
        let attr = self.store.symlink(creds, r.parent, &r.name, p.path2)?;
        self.kernel.inode_changed(r.parent);
        Ok(attr_out(attr))
    }

    fn link(&mut self, req: &ops::Link, p: Paths<'_>, _: &mut Payload<'_>) -> OpResult<AttrOut> {
        let follow = req.flags as i32 & libc::AT_SYMLINK_FOLLOW != 0;
        let old = self.walk(req.base, p.path, follow)?.found()?;
        let new = self.new_entry(req.base2, p.path2, false)?;
        let creds = &self.client.creds;
        let attr = self.store.link(creds, old.ino, new.parent, &new.name)?;
        self.kernel.inode_changed(old.ino);
        self.kernel.inode_changed(new.parent);
        Ok(attr_out(attr))
    }

    fn rename(
        &mut self,
        req: &ops::Rename,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<RemovedOut> {
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
        if req.flags & !known != 0 {
            return Err(err(libc::EINVAL));
        }
        let flags = inode_store::RenameFlags {
            noreplace: req.flags & libc::RENAME_NOREPLACE != 0,
            exchange: req.flags & libc::RENAME_EXCHANGE != 0,
            whiteout: req.flags & libc::RENAME_WHITEOUT != 0,
        };
        // do_renameat2 checks these before it looks anything up.
        if flags.exchange && (flags.noreplace || flags.whiteout) {
            return Err(err(libc::EINVAL));
        }
        let old = self.walk_entry(req.base, p.path)?;
        let new = self.walk_entry(req.base2, p.path2)?;
        // The kernel refuses "." and ".." on either side before looking.
        let dots = |r: &Resolved| r.name == b"." || r.name == b"..";
        if dots(&old) {
            return Err(err(libc::EBUSY));
        }
        if dots(&new) {
            return Err(err(if flags.noreplace {
                libc::EEXIST
            } else {
                libc::EBUSY
            }));
        }
        // Like the kernel, which looks up both last components before it
        // checks that the source exists: a destination whose parent cannot
        // be searched (EACCES) wins over a missing source (ENOENT).
        if let Err(e) = &new.target {
            if e.0 != libc::ENOENT && old.target.is_err() {
                return Err(OpError::Errno(*e));
            }
        }
        let moved = old.found()?;
        if moved.kind != FileKind::Directory
            && (old.trailing_slash || (!flags.exchange && new.trailing_slash))
        {
            return Err(err(libc::ENOTDIR));
        }
        let replaced = new.target.ok();
        self.store.rename(
            &self.client.creds,
            old.parent,
            &old.name,
            new.parent,
            &new.name,
            flags,
        )?;
        self.removed(old.parent, &old.name, moved.ino);
        if let Some(r) = &replaced {
            self.removed(new.parent, &new.name, r.ino);
        } else {
            self.kernel.inode_changed(new.parent);
        }
        let exchanged = replaced.filter(|_| flags.exchange);
        for dir in [Some(moved), exchanged].into_iter().flatten() {
            if dir.kind == FileKind::Directory {
                self.kernel.dir_moved(dir.ino);
            }
        }
        Ok(removed_out(replaced.filter(|_| !flags.exchange)))
    }

    fn setattr(&mut self, req: &ops::SetAttr, p: Paths<'_>, _: &mut Payload<'_>) -> OpResult<Done> {
        let s = &req.set;
        let (ino, fh) = if p.path.is_empty() && req.flags as i32 & libc::AT_EMPTY_PATH != 0 {
            let ino = self.handle_ino(req.base)?;
            let file = self.client.check(req.base, HandleKind::File).ok();
            (ino, file)
        } else {
            let follow = req.flags as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
            let found = self.walk(req.base, p.path, follow)?.found()?;
            // Linux changes no symlink's mode: `lchmod` and `fchmodat`
            // with `AT_SYMLINK_NOFOLLOW` answer `EOPNOTSUPP` (glibc, and
            // `fchmodat2` since 6.6).
            if found.kind == FileKind::Symlink && s.valid & set::MODE != 0 {
                return Err(err(libc::EOPNOTSUPP));
            }
            (found.ino, None)
        };
        let time = |at: u32, now: u32, sec: i64, nsec: u32| {
            if s.valid & now != 0 {
                Some(TimeSet::Now)
            } else if s.valid & at != 0 {
                Some(TimeSet::At(Timespec { sec, nsec }))
            } else {
                None
            }
        };
        let change = SetAttr {
            mode: (s.valid & set::MODE != 0).then_some(s.mode),
            uid: (s.valid & set::UID != 0).then_some(s.uid),
            gid: (s.valid & set::GID != 0).then_some(s.gid),
            size: (s.valid & set::SIZE != 0).then_some(s.size),
            atime: time(set::ATIME, set::ATIME_NOW, s.atime, s.atime_nsec),
            mtime: time(set::MTIME, set::MTIME_NOW, s.mtime, s.mtime_nsec),
            ctime: None,
            chown: s.valid & set::CHOWN != 0,
        };
        if change.size.is_some() {
            self.kernel.before_data(ino, 0, 0);
        }
        self.store
            .setattr(&self.client.creds, ino, &change, fh.map(Into::into))?;
        match change.size {
            Some(_) => self.kernel.data_changed(ino, 0, 0),
            None => self.kernel.inode_changed(ino),
        }
        Ok(Done {})
    }

    fn fsync(&mut self, req: &ops::Fsync, _: Paths<'_>, _: &mut Payload<'_>) -> OpResult<Done> {
        let fh = self.client.check(req.fh, HandleKind::File)?;
        self.store.fsync(fh)?;
        Ok(Done {})
    }

    fn statfs(
        &mut self,
        req: &ops::Statfs,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<StatfsOut> {
        // statfs(2) of a path fails like a lookup; of an fd, like a bad
        // handle.
        if !p.path.is_empty() {
            self.walk(req.base, p.path, true)?.found()?;
        } else if req.base != 0 {
            self.handle_ino(req.base)?;
        }
        let s = self.store.statfs();
        Ok(StatfsOut {
            statfs: WireStatFs {
                blocks: s.blocks,
                bfree: s.bfree,
                bavail: s.bavail,
                files: s.files,
                ffree: s.ffree,
                bsize: s.bsize,
                namelen: s.namelen,
                frsize: s.frsize,
                _pad: 0,
            },
        })
    }

    fn lseek(
        &mut self,
        req: &ops::Lseek,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<OffsetOut> {
        let fh = self.client.check(req.fh, HandleKind::File)?;
        let offset = self.store.lseek(fh, req.offset, req.whence as i32)?;
        Ok(OffsetOut { offset })
    }

    fn fallocate(
        &mut self,
        req: &ops::Fallocate,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<Done> {
        let fh = self.client.check(req.fh, HandleKind::File)?;
        let ino = self.store.handle_ino(fh)?;
        self.kernel.before_data(ino, req.offset, req.len.max(1));
        self.store
            .fallocate(&self.client.creds, fh, req.offset, req.len, req.mode as i32)?;
        self.kernel.data_changed(ino, req.offset, req.len.max(1));
        Ok(Done {})
    }

    fn copy_file_range(
        &mut self,
        req: &ops::CopyFileRange,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<CountOut> {
        let from = self.client.check(req.fh_in, HandleKind::File)?;
        let to = self.client.check(req.fh_out, HandleKind::File)?;
        let to_ino = self.store.handle_ino(to)?;
        let span = req.len.max(1);
        self.kernel
            .before_data(self.store.handle_ino(from)?, req.off_in, span);
        self.kernel.before_data(to_ino, req.off_out, span);
        let n = self.copy_in_parts(from, req.off_in, to, req.off_out, req.len)?;
        if n > 0 {
            self.kernel.data_changed(to_ino, req.off_out, n);
        }
        Ok(CountOut { count: n })
    }

    fn getxattr(
        &mut self,
        req: &ops::Getxattr,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<CountOut> {
        let ino = self.xattr_target(req.base, p.path, req.flags)?;
        let value = self.store.getxattr(&self.client.creds, ino, p.path2)?;
        self.xattr_reply(&value, req.size)
    }

    fn setxattr(
        &mut self,
        req: &ops::Setxattr,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<Done> {
        let ino = self.xattr_target(req.base, p.path, req.flags)?;
        let mut value = vec![0; self.bulk_len(req.size)?];
        self.bulk.read(0, &mut value);
        let flags = req.xattr_flags as i32;
        self.store
            .setxattr(&self.client.creds, ino, p.path2, &value, flags)?;
        self.kernel.inode_changed(ino);
        Ok(Done {})
    }

    fn listxattr(
        &mut self,
        req: &ops::Listxattr,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<CountOut> {
        let ino = self.xattr_target(req.base, p.path, req.flags)?;
        let list = self.store.listxattr(&self.client.creds, ino)?;
        self.xattr_reply(&list, req.size)
    }

    fn removexattr(
        &mut self,
        req: &ops::Removexattr,
        p: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<Done> {
        let ino = self.xattr_target(req.base, p.path, req.flags)?;
        self.store.removexattr(&self.client.creds, ino, p.path2)?;
        self.kernel.inode_changed(ino);
        Ok(Done {})
    }

    fn drop_handle_name(
        &mut self,
        req: &ops::DropHandleName,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<Done> {
        self.client.kind(req.fh)?;
        let name = proto::handle_name(req.fh, self.client.image);
        self.kernel.entry_changed(ROOT_INO, &name);
        Ok(Done {})
    }

    fn dir_path(
        &mut self,
        req: &ops::DirPath,
        _: Paths<'_>,
        out: &mut Payload<'_>,
    ) -> OpResult<Done> {
        let fh = self.client.check(req.fh, HandleKind::Dir)?;
        let path = self.store.dir_path(self.store.handle_ino(fh)?)?;
        if path.len() >= proto::PATH_MAX {
            return Err(err(libc::ENAMETOOLONG));
        }
        out.put(&path)?;
        Ok(Done {})
    }

    fn set_noatime(
        &mut self,
        req: &ops::SetNoatime,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<Done> {
        self.client.kind(req.fh)?;
        let c = &self.client.creds;
        self.store.may_set_noatime(c, Fh(req.fh))?;
        Ok(Done {})
    }

    fn kernel_open(
        &mut self,
        req: &ops::KernelOpen,
        _: Paths<'_>,
        _: &mut Payload<'_>,
    ) -> OpResult<Done> {
        let fh = self.client.check(req.fh, HandleKind::File)?;
        // The access mode is the handle's, as the store recorded it at
        // open: the client gets a kernel fd for what it already holds.
        let mode = self.store.handle_access_mode(fh)?;
        let flags = mode | req.flags as i32 & (libc::O_APPEND | libc::O_NONBLOCK);
        let name = proto::handle_name(req.fh, self.client.image);
        let opened = {
            let _opening = self.client.opening_for(req.fh)?;
            self.kernel.open_for_client(&name, flags)
        };
        let file = opened.map_err(|e| err(e.raw_os_error().unwrap_or(libc::EIO)))?;
        (self.send_fd)(file.as_fd()).map_err(|_| err(libc::EIO))?;
        Ok(Done {})
    }
}

#[cfg(test)]
mod tests;

/// The reply of a call that removed the name of `victim` (if any).
fn removed_out(victim: Option<Attr>) -> RemovedOut {
    RemovedOut {
        file: victim
            .filter(|a| a.kind == FileKind::Regular)
            .map_or(0, |a| a.ino),
    }
}
