//! The fast path's wire format and discovery rules, shared by
//! `libbtfuse.so` and the daemon.
//!
//! Defined once, here, in `no_std` code: the operations and their request
//! and reply structs in [`ops`] (one table, from which encoding, decoding
//! and the daemon's dispatch are derived), the plain-old-data codec in
//! [`wire`], the handshake ([`Hello`]) and channel shape here, and how a
//! client finds a mount's daemon in [`mountinfo`].
//!
//! The daemon treats every message as hostile: [`ops::dispatch`] checks
//! every length against the message, and each handler validates its
//! fields. A path that leaves the mount (through `..` above the root or a
//! symlink pointing elsewhere) is answered with [`ESCAPED`]: the client
//! then hands the call to the real libc, and the kernel resolves it.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs, unreachable_pub)]

pub mod changes;
pub mod mountinfo;
pub mod ops;
pub mod public;
pub mod wire;

pub use ops::{MAX_REPLY, MAX_REQUEST};
pub use wire::{
    bytes_of, decode, AheadRecord, DirEntryHeader, SetAttrReq, Wire, WireAttr, WireStatFs,
};

/// Protocol version, checked when a channel is set up.
pub const VERSION: u32 = 9;

/// Longest path the fast path carries (like `PATH_MAX`, including the NUL the
/// wire format does not carry).
pub const PATH_MAX: usize = 4096;

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

/// The name of a daemon's generation page file in the run directory, for
/// the mount of device `major:minor` (`dev-MAJOR-MINOR.page`, beside its
/// socket): the page and the public table (see [`public`]).
pub fn page_name(major: u32, minor: u32, buf: &mut [u8; 32]) -> usize {
    let n = socket_name(major, minor, buf);
    buf[n - 5..n].copy_from_slice(b".page");
    n
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

wire::wire_structs! {
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
}

/// Magic number of [`Hello`] and [`HelloReply`] ("BTFS").
pub const HELLO_MAGIC: u32 = 0x5346_5442;

/// A [`Hello`] with this magic ("STAT") asks for the daemon's statistics
/// instead of a channel: the reply is one message of UTF-8 text
/// (`btfuse stats`).
pub const STATS_MAGIC: u32 = 0x5441_5453;

wire::wire_structs! {
/// The daemon's answer on the socket, sent before it serves the channel's
/// first request. The client reads it only if that request gets no reply:
/// an answer with `error != 0`, or none at all, means the daemon never
/// took the channel, so the request was not executed and the call may go
/// to the kernel instead. An accepting answer carries the [`GenPage`]
/// memfd.
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
}

/// The daemon's change generations, as clients see them: [`GEN_PAGE_LEN`]
/// bytes (a sealed memfd sent with an accepting [`HelloReply`],
/// `SCM_RIGHTS`), mapped read-only, laid out as this.
///
/// `begun` counts the store's changes begun, from either door; it moves
/// before a change becomes visible, so before the changing call replies.
/// A reply carrying a non-zero `stamp` (e.g. [`ops::StatOut`]) was the
/// store's answer at an instant with no change in progress, and remains
/// its answer exactly as long as `begun == stamp` (an `Acquire` load), or
/// while the [`changes::ChangeLog`] says that no change since touched
/// what the answer depends on.
///
/// `alive` says whether the daemon still lives, without a system call: it
/// is the futex word of a robust, process-shared lock that one daemon
/// thread takes at start and holds for the daemon's whole life (the
/// owner's thread id). Whatever ends that thread (exit, `SIGKILL`, a
/// crash), the kernel sets [`OWNER_DIED`] in it as the thread exits, so a
/// cached answer is never given for a daemon that is gone (its mount then
/// answers `ENOTCONN`).
#[repr(C)]
#[derive(Debug)]
pub struct GenPage {
    /// Changes begun.
    pub begun: core::sync::atomic::AtomicU64,
    /// Changes finished.
    pub ended: core::sync::atomic::AtomicU64,
    /// [`public::LAYOUT`] once the daemon made the file (0 before): a
    /// process that maps the file by its name reads the table only then.
    pub layout: core::sync::atomic::AtomicU64,
    /// Keeps `alive` on a cache line of its own.
    pub _pad: [u64; 5],
    /// The daemon's liveness word (see above): its owner's thread id while
    /// the daemon lives.
    pub alive: core::sync::atomic::AtomicU32,
    /// Room for the rest of the lock whose futex word `alive` is.
    pub _lock: [u8; 60],
    /// What each recent change touched.
    pub log: changes::ChangeLog,
}

/// The bit the kernel sets in a robust futex word whose owner died.
pub const OWNER_DIED: u32 = 0x4000_0000;

impl GenPage {
    /// Whether the daemon that shares this page still lives (`Acquire`).
    pub fn daemon_alive(&self) -> bool {
        let w = self.alive.load(core::sync::atomic::Ordering::Acquire);
        w != 0 && w & OWNER_DIED == 0
    }
}

/// Size of the generations page (whole pages).
pub const GEN_PAGE_LEN: usize = size_of::<GenPage>().next_multiple_of(4096);

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

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn shared_structs_keep_their_sizes() {
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
    fn decode_rejects_short_input_and_takes_any_alignment() {
        let h = Hello {
            magic: HELLO_MAGIC,
            version: VERSION,
            image: 9,
        };
        let bytes = bytes_of(&h);
        assert_eq!(decode::<Hello>(bytes), Some(h));
        assert_eq!(decode::<Hello>(&bytes[..bytes.len() - 1]), None);
        let mut buf = [0u8; 40];
        buf[1..1 + bytes.len()].copy_from_slice(bytes);
        assert_eq!(decode::<Hello>(&buf[1..]), Some(h));
    }

    #[test]
    fn dir_records_are_aligned() {
        assert_eq!(DirEntryHeader::record_len(0), 24);
        assert_eq!(DirEntryHeader::record_len(1), 32);
        assert_eq!(DirEntryHeader::record_len(8), 32);
        assert_eq!(DirEntryHeader::record_len(255) % 8, 0);
        assert_eq!(size_of::<AheadRecord>(), 16);
        assert_eq!(AheadRecord::record_len(0, 0), 16 + 88);
        assert_eq!(AheadRecord::record_len(1, 0), 112);
        assert_eq!(AheadRecord::record_len(4, 4096) % 8, 0);
    }
}
