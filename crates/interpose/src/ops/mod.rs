//! Fast-path operations: path targets, requests to the daemon, and the
//! conversions of its replies into libc structures.
//!
//! Every operation returns `Result<T, Fail>`: `Fail::Errno` is the
//! caller's errno; `Fail::Real` means "not ours after all" (the daemon
//! answered `ESCAPED`, or it cannot be reached before the request left):
//! the hook then calls the real libc.
//!
//! Submodules: `attrs` (stat, statx, statfs and setattr conversions),
//! `handoff` (opening, placeholders, handing files to the kernel), `fork`
//! (the `pthread_atfork` handlers, registered by the first call that finds
//! the fast path ready), `file`
//! (data calls on an open file; its offset lives in the fd table's open
//! file description), `siblings` (a directory's attributes listed into the
//! cache for a process that stats its names one by one), `located` (kernel
//! `O_PATH` directory fds whose relative paths take the fast path),
//! `xattr`.

mod ahead;
mod attrs;
mod cwd;
pub(crate) use cwd::cwd;
mod file;
mod fork;
mod handoff;
mod located;
mod mapcopy;
mod siblings;
mod xattr;

pub(crate) use attrs::*;
pub(crate) use file::*;
pub(crate) use fork::{before_sharing_fd_table, start_library};
pub(crate) use handoff::*;
pub(crate) use located::*;
pub(crate) use mapcopy::private_copy;
pub(crate) use xattr::*;

use core::ffi::{c_char, c_int, c_void};
use core::mem::{size_of, MaybeUninit};
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use proto::ops::{self, Failure, Operation};
use proto::{SetAttrReq, WireAttr, WireStatFs, PATH_MAX};

use crate::channel::{self, CallError, ChanError, REPLY_BUF};
use crate::fdtable::{OfdInit, OfdRef, KIND_DIR, KIND_KERNEL};
use crate::path::{self, Comps};
use crate::state::{self, FDS};
use crate::sys;
use crate::uaccess::{self, StrError};
use crate::{filecache, listcache, metacache, opendata, public};

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

/// A path on a mount, ready to send: `rel` relative to `base`. Made by
/// [`resolve_at`] in a slot its caller provides ([`Target::new`]): 4 KiB
/// returned by value cost two copies and a clearing per call (a seventh of
/// a cached `fstatat`).
pub(crate) struct Target {
    pub(crate) mount: usize,
    pub(crate) base: u64,
    /// The path; its first `len` bytes are written.
    buf: [MaybeUninit<u8>; PATH_MAX],
    len: usize,
    /// The directory fd the path is relative to (kept referenced).
    pub(crate) dir: Option<OfdRef>,
    /// That fd, when it is the kernel's (a shadowed `O_PATH` one, see
    /// [`located`]); -1 otherwise.
    pub(crate) kernel_dir: c_int,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(r) = self.dir.take() {
            put(r);
        }
    }
}

impl Target {
    /// An empty slot for [`resolve_at`] (the path buffer is not cleared).
    pub(crate) fn new() -> Target {
        Target {
            mount: 0,
            base: 0,
            buf: [const { MaybeUninit::uninit() }; PATH_MAX],
            len: 0,
            dir: None,
            kernel_dir: -1,
        }
    }

    /// The inode number of the directory fd the path is relative to, 0 if
    /// none (a path from the mount root).
    pub(crate) fn base_ino(&self) -> u64 {
        self.dir
            .as_ref()
            .map_or(0, |r| FDS.ofd(r.idx).ino.load(Ordering::Relaxed))
    }

    /// The path relative to `base`.
    pub(crate) fn rel(&self) -> &[u8] {
        // SAFETY: `resolve_at` wrote the first `len` bytes (`len` is 0
        // until then), and `len <= PATH_MAX`.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast(), self.len) }
    }

    /// Runs `f` with a kernel fd of the directory the path is relative to
    /// (the same directory wherever it now is, even removed: see
    /// [`kernel_reopen`]), for handing a dirfd-relative call to the
    /// kernel; the errno if there is none.
    pub(crate) fn with_kernel_dir<T>(&self, f: impl FnOnce(c_int) -> T) -> Result<T, i32> {
        if self.kernel_dir >= 0 {
            return Ok(f(self.kernel_dir));
        }
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
pub(crate) enum At<'t> {
    /// Not on a btfuse mount (or the fast path is off): call the real libc
    /// with the original arguments.
    Real,
    /// On a mount: the caller's slot, filled in.
    Ours(&'t mut Target),
    /// Fail with this errno.
    Err(i32),
}

/// Classifies `path` relative to `dirfd` (`AT_FDCWD` for the cwd).
///
/// The caller's string is read only through `uaccess`: a bad pointer is
/// `At::Real`, and the kernel answers `EFAULT` (it reads the name before
/// it looks at the directory fd, so even one of our placeholder fds gives
/// the same answer).
pub(crate) fn resolve_at(dirfd: c_int, p: *const c_char, t: &mut Target) -> At<'_> {
    if p.is_null() {
        return At::Real;
    }
    let dir_ours = dirfd != libc::AT_FDCWD && FDS.is_ours(dirfd);
    let dir_located = !dir_ours && dirfd >= 0 && is_located(dirfd);
    let Ok(first) = uaccess::read_val(p) else {
        return At::Real;
    };
    if first != b'/' as c_char
        && !dir_ours
        && !dir_located
        && (dirfd != libc::AT_FDCWD || !state::ready(fork::register_handlers) || !state::cwd_near())
    {
        return At::Real;
    }
    if first == b'/' as c_char {
        match resolve_short_abs(p, t) {
            Some(true) => return At::Ours(t),
            Some(false) => return At::Real,
            None => {}
        }
    }
    resolve_copied(dirfd, p, t, (dir_ours, dir_located, first))
}

/// [`resolve_at`] of an absolute path from a short copy, without the
/// `PATH_MAX` one, whose frame the compiler probes page by page on every
/// call (in a shell's child between `fork` and `exec`, each probed page is
/// a copy-on-write fault): whether it is ours (`t` filled), or `None` when
/// it does not fit (or faults): the whole copy decides then.
#[inline(never)]
fn resolve_short_abs(p: *const c_char, t: &mut Target) -> Option<bool> {
    let mut short = [MaybeUninit::<u8>::uninit(); 256];
    let path = uaccess::strncpy_from_user(&mut short, p).ok()?;
    let ready = state::ready(fork::register_handlers) && !state::paths_by_kernel();
    Some(ready && resolve_abs(path, t))
}

/// Whether absolute path `path` is on a mount, `t` filled then (the mount
/// table ready and the process's paths its own, see
/// `state::paths_by_kernel`).
fn resolve_abs(path: &[u8], t: &mut Target) -> bool {
    let Some((m, rest)) = path::classify(state::table(), Comps::new(path, b"")) else {
        back_named_fd(path);
        return false;
    };
    let tail = path::tail(path);
    let Some(len) = path::write_rel(b"", rest, tail, &mut t.buf).map(<[u8]>::len) else {
        return false;
    };
    t.mount = m;
    t.len = len;
    true
}

/// [`resolve_at`] once the path may be on a mount: copied whole.
#[inline(never)]
fn resolve_copied<'t>(
    dirfd: c_int,
    p: *const c_char,
    t: &'t mut Target,
    (dir_ours, dir_located, first): (bool, bool, c_char),
) -> At<'t> {
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
    if !state::ready(fork::register_handlers) {
        return At::Real;
    }
    // After a change of root or mount namespace (`crate::namespace`) the
    // mount table no longer says what a name from the root or the cwd is.
    if (path[0] == b'/' || !(dir_ours || dir_located)) && state::paths_by_kernel() {
        return At::Real;
    }
    if path[0] == b'/' {
        return match resolve_abs(path, t) {
            true => At::Ours(t),
            false => At::Real,
        };
    }
    let tail = path::tail(path);
    if dirfd == libc::AT_FDCWD {
        // Not cleared: only the bytes `cwd` writes are read.
        let mut buf = [const { MaybeUninit::uninit() }; PATH_MAX];
        let Some(cwd) = cwd::cwd(&mut buf) else {
            return At::Real;
        };
        let Some((m, rest)) = path::classify(state::table(), Comps::new(cwd, path)) else {
            return At::Real;
        };
        let Some(len) = path::write_rel(b"", rest, tail, &mut t.buf).map(<[u8]>::len) else {
            return At::Real;
        };
        t.mount = m;
        t.len = len;
    } else {
        let r = match dir_located {
            true => located_dir(dirfd).ok_or(None),
            false => our_dir(dirfd),
        };
        let r = match r {
            Ok(r) => r,
            Err(None) => return At::Real,
            Err(Some(e)) => return At::Err(e),
        };
        let o = FDS.ofd(r.idx);
        t.mount = o.mount.load(Ordering::Relaxed) as usize;
        t.base = o.handle.load(Ordering::Relaxed);
        t.dir = Some(r);
        let rel = path::write_rel(b"", Comps::new(path, b""), tail, &mut t.buf);
        let Some(len) = rel.map(<[u8]>::len) else {
            // The kernel answers for its own fd; ours is a placeholder.
            return if dir_located {
                At::Real
            } else {
                At::Err(libc::ENAMETOOLONG)
            };
        };
        t.len = len;
        if dir_located {
            t.kernel_dir = dirfd;
        }
    }
    At::Ours(t)
}

/// The OFD of fast-path directory fd `dirfd` (a counted reference); else
/// the errno a path relative to it fails with, or `None` when the kernel
/// resolves it.
fn our_dir(dirfd: c_int) -> Result<OfdRef, Option<i32>> {
    let r = FDS.get(dirfd).ok_or(None)?;
    let o = FDS.ofd(r.idx);
    if o.epoch.load(Ordering::Relaxed) != state::epoch() {
        put(r);
        return Err(match forget_inherited(dirfd) {
            Err(Fail::Errno(e)) => Some(e),
            Ok(()) | Err(Fail::Real) => None,
        });
    }
    if !o.is_dir() {
        put(r);
        return Err(Some(libc::ENOTDIR));
    }
    Ok(r)
}

/// Drops a reference to an OFD, releasing its handle when it was the last.
pub(crate) fn put(r: OfdRef) {
    if let Some(idx) = FDS.put(r) {
        let o = FDS.ofd(idx);
        let mount = o.mount.load(Ordering::Relaxed) as usize;
        let handle = o.handle.load(Ordering::Relaxed);
        if o.epoch.load(Ordering::Relaxed) == state::epoch() {
            give_back(mount, o.ino.load(Ordering::Relaxed), handle);
        } else if handle & public::TABLE_FH != 0 {
            // Not a daemon handle: this process's own count of files open
            // from the table (an older identity's file, after `setuid`).
            public::closed(mount);
        }
        FDS.free(idx);
    }
}

/// An open file of inode `ino` is done with handle `fh`: the reference it
/// held to the kept handle (`filecache`), or the handle itself.
pub(crate) fn give_back(mount: usize, ino: u64, fh: u64) {
    if filecache::unref(mount, ino, fh, || channel::now(mount)) {
        release(mount, fh);
    }
}

/// A call removed the last name this process knew of regular file `ino`
/// (0: none): the handle it kept of it, if no open file uses it, goes now
/// (it would keep the file's blocks allocated).
pub(crate) fn let_go(mount: usize, ino: u64) {
    if let Some(fh) = filecache::forget(mount, ino) {
        release(mount, fh);
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
