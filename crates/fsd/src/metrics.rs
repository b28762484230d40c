//! Always-on request metrics for `btfuse stats`: for each front door (the
//! FUSE adapter and the fast-path ring server), per operation, a count, an
//! error count and a latency histogram, plus bytes read and written.
//!
//! A request's outcome is one of three (see [`Outcome`]): answered, answered
//! "does not exist" (`ENOENT`, `ENODATA`: a lookup of a name that is not
//! there is routine, not a failure) or failed with any other errno; only
//! the last counts as an error.
//!
//! Cheap enough for every request: recording is a few relaxed atomic
//! increments into fixed arrays (no lock, no allocation). The arrays are
//! sharded: each thread picks one of [`SHARDS`] copies once, so the FUSE
//! workers and channel threads mostly touch cache lines of their own. A
//! snapshot sums the shards; it is not atomic across counters (a request
//! recorded meanwhile may show in one figure and not yet in another).
//!
//! Latencies go into log-linear buckets: exact below 4 ns, then four
//! buckets per power of two (each at most 25 % wide relative to its lower
//! bound), so a percentile is within ~12 % of the true value.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

mod prometheus;
pub use prometheus::{write_process_metrics, write_prometheus};

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 2;
const SUB: usize = 1 << SUB_BITS;
/// Latencies are clamped below 2^MAX_BITS ns (~18 minutes).
const MAX_BITS: u32 = 40;
/// Buckets per histogram.
pub const BUCKETS: usize = (MAX_BITS - SUB_BITS + 1) as usize * SUB;
/// Copies of every counter array; threads spread over them.
pub const SHARDS: usize = 4;

/// Bucket of a value (nanoseconds).
fn bucket_index(v: u64) -> usize {
    let v = v.min((1 << MAX_BITS) - 1);
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) as usize & (SUB - 1);
    (shift as usize + 1) * SUB + sub
}

/// Smallest value of bucket `i`, and the bucket's width.
fn bucket_range(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let shift = (i / SUB - 1) as u32;
    let sub = (i % SUB) as u64;
    ((SUB as u64 + sub) << shift, 1 << shift)
}

/// How a request ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with a result.
    Ok,
    /// Answered that the name or attribute does not exist (`ENOENT`,
    /// `ENODATA`): an expected answer, not an error.
    Absent,
    /// Failed with any other errno.
    Error,
}

impl Outcome {
    /// The outcome of a request answered with `errno` (0: success).
    pub fn of_errno(errno: i32) -> Outcome {
        match errno {
            0 => Outcome::Ok,
            libc::ENOENT | libc::ENODATA => Outcome::Absent,
            _ => Outcome::Error,
        }
    }

    /// Label value in the Prometheus output.
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Absent => "absent",
            Outcome::Error => "error",
        }
    }
}

/// Counters of one operation in one shard.
struct OpCounters {
    buckets: [AtomicU64; BUCKETS],
    absent: AtomicU64,
    errors: AtomicU64,
    total_ns: AtomicU64,
}

impl OpCounters {
    fn new() -> OpCounters {
        OpCounters {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            absent: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
        }
    }
}

/// One shard of a door's counters.
struct Shard {
    ops: Box<[OpCounters]>,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Round-robin shard assignment for new threads.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn my_shard() -> usize {
    SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        s.get()
    })
}

/// The metrics of one front door.
pub struct Door {
    names: &'static [&'static str],
    shards: Box<[Shard]>,
}

impl Door {
    /// A door whose operations are indexed by position in `names`.
    pub fn new(names: &'static [&'static str]) -> Door {
        let shards = (0..SHARDS)
            .map(|_| Shard {
                ops: names.iter().map(|_| OpCounters::new()).collect(),
                bytes_read: AtomicU64::new(0),
                bytes_written: AtomicU64::new(0),
            })
            .collect();
        Door { names, shards }
    }

    fn shard(&self) -> &Shard {
        &self.shards[my_shard()]
    }

    /// Records one request of operation `op` (index into the names; out of
    /// range counts as the last name) that took `elapsed` and was answered
    /// with `errno` (0: success).
    pub fn record(&self, op: usize, elapsed: Duration, errno: i32) {
        let shard = self.shard();
        let c = &shard.ops[op.min(shard.ops.len() - 1)];
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed everywhere: independent statistics, no ordering implied.
        c.buckets[bucket_index(ns)].fetch_add(1, Ordering::Relaxed);
        c.total_ns.fetch_add(ns, Ordering::Relaxed);
        match Outcome::of_errno(errno) {
            Outcome::Ok => {}
            Outcome::Absent => _ = c.absent.fetch_add(1, Ordering::Relaxed),
            Outcome::Error => _ = c.errors.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Counts bytes of file data read through this door.
    pub fn add_read(&self, bytes: u64) {
        self.shard().bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts bytes of file data written through this door.
    pub fn add_written(&self, bytes: u64) {
        self.shard()
            .bytes_written
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// Sums the shards.
    pub fn snapshot(&self) -> DoorSnapshot {
        let mut ops: Vec<OpSnapshot> = self
            .names
            .iter()
            .map(|&name| OpSnapshot {
                name,
                hist: Histogram::default(),
                absent: 0,
                errors: 0,
                total_ns: 0,
            })
            .collect();
        let (mut bytes_read, mut bytes_written) = (0, 0);
        for shard in self.shards.iter() {
            for (snap, c) in ops.iter_mut().zip(shard.ops.iter()) {
                for (dst, src) in snap.hist.counts.iter_mut().zip(c.buckets.iter()) {
                    *dst += src.load(Ordering::Relaxed);
                }
                snap.absent += c.absent.load(Ordering::Relaxed);
                snap.errors += c.errors.load(Ordering::Relaxed);
                snap.total_ns += c.total_ns.load(Ordering::Relaxed);
            }
            bytes_read += shard.bytes_read.load(Ordering::Relaxed);
            bytes_written += shard.bytes_written.load(Ordering::Relaxed);
        }
        DoorSnapshot {
            ops,
            bytes_read,
            bytes_written,
        }
    }
}

/// A latency histogram (nanoseconds), as summed by a snapshot.
#[derive(Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
        }
    }
}

impl Histogram {
    /// Adds one value.
    #[cfg(test)]
    fn add(&mut self, ns: u64) {
        self.counts[bucket_index(ns)] += 1;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q`-quantile (0 < q <= 1) in nanoseconds: the midpoint of the
    /// bucket holding the value of rank `ceil(q * count)`; 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket_range(i);
                return low + width / 2;
            }
        }
        unreachable!("rank is at most the count")
    }

    /// Values below `ns` nanoseconds, where `ns` is a bucket boundary (a
    /// power of two from 4 ns up): exact, not interpolated.
    fn count_below(&self, ns: u64) -> u64 {
        debug_assert!(ns.is_power_of_two() && ns >= SUB as u64);
        self.counts[..bucket_index(ns)].iter().sum()
    }
}

/// Upper bounds (`le`) of the exported latency histograms, in ns: powers
/// of two from 512 ns to ~8.6 s, which are boundaries of the daemon's own
/// buckets, so every exported count is exact: the requests that took less
/// than the bound (latencies are whole nanoseconds: at most bound - 1 ns;
/// one that took exactly the bound counts in the next).
const EXPORTED_BOUNDS: std::ops::RangeInclusive<u32> = 9..=33;

/// One operation's figures.
pub struct OpSnapshot {
    /// Operation name.
    pub name: &'static str,
    /// Latencies.
    pub hist: Histogram,
    /// Requests answered `ENOENT`/`ENODATA` ([`Outcome::Absent`]).
    pub absent: u64,
    /// Requests answered with any other error.
    pub errors: u64,
    /// Sum of latencies.
    pub total_ns: u64,
}

/// One door's figures.
pub struct DoorSnapshot {
    /// Every operation, in name order (also those never called).
    pub ops: Vec<OpSnapshot>,
    /// File data read through this door.
    pub bytes_read: u64,
    /// File data written through this door.
    pub bytes_written: u64,
}

impl DoorSnapshot {
    /// Requests of every operation.
    pub fn requests(&self) -> u64 {
        self.ops.iter().map(|o| o.hist.count()).sum()
    }

    /// Human table of the operations that were called.
    pub fn write_text(&self, title: &str, out: &mut String) {
        let _ = writeln!(
            out,
            "\n{title}: {} requests, {} read, {} written",
            self.requests(),
            human_bytes(self.bytes_read),
            human_bytes(self.bytes_written)
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>12} {:>9} {:>9} {:>10} {:>10} {:>10}",
            "op", "count", "absent", "errors", "mean", "p50", "p99"
        );
        for o in self.ops.iter() {
            let n = o.hist.count();
            if n == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "  {:<16} {:>12} {:>9} {:>9} {:>10} {:>10} {:>10}",
                o.name,
                n,
                o.absent,
                o.errors,
                human_ns(o.total_ns / n),
                human_ns(o.hist.percentile(0.50)),
                human_ns(o.hist.percentile(0.99)),
            );
        }
    }

    /// JSON object: `{"requests":N,"bytes_read":N,"bytes_written":N,
    /// "ops":{"NAME":{"count":N,"absent":N,"errors":N,"mean_ns":N,"p50_ns":N,
    /// "p99_ns":N}}}` (`absent`: ENOENT/ENODATA answers, not in `errors`)
    /// (operations that were called only).
    pub fn write_json(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"requests\":{},\"bytes_read\":{},\"bytes_written\":{},\"ops\":{{",
            self.requests(),
            self.bytes_read,
            self.bytes_written
        );
        let mut first = true;
        for o in self.ops.iter() {
            let n = o.hist.count();
            if n == 0 {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            // Names are fixed identifiers: no escaping needed.
            let _ = write!(
                out,
                "\"{}\":{{\"count\":{n},\"absent\":{},\"errors\":{},\"mean_ns\":{},\"p50_ns\":{},\"p99_ns\":{}}}",
                o.name,
                o.absent,
                o.errors,
                o.total_ns / n,
                o.hist.percentile(0.50),
                o.hist.percentile(0.99),
            );
        }
        out.push_str("}}");
    }
}

/// `1.5 µs`, `230 ns`, `12 ms`.
pub fn human_ns(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

/// `512 B`, `4.0 KiB`, `1.5 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

macro_rules! fuse_ops {
    ($($variant:ident = $name:literal,)*) => {
        /// Operations of the FUSE door.
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub enum FuseOp {
            $(
                #[allow(missing_docs)]
                $variant,
            )*
        }

        /// Names of [`FuseOp`], in order.
        pub const FUSE_OP_NAMES: &[&str] = &[$($name),*];
    };
}

fuse_ops! {
    Lookup = "lookup",
    Forget = "forget",
    Getattr = "getattr",
    Setattr = "setattr",
    Readlink = "readlink",
    Mknod = "mknod",
    Mkdir = "mkdir",
    Unlink = "unlink",
    Rmdir = "rmdir",
    Symlink = "symlink",
    Rename = "rename",
    Link = "link",
    Open = "open",
    Read = "read",
    Write = "write",
    Flush = "flush",
    Release = "release",
    Fsync = "fsync",
    Opendir = "opendir",
    Readdir = "readdir",
    Readdirplus = "readdirplus",
    Releasedir = "releasedir",
    Fsyncdir = "fsyncdir",
    Statfs = "statfs",
    Setxattr = "setxattr",
    Getxattr = "getxattr",
    Listxattr = "listxattr",
    Removexattr = "removexattr",
    Access = "access",
    Create = "create",
    Fallocate = "fallocate",
    Lseek = "lseek",
    CopyFileRange = "copy_file_range",
    Ioctl = "ioctl",
}

/// Everything the daemon measures about requests.
pub struct Metrics {
    /// The kernel (FUSE) door.
    pub fuse: Door,
    /// The fast-path (shared-memory ring) door.
    pub ring: Door,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            fuse: Door::new(FUSE_OP_NAMES),
            ring: Door::new(proto::ops::OP_NAMES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_without_gaps() {
        let mut next = 0;
        for i in 0..BUCKETS {
            let (low, width) = bucket_range(i);
            assert_eq!(low, next, "bucket {i}");
            assert_eq!(bucket_index(low), i);
            assert_eq!(bucket_index(low + width - 1), i);
            // At most 25 % wide relative to the lower bound.
            assert!(low < SUB as u64 || width * 4 <= low, "bucket {i}");
            next = low + width;
        }
        assert_eq!(next, 1 << MAX_BITS);
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_an_eighth_of_the_truth() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.add(v * 100);
        }
        assert_eq!(h.count(), 10_000);
        for (q, truth) in [(0.5, 500_000.0), (0.99, 990_000.0), (1.0, 1_000_000.0)] {
            let p = h.percentile(q) as f64;
            assert!((p - truth).abs() / truth <= 0.125, "q={q}: {p} vs {truth}");
        }
    }

    #[test]
    fn percentiles_of_small_and_empty_histograms() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(0.5), 0);
        h.add(3);
        assert_eq!(h.percentile(0.5), 3);
        assert_eq!(h.percentile(0.99), 3);
        // One slow outlier in 100 shows at p99 but not at p50.
        let mut h = Histogram::default();
        for _ in 0..99 {
            h.add(1_000);
        }
        h.add(1_000_000);
        assert!(h.percentile(0.5) < 1_200);
        assert!(h.percentile(0.99) < 1_200);
        assert!(h.percentile(1.0) > 900_000);
    }

    #[test]
    fn door_sums_shards_counts_errors_and_bytes() {
        let door = Door::new(FUSE_OP_NAMES);
        std::thread::scope(|s| {
            for _ in 0..(SHARDS * 2) {
                s.spawn(|| {
                    for _ in 0..100 {
                        door.record(FuseOp::Read as usize, Duration::from_micros(2), 0);
                    }
                    door.record(
                        FuseOp::Open as usize,
                        Duration::from_micros(50),
                        libc::EACCES,
                    );
                    door.record(
                        FuseOp::Lookup as usize,
                        Duration::from_micros(5),
                        libc::ENOENT,
                    );
                    door.add_read(4096);
                    door.add_written(1);
                });
            }
        });
        let snap = door.snapshot();
        let read = &snap.ops[FuseOp::Read as usize];
        assert_eq!(read.name, "read");
        assert_eq!(read.hist.count(), 100 * SHARDS as u64 * 2);
        assert_eq!(read.errors, 0);
        let p50 = read.hist.percentile(0.5);
        assert!((1_800..=2_300).contains(&p50), "{p50}");
        assert_eq!(snap.ops[FuseOp::Open as usize].errors, SHARDS as u64 * 2);
        assert_eq!(snap.bytes_read, 4096 * SHARDS as u64 * 2);
        assert_eq!(snap.bytes_written, SHARDS as u64 * 2);
        let lookup = &snap.ops[FuseOp::Lookup as usize];
        assert_eq!((lookup.absent, lookup.errors), (SHARDS as u64 * 2, 0));
        assert_eq!(snap.requests(), 102 * SHARDS as u64 * 2);
        let mut json = String::new();
        snap.write_json(&mut json);
        assert!(json.starts_with("{\"requests\":816,"), "{json}");
        assert!(
            json.contains("\"open\":{\"count\":8,\"absent\":0,\"errors\":8,"),
            "{json}"
        );
        assert!(
            json.contains("\"lookup\":{\"count\":8,\"absent\":8,\"errors\":0,"),
            "{json}"
        );
        let mut text = String::new();
        snap.write_text("FUSE", &mut text);
        assert!(text.contains("read") && !text.contains("getattr"), "{text}");
    }

    #[test]
    fn out_of_range_ops_count_as_the_last_name() {
        let door = Door::new(proto::ops::OP_NAMES);
        door.record(9_999, Duration::from_nanos(10), libc::EIO);
        let snap = door.snapshot();
        assert_eq!(snap.ops.last().unwrap().name, "unknown");
        assert_eq!(snap.ops.last().unwrap().hist.count(), 1);
    }

    #[test]
    fn exported_histograms_are_cumulative_and_exact() {
        let door = Door::new(FUSE_OP_NAMES);
        for ns in [100, 512, 513, 1_000, 4_000_000, 20_000_000_000] {
            door.record(FuseOp::Getattr as usize, Duration::from_nanos(ns), 0);
        }
        door.record(
            FuseOp::Lookup as usize,
            Duration::from_nanos(1),
            libc::ENOENT,
        );
        let snap = door.snapshot();
        let mut out = String::new();
        write_prometheus(&[("fuse", &snap)], &mut out);
        let bucket = |le: &str| {
            let key = format!("btfuse_request_duration_seconds_bucket{{door=\"fuse\",op=\"getattr\",le=\"{le}\"}} ");
            let line = out
                .lines()
                .find(|l| l.starts_with(&key))
                .unwrap_or_else(|| panic!("{key}\n{out}"));
            line[key.len()..].parse::<u64>().unwrap()
        };
        assert_eq!(
            bucket("5.12e-7"),
            1,
            "100 ns is below 512 ns, 512 ns is not"
        );
        assert_eq!(bucket("1.024e-6"), 4);
        assert_eq!(bucket("4.194304e-3"), 5);
        assert_eq!(bucket("8.589934592e0"), 5);
        assert_eq!(bucket("+Inf"), 6);
        assert!(
            out.contains("btfuse_requests_total{door=\"fuse\",op=\"lookup\",outcome=\"absent\"} 1")
        );
        assert!(
            out.contains("btfuse_requests_total{door=\"fuse\",op=\"lookup\",outcome=\"error\"} 0")
        );
        assert!(
            out.contains("btfuse_requests_total{door=\"fuse\",op=\"getattr\",outcome=\"ok\"} 6")
        );
        let mut process = String::new();
        write_process_metrics(&mut process);
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
            "btfuse_build_info{version=",
        ] {
            assert!(
                process.lines().any(|l| l.starts_with(name)),
                "{name}\n{process}"
            );
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human_ns(999), "999 ns");
        assert_eq!(human_ns(1_500), "1.5 µs");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
