//! The request metrics and the daemon process's own figures in the
//! Prometheus text exposition format.

use std::fmt::Write as _;

use super::*;

/// Writes the request counters of `doors` (`(door label, figures)`) in the
/// Prometheus text format: `btfuse_requests_total{door,op,outcome}` and
/// the latency histogram `btfuse_request_duration_seconds{door,op}`, for
/// the operations that were called.
pub fn write_prometheus(doors: &[(&str, &DoorSnapshot)], out: &mut String) {
    let called = || {
        doors.iter().flat_map(|&(door, snap)| {
            snap.ops
                .iter()
                .filter(|o| o.hist.count() > 0)
                .map(move |o| (door, o))
        })
    };
    let _ = writeln!(
        out,
        "# HELP btfuse_requests_total Requests answered, by outcome (absent: ENOENT or ENODATA).\n\
         # TYPE btfuse_requests_total counter"
    );
    for (door, o) in called() {
        let ok = o.hist.count() - o.absent - o.errors;
        for (outcome, n) in [
            (Outcome::Ok, ok),
            (Outcome::Absent, o.absent),
            (Outcome::Error, o.errors),
        ] {
            let _ = writeln!(
                out,
                "btfuse_requests_total{{door=\"{door}\",op=\"{}\",outcome=\"{}\"}} {n}",
                o.name,
                outcome.label()
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP btfuse_request_duration_seconds Time in the store per request.\n\
         # TYPE btfuse_request_duration_seconds histogram"
    );
    for (door, o) in called() {
        let labels = format!("door=\"{door}\",op=\"{}\"", o.name);
        for bits in EXPORTED_BOUNDS {
            let ns = 1u64 << bits;
            let _ = writeln!(
                out,
                "btfuse_request_duration_seconds_bucket{{{labels},le=\"{:e}\"}} {}",
                ns as f64 / 1e9,
                o.hist.count_below(ns)
            );
        }
        let _ = writeln!(
            out,
            "btfuse_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {n}\n\
             btfuse_request_duration_seconds_sum{{{labels}}} {:e}\n\
             btfuse_request_duration_seconds_count{{{labels}}} {n}",
            o.total_ns as f64 / 1e9,
            n = o.hist.count()
        );
    }
}

/// Writes the standard `process_*` metrics of this process (CPU time,
/// memory, descriptors, start time) and `btfuse_build_info`.
pub fn write_process_metrics(out: &mut String) {
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    if let Some(p) = ProcStat::read() {
        metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        );
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        );
        metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.vsize as f64,
        );
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.rss_bytes as f64,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        metric(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            lim.rlim_cur as f64,
        );
    }
    let _ = writeln!(
        out,
        "# HELP btfuse_build_info The daemon's version (value 1).\n\
         # TYPE btfuse_build_info gauge\n\
         btfuse_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
}

/// What `/proc/self/stat` tells about this process, in the units the
/// `process_*` metrics use.
struct ProcStat {
    cpu_seconds: f64,
    start_time_seconds: f64,
    vsize: u64,
    rss_bytes: u64,
}

impl ProcStat {
    fn read() -> Option<ProcStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: field 3 (state) is index 0 here.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        // SAFETY: sysconf has no memory-safety preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let ticks = ticks.max(1) as f64;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        Some(ProcStat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            start_time_seconds: boot as f64 + field(22)? as f64 / ticks,
            vsize: field(23)?,
            rss_bytes: field(24)? * page.max(1) as u64,
        })
    }
}
