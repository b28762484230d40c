//! `-o` mount options, as `mount -o`, `/etc/fstab` and `mount.fuse3` pass
//! them (`btfuse SOURCE MOUNTPOINT -o ro,size=4G,mode=1777`).
//!
//! Options are applied in order onto a [`MountOptions`] that the
//! command-line flags filled first, so a later value wins, as with
//! mount(8). The generic mount flags (`ro`, `nosuid`, `noatime`, ...) become
//! `MS_*` flags of the mount; the words mount(8) and fstab use for
//! themselves (`defaults`, `noauto`, `user`, `_netdev`, `x-*`, ...) are
//! accepted and ignored; anything else is an error naming the option.

use std::fmt;
use std::path::PathBuf;

use crate::size::{parse_size, SizeSpec};

/// Everything `-o` (and the matching command-line flags) can set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `size=`: capacity for file data (default 1 GiB).
    pub size: Option<SizeSpec>,
    /// `nr_inodes=`: most inodes the store may hold.
    pub nr_inodes: Option<u64>,
    /// `max_channels=`: most fast-path channels served at once.
    pub max_channels: Option<u32>,
    /// `threads=`: FUSE worker threads.
    pub threads: Option<u16>,
    /// `uid=`: owner of the root directory (default: the mounting user).
    pub root_uid: Option<u32>,
    /// `gid=`: group of the root directory (default: the mounting group).
    pub root_gid: Option<u32>,
    /// `mode=`: permission bits of the root directory (default 0755).
    pub root_mode: Option<u32>,
    /// `allow_other` / `noallow_other`: whether users other than the one
    /// who mounted may use the mount (default: yes for root, no otherwise).
    pub allow_other: Option<bool>,
    /// `default_permissions` / `nodefault_permissions`: whether the kernel
    /// checks permissions too (the store always does).
    pub default_permissions: bool,
    /// `io_uring` / `noio_uring`: whether the FUSE door takes requests
    /// through the kernel's per-CPU io_uring queues where the kernel offers
    /// them (`fuse.enable_uring=1`; default yes).
    pub io_uring: bool,
    /// `MS_*` flags of the mount (`ro`, `nosuid`, `nodev`, `noexec`, ...).
    pub flags: libc::c_ulong,
    /// `log=FILE`: where the daemon's log goes.
    pub log: Option<PathBuf>,
    /// `metrics=ADDR`: loopback address of the Prometheus endpoint.
    pub metrics: Option<std::net::SocketAddr>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            size: None,
            nr_inodes: None,
            max_channels: None,
            threads: None,
            root_uid: None,
            root_gid: None,
            root_mode: None,
            allow_other: None,
            default_permissions: true,
            io_uring: true,
            flags: 0,
            log: None,
            metrics: None,
        }
    }
}

impl MountOptions {
    /// Whether the mount is read-only (`ro`).
    pub fn read_only(&self) -> bool {
        self.flags & libc::MS_RDONLY != 0
    }

    /// Applies a comma-separated option list, in order.
    pub fn apply(&mut self, list: &str) -> Result<(), OptionError> {
        for opt in list.split(',').filter(|o| !o.is_empty()) {
            self.apply_one(opt)?;
        }
        Ok(())
    }

    fn apply_one(&mut self, opt: &str) -> Result<(), OptionError> {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let bad = |why: &str| OptionError::BadValue(opt.to_string(), why.to_string());
        if let Some(value) = value {
            match name {
                "size" => self.size = Some(parse_size(value).map_err(|e| bad(&e.to_string()))?),
                "nr_inodes" => match parse_size(value) {
                    Ok(SizeSpec::Bytes(n)) => self.nr_inodes = Some(n),
                    _ => return Err(bad("expected a count, optionally with K, M or G")),
                },
                "max_channels" => {
                    self.max_channels =
                        Some(number(value, 1, 65536).ok_or_else(|| bad("expected 1 to 65536"))?)
                }
                "threads" => {
                    self.threads =
                        Some(number(value, 1, 256).ok_or_else(|| bad("expected 1 to 256"))?)
                }
                "uid" => {
                    self.root_uid = Some(id(value).ok_or_else(|| bad("expected a numeric uid"))?)
                }
                "gid" => {
                    self.root_gid = Some(id(value).ok_or_else(|| bad("expected a numeric gid"))?)
                }
                "mode" => {
                    let mode = u32::from_str_radix(value, 8)
                        .ok()
                        .filter(|&m| m <= 0o7777)
                        .ok_or_else(|| bad("expected octal permission bits, e.g. 1777"))?;
                    self.root_mode = Some(mode);
                }
                "log" if !value.is_empty() => self.log = Some(PathBuf::from(value)),
                "metrics" => {
                    self.metrics = Some(crate::parse_loopback(value).map_err(|e| bad(&e))?)
                }
                // Named by mount(8), fstab or mount.fuse3 for themselves.
                "comment" | "fsname" | "subtype" => {}
                _ if name.starts_with("x-") => {}
                _ => return Err(OptionError::Unknown(opt.to_string())),
            }
            return Ok(());
        }
        match name {
            "allow_other" => self.allow_other = Some(true),
            "noallow_other" => self.allow_other = Some(false),
            "default_permissions" => self.default_permissions = true,
            "nodefault_permissions" => self.default_permissions = false,
            "io_uring" => self.io_uring = true,
            "noio_uring" => self.io_uring = false,
            // mount(8), fstab and mount.fuse3 words; `nonempty` is what
            // FUSE 2 wanted for a non-empty mountpoint (always allowed).
            "defaults" | "auto" | "noauto" | "user" | "nouser" | "users" | "owner" | "group"
            | "_netdev" | "nofail" | "nonempty" => {}
            _ if name.starts_with("x-") => {}
            _ => {
                let Some(&(_, set, clear)) = FLAGS.iter().find(|(n, _, _)| *n == name) else {
                    return Err(OptionError::Unknown(opt.to_string()));
                };
                self.flags = (self.flags & !clear) | set;
            }
        }
        Ok(())
    }

    /// The mount flags as fusermount3 and the kernel's `mount` options
    /// name them (`ro,nosuid,...`), for [`crate::fusermount`].
    pub fn flag_words(&self) -> Vec<&'static str> {
        FLAGS
            .iter()
            .filter(|&&(_, set, _)| set != 0 && self.flags & set == set)
            .map(|&(name, _, _)| name)
            .collect()
    }
}

/// Generic mount flags: (option, flags it sets, flags it clears).
const FLAGS: &[(&str, libc::c_ulong, libc::c_ulong)] = &[
    ("ro", libc::MS_RDONLY, 0),
    ("rw", 0, libc::MS_RDONLY),
    ("nosuid", libc::MS_NOSUID, 0),
    ("suid", 0, libc::MS_NOSUID),
    ("nodev", libc::MS_NODEV, 0),
    ("dev", 0, libc::MS_NODEV),
    ("noexec", libc::MS_NOEXEC, 0),
    ("exec", 0, libc::MS_NOEXEC),
    (
        "noatime",
        libc::MS_NOATIME,
        libc::MS_RELATIME | libc::MS_STRICTATIME,
    ),
    ("atime", 0, libc::MS_NOATIME),
    (
        "relatime",
        libc::MS_RELATIME,
        libc::MS_NOATIME | libc::MS_STRICTATIME,
    ),
    ("norelatime", 0, libc::MS_RELATIME),
    (
        "strictatime",
        libc::MS_STRICTATIME,
        libc::MS_NOATIME | libc::MS_RELATIME,
    ),
    ("nodiratime", libc::MS_NODIRATIME, 0),
    ("diratime", 0, libc::MS_NODIRATIME),
    ("sync", libc::MS_SYNCHRONOUS, 0),
    ("async", 0, libc::MS_SYNCHRONOUS),
    ("dirsync", libc::MS_DIRSYNC, 0),
];

fn number<T: TryFrom<u64>>(text: &str, min: u64, max: u64) -> Option<T> {
    let n: u64 = text.parse().ok()?;
    T::try_from(n).ok().filter(|_| (min..=max).contains(&n))
}

fn id(text: &str) -> Option<u32> {
    text.parse().ok().filter(|&n| n != u32::MAX)
}

/// A `-o` option that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// No such option.
    Unknown(String),
    /// A known option with a value it cannot take: (option, why).
    BadValue(String, String),
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown(o) => write!(f, "unknown mount option {o:?}"),
            OptionError::BadValue(o, why) => write!(f, "bad mount option {o:?}: {why}"),
        }
    }
}

impl std::error::Error for OptionError {}

/// The form `mount.fuse3` (and so `mount -t fuse.btfuse` and fstab) runs:
/// `btfuse SOURCE MOUNTPOINT [-o OPTS]...`; `None` when `args` (without
/// the program name) is not of that form.
pub fn fstab_form(args: &[std::ffi::OsString]) -> Option<Result<(PathBuf, String), String>> {
    let [source, mountpoint, rest @ ..] = args else {
        return None;
    };
    let source = source.to_str()?;
    if source.starts_with('-') || crate::is_subcommand(source) {
        return None;
    }
    let mut opts = String::new();
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let list = match arg.to_str() {
            Some("-o") => match rest.next().and_then(|a| a.to_str()) {
                Some(list) => list,
                None => return Some(Err("-o needs an option list".into())),
            },
            Some(a) if a.starts_with("-o") => &a[2..],
            _ => {
                return Some(Err(format!(
                    "unexpected argument {arg:?} (expected -o OPTIONS)"
                )))
            }
        };
        if !opts.is_empty() {
            opts.push(',');
        }
        opts.push_str(list);
    }
    Some(Ok((PathBuf::from(mountpoint), opts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(list: &str) -> MountOptions {
        let mut o = MountOptions::default();
        o.apply(list).unwrap();
        o
    }

    #[test]
    fn btfuse_options_set_their_fields() {
        let o = parsed("size=4G,nr_inodes=1k,max_channels=8,threads=3,uid=1000,gid=100,mode=1777");
        assert_eq!(o.size, Some(SizeSpec::Bytes(4 << 30)));
        assert_eq!(o.nr_inodes, Some(1024));
        assert_eq!(o.max_channels, Some(8));
        assert_eq!(o.threads, Some(3));
        assert_eq!(
            (o.root_uid, o.root_gid, o.root_mode),
            (Some(1000), Some(100), Some(0o1777))
        );
        assert_eq!(parsed("size=50%").size, Some(SizeSpec::PercentOfRam(50)));
        assert_eq!(
            parsed("log=/var/log/b.log").log,
            Some(PathBuf::from("/var/log/b.log"))
        );
        assert_eq!(
            parsed("metrics=127.0.0.1:9477").metrics,
            Some("127.0.0.1:9477".parse().unwrap())
        );
    }

    #[test]
    fn access_options_toggle_and_the_last_one_wins() {
        let o = MountOptions::default();
        assert_eq!(o.allow_other, None);
        assert!(o.default_permissions);
        assert_eq!(parsed("allow_other").allow_other, Some(true));
        assert_eq!(parsed("allow_other,noallow_other").allow_other, Some(false));
        assert!(!parsed("nodefault_permissions").default_permissions);
        assert!(o.io_uring);
        assert!(!parsed("noio_uring").io_uring);
        assert!(parsed("noio_uring,io_uring").io_uring);
        assert_eq!(
            parsed("size=1G,size=2G").size,
            Some(SizeSpec::Bytes(2 << 30))
        );
    }

    #[test]
    fn generic_flags_become_ms_flags() {
        let o = parsed("ro,nosuid,nodev,noexec,noatime");
        assert!(o.read_only());
        assert_eq!(
            o.flags,
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOATIME
        );
        assert_eq!(
            o.flag_words(),
            ["ro", "nosuid", "nodev", "noexec", "noatime"]
        );
        assert!(!parsed("ro,rw").read_only());
        assert_eq!(parsed("noatime,relatime").flags, libc::MS_RELATIME);
        assert_eq!(parsed("nosuid,suid,dev,exec").flags, 0);
    }

    #[test]
    fn words_of_mount_and_fstab_are_tolerated() {
        let o = parsed("defaults,rw,dev,suid,exec,auto,noauto,user,users,nouser,_netdev,nofail,\
                        x-systemd.requires=foo,comment=x,fsname=btfuse,subtype=btfuse,nonempty,relatime");
        assert_eq!(o.flags, libc::MS_RELATIME);
    }

    #[test]
    fn unknown_options_and_bad_values_are_named() {
        let mut o = MountOptions::default();
        let e = o.apply("ro,bogus").unwrap_err();
        assert_eq!(e, OptionError::Unknown("bogus".into()));
        assert_eq!(e.to_string(), "unknown mount option \"bogus\"");
        assert!(matches!(o.apply("bogus=1"), Err(OptionError::Unknown(n)) if n == "bogus=1"));
        for bad in [
            "size=lots",
            "size=0",
            "mode=999",
            "mode=17777",
            "uid=bob",
            "threads=0",
            "max_channels=70000",
            "nr_inodes=10%",
            "metrics=8.8.8.8:80",
            "log=",
        ] {
            let e = MountOptions::default().apply(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn the_mount_fuse_argv_form_is_recognised() {
        let v = |a: &[&str]| {
            a.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        assert_eq!(
            fstab_form(&v(&[
                "btfuse",
                "/mnt/fast",
                "-o",
                "rw,size=4G",
                "-oallow_other"
            ])),
            Some(Ok((
                PathBuf::from("/mnt/fast"),
                "rw,size=4G,allow_other".into()
            )))
        );
        assert_eq!(
            fstab_form(&v(&["none", "/mnt"])),
            Some(Ok((PathBuf::from("/mnt"), String::new())))
        );
        assert!(matches!(
            fstab_form(&v(&["btfuse", "/mnt", "-o"])),
            Some(Err(_))
        ));
        assert!(matches!(
            fstab_form(&v(&["btfuse", "/mnt", "--size"])),
            Some(Err(_))
        ));
        assert_eq!(fstab_form(&v(&["mount", "/mnt"])), None);
        assert_eq!(fstab_form(&v(&["umount", "/mnt"])), None);
        assert_eq!(fstab_form(&v(&["--help"])), None);
        assert_eq!(fstab_form(&v(&["/mnt"])), None);
    }
}
