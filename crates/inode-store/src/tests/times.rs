//! Times: atime, mtime and ctime as each operation sets them.

use super::*;

#[test]
fn create_and_unlink_update_parent_and_victim_times() {
    let s = store();
    let r = root();
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    let t0 = s.getattr(d).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let f = mkfile(&s, &r, d, b"f", 0o644, b"");
    let t1 = s.getattr(d).unwrap();
    assert!(t1.mtime > t0.mtime && t1.ctime > t0.ctime);
    let fa = s.getattr(f).unwrap();
    assert_eq!(fa.atime, fa.ctime);
    s.link(&r, f, d, b"g").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    s.unlink(&r, d, b"f").unwrap();
    let t2 = s.getattr(d).unwrap();
    let fb = s.getattr(f).unwrap();
    assert!(t2.mtime > t1.mtime);
    assert!(fb.ctime > fa.ctime);
    assert_eq!(fb.mtime, fa.mtime);
}

#[test]
fn read_updates_atime_with_relatime_rules() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"abc");
    // Set atime newer than m/ctime: a read must leave it alone.
    let future = Timespec {
        sec: Timespec::now().sec + 100,
        nsec: 0,
    };
    let set = SetAttr {
        atime: Some(TimeSet::At(future)),
        ..SetAttr::default()
    };
    s.setattr(&root(), ino, &set, None).unwrap();
    let set = SetAttr {
        ctime: Some(Timespec { sec: 1, nsec: 0 }),
        ..SetAttr::default()
    };
    s.setattr(&root(), ino, &set, None).unwrap();
    let fh = s.open(&root(), ino, libc::O_RDONLY).unwrap();
    s.read(fh, 0, &mut [0u8; 3]).unwrap();
    assert_eq!(s.getattr(ino).unwrap().atime, future);
    // atime older than mtime: updated.
    let set = SetAttr {
        atime: Some(TimeSet::At(Timespec { sec: 5, nsec: 0 })),
        mtime: Some(TimeSet::At(Timespec { sec: 10, nsec: 0 })),
        ctime: Some(Timespec { sec: 10, nsec: 0 }),
        ..SetAttr::default()
    };
    s.setattr(&root(), ino, &set, None).unwrap();
    s.read(fh, 0, &mut [0u8; 3]).unwrap();
    assert!(s.getattr(ino).unwrap().atime.sec > 1_000_000);
    // atime newer than m/ctime but more than a day old: updated.
    let set = SetAttr {
        atime: Some(TimeSet::At(Timespec { sec: 20, nsec: 0 })),
        ctime: Some(Timespec { sec: 10, nsec: 0 }),
        ..SetAttr::default()
    };
    s.setattr(&root(), ino, &set, None).unwrap();
    s.read(fh, 0, &mut [0u8; 3]).unwrap();
    assert!(s.getattr(ino).unwrap().atime.sec > 1_000_000);
    s.release(fh).unwrap();
}

#[test]
fn a_peek_gives_the_bytes_only_when_a_read_would_not_update_atime() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"abc");
    let fh = s.open(&root(), ino, libc::O_RDONLY).unwrap();
    let mut buf = [0u8; 3];
    // Just written: atime is not newer than mtime, a read must update it.
    assert_eq!(s.peek_stamped(fh, &mut buf, |_| false).unwrap(), None);
    s.read(fh, 0, &mut buf).unwrap();
    let before = s.getattr(ino).unwrap();
    let (n, stamp, attr) = s.peek_stamped(fh, &mut buf, |_| false).unwrap().unwrap();
    assert_eq!((n, &buf), (3, b"abc"));
    assert!(s.stamp_current(stamp));
    assert_eq!(attr.atime, before.atime);
    assert_eq!(
        s.getattr(ino).unwrap().atime,
        before.atime,
        "a peek is no read"
    );
    assert_eq!(
        s.peek_stamped(fh, &mut buf, |_| true).unwrap(),
        None,
        "bytes kept elsewhere"
    );
    // Written since: the atime is due again.
    let rw = s.open(&root(), ino, libc::O_RDWR).unwrap();
    s.write(&root(), rw, 0, b"x").unwrap();
    assert_eq!(s.peek_stamped(fh, &mut buf, |_| false).unwrap(), None);
    s.release(rw).unwrap();
    s.release(fh).unwrap();
}

#[test]
fn write_and_truncate_update_mtime_and_ctime() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"abc");
    let a0 = s.getattr(ino).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let fh = s.open(&root(), ino, libc::O_RDWR).unwrap();
    s.write(&root(), fh, 0, b"z").unwrap();
    let a1 = s.getattr(ino).unwrap();
    assert!(a1.mtime > a0.mtime && a1.ctime > a0.ctime);
    std::thread::sleep(std::time::Duration::from_millis(2));
    // truncate(2) to the same size: times updated too (as on tmpfs).
    let set = SetAttr {
        size: Some(3),
        ..SetAttr::default()
    };
    let a12 = s.setattr(&root(), ino, &set, None).unwrap();
    assert!(a12.mtime > a1.mtime && a12.ctime > a1.ctime);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let a1 = a12;
    // ftruncate(2) to the same size: times updated.
    let a15 = s.setattr(&root(), ino, &set, Some(fh.into())).unwrap();
    assert!(a15.mtime > a1.mtime);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let set = SetAttr {
        size: Some(1),
        ..SetAttr::default()
    };
    let a2 = s.setattr(&root(), ino, &set, None).unwrap();
    assert!(a2.mtime > a15.mtime);
    s.release(fh).unwrap();
}

#[test]
fn utimens_permission_rules() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    let u = user(1000, 1000);
    let now_both = SetAttr {
        atime: Some(TimeSet::Now),
        mtime: Some(TimeSet::Now),
        ..SetAttr::default()
    };
    assert_eq!(err(s.setattr(&u, f, &now_both, None)), Errno::EACCES);
    let explicit = SetAttr {
        mtime: Some(TimeSet::At(Timespec { sec: 5, nsec: 0 })),
        ..SetAttr::default()
    };
    assert_eq!(err(s.setattr(&u, f, &explicit, None)), Errno::EPERM);
    chmod(&s, f, 0o666);
    s.setattr(&u, f, &now_both, None).unwrap();
    assert_eq!(err(s.setattr(&u, f, &explicit, None)), Errno::EPERM);
    let a = s.setattr(&root(), f, &explicit, None).unwrap();
    assert_eq!(a.mtime, Timespec { sec: 5, nsec: 0 });
}
