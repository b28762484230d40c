//! The inode table's hasher.
//!
//! Inode numbers are handed out in sequence, so a directory's entries
//! (made together: an unpacked archive, a checkout, a build tree) have
//! neighbouring numbers. Keeping an inode's low bits as the low bits of its
//! hash puts neighbours in neighbouring buckets of the table, so a listing
//! that returns every entry's attributes walks the table nearly in order
//! (shared cache lines, the hardware prefetcher) instead of at random as
//! with SipHash. The top seven bits, which `hashbrown` compares as a tag
//! within a probe group, come from a multiplicative mix so that tags stay
//! spread. Keys are our own numbers, never chosen by a user, so there is no
//! flooding attacker to resist; no crate in the chosen set offers this.

use std::hash::{BuildHasherDefault, Hasher};

use crate::Ino;

/// A `HashMap` keyed by inode number, laid out by number (see the module).
pub(crate) type InoMap<V> = std::collections::HashMap<Ino, V, BuildHasherDefault<InoHasher>>;

/// Hashes one `u64` inode number; any other input is folded in order.
#[derive(Default)]
pub(crate) struct InoHasher(u64);

impl Hasher for InoHasher {
    fn finish(&self) -> u64 {
        const TAG: u64 = 0xFE00_0000_0000_0000;
        let mixed = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (self.0 & !TAG) | (mixed & TAG)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn neighbours_share_low_bits_and_tags_spread() {
        let b = BuildHasherDefault::<InoHasher>::default();
        let h = |ino: u64| b.hash_one(ino);
        for ino in [1u64, 2, 1000, 123_456] {
            assert_eq!(h(ino + 1) & 0xFFFF, (h(ino) + 1) & 0xFFFF);
        }
        let tags: std::collections::HashSet<u64> = (1..=1000u64).map(|i| h(i) >> 57).collect();
        assert!(tags.len() > 100, "only {} distinct tags", tags.len());
    }
}
