//! The process lifecycle seen from the library's state: what the
//! process's normal exit does to the streams and the channels. What a
//! `fork` does is in `ops::fork` (its handlers are registered by the lazy
//! initialisation, below this module); the hooks on `exec`, `vfork`,
//! spawning and credential changes are in `process`.
//!
//! This module sits above `channel` and `stdio` and calls into them.

use crate::channel;
use crate::metacache;
use crate::stdio;
use crate::timeline::{self, Mark};

/// Runs at normal process exit, like a C destructor.
#[used]
#[link_section = ".fini_array"]
static AT_EXIT: extern "C" fn() = at_exit;

/// Writes the streams' pending output while the channels are still open
/// (glibc flushes stdio only after the destructors), then closes them.
extern "C" fn at_exit() {
    // A vfork child that calls `exit` (it should `_exit`): the channels
    // and buffers are its parent's.
    if crate::state::in_vfork_child() {
        return;
    }
    timeline::mark(Mark::ExitBegin);
    stdio::flush_at_exit();
    channel::close_all_at_exit();
    metacache::report_at_exit();
    timeline::mark(Mark::ExitEnd);
    timeline::print();
}
