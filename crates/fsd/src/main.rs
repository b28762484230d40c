//! `btfuse`: the btfuse daemon and its command-line interface.
//!
//! ```text
//! btfuse mount MOUNTPOINT [--size BYTES] [--background] [--threads N] [--metrics ADDR]
//!                         [--max-channels N] [--log FILE] [-o OPTIONS]
//! btfuse SOURCE MOUNTPOINT [-o OPTIONS]     (as mount.fuse3 runs it: backgrounds)
//!                         [--from DIR | --image FILE] [--save-on-exit FILE]
//! btfuse umount MOUNTPOINT
//! btfuse save MOUNTPOINT FILE
//! btfuse stats MOUNTPOINT [--json]
//! btfuse run -- CMD ARGS...
//! ```

mod access;
mod cpu_affinity;
mod creds;
mod daemon;
mod fs_core;
mod fuse_door;
mod fusermount;
mod image;
mod logger;
mod metrics;
mod metrics_http;
mod mountinfo;
mod notify;
mod options;
mod registry;
mod ring_door;
mod run;
mod size;
mod sock;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use options::MountOptions;

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
        /// Existing directory to mount on; like tmpfs, a non-empty one is
        /// mounted over (its files are hidden until the unmount).
        mountpoint: PathBuf,
        /// Capacity for file data: BYTES, with K/M/G/T or KiB..TiB (powers of
        /// 1024), KB/MB/GB/TB (powers of 1000), or N% of RAM [default: 1G].
        #[arg(long, value_parser = size::parse_size)]
        size: Option<size::SizeSpec>,
        /// Most inodes (tmpfs's nr_inodes; 0 = no limit). Default: one per
        /// 4 KiB of --size, at least 1024.
        #[arg(long, value_name = "N")]
        nr_inodes: Option<u64>,
        /// Return once the mount is usable and keep serving in the background.
        #[arg(long)]
        background: bool,
        /// Kernel request worker threads (default: number of CPUs, at least 2).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Serve `btfuse stats` figures in the Prometheus text format over
        /// HTTP on this loopback address (e.g. 127.0.0.1:9477); an address
        /// that cannot be bound fails the mount.
        #[arg(long, value_name = "ADDR", value_parser = parse_loopback)]
        metrics: Option<std::net::SocketAddr>,
        /// Most fast-path channels served at once (each holds a daemon
        /// thread); an eighth is kept for root, and a user's share of the
        /// rest shrinks as more users hold channels, so no set of users can
        /// lock the others out. Past the limit, new clients' calls go
        /// through the kernel [default: 1024].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
        max_channels: Option<u32>,
        /// Append the daemon's log (timestamped, with levels) to FILE; kept
        /// after `--background` detaches (stderr then goes nowhere).
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
        /// Mount options, comma-separated (repeatable; see README): ro, rw,
        /// allow_other, noallow_other, default_permissions, noio_uring, uid=,
        /// gid=, mode=, size=, nr_inodes=, max_channels=, threads=, log=,
        /// metrics=, and the generic ones (nosuid, nodev, noexec, noatime...).
        #[arg(short = 'o', value_name = "OPTIONS")]
        options: Vec<String>,
        /// Start with a copy of this directory tree (data, links, special
        /// files, modes, owners, times, xattrs; holes stay holes).
        #[arg(long, value_name = "DIR", conflicts_with = "image")]
        from: Option<PathBuf>,
        /// Start with the tree of this image (`btfuse save`); a damaged
        /// image is refused and nothing is mounted.
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        /// Save an image of the tree here when the mount ends cleanly
        /// (`btfuse umount`, SIGTERM, SIGINT).
        #[arg(long, value_name = "FILE")]
        save_on_exit: Option<PathBuf>,
    },
    /// Save a consistent image of a mounted tree while it keeps serving.
    Save {
        /// The mountpoint given to `btfuse mount`.
        mountpoint: PathBuf,
        /// Image file to write (replaced only once the new one is complete).
        file: PathBuf,
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

/// Whether `name` is one of `btfuse`'s subcommands (or `help`).
fn is_subcommand(name: &str) -> bool {
    name == "help" || Cli::command().find_subcommand(name).is_some()
}

/// Runs `btfuse mount` with these options; the mount.fuse3 form always
/// backgrounds (mount(8) waits for it).
fn mount(
    mountpoint: PathBuf,
    options: MountOptions,
    background: bool,
    initial: daemon::Initial,
    save_on_exit: Option<PathBuf>,
) -> Result<(), String> {
    let log = logger::init(options.log.as_deref()).map_err(|e| e.to_string())?;
    daemon::mount(&daemon::MountArgs {
        mountpoint,
        options,
        background,
        log,
        initial,
        save_on_exit,
    })
    .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let result = match options::fstab_form(&args) {
        Some(Ok((mountpoint, list))) => {
            let mut options = MountOptions::default();
            match options.apply(&list) {
                Ok(()) => mount(mountpoint, options, true, daemon::Initial::Empty, None),
                Err(e) => Err(e.to_string()),
            }
        }
        Some(Err(usage)) => Err(format!(
            "{usage}\nusage: btfuse SOURCE MOUNTPOINT [-o OPTIONS]"
        )),
        None => run_cli(Cli::parse()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("btfuse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Mount {
            mountpoint,
            size,
            nr_inodes,
            background,
            threads,
            metrics,
            max_channels,
            log,
            options,
            from,
            image,
            save_on_exit,
        } => {
            let mut o = MountOptions {
                size,
                nr_inodes,
                threads,
                metrics,
                max_channels,
                log,
                ..MountOptions::default()
            };
            for list in &options {
                o.apply(list).map_err(|e| e.to_string())?;
            }
            let initial = match (from, image) {
                (Some(dir), _) => daemon::Initial::Dir(dir),
                (None, Some(file)) => daemon::Initial::Image(file),
                (None, None) => daemon::Initial::Empty,
            };
            let save_on_exit = save_on_exit.map(|f| std::path::absolute(&f).unwrap_or(f));
            mount(mountpoint, o, background, initial, save_on_exit)
        }
        Command::Save { mountpoint, file } => daemon::save(&mountpoint, &file)
            .map(|summary| println!("{summary}"))
            .map_err(|e| e.to_string()),
        Command::Umount { mountpoint, lazy } => {
            daemon::umount(&mountpoint, lazy).map_err(|e| e.to_string())
        }
        Command::Stats { mountpoint, json } => {
            let format = if json {
                ring_door::StatsFormat::Json
            } else {
                ring_door::StatsFormat::Text
            };
            daemon::stats(&mountpoint, format)
                .map(|text| print!("{text}"))
                .map_err(|e| e.to_string())
        }
        Command::Run { command } => {
            let e = run::run(&command);
            eprintln!("btfuse: {e}");
            // Like env(1): 127 when the command cannot be found, 126 otherwise.
            let missing = matches!(&e, run::RunError::Exec(_, io) if io.kind() == std::io::ErrorKind::NotFound);
            std::process::exit(if missing { 127 } else { 126 });
        }
    }
}
