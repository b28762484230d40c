//! Copy-on-write of one file's blocks while a snapshot of it is saved.
//!
//! At the cut (all inode locks held, see `Store::snapshot`), each regular
//! file gets a [`SnapFile`]: the number of blocks it had then and a
//! watermark of the blocks the saver has copied so far. From then on, every
//! change to the file's blocks (write, truncate, punch, fallocate, free)
//! first calls [`FileData::preserve`], which keeps the *pre-image* of each
//! block it is about to touch — its bytes at the cut, or "hole" — unless
//! the saver has already copied that block or it was kept before. The
//! saver reads a block from the pre-images when one is kept, else from the
//! file itself (untouched since the cut, by construction). So the saved
//! file is exactly the file at the cut, writers are never stopped for the
//! length of the copy, and each block is copied at most once more.

use std::collections::HashMap;

use super::{FileData, BS};
use crate::BLOCK_SIZE;

/// One block as it was at the cut: `None` for a hole (or a block that
/// fallocate reserved and nothing wrote, which reads as zeros too).
type PreImage = Option<Box<[u8; BLOCK_SIZE]>>;

/// The snapshot state of one file (see the module docs).
pub(crate) struct SnapFile {
    /// Blocks below this index were copied by the saver already.
    copied: u64,
    /// Blocks the file spanned at the cut (`size.div_ceil(4096)`).
    end: u64,
    /// Pre-images of the blocks changed since the cut, not yet copied.
    pre: HashMap<u64, PreImage>,
}

impl FileData {
    /// Starts a snapshot of this file (the caller holds its lock at the cut).
    /// Returns false if one is already running.
    pub(crate) fn snap_begin(&mut self) -> bool {
        if self.snap.is_some() {
            return false;
        }
        self.snap = Some(Box::new(SnapFile {
            copied: 0,
            end: self.size.div_ceil(BS),
            pre: HashMap::new(),
        }));
        true
    }

    /// Whether a snapshot of this file is running.
    pub(crate) fn snap_running(&self) -> bool {
        self.snap.is_some()
    }

    /// Ends the snapshot of this file and drops the pre-images.
    pub(crate) fn snap_end(&mut self) {
        self.snap = None;
    }

    /// Keeps the pre-image of the blocks in `first..=last` that a change is
    /// about to touch. With `holes_too`, holes in the range are recorded as
    /// holes (the change may fill them); without, only allocated blocks are
    /// looked at (the change only frees or zeroes them).
    pub(super) fn preserve(&mut self, first: u64, last: u64, holes_too: bool) {
        let Some(s) = self.snap.as_mut() else {
            return;
        };
        let lo = first.max(s.copied);
        let hi = last.min(s.end.saturating_sub(1));
        if s.end == 0 || lo > hi {
            return;
        }
        let image = |slot: Option<&super::Slot>| -> PreImage {
            slot.filter(|s| s.written)
                .map(|s| Box::new(*s.block.bytes()))
        };
        if holes_too {
            for bi in lo..=hi {
                s.pre
                    .entry(bi)
                    .or_insert_with(|| image(self.blocks.get(&bi)));
            }
        } else {
            for (&bi, slot) in self.blocks.range(lo..=hi) {
                s.pre.entry(bi).or_insert_with(|| image(Some(slot)));
            }
        }
    }

    /// Hands `sink` the blocks `from..from + n` (clamped to the file's
    /// extent at the cut) as they were at the cut, data blocks only, in
    /// order, and marks them copied. Returns the index after the last block
    /// looked at; the snapshot must be running.
    pub(crate) fn snap_read(
        &mut self,
        from: u64,
        n: u64,
        mut sink: impl FnMut(u64, &[u8; BLOCK_SIZE]),
    ) -> u64 {
        let Some(s) = self.snap.as_mut() else {
            return from;
        };
        let to = from.saturating_add(n).min(s.end);
        for bi in from..to {
            match s.pre.remove(&bi) {
                Some(Some(bytes)) => sink(bi, &bytes),
                Some(None) => {}
                None => {
                    if let Some(slot) = self.blocks.get(&bi).filter(|s| s.written) {
                        sink(bi, slot.block.bytes());
                    }
                }
            }
        }
        s.copied = s.copied.max(to);
        to
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::BlockPool;

    fn saved(f: &mut FileData) -> Vec<(u64, u8)> {
        let mut out = Vec::new();
        f.snap_read(0, u64::MAX, |bi, b| out.push((bi, b[0])));
        out
    }

    #[test]
    fn changes_after_the_cut_are_not_seen_by_the_snapshot() {
        let pool = BlockPool::new(100);
        let mut f = FileData::default();
        f.write_at(&pool, 0, &[1u8; 2 * BLOCK_SIZE][..]).unwrap();
        f.write_at(&pool, 3 * BS, &[3u8; BLOCK_SIZE][..]).unwrap();
        assert!(f.snap_begin());
        assert!(!f.snap_begin(), "one snapshot at a time");
        f.write_at(&pool, 0, &[9u8; 10][..]).unwrap(); // changes block 0
        f.write_at(&pool, 2 * BS, &[9u8; 10][..]).unwrap(); // fills hole 2
        f.write_at(&pool, 8 * BS, &[9u8; 10][..]).unwrap(); // past the cut
        f.punch(&pool, 3 * BS, BS); // frees block 3
        assert_eq!(saved(&mut f), vec![(0, 1), (1, 1), (3, 3)]);
        f.snap_end();
        f.free_all(&pool);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn copied_blocks_are_not_kept_again_and_freeing_keeps_the_rest() {
        let pool = BlockPool::new(100);
        let mut f = FileData::default();
        f.write_at(&pool, 0, &[5u8; 4 * BLOCK_SIZE][..]).unwrap();
        assert!(f.snap_begin());
        let mut first = Vec::new();
        assert_eq!(f.snap_read(0, 2, |bi, _| first.push(bi)), 2);
        f.write_at(&pool, 0, &[7u8; BLOCK_SIZE][..]).unwrap();
        assert!(
            f.snap.as_ref().unwrap().pre.is_empty(),
            "block 0 was copied"
        );
        f.free_all(&pool);
        assert_eq!(pool.used(), 0);
        let mut rest = Vec::new();
        f.snap_read(2, 10, |bi, b| rest.push((bi, b[0])));
        assert_eq!((first, rest), (vec![0, 1], vec![(2, 5), (3, 5)]));
    }
}
