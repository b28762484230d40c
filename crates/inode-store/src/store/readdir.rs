//! Reading directories: handles that keep each name's cookie, and
//! batches gathered under the locks and handed out after.

use super::listings::{self, Listing};
use super::*;
use proto::changes::LISTED;

/// A batch of a kept listing's records (see [`Store::readdir_records`]).
pub struct RecordBatch {
    /// The records of "." and "..".
    head: Vec<u8>,
    listing: Arc<Listing>,
    /// Bytes of the named entries' records.
    bytes: usize,
    /// Entries in the batch, "." and ".." included.
    pub entries: usize,
    /// Bytes the batch's records take without attributes.
    pub plain: usize,
    /// Whether the batch ends the listing.
    pub complete: bool,
    /// The generation every entry of the batch holds under, as
    /// [`Store::readdir_stamped`] tells it.
    pub stamp: Option<u64>,
}

impl RecordBatch {
    /// The records, in two parts: "." and "..", then the named entries.
    pub fn records(&self) -> [&[u8]; 2] {
        [&self.head, self.listing.records().bytes(self.bytes)]
    }
}

/// One entry of a batch: inode, type, attributes (with `plus`).
type Listed = (Ino, FileKind, Option<Attr>);

/// What one readdir batch resumes after.
enum Pos {
    Start,
    AfterDot,
    AfterDotDot,
    /// Past a name of the batch in hand (made `After` at its end).
    Named,
    After(Vec<u8>),
}

impl Store {
    /// Opens a directory for readdir (needs read permission).
    pub fn opendir(&self, c: &Creds, ino: Ino) -> Result<Fh> {
        let (node, kind) = {
            let t = self.tree.read();
            if t.entry(ino)?.dir.is_none() {
                return Err(Errno::ENOTDIR);
            }
            t.open(c, ino, libc::O_RDONLY | libc::O_DIRECTORY, &self.pool)?
        };
        Ok(self.add_handle(c, node, kind))
    }

    /// The names of directory `ino` from `from` on (in name order, `from`
    /// itself included), at most `max`, with their inodes: a listing, so
    /// it needs read permission on the directory.
    pub fn names_from(
        &self,
        c: &Creds,
        ino: Ino,
        from: &[u8],
        max: usize,
    ) -> Result<Vec<(Vec<u8>, Ino)>> {
        let t = self.tree.read();
        t.access(c, ino, libc::R_OK)?;
        let dir = t.dir(ino)?;
        let range = (Bound::Included(from), Bound::Unbounded);
        Ok(dir
            .children
            .range::<[u8], _>(range)
            .take(max)
            .map(|(name, &child)| (name.clone(), child))
            .collect())
    }

    /// Calls `f` for entries after cookie `offset` (0 = start; "." and ".."
    /// first) in name order until `f` returns false (buffer full; that entry
    /// is NOT consumed) or the end. Resuming from a cookie continues strictly
    /// after the name it was handed out for, so concurrent inserts and
    /// removals never duplicate an entry or skip a survivor. `f` runs with
    /// no store lock held (only the handle's own cursor) and may call back
    /// into the store, but not list through the same handle.
    /// The entries come without attributes (`DirEntry::attr` is `None`).
    pub fn readdir(&self, fh: Fh, offset: u64, f: impl FnMut(&DirEntry<'_>) -> bool) -> Result<()> {
        self.readdir_stamped(fh, offset, false, f).map(drop)
    }

    /// [`Store::readdir`] with every entry's attributes (a readdirplus).
    pub fn readdir_plus(
        &self,
        fh: Fh,
        offset: u64,
        f: impl FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        self.readdir_stamped(fh, offset, true, f).map(drop)
    }

    /// [`Store::readdir`] (with attributes if `plus`), also telling the
    /// change generation under which every entry handed out (attributes
    /// included) is the store's state (see the `generation` module), if no
    /// change began from the listing's start to its end. The listing's own
    /// atime update of the directory comes before that start, so it does
    /// not void the entries. Without `plus` an entry costs no lock of its
    /// inode (its number and type never change).
    pub fn readdir_stamped(
        &self,
        fh: Fh,
        offset: u64,
        plus: bool,
        mut f: impl FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<Option<u64>> {
        let (node, cursor) = self.dir_handle(fh)?;
        let ino = node.ino;
        let mut pos = match offset {
            0 => {
                cursor.lock().rewind();
                Pos::Start
            }
            1 => Pos::AfterDot,
            2 => Pos::AfterDotDot,
            n => match cursor.lock().name_of(n) {
                Some(name) => Pos::After(name.to_vec()),
                None => return Ok(None),
            },
        };
        if let Some((l, stamp)) = self.whole_listing(&node, plus, &pos)? {
            return Ok(self.hand_out(&l, stamp, &cursor, &pos, plus, f));
        }
        let mut first = true;
        let mut stamp = None;
        // One batch's names, end to end, and its entries (where each name
        // ends, attributes): two buffers reused batch after batch instead
        // of an allocation per name.
        let mut names: Vec<u8> = Vec::new();
        let mut batch: Vec<(usize, Listed)> = Vec::new();
        loop {
            names.clear();
            batch.clear();
            let mut push = |name: &[u8], node: &Node| {
                names.extend_from_slice(name);
                let attr = plus.then(|| node.attr());
                batch.push((names.len(), (node.ino, node.kind, attr)));
            };
            let more;
            {
                let t = self.tree.read();
                let e = t.entry(ino)?;
                let dir = e.dir.as_ref().ok_or(Errno::ENOTDIR)?;
                {
                    let st = e.node.st.read();
                    if st.nlink == 0 {
                        return Err(Errno::ENOENT);
                    }
                    // The atime was updated by `whole_listing`, before.
                    if first {
                        first = false;
                        stamp = self.quiet_stamp();
                    }
                }
                if matches!(pos, Pos::Start) {
                    push(b".", &e.node);
                }
                if matches!(pos, Pos::Start | Pos::AfterDot) {
                    push(b"..", &t.entry(dir.parent)?.node);
                }
                let lower: Bound<&[u8]> = match &pos {
                    Pos::After(name) => Bound::Excluded(name.as_slice()),
                    _ => Bound::Unbounded,
                };
                let mut n = 0;
                let mut it = dir.children.range::<[u8], _>((lower, Bound::Unbounded));
                for (name, &child) in it.by_ref().take(READDIR_BATCH) {
                    push(name, &t.entry(child)?.node);
                    n += 1;
                }
                more = n == READDIR_BATCH && it.next().is_some();
            }
            let mut start = 0;
            // Held for the batch, not taken per entry; `f` never reaches
            // this handle's cursor.
            let mut cur = cursor.lock();
            for &(end, (ino, kind, attr)) in &batch {
                let name = &names[start..end];
                start = end;
                let cookie = match name {
                    b"." => 1,
                    b".." => 2,
                    _ => cur.cookie_of(name),
                };
                let de = DirEntry {
                    ino,
                    next: cookie,
                    kind,
                    name,
                    attr,
                };
                if !f(&de) {
                    return Ok(stamp.filter(|&s| self.still_quiet(s)));
                }
                pos = match name {
                    b"." => Pos::AfterDot,
                    b".." => Pos::AfterDotDot,
                    _ => Pos::Named,
                };
            }
            if let Pos::Named = pos {
                let last = batch.len().checked_sub(2).map_or(0, |i| batch[i].0);
                pos = Pos::After(names[last..].to_vec());
            }
            if !more {
                return Ok(stamp.filter(|&s| self.still_quiet(s)));
            }
        }
    }

    /// The entries of handle `fh`'s directory from its start, with their
    /// attributes, as the fast path's records (see [`DirEntry::encode`]),
    /// when the listing is kept (see `listings`) and nothing was read
    /// through the handle yet: "." and ".." (whose records the caller
    /// makes: ".." with its attributes as they stand now), then the named
    /// entries whose records fit `room` bytes and whose plain records fit
    /// `plain_room` bytes, in one copy. `None`: list with
    /// [`Store::readdir_stamped`], which hands out the same.
    pub fn readdir_records(
        &self,
        fh: Fh,
        room: usize,
        plain_room: usize,
    ) -> Result<Option<RecordBatch>> {
        let (node, cursor) = self.dir_handle(fh)?;
        if !cursor.lock().fresh() {
            return Ok(None);
        }
        let Some((listing, stamp)) = self.whole_listing(&node, true, &Pos::Start)? else {
            return Ok(None);
        };
        if listing.len() < 2 {
            return Ok(None);
        }
        let dot = *listing.get(0).1;
        let kept_dotdot = *listing.get(1).1;
        let dotdot = self
            .tree
            .read()
            .node(kept_dotdot.ino)
            .map_or(kept_dotdot, |n| n.attr());
        let dots =
            [(b".".as_slice(), dot, 1), (b"..".as_slice(), dotdot, 2)].map(|(name, attr, next)| {
                DirEntry {
                    ino: attr.ino,
                    next,
                    kind: attr.kind,
                    name,
                    attr: Some(attr),
                }
            });
        let dots_len: usize = dots.iter().map(DirEntry::record_len).sum();
        let dots_plain: usize = dots.iter().map(DirEntry::plain_len).sum();
        let (Some(room), Some(plain_room)) = (
            room.checked_sub(dots_len),
            plain_room.checked_sub(dots_plain),
        ) else {
            return Ok(None);
        };
        let mut cur = cursor.lock();
        if !cur.fresh() {
            return Ok(None);
        }
        let (named, bytes) = listing.records().fitting(room, plain_room);
        let (names, ends) = listing.named(named);
        cur.hand_out(names, ends);
        drop(cur);
        let mut head = Vec::with_capacity(dots_len);
        for e in &dots {
            e.encode(&mut head);
        }
        Ok(Some(RecordBatch {
            complete: named + 2 == listing.len(),
            plain: dots_plain + listing.records().plain(named),
            entries: named + 2,
            head,
            bytes,
            listing,
            stamp: Some(stamp).filter(|&s| self.still_quiet(s)),
        }))
    }

    /// Whether a listing of directory handle `fh` now would update the
    /// directory's atime (relatime).
    pub fn listing_touches_atime(&self, fh: Fh) -> Result<bool> {
        let (node, _) = self.dir_handle(fh)?;
        let st = node.st.read();
        Ok(node.atime_due_now(&st))
    }

    /// The directory and the cursor of directory handle `fh`.
    fn dir_handle(&self, fh: Fh) -> Result<(Arc<Node>, Arc<Mutex<DirCursor>>)> {
        let h = self.handles.read();
        let h = h.get(&fh).ok_or(Errno::EBADF)?;
        match &h.kind {
            HandleKind::Dir(cur) => Ok((h.node.clone(), cur.clone())),
            HandleKind::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    /// The listing of directory `node` as it stands, kept or made now (a
    /// readdirplus from the start of a directory of at most
    /// `MOST_ENTRIES`), if there is one (see `listings`). Like the first
    /// batch of any listing, it first updates the directory's atime. With
    /// the stamp it holds under.
    fn whole_listing(
        &self,
        node: &Node,
        plus: bool,
        pos: &Pos,
    ) -> Result<Option<(Arc<Listing>, u64)>> {
        {
            let st = node.st.read();
            if st.nlink == 0 {
                return Err(Errno::ENOENT);
            }
            node.touch_atime(&st, &self.gens);
        }
        let Some(stamp) = self.quiet_stamp() else {
            return Ok(None);
        };
        // Its names and the attributes it lists.
        let holds = |kept| self.untouched_since(kept, stamp, &[node.ino, node.ino | LISTED]);
        if let Some(l) = self.listings.get(node.ino, stamp, holds) {
            return Ok(Some((l, stamp)));
        }
        if !plus || !matches!(pos, Pos::Start) {
            return Ok(None);
        }
        let l = {
            let t = self.tree.read();
            let e = t.entry(node.ino)?;
            let dir = e.dir.as_ref().ok_or(Errno::ENOTDIR)?;
            if dir.children.len() + 2 > listings::MOST_ENTRIES {
                return Ok(None);
            }
            // Room at once for the entries and their names if short (a
            // directory of `f00`..`f99` grew its two buffers a dozen times).
            let n = dir.children.len() + 2;
            let mut l = Listing::with_capacity(stamp, n, 16 * n);
            l.push(b".", e.node.attr());
            l.push(b"..", t.entry(dir.parent)?.node.attr());
            for (name, &child) in &dir.children {
                l.push(name, t.entry(child)?.node.attr());
            }
            l
        };
        if !self.still_quiet(stamp) {
            return Ok(None);
        }
        let l = Arc::new(l);
        self.listings.put(node.ino, l.clone());
        Ok(Some((l, stamp)))
    }

    /// Calls `f` for the entries of `l` (holding under `stamp`) after
    /// `pos`, as `readdir_stamped` does; the stamp if it still holds.
    fn hand_out(
        &self,
        l: &Listing,
        stamp: u64,
        cursor: &Mutex<DirCursor>,
        pos: &Pos,
        plus: bool,
        mut f: impl FnMut(&DirEntry<'_>) -> bool,
    ) -> Option<u64> {
        let start = match pos {
            Pos::Start => 0,
            Pos::AfterDot => 1,
            Pos::AfterDotDot => 2,
            Pos::After(name) => l.after(name),
            Pos::Named => unreachable!("a listing starts at a cookie"),
        };
        // "..": its attributes as they stand now (the listing holds for
        // its own directory's changes, not its parent's).
        let dotdot = (plus && start <= 1 && l.len() > 1)
            .then(|| self.tree.read().node(l.get(1).1.ino).ok().map(|n| n.attr()))
            .flatten();
        let mut cur = cursor.lock();
        for i in start..l.len() {
            let (name, attr) = l.get(i);
            let attr = match (i, &dotdot) {
                (1, Some(fresh)) => fresh,
                _ => attr,
            };
            let next = match i {
                0 => 1,
                1 => 2,
                _ => cur.cookie_of(name),
            };
            let e = DirEntry {
                ino: attr.ino,
                next,
                kind: attr.kind,
                name,
                attr: plus.then_some(*attr),
            };
            if !f(&e) {
                break;
            }
        }
        Some(stamp).filter(|&s| self.still_quiet(s))
    }

    /// Drops a directory handle.
    pub fn releasedir(&self, fh: Fh) -> Result<()> {
        self.release(fh)
    }
}
