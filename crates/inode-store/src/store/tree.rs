//! The namespace: lookups, creating and removing names, links, rename,
//! and the lookup references of front doors that cache entries.

use super::*;

impl Inner {
    /// What adding or removing a name in directory `dir` touches: its
    /// names and attributes, and the listing of its parent (which holds
    /// them).
    pub(super) fn entries_touch(&self, dir: Ino) -> [Ino; 2] {
        match self.node(dir) {
            Ok(d) => d.attrs_touch(),
            Err(_) => [dir, 0],
        }
    }

    /// What removing the name of `victim` from `dir` touches, if it can be
    /// told (`None`: global): the name's directory and the victim's
    /// attributes. Not for a directory (its paths go) or a symlink (paths
    /// went through it), nor for a file with other names elsewhere (their
    /// listings hold its link count).
    fn removal_touch(&self, dir: Ino, victim: &Node) -> Option<[Ino; 3]> {
        let plain = !matches!(victim.kind, FileKind::Directory | FileKind::Symlink);
        let [d, p] = self.entries_touch(dir);
        (plain && victim.parent.load(Ordering::Relaxed) == dir).then_some([d, p, victim.ino])
    }

    /// What a rename touches, if it can be told (`None`: global): a plain
    /// file (see [`Inner::removal_touch`]) moving, over another one or
    /// none, between two directories' listings.
    fn rename_touch(
        &self,
        op: Ino,
        oname: &[u8],
        np: Ino,
        nname: &[u8],
        flags: RenameFlags,
    ) -> Option<[Ino; 6]> {
        if flags.exchange {
            return None;
        }
        let src = self.node(self.child(op, oname)?).ok()?;
        let [od, opp, x] = self.removal_touch(op, &src)?;
        let [nd, npp] = self.entries_touch(np);
        let y = match self.child(np, nname) {
            None => 0,
            Some(y) if y == x => x,
            Some(y) => self.removal_touch(np, &*self.node(y).ok()?)?[2],
        };
        Some([od, opp, nd, npp, x, y])
    }

    /// A name a new entry may take in directory `parent`: valid, and
    /// neither `.`, `..` nor taken (`EEXIST`).
    fn check_new_name(&self, parent: Ino, name: &[u8]) -> Result<()> {
        if is_dot(name) {
            return Err(Errno::EEXIST);
        }
        check_name(name)?;
        if self.child(parent, name).is_some() {
            return Err(Errno::EEXIST);
        }
        Ok(())
    }

    /// Creates a new inode named `name` in `parent`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_node(
        &mut self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        kind: FileKind,
        perm: u16,
        rdev: u32,
        target: &[u8],
        now: Timespec,
        pool: &BlockPool,
    ) -> Result<Arc<Node>> {
        let p = self.parent_dir(c, parent)?;
        self.check_new_name(parent, name)?;
        Inner::may_create(c, &p)?;
        // vfs_mknod: devices need CAP_MKNOD, except a whiteout (a 0:0
        // character device), which anyone may create.
        let whiteout = kind == FileKind::CharDevice && rdev == 0;
        if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice)
            && !whiteout
            && !c.capable(Caps::MKNOD)
        {
            return Err(Errno::EPERM);
        }
        if self.inodes_in_use() >= self.max_inodes {
            return Err(Errno::ENOSPC);
        }
        // Last check: from here on nothing fails.
        pool.charge_meta(INODE_COST + target.len() as u64 + dirent_cost(name))?;
        let is_dir = kind == FileKind::Directory;
        let (gid, mut perm) = {
            let pst = p.st.read();
            if pst.perm & S_ISGID != 0 {
                (pst.gid, if is_dir { perm | S_ISGID } else { perm })
            } else {
                (c.gid, perm)
            }
        };
        // mode_strip_sgid: a group-executable setgid file created in a setgid
        // directory by a caller outside that group loses S_ISGID.
        if !is_dir
            && perm & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP)
            && !c.in_group(gid)
            && !c.capable(Caps::FSETID)
        {
            perm &= !S_ISGID;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let size = match kind {
            FileKind::Directory => 2 * BOGO_DIRENT_SIZE,
            FileKind::Symlink => target.len() as u64,
            _ => 0,
        };
        let node = Arc::new(Node {
            ino,
            kind,
            rdev,
            target: target.into(),
            st: RwLock::new(Meta {
                perm,
                uid: c.uid,
                gid,
                nlink: if is_dir { 2 } else { 1 },
                mtime: now,
                ctime: now,
                file: FileData::with_size(size),
                xattrs: BTreeMap::new(),
            }),
            atime: Mutex::new(now),
            open: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            parent: AtomicU64::new(parent),
        });
        let dir = is_dir.then(|| {
            Box::new(Dir {
                parent,
                name: name.to_vec(),
                children: BTreeMap::new(),
            })
        });
        self.nodes.insert(
            ino,
            Entry {
                node: node.clone(),
                dir,
            },
        );
        self.attach(parent, name, ino, is_dir, now);
        Ok(node)
    }

    pub(crate) fn lookup(&self, c: &Creds, parent: Ino, name: &[u8]) -> Result<Attr> {
        self.parent_dir(c, parent)?;
        let ino = match name {
            b"." => parent,
            b".." => self.dir(parent)?.parent,
            _ => {
                check_name(name)?;
                self.child(parent, name).ok_or(Errno::ENOENT)?
            }
        };
        self.attr(ino)
    }

    pub(crate) fn mknod(
        &mut self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
        pool: &BlockPool,
    ) -> Result<Attr> {
        let kind = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => FileKind::Regular,
            libc::S_IFCHR => FileKind::CharDevice,
            libc::S_IFBLK => FileKind::BlockDevice,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            libc::S_IFDIR => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        };
        let rdev = if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) {
            rdev
        } else {
            0
        };
        let perm = (mode & 0o7777) as u16;
        let now = Timespec::now();
        let n = self.create_node(c, parent, name, kind, perm, rdev, &[], now, pool)?;
        Ok(n.attr())
    }

    pub(crate) fn mkdir(
        &mut self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        mode: u32,
        pool: &BlockPool,
    ) -> Result<Attr> {
        // vfs_mkdir keeps only the permission and sticky bits of `mode`.
        let perm = (mode & 0o1777) as u16;
        let n = self.create_node(
            c,
            parent,
            name,
            FileKind::Directory,
            perm,
            0,
            &[],
            Timespec::now(),
            pool,
        )?;
        Ok(n.attr())
    }

    pub(crate) fn symlink(
        &mut self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        target: &[u8],
        pool: &BlockPool,
    ) -> Result<Attr> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() > SYMLINK_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let now = Timespec::now();
        let n = self.create_node(
            c,
            parent,
            name,
            FileKind::Symlink,
            0o777,
            0,
            target,
            now,
            pool,
        )?;
        Ok(n.attr())
    }

    pub(crate) fn link(
        &mut self,
        c: &Creds,
        ino: Ino,
        newparent: Ino,
        newname: &[u8],
        pool: &BlockPool,
    ) -> Result<Attr> {
        let src = self.node(ino)?;
        let p = self.parent_dir(c, newparent)?;
        self.check_new_name(newparent, newname)?;
        // may_linkat with fs.protected_hardlinks = 1 (the Linux default):
        // a non-owner may link only a regular, non-setid file it can read
        // and write.
        let o = src.owner();
        if !o.owner_or_capable(c) {
            let setid =
                o.perm & S_ISUID != 0 || o.perm & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP);
            if o.kind != FileKind::Regular || setid || o.check(c, R | W).is_err() {
                return Err(Errno::EPERM);
            }
        }
        Inner::may_create(c, &p)?;
        if src.kind == FileKind::Directory {
            return Err(Errno::EPERM);
        }
        let now = Timespec::now();
        {
            let mut st = src.st.write();
            if st.nlink == 0 {
                return Err(Errno::ENOENT);
            }
            if st.nlink == u32::MAX {
                return Err(Errno::EMLINK);
            }
            pool.charge_meta(dirent_cost(newname))?;
            st.nlink += 1;
            st.ctime = now;
        }
        src.parent.store(SEVERAL, Ordering::Relaxed);
        self.attach(newparent, newname, ino, false, now);
        Ok(src.attr())
    }

    pub(crate) fn unlink(
        &mut self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        pool: &BlockPool,
    ) -> Result<()> {
        let p = self.parent_dir(c, parent)?;
        if is_dot(name) {
            return Err(Errno::EISDIR);
        }
        check_name(name)?;
        let ino = self.child(parent, name).ok_or(Errno::ENOENT)?;
        let victim = self.node(ino)?;
        Inner::may_delete(c, &p, &victim, false)?;
        let now = Timespec::now();
        self.detach(parent, name, false, now, pool);
        {
            let mut st = victim.st.write();
            st.nlink = st.nlink.saturating_sub(1);
            st.ctime = now;
        }
        self.maybe_free(ino, pool);
        Ok(())
    }

    pub(crate) fn rmdir(
        &mut self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        pool: &BlockPool,
    ) -> Result<()> {
        let p = self.parent_dir(c, parent)?;
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => check_name(name)?,
        }
        let ino = self.child(parent, name).ok_or(Errno::ENOENT)?;
        let victim = self.node(ino)?;
        Inner::may_delete(c, &p, &victim, true)?;
        if !self.dir(ino)?.children.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let now = Timespec::now();
        self.detach(parent, name, true, now, pool);
        {
            let mut st = victim.st.write();
            st.nlink = 0;
            st.ctime = now;
        }
        self.maybe_free(ino, pool);
        Ok(())
    }

    /// Whether directory `a` is `b` or one of its ancestors.
    pub(super) fn is_ancestor(&self, a: Ino, mut b: Ino) -> bool {
        loop {
            if a == b {
                return true;
            }
            match self.dir(b) {
                Ok(d) if d.parent != b => b = d.parent,
                _ => return false,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rename(
        &mut self,
        c: &Creds,
        op: Ino,
        oname: &[u8],
        np: Ino,
        nname: &[u8],
        flags: RenameFlags,
        pool: &BlockPool,
    ) -> Result<()> {
        if flags.exchange && (flags.noreplace || flags.whiteout) {
            return Err(Errno::EINVAL);
        }
        let odir = self.parent_dir(c, op)?;
        let ndir = self.parent_dir(c, np)?;
        if is_dot(oname) {
            return Err(Errno::EBUSY);
        }
        if is_dot(nname) {
            return Err(if flags.noreplace {
                Errno::EEXIST
            } else {
                Errno::EBUSY
            });
        }
        check_name(oname)?;
        check_name(nname)?;
        let src_ino = self.child(op, oname).ok_or(Errno::ENOENT)?;
        let dst_ino = self.child(np, nname);
        if flags.exchange && dst_ino.is_none() {
            return Err(Errno::ENOENT);
        }
        if flags.noreplace && dst_ino.is_some() {
            return Err(Errno::EEXIST);
        }
        let src = self.node(src_ino)?;
        let src_dir = src.kind == FileKind::Directory;
        // A directory cannot move into its own subtree.
        if src_dir && self.is_ancestor(src_ino, np) {
            return Err(Errno::EINVAL);
        }
        let dst = match dst_ino {
            Some(d) => Some(self.node(d)?),
            None => None,
        };
        let dst_dir = dst.as_ref().is_some_and(|d| d.kind == FileKind::Directory);
        if let Some(d) = dst_ino {
            // The target is an ancestor of the source: it is not empty.
            if dst_dir && self.is_ancestor(d, op) {
                return Err(if flags.exchange {
                    Errno::EINVAL
                } else {
                    Errno::ENOTEMPTY
                });
            }
        }
        if dst_ino == Some(src_ino) {
            return Ok(());
        }
        Inner::may_delete(c, &odir, &src, src_dir)?;
        match &dst {
            None => Inner::may_create(c, &ndir)?,
            Some(d) => {
                let as_dir = if flags.exchange { dst_dir } else { src_dir };
                Inner::may_delete(c, &ndir, d, as_dir)?;
            }
        }
        if op != np {
            // Moving a directory rewrites its "..": needs write on it.
            if src_dir {
                src.owner().check(c, W)?;
            }
            if let (true, true, Some(d)) = (flags.exchange, dst_dir, &dst) {
                d.owner().check(c, W)?;
            }
        }
        if let (false, true, Some(d)) = (flags.exchange, dst_dir, dst_ino) {
            if !self.dir(d)?.children.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
        }

        let now = Timespec::now();
        if flags.exchange {
            let d_ino = dst_ino.expect("exchange has a target");
            self.dir_mut(op).children.insert(oname.to_vec(), d_ino);
            self.dir_mut(np).children.insert(nname.to_vec(), src_ino);
            for (n, to) in [
                (&src, np),
                (dst.as_ref().expect("exchange has a target"), op),
            ] {
                n.moved_to(to);
            }
            if src_dir {
                let d = self.dir_mut(src_ino);
                (d.parent, d.name) = (np, nname.to_vec());
            }
            if dst_dir {
                let d = self.dir_mut(d_ino);
                (d.parent, d.name) = (op, oname.to_vec());
            }
            if op != np && src_dir != dst_dir {
                // A directory moved one way, a non-directory the other.
                let (from, to) = if src_dir {
                    (&odir, &ndir)
                } else {
                    (&ndir, &odir)
                };
                let mut fs = from.st.write();
                fs.nlink = fs.nlink.saturating_sub(1);
                drop(fs);
                let mut ts = to.st.write();
                ts.nlink = ts.nlink.saturating_add(1);
            }
            for n in [&odir, &ndir] {
                let mut st = n.st.write();
                st.mtime = now;
                st.ctime = now;
            }
            for n in [&src, dst.as_ref().expect("exchange has a target")] {
                n.st.write().ctime = now;
            }
            return Ok(());
        }

        // shmem_whiteout comes first in tmpfs: the whiteout's inode must
        // exist before anything moves.
        if flags.whiteout && self.inodes_in_use() >= self.max_inodes {
            return Err(Errno::ENOSPC);
        }
        // The new name's entry (and the whiteout's inode and entry, held
        // back until it is made below): the last thing that can fail.
        let whiteout_cost = if flags.whiteout {
            INODE_COST + dirent_cost(oname)
        } else {
            0
        };
        pool.charge_meta(dirent_cost(nname) + whiteout_cost)?;
        if let (Some(d_ino), Some(d)) = (dst_ino, &dst) {
            self.detach(np, nname, dst_dir, now, pool);
            {
                let mut st = d.st.write();
                st.nlink = if dst_dir {
                    0
                } else {
                    st.nlink.saturating_sub(1)
                };
                st.ctime = now;
            }
            self.maybe_free(d_ino, pool);
        }
        self.detach(op, oname, src_dir, now, pool);
        self.attach(np, nname, src_ino, src_dir, now);
        src.moved_to(np);
        if src_dir {
            let d = self.dir_mut(src_ino);
            (d.parent, d.name) = (np, nname.to_vec());
        }
        src.st.write().ctime = now;
        if flags.whiteout {
            // Every check create_node makes passed above (search and write
            // on `op`, the inode budget, its charge held since), and the
            // name is free: under the tree lock nothing can take the room.
            pool.uncharge_meta(whiteout_cost);
            self.create_node(c, op, oname, FileKind::CharDevice, 0, 0, &[], now, pool)?;
        }
        Ok(())
    }
}

impl Store {
    /// Looks `name` up in `parent` (needs search permission; "." and ".."
    /// work, ".." of the root is the root).
    pub fn lookup(&self, c: &Creds, parent: Ino, name: &[u8]) -> Result<Attr> {
        self.tree.read().lookup(c, parent, name)
    }

    /// Has `keep` asked, before an inode with no name, no handle and no
    /// lookup reference is freed, whether a front door still needs it (a
    /// process may read it without the store knowing); a kept one stays,
    /// with its data, until [`Store::settle`] finds it no longer needed.
    /// `keep` runs under the store's locks: it must not call the store.
    pub fn keep_unlinked(&self, keep: Box<crate::store::Keeper>) {
        self.tree.write().keeper = Some(keep);
    }

    /// Frees `ino` if it has no name, no handle, no lookup reference, and
    /// the keeper (see [`Store::keep_unlinked`]) no longer needs it.
    pub fn settle(&self, ino: Ino) {
        self.tree.write().maybe_free(ino, &self.pool);
    }

    /// The directory `ino` is in and its name there, for a linked
    /// directory other than the root.
    pub fn dir_link(&self, ino: Ino) -> Option<(Ino, Vec<u8>)> {
        let tree = self.tree.read();
        let d = tree.dir(ino).ok().filter(|_| ino != ROOT_INO)?;
        (tree.child(d.parent, &d.name) == Some(ino)).then(|| (d.parent, d.name.clone()))
    }

    /// Whether `name` in `parent` is `ino` and every process may see it
    /// and, for a regular file, read it: the file (or directory) open to
    /// all, in directories everyone may list and search up to the root,
    /// none with extended attributes (no ACL can narrow what the mode
    /// bits say).
    pub fn is_public(&self, parent: Ino, name: &[u8], ino: Ino) -> bool {
        self.tree.read().public(parent, name, ino)
    }

    /// Whether `parent` has no `name` and everyone may list it and search
    /// it and every directory above it, none with extended attributes:
    /// then that it has no such name is anyone's to know.
    pub fn is_public_absence(&self, parent: Ino, name: &[u8]) -> bool {
        self.tree.read().public_absence(parent, name)
    }

    /// Target of a symlink (EINVAL for other kinds).
    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>> {
        let node = self.tree.read().node(ino)?;
        if node.kind != FileKind::Symlink {
            return Err(Errno::EINVAL);
        }
        Ok(node.target.to_vec())
    }

    /// Creates a regular file, fifo, socket or device node.
    pub fn mknod(&self, c: &Creds, parent: Ino, name: &[u8], mode: u32, rdev: u32) -> Result<Attr> {
        let mut change = self.change();
        let mut t = self.tree.write();
        change.touches(&t.entries_touch(parent));
        t.mknod(c, parent, name, mode, rdev, &self.pool)
    }

    /// Creates a directory.
    pub fn mkdir(&self, c: &Creds, parent: Ino, name: &[u8], mode: u32) -> Result<Attr> {
        let mut change = self.change();
        let mut t = self.tree.write();
        change.touches(&t.entries_touch(parent));
        t.mkdir(c, parent, name, mode, &self.pool)
    }

    /// Creates a symbolic link to `target`.
    pub fn symlink(&self, c: &Creds, parent: Ino, name: &[u8], target: &[u8]) -> Result<Attr> {
        let mut change = self.change();
        let mut t = self.tree.write();
        change.touches(&t.entries_touch(parent));
        t.symlink(c, parent, name, target, &self.pool)
    }

    /// Adds a hard link to `ino` (directories: EPERM).
    pub fn link(&self, c: &Creds, ino: Ino, newparent: Ino, newname: &[u8]) -> Result<Attr> {
        let _change = self.change();
        self.tree
            .write()
            .link(c, ino, newparent, newname, &self.pool)
    }

    /// Removes a non-directory name.
    pub fn unlink(&self, c: &Creds, parent: Ino, name: &[u8]) -> Result<()> {
        let mut change = self.change();
        let mut t = self.tree.write();
        let victim = t.child(parent, name).and_then(|i| t.node(i).ok());
        if let Some(touched) = victim.and_then(|v| t.removal_touch(parent, &v)) {
            change.touches(&touched);
        }
        t.unlink(c, parent, name, &self.pool)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, c: &Creds, parent: Ino, name: &[u8]) -> Result<()> {
        let _change = self.change();
        self.tree.write().rmdir(c, parent, name, &self.pool)
    }

    /// renameat2.
    pub fn rename(
        &self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        let mut change = self.change();
        let mut t = self.tree.write();
        if let Some(touched) = t.rename_touch(parent, name, newparent, newname, flags) {
            change.touches(&touched);
        }
        t.rename(c, parent, name, newparent, newname, flags, &self.pool)
    }

    /// The path of directory `ino` below the root as its names stand now
    /// (empty for the root, no leading slash); `ENOENT` once it was
    /// removed, `ENOTDIR` for another kind of file.
    pub fn dir_path(&self, ino: Ino) -> Result<Vec<u8>> {
        self.tree.read().dir_path(ino)
    }

    /// Adds one lookup reference on `ino`. A front door that caches entries
    /// or attributes outside the store (the FUSE door: the kernel's dentry
    /// and inode caches) holds one per entry it handed out; an unlinked
    /// inode's metadata then stays until [`Store::drop_lookups`] drops the
    /// last.
    pub fn add_lookup(&self, ino: Ino) {
        if let Some(e) = self.tree.read().nodes.get(&ino) {
            inc(&e.node.lookups);
        }
    }

    /// The attributes of the inode behind open handle `fh` (file or
    /// directory, linked or not), adding one lookup reference on it as
    /// [`Store::add_lookup`] does. Taken under the tree lock, so the inode
    /// cannot be freed between the handle check and the reference even if
    /// the handle is released meanwhile: from then on the holder's lookup
    /// (and later open) references keep an unlinked inode alive, and
    /// [`Store::drop_lookups`] frees it.
    pub fn add_lookup_by_handle(&self, fh: Fh) -> Result<Attr> {
        let t = self.tree.read();
        let node = self.handle(fh)?.0;
        // An open handle keeps its inode in the table (`maybe_free` needs
        // `open == 0`), and the tree lock keeps it there until we return.
        let e = t.nodes.get(&node.ino).ok_or(Errno::ENOENT)?;
        inc(&e.node.lookups);
        Ok(e.node.attr())
    }

    /// Whether someone holds a lookup reference on `ino` (and so may have
    /// its entry or attributes cached). The root always counts as held.
    pub fn has_lookups(&self, ino: Ino) -> bool {
        ino == ROOT_INO
            || self
                .tree
                .read()
                .nodes
                .get(&ino)
                .is_some_and(|e| e.node.lookups.load(Ordering::Relaxed) > 0)
    }

    /// Drops `count` lookup references on `ino` (saturating: more than
    /// were added is harmless); an unlinked inode with none left and no
    /// open handle is freed.
    pub fn drop_lookups(&self, ino: Ino, count: u64) {
        let t = self.tree.read();
        let Some(e) = t.nodes.get(&ino) else {
            return;
        };
        let node = e.node.clone();
        let left = dec(&node.lookups, count);
        if left == 0 && node.st.read().nlink == 0 {
            drop(t);
            self.tree.write().maybe_free(ino, &self.pool);
        }
    }
}
