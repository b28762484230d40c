//! `--image FILE`: checks an image completely while building a new store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

use inode_store::Store;

use super::format::{self, Cursor, Kind, HEADER_LEN, MAX_SECTION, SECTION_HEADER_LEN};
use super::progress::TerminalLine;
use super::uring::Ring;
use super::{ImageError, Phase, PROGRESS};

/// Bytes per read: large beside a section (1 MiB), so that few sections
/// straddle two reads and most are checked and loaded in place.
const READ_BYTES: usize = 8 << 20;
/// Reads in flight (32 MiB).
const READ_DEPTH: usize = 4;

/// Loads the image at `path` into a new store of `capacity` bytes. Any
/// error leaves nothing behind: the partly built store is dropped.
pub fn load(path: &Path, capacity: u64, max_inodes: u64) -> Result<Store, ImageError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    PROGRESS.begin(Phase::Loading, len, 0);
    let _line = TerminalLine::start(|| PROGRESS.line());
    let result = load_from(Reader::new(file, len)?, capacity, max_inodes);
    PROGRESS.end();
    result
}

fn load_from(mut r: Reader, capacity: u64, max_inodes: u64) -> Result<Store, ImageError> {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h)?;
    format::check_header(&h)?;
    let mut meta = Vec::new();
    let mut store: Option<Store> = None;
    let (mut sections, mut data_bytes) = (0u64, 0u64);
    let mut scratch = Vec::new();
    let file_len = r.len;
    loop {
        let at = r.pos;
        let mut sh = [0u8; SECTION_HEADER_LEN];
        r.read_exact(&mut sh)?;
        let mut c = Cursor(&sh);
        let (kind, len, crc, zero) = (c.u32()?, c.u32()?, c.u32()?, c.u32()?);
        let kind = match Kind::from_u32(kind) {
            Some(k) if zero == 0 && (len as usize) <= MAX_SECTION => k,
            _ => return Err(ImageError::Checksum(at)),
        };
        let payload = r.take(len as usize, &mut scratch)?;
        if format::section_crc(kind as u32, len, payload) != crc {
            return Err(ImageError::Checksum(at));
        }
        if kind == Kind::Meta {
            if store.is_some() {
                return Err(ImageError::Corrupt("metadata after data"));
            }
            meta.extend_from_slice(payload);
            continue;
        }
        let s = match &store {
            Some(s) => s,
            None => {
                let nodes = format::decode_nodes(&meta)?;
                let files = nodes
                    .iter()
                    .filter(|n| n.kind == inode_store::FileKind::Regular)
                    .count();
                PROGRESS.set_totals(file_len, files as u64);
                store.insert(Store::restore(capacity, max_inodes, nodes)?)
            }
        };
        match kind {
            Kind::Data => {
                sections += 1;
                let mut c = Cursor(payload);
                while !c.0.is_empty() {
                    let (ino, off, n) = (c.u64()?, c.u64()?, c.u32()?);
                    s.load_data(ino, off, c.take(n as usize)?)?;
                    data_bytes += u64::from(n);
                }
                PROGRESS.add(u64::from(len), 0);
            }
            Kind::End => {
                let mut c = Cursor(payload);
                let counts = [c.u64()?, c.u64()?, c.u64()?, c.u64()?];
                let nodes = s.usage().inodes;
                if counts != [nodes, meta.len() as u64, sections, data_bytes] || !c.0.is_empty() {
                    return Err(ImageError::Corrupt(
                        "counts in the end section do not match",
                    ));
                }
                if at + (SECTION_HEADER_LEN as u64) + u64::from(len) != file_len {
                    return Err(ImageError::Corrupt("bytes after the end section"));
                }
                return store.ok_or(ImageError::Corrupt("no metadata"));
            }
            Kind::Meta => unreachable!("handled above"),
        }
    }
}

/// Sequential reads of the whole file, `READ_DEPTH` buffers read ahead.
struct Reader {
    /// Declared before `file`: dropped (waiting for the kernel) first.
    ring: Ring<()>,
    file: File,
    len: u64,
    /// Next offset to ask the kernel for.
    ahead: u64,
    /// Buffers read, by offset, not consumed yet.
    ready: BTreeMap<u64, Vec<u8>>,
    cur: Vec<u8>,
    cur_at: usize,
    /// Offset of the next byte handed out.
    pos: u64,
}

impl Reader {
    fn new(file: File, len: u64) -> io::Result<Reader> {
        Ok(Reader {
            ring: Ring::new(READ_DEPTH)?,
            file,
            len,
            ahead: 0,
            ready: BTreeMap::new(),
            cur: Vec::new(),
            cur_at: 0,
            pos: 0,
        })
    }

    /// Fills `out` entirely, or `UnexpectedEof` at the end of the file.
    fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.cur_at == self.cur.len() {
                self.next_buffer()?;
            }
            let n = (self.cur.len() - self.cur_at).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.cur[self.cur_at..self.cur_at + n]);
            self.cur_at += n;
            done += n;
            self.pos += n as u64;
        }
        Ok(())
    }

    /// The next `n` bytes: a view into the current buffer when they lie in
    /// it (most sections: no copy), else gathered into `scratch`.
    fn take<'a>(&'a mut self, n: usize, scratch: &'a mut Vec<u8>) -> io::Result<&'a [u8]> {
        if self.cur_at == self.cur.len() && n > 0 {
            self.next_buffer()?;
        }
        if self.cur.len() - self.cur_at >= n {
            let at = self.cur_at;
            self.cur_at += n;
            self.pos += n as u64;
            return Ok(&self.cur[at..at + n]);
        }
        scratch.resize(n, 0);
        self.read_exact(scratch)?;
        Ok(scratch)
    }

    /// Makes the buffer at `pos` current, keeping the read-ahead full.
    fn next_buffer(&mut self) -> io::Result<()> {
        let mut spare = std::mem::take(&mut self.cur);
        loop {
            while self.ring.has_room() && self.ahead < self.len {
                let n = (self.len - self.ahead).min(READ_BYTES as u64) as usize;
                // Not cleared: `start` zero-fills only what it grows.
                self.ring.start(
                    false,
                    &self.file,
                    self.ahead,
                    std::mem::take(&mut spare),
                    n,
                    (),
                )?;
                self.ahead += n as u64;
            }
            self.ring.submit()?;
            if let Some(buf) = self.ready.remove(&self.pos) {
                if buf.is_empty() {
                    break;
                }
                self.cur = buf;
                self.cur_at = 0;
                return Ok(());
            }
            if self.ring.in_flight() == 0 {
                break;
            }
            let done = self.ring.wait()?;
            self.ready.insert(done.offset, done.buf);
        }
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}
