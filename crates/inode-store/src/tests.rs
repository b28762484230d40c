//! Behavioural tests of the store (tmpfs is the reference).

use std::collections::HashSet;
use std::sync::Arc;

use crate::*;

mod data;
mod names;
mod permissions;
mod public;
mod readdir;
mod rename;
mod threads;
mod times;
mod xattr;

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
