//! Attributes and permissions in use: `setattr` (mode, owner, size,
//! times) and `access`.

use super::*;

impl Inner {
    /// `fh_write`: `Some(true)` when the request came with an open handle on
    /// this inode that is writable (ftruncate), `Some(false)` when the handle
    /// is not writable.
    pub(super) fn setattr(
        &self,
        c: &Creds,
        ino: Ino,
        set: &SetAttr,
        fh_write: Option<bool>,
        pool: &BlockPool,
    ) -> Result<Attr> {
        let node = self.node(ino)?;
        let mut st = node.st.write();
        let o = node.owner_of(&st);
        if let Some(size) = set.size {
            match node.kind {
                FileKind::Directory => return Err(Errno::EISDIR),
                FileKind::Regular => {}
                _ => return Err(Errno::EINVAL),
            }
            match fh_write {
                Some(true) => {}
                Some(false) => return Err(Errno::EINVAL),
                None => o.check(c, W)?,
            }
            if size > MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
        }
        if let Some(uid) = set.uid {
            // chown_ok: the owner "changing" to itself, or CAP_CHOWN.
            if !((c.uid == st.uid && uid == st.uid) || c.capable(Caps::CHOWN)) {
                return Err(Errno::EPERM);
            }
        }
        if let Some(gid) = set.gid {
            // chgrp_ok: the owner moving to one of its groups, or CAP_CHOWN.
            if !((c.uid == st.uid && (c.in_group(gid) || gid == st.gid)) || c.capable(Caps::CHOWN))
            {
                return Err(Errno::EPERM);
            }
        }
        if set.mode.is_some() && !o.owner_or_capable(c) {
            return Err(Errno::EPERM);
        }
        match (set.atime, set.mtime) {
            (None, None) => {}
            // utimensat(UTIME_NOW, UTIME_NOW): owner, CAP_FOWNER, or write access.
            (Some(TimeSet::Now), Some(TimeSet::Now)) => {
                if !o.owner_or_capable(c) {
                    o.check(c, W)?;
                }
            }
            // Any explicit time (or a lone UTIME_NOW): owner or CAP_FOWNER.
            _ => {
                if !o.owner_or_capable(c) {
                    return Err(Errno::EPERM);
                }
            }
        }

        let now = Timespec::now();
        if let Some(size) = set.size {
            st.perm &= !o.kill_on_write(c);
            st.drop_file_caps(pool);
            // Like tmpfs: truncate(2) and ftruncate(2) update mtime and
            // ctime even when the size does not change.
            st.file.truncate(pool, size);
            st.mtime = now;
            st.ctime = now;
        }
        if let Some(mode) = set.mode {
            let mut perm = (mode & 0o7777) as u16;
            let gid = set.gid.unwrap_or(st.gid);
            if perm & S_ISGID != 0 && !o.in_group_or_capable(c, gid) {
                perm &= !S_ISGID;
            }
            st.perm = perm;
            st.ctime = now;
        }
        if set.uid.is_some() || set.gid.is_some() || set.chown {
            let kill = node.owner_of(&st).kill_on_chown(c);
            st.perm &= !kill;
            if node.kind != FileKind::Directory {
                st.drop_file_caps(pool);
            }
            if let Some(uid) = set.uid {
                st.uid = uid;
            }
            if let Some(gid) = set.gid {
                st.gid = gid;
            }
            st.ctime = now;
        }
        if let Some(a) = set.atime {
            *node.atime.lock() = resolve(a, now);
            st.ctime = now;
        }
        if let Some(m) = set.mtime {
            st.mtime = resolve(m, now);
            st.ctime = now;
        }
        if let Some(ct) = set.ctime {
            st.ctime = ct;
        }
        Ok(node.attr_of(&st))
    }

    pub(super) fn access(&self, c: &Creds, ino: Ino, mask: i32) -> Result<()> {
        let node = self.node(ino)?;
        if mask & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
            return Err(Errno::EINVAL);
        }
        if mask == libc::F_OK {
            return Ok(());
        }
        node.owner().check(c, mask as u32)
    }
}

impl Store {
    /// chmod / chown / truncate / utimens. With `fh` (an open file) a size
    /// change needs the file to be open for writing instead of write
    /// permission (a kernel-opened inode is: the kernel sends a truncate
    /// through a descriptor only for one open for writing).
    pub fn setattr(&self, c: &Creds, ino: Ino, set: &SetAttr, fh: Option<FileRef>) -> Result<Attr> {
        let mut change = self.change();
        let t = self.tree.read();
        if let Ok(node) = t.node(ino) {
            // A directory's or symlink's attributes stay global: a
            // directory's permissions reach every path below it.
            if !matches!(node.kind, FileKind::Directory | FileKind::Symlink) {
                change.touches(&node.attrs_touch());
            }
        }
        let fh_write = match fh {
            None => None,
            Some(FileRef::Inode(of)) => (of == ino).then_some(true),
            Some(FileRef::Handle(fh)) => {
                let h = self.handles.read();
                let h = h.get(&fh).ok_or(Errno::EBADF)?;
                if h.node.ino == ino {
                    Some(h.writable())
                } else {
                    None
                }
            }
        };
        t.setattr(c, ino, set, fh_write, &self.pool)
    }

    /// access(2): F_OK or any of R_OK / W_OK / X_OK.
    pub fn access(&self, c: &Creds, ino: Ino, mask: i32) -> Result<()> {
        self.tree.read().access(c, ino, mask)
    }
}
