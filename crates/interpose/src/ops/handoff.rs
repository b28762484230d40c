//! Opening files on a mount, the placeholder fds that hold their numbers,
//! and handing a file to the kernel (fork, exec, mmap, locks, fds sent
//! to another process).

use super::*;

/// Placeholder sources: `O_PATH` descriptors of `/dev/null` whose
/// duplicates are our fds, one per CPU (modulo their number): every
/// duplicate and close moves its open file's reference count, and two
/// threads opening in a loop on two CPUs made one count's line bounce
/// between them (the loop did not get faster with the second thread).
static NULLFDS: [AtomicI32; 4] = [const { AtomicI32::new(-1) }; 4];

/// Whether `fd` is one of the library's own placeholder sources.
pub(crate) fn is_nullfd(fd: i32) -> bool {
    fd >= 0 && NULLFDS.iter().any(|s| s.load(Ordering::Relaxed) == fd)
}

/// The placeholder source of the CPU the caller runs on.
fn source() -> &'static AtomicI32 {
    // SAFETY: no arguments; the vDSO (or rseq) answers, no system call.
    let cpu = unsafe { libc::sched_getcpu() };
    &NULLFDS[cpu.max(0) as usize % NULLFDS.len()]
}

/// Source `slot`'s descriptor, opened now if it has none.
fn nullfd(slot: &AtomicI32) -> R<i32> {
    let fd = slot.load(Ordering::Relaxed);
    if fd >= 0 {
        return Ok(fd);
    }
    let fd = sys::open(b"/dev/null\0", libc::O_PATH | libc::O_CLOEXEC).map_err(Fail::Errno)?;
    let fd = channel::move_high(fd);
    match slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed) {
        Ok(_) => Ok(fd),
        Err(other) => {
            sys::close(fd);
            Ok(other)
        }
    }
}

/// The program closes a range of fds that may include placeholder
/// sources: forget them (they are reopened on demand).
pub(crate) fn forget_nullfd_in(lo: u32, hi: u32) {
    for slot in &NULLFDS {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 && (fd as u32) >= lo && (fd as u32) <= hi {
            slot.store(-1, Ordering::Relaxed);
        }
    }
}

/// Moves a placeholder source away from `fd` (the program wants that
/// number, e.g. `dup2(x, fd)`).
pub(crate) fn evict_internal(fd: i32) {
    for slot in NULLFDS
        .iter()
        .filter(|s| fd >= 0 && s.load(Ordering::Relaxed) == fd)
    {
        match sys::fcntl(fd, libc::F_DUPFD_CLOEXEC, channel::high_fd_base() as _) {
            Ok(n) => slot.store(n, Ordering::Relaxed),
            Err(_) => slot.store(-1, Ordering::Relaxed),
        }
    }
}

/// A fresh placeholder fd number (lowest free at or above `min`).
///
/// The source is trusted to still be ours without asking the kernel: the
/// program can only close or replace it through `close`, `close_range`,
/// `closefrom`, `dup2`, `dup3` or `syscall(3)` with one of those, and each
/// of those hooks gives the number up ([`evict_internal`],
/// [`forget_nullfd_in`]) before the kernel reuses it — the invariant the
/// fd table itself rests on (a fast-path fd closed past the hooks would
/// free a number the table still maps). A source closed past them is
/// `EBADF` here and reopened. (An `F_GETFL` of every duplicate, checked
/// for `O_PATH`, was a tenth of an open + read + close.)
pub(crate) fn placeholder(min: i32, cloexec: bool) -> R<i32> {
    let cmd = if cloexec {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    let slot = source();
    #[link_section = ".data.btfuse_hot"]
    static FIRST: AtomicBool = AtomicBool::new(true);
    if min == 0 && slot.load(Ordering::Relaxed) < 0 && FIRST.swap(false, Ordering::Relaxed) {
        // The process's first: the open itself gives the lowest free
        // number, as a duplicate would (a process that opens one file,
        // `cat`, spares the source's three calls; later ones duplicate).
        let flags = libc::O_PATH | if cloexec { libc::O_CLOEXEC } else { 0 };
        return sys::open(b"/dev/null\0", flags).map_err(Fail::Errno);
    }
    for _ in 0..2 {
        let src = nullfd(slot)?;
        match sys::fcntl(src, cmd, min as _) {
            Ok(fd) => return Ok(fd),
            Err(libc::EBADF) => slot.store(-1, Ordering::Relaxed),
            Err(e) => return Err(Fail::Errno(e)),
        }
    }
    Err(Fail::Errno(libc::EMFILE))
}

/// `openat` on the fast path. Returns the new fd.
pub(crate) fn open(t: &Target, flags: c_int, mode: u32) -> R<c_int> {
    if let Some(fd) = open_kept(t, flags) {
        return fd;
    }
    if flags & libc::O_CREAT == 0 && super::attrs::known_absent(t) {
        return Err(Fail::Errno(libc::ENOENT));
    }
    if let Some(fd) = open_public(t, flags) {
        return fd;
    }
    open_by_channel(t, flags, mode)
}

/// [`open`] through the channel: a listing made ahead, else a round trip.
/// A function of its own: its frame (the channel's, a few KiB) is probed
/// page by page at entry, and an open that the kept handles or the public
/// table answer (`cat`, a compiler's headers) touches no new stack page
/// for it.
#[inline(never)]
fn open_by_channel(t: &Target, flags: c_int, mode: u32) -> R<c_int> {
    if reads_only(flags) && super::ahead::on_miss(t) {
        if let Some(fd) = open_kept(t, flags) {
            return fd;
        }
    }
    let wire_flags = (flags & !libc::O_CLOEXEC) as u32;
    let mode = if flags & libc::O_CREAT != 0 {
        mode & 0o7777 & !state::umask()
    } else {
        0
    };
    let open = ops::Open {
        base: t.base,
        flags: wire_flags,
        mode,
    };
    let out = call_with(t.mount, &open, t.rel(), b"", |out, data| {
        // The bytes it brought, for this open's reads.
        if out.data_stamp != 0 && reads_only(flags) {
            let key = opendata::Key {
                mount: t.mount,
                fh: out.fh,
                ino: out.attr.ino,
                epoch: state::epoch(),
            };
            opendata::keep(key, out.data_stamp, out.attr.atime, data);
        }
        Ok(*out)
    })?;
    let regular = out.attr.mode & libc::S_IFMT == libc::S_IFREG;
    if reads_only(flags) && regular && filecache::opened_before(t.mount, out.attr.ino) {
        // Opened again: kept, by its path, for the next open (`open_kept`;
        // a file opened once is not worth a line of the cache's tables:
        // `cat` of many files would fault them in).
        let named = filecache::Named {
            base: t.base,
            path: t.rel(),
            dir: out.dir,
        };
        if let (_, Some(old)) = filecache::keep(t.mount, out.fh, &out.attr, out.stamp, &named) {
            release(t.mount, old);
        }
    }
    install_opened(t, flags, &out)
}

/// Whether an open with `flags` only reads (what a kept handle allows:
/// see `filecache`).
fn reads_only(flags: c_int) -> bool {
    flags & !(libc::O_CLOEXEC | libc::O_LARGEFILE | libc::O_NOCTTY) == libc::O_RDONLY
}

/// A read-only open of a path this process opened a regular file by
/// before, through the handle it kept (`filecache`): no round trip, if the
/// path still names that file and nothing touched it since.
fn open_kept(t: &Target, flags: c_int) -> Option<R<c_int>> {
    if !reads_only(flags) {
        return None;
    }
    let (fh, attr, stamp) = filecache::open(t.mount, t.base, t.rel(), || channel::now(t.mount))?;
    metacache::count(true);
    let out = ops::OpenOut {
        fh,
        attr,
        stamp,
        dir: 0,
        data_stamp: 0,
    };
    Some(install_opened(t, flags, &out))
}

/// A read-only open, from the mount's public table (see `public`), by a
/// process that has no channel to the mount yet.
fn open_public(t: &Target, flags: c_int) -> Option<R<c_int>> {
    if !reads_only(flags) {
        return None;
    }
    // The bytes go straight where the open's reads will find them (a
    // slot taken only once the table holds the file: a miss, or a process
    // that asks its daemon, keeps every slot's bytes); with no slot free
    // (another thread filling it), the daemon opens it.
    let mut kept = None;
    let got = public::open(t.mount, t.base, t.rel(), || {
        Some(&mut kept.insert(opendata::Reserved::take()?).bytes()[..])
    })?;
    let o = match got {
        Ok(o) => o,
        Err(e) => return Some(Err(Fail::Errno(e))),
    };
    // (An answer read its bytes into the room: never without it.)
    let Some(kept) = kept else {
        public::closed(t.mount);
        return None;
    };
    let key = opendata::Key {
        mount: t.mount,
        fh: o.fh,
        ino: o.attr.ino,
        epoch: state::epoch(),
    };
    kept.keep(key, o.stamp, o.attr.atime, o.len);
    let out = ops::OpenOut {
        fh: o.fh,
        attr: o.attr,
        stamp: o.stamp,
        dir: 0,
        data_stamp: o.stamp,
    };
    Some(install_opened(t, flags, &out))
}

/// Makes the fd of handle `out`, opened by `t` with `flags`; the kernel's
/// business (`Fail::Real`, the handle released) if it is not a regular
/// file or a directory.
pub(crate) fn install_opened(t: &Target, flags: c_int, out: &ops::OpenOut) -> R<c_int> {
    let ops::OpenOut {
        fh, attr, stamp, ..
    } = *out;
    let kind = attr.mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFDIR {
        // FIFOs, sockets and device nodes are the kernel's business.
        release(t.mount, fh);
        return Err(Fail::Real);
    }
    let is_dir = kind == libc::S_IFDIR;
    let init = OfdInit {
        flags: (flags
            & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_CLOEXEC))
            as u32
            | if is_dir { KIND_DIR } else { 0 },
        handle: fh,
        mount: t.mount as u32,
        epoch: state::epoch(),
        ino: attr.ino,
    };
    let Some(r) = FDS.alloc(init) else {
        give_back(t.mount, attr.ino, fh);
        return Err(Fail::Errno(libc::ENFILE));
    };
    keep_open_attr(FDS.ofd(r.idx), &attr, stamp);
    match placeholder(0, flags & libc::O_CLOEXEC != 0) {
        Ok(fd) if (fd as usize) < FDS.capacity() => {
            if let Some(prev) = FDS.install(fd, r) {
                put(prev);
            }
            Ok(fd)
        }
        other => {
            if let Ok(fd) = other {
                sys::close(fd);
            }
            put(r);
            Err(Fail::Errno(libc::EMFILE))
        }
    }
}

/// The absolute path of directory handle `fh` of `mount` as it stands now
/// ([`ops::DirPath`]) into `out`; its length.
fn dir_path_now(mount: usize, fh: u64, out: &mut [u8]) -> R<usize> {
    call_with(mount, &ops::DirPath { fh }, b"", b"", |_, rel| {
        path::write_abs(state::mountpoint(mount), rel, out).ok_or(Fail::Errno(libc::ENAMETOOLONG))
    })
}

/// The daemon's handle of OFD `o` of `mount`. A file opened from the
/// public table (`public`) is opened at the daemon first, by inode number
/// ([`ops::OpenInode`]), for this and every later call on it.
pub(crate) fn daemon_handle(mount: usize, o: &crate::fdtable::Ofd) -> R<u64> {
    let handle = o.handle.load(Ordering::Acquire);
    if handle & public::TABLE_FH == 0 {
        return Ok(handle);
    }
    let ino = o.ino.load(Ordering::Relaxed);
    let token = public::token(handle);
    let out = call_with(mount, &ops::OpenInode { ino, token }, b"", b"", |o, _| {
        Ok(*o)
    })?;
    match o
        .handle
        .compare_exchange(handle, out.fh, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            release(mount, handle);
            Ok(out.fh)
        }
        // Another thread did it first.
        Err(now) => {
            release(mount, out.fh);
            Ok(now)
        }
    }
}

/// What [`kernel_reopen`] opens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reopen {
    /// A kernel fd to use in place of the fast-path fd: the same access
    /// mode, append and non-blocking flags, and offset.
    Io,
    /// An `O_PATH` fd (for `fchdir`): no open reaches the daemon.
    Locate,
}

/// Opens the file behind an OFD through the kernel (the FUSE mount); a
/// close-on-exec kernel fd.
///
/// By handle: the FUSE door answers a lookup of the reserved name
/// `MOUNTPOINT/.btfuse-fd-<handle>-<image>` (`proto::handle_name`) with
/// the handle's inode, for the process holding the handle only (the
/// daemon then drops that name from the kernel's cache). So a file
/// that was unlinked, or renamed (its path now naming another file or
/// nothing), is still the one reopened, and a path that names something
/// else is never opened on the way. The open is checked as any open is
/// (the file's mode must still grant the access mode; as when reopening
/// through `/proc/self/fd/N`, the directories of the original path are
/// not searched again). A linked directory is reopened by its current path
/// instead, which the daemon tells ([`ops::DirPath`]; the kernel keeps one
/// dentry per directory, so the daemon answers the reserved name only for
/// a removed one): a renamed or moved directory is reopened where it now
/// is.
///
/// Either way the new fd is checked to be the same inode on the same
/// mount, and `ESTALE` is the answer otherwise — never a silent switch to
/// another file.
pub(crate) fn kernel_reopen(o: &crate::fdtable::Ofd, how: Reopen) -> R<c_int> {
    match reopen_once(o, how) {
        // A directory moved between the daemon telling its path and the
        // open: once more, where it now is.
        Err(Fail::Errno(libc::ESTALE)) if o.is_dir() => reopen_once(o, how),
        r => r,
    }
}

/// One attempt of [`kernel_reopen`].
fn reopen_once(o: &crate::fdtable::Ofd, how: Reopen) -> R<c_int> {
    let mount = o.mount.load(Ordering::Relaxed) as usize;
    let fh = daemon_handle(mount, o)?;
    let ours = stat_handle(mount, fh)?;
    let mut buf = [0u8; PATH_MAX + 1];
    let path_now = match o.is_dir() && ours.nlink > 0 {
        true => dir_path_now(mount, fh, &mut buf[..PATH_MAX]),
        false => Err(Fail::Errno(libc::ENOENT)),
    };
    // Removed meanwhile: by handle, as a removed directory is.
    let by_path = path_now != Err(Fail::Errno(libc::ENOENT));
    let path_len = if by_path {
        path_now?
    } else {
        let name = proto::handle_name(fh, state::image());
        path::write_abs(state::mountpoint(mount), &name, &mut buf[..PATH_MAX])
            .ok_or(Fail::Errno(libc::ENAMETOOLONG))?
    };
    buf[path_len] = 0;
    let fl = o.flags.load(Ordering::Relaxed) as c_int;
    let mut oflags = match (how, o.is_dir()) {
        (Reopen::Locate, _) => libc::O_PATH,
        (Reopen::Io, true) => libc::O_RDONLY,
        (Reopen::Io, false) => fl & (libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK),
    };
    if o.is_dir() {
        oflags |= libc::O_DIRECTORY;
    }
    if !by_path {
        // The reserved name is never a symlink or a terminal.
        oflags |= libc::O_NOFOLLOW | libc::O_NOCTTY;
    }
    let opened = sys::sc!(
        libc::SYS_openat,
        libc::AT_FDCWD,
        buf.as_ptr(),
        oflags | libc::O_CLOEXEC,
        0
    );
    let opened = match opened {
        // The file's mode refuses the holder what its handle holds (a file
        // it created read-only): the daemon opens it with the handle's
        // access mode and passes the fd.
        Err(libc::EACCES) if how == Reopen::Io && !o.is_dir() => opened_by_daemon(mount, fh, fl),
        r => r.map(|k| k as c_int),
    };
    if !by_path {
        // The kernel fd keeps the file; its dentry of the reserved name
        // must not (see `proto::ops::DropHandleName`). Done before anything
        // else sees the fd, so that, e.g., `getcwd` after an `fchdir` here
        // already knows the directory as removed.
        let _ = request(mount, &ops::DropHandleName { fh }, b"", b"");
    }
    let k = opened.map_err(|e| Fail::Errno(if e == libc::ENOENT { libc::ESTALE } else { e }))?;
    if kernel_ino(k, mount) != Some(ours.ino) {
        sys::close(k);
        return Err(Fail::Errno(libc::ESTALE));
    }
    if how == Reopen::Io && !o.is_dir() {
        let _ = sys::sc!(
            libc::SYS_lseek,
            k,
            o.offset.load(Ordering::Relaxed) as i64,
            libc::SEEK_SET
        );
    }
    Ok(k)
}

/// The kernel fd the daemon opens for handle `fh` of `mount` with the
/// handle's own access mode and the `O_APPEND`/`O_NONBLOCK` of `flags`
/// ([`ops::KernelOpen`]), or the errno why not (`EACCES` when the daemon
/// may not either: one without `CAP_DAC_OVERRIDE`).
fn opened_by_daemon(mount: usize, fh: u64, flags: c_int) -> Result<c_int, i32> {
    let keep = (flags & (libc::O_APPEND | libc::O_NONBLOCK)) as u32;
    let mut ch = channel::acquire(mount).map_err(|_| libc::EACCES)?;
    ch.kernel_open(fh, keep).map_err(|e| match Fail::from(e) {
        Fail::Errno(e) => e,
        Fail::Real => libc::EACCES,
    })
}

/// Makes the open file description behind `fd` kernel-backed
/// ([`KIND_KERNEL`]): every fd number sharing it becomes a duplicate of one
/// new kernel fd on the same file through the FUSE mount (same access mode,
/// append flag and offset; each fd keeps its close-on-exec flag), so they
/// keep sharing one offset, now kept by the kernel, and everything the
/// library does not catch (stdio, exec'd and forked children, mmap, locks)
/// works on them. The data calls it catches keep using the fast path.
pub(crate) fn upgrade(fd: c_int) -> R<()> {
    let Some(r) = FDS.get(fd) else {
        return Err(Fail::Errno(libc::EBADF));
    };
    let res = upgrade_ofd(r.idx);
    put(r);
    res
}

fn upgrade_ofd(idx: u32) -> R<()> {
    let o = FDS.ofd(idx);
    if o.is_kernel_backed() {
        return Ok(());
    }
    let k = kernel_reopen(o, Reopen::Io)?;
    let mut failed = None;
    FDS.for_each_in(0, u32::MAX, |n| {
        if FDS.index_of(n) != Some(idx) {
            return;
        }
        let cloexec = match sys::fcntl(n, libc::F_GETFD, 0) {
            Ok(v) if v & libc::FD_CLOEXEC != 0 => libc::O_CLOEXEC,
            _ => 0,
        };
        if let Err(e) = sys::dup3(k, n, cloexec) {
            failed = Some(e);
        }
    });
    sys::close(k);
    if let Some(e) = failed {
        return Err(Fail::Errno(e));
    }
    o.flags.fetch_or(KIND_KERNEL, Ordering::Relaxed);
    Ok(())
}

/// After a child was created (`fork` — as the `pthread_atfork` parent
/// handler —, `posix_spawn`, `system`, `popen`): the files made
/// kernel-backed for it are now shared with it (one kernel file
/// description, one offset). The parent stops serving them through the fast
/// path — its read-offset-write sequence is not atomic against the child's —
/// and uses the kernel fds like any other; their daemon handles are
/// released.
pub(crate) extern "C" fn leave_shared_files_to_kernel() {
    let saved = sys::errno();
    FDS.for_each_in(0, u32::MAX, |n| {
        if is_kernel_backed(n) {
            if let Some(r) = FDS.remove(n) {
                put(r);
            }
        }
    });
    sys::set_errno(saved);
}

/// The kernel-backed open file description `idx` was passed to another
/// process (`crate::fdpass`): as after a fork, it is the kernel's alone
/// from now on; every fd number of it leaves the table, and its daemon
/// handle is released.
pub(crate) fn forget_ofd(idx: u32) {
    if !FDS.ofd(idx).is_kernel_backed() {
        return;
    }
    FDS.for_each_in(0, u32::MAX, |n| {
        if FDS.index_of(n) == Some(idx) {
            if let Some(r) = FDS.remove(n) {
                put(r);
            }
        }
    });
}

/// Whether `fd` is one of ours and kernel-backed.
pub(crate) fn is_kernel_backed(fd: c_int) -> bool {
    FDS.get(fd).is_some_and(|r| {
        let k = FDS.ofd(r.idx).is_kernel_backed();
        put(r);
        k
    })
}

/// Set once the process takes a POSIX record lock on a mount file.
#[link_section = ".data.btfuse_hot"]
static RECORD_LOCKS_USED: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// Notes that the process uses POSIX record locks (see [`close_drops_locks`]).
pub(crate) fn record_locks_used() {
    RECORD_LOCKS_USED.store(true, Ordering::Relaxed);
}

/// POSIX: closing *any* fd of a file drops the process's record locks on
/// it. Locks live on kernel-backed fds (taking one makes the file
/// kernel-backed); closing a fast-path fd of the same file never reaches the
/// kernel, so unlock through a kernel fd of that file here.
pub(crate) fn close_drops_locks(r: &OfdRef) {
    if !RECORD_LOCKS_USED.load(Ordering::Relaxed) {
        return;
    }
    let o = FDS.ofd(r.idx);
    if o.is_kernel_backed() || o.is_dir() {
        return;
    }
    let mount = o.mount.load(Ordering::Relaxed) as usize;
    let Ok(attr) = daemon_handle(mount, o).and_then(|fh| stat_handle(mount, fh)) else {
        return;
    };
    let dev = state::MOUNTS[mount].dev.load(Ordering::Relaxed);
    let mut done = false;
    FDS.for_each_in(0, u32::MAX, |n| {
        if done || !is_kernel_backed(n) {
            return;
        }
        if sys::fstat(n).is_ok_and(|st| st.st_ino == attr.ino && st.st_dev == dev) {
            // SAFETY: all-zero is a valid flock; whole file from offset 0.
            let mut unlock: libc::flock = unsafe { core::mem::zeroed() };
            unlock.l_type = libc::F_UNLCK as i16;
            unlock.l_whence = libc::SEEK_SET as i16;
            let _ = sys::sc!(
                libc::SYS_fcntl,
                n,
                libc::F_SETLK,
                &unlock as *const libc::flock
            );
            done = true;
        }
    });
}

/// Makes `fd` kernel-backed if it is a fast-path fd, before a call only the
/// kernel can serve (mmap, locks, ioctl, exec by fd...); `Err(errno)` if
/// that fails: the call must not run on the placeholder.
pub(crate) fn kernel_fd(fd: c_int) -> Result<(), c_int> {
    if !FDS.is_ours(fd) {
        return Ok(());
    }
    match upgrade(fd) {
        Ok(()) => Ok(()),
        Err(Fail::Errno(e)) => Err(e),
        Err(Fail::Real) => Err(libc::EIO),
    }
}

/// Before a call on absolute `path` goes to the kernel: if it names a
/// fast-path fd of this process through `/proc` or `/dev` (see
/// [`path::named_fd`]), that fd is made kernel-backed, so the kernel finds
/// the file behind the number and not its placeholder (it found
/// `/dev/null`: a program reopening a fast-path fd by
/// `open("/proc/self/fd/3")` read nothing, silently). A file is reopened
/// by handle, so the link then reads as the mount's reserved name of that
/// handle. An fd that cannot be made kernel-backed is left as it is.
pub(crate) fn back_named_fd(p: &[u8]) {
    let own_pid = || Some(sys::getpid());
    if let Some(fd) = path::named_fd(p, own_pid) {
        if FDS.is_ours(fd) {
            let _ = kernel_fd(fd);
        }
    }
}

/// Whether the process holds a fast-path fd or a shadowed kernel
/// directory fd (a real `vfork` needs neither: see `crate::process`).
pub(crate) fn holds_fds() -> bool {
    let mut any = false;
    FDS.for_each_in(0, u32::MAX, |_| any = true);
    FDS.for_each_located_in(0, u32::MAX, |_| any = true);
    any
}

/// `pthread_atfork` prepare handler: makes every fast-path fd
/// kernel-backed, so parent and child share open files and offsets through
/// the kernel as POSIX requires (the child cannot use the parent's daemon
/// handles). A file already kernel-backed costs nothing; an fd that fails
/// is dead in the child (see [`forget_inherited`]).
pub(crate) extern "C" fn upgrade_all_before_fork() {
    let saved = sys::errno();
    FDS.for_each_in(0, u32::MAX, |n| {
        let _ = upgrade(n);
    });
    sys::set_errno(saved);
}

/// Before an `exec`: makes every fast-path fd that the new program will
/// inherit (no `FD_CLOEXEC`) kernel-backed, so it finds a working kernel
/// fd at that number (same file, flags and shared offset). An fd that
/// cannot be made kernel-backed stays an `O_PATH` placeholder, on which
/// the new program's calls fail loudly with `EBADF`.
pub(crate) fn upgrade_inheritable() {
    let saved = sys::errno();
    FDS.for_each_in(0, u32::MAX, |n| {
        if matches!(sys::fcntl(n, libc::F_GETFD, 0), Ok(v) if v & libc::FD_CLOEXEC == 0) {
            let _ = upgrade(n);
        }
    });
    sys::set_errno(saved);
}

/// After a credential change (the epoch was bumped first): every fd stops
/// being a fast-path fd. The kernel-backed ones are plain kernel fds from
/// now on, opened by the old identity, exactly as POSIX keeps an open fd's
/// access across `setuid`; the old identity's handles are not released
/// here (its channels are closing, and the daemon releases a client's
/// handles with its last channel).
pub(crate) fn forget_all() {
    let saved = sys::errno();
    FDS.for_each_in(0, u32::MAX, |n| {
        if let Some(r) = FDS.remove(n) {
            put(r);
        }
    });
    sys::set_errno(saved);
}

/// Releases handle `fh` of `mount` without waiting for the daemon (see
/// `channel::Chan::post`: the process's next call runs after it).
pub(crate) fn release(mount: usize, fh: u64) {
    opendata::forget(mount, fh);
    if fh & public::TABLE_FH != 0 {
        return public::closed(mount);
    }
    if let Ok(mut ch) = channel::acquire(mount) {
        let _ = ch.post(&ops::Release { fh });
    }
}
