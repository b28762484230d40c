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

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inode_store::Store;
use proto::{
    bytes_of, decode, Hello, HelloReply, Op, ReqHeader, RespHeader, HELLO_MAGIC, MAX_REPLY,
    MAX_REQUEST, STATS_MAGIC,
};
use shm_ring::{Region, WaitPolicy};

use crate::client::{Client, Clients, Refused};
use crate::exec::{BulkArea, Executor, KernelCache, Request};
use crate::cpu_affinity::CpuSeparation;
use crate::metrics::Metrics;
use crate::stats;
use crate::sock::{self, Listener};

/// How long a new connection may take to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// A real client sends its hello right after connecting: a connection
/// silent for longer gets no priority over the next ones.
const HELLO_PROMPT: Duration = Duration::from_millis(2);

/// How long the serving thread spins for the next request: four times the
/// client's last pause between a reply and its next request, within these
/// bounds, then it sleeps on the doorbell. A client in a tight loop (pauses
/// of a few µs) finds its server awake without keeping a core busy after
/// it stops; a fixed long spin (measured) takes a core from the next
/// processes of a shell loop, a fixed short one misses a client that
/// pauses a little.
const SPIN_MIN_NS: u64 = 15_000;
const SPIN_MAX_NS: u64 = 200_000;

/// Liveness is checked after every sleep slice of this length.
const SLEEP_SLICE_NS: u64 = 200_000_000;

/// The wait for the next request, given the client's last pause (`None`
/// when the server had to sleep for it: the client is not in a loop).
fn request_wait(last_pause_ns: Option<u64>) -> WaitPolicy {
    let spin = last_pause_ns.map_or(SPIN_MIN_NS, |p| {
        p.saturating_mul(4).clamp(SPIN_MIN_NS, SPIN_MAX_NS)
    });
    WaitPolicy::spinning(spin).with_sleep_slice_ns(SLEEP_SLICE_NS)
}

/// A new process makes its first calls in a burst (open, fstat, read,
/// close…, with its own work in between): for this many requests the
/// server spins its longest, whatever the pauses.
const STARTUP_REQUESTS: u32 = 16;

/// The wait for a new channel's first request: the client sends it right
/// after its hello, so it is usually there already or arrives within µs.
/// Past this spin the server stops waiting only for it (and lets a
/// successor start, see [`serve_one`]), then waits as usual.
const FIRST_REQUEST_WAIT: WaitPolicy =
    WaitPolicy::spinning(SPIN_MAX_NS).with_timeout_ns(SPIN_MAX_NS);

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
}

/// A running ring server; dropping it stops accepting and removes the socket.
pub struct RingServer {
    listener: Arc<Listener>,
    socket_path: PathBuf,
    /// (st_dev, st_ino) of the socket file we bound.
    socket_id: (u64, u64),
    shared: Arc<Shared>,
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
        let listener = Arc::new(Listener::bind(&socket_path)?);
        let meta = std::fs::symlink_metadata(&socket_path)?;
        let socket_id = (meta.dev(), meta.ino());
        let shared = Arc::new(Shared {
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
        // A new daemon may already have bound the same path (a device
        // number is reused once its mount is gone): remove only our socket.
        let ours = std::fs::symlink_metadata(&self.socket_path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.socket_id);
        if ours {
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }
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
    let mut successor = (idle_left == 0).then_some(|| start_worker(listener, shared));
    // A connection that does not say hello at once must not hold up the
    // next clients: then the successor starts right away.
    if successor.is_some() && !sock::readable_within(&conn, HELLO_PROMPT) {
        if let Some(start) = successor.take() {
            start();
        }
    }
    let result = serve_connection(shared, conn, &mut successor);
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

/// Closes the descriptors clients pass with their hello, on a thread of
/// its own: closing a hostile one can block without limit (a socket set to
/// linger behind a full peer window, a file of a FUSE mount whose daemon
/// never answers FLUSH), which must not hold a serving thread. If the
/// reaper itself is stuck and its queue full, further descriptors are
/// leaked instead (bounded by the fd limit; each is counted in the log).
pub(crate) struct Reaper {
    queue: std::sync::mpsc::SyncSender<OwnedFd>,
}

/// Descriptors queued for the reaper before fds are leaked instead.
const REAPER_QUEUE: usize = 1024;

impl Reaper {
    fn start() -> io::Result<Reaper> {
        let (queue, rx) = std::sync::mpsc::sync_channel::<OwnedFd>(REAPER_QUEUE);
        std::thread::Builder::new()
            .name("btfuse-reaper".into())
            .spawn(move || rx.into_iter().for_each(drop))?;
        Ok(Reaper { queue })
    }

    fn dispose(&self, fds: impl IntoIterator<Item = OwnedFd>) {
        for fd in fds {
            match self.queue.try_send(fd) {
                Ok(()) => {}
                Err(std::sync::mpsc::TrySendError::Full(fd))
                | Err(std::sync::mpsc::TrySendError::Disconnected(fd)) => {
                    log::warn!("a client's descriptor is left open: the reaper is stuck");
                    std::mem::forget(fd);
                }
            }
        }
    }
}

/// Descriptors received with a hello, handed to the reaper on drop.
struct Passed<'a> {
    reaper: &'a Reaper,
    fds: Vec<OwnedFd>,
}

impl Drop for Passed<'_> {
    fn drop(&mut self) {
        self.reaper.dispose(self.fds.drain(..));
    }
}

/// Output format of a statistics query.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StatsFormat {
    /// The human report.
    Text,
    /// One JSON object.
    Json,
}

/// A statistics query is a [`Hello`] with [`STATS_MAGIC`], optionally
/// followed by one little-endian `u32` format (0 = text, 1 = JSON); the
/// bare 8-byte form asks for text. The answer is one message of UTF-8.
fn stats_request(msg: &[u8], hello: &Hello) -> Option<StatsFormat> {
    if hello.magic != STATS_MAGIC || hello.version != proto::VERSION {
        return None;
    }
    match &msg[size_of::<Hello>().min(msg.len())..] {
        [] | [0, 0, 0, 0] => Some(StatsFormat::Text),
        [1, 0, 0, 0] => Some(StatsFormat::Json),
        _ => None,
    }
}

/// A save request is a [`Hello`] with [`STATS_MAGIC`], the little-endian
/// `u32` 2, and the absolute path of the image to write.
fn save_request<'a>(msg: &'a [u8], hello: &Hello) -> Option<&'a Path> {
    if hello.magic != STATS_MAGIC || hello.version != proto::VERSION {
        return None;
    }
    match &msg[size_of::<Hello>().min(msg.len())..] {
        [2, 0, 0, 0, path @ ..] if path.first() == Some(&b'/') => {
            Some(Path::new(OsStr::from_bytes(path)))
        }
        _ => None,
    }
}

/// Runs a `btfuse save`: progress messages (`progress LINE`) about every
/// 500 ms, then `ok SUMMARY` or `error MESSAGE`. Only root may ask: the
/// image holds every file whatever its permissions, and the daemon writes
/// it as root.
fn serve_save(shared: &Shared, conn: &OwnedFd, uid: u32, path: &Path) {
    let answer = if uid != 0 {
        "error only root may save an image".to_string()
    } else {
        let mut last = Instant::now();
        let mut tick = || {
            if last.elapsed() >= Duration::from_millis(500) {
                last = Instant::now();
                if let Some(line) = crate::image::PROGRESS.line() {
                    let _ = sock::send(conn, format!("progress {line}").as_bytes());
                }
            }
        };
        match crate::image::save(&shared.store, path, &mut tick) {
            Ok(s) => format!(
                "ok saved {} inodes, {} data bytes, {} image bytes to {}",
                s.nodes,
                s.data_bytes,
                s.image_bytes,
                path.display()
            ),
            Err(e) => format!("error cannot save {}: {e}", path.display()),
        }
    };
    let _ = sock::send(conn, answer.as_bytes());
}

/// Asks the daemon listening on `socket` to save an image at `path`
/// (absolute); `progress` gets each progress line. Returns the summary.
pub fn request_save(
    socket: &Path,
    path: &Path,
    progress: &mut dyn FnMut(&str),
) -> io::Result<String> {
    let conn = sock::connect(socket)?;
    // Progress comes at least every second while the save runs; the cut
    // itself is short.
    sock::set_timeouts(&conn, Duration::from_secs(120))?;
    let hello = Hello {
        magic: STATS_MAGIC,
        version: proto::VERSION,
        image: 0,
    };
    let mut msg = bytes_of(&hello).to_vec();
    msg.extend_from_slice(&2u32.to_le_bytes());
    msg.extend_from_slice(path.as_os_str().as_bytes());
    sock::send(&conn, &msg)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = sock::recv(&conn, &mut buf)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some(line) = text.strip_prefix("progress ") {
            progress(line);
        } else if let Some(summary) = text.strip_prefix("ok ") {
            return Ok(summary.to_string());
        } else if let Some(e) = text.strip_prefix("error ") {
            return Err(io::Error::other(e.to_string()));
        } else {
            return Err(io::Error::other("the daemon closed the connection"));
        }
    }
}

/// Records one fast-path request: operation from the request header,
/// outcome and data bytes from the reply header.
fn record(metrics: &Metrics, request: &[u8], reply: &[u8], elapsed: Duration) {
    let op = decode::<ReqHeader>(request).map_or(0, |h| h.op);
    let resp = decode::<RespHeader>(reply);
    let ok = resp.is_some_and(|r| r.status == 0);
    // A path that left the mount is handed back, not failed.
    let errno = resp.map_or(libc::EIO, |r| {
        if r.status == proto::ESCAPED {
            0
        } else {
            -r.status
        }
    });
    metrics.ring.record(op as usize, elapsed, errno);
    if let (true, Some(r)) = (ok, resp) {
        if op == Op::Read as u32 {
            metrics.ring.add_read(r.v0);
        } else if op == Op::Write as u32 {
            metrics.ring.add_written(r.v0);
        }
    }
}

/// Asks the daemon listening on `socket` for its statistics.
pub fn query_stats(socket: &Path, format: StatsFormat) -> io::Result<String> {
    let conn = sock::connect(socket)?;
    sock::set_timeouts(&conn, HANDSHAKE_TIMEOUT)?;
    let hello = Hello {
        magic: STATS_MAGIC,
        version: proto::VERSION,
        image: 0,
    };
    let mut msg = bytes_of(&hello).to_vec();
    if format == StatsFormat::Json {
        msg.extend_from_slice(&1u32.to_le_bytes());
    }
    sock::send(&conn, &msg)?;
    let mut buf = vec![0u8; 256 << 10];
    let n = sock::recv(&conn, &mut buf)?;
    buf.truncate(n);
    String::from_utf8(buf).map_err(io::Error::other)
}

/// Where the daemon of the mount with device `major:minor` listens.
pub fn socket_path(run_dir: &Path, (major, minor): (u32, u32)) -> PathBuf {
    let mut name = [0u8; 32];
    let n = proto::socket_name(major, minor, &mut name);
    run_dir.join(OsStr::from_bytes(&name[..n]))
}

/// The channel's bulk area in shared memory, for the executor: every copy
/// is a raw, bounds-checked copy (`shm_ring::Bulk`), so bytes the client
/// changes concurrently are at worst garbage in its own file, never UB.
struct SharedBulk<'a, 'r>(&'a mut shm_ring::Bulk<'r>);

impl BulkArea for SharedBulk<'_, '_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read(&self, offset: usize, dst: &mut [u8]) {
        // The executor checked the range; an error here would only mean a
        // bug, and zeros are a safe answer.
        if self.0.read(offset, dst).is_err() {
            dst.fill(0);
        }
    }

    fn write(&mut self, offset: usize, src: &[u8]) {
        // The executor checked the range.
        let _ = self.0.write(offset, src);
    }
}

/// Why a channel ended.
#[derive(Debug)]
enum ChannelError {
    /// Socket trouble during the handshake.
    Io(io::Error),
    /// Bad hello.
    Handshake,
    /// Could not create the shared region.
    Region(shm_ring::RegionError),
    /// Too many channels (see [`crate::client::ChannelLimits`]).
    Refused(Refused),
    /// The client sent a request that does not decode.
    Malformed,
    /// The client corrupted the ring.
    Corrupt,
    /// The client went away (the normal end).
    Gone,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Io(e) => write!(f, "socket error: {e}"),
            ChannelError::Handshake => f.write_str("bad hello"),
            ChannelError::Region(e) => write!(f, "cannot create channel: {e}"),
            ChannelError::Refused(r) => write!(f, "channel refused: {r}"),
            ChannelError::Malformed => f.write_str("malformed request"),
            ChannelError::Corrupt => f.write_str("corrupt ring"),
            ChannelError::Gone => f.write_str("client gone"),
        }
    }
}

impl From<io::Error> for ChannelError {
    fn from(e: io::Error) -> Self {
        ChannelError::Io(e)
    }
}

/// Answers a hello: `error` 0 accepts the channel, anything else refuses
/// it (the client then leaves its first call to the kernel).
fn answer_hello(conn: &OwnedFd, error: i32) -> io::Result<()> {
    let reply = HelloReply {
        magic: HELLO_MAGIC,
        version: proto::VERSION,
        error: error as u32,
        ..Default::default()
    };
    sock::send(conn, bytes_of(&reply))
}

fn serve_connection(
    shared: &Shared,
    conn: OwnedFd,
    after_first_request: &mut Option<impl FnOnce()>,
) -> Result<(), ChannelError> {
    let peer = sock::peer_cred(&conn)?;
    sock::set_timeouts(&conn, HANDSHAKE_TIMEOUT)?;
    let mut buf = [0u8; size_of::<Hello>() + proto::PATH_MAX];
    let (n, fds) = sock::recv_with_fds(&conn, &mut buf);
    // Every descriptor a client passed is closed by the reaper, except the
    // channel memfd once adopted (see `Reaper`).
    let passed = Passed {
        reaper: &shared.reaper,
        fds,
    };
    let n = n?;
    let hello: Hello = decode(&buf[..n]).ok_or(ChannelError::Handshake)?;
    if let Some(path) = save_request(&buf[..n], &hello) {
        serve_save(shared, &conn, peer.uid, path);
        return Ok(());
    }
    if let Some(format) = stats_request(&buf[..n], &hello) {
        let report = match format {
            StatsFormat::Text => stats::text(&shared.stats()),
            StatsFormat::Json => stats::json(&shared.stats()),
        };
        sock::send(&conn, report.as_bytes())?;
        return Ok(());
    }
    // Nobody the kernel would refuse gets in by the fast path.
    if !shared.clients.access().permits(&peer) {
        let _ = answer_hello(&conn, libc::EACCES);
        return Err(ChannelError::Handshake);
    }
    let good_hello = hello.magic == HELLO_MAGIC && hello.version == proto::VERSION;
    let (true, Some(_channel)) = (good_hello, passed.fds.first()) else {
        let _ = answer_hello(&conn, libc::EPROTO);
        return Err(ChannelError::Handshake);
    };
    let named = &buf[size_of::<Hello>()..n];
    if !named.is_empty() && named != shared.mount_path.as_slice() {
        let _ = answer_hello(&conn, libc::ESTALE);
        return Err(ChannelError::Handshake);
    }
    let creds = crate::creds::for_peer(&conn, &peer)?;
    let client = match shared.clients.join(peer.pid, hello.image, creds) {
        Ok(client) => client,
        Err(refused) => {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            let _ = answer_hello(&conn, libc::EAGAIN);
            return Err(ChannelError::Refused(refused));
        }
    };
    shared.counters.channels.fetch_add(1, Ordering::Relaxed);
    let result = adopt_and_serve(shared, &client, passed, &conn, after_first_request);
    shared.counters.channels.fetch_sub(1, Ordering::Relaxed);
    shared.clients.leave(&shared.store, &client);
    result
}

/// Maps the channel passed as the first descriptor (only a memfd of
/// exactly the protocol's shape), answers the hello and serves the channel.
fn adopt_and_serve(
    shared: &Shared,
    client: &Client,
    mut passed: Passed<'_>,
    conn: &OwnedFd,
    after_first_request: &mut Option<impl FnOnce()>,
) -> Result<(), ChannelError> {
    let memfd = passed.fds[0].as_raw_fd();
    let region = match Region::attach_fd_expecting(memfd, &proto::channel_config()) {
        Ok(region) => region,
        Err(e) => {
            let _ = answer_hello(conn, libc::EINVAL);
            return Err(ChannelError::Region(e));
        }
    };
    // Adopted: it is a memfd, whose close cannot block; the mapping keeps
    // the channel.
    drop(passed.fds.remove(0));
    drop(passed);
    answer_hello(conn, 0)?;
    serve_channel(shared, client, &region, conn, after_first_request)
}

/// Request loop of one channel.
fn serve_channel(
    shared: &Shared,
    client: &Client,
    region: &Region,
    conn: &OwnedFd,
    after_first_request: &mut Option<impl FnOnce()>,
) -> Result<(), ChannelError> {
    let mut end = region.daemon().ok_or(ChannelError::Handshake)?;
    end.requests.set_policy(FIRST_REQUEST_WAIT);
    let client_alive = || !sock::peer_gone(conn);
    let mut alive = client_alive;
    let exec = Executor {
        store: &shared.store,
        client,
        mount_path: &shared.mount_path,
        kernel: shared.kernel.as_ref(),
        client_alive: &client_alive,
    };
    let mut msg = vec![0u8; MAX_REQUEST];
    let mut reply = Vec::with_capacity(MAX_REPLY);
    let mut served = 0u32;
    let mut separation = CpuSeparation::default();
    loop {
        let waiting = Instant::now();
        let n = match end.requests.recv(&mut msg, &mut alive) {
            Ok(n) => n,
            Err(shm_ring::RecvError::TimedOut) => {
                // Only the first wait has a timeout.
                if let Some(then) = after_first_request.take() {
                    then();
                }
                end.requests.set_policy(request_wait(None));
                continue;
            }
            Err(shm_ring::RecvError::Corrupt) => return Err(ChannelError::Corrupt),
            Err(shm_ring::RecvError::BufferTooSmall { .. }) => return Err(ChannelError::Malformed),
            Err(_) => return Err(ChannelError::Gone),
        };
        let pause = waiting.elapsed().as_nanos() as u64;
        let spun = end.requests.policy().spin_ns;
        served += 1;
        end.requests.set_policy(if served < STARTUP_REQUESTS {
            request_wait(Some(SPIN_MAX_NS))
        } else {
            request_wait((pause <= spun).then_some(pause))
        });
        separation.observe(end.requests.peer_cpu());
        // The client may have given up on its first request (it then runs
        // the call through the kernel): never run it here as well.
        if served == 1 && !end.requests.claim() {
            return Err(ChannelError::Gone);
        }
        let req = Request::parse(&msg[..n]).map_err(|_| ChannelError::Malformed)?;
        let start = Instant::now();
        exec.execute(&req, &mut SharedBulk(&mut end.bulk), &mut reply);
        let elapsed = start.elapsed();
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        record(&shared.metrics, &msg[..n], &reply, elapsed);
        match end.responses.send(&[&reply], &mut alive) {
            Ok(()) => {}
            Err(shm_ring::SendError::Corrupt) => return Err(ChannelError::Corrupt),
            Err(_) => return Err(ChannelError::Gone),
        }
        if let Some(then) = after_first_request.take() {
            then();
        }
    }
}
