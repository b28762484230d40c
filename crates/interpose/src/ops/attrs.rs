//! Attribute replies in libc's shapes: `stat`, `statx`, `statfs`,
//! `statvfs`, and the `SetAttr` requests of chmod, chown, truncate, utimens.

use super::*;
use core::sync::atomic::fence;

use crate::fdtable::Ofd;
use crate::metacache::Stamp;

/// The cache's form of a `stat` (`nofollow`: `lstat`).
fn how(nofollow: bool) -> u64 {
    if nofollow {
        metacache::NOFOLLOW
    } else {
        metacache::FOLLOW
    }
}

/// `stat` of a path (`nofollow`: `lstat`), from the cache while the
/// daemon's generation says the answer holds (see `metacache`); `raw`:
/// the absolute path the caller wrote, if `t` was resolved from it, to
/// keep the answer under too (see [`stat_abs`]).
pub(crate) fn stat_path(t: &Target, nofollow: bool, raw: Option<&AbsPath>) -> R<WireAttr> {
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW as u32
    } else {
        0
    };
    let key = metacache::Key {
        mount: t.mount,
        base: t.base,
        path: t.rel(),
        how: how(nofollow),
    };
    let raw = raw.map(|r| metacache::Key {
        mount: t.mount,
        base: r.base,
        path: r.bytes(),
        how: key.how,
    });
    // A miss the table may answer connects for nothing more.
    let prefetch = || !public::answers(t.mount, t.base) && siblings::on_miss(t);
    cached(&key, t.base_ino(), raw.as_ref(), prefetch, || {
        // A process with no channel yet: the public table first.
        if let Some(out) = public::stat(t.mount, t.base, t.rel()) {
            return Ok(out);
        }
        let stat = ops::Stat {
            base: t.base,
            flags,
            _pad: 0,
        };
        request(t.mount, &stat, t.rel(), b"")
    })
}

/// `fstatat(dirfd, name)` (`nofollow`: with `AT_SYMLINK_NOFOLLOW`) of a
/// plain name in a fast-path directory whose listing the process keeps:
/// the listing's answer, with the mount's index, without resolving a path.
/// A walk (`find`, `du`, `rm -r`, `chmod -R`: fts) stats every name it
/// read relative to the directory's fd; through the full resolution each
/// cost a copy of the name into a path buffer, the path's components
/// checked and the listing found by its key (99 ns a name, hot, against
/// 265 on tmpfs). `None` for anything else (a name with a `/`, `.` or
/// `..`, an fd that is not a directory of this process's credentials, a
/// name the listing does not answer): the full path takes it, and answers
/// exactly as this would have.
pub(crate) fn stat_listed(
    dirfd: c_int,
    p: *const c_char,
    nofollow: bool,
) -> Option<(usize, metacache::Answer)> {
    if dirfd < 0
        || !listcache::in_use()
        || !FDS.is_ours(dirfd)
        || !state::ready(super::fork::register_handlers)
    {
        return None;
    }
    let mut copy = [MaybeUninit::<u8>::uninit(); libc::NAME_MAX as usize + 1];
    let name = uaccess::strncpy_from_user(&mut copy, p).ok()?;
    if matches!(name, b"" | b"." | b"..") || name.contains(&b'/') {
        return None;
    }
    let r = FDS.get(dirfd)?;
    let o = FDS.ofd(r.idx);
    let found = (o.epoch.load(Ordering::Relaxed) == state::epoch() && o.is_dir())
        .then(|| {
            let mount = o.mount.load(Ordering::Relaxed) as usize;
            let key = metacache::Key {
                mount,
                base: o.handle.load(Ordering::Relaxed),
                path: name,
                how: how(nofollow),
            };
            let now = channel::now(mount)?;
            listcache::lookup(&key, o.ino.load(Ordering::Relaxed), now).map(|a| (mount, a))
        })
        .flatten();
    put(r);
    if found.is_some() {
        metacache::count(true);
    }
    found
}

/// Keeps an open's attributes in its new OFD (not yet installed), as the
/// answer of an `fstat` while nothing changes on the mount (`stamp`, 0:
/// not to be kept). In the OFD, which the open has just written, rather
/// than in the cache, whose entry would be a cold line (measured: +0.2 µs
/// on an open+read+close loop that never asks).
pub(crate) fn keep_open_attr(o: &Ofd, attr: &WireAttr, stamp: u64) {
    for (slot, w) in o.attr.iter().zip(metacache::attr_words(attr)) {
        slot.store(w, Ordering::Relaxed);
    }
    o.attr_stamp.store(stamp, Ordering::Relaxed);
}

/// [`Ofd::attr_stamp`] while a thread rewrites the attributes.
const REWRITING: u64 = u64::MAX;

/// Replaces an installed OFD's attributes with newer ones (those a read's
/// reply brought, `stamp` 0: none), unless another thread is at it: a read
/// updates the atime, which is a change, so without this the end of a file
/// just read was asked of the daemon again. A seqlock on
/// [`Ofd::attr_stamp`]: [`open_attr`] takes nothing written meanwhile.
pub(crate) fn renew_open_attr(o: &Ofd, attr: &WireAttr, stamp: u64) {
    let old = o.attr_stamp.load(Ordering::Relaxed);
    if stamp == 0 || old == REWRITING || stamp <= old {
        return;
    }
    if o.attr_stamp
        .compare_exchange(old, REWRITING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // Release fence: `REWRITING` is visible before any new word.
    fence(Ordering::Release);
    for (slot, w) in o.attr.iter().zip(metacache::attr_words(attr)) {
        slot.store(w, Ordering::Relaxed);
    }
    // Release: the words are visible before the new stamp.
    o.attr_stamp.store(stamp, Ordering::Release);
}

/// The attributes an open file's open (or a later read) returned, if no
/// change since touched them (then they are its attributes now).
pub(crate) fn open_attr(f: &FileRef) -> Option<WireAttr> {
    let o = f.ofd();
    // Acquire: the words read below are at least as new as this stamp.
    let stamp = o.attr_stamp.load(Ordering::Acquire);
    if stamp == 0 || stamp == REWRITING {
        return None;
    }
    let words = core::array::from_fn(|i| o.attr[i].load(Ordering::Relaxed));
    // Acquire fence: the words are read before the stamp is checked again.
    fence(Ordering::Acquire);
    if o.attr_stamp.load(Ordering::Relaxed) != stamp {
        return None;
    }
    let attr = metacache::attr_of_words(words);
    channel::now(f.mount)
        .filter(|n| n.holds_for(stamp, attr.ino))
        .map(|_| attr)
}

/// `fstat` of an open file: [`open_attr`] (a `cat`, a compiler, python
/// `fstat` every file right after opening it), else [`stat_handle`].
pub(crate) fn stat_file(f: &FileRef) -> R<WireAttr> {
    open_attr(f).map_or_else(|| stat_handle(f.mount, f.fh()?), Ok)
}

/// `fstat` of a handle, from the cache while it holds.
pub(crate) fn stat_handle(mount: usize, fh: u64) -> R<WireAttr> {
    cached(
        &metacache::Key::fstat(mount, fh),
        0,
        None,
        || false,
        || request(mount, &ops::Fstat { fh }, b"", b""),
    )
}

/// The answer the process was given for `key` and still holds at the
/// mount's generation `now` (`base_ino`: the inode number of the key's
/// base, 0 if unknown): in a listing of its directory (looked at first: a
/// walk's every name is there, and a miss costs one bucket), or kept in
/// the cache by its exact key.
pub(crate) fn known(
    key: &metacache::Key<'_>,
    base_ino: u64,
    now: metacache::Now,
) -> Option<metacache::Answer> {
    listcache::lookup(key, base_ino, now).or_else(|| metacache::lookup(key, now))
}

/// The answer for `key`: the cached one if it still holds, else (if
/// `prefetch` brought nothing for it) `ask`'s, kept (also under `also`)
/// if the daemon stamped it (a missing name too).
fn cached(
    key: &metacache::Key<'_>,
    base_ino: u64,
    also: Option<&metacache::Key<'_>>,
    prefetch: impl FnOnce() -> bool,
    ask: impl FnOnce() -> R<ops::StatOut>,
) -> R<WireAttr> {
    // The table keeps answers under absolute strings only; a relative one
    // is remembered by its directory (`listcache::note_raw_dir`).
    let spare = also.filter(|k| k.base == metacache::RAW);
    let hit = || {
        let (a, from, g) = kept_answer(key, base_ino)?;
        match from {
            // Found by the resolved path: next time by the string, through
            // the listing's directory (see `listcache::lookup_raw`) or the
            // cache's entry for it.
            Kept::Listing { dir_ino } => {
                if let Some(k) = also {
                    listcache::note_raw_dir(k.base, k.path, key.mount, dir_ino, g);
                }
            }
            Kept::Entry => {
                if let Some(k) = spare {
                    // Known to hold at `g`, for a directory not told here.
                    keep(k, &a, Stamp { gen: g, dir: 0 }, true);
                }
            }
        }
        metacache::count(true);
        Some(a)
    };
    if let Some(a) = hit().or_else(|| prefetch().then(hit).flatten()) {
        return a.map_err(Fail::Errno);
    }
    let out = ask()?;
    metacache::count(false);
    let answer = match out.absent {
        0 => Ok(out.attr),
        _ => Err(libc::ENOENT),
    };
    let stamp = Stamp {
        gen: out.stamp,
        dir: out.dir,
    };
    keep(key, &answer, stamp, false);
    if let Some(k) = spare {
        keep(k, &answer, stamp, true);
    }
    answer.map_err(Fail::Errno)
}

/// Where a kept answer came from.
enum Kept {
    /// A listing of the directory of inode number `dir_ino`.
    Listing { dir_ino: u64 },
    /// The cache's entry for the key.
    Entry,
}

/// The answer the listings or the cache keep for `key` (`base_ino`: its
/// base's inode number, 0 if unknown), if it still holds now, with where
/// it came from and the mount's generation it holds at.
fn kept_answer(key: &metacache::Key<'_>, base_ino: u64) -> Option<(metacache::Answer, Kept, u64)> {
    let now = channel::now(key.mount)?;
    let g = now.gen;
    match listcache::lookup_hit(key, base_ino, now) {
        Some(hit) => Some((
            hit.answer,
            Kept::Listing {
                dir_ino: hit.dir_ino,
            },
            g,
        )),
        None => Some((metacache::lookup(key, now)?, Kept::Entry, g)),
    }
}

/// Whether the caches know, still holding now, that `t` names nothing
/// (its directory's whole listing lacks the name, or a `stat` of it found
/// nothing): an open of it that does not create then fails with `ENOENT`
/// too, with no round trip. A compiler looks for each header in the
/// source's directory before the `-I` ones, and `git` for files it may
/// have: a negative dentry answers them through the kernel, a round trip
/// each through the fast path before.
pub(crate) fn known_absent(t: &Target) -> bool {
    let key = metacache::Key {
        mount: t.mount,
        base: t.base,
        path: t.rel(),
        how: how(true),
    };
    let absent = matches!(
        kept_answer(&key, t.base_ino()),
        Some((Err(libc::ENOENT), ..))
    );
    if absent {
        metacache::count(true);
    }
    absent
}

/// Keeps `answer` under `k` (for `stat` too if it answers that), as the
/// daemon's answer `stamp` says; a `spare` (a second key of an answer
/// kept already) displaces nothing as new.
fn keep(k: &metacache::Key<'_>, answer: &metacache::Answer, stamp: Stamp, spare: bool) {
    let k = metacache::Key {
        how: metacache::reuse(k.how, answer),
        ..*k
    };
    match spare {
        false => metacache::insert(&k, answer, stamp),
        true => metacache::insert_spare(&k, answer, stamp),
    }
}

/// An absolute path as the caller passed it, copied once (NUL-terminated):
/// the key of the cache's entries by path string, and what the library
/// resolves on a miss (so the key is exactly what was resolved).
pub(crate) struct AbsPath {
    buf: [u8; metacache::KEY_MAX + 1],
    len: usize,
    /// `metacache::RAW` for an absolute path, [`cwd_base`] for one
    /// relative to the cwd.
    base: u64,
}

/// The raw base of a path string relative to the cwd: never a handle (the
/// daemon counts those up from 1) nor `metacache::RAW`, and another after
/// every chdir (the hooks count them: `state::cwd_epoch`), so a string
/// kept relative to one cwd never answers for another. The cwd's path may
/// change meanwhile (a rename of one of its directories): which inode a
/// relative path names does not.
fn cwd_base() -> u64 {
    1 << 63 | (state::cwd_epoch() & (u64::MAX >> 2))
}

impl AbsPath {
    /// The path, without its NUL.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The copy as a C string.
    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

/// What the cache of path strings says about `stat` of `p`.
// `Miss` carries the copied path: it lives on the stack for one call.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Abs {
    /// The answer, for this mount.
    Hit(usize, R<WireAttr>),
    /// Not cached: resolve this copy of the path, and keep the answer
    /// under it too.
    Miss(AbsPath),
    /// Not an absolute path the cache can hold (or no cache yet).
    No,
}

/// Looks `stat` (`nofollow`: `lstat`) of the caller's path `p`, relative
/// to `d`, up by its string, before any resolution: a hot loop of
/// `stat("/mnt/...")` costs a copy, a hash and a compare. The mount table
/// is fixed for the process image until it changes its root or mount
/// namespace (then no string is looked up: see `crate::namespace`), so an
/// absolute string names the same mount path for as long as the entry's
/// generation holds. So does a string relative to a cwd on a mount, while
/// the cwd is the same (no chdir: see [`cwd_base`]), if no `..` can take
/// it above the cwd: `git status` lstats its index's paths relative to the
/// top of its work tree.
pub(crate) fn stat_abs(d: c_int, p: *const c_char, nofollow: bool) -> Abs {
    // Nothing kept yet: nothing can hit, and no answer is kept under the
    // string either (a listing's hits keep theirs, or their directory's
    // string: the next call by the string then hits).
    if p.is_null() || !(metacache::in_use() || listcache::in_use()) || state::paths_by_kernel() {
        return Abs::No;
    }
    let mut copy = [MaybeUninit::<u8>::uninit(); metacache::KEY_MAX + 1 + 7];
    let Ok(padded) = uaccess::strncpy_padded(&mut copy, p) else {
        return Abs::No;
    };
    let path = padded.path();
    let (base, cwd_mount) = match path.first() {
        Some(b'/') => (metacache::RAW, None),
        Some(_) if d == libc::AT_FDCWD && path.contains(&b'/') => {
            match (super::cwd::kept_mount(), Comps::new(path, b"").has_dotdot()) {
                (Some(m), false) => (cwd_base(), Some(m)),
                _ => return Abs::No,
            }
        }
        _ => return Abs::No,
    };
    let key = metacache::Key {
        mount: 0,
        base,
        path,
        how: how(nofollow),
    };
    // A listed name, through its directory's listing; another, by its own
    // entry (see `listcache::lookup_raw`; absolute strings only).
    let found = listcache::lookup_raw(base, padded, key.how, channel::now)
        .filter(|(m, _)| cwd_mount.is_none_or(|c| c == *m))
        .map(|(m, hit)| (hit.answer, m))
        .or_else(|| {
            (base == metacache::RAW)
                .then(|| metacache::lookup_with(&key, channel::now))
                .flatten()
        });
    if let Some((a, m)) = found {
        metacache::count(true);
        return Abs::Hit(m, a.map_err(Fail::Errno));
    }
    let mut raw = AbsPath {
        buf: [0; metacache::KEY_MAX + 1],
        len: path.len(),
        base,
    };
    raw.buf[..path.len()].copy_from_slice(path);
    Abs::Miss(raw)
}

/// The caller's buffer could not be written.
fn efault(_: uaccess::Fault) -> Fail {
    Fail::Errno(libc::EFAULT)
}

/// Fills the caller's `struct stat` (same layout as `stat64` on 64-bit
/// glibc); `EFAULT` when it cannot be written.
pub(crate) fn fill_stat(st: *mut libc::stat, a: &WireAttr, dev: u64) -> R<()> {
    // SAFETY: all-zero is a valid stat; `st` is the caller's buffer.
    let mut s: libc::stat = unsafe { core::mem::zeroed() };
    s.st_dev = dev;
    s.st_ino = a.ino;
    s.st_nlink = a.nlink as _;
    s.st_mode = a.mode;
    s.st_uid = a.uid;
    s.st_gid = a.gid;
    s.st_rdev = a.rdev as u64;
    s.st_size = a.size as i64;
    s.st_blksize = a.blksize as _;
    s.st_blocks = a.blocks as i64;
    s.st_atime = a.atime;
    s.st_atime_nsec = a.atime_nsec as _;
    s.st_mtime = a.mtime;
    s.st_mtime_nsec = a.mtime_nsec as _;
    s.st_ctime = a.ctime;
    s.st_ctime_nsec = a.ctime_nsec as _;
    uaccess::write_val(st, &s).map_err(efault)
}

/// Fills a `struct statx` the way the kernel does for a FUSE file: the
/// basic stats, the mount id, no birth time, no attributes; `EFAULT` when
/// the caller's buffer cannot be written.
pub(crate) fn fill_statx(stx: *mut libc::statx, a: &WireAttr, mount: usize) -> R<()> {
    let t = state::table();
    let m = &t.mounts()[mount];
    // SAFETY: all-zero is a valid statx.
    let mut x: libc::statx = unsafe { core::mem::zeroed() };
    x.stx_mask = libc::STATX_BASIC_STATS | libc::STATX_MNT_ID;
    x.stx_blksize = a.blksize;
    x.stx_attributes = 0;
    x.stx_nlink = a.nlink;
    x.stx_uid = a.uid;
    x.stx_gid = a.gid;
    x.stx_mode = a.mode as u16;
    x.stx_ino = a.ino;
    x.stx_size = a.size;
    x.stx_blocks = a.blocks;
    x.stx_atime.tv_sec = a.atime;
    x.stx_atime.tv_nsec = a.atime_nsec;
    x.stx_mtime.tv_sec = a.mtime;
    x.stx_mtime.tv_nsec = a.mtime_nsec;
    x.stx_ctime.tv_sec = a.ctime;
    x.stx_ctime.tv_nsec = a.ctime_nsec;
    x.stx_rdev_major = (a.rdev >> 8) & 0xfff;
    x.stx_rdev_minor = (a.rdev & 0xff) | ((a.rdev >> 12) & 0xfff00);
    x.stx_dev_major = m.major;
    x.stx_dev_minor = m.minor;
    x.stx_mnt_id = m.id as u64;
    uaccess::write_val(stx, &x).map_err(efault)
}

/// glibc's `struct statfs` on 64-bit Linux (the libc crate hides
/// `f_flags`): ten words, then four spare.
#[repr(C)]
pub(crate) struct StatFs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}
const _: () = assert!(size_of::<StatFs>() == size_of::<libc::statfs>());

/// `statfs` of a mount, as the kernel reports it for a FUSE mount.
/// Where a `statfs` applies: a path (relative to base handle `base`, 0 =
/// the mount root) or, with an empty path, the open handle `base`.
pub(crate) struct FsOf<'a> {
    pub(crate) mount: usize,
    pub(crate) base: u64,
    pub(crate) rel: &'a [u8],
}

impl<'a> FsOf<'a> {
    /// The file system of a resolved path.
    pub(crate) fn path(t: &'a Target) -> FsOf<'a> {
        FsOf {
            mount: t.mount,
            base: t.base,
            rel: t.rel(),
        }
    }

    /// The file system of an open fast-path file.
    pub(crate) fn file(f: &FileRef) -> R<FsOf<'static>> {
        Ok(FsOf {
            mount: f.mount,
            base: f.fh()?,
            rel: b"",
        })
    }
}

/// One round trip: the daemon checks the path (or handle) and answers its
/// file system's totals.
fn statfs_of(at: &FsOf<'_>) -> R<StatFs> {
    let mount = at.mount;
    let s: WireStatFs = request(mount, &ops::Statfs { base: at.base }, at.rel, b"")?.statfs;
    Ok(StatFs {
        f_type: 0x6573_5546, // FUSE_SUPER_MAGIC
        f_bsize: s.bsize as i64,
        f_blocks: s.blocks,
        f_bfree: s.bfree,
        f_bavail: s.bavail,
        f_files: s.files,
        f_ffree: s.ffree,
        f_fsid: [0; 2],
        f_namelen: s.namelen as i64,
        f_frsize: s.frsize as i64,
        f_flags: state::table().mounts()[mount].st_flags as i64,
        f_spare: [0; 4],
    })
}

/// `statfs` of a mount into the caller's buffer (`EFAULT` when it cannot
/// be written, as the kernel's).
pub(crate) fn statfs(at: &FsOf<'_>, out: *mut libc::statfs) -> R<()> {
    let f = statfs_of(at)?;
    uaccess::write_val(out.cast::<StatFs>(), &f).map_err(efault)
}

/// `statvfs` of a mount, converted from `statfs` exactly as glibc's
/// `__internal_statvfs` does (`statvfs64` has the same layout on the
/// 64-bit targets). Written with a plain store, as glibc writes it: a bad
/// buffer crashes the caller with or without the library.
pub(crate) fn statvfs(at: &FsOf<'_>, out: *mut libc::statvfs) -> R<()> {
    const ST_VALID: i64 = 0x20;
    let f = statfs_of(at)?;
    // SAFETY: all-zero is a valid statvfs (spare fields included).
    let mut v: libc::statvfs = unsafe { core::mem::zeroed() };
    v.f_bsize = f.f_bsize as _;
    v.f_frsize = if f.f_frsize != 0 {
        f.f_frsize
    } else {
        f.f_bsize
    } as _;
    v.f_blocks = f.f_blocks as _;
    v.f_bfree = f.f_bfree as _;
    v.f_bavail = f.f_bavail as _;
    v.f_files = f.f_files as _;
    v.f_ffree = f.f_ffree as _;
    v.f_favail = f.f_ffree as _;
    v.f_fsid = f.f_fsid[0] as u32 as _;
    v.f_namemax = f.f_namelen as _;
    v.f_flag = (f.f_flags & !ST_VALID) as _;
    // SAFETY: the caller's valid, writable statvfs buffer.
    unsafe { out.write_unaligned(v) };
    Ok(())
}

/// `SetAttr` on a path or (with `t == None`) on handle `fh`.
pub(crate) fn setattr(
    mount: usize,
    t: Option<&Target>,
    fh: u64,
    nofollow: bool,
    s: &SetAttrReq,
) -> R<()> {
    let (flags, base, rel): (u32, u64, &[u8]) = match t {
        Some(t) => (
            if nofollow {
                libc::AT_SYMLINK_NOFOLLOW as u32
            } else {
                0
            },
            t.base,
            t.rel(),
        ),
        None => (libc::AT_EMPTY_PATH as u32, fh, b""),
    };
    let set = ops::SetAttr {
        base,
        flags,
        _pad: 0,
        set: *s,
    };
    request(mount, &set, rel, b"").map(drop)
}

/// Builds a `SetAttrReq` from a `utimensat` times array.
pub(crate) fn times_req(times: *const libc::timespec) -> R<SetAttrReq> {
    let mut s = SetAttrReq::default();
    if times.is_null() {
        s.valid = proto::set::ATIME_NOW | proto::set::MTIME_NOW;
        return Ok(s);
    }
    let [a, m] = uaccess::read_val(times.cast::<[libc::timespec; 2]>())
        .map_err(|_| Fail::Errno(libc::EFAULT))?;
    for (ts, set, now, sec, nsec) in [
        (
            a,
            proto::set::ATIME,
            proto::set::ATIME_NOW,
            &mut s.atime,
            &mut s.atime_nsec,
        ),
        (
            m,
            proto::set::MTIME,
            proto::set::MTIME_NOW,
            &mut s.mtime,
            &mut s.mtime_nsec,
        ),
    ] {
        match ts.tv_nsec {
            libc::UTIME_OMIT => {}
            libc::UTIME_NOW => s.valid |= now,
            n if (0..1_000_000_000).contains(&n) => {
                s.valid |= set;
                *sec = ts.tv_sec;
                *nsec = n as u32;
            }
            _ => return Err(Fail::Errno(libc::EINVAL)),
        }
    }
    Ok(s)
}
