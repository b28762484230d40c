//! The fast-path front door: serves `libbtfuse.so` clients over shm-ring
//! channels, on the same store as the FUSE adapter.
//!
//! A client makes its own channel (a sealed memfd of the shape
//! [`proto::channel_config`]), connects to this mount's Unix socket (see
//! `proto::socket_name`) and sends [`proto::Hello`] with the memfd, then at
//! once puts its first request into the channel. The thread that accepts
//! the connection adopts the channel (only a memfd of exactly that shape,
//! sealed, is taken), answers [`proto::HelloReply`] and serves the channel
//! from then on, first request included: connecting costs a new process
//! one daemon wake-up, not a handshake round trip and then a wake-up.
//! Credentials come from the kernel (`SO_PEERCRED`, `SO_PEERGROUPS`, and
//! the effective capabilities read beside a `SO_PEERPIDFD` pidfd),
//! never from the client. The serving thread spins briefly after every
//! request (the client usually sends the next one within microseconds) and
//! then sleeps on the channel's futex doorbell. The socket stays open for
//! the channel's lifetime: its hang-up is how each side learns that the
//! other died.
//!
//! A channel is closed on the first malformed request; its client's handles
//! are released when the last channel of that process closes.

mod channel;
mod control;
mod gen_page;
mod reaper;

pub use control::{query_stats, request_save, StatsFormat};

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inode_store::Store;

use crate::fs_core::clients::Clients;
use crate::fs_core::KernelCache;
use crate::metrics::Metrics;
use crate::sock::{self, Listener};
use crate::stats;

use crate::access::Access;
use crate::fs_core::public::Public;
use channel::{serve_connection, ChannelError, Identity};
use gen_page::GenPage;
use reaper::Reaper;

/// How long a new connection may take to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// A real client sends its hello right after connecting: a connection
/// silent for longer gets no priority over the next ones.
const HELLO_PROMPT: Duration = Duration::from_millis(2);

/// Counters for `btfuse stats` and tests.
#[derive(Default)]
pub struct Counters {
    /// Channels currently open.
    pub channels: AtomicU64,
    /// Requests served since start.
    pub requests: AtomicU64,
    /// Channels closed because of a malformed request or corrupt ring.
    pub rejected: AtomicU64,
    /// Channels refused by the limits (their clients use the kernel).
    pub refused: AtomicU64,
}

struct Shared {
    store: Arc<Store>,
    clients: Arc<Clients>,
    /// Told what the kernel may hold stale (the FUSE door's notifier).
    kernel: Box<dyn KernelCache + Send + Sync>,
    /// The mountpoint as the mount table writes it (no trailing slash), so
    /// that it compares with the mountpoints clients read in the registry.
    mount_path: Vec<u8>,
    counters: Counters,
    /// Per-door request metrics (shared with the FUSE adapter).
    metrics: Arc<Metrics>,
    /// When the daemon started serving.
    started: Instant,
    /// Workers waiting in `accept`.
    idle_workers: AtomicUsize,
    /// Closes descriptors clients passed (see [`Reaper`]).
    reaper: Reaper,
    /// The store's change generations, shared read-only with clients.
    gen_page: GenPage,
    /// The answers every process may read from the page's file (none on a
    /// mount not every user may use and reach).
    public: Option<Arc<Public>>,
}

/// A running ring server; dropping it stops accepting and removes the socket.
pub struct RingServer {
    listener: Arc<Listener>,
    socket_path: PathBuf,
    /// The socket file we bound.
    socket_id: FileId,
    shared: Arc<Shared>,
    /// Held from before the bind until after the socket is removed (the
    /// lock is released when this closes, after `drop` ran).
    _socket_lock: std::fs::File,
}

impl RingServer {
    /// Listens on `run_dir/dev-MAJOR-MINOR.sock` and serves clients of the
    /// mount at `mount_path` from `store`, recording requests in `metrics`
    /// and clients in `clients` (the core's table, shared with the FUSE
    /// door), telling `kernel` what the kernel may hold stale.
    pub fn start(
        store: Arc<Store>,
        mount_path: &Path,
        (major, minor): (u32, u32),
        run_dir: &Path,
        kernel: Box<dyn KernelCache + Send + Sync>,
        metrics: Arc<Metrics>,
        clients: Arc<Clients>,
    ) -> io::Result<RingServer> {
        create_run_dir(run_dir)?;
        let socket_path = socket_path(run_dir, (major, minor));
        let socket_lock = lock_socket_path(&socket_path)?;
        let listener = Arc::new(Listener::bind(&socket_path)?);
        let meta = std::fs::symlink_metadata(&socket_path)?;
        let socket_id = FileId::of(&meta);
        // The table is for every process that may use the mount and reach
        // it: every user (the file readable by all) on a mount every user
        // may use and reach, else the daemon's user only (see
        // `fs_core::public`); none on a read-only mount (no fast path).
        let access = clients.access();
        let everyone = access == Access::Everyone && reachable_by_all(mount_path);
        let mut page = [0u8; 32];
        let n = proto::page_name(major, minor, &mut page);
        let gen_page = GenPage::new(run_dir, &page[..n], everyone)?;
        let (counters, log) = gen_page.shared();
        store.share_generations(counters, log);
        let public = match gen_page.table() {
            (Some(table), own) if access != Access::Nobody => {
                Some(Arc::new(Public::new(table, own.try_clone()?)))
            }
            _ => None,
        };
        if let Some(public) = &public {
            let scrub = public.clone();
            store.watch_changes(Box::new(move |g, touched| scrub.scrub(g, touched)));
            let keeper = public.clone();
            store.keep_unlinked(Box::new(move |ino| keeper.keeps(ino)));
            public.start_settler(store.clone(), gen_page.reopen()?)?;
            public.start_refresher(store.clone())?;
        }
        let shared = Arc::new(Shared {
            gen_page,
            public,
            kernel,
            mount_path: trim_slashes(mount_path.as_os_str().as_bytes()).to_vec(),
            store,
            clients,
            counters: Counters::default(),
            metrics,
            started: Instant::now(),
            idle_workers: AtomicUsize::new(0),
            reaper: Reaper::start()?,
        });
        start_worker(&listener, &shared);
        Ok(RingServer {
            listener,
            socket_path,
            socket_id,
            shared,
            _socket_lock: socket_lock,
        })
    }

    /// Serves the statistics in the Prometheus text format over HTTP on
    /// `listener` (`btfuse mount --metrics`, bound before mounting so that
    /// a taken port fails the mount), from a thread of its own. Every
    /// request, whatever its path, gets the current figures.
    pub fn serve_metrics(&self, listener: std::net::TcpListener) -> io::Result<()> {
        let shared = self.shared.clone();
        crate::metrics_http::serve(listener, move || stats::prometheus(&shared.stats()))
    }
}

impl Shared {
    /// The parts the statistics reports are made of.
    fn stats(&self) -> stats::Sources<'_> {
        stats::Sources {
            store: &self.store,
            clients: &self.clients,
            channels: &self.counters,
            metrics: &self.metrics,
            started: self.started,
        }
    }
}

impl Drop for RingServer {
    fn drop(&mut self) {
        self.listener.shutdown();
        // Clients stop answering from their caches: nobody serves the
        // store any more.
        self.shared.store.void_stamps();
        // A new daemon may already have bound the same path (a device
        // number is reused once its mount is gone): remove only our socket.
        self.socket_id.remove_if_at(&self.socket_path);
    }
}

/// Whether every user may search every directory above `mountpoint`
/// (the mount's own root is the store's: `Store::is_public_dir`). Checked
/// once, at start; an ACL of one of them is not seen.
fn reachable_by_all(mountpoint: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    mountpoint
        .ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o111 == 0o111))
}

/// `path` without trailing slashes.
fn trim_slashes(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &path[..end]
}

/// The run directory: root-owned, not writable by others, so nobody else can
/// plant a socket where clients look for the daemon.
fn create_run_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Most worker threads kept waiting for clients; more are let go.
const MAX_IDLE_WORKERS: usize = 4;

/// Serves connections with a pool of worker threads waiting in `accept`;
/// the one that accepts a connection serves that client until it leaves,
/// then waits again. When the last idle worker accepts, it starts a
/// successor once it has served its client's first request (or waited a
/// moment for it): the next client never waits for a thread start, and the
/// start does not delay that first reply.
fn start_worker(listener: &Arc<Listener>, shared: &Arc<Shared>) {
    let (listener, shared) = (listener.clone(), shared.clone());
    let spawned = std::thread::Builder::new()
        .name("btfuse-channel".into())
        .spawn(move || while serve_one(&listener, &shared) {});
    // Out of threads: new clients wait in the backlog until a worker is
    // free (their first call waits, bounded by their liveness checks).
    drop(spawned);
}

/// Waits for one client and serves it; `false` when this worker should
/// end (listener shut down, or enough idle workers already).
fn serve_one(listener: &Arc<Listener>, shared: &Arc<Shared>) -> bool {
    if shared.idle_workers.fetch_add(1, Ordering::AcqRel) >= MAX_IDLE_WORKERS {
        shared.idle_workers.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    let conn = listener.accept();
    let idle_left = shared.idle_workers.fetch_sub(1, Ordering::AcqRel) - 1;
    let Ok(conn) = conn else { return false };
    let identity = Identity::of(&conn);
    let mut successor = (idle_left == 0).then_some(|| start_worker(listener, shared));
    // A connection that does not say hello at once must not hold up the
    // next clients: then the successor starts right away.
    if successor.is_some() && !sock::readable_within(&conn, HELLO_PROMPT) {
        if let Some(start) = successor.take() {
            start();
        }
    }
    let result = serve_connection(shared, conn, identity, &mut successor);
    if let Some(start) = successor.take() {
        start();
    }
    match &result {
        Err(e @ (ChannelError::Malformed | ChannelError::Corrupt)) => {
            shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
            log::warn!("fast-path channel closed: {e}");
        }
        Err(ChannelError::Gone) | Ok(()) => {}
        Err(e) => log::debug!("fast-path connection failed: {e}"),
    }
    true
}

/// Where the daemon of the mount with device `major:minor` listens.
pub fn socket_path(run_dir: &Path, (major, minor): (u32, u32)) -> PathBuf {
    let mut name = [0u8; 32];
    let n = proto::socket_name(major, minor, &mut name);
    run_dir.join(OsStr::from_bytes(&name[..n]))
}

/// How long a new daemon waits for the one that had its device number to
/// finish removing its socket (a daemon stopped meanwhile is not waited
/// for longer: the new one then takes the path over anyway).
const SOCKET_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Which file a run-directory path names: device, inode and change time.
/// A file's inode number is given again as soon as it is freed (ext4 does,
/// at once), so a daemon that checked only the number before removing "its"
/// file removed the one a new daemon of the same device had just made in
/// its place (seen with many mounts coming and going: the new daemon then
/// ran without its fast path); the change time, to the nanosecond, tells
/// the two apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64, i64, i64);

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId(meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
    }

    /// Removes `path` if it still names this file (what may stand there
    /// else: a new daemon's file).
    fn remove_if_at(self, path: &Path) {
        if std::fs::symlink_metadata(path).is_ok_and(|m| FileId::of(&m) == self) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Locks `SOCKET.lock` beside the socket path. A device number is reused
/// as soon as its mount is gone, while the daemon that served it may
/// still be removing its socket: without the lock, that daemon can check
/// the socket is its own, the new daemon replace it, and the old one then
/// remove the new socket (seen with many mounts coming and going).
fn lock_socket_path(socket_path: &Path) -> io::Result<std::fs::File> {
    let mut lock_path = socket_path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    let deadline = Instant::now() + SOCKET_LOCK_WAIT;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(file);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(e);
        }
        if Instant::now() >= deadline {
            log::warn!(
                "{} still locked after {SOCKET_LOCK_WAIT:?}: taking the socket path over",
                lock_path.to_string_lossy()
            );
            return Ok(file);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::FileId;
    use std::os::unix::fs::MetadataExt;

    /// A file made again at the same path, as a new daemon of the same
    /// device makes its socket and page, is not the old one's to remove,
    /// even when the filesystem gives it the freed inode number again.
    #[test]
    fn a_file_made_again_in_its_place_is_not_removed() {
        let dir = std::env::temp_dir().join(format!("btfuse-fileid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dev-0-1.page");
        let mut reused = 0;
        for _ in 0..20 {
            std::fs::write(&path, b"old").unwrap();
            let old = FileId::of(&std::fs::metadata(&path).unwrap());
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, b"new").unwrap();
            let new = std::fs::metadata(&path).unwrap();
            reused += usize::from(new.ino() == old.1);
            old.remove_if_at(&path);
            assert!(path.exists(), "the new file was removed");
            FileId::of(&new).remove_if_at(&path);
            assert!(!path.exists(), "its own file is removed");
        }
        eprintln!("inode numbers given again: {reused} of 20");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
