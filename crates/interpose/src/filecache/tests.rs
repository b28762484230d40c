//! The file cache's unit tests: mounts 1 to 5 and inodes of their own,
//! since the table is the process's, shared by the tests running at once.

use super::*;
use proto::changes::{ChangeLog, Touched};

/// A change log of a test's own.
fn fresh_log() -> &'static ChangeLog {
    Box::leak(Box::new(ChangeLog::new()))
}

/// How a test's process named a file: `path` in directory `dir`.
fn named(path: &[u8], dir: u64) -> Named<'_> {
    Named { base: 0, path, dir }
}

/// The bytes `read` gives of file `ino` of `mount` from its start at
/// `now`, if it gives any.
fn read_bytes(mount: usize, ino: u64, now: Now) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    read(
        mount,
        ino,
        0,
        || Some(now),
        || 2_000,
        |b| {
            got.extend_from_slice(b);
            b.len()
        },
    )?;
    Some(got)
}

fn attr(ino: u64, size: u64) -> WireAttr {
    WireAttr {
        ino,
        size,
        mode: libc::S_IFREG | 0o644,
        nlink: 1,
        atime: 1_000,
        ..WireAttr::default()
    }
}

#[test]
fn a_file_opened_ahead_opens_and_reads_before_any_open_file_holds_it() {
    // Mount 3: the table is the process's, shared by the tests running
    // beside this one (which use mount 1).
    let log = fresh_log();
    let now = |g| Now::new(g, Some(log));
    let a = attr(5151, 3);
    let named = named(b"d/g", 501);
    assert_eq!(
        keep_ahead(3, 90, &a, 10, &named, b"ab"),
        (false, None),
        "not the whole file"
    );
    assert_eq!(keep_ahead(3, 90, &a, 10, &named, b"abc"), (true, None));
    let read_all = |g| read(3, 5151, 0, || Some(now(g)), || 2_000, |b| b.len());
    assert_eq!(read_all(10), Some(3), "its bytes, before any open");
    assert_eq!(
        open(3, 0, b"d/g", || Some(now(10))).map(|(fh, _, _)| fh),
        Some(90)
    );
    assert!(
        !unref(3, 5151, 90, || Some(now(10))),
        "the entry keeps the handle its open file gave back"
    );
    // Opened ahead again: the new handle replaces the old one, which
    // no open file holds.
    assert_eq!(keep_ahead(3, 91, &a, 11, &named, b"abc"), (true, Some(90)));
    log.record(12, Touched::Inodes(&[5151]));
    assert_eq!(read_all(12), None, "it changed");
    assert_eq!(open(3, 0, b"d/g", || Some(now(12))), None);
    assert_eq!(forget(3, 5151), Some(91), "no open file holds it");
}

#[test]
fn a_forked_child_frees_the_locks_of_threads_it_does_not_have() {
    // Mount 5, inodes of their own: see the first test.
    let log = fresh_log();
    let a = attr(7100, 0);
    let named = named(b"f/a", 700);
    assert_eq!(keep(5, 110, &a, 30, &named), (true, None));
    let t = TABLE.get().unwrap();
    let i = way_of(t, 7100).unwrap();
    // Held by a thread of the parent at the fork.
    let stuck = t.lock(i, false).unwrap();
    core::mem::forget(stuck);
    after_fork_child();
    // On a thread of its own, so that a lock still held fails the test
    // instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(unref(5, 7100, 110, || Some(Now::new(30, Some(log)))));
    });
    let kept = rx.recv_timeout(std::time::Duration::from_secs(10));
    assert_eq!(
        kept,
        Ok(false),
        "the entry is free again and keeps the handle"
    );
}

#[test]
fn bytes_of_every_size_read_back_from_either_area() {
    // Mount 4, inodes of their own: see the first test.
    let log = fresh_log();
    let now = Now::new(20, Some(log));
    let sizes = [0, 1, SMALL_MAX - 1, SMALL_MAX, SMALL_MAX + 1, DATA_MAX];
    for (k, &len) in sizes.iter().enumerate() {
        let ino = 6100 + k as u64;
        let bytes: Vec<u8> = (0..len).map(|b| (b * 7 + k) as u8).collect();
        let path = format!("e/{k}");
        let named = named(path.as_bytes(), 600);
        let a = attr(ino, len as u64);
        assert_eq!(
            keep_ahead(4, 100 + ino, &a, 20, &named, &bytes),
            (true, None)
        );
    }
    for (k, &len) in sizes.iter().enumerate() {
        let ino = 6100 + k as u64;
        let want: Vec<u8> = (0..len).map(|b| (b * 7 + k) as u8).collect();
        assert_eq!(read_bytes(4, ino, now), Some(want), "{len} bytes");
    }
    // A file grown past the small area's room: its bytes move with it.
    let a = attr(6100, SMALL_MAX as u64 + 10);
    let grown = vec![9u8; SMALL_MAX + 10];
    assert_eq!(
        open(4, 0, b"e/0", || Some(now)).map(|(fh, _, _)| fh),
        Some(6200)
    );
    keep_data(4, 6100, &a, 21, &grown);
    let later = Now::new(21, Some(log));
    assert_eq!(read_bytes(4, 6100, later), Some(grown));
}

#[test]
fn a_kept_file_opens_and_reads_until_a_change_touches_it() {
    let log = fresh_log();
    let now = |g| Now::new(g, Some(log));
    let a = attr(4242, 5);
    let named = named(b"d/f", 500);
    assert_eq!(keep(1, 77, &a, 10, &named), (true, None));
    log.record(11, Touched::Inodes(&[999]));
    let read_all = |g| read(1, 4242, 1, || Some(now(g)), || 2_000, |b| b.len());
    keep_data(1, 4242, &a, 11, b"hello");
    assert_eq!(
        read_all(11),
        None,
        "bytes are kept once a file is read again"
    );
    assert_eq!(
        open(1, 0, b"d/f", || Some(now(11))).map(|(fh, _, _)| fh),
        Some(77)
    );
    assert_eq!(open(2, 0, b"d/f", || Some(now(11))), None, "another mount");
    assert_eq!(open(1, 0, b"d/g", || Some(now(11))), None, "another path");
    assert_eq!(open(1, 7, b"d/f", || Some(now(11))), None, "another base");
    keep_data(1, 4242, &a, 11, b"hello");
    assert_eq!(read_all(11), Some(4), "from offset 1");
    assert_eq!(
        read(
            1,
            4242,
            1,
            || Some(now(11)),
            || 1_000 + ATIME_DAY,
            |b| b.len()
        ),
        None,
        "atime due"
    );
    // A sibling's attributes changed: the listing, not the names.
    log.record(12, Touched::Inodes(&[998, 500 | proto::changes::LISTED]));
    assert_eq!(read_all(12), Some(4), "another file changed");
    // Two open files share handle 77 now: a newer open keeps it.
    assert_eq!(keep(1, 78, &a, 12, &named), (false, None));
    log.record(13, Touched::Inodes(&[4242]));
    assert_eq!(read_all(13), None, "it changed");
    assert_eq!(open(1, 0, b"d/f", || Some(now(13))), None);
    assert!(
        !unref(1, 4242, 77, || Some(now(13))),
        "one open file still uses it"
    );
    assert!(
        unref(1, 4242, 77, || Some(now(13))),
        "none does, and the file changed"
    );
    assert!(unref(1, 4242, 76, || Some(now(13))), "not the kept handle");
    assert_eq!(
        keep(1, 79, &a, 14, &named),
        (true, None),
        "the entry was let go"
    );
    assert!(!unref(1, 4242, 79, || Some(now(14))), "kept while it holds");
    assert_eq!(forget(1, 4242), Some(79), "unlinked: let go");
    assert_eq!(forget(1, 4242), None);
    let big = attr(4243, DATA_MAX as u64 + 1);
    assert_eq!(
        keep(1, 80, &big, 14, &named),
        (false, None),
        "only small files"
    );
}
