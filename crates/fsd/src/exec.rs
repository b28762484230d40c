//! Executes fast-path requests on the store.
//!
//! The ring server hands every request message here, already copied out of
//! shared memory. This module decodes and validates it (every length, flag
//! and handle comes from an untrusted process), resolves its paths, calls the
//! store with the client's credentials (the same rules as the FUSE door),
//! tells the kernel which of its cached entries and attributes went stale,
//! and encodes the reply.

use std::mem::size_of;

use inode_store::{Attr, Errno, FileKind, Ino, SetAttr, Store, TimeSet, Timespec, ROOT_INO};
use proto::{
    bytes_of, decode, set, DirEntryHeader, Op, ReqHeader, RespHeader, SetAttrReq, WireAttr,
    WireStatFs, ESCAPED, PATH_MAX,
};

use crate::client::{Client, HandleKind};
use crate::resolve::{resolve, ResolveError, Resolved};

/// A request that cannot be decoded: the channel that sent it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than a header, or lengths that do not add up.
    Truncated,
    /// A path length beyond `PATH_MAX`.
    PathTooLong,
}

/// Receives notice of changes the kernel may have cached (the FUSE door).
pub trait KernelCache {
    /// Data or attributes of `ino` changed.
    fn inode_changed(&self, ino: Ino);
    /// The entry `name` in `parent` was removed or replaced.
    fn entry_changed(&self, parent: Ino, name: &[u8]);
}

/// A decoded request: header plus borrowed paths and payload.
pub struct Request<'a> {
    head: ReqHeader,
    path: &'a [u8],
    path2: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Request<'a> {
    /// Splits a request message; lengths are checked against the message.
    pub fn parse(msg: &'a [u8]) -> Result<Request<'a>, Malformed> {
        let head: ReqHeader = decode(msg).ok_or(Malformed::Truncated)?;
        let (p1, p2) = (head.path_len as usize, head.path2_len as usize);
        if p1 > PATH_MAX || p2 > PATH_MAX {
            return Err(Malformed::PathTooLong);
        }
        let body = &msg[size_of::<ReqHeader>()..];
        let total = p1 + p2 + head.payload_len as usize;
        if body.len() != total {
            return Err(Malformed::Truncated);
        }
        let (path, rest) = body.split_at(p1);
        let (path2, payload) = rest.split_at(p2);
        Ok(Request { head, path, path2, payload })
    }
}

/// What a request produced, before encoding.
#[derive(Default)]
struct Outcome {
    v0: u64,
    v1: u64,
    attr: Option<Attr>,
    payload: Vec<u8>,
}

type OpResult = Result<Outcome, ResolveError>;

fn err(e: i32) -> ResolveError {
    ResolveError::Errno(Errno(e))
}

/// Everything a request runs against.
pub struct Executor<'a> {
    /// The filesystem.
    pub store: &'a Store,
    /// The calling process.
    pub client: &'a Client,
    /// Mountpoint as clients see it (absolute symlinks under it stay inside).
    pub mount_path: &'a [u8],
    /// Kernel cache invalidation.
    pub kernel: &'a dyn KernelCache,
}

impl Executor<'_> {
    /// Runs one request; `bulk` is the channel's bulk area. The encoded reply
    /// replaces the contents of `reply`.
    pub fn execute(&self, req: &Request<'_>, bulk: &mut [u8], reply: &mut Vec<u8>) {
        let result = match Op::from_u32(req.head.op) {
            Some(op) => self.dispatch(op, req, bulk),
            None => Err(err(libc::ENOSYS)),
        };
        let status = match &result {
            Ok(_) => 0,
            Err(ResolveError::Errno(e)) => -e.0,
            Err(ResolveError::Escaped) => ESCAPED,
        };
        let out = result.unwrap_or_default();
        reply.clear();
        let attr = out.attr.map(|a| wire_attr(&a));
        let attr_len = if attr.is_some() { size_of::<WireAttr>() } else { 0 };
        let head = RespHeader {
            status,
            seq: req.head.seq,
            v0: out.v0,
            v1: out.v1,
            has_attr: u32::from(attr.is_some()),
            payload_len: (attr_len + out.payload.len()) as u32,
        };
        reply.extend_from_slice(bytes_of(&head));
        if let Some(a) = &attr {
            reply.extend_from_slice(bytes_of(a));
        }
        reply.extend_from_slice(&out.payload);
    }

    fn dispatch(&self, op: Op, req: &Request<'_>, bulk: &mut [u8]) -> OpResult {
        let h = &req.head;
        match op {
            Op::Stat => self.stat(req),
            Op::Fstat => {
                let ino = self.handle_ino(h.fh)?;
                Ok(with_attr(self.store.getattr(ino)?))
            }
            Op::Open => self.open(req),
            Op::Release => {
                self.client.release(self.store, h.fh)?;
                Ok(Outcome::default())
            }
            Op::Read => {
                let fh = self.client.check(h.fh, HandleKind::File)?;
                let len = bulk_len(h.b, bulk)?;
                let n = self.store.read(fh, h.a, &mut bulk[..len])?;
                Ok(Outcome { v0: n as u64, ..Outcome::default() })
            }
            Op::Write => {
                let fh = self.client.check(h.fh, HandleKind::File)?;
                let len = bulk_len(h.b, bulk)?;
                let written = self.store.write(&self.client.creds, fh, h.a, &bulk[..len])?;
                self.kernel.inode_changed(self.store.handle_ino(fh)?);
                Ok(Outcome { v0: written.len as u64, v1: written.offset, ..Outcome::default() })
            }
            Op::Readdir => self.readdir(h, bulk),
            Op::Access => {
                let follow = h.flags as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
                let attr = self.walk(h.fh, req.path, follow)?.found()?;
                self.store.access(&self.client.creds, attr.ino, h.a as i32)?;
                Ok(Outcome::default())
            }
            Op::Readlink => {
                let attr = self.walk(h.fh, req.path, false)?.found()?;
                if attr.kind != FileKind::Symlink {
                    return Err(err(libc::EINVAL));
                }
                Ok(Outcome { payload: self.store.readlink(attr.ino)?, ..Outcome::default() })
            }
            Op::Mkdir => {
                let r = self.new_entry(h.fh, req.path)?;
                let attr = self.store.mkdir(&self.client.creds, r.parent, &r.name, h.a as u32)?;
                self.kernel.inode_changed(r.parent);
                Ok(with_attr(attr))
            }
            Op::Mknod => {
                let r = self.new_entry(h.fh, req.path)?;
                let (mode, rdev) = (h.a as u32, h.b as u32);
                let attr = self.store.mknod(&self.client.creds, r.parent, &r.name, mode, rdev)?;
                self.kernel.inode_changed(r.parent);
                Ok(with_attr(attr))
            }
            Op::Symlink => {
                if req.path2.is_empty() {
                    return Err(err(libc::ENOENT));
                }
                let r = self.new_entry(h.fh, req.path)?;
                let attr = self.store.symlink(&self.client.creds, r.parent, &r.name, req.path2)?;
                self.kernel.inode_changed(r.parent);
                Ok(with_attr(attr))
            }
            Op::Unlink | Op::Rmdir => {
                let r = self.walk(h.fh, req.path, false)?;
                let victim = r.found()?;
                if op == Op::Unlink {
                    self.store.unlink(&self.client.creds, r.parent, &r.name)?;
                } else {
                    self.store.rmdir(&self.client.creds, r.parent, &r.name)?;
                }
                self.removed(r.parent, &r.name, victim.ino);
                Ok(Outcome::default())
            }
            Op::Link => {
                let follow = h.flags as i32 & libc::AT_SYMLINK_FOLLOW != 0;
                let old = self.walk(h.fh, req.path, follow)?.found()?;
                let new = self.new_entry(h.fh2, req.path2)?;
                let attr = self.store.link(&self.client.creds, old.ino, new.parent, &new.name)?;
                self.kernel.inode_changed(old.ino);
                self.kernel.inode_changed(new.parent);
                Ok(with_attr(attr))
            }
            Op::Rename => self.rename(req),
            Op::SetAttr => self.setattr(req),
            Op::Fsync => {
                let fh = self.client.check(h.fh, HandleKind::File)?;
                self.store.fsync(fh)?;
                Ok(Outcome::default())
            }
            Op::Statfs => {
                let s = self.store.statfs();
                let w = WireStatFs {
                    blocks: s.blocks,
                    bfree: s.bfree,
                    bavail: s.bavail,
                    files: s.files,
                    ffree: s.ffree,
                    bsize: s.bsize,
                    namelen: s.namelen,
                    frsize: s.frsize,
                    _pad: 0,
                };
                Ok(Outcome { payload: bytes_of(&w).to_vec(), ..Outcome::default() })
            }
        }
    }

    /// Inode of an owned handle of either kind.
    fn handle_ino(&self, fh: u64) -> Result<Ino, ResolveError> {
        self.client.kind(fh)?;
        Ok(self.store.handle_ino(inode_store::Fh(fh))?)
    }

    /// Directory a path is relative to: the root, or an owned directory handle.
    fn base(&self, fh: u64) -> Result<Ino, ResolveError> {
        if fh == 0 {
            return Ok(ROOT_INO);
        }
        let dir = self.client.check(fh, HandleKind::Dir)?;
        Ok(self.store.handle_ino(dir)?)
    }

    fn walk(&self, base: u64, path: &[u8], follow: bool) -> Result<Resolved, ResolveError> {
        let base = self.base(base)?;
        resolve(self.store, &self.client.creds, base, path, follow, self.mount_path)
    }

    /// Resolves the parent of an entry about to be created; `EEXIST` if the
    /// name is taken (symlinks in last position are not followed).
    fn new_entry(&self, base: u64, path: &[u8]) -> Result<Resolved, ResolveError> {
        let r = self.walk(base, path, false)?;
        match r.target {
            Ok(_) => Err(err(libc::EEXIST)),
            Err(Errno(libc::ENOENT)) => Ok(r),
            Err(e) => Err(e.into()),
        }
    }

    fn removed(&self, parent: Ino, name: &[u8], victim: Ino) {
        self.kernel.entry_changed(parent, name);
        self.kernel.inode_changed(parent);
        self.kernel.inode_changed(victim);
    }

    fn stat(&self, req: &Request<'_>) -> OpResult {
        let h = &req.head;
        let flags = h.flags as i32;
        if req.path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
            let ino = if h.fh == 0 { ROOT_INO } else { self.handle_ino(h.fh)? };
            return Ok(with_attr(self.store.getattr(ino)?));
        }
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
        Ok(with_attr(self.walk(h.fh, req.path, follow)?.found()?))
    }

    fn open(&self, req: &Request<'_>) -> OpResult {
        let h = &req.head;
        let flags = h.flags as i32;
        if flags & libc::O_PATH != 0 {
            // An O_PATH descriptor is the kernel's business.
            return Err(ResolveError::Escaped);
        }
        let creat = flags & libc::O_CREAT != 0;
        let excl = creat && flags & libc::O_EXCL != 0;
        let follow = !excl && flags & libc::O_NOFOLLOW == 0;
        let r = self.walk(h.fh, req.path, follow)?;
        let c = &self.client.creds;
        let attr = match r.target {
            Ok(_) if excl => return Err(err(libc::EEXIST)),
            Ok(attr) => attr,
            Err(Errno(libc::ENOENT)) if creat => {
                if r.trailing_slash {
                    return Err(err(libc::EISDIR));
                }
                let (attr, fh) = self.store.create(c, r.parent, &r.name, h.a as u32, flags)?;
                self.client.adopt(fh, HandleKind::File);
                self.kernel.inode_changed(r.parent);
                return Ok(Outcome { v0: fh.0, attr: Some(attr), ..Outcome::default() });
            }
            Err(e) => return Err(e.into()),
        };
        let accmode = flags & libc::O_ACCMODE;
        let (fh, kind) = match attr.kind {
            FileKind::Symlink => return Err(err(libc::ELOOP)),
            FileKind::Directory if accmode != libc::O_RDONLY || creat => {
                return Err(err(libc::EISDIR))
            }
            FileKind::Directory => (self.store.opendir(c, attr.ino)?, HandleKind::Dir),
            _ if flags & libc::O_DIRECTORY != 0 => return Err(err(libc::ENOTDIR)),
            FileKind::Regular => {
                let fh = self.store.open(c, attr.ino, flags)?;
                if flags & libc::O_TRUNC != 0 && accmode != libc::O_RDONLY {
                    self.kernel.inode_changed(attr.ino);
                }
                (fh, HandleKind::File)
            }
            // FIFOs, sockets and devices need the kernel.
            _ => return Err(ResolveError::Escaped),
        };
        self.client.adopt(fh, kind);
        let attr = self.store.getattr(attr.ino)?;
        Ok(Outcome { v0: fh.0, attr: Some(attr), ..Outcome::default() })
    }

    fn readdir(&self, h: &ReqHeader, bulk: &mut [u8]) -> OpResult {
        let fh = self.client.check(h.fh, HandleKind::Dir)?;
        let (mut used, mut count) = (0usize, 0u64);
        self.store.readdir(fh, h.a, |e| {
            let len = DirEntryHeader::record_len(e.name.len());
            if used + len > bulk.len() {
                return false;
            }
            let head = DirEntryHeader {
                ino: e.ino,
                next: e.next,
                kind: dt_type(e.kind),
                name_len: e.name.len() as u16,
                ..DirEntryHeader::default()
            };
            let rec = &mut bulk[used..used + len];
            let hl = size_of::<DirEntryHeader>();
            rec[..hl].copy_from_slice(bytes_of(&head));
            rec[hl..hl + e.name.len()].copy_from_slice(e.name);
            rec[hl + e.name.len()..].fill(0);
            used += len;
            count += 1;
            true
        })?;
        Ok(Outcome { v0: used as u64, v1: count, ..Outcome::default() })
    }

    fn rename(&self, req: &Request<'_>) -> OpResult {
        let h = &req.head;
        let flags = h.flags;
        let known = (libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) as u32;
        if flags & !known != 0 {
            return Err(err(libc::EINVAL));
        }
        let old = self.walk(h.fh, req.path, false)?;
        let new = self.walk(h.fh2, req.path2, false)?;
        let moved = old.found()?;
        let replaced = new.target.ok();
        let flags = inode_store::RenameFlags {
            noreplace: flags & libc::RENAME_NOREPLACE as u32 != 0,
            exchange: flags & libc::RENAME_EXCHANGE as u32 != 0,
        };
        self.store.rename(&self.client.creds, old.parent, &old.name, new.parent, &new.name, flags)?;
        self.removed(old.parent, &old.name, moved.ino);
        if let Some(r) = replaced {
            self.removed(new.parent, &new.name, r.ino);
        } else {
            self.kernel.inode_changed(new.parent);
        }
        Ok(Outcome::default())
    }

    fn setattr(&self, req: &Request<'_>) -> OpResult {
        let h = &req.head;
        let flags = h.flags as i32;
        let s: SetAttrReq = decode(req.payload).ok_or(err(libc::EINVAL))?;
        let (ino, fh) = if req.path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
            let ino = self.handle_ino(h.fh)?;
            let file = self.client.check(h.fh, HandleKind::File).ok();
            (ino, file)
        } else {
            let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
            (self.walk(h.fh, req.path, follow)?.found()?.ino, None)
        };
        let time = |at: u32, now: u32, sec: i64, nsec: u32| {
            if s.valid & now != 0 {
                Some(TimeSet::Now)
            } else if s.valid & at != 0 {
                Some(TimeSet::At(Timespec { sec, nsec }))
            } else {
                None
            }
        };
        let change = SetAttr {
            mode: (s.valid & set::MODE != 0).then_some(s.mode),
            uid: (s.valid & set::UID != 0).then_some(s.uid),
            gid: (s.valid & set::GID != 0).then_some(s.gid),
            size: (s.valid & set::SIZE != 0).then_some(s.size),
            atime: time(set::ATIME, set::ATIME_NOW, s.atime, s.atime_nsec),
            mtime: time(set::MTIME, set::MTIME_NOW, s.mtime, s.mtime_nsec),
            ctime: None,
        };
        let attr = self.store.setattr(&self.client.creds, ino, &change, fh)?;
        self.kernel.inode_changed(ino);
        Ok(with_attr(attr))
    }
}

fn with_attr(attr: Attr) -> Outcome {
    Outcome { attr: Some(attr), ..Outcome::default() }
}

/// A bulk transfer length, checked against the bulk area.
fn bulk_len(requested: u64, bulk: &[u8]) -> Result<usize, ResolveError> {
    usize::try_from(requested).ok().filter(|&n| n <= bulk.len()).ok_or(err(libc::EINVAL))
}

fn dt_type(kind: FileKind) -> u8 {
    match kind {
        FileKind::Regular => libc::DT_REG,
        FileKind::Directory => libc::DT_DIR,
        FileKind::Symlink => libc::DT_LNK,
        FileKind::Fifo => libc::DT_FIFO,
        FileKind::Socket => libc::DT_SOCK,
        FileKind::CharDevice => libc::DT_CHR,
        FileKind::BlockDevice => libc::DT_BLK,
    }
}

/// The store's attributes in wire form.
pub fn wire_attr(a: &Attr) -> WireAttr {
    WireAttr {
        ino: a.ino,
        size: a.size,
        blocks: a.blocks,
        atime: a.atime.sec,
        mtime: a.mtime.sec,
        ctime: a.ctime.sec,
        atime_nsec: a.atime.nsec,
        mtime_nsec: a.mtime.nsec,
        ctime_nsec: a.ctime.nsec,
        mode: a.mode(),
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        _pad: 0,
    }
}
