//! `btfuse`: the btfuse daemon and its command-line interface.
//!
//! ```text
//! btfuse mount MOUNTPOINT [--size BYTES] [--background] [--threads N] [--metrics ADDR]
//!                         [--max-channels N]
//! btfuse umount MOUNTPOINT
//! btfuse stats MOUNTPOINT [--json]
//! btfuse run -- CMD ARGS...
//! ```

mod client;
mod creds;
mod daemon;
mod fuse_fs;
mod handlers;
mod logger;
mod metrics;
mod mountinfo;
mod registry;
mod resolve;
mod ring_server;
mod run;
mod size;
mod sock;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An in-memory filesystem served over FUSE, with a shared-memory fast path
/// for programs that load `libbtfuse.so`.
#[derive(Parser)]
#[command(name = "btfuse", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount a new, empty in-memory filesystem and serve it until unmounted
    /// (SIGINT, SIGTERM or `btfuse umount`).
    Mount {
        /// Existing empty directory to mount on.
        mountpoint: PathBuf,
        /// Capacity for file data: BYTES or with a K/M/G/T suffix (powers of 1024).
        #[arg(long, default_value = "1G", value_parser = size::parse_size)]
        size: u64,
        /// Return once the mount is usable and keep serving in the background.
        #[arg(long)]
        background: bool,
        /// Kernel request worker threads (default: number of CPUs, at least 2).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Serve `btfuse stats` figures in the Prometheus text format over
        /// HTTP on this loopback address (e.g. 127.0.0.1:9477).
        #[arg(long, value_name = "ADDR", value_parser = parse_loopback)]
        metrics: Option<std::net::SocketAddr>,
        /// Most fast-path channels served at once (each holds a daemon
        /// thread); a user other than root may hold half of them. Past the
        /// limit, new clients' calls go through the kernel.
        #[arg(long, value_name = "N", default_value_t = client::ChannelLimits::DEFAULT_TOTAL as u32,
              value_parser = clap::value_parser!(u32).range(1..=65536))]
        max_channels: u32,
    },
    /// Unmount a btfuse filesystem; its daemon then exits.
    Umount {
        /// The mountpoint given to `btfuse mount`.
        mountpoint: PathBuf,
        /// Detach now even if busy; the daemon exits when the last user leaves.
        #[arg(long)]
        lazy: bool,
    },
    /// Print a running daemon's statistics: store, clients, and per door
    /// (FUSE, fast path) request counts, latency percentiles and bytes.
    Stats {
        /// The mountpoint given to `btfuse mount`.
        mountpoint: PathBuf,
        /// One JSON object instead of the human report.
        #[arg(long)]
        json: bool,
    },
    /// Run a program with the fast path (libbtfuse.so) preloaded.
    Run {
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
}

/// `--metrics ADDR`: a socket address on the loopback interface only (the
/// figures are not secret, but nothing else of the daemon faces a network).
fn parse_loopback(s: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = s.parse().map_err(|e| format!("{e}"))?;
    if !addr.ip().is_loopback() {
        return Err("only a loopback address (127.0.0.1:PORT or [::1]:PORT) is allowed".into());
    }
    Ok(addr)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount {
            mountpoint,
            size,
            background,
            threads,
            metrics,
            max_channels,
        } => {
            logger::init();
            let threads = threads
                .map(usize::from)
                .unwrap_or_else(daemon::default_threads);
            daemon::mount(&daemon::MountArgs {
                mountpoint,
                size,
                background,
                threads,
                metrics,
                channels: client::ChannelLimits::new(max_channels as usize),
            })
        }
        Command::Umount { mountpoint, lazy } => daemon::umount(&mountpoint, lazy),
        Command::Stats { mountpoint, json } => {
            let format = if json {
                ring_server::StatsFormat::Json
            } else {
                ring_server::StatsFormat::Text
            };
            daemon::stats(&mountpoint, format).map(|text| print!("{text}"))
        }
        Command::Run { command } => {
            let e = run::run(&command);
            eprintln!("btfuse: {e}");
            // Like env(1): 127 when the command cannot be found, 126 otherwise.
            let missing = matches!(&e, run::RunError::Exec(_, io) if io.kind() == std::io::ErrorKind::NotFound);
            return ExitCode::from(if missing { 127 } else { 126 });
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("btfuse: {e}");
            ExitCode::FAILURE
        }
    }
}
