//! A small `RUST_LOG`-style logger to stderr for the daemon.
//!
//! `RUST_LOG` holds comma-separated directives: a bare level (`debug`) sets
//! the default, `TARGET=LEVEL` (`fuser=warn`, `btfuse=debug`) sets it for
//! targets starting with TARGET (the daemon's own messages have target
//! `btfuse`). The default is `warn`: nothing is printed per request.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    default: LevelFilter,
    /// (target prefix, level), most specific first.
    rules: Vec<(String, LevelFilter)>,
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
        // One write per line, so lines of concurrent threads do not mix.
        let line = format!("btfuse: {level}: {}\n", record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Parses `RUST_LOG` directives into a default level and per-target rules;
/// unknown words are ignored.
fn parse(spec: &str) -> (LevelFilter, Vec<(String, LevelFilter)>) {
    let mut default = LevelFilter::Warn;
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

/// Installs the logger, configured from `RUST_LOG`.
pub fn init() {
    let (default, rules) = parse(&std::env::var("RUST_LOG").unwrap_or_default());
    let max = rules.iter().map(|r| r.1).chain([default]).max();
    // Leaked once: the logger lives as long as the process.
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { default, rules }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max.unwrap_or(LevelFilter::Warn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives_set_default_and_per_target_levels() {
        let (default, rules) = parse("info, fuser=error ,btfuse::ring=trace,bogus=loud,nonsense");
        assert_eq!(default, LevelFilter::Info);
        let logger = StderrLogger { default, rules };
        assert_eq!(logger.level_for("fuser::session"), LevelFilter::Error);
        assert_eq!(logger.level_for("btfuse::ring"), LevelFilter::Trace);
        assert_eq!(logger.level_for("btfuse"), LevelFilter::Info);
        assert_eq!(parse("").0, LevelFilter::Warn);
    }
}
