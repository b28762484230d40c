//! Unit tests of the metadata cache (one shared table: one test at a time).

use super::*;

/// The tests share one table and epoch: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stamp of generation `g` with no directory.
fn st(g: u64) -> Stamp {
    Stamp { gen: g, dir: 0 }
}

/// Generation `g` of a mount without a change log.
fn at(g: u64) -> Now {
    Now::new(g, None)
}

fn attr(ino: u64, mode: u32) -> WireAttr {
    WireAttr {
        ino,
        mode,
        ..WireAttr::default()
    }
}

fn key(path: &[u8], how: u64) -> Key<'_> {
    Key {
        mount: 0,
        base: 0,
        path,
        how,
    }
}

#[test]
fn a_hit_needs_the_same_stamp_key_and_form() {
    let _one = serial();
    let a = attr(7, libc::S_IFREG | 0o644);
    insert(&key(b"t1/a", NOFOLLOW), &Ok(a), st(5));
    assert_eq!(lookup(&key(b"t1/a", NOFOLLOW), at(5)), Some(Ok(a)));
    assert_eq!(
        lookup(&key(b"t1/a", NOFOLLOW), at(6)),
        None,
        "generation moved"
    );
    assert_eq!(lookup(&key(b"t1/b", NOFOLLOW), at(5)), None);
    assert_eq!(
        lookup(&key(b"t1/a", FOLLOW), at(5)),
        None,
        "inserted for lstat only"
    );
    let other_base = Key {
        base: 3,
        ..key(b"t1/a", NOFOLLOW)
    };
    assert_eq!(lookup(&other_base, at(5)), None);
    assert_eq!(lookup(&Key::fstat(0, 0), at(5)), None);
}

#[test]
fn an_lstat_of_a_non_symlink_answers_stat_too_but_not_of_a_symlink() {
    let _one = serial();
    let f = attr(8, libc::S_IFREG | 0o600);
    insert(&key(b"t2/f", reuse(NOFOLLOW, &Ok(f))), &Ok(f), st(9));
    assert_eq!(lookup(&key(b"t2/f", FOLLOW), at(9)), Some(Ok(f)));
    let l = attr(9, libc::S_IFLNK | 0o777);
    insert(&key(b"t2/l", reuse(NOFOLLOW, &Ok(l))), &Ok(l), st(9));
    assert_eq!(lookup(&key(b"t2/l", FOLLOW), at(9)), None);
    assert_eq!(lookup(&key(b"t2/l", NOFOLLOW), at(9)), Some(Ok(l)));
    let t = attr(10, libc::S_IFREG | 0o600);
    insert(&key(b"t2/m", reuse(FOLLOW, &Ok(t))), &Ok(t), st(9));
    assert_eq!(
        lookup(&key(b"t2/m", NOFOLLOW), at(9)),
        None,
        "may be a symlink's target"
    );
}

/// `WAYS + 1` distinct paths whose keys fall into one set.
fn one_set_paths() -> Vec<Vec<u8>> {
    let set = |p: &[u8]| (key(p, NOFOLLOW).words_and_hash().1 as usize) & (NENT - 1) & !(WAYS - 1);
    let mut by_set = std::collections::HashMap::<usize, Vec<Vec<u8>>>::new();
    (0u32..)
        .map(|i| format!("t5/{i}").into_bytes())
        .find_map(|p| {
            let same = by_set.entry(set(&p)).or_default();
            same.push(p);
            (same.len() > WAYS).then(|| same.clone())
        })
        .unwrap()
}

#[test]
fn a_set_keeps_its_ways_and_a_spare_key_displaces_nothing_current() {
    let _one = serial();
    let paths = one_set_paths();
    let (full, extra) = paths.split_at(WAYS);
    for (i, p) in full.iter().enumerate() {
        insert(
            &key(p, NOFOLLOW),
            &Ok(attr(i as u64 + 20, libc::S_IFREG)),
            st(40),
        );
    }
    for (i, p) in full.iter().enumerate() {
        let a = attr(i as u64 + 20, libc::S_IFREG);
        assert_eq!(lookup(&key(p, NOFOLLOW), at(40)), Some(Ok(a)), "way {i}");
    }
    let x = attr(30, libc::S_IFREG);
    insert_spare(&key(&extra[0], NOFOLLOW), &Ok(x), st(40));
    assert_eq!(
        lookup(&key(&extra[0], NOFOLLOW), at(40)),
        None,
        "all ways current"
    );
    assert!(full
        .iter()
        .all(|p| lookup(&key(p, NOFOLLOW), at(40)).is_some()));
    // Newer: the others are stale now, and a spare key takes one.
    insert_spare(&key(&extra[0], NOFOLLOW), &Ok(x), st(41));
    assert_eq!(lookup(&key(&extra[0], NOFOLLOW), at(41)), Some(Ok(x)));
    // A first key displaces the oldest when all are current.
    insert(
        &key(&full[0], NOFOLLOW),
        &Ok(attr(20, libc::S_IFREG)),
        st(41),
    );
    assert_eq!(
        lookup(&key(&full[0], NOFOLLOW), at(41)),
        Some(Ok(attr(20, libc::S_IFREG)))
    );
    assert_eq!(lookup(&key(&extra[0], NOFOLLOW), at(41)), Some(Ok(x)));
}

#[test]
fn unstamped_and_overlong_answers_are_not_kept() {
    let _one = serial();
    let a = attr(11, libc::S_IFREG);
    insert(&key(b"t3/a", NOFOLLOW), &Ok(a), st(0));
    assert_eq!(lookup(&key(b"t3/a", NOFOLLOW), at(0)), None);
    let long = [b'x'; KEY_MAX + 1];
    insert(&key(&long, NOFOLLOW), &Ok(a), st(3));
    assert_eq!(lookup(&key(&long, NOFOLLOW), at(3)), None);
    let edge = [b'y'; KEY_MAX];
    insert(&key(&edge, NOFOLLOW), &Ok(a), st(3));
    assert_eq!(lookup(&key(&edge, NOFOLLOW), at(3)), Some(Ok(a)));
}

#[test]
fn the_table_stays_bounded_and_keeps_the_newest() {
    let _one = serial();
    let a = attr(12, libc::S_IFREG);
    let mut name = *b"t4/00000000";
    for i in 0..(4 * NENT as u32) {
        name[3..].copy_from_slice(format_hex(i).as_slice());
        insert(&key(&name, NOFOLLOW), &Ok(a), st(100 + i as u64 / 1000));
    }
    // The last one written is there.
    assert_eq!(
        lookup(
            &key(&name, NOFOLLOW),
            at(100 + (4 * NENT as u64 - 1) / 1000)
        ),
        Some(Ok(a))
    );
}

fn format_hex(i: u32) -> [u8; 8] {
    let mut o = [0u8; 8];
    for (k, d) in o.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(i >> (28 - 4 * k)) as usize & 15];
    }
    o
}

#[test]
fn a_missing_name_is_kept_and_answers_stat_only_from_lstat() {
    let _one = serial();
    insert(
        &key(b"t6/gone", reuse(NOFOLLOW, &Err(libc::ENOENT))),
        &Err(libc::ENOENT),
        st(21),
    );
    assert_eq!(
        lookup(&key(b"t6/gone", NOFOLLOW), at(21)),
        Some(Err(libc::ENOENT))
    );
    assert_eq!(
        lookup(&key(b"t6/gone", FOLLOW), at(21)),
        Some(Err(libc::ENOENT))
    );
    assert_eq!(lookup(&key(b"t6/gone", NOFOLLOW), at(22)), None);
    insert(
        &key(b"t6/dangling", reuse(FOLLOW, &Err(libc::ENOENT))),
        &Err(libc::ENOENT),
        st(21),
    );
    assert_eq!(
        lookup(&key(b"t6/dangling", FOLLOW), at(21)),
        Some(Err(libc::ENOENT))
    );
    assert_eq!(
        lookup(&key(b"t6/dangling", NOFOLLOW), at(21)),
        None,
        "the link itself exists"
    );
}

#[test]
fn an_answer_holds_past_changes_to_other_directories_and_inodes() {
    use proto::changes::{ChangeLog, Touched};
    let _one = serial();
    // Leaked for the `'static` a mount's log has.
    let log: &'static ChangeLog = Box::leak(Box::new(ChangeLog::new()));
    let now = |g| Now::new(g, Some(log));
    let a = attr(77, libc::S_IFREG);
    let found = key(b"t8/a", NOFOLLOW);
    let absent = key(b"t8/gone", NOFOLLOW);
    let fstat = Key::fstat(0, 9);
    insert(&found, &Ok(a), Stamp { gen: 10, dir: 500 });
    insert(&absent, &Err(libc::ENOENT), Stamp { gen: 10, dir: 500 });
    insert(&fstat, &Ok(a), Stamp { gen: 10, dir: 0 });
    insert(&key(b"t8/b", NOFOLLOW), &Ok(a), Stamp { gen: 10, dir: 0 });
    log.record(11, Touched::Inodes(&[600, 601]));
    assert_eq!(lookup(&found, now(11)), Some(Ok(a)));
    assert_eq!(lookup(&absent, now(11)), Some(Err(libc::ENOENT)));
    assert_eq!(lookup(&fstat, now(11)), Some(Ok(a)));
    assert_eq!(
        lookup(&key(b"t8/b", NOFOLLOW), now(11)),
        None,
        "no directory: only its stamp"
    );
    log.record(12, Touched::Inodes(&[77, 601]));
    assert_eq!(lookup(&found, now(12)), None, "its inode changed");
    assert_eq!(lookup(&fstat, now(12)), None);
    assert_eq!(
        lookup(&absent, now(12)),
        Some(Err(libc::ENOENT)),
        "not its directory"
    );
    log.record(13, Touched::Inodes(&[500, 400]));
    assert_eq!(lookup(&absent, now(13)), None, "its directory changed");
}

#[test]
fn a_raw_path_entry_tells_its_mount_and_follows_that_mounts_generation() {
    let _one = serial();
    let a = attr(30, libc::S_IFREG);
    let raw = Key {
        mount: 3,
        base: RAW,
        path: b"/mnt/x/t7",
        how: NOFOLLOW,
    };
    insert(&raw, &Ok(a), st(40));
    let asked = Key { mount: 0, ..raw };
    let gen = |m: usize| (m == 3).then_some(at(40));
    assert_eq!(lookup_with(&asked, gen), Some((Ok(a), 3)));
    assert_eq!(lookup_with(&asked, |m| (m == 3).then_some(at(41))), None);
    assert_eq!(lookup_with(&asked, |_| None), None, "mount not usable");
}

#[test]
fn decimal_digits() {
    let mut b = [0u8; 20];
    assert_eq!(decimal(0, &mut b), b"0");
    assert_eq!(decimal(1234567, &mut b), b"1234567");
    assert_eq!(decimal(u64::MAX, &mut b), b"18446744073709551615");
}

#[test]
fn a_credential_change_hides_every_entry() {
    let _one = serial();
    let a = attr(13, libc::S_IFREG);
    insert(&key(b"t5/a", NOFOLLOW), &Ok(a), st(4));
    assert!(lookup(&key(b"t5/a", NOFOLLOW), at(4)).is_some());
    TEST_EPOCH.fetch_add(1, Ordering::Relaxed);
    assert_eq!(lookup(&key(b"t5/a", NOFOLLOW), at(4)), None);
}
