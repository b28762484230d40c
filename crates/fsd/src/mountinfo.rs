//! Which mount is where: btfuse mounts as the shared parser
//! (`proto::mountinfo`) reads `/proc/self/mountinfo`, and whether anything
//! at all is mounted on a directory (`statx`).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use proto::mountinfo::{parse, Capacity, MountEntry, MountTable};

/// Device number (`major`, `minor`) of the btfuse mount on top at exactly
/// `path` (absolute, canonical), if the topmost mount there is one.
pub fn btfuse_at(path: &Path) -> Option<(u32, u32)> {
    let table = std::fs::read("/proc/self/mountinfo").ok()?;
    btfuse_in(&table, path.as_os_str().as_bytes())
}

fn btfuse_in(text: &[u8], path: &[u8]) -> Option<(u32, u32)> {
    let room = Capacity::of(text);
    let mut entries = vec![MountEntry::default(); room.entries];
    let mut arena = vec![0u8; room.text];
    let mut table = MountTable::new(&mut entries, &mut arena);
    parse(text, &mut table);
    // The table keeps mountpoints without trailing slash ("" for "/").
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let path = &path[..end];
    let at_path = |e: &&MountEntry| table.text(e) == path;
    let mount = table.mounts().iter().find(at_path)?;
    // A later mount of another filesystem at the same point covers it.
    let covered = table
        .exclusions()
        .iter()
        .filter(at_path)
        .any(|e| e.seq > mount.seq);
    (!covered).then_some((mount.major, mount.minor))
}

/// Whether `path` is the root of a mount (something is mounted on it).
pub fn is_mount_root(path: &Path) -> io::Result<bool> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all-zero is a valid statx (a plain struct of integers).
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statx buffer the kernel fills.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c_path.as_ptr(), 0, 0, &mut stx) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let mount_root = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if stx.stx_attributes_mask & mount_root == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(stx.stx_attributes & mount_root != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"22 1 0:21 / / rw shared:1 - ext4 /dev/sda1 rw\n\
        40 22 0:40 / /mnt/a\\040b rw,nosuid shared:20 - fuse.btfuse btfuse rw,user_id=0\n\
        41 22 0:41 / /mnt/c rw - fuse.btfuse btfuse rw\n\
        42 41 0:42 / /mnt/c rw - tmpfs tmpfs rw\n";

    #[test]
    fn finds_the_btfuse_mount_on_top_with_escaped_path() {
        assert_eq!(btfuse_in(TABLE, b"/mnt/a b"), Some((0, 40)));
        assert_eq!(btfuse_in(TABLE, b"/mnt/a b/"), Some((0, 40)));
        // Covered by a tmpfs mounted later at the same point.
        assert_eq!(btfuse_in(TABLE, b"/mnt/c"), None);
        assert_eq!(btfuse_in(TABLE, b"/"), None);
        assert_eq!(btfuse_in(TABLE, b"/mnt"), None);
    }

    #[test]
    fn the_root_is_a_mount_root_and_its_subdirectories_are_not() {
        assert!(is_mount_root(Path::new("/")).unwrap());
        let dir = std::env::temp_dir().join(format!("btfuse-mountroot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let below_root = is_mount_root(&dir);
        std::fs::remove_dir(&dir).unwrap();
        // /tmp may itself be a mount; a fresh directory inside it is not.
        assert!(!below_root.unwrap());
    }
}
