//! Calls that change what a path names: `chroot`, `pivot_root`, `unshare`
//! and `setns` of a mount or user namespace, and `clone` into one.
//!
//! The library decides by the path string whether a path lies on a btfuse
//! mount, with the mount table read at initialisation (and the metadata
//! cache even keeps answers by the string as written). After the process
//! changes its root or its mount namespace, `/mnt/x/f` may name another
//! file (the jail's own, a mount made over it) or none, so the rule is:
//!
//! * after a successful `chroot`, `pivot_root`, `unshare(CLONE_NEWNS)` or
//!   `setns` into a mount namespace, every call that names a path from the
//!   root or the cwd goes to the kernel, for the rest of the process image
//!   (`state::leave_paths_to_kernel`: a one-way flag, inherited by forked
//!   children, which inherit the root too; an `exec` starts afresh with
//!   the table its new view gives). Fast-path fds stay fast-path fds (they
//!   name handles, not paths), and so do names relative to one of them.
//!   Before the call every fast-path fd is made kernel-backed, while the
//!   mount path still names the mount: later hand-overs to the kernel
//!   (`fork`, `exec`, locks) then need no path;
//! * `unshare(CLONE_NEWUSER)` and `setns` into a user namespace (or of an
//!   unnamed type) change the capabilities the daemon was given at connect
//!   as well: the fast path is turned off for good, as for `setfsuid`, and
//!   the fds become plain kernel fds;
//! * `clone` (glibc's, or `syscall(SYS_clone/SYS_clone3)`) with
//!   `CLONE_NEWNS`, `CLONE_NEWUSER`, or `CLONE_FS` without `CLONE_VM` (the
//!   child may change the root the caller shares) sets the path flag in
//!   the caller before the call, so caller and child both have it.
//!
//! The named glibc functions are the bare system calls, so these hooks make
//! them directly; `syscall(3)` with these numbers comes here too (see
//! `process::syscall`). A change made by a system call instruction the
//! program issues itself is not seen (as for credentials).
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int, c_long};

use crate::ops;
use crate::state;
use crate::sys;
use crate::trampoline::variadic_trampoline;
use crate::uaccess;

/// What a call changes when it succeeds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing a path or the daemon's view of the process depends on.
    Nothing,
    /// What paths from the root or the cwd name.
    Paths,
    /// That, and the capabilities the daemon was given.
    Identity,
}

/// What `unshare(flags)` changes.
fn of_unshare(flags: c_long) -> Change {
    if flags & libc::CLONE_NEWUSER as c_long != 0 {
        Change::Identity
    } else if flags & libc::CLONE_NEWNS as c_long != 0 {
        Change::Paths
    } else {
        Change::Nothing
    }
}

/// What `setns(fd, nstype)` changes: the same `CLONE_NEW*` bits as
/// `unshare` (a pidfd takes a set of them), and 0 accepts any namespace
/// type.
fn of_setns(nstype: c_long) -> Change {
    match nstype {
        0 => Change::Identity,
        _ => of_unshare(nstype),
    }
}

/// Whether a `clone` with `flags` makes a process whose paths may mean
/// something else than the caller's, or that may change the caller's root.
fn clone_moves_paths(flags: u64) -> bool {
    let (ns, user) = (libc::CLONE_NEWNS as u64, libc::CLONE_NEWUSER as u64);
    let (fs, vm) = (libc::CLONE_FS as u64, libc::CLONE_VM as u64);
    flags & (ns | user) != 0 || flags & (fs | vm) == fs
}

/// Whether `syscall(nr, ...)` is one of this module's calls.
pub(crate) fn catches(nr: c_long) -> bool {
    matches!(
        nr,
        libc::SYS_chroot
            | libc::SYS_pivot_root
            | libc::SYS_unshare
            | libc::SYS_setns
            | libc::SYS_clone
            | libc::SYS_clone3
    )
}

/// System call `nr` (one that [`catches`]) with the caller's arguments, in
/// libc's convention for the result (see the module comment).
///
/// # Safety
/// The arguments must be valid for system call `nr`.
pub(crate) unsafe fn syscall(nr: c_long, args: [c_long; 6]) -> c_long {
    if state::in_vfork_child() {
        // SAFETY: the caller's contract (see `crate::process`).
        return sys::libc_result(unsafe { sys::raw(nr, args) });
    }
    let change = match nr {
        libc::SYS_chroot | libc::SYS_pivot_root => Change::Paths,
        libc::SYS_unshare => of_unshare(args[0]),
        libc::SYS_setns => of_setns(args[1]),
        _ => {
            // clone: the flags are the first argument, or the first field
            // of `struct clone_args` (unreadable: the kernel answers EFAULT).
            let flags = match nr {
                libc::SYS_clone3 => uaccess::read_val(args[0] as *const u64).unwrap_or(0),
                _ => args[0] as u64,
            };
            note_shared_memory(flags);
            if clone_moves_paths(flags) {
                state::leave_paths_to_kernel();
            }
            Change::Nothing
        }
    };
    if change != Change::Nothing {
        ops::upgrade_all_before_fork();
    }
    // SAFETY: the caller's contract.
    let r = unsafe { sys::raw(nr, args) };
    if sys::check(r).is_ok() && change != Change::Nothing {
        let saved = sys::errno();
        state::leave_paths_to_kernel();
        if change == Change::Identity {
            sys::debug(&[b"btfuse: user namespace changed; fast path off"]);
            ops::forget_all();
            state::disable();
        }
        sys::set_errno(saved);
    }
    sys::libc_result(r)
}

/// `chroot(2)`: see the module comment.
#[no_mangle]
pub unsafe extern "C" fn chroot(p: *const c_char) -> c_int {
    // SAFETY: the caller's argument for the caller's system call.
    unsafe { syscall(libc::SYS_chroot, [p as c_long, 0, 0, 0, 0, 0]) as c_int }
}

/// `pivot_root(2)`: see the module comment.
#[no_mangle]
pub unsafe extern "C" fn pivot_root(new_root: *const c_char, put_old: *const c_char) -> c_int {
    let args = [new_root as c_long, put_old as c_long, 0, 0, 0, 0];
    // SAFETY: the caller's arguments for the caller's system call.
    unsafe { syscall(libc::SYS_pivot_root, args) as c_int }
}

/// `unshare(2)`: see the module comment.
#[no_mangle]
pub unsafe extern "C" fn unshare(flags: c_int) -> c_int {
    // SAFETY: the caller's argument for the caller's system call.
    unsafe { syscall(libc::SYS_unshare, [flags as c_long, 0, 0, 0, 0, 0]) as c_int }
}

/// `setns(2)`: see the module comment.
#[no_mangle]
pub unsafe extern "C" fn setns(fd: c_int, nstype: c_int) -> c_int {
    let args = [fd as c_long, nstype as c_long, 0, 0, 0, 0];
    // SAFETY: the caller's arguments for the caller's system call.
    unsafe { syscall(libc::SYS_setns, args) as c_int }
}

/// Run before glibc's `clone` with its flags (the third argument): sets the
/// path flag when they ask for it, grows the fd table first if the child
/// will share it; returns the real `clone`'s address.
extern "C" fn prepare_clone(flags: c_int) -> usize {
    // A vfork child (which may not call this) keeps its parent's state.
    if state::in_vfork_child() {
        return crate::real::clone() as usize;
    }
    note_shared_memory(flags as u32 as u64);
    if flags & libc::CLONE_FILES != 0 {
        crate::ops::before_sharing_fd_table();
    }
    if clone_moves_paths(flags as u32 as u64) {
        state::leave_paths_to_kernel();
    }
    crate::real::clone() as usize
}

/// A `clone` with `flags` that makes another thread of execution of the
/// process's memory: no real `vfork` from then on (see `crate::process`).
fn note_shared_memory(flags: u64) {
    let vm = libc::CLONE_VM as u64;
    if flags & vm != 0 && flags & libc::CLONE_VFORK as u64 == 0 {
        state::note_memory_shared();
    }
}

// glibc's `clone(fn, stack, flags, arg, ...)` is variadic and its child
// starts on another stack: a trampoline (see `crate::trampoline`) runs the
// preparation with the flags and jumps to glibc's with the caller's
// registers and stack untouched.
variadic_trampoline!(
    "`clone(2)` (glibc's wrapper): see the module comment.",
    clone,
    prepare_clone,
    third_argument
);
