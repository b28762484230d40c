//! `--from DIR`: a store holding a copy of a directory tree.
//!
//! The walk (one thread) records every entry with `lstat`, `llistxattr`,
//! `lgetxattr` and `readlink`; a file with several links in the tree becomes
//! one inode with those links. Then file data is read through `io_uring`,
//! `DEPTH` reads of up to `BUF_BYTES` in flight across files (files of
//! up to `INLINE_READ` bytes are read directly); a file whose allocated
//! blocks are fewer than its size is read extent by extent (`SEEK_DATA` /
//! `SEEK_HOLE`), so holes stay holes.
//!
//! Kept: kinds (fifo, socket, device nodes included), modes, owners, atime
//! and mtime, ctime (the source's: the store sets it freely, unlike a copy
//! through the kernel), xattrs of every namespace the process can read.
//! Source files are opened with O_NOATIME, so loading leaves their atimes.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use inode_store::{FileKind, Ino, NodeImage, Store, Timespec, ROOT_INO};

use super::progress::TerminalLine;
use super::uring::{Done, Ring};
use super::{ImageError, Phase, BUF_BYTES, DEPTH, PROGRESS};

/// Files up to this size are read with a plain `pread` as soon as they are
/// open: on tmpfs (no non-blocking reads) `io_uring` hands every read to a
/// worker thread, a round trip that costs more than copying a small file.
const INLINE_READ: u64 = 16 << 10;

/// A regular file to read: inode, source path, size, sparse.
struct Source {
    ino: Ino,
    path: PathBuf,
    size: u64,
    sparse: bool,
}

/// Loads a copy of the tree at `dir` into a new store of `capacity` bytes.
pub fn from_dir(dir: &Path, capacity: u64, max_inodes: u64) -> Result<Store, ImageError> {
    PROGRESS.begin(Phase::Loading, 0, 0);
    let _line = TerminalLine::start(|| PROGRESS.line());
    let result = walk(dir).and_then(|(nodes, files)| {
        let total = files.iter().map(|f| f.size).sum();
        PROGRESS.set_totals(total, files.len() as u64);
        let store = Store::restore(capacity, max_inodes, nodes)?;
        read_data(&store, &files)?;
        Ok(store)
    });
    PROGRESS.end();
    result
}

fn src_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |e| ImageError::Source(path.to_path_buf(), e)
}

fn time(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    }
}

fn node_of(ino: Ino, md: &Metadata, path: &Path) -> Result<NodeImage, ImageError> {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        FileKind::Directory
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else if ft.is_socket() {
        FileKind::Socket
    } else if ft.is_char_device() {
        FileKind::CharDevice
    } else if ft.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Regular
    };
    let target = if kind == FileKind::Symlink {
        std::fs::read_link(path)
            .map_err(src_err(path))?
            .into_os_string()
            .into_encoded_bytes()
    } else {
        Vec::new()
    };
    // readlink moves a symlink's atime on most filesystems: take the one
    // the source has after it, so the copy shows what the source shows.
    let atime = if kind == FileKind::Symlink {
        let md = std::fs::symlink_metadata(path).map_err(src_err(path))?;
        time(md.atime(), md.atime_nsec())
    } else {
        time(md.atime(), md.atime_nsec())
    };
    Ok(NodeImage {
        ino,
        kind,
        perm: (md.mode() & 0o7777) as u16,
        uid: md.uid(),
        gid: md.gid(),
        nlink: 0,
        rdev: u32::try_from(md.rdev()).unwrap_or(0),
        size: if kind == FileKind::Regular {
            md.size()
        } else {
            0
        },
        atime,
        mtime: time(md.mtime(), md.mtime_nsec()),
        ctime: time(md.ctime(), md.ctime_nsec()),
        target,
        xattrs: xattrs(path)?,
        entries: Vec::new(),
    })
}

/// Extended attributes: (name, value) pairs.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Every extended attribute of `path` (not following a symlink).
fn xattrs(path: &Path) -> Result<Xattrs, ImageError> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| ImageError::Source(path.to_path_buf(), e.into()))?;
    let mut names = vec![0u8; 1024];
    let n = loop {
        // SAFETY: `c` is NUL-terminated, `names` is writable for its length.
        let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
            e => return Err(ImageError::Source(path.to_path_buf(), e)),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let cname = CString::new(name).expect("split at NUL");
        let mut value = vec![0u8; 256];
        loop {
            // SAFETY: both strings are NUL-terminated; `value` is writable
            // for its length.
            let n = unsafe {
                libc::lgetxattr(
                    c.as_ptr(),
                    cname.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            if n >= 0 {
                value.truncate(n as usize);
                break;
            }
            match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::ERANGE) => value.resize(65536, 0),
                e => return Err(ImageError::Source(path.to_path_buf(), e)),
            }
        }
        out.push((name.to_vec(), value));
    }
    Ok(out)
}

/// Walks `dir`: the nodes (ino = index + 1) and the files to read.
fn walk(dir: &Path) -> Result<(Vec<NodeImage>, Vec<Source>), ImageError> {
    let md = std::fs::metadata(dir).map_err(src_err(dir))?;
    if !md.is_dir() {
        return Err(ImageError::Source(
            dir.to_path_buf(),
            io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    let mut nodes = vec![node_of(ROOT_INO, &md, dir)?];
    let mut files = Vec::new();
    let mut linked: HashMap<(u64, u64), Ino> = HashMap::new();
    let mut stack = vec![(ROOT_INO, dir.to_path_buf())];
    while let Some((parent, path)) = stack.pop() {
        let mut entries = Vec::new();
        for e in std::fs::read_dir(&path).map_err(src_err(&path))? {
            let e = e.map_err(src_err(&path))?;
            let child = e.path();
            let md = e.metadata().map_err(src_err(&child))?;
            let key = (md.dev(), md.ino());
            let ino = match linked.get(&key) {
                Some(&ino) if !md.is_dir() => ino,
                _ => {
                    let ino = nodes.len() as Ino + 1;
                    nodes.push(node_of(ino, &md, &child)?);
                    if md.is_dir() {
                        stack.push((ino, child.clone()));
                    } else {
                        if md.nlink() > 1 {
                            linked.insert(key, ino);
                        }
                        if md.is_file() && md.size() > 0 {
                            files.push(Source {
                                ino,
                                sparse: md.blocks() * 512 < md.size(),
                                size: md.size(),
                                path: child,
                            });
                        }
                    }
                    ino
                }
            };
            entries.push((e.file_name().into_encoded_bytes(), ino));
        }
        let mut subdirs = 0;
        for (_, ino) in &entries {
            let n = &mut nodes[(*ino - 1) as usize];
            if n.kind == FileKind::Directory {
                subdirs += 1;
            } else {
                n.nlink += 1;
            }
        }
        let p = &mut nodes[(parent - 1) as usize];
        p.nlink = 2 + subdirs;
        p.entries = entries;
    }
    Ok((nodes, files))
}

/// The data extents of `file` (holes left out when it is sparse).
fn extents(file: &File, src: &Source) -> io::Result<Vec<(u64, u64)>> {
    if !src.sparse {
        return Ok(vec![(0, src.size)]);
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    let seek = |off: u64, whence| {
        // SAFETY: lseek on our own open descriptor.
        let r = unsafe { libc::lseek(fd, off as libc::off_t, whence) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as u64)
        }
    };
    let mut out = Vec::new();
    let mut off = 0;
    while off < src.size {
        let data = match seek(off, libc::SEEK_DATA) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            Err(e) => return Err(e),
        };
        let hole = seek(data, libc::SEEK_HOLE)?.min(src.size);
        if hole > data {
            out.push((data, hole - data));
        }
        off = hole;
    }
    Ok(out)
}

/// Opens a source file for reading without moving its atime (O_NOATIME,
/// allowed to its owner and root; others open it plainly).
fn open_noatime(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match File::options()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        other => other,
    }
}

/// Reads every file's data into the store, `DEPTH` reads in flight.
fn read_data(store: &Store, files: &[Source]) -> Result<(), ImageError> {
    let mut ring: Ring<(usize, Rc<File>)> = Ring::new(DEPTH)?;
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let finish = |done: Done<(usize, Rc<File>)>, spare: &mut Vec<Vec<u8>>| {
        let src = &files[done.tag.0];
        store.load_data(src.ino, done.offset, &done.buf)?;
        // The last read of a file closes it (its Rc goes).
        if Rc::strong_count(&done.tag.1) == 1 {
            PROGRESS.add(0, 1);
        }
        PROGRESS.add(done.buf.len() as u64, 0);
        spare.push(done.buf);
        Ok::<(), ImageError>(())
    };
    for (i, src) in files.iter().enumerate() {
        let file = open_noatime(&src.path).map_err(src_err(&src.path))?;
        if src.size <= INLINE_READ && !src.sparse {
            let mut buf = spare.pop().unwrap_or_default();
            buf.resize(src.size as usize, 0);
            let n = read_full(&file, &mut buf).map_err(src_err(&src.path))?;
            store.load_data(src.ino, 0, &buf[..n])?;
            PROGRESS.add(n as u64, 1);
            spare.push(buf);
            continue;
        }
        let file = Rc::new(file);
        for (mut off, len) in extents(&file, src).map_err(src_err(&src.path))? {
            let end = off + len;
            while off < end {
                if !ring.has_room() {
                    finish(ring.wait()?, &mut spare)?;
                }
                let n = (end - off).min(BUF_BYTES as u64) as usize;
                let buf = spare.pop().unwrap_or_default();
                ring.start(false, &*file, off, buf, n, (i, file.clone()))?;
                // At once: the kernel reads while this thread loads.
                ring.submit()?;
                off += n as u64;
            }
        }
    }
    while ring.in_flight() > 0 {
        finish(ring.wait()?, &mut spare)?;
    }
    Ok(())
}

/// Reads `buf.len()` bytes from the start of `file` (fewer only if it
/// shrank meanwhile); the count read.
fn read_full(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}
