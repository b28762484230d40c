//! `mmap` of a small file for private reading, served from a copy.
//!
//! A fast-path fd has no kernel file behind it: mapping it takes one,
//! reopened through the FUSE mount (a lookup of a reserved name, an open,
//! the attributes, the daemon told to drop the name): an `open` +
//! `mmap` + `close` of a 200-byte file cost 87 µs, against 5.7 on tmpfs
//! and 9.2 on the plain mount. `git` maps every loose object it reads. A
//! private mapping (`MAP_PRIVATE`, readable, not executable) of at most
//! [`COPY_MAX`] bytes is anonymous memory filled with a read of the file
//! through the fast path instead, and the fd stays on the fast path.
//!
//! What differs from the kernel's mapping is what POSIX leaves open for
//! a private mapping: a change made to the file after the `mmap` is not
//! seen (Linux shows it in pages nobody wrote to yet), and
//! `/proc/self/maps` names no file. What the kernel's mapping does
//! differently otherwise takes the kernel's way: pages past the file's last
//! one (`SIGBUS` there), a fixed address, shared, executable or huge
//! mappings, a file that shrank meanwhile.

use super::*;

/// Largest mapping served by a copy: 16 pages faulted in and filled cost
/// about what reopening the file through the kernel does.
const COPY_MAX: usize = 64 * 1024;

const PAGE: u64 = 4096;

/// `mmap(addr, len, prot, flags, f, off)` served by a copy (see the
/// module), or `None`: the kernel must map the file.
pub(crate) fn private_copy(
    f: &FileRef,
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    off: i64,
) -> Option<*mut c_void> {
    let kept_flags = libc::MAP_POPULATE | libc::MAP_NORESERVE;
    let copyable = flags & !(libc::MAP_PRIVATE | kept_flags) == 0
        && flags & libc::MAP_PRIVATE != 0
        && prot & !(libc::PROT_READ | libc::PROT_WRITE) == 0
        && prot & libc::PROT_READ != 0
        && (1..=COPY_MAX).contains(&len)
        && u64::try_from(off).is_ok_and(|o| o % PAGE == 0)
        && !f.is_dir()
        && !f.kernel_backed()
        && f.readable();
    if !copyable {
        return None;
    }
    let off = off as u64;
    let size = stat_file(f).ok()?.size;
    if off + len as u64 > size.next_multiple_of(PAGE) {
        return None;
    }
    let map = sys::sc!(
        libc::SYS_mmap,
        addr,
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | (flags & kept_flags),
        -1,
        0
    )
    .ok()? as *mut c_void;
    let want = size.saturating_sub(off).min(len as u64) as usize;
    let iov = [libc::iovec {
        iov_base: map,
        iov_len: want,
    }];
    let filled = f.pread(&iov, off) == Ok(want)
        && (prot & libc::PROT_WRITE != 0 || sys::sc!(libc::SYS_mprotect, map, len, prot).is_ok());
    if !filled {
        let _ = sys::sc!(libc::SYS_munmap, map, len);
        return None;
    }
    Some(map)
}
