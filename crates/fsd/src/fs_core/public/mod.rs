//! The public table's writer (see `proto::public`): what the daemon
//! publishes there, when it scrubs it, and how a published file stays for
//! the processes that opened it from there.
//!
//! A process opens a published file without the daemon knowing. It takes
//! the page file's lock shared before it opens anything from the table
//! and drops it when it has no such file open (`flock`; the kernel drops
//! it when the process ends, however it ends). While anyone holds it, a
//! published file that loses its last name and handle is kept by the
//! store (`Store::keep_unlinked`), as an open file keeps its inode, and
//! no entry is reused for another file: such a process that later needs
//! the daemon (the file changed) opens it again by inode number and the
//! entry's random token, which only a reader of the entry knows
//! ([`Public::may_reopen`]). Kept files (at most the table's entries of
//! at most 4 KiB each, whoever holds the lock) are freed once nobody
//! holds it, by a thread of their own ([`Public::start_settler`]).
//! Another thread keeps the table current as changes void its answers
//! (`refresh`).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use inode_store::{Attr, FileKind, Ino, Store};
use parking_lot::Mutex;
use proto::changes::{Touched, LISTED};
use proto::public::{home, Published, Table, DATA_MAX, ENTRIES, NAME_MAX, PROBES, TOKEN_BITS};
use proto::WireAttr;

mod refresh;

use refresh::SWEEP_EVERY;

/// The writer of one daemon's table.
pub struct Public {
    table: &'static Table,
    /// The daemon's own descriptor of the table's file (its lock).
    lock: OwnedFd,
    held: Mutex<Held>,
    /// Wakes the thread that frees kept files.
    settler: OnceLock<SyncSender<()>>,
    /// Wakes the thread that publishes again what changes voided.
    refresher: OnceLock<SyncSender<()>>,
    /// Tokens: a keyed hash (random keys) of a counter.
    token_keys: std::collections::hash_map::RandomState,
    tokens_made: AtomicU64,
}

/// What the daemon last wrote to an entry (kept after a scrub, until the
/// entry is reused).
#[derive(Clone, Copy)]
struct Written {
    /// The directory the name is in.
    parent: Ino,
    /// The stamp it was last written or stamped again with (0: scrubbed
    /// since).
    stamp: u64,
    /// The inode (0: an absent name).
    ino: Ino,
    /// The entry's token: not 0 if it held the file's bytes (a process
    /// may have the file open from the table).
    token: u64,
}

/// What the daemon holds for the table's entries.
struct Held {
    /// Per entry: what it was last written with.
    by_entry: Vec<Option<Written>>,
    /// Entries by the inode they were written for.
    by_ino: HashMap<Ino, Vec<u32>>,
    /// Entries by the directory their name is in.
    by_parent: HashMap<Ino, Vec<u32>>,
    /// Per entry: the name it was last written for.
    names: Vec<Box<[u8]>>,
    /// Inodes changes touched that the refresher has yet to publish again
    /// (see [`Public::start_refresher`]): when a change last touched each.
    stale: HashMap<Ino, Instant>,
    /// Changes scrubbed since the last sweep (see [`Public::sweep`]).
    unswept: u64,
    /// Whether the refresher waits to be woken.
    idle: bool,
    /// The last change that touched each inode the table holds entries
    /// for or in, as far as [`Public::sweep`] needs to know.
    touched_at: HashMap<Ino, u64>,
    /// The last change that touched everything.
    global_at: u64,
    /// Published files the store keeps unlinked for processes that may
    /// have them open from the table.
    kept: Vec<Ino>,
}

impl Public {
    /// The writer of `table` (in the file `lock` is open on), for a mount
    /// every user may use and reach (the daemon makes none otherwise).
    pub fn new(table: &'static Table, lock: OwnedFd) -> Public {
        Public {
            table,
            lock,
            held: Mutex::new(Held {
                by_entry: vec![None; ENTRIES],
                by_ino: HashMap::new(),
                by_parent: HashMap::new(),
                names: vec![Box::default(); ENTRIES],
                stale: HashMap::new(),
                unswept: 0,
                idle: false,
                touched_at: HashMap::new(),
                global_at: 0,
                kept: Vec::new(),
            }),
            settler: OnceLock::new(),
            refresher: OnceLock::new(),
            token_keys: std::collections::hash_map::RandomState::new(),
            tokens_made: AtomicU64::new(0),
        }
    }

    /// Publishes that `name` in `parent` is `attr.ino`, with `attr` under
    /// `stamp` (0: not a quiet answer, nothing is published) and, for a
    /// small regular file, all its bytes `data` as of that stamp, if
    /// everyone may see it (`Store::is_public`).
    pub fn publish(
        &self,
        store: &Store,
        (parent, name): (Ino, &[u8]),
        attr: &Attr,
        stamp: u64,
        data: Option<&[u8]>,
    ) {
        if stamp == 0 || !store.is_public(parent, name, attr.ino) {
            return;
        }
        let data = data.filter(|d| d.len() <= DATA_MAX && d.len() as u64 == attr.size);
        // Attributes alone never replace a file's entry that holds its
        // bytes (an open renews those).
        let holds_bytes = |p: Published| p.ino == attr.ino && p.data_len.is_some();
        if data.is_none() && self.table.find(parent, name).is_some_and(holds_bytes) {
            self.renew(store, (parent, name), attr, stamp);
            return;
        }
        let token = match (attr.kind, data) {
            (FileKind::Regular, Some(_)) => self.token(),
            _ => 0,
        };
        self.write(store, (parent, name), stamp, &attr.wire(), data, token);
    }

    /// Stamps again, under `stamp`, the entry that holds the bytes of
    /// `name` in `parent` (`attr.ino`, as of `stamp`) when no change since
    /// its stamp touched the file: its bytes and attributes are still the
    /// file's, and the entry's readers find it current again, where a
    /// change to the directory's other names had voided it (a build
    /// writing objects beside the sources its compilers read). Its token
    /// stays: a process that opened the file from it may still open it
    /// again by number.
    fn renew(&self, store: &Store, (parent, name): (Ino, &[u8]), attr: &Attr, stamp: u64) {
        let mut held = self.held.lock();
        // Under the lock, which every writer and every change's scrub takes.
        let Some(p) = self.table.find(parent, name) else {
            return;
        };
        // The last change that touched the file (it is a key of `by_ino`
        // while the entry is there: every change since its stamp is told).
        let touched = held.touched_at.get(&attr.ino).copied().unwrap_or(0);
        let untouched = touched <= p.stamp && held.global_at <= p.stamp;
        let Some(w) = held.by_entry[p.index].as_mut() else {
            return;
        };
        if !store.still_quiet(stamp)
            || p.ino != attr.ino
            || p.stamp >= stamp
            || w.token == 0
            || !untouched
        {
            return;
        }
        self.table.restamp(p.index, stamp);
        w.stamp = stamp;
    }

    /// Whether the table says, under `stamp`, that `name` in `parent` is
    /// `ino`.
    pub fn holds(&self, (parent, name): (Ino, &[u8]), ino: Ino, stamp: u64) -> bool {
        stamp != 0
            && self
                .table
                .find(parent, name)
                .is_some_and(|p| p.ino == ino && p.stamp == stamp)
    }

    /// Publishes that `parent` has no `name` under `stamp`, if it has
    /// none and everyone may list `parent` (`Store::is_public_absence`).
    pub fn publish_absent(&self, store: &Store, (parent, name): (Ino, &[u8]), stamp: u64) {
        if stamp != 0 && store.is_public_absence(parent, name) {
            let none = WireAttr::default();
            self.write(store, (parent, name), stamp, &none, None, 0);
        }
    }

    /// A new token: [`TOKEN_BITS`] bits, never 0, unguessable.
    fn token(&self) -> u64 {
        let mut h = self.token_keys.build_hasher();
        h.write_u64(self.tokens_made.fetch_add(1, Ordering::Relaxed));
        (h.finish() & ((1 << TOKEN_BITS) - 1)).max(1)
    }

    /// Writes an entry: `name` in `parent` is `attr.ino` (0: nothing),
    /// with the file's bytes `data` opened again by `token` (0: none).
    fn write(
        &self,
        store: &Store,
        (parent, name): (Ino, &[u8]),
        stamp: u64,
        attr: &WireAttr,
        data: Option<&[u8]>,
        token: u64,
    ) {
        if name.len() > NAME_MAX {
            return;
        }
        let mut held = self.held.lock();
        // Under the lock, which every change's scrub takes: a change that
        // began after this check scrubs what is written below.
        if !store.still_quiet(stamp) {
            return;
        }
        if let Some(i) = self.entry_for(&held, parent, name, attr.ino) {
            let same = held.by_entry[i]
                .filter(|w| w.parent == parent && w.ino == attr.ino && *held.names[i] == *name);
            // A file's entry written again keeps its token: a process that
            // opened the file from it may still open it again by number.
            let token = match same {
                Some(w) if w.token != 0 => w.token,
                _ => token,
            };
            self.table.write(i, parent, name, stamp, attr, data, token);
            let written = Written {
                parent,
                stamp,
                ino: attr.ino,
                token,
            };
            if same.is_none() {
                held.take(i);
                held.names[i] = name.into();
                held.by_ino.entry(attr.ino).or_default().push(i as u32);
                held.by_parent.entry(parent).or_default().push(i as u32);
            }
            held.by_entry[i] = Some(written);
        }
    }

    /// The entry to write `name` in `parent` (inode `ino`) to: the one
    /// holding that name, else an empty one, else one whose reuse lets go
    /// of no file (a directory's, an absent name's, the same file's), else
    /// the name's first; `None` when that one was another file's and a
    /// process may have it open from the table.
    fn entry_for(&self, held: &Held, parent: Ino, name: &[u8], ino: Ino) -> Option<usize> {
        let first = home(parent, name);
        let probes = || (0..PROBES).map(move |k| (first + k) % ENTRIES);
        let drops_none = |i: usize| held.by_entry[i].is_none_or(|w| w.token == 0 || w.ino == ino);
        let i = self
            .table
            .find(parent, name)
            .map(|p| p.index)
            .or_else(|| probes().find(|&i| held.by_entry[i].is_none()))
            .or_else(|| probes().find(|&i| drops_none(i)))
            .unwrap_or(first);
        (drops_none(i) || self.nobody_holds_files()).then_some(i)
    }

    /// Whether no process holds a file opened from the table (the file's
    /// lock, taken exclusively and dropped at once).
    fn nobody_holds_files(&self) -> bool {
        let fd = self.lock.as_raw_fd();
        // SAFETY: flock on our own descriptor.
        let free = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if free {
            // SAFETY: as above.
            unsafe { libc::flock(fd, libc::LOCK_UN) };
        }
        free
    }

    /// Scrubs the entries of every inode a change touched (all of them
    /// for a change that says it touched everything): what they showed may
    /// no longer be public. Runs at the end of every change, before it
    /// counts as ended (`Store::watch_changes`): it must not call the store.
    pub fn scrub(&self, g: u64, touched: Touched<'_>) {
        let mut held = self.held.lock();
        held.unswept += 1;
        match touched {
            Touched::Everything => held.global_at = held.global_at.max(g),
            Touched::Inodes(inodes) => {
                for &ino in inodes.iter().filter(|&&i| i & LISTED == 0) {
                    if held.by_ino.contains_key(&ino) || held.by_parent.contains_key(&ino) {
                        let at = held.touched_at.entry(ino).or_default();
                        *at = (*at).max(g);
                    }
                }
            }
        }
        if held.unswept.is_multiple_of(SWEEP_EVERY) {
            self.wake_refresher(&mut held);
        }
        if held.by_ino.is_empty() {
            return;
        }
        match touched {
            Touched::Everything => {
                for (i, e) in held.by_entry.iter_mut().enumerate() {
                    if let Some(w) = e.as_mut().filter(|w| w.stamp != 0) {
                        self.table.clear(i);
                        w.stamp = 0;
                    }
                }
            }
            Touched::Inodes(inodes) => {
                let mut stale = false;
                for ino in inodes.iter().filter(|&&i| i & LISTED == 0) {
                    let Held {
                        by_entry, by_ino, ..
                    } = &mut *held;
                    for &i in by_ino.get(ino).into_iter().flatten() {
                        if let Some(w) = by_entry[i as usize].as_mut().filter(|w| w.stamp != 0) {
                            self.table.clear(i as usize);
                            w.stamp = 0;
                        }
                    }
                    let refreshed = self.refresher.get().is_some();
                    if refreshed
                        && (held.by_ino.contains_key(ino) || held.by_parent.contains_key(ino))
                    {
                        held.stale.insert(*ino, Instant::now());
                        stale = true;
                    }
                }
                if stale {
                    self.wake_refresher(&mut held);
                }
            }
        }
    }

    /// Whether a client may open inode `ino` by its number with `token`
    /// (`proto::ops::OpenInode`): an entry the table has not reused since
    /// held the file's bytes under that token, so the caller read the
    /// entry, and could have opened the file, public then, as it is kept
    /// open from the table.
    pub fn may_reopen(&self, ino: Ino, token: u64) -> bool {
        let held = self.held.lock();
        token != 0 && held.openable(ino, |w| w.token == token)
    }

    /// Whether the store must keep published file `ino`, which just lost
    /// its last name and handle: an entry held its bytes, so a process may
    /// have it open from the table (`Store::keep_unlinked`; runs under the
    /// store's locks).
    pub fn keeps(&self, ino: Ino) -> bool {
        let mut held = self.held.lock();
        let keep = held.openable(ino, |_| true) && !self.nobody_holds_files();
        if keep && !held.kept.contains(&ino) {
            held.kept.push(ino);
            if let Some(wake) = self.settler.get() {
                let _ = wake.try_send(());
            }
        }
        keep
    }

    /// Starts the thread that frees the files kept for processes that had
    /// them open from the table: it waits for the lock on `lock` (a
    /// descriptor of the page file of its own), exclusive, so it wakes
    /// when the last such process lets go, and frees them then.
    pub fn start_settler(self: &Arc<Self>, store: Arc<Store>, lock: OwnedFd) -> io::Result<()> {
        let (wake, woken) = sync_channel(1);
        let _ = self.settler.set(wake);
        let public = self.clone();
        std::thread::Builder::new()
            .name("btfuse-settler".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    loop {
                        // SAFETY: flock on our own descriptor.
                        unsafe {
                            libc::flock(lock.as_raw_fd(), libc::LOCK_EX);
                            libc::flock(lock.as_raw_fd(), libc::LOCK_UN);
                        }
                        if public.settle(&store) {
                            break;
                        }
                        // A process took the lock again meanwhile.
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
            })?;
        Ok(())
    }

    /// Frees the files kept for processes that had them open from the
    /// table, if none holds the lock; whether none is kept now.
    fn settle(&self, store: &Store) -> bool {
        let kept = {
            let mut held = self.held.lock();
            if held.kept.is_empty() {
                return true;
            }
            if !self.nobody_holds_files() {
                return false;
            }
            std::mem::take(&mut held.kept)
        };
        for ino in kept {
            store.settle(ino);
        }
        true
    }
}

impl Held {
    /// Empties entry `i`'s record.
    fn take(&mut self, i: usize) {
        let Some(Written { parent, ino, .. }) = self.by_entry[i].take() else {
            return;
        };
        for (map, key) in [(&mut self.by_ino, ino), (&mut self.by_parent, parent)] {
            if let Some(list) = map.get_mut(&key) {
                list.retain(|&e| e as usize != i);
                if list.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    /// Whether an entry written for `ino` held its bytes (a token) and
    /// satisfies `also`.
    fn openable(&self, ino: Ino, also: impl Fn(&Written) -> bool) -> bool {
        self.by_ino
            .get(&ino)
            .into_iter()
            .flatten()
            .any(|&i| self.by_entry[i as usize].is_some_and(|w| w.token != 0 && also(&w)))
    }
}
