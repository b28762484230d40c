//! The fast path's wire format, shared by `libbtfuse.so` and the daemon.
//!
//! Defined once, here, in `no_std` code. A request is one ring message:
//!
//! ```text
//! ReqHeader | path (path_len bytes) | path2 (path2_len bytes)
//! ```
//!
//! and its reply one message on the response ring:
//!
//! ```text
//! RespHeader | payload (payload_len bytes)
//! ```
//!
//! Bulk data (read and write payloads, directory listings) travels in the
//! channel's bulk area, never in the ring: a request or reply only says how
//! many bytes of the bulk area it uses, always from offset 0 (the client has
//! one request in flight per channel).
//!
//! Every struct here is `#[repr(C)]` plain integers, so any bit pattern is a
//! valid value; the daemon decodes untrusted bytes with [`decode`] and then
//! validates each field (opcode, lengths, flags) before use.
//!
//! Paths are resolved by the daemon, relative to a *base*: `0` is the mount
//! root, anything else is a directory handle the client holds. A path that
//! leaves the mount (through `..` above the root or a symlink pointing
//! elsewhere) is answered with [`ESCAPED`]: the client then hands the call to
//! the real libc, and the kernel resolves it.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs, unreachable_pub)]

pub mod mountinfo;

use core::mem::size_of;

/// Protocol version, checked when a channel is set up.
pub const VERSION: u32 = 3;

/// Longest path the fast path carries (like `PATH_MAX`, including the NUL the
/// wire format does not carry).
pub const PATH_MAX: usize = 4096;

/// Largest request message: header plus two paths.
pub const MAX_REQUEST: usize = size_of::<ReqHeader>() + 2 * PATH_MAX;

/// Largest reply message: header plus an inline payload (symlink targets,
/// xattr lists are bounded by this; bulk data goes through the bulk area).
pub const MAX_REPLY: usize = size_of::<RespHeader>() + PATH_MAX + size_of::<WireAttr>();

/// Reply status (negated errno space, outside it) meaning "this path is not
/// on the mount after all": the client must call the real libc.
pub const ESCAPED: i32 = -1_000_000;

/// Directory where each daemon listens, one socket per mount.
pub const RUN_DIR: &str = "/run/btfuse";

/// Environment variable that overrides [`RUN_DIR`] (tests, unusual setups).
pub const RUN_DIR_ENV: &str = "BTFUSE_RUN_DIR";

/// Environment variable that, when set to `1`, turns the fast path off.
pub const DISABLE_ENV: &str = "BTFUSE_DISABLE";

/// Discovery: the daemon of the btfuse mount whose device number is
/// `major:minor` (as `/proc/self/mountinfo` lists it, fstype `fuse.btfuse`)
/// listens on `RUN_DIR/dev-<major>-<minor>.sock` (`SOCK_SEQPACKET`).
/// Writes that file name into `buf` and returns its length.
pub fn socket_name(major: u32, minor: u32, buf: &mut [u8; 32]) -> usize {
    buf[..4].copy_from_slice(b"dev-");
    let mut n = 4;
    n += write_decimal(major.into(), &mut buf[n..]);
    buf[n] = b'-';
    n += 1;
    n += write_decimal(minor.into(), &mut buf[n..]);
    buf[n..n + 5].copy_from_slice(b".sock");
    n + 5
}

/// Writes `v` in decimal at the start of `out` (room for 20 digits
/// suffices); returns the number of digits.
pub fn write_decimal(v: u64, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out[..len].copy_from_slice(&digits[i..]);
    len
}

/// Reserved names through which a fast-path client reopens, through the
/// kernel (the FUSE mount), a file it holds open by handle: looked up in
/// the mount root, `.btfuse-fd-<handle>-<image>` (both 16 lowercase hex
/// digits; `image` is the client's [`Hello::image`]) names the inode behind
/// that handle — for the process that owns the handle only, and only when
/// the root has no real entry of that name (a real file always wins).
/// Nothing lists these names, and the fast path does not resolve them.
pub const HANDLE_NAME_PREFIX: &[u8] = b".btfuse-fd-";

/// Length of every reserved handle name (see [`HANDLE_NAME_PREFIX`]).
pub const HANDLE_NAME_LEN: usize = HANDLE_NAME_PREFIX.len() + 16 + 1 + 16;

/// Writes the reserved name of handle `fh` of client image `image` (see
/// [`HANDLE_NAME_PREFIX`]).
pub fn handle_name(fh: u64, image: u64) -> [u8; HANDLE_NAME_LEN] {
    let mut name = [0u8; HANDLE_NAME_LEN];
    let (prefix, rest) = name.split_at_mut(HANDLE_NAME_PREFIX.len());
    prefix.copy_from_slice(HANDLE_NAME_PREFIX);
    let (fh_hex, rest) = rest.split_at_mut(16);
    write_hex(fh, fh_hex);
    rest[0] = b'-';
    write_hex(image, &mut rest[1..]);
    name
}

/// The `(handle, image)` a reserved name stands for; `None` for any other
/// name (only the exact form [`handle_name`] writes is accepted, so each
/// handle has one name).
pub fn parse_handle_name(name: &[u8]) -> Option<(u64, u64)> {
    if name.len() != HANDLE_NAME_LEN {
        return None;
    }
    let rest = name.strip_prefix(HANDLE_NAME_PREFIX)?;
    let (fh_hex, rest) = rest.split_at(16);
    let image_hex = rest.strip_prefix(b"-")?;
    Some((parse_hex(fh_hex)?, parse_hex(image_hex)?))
}

fn write_hex(v: u64, out: &mut [u8]) {
    for (i, d) in out.iter_mut().enumerate() {
        let nibble = (v >> (4 * (15 - i))) & 0xf;
        *d = b"0123456789abcdef"[nibble as usize];
    }
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |v, &d| {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(v << 4 | u64::from(nibble))
    })
}

/// First message on a new connection, client to daemon, optionally
/// followed by the mountpoint the client found the daemon's mount at in the
/// registry (see [`mountinfo`]): the daemon refuses the channel (`ESTALE`)
/// if that is not its own mountpoint, so a stale registry line whose device
/// number a newer mount reuses can never route paths to the wrong store.
/// It carries, as `SCM_RIGHTS`, the channel itself: a sealed memfd the client created with
/// [`channel_config`] (`shm_ring::Region::create`). The client does not
/// wait for an answer: it puts its first request into the channel at once,
/// and the daemon thread that accepts the connection finds it there. So a
/// new process pays one daemon wake-up for connecting and its first call
/// together, not a handshake round trip first.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Hello {
    /// [`HELLO_MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u32,
    /// Random number chosen once per process image (and again after a
    /// fork or a credential change): channels with the same pid but
    /// another image (after exec) never share open handles.
    pub image: u64,
}

/// Magic number of [`Hello`] and [`HelloReply`] ("BTFS").
pub const HELLO_MAGIC: u32 = 0x5346_5442;

/// A [`Hello`] with this magic ("STAT") asks for the daemon's statistics
/// instead of a channel: the reply is one message of UTF-8 text
/// (`btfuse stats`).
pub const STATS_MAGIC: u32 = 0x5441_5453;

/// The daemon's answer on the socket, sent before it serves the channel's
/// first request. The client reads it only if that request gets no reply:
/// an answer with `error != 0`, or none at all, means the daemon never
/// took the channel, so the request was not executed and the call may go
/// to the kernel instead.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HelloReply {
    /// [`HELLO_MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u32,
    /// 0, or a positive errno why the channel was refused.
    pub error: u32,
    /// Zero.
    pub _pad: u32,
}

/// The shape of every fast-path channel: 64 KiB rings each way, messages
/// up to the largest request (two `PATH_MAX` paths, rounded to a power of
/// two), and a 4 MiB bulk area, the largest read or write in one round
/// trip. The client creates the channel with it; the daemon accepts only a
/// channel of exactly this shape.
pub const fn channel_config() -> shm_ring::Config {
    shm_ring::Config {
        request_capacity: 64 << 10,
        response_capacity: 64 << 10,
        max_message: MAX_REQUEST.next_power_of_two() as u32,
        bulk_len: 4 << 20,
    }
}

/// Operations the fast path carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// `stat`/`lstat`/`fstatat`: path (+ `AT_SYMLINK_NOFOLLOW` in `flags`) -> attr.
    Stat = 1,
    /// `fstat` on a handle -> attr.
    Fstat = 2,
    /// Open or create a file or directory: path, `flags` = open flags,
    /// `a` = mode (umask applied) -> handle in `v0`, attr.
    Open = 3,
    /// Close a handle (`fh`).
    Release = 4,
    /// Read `b` bytes at offset `a` into bulk -> count in `v0`.
    Read = 5,
    /// Write `b` bytes from bulk at offset `a` (at end of file when `flags`
    /// has `O_APPEND`) -> count in `v0`, offset used in `v1`.
    Write = 6,
    /// Directory entries after cookie `a` into at most `b` bytes of bulk
    /// (0 = all of it), as [`DirEntryHeader`] + name, 8-aligned -> bytes used
    /// in `v0`, entries in `v1`.
    Readdir = 7,
    /// `access`/`faccessat`: `a` = mask, `flags` = `AT_*` flags.
    Access = 8,
    /// Symlink target -> payload.
    Readlink = 9,
    /// `a` = mode (umask applied).
    Mkdir = 10,
    /// `a` = mode incl. type bits (umask applied), `b` = rdev.
    Mknod = 11,
    /// Remove a non-directory.
    Unlink = 12,
    /// Remove an empty directory.
    Rmdir = 13,
    /// path = new link's path, path2 = target text.
    Symlink = 14,
    /// Hard link: path (base `fh`) -> path2 (base `fh2`); `flags` = `AT_SYMLINK_FOLLOW`.
    Link = 15,
    /// path (base `fh`) -> path2 (base `fh2`); `flags` = `RENAME_*`.
    Rename = 16,
    /// Change attributes of path (or of handle `fh` when `path_len == 0` and
    /// `flags & AT_EMPTY_PATH`): see [`SetAttrReq`] in the payload.
    SetAttr = 17,
    /// Flush a handle's data (a no-op for memory, but validates the handle).
    Fsync = 18,
    /// Filesystem totals -> [`WireStatFs`] payload, for the file at path
    /// (base `fh`) or, with no path, the open handle `fh`.
    Statfs = 19,
    /// `lseek` with `SEEK_DATA`/`SEEK_HOLE` (`flags` = whence) from offset
    /// `a` on handle `fh` -> position in `v0`.
    Lseek = 20,
    /// `fallocate` on handle `fh`: `flags` = mode, `a` = offset, `b` = length.
    Fallocate = 21,
    /// `copy_file_range` from handle `fh` at `a` to handle `fh2` at `b`, at
    /// most `c` bytes -> count in `v0`.
    CopyFileRange = 22,
    /// Extended attribute `path2` of path (or of handle `fh` with
    /// `AT_EMPTY_PATH` and no path): value into at most `b` bytes of bulk
    /// (`b` = 0: size only) -> value length in `v0`.
    Getxattr = 23,
    /// Sets attribute `path2` to the `b` bytes of bulk; `a` = `XATTR_*` flags.
    Setxattr = 24,
    /// Attribute names (NUL-terminated) into at most `b` bytes of bulk
    /// (`b` = 0: size only) -> list length in `v0`.
    Listxattr = 25,
    /// Removes attribute `path2`.
    Removexattr = 26,
    /// The kernel has opened handle `fh` through its reserved name
    /// ([`handle_name`] with the client's image): the daemon drops the
    /// kernel's cached entry of that name, so that only the kernel fds
    /// opened through it keep the inode (an unlinked file is then freed
    /// after their last close), and the name resolves to nothing in the
    /// kernel's cache (`getcwd` in a removed directory reopened this way
    /// is `ENOENT`, as on tmpfs).
    DropHandleName = 27,
    /// The path of directory handle `fh` below the mount root, as its
    /// names stand now (no leading slash; empty for the root) -> payload;
    /// `ENOENT` once it was removed. Lets a directory fd be reopened
    /// through the kernel after the directory was renamed or moved.
    DirPath = 28,
}

impl Op {
    /// Decodes an opcode read from untrusted memory.
    pub fn from_u32(v: u32) -> Option<Op> {
        use Op::*;
        Some(match v {
            1 => Stat,
            2 => Fstat,
            3 => Open,
            4 => Release,
            5 => Read,
            6 => Write,
            7 => Readdir,
            8 => Access,
            9 => Readlink,
            10 => Mkdir,
            11 => Mknod,
            12 => Unlink,
            13 => Rmdir,
            14 => Symlink,
            15 => Link,
            16 => Rename,
            17 => SetAttr,
            18 => Fsync,
            19 => Statfs,
            20 => Lseek,
            21 => Fallocate,
            22 => CopyFileRange,
            23 => Getxattr,
            24 => Setxattr,
            25 => Listxattr,
            26 => Removexattr,
            27 => DropHandleName,
            28 => DirPath,
            _ => return None,
        })
    }
}

/// Fixed part of every request.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ReqHeader {
    /// [`Op`] as `u32`.
    pub op: u32,
    /// Operation flags (`AT_*`, `O_*`, `RENAME_*`).
    pub flags: u32,
    /// Handle the operation acts on, or the base of `path` (0 = mount root).
    pub fh: u64,
    /// Base of `path2` (0 = mount root).
    pub fh2: u64,
    /// First operation argument.
    pub a: u64,
    /// Second operation argument.
    pub b: u64,
    /// Third operation argument.
    pub c: u64,
    /// Length of the first path.
    pub path_len: u32,
    /// Length of the second path.
    pub path2_len: u32,
    /// Length of a fixed payload after the paths (e.g. [`SetAttrReq`]).
    pub payload_len: u32,
    /// Caller's client-side request number, echoed in the reply.
    pub seq: u32,
}

/// Fixed part of every reply.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RespHeader {
    /// 0 on success, `-errno`, or [`ESCAPED`].
    pub status: i32,
    /// Echo of the request's `seq`.
    pub seq: u32,
    /// First result value.
    pub v0: u64,
    /// Second result value.
    pub v1: u64,
    /// 1 when a [`WireAttr`] starts the payload.
    pub has_attr: u32,
    /// Bytes of payload after the header (attr included).
    pub payload_len: u32,
}

/// `stat` fields, as the daemon reports them.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct WireAttr {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Access time, seconds.
    pub atime: i64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Status change time, seconds.
    pub ctime: i64,
    /// Access time, nanoseconds.
    pub atime_nsec: u32,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Status change time, nanoseconds.
    pub ctime_nsec: u32,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Zero.
    pub _pad: u32,
}

/// `statfs` fields.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct WireStatFs {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Longest name.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
    /// Zero.
    pub _pad: u32,
}

/// One directory entry in a [`Op::Readdir`] bulk reply, followed by `name_len`
/// name bytes, padded so the next header is 8-aligned.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DirEntryHeader {
    /// Inode number.
    pub ino: u64,
    /// Cookie that continues the listing after this entry.
    pub next: u64,
    /// `DT_*` type.
    pub kind: u8,
    /// Zero.
    pub _pad: u8,
    /// Name length.
    pub name_len: u16,
    /// Zero.
    pub _pad2: u32,
}

impl DirEntryHeader {
    /// Bytes an entry with `name_len` takes in the bulk area.
    pub const fn record_len(name_len: usize) -> usize {
        (size_of::<DirEntryHeader>() + name_len + 7) & !7
    }
}

/// Which [`SetAttrReq`] fields apply.
pub mod set {
    /// `mode` is valid.
    pub const MODE: u32 = 1;
    /// `uid` is valid.
    pub const UID: u32 = 2;
    /// `gid` is valid.
    pub const GID: u32 = 4;
    /// `size` is valid.
    pub const SIZE: u32 = 8;
    /// Set atime to `atime`/`atime_nsec`.
    pub const ATIME: u32 = 16;
    /// Set atime to now.
    pub const ATIME_NOW: u32 = 32;
    /// Set mtime to `mtime`/`mtime_nsec`.
    pub const MTIME: u32 = 64;
    /// Set mtime to now.
    pub const MTIME_NOW: u32 = 128;
    /// The request is a `chown` (even with neither `UID` nor `GID`: it still
    /// clears setuid/setgid and updates ctime).
    pub const CHOWN: u32 = 256;
}

/// Payload of [`Op::SetAttr`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SetAttrReq {
    /// Bits of [`set`].
    pub valid: u32,
    /// New permission bits.
    pub mode: u32,
    /// New owner.
    pub uid: u32,
    /// New group.
    pub gid: u32,
    /// New size.
    pub size: u64,
    /// New atime, seconds.
    pub atime: i64,
    /// New mtime, seconds.
    pub mtime: i64,
    /// New atime, nanoseconds.
    pub atime_nsec: u32,
    /// New mtime, nanoseconds.
    pub mtime_nsec: u32,
}

/// Marker for the wire structs: `#[repr(C)]`, integers only, no padding that
/// the compiler could leave uninitialised (explicit `_pad` fields instead).
///
/// # Safety
/// Implementors must be plain-old-data: every bit pattern is a valid value
/// and the type has no implicit padding.
pub unsafe trait Wire: Copy + Default {}

// SAFETY: all of these are #[repr(C)] structs of integers whose fields are
// laid out without implicit padding (checked by `layout_has_no_padding`).
unsafe impl Wire for ReqHeader {}
// SAFETY: as above.
unsafe impl Wire for RespHeader {}
// SAFETY: as above.
unsafe impl Wire for WireAttr {}
// SAFETY: as above.
unsafe impl Wire for WireStatFs {}
// SAFETY: as above.
unsafe impl Wire for DirEntryHeader {}
// SAFETY: as above.
unsafe impl Wire for SetAttrReq {}
// SAFETY: as above.
unsafe impl Wire for Hello {}
// SAFETY: as above.
unsafe impl Wire for HelloReply {}

/// The bytes of a wire struct.
pub fn bytes_of<T: Wire>(v: &T) -> &[u8] {
    // SAFETY: `T: Wire` has no padding, so all `size_of::<T>()` bytes are
    // initialised; the slice borrows `v`.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

/// Reads a wire struct from the start of `bytes` (any alignment). `None` if
/// `bytes` is too short.
pub fn decode<T: Wire>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length was checked; `T: Wire` accepts every bit pattern;
    // read_unaligned has no alignment requirement.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_no_padding() {
        assert_eq!(size_of::<ReqHeader>(), 4 + 4 + 8 * 5 + 4 * 4);
        assert_eq!(size_of::<RespHeader>(), 4 + 4 + 8 + 8 + 4 + 4);
        assert_eq!(size_of::<WireAttr>(), 8 * 6 + 4 * 10);
        assert_eq!(size_of::<WireStatFs>(), 8 * 5 + 4 * 4);
        assert_eq!(size_of::<DirEntryHeader>(), 24);
        assert_eq!(size_of::<SetAttrReq>(), 4 * 4 + 8 * 3 + 4 * 2);
        assert_eq!(size_of::<Hello>(), 16);
        assert_eq!(size_of::<HelloReply>(), 4 * 4);
    }

    #[test]
    fn socket_names_follow_the_discovery_rule() {
        let mut buf = [0u8; 32];
        let n = socket_name(0, 45, &mut buf);
        assert_eq!(&buf[..n], b"dev-0-45.sock");
        let n = socket_name(u32::MAX, u32::MAX, &mut buf);
        assert_eq!(&buf[..n], b"dev-4294967295-4294967295.sock");
    }

    #[test]
    fn handle_names_round_trip_and_have_one_spelling() {
        let name = handle_name(0x2a, 0x0123_4567_89ab_cdef);
        assert_eq!(&name, b".btfuse-fd-000000000000002a-0123456789abcdef");
        assert_eq!(
            parse_handle_name(&name),
            Some((0x2a, 0x0123_4567_89ab_cdef))
        );
        assert_eq!(
            parse_handle_name(&handle_name(u64::MAX, 0)),
            Some((u64::MAX, 0))
        );
        for other in [
            &b".btfuse-fd-000000000000002A-0123456789abcdef"[..],
            b".btfuse-fd-2a-0123456789abcdef",
            b".btfuse-fd-000000000000002a-0123456789abcdef0",
            b".btfuse-fd-000000000000002a_0123456789abcdef",
            b".btfuse-fx-000000000000002a-0123456789abcdef",
            b".btfuse-fd-+00000000000002a-0123456789abcdef",
            b"f",
            b"",
        ] {
            assert_eq!(parse_handle_name(other), None, "{other:?}");
        }
    }

    #[test]
    fn decode_round_trips_and_rejects_short_input() {
        let h = ReqHeader {
            op: Op::Read as u32,
            fh: 7,
            a: 4096,
            b: 1 << 20,
            seq: 9,
            ..Default::default()
        };
        let bytes = bytes_of(&h);
        assert_eq!(decode::<ReqHeader>(bytes), Some(h));
        assert_eq!(decode::<ReqHeader>(&bytes[..bytes.len() - 1]), None);
        // Misaligned input decodes too.
        let mut buf = [0u8; 80];
        buf[1..1 + bytes.len()].copy_from_slice(bytes);
        assert_eq!(decode::<ReqHeader>(&buf[1..]), Some(h));
    }

    #[test]
    fn every_opcode_round_trips() {
        for v in 0..64 {
            if let Some(op) = Op::from_u32(v) {
                assert_eq!(op as u32, v);
            }
        }
        assert_eq!(Op::from_u32(0), None);
        assert_eq!(Op::from_u32(u32::MAX), None);
    }

    #[test]
    fn dir_records_are_aligned() {
        assert_eq!(DirEntryHeader::record_len(0), 24);
        assert_eq!(DirEntryHeader::record_len(1), 32);
        assert_eq!(DirEntryHeader::record_len(8), 32);
        assert_eq!(DirEntryHeader::record_len(255) % 8, 0);
    }
}
