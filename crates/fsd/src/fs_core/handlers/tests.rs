//! The handlers run on a store with typed requests, as the ring door runs them.

use super::*;
use crate::fs_core::clients::Clients;
use inode_store::Creds;
use proto::ops::{
    decode_reply, dispatch, encode_request, Failure, Malformed, Operation, ReplyError, MAX_REPLY,
    MAX_REQUEST,
};
use proto::{bytes_of, decode, DirEntryHeader, SetAttrReq, PATH_MAX};
use std::cell::RefCell;
use std::sync::Arc;

/// An ordinary user with no supplementary groups.
fn user1000() -> Creds {
    Creds {
        uid: 1000,
        gid: 1000,
        groups: vec![],
        caps: inode_store::Caps::NONE,
    }
}

/// Records what the kernel would have been told.
#[derive(Default)]
struct Recorder(RefCell<Vec<String>>);

impl KernelCache for Recorder {
    fn inode_changed(&self, ino: Ino) {
        self.0.borrow_mut().push(format!("inode {ino}"));
    }
    fn entry_changed(&self, parent: Ino, name: &[u8]) {
        self.0
            .borrow_mut()
            .push(format!("entry {parent}/{}", String::from_utf8_lossy(name)));
    }
    fn dir_moved(&self, ino: Ino) {
        self.0.borrow_mut().push(format!("moved {ino}"));
    }
    fn holds_pages(&self, _: Ino) -> bool {
        false
    }
    fn before_data(&self, ino: Ino, off: u64, len: u64) {
        self.0
            .borrow_mut()
            .push(format!("before {ino} {off}+{len}"));
    }
    fn data_changed(&self, ino: Ino, off: u64, len: u64) {
        self.0.borrow_mut().push(format!("data {ino} {off}+{len}"));
    }
    fn open_for_client(&self, name: &[u8], flags: i32) -> std::io::Result<std::os::fd::OwnedFd> {
        self.0
            .borrow_mut()
            .push(format!("open {} {flags:#o}", String::from_utf8_lossy(name)));
        std::fs::File::open("/dev/null").map(Into::into)
    }
}

impl BulkArea for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn read(&self, offset: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self[offset..offset + dst.len()]);
    }
    fn write(&mut self, offset: usize, src: &[u8]) {
        self[offset..offset + src.len()].copy_from_slice(src);
    }
}

struct Fixture {
    store: Store,
    clients: Clients,
    kernel: Recorder,
    bulk: Vec<u8>,
}

type Reply<O> = Result<(<O as Operation>::Reply, Vec<u8>), ReplyError>;

impl Fixture {
    fn new() -> Fixture {
        let store = Store::new(16 << 20);
        let root = Creds::root();
        let sticky = SetAttr {
            mode: Some(0o1777),
            ..SetAttr::default()
        };
        store.setattr(&root, ROOT_INO, &sticky, None).unwrap();
        Fixture {
            store,
            clients: Clients::default(),
            kernel: Recorder::default(),
            bulk: vec![0; 1 << 20],
        }
    }

    /// Runs raw message `msg` as `client`; the encoded reply.
    fn run(&mut self, client: &Client, msg: &[u8]) -> Result<Vec<u8>, Malformed> {
        let kernel = &self.kernel;
        let mut handlers = Handlers {
            store: &self.store,
            client,
            mount_path: b"/mnt/x",
            kernel,
            bulk: &mut self.bulk,
            transferred: Transferred::default(),
            client_alive: &|| true,
            send_fd: &|_| {
                kernel.0.borrow_mut().push("passed".into());
                Ok(())
            },
            public: None,
        };
        let mut reply = vec![0u8; MAX_REPLY];
        let d = dispatch(&mut handlers, msg, &mut reply)?;
        reply.truncate(d.len);
        Ok(reply)
    }

    /// Runs a request as `client`: its reply struct and payload.
    fn call<O: Operation>(&mut self, client: &Client, args: O, p1: &[u8], p2: &[u8]) -> Reply<O> {
        let mut msg = vec![0u8; MAX_REQUEST];
        let n = encode_request(1, &args, p1, p2, &mut msg).expect("encodable");
        let reply = self.run(client, &msg[..n]).expect("well formed");
        decode_reply::<O>(&reply, 1).map(|(r, p)| (r, p.to_vec()))
    }

    /// Runs a request as `client`: 0 or the negated errno (for a `Stat`
    /// of a missing name, which answers it in its reply struct, too).
    fn status<O: Operation>(&mut self, client: &Client, args: O, p1: &[u8], p2: &[u8]) -> i32 {
        match self.call(client, args, p1, p2) {
            Ok((out, _)) if O::OP == ops::Op::Stat => {
                proto::decode::<ops::StatOut>(proto::bytes_of(&out))
                    .map_or(0, |s| -(s.absent as i32))
            }
            Ok(_) => 0,
            Err(ReplyError::Failed(f)) => f.status(),
            Err(ReplyError::Malformed) => panic!("malformed reply"),
        }
    }
}

fn failed(e: i32) -> ReplyError {
    ReplyError::Failed(Failure::Errno(e))
}

fn create(mode: u32) -> ops::Open {
    ops::Open {
        base: 0,
        flags: (libc::O_CREAT | libc::O_RDWR) as u32,
        mode,
    }
}

fn mkdir(mode: u32) -> ops::Mkdir {
    ops::Mkdir {
        mode,
        ..Default::default()
    }
}

/// `KernelOpen` opens with the access mode of the daemon's record of the
/// handle (the client's `O_APPEND`/`O_NONBLOCK` only), passes the fd, and
/// does nothing for a handle the client does not hold as a file.
#[test]
fn kernel_open_takes_the_access_mode_from_the_handle() {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0xabc, Creds::root()).unwrap();
    let other = f.clients.join(2, 0xabc, Creds::root()).unwrap();
    let (created, _) = f.call(&c, create(0o444), b"f", b"").unwrap();
    let read_only = ops::Open {
        flags: libc::O_RDONLY as u32,
        ..Default::default()
    };
    let (ro, _) = f.call(&c, read_only, b"f", b"").unwrap();
    f.call(&c, mkdir(0o755), b"d", b"").unwrap();
    let (dir, _) = f.call(&c, read_only, b"d", b"").unwrap();
    let ask = |fh| ops::KernelOpen {
        fh,
        flags: (libc::O_RDWR | libc::O_APPEND | libc::O_TRUNC | libc::O_CREAT) as u32,
        _pad: 0,
    };
    f.kernel.0.borrow_mut().clear();
    assert_eq!(f.status(&c, ask(ro.fh), b"", b""), 0);
    assert_eq!(f.status(&c, ask(created.fh), b"", b""), 0);
    let name = String::from_utf8(proto::handle_name(ro.fh, 0xabc).to_vec()).unwrap();
    let name2 = String::from_utf8(proto::handle_name(created.fh, 0xabc).to_vec()).unwrap();
    assert_eq!(
        *f.kernel.0.borrow(),
        [
            format!("open {name} {:#o}", libc::O_RDONLY | libc::O_APPEND),
            "passed".to_string(),
            format!("open {name2} {:#o}", libc::O_RDWR | libc::O_APPEND),
            "passed".to_string(),
        ]
    );
    f.kernel.0.borrow_mut().clear();
    assert_eq!(f.status(&other, ask(ro.fh), b"", b""), -libc::EBADF);
    assert_eq!(f.status(&other, ask(dir.fh), b"", b""), -libc::EBADF);
    assert_eq!(f.status(&c, ask(dir.fh), b"", b""), -libc::EBADF);
    assert!(f.kernel.0.borrow().is_empty(), "{:?}", f.kernel.0.borrow());
}

#[test]
fn write_then_read_through_handles() {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0, Creds::root()).unwrap();
    let e = f
        .call(&c, create(0o644), b"dir_missing/../f", b"")
        .unwrap_err();
    assert_eq!(
        e,
        failed(libc::ENOENT),
        "a missing dir on the way fails like the kernel"
    );
    let (opened, _) = f.call(&c, create(0o644), b"f", b"").unwrap();
    let fh = opened.fh;
    f.bulk[..5].copy_from_slice(b"hello");
    let write = ops::Write {
        fh,
        offset: 3,
        len: 5,
        ..Default::default()
    };
    let (w, _) = f.call(&c, write, b"", b"").unwrap();
    assert_eq!((w.count, w.offset), (5, 3));
    f.bulk.fill(0xff);
    let read = ops::Read {
        fh,
        offset: 0,
        len: 100,
    };
    let (rd, _) = f.call(&c, read, b"", b"").unwrap();
    assert_eq!(rd.count, 8);
    assert_eq!(&f.bulk[..8], b"\0\0\0hello");
    let (s, _) = f.call(&c, ops::Stat::default(), b"/mnt/x/f", b"").unwrap();
    assert_eq!((s.attr.size, s.attr.mode), (8, libc::S_IFREG | 0o644));
    assert!(f.kernel.0.borrow().iter().any(|e| e.starts_with("inode")));
    assert_eq!(f.status(&c, ops::Release { fh }, b"", b""), 0);
    let read = ops::Read {
        fh,
        offset: 0,
        len: 1,
    };
    assert_eq!(f.status(&c, read, b"", b""), -libc::EBADF);
}

#[test]
fn a_handle_name_is_dropped_from_the_kernel_for_its_holder_only() {
    let mut f = Fixture::new();
    let me = f.clients.join(1, 0xabc, Creds::root()).unwrap();
    let other = f.clients.join(2, 0xabc, Creds::root()).unwrap();
    let (r, _) = f.call(&me, create(0o600), b"f", b"").unwrap();
    f.kernel.0.borrow_mut().clear();
    let drop_name = ops::DropHandleName { fh: r.fh };
    assert_eq!(f.status(&other, drop_name, b"", b""), -libc::EBADF);
    assert!(f.kernel.0.borrow().is_empty());
    assert_eq!(f.status(&me, drop_name, b"", b""), 0);
    let name = String::from_utf8(proto::handle_name(r.fh, 0xabc).to_vec()).unwrap();
    assert_eq!(*f.kernel.0.borrow(), [format!("entry {ROOT_INO}/{name}")]);
}

#[test]
fn another_process_cannot_use_my_handle() {
    let mut f = Fixture::new();
    let me = f.clients.join(1, 0, Creds::root()).unwrap();
    let other = f.clients.join(2, 0, Creds::root()).unwrap();
    let (r, _) = f.call(&me, create(0o600), b"secret", b"").unwrap();
    let read = ops::Read {
        fh: r.fh,
        offset: 0,
        len: 1,
    };
    assert_eq!(f.status(&other, read, b"", b""), -libc::EBADF);
    assert_eq!(
        f.status(&other, ops::Release { fh: r.fh }, b"", b""),
        -libc::EBADF
    );
}

#[test]
fn permissions_are_the_stores() {
    let mut f = Fixture::new();
    let root = f.clients.join(1, 0, Creds::root()).unwrap();
    let user = f.clients.join(2, 0, user1000()).unwrap();
    f.call(&root, create(0o600), b"private", b"").unwrap();
    let open = ops::Open {
        flags: libc::O_RDONLY as u32,
        ..Default::default()
    };
    assert_eq!(f.status(&user, open, b"private", b""), -libc::EACCES);
    let unlink = ops::Unlink::default();
    assert_eq!(
        f.status(&user, unlink, b"private", b""),
        -libc::EPERM,
        "sticky root"
    );
}

#[test]
fn paths_leaving_the_mount_escape() {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0, Creds::root()).unwrap();
    f.call(&c, mkdir(0o755), b"a", b"").unwrap();
    let stat = ops::Stat::default();
    for path in [&b".."[..], b"a/../../etc", b"/etc/passwd", b"/mnt/xy"] {
        let st = f.status(&c, stat, path, b"");
        assert_eq!(st, proto::ESCAPED, "{}", String::from_utf8_lossy(path));
    }
    f.call(&c, ops::Symlink::default(), b"out", b"/etc")
        .unwrap();
    assert_eq!(f.status(&c, stat, b"out/passwd", b""), proto::ESCAPED);
    let lstat = ops::Stat {
        flags: libc::AT_SYMLINK_NOFOLLOW as u32,
        ..stat
    };
    assert_eq!(
        f.status(&c, lstat, b"out", b""),
        0,
        "the link itself is on the mount"
    );
}

/// A fixture, root's client in it and a regular file `f` (mode 0644).
fn root_with_file_f() -> (Fixture, Arc<Client>) {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0, Creds::root()).unwrap();
    let mknod = ops::Mknod {
        mode: libc::S_IFREG | 0o644,
        ..Default::default()
    };
    f.call(&c, mknod, b"f", b"").unwrap();
    (f, c)
}

#[test]
fn setattr_without_following_links() {
    let (mut f, c) = root_with_file_f();
    let times = ops::SetAttr {
        flags: libc::AT_SYMLINK_NOFOLLOW as u32,
        set: SetAttrReq {
            valid: set::MTIME | set::ATIME,
            mtime: 1_600_000_000,
            atime: 1_600_000_000,
            ..SetAttrReq::default()
        },
        ..Default::default()
    };
    f.call(&c, times, b"f", b"").unwrap();
    let (s, _) = f.call(&c, ops::Stat::default(), b"f", b"").unwrap();
    assert_eq!((s.attr.mtime, s.attr.atime), (1_600_000_000, 1_600_000_000));
}

#[test]
fn a_symlinks_mode_does_not_change() {
    let (mut f, c) = root_with_file_f();
    f.call(&c, ops::Symlink::default(), b"l", b"f").unwrap();
    let chmod = |flags: i32| ops::SetAttr {
        flags: flags as u32,
        set: SetAttrReq {
            valid: set::MODE,
            mode: 0o600,
            ..SetAttrReq::default()
        },
        ..Default::default()
    };
    let lchmod = chmod(libc::AT_SYMLINK_NOFOLLOW);
    assert_eq!(f.status(&c, lchmod, b"l", b""), -libc::EOPNOTSUPP);
    f.call(&c, chmod(0), b"l", b"").unwrap();
    let (s, _) = f.call(&c, ops::Stat::default(), b"f", b"").unwrap();
    assert_eq!(s.attr.mode & 0o7777, 0o600, "chmod follows the link");
}

#[test]
fn a_final_dot_is_not_its_directory() {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0, Creds::root()).unwrap();
    f.call(&c, mkdir(0o755), b"d", b"").unwrap();
    let rmdir = ops::Rmdir::default();
    assert_eq!(f.status(&c, rmdir, b"d/.", b""), -libc::EINVAL);
    assert_eq!(f.status(&c, rmdir, b".", b""), -libc::EINVAL);
    assert_eq!(f.status(&c, rmdir, b"d/..", b""), -libc::ENOTEMPTY);
    assert_eq!(f.status(&c, mkdir(0), b"d/.", b""), -libc::EEXIST);
    assert_eq!(
        f.status(&c, ops::Unlink::default(), b"d/.", b""),
        -libc::EISDIR
    );
    assert_eq!(f.status(&c, ops::Stat::default(), b"d/./", b""), 0);
    assert_eq!(f.status(&c, rmdir, b"./d/", b""), 0);
}

/// A fixture whose root client (returned) made directory `d` holding
/// empty files `names`.
fn dir_of_files(names: impl IntoIterator<Item = impl AsRef<str>>) -> (Fixture, Arc<Client>) {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0, Creds::root()).unwrap();
    f.call(&c, mkdir(0o755), b"d", b"").unwrap();
    let mknod = ops::Mknod {
        mode: libc::S_IFREG | 0o644,
        ..Default::default()
    };
    for name in names {
        f.call(&c, mknod, format!("d/{}", name.as_ref()).as_bytes(), b"")
            .unwrap();
    }
    (f, c)
}

#[test]
fn readdir_lists_in_bulk_records() {
    let (mut f, c) = dir_of_files(["b", "a", "c"]);
    let open = ops::Open {
        flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
        ..Default::default()
    };
    let (dir, _) = f.call(&c, open, b"d", b"").unwrap();
    let list = ops::Readdir {
        fh: dir.fh,
        ..Default::default()
    };
    let (list, _) = f.call(&c, list, b"", b"").unwrap();
    assert_eq!(list.entries, 5);
    let mut names = Vec::new();
    let mut off = 0;
    while off < list.bytes as usize {
        let e: DirEntryHeader = decode(&f.bulk[off..]).unwrap();
        let start = off + size_of::<DirEntryHeader>();
        let name = &f.bulk[start..start + e.name_len as usize];
        names.push(String::from_utf8(name.to_vec()).unwrap());
        off += DirEntryHeader::record_len(e.name_len as usize);
    }
    assert_eq!(names, [".", "..", "a", "b", "c"]);
}

/// Records of a readdirplus batch in the bulk area: (name, cookie after
/// it, its attributes).
fn plus_records(bulk: &[u8], bytes: u64) -> Vec<(String, u64, proto::WireAttr)> {
    let (mut out, mut off) = (Vec::new(), 0);
    let al = size_of::<proto::WireAttr>();
    while off < bytes as usize {
        let e: DirEntryHeader = decode(&bulk[off..]).unwrap();
        let at = off + size_of::<DirEntryHeader>();
        let attr: proto::WireAttr = decode(&bulk[at..]).unwrap();
        let name = &bulk[at + al..at + al + e.name_len as usize];
        out.push((String::from_utf8(name.to_vec()).unwrap(), e.next, attr));
        off += DirEntryHeader::record_len(al + e.name_len as usize);
    }
    out
}

#[test]
fn a_kept_listing_hands_out_what_a_listing_made_entry_by_entry_does() {
    let (mut f, c) = dir_of_files((0..40).map(|i| format!("f{i:02}")));
    let open = ops::Open {
        flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
        ..Default::default()
    };
    let list = |f: &mut Fixture, fh, cookie, max| {
        let req = ops::Readdir {
            fh,
            cookie,
            max,
            plus: 1,
            _pad: 0,
        };
        let (out, _) = f.call(&c, req, b"", b"").unwrap();
        (plus_records(&f.bulk, out.bytes), out.eof)
    };
    // Whole, from a fresh handle: the kept listing's records.
    let (a, _) = f.call(&c, open, b"d", b"").unwrap();
    let (whole, eof) = list(&mut f, a.fh, 0, 0);
    assert_eq!((whole.len(), eof), (42, 1));
    // In parts: the first from the kept records, the rest made entry by
    // entry after its last cookie; then again from the start through the
    // same handle (made entry by entry, the cookies kept).
    let (b, _) = f.call(&c, open, b"d", b"").unwrap();
    let (mut parts, eof) = list(&mut f, b.fh, 0, 200);
    assert_eq!(eof, 0);
    assert!((3..42).contains(&parts.len()), "{}", parts.len());
    while parts.len() < 42 {
        let (more, _) = list(&mut f, b.fh, parts.last().unwrap().1, 200);
        assert!(!more.is_empty());
        parts.extend(more);
    }
    let (again, _) = list(&mut f, b.fh, 0, 0);
    // Cookies are the handle's own (an entry a full batch could not take
    // may be numbered twice); names and attributes are the listing's.
    let key = |v: &[(String, u64, proto::WireAttr)]| {
        v.iter()
            .map(|(n, _, a)| (n.clone(), a.ino, a.mode, a.size, a.nlink, a.flags))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&parts), key(&whole));
    assert_eq!(key(&again), key(&whole));
    let cookies: Vec<u64> = whole.iter().map(|e| e.1).collect();
    assert_eq!(cookies, (1..=42).collect::<Vec<u64>>());
    assert_eq!(whole[2].0, "f00");
}

#[test]
fn a_listing_for_the_caches_leaves_no_handle_open() {
    let (mut f, c) = dir_of_files(["a"]);
    let list = ops::List { base: 0, max: 0 };
    for _ in 0..3 {
        let (out, _) = f.call(&c, list, b"d", b"").unwrap();
        assert_eq!((out.list.entries, out.list.eof), (3, 1));
        let names: Vec<String> = plus_records(&f.bulk, out.list.bytes)
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(names, [".", "..", "a"]);
        assert_ne!(out.ino, 0);
    }
    assert_eq!(f.clients.summary(), (1, 0));
    assert_eq!(f.status(&c, list, b"d/a", b""), -libc::ENOTDIR);
    assert_eq!(f.status(&c, list, b"nope", b""), -libc::ENOENT);
    assert_eq!(f.clients.summary(), (1, 0));
}

#[test]
fn malformed_requests_are_rejected() {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0, Creds::root()).unwrap();
    let mut msg = vec![0u8; MAX_REQUEST];
    let n = encode_request(1, &ops::Stat::default(), b"some/path", b"", &mut msg).unwrap();
    assert_eq!(f.run(&c, &msg[..n - 4]), Err(Malformed::Truncated));
    assert_eq!(f.run(&c, &msg[..10]), Err(Malformed::Truncated));
    let mut head: proto::ops::RequestHeader = decode(&msg).unwrap();
    head.path_len = PATH_MAX as u32 + 1;
    assert_eq!(f.run(&c, bytes_of(&head)), Err(Malformed::BadPath));
    head.op = 999;
    head.path_len = 0;
    let reply = f.run(&c, bytes_of(&head)).unwrap();
    let e = decode_reply::<ops::Fstat>(&reply, 1).unwrap_err();
    assert_eq!(e, failed(libc::ENOSYS));
    let read = ops::Read {
        fh: 12345,
        offset: 0,
        len: u64::MAX,
    };
    assert_eq!(f.status(&c, read, b"", b""), -libc::EBADF);
}

#[test]
fn rename_reports_an_unsearchable_destination_before_a_missing_source() {
    let mut f = Fixture::new();
    let root = f.clients.join(1, 0, Creds::root()).unwrap();
    let user = f.clients.join(2, 0, user1000()).unwrap();
    f.call(&root, mkdir(0o700), b"priv", b"").unwrap();
    f.call(&root, mkdir(0o777), b"pub", b"").unwrap();
    let rename = ops::Rename::default();
    assert_eq!(
        f.status(&user, rename, b"pub/missing", b"priv/x"),
        -libc::EACCES
    );
    assert_eq!(
        f.status(&user, rename, b"pub/missing", b"pub/y"),
        -libc::ENOENT
    );
}

#[test]
fn nul_bytes_in_any_path_are_refused() {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0, Creds::root()).unwrap();
    let symlink = ops::Symlink::default();
    assert_eq!(f.status(&c, symlink, b"l", b"a\0b"), -libc::EINVAL);
    let st = f.status(&c, ops::Stat::default(), b"l", b"");
    assert_eq!(st, -libc::ENOENT, "the link was not created");
    f.call(&c, mkdir(0o755), b"d", b"").unwrap();
    let setxattr = ops::Setxattr::default();
    assert_eq!(f.status(&c, setxattr, b"d", b"user.a\0b"), -libc::EINVAL);
    assert_eq!(
        f.status(&c, ops::Rename::default(), b"d", b"x\0y"),
        -libc::EINVAL
    );
}

#[test]
fn answers_are_stamped_only_while_they_hold_for_the_caller() {
    let mut f = Fixture::new();
    let root = f.clients.join(1, 0, Creds::root()).unwrap();
    let user = f.clients.join(2, 0, user1000()).unwrap();
    f.call(&root, mkdir(0o755), b"d", b"").unwrap();
    f.call(&root, mkdir(0o744), b"unsearchable", b"").unwrap();
    let (file, _) = f.call(&root, create(0o644), b"d/f", b"").unwrap();
    let (st, _) = f.call(&user, ops::Stat::default(), b"d/f", b"").unwrap();
    assert_ne!(st.stamp, 0, "a stat with nothing changing is stamped");
    let (gone, _) = f.call(&user, ops::Stat::default(), b"d/nope", b"").unwrap();
    assert_eq!((gone.absent, gone.stamp), (libc::ENOENT as u32, st.stamp));
    // A change voids the stamp: the next answer carries a new one.
    f.bulk[..1].copy_from_slice(b"x");
    let write = ops::Write {
        fh: file.fh,
        len: 1,
        ..Default::default()
    };
    f.call(&root, write, b"", b"").unwrap();
    let (again, _) = f.call(&user, ops::Stat::default(), b"d/f", b"").unwrap();
    assert!(again.stamp > st.stamp);
    assert_eq!(again.attr.size, 1);
    // A readdirplus keeps its attributes only for a caller who may
    // search the directory (they answer fstatat(dir, name)).
    let opendir = ops::Open {
        flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
        ..Default::default()
    };
    // (The first listing of a new directory updates its atime, before the
    // listing starts: it does not void the entries.)
    for (who, expect_stamp) in [(&root, true), (&root, true), (&user, false)] {
        let (dir, _) = f.call(who, opendir, b"unsearchable", b"").unwrap();
        let list = ops::Readdir {
            fh: dir.fh,
            plus: 1,
            ..Default::default()
        };
        let (out, _) = f.call(who, list, b"", b"").unwrap();
        assert_eq!(out.stamp != 0, expect_stamp);
        assert_eq!((out.entries, out.eof), (2, 1), ". and .., and nothing more");
    }
}

/// `OpenAhead` opens, from the named file on, the small regular files the
/// caller may read, with their bytes, as handles only it may use; it skips
/// large files, directories and files it may not read, and needs read
/// permission on the directory (the names are a listing).
#[test]
fn open_ahead_opens_the_readable_small_files_from_the_name_on() {
    let mut f = Fixture::new();
    let root = f.clients.join(1, 0, Creds::root()).unwrap();
    let user = f.clients.join(2, 0, user1000()).unwrap();
    f.call(&root, mkdir(0o755), b"d", b"").unwrap();
    f.call(&root, mkdir(0o711), b"hidden", b"").unwrap();
    f.call(&root, mkdir(0o755), b"d/e", b"").unwrap();
    let files: [(&[u8], u32, usize); 6] = [
        (b"d/0", 0o644, 1),
        (b"d/a", 0o644, 3),
        (b"d/b", 0o644, 0),
        (b"d/c", 0o644, 5000),
        (b"d/f", 0o600, 4),
        (b"d/g", 0o644, 2),
    ];
    for (path, mode, len) in files {
        let (file, _) = f.call(&root, create(mode), path, b"").unwrap();
        f.bulk[..len].fill(path[2]);
        let write = ops::Write {
            fh: file.fh,
            len: len as u64,
            ..Default::default()
        };
        f.call(&root, write, b"", b"").unwrap();
        // Read once: a read would not update the atime any more.
        let read = ops::Read {
            fh: file.fh,
            offset: 0,
            len: 1,
        };
        f.call(&root, read, b"", b"").unwrap();
        f.call(&root, ops::Release { fh: file.fh }, b"", b"")
            .unwrap();
    }
    let ahead = ops::OpenAhead {
        base: 0,
        max: 10,
        _pad: 0,
    };
    let (out, _) = f.call(&user, ahead, b"d/a", b"").unwrap();
    // a, b, c, e, f, g looked at; a, b and g opened.
    assert_eq!((out.count, out.scanned), (3, 6));
    assert_ne!(out.stamp, 0);
    let mut at = 0;
    let mut got = vec![];
    for _ in 0..out.count {
        let r: proto::AheadRecord = decode(&f.bulk[at..]).unwrap();
        let attr: proto::WireAttr = decode(&f.bulk[at + 16..]).unwrap();
        let (nl, dl) = (usize::from(r.name_len), usize::from(r.data_len));
        let name = f.bulk[at + 104..at + 104 + nl].to_vec();
        let data = f.bulk[at + 104 + nl..at + 104 + nl + dl].to_vec();
        assert_eq!(attr.size, dl as u64);
        got.push((name, data, r.fh));
        at += proto::AheadRecord::record_len(nl, dl);
    }
    assert_eq!(at as u64, out.bytes);
    let names: Vec<_> = got.iter().map(|(n, d, _)| (n.clone(), d.clone())).collect();
    assert_eq!(
        names,
        [
            (b"a".to_vec(), b"aaa".to_vec()),
            (b"b".to_vec(), vec![]),
            (b"g".to_vec(), b"gg".to_vec())
        ]
    );
    // The handles are the caller's, read-only.
    let fh = got[0].2;
    let read = ops::Read {
        fh,
        offset: 1,
        len: 10,
    };
    assert_eq!(f.call(&user, read, b"", b"").unwrap().0.count, 2);
    assert_eq!(f.status(&root, read, b"", b""), -libc::EBADF);
    let write = ops::Write {
        fh,
        len: 1,
        ..Default::default()
    };
    assert_eq!(f.status(&user, write, b"", b""), -libc::EBADF);
    // At most `max` looked at; none past the end; no listing without read
    // permission on the directory.
    let one = ops::OpenAhead { max: 1, ..ahead };
    assert_eq!(f.call(&user, one, b"d/c", b"").unwrap().0.count, 0);
    assert_eq!(f.call(&user, ahead, b"d/h", b"").unwrap().0.scanned, 0);
    assert_eq!(f.status(&user, ahead, b"hidden/x", b""), -libc::EACCES);
}

/// `OpenInode` opens only what the public table vouches for: with no
/// table (or no entry of that token), any inode is `ESTALE`.
#[test]
fn open_inode_needs_the_public_tables_token() {
    let mut f = Fixture::new();
    let c = f.clients.join(1, 0xabc, Creds::root()).unwrap();
    let (o, _) = f.call(&c, create(0o644), b"f", b"").unwrap();
    assert_eq!(f.status(&c, ops::Release { fh: o.fh }, b"", b""), 0);
    let guess = ops::OpenInode {
        ino: o.attr.ino,
        token: 1,
    };
    assert_eq!(f.status(&c, guess, b"", b""), -libc::ESTALE);
}
