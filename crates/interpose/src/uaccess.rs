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

use core::ffi::{c_char, c_int, c_void};
use core::mem::{size_of, MaybeUninit};
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::path::Padded;
use crate::sys::{self, errno, set_errno};

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

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.btfuse_uaccess,\"ax\",@progbits",
    // btfuse_uaccess_copy(dst: rdi, src: rsi, n: rdx) -> rax = bytes NOT
    // copied. Short copies (a `struct stat`, a path) move 32-byte blocks,
    // then words, then bytes: `rep movsb` costs some 30 cycles to start,
    // and a load of what it just stored waits for the stores to retire
    // (no store forwarding). A block or word that faults is retried byte
    // by byte, so the count stays exact. Long copies take `rep movsb`,
    // which on a fault leaves rcx = bytes left. Each instruction that
    // touches caller memory is listed in `fixup_for` with where it resumes.
    ".p2align 4",
    ".globl btfuse_uaccess_copy",
    ".hidden btfuse_uaccess_copy",
    ".type btfuse_uaccess_copy,@function",
    "btfuse_uaccess_copy:",
    "cmp rdx, 512",
    "jae 6f",
    "xor eax, eax",
    "1:",
    "lea rcx, [rax + 32]",
    "cmp rcx, rdx",
    "ja 2f",
    ".globl btfuse_uaccess_copy_block_load",
    ".hidden btfuse_uaccess_copy_block_load",
    "btfuse_uaccess_copy_block_load:",
    "movdqu xmm0, xmmword ptr [rsi + rax]",
    ".globl btfuse_uaccess_copy_block_load2",
    ".hidden btfuse_uaccess_copy_block_load2",
    "btfuse_uaccess_copy_block_load2:",
    "movdqu xmm1, xmmword ptr [rsi + rax + 16]",
    ".globl btfuse_uaccess_copy_block_store",
    ".hidden btfuse_uaccess_copy_block_store",
    "btfuse_uaccess_copy_block_store:",
    "movdqu xmmword ptr [rdi + rax], xmm0",
    ".globl btfuse_uaccess_copy_block_store2",
    ".hidden btfuse_uaccess_copy_block_store2",
    "btfuse_uaccess_copy_block_store2:",
    "movdqu xmmword ptr [rdi + rax + 16], xmm1",
    "add rax, 32",
    "jmp 1b",
    "2:",
    "lea rcx, [rax + 8]",
    "cmp rcx, rdx",
    "ja 4f",
    ".globl btfuse_uaccess_copy_word_load",
    ".hidden btfuse_uaccess_copy_word_load",
    "btfuse_uaccess_copy_word_load:",
    "mov rcx, qword ptr [rsi + rax]",
    ".globl btfuse_uaccess_copy_word_store",
    ".hidden btfuse_uaccess_copy_word_store",
    "btfuse_uaccess_copy_word_store:",
    "mov qword ptr [rdi + rax], rcx",
    "add rax, 8",
    "jmp 2b",
    ".globl btfuse_uaccess_copy_bytes",
    ".hidden btfuse_uaccess_copy_bytes",
    "btfuse_uaccess_copy_bytes:",
    "4:",
    "cmp rax, rdx",
    "je 5f",
    ".globl btfuse_uaccess_copy_byte_load",
    ".hidden btfuse_uaccess_copy_byte_load",
    "btfuse_uaccess_copy_byte_load:",
    "movzx ecx, byte ptr [rsi + rax]",
    ".globl btfuse_uaccess_copy_byte_store",
    ".hidden btfuse_uaccess_copy_byte_store",
    "btfuse_uaccess_copy_byte_store:",
    "mov byte ptr [rdi + rax], cl",
    "inc rax",
    "jmp 4b",
    "5:",
    "xor eax, eax",
    "ret",
    ".globl btfuse_uaccess_copy_bytes_left",
    ".hidden btfuse_uaccess_copy_bytes_left",
    "btfuse_uaccess_copy_bytes_left:",
    "sub rdx, rax",
    "mov rax, rdx",
    "ret",
    "6:",
    "mov rcx, rdx",
    ".globl btfuse_uaccess_copy_insn",
    ".hidden btfuse_uaccess_copy_insn",
    "btfuse_uaccess_copy_insn:",
    "rep movsb",
    ".globl btfuse_uaccess_copy_fixup",
    ".hidden btfuse_uaccess_copy_fixup",
    "btfuse_uaccess_copy_fixup:",
    "mov rax, rcx",
    "ret",
    ".size btfuse_uaccess_copy, . - btfuse_uaccess_copy",
    // btfuse_uaccess_strncpy(dst: rdi, src: rsi, max: rdx) -> rax = length
    // before the NUL (copied with it), `max` when there is none within
    // `max` bytes, or -1 when a byte cannot be read. Aligned words are
    // read whole (a word never spans two pages, so it faults only where
    // its first byte would) and stored while they hold no NUL; the word
    // with the NUL, and unaligned bytes, go byte by byte.
    ".p2align 4",
    ".globl btfuse_uaccess_strncpy",
    ".hidden btfuse_uaccess_strncpy",
    ".type btfuse_uaccess_strncpy,@function",
    "btfuse_uaccess_strncpy:",
    "xor eax, eax",
    "mov r8, 0x0101010101010101",
    "mov r9, 0x8080808080808080",
    "2:",
    "cmp rax, rdx",
    "je 3f",
    "lea rcx, [rsi + rax]",
    "test cl, 7",
    "jnz 4f",
    "lea rcx, [rax + 8]",
    "cmp rcx, rdx",
    "ja 4f",
    ".globl btfuse_uaccess_strncpy_word",
    ".hidden btfuse_uaccess_strncpy_word",
    "btfuse_uaccess_strncpy_word:",
    "mov rcx, qword ptr [rsi + rax]",
    // A zero byte in rcx: (w - 0x01..) & !w & 0x80.. is non-zero.
    "mov r10, rcx",
    "sub r10, r8",
    "mov r11, rcx",
    "not r11",
    "and r10, r11",
    "test r10, r9",
    "jnz 4f",
    "mov qword ptr [rdi + rax], rcx",
    "add rax, 8",
    "jmp 2b",
    "4:",
    ".globl btfuse_uaccess_strncpy_insn",
    ".hidden btfuse_uaccess_strncpy_insn",
    "btfuse_uaccess_strncpy_insn:",
    "movzx ecx, byte ptr [rsi + rax]",
    "mov byte ptr [rdi + rax], cl",
    "test cl, cl",
    "je 3f",
    "inc rax",
    "jmp 2b",
    "3:",
    "ret",
    ".globl btfuse_uaccess_strncpy_fixup",
    ".hidden btfuse_uaccess_strncpy_fixup",
    "btfuse_uaccess_strncpy_fixup:",
    "mov rax, -1",
    "ret",
    ".size btfuse_uaccess_strncpy, . - btfuse_uaccess_strncpy",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn btfuse_uaccess_copy(dst: *mut u8, src: *const u8, n: usize) -> usize;
    fn btfuse_uaccess_strncpy(dst: *mut u8, src: *const u8, max: usize) -> isize;
    static btfuse_uaccess_copy_block_load: u8;
    static btfuse_uaccess_copy_block_load2: u8;
    static btfuse_uaccess_copy_block_store: u8;
    static btfuse_uaccess_copy_block_store2: u8;
    static btfuse_uaccess_copy_word_load: u8;
    static btfuse_uaccess_copy_word_store: u8;
    static btfuse_uaccess_copy_bytes: u8;
    static btfuse_uaccess_copy_byte_load: u8;
    static btfuse_uaccess_copy_byte_store: u8;
    static btfuse_uaccess_copy_bytes_left: u8;
    static btfuse_uaccess_copy_insn: u8;
    static btfuse_uaccess_copy_fixup: u8;
    static btfuse_uaccess_strncpy_word: u8;
    static btfuse_uaccess_strncpy_insn: u8;
    static btfuse_uaccess_strncpy_fixup: u8;
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
    return unsafe { btfuse_uaccess_copy(dst, src, n) };
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
    let r = unsafe { btfuse_uaccess_strncpy(dp, src.cast(), dst.len()) };
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

// ---- the fault handler -------------------------------------------------------

/// The two signals a bad pointer raises.
const SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

fn slot_of(sig: c_int) -> Option<usize> {
    SIGNALS.iter().position(|&s| s == sig)
}

/// The program's own disposition of one signal, as it set it (or as it was
/// when the handler was installed). Written under [`LOCK`] with a seqlock,
/// read by the handler without a lock.
struct Recorded {
    seq: AtomicU32,
    handler: AtomicUsize,
    flags: AtomicU64,
    /// The kernel's 64 signals of `sa_mask`.
    mask: AtomicU64,
}

/// One disposition, out of [`Recorded`].
#[derive(Clone, Copy)]
struct Disp {
    handler: usize,
    flags: u64,
    mask: u64,
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
    fn read(&self) -> Disp {
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
    fn write(&self, _: &Locked, d: Disp) {
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

static RECORDED: [Recorded; 2] = [Recorded::new(), Recorded::new()];

/// Whether our handler is in place (checked by every copy).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Serialises installing and the writers of [`RECORDED`].
static LOCK: AtomicBool = AtomicBool::new(false);

/// [`LOCK`] held, with every signal blocked on this thread (so no handler
/// of this thread can spin on a version it holds odd, or deadlock on the
/// lock); dropping it restores both.
struct Locked {
    old_mask: u64,
}

impl Locked {
    fn take() -> Locked {
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
fn mask_of(s: &libc::sigset_t) -> u64 {
    // SAFETY: a sigset_t is at least 8 bytes of plain data.
    unsafe { (s as *const libc::sigset_t).cast::<u64>().read_unaligned() }
}

fn sigset_of(mask: u64) -> libc::sigset_t {
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

fn disp_of(a: &libc::sigaction) -> Disp {
    Disp {
        handler: a.sa_sigaction,
        flags: a.sa_flags as u32 as u64,
        mask: mask_of(&a.sa_mask),
    }
}

fn action_of(d: Disp) -> libc::sigaction {
    // SAFETY: all-zero is a valid sigaction.
    let mut a: libc::sigaction = unsafe { core::mem::zeroed() };
    a.sa_sigaction = d.handler;
    a.sa_flags = d.flags as c_int;
    a.sa_mask = sigset_of(d.mask);
    a
}

/// Installs the handler unless it is in place: one relaxed load when it is.
#[inline]
pub(crate) fn ensure_handler() {
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

/// Where to resume after a fault at `ip`, if `ip` is one of the copy
/// instructions.
#[cfg(target_arch = "x86_64")]
fn fixup_for(ip: usize) -> Option<usize> {
    // Only the addresses of the asm labels are taken (no unsafe needed).
    macro_rules! at {
        ($label:ident) => {
            core::ptr::addr_of!($label) as usize
        };
    }
    let table = [
        // A block or word that faults is retried byte by byte (an exact
        // count: the faulting move stored nothing).
        (
            at!(btfuse_uaccess_copy_block_load),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_block_load2),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_block_store),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_block_store2),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_word_load),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_word_store),
            at!(btfuse_uaccess_copy_bytes),
        ),
        (
            at!(btfuse_uaccess_copy_byte_load),
            at!(btfuse_uaccess_copy_bytes_left),
        ),
        (
            at!(btfuse_uaccess_copy_byte_store),
            at!(btfuse_uaccess_copy_bytes_left),
        ),
        (
            at!(btfuse_uaccess_copy_insn),
            at!(btfuse_uaccess_copy_fixup),
        ),
        (
            at!(btfuse_uaccess_strncpy_word),
            at!(btfuse_uaccess_strncpy_fixup),
        ),
        (
            at!(btfuse_uaccess_strncpy_insn),
            at!(btfuse_uaccess_strncpy_fixup),
        ),
    ];
    table
        .iter()
        .find(|(insn, _)| *insn == ip)
        .map(|&(_, fix)| fix)
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
        if let Some(fix) = fixup_for(gregs[libc::REG_RIP as usize] as usize) {
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
                let pid = sys::sc!(libc::SYS_getpid).unwrap_or(0);
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

// ---- the program's own sigaction calls ---------------------------------------

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

/// Whether `sig` is one this module keeps for itself.
fn ours(sig: c_int) -> Option<usize> {
    if cfg!(target_arch = "x86_64") {
        slot_of(sig)
    } else {
        None
    }
}

/// `sigaction(2)`.
#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    match ours(sig) {
        Some(i) => record(i, act, old),
        // SAFETY: forwards the caller's arguments.
        None => unsafe { crate::real::sigaction()(sig, act, old) },
    }
}

/// glibc's other name of `sigaction`.
#[no_mangle]
pub unsafe extern "C" fn __sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    match ours(sig) {
        Some(i) => record(i, act, old),
        // SAFETY: forwards the caller's arguments.
        None => unsafe { crate::real::__sigaction()(sig, act, old) },
    }
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
