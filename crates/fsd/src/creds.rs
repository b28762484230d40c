//! Caller identity: ids, supplementary groups and effective capabilities.
//!
//! The store decides by capabilities, never by uid 0 (see
//! `inode_store::Caps`), so each front door tells it what the kernel
//! would use: the caller's effective capability set, as held in the
//! daemon's (initial) user namespace. Capabilities held in another user
//! namespace (`unshare -r`, rootless containers) count as none: the
//! store can then only deny, never grant, what the kernel grants there.
//!
//! # FUSE door
//!
//! FUSE tells the daemon only the caller's fs uid, fs gid and thread id.
//! The mount uses `default_permissions`: the kernel has already made every
//! permission check (with the caller's real capabilities) before a request
//! reaches the daemon. For unprivileged callers the store still needs the
//! supplementary groups and capabilities (it checks again, and a
//! `CAP_DAC_OVERRIDE` holder must not be refused what the kernel allowed);
//! they come from one read of `/proc/<pid>/status`, as the groups always
//! did. uid-0 callers are given every capability without that read, which
//! grants nothing the kernel did not already allow: what the store decides
//! beyond the kernel's checks (which set-id bits a write clears; the kernel
//! sends the clearing itself as a mode change) agrees with it. The one
//! exception is `listxattr`, whose `trusted.*` names only `CAP_SYS_ADMIN`
//! may see and which the kernel does not filter: [`for_caller_exact`].
//!
//! # Ring door
//!
//! [`for_peer`]: ids and groups from `SO_PEERCRED`/`SO_PEERGROUPS` (the
//! kernel's word at `connect`), capabilities from `/proc/<pid>/status`,
//! read while a pidfd from `SO_PEERPIDFD` proves the pid still names the
//! peer (a pidfd polls readable once its process exits, and the pid is not
//! reused before then).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use inode_store::{Caps, Creds};

use crate::sock::{self, PeerCred};

/// Builds the credentials of a FUSE request's caller (see the module
/// comment for why uid 0 needs no lookup).
pub fn for_caller(uid: u32, gid: u32, pid: u32) -> Creds {
    if uid == 0 {
        return Creds::root();
    }
    for_caller_exact(uid, gid, pid)
}

/// The credentials of a FUSE request's caller with its real capabilities
/// even for uid 0 (one `/proc` read).
pub fn for_caller_exact(uid: u32, gid: u32, pid: u32) -> Creds {
    let status = match pid {
        0 => None,
        _ => Status::of(pid),
    };
    let Some(status) = status else {
        // Gone or unreadable: no groups, no capabilities, which can only
        // deny, never grant.
        return Creds::user(uid, gid, Vec::new());
    };
    let caps = status.caps_here(pid);
    Creds {
        uid,
        gid,
        groups: status.groups,
        caps,
    }
}

/// The credentials of a ring channel's peer (see the module comment).
/// An error refuses the channel (the client then uses the kernel door):
/// the peer is gone.
pub fn for_peer(conn: &OwnedFd, peer: &PeerCred) -> io::Result<Creds> {
    let pidfd = sock::peer_pidfd(conn)?;
    let leader = Leader::of(&pidfd, peer.pid)
        .or_else(|| Status::of(peer.pid).map(|s| s.leader()))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    // The ids are the thread group leader's. A thread that changed its
    // own ids with a raw system call (per-thread on Linux) connects with
    // other ids than the leader's; its capabilities are unknown then, and
    // none is the answer that can only deny.
    let caps = if leader.euid == peer.uid && leader.egid == peer.gid {
        caps_here(leader.cap_eff, peer.pid, Some(&pidfd))
    } else {
        Caps::NONE
    };
    if sock::pidfd_exited(&pidfd)? {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(Creds {
        uid: peer.uid,
        gid: peer.gid,
        groups: sock::peer_groups(conn)?,
        caps,
    })
}

/// The process (thread group) that thread `tid` belongs to. FUSE requests
/// carry the calling thread's id; the fast path files clients by process.
/// `None` when the thread is gone or its status cannot be parsed.
pub fn thread_group(tid: u32) -> Option<u32> {
    status_field(&read_status(tid)?, "Tgid:")?
        .trim()
        .parse()
        .ok()
}

/// The text of `/proc/<pid>/status`, read in one go: the kernel makes the
/// whole text at the first read, so a buffer that holds it (the usual
/// status is under 2 KiB) takes one `read` and the one that says EOF,
/// where `read_to_string` asks for the size first (`statx` and `lseek`;
/// `/proc` says 0) and then reads in small probes (measured: 8 reads, a
/// `statx` and an `lseek` per connection).
fn read_status(pid: u32) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(format!("/proc/{pid}/status")).ok()?;
    let mut text = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(2 * len, 0);
        }
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    text.truncate(len);
    String::from_utf8(text).ok()
}

/// The value of one line of a `/proc/<pid>/status` text.
fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(field))
}

/// What the checks need from `/proc/<pid>/status` (of the thread group
/// leader: capabilities are per thread, but threads of one process share
/// one address space, so another thread's set is no boundary).
#[derive(Debug, PartialEq)]
struct Status {
    euid: u32,
    egid: u32,
    groups: Vec<u32>,
    /// `CapEff:` as the process sees it (in its own user namespace).
    cap_eff: Caps,
}

impl Status {
    fn of(pid: u32) -> Option<Status> {
        Status::parse(&read_status(pid)?)
    }

    fn parse(text: &str) -> Option<Status> {
        // "Uid:\treal\teffective\tsaved\tfs".
        let second = |field| -> Option<u32> {
            status_field(text, field)?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        let groups = status_field(text, "Groups:")?
            .split_whitespace()
            .map(|g| g.parse().ok())
            .collect::<Option<Vec<u32>>>()?;
        let cap_eff = u64::from_str_radix(status_field(text, "CapEff:")?.trim(), 16).ok()?;
        Some(Status {
            euid: second("Uid:")?,
            egid: second("Gid:")?,
            groups,
            cap_eff: Caps(cap_eff),
        })
    }

    /// The capabilities that count here (see [`caps_here`]).
    fn caps_here(&self, pid: u32) -> Caps {
        caps_here(self.cap_eff, pid, None)
    }

    /// What [`Leader`] tells, from this text.
    fn leader(&self) -> Leader {
        Leader {
            euid: self.euid,
            egid: self.egid,
            cap_eff: self.cap_eff,
        }
    }
}

/// The effective ids and capabilities of a process's thread group leader.
struct Leader {
    euid: u32,
    egid: u32,
    /// As the process sees them (in its own user namespace).
    cap_eff: Caps,
}

/// `struct pidfd_info` of `<linux/pidfd.h>`, its first version (64 bytes).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

/// `struct __user_cap_header_struct` of `<linux/capability.h>`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct` of `<linux/capability.h>`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two [`CapData`].
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `PIDFD_GET_INFO`: `_IOWR(0xFF, 11, struct pidfd_info)` (Linux 6.13).
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;
/// `PIDFD_INFO_CREDS`: the info's ids are set.
const PIDFD_INFO_CREDS: u64 = 1 << 1;

impl Leader {
    /// Two system calls instead of a `/proc/<pid>/status` text (which the
    /// kernel formats in full, some fifty lines, for three fields): the
    /// ids from `PIDFD_GET_INFO` on the peer's pidfd, the effective
    /// capabilities from `capget` of `pid` (the leader's, as the status
    /// is; the caller checks afterwards that the pidfd's process still
    /// lives, so `pid` named it). `None` on kernels without the ioctl.
    fn of(pidfd: &OwnedFd, pid: u32) -> Option<Leader> {
        let mut info = PidfdInfo {
            mask: PIDFD_INFO_CREDS,
            ..Default::default()
        };
        // SAFETY: `info` is a writable `struct pidfd_info` of the size the
        // request number encodes; the kernel writes at most that much.
        if unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info) } != 0
            || info.mask & PIDFD_INFO_CREDS == 0
        {
            return None;
        }
        let mut head = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: pid as i32,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: version 3 takes two data structs, which `data` holds.
        if unsafe { libc::syscall(libc::SYS_capget, &mut head, data.as_mut_ptr()) } != 0 {
            return None;
        }
        Some(Leader {
            euid: info.euid,
            egid: info.egid,
            cap_eff: Caps(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32)),
        })
    }
}

/// The capabilities that count here of a process `pid` (whose pidfd the
/// caller may hold) holding `cap_eff`: none unless it lives in the
/// daemon's user namespace (checked only when it has any).
fn caps_here(cap_eff: Caps, pid: u32, pidfd: Option<&OwnedFd>) -> Caps {
    if cap_eff == Caps::NONE || !same_user_ns(pid, pidfd) {
        return Caps::NONE;
    }
    cap_eff
}

/// `PIDFD_GET_USER_NAMESPACE` of `<linux/pidfd.h>` (Linux 6.11): a
/// descriptor of the process's user namespace.
const PIDFD_GET_USER_NAMESPACE: libc::c_ulong = 0xFF09;

/// Whether process `pid` is in the daemon's user namespace (an error
/// counts as no). Asked of its pidfd where the kernel can (an `ioctl` and
/// an `fstat`), else by `/proc/PID/ns/user` (a path walk through `/proc`:
/// measured ~15 µs of a new channel's set-up).
fn same_user_ns(pid: u32, pidfd: Option<&OwnedFd>) -> bool {
    let ns = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    // The daemon's own namespace never changes: looked up once.
    static OWN: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    let own = OWN.get_or_init(|| ns("/proc/self/ns/user"));
    let theirs = pidfd
        .and_then(user_ns_of_pidfd)
        .or_else(|| ns(&format!("/proc/{pid}/ns/user")));
    match (own, theirs) {
        (Some(a), Some(b)) => *a == b,
        _ => false,
    }
}

/// The (device, inode) of the user namespace of the process behind
/// `pidfd`; `None` on kernels without the `ioctl`.
fn user_ns_of_pidfd(pidfd: &OwnedFd) -> Option<(u64, u64)> {
    // SAFETY: an argument-less ioctl on a descriptor we own.
    let fd = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_USER_NAMESPACE, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just made this descriptor for us alone.
    let ns = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ns.metadata().map(|m| (m.dev(), m.ino())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_status_is_readable() {
        let status = Status::of(std::process::id()).expect("own /proc status");
        // SAFETY: getgroups with a zero-sized buffer only returns the count.
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        assert_eq!(status.groups.len(), n as usize);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(status.euid, unsafe { libc::geteuid() });
    }

    #[test]
    fn pidfd_and_capget_tell_what_the_status_tells() {
        use std::os::fd::FromRawFd;
        let pid = std::process::id();
        // SAFETY: pidfd_open of our own pid; the fd is owned below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        assert!(fd >= 0, "pidfd_open: {}", io::Error::last_os_error());
        // SAFETY: a new descriptor nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let Some(fast) = Leader::of(&pidfd, pid) else {
            eprintln!("*** SKIPPED: no PIDFD_GET_INFO on this kernel ***");
            return;
        };
        let slow = Status::of(pid).expect("own /proc status").leader();
        assert_eq!(
            (fast.euid, fast.egid, fast.cap_eff),
            (slow.euid, slow.egid, slow.cap_eff)
        );
    }

    #[test]
    fn status_lines_are_parsed() {
        let text = "Name:\tx\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t10 20 \nCapInh:\t0000000000000000\nCapEff:\t0000000000000006\n";
        let want = Status {
            euid: 2,
            egid: 6,
            groups: vec![10, 20],
            cap_eff: Caps(6),
        };
        assert_eq!(Status::parse(text), Some(want));
        assert_eq!(Status::parse("Uid:\t1\n"), None);
    }

    #[test]
    fn own_user_namespace_is_the_same() {
        assert!(same_user_ns(std::process::id(), None));
        assert!(!same_user_ns(u32::MAX, None));
        // By the pidfd, as for a channel's peer (`/proc` of a pid that
        // names nothing would say no).
        // SAFETY: pidfd_open of our own pid; a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        // SAFETY: the kernel just made this descriptor for us alone.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        assert!(user_ns_of_pidfd(&pidfd).is_some());
        assert!(same_user_ns(u32::MAX, Some(&pidfd)));
    }

    #[test]
    fn a_thread_maps_to_its_process() {
        let pid = std::process::id();
        assert_eq!(thread_group(pid), Some(pid));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() as u32 }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert_ne!(tid, pid);
        assert_eq!(thread_group(tid), Some(pid));
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn root_needs_no_lookup() {
        assert!(for_caller(0, 0, u32::MAX).groups.is_empty());
        assert_eq!(for_caller(0, 0, u32::MAX).caps, Caps::ALL);
        assert_eq!(for_caller_exact(0, 0, u32::MAX).caps, Caps::NONE);
    }
}
