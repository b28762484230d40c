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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, IoctlFlags, KernelConfig, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};
use inode_store::{
    self as store, Attr, Creds, Fh, FileKind, SetAttr, Store, TimeSet, Timespec, ROOT_INO,
};

use super::coherence::KernelWriters;
use crate::creds;
use crate::fs_core::clients::{Clients, HandleKind};
use crate::metrics::{FuseOp, Metrics};

/// How long the kernel may cache entries and attributes without asking.
pub const TTL: Duration = Duration::from_secs(1);

/// Largest read or write the kernel sends in one request (256 pages).
const MAX_IO: u32 = 1 << 20;

/// `fuser` adapter over the shared store.
pub struct FuseFs {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// The fast path's clients (the core's table, shared with the ring
    /// door): who holds which handle, for [`FuseFs::held_open`].
    clients: Arc<Clients>,
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

    /// The inode behind fast-path handle `fh`, when a lookup in the root
    /// names it by its reserved name (`proto::handle_name`) and found no
    /// real entry: the library's way to hand a fast-path fd to the kernel
    /// (`kernel_reopen` in crates/interpose), which works after the file
    /// was unlinked or renamed, where reopening by path cannot.
    ///
    /// Only the holder gets an answer: the calling thread's process
    /// (`tid` mapped to its thread group) must be the client, with that
    /// process image and exactly the caller's credentials, that holds the
    /// handle in the ring server's table; everyone else gets `None`
    /// (ENOENT, as for any missing name). The lookup takes a kernel
    /// reference on the inode (`Store::add_lookup_by_handle`), so once the kernel
    /// has opened it, its lookup and open counts keep an unlinked file
    /// alive after the fast-path handle is released; the last release
    /// frees its data and the forget the inode, as for any unlinked file.
    /// For that forget to come, the library then has the kernel's dentry
    /// of the name dropped (`proto::Op::DropHandleName`): with a zero TTL
    /// it would otherwise stay in the dcache, holding the inode, until
    /// memory pressure.
    ///
    /// The open that follows is checked like any open (the kernel's
    /// `default_permissions` and the store check the inode's mode against
    /// the caller); the search permission of the directories on the
    /// file's original path is not checked again — the same as reopening
    /// through `/proc/self/fd/N`, and the caller held the file open
    /// already.
    ///
    /// Directories are answered only once removed: the kernel keeps one
    /// dentry per directory, and answering for a linked one would move its
    /// cached dentry (the cwd of other processes, the parent of their
    /// `..`) under this name in the root. A linked directory is reopened by
    /// path instead.
    fn held_open(&self, tid: u32, c: &Creds, name: &[u8]) -> Option<Attr> {
        let (fh, image) = proto::parse_handle_name(name)?;
        let pid = creds::thread_group(tid)?;
        let kind = self.clients.holder_kind(pid, image, c, fh)?;
        let fh = Fh(fh);
        if kind == HandleKind::Dir {
            // A removed directory stays removed (nlink 0 for good).
            let ino = self.store.handle_ino(fh).ok()?;
            if self.store.getattr(ino).ok()?.nlink > 0 {
                return None;
            }
        }
        self.store.add_lookup_by_handle(fh).ok()
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

fn caller(req: &Request) -> Creds {
    creds::for_caller(req.uid(), req.gid(), req.pid())
}

/// The caller with its real capabilities even for uid 0 (a `/proc` read).
fn caller_exact(req: &Request) -> Creds {
    creds::for_caller_exact(req.uid(), req.gid(), req.pid())
}

fn errno(e: store::Errno) -> Errno {
    Errno::from_i32(e.0)
}

fn empty(reply: ReplyEmpty, result: store::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

fn attr_reply(reply: ReplyAttr, result: store::Result<Attr>) {
    match result {
        Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
        Err(e) => reply.error(errno(e)),
    }
}

/// xattr replies: the size alone when the caller probes with `size == 0`.
fn xattr_reply(reply: ReplyXattr, size: u32, result: store::Result<Vec<u8>>) {
    match result {
        Ok(value) if size == 0 => reply.size(value.len() as u32),
        Ok(value) if value.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(value) => reply.data(&value),
        Err(e) => reply.error(errno(e)),
    }
}

fn system_time(t: Timespec) -> SystemTime {
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::new(t.sec as u64, t.nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs()) + Duration::from_nanos(t.nsec.into())
    }
}

/// A time from a kernel request. fuser 0.18 decodes a pre-epoch
/// `(sec, nsec)` as `epoch - (|sec| + nsec)` instead of `epoch - |sec| +
/// nsec`; this undoes that, so `utimensat` with negative times stores what
/// the caller asked for (as tmpfs does).
fn request_timespec(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        },
        Err(before) => {
            let d = before.duration();
            Timespec {
                sec: -(d.as_secs() as i64),
                nsec: d.subsec_nanos(),
            }
        }
    }
}

fn time_set(t: TimeOrNow) -> TimeSet {
    match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(t) => TimeSet::At(request_timespec(t)),
    }
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Regular => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.ctime),
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The reserved-name decision, with this test process as the client:
    /// only its own handles, with its image and credentials, and a
    /// directory only once removed.
    #[test]
    fn reserved_names_answer_the_holder_only() {
        let store = Arc::new(Store::new(1 << 20));
        let clients = Arc::new(Clients::default());
        let fs = FuseFs::new(
            store.clone(),
            Arc::default(),
            clients.clone(),
            Arc::default(),
        );
        let me = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let root = Creds::root();
        let (ours, other) = (
            clients.join(me, 7, root.clone()).unwrap(),
            clients.join(1, 7, root.clone()).unwrap(),
        );
        let (attr, file) = store
            .create(&root, ROOT_INO, b"f", 0o644, libc::O_RDWR)
            .unwrap();
        ours.adopt(file, HandleKind::File);
        let (_, foreign) = store
            .create(&root, ROOT_INO, b"g", 0o644, libc::O_RDWR)
            .unwrap();
        other.adopt(foreign, HandleKind::File);
        store.mkdir(&root, ROOT_INO, b"d", 0o755).unwrap();
        let d = store.lookup(&root, ROOT_INO, b"d").unwrap().ino;
        let dir = store.opendir(&root, d).unwrap();
        ours.adopt(dir, HandleKind::Dir);
        let ask = |fh: Fh, image: u64| fs.held_open(tid, &root, &proto::handle_name(fh.0, image));

        store.unlink(&root, ROOT_INO, b"f").unwrap();
        let got = ask(file, 7).expect("the holder's unlinked file");
        assert_eq!((got.ino, got.nlink), (attr.ino, 0));
        assert!(
            store.has_lookups(attr.ino),
            "the answer is a kernel reference"
        );
        assert_eq!(ask(file, 8), None, "another image");
        assert_eq!(ask(foreign, 7), None, "another process's handle");
        let user = Creds {
            uid: 1000,
            gid: 1000,
            groups: vec![],
            caps: inode_store::Caps::NONE,
        };
        assert_eq!(
            fs.held_open(tid, &user, &proto::handle_name(file.0, 7)),
            None,
            "another identity"
        );
        assert_eq!(fs.held_open(tid, &root, b"f"), None);
        assert_eq!(ask(dir, 7), None, "a linked directory");
        store.rmdir(&root, ROOT_INO, b"d").unwrap();
        assert_eq!(ask(dir, 7).map(|a| a.ino), Some(d), "a removed directory");
        ours.release(&store, file.0).unwrap();
        assert_eq!(ask(file, 7), None, "a released handle");
        // The kernel's reference kept the unlinked inode; its forget frees it.
        store.drop_lookups(attr.ino, 1);
        assert!(store.getattr(attr.ino).is_err());
    }

    #[test]
    fn reply_times_are_exact_before_and_after_the_epoch() {
        let at = |sec, nsec| system_time(Timespec { sec, nsec });
        assert_eq!(at(0, 0), UNIX_EPOCH);
        assert_eq!(
            at(1_700_000_000, 5),
            UNIX_EPOCH + Duration::new(1_700_000_000, 5)
        );
        assert_eq!(at(-1, 500_000_000), UNIX_EPOCH - Duration::from_millis(500));
        assert_eq!(at(-86_400, 0), UNIX_EPOCH - Duration::from_secs(86_400));
    }

    #[test]
    fn pre_epoch_request_times_undo_fusers_decoding() {
        // fuser turns (sec -1, nsec 999_999_995) into epoch - 1.999999995 s.
        let decoded = UNIX_EPOCH - Duration::new(1, 999_999_995);
        assert_eq!(
            request_timespec(decoded),
            Timespec {
                sec: -1,
                nsec: 999_999_995
            }
        );
        let after = UNIX_EPOCH + Duration::new(5, 7);
        assert_eq!(request_timespec(after), Timespec { sec: 5, nsec: 7 });
    }
}
