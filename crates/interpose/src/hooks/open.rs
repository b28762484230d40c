//! Handlers of `open` and `close` and their relatives.

use core::ffi::{c_char, c_int, c_long, c_uint};

use libc::{mode_t, AT_FDCWD};

use crate::channel;
use crate::dir;
use crate::ops::{self, At, Fail};
use crate::path;
use crate::real;
use crate::state::{self, FDS};
use crate::sys::{self, errno};

use super::common::*;
use crate::callargs::needs_mode;

// ---- open / close ----------------------------------------------------------

#[inline]
pub(super) unsafe fn do_openat(
    dirfd: c_int,
    p: *const c_char,
    flags: c_int,
    mode: mode_t,
    real: impl FnOnce(c_int, *const c_char) -> c_int,
) -> c_int {
    let saved = errno();
    match ops::resolve_at(dirfd, p, &mut ops::Target::new()) {
        At::Real => real(dirfd, p),
        At::Err(e) => err(e),
        At::Ours(t) => {
            // O_TMPFILE includes the O_DIRECTORY bit: compare all of it.
            if flags & libc::O_TMPFILE == libc::O_TMPFILE {
                return real_at(t, dirfd, p, real);
            }
            if flags & libc::O_PATH != 0 {
                // The kernel's fd; a directory's is shadowed for the paths
                // relative to it (see `ops::located`).
                let k = real_at(t, dirfd, p, real);
                if flags & ops::SHADOWED == ops::SHADOWED {
                    ops::shadow(t, flags, k);
                }
                return k;
            }
            let r = match dir::lists_on_open(flags) {
                true => dir::open_for_listing(t, flags),
                false => ops::open(t, flags, mode),
            };
            finish!(saved, r, t, dirfd, p, |d, q| real(d, q))
        }
    }
}

#[inline]
pub(super) unsafe fn open(p: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    // SAFETY: forwards the caller's arguments.
    unsafe {
        do_openat(AT_FDCWD, p, flags, mode, |d, q| {
            real::openat()(d, q, flags, mode)
        })
    }
}

#[inline]
pub(super) unsafe fn openat(dirfd: c_int, p: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
    unsafe {
        do_openat(dirfd, p, flags, mode, |d, q| {
            real::openat()(d, q, flags, mode)
        })
    }
}

/// `openat2(2)`, which programs make through `syscall(3)` (glibc has no
/// wrapper): rsync's receiver looks for a basis file of every file it
/// receives with `RESOLVE_BENEATH` first, and each missing one cost the
/// kernel's FUSE lookup. The library does not resolve under the
/// `RESOLVE_*` rules, so it opens nothing here: it answers only `ENOENT`,
/// for a relative path without `..` on one mount whose components the fast
/// path shows to be directories (no symlink) up to the first missing one,
/// where those rules change nothing, and only for flags the kernel would
/// not refuse first. Anything else is the kernel's (with a kernel fd in
/// place of a fast-path directory fd, as for `openat`).
///
/// # Safety
/// The arguments must be valid for `openat2(2)`.
pub(crate) unsafe fn openat2_syscall(
    dirfd: c_int,
    p: *const c_char,
    how: *const libc::open_how,
    size: libc::size_t,
) -> c_long {
    let kernel = |d: c_int, q: *const c_char| {
        let args = [
            d as c_long,
            q as c_long,
            how as c_long,
            size as c_long,
            0,
            0,
        ];
        // SAFETY: the caller's arguments, with `d` a kernel fd of the same
        // directory as the caller's `dirfd`.
        sys::libc_result(unsafe { sys::raw(libc::SYS_openat2, args) })
    };
    if size != core::mem::size_of::<libc::open_how>() {
        return kernel(dirfd, p);
    }
    let Ok(h) = crate::uaccess::read_val(how) else {
        return kernel(dirfd, p);
    };
    if !openat2_plain(&h) {
        return kernel(dirfd, p);
    }
    let mut t = ops::Target::new();
    let t = match ops::resolve_at(dirfd, p, &mut t) {
        At::Real => return kernel(dirfd, p),
        At::Err(e) => return err(e),
        At::Ours(t) => t,
    };
    let mut copy = [core::mem::MaybeUninit::<u8>::uninit(); proto::PATH_MAX];
    match crate::uaccess::strncpy_from_user(&mut copy, p) {
        Ok(path) if missing_beneath(dirfd, path, t.mount) => err(libc::ENOENT),
        _ => real_at(t, dirfd, p, kernel),
    }
}

/// Whether an `openat2` with `how` reaches the path lookup with the
/// caller's flags unchanged and no file to create: flags of `openat`'s
/// plain kinds (anything else, the kernel may refuse before the lookup),
/// mode 0, and resolution rules that only forbid leaving the directory,
/// symlinks and mounts (`RESOLVE_CACHED` answers `EAGAIN` instead).
fn openat2_plain(h: &libc::open_how) -> bool {
    const FLAGS: u64 = (libc::O_NOFOLLOW
        | libc::O_CLOEXEC
        | libc::O_NOATIME
        | libc::O_NONBLOCK
        | libc::O_DIRECTORY
        | libc::O_LARGEFILE
        | libc::O_NOCTTY
        | libc::O_TRUNC
        | libc::O_APPEND) as u64;
    const RESOLVE: u64 = libc::RESOLVE_BENEATH
        | libc::RESOLVE_IN_ROOT
        | libc::RESOLVE_NO_MAGICLINKS
        | libc::RESOLVE_NO_SYMLINKS
        | libc::RESOLVE_NO_XDEV;
    let access = h.flags & libc::O_ACCMODE as u64;
    let both = libc::RESOLVE_BENEATH | libc::RESOLVE_IN_ROOT;
    access != libc::O_ACCMODE as u64
        && h.flags & !(FLAGS | libc::O_ACCMODE as u64) == 0
        && h.mode == 0
        && h.resolve & !RESOLVE == 0
        && h.resolve & both != both
}

/// Whether relative `path` (the caller's, read) names nothing on mount
/// `mount`, reached from `dirfd` through directories only: every
/// component is checked by an `lstat` on the fast path, in order, each a
/// directory on `mount` up to one that is missing. No `..`, no symlink,
/// no other mount: resolved under any of the `RESOLVE_*` rules, the path
/// is then missing too. A concurrent change between the checks can make
/// the answer `ENOENT` where the kernel's, at one instant, was an
/// `EXDEV` or `ELOOP`: a refusal either way, and nothing is opened.
fn missing_beneath(dirfd: c_int, path: &[u8], mount: usize) -> bool {
    if path.first().is_none_or(|&b| b == b'/') || path::Comps::new(path, b"").has_dotdot() {
        return false;
    }
    // The directory `dirfd` names must be on `mount` too.
    let mut t = ops::Target::new();
    if !matches!(ops::resolve_at(dirfd, c".".as_ptr(), &mut t), At::Ours(t) if t.mount == mount) {
        return false;
    }
    // The prefixes, NUL-terminated in turn, for `resolve_at`.
    let mut name = [0u8; proto::PATH_MAX + 1];
    name[..path.len()].copy_from_slice(path);
    let mut end = 0;
    while end < path.len() {
        // The next component's end.
        let start = end + path[end..].iter().take_while(|&&b| b == b'/').count();
        end = start + path[start..].iter().take_while(|&&b| b != b'/').count();
        if start == end || &path[start..end] == b"." {
            continue;
        }
        let saved = name[end];
        name[end] = 0;
        let mut t = ops::Target::new();
        let attr = match ops::resolve_at(dirfd, name.as_ptr().cast(), &mut t) {
            At::Ours(t) if t.mount == mount => ops::stat_path(t, true, None),
            _ => return false,
        };
        name[end] = saved;
        match attr {
            Err(Fail::Errno(libc::ENOENT)) => return true,
            Ok(a) if a.mode & libc::S_IFMT == libc::S_IFDIR => {}
            _ => return false,
        }
    }
    false
}

/// The `mkstemp(3)` family on a mount: glibc creates the file with its own
/// internal `open`, which no hook sees, so the temporary file `sed -i`
/// writes beside its target would be the kernel's; here the names are
/// tried as glibc tries them (the six `X`s before `suffix` bytes replaced
/// by letters and digits, `O_RDWR | O_CREAT | O_EXCL` and the caller's
/// other `flags`, mode 0600, again on `EEXIST`) through [`open`], so the
/// file is a fast-path file. Elsewhere, and for a template glibc refuses
/// or cannot read, glibc's (`real`).
#[inline]
pub(super) unsafe fn mktemp(
    t: *mut c_char,
    suffix: c_int,
    flags: c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    /// Names tried before `EEXIST`, as glibc (62³).
    const ATTEMPTS: u32 = 62 * 62 * 62;
    const LETTERS: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if !matches!(
        ops::resolve_at(AT_FDCWD, t, &mut ops::Target::new()),
        At::Ours(_)
    ) {
        return real();
    }
    let mut copy = [core::mem::MaybeUninit::<u8>::uninit(); proto::PATH_MAX];
    let Ok(name) = crate::uaccess::strncpy_from_user(&mut copy, t) else {
        return real();
    };
    let Some(xs) = usize::try_from(suffix)
        .ok()
        .and_then(|s| name.len().checked_sub(s + 6))
        .filter(|&at| name[at..at + 6].iter().all(|&c| c == b'X'))
    else {
        return real();
    };
    let saved = errno();
    let flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    for _ in 0..ATTEMPTS {
        let bits = sys::random_u64();
        let xxxxxx: [u8; 6] =
            core::array::from_fn(|i| LETTERS[(bits >> (10 * i)) as usize % LETTERS.len()]);
        // SAFETY: `xs + 6` bytes of the template were read just above.
        let at = unsafe { t.add(xs) };
        if crate::uaccess::write_val(at.cast::<[u8; 6]>(), &xxxxxx).is_err() {
            return err(libc::EFAULT);
        }
        // SAFETY: `t` is the caller's template, a C string we just read.
        let fd = unsafe { open(t, flags, 0o600) };
        if fd >= 0 {
            return ok(saved, fd);
        }
        if errno() != libc::EEXIST {
            return -1;
        }
    }
    err(libc::EEXIST)
}

/// Drops our mapping of `fd` and closes its placeholder.
#[inline]
pub(super) fn close_ours(fd: c_int) {
    if let Some(r) = FDS.remove(fd) {
        sys::close(fd);
        ops::close_drops_locks(&r);
        ops::put(r);
    }
}

#[inline]
pub(super) unsafe fn close(fd: c_int) -> c_int {
    if state::in_vfork_child() {
        // SAFETY: forwards the caller's argument (see `crate::process`).
        return unsafe { real::close()(fd) };
    }
    if FDS.is_ours(fd) {
        let saved = errno();
        close_ours(fd);
        return ok(saved, 0);
    }
    if channel::is_internal(fd) {
        // The library's own socket: the program closes "everything"; keep
        // it (its number is high and close-on-exec) and report success.
        return 0;
    }
    if ops::is_nullfd(fd) {
        ops::evict_internal(fd);
    }
    ops::forget_located(fd);
    // SAFETY: forwards the caller's argument.
    unsafe { real::close()(fd) }
}

/// Closes `[lo, hi]` except the library's own sockets.
#[inline]
pub(super) unsafe fn close_range_impl(lo: c_uint, hi: c_uint, flags: c_int) -> c_int {
    if state::in_vfork_child() {
        // SAFETY: forwards the caller's arguments (see `crate::process`).
        return unsafe { real::close_range()(lo, hi, flags) };
    }
    let saved = errno();
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        FDS.for_each_in(lo, hi, close_ours);
    }
    ops::forget_nullfd_in(lo, hi);
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        FDS.for_each_located_in(lo, hi, ops::forget_located);
    }
    // Our sockets in range, ascending, stay open.
    let mut start = lo as u64;
    let mut r = 0;
    while let Some(k) = channel::next_internal(start as u32).filter(|&k| k <= hi) {
        if k as u64 > start {
            // SAFETY: plain integer arguments.
            r |= unsafe { real::close_range()(start as c_uint, k - 1, flags) };
        }
        start = k as u64 + 1;
    }
    if start <= hi as u64 {
        // SAFETY: libc's own function, called with the caller's arguments under the caller's C contract.
        r |= unsafe { real::close_range()(start as c_uint, hi, flags) };
    }
    if r == 0 {
        ok(saved, 0)
    } else {
        -1
    }
}

#[inline]
pub(super) unsafe fn close_range(lo: c_uint, hi: c_uint, flags: c_int) -> c_int {
    if lo > hi {
        return err(libc::EINVAL);
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { close_range_impl(lo, hi, flags) }
}

#[inline]
pub(super) unsafe fn closefrom(lo: c_int) {
    // SAFETY: plain integer arguments.
    unsafe { close_range_impl(lo.max(0) as c_uint, c_uint::MAX, 0) };
}
