//! Differential test: random namespace/data operations run against the store
//! and against a real tmpfs directory; results (errno) and the resulting
//! trees (kind, size, nlink, perm, st_blocks) must be equal.
//!
//! Callers vary between root, three users, a root whose file capabilities
//! were dropped and a user holding `CAP_DAC_OVERRIDE` and
//! `CAP_DAC_READ_SEARCH`; the real side switches this thread's fsuid /
//! fsgid / groups / effective capabilities with raw syscalls (per-thread
//! on Linux).
//!
//! Ignored by default (needs a tmpfs and root). Run with:
//! `BTFUSE_TMPFS_DIR=/dev/shm cargo test -p inode-store --test differential_tmpfs -- --ignored`

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use inode_store::{Caps, Creds, Errno, FileKind, Ino, RenameFlags, SetAttr, Store, ROOT_INO};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

fn random_path(r: &mut Rng) -> Vec<&'static str> {
    let depth = 1 + r.below(3).min(r.below(3)) as usize;
    (0..depth).map(|_| NAMES[r.below(4) as usize]).collect()
}

fn os_err(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Walks all but the last component like the kernel (dangling symlinks as
/// intermediate components give ENOENT).
fn walk(s: &Store, c: &Creds, path: &[&str]) -> Result<Ino, Errno> {
    let mut cur = ROOT_INO;
    for comp in &path[..path.len() - 1] {
        let a = s.lookup(c, cur, comp.as_bytes())?;
        match a.kind {
            FileKind::Directory => cur = a.ino,
            FileKind::Symlink => return Err(Errno::ENOENT),
            _ => return Err(Errno::ENOTDIR),
        }
    }
    // link_path_walk checks search permission on the last parent too,
    // before the operation looks anything up.
    s.access(c, cur, libc::X_OK)?;
    Ok(cur)
}

fn last<'a>(path: &[&'a str]) -> &'a [u8] {
    path[path.len() - 1].as_bytes()
}

/// Resolves a whole path to a regular file for opening (following a final
/// dangling symlink gives ENOENT; directories EISDIR when writing).
fn resolve_file(s: &Store, c: &Creds, path: &[&str]) -> Result<Ino, Errno> {
    let a = resolve_any(s, c, path)?;
    if s.getattr(a)?.kind == FileKind::Directory {
        return Err(Errno::EISDIR);
    }
    Ok(a)
}

/// Resolves a whole path, following a final (dangling) symlink.
fn resolve_any(s: &Store, c: &Creds, path: &[&str]) -> Result<Ino, Errno> {
    let p = walk(s, c, path)?;
    let a = s.lookup(c, p, last(path))?;
    match a.kind {
        FileKind::Symlink => Err(Errno::ENOENT),
        _ => Ok(a.ino),
    }
}

const MODES: [u32; 9] = [
    0o755, 0o644, 0o1777, 0o2775, 0o4755, 0o000, 0o700, 0o777, 0o2666,
];

/// The capabilities a root caller keeps in the "reduced root" identity.
fn reduced_root_caps() -> Caps {
    let fs = [
        Caps::CHOWN,
        Caps::DAC_OVERRIDE,
        Caps::DAC_READ_SEARCH,
        Caps::FOWNER,
        Caps::FSETID,
    ];
    Caps(fs.iter().fold(u64::MAX, |m, &c| m & !(1 << c)))
}

fn creds(k: u64) -> Creds {
    match k {
        0 => Creds::root(),
        1 => Creds::user(1000, 1000, vec![]),
        2 => Creds::user(1001, 1000, vec![]),
        3 => Creds::user(1002, 1002, vec![1000]),
        4 => Creds {
            caps: reduced_root_caps(),
            ..Creds::root()
        },
        _ => Creds {
            caps: Caps(1 << Caps::DAC_OVERRIDE | 1 << Caps::DAC_READ_SEARCH),
            ..Creds::user(1003, 1003, vec![])
        },
    }
}

/// chown arguments; never (-1, -1), which the store API cannot express
/// (through FUSE the kernel turns it into a mode change if setid bits die).
fn chown_ids(n: u64) -> (Option<u32>, Option<u32>) {
    let uid = [None, Some(0), Some(1000), Some(1001)][(n % 4) as usize];
    let gid = [Some(1000), Some(0), None, Some(1002)][((n / 4) % 4) as usize];
    match (uid, gid) {
        (None, None) => (None, Some(1000)),
        ids => ids,
    }
}

/// truncate(2) by path.
fn truncate_path(p: &Path, len: u64) -> std::io::Result<()> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    let rc = unsafe { libc::truncate(c.as_ptr(), len as libc::off_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn falloc_args(n: u64) -> (u64, u64, i32) {
    let off = (n % 7) * 3000;
    let len = 1 + (n / 7) % 20000;
    let mode = match n % 3 {
        0 => 0,
        1 => libc::FALLOC_FL_KEEP_SIZE,
        _ => libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE,
    };
    (off, len, mode)
}

/// Compares the contents and SEEK_DATA / SEEK_HOLE answers of every
/// regular file.
fn compare_data(s: &Store, base: &Path, tree: &[String], seed: u64) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let c = Creds::root();
    for line in tree {
        let mut parts = line.split(' ');
        let name = parts.next().unwrap();
        if parts.next() != Some("Regular") {
            continue;
        }
        let comps: Vec<&str> = name.trim_start_matches('/').split('/').collect();
        let ino = resolve_file(s, &c, &comps).unwrap();
        let fh = s.open(&c, ino, libc::O_RDONLY).unwrap();
        let size = s.getattr(ino).unwrap().size;
        let mut mine = vec![0u8; size as usize];
        assert_eq!(s.read(fh, 0, &mut mine).unwrap() as u64, size);
        let mut f = fs::File::open(fs_path(base, &comps)).unwrap();
        let mut theirs = Vec::new();
        f.read_to_end(&mut theirs).unwrap();
        assert!(mine == theirs, "seed {seed}: contents of {name} differ");
        for off in (0..size + 5000).step_by(1500) {
            for whence in [libc::SEEK_DATA, libc::SEEK_HOLE] {
                let a = s.lseek(fh, off, whence).map_err(|e| e.0);
                // SAFETY: valid open fd.
                let rc = unsafe { libc::lseek(f.as_raw_fd(), off as libc::off_t, whence) };
                let b = if rc < 0 {
                    Err(std::io::Error::last_os_error().raw_os_error().unwrap())
                } else {
                    Ok(rc as u64)
                };
                assert_eq!(a, b, "seed {seed}: lseek({name}, {off}, {whence})");
            }
        }
        s.release(fh).unwrap();
    }
}

/// Switches this thread's filesystem identity (raw syscalls: per thread).
/// The effective capabilities are set last: `setfsuid` drops or raises
/// the file capabilities on its own.
fn become_(c: &Creds) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Copy, Clone, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: plain syscalls with valid arguments; `groups`, `header` and
    // `data` (two entries, as version 3 requires) outlive the calls.
    unsafe {
        let groups: Vec<libc::gid_t> = c.groups.clone();
        libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr());
        libc::syscall(libc::SYS_setfsgid, c.gid);
        libc::syscall(libc::SYS_setfsuid, c.uid);
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective = data[0].permitted & c.caps.0 as u32;
        data[1].effective = data[1].permitted & (c.caps.0 >> 32) as u32;
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

fn dump_store(s: &Store, dir: Ino, prefix: &str, out: &mut Vec<String>) {
    let c = Creds::root();
    let fh = s.opendir(&c, dir).unwrap();
    let mut names = Vec::new();
    s.readdir_plus(fh, 2, |e| {
        names.push((
            e.name.to_vec(),
            e.attr.expect("readdir_plus gives attributes"),
        ));
        true
    })
    .unwrap();
    s.releasedir(fh).unwrap();
    for (n, a) in names {
        let name = format!("{prefix}/{}", String::from_utf8_lossy(&n));
        let size = if a.kind == FileKind::Directory {
            0
        } else {
            a.size
        };
        out.push(format!(
            "{name} {:?} size={size} nlink={} perm={:o} blocks={} owner={}:{}",
            a.kind, a.nlink, a.perm, a.blocks, a.uid, a.gid
        ));
        if a.kind == FileKind::Directory {
            dump_store(s, a.ino, &name, out);
        }
    }
}

fn dump_fs(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let m = fs::symlink_metadata(&p).unwrap();
        let kind = if m.is_dir() {
            FileKind::Directory
        } else if m.file_type().is_symlink() {
            FileKind::Symlink
        } else if std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()) {
            // Whiteouts left by RENAME_WHITEOUT.
            FileKind::CharDevice
        } else {
            FileKind::Regular
        };
        let name = format!("{prefix}/{}", n.to_string_lossy());
        let size = if m.is_dir() { 0 } else { m.size() };
        out.push(format!(
            "{name} {kind:?} size={size} nlink={} perm={:o} blocks={} owner={}:{}",
            m.nlink(),
            m.mode() & 0o7777,
            m.blocks(),
            m.uid(),
            m.gid()
        ));
        if m.is_dir() {
            dump_fs(&p, &name, out);
        }
    }
}

fn fs_path(base: &Path, path: &[&str]) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in path {
        p.push(c);
    }
    p
}

fn run_store(s: &Store, c: &Creds, op: u64, p: &[&str], q: &[&str], n: u64) -> Result<(), i32> {
    let walk = |path: &[&str]| walk(s, c, path);
    let mode = MODES[(n % 9) as usize];
    let r: Result<(), Errno> = (|| match op {
        // The kernel applies the process umask (022) before the fs sees it.
        0 => s.mkdir(c, walk(p)?, last(p), mode & !0o022).map(drop),
        1 => {
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
            let (_, fh) = s.create(c, walk(p)?, last(p), mode & !0o022, flags)?;
            let data = vec![7u8; n as usize];
            let w = s.write(c, fh, 0, &data).map(drop);
            s.release(fh)?;
            w
        }
        2 => s.unlink(c, walk(p)?, last(p)),
        3 => s.rmdir(c, walk(p)?, last(p)),
        4 => {
            let (op_, np) = (walk(p)?, walk(q)?);
            s.rename(c, op_, last(p), np, last(q), RenameFlags::default())
        }
        5 => {
            // link(2) does not follow a final symlink.
            let src = s.lookup(c, walk(p)?, last(p))?;
            s.link(c, src.ino, walk(q)?, last(q)).map(drop)
        }
        6 => s.symlink(c, walk(p)?, last(p), b"zzz").map(drop),
        7 => {
            let ino = resolve_file(s, c, p)?;
            let set = SetAttr {
                size: Some(n),
                ..SetAttr::default()
            };
            s.setattr(c, ino, &set, None).map(drop)
        }
        13 => {
            let ino = resolve_file(s, c, p)?;
            let fh = s.open(c, ino, libc::O_RDWR)?;
            let (off, len, mode) = falloc_args(n);
            let r = s.fallocate(c, fh, off, len, mode);
            s.release(fh)?;
            r
        }
        12 => {
            let flags = RenameFlags {
                noreplace: matches!(n % 4, 0 | 2),
                exchange: matches!(n % 4, 1 | 2),
                whiteout: n % 4 == 3,
            };
            // renameat2 rejects bad flags before resolving any path: a front
            // door that resolves paths itself must check them first too.
            if flags.exchange && (flags.noreplace || flags.whiteout) {
                return Err(Errno::EINVAL);
            }
            let (op_, np) = (walk(p)?, walk(q)?);
            s.rename(c, op_, last(p), np, last(q), flags)
        }
        9 => {
            let ino = resolve_any(s, c, p)?;
            let set = SetAttr {
                mode: Some(mode),
                ..SetAttr::default()
            };
            s.setattr(c, ino, &set, None).map(drop)
        }
        10 => {
            let ino = resolve_any(s, c, p)?;
            let set = SetAttr {
                uid: chown_ids(n).0,
                gid: chown_ids(n).1,
                ..SetAttr::default()
            };
            s.setattr(c, ino, &set, None).map(drop)
        }
        _ => {
            let ino = resolve_file(s, c, p)?;
            let fh = s.open(c, ino, libc::O_WRONLY)?;
            let w = s.write(c, fh, n * 997, b"hello").map(drop);
            s.release(fh)?;
            w
        }
    })();
    r.map_err(|e| e.0)
}

fn run_fs(base: &Path, op: u64, p: &[&str], q: &[&str], n: u64) -> Result<(), i32> {
    let pp = fs_path(base, p);
    let qq = fs_path(base, q);
    let mode = MODES[(n % 9) as usize];
    let r = match op {
        0 => fs::DirBuilder::new().mode(mode).create(&pp),
        1 => fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&pp)
            .and_then(|mut f| f.write_all(&vec![7u8; n as usize])),
        2 => fs::remove_file(&pp),
        3 => fs::remove_dir(&pp),
        4 => fs::rename(&pp, &qq),
        5 => fs::hard_link(&pp, &qq),
        6 => std::os::unix::fs::symlink("zzz", &pp),
        7 => truncate_path(&pp, n),
        13 => fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pp)
            .and_then(|f| {
                use std::os::fd::AsRawFd;
                let (off, len, mode) = falloc_args(n);
                // SAFETY: valid open fd.
                let rc = unsafe {
                    libc::fallocate(f.as_raw_fd(), mode, off as libc::off_t, len as libc::off_t)
                };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            }),
        12 => {
            let cs = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            let flags = match n % 4 {
                0 => libc::RENAME_NOREPLACE,
                1 => libc::RENAME_EXCHANGE,
                2 => libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE,
                _ => libc::RENAME_WHITEOUT,
            };
            let (a, b) = (cs(&pp), cs(&qq));
            // SAFETY: valid NUL-terminated paths.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    flags,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        }
        9 => fs::set_permissions(&pp, std::os::unix::fs::PermissionsExt::from_mode(mode)),
        10 => std::os::unix::fs::chown(&pp, chown_ids(n).0, chown_ids(n).1),
        _ => fs::OpenOptions::new()
            .write(true)
            .open(&pp)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(n * 997))?;
                f.write_all(b"hello")
            }),
    };
    r.map_err(os_err)
}

use std::os::unix::fs::DirBuilderExt;

#[test]
#[ignore]
fn random_operations_match_tmpfs() {
    let base_dir = std::env::var("BTFUSE_TMPFS_DIR").unwrap_or_else(|_| "/dev/shm".into());
    let base = PathBuf::from(base_dir).join(format!("inode-store-diff-{}", std::process::id()));
    let mut outcomes = std::collections::BTreeMap::new();
    let seeds: u64 = std::env::var("BTFUSE_DIFF_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    for seed in 1..=seeds {
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).unwrap();
        fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let s = Store::new(64 << 20);
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for step in 0..400 {
            let op = r.below(14);
            let p = random_path(&mut r);
            let q = random_path(&mut r);
            let n = r.below(20000);
            let c = creds(r.below(6));
            let a = run_store(&s, &c, op, &p, &q, n);
            become_(&c);
            let b = run_fs(&base, op, &p, &q, n);
            become_(&Creds::root());
            if a != b {
                let mut db = Vec::new();
                dump_fs(&base, "", &mut db);
                eprintln!("tree before: {db:#?}");
            }
            assert_eq!(
                a, b,
                "seed {seed} step {step}: {c:?} op {op} {p:?} {q:?} n={n}"
            );
            *outcomes.entry((op, a.err().unwrap_or(0))).or_insert(0u32) += 1;
            let (mut da, mut db) = (Vec::new(), Vec::new());
            dump_store(&s, ROOT_INO, "", &mut da);
            dump_fs(&base, "", &mut db);
            assert_eq!(da, db, "seed {seed} step {step}: op {op} {p:?} {q:?} n={n}");
            if step % 50 == 49 {
                compare_data(&s, &base, &da, seed);
            }
        }
    }
    let _ = fs::remove_dir_all(&base);
    // (op, errno or 0) -> count, to see that every path was exercised.
    eprintln!("outcomes: {outcomes:?}");
}
