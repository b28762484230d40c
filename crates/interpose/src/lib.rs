//! `libbtfuse.so`: the btfuse fast path, loaded with `LD_PRELOAD`.
//!
//! A `#![no_std]` cdylib over core + libc (+ the `proto` wire format and the
//! `shm_ring` transport): its only `NEEDED` entry is `libc.so.6`, and it
//! does nothing at load time. On the first call that names a path it reads
//! the daemons' mount registry (or, in another mount namespace or root,
//! `/proc/self/mountinfo`) once (discovery), and from then on serves calls
//! on btfuse mounts over shared memory. See `hooks` for what is caught.
//!
//! Modules:
//! * pure logic, unit tested with std: `path` (classification, lexical
//!   normalisation; the discovery table is `proto::mountinfo`), `fmode`
//!   (stdio mode strings), `fdtable`
//!   (virtual fds and open file descriptions), `callargs` (flags, times
//!   and ownership computed from a hook's arguments);
//! * `sys` (raw syscalls), `real` (lazy `dlsym(RTLD_NEXT)`), `state`
//!   (lazy init, cwd filter, umask, fork epoch), `mapped` (memory sized
//!   at run time: the mount table, channel slots),
//!   `channel` (all shm-ring use), `ops` (requests and reply
//!   conversions; `ops::siblings`, the sibling prefetch), `dir` (DIR
//!   streams), `listing` (listings with attributes read into the cache,
//!   shared by both), `hooks` (the exported symbols: one
//!   table, handlers by family), `lifecycle` (exit; fork handlers are `ops::fork`),
//!   `process` (credential changes, exec, spawning, vfork; `trampoline`
//!   makes the variadic hooks), `namespace`
//!   (chroot, mount and user namespaces), `fdpass`
//!   (fds sent to other processes), `stdio` (`FILE` streams on mount
//!   files), `uaccess` (fault-tolerant access to the caller's memory:
//!   `EFAULT` instead of a crash, and the `SIGSEGV`/`SIGBUS` handler and
//!   hooks that make it work).
//!
//! Small statics that most processes touch (the real functions' slots,
//! initialisation and cache flags, counters) carry
//! `#[link_section = ".data.btfuse_hot"]`: side by side in `.data`, on the
//! page the dynamic loader writes anyway when it relocates the library.
//! Left in `.bss` they were spread over a dozen pages between the large
//! tables, and the first touch of each such page is a page fault (1–2.5
//! µs on this VM; a read then a write of a fresh page, two): a preloaded
//! `cat` took 109 faults off the mount and 125 on it, now 99 and 113.
//!
//! Imports go one way (checked by the `import_graph` unit test): `sys` at
//! the bottom, `state`, `channel` and `ops` above it, the hooks on top,
//! with no back-edge (lazy initialisation, in `state`, runs a hook its
//! caller passes, which is how `ops` registers the fork handlers).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(test, allow(dead_code))]

pub(crate) mod callargs;
pub(crate) mod fdtable;
pub(crate) mod fmode;
pub(crate) mod path;

#[cfg(test)]
mod hook_table;
#[cfg(test)]
mod import_graph;

#[cfg(not(test))]
mod channel;
#[cfg(not(test))]
mod dir;
#[cfg(not(test))]
mod fdpass;
#[cfg(not(test))]
mod hooks;
#[cfg(not(test))]
mod lifecycle;
#[cfg(not(test))]
mod listing;

mod filecache;
mod lazy_table;
mod linkcache;
mod listcache;
#[cfg(not(test))]
mod mapped;
mod trylock;

mod metacache;
#[cfg(not(test))]
mod namespace;
mod opendata;
#[cfg(not(test))]
mod ops;
#[cfg(not(test))]
mod process;
// Opens from the table the daemon publishes for every process.
#[cfg(not(test))]
mod public;
#[cfg(not(test))]
mod real;
#[cfg(not(test))]
mod state;
#[cfg(not(test))]
mod stdio;
#[cfg(not(test))]
mod sys;
#[cfg(not(test))]
mod timeline;
#[cfg(not(test))]
mod trampoline;
#[cfg(not(test))]
mod uaccess;
mod walk;

// The `libc` crate emits no link directive when another crate of the
// workspace enables its `std` feature (cargo unifies features), so ask for
// libc.so.6 here: it must be this library's one and only NEEDED entry.
#[cfg(not(test))]
#[link(name = "c")]
extern "C" {}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort never returns and is async-signal-safe.
    unsafe { libc::abort() }
}

/// With `panic = "abort"` nothing unwinds, but the precompiled `core`
/// still references the personality routine; this empty definition keeps
/// the loader from failing on it (it is never called).
#[cfg(not(test))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}
