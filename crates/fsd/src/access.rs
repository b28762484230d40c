//! Who may use the fast path of a mount: exactly who the kernel lets use
//! the FUSE mount, so that the fast path never opens a door the kernel
//! keeps shut.
//!
//! Without `allow_other` the kernel serves only processes whose user and
//! group ids all equal the mounting user's (`fuse_allow_current_process`);
//! the daemon applies the same rule to the identity `SO_PEERCRED` reports.
//! A read-only mount has no fast path at all: the store does not know the
//! mount is read-only, the kernel does.

use crate::sock::PeerCred;

/// The fast-path admission rule of a mount.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Access {
    /// `allow_other`: every user (each then checked per request).
    #[default]
    Everyone,
    /// No `allow_other`: only processes of the mounting user and group.
    Owner {
        /// The mounting user.
        uid: u32,
        /// The mounting user's group.
        gid: u32,
    },
    /// Read-only mount: no channel is accepted (calls go to the kernel).
    Nobody,
}

impl Access {
    /// Whether a client with this kernel-reported identity may hold a channel.
    pub fn permits(self, peer: &PeerCred) -> bool {
        match self {
            Access::Everyone => true,
            Access::Owner { uid, gid } => peer.uid == uid && peer.gid == gid,
            Access::Nobody => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_passes_without_allow_other_and_nobody_on_read_only() {
        let peer = |uid, gid| PeerCred { pid: 1, uid, gid };
        let owner = Access::Owner {
            uid: 1000,
            gid: 100,
        };
        assert!(owner.permits(&peer(1000, 100)));
        assert!(
            !owner.permits(&peer(0, 0)),
            "not even root, as in the kernel"
        );
        assert!(!owner.permits(&peer(1000, 0)));
        assert!(!owner.permits(&peer(1001, 100)));
        assert!(Access::Everyone.permits(&peer(65534, 65534)));
        assert!(!Access::Nobody.permits(&peer(0, 0)));
    }
}
