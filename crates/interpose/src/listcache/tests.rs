//! Unit tests of the listing cache (one shared table: one test at a time).

use super::*;
use crate::metacache::{FOLLOW, NOFOLLOW, RAW};
use proto::WireAttr;

/// `raw` as `ops::stat_abs` passes it, in a buffer that goes on (with bytes
/// a word read must mask off).
fn padded(raw: &[u8]) -> Padded<'static> {
    let bytes = [raw, b"/\xffq\x01z/\x80"].concat();
    Padded::new(Box::leak(bytes.into_boxed_slice()), raw.len())
}

fn attr(ino: u64, mode: u32) -> WireAttr {
    WireAttr {
        ino,
        mode,
        ..WireAttr::default()
    }
}

/// Entries as `keep` takes them: names and their attributes' bytes.
fn entries<'a>(
    v: impl IntoIterator<Item = &'a (&'a [u8], WireAttr)>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    v.into_iter().map(|(n, a)| (*n, proto::bytes_of(a)))
}

/// Generation `g` of a mount without a change log.
fn gen(g: u64) -> Now {
    Now::new(g, None)
}

fn key(base: u64, path: &[u8], how: u64) -> Key<'_> {
    Key {
        mount: 3,
        base,
        path,
        how,
    }
}

/// The tests share one table: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

const FILE: u32 = libc::S_IFREG | 0o644;
const LINK: u32 = libc::S_IFLNK | 0o777;

#[test]
fn a_listing_answers_its_names_by_inode_and_by_path_until_the_generation_moves() {
    let _one = serial();
    let names: [(&[u8], WireAttr); 5] = [
        (b".", attr(1, libc::S_IFDIR)),
        (b"..", attr(2, libc::S_IFDIR)),
        (b"a", attr(10, FILE)),
        (b"a-much-longer-name-than-eight", attr(11, FILE)),
        (b"l", attr(12, LINK)),
    ];
    let dir = ListedDir {
        mount: 3,
        ino: Some(7001),
        path: Some((0, b"x/y")),
    };
    keep(&dir, entries(&names), 40, true, true);
    let ino = |k: &Key<'_>, g| lookup(k, k.base, gen(g)).map(|a| a.map(|a| a.ino));
    assert_eq!(ino(&key(7001, b"a", NOFOLLOW), 40), Some(Ok(10)));
    assert_eq!(ino(&key(7001, b"a", FOLLOW), 40), Some(Ok(10)));
    // Through any fd of the directory (another handle, same inode).
    assert_eq!(
        lookup(&key(123, b"a", FOLLOW), 7001, gen(40)).map(|a| a.map(|a| a.ino)),
        Some(Ok(10))
    );
    assert_eq!(
        ino(&key(0, b"x/y/a-much-longer-name-than-eight", FOLLOW), 40),
        Some(Ok(11))
    );
    // A symlink answers lstat only; the whole listing answers ENOENT.
    assert_eq!(ino(&key(7001, b"l", NOFOLLOW), 40), Some(Ok(12)));
    assert_eq!(ino(&key(7001, b"l", FOLLOW), 40), None);
    assert_eq!(ino(&key(0, b"x/y/b", FOLLOW), 40), Some(Err(libc::ENOENT)));
    // Not these names, bases or generations.
    assert_eq!(ino(&key(7001, b".", NOFOLLOW), 40), None);
    assert_eq!(ino(&key(7001, b"x/y/a", NOFOLLOW), 40), None);
    assert_eq!(ino(&key(7002, b"a", NOFOLLOW), 40), None);
    assert_eq!(ino(&key(0, b"x/a", NOFOLLOW), 40), None);
    assert_eq!(ino(&key(7001, b"a", NOFOLLOW), 41), None);
    assert_eq!(ino(&key(metacache::RAW, b"/m/x/y/a", NOFOLLOW), 40), None);
}

#[test]
fn a_partial_or_unordered_listing_never_answers_enoent_or_wrongly() {
    let _one = serial();
    let part: [(&[u8], WireAttr); 2] = [(b"m", attr(20, FILE)), (b"n", attr(21, FILE))];
    let dir = ListedDir {
        mount: 3,
        ino: Some(8001),
        path: None,
    };
    keep(&dir, entries(&part), 50, false, false);
    assert_eq!(
        lookup(&key(8001, b"n", NOFOLLOW), 8001, gen(50)).map(|a| a.map(|a| a.ino)),
        Some(Ok(21))
    );
    assert_eq!(lookup(&key(8001, b"z", NOFOLLOW), 8001, gen(50)), None);
    let unordered: [(&[u8], WireAttr); 2] = [(b"q", attr(30, FILE)), (b"p", attr(31, FILE))];
    let dir = ListedDir {
        ino: Some(8002),
        ..dir
    };
    keep(&dir, entries(&unordered), 50, true, true);
    assert_eq!(lookup(&key(8002, b"q", NOFOLLOW), 8002, gen(50)), None);
    assert_eq!(lookup(&key(8002, b"zz", NOFOLLOW), 8002, gen(50)), None);
}

#[test]
fn every_part_of_a_long_listing_answers_and_only_a_whole_one_says_enoent() {
    let _one = serial();
    let dir = ListedDir {
        mount: 3,
        ino: Some(8500),
        path: Some((0, b"long")),
    };
    let first: [(&[u8], WireAttr); 2] = [(b"a", attr(40, FILE)), (b"b", attr(41, FILE))];
    let rest: [(&[u8], WireAttr); 2] = [(b"c", attr(42, FILE)), (b"d", attr(43, FILE))];
    keep(&dir, entries(&first), 70, true, false);
    keep(&dir, entries(&rest), 70, false, false);
    let found = |base, path: &'static [u8]| {
        lookup(&key(base, path, NOFOLLOW), base, gen(70)).map(|a| a.map(|a| a.ino))
    };
    for (name, ino) in [(&b"a"[..], 40), (b"b", 41), (b"c", 42), (b"d", 43)] {
        assert_eq!(found(8500, name), Some(Ok(ino)));
    }
    assert_eq!(found(0, b"long/a"), Some(Ok(40)));
    assert_eq!(found(0, b"long/d"), Some(Ok(43)));
    assert_eq!(found(8500, b"bb"), None);
    // Listed again from the start, whole: its slot is reused.
    keep(&dir, entries(&first), 71, true, true);
    assert_eq!(
        lookup(&key(8500, b"a", NOFOLLOW), 8500, gen(71)).map(|a| a.map(|a| a.ino)),
        Some(Ok(40))
    );
    assert_eq!(
        lookup(&key(8500, b"c", NOFOLLOW), 8500, gen(71)),
        Some(Err(libc::ENOENT))
    );
}

#[test]
fn a_listing_that_fills_its_slot_is_searched_without_a_hash_table() {
    let _one = serial();
    let names: Vec<Vec<u8>> = (0..2500)
        .map(|i| format!("{i:05}{}", "x".repeat(105)).into_bytes())
        .collect();
    let dir = ListedDir {
        mount: 3,
        ino: Some(9500),
        path: None,
    };
    let listed: Vec<(&[u8], WireAttr)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (&n[..], attr(i as u64, FILE)))
        .collect();
    keep(&dir, entries(&listed), 80, true, true);
    let t = table().unwrap();
    let slot = (0..SLOTS)
        .find(|&s| t[s].w[H_INO].load(Ordering::Relaxed) == 9500)
        .unwrap();
    assert_eq!(
        t[slot].w[H_TABLE].load(Ordering::Relaxed),
        0,
        "no room for a table"
    );
    let kept = t[slot].w[H_COUNT].load(Ordering::Relaxed);
    assert!(kept > 100 && kept & WHOLE == 0, "{kept:#x}");
    let found =
        |i: usize| lookup(&key(1, &names[i], NOFOLLOW), 9500, gen(80)).map(|a| a.map(|a| a.ino));
    assert_eq!(found(0), Some(Ok(0)));
    assert_eq!(found(kept as usize - 1), Some(Ok(kept - 1)));
    // Past what the slot holds: not known (never ENOENT).
    assert_eq!(found(kept as usize), None);
    assert_eq!(found(2499), None);
}

#[test]
fn a_listing_kept_again_replaces_its_slot_and_many_listings_cycle_through_slots() {
    let _one = serial();
    let dir = |h| ListedDir {
        mount: 3,
        ino: Some(h),
        path: None,
    };
    let one = |ino| [(b"f" as &[u8], attr(ino, FILE))];
    keep(&dir(9000), entries(&one(1)), 60, true, true);
    keep(&dir(9000), entries(&one(2)), 61, true, true);
    let found = |h, g| lookup(&key(h, b"f", NOFOLLOW), h, gen(g)).map(|a| a.map(|a| a.ino));
    assert_eq!(found(9000, 61), Some(Ok(2)));
    assert_eq!(found(9000, 60), None);
    for h in 9001..9001 + 2 * SLOTS as u64 {
        keep(&dir(h), entries(&one(h)), 62, true, true);
    }
    let last = 9000 + 2 * SLOTS as u64;
    assert_eq!(found(last, 62), Some(Ok(last)));
    assert_eq!(found(9001, 62), None);
}

#[test]
fn a_directory_named_by_its_string_answers_its_names_only_while_it_holds() {
    let _one = serial();
    let names: [(&[u8], WireAttr); 3] = [
        (b"a", attr(71, FILE)),
        (b"b", attr(72, FILE)),
        (b"l", attr(73, LINK)),
    ];
    let dir = ListedDir {
        mount: 3,
        ino: Some(7100),
        path: None,
    };
    keep(&dir, entries(&names), 70, true, true);
    let at = |g: u64| move |m: usize| (m == 3).then_some(Now::new(g, None));
    let ino = |raw: &[u8], how, g| {
        lookup_raw(RAW, padded(raw), how, at(g)).map(|(m, hit)| {
            assert_eq!((m, hit.dir_ino), (3, 7100));
            hit.answer.map(|a| a.ino)
        })
    };
    // Not before a lookup by the resolved path noted the string.
    assert_eq!(ino(b"/mnt/d/a", NOFOLLOW, 70), None);
    note_raw_dir(RAW, b"/mnt/d/a", 3, 7100, 70);
    assert_eq!(ino(b"/mnt/d/a", NOFOLLOW, 70), Some(Ok(71)));
    assert_eq!(ino(b"/mnt/d/b", FOLLOW, 70), Some(Ok(72)));
    assert_eq!(ino(b"/mnt/d/zz", FOLLOW, 70), Some(Err(libc::ENOENT)));
    assert_eq!(ino(b"/mnt/d/l", NOFOLLOW, 70), Some(Ok(73)));
    // A symlink's target is not in the listing.
    assert_eq!(ino(b"/mnt/d/l", FOLLOW, 70), None);
    // Only that string, only names, only at that generation.
    for other in [
        &b"/mnt/dd/a"[..],
        b"/mnt/d",
        b"/mnt/d/",
        b"/mnt/d/.",
        b"/mnt/d/..",
        b"/mnt//d/a",
    ] {
        assert_eq!(
            ino(other, NOFOLLOW, 70),
            None,
            "{:?}",
            String::from_utf8_lossy(other)
        );
    }
    assert_eq!(ino(b"/mnt/d/a", NOFOLLOW, 71), None);
    // The directory listed again after a change answers what it holds now.
    let now: [(&[u8], WireAttr); 1] = [(b"c", attr(74, FILE))];
    keep(&dir, entries(&now), 75, true, true);
    note_raw_dir(RAW, b"/mnt/d/c", 3, 7100, 75);
    assert_eq!(ino(b"/mnt/d/c", NOFOLLOW, 75), Some(Ok(74)));
    assert_eq!(ino(b"/mnt/d/a", NOFOLLOW, 75), Some(Err(libc::ENOENT)));
    // A string noted under one raw base (relative to one cwd) answers under
    // that base only.
    let cwd = |epoch: u64| 1 << 63 | epoch;
    note_raw_dir(cwd(1), b"d/c", 3, 7100, 75);
    let rel = |base, raw: &[u8]| {
        lookup_raw(base, padded(raw), NOFOLLOW, at(75)).map(|(_, hit)| hit.answer.map(|a| a.ino))
    };
    assert_eq!(rel(cwd(1), b"d/c"), Some(Ok(74)));
    assert_eq!(rel(cwd(2), b"d/c"), None, "after a chdir");
    assert_eq!(rel(RAW, b"d/c"), None, "not an absolute string");
}

#[test]
fn a_listing_of_short_similar_names_is_found_in_a_probe_or_two() {
    for (count, name) in [(100usize, 2usize), (1000, 4)] {
        let names: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("f{i:0name$}").into_bytes())
            .collect();
        let size = (2 * count).next_power_of_two();
        let mut used = vec![false; size];
        let mut probes = 0;
        for n in &names {
            let words = n.len().div_ceil(8);
            let mut p = first_probe(name_hash((0..words).map(|k| name_word(n, k))));
            while used[p & (size - 1)] {
                p += 1;
                probes += 1;
            }
            used[p & (size - 1)] = true;
        }
        assert!(probes < count, "{probes} extra probes for {count} names");
    }
}

#[test]
fn directory_strings_spread_over_every_entry() {
    let used: std::collections::HashSet<usize> = (0..1000)
        .map(|i| {
            let dir = format!("/mnt/tree/d{i:03}");
            by_string::slot_of(dir_hash(0, metacache::RAW, dir.as_bytes()))
        })
        .collect();
    assert_eq!(used.len(), by_string::DIR_STRING_SLOTS, "{used:?}");
}

#[test]
fn a_listing_holds_past_changes_that_did_not_touch_its_directory() {
    use proto::changes::{ChangeLog, Touched};
    let _one = serial();
    // Leaked for the `'static` a mount's log has.
    let log: &'static ChangeLog = Box::leak(Box::new(ChangeLog::new()));
    let dir = ListedDir {
        mount: 3,
        ino: Some(7700),
        path: None,
    };
    keep(
        &dir,
        entries(&[(b"a" as &[u8], attr(77, FILE))]),
        90,
        true,
        true,
    );
    note_raw_dir(RAW, b"/mnt/e/a", 3, 7700, 90);
    let now = |g| Now::new(g, Some(log));
    let by_ino = |g| lookup(&key(7700, b"a", NOFOLLOW), 7700, now(g)).map(|a| a.map(|a| a.ino));
    let by_string =
        |g| lookup_raw(RAW, padded(b"/mnt/e/a"), NOFOLLOW, |_| Some(now(g))).map(|(_, h)| h.answer);
    log.record(91, Touched::Inodes(&[7800, 1]));
    assert_eq!(by_ino(91), Some(Ok(77)), "another directory changed");
    assert!(by_string(91).is_some());
    assert_eq!(
        lookup(&key(7700, b"a", NOFOLLOW), 7700, gen(91)),
        None,
        "without a log, only the stamp"
    );
    log.record(92, Touched::Inodes(&[7700, 1]));
    assert_eq!(by_ino(92), None, "its directory changed");
    assert_eq!(by_string(92), None);
    assert_eq!(by_ino(93), None, "93 left no record");
    keep(
        &dir,
        entries(&[(b"a" as &[u8], attr(78, FILE))]),
        93,
        true,
        true,
    );
    note_raw_dir(RAW, b"/mnt/e/a", 3, 7700, 93);
    log.record(94, Touched::Everything);
    assert_eq!(by_ino(94), None, "a global change");
    assert_eq!(by_string(94), None);
}

#[test]
fn the_walkers_are_the_threads_that_kept_the_last_listings() {
    let _one = serial();
    for k in 0..16 {
        walkers(k);
    }
    assert_eq!(walkers(16), 1, "one thread");
    let threads: Vec<_> = (0..3u64)
        .map(|t| std::thread::spawn(move || walkers(17 + t)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(walkers(20), 4, "three more, each on its own stack");
    for k in 21..37 {
        walkers(k);
    }
    assert_eq!(walkers(37), 1, "the others' keeps are 16 listings back");
}

#[test]
fn a_listing_is_unanswered_until_it_answers_a_lookup() {
    let _one = serial();
    let names: [(&[u8], WireAttr); 2] = [(b"p", attr(20, FILE)), (b"q", attr(21, FILE))];
    let dir = ListedDir {
        mount: 3,
        ino: Some(7301),
        path: None,
    };
    let s = keep(&dir, entries(&names), 60, true, true).expect("kept");
    assert!(unanswered(s));
    // One lookup answered makes it answered.
    let k = key(7301, b"p", NOFOLLOW);
    assert_eq!(
        lookup(&k, 7301, gen(60)).map(|a| a.map(|a| a.ino)),
        Some(Ok(20))
    );
    assert!(!unanswered(s));
    // Written again, it starts unanswered; a stale one never answers.
    assert_eq!(keep(&dir, entries(&names), 61, true, true), Some(s));
    assert!(unanswered(s));
    assert_eq!(lookup(&k, 7301, gen(62)), None);
    assert!(unanswered(s));
    // Not kept at all: nothing to say.
    assert_eq!(keep(&dir, entries(&names), 0, true, true), None);
}
