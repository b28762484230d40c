//! Opens, `stat`s and `readlink`s from the public table
//! (`proto::public`): a process that has not connected to a mount's
//! daemon opens a small file everyone may read, or learns the attributes
//! of a published name or that a name is absent, without connecting, from the answers the daemon published in its
//! generation page's file (`run_dir/dev-MAJOR-MINOR.page`), mapped
//! read-only here on first use. `cat`, a compiler reading a header, a
//! script reading its configuration: processes that make a handful of
//! calls, for whom connecting (~300 µs) cost more than all of them.
//!
//! Each name of the path is looked up in the table from the mount's root
//! and must still hold under the page's change generation, as any stamped
//! answer must (`metacache::Now::holds_for_name`); the mapped page also
//! serves as the mount's generation for the process's other caches until
//! a channel brings it. The open file gets a handle number of its own
//! ([`TABLE_FH`] set) and the file's bytes, kept as an open's first bytes
//! are (`opendata`): its reads and `fstat`s are answered as any open's
//! are while nothing changes, and the first call that needs the daemon
//! opens the file there by inode number and the entry's token
//! (`ops::daemon_handle`).
//!
//! While it has such a file open the process holds the page's file locked
//! shared (`flock`): the daemon then keeps a published file that loses its
//! last name, as an open file keeps its inode, so that it can still be
//! opened by number (`fs_core::public` in the daemon).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use proto::public::{Published, Table, FILE_LEN, LAYOUT, OFFSET, TOKEN_BITS};
use proto::{GenPage, WireAttr};

use crate::metacache::Now;
use crate::state::{self, TableRt, NO_TABLE};
use crate::sys;

/// The bit of a handle number that says the file was opened from the
/// table (the daemon's handles are counters far below it). Below it, a
/// count of this process's opens from the table (each open's number is
/// its own) above the entry's token ([`token`]).
pub(crate) const TABLE_FH: u64 = 1 << 63;

/// The token of the table's entry a file was opened from, in its handle
/// number (see [`TABLE_FH`]): what `OpenInode` asks with.
pub(crate) fn token(fh: u64) -> u64 {
    fh & ((1 << TOKEN_BITS) - 1)
}

/// The inode number of a mount's root.
const ROOT_INO: u64 = 1;

/// Seconds after which the daemon updates a read file's atime (relatime).
const ATIME_DAY: i64 = 24 * 60 * 60;

/// Whether this process ever opened a page file.
#[link_section = ".data.btfuse_hot"]
static OPENED: AtomicBool = AtomicBool::new(false);

/// Opens from the table so far (counted in their handle numbers, see
/// [`TABLE_FH`]).
#[link_section = ".data.btfuse_hot"]
static NEXT_FH: AtomicU64 = AtomicU64::new(1);

/// Whether a call on a path relative to `base` (a handle; 0: the mount's
/// root, the only base the table knows) asks `mount`'s table before the
/// daemon: only in a process with no channel to the mount (one that has
/// one asks it).
fn consulted(mount: usize, base: u64) -> bool {
    base == 0 && !crate::channel::in_use(mount)
}

/// Whether `mount`'s table answers a call on a path relative to `base`
/// before the daemon (it is consulted, mapped, and its daemon lives): such
/// a process does nothing else that would connect before the table has
/// had its say (a sibling prefetch, say).
pub(crate) fn answers(mount: usize, base: u64) -> bool {
    table(mount, base).is_some()
}

/// `mount`'s table and its generation now, for a path relative to
/// `base` when the table is [`consulted`], the table mapped on first use;
/// `None` if there is none or its daemon is gone.
fn table(mount: usize, base: u64) -> Option<(&'static Table, Now)> {
    if !consulted(mount, base) {
        return None;
    }
    let rt = &state::MOUNTS[mount].table;
    if rt.base.load(Ordering::Acquire).is_null() {
        map(rt, mount);
    }
    let page = state::table_page(mount)?;
    // A daemon that is gone, or one whose file holds no table of this
    // library's layout (another version, or no room for it).
    if !page.daemon_alive() || page.layout.load(Ordering::Acquire) != LAYOUT {
        return None;
    }
    // SAFETY: the table lies at OFFSET in the mapping the page starts
    // (`state::table_page`), FILE_LEN bytes, never unmapped.
    let table = unsafe {
        &*(page as *const GenPage)
            .cast::<u8>()
            .add(OFFSET)
            .cast::<Table>()
    };
    // Acquire: a change the daemon began before (one whose call returned
    // in another process) is seen.
    let now = Now::new(page.begun.load(Ordering::Acquire), Some(&page.log));
    Some((table, now))
}

/// Maps `mount`'s page file into `rt`, once.
fn map(rt: &TableRt, mount: usize) {
    let mapped = open_page(mount).and_then(|fd| {
        let p = sys::sc!(
            libc::SYS_mmap,
            0usize,
            FILE_LEN,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0
        );
        if p.is_err() {
            sys::close(fd);
        }
        Some((p.ok()? as *mut u8, fd))
    });
    // The descriptor first, kept unless another thread's is there: a
    // thread that sees the mapping finds a descriptor to lock on.
    if let Some((_, fd)) = mapped {
        if rt
            .fd
            .compare_exchange(0, fd + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            sys::close(fd);
        }
    }
    let p = mapped.map_or(NO_TABLE, |(p, _)| p);
    let won = rt
        .base
        .compare_exchange(
            core::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok();
    if let (Some((p, _)), false) = (mapped, won) {
        // Another thread mapped it first.
        // SAFETY: our own mapping, published nowhere.
        unsafe { sys::munmap(p.cast(), FILE_LEN) };
    }
}

/// Opens `mount`'s page file (at least [`FILE_LEN`] bytes long), on a
/// high fd number.
fn open_page(mount: usize) -> Option<i32> {
    let m = &state::table().mounts()[mount];
    let mut name = [0u8; 32];
    let n = proto::page_name(m.major, m.minor, &mut name);
    let mut path = [0u8; 320];
    let path = state::run_dir_file(&name[..n], &mut path)?;
    let fd = sys::open(path, libc::O_RDONLY | libc::O_CLOEXEC).ok()?;
    OPENED.store(true, Ordering::Relaxed);
    // A file only its owner may read is for processes of the daemon's
    // user and group only (the mount's owner; root may read it, but may not
    // use an owner's mount), as the daemon admits them (`access`).
    let ours = |st: &libc::stat| {
        // SAFETY: plain calls without arguments.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        st.st_mode & 0o004 != 0 || (st.st_uid == uid && st.st_gid == gid)
    };
    let usable = sys::fstat(fd).is_ok_and(|st| st.st_size as usize >= FILE_LEN && ours(&st));
    if !usable {
        sys::close(fd);
        return None;
    }
    Some(crate::channel::move_high(fd))
}

/// The published answer for `path` (relative to `mount`'s root, no
/// `..`), if every name of it up to the answer still holds at `now`: the
/// entry of its last name, or of the first name that is absent (`ino` 0:
/// the path names nothing). Each name checked against every change the
/// log holds since its stamp, the answer is the store's at `now.gen`
/// too: the callers stamp it so (an older stamp would void the open
/// file's bytes and attributes at its first read or `fstat`, which look
/// at fewer changes, `Now::holds_for`).
fn lookup(t: &Table, now: &Now, path: &[u8]) -> Option<Published> {
    let mut parent = ROOT_INO;
    let mut last: Option<Published> = None;
    for name in path.split(|&b| b == b'/').filter(|n| !n.is_empty()) {
        if name == b".." || last.is_some_and(|p| !is_dir(&p)) {
            return None;
        }
        // `dir/.` is `dir` (a directory, checked above): a compiler
        // `stat`s its working directory so.
        if name == b"." {
            continue;
        }
        let p = t.find(parent, name)?;
        if !now.holds_for_name(p.stamp, parent, p.ino) {
            return None;
        }
        if p.ino == 0 {
            return Some(p);
        }
        parent = p.ino;
        last = Some(p);
    }
    let last = last?;
    // A trailing slash names a directory only.
    (!path.ends_with(b"/") || is_dir(&last)).then_some(last)
}

fn is_dir(p: &Published) -> bool {
    p.attr.mode & libc::S_IFMT == libc::S_IFDIR
}

/// The attributes of `path` (relative to `mount`'s root) from the table,
/// as a `Stat` reply would give them (stamped; absent, with the
/// directory it is missing from; a published name is a directory or a
/// regular file, so following or not is the same).
pub(crate) fn stat(mount: usize, base: u64, path: &[u8]) -> Option<proto::ops::StatOut> {
    let (table, now) = table(mount, base)?;
    let p = lookup(table, &now, path)?;
    crate::metacache::count_table();
    Some(proto::ops::StatOut {
        attr: p.attr,
        stamp: now.gen,
        absent: if p.ino == 0 { libc::ENOENT as u32 } else { 0 },
        _pad: 0,
        dir: p.parent,
    })
}

/// What `readlink` of `path` answers from the table: the table publishes
/// no link, so what it shows there is not one (`EINVAL`), or nothing is
/// there (`ENOENT`).
pub(crate) fn readlink(mount: usize, base: u64, path: &[u8]) -> Option<i32> {
    let out = stat(mount, base, path)?;
    Some(if out.absent != 0 {
        libc::ENOENT
    } else {
        libc::EINVAL
    })
}

/// A file opened read-only from the table.
pub(crate) struct Opened {
    /// Its handle number (see [`TABLE_FH`]).
    pub(crate) fh: u64,
    pub(crate) attr: WireAttr,
    pub(crate) stamp: u64,
    /// Its bytes, at the start of the room the caller gave.
    pub(crate) len: usize,
}

/// A read-only open of `path` (relative to `mount`'s root) from the
/// table, its bytes read into the room `room()` gives, asked for only
/// once the table holds the file (all of its bytes: a file whose bytes do
/// not fit, or no room, is not opened here; the caller makes the fd), or
/// the `errno` the table answers (`ENOENT`). `None` when the table does
/// not answer (the call then goes to the daemon as before).
pub(crate) fn open<'b>(
    mount: usize,
    base: u64,
    path: &[u8],
    room: impl FnOnce() -> Option<&'b mut [u8]>,
) -> Option<Result<Opened, i32>> {
    let (t, now) = table(mount, base)?;
    if lookup(t, &now, path)?.ino == 0 {
        crate::metacache::count_table();
        return Some(Err(libc::ENOENT));
    }
    // A file: looked up again once the lock is held, under the generation
    // read then (see the module docs): a change that began before the
    // lock was taken, an unlink that let the file go, voids the answer.
    if !hold_lock(mount) {
        return None;
    }
    let Some((table, now)) = table(mount, base) else {
        closed(mount);
        return None;
    };
    let found = lookup(table, &now, path).filter(|p| {
        p.attr.mode & libc::S_IFMT == libc::S_IFREG
            && p.data_len.is_some()
            // A read now would not update the atime (relatime's day).
            && sys::wall_secs().saturating_sub(p.attr.atime) < ATIME_DAY
    });
    let got = found.and_then(|p| Some((p, table.read_data(&p, 0, room()?)?)));
    let Some((p, len)) = got.filter(|(p, n)| Some(*n) == p.data_len && p.token != 0) else {
        closed(mount);
        return None;
    };
    let opens = NEXT_FH.fetch_add(1, Ordering::Relaxed) & ((1 << (63 - TOKEN_BITS)) - 1);
    let fh = TABLE_FH | opens << TOKEN_BITS | p.token;
    crate::metacache::count_table();
    Some(Ok(Opened {
        fh,
        attr: p.attr,
        stamp: now.gen,
        len,
    }))
}

/// [`TableRt::open`] while a thread takes or drops the lock (the count
/// below it is the one before).
const MOVING: u32 = 1 << 31;
/// Spins for a lock moving in another thread (or in the code a signal
/// handler interrupted) before giving up.
const SPINS: u32 = 10_000;

/// Takes the page file's lock shared for a file about to be opened from
/// the table (counted in [`TableRt::open`]); `false` if it cannot.
fn hold_lock(mount: usize) -> bool {
    count(mount, true)
}

/// A file opened from the table was closed, or opened at the daemon
/// instead: the lock goes with the last one. (If this very call was
/// interrupted mid-move, by a signal handler closing a file, the lock
/// stays held until the process ends, which only keeps unlinked
/// published files a little longer.)
pub(crate) fn closed(mount: usize) {
    count(mount, false);
}

/// Counts one file open from the table more (`up`) or less, taking the
/// lock at the first and dropping it with the last; `false` if the count
/// could not move (the lock not taken, or another thread's move never
/// ended).
fn count(mount: usize, up: bool) -> bool {
    let rt = &state::MOUNTS[mount].table;
    // The count at which the lock moves.
    let edge = u32::from(!up);
    for _ in 0..SPINS {
        let n = rt.open.load(Ordering::Acquire);
        if n & MOVING != 0 {
            core::hint::spin_loop();
            continue;
        }
        if n != edge {
            let next = if up { n + 1 } else { n.saturating_sub(1) };
            if rt
                .open
                .compare_exchange(n, next, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
            continue;
        }
        if rt
            .open
            .compare_exchange(edge, MOVING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let held = match up {
                true => lock_fd(rt, mount).is_some_and(|fd| {
                    sys::sc!(libc::SYS_flock, fd, libc::LOCK_SH | libc::LOCK_NB).is_ok()
                }),
                false => {
                    let fd = rt.fd.load(Ordering::Relaxed) - 1;
                    let _ = sys::sc!(libc::SYS_flock, fd, libc::LOCK_UN);
                    false
                }
            };
            rt.open.store(u32::from(held), Ordering::Release);
            return held || !up;
        }
    }
    false
}

/// The descriptor this process locks the page file on: its own open of
/// it (a child's inherited one is its parent's, see [`after_fork`]).
fn lock_fd(rt: &TableRt, mount: usize) -> Option<i32> {
    let fd = rt.fd.load(Ordering::Relaxed) - 1;
    if fd >= 0 {
        return Some(fd);
    }
    let fd = open_page(mount)?;
    match rt
        .fd
        .compare_exchange(0, fd + 1, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => Some(fd),
        Err(other) => {
            sys::close(fd);
            Some(other - 1)
        }
    }
}

/// `fork`'s child handler: the page file's descriptor the child inherited
/// shares its lock with the parent's (`flock` locks an open file
/// description), so the child makes its own at its first open from the
/// table. (The parent's files from the table were handed to the kernel
/// before the fork: none is the child's.)
pub(crate) fn after_fork() {
    // A process that never opened a page file: nothing to look at (a
    // preloaded shell's children run this before their `exec`).
    if !OPENED.load(Ordering::Relaxed) {
        return;
    }
    for rt in state::MOUNTS.all() {
        let fd = rt.table.fd.load(Ordering::Relaxed) - 1;
        if fd >= 0 {
            sys::close(fd);
            rt.table.fd.store(0, Ordering::Relaxed);
            rt.table.open.store(0, Ordering::Relaxed);
        }
    }
}
