//! Caller identity for requests that arrive through the kernel.
//!
//! FUSE tells the daemon only the caller's uid, gid and pid. Supplementary
//! groups matter for permission checks, so for unprivileged callers they are
//! read from `/proc/<pid>/status`. Root needs none: it bypasses group checks.

use inode_store::Creds;

/// Builds the credentials of a FUSE request's caller.
pub fn for_caller(uid: u32, gid: u32, pid: u32) -> Creds {
    let groups = if uid == 0 || pid == 0 {
        Vec::new()
    } else {
        supplementary_groups(pid).unwrap_or_default()
    };
    Creds { uid, gid, groups }
}

/// The process (thread group) that thread `tid` belongs to. FUSE requests
/// carry the calling thread's id; the fast path files clients by process.
/// `None` when the thread is gone or its status cannot be parsed.
pub fn thread_group(tid: u32) -> Option<u32> {
    status_field(tid, "Tgid:")?.trim().parse().ok()
}

/// The value of one line of `/proc/<pid>/status` (works for thread ids too).
fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|l| l.strip_prefix(field))?;
    Some(value.to_owned())
}

/// Reads the `Groups:` line of `/proc/<pid>/status`.
///
/// `None` when the process is gone or the file cannot be parsed; the caller
/// then gets no supplementary groups, which can only deny, never grant.
pub fn supplementary_groups(pid: u32) -> Option<Vec<u32>> {
    let line = status_field(pid, "Groups:")?;
    line.split_whitespace().map(|g| g.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_groups_are_readable() {
        let groups = supplementary_groups(std::process::id()).expect("own /proc status");
        // SAFETY: getgroups with a zero-sized buffer only returns the count.
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        assert_eq!(groups.len(), n as usize);
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
    }
}
