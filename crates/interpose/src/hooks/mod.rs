//! The exported libc entry points, declared once in the `hooks!` table
//! below; the handlers they call live in one module per family (`open`,
//! `fds`, `stat`, `paths`, `kernel`, `dirs`, `xattr`; `crate::stdio` and
//! `crate::process` hold the stdio and process-lifecycle hooks).
//!
//! Each hook answers one of three ways (bytehound/mirrord style): served on
//! the fast path, not ours (the real libc function, via `real::*`), or an
//! error. "Not ours" is decided first and cheaply: one relaxed load of the
//! fd table for fd calls; for path calls a first-byte test plus, for
//! absolute paths, a component-wise prefix match against the (few) btfuse
//! mountpoints. The caller's errno is preserved on success and set only
//! for the caller's result.
//!
//! Variadic C functions (`open`, `openat`, `fcntl`) are defined with their
//! optional argument as a fixed one: on x86_64 and aarch64 Linux the
//! optional integer argument travels in the same register either way, and
//! it is only read when the flags say it is there.

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};

use libc::{mode_t, off64_t, off_t, size_t, ssize_t, AT_FDCWD, DIR};

use crate::real;

/// Standard ending of a path hook: success value, errno, or the kernel.
macro_rules! finish {
    ($saved:expr, $res:expr, $t:expr, $dirfd:expr, $p:expr, |$d:ident, $q:ident| $real:expr) => {
        match $res {
            Ok(v) => ok($saved, v),
            Err(Fail::Errno(e)) => err(e),
            Err(Fail::Real) => real_at(&$t, $dirfd, $p, |$d, $q| $real),
        }
    };
}

mod common;
mod dirs;
mod fds;
mod kernel;
mod open;
mod paths;
mod realpath;
mod stat;
mod xattr;

pub(crate) use open::openat2_syscall;

extern "C" {
    /// glibc's fortify failure report: prints and aborts.
    fn __chk_fail() -> !;
}

/// The hook table: one entry per exported C function.
///
/// An entry reads
/// `/// doc` `fn name(args) -> ret [, chk(n <= len)] => handler[(call args)];`
/// and becomes `#[no_mangle] pub unsafe extern "C" fn name(args) -> ret`
/// whose body is the call of the handler, with the caller's arguments or,
/// for an alias (`open64`, `__open_2`, `stat64`, ...), the written ones.
/// `chk(n <= len)` is glibc's `_FORTIFY_SOURCE` check of the `_chk` forms:
/// a count above the buffer size ends in `__chk_fail`. The expansion is the
/// call and nothing else, so a hook costs what a hand-written one did.
macro_rules! hooks {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)?
            $(, chk($n:ident <= $len:ident))?
            => $($h:ident)::+ $(($($e:expr),* $(,)?))?;
    )*) => {
        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// The C function's contract: every pointer argument is null or
            /// valid for what the C prototype says it points to.
            #[no_mangle]
            pub unsafe extern "C" fn $name($($a: $t),*) $(-> $r)? {
                $(
                    if $n > $len {
                        // SAFETY: `__chk_fail` takes no arguments and never
                        // returns (it reports and aborts).
                        unsafe { __chk_fail() }
                    }
                )?
                // SAFETY: the handler is written for exactly this C contract:
                // it receives the caller's arguments unchanged, or (for an
                // alias) converted only between types of one layout on the
                // supported 64-bit targets (`off_t`/`off64_t`,
                // `stat`/`stat64`, ...) or completed with the constant the
                // shorter form implies; it reads and writes through the
                // caller's pointers only where the C function would, and
                // fault-tolerantly where the library itself does (`uaccess`).
                unsafe { hooks!(@call [$($a),*] $($h)::+ $(($($e),*))?) }
            }
        )*
    };
    (@call [$($a:ident),*] $($h:ident)::+ ($($e:expr),*)) => { $($h)::+($($e),*) };
    (@call [$($a:ident),*] $($h:ident)::+) => { $($h)::+($($a),*) };
}

// The table, in a file of its own so that the unit tests read it too
// (`crate::hook_table`).
include!("table.rs");
