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
//! Each change also says what it touched, in the change log clients map
//! with the counters ([`proto::changes`]): the directories whose listing
//! changed (names, or a listed entry's attributes: the directory a name
//! was added to or removed from, the parent of a node whose attributes
//! changed) and the inodes whose attributes or data changed. An answer
//! that depends on none of them outlives the change. A change that does
//! not say (or cannot: a directory moved or its permissions changed,
//! which reaches every path below it; a file with several names, whose
//! other parents' listings the store does not know; a symlink removed,
//! which other paths went through) is global.
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

use proto::changes::{ChangeLog, Touched, TOUCHED_MAX};

use crate::{Ino, Store};

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

/// One change in progress (see [`GenCell::change`]): counted in `ended`,
/// and its record written, when it drops.
pub(crate) struct Change<'a> {
    gens: &'a Generations,
    log: &'a ChangeLog,
    watcher: Option<&'a Watcher>,
    /// Its number: the value `begun` took when it began.
    g: u64,
    touched: [Ino; TOUCHED_MAX],
    /// Inodes in `touched`; past `TOUCHED_MAX`, or `None`: global.
    n: Option<usize>,
}

impl Change<'_> {
    /// Says that the change touched `inodes` (besides those of earlier
    /// calls); a change never told is global. 0 is skipped, and
    /// [`SEVERAL`] (a node's parent that is not one directory) makes it
    /// global.
    pub(crate) fn touches(&mut self, inodes: &[Ino]) {
        let mut n = self.n.unwrap_or(0);
        for &i in inodes {
            if i == SEVERAL || n > TOUCHED_MAX {
                n = TOUCHED_MAX + 1;
                break;
            }
            if i == 0 || self.touched[..n].contains(&i) {
                continue;
            }
            if n == TOUCHED_MAX {
                n += 1;
                break;
            }
            self.touched[n] = i;
            n += 1;
        }
        self.n = Some(n);
    }
}

/// A node's parent (`Node::parent`) when it is not one directory: a file
/// with several names. A change to its attributes is global.
pub(crate) const SEVERAL: Ino = u64::MAX;

impl Drop for Change<'_> {
    fn drop(&mut self) {
        let what = match self.n {
            Some(n) if n <= TOUCHED_MAX => Touched::Inodes(&self.touched[..n]),
            _ => Touched::Everything,
        };
        self.log.record(self.g, what);
        if let Some(watch) = self.watcher {
            watch(self.g, what);
        }
        // Release: the change's stores (all made under locks released
        // before this point) happen before a query sees `ended` move.
        self.gens.ended.fetch_add(1, Ordering::SeqCst);
    }
}

/// Where a store's counters and change log live: its own until a daemon
/// shares them.
pub(crate) struct GenCell {
    own: Generations,
    own_log: Box<ChangeLog>,
    shared: OnceLock<(&'static Generations, &'static ChangeLog)>,
    watcher: OnceLock<Box<Watcher>>,
}

/// What a daemon runs at the end of every change, before it counts as
/// ended (see [`Store::watch_changes`]): told the change's number and
/// what it touched.
pub type Watcher = dyn Fn(u64, Touched<'_>) + Send + Sync;

impl Default for GenCell {
    fn default() -> Self {
        let layout = std::alloc::Layout::new::<ChangeLog>();
        // SAFETY: a non-zero-sized layout; all-zero is a valid ChangeLog
        // (atomics of 0: no record), allocated zeroed because its 64 KiB do
        // not belong on a stack; the box owns it with the same layout.
        let own_log = unsafe {
            let p = std::alloc::alloc_zeroed(layout).cast::<ChangeLog>();
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(p)
        };
        GenCell {
            own: Generations::default(),
            own_log,
            shared: OnceLock::new(),
            watcher: OnceLock::new(),
        }
    }
}

impl GenCell {
    pub(crate) fn get(&self) -> &Generations {
        self.shared.get().map_or(&self.own, |s| s.0)
    }

    pub(crate) fn log(&self) -> &ChangeLog {
        self.shared.get().map_or(&*self.own_log, |s| s.1)
    }

    /// Counts one change as begun until the guard drops; global unless
    /// told otherwise ([`Change::touches`]).
    pub(crate) fn change(&self) -> Change<'_> {
        let gens = self.get();
        // SeqCst: the increment is ordered before every store the change
        // makes (they follow under locks taken after it), so a query that
        // saw any of them sees this too.
        let g = gens.begun.fetch_add(1, Ordering::SeqCst) + 1;
        Change {
            gens,
            log: self.log(),
            watcher: self.watcher.get().map(|w| &**w),
            g,
            touched: [0; TOUCHED_MAX],
            n: None,
        }
    }
}

impl Store {
    /// Moves the counters to `page` and the change log to `log` (shared
    /// memory the daemon publishes read-only to its clients), carrying the
    /// counters' values over (the records stay behind: a reader takes a
    /// missing one as global). Call before serving: changes counted
    /// meanwhile could be lost. Only the first call takes effect.
    pub fn share_generations(&self, page: &'static Generations, log: &'static ChangeLog) {
        let own = &self.gens.own;
        page.begun
            .store(own.begun.load(Ordering::SeqCst), Ordering::SeqCst);
        page.ended
            .store(own.ended.load(Ordering::SeqCst), Ordering::SeqCst);
        let _ = self.gens.shared.set((page, log));
    }

    /// Has `watch` told what each change touched, at its end, before it
    /// counts as ended (so before the changing call can reply). It runs
    /// under whatever store locks the change holds: it must not call the
    /// store. Only the first call takes effect.
    pub fn watch_changes(&self, watch: Box<Watcher>) {
        let _ = self.gens.watcher.set(watch);
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

    /// Whether an answer stamped `stamp` that depends on `inodes` only
    /// (see the module docs) is still the store's answer at generation
    /// `now`, a quiet stamp.
    pub fn untouched_since(&self, stamp: u64, now: u64, inodes: &[Ino]) -> bool {
        stamp == now || self.gens.log().untouched(stamp, now, inodes)
    }

    /// Voids every stamp handed out, for good (no query is quiet again):
    /// for a daemon that stops serving, so that its clients stop
    /// answering from what it told them.
    pub fn void_stamps(&self) {
        self.gens.get().begun.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a change until the guard drops; global unless told
    /// otherwise ([`Change::touches`]).
    pub(crate) fn change(&self) -> Change<'_> {
        self.gens.change()
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
        let log: &'static proto::changes::ChangeLog =
            Box::leak(crate::generation::GenCell::default().own_log);
        s.share_generations(page, log);
        assert_eq!(s.quiet_stamp(), Some(before));
        s.mkdir(&Creds::root(), ROOT_INO, b"e", 0o755).unwrap();
        assert_eq!(
            page.begun.load(std::sync::atomic::Ordering::SeqCst),
            before + 1
        );
    }

    /// Runs `op` and returns whether an answer depending on given inodes,
    /// stamped just before, still holds after it.
    fn after(s: &Store, op: impl FnOnce()) -> impl Fn(&[Ino]) -> bool + '_ {
        let stamp = s.quiet_stamp().unwrap();
        op();
        let now = s.quiet_stamp().unwrap();
        move |inodes| s.untouched_since(stamp, now, inodes)
    }

    #[test]
    fn a_change_touches_the_listings_and_attributes_it_changed_only() {
        use proto::changes::LISTED;
        let s = Store::new(1 << 20);
        let c = Creds::root();
        let mkdir = |name: &[u8]| s.mkdir(&c, ROOT_INO, name, 0o755).unwrap().ino;
        let (d1, d2, d3) = (mkdir(b"d1"), mkdir(b"d2"), mkdir(b"d3"));
        let (f, fh) = s.create(&c, d1, b"f", 0o644, libc::O_RDWR).unwrap();
        let f = f.ino;

        let holds = after(&s, || {
            s.write(&c, fh, 0, b"data").unwrap();
        });
        assert!(
            !holds(&[f]) && !holds(&[d1 | LISTED]),
            "its attributes, its listing"
        );
        assert!(holds(&[d1]), "not d1's names");
        assert!(holds(&[d2 | LISTED]) && holds(&[ROOT_INO | LISTED]) && holds(&[]));

        let holds = after(&s, || {
            s.mknod(&c, d1, b"n", libc::S_IFREG | 0o644, 0).unwrap();
        });
        assert!(
            !holds(&[d1]) && !holds(&[ROOT_INO | LISTED]),
            "d1's attributes are listed in /"
        );
        assert!(holds(&[d2]) && holds(&[f]) && holds(&[ROOT_INO]));

        let holds = after(&s, || {
            s.rename(&c, d1, b"n", d2, b"n", RenameFlags::default())
                .unwrap();
        });
        assert!(!holds(&[d1]) && !holds(&[d2]) && !holds(&[ROOT_INO | LISTED]));
        assert!(holds(&[d3]) && holds(&[f]));

        let holds = after(&s, || {
            let set = SetAttr {
                mode: Some(0o600),
                ..SetAttr::default()
            };
            s.setattr(&c, f, &set, None).unwrap();
        });
        assert!(!holds(&[f]) && !holds(&[d1 | LISTED]) && holds(&[d2 | LISTED]));

        let holds = after(&s, || s.setxattr(&c, f, b"user.k", b"v", 0).unwrap());
        assert!(!holds(&[f]) && holds(&[d2]));

        let holds = after(&s, || s.unlink(&c, d2, b"n").unwrap());
        assert!(!holds(&[d2]) && !holds(&[ROOT_INO | LISTED]) && holds(&[d1]));
    }

    #[test]
    fn changes_whose_reach_the_store_cannot_tell_are_global() {
        let s = Store::new(1 << 20);
        let c = Creds::root();
        let d1 = s.mkdir(&c, ROOT_INO, b"d1", 0o755).unwrap().ino;
        let d2 = s.mkdir(&c, ROOT_INO, b"d2", 0o755).unwrap().ino;
        let (f, fh) = s.create(&c, d1, b"f", 0o644, libc::O_RDWR).unwrap();
        s.symlink(&c, d1, b"l", b"d2").unwrap();
        let global = |op: &dyn Fn(), what: &str| {
            assert!(!after(&s, op)(&[]), "{what} must be global");
        };
        global(
            &|| {
                s.setattr(
                    &c,
                    d2,
                    &SetAttr {
                        mode: Some(0o700),
                        ..SetAttr::default()
                    },
                    None,
                )
                .map(drop)
                .unwrap()
            },
            "chmod of a directory",
        );
        global(
            &|| s.setxattr(&c, d2, b"user.k", b"v", 0).unwrap(),
            "an xattr of a directory",
        );
        global(
            &|| {
                s.rename(&c, ROOT_INO, b"d2", ROOT_INO, b"d3", RenameFlags::default())
                    .unwrap()
            },
            "a directory moved",
        );
        global(&|| s.unlink(&c, d1, b"l").unwrap(), "a symlink removed");
        global(
            &|| s.link(&c, f.ino, ROOT_INO, b"f2").map(drop).unwrap(),
            "a link",
        );
        global(
            &|| s.write(&c, fh, 0, b"x").map(drop).unwrap(),
            "a write of a file with two names",
        );
        global(&|| s.rmdir(&c, ROOT_INO, b"d3").unwrap(), "rmdir");
        let (_, fh) = s.create(&c, ROOT_INO, b"g", 0o644, libc::O_RDWR).unwrap();
        s.rename(&c, ROOT_INO, b"g", d1, b"g", RenameFlags::default())
            .unwrap();
        let holds = after(&s, || {
            s.write(&c, fh, 0, b"x").unwrap();
        });
        assert!(
            !holds(&[d1 | proto::changes::LISTED]) && holds(&[ROOT_INO | proto::changes::LISTED]),
            "a moved file's parent follows it"
        );
    }
}
