//! The virtual fd table: fd number -> open file description (OFD).
//!
//! Every fast-path fd is a real kernel fd number (an `O_PATH` descriptor of
//! `/dev/null`, see `crate::ops`), so numbers never collide with the
//! program's own. This table says which of those numbers are ours and what
//! they mean. Lock-free, fixed size, no allocation:
//!
//! * `map[fd]` holds `ofd index + 1`, or 0 when the fd is not ours;
//! * `located[fd]` likewise for a kernel fd that stays the kernel's: an
//!   `O_PATH` directory fd on a mount, which the OFD shadows with a
//!   fast-path handle of the same directory for the paths relative to it
//!   (see `ops::located`);
//! * an OFD is shared by `dup`s of one open (offset, flags, handle), with a
//!   reference count. The slot's `state` says free/allocated; `refs == 0`
//!   on an allocated slot means its last reference is being torn down. A user of an OFD holds a reference for
//!   the whole call ([`FdTable::get`]), like the kernel's `fdget`, so a
//!   concurrent `close` can never make it act on a recycled slot.
//!
//! Pure atomics over `core`, unit tested with std.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// OFD kind bit in `Ofd::flags` (beside the open flags): a directory.
pub const KIND_DIR: u32 = 1 << 31;

/// OFD kind bit: the fd number is a real kernel fd on the same file (on the
/// FUSE mount), so every call the library does not catch works on it; the
/// data calls it does catch still go through the fast path, at the kernel
/// fd's offset, which stays authoritative. Used for stdin/stdout/stderr,
/// which glibc's stdio and exec'd children use behind the library's back.
pub const KIND_KERNEL: u32 = 1 << 30;

/// Words of the attributes an OFD keeps from its open (`proto::WireAttr`).
pub const ATTR_WORDS: usize = 11;

/// One open file description, on cache lines of its own: threads that
/// open, read and close in a loop use neighbouring ones.
#[derive(Debug)]
#[repr(align(64))]
pub struct Ofd {
    /// 0 = free slot, 1 = allocated (possibly being torn down).
    pub state: AtomicU32,
    /// Reference count (fds + in-flight calls); 0 = dead or free.
    pub refs: AtomicU32,
    /// Open flags (`O_ACCMODE | O_APPEND | O_NONBLOCK | ...`) | [`KIND_DIR`].
    pub flags: AtomicU32,
    /// Daemon handle.
    pub handle: AtomicU64,
    /// File offset, shared by all dups.
    pub offset: AtomicU64,
    /// Index of the mount.
    pub mount: AtomicU32,
    /// Fork epoch the handle belongs to (a child must not use its parent's).
    pub epoch: AtomicU32,
    /// Serialises offset updates (read/write/lseek), like the kernel's
    /// `f_pos_lock`; taken with bounded spinning only (see `ops`).
    pub pos_lock: AtomicU32,
    /// Inode number of the file (0: not known).
    pub ino: AtomicU64,
    /// The change generation under which [`Ofd::attr`] holds (0: none).
    pub attr_stamp: AtomicU64,
    /// The attributes the open returned, written before the OFD is
    /// installed; renewed by a later read's reply under a seqlock on
    /// [`Ofd::attr_stamp`] (`ops::renew_open_attr`).
    pub attr: [AtomicU64; ATTR_WORDS],
}

impl Ofd {
    const fn new() -> Ofd {
        Ofd {
            state: AtomicU32::new(0),
            refs: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            handle: AtomicU64::new(0),
            offset: AtomicU64::new(0),
            mount: AtomicU32::new(0),
            epoch: AtomicU32::new(0),
            pos_lock: AtomicU32::new(0),
            ino: AtomicU64::new(0),
            attr_stamp: AtomicU64::new(0),
            attr: [const { AtomicU64::new(0) }; ATTR_WORDS],
        }
    }

    /// Whether the fd number is a real kernel fd ([`KIND_KERNEL`]).
    pub fn is_kernel_backed(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & KIND_KERNEL != 0
    }

    /// Whether this OFD describes a directory.
    pub fn is_dir(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & KIND_DIR != 0
    }
}

/// What a new OFD starts with.
#[derive(Clone, Copy, Debug, Default)]
pub struct OfdInit {
    /// Open flags | [`KIND_DIR`].
    pub flags: u32,
    /// Daemon handle.
    pub handle: u64,
    /// Mount index.
    pub mount: u32,
    /// Current fork epoch.
    pub epoch: u32,
    /// Inode number (0: not known).
    pub ino: u64,
}

/// Where `fd`'s word is in a map: its low two hex digits swapped, so that
/// the fds a process's threads hold at once (the kernel hands out the
/// lowest free ones: neighbours) sit on different cache lines instead of
/// one line that every thread's `open` and `close` writes. A bijection on
/// each block of 256 fds (a map's length is a multiple of 256).
const fn spread(fd: i32) -> usize {
    let fd = fd as usize;
    fd & !0xff | (fd & 0xf) << 4 | (fd >> 4) & 0xf
}

/// `fd`'s word in `map`, if `fd` is in its range.
#[inline]
fn word<const NFD: usize>(map: &[AtomicU32; NFD], fd: i32) -> Option<&AtomicU32> {
    ((fd as u32 as usize) < NFD).then(|| &map[spread(fd)])
}

/// Allocation hints of a table (see `FdTable::hints`).
const HINTS: usize = 4;

/// An allocation hint, on a cache line of its own.
#[derive(Debug)]
#[repr(align(64))]
struct Hint(AtomicU32);

/// The table: `NFD` fd numbers, `NOFD` open file descriptions.
///
/// In this order (`repr(C)`): the hints, `high` and the map entries of the
/// low fds, which every process that opens a file touches, share one page
/// (the table lives in `.bss`: each page is a page fault at its first
/// touch, ~1–2.5 µs here).
#[repr(C)]
pub struct FdTable<const NFD: usize, const NOFD: usize> {
    /// Allocation hints, one per CPU (modulo their number): the next slot
    /// to try, counted from the CPU's quarter of the slots, so that threads
    /// on different CPUs take slots apart and write hints apart.
    hints: [Hint; HINTS],
    /// One more than the highest fd ever installed in either map (bounds
    /// scans).
    high: AtomicU32,
    map: [AtomicU32; NFD],
    located: [AtomicU32; NFD],
    ofds: [Ofd; NOFD],
}

/// A counted reference to an OFD; drop it with [`FdTable::put`].
#[derive(Debug)]
#[must_use]
pub struct OfdRef {
    /// Index of the OFD.
    pub idx: u32,
}

impl<const NFD: usize, const NOFD: usize> FdTable<NFD, NOFD> {
    /// An empty table (const: lives in `.bss`).
    pub const fn new() -> Self {
        assert!(NFD.is_multiple_of(256), "see spread()");
        FdTable {
            map: [const { AtomicU32::new(0) }; NFD],
            located: [const { AtomicU32::new(0) }; NFD],
            ofds: [const { Ofd::new() }; NOFD],
            hints: [const { Hint(AtomicU32::new(0)) }; HINTS],
            high: AtomicU32::new(0),
        }
    }

    /// Largest fd number the table can hold, plus one.
    pub const fn capacity(&self) -> usize {
        NFD
    }

    /// The OFD at `idx`.
    pub fn ofd(&self, idx: u32) -> &Ofd {
        &self.ofds[idx as usize]
    }

    /// Cheap test: is `fd` one of ours right now? (The common "not ours"
    /// answer for every hooked fd call is this one relaxed load.)
    #[inline]
    pub fn is_ours(&self, fd: i32) -> bool {
        word(&self.map, fd).is_some_and(|w| w.load(Ordering::Relaxed) != 0)
    }

    /// Allocates an OFD with one reference (the caller's), or `None` when
    /// all are in use.
    pub fn alloc(&self, init: OfdInit) -> Option<OfdRef> {
        // SAFETY: no arguments; answered without a system call (vDSO).
        let cpu = unsafe { libc::sched_getcpu() }.max(0) as usize % HINTS;
        let hint = &self.hints[cpu].0;
        let base = cpu * (NOFD / HINTS);
        let start = base + hint.load(Ordering::Relaxed) as usize;
        for k in 0..NOFD {
            let i = (start + k) % NOFD;
            let o = &self.ofds[i];
            // Acquire: pairs with the Release store of 0 in `put`, so the
            // previous owner's teardown is complete before we reuse it.
            // The hinted slot, usually free, is claimed at once: in `.bss`
            // a load before the first write of a page is a second page
            // fault (the zero page, then a copy); the others are looked
            // at before a write, not to take their lines from their users.
            if (k == 0 || o.state.load(Ordering::Relaxed) == 0)
                && o.state
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                o.refs.store(1, Ordering::Relaxed);
                o.flags.store(init.flags, Ordering::Relaxed);
                o.handle.store(init.handle, Ordering::Relaxed);
                o.offset.store(0, Ordering::Relaxed);
                o.mount.store(init.mount, Ordering::Relaxed);
                o.epoch.store(init.epoch, Ordering::Relaxed);
                o.pos_lock.store(0, Ordering::Relaxed);
                o.ino.store(init.ino, Ordering::Relaxed);
                o.attr_stamp.store(0, Ordering::Relaxed);
                let next = (i + 1 + NOFD - base) % NOFD;
                hint.store(next as u32, Ordering::Relaxed);
                return Some(OfdRef { idx: i as u32 });
            }
        }
        None
    }

    /// Takes another reference on an OFD the caller already holds one of.
    pub fn clone_ref(&self, r: &OfdRef) -> OfdRef {
        // Relaxed: the caller's reference keeps the slot alive.
        self.ofds[r.idx as usize]
            .refs
            .fetch_add(1, Ordering::Relaxed);
        OfdRef { idx: r.idx }
    }

    /// A counted reference to the OFD behind `fd`, if `fd` is ours.
    pub fn get(&self, fd: i32) -> Option<OfdRef> {
        self.get_in(&self.map, fd)
    }

    /// A counted reference to the OFD shadowing kernel fd `fd`, if any.
    pub fn get_located(&self, fd: i32) -> Option<OfdRef> {
        self.get_in(&self.located, fd)
    }

    /// Whether kernel fd `fd` has a shadowing OFD right now (one relaxed
    /// load, like [`FdTable::is_ours`]).
    #[inline]
    pub fn is_located(&self, fd: i32) -> bool {
        word(&self.located, fd).is_some_and(|w| w.load(Ordering::Relaxed) != 0)
    }

    fn get_in(&self, map: &[AtomicU32; NFD], fd: i32) -> Option<OfdRef> {
        let word = word(map, fd)?;
        loop {
            // Acquire: pairs with the Release in `install`, so the OFD's
            // fields are visible.
            let v = word.load(Ordering::Acquire);
            if v == 0 {
                return None;
            }
            let idx = v - 1;
            let o = &self.ofds[idx as usize];
            let mut r = o.refs.load(Ordering::Relaxed);
            loop {
                if r == 0 {
                    break;
                }
                match o
                    .refs
                    .compare_exchange_weak(r, r + 1, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => {
                        // Still the same mapping? Then the reference is to
                        // the OFD the fd names (even if recycled meanwhile,
                        // the fd now names the recycled one).
                        if word.load(Ordering::Acquire) == v {
                            return Some(OfdRef { idx });
                        }
                        self.put_quiet(OfdRef { idx });
                        break;
                    }
                    Err(now) => r = now,
                }
            }
            // The mapping changed under us: look again.
            if word.load(Ordering::Acquire) == v {
                return None;
            }
        }
    }

    /// Makes `fd` name the OFD of `r` (consuming the reference, which the
    /// fd now owns). Returns the OFD the fd named before, if any: the
    /// caller must [`FdTable::put`] it.
    pub fn install(&self, fd: i32, r: OfdRef) -> Option<OfdRef> {
        let prev = self.map[spread(fd)].swap(r.idx + 1, Ordering::AcqRel);
        self.raise_high(fd);
        (prev != 0).then(|| OfdRef { idx: prev - 1 })
    }

    /// Makes the OFD of `r` shadow kernel fd `fd` (consuming the
    /// reference); returns the one that shadowed it before, to
    /// [`FdTable::put`].
    pub fn install_located(&self, fd: i32, r: OfdRef) -> Option<OfdRef> {
        let prev = self.located[spread(fd)].swap(r.idx + 1, Ordering::AcqRel);
        self.raise_high(fd);
        (prev != 0).then(|| OfdRef { idx: prev - 1 })
    }

    /// Raises [`FdTable::high`] to cover `fd`: a load first, so that the
    /// opens of a process's threads do not all write its line.
    fn raise_high(&self, fd: i32) {
        if self.high.load(Ordering::Relaxed) <= fd as u32 {
            self.high.fetch_max(fd as u32 + 1, Ordering::Relaxed);
        }
    }

    /// Makes `fd` not ours; returns the reference it held.
    pub fn remove(&self, fd: i32) -> Option<OfdRef> {
        Self::take(&self.map, fd)
    }

    /// Makes kernel fd `fd` unshadowed; returns the reference it held.
    pub fn remove_located(&self, fd: i32) -> Option<OfdRef> {
        Self::take(&self.located, fd)
    }

    fn take(map: &[AtomicU32; NFD], fd: i32) -> Option<OfdRef> {
        let word = word(map, fd)?;
        // Looked at first: a swap writes even a 0 back, and the first
        // write to the map's page is a page fault of its own (every
        // process closes fds that are not ours).
        if word.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let prev = word.swap(0, Ordering::AcqRel);
        (prev != 0).then(|| OfdRef { idx: prev - 1 })
    }

    /// Drops a reference. When it was the last one, returns the OFD's index:
    /// the caller tears it down (releases the handle) and then calls
    /// [`FdTable::free`]. Until then nobody can take a reference (`get`
    /// never increments 0) nor allocate the slot (`state` is still 1).
    pub fn put(&self, r: OfdRef) -> Option<u32> {
        let o = &self.ofds[r.idx as usize];
        // AcqRel: the last dropper must see every other user's writes.
        (o.refs.fetch_sub(1, Ordering::AcqRel) == 1).then_some(r.idx)
    }

    /// Drops a reference that is known not to be the last (a lookup that
    /// lost a race); if it was the last after all, frees the slot.
    fn put_quiet(&self, r: OfdRef) {
        if let Some(idx) = self.put(r) {
            self.free(idx);
        }
    }

    /// Returns a torn-down OFD (from [`FdTable::put`]) to the pool.
    pub fn free(&self, idx: u32) {
        // Release: the teardown happens before the next `alloc` of the slot.
        self.ofds[idx as usize].state.store(0, Ordering::Release);
    }

    /// The OFD index `fd` maps to right now (no reference taken).
    pub fn index_of(&self, fd: i32) -> Option<u32> {
        word(&self.map, fd)?.load(Ordering::Acquire).checked_sub(1)
    }

    /// Calls `f(fd)` for every fd that is ours in `lo..=hi`.
    pub fn for_each_in(&self, lo: u32, hi: u32, f: impl FnMut(i32)) {
        self.for_each_set(&self.map, lo, hi, f);
    }

    /// Calls `f(fd)` for every shadowed kernel fd in `lo..=hi`.
    pub fn for_each_located_in(&self, lo: u32, hi: u32, f: impl FnMut(i32)) {
        self.for_each_set(&self.located, lo, hi, f);
    }

    fn for_each_set(&self, map: &[AtomicU32; NFD], lo: u32, hi: u32, mut f: impl FnMut(i32)) {
        let end = (self.high.load(Ordering::Relaxed) as u64).min(hi as u64 + 1);
        let mut fd = lo as u64;
        while fd < end {
            if map[spread(fd as i32)].load(Ordering::Relaxed) != 0 {
                f(fd as i32);
            }
            fd += 1;
        }
    }
}

impl<const NFD: usize, const NOFD: usize> Default for FdTable<NFD, NOFD> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type T = FdTable<256, 4>;

    fn init(handle: u64) -> OfdInit {
        OfdInit {
            handle,
            ..Default::default()
        }
    }

    #[test]
    fn dup_shares_one_ofd_and_the_last_close_frees_it() {
        let t = Box::new(T::new());
        let r = t.alloc(init(7)).unwrap();
        let r2 = t.clone_ref(&r);
        assert!(t.install(3, r).is_none());
        assert!(t.install(4, r2).is_none());
        let a = t.get(3).unwrap();
        let b = t.get(4).unwrap();
        assert_eq!(a.idx, b.idx);
        t.ofd(a.idx).offset.store(100, Ordering::Relaxed);
        assert_eq!(t.ofd(b.idx).offset.load(Ordering::Relaxed), 100);
        assert_eq!(t.put(a), None);
        assert_eq!(t.put(b), None);
        let c = t.remove(3).unwrap();
        assert_eq!(t.put(c), None, "fd 4 still holds it");
        assert!(!t.is_ours(3));
        let d = t.remove(4).unwrap();
        let idx = t.put(d).expect("last reference");
        assert_eq!(t.ofd(idx).handle.load(Ordering::Relaxed), 7);
        t.free(idx);
        assert_eq!(t.ofd(idx).state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_in_flight_call_keeps_the_ofd_alive_across_close() {
        let t = Box::new(T::new());
        let r = t.alloc(init(1)).unwrap();
        t.install(5, r);
        let busy = t.get(5).unwrap();
        let closed = t.remove(5).unwrap();
        assert_eq!(t.put(closed), None);
        // The slot cannot be reused while `busy` is held.
        let others: Vec<_> = (0..3).map(|_| t.alloc(init(2)).unwrap()).collect();
        assert!(t.alloc(init(3)).is_none());
        assert!(others.iter().all(|o| o.idx != busy.idx));
        let idx = t.put(busy).unwrap();
        t.free(idx);
        assert!(t.alloc(init(4)).is_some());
        assert!(t.get(5).is_none());
    }

    #[test]
    fn install_over_an_fd_returns_the_previous_ofd() {
        let t = Box::new(T::new());
        let a = t.alloc(init(1)).unwrap();
        let b = t.alloc(init(2)).unwrap();
        let (ai, bi) = (a.idx, b.idx);
        t.install(9, a);
        let prev = t.install(9, b).unwrap();
        assert_eq!(prev.idx, ai);
        assert_eq!(
            t.get(9).map(|r| {
                let i = r.idx;
                let _ = t.put(r);
                i
            }),
            Some(bi)
        );
    }

    #[test]
    fn out_of_range_fds_are_never_ours() {
        let t = Box::new(T::new());
        assert!(!t.is_ours(-1));
        assert!(!t.is_ours(256));
        assert!(t.get(1000).is_none());
        assert!(t.remove(-5).is_none());
    }

    #[test]
    fn for_each_in_visits_only_our_fds_in_range() {
        let t = Box::new(T::new());
        for fd in [2, 10, 20] {
            let r = t.alloc(init(fd as u64)).unwrap();
            t.install(fd, r);
        }
        let mut seen = vec![];
        t.for_each_in(3, u32::MAX, |fd| seen.push(fd));
        assert_eq!(seen, vec![10, 20]);
    }

    #[test]
    fn every_fd_has_a_word_of_its_own() {
        let t = Box::new(FdTable::<512, 16>::new());
        let fds = [0, 1, 3, 4, 16, 17, 255, 256, 273, 511];
        let mut idx = vec![];
        for &fd in &fds {
            let r = t.alloc(init(fd as u64)).unwrap();
            idx.push(r.idx);
            assert!(t.install(fd, r).is_none());
        }
        for fd in 0..512 {
            let want = fds.iter().position(|&f| f == fd).map(|i| idx[i]);
            assert_eq!(t.index_of(fd), want, "fd {fd}");
            assert_eq!(t.is_ours(fd), want.is_some(), "fd {fd}");
        }
        let mut seen = vec![];
        t.for_each_in(0, u32::MAX, |fd| seen.push(fd));
        assert_eq!(seen, fds);
        assert_eq!(t.remove(17).map(|r| r.idx), Some(idx[5]));
        assert!(!t.is_ours(17) && t.is_ours(16) && t.is_ours(273));
    }

    #[test]
    fn concurrent_get_and_put_balance() {
        let t: &'static T = Box::leak(Box::new(T::new()));
        let r = t.alloc(init(1)).unwrap();
        t.install(1, r);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let r = t.get(1).unwrap();
                        assert_eq!(t.put(r), None);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let r = t.remove(1).unwrap();
        assert!(t.put(r).is_some());
    }
}
