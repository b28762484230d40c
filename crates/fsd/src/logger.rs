//! A small `RUST_LOG`-style logger for the daemon: to stderr, or appended
//! to a file (`--log FILE`), one line per message with a UTC timestamp and
//! the level (`2026-11-27T05:27:01.123Z btfuse: info: serving /mnt/fast`).
//!
//! `RUST_LOG` holds comma-separated directives: a bare level (`debug`) sets
//! the default, `TARGET=LEVEL` (`fuser=warn`, `btfuse=debug`) sets it for
//! targets starting with TARGET (the daemon's own messages have target
//! `btfuse`). The default is `warn` on stderr and `info` in a log file
//! (start, metrics address, signals, unmount): nothing is logged per request.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    default: LevelFilter,
    /// (target prefix, level), most specific first.
    rules: Vec<(String, LevelFilter)>,
    /// `--log FILE`, opened for appending; stderr when `None`.
    file: Option<File>,
}

impl StderrLogger {
    fn level_for(&self, target: &str) -> LevelFilter {
        self.rules
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map_or(self.default, |&(_, level)| level)
    }
}

impl Log for StderrLogger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.level() <= self.level_for(meta.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        let line = format!(
            "{} btfuse: {level}: {}\n",
            utc_timestamp(SystemTime::now()),
            record.args()
        );
        // One write per line, so lines of concurrent threads do not mix
        // (O_APPEND keeps them whole in a file shared with other writers).
        let _ = match &self.file {
            Some(f) => (&mut &*f).write_all(line.as_bytes()),
            None => io::stderr().lock().write_all(line.as_bytes()),
        };
    }

    fn flush(&self) {}
}

/// Parses `RUST_LOG` directives into a default level and per-target rules;
/// unknown words are ignored.
fn parse(spec: &str, mut default: LevelFilter) -> (LevelFilter, Vec<(String, LevelFilter)>) {
    let mut rules = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((target, level)) => {
                if let Ok(level) = level.trim().parse() {
                    rules.push((target.trim().replace('-', "_"), level));
                }
            }
            None => {
                if let Ok(level) = part.parse() {
                    default = level;
                }
            }
        }
    }
    rules.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    (default, rules)
}

/// `2026-11-27T05:27:01.123Z` (UTC, milliseconds).
fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Installs the logger, configured from `RUST_LOG`, writing to `file`
/// (created if needed, appended to) or to stderr. Returns the open log
/// file, which `--background` puts on the daemon's stderr so that panics
/// land there too.
pub fn init(file: Option<&Path>) -> io::Result<Option<File>> {
    let file = file
        .map(|path| {
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot open log file {}: {e}", path.display()),
                    )
                })
        })
        .transpose()?;
    let quiet = if file.is_some() {
        LevelFilter::Info
    } else {
        LevelFilter::Warn
    };
    let (default, rules) = parse(&std::env::var("RUST_LOG").unwrap_or_default(), quiet);
    let max = rules.iter().map(|r| r.1).chain([default]).max();
    let writer = file.as_ref().map(File::try_clone).transpose()?;
    // Leaked once: the logger lives as long as the process.
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger {
        default,
        rules,
        file: writer,
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max.unwrap_or(quiet));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives_set_default_and_per_target_levels() {
        let (default, rules) = parse(
            "info, fuser=error ,btfuse::ring=trace,bogus=loud,nonsense",
            LevelFilter::Warn,
        );
        assert_eq!(default, LevelFilter::Info);
        let logger = StderrLogger {
            default,
            rules,
            file: None,
        };
        assert_eq!(logger.level_for("fuser::session"), LevelFilter::Error);
        assert_eq!(logger.level_for("btfuse::ring"), LevelFilter::Trace);
        assert_eq!(logger.level_for("btfuse"), LevelFilter::Info);
        assert_eq!(parse("", LevelFilter::Warn).0, LevelFilter::Warn);
        assert_eq!(parse("", LevelFilter::Info).0, LevelFilter::Info);
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let t = |s: u64, ms: u64| UNIX_EPOCH + std::time::Duration::from_millis(s * 1000 + ms);
        assert_eq!(utc_timestamp(t(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_timestamp(t(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(
            utc_timestamp(t(1_795_757_221, 123)),
            "2026-11-27T05:27:01.123Z"
        );
    }
}
