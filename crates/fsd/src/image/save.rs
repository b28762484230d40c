//! `btfuse save`: a consistent image of the whole tree while serving.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inode_store::{Snapshot, Store};
use parking_lot::Mutex;

use super::format::{self, Kind, SECTION_HEADER_LEN, SECTION_TARGET};
use super::uring::Ring;
use super::{ImageError, Phase, BUF_BYTES, DEPTH, PROGRESS};

/// Blocks read from one file per lock hold (256 KiB).
const CHUNK_BLOCKS: u64 = 64;

/// One save at a time per daemon (the store allows one snapshot anyway).
static SAVING: Mutex<()> = Mutex::new(());

/// What a save wrote.
#[derive(Copy, Clone, Debug)]
pub struct Saved {
    /// Inodes in the image.
    pub nodes: u64,
    /// File data bytes in the image (holes excluded).
    pub data_bytes: u64,
    /// Size of the image file.
    pub image_bytes: u64,
    /// Time taken by the one fsync of the image before the rename (the
    /// cost of durability, apart from the copy).
    pub fsync: Duration,
}

/// Nice value of the thread that copies a save's data (and of its
/// `io_uring` workers, which inherit it): the doors' threads keep their
/// share of the CPU while a save runs.
const SAVE_NICE: libc::c_int = 10;

/// Saves a point-in-time image of `store` to `path` (see the module docs of
/// `image`); `tick` is called after every section, for progress reports.
///
/// The cut is taken on the calling thread; the copy runs on a thread of its
/// own at [`SAVE_NICE`] (the cut holds every lock, so it must not wait for
/// the CPU behind the threads it stops).
pub fn save(
    store: &Store,
    path: &Path,
    tick: &mut (dyn FnMut() + Send),
) -> Result<Saved, ImageError> {
    let _one = SAVING.try_lock().ok_or(ImageError::Busy)?;
    let snap = store.snapshot().map_err(|_| ImageError::Busy)?;
    let files = snap.file_count();
    let total: u64 = (0..files).map(|i| snap.file(i).1).sum();
    PROGRESS.begin(Phase::Saving, total, files as u64);
    let tmp = tmp_path(path);
    let copy = || {
        // SAFETY: gettid and setpriority have no memory effects; this
        // thread is ours and ends with the save, so its nice value needs no
        // restoring. Failing to lower it is harmless.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, SAVE_NICE) };
        write_image(&snap, &tmp, tick)
    };
    let written = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("btfuse-save".into())
            .spawn_scoped(s, copy)?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the save thread panicked").into()))
    });
    let result = written.and_then(|saved| {
        std::fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
        Ok(saved)
    });
    PROGRESS.end();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `FILE.tmp`, beside `FILE`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn write_image(
    snap: &Snapshot<'_>,
    tmp: &Path,
    tick: &mut (dyn FnMut() + Send),
) -> Result<Saved, ImageError> {
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)?;
    let mut w = Writer::new(file)?;
    w.cur.extend_from_slice(&format::header());
    // META: the node records, cut into sections.
    let mut meta_bytes = 0u64;
    let mut nodes = snap.nodes().iter().peekable();
    while nodes.peek().is_some() {
        w.section(Kind::Meta, |out| {
            let start = out.len();
            while out.len() - start < SECTION_TARGET {
                let Some(n) = nodes.next() else { break };
                format::encode_node(out, n);
            }
            meta_bytes += (out.len() - start) as u64;
        })?;
        tick();
    }
    // DATA: the files' data blocks as they were at the cut, as extents.
    let mut data = DataCursor::default();
    let (mut sections, mut data_bytes) = (0u64, 0u64);
    while data.file < snap.file_count() {
        w.section(Kind::Data, |out| {
            let start = out.len();
            data_bytes += data.fill(snap, out, start);
        })?;
        sections += 1;
        tick();
    }
    w.section(Kind::End, |out| {
        for v in [snap.nodes().len() as u64, meta_bytes, sections, data_bytes] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    })?;
    let file = w.finish()?;
    let synced = Instant::now();
    file.sync_all()?;
    let fsync = synced.elapsed();
    let image_bytes = file.metadata()?.len();
    Ok(Saved {
        nodes: snap.nodes().len() as u64,
        data_bytes,
        image_bytes,
        fsync,
    })
}

/// Where the DATA sections are in the snapshot's files.
#[derive(Default)]
struct DataCursor {
    file: usize,
    next_block: u64,
}

impl DataCursor {
    /// Appends extents to `out` (a section payload that began at `start`)
    /// until it holds about a section's worth or the files end; returns the
    /// data bytes added.
    fn fill(&mut self, snap: &Snapshot<'_>, out: &mut Vec<u8>, start: usize) -> u64 {
        let mut added = 0u64;
        while out.len() - start < SECTION_TARGET && self.file < snap.file_count() {
            let (ino, size) = snap.file(self.file);
            // The open extent: where its length is, and its last block.
            let mut open: Option<(usize, u64)> = None;
            let from = self.next_block;
            let next = snap.read_file(self.file, from, CHUNK_BLOCKS, |bi, bytes| {
                match &mut open {
                    Some((len_at, last)) if *last + 1 == bi => {
                        let len =
                            u32::from_le_bytes(out[*len_at..*len_at + 4].try_into().expect("4"));
                        let len = len + bytes.len() as u32;
                        out[*len_at..*len_at + 4].copy_from_slice(&len.to_le_bytes());
                        *last = bi;
                    }
                    _ => {
                        out.extend_from_slice(&ino.to_le_bytes());
                        out.extend_from_slice(&(bi * inode_store::BLOCK_SIZE as u64).to_le_bytes());
                        open = Some((out.len(), bi));
                        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                    }
                }
                out.extend_from_slice(bytes);
                added += bytes.len() as u64;
            });
            let span = (next * inode_store::BLOCK_SIZE as u64).min(size)
                - (from * inode_store::BLOCK_SIZE as u64).min(size);
            if next == from {
                snap.end_file(self.file);
                self.file += 1;
                self.next_block = 0;
                PROGRESS.add(0, 1);
            } else {
                self.next_block = next;
                PROGRESS.add(span, 0);
            }
        }
        added
    }
}

/// Sequential writes of whole buffers through the ring, `DEPTH` in flight.
struct Writer {
    /// Declared before `file`: dropped (waiting for the kernel) first.
    ring: Ring<()>,
    file: File,
    cur: Vec<u8>,
    offset: u64,
    spare: Vec<Vec<u8>>,
}

impl Writer {
    fn new(file: File) -> io::Result<Writer> {
        Ok(Writer {
            ring: Ring::new(DEPTH)?,
            file,
            cur: Vec::with_capacity(2 * BUF_BYTES),
            offset: 0,
            spare: Vec::new(),
        })
    }

    /// Appends one section whose payload `fill` appends, and starts writing
    /// the buffer once it is full.
    fn section(&mut self, kind: Kind, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let at = self.cur.len();
        self.cur.extend_from_slice(&[0; SECTION_HEADER_LEN]);
        fill(&mut self.cur);
        let payload = &self.cur[at + SECTION_HEADER_LEN..];
        let len =
            u32::try_from(payload.len()).map_err(|_| io::Error::other("section too large"))?;
        let crc = format::section_crc(kind as u32, len, payload);
        let h = &mut self.cur[at..at + SECTION_HEADER_LEN];
        h[..4].copy_from_slice(&(kind as u32).to_le_bytes());
        h[4..8].copy_from_slice(&len.to_le_bytes());
        h[8..12].copy_from_slice(&crc.to_le_bytes());
        if self.cur.len() >= BUF_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.cur.is_empty() {
            return Ok(());
        }
        if !self.ring.has_room() {
            self.reap()?;
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(2 * BUF_BYTES));
        let buf = std::mem::replace(&mut self.cur, next);
        let len = buf.len();
        self.ring
            .start(true, &self.file, self.offset, buf, len, ())?;
        self.ring.submit()?;
        self.offset += len as u64;
        Ok(())
    }

    fn reap(&mut self) -> io::Result<()> {
        let mut done = self.ring.wait()?.buf;
        done.clear();
        self.spare.push(done);
        Ok(())
    }

    fn finish(mut self) -> io::Result<File> {
        self.flush()?;
        while self.ring.in_flight() > 0 {
            self.reap()?;
        }
        let Writer { ring, file, .. } = self;
        drop(ring);
        Ok(file)
    }
}
