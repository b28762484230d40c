//! Whole listings with attributes, kept while nothing changes: a directory
//! listed again (every `find`, `ls -l`, `du` of a tree that stands still,
//! through either door) is handed out from one contiguous copy instead of
//! a walk of its map and a lock of every child's inode (12.8 µs for 100
//! entries through the fast path, most of it cache misses on the nodes).
//!
//! A kept listing is the store's answer while the change generation is
//! still the one it was made under, or while the change log says that no
//! change since touched the directory's listing (see the `generation`
//! module: that covers its names and every listed entry's attributes, but
//! for those of "..", which the listing hands out fresh), so it can never
//! be stale.

use super::*;
use proto::{DirEntryHeader, WireAttr};
use std::sync::OnceLock;

/// Directories kept at once (by inode number, one per slot).
const SLOTS: usize = 1024;
/// Longest listing kept (entries, "." and ".." included).
pub(super) const MOST_ENTRIES: usize = 4096;
/// Bytes all kept listings may take.
const BUDGET: usize = 32 << 20;

/// One directory's entries in listing order ("." and ".." first, then by
/// name), with their attributes, as they stood under `stamp`.
pub(super) struct Listing {
    pub(super) stamp: u64,
    /// The names, end to end.
    names: Vec<u8>,
    /// Per entry: where its name ends, and what it lists.
    entries: Vec<(usize, Attr)>,
    /// Bytes [`Listing::records`] takes.
    record_bytes: usize,
    /// The named entries as the fast path's records, made on first use.
    records: OnceLock<Records>,
}

/// A listing's named entries ("." and ".." excluded) encoded as the fast
/// path hands them out from the start of a fresh handle (see
/// [`DirEntry::encode`], with attributes), so that a listing handed out
/// again is one copy instead of a record made per entry.
pub(super) struct Records {
    bytes: Vec<u8>,
    /// Per entry: where its record ends, and the plain bytes (records
    /// without attributes) up to its end.
    ends: Vec<(u32, u32)>,
}

impl Records {
    /// How many of the first entries fit `room` bytes of records and
    /// `plain_room` bytes of plain ones, and the bytes of their records.
    pub(super) fn fitting(&self, room: usize, plain_room: usize) -> (usize, usize) {
        let n = self
            .ends
            .partition_point(|&(end, plain)| end as usize <= room && plain as usize <= plain_room);
        (n, n.checked_sub(1).map_or(0, |i| self.ends[i].0 as usize))
    }

    /// The records of the first entries, `len` bytes.
    pub(super) fn bytes(&self, len: usize) -> &[u8] {
        &self.bytes[..len]
    }

    /// The plain bytes of the first `n` entries.
    pub(super) fn plain(&self, n: usize) -> usize {
        n.checked_sub(1).map_or(0, |i| self.ends[i].1 as usize)
    }
}

impl Listing {
    /// An empty listing made under `stamp`, with room for `entries`
    /// entries whose names take `name_bytes` bytes.
    pub(super) fn with_capacity(stamp: u64, entries: usize, name_bytes: usize) -> Listing {
        Listing {
            stamp,
            names: Vec::with_capacity(name_bytes),
            entries: Vec::with_capacity(entries),
            record_bytes: 0,
            records: OnceLock::new(),
        }
    }

    pub(super) fn push(&mut self, name: &[u8], attr: Attr) {
        self.names.extend_from_slice(name);
        self.entries.push((self.names.len(), attr));
        if self.entries.len() > 2 {
            self.record_bytes += DirEntryHeader::record_len(size_of::<WireAttr>() + name.len());
        }
    }

    /// The named entries as records (see [`Records`]): cookie
    /// `FIRST_NAME_COOKIE + i` after the `i`th, as a fresh handle's cursor
    /// numbers them.
    pub(super) fn records(&self) -> &Records {
        self.records.get_or_init(|| {
            let mut bytes = Vec::with_capacity(self.record_bytes);
            let mut ends = Vec::with_capacity(self.len().saturating_sub(2));
            let mut plain = 0;
            for i in 2..self.len() {
                let (name, attr) = self.get(i);
                let e = DirEntry {
                    ino: attr.ino,
                    next: FIRST_NAME_COOKIE + (i - 2) as u64,
                    kind: attr.kind,
                    name,
                    attr: Some(*attr),
                };
                e.encode(&mut bytes);
                plain += e.plain_len();
                ends.push((bytes.len() as u32, plain as u32));
            }
            Records { bytes, ends }
        })
    }

    /// The names of entries `2..2 + n` end to end, and where each ends in
    /// that run.
    pub(super) fn named(&self, n: usize) -> (&[u8], impl Iterator<Item = usize> + '_) {
        let start = self.entries.get(1).map_or(0, |e| e.0);
        let end = self.entries.get(1 + n).map_or(start, |e| e.0);
        let ends = self.entries[2..2 + n].iter().map(move |e| e.0 - start);
        (&self.names[start..end], ends)
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`: its name and attributes.
    pub(super) fn get(&self, i: usize) -> (&[u8], &Attr) {
        let start = i.checked_sub(1).map_or(0, |p| self.entries[p].0);
        let (end, attr) = &self.entries[i];
        (&self.names[start..*end], attr)
    }

    /// The index of the first entry past `name` (a name of the directory,
    /// not "." or "..").
    pub(super) fn after(&self, name: &[u8]) -> usize {
        let (mut lo, mut hi) = (2.min(self.len()), self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid).0 <= name {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn bytes(&self) -> usize {
        self.names.capacity()
            + self.entries.capacity() * (size_of::<(usize, Attr)>() + size_of::<(u32, u32)>())
            + self.record_bytes
    }
}

/// A kept listing: its directory, the latest stamp it is known to hold
/// under, and the listing.
struct Kept {
    ino: Ino,
    stamp: u64,
    listing: Arc<Listing>,
}

/// A slot: the listing it keeps, if any.
type Slot = Mutex<Option<Kept>>;

/// The kept listings.
pub(super) struct Listings {
    slots: Box<[Slot]>,
    bytes: AtomicU64,
}

impl Default for Listings {
    fn default() -> Listings {
        Listings {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            bytes: AtomicU64::new(0),
        }
    }
}

impl Listings {
    fn slot(&self, ino: Ino) -> &Slot {
        &self.slots[(ino as usize).wrapping_mul(0x9e37_79b9) % SLOTS]
    }

    /// The listing of `ino` as it stands under `now` (a quiet stamp): one
    /// kept under `now`, or under an older stamp for which `holds` says
    /// that it still stands (it is then known to hold under `now`).
    pub(super) fn get(
        &self,
        ino: Ino,
        now: u64,
        holds: impl FnOnce(u64) -> bool,
    ) -> Option<Arc<Listing>> {
        match &mut *self.slot(ino).lock() {
            Some(k) if k.ino == ino && (k.stamp == now || holds(k.stamp)) => {
                k.stamp = now;
                Some(k.listing.clone())
            }
            _ => None,
        }
    }

    /// Keeps `listing` of `ino` (in place of its slot's), within the budget.
    pub(super) fn put(&self, ino: Ino, listing: Arc<Listing>) {
        let size = listing.bytes() as u64;
        let mut slot = self.slot(ino).lock();
        let old = slot.as_ref().map_or(0, |k| k.listing.bytes() as u64);
        // Under the slot's lock: the old listing's bytes are ours to give back.
        let total = self.bytes.load(Ordering::Relaxed) - old;
        if total + size > BUDGET as u64 {
            return;
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.bytes.fetch_sub(old, Ordering::Relaxed);
        *slot = Some(Kept {
            ino,
            stamp: listing.stamp,
            listing,
        });
    }
}
