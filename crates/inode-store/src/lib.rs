//! btfuse's in-memory filesystem: inodes, directories, a 4 KiB block pool and
//! every permission check. It knows nothing of FUSE or of rings: the FUSE
//! adapter and the shared-memory ring server are thin front doors over one
//! [`Store`], so both see one tree and one set of rules (tmpfs is the
//! reference: same results, same errno).
//!
//! # Structure and locking
//!
//! ```text
//! Store
//! ├── tree:    RwLock<Inner>            inode table + directory entries
//! │            └── Entry { node: Arc<Node>, content: Dir{children: BTreeMap} | Symlink | Other }
//! │                          Node { st: RwLock<Meta> (mode, owner, nlink, m/ctime, xattrs, FileData),
//! │                                 atime: Mutex<Timespec>, open / lookups: AtomicU64 }
//! ├── handles: RwLock<HashMap<Fh, Handle>>   Handle holds Arc<Node> (+ Arc<Mutex<DirCursor>>)
//! └── pool:    BlockPool (internal Mutex)    mmap'd slabs of 4 KiB blocks
//! ```
//!
//! Lock order (never taken in the other direction):
//!
//! **tree → handles → dir cursor → node `st` (ordered by ino when two) → node `atime` → pool**
//!
//! * Namespace operations (create, unlink, rename, …) hold the tree write
//!   lock and then the `st` locks of the nodes they touch.
//! * Data operations (read, write, fallocate, lseek, copy_file_range) never
//!   touch the tree: they clone the handle's `Arc<Node>` under a short
//!   `handles` read lock, drop it, and then lock only that node's `st`
//!   (read lock for `read`). So copying file data holds no global lock.
//! * `read` is allocation-free; its relatime atime update takes the node's
//!   small `atime` mutex, never a write lock.
//! * The pool mutex is a leaf, taken per block allocation.
//! * `readdir` gathers a batch of entries under the locks, drops every lock,
//!   and only then calls the caller's closure, so the closure may call back
//!   into the store (the FUSE adapter calls `add_lookup` from it).
//!
//! Block memory is the only `unsafe` code, in the `pool` module.
//!
//! # Fidelity
//!
//! `tests/differential_tmpfs.rs` (ignored by default; run as root) replays
//! random operation sequences, as root, as three users, as a root without
//! the file capabilities and as a user holding `CAP_DAC_OVERRIDE`, on the
//! store and on a real tmpfs, and compares every errno, the whole tree
//! (kind, size, nlink, mode, owner, st_blocks), file contents and
//! SEEK_DATA/SEEK_HOLE. Rules follow the host kernel (6.x), decided by the
//! caller's effective capabilities ([`Caps`]), never by uid 0: e.g. a write
//! by a caller without `CAP_FSETID` clears S_ISGID when group-executable
//! *or* when the caller is not in the file's group; `mode_strip_sgid` on
//! create; protected_hardlinks = 1; `security.*` xattrs are set only with
//! `CAP_SYS_ADMIN`; malformed POSIX ACL values fail as in
//! `posix_acl_from_xattr`; RENAME_WHITEOUT leaves a whiteout;
//! fallocated-but-unwritten blocks are holes for SEEK_DATA. Known
//! differences:
//!
//! * POSIX ACLs are not kept: setting a well-formed
//!   `system.posix_acl_*` value is `EOPNOTSUPP`, as on a FUSE mount
//!   without ACL support (tmpfs keeps it); malformed ones fail as on tmpfs.
//! * Capabilities held in a user namespace other than the daemon's count
//!   as none (the front doors give the store initial-namespace ones only).
//! * `copy_file_range` keeps the source's holes as holes (tmpfs splices
//!   zero pages, so its copy has more `st_blocks`).
//! * Opening a fifo, socket or device node gives ENXIO: those semantics
//!   are left to the kernel.
//! * `readdir` of a removed directory is ENOENT, the getdents(2) answer
//!   (glibc's `readdir` turns it into end-of-directory).
//! * `fallocate` takes no credentials: it clears setid bits as the
//!   handle's opener.
//! * Metadata (inodes, names, symlink targets, xattrs) is charged against
//!   the size limit, as memory the filesystem holds (tmpfs charges only
//!   file pages against `size` and xattrs against its inode space): `df`
//!   shows a few blocks used for an empty file.
//! * `listxattr` of a file whose names take more than `XATTR_LIST_MAX`
//!   bytes is E2BIG even when only the size is asked for (Linux then tells
//!   the size, which no buffer can receive).
//! * Front doors that resolve paths themselves must check what the kernel
//!   checks before the walk (e.g. renameat2 with both flags -> EINVAL).

#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod acl;
mod caps;
mod file;
mod generation;
mod io;
mod perm;
mod pool;
mod store;
#[cfg(test)]
mod tests;

pub use crate::caps::Caps;
pub use crate::generation::{Generations, Watcher};
pub use crate::io::{DataSink, DataSource};
pub use crate::pool::IDLE_DECAY;
pub use store::{Keeper, NodeImage, RecordBatch, RestoreError, Snapshot, Store};

/// Inode number.
pub type Ino = u64;
/// The root directory's inode number.
pub const ROOT_INO: Ino = 1;
/// Size of one data block.
pub const BLOCK_SIZE: usize = 4096;
/// Longest name component; longer -> ENAMETOOLONG.
pub const NAME_MAX: usize = 255;
/// Largest file size (tmpfs: `MAX_LFS_FILESIZE`). Writes past it -> EFBIG.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Most bytes one `copy_file_range` moves (Linux's `MAX_RW_COUNT`:
/// `INT_MAX` rounded down to a page); a longer request returns a short
/// count, which callers loop on, so no single request's work grows with
/// the length asked for.
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Largest extended attribute value (bytes); larger -> E2BIG.
pub const XATTR_SIZE_MAX: usize = 65536;
/// Longest list of extended attribute names (bytes) that `listxattr`
/// returns; longer -> E2BIG (Linux's `XATTR_LIST_MAX`).
pub const XATTR_LIST_MAX: usize = 65536;
/// Longest extended attribute name (bytes); longer -> ERANGE.
pub const XATTR_NAME_MAX: usize = 255;

/// errno newtype; values are libc's (`libc::ENOENT` ...).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

#[allow(missing_docs)]
impl Errno {
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const ENXIO: Errno = Errno(libc::ENXIO);
    pub const E2BIG: Errno = Errno(libc::E2BIG);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EBUSY: Errno = Errno(libc::EBUSY);
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    pub const EXDEV: Errno = Errno(libc::EXDEV);
    pub const ENODEV: Errno = Errno(libc::ENODEV);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const EFBIG: Errno = Errno(libc::EFBIG);
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    pub const ESPIPE: Errno = Errno(libc::ESPIPE);
    pub const EMLINK: Errno = Errno(libc::EMLINK);
    pub const ERANGE: Errno = Errno(libc::ERANGE);
    pub const ENAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    pub const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    pub const ELOOP: Errno = Errno(libc::ELOOP);
    pub const ENODATA: Errno = Errno(libc::ENODATA);
    pub const EOVERFLOW: Errno = Errno(libc::EOVERFLOW);
    pub const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// Result of every store operation.
pub type Result<T> = std::result::Result<T, Errno>;

/// A point in time (seconds and nanoseconds since the Unix epoch).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timespec {
    /// Seconds since the epoch (negative before it).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

impl Timespec {
    /// The current wall-clock time (CLOCK_REALTIME).
    pub fn now() -> Timespec {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timespec {
                sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nsec: d.subsec_nanos(),
            },
            Err(e) => {
                // Before the epoch: floor to whole seconds below.
                let d = e.duration();
                let mut sec = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let mut nsec = d.subsec_nanos();
                if nsec != 0 {
                    sec -= 1;
                    nsec = 1_000_000_000 - nsec;
                }
                Timespec { sec, nsec }
            }
        }
    }
}

/// File type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
}

impl FileKind {
    /// The `S_IFxxx` bits of this kind.
    pub fn type_bits(self) -> u32 {
        match self {
            FileKind::Regular => libc::S_IFREG,
            FileKind::Directory => libc::S_IFDIR,
            FileKind::Symlink => libc::S_IFLNK,
            FileKind::Fifo => libc::S_IFIFO,
            FileKind::Socket => libc::S_IFSOCK,
            FileKind::CharDevice => libc::S_IFCHR,
            FileKind::BlockDevice => libc::S_IFBLK,
        }
    }

    /// The `d_type` (`DT_xxx`) of this kind.
    pub fn dtype(self) -> u8 {
        match self {
            FileKind::Regular => libc::DT_REG,
            FileKind::Directory => libc::DT_DIR,
            FileKind::Symlink => libc::DT_LNK,
            FileKind::Fifo => libc::DT_FIFO,
            FileKind::Socket => libc::DT_SOCK,
            FileKind::CharDevice => libc::DT_CHR,
            FileKind::BlockDevice => libc::DT_BLK,
        }
    }
}

/// Caller identity. `groups` = supplementary groups (may be empty).
#[derive(Clone, Debug)]
pub struct Creds {
    /// Effective (filesystem) user id.
    pub uid: u32,
    /// Effective (filesystem) group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capabilities (in the initial user namespace): what the
    /// kernel's `capable()` would answer for this caller. The uid alone
    /// grants nothing.
    pub caps: Caps,
}

impl Creds {
    /// uid 0, gid 0, no supplementary groups, every capability.
    pub fn root() -> Creds {
        Creds {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            caps: Caps::ALL,
        }
    }

    /// An unprivileged caller: these ids, no capability.
    pub fn user(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds {
            uid,
            gid,
            groups,
            caps: Caps::NONE,
        }
    }

    /// Whether `gid` is the caller's group or one of its supplementary groups.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// The kernel's `capable_wrt_inode_uidgid(inode, cap)` (and `capable`):
    /// whether the caller holds capability `cap` (a `Caps` constant).
    pub fn capable(&self, cap: u32) -> bool {
        self.caps.has(cap)
    }
}

/// What a program can observe with stat(2).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File type.
    pub kind: FileKind,
    /// `mode & 0o7777`.
    pub perm: u16,
    /// Hard links (directories: 2 + subdirectories).
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device node.
    pub rdev: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte units actually allocated (like tmpfs).
    pub blocks: u64,
    /// Preferred I/O size (4096).
    pub blksize: u32,
    /// Last access.
    pub atime: Timespec,
    /// Last data modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Whether it has any extended attribute.
    pub xattrs: bool,
}

impl Attr {
    /// `S_IFxxx | perm`, as in `st_mode`.
    pub fn mode(&self) -> u32 {
        self.kind.type_bits() | u32::from(self.perm)
    }

    /// These attributes as the fast path's protocol carries them.
    pub fn wire(&self) -> proto::WireAttr {
        proto::WireAttr {
            ino: self.ino,
            size: self.size,
            blocks: self.blocks,
            atime: self.atime.sec,
            mtime: self.mtime.sec,
            ctime: self.ctime.sec,
            atime_nsec: self.atime.nsec,
            mtime_nsec: self.mtime.nsec,
            ctime_nsec: self.ctime.nsec,
            mode: self.mode(),
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: self.rdev,
            blksize: self.blksize,
            flags: if self.xattrs {
                0
            } else {
                proto::WireAttr::NO_XATTRS
            },
        }
    }
}

/// A time to set with [`Store::setattr`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// The current time (UTIME_NOW).
    Now,
    /// An explicit time.
    At(Timespec),
}

/// Attribute changes for [`Store::setattr`]; `None` = leave unchanged.
#[derive(Clone, Debug, Default)]
pub struct SetAttr {
    /// Permission bits only (type bits ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
    /// New status-change time (set last, verbatim).
    pub ctime: Option<Timespec>,
    /// A `chown` that changes neither owner nor group (`chown(f, -1, -1)`):
    /// still clears setuid/setgid on non-directories and updates ctime, as
    /// every chown does.
    pub chown: bool,
}

/// `renameat2` flags.
#[derive(Copy, Clone, Debug, Default)]
pub struct RenameFlags {
    /// RENAME_NOREPLACE: fail with EEXIST if the target exists.
    pub noreplace: bool,
    /// RENAME_EXCHANGE: swap the two names atomically.
    pub exchange: bool,
    /// RENAME_WHITEOUT: leave a whiteout (a 0:0 character device, mode 0,
    /// owned by the caller) under the old name. Since Linux 5.8 this needs
    /// no capability.
    pub whiteout: bool,
}

/// Open handle id (files and dirs share one id space, never 0, never reused).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fh(pub u64);

/// The file a data call (read, write, fsync, fallocate, lseek,
/// copy_file_range, a truncate through a descriptor) acts on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FileRef {
    /// An open handle: the access mode it was opened with is checked.
    Handle(Fh),
    /// An inode the kernel opened itself (the FUSE door answers OPEN with
    /// ENOSYS, so the kernel opens files without asking and sends their
    /// calls with no handle). The kernel checked the caller's permissions
    /// at open and checks its file's access mode before each call, so the
    /// store only checks that the inode exists.
    Inode(Ino),
}

impl From<Fh> for FileRef {
    fn from(fh: Fh) -> FileRef {
        FileRef::Handle(fh)
    }
}

/// What statfs(2) reports. Used blocks (`blocks - bfree`) count file data
/// and metadata (inodes, names, symlink targets, xattrs) alike.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks (of `frsize`).
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size (4096).
    pub bsize: u32,
    /// Longest name (255).
    pub namelen: u32,
    /// Fragment size (4096).
    pub frsize: u32,
}

/// One entry delivered by readdir. `next` is the cookie to pass as `offset`
/// to continue after it.
#[derive(Clone, Debug)]
pub struct DirEntry<'a> {
    /// Inode number.
    pub ino: Ino,
    /// Cookie of the position just after this entry.
    pub next: u64,
    /// File type.
    pub kind: FileKind,
    /// Name.
    pub name: &'a [u8],
    /// Attributes, in a listing with them ([`Store::readdir_plus`]).
    pub attr: Option<Attr>,
}

impl DirEntry<'_> {
    /// Appends this entry to `out` as a record of the fast path's listings:
    /// a `proto::DirEntryHeader`, the attributes if any (a
    /// `proto::WireAttr`), the name and zeros up to the next 8-byte
    /// boundary.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let head = proto::DirEntryHeader {
            ino: self.ino,
            next: self.next,
            kind: self.kind.dtype(),
            name_len: self.name.len() as u16,
            ..Default::default()
        };
        let start = out.len();
        out.extend_from_slice(proto::bytes_of(&head));
        if let Some(attr) = &self.attr {
            out.extend_from_slice(proto::bytes_of(&attr.wire()));
        }
        out.extend_from_slice(self.name);
        out.resize(start + self.record_len(), 0);
    }

    /// The length of its record (see [`DirEntry::encode`]).
    pub fn record_len(&self) -> usize {
        let attr = if self.attr.is_some() {
            size_of::<proto::WireAttr>()
        } else {
            0
        };
        proto::DirEntryHeader::record_len(attr + self.name.len())
    }

    /// The length of its record without attributes.
    pub fn plain_len(&self) -> usize {
        proto::DirEntryHeader::record_len(self.name.len())
    }
}

/// Where written bytes went (O_APPEND handles write at EOF).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Offset of the first byte written.
    pub offset: u64,
    /// Bytes written.
    pub len: usize,
}

/// Resource usage, for tests and diagnostics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Inodes in the table (including unlinked ones still referenced).
    pub inodes: u64,
    /// Data blocks in use.
    pub used_blocks: u64,
    /// Bytes of metadata (inodes, names, symlink targets, xattrs) charged
    /// against the capacity beside the data blocks.
    pub meta_bytes: u64,
    /// Data blocks available in total.
    pub capacity_blocks: u64,
    /// Open file and directory handles.
    pub open_handles: u64,
    /// Pool slabs currently mapped and holding data.
    pub slabs_mapped: u64,
    /// Pool slabs mapped with no data, kept for reuse for up to
    /// [`IDLE_DECAY`] (see [`Store::release_idle_memory`]).
    pub slabs_idle: u64,
}
