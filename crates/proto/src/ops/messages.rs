//! The fixed message headers and the reply structs of the operations
//! table (`super`): plain wire structs, padding-checked at compile time.

#[allow(unused_imports)] // the docs link the operations and `Op`
use super::*;
use crate::wire::{wire_structs, WireAttr, WireStatFs};

wire_structs! {
    /// Fixed start of every request message.
    pub struct RequestHeader {
        /// [`Op`] as `u32`.
        pub op: u32,
        /// The client's request number, echoed in the reply.
        pub seq: u32,
        /// Length of the first path.
        pub path_len: u32,
        /// Length of the second path.
        pub path2_len: u32,
    }

    /// Fixed start of every reply message.
    pub struct ReplyHeader {
        /// 0 on success, `-errno`, or [`ESCAPED`](crate::ESCAPED).
        pub status: i32,
        /// Echo of the request's `seq`.
        pub seq: u32,
        /// Bytes of inline payload after the reply struct.
        pub payload_len: u32,
        /// Zero.
        pub _pad: u32,
    }

    /// Reply with nothing but its status.
    pub struct Done {}

    /// Reply carrying attributes.
    pub struct AttrOut {
        /// The attributes.
        pub attr: WireAttr,
    }

    /// Reply to [`Stat`] and [`Fstat`].
    pub struct StatOut {
        /// The attributes.
        pub attr: WireAttr,
        /// The store's change generation the answer holds for, 0 if it
        /// may not be kept (see [`GenPage`](crate::GenPage)).
        pub stamp: u64,
        /// `ENOENT` when the path names nothing (then `attr` is zero): a
        /// negative answer, stamped like a positive one.
        pub absent: u32,
        /// Zero.
        pub _pad: u32,
        /// The directory the path's last name was looked up in (after
        /// any symlink followed), 0 if unknown or none (an answer about a
        /// handle): with `attr.ino`, all that a change after `stamp` must
        /// leave untouched for the answer to hold (see
        /// [`changes`](crate::changes)).
        pub dir: u64,
    }

    /// Reply to [`Open`].
    pub struct OpenOut {
        /// The new handle.
        pub fh: u64,
        /// Attributes of the opened file.
        pub attr: WireAttr,
        /// The change generation under which the path named this file
        /// for the caller, 0 if unknown (see [`GenPage`](crate::GenPage)).
        pub stamp: u64,
        /// The directory the path's last name was looked up in, 0 if
        /// unknown (as [`StatOut::dir`]).
        pub dir: u64,
        /// With a payload (a plain read-only open of a small regular
        /// file): the stamp under which the payload is the file's bytes,
        /// all of them, as a [`ReadOut::stamp`] of a read at 0 would be,
        /// given only when a read now would not update the file's atime
        /// (which must reach the daemon); 0: no bytes.
        pub data_stamp: u64,
    }

    /// Reply to [`Read`].
    pub struct ReadOut {
        /// Bytes read.
        pub count: u64,
        /// The change generation under which they are the file's bytes
        /// there, 0 if they may not be kept: a change was in progress, or
        /// the kernel may hold pages of the file (a store through a shared
        /// mapping reaches the daemon only when written back; the kernel
        /// taking pages is itself a change of the file, see
        /// [`changes`](crate::changes)).
        pub stamp: u64,
        /// With a `stamp`: the file's attributes under it.
        pub attr: WireAttr,
    }

    /// Reply to [`Unlink`] and [`Rename`].
    pub struct RemovedOut {
        /// The regular file whose name the call removed or replaced, 0 if
        /// none (or another kind of file): a client lets go of what it
        /// keeps of it (a handle would keep it allocated).
        pub file: u64,
    }

    /// Reply carrying a byte count.
    pub struct CountOut {
        /// Bytes transferred (or, for xattrs, the value's length).
        pub count: u64,
    }

    /// Reply to [`Write`].
    pub struct WriteOut {
        /// Bytes written.
        pub count: u64,
        /// Offset the data was written at (end of file for `O_APPEND`).
        pub offset: u64,
    }

    /// Reply to [`Readdir`].
    pub struct ReaddirOut {
        /// Bytes of bulk used by the entries.
        pub bytes: u64,
        /// Number of entries.
        pub entries: u64,
        /// With `plus`: the change generation under which each entry's
        /// attributes are what `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`
        /// answers the caller; 0 if they may not be kept (see
        /// [`GenPage`](crate::GenPage)).
        pub stamp: u64,
        /// 1: these are the last entries (no need to ask for more).
        pub eof: u32,
        /// Zero.
        pub _pad: u32,
    }

    /// Reply to [`OpenList`].
    pub struct OpenListOut {
        /// The open, as [`Open`] answers it.
        pub open: OpenOut,
        /// The listing, as [`Readdir`] answers it.
        pub list: ReaddirOut,
    }

    /// Reply to [`List`].
    pub struct ListOut {
        /// The directory's inode number.
        pub ino: u64,
        /// The generation the open's lookup of `path` holds under, as
        /// [`OpenOut::stamp`].
        pub stamp: u64,
        /// The listing, with attributes, as [`Readdir`] answers it.
        pub list: ReaddirOut,
    }

    /// Reply to [`OpenAhead`].
    pub struct OpenAheadOut {
        /// Files opened ([`AheadRecord`](crate::AheadRecord)s in the bulk area).
        pub count: u64,
        /// Entries of the directory looked at, from the path's name on
        /// (those skipped are the rest).
        pub scanned: u64,
        /// Bytes of bulk the records use.
        pub bytes: u64,
        /// The change generation under which every record holds: its
        /// name named its file in the directory, the file its attributes
        /// and bytes (0 with no record).
        pub stamp: u64,
        /// The directory's inode number (as [`OpenOut::dir`]).
        pub dir: u64,
    }

    /// Reply to [`Lseek`].
    pub struct OffsetOut {
        /// The resulting file position.
        pub offset: u64,
    }

    /// Reply to [`Statfs`].
    pub struct StatfsOut {
        /// The filesystem totals.
        pub statfs: WireStatFs,
    }
}
