//! Readdir: cookies, batches and changes while reading.

use super::*;

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

/// A readdirplus from the start is kept whole and answers the next
/// listings of the directory, through any handle and from any cookie,
/// only while nothing changed anywhere: a create, a chmod and an unlink
/// all show in the next listing, with their stamp.
#[test]
fn a_kept_listing_answers_only_while_nothing_changes() {
    let s = store();
    let r = root();
    let d = s.mkdir(&r, ROOT_INO, b"d", 0o755).unwrap().ino;
    mkfile(&s, &r, d, b"a", 0o644, b"");
    mkfile(&s, &r, d, b"b", 0o644, b"");
    let c = mkfile(&s, &r, d, b"c", 0o644, b"x");
    // A fresh handle, two entries a call, resumed from the cookies.
    let list = |plus: bool| {
        let fh = s.opendir(&r, d).unwrap();
        let (mut out, mut cookie, mut stamps) = (Vec::new(), 0, Vec::new());
        loop {
            let (mut n, mut last) = (0, None);
            let stamp = s
                .readdir_stamped(fh, cookie, plus, |e| {
                    if n == 2 {
                        return false;
                    }
                    n += 1;
                    let perm = e.attr.map(|a| a.perm);
                    out.push((String::from_utf8(e.name.to_vec()).unwrap(), perm));
                    last = Some(e.next);
                    true
                })
                .unwrap();
            stamps.push(stamp);
            match last {
                Some(next) => cookie = next,
                None => break,
            }
        }
        s.releasedir(fh).unwrap();
        (out, stamps)
    };
    let (first, stamps) = list(true);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [".", "..", "a", "b", "c"]);
    assert!(stamps.iter().all(|s| s.is_some()), "{stamps:?}");
    assert_eq!(list(true).0, first);
    let plain: Vec<String> = list(false).0.into_iter().map(|(n, _)| n).collect();
    assert_eq!(plain, names);
    mkfile(&s, &r, d, b"bb", 0o644, b"");
    chmod(&s, c, 0o600);
    s.unlink(&r, d, b"a").unwrap();
    let (after, stamps) = list(true);
    let got: Vec<(&str, u16)> = after
        .iter()
        .skip(2)
        .map(|(n, p)| (n.as_str(), p.unwrap()))
        .collect();
    assert_eq!(got, [("b", 0o644), ("bb", 0o644), ("c", 0o600)]);
    assert!(stamps.iter().all(|s| s.is_some()), "{stamps:?}");
}
