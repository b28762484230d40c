//! Memory the library sizes at run time, taken straight from the kernel
//! (private anonymous `mmap`), never from the program's heap: the mount
//! table and per-mount state, sized at discovery from the text they are
//! parsed from, each mount's channel slots on first use, and the buffer a
//! whole file is read into. So no number of mounts is too many.

use crate::sys;

/// A private anonymous mapping, zero-filled, unmapped on drop unless
/// [`Mapping::leak`]ed. Private: a forked child gets its own copy.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

/// Page size assumed for rounding (the kernel rounds up anyway).
const PAGE: usize = 4096;

impl Mapping {
    /// At least `len` bytes (whole pages), zero-filled; `None` when the
    /// kernel refuses.
    pub(crate) fn new(len: usize) -> Option<Mapping> {
        let len = len.max(1).checked_next_multiple_of(PAGE)?;
        let p = sys::sc!(
            libc::SYS_mmap,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0
        )
        .ok()?;
        Some(Mapping {
            ptr: p as *mut u8,
            len,
        })
    }

    /// Grows the mapping to at least `len` bytes, keeping its content (it
    /// may move); `false` when the kernel refuses (then it is unchanged).
    fn grow(&mut self, len: usize) -> bool {
        let Some(len) = len.checked_next_multiple_of(PAGE) else {
            return false;
        };
        match sys::sc!(
            libc::SYS_mremap,
            self.ptr,
            self.len,
            len,
            libc::MREMAP_MAYMOVE
        ) {
            Ok(p) => {
                self.ptr = p as *mut u8;
                self.len = len;
                true
            }
            Err(_) => false,
        }
    }

    /// Start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The mapping's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped readable and writable, ours alone
        // while `self` lives.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Keeps the mapping for the rest of the process; its start.
    pub(crate) fn leak(self) -> *mut u8 {
        let p = self.ptr;
        core::mem::forget(self);
        p
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping; whatever borrowed it (`bytes`) borrowed
        // `self`, so nothing references it any more.
        unsafe { sys::munmap(self.ptr, self.len) };
    }
}

/// The whole content of a file: in the caller's buffer when it fits
/// there, else in a mapping.
pub(crate) enum Text<'a> {
    /// Read into the caller's buffer.
    Small(&'a [u8]),
    /// Too large for it: read into a mapping (its first `.1` bytes).
    Mapped(Mapping, usize),
}

impl Text<'_> {
    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Text::Small(b) => b,
            Text::Mapped(m, n) => &m.bytes()[..*n],
        }
    }
}

/// The whole content of the file at `path` (NUL-terminated), however
/// large. A file that fits `small` costs no mapping (the common case: a
/// registry of a few mounts); a larger one is read again into a mapping.
pub(crate) fn read_file<'a>(path: &[u8], small: &'a mut [u8]) -> Option<Text<'a>> {
    let n = sys::read_file(path, small).ok()?;
    if n < small.len() {
        return Some(Text::Small(&small[..n]));
    }
    let (map, n) = read_all(path)?;
    Some(Text::Mapped(map, n))
}

/// The whole content of the file at `path` (NUL-terminated), however
/// large: a mapping and the number of bytes read into it.
fn read_all(path: &[u8]) -> Option<(Mapping, usize)> {
    let fd = sys::open(path, libc::O_RDONLY | libc::O_CLOEXEC).ok()?;
    let read = read_fd(fd);
    sys::close(fd);
    read
}

fn read_fd(fd: i32) -> Option<(Mapping, usize)> {
    let st = sys::fstat(fd).ok()?;
    // A regular file tells its size (one more byte shows the end in one
    // read); `/proc` files say 0 and are read in growing steps.
    let mut map = Mapping::new((st.st_size.max(0) as usize + 1).max(64 << 10))?;
    let mut n = 0;
    loop {
        if n == map.len && !map.grow(map.len * 2) {
            return None;
        }
        // SAFETY: `n < len`: the rest of our own mapping.
        let rest = unsafe { core::slice::from_raw_parts_mut(map.ptr.add(n), map.len - n) };
        match sys::read(fd, rest) {
            Ok(0) => return Some((map, n)),
            Ok(k) => n += k,
            Err(libc::EINTR) => {}
            Err(_) => return None,
        }
    }
}
