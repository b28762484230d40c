//! Conversions between fuser's types and the store's, and the replies
//! built from store results.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileType, INodeNo, ReplyAttr, ReplyEmpty, ReplyXattr, Request, TimeOrNow,
};
use inode_store::{self as store, Attr, Creds, FileKind, TimeSet, Timespec};

use crate::creds;

use super::adapter::TTL;

/// The caller's credentials (see `creds::for_caller`).
pub(super) fn caller(req: &Request) -> Creds {
    creds::for_caller(req.uid(), req.gid(), req.pid())
}

/// The caller with its real capabilities even for uid 0 (a `/proc` read).
pub(super) fn caller_exact(req: &Request) -> Creds {
    creds::for_caller_exact(req.uid(), req.gid(), req.pid())
}

/// The store's error as fuser's.
pub(super) fn errno(e: store::Errno) -> Errno {
    Errno::from_i32(e.0)
}

/// Replies with success or the error.
pub(super) fn empty(reply: ReplyEmpty, result: store::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

/// Replies with attributes (cached for [`TTL`]) or the error.
pub(super) fn attr_reply(reply: ReplyAttr, result: store::Result<Attr>) {
    match result {
        Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
        Err(e) => reply.error(errno(e)),
    }
}

/// xattr replies: the size alone when the caller probes with `size == 0`.
pub(super) fn xattr_reply(reply: ReplyXattr, size: u32, result: store::Result<Vec<u8>>) {
    match result {
        Ok(value) if size == 0 => reply.size(value.len() as u32),
        Ok(value) if value.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(value) => reply.data(&value),
        Err(e) => reply.error(errno(e)),
    }
}

/// A store time as a `SystemTime` (before the epoch too).
pub(super) fn system_time(t: Timespec) -> SystemTime {
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::new(t.sec as u64, t.nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs()) + Duration::from_nanos(t.nsec.into())
    }
}

/// A time from a kernel request. fuser 0.18 decodes a pre-epoch
/// `(sec, nsec)` as `epoch - (|sec| + nsec)` instead of `epoch - |sec| +
/// nsec`; this undoes that, so `utimensat` with negative times stores what
/// the caller asked for (as tmpfs does).
pub(super) fn request_timespec(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        },
        Err(before) => {
            let d = before.duration();
            Timespec {
                sec: -(d.as_secs() as i64),
                nsec: d.subsec_nanos(),
            }
        }
    }
}

/// A `setattr` time: now, or the time given.
pub(super) fn time_set(t: TimeOrNow) -> TimeSet {
    match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(t) => TimeSet::At(request_timespec(t)),
    }
}

/// The store's kind of file as fuser's.
pub(super) fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Regular => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
    }
}

/// The store's attributes as fuser's.
pub(super) fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.ctime),
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn reply_times_are_exact_before_and_after_the_epoch() {
        let at = |sec, nsec| system_time(Timespec { sec, nsec });
        assert_eq!(at(0, 0), UNIX_EPOCH);
        assert_eq!(
            at(1_700_000_000, 5),
            UNIX_EPOCH + Duration::new(1_700_000_000, 5)
        );
        assert_eq!(at(-1, 500_000_000), UNIX_EPOCH - Duration::from_millis(500));
        assert_eq!(at(-86_400, 0), UNIX_EPOCH - Duration::from_secs(86_400));
    }

    #[test]
    fn pre_epoch_request_times_undo_fusers_decoding() {
        // fuser turns (sec -1, nsec 999_999_995) into epoch - 1.999999995 s.
        let decoded = UNIX_EPOCH - Duration::new(1, 999_999_995);
        assert_eq!(
            request_timespec(decoded),
            Timespec {
                sec: -1,
                nsec: 999_999_995
            }
        );
        let after = UNIX_EPOCH + Duration::new(5, 7);
        assert_eq!(request_timespec(after), Timespec { sec: 5, nsec: 7 });
    }
}
