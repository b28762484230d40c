//! Whether the daemon behind a channel still exists, while a call waits
//! for it.

use crate::sys;

/// Liveness of the daemon while a call waits for it, asked by shm_ring after
/// each idle sleep slice. Gone when its socket hangs up (`POLLHUP`: the
/// daemon process exited, or its thread serving this channel dropped it;
/// if the program closed our socket behind our back, `POLLNVAL`,
/// `kill(pid, 0)` decides).
///
/// The rule is the kernel's for a FUSE request: a call waits as long as
/// its daemon exists, however long that takes. A daemon stopped (SIGSTOP,
/// a debugger) or merely slow is alive, so the call waits and completes
/// once it runs again, and the process keeps its channels and with them
/// its open files; only a daemon that is gone ends the wait (`EIO`, and
/// the mount is left to the kernel). Signals do not end the wait either:
/// a handler runs during it (the futex sleep is simply resumed), as it
/// does while a FUSE request waits for a daemon that does not implement
/// `INTERRUPT` (btfuse's FUSE door does not), and a fatal signal ends the
/// process.
pub(super) struct DaemonAlive {
    pub(super) sock: i32,
    pub(super) pid: i32,
}

impl shm_ring::Liveness for DaemonAlive {
    fn is_alive(&mut self) -> bool {
        match sys::poll1(self.sock, libc::POLLIN, 0) {
            Ok(rev) if rev & libc::POLLNVAL != 0 => pid_alive(self.pid),
            Ok(rev) => rev & (libc::POLLHUP | libc::POLLERR) == 0,
            Err(_) => pid_alive(self.pid),
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    pid > 0 && !matches!(sys::sc!(libc::SYS_kill, pid, 0), Err(libc::ESRCH))
}
