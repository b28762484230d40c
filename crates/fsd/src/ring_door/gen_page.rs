//! The page through which clients learn, without a round trip, whether
//! what the daemon told them is still true: the store's change
//! generations (`inode_store::Generations`) in a memfd the daemon maps
//! writable and every client maps read-only.
//!
//! The memfd is sealed with `F_SEAL_FUTURE_WRITE` once the daemon's own
//! writable mapping exists: no process (root included) can map it
//! writable or write it again, so a hostile client can never freeze the
//! counters that other clients rely on. It is sent with every accepted
//! hello ([`proto::HelloReply`], `SCM_RIGHTS`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use inode_store::Generations;

use proto::{GenPage as Layout, GEN_PAGE_LEN};

// The store's counters are the page's layout (`proto::GenPage`).
const _: () = assert!(size_of::<Generations>() == size_of::<Layout>());
const _: () =
    assert!(std::mem::offset_of!(Generations, begun) == std::mem::offset_of!(Layout, begun));
const _: () =
    assert!(std::mem::offset_of!(Generations, ended) == std::mem::offset_of!(Layout, ended));

/// The shared page of one daemon.
pub(super) struct GenPage {
    fd: OwnedFd,
    counters: &'static Generations,
}

impl GenPage {
    /// Makes, maps and seals the page.
    pub(super) fn new() -> io::Result<GenPage> {
        // SAFETY: a NUL-terminated name and valid flags.
        let raw = unsafe {
            libc::memfd_create(
                c"btfuse-generations".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain calls on our own descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), GEN_PAGE_LEN as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new shared mapping of the whole memfd; never unmapped
        // (the counters live as long as the process: the store keeps a
        // `&'static` to them).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                GEN_PAGE_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let seals =
            libc::F_SEAL_FUTURE_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: a plain fcntl on our memfd.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: the mapping made above, unused.
            unsafe { libc::munmap(p, GEN_PAGE_LEN) };
            return Err(e);
        }
        // SAFETY: page-aligned, zero-filled, 4096 bytes: room and alignment
        // for the #[repr(C)] pair of atomics (all-zero is valid); mapped
        // for the rest of the process's life.
        let counters = unsafe { &*p.cast::<Generations>() };
        Ok(GenPage { fd, counters })
    }

    /// The counters, for [`inode_store::Store::share_generations`].
    pub(super) fn counters(&self) -> &'static Generations {
        self.counters
    }

    /// The memfd, sent to each accepted client.
    pub(super) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}
