//! The core's cache-invalidation trait: what a door that changes the store
//! must tell whoever caches it elsewhere. The FUSE door implements it (the
//! kernel's caches); the ring door calls it. One more duty of the kernel's
//! side lives here too: opening a file through the kernel for a client
//! ([`KernelCache::open_for_client`]).

use std::io;
use std::os::fd::OwnedFd;

use inode_store::Ino;

/// Receives notice of changes the kernel may have cached (the FUSE door).
pub trait KernelCache {
    /// Data or attributes of `ino` changed.
    fn inode_changed(&self, ino: Ino);
    /// The fast path is about to read or change bytes `off..off + len` of
    /// regular file `ino` (`len` 0: from `off` to the end): what the kernel
    /// holds newer than the store there must reach it first (rule 1 of
    /// `crate::fuse_door::coherence`).
    fn before_data(&self, ino: Ino, off: u64, len: u64);
    /// Whether the kernel may hold pages of `ino` now (bytes of it read
    /// now may then not be kept by a client: see `proto::ops::ReadOut`).
    fn holds_pages(&self, ino: Ino) -> bool;
    /// Bytes `off..off + len` of regular file `ino` changed (`len` 0: from
    /// `off` to the end, and the size may have changed); a change that
    /// reaches the end of the file may have moved it (rules 2 and 3 of
    /// `crate::fuse_door::coherence`). Done before the reply is sent.
    fn data_changed(&self, ino: Ino, off: u64, len: u64);
    /// The entry `name` in `parent` was removed or replaced.
    fn entry_changed(&self, parent: Ino, name: &[u8]);
    /// Directory `ino` was renamed or moved: the kernel's own references
    /// into it (a cwd, open fds) still carry its old name until the kernel
    /// looks up the new one.
    fn dir_moved(&self, ino: Ino);
    /// Opens the mount's root entry `name` (a handle's reserved name,
    /// `proto::handle_name`) through the kernel with open flags `flags`, as
    /// the daemon itself, for a client the caller checked; the kernel's
    /// entry of the name is dropped afterwards, as after a client's own
    /// reopen (`proto::ops::DropHandleName`).
    fn open_for_client(&self, name: &[u8], flags: i32) -> io::Result<OwnedFd>;
}
