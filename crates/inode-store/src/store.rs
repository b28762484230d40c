//! The store: inode table, namespace operations and file I/O.
//!
//! See the crate docs for the lock order. `Inner` holds the inode table and
//! every namespace rule; its methods are called with the tree lock held
//! (`&mut self` = write lock) and are unit-testable without threads.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

mod image;
pub use image::{NodeImage, RestoreError, Snapshot};

use crate::acl;
use crate::file::FileData;
use crate::io::{DataSink, DataSource};
use crate::perm::{Owner, R, S_ISGID, S_ISUID, S_ISVTX, S_IXGRP, W, X};
use crate::pool::BlockPool;
use crate::{
    Attr, Caps, Creds, DirEntry, Errno, Fh, FileKind, Ino, RenameFlags, Result, SetAttr, StatFs,
    TimeSet, Timespec, Usage, Written, BLOCK_SIZE, MAX_FILE_SIZE, MAX_RW_COUNT, NAME_MAX, ROOT_INO,
    XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_SIZE_MAX,
};

/// tmpfs accounts 20 bytes of directory size per entry (BOGO_DIRENT_SIZE),
/// starting at 40 for "." and "..".
const BOGO_DIRENT_SIZE: u64 = 20;
/// Longest symlink target (tmpfs: one page including the NUL).
const SYMLINK_MAX: usize = BLOCK_SIZE - 1;
/// Targets at least this long take a page on tmpfs (st_blocks = 8).
const SHORT_SYMLINK_LEN: usize = 128;
/// Entries gathered per readdir batch (the closure runs with no lock held).
const READDIR_BATCH: usize = 128;
/// First cookie handed to a named entry ("." ends at 1, ".." at 2).
const FIRST_COOKIE: u64 = 3;
const DAY_SECS: i64 = 24 * 60 * 60;

/// Metadata bytes charged against the size limit per inode: its table
/// entry, `Node`, locks, times and map nodes (measured: the daemon's RSS
/// grows by about this much per empty file created).
const INODE_COST: u64 = 512;
/// Bytes charged per directory entry on top of its name (map node, key).
const DIRENT_COST: u64 = 64;
/// Bytes charged per extended attribute on top of its name and value.
const XATTR_COST: u64 = 64;

/// What a directory entry named `name` is charged.
fn dirent_cost(name: &[u8]) -> u64 {
    DIRENT_COST + name.len() as u64
}

/// What an extended attribute is charged.
fn xattr_cost(name: &[u8], value: &[u8]) -> u64 {
    XATTR_COST + (name.len() + value.len()) as u64
}

/// Gives a hash map's memory back once it is mostly empty: it shrinks to
/// twice its length when it holds under a quarter of its capacity, so
/// alternating inserts and removals never reallocate each time (amortised
/// O(1) per removal).
fn shrink_sparse<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 64 && m.len() * 4 < m.capacity() {
        m.shrink_to(m.len() * 2);
    }
}

/// Mutable metadata of one inode (behind the node's `st` lock).
pub(crate) struct Meta {
    perm: u16,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: Timespec,
    ctime: Timespec,
    /// Regular files: contents. Directories and symlinks use only `size`.
    file: FileData,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// One inode. Shared (`Arc`) between the tree and open handles so that data
/// I/O needs no tree lock.
pub(crate) struct Node {
    ino: Ino,
    kind: FileKind,
    rdev: u32,
    /// Symlink target (empty for other kinds); immutable.
    target: Box<[u8]>,
    st: RwLock<Meta>,
    /// Kept apart so that relatime updates from readers need no write lock.
    atime: Mutex<Timespec>,
    /// Open handles. Changed under the tree lock (read suffices: the
    /// "free when unreferenced" decision is taken under the write lock).
    open: AtomicU64,
    /// Lookup references held by front doors that cache entries (see
    /// [`Store::add_lookup`]).
    lookups: AtomicU64,
}

impl Node {
    fn owner_of(&self, m: &Meta) -> Owner {
        Owner {
            kind: self.kind,
            perm: m.perm,
            uid: m.uid,
            gid: m.gid,
        }
    }

    fn owner(&self) -> Owner {
        self.owner_of(&self.st.read())
    }

    fn attr_of(&self, m: &Meta) -> Attr {
        Attr {
            ino: self.ino,
            kind: self.kind,
            perm: m.perm,
            nlink: m.nlink,
            uid: m.uid,
            gid: m.gid,
            rdev: self.rdev,
            size: m.file.size,
            blocks: if self.kind == FileKind::Symlink && self.target.len() >= SHORT_SYMLINK_LEN {
                // tmpfs keeps short targets inline and long ones in a page.
                8
            } else {
                m.file.block_count().saturating_mul(8)
            },
            blksize: BLOCK_SIZE as u32,
            atime: *self.atime.lock(),
            mtime: m.mtime,
            ctime: m.ctime,
        }
    }

    fn attr(&self) -> Attr {
        self.attr_of(&self.st.read())
    }

    /// relatime: update atime if it is not newer than mtime or ctime, or
    /// more than a day old. Readers never wait here: if another thread holds
    /// the atime mutex (a concurrent reader doing this same check, or a
    /// setattr), this read's update is skipped — the concurrent one stands
    /// for it, as both would store "now".
    fn touch_atime(&self, m: &Meta) {
        let now = Timespec::now();
        let Some(mut a) = self.atime.try_lock() else {
            return;
        };
        if *a <= m.mtime || *a <= m.ctime || now.sec.saturating_sub(a.sec) >= DAY_SECS {
            *a = now;
        }
    }
}

struct Dir {
    parent: Ino,
    /// Its name in `parent` (empty for the root): a directory has exactly
    /// one, so its path can be told without searching (see `dir_path`).
    name: Vec<u8>,
    children: BTreeMap<Vec<u8>, Ino>,
}

struct Entry {
    node: Arc<Node>,
    /// `Some` for directories.
    dir: Option<Dir>,
}

/// The inode table and namespace. Guarded by the store's tree lock.
pub(crate) struct Inner {
    nodes: HashMap<Ino, Entry>,
    next_ino: Ino,
    max_inodes: u64,
}

struct DirCursor {
    next: u64,
    /// cookie -> name of every named entry this handle handed out.
    names: HashMap<u64, Vec<u8>>,
    /// name -> its cookie: a name handed out again (rewinddir, a reader
    /// that loops) keeps its cookie, so the two maps grow with the names
    /// the directory held, not with how often it was read.
    cookies: HashMap<Vec<u8>, u64>,
}

impl DirCursor {
    /// The cookie of `name`, given it on first use.
    fn cookie_of(&mut self, name: &[u8]) -> u64 {
        if let Some(&c) = self.cookies.get(name) {
            return c;
        }
        let c = self.next;
        self.next += 1;
        self.names.insert(c, name.to_vec());
        self.cookies.insert(name.to_vec(), c);
        c
    }
}

enum HandleKind {
    File {
        read: bool,
        write: bool,
        append: bool,
    },
    Dir(Arc<Mutex<DirCursor>>),
}

struct Handle {
    node: Arc<Node>,
    kind: HandleKind,
    /// Who opened it: fallocate (which takes no credentials) clears setid
    /// bits as this caller, like `file_modified` does for the file's opener.
    opener: Creds,
}

impl Handle {
    fn writable(&self) -> bool {
        matches!(self.kind, HandleKind::File { write: true, .. })
    }
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Name component validity: "" -> ENOENT, '/' or NUL -> EINVAL, too long ->
/// ENAMETOOLONG.
fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Offsets beyond `loff_t` are invalid.
fn check_off(off: u64) -> Result<()> {
    if off > MAX_FILE_SIZE {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// `rw_verify_area`: `offset + len` must stay within `loff_t` (EINVAL).
fn check_span(offset: u64, len: usize) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= MAX_FILE_SIZE => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

fn resolve(t: TimeSet, now: Timespec) -> Timespec {
    match t {
        TimeSet::Now => now,
        TimeSet::At(ts) => ts,
    }
}

/// Saturating decrement of an atomic counter; returns the new value.
/// (Counts come from the front doors, on behalf of untrusted peers: never wrap.)
fn dec(a: &AtomicU64, n: u64) -> u64 {
    let prev = a
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(v.saturating_sub(n))
        })
        .unwrap_or(0);
    prev.saturating_sub(n)
}

fn inc(a: &AtomicU64) {
    let _ = a.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        Some(v.saturating_add(1))
    });
}

enum XattrNs {
    User,
    Trusted,
    Security,
    System,
    Unknown,
}

fn xattr_ns(name: &[u8]) -> Result<XattrNs> {
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
    fn new(max_inodes: u64) -> Inner {
        let now = Timespec::now();
        let root = Arc::new(Node {
            ino: ROOT_INO,
            kind: FileKind::Directory,
            rdev: 0,
            target: Box::default(),
            st: RwLock::new(Meta {
                perm: 0o755,
                uid: 0,
                gid: 0,
                nlink: 2,
                mtime: now,
                ctime: now,
                file: FileData::with_size(2 * BOGO_DIRENT_SIZE),
                xattrs: BTreeMap::new(),
            }),
            atime: Mutex::new(now),
            open: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        });
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_INO,
            Entry {
                node: root,
                dir: Some(Dir {
                    parent: ROOT_INO,
                    name: Vec::new(),
                    children: BTreeMap::new(),
                }),
            },
        );
        Inner {
            nodes,
            next_ino: ROOT_INO + 1,
            max_inodes,
        }
    }

    fn entry(&self, ino: Ino) -> Result<&Entry> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node(&self, ino: Ino) -> Result<Arc<Node>> {
        Ok(self.entry(ino)?.node.clone())
    }

    fn dir(&self, ino: Ino) -> Result<&Dir> {
        self.entry(ino)?.dir.as_ref().ok_or(Errno::ENOTDIR)
    }

    fn dir_mut(&mut self, ino: Ino) -> &mut Dir {
        self.nodes
            .get_mut(&ino)
            .and_then(|e| e.dir.as_mut())
            .expect("checked directory")
    }

    /// See [`Store::dir_path`].
    fn dir_path(&self, ino: Ino) -> Result<Vec<u8>> {
        let mut names: Vec<&[u8]> = Vec::new();
        let mut cur = ino;
        while cur != ROOT_INO {
            // A consistent tree has no cycle; never loop on a broken one.
            if names.len() > self.nodes.len() {
                return Err(Errno::EIO);
            }
            let d = self.dir(cur)?;
            // A removed directory keeps its last name and parent.
            if self.child(d.parent, &d.name) != Some(cur) {
                return Err(Errno::ENOENT);
            }
            names.push(&d.name);
            cur = d.parent;
        }
        Ok(names.into_iter().rev().collect::<Vec<_>>().join(&b'/'))
    }

    fn child(&self, parent: Ino, name: &[u8]) -> Option<Ino> {
        self.dir(parent).ok()?.children.get(name).copied()
    }

    pub(crate) fn attr(&self, ino: Ino) -> Result<Attr> {
        Ok(self.entry(ino)?.node.attr())
    }

    /// The parent directory of a name operation: exists, is a directory,
    /// and the caller may search it.
    fn parent_dir(&self, c: &Creds, parent: Ino) -> Result<Arc<Node>> {
        let e = self.entry(parent)?;
        if e.dir.is_none() {
            return Err(Errno::ENOTDIR);
        }
        e.node.owner().check(c, X)?;
        Ok(e.node.clone())
    }

    /// `may_create`: the directory is alive and writable+searchable.
    fn may_create(c: &Creds, dir: &Node) -> Result<()> {
        let st = dir.st.read();
        if st.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        dir.owner_of(&st).check(c, W | X)
    }

    /// `may_delete`: write+search on the directory, sticky rule, type match.
    fn may_delete(c: &Creds, dir: &Node, victim: &Node, isdir: bool) -> Result<()> {
        let d = dir.owner();
        d.check(c, W | X)?;
        if !d.sticky_allows(c, &victim.owner()) {
            return Err(Errno::EPERM);
        }
        let victim_dir = victim.kind == FileKind::Directory;
        if isdir && !victim_dir {
            return Err(Errno::ENOTDIR);
        }
        if !isdir && victim_dir {
            return Err(Errno::EISDIR);
        }
        if isdir && victim.ino == ROOT_INO {
            return Err(Errno::EBUSY);
        }
        Ok(())
    }

    /// Adds `name -> ino` to `parent` and updates the parent's size, link
    /// count (for a subdirectory) and times. The caller has charged
    /// `dirent_cost(name)` already (a charge can fail, so it comes before
    /// any change); `detach` returns it.
    fn attach(&mut self, parent: Ino, name: &[u8], ino: Ino, is_dir: bool, now: Timespec) {
        self.dir_mut(parent).children.insert(name.to_vec(), ino);
        let p = self.nodes[&parent].node.clone();
        let mut st = p.st.write();
        st.file.size = st.file.size.saturating_add(BOGO_DIRENT_SIZE);
        if is_dir {
            st.nlink = st.nlink.saturating_add(1);
        }
        st.mtime = now;
        st.ctime = now;
    }

    /// Removes `name` from `parent` (the reverse of `attach`).
    fn detach(&mut self, parent: Ino, name: &[u8], is_dir: bool, now: Timespec, pool: &BlockPool) {
        self.dir_mut(parent).children.remove(name);
        pool.uncharge_meta(dirent_cost(name));
        let p = self.nodes[&parent].node.clone();
        let mut st = p.st.write();
        st.file.size = st.file.size.saturating_sub(BOGO_DIRENT_SIZE);
        if is_dir {
            st.nlink = st.nlink.saturating_sub(1);
        }
        st.mtime = now;
        st.ctime = now;
    }

    /// Frees the blocks of an inode with no name and no open handle, and
    /// forgets the inode too once no lookup reference is left.
    fn maybe_free(&mut self, ino: Ino, pool: &BlockPool) {
        let Some(e) = self.nodes.get(&ino) else {
            return;
        };
        let node = e.node.clone();
        let mut st = node.st.write();
        if st.nlink > 0 || node.open.load(Ordering::Acquire) > 0 {
            return;
        }
        st.file.free_all(pool);
        if ino != ROOT_INO && node.lookups.load(Ordering::Acquire) == 0 {
            let xattrs: u64 = st.xattrs.iter().map(|(k, v)| xattr_cost(k, v)).sum();
            pool.uncharge_meta(INODE_COST + node.target.len() as u64 + xattrs);
            st.xattrs.clear();
            drop(st);
            self.nodes.remove(&ino);
            shrink_sparse(&mut self.nodes);
        }
    }

    /// Creates a new inode named `name` in `parent`.
    #[allow(clippy::too_many_arguments)]
    fn create_node(
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
        if is_dot(name) {
            return Err(Errno::EEXIST);
        }
        check_name(name)?;
        if self.child(parent, name).is_some() {
            return Err(Errno::EEXIST);
        }
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
        if self.nodes.len() as u64 >= self.max_inodes {
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
        });
        let dir = is_dir.then(|| Dir {
            parent,
            name: name.to_vec(),
            children: BTreeMap::new(),
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
        if is_dot(newname) {
            return Err(Errno::EEXIST);
        }
        check_name(newname)?;
        if self.child(newparent, newname).is_some() {
            return Err(Errno::EEXIST);
        }
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
    fn is_ancestor(&self, a: Ino, mut b: Ino) -> bool {
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
        if flags.whiteout && self.nodes.len() as u64 >= self.max_inodes {
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

    /// Opens an existing inode. Returns the node and the handle kind; the
    /// node's open count is already incremented.
    fn open(
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
                HandleKind::Dir(Arc::new(Mutex::new(DirCursor {
                    next: FIRST_COOKIE,
                    names: HashMap::new(),
                    cookies: HashMap::new(),
                })))
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

    fn create(
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

    /// `fh_write`: `Some(true)` when the request came with an open handle on
    /// this inode that is writable (ftruncate), `Some(false)` when the handle
    /// is not writable.
    fn setattr(
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

    #[allow(clippy::too_many_arguments)]
    fn setxattr(
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

    /// `xattr_permission(MAY_WRITE)` + the LSM capability rule + handler.
    fn xattr_write_allowed(c: &Creds, node: &Node, st: &Meta, ns: &XattrNs) -> Result<()> {
        let o = node.owner_of(st);
        match ns {
            XattrNs::Security | XattrNs::System => {}
            XattrNs::Trusted => {
                if !c.capable(Caps::SYS_ADMIN) {
                    return Err(Errno::EPERM);
                }
            }
            XattrNs::User => {
                if !matches!(node.kind, FileKind::Regular | FileKind::Directory) {
                    return Err(Errno::EPERM);
                }
                if node.kind == FileKind::Directory
                    && st.perm & S_ISVTX != 0
                    && !o.owner_or_capable(c)
                {
                    return Err(Errno::EPERM);
                }
                o.check(c, W)?;
            }
            XattrNs::Unknown => o.check(c, W)?,
        }
        match ns {
            XattrNs::System | XattrNs::Unknown => Err(Errno::EOPNOTSUPP),
            // cap_inode_setxattr: security.* needs CAP_SYS_ADMIN.
            XattrNs::Security if !c.capable(Caps::SYS_ADMIN) => Err(Errno::EPERM),
            _ => Ok(()),
        }
    }

    fn getxattr(&self, c: &Creds, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        let ns = xattr_ns(name)?;
        let node = self.node(ino)?;
        let st = node.st.read();
        let o = node.owner_of(&st);
        match ns {
            XattrNs::Security | XattrNs::System => {}
            XattrNs::Trusted => {
                if !c.capable(Caps::SYS_ADMIN) {
                    return Err(Errno::ENODATA);
                }
            }
            XattrNs::User => {
                if !matches!(node.kind, FileKind::Regular | FileKind::Directory) {
                    return Err(Errno::ENODATA);
                }
                o.check(c, R)?;
            }
            XattrNs::Unknown => o.check(c, R)?,
        }
        if matches!(ns, XattrNs::System | XattrNs::Unknown) {
            return Err(Errno::EOPNOTSUPP);
        }
        st.xattrs.get(name).cloned().ok_or(Errno::ENODATA)
    }

    fn listxattr(&self, c: &Creds, ino: Ino) -> Result<Vec<u8>> {
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

    fn removexattr(&self, c: &Creds, ino: Ino, name: &[u8], pool: &BlockPool) -> Result<()> {
        let ns = xattr_ns(name)?;
        let node = self.node(ino)?;
        let mut st = node.st.write();
        Inner::xattr_write_allowed(c, &node, &st, &ns)?;
        let value = st.xattrs.remove(name).ok_or(Errno::ENODATA)?;
        pool.uncharge_meta(xattr_cost(name, &value));
        st.ctime = Timespec::now();
        Ok(())
    }

    fn access(&self, c: &Creds, ino: Ino, mask: i32) -> Result<()> {
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

/// What one readdir batch resumes after.
enum Pos {
    Start,
    AfterDot,
    AfterDotDot,
    After(Vec<u8>),
}

/// The filesystem: one per mount, shared by every front door.
/// `Send + Sync`; every method takes `&self`.
pub struct Store {
    tree: RwLock<Inner>,
    handles: RwLock<HashMap<Fh, Handle>>,
    next_fh: AtomicU64,
    /// Declared last so that it is dropped after every `Block` it lent out.
    pool: BlockPool,
}

impl Store {
    /// An empty filesystem of `capacity_bytes` (rounded down to blocks)
    /// with [`Store::default_max_inodes`] inodes: the root directory (ino 1,
    /// mode 0o755, uid/gid 0) only.
    pub fn new(capacity_bytes: u64) -> Store {
        Store::with_limits(capacity_bytes, Store::default_max_inodes(capacity_bytes))
    }

    /// The inode limit of a filesystem of `capacity_bytes` unless told
    /// otherwise: one inode per 4 KiB block, at least 1024 (tmpfs's
    /// `nr_inodes` default is half the RAM's pages; this one follows the
    /// size, which already bounds the memory those inodes take).
    pub fn default_max_inodes(capacity_bytes: u64) -> u64 {
        (capacity_bytes / BLOCK_SIZE as u64).max(1024)
    }

    /// An empty filesystem of `capacity_bytes` (rounded down to blocks)
    /// holding at most `max_inodes` inodes, the root included (tmpfs's
    /// `nr_inodes`; 0 = no limit, as on tmpfs). Both limits give ENOSPC.
    /// File data and metadata (inodes, names, symlink targets, xattrs)
    /// share `capacity_bytes`.
    pub fn with_limits(capacity_bytes: u64, max_inodes: u64) -> Store {
        let blocks = capacity_bytes / BLOCK_SIZE as u64;
        let max_inodes = if max_inodes == 0 {
            u64::MAX
        } else {
            max_inodes
        };
        Store {
            tree: RwLock::new(Inner::new(max_inodes)),
            handles: RwLock::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            pool: BlockPool::new(blocks),
        }
    }

    /// statfs(2) totals.
    pub fn statfs(&self) -> StatFs {
        let (files, used_inodes) = {
            let t = self.tree.read();
            (t.max_inodes, t.nodes.len() as u64)
        };
        let blocks = self.pool.capacity();
        let free = blocks.saturating_sub(self.pool.charged());
        // No inode limit: 0 and 0, as tmpfs mounted with nr_inodes=0.
        let (files, ffree) = match files {
            u64::MAX => (0, 0),
            n => (n, n.saturating_sub(used_inodes)),
        };
        StatFs {
            blocks,
            bfree: free,
            bavail: free,
            files,
            ffree,
            bsize: BLOCK_SIZE as u32,
            namelen: NAME_MAX as u32,
            frsize: BLOCK_SIZE as u32,
        }
    }

    /// Resource usage.
    pub fn usage(&self) -> Usage {
        let inodes = self.tree.read().nodes.len() as u64;
        Usage {
            inodes,
            used_blocks: self.pool.used(),
            meta_bytes: self.pool.meta_bytes(),
            capacity_blocks: self.pool.capacity(),
            open_handles: self.handles.read().len() as u64,
            slabs_mapped: self.pool.slabs_mapped(),
            slabs_idle: self.pool.slabs_idle(),
        }
    }

    /// Returns to the OS the memory of data freed [`crate::IDLE_DECAY`] or
    /// longer before `now` (until then it is reused first by new data);
    /// returns when more will be due, if any. The daemon calls this
    /// periodically.
    pub fn release_idle_memory(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        self.pool.release_idle(now)
    }

    /// Looks `name` up in `parent` (needs search permission; "." and ".."
    /// work, ".." of the root is the root).
    pub fn lookup(&self, c: &Creds, parent: Ino, name: &[u8]) -> Result<Attr> {
        self.tree.read().lookup(c, parent, name)
    }

    /// Attributes of `ino`.
    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        self.tree.read().attr(ino)
    }

    /// chmod / chown / truncate / utimens. With `fh` (an open handle) a size
    /// change needs the handle to be writable instead of write permission.
    pub fn setattr(&self, c: &Creds, ino: Ino, set: &SetAttr, fh: Option<Fh>) -> Result<Attr> {
        let t = self.tree.read();
        let fh_write = match fh {
            None => None,
            Some(fh) => {
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
        self.tree
            .write()
            .mknod(c, parent, name, mode, rdev, &self.pool)
    }

    /// Creates a directory.
    pub fn mkdir(&self, c: &Creds, parent: Ino, name: &[u8], mode: u32) -> Result<Attr> {
        self.tree.write().mkdir(c, parent, name, mode, &self.pool)
    }

    /// Creates a symbolic link to `target`.
    pub fn symlink(&self, c: &Creds, parent: Ino, name: &[u8], target: &[u8]) -> Result<Attr> {
        self.tree
            .write()
            .symlink(c, parent, name, target, &self.pool)
    }

    /// Adds a hard link to `ino` (directories: EPERM).
    pub fn link(&self, c: &Creds, ino: Ino, newparent: Ino, newname: &[u8]) -> Result<Attr> {
        self.tree
            .write()
            .link(c, ino, newparent, newname, &self.pool)
    }

    /// Removes a non-directory name.
    pub fn unlink(&self, c: &Creds, parent: Ino, name: &[u8]) -> Result<()> {
        self.tree.write().unlink(c, parent, name, &self.pool)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, c: &Creds, parent: Ino, name: &[u8]) -> Result<()> {
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
        self.tree
            .write()
            .rename(c, parent, name, newparent, newname, flags, &self.pool)
    }

    fn add_handle(&self, c: &Creds, node: Arc<Node>, kind: HandleKind) -> Fh {
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
        let (node, kind) = self.tree.read().open(c, ino, flags, &self.pool)?;
        Ok(self.add_handle(c, node, kind))
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
        let (node, kind) = self
            .tree
            .write()
            .create(c, parent, name, mode, flags, &self.pool)?;
        let attr = node.attr();
        Ok((attr, self.add_handle(c, node, kind)))
    }

    /// The node and flags of a handle, without keeping the handle lock.
    fn handle(&self, fh: Fh) -> Result<(Arc<Node>, bool, bool, bool)> {
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

    /// Reads at `offset`; short only at EOF. Takes no tree lock and only the
    /// file's read lock; allocates nothing.
    pub fn read(&self, fh: Fh, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.read_into(fh, offset, buf)
    }

    /// [`Store::read`] into any [`DataSink`] (e.g. shared memory), with no
    /// intermediate buffer.
    pub fn read_into(
        &self,
        fh: Fh,
        offset: u64,
        buf: &mut (impl DataSink + ?Sized),
    ) -> Result<usize> {
        let (node, readable, _, _) = self.handle(fh)?;
        if node.kind == FileKind::Directory {
            return Err(Errno::EISDIR);
        }
        if !readable {
            return Err(Errno::EBADF);
        }
        check_span(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(0);
        }
        let st = node.st.read();
        let n = st.file.read_at(offset, buf);
        node.touch_atime(&st);
        Ok(n)
    }

    /// Writes at `offset` (at EOF for O_APPEND handles). A write that runs
    /// out of space midway returns the short count; ENOSPC if nothing fit.
    pub fn write(&self, c: &Creds, fh: Fh, offset: u64, data: &[u8]) -> Result<Written> {
        self.write_from(c, fh, offset, data, false)
    }

    /// Writes at the end of the file, atomically with respect to other
    /// writers, whatever the handle's open flags (`O_APPEND` set later with
    /// `fcntl(F_SETFL)`).
    pub fn append(&self, c: &Creds, fh: Fh, data: &[u8]) -> Result<Written> {
        self.write_from(c, fh, 0, data, true)
    }

    /// [`Store::write`] (or, with `append`, [`Store::append`]) from any
    /// [`DataSource`] (e.g. shared memory), with no intermediate buffer.
    pub fn write_from(
        &self,
        c: &Creds,
        fh: Fh,
        offset: u64,
        data: &(impl DataSource + ?Sized),
        force_append: bool,
    ) -> Result<Written> {
        let (node, _, writable, append) = self.handle(fh)?;
        let append = append || force_append;
        if !writable {
            return Err(Errno::EBADF);
        }
        check_span(offset, data.len())?;
        let mut st = node.st.write();
        let offset = if append { st.file.size } else { offset };
        if data.is_empty() {
            return Ok(Written { offset, len: 0 });
        }
        if offset >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let len = (data.len() as u64).min(MAX_FILE_SIZE - offset) as usize;
        let kill = node.owner_of(&st).kill_on_write(c);
        let now = Timespec::now();
        if kill != 0 {
            st.perm &= !kill;
            st.ctime = now;
        }
        let n = st.file.write_prefix(&self.pool, offset, data, len)?;
        st.mtime = now;
        st.ctime = now;
        Ok(Written { offset, len: n })
    }

    /// close(2) of one descriptor of the handle: nothing to do in memory.
    pub fn flush(&self, fh: Fh) -> Result<()> {
        self.handle(fh).map(drop)
    }

    /// fsync(2): nothing to do in memory.
    pub fn fsync(&self, fh: Fh) -> Result<()> {
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

    fn drop_open(&self, node: &Node) {
        let t = self.tree.read();
        let left = dec(&node.open, 1);
        if left == 0 && node.st.read().nlink == 0 {
            drop(t);
            // Re-checked under the write lock by maybe_free.
            self.tree.write().maybe_free(node.ino, &self.pool);
        }
    }

    /// Opens a directory for readdir (needs read permission).
    pub fn opendir(&self, c: &Creds, ino: Ino) -> Result<Fh> {
        let (node, kind) = {
            let t = self.tree.read();
            if t.entry(ino)?.dir.is_none() {
                return Err(Errno::ENOTDIR);
            }
            t.open(c, ino, libc::O_RDONLY | libc::O_DIRECTORY, &self.pool)?
        };
        Ok(self.add_handle(c, node, kind))
    }

    /// Calls `f` for entries after cookie `offset` (0 = start; "." and ".."
    /// first) in name order until `f` returns false (buffer full; that entry
    /// is NOT consumed) or the end. Resuming from a cookie continues strictly
    /// after the name it was handed out for, so concurrent inserts and
    /// removals never duplicate an entry or skip a survivor. `f` runs with
    /// no store lock held and may call back into the store.
    pub fn readdir(
        &self,
        fh: Fh,
        offset: u64,
        mut f: impl FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        let (ino, cursor) = {
            let h = self.handles.read();
            let h = h.get(&fh).ok_or(Errno::EBADF)?;
            match &h.kind {
                HandleKind::Dir(cur) => (h.node.ino, cur.clone()),
                HandleKind::File { .. } => return Err(Errno::ENOTDIR),
            }
        };
        let mut pos = match offset {
            0 => Pos::Start,
            1 => Pos::AfterDot,
            2 => Pos::AfterDotDot,
            n => match cursor.lock().names.get(&n) {
                Some(name) => Pos::After(name.clone()),
                None => return Ok(()),
            },
        };
        let mut first = true;
        loop {
            let mut batch: Vec<(Vec<u8>, Attr)> = Vec::new();
            let more;
            {
                let t = self.tree.read();
                let e = t.entry(ino)?;
                let dir = e.dir.as_ref().ok_or(Errno::ENOTDIR)?;
                {
                    let st = e.node.st.read();
                    if st.nlink == 0 {
                        return Err(Errno::ENOENT);
                    }
                    if first {
                        e.node.touch_atime(&st);
                        first = false;
                    }
                }
                if matches!(pos, Pos::Start) {
                    batch.push((b".".to_vec(), e.node.attr()));
                }
                if matches!(pos, Pos::Start | Pos::AfterDot) {
                    batch.push((b"..".to_vec(), t.attr(dir.parent)?));
                }
                let lower: Bound<&[u8]> = match &pos {
                    Pos::After(name) => Bound::Excluded(name.as_slice()),
                    _ => Bound::Unbounded,
                };
                let mut n = 0;
                let mut it = dir.children.range::<[u8], _>((lower, Bound::Unbounded));
                for (name, &child) in it.by_ref().take(READDIR_BATCH) {
                    batch.push((name.clone(), t.attr(child)?));
                    n += 1;
                }
                more = n == READDIR_BATCH && it.next().is_some();
            }
            for (name, attr) in batch {
                let cookie = match name.as_slice() {
                    b"." => 1,
                    b".." => 2,
                    _ => cursor.lock().cookie_of(&name),
                };
                let de = DirEntry {
                    ino: attr.ino,
                    next: cookie,
                    kind: attr.kind,
                    name: &name,
                    attr,
                };
                if !f(&de) {
                    return Ok(());
                }
                pos = match name.as_slice() {
                    b"." => Pos::AfterDot,
                    b".." => Pos::AfterDotDot,
                    _ => Pos::After(name),
                };
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Drops a directory handle.
    pub fn releasedir(&self, fh: Fh) -> Result<()> {
        self.release(fh)
    }

    /// The path of directory `ino` below the root as its names stand now
    /// (empty for the root, no leading slash); `ENOENT` once it was
    /// removed, `ENOTDIR` for another kind of file.
    pub fn dir_path(&self, ino: Ino) -> Result<Vec<u8>> {
        self.tree.read().dir_path(ino)
    }

    /// The inode a handle refers to.
    pub fn handle_ino(&self, fh: Fh) -> Result<Ino> {
        Ok(self.handle(fh)?.0.ino)
    }

    /// setxattr(2). `flags`: XATTR_CREATE / XATTR_REPLACE.
    pub fn setxattr(
        &self,
        c: &Creds,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<()> {
        self.tree
            .read()
            .setxattr(c, ino, name, value, flags, &self.pool)
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
        self.tree.read().removexattr(c, ino, name, &self.pool)
    }

    /// access(2): F_OK or any of R_OK / W_OK / X_OK.
    pub fn access(&self, c: &Creds, ino: Ino, mask: i32) -> Result<()> {
        self.tree.read().access(c, ino, mask)
    }

    /// fallocate(2): mode 0, FALLOC_FL_KEEP_SIZE, or
    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE.
    pub fn fallocate(&self, fh: Fh, offset: u64, len: u64, mode: i32) -> Result<()> {
        const SUPPORTED: i32 = libc::FALLOC_FL_KEEP_SIZE
            | libc::FALLOC_FL_PUNCH_HOLE
            | libc::FALLOC_FL_COLLAPSE_RANGE
            | libc::FALLOC_FL_ZERO_RANGE
            | libc::FALLOC_FL_INSERT_RANGE
            | libc::FALLOC_FL_UNSHARE_RANGE;
        let (node, _, writable, _) = self.handle(fh)?;
        if offset > MAX_FILE_SIZE || len == 0 || len > MAX_FILE_SIZE {
            return Err(Errno::EINVAL);
        }
        if mode & !SUPPORTED != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let punch = mode & libc::FALLOC_FL_PUNCH_HOLE != 0;
        let keep = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        if punch && (mode & libc::FALLOC_FL_ZERO_RANGE != 0 || !keep) {
            return Err(Errno::EOPNOTSUPP);
        }
        for excl in [libc::FALLOC_FL_COLLAPSE_RANGE, libc::FALLOC_FL_INSERT_RANGE] {
            if mode & excl != 0 && mode & !excl != 0 {
                return Err(Errno::EINVAL);
            }
        }
        if !writable {
            return Err(Errno::EBADF);
        }
        match node.kind {
            FileKind::Regular => {}
            FileKind::Fifo => return Err(Errno::ESPIPE),
            FileKind::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENODEV),
        }
        if offset + len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        if mode & !(libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let opener = {
            let h = self.handles.read();
            h.get(&fh).ok_or(Errno::EBADF)?.opener.clone()
        };
        let mut st = node.st.write();
        if punch {
            st.file.punch(&self.pool, offset, len);
        } else {
            st.file.allocate(&self.pool, offset, len, keep)?;
        }
        // file_modified: clear setid bits, update mtime and ctime.
        let kill = node.owner_of(&st).kill_on_write(&opener);
        st.perm &= !kill;
        let now = Timespec::now();
        st.mtime = now;
        st.ctime = now;
        Ok(())
    }

    /// lseek(2) with SEEK_DATA or SEEK_HOLE (others: EINVAL).
    pub fn lseek(&self, fh: Fh, offset: u64, whence: i32) -> Result<u64> {
        let (node, _, _, _) = self.handle(fh)?;
        if node.kind != FileKind::Regular {
            return Err(Errno::EINVAL);
        }
        let st = node.st.read();
        match whence {
            libc::SEEK_DATA => st.file.seek_data(offset),
            libc::SEEK_HOLE => st.file.seek_hole(offset),
            _ => Err(Errno::EINVAL),
        }
    }

    /// copy_file_range(2): copies up to `len` bytes, at most
    /// [`MAX_RW_COUNT`] (holes stay holes and cost nothing); 0 at EOF of the
    /// input.
    pub fn copy_file_range(
        &self,
        c: &Creds,
        fh_in: Fh,
        off_in: u64,
        fh_out: Fh,
        off_out: u64,
        len: u64,
    ) -> Result<usize> {
        self.copy_file_range_part(c, fh_in, off_in, fh_out, off_out, len, MAX_RW_COUNT)
    }

    /// [`Store::copy_file_range`] of `len` bytes (every check, overlap
    /// included, is of the whole call) that moves at most `most` of them
    /// (and never more than [`MAX_RW_COUNT`]): a front door that splits a
    /// long copy into parts calls it for each, with the offsets advanced.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_file_range_part(
        &self,
        c: &Creds,
        fh_in: Fh,
        off_in: u64,
        fh_out: Fh,
        off_out: u64,
        len: u64,
        most: u64,
    ) -> Result<usize> {
        let most = most.min(MAX_RW_COUNT);
        let (nin, rin, _, _) = self.handle(fh_in)?;
        let (nout, _, wout, aout) = self.handle(fh_out)?;
        if nin.kind == FileKind::Directory || nout.kind == FileKind::Directory {
            return Err(Errno::EISDIR);
        }
        if nin.kind != FileKind::Regular || nout.kind != FileKind::Regular {
            return Err(Errno::EINVAL);
        }
        if !rin || !wout || aout {
            return Err(Errno::EBADF);
        }
        check_off(off_in)?;
        check_off(off_out)?;
        // generic_copy_file_checks: only a real wrap is EOVERFLOW (callers
        // such as cp pass huge lengths).
        if off_in.checked_add(len).is_none() || off_out.checked_add(len).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        // Shorten to the input's EOF, then to the maximum file size (the
        // kernel's checks, overlap included, see this count); the copy then
        // moves at most `most` (MAX_RW_COUNT, as in the kernel: the caller
        // gets a short count and calls again).
        let count = |size_in: u64| -> Result<u64> {
            let count = len.min(size_in.saturating_sub(off_in));
            if off_out >= MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
            Ok(count.min(MAX_FILE_SIZE - off_out))
        };
        // Lock order between two nodes: lower ino first.
        if Arc::ptr_eq(&nin, &nout) {
            let mut st = nin.st.write();
            let count = count(st.file.size)?;
            if off_out + count > off_in && off_out < off_in + count {
                return Err(Errno::EINVAL);
            }
            let count = count.min(most);
            self.copy_locked(c, &nout, None, &mut st, off_in, off_out, count)
        } else {
            let (sin, mut sout) = if nin.ino < nout.ino {
                let sin = nin.st.read();
                (sin, nout.st.write())
            } else {
                let sout = nout.st.write();
                (nin.st.read(), sout)
            };
            let count = count(sin.file.size)?.min(most);
            let n = self.copy_locked(c, &nout, Some(&sin.file), &mut sout, off_in, off_out, count);
            nin.touch_atime(&sin);
            n
        }
    }

    /// The copy loop of `copy_file_range`, with both nodes locked. `src` is
    /// `None` when copying within `out` itself.
    #[allow(clippy::too_many_arguments)]
    fn copy_locked(
        &self,
        c: &Creds,
        nout: &Node,
        src: Option<&FileData>,
        out: &mut Meta,
        off_in: u64,
        off_out: u64,
        count: u64,
    ) -> Result<usize> {
        if count == 0 {
            return Ok(0);
        }
        let kill = nout.owner_of(out).kill_on_write(c);
        out.perm &= !kill;
        let bs = BLOCK_SIZE as u64;
        let mut tmp = [0u8; BLOCK_SIZE];
        let end = off_in + count;
        let mut done = 0u64;
        // Walks the source's written blocks only: a hole, however long, is
        // one step (the destination's blocks inside it are zeroed).
        while done < count {
            let pos = off_in + done;
            let dpos = off_out + done;
            let data = {
                let source = src.unwrap_or(&out.file);
                let data = source.next_written(pos, end).unwrap_or(end);
                if data == pos {
                    source.read_at(pos, &mut tmp[..(bs - pos % bs).min(end - pos) as usize]);
                }
                data
            };
            if data > pos {
                out.file.zero_range_extend(dpos, data - pos);
                done += data - pos;
                continue;
            }
            let n = (bs - pos % bs).min(end - pos);
            match out.file.write_at(&self.pool, dpos, &tmp[..n as usize]) {
                Ok(w) if w as u64 == n => {}
                Ok(w) => {
                    done += w as u64;
                    break;
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
            done += n;
        }
        let now = Timespec::now();
        out.mtime = now;
        out.ctime = now;
        Ok(done as usize)
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
        let node = self
            .handles
            .read()
            .get(&fh)
            .ok_or(Errno::EBADF)?
            .node
            .clone();
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
