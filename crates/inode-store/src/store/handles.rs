//! Open handles: opening and creating files and directories, the
//! handle table, fsync and release.

use super::*;

impl Inner {
    /// Opens an existing inode. Returns the node and the handle kind; the
    /// node's open count is already incremented.
    pub(super) fn open(
        &self,
        c: &Creds,
        ino: Ino,
        flags: i32,
        pool: &BlockPool,
    ) -> Result<(Arc<Node>, HandleKind)> {
        let node = self.node(ino)?;
        if flags & libc::O_DIRECTORY != 0 && node.kind != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let (read, write) = match flags & libc::O_ACCMODE {
            libc::O_RDONLY => (true, false),
            libc::O_WRONLY => (false, true),
            _ => (true, true),
        };
        let trunc = flags & libc::O_TRUNC != 0;
        let mask = if read { R } else { 0 } | if write || trunc { W } else { 0 };
        // may_open: the mode bits, then O_NOATIME only for the owner or
        // CAP_FOWNER.
        let may_open = |o: Owner| {
            o.check(c, mask)?;
            if flags & libc::O_NOATIME != 0 && !o.owner_or_capable(c) {
                return Err(Errno::EPERM);
            }
            Ok(())
        };
        let kind = match node.kind {
            FileKind::Symlink => return Err(Errno::ELOOP),
            FileKind::Directory => {
                if mask & W != 0 {
                    return Err(Errno::EISDIR);
                }
                may_open(node.owner())?;
                HandleKind::Dir(Arc::new(Mutex::new(DirCursor::default())))
            }
            FileKind::Regular => {
                if !trunc {
                    // Plain opens take only the read lock: no contention
                    // with readers of the same file.
                    may_open(node.owner())?;
                } else {
                    let mut st = node.st.write();
                    may_open(node.owner_of(&st))?;
                    let kill = node.owner_of(&st).kill_on_write(c);
                    st.perm &= !kill;
                    st.drop_file_caps(pool);
                    st.file.truncate(pool, 0);
                    let now = Timespec::now();
                    st.mtime = now;
                    st.ctime = now;
                }
                HandleKind::File {
                    read,
                    write,
                    append: flags & libc::O_APPEND != 0,
                }
            }
            // Device, fifo and socket semantics are not emulated: the front
            // doors leave those to the kernel.
            _ => {
                may_open(node.owner())?;
                return Err(Errno::ENXIO);
            }
        };
        inc(&node.open);
        Ok((node, kind))
    }

    pub(super) fn create(
        &mut self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        mode: u32,
        flags: i32,
        pool: &BlockPool,
    ) -> Result<(Arc<Node>, HandleKind)> {
        let excl = flags & libc::O_EXCL != 0;
        self.parent_dir(c, parent)?;
        if is_dot(name) {
            return Err(if excl { Errno::EEXIST } else { Errno::EISDIR });
        }
        check_name(name)?;
        if let Some(ino) = self.child(parent, name) {
            if excl {
                return Err(Errno::EEXIST);
            }
            if self.entry(ino)?.dir.is_some() {
                return Err(Errno::EISDIR);
            }
            return self.open(c, ino, flags & !libc::O_CREAT, pool);
        }
        match mode & libc::S_IFMT {
            0 | libc::S_IFREG => {}
            _ => return Err(Errno::EINVAL),
        }
        let perm = (mode & 0o7777) as u16;
        let node = self.create_node(
            c,
            parent,
            name,
            FileKind::Regular,
            perm,
            0,
            &[],
            Timespec::now(),
            pool,
        )?;
        let (read, write) = match flags & libc::O_ACCMODE {
            libc::O_RDONLY => (true, false),
            libc::O_WRONLY => (false, true),
            _ => (true, true),
        };
        inc(&node.open);
        Ok((
            node,
            HandleKind::File {
                read,
                write,
                append: flags & libc::O_APPEND != 0,
            },
        ))
    }
}

impl Store {
    pub(super) fn add_handle(&self, c: &Creds, node: Arc<Node>, kind: HandleKind) -> Fh {
        let fh = Fh(self.next_fh.fetch_add(1, Ordering::Relaxed));
        let h = Handle {
            node,
            kind,
            opener: c.clone(),
        };
        self.handles.write().insert(fh, h);
        fh
    }

    /// Opens an existing inode (permission checks, O_TRUNC).
    pub fn open(&self, c: &Creds, ino: Ino, flags: i32) -> Result<Fh> {
        // Only a truncating open changes what queries answer.
        let mut change = (flags & libc::O_TRUNC != 0).then(|| self.change());
        let (node, kind) = self.tree.read().open(c, ino, flags, &self.pool)?;
        if let Some(change) = &mut change {
            change.touches(&node.attrs_touch());
        }
        Ok(self.add_handle(c, node, kind))
    }

    /// A handle of directory `ino` for `O_PATH`: no permission on the
    /// directory itself is needed (the path to it was searched), and the
    /// caller must not list through it (see `fsd`'s `HandleKind::Path`).
    pub fn open_path(&self, c: &Creds, ino: Ino) -> Result<Fh> {
        let node = self.tree.read().node(ino)?;
        if node.kind != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let cursor = HandleKind::Dir(Arc::new(Mutex::new(DirCursor::default())));
        Ok(self.add_handle(c, node, cursor))
    }

    /// open(O_CREAT): creates a regular file, or opens the existing one
    /// (EEXIST with O_EXCL).
    pub fn create(
        &self,
        c: &Creds,
        parent: Ino,
        name: &[u8],
        mode: u32,
        flags: i32,
    ) -> Result<(Attr, Fh)> {
        let mut change = self.change();
        let mut t = self.tree.write();
        change.touches(&t.entries_touch(parent));
        let (node, kind) = t.create(c, parent, name, mode, flags, &self.pool)?;
        drop(t);
        change.touches(&node.attrs_touch());
        let attr = node.attr();
        Ok((attr, self.add_handle(c, node, kind)))
    }

    /// The node and flags (readable, writable, append) of a file, without
    /// keeping the handle lock. A kernel-opened inode is readable and
    /// writable: the kernel checked its file's mode.
    pub(super) fn handle(&self, f: impl Into<FileRef>) -> Result<(Arc<Node>, bool, bool, bool)> {
        let fh = match f.into() {
            FileRef::Handle(fh) => fh,
            FileRef::Inode(ino) => return Ok((self.tree.read().node(ino)?, true, true, false)),
        };
        let h = self.handles.read();
        let h = h.get(&fh).ok_or(Errno::EBADF)?;
        let (r, w, a) = match h.kind {
            HandleKind::File {
                read,
                write,
                append,
            } => (read, write, append),
            HandleKind::Dir(_) => (false, false, false),
        };
        Ok((h.node.clone(), r, w, a))
    }

    /// fsync(2): nothing to do in memory.
    pub fn fsync(&self, fh: impl Into<FileRef>) -> Result<()> {
        self.handle(fh).map(drop)
    }

    /// Drops an open handle; the last one of an unlinked file frees its data.
    pub fn release(&self, fh: Fh) -> Result<()> {
        let h = {
            let mut handles = self.handles.write();
            let h = handles.remove(&fh).ok_or(Errno::EBADF)?;
            shrink_sparse(&mut handles);
            h
        };
        self.drop_open(&h.node);
        Ok(())
    }

    pub(super) fn drop_open(&self, node: &Node) {
        let t = self.tree.read();
        let left = dec(&node.open, 1);
        if left == 0 && node.st.read().nlink == 0 {
            drop(t);
            // Re-checked under the write lock by maybe_free.
            self.tree.write().maybe_free(node.ino, &self.pool);
        }
    }

    /// The inode a handle refers to.
    pub fn handle_ino(&self, fh: Fh) -> Result<Ino> {
        Ok(self.handle(fh)?.0.ino)
    }

    /// The access mode (`O_RDONLY`, `O_WRONLY` or `O_RDWR`) regular-file
    /// handle `fh` was opened with; `EISDIR` for a directory handle.
    pub fn handle_access_mode(&self, fh: Fh) -> Result<i32> {
        match self.handles.read().get(&fh).ok_or(Errno::EBADF)?.kind {
            HandleKind::File {
                read: true,
                write: true,
                ..
            } => Ok(libc::O_RDWR),
            HandleKind::File { write: true, .. } => Ok(libc::O_WRONLY),
            HandleKind::File { .. } => Ok(libc::O_RDONLY),
            HandleKind::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// `fcntl(F_SETFL)` adding `O_NOATIME` to open handle `fh` (of either
    /// kind): `EPERM` unless `c` owns the file or holds `CAP_FOWNER`
    /// (`inode_owner_or_capable`, as the kernel's `setfl` checks).
    pub fn may_set_noatime(&self, c: &Creds, fh: Fh) -> Result<()> {
        let node = self.handle(fh)?.0;
        match node.owner().owner_or_capable(c) {
            true => Ok(()),
            false => Err(Errno::EPERM),
        }
    }
}
