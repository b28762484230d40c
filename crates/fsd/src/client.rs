//! Per-process state of fast-path clients.
//!
//! All channels opened by one process (one per concurrently calling thread)
//! share one [`Client`]: its credentials, taken from the kernel when the
//! first channel connected, and the store handles it opened. A request may
//! only name handles of its own client, so no process can reach another's
//! open files. When the last channel of a process closes (it exited, or was
//! killed), every handle it still held is released.

use std::collections::HashMap;
use std::sync::Arc;

use inode_store::{Creds, Errno, Fh, Store};
use parking_lot::Mutex;

/// What a handle was opened as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HandleKind {
    /// A regular file (`Store::open`/`create`).
    File,
    /// A directory (`Store::opendir`).
    Dir,
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
}

impl Client {
    fn new(pid: u32, image: u64, creds: Creds) -> Client {
        Client {
            pid,
            image,
            creds,
            handles: Mutex::new(HashMap::new()),
        }
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
        HandleKind::Dir => store.releasedir(fh),
    }
}

/// Identity a client is filed under: a process that changes credentials
/// (setuid, setgroups) after its first channel gets a separate client, so
/// handles are never shared across identities.
type Key = (u32, u64, u32, u32, Vec<u32>);

fn key_of(pid: u32, image: u64, c: &Creds) -> Key {
    (pid, image, c.uid, c.gid, c.groups.clone())
}

fn key(client: &Client) -> Key {
    key_of(client.pid, client.image, &client.creds)
}

/// All connected client processes.
#[derive(Default)]
pub struct Clients {
    by_key: Mutex<HashMap<Key, (Arc<Client>, usize)>>,
}

impl Clients {
    /// Joins (or starts) the client of process image `image` of `pid` with
    /// `creds` for one more channel.
    pub fn join(&self, pid: u32, image: u64, creds: Creds) -> Arc<Client> {
        let client = Client::new(pid, image, creds);
        let mut map = self.by_key.lock();
        let entry = map
            .entry(key(&client))
            .or_insert_with(|| (Arc::new(client), 0));
        entry.1 += 1;
        entry.0.clone()
    }

    /// One channel of `client` closed; the last one releases its handles.
    pub fn leave(&self, store: &Store, client: &Client) {
        let mut map = self.by_key.lock();
        let k = key(client);
        let Some(entry) = map.get_mut(&k) else { return };
        entry.1 = entry.1.saturating_sub(1);
        if entry.1 == 0 {
            let (client, _) = map.remove(&k).expect("entry present");
            drop(map);
            client.release_all(store);
        }
    }

    /// What handle `fh` was opened as, if the client of process image
    /// `image` of `pid` with exactly `creds` holds it; `None` for anyone
    /// else (another process, another image of the same pid, or the same
    /// process under another identity).
    pub fn holder_kind(&self, pid: u32, image: u64, creds: &Creds, fh: u64) -> Option<HandleKind> {
        let map = self.by_key.lock();
        let (client, _) = map.get(&key_of(pid, image, creds))?;
        client.kind(fh).ok()
    }

    /// Connected clients and the handles they hold, for `btfuse stats`.
    pub fn summary(&self) -> (usize, usize) {
        let map = self.by_key.lock();
        (map.len(), map.values().map(|(c, _)| c.open_handles()).sum())
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
        let a1 = clients.join(10, 0, Creds::root());
        let a2 = clients.join(10, 0, Creds::root());
        let b = clients.join(11, 0, Creds::root());
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
        };
        let a = clients.join(10, 7, user(vec![27]));
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
    fn a_credential_change_starts_a_new_client() {
        let clients = Clients::default();
        let root = clients.join(10, 0, Creds::root());
        let user = clients.join(
            10,
            0,
            Creds {
                uid: 1000,
                gid: 1000,
                groups: vec![],
            },
        );
        assert!(!Arc::ptr_eq(&root, &user));
        assert_eq!(user.creds.uid, 1000);
        let regrouped = clients.join(
            10,
            0,
            Creds {
                uid: 1000,
                gid: 1000,
                groups: vec![27],
            },
        );
        let after_exec = clients.join(10, 1, Creds::root());
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
