//! What a `fork` does to the fast-path files and the channels: the
//! `pthread_atfork` handlers, which run for every fork of the process,
//! including glibc's internal ones (`system`, `popen`).
//!
//! They are registered by the first call that finds the fast path ready
//! (`state::ready` takes [`register_handlers`] as its first-ready hook):
//! before that the process has no fast-path file a fork could share, and
//! loading the library does no work.

use super::*;

/// Registers the fork handlers; run once, by `state`'s initialisation, when
/// the process has a mount table.
pub(super) fn register_handlers() {
    // SAFETY: registering plain functions; pthread_atfork is not hooked.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(leave_shared_files_to_kernel),
            Some(after_fork_child),
        )
    };
}

/// Starts the library now if it has not started (its discovery, the fork
/// handlers): a process about to `vfork` does, so that its child never
/// starts it for it (see `crate::process`).
pub(crate) fn start_library() {
    let _ = state::ready(register_handlers);
}

/// `pthread_atfork` prepare handler: the fast-path files become
/// kernel-backed, and the child finds the `exec` it is likely to call
/// resolved.
extern "C" fn before_fork() {
    let saved = sys::errno();
    state::end_vfork_before_fork();
    crate::real::resolve_exec_family();
    sys::set_errno(saved);
    upgrade_all_before_fork();
}

/// Before the process shares its fd table with another thread
/// (`pthread_create`, `clone(CLONE_FILES)`): if it has mounts to use, the
/// table is grown now for the library's descriptors, while growing it is
/// cheap (see `channel::grow_fd_table_while_alone`).
pub(crate) fn before_sharing_fd_table() {
    if state::ready(register_handlers) {
        channel::grow_fd_table_while_alone();
    }
}

/// `pthread_atfork` child handler: the child is a new client of every
/// daemon (new epoch and image number). It forgets, without touching shared
/// memory, the parent's channels; the parent's handles are not the child's:
/// the prepare handler made the files kernel-backed, and any fd it could
/// not is turned into a kernel fd on first use (`ops::file`).
extern "C" fn after_fork_child() {
    // A process that never connected has no channel nor handle to give up;
    // leaving its state unwritten spares a preloaded shell's children the
    // copy of those pages before their `exec`.
    if channel::ever_connected() {
        state::new_epoch();
        channel::forget_all_after_fork();
        filecache::after_fork_child();
    }
    public::after_fork();
}
