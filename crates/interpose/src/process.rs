//! Process-level hooks: credential changes, `exec`, spawning, `vfork`.
//!
//! # Credential changes
//!
//! The daemon takes a channel's credentials from `SO_PEERCRED` when it
//! connects (the effective uid/gid) and files the channel under a client
//! per (pid, uid, gid); handles belong to that client. A process that
//! drops root (`setuid`, `setresgid`, `setgroups`, ...) must therefore
//! never send another request on a channel it opened as root. Each hook:
//!
//! 1. before the real call, makes every fast-path fd kernel-backed
//!    (`ops::upgrade`): the kernel fd is opened while the process still
//!    has the old identity, so it keeps its access, as POSIX keeps an open
//!    fd's access across `setuid`;
//! 2. calls the real function; on failure nothing else changes (the fds
//!    stay kernel-backed, which is always correct);
//! 3. on success starts a new epoch: every channel of the old one is
//!    closed (or, if another thread is using it, closed by the next
//!    `channel::acquire` instead of used), every fd stops being a
//!    fast-path fd (they are plain kernel fds on the FUSE mount now), and
//!    the next path call connects again with the new credentials.
//!
//! `setfsuid`/`setfsgid` change an identity `SO_PEERCRED` does not report
//! (the kernel's FUSE requests carry the fs ids, the daemon would see the
//! effective ones): a process whose fs ids leave its effective ones turns
//! the fast path off for good (everything goes through the kernel).
//!
//! The daemon also takes the process's effective capabilities at connect
//! (it decides as the kernel does, by capabilities, not by uid 0), so
//! `capset` is a credential change like the others. libcap and libcap-ng
//! (`capsh`, `setpriv`) change capabilities (and ids) through `syscall(3)`,
//! not through the named wrappers: the `syscall` hook catches the
//! credential system calls (`setuid`, `setgid`, `setreuid`, `setregid`,
//! `setresuid`, `setresgid`, `setgroups`, `setfsuid`, `setfsgid`,
//! `capset`) and treats them exactly like the named wrappers. `prctl`
//! changes no effective set (`PR_CAPBSET_DROP` and `PR_CAP_AMBIENT` act
//! at the next `exec`, which reconnects anyway).
//!
//! Exact remaining rule: a credential change made by a system call
//! instruction the program issues itself (not through libc: its own
//! `syscall` stub, Go-style runtimes, inline assembly) is not seen; the
//! process keeps the identity its channels were opened with until its next
//! reconnect (`fork`, `exec`, a seen credential change). Such a change
//! only ever affects the calling thread; glibc's own wrappers and
//! `syscall(3)` are all caught. Per-thread changes made with the raw
//! calls above are applied to the whole process's channels (all
//! reconnect) although only one thread changed: the other threads then
//! connect with whatever identity they hold, which the kernel grants them
//! anyway.
//!
//! # exec and spawning
//!
//! A fast-path fd's number holds an `O_PATH` placeholder in the kernel.
//! Before every `exec*`, each fd the new program inherits (no
//! `FD_CLOEXEC`) is made kernel-backed, so the new program (preloaded or
//! not) finds a real fd on the same file with the shared offset. glibc's
//! `posix_spawn` child runs its file actions with internal system calls
//! (no hook runs in it), and an `adddup2` action may name any fd, so
//! `posix_spawn` upgrades every fast-path fd, as `fork` does. `system`
//! and `popen` spawn through glibc-internal calls and are caught at their
//! entry points.
//!
//! # vfork
//!
//! A `vfork` child shares the parent's memory until it execs or exits: a
//! hook it ran (a `close`, a `dup2`, an `open` on a mount) would edit the
//! parent's fd table or use the parent's channels from another process.
//! `vfork` is a real one when that cannot happen, and `fork` (allowed by
//! POSIX; the child may only exec or `_exit` either way) otherwise:
//! * real when the process has one thread and never shared its memory
//!   otherwise (`pthread_create`, `clone(CLONE_VM)`: other threads would
//!   go on running in the shared memory; the kernel's thread count catches
//!   glibc's own helper threads) and holds no fast-path fd and no shadowed
//!   kernel directory fd (the child's `exec` would have to make them
//!   kernel-backed, in the parent's fd table too). What the child could
//!   otherwise set up for its parent is done first (the library's start,
//!   the fault handler, the `exec` family resolved), the process is marked
//!   as vforking (`state::start_vfork`) and glibc's `vfork` runs; the
//!   child, finding itself another process than the one marked, leaves
//!   every call to the kernel and keeps no fact it works out: paths
//!   (`state::paths_by_kernel`), the fd calls that keep the library's own
//!   descriptors (`close`, `close_range`, `dup2`, `dup3`), `umask`, the
//!   `SIGSEGV`/`SIGBUS` dispositions, credential and namespace changes,
//!   `clone` and `pthread_create`, the exit's channel teardown, the kept
//!   cwd. The parent clears the mark at its first look once the child ran.
//!   A `gcc` driver starts `cc1` and `as` this way: a `fork` of it cost
//!   ~270 µs more a child (page tables copied, then copy-on-write faults
//!   in both);
//! * `fork` otherwise, which runs the `pthread_atfork` handlers: the child
//!   gets its own channels.
//!
//! `clone(CLONE_VM)` called directly is out of reach; it must not call
//! hooked functions before it execs (glibc's own `posix_spawn` child does
//! not).
//!
//! # Descriptors through `syscall(3)`
//!
//! `close`, `close_range`, `dup`, `dup2` and `dup3` made through
//! `syscall(3)` go through the named functions' hooks, so a fast-path fd's
//! number never returns to the kernel behind the fd table's back (a kernel
//! file given that number next was read as the fast-path file). Other
//! calls on a fast-path fd made that way reach its `O_PATH` placeholder and
//! fail with `EBADF`, as do those made with a system call instruction.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int, c_long, c_void};

use libc::{gid_t, pid_t, size_t, uid_t};

use crate::namespace;
use crate::ops;
use crate::real;
use crate::state;
use crate::sys::{self, errno, set_errno};
use crate::trampoline::variadic_trampoline;

/// After a successful credential change: new epoch, forget every fd (they
/// were made kernel-backed before the change), close the old channels.
fn after_cred_change() {
    // A vfork child's identity is its own; the state is its parent's.
    if state::in_vfork_child() {
        return;
    }
    let saved = errno();
    state::new_epoch();
    ops::forget_all();
    crate::channel::close_stale();
    state::ids_changed();
    set_errno(saved);
}

macro_rules! cred_hooks {
    ($( $name:ident ( $($a:ident : $t:ty),* ) ; )*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`: a credential change (see the module comment): files become kernel-backed first; on success the process starts a new epoch.")]
            #[no_mangle]
            pub unsafe extern "C" fn $name($($a: $t),*) -> c_int {
                ops::upgrade_all_before_fork();
                // SAFETY: forwards the caller's arguments.
                let r = unsafe { real::$name()($($a),*) };
                if r == 0 {
                    after_cred_change();
                }
                r
            }
        )*
    };
}

cred_hooks! {
    setuid(u: uid_t);
    seteuid(u: uid_t);
    setreuid(r: uid_t, e: uid_t);
    setresuid(r: uid_t, e: uid_t, s: uid_t);
    setgid(g: gid_t);
    setegid(g: gid_t);
    setregid(r: gid_t, e: gid_t);
    setresgid(r: gid_t, e: gid_t, s: gid_t);
    setgroups(n: size_t, list: *const gid_t);
    initgroups(user: *const c_char, g: gid_t);
}

/// `capset(2)`: a credential change (see the module comment). glibc's
/// `capset` is the bare system call, so this is too.
#[no_mangle]
pub unsafe extern "C" fn capset(header: *mut c_void, data: *const c_void) -> c_int {
    // SAFETY: forwards the caller's arguments to the system call the
    // caller asked for.
    let r = unsafe {
        credential_syscall(
            libc::SYS_capset,
            [header as c_long, data as c_long, 0, 0, 0, 0],
        )
    };
    r as c_int
}

/// `syscall(3)`: the credential system calls are caught (see the module
/// comment), and those that change what paths name (`crate::namespace`);
/// every other number is passed to the kernel unchanged, with
/// libc's convention for the result (-1 and errno on failure).
///
/// glibc declares `long syscall(long number, ...)`. This definition is not
/// variadic: it takes the number and six `long` arguments, which is what a
/// variadic call passes in the same registers on x86_64 and aarch64 (SysV
/// / AAPCS64 on Linux: variadic integer arguments use the ordinary
/// argument registers, the seventh on x86_64 the first stack slot, which
/// is part of the caller's frame, so reading it is always valid even when
/// the caller passed fewer arguments; a missing argument reads as
/// garbage, which glibc's `syscall` passes to the kernel too). `al` on
/// x86_64 (the count of vector registers a variadic call uses) is not
/// read. The library's own system calls do not come here: they use the
/// `syscall` instruction directly (`sys::raw`).
///
/// # Safety
/// As for `syscall(3)`: the arguments must be valid for system call `nr`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn syscall(
    nr: c_long,
    a0: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
) -> c_long {
    let args = [a0, a1, a2, a3, a4, a5];
    match nr {
        libc::SYS_setuid
        | libc::SYS_setgid
        | libc::SYS_setreuid
        | libc::SYS_setregid
        | libc::SYS_setresuid
        | libc::SYS_setresgid
        | libc::SYS_setgroups
        | libc::SYS_capset => {
            // SAFETY: the caller's arguments for the caller's system call.
            unsafe { credential_syscall(nr, args) }
        }
        libc::SYS_setfsuid | libc::SYS_setfsgid => {
            // setfsuid never fails: it returns the previous id.
            set_fs_id(a0 as u32, nr == libc::SYS_setfsgid, || {
                // SAFETY: the caller's arguments for the caller's call.
                unsafe { sys::raw(nr, args) as c_int }
            }) as c_long
        }
        // SAFETY: the caller's arguments for the caller's system call.
        nr if namespace::catches(nr) => unsafe { namespace::syscall(nr, args) },
        // SAFETY: the caller's arguments for the caller's system call.
        nr if catches_fd_table(nr) => unsafe { fd_table_syscall(nr, args) },
        libc::SYS_openat2 => {
            let how = a2 as *const libc::open_how;
            // SAFETY: the caller's arguments for the caller's system call.
            unsafe {
                crate::hooks::openat2_syscall(a0 as c_int, a1 as *const c_char, how, a3 as usize)
            }
        }
        // SAFETY: the caller's arguments for the caller's system call.
        _ => sys::libc_result(unsafe { sys::raw(nr, args) }),
    }
}

/// Whether `syscall(nr, ...)` closes or duplicates descriptors: those go
/// through the named functions' hooks, as if the program had called them
/// (programs built against a glibc without a `close_range` wrapper call it
/// this way). Passed to the kernel alone, a `close` of a fast-path fd freed
/// its number behind the fd table's back, and the next kernel file given
/// that number was read as the fast-path file.
fn catches_fd_table(nr: c_long) -> bool {
    matches!(
        nr,
        libc::SYS_close | libc::SYS_close_range | libc::SYS_dup | libc::SYS_dup2 | libc::SYS_dup3
    )
}

/// System call `nr` (one that [`catches_fd_table`]) through its hook.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
unsafe fn fd_table_syscall(nr: c_long, [a0, a1, a2, ..]: [c_long; 6]) -> c_long {
    use crate::hooks;
    let (fd, fd2, flags) = (a0 as c_int, a1 as c_int, a2 as c_int);
    // SAFETY: the hooks take the same arguments as the system calls, under
    // the caller's contract; every one returns -1 with errno on failure,
    // as `syscall(3)` does.
    unsafe {
        c_long::from(match nr {
            libc::SYS_close => hooks::close(fd),
            libc::SYS_close_range => hooks::close_range(a0 as u32, a1 as u32, flags),
            libc::SYS_dup => hooks::dup(fd),
            libc::SYS_dup2 => hooks::dup2(fd, fd2),
            _ => hooks::dup3(fd, fd2, flags),
        })
    }
}

/// A credential-changing system call made by the program (not through a
/// named glibc wrapper): the same three steps as the `cred_hooks`.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
unsafe fn credential_syscall(nr: c_long, args: [c_long; 6]) -> c_long {
    ops::upgrade_all_before_fork();
    // SAFETY: the caller's contract.
    let r = unsafe { sys::raw(nr, args) };
    if r == 0 {
        after_cred_change();
    }
    sys::libc_result(r)
}

/// The thread's current fs uid (`setfsuid(-1)` changes nothing and
/// returns it) or fs gid.
fn current_fs_id(gid: bool) -> u32 {
    let nr = if gid {
        libc::SYS_setfsgid
    } else {
        libc::SYS_setfsuid
    };
    sys::sc!(nr, u32::MAX).map(|v| v as u32).unwrap_or(u32::MAX)
}

fn effective_id(gid: bool) -> u32 {
    let nr = if gid {
        libc::SYS_getegid
    } else {
        libc::SYS_geteuid
    };
    sys::sc!(nr).map(|v| v as u32).unwrap_or(u32::MAX)
}

/// `setfsuid`/`setfsgid`: see the module comment.
fn set_fs_id(id: u32, gid: bool, real: impl FnOnce() -> c_int) -> c_int {
    if id == u32::MAX || id == effective_id(gid) || state::in_vfork_child() {
        // A query, or back to the effective id: nothing the daemon
        // cannot see.
        return real();
    }
    ops::upgrade_all_before_fork();
    let r = real();
    if current_fs_id(gid) != effective_id(gid) {
        let saved = errno();
        sys::debug(&[b"btfuse: fs ids differ from effective ids; fast path off"]);
        state::disable();
        after_cred_change();
        set_errno(saved);
    }
    r
}

/// `setfsuid(2)`: a change of the filesystem uid (see the module comment).
#[no_mangle]
pub unsafe extern "C" fn setfsuid(u: uid_t) -> c_int {
    // SAFETY: forwards the caller's argument.
    set_fs_id(u, false, || unsafe { real::setfsuid()(u) })
}

/// `setfsgid(2)`: a change of the filesystem gid (see the module comment).
#[no_mangle]
pub unsafe extern "C" fn setfsgid(g: gid_t) -> c_int {
    // SAFETY: forwards the caller's argument.
    set_fs_id(g, true, || unsafe { real::setfsgid()(g) })
}

// ---- exec ------------------------------------------------------------------

type Argv = *const *const c_char;

/// `execve(2)`: inheritable fast-path fds become kernel fds first, so the new program keeps them.
#[no_mangle]
pub unsafe extern "C" fn execve(p: *const c_char, argv: Argv, envp: Argv) -> c_int {
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's arguments.
    unsafe { real::execve()(p, argv, envp) }
}

/// `execv(3)`: as [`execve`].
#[no_mangle]
pub unsafe extern "C" fn execv(p: *const c_char, argv: Argv) -> c_int {
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's arguments.
    unsafe { real::execv()(p, argv) }
}

/// `execvp(3)`: as [`execve`].
#[no_mangle]
pub unsafe extern "C" fn execvp(p: *const c_char, argv: Argv) -> c_int {
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's arguments.
    unsafe { real::execvp()(p, argv) }
}

/// `execvpe(3)`: as [`execve`].
#[no_mangle]
pub unsafe extern "C" fn execvpe(p: *const c_char, argv: Argv, envp: Argv) -> c_int {
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's arguments.
    unsafe { real::execvpe()(p, argv, envp) }
}

/// `fexecve(3)`: as [`execve`]; a fast-path fd to run becomes a kernel fd.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    if let Err(e) = ops::kernel_fd(fd) {
        set_errno(e);
        return -1;
    }
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's arguments.
    unsafe { real::fexecve()(fd, argv, envp) }
}

/// `execveat(2)`: as [`execve`], relative to a directory fd.
#[no_mangle]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    p: *const c_char,
    argv: Argv,
    envp: Argv,
    flags: c_int,
) -> c_int {
    if let Err(e) = ops::kernel_fd(dirfd) {
        set_errno(e);
        return -1;
    }
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's arguments.
    unsafe { real::execveat()(dirfd, p, argv, envp, flags) }
}

/// The variadic `execl`, `execlp`, `execle`: a trampoline saves the
/// argument registers, runs the preparation (which returns the real
/// function's address), restores them and jumps there, so the caller's
/// argument list (registers and stack) reaches glibc untouched.
extern "C" fn prepare_execl() -> usize {
    ops::upgrade_inheritable();
    real::execl() as usize
}
extern "C" fn prepare_execlp() -> usize {
    ops::upgrade_inheritable();
    real::execlp() as usize
}
extern "C" fn prepare_execle() -> usize {
    ops::upgrade_inheritable();
    real::execle() as usize
}

/// The doc comment of the `exec*` trampolines.
macro_rules! exec_doc {
    ($name:literal) => {
        concat!("`", $name, "(3)`: inheritable fast-path fds become kernel fds, then glibc's runs with the caller's registers and stack untouched.")
    };
}

variadic_trampoline!(exec_doc!("execl"), execl, prepare_execl);
variadic_trampoline!(exec_doc!("execlp"), execlp, prepare_execlp);
variadic_trampoline!(exec_doc!("execle"), execle, prepare_execle);

// ---- spawning ----------------------------------------------------------------

/// `posix_spawn(3)`: fast-path files become kernel-backed before the child
/// starts (glibc spawns without `fork`, so no fork handler runs).
#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    p: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    // SAFETY: forwards the caller's arguments.
    spawn_with(|| unsafe { real::posix_spawn()(pid, p, actions, attr, argv, envp) })
}

/// `posix_spawnp(3)`: as [`posix_spawn`].
#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    p: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    // SAFETY: forwards the caller's arguments.
    spawn_with(|| unsafe { real::posix_spawnp()(pid, p, actions, attr, argv, envp) })
}

/// Runs a `posix_spawn`: every fast-path file becomes kernel-backed first
/// (the child's file actions may name any fd), and the files the child
/// shares are the kernel's afterwards, as after a `fork`.
fn spawn_with(spawn: impl FnOnce() -> c_int) -> c_int {
    ops::upgrade_all_before_fork();
    let r = spawn();
    ops::leave_shared_files_to_kernel();
    r
}

// ---- threads -----------------------------------------------------------------

/// `pthread_create(3)`: the fd table is grown for the library's
/// descriptors before the process shares it with a second thread (see
/// `ops::before_sharing_fd_table`), then glibc's.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> c_int {
    // A vfork child (which may not call this) keeps its parent's state.
    if !state::in_vfork_child() {
        state::note_memory_shared();
        ops::before_sharing_fd_table();
    }
    // SAFETY: forwards the caller's arguments.
    unsafe { real::pthread_create()(thread, attr, start, arg) }
}

/// `system(3)`: inheritable fast-path fds become kernel fds before glibc's
/// internal spawn.
#[no_mangle]
pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's argument.
    let r = unsafe { real::system()(cmd) };
    ops::leave_shared_files_to_kernel();
    r
}

/// `popen(3)`: as [`system`].
#[no_mangle]
pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    ops::upgrade_inheritable();
    // SAFETY: forwards the caller's arguments.
    let f = unsafe { real::popen()(cmd, mode) };
    ops::leave_shared_files_to_kernel();
    f
}

/// Where a `vfork` goes (see the module comment): glibc's own, the process
/// marked as vforking, when the child cannot disturb the library; `fork`
/// otherwise.
extern "C" fn vfork_target() -> usize {
    let saved = errno();
    let target = if state::in_vfork_child() {
        // A vfork child's own vfork (POSIX leaves it undefined): its child
        // is another process than the one marked too.
        real::vfork() as usize
    } else if !state::memory_shared() && !ops::holds_fds() && sys::thread_count() == Some(1) {
        // What the child could otherwise set up for its parent, done now:
        // the library's start (discovery), the fault handler, the `exec`
        // family resolved.
        ops::start_library();
        crate::uaccess::prepare_handler();
        real::resolve_exec_family();
        let vfork = real::vfork() as usize;
        state::start_vfork();
        vfork
    } else {
        libc::fork as *const () as usize
    };
    set_errno(saved);
    target
}

// `vfork` must return to its caller from the caller's own frame, in the
// child as in the parent (glibc's keeps the return address in a register
// across the system call): a trampoline (see `crate::trampoline`) runs the
// choice and jumps to glibc's `vfork` or to `fork`, never calls it.
variadic_trampoline!(
    "`vfork(2)`: glibc's, or `fork` (see the module comment).",
    vfork,
    vfork_target
);
variadic_trampoline!(
    "glibc's other name of `vfork`: as [`vfork`].",
    __vfork,
    vfork_target
);
