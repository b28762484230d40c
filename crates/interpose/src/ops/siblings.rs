//! Sibling prefetch: the attributes of a directory's entries, in one round
//! trip, for a process that stats them one by one.
//!
//! `git status` lstats every file of its index, `find -exec stat {} +` and
//! `xargs stat` every name they are given, `make` its prerequisites: names
//! of one directory after another, in name order. In a fresh process each
//! is a cache miss and a round trip. After [`STREAK`] misses in a row under
//! one directory the library lists that directory with attributes (a few
//! hundred entries per round trip, going on from where its last listing of
//! it stopped), so the names that follow are answered from the cache.
//!
//! A listing tells the process only what it could learn by asking: it is
//! opened with the process's credentials (no read permission, no prefetch:
//! the stat itself goes on as before), and its entries are kept under the
//! listing's stamp by the cache's usual rules (`listing::keep`), so a
//! change anywhere after the listing voids them.

use core::sync::atomic::{AtomicU64, Ordering};

use proto::ops::{Open, OpenOut, Readdir};

use crate::channel;
use crate::listing::{self, Named};

use super::{release, request, Target};

/// Directories followed at once (by the hash of their key).
const SLOTS: usize = 64;
/// Misses in a row under one directory that start a listing of it.
const STREAK: u64 = 2;
/// Bytes of plain records (header and name) asked for per listing: some
/// 500 entries of short names.
const BATCH: u64 = 16 * 1024;

/// The directory a slot follows (its key's hash; 0: none).
static DIR: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Its state: misses since its last listing (low 16 bits) and the cookie
/// its next listing starts from (the rest; [`DONE`] once listed to the end).
static STATE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

const MISSES: u64 = 0xFFFF;
const DONE: u64 = u64::MAX >> 16;

/// Called on a cache miss of `stat` of `t`: lists `t`'s directory into the
/// cache if the misses say a walk of it is going on. Whether it did (the
/// caller then looks in the cache again). Races between threads only cost
/// a listing more or less: every entry kept is stamped.
pub(crate) fn on_miss(t: &Target) -> bool {
    let rel = t.rel();
    let parent = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => &rel[..i],
        None => &rel[..0],
    };
    let h = key_hash(t.mount, t.base, parent);
    let i = (h as usize) % SLOTS;
    // Relaxed: a hint, see above.
    if DIR[i].load(Ordering::Relaxed) != h {
        DIR[i].store(h, Ordering::Relaxed);
        STATE[i].store(1, Ordering::Relaxed);
        return false;
    }
    let state = STATE[i].load(Ordering::Relaxed);
    let (misses, cookie) = ((state & MISSES) + 1, state >> 16);
    if cookie == DONE || misses < STREAK {
        STATE[i].store(cookie << 16 | misses.min(MISSES), Ordering::Relaxed);
        return false;
    }
    let next = list(t.mount, t.base, parent, cookie);
    STATE[i].store(next.unwrap_or(DONE) << 16, Ordering::Relaxed);
    next.is_some()
}

/// One listing of directory `dir` (relative to `base`) from `cookie` into
/// the cache; the cookie to go on from ([`DONE`] at the end), `None` if
/// the directory cannot be listed.
///
/// The entries are kept by path only if nothing changed between the open
/// and the listing (the path may have stopped naming the directory). The
/// first listing of a directory changed since it was last listed changes
/// something itself (its atime, relatime), so a second try then lists
/// under the open's stamp.
fn list(mount: usize, base: u64, dir: &[u8], cookie: u64) -> Option<u64> {
    let open = Open {
        base,
        flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
        mode: 0,
    };
    let path: &[u8] = if dir.is_empty() { b"." } else { dir };
    let mut tries = 0;
    loop {
        tries += 1;
        let OpenOut { fh, stamp, .. } = request(mount, &open, path, b"").ok()?;
        let listed = read_into_cache(mount, fh, Named::new(base, dir, stamp).as_ref(), cookie);
        release(mount, fh);
        match listed {
            Some((next, kept)) if kept || tries == 2 => return Some(next),
            Some(_) => continue,
            None => return None,
        }
    }
}

/// A `Readdir` with attributes of handle `fh` from `cookie`, its entries
/// kept in the cache as answers for `named`'s paths; the next cookie, and
/// whether they were kept (nothing changed since `named` was opened).
fn read_into_cache(
    mount: usize,
    fh: u64,
    named: Option<&Named>,
    cookie: u64,
) -> Option<(u64, bool)> {
    let mut ch = channel::acquire(mount).ok()?;
    let (bulk, blen) = ch.bulk();
    let list = Readdir {
        fh,
        cookie,
        max: BATCH.min(blen as u64),
        plus: 1,
        _pad: 0,
    };
    let mut reply = [0u8; channel::REPLY_BUF];
    let (out, _) = ch.call(&list, b"", b"", &mut reply).ok()?;
    // SAFETY: the bulk area is ours for this round trip (we hold the
    // channel) and `blen` bytes long.
    let records = unsafe { core::slice::from_raw_parts(bulk.cast_const(), blen) };
    let records = &records[..(out.bytes as usize).min(blen)];
    let mut next = cookie;
    for e in listing::records(records, true) {
        listing::keep(mount, None, named, &e, out.stamp);
        next = e.header.next;
    }
    let kept = out.stamp != 0 && named.is_some_and(|n| n.stamp() == out.stamp);
    let next = if out.eof == 1 || next == cookie {
        DONE
    } else {
        next
    };
    Some((next, kept))
}

/// FNV-1a of the directory's key (never 0, the empty slot).
fn key_hash(mount: usize, base: u64, dir: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let words = [mount as u64, base];
    for b in words
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .chain(dir.iter().copied())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}
