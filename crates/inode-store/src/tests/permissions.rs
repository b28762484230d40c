//! Permissions: access, search and write rules, sticky and setid bits, chmod and chown.

use super::*;

#[test]
fn access_follows_owner_group_supplementary_other() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o640, b"");
    s.setattr(
        &root(),
        f,
        &SetAttr {
            uid: Some(1000),
            gid: Some(100),
            ..SetAttr::default()
        },
        None,
    )
    .unwrap();
    let owner = user(1000, 1000);
    let member = user(2000, 2000);
    let supp = Creds {
        uid: 2001,
        gid: 2001,
        groups: vec![5, 100],
        caps: crate::Caps::NONE,
    };
    let other = user(3000, 3000);
    assert_eq!(s.access(&owner, f, libc::R_OK | libc::W_OK), Ok(()));
    assert_eq!(s.access(&member, f, libc::W_OK), Err(Errno::EACCES));
    assert_eq!(s.access(&user(2000, 100), f, libc::R_OK), Ok(()));
    assert_eq!(s.access(&supp, f, libc::R_OK), Ok(()));
    assert_eq!(s.access(&other, f, libc::R_OK), Err(Errno::EACCES));
    assert_eq!(s.access(&other, f, libc::F_OK), Ok(()));
    assert_eq!(err(s.open(&other, f, libc::O_RDONLY)), Errno::EACCES);
    assert_eq!(err(s.open(&supp, f, libc::O_RDWR)), Errno::EACCES);
    assert_eq!(
        err(s.open(&supp, f, libc::O_RDONLY | libc::O_TRUNC)),
        Errno::EACCES
    );
    // Root reads and writes anything, but executes only with an x bit.
    assert_eq!(s.access(&root(), f, libc::R_OK | libc::W_OK), Ok(()));
    assert_eq!(s.access(&root(), f, libc::X_OK), Err(Errno::EACCES));
    chmod(&s, f, 0o010);
    assert_eq!(s.access(&root(), f, libc::X_OK), Ok(()));
    chmod(&s, ROOT_INO, 0o000);
    assert_eq!(s.access(&root(), ROOT_INO, libc::X_OK | libc::W_OK), Ok(()));
}

#[test]
fn lookup_needs_search_and_create_needs_write_on_parent() {
    let s = store();
    let u = user(1000, 1000);
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o700).unwrap().ino;
    mkfile(&s, &root(), d, b"f", 0o644, b"");
    assert_eq!(err(s.lookup(&u, d, b"f")), Errno::EACCES);
    assert_eq!(err(s.lookup(&u, d, b".")), Errno::EACCES);
    chmod(&s, d, 0o711);
    s.lookup(&u, d, b"f").unwrap();
    assert_eq!(err(s.opendir(&u, d)), Errno::EACCES);
    assert_eq!(err(s.mkdir(&u, d, b"x", 0o755)), Errno::EACCES);
    // An existing name is EEXIST even without write permission.
    assert_eq!(err(s.mkdir(&u, d, b"f", 0o755)), Errno::EEXIST);
    assert_eq!(err(s.unlink(&u, d, b"f")), Errno::EACCES);
    chmod(&s, d, 0o733);
    s.mkdir(&u, d, b"x", 0o755).unwrap();
    s.unlink(&u, d, b"f").unwrap();
}

#[test]
fn sticky_directory_restricts_removal_to_owners() {
    let s = store();
    let tmp = s.mkdir(&root(), ROOT_INO, b"tmp", 0o1777).unwrap().ino;
    let alice = user(1000, 1000);
    let bob = user(1001, 1001);
    mkfile(&s, &alice, tmp, b"a", 0o666, b"");
    s.mkdir(&alice, tmp, b"ad", 0o777).unwrap();
    assert_eq!(err(s.unlink(&bob, tmp, b"a")), Errno::EPERM);
    assert_eq!(err(s.rmdir(&bob, tmp, b"ad")), Errno::EPERM);
    let fl = RenameFlags::default();
    assert_eq!(err(s.rename(&bob, tmp, b"a", tmp, b"b", fl)), Errno::EPERM);
    // Bob may not replace Alice's file either.
    mkfile(&s, &bob, tmp, b"bobs", 0o666, b"");
    assert_eq!(
        err(s.rename(&bob, tmp, b"bobs", tmp, b"a", fl)),
        Errno::EPERM
    );
    s.unlink(&alice, tmp, b"a").unwrap();
    s.unlink(&root(), tmp, b"bobs").unwrap();
    // The directory owner may remove anything.
    let set = SetAttr {
        uid: Some(1002),
        ..SetAttr::default()
    };
    s.setattr(&root(), tmp, &set, None).unwrap();
    s.rmdir(&user(1002, 1002), tmp, b"ad").unwrap();
}

#[test]
fn setgid_directory_is_inherited() {
    let s = store();
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o777).unwrap().ino;
    s.setattr(
        &root(),
        d,
        &SetAttr {
            gid: Some(50),
            mode: Some(0o2777),
            ..SetAttr::default()
        },
        None,
    )
    .unwrap();
    let u = user(1000, 1000);
    let f = mkfile(&s, &u, d, b"f", 0o644, b"");
    let fa = s.getattr(f).unwrap();
    assert_eq!((fa.uid, fa.gid), (1000, 50));
    let sub = s.mkdir(&u, d, b"sub", 0o755).unwrap();
    assert_eq!(sub.gid, 50);
    assert_eq!(sub.perm, 0o2755);
    // A group-executable setgid file by a non-member loses S_ISGID.
    let g = s.create(&u, d, b"g", 0o2755, libc::O_RDWR).unwrap();
    assert_eq!(g.0.perm, 0o755);
    s.release(g.1).unwrap();
    let member = Creds {
        uid: 1000,
        gid: 1000,
        groups: vec![50],
        caps: crate::Caps::NONE,
    };
    let h = s.create(&member, d, b"h", 0o2755, libc::O_RDWR).unwrap();
    assert_eq!(h.0.perm, 0o2755);
    s.release(h.1).unwrap();
    // Outside a setgid directory: caller's gid, mkdir drops S_ISGID.
    chmod(&s, ROOT_INO, 0o777);
    let e = s.mkdir(&u, ROOT_INO, b"e", 0o2755).unwrap();
    assert_eq!((e.gid, e.perm), (1000, 0o755));
}

#[test]
fn chmod_rules() {
    let s = store();
    let u = user(1000, 1000);
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    let set = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(err(s.setattr(&u, f, &set, None)), Errno::EPERM);
    s.setattr(
        &root(),
        f,
        &SetAttr {
            uid: Some(1000),
            gid: Some(77),
            ..SetAttr::default()
        },
        None,
    )
    .unwrap();
    // The owner, not in group 77, asks for S_ISGID: silently dropped.
    let set = SetAttr {
        mode: Some(0o2755),
        ..SetAttr::default()
    };
    assert_eq!(s.setattr(&u, f, &set, None).unwrap().perm, 0o755);
    // Root keeps it.
    assert_eq!(s.setattr(&root(), f, &set, None).unwrap().perm, 0o2755);
    let t0 = s.getattr(f).unwrap().ctime;
    std::thread::sleep(std::time::Duration::from_millis(2));
    let set = SetAttr {
        mode: Some(0o700 | libc::S_IFREG),
        ..SetAttr::default()
    };
    let a = s.setattr(&u, f, &set, None).unwrap();
    assert_eq!(a.perm, 0o700);
    assert!(a.ctime > t0);
}

#[test]
fn chown_rules_and_setid_clearing() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    let owner = Creds {
        uid: 1000,
        gid: 1000,
        groups: vec![20],
        caps: crate::Caps::NONE,
    };
    s.setattr(
        &root(),
        f,
        &SetAttr {
            uid: Some(1000),
            gid: Some(1000),
            ..SetAttr::default()
        },
        None,
    )
    .unwrap();
    let to = |uid: Option<u32>, gid: Option<u32>| SetAttr {
        uid,
        gid,
        ..SetAttr::default()
    };
    assert_eq!(
        err(s.setattr(&owner, f, &to(Some(0), None), None)),
        Errno::EPERM
    );
    assert_eq!(
        err(s.setattr(&owner, f, &to(None, Some(30)), None)),
        Errno::EPERM
    );
    let other = user(2000, 20);
    assert_eq!(
        err(s.setattr(&other, f, &to(None, Some(20)), None)),
        Errno::EPERM
    );
    assert_eq!(
        s.setattr(&owner, f, &to(Some(1000), Some(20)), None)
            .unwrap()
            .gid,
        20
    );
    // chown clears S_ISUID (even for root) and S_ISGID when group-exec.
    chmod(&s, f, 0o6755);
    let a = s.setattr(&root(), f, &to(Some(1000), None), None).unwrap();
    assert_eq!(a.perm, 0o755);
    chmod(&s, f, 0o6745);
    let a = s.setattr(&root(), f, &to(None, Some(20)), None).unwrap();
    assert_eq!(a.perm, 0o2745);
    // Directories keep their setgid bit.
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o2775).unwrap().ino;
    chmod(&s, d, 0o2775);
    assert_eq!(
        s.setattr(&root(), d, &to(Some(5), None), None)
            .unwrap()
            .perm,
        0o2775
    );
}

#[test]
fn write_and_truncate_by_non_root_clear_setid_bits() {
    let s = store();
    chmod(&s, ROOT_INO, 0o777);
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o6777, b"");
    chmod(&s, f, 0o6777);
    // Root writing keeps them.
    let fh = s.open(&root(), f, libc::O_WRONLY).unwrap();
    s.write(&root(), fh, 0, b"x").unwrap();
    s.release(fh).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o6777);
    let u = user(1000, 1000);
    let fh = s.open(&u, f, libc::O_WRONLY).unwrap();
    s.write(&u, fh, 0, b"y").unwrap();
    s.release(fh).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o777);
    // S_ISGID without group-exec stays for a member of the group.
    chmod(&s, f, 0o2666);
    let member = user(1000, 0);
    let set = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    s.setattr(&member, f, &set, None).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o2666);
    s.setattr(&u, f, &set, None).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o666);
}

#[test]
fn truncate_permission_rules() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"abcdef");
    let u = user(1000, 1000);
    let set = SetAttr {
        size: Some(2),
        ..SetAttr::default()
    };
    assert_eq!(err(s.setattr(&u, f, &set, None)), Errno::EACCES);
    assert_eq!(err(s.setattr(&root(), ROOT_INO, &set, None)), Errno::EISDIR);
    // ftruncate on a writable handle skips the permission check...
    chmod(&s, f, 0o666);
    let fh = s.open(&u, f, libc::O_WRONLY).unwrap();
    chmod(&s, f, 0o444);
    s.setattr(&u, f, &set, Some(fh.into())).unwrap();
    assert_eq!(read_all(&s, f), b"ab");
    // ...and on a read-only handle is EINVAL.
    let ro = s.open(&u, f, libc::O_RDONLY).unwrap();
    assert_eq!(err(s.setattr(&u, f, &set, Some(ro.into()))), Errno::EINVAL);
    let big = SetAttr {
        size: Some(u64::MAX),
        ..SetAttr::default()
    };
    assert_eq!(err(s.setattr(&root(), f, &big, None)), Errno::EFBIG);
    s.release(fh).unwrap();
    s.release(ro).unwrap();
}
