//! [`ops::OpenAhead`]: a directory's small files opened, with their bytes,
//! before the client asks for them one by one.

use proto::ops::{OpenAheadOut, AHEAD_DATA_MAX};
use proto::AheadRecord;

use super::*;

/// Most files one request opens, whatever the client asks: each is a
/// handle the client holds until its cache lets it go.
const MOST_FILES: usize = 256;

/// A file opened for the client's cache: its handle, attributes and bytes.
struct Opened {
    fh: Fh,
    attr: Attr,
    len: usize,
}

impl Handlers<'_> {
    /// See [`ops::OpenAhead`].
    pub(super) fn open_files_ahead(
        &mut self,
        req: &ops::OpenAhead,
        p: Paths<'_>,
    ) -> OpResult<OpenAheadOut> {
        let stamp = self.store.quiet_stamp();
        let r = self.walk(req.base, p.path, false)?;
        let max = (req.max as usize).min(MOST_FILES);
        let names = self
            .store
            .names_from(&self.client.creds, r.parent, &r.name, max)?;
        let room = self.bulk.len();
        // Gathered here and copied to the shared area at once (see
        // `readdir_entries`).
        let mut out = Vec::with_capacity(room.min(1 << 16));
        let mut opened = Vec::new();
        let mut data = [0u8; AHEAD_DATA_MAX];
        let scanned = names.len() as u64;
        for (name, ino) in names {
            let Some(f) = self.open_for_cache(ino, &mut data) else {
                continue;
            };
            if out.len() + AheadRecord::record_len(name.len(), f.len) > room {
                self.let_go(f.fh);
                break;
            }
            encode(&mut out, &f, &name, &data[..f.len]);
            opened.push(f.fh);
        }
        let stamp = self.kept(stamp);
        if stamp == 0 {
            // Something changed meanwhile: nothing here may be kept.
            opened.into_iter().for_each(|fh| self.let_go(fh));
            return Ok(OpenAheadOut::default());
        }
        self.bulk.write(0, &out);
        self.transferred.read = out.len() as u64;
        Ok(OpenAheadOut {
            count: opened.len() as u64,
            scanned,
            bytes: out.len() as u64,
            stamp,
            dir: r.parent,
        })
    }

    /// Opens file `ino` read-only for the caller's cache and reads its
    /// bytes into `data` as a read would (the kernel's pages of it given
    /// back first), if it is a small regular file the caller may read and
    /// a read now would not update its atime (an empty one's reads none).
    fn open_for_cache(&mut self, ino: Ino, data: &mut [u8; AHEAD_DATA_MAX]) -> Option<Opened> {
        let attr = self.store.getattr(ino).ok()?;
        let len = usize::try_from(attr.size).ok()?;
        if attr.kind != FileKind::Regular || len > AHEAD_DATA_MAX {
            return None;
        }
        self.client.room_for_handle().ok()?;
        let fh = self
            .store
            .open(&self.client.creds, ino, libc::O_RDONLY)
            .ok()?;
        self.client.adopt(fh, HandleKind::File);
        if len == 0 && !self.kernel.holds_pages(ino) {
            // The request's stamp covers the size.
            return Some(Opened { fh, attr, len });
        }
        match self.whole_file(fh, &attr, data) {
            Some((_, _, attr)) if len > 0 => Some(Opened { fh, attr, len }),
            _ => {
                self.let_go(fh);
                None
            }
        }
    }

    /// Releases a handle opened here that the reply will not carry.
    fn let_go(&self, fh: Fh) {
        let _ = self.client.release(self.store, fh.0);
    }
}

/// Appends `f`'s record: header, attributes, name, bytes, padding.
fn encode(out: &mut Vec<u8>, f: &Opened, name: &[u8], data: &[u8]) {
    let start = out.len();
    let header = AheadRecord {
        fh: f.fh.0,
        name_len: name.len() as u16,
        data_len: data.len() as u16,
        _pad: 0,
    };
    out.extend_from_slice(proto::bytes_of(&header));
    out.extend_from_slice(proto::bytes_of(&f.attr.wire()));
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    out.resize(start + AheadRecord::record_len(name.len(), data.len()), 0);
}
