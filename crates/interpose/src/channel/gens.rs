//! The daemon's answer to a hello and the generation page it carries
//! (`proto::GenPage`): mapped read-only once per mount, read by the
//! metadata cache.

use super::*;

/// Reads the daemon's answer to a hello from `sock` (without waiting):
/// whether it took the channel. An accepting answer carries the mount's
/// generation page, mapped here unless it already is.
pub(super) fn read_hello_answer(sock: i32, mount: usize) -> bool {
    let mut reply = proto::HelloReply::default();
    let mut iov = libc::iovec {
        iov_base: (&mut reply as *mut proto::HelloReply).cast(),
        iov_len: size_of::<proto::HelloReply>(),
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&cbuf);
    let n = sys::sc!(
        libc::SYS_recvmsg,
        sock,
        &mut msg as *mut libc::msghdr,
        libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC
    );
    // SAFETY: the kernel filled at most msg_controllen bytes of `cbuf`;
    // CMSG_FIRSTHDR/CMSG_DATA stay within them.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        match !c.is_null()
            && (*c).cmsg_level == libc::SOL_SOCKET
            && (*c).cmsg_type == libc::SCM_RIGHTS
        {
            true => core::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()),
            false => -1,
        }
    };
    if fd >= 0 {
        if let Some(slots) = slots_for(mount) {
            adopt_gen_page(slots, fd);
        }
        sys::close(fd);
    }
    n == Ok(size_of::<proto::HelloReply>() as libc::c_long)
        && reply.magic == proto::HELLO_MAGIC
        && reply.error == 0
}

/// Maps the generation page memfd `fd` read-only for `slots`' mount,
/// unless it already is.
fn adopt_gen_page(slots: &Slots, fd: i32) {
    if !slots.gens.load(Ordering::Acquire).is_null() {
        return;
    }
    let Ok(p) = sys::sc!(
        libc::SYS_mmap,
        0usize,
        proto::GEN_PAGE_LEN,
        libc::PROT_READ,
        libc::MAP_SHARED,
        fd,
        0
    ) else {
        return;
    };
    let p = p as *mut proto::GenPage;
    if slots
        .gens
        .compare_exchange(
            core::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        // SAFETY: our own mapping, published nowhere.
        unsafe { sys::munmap(p.cast(), proto::GEN_PAGE_LEN) };
    }
}

/// The change generation of `mount` now (`proto::GenPage::begun`), if its
/// page is mapped and the mount is in use (not left to the kernel after
/// its daemon failed).
pub(crate) fn generation(mount: usize) -> Option<u64> {
    now(mount).map(|n| n.gen)
}

/// [`generation`], with the mount's change log.
pub(crate) fn now(mount: usize) -> Option<crate::metacache::Now> {
    if !state::mount_alive(mount) {
        return None;
    }
    // Acquire: pairs with the publication in `adopt_gen_page`.
    let p = slots_in(&state::MOUNTS[mount])
        .map_or(core::ptr::null_mut(), |s| s.gens.load(Ordering::Acquire));
    // SAFETY: non-null only once mapped (a page the daemon keeps, of
    // GEN_PAGE_LEN bytes, aligned), never unmapped; it is only read. The
    // same page, mapped with the public table, before a channel brings it.
    let page = (!p.is_null())
        .then(|| unsafe { &*p })
        .or_else(|| state::table_page(mount))?;
    // A daemon that is gone (its liveness lock's owner died) vouches for
    // nothing any more: its mount answers ENOTCONN. Acquire: a change the
    // daemon began before our load (e.g. one whose call returned in another
    // process) is seen.
    page.daemon_alive()
        .then(|| crate::metacache::Now::new(page.begun.load(Ordering::Acquire), Some(&page.log)))
}
