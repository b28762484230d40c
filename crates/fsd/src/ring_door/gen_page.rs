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
use std::sync::atomic::AtomicU32;

use inode_store::Generations;

use proto::changes::ChangeLog;
use proto::{GenPage as Layout, GEN_PAGE_LEN};

// The store's counters are the page's first fields (`proto::GenPage`).
const _: () = assert!(size_of::<Generations>() <= std::mem::offset_of!(Layout, alive));
const _: () = assert!(
    std::mem::offset_of!(Layout, alive) + size_of::<libc::pthread_mutex_t>()
        <= std::mem::offset_of!(Layout, log)
);
const _: () = assert!(size_of::<Layout>() <= GEN_PAGE_LEN);
const _: () =
    assert!(std::mem::offset_of!(Generations, begun) == std::mem::offset_of!(Layout, begun));
const _: () =
    assert!(std::mem::offset_of!(Generations, ended) == std::mem::offset_of!(Layout, ended));

/// The shared page of one daemon.
pub(super) struct GenPage {
    fd: OwnedFd,
    counters: &'static Generations,
    log: &'static ChangeLog,
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
        // SAFETY: page-aligned, zero-filled, GEN_PAGE_LEN bytes: room and
        // alignment for the #[repr(C)] layout (all-zero atomics are valid);
        // mapped for the rest of the process's life.
        let counters = unsafe { &*p.cast::<Generations>() };
        // SAFETY: the page is mapped for the rest of the process's life;
        // `alive` lies within it (asserted above) and is only written by
        // the lock below and by the kernel.
        let layout = unsafe { &*p.cast::<Layout>() };
        hold_liveness_lock(&layout.alive)?;
        Ok(GenPage {
            fd,
            counters,
            log: &layout.log,
        })
    }

    /// The counters and the change log, for
    /// [`inode_store::Store::share_generations`].
    pub(super) fn shared(&self) -> (&'static Generations, &'static ChangeLog) {
        (self.counters, self.log)
    }

    /// The memfd, sent to each accepted client.
    pub(super) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// Starts the thread that holds the page's liveness lock (a robust,
/// process-shared `pthread_mutex_t` whose futex word is `alive`) for the
/// rest of the daemon's life, and returns once it holds it. glibc puts the
/// lock on that thread's robust list, so when the thread ends, however the
/// daemon ends, the kernel marks the word `OWNER_DIED` and clients stop
/// answering from their caches (`proto::GenPage::daemon_alive`).
fn hold_liveness_lock(alive: &'static AtomicU32) -> io::Result<()> {
    // The mutex's first field is its futex word (glibc's `__lock`), so the
    // mutex starts at `alive`; the page has room after it (asserted above).
    let mutex = std::ptr::from_ref(alive) as usize;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("btfuse-alive".into())
        .spawn(move || {
            let m = mutex as *mut libc::pthread_mutex_t;
            // SAFETY: `m` points at zeroed, never-unmapped, suitably
            // aligned memory of the page with room for a mutex; it is
            // initialised once, here, before any client maps the page.
            let rc = unsafe {
                let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
                libc::pthread_mutexattr_init(&mut attr);
                libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
                libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
                let rc = libc::pthread_mutex_init(m, &attr);
                libc::pthread_mutexattr_destroy(&mut attr);
                if rc == 0 {
                    libc::pthread_mutex_lock(m)
                } else {
                    rc
                }
            };
            let _ = tx.send(rc);
            // Held until the process ends: this thread only waits.
            loop {
                std::thread::park();
            }
        })?;
    match rx.recv() {
        Ok(0) => Ok(()),
        Ok(rc) => Err(io::Error::from_raw_os_error(rc)),
        Err(_) => Err(io::Error::other("liveness lock thread ended")),
    }
}
