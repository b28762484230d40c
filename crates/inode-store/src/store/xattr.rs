//! Extended attributes: namespaces, their permission rules and the
//! metadata they are charged.

use super::*;

pub(super) enum XattrNs {
    User,
    Trusted,
    Security,
    System,
    Unknown,
}

pub(super) fn xattr_ns(name: &[u8]) -> Result<XattrNs> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    for (prefix, ns) in [
        (&b"user."[..], XattrNs::User),
        (b"trusted.", XattrNs::Trusted),
        (b"security.", XattrNs::Security),
        (b"system.", XattrNs::System),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return if rest.is_empty() {
                Err(Errno::EINVAL)
            } else {
                Ok(ns)
            };
        }
    }
    Ok(XattrNs::Unknown)
}

impl Inner {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn setxattr(
        &self,
        c: &Creds,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        flags: i32,
        pool: &BlockPool,
    ) -> Result<()> {
        if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
            return Err(Errno::EINVAL);
        }
        let ns = xattr_ns(name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        if acl::is_acl_name(name) {
            acl::check_format(value)?;
        }
        let node = self.node(ino)?;
        if let Some(r) = acl::default_on_non_directory(name, node.kind, Some(value)) {
            return r;
        }
        let mut st = node.st.write();
        Inner::xattr_write_allowed(c, &node, &st, &ns)?;
        let old = st.xattrs.get(name).map(|v| xattr_cost(name, v));
        if flags & libc::XATTR_CREATE != 0 && old.is_some() {
            return Err(Errno::EEXIST);
        }
        if flags & libc::XATTR_REPLACE != 0 && old.is_none() {
            return Err(Errno::ENODATA);
        }
        let new = xattr_cost(name, value);
        match old {
            Some(old) if old >= new => pool.uncharge_meta(old - new),
            Some(old) => pool.charge_meta(new - old)?,
            None => pool.charge_meta(new)?,
        }
        st.xattrs.insert(name.to_vec(), value.to_vec());
        st.ctime = Timespec::now();
        Ok(())
    }

    /// `xattr_permission(MAY_READ or MAY_WRITE)`, `mask` being [`R`] or
    /// [`W`]: trusted.* needs CAP_SYS_ADMIN, user.* exists only on regular
    /// files and directories and, like unknown namespaces, needs `mask`;
    /// `hidden` is the error where the namespace is out of the caller's
    /// reach (`ENODATA` to readers, `EPERM` to writers).
    fn xattr_permission(
        c: &Creds,
        node: &Node,
        st: &Meta,
        ns: &XattrNs,
        mask: u32,
        hidden: Errno,
    ) -> Result<()> {
        let o = node.owner_of(st);
        match ns {
            XattrNs::Security | XattrNs::System => Ok(()),
            XattrNs::Trusted if !c.capable(Caps::SYS_ADMIN) => Err(hidden),
            XattrNs::Trusted => Ok(()),
            XattrNs::User if !matches!(node.kind, FileKind::Regular | FileKind::Directory) => {
                Err(hidden)
            }
            XattrNs::User | XattrNs::Unknown => o.check(c, mask),
        }
    }

    /// `xattr_permission(MAY_WRITE)` (with the sticky-directory rule for
    /// user.*) + the LSM capability rule + handler.
    pub(super) fn xattr_write_allowed(
        c: &Creds,
        node: &Node,
        st: &Meta,
        ns: &XattrNs,
    ) -> Result<()> {
        let o = node.owner_of(st);
        if matches!(ns, XattrNs::User)
            && node.kind == FileKind::Directory
            && st.perm & S_ISVTX != 0
            && !o.owner_or_capable(c)
        {
            return Err(Errno::EPERM);
        }
        Inner::xattr_permission(c, node, st, ns, W, Errno::EPERM)?;
        match ns {
            XattrNs::System | XattrNs::Unknown => Err(Errno::EOPNOTSUPP),
            // cap_inode_setxattr: security.* needs CAP_SYS_ADMIN.
            XattrNs::Security if !c.capable(Caps::SYS_ADMIN) => Err(Errno::EPERM),
            _ => Ok(()),
        }
    }

    pub(super) fn getxattr(&self, c: &Creds, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        let ns = xattr_ns(name)?;
        let node = self.node(ino)?;
        let st = node.st.read();
        Inner::xattr_permission(c, &node, &st, &ns, R, Errno::ENODATA)?;
        if matches!(ns, XattrNs::System | XattrNs::Unknown) {
            return Err(Errno::EOPNOTSUPP);
        }
        st.xattrs.get(name).cloned().ok_or(Errno::ENODATA)
    }

    pub(super) fn listxattr(&self, c: &Creds, ino: Ino) -> Result<Vec<u8>> {
        let node = self.node(ino)?;
        let st = node.st.read();
        let mut out = Vec::new();
        // tmpfs lists its xattr tree in descending name order.
        for name in st.xattrs.keys().rev() {
            if name.starts_with(b"trusted.") && !c.capable(Caps::SYS_ADMIN) {
                continue;
            }
            out.extend_from_slice(name);
            out.push(0);
            // No caller can receive more (listxattr(2) then fails with
            // E2BIG): stop there, however many attributes there are.
            if out.len() > XATTR_LIST_MAX {
                return Err(Errno::E2BIG);
            }
        }
        Ok(out)
    }

    pub(super) fn removexattr(
        &self,
        c: &Creds,
        ino: Ino,
        name: &[u8],
        pool: &BlockPool,
    ) -> Result<()> {
        let ns = xattr_ns(name)?;
        let node = self.node(ino)?;
        if let Some(r) = acl::default_on_non_directory(name, node.kind, None) {
            return r;
        }
        let mut st = node.st.write();
        Inner::xattr_write_allowed(c, &node, &st, &ns)?;
        let value = st.xattrs.remove(name).ok_or(Errno::ENODATA)?;
        pool.uncharge_meta(xattr_cost(name, &value));
        st.ctime = Timespec::now();
        Ok(())
    }
}

impl Inner {
    /// What an xattr change of `ino` touches: its attributes, unless it is
    /// a directory (an ACL there reaches every path below) or a symlink.
    fn xattr_touch(&self, ino: Ino, change: &mut Change<'_>) {
        if let Ok(node) = self.node(ino) {
            if !matches!(node.kind, FileKind::Directory | FileKind::Symlink) {
                change.touches(&node.attrs_touch());
            }
        }
    }
}

impl Store {
    /// setxattr(2). `flags`: XATTR_CREATE / XATTR_REPLACE.
    pub fn setxattr(
        &self,
        c: &Creds,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<()> {
        let mut change = self.change();
        let t = self.tree.read();
        t.xattr_touch(ino, &mut change);
        t.setxattr(c, ino, name, value, flags, &self.pool)
    }

    /// getxattr(2): the whole value.
    pub fn getxattr(&self, c: &Creds, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        self.tree.read().getxattr(c, ino, name)
    }

    /// listxattr(2): NUL-terminated names ("trusted.*" only with CAP_SYS_ADMIN).
    pub fn listxattr(&self, c: &Creds, ino: Ino) -> Result<Vec<u8>> {
        self.tree.read().listxattr(c, ino)
    }

    /// removexattr(2).
    pub fn removexattr(&self, c: &Creds, ino: Ino, name: &[u8]) -> Result<()> {
        let mut change = self.change();
        let t = self.tree.read();
        t.xattr_touch(ino, &mut change);
        t.removexattr(c, ino, name, &self.pool)
    }
}
