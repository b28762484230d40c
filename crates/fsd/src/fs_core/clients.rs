//! Per-process state of fast-path clients.
//!
//! All channels opened by one process (one per concurrently calling thread)
//! share one [`Client`]: its credentials, taken from the kernel when the
//! first channel connected, and the store handles it opened. A request may
//! only name handles of its own client, so no process can reach another's
//! open files. When the last channel of a process closes (it exited, or was
//! killed), every handle it still held is released.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use inode_store::{Creds, Errno, Fh, Store};
use parking_lot::Mutex;

/// Most handles one client process holds (the kernel's default `nr_open`:
/// no process holds more descriptors than this).
pub const MAX_CLIENT_HANDLES: usize = 1 << 20;

/// What a handle was opened as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HandleKind {
    /// A regular file (`Store::open`/`create`).
    File,
    /// A directory (`Store::opendir`).
    Dir,
    /// A directory opened `O_PATH` (`Store::open_path`): a base for the
    /// paths of later calls and nothing else (no listing), as the kernel's
    /// `O_PATH` descriptors are.
    Path,
}

/// One client process.
#[derive(Debug)]
pub struct Client {
    /// Kernel-reported pid.
    pub pid: u32,
    /// The process image's random number (`proto::Hello::image`).
    pub image: u64,
    /// Credentials every request of this process runs with.
    pub creds: Creds,
    handles: Mutex<HashMap<u64, HandleKind>>,
    /// Handles the daemon is opening through the kernel on this client's
    /// behalf right now (see [`Client::opening_for`]); a handle twice when
    /// two of its channels ask at once.
    opening: Mutex<Vec<u64>>,
    /// Channels of this process the daemon serves now (changed by
    /// [`Clients::join`] and [`Clients::leave`] under their lock).
    channels: AtomicUsize,
}

/// While it lives, the daemon's own lookup of a handle's reserved name is
/// answered (see [`Client::opening_for`]).
pub struct Opening<'a> {
    client: &'a Client,
    fh: u64,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        let mut o = self.client.opening.lock();
        if let Some(i) = o.iter().position(|&f| f == self.fh) {
            o.swap_remove(i);
        }
    }
}

impl Client {
    fn new(pid: u32, image: u64, creds: Creds) -> Client {
        Client {
            pid,
            image,
            creds,
            handles: Mutex::new(HashMap::new()),
            opening: Mutex::new(Vec::new()),
            channels: AtomicUsize::new(0),
        }
    }

    /// How many channels of this process the daemon serves now.
    pub fn channels(&self) -> usize {
        // Relaxed: a count read as a hint (see `ring_door::channel`).
        self.channels.load(Ordering::Relaxed)
    }

    /// Lets the daemon itself open owned handle `fh` through the kernel by
    /// its reserved name for this client, while the returned guard lives
    /// (`proto::ops::KernelOpen`); `EBADF` if the client does not hold it.
    pub fn opening_for(&self, fh: u64) -> Result<Opening<'_>, Errno> {
        self.kind(fh)?;
        self.opening.lock().push(fh);
        Ok(Opening { client: self, fh })
    }

    /// `EMFILE` once the client holds [`MAX_CLIENT_HANDLES`] handles: each
    /// costs the daemon memory, and a client talking to its channel
    /// directly is not bounded by its own descriptor limit.
    pub fn room_for_handle(&self) -> Result<(), Errno> {
        if self.handles.lock().len() >= MAX_CLIENT_HANDLES {
            return Err(Errno(libc::EMFILE));
        }
        Ok(())
    }

    /// Records a handle opened for this client.
    pub fn adopt(&self, fh: Fh, kind: HandleKind) {
        self.handles.lock().insert(fh.0, kind);
    }

    /// The handle, if this client owns it as `kind`; `EBADF` otherwise
    /// (never another client's handle).
    pub fn check(&self, fh: u64, kind: HandleKind) -> Result<Fh, Errno> {
        match self.handles.lock().get(&fh) {
            Some(&k) if k == kind => Ok(Fh(fh)),
            Some(_) if kind == HandleKind::Dir => Err(Errno(libc::ENOTDIR)),
            _ => Err(Errno(libc::EBADF)),
        }
    }

    /// The handle, if this client owns it as a directory a path may be
    /// relative to ([`HandleKind::Dir`] or [`HandleKind::Path`]).
    pub fn check_base(&self, fh: u64) -> Result<Fh, Errno> {
        match self.handles.lock().get(&fh) {
            Some(HandleKind::Dir | HandleKind::Path) => Ok(Fh(fh)),
            Some(HandleKind::File) => Err(Errno(libc::ENOTDIR)),
            None => Err(Errno(libc::EBADF)),
        }
    }

    /// Kind of an owned handle.
    pub fn kind(&self, fh: u64) -> Result<HandleKind, Errno> {
        self.handles
            .lock()
            .get(&fh)
            .copied()
            .ok_or(Errno(libc::EBADF))
    }

    /// Forgets a handle and releases it in the store.
    pub fn release(&self, store: &Store, fh: u64) -> Result<(), Errno> {
        let kind = self.handles.lock().remove(&fh).ok_or(Errno(libc::EBADF))?;
        release_in_store(store, Fh(fh), kind)
    }

    /// Number of handles held.
    fn open_handles(&self) -> usize {
        self.handles.lock().len()
    }

    fn release_all(&self, store: &Store) {
        let handles = std::mem::take(&mut *self.handles.lock());
        for (fh, kind) in handles {
            let _ = release_in_store(store, Fh(fh), kind);
        }
    }
}

fn release_in_store(store: &Store, fh: Fh, kind: HandleKind) -> Result<(), Errno> {
    match kind {
        HandleKind::File => store.release(fh),
        HandleKind::Dir | HandleKind::Path => store.releasedir(fh),
    }
}

/// Identity a client is filed under: a process that changes credentials
/// (setuid, setgroups, capset) after its first channel gets a separate client, so
/// handles are never shared across identities.
type Key = (u32, u64, u32, u32, Vec<u32>, u64);

fn key_of(pid: u32, image: u64, c: &Creds) -> Key {
    (pid, image, c.uid, c.gid, c.groups.clone(), c.caps.0)
}

fn key(client: &Client) -> Key {
    key_of(client.pid, client.image, &client.creds)
}

/// How many fast-path channels the daemon serves at once: each one holds a
/// daemon thread and a 4 MiB mapping, so an unbounded number would let one
/// local user exhaust the daemon.
///
/// Shares (see [`Clients::join`]): root may take any free channel, and the
/// last [`ChannelLimits::root_reserve`] are root's alone. Of the others, a
/// user other than root holding `h` channels while `k` other such users
/// hold some gets one more only while `4 * h * (k + 1) < F`, `F` being the
/// channels free outside root's reserve: a user's share is a quarter of
/// the free channels divided among the users holding some. So it shrinks
/// as more users hold channels and as channels fill, and every grant
/// leaves most free channels to newcomers, while a user holding none
/// always gets one if any is free. Alone, a user gets about a fifth of the
/// channels (180 of the default 1024), a second one 80, a third 49...;
/// with the default, over 300 users each grabbing all they can hold one
/// before a newcomer finds none free (and root always finds its reserve).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChannelLimits {
    /// Channels of all clients together.
    pub total: usize,
    /// Channels only root may take.
    pub root_reserve: usize,
}

impl ChannelLimits {
    /// Channels served by default (`btfuse mount --max-channels`).
    pub const DEFAULT_TOTAL: usize = 1024;

    /// `total` channels, an eighth of them (at least one, if there are two)
    /// kept for root.
    pub fn new(total: usize) -> ChannelLimits {
        let total = total.max(1);
        ChannelLimits {
            total,
            root_reserve: if total < 2 { 0 } else { (total / 8).max(1) },
        }
    }

    /// Whether a user other than root holding `held` channels, while
    /// `others` other such users hold some and `used` channels are taken in
    /// all, may take one more (the fair-share rule of [`ChannelLimits`]).
    fn user_may_take(&self, held: usize, others: usize, used: usize) -> bool {
        let free = self
            .total
            .saturating_sub(used)
            .saturating_sub(self.root_reserve);
        held.saturating_mul(4).saturating_mul(others + 1) < free
    }
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits::new(Self::DEFAULT_TOTAL)
    }
}

/// Why a channel was refused (its client then uses the kernel).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// All [`ChannelLimits::total`] channels are taken.
    Total,
    /// The user holds its fair share already (or only root's reserve is
    /// left; see [`ChannelLimits`]).
    User(u32),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total => f.write_str("channel limit reached"),
            Refused::User(uid) => write!(f, "fair share of channels of uid {uid} reached"),
        }
    }
}

/// The clients and how many channels each process and each user holds.
#[derive(Default)]
struct Members {
    /// Each client; its channel count is its own (`Client::channels`),
    /// changed only under this lock.
    by_key: HashMap<Key, Arc<Client>>,
    by_uid: HashMap<u32, usize>,
    channels: usize,
}

/// All connected client processes.
#[derive(Default)]
pub struct Clients {
    members: Mutex<Members>,
    limits: ChannelLimits,
    access: crate::access::Access,
}

impl Clients {
    /// No clients yet; at most `limits` channels at once.
    pub fn new(limits: ChannelLimits) -> Clients {
        Clients {
            members: Mutex::default(),
            limits,
            access: crate::access::Access::Everyone,
        }
    }

    /// The same, admitting only the clients `access` permits.
    pub fn with_access(self, access: crate::access::Access) -> Clients {
        Clients { access, ..self }
    }

    /// Who may hold a channel.
    pub fn access(&self) -> crate::access::Access {
        self.access
    }

    /// The channel limits.
    pub fn limits(&self) -> ChannelLimits {
        self.limits
    }

    /// Joins (or starts) the client of process image `image` of `pid` with
    /// `creds` for one more channel, unless that channel would pass the
    /// total or the user's fair share (see [`ChannelLimits`]).
    pub fn join(&self, pid: u32, image: u64, creds: Creds) -> Result<Arc<Client>, Refused> {
        let uid = creds.uid;
        let client = Client::new(pid, image, creds);
        let mut m = self.members.lock();
        if m.channels >= self.limits.total {
            return Err(Refused::Total);
        }
        if uid != 0 {
            let held = m.by_uid.get(&uid).copied().unwrap_or(0);
            // Users other than root and this one holding channels (`by_uid`
            // keeps users holding at least one).
            let others = m.by_uid.keys().filter(|&&u| u != 0 && u != uid).count();
            if !self.limits.user_may_take(held, others, m.channels) {
                return Err(Refused::User(uid));
            }
        }
        *m.by_uid.entry(uid).or_insert(0) += 1;
        m.channels += 1;
        let entry = m
            .by_key
            .entry(key(&client))
            .or_insert_with(|| Arc::new(client));
        entry.channels.fetch_add(1, Ordering::Relaxed);
        Ok(entry.clone())
    }

    /// One channel of `client` closed; the last one releases its handles.
    pub fn leave(&self, store: &Store, client: &Client) {
        let mut m = self.members.lock();
        let k = key(client);
        let Some(entry) = m.by_key.get_mut(&k) else {
            return;
        };
        let left = entry.channels.load(Ordering::Relaxed).saturating_sub(1);
        entry.channels.store(left, Ordering::Relaxed);
        let last = left == 0;
        m.channels = m.channels.saturating_sub(1);
        if let Some(n) = m.by_uid.get_mut(&client.creds.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.by_uid.remove(&client.creds.uid);
            }
        }
        if last {
            let client = m.by_key.remove(&k).expect("entry present");
            drop(m);
            client.release_all(store);
        }
    }

    /// What handle `fh` was opened as, if the client of process image
    /// `image` of `pid` with exactly `creds` holds it; `None` for anyone
    /// else (another process, another image of the same pid, or the same
    /// process under another identity).
    pub fn holder_kind(&self, pid: u32, image: u64, creds: &Creds, fh: u64) -> Option<HandleKind> {
        let m = self.members.lock();
        let client = m.by_key.get(&key_of(pid, image, creds))?;
        client.kind(fh).ok()
    }

    /// What handle `fh` was opened as, if the daemon is opening it through
    /// the kernel on behalf of the client of process image `image` that
    /// holds it ([`Client::opening_for`]); `None` otherwise.
    pub fn opening_kind(&self, image: u64, fh: u64) -> Option<HandleKind> {
        let m = self.members.lock();
        m.by_key
            .values()
            .find(|c| c.image == image && c.opening.lock().contains(&fh))
            .and_then(|c| c.kind(fh).ok())
    }

    /// Connected clients and the handles they hold, for `btfuse stats`.
    pub fn summary(&self) -> (usize, usize) {
        let m = self.members.lock();
        (
            m.by_key.len(),
            m.by_key.values().map(|c| c.open_handles()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inode_store::ROOT_INO;

    #[test]
    fn handles_are_private_and_released_with_the_last_channel() {
        let store = Store::new(1 << 20);
        let clients = Clients::default();
        let a1 = clients.join(10, 0, Creds::root()).unwrap();
        let a2 = clients.join(10, 0, Creds::root()).unwrap();
        let b = clients.join(11, 0, Creds::root()).unwrap();
        assert!(Arc::ptr_eq(&a1, &a2));
        let (_, fh) = store
            .create(&a1.creds, ROOT_INO, b"f", 0o644, libc::O_RDWR)
            .unwrap();
        a1.adopt(fh, HandleKind::File);
        assert_eq!(a2.check(fh.0, HandleKind::File), Ok(fh));
        assert_eq!(b.check(fh.0, HandleKind::File), Err(Errno(libc::EBADF)));
        assert_eq!(a1.check(fh.0, HandleKind::Dir), Err(Errno(libc::ENOTDIR)));
        clients.leave(&store, &a1);
        assert_eq!(clients.summary(), (2, 1));
        clients.leave(&store, &a2);
        assert_eq!(clients.summary(), (1, 0));
        assert_eq!(store.read(fh, 0, &mut [0; 1]), Err(Errno(libc::EBADF)));
    }

    #[test]
    fn only_the_holder_is_told_about_a_handle() {
        let store = Store::new(1 << 20);
        let clients = Clients::default();
        let user = |groups: Vec<u32>| Creds {
            uid: 1000,
            gid: 1000,
            groups,
            caps: inode_store::Caps::NONE,
        };
        let a = clients.join(10, 7, user(vec![27])).unwrap();
        let fh = store.opendir(&a.creds, ROOT_INO).unwrap();
        a.adopt(fh, HandleKind::Dir);
        let holder = |pid, image, creds: &Creds| clients.holder_kind(pid, image, creds, fh.0);
        assert_eq!(holder(10, 7, &user(vec![27])), Some(HandleKind::Dir));
        assert_eq!(holder(11, 7, &user(vec![27])), None, "another process");
        assert_eq!(holder(10, 8, &user(vec![27])), None, "another image");
        assert_eq!(holder(10, 7, &user(vec![])), None, "other groups");
        assert_eq!(holder(10, 7, &Creds::root()), None, "another identity");
        assert_eq!(clients.holder_kind(10, 7, &user(vec![27]), fh.0 + 1), None);
        clients.leave(&store, &a);
        assert_eq!(holder(10, 7, &user(vec![27])), None, "released");
    }

    #[test]
    fn channel_shares_shrink_with_users_and_leave_room_for_root_and_newcomers() {
        let store = Store::new(1 << 20);
        let clients = Clients::new(ChannelLimits::new(64));
        let user = |uid| Creds {
            uid,
            gid: uid,
            groups: vec![],
            caps: inode_store::Caps::NONE,
        };
        // Each user grabs all it can: the first 12 of the 56 outside root's
        // reserve of 8, the second 5, the third 3...
        let mut held = Vec::new();
        let mut got = Vec::new();
        for uid in 1000..1030 {
            let mut n = 0;
            while let Ok(c) = clients.join(uid, 0, user(uid)) {
                held.push(c);
                n += 1;
            }
            assert_eq!(
                clients.join(uid, 0, user(uid)).err(),
                Some(Refused::User(uid))
            );
            got.push(n);
        }
        assert_eq!(got[..4], [12, 5, 3, 3], "{got:?}");
        assert!(
            got.iter().all(|&n| n >= 1),
            "every user got a channel: {got:?}"
        );
        // Root still gets its reserve, and nothing is left after it.
        let mut root = Vec::new();
        while let Ok(c) = clients.join(1, 0, Creds::root()) {
            root.push(c);
        }
        assert!(root.len() >= 8, "{}", root.len());
        assert_eq!(held.len() + root.len(), 64);
        assert_eq!(
            clients.join(1, 0, Creds::root()).err(),
            Some(Refused::Total)
        );
        // A closed channel frees its place.
        clients.leave(&store, &root[0]);
        assert!(clients.join(1, 0, Creds::root()).is_ok());
        for c in held.iter().chain(&root[1..]) {
            clients.leave(&store, c);
        }
    }

    #[test]
    fn a_credential_change_starts_a_new_client() {
        let clients = Clients::default();
        let root = clients.join(10, 0, Creds::root()).unwrap();
        let user = clients
            .join(
                10,
                0,
                Creds {
                    uid: 1000,
                    gid: 1000,
                    groups: vec![],
                    caps: inode_store::Caps::NONE,
                },
            )
            .unwrap();
        assert!(!Arc::ptr_eq(&root, &user));
        assert_eq!(user.creds.uid, 1000);
        let regrouped = clients
            .join(
                10,
                0,
                Creds {
                    uid: 1000,
                    gid: 1000,
                    groups: vec![27],
                    caps: inode_store::Caps::NONE,
                },
            )
            .unwrap();
        let after_exec = clients.join(10, 1, Creds::root()).unwrap();
        assert!(
            !Arc::ptr_eq(&root, &after_exec),
            "a new process image must not share handles"
        );
        assert!(
            !Arc::ptr_eq(&user, &regrouped),
            "setgroups must not share handles"
        );
    }
}
