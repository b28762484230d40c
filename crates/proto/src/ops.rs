//! The operations of the fast path, each defined once.
//!
//! One table (the `operations!` invocation below) names every operation: its number,
//! its request struct (named after the operation), how many paths follow
//! that struct, its reply struct and the daemon's handler method. The
//! [`Op`] enum, the [`Operation`] impls that the client encodes with, the
//! [`Handler`] trait the daemon implements and [`dispatch`], which decodes
//! a request, calls the handler and encodes its reply, are all derived from
//! the table: adding an operation is one entry plus one handler.
//!
//! A request message is
//!
//! ```text
//! RequestHeader | the operation's struct | path (path_len) | path2 (path2_len)
//! ```
//!
//! and its reply
//!
//! ```text
//! ReplyHeader | the reply struct (status 0 only) | payload (payload_len)
//! ```
//!
//! Paths are resolved by the daemon relative to a *base*: `0` is the mount
//! root, anything else a directory handle the client holds. Bulk data
//! (read and write payloads, directory listings, xattr values) travels in
//! the channel's bulk area from offset 0, never in the ring: the request or
//! reply only says how many bytes of it are used.

use core::mem::size_of;

use crate::wire::{bytes_of, decode, wire_structs, SetAttrReq, Wire};
use crate::PATH_MAX;

mod failure;
mod messages;
/// [`OpenList`] flag: the directory is listed ahead of the process's
/// own open of it, and not if that would update its atime.
pub const LIST_AHEAD: u32 = 1 << 30;

pub use failure::*;
pub use messages::*;

/// A request struct of the table, tied to its opcode and reply.
pub trait Operation: Wire {
    /// The opcode.
    const OP: Op;
    /// How many paths may follow the struct (0, 1 or 2).
    const PATHS: usize;
    /// The struct a successful reply carries.
    type Reply: Wire;
}

/// The paths of a request (empty when absent).
#[derive(Copy, Clone, Debug, Default)]
pub struct Paths<'a> {
    /// First path.
    pub path: &'a [u8],
    /// Second path (a rename's or link's target, a symlink's text, an
    /// xattr name).
    pub path2: &'a [u8],
}

const EIO: i32 = 5;
const EINVAL: i32 = 22;
const ENOSYS: i32 = 38;
const ERANGE: i32 = 34;

/// Where a handler writes its reply's inline payload (a symlink target, a
/// directory's path): bounded by [`PATH_MAX`].
pub struct Payload<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Payload<'_> {
    /// Appends `bytes`; `ERANGE` when they do not fit in one reply.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let end = self.len + bytes.len();
        if end > self.buf.len() {
            return Err(Failure::Errno(ERANGE));
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// The bytes of the socket message that carries the kernel fd of a
/// [`KernelOpen`] (`SCM_RIGHTS`) from the daemon to the client, on the
/// channel's socket, before the reply.
pub const KERNEL_OPEN_MESSAGE: &[u8] = b"fd";

/// What [`dispatch`] did, for the daemon's metrics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Dispatched {
    /// The operation, if the opcode was known.
    pub op: Option<Op>,
    /// The reply status.
    pub status: i32,
    /// Length of the encoded reply.
    pub len: usize,
}

/// Largest request message: header, the largest struct, two paths.
pub const MAX_REQUEST: usize = size_of::<RequestHeader>() + MAX_ARGS + 2 * PATH_MAX;

/// Largest reply message: header, the largest reply struct, a payload of
/// up to [`PATH_MAX`] bytes.
pub const MAX_REPLY: usize = size_of::<ReplyHeader>() + MAX_REPLY_STRUCT + PATH_MAX;

/// Largest file whose bytes an [`OpenOut`] carries (in the reply's
/// payload, see [`OpenOut::data_stamp`]).
pub const OPEN_DATA_MAX: usize = PATH_MAX;

/// Largest file an [`OpenAhead`] opens (its bytes come along).
pub const AHEAD_DATA_MAX: usize = OPEN_DATA_MAX;

/// Larger of two sizes, in a constant.
const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Encodes a request into `out`; its length, or `None` if `out` is too
/// small or a path is longer than [`PATH_MAX`] or not taken by `O`.
pub fn encode_request<O: Operation>(
    seq: u32,
    args: &O,
    path: &[u8],
    path2: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let takes = |p: &[u8], n: usize| p.is_empty() || (O::PATHS >= n && p.len() <= PATH_MAX);
    if !takes(path, 1) || !takes(path2, 2) {
        return None;
    }
    let head = RequestHeader {
        op: O::OP as u32,
        seq,
        path_len: path.len() as u32,
        path2_len: path2.len() as u32,
    };
    let mut w = Writer { out, len: 0 };
    w.put(bytes_of(&head))?;
    w.put(bytes_of(args))?;
    w.put(path)?;
    w.put(path2)?;
    Some(w.len)
}

/// Decodes the reply to request `seq` of operation `O`: its struct and
/// inline payload.
pub fn decode_reply<O: Operation>(msg: &[u8], seq: u32) -> Result<(O::Reply, &[u8]), ReplyError> {
    let head: ReplyHeader = decode(msg).ok_or(ReplyError::Malformed)?;
    if head.seq != seq {
        return Err(ReplyError::Malformed);
    }
    if head.status != 0 {
        return Err(ReplyError::Failed(Failure::from_status(head.status)));
    }
    let body = &msg[size_of::<ReplyHeader>()..];
    let reply: O::Reply = decode(body).ok_or(ReplyError::Malformed)?;
    let payload = &body[size_of::<O::Reply>()..];
    payload
        .get(..head.payload_len as usize)
        .map(|p| (reply, p))
        .ok_or(ReplyError::Malformed)
}

struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.out.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }
}

/// A decoded request: header, the operation's struct, the paths.
struct Parsed<'a> {
    head: RequestHeader,
    body: &'a [u8],
}

impl<'a> Parsed<'a> {
    fn new(msg: &'a [u8]) -> Result<Parsed<'a>, Malformed> {
        let head: RequestHeader = decode(msg).ok_or(Malformed::Truncated)?;
        Ok(Parsed {
            head,
            body: &msg[size_of::<RequestHeader>()..],
        })
    }

    /// The struct of operation `O` and the paths after it; every length is
    /// checked against the message.
    fn split<O: Operation>(&self) -> Result<(O, Paths<'a>), Malformed> {
        let (p1, p2) = (self.head.path_len as usize, self.head.path2_len as usize);
        let allowed = |len: usize, n: usize| len == 0 || (O::PATHS >= n && len <= PATH_MAX);
        if !allowed(p1, 1) || !allowed(p2, 2) {
            return Err(Malformed::BadPath);
        }
        if self.body.len() != size_of::<O>() + p1 + p2 {
            return Err(Malformed::Truncated);
        }
        let args: O = decode(self.body).ok_or(Malformed::Truncated)?;
        let (path, path2) = self.body[size_of::<O>()..].split_at(p1);
        Ok((args, Paths { path, path2 }))
    }
}

/// Runs one handler on decoded parts and encodes the reply into `reply`
/// (at least [`MAX_REPLY`] bytes).
fn answer<O: Operation, E: Into<Failure>>(
    seq: u32,
    paths: Paths<'_>,
    reply: &mut [u8],
    run: impl FnOnce(Paths<'_>, &mut Payload<'_>) -> Result<O::Reply, E>,
) -> (i32, usize) {
    let fixed = size_of::<ReplyHeader>() + size_of::<O::Reply>();
    let (head_and_struct, rest) = reply.split_at_mut(fixed);
    let room = rest.len().min(PATH_MAX);
    let mut payload = Payload {
        buf: &mut rest[..room],
        len: 0,
    };
    // A C string cannot hold a NUL, so only a hostile client sends one;
    // stored in a symlink target or an xattr name it would break every
    // later readlink or listxattr (through FUSE too).
    let result = if paths.path.contains(&0) || paths.path2.contains(&0) {
        Err(Failure::Errno(EINVAL))
    } else {
        run(paths, &mut payload).map_err(Into::into)
    };
    let (status, out, payload_len) = match result {
        Ok(out) => (0, out, payload.len),
        Err(f) => (f.status(), O::Reply::default(), 0),
    };
    let head = ReplyHeader {
        status,
        seq,
        payload_len: payload_len as u32,
        _pad: 0,
    };
    let (h, s) = head_and_struct.split_at_mut(size_of::<ReplyHeader>());
    h.copy_from_slice(bytes_of(&head));
    if status == 0 {
        s.copy_from_slice(bytes_of(&out));
        (status, fixed + payload_len)
    } else {
        (status, size_of::<ReplyHeader>())
    }
}

/// Encodes the reply to a request whose opcode is unknown (`ENOSYS`).
fn unknown(seq: u32, reply: &mut [u8]) -> (i32, usize) {
    let head = ReplyHeader {
        status: -ENOSYS,
        seq,
        payload_len: 0,
        _pad: 0,
    };
    reply[..size_of::<ReplyHeader>()].copy_from_slice(bytes_of(&head));
    (head.status, size_of::<ReplyHeader>())
}

/// Defines every operation from one table; see the module docs.
macro_rules! operations {
    ($(
        $(#[$doc:meta])*
        $name:ident = $num:literal, fn $handler:ident, paths $paths:literal,
        { $( $(#[$fdoc:meta])* pub $field:ident : $ty:ty ),* $(,)? } -> $reply:ty;
    )*) => {
        /// Operations the fast path carries.
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum Op {
            $( $(#[$doc])* $name = $num, )*
        }

        impl Op {
            /// Every operation, in opcode order.
            pub const ALL: &'static [Op] = &[$(Op::$name),*];

            /// Decodes an opcode read from untrusted memory.
            pub fn from_u32(v: u32) -> Option<Op> {
                match v {
                    $( $num => Some(Op::$name), )*
                    _ => None,
                }
            }

            /// The operation's name, for metrics and logs.
            pub fn name(self) -> &'static str {
                OP_NAMES[self as usize]
            }
        }

        /// Names of the operations indexed by opcode (they are dense from
        /// 1): `invalid` for 0, each operation's handler name, and a last
        /// `unknown` that counts every opcode past the table.
        pub const OP_NAMES: &[&str] = &["invalid", $(stringify!($handler),)* "unknown"];

        wire_structs! {$(
            $(#[$doc])*
            pub struct $name { $( $(#[$fdoc])* pub $field: $ty, )* }
        )*}

        $(
            impl Operation for $name {
                const OP: Op = Op::$name;
                const PATHS: usize = $paths;
                type Reply = $reply;
            }
        )*

        /// The daemon's side of the table: one method per operation, given
        /// the decoded struct, its paths and a place for inline payload.
        pub trait Handler {
            /// Why an operation failed.
            type Error: Into<Failure>;
            $(
                $(#[$doc])*
                fn $handler(
                    &mut self,
                    req: &$name,
                    paths: Paths<'_>,
                    payload: &mut Payload<'_>,
                ) -> Result<$reply, Self::Error>;
            )*
        }

        /// Decodes request `msg`, runs its handler and encodes the reply into
        /// `reply` (at least [`MAX_REPLY`] bytes). A message that cannot be
        /// decoded is an error (the channel is broken); an unknown opcode is
        /// answered `ENOSYS`.
        pub fn dispatch<H: Handler + ?Sized>(
            h: &mut H,
            msg: &[u8],
            reply: &mut [u8],
        ) -> Result<Dispatched, Malformed> {
            assert!(reply.len() >= MAX_REPLY, "reply buffer below MAX_REPLY");
            let parsed = Parsed::new(msg)?;
            let seq = parsed.head.seq;
            let op = Op::from_u32(parsed.head.op);
            let (status, len) = match op {
                $(
                    Some(Op::$name) => {
                        let (req, paths) = parsed.split::<$name>()?;
                        answer::<$name, _>(seq, paths, reply, |p, out| h.$handler(&req, p, out))
                    }
                )*
                None => unknown(seq, reply),
            };
            Ok(Dispatched { op, status, len })
        }

        /// Size of the largest request struct.
        const MAX_ARGS: usize = {
            let mut m = 0;
            $( m = max(m, size_of::<$name>()); )*
            m
        };

        /// Size of the largest reply struct.
        const MAX_REPLY_STRUCT: usize = {
            let mut m = 0;
            $( m = max(m, size_of::<$reply>()); )*
            m
        };
    };
}

operations! {
    /// `stat`/`lstat`/`fstatat` of `path`.
    Stat = 1, fn stat, paths 1, {
        /// Directory `path` is relative to (0: the mount root).
        pub base: u64,
        /// `AT_SYMLINK_NOFOLLOW` or 0.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> StatOut;

    /// `fstat` of an open handle.
    Fstat = 2, fn fstat, paths 0, {
        /// The handle.
        pub fh: u64,
    } -> StatOut;

    /// Opens or creates `path`.
    Open = 3, fn open, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// `O_*` flags.
        pub flags: u32,
        /// Mode of a new file, umask applied.
        pub mode: u32,
    } -> OpenOut;

    /// Closes a handle.
    Release = 4, fn release, paths 0, {
        /// The handle.
        pub fh: u64,
    } -> Done;

    /// Reads up to `len` bytes at `offset` into the bulk area.
    Read = 5, fn read, paths 0, {
        /// The handle.
        pub fh: u64,
        /// File offset.
        pub offset: u64,
        /// Bytes wanted (at most the bulk area).
        pub len: u64,
    } -> ReadOut;

    /// Writes the first `len` bytes of the bulk area at `offset` (at the
    /// end of the file with `O_APPEND`).
    Write = 6, fn write, paths 0, {
        /// The handle.
        pub fh: u64,
        /// File offset (ignored with `O_APPEND`).
        pub offset: u64,
        /// Bytes to write.
        pub len: u64,
        /// `O_APPEND` or 0: the client's current file status flag.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> WriteOut;

    /// Directory entries after `cookie`, as [`DirEntryHeader`](crate::DirEntryHeader)s
    /// in the bulk area; with `plus`, each header is followed by the
    /// entry's [`WireAttr`](crate::wire::WireAttr) before its name (a readdirplus).
    Readdir = 7, fn readdir, paths 0, {
        /// The directory handle.
        pub fh: u64,
        /// Where to continue (0: the start).
        pub cookie: u64,
        /// Bytes of entries to return at most, counted without the
        /// attributes (0: as many as the bulk area holds).
        pub max: u64,
        /// 1: a readdirplus.
        pub plus: u32,
        /// Zero.
        pub _pad: u32,
    } -> ReaddirOut;

    /// `access`/`faccessat`.
    Access = 8, fn access, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// `R_OK | W_OK | X_OK` or `F_OK`.
        pub mask: u32,
        /// `AT_*` flags.
        pub flags: u32,
    } -> Done;

    /// The target of symlink `path`, as inline payload.
    Readlink = 9, fn readlink, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
    } -> Done;

    /// Makes directory `path`.
    Mkdir = 10, fn mkdir, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// Mode, umask applied.
        pub mode: u32,
        /// Zero.
        pub _pad: u32,
    } -> AttrOut;

    /// Makes node `path` (regular file, fifo, socket, device).
    Mknod = 11, fn mknod, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// Mode including the type bits, umask applied.
        pub mode: u32,
        /// Device number.
        pub rdev: u32,
    } -> AttrOut;

    /// Removes non-directory `path`.
    Unlink = 12, fn unlink, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
    } -> RemovedOut;

    /// Removes empty directory `path`.
    Rmdir = 13, fn rmdir, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
    } -> Done;

    /// Makes symlink `path` whose target is the text `path2`.
    Symlink = 14, fn symlink, paths 2, {
        /// Directory `path` is relative to.
        pub base: u64,
    } -> AttrOut;

    /// Hard link: `path2` (relative to `base2`) becomes a name of `path`.
    Link = 15, fn link, paths 2, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// Directory `path2` is relative to.
        pub base2: u64,
        /// `AT_SYMLINK_FOLLOW` or 0.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> AttrOut;

    /// Renames `path` to `path2`.
    Rename = 16, fn rename, paths 2, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// Directory `path2` is relative to.
        pub base2: u64,
        /// `RENAME_*` flags.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> RemovedOut;

    /// Changes attributes of `path`, or of handle `base` when there is no
    /// path and `flags` has `AT_EMPTY_PATH`.
    SetAttr = 17, fn setattr, paths 1, {
        /// Directory `path` is relative to, or the handle.
        pub base: u64,
        /// `AT_*` flags.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
        /// The changes.
        pub set: SetAttrReq,
    } -> Done;

    /// Flushes a handle's data (nothing to do in memory, but the handle is
    /// checked).
    Fsync = 18, fn fsync, paths 0, {
        /// The handle.
        pub fh: u64,
    } -> Done;

    /// Filesystem totals, for the file at `path` or, with no path, the open
    /// handle `base`.
    Statfs = 19, fn statfs, paths 1, {
        /// Directory `path` is relative to, or the handle.
        pub base: u64,
    } -> StatfsOut;

    /// `lseek` with `SEEK_DATA`/`SEEK_HOLE`.
    Lseek = 20, fn lseek, paths 0, {
        /// The handle.
        pub fh: u64,
        /// Where the search starts.
        pub offset: u64,
        /// `SEEK_DATA` or `SEEK_HOLE`.
        pub whence: u32,
        /// Zero.
        pub _pad: u32,
    } -> OffsetOut;

    /// `fallocate`.
    Fallocate = 21, fn fallocate, paths 0, {
        /// The handle.
        pub fh: u64,
        /// Start of the range.
        pub offset: u64,
        /// Length of the range.
        pub len: u64,
        /// `FALLOC_FL_*` mode.
        pub mode: u32,
        /// Zero.
        pub _pad: u32,
    } -> Done;

    /// `copy_file_range` between two handles.
    CopyFileRange = 22, fn copy_file_range, paths 0, {
        /// Source handle.
        pub fh_in: u64,
        /// Source offset.
        pub off_in: u64,
        /// Destination handle.
        pub fh_out: u64,
        /// Destination offset.
        pub off_out: u64,
        /// Bytes to copy at most.
        pub len: u64,
    } -> CountOut;

    /// Value of extended attribute `path2` of `path` (or of handle `base`
    /// with `AT_EMPTY_PATH` and no path) into the bulk area; `size` 0 asks
    /// for the length only.
    Getxattr = 23, fn getxattr, paths 2, {
        /// Directory `path` is relative to, or the handle.
        pub base: u64,
        /// Room in the caller's buffer.
        pub size: u64,
        /// `AT_*` flags.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> CountOut;

    /// Sets extended attribute `path2` to the first `size` bytes of bulk.
    Setxattr = 24, fn setxattr, paths 2, {
        /// Directory `path` is relative to, or the handle.
        pub base: u64,
        /// Length of the value.
        pub size: u64,
        /// `AT_*` flags.
        pub flags: u32,
        /// `XATTR_CREATE` / `XATTR_REPLACE`.
        pub xattr_flags: u32,
    } -> Done;

    /// Extended attribute names (NUL-terminated) into the bulk area; `size`
    /// 0 asks for the length only.
    Listxattr = 25, fn listxattr, paths 1, {
        /// Directory `path` is relative to, or the handle.
        pub base: u64,
        /// Room in the caller's buffer.
        pub size: u64,
        /// `AT_*` flags.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> CountOut;

    /// Removes extended attribute `path2`.
    Removexattr = 26, fn removexattr, paths 2, {
        /// Directory `path` is relative to, or the handle.
        pub base: u64,
        /// `AT_*` flags.
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> Done;

    /// The kernel has opened handle `fh` through its reserved name
    /// ([`handle_name`](crate::handle_name) with the client's image): the
    /// daemon drops the kernel's cached entry of that name, so only the
    /// kernel fds opened through it keep the inode (an unlinked file is then
    /// freed after their last close), and `getcwd` in a removed directory
    /// reopened this way is `ENOENT`, as on tmpfs.
    DropHandleName = 27, fn drop_handle_name, paths 0, {
        /// The handle.
        pub fh: u64,
    } -> Done;

    /// The path of directory handle `fh` below the mount root as its names
    /// stand now (no leading slash; empty for the root), as inline payload;
    /// `ENOENT` once it was removed. Lets a directory fd be reopened through
    /// the kernel after the directory was renamed or moved.
    DirPath = 28, fn dir_path, paths 0, {
        /// The directory handle.
        pub fh: u64,
    } -> Done;

    /// `fcntl(F_SETFL)` adding `O_NOATIME` to handle `fh` (of either kind):
    /// `EPERM` unless the client owns the file or holds `CAP_FOWNER`
    /// (`inode_owner_or_capable`), as the kernel checks; the flag itself
    /// is kept by the client.
    SetNoatime = 29, fn set_noatime, paths 0, {
        /// The handle.
        pub fh: u64,
    } -> Done;

    /// Hands regular-file handle `fh` to the kernel when its holder's own
    /// reopen through the reserved name was refused by the file's mode (a
    /// file it created read-only, `open(O_CREAT|O_RDWR, 0444)`): the daemon
    /// opens the file through the FUSE mount itself, with the access mode
    /// the handle was opened with (the daemon's own record of it, never
    /// the client's word), and passes the kernel fd over the channel's
    /// socket (one `SCM_RIGHTS` message, sent before the reply). The client
    /// gains no access it did not hold through the handle.
    KernelOpen = 30, fn kernel_open, paths 0, {
        /// The handle.
        pub fh: u64,
        /// `O_APPEND` and `O_NONBLOCK` as the client's file has them now
        /// (any other bit is ignored).
        pub flags: u32,
        /// Zero.
        pub _pad: u32,
    } -> Done;

    /// `opendir` and its first `readdir` in one round trip: opens directory
    /// `path` as [`Open`] with `O_RDONLY | O_DIRECTORY | flags` does, then
    /// lists the new handle from its start into the bulk area as
    /// [`Readdir`] with `max` and `plus` does. A listing that fails (the
    /// directory removed meanwhile) is empty and not at its end: the next
    /// `Readdir` tells. With [`LIST_AHEAD`] in `flags` (a directory listed
    /// before the process opens it), `EAGAIN` instead when the listing
    /// would update the directory's atime (relatime): only an open of the
    /// process's own may.
    OpenList = 31, fn open_list, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// As [`Readdir::max`].
        pub max: u64,
        /// 1: a readdirplus.
        pub plus: u32,
        /// `O_NOFOLLOW`, `O_NOATIME`, [`LIST_AHEAD`] or 0 (any other bit
        /// is ignored).
        pub flags: u32,
    } -> OpenListOut;

    /// [`OpenList`] of a listing wanted for the caches only (the sibling
    /// prefetch): the handle it opens is released before the reply, which
    /// a later `Release` request and the wait for a channel to send it on
    /// cost the client otherwise.
    List = 32, fn list, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// As [`Readdir::max`].
        pub max: u64,
    } -> ListOut;

    /// Read-only opens, for the client's file cache, of the small regular
    /// files of a directory in name order from `path`'s last name on (that
    /// file first, if it is one): what a process that reads a directory's
    /// files one after another (`cat` of a `find`'s output, python walking
    /// a tree, rsync sending) opens next, in one round trip. `path` is
    /// resolved as [`Open`] resolves it, without following a final
    /// symlink, and its directory must be readable by the caller (the
    /// names are a listing). A file is opened as [`Open`] with `O_RDONLY`
    /// opens it (read permission) and comes with its bytes, and only if it
    /// has at most [`AHEAD_DATA_MAX`] of them and a read of them now would
    /// not update its atime (reading an empty file reads none); as for a
    /// read, the kernel's pages of it are given back first. Other entries
    /// are skipped. At most `max` files, as [`AheadRecord`](crate::AheadRecord)s in the bulk area
    /// (those that fit); none if a change began meanwhile.
    OpenAhead = 33, fn open_ahead, paths 1, {
        /// Directory `path` is relative to.
        pub base: u64,
        /// Most files to open.
        pub max: u32,
        /// Zero.
        pub _pad: u32,
    } -> OpenAheadOut;

    /// Opens regular file `ino` read-only again, for a process that opened
    /// it from the public table ([`crate::public`]) and now needs a handle
    /// (the file changed, or the process hands it to the kernel). `token`
    /// is the one the table's entry carried: it proves that the caller
    /// could read the entry's bytes, which everyone could open while it
    /// was published, so the open is granted as that open would have been
    /// (as an fd opened then still reads after a `chmod` or an unlink),
    /// until the entry is reused. `ESTALE` for any other inode or token.
    OpenInode = 34, fn open_inode, paths 0, {
        /// The inode.
        pub ino: u64,
        /// The entry's token ([`crate::public::Published::token`]).
        pub token: u64,
    } -> OpenOut;
}

#[cfg(test)]
mod tests;
