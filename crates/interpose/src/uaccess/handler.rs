//! The `SIGSEGV`/`SIGBUS` handler that resumes a faulting copy at its
//! fixup, and hands every other fault to the program's own disposition.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys::{self, errno, set_errno};

/// The two signals a bad pointer raises.
const SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

pub(super) fn slot_of(sig: c_int) -> Option<usize> {
    SIGNALS.iter().position(|&s| s == sig)
}

/// The program's own disposition of one signal, as it set it (or as it was
/// when the handler was installed). Written under [`LOCK`] with a seqlock,
/// read by the handler without a lock.
pub(super) struct Recorded {
    seq: AtomicU32,
    handler: AtomicUsize,
    flags: AtomicU64,
    /// The kernel's 64 signals of `sa_mask`.
    mask: AtomicU64,
}

/// One disposition, out of [`Recorded`].
#[derive(Clone, Copy)]
pub(super) struct Disp {
    pub(super) handler: usize,
    pub(super) flags: u64,
    pub(super) mask: u64,
}

impl Recorded {
    const fn new() -> Recorded {
        Recorded {
            seq: AtomicU32::new(0),
            handler: AtomicUsize::new(libc::SIG_DFL),
            flags: AtomicU64::new(0),
            mask: AtomicU64::new(0),
        }
    }

    /// A consistent snapshot (async-signal-safe: writers never run inside
    /// a signal handler of the same thread, see [`Locked`]).
    pub(super) fn read(&self) -> Disp {
        loop {
            // Acquire: the fields read below are at least this version's.
            let s = self.seq.load(Ordering::Acquire);
            if s & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let d = Disp {
                handler: self.handler.load(Ordering::Relaxed),
                flags: self.flags.load(Ordering::Relaxed),
                mask: self.mask.load(Ordering::Relaxed),
            };
            // Acquire fence: the field loads above happen before the
            // re-check of the version.
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s {
                return d;
            }
        }
    }

    /// Replaces the disposition; only with [`LOCK`] held.
    pub(super) fn write(&self, _: &Locked, d: Disp) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        // Release fence: the odd version is visible before any new field.
        fence(Ordering::Release);
        self.handler.store(d.handler, Ordering::Relaxed);
        self.flags.store(d.flags, Ordering::Relaxed);
        self.mask.store(d.mask, Ordering::Relaxed);
        // Release: the fields are visible before the even version.
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

#[link_section = ".data.btfuse_hot"]
pub(super) static RECORDED: [Recorded; 2] = [Recorded::new(), Recorded::new()];

/// Whether our handler is in place (checked by every copy).
#[link_section = ".data.btfuse_hot"]
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Serialises installing and the writers of [`RECORDED`].
#[link_section = ".data.btfuse_hot"]
static LOCK: AtomicBool = AtomicBool::new(false);

/// [`LOCK`] held, with every signal blocked on this thread (so no handler
/// of this thread can spin on a version it holds odd, or deadlock on the
/// lock); dropping it restores both.
pub(super) struct Locked {
    old_mask: u64,
}

impl Locked {
    pub(super) fn take() -> Locked {
        let all: u64 = !0;
        let mut old_mask = 0u64;
        // Raw rt_sigprocmask: async-signal-safe, and glibc's wrapper would
        // refuse to block its internal signals, which do not matter here.
        let _ = sys::sc!(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &all as *const u64,
            &mut old_mask as *mut u64,
            8
        );
        // Acquire: the previous holder's writes are visible.
        while LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        Locked { old_mask }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // Release: our writes are visible to the next holder.
        LOCK.store(false, Ordering::Release);
        let _ = sys::sc!(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &self.old_mask as *const u64,
            0usize,
            8
        );
    }
}

/// The first 64 signals of a `sigset_t` (all the kernel has).
pub(super) fn mask_of(s: &libc::sigset_t) -> u64 {
    // SAFETY: a sigset_t is at least 8 bytes of plain data.
    unsafe { (s as *const libc::sigset_t).cast::<u64>().read_unaligned() }
}

pub(super) fn sigset_of(mask: u64) -> libc::sigset_t {
    // SAFETY: all-zero is the empty set.
    let mut s: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as in mask_of.
    unsafe {
        (&mut s as *mut libc::sigset_t)
            .cast::<u64>()
            .write_unaligned(mask)
    };
    s
}

pub(super) fn disp_of(a: &libc::sigaction) -> Disp {
    Disp {
        handler: a.sa_sigaction,
        flags: a.sa_flags as u32 as u64,
        mask: mask_of(&a.sa_mask),
    }
}

pub(super) fn action_of(d: Disp) -> libc::sigaction {
    // SAFETY: all-zero is a valid sigaction.
    let mut a: libc::sigaction = unsafe { core::mem::zeroed() };
    a.sa_sigaction = d.handler;
    a.sa_flags = d.flags as c_int;
    a.sa_mask = sigset_of(d.mask);
    a
}

/// Installs the handler unless it is in place: one relaxed load when it is.
#[inline]
pub(super) fn ensure_handler() {
    #[cfg(target_arch = "x86_64")]
    if !INSTALLED.load(Ordering::Relaxed) {
        install();
    }
}

#[cfg(target_arch = "x86_64")]
#[cold]
fn install() {
    let lock = Locked::take();
    if INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    let saved = errno();
    // SAFETY: all-zero is a valid sigaction (empty mask).
    let mut ours: libc::sigaction = unsafe { core::mem::zeroed() };
    ours.sa_sigaction = on_fault as *const () as usize;
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    for (i, &sig) in SIGNALS.iter().enumerate() {
        // SAFETY: all-zero is a valid sigaction.
        let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
        // glibc's sigaction (it supplies the x86_64 restorer the kernel
        // requires): one rt_sigaction that also reads the old action.
        // SAFETY: valid sigaction structs of ours.
        if unsafe { crate::real::sigaction()(sig, &ours, &mut old) } == 0
            && old.sa_sigaction != ours.sa_sigaction
        {
            RECORDED[i].write(&lock, disp_of(&old));
        }
    }
    set_errno(saved);
    INSTALLED.store(true, Ordering::Relaxed);
}

/// The `SIGSEGV`/`SIGBUS` handler.
#[cfg(target_arch = "x86_64")]
extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if code > 0 {
        // SAFETY: as above; gregs is the interrupted thread's registers.
        let gregs = unsafe { &mut (*uc).uc_mcontext.gregs };
        if let Some(fix) = super::routines::fixup_for(gregs[libc::REG_RIP as usize] as usize) {
            gregs[libc::REG_RIP as usize] = fix as i64;
            return;
        }
    }
    // SAFETY: the arguments the kernel gave us.
    unsafe { chain(sig, info, ctx) }
}

/// Delivers a signal that is not ours to the program's disposition, as the
/// kernel would have.
///
/// # Safety
/// The arguments of the running handler.
#[cfg(target_arch = "x86_64")]
unsafe fn chain(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let saved = errno();
    let Some(i) = slot_of(sig) else { return };
    let d = RECORDED[i].read();
    // SAFETY: the kernel's siginfo.
    let sent = unsafe { (*info).si_code } <= 0;
    match d.handler {
        libc::SIG_IGN if sent => {}
        libc::SIG_DFL | libc::SIG_IGN => {
            // Back to the default, then the faulting instruction runs again
            // and the kernel kills the process with this signal (a core as
            // usual); a signal sent by kill is sent again (it stays pending
            // until this handler returns). The kernel turns an ignored
            // fault signal into the default one the same way.
            let dfl = [libc::SIG_DFL as u64, 0, 0, 0];
            let _ = sys::sc!(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), 0usize, 8);
            INSTALLED.store(false, Ordering::Relaxed);
            if sent {
                let pid = sys::getpid();
                let tid = sys::sc!(libc::SYS_gettid).unwrap_or(0);
                let _ = sys::sc!(libc::SYS_tgkill, pid, tid, sig);
            }
        }
        h => {
            // The mask the kernel would have set: the interrupted one, the
            // handler's sa_mask, and the signal itself unless SA_NODEFER.
            let uc = ctx.cast::<libc::ucontext_t>();
            // SAFETY: the kernel's ucontext.
            let mut mask = mask_of(unsafe { &(*uc).uc_sigmask }) | d.mask;
            if d.flags & libc::SA_NODEFER as u64 == 0 {
                mask |= 1u64 << (sig - 1);
            }
            let _ = sys::sc!(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &mask as *const u64,
                0usize,
                8
            );
            if d.flags & libc::SA_RESETHAND as u64 != 0 {
                let lock = Locked::take();
                RECORDED[i].write(
                    &lock,
                    Disp {
                        handler: libc::SIG_DFL,
                        flags: d.flags & !(libc::SA_SIGINFO as u64),
                        mask: 0,
                    },
                );
            }
            set_errno(saved);
            if d.flags & libc::SA_SIGINFO as u64 != 0 {
                // SAFETY: the program installed this SA_SIGINFO handler.
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                    unsafe { core::mem::transmute::<usize, _>(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the program installed this plain handler.
                let f: extern "C" fn(c_int) = unsafe { core::mem::transmute::<usize, _>(h) };
                f(sig);
            }
            return;
        }
    }
    set_errno(saved);
}
