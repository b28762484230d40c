//! The change log: what each change touched, so that an answer stamped
//! before it can still be used when the change did not touch it.
//!
//! The daemon counts every change in [`GenPage::begun`](crate::GenPage);
//! change number `g` (the value `begun` took when it began) also writes a
//! [`Record`] of the inodes it touched into slot `g % RECORDS` of a ring in
//! the same shared page. An answer stamped `s` is still the store's answer
//! at generation `now` when every change `s+1 ..= now` left a record, none
//! of them global, and none naming an inode the answer depends on.
//!
//! What "touched" means is the store's contract (`inode_store`'s
//! `generation` module): a record names every inode whose attributes or
//! data changed, or whose names changed if a directory, and, marked
//! [`LISTED`], every directory whose listing changed only in the
//! attributes it lists (a name's answer does not depend on those, its
//! listing does); a change that cannot say so in
//! [`TOUCHED_MAX`] inodes, or whose effect reaches past them (a directory
//! renamed, a permission of a directory, a file with several names), is
//! global. A change that has not written its record yet, or whose slot a
//! later change took, is treated as global: a reader never guesses.
//!
//! Each record is a seqlock: the writer claims the slot by moving its
//! sequence word to "busy" (only from an older change's number, so two
//! writers never share a slot and a late writer never overwrites a newer
//! record), writes the inodes, and publishes `g` last.

use core::sync::atomic::{fence, AtomicU64, Ordering};

/// Records in the ring (a power of two).
pub const RECORDS: usize = 1024;
/// Most inodes one record names.
pub const TOUCHED_MAX: usize = 6;
/// Sequence word of a slot being written.
const BUSY: u64 = u64::MAX;
/// First inode word of a global record.
const GLOBAL: u64 = u64::MAX;
/// Oldest stamp a reader still checks record by record, in changes: past
/// this it asks again rather than read this many records (see
/// [`ChangeLog::untouched_within`] for one that keeps what it checked).
pub const MOST_CHECKED: u64 = 256;
/// Marks a directory in a record whose listing changed only in the
/// attributes of an entry (inode numbers never reach this bit).
pub const LISTED: u64 = 1 << 63;

/// One change's record: its number and the inodes it touched (0: none;
/// all ones in the first word: everything).
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Record {
    seq: AtomicU64,
    touched: [AtomicU64; TOUCHED_MAX + 1],
}

/// The ring of [`RECORDS`] records (all-zero is a valid, empty log: no
/// change numbers 0).
#[repr(C)]
#[derive(Debug)]
pub struct ChangeLog {
    records: [Record; RECORDS],
}

impl Default for ChangeLog {
    fn default() -> Self {
        Self::new()
    }
}

/// What one change touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touched<'a> {
    /// These inodes (each a directory whose listing changed or an inode
    /// whose attributes changed; at most [`TOUCHED_MAX`], none 0).
    Inodes(&'a [u64]),
    /// Anything.
    Everything,
}

impl ChangeLog {
    /// An empty log (no record): what an all-zero page holds.
    pub const fn new() -> ChangeLog {
        ChangeLog {
            records: [const {
                Record {
                    seq: AtomicU64::new(0),
                    touched: [const { AtomicU64::new(0) }; TOUCHED_MAX + 1],
                }
            }; RECORDS],
        }
    }

    fn slot(&self, g: u64) -> &Record {
        &self.records[(g as usize) & (RECORDS - 1)]
    }

    /// Records that change `g` touched `what` (more than [`TOUCHED_MAX`]
    /// inodes count as everything). Call at most once per change, after it
    /// began; a record that cannot be written (a later change holds the
    /// slot) is left out, which readers take as global.
    pub fn record(&self, g: u64, what: Touched<'_>) {
        let r = self.slot(g);
        let old = r.seq.load(Ordering::Relaxed);
        if old == BUSY || old >= g {
            return;
        }
        if r.seq
            .compare_exchange(old, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // Release fence: BUSY is visible before any inode word changes, so
        // a reader that sees a new word also sees the slot busy.
        fence(Ordering::Release);
        let inodes = match what {
            Touched::Inodes(i) if i.len() <= TOUCHED_MAX => i,
            _ => &[GLOBAL][..],
        };
        for (k, w) in r.touched.iter().enumerate() {
            w.store(inodes.get(k).copied().unwrap_or(0), Ordering::Relaxed);
        }
        // Release: the inode words are visible before the number.
        r.seq.store(g, Ordering::Release);
    }

    /// What change `g` touched, as its record tells: `None` if the record
    /// is missing or overwritten (which counts as global), else its inode
    /// words as records hold them (0: none; a directory marked [`LISTED`];
    /// all ones first: everything).
    fn words(&self, g: u64) -> Option<[u64; TOUCHED_MAX + 1]> {
        let r = self.slot(g);
        // Acquire: the inode words read below are at least as new as the
        // record numbered `g`.
        if r.seq.load(Ordering::Acquire) != g {
            return None;
        }
        let mut words = [0u64; TOUCHED_MAX + 1];
        for (w, a) in words.iter_mut().zip(&r.touched) {
            *w = a.load(Ordering::Relaxed);
        }
        // Acquire fence: the reads above happen before the re-check.
        fence(Ordering::Acquire);
        (r.seq.load(Ordering::Relaxed) == g).then_some(words)
    }

    /// Whether no change after `stamp` up to `now` (both generations;
    /// `stamp <= now`) touched any of `inodes` (words as records hold them:
    /// an inode, or a directory marked [`LISTED`]), as far as their
    /// records tell: `false` if one is global, missing or overwritten, or
    /// if more than [`MOST_CHECKED`] changes passed. With no inodes:
    /// whether none of those changes was global.
    pub fn untouched(&self, stamp: u64, now: u64, inodes: &[u64]) -> bool {
        self.untouched_within(stamp, now, inodes, MOST_CHECKED)
    }

    /// [`ChangeLog::untouched`], checking up to `most` changes (at most
    /// [`RECORDS`]): for a reader that then keeps its answer under `now`,
    /// so that a long check is paid once.
    pub fn untouched_within(&self, stamp: u64, now: u64, inodes: &[u64], most: u64) -> bool {
        if stamp == 0 || now < stamp || now - stamp > most.min(RECORDS as u64) {
            return false;
        }
        (stamp + 1..=now).all(|g| {
            self.words(g).is_some_and(|words| {
                words[0] != GLOBAL && !words.iter().any(|&w| w != 0 && inodes.contains(&w))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Box<ChangeLog> {
        Box::new(ChangeLog::new())
    }

    #[test]
    fn an_answer_holds_past_changes_that_touched_other_inodes_only() {
        let l = log();
        l.record(11, Touched::Inodes(&[5, 6]));
        l.record(12, Touched::Inodes(&[7]));
        assert!(l.untouched(10, 12, &[4]));
        assert!(l.untouched(10, 12, &[]));
        assert!(!l.untouched(10, 12, &[7]));
        assert!(!l.untouched(10, 12, &[3, 5]));
        assert!(l.untouched(12, 12, &[7]), "nothing after the stamp");
        assert!(!l.untouched(0, 12, &[4]), "no stamp, no answer");
    }

    #[test]
    fn global_missing_and_overwritten_records_void_everything() {
        let l = log();
        l.record(11, Touched::Everything);
        assert!(!l.untouched(10, 11, &[]));
        assert!(!l.untouched(11, 12, &[4]), "12 left no record");
        l.record(13, Touched::Inodes(&[1, 2, 3, 4, 5, 6, 7]));
        assert!(!l.untouched(12, 13, &[9]), "too many inodes: global");
        l.record(14, Touched::Inodes(&[1]));
        l.record(14 + RECORDS as u64, Touched::Inodes(&[2]));
        assert!(!l.untouched(13, 14, &[9]), "slot taken by a later change");
        l.record(14, Touched::Inodes(&[3]));
        assert!(
            l.untouched(13 + RECORDS as u64, 14 + RECORDS as u64, &[9]),
            "a late writer never overwrites a newer record"
        );
        assert!(!l.untouched(1, 2 + MOST_CHECKED, &[9]), "too old to check");
    }
}
