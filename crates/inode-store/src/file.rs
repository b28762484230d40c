//! Regular-file contents: a sparse map from block index to [`Block`].
//!
//! Invariant: every byte of an allocated block that lies at or beyond the
//! file size is zero, so growing the size never exposes stale data.
//!
//! Blocks allocated by `fallocate` and never written are "unwritten": they
//! count in `st_blocks` but, as on tmpfs, SEEK_DATA / SEEK_HOLE and
//! copy_file_range treat them as holes.

use crate::io::{DataSink, DataSource};
use std::collections::BTreeMap;

use crate::pool::{Block, BlockPool};
use crate::{Errno, Result, BLOCK_SIZE};

mod snap;

const BS: u64 = BLOCK_SIZE as u64;

/// One allocated block of a file.
struct Slot {
    block: Block,
    /// False while the block holds only fallocate's zeros.
    written: bool,
}

/// Sparse file contents. Holes have no block and read as zeros.
#[derive(Default)]
pub(crate) struct FileData {
    pub(crate) size: u64,
    blocks: BTreeMap<u64, Slot>,
    /// Set while a point-in-time snapshot of this file is being saved:
    /// every change first keeps the blocks it touches as they were at the
    /// cut (see the `snap` module).
    snap: Option<Box<snap::SnapFile>>,
}

impl FileData {
    /// Empty contents that report `size` (directories, symlinks).
    pub(crate) fn with_size(size: u64) -> FileData {
        FileData {
            size,
            blocks: BTreeMap::new(),
            snap: None,
        }
    }

    /// Number of allocated 4 KiB blocks.
    pub(crate) fn block_count(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Copies bytes at `off` into `buf`; returns the count (short only at EOF).
    pub(crate) fn read_at(&self, off: u64, buf: &mut (impl DataSink + ?Sized)) -> usize {
        if off >= self.size || buf.len() == 0 {
            return 0;
        }
        let len = (self.size - off).min(buf.len() as u64) as usize;
        for s in spans(off, len) {
            match self.blocks.get(&s.block) {
                Some(slot) => buf.put(s.at, &slot.block.bytes()[s.in_block..s.in_block + s.len]),
                None => buf.zero(s.at, s.len),
            }
        }
        len
    }

    /// Writes `data` at `off`, allocating blocks as needed. When the pool runs
    /// out midway, keeps what fit and returns the short count; ENOSPC if
    /// nothing fit. The caller has checked `off + data.len()` against the
    /// maximum file size.
    pub(crate) fn write_at(
        &mut self,
        pool: &BlockPool,
        off: u64,
        data: &(impl DataSource + ?Sized),
    ) -> Result<usize> {
        self.write_prefix(pool, off, data, data.len(), |_| ())
    }

    /// [`FileData::write_at`] of the first `len` bytes of `data`, calling
    /// `placed` with the count once every block is in place and the size
    /// set, before the bytes are copied (see [`crate::Store::write_acked`]).
    pub(crate) fn write_prefix(
        &mut self,
        pool: &BlockPool,
        off: u64,
        data: &(impl DataSource + ?Sized),
        len: usize,
        placed: impl FnOnce(usize),
    ) -> Result<usize> {
        let len = len.min(data.len());
        if len == 0 {
            placed(0);
            return Ok(0);
        }
        self.preserve(off / BS, (off + len as u64 - 1) / BS, true);
        // The blocks this write adds, taken from the pool at once.
        let vacant = spans(off, len)
            .filter(|s| !self.blocks.contains_key(&s.block))
            .count();
        let mut fresh = pool.alloc_up_to(vacant).into_iter();
        if vacant > 0 && fresh.len() == 0 {
            return Err(Errno::ENOSPC);
        }
        let mut done = 0usize;
        for s in spans(off, len) {
            if let std::collections::btree_map::Entry::Vacant(v) = self.blocks.entry(s.block) {
                let Some(mut block) = fresh.next() else {
                    break; // the pool ran out: keep what fit
                };
                // A fresh block's bytes are unspecified: zero what this
                // write leaves of it.
                if s.len < BLOCK_SIZE {
                    let bytes = block.bytes_mut();
                    bytes[..s.in_block].fill(0);
                    bytes[s.in_block + s.len..].fill(0);
                }
                v.insert(Slot {
                    block,
                    written: true,
                });
            }
            done += s.len;
        }
        debug_assert_eq!(fresh.len(), 0, "one block per vacant span");
        pool.free(fresh);
        self.size = self.size.max(off + done as u64);
        placed(done);
        if done > 0 {
            // Every block of the span is in place: one ordered walk.
            let blocks = self
                .blocks
                .range_mut(off / BS..=(off + done as u64 - 1) / BS);
            for (s, (_, slot)) in spans(off, done).zip(blocks) {
                slot.written = true;
                data.take(
                    s.at,
                    &mut slot.block.bytes_mut()[s.in_block..s.in_block + s.len],
                );
            }
        }
        Ok(done)
    }

    /// Sets the size: shrinking frees whole blocks past the new EOF and zeroes
    /// the tail of the last partial block; growing leaves a hole.
    pub(crate) fn truncate(&mut self, pool: &BlockPool, new_size: u64) {
        if new_size < self.size {
            self.preserve(new_size / BS, u64::MAX, false);
            let keep = new_size.div_ceil(BS);
            let tail = self.blocks.split_off(&keep);
            pool.free(tail.into_values().map(|s| s.block));
            let rem = (new_size % BS) as usize;
            if rem != 0 {
                if let Some(b) = self.blocks.get_mut(&(new_size / BS)) {
                    b.block.bytes_mut()[rem..].fill(0);
                }
            }
        }
        self.size = new_size;
    }

    /// Frees every block (the file is gone).
    pub(crate) fn free_all(&mut self, pool: &BlockPool) {
        self.preserve(0, u64::MAX, false);
        let blocks = std::mem::take(&mut self.blocks);
        pool.free(blocks.into_values().map(|s| s.block));
    }

    /// Allocates zeroed blocks over `[off, off+len)`, all or nothing; grows
    /// the size unless `keep_size`. `len > 0`; the caller checked limits.
    pub(crate) fn allocate(
        &mut self,
        pool: &BlockPool,
        off: u64,
        len: u64,
        keep_size: bool,
    ) -> Result<()> {
        let first = off / BS;
        let last = (off + len - 1) / BS;
        let present = self.blocks.range(first..=last).count() as u64;
        let missing = (last - first + 1) - present;
        let fresh = pool.alloc_many(missing)?;
        self.preserve(first, last, true);
        // tmpfs: fallocating over a block that an earlier fallocate left
        // unwritten initialises it, and from then on it counts as data.
        for (_, slot) in self.blocks.range_mut(first..=last) {
            slot.written = true;
        }
        if missing > 0 {
            let mut fresh = fresh.into_iter();
            let mut bi = first;
            while bi <= last {
                if let std::collections::btree_map::Entry::Vacant(v) = self.blocks.entry(bi) {
                    v.insert(Slot {
                        block: fresh.next().ok_or(Errno::EIO)?,
                        written: false,
                    });
                }
                bi += 1;
            }
        }
        if !keep_size {
            self.size = self.size.max(off + len);
        }
        Ok(())
    }

    /// Deallocates whole blocks inside `[off, off+len)` and zeroes the
    /// partial ones. The size is unchanged.
    pub(crate) fn punch(&mut self, pool: &BlockPool, off: u64, len: u64) {
        let end = off.saturating_add(len);
        self.preserve(off / BS, (end - 1) / BS, false);
        let keys: Vec<u64> = self
            .blocks
            .range(off / BS..=(end - 1) / BS)
            .map(|(&k, _)| k)
            .collect();
        let mut freed = Vec::new();
        for bi in keys {
            let bstart = bi * BS;
            let from = off.max(bstart);
            let to = end.min(bstart + BS);
            if from == bstart && to == bstart + BS {
                freed.extend(self.blocks.remove(&bi).map(|s| s.block));
            } else if let Some(b) = self.blocks.get_mut(&bi) {
                b.block.bytes_mut()[(from - bstart) as usize..(to - bstart) as usize].fill(0);
            }
        }
        pool.free(freed);
    }

    /// Zeroes `[off, off+len)` inside allocated blocks (holes already read
    /// as zero) and grows the size to cover the range.
    pub(crate) fn zero_range_extend(&mut self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = off + len;
        self.preserve(off / BS, (end - 1) / BS, false);
        for (&bi, b) in self.blocks.range_mut(off / BS..=(end - 1) / BS) {
            let bstart = bi * BS;
            let from = (off.max(bstart) - bstart) as usize;
            let to = (end.min(bstart + BS) - bstart) as usize;
            b.block.bytes_mut()[from..to].fill(0);
        }
        self.size = self.size.max(end);
    }

    /// The first byte at or after `off` and below `end` that lies in a
    /// written block (`None`: only holes). Visits allocated blocks only, so
    /// a hole costs nothing however long it is.
    pub(crate) fn next_written(&self, off: u64, end: u64) -> Option<u64> {
        if off >= end {
            return None;
        }
        let (&bi, _) = self
            .blocks
            .range(off / BS..=(end - 1) / BS)
            .find(|(_, s)| s.written)?;
        Some(off.max(bi * BS))
    }

    /// SEEK_DATA: first written byte at or after `off`, below the size.
    pub(crate) fn seek_data(&self, off: u64) -> Result<u64> {
        self.next_written(off, self.size).ok_or(Errno::ENXIO)
    }

    /// SEEK_HOLE: first byte at or after `off` inside a hole, or the size
    /// (the virtual hole at EOF).
    pub(crate) fn seek_hole(&self, off: u64) -> Result<u64> {
        if off >= self.size {
            return Err(Errno::ENXIO);
        }
        let mut bi = off / BS;
        for (&k, s) in self.blocks.range(bi..) {
            if k != bi || !s.written {
                break;
            }
            bi += 1;
        }
        Ok(off.max(bi.saturating_mul(BS)).min(self.size))
    }
}

/// The piece of a byte range that falls in one block.
#[derive(Debug, PartialEq, Eq)]
struct Span {
    /// The block's index in the file.
    block: u64,
    /// Where the piece starts in the block.
    in_block: usize,
    /// Where the piece starts in the range.
    at: usize,
    /// Its length.
    len: usize,
}

/// The pieces of bytes `off..off + len`, one per block, in order: the one
/// walk that reads and writes share.
fn spans(off: u64, len: usize) -> impl Iterator<Item = Span> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= len {
            return None;
        }
        let pos = off + at as u64;
        let in_block = (pos % BS) as usize;
        let n = (BLOCK_SIZE - in_block).min(len - at);
        let span = Span {
            block: pos / BS,
            in_block,
            at,
            len: n,
        };
        at += n;
        Some(span)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cut_a_range_at_block_boundaries() {
        let bs = BLOCK_SIZE;
        let span = |block, in_block, at, len| Span {
            block,
            in_block,
            at,
            len,
        };
        assert_eq!(spans(0, 0).count(), 0);
        assert_eq!(spans(10, 5).collect::<Vec<_>>(), [span(0, 10, 0, 5)]);
        assert_eq!(
            spans(BS - 2, bs + 4).collect::<Vec<_>>(),
            [
                span(0, bs - 2, 0, 2),
                span(1, 0, 2, bs),
                span(2, 0, bs + 2, 2)
            ]
        );
    }

    #[test]
    fn sparse_write_reads_zeros_in_hole() {
        let pool = BlockPool::new(100);
        let mut f = FileData::default();
        assert_eq!(f.write_at(&pool, 3 * BS + 10, &b"abc"[..]).unwrap(), 3);
        assert_eq!(f.size, 3 * BS + 13);
        assert_eq!(f.block_count(), 1);
        let mut buf = vec![0xFFu8; (4 * BS) as usize];
        let n = f.read_at(0, &mut buf[..]);
        assert_eq!(n as u64, 3 * BS + 13);
        assert!(buf[..(3 * BS + 10) as usize].iter().all(|&b| b == 0));
        assert_eq!(&buf[(3 * BS + 10) as usize..n], b"abc");
        f.free_all(&pool);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn truncate_down_then_up_exposes_zeros() {
        let pool = BlockPool::new(100);
        let mut f = FileData::default();
        f.write_at(&pool, 0, &[7u8; 3 * BLOCK_SIZE][..]).unwrap();
        f.truncate(&pool, 100);
        assert_eq!(f.block_count(), 1);
        f.truncate(&pool, 2 * BS);
        let mut buf = vec![1u8; 2 * BLOCK_SIZE];
        assert_eq!(f.read_at(0, &mut buf[..]), 2 * BLOCK_SIZE);
        assert!(buf[..100].iter().all(|&b| b == 7));
        assert!(buf[100..].iter().all(|&b| b == 0));
        f.free_all(&pool);
    }

    #[test]
    fn reused_blocks_show_no_old_bytes_and_a_full_pool_writes_short() {
        let pool = BlockPool::new(4);
        let mut old = FileData::default();
        old.write_at(&pool, 0, &[9u8; 4 * BLOCK_SIZE][..]).unwrap();
        old.free_all(&pool);
        // The same (now dirty) blocks come back for a write that covers
        // parts of them only: the rest must read as zeros.
        let mut f = FileData::default();
        let n = f
            .write_at(&pool, BS - 5, &[1u8; BLOCK_SIZE + 10][..])
            .unwrap();
        assert_eq!(n, BLOCK_SIZE + 10);
        let mut buf = vec![0xFFu8; 3 * BLOCK_SIZE];
        assert_eq!(f.read_at(0, &mut buf[..]), 2 * BLOCK_SIZE + 5);
        assert!(buf[..BLOCK_SIZE - 5].iter().all(|&b| b == 0));
        assert!(buf[BLOCK_SIZE - 5..2 * BLOCK_SIZE + 5]
            .iter()
            .all(|&b| b == 1));
        // One block left: a two-block write keeps what fit, then ENOSPC.
        assert_eq!(
            f.write_at(&pool, 4 * BS, &[2u8; 2 * BLOCK_SIZE][..]),
            Ok(BLOCK_SIZE)
        );
        assert_eq!(pool.used(), 4);
        assert_eq!(
            f.write_at(&pool, 8 * BS, &[3u8; 10][..]),
            Err(Errno::ENOSPC)
        );
        f.free_all(&pool);
        assert_eq!(pool.used(), 0);
    }
}
