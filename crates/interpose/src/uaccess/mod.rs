//! Fault-tolerant access to the caller's memory: a bad pointer gives
//! `EFAULT`, as the kernel gives it, never a crash.
//!
//! The kernel's own design (exception table): the few instructions that
//! touch caller memory live in two small assembly routines; a `SIGSEGV` /
//! `SIGBUS` raised by one of them (and only by the hardware, `si_code > 0`)
//! resumes at a fixup that reports how far the copy got (a word move that
//! faults resumes at the byte loop, so the count is exact to the byte). The fast path
//! pays nothing for this: no probe syscall, one relaxed load to see the
//! handler is in place.
//!
//! The handler is installed lazily, by the first copy in a process (one
//! `sigaction` per signal, which reads the program's action in the same
//! call). Every other fault is handed to the program's own disposition as
//! the kernel would have delivered it (see [`chain`]): its handler with its
//! `sa_mask`, `SA_NODEFER`, `SA_RESETHAND`, `SA_SIGINFO`; `SIG_DFL` by
//! restoring the default and re-faulting (or re-raising a signal sent with
//! `kill`), so a genuine crash still dies of the right signal with a core;
//! `SIG_IGN` like the kernel (ignored when sent, fatal when a fault).
//!
//! The program's own `sigaction`/`signal`/`sysv_signal`/`bsd_signal`/
//! `ssignal`/`sigset` calls for those two signals are hooked: they are
//! recorded here (and answered from here) instead of replacing our handler.
//! Rules the library cannot enforce, documented:
//! * a program that sets `SIGSEGV`/`SIGBUS` with a raw `rt_sigaction`
//!   syscall replaces our handler: from then on a bad pointer passed to a
//!   hooked call on a btfuse mount reaches its handler (or kills it) as it
//!   would have before this module existed, and its genuine crashes go to
//!   its handler directly;
//! * a thread that blocks `SIGSEGV`/`SIGBUS` and passes a bad pointer is
//!   killed (the kernel does not deliver a blocked fault signal);
//! * our handler always runs with `SA_ONSTACK`: a program handler installed
//!   without it still runs on the thread's `sigaltstack` if there is one.
//!
//! Other architectures than x86_64 get plain copies (a compile-time
//! fallback: the old behaviour, a bad pointer crashes); only x86_64 is
//! built and tested here.

use core::ffi::c_char;
use core::mem::{size_of, MaybeUninit};

use crate::path::Padded;

mod handler;
#[cfg(target_arch = "x86_64")]
mod routines;
mod signals;

use handler::ensure_handler;

/// Installs the fault handler now if it is not yet (a process about to
/// `vfork` does, so that its child never installs it for it).
pub(crate) fn prepare_handler() {
    ensure_handler();
}

/// A caller's pointer could not be read or written: the kernel's `EFAULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault;

/// Why [`strncpy_from_user`] produced no string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StrError {
    /// The string runs into memory that cannot be read.
    Fault,
    /// No NUL within the buffer.
    TooLong,
}

/// Copies `n` bytes; returns how many were NOT copied (0: all).
///
/// # Safety
/// The side that is the library's own memory must be valid for `n` bytes;
/// the caller's side may be anything.
#[inline]
unsafe fn raw_copy(dst: *mut u8, src: *const u8, n: usize) -> usize {
    ensure_handler();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the routine only touches `dst..dst+n` and `src..src+n`;
    // faults on either are recovered by the handler (installed above).
    return unsafe { routines::btfuse_uaccess_copy(dst, src, n) };
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: the fallback trusts the pointer, as the C contract asks.
        unsafe { core::ptr::copy_nonoverlapping(src, dst, n) };
        0
    }
}

/// Copies `src` to the caller's `dst`; `Err(copied)` when a fault stopped
/// it after `copied` bytes.
pub(crate) fn copy_to_user(dst: *mut u8, src: &[u8]) -> Result<(), usize> {
    // SAFETY: `src` is ours, `dst` is the caller's (fault-tolerant).
    match unsafe { raw_copy(dst, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        left => Err(src.len() - left),
    }
}

/// Copies `n` bytes from the caller's `src` to our `dst`.
///
/// # Safety
/// `dst..dst+n` is the library's own writable memory.
pub(crate) unsafe fn copy_in(dst: *mut u8, src: *const u8, n: usize) -> Result<(), usize> {
    // SAFETY: per the contract; the caller's side is fault-tolerant.
    match unsafe { raw_copy(dst, src, n) } {
        0 => Ok(()),
        left => Err(n - left),
    }
}

/// Copies `n` bytes from our `src` to the caller's `dst`.
///
/// # Safety
/// `src..src+n` is the library's own readable memory.
pub(crate) unsafe fn copy_out(dst: *mut u8, src: *const u8, n: usize) -> Result<(), usize> {
    // SAFETY: per the contract; the caller's side is fault-tolerant.
    match unsafe { raw_copy(dst, src, n) } {
        0 => Ok(()),
        left => Err(n - left),
    }
}

/// Reads one `T` (plain data, any bit pattern valid) from the caller.
pub(crate) fn read_val<T: Copy>(src: *const T) -> Result<T, Fault> {
    let mut v = MaybeUninit::<T>::uninit();
    // SAFETY: `v` is ours, `size_of::<T>()` bytes.
    unsafe { copy_in(v.as_mut_ptr().cast(), src.cast(), size_of::<T>()) }.map_err(|_| Fault)?;
    // SAFETY: every byte was written, and every caller's T is plain data.
    Ok(unsafe { v.assume_init() })
}

/// Writes one `T` to the caller.
pub(crate) fn write_val<T>(dst: *mut T, v: &T) -> Result<(), Fault> {
    // SAFETY: `v` is ours, `size_of::<T>()` bytes.
    unsafe { copy_out(dst.cast(), (v as *const T).cast(), size_of::<T>()) }.map_err(|_| Fault)
}

/// Copies the caller's C string into `dst` (with its NUL); returns its
/// bytes (without the NUL).
pub(crate) fn strncpy_from_user(
    dst: &mut [MaybeUninit<u8>],
    src: *const c_char,
) -> Result<&[u8], StrError> {
    ensure_handler();
    let dp = dst.as_mut_ptr().cast::<u8>();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: writes at most `dst.len()` bytes of `dst`; reads of `src`
    // are fault-tolerant (handler installed above).
    let r = unsafe { routines::btfuse_uaccess_strncpy(dp, src.cast(), dst.len()) };
    #[cfg(not(target_arch = "x86_64"))]
    let r = {
        let mut n = 0;
        // SAFETY: the fallback trusts the pointer, as the C contract asks;
        // it writes `dst` only below `dst.len()`.
        unsafe {
            while n < dst.len() {
                *dp.add(n) = *src.add(n) as u8;
                if *dp.add(n) == 0 {
                    break;
                }
                n += 1;
            }
        }
        n as isize
    };
    match r {
        r if r < 0 => Err(StrError::Fault),
        r if r as usize == dst.len() => Err(StrError::TooLong),
        // SAFETY: the routine wrote bytes `..=r`.
        r => Ok(unsafe { core::slice::from_raw_parts(dp, r as usize) }),
    }
}

/// [`strncpy_from_user`] into a buffer with room for 7 more bytes after
/// the NUL, which it zeroes, so that the string's words are read whole.
pub(crate) fn strncpy_padded(
    dst: &mut [MaybeUninit<u8>],
    src: *const c_char,
) -> Result<Padded<'_>, StrError> {
    let room = dst.len().saturating_sub(7);
    let len = strncpy_from_user(&mut dst[..room], src)?.len();
    for b in &mut dst[len + 1..len + 8] {
        b.write(0);
    }
    // SAFETY: bytes `..=len` were written by the copy, the next 7 above.
    let bytes = unsafe { core::slice::from_raw_parts(dst.as_ptr().cast::<u8>(), len + 8) };
    Ok(Padded::new(bytes, len))
}
