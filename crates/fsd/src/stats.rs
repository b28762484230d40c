//! The daemon's statistics as reports: `btfuse stats` text and JSON, and
//! the Prometheus text format (`--metrics`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use inode_store::Store;

use crate::fs_core::clients::Clients;
use crate::metrics::{human_bytes, Metrics};
use crate::ring_door::Counters;

/// What the reports are made of: the daemon's parts, borrowed.
pub struct Sources<'a> {
    /// The store (usage figures).
    pub store: &'a Store,
    /// The fast path's clients and their limits.
    pub clients: &'a Clients,
    /// The ring door's channel counters.
    pub channels: &'a Counters,
    /// Per-door request metrics.
    pub metrics: &'a Metrics,
    /// When the daemon started serving.
    pub started: Instant,
}

/// The figures shared by all report formats.
struct StatsFigures {
    usage: inode_store::Usage,
    clients: usize,
    handles: usize,
    rss_bytes: Option<u64>,
    uptime: Duration,
    fuse: crate::metrics::DoorSnapshot,
    ring: crate::metrics::DoorSnapshot,
}

fn stats_figures(shared: &Sources<'_>) -> StatsFigures {
    let (clients, handles) = shared.clients.summary();
    StatsFigures {
        usage: shared.store.usage(),
        clients,
        handles,
        rss_bytes: rss_bytes(),
        uptime: shared.started.elapsed(),
        fuse: shared.metrics.fuse.snapshot(),
        ring: shared.metrics.ring.snapshot(),
    }
}

/// Resident set size of this process.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = kib.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The `btfuse stats` report.
pub fn text(shared: &Sources<'_>) -> String {
    let f = stats_figures(shared);
    let u = &f.usage;
    let c = &shared.channels;
    let bytes = |blocks: u64| human_bytes(blocks * inode_store::BLOCK_SIZE as u64);
    let mut out = format!(
        "uptime                {}s\n\
         inodes                {}\n\
         data blocks used      {} ({} of {}, {} free)\n\
         pool slabs mapped     {} (+{} idle, unmapped after {}s)\n\
         open handles (all)    {}\n\
         fast-path clients     {}\n\
         fast-path channels    {}\n\
         fast-path handles     {}\n\
         fast-path requests    {}\n\
         channels rejected     {}\n\
         channels refused      {} (limit: {} in all, {} kept for root)\n\
         daemon RSS            {}\n",
        f.uptime.as_secs(),
        u.inodes,
        u.used_blocks,
        bytes(u.used_blocks),
        bytes(u.capacity_blocks),
        bytes(u.capacity_blocks.saturating_sub(u.used_blocks)),
        u.slabs_mapped,
        u.slabs_idle,
        inode_store::IDLE_DECAY.as_secs(),
        u.open_handles,
        f.clients,
        c.channels.load(Ordering::Relaxed),
        f.handles,
        c.requests.load(Ordering::Relaxed),
        c.rejected.load(Ordering::Relaxed),
        c.refused.load(Ordering::Relaxed),
        shared.clients.limits().total,
        shared.clients.limits().root_reserve,
        f.rss_bytes.map_or_else(|| "?".into(), human_bytes),
    );
    if let Some(line) = crate::image::PROGRESS.line() {
        out.push_str(&format!("image                 {line}\n"));
    }
    f.fuse.write_text("FUSE door", &mut out);
    f.ring.write_text("fast-path door", &mut out);
    out
}

/// The `btfuse stats --json` report: one JSON object.
pub fn json(shared: &Sources<'_>) -> String {
    let f = stats_figures(shared);
    let u = &f.usage;
    let c = &shared.channels;
    let mut out = format!(
        "{{\"uptime_s\":{},\"inodes\":{},\"block_size\":{},\"blocks_used\":{},\
         \"blocks_capacity\":{},\"slabs_mapped\":{},\"slabs_idle\":{},\"open_handles\":{},\
         \"clients\":{},\"channels\":{},\"fast_path_handles\":{},\
         \"channels_rejected\":{},\"channels_refused\":{},\"rss_bytes\":{},\"fuse\":",
        f.uptime.as_secs(),
        u.inodes,
        inode_store::BLOCK_SIZE,
        u.used_blocks,
        u.capacity_blocks,
        u.slabs_mapped,
        u.slabs_idle,
        u.open_handles,
        f.clients,
        c.channels.load(Ordering::Relaxed),
        f.handles,
        c.rejected.load(Ordering::Relaxed),
        c.refused.load(Ordering::Relaxed),
        f.rss_bytes.map_or_else(|| "null".into(), |b| b.to_string()),
    );
    f.fuse.write_json(&mut out);
    out.push_str(",\"fast_path\":");
    f.ring.write_json(&mut out);
    match crate::image::PROGRESS.line() {
        Some(line) => out.push_str(&format!(",\"image\":\"{line}\"}}\n")),
        None => out.push_str(",\"image\":null}\n"),
    }
    out
}

/// The statistics in the Prometheus text exposition format.
pub fn prometheus(shared: &Sources<'_>) -> String {
    use std::fmt::Write as _;
    let f = stats_figures(shared);
    let u = &f.usage;
    let c = &shared.channels;
    let block = inode_store::BLOCK_SIZE as u64;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP btfuse_{name} {help}\n# TYPE btfuse_{name} gauge\nbtfuse_{name} {value}\n"
        );
    };
    gauge("inodes", "Inodes in the store.", u.inodes);
    gauge(
        "data_used_bytes",
        "File data held in pool blocks.",
        u.used_blocks * block,
    );
    gauge(
        "data_capacity_bytes",
        "Capacity for file data (--size).",
        u.capacity_blocks * block,
    );
    gauge(
        "pool_slabs_mapped",
        "Pool slabs currently mapped.",
        u.slabs_mapped,
    );
    gauge(
        "open_handles",
        "Open file and directory handles.",
        u.open_handles,
    );
    gauge(
        "fast_path_clients",
        "Processes connected to the fast path.",
        f.clients as u64,
    );
    gauge(
        "fast_path_channels",
        "Open fast-path channels.",
        c.channels.load(Ordering::Relaxed),
    );
    gauge(
        "resident_memory_bytes",
        "Daemon RSS.",
        f.rss_bytes.unwrap_or(0),
    );
    gauge(
        "uptime_seconds",
        "Seconds since the daemon started serving.",
        f.uptime.as_secs(),
    );
    let _ = write!(
        out,
        "# HELP btfuse_fast_path_channels_rejected_total Channels closed for a malformed request.\n\
         # TYPE btfuse_fast_path_channels_rejected_total counter\n\
         btfuse_fast_path_channels_rejected_total {}\n\
         # HELP btfuse_fast_path_channels_refused_total Channels refused by the channel limits.\n\
         # TYPE btfuse_fast_path_channels_refused_total counter\n\
         btfuse_fast_path_channels_refused_total {}\n",
        c.rejected.load(Ordering::Relaxed),
        c.refused.load(Ordering::Relaxed)
    );
    let doors = [("fuse", &f.fuse), ("fast_path", &f.ring)];
    for (metric, help) in [
        ("read_bytes_total", "File data read, per door."),
        ("written_bytes_total", "File data written, per door."),
    ] {
        let _ = writeln!(
            out,
            "# HELP btfuse_{metric} {help}\n# TYPE btfuse_{metric} counter"
        );
        for (door, snap) in doors {
            let v = if metric.starts_with("read") {
                snap.bytes_read
            } else {
                snap.bytes_written
            };
            let _ = writeln!(out, "btfuse_{metric}{{door=\"{door}\"}} {v}");
        }
    }
    crate::metrics::write_prometheus(&doors, &mut out);
    crate::metrics::write_process_metrics(&mut out);
    out
}
