//! Rename: its flags, permission rules and what it moves.

use super::*;

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
