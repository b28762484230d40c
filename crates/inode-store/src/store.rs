//! The store: inode table, namespace operations and file I/O.
//!
//! See the crate docs for the lock order. `Inner` holds the inode table and
//! every namespace rule; its methods are called with the tree lock held
//! (`&mut self` = write lock) and are unit-testable without threads.
//!
//! This file holds the types (nodes, directories, handles), the inode
//! table's bookkeeping and the [`Store`] itself; its operations are split
//! by concern: `tree` (names, links, rename, lookup references), `attrs`
//! (setattr, access), `handles` (open, create, release), `xattr`,
//! `readdir`, `data` (read, write, fallocate, seek, copy) and `image`
//! (snapshots and restore).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

mod attrs;
mod data;
mod handles;
mod image;
mod ino_hash;
mod listings;
mod readdir;
mod tree;
mod xattr;
pub use image::{NodeImage, RestoreError, Snapshot};
pub use readdir::RecordBatch;

use crate::acl;
use crate::file::FileData;
use crate::generation::{Change, GenCell, SEVERAL};
use crate::io::{DataSink, DataSource};
use crate::perm::{Owner, R, S_ISGID, S_ISUID, S_ISVTX, S_IXGRP, W, X};
use crate::pool::BlockPool;
use crate::{
    Attr, Caps, Creds, DirEntry, Errno, Fh, FileKind, FileRef, Ino, RenameFlags, Result, SetAttr,
    StatFs, TimeSet, Timespec, Usage, Written, BLOCK_SIZE, MAX_FILE_SIZE, MAX_RW_COUNT, NAME_MAX,
    ROOT_INO, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_SIZE_MAX,
};
use ino_hash::InoMap;
use proto::changes::LISTED;

/// tmpfs accounts 20 bytes of directory size per entry (BOGO_DIRENT_SIZE),
/// starting at 40 for "." and "..".
const BOGO_DIRENT_SIZE: u64 = 20;
/// Longest symlink target (tmpfs: one page including the NUL).
const SYMLINK_MAX: usize = BLOCK_SIZE - 1;
/// Targets at least this long take a page on tmpfs (st_blocks = 8).
const SHORT_SYMLINK_LEN: usize = 128;
/// Entries gathered per readdir batch (the closure runs with no lock held).
const READDIR_BATCH: usize = 128;
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
fn shrink_sparse<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(m: &mut HashMap<K, V, S>) {
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

/// The name of a file's capabilities (`setcap`).
const FILE_CAPS: &[u8] = b"security.capability";

impl Meta {
    /// Linux's `cap_inode_killpriv`: a write, truncate or allocation of a
    /// file's bytes, and a chown of anything but a directory, drop the
    /// file's capabilities, whoever the caller (the kernel does it in
    /// `file_remove_privs` and `chown_common` before the filesystem sees
    /// the call; here both doors' calls reach the store without it).
    fn drop_file_caps(&mut self, pool: &BlockPool) {
        if self.xattrs.is_empty() {
            return;
        }
        if let Some(v) = self.xattrs.remove(FILE_CAPS) {
            pool.uncharge_meta(xattr_cost(FILE_CAPS, &v));
        }
    }
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
    /// The directory that names this node, or [`SEVERAL`] once it may have
    /// more than one name; what a change of its attributes touched besides
    /// itself (that directory's listing holds them: see the `generation`
    /// module). Written under the tree's write lock.
    parent: AtomicU64,
}

impl Node {
    /// What a change of this node's attributes (not of its permissions,
    /// if a directory: those reach every path below it) touches: itself,
    /// and the listing of the directory that holds them ([`SEVERAL`]:
    /// global).
    fn attrs_touch(&self) -> [Ino; 2] {
        match self.parent.load(Ordering::Relaxed) {
            SEVERAL => [self.ino, SEVERAL],
            parent => [self.ino, parent | LISTED],
        }
    }

    /// Records that this node's name moved to directory `dir` (a node with
    /// several names keeps [`SEVERAL`]).
    fn moved_to(&self, dir: Ino) {
        let _ = self
            .parent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                (p != SEVERAL).then_some(dir)
            });
    }

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
            xattrs: !m.xattrs.is_empty(),
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
    /// The update counts as a change in `gens`, of this node's attributes.
    fn touch_atime(&self, m: &Meta, gens: &GenCell) {
        let now = Timespec::now();
        let Some(mut a) = self.atime.try_lock() else {
            return;
        };
        if atime_due(*a, m, now) {
            let mut change = gens.change();
            change.touches(&self.attrs_touch());
            *a = now;
        }
    }

    /// Whether a read now would update the atime (see `touch_atime`).
    fn atime_due_now(&self, m: &Meta) -> bool {
        atime_due(*self.atime.lock(), m, Timespec::now())
    }
}

/// relatime's rule: an atime `a` not newer than the mtime or the ctime,
/// or more than a day older than `now`, is updated by a read.
fn atime_due(a: Timespec, m: &Meta, now: Timespec) -> bool {
    a <= m.mtime || a <= m.ctime || now.sec.saturating_sub(a.sec) >= DAY_SECS
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
    /// `Some` for directories. Boxed so that an entry is two words: the
    /// inode table is probed for every attribute a listing returns, and a
    /// small table keeps those probes in cache (a 10 000-entry directory
    /// walk spent half of its attribute time on table misses).
    dir: Option<Box<Dir>>,
}

/// The inode table and namespace. Guarded by the store's tree lock.
pub(crate) struct Inner {
    nodes: InoMap<Entry>,
    next_ino: Ino,
    max_inodes: u64,
    /// Inodes gone from the namespace and closed that stay in `nodes`, with
    /// their data (the kernel may have them open, see `maybe_free`), only
    /// until the lookup references on them are dropped (the kernel sends
    /// FUSE `FORGET` some time after an unlink returns): they do not count
    /// against `max_inodes`, as on tmpfs, where such an inode is free at
    /// once.
    released: HashSet<Ino>,
    /// Asked before an inode with no name and no handle is freed: whether
    /// a front door still needs it (see [`Store::keep_unlinked`]).
    keeper: Option<Box<Keeper>>,
}

/// See [`Store::keep_unlinked`].
pub type Keeper = dyn Fn(Ino) -> bool + Send + Sync;

#[derive(Default)]
struct DirCursor {
    /// The names this handle handed out, end to end; cookie
    /// `FIRST_NAME_COOKIE + i` stands for the name that ends at `ends[i]`.
    /// One buffer rather than a `Vec` per name: a listing then costs no
    /// allocation per entry (a fifth of a 100-entry readdir's time).
    names: Vec<u8>,
    ends: Vec<usize>,
    /// name -> its cookie, made only once the directory is read again
    /// from the start through this handle (rewinddir, a reader that
    /// loops): a name handed out again keeps its cookie, so the handle
    /// grows with the names the directory held, not with how often it was
    /// read. A first pass, the common case, never hashes.
    reread: Option<HashMap<Vec<u8>, u64>>,
}

/// Cookies 1 and 2 are `.` and `..`; named entries come after.
const FIRST_NAME_COOKIE: u64 = 3;

impl DirCursor {
    /// The `i`th name handed out.
    fn name(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        Some(&self.names[start..end])
    }

    /// The name cookie `c` was handed out for.
    fn name_of(&self, c: u64) -> Option<&[u8]> {
        self.name(usize::try_from(c.checked_sub(FIRST_NAME_COOKIE)?).ok()?)
    }

    /// A listing starts again from the top: from now on names already
    /// handed out keep their cookies.
    fn rewind(&mut self) {
        if self.reread.is_none() && !self.ends.is_empty() {
            let map = (0..self.ends.len()).filter_map(|i| {
                let name = self.name(i)?.to_vec();
                Some((name, FIRST_NAME_COOKIE + i as u64))
            });
            self.reread = Some(map.collect());
        }
    }

    /// Whether nothing was handed out through this handle yet.
    fn fresh(&self) -> bool {
        self.ends.is_empty() && self.reread.is_none()
    }

    /// Hands out names `names` (end to end, each ending at an offset of
    /// `ends`) after those handed out before, as [`DirCursor::cookie_of`]
    /// would one by one.
    fn hand_out(&mut self, names: &[u8], ends: impl Iterator<Item = usize>) {
        let base = self.names.len();
        self.names.extend_from_slice(names);
        self.ends.extend(ends.map(|e| base + e));
    }

    /// The cookie of `name`, given it on first use.
    fn cookie_of(&mut self, name: &[u8]) -> u64 {
        if let Some(&c) = self.reread.as_ref().and_then(|m| m.get(name)) {
            return c;
        }
        let c = FIRST_NAME_COOKIE + self.ends.len() as u64;
        self.names.extend_from_slice(name);
        self.ends.push(self.names.len());
        if let Some(m) = self.reread.as_mut() {
            m.insert(name.to_vec(), c);
        }
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
            parent: AtomicU64::new(ROOT_INO),
        });
        let mut nodes = InoMap::default();
        nodes.insert(
            ROOT_INO,
            Entry {
                node: root,
                dir: Some(Box::new(Dir {
                    parent: ROOT_INO,
                    name: Vec::new(),
                    children: BTreeMap::new(),
                })),
            },
        );
        Inner {
            nodes,
            next_ino: ROOT_INO + 1,
            max_inodes,
            released: HashSet::new(),
            keeper: None,
        }
    }

    fn entry(&self, ino: Ino) -> Result<&Entry> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node(&self, ino: Ino) -> Result<Arc<Node>> {
        Ok(self.entry(ino)?.node.clone())
    }

    fn dir(&self, ino: Ino) -> Result<&Dir> {
        self.entry(ino)?.dir.as_deref().ok_or(Errno::ENOTDIR)
    }

    fn dir_mut(&mut self, ino: Ino) -> &mut Dir {
        self.nodes
            .get_mut(&ino)
            .and_then(|e| e.dir.as_deref_mut())
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

    /// Whether `name` in `parent` is `ino`, a regular file everyone may
    /// read or a directory everyone may list and search, in a directory
    /// that is public (see [`Inner::public_dir`]), and has no extended
    /// attributes (so no ACL): what any process may learn by asking.
    fn public(&self, parent: Ino, name: &[u8], ino: Ino) -> bool {
        self.child(parent, name) == Some(ino)
            && self.open_to_all(ino, false)
            && self.public_dir(parent)
    }

    /// Whether `parent` has no `name` and is public (see
    /// [`Inner::public_dir`]): anyone may learn that it has none.
    fn public_absence(&self, parent: Ino, name: &[u8]) -> bool {
        self.child(parent, name).is_none() && self.public_dir(parent)
    }

    /// Whether directory `dir` is one everyone may list and search, reached
    /// from the root through such directories only, none with extended
    /// attributes: then anyone may learn which names it holds.
    fn public_dir(&self, dir: Ino) -> bool {
        let mut cur = dir;
        for _ in 0..=self.nodes.len() {
            if !self.open_to_all(cur, true) {
                return false;
            }
            if cur == ROOT_INO {
                return true;
            }
            let Ok(d) = self.dir(cur) else {
                return false;
            };
            if self.child(d.parent, &d.name) != Some(cur) {
                return false;
            }
            cur = d.parent;
        }
        false
    }

    /// Whether `ino` is a directory everyone may list and search, or (not
    /// `dir_only`) a regular file everyone may read, without extended
    /// attributes.
    fn open_to_all(&self, ino: Ino, dir_only: bool) -> bool {
        self.attr(ino).is_ok_and(|a| {
            let bits = match a.kind {
                FileKind::Directory => 0o555,
                FileKind::Regular if !dir_only => 0o444,
                _ => return false,
            };
            a.perm & bits == bits && !a.xattrs
        })
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

    /// Inodes that count against the inode limit: every one still named or
    /// open (see [`Inner::released`]).
    fn inodes_in_use(&self) -> u64 {
        (self.nodes.len() - self.released.len()) as u64
    }

    /// Frees an inode with no name, no open handle and no lookup
    /// reference. A lookup reference keeps the data too: the kernel opens
    /// files without telling the store (the FUSE door answers OPEN with
    /// ENOSYS), so a file it has open is known only by its lookup count.
    fn maybe_free(&mut self, ino: Ino, pool: &BlockPool) {
        let Some(e) = self.nodes.get(&ino) else {
            return;
        };
        let node = e.node.clone();
        let mut st = node.st.write();
        if st.nlink > 0 || node.open.load(Ordering::Acquire) > 0 || ino == ROOT_INO {
            return;
        }
        if node.lookups.load(Ordering::Acquire) > 0 || self.keeper.as_ref().is_some_and(|k| k(ino))
        {
            self.released.insert(ino);
        } else {
            st.file.free_all(pool);
            self.released.remove(&ino);
            let xattrs: u64 = st.xattrs.iter().map(|(k, v)| xattr_cost(k, v)).sum();
            pool.uncharge_meta(INODE_COST + node.target.len() as u64 + xattrs);
            st.xattrs.clear();
            drop(st);
            self.nodes.remove(&ino);
            shrink_sparse(&mut self.nodes);
        }
    }
}

/// The filesystem: one per mount, shared by every front door.
/// `Send + Sync`; every method takes `&self`.
pub struct Store {
    tree: RwLock<Inner>,
    handles: RwLock<HashMap<Fh, Handle>>,
    next_fh: AtomicU64,
    /// Change generations (see the `generation` module).
    pub(crate) gens: GenCell,
    /// Directory listings kept while nothing changes.
    listings: listings::Listings,
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
            gens: GenCell::default(),
            listings: listings::Listings::default(),
            pool: BlockPool::new(blocks),
        }
    }

    /// statfs(2) totals.
    pub fn statfs(&self) -> StatFs {
        let (files, used_inodes) = {
            let t = self.tree.read();
            (t.max_inodes, t.inodes_in_use())
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

    /// Attributes of `ino`.
    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        self.tree.read().attr(ino)
    }
}
