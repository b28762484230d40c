//! A directory opened and listed ahead of the call that will open it (see
//! `dir`: a walk's next directory): an `OpenList` posted on a channel like
//! a `close`'s release (`posted`), served by the daemon while the process
//! still works on the directory before, its answer read with the answers
//! the channel owes. The open that asks for that very directory by the
//! same base, path and flags then takes the handle and the first batch
//! instead of a round trip, if the batch is still in the bulk area (no
//! other use of the area since) and still true (the caller checks its
//! stamp, see [`Chan::take_ahead`]); any other open closes it again.

use proto::ops::{self, OpenList, OpenListOut, Release};

use super::posted::others_busy;
use super::*;

/// Longest path (relative to its base) a listing ahead is asked for by.
const AHEAD_PATH_MAX: usize = 256;

/// The base of a key whose base is known by its inode number only (the
/// daemon's handles count from 1, far below).
const NO_HANDLE: u64 = u64::MAX;

/// What an open must ask for to take a listing made ahead: the same path,
/// flags and kind of listing, relative to the same base: the same handle,
/// or another of the same directory (`fts` reopens a directory by `..` on
/// its way back up, a new handle each time). Also where an `OpenList` is
/// sent (the base's handle and the path).
#[derive(Clone, Copy)]
pub(crate) struct AheadKey {
    base: u64,
    /// The base's inode number (0: unknown; the handle must match).
    base_ino: u64,
    /// For a directory listed ahead by another path than the key's own
    /// (`in_dir`): the directory its last name must have been found in.
    found_in: u64,
    flags: u32,
    plus: u32,
    len: usize,
    path: [u8; AHEAD_PATH_MAX],
}

impl PartialEq for AheadKey {
    fn eq(&self, other: &AheadKey) -> bool {
        (self.base == other.base || (self.base_ino != 0 && self.base_ino == other.base_ino))
            && self.flags == other.flags
            && self.plus == other.plus
            && self.path() == other.path()
    }
}

impl AheadKey {
    /// The key of an `OpenList` of `path` (a trailing `/` left out)
    /// relative to handle `base` of directory `base_ino` (0: unknown);
    /// `None` if the path is too long to be one.
    pub(crate) fn new(
        (base, base_ino): (u64, u64),
        path: &[u8],
        flags: u32,
        plus: u32,
    ) -> Option<AheadKey> {
        AheadKey::joined((base, base_ino), &[path], flags, plus)
    }

    /// [`AheadKey::new`] of `parts` joined by `/`.
    pub(crate) fn joined(
        (base, base_ino): (u64, u64),
        parts: &[&[u8]],
        flags: u32,
        plus: u32,
    ) -> Option<AheadKey> {
        let mut key = AheadKey {
            base,
            base_ino,
            found_in: 0,
            flags,
            plus,
            len: 0,
            path: [0; AHEAD_PATH_MAX],
        };
        for part in parts
            .iter()
            .map(|p| crate::path::trim_slashes(p))
            .filter(|p| !p.is_empty())
        {
            let sep = usize::from(key.len > 0);
            let end = key.len + sep + part.len();
            let room = key.path.get_mut(key.len..end)?;
            room[..sep].copy_from_slice(&b"/"[..sep]);
            room[sep..].copy_from_slice(part);
            key.len = end;
        }
        Some(key)
    }

    /// [`AheadKey::new`] of `name` in a directory known by its inode
    /// number only (listed ahead by another path: taken only if the name
    /// was found in that directory).
    pub(crate) fn in_dir(dir_ino: u64, name: &[u8], flags: u32, plus: u32) -> Option<AheadKey> {
        let key = AheadKey::new((NO_HANDLE, dir_ino), name, flags, plus)?;
        Some(AheadKey {
            found_in: dir_ino,
            ..key
        })
    }

    /// The path the directory is asked for by.
    pub(crate) fn path(&self) -> &[u8] {
        &self.path[..self.len]
    }
}

/// A channel's listing ahead (at most one).
#[derive(Clone, Copy)]
pub(super) enum Ahead {
    None,
    /// Posted as request `seq` at `at` (monotonic ns); its answer not
    /// read yet.
    Pending {
        key: AheadKey,
        seq: u32,
        at: u64,
    },
    /// Answered: the directory is open (`out.open.fh`); its first batch is
    /// in the bulk area while `in_bulk`.
    Ready {
        key: AheadKey,
        out: OpenListOut,
        in_bulk: bool,
        at: u64,
    },
}

/// Age past which a listing ahead is not taken: the daemon found that
/// listing it left the directory's atime as it was, which relatime's day
/// rule may change later (a change to the directory voids it anyway).
const AHEAD_TAKEN_WITHIN_NS: u64 = 1_000_000_000;

impl Ahead {
    /// The request number of the answer still owed, if any.
    pub(super) fn pending_seq(&self) -> Option<u32> {
        match *self {
            Ahead::Pending { seq, .. } => Some(seq),
            _ => None,
        }
    }

    /// Takes the answer to the pending request (its decoded reply: a
    /// failed open leaves nothing); `in_bulk`: no request was sent after
    /// it (whose answer may fill the bulk area).
    pub(super) fn answered(&mut self, reply: Option<OpenListOut>, in_bulk: bool) {
        if let Ahead::Pending { key, at, .. } = *self {
            *self = match reply {
                Some(out) => Ahead::Ready {
                    key,
                    out,
                    in_bulk,
                    at,
                },
                None => Ahead::None,
            };
        }
    }

    /// Notes that the bulk area is used for something else.
    pub(super) fn bulk_reused(&mut self) {
        if let Ahead::Ready { in_bulk, .. } = self {
            *in_bulk = false;
        }
    }
}

impl Chan {
    /// Opens and lists ahead, by the path and base of `via`, the directory
    /// an open will ask for as `key` says, a first batch of at most `max`
    /// bytes of plain records (as `OpenList` asks): posted, so the caller
    /// goes on at once. Only on a channel the daemon answered, holding no
    /// listing ahead, while no other thread of the process is in a call
    /// (its answers would wait behind this one). Whether it was posted.
    pub(crate) fn post_ahead(&mut self, key: &AheadKey, via: &AheadKey, max: u64) -> bool {
        if !self.live() {
            return false;
        }
        let conn = self.conn();
        if !matches!(conn.ahead, Ahead::None)
            || !conn.confirmed
            || self.slot.owed.load(Ordering::Relaxed) >= posted::MAX_OWED
            || others_busy(self.mount, self.slot)
        {
            return false;
        }
        let req = OpenList {
            base: via.base,
            max,
            plus: key.plus,
            flags: key.flags | ops::LIST_AHEAD,
        };
        let Some(seq) = self.send_posted(&req, via.path()) else {
            return false;
        };
        self.conn().ahead = Ahead::Pending {
            key: *key,
            seq,
            at: sys::monotonic_ns(),
        };
        true
    }

    /// Whether this channel holds a listing ahead (answered or not).
    pub(crate) fn holds_ahead(&mut self) -> bool {
        self.live() && !matches!(self.conn().ahead, Ahead::None)
    }

    /// The open and first batch made ahead for `key` (`None`: for no
    /// open), if this channel holds them, recently made, their batch still
    /// in the bulk area, their directory's last name found where `key`
    /// says, and `holds` says they are still true; any other listing ahead
    /// is released (the directory closed again). Waits for the answer if
    /// it is still owed.
    pub(crate) fn take_ahead(
        &mut self,
        key: Option<&AheadKey>,
        holds: impl FnOnce(&OpenListOut) -> bool,
    ) -> Option<OpenListOut> {
        if !self.live() {
            return None;
        }
        if matches!(self.conn().ahead, Ahead::Pending { .. }) {
            self.settle(0).ok()?;
        }
        let Ahead::Ready {
            key: made_for,
            out,
            in_bulk,
            at,
        } = core::mem::replace(&mut self.conn().ahead, Ahead::None)
        else {
            return None;
        };
        let taken = key.is_some_and(|k| made_for == *k)
            && in_bulk
            && (made_for.found_in == 0 || out.open.dir == made_for.found_in)
            && sys::monotonic_ns().saturating_sub(at) < AHEAD_TAKEN_WITHIN_NS
            && holds(&out);
        if taken {
            return Some(out);
        }
        let _ = self.post(&Release { fh: out.open.fh });
        None
    }

    /// Closes again a listing ahead whose batch the bulk area no longer
    /// holds (no open can take it): after a call, so that a process that
    /// opens no further directory does not keep it open.
    pub(super) fn release_spent_ahead(&mut self) {
        if self.live() && matches!(self.conn().ahead, Ahead::Ready { in_bulk: false, .. }) {
            self.take_ahead(None, |_| false);
        }
    }

    /// Before the bulk area is written or read for another request: the
    /// answer owed to a listing ahead is read first (the daemon writes its
    /// batch there), and the batch counts as gone. `false` if the channel
    /// failed meanwhile.
    pub(super) fn bulk_for_another(&mut self) -> bool {
        if !self.live()
            || (matches!(self.conn().ahead, Ahead::Pending { .. }) && self.settle(0).is_err())
        {
            return false;
        }
        self.conn().ahead.bulk_reused();
        true
    }
}
