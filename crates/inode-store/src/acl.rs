//! The format check the kernel makes on a POSIX ACL extended attribute
//! (`system.posix_acl_access`, `system.posix_acl_default`) before any
//! filesystem sees it (`posix_acl_from_xattr`).
//!
//! The store keeps no ACLs (setting a well-formed one answers
//! `EOPNOTSUPP`, as on a FUSE mount without ACL support), but a malformed
//! value must fail as the kernel fails it, with `EINVAL` (or `EOPNOTSUPP`
//! for an unknown version), and a default ACL of a file that is not a
//! directory as the kernel refuses it, whichever door the call came
//! through.

use crate::{Errno, FileKind, Result};

/// `POSIX_ACL_XATTR_VERSION`.
const VERSION: u32 = 2;
/// `struct posix_acl_xattr_header`: a little-endian `u32` version.
const HEADER: usize = 4;
/// `struct posix_acl_xattr_entry`: `u16` tag, `u16` perm, `u32` id.
const ENTRY: usize = 8;

/// Entry tags (`ACL_USER_OBJ` ... `ACL_OTHER`).
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// Whether `name` is one of the two POSIX ACL attributes.
pub(crate) fn is_acl_name(name: &[u8]) -> bool {
    name == b"system.posix_acl_access" || name == b"system.posix_acl_default"
}

/// The kernel's answer, before it refuses ACLs, to setting ACL attribute
/// `name` of a file of `kind` to `value` (`None`: removing it): a default
/// ACL belongs to directories only, so on any other file but a symlink
/// one is refused with `EACCES` and none (an empty value, a removal) is
/// nothing to do. `None` when the kernel goes on (to `EOPNOTSUPP` on a
/// FUSE mount without ACL support).
pub(crate) fn default_on_non_directory(
    name: &[u8],
    kind: FileKind,
    value: Option<&[u8]>,
) -> Option<Result<()>> {
    if name != b"system.posix_acl_default"
        || matches!(kind, FileKind::Directory | FileKind::Symlink)
    {
        return None;
    }
    Some(match value {
        Some(v) if !v.is_empty() => Err(Errno::EACCES),
        _ => Ok(()),
    })
}

/// `posix_acl_from_xattr`'s verdict on `value` (an empty value removes
/// the ACL and is always well-formed).
pub(crate) fn check_format(value: &[u8]) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    let Some((header, entries)) = value.split_first_chunk::<HEADER>() else {
        return Err(Errno::EINVAL);
    };
    if u32::from_le_bytes(*header) != VERSION {
        return Err(Errno::EOPNOTSUPP);
    }
    if entries.len() % ENTRY != 0 {
        return Err(Errno::EINVAL);
    }
    for e in entries.chunks_exact(ENTRY) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        match tag {
            USER_OBJ | GROUP_OBJ | MASK | OTHER => {}
            // make_kuid / make_kgid: (uid_t)-1 maps to no id.
            USER | GROUP if id != u32::MAX => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(version: u32, entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = version.to_le_bytes().to_vec();
        for &(tag, perm, id) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    #[test]
    fn well_formed_acls_pass() {
        assert_eq!(check_format(&[]), Ok(()));
        assert_eq!(check_format(&acl(2, &[])), Ok(()));
        let full = [
            (USER_OBJ, 7, 0),
            (USER, 4, 1000),
            (GROUP_OBJ, 5, 0),
            (GROUP, 4, 100),
            (MASK, 7, 0),
            (OTHER, 0, 0),
        ];
        assert_eq!(check_format(&acl(2, &full)), Ok(()));
    }

    #[test]
    fn malformed_acls_fail_like_the_kernel() {
        assert_eq!(check_format(b"xyz"), Err(Errno::EINVAL), "short header");
        assert_eq!(check_format(b"garbage!"), Err(Errno::EOPNOTSUPP), "version");
        let mut ragged = acl(2, &[(USER_OBJ, 7, 0)]);
        ragged.push(0);
        assert_eq!(check_format(&ragged), Err(Errno::EINVAL), "entry size");
        assert_eq!(
            check_format(&acl(2, &[(0x40, 7, 0)])),
            Err(Errno::EINVAL),
            "tag"
        );
        assert_eq!(
            check_format(&acl(2, &[(USER, 7, u32::MAX)])),
            Err(Errno::EINVAL),
            "id"
        );
    }
}
