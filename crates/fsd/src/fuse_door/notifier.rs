//! The FUSE door's side of coherence: [`KernelNotifier`] implements the
//! core's [`KernelCache`] with fuser's `Notifier`, so the ring door tells the
//! kernel what went stale without knowing that a kernel is there.

use std::ffi::OsStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use fuser::{INodeNo, Notifier};
use inode_store::{Ino, Store};

use super::coherence::{refresh_kernel_attrs, KernelPages};
use crate::fs_core::KernelCache;

/// Pushes changes made beside the kernel (by the ring door) into the
/// kernel's FUSE caches.
pub struct KernelNotifier {
    notifier: Notifier,
    store: Arc<Store>,
    /// Whose pages the kernel may hold (recorded by [`super::FuseFs`]).
    pages: Arc<KernelPages>,
    /// The mountpoint, canonical (no trailing slash but for `/` itself).
    mount_path: Vec<u8>,
}

impl KernelNotifier {
    /// Notifies the kernel of the FUSE mount at `mount_path` (canonical)
    /// through `notifier`, about inodes of `store`; `pages` is the FUSE
    /// door's record of the files the kernel has read or written.
    pub fn new(
        notifier: Notifier,
        store: Arc<Store>,
        pages: Arc<KernelPages>,
        mount_path: &Path,
    ) -> KernelNotifier {
        KernelNotifier {
            notifier,
            store,
            pages,
            mount_path: mount_path.as_os_str().as_bytes().to_vec(),
        }
    }
}

impl KernelCache for KernelNotifier {
    fn inode_changed(&self, ino: Ino) {
        if self.store.has_lookups(ino) {
            // Attributes and all cached pages. ENOENT (the kernel dropped the
            // inode meanwhile) is fine.
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
    }

    fn before_data(&self, ino: Ino, _off: u64, _len: u64) {
        if self.pages.take(ino) {
            // Writes the dirty pages back to the store, then drops them
            // all (and the attributes): see `KernelPages::take`. The range
            // alone would leave the others for the next call to drop.
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
    }

    fn holds_pages(&self, ino: Ino) -> bool {
        self.pages.holds(ino)
    }

    fn data_changed(&self, ino: Ino, off: u64, len: u64) {
        if !self.store.has_lookups(ino) {
            return;
        }
        let _ = self
            .notifier
            .inval_inode(INodeNo(ino), off as i64, len as i64);
        let reaches_end = || {
            self.store
                .getattr(ino)
                .is_ok_and(|a| off.saturating_add(len) >= a.size)
        };
        if len == 0 || reaches_end() {
            if let Err(e) = refresh_kernel_attrs(&self.mount_path, ino) {
                // ESTALE: the kernel forgot the inode meanwhile (then it has
                // no size to correct).
                log::debug!("refreshing the kernel's size of inode {ino}: {e}");
            }
        }
    }

    fn dir_moved(&self, ino: Ino) {
        if !self.store.has_lookups(ino) {
            return;
        }
        // FUSE has no notification that renames a cached entry, but a
        // lookup of the new name makes the kernel move its dentry of the
        // directory there (`d_splice_alias`): `getcwd` and
        // `/proc/PID/fd` of processes inside it then name it as it is.
        // The lookup is served by the FUSE threads; this thread holds no
        // lock of the store meanwhile.
        if let Ok(path) = self.store.dir_path(ino) {
            let root = Path::new(OsStr::from_bytes(&self.mount_path));
            let _ = lookup_beneath(root, &path);
        }
    }

    fn entry_changed(&self, parent: Ino, name: &[u8]) {
        if self.store.has_lookups(parent) {
            let _ = self
                .notifier
                .inval_entry(INodeNo(parent), OsStr::from_bytes(name));
        }
    }

    fn open_for_client(&self, name: &[u8], flags: i32) -> io::Result<OwnedFd> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut path = self.mount_path.clone();
        if path != b"/" {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        let mode = flags & libc::O_ACCMODE;
        let opened = std::fs::OpenOptions::new()
            .read(mode != libc::O_WRONLY)
            .write(mode != libc::O_RDONLY)
            .custom_flags(flags & !libc::O_ACCMODE | libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(Path::new(OsStr::from_bytes(&path)));
        // Served by the FUSE door's threads (`FuseFs::held_open`), which
        // took a kernel reference on the inode for the name: only the
        // opened file may keep it.
        self.entry_changed(inode_store::ROOT_INO, name);
        Ok(opened?.into())
    }
}

/// Looks `rel` up through the kernel below the directory `root`, following
/// no symlink and crossing no mount (`openat2` with `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`): clients can rename things under
/// the mount at any time, and the daemon must not be led anywhere else.
fn lookup_beneath(root: &Path, rel: &[u8]) -> io::Result<()> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)?;
    let rel =
        std::ffi::CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all-zero is a valid open_how (a plain struct of integers).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_XDEV;
    // SAFETY: a valid directory fd, a NUL-terminated path and an open_how
    // of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            rel.as_ptr(),
            &how as *const libc::open_how,
            size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd, owned here and closed at once.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    Ok(())
}
