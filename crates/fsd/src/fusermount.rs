//! Mounting and unmounting without root, through the setuid `fusermount3`
//! helper of the fuse3 package, as libfuse does: the daemon passes it one
//! end of a socket pair in `_FUSE_COMMFD`; fusermount3 opens `/dev/fuse`,
//! mounts (applying `/etc/fuse.conf`: `allow_other` only with
//! `user_allow_other`, and always `nosuid,nodev`) and sends the open
//! `/dev/fuse` descriptor back over the socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::sock;

/// The helper's name (found on `PATH`).
const FUSERMOUNT: &str = "fusermount3";

/// Runs fusermount3 and turns a failure into an error carrying its message.
fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            io::Error::new(
                e.kind(),
                "mounting as a user other than root needs fusermount3 (package fuse3)",
            )
        } else {
            e
        }
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        // Its messages start with its name already.
        return Err(io::Error::other(msg.trim().to_string()));
    }
    Ok(out)
}

/// Mounts `mountpoint` with the comma-separated `options` and returns the
/// `/dev/fuse` connection.
pub fn mount(mountpoint: &Path, options: &str) -> io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded: both descriptors are open and ours alone.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let their_fd = theirs.as_raw_fd();
    let mut cmd = Command::new(FUSERMOUNT);
    cmd.arg("-o")
        .arg(options)
        .arg("--")
        .arg(mountpoint)
        .env("_FUSE_COMMFD", their_fd.to_string());
    // SAFETY: the closure only calls fcntl, which is async-signal-safe, on a
    // descriptor that stays open until the child has been spawned.
    unsafe {
        cmd.pre_exec(move || {
            // The helper must inherit its end: clear close-on-exec.
            if libc::fcntl(their_fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run(&mut cmd)?;
    drop(theirs);
    let mut byte = [0u8; 1];
    let (n, fds) = sock::recv_with_fds(&ours, &mut byte);
    n?;
    let fuse = fds
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::other(format!("{FUSERMOUNT} sent no /dev/fuse descriptor")))?;
    // SAFETY: F_SETFD on a descriptor we own.
    unsafe { libc::fcntl(fuse.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(fuse)
}

/// Unmounts `mountpoint` (`lazy`: detach even if busy).
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    let mut cmd = Command::new(FUSERMOUNT);
    cmd.arg(if lazy { "-uz" } else { "-u" })
        .arg("--")
        .arg(mountpoint);
    run(&mut cmd).map(drop)
}
