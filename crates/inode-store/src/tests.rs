//! Behavioural tests of the store (tmpfs is the reference).

use std::collections::HashSet;
use std::sync::Arc;

use crate::*;

const MIB: u64 = 1 << 20;

fn store() -> Store {
    Store::new(64 * MIB)
}

fn root() -> Creds {
    Creds::root()
}

fn user(uid: u32, gid: u32) -> Creds {
    Creds {
        uid,
        gid,
        groups: Vec::new(),
        caps: crate::Caps::NONE,
    }
}

fn err<T: std::fmt::Debug>(r: Result<T>) -> Errno {
    r.expect_err("expected an error")
}

/// Creates a file with `data`, closes it, returns its ino.
fn mkfile(s: &Store, c: &Creds, parent: Ino, name: &[u8], mode: u32, data: &[u8]) -> Ino {
    let (a, fh) = s
        .create(
            c,
            parent,
            name,
            libc::S_IFREG | mode,
            libc::O_RDWR | libc::O_EXCL,
        )
        .unwrap();
    if !data.is_empty() {
        assert_eq!(s.write(c, fh, 0, data).unwrap().len, data.len());
    }
    s.release(fh).unwrap();
    a.ino
}

fn read_all(s: &Store, ino: Ino) -> Vec<u8> {
    let fh = s.open(&root(), ino, libc::O_RDONLY).unwrap();
    let size = s.getattr(ino).unwrap().size as usize;
    let mut buf = vec![0xEEu8; size + 10];
    let n = s.read(fh, 0, &mut buf).unwrap();
    s.release(fh).unwrap();
    buf.truncate(n);
    buf
}

fn chmod(s: &Store, ino: Ino, mode: u32) {
    let set = SetAttr {
        mode: Some(mode),
        ..SetAttr::default()
    };
    s.setattr(&root(), ino, &set, None).unwrap();
}

fn names(s: &Store, dir: Ino) -> Vec<Vec<u8>> {
    let fh = s.opendir(&root(), dir).unwrap();
    let mut out = Vec::new();
    s.readdir(fh, 0, |e| {
        out.push(e.name.to_vec());
        true
    })
    .unwrap();
    s.releasedir(fh).unwrap();
    out
}

// ---------------------------------------------------------------- basics

#[test]
fn new_store_has_root_dir() {
    let s = store();
    let a = s.getattr(ROOT_INO).unwrap();
    assert_eq!(a.kind, FileKind::Directory);
    assert_eq!(a.perm, 0o755);
    assert_eq!(a.nlink, 2);
    assert_eq!(a.mode(), libc::S_IFDIR | 0o755);
    assert_eq!(s.lookup(&root(), ROOT_INO, b"..").unwrap().ino, ROOT_INO);
    assert_eq!(s.lookup(&root(), ROOT_INO, b".").unwrap().ino, ROOT_INO);
}

#[test]
fn create_write_read_roundtrip() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"hello world");
    assert_eq!(read_all(&s, ino), b"hello world");
    let a = s.lookup(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(a.ino, ino);
    assert_eq!(a.size, 11);
    assert_eq!(a.blocks, 8);
    assert_eq!(a.blksize, 4096);
}

#[test]
fn append_handle_writes_at_eof() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"abc");
    let fh = s
        .open(&root(), ino, libc::O_WRONLY | libc::O_APPEND)
        .unwrap();
    let w = s.write(&root(), fh, 0, b"def").unwrap();
    assert_eq!(w, Written { offset: 3, len: 3 });
    s.release(fh).unwrap();
    assert_eq!(read_all(&s, ino), b"abcdef");
}

#[test]
fn handles_remember_access_mode() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"abc");
    let ro = s.open(&root(), ino, libc::O_RDONLY).unwrap();
    let wo = s.open(&root(), ino, libc::O_WRONLY).unwrap();
    assert_eq!(err(s.write(&root(), ro, 0, b"x")), Errno::EBADF);
    assert_eq!(err(s.read(wo, 0, &mut [0u8; 4])), Errno::EBADF);
    s.release(ro).unwrap();
    s.release(wo).unwrap();
    assert_eq!(err(s.read(ro, 0, &mut [0u8; 4])), Errno::EBADF);
    assert_eq!(err(s.release(ro)), Errno::EBADF);
    assert_eq!(s.usage().open_handles, 0);
}

#[test]
fn open_dir_for_writing_is_eisdir_and_read_on_dir_handle_is_eisdir() {
    let s = store();
    assert_eq!(
        err(s.open(&root(), ROOT_INO, libc::O_WRONLY)),
        Errno::EISDIR
    );
    assert_eq!(err(s.open(&root(), ROOT_INO, libc::O_RDWR)), Errno::EISDIR);
    let fh = s.open(&root(), ROOT_INO, libc::O_RDONLY).unwrap();
    assert_eq!(err(s.read(fh, 0, &mut [0u8; 4])), Errno::EISDIR);
    s.release(fh).unwrap();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    assert_eq!(err(s.open(&root(), f, libc::O_DIRECTORY)), Errno::ENOTDIR);
    assert_eq!(err(s.opendir(&root(), f)), Errno::ENOTDIR);
}

#[test]
fn o_trunc_empties_file_and_updates_times() {
    let s = store();
    let ino = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, &[1u8; 10000]);
    let before = s.getattr(ino).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let fh = s
        .open(&root(), ino, libc::O_WRONLY | libc::O_TRUNC)
        .unwrap();
    let a = s.getattr(ino).unwrap();
    assert_eq!(a.size, 0);
    assert_eq!(a.blocks, 0);
    assert!(a.mtime > before.mtime && a.ctime > before.ctime);
    s.release(fh).unwrap();
    assert_eq!(s.usage().used_blocks, 0);
}

#[test]
fn create_existing_opens_it_unless_excl() {
    let s = store();
    mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"data");
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    assert_eq!(
        err(s.create(&root(), ROOT_INO, b"f", 0o644, flags)),
        Errno::EEXIST
    );
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    assert_eq!(a.size, 4);
    s.release(fh).unwrap();
    s.mkdir(&root(), ROOT_INO, b"d", 0o755).unwrap();
    assert_eq!(
        err(s.create(&root(), ROOT_INO, b"d", 0o644, libc::O_RDWR)),
        Errno::EISDIR
    );
    assert_eq!(
        err(s.mknod(&root(), ROOT_INO, b"f", libc::S_IFREG | 0o644, 0)),
        Errno::EEXIST
    );
    assert_eq!(err(s.mkdir(&root(), ROOT_INO, b"f", 0o755)), Errno::EEXIST);
}

#[test]
fn mknod_kinds_and_symlinks() {
    let s = store();
    let a = s
        .mknod(&root(), ROOT_INO, b"r", libc::S_IFREG | 0o600, 0)
        .unwrap();
    assert_eq!(a.kind, FileKind::Regular);
    let a = s
        .mknod(&root(), ROOT_INO, b"p", libc::S_IFIFO | 0o600, 0)
        .unwrap();
    assert_eq!(a.kind, FileKind::Fifo);
    let a = s
        .mknod(&root(), ROOT_INO, b"c", libc::S_IFCHR | 0o600, 0x0103)
        .unwrap();
    assert_eq!((a.kind, a.rdev), (FileKind::CharDevice, 0x0103));
    let a = s
        .mknod(&root(), ROOT_INO, b"s", libc::S_IFSOCK | 0o600, 0)
        .unwrap();
    assert_eq!(a.kind, FileKind::Socket);
    let a = s
        .mknod(&root(), ROOT_INO, b"b", libc::S_IFBLK | 0o600, 7)
        .unwrap();
    assert_eq!(a.kind, FileKind::BlockDevice);
    let d = s.mknod(&root(), ROOT_INO, b"d", libc::S_IFDIR | 0o600, 0);
    assert_eq!(err(d), Errno::EPERM);
    chmod(&s, ROOT_INO, 0o777);
    let u = user(1000, 1000);
    let c = s.mknod(&u, ROOT_INO, b"c2", libc::S_IFCHR | 0o600, 1);
    assert_eq!(err(c), Errno::EPERM);
    let l = s.symlink(&root(), ROOT_INO, b"l", b"target/path").unwrap();
    assert_eq!((l.kind, l.size, l.perm), (FileKind::Symlink, 11, 0o777));
    assert_eq!(s.readlink(l.ino).unwrap(), b"target/path");
    assert_eq!(l.blocks, 0);
    let long = s.symlink(&root(), ROOT_INO, b"long", &[b'a'; 200]).unwrap();
    assert_eq!((long.size, long.blocks), (200, 8));
    let r = s.symlink(&root(), ROOT_INO, b"toolong", &[b'a'; 4096]);
    assert_eq!(err(r), Errno::ENAMETOOLONG);
    assert_eq!(err(s.readlink(ROOT_INO)), Errno::EINVAL);
    assert_eq!(err(s.symlink(&root(), ROOT_INO, b"l2", b"")), Errno::ENOENT);
    assert_eq!(err(s.open(&root(), l.ino, libc::O_RDONLY)), Errno::ELOOP);
}

// ---------------------------------------------------------------- names

#[test]
fn name_validation_matches_linux() {
    let s = store();
    let long = vec![b'a'; 256];
    let ok = vec![b'a'; 255];
    assert_eq!(err(s.lookup(&root(), ROOT_INO, b"")), Errno::ENOENT);
    assert_eq!(err(s.lookup(&root(), ROOT_INO, b"a/b")), Errno::EINVAL);
    assert_eq!(
        err(s.mkdir(&root(), ROOT_INO, b"a\0b", 0o755)),
        Errno::EINVAL
    );
    assert_eq!(
        err(s.mkdir(&root(), ROOT_INO, &long, 0o755)),
        Errno::ENAMETOOLONG
    );
    assert_eq!(err(s.lookup(&root(), ROOT_INO, &long)), Errno::ENAMETOOLONG);
    s.mkdir(&root(), ROOT_INO, &ok, 0o755).unwrap();
    assert_eq!(err(s.mkdir(&root(), ROOT_INO, b"", 0o755)), Errno::ENOENT);
}

#[test]
fn dot_names_as_targets_fail_like_linux() {
    let s = store();
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o755).unwrap().ino;
    let r = root();
    assert_eq!(err(s.mkdir(&r, d, b".", 0o755)), Errno::EEXIST);
    assert_eq!(err(s.mkdir(&r, d, b"..", 0o755)), Errno::EEXIST);
    assert_eq!(err(s.mknod(&r, d, b".", libc::S_IFREG, 0)), Errno::EEXIST);
    assert_eq!(err(s.symlink(&r, d, b"..", b"x")), Errno::EEXIST);
    assert_eq!(err(s.rmdir(&r, d, b".")), Errno::EINVAL);
    assert_eq!(err(s.rmdir(&r, d, b"..")), Errno::ENOTEMPTY);
    assert_eq!(err(s.unlink(&r, d, b".")), Errno::EISDIR);
    assert_eq!(err(s.unlink(&r, d, b"..")), Errno::EISDIR);
    assert_eq!(
        err(s.create(&r, d, b".", 0o644, libc::O_RDWR)),
        Errno::EISDIR
    );
    let excl = libc::O_RDWR | libc::O_EXCL;
    assert_eq!(err(s.create(&r, d, b".", 0o644, excl)), Errno::EEXIST);
    let f = mkfile(&s, &r, d, b"f", 0o644, b"");
    assert_eq!(err(s.link(&r, f, d, b".")), Errno::EEXIST);
    let fl = RenameFlags::default();
    assert_eq!(err(s.rename(&r, d, b".", d, b"x", fl)), Errno::EBUSY);
    assert_eq!(err(s.rename(&r, d, b"f", d, b"..", fl)), Errno::EBUSY);
    let nr = RenameFlags {
        noreplace: true,
        ..RenameFlags::default()
    };
    assert_eq!(err(s.rename(&r, d, b"f", d, b".", nr)), Errno::EEXIST);
    assert_eq!(s.lookup(&r, d, b"..").unwrap().ino, ROOT_INO);
}

#[test]
fn non_directory_parent_is_enotdir() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"");
    assert_eq!(err(s.lookup(&root(), f, b"x")), Errno::ENOTDIR);
    assert_eq!(err(s.mkdir(&root(), f, b"x", 0o755)), Errno::ENOTDIR);
    assert_eq!(err(s.unlink(&root(), f, b"x")), Errno::ENOTDIR);
    assert_eq!(err(s.lookup(&root(), 999, b"x")), Errno::ENOENT);
}

#[test]
fn unlink_rmdir_type_rules() {
    let s = store();
    let r = root();
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    mkfile(&s, &r, d, b"f", 0o644, b"");
    assert_eq!(err(s.unlink(&r, ROOT_INO, b"d")), Errno::EISDIR);
    assert_eq!(err(s.rmdir(&r, d, b"f")), Errno::ENOTDIR);
    assert_eq!(err(s.rmdir(&r, ROOT_INO, b"d")), Errno::ENOTEMPTY);
    assert_eq!(err(s.unlink(&r, d, b"nope")), Errno::ENOENT);
    s.unlink(&r, d, b"f").unwrap();
    s.rmdir(&r, ROOT_INO, b"d").unwrap();
    assert_eq!(err(s.getattr(d)), Errno::ENOENT);
    assert_eq!(s.usage().inodes, 1);
}

#[test]
fn directory_nlink_counts_subdirectories() {
    let s = store();
    let r = root();
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    assert_eq!(s.getattr(ROOT_INO).unwrap().nlink, 3);
    s.mkdir(&r, d, b"a", 0o755).unwrap();
    s.mkdir(&r, d, b"b", 0o755).unwrap();
    mkfile(&s, &r, d, b"f", 0o644, b"");
    let a = s.getattr(d).unwrap();
    assert_eq!(a.nlink, 4);
    assert_eq!(a.size, 40 + 3 * 20);
    s.rmdir(&r, d, b"a").unwrap();
    assert_eq!(s.getattr(d).unwrap().nlink, 3);
}

#[test]
fn hard_links_count_and_directories_refuse_them() {
    let s = store();
    let r = root();
    let f = mkfile(&s, &r, ROOT_INO, b"f", 0o644, b"x");
    let a = s.link(&r, f, ROOT_INO, b"g").unwrap();
    assert_eq!(a.nlink, 2);
    assert_eq!(err(s.link(&r, f, ROOT_INO, b"g")), Errno::EEXIST);
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    assert_eq!(err(s.link(&r, d, ROOT_INO, b"d2")), Errno::EPERM);
    s.unlink(&r, ROOT_INO, b"f").unwrap();
    assert_eq!(s.getattr(f).unwrap().nlink, 1);
    assert_eq!(read_all(&s, f), b"x");
}

#[test]
fn protected_hardlinks_refuse_linking_files_of_others() {
    let s = store();
    chmod(&s, ROOT_INO, 0o777);
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"x");
    let u = user(1000, 1000);
    assert_eq!(err(s.link(&u, f, ROOT_INO, b"g")), Errno::EPERM);
    chmod(&s, f, 0o666);
    s.link(&u, f, ROOT_INO, b"g").unwrap();
}

// ---------------------------------------------------------------- times

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
    let a15 = s.setattr(&root(), ino, &set, Some(fh)).unwrap();
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

// ---------------------------------------------------------------- permissions

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
    s.setattr(&u, f, &set, Some(fh)).unwrap();
    assert_eq!(read_all(&s, f), b"ab");
    // ...and on a read-only handle is EINVAL.
    let ro = s.open(&u, f, libc::O_RDONLY).unwrap();
    assert_eq!(err(s.setattr(&u, f, &set, Some(ro))), Errno::EINVAL);
    let big = SetAttr {
        size: Some(u64::MAX),
        ..SetAttr::default()
    };
    assert_eq!(err(s.setattr(&root(), f, &big, None)), Errno::EFBIG);
    s.release(fh).unwrap();
    s.release(ro).unwrap();
}

// ---------------------------------------------------------------- data

#[test]
fn sparse_file_reads_zeros_and_counts_only_allocated_blocks() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fh, 10 * MIB, b"tail").unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!(at.size, 10 * MIB + 4);
    assert_eq!(at.blocks, 8);
    let mut buf = vec![0xAAu8; 8192];
    assert_eq!(s.read(fh, 5 * MIB, &mut buf).unwrap(), 8192);
    assert!(buf.iter().all(|&b| b == 0));
    let mut buf = [0u8; 10];
    assert_eq!(s.read(fh, 10 * MIB, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"tail");
    assert_eq!(s.read(fh, 20 * MIB, &mut buf).unwrap(), 0);
    // Truncate up creates a hole, no block.
    let set = SetAttr {
        size: Some(100 * MIB),
        ..SetAttr::default()
    };
    assert_eq!(s.setattr(&root(), a.ino, &set, Some(fh)).unwrap().blocks, 8);
    s.release(fh).unwrap();
}

#[test]
fn truncate_frees_blocks_and_zeroes_tail() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, &[9u8; 5 * BLOCK_SIZE]);
    assert_eq!(s.usage().used_blocks, 5);
    let set = SetAttr {
        size: Some(4096 + 10),
        ..SetAttr::default()
    };
    let a = s.setattr(&root(), f, &set, None).unwrap();
    assert_eq!(a.blocks, 16);
    assert_eq!(s.usage().used_blocks, 2);
    let set = SetAttr {
        size: Some(3 * 4096),
        ..SetAttr::default()
    };
    s.setattr(&root(), f, &set, None).unwrap();
    let data = read_all(&s, f);
    assert!(data[..4106].iter().all(|&b| b == 9));
    assert!(data[4106..].iter().all(|&b| b == 0));
}

#[test]
fn unlink_while_open_keeps_data() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fh, 0, &[5u8; 3 * BLOCK_SIZE]).unwrap();
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(err(s.lookup(&root(), ROOT_INO, b"f")), Errno::ENOENT);
    let mut buf = vec![0u8; 3 * BLOCK_SIZE];
    assert_eq!(s.read(fh, 0, &mut buf).unwrap(), buf.len());
    assert!(buf.iter().all(|&b| b == 5));
    assert_eq!(s.getattr(a.ino).unwrap().nlink, 0);
    s.write(&root(), fh, 0, b"still writable").unwrap();
    assert_eq!(s.usage().used_blocks, 3);
    s.release(fh).unwrap();
    let u = s.usage();
    assert_eq!((u.used_blocks, u.slabs_mapped, u.inodes), (0, 0, 1));
    assert_eq!(err(s.getattr(a.ino)), Errno::ENOENT);
}

#[test]
fn looked_up_inode_keeps_metadata_but_frees_blocks() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, &[1u8; 8192]);
    s.add_lookup(f);
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(s.usage().used_blocks, 0);
    let a = s.getattr(f).unwrap();
    assert_eq!((a.nlink, a.size), (0, 8192));
    s.drop_lookups(f, 1);
    assert_eq!(err(s.getattr(f)), Errno::ENOENT);
    // Saturating: dropping more than were added is harmless.
    s.drop_lookups(f, 10);
    s.drop_lookups(ROOT_INO, 10);
    assert!(s.getattr(ROOT_INO).is_ok());
}

/// The kernel reopening an unlinked file by handle (the FUSE door's
/// reserved names): its lookup and open keep the file after the fast-path
/// handle closes; the last release frees the data, dropping the lookup the inode.
#[test]
fn unlinked_file_handed_to_the_kernel_lives_until_forgotten() {
    let s = store();
    let (a, fast) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fast, 0, &[7u8; 2 * BLOCK_SIZE]).unwrap();
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    let seen = s.add_lookup_by_handle(fast).unwrap();
    assert_eq!((seen.ino, seen.nlink), (a.ino, 0));
    let kernel = s.open(&root(), a.ino, libc::O_RDWR).unwrap();
    s.release(fast).unwrap();
    assert_eq!(err(s.add_lookup_by_handle(fast)), Errno::EBADF);
    let mut buf = [0u8; 4];
    assert_eq!(s.read(kernel, BLOCK_SIZE as u64, &mut buf).unwrap(), 4);
    assert_eq!(buf, [7; 4]);
    s.release(kernel).unwrap();
    assert_eq!(s.usage().used_blocks, 0);
    assert_eq!(s.getattr(a.ino).unwrap().nlink, 0);
    s.drop_lookups(a.ino, 1);
    assert_eq!(err(s.getattr(a.ino)), Errno::ENOENT);
    assert_eq!(s.usage().inodes, 1);
}

#[test]
fn deleting_files_returns_memory_to_the_os() {
    let s = store();
    for i in 0..20u32 {
        let name = format!("f{i}");
        mkfile(
            &s,
            &root(),
            ROOT_INO,
            name.as_bytes(),
            0o644,
            &[1u8; 100_000],
        );
    }
    let u = s.usage();
    assert_eq!(u.used_blocks, 20 * 25);
    assert!(u.slabs_mapped >= 8);
    for i in 0..20u32 {
        s.unlink(&root(), ROOT_INO, format!("f{i}").as_bytes())
            .unwrap();
    }
    let u = s.usage();
    assert_eq!((u.used_blocks, u.slabs_mapped, u.inodes), (0, 0, 1));
    // Kept for reuse a while, then unmapped.
    assert!(u.slabs_idle >= 8);
    let later = std::time::Instant::now() + crate::IDLE_DECAY;
    assert_eq!(s.release_idle_memory(later), None);
    assert_eq!(s.usage().slabs_idle, 0);
}

#[test]
fn write_past_capacity_is_short_then_enospc_then_recovers() {
    // Four blocks of data, one for the file's metadata.
    let s = Store::new(5 * BLOCK_SIZE as u64);
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    let w = s.write(&root(), fh, 100, &[3u8; 6 * BLOCK_SIZE]).unwrap();
    assert_eq!(w.len, 4 * BLOCK_SIZE - 100);
    assert_eq!(s.getattr(a.ino).unwrap().size, 4 * BLOCK_SIZE as u64);
    assert_eq!(
        err(s.write(&root(), fh, 4 * BLOCK_SIZE as u64, b"x")),
        Errno::ENOSPC
    );
    // Overwriting allocated blocks still works.
    assert_eq!(s.write(&root(), fh, 0, b"ok").unwrap().len, 2);
    let st = s.statfs();
    assert_eq!((st.blocks, st.bfree, st.bavail), (5, 0, 0));
    let set = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    s.setattr(&root(), a.ino, &set, Some(fh)).unwrap();
    assert_eq!(s.write(&root(), fh, 0, &[1u8; 8192]).unwrap().len, 8192);
    s.release(fh).unwrap();
    assert_eq!(s.statfs().bfree, 2);
}

#[test]
fn inode_limit_gives_enospc() {
    let s = Store::with_limits(64 * MIB, 1024);
    let st = s.statfs();
    assert_eq!((st.files, st.ffree), (1024, 1023));
    for i in 0..1023u32 {
        s.mknod(
            &root(),
            ROOT_INO,
            format!("n{i}").as_bytes(),
            libc::S_IFIFO | 0o644,
            0,
        )
        .unwrap();
    }
    let r = s.mknod(&root(), ROOT_INO, b"more", libc::S_IFREG | 0o644, 0);
    assert_eq!(err(r), Errno::ENOSPC);
    assert_eq!(s.statfs().ffree, 0);
    s.unlink(&root(), ROOT_INO, b"n0").unwrap();
    s.mkdir(&root(), ROOT_INO, b"more", 0o755).unwrap();
    assert_eq!(s.statfs().namelen, 255);
    assert_eq!(s.statfs().bsize, 4096);
}

#[test]
fn huge_offsets_do_not_overflow() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    assert_eq!(err(s.write(&root(), fh, u64::MAX, b"x")), Errno::EINVAL);
    // Like rw_verify_area: offset + len beyond loff_t is EINVAL.
    assert_eq!(
        err(s.write(&root(), fh, MAX_FILE_SIZE, b"x")),
        Errno::EINVAL
    );
    assert_eq!(
        err(s.write(&root(), fh, MAX_FILE_SIZE - 2, b"xyz")),
        Errno::EINVAL
    );
    let w = s.write(&root(), fh, MAX_FILE_SIZE - 2, b"xy").unwrap();
    assert_eq!(w.len, 2);
    assert_eq!(s.getattr(a.ino).unwrap().size, MAX_FILE_SIZE);
    assert_eq!(err(s.read(fh, u64::MAX, &mut [0u8; 4])), Errno::EINVAL);
    assert_eq!(
        err(s.read(fh, MAX_FILE_SIZE - 2, &mut [0u8; 4])),
        Errno::EINVAL
    );
    assert_eq!(s.read(fh, MAX_FILE_SIZE - 2, &mut [0u8; 2]).unwrap(), 2);
    assert_eq!(err(s.fallocate(fh, MAX_FILE_SIZE - 1, 10, 0)), Errno::EFBIG);
    assert_eq!(err(s.fallocate(fh, u64::MAX, 10, 0)), Errno::EINVAL);
    assert_eq!(
        s.lseek(fh, MAX_FILE_SIZE - 10, libc::SEEK_DATA).unwrap(),
        MAX_FILE_SIZE - 10
    );
    s.release(fh).unwrap();
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(s.usage().used_blocks, 0);
}

#[test]
fn fallocate_allocates_zeroed_blocks_and_punch_frees_them() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.fallocate(fh, 0, 3 * 4096, 0).unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (3 * 4096, 24));
    s.fallocate(fh, 5 * 4096, 4096, libc::FALLOC_FL_KEEP_SIZE)
        .unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (3 * 4096, 32));
    s.write(&root(), fh, 0, &[7u8; 3 * 4096]).unwrap();
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    s.fallocate(fh, 100, 2 * 4096, punch).unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (3 * 4096, 24));
    let mut buf = vec![0u8; 3 * 4096];
    s.read(fh, 0, &mut buf).unwrap();
    assert!(buf[..100].iter().all(|&b| b == 7));
    assert!(buf[100..8292].iter().all(|&b| b == 0));
    assert!(buf[8292..].iter().all(|&b| b == 7));
    assert_eq!(
        err(s.fallocate(fh, 0, 10, libc::FALLOC_FL_PUNCH_HOLE)),
        Errno::EOPNOTSUPP
    );
    let zero = libc::FALLOC_FL_ZERO_RANGE;
    assert_eq!(err(s.fallocate(fh, 0, 10, zero)), Errno::EOPNOTSUPP);
    assert_eq!(err(s.fallocate(fh, 0, 0, 0)), Errno::EINVAL);
    let ro = s.open(&root(), a.ino, libc::O_RDONLY).unwrap();
    assert_eq!(err(s.fallocate(ro, 0, 10, 0)), Errno::EBADF);
    s.release(ro).unwrap();
    s.release(fh).unwrap();
}

#[test]
fn fallocate_respects_capacity_all_or_nothing() {
    // Four blocks of data, one for the file's metadata.
    let s = Store::new(5 * BLOCK_SIZE as u64);
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fh, 0, b"x").unwrap();
    assert_eq!(err(s.fallocate(fh, 0, 5 * 4096, 0)), Errno::ENOSPC);
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (1, 8));
    s.fallocate(fh, 0, 4 * 4096, 0).unwrap();
    assert_eq!(s.statfs().bfree, 0);
    s.release(fh).unwrap();
}

#[test]
fn seek_data_and_hole_follow_allocated_blocks() {
    let s = store();
    let (_, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    // [hole 0..8K][data 8K..12K][hole 12K..20K][data 20K..20K+10]
    s.write(&root(), fh, 8192, &[1u8; 4096]).unwrap();
    s.write(&root(), fh, 20480, &[1u8; 10]).unwrap();
    let d = |o| s.lseek(fh, o, libc::SEEK_DATA);
    let h = |o| s.lseek(fh, o, libc::SEEK_HOLE);
    assert_eq!(d(0), Ok(8192));
    assert_eq!(d(9000), Ok(9000));
    assert_eq!(d(12288), Ok(20480));
    assert_eq!(h(0), Ok(0));
    assert_eq!(h(8192), Ok(12288));
    assert_eq!(h(20480), Ok(20490));
    assert_eq!(d(20490), Err(Errno::ENXIO));
    assert_eq!(h(20490), Err(Errno::ENXIO));
    assert_eq!(s.lseek(fh, 0, libc::SEEK_SET), Err(Errno::EINVAL));
    // fallocated but never written blocks are holes for SEEK_DATA (tmpfs).
    s.fallocate(fh, 0, 4096, libc::FALLOC_FL_KEEP_SIZE).unwrap();
    assert_eq!(d(0), Ok(8192));
    assert_eq!(h(0), Ok(0));
    s.write(&root(), fh, 10, b"x").unwrap();
    assert_eq!(d(0), Ok(0));
    assert_eq!(h(0), Ok(4096));
    s.release(fh).unwrap();
}

#[test]
fn fallocate_on_non_regular_files() {
    let s = store();
    let fh = s.opendir(&root(), ROOT_INO).unwrap();
    assert_eq!(err(s.fallocate(fh, 0, 10, 0)), Errno::EBADF);
    assert_eq!(err(s.lseek(fh, 0, libc::SEEK_DATA)), Errno::EINVAL);
    s.releasedir(fh).unwrap();
}

#[test]
fn copy_file_range_copies_data_and_keeps_holes() {
    let s = store();
    let r = root();
    let (src, fin) = s.create(&r, ROOT_INO, b"a", 0o644, libc::O_RDWR).unwrap();
    s.write(&r, fin, 0, &[1u8; 4096]).unwrap();
    s.write(&r, fin, 3 * 4096, &[2u8; 100]).unwrap();
    let (dst, fout) = s.create(&r, ROOT_INO, b"b", 0o644, libc::O_RDWR).unwrap();
    let n = s.copy_file_range(&r, fin, 0, fout, 0, 1 << 30).unwrap();
    assert_eq!(n, 3 * 4096 + 100);
    assert_eq!(read_all(&s, dst.ino), read_all(&s, src.ino));
    assert_eq!(s.getattr(dst.ino).unwrap().blocks, 16);
    assert_eq!(s.copy_file_range(&r, fin, 1 << 20, fout, 0, 10).unwrap(), 0);
    // Huge lengths (as cp passes) are fine; only a wrap is EOVERFLOW.
    let n = s
        .copy_file_range(&r, fin, 100, fout, 0, i64::MAX as u64)
        .unwrap();
    assert_eq!(n, 3 * 4096);
    let r2 = s.copy_file_range(&r, fin, 100, fout, 0, u64::MAX);
    assert_eq!(err(r2), Errno::EOVERFLOW);
    // Same file: overlapping ranges are EINVAL, disjoint ones work.
    assert_eq!(
        err(s.copy_file_range(&r, fin, 0, fin, 10, 100)),
        Errno::EINVAL
    );
    assert_eq!(
        s.copy_file_range(&r, fin, 0, fin, 20000, 4096).unwrap(),
        4096
    );
    let mut buf = [0u8; 4096];
    s.read(fin, 20000, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 1));
    let ro = s.open(&r, dst.ino, libc::O_RDONLY).unwrap();
    assert_eq!(err(s.copy_file_range(&r, fin, 0, ro, 0, 10)), Errno::EBADF);
    let d = s.opendir(&r, ROOT_INO).unwrap();
    assert_eq!(err(s.copy_file_range(&r, d, 0, fout, 0, 10)), Errno::EISDIR);
    for fh in [fin, fout, ro, d] {
        s.release(fh).unwrap();
    }
}

// ---------------------------------------------------------------- rename

fn flags(noreplace: bool, exchange: bool) -> RenameFlags {
    RenameFlags {
        noreplace,
        exchange,
        whiteout: false,
    }
}

#[test]
fn rename_moves_and_replaces_files() {
    let s = store();
    let r = root();
    let a = mkfile(&s, &r, ROOT_INO, b"a", 0o644, b"AAAA");
    let b = mkfile(&s, &r, ROOT_INO, b"b", 0o644, &[1u8; 8192]);
    s.rename(&r, ROOT_INO, b"a", ROOT_INO, b"c", flags(false, false))
        .unwrap();
    assert_eq!(s.lookup(&r, ROOT_INO, b"c").unwrap().ino, a);
    assert_eq!(err(s.lookup(&r, ROOT_INO, b"a")), Errno::ENOENT);
    let r2 = s.rename(&r, ROOT_INO, b"c", ROOT_INO, b"b", flags(true, false));
    assert_eq!(err(r2), Errno::EEXIST);
    s.rename(&r, ROOT_INO, b"c", ROOT_INO, b"b", flags(false, false))
        .unwrap();
    assert_eq!(s.lookup(&r, ROOT_INO, b"b").unwrap().ino, a);
    assert_eq!(err(s.getattr(b)), Errno::ENOENT);
    assert_eq!(s.usage().used_blocks, 1);
    assert_eq!(s.getattr(ROOT_INO).unwrap().size, 40 + 20);
    let r3 = s.rename(&r, ROOT_INO, b"b", ROOT_INO, b"x", flags(true, true));
    assert_eq!(err(r3), Errno::EINVAL);
    let r4 = s.rename(&r, ROOT_INO, b"zz", ROOT_INO, b"x", flags(false, false));
    assert_eq!(err(r4), Errno::ENOENT);
}

#[test]
fn rename_updates_times_of_parents_and_moved_inode() {
    let s = store();
    let r = root();
    let d1 = s.mkdir(&r, ROOT_INO, b"d1", 0o755).unwrap().ino;
    let d2 = s.mkdir(&r, ROOT_INO, b"d2", 0o755).unwrap().ino;
    let f = mkfile(&s, &r, d1, b"f", 0o644, b"");
    let (t1, t2, tf) = (
        s.getattr(d1).unwrap(),
        s.getattr(d2).unwrap(),
        s.getattr(f).unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(2));
    s.rename(&r, d1, b"f", d2, b"g", flags(false, false))
        .unwrap();
    assert!(s.getattr(d1).unwrap().mtime > t1.mtime);
    assert!(s.getattr(d2).unwrap().mtime > t2.mtime);
    let nf = s.getattr(f).unwrap();
    assert!(nf.ctime > tf.ctime);
    assert_eq!(nf.mtime, tf.mtime);
}

#[test]
fn rename_hard_links_of_same_inode_is_a_noop() {
    let s = store();
    let r = root();
    let f = mkfile(&s, &r, ROOT_INO, b"a", 0o644, b"x");
    s.link(&r, f, ROOT_INO, b"b").unwrap();
    s.rename(&r, ROOT_INO, b"a", ROOT_INO, b"b", flags(false, false))
        .unwrap();
    assert_eq!(s.lookup(&r, ROOT_INO, b"a").unwrap().ino, f);
    assert_eq!(s.getattr(f).unwrap().nlink, 2);
    s.rename(&r, ROOT_INO, b"a", ROOT_INO, b"a", flags(false, false))
        .unwrap();
}

#[test]
fn rename_directory_rules() {
    let s = store();
    let r = root();
    let fl = flags(false, false);
    let a = s.mkdir(&r, ROOT_INO, b"a", 0o755).unwrap().ino;
    let sub = s.mkdir(&r, a, b"sub", 0o755).unwrap().ino;
    s.mkdir(&r, ROOT_INO, b"empty", 0o755).unwrap();
    let full = s.mkdir(&r, ROOT_INO, b"full", 0o755).unwrap().ino;
    mkfile(&s, &r, full, b"x", 0o644, b"");
    mkfile(&s, &r, ROOT_INO, b"file", 0o644, b"");
    // Into its own subtree.
    assert_eq!(
        err(s.rename(&r, ROOT_INO, b"a", sub, b"z", fl)),
        Errno::EINVAL
    );
    assert_eq!(
        err(s.rename(&r, ROOT_INO, b"a", a, b"z", fl)),
        Errno::EINVAL
    );
    // Onto an ancestor.
    assert_eq!(
        err(s.rename(&r, a, b"sub", ROOT_INO, b"a", fl)),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        err(s.rename(&r, ROOT_INO, b"a", ROOT_INO, b"full", fl)),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        err(s.rename(&r, ROOT_INO, b"a", ROOT_INO, b"file", fl)),
        Errno::ENOTDIR
    );
    assert_eq!(
        err(s.rename(&r, ROOT_INO, b"file", ROOT_INO, b"a", fl)),
        Errno::EISDIR
    );
    // Directory over an empty directory, across parents: nlinks follow.
    let root_links = s.getattr(ROOT_INO).unwrap().nlink;
    s.rename(&r, a, b"sub", ROOT_INO, b"empty", fl).unwrap();
    assert_eq!(s.getattr(ROOT_INO).unwrap().nlink, root_links);
    assert_eq!(s.getattr(a).unwrap().nlink, 2);
    assert_eq!(s.lookup(&r, sub, b"..").unwrap().ino, ROOT_INO);
    assert_eq!(s.lookup(&r, ROOT_INO, b"empty").unwrap().ino, sub);
    assert_eq!(s.usage().inodes, 6);
    // Moving a directory to another parent needs write permission on it.
    let u = user(1000, 1000);
    chmod(&s, ROOT_INO, 0o777);
    chmod(&s, a, 0o777);
    let mine = s.mkdir(&u, ROOT_INO, b"mine", 0o555).unwrap();
    assert_eq!(mine.uid, 1000);
    assert_eq!(
        err(s.rename(&u, ROOT_INO, b"mine", a, b"m", fl)),
        Errno::EACCES
    );
    s.rename(&u, ROOT_INO, b"mine", ROOT_INO, b"mine2", fl)
        .unwrap();
}

#[test]
fn rename_exchange_swaps_and_fixes_dir_links() {
    let s = store();
    let r = root();
    let ex = flags(false, true);
    let d1 = s.mkdir(&r, ROOT_INO, b"d1", 0o755).unwrap().ino;
    let d2 = s.mkdir(&r, ROOT_INO, b"d2", 0o755).unwrap().ino;
    let sub = s.mkdir(&r, d1, b"sub", 0o755).unwrap().ino;
    let f = mkfile(&s, &r, d2, b"f", 0o644, b"");
    assert_eq!(
        err(s.rename(&r, d1, b"sub", d2, b"nope", ex)),
        Errno::ENOENT
    );
    s.rename(&r, d1, b"sub", d2, b"f", ex).unwrap();
    assert_eq!(s.lookup(&r, d1, b"sub").unwrap().ino, f);
    assert_eq!(s.lookup(&r, d2, b"f").unwrap().ino, sub);
    assert_eq!(s.getattr(d1).unwrap().nlink, 2);
    assert_eq!(s.getattr(d2).unwrap().nlink, 3);
    assert_eq!(s.lookup(&r, sub, b"..").unwrap().ino, d2);
    // Exchanging a directory with its own ancestor is EINVAL.
    assert_eq!(
        err(s.rename(&r, ROOT_INO, b"d2", d2, b"f", ex)),
        Errno::EINVAL
    );
    assert_eq!(
        err(s.rename(&r, d2, b"f", ROOT_INO, b"d2", ex)),
        Errno::EINVAL
    );
    // Exchange in one directory swaps names.
    s.rename(&r, ROOT_INO, b"d1", ROOT_INO, b"d2", ex).unwrap();
    assert_eq!(s.lookup(&r, ROOT_INO, b"d1").unwrap().ino, d2);
    assert_eq!(s.lookup(&r, ROOT_INO, b"d2").unwrap().ino, d1);
}

#[test]
fn rename_over_open_file_keeps_its_data_until_release() {
    let s = store();
    let r = root();
    mkfile(&s, &r, ROOT_INO, b"new", 0o644, b"new");
    let old = mkfile(&s, &r, ROOT_INO, b"old", 0o644, &[4u8; 4096]);
    let fh = s.open(&r, old, libc::O_RDONLY).unwrap();
    s.rename(&r, ROOT_INO, b"new", ROOT_INO, b"old", flags(false, false))
        .unwrap();
    let mut buf = [0u8; 4096];
    assert_eq!(s.read(fh, 0, &mut buf).unwrap(), 4096);
    assert!(buf.iter().all(|&b| b == 4));
    assert_eq!(s.usage().used_blocks, 2);
    s.release(fh).unwrap();
    assert_eq!(s.usage().used_blocks, 1);
}

// ---------------------------------------------------------------- readdir

#[test]
fn readdir_lists_dots_first_then_names_in_order() {
    let s = store();
    let r = root();
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    for n in [&b"c"[..], b"a", b"b"] {
        mkfile(&s, &r, d, n, 0o644, b"");
    }
    let fh = s.opendir(&r, d).unwrap();
    let mut seen = Vec::new();
    s.readdir(fh, 0, |e| {
        seen.push((e.name.to_vec(), e.ino, e.next, e.kind));
        true
    })
    .unwrap();
    let names: Vec<&[u8]> = seen.iter().map(|x| x.0.as_slice()).collect();
    assert_eq!(names, [&b"."[..], b"..", b"a", b"b", b"c"]);
    assert_eq!((seen[0].1, seen[1].1), (d, ROOT_INO));
    assert_eq!((seen[0].2, seen[1].2), (1, 2));
    assert!(seen.windows(2).all(|w| w[0].2 < w[1].2));
    assert_eq!(seen[2].3, FileKind::Regular);
    // Refusing an entry does not consume it.
    let mut got = Vec::new();
    s.readdir(fh, seen[2].2, |e| {
        got.push(e.name.to_vec());
        false
    })
    .unwrap();
    assert_eq!(got, [b"b".to_vec()]);
    // Seeking back to an older cookie works.
    let mut again = Vec::new();
    s.readdir(fh, 1, |e| {
        again.push(e.name.to_vec());
        true
    })
    .unwrap();
    assert_eq!(
        again,
        [b"..".to_vec(), b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    s.releasedir(fh).unwrap();
    assert_eq!(err(s.readdir(fh, 0, |_| true)), Errno::EBADF);
}

#[test]
fn readdir_resume_survives_concurrent_insert_and_delete() {
    let s = store();
    let r = root();
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    for i in 0..300u32 {
        mkfile(&s, &r, d, format!("f{i:04}").as_bytes(), 0o644, b"");
    }
    let fh = s.opendir(&r, d).unwrap();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut removed: HashSet<Vec<u8>> = HashSet::new();
    let mut cookie = 0;
    let mut round = 0u32;
    loop {
        let mut batch = 0;
        let mut last = None;
        s.readdir(fh, cookie, |e| {
            if batch == 7 {
                return false;
            }
            batch += 1;
            seen.push(e.name.to_vec());
            last = Some(e.next);
            true
        })
        .unwrap();
        let Some(c) = last else { break };
        cookie = c;
        // Between batches: delete the just-returned entry, a future one,
        // and add entries before and after the cursor.
        round += 1;
        let just = seen.last().unwrap().clone();
        if just.starts_with(b"f") {
            s.unlink(&r, d, &just).unwrap();
        }
        if let Some(k) = 299u32.checked_sub(round * 3) {
            let future = format!("f{k:04}");
            let already_seen = seen.iter().any(|n| n == future.as_bytes());
            if s.unlink(&r, d, future.as_bytes()).is_ok() && !already_seen {
                removed.insert(future.into_bytes());
            }
        }
        mkfile(&s, &r, d, format!("a{round:04}").as_bytes(), 0o644, b"");
        if round <= 40 {
            mkfile(&s, &r, d, format!("z{round:04}").as_bytes(), 0o644, b"");
        }
    }
    let unique: HashSet<&Vec<u8>> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no entry twice");
    for i in 0..300u32 {
        let n = format!("f{i:04}").into_bytes();
        if !removed.contains(&n) {
            assert!(
                unique.contains(&n),
                "survivor {:?} skipped",
                String::from_utf8_lossy(&n)
            );
        }
    }
    assert!(seen.iter().all(|n| !removed.contains(n)));
    assert!(
        seen.iter().all(|n| !n.starts_with(b"a")),
        "names before the cursor are not seen"
    );
    assert_eq!(seen.iter().filter(|n| n.starts_with(b"z")).count(), 40);
    s.releasedir(fh).unwrap();
}

#[test]
fn readdir_callback_may_call_back_into_the_store() {
    let s = store();
    let r = root();
    for i in 0..300u32 {
        mkfile(&s, &r, ROOT_INO, format!("f{i}").as_bytes(), 0o644, b"");
    }
    let fh = s.opendir(&r, ROOT_INO).unwrap();
    let mut n = 0;
    s.readdir(fh, 0, |e| {
        s.add_lookup(e.ino);
        s.getattr(e.ino).unwrap();
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, 302);
    s.releasedir(fh).unwrap();
    assert_eq!(names(&s, ROOT_INO).len(), 302);
}

#[test]
fn readdir_of_removed_directory_is_enoent() {
    let s = store();
    let d = s.mkdir(&root(), ROOT_INO, b"d", 0o755).unwrap().ino;
    let fh = s.opendir(&root(), d).unwrap();
    s.rmdir(&root(), ROOT_INO, b"d").unwrap();
    assert_eq!(err(s.readdir(fh, 0, |_| true)), Errno::ENOENT);
    assert_eq!(s.handle_ino(fh).unwrap(), d);
    s.releasedir(fh).unwrap();
    assert_eq!(s.usage().inodes, 1);
}

// ---------------------------------------------------------------- xattr

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

// ---------------------------------------------------------------- threads

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
    s.fallocate(fh, 0, 4096, 0).unwrap();
    s.release(fh).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o6777);
    let u = user(1000, 1000);
    let fh = s.open(&u, f, libc::O_RDWR).unwrap();
    s.fallocate(fh, 0, 4096, libc::FALLOC_FL_KEEP_SIZE).unwrap();
    s.release(fh).unwrap();
    assert_eq!(s.getattr(f).unwrap().perm, 0o777);
}

#[test]
fn fallocate_over_unwritten_blocks_turns_them_into_data() {
    let s = store();
    let (_, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.fallocate(fh, 0, 8192, 0).unwrap();
    assert_eq!(err(s.lseek(fh, 0, libc::SEEK_DATA)), Errno::ENXIO);
    s.fallocate(fh, 0, 100, 0).unwrap();
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
