//! Concurrency, and the lifetimes of handles and inodes across threads.

use super::*;

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn multithreaded_smoke() {
    let s = Arc::new(Store::new(256 * MIB));
    let shared = mkfile(&s, &root(), ROOT_INO, b"shared", 0o666, &[42u8; 65536]);
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let r = root();
                let dir = s
                    .mkdir(&r, ROOT_INO, format!("t{t}").as_bytes(), 0o755)
                    .unwrap()
                    .ino;
                let rfh = s.open(&r, shared, libc::O_RDONLY).unwrap();
                let mut buf = vec![0u8; 65536];
                for i in 0..200u32 {
                    let name = format!("f{i}");
                    let (a, fh) = s
                        .create(&r, dir, name.as_bytes(), 0o644, libc::O_RDWR | libc::O_EXCL)
                        .unwrap();
                    let data = vec![(i % 251) as u8; 1000 + (i as usize * 37) % 9000];
                    assert_eq!(s.write(&r, fh, 0, &data).unwrap().len, data.len());
                    let mut back = vec![0u8; data.len()];
                    assert_eq!(s.read(fh, 0, &mut back).unwrap(), data.len());
                    assert_eq!(back, data);
                    s.release(fh).unwrap();
                    if i % 3 == 0 {
                        s.rename(
                            &r,
                            dir,
                            name.as_bytes(),
                            ROOT_INO,
                            format!("m{t}_{i}").as_bytes(),
                            RenameFlags::default(),
                        )
                        .unwrap();
                        s.unlink(&r, ROOT_INO, format!("m{t}_{i}").as_bytes())
                            .unwrap();
                    }
                    assert_eq!(s.read(rfh, 0, &mut buf).unwrap(), 65536);
                    assert!(buf.iter().all(|&b| b == 42));
                    let _ = s.getattr(a.ino);
                    let dfh = s.opendir(&r, ROOT_INO).unwrap();
                    s.readdir(dfh, 0, |_| true).unwrap();
                    s.releasedir(dfh).unwrap();
                }
                s.release(rfh).unwrap();
                let mut left = Vec::new();
                let dfh = s.opendir(&r, dir).unwrap();
                s.readdir(dfh, 2, |e| {
                    left.push(e.name.to_vec());
                    true
                })
                .unwrap();
                s.releasedir(dfh).unwrap();
                assert_eq!(left.len(), 200 - 67);
                for n in left {
                    s.unlink(&r, dir, &n).unwrap();
                }
                s.rmdir(&r, ROOT_INO, format!("t{t}").as_bytes()).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    s.unlink(&root(), ROOT_INO, b"shared").unwrap();
    let u = s.usage();
    assert_eq!(
        (u.inodes, u.used_blocks, u.open_handles, u.slabs_mapped),
        (1, 0, 0, 0)
    );
    assert_eq!(s.getattr(ROOT_INO).unwrap().nlink, 2);
}

#[test]
fn fallocate_clears_setid_bits_as_the_opener() {
    let s = store();
    chmod(&s, ROOT_INO, 0o777);
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o6777, b"");
    chmod(&s, f, 0o6777);
    let fh = s.open(&root(), f, libc::O_RDWR).unwrap();
    s.fallocate(&root(), fh, 0, 4096, 0).unwrap();
    s.release(fh).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o6777);
    let u = user(1000, 1000);
    let fh = s.open(&u, f, libc::O_RDWR).unwrap();
    s.fallocate(&root(), fh, 0, 4096, libc::FALLOC_FL_KEEP_SIZE)
        .unwrap();
    s.release(fh).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o777);
}

#[test]
fn fallocate_over_unwritten_blocks_turns_them_into_data() {
    let s = store();
    let (_, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.fallocate(&root(), fh, 0, 8192, 0).unwrap();
    assert_eq!(err(s.lseek(fh, 0, libc::SEEK_DATA)), Errno::ENXIO);
    s.fallocate(&root(), fh, 0, 100, 0).unwrap();
    assert_eq!(s.lseek(fh, 0, libc::SEEK_DATA), Ok(0));
    assert_eq!(s.lseek(fh, 0, libc::SEEK_HOLE), Ok(4096));
    s.release(fh).unwrap();
}

#[test]
fn a_directory_path_follows_renames_and_exchanges() {
    let s = store();
    let c = root();
    let a = s.mkdir(&c, ROOT_INO, b"a", 0o755).unwrap().ino;
    let b = s.mkdir(&c, a, b"b", 0o755).unwrap().ino;
    let d = s.mkdir(&c, a, b"d", 0o755).unwrap().ino;
    let x = s.mkdir(&c, b, b"x", 0o755).unwrap().ino;
    let path = |ino| s.dir_path(ino).map(|p| String::from_utf8(p).unwrap());
    assert_eq!(path(ROOT_INO), Ok(String::new()));
    assert_eq!(path(x), Ok("a/b/x".into()));
    let plain = RenameFlags::default();
    s.rename(&c, ROOT_INO, b"a", ROOT_INO, b"z", plain).unwrap();
    assert_eq!(path(x), Ok("z/b/x".into()));
    let exchange = RenameFlags {
        exchange: true,
        ..RenameFlags::default()
    };
    s.rename(&c, a, b"b", a, b"d", exchange).unwrap();
    assert_eq!((path(x), path(d)), (Ok("z/d/x".into()), Ok("z/b".into())));
    s.rename(&c, b, b"x", ROOT_INO, b"top", plain).unwrap();
    assert_eq!(path(x), Ok("top".into()));
    s.rmdir(&c, ROOT_INO, b"top").unwrap();
    assert_eq!(path(x), Err(Errno::ENOENT));
    let f = mkfile(&s, &c, ROOT_INO, b"f", 0o644, b"");
    assert_eq!(path(f), Err(Errno::ENOTDIR));
}

#[test]
fn metadata_counts_toward_the_size_limit() {
    // 1 MiB: xattrs, symlinks and empty files alone fill it.
    let s = Store::with_limits(MIB, 0);
    let st = s.statfs();
    assert_eq!((st.blocks, st.bfree, st.files, st.ffree), (256, 256, 0, 0));
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    let used = |s: &Store| {
        let st = s.statfs();
        st.blocks - st.bfree
    };
    assert_eq!(used(&s), 1, "an empty file's inode takes a block's share");
    let value = vec![7u8; XATTR_SIZE_MAX];
    let mut n = 0;
    let e = loop {
        match s.setxattr(&root(), f, format!("user.{n}").as_bytes(), &value, 0) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100, "xattrs beyond the size limit");
    };
    assert_eq!(e, Errno::ENOSPC);
    assert!(n >= 14, "{n} xattrs of 64 KiB in 1 MiB");
    assert!(used(&s) > 240, "df counts the xattrs: {} blocks", used(&s));
    // Replacing a value by a smaller one always fits; removing frees.
    s.setxattr(&root(), f, b"user.0", b"small", libc::XATTR_REPLACE)
        .unwrap();
    for i in 1..n {
        s.removexattr(&root(), f, format!("user.{i}").as_bytes())
            .unwrap();
    }
    assert_eq!(used(&s), 1);
    // Symlinks (long targets) and names fill it too, and give it back.
    let target = vec![b'x'; 4000];
    let mut links = 0;
    let e = loop {
        match s.symlink(&root(), ROOT_INO, format!("l{links}").as_bytes(), &target) {
            Ok(_) => links += 1,
            Err(e) => break e,
        }
        assert!(links < 1000, "symlinks beyond the size limit");
    };
    assert_eq!(e, Errno::ENOSPC);
    assert!(links > 200, "{links} symlinks");
    // Data cannot be written into space metadata took.
    let (_, fh) = s
        .create(&root(), ROOT_INO, b"d", 0o644, libc::O_RDWR)
        .map(|(a, fh)| (a.ino, fh))
        .or_else(|_| {
            s.unlink(&root(), ROOT_INO, b"l0")?;
            s.create(&root(), ROOT_INO, b"d", 0o644, libc::O_RDWR)
                .map(|(a, fh)| (a.ino, fh))
        })
        .unwrap();
    let w = s.write(&root(), fh, 0, &[1u8; 8 * BLOCK_SIZE]);
    assert!(matches!(w, Err(Errno::ENOSPC)) || w.unwrap().len < 2 * BLOCK_SIZE);
    s.release(fh).unwrap();
    for i in 0..links {
        let _ = s.unlink(&root(), ROOT_INO, format!("l{i}").as_bytes());
    }
    s.unlink(&root(), ROOT_INO, b"d").unwrap();
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(s.usage().meta_bytes, 0);
    assert_eq!(used(&s), 0);
}

#[test]
fn hard_links_and_renames_charge_their_names() {
    let s = Store::with_limits(MIB, 0);
    mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    let f = s.lookup(&root(), ROOT_INO, b"f").unwrap().ino;
    let base = s.usage().meta_bytes;
    let long = vec![b'n'; 255];
    s.link(&root(), f, ROOT_INO, &long).unwrap();
    let linked = s.usage().meta_bytes;
    assert!(linked > base + 255);
    s.rename(
        &root(),
        ROOT_INO,
        &long,
        ROOT_INO,
        b"g",
        RenameFlags::default(),
    )
    .unwrap();
    assert!(s.usage().meta_bytes < linked);
    // Replacing another file "h" by "g": h's inode and entry are returned.
    mkfile(&s, &root(), ROOT_INO, b"h", 0o644, b"");
    s.rename(
        &root(),
        ROOT_INO,
        b"g",
        ROOT_INO,
        b"h",
        RenameFlags::default(),
    )
    .unwrap();
    s.unlink(&root(), ROOT_INO, b"h").unwrap();
    assert_eq!(s.usage().meta_bytes, base);
    let mut n = 0;
    let e = loop {
        let mut name = long.clone();
        name.extend_from_slice(format!("{n}").as_bytes());
        name.truncate(255);
        name[..8].copy_from_slice(format!("{n:08}").as_bytes());
        match s.link(&root(), f, ROOT_INO, &name) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 10_000, "links beyond the size limit");
    };
    assert_eq!(e, Errno::ENOSPC);
}

#[test]
fn a_huge_sparse_copy_is_bounded_and_walks_extents() {
    let s = store();
    let (_, a) = s
        .create(&root(), ROOT_INO, b"a", 0o644, libc::O_RDWR)
        .unwrap();
    let (_, b) = s
        .create(&root(), ROOT_INO, b"b", 0o644, libc::O_RDWR)
        .unwrap();
    let huge = 1u64 << 60;
    s.write(&root(), a, 5, b"head").unwrap();
    s.write(&root(), a, huge, b"tail").unwrap();
    let t = std::time::Instant::now();
    let n = s.copy_file_range(&root(), a, 0, b, 0, huge + 4).unwrap();
    assert_eq!(
        n as u64, MAX_RW_COUNT,
        "one call copies at most MAX_RW_COUNT"
    );
    // The rest, from the far end: extents only.
    let n2 = s
        .copy_file_range(&root(), a, huge - 10, b, huge - 10, 1 << 40)
        .unwrap();
    assert_eq!(n2, 14);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    let mut buf = [0u8; 9];
    s.read(b, 0, &mut buf).unwrap();
    assert_eq!(&buf, b"\0\0\0\0\0head");
    s.read(b, huge, &mut buf[..4]).unwrap();
    assert_eq!(&buf[..4], b"tail");
    assert_eq!(s.usage().used_blocks, 4, "holes stay holes");
    assert_eq!(s.lseek(b, 4096, libc::SEEK_DATA), Ok(huge & !4095));
    s.release(a).unwrap();
    s.release(b).unwrap();
}

#[test]
fn rereading_a_directory_does_not_grow_its_handle() {
    let s = store();
    for i in 0..50 {
        mkfile(
            &s,
            &root(),
            ROOT_INO,
            format!("f{i}").as_bytes(),
            0o644,
            b"",
        );
    }
    let d = s.opendir(&root(), ROOT_INO).unwrap();
    let mut cookies = Vec::new();
    for _ in 0..100 {
        cookies.clear();
        s.readdir(d, 0, |e| {
            cookies.push(e.next);
            true
        })
        .unwrap();
    }
    assert_eq!(cookies.len(), 52);
    assert!(
        cookies.iter().all(|&c| c < 60),
        "cookies are reused: {cookies:?}"
    );
    s.releasedir(d).unwrap();
}

#[test]
fn a_list_of_xattr_names_longer_than_linux_allows_is_e2big() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    let name = |i: usize| format!("user.{i:0>240}").into_bytes();
    for i in 0..260 {
        s.setxattr(&root(), f, &name(i), b"", 0).unwrap();
    }
    assert!(s.listxattr(&root(), f).unwrap().len() <= XATTR_LIST_MAX);
    for i in 260..300 {
        s.setxattr(&root(), f, &name(i), b"", 0).unwrap();
    }
    assert_eq!(err(s.listxattr(&root(), f)), Errno::E2BIG);
}

#[test]
fn a_copy_in_parts_checks_the_whole_call() {
    let s = store();
    let (_, a) = s
        .create(&root(), ROOT_INO, b"a", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), a, 0, &[1u8; 3 * BLOCK_SIZE]).unwrap();
    let bs = BLOCK_SIZE as u64;
    // The first parts do not overlap, the whole call does: EINVAL.
    assert_eq!(
        s.copy_file_range_part(&root(), a, 0, a, 2 * bs, 3 * bs, bs),
        Err(Errno::EINVAL)
    );
    // A length that wraps is EOVERFLOW even if the part would fit.
    assert_eq!(
        s.copy_file_range_part(&root(), a, 10, a, 5 * bs, u64::MAX - 5, bs),
        Err(Errno::EOVERFLOW)
    );
    assert_eq!(
        s.copy_file_range_part(&root(), a, 0, a, 5 * bs, 3 * bs, bs),
        Ok(BLOCK_SIZE)
    );
    s.release(a).unwrap();
}

#[test]
fn noatime_open_needs_owner_or_fowner() {
    let s = store();
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o777).unwrap().ino;
    let ino = mkfile(&s, &user(1001, 1001), d, b"f", 0o666, b"x");
    let fl = libc::O_RDONLY | libc::O_NOATIME;
    assert_eq!(err(s.open(&user(1000, 1000), ino, fl)), Errno::EPERM);
    let fh = s.open(&user(1001, 1001), ino, fl).unwrap();
    s.release(fh).unwrap();
    let fh = s.open(&root(), ino, fl).unwrap();
    s.release(fh).unwrap();
    // Without CAP_FOWNER even uid 0 is refused.
    let no_fowner = Creds {
        caps: Caps(!(1 << Caps::FOWNER)),
        ..root()
    };
    assert_eq!(err(s.open(&no_fowner, ino, fl)), Errno::EPERM);
}

#[test]
fn capabilities_decide_not_the_uid() {
    let s = store();
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o700).unwrap().ino;
    let f = mkfile(&s, &root(), d, b"f", 0o600, b"secret");
    let bare_root = Creds {
        caps: Caps::NONE,
        ..root()
    };
    // uid 0 owns these: the owner class still applies.
    assert!(s.lookup(&bare_root, d, b"f").is_ok());
    let other = mkfile(&s, &root(), ROOT_INO, b"o", 0o600, b"x");
    s.setattr(
        &root(),
        other,
        &SetAttr {
            uid: Some(1000),
            ..SetAttr::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(
        err(s.open(&bare_root, other, libc::O_RDONLY)),
        Errno::EACCES
    );
    let chown = SetAttr {
        uid: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(
        err(s.setattr(&bare_root, other, &chown, None)),
        Errno::EPERM
    );
    // A user holding CAP_DAC_READ_SEARCH reads and searches, never writes.
    let reader = Creds {
        caps: Caps(1 << Caps::DAC_READ_SEARCH),
        ..user(1001, 1001)
    };
    assert!(s.lookup(&reader, d, b"f").is_ok());
    let fh = s.open(&reader, f, libc::O_RDONLY).unwrap();
    s.release(fh).unwrap();
    assert_eq!(err(s.open(&reader, f, libc::O_WRONLY)), Errno::EACCES);
    let writer = Creds {
        caps: Caps(1 << Caps::DAC_OVERRIDE),
        ..user(1001, 1001)
    };
    let fh = s.open(&writer, f, libc::O_RDWR).unwrap();
    s.release(fh).unwrap();
    assert_eq!(err(s.setattr(&writer, other, &chown, None)), Errno::EPERM);
}

#[test]
fn malformed_posix_acl_is_einval_wellformed_is_unsupported() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    let name = b"system.posix_acl_access";
    assert_eq!(
        err(s.setxattr(&root(), ino, name, b"bogus", 0)),
        Errno::EOPNOTSUPP
    );
    assert_eq!(
        err(s.setxattr(&root(), ino, name, b"\x02\0\0\0x", 0)),
        Errno::EINVAL
    );
    let owner_only = b"\x02\0\0\0\x01\0\x06\0\0\0\0\0";
    assert_eq!(
        err(s.setxattr(&root(), ino, name, owner_only, 0)),
        Errno::EOPNOTSUPP
    );
}

#[test]
fn rename_whiteout_leaves_a_char_device_owned_by_the_caller() {
    let s = store();
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o777).unwrap().ino;
    mkfile(&s, &root(), d, b"a", 0o644, b"x");
    let wo = RenameFlags {
        whiteout: true,
        ..RenameFlags::default()
    };
    let both = RenameFlags {
        exchange: true,
        ..wo
    };
    assert_eq!(
        err(s.rename(&root(), d, b"a", d, b"b", both)),
        Errno::EINVAL
    );
    let user = user(1000, 1000);
    s.rename(&user, d, b"a", d, b"b", wo).unwrap();
    let w = s.lookup(&root(), d, b"a").unwrap();
    assert_eq!(
        (w.kind, w.perm, w.rdev, w.uid),
        (FileKind::CharDevice, 0, 0, 1000)
    );
    assert_eq!(s.lookup(&root(), d, b"b").unwrap().size, 1);
}
