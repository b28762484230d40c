//! Change generations: how a front door tells, without asking again,
//! whether an answer it gave is still the store's answer.
//!
//! Every operation that may change what any query answers (names,
//! attributes, data, xattrs, times) counts itself in [`Generations::begun`]
//! *before* its first change becomes visible and in
//! [`Generations::ended`] after its last, whatever door it came from (the
//! counting lives in the store's own methods). A query that brackets
//! itself with [`Store::quiet_stamp`] and [`Store::still_quiet`] learns
//! whether it ran while nothing changed; if so its answer is exactly the
//! store's state at that moment, and it stays the store's answer for as
//! long as `begun` equals the stamp. A client holding such an answer
//! compares its stamp with `begun` (one atomic load of a page the daemon
//! shares read-only) and asks again when they differ.
//!
//! Why two counters: with one, a query running next to a half-done change
//! (a rename that has unlinked the old name but not yet linked the new
//! one) could be stamped like a quiet one, and two cached answers from
//! either side of that change would both look current until it ends.
//! Requiring `begun == ended` before the query and `begun` unchanged after
//! it makes every cached answer one the store gave at a single instant
//! with no change in progress, and voids it the moment the next change
//! starts: before the changing call can reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::Store;

/// The two counters, `#[repr(C)]` so that a daemon can place them in
/// shared memory (see [`Store::share_generations`]): `begun` at byte 0,
/// `ended` at byte 8. Both start at 1, so a stamp is never 0.
#[repr(C)]
#[derive(Debug)]
pub struct Generations {
    /// Changes started.
    pub begun: AtomicU64,
    /// Changes finished.
    pub ended: AtomicU64,
}

impl Default for Generations {
    fn default() -> Self {
        Generations {
            begun: AtomicU64::new(1),
            ended: AtomicU64::new(1),
        }
    }
}

impl Generations {
    /// Counts one change as begun until the guard drops.
    pub(crate) fn change(&self) -> Change<'_> {
        // SeqCst: the increment is ordered before every store the change
        // makes (they follow under locks taken after it), so a query that
        // saw any of them sees this too.
        self.begun.fetch_add(1, Ordering::SeqCst);
        Change(self)
    }
}

/// One change in progress (see [`Generations::change`]).
pub(crate) struct Change<'a>(&'a Generations);

impl Drop for Change<'_> {
    fn drop(&mut self) {
        // Release: the change's stores (all made under locks released
        // before this point) happen before a query sees `ended` move.
        self.0.ended.fetch_add(1, Ordering::SeqCst);
    }
}

/// Where a store's counters live: its own until a daemon shares them.
#[derive(Default)]
pub(crate) struct GenCell {
    own: Generations,
    shared: OnceLock<&'static Generations>,
}

impl GenCell {
    pub(crate) fn get(&self) -> &Generations {
        self.shared.get().copied().unwrap_or(&self.own)
    }
}

impl Store {
    /// Moves the counters to `page` (shared memory the daemon publishes
    /// read-only to its clients), carrying the current values over. Call
    /// before serving: changes counted meanwhile could be lost. Only the
    /// first call takes effect.
    pub fn share_generations(&self, page: &'static Generations) {
        let own = &self.gens.own;
        page.begun
            .store(own.begun.load(Ordering::SeqCst), Ordering::SeqCst);
        page.ended
            .store(own.ended.load(Ordering::SeqCst), Ordering::SeqCst);
        let _ = self.gens.shared.set(page);
    }

    /// Call before a query: its stamp if no change is in progress, `None`
    /// otherwise (the answer must not be kept).
    pub fn quiet_stamp(&self) -> Option<u64> {
        let g = self.gens.get();
        // `ended` first: if it then equals `begun`, no change was in
        // progress when `begun` was read.
        let ended = g.ended.load(Ordering::SeqCst);
        let begun = g.begun.load(Ordering::SeqCst);
        (ended == begun).then_some(begun)
    }

    /// Call after a query stamped `stamp`: whether no change began
    /// meanwhile (then its answer may be kept under `stamp`).
    pub fn still_quiet(&self, stamp: u64) -> bool {
        self.gens.get().begun.load(Ordering::SeqCst) == stamp
    }

    /// Whether an answer stamped `stamp` is still the store's answer.
    pub fn stamp_current(&self, stamp: u64) -> bool {
        stamp != 0 && self.still_quiet(stamp)
    }

    /// Voids every stamp handed out, for good (no query is quiet again):
    /// for a daemon that stops serving, so that its clients stop
    /// answering from what it told them.
    pub fn void_stamps(&self) {
        self.gens.get().begun.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a change until the guard drops.
    pub(crate) fn change(&self) -> Change<'_> {
        self.gens.get().change()
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    #[test]
    fn every_change_voids_stamps_and_queries_do_not() {
        let s = Store::new(1 << 20);
        let c = Creds::root();
        let stamp = s.quiet_stamp().expect("nothing in progress");
        s.lookup(&c, ROOT_INO, b".").unwrap();
        s.getattr(ROOT_INO).unwrap();
        assert!(s.stamp_current(stamp), "queries change nothing");
        let d = s.mkdir(&c, ROOT_INO, b"d", 0o755).unwrap();
        assert!(!s.stamp_current(stamp), "mkdir voids it");
        let stamp = s.quiet_stamp().unwrap();
        let _ = s.unlink(&c, ROOT_INO, b"missing");
        assert!(!s.stamp_current(stamp), "even a failed change counts");
        let stamp = s.quiet_stamp().unwrap();
        let set = SetAttr {
            mode: Some(0o700),
            ..SetAttr::default()
        };
        s.setattr(&c, d.ino, &set, None).unwrap();
        assert!(!s.stamp_current(stamp), "chmod voids it");
    }

    #[test]
    fn a_query_next_to_a_change_in_progress_gets_no_stamp() {
        let s = Store::new(1 << 20);
        let change = s.change();
        assert_eq!(s.quiet_stamp(), None);
        drop(change);
        let stamp = s.quiet_stamp().unwrap();
        let change = s.change();
        assert!(!s.still_quiet(stamp));
        drop(change);
    }

    #[test]
    fn shared_counters_carry_the_count_over() {
        let s = Store::new(1 << 20);
        s.mkdir(&Creds::root(), ROOT_INO, b"d", 0o755).unwrap();
        let before = s.quiet_stamp().unwrap();
        let page: &'static Generations = Box::leak(Box::default());
        s.share_generations(page);
        assert_eq!(s.quiet_stamp(), Some(before));
        s.mkdir(&Creds::root(), ROOT_INO, b"e", 0o755).unwrap();
        assert_eq!(
            page.begun.load(std::sync::atomic::Ordering::SeqCst),
            before + 1
        );
    }
}
