//! The kernel front door: a `fuser::Filesystem` over the shared [`Store`].
//!
//! Every method is an adapter: decode the request, call the store, encode the
//! reply. The filesystem's rules live in `inode-store`, so this door and the
//! shared-memory door cannot disagree.
//!
//! Cache policy: the kernel caches entries and attributes for [`TTL`] (a
//! day), file pages and directory listings until told otherwise. Changes
//! made through the kernel keep its caches coherent by themselves; every
//! change made through the fast path is pushed to the kernel with the
//! session's `Notifier` (`inval_entry` / `inval_inode`, which drops the
//! inode's attributes and cached pages) before the fast-path call returns,
//! so nothing waits for a timeout to be seen (see [`super::coherence`]).
//!
//! Files and directories are opened by the kernel alone: OPEN and OPENDIR
//! are answered `ENOSYS`, after which the kernel sends no OPEN, OPENDIR,
//! FLUSH, RELEASEDIR (nor RELEASE, but for files made by CREATE), keeps
//! file pages across opens (`FOPEN_KEEP_CACHE`) and directory listings
//! (`FOPEN_CACHE_DIR`, both implied), and sends reads, writes and readdirs
//! with handle 0, which this door serves by inode ([`FileRef::Inode`]);
//! the kernel has checked permissions at open (`default_permissions`) and
//! checks each file's access mode. With `nodefault_permissions` the kernel
//! checks nothing, so there OPEN and OPENDIR are answered, after the
//! store's permission check, with handle 0 and the same cache flags.
//!
//! A directory's cached listing belongs to the directory, not to one open:
//! a reader may resume at a position another open's listing handed out
//! (after an invalidation dropped the cached pages, say). So every listing
//! of a directory through the kernel uses the same store handle, whose
//! readdir cookies mean the same for all, kept until the kernel forgets the
//! directory ([`FuseFs::dir_handle`]).
//!
//! Files held open through the fast path: when `libbtfuse.so` must hand a
//! fast-path fd to the kernel (fork, exec, mmap, locks, ...), it opens the
//! file through this door by a reserved name in the mount root that names
//! its daemon handle (`proto::HANDLE_NAME_PREFIX`), not by path, so a file
//! since unlinked or renamed is still the one reopened. See
//! [`FuseFs::held_open`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, IoctlFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl,
    ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use inode_store::{self as store, Attr, Fh, FileRef, Ino, SetAttr, Store, ROOT_INO};

use super::coherence::KernelPages;
use super::forgets::PendingForgets;
use crate::fs_core::clients::Clients;
use crate::metrics::{FuseOp, Metrics};

use super::convert::{
    attr_reply, caller, caller_exact, empty, errno, file_attr, file_type, request_timespec,
    time_set, xattr_reply,
};

/// How long the kernel may cache entries and attributes without asking: a
/// day, since every change reaches the kernel's caches at once (see the
/// module docs); the timeout only bounds how long an unused entry lingers.
pub const TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Largest read or write the kernel sends in one request (256 pages).
pub const MAX_IO: u32 = 1 << 20;

/// `fuser` adapter over the shared store.
pub struct FuseFs {
    pub(super) store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// The fast path's clients (the core's table, shared with the ring
    /// door): who holds which handle, for [`FuseFs::held_open`].
    pub(super) clients: Arc<Clients>,
    /// Files whose pages the kernel may hold, recorded here and read by the
    /// [`KernelNotifier`](super::KernelNotifier) (see [`super::coherence`]).
    pages: Arc<KernelPages>,
    /// The one store handle of each directory the kernel has listed (see
    /// the module docs), released when the kernel forgets the directory.
    dirs: parking_lot::Mutex<HashMap<Ino, Fh>>,
    /// Files the kernel unlinked whose `FORGET` is due (see [`forgets`]).
    unlinked: PendingForgets,
    /// Whether the kernel checks permissions at open (`default_permissions`):
    /// only then may it open files and directories without asking.
    kernel_checks: bool,
    /// Whether to ask for FUSE over io_uring at INIT; after INIT, whether
    /// the kernel agreed (see [`super::uring`]).
    over_io_uring: Arc<AtomicBool>,
}

mod helpers;

use helpers::{created_open_flags, file_ref};

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        use fuser::InitFlags as F;
        // Optional capabilities: the kernel may refuse any of them and we
        // still work. HANDLE_KILLPRIV(_V2): the store clears setuid/setgid on
        // write, truncate and chown itself; without it the kernel would send
        // a chmod on the writer's behalf, which the store rightly refuses to
        // a non-owner.
        // No FUSE_ATOMIC_O_TRUNC: the kernel sends no OPEN (see `open`), so
        // it must send O_TRUNC as a SETATTR of the size. READDIRPLUS always,
        // not FUSE_READDIRPLUS_AUTO: the kernel's heuristic asks for
        // attributes only in the first 32 KiB of a listing, and `find
        // -size`, `ls -l` or `du` then cost one LOOKUP per remaining entry;
        // a listing without attributes is rarely read twice (the kernel
        // keeps it, FOPEN_CACHE_DIR).
        for flag in [
            F::FUSE_DO_READDIRPLUS,
            F::FUSE_PARALLEL_DIROPS,
            F::FUSE_HANDLE_KILLPRIV,
            F::FUSE_HANDLE_KILLPRIV_V2,
        ] {
            let _ = config.add_capabilities(flag);
        }
        let _ = config.set_max_write(MAX_IO);
        if self.over_io_uring.load(Ordering::Relaxed) {
            let agreed = config.add_capabilities(F::FUSE_OVER_IO_URING).is_ok();
            self.over_io_uring.store(agreed, Ordering::Relaxed);
        }
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
        let known = || self.store.has_lookups(ino.0);
        self.pages.forgotten(ino.0, known);
        if !known() {
            self.unlinked.forgotten(ino.0);
        }
        let mut dirs = self.dirs.lock();
        if dirs.contains_key(&ino.0) && !known() {
            if let Some(fh) = dirs.remove(&ino.0) {
                let _ = self.store.releasedir(fh);
            }
        }
        drop(dirs);
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
        // Only a truncate through a descriptor names one.
        let fh = fh.map(|f| file_ref(ino, f));
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
                let c = caller(req);
                let victim = self.store.lookup(&c, parent.0, name.as_bytes());
                self.store.unlink(&c, parent.0, name.as_bytes())?;
                self.note_unlinked(victim);
                Ok(())
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
            let c = caller(req);
            let victim = match flags.exchange {
                false => self.store.lookup(&c, newparent.0, newname.as_bytes()),
                true => Err(store::Errno::EEXIST),
            };
            self.store.rename(
                &c,
                parent.0,
                name.as_bytes(),
                newparent.0,
                newname.as_bytes(),
                flags,
            )?;
            self.note_unlinked(victim);
            Ok(())
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

    /// `ENOSYS`: from then on the kernel opens files itself (see the module
    /// docs), keeping their page cache, with no round trip at open or close.
    /// Without `default_permissions`, the store's check, then handle 0.
    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if self.kernel_checks {
            self.not_served(FuseOp::Open);
            return reply.error(Errno::ENOSYS);
        }
        let checked = self.timed(FuseOp::Open, || {
            let fh = self.store.open(&caller(req), ino.0, flags.0)?;
            self.store.release(fh)
        });
        match checked {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut buf = vec![0u8; size.min(MAX_IO) as usize];
        // Before the reply: the pages it fills are the kernel's from then.
        self.kernel_fills(ino.0);
        let file = file_ref(ino, fh);
        match self.timed(FuseOp::Read, || self.store.read(file, offset, &mut buf)) {
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
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // A write through the kernel leaves the pages it copied cached.
        self.kernel_fills(ino.0);
        // A store handle knows its O_APPEND; a kernel-opened file's flags
        // come with each write.
        let append = flags.0 & libc::O_APPEND != 0;
        // The writer is answered as soon as the store has placed the
        // blocks, and the kernel copies its next chunk while the store
        // copies this one (the file stays locked until then).
        let mut reply = Some(reply);
        let result = self.timed(FuseOp::Write, || {
            self.store.write_acked(
                &caller(req),
                file_ref(ino, fh),
                offset,
                data,
                append,
                |written| {
                    if let Some(r) = reply.take() {
                        r.written(written.len as u32);
                    }
                },
            )
        });
        match (result, reply) {
            (Ok(written), _) => self.metrics.fuse.add_written(written.len as u64),
            (Err(e), Some(r)) => r.error(errno(e)),
            (Err(_), None) => unreachable!("the store fails no write it acknowledged"),
        }
    }

    /// `ENOSYS`: nothing is buffered here, and the kernel then sends no
    /// FLUSH at any later close.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.not_served(FuseOp::Flush);
        reply.error(Errno::ENOSYS);
    }

    /// Files the kernel opens hold no store handle (see `open` and
    /// `create`): nothing to release.
    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.timed(FuseOp::Release, || Ok(())));
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.timed(FuseOp::Fsync, || self.store.fsync(file_ref(ino, fh))),
        );
    }

    /// `ENOSYS`, as `open` (see the module docs): the kernel then lists
    /// directories from its cache with no round trip at open or close.
    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self.kernel_checks {
            self.not_served(FuseOp::Opendir);
            return reply.error(Errno::ENOSYS);
        }
        let checked = self.timed(FuseOp::Opendir, || {
            let fh = self.store.opendir(&caller(req), ino.0)?;
            self.store.releasedir(fh)
        });
        match checked {
            // The kernel lists the directory from its own cache until the
            // directory changes (through the kernel, or an invalidation).
            Ok(()) => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self.timed(FuseOp::Readdir, || {
            self.store.readdir(self.dir_handle(ino.0)?, offset, |e| {
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
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let result = self.timed(FuseOp::Readdirplus, || {
            self.store
                .readdir_plus(self.dir_handle(ino.0)?, offset, |e| {
                    let name = OsStr::from_bytes(e.name);
                    let attr = e.attr.as_ref().expect("readdir_plus gives attributes");
                    let full = reply.add(
                        INodeNo(e.ino),
                        e.next,
                        name,
                        &TTL,
                        &file_attr(attr),
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

    /// Nothing to release: the directory's handle is shared by all the
    /// kernel's listings and lives until the kernel forgets the directory.
    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.timed(FuseOp::Releasedir, || Ok(())));
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.timed(FuseOp::Fsyncdir, || self.store.getattr(ino.0).map(drop)),
        );
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let start = Instant::now();
        self.unlinked.settle();
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
                // Handle 0, as for every file the kernel opens: once OPEN
                // was answered ENOSYS the kernel sends no RELEASE, not even
                // for created files, so a store handle would never be freed.
                // The store checked the permissions; the file lives on by
                // its name and the kernel's lookup reference.
                let _ = self.store.release(fh);
                let attr = file_attr(&attr);
                reply.created(
                    &TTL,
                    &attr,
                    Generation(0),
                    FileHandle(0),
                    created_open_flags(flags),
                );
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self.timed(FuseOp::Fallocate, || {
            self.store
                .fallocate(&caller(req), file_ref(ino, fh), offset, length, mode)
        });
        empty(reply, result);
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
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
        match self.timed(FuseOp::Lseek, || {
            self.store.lseek(file_ref(ino, fh), offset, whence)
        }) {
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
        // Python asks `isatty` (TCGETS) of every file it opens.
        let _ = self.timed(FuseOp::Ioctl, || Err::<(), _>(store::Errno(libc::ENOTTY)));
        reply.error(Errno::ENOTTY);
    }

    fn copy_file_range(
        &self,
        req: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
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
                file_ref(ino_in, fh_in),
                offset_in,
                file_ref(ino_out, fh_out),
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
