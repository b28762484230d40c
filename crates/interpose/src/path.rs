//! Lexical path handling: which mount a path names, and the mount-relative
//! text sent to the daemon.
//!
//! Pure `core` code, unit tested with std. Only `.` components and repeated
//! slashes are collapsed here; `..` and symlinks are left to the daemon,
//! which resolves them against the base directory and answers
//! `proto::ESCAPED` when the path leaves the mount.

use core::mem::MaybeUninit;

use proto::mountinfo::{MountEntry, MountTable};

/// Components of up to two byte strings read as one path (`a` + "/" + `b`),
/// skipping empty and `.` components.
#[derive(Clone, Copy, Debug)]
pub struct Comps<'a> {
    parts: [&'a [u8]; 2],
    part: usize,
    pos: usize,
}

impl<'a> Comps<'a> {
    /// Components of `a`, then of `b`.
    pub fn new(a: &'a [u8], b: &'a [u8]) -> Comps<'a> {
        Comps {
            parts: [a, b],
            part: 0,
            pos: 0,
        }
    }

    /// Whether a `..` component is left.
    pub fn has_dotdot(&self) -> bool {
        // Most paths hold no two dots in a row at all: that scan is a few
        // cycles a byte, the walk over the components several times more
        // (~7% of the library's samples in a `git status`).
        let dots = |p: &[u8]| p.windows(2).any(|w| w == b"..");
        if !self.parts.iter().any(|p| dots(p)) {
            return false;
        }
        let mut c = *self;
        c.any(|x| x == b"..")
    }
}

impl<'a> Iterator for Comps<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.part < 2 {
            let p = self.parts[self.part];
            while self.pos < p.len() && p[self.pos] == b'/' {
                self.pos += 1;
            }
            if self.pos >= p.len() {
                self.part += 1;
                self.pos = 0;
                continue;
            }
            let start = self.pos;
            while self.pos < p.len() && p[self.pos] != b'/' {
                self.pos += 1;
            }
            let c = &p[start..self.pos];
            if c != b"." {
                return Some(c);
            }
        }
        None
    }
}

/// How a path ends, beyond its components: the daemon needs to know,
/// because `d/` must be a directory and `rmdir("d/.")` fails with `EINVAL`
/// instead of removing `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// A plain last component.
    Plain,
    /// A trailing slash: the target must be a directory.
    Slash,
    /// A final `.` component.
    Dot,
}

/// The [`Tail`] of `path`.
pub fn tail(path: &[u8]) -> Tail {
    match path {
        [b'.'] | [.., b'/', b'.'] => Tail::Dot,
        [.., b'/'] => Tail::Slash,
        _ => Tail::Plain,
    }
}

/// If `comps` starts with the components of the clean absolute path
/// `prefix` (`""` is `/`), the components after it.
pub fn strip_prefix<'a>(comps: Comps<'a>, prefix: &[u8]) -> Option<Comps<'a>> {
    let mut c = comps;
    for want in Comps::new(prefix, b"") {
        match c.next() {
            Some(got) if got == want => {}
            _ => return None,
        }
    }
    Some(c)
}

/// The btfuse mount an absolute path (given as components) lies under, and
/// the components relative to its root. `None` when no mount matches, or
/// when the path reaches into an exclusion (another filesystem mounted on
/// or under the btfuse mount: the kernel must resolve it). With a `..` in
/// the rest of a path under a mount that has exclusions, the lexical check
/// cannot be trusted either, so that is left to the kernel too.
pub fn classify<'a>(t: &MountTable, comps: Comps<'a>) -> Option<(usize, Comps<'a>)> {
    let mut best: Option<(usize, Comps<'a>, u32)> = None;
    for (i, m) in t.mounts().iter().enumerate() {
        if best.is_some_and(|(_, _, len)| len >= m.len) {
            continue;
        }
        if let Some(rest) = strip_prefix(comps, t.text(m)) {
            best = Some((i, rest, m.len));
        }
    }
    let (i, rest, _) = best?;
    let m: &MountEntry = &t.mounts()[i];
    let mp = t.text(m);
    for e in t.exclusions().iter().filter(|e| e.seq > m.seq) {
        let ex = t.text(e);
        if !proto::mountinfo::is_under(ex, mp) {
            continue;
        }
        if strip_prefix(comps, ex).is_some() || rest.has_dotdot() {
            return None;
        }
    }
    // Same for another btfuse mount nested below this one.
    if rest.has_dotdot()
        && t.mounts()
            .iter()
            .any(|n| n.len > m.len && proto::mountinfo::is_under(t.text(n), mp))
    {
        return None;
    }
    Some((i, rest))
}

/// Writes `prefix` (already clean, mount-relative, may be empty) followed by
/// `rest` into `out`, joined by single slashes, then `/` or `/.` for a
/// [`Tail::Slash`] or [`Tail::Dot`] unless the result is the base itself,
/// which is `.`. Returns what it wrote, or `None` when it does not fit.
pub fn write_rel<'o>(
    prefix: &[u8],
    rest: Comps<'_>,
    tail: Tail,
    out: &'o mut [MaybeUninit<u8>],
) -> Option<&'o [u8]> {
    let mut n = 0;
    let mut push = |s: &[u8], out: &mut [MaybeUninit<u8>]| -> Option<()> {
        out.get_mut(n..n + s.len())?.write_copy_of_slice(s);
        n += s.len();
        Some(())
    };
    let mut first = true;
    for c in Comps::new(prefix, b"").chain(rest) {
        if !first {
            push(b"/", out)?;
        }
        push(c, out)?;
        first = false;
    }
    match (first, tail) {
        (true, _) => push(b".", out)?,
        (false, Tail::Slash) => push(b"/", out)?,
        (false, Tail::Dot) => push(b"/.", out)?,
        (false, Tail::Plain) => {}
    }
    // SAFETY: the first `n` bytes were written above.
    Some(unsafe { core::slice::from_raw_parts(out.as_ptr().cast(), n) })
}

/// Writes the clean absolute path `mountpoint` + "/" + `rel` (`rel` as made
/// by [`write_rel`], `.` meaning the root) into `out`.
pub fn write_abs(mountpoint: &[u8], rel: &[u8], out: &mut [u8]) -> Option<usize> {
    let rel: &[u8] = if rel == b"." { b"" } else { rel };
    let total = mountpoint.len() + 1 + rel.len();
    if total > out.len() {
        return None;
    }
    out[..mountpoint.len()].copy_from_slice(mountpoint);
    let mut n = mountpoint.len();
    if n == 0 || !rel.is_empty() {
        out[n] = b'/';
        n += 1;
    }
    out[n..n + rel.len()].copy_from_slice(rel);
    Some(n + rel.len())
}

/// The descriptor of this process that absolute `path` names, if it names
/// one: `/proc/self/fd/N`, `/proc/thread-self/fd/N`, `/proc/PID/fd/N` of
/// our own pid (asked of `own_pid` only then), `/dev/fd/N`, `/dev/stdin`,
/// `/dev/stdout`, `/dev/stderr`; anything may follow `N` after a `/`.
pub fn named_fd(path: &[u8], own_pid: impl FnOnce() -> Option<i32>) -> Option<i32> {
    if let Some(rest) = path.strip_prefix(b"/dev/") {
        return match rest {
            b"stdin" => Some(0),
            b"stdout" => Some(1),
            b"stderr" => Some(2),
            _ => leading_number(rest.strip_prefix(b"fd/")?),
        };
    }
    let rest = path.strip_prefix(b"/proc/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (who, rest) = (&rest[..slash], &rest[slash + 1..]);
    // The fd first: `ps` and `top` read `/proc/PID/...` of every process,
    // and only a name of an fd is worth asking our own pid.
    let fd = leading_number(rest.strip_prefix(b"fd/")?)?;
    let ours = who == b"self"
        || who == b"thread-self"
        || leading_number(who).is_some_and(|pid| Some(pid) == own_pid());
    ours.then_some(fd)
}

/// The decimal number `s` starts with, up to its first `/` or its end.
fn leading_number(s: &[u8]) -> Option<i32> {
    let digits = s.split(|&b| b == b'/').next()?;
    proto::mountinfo::parse_u32(digits).and_then(|n| i32::try_from(n).ok())
}

/// The length of the absolute path `rname[..dest]` without its last
/// component (not below the root `/`), its trailing slash kept.
pub(crate) fn parent_len(rname: &[u8], mut dest: usize) -> usize {
    if dest > 1 {
        dest -= 1;
        while dest > 0 && rname[dest - 1] != b'/' {
            dest -= 1;
        }
    }
    dest
}

/// Whether what follows a path's component makes it a directory
/// necessarily: trailing slashes, a trailing `/.`, or a `/..` anywhere
/// (glibc's `suffix_requires_dir_check`, which `realpath` uses).
pub(crate) fn requires_dir(rest: &[u8]) -> bool {
    let at = |i: usize| rest.get(i).copied();
    let mut i = 0;
    while at(i) == Some(b'/') {
        while at(i) == Some(b'/') {
            i += 1;
        }
        match at(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(_) => return false,
        }
        // A trailing `/.`, or `/..` anywhere.
        if at(i).is_none() || (at(i) == Some(b'.') && matches!(at(i + 1), None | Some(b'/'))) {
            return true;
        }
    }
    false
}

/// A path in a buffer that may hold more bytes after it (any initialized
/// bytes): any of its words, or of a part of it, is then one load, masked
/// to the part (a short word put together byte by byte was a tenth of a
/// cached `stat` of a 17-byte path).
#[derive(Clone, Copy)]
pub(crate) struct Padded<'a> {
    /// The path, then whatever the buffer holds after it.
    bytes: &'a [u8],
    len: usize,
}

impl<'a> Padded<'a> {
    /// The first `len` bytes of `bytes`, which may go on.
    pub(crate) fn new(bytes: &'a [u8], len: usize) -> Self {
        Padded {
            bytes,
            len: len.min(bytes.len()),
        }
    }

    /// A path with nothing readable after it.
    pub(crate) fn plain(path: &'a [u8]) -> Self {
        Self::new(path, path.len())
    }

    /// The path.
    pub(crate) fn path(&self) -> &'a [u8] {
        &self.bytes[..self.len]
    }

    /// The part of the path from byte `at` on.
    pub(crate) fn tail(&self, at: usize) -> Self {
        Padded {
            bytes: &self.bytes[at.min(self.len)..],
            len: self.len - at.min(self.len),
        }
    }

    /// Word `i` of the path's first `n` bytes, little-endian (zero-padded):
    /// `metacache::key_words`'s words.
    pub(crate) fn le_word(&self, i: usize, n: usize) -> u64 {
        let (at, n) = (8 * i, n.min(self.len));
        let left = n.saturating_sub(at);
        match self
            .bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            Some(w) if left >= 8 => u64::from_le_bytes(w),
            Some(w) => u64::from_le_bytes(w) & ((1 << (8 * left)) - 1),
            // Put together with shifts (a copy into a word on the stack
            // was a `memcpy` call and a stalled load).
            None => self.bytes[at.min(n)..n]
                .iter()
                .enumerate()
                .fold(0, |v, (i, &b)| v | u64::from(b) << (8 * i)),
        }
    }

    /// Word `k` of the path, big-endian (zero-padded): comparing such words
    /// compares the bytes.
    pub(crate) fn be_word(&self, k: usize) -> u64 {
        let at = 8 * k;
        let left = self.len.saturating_sub(at);
        match self
            .bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            Some(w) if left >= 8 => u64::from_be_bytes(w),
            Some(w) if left > 0 => u64::from_be_bytes(w) & !(u64::MAX >> (8 * left)),
            Some(_) => 0,
            None => self.path()[at.min(self.len)..]
                .iter()
                .enumerate()
                .fold(0, |v, (i, &b)| v | u64::from(b) << (56 - 8 * i)),
        }
    }
}

/// Path `p` split at its last `/`: the directory part (empty for a bare
/// name) and the last name (all of `p` if it has no `/`).
pub(crate) fn split_last(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&p[..0], p),
    }
}

/// The last name of path `p` (all of it if it has no `/`).
pub(crate) fn last_name(p: &[u8]) -> &[u8] {
    split_last(p).1
}

/// `p` without the `/`s it ends with.
pub(crate) fn trim_slashes(p: &[u8]) -> &[u8] {
    &p[..p.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::mountinfo::{parse, Capacity};

    /// A table of a few mounts, in storage kept for the test's life.
    fn table() -> MountTable<'static> {
        let text = b"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
              2 1 0:41 / /tmp/m rw - fuse.btfuse b rw\n\
              3 2 0:42 / /tmp/m/sub rw - tmpfs t rw\n\
              4 1 0:43 / /tmp/m2 rw - fuse.btfuse b rw\n\
              5 2 0:44 / /tmp/m/inner rw - fuse.btfuse b rw\n";
        let need = Capacity::of(text);
        let entries = Vec::leak(vec![MountEntry::default(); need.entries]);
        let mut t = MountTable::new(entries, Vec::leak(vec![0; need.text]));
        parse(text, &mut t);
        t
    }

    fn rel(t: &MountTable, a: &[u8], b: &[u8]) -> Option<(u32, String)> {
        let (i, rest) = classify(t, Comps::new(a, b))?;
        let mut out = [MaybeUninit::uninit(); 64];
        let rel = write_rel(b"", rest, tail(if b.is_empty() { a } else { b }), &mut out)?;
        Some((
            t.mounts()[i].minor,
            String::from_utf8(rel.to_vec()).unwrap(),
        ))
    }

    #[test]
    fn absolute_paths_match_on_component_boundaries() {
        let t = table();
        assert_eq!(rel(&t, b"/tmp/m/a/b", b""), Some((41, "a/b".into())));
        assert_eq!(rel(&t, b"/tmp/m", b""), Some((41, ".".into())));
        assert_eq!(rel(&t, b"/tmp/m/", b""), Some((41, ".".into())));
        assert_eq!(rel(&t, b"/tmp/mx/a", b""), None);
        assert_eq!(rel(&t, b"/tmp/m2/x", b""), Some((43, "x".into())));
        assert_eq!(rel(&t, b"/etc/passwd", b""), None);
    }

    #[test]
    fn dots_and_double_slashes_collapse_but_dotdot_is_kept() {
        let t = table();
        assert_eq!(rel(&t, b"//tmp/./m//a/./b", b""), Some((41, "a/b".into())));
        assert_eq!(rel(&t, b"/tmp/m2/a/../b", b""), Some((43, "a/../b".into())));
        assert_eq!(rel(&t, b"/tmp/m2/../m/a", b""), Some((43, "../m/a".into())));
        // ".." before the mountpoint: lexically not under it; the kernel decides.
        assert_eq!(rel(&t, b"/tmp/x/../m/a", b""), None);
    }

    #[test]
    fn trailing_slash_and_final_dot_reach_the_daemon() {
        let t = table();
        assert_eq!(rel(&t, b"/tmp/m/d/", b""), Some((41, "d/".into())));
        assert_eq!(rel(&t, b"/tmp/m/d/.", b""), Some((41, "d/.".into())));
        assert_eq!(rel(&t, b"/tmp/m/d", b"."), Some((41, "d/.".into())));
        assert_eq!(tail(b"."), Tail::Dot);
        assert_eq!(tail(b"a/"), Tail::Slash);
        assert_eq!(tail(b"a.b"), Tail::Plain);
        assert_eq!(tail(b".."), Tail::Plain);
    }

    #[test]
    fn relative_paths_join_the_cwd() {
        let t = table();
        assert_eq!(
            rel(&t, b"/tmp/m/dir", b"file"),
            Some((41, "dir/file".into()))
        );
        assert_eq!(rel(&t, b"/tmp", b"m/file"), Some((41, "file".into())));
        assert_eq!(rel(&t, b"/tmp/m", b"."), Some((41, ".".into())));
        assert_eq!(rel(&t, b"/tmp/m2", b"../etc"), Some((43, "../etc".into())));
        assert_eq!(rel(&t, b"/", b"tmp/m/a"), Some((41, "a".into())));
        assert_eq!(rel(&t, b"/home", b"a"), None);
    }

    #[test]
    fn exclusions_and_nested_mounts_win() {
        let t = table();
        assert_eq!(rel(&t, b"/tmp/m/sub/x", b""), None);
        assert_eq!(rel(&t, b"/tmp/m/sub", b""), None);
        assert_eq!(rel(&t, b"/tmp/m/subway", b""), Some((41, "subway".into())));
        // A dotdot under a mount with exclusions is left to the kernel.
        assert_eq!(rel(&t, b"/tmp/m/a/../sub/x", b""), None);
        // The nested btfuse mount is the longer match.
        assert_eq!(rel(&t, b"/tmp/m/inner/f", b""), Some((44, "f".into())));
        assert_eq!(
            rel(&t, b"/tmp/m/inner/../f", b""),
            Some((44, "../f".into()))
        );
    }

    #[test]
    fn write_rel_reports_overflow() {
        let mut out = [MaybeUninit::uninit(); 4];
        let mut rel = |prefix: &[u8], rest: &[u8], tail| {
            write_rel(prefix, Comps::new(rest, b""), tail, &mut out).map(<[u8]>::to_vec)
        };
        assert_eq!(rel(b"", b"abcd", Tail::Plain), Some(b"abcd".to_vec()));
        assert_eq!(rel(b"", b"abcde", Tail::Plain), None);
        assert_eq!(rel(b"ab", b"cd", Tail::Plain), None);
        let mut out = [MaybeUninit::uninit(); 16];
        let rel = write_rel(b"ab", Comps::new(b"cd", b""), Tail::Slash, &mut out);
        assert_eq!(rel, Some(&b"ab/cd/"[..]));
        let rel = write_rel(b"ab", Comps::new(b"cd", b""), Tail::Dot, &mut out);
        assert_eq!(rel, Some(&b"ab/cd/."[..]));
    }

    #[test]
    fn write_abs_joins_mountpoint_and_rel() {
        let mut out = [0u8; 32];
        let n = write_abs(b"/tmp/m", b".", &mut out).unwrap();
        assert_eq!(&out[..n], b"/tmp/m");
        let n = write_abs(b"/tmp/m", b"a/b", &mut out).unwrap();
        assert_eq!(&out[..n], b"/tmp/m/a/b");
        let n = write_abs(b"", b"a", &mut out).unwrap();
        assert_eq!(&out[..n], b"/a");
    }

    #[test]
    fn names_of_own_descriptors_are_recognised() {
        let own = || Some(4242);
        assert_eq!(named_fd(b"/proc/self/fd/3", own), Some(3));
        assert_eq!(named_fd(b"/proc/self/fd/12/sub/file", own), Some(12));
        assert_eq!(named_fd(b"/proc/thread-self/fd/7", own), Some(7));
        assert_eq!(named_fd(b"/proc/4242/fd/5", own), Some(5));
        assert_eq!(named_fd(b"/dev/fd/4", own), Some(4));
        assert_eq!(named_fd(b"/dev/stdin", own), Some(0));
        assert_eq!(named_fd(b"/dev/stderr", own), Some(2));
    }

    #[test]
    fn other_paths_name_no_descriptor() {
        for p in [
            &b"/proc/self/fdinfo/3"[..],
            b"/proc/self/fd/",
            b"/proc/self/fd/x",
            b"/proc/1/fd/3",
            b"/proc/self",
            b"/dev/null",
            b"/dev/fd/",
            b"/dev/fd/99999999999",
            b"/tmp/fd/3",
        ] {
            assert_eq!(
                named_fd(p, || Some(4242)),
                None,
                "{}",
                String::from_utf8_lossy(p)
            );
        }
    }

    #[test]
    fn a_directory_is_required_by_slashes_dot_and_dotdot_only() {
        for (rest, want) in [
            (&b""[..], false),
            (b"/", true),
            (b"//", true),
            (b"/.", true),
            (b"/./", true),
            (b"/..", true),
            (b"/../x", true),
            (b"/./x", false),
            (b"/.x", false),
            (b"/..x", false),
            (b"/x", false),
            (b"//x/", false),
        ] {
            assert_eq!(
                requires_dir(rest),
                want,
                "{:?}",
                core::str::from_utf8(rest).unwrap()
            );
        }
    }

    #[test]
    fn a_parent_stops_at_the_root() {
        assert_eq!(parent_len(b"/a/bc", 5), 3);
        assert_eq!(parent_len(b"/a", 2), 1);
        assert_eq!(parent_len(b"/", 1), 1);
    }

    /// Word `i` of `b`, zero-padded: little- or big-endian.
    fn word(b: &[u8], i: usize, big: bool) -> u64 {
        let mut w = [0u8; 8];
        let part = b.get(8 * i..).unwrap_or_default();
        let n = part.len().min(8);
        w[..n].copy_from_slice(&part[..n]);
        if big {
            u64::from_be_bytes(w)
        } else {
            u64::from_le_bytes(w)
        }
    }

    #[test]
    fn only_a_whole_dotdot_component_left_counts() {
        let has = |a: &[u8], b: &[u8]| Comps::new(a, b).has_dotdot();
        assert!(!has(b"d042/f017", b""));
        assert!(!has(b"a/..b/c...", b"b../..."));
        assert!(has(b"a/../c", b""));
        assert!(has(b"a//..", b""));
        assert!(has(b"x", b"y/.."));
        assert!(has(b"..", b""));
        let mut c = Comps::new(b"../a/b", b"");
        assert_eq!(c.next(), Some(&b".."[..]));
        assert!(!c.has_dotdot());
    }

    #[test]
    fn padded_words_are_the_paths_whatever_follows_it() {
        let path: Vec<u8> = (1..=40).collect();
        for len in 0..=path.len() {
            for after in [&b""[..], b"\0\0\0\0\0\0\0", b"/\xff/x\x01\x80q", b"\xff"] {
                let buf = [&path[..len], after].concat();
                let p = Padded::new(&buf, len);
                assert_eq!(p.path(), &path[..len]);
                for i in 0..len.div_ceil(8) + 1 {
                    assert_eq!(
                        p.be_word(i),
                        word(&path[..len], i, true),
                        "be {len} {i} {after:?}"
                    );
                    for n in 0..=len {
                        assert_eq!(
                            p.le_word(i, n),
                            word(&path[..n], i, false),
                            "le {len} {n} {i}"
                        );
                    }
                }
                for at in 0..=len {
                    let t = p.tail(at);
                    assert_eq!(t.path(), &path[at..len]);
                    assert_eq!(t.be_word(0), word(&path[at..len], 0, true));
                }
            }
        }
    }
}
