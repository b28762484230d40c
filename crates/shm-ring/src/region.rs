//! The shared region: creation by the daemon (memfd, size, seals, header),
//! attachment by the client (map, validate), and the split into halves.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::ptr;

use crate::layout::{Config, Header, LayoutError, RegionLayout};
use crate::ring::{Consumer, Producer, RawRing};
use crate::sys::{self, Errno};

/// A `MAP_SHARED` read/write mapping of a file descriptor, unmapped on
/// drop. Uses only libc (`mmap`/`munmap`), so it works without `std`.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a Mapping is just an owned address range; the memory it names is
// only accessed through the ring halves and Bulk, which are themselves Send.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd` shared and read/write.
    pub fn map_shared(fd: i32, len: usize) -> Result<Mapping, Errno> {
        if len == 0 {
            return Err(Errno(libc::EINVAL));
        }
        let ptr = sys::mmap_shared(fd, len)?;
        Ok(Mapping { ptr, len })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (a mapping is never empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own the mapping; everything borrowing it (halves, Bulk)
        // carries a lifetime tied to the Region that owns this Mapping.
        unsafe { sys::munmap(self.ptr, self.len) };
    }
}

/// Errors of [`Region::create`] and the attach functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The configuration or the shared header is invalid.
    Layout(LayoutError),
    /// A system call failed.
    Sys(Errno),
    /// The fd is not sealed against shrinking and growing, so its size
    /// could change under the mapping.
    NotSealed,
}

impl From<LayoutError> for RegionError {
    fn from(e: LayoutError) -> Self {
        RegionError::Layout(e)
    }
}

impl From<Errno> for RegionError {
    fn from(e: Errno) -> Self {
        RegionError::Sys(e)
    }
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::Layout(e) => write!(f, "bad region layout: {e}"),
            RegionError::Sys(e) => write!(f, "system call failed: {e}"),
            RegionError::NotSealed => f.write_str("region fd is not sealed against resizing"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RegionError {}

/// One channel's shared memory: header, request ring, response ring, bulk.
///
/// One side [`create`](Region::create)s it and sends [`fd`](Region::fd) to
/// the other, which attaches: [`attach_fd`](Region::attach_fd) when it
/// trusts the creator's header (a client of the daemon that made it), or
/// [`attach_fd_expecting`](Region::attach_fd_expecting) when it does not
/// (a daemon adopting a channel its client made). Each side then
/// splits its region once ([`Region::daemon`] / [`Region::client`]) into
/// halves that borrow it.
#[derive(Debug)]
pub struct Region {
    base: *mut u8,
    len: usize,
    /// `None` for a borrowed mapping ([`Region::attach`]).
    map: Option<Mapping>,
    /// The memfd, for regions made by [`Region::create`].
    fd: Option<i32>,
    layout: RegionLayout,
    creator_pid: i32,
    peer_pid: i32,
    /// Set once the halves were handed out (`Cell`: Region is `!Sync`).
    split: Cell<bool>,
}

// SAFETY: see Mapping; the raw base pointer is only dereferenced through
// the halves, which are created at most once.
unsafe impl Send for Region {}

/// The daemon's end of a channel: it receives requests, sends responses.
#[derive(Debug)]
pub struct DaemonEnd<'a> {
    /// Requests from the client. Treats the shared memory as hostile.
    pub requests: Consumer<'a>,
    /// Responses to the client.
    pub responses: Producer<'a>,
    /// The bulk data area.
    pub bulk: Bulk<'a>,
}

/// The client's end of a channel: it sends requests, receives responses.
#[derive(Debug)]
pub struct ClientEnd<'a> {
    /// Requests to the daemon.
    pub requests: Producer<'a>,
    /// Responses from the daemon.
    pub responses: Consumer<'a>,
    /// The bulk data area.
    pub bulk: Bulk<'a>,
}

impl Region {
    /// Creates a sealed memfd sized for `cfg`, maps it and writes the
    /// header, recording the caller's pid and `peer_pid` (0 if not known
    /// yet). The memfd is sealed with `F_SEAL_SHRINK | F_SEAL_GROW |
    /// F_SEAL_SEAL`, so no process holding it can resize it under the other
    /// side's mapping (which would turn its accesses into `SIGBUS`).
    pub fn create(cfg: &Config, peer_pid: i32) -> Result<Region, RegionError> {
        let layout = RegionLayout::new(cfg)?;
        let len = layout.region_len as usize;
        let fd = sys::sealed_memfd(len)?;
        let map = match Mapping::map_shared(fd, len) {
            Ok(m) => m,
            Err(e) => {
                sys::close(fd);
                return Err(e.into());
            }
        };
        let creator_pid = sys::getpid();
        // A fresh memfd is zero-filled: indices 0, doorbells AWAKE, closed 0.
        // SAFETY: the mapping is at least one page, page-aligned, private to
        // us until the fd is handed out; Header is repr(C) plain data.
        unsafe {
            ptr::write(
                map.as_ptr().cast::<Header>(),
                layout.header(creator_pid, peer_pid),
            )
        };
        Ok(Region {
            base: map.as_ptr(),
            len,
            map: Some(map),
            fd: Some(fd),
            layout,
            creator_pid,
            peer_pid,
            split: Cell::new(false),
        })
    }

    /// Maps `fd` (received from a trusted creator) and validates its
    /// header. The fd must carry `F_SEAL_SHRINK | F_SEAL_GROW` (as made by
    /// [`Region::create`]), so its size cannot change under the mapping.
    /// The fd is not consumed: the caller may close it afterwards.
    pub fn attach_fd(fd: i32) -> Result<Region, RegionError> {
        let want = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
        if sys::fd_seals(fd)? & want != want {
            return Err(RegionError::NotSealed);
        }
        let size = sys::fd_size(fd)?;
        if size < core::mem::size_of::<Header>() as u64 || size > isize::MAX as u64 {
            return Err(LayoutError::BadHeader.into());
        }
        let map = Mapping::map_shared(fd, size as usize)?;
        // SAFETY: the mapping is `size` bytes long and owned by `map`,
        // which the Region keeps alive.
        let mut r = unsafe { Region::attach(map.as_ptr(), map.len()) }?;
        r.map = Some(map);
        Ok(r)
    }

    /// Maps a channel made by an untrusted peer, which must have exactly
    /// the shape `cfg` describes: the fd must be a memfd sealed
    /// `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL` (so neither its size nor
    /// its seals can change under the mapping), exactly as long as the
    /// canonical layout, with a header that matches that layout. The
    /// layout used afterwards is the one computed here from `cfg`, never
    /// re-read from shared memory. The fd is not consumed.
    pub fn attach_fd_expecting(fd: i32, cfg: &Config) -> Result<Region, RegionError> {
        let layout = RegionLayout::new(cfg)?;
        let want = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        if sys::fd_seals(fd)? & want != want {
            return Err(RegionError::NotSealed);
        }
        if sys::fd_size(fd)? != layout.region_len {
            return Err(LayoutError::BadHeader.into());
        }
        let map = Mapping::map_shared(fd, layout.region_len as usize)?;
        // SAFETY: the mapping is `region_len` bytes long and owned by `map`,
        // which the Region keeps alive.
        let mut r = unsafe { Region::attach(map.as_ptr(), map.len()) }?;
        if r.layout != layout {
            return Err(LayoutError::BadHeader.into());
        }
        r.map = Some(map);
        Ok(r)
    }

    /// Validates the header of an existing mapping.
    ///
    /// # Safety
    /// `ptr` must be page-aligned and point to `len` readable and writable
    /// bytes of a shared mapping that stays mapped (and is not shrunk) for
    /// the life of the returned Region and everything split from it.
    pub unsafe fn attach(ptr: *mut u8, len: usize) -> Result<Region, RegionError> {
        if len < core::mem::size_of::<Header>() || (ptr as usize) & (crate::layout::PAGE - 1) != 0 {
            return Err(LayoutError::BadHeader.into());
        }
        // Copy the header out once (volatile: the daemon could still be
        // writing it if it misbehaves) and validate only the copy.
        // SAFETY: `len` covers the header (checked above) and the pointer
        // is page-aligned; Header is plain data valid for any bit pattern.
        let h = unsafe { ptr::read_volatile(ptr.cast::<Header>()) };
        let layout = RegionLayout::validate(&h, len as u64)?;
        Ok(Region {
            base: ptr,
            len,
            map: None,
            fd: None,
            layout,
            creator_pid: h.creator_pid,
            peer_pid: h.peer_pid,
            split: Cell::new(false),
        })
    }

    /// The memfd (for `SCM_RIGHTS`), if this region was created here. It
    /// is closed when the Region is dropped; the mapping does not need it.
    pub fn fd(&self) -> Option<i32> {
        self.fd
    }

    /// Closes the memfd now (once it has been passed on); the mapping stays.
    pub fn close_fd(&mut self) {
        if let Some(fd) = self.fd.take() {
            sys::close(fd);
        }
    }

    /// The layout (for the daemon: computed at creation, never re-read).
    pub fn layout(&self) -> &RegionLayout {
        &self.layout
    }

    /// Start of the mapped region.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base
    }

    /// Mapped length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The creator's pid as recorded in the header (trust it only as much as
    /// the creator).
    pub fn creator_pid(&self) -> i32 {
        self.creator_pid
    }

    /// The peer's pid as recorded in the header at creation (0 if unknown).
    pub fn peer_pid(&self) -> i32 {
        self.peer_pid
    }

    fn rings(&self) -> Option<(RawRing, RawRing, Bulk<'_>)> {
        if self.split.replace(true) {
            return None;
        }
        // SAFETY: the layout was computed (daemon) or validated against
        // the mapping length (client), so both rings lie inside the mapping,
        // which lives as long as `self`.
        let (req, resp) = unsafe {
            (
                RawRing::new(self.base, &self.layout.request),
                RawRing::new(self.base, &self.layout.response),
            )
        };
        let bulk = Bulk {
            // SAFETY: bulk_off + bulk_len <= region_len <= len.
            ptr: unsafe { self.base.add(self.layout.bulk_off as usize) },
            len: self.layout.bulk_len as usize,
            _region: PhantomData,
        };
        Some((req, resp, bulk))
    }

    /// Splits the region into the daemon's halves. Only once per Region:
    /// later calls return `None`.
    pub fn daemon(&self) -> Option<DaemonEnd<'_>> {
        let (req, resp, bulk) = self.rings()?;
        // SAFETY: `rings` hands out each ring once; the halves borrow self.
        unsafe {
            Some(DaemonEnd {
                requests: Consumer::new(req),
                responses: Producer::new(resp),
                bulk,
            })
        }
    }

    /// Splits the region into the client's halves. Only once per Region:
    /// later calls return `None`.
    pub fn client(&self) -> Option<ClientEnd<'_>> {
        let (req, resp, bulk) = self.rings()?;
        // SAFETY: `rings` hands out each ring once; the halves borrow self.
        unsafe {
            Some(ClientEnd {
                requests: Producer::new(req),
                responses: Consumer::new(resp),
                bulk,
            })
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(fd) = self.fd {
            sys::close(fd);
        }
        // `map` unmaps itself.
    }
}

/// Error of the [`Bulk`] copy helpers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// Requested offset.
    pub offset: usize,
    /// Requested length.
    pub len: usize,
    /// Size of the bulk area.
    pub bulk_len: usize,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bulk range {}+{} outside a bulk area of {} bytes",
            self.offset, self.len, self.bulk_len
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OutOfBounds {}

/// The bulk data area of a channel, for payloads too large for a ring
/// message (reads and writes of MiBs).
///
/// The client is synchronous (one request in flight per channel), so the
/// protocol above this crate owns the area by turns: the client fills it and
/// sends "payload is in bulk[0..n]"; the daemon copies it out, or fills it
/// and replies "n bytes in bulk". Both sides can write it at any time, so the
/// daemon must copy data *out* with [`Bulk::read`] before validating it,
/// never parse it in place.
pub struct Bulk<'a> {
    ptr: *mut u8,
    len: usize,
    _region: PhantomData<&'a mut [u8]>,
}

// SAFETY: an address range inside a mapping that outlives 'a; copies in and
// out are the only accesses.
unsafe impl Send for Bulk<'_> {}

impl fmt::Debug for Bulk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulk").field("len", &self.len).finish()
    }
}

impl Bulk<'_> {
    /// Size of the bulk area in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the bulk area has zero size.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw start of the area, for zero-copy producers (e.g. a `pread`
    /// straight into it). The memory is shared with the peer, which may
    /// write it at any time: never create a `&[u8]`/`&mut [u8]` over it
    /// that outlives one copy, and never validate data in place.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(OutOfBounds {
                offset,
                len,
                bulk_len: self.len,
            }),
        }
    }

    /// Copies `src` into the area at `offset` (bounds-checked).
    pub fn write(&mut self, offset: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        self.check(offset, src.len())?;
        // SAFETY: offset + len <= bulk len (checked); `src` is private
        // memory and cannot overlap the shared area.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(offset), src.len()) };
        Ok(())
    }

    /// Copies `dst.len()` bytes from the area at `offset` into `dst`
    /// (bounds-checked). The copy is the daemon's own, TOCTOU-free.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, dst.len())?;
        // SAFETY: in bounds (checked); the source may be concurrently
        // written by the peer, which only makes the copied bytes garbage
        // (u8 has no invalid values); it is never read again.
        unsafe { ptr::copy_nonoverlapping(self.ptr.add(offset), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }
}
