//! Extended attributes: namespaces, permissions and limits.

use super::*;

#[test]
fn xattr_user_namespace_rules() {
    let s = store();
    let r = root();
    let f = mkfile(&s, &r, ROOT_INO, b"f", 0o644, b"");
    s.setxattr(&r, f, b"user.a", b"1", 0).unwrap();
    assert_eq!(s.getxattr(&r, f, b"user.a").unwrap(), b"1");
    let u = user(1000, 1000);
    assert_eq!(s.getxattr(&u, f, b"user.a").unwrap(), b"1");
    assert_eq!(err(s.setxattr(&u, f, b"user.b", b"2", 0)), Errno::EACCES);
    assert_eq!(err(s.removexattr(&u, f, b"user.a")), Errno::EACCES);
    chmod(&s, f, 0o600);
    assert_eq!(err(s.getxattr(&u, f, b"user.a")), Errno::EACCES);
    let create = libc::XATTR_CREATE;
    let replace = libc::XATTR_REPLACE;
    assert_eq!(
        err(s.setxattr(&r, f, b"user.a", b"x", create)),
        Errno::EEXIST
    );
    assert_eq!(
        err(s.setxattr(&r, f, b"user.n", b"x", replace)),
        Errno::ENODATA
    );
    s.setxattr(&r, f, b"user.a", b"22", replace).unwrap();
    assert_eq!(s.getxattr(&r, f, b"user.a").unwrap(), b"22");
    assert_eq!(err(s.getxattr(&r, f, b"user.zz")), Errno::ENODATA);
    assert_eq!(err(s.removexattr(&r, f, b"user.zz")), Errno::ENODATA);
    s.removexattr(&r, f, b"user.a").unwrap();
    assert_eq!(s.listxattr(&r, f).unwrap(), b"");
    // Symlinks and special files take no user.* attributes.
    let l = s.symlink(&r, ROOT_INO, b"l", b"f").unwrap().ino;
    assert_eq!(err(s.setxattr(&r, l, b"user.a", b"1", 0)), Errno::EPERM);
    assert_eq!(err(s.getxattr(&r, l, b"user.a")), Errno::ENODATA);
}

#[test]
fn xattr_trusted_security_system_and_limits() {
    let s = store();
    let r = root();
    let u = user(1000, 1000);
    chmod(&s, ROOT_INO, 0o777);
    let f = mkfile(&s, &u, ROOT_INO, b"f", 0o666, b"");
    s.setxattr(&r, f, b"trusted.t", b"T", 0).unwrap();
    s.setxattr(&r, f, b"security.s", b"S", 0).unwrap();
    s.setxattr(&u, f, b"user.u", b"U", 0).unwrap();
    assert_eq!(err(s.getxattr(&u, f, b"trusted.t")), Errno::ENODATA);
    assert_eq!(err(s.setxattr(&u, f, b"trusted.x", b"1", 0)), Errno::EPERM);
    assert_eq!(s.getxattr(&u, f, b"security.s").unwrap(), b"S");
    assert_eq!(err(s.setxattr(&u, f, b"security.x", b"1", 0)), Errno::EPERM);
    assert_eq!(
        s.listxattr(&r, f).unwrap(),
        b"user.u\0trusted.t\0security.s\0"
    );
    assert_eq!(s.listxattr(&u, f).unwrap(), b"user.u\0security.s\0");
    assert_eq!(
        err(s.setxattr(&r, f, b"system.foo", b"1", 0)),
        Errno::EOPNOTSUPP
    );
    assert_eq!(err(s.getxattr(&r, f, b"other.foo")), Errno::EOPNOTSUPP);
    assert_eq!(err(s.setxattr(&r, f, b"user.", b"1", 0)), Errno::EINVAL);
    let long = [b"user.".as_slice(), &[b'x'; 251]].concat();
    assert_eq!(err(s.setxattr(&r, f, &long, b"1", 0)), Errno::ERANGE);
    assert_eq!(err(s.setxattr(&r, f, b"", b"1", 0)), Errno::ERANGE);
    let big = vec![0u8; XATTR_SIZE_MAX + 1];
    assert_eq!(err(s.setxattr(&r, f, b"user.big", &big, 0)), Errno::E2BIG);
    s.setxattr(&r, f, b"user.big", &big[..XATTR_SIZE_MAX], 0)
        .unwrap();
    let t0 = s.getattr(f).unwrap().ctime;
    std::thread::sleep(std::time::Duration::from_millis(2));
    s.setxattr(&r, f, b"user.c", b"", 0).unwrap();
    assert!(s.getattr(f).unwrap().ctime > t0);
}

/// A v2 `security.capability` value (`setcap cap_net_raw+ep`).
const FILE_CAPS: &[u8] = b"\x01\0\0\x02\0\x20\0\0\0\x20\0\0\0\0\0\0\0\0\0\0";

#[test]
fn file_capabilities_go_with_a_write_truncate_or_chown_like_linux() {
    let s = store();
    let r = root();
    let caps = |f| s.getxattr(&r, f, b"security.capability");
    let f = mkfile(&s, &r, ROOT_INO, b"f", 0o755, b"x");
    let setcap = |f| {
        s.setxattr(&r, f, b"security.capability", FILE_CAPS, 0)
            .unwrap()
    };
    // A write drops them, even root's (`file_remove_privs`); other
    // attributes stay.
    setcap(f);
    s.setxattr(&r, f, b"user.keep", b"1", 0).unwrap();
    let fh = s.open(&r, f, libc::O_WRONLY).unwrap();
    s.write(&r, fh, 0, b"y").unwrap();
    assert_eq!(err(caps(f)), Errno::ENODATA);
    assert_eq!(s.getxattr(&r, f, b"user.keep").unwrap(), b"1");
    // So does a truncate, through the handle or an open with O_TRUNC.
    setcap(f);
    let size = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    s.setattr(&r, f, &size, Some(FileRef::Handle(fh))).unwrap();
    assert_eq!(err(caps(f)), Errno::ENODATA);
    s.release(fh).unwrap();
    setcap(f);
    s.release(s.open(&r, f, libc::O_WRONLY | libc::O_TRUNC).unwrap())
        .unwrap();
    assert_eq!(err(caps(f)), Errno::ENODATA);
    // And a chown, even one that changes nothing.
    setcap(f);
    let chown = SetAttr {
        chown: true,
        ..SetAttr::default()
    };
    s.setattr(&r, f, &chown, None).unwrap();
    assert_eq!(err(caps(f)), Errno::ENODATA);
    // Reading, listing and chmod keep them.
    setcap(f);
    read_all(&s, f);
    chmod(&s, f, 0o750);
    assert_eq!(caps(f).unwrap(), FILE_CAPS);
}
