//! The store's attributes in the wire's forms.

use inode_store::Attr;
use proto::ops::AttrOut;

/// A reply carrying `attr`.
pub(super) fn attr_out(attr: Attr) -> AttrOut {
    AttrOut { attr: attr.wire() }
}
