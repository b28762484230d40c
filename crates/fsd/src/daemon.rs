//! Mount lifecycle: checks, daemonizing, serving, clean shutdown on signals.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fuser::{Config, Session, SessionACL};
use inode_store::Store;

use crate::client::{ChannelLimits, Clients};
use crate::fuse_fs::FuseFs;
use crate::metrics::Metrics;
use crate::mountinfo;
use crate::registry;
use crate::ring_server::{RingServer, StatsFormat};

/// How long `--background` waits for the child to report a usable mount.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Filesystem type as the kernel lists it: `fuse.` + subtype.
pub const FSTYPE: &str = "fuse.btfuse";

/// Parsed `btfuse mount` arguments.
pub struct MountArgs {
    /// Directory to mount on.
    pub mountpoint: PathBuf,
    /// Capacity for file data and metadata in bytes.
    pub size: u64,
    /// Most inodes (`None`: [`Store::default_max_inodes`]; 0: no limit).
    pub nr_inodes: Option<u64>,
    /// Return once mounted, serve from a detached child.
    pub background: bool,
    /// FUSE worker threads.
    pub threads: usize,
    /// Loopback address for the Prometheus metrics endpoint.
    pub metrics: Option<std::net::SocketAddr>,
    /// Most fast-path channels served at once.
    pub channels: ChannelLimits,
}

/// Why a mount or unmount failed; printed as one line.
#[derive(Debug)]
pub enum DaemonError {
    /// The mountpoint cannot be used (missing, not a directory, ...).
    Mountpoint(PathBuf, io::Error),
    /// Something is already mounted there.
    AlreadyMounted(PathBuf),
    /// The path is not a btfuse mount.
    NotBtfuse(PathBuf),
    /// The kernel refused the mount.
    Mount(PathBuf, io::Error),
    /// The kernel refused the unmount.
    Umount(PathBuf, io::Error),
    /// The background daemon did not come up.
    Background(String),
    /// Serving ended with an error.
    Serve(io::Error),
    /// The daemon did not answer a statistics query.
    Stats(PathBuf, io::Error),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Mountpoint(p, e) => write!(f, "cannot mount on {}: {e}", p.display()),
            DaemonError::AlreadyMounted(p) => {
                write!(
                    f,
                    "cannot mount on {}: something is already mounted there",
                    p.display()
                )
            }
            DaemonError::NotBtfuse(p) => write!(f, "{} is not a btfuse mount", p.display()),
            DaemonError::Mount(p, e) => write!(f, "mounting {} failed: {e}", p.display()),
            DaemonError::Umount(p, e) if e.raw_os_error() == Some(libc::EBUSY) => {
                write!(
                    f,
                    "cannot unmount {}: target is busy (try --lazy)",
                    p.display()
                )
            }
            DaemonError::Umount(p, e) => write!(f, "cannot unmount {}: {e}", p.display()),
            DaemonError::Background(msg) => write!(f, "daemon failed to start: {msg}"),
            DaemonError::Serve(e) => write!(f, "serving failed: {e}"),
            DaemonError::Stats(p, e) => {
                write!(f, "no statistics from the daemon of {}: {e}", p.display())
            }
        }
    }
}

impl std::error::Error for DaemonError {}

/// Worker threads when `--threads` is not given.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

/// Canonical, existing directory that nothing is mounted on yet.
fn check_mountpoint(path: &Path) -> Result<PathBuf, DaemonError> {
    let bad = |e| DaemonError::Mountpoint(path.to_path_buf(), e);
    let canonical = path.canonicalize().map_err(bad)?;
    if !canonical.metadata().map_err(bad)?.is_dir() {
        return Err(bad(io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    if mountinfo::fstype_at(&canonical).is_some() {
        return Err(DaemonError::AlreadyMounted(canonical));
    }
    Ok(canonical)
}

/// `btfuse mount`: mounts and serves until unmounted or signalled.
pub fn mount(args: &MountArgs) -> Result<(), DaemonError> {
    let mountpoint = check_mountpoint(&args.mountpoint)?;
    if !args.background {
        return serve(args, &mountpoint, None);
    }
    let (read_end, write_end) = pipe()?;
    // SAFETY: no other thread exists yet (argument parsing is single-threaded),
    // so the child may run arbitrary code after fork.
    match unsafe { libc::fork() } {
        -1 => Err(DaemonError::Background(
            io::Error::last_os_error().to_string(),
        )),
        0 => {
            drop(read_end);
            // SAFETY: setsid has no memory-safety preconditions.
            unsafe { libc::setsid() };
            let result = serve(args, &mountpoint, Some(write_end));
            // Nobody reads our stderr any more; the exit code is all we can give.
            std::process::exit(i32::from(result.is_err()));
        }
        _child => {
            drop(write_end);
            wait_ready(read_end)
        }
    }
}

/// Mounts, reports readiness (to the `--background` parent), serves.
fn serve(args: &MountArgs, mountpoint: &Path, ready: Option<OwnedFd>) -> Result<(), DaemonError> {
    let mut ready = ready.map(File::from);
    raise_fd_limit();
    tune_malloc();
    let nr_inodes = args
        .nr_inodes
        .unwrap_or_else(|| Store::default_max_inodes(args.size));
    let store = Arc::new(Store::with_limits(args.size, nr_inodes));
    let metrics = Arc::new(Metrics::default());
    // Both doors know the fast path's clients: the FUSE door lets a client
    // reopen the files it holds (see `FuseFs::held_open`).
    let clients = Arc::new(Clients::new(args.channels));
    let result = mount_session(
        args,
        mountpoint,
        store.clone(),
        metrics.clone(),
        clients.clone(),
    );
    let session = match result {
        Ok(session) => session,
        Err(e) => {
            if let Some(pipe) = ready.as_mut() {
                let _ = pipe.write_all(e.to_string().as_bytes());
            }
            return Err(e);
        }
    };
    // After mounting: every thread must inherit the blocked shutdown signals.
    spawn_memory_trimmer(Arc::downgrade(&store));
    // The fast path is an optimisation: without it the mount still serves.
    let fast_path = match start_ring_server(&session, store, mountpoint, metrics, clients) {
        Ok(server) => Some(server),
        Err(e) => {
            log::warn!("fast path disabled: {e}");
            None
        }
    };
    if fast_path.is_some() {
        let published = registry::refresh(&run_dir()).and_then(|()| registry::watch(run_dir()));
        if let Err(e) = published {
            // Preloaded processes then find the mount through mountinfo.
            log::warn!("cannot keep the mount registry: {e}");
        }
    }
    if let (Some(addr), Some(server)) = (args.metrics, fast_path.as_ref()) {
        match server.serve_metrics(addr) {
            Ok(()) => log::info!("metrics on http://{addr}/metrics"),
            Err(e) => log::error!("cannot serve metrics on {addr}: {e}"),
        }
    }
    spawn_signal_thread(mountpoint.to_path_buf());
    log::info!(
        "serving {} ({} bytes, {} FUSE threads, fast path {})",
        mountpoint.display(),
        args.size,
        args.threads,
        if fast_path.is_some() { "on" } else { "off" }
    );
    if let Some(mut pipe) = ready {
        detach_stdio();
        let _ = pipe.write_all(b"\0");
    }
    // The kernel ends the connection with ENODEV on unmount, and at times
    // with ECONNABORTED while the mount goes away: both are a clean end.
    let result = match session.run() {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ECONNABORTED)) => Ok(()),
        other => other.map_err(DaemonError::Serve),
    };
    log::info!("{} unmounted, exiting", mountpoint.display());
    drop(fast_path);
    // Serving can also end because the connection failed: never leave a
    // dead mount behind.
    if mountinfo::fstype_at(mountpoint).as_deref() == Some(FSTYPE) {
        let _ = unmount(mountpoint, true);
    }
    if let Err(e) = registry::refresh(&run_dir()) {
        log::warn!("cannot update the mount registry: {e}");
    }
    result
}

/// Directory of the fast-path sockets (`$BTFUSE_RUN_DIR` or `/run/btfuse`).
pub fn run_dir() -> PathBuf {
    std::env::var_os(proto::RUN_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(proto::RUN_DIR), PathBuf::from)
}

fn start_ring_server(
    session: &Session<FuseFs>,
    store: Arc<Store>,
    mountpoint: &Path,
    metrics: Arc<Metrics>,
    clients: Arc<Clients>,
) -> io::Result<RingServer> {
    let mount = mountinfo::mount_at(mountpoint)
        .filter(|m| m.fstype == FSTYPE)
        .ok_or_else(|| io::Error::other("mount not found in /proc/self/mountinfo"))?;
    RingServer::start(
        store,
        mountpoint,
        (mount.major, mount.minor),
        &run_dir(),
        session.notifier(),
        metrics,
        clients,
    )
}

fn mount_session(
    args: &MountArgs,
    mountpoint: &Path,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    clients: Arc<Clients>,
) -> Result<Session<FuseFs>, DaemonError> {
    // Signals are taken by one dedicated thread with sigwait; block them
    // before any thread starts so every thread inherits the mask.
    block_shutdown_signals();
    let fuse =
        mount_fuse(mountpoint).map_err(|e| DaemonError::Mount(mountpoint.to_path_buf(), e))?;
    let mut config = Config::default();
    config.acl = SessionACL::All;
    config.n_threads = Some(args.threads);
    config.clone_fd = true;
    let fs = FuseFs::new(store, metrics, clients);
    Session::from_fd(fs, fuse, SessionACL::All, config).map_err(|e| {
        let _ = unmount(mountpoint, true);
        DaemonError::Mount(mountpoint.to_path_buf(), e)
    })
}

/// Mounts the kernel side and returns the `/dev/fuse` connection.
///
/// Done here rather than by `fuser` so that the mount table says
/// `fuse.btfuse` (fuser mounts plain `fuse`), which is how the preload
/// library recognises btfuse mounts. Options: `allow_other` (every user may
/// use the mount) and `default_permissions` (the kernel checks permissions
/// too, with the caller's full credentials); suid and device nodes are
/// honoured, as on tmpfs. Needs root (no `fusermount` fallback).
fn mount_fuse(mountpoint: &Path) -> io::Result<OwnedFd> {
    let fuse = File::options().read(true).write(true).open("/dev/fuse")?;
    let rootmode = libc::S_IFDIR;
    let options = format!(
        "fd={},rootmode={rootmode:o},user_id=0,group_id=0,default_permissions,allow_other",
        fuse.as_raw_fd()
    );
    let c = |s: &[u8]| std::ffi::CString::new(s).map_err(io::Error::other);
    let (source, fstype) = (c(b"btfuse")?, c(FSTYPE.as_bytes())?);
    let (target, data) = (
        c(mountpoint.as_os_str().as_bytes())?,
        c(options.as_bytes())?,
    );
    // SAFETY: all pointers are NUL-terminated strings that outlive the call.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if ret != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(io::Error::other(
                "permission denied: mounting btfuse needs root",
            ));
        }
        return Err(e);
    }
    Ok(OwnedFd::from(fuse))
}

/// File data lives in the store's own slabs, but FUSE requests pass through
/// malloc'd buffers of up to 1 MiB: have glibc serve those from mmap and
/// trim its heap promptly, so RSS really returns after big files are
/// deleted (measured: ~60 MiB left after 10 x 1 GiB otherwise, ~8 MiB
/// with these settings).
fn tune_malloc() {
    // SAFETY: mallopt only adjusts allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

/// Each fast-path channel holds a socket and a memfd: allow many clients.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn shutdown_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t for the duration of these calls.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
    }
    set
}

fn block_shutdown_signals() {
    let set = shutdown_sigset();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Longest sleep of the memory trimmer.
const TRIM_PERIOD: Duration = Duration::from_secs(1);

/// Metadata freed (bytes) that makes the trimmer hand the heap's free
/// memory back with `malloc_trim`.
const META_TRIM_STEP: u64 = 4 << 20;

/// Returns the memory of deleted data to the OS once it has stayed unused
/// for [`inode_store::IDLE_DECAY`] (the block pool keeps it for reuse until
/// then): at most [`TRIM_PERIOD`] late. Metadata (inodes, names, xattrs)
/// lives on the malloc heap, spread over the arenas of many threads, where
/// glibc keeps freed memory: once the store's metadata fell by
/// [`META_TRIM_STEP`] since its last peak, `malloc_trim` returns the free
/// pages of every arena. Ends with the store.
fn spawn_memory_trimmer(store: Weak<Store>) {
    let mut meta_peak = 0u64;
    let spawned = std::thread::Builder::new()
        .name("btfuse-trim".into())
        .spawn(move || loop {
            let Some(next) = store.upgrade().map(|s| {
                let meta = s.usage().meta_bytes;
                meta_peak = meta_peak.max(meta);
                if meta_peak - meta >= META_TRIM_STEP {
                    // SAFETY: malloc_trim only releases free heap memory.
                    unsafe { libc::malloc_trim(0) };
                    meta_peak = meta;
                }
                s.release_idle_memory(Instant::now())
            }) else {
                return;
            };
            let wait = next.map_or(TRIM_PERIOD, |due| {
                due.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(10), TRIM_PERIOD)
            });
            std::thread::sleep(wait);
        });
    if let Err(e) = spawned {
        // The mount serves anyway; freed memory then stays mapped for reuse.
        log::warn!("cannot start the memory trimmer: {e}");
    }
}

/// Waits for SIGINT/SIGTERM/SIGHUP and unmounts; `session.run()` then returns.
/// A busy mount is detached lazily; if serving does not end soon after, the
/// process exits, which aborts the kernel connection.
fn spawn_signal_thread(mountpoint: PathBuf) {
    std::thread::Builder::new()
        .name("btfuse-signals".into())
        .spawn(move || {
            let set = shutdown_sigset();
            let mut sig = 0;
            // SAFETY: `set` and `sig` are valid for the call.
            unsafe { libc::sigwait(&set, &mut sig) };
            log::info!("signal {sig}: unmounting {}", mountpoint.display());
            if unmount(&mountpoint, false).is_err() {
                let _ = unmount(&mountpoint, true);
            }
            std::thread::sleep(Duration::from_secs(5));
            std::process::exit(0);
        })
        .expect("spawning the signal thread");
}

/// Points stdin/stdout/stderr at /dev/null once the parent has gone.
fn detach_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors; `null` stays open.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let _ = std::env::set_current_dir("/");
}

fn pipe() -> Result<(OwnedFd, OwnedFd), DaemonError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(DaemonError::Background(
            io::Error::last_os_error().to_string(),
        ));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Parent side of `--background`: a NUL byte means ready, text is an error,
/// EOF means the child died.
fn wait_ready(read_end: OwnedFd) -> Result<(), DaemonError> {
    let mut pfd = libc::pollfd {
        fd: read_end.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd array of length 1.
    let n = unsafe { libc::poll(&mut pfd, 1, READY_TIMEOUT.as_millis() as i32) };
    if n == 0 {
        return Err(DaemonError::Background(
            "timed out waiting for the mount".into(),
        ));
    }
    let mut msg = Vec::new();
    File::from(read_end)
        .read_to_end(&mut msg)
        .map_err(|e| DaemonError::Background(e.to_string()))?;
    match msg.first() {
        Some(0) => Ok(()),
        Some(_) => Err(DaemonError::Background(
            String::from_utf8_lossy(&msg).into_owned(),
        )),
        None => Err(DaemonError::Background(
            "the daemon exited during start-up".into(),
        )),
    }
}

fn unmount(path: &Path, lazy: bool) -> io::Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: `c_path` is a valid NUL-terminated string.
    if unsafe { libc::umount2(c_path.as_ptr(), flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `btfuse umount`: unmounts a btfuse mount (only btfuse mounts).
pub fn umount(path: &Path, lazy: bool) -> Result<(), DaemonError> {
    // A dead daemon leaves a mount that cannot be resolved (ENOTCONN):
    // fall back to the lexical absolute path so it can still be removed.
    let canonical = path
        .canonicalize()
        .or_else(|_| std::path::absolute(path))
        .map_err(|e| DaemonError::Umount(path.to_path_buf(), e))?;
    if mountinfo::fstype_at(&canonical).as_deref() != Some(FSTYPE) {
        return Err(DaemonError::NotBtfuse(canonical));
    }
    unmount(&canonical, lazy).map_err(|e| DaemonError::Umount(canonical, e))
}

/// `btfuse stats`: asks the daemon of a btfuse mount for its statistics.
pub fn stats(path: &Path, format: StatsFormat) -> Result<String, DaemonError> {
    let canonical = path
        .canonicalize()
        .map_err(|e| DaemonError::Mountpoint(path.to_path_buf(), e))?;
    let mount = mountinfo::mount_at(&canonical)
        .filter(|m| m.fstype == FSTYPE)
        .ok_or_else(|| DaemonError::NotBtfuse(canonical.clone()))?;
    let socket = crate::ring_server::socket_path(&run_dir(), (mount.major, mount.minor));
    crate::ring_server::query_stats(&socket, format).map_err(|e| DaemonError::Stats(canonical, e))
}
