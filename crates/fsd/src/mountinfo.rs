//! Reading `/proc/self/mountinfo`.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Filesystem type, e.g. `fuse.btfuse`.
    pub fstype: String,
    /// Device number, major part.
    pub major: u32,
    /// Device number, minor part.
    pub minor: u32,
}

/// The topmost mount whose mountpoint is exactly `path`.
pub fn mount_at(path: &Path) -> Option<Mount> {
    let table = std::fs::read("/proc/self/mountinfo").ok()?;
    mount_in(&table, path.as_os_str().as_bytes())
}

/// Filesystem type of the topmost mount whose mountpoint is exactly `path`.
pub fn fstype_at(path: &Path) -> Option<String> {
    mount_at(path).map(|m| m.fstype)
}

fn mount_in(table: &[u8], path: &[u8]) -> Option<Mount> {
    // Later lines are mounted on top of earlier ones: search from the end.
    table.split(|&b| b == b'\n').rev().find_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        let mut fields = line.split(' ');
        let (major, minor) = fields.nth(2)?.split_once(':')?;
        let mountpoint = fields.nth(1)?;
        let fstype = fields.skip_while(|&f| f != "-").nth(1)?;
        if unescape(mountpoint) != path {
            return None;
        }
        Some(Mount {
            fstype: fstype.to_string(),
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"22 1 0:21 / / rw shared:1 - ext4 /dev/sda1 rw\n\
        40 22 0:40 / /mnt/a\\040b rw,nosuid shared:20 - fuse.btfuse btfuse rw,user_id=0\n\
        41 40 0:41 / /mnt/a\\040b rw - tmpfs tmpfs rw\n";

    #[test]
    fn finds_topmost_mount_with_escaped_path() {
        let top = mount_in(TABLE, b"/mnt/a b").unwrap();
        assert_eq!(
            (top.fstype.as_str(), top.major, top.minor),
            ("tmpfs", 0, 41)
        );
        assert_eq!(mount_in(TABLE, b"/").unwrap().fstype, "ext4");
        assert_eq!(mount_in(TABLE, b"/mnt"), None);
    }
}
