//! The daemon's Unix-socket plumbing for fast-path clients: a
//! `SOCK_SEQPACKET` listener, peer credentials, and passing descriptors.
//!
//! `std::os::unix::net` has no `SOCK_SEQPACKET` and no `SCM_RIGHTS`, so these
//! few calls are made with `libc`, each checked by [`check`].

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Turns a `-1` return into the `errno` error.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Kernel-reported identity of the process on the other end.
#[derive(Copy, Clone, Debug)]
pub struct PeerCred {
    /// Process id.
    pub pid: u32,
    /// Effective user id at `connect` time.
    pub uid: u32,
    /// Effective group id at `connect` time.
    pub gid: u32,
}

/// A listening `SOCK_SEQPACKET` socket bound to a path.
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Binds `path` (replacing a stale socket file left by a dead daemon),
    /// makes it connectable by every user (requests are checked per caller)
    /// and listens.
    pub fn bind(path: &Path) -> io::Result<Listener> {
        let fd = seqpacket_socket()?;
        let (addr, len) = sockaddr(path)?;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
        let c_path = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: `c_path` is NUL-terminated.
        check(unsafe { libc::chmod(c_path.as_ptr(), 0o666) })?;
        // SAFETY: `fd` is a bound socket.
        check(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
        Ok(Listener { fd })
    }

    /// Waits for the next client.
    pub fn accept(&self) -> io::Result<OwnedFd> {
        loop {
            // SAFETY: null address pointers are allowed by accept4.
            let ret = unsafe {
                libc::accept4(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            match check(ret) {
                // SAFETY: accept4 returned a new descriptor that we now own.
                Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes a blocked [`Listener::accept`] return (with an error).
    pub fn shutdown(&self) {
        // SAFETY: shutdown(2) on our own socket.
        unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

/// A new close-on-exec `AF_UNIX`, `SOCK_SEQPACKET` socket.
fn seqpacket_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = check(unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// The connected peer's credentials, from the kernel (`SO_PEERCRED`).
pub fn peer_cred(fd: &OwnedFd) -> io::Result<PeerCred> {
    // SAFETY: ucred is plain data.
    let mut cred: libc::ucred = unsafe { zeroed() };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` has room for `len` bytes.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    })?;
    Ok(PeerCred {
        pid: cred.pid as u32,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// `SO_PEERPIDFD` (Linux 6.5; not exported by the `libc` crate for this
/// target).
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd of the connected peer's process, from the kernel
/// (`SO_PEERPIDFD`): unlike the pid in [`peer_cred`], it can never come to
/// name another process.
pub fn peer_pidfd(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let mut pidfd: libc::c_int = -1;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `pidfd` has room for `len` bytes.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&raw mut pidfd).cast(),
            &mut len,
        )
    })?;
    // SAFETY: the kernel just created this descriptor for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(pidfd) })
}

/// Whether the process behind `pidfd` has exited (its pidfd polls
/// readable then). While it has not, its pid names no other process.
pub fn pidfd_exited(pidfd: &OwnedFd) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    check(unsafe { libc::poll(&mut p, 1, 0) })?;
    Ok(p.revents != 0)
}

/// `SO_PEERGROUPS` (Linux 4.13; not exported by the `libc` crate for this
/// target).
const SO_PEERGROUPS: libc::c_int = 59;

/// The connected peer's supplementary groups at `connect` time, from the
/// kernel (`SO_PEERGROUPS`).
pub fn peer_groups(fd: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * size_of::<u32>()) as libc::socklen_t;
        // SAFETY: `groups` has room for `len` bytes.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        match check(ret) {
            Ok(_) => {
                groups.truncate(len as usize / size_of::<u32>());
                return Ok(groups);
            }
            // ERANGE: `len` now says how much room is needed.
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => {
                groups.resize(len as usize / size_of::<u32>() + 1, 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Bounds how long `recv`/`send` may block on this socket.
pub fn set_timeouts(fd: &OwnedFd, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: `tv` is a valid timeval for the call.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
    }
    Ok(())
}

/// Receives one message into `buf`; returns its length (0 at EOF).
pub fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    check_size(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// Receives one message into `buf` and the descriptors it carries
/// (`SCM_RIGHTS`, close-on-exec); returns the message length (0 at EOF).
/// A message whose control data was truncated is an error (its fds are
/// still returned, for the caller to dispose of).
pub fn recv_with_fds(fd: &OwnedFd, buf: &mut [u8]) -> (io::Result<usize>, Vec<OwnedFd>) {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for a few descriptors, aligned as cmsghdr requires.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer field is set below.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    let n = loop {
        // SAFETY: `msg` and the buffers it points to live across the call.
        match check_size(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) })
        {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r,
        }
    };
    let mut fds = Vec::new();
    if n.is_err() {
        return (n, fds);
    }
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within
    // msg_controllen; every fd found is new and ours.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let count = ((*c).cmsg_len - (data as usize - c as usize)) / size_of::<RawFd>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return (Err(io::Error::from_raw_os_error(libc::EPROTO)), fds);
    }
    (n, fds)
}

/// Sends one message.
pub fn send(fd: &OwnedFd, data: &[u8]) -> io::Result<()> {
    // SAFETY: `data` is readable for its length.
    let sent = check_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL,
        )
    })?;
    if sent != data.len() {
        return Err(io::Error::from(io::ErrorKind::WriteZero));
    }
    Ok(())
}

/// Sends one message of `data` carrying descriptor `passed`
/// (`SCM_RIGHTS`).
pub fn send_with_fd(fd: &OwnedFd, data: &[u8], passed: BorrowedFd<'_>) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // Room for one descriptor, aligned as cmsghdr requires.
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; every pointer field is set below.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    assert!(msg.msg_controllen <= size_of_val(&control));
    // SAFETY: the control buffer holds CMSG_SPACE(one fd) bytes (checked
    // above), so the first header and its data lie inside it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), passed.as_raw_fd());
    }
    // SAFETY: `msg` and the buffers it points to live across the call.
    let sent = check_size(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    if sent != data.len() {
        return Err(io::Error::from(io::ErrorKind::WriteZero));
    }
    Ok(())
}

/// Connects a `SOCK_SEQPACKET` socket to `path`.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let fd = seqpacket_socket()?;
    let (addr, len) = sockaddr(path)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    check(unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
    Ok(fd)
}

/// Whether a message (or a hang-up) arrives on `fd` within `timeout`.
pub fn readable_within(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    n > 0
}

/// True once the peer has closed its end (or the socket failed).
pub fn peer_gone(fd: &OwnedFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n < 0 || pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}
