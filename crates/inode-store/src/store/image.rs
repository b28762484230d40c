//! Whole-tree snapshots and restores, for images and `--from` loads.
//!
//! # Snapshot: a consistent cut without stopping writers
//!
//! [`Store::snapshot`] takes the tree write lock (no namespace change can
//! run), then the `st` write lock of every inode reachable from the root,
//! in inode order (the crate's lock order for two nodes), so that no data
//! operation is half done on any of them: that instant is the cut. Under
//! these locks it copies all metadata (owners, modes, times, xattrs,
//! directory entries, symlink targets, sizes) and arms copy-on-write on
//! every regular file (`file::snap`), then lets everything go. The cost is
//! one pass over the inodes, not over the data.
//!
//! The data is copied afterwards, file by file and a chunk of blocks at a
//! time, each chunk under that one file's lock only ([`Snapshot::read_file`]);
//! a writer that changes a block not copied yet keeps its pre-image first.
//! So the saved tree is the tree at the cut, while both doors keep writing.
//!
//! # Restore
//!
//! [`Store::restore`] builds a store from [`NodeImage`]s (from an image
//! or a directory walk) and checks that they form one tree: a root
//! directory, every entry naming a known inode, each directory named once,
//! link counts that match the entries, valid names, sizes and xattrs. File
//! data then goes in with [`Store::load_data`], before the store is served.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::xattr::xattr_ns;
use super::{check_name, is_dot, Dir, Entry, Inner, Meta, Node, Store, BOGO_DIRENT_SIZE, SEVERAL};
use super::{dirent_cost, xattr_cost, INODE_COST, SYMLINK_MAX, XATTR_SIZE_MAX};
use crate::file::FileData;
use crate::{Errno, FileKind, Ino, Result, Timespec, BLOCK_SIZE, MAX_FILE_SIZE, ROOT_INO};

/// Everything about one inode that an image keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeImage {
    /// Inode number (the root is [`ROOT_INO`]).
    pub ino: Ino,
    /// File type.
    pub kind: FileKind,
    /// `mode & 0o7777`.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard links (directories: 2 + subdirectories).
    pub nlink: u32,
    /// Device number of a device node.
    pub rdev: u32,
    /// Size in bytes (regular files; other kinds' sizes are derived).
    pub size: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last data modification.
    pub mtime: Timespec,
    /// Last status change (a restore keeps it; a `--from` load cannot read
    /// a settable one, so it is the source's).
    pub ctime: Timespec,
    /// Symlink target (empty for other kinds).
    pub target: Vec<u8>,
    /// Extended attributes, by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Directory entries (name, inode), for directories.
    pub entries: Vec<(Vec<u8>, Ino)>,
}

/// Why a set of [`NodeImage`]s or a data extent was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The nodes do not form a valid tree: what is wrong, and where.
    Invalid(&'static str, Ino),
    /// The data or inodes do not fit in the store's capacity.
    NoSpace,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Invalid(what, ino) => write!(f, "{what} (inode {ino})"),
            RestoreError::NoSpace => write!(f, "the tree does not fit in the store's size"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// A point-in-time copy of a store's tree: metadata copied at the cut,
/// file data read on demand as it was at the cut (see the module docs).
/// Dropping it ends copy-on-write on the files not read to the end.
pub struct Snapshot<'a> {
    store: &'a Store,
    nodes: Vec<NodeImage>,
    /// The regular files, in the order of `nodes`, with their size at the cut.
    files: Vec<(Arc<Node>, u64)>,
}

impl Snapshot<'_> {
    /// Every inode of the tree at the cut, in inode order (root first).
    pub fn nodes(&self) -> &[NodeImage] {
        &self.nodes
    }

    /// Number of regular files (indices for [`Snapshot::read_file`]).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Inode and size at the cut of regular file `i`.
    pub fn file(&self, i: usize) -> (Ino, u64) {
        let (node, size) = &self.files[i];
        (node.ino, *size)
    }

    /// Hands `sink` the data blocks (holes skipped) among blocks
    /// `from..from + n` of file `i`, as they were at the cut, each cut to the
    /// file's size at the cut. Holds that file's lock for the call only.
    /// Returns the next block to read; equal to `from` at the end.
    pub fn read_file(&self, i: usize, from: u64, n: u64, mut sink: impl FnMut(u64, &[u8])) -> u64 {
        let (node, size) = &self.files[i];
        let mut st = node.st.write();
        st.file.snap_read(from, n, |bi, bytes| {
            let start = bi * BLOCK_SIZE as u64;
            let len = (size - start).min(BLOCK_SIZE as u64) as usize;
            sink(bi, &bytes[..len]);
        })
    }

    /// Ends copy-on-write on file `i` (its data was read).
    pub fn end_file(&self, i: usize) {
        self.files[i].0.st.write().file.snap_end();
    }

    /// The store this is a snapshot of.
    pub fn store(&self) -> &Store {
        self.store
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        for (node, _) in &self.files {
            node.st.write().file.snap_end();
        }
    }
}

impl Store {
    /// Takes a consistent point-in-time snapshot of the whole tree (inodes
    /// reachable from the root); writers wait only while metadata is copied.
    /// EBUSY while another snapshot of this store is alive.
    pub fn snapshot(&self) -> Result<Snapshot<'_>> {
        let t = self.tree.write();
        // Every inode reachable from the root, once each, in inode order.
        // Directories are named once, so only hard-linked files repeat.
        let mut entries: Vec<(Ino, &Entry)> = Vec::with_capacity(t.nodes.len());
        let mut stack = vec![ROOT_INO];
        while let Some(ino) = stack.pop() {
            if let Some(e) = t.nodes.get(&ino) {
                entries.push((ino, e));
                if let Some(d) = &e.dir {
                    stack.extend(d.children.values().copied());
                }
            }
        }
        entries.sort_unstable_by_key(|&(ino, _)| ino);
        entries.dedup_by_key(|&mut (ino, _)| ino);
        let entries: Vec<&Entry> = entries.into_iter().map(|(_, e)| e).collect();
        // The cut: every inode locked at once, in inode order.
        let mut guards: Vec<_> = entries.iter().map(|e| e.node.st.write()).collect();
        if guards.iter().any(|st| st.file.snap_running()) {
            return Err(Errno::EBUSY);
        }
        let mut nodes = Vec::with_capacity(entries.len());
        let mut files = Vec::new();
        for (e, st) in entries.iter().zip(guards.iter_mut()) {
            let n = &e.node;
            if n.kind == FileKind::Regular {
                st.file.snap_begin();
                files.push((n.clone(), st.file.size));
            }
            nodes.push(NodeImage {
                ino: n.ino,
                kind: n.kind,
                perm: st.perm,
                uid: st.uid,
                gid: st.gid,
                nlink: st.nlink,
                rdev: n.rdev,
                size: st.file.size,
                atime: *n.atime.lock(),
                mtime: st.mtime,
                ctime: st.ctime,
                target: n.target.to_vec(),
                xattrs: st
                    .xattrs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                entries: e.dir.as_ref().map_or_else(Vec::new, |d| {
                    d.children.iter().map(|(k, &v)| (k.clone(), v)).collect()
                }),
            });
        }
        drop(guards);
        drop(t);
        Ok(Snapshot {
            store: self,
            nodes,
            files,
        })
    }

    /// A store of `capacity_bytes` holding the tree `nodes` describe (file
    /// data empty: holes of each file's size, to fill with
    /// [`Store::load_data`]). Refuses anything that is not one valid tree.
    pub fn restore(
        capacity_bytes: u64,
        max_inodes: u64,
        nodes: Vec<NodeImage>,
    ) -> std::result::Result<Store, RestoreError> {
        let store = Store::with_limits(capacity_bytes, max_inodes);
        let meta = store.tree.write().restore(nodes)?;
        // The restored metadata counts against the size as if it had been
        // created one call at a time.
        store
            .pool
            .charge_meta(meta)
            .map_err(|_| RestoreError::NoSpace)?;
        Ok(store)
    }

    /// Writes `data` at `offset` of regular file `ino` while restoring (no
    /// permission check, no time change). Refused past the file's size.
    pub fn load_data(
        &self,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> std::result::Result<(), RestoreError> {
        let node = self
            .tree
            .read()
            .node(ino)
            .map_err(|_| RestoreError::Invalid("data for an unknown inode", ino))?;
        let mut st = node.st.write();
        let end = offset.checked_add(data.len() as u64);
        if node.kind != FileKind::Regular || end.is_none_or(|e| e > st.file.size) {
            return Err(RestoreError::Invalid("data outside a regular file", ino));
        }
        match st.file.write_at(&self.pool, offset, data) {
            Ok(n) if n == data.len() => Ok(()),
            _ => Err(RestoreError::NoSpace),
        }
    }
}

impl Inner {
    /// Replaces the (fresh) tree by the one `images` describe (see
    /// [`Store::restore`]); the bytes of metadata it holds beyond a fresh
    /// tree's, as creating it call by call would have charged them.
    fn restore(&mut self, images: Vec<NodeImage>) -> std::result::Result<u64, RestoreError> {
        use RestoreError::Invalid;
        if images.len() as u64 > self.max_inodes {
            return Err(RestoreError::NoSpace);
        }
        let mut kinds: HashMap<Ino, FileKind> = HashMap::with_capacity(images.len());
        for n in &images {
            if n.ino == 0 || kinds.insert(n.ino, n.kind).is_some() {
                return Err(Invalid("inode number zero or repeated", n.ino));
            }
        }
        if kinds.get(&ROOT_INO) != Some(&FileKind::Directory) {
            return Err(Invalid("no root directory", ROOT_INO));
        }
        // Names: every directory named once (the root never), every other
        // inode as often as its link count says.
        let mut parent_of: HashMap<Ino, (Ino, Vec<u8>)> = HashMap::new();
        let mut links: HashMap<Ino, u32> = HashMap::new();
        for n in &images {
            if !n.entries.is_empty() && n.kind != FileKind::Directory {
                return Err(Invalid("entries in a non-directory", n.ino));
            }
            for (name, child) in &n.entries {
                if is_dot(name) || check_name(name).is_err() {
                    return Err(Invalid("invalid name", n.ino));
                }
                match kinds.get(child) {
                    None => return Err(Invalid("entry names an unknown inode", n.ino)),
                    Some(FileKind::Directory) => {
                        if *child == ROOT_INO
                            || parent_of.insert(*child, (n.ino, name.clone())).is_some()
                        {
                            return Err(Invalid("directory named twice", *child));
                        }
                    }
                    Some(_) => {
                        let c = links.entry(*child).or_default();
                        *c = c.saturating_add(1);
                    }
                }
            }
        }
        // Reachability from the root (with directories named once, this
        // also rules out cycles).
        let by_ino: HashMap<Ino, &NodeImage> = images.iter().map(|n| (n.ino, n)).collect();
        let mut reached = 0usize;
        let mut stack = vec![ROOT_INO];
        let mut seen = std::collections::HashSet::new();
        while let Some(ino) = stack.pop() {
            if !seen.insert(ino) {
                continue;
            }
            reached += 1;
            stack.extend(by_ino[&ino].entries.iter().map(|(_, c)| *c));
        }
        if reached != images.len() {
            return Err(Invalid("inode not reachable from the root", 0));
        }
        self.nodes.clear();
        self.released.clear();
        let mut max_ino = ROOT_INO;
        let mut meta = 0u64;
        for n in images {
            if n.ino != ROOT_INO {
                meta += INODE_COST + n.target.len() as u64;
            }
            meta += n
                .entries
                .iter()
                .map(|(name, _)| dirent_cost(name))
                .sum::<u64>();
            meta += n.xattrs.iter().map(|(k, v)| xattr_cost(k, v)).sum::<u64>();
            let subdirs = n
                .entries
                .iter()
                .filter(|(_, c)| kinds[c] == FileKind::Directory)
                .count() as u32;
            let (nlink_ok, size) = match n.kind {
                FileKind::Directory => (
                    n.nlink == 2 + subdirs,
                    (2 + n.entries.len() as u64) * BOGO_DIRENT_SIZE,
                ),
                FileKind::Symlink => (links.get(&n.ino) == Some(&n.nlink), n.target.len() as u64),
                _ => (links.get(&n.ino) == Some(&n.nlink), n.size),
            };
            if !nlink_ok {
                return Err(Invalid("link count does not match the entries", n.ino));
            }
            let target_ok = match n.kind {
                FileKind::Symlink => {
                    !n.target.is_empty() && n.target.len() <= SYMLINK_MAX && !n.target.contains(&0)
                }
                _ => n.target.is_empty(),
            };
            if !target_ok
                || n.perm > 0o7777
                || size > MAX_FILE_SIZE
                || n.atime.nsec >= 1_000_000_000
                || n.mtime.nsec >= 1_000_000_000
                || n.ctime.nsec >= 1_000_000_000
            {
                return Err(Invalid("invalid attributes", n.ino));
            }
            let mut xattrs = BTreeMap::new();
            for (k, v) in n.xattrs {
                if xattr_ns(&k).is_err()
                    || v.len() > XATTR_SIZE_MAX
                    || xattrs.insert(k, v).is_some()
                {
                    return Err(Invalid("invalid extended attribute", n.ino));
                }
            }
            let dir = (n.kind == FileKind::Directory).then(|| {
                let (parent, name) = parent_of.remove(&n.ino).unwrap_or((ROOT_INO, Vec::new()));
                Box::new(Dir {
                    parent,
                    name,
                    children: n.entries.into_iter().collect(),
                })
            });
            max_ino = max_ino.max(n.ino);
            let node = Arc::new(Node {
                ino: n.ino,
                kind: n.kind,
                rdev: n.rdev,
                target: n.target.into(),
                st: RwLock::new(Meta {
                    perm: n.perm,
                    uid: n.uid,
                    gid: n.gid,
                    nlink: n.nlink,
                    mtime: n.mtime,
                    ctime: n.ctime,
                    file: FileData::with_size(size),
                    xattrs,
                }),
                atime: Mutex::new(n.atime),
                open: AtomicU64::new(0),
                lookups: AtomicU64::new(0),
                parent: AtomicU64::new(ROOT_INO),
            });
            self.nodes.insert(n.ino, Entry { node, dir });
        }
        // Each node's parent, now that all are in (see `Node::parent`).
        for (&d, e) in self.nodes.iter() {
            for &child in e.dir.iter().flat_map(|dir| dir.children.values()) {
                if let Some(c) = self.nodes.get(&child) {
                    let several = c.dir.is_none() && c.node.st.read().nlink > 1;
                    let parent = if several { SEVERAL } else { d };
                    c.node.parent.store(parent, Ordering::Relaxed);
                }
            }
        }
        self.next_ino = max_ino + 1;
        Ok(meta)
    }
}
