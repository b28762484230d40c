//! Where file data comes from and goes to.
//!
//! Reads and writes usually move bytes between a file and a slice. The
//! fast path moves them between a file and a shared-memory area instead,
//! which must be copied with raw copies (another process may change it at
//! any time, so no Rust reference may point into it). These traits let the
//! store copy straight to or from such an area: one copy, not two.

/// Bytes to be written into a file.
pub trait DataSource {
    /// Number of bytes.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `dst.len()` bytes, starting `offset` bytes in, into `dst`.
    fn take(&self, offset: usize, dst: &mut [u8]);
}

/// Room for bytes read from a file.
pub trait DataSink {
    /// Number of bytes it holds.
    fn len(&self) -> usize;
    /// Whether it holds none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores `src` at `offset`.
    fn put(&mut self, offset: usize, src: &[u8]);
    /// Stores `len` zero bytes at `offset` (holes).
    fn zero(&mut self, offset: usize, len: usize);
}

impl DataSource for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn take(&self, offset: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self[offset..offset + dst.len()]);
    }
}

impl DataSink for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn put(&mut self, offset: usize, src: &[u8]) {
        self[offset..offset + src.len()].copy_from_slice(src);
    }
    fn zero(&mut self, offset: usize, len: usize) {
        self[offset..offset + len].fill(0);
    }
}
