//! The kernel's caches of the plain mount against changes from the fast
//! path: the mount keeps entries and attributes for a day, file pages across
//! opens and directory listings (no OPEN round trips, `FOPEN_CACHE_DIR`), so
//! every fast-path change must reach those caches before its call returns.
//! And files the kernel opens without telling the daemon (handle 0) must
//! behave as on tmpfs: O_TRUNC, O_APPEND, unlinked while open.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const RUN: Duration = Duration::from_secs(30);

/// Runs python code under the preload library (the fast path); panics on
/// failure.
fn fast(lib: &str, code: &str) {
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", code]).env("LD_PRELOAD", lib);
    let out = run_timeout(&mut cmd, RUN);
    assert!(
        out.status.success(),
        "{code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn fast_path_writes_replace_pages_the_kernel_keeps() {
    let test = "fast_path_writes_replace_pages_the_kernel_keeps";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    fs::write(&f, vec![b'a'; 3 * 4096]).unwrap();
    // Pages cached, and a descriptor held open across the change.
    let held = File::open(&f).unwrap();
    assert_eq!(fs::read(&f).unwrap(), vec![b'a'; 3 * 4096]);
    let code = format!(
        "import os; fd = os.open({:?}, os.O_WRONLY); os.pwrite(fd, b'B' * 10, 4100); \
         os.pwrite(fd, b'C', 3 * 4096 + 5); os.close(fd)",
        s(&f)
    );
    fast(&lib, &code);
    let mut want = vec![b'a'; 3 * 4096 + 6];
    want[4100..4110].fill(b'B');
    want[3 * 4096..3 * 4096 + 5].fill(0);
    want[3 * 4096 + 5] = b'C';
    assert_eq!(fs::read(&f).unwrap(), want, "a fresh open");
    let mut buf = vec![0; want.len() + 10];
    let n = held.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..n], &want[..], "a descriptor opened before the write");
    assert_eq!(held.metadata().unwrap().len(), want.len() as u64);
}

#[test]
fn kernel_writes_through_an_open_descriptor_are_read_by_the_fast_path() {
    let test = "kernel_writes_through_an_open_descriptor_are_read_by_the_fast_path";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    let out = bt.path().join("seen");
    let mut w = File::create(&f).unwrap();
    for round in 0..3 {
        w.write_all(format!("line {round}\n").as_bytes()).unwrap();
        let code = format!("open({:?}, 'w').write(open({:?}).read())", s(&out), s(&f));
        fast(&lib, &code);
        let text: String = (0..=round).map(|r| format!("line {r}\n")).collect();
        assert_eq!(fs::read_to_string(&out).unwrap(), text);
    }
}

#[test]
fn fast_path_namespace_changes_beat_long_kernel_timeouts() {
    let test = "fast_path_namespace_changes_beat_long_kernel_timeouts";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let d = bt.path().join("d");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("f"), b"x").unwrap();
    // Prime every kernel cache: entries, attributes, the listing.
    let before = fs::metadata(&d).unwrap();
    assert_eq!(names(&d), ["f"]);
    assert_eq!(fs::metadata(d.join("f")).unwrap().mode() & 0o777, 0o644);
    assert!(fs::metadata(d.join("g")).is_err());

    fast(
        &lib,
        &format!("import os; os.chmod({:?}, 0o600)", s(&d.join("f"))),
    );
    assert_eq!(fs::metadata(d.join("f")).unwrap().mode() & 0o777, 0o600);

    fast(
        &lib,
        &format!(
            "import os; os.rename({:?}, {:?})",
            s(&d.join("f")),
            s(&d.join("g"))
        ),
    );
    assert!(fs::metadata(d.join("f")).is_err(), "old name still cached");
    assert_eq!(fs::read(d.join("g")).unwrap(), b"x");
    assert_eq!(names(&d), ["g"], "stale cached listing");

    fast(
        &lib,
        &format!("import os; os.mkdir({:?})", s(&d.join("sub"))),
    );
    let after = fs::metadata(&d).unwrap();
    assert_eq!(after.nlink(), before.nlink() + 1, "parent's nlink");
    assert!(
        (after.mtime(), after.mtime_nsec()) > (before.mtime(), before.mtime_nsec()),
        "parent's mtime"
    );
    assert_eq!(names(&d), ["g", "sub"]);

    fast(
        &lib,
        &format!("import os; os.unlink({:?})", s(&d.join("g"))),
    );
    assert!(
        fs::metadata(d.join("g")).is_err(),
        "unlinked name still cached"
    );
    assert!(File::open(d.join("g")).is_err());
    assert_eq!(names(&d), ["sub"]);
}

#[test]
fn kernel_opened_files_truncate_and_append_like_tmpfs() {
    let test = "kernel_opened_files_truncate_and_append_like_tmpfs";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    fs::write(&f, b"0123456789").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"0123456789");
    // O_TRUNC reaches the daemon although no OPEN does.
    let mut t = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&f)
        .unwrap();
    assert_eq!(fs::metadata(&f).unwrap().len(), 0);
    t.write_all(b"abc").unwrap();
    drop(t);
    // O_APPEND lands at the real end, also after a fast-path growth.
    let mut a = OpenOptions::new().append(true).open(&f).unwrap();
    fast(&lib, &format!("open({:?}, 'a').write('DEF')", s(&f)));
    a.write_all(b"ghi").unwrap();
    drop(a);
    assert_eq!(fs::read(&f).unwrap(), b"abcDEFghi");
    // ftruncate through a descriptor of a file made read-only since.
    let mut rw = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o400)).unwrap();
    rw.set_len(2).unwrap();
    rw.seek(SeekFrom::Start(0)).unwrap();
    let mut got = String::new();
    rw.read_to_string(&mut got).unwrap();
    assert_eq!(got, "ab");
}

#[test]
fn a_file_made_write_only_is_read_whole_while_it_is_written() {
    // Its writes go around the page cache (FOPEN_DIRECT_IO): a reader that
    // opened it meanwhile, by `read` or by a shared mapping, must still see
    // every byte of every write, and its size.
    let test = "a_file_made_write_only_is_read_whole_while_it_is_written";
    if !fuse_available(test) {
        return;
    }
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    let mut w = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&f)
        .unwrap();
    w.write_all(&vec![b'a'; 2 * 4096]).unwrap();
    let r = File::open(&f).unwrap();
    let mut got = [0u8; 4];
    r.read_exact_at(&mut got, 4096).unwrap();
    assert_eq!(&got, b"aaaa", "cached by the reader");
    w.write_all_at(b"bbbb", 4096).unwrap();
    r.read_exact_at(&mut got, 4096).unwrap();
    assert_eq!(&got, b"bbbb", "a cached page outlived a direct write");
    // SAFETY: a read-only shared mapping of a file of two pages, unmapped
    // below; nothing truncates it meanwhile.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * 4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&r),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    // SAFETY: within the mapping.
    let mapped = |at: usize| unsafe { *(map as *const u8).add(at) };
    assert_eq!(mapped(4096), b'b');
    w.write_all_at(b"c", 4096).unwrap();
    assert_eq!(mapped(4096), b'c', "a mapped page outlived a direct write");
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(map, 2 * 4096) };
    w.seek(SeekFrom::End(0)).unwrap();
    w.write_all(b"tail").unwrap();
    assert_eq!(r.metadata().unwrap().len(), 2 * 4096 + 4);
    let mut all = Vec::new();
    File::open(&f).unwrap().read_to_end(&mut all).unwrap();
    assert_eq!(&all[4096..4100], b"cbbb");
    assert_eq!(&all[2 * 4096..], b"tail");
}

#[test]
fn an_unlinked_open_file_lives_until_the_kernel_closes_it() {
    let test = "an_unlinked_open_file_lives_until_the_kernel_closes_it";
    if !fuse_available(test) {
        return;
    }
    let bt = BtfuseGuard::new("64M");
    let f = bt.path().join("f");
    let free = || {
        let st = nix_statvfs(bt.path());
        st.0 * st.1
    };
    let empty = free();
    fs::write(&f, vec![7u8; 1 << 20]).unwrap();
    let mut held = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    fs::remove_file(&f).unwrap();
    assert!(fs::metadata(&f).is_err());
    assert_eq!(held.metadata().unwrap().nlink(), 0);
    assert_eq!(held.read_at_vec(4096, 1000), vec![7u8; 4096]);
    held.write_all_at(b"still", 0).unwrap();
    assert_eq!(held.read_at_vec(5, 0), b"still");
    assert!(free() < empty, "data freed while open");
    held.flush().unwrap();
    drop(held);
    // The kernel's FORGET, which frees it, follows the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    while free() != empty {
        assert!(Instant::now() < deadline, "data never freed after close");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (free blocks, fragment size) of the filesystem at `p`.
fn nix_statvfs(p: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(s(p)).unwrap();
    // SAFETY: all-zero is a valid statvfs (plain integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    (st.f_bfree, st.f_frsize)
}

trait ReadAtVec {
    fn read_at_vec(&self, len: usize, off: u64) -> Vec<u8>;
}

impl ReadAtVec for File {
    fn read_at_vec(&self, len: usize, off: u64) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.read_exact_at(&mut buf, off).unwrap();
        buf
    }
}

/// The kernel caches a listing per directory, not per open: a reader that
/// resumes after the cached pages were dropped (here by a fast-path create
/// in the directory) asks the daemon to continue, with its own handle, at a
/// position another open's listing handed out. It must get every entry.
#[test]
fn a_listing_resumed_after_an_invalidation_is_complete() {
    let test = "a_listing_resumed_after_an_invalidation_is_complete";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let d = bt.path().join("d");
    fs::create_dir(&d).unwrap();
    // Far more than one 32 KiB getdents buffer holds.
    for i in 0..3000 {
        File::create(d.join(format!("file{i:05}"))).unwrap();
    }
    assert_eq!(names(&d).len(), 3000, "a first listing fills the cache");
    let mut reader = fs::read_dir(&d).unwrap();
    let mut seen = vec![reader.next().unwrap().unwrap().file_name()];
    fast(&lib, &format!("open({:?}, 'w').close()", s(&d.join("new"))));
    seen.extend(reader.map(|e| e.unwrap().file_name()));
    let old = seen
        .iter()
        .filter(|n| n.to_str().unwrap().starts_with("file"))
        .count();
    assert_eq!(old, 3000, "entries lost after the invalidation");
    assert_eq!(names(&d).len(), 3001);
}

/// Without `default_permissions` the kernel checks nothing at open, so the
/// door answers OPEN and OPENDIR itself (the store's checks) instead of
/// letting the kernel open files unasked: uid 65534 gets EACCES on root's
/// 0600 file and 0700 directory, and reads and lists what it may.
#[test]
fn without_default_permissions_opens_are_still_checked() {
    if !root_available("without_default_permissions_opens_are_still_checked") {
        return;
    }
    let bt = BtfuseGuard::with_args("16M", &["-o", "nodefault_permissions,mode=755"]);
    let secret = bt.path().join("secret");
    fs::write(&secret, b"root only").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let open = bt.path().join("open");
    fs::write(&open, b"anyone").unwrap();
    let private = bt.path().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let try_as_nobody = |args: &[&str]| {
        let mut cmd = command_as(Some(65534), PYTHON);
        cmd.args(args);
        let out = run_timeout(&mut cmd, RUN);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let code = "import sys, os\n\
                try:\n    print(open(sys.argv[1]).read())\n\
                except OSError as e:\n    print(e.errno)";
    assert_eq!(
        try_as_nobody(&["-c", code, &s(&secret)]),
        libc::EACCES.to_string()
    );
    assert_eq!(try_as_nobody(&["-c", code, &s(&open)]), "anyone");
    let code = "import sys, os\n\
                try:\n    print(os.listdir(sys.argv[1]))\n\
                except OSError as e:\n    print(e.errno)";
    assert_eq!(
        try_as_nobody(&["-c", code, &s(&private)]),
        libc::EACCES.to_string()
    );
    assert!(try_as_nobody(&["-c", code, &s(bt.path())]).contains("'open'"));
}

/// A read's reply renews what the open file knows of its attributes (the
/// read moved the atime, a change): the read at the end of a file just read
/// asks the daemon nothing, and bytes another process appends through the
/// plain mount meanwhile are still read.
#[test]
fn the_end_of_a_file_just_read_is_known_and_an_append_is_seen() {
    let test = "the_end_of_a_file_just_read_is_known_and_an_append_is_seen";
    let Some(lib) = preload_or_skip(test) else {
        return;
    };
    let bt = BtfuseGuard::new("16M");
    let f = bt.path().join("f");
    fs::write(&f, b"hello\n").unwrap();
    // An atime before the mtime: a read must update it (relatime), so the
    // open brings no bytes and the first read goes to the daemon.
    let old = filetime(&f);
    let before = fast_path_count(bt.path(), "read");
    let path = f.display().to_string();
    fast(
        &lib,
        &format!(
            r#"
import os
fd = os.open({path:?}, os.O_RDONLY)
assert os.read(fd, 100) == b"hello\n"
assert os.read(fd, 100) == b""
assert os.fstat(fd).st_atime > {old}
"#
        ),
    );
    let after = fast_path_count(bt.path(), "read");
    assert_eq!(after - before, 1, "the read at the end asked");
    fast(
        &lib,
        &format!(
            r#"
import os, subprocess
fd = os.open({path:?}, os.O_RDONLY)
assert os.read(fd, 100) == b"hello\n"
assert os.read(fd, 100) == b""
env = {{k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}}
subprocess.run(["sh", "-c", "printf more >> " + {path:?}], env=env, check=True)
assert os.read(fd, 100) == b"more", "the append"
assert os.read(fd, 100) == b""
"#
        ),
    );
}

/// Sets `f`'s atime to 2020-01-01 through the kernel; returns it.
fn filetime(f: &Path) -> i64 {
    let out = Command::new("touch")
        .args(["-a", "-d", "2020-01-01T00:00:00Z"])
        .arg(f)
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::metadata(f).unwrap().atime()
}
