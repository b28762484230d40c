//! What a daemon may publish for every process (`Store::is_public`,
//! `Store::is_public_absence`), what it is told of each change
//! (`Store::watch_changes`), and unlinked files it keeps
//! (`Store::keep_unlinked`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::*;

fn chmod(s: &Store, ino: Ino, mode: u32) {
    let set = SetAttr {
        mode: Some(mode),
        ..SetAttr::default()
    };
    s.setattr(&root(), ino, &set, None).unwrap();
}

#[test]
fn only_what_everyone_may_see_is_public() {
    let s = store();
    let r = root();
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    let f = mkfile(&s, &r, d, b"f", 0o644, b"x");
    assert!(s.is_public(d, b"f", f) && s.is_public(ROOT_INO, b"d", d));
    assert!(s.is_public_absence(d, b"g") && !s.is_public_absence(d, b"f"));
    // The name must be the inode's.
    assert!(!s.is_public(d, b"g", f) && !s.is_public(ROOT_INO, b"f", f));
    // A file some class may not read; a directory some may not list or
    // search; an ACL (any extended attribute) that may narrow the mode.
    for mode in [0o640, 0o604, 0o600, 0o044] {
        chmod(&s, f, mode);
        assert!(!s.is_public(d, b"f", f), "{mode:o}");
    }
    chmod(&s, f, 0o444);
    assert!(s.is_public(d, b"f", f));
    for mode in [0o711, 0o744, 0o700, 0o751] {
        chmod(&s, d, mode);
        assert!(
            !s.is_public(d, b"f", f) && !s.is_public_absence(d, b"g"),
            "{mode:o}"
        );
    }
    chmod(&s, d, 0o555);
    assert!(s.is_public(d, b"f", f));
    s.setxattr(&r, f, b"user.a", b"1", 0).unwrap();
    assert!(!s.is_public(d, b"f", f));
    // Nothing but regular files and directories.
    let l = s.symlink(&r, d, b"l", b"f").unwrap().ino;
    assert!(!s.is_public(d, b"l", l));
    // A removed directory is no longer reached from the root.
    let e = s.mkdir(&r, d, b"e", 0o755).unwrap().ino;
    assert!(s.is_public_absence(e, b"x"));
    s.rmdir(&r, d, b"e").unwrap();
    assert!(!s.is_public_absence(e, b"x"));
}

#[test]
fn every_change_is_told_what_it_touched_before_it_ends() {
    let s = Arc::new(store());
    let seen: Arc<Mutex<Vec<Option<Vec<u64>>>>> = Arc::default();
    let (log, watched) = (seen.clone(), s.clone());
    s.watch_changes(Box::new(move |g, t| {
        // Not ended yet: a query now finds no quiet stamp, and the change
        // is the latest begun.
        assert!(watched.quiet_stamp().is_none());
        assert!(watched.still_quiet(g));
        log.lock().unwrap().push(match t {
            proto::changes::Touched::Inodes(i) => Some(i.to_vec()),
            proto::changes::Touched::Everything => None,
        });
    }));
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, b"x");
    seen.lock().unwrap().clear();
    chmod(&s, f, 0o600);
    let told = seen.lock().unwrap().pop().unwrap().unwrap();
    assert!(told.contains(&f), "{told:?}");
}

#[test]
fn a_kept_unlinked_file_stays_until_settled() {
    let s = store();
    let keep = Arc::new(AtomicBool::new(true));
    let asked = keep.clone();
    s.keep_unlinked(Box::new(move |_| asked.load(Ordering::Relaxed)));
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, &[1u8; 8192]);
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(s.getattr(f).unwrap().nlink, 0);
    assert_eq!(read_all(&s, f), vec![1u8; 8192]);
    assert_eq!(s.usage().used_blocks, 2);
    keep.store(false, Ordering::Relaxed);
    s.settle(f);
    assert_eq!(err(s.getattr(f)), Errno::ENOENT);
    assert_eq!(s.usage().used_blocks, 0);
    // Files the keeper does not want go at once.
    let g = mkfile(&s, &root(), ROOT_INO, b"g", 0o644, b"y");
    s.unlink(&root(), ROOT_INO, b"g").unwrap();
    assert_eq!(err(s.getattr(g)), Errno::ENOENT);
}
