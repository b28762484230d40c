//! The program's own `sigaction`/`signal` calls for `SIGSEGV` and
//! `SIGBUS`: recorded (and answered from the record) instead of replacing
//! the library's handler.

use core::ffi::c_int;

use super::handler::{
    action_of, disp_of, ensure_handler, mask_of, sigset_of, slot_of, Disp, Locked, RECORDED,
};
use crate::sys::set_errno;

/// `sigaction` for our two signals: recorded, answered from the record.
///
/// The two structs are read and written with plain accesses, as glibc's
/// `sigaction` does in user space (it converts them to the kernel's
/// layout): a bad pointer crashes the caller with or without the library.
fn record(i: usize, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    // SAFETY: a valid sigaction or null, by the C contract (see above).
    let new = (!act.is_null()).then(|| disp_of(unsafe { &*act }));
    ensure_handler();
    let prev = {
        let lock = Locked::take();
        let prev = RECORDED[i].read();
        if let Some(d) = new {
            RECORDED[i].write(&lock, d);
        }
        prev
    };
    if !old.is_null() {
        // SAFETY: a valid, writable sigaction by the C contract.
        unsafe { old.write_unaligned(action_of(prev)) };
    }
    0
}

/// Whether `sig` is one this module keeps for itself (never in a `vfork`
/// child: its dispositions are its own, the record its parent's).
fn ours(sig: c_int) -> Option<usize> {
    if cfg!(target_arch = "x86_64") && !crate::state::in_vfork_child() {
        slot_of(sig)
    } else {
        None
    }
}

/// A real `sigaction` of libc.
type RealSigaction =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

/// `sigaction` for our two signals recorded, any other through `real`.
///
/// # Safety
/// The caller's arguments, under the C contract.
unsafe fn sigaction_or(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
    real: RealSigaction,
) -> c_int {
    match ours(sig) {
        Some(i) => record(i, act, old),
        // SAFETY: forwards the caller's arguments.
        None => unsafe { real(sig, act, old) },
    }
}

/// `sigaction(2)`.
#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    // SAFETY: forwards the caller's arguments.
    unsafe { sigaction_or(sig, act, old, crate::real::sigaction()) }
}

/// glibc's other name of `sigaction`.
#[no_mangle]
pub unsafe extern "C" fn __sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    // SAFETY: forwards the caller's arguments.
    unsafe { sigaction_or(sig, act, old, crate::real::__sigaction()) }
}

/// glibc's `signal` family through the record: `flags` and whether the
/// signal blocks itself, as each of them sets them.
fn signal_as(
    sig: c_int,
    h: libc::sighandler_t,
    flags: c_int,
    self_mask: bool,
) -> libc::sighandler_t {
    if h == libc::SIG_ERR {
        set_errno(libc::EINVAL);
        return libc::SIG_ERR;
    }
    let mut act = action_of(Disp {
        handler: h,
        flags: flags as u32 as u64,
        mask: if self_mask { 1u64 << (sig - 1) } else { 0 },
    });
    act.sa_flags = flags;
    // SAFETY: all-zero is a valid sigaction.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: valid structs of ours.
    if unsafe { sigaction(sig, &act, &mut old) } < 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

macro_rules! signal_hooks {
    ($( $name:ident => $real:ident, $flags:expr, $self_mask:expr ; )*) => {
        $(
            #[doc = concat!("`", stringify!($name), "(3)`.")]
            #[no_mangle]
            pub unsafe extern "C" fn $name(sig: c_int, h: libc::sighandler_t) -> libc::sighandler_t {
                if ours(sig).is_none() {
                    // SAFETY: forwards the caller's arguments.
                    return unsafe { crate::real::$real()(sig, h) };
                }
                signal_as(sig, h, $flags, $self_mask)
            }
        )*
    };
}

// glibc: signal/bsd_signal/ssignal are one function (BSD semantics: the
// signal blocks itself, SA_RESTART); sysv_signal is one-shot, not masked.
signal_hooks! {
    signal => signal, libc::SA_RESTART, true;
    bsd_signal => bsd_signal, libc::SA_RESTART, true;
    ssignal => ssignal, libc::SA_RESTART, true;
    sysv_signal => sysv_signal, libc::SA_RESETHAND | libc::SA_NODEFER, false;
    __sysv_signal => __sysv_signal, libc::SA_RESETHAND | libc::SA_NODEFER, false;
}

/// `sigset(3)` (System V), written after glibc's own.
#[no_mangle]
pub unsafe extern "C" fn sigset(sig: c_int, h: libc::sighandler_t) -> libc::sighandler_t {
    const SIG_HOLD: libc::sighandler_t = 2;
    if ours(sig).is_none() {
        // SAFETY: forwards the caller's arguments.
        return unsafe { crate::real::sigset()(sig, h) };
    }
    let one = sigset_of(1u64 << (sig - 1));
    // SAFETY: all-zero is a valid sigset.
    let mut was: libc::sigset_t = unsafe { core::mem::zeroed() };
    let held = |was: &libc::sigset_t| mask_of(was) & (1u64 << (sig - 1)) != 0;
    if h == SIG_HOLD {
        // SAFETY: valid sets of ours.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &one, &mut was) } != 0 {
            return libc::SIG_ERR;
        }
        if held(&was) {
            return SIG_HOLD;
        }
        // SAFETY: all-zero is a valid sigaction.
        let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: valid structs of ours.
        if unsafe { sigaction(sig, core::ptr::null(), &mut old) } < 0 {
            return libc::SIG_ERR;
        }
        return old.sa_sigaction;
    }
    let old = signal_as(sig, h, 0, false);
    if old == libc::SIG_ERR {
        return old;
    }
    // SAFETY: valid sets of ours.
    if unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, &mut was) } != 0 {
        return libc::SIG_ERR;
    }
    if held(&was) {
        SIG_HOLD
    } else {
        old
    }
}
