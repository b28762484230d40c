//! The process lifecycle seen from the library's state: what a `fork`
//! (any, including glibc's internal ones, through `pthread_atfork`) and the
//! process's normal exit do to the fast-path files and the channels. The
//! hooks on `exec`, `vfork`, spawning and credential changes are in
//! `process`.
//!
//! This module sits above `state`, `channel`, `ops` and `stdio` and calls
//! into them; `state` reaches it only to register the fork handlers once
//! the mount table is known (see [`register_fork_handlers`]).

use crate::channel;
use crate::metacache;
use crate::ops;
use crate::state;
use crate::stdio;

/// Registers the fork handlers; called once, by `state`'s initialisation,
/// when the process has a mount table (before that there is nothing a fork
/// could share).
pub(crate) fn register_fork_handlers() {
    // SAFETY: registering plain functions; pthread_atfork is not hooked.
    unsafe {
        libc::pthread_atfork(
            Some(ops::upgrade_all_before_fork),
            Some(ops::leave_shared_files_to_kernel),
            Some(after_fork_child),
        )
    };
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
    }
}

/// Runs at normal process exit, like a C destructor.
#[used]
#[link_section = ".fini_array"]
static AT_EXIT: extern "C" fn() = at_exit;

/// Writes the streams' pending output while the channels are still open
/// (glibc flushes stdio only after the destructors), then closes them.
extern "C" fn at_exit() {
    stdio::flush_at_exit();
    channel::close_all_at_exit();
    metacache::report_at_exit();
}
