//! Mount lifecycle: checks, daemonizing, serving, clean shutdown on signals.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fuser::{Config, Session, SessionACL};
use inode_store::Store;

use crate::access::Access;
use crate::fs_core::clients::{ChannelLimits, Clients};
use crate::fuse_door::{self, FuseFs, KernelNotifier, KernelPages, MAX_IO};
use crate::fusermount;
use crate::metrics::Metrics;
use crate::mountinfo;
use crate::notify;
use crate::options::MountOptions;
use crate::registry;
use crate::ring_door::{RingServer, StatsFormat};

/// How long `--background` waits for the child to report a usable mount.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Filesystem type as the kernel lists it: `fuse.` + subtype.
pub const FSTYPE: &str = "fuse.btfuse";

/// Capacity for file data without `--size` / `size=`.
const DEFAULT_SIZE: u64 = 1 << 30;

/// Parsed `btfuse mount` arguments.
pub struct MountArgs {
    /// Directory to mount on.
    pub mountpoint: PathBuf,
    /// Flags and `-o` options together.
    pub options: MountOptions,
    /// Return once mounted, serve from a detached child.
    pub background: bool,
    /// The open `--log` file, if any.
    pub log: Option<File>,
    /// What the store starts with (empty, a directory tree, an image).
    pub initial: Initial,
    /// Image to save when the mount ends cleanly.
    pub save_on_exit: Option<PathBuf>,
}

/// What a new mount's store starts with.
pub enum Initial {
    /// An empty root directory.
    Empty,
    /// A copy of this directory tree (`--from`).
    Dir(PathBuf),
    /// This image (`--image`).
    Image(PathBuf),
}

/// What [`serve`] needs, worked out from [`MountArgs`] before forking.
struct Plan<'a> {
    args: &'a MountArgs,
    /// Capacity for file data in bytes.
    size: u64,
    /// FUSE worker threads.
    threads: usize,
    /// Whether users other than the mounting one may use the mount.
    allow_other: bool,
    /// The bound Prometheus endpoint.
    metrics: Option<std::net::TcpListener>,
}

/// Why a mount or unmount failed; printed as one line.
#[derive(Debug)]
pub enum DaemonError {
    /// The mountpoint cannot be used (missing, not a directory, ...).
    Mountpoint(PathBuf, io::Error),
    /// Something is already mounted there.
    AlreadyMounted(PathBuf),
    /// The `--metrics` address cannot be bound.
    Metrics(std::net::SocketAddr, io::Error),
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
    /// Loading the initial tree failed.
    Load(PathBuf, crate::image::ImageError),
    /// `btfuse save` failed.
    Save(PathBuf, io::Error),
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
            DaemonError::Metrics(addr, e) => {
                write!(f, "cannot serve metrics on {addr}: {e}")
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
            DaemonError::Load(p, e) => write!(f, "cannot load {}: {e}", p.display()),
            DaemonError::Save(p, e) => write!(f, "save of {} failed: {e}", p.display()),
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
    if mountinfo::is_mount_root(&canonical).map_err(bad)? {
        return Err(DaemonError::AlreadyMounted(canonical));
    }
    Ok(canonical)
}

/// The effective user and group ids of the daemon.
fn own_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// `btfuse mount`: mounts and serves until unmounted or signalled.
pub fn mount(args: &MountArgs) -> Result<(), DaemonError> {
    let o = &args.options;
    let mountpoint = check_mountpoint(&args.mountpoint)?;
    // Bound before mounting: a taken port fails the mount, leaving nothing.
    let metrics = o
        .metrics
        .map(|addr| std::net::TcpListener::bind(addr).map_err(|e| DaemonError::Metrics(addr, e)))
        .transpose()?;
    let plan = Plan {
        args,
        size: o
            .size
            .map_or(DEFAULT_SIZE, |s| s.bytes(crate::size::total_ram())),
        threads: o.threads.map_or_else(default_threads, usize::from),
        // Root mounts are for every user unless told otherwise (as before
        // -o existed); a user's mount for that user, as with fusermount3.
        allow_other: o.allow_other.unwrap_or(own_ids().0 == 0),
        metrics,
    };
    if !args.background {
        return serve(&plan, &mountpoint, None);
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
            let result = serve(&plan, &mountpoint, Some(write_end));
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
fn serve(plan: &Plan<'_>, mountpoint: &Path, ready: Option<OwnedFd>) -> Result<(), DaemonError> {
    let args = plan.args;
    let o = &args.options;
    let mut ready = ready.map(File::from);
    raise_fd_limit();
    tune_malloc();
    let max_inodes = o
        .nr_inodes
        .unwrap_or_else(|| Store::default_max_inodes(plan.size));
    let loaded = match &args.initial {
        Initial::Empty => Ok(Store::with_limits(plan.size, max_inodes)),
        Initial::Dir(d) => crate::image::from_dir(d, plan.size, max_inodes)
            .map_err(|e| DaemonError::Load(d.clone(), e)),
        Initial::Image(f) => crate::image::load(f, plan.size, max_inodes)
            .map_err(|e| DaemonError::Load(f.clone(), e)),
    };
    let store = match loaded {
        Ok(store) => Arc::new(store),
        Err(e) => {
            if let Some(pipe) = ready.as_mut() {
                let _ = pipe.write_all(e.to_string().as_bytes());
            }
            return Err(e);
        }
    };
    let kept = store.clone();
    let (uid, gid) = own_ids();
    // A new tree's root gets the defaults; a loaded one keeps its own
    // unless an option says otherwise.
    let fresh = matches!(args.initial, Initial::Empty);
    let root = inode_store::SetAttr {
        mode: o.root_mode.or(fresh.then_some(0o755)),
        uid: o.root_uid.or(fresh.then_some(uid)),
        gid: o.root_gid.or(fresh.then_some(gid)),
        ..Default::default()
    };
    store
        .setattr(
            &inode_store::Creds::root(),
            inode_store::ROOT_INO,
            &root,
            None,
        )
        .map_err(|e| DaemonError::Serve(io::Error::from_raw_os_error(e.0)))?;
    let metrics = Arc::new(Metrics::default());
    let access = if o.read_only() {
        Access::Nobody
    } else if plan.allow_other {
        Access::Everyone
    } else {
        Access::Owner { uid, gid }
    };
    let limits = o
        .max_channels
        .map_or_else(ChannelLimits::default, |n| ChannelLimits::new(n as usize));
    // Both doors know the fast path's clients: the FUSE door lets a client
    // reopen the files it holds (see `FuseFs::held_open`).
    let clients = Arc::new(Clients::new(limits).with_access(access));
    // Recorded by the FUSE door, read by its notifier on the ring door's
    // behalf (see `fuse_door::coherence`).
    let pages = Arc::new(KernelPages::default());
    let result = mount_session(
        plan,
        mountpoint,
        store.clone(),
        metrics.clone(),
        clients.clone(),
        pages.clone(),
    );
    let (session, over_io_uring) = match result {
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
    let kernel = KernelNotifier::new(session.notifier(), store.clone(), pages, mountpoint);
    let fast_path = match start_ring_server(kernel, store, mountpoint, metrics, clients) {
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
    if let (Some(addr), Some(listener)) = (o.metrics, plan.metrics.as_ref()) {
        let served = listener.try_clone().and_then(|l| match fast_path.as_ref() {
            Some(server) => server.serve_metrics(l),
            None => Err(io::Error::other(
                "the fast path (which keeps the figures) is off",
            )),
        });
        match served {
            Ok(()) => log::info!("metrics on http://{addr}/metrics"),
            Err(e) => log::error!("cannot serve metrics: {e}"),
        }
    }
    spawn_signal_thread(mountpoint.to_path_buf());
    // A second descriptor of the connection for the io_uring queues.
    let uring_fd = over_io_uring
        .then(|| session.as_fd().try_clone_to_owned())
        .and_then(|fd| {
            fd.map_err(|e| log::warn!("FUSE over io_uring off: {e}"))
                .ok()
        });
    log::info!(
        "serving {} ({} bytes, {} FUSE threads{}, {}, fast path {})",
        mountpoint.display(),
        plan.size,
        plan.threads,
        if uring_fd.is_some() {
            " + per-CPU io_uring queues"
        } else {
            ""
        },
        if o.read_only() {
            "read-only"
        } else {
            "read-write"
        },
        match (&fast_path, access) {
            (None, _) => "off",
            (Some(_), Access::Nobody) => "off (read-only)",
            (Some(_), Access::Owner { .. }) => "on, for the mounting user only",
            (Some(_), Access::Everyone) => "on",
        }
    );
    if let Some(mut pipe) = ready {
        detach_stdio(args.log.as_ref());
        let _ = pipe.write_all(b"\0");
    }
    let pid = std::process::id();
    if let Err(e) = notify::notify(&format!("READY=1\nMAINPID={pid}")) {
        log::warn!("cannot notify the service manager: {e}");
    }
    // The kernel ends the connection with ENODEV on unmount, and at times
    // with ECONNABORTED while the mount goes away: both are a clean end.
    let serve_uring = |dispatcher| {
        if let Some(fd) = uring_fd {
            if let Err(e) = fuse_door::uring::start(fd, dispatcher, MAX_IO as usize) {
                // The kernel keeps using /dev/fuse until every queue has
                // an entry: serving goes on there.
                log::warn!("FUSE over io_uring off: {e}");
            }
        }
    };
    let result = match session.run_with(serve_uring) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ECONNABORTED)) => Ok(()),
        other => other.map_err(DaemonError::Serve),
    };
    log::info!("{} unmounted, exiting", mountpoint.display());
    let _ = notify::notify("STOPPING=1");
    drop(fast_path);
    let saved = match &args.save_on_exit {
        Some(path) => crate::image::save(&kept, path, &mut || {})
            .map(|s| log::info!("saved {} inodes to {}", s.nodes, path.display()))
            .map_err(|e| DaemonError::Save(path.clone(), io::Error::other(e.to_string()))),
        None => Ok(()),
    };
    // Serving can also end because the connection failed: never leave a
    // dead mount behind.
    if mountinfo::btfuse_at(mountpoint).is_some() {
        let _ = unmount(mountpoint, true);
    }
    if let Err(e) = registry::refresh(&run_dir()) {
        log::warn!("cannot update the mount registry: {e}");
    }
    result.and(saved)
}

/// Directory of the fast-path sockets: `$BTFUSE_RUN_DIR`, else
/// `/run/btfuse` for root and `$XDG_RUNTIME_DIR/btfuse` for other users
/// (who cannot write `/run/btfuse`; their preloaded processes are pointed
/// there by `btfuse run`, see [`crate::run`]).
pub fn run_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|d| !d.is_empty());
    if let Some(dir) = var(proto::RUN_DIR_ENV) {
        return PathBuf::from(dir);
    }
    match var("XDG_RUNTIME_DIR") {
        Some(runtime) if own_ids().0 != 0 => PathBuf::from(runtime).join("btfuse"),
        _ => PathBuf::from(proto::RUN_DIR),
    }
}

fn start_ring_server(
    kernel: KernelNotifier,
    store: Arc<Store>,
    mountpoint: &Path,
    metrics: Arc<Metrics>,
    clients: Arc<Clients>,
) -> io::Result<RingServer> {
    let dev = mountinfo::btfuse_at(mountpoint)
        .ok_or_else(|| io::Error::other("mount not found in /proc/self/mountinfo"))?;
    RingServer::start(
        store,
        mountpoint,
        dev,
        &run_dir(),
        Box::new(kernel),
        metrics,
        clients,
    )
}

fn mount_session(
    plan: &Plan<'_>,
    mountpoint: &Path,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    clients: Arc<Clients>,
    pages: Arc<KernelPages>,
) -> Result<(Session<FuseFs>, bool), DaemonError> {
    // Signals are taken by one dedicated thread with sigwait; block them
    // before any thread starts so every thread inherits the mask.
    block_shutdown_signals();
    let fuse = mount_fuse(mountpoint, &plan.args.options, plan.allow_other)
        .map_err(|e| DaemonError::Mount(mountpoint.to_path_buf(), e))?;
    let acl = if plan.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    let mut config = Config::default();
    config.acl = acl;
    config.n_threads = Some(plan.threads);
    config.clone_fd = true;
    let kernel_checks = plan.args.options.default_permissions;
    let over_io_uring = Arc::new(AtomicBool::new(plan.args.options.io_uring));
    let fs = FuseFs::new(
        store,
        metrics,
        clients,
        pages,
        kernel_checks,
        over_io_uring.clone(),
    );
    let session = Session::from_fd(fs, fuse, acl, config).map_err(|e| {
        let _ = unmount(mountpoint, true);
        DaemonError::Mount(mountpoint.to_path_buf(), e)
    })?;
    // Set by the INIT the session's handshake answered.
    Ok((session, over_io_uring.load(Ordering::Relaxed)))
}

/// Mounts the kernel side and returns the `/dev/fuse` connection.
///
/// Done here rather than by `fuser` so that the mount table says
/// `fuse.btfuse` (fuser mounts plain `fuse`), which is how the preload
/// library recognises btfuse mounts. Options: `allow_other` (every user may
/// use the mount), `default_permissions` (the kernel checks permissions
/// too, with the caller's full credentials) and the generic flags of `-o`;
/// suid and device nodes are honoured unless `nosuid`/`nodev`, as on tmpfs.
/// A user other than root mounts through `fusermount3` (which adds
/// `nosuid,nodev` and allows `allow_other` only if `/etc/fuse.conf` says
/// `user_allow_other`).
fn mount_fuse(mountpoint: &Path, o: &MountOptions, allow_other: bool) -> io::Result<OwnedFd> {
    let mut access = Vec::new();
    if o.default_permissions {
        access.push("default_permissions");
    }
    if allow_other {
        access.push("allow_other");
    }
    let (uid, gid) = own_ids();
    if uid != 0 {
        let mut words = vec!["fsname=btfuse", "subtype=btfuse"];
        words.extend(access);
        words.extend(o.flag_words());
        return fusermount::mount(mountpoint, &words.join(","));
    }
    let fuse = File::options().read(true).write(true).open("/dev/fuse")?;
    let rootmode = libc::S_IFDIR;
    let mut options = format!(
        "fd={},rootmode={rootmode:o},user_id={uid},group_id={gid}",
        fuse.as_raw_fd()
    );
    for word in &access {
        options.push(',');
        options.push_str(word);
    }
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
            o.flags,
            data.as_ptr().cast(),
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
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
            // A save on exit finishes first (the main thread exits after it).
            while crate::image::PROGRESS.phase() == crate::image::Phase::Saving {
                std::thread::sleep(Duration::from_millis(100));
            }
            std::process::exit(0);
        })
        .expect("spawning the signal thread");
}

/// Points stdin and stdout at /dev/null once the parent has gone, and
/// stderr at the log file (so that a panic is kept) or /dev/null.
fn detach_stdio(log: Option<&File>) {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let to = match (fd, log) {
                (2, Some(log)) => log.as_raw_fd(),
                _ => null.as_raw_fd(),
            };
            // SAFETY: dup2 onto the standard descriptors; `to` stays open.
            unsafe { libc::dup2(to, fd) };
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

/// Unmounts `path`; a user without the right to unmount goes through
/// `fusermount3 -u` (which lets a user unmount only their own mounts).
fn unmount(path: &Path, lazy: bool) -> io::Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: `c_path` is a valid NUL-terminated string.
    if unsafe { libc::umount2(c_path.as_ptr(), flags) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) && own_ids().0 != 0 {
            return fusermount::unmount(path, lazy);
        }
        return Err(e);
    }
    Ok(())
}

/// `btfuse umount`: unmounts a btfuse mount (only btfuse mounts).
pub fn umount(path: &Path, lazy: bool) -> Result<(), DaemonError> {
    // A dead daemon leaves a mount that cannot be resolved (ENOTCONN):
    // fall back to the lexical absolute path so it can still be removed.
    // Any other failure (a missing path) is told as it is.
    let canonical = match path.canonicalize() {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => std::path::absolute(path),
        other => other,
    }
    .map_err(|e| DaemonError::Umount(path.to_path_buf(), e))?;
    if mountinfo::btfuse_at(&canonical).is_none() {
        return Err(DaemonError::NotBtfuse(canonical));
    }
    unmount(&canonical, lazy).map_err(|e| DaemonError::Umount(canonical, e))
}

/// `btfuse save`: asks the daemon of a btfuse mount to save an image of
/// its tree at `file` while it keeps serving.
pub fn save(path: &Path, file: &Path) -> Result<String, DaemonError> {
    let (_, socket) = daemon_socket(path)?;
    let target = std::path::absolute(file).map_err(|e| DaemonError::Save(file.to_path_buf(), e))?;
    let show = crate::image::show_on_terminal;
    let result = crate::ring_door::request_save(&socket, &target, &mut |l| show(Some(l)));
    show(None);
    result.map_err(|e| DaemonError::Save(target, e))
}

/// `btfuse stats`: asks the daemon of a btfuse mount for its statistics.
pub fn stats(path: &Path, format: StatsFormat) -> Result<String, DaemonError> {
    let (canonical, socket) = daemon_socket(path)?;
    crate::ring_door::query_stats(&socket, format).map_err(|e| DaemonError::Stats(canonical, e))
}

/// The btfuse mount at `path` (canonicalized) and its daemon's socket.
fn daemon_socket(path: &Path) -> Result<(PathBuf, PathBuf), DaemonError> {
    let canonical = path
        .canonicalize()
        .map_err(|e| DaemonError::Mountpoint(path.to_path_buf(), e))?;
    let dev = mountinfo::btfuse_at(&canonical)
        .ok_or_else(|| DaemonError::NotBtfuse(canonical.clone()))?;
    let socket = crate::ring_door::socket_path(&run_dir(), dev);
    Ok((canonical, socket))
}
