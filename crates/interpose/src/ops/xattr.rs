//! Extended attributes of a path or an open file.

use super::*;

/// What an xattr call acts on: a handle (`f*xattr`) or a path (`*xattr`,
/// `l*xattr`).
pub(crate) struct XattrAt<'a> {
    mount: usize,
    fh: u64,
    path: &'a [u8],
    flags: u32,
}

impl<'a> XattrAt<'a> {
    /// The file behind a fast-path fd.
    pub(crate) fn file(f: &FileRef) -> R<XattrAt<'static>> {
        Ok(XattrAt {
            mount: f.mount,
            fh: f.fh()?,
            path: b"",
            flags: libc::AT_EMPTY_PATH as u32,
        })
    }

    /// A resolved path; `nofollow` for the `l*` forms.
    pub(crate) fn path(t: &'a Target, nofollow: bool) -> XattrAt<'a> {
        let flags = if nofollow {
            libc::AT_SYMLINK_NOFOLLOW as u32
        } else {
            0
        };
        XattrAt {
            mount: t.mount,
            fh: t.base,
            path: t.rel(),
            flags,
        }
    }

    /// Whether the metadata cache tells that `name` is absent: a
    /// `security.*` name (no permission guards those) of a file the cache
    /// holds, for this caller and now, as having no extended attribute
    /// (`ls -l` asks for `security.selinux` of every file it lists).
    fn known_absent(&self, name: &[u8]) -> bool {
        if !unguarded(name) {
            return false;
        }
        let key = if self.path.is_empty() {
            metacache::Key::fstat(self.mount, self.fh)
        } else {
            metacache::Key {
                mount: self.mount,
                base: self.fh,
                path: self.path,
                how: if self.flags & libc::AT_SYMLINK_NOFOLLOW as u32 != 0 {
                    metacache::NOFOLLOW
                } else {
                    metacache::FOLLOW
                },
            }
        };
        let known = channel::now(self.mount)
            .and_then(|now| attrs::known(&key, 0, now))
            .is_some_and(|a| a.is_ok_and(|a| a.flags & WireAttr::NO_XATTRS != 0));
        if known {
            metacache::count(true);
        }
        known
    }

    /// `getxattr` (`name`) or `listxattr` (`None`) into `out` (`len`
    /// bytes; 0 asks for the size only).
    pub(crate) fn get(&self, name: Option<&[u8]>, out: *mut u8, len: usize) -> R<usize> {
        check_xattr_name(name.unwrap_or(b""))?;
        if name.is_some_and(|n| self.known_absent(n)) {
            return Err(Fail::Errno(libc::ENODATA));
        }
        let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
        let (bulk, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
        let size = len.min(blen) as u64;
        let mut reply = [0u8; REPLY_BUF];
        let (base, flags) = (self.fh, self.flags);
        let called = match name {
            Some(name) => {
                let get = ops::Getxattr {
                    base,
                    size,
                    flags,
                    _pad: 0,
                };
                ch.call(&get, self.path, name, &mut reply).map(|(o, _)| o)
            }
            None => {
                let list = ops::Listxattr {
                    base,
                    size,
                    flags,
                    _pad: 0,
                };
                ch.call(&list, self.path, b"", &mut reply).map(|(o, _)| o)
            }
        };
        let n = match called {
            Ok(out) => out.count as usize,
            Err(CallError::Chan(_)) => return Err(Fail::Errno(libc::EIO)),
            Err(e) => return Err(e.into()),
        };
        if len > 0 {
            if n > len.min(blen) {
                return Err(Fail::Errno(libc::ERANGE));
            }
            // SAFETY: `n` bytes of our bulk area, which is ours until `ch`
            // drops; the caller's side is fault-tolerant.
            unsafe { uaccess::copy_out(out, bulk, n) }.map_err(|_| Fail::Errno(libc::EFAULT))?;
        }
        Ok(n)
    }

    /// `setxattr`.
    pub(crate) fn set(&self, name: &[u8], value: *const u8, len: usize, flags: c_int) -> R<()> {
        check_xattr_name(name)?;
        if len > proto::channel_config().bulk_len as usize {
            return Err(Fail::Errno(libc::E2BIG));
        }
        let mut ch = channel::acquire(self.mount).map_err(|_| Fail::Errno(libc::EIO))?;
        let (bulk, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
        debug_assert!(len <= blen);
        // SAFETY: the caller's `len` bytes (fault-tolerant) into our bulk
        // area of `blen >= len` (every channel has the protocol's shape).
        unsafe { uaccess::copy_in(bulk, value, len) }.map_err(|_| Fail::Errno(libc::EFAULT))?;
        let set = ops::Setxattr {
            base: self.fh,
            size: len as u64,
            flags: self.flags,
            xattr_flags: flags as u32,
        };
        let mut reply = [0u8; REPLY_BUF];
        match ch.call(&set, self.path, name, &mut reply) {
            Ok(_) => Ok(()),
            Err(CallError::Chan(_)) => Err(Fail::Errno(libc::EIO)),
            Err(e) => Err(e.into()),
        }
    }

    /// `removexattr`.
    pub(crate) fn remove(&self, name: &[u8]) -> R<()> {
        check_xattr_name(name)?;
        let remove = ops::Removexattr {
            base: self.fh,
            flags: self.flags,
            _pad: 0,
        };
        request(self.mount, &remove, self.path, name).map(drop)
    }
}

/// Whether `name` is a `security.*` attribute: no permission guards
/// reading those, so the cache's word that a file has no attribute at all
/// answers for any caller who may see the file.
fn unguarded(name: &[u8]) -> bool {
    name.starts_with(b"security.") && name.len() > b"security.".len()
}

/// Whether `getxattr` (`lgetxattr` with `nofollow`) of the caller's path
/// `p` and `name` is known to fail with `ENODATA` from the cache's entry
/// under the path's string alone (see [`stat_abs`]), before any
/// resolution: `ls -l` asks for `security.selinux` of every file right
/// after it `lstat`ed it by that same string.
pub(crate) fn absent_by_string(p: *const c_char, nofollow: bool, name: &[u8]) -> bool {
    if !unguarded(name) {
        return false;
    }
    matches!(stat_abs(libc::AT_FDCWD, p, nofollow), Abs::Hit(_, Ok(a)) if a.flags & WireAttr::NO_XATTRS != 0)
}

/// The kernel refuses attribute names over 255 bytes with `ERANGE`.
fn check_xattr_name(name: &[u8]) -> R<()> {
    if name.len() > 255 {
        return Err(Fail::Errno(libc::ERANGE));
    }
    Ok(())
}
