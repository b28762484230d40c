//! Pure computations on a hook's arguments (flags, times, ownership), kept
//! apart from the hooks so that they are unit tested with std.

use core::ffi::c_int;

use proto::SetAttrReq;

/// Whether `open` flags carry a mode argument (`O_CREAT`, or `O_TMPFILE`,
/// which includes the `O_DIRECTORY` bit and is compared whole).
pub(crate) fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

/// The attribute change of `chown(uid, gid)`: `-1` (all ones) leaves that
/// id as it is; the `CHOWN` bit is always set.
pub(crate) fn chown_req(uid: libc::uid_t, gid: libc::gid_t) -> SetAttrReq {
    let mut s = SetAttrReq {
        valid: proto::set::CHOWN,
        ..SetAttrReq::default()
    };
    if uid != u32::MAX {
        s.valid |= proto::set::UID;
        s.uid = uid;
    }
    if gid != u32::MAX {
        s.valid |= proto::set::GID;
        s.gid = gid;
    }
    s
}

/// One `timeval` of `utimes` as a `timespec`; `EINVAL` for microseconds
/// out of `0..1_000_000`, as glibc checks.
pub(crate) fn timeval_to_timespec(v: libc::timeval) -> Result<libc::timespec, i32> {
    if !(0..1_000_000).contains(&v.tv_usec) {
        return Err(libc::EINVAL);
    }
    Ok(libc::timespec {
        tv_sec: v.tv_sec,
        tv_nsec: (v.tv_usec * 1000) as _,
    })
}

/// The status flags `F_SETFL` may change on Linux (others in the argument
/// are ignored). `O_ASYNC` is not among them: the kernel keeps it only for
/// files with a `fasync` method, which neither tmpfs nor FUSE files have,
/// so there it is accepted and dropped; `O_DIRECT` is kept (both have
/// `FMODE_CAN_ODIRECT`; the fast path's reads and writes are the same with
/// it, as an `O_DIRECT` open already is).
const SETFL_SETTABLE: c_int = libc::O_APPEND | libc::O_NONBLOCK | libc::O_NOATIME | libc::O_DIRECT;

/// The open file's flags after `fcntl(F_SETFL, want)` on flags `cur`: only
/// the settable ones change.
pub(crate) fn setfl(cur: u32, want: c_int) -> u32 {
    (cur & !(SETFL_SETTABLE as u32)) | (want & SETFL_SETTABLE) as u32
}

/// What `fcntl(F_GETFL)` reports for the open file's flags `stored`
/// (without the library's own `kind_bits`): with `O_LARGEFILE`, as the
/// kernel reports on 64-bit targets.
pub(crate) fn getfl(stored: u32, kind_bits: u32) -> c_int {
    const O_LARGEFILE: c_int = 0o100000;
    (stored & !kind_bits) as c_int | O_LARGEFILE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_is_read_for_creat_and_whole_tmpfile_only() {
        assert!(needs_mode(libc::O_CREAT | libc::O_WRONLY));
        assert!(needs_mode(libc::O_TMPFILE | libc::O_RDWR));
        assert!(!needs_mode(libc::O_RDONLY));
        // O_DIRECTORY alone shares a bit with O_TMPFILE but is not it.
        assert!(!needs_mode(libc::O_DIRECTORY));
    }

    #[test]
    fn chown_minus_one_leaves_an_id_alone() {
        let s = chown_req(u32::MAX, u32::MAX);
        assert_eq!(s.valid, proto::set::CHOWN);
        let s = chown_req(7, u32::MAX);
        assert_eq!(s.valid, proto::set::CHOWN | proto::set::UID);
        assert_eq!(s.uid, 7);
        let s = chown_req(u32::MAX, 9);
        assert_eq!(s.valid, proto::set::CHOWN | proto::set::GID);
        assert_eq!(s.gid, 9);
        let s = chown_req(0, 0);
        assert_eq!(
            s.valid,
            proto::set::CHOWN | proto::set::UID | proto::set::GID
        );
    }

    #[test]
    fn timevals_convert_and_out_of_range_microseconds_are_einval() {
        let t = |s, us| libc::timeval {
            tv_sec: s,
            tv_usec: us,
        };
        let ts = timeval_to_timespec(t(5, 999_999)).unwrap();
        assert_eq!((ts.tv_sec, ts.tv_nsec), (5, 999_999_000));
        let ts = timeval_to_timespec(t(-1, 0)).unwrap();
        assert_eq!((ts.tv_sec, ts.tv_nsec), (-1, 0));
        assert_eq!(
            timeval_to_timespec(t(0, 1_000_000)).unwrap_err(),
            libc::EINVAL
        );
        assert_eq!(timeval_to_timespec(t(0, -1)).unwrap_err(), libc::EINVAL);
    }

    #[test]
    fn setfl_changes_only_the_settable_flags() {
        let cur = (libc::O_WRONLY | libc::O_APPEND) as u32;
        // Clearing O_APPEND, setting O_NONBLOCK; O_CREAT and the access
        // mode in the argument are ignored.
        let new = setfl(cur, libc::O_NONBLOCK | libc::O_CREAT | libc::O_RDWR);
        assert_eq!(new, (libc::O_WRONLY | libc::O_NONBLOCK) as u32);
        // As on tmpfs: O_DIRECT is kept, O_ASYNC dropped.
        assert_eq!(
            setfl(cur, libc::O_DIRECT),
            (libc::O_WRONLY | libc::O_DIRECT) as u32
        );
        assert_eq!(setfl(cur, libc::O_ASYNC), libc::O_WRONLY as u32);
    }

    #[test]
    fn getfl_hides_kind_bits_and_reports_largefile() {
        let kind = 1 << 30;
        let fl = getfl(libc::O_RDWR as u32 | kind, kind);
        assert_eq!(fl, libc::O_RDWR | 0o100000);
    }
}
