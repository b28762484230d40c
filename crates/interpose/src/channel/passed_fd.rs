//! Kernel fds the daemon passes on a channel's socket: the answer to
//! [`ops::KernelOpen`], sent (`SCM_RIGHTS`, one message of
//! [`ops::KERNEL_OPEN_MESSAGE`]) before its reply.

use core::mem::size_of;

use proto::ops;

use super::connect::{peer_pid, Cmsg};
use super::{CallError, Chan, REPLY_BUF};
use crate::sys;

impl Chan {
    /// One round trip of [`ops::KernelOpen`] for handle `fh` with `flags`
    /// (`O_APPEND`, `O_NONBLOCK`): the kernel fd the daemon opened
    /// (close-on-exec), or why there is none.
    pub(crate) fn kernel_open(&mut self, fh: u64, flags: u32) -> Result<i32, CallError> {
        let mut reply = [0u8; REPLY_BUF];
        let req = ops::KernelOpen { fh, flags, _pad: 0 };
        self.call(&req, b"", b"", &mut reply)?;
        // The message was queued before the reply was sent: it is there.
        self.receive_fd()
            .ok_or(CallError::Chan(super::ChanError::Lost))
    }

    /// The fd of the [`ops::KERNEL_OPEN_MESSAGE`] waiting on the socket;
    /// `None` if there is none. Messages before it are dropped with their
    /// fds (the daemon's answer to the hello, which a channel that was
    /// accepted at once leaves unread).
    fn receive_fd(&mut self) -> Option<i32> {
        let conn = self.conn();
        let sock = conn.sock;
        // Never read a message off a socket the program put at that number
        // after closing ours behind our back.
        if peer_pid(sock) != conn.daemon_pid {
            return None;
        }
        // The hello's answer, then ours: a few messages at most.
        for _ in 0..4 {
            match recv_one(sock)? {
                (true, Some(fd)) => return Some(fd),
                (_, Some(fd)) => sys::close(fd),
                (_, None) => {}
            }
        }
        None
    }
}

/// One message waiting on `sock`, without blocking: whether it is a
/// [`ops::KERNEL_OPEN_MESSAGE`], and its first fd (others are closed);
/// `None` when there is none.
fn recv_one(sock: i32) -> Option<(bool, Option<i32>)> {
    let mut data = [0u8; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = Cmsg([0; 64]);
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len();
    let n = loop {
        match sys::recvmsg(sock, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) {
            Err(libc::EINTR) => continue,
            r => break r.ok()?,
        }
    };
    let mut got = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within
    // msg_controllen; every fd found is new and ours.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let first = libc::CMSG_DATA(c).cast::<i32>();
                let count = ((*c).cmsg_len - (first as usize - c as usize)) / size_of::<i32>();
                for i in 0..count {
                    let fd = core::ptr::read_unaligned(first.add(i));
                    if got.is_none() {
                        got = Some(fd);
                    } else {
                        sys::close(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let ours = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) == 0
        && &data[..n.min(data.len())] == ops::KERNEL_OPEN_MESSAGE;
    Some((ours, got))
}
