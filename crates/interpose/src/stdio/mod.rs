//! stdio streams on fast-path files: `fopen`, `fopen64`, `fdopen`,
//! `freopen`, `freopen64` and `fclose`.
//!
//! glibc's `FILE` reads and writes its descriptor with internal calls no
//! hook sees, so a `FILE` over a fast-path fd (an `O_PATH` placeholder)
//! cannot use glibc's own file operations. A stream on a mount file is
//! therefore a glibc **cookie stream** (`fopencookie`): glibc keeps the
//! buffering, formatting, `ungetc`, locking and `ftell` logic, and its four
//! callbacks ([`cookie_read`], [`cookie_write`], [`cookie_seek`],
//! [`cookie_close`]) call this library's own `read`, `write`, `lseek64`
//! and `close` hooks. Those serve fast-path fds over shared memory and hand
//! every other fd to the kernel, so a stream keeps working when its fd
//! becomes kernel-backed (fork, exec, `system`, a credential change) or a
//! plain kernel fd.
//!
//! The stream's `_fileno` is set to the fd, so `fileno(fp)` returns it:
//! glibc 2.36's `fileno` returns `_fileno` when `_IO_IS_FILEBUF` is set
//! and `_fileno >= 0`, and `fopencookie` streams have `_IO_IS_FILEBUF`
//! (they are `_IO_new_file_init_internal`ed; the cookie operations ignore
//! `_fileno`). The layout this relies on (`_IO_FILE`, followed by the
//! vtable pointer and the cookie) is checked once per process on a probe
//! stream ([`layout_ok`]); on any other layout every stream call goes to
//! the real libc (the kernel path).
//!
//! No allocation in the library: the cookie is an index into [`STREAMS`],
//! a fixed table of (FILE, fd) pairs (glibc allocates the `FILE` itself,
//! as `fopen` does).
//!
//! What differs from a stream on a kernel fd, by construction:
//! * the buffer is `BUFSIZ` (8 KiB) rather than `st_blksize` (glibc cannot
//!   `fstat` a cookie stream): partial flushes happen at other points;
//!   read-only streams read 64 KiB at a time (see [`NBIG`]);
//! * wide-character I/O (`fwide`, `fgetwc`, `fwprintf`, ...) is not
//!   available: the stream is byte-oriented, as every cookie stream is
//!   (`fwide` answers -1, wide calls fail with `WEOF`/-1). glibc leaves a
//!   cookie stream's wide area as a poison pointer that `fgetwc`
//!   dereferences; [`wrap`] points it at a zeroed area so wide calls fail
//!   instead of crashing;
//! * `freopen` on such a stream is done here (glibc's would put a kernel
//!   fd under the cookie operations): it keeps the buffer and the
//!   buffering mode set with `setvbuf`; a `",ccs="` mode fails with
//!   `EINVAL`.
//!
//! Not served: `freopen` of a stream that is not ours (stdin, stdout, a
//! stream on a file outside the mounts) onto a mount file stays glibc's
//! (correct, through the FUSE mount): glibc's own `FILE`s cannot take the
//! cookie operations; a mode with `",ccs="` goes to the real `fopen`;
//! `BTFUSE_STDIO=0` leaves every stream to glibc.
//!
//! Exit: glibc flushes streams (`_IO_cleanup`) after the library
//! destructors, when the library's channels are closed; the library's
//! destructor calls [`flush_at_exit`] first, which writes every stream's
//! pending output. A callback that still runs after it on a fast-path fd
//! fails with `EIO` instead of waiting for a channel that is gone.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int, c_void};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use libc::{off64_t, size_t, ssize_t, AT_FDCWD, FILE};

use crate::fmode::{parse_fdopen, parse_fopen, Mode, IS_APPENDING, NO_READS, NO_WRITES};
use crate::hooks;
use crate::ops::{self, At, Fail};
use crate::real;
use crate::state::{self, FDS};
use crate::sys::{errno, set_errno};

mod glibc_file;

use glibc_file::*;

// ---- the stream table --------------------------------------------------------

/// Streams open at once (more fall back to glibc's own streams).
const NSTREAMS: usize = 4096;

/// One stream: its `FILE` (0 = free, [`CLAIMED`] = being set up) and fd.
struct Stream {
    file: AtomicUsize,
    fd: AtomicI32,
    /// Read buffer of [`BIG`] + 1, or 0 when glibc's own.
    big: AtomicU32,
}

const CLAIMED: usize = 1;

/// All zero (a free slot's fd is never read: `claim` sets it), so that the
/// table lies in `.bss` and costs a process nothing until used (64 KiB of
/// `.data` made the loader zero the tail of a page of its own).
static STREAMS: [Stream; NSTREAMS] = [const {
    Stream {
        file: AtomicUsize::new(0),
        fd: AtomicI32::new(0),
        big: AtomicU32::new(0),
    }
}; NSTREAMS];
/// Allocation hint.
#[link_section = ".data.btfuse_hot"]
static HINT: AtomicU32 = AtomicU32::new(0);
/// One more than the highest slot ever used (bounds the exit scan).
#[link_section = ".data.btfuse_hot"]
static HIGH: AtomicU32 = AtomicU32::new(0);
/// Set by [`flush_at_exit`]: the channels are about to close.
#[link_section = ".data.btfuse_hot"]
static EXITING: AtomicBool = AtomicBool::new(false);

/// Read-only streams read [`BIG_LEN`] bytes per round trip instead of
/// glibc's `BUFSIZ` (8 KiB) for the first [`NBIG`] of them at once: every
/// round trip may find the daemon's channel thread asleep (a wake-up costs
/// tens of µs on a busy machine) while a program like `sed` works between
/// two refills. Writable streams keep `BUFSIZ`, so their output reaches the
/// file at the usual points.
const NBIG: usize = 32;
const BIG_LEN: usize = 64 << 10;

struct BigBufs {
    busy: [AtomicBool; NBIG],
    data: core::cell::UnsafeCell<[[u8; BIG_LEN]; NBIG]>,
}
// SAFETY: buffer `i` is handed to exactly one stream between a successful
// `busy[i]` CAS and its release (in `cookie_close`, after which glibc no
// longer touches the stream's buffer).
unsafe impl Sync for BigBufs {}

static BIG: BigBufs = BigBufs {
    busy: [const { AtomicBool::new(false) }; NBIG],
    data: core::cell::UnsafeCell::new([[0; BIG_LEN]; NBIG]),
};

/// A free big buffer: its index + 1 and address.
fn big_take() -> Option<(u32, *mut u8)> {
    for (i, b) in BIG.busy.iter().enumerate() {
        if !b.load(Ordering::Relaxed)
            && b.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: in bounds; the buffer is ours (CAS above).
            let p = unsafe { BIG.data.get().cast::<u8>().add(i * BIG_LEN) };
            return Some((i as u32 + 1, p));
        }
    }
    None
}

/// Frees big buffer `id` (index + 1; 0 is ignored).
fn big_free(id: u32) {
    if let Some(b) = (id as usize).checked_sub(1).and_then(|i| BIG.busy.get(i)) {
        // Release: the stream's last use happens before the next owner's.
        b.store(false, Ordering::Release);
    }
}

/// Takes a free slot for `fd`.
fn claim(fd: c_int) -> Option<usize> {
    let start = HINT.load(Ordering::Relaxed) as usize;
    for k in 0..NSTREAMS {
        let i = (start + k) % NSTREAMS;
        let s = &STREAMS[i];
        if s.file.load(Ordering::Relaxed) == 0
            && s.file
                .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            s.fd.store(fd, Ordering::Relaxed);
            HINT.store(((i + 1) % NSTREAMS) as u32, Ordering::Relaxed);
            HIGH.fetch_max(i as u32 + 1, Ordering::Relaxed);
            return Some(i);
        }
    }
    None
}

/// Frees a slot.
fn release(slot: usize) {
    STREAMS[slot].fd.store(-1, Ordering::Relaxed);
    big_free(STREAMS[slot].big.swap(0, Ordering::Relaxed));
    // Release: the slot's last uses happen before its next owner's.
    STREAMS[slot].file.store(0, Ordering::Release);
}

/// The slot of `fp` if it is one of our streams.
fn stream_of(fp: *mut FILE) -> Option<usize> {
    let vt = COOKIE_VTABLE.load(Ordering::Relaxed);
    if vt == 0 || fp.is_null() {
        return None;
    }
    // SAFETY: every FILE glibc hands out is at least an `_IO_FILE_plus`,
    // whose vtable pointer follows the FILE.
    if unsafe { word_at(fp, VTABLE_AT) } != vt {
        return None;
    }
    // SAFETY: a cookie stream (`_IO_cookie_file`): the cookie follows the
    // vtable pointer.
    let slot = unsafe { word_at(fp, COOKIE_AT) }.checked_sub(1)?;
    // Another cookie stream of the program's own has some other cookie.
    (STREAMS.get(slot)?.file.load(Ordering::Acquire) == fp as usize).then_some(slot)
}

/// The fd behind a cookie.
fn fd_of(cookie: *mut c_void) -> c_int {
    STREAMS
        .get((cookie as usize).wrapping_sub(1))
        .map_or(-1, |s| s.fd.load(Ordering::Relaxed))
}

/// After [`flush_at_exit`], a fast-path fd cannot reach its daemon any more.
fn gone(fd: c_int) -> bool {
    EXITING.load(Ordering::Relaxed) && FDS.is_ours(fd)
}

// ---- the callbacks -----------------------------------------------------------

/// `read`: one read, like glibc's `_IO_file_read`.
unsafe extern "C" fn cookie_read(c: *mut c_void, buf: *mut c_char, n: size_t) -> ssize_t {
    let fd = fd_of(c);
    if gone(fd) {
        set_errno(libc::EIO);
        return -1;
    }
    // SAFETY: glibc's buffer of `n` bytes.
    unsafe { hooks::read(fd, buf.cast(), n) }
}

/// `write`: all of it or an error, like glibc's `_IO_new_file_write`;
/// returns the bytes written (glibc marks the stream in error when fewer).
unsafe extern "C" fn cookie_write(c: *mut c_void, buf: *const c_char, n: size_t) -> ssize_t {
    let fd = fd_of(c);
    let mut done = 0usize;
    while done < n {
        if gone(fd) {
            set_errno(libc::EIO);
            break;
        }
        // SAFETY: the rest of glibc's `n` bytes.
        let r = unsafe { hooks::write(fd, buf.add(done).cast(), n - done) };
        if r < 0 {
            break;
        }
        if r == 0 {
            // glibc would retry forever; a regular file never does this.
            set_errno(libc::EIO);
            break;
        }
        done += r as usize;
    }
    done as ssize_t
}

/// `seek`: `lseek64`. (After exit began glibc's exit flush may still ask
/// to give back unread input: an fd of ours is shared with no other
/// process, so refusing changes nothing anyone can see.)
unsafe extern "C" fn cookie_seek(c: *mut c_void, off: *mut off64_t, whence: c_int) -> c_int {
    let fd = fd_of(c);
    if gone(fd) {
        set_errno(libc::EIO);
        return -1;
    }
    // SAFETY: glibc passes a valid offset cell.
    let r = unsafe { hooks::lseek64(fd, *off, whence) };
    if r < 0 {
        return -1;
    }
    // SAFETY: as above.
    unsafe { *off = r };
    0
}

/// `close`: frees the slot and closes the fd (`fclose`).
unsafe extern "C" fn cookie_close(c: *mut c_void) -> c_int {
    let slot = (c as usize).wrapping_sub(1);
    let fd = fd_of(c);
    if slot < NSTREAMS {
        release(slot);
    }
    if fd < 0 {
        // A failed freopen closed it already.
        set_errno(libc::EBADF);
        return -1;
    }
    if gone(fd) {
        return 0;
    }
    // SAFETY: the stream's own fd.
    unsafe { hooks::close(fd) }
}

const IO: CookieIo = CookieIo {
    read: Some(cookie_read),
    write: Some(cookie_write),
    seek: Some(cookie_seek),
    close: Some(cookie_close),
};

/// How far glibc reads a mode string past a valid first character.
#[derive(Clone, Copy)]
enum ModeRead {
    /// `fopen`/`freopen`: to its NUL (the `",ccs="` search).
    Whole,
    /// `fdopen`: at most its first five characters.
    Five,
}

/// The bytes of a mode string (the C contract: NUL-terminated), read with
/// plain loads as far as glibc reads them, so that a mode running into
/// unreadable memory crashes the caller exactly when glibc would: its
/// first character, and past it only when that is `r`, `w` or `a`.
fn mode_bytes<'a>(mode: *const c_char, read: ModeRead) -> Option<&'a [u8]> {
    if mode.is_null() {
        return None;
    }
    // SAFETY: the caller's string, read as glibc reads it (see above).
    let first = unsafe { *mode } as u8;
    let len = match (first, read) {
        (b'r' | b'w' | b'a', ModeRead::Whole) => {
            // SAFETY: as above.
            unsafe { core::ffi::CStr::from_ptr(mode) }.to_bytes().len()
        }
        (b'r' | b'w' | b'a', ModeRead::Five) => (1..5)
            // SAFETY: as above: each byte read only after a non-NUL one.
            .find(|&i| unsafe { *mode.add(i) } == 0)
            .unwrap_or(5),
        _ => 1,
    };
    // SAFETY: `len` bytes of the string were just read.
    Some(unsafe { core::slice::from_raw_parts(mode.cast(), len) })
}

// ---- making streams ------------------------------------------------------------

/// Wraps fd `fd` in a cookie stream of mode `m`; `None` when no stream can
/// be made (table full, out of memory): the caller falls back to glibc.
fn wrap(fd: c_int, m: &Mode) -> Option<*mut FILE> {
    let slot = claim(fd)?;
    // SAFETY: a valid mode string; glibc copies the callbacks.
    let fp = unsafe { fopencookie((slot + 1) as *mut c_void, m.cookie_mode().as_ptr(), IO) };
    if fp.is_null() {
        release(slot);
        return None;
    }
    let f = fp.cast::<IoFile>();
    // SAFETY: a fresh cookie stream of the probed layout, not yet shared.
    unsafe {
        (*f).fileno = fd;
        if (*f).wide_data as isize == -1 {
            (*f).wide_data = NO_WIDE.0.get().cast();
        }
    }
    if m.rw & NO_WRITES != 0 {
        if let Some((id, buf)) = big_take() {
            // SAFETY: a fresh stream (no I/O yet) and a buffer of BIG_LEN
            // bytes that stays ours until the stream's close callback.
            if unsafe { setvbuf(fp, buf.cast(), libc::_IOFBF, BIG_LEN) } == 0 {
                STREAMS[slot].big.store(id, Ordering::Relaxed);
            } else {
                big_free(id);
            }
        }
    }
    // Release: the stream's fields are set before others find it.
    STREAMS[slot].file.store(fp as usize, Ordering::Release);
    Some(fp)
}

/// Moves fd `fd` to the end of its file, as glibc does for mode `"a"`.
fn seek_end(fd: c_int) -> Result<(), i32> {
    // SAFETY: plain integer arguments.
    if unsafe { hooks::lseek64(fd, 0, libc::SEEK_END) } < 0 && errno() != libc::ESPIPE {
        return Err(errno());
    }
    Ok(())
}

fn fail<T>(e: i32) -> *mut T {
    set_errno(e);
    core::ptr::null_mut()
}

/// `fopen`/`fopen64`: a cookie stream when `p` is a regular file on a
/// mount reached through the fast path; the real function otherwise.
unsafe fn open_stream(
    p: *const c_char,
    mode: *const c_char,
    real: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    let saved = errno();
    let mut slot = ops::Target::new();
    let t = match ops::resolve_at(AT_FDCWD, p, &mut slot) {
        At::Real => return real(),
        At::Err(e) => return fail(e),
        At::Ours(t) => t,
    };
    let m = match mode_bytes(mode, ModeRead::Whole).and_then(parse_fopen) {
        Some(m) if !m.ccs && usable() => m,
        _ => return real(),
    };
    let fd = match ops::open(t, m.oflags, 0o666) {
        Ok(fd) => fd,
        Err(Fail::Errno(e)) => return fail(e),
        Err(Fail::Real) => return real(),
    };
    if m.seek_end {
        if let Err(e) = seek_end(fd) {
            // SAFETY: our own fresh fd.
            unsafe { hooks::close(fd) };
            return fail(e);
        }
    }
    match wrap(fd, &m) {
        Some(fp) => {
            set_errno(saved);
            fp
        }
        // SAFETY: forwards the caller's mode.
        None => unsafe { kernel_stream(fd, mode) },
    }
}

/// The fallback: `fd` becomes kernel-backed and glibc makes the stream
/// (the kernel path); on failure the fd is closed.
unsafe fn kernel_stream(fd: c_int, mode: *const c_char) -> *mut FILE {
    if let Err(e) = ops::kernel_fd(fd) {
        // SAFETY: our own fd.
        unsafe { hooks::close(fd) };
        return fail(e);
    }
    // SAFETY: a kernel fd and the caller's mode.
    let fp = unsafe { real::fdopen()(fd, mode) };
    if fp.is_null() {
        let e = errno();
        // SAFETY: our own fd.
        unsafe { hooks::close(fd) };
        set_errno(e);
    }
    fp
}

/// `fopen(3)`.
#[no_mangle]
pub unsafe extern "C" fn fopen(p: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: forwards the caller's arguments.
    unsafe { open_stream(p, mode, || real::fopen()(p, mode)) }
}

/// `fopen64(3)` (the same as `fopen` on 64-bit targets).
#[no_mangle]
pub unsafe extern "C" fn fopen64(p: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: forwards the caller's arguments.
    unsafe { open_stream(p, mode, || real::fopen64()(p, mode)) }
}

/// `fdopen(3)`: a cookie stream on a fast-path fd, with glibc's checks
/// (`EINVAL` for a mode the fd's access mode does not allow; `"a"` adds
/// `O_APPEND` to the fd when it lacks it). Other fds go to the real
/// `fdopen`; when no cookie stream can be made, the fd becomes
/// kernel-backed and glibc makes a plain stream on it.
#[no_mangle]
pub unsafe extern "C" fn fdopen(fd: c_int, mode: *const c_char) -> *mut FILE {
    if !FDS.is_ours(fd) {
        // SAFETY: forwards the caller's arguments.
        return unsafe { real::fdopen()(fd, mode) };
    }
    let saved = errno();
    if usable() {
        let Some(m) = mode_bytes(mode, ModeRead::Five).and_then(parse_fdopen) else {
            return fail(libc::EINVAL);
        };
        // SAFETY: plain integer arguments.
        let fl = unsafe { hooks::fcntl(fd, libc::F_GETFL, 0) };
        if fl < 0 {
            return core::ptr::null_mut();
        }
        let acc = fl & libc::O_ACCMODE;
        if (acc == libc::O_RDONLY && m.rw & NO_WRITES == 0)
            || (acc == libc::O_WRONLY && m.rw & NO_READS == 0)
        {
            return fail(libc::EINVAL);
        }
        if m.rw & IS_APPENDING != 0 && fl & libc::O_APPEND == 0 {
            // SAFETY: plain integer arguments.
            if unsafe { hooks::fcntl(fd, libc::F_SETFL, (fl | libc::O_APPEND) as usize) } < 0 {
                return core::ptr::null_mut();
            }
            if m.seek_end {
                if let Err(e) = seek_end(fd) {
                    return fail(e);
                }
            }
        }
        if let Some(fp) = wrap(fd, &m) {
            set_errno(saved);
            return fp;
        }
    }
    if let Err(e) = ops::kernel_fd(fd) {
        return fail(e);
    }
    // SAFETY: now a kernel fd; the caller's mode.
    unsafe { real::fdopen()(fd, mode) }
}

// ---- freopen -------------------------------------------------------------------

/// `freopen(3)`.
#[no_mangle]
pub unsafe extern "C" fn freopen(
    p: *const c_char,
    mode: *const c_char,
    fp: *mut FILE,
) -> *mut FILE {
    // SAFETY: forwards the caller's arguments.
    unsafe { reopen(p, mode, fp, || real::freopen()(p, mode, fp)) }
}

/// `freopen64(3)` (the same as `freopen` on 64-bit targets).
#[no_mangle]
pub unsafe extern "C" fn freopen64(
    p: *const c_char,
    mode: *const c_char,
    fp: *mut FILE,
) -> *mut FILE {
    // SAFETY: forwards the caller's arguments.
    unsafe { reopen(p, mode, fp, || real::freopen64()(p, mode, fp)) }
}

unsafe fn reopen(
    p: *const c_char,
    mode: *const c_char,
    fp: *mut FILE,
    real: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    if let Some(slot) = stream_of(fp) {
        // SAFETY: our stream and the caller's arguments.
        return unsafe { reopen_ours(p, mode, fp, slot) };
    }
    // One of glibc's own streams: glibc reopens it (through the kernel,
    // also when `p` is on a mount) and puts the new file at the old fd
    // number with internal calls (`dup3`, or `close` on failure).
    let fd = if fp.is_null() {
        -1
    } else {
        // SAFETY: the caller's stream.
        unsafe { real::fileno()(fp) }
    };
    if !FDS.is_ours(fd) {
        return real();
    }
    if p.is_null() {
        // glibc reopens "/proc/self/fd/N": make N name the file, not the
        // placeholder.
        if let Err(e) = ops::kernel_fd(fd) {
            return fail(e);
        }
    }
    let r = real();
    let e = errno();
    // The number names the new file now (or nothing): forget the old one.
    if let Some(prev) = FDS.remove(fd) {
        ops::put(prev);
    }
    set_errno(e);
    r
}

/// Writes "/proc/self/fd/N" (NUL-terminated) into `buf`.
fn proc_fd_path(fd: c_int, buf: &mut [u8; 32]) {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let k = proto::write_decimal(fd.max(0) as u64, &mut buf[PREFIX.len()..]);
    buf[PREFIX.len() + k] = 0;
}

/// `freopen` of one of our streams, done here as glibc's `freopen` does it
/// for its own: flush; open the new file (`p == NULL`: the same file, as
/// glibc does through "/proc/self/fd/N", which needs a kernel fd); put it
/// at the stream's old fd number; on failure the old fd is closed and
/// NULL returned. The `FILE` stays the same cookie stream, its buffer
/// emptied, its error and end-of-file flags cleared, its read/write mode
/// the new one.
unsafe fn reopen_ours(
    p: *const c_char,
    mode: *const c_char,
    fp: *mut FILE,
    slot: usize,
) -> *mut FILE {
    let saved = errno();
    let m = match mode_bytes(mode, ModeRead::Whole).and_then(parse_fopen) {
        Some(m) if !m.ccs => m,
        // No conversion on a cookie stream; nothing was changed.
        _ => return fail(libc::EINVAL),
    };
    // SAFETY: the caller's live stream.
    unsafe { flockfile(fp) };
    // SAFETY: as above; failure is ignored, as glibc does.
    unsafe { fflush_unlocked(fp) };
    let old = STREAMS[slot].fd.load(Ordering::Relaxed);
    let res = (|| -> Result<(), i32> {
        if old < 0 {
            return Err(libc::EBADF);
        }
        let mut procpath = [0u8; 32];
        let path = if p.is_null() {
            ops::kernel_fd(old)?;
            proc_fd_path(old, &mut procpath);
            procpath.as_ptr().cast()
        } else {
            p
        };
        // SAFETY: a NUL-terminated path; the library's own open.
        let new = unsafe { hooks::open(path, m.oflags, 0o666) };
        if new < 0 {
            return Err(errno());
        }
        if new != old {
            // SAFETY: two fds of ours; the library's own dup3 and close.
            let r = unsafe { hooks::dup3(new, old, m.cloexec()) };
            let e = errno();
            // SAFETY: as above.
            unsafe { hooks::close(new) };
            if r < 0 {
                return Err(e);
            }
        }
        if m.seek_end {
            seek_end(old)?;
        }
        Ok(())
    })();
    let f = fp.cast::<IoFile>();
    // SAFETY: our stream, locked: drop buffered data (and a pushback
    // area), then an empty buffer and the new mode's flags, as after
    // glibc's freopen.
    unsafe {
        __fpurge(fp);
        let b = (*f).buf_base;
        (*f).read_base = b;
        (*f).read_ptr = b;
        (*f).read_end = b;
        (*f).write_base = b;
        (*f).write_ptr = b;
        (*f).write_end = b;
        (*f).cur_column = 0;
        (*f).offset = -1;
        (*f).flags = (*f).flags
            & !(EOF_SEEN | ERR_SEEN | CURRENTLY_PUTTING | NO_READS | NO_WRITES | IS_APPENDING)
            | m.rw;
    }
    let r = match res {
        Ok(()) => {
            set_errno(saved);
            fp
        }
        Err(e) => {
            if old >= 0 {
                // SAFETY: the stream's own fd.
                unsafe { hooks::close(old) };
            }
            STREAMS[slot].fd.store(-1, Ordering::Relaxed);
            // SAFETY: as above; `fclose` still calls the close callback.
            unsafe { (*f).fileno = -2 };
            set_errno(e);
            core::ptr::null_mut()
        }
    };
    // SAFETY: locked above.
    unsafe { funlockfile(fp) };
    r
}

// ---- fclose and exit -------------------------------------------------------------

/// `fclose(3)`. Our streams are closed by glibc, which calls
/// [`cookie_close`]. A glibc stream whose fd is one of ours (stdin/stdout
/// made kernel-backed) is closed by glibc's internal `close`: the mapping
/// is dropped first, so the number never names a stale fast-path file
/// once the kernel reuses it.
#[no_mangle]
pub unsafe extern "C" fn fclose(fp: *mut FILE) -> c_int {
    if stream_of(fp).is_some() {
        // SAFETY: forwards the caller's stream; glibc always calls the close
        // callback of a cookie stream whose `_fileno` is not -1, which
        // frees the slot.
        return unsafe { real::fclose()(fp) };
    }
    if !fp.is_null() {
        // SAFETY: the caller's FILE.
        let fd = unsafe { real::fileno()(fp) };
        if let Some(r) = FDS.remove(fd) {
            ops::put(r);
        }
    }
    // SAFETY: forwards.
    unsafe { real::fclose()(fp) }
}

/// Writes the pending output of every stream, before the library's
/// channels close at exit (glibc's own flush comes later, see the module
/// comment). Like glibc's exit flush it takes no stream locks (a thread
/// blocked inside a stream must not block exit) and flushes only streams
/// with output pending.
pub(crate) fn flush_at_exit() {
    let high = HIGH.load(Ordering::Relaxed) as usize;
    if high == 0 {
        // No stream was ever made (and no page of ours gets written).
        return;
    }
    for s in &STREAMS[..high.min(NSTREAMS)] {
        let fp = s.file.load(Ordering::Acquire);
        if fp <= CLAIMED {
            continue;
        }
        let f = fp as *mut IoFile;
        // SAFETY: a live stream of ours (slots are freed when glibc closes
        // them).
        unsafe {
            if (*f).write_ptr > (*f).write_base {
                fflush_unlocked(fp as *mut FILE);
            }
        }
    }
    EXITING.store(true, Ordering::Relaxed);
}
