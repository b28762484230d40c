//! The public table: answers the daemon publishes, in the file its
//! generation page lives in, for any process of the mount to read without
//! a connection. A process that makes a handful of calls on the mount
//! (`cat`, `stat`, a compiler reading a header) answers them from here and
//! never connects.
//!
//! An entry says that name `name` in directory `parent` is inode `ino`
//! with attributes `attr`, and for a small regular file holds its bytes,
//! as the store gave them under change generation `stamp` (see
//! [`GenPage`](crate::GenPage)). It holds exactly as a reply's stamped
//! answer holds: while no change since `stamp` touched `parent`'s names or
//! `ino` ([`ChangeLog`](crate::changes::ChangeLog)). Only what every
//! process of the mount may see is published — a directory that everyone
//! may list and search, reached from the root through such directories
//! only, and in it a directory of the same kind or a regular file that
//! everyone may read, without ACLs — so reading the table tells nobody
//! anything an `ls -l` or a `cat` would not. The daemon scrubs an entry
//! whose inode a change touches (it may no longer be public).
//!
//! Each entry is a seqlock written by one daemon thread at a time: its
//! sequence word is odd while it is written and grows with every write;
//! an entry with no name is empty.

use core::mem::size_of;
use core::sync::atomic::{fence, AtomicU64, Ordering};

use crate::wire::{bytes_of, decode, WireAttr};

/// What [`GenPage::layout`](crate::GenPage) says once the file holds this
/// table: a magic number and the layout's version.
pub const LAYOUT: u64 = 0x6274_7075_6200_0001;

/// Entries in the table (a power of two).
pub const ENTRIES: usize = 1024;
/// Entries a name may sit in, from the one its hash picks.
pub const PROBES: usize = 4;
/// Longest name an entry holds.
pub const NAME_MAX: usize = 104;
/// Largest file whose bytes an entry holds.
pub const DATA_MAX: usize = 4096;

const ATTR_WORDS: usize = size_of::<WireAttr>() / 8;
const _: () = assert!(size_of::<WireAttr>().is_multiple_of(8));
/// Word indices of an entry.
const SEQ: usize = 0;
const PARENT: usize = 1;
const INO: usize = 2;
const STAMP: usize = 3;
/// Name length (low 16 bits; 0: empty); data length + 1 above bit 32
/// (0: no data).
const META: usize = 4;
const ATTR: usize = 5;
const NAME: usize = ATTR + ATTR_WORDS;
/// The entry's token (0 unless it holds bytes).
const TOKEN: usize = NAME + NAME_MAX / 8;
const WORDS: usize = 32;
const _: () = assert!(TOKEN < WORDS);

/// The bits of a token ([`Published::token`]).
pub const TOKEN_BITS: u32 = 48;

/// One entry: a cache line group of words (see the module docs).
#[repr(C, align(64))]
pub struct Entry {
    words: [AtomicU64; WORDS],
}

/// The bytes of one entry's file.
#[repr(C, align(4096))]
pub struct Data {
    words: [AtomicU64; DATA_MAX / 8],
}

/// The table, at [`OFFSET`] in the generation page's file.
#[repr(C)]
pub struct Table {
    entries: [Entry; ENTRIES],
    data: [Data; ENTRIES],
}

/// Where the table starts in the file.
pub const OFFSET: usize = crate::GEN_PAGE_LEN;
/// The file's length: the generation page, then the table.
pub const FILE_LEN: usize = OFFSET + size_of::<Table>();
const _: () = assert!(OFFSET.is_multiple_of(4096));

/// An entry's answer, copied out.
#[derive(Clone, Copy, Debug)]
pub struct Published {
    /// The entry's index.
    pub index: usize,
    /// Its sequence word when read: [`Table::still`] tells whether the
    /// entry changed since.
    pub seq: u64,
    /// The directory the name is in.
    pub parent: u64,
    /// The inode it names.
    pub ino: u64,
    /// The generation under which it was the store's answer.
    pub stamp: u64,
    /// The inode's attributes then.
    pub attr: WireAttr,
    /// How many bytes of the file the entry holds (all of them), if any.
    pub data_len: Option<usize>,
    /// For an entry that holds bytes, a random number of [`TOKEN_BITS`]
    /// that lets whoever read it open the file by inode number
    /// (`ops::OpenInode`); 0 otherwise.
    pub token: u64,
}

/// The first entry a name may sit in.
pub fn home(parent: u64, name: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ parent.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in name {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ h >> 29) as usize & (ENTRIES - 1)
}

/// The words of `name`, zero-padded.
fn name_words(name: &[u8]) -> [u64; NAME_MAX / 8] {
    let mut w = [0u64; NAME_MAX / 8];
    for (i, c) in name.chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        w[i] = u64::from_ne_bytes(b);
    }
    w
}

impl Table {
    /// The entry for `name` in `parent`, if one is published (not
    /// checked against the generation: the caller does that).
    pub fn find(&self, parent: u64, name: &[u8]) -> Option<Published> {
        if name.is_empty() || name.len() > NAME_MAX {
            return None;
        }
        let want = name_words(name);
        let first = home(parent, name);
        (0..PROBES).find_map(|k| self.read((first + k) & (ENTRIES - 1), parent, name.len(), &want))
    }

    /// Entry `i` if it holds `parent`/`name` (`len` bytes, as `want`).
    fn read(&self, i: usize, parent: u64, len: usize, want: &[u64]) -> Option<Published> {
        let e = &self.entries[i].words;
        // Acquire: the words read below are at least as new as this.
        let seq = e[SEQ].load(Ordering::Acquire);
        if seq & 1 == 1 || e[PARENT].load(Ordering::Relaxed) != parent {
            return None;
        }
        let meta = e[META].load(Ordering::Relaxed);
        if meta & 0xffff != len as u64
            || want
                .iter()
                .enumerate()
                .any(|(k, &w)| e[NAME + k].load(Ordering::Relaxed) != w)
        {
            return None;
        }
        let mut attr = [0u64; ATTR_WORDS];
        for (k, a) in attr.iter_mut().enumerate() {
            *a = e[ATTR + k].load(Ordering::Relaxed);
        }
        let found = Published {
            index: i,
            seq,
            parent,
            ino: e[INO].load(Ordering::Relaxed),
            stamp: e[STAMP].load(Ordering::Relaxed),
            attr: decode(bytes_of_words(&attr))?,
            data_len: match meta >> 32 {
                0 => None,
                n => Some((n - 1) as usize).filter(|&n| n <= DATA_MAX),
            },
            token: e[TOKEN].load(Ordering::Relaxed),
        };
        self.still(&found).then_some(found)
    }

    /// Whether the entry `p` was read from is unchanged since.
    pub fn still(&self, p: &Published) -> bool {
        // Acquire fence: everything read from the entry before is ordered
        // before this second look at its sequence word.
        fence(Ordering::Acquire);
        self.entries[p.index].words[SEQ].load(Ordering::Relaxed) == p.seq
    }

    /// Copies the bytes of `p`'s file from `off` into `out`; the count, if
    /// the entry is unchanged since it was read (else the copy is void).
    pub fn read_data(&self, p: &Published, off: usize, out: &mut [u8]) -> Option<usize> {
        let len = p.data_len?;
        let n = len.saturating_sub(off).min(out.len());
        let words = &self.data[p.index].words;
        // A word at a time (a header of a few KiB is read whole by every
        // compiler that includes it); the bytes of the first word from
        // `off` on, then whole words, then the last one's first bytes.
        let mut at = off;
        let mut dst = &mut out[..n];
        while !dst.is_empty() {
            let w = words[at / 8].load(Ordering::Relaxed).to_ne_bytes();
            let from = at % 8;
            let k = (8 - from).min(dst.len());
            dst[..k].copy_from_slice(&w[from..from + k]);
            dst = &mut dst[k..];
            at += k;
        }
        self.still(p).then_some(n)
    }

    /// Writes entry `i` (the daemon, one writer at a time): `name` in
    /// `parent` is `attr.ino` with `attr` under `stamp`, and, for a small
    /// file, `data` are all its bytes, opened again by `token`.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        i: usize,
        parent: u64,
        name: &[u8],
        stamp: u64,
        attr: &WireAttr,
        data: Option<&[u8]>,
        token: u64,
    ) {
        assert!(!name.is_empty() && name.len() <= NAME_MAX);
        let e = &self.entries[i].words;
        let held = self.held_words(i);
        let seq = self.begin(i);
        e[PARENT].store(parent, Ordering::Relaxed);
        e[INO].store(attr.ino, Ordering::Relaxed);
        e[STAMP].store(stamp, Ordering::Relaxed);
        let data_len = data.filter(|d| d.len() <= DATA_MAX).map(<[u8]>::len);
        let meta = name.len() as u64 | data_len.map_or(0, |n| (n as u64 + 1) << 32);
        e[META].store(meta, Ordering::Relaxed);
        for (k, c) in bytes_of(attr).chunks(8).enumerate() {
            e[ATTR + k].store(u64::from_ne_bytes(c.try_into().unwrap()), Ordering::Relaxed);
        }
        for (k, w) in name_words(name).into_iter().enumerate() {
            e[NAME + k].store(w, Ordering::Relaxed);
        }
        e[TOKEN].store(
            if data_len.is_some() { token } else { 0 },
            Ordering::Relaxed,
        );
        // The bytes, then zeros over what the entry held before past
        // them: nothing an earlier answer held stays readable in the file.
        let d = data.filter(|_| data_len.is_some()).unwrap_or(&[]);
        let words = &self.data[i].words;
        for (k, c) in d.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            words[k].store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
        for w in words.iter().take(held).skip(d.len().div_ceil(8)) {
            w.store(0, Ordering::Relaxed);
        }
        // Release: every word above is visible before the new sequence.
        e[SEQ].store(seq + 2, Ordering::Release);
    }

    /// Empties entry `i` and wipes what it held (the daemon).
    pub fn clear(&self, i: usize) {
        let e = &self.entries[i].words;
        let held = self.held_words(i);
        let seq = self.begin(i);
        for w in &e[SEQ + 1..] {
            w.store(0, Ordering::Relaxed);
        }
        for w in self.data[i].words.iter().take(held) {
            w.store(0, Ordering::Relaxed);
        }
        // Release: the wipe is visible before the new sequence.
        e[SEQ].store(seq + 2, Ordering::Release);
    }

    /// Words of entry `i`'s bytes area it holds now (the daemon, which
    /// writes it).
    fn held_words(&self, i: usize) -> usize {
        match self.entries[i].words[META].load(Ordering::Relaxed) >> 32 {
            0 => 0,
            n => ((n - 1) as usize).min(DATA_MAX).div_ceil(8),
        }
    }

    /// Stamps entry `i` `stamp` instead, all else kept (the daemon, one
    /// writer at a time, for an answer it knows still holds).
    pub fn restamp(&self, i: usize, stamp: u64) {
        let e = &self.entries[i].words;
        let seq = self.begin(i);
        e[STAMP].store(stamp, Ordering::Relaxed);
        // Release: the stamp is visible before the new sequence.
        e[SEQ].store(seq + 2, Ordering::Release);
    }

    /// Marks entry `i` as being written (its sequence odd); returns its
    /// sequence before.
    fn begin(&self, i: usize) -> u64 {
        let e = &self.entries[i].words;
        let seq = e[SEQ].load(Ordering::Relaxed);
        e[SEQ].store(seq + 1, Ordering::Relaxed);
        // Release fence: a reader that sees any word written after this
        // sees the odd sequence too.
        fence(Ordering::Release);
        seq
    }
}

/// The bytes of `words`.
fn bytes_of_words(words: &[u64; ATTR_WORDS]) -> &[u8] {
    // SAFETY: `ATTR_WORDS` initialised u64s are `ATTR_WORDS * 8` bytes;
    // the slice borrows `words`.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), ATTR_WORDS * 8) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ino: u64, size: u64) -> WireAttr {
        WireAttr {
            ino,
            size,
            mode: 0o100644,
            ..Default::default()
        }
    }

    #[test]
    fn a_files_bytes_are_read_from_any_offset_until_its_entry_changes() {
        // SAFETY: the table is atomics only, for which zeros are valid.
        let t: Box<Table> = unsafe { Box::new_zeroed().assume_init() };
        let bytes: Vec<u8> = (0..100u8).collect();
        let i = home(1, b"f");
        t.write(i, 1, b"f", 5, &attr(7, 100), Some(&bytes), 42);
        let p = t.find(1, b"f").expect("published");
        assert_eq!((p.ino, p.data_len, p.token), (7, Some(100), 42));
        for off in [0, 1, 7, 8, 9, 63, 99, 100, 150] {
            for room in [0, 1, 3, 8, 13, 200] {
                let mut out = vec![0xee; room];
                let n = t.read_data(&p, off, &mut out).expect("unchanged");
                let want = &bytes[off.min(100)..(off + room).min(100)];
                assert_eq!(&out[..n], want, "from {off}, {room} bytes of room");
                assert!(
                    out[n..].iter().all(|&b| b == 0xee),
                    "nothing past the count"
                );
            }
        }
        t.write(i, 1, b"f", 6, &attr(7, 3), Some(b"new"), 43);
        assert_eq!(t.read_data(&p, 0, &mut [0; 8]), None, "the entry changed");
    }
}
