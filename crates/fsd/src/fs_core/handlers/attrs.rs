//! The store's attributes in the wire's forms.

use inode_store::Attr;
use proto::ops::AttrOut;
use proto::WireAttr;

/// The store's attributes in wire form.
pub fn wire_attr(a: &Attr) -> WireAttr {
    WireAttr {
        ino: a.ino,
        size: a.size,
        blocks: a.blocks,
        atime: a.atime.sec,
        mtime: a.mtime.sec,
        ctime: a.ctime.sec,
        atime_nsec: a.atime.nsec,
        mtime_nsec: a.mtime.nsec,
        ctime_nsec: a.ctime.nsec,
        mode: a.mode(),
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: if a.xattrs { 0 } else { WireAttr::NO_XATTRS },
    }
}

/// A reply carrying `attr`.
pub(super) fn attr_out(attr: Attr) -> AttrOut {
    AttrOut {
        attr: wire_attr(&attr),
    }
}
