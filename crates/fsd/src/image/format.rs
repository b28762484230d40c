//! The image format (documented in README, "Image format"): a header, then
//! sections, each with its own length and CRC-32C.
//!
//! ```text
//! header   "BTFUSEIM" | version u32 | crc32c(magic, version) u32        16 bytes
//! section  kind u32 | len u32 | crc32c(kind, len, payload) u32 | 0 u32  16 bytes + payload
//! ```
//!
//! Sections come in this order: META (the node records, one byte stream cut
//! into sections), DATA (file extents), END (counts of all the above),
//! then the end of the file. All integers are little-endian.

use inode_store::{FileKind, Ino, NodeImage, Timespec};

use super::ImageError;

/// First bytes of every image.
pub(super) const MAGIC: &[u8; 8] = b"BTFUSEIM";
/// Format version this daemon writes and reads.
pub(super) const VERSION: u32 = 1;
/// Bytes of the file header.
pub(super) const HEADER_LEN: usize = 16;
/// Bytes of a section header.
pub(super) const SECTION_HEADER_LEN: usize = 16;
/// Longest section payload accepted (bounds what a bad length can cost).
pub(super) const MAX_SECTION: usize = 16 << 20;
/// Target payload of META and DATA sections.
pub(super) const SECTION_TARGET: usize = 1 << 20;

/// Section kinds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A piece of the node-record stream.
    Meta = 1,
    /// File extents: `ino u64 | offset u64 | len u32 | bytes`, repeated.
    Data = 2,
    /// `nodes u64 | meta bytes u64 | data sections u64 | data bytes u64`.
    End = 3,
}

impl Kind {
    pub(super) fn from_u32(v: u32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Meta),
            2 => Some(Kind::Data),
            3 => Some(Kind::End),
            _ => None,
        }
    }
}

/// The file header.
pub(super) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header.
pub(super) fn check_header(h: &[u8; HEADER_LEN]) -> Result<(), ImageError> {
    if &h[..8] != MAGIC {
        return Err(ImageError::NotAnImage);
    }
    if crc32c::crc32c(&h[..12]).to_le_bytes() != h[12..16] {
        return Err(ImageError::Checksum(0));
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(ImageError::Version(version));
    }
    Ok(())
}

/// The checksum of a section: over its kind, length and payload.
pub(super) fn section_crc(kind: u32, len: u32, payload: &[u8]) -> u32 {
    let mut kl = [0u8; 8];
    kl[..4].copy_from_slice(&kind.to_le_bytes());
    kl[4..].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&kl), payload)
}

fn kind_code(k: FileKind) -> u8 {
    match k {
        FileKind::Regular => 1,
        FileKind::Directory => 2,
        FileKind::Symlink => 3,
        FileKind::Fifo => 4,
        FileKind::Socket => 5,
        FileKind::CharDevice => 6,
        FileKind::BlockDevice => 7,
    }
}

fn kind_of(c: u8) -> Option<FileKind> {
    Some(match c {
        1 => FileKind::Regular,
        2 => FileKind::Directory,
        3 => FileKind::Symlink,
        4 => FileKind::Fifo,
        5 => FileKind::Socket,
        6 => FileKind::CharDevice,
        7 => FileKind::BlockDevice,
        _ => return None,
    })
}

fn put_time(out: &mut Vec<u8>, t: Timespec) {
    out.extend_from_slice(&t.sec.to_le_bytes());
    out.extend_from_slice(&t.nsec.to_le_bytes());
}

/// Appends one node record:
/// `ino u64 | kind u8 | perm u16 | uid u32 | gid u32 | nlink u32 | rdev u32 |
/// size u64 | atime, mtime, ctime (sec i64, nsec u32) | target (len u32, bytes) |
/// xattrs (count u32, then name len u8, name, value len u32, value) |
/// entries (count u64, then name len u8, name, ino u64)`.
pub(super) fn encode_node(out: &mut Vec<u8>, n: &NodeImage) {
    out.extend_from_slice(&n.ino.to_le_bytes());
    out.push(kind_code(n.kind));
    out.extend_from_slice(&n.perm.to_le_bytes());
    for v in [n.uid, n.gid, n.nlink, n.rdev] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&n.size.to_le_bytes());
    for t in [n.atime, n.mtime, n.ctime] {
        put_time(out, t);
    }
    out.extend_from_slice(&(n.target.len() as u32).to_le_bytes());
    out.extend_from_slice(&n.target);
    out.extend_from_slice(&(n.xattrs.len() as u32).to_le_bytes());
    for (k, v) in &n.xattrs {
        // The store bounds names to 255 bytes and values to 64 KiB.
        out.push(k.len() as u8);
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&(n.entries.len() as u64).to_le_bytes());
    for (name, ino) in &n.entries {
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&ino.to_le_bytes());
    }
}

/// A bounds-checked reader over a byte slice.
pub(super) struct Cursor<'a>(pub(super) &'a [u8]);

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ImageError> {
        if n > self.0.len() {
            return Err(ImageError::Corrupt("a record runs past its section"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, ImageError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ImageError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }

    pub(super) fn u32(&mut self) -> Result<u32, ImageError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    pub(super) fn u64(&mut self) -> Result<u64, ImageError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn time(&mut self) -> Result<Timespec, ImageError> {
        let sec = self.u64()? as i64;
        let nsec = self.u32()?;
        Ok(Timespec { sec, nsec })
    }

    fn bytes_u8(&mut self) -> Result<Vec<u8>, ImageError> {
        let n = self.u8()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn bytes_u32(&mut self) -> Result<Vec<u8>, ImageError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

/// Decodes the whole node-record stream.
pub(super) fn decode_nodes(stream: &[u8]) -> Result<Vec<NodeImage>, ImageError> {
    let mut c = Cursor(stream);
    let mut nodes = Vec::new();
    while !c.0.is_empty() {
        let ino: Ino = c.u64()?;
        let kind = kind_of(c.u8()?).ok_or(ImageError::Corrupt("unknown file type"))?;
        let perm = c.u16()?;
        let (uid, gid, nlink, rdev) = (c.u32()?, c.u32()?, c.u32()?, c.u32()?);
        let size = c.u64()?;
        let (atime, mtime, ctime) = (c.time()?, c.time()?, c.time()?);
        let target = c.bytes_u32()?;
        let nx = c.u32()?;
        let mut xattrs = Vec::new();
        for _ in 0..nx {
            let k = c.bytes_u8()?;
            xattrs.push((k, c.bytes_u32()?));
        }
        let ne = c.u64()?;
        // Each entry takes at least 10 bytes: never reserve more than fits.
        let mut entries = Vec::with_capacity((ne as usize).min(c.0.len() / 10));
        for _ in 0..ne {
            let name = c.bytes_u8()?;
            entries.push((name, c.u64()?));
        }
        nodes.push(NodeImage {
            ino,
            kind,
            perm,
            uid,
            gid,
            nlink,
            rdev,
            size,
            atime,
            mtime,
            ctime,
            target,
            xattrs,
            entries,
        });
    }
    Ok(nodes)
}
