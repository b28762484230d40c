//! The page through which clients learn, without a round trip, whether
//! what the daemon told them is still true: the store's change
//! generations (`inode_store::Generations`), followed by the public table
//! (`proto::public`), in a file of the run directory the daemon maps
//! writable and every client maps read-only.
//!
//! The file is `run_dir/dev-MAJOR-MINOR.page` (beside the socket, made
//! while the socket's lock is held), mode 0444 and owned by the daemon's
//! user: only that user and root may write it, who may change the daemon
//! itself anyway; everyone else trusts it as they trust the socket beside
//! it. A process that has not connected opens it by that name and maps it
//! (the public table's answers need no connection); a connected one gets
//! a read-only descriptor of it with every accepted hello
//! ([`proto::HelloReply`], `SCM_RIGHTS`). The file goes when the daemon
//! stops; one left by a daemon that died says so in its liveness word.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;

use inode_store::Generations;

use proto::changes::ChangeLog;

use super::FileId;
use proto::public::{Table, FILE_LEN, OFFSET};
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

/// The shared file of one daemon.
pub(super) struct GenPage {
    /// Read-only: sent to clients.
    fd: OwnedFd,
    /// Read-write, never sent: the daemon's own open of the file, on which
    /// it takes the public table's lock (see `public`).
    own: OwnedFd,
    path: PathBuf,
    /// The file made, to remove only that one.
    id: FileId,
    counters: &'static Generations,
    log: &'static ChangeLog,
    /// The table, if its part of the file is allocated.
    table: Option<&'static Table>,
}

impl GenPage {
    /// Makes the file `name` in `run_dir` (replacing one a former daemon
    /// of the same device left), readable by all if `public` (else by the
    /// daemon's user only: the counters say when which inodes change, and
    /// the table what the mount holds),
    /// maps it and takes its liveness lock. The whole file is allocated
    /// first, so that no write to its mapping can fail (`SIGBUS`); if the
    /// table's part cannot be, [`GenPage::table`] says so.
    pub(super) fn new(run_dir: &Path, name: &[u8], public: bool) -> io::Result<GenPage> {
        let path = run_dir.join(OsStr::from_bytes(name));
        let _ = std::fs::remove_file(&path);
        let own: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o444)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)?
            .into();
        let file = std::fs::File::from(own.try_clone()?);
        // Whatever the umask says.
        file.set_permissions(std::fs::Permissions::from_mode(if public {
            0o444
        } else {
            0o400
        }))?;
        let id = FileId::of(&file.metadata()?);
        let fd = reopen_read_only(&own)?;
        // SAFETY: plain calls on our own descriptor.
        if unsafe { libc::ftruncate(own.as_raw_fd(), FILE_LEN as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let allocate = |len: usize| {
            // SAFETY: a plain call on our own descriptor.
            unsafe { libc::posix_fallocate(own.as_raw_fd(), 0, len as libc::off_t) == 0 }
        };
        let table_backed = allocate(FILE_LEN);
        if !table_backed && !allocate(GEN_PAGE_LEN) {
            return Err(io::Error::other(format!(
                "no room for {} in {}",
                path.display(),
                run_dir.display()
            )));
        }
        // SAFETY: a new shared mapping of the whole file; never unmapped
        // (the counters live as long as the process: the store keeps a
        // `&'static` to them).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                own.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: page-aligned, zero-filled, FILE_LEN bytes: room and
        // alignment for the #[repr(C)] layouts (all-zero atomics are
        // valid) of the page at 0 and the table at OFFSET; mapped for the
        // rest of the process's life.
        let (counters, layout, table) = unsafe {
            (
                &*p.cast::<Generations>(),
                &*p.cast::<Layout>(),
                &*p.cast::<u8>().add(OFFSET).cast::<Table>(),
            )
        };
        hold_liveness_lock(&layout.alive)?;
        if table_backed {
            layout
                .layout
                .store(proto::public::LAYOUT, std::sync::atomic::Ordering::Release);
        }
        Ok(GenPage {
            fd,
            own,
            path,
            id,
            counters,
            log: &layout.log,
            table: table_backed.then_some(table),
        })
    }

    /// The public table in the file (if its part of the file could be
    /// allocated), and the daemon's own descriptor of the file.
    pub(super) fn table(&self) -> (Option<&'static Table>, &OwnedFd) {
        (self.table, &self.own)
    }

    /// A new open of the file (a lock of its own: `flock` locks an open
    /// file description).
    pub(super) fn reopen(&self) -> io::Result<OwnedFd> {
        reopen_read_only(&self.own)
    }

    /// The counters and the change log, for
    /// [`inode_store::Store::share_generations`].
    pub(super) fn shared(&self) -> (&'static Generations, &'static ChangeLog) {
        (self.counters, self.log)
    }

    /// A read-only descriptor of the file, sent to each accepted client.
    pub(super) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

impl Drop for GenPage {
    fn drop(&mut self) {
        // A new daemon of the same device may have made its own already.
        self.id.remove_if_at(&self.path);
    }
}

/// A new read-only open of the file `fd` is open on, through
/// `/proc/self/fd` (never by its path, which a new daemon of the same
/// device may have taken over).
fn reopen_read_only(fd: &OwnedFd) -> io::Result<OwnedFd> {
    Ok(std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?.into())
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
