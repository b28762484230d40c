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

/// Calls `f` with every fd of the `SCM_RIGHTS` messages of `msg`.
///
/// # Safety
/// `msg` is null or the caller's valid `msghdr`, whose control buffer holds
/// `msg_controllen` readable bytes.
unsafe fn for_each_passed_fd(msg: *const msghdr, mut f: impl FnMut(c_int)) {
    if msg.is_null() {
        return;
    }
    // SAFETY: per the contract; `CMSG_FIRSTHDR`/`CMSG_NXTHDR` stay inside
    // `msg_control..msg_control + msg_controllen` and check each header's
    // length against it.
    unsafe {
        let mut c: *const cmsghdr = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = c.read_unaligned();
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<c_int>();
                let n = (h.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize)
                    / size_of::<c_int>();
                for i in 0..n {
                    f(data.add(i).read_unaligned());
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
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
        // SAFETY: the caller's array of `vlen` messages.
        if let Err(e) = unsafe { hand_to_kernel(&raw const (*msgs.add(i)).msg_hdr) } {
            set_errno(e);
            return -1;
        }
    }
    // SAFETY: forwards the caller's arguments.
    let sent = unsafe { real::sendmmsg()(fd, msgs, vlen, flags) };
    for i in 0..sent.max(0) as usize {
        // SAFETY: as above, one of the messages the kernel sent.
        unsafe { leave_to_kernel(&raw const (*msgs.add(i)).msg_hdr) };
    }
    sent
}
