//! `realpath(3)`, `canonicalize_file_name(3)` and the fortified
//! `__realpath_chk`.
//!
//! glibc resolves a path with its own internal `readlink` and `faccessat`
//! calls, which no hook sees: on a mount each of them went to the kernel
//! (a FUSE `LOOKUP` per component; gcc's driver and `cc1` resolve every
//! input file, Rust's `fs::canonicalize` and libuv's `realpath` are this
//! function). Here is glibc's algorithm (`stdlib/canonicalize.c`) over the
//! hooked calls instead (an `lstat` of each component, a `readlink` of the
//! symlinks only, see `component`): a mount's components are read on the fast path,
//! every other one by the system calls glibc would make, with glibc's
//! answers, partial results and errnos. A case these buffers cannot hold
//! (a path or link longer than `PATH_MAX`), a bad pointer (glibc crashes
//! on it, and must crash the same way) or a process whose paths are the
//! kernel's (`state::paths_by_kernel`) goes to glibc's own function.

use core::ffi::{c_char, c_int};
use core::mem::MaybeUninit;
use core::ptr;

use libc::{size_t, AT_FDCWD};

use crate::sys::{errno, set_errno};
use crate::{ops, path, real, state, uaccess};

/// glibc's buffer size for a result (`pathconf("/", _PC_PATH_MAX)`).
const PATH_MAX: usize = libc::PATH_MAX as usize;
/// Room for a path being resolved: the name left to walk, or the result
/// so far (glibc grows its buffers; past these, glibc answers).
const ROOM: usize = 2 * PATH_MAX;
/// Symbolic links followed before `ELOOP` (glibc's `__eloop_threshold`:
/// `SYMLOOP_MAX` is not defined on Linux, so its minimum, 40).
const MAX_LINKS: u32 = 40;

/// `realpath(3)`.
///
/// # Safety
/// As for `realpath(3)`: `name` is a C string, `resolved` null or a
/// buffer of `PATH_MAX` bytes.
pub(super) unsafe fn realpath(name: *const c_char, resolved: *mut c_char) -> *mut c_char {
    if name.is_null() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    let glibc = || {
        // SAFETY: libc's own function, with the caller's arguments.
        unsafe { real::realpath()(name, resolved) }
    };
    if state::paths_by_kernel() {
        return glibc();
    }
    let Some(mut work) = Work::new() else {
        return glibc();
    };
    let outcome = work.resolve(name);
    let (len, failed) = match outcome {
        Outcome::Glibc => return glibc(),
        Outcome::Done(len) => (len, None),
        Outcome::Failed(len, e) => (len, Some(e)),
    };
    let answer = work.answer(len, resolved, failed);
    drop(work);
    match (answer, failed) {
        (Answer::Glibc, _) => glibc(),
        (_, Some(e)) => {
            set_errno(e);
            ptr::null_mut()
        }
        (Answer::Ptr(p), None) => p,
    }
}

/// The fortified `realpath`: glibc's check of the buffer's size first.
///
/// # Safety
/// As for [`realpath`], with `resolved_len` the size of `resolved`.
pub(super) unsafe fn realpath_chk(
    name: *const c_char,
    resolved: *mut c_char,
    resolved_len: size_t,
) -> *mut c_char {
    if resolved_len < PATH_MAX {
        // SAFETY: glibc's report-and-abort, no arguments.
        unsafe { super::__chk_fail() }
    }
    // SAFETY: the caller's contract.
    unsafe { realpath(name, resolved) }
}

/// How a resolution ended.
enum Outcome {
    /// The result is the first `len` bytes of `rname`.
    Done(usize),
    /// Failed with this errno; `rname` holds the first `len` bytes of the
    /// name resolved so far (glibc hands them to a caller's buffer).
    Failed(usize, i32),
    /// Past what this resolution can hold: glibc must answer.
    Glibc,
}

/// What the caller gets back.
enum Answer {
    Ptr(*mut c_char),
    Glibc,
}

/// The buffers of one resolution, on the heap (a thread's stack may be
/// small; glibc's own realpath allocates past a few hundred bytes too).
struct Work {
    buf: *mut Bufs,
}

struct Bufs {
    /// The result so far, NUL-terminated at its length.
    rname: [u8; ROOM + 1],
    /// The name still to walk (the caller's, or a link's target followed
    /// by what was left of it), NUL-terminated.
    name: [u8; ROOM + 1],
    /// A link's target as read.
    link: [u8; PATH_MAX],
}

impl Work {
    fn new() -> Option<Work> {
        // SAFETY: a zeroed allocation of a plain-bytes struct (all zero is
        // a valid `Bufs`), freed in drop.
        let buf = unsafe { libc::calloc(1, size_of::<Bufs>()) }.cast::<Bufs>();
        (!buf.is_null()).then_some(Work { buf })
    }

    fn bufs(&mut self) -> &mut Bufs {
        // SAFETY: our own initialised allocation, borrowed through `self`
        // (one borrow at a time), used by this thread only.
        unsafe { &mut *self.buf }
    }

    /// Resolves the caller's `name` into `rname`.
    fn resolve(&mut self, name: *const c_char) -> Outcome {
        let b = self.bufs();
        // SAFETY: the same bytes seen as maybe-uninitialised, which every
        // byte value is; the copy writes initialised bytes only.
        let dst = unsafe {
            &mut *(&mut b.name as *mut [u8; ROOM + 1]).cast::<[MaybeUninit<u8>; ROOM + 1]>()
        };
        let mut name_len = match uaccess::strncpy_from_user(dst, name) {
            Ok(s) => s.len(),
            // A bad pointer crashes glibc; a name this long is glibc's too.
            Err(_) => return Outcome::Glibc,
        };
        if name_len == 0 {
            return Outcome::Failed(0, libc::ENOENT);
        }
        let mut dest;
        if b.name[0] == b'/' {
            b.rname[0] = b'/';
            dest = 1;
        } else {
            // The kernel's cwd, kept while nothing on its mount changed (no
            // `getcwd` per call); glibc's own error if there is none.
            let mut cwd = [const { MaybeUninit::uninit() }; proto::PATH_MAX];
            match ops::cwd(&mut cwd) {
                Some(c) if c.first() == Some(&b'/') && c.len() < ROOM => {
                    b.rname[..c.len()].copy_from_slice(c);
                    dest = c.len();
                }
                _ => return Outcome::Glibc,
            }
        }
        let mut links = 0;
        let mut start = 0;
        while start < name_len {
            while start < name_len && b.name[start] == b'/' {
                start += 1;
            }
            let mut end = start;
            while end < name_len && b.name[end] != b'/' {
                end += 1;
            }
            match &b.name[start..end] {
                [] => break,
                b"." => {}
                b".." => dest = path::parent_len(&b.rname, dest),
                part => {
                    if b.rname[dest - 1] != b'/' {
                        b.rname[dest] = b'/';
                        dest += 1;
                    }
                    if dest + part.len() + 2 > ROOM {
                        return Outcome::Glibc;
                    }
                    b.rname[dest..dest + part.len()].copy_from_slice(part);
                    dest += part.len();
                    b.rname[dest] = 0;
                    let n = match component(&b.rname, &mut b.link) {
                        Component::Link(n) => n as usize,
                        Component::NotLink(dir) => {
                            // glibc asks `faccessat(path + "/")` when what
                            // follows needs a directory: for a file that is
                            // no symlink, whether it is a directory.
                            if path::requires_dir(&b.name[end..name_len]) {
                                match dir {
                                    Some(true) => {}
                                    Some(false) => return Outcome::Failed(dest, libc::ENOTDIR),
                                    None if is_dir(&mut b.rname, dest) => {}
                                    None => return Outcome::Failed(dest, errno()),
                                }
                            }
                            start = end;
                            continue;
                        }
                        Component::Failed => {
                            if path::requires_dir(&b.name[end..name_len])
                                && is_dir(&mut b.rname, dest)
                            {
                                start = end;
                                continue;
                            }
                            return Outcome::Failed(dest, errno());
                        }
                    };
                    if n == 0 || n >= PATH_MAX - 1 {
                        // Perhaps cut short (glibc reads it whole), or
                        // no target at all: glibc's to answer.
                        return Outcome::Glibc;
                    }
                    links += 1;
                    if links > MAX_LINKS {
                        return Outcome::Failed(dest, libc::ELOOP);
                    }
                    // The target, then what was left of the name.
                    let rest = end..name_len;
                    if n + rest.len() > ROOM {
                        return Outcome::Glibc;
                    }
                    b.name.copy_within(rest.clone(), n);
                    b.name[..n].copy_from_slice(&b.link[..n]);
                    name_len = n + rest.len();
                    b.name[name_len] = 0;
                    dest = if b.link[0] == b'/' {
                        1
                    } else {
                        path::parent_len(&b.rname, dest)
                    };
                    start = 0;
                    continue;
                }
            }
            start = end;
        }
        if dest > 1 && b.rname[dest - 1] == b'/' {
            dest -= 1;
        }
        Outcome::Done(dest)
    }

    /// Hands the first `len` bytes of `rname` to the caller as glibc does:
    /// into `resolved` if given and the result fits `PATH_MAX` (a partial
    /// result too, when the resolution `failed` for a missing or forbidden
    /// component; any other failure leaves it untouched), else (on success)
    /// a `malloc`ed copy.
    fn answer(&mut self, len: usize, resolved: *mut c_char, failed: Option<i32>) -> Answer {
        let b = self.bufs();
        b.rname[len] = 0;
        let bytes = &b.rname[..=len];
        if !resolved.is_null() {
            if bytes.len() > PATH_MAX {
                // `ENAMETOOLONG` or a partial result: glibc's business.
                return Answer::Glibc;
            }
            if matches!(failed, None | Some(libc::ENOENT | libc::EACCES))
                && uaccess::copy_to_user(resolved.cast(), bytes).is_err()
            {
                // glibc's `strcpy` crashes on it: so must the program.
                return Answer::Glibc;
            }
            return Answer::Ptr(match failed {
                None => resolved,
                Some(_) => ptr::null_mut(),
            });
        }
        if failed.is_some() {
            return Answer::Ptr(ptr::null_mut());
        }
        // SAFETY: a plain allocation of the result's size, handed to the
        // caller (who frees it, as glibc's result).
        let copy = unsafe { libc::malloc(bytes.len()) }.cast::<u8>();
        if copy.is_null() {
            set_errno(libc::ENOMEM);
            return Answer::Ptr(ptr::null_mut());
        }
        // SAFETY: `copy` has room for `bytes`, which it does not overlap.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len()) };
        Answer::Ptr(copy.cast())
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        // SAFETY: allocated by `Work::new`, freed once.
        unsafe { libc::free(self.buf.cast()) };
    }
}

/// What `readlink(path, link, PATH_MAX - 1)`, as glibc calls it, says of
/// a component.
enum Component {
    /// A symlink whose target is the first bytes of `link` (`readlink`'s
    /// count).
    Link(isize),
    /// No symlink (`readlink`'s `EINVAL`), whether a directory if known.
    NotLink(Option<bool>),
    /// `readlink` fails with `errno`.
    Failed,
}

/// Asks [`Component`] of `path` through the library's own hooks, `lstat`
/// first: on a mount the metadata caches answer it (a miss lists the
/// directory, so the next components and the next calls hit), and only a
/// symlink is read. The answers are `readlink`'s: `lstat` resolves a path
/// as `readlink` does.
fn component(path: &[u8], link: &mut [u8; PATH_MAX]) -> Component {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: our NUL-terminated path and a buffer for one `stat`.
    let r = unsafe {
        super::fstatat(
            AT_FDCWD,
            path.as_ptr().cast(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Component::Failed;
    }
    // SAFETY: `fstatat` filled it.
    let mode = unsafe { st.assume_init_ref() }.st_mode;
    if mode & libc::S_IFMT != libc::S_IFLNK {
        // glibc's errno after `readlink` of a file that is no symlink.
        set_errno(libc::EINVAL);
        return Component::NotLink(Some(mode & libc::S_IFMT == libc::S_IFDIR));
    }
    // SAFETY: as above, and a buffer of the size given.
    let n = unsafe {
        super::readlinkat(
            AT_FDCWD,
            path.as_ptr().cast(),
            link.as_mut_ptr().cast(),
            PATH_MAX - 1,
        )
    };
    match n {
        n if n >= 0 => Component::Link(n),
        // Replaced since the `lstat`: as `readlink` answers now.
        _ if errno() == libc::EINVAL => Component::NotLink(None),
        _ => Component::Failed,
    }
}

/// Whether `rname[..dest]` is a directory one may look into: glibc asks
/// `faccessat(rname + "/", F_OK, AT_EACCESS)`; `errno` is its answer.
fn is_dir(rname: &mut [u8], dest: usize) -> bool {
    rname[dest] = b'/';
    rname[dest + 1] = 0;
    // SAFETY: our NUL-terminated path, through the library's own hook.
    let r = unsafe {
        super::faccessat(
            AT_FDCWD,
            rname.as_ptr().cast(),
            libc::F_OK,
            libc::AT_EACCESS as c_int,
        )
    };
    rname[dest] = 0;
    r == 0
}
