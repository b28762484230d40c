//! One client connection: the hello, the channel's adoption and its request
//! loop (decode, execute, record, reply).

use std::fmt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use inode_store::Creds;
use proto::ops::Dispatched;
use proto::{bytes_of, decode, Hello, HelloReply, HELLO_MAGIC, MAX_REPLY, MAX_REQUEST};
use shm_ring::{Region, WaitPolicy};

use crate::cpu_affinity::CpuSeparation;
use crate::fs_core::clients::{Client, Refused};
use crate::fs_core::handlers::{BulkArea, Handlers, Transferred};
use crate::metrics::Metrics;
use crate::sock;
use crate::stats;

use super::control::{save_request, serve_save, stats_request, StatsFormat};
use super::reaper::Passed;
use super::{Shared, HANDSHAKE_TIMEOUT};

/// How long the serving thread spins for the next request: four times the
/// client's recent pauses between a reply and its next request (the
/// longest of them, each remembered at half weight per request after it,
/// those it slept through included while a spin could cover them), within
/// these bounds, then it sleeps on the doorbell. A client in a tight loop
/// (pauses of a few µs) finds its server awake without keeping a core busy
/// after it stops; one that alternates short and longer pauses (a listing
/// after every few hundred cached stats, an open then a read) is not woken
/// for every longer one; a fixed long spin (measured) takes a core from
/// the next processes of a shell loop, a fixed short one misses a client
/// that pauses a little.
const SPIN_MIN_NS: u64 = 15_000;
const SPIN_MAX_NS: u64 = 200_000;

/// Liveness is checked after every sleep slice of this length.
const SLEEP_SLICE_NS: u64 = 200_000_000;

/// How long to spin for the next request, given the client's recent
/// pauses (0: none a spin could cover).
fn request_spin(recent_pause_ns: u64) -> u64 {
    recent_pause_ns
        .saturating_mul(4)
        .clamp(SPIN_MIN_NS, SPIN_MAX_NS)
}

/// The next request into `msg`, spun for `spin_ns` (unless the client
/// runs on this thread's CPU), else slept for: on the client's CPU if its
/// last pause outlasted any spin and it has no other channel
/// (`join`, see [`CpuSeparation::join`]).
fn next_request(
    requests: &mut shm_ring::Consumer<'_>,
    separation: &mut CpuSeparation,
    (spin_ns, join): (u64, bool),
    msg: &mut [u8],
    alive: &mut impl shm_ring::Liveness,
) -> Result<usize, shm_ring::RecvError> {
    if !join {
        separation.leave();
    }
    // SAFETY: no arguments; -1 on failure.
    let ours = u32::try_from(unsafe { libc::sched_getcpu() }).ok();
    if ours.is_none() || requests.peer_cpu() != ours {
        requests.set_policy(WaitPolicy::spinning(spin_ns).with_timeout_ns(spin_ns));
        match requests.recv(msg, alive) {
            Err(shm_ring::RecvError::TimedOut) => {}
            got => return got,
        }
    }
    if join {
        separation.join(requests.peer_cpu());
    }
    requests.set_policy(WaitPolicy::SLEEP.with_sleep_slice_ns(SLEEP_SLICE_NS));
    requests.recv(msg, alive)
}

/// A new process makes its first calls in a burst (open, fstat, read,
/// close…, with its own work in between): for this many requests the
/// server spins its longest, whatever the pauses, until one pause outlasts
/// that spin. A process whose calls are far apart from the start (a
/// compiler opening its headers between stretches of parsing) is then no
/// longer spun for at each of them: in a `make -j2` that keeps both CPUs
/// busy, a spin after each of a compiler's few requests took the CPU the
/// other job needed (713 → 650 ms a build, 9 interleaved runs; plain FUSE
/// 599).
const STARTUP_REQUESTS: u32 = 16;

/// The wait for a new channel's first request: the client sends it right
/// after its hello, so it is usually there already or arrives within µs.
/// Past this spin the server stops waiting only for it (and lets a
/// successor start, see [`super::serve_one`]), then waits as usual.
const FIRST_REQUEST_WAIT: WaitPolicy =
    WaitPolicy::spinning(SPIN_MAX_NS).with_timeout_ns(SPIN_MAX_NS);

/// Records one fast-path request from what dispatching it found (`reply`:
/// the reply it made).
fn record(metrics: &Metrics, d: &Dispatched, reply: &[u8], moved: Transferred, elapsed: Duration) {
    let op = d.op.map_or(0, |op| op as usize);
    // A path that left the mount is handed back, not failed.
    let errno = if d.status == proto::ESCAPED {
        0
    } else {
        -d.status
    };
    // A stat of a missing name answers "absent" in its reply struct.
    let errno = match (d.op, errno) {
        (Some(proto::ops::Op::Stat), 0) => decode::<proto::ops::StatOut>(
            reply
                .get(size_of::<proto::ops::ReplyHeader>()..)
                .unwrap_or_default(),
        )
        .map_or(0, |s| s.absent as i32),
        (_, e) => e,
    };
    metrics.ring.record(op, elapsed, errno);
    if moved.read > 0 {
        metrics.ring.add_read(moved.read);
    }
    if moved.written > 0 {
        metrics.ring.add_written(moved.written);
    }
}

/// The channel's bulk area in shared memory, for the handlers: every copy
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
pub(super) enum ChannelError {
    /// Socket trouble during the handshake.
    Io(io::Error),
    /// Bad hello.
    Handshake,
    /// Could not create the shared region.
    Region(shm_ring::RegionError),
    /// Too many channels (see [`crate::fs_core::clients::ChannelLimits`]).
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

/// Accepts a hello: the reply carries the generations page (see
/// `gen_page`).
fn accept_hello(shared: &Shared, conn: &OwnedFd) -> io::Result<()> {
    let reply = HelloReply {
        magic: HELLO_MAGIC,
        version: proto::VERSION,
        error: 0,
        ..Default::default()
    };
    sock::send_with_fd(conn, bytes_of(&reply), shared.gen_page.fd().as_fd())
}

/// Who a connection's client is, read from the kernel as soon as it
/// connected: a client connects before it makes the channel it will send
/// with its hello, so this work overlaps that.
pub(super) struct Identity(io::Result<(sock::PeerCred, io::Result<Creds>)>);

impl Identity {
    /// Reads the identity of `conn`'s client.
    pub(super) fn of(conn: &OwnedFd) -> Identity {
        Identity(sock::peer_cred(conn).map(|peer| {
            let creds = crate::creds::for_peer(conn, &peer);
            (peer, creds)
        }))
    }
}

pub(super) fn serve_connection(
    shared: &Shared,
    conn: OwnedFd,
    identity: Identity,
    after_first_request: &mut Option<impl FnOnce()>,
) -> Result<(), ChannelError> {
    let (peer, creds) = identity.0?;
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
    let creds = creds?;
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
    accept_hello(shared, conn)?;
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
    let mut msg = vec![0u8; MAX_REQUEST];
    let mut reply = vec![0u8; MAX_REPLY];
    let mut served = 0u32;
    let mut bursting = true;
    let mut recent_pause = 0u64;
    // Whether the client's last pause outlasted the longest spin.
    let mut sparse = false;
    // How long to spin for the next request (`None`: the first request's
    // wait, `FIRST_REQUEST_WAIT`).
    let mut spin_ns = None;
    let mut separation = CpuSeparation::default();
    loop {
        let waiting = Instant::now();
        let got = match spin_ns {
            None => end.requests.recv(&mut msg, &mut alive),
            Some(spin) => {
                // A client that pauses longer than any spin, through one
                // channel: a compiler between its headers, `git` between
                // its steps; not one that pauses a little (python between
                // its files, 72 -> 87 ms when joined at every spin that
                // ran out), nor the threads of one process, which would
                // queue behind one another on one CPU while another idles.
                let join = sparse && client.channels() == 1;
                next_request(
                    &mut end.requests,
                    &mut separation,
                    (spin, join),
                    &mut msg,
                    &mut alive,
                )
            }
        };
        let n = match got {
            Ok(n) => n,
            Err(shm_ring::RecvError::TimedOut) => {
                // Only the first wait has a timeout.
                if let Some(then) = after_first_request.take() {
                    then();
                }
                spin_ns = Some(request_spin(0));
                continue;
            }
            Err(shm_ring::RecvError::Corrupt) => return Err(ChannelError::Corrupt),
            Err(shm_ring::RecvError::BufferTooSmall { .. }) => return Err(ChannelError::Malformed),
            Err(_) => return Err(ChannelError::Gone),
        };
        let pause = waiting.elapsed().as_nanos() as u64;
        sparse = pause > SPIN_MAX_NS;
        // Within the spin it had (or would have had, on the client's CPU):
        // a busy client's.
        let quick = pause <= spin_ns.unwrap_or(SPIN_MAX_NS);
        recent_pause = (recent_pause / 2).max(if pause <= SPIN_MAX_NS { pause } else { 0 });
        served += 1;
        bursting &= served < STARTUP_REQUESTS && (served == 1 || pause <= SPIN_MAX_NS);
        spin_ns = Some(if bursting {
            SPIN_MAX_NS
        } else {
            request_spin(recent_pause)
        });
        separation.observe(end.requests.peer_cpu(), quick, client.channels() == 1);
        // The client may have given up on its first request (it then runs
        // the call through the kernel): never run it here as well.
        if served == 1 && !end.requests.claim() {
            return Err(ChannelError::Gone);
        }
        let start = Instant::now();
        let mut handlers = Handlers {
            store: &shared.store,
            client,
            mount_path: &shared.mount_path,
            kernel: shared.kernel.as_ref(),
            bulk: &mut SharedBulk(&mut end.bulk),
            transferred: Transferred::default(),
            client_alive: &client_alive,
            send_fd: &|fd| sock::send_with_fd(conn, proto::ops::KERNEL_OPEN_MESSAGE, fd),
            public: shared.public.as_deref(),
        };
        let done = proto::ops::dispatch(&mut handlers, &msg[..n], &mut reply)
            .map_err(|_| ChannelError::Malformed)?;
        let moved = handlers.transferred;
        let elapsed = start.elapsed();
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        record(&shared.metrics, &done, &reply[..done.len], moved, elapsed);
        match end.responses.send(&[&reply[..done.len]], &mut alive) {
            Ok(()) => {}
            Err(shm_ring::SendError::Corrupt) => return Err(ChannelError::Corrupt),
            Err(_) => return Err(ChannelError::Gone),
        }
        if let Some(then) = after_first_request.take() {
            then();
        }
    }
}
