//! The kernel front door: a `fuser::Filesystem` over the shared [`Store`].
//!
//! Every method is an adapter: decode the request, call the store, encode the
//! reply. The filesystem's rules live in `inode-store`, so this door and the
//! shared-memory door cannot disagree.
//!
//! Cache policy: entries and attributes are cached by the kernel for
//! [`TTL`]. Changes made through the kernel keep its caches coherent by
//! themselves; changes made through the fast path are pushed to the kernel
//! with the session's `Notifier` (`inval_entry` / `inval_inode`). Page-cache
//! contents are dropped on every open (no `FOPEN_KEEP_CACHE`), so a reader
//! that opens a file after a fast-path write always sees the new bytes.
//!
//! Files held open through the fast path: when `libbtfuse.so` must hand a
//! fast-path fd to the kernel (fork, exec, mmap, locks, ...), it opens the
//! file through this door by a reserved name in the mount root that names
//! its daemon handle (`proto::HANDLE_NAME_PREFIX`), not by path, so a file
//! since unlinked or renamed is still the one reopened. See
//! [`FuseFs::held_open`].

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, IoctlFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl,
    ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use inode_store::{self as store, Attr, Fh, SetAttr, Store, ROOT_INO};

use super::coherence::KernelWriters;
use crate::fs_core::clients::Clients;
use crate::metrics::{FuseOp, Metrics};

use super::convert::{
    attr_reply, caller, caller_exact, empty, errno, file_attr, file_type, request_timespec,
    time_set, xattr_reply,
};

/// How long the kernel may cache entries and attributes without asking.
pub const TTL: Duration = Duration::from_secs(1);

/// Largest read or write the kernel sends in one request (256 pages).
const MAX_IO: u32 = 1 << 20;

/// `fuser` adapter over the shared store.
pub struct FuseFs {
    pub(super) store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// The fast path's clients (the core's table, shared with the ring
    /// door): who holds which handle, for [`FuseFs::held_open`].
    pub(super) clients: Arc<Clients>,
    /// Files the kernel has open for writing, counted here and read by the
    /// [`KernelNotifier`](super::KernelNotifier) (see [`super::coherence`]).
    writers: Arc<KernelWriters>,
}

impl FuseFs {
    /// Serves `store` to the kernel, recording requests in `metrics`;
    /// `clients` are the fast path's, whose handles their holders may
    /// reopen through this door; `writers` counts the kernel's writable
    /// opens for the notifier.
    pub fn new(
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        clients: Arc<Clients>,
        writers: Arc<KernelWriters>,
    ) -> FuseFs {
        FuseFs {
            store,
            metrics,
            clients,
            writers,
        }
    }

    /// Runs one store call and records its latency and outcome.
    fn timed<T>(&self, op: FuseOp, call: impl FnOnce() -> store::Result<T>) -> store::Result<T> {
        let start = Instant::now();
        let result = call();
        self.metrics.fuse.record(
            op as usize,
            start.elapsed(),
            result.as_ref().map_or_else(|e| e.0, |_| 0),
        );
        result
    }

    /// Replies with an entry and records the kernel's new reference to it.
    fn entry(&self, reply: ReplyEntry, result: store::Result<Attr>) {
        match result {
            Ok(attr) => {
                self.store.add_lookup(attr.ino);
                reply.entry(&TTL, &file_attr(&attr), Generation(0));
            }
            Err(e) => reply.error(errno(e)),
        }
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        use fuser::InitFlags as F;
        // Optional capabilities: the kernel may refuse any of them and we
        // still work. HANDLE_KILLPRIV(_V2): the store clears setuid/setgid on
        // write, truncate and chown itself; without it the kernel would send
        // a chmod on the writer's behalf, which the store rightly refuses to
        // a non-owner.
        for flag in [
            F::FUSE_DO_READDIRPLUS,
            F::FUSE_READDIRPLUS_AUTO,
            F::FUSE_PARALLEL_DIROPS,
            F::FUSE_ATOMIC_O_TRUNC,
            F::FUSE_HANDLE_KILLPRIV,
            F::FUSE_HANDLE_KILLPRIV_V2,
        ] {
            let _ = config.add_capabilities(flag);
        }
        let _ = config.set_max_write(MAX_IO);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let c = caller(req);
        let name = name.as_bytes();
        let result = self.timed(FuseOp::Lookup, || self.store.lookup(&c, parent.0, name));
        if parent.0 == ROOT_INO && matches!(result, Err(e) if e == store::Errno::ENOENT) {
            // The holder is found by its exact identity, capabilities
            // included: read them only for a name that can be a handle's.
            let held = proto::parse_handle_name(name)
                .and_then(|_| self.held_open(req.pid(), &caller_exact(req), name));
            if let Some(attr) = held {
                // TTL 0 for entry and attributes: the kernel asks again on
                // every use of the name, and so never serves it to another
                // process from its cache.
                return reply.entry(&Duration::ZERO, &file_attr(&attr), Generation(0));
            }
        }
        self.entry(reply, result);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let start = Instant::now();
        self.store.drop_lookups(ino.0, nlookup);
        self.metrics
            .fuse
            .record(FuseOp::Forget as usize, start.elapsed(), 0);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        attr_reply(
            reply,
            self.timed(FuseOp::Getattr, || self.store.getattr(ino.0)),
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // With HANDLE_KILLPRIV the kernel turns chown(f, -1, -1) into a
        // SETATTR that sets nothing (at most ctime); nothing else does.
        let bare_chown = [mode, uid, gid].iter().all(Option::is_none)
            && size.is_none()
            && atime.is_none()
            && mtime.is_none();
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time_set),
            mtime: mtime.map(time_set),
            ctime: ctime.map(request_timespec),
            chown: bare_chown,
        };
        let fh = fh.map(|f| Fh(f.0));
        let result = self.timed(FuseOp::Setattr, || {
            self.store.setattr(&caller(req), ino.0, &set, fh)
        });
        attr_reply(reply, result);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.timed(FuseOp::Readlink, || self.store.readlink(ino.0)) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        // The kernel has already applied the umask to `mode`.
        let result = self.timed(FuseOp::Mknod, || {
            self.store
                .mknod(&caller(req), parent.0, name.as_bytes(), mode, rdev)
        });
        self.entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.entry(
            reply,
            self.timed(FuseOp::Mkdir, || {
                self.store
                    .mkdir(&caller(req), parent.0, name.as_bytes(), mode)
            }),
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            self.timed(FuseOp::Unlink, || {
                self.store.unlink(&caller(req), parent.0, name.as_bytes())
            }),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            self.timed(FuseOp::Rmdir, || {
                self.store.rmdir(&caller(req), parent.0, name.as_bytes())
            }),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let target = target.as_os_str().as_bytes();
        let result = self.timed(FuseOp::Symlink, || {
            self.store
                .symlink(&caller(req), parent.0, link_name.as_bytes(), target)
        });
        self.entry(reply, result);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let flags = store::RenameFlags {
            noreplace: flags.contains(RenameFlags::RENAME_NOREPLACE),
            exchange: flags.contains(RenameFlags::RENAME_EXCHANGE),
            whiteout: flags.contains(RenameFlags::RENAME_WHITEOUT),
        };
        let result = self.timed(FuseOp::Rename, || {
            self.store.rename(
                &caller(req),
                parent.0,
                name.as_bytes(),
                newparent.0,
                newname.as_bytes(),
                flags,
            )
        });
        empty(reply, result);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let result = self.timed(FuseOp::Link, || {
            self.store
                .link(&caller(req), ino.0, newparent.0, newname.as_bytes())
        });
        self.entry(reply, result);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.timed(FuseOp::Open, || {
            self.store.open(&caller(req), ino.0, flags.0)
        }) {
            Ok(fh) => {
                self.writers.opened(ino.0, flags.0);
                reply.opened(FileHandle(fh.0), FopenFlags::empty())
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut buf = vec![0u8; size.min(MAX_IO) as usize];
        match self.timed(FuseOp::Read, || self.store.read(Fh(fh.0), offset, &mut buf)) {
            Ok(n) => {
                self.metrics.fuse.add_read(n as u64);
                reply.data(&buf[..n]);
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = self.timed(FuseOp::Write, || {
            self.store.write(&caller(req), Fh(fh.0), offset, data)
        });
        match result {
            Ok(written) => {
                self.metrics.fuse.add_written(written.len as u64);
                reply.written(written.len as u32);
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.timed(FuseOp::Flush, || self.store.flush(Fh(fh.0))),
        );
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.writers.released(ino.0, flags.0);
        empty(
            reply,
            self.timed(FuseOp::Release, || self.store.release(Fh(fh.0))),
        );
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.timed(FuseOp::Fsync, || self.store.fsync(Fh(fh.0))),
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.timed(FuseOp::Opendir, || self.store.opendir(&caller(req), ino.0)) {
            Ok(fh) => reply.opened(FileHandle(fh.0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self.timed(FuseOp::Readdir, || {
            self.store.readdir(Fh(fh.0), offset, |e| {
                let full = reply.add(
                    INodeNo(e.ino),
                    e.next,
                    file_type(e.kind),
                    OsStr::from_bytes(e.name),
                );
                !full
            })
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let result = self.timed(FuseOp::Readdirplus, || {
            self.store.readdir(Fh(fh.0), offset, |e| {
                let name = OsStr::from_bytes(e.name);
                let full = reply.add(
                    INodeNo(e.ino),
                    e.next,
                    name,
                    &TTL,
                    &file_attr(&e.attr),
                    Generation(0),
                );
                // The kernel takes a lookup reference on every entry it accepts,
                // except "." and "..".
                if !full && e.name != b"." && e.name != b".." {
                    self.store.add_lookup(e.ino);
                }
                !full
            })
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.timed(FuseOp::Releasedir, || self.store.releasedir(Fh(fh.0))),
        );
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.timed(FuseOp::Fsyncdir, || {
                self.store.handle_ino(Fh(fh.0)).map(drop)
            }),
        );
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let start = Instant::now();
        let s = self.store.statfs();
        self.metrics
            .fuse
            .record(FuseOp::Statfs as usize, start.elapsed(), 0);
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        position: u32,
        reply: ReplyEmpty,
    ) {
        if position != 0 {
            return reply.error(Errno::EINVAL);
        }
        let result = self.timed(FuseOp::Setxattr, || {
            self.store
                .setxattr(&caller(req), ino.0, name.as_bytes(), value, flags)
        });
        empty(reply, result);
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        xattr_reply(
            reply,
            size,
            self.timed(FuseOp::Getxattr, || {
                self.store.getxattr(&caller(req), ino.0, name.as_bytes())
            }),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let result = self.timed(FuseOp::Listxattr, || {
            // The kernel does not filter `trusted.*` names for FUSE.
            self.store.listxattr(&caller_exact(req), ino.0)
        });
        xattr_reply(reply, size, result);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            self.timed(FuseOp::Removexattr, || {
                self.store.removexattr(&caller(req), ino.0, name.as_bytes())
            }),
        );
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let result = self.timed(FuseOp::Access, || {
            self.store.access(&caller(req), ino.0, mask.bits())
        });
        empty(reply, result);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.timed(FuseOp::Create, || {
            self.store
                .create(&caller(req), parent.0, name.as_bytes(), mode, flags)
        });
        match result {
            Ok((attr, fh)) => {
                self.store.add_lookup(attr.ino);
                self.writers.opened(attr.ino, flags);
                let attr = file_attr(&attr);
                reply.created(
                    &TTL,
                    &attr,
                    Generation(0),
                    FileHandle(fh.0),
                    FopenFlags::empty(),
                );
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self.timed(FuseOp::Fallocate, || {
            self.store.fallocate(Fh(fh.0), offset, length, mode)
        });
        empty(reply, result);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        // The kernel only forwards SEEK_DATA and SEEK_HOLE; like tmpfs, a
        // negative offset is past every byte of data: ENXIO.
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(Errno::ENXIO);
        };
        match self.timed(FuseOp::Lseek, || self.store.lseek(Fh(fh.0), offset, whence)) {
            Ok(pos) => reply.offset(pos as i64),
            Err(e) => reply.error(errno(e)),
        }
    }

    /// No ioctl is implemented: ENOTTY, what the kernel answers for an
    /// unknown request (programs probe with TCGETS via `isatty`), without
    /// fuser's per-request "not implemented" warning.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn copy_file_range(
        &self,
        req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        // One reply carries at most a u32 count; the kernel loops for the rest.
        let len = len.min(u64::from(!(store::BLOCK_SIZE as u32 - 1)));
        let result = self.timed(FuseOp::CopyFileRange, || {
            self.store.copy_file_range(
                &caller(req),
                Fh(fh_in.0),
                offset_in,
                Fh(fh_out.0),
                offset_out,
                len,
            )
        });
        match result {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(errno(e)),
        }
    }
}
