//! The capabilities that filesystem permission checks consult.
//!
//! The kernel decides with the caller's *effective* capability set, never
//! with its uid: a uid-0 process whose capabilities were dropped is refused
//! like anyone else, and a non-root process that holds `CAP_DAC_OVERRIDE`
//! reads what it likes. [`Creds::capable`](crate::Creds::capable) is the
//! store's `capable_wrt_inode_uidgid`: every inode id is mapped in the
//! initial user namespace, and the front doors give the store only
//! capabilities held in that namespace.

/// A set of Linux capabilities (bit `n` = capability number `n`), as in
/// the `CapEff:` line of `/proc/<pid>/status`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Caps(pub u64);

impl Caps {
    /// No capability.
    pub const NONE: Caps = Caps(0);
    /// Every capability (what the kernel gives a uid-0 process by default).
    pub const ALL: Caps = Caps(u64::MAX);
    /// `CAP_CHOWN`: change a file's owner and group at will.
    pub const CHOWN: u32 = 0;
    /// `CAP_DAC_OVERRIDE`: bypass read, write and execute checks.
    pub const DAC_OVERRIDE: u32 = 1;
    /// `CAP_DAC_READ_SEARCH`: bypass file read and directory read/search.
    pub const DAC_READ_SEARCH: u32 = 2;
    /// `CAP_FOWNER`: act as the owner of any file.
    pub const FOWNER: u32 = 3;
    /// `CAP_FSETID`: keep set-id bits on writes, chmod and chown.
    pub const FSETID: u32 = 4;
    /// `CAP_SYS_ADMIN`: `trusted.*` and `security.*` extended attributes.
    pub const SYS_ADMIN: u32 = 21;
    /// `CAP_MKNOD`: create device nodes (not whiteouts, which anyone may).
    pub const MKNOD: u32 = 27;

    /// Whether capability number `cap` is in the set.
    pub fn has(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }
}
