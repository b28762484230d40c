//! Fds that leave the process: `sendmsg`/`sendmmsg` with `SCM_RIGHTS`.
//!
//! A fast-path fd is an `O_PATH` placeholder to the kernel: sent as it is,
//! the receiver would get `/dev/null` (an `O_PATH` one, on which `read`
//! fails with `EBADF`). So before the message leaves, every fast-path fd it
//! carries is made kernel-backed (`ops::upgrade`, as before `exec`): its
//! number becomes a duplicate of a real kernel fd on the FUSE mount, and
//! the receiver gets that open file description (same file, flags and
//! offset). Once sent, the description is shared with another process, as
//! after `fork`: this process stops serving it through the fast path (its
//! read-at-offset-then-move sequence would not be atomic against the
//! receiver's calls) and every fd number of it becomes a plain kernel fd.
//!
//! Other ways out: `exec` and `posix_spawn` file actions are handled by
//! `process`; `pidfd_getfd(2)` is the receiver's call, which no hook in the
//! sender sees: it gets the placeholder, and its calls fail with `EBADF`.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_int, c_uint};
use core::mem::size_of;

use libc::{cmsghdr, msghdr, ssize_t};

use crate::ops;
use crate::real;
use crate::state::FDS;
use crate::sys::set_errno;
use crate::uaccess;

/// Calls `f` with every fd of the `SCM_RIGHTS` messages of `msg`.
///
/// Every byte is read through [`uaccess`]: a bad pointer anywhere (the
/// header, its control buffer) ends the walk, and the real call then
/// answers `EFAULT` as the kernel does. The walk follows the kernel's
/// `__cmsg_nxthdr`: headers are aligned, and one shorter than a header or
/// running past `msg_controllen` ends the list.
///
/// # Safety
/// None beyond the hook's: `msg` may be any pointer.
unsafe fn for_each_passed_fd(msg: *const msghdr, mut f: impl FnMut(c_int)) {
    if msg.is_null() {
        return;
    }
    let Ok(m) = uaccess::read_val(msg) else {
        return;
    };
    let (base, len) = (m.msg_control as usize, m.msg_controllen);
    let align = |n: usize| (n + size_of::<usize>() - 1) & !(size_of::<usize>() - 1);
    let head = align(size_of::<cmsghdr>());
    let mut off = 0usize;
    while base != 0 && off + size_of::<cmsghdr>() <= len {
        let Ok(h) = uaccess::read_val((base + off) as *const cmsghdr) else {
            return;
        };
        let clen = h.cmsg_len;
        if clen < size_of::<cmsghdr>() || off + clen > len {
            return;
        }
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
            let data = base + off + head;
            for i in 0..(clen.saturating_sub(head) / size_of::<c_int>()) {
                match uaccess::read_val((data + i * size_of::<c_int>()) as *const c_int) {
                    Ok(fd) => f(fd),
                    Err(_) => return,
                }
            }
        }
        off += align(clen);
    }
}

/// Makes every fast-path fd among the fds `msg` passes kernel-backed;
/// the errno of the first that cannot be (the message must not go out
/// with a placeholder in it).
///
/// # Safety
/// As [`for_each_passed_fd`].
unsafe fn hand_to_kernel(msg: *const msghdr) -> Result<(), c_int> {
    let mut res = Ok(());
    // SAFETY: forwarded contract.
    unsafe {
        for_each_passed_fd(msg, |fd| {
            if res.is_ok() {
                res = ops::kernel_fd(fd);
            }
        })
    };
    res
}

/// After the message left: the files it passed are shared with the
/// receiver, and leave the fast path (see the module docs).
///
/// # Safety
/// As [`for_each_passed_fd`].
unsafe fn leave_to_kernel(msg: *const msghdr) {
    // SAFETY: forwarded contract.
    unsafe {
        for_each_passed_fd(msg, |fd| {
            if let Some(idx) = FDS.index_of(fd) {
                ops::forget_ofd(idx);
            }
        })
    };
}

/// `sendmsg(2)`: fast-path fds passed in `SCM_RIGHTS` become kernel-backed first.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's message, as the kernel will read it.
    if let Err(e) = unsafe { hand_to_kernel(msg) } {
        set_errno(e);
        return -1;
    }
    // SAFETY: forwards the caller's arguments.
    let n = unsafe { real::sendmsg()(fd, msg, flags) };
    if n >= 0 {
        // SAFETY: as above; the kernel has read it.
        unsafe { leave_to_kernel(msg) };
    }
    n
}

/// The `msghdr` of message `i` of the caller's array (`msg_hdr` is the
/// first field of `mmsghdr`), computed without touching the array.
fn nth_header(msgs: *const libc::mmsghdr, i: usize) -> *const msghdr {
    msgs.wrapping_add(i).cast()
}

/// `sendmmsg(2)`: as [`sendmsg`] for each message.
#[no_mangle]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
) -> c_int {
    // The kernel sends at most UIO_MAXIOV messages per call.
    let count = if msgs.is_null() { 0 } else { vlen.min(1024) };
    for i in 0..count as usize {
        // SAFETY: any pointer will do (see `for_each_passed_fd`).
        if let Err(e) = unsafe { hand_to_kernel(nth_header(msgs, i)) } {
            set_errno(e);
            return -1;
        }
    }
    // SAFETY: forwards the caller's arguments.
    let sent = unsafe { real::sendmmsg()(fd, msgs, vlen, flags) };
    for i in 0..sent.max(0) as usize {
        // SAFETY: as above.
        unsafe { leave_to_kernel(nth_header(msgs, i)) };
    }
    sent
}
