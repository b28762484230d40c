//! The channel's bulk area seen by the handlers, and its views as the
//! source and destination of file data.

use inode_store::{DataSink, DataSource};

/// The channel's bulk area as the handlers use it. The ring door backs it
/// with shared memory (raw, bounds-checked copies: the client may write
/// there at any time); tests back it with a `Vec`. Offsets and lengths are
/// always checked against [`BulkArea::len`] before a call.
pub trait BulkArea {
    /// Size in bytes.
    fn len(&self) -> usize;
    /// Copies `dst.len()` bytes at `offset` out of the area.
    fn read(&self, offset: usize, dst: &mut [u8]);
    /// Copies `src` into the area at `offset`.
    fn write(&mut self, offset: usize, src: &[u8]);
}

/// The first `len` bytes of a bulk area as the source of a file write.
pub(super) struct BulkSource<'a> {
    pub(super) area: &'a dyn BulkArea,
    pub(super) len: usize,
}

impl DataSource for BulkSource<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn take(&self, offset: usize, dst: &mut [u8]) {
        self.area.read(offset, dst);
    }
}

/// The first `len` bytes of a bulk area as the destination of a file read.
pub(super) struct BulkSink<'a> {
    pub(super) area: &'a mut dyn BulkArea,
    pub(super) len: usize,
}

impl DataSink for BulkSink<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn put(&mut self, offset: usize, src: &[u8]) {
        self.area.write(offset, src);
    }
    fn zero(&mut self, mut offset: usize, mut len: usize) {
        const ZEROS: [u8; 4096] = [0; 4096];
        while len > 0 {
            let n = len.min(ZEROS.len());
            self.area.write(offset, &ZEROS[..n]);
            offset += n;
            len -= n;
        }
    }
}
