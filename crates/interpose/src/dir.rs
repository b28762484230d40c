//! Our own `DIR` streams for fast-path directories, from a fixed pool
//! (recognised by address), filled in batches by `proto::ops::Readdir`.

use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use proto::ops::{Failure, OpenList, OpenListOut, Readdir, ReaddirOut};
use proto::DirEntryHeader;

use crate::channel::{self, AheadKey, CallError, REPLY_BUF};
use crate::listcache;
use crate::listing::{self, Named};
use crate::metacache;
use crate::ops::{self, Fail, R};
use crate::path;
use crate::walk;

/// Open fast-path directory streams at once.
const NDIRS: usize = 256;
/// Bytes of raw entries buffered per stream (one round trip fills it).
const DIRBUF: usize = 16 * 1024;

pub(crate) struct OurDir {
    fd: i32,
    /// The handle an `OpenList` of this stream opened (0: none), and the
    /// generation its first batch holds under (0: none).
    opened_fh: u64,
    opened_stamp: u64,
    /// The daemon said the buffered entries are the last ones.
    last: bool,
    /// The path the stream was opened by, if known.
    named: Option<Named>,
    cookie: u64,
    eof: bool,
    pos: usize,
    len: usize,
    ent: libc::dirent64,
    buf: [u8; DIRBUF],
}

struct DirSlot {
    busy: AtomicBool,
    d: UnsafeCell<OurDir>,
}

// SAFETY: a slot's `d` is used only by its owner (busy CAS) and, as with
// any DIR, by one thread at a time.
unsafe impl Sync for DirSlot {}

static DIRS: [DirSlot; NDIRS] = [const {
    DirSlot {
        busy: AtomicBool::new(false),
        d: UnsafeCell::new(OurDir {
            // Zero (not -1) keeps the 4 MiB pool in .bss: no file-backed pages.
            fd: 0,
            opened_fh: 0,
            opened_stamp: 0,
            last: false,
            named: None,
            cookie: 0,
            eof: false,
            pos: 0,
            len: 0,
            ent: libc::dirent64 {
                d_ino: 0,
                d_off: 0,
                d_reclen: 0,
                d_type: 0,
                d_name: [0; 256],
            },
            buf: [0; DIRBUF],
        }),
    }
}; NDIRS];

/// Whether a listing made ahead (`out`) still answers an open of `mount`
/// now: its open stamped, and since then no change to which directory its
/// path names (a directory moved, or made unsearchable) and, since the
/// listing, none to the directory's names or the attributes it lists.
fn ahead_holds(mount: usize, out: &OpenListOut) -> bool {
    let (opened, listed) = (out.open.stamp, out.list.stamp);
    let listed = if listed == 0 { opened } else { listed };
    opened != 0
        && channel::now(mount).is_some_and(|now| {
            now.paths_hold(opened) && now.listing_holds(listed, out.open.attr.ino)
        })
}

/// What a walk needs of a directory's first batch (see
/// `OurDir::first_batch`).
struct FirstBatch<'a> {
    /// The first subdirectory listed.
    first_subdir: Option<&'a [u8]>,
    /// The parent's inode number, from `..`.
    parent: Option<u64>,
}

/// The listing-cache slot of the last listing a stream kept with
/// attributes ([`NONE_KEPT`]: none since the last check).
static LAST_KEPT: AtomicUsize = AtomicUsize::new(NONE_KEPT);
const NONE_KEPT: usize = usize::MAX;

/// Our stream at `p`, if `p` is one.
pub(crate) fn ours(p: *mut libc::DIR) -> Option<&'static mut OurDir> {
    let a = p as usize;
    let start = DIRS.as_ptr() as usize;
    let end = start + size_of::<[DirSlot; NDIRS]>();
    if a < start || a >= end {
        return None;
    }
    let i = (a - start) / size_of::<DirSlot>();
    let s = &DIRS[i];
    if s.d.get() as usize != a || !s.busy.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: a live stream; the program uses a DIR from one thread at a time.
    Some(unsafe { &mut *s.d.get() })
}

/// A new stream over fast-path directory fd `fd` (owned by the stream),
/// opened by the path `named` if known.
pub(crate) fn new_stream(fd: i32, named: Option<Named>) -> Option<*mut libc::DIR> {
    for s in DIRS.iter() {
        if !s.busy.load(Ordering::Relaxed)
            && s.busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: we own the slot now.
            let d = unsafe { &mut *s.d.get() };
            d.fd = fd;
            d.opened_fh = 0;
            d.opened_stamp = 0;
            d.last = false;
            d.named = named;
            d.cookie = 0;
            d.eof = false;
            d.pos = 0;
            d.len = 0;
            return Some(s.d.get().cast());
        }
    }
    None
}

/// `opendir` of `t`: the open and the first batch in one round trip
/// (`OpenList`); the new stream owns the new fd.
pub(crate) fn open(t: &ops::Target) -> R<*mut libc::DIR> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    opened_stream(t, flags).map(|d| (d as *mut OurDir).cast())
}

/// A new stream of `t` opened with `flags` and its first batch.
fn opened_stream(t: &ops::Target, flags: c_int) -> R<&'static mut OurDir> {
    let p = new_stream(-1, None).ok_or(Fail::Errno(libc::EMFILE))?;
    // SAFETY: a stream `new_stream` just gave us, not yet the program's.
    let d = unsafe { &mut *p.cast::<OurDir>() };
    match d.open_listed(t, flags) {
        Ok(()) => Ok(d),
        Err(e) => {
            free(d);
            Err(e)
        }
    }
}

/// Whether this process lists directories it opened itself (`openat`,
/// then `fdopendir`: `find`, `du`, `rm -r`, `cp -r`, every walk built on
/// fts): its plain directory opens then bring their first batch along
/// ([`open_for_listing`]).
#[link_section = ".data.btfuse_hot"]
static WALKS: AtomicBool = AtomicBool::new(false);

/// The stream an [`open_for_listing`] made for its fd, until `fdopendir`
/// takes it; one per process (another such open frees it).
#[link_section = ".data.btfuse_hot"]
static PENDING: AtomicPtr<OurDir> = AtomicPtr::new(core::ptr::null_mut());

/// Whether `openat(…, flags)` of a directory is worth [`open_for_listing`]:
/// a plain read-only directory open in a process that walks.
pub(crate) fn lists_on_open(flags: c_int) -> bool {
    let plain = libc::O_DIRECTORY
        | libc::O_CLOEXEC
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_NOCTTY
        | libc::O_LARGEFILE
        | libc::O_NOATIME;
    // Relaxed: a hint; either answer is correct.
    WALKS.load(Ordering::Relaxed)
        && flags & libc::O_DIRECTORY != 0
        && flags & libc::O_ACCMODE == libc::O_RDONLY
        && flags & !plain == 0
}

/// `openat` of directory `t` with `flags` (see [`lists_on_open`]) and its
/// first batch in one round trip: the fd, whose stream `fdopendir` then
/// takes ([`take_pending`]) instead of asking again.
pub(crate) fn open_for_listing(t: &ops::Target, flags: c_int) -> R<c_int> {
    let d = opened_stream(t, flags)?;
    let fd = d.fd;
    if let Some(old) = pending_stream(PENDING.swap(d, Ordering::AcqRel)) {
        free(old);
    }
    Ok(fd)
}

/// The stream [`open_for_listing`] made, as the stream of `fd`, if `fd`
/// is that open's file (or a dup of it) and nothing changed on the mount
/// since its first batch was listed: a listing must show what was there
/// when `fdopendir` was called.
pub(crate) fn take_pending(fd: c_int) -> Option<*mut libc::DIR> {
    if !WALKS.load(Ordering::Relaxed) {
        WALKS.store(true, Ordering::Relaxed);
    }
    let d = pending_stream(PENDING.swap(core::ptr::null_mut(), Ordering::AcqRel))?;
    let holds = match ops::file(fd) {
        Some(Ok(f)) => {
            f.handle == d.opened_fh
                && d.opened_stamp != 0
                && channel::generation(f.mount) == Some(d.opened_stamp)
        }
        _ => false,
    };
    if !holds {
        free(d);
        return None;
    }
    d.fd = fd;
    Some((d as *mut OurDir).cast())
}

/// The stream a [`PENDING`] pointer is.
fn pending_stream(p: *mut OurDir) -> Option<&'static mut OurDir> {
    // SAFETY: PENDING holds null or a stream of DIRS that only the thread
    // that swapped it out uses (the program never saw it).
    (!p.is_null()).then(|| unsafe { &mut *p })
}

/// Frees a stream (its fd is closed by the caller).
pub(crate) fn free(d: &mut OurDir) {
    let p = d as *mut OurDir as usize;
    d.fd = -1;
    for s in DIRS.iter() {
        if s.d.get() as usize == p {
            s.busy.store(false, Ordering::Release);
        }
    }
}

impl OurDir {
    pub(crate) fn fd(&self) -> i32 {
        self.fd
    }

    pub(crate) fn rewind(&mut self) {
        self.seek(0);
    }

    pub(crate) fn seek(&mut self, cookie: u64) {
        self.cookie = cookie;
        self.eof = false;
        self.last = false;
        self.pos = 0;
        self.len = 0;
    }

    pub(crate) fn tell(&self) -> u64 {
        self.cookie
    }

    /// Opens `t` with `flags` into this new stream, with its first batch.
    fn open_listed(&mut self, t: &ops::Target, flags: c_int) -> R<()> {
        // The process's last listing kept with attributes answered no
        // `stat` since: it lists without stat-ing what it lists.
        let last = LAST_KEPT.swap(NONE_KEPT, Ordering::Relaxed);
        if last != NONE_KEPT && listcache::unanswered(last) {
            metacache::listings_went_unused();
        }
        let with_attrs = metacache::listings_want_attrs();
        let (plus, sent_flags) = (
            u32::from(with_attrs),
            (flags & (libc::O_NOFOLLOW | libc::O_NOATIME)) as u32,
        );
        let mut ch = channel::acquire(t.mount)?;
        let made_ahead = match ch.holds_ahead() {
            true => {
                let key = AheadKey::new((t.base, t.base_ino()), t.rel(), sent_flags, plus);
                let taken = ch.take_ahead(key.as_ref(), |out| ahead_holds(t.mount, out));
                walk::guessed(taken.is_some());
                taken
            }
            false => None,
        };
        let out = match made_ahead {
            Some(out) => out,
            None => {
                let (_, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
                let req = OpenList {
                    base: t.base,
                    max: DIRBUF.min(blen) as u64,
                    plus,
                    flags: sent_flags,
                };
                let mut reply = [0u8; REPLY_BUF];
                let (out, _): (OpenListOut, _) = ch.call(&req, t.rel(), b"", &mut reply)?;
                out
            }
        };
        self.named = Named::new(t.base, t.rel(), out.open.stamp);
        let records = ch.bulk_reply(out.list.bytes);
        self.accept(records, &out.list, with_attrs, t.mount, out.open.attr.ino);
        let name = path::last_name(path::trim_slashes(t.rel()));
        let batch = self.first_batch();
        self.remember_subdirs(out.open.attr.ino, name, &batch);
        if walk::guessing() {
            if let Some((key, via)) = self.next_in_walk(t, &out, (sent_flags, plus), &batch) {
                ch.post_ahead(&key, &via, DIRBUF as u64);
            }
        }
        drop(ch);
        self.fd = ops::install_opened(t, flags, &out.open)?;
        self.opened_fh = out.open.fh;
        // The listing's own stamp comes after its atime update, if any.
        self.opened_stamp = match out.list.stamp {
            0 => out.open.stamp,
            s => s,
        };
        Ok(())
    }

    /// The directory a walk that just opened `t` (`out`) most likely opens
    /// next, as it will ask for it, and the path and base it is listed
    /// ahead by: the same, but for a walk by fds going on in a directory
    /// above this one, known by its inode number only: relative to the
    /// handle just opened (`../../name` for a subdirectory of the
    /// directory two levels up).
    ///
    /// Next is its first subdirectory, else the subdirectory after it in
    /// its parent, or after its parent in its grandparent, and so on (see
    /// `walk`). A process that opens the directories it lists itself
    /// (fts: `find`, `du`) opens each relative to its parent's fd (any
    /// handle of that directory); another (`ls -R`, `git`, python) names
    /// them by paths relative to the same base as this one.
    fn next_in_walk(
        &self,
        t: &ops::Target,
        out: &OpenListOut,
        (flags, plus): (u32, u32),
        batch: &FirstBatch<'_>,
    ) -> Option<(AheadKey, AheadKey)> {
        let by_fd = WALKS.load(Ordering::Relaxed);
        let here = (out.open.fh, out.open.attr.ino);
        let rel = path::trim_slashes(t.rel());
        if let Some(child) = batch.first_subdir {
            let key = match by_fd {
                true => AheadKey::new(here, child, flags, plus)?,
                false => AheadKey::joined((t.base, t.base_ino()), &[rel, child], flags, plus)?,
            };
            return Some((key, key));
        }
        let me = path::last_name(rel);
        if me.is_empty() || me == b"." || me == b".." {
            return None;
        }
        let mut name = [0u8; libc::NAME_MAX as usize];
        let (len, dir, up) = walk::next_after(batch.parent?, me, &mut name)?;
        let name = &name[..len];
        // Up one more level than the directory it is in, from this one:
        // taken only if the name is found in `dir` (`in_dir`).
        const UP: &[u8] = b"../../../../../../";
        let key = match by_fd {
            true => {
                let via = AheadKey::joined(here, &[UP.get(..3 * (up + 1))?, name], flags, plus)?;
                return Some((AheadKey::in_dir(dir, name, flags, plus)?, via));
            }
            false => {
                // This one's path without its last `up + 1` names.
                let mut prefix = rel;
                for _ in 0..=up {
                    if prefix.is_empty() {
                        return None;
                    }
                    prefix = path::split_last(prefix).0;
                }
                AheadKey::joined((t.base, t.base_ino()), &[prefix, name], flags, plus)?
            }
        };
        Some((key, key))
    }

    /// Remembers the subdirectories in the first batch (`batch`, see
    /// `walk`), and that this directory is entry `name` of its parent
    /// (empty: unknown).
    fn remember_subdirs(&self, ino: u64, name: &[u8], batch: &FirstBatch<'_>) {
        if batch.first_subdir.is_some() {
            let parent = batch.parent.unwrap_or(0);
            walk::remember(ino, (parent, name), self.subdirs());
        }
    }

    /// What a walk needs of the first batch, read in one pass: its first
    /// subdirectory and, from its `..`, the parent's inode number.
    fn first_batch(&self) -> FirstBatch<'_> {
        let mut batch = FirstBatch {
            first_subdir: None,
            parent: None,
        };
        for (i, (name, ino, kind)) in self.buffered().enumerate() {
            match name {
                // `.` and `..` come first in a listing.
                b".." if i < 2 => batch.parent = Some(ino),
                b"." | b".." => {}
                _ if kind == libc::DT_DIR => {
                    batch.first_subdir = Some(name);
                    break;
                }
                _ => {}
            }
        }
        batch
    }

    /// The plain records buffered, in order: name, inode number, type.
    fn buffered(&self) -> impl Iterator<Item = (&[u8], u64, u8)> {
        let hl = size_of::<DirEntryHeader>();
        let mut at = self.pos;
        core::iter::from_fn(move || {
            let rec = self.buf.get(at..self.len)?;
            let e = proto::decode::<DirEntryHeader>(rec)?;
            let name = rec.get(hl..hl + e.name_len as usize)?;
            at += DirEntryHeader::record_len(name.len());
            Some((name, e.ino, e.kind))
        })
    }

    /// The subdirectories in the first batch, in order.
    fn subdirs(&self) -> impl Iterator<Item = &[u8]> {
        self.buffered()
            .filter(|&(name, _, kind)| kind == libc::DT_DIR && name != b"." && name != b"..")
            .map(|(name, _, _)| name)
    }

    fn fill(&mut self) -> R<()> {
        let f = match ops::file(self.fd) {
            Some(f) => f?,
            None => return Err(Fail::Errno(libc::EBADF)),
        };
        let fh = f.fh()?;
        let mut ch = channel::acquire(f.mount).map_err(|_| Fail::Errno(libc::EIO))?;
        let (_, blen) = ch.bulk().map_err(|_| Fail::Errno(libc::EIO))?;
        // A readdirplus once the process stats what it lists: the entries'
        // attributes go to the cache, where the `fstatat(dirfd, name)` that
        // usually follows finds them.
        let with_attrs = metacache::listings_want_attrs();
        let list = Readdir {
            fh,
            cookie: self.cookie,
            max: DIRBUF.min(blen) as u64,
            plus: u32::from(with_attrs),
            _pad: 0,
        };
        let mut reply = [0u8; REPLY_BUF];
        let out: ReaddirOut = match ch.call(&list, b"", b"", &mut reply) {
            Ok((out, _)) => out,
            // Like glibc's readdir: a directory removed while open (ENOENT)
            // is simply at its end, as POSIX requires.
            Err(CallError::Failed(Failure::Errno(libc::ENOENT))) => {
                self.eof = true;
                self.len = 0;
                return Ok(());
            }
            Err(CallError::Chan(_)) => return Err(Fail::Errno(libc::EIO)),
            Err(e) => return Err(e.into()),
        };
        let ino = f.ofd().ino.load(Ordering::Relaxed);
        let first = self.cookie == 0;
        self.accept(ch.bulk_reply(out.bytes), &out, with_attrs, f.mount, ino);
        if first {
            let batch = self.first_batch();
            self.remember_subdirs(ino, b"", &batch);
        }
        // A batch with nothing we could take ends the stream.
        self.eof |= self.len == 0;
        Ok(())
    }

    /// Takes the batch `records` of directory `ino` of `mount` that a
    /// listing gave (`out`), keeping their attributes in the listing cache.
    fn accept(
        &mut self,
        records: &[u8],
        out: &ReaddirOut,
        with_attrs: bool,
        mount: usize,
        ino: u64,
    ) {
        if with_attrs {
            let (start, named) = (self.cookie == 0, self.named.as_ref());
            let part = (start, start && out.eof == 1);
            let kept = listing::keep(mount, Some(ino), named, records, out.stamp, part);
            // A listing of no names (an empty directory's) answers no `stat`
            // whatever the process does: it says nothing of its habits.
            let names =
                || listing::records(records, true).any(|e| e.name != b"." && e.name != b"..");
            if let Some(s) = kept.filter(|_| names()) {
                LAST_KEPT.store(s, Ordering::Relaxed);
            }
        }
        let (n, all) = self.take(records, with_attrs);
        // The last batch saves the round trip that would find nothing more.
        self.last = out.eof == 1 && all == out.entries;
        self.pos = 0;
        self.len = n;
        self.eof = n == 0 && out.eof == 1;
    }

    /// Copies the records of a listing (header, attributes if
    /// `with_attrs`, name) into our buffer as plain records (header, name);
    /// returns the bytes used and the entries taken. The daemon sends no
    /// more than our buffer holds once the attributes are taken out
    /// (`Readdir::max`).
    fn take(&mut self, records: &[u8], with_attrs: bool) -> (usize, u64) {
        let hl = size_of::<DirEntryHeader>();
        let (mut n, mut taken) = (0usize, 0u64);
        for e in listing::records(records, with_attrs) {
            let nl = e.name.len();
            let plain = DirEntryHeader::record_len(nl);
            if n + plain > DIRBUF {
                break;
            }
            self.buf[n..n + hl].copy_from_slice(proto::bytes_of(&e.header));
            self.buf[n + hl..n + hl + nl].copy_from_slice(e.name);
            self.buf[n + hl + nl..n + plain].fill(0);
            n += plain;
            taken += 1;
        }
        (n, taken)
    }

    /// The next entry, `Ok(None)` at the end.
    pub(crate) fn next(&mut self) -> R<Option<*mut libc::dirent64>> {
        // The daemon may fill more of the bulk area than our buffer holds:
        // we keep whole records only and continue from the last cookie.
        let (e, nl) = loop {
            if self.pos >= self.len {
                if self.eof || self.last {
                    return Ok(None);
                }
                self.fill()?;
                if self.eof {
                    return Ok(None);
                }
            }
            let rec = &self.buf[self.pos..self.len];
            let hl = size_of::<DirEntryHeader>();
            match proto::decode::<DirEntryHeader>(rec) {
                Some(e) if hl + e.name_len as usize <= rec.len() => {
                    let nl = e.name_len as usize;
                    if nl == 0 || nl > 255 {
                        return Err(Fail::Errno(libc::EIO));
                    }
                    break (e, nl);
                }
                // A record cut by our buffer's end: refill from the cookie.
                _ => self.pos = self.len,
            }
        };
        let rec = &self.buf[self.pos..self.len];
        let rl = DirEntryHeader::record_len(nl);
        let name = &rec[size_of::<DirEntryHeader>()..size_of::<DirEntryHeader>() + nl];
        self.ent.d_ino = e.ino;
        self.ent.d_off = e.next as i64;
        self.ent.d_type = e.kind;
        // offsetof(d_name) = 19; the kernel rounds reclen up to 8.
        self.ent.d_reclen = ((19 + nl + 1 + 7) & !7) as u16;
        for (d, &s) in self.ent.d_name.iter_mut().zip(name) {
            *d = s as libc::c_char;
        }
        self.ent.d_name[nl] = 0;
        self.cookie = e.next;
        self.pos += rl.min(rec.len());
        Ok(Some(&mut self.ent))
    }
}
