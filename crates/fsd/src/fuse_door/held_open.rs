//! Files held open through the fast path, reopened through the kernel by
//! a reserved name (see [`FuseFs::held_open`]).

use inode_store::{Attr, Creds, Fh};

use super::FuseFs;
use crate::creds;
use crate::fs_core::clients::HandleKind;

impl FuseFs {
    /// The inode behind fast-path handle `fh`, when a lookup in the root
    /// names it by its reserved name (`proto::handle_name`) and found no
    /// real entry: the library's way to hand a fast-path fd to the kernel
    /// (`kernel_reopen` in crates/interpose), which works after the file
    /// was unlinked or renamed, where reopening by path cannot.
    ///
    /// Only the holder gets an answer: the calling thread's process
    /// (`tid` mapped to its thread group) must be the client, with that
    /// process image and exactly the caller's credentials, that holds the
    /// handle in the core's client table; everyone else gets `None`
    /// (ENOENT, as for any missing name). The lookup takes a kernel
    /// reference on the inode (`Store::add_lookup_by_handle`), so once the kernel
    /// has opened it, that reference keeps an unlinked file alive after
    /// the fast-path handle is released, and the kernel's forget (after
    /// its last close) frees it, as for any unlinked file.
    /// For that forget to come, the library then has the kernel's dentry
    /// of the name dropped (`proto::Op::DropHandleName`): with a zero TTL
    /// it would otherwise stay in the dcache, holding the inode, until
    /// memory pressure.
    ///
    /// The open that follows is checked like any open (the kernel's
    /// `default_permissions` checks the inode's mode against the caller;
    /// the kernel opens files without asking the daemon); the search permission of the directories on the
    /// file's original path is not checked again — the same as reopening
    /// through `/proc/self/fd/N`, and the caller held the file open
    /// already.
    ///
    /// Directories are answered only once removed: the kernel keeps one
    /// dentry per directory, and answering for a linked one would move its
    /// cached dentry (the cwd of other processes, the parent of their
    /// `..`) under this name in the root. A linked directory is reopened by
    /// path instead.
    ///
    /// The daemon's own process is answered too, for a handle it is
    /// opening on its holder's behalf right now (`Client::opening_for`,
    /// `proto::ops::KernelOpen`: the holder's own open was refused by the
    /// file's mode); no other process can make a request with its pid.
    pub(super) fn held_open(&self, tid: u32, c: &Creds, name: &[u8]) -> Option<Attr> {
        let (fh, image) = proto::parse_handle_name(name)?;
        let pid = creds::thread_group(tid)?;
        let on_behalf = || {
            (pid == std::process::id())
                .then(|| self.clients.opening_kind(image, fh))
                .flatten()
        };
        let kind = self
            .clients
            .holder_kind(pid, image, c, fh)
            .or_else(on_behalf)?;
        if kind == HandleKind::Path {
            // Not a handle to open anything through: see `HandleKind::Path`.
            return None;
        }
        let fh = Fh(fh);
        if kind == HandleKind::Dir {
            // A removed directory stays removed (nlink 0 for good).
            let ino = self.store.handle_ino(fh).ok()?;
            if self.store.getattr(ino).ok()?.nlink > 0 {
                return None;
            }
        }
        self.store.add_lookup_by_handle(fh).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use inode_store::{Store, ROOT_INO};

    use super::*;
    use crate::fs_core::clients::Clients;

    /// The reserved-name decision, with this test process as the client:
    /// only its own handles, with its image and credentials, and a
    /// directory only once removed.
    #[test]
    fn reserved_names_answer_the_holder_only() {
        let store = Arc::new(Store::new(1 << 20));
        let clients = Arc::new(Clients::default());
        let fs = FuseFs::new(
            store.clone(),
            Arc::default(),
            clients.clone(),
            Arc::default(),
            true,
            Arc::default(),
        );
        let me = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let root = Creds::root();
        let (ours, other) = (
            clients.join(me, 7, root.clone()).unwrap(),
            clients.join(1, 7, root.clone()).unwrap(),
        );
        let (attr, file) = store
            .create(&root, ROOT_INO, b"f", 0o644, libc::O_RDWR)
            .unwrap();
        ours.adopt(file, HandleKind::File);
        let (_, foreign) = store
            .create(&root, ROOT_INO, b"g", 0o644, libc::O_RDWR)
            .unwrap();
        other.adopt(foreign, HandleKind::File);
        store.mkdir(&root, ROOT_INO, b"d", 0o755).unwrap();
        let d = store.lookup(&root, ROOT_INO, b"d").unwrap().ino;
        let dir = store.opendir(&root, d).unwrap();
        ours.adopt(dir, HandleKind::Dir);
        let ask = |fh: Fh, image: u64| fs.held_open(tid, &root, &proto::handle_name(fh.0, image));

        store.unlink(&root, ROOT_INO, b"f").unwrap();
        let got = ask(file, 7).expect("the holder's unlinked file");
        assert_eq!((got.ino, got.nlink), (attr.ino, 0));
        assert!(
            store.has_lookups(attr.ino),
            "the answer is a kernel reference"
        );
        assert_eq!(ask(file, 8), None, "another image");
        assert_eq!(ask(foreign, 7), None, "another process's handle");
        // This process is also the daemon: a handle it opens on its
        // holder's behalf is answered while it does (`KernelOpen`).
        {
            let _opening = other.opening_for(foreign.0).unwrap();
            assert!(ask(foreign, 7).is_some(), "opening on the holder's behalf");
            assert_eq!(ask(foreign, 8), None, "another image");
        }
        assert_eq!(ask(foreign, 7), None, "opening done");
        assert!(other.opening_for(file.0).is_err(), "not the holder");
        let user = Creds {
            uid: 1000,
            gid: 1000,
            groups: vec![],
            caps: inode_store::Caps::NONE,
        };
        assert_eq!(
            fs.held_open(tid, &user, &proto::handle_name(file.0, 7)),
            None,
            "another identity"
        );
        assert_eq!(fs.held_open(tid, &root, b"f"), None);
        assert_eq!(ask(dir, 7), None, "a linked directory");
        store.rmdir(&root, ROOT_INO, b"d").unwrap();
        assert_eq!(ask(dir, 7).map(|a| a.ino), Some(d), "a removed directory");
        ours.release(&store, file.0).unwrap();
        assert_eq!(ask(file, 7), None, "a released handle");
        // The kernel's reference kept the unlinked inode; its forget frees it.
        store.drop_lookups(attr.ino, 1);
        assert!(store.getattr(attr.ino).is_err());
    }
}
