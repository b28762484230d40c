//! Setting a channel up: the socket's address, the library's high fd
//! numbers, the channel memfd and the hello that hands it to the daemon.

use super::*;

/// Builds `dir/name` NUL-terminated into a sockaddr_un.
fn socket_addr(mount: usize) -> Option<(libc::sockaddr_un, u32)> {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let dir = state::run_dir();
    let t = state::table();
    let m = &t.mounts()[mount];
    let mut name = [0u8; 32];
    let nl = proto::socket_name(m.major, m.minor, &mut name);
    let total = dir.len() + 1 + nl;
    if total + 1 > addr.sun_path.len() {
        return None;
    }
    for (dst, &b) in addr
        .sun_path
        .iter_mut()
        .zip(dir.iter().chain(b"/").chain(&name[..nl]))
    {
        *dst = b as libc::c_char;
    }
    Some((addr, (size_of::<libc::sa_family_t>() + total + 1) as u32))
}

/// Lowest fd number for the library's own long-lived descriptors.
///
/// Just below 1024 when the limit allows: high enough to stay out of the
/// program's way, low enough that the kernel's fd table stays at 1024
/// entries (an fd near a large `RLIMIT_NOFILE` makes every process grow its
/// table that far, and every `fork` copy it; a process starts with 64, see
/// [`grow_fd_table_while_alone`]). Worked out once: our descriptors stay
/// where it said even if the program changes its limit later (and a
/// limit lowered below it only makes `move_high` leave an fd where it is).
pub(crate) fn high_fd_base() -> i64 {
    #[link_section = ".data.btfuse_hot"]
    static BASE: AtomicI64 = AtomicI64::new(0);
    match BASE.load(Ordering::Relaxed) {
        0 => {
            let lim = sys::nofile_limit().min(i32::MAX as u64) as i64;
            let base = if lim >= 1024 {
                1024 - 64
            } else {
                (lim / 2).max(3)
            };
            BASE.store(base, Ordering::Relaxed);
            base
        }
        base => base,
    }
}

/// Grows the process's fd table, once, to hold the library's high
/// descriptors, if the process has mounts to use: called before it starts
/// sharing its table with a second thread. A process starts with a table
/// of 64 (or its parent's size); growing one that other threads share
/// waits for an RCU grace period (`expand_fdtable`), and measured here
/// that made a threaded program's first call on a mount take 10-28 ms
/// (the channel's socket moved above 960) instead of 0.2-0.4 ms. Grown
/// while single-threaded it costs a few µs; the table never shrinks.
pub(crate) fn grow_fd_table_while_alone() {
    #[link_section = ".data.btfuse_hot"]
    static GROWN: AtomicBool = AtomicBool::new(false);
    if GROWN.swap(true, Ordering::Relaxed) {
        return;
    }
    // Any descriptor duplicated at the base and closed again will do.
    let Ok(fd) = sys::open(b"/\0", libc::O_PATH | libc::O_CLOEXEC) else {
        return;
    };
    if let Ok(high) = sys::fcntl(fd, libc::F_DUPFD_CLOEXEC, high_fd_base() as _) {
        sys::close(high);
    }
    sys::close(fd);
}

/// Moves `fd` to a high number (close-on-exec); returns the new fd (or the
/// old one if it cannot move).
pub(crate) fn move_high(fd: i32) -> i32 {
    match sys::fcntl(fd, libc::F_DUPFD_CLOEXEC, high_fd_base() as _) {
        Ok(n) => {
            sys::close(fd);
            n
        }
        Err(_) => fd,
    }
}

/// Makes a new channel of `mount`: connects its socket first, so that a
/// daemon thread wakes from `accept` and reads who we are while we make
/// the channel (memfd, mapping), which the hello then hands over (see
/// [`greet`]).
pub(super) fn new_conn(mount: usize) -> Option<Conn> {
    let addr = socket_addr(mount)?;
    let sock = sys::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0).ok()?;
    let sock = move_high(sock);
    if !connect(sock, &addr) {
        sys::close(sock);
        return None;
    }
    let Some(region) = Region::create(&proto::channel_config(), 0).ok() else {
        sys::close(sock);
        return None;
    };
    // SAFETY: the halves point into the mapping owned by `region`, which
    // lives in the same Conn and is dropped after them (field order), and
    // the Region struct itself is never borrowed by them (only its mapping;
    // `close_fd` in `greet` touches only the fd).
    let mut end: ClientEnd<'static> = unsafe { core::mem::transmute(region.client()?) };
    end.responses.set_policy(FIRST_REPLY_WAIT);
    end.requests.set_policy(REPLY_WAIT);
    // The daemon thread starts waiting for our first request as soon as it
    // has the channel: tell it where we run, so it does not spin for a
    // request that can only come once it lets go of our CPU.
    end.requests.note_cpu();
    timeline::mark(Mark::ChannelMade);
    Some(Conn {
        end,
        region,
        sock,
        daemon_pid: 0,
        seq: 0,
        confirmed: false,
        hello_due: true,
        hello_read: false,
        epoch: state::epoch(),
        ahead: ahead::Ahead::None,
    })
}

/// Connects `sock` to the daemon's socket `addr`.
fn connect(sock: i32, (addr, len): &(libc::sockaddr_un, u32)) -> bool {
    // A daemon with a full backlog must not hang the program at connect.
    let tv = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    let _ = sys::sc!(
        libc::SYS_setsockopt,
        sock,
        libc::SOL_SOCKET,
        libc::SO_SNDTIMEO,
        &tv as *const libc::timeval,
        size_of::<libc::timeval>()
    );
    loop {
        match sys::connect(sock, addr, *len) {
            Ok(()) => return true,
            Err(libc::EINTR) => continue,
            Err(_) => {
                sys::debug(&[b"btfuse: no daemon socket"]);
                return false;
            }
        }
    }
}

/// Hands a new channel (with its first request in, for a process's first
/// one) to the daemon of `mount`; `false` if it could not be sent.
pub(super) fn greet(conn: &mut Conn, mount: usize) -> bool {
    conn.hello_due = false;
    let Some(memfd) = conn.region.fd() else {
        return false;
    };
    let said = say_hello(conn.sock, memfd, state::registry_mountpoint(mount));
    conn.region.close_fd();
    if said {
        conn.daemon_pid = peer_pid(conn.sock);
        timeline::mark(Mark::Connected);
        sys::debug(&[b"btfuse: channel connected"]);
    }
    said
}

/// Sends the hello on the connected `sock` with the channel's memfd,
/// followed by `mountpoint` (see [`proto::Hello`]); does not wait for an
/// answer.
fn say_hello(sock: i32, memfd: i32, mountpoint: &[u8]) -> bool {
    let hello = Hello {
        magic: proto::HELLO_MAGIC,
        version: proto::VERSION,
        image: state::image(),
    };
    let mut iov = [
        libc::iovec {
            iov_base: proto::bytes_of(&hello).as_ptr() as *mut _,
            iov_len: size_of::<Hello>(),
        },
        libc::iovec {
            iov_base: mountpoint.as_ptr() as *mut _,
            iov_len: mountpoint.len(),
        },
    ];
    let mut cbuf = Cmsg([0; 64]);
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len();
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation; one fd fits in cbuf.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<i32>() as u32) } as usize;
    // SAFETY: msg_control points at `cbuf`, large enough for one cmsg with
    // one fd, so CMSG_FIRSTHDR is non-null and CMSG_DATA in bounds.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<i32>() as u32) as usize;
        core::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), memfd);
    }
    loop {
        match sys::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) {
            Err(libc::EINTR) => continue,
            r => return r == Ok(size_of::<Hello>() + mountpoint.len()),
        }
    }
}

/// Control-message buffer, aligned as `cmsghdr` requires.
#[repr(C, align(8))]
pub(super) struct Cmsg(pub(super) [u8; 64]);

/// The daemon's pid, from the kernel (`SO_PEERCRED` of the listener).
pub(super) fn peer_pid(sock: i32) -> i32 {
    // SAFETY: all-zero is a valid ucred.
    let mut cred: libc::ucred = unsafe { core::mem::zeroed() };
    let mut len = size_of::<libc::ucred>() as u32;
    match sys::sc!(
        libc::SYS_getsockopt,
        sock,
        libc::SOL_SOCKET,
        libc::SO_PEERCRED,
        &mut cred as *mut libc::ucred,
        &mut len as *mut u32
    ) {
        Ok(_) => cred.pid,
        Err(_) => 0,
    }
}
