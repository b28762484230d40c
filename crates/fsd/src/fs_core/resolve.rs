//! Path resolution for the fast path.
//!
//! The kernel resolves paths for the FUSE door, one `lookup` per component.
//! Fast-path clients send whole paths instead, relative to a base directory,
//! and this module walks them the way the kernel would: component by
//! component through [`Store::lookup`] (so search permission is checked on
//! every directory), following symlinks (at most [`MAX_SYMLINKS`]), treating
//! `..` at the mount root and absolute symlinks that point outside the mount
//! as an *escape*: the path is not on this filesystem after all, and the
//! client must hand the call back to the kernel.

use inode_store::{Attr, Creds, Errno, FileKind, Ino, Store, NAME_MAX, ROOT_INO};

/// Symlinks followed in one resolution before `ELOOP`, as in Linux.
pub const MAX_SYMLINKS: u32 = 40;

/// Why a fast-path operation (and first of all its path) did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// An error the caller gets as errno.
    Errno(Errno),
    /// The path leaves the mount; the kernel must resolve it.
    Escaped,
}

impl From<Errno> for OpError {
    fn from(e: Errno) -> Self {
        OpError::Errno(e)
    }
}

impl From<OpError> for proto::ops::Failure {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Errno(e) => proto::ops::Failure::Errno(e.0),
            OpError::Escaped => proto::ops::Failure::Escaped,
        }
    }
}

impl From<proto::ops::Failure> for OpError {
    fn from(f: proto::ops::Failure) -> Self {
        match f {
            proto::ops::Failure::Errno(e) => OpError::Errno(Errno(e)),
            proto::ops::Failure::Escaped => OpError::Escaped,
        }
    }
}

/// The outcome of walking to a path's last component.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Directory holding the last component.
    pub parent: Ino,
    /// The last component's name (after following symlinks, if asked).
    pub name: Vec<u8>,
    /// The last component itself, or why it is not there (`ENOENT`).
    pub target: Result<Attr, Errno>,
    /// The path ended with `/`: the target must be a directory.
    pub trailing_slash: bool,
}

impl Resolved {
    /// The target, or its lookup error.
    pub fn found(&self) -> Result<Attr, Errno> {
        self.target
    }
}

/// What to do with a symlink in the last position.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Last {
    /// Follow it (`stat`, `open`); a dangling one resolves to its target's
    /// parent and name, so `open(O_CREAT)` creates the target, like Linux.
    Follow,
    /// Do not follow it, unless a trailing slash demands a directory
    /// (`lstat("link/")` follows, as in Linux).
    NoFollow,
    /// The path names an entry to create, remove or rename: never follow,
    /// and leave trailing-slash rules to the operation.
    Entry,
}

/// Walks `path` from `base`, treating a final symlink as `last` says.
/// `mount_path` is the mountpoint as clients see it: an absolute symlink
/// target under it stays on the mount.
pub fn resolve(
    store: &Store,
    creds: &Creds,
    base: Ino,
    path: &[u8],
    last_link: Last,
    mount_path: &[u8],
) -> Result<Resolved, OpError> {
    if path.is_empty() {
        return Err(Errno(libc::ENOENT).into());
    }
    if path.contains(&0) {
        return Err(Errno(libc::EINVAL).into());
    }
    let mut walk = Walk {
        store,
        mount_path,
        links: 0,
    };
    // Remaining path, rebuilt when a symlink is spliced in.
    let (mut dir, mut rest) = if path[0] == b'/' {
        let inside = strip_mount(path, mount_path).ok_or(OpError::Escaped)?;
        (ROOT_INO, inside.to_vec())
    } else {
        (base, path.to_vec())
    };
    walk.require_dir(dir)?;
    loop {
        let (name, tail, trailing_slash) = split_first(&rest);
        if name.is_empty() {
            // Only slashes (the mount root named absolutely): the base itself.
            let attr = store.getattr(dir)?;
            let parent = if dir == ROOT_INO {
                ROOT_INO
            } else {
                store.lookup(creds, dir, b"..")?.ino
            };
            return Ok(Resolved {
                parent,
                name: b".".to_vec(),
                target: Ok(attr),
                trailing_slash: true,
            });
        }
        if name.len() > NAME_MAX {
            return Err(Errno(libc::ENAMETOOLONG).into());
        }
        let last = tail.is_empty();
        if name == b".." && dir == ROOT_INO {
            return Err(OpError::Escaped);
        }
        let looked = store.lookup(creds, dir, name);
        if last {
            let follow = match last_link {
                Last::Follow => true,
                Last::NoFollow => trailing_slash,
                Last::Entry => false,
            };
            if let Ok(attr) = looked {
                if attr.kind == FileKind::Symlink && follow {
                    let (start, spliced) = walk.splice(dir, attr.ino, tail)?;
                    dir = start;
                    rest = spliced;
                    continue;
                }
                if trailing_slash && last_link != Last::Entry && attr.kind != FileKind::Directory {
                    return Err(Errno(libc::ENOTDIR).into());
                }
            }
            let name = name.to_vec();
            return Ok(Resolved {
                parent: dir,
                name,
                target: looked,
                trailing_slash,
            });
        }
        let attr = looked?;
        let tail = tail.to_vec();
        match attr.kind {
            FileKind::Directory => {
                dir = attr.ino;
                rest = tail;
            }
            FileKind::Symlink => {
                let (start, spliced) = walk.splice(dir, attr.ino, &tail)?;
                dir = start;
                rest = spliced;
            }
            _ => return Err(Errno(libc::ENOTDIR).into()),
        }
    }
}

struct Walk<'a> {
    store: &'a Store,
    mount_path: &'a [u8],
    links: u32,
}

impl Walk<'_> {
    fn require_dir(&self, ino: Ino) -> Result<(), OpError> {
        match self.store.getattr(ino)?.kind {
            FileKind::Directory => Ok(()),
            _ => Err(Errno(libc::ENOTDIR).into()),
        }
    }

    /// Replaces a symlink by its target: returns the directory to continue
    /// from and the new remaining path (target + "/" + tail).
    fn splice(&mut self, dir: Ino, link: Ino, tail: &[u8]) -> Result<(Ino, Vec<u8>), OpError> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(Errno(libc::ELOOP).into());
        }
        let target = self.store.readlink(link)?;
        let (start, target) = if target.first() == Some(&b'/') {
            match strip_mount(&target, self.mount_path) {
                Some(inside) => (ROOT_INO, inside.to_vec()),
                None => return Err(OpError::Escaped),
            }
        } else {
            (dir, target)
        };
        let mut rest = target;
        if !tail.is_empty() {
            rest.push(b'/');
            rest.extend_from_slice(tail);
        }
        if rest.is_empty() {
            rest.push(b'.');
        }
        Ok((start, rest))
    }
}

/// `path` relative to the mount if it names the mountpoint or something
/// under it (component-wise prefix), else `None`.
fn strip_mount<'p>(path: &'p [u8], mount_path: &[u8]) -> Option<&'p [u8]> {
    let mount = trim_trailing_slashes(mount_path);
    let rest = path.strip_prefix(mount)?;
    match rest.first() {
        None => Some(b"."),
        Some(b'/') => Some(rest),
        Some(_) => None,
    }
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &p[..end]
}

/// Splits off the first non-empty, non-"." component. Returns it, the rest,
/// and whether the component was followed by a slash with nothing after it.
fn split_first(path: &[u8]) -> (&[u8], &[u8], bool) {
    let mut p = path;
    loop {
        while let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        }
        let end = p.iter().position(|&b| b == b'/').unwrap_or(p.len());
        let (name, rest) = p.split_at(end);
        let rest_trimmed = {
            let mut r = rest;
            while let Some(x) = r.strip_prefix(b"/") {
                r = x;
            }
            r
        };
        // A "." on the way changes nothing; a final "." is kept, because
        // rmdir("d/.") must fail (EINVAL) instead of removing "d".
        if name == b"." && !rest_trimmed.is_empty() {
            p = rest_trimmed;
            continue;
        }
        let slash = !rest.is_empty() && rest_trimmed.is_empty();
        return (name, rest_trimmed, slash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_skips_dots_and_slashes() {
        assert_eq!(split_first(b"a/b"), (&b"a"[..], &b"b"[..], false));
        assert_eq!(split_first(b"./a//b/"), (&b"a"[..], &b"b/"[..], false));
        assert_eq!(split_first(b"b/"), (&b"b"[..], &b""[..], true));
        assert_eq!(split_first(b"b"), (&b"b"[..], &b""[..], false));
        assert_eq!(split_first(b"./."), (&b"."[..], &b""[..], false));
        assert_eq!(split_first(b"d/."), (&b"d"[..], &b"."[..], false));
        assert_eq!(split_first(b"/"), (&b""[..], &b""[..], false));
    }

    #[test]
    fn mount_prefix_matches_whole_components() {
        assert_eq!(strip_mount(b"/mnt/x/a", b"/mnt/x"), Some(&b"/a"[..]));
        assert_eq!(strip_mount(b"/mnt/x", b"/mnt/x/"), Some(&b"."[..]));
        assert_eq!(strip_mount(b"/mnt/xy/a", b"/mnt/x"), None);
        assert_eq!(strip_mount(b"/etc/passwd", b"/mnt/x"), None);
    }

    fn setup() -> (Store, Creds) {
        let store = Store::new(1 << 20);
        let c = Creds::root();
        let d = store.mkdir(&c, ROOT_INO, b"d", 0o755).unwrap();
        store
            .create(&c, d.ino, b"f", 0o644, libc::O_WRONLY)
            .unwrap();
        store.symlink(&c, ROOT_INO, b"rel", b"d/f").unwrap();
        store.symlink(&c, ROOT_INO, b"abs_in", b"/mnt/x/d").unwrap();
        store.symlink(&c, ROOT_INO, b"abs_out", b"/etc").unwrap();
        store.symlink(&c, ROOT_INO, b"up", b"..").unwrap();
        store.symlink(&c, ROOT_INO, b"loop", b"loop").unwrap();
        store.symlink(&c, ROOT_INO, b"dangling", b"d/new").unwrap();
        (store, c)
    }

    fn kind_of(store: &Store, c: &Creds, path: &[u8], follow: bool) -> Result<FileKind, OpError> {
        let last = if follow { Last::Follow } else { Last::NoFollow };
        let r = resolve(store, c, ROOT_INO, path, last, b"/mnt/x")?;
        Ok(r.found()?.kind)
    }

    #[test]
    fn follows_symlinks_inside_the_mount() {
        let (s, c) = setup();
        assert_eq!(kind_of(&s, &c, b"rel", true), Ok(FileKind::Regular));
        assert_eq!(kind_of(&s, &c, b"rel", false), Ok(FileKind::Symlink));
        assert_eq!(kind_of(&s, &c, b"abs_in/f", false), Ok(FileKind::Regular));
        assert_eq!(kind_of(&s, &c, b"d/../d/./f", false), Ok(FileKind::Regular));
        assert_eq!(kind_of(&s, &c, b"/mnt/x/d/f", false), Ok(FileKind::Regular));
    }

    #[test]
    fn leaving_the_mount_escapes() {
        let (s, c) = setup();
        assert_eq!(
            kind_of(&s, &c, b"abs_out/passwd", false),
            Err(OpError::Escaped)
        );
        assert_eq!(kind_of(&s, &c, b"..", false), Err(OpError::Escaped));
        assert_eq!(kind_of(&s, &c, b"d/../../x", false), Err(OpError::Escaped));
        assert_eq!(kind_of(&s, &c, b"up/x", false), Err(OpError::Escaped));
        assert_eq!(kind_of(&s, &c, b"/elsewhere", false), Err(OpError::Escaped));
    }

    #[test]
    fn errors_match_the_kernel() {
        let (s, c) = setup();
        let e = |x| Err(OpError::Errno(Errno(x)));
        assert_eq!(kind_of(&s, &c, b"loop", true), e(libc::ELOOP));
        assert_eq!(kind_of(&s, &c, b"d/f/x", false), e(libc::ENOTDIR));
        assert_eq!(kind_of(&s, &c, b"d/f/", false), e(libc::ENOTDIR));
        assert_eq!(kind_of(&s, &c, b"nope/x", false), e(libc::ENOENT));
        assert_eq!(kind_of(&s, &c, b"nope", false), e(libc::ENOENT));
        assert_eq!(kind_of(&s, &c, b"", false), e(libc::ENOENT));
        let long = vec![b'a'; 256];
        assert_eq!(kind_of(&s, &c, &long, false), e(libc::ENAMETOOLONG));
    }

    #[test]
    fn dangling_symlink_resolves_to_its_target_slot() {
        let (s, c) = setup();
        let r = resolve(&s, &c, ROOT_INO, b"dangling", Last::Follow, b"/mnt/x").unwrap();
        assert_eq!(r.name, b"new");
        assert_eq!(r.target, Err(Errno(libc::ENOENT)));
        assert_eq!(s.getattr(r.parent).unwrap().kind, FileKind::Directory);
        assert_ne!(r.parent, ROOT_INO);
    }
}
