//! Parsing `/proc/self/mountinfo` into a table of btfuse mounts.
//!
//! Pure `core` code (no allocation, no syscalls): the caller reads the file
//! into a buffer, provides storage sized for it ([`Capacity`]) and hands
//! the bytes here. There is no limit on the number of mounts beyond that
//! storage. Unit tested with std.
//!
//! What is collected:
//! * every mount of fstype `fuse.btfuse` whose root is `/` (a bind mount of a
//!   subdirectory of a btfuse mount is left to the kernel: the daemon does
//!   not know about bind roots), with its mountpoint and `major:minor`;
//! * every *other* mount whose mountpoint lies at or below an earlier btfuse
//!   mountpoint: an **exclusion**. A path under an exclusion belongs to that
//!   other filesystem (or shadowing mount), so the kernel must resolve it.

//!
//! ## The registry
//!
//! Reading `/proc/self/mountinfo` costs every preloaded process ~100 µs
//! (the kernel formats every mount of the namespace). So each btfuse daemon
//! keeps a *registry* in the run directory ([`REGISTRY_FILE`]): a header
//! line naming the view it was taken from ([`View`]: the mount and inode of
//! the root directory), then exactly the mountinfo lines that [`parse`] uses (btfuse
//! mounts and the mounts at or below them), in mountinfo order, so parsing
//! the registry gives the same table as parsing mountinfo. Daemons rewrite
//! it whenever their mount table changes. A process in another view (a
//! container, a chroot), or finding no registry, reads mountinfo instead.

/// The btfuse filesystem type as mountinfo shows it.
pub const FSTYPE: &[u8] = b"fuse.btfuse";

/// Whether a mountinfo line is a btfuse mount: fstype `fuse.btfuse` (the
/// contract; what `fusermount` writes), or fstype `fuse` with source
/// `btfuse` (what fuser's own in-process `mount(2)` writes: it puts the
/// subtype into the source field). A false positive costs nothing: its
/// daemon socket does not exist, the mount is marked dead, the kernel
/// serves it.
pub fn is_btfuse(fstype: &[u8], source: &[u8]) -> bool {
    fstype == FSTYPE || (fstype == b"fuse" && source == b"btfuse")
}

/// One btfuse mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountEntry {
    /// Mountpoint text: `arena[start..start + len]`, unescaped, no trailing
    /// slash (the root mount `/` is stored as the empty string).
    pub start: u32,
    /// Length of the mountpoint text.
    pub len: u32,
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Position of its line in mountinfo (exclusions must come later).
    pub seq: u32,
    /// Mount id (first mountinfo field; `statx` `stx_mnt_id`).
    pub id: u32,
    /// `ST_*` flags from the per-mount options (`statfs` `f_flags`).
    pub st_flags: u32,
}

/// Room a [`MountTable`] needs for a mount table text: with it, every
/// mount and exclusion of that text fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Entries (mounts and exclusions together): one per line at most.
    pub entries: usize,
    /// Bytes of mountpoint text: unescaping only shortens it.
    pub text: usize,
}

impl Capacity {
    /// What parsing `text` may need.
    pub fn of(text: &[u8]) -> Capacity {
        Capacity {
            entries: text.split(|&b| b == b'\n').count(),
            text: text.len(),
        }
    }
}

/// The collected table, in storage the caller provides (this crate never
/// allocates): sized with [`Capacity::of`] the text it will parse, it
/// holds any number of mounts. Mounts fill `entries` from the front,
/// exclusions from the back (so the newest exclusion comes first).
pub struct MountTable<'a> {
    entries: &'a mut [MountEntry],
    n_mounts: usize,
    n_excl: usize,
    arena: &'a mut [u8],
    arena_used: usize,
    /// Set when something did not fit the storage (more mounts,
    /// exclusions or text than it has room for, which storage sized with
    /// [`Capacity::of`] rules out): dropped mounts are simply served by the
    /// kernel, but a dropped exclusion could misroute paths, so then every
    /// mount that could be affected is dropped too (see [`parse`]).
    pub overflow: bool,
}

impl<'a> MountTable<'a> {
    /// An empty table with no room (const, so it can live in a `static`
    /// until real storage replaces it).
    pub const fn empty() -> MountTable<'static> {
        MountTable {
            entries: &mut [],
            n_mounts: 0,
            n_excl: 0,
            arena: &mut [],
            arena_used: 0,
            overflow: false,
        }
    }

    /// An empty table over `entries` and `arena` (see [`Capacity`]).
    pub fn new(entries: &'a mut [MountEntry], arena: &'a mut [u8]) -> MountTable<'a> {
        MountTable {
            entries,
            n_mounts: 0,
            n_excl: 0,
            arena,
            arena_used: 0,
            overflow: false,
        }
    }

    /// Empties the table. Only the counts are reset: entries and text past
    /// them are never read.
    pub fn clear(&mut self) {
        self.n_mounts = 0;
        self.n_excl = 0;
        self.arena_used = 0;
        self.overflow = false;
    }

    /// Mountpoint text of a mount or exclusion.
    pub fn text(&self, e: &MountEntry) -> &[u8] {
        &self.arena[e.start as usize..(e.start + e.len) as usize]
    }

    /// The valid mounts.
    pub fn mounts(&self) -> &[MountEntry] {
        &self.entries[..self.n_mounts]
    }

    /// The valid exclusions.
    pub fn exclusions(&self) -> &[MountEntry] {
        &self.entries[self.entries.len() - self.n_excl..]
    }

    /// Whether line `seq` (1-based) of the parsed text went into the table
    /// (as a mount or an exclusion): the lines a registry must keep.
    pub fn uses_line(&self, seq: u32) -> bool {
        self.mounts()
            .iter()
            .chain(self.exclusions())
            .any(|e| e.seq == seq)
    }

    /// Whether one more mount or exclusion fits.
    fn has_room(&self) -> bool {
        self.n_mounts + self.n_excl < self.entries.len()
    }

    /// Removes mount `i` (the last one takes its place).
    fn remove_mount(&mut self, i: usize) {
        self.entries[i] = self.entries[self.n_mounts - 1];
        self.n_mounts -= 1;
    }

    fn store_text(&mut self, escaped: &[u8]) -> Option<(u32, u32)> {
        let start = self.arena_used;
        let mut n = 0;
        let mut i = 0;
        while i < escaped.len() {
            let b = escaped[i];
            let (byte, step) = if b == b'\\'
                && i + 3 < escaped.len()
                && escaped[i + 1..i + 4]
                    .iter()
                    .all(|c| (b'0'..=b'7').contains(c))
            {
                let d = &escaped[i + 1..i + 4];
                (
                    ((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'),
                    4,
                )
            } else {
                (b, 1)
            };
            if start + n >= self.arena.len() {
                return None;
            }
            self.arena[start + n] = byte;
            n += 1;
            i += step;
        }
        // No trailing slash ("/" itself becomes "").
        while n > 0 && self.arena[start + n - 1] == b'/' {
            n -= 1;
        }
        self.arena_used = start + n;
        Some((start as u32, n as u32))
    }
}

/// Whether `path` equals `prefix` or lies under it, component-wise. Both are
/// clean absolute paths without trailing slash ("" is `/`).
pub fn is_under(path: &[u8], prefix: &[u8]) -> bool {
    path.len() >= prefix.len()
        && &path[..prefix.len()] == prefix
        && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

fn parse_dev(f: &[u8]) -> Option<(u32, u32)> {
    let colon = f.iter().position(|&b| b == b':')?;
    Some((parse_u32(&f[..colon])?, parse_u32(&f[colon + 1..])?))
}

/// `f` as a decimal `u32` (digits only, at most ten, in range).
pub fn parse_u32(f: &[u8]) -> Option<u32> {
    if f.is_empty() || f.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in f {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u64;
    }
    u32::try_from(v).ok()
}

/// Fills `t` from the bytes of a mountinfo file. Malformed lines are skipped.
pub fn parse(data: &[u8], t: &mut MountTable) {
    t.clear();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let seq = i as u32 + 1;
        // id parent major:minor root mountpoint options [optional...] - fstype source superopts
        let mut fields = line.split(|&b| b == b' ');
        let (Some(id), Some(_parent), Some(dev), Some(root), Some(mp), Some(opts)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let mut fstype = None;
        while let Some(f) = fields.next() {
            if f == b"-" {
                fstype = fields.next();
                break;
            }
        }
        let Some(fstype) = fstype else { continue };
        let source = fields.next().unwrap_or(b"");
        let Some((major, minor)) = parse_dev(dev) else {
            continue;
        };
        let mark = t.arena_used;
        let Some((start, len)) = t.store_text(mp) else {
            t.overflow = true;
            continue;
        };
        let entry = MountEntry {
            start,
            len,
            major,
            minor,
            seq,
            id: parse_u32(id).unwrap_or(0),
            st_flags: st_flags(opts),
        };
        if is_btfuse(fstype, source) && root == b"/" {
            // A later mount at the same point shadows an earlier one.
            let mut i = 0;
            while i < t.n_mounts {
                if t.text(&t.entries[i]) == t.text(&entry) {
                    t.remove_mount(i);
                } else {
                    i += 1;
                }
            }
            if !t.has_room() {
                t.overflow = true;
                t.arena_used = mark;
                continue;
            }
            t.entries[t.n_mounts] = entry;
            t.n_mounts += 1;
        } else {
            let covers_a_mount = t
                .mounts()
                .iter()
                .any(|m| is_under(t.text(&entry), t.text(m)));
            if !covers_a_mount {
                t.arena_used = mark;
                continue;
            }
            if !t.has_room() {
                // Cannot remember it: forget the mounts it sits on, so the
                // kernel serves them (never misroute a path).
                t.overflow = true;
                let mut i = 0;
                while i < t.n_mounts {
                    if is_under(t.text(&entry), t.text(&t.entries[i])) {
                        t.remove_mount(i);
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            t.n_excl += 1;
            let at = t.entries.len() - t.n_excl;
            t.entries[at] = entry;
        }
    }
}

/// `statfs` `f_flags` (`ST_*`, with `ST_VALID`) from mount options.
pub fn st_flags(opts: &[u8]) -> u32 {
    let mut f = 0x20; // ST_VALID
    for o in opts.split(|&b| b == b',') {
        f |= match o {
            b"ro" => 1,
            b"nosuid" => 2,
            b"nodev" => 4,
            b"noexec" => 8,
            b"sync" => 16,
            b"mand" => 64,
            b"noatime" => 1024,
            b"nodiratime" => 2048,
            b"relatime" => 4096,
            _ => 0,
        };
    }
    f
}

/// glibc's `makedev` (the `st_dev` value of a `major:minor` device).
pub const fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    ((ma & 0xffff_f000) << 32)
        | ((ma & 0x0000_0fff) << 8)
        | ((mi & 0xffff_ff00) << 12)
        | (mi & 0x0000_00ff)
}

/// Name of the registry in the run directory.
pub const REGISTRY_FILE: &str = "mounts";

/// First word of a registry's header line (format version 2).
const REGISTRY_MAGIC: &[u8] = b"btfuse-mounts-2";

/// `statx` mask bit: `stx_mnt_id` holds the mount's id (Linux 5.8).
pub const STATX_MNT_ID: u32 = 0x1000;
/// `statx` mask bit: `stx_mnt_id` holds the mount's never-reused 64-bit id
/// (Linux 6.8).
pub const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
/// What to ask `statx("/")` for to learn a [`View`].
pub const VIEW_STATX_MASK: u32 = 0x100 /* STATX_INO */ | STATX_MNT_ID | STATX_MNT_ID_UNIQUE;

/// The view of the filesystem tree a registry was written from: only a
/// process with the same view may use it.
///
/// Identified by the root directory's mount and inode, which one `statx`
/// of `/` tells (unlike the mount namespace's inode, whose `/proc` lookup
/// costs a new process ~17 µs): a new mount namespace copies every mount
/// under new ids, and a chroot has another root inode or mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Mount id of the root directory (`statx` `stx_mnt_id`).
    pub root_mount: u64,
    /// Whether `root_mount` is the never-reused id
    /// ([`STATX_MNT_ID_UNIQUE`]) rather than the reusable one.
    pub unique_id: bool,
    /// Device of the root directory.
    pub root_dev: u64,
    /// Inode of the root directory.
    pub root_ino: u64,
}

impl View {
    /// The view from `statx("/")` asked for [`VIEW_STATX_MASK`]: its
    /// returned `mask`, `stx_mnt_id`, `stx_dev_major`/`minor` and
    /// `stx_ino`; `None` if the kernel named no mount id.
    pub fn from_statx(mask: u32, mnt_id: u64, dev: (u32, u32), ino: u64) -> Option<View> {
        let unique_id = mask & STATX_MNT_ID_UNIQUE != 0;
        if !unique_id && mask & STATX_MNT_ID == 0 {
            return None;
        }
        Some(View {
            root_mount: mnt_id,
            unique_id,
            root_dev: makedev(dev.0, dev.1),
            root_ino: ino,
        })
    }
}

/// Writes a registry header line for `view` into `out` (at least 80
/// bytes); returns its length.
pub fn registry_header(view: &View, out: &mut [u8]) -> usize {
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        out[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(REGISTRY_MAGIC);
    put(if view.unique_id { b" u" } else { b" m" });
    for (i, v) in [view.root_mount, view.root_dev, view.root_ino]
        .into_iter()
        .enumerate()
    {
        let mut digits = [0u8; 20];
        let len = crate::write_decimal(v, &mut digits);
        if i > 0 {
            put(b" ");
        }
        put(&digits[..len]);
    }
    put(b"\n");
    n
}

/// The lines of the mountinfo `text` a registry keeps: those [`parse`]
/// used for `table` (parsed from that same text), in their order.
pub fn registry_lines<'a>(
    text: &'a [u8],
    table: &'a MountTable,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, _)| table.uses_line(*i as u32 + 1))
        .map(|(_, line)| line)
}

/// Splits a registry into the view it was written from and its mountinfo
/// lines; `None` if `data` is not a registry.
pub fn parse_registry(data: &[u8]) -> Option<(View, &[u8])> {
    let end = data.iter().position(|&b| b == b'\n')?;
    let mut words = data[..end].split(|&b| b == b' ');
    if words.next()? != REGISTRY_MAGIC {
        return None;
    }
    let num = |w: &[u8]| -> Option<u64> {
        if w.is_empty() || w.len() > 20 || !w.iter().all(u8::is_ascii_digit) {
            return None;
        }
        w.iter().try_fold(0u64, |v, &d| {
            v.checked_mul(10)?.checked_add((d - b'0') as u64)
        })
    };
    let mount = words.next()?;
    let unique_id = match mount.first()? {
        b'u' => true,
        b'm' => false,
        _ => return None,
    };
    let view = View {
        root_mount: num(&mount[1..])?,
        unique_id,
        root_dev: num(words.next()?)?,
        root_ino: num(words.next()?)?,
    };
    if words.next().is_some() {
        return None;
    }
    Some((view, &data[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
        40 22 0:40 / /mnt/a\\040b rw,nosuid shared:20 - fuse.btfuse btfuse rw,user_id=0\n\
        41 22 0:41 / /tmp/m rw,nosuid - fuse.btfuse btfuse rw\n\
        42 41 0:42 / /tmp/m/sub rw - tmpfs tmpfs rw\n\
        43 22 0:43 /dir /bind rw - fuse.btfuse btfuse rw\n\
        45 22 0:45 / /tmp/direct rw,relatime - fuse btfuse rw,user_id=0\n\
        46 22 0:46 / /tmp/other rw,relatime - fuse sshfs rw,user_id=0\n\
        44 22 0:44 / /tmp/mx rw - tmpfs tmpfs rw\n\
        garbage line\n";

    /// Room for `text` (see [`Capacity`]).
    fn storage(text: &[u8]) -> (Vec<MountEntry>, Vec<u8>) {
        let need = Capacity::of(text);
        (
            vec![MountEntry::default(); need.entries],
            vec![0; need.text],
        )
    }

    /// Runs `check` on the table parsed from `text`.
    fn parsed<R>(text: &[u8], check: impl FnOnce(&MountTable) -> R) -> R {
        let (mut entries, mut arena) = storage(text);
        let mut t = MountTable::new(&mut entries, &mut arena);
        parse(text, &mut t);
        check(&t)
    }

    fn texts(t: &MountTable) -> Vec<(Vec<u8>, u32, u32)> {
        t.mounts()
            .iter()
            .map(|m| (t.text(m).to_vec(), m.major, m.minor))
            .collect()
    }

    fn exclusions(t: &MountTable) -> Vec<Vec<u8>> {
        t.exclusions().iter().map(|e| t.text(e).to_vec()).collect()
    }

    /// What a daemon writes: the header and the lines the table uses.
    fn registry_of(text: &[u8], view: &View) -> Vec<u8> {
        parsed(text, |t| {
            let mut out = vec![0u8; 80];
            let n = registry_header(view, &mut out);
            out.truncate(n);
            for line in registry_lines(text, t) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            out
        })
    }

    #[test]
    fn a_registry_parses_to_the_same_table_as_mountinfo() {
        let view = View {
            root_mount: 4026531841,
            unique_id: true,
            root_dev: u64::MAX,
            root_ino: 0,
        };
        let reg = registry_of(TABLE, &view);
        let (got, lines) = parse_registry(&reg).expect("a registry");
        assert_eq!(got, view);
        assert!(lines.len() < TABLE.len(), "keeps only what is used");
        let both = |t: &MountTable| (texts(t), exclusions(t));
        let (a, b) = (parsed(TABLE, both), parsed(lines, both));
        assert_eq!(a, b);
        assert!(!a.1.is_empty());
    }

    #[test]
    fn views_round_trip_with_either_kind_of_mount_id() {
        for unique_id in [false, true] {
            let view = View::from_statx(
                STATX_MNT_ID | if unique_id { STATX_MNT_ID_UNIQUE } else { 0 },
                u64::MAX,
                (8, 1),
                2,
            )
            .unwrap();
            assert_eq!(view.unique_id, unique_id);
            assert_eq!(view.root_dev, makedev(8, 1));
            let reg = registry_of(TABLE, &view);
            assert_eq!(parse_registry(&reg).unwrap().0, view);
        }
        // A kernel that names no mount id gives no view (no registry use).
        assert_eq!(View::from_statx(0x7ff, 1, (8, 1), 2), None);
    }

    #[test]
    fn anything_else_is_not_a_registry() {
        for bad in [
            &b""[..],
            b"btfuse-mounts-2 u1 2 3",
            b"btfuse-mounts-1 1 2 3\n",
            b"btfuse-mounts-2 1 2 3\n",
            b"btfuse-mounts-2 x1 2 3\n",
            b"btfuse-mounts-2 u 2 3\n",
            b"btfuse-mounts-2 u1 2\n",
            b"btfuse-mounts-2 m1 2 3 4\n",
            b"btfuse-mounts-2 m1 x 3\n",
            b"btfuse-mounts-2 u1 2 99999999999999999999\n",
            b"22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n",
        ] {
            assert!(
                parse_registry(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn collects_btfuse_mounts_with_unescaped_paths_and_devices() {
        let (mounts, overflow) = parsed(TABLE, |t| (texts(t), t.overflow));
        assert_eq!(
            mounts,
            vec![
                (b"/mnt/a b".to_vec(), 0, 40),
                (b"/tmp/m".to_vec(), 0, 41),
                (b"/tmp/direct".to_vec(), 0, 45)
            ]
        );
        assert!(!overflow);
    }

    #[test]
    fn mounts_under_a_btfuse_mount_become_exclusions() {
        assert_eq!(parsed(TABLE, exclusions), vec![b"/tmp/m/sub".to_vec()]);
    }

    #[test]
    fn bind_mounted_subdirectories_are_left_to_the_kernel() {
        parsed(TABLE, |t| {
            assert!(t.mounts().iter().all(|m| t.text(m) != b"/bind"));
        });
    }

    #[test]
    fn a_later_mount_on_the_same_point_shadows_the_earlier() {
        let table = b"1 0 0:40 / /m rw - fuse.btfuse b rw\n2 0 0:50 / /m rw - fuse.btfuse b rw\n";
        assert_eq!(parsed(table, texts), vec![(b"/m".to_vec(), 0, 50)]);
        let table = b"1 0 0:40 / /m rw - fuse.btfuse b rw\n2 0 0:50 / /m rw - tmpfs t rw\n";
        assert_eq!(parsed(table, exclusions).len(), 1);
    }

    /// A machine with hundreds of btfuse mounts among thousands of others
    /// (containers): every one is kept, with what is mounted under it.
    #[test]
    fn any_number_of_mounts_fits_storage_sized_for_the_text() {
        let mut text = Vec::new();
        for i in 0..3000 {
            text.extend(format!("{i} 1 0:{i} / /other/{i} rw - tmpfs t rw\n").bytes());
        }
        for i in 0..300 {
            let n = 5000 + i;
            text.extend(format!("{n} 1 1:{i} / /bt/{i} rw - fuse.btfuse b rw\n").bytes());
            text.extend(format!("{} {n} 2:{i} / /bt/{i}/sub rw - tmpfs t rw\n", n + 1000).bytes());
        }
        let (mounts, excl, overflow) = parsed(&text, |t| (texts(t), exclusions(t), t.overflow));
        assert!(!overflow);
        assert_eq!(mounts.len(), 300);
        assert_eq!(mounts[299], (b"/bt/299".to_vec(), 1, 299));
        assert_eq!(excl.len(), 300);
        assert!(excl.contains(&b"/bt/0/sub".to_vec()));
    }

    /// Storage too small for the text: mounts that do not fit go to the
    /// kernel, and so does a mount whose exclusion does not fit (a path
    /// under it must never reach the daemon).
    #[test]
    fn storage_too_small_leaves_mounts_to_the_kernel_never_misroutes() {
        let text = b"1 0 0:40 / /a rw - fuse.btfuse b rw\n\
            2 0 0:41 / /b rw - fuse.btfuse b rw\n\
            3 1 0:42 / /a/sub rw - tmpfs t rw\n";
        let mut entries = [MountEntry::default(); 2];
        let mut arena = [0u8; 64];
        let mut t = MountTable::new(&mut entries, &mut arena);
        parse(text, &mut t);
        assert!(t.overflow);
        assert_eq!(texts(&t), vec![(b"/b".to_vec(), 0, 41)]);
    }

    #[test]
    fn is_under_respects_component_boundaries() {
        assert!(is_under(b"/tmp/m", b"/tmp/m"));
        assert!(is_under(b"/tmp/m/x", b"/tmp/m"));
        assert!(!is_under(b"/tmp/mx", b"/tmp/m"));
        assert!(is_under(b"/anything", b""));
    }

    #[test]
    fn mount_ids_and_statfs_flags_are_kept() {
        let m = parsed(TABLE, |t| t.mounts()[0]);
        assert_eq!(m.id, 40);
        assert_eq!(m.st_flags, 0x20 | 2);
    }

    #[test]
    fn makedev_matches_glibc() {
        assert_eq!(makedev(0, 41), 41);
        assert_eq!(makedev(8, 1), 0x801);
        assert_eq!(makedev(259, 3), libc_makedev(259, 3));
    }

    fn libc_makedev(ma: u32, mi: u32) -> u64 {
        libc::makedev(ma, mi)
    }
}
