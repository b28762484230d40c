//! Plain-old-data wire structs and their byte codec.
//!
//! Every struct here is `#[repr(C)]` integers with explicit padding, so any
//! bit pattern is a valid value and [`decode`] of untrusted bytes can never
//! produce an invalid one; each field is validated by whoever uses it.

use core::mem::size_of;

/// Marker for the wire structs: `#[repr(C)]`, integers only, no padding that
/// the compiler could leave uninitialised (explicit `_pad` fields instead).
///
/// # Safety
/// Implementors must be plain-old-data: every bit pattern is a valid value
/// and the type has no implicit padding.
pub unsafe trait Wire: Copy + Default {}

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

/// Declares `#[repr(C)]` plain-integer structs and marks them [`Wire`],
/// with a compile-time check that each has no implicit padding.
macro_rules! wire_structs {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)? }
    )*) => {$(
        $(#[$meta])*
        #[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
        #[repr(C)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }
        // No implicit padding: the size is the sum of the fields'.
        const _: () = assert!(
            core::mem::size_of::<$name>() == 0 $(+ core::mem::size_of::<$ty>())*
        );
        // SAFETY: a #[repr(C)] struct of integers and wire structs (each
        // valid for every bit pattern), without implicit padding (asserted
        // just above at compile time).
        unsafe impl $crate::wire::Wire for $name {}
    )*};
}
pub(crate) use wire_structs;

wire_structs! {
    /// `stat` fields, as the daemon reports them.
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
        /// [`WireAttr::NO_XATTRS`] or 0.
        pub flags: u32,
    }

    /// `statfs` fields.
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

    /// One directory entry in a `Readdir` bulk reply, followed by
    /// `name_len` name bytes, padded so the next header is 8-aligned.
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

    /// One file of an `OpenAhead` reply in the bulk area, followed by its
    /// `WireAttr`, its name and its bytes, the whole padded to 8 bytes
    /// ([`AheadRecord::record_len`]).
    pub struct AheadRecord {
        /// The file's new read-only handle.
        pub fh: u64,
        /// Name length.
        pub name_len: u16,
        /// Bytes of the file (all of them).
        pub data_len: u16,
        /// Zero.
        pub _pad: u32,
    }

    /// The attribute changes of a `SetAttr` request.
    pub struct SetAttrReq {
        /// Bits of [`set`](crate::set).
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
}

impl WireAttr {
    /// [`WireAttr::flags`]: the file has no extended attribute (so a
    /// `getxattr` of a `security.*` name, which no permission guards,
    /// answers `ENODATA`).
    pub const NO_XATTRS: u32 = 1;
}

impl AheadRecord {
    /// Bytes a record with `name_len` and `data_len` takes in the bulk area.
    pub const fn record_len(name_len: usize, data_len: usize) -> usize {
        (size_of::<AheadRecord>() + size_of::<WireAttr>() + name_len + data_len + 7) & !7
    }
}

impl DirEntryHeader {
    /// Bytes an entry with `name_len` takes in the bulk area.
    pub const fn record_len(name_len: usize) -> usize {
        (size_of::<DirEntryHeader>() + name_len + 7) & !7
    }
}
