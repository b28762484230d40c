//! Listings with attributes (`Readdir` with `plus`) read into the listing
//! cache: what a `DIR` stream (`dir`) and the sibling prefetch
//! (`ops::siblings`) share.

use core::mem::size_of;

use proto::{DirEntryHeader, WireAttr};

use crate::listcache::{self, ListedDir};
use crate::metacache;

/// The path a directory was opened by: its entries' attributes then also
/// answer `lstat` of `path/name`, as long as nothing changed since the
/// open (same stamp).
pub(crate) struct Named {
    base: u64,
    path: [u8; metacache::KEY_MAX],
    len: usize,
    stamp: u64,
}

impl Named {
    /// `rel` (relative to `base`), opened under generation `stamp`; `None`
    /// if it cannot be a cache key (too long, unstamped).
    pub(crate) fn new(base: u64, rel: &[u8], stamp: u64) -> Option<Named> {
        if stamp == 0 || rel.len() >= metacache::KEY_MAX {
            return None;
        }
        let mut path = [0u8; metacache::KEY_MAX];
        path[..rel.len()].copy_from_slice(rel);
        Some(Named {
            base,
            path,
            len: rel.len(),
            stamp,
        })
    }

    /// The generation it was opened under.
    pub(crate) fn stamp(&self) -> u64 {
        self.stamp
    }
}

/// One record of a listing.
pub(crate) struct Listed<'a> {
    pub(crate) header: DirEntryHeader,
    /// Its attributes as the record holds them (a `WireAttr`'s bytes), in
    /// a listing with them; empty otherwise.
    pub(crate) attr: &'a [u8],
    pub(crate) name: &'a [u8],
}

/// The whole records of a listing (header, attributes if `with_attrs`,
/// name), in order.
pub(crate) fn records(bytes: &[u8], with_attrs: bool) -> impl Iterator<Item = Listed<'_>> {
    let hl = size_of::<DirEntryHeader>();
    let al = if with_attrs { size_of::<WireAttr>() } else { 0 };
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let header = proto::decode::<DirEntryHeader>(bytes.get(at..)?)?;
        let nl = header.name_len as usize;
        let record = bytes.get(at..at + DirEntryHeader::record_len(al + nl))?;
        at += record.len();
        Some(Listed {
            header,
            attr: &record[hl..hl + al],
            name: &record[hl + al..hl + al + nl],
        })
    })
}

/// Keeps a listing with attributes (`records`, stamped `stamp`) of the
/// directory of inode number `dir_ino` (if known) as the answers of
/// `fstatat(fd, name, AT_SYMLINK_NOFOLLOW)` for any fd of it and, while
/// nothing changed since `named` was opened, of `lstat(path/name)` (see
/// `listcache`); `from_start`: they begin at the directory's start,
/// `whole`: and reach its end. The listing cache's slot they went to.
pub(crate) fn keep(
    mount: usize,
    dir_ino: Option<u64>,
    named: Option<&Named>,
    records: &[u8],
    stamp: u64,
    (from_start, whole): (bool, bool),
) -> Option<usize> {
    let named = named.filter(|n| n.stamp == stamp);
    let listed = ListedDir {
        mount,
        ino: dir_ino,
        path: named.map(|n| (n.base, &n.path[..n.len])),
    };
    let entries = self::records(records, true).map(|e| (e.name, e.attr));
    listcache::keep(&listed, entries, stamp, from_start, whole)
}
