//! Fast-path operations: path targets, requests to the daemon, and the
//! conversions of its replies into libc structures.
//!
//! Every operation returns `Result<T, Fail>`: `Fail::Errno` is the
//! caller's errno; `Fail::Real` means "not ours after all" (the daemon
//! answered `ESCAPED`, or it cannot be reached before the request left):
//! the hook then calls the real libc.

use core::ffi::{c_char, c_int};
use core::mem::{size_of, MaybeUninit};
use core::sync::atomic::{AtomicI32, Ordering};

use proto::ops::{self, Failure, Operation};
use proto::{SetAttrReq, WireAttr, WireStatFs, PATH_MAX};

use crate::channel::{self, CallError, ChanError, REPLY_BUF};
use crate::fdtable::{OfdInit, OfdRef, KIND_DIR, KIND_KERNEL};
use crate::path::{self, Comps};
use crate::state::{self, FDS};
use crate::sys;
use crate::uaccess::{self, StrError};

/// Why a fast-path operation did not produce a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Return -1 with this errno.
    Errno(i32),
    /// Call the real libc function (with [`Target::real_path`] when the
    /// path was relative to one of our directory fds).
    Real,
}

impl From<ChanError> for Fail {
    fn from(e: ChanError) -> Fail {
        match e {
            ChanError::Unavailable => Fail::Real,
            ChanError::Lost => Fail::Errno(libc::EIO),
        }
    }
}

impl From<CallError> for Fail {
    fn from(e: CallError) -> Fail {
        match e {
            CallError::Chan(e) => e.into(),
            CallError::Failed(Failure::Escaped) => Fail::Real,
            CallError::Failed(Failure::Errno(e)) => Fail::Errno(e),
        }
    }
}

pub(crate) type R<T> = Result<T, Fail>;

/// A path on a mount, ready to send: `rel` relative to `base`.
pub(crate) struct Target {
    pub(crate) mount: usize,
    pub(crate) base: u64,
    pub(crate) buf: [u8; PATH_MAX],
    pub(crate) len: usize,
    /// The directory fd the path is relative to (kept referenced).
    pub(crate) dir: Option<OfdRef>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(r) = self.dir.take() {
            put(r);
        }
    }
}

impl Target {
    pub(crate) fn rel(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Runs `f` with a kernel fd of the directory the path is relative to
    /// (the same directory wherever it now is, even removed: see
    /// [`kernel_reopen`]), for handing a dirfd-relative call to the
    /// kernel; the errno if there is none.
    pub(crate) fn with_kernel_dir<T>(&self, f: impl FnOnce(c_int) -> T) -> Result<T, i32> {
        let Some(d) = &self.dir else {
            return Ok(f(libc::AT_FDCWD));
        };
        let k = match kernel_reopen(FDS.ofd(d.idx), Reopen::Locate) {
            // Out of the way: a call that opens something gets the lowest
            // free number, as without it.
            Ok(k) => channel::move_high(k),
            Err(Fail::Errno(e)) => return Err(e),
            Err(Fail::Real) => return Err(libc::EIO),
        };
        let r = f(k);
        let saved = sys::errno();
        sys::close(k);
        sys::set_errno(saved);
        Ok(r)
    }
}

/// Outcome of classifying a `(dirfd, path)` pair.
// `Ours` carries a PATH_MAX buffer: it lives on the stack for one call, and
// the library has no allocator to box it.
#[allow(clippy::large_enum_variant)]
pub(crate) enum At {
    /// Not on a btfuse mount (or the fast path is off): call the real libc
    /// with the original arguments.
    Real,
    /// On a mount.
    Ours(Target),
    /// Fail with this errno.
    Err(i32),
}

/// Classifies `path` relative to `dirfd` (`AT_FDCWD` for the cwd).
///
/// The caller's string is read only through `uaccess`: a bad pointer is
/// `At::Real`, and the kernel answers `EFAULT` (it reads the name before
/// it looks at the directory fd, so even one of our placeholder fds gives
/// the same answer).
pub(crate) fn resolve_at(dirfd: c_int, p: *const c_char) -> At {
    if p.is_null() {
        return At::Real;
    }
    let dir_ours = dirfd != libc::AT_FDCWD && FDS.is_ours(dirfd);
    let Ok(first) = uaccess::read_val(p) else {
        return At::Real;
    };
    if first != b'/' as c_char
        && !dir_ours
        && (dirfd != libc::AT_FDCWD || !state::ready() || !state::cwd_near())
    {
        return At::Real;
    }
    // Not zeroed: only the copied bytes are read.
    let mut copy = [MaybeUninit::<u8>::uninit(); PATH_MAX];
    let path = match uaccess::strncpy_from_user(&mut copy, p) {
        Ok(path) => path,
        Err(StrError::Fault) => return At::Real,
        // The kernel answers ENAMETOOLONG for these itself; a placeholder
        // dirfd would turn it into ENOTDIR, so answer for it.
        Err(StrError::TooLong) => {
            return if dir_ours && first != b'/' as c_char {
                At::Err(libc::ENAMETOOLONG)
            } else {
                At::Real
            };
        }
    };
    if path.is_empty() {
        return if dir_ours {
            At::Err(libc::ENOENT)
        } else {
            At::Real
        };
    }
    if !state::ready() {
        return At::Real;
    }
    let tail = path::tail(path);
    let mut t = Target {
        mount: 0,
        base: 0,
        buf: [0; PATH_MAX],
        len: 0,
        dir: None,
    };
    if path[0] == b'/' {
        let Some((m, rest)) = path::classify(state::table(), Comps::new(path, b"")) else {
            return At::Real;
        };
        let Some(len) = path::write_rel(b"", rest, tail, &mut t.buf) else {
            return At::Real;
        };
        t.mount = m;
        t.len = len;
    } else if dirfd == libc::AT_FDCWD {
        let mut cwd = [0u8; PATH_MAX];
        let Some(cn) = state::kernel_cwd(&mut cwd) else {
            return At::Real;
        };
        let Some((m, rest)) = path::classify(state::table(), Comps::new(&cwd[..cn], path)) else {
            return At::Real;
        };
        let Some(len) = path::write_rel(b"", rest, tail, &mut t.buf) else {
            return At::Real;
        };
        t.mount = m;
        t.len = len;
    } else {
        let Some(r) = FDS.get(dirfd) else {
            return At::Real;
        };
        let o = FDS.ofd(r.idx);
        if o.epoch.load(Ordering::Relaxed) != state::epoch() {
            put(r);
            return match forget_inherited(dirfd) {
                Ok(()) => At::Real,
                Err(Fail::Errno(e)) => At::Err(e),
                Err(Fail::Real) => At::Real,
            };
        }
        if !o.is_dir() {
            put(r);
            return At::Err(libc::ENOTDIR);
        }
        t.mount = o.mount.load(Ordering::Relaxed) as usize;
        t.base = o.handle.load(Ordering::Relaxed);
        t.dir = Some(r);
        let Some(len) = path::write_rel(b"", Comps::new(path, b""), tail, &mut t.buf) else {
            return At::Err(libc::ENAMETOOLONG);
        };
        t.len = len;
    }
    At::Ours(t)
}

/// Drops a reference to an OFD, releasing its handle when it was the last.
pub(crate) fn put(r: OfdRef) {
    if let Some(idx) = FDS.put(r) {
        let o = FDS.ofd(idx);
        if o.epoch.load(Ordering::Relaxed) == state::epoch() {
            let fh = o.handle.load(Ordering::Relaxed);
            release(o.mount.load(Ordering::Relaxed) as usize, fh);
        }
        FDS.free(idx);
    }
}

/// One round trip of operation `O` whose reply struct and inline payload
/// are handed to `f`.
pub(crate) fn call_with<O: Operation, T>(
    mount: usize,
    args: &O,
    p1: &[u8],
    p2: &[u8],
    f: impl FnOnce(&O::Reply, &[u8]) -> R<T>,
) -> R<T> {
    let mut ch = channel::acquire(mount)?;
    let mut reply = [0u8; REPLY_BUF];
    let (out, payload) = ch.call(args, p1, p2, &mut reply)?;
    f(&out, &reply[payload])
}

/// One round trip of operation `O`: its reply struct.
pub(crate) fn request<O: Operation>(mount: usize, args: &O, p1: &[u8], p2: &[u8]) -> R<O::Reply> {
    call_with(mount, args, p1, p2, |out, _| Ok(*out))
}

/// `stat` of a path (`nofollow`: `lstat`).
pub(crate) fn stat_path(t: &Target, nofollow: bool) -> R<WireAttr> {
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW as u32
    } else {
        0
    };
    let stat = ops::Stat {
        base: t.base,
        flags,
        _pad: 0,
    };
    Ok(request(t.mount, &stat, t.rel(), b"")?.attr)
}

/// `fstat` of a handle.
pub(crate) fn stat_handle(mount: usize, fh: u64) -> R<WireAttr> {
    Ok(request(mount, &ops::Fstat { fh }, b"", b"")?.attr)
}

/// The caller's buffer could not be written.
fn efault(_: uaccess::Fault) -> Fail {
    Fail::Errno(libc::EFAULT)
}

/// Fills the caller's `struct stat` (same layout as `stat64` on 64-bit
/// glibc); `EFAULT` when it cannot be written.
pub(crate) fn fill_stat(st: *mut libc::stat, a: &WireAttr, dev: u64) -> R<()> {
    // SAFETY: all-zero is a valid stat; `st` is the caller's buffer.
    let mut s: libc::stat = unsafe { core::mem::zeroed() };
    s.st_dev = dev;
    s.st_ino = a.ino;
    s.st_nlink = a.nlink as _;
    s.st_mode = a.mode;
    s.st_uid = a.uid;
    s.st_gid = a.gid;
    s.st_rdev = a.rdev as u64;
    s.st_size = a.size as i64;
    s.st_blksize = a.blksize as _;
    s.st_blocks = a.blocks as i64;
    s.st_atime = a.atime;
    s.st_atime_nsec = a.atime_nsec as _;
    s.st_mtime = a.mtime;
    s.st_mtime_nsec = a.mtime_nsec as _;
    s.st_ctime = a.ctime;
    s.st_ctime_nsec = a.ctime_nsec as _;
    uaccess::write_val(st, &s).map_err(efault)
}

/// Fills a `struct statx` the way the kernel does for a FUSE file: the
/// basic stats, the mount id, no birth time, no attributes; `EFAULT` when
/// the caller's buffer cannot be written.
pub(crate) fn fill_statx(stx: *mut libc::statx, a: &WireAttr, mount: usize) -> R<()> {
    let t = state::table();
    let m = &t.mounts()[mount];
    // SAFETY: all-zero is a valid statx.
    let mut x: libc::statx = unsafe { core::mem::zeroed() };
    x.stx_mask = libc::STATX_BASIC_STATS | libc::STATX_MNT_ID;
    x.stx_blksize = a.blksize;
    x.stx_attributes = 0;
    x.stx_nlink = a.nlink;
    x.stx_uid = a.uid;
    x.stx_gid = a.gid;
    x.stx_mode = a.mode as u16;
    x.stx_ino = a.ino;
    x.stx_size = a.size;
    x.stx_blocks = a.blocks;
    x.stx_atime.tv_sec = a.atime;
    x.stx_atime.tv_nsec = a.atime_nsec;
    x.stx_mtime.tv_sec = a.mtime;
    x.stx_mtime.tv_nsec = a.mtime_nsec;
    x.stx_ctime.tv_sec = a.ctime;
    x.stx_ctime.tv_nsec = a.ctime_nsec;
    x.stx_rdev_major = (a.rdev >> 8) & 0xfff;
    x.stx_rdev_minor = (a.rdev & 0xff) | ((a.rdev >> 12) & 0xfff00);
    x.stx_dev_major = m.major;
    x.stx_dev_minor = m.minor;
    x.stx_mnt_id = m.id as u64;
    uaccess::write_val(stx, &x).map_err(efault)
}

/// glibc's `struct statfs` on 64-bit Linux (the libc crate hides
/// `f_flags`): ten words, then four spare.
#[repr(C)]
pub(crate) struct StatFs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}
const _: () = assert!(size_of::<StatFs>() == size_of::<libc::statfs>());

/// `statfs` of a mount, as the kernel reports it for a FUSE mount.
/// Where a `statfs` applies: a path (relative to base handle `base`, 0 =
/// the mount root) or, with an empty path, the open handle `base`.
pub(crate) struct FsOf<'a> {
    pub(crate) mount: usize,
    pub(crate) base: u64,
    pub(crate) rel: &'a [u8],
}

impl<'a> FsOf<'a> {
    /// The file system of a resolved path.
    pub(crate) fn path(t: &'a Target) -> FsOf<'a> {
        FsOf {
            mount: t.mount,
            base: t.base,
            rel: t.rel(),
        }
    }

    /// The file system of an open fast-path file.
    pub(crate) fn file(f: &FileRef) -> FsOf<'static> {
        FsOf {
            mount: f.mount,
            base: f.fh,
            rel: b"",
        }
    }
}

/// One round trip: the daemon checks the path (or handle) and answers its
/// file system's totals.
fn statfs_of(at: &FsOf<'_>) -> R<StatFs> {
    let mount = at.mount;
    let s: WireStatFs = request(mount, &ops::Statfs { base: at.base }, at.rel, b"")?.statfs;
    Ok(StatFs {
        f_type: 0x6573_5546, // FUSE_SUPER_MAGIC
        f_bsize: s.bsize as i64,
        f_blocks: s.blocks,
        f_bfree: s.bfree,
        f_bavail: s.bavail,
        f_files: s.files,
        f_ffree: s.ffree,
        f_fsid: [0; 2],
        f_namelen: s.namelen as i64,
        f_frsize: s.frsize as i64,
        f_flags: state::table().mounts()[mount].st_flags as i64,
        f_spare: [0; 4],
    })
}

/// `statfs` of a mount into the caller's buffer (`EFAULT` when it cannot
/// be written, as the kernel's).
pub(crate) fn statfs(at: &FsOf<'_>, out: *mut libc::statfs) -> R<()> {
    let f = statfs_of(at)?;
    uaccess::write_val(out.cast::<StatFs>(), &f).map_err(efault)
}

/// `statvfs` of a mount, converted from `statfs` exactly as glibc's
/// `__internal_statvfs` does (`statvfs64` has the same layout on the
/// 64-bit targets). Written with a plain store, as glibc writes it: a bad
/// buffer crashes the caller with or without the library.
pub(crate) fn statvfs(at: &FsOf<'_>, out: *mut libc::statvfs) -> R<()> {
    const ST_VALID: i64 = 0x20;
    let f = statfs_of(at)?;
    // SAFETY: all-zero is a valid statvfs (spare fields included).
    let mut v: libc::statvfs = unsafe { core::mem::zeroed() };
    v.f_bsize = f.f_bsize as _;
    v.f_frsize = if f.f_frsize != 0 {
        f.f_frsize
    } else {
        f.f_bsize
    } as _;
    v.f_blocks = f.f_blocks as _;
    v.f_bfree = f.f_bfree as _;
    v.f_bavail = f.f_bavail as _;
    v.f_files = f.f_files as _;
    v.f_ffree = f.f_ffree as _;
    v.f_favail = f.f_ffree as _;
    v.f_fsid = f.f_fsid[0] as u32 as _;
    v.f_namemax = f.f_namelen as _;
    v.f_flag = (f.f_flags & !ST_VALID) as _;
    // SAFETY: the caller's valid, writable statvfs buffer.
    unsafe { out.write_unaligned(v) };
    Ok(())
}

// ---- opening ---------------------------------------------------------------

/// The `O_PATH` descriptor of `/dev/null` whose duplicates are our fds.
static NULLFD: AtomicI32 = AtomicI32::new(-1);

/// Whether `fd` is the library's own placeholder source.
pub(crate) fn is_nullfd(fd: i32) -> bool {
    fd >= 0 && NULLFD.load(Ordering::Relaxed) == fd
}

fn nullfd() -> R<i32> {
    let fd = NULLFD.load(Ordering::Relaxed);
    if fd >= 0 {
        return Ok(fd);
    }
    let fd = sys::open(b"/dev/null\0", libc::O_PATH | libc::O_CLOEXEC).map_err(Fail::Errno)?;
    let fd = channel::move_high(fd);
    match NULLFD.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed) {
        Ok(_) => Ok(fd),
        Err(other) => {
            sys::close(fd);
            Ok(other)
        }
    }
}

/// The program closes a range of fds that may include the placeholder
/// source: forget it (it is reopened on demand).
pub(crate) fn forget_nullfd_in(lo: u32, hi: u32) {
    let fd = NULLFD.load(Ordering::Relaxed);
    if fd >= 0 && (fd as u32) >= lo && (fd as u32) <= hi {
        NULLFD.store(-1, Ordering::Relaxed);
    }
}

/// Moves the placeholder source away from `fd` (the program wants that
/// number, e.g. `dup2(x, fd)`).
pub(crate) fn evict_internal(fd: i32) {
    if is_nullfd(fd) {
        if let Ok(n) = sys::fcntl(fd, libc::F_DUPFD_CLOEXEC, channel::high_fd_base() as _) {
            NULLFD.store(n, Ordering::Relaxed);
        } else {
            NULLFD.store(-1, Ordering::Relaxed);
        }
    }
}

/// A fresh placeholder fd number (lowest free at or above `min`).
pub(crate) fn placeholder(min: i32, cloexec: bool) -> R<i32> {
    let cmd = if cloexec {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    for _ in 0..2 {
        let src = nullfd()?;
        match sys::fcntl(src, cmd, min as _) {
            // Make sure the source really was our O_PATH descriptor (the
            // program may have closed it behind our back and reused the
            // number): never hand out a duplicate of someone else's file.
            Ok(fd) if sys::fcntl(fd, libc::F_GETFL, 0).is_ok_and(|fl| fl & libc::O_PATH != 0) => {
                return Ok(fd)
            }
            Ok(fd) => {
                sys::close(fd);
                NULLFD.store(-1, Ordering::Relaxed);
            }
            Err(libc::EBADF) => NULLFD.store(-1, Ordering::Relaxed),
            Err(e) => return Err(Fail::Errno(e)),
        }
    }
    Err(Fail::Errno(libc::EMFILE))
}

/// `openat` on the fast path. Returns the new fd.
pub(crate) fn open(t: &Target, flags: c_int, mode: u32) -> R<c_int> {
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
    let ops::OpenOut { fh, attr } = request(t.mount, &open, t.rel(), b"")?;
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
    };
    let Some(r) = FDS.alloc(init) else {
        release(t.mount, fh);
        return Err(Fail::Errno(libc::ENFILE));
    };
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
    let fh = o.handle.load(Ordering::Relaxed);
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
    if !by_path {
        // The kernel fd keeps the file; its dentry of the reserved name
        // must not (see `proto::ops::DropHandleName`). Done before anything
        // else sees the fd, so that, e.g., `getcwd` after an `fchdir` here
        // already knows the directory as removed.
        let _ = request(mount, &ops::DropHandleName { fh }, b"", b"");
    }
    let k =
        opened.map_err(|e| Fail::Errno(if e == libc::ENOENT { libc::ESTALE } else { e }))? as c_int;
    // SAFETY: all-zero is a valid stat buffer for fstat to fill.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let same = sys::sc!(libc::SYS_fstat, k, &mut st as *mut libc::stat).is_ok()
        && st.st_ino == ours.ino
        && st.st_dev == state::MOUNTS[mount].dev.load(Ordering::Relaxed);
    if !same {
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
fn is_kernel_backed(fd: c_int) -> bool {
    FDS.get(fd).is_some_and(|r| {
        let k = FDS.ofd(r.idx).is_kernel_backed();
        put(r);
        k
    })
}

/// Set once the process takes a POSIX record lock on a mount file.
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
    let Ok(attr) = stat_handle(mount, o.handle.load(Ordering::Relaxed)) else {
        return;
    };
    let dev = state::MOUNTS[mount].dev.load(Ordering::Relaxed);
    let mut done = false;
    FDS.for_each_in(0, u32::MAX, |n| {
        if done || !is_kernel_backed(n) {
            return;
        }
        // SAFETY: all-zero is a valid stat buffer for fstat to fill.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        if sys::sc!(libc::SYS_fstat, n, &mut st as *mut libc::stat).is_ok()
            && st.st_ino == attr.ino
            && st.st_dev == dev
        {
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

fn release(mount: usize, fh: u64) {
    let _ = request(mount, &ops::Release { fh }, b"", b"");
}

// ---- data ------------------------------------------------------------------

/// Validated view of one of our fds for a data call.
pub(crate) struct FileRef {
    pub(crate) r: OfdRef,
    /// The fd number it was reached by.
    pub(crate) fd: c_int,
    pub(crate) mount: usize,
    pub(crate) fh: u64,
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
fn forget_inherited(fd: c_int) -> R<()> {
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
        fh: o.handle.load(Ordering::Relaxed),
        flags: o.flags.load(Ordering::Relaxed),
        r,
    };
    Some(Ok(f))
}

impl FileRef {
    pub(crate) fn is_dir(&self) -> bool {
        self.flags & KIND_DIR != 0
    }
    fn readable(&self) -> bool {
        (self.flags as i32 & libc::O_ACCMODE) != libc::O_WRONLY
    }
    fn writable(&self) -> bool {
        (self.flags as i32 & libc::O_ACCMODE) != libc::O_RDONLY
    }
    pub(crate) fn ofd(&self) -> &'static crate::fdtable::Ofd {
        FDS.ofd(self.r.idx)
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
        let total = iov_total(iov);
        let mut done = 0usize;
        while done < total {
            let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
            let (bulk, blen) = ch.bulk();
            let want = (total - done).min(blen);
            let read = ops::Read {
                fh: self.fh,
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
        let mut done = 0usize;
        let mut end = off;
        loop {
            let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
            let (bulk, blen) = ch.bulk();
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
                fh: self.fh,
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
    /// `lseek(SEEK_DATA | SEEK_HOLE)`, answered by the daemon from the
    /// file's allocated blocks.
    pub(crate) fn seek_data_hole(&self, off: i64, whence: c_int) -> R<i64> {
        if off < 0 {
            return Err(Fail::Errno(libc::ENXIO));
        }
        let seek = ops::Lseek {
            fh: self.fh,
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
            fh: self.fh,
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
            fh_in: self.fh,
            off_in,
            fh_out: out.fh,
            off_out,
            len: len as u64,
        };
        let out = request(self.mount, &copy, b"", b"")?;
        Ok((out.count as usize).min(len))
    }
}

/// What an xattr call acts on: a handle (`f*xattr`) or a path (`*xattr`,
/// `l*xattr`).
pub(crate) struct XattrAt<'a> {
    mount: usize,
    fh: u64,
    path: &'a [u8],
    flags: u32,
}

impl<'a> XattrAt<'a> {
    /// The file behind a fast-path fd.
    pub(crate) fn file(f: &FileRef) -> XattrAt<'static> {
        XattrAt {
            mount: f.mount,
            fh: f.fh,
            path: b"",
            flags: libc::AT_EMPTY_PATH as u32,
        }
    }

    /// A resolved path; `nofollow` for the `l*` forms.
    pub(crate) fn path(t: &'a Target, nofollow: bool) -> XattrAt<'a> {
        let flags = if nofollow {
            libc::AT_SYMLINK_NOFOLLOW as u32
        } else {
            0
        };
        XattrAt {
            mount: t.mount,
            fh: t.base,
            path: t.rel(),
            flags,
        }
    }

    /// `getxattr` (`name`) or `listxattr` (`None`) into `out` (`len`
    /// bytes; 0 asks for the size only).
    pub(crate) fn get(&self, name: Option<&[u8]>, out: *mut u8, len: usize) -> R<usize> {
        check_xattr_name(name.unwrap_or(b""))?;
        let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
        let (bulk, blen) = ch.bulk();
        let size = len.min(blen) as u64;
        let mut reply = [0u8; REPLY_BUF];
        let (base, flags) = (self.fh, self.flags);
        let called = match name {
            Some(name) => {
                let get = ops::Getxattr {
                    base,
                    size,
                    flags,
                    _pad: 0,
                };
                ch.call(&get, self.path, name, &mut reply).map(|(o, _)| o)
            }
            None => {
                let list = ops::Listxattr {
                    base,
                    size,
                    flags,
                    _pad: 0,
                };
                ch.call(&list, self.path, b"", &mut reply).map(|(o, _)| o)
            }
        };
        let n = match called {
            Ok(out) => out.count as usize,
            Err(CallError::Chan(_)) => return Err(Fail::Errno(libc::EIO)),
            Err(e) => return Err(e.into()),
        };
        if len > 0 {
            if n > len.min(blen) {
                return Err(Fail::Errno(libc::ERANGE));
            }
            // SAFETY: `n` bytes of our bulk area, which is ours until `ch`
            // drops; the caller's side is fault-tolerant.
            unsafe { uaccess::copy_out(out, bulk, n) }.map_err(|_| Fail::Errno(libc::EFAULT))?;
        }
        Ok(n)
    }

    /// `setxattr`.
    pub(crate) fn set(&self, name: &[u8], value: *const u8, len: usize, flags: c_int) -> R<()> {
        check_xattr_name(name)?;
        if len > proto::channel_config().bulk_len as usize {
            return Err(Fail::Errno(libc::E2BIG));
        }
        let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
        let (bulk, blen) = ch.bulk();
        debug_assert!(len <= blen);
        // SAFETY: the caller's `len` bytes (fault-tolerant) into our bulk
        // area of `blen >= len` (every channel has the protocol's shape).
        unsafe { uaccess::copy_in(bulk, value, len) }.map_err(|_| Fail::Errno(libc::EFAULT))?;
        let set = ops::Setxattr {
            base: self.fh,
            size: len as u64,
            flags: self.flags,
            xattr_flags: flags as u32,
        };
        let mut reply = [0u8; REPLY_BUF];
        match ch.call(&set, self.path, name, &mut reply) {
            Ok(_) => Ok(()),
            Err(CallError::Chan(_)) => Err(Fail::Errno(libc::EIO)),
            Err(e) => Err(e.into()),
        }
    }

    /// `removexattr`.
    pub(crate) fn remove(&self, name: &[u8]) -> R<()> {
        check_xattr_name(name)?;
        let remove = ops::Removexattr {
            base: self.fh,
            flags: self.flags,
            _pad: 0,
        };
        request(self.mount, &remove, self.path, name).map(drop)
    }
}

/// The kernel refuses attribute names over 255 bytes with `ERANGE`.
fn check_xattr_name(name: &[u8]) -> R<()> {
    if name.len() > 255 {
        return Err(Fail::Errno(libc::ERANGE));
    }
    Ok(())
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

/// `SetAttr` on a path or (with `t == None`) on handle `fh`.
pub(crate) fn setattr(
    mount: usize,
    t: Option<&Target>,
    fh: u64,
    nofollow: bool,
    s: &SetAttrReq,
) -> R<()> {
    let (flags, base, rel): (u32, u64, &[u8]) = match t {
        Some(t) => (
            if nofollow {
                libc::AT_SYMLINK_NOFOLLOW as u32
            } else {
                0
            },
            t.base,
            t.rel(),
        ),
        None => (libc::AT_EMPTY_PATH as u32, fh, b""),
    };
    let set = ops::SetAttr {
        base,
        flags,
        _pad: 0,
        set: *s,
    };
    request(mount, &set, rel, b"").map(drop)
}

/// Builds a `SetAttrReq` from a `utimensat` times array.
pub(crate) fn times_req(times: *const libc::timespec) -> R<SetAttrReq> {
    let mut s = SetAttrReq::default();
    if times.is_null() {
        s.valid = proto::set::ATIME_NOW | proto::set::MTIME_NOW;
        return Ok(s);
    }
    let [a, m] = uaccess::read_val(times.cast::<[libc::timespec; 2]>())
        .map_err(|_| Fail::Errno(libc::EFAULT))?;
    for (ts, set, now, sec, nsec) in [
        (
            a,
            proto::set::ATIME,
            proto::set::ATIME_NOW,
            &mut s.atime,
            &mut s.atime_nsec,
        ),
        (
            m,
            proto::set::MTIME,
            proto::set::MTIME_NOW,
            &mut s.mtime,
            &mut s.mtime_nsec,
        ),
    ] {
        match ts.tv_nsec {
            libc::UTIME_OMIT => {}
            libc::UTIME_NOW => s.valid |= now,
            n if (0..1_000_000_000).contains(&n) => {
                s.valid |= set;
                *sec = ts.tv_sec;
                *nsec = n as u32;
            }
            _ => return Err(Fail::Errno(libc::EINVAL)),
        }
    }
    Ok(s)
}
