//! The FUSE door's own helpers: construction, the shared directory
//! handles, unlink bookkeeping, the latency record of each request, and
//! how a file the kernel opened is named and used.

use super::*;

impl FuseFs {
    /// Serves `store` to the kernel, recording requests in `metrics`;
    /// `clients` are the fast path's, whose handles their holders may
    /// reopen through this door; `pages` records the files the kernel has
    /// read or written, for the notifier; `kernel_checks` whether the mount
    /// has `default_permissions`; `over_io_uring` whether to ask the
    /// kernel for FUSE over io_uring, and then whether it agreed.
    pub fn new(
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        clients: Arc<Clients>,
        pages: Arc<KernelPages>,
        kernel_checks: bool,
        over_io_uring: Arc<AtomicBool>,
    ) -> FuseFs {
        FuseFs {
            store,
            metrics,
            clients,
            pages,
            dirs: parking_lot::Mutex::default(),
            unlinked: PendingForgets::default(),
            kernel_checks,
            over_io_uring,
        }
    }

    /// The store handle all the kernel's listings of directory `ino` share,
    /// made for the first. Opened as root: whoever lists the directory
    /// opened it, permission-checked by the kernel or by `opendir` below.
    pub(super) fn dir_handle(&self, ino: Ino) -> store::Result<Fh> {
        let mut dirs = self.dirs.lock();
        if let Some(&fh) = dirs.get(&ino) {
            return Ok(fh);
        }
        let fh = self.store.opendir(&store::Creds::root(), ino)?;
        dirs.insert(ino, fh);
        Ok(fh)
    }

    /// Notes that the kernel removed a name of `victim` (as looked up just
    /// before): if that was a file's last link, its blocks go at the
    /// `FORGET` now due.
    pub(super) fn note_unlinked(&self, victim: store::Result<store::Attr>) {
        if let Ok(a) = victim {
            if a.nlink == 1 && a.kind != store::FileKind::Directory {
                self.unlinked.unlinked(a.ino);
            }
        }
    }

    /// Records a request answered `ENOSYS` (the kernel sends it once).
    pub(super) fn not_served(&self, op: FuseOp) {
        self.metrics
            .fuse
            .record(op as usize, Duration::ZERO, libc::ENOSYS);
    }

    /// The door is about to let the kernel hold pages of `ino`: a change
    /// of its bytes for the fast path's caches the first time (see
    /// `Store::kernel_takes_pages`), until the kernel forgets it.
    pub(super) fn kernel_fills(&self, ino: Ino) {
        if self.pages.filled(ino) {
            self.store.kernel_takes_pages(ino);
        }
    }

    /// Runs one store call and records its latency and outcome. A call
    /// that finds no space while files the kernel unlinked a moment ago
    /// still hold theirs (their `FORGET`s on the way, see [`forgets`]) runs
    /// again once they are forgotten: on tmpfs an unlinked file nobody has
    /// open frees its space before `unlink` returns, and here a request can
    /// overtake the `FORGET` (the io_uring queues and `/dev/fuse` are read
    /// by different threads).
    pub(super) fn timed<T>(
        &self,
        op: FuseOp,
        mut call: impl FnMut() -> store::Result<T>,
    ) -> store::Result<T> {
        let start = Instant::now();
        let result = match call() {
            Err(e) if e == store::Errno::ENOSPC && self.unlinked.settle() => call(),
            result => result,
        };
        self.metrics.fuse.record(
            op as usize,
            start.elapsed(),
            result.as_ref().map_or_else(|e| e.0, |_| 0),
        );
        result
    }

    /// Replies with an entry and records the kernel's new reference to it.
    pub(super) fn entry(&self, reply: ReplyEntry, result: store::Result<Attr>) {
        match result {
            Ok(attr) => {
                self.store.add_lookup(attr.ino);
                reply.entry(&TTL, &file_attr(&attr), Generation(0));
            }
            Err(e) => reply.error(errno(e)),
        }
    }
}

/// The file a data request names: its store handle, or with handle 0 (the
/// kernel opened it without asking, see the module docs) the inode.
pub(super) fn file_ref(ino: INodeNo, fh: FileHandle) -> FileRef {
    match fh.0 {
        0 => FileRef::Inode(ino.0),
        fh => FileRef::Handle(Fh(fh)),
    }
}

/// How the kernel is to use a file it opened with `CREATE` and `flags`.
///
/// Its pages stay cached across opens, like every file's. A file made
/// write-only is written around the page cache (`FOPEN_DIRECT_IO`): such a
/// descriptor can be neither read nor mapped, so the pages a cached write
/// would fill serve nobody through it, and a direct write skips the
/// kernel's `file_remove_privs`, whose `security.capability` lookup is a
/// `GETXATTR` round trip before every `write` (the store drops setid bits
/// and file capabilities itself). `tar x` of 4 000 files: one request a
/// file fewer and no page-cache copy, 294 → 243 ms. A reader that opens
/// the file meanwhile still sees every byte: the kernel invalidates its
/// cached pages of the range before each direct write, and the daemon's
/// copy is the only one written.
pub(super) fn created_open_flags(flags: i32) -> FopenFlags {
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_DIRECT_IO
    } else {
        FopenFlags::FOPEN_KEEP_CACHE
    }
}
