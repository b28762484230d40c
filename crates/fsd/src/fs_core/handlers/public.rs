//! The ring door's side of the public table (`fs_core::public`): what a
//! request publishes, and [`ops::OpenInode`], the open of a file a
//! process opened from the table.

use super::*;

impl Handlers<'_> {
    /// See [`ops::OpenInode`].
    pub(super) fn reopen_published(&mut self, req: &ops::OpenInode) -> OpResult<OpenOut> {
        if !self
            .public
            .is_some_and(|p| p.may_reopen(req.ino, req.token))
        {
            return Err(err(libc::ESTALE));
        }
        self.client.room_for_handle()?;
        let stamp = self.store.quiet_stamp();
        if self.store.getattr(req.ino)?.kind != FileKind::Regular {
            return Err(err(libc::ESTALE));
        }
        // Granted as the open the token stands for was (see the op): the
        // file was readable by all then, whatever its mode says now.
        let fh = self
            .store
            .open(&inode_store::Creds::root(), req.ino, libc::O_RDONLY)?;
        self.client.adopt(fh, HandleKind::File);
        Ok(OpenOut {
            fh: fh.0,
            attr: self.store.getattr(req.ino)?.wire(),
            stamp: self.kept(stamp),
            dir: 0,
            data_stamp: 0,
        })
    }

    /// Publishes (see `fs_core::public`) that `name` in `parent` is
    /// `attr.ino` under `stamp`, with all the file's bytes `data` if
    /// given (`attr` `None`: that there is no such name), and the
    /// directories from `parent` up to the root: a process that has not
    /// connected then finds the path from the root. Nothing if the ring
    /// door publishes nothing.
    pub(super) fn publish(
        &self,
        (parent, name): (Ino, &[u8]),
        attr: Option<&Attr>,
        stamp: u64,
        data: Option<&[u8]>,
    ) {
        let Some(public) = self.public else {
            return;
        };
        match attr {
            Some(attr) => public.publish(self.store, (parent, name), attr, stamp, data),
            None => public.publish_absent(self.store, (parent, name), stamp),
        }
        let mut dir = parent;
        while let Some((up, name)) = self.store.dir_link(dir) {
            // Stamped anew: the file's bytes may carry an older stamp.
            let stamp = self.store.quiet_stamp().unwrap_or(0);
            // Not written again if published under this very stamp.
            if !public.holds((up, &name), dir, stamp) {
                let Ok(attr) = self.store.getattr(dir) else {
                    return;
                };
                public.publish(self.store, (up, &name), &attr, stamp, None);
            }
            dir = up;
        }
    }
}
