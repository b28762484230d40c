//! Listings with attributes (`Readdir` with `plus`) read into the metadata
//! cache: what a `DIR` stream (`dir`) and the sibling prefetch
//! (`ops::siblings`) share.

use core::mem::size_of;

use proto::{DirEntryHeader, WireAttr};

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

    /// `path/name` (just `name` at the mount root) into `buf`.
    fn child<'b>(&self, name: &[u8], buf: &'b mut [u8; metacache::KEY_MAX]) -> Option<&'b [u8]> {
        let dir = &self.path[..self.len];
        let sep = usize::from(!dir.is_empty() && !dir.ends_with(b"/"));
        let n = dir.len() + sep + name.len();
        if n > buf.len() {
            return None;
        }
        buf[..dir.len()].copy_from_slice(dir);
        buf[dir.len()..dir.len() + sep].fill(b'/');
        buf[dir.len() + sep..n].copy_from_slice(name);
        Some(&buf[..n])
    }
}

/// One record of a listing.
pub(crate) struct Listed<'a> {
    pub(crate) header: DirEntryHeader,
    /// Its attributes, in a listing with them.
    pub(crate) attr: Option<WireAttr>,
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
        let len = DirEntryHeader::record_len(al + nl);
        if at + len > bytes.len() {
            return None;
        }
        let attr = (al > 0)
            .then(|| proto::decode::<WireAttr>(&bytes[at + hl..]))
            .flatten();
        let name = &bytes[at + hl + al..at + hl + al + nl];
        at += len;
        Some(Listed { header, attr, name })
    })
}

/// Keeps a listed entry's attributes, stamped `stamp`, as the answer of
/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)` for directory handle `dir`
/// (if any) and, while nothing changed since `named` was opened, of
/// `lstat(path/name)`.
pub(crate) fn keep(
    mount: usize,
    dir: Option<u64>,
    named: Option<&Named>,
    e: &Listed<'_>,
    stamp: u64,
) {
    let Some(attr) = e.attr else {
        return;
    };
    if stamp == 0 || e.name == b"." || e.name == b".." {
        return;
    }
    let answer = Ok(attr);
    let how = metacache::reuse(metacache::NOFOLLOW, &answer);
    if let Some(base) = dir {
        let key = metacache::Key {
            mount,
            base,
            path: e.name,
            how,
        };
        metacache::insert(&key, &answer, stamp);
    }
    let mut buf = [0u8; metacache::KEY_MAX];
    let by_path = named.filter(|n| n.stamp == stamp);
    if let Some((n, path)) = by_path.and_then(|n| Some((n, n.child(e.name, &mut buf)?))) {
        let key = metacache::Key {
            mount,
            base: n.base,
            path,
            how,
        };
        metacache::insert(&key, &answer, stamp);
    }
}
