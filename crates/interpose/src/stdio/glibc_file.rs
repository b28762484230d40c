//! glibc's `FILE` as far as this library needs it: its layout, checked
//! once against a real stream, and the cookie I/O functions.

use super::*;

/// glibc's `struct _IO_FILE` (`bits/types/struct_FILE.h`, a public header):
/// the first part of every `FILE`.
#[repr(C)]
pub(super) struct IoFile {
    pub(super) flags: c_int,
    pub(super) read_ptr: *mut c_char,
    pub(super) read_end: *mut c_char,
    pub(super) read_base: *mut c_char,
    pub(super) write_base: *mut c_char,
    pub(super) write_ptr: *mut c_char,
    pub(super) write_end: *mut c_char,
    pub(super) buf_base: *mut c_char,
    pub(super) buf_end: *mut c_char,
    pub(super) save_base: *mut c_char,
    pub(super) backup_base: *mut c_char,
    pub(super) save_end: *mut c_char,
    pub(super) markers: *mut c_void,
    pub(super) chain: *mut c_void,
    pub(super) fileno: c_int,
    pub(super) flags2: c_int,
    pub(super) old_offset: i64,
    pub(super) cur_column: u16,
    pub(super) vtable_offset: i8,
    pub(super) shortbuf: [c_char; 1],
    pub(super) lock: *mut c_void,
    pub(super) offset: i64,
    pub(super) codecvt: *mut c_void,
    pub(super) wide_data: *mut c_void,
    pub(super) freeres_list: *mut c_void,
    pub(super) freeres_buf: *mut c_void,
    pub(super) pad5: usize,
    pub(super) mode: c_int,
    pub(super) unused2: [c_char; 20],
}

const _: () = assert!(size_of::<IoFile>() == 216 && offset_of!(IoFile, fileno) == 112);

/// `struct _IO_FILE_plus` puts the vtable pointer right after the `FILE`;
/// `struct _IO_cookie_file` puts the cookie right after that.
pub(super) const VTABLE_AT: usize = size_of::<IoFile>();
pub(super) const COOKIE_AT: usize = VTABLE_AT + size_of::<usize>();

// `_flags` bits (glibc's libio.h).
pub(super) const MAGIC_MASK: u32 = 0xFFFF_0000;
pub(super) const MAGIC: u32 = 0xFBAD_0000;
pub(super) const EOF_SEEN: c_int = 0x0010;
pub(super) const ERR_SEEN: c_int = 0x0020;
pub(super) const CURRENTLY_PUTTING: c_int = 0x0800;
pub(super) const IS_FILEBUF: c_int = 0x2000;

/// `cookie_io_functions_t`.
#[repr(C)]
pub(super) struct CookieIo {
    pub(super) read: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, size_t) -> ssize_t>,
    pub(super) write: Option<unsafe extern "C" fn(*mut c_void, *const c_char, size_t) -> ssize_t>,
    pub(super) seek: Option<unsafe extern "C" fn(*mut c_void, *mut off64_t, c_int) -> c_int>,
    pub(super) close: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
}

// None of these is hooked by the library.
extern "C" {
    pub(super) fn fopencookie(cookie: *mut c_void, mode: *const c_char, io: CookieIo) -> *mut FILE;
    pub(super) fn fflush_unlocked(fp: *mut FILE) -> c_int;
    pub(super) fn __fpurge(fp: *mut FILE);
    pub(super) fn flockfile(fp: *mut FILE);
    pub(super) fn setvbuf(fp: *mut FILE, buf: *mut c_char, mode: c_int, size: size_t) -> c_int;
    pub(super) fn funlockfile(fp: *mut FILE);
}

/// Reads the word at byte offset `at` of a `FILE`.
///
/// # Safety
/// `fp` is a live glibc `FILE` at least `at + 8` bytes long.
pub(super) unsafe fn word_at(fp: *mut FILE, at: usize) -> usize {
    // SAFETY: per the contract; glibc's FILE objects are 8-aligned.
    unsafe { fp.cast::<u8>().add(at).cast::<usize>().read() }
}

/// 0 = not probed yet, 1 = the layout is glibc 2.36's, 2 = it is not.
#[link_section = ".data.btfuse_hot"]
pub(super) static LAYOUT: AtomicU32 = AtomicU32::new(0);
/// The vtable address of glibc's cookie streams (`_IO_cookie_jumps`).
#[link_section = ".data.btfuse_hot"]
pub(super) static COOKIE_VTABLE: AtomicUsize = AtomicUsize::new(0);

/// Whether cookie streams have the layout this module relies on (probed
/// once, on a stream with no callbacks).
pub(super) fn layout_ok() -> bool {
    match LAYOUT.load(Ordering::Acquire) {
        1 => true,
        2 => false,
        _ => probe_layout(),
    }
}

#[cold]
pub(super) fn probe_layout() -> bool {
    const PROBE: usize = 0x5354_4449_4f21;
    let io = CookieIo {
        read: None,
        write: None,
        seek: None,
        close: None,
    };
    // SAFETY: a valid mode string; glibc copies the callbacks.
    let fp = unsafe { fopencookie(PROBE as *mut c_void, c"r".as_ptr(), io) };
    if fp.is_null() {
        // Out of memory: try again next time.
        return false;
    }
    let f = fp.cast::<IoFile>();
    // SAFETY: a fresh cookie stream, an `_IO_cookie_file`: FILE, vtable,
    // cookie in a row if the layout is the expected one (checked here).
    let ok = unsafe {
        let flags = (*f).flags;
        flags as u32 & MAGIC_MASK == MAGIC
            && flags & IS_FILEBUF != 0
            && (*f).fileno == -2
            && (*f).mode == -1
            && word_at(fp, COOKIE_AT) == PROBE
            && word_at(fp, VTABLE_AT) != 0
    };
    if ok {
        // SAFETY: as above.
        COOKIE_VTABLE.store(unsafe { word_at(fp, VTABLE_AT) }, Ordering::Relaxed);
    }
    // SAFETY: our probe stream; it has no close callback.
    unsafe { real::fclose()(fp) };
    // Release: publishes COOKIE_VTABLE.
    LAYOUT.store(if ok { 1 } else { 2 }, Ordering::Release);
    if !ok {
        crate::sys::debug(&[b"btfuse: unknown FILE layout; stdio left to glibc"]);
    }
    ok
}

/// Whether streams on mount files may be served here.
pub(super) fn usable() -> bool {
    state::stdio_enabled() && layout_ok()
}

/// Stands in for the wide-character area of our streams (glibc leaves a
/// poison pointer there, which `fgetwc` dereferences). With `_mode == -1`
/// glibc only reads it: its pointers are all null, so every wide read
/// goes to `__wuflow`, which answers `WEOF` for a byte stream. 1 KiB covers
/// `struct _IO_wide_data` (about 240 bytes).
pub(super) struct NoWide(pub(super) core::cell::UnsafeCell<[usize; 128]>);
// SAFETY: all zero and never written (see above).
unsafe impl Sync for NoWide {}
pub(super) static NO_WIDE: NoWide = NoWide(core::cell::UnsafeCell::new([0; 128]));
