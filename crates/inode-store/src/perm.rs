//! Permission rules (Linux `generic_permission` without ACLs), decided by
//! the caller's capabilities, never by its uid.

use crate::{Caps, Creds, Errno, FileKind, Result};

/// Read permission bit of a class.
pub(crate) const R: u32 = 4;
/// Write permission bit of a class.
pub(crate) const W: u32 = 2;
/// Execute / search permission bit of a class.
pub(crate) const X: u32 = 1;

pub(crate) const S_ISUID: u16 = 0o4000;
pub(crate) const S_ISGID: u16 = 0o2000;
pub(crate) const S_ISVTX: u16 = 0o1000;
pub(crate) const S_IXGRP: u16 = 0o010;

/// The owner / group / mode of one inode, as the checks need them.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Owner {
    pub(crate) kind: FileKind,
    pub(crate) perm: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Owner {
    /// `mask` (R|W|X) allowed for `c`? EACCES otherwise (Linux
    /// `generic_permission`).
    ///
    /// The mode bits first; then directories yield to `CAP_DAC_READ_SEARCH`
    /// for read and search and to `CAP_DAC_OVERRIDE` for anything; other
    /// files yield to `CAP_DAC_READ_SEARCH` for a plain read and to
    /// `CAP_DAC_OVERRIDE` for read and write, and for execute only if some
    /// execute bit is set.
    pub(crate) fn check(&self, c: &Creds, mask: u32) -> Result<()> {
        let mask = mask & 7;
        let p = u32::from(self.perm);
        let class = if c.uid == self.uid {
            (p >> 6) & 7
        } else if c.in_group(self.gid) {
            (p >> 3) & 7
        } else {
            p & 7
        };
        if class & mask == mask {
            return Ok(());
        }
        let overridden = if self.kind == FileKind::Directory {
            (mask & W == 0 && c.capable(Caps::DAC_READ_SEARCH)) || c.capable(Caps::DAC_OVERRIDE)
        } else {
            (mask == R && c.capable(Caps::DAC_READ_SEARCH))
                || ((mask & X == 0 || self.perm & 0o111 != 0) && c.capable(Caps::DAC_OVERRIDE))
        };
        if overridden {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// `inode_owner_or_capable`: the owner, or `CAP_FOWNER`.
    pub(crate) fn owner_or_capable(&self, c: &Creds) -> bool {
        c.uid == self.uid || c.capable(Caps::FOWNER)
    }

    /// `in_group_or_capable`: in group `gid`, or `CAP_FSETID`.
    pub(crate) fn in_group_or_capable(&self, c: &Creds, gid: u32) -> bool {
        c.in_group(gid) || c.capable(Caps::FSETID)
    }

    /// Sticky-directory rule (`check_sticky`): may `c` remove `victim`
    /// from this directory?
    pub(crate) fn sticky_allows(&self, c: &Creds, victim: &Owner) -> bool {
        self.perm & S_ISVTX == 0
            || c.uid == victim.uid
            || c.uid == self.uid
            || c.capable(Caps::FOWNER)
    }

    /// Mode bits to clear when a caller writes or truncates (Linux
    /// `setattr_should_drop_suidgid`): S_ISUID always; S_ISGID if
    /// group-executable or the caller is not in the file's group. Callers
    /// with `CAP_FSETID` and non-regular files keep them.
    pub(crate) fn kill_on_write(&self, c: &Creds) -> u16 {
        if c.capable(Caps::FSETID) || self.kind != FileKind::Regular {
            return 0;
        }
        let mut kill = self.perm & S_ISUID;
        if self.perm & S_ISGID != 0 && (self.perm & S_IXGRP != 0 || !c.in_group(self.gid)) {
            kill |= S_ISGID;
        }
        kill
    }

    /// Mode bits cleared by chown (Linux `chown_common`): for non-directories
    /// S_ISUID always (even with `CAP_FSETID`), S_ISGID if group-executable
    /// or the caller is neither in the file's group nor holds `CAP_FSETID`.
    pub(crate) fn kill_on_chown(&self, c: &Creds) -> u16 {
        if self.kind == FileKind::Directory {
            return 0;
        }
        let mut kill = self.perm & S_ISUID;
        if self.perm & S_ISGID != 0
            && (self.perm & S_IXGRP != 0 || !self.in_group_or_capable(c, self.gid))
        {
            kill |= S_ISGID;
        }
        kill
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(perm: u16, uid: u32, gid: u32) -> Owner {
        Owner {
            kind: FileKind::Regular,
            perm,
            uid,
            gid,
        }
    }

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Creds {
        Creds::user(uid, gid, groups.to_vec())
    }

    #[test]
    fn owner_class_wins_over_group_and_other() {
        // Owner without read is denied even though group/other may read.
        let f = file(0o077, 1000, 100);
        assert_eq!(f.check(&user(1000, 100, &[]), R), Err(Errno::EACCES));
        assert_eq!(f.check(&user(1001, 100, &[]), R), Ok(()));
        assert_eq!(f.check(&user(1002, 7, &[]), R | W), Ok(()));
    }

    #[test]
    fn supplementary_group_selects_group_class() {
        let f = file(0o640, 1000, 100);
        assert_eq!(f.check(&user(1001, 5, &[100]), R), Ok(()));
        assert_eq!(f.check(&user(1001, 5, &[100]), W), Err(Errno::EACCES));
        assert_eq!(f.check(&user(1001, 5, &[]), R), Err(Errno::EACCES));
    }

    #[test]
    fn root_needs_an_exec_bit_to_execute_files_but_not_dirs() {
        let root = Creds::root();
        assert_eq!(file(0o000, 1, 1).check(&root, R | W), Ok(()));
        assert_eq!(file(0o644, 1, 1).check(&root, X), Err(Errno::EACCES));
        assert_eq!(file(0o001, 1, 1).check(&root, X), Ok(()));
        let dir = Owner {
            kind: FileKind::Directory,
            perm: 0,
            uid: 1,
            gid: 1,
        };
        assert_eq!(dir.check(&root, X | W), Ok(()));
    }
}
