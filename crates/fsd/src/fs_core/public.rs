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

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};

use inode_store::{Attr, Creds, FileKind, Ino, Store};
use parking_lot::Mutex;
use proto::changes::{Touched, LISTED, RECORDS};
use proto::public::{home, Published, Table, DATA_MAX, ENTRIES, NAME_MAX, PROBES, TOKEN_BITS};
use proto::WireAttr;

/// The refresher's pause after each pass: changes that come in bursts
/// (a file created, written and closed) are published again once.
const REFRESH_GAP: std::time::Duration = std::time::Duration::from_micros(200);

/// How long the refresher waits for the changes in progress to end.
const QUIET_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Changes between two sweeps of the table (see [`Public::sweep`]).
const SWEEP_EVERY: u64 = 256;

/// Passes in a row that changes may interrupt before the refresher leaves
/// what they voided to the opens and `stat`s that publish.
const REFRESH_TRIES: u32 = 8;

/// A quiet stamp of `store` (no change in progress), waiting up to
/// [`QUIET_WAIT`] for one.
fn quiet_stamp(store: &Store) -> Option<u64> {
    let until = std::time::Instant::now() + QUIET_WAIT;
    loop {
        if let Some(stamp) = store.quiet_stamp() {
            return Some(stamp);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        std::thread::yield_now();
    }
}

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
    /// Inodes changes touched since the refresher last ran (see
    /// [`Public::start_refresher`]).
    stale: Vec<Ino>,
    /// Changes scrubbed since the last sweep (see [`Public::sweep`]).
    unswept: u64,
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
                stale: Vec::new(),
                unswept: 0,
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
        let held = self.held.lock();
        // Under the lock, which every writer and every change's scrub takes.
        let Some(p) = self.table.find(parent, name) else {
            return;
        };
        let token = held.by_entry[p.index].map_or(0, |w| w.token);
        if !store.still_quiet(stamp)
            || p.ino != attr.ino
            || p.stamp >= stamp
            || token == 0
            || !store.untouched_since_long(p.stamp, stamp, &[attr.ino])
        {
            return;
        }
        let mut bytes = [0u8; DATA_MAX];
        let Some(n) = self.table.read_data(&p, 0, &mut bytes) else {
            return;
        };
        let data = Some(&bytes[..n]);
        self.table
            .write(p.index, parent, name, stamp, &attr.wire(), data, token);
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
            // A file's entry written again keeps its token: a process that
            // opened the file from it may still open it again by number.
            let token = match held.by_entry[i] {
                Some(w) if w.ino == attr.ino && w.parent == parent && w.token != 0 => w.token,
                _ => token,
            };
            held.take(i);
            self.table.write(i, parent, name, stamp, attr, data, token);
            held.by_entry[i] = Some(Written {
                parent,
                ino: attr.ino,
                token,
            });
            held.names[i] = name.into();
            held.by_ino.entry(attr.ino).or_default().push(i as u32);
            held.by_parent.entry(parent).or_default().push(i as u32);
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
    pub fn scrub(&self, touched: Touched<'_>) {
        let mut held = self.held.lock();
        held.unswept += 1;
        if held.unswept.is_multiple_of(SWEEP_EVERY) {
            if let Some(wake) = self.refresher.get() {
                let _ = wake.try_send(());
            }
        }
        if held.by_ino.is_empty() {
            return;
        }
        match touched {
            Touched::Everything => {
                for (i, e) in held.by_entry.iter().enumerate() {
                    if e.is_some() && self.table.occupied(i) {
                        self.table.clear(i);
                    }
                }
            }
            Touched::Inodes(inodes) => {
                let mut stale = false;
                for ino in inodes.iter().filter(|&&i| i & LISTED == 0) {
                    for &i in held.by_ino.get(ino).into_iter().flatten() {
                        if self.table.occupied(i as usize) {
                            self.table.clear(i as usize);
                        }
                    }
                    let refreshed = self.refresher.get().is_some();
                    if refreshed
                        && (held.by_ino.contains_key(ino) || held.by_parent.contains_key(ino))
                    {
                        held.stale.push(*ino);
                        stale = true;
                    }
                }
                if let Some(wake) = self.refresher.get().filter(|_| stale) {
                    let _ = wake.try_send(());
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

    /// Starts the thread that publishes again, once each change has
    /// ended, the names a change voided: the entries in a directory whose
    /// names changed (every answer in it is void, see `holds_for_name`)
    /// and the entries of an inode that changed (scrubbed), each as the
    /// store now answers it (a file's bytes stay only where [`renew`]
    /// keeps them). A build that writes objects beside its sources voids
    /// its compilers' answers at each object; published again, the next
    /// compiler finds them. A global change (every entry scrubbed) is
    /// left to the opens and `stat`s that publish. At most one pass per
    /// [`REFRESH_GAP`].
    ///
    /// [`renew`]: Public::renew
    pub fn start_refresher(self: &Arc<Self>, store: Arc<Store>) -> io::Result<()> {
        let (wake, woken) = sync_channel(1);
        let _ = self.refresher.set(wake);
        let public = self.clone();
        std::thread::Builder::new()
            .name("btfuse-refresher".into())
            .spawn(move || {
                // Passes in a row that changes interrupted.
                let mut interrupted = 0;
                loop {
                    let woke = match interrupted {
                        0 => woken.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        _ => woken.recv_timeout(REFRESH_GAP),
                    };
                    if woke == Err(RecvTimeoutError::Disconnected) {
                        break;
                    }
                    let swept = public.sweep(&store);
                    interrupted = match public.refresh(&store) && swept {
                        true => 0,
                        false if interrupted < REFRESH_TRIES => interrupted + 1,
                        false => {
                            // Left to the opens and `stat`s that publish,
                            // and to the next sweep.
                            public.held.lock().stale.clear();
                            0
                        }
                    };
                    std::thread::sleep(REFRESH_GAP);
                }
            })?;
        Ok(())
    }

    /// Stamps again, once [`SWEEP_EVERY`] changes passed, every entry that
    /// no change since its stamp touched (its directory's names, its
    /// inode: what `Now::holds_for_name` looks at) and that is older than
    /// that: a client checks an answer against the changes since its
    /// stamp, at most the log's records, so an entry nothing touched would
    /// otherwise be void once the mount made that many changes elsewhere.
    /// One pass over the log's records and the table's entries; `false` if
    /// it is due but could not run (no moment without a change in
    /// progress).
    fn sweep(&self, store: &Store) -> bool {
        if self.held.lock().unswept < SWEEP_EVERY {
            return true;
        }
        // Every change up to `now` ended: its record is written.
        let Some(now) = quiet_stamp(store) else {
            return false;
        };
        let from = now.saturating_sub(RECORDS as u64 - 1).max(1);
        let Some((global, last)) = store.touches_since(from, now) else {
            return false;
        };
        // Under the lock, which every writer and every change's scrub
        // takes: an entry a later change scrubbed or a writer replaced is
        // not the one found here (`Table::restamp` looks).
        let mut held = self.held.lock();
        held.unswept = 0;
        let touched = |ino: Ino, stamp: u64| last.get(&ino).is_some_and(|&g| g > stamp);
        for (i, w) in held.by_entry.iter().enumerate() {
            let Some(w) = w else {
                continue;
            };
            let Some(p) = self
                .table
                .find(w.parent, &held.names[i])
                .filter(|p| p.index == i)
            else {
                continue;
            };
            let young = p.stamp + SWEEP_EVERY > now;
            if young || p.stamp < from || global > p.stamp {
                continue;
            }
            if !touched(w.parent, p.stamp) && (p.ino == 0 || !touched(p.ino, p.stamp)) {
                self.table.restamp(&p, now);
            }
        }
        true
    }

    /// Publishes again the names the changes since the last pass voided;
    /// `false` if a change began meanwhile (what it may have kept from
    /// being written waits for the next pass).
    fn refresh(&self, store: &Store) -> bool {
        let mut stale = std::mem::take(&mut self.held.lock().stale);
        stale.sort_unstable();
        stale.dedup();
        let names: Vec<(Ino, Box<[u8]>)> = {
            let held = self.held.lock();
            let mut entries: Vec<u32> = stale
                .iter()
                .flat_map(|ino| {
                    let by_ino = held.by_ino.get(ino).into_iter().flatten();
                    by_ino.chain(held.by_parent.get(ino).into_iter().flatten())
                })
                .copied()
                .collect();
            entries.sort_unstable();
            entries.dedup();
            entries
                .into_iter()
                .filter_map(|i| {
                    let w = held.by_entry[i as usize]?;
                    Some((w.parent, held.names[i as usize].clone()))
                })
                .collect()
        };
        let mut interrupted = false;
        for (parent, name) in names {
            // After the change that voided it: a quiet stamp.
            let stamp = quiet_stamp(store);
            if let Some(stamp) = stamp {
                match store.lookup(&Creds::root(), parent, &name) {
                    Ok(attr) => self.publish(store, (parent, &name), &attr, stamp, None),
                    Err(inode_store::Errno::ENOENT) => {
                        self.publish_absent(store, (parent, &name), stamp)
                    }
                    Err(_) => {}
                }
            }
            interrupted |= !stamp.is_some_and(|s| store.still_quiet(s));
        }
        if interrupted {
            self.held.lock().stale.append(&mut stale);
        }
        !interrupted
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
