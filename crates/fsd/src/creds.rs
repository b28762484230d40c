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

/// Reads the `Groups:` line of `/proc/<pid>/status`.
///
/// `None` when the process is gone or the file cannot be parsed; the caller
/// then gets no supplementary groups, which can only deny, never grant.
pub fn supplementary_groups(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
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
    fn root_needs_no_lookup() {
        assert!(for_caller(0, 0, u32::MAX).groups.is_empty());
    }
}
