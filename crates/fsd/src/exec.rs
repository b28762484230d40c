//! Executes fast-path requests on the store.
//!
//! The ring server hands every request message here, already copied out of
//! shared memory. This module decodes and validates it (every length, flag
//! and handle comes from an untrusted process), resolves its paths, calls the
//! store with the client's credentials (the same rules as the FUSE door),
//! tells the kernel which of its cached entries and attributes went stale,
//! and encodes the reply.

use std::mem::size_of;

use inode_store::{
    Attr, DataSink, DataSource, Errno, Fh, FileKind, Ino, SetAttr, Store, TimeSet, Timespec,
    NAME_MAX, ROOT_INO,
};
use proto::{
    bytes_of, decode, set, DirEntryHeader, Op, ReqHeader, RespHeader, SetAttrReq, WireAttr,
    WireStatFs, ESCAPED, PATH_MAX,
};

use crate::fs_core::clients::{Client, HandleKind};
use crate::fs_core::resolve::{resolve, Last, ResolveError, Resolved};
pub use crate::fs_core::KernelCache;

/// A request that cannot be decoded: the channel that sent it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than a header, or lengths that do not add up.
    Truncated,
    /// A path length beyond `PATH_MAX`.
    PathTooLong,
}

/// The channel's bulk area as the executor uses it. The ring server backs
/// it with shared memory (raw, bounds-checked copies: the client may write
/// there at any time); tests back it with a `Vec`. Offsets and lengths are
/// always checked against [`BulkArea::len`] before a call.
pub trait BulkArea {
    /// Size in bytes.
    fn len(&self) -> usize;
    /// Copies `dst.len()` bytes at `offset` out of the area.
    fn read(&self, offset: usize, dst: &mut [u8]);
    /// Copies `src` into the area at `offset`.
    fn write(&mut self, offset: usize, src: &[u8]);
}

/// The first `len` bytes of a bulk area as the source of a file write.
struct BulkSource<'a> {
    area: &'a dyn BulkArea,
    len: usize,
}

impl DataSource for BulkSource<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn take(&self, offset: usize, dst: &mut [u8]) {
        self.area.read(offset, dst);
    }
}

/// The first `len` bytes of a bulk area as the destination of a file read.
struct BulkSink<'a> {
    area: &'a mut dyn BulkArea,
    len: usize,
}

impl DataSink for BulkSink<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn put(&mut self, offset: usize, src: &[u8]) {
        self.area.write(offset, src);
    }
    fn zero(&mut self, mut offset: usize, mut len: usize) {
        const ZEROS: [u8; 4096] = [0; 4096];
        while len > 0 {
            let n = len.min(ZEROS.len());
            self.area.write(offset, &ZEROS[..n]);
            offset += n;
            len -= n;
        }
    }
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
        Ok(Request {
            head,
            path,
            path2,
            payload,
        })
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
    /// Whether the client is still there: a long request stops working
    /// for a client that is gone.
    pub client_alive: &'a dyn Fn() -> bool,
}

/// Bytes a copy moves between two checks that its client is still there
/// (a few tens of milliseconds of copying).
const COPY_CHUNK: u64 = 64 << 20;

impl Executor<'_> {
    /// `copy_file_range` in parts of [`COPY_CHUNK`], up to the store's
    /// [`inode_store::MAX_RW_COUNT`] per request, checking between parts
    /// that the client is still there. Every check is the whole call's (the
    /// first part's); a short part (the end of the input, a full
    /// filesystem) or an error after the first part ends it with the count
    /// so far.
    fn copy_file_range(
        &self,
        from: Fh,
        off_in: u64,
        to: Fh,
        off_out: u64,
        len: u64,
    ) -> Result<u64, Errno> {
        let c = &self.client.creds;
        let total = len.min(inode_store::MAX_RW_COUNT);
        // Each part is checked as the rest of the call (`len - done`, so
        // the first part's checks are the whole call's) and moves at most
        // COPY_CHUNK.
        let part = |done: u64| {
            self.store.copy_file_range_part(
                c,
                from,
                off_in + done,
                to,
                off_out + done,
                len - done,
                COPY_CHUNK.min(total - done),
            )
        };
        let mut done = part(0)? as u64;
        let mut last = done;
        while last == COPY_CHUNK && done < total && (self.client_alive)() {
            last = part(done).map_or(0, |n| n as u64);
            done += last;
        }
        Ok(done)
    }

    /// Runs one request with the channel's bulk area; the encoded reply
    /// replaces the contents of `reply`.
    pub fn execute(&self, req: &Request<'_>, bulk: &mut dyn BulkArea, reply: &mut Vec<u8>) {
        let result = match Op::from_u32(req.head.op) {
            // A C string cannot hold a NUL, so only a hostile client sends
            // one; stored in a symlink target or an xattr name it would
            // break every later readlink or listxattr (through FUSE too).
            Some(_) if req.path.contains(&0) || req.path2.contains(&0) => Err(err(libc::EINVAL)),
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
        let attr_len = if attr.is_some() {
            size_of::<WireAttr>()
        } else {
            0
        };
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

    fn dispatch(&self, op: Op, req: &Request<'_>, bulk: &mut dyn BulkArea) -> OpResult {
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
                self.kernel
                    .before_data(self.store.handle_ino(fh)?, h.a, len.max(1) as u64);
                let n = self
                    .store
                    .read_into(fh, h.a, &mut BulkSink { area: bulk, len })?;
                Ok(Outcome {
                    v0: n as u64,
                    ..Outcome::default()
                })
            }
            Op::Write => {
                let fh = self.client.check(h.fh, HandleKind::File)?;
                let len = bulk_len(h.b, bulk)?;
                let data = BulkSource { area: bulk, len };
                // The client's current O_APPEND (fcntl may have changed it).
                let append = h.flags as i32 & libc::O_APPEND != 0;
                let ino = self.store.handle_ino(fh)?;
                // Where an append lands is known only once it is done.
                let (at, span) = if append { (0, 0) } else { (h.a, len as u64) };
                self.kernel.before_data(ino, at, span.max(1));
                let written = self
                    .store
                    .write_from(&self.client.creds, fh, h.a, &data, append)?;
                if written.len > 0 {
                    self.kernel
                        .data_changed(ino, written.offset, written.len as u64);
                }
                Ok(Outcome {
                    v0: written.len as u64,
                    v1: written.offset,
                    ..Outcome::default()
                })
            }
            Op::Readdir => self.readdir(h, bulk),
            Op::Access => {
                let follow = h.flags as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
                let attr = self.walk(h.fh, req.path, follow)?.found()?;
                self.store
                    .access(&self.client.creds, attr.ino, h.a as i32)?;
                Ok(Outcome::default())
            }
            Op::Readlink => {
                let attr = self.walk(h.fh, req.path, false)?.found()?;
                if attr.kind != FileKind::Symlink {
                    return Err(err(libc::EINVAL));
                }
                Ok(Outcome {
                    payload: self.store.readlink(attr.ino)?,
                    ..Outcome::default()
                })
            }
            Op::Mkdir => {
                let r = self.new_entry(h.fh, req.path, true)?;
                let attr = self
                    .store
                    .mkdir(&self.client.creds, r.parent, &r.name, h.a as u32)?;
                self.kernel.inode_changed(r.parent);
                Ok(with_attr(attr))
            }
            Op::Mknod => {
                let r = self.new_entry(h.fh, req.path, false)?;
                let (mode, rdev) = (h.a as u32, h.b as u32);
                let attr = self
                    .store
                    .mknod(&self.client.creds, r.parent, &r.name, mode, rdev)?;
                self.kernel.inode_changed(r.parent);
                Ok(with_attr(attr))
            }
            Op::Symlink => {
                if req.path2.is_empty() {
                    return Err(err(libc::ENOENT));
                }
                let r = self.new_entry(h.fh, req.path, false)?;
                let attr = self
                    .store
                    .symlink(&self.client.creds, r.parent, &r.name, req.path2)?;
                self.kernel.inode_changed(r.parent);
                Ok(with_attr(attr))
            }
            Op::Unlink | Op::Rmdir => {
                let r = self.walk_entry(h.fh, req.path)?;
                let victim = r.found()?;
                if r.trailing_slash && victim.kind != FileKind::Directory {
                    // "link-to-dir/" names the link itself, not a directory.
                    return Err(err(libc::ENOTDIR));
                }
                if r.trailing_slash && op == Op::Unlink {
                    return Err(err(libc::EISDIR));
                }
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
                let new = self.new_entry(h.fh2, req.path2, false)?;
                let attr = self
                    .store
                    .link(&self.client.creds, old.ino, new.parent, &new.name)?;
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
            Op::Lseek => {
                let fh = self.client.check(h.fh, HandleKind::File)?;
                Ok(Outcome {
                    v0: self.store.lseek(fh, h.a, h.flags as i32)?,
                    ..Outcome::default()
                })
            }
            Op::Fallocate => {
                let fh = self.client.check(h.fh, HandleKind::File)?;
                let ino = self.store.handle_ino(fh)?;
                self.kernel.before_data(ino, h.a, h.b.max(1));
                self.store.fallocate(fh, h.a, h.b, h.flags as i32)?;
                self.kernel.data_changed(ino, h.a, h.b.max(1));
                Ok(Outcome::default())
            }
            Op::CopyFileRange => {
                let from = self.client.check(h.fh, HandleKind::File)?;
                let to = self.client.check(h.fh2, HandleKind::File)?;
                let to_ino = self.store.handle_ino(to)?;
                self.kernel
                    .before_data(self.store.handle_ino(from)?, h.a, h.c.max(1));
                self.kernel.before_data(to_ino, h.b, h.c.max(1));
                let n = self.copy_file_range(from, h.a, to, h.b, h.c)?;
                if n > 0 {
                    self.kernel.data_changed(to_ino, h.b, n);
                }
                Ok(Outcome {
                    v0: n,
                    ..Outcome::default()
                })
            }
            Op::Getxattr | Op::Listxattr => {
                let ino = self.xattr_target(req)?;
                let c = &self.client.creds;
                let value = match op {
                    Op::Getxattr => self.store.getxattr(c, ino, req.path2)?,
                    _ => self.store.listxattr(c, ino)?,
                };
                let room = bulk_len(h.b, bulk)?;
                if room > 0 && value.len() > room {
                    return Err(err(libc::ERANGE));
                }
                if room > 0 {
                    bulk.write(0, &value);
                }
                // With no room the caller only asked for the size.
                Ok(Outcome {
                    v0: value.len() as u64,
                    ..Outcome::default()
                })
            }
            Op::Setxattr => {
                let ino = self.xattr_target(req)?;
                let mut value = vec![0; bulk_len(h.b, bulk)?];
                bulk.read(0, &mut value);
                self.store
                    .setxattr(&self.client.creds, ino, req.path2, &value, h.a as i32)?;
                self.kernel.inode_changed(ino);
                Ok(Outcome::default())
            }
            Op::Removexattr => {
                let ino = self.xattr_target(req)?;
                self.store.removexattr(&self.client.creds, ino, req.path2)?;
                self.kernel.inode_changed(ino);
                Ok(Outcome::default())
            }
            Op::DropHandleName => {
                self.client.kind(h.fh)?;
                let name = proto::handle_name(h.fh, self.client.image);
                self.kernel.entry_changed(ROOT_INO, &name);
                Ok(Outcome::default())
            }
            Op::DirPath => {
                let fh = self.client.check(h.fh, HandleKind::Dir)?;
                let path = self.store.dir_path(self.store.handle_ino(fh)?)?;
                if path.len() >= proto::PATH_MAX {
                    return Err(err(libc::ENAMETOOLONG));
                }
                Ok(Outcome {
                    payload: path,
                    ..Outcome::default()
                })
            }
            Op::Statfs => {
                // statfs(2) of a path fails like a lookup; of an fd, like a
                // bad handle.
                if !req.path.is_empty() {
                    self.walk(h.fh, req.path, true)?.found()?;
                } else if h.fh != 0 {
                    self.handle_ino(h.fh)?;
                }
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
                Ok(Outcome {
                    payload: bytes_of(&w).to_vec(),
                    ..Outcome::default()
                })
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
        self.resolve(
            base,
            path,
            if follow { Last::Follow } else { Last::NoFollow },
        )
    }

    /// Resolves a path naming an entry to remove or rename (never follows).
    fn walk_entry(&self, base: u64, path: &[u8]) -> Result<Resolved, ResolveError> {
        self.resolve(base, path, Last::Entry)
    }

    fn resolve(&self, base: u64, path: &[u8], last: Last) -> Result<Resolved, ResolveError> {
        let base = self.base(base)?;
        resolve(
            self.store,
            &self.client.creds,
            base,
            path,
            last,
            self.mount_path,
        )
    }

    /// Resolves the parent of an entry about to be created: `EEXIST` if the
    /// name is taken (a symlink there counts), and, like the kernel, `ENOENT`
    /// for a trailing slash on anything but a new directory.
    fn new_entry(&self, base: u64, path: &[u8], is_dir: bool) -> Result<Resolved, ResolveError> {
        let r = self.walk_entry(base, path)?;
        match r.target {
            Ok(_) => Err(err(libc::EEXIST)),
            Err(Errno(libc::ENOENT)) if r.trailing_slash && !is_dir => Err(err(libc::ENOENT)),
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
            let ino = if h.fh == 0 {
                ROOT_INO
            } else {
                self.handle_ino(h.fh)?
            };
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
        self.client.room_for_handle()?;
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
                return Ok(Outcome {
                    v0: fh.0,
                    attr: Some(attr),
                    ..Outcome::default()
                });
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
                let truncates = flags & libc::O_TRUNC != 0 && accmode != libc::O_RDONLY;
                if truncates {
                    self.kernel.before_data(attr.ino, 0, 0);
                }
                let fh = self.store.open(c, attr.ino, flags)?;
                if truncates {
                    self.kernel.data_changed(attr.ino, 0, 0);
                }
                (fh, HandleKind::File)
            }
            // FIFOs, sockets and devices need the kernel.
            _ => return Err(ResolveError::Escaped),
        };
        self.client.adopt(fh, kind);
        let attr = self.store.getattr(attr.ino)?;
        Ok(Outcome {
            v0: fh.0,
            attr: Some(attr),
            ..Outcome::default()
        })
    }

    /// The inode an xattr request names: a path, or a handle with
    /// `AT_EMPTY_PATH` and no path.
    fn xattr_target(&self, req: &Request<'_>) -> Result<Ino, ResolveError> {
        let h = &req.head;
        let flags = h.flags as i32;
        if req.path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
            return self.handle_ino(h.fh);
        }
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
        Ok(self.walk(h.fh, req.path, follow)?.found()?.ino)
    }

    fn readdir(&self, h: &ReqHeader, bulk: &mut dyn BulkArea) -> OpResult {
        let fh = self.client.check(h.fh, HandleKind::Dir)?;
        // The client asks for at most `b` bytes (0: as much as fits).
        let limit = match usize::try_from(h.b) {
            Ok(0) | Err(_) => bulk.len(),
            Ok(b) => b.min(bulk.len()),
        };
        let (mut used, mut count) = (0usize, 0u64);
        let mut rec = [0u8; DirEntryHeader::record_len(NAME_MAX)];
        self.store.readdir(fh, h.a, |e| {
            let len = DirEntryHeader::record_len(e.name.len());
            if used + len > limit {
                return false;
            }
            let head = DirEntryHeader {
                ino: e.ino,
                next: e.next,
                kind: dt_type(e.kind),
                name_len: e.name.len() as u16,
                ..DirEntryHeader::default()
            };
            let hl = size_of::<DirEntryHeader>();
            rec[..hl].copy_from_slice(bytes_of(&head));
            rec[hl..hl + e.name.len()].copy_from_slice(e.name);
            rec[hl + e.name.len()..len].fill(0);
            bulk.write(used, &rec[..len]);
            used += len;
            count += 1;
            true
        })?;
        Ok(Outcome {
            v0: used as u64,
            v1: count,
            ..Outcome::default()
        })
    }

    fn rename(&self, req: &Request<'_>) -> OpResult {
        let h = &req.head;
        let flags = h.flags;
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
        if flags & !known != 0 {
            return Err(err(libc::EINVAL));
        }
        let flags = inode_store::RenameFlags {
            noreplace: flags & libc::RENAME_NOREPLACE != 0,
            exchange: flags & libc::RENAME_EXCHANGE != 0,
            whiteout: flags & libc::RENAME_WHITEOUT != 0,
        };
        // do_renameat2 checks these before it looks anything up.
        if flags.exchange && (flags.noreplace || flags.whiteout) {
            return Err(err(libc::EINVAL));
        }
        let old = self.walk_entry(h.fh, req.path)?;
        let new = self.walk_entry(h.fh2, req.path2)?;
        // The kernel refuses "." and ".." on either side before looking.
        let dots = |r: &Resolved| r.name == b"." || r.name == b"..";
        if dots(&old) {
            return Err(err(libc::EBUSY));
        }
        if dots(&new) {
            return Err(err(if flags.noreplace {
                libc::EEXIST
            } else {
                libc::EBUSY
            }));
        }
        // Like the kernel, which looks up both last components before it
        // checks that the source exists: a destination whose parent cannot
        // be searched (EACCES) wins over a missing source (ENOENT).
        if let Err(e) = &new.target {
            if e.0 != libc::ENOENT && old.target.is_err() {
                return Err(ResolveError::Errno(*e));
            }
        }
        let moved = old.found()?;
        if moved.kind != FileKind::Directory
            && (old.trailing_slash || (!flags.exchange && new.trailing_slash))
        {
            return Err(err(libc::ENOTDIR));
        }
        let replaced = new.target.ok();
        self.store.rename(
            &self.client.creds,
            old.parent,
            &old.name,
            new.parent,
            &new.name,
            flags,
        )?;
        self.removed(old.parent, &old.name, moved.ino);
        if let Some(r) = &replaced {
            self.removed(new.parent, &new.name, r.ino);
        } else {
            self.kernel.inode_changed(new.parent);
        }
        let exchanged = replaced.filter(|_| flags.exchange);
        for dir in [Some(moved), exchanged].into_iter().flatten() {
            if dir.kind == FileKind::Directory {
                self.kernel.dir_moved(dir.ino);
            }
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
            chown: s.valid & set::CHOWN != 0,
        };
        if change.size.is_some() {
            self.kernel.before_data(ino, 0, 0);
        }
        let attr = self.store.setattr(&self.client.creds, ino, &change, fh)?;
        match change.size {
            Some(_) => self.kernel.data_changed(ino, 0, 0),
            None => self.kernel.inode_changed(ino),
        }
        Ok(with_attr(attr))
    }
}

fn with_attr(attr: Attr) -> Outcome {
    Outcome {
        attr: Some(attr),
        ..Outcome::default()
    }
}

/// A bulk transfer length, checked against the bulk area.
fn bulk_len(requested: u64, bulk: &dyn BulkArea) -> Result<usize, ResolveError> {
    usize::try_from(requested)
        .ok()
        .filter(|&n| n <= bulk.len())
        .ok_or(err(libc::EINVAL))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs_core::clients::Clients;
    use inode_store::Creds;
    use proto::DirEntryHeader;
    use std::cell::RefCell;

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
        fn before_data(&self, ino: Ino, off: u64, len: u64) {
            self.0
                .borrow_mut()
                .push(format!("before {ino} {off}+{len}"));
        }
        fn data_changed(&self, ino: Ino, off: u64, len: u64) {
            self.0.borrow_mut().push(format!("data {ino} {off}+{len}"));
        }
        fn entry_changed(&self, parent: Ino, name: &[u8]) {
            self.0
                .borrow_mut()
                .push(format!("entry {parent}/{}", String::from_utf8_lossy(name)));
        }
        fn dir_moved(&self, ino: Ino) {
            self.0.borrow_mut().push(format!("moved {ino}"));
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

    fn msg(head: ReqHeader, path: &[u8], path2: &[u8], payload: &[u8]) -> Vec<u8> {
        let head = ReqHeader {
            path_len: path.len() as u32,
            path2_len: path2.len() as u32,
            payload_len: payload.len() as u32,
            ..head
        };
        [bytes_of(&head), path, path2, payload].concat()
    }

    struct Fixture {
        store: Store,
        clients: Clients,
        kernel: Recorder,
        bulk: Vec<u8>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let store = Store::new(16 << 20);
            let root = Creds::root();
            store
                .setattr(
                    &root,
                    ROOT_INO,
                    &SetAttr {
                        mode: Some(0o1777),
                        ..SetAttr::default()
                    },
                    None,
                )
                .unwrap();
            Fixture {
                store,
                clients: Clients::default(),
                kernel: Recorder::default(),
                bulk: vec![0; 1 << 20],
            }
        }

        /// Runs a request as `client`: (status, header, payload).
        fn call(
            &mut self,
            client: &Client,
            op: Op,
            head: ReqHeader,
            path: &[u8],
            path2: &[u8],
        ) -> (i32, RespHeader, Vec<u8>) {
            self.call_with(
                client,
                ReqHeader {
                    op: op as u32,
                    ..head
                },
                path,
                path2,
                &[],
            )
        }

        fn call_with(
            &mut self,
            client: &Client,
            head: ReqHeader,
            path: &[u8],
            path2: &[u8],
            payload: &[u8],
        ) -> (i32, RespHeader, Vec<u8>) {
            let m = msg(head, path, path2, payload);
            let req = Request::parse(&m).unwrap();
            let exec = Executor {
                store: &self.store,
                client,
                mount_path: b"/mnt/x",
                kernel: &self.kernel,
                client_alive: &|| true,
            };
            let mut reply = Vec::new();
            exec.execute(&req, &mut self.bulk, &mut reply);
            let resp: RespHeader = decode(&reply).unwrap();
            (resp.status, resp, reply[size_of::<RespHeader>()..].to_vec())
        }
    }

    fn h() -> ReqHeader {
        ReqHeader::default()
    }

    #[test]
    fn write_then_read_through_handles() {
        let mut f = Fixture::new();
        let c = f.clients.join(1, 0, Creds::root()).unwrap();
        let open = ReqHeader {
            flags: (libc::O_CREAT | libc::O_RDWR) as u32,
            a: 0o644,
            ..h()
        };
        let (st, r, _) = f.call(&c, Op::Open, open, b"dir_missing/../f", b"");
        assert_eq!(
            (st, r.has_attr),
            (-libc::ENOENT, 0),
            "a missing dir on the way fails like the kernel"
        );
        let (st, r, _) = f.call(&c, Op::Open, open, b"f", b"");
        assert_eq!((st, r.has_attr), (0, 1));
        let fh = r.v0;
        f.bulk[..5].copy_from_slice(b"hello");
        let (st, w, _) = f.call(
            &c,
            Op::Write,
            ReqHeader {
                fh,
                a: 3,
                b: 5,
                ..h()
            },
            b"",
            b"",
        );
        assert_eq!((st, w.v0, w.v1), (0, 5, 3));
        f.bulk.fill(0xff);
        let (st, rd, _) = f.call(
            &c,
            Op::Read,
            ReqHeader {
                fh,
                a: 0,
                b: 100,
                ..h()
            },
            b"",
            b"",
        );
        assert_eq!((st, rd.v0), (0, 8));
        assert_eq!(&f.bulk[..8], b"\0\0\0hello");
        let (st, s, payload) = f.call(&c, Op::Stat, h(), b"/mnt/x/f", b"");
        let attr: WireAttr = decode(&payload).unwrap();
        assert_eq!(
            (st, s.has_attr, attr.size, attr.mode),
            (0, 1, 8, libc::S_IFREG | 0o644)
        );
        assert!(f.kernel.0.borrow().iter().any(|e| e.starts_with("inode")));
        let (st, _, _) = f.call(&c, Op::Release, ReqHeader { fh, ..h() }, b"", b"");
        assert_eq!(st, 0);
        let (st, _, _) = f.call(&c, Op::Read, ReqHeader { fh, b: 1, ..h() }, b"", b"");
        assert_eq!(st, -libc::EBADF);
    }

    #[test]
    fn a_handle_name_is_dropped_from_the_kernel_for_its_holder_only() {
        let mut f = Fixture::new();
        let me = f.clients.join(1, 0xabc, Creds::root()).unwrap();
        let other = f.clients.join(2, 0xabc, Creds::root()).unwrap();
        let open = ReqHeader {
            flags: (libc::O_CREAT | libc::O_RDWR) as u32,
            a: 0o600,
            ..h()
        };
        let (_, r, _) = f.call(&me, Op::Open, open, b"f", b"");
        f.kernel.0.borrow_mut().clear();
        let drop_name = ReqHeader { fh: r.v0, ..h() };
        let (st, _, _) = f.call(&other, Op::DropHandleName, drop_name, b"", b"");
        assert_eq!(st, -libc::EBADF);
        assert!(f.kernel.0.borrow().is_empty());
        let (st, _, _) = f.call(&me, Op::DropHandleName, drop_name, b"", b"");
        assert_eq!(st, 0);
        let name = String::from_utf8(proto::handle_name(r.v0, 0xabc).to_vec()).unwrap();
        assert_eq!(*f.kernel.0.borrow(), [format!("entry {ROOT_INO}/{name}")]);
    }

    #[test]
    fn another_process_cannot_use_my_handle() {
        let mut f = Fixture::new();
        let me = f.clients.join(1, 0, Creds::root()).unwrap();
        let other = f.clients.join(2, 0, Creds::root()).unwrap();
        let open = ReqHeader {
            flags: (libc::O_CREAT | libc::O_WRONLY) as u32,
            a: 0o600,
            ..h()
        };
        let (_, r, _) = f.call(&me, Op::Open, open, b"secret", b"");
        let (st, _, _) = f.call(
            &other,
            Op::Read,
            ReqHeader {
                fh: r.v0,
                b: 1,
                ..h()
            },
            b"",
            b"",
        );
        assert_eq!(st, -libc::EBADF);
        let (st, _, _) = f.call(&other, Op::Release, ReqHeader { fh: r.v0, ..h() }, b"", b"");
        assert_eq!(st, -libc::EBADF);
    }

    #[test]
    fn permissions_are_the_stores() {
        let mut f = Fixture::new();
        let root = f.clients.join(1, 0, Creds::root()).unwrap();
        let user = f.clients.join(2, 0, user1000()).unwrap();
        let open = ReqHeader {
            flags: (libc::O_CREAT | libc::O_WRONLY) as u32,
            a: 0o600,
            ..h()
        };
        f.call(&root, Op::Open, open, b"private", b"");
        let (st, _, _) = f.call(
            &user,
            Op::Open,
            ReqHeader {
                flags: libc::O_RDONLY as u32,
                ..h()
            },
            b"private",
            b"",
        );
        assert_eq!(st, -libc::EACCES);
        let (st, _, _) = f.call(&user, Op::Unlink, h(), b"private", b"");
        assert_eq!(st, -libc::EPERM, "sticky root directory");
    }

    #[test]
    fn paths_leaving_the_mount_escape() {
        let mut f = Fixture::new();
        let c = f.clients.join(1, 0, Creds::root()).unwrap();
        f.call(&c, Op::Mkdir, ReqHeader { a: 0o755, ..h() }, b"a", b"");
        for path in [&b".."[..], b"a/../../etc", b"/etc/passwd", b"/mnt/xy"] {
            let (st, _, _) = f.call(&c, Op::Stat, h(), path, b"");
            assert_eq!(st, ESCAPED, "{}", String::from_utf8_lossy(path));
        }
        f.call(&c, Op::Symlink, h(), b"out", b"/etc");
        let (st, _, _) = f.call(&c, Op::Stat, h(), b"out/passwd", b"");
        assert_eq!(st, ESCAPED);
        let (st, _, _) = f.call(
            &c,
            Op::Stat,
            ReqHeader {
                flags: libc::AT_SYMLINK_NOFOLLOW as u32,
                ..h()
            },
            b"out",
            b"",
        );
        assert_eq!(st, 0, "the link itself is on the mount");
    }

    #[test]
    fn setattr_without_following_links() {
        let mut f = Fixture::new();
        let c = f.clients.join(1, 0, Creds::root()).unwrap();
        f.call(
            &c,
            Op::Mknod,
            ReqHeader {
                a: (libc::S_IFREG | 0o644) as u64,
                ..h()
            },
            b"f",
            b"",
        );
        let times = SetAttrReq {
            valid: set::MTIME | set::ATIME,
            mtime: 1_600_000_000,
            atime: 1_600_000_000,
            ..SetAttrReq::default()
        };
        let head = ReqHeader {
            op: Op::SetAttr as u32,
            flags: libc::AT_SYMLINK_NOFOLLOW as u32,
            ..h()
        };
        let (st, r, payload) = f.call_with(&c, head, b"f", b"", bytes_of(&times));
        assert_eq!((st, r.has_attr), (0, 1));
        let attr: WireAttr = decode(&payload).unwrap();
        assert_eq!((attr.mtime, attr.atime), (1_600_000_000, 1_600_000_000));
    }

    #[test]
    fn a_final_dot_is_not_its_directory() {
        let mut f = Fixture::new();
        let c = f.clients.join(1, 0, Creds::root()).unwrap();
        f.call(&c, Op::Mkdir, ReqHeader { a: 0o755, ..h() }, b"d", b"");
        assert_eq!(f.call(&c, Op::Rmdir, h(), b"d/.", b"").0, -libc::EINVAL);
        assert_eq!(f.call(&c, Op::Rmdir, h(), b".", b"").0, -libc::EINVAL);
        assert_eq!(f.call(&c, Op::Rmdir, h(), b"d/..", b"").0, -libc::ENOTEMPTY);
        assert_eq!(f.call(&c, Op::Mkdir, h(), b"d/.", b"").0, -libc::EEXIST);
        assert_eq!(f.call(&c, Op::Unlink, h(), b"d/.", b"").0, -libc::EISDIR);
        assert_eq!(f.call(&c, Op::Stat, h(), b"d/./", b"").0, 0);
        assert_eq!(f.call(&c, Op::Rmdir, h(), b"./d/", b"").0, 0);
    }

    #[test]
    fn readdir_lists_in_bulk_records() {
        let mut f = Fixture::new();
        let c = f.clients.join(1, 0, Creds::root()).unwrap();
        f.call(&c, Op::Mkdir, ReqHeader { a: 0o755, ..h() }, b"d", b"");
        for name in [&b"b"[..], b"a", b"c"] {
            let path = [&b"d/"[..], name].concat();
            f.call(
                &c,
                Op::Mknod,
                ReqHeader {
                    a: (libc::S_IFREG | 0o644) as u64,
                    ..h()
                },
                &path,
                b"",
            );
        }
        let (st, r, _) = f.call(
            &c,
            Op::Open,
            ReqHeader {
                flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
                ..h()
            },
            b"d",
            b"",
        );
        assert_eq!(st, 0);
        let (st, list, _) = f.call(&c, Op::Readdir, ReqHeader { fh: r.v0, ..h() }, b"", b"");
        assert_eq!((st, list.v1), (0, 5));
        let mut names = Vec::new();
        let mut off = 0;
        while off < list.v0 as usize {
            let e: DirEntryHeader = decode(&f.bulk[off..]).unwrap();
            let start = off + size_of::<DirEntryHeader>();
            names.push(
                String::from_utf8(f.bulk[start..start + e.name_len as usize].to_vec()).unwrap(),
            );
            off += DirEntryHeader::record_len(e.name_len as usize);
        }
        assert_eq!(names, [".", "..", "a", "b", "c"]);
    }

    #[test]
    fn malformed_requests_are_rejected() {
        let head = ReqHeader {
            op: Op::Stat as u32,
            path_len: 10,
            ..h()
        };
        let mut m = bytes_of(&head).to_vec();
        m.extend_from_slice(b"short");
        assert!(matches!(Request::parse(&m), Err(Malformed::Truncated)));
        assert!(matches!(
            Request::parse(&m[..10]),
            Err(Malformed::Truncated)
        ));
        let head = ReqHeader {
            op: Op::Stat as u32,
            path_len: PATH_MAX as u32 + 1,
            ..h()
        };
        assert!(matches!(
            Request::parse(bytes_of(&head)),
            Err(Malformed::PathTooLong)
        ));
        let mut f = Fixture::new();
        let c = f.clients.join(1, 0, Creds::root()).unwrap();
        let (st, _, _) = f.call_with(&c, ReqHeader { op: 999, ..h() }, b"", b"", &[]);
        assert_eq!(st, -libc::ENOSYS);
        let (st, _, _) = f.call(
            &c,
            Op::Read,
            ReqHeader {
                fh: 12345,
                b: u64::MAX,
                ..h()
            },
            b"",
            b"",
        );
        assert_eq!(st, -libc::EBADF);
    }

    #[test]
    fn rename_reports_an_unsearchable_destination_before_a_missing_source() {
        let mut f = Fixture::new();
        let root = f.clients.join(1, 0, Creds::root()).unwrap();
        let user = f.clients.join(2, 0, user1000()).unwrap();
        f.call(
            &root,
            Op::Mkdir,
            ReqHeader { a: 0o700, ..h() },
            b"priv",
            b"",
        );
        f.call(&root, Op::Mkdir, ReqHeader { a: 0o777, ..h() }, b"pub", b"");
        let st = f.call(&user, Op::Rename, h(), b"pub/missing", b"priv/x").0;
        assert_eq!(st, -libc::EACCES);
        let st = f.call(&user, Op::Rename, h(), b"pub/missing", b"pub/y").0;
        assert_eq!(st, -libc::ENOENT);
    }

    #[test]
    fn nul_bytes_in_any_path_are_refused() {
        let mut f = Fixture::new();
        let c = f.clients.join(1, 0, Creds::root()).unwrap();
        let st = f.call(&c, Op::Symlink, h(), b"l", b"a\0b").0;
        assert_eq!(st, -libc::EINVAL);
        let st = f.call(&c, Op::Stat, h(), b"l", b"").0;
        assert_eq!(st, -libc::ENOENT, "the link was created");
        f.call(&c, Op::Mkdir, ReqHeader { a: 0o755, ..h() }, b"d", b"");
        let st = f.call(&c, Op::Setxattr, h(), b"d", b"user.a\0b").0;
        assert_eq!(st, -libc::EINVAL);
        let st = f.call(&c, Op::Rename, h(), b"d", b"x\0y").0;
        assert_eq!(st, -libc::EINVAL);
    }
}
