//! Names: validation, dot names, links and the unlink/rmdir type rules.

use super::*;

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
