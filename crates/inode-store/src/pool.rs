//! The 4 KiB block pool: the only module of the crate with `unsafe` code.
//!
//! Blocks are carved from anonymous `mmap`ed slabs of [`SLAB_BLOCKS`] blocks
//! (256 KiB). Allocation always takes the lowest-indexed slab that has a free
//! block, so live data stays packed into few slabs. A slab whose blocks are
//! all free stays mapped, idle, for [`IDLE_DECAY`] and is reused first
//! (newest first) by the next allocations; after that
//! [`BlockPool::release_idle`] `munmap`s it, which gives the memory back to
//! the OS (RSS returns to its baseline after files are deleted). Rewriting
//! data soon after deleting it (a file truncated and written again, a build
//! directory removed and rebuilt) so reuses memory the process already has
//! instead of faulting in fresh pages: on a VM that hands freed guest memory
//! back to its host (free page reporting), fresh pages cost a host fault
//! each, and a 512 MiB rewrite measured 420 MB/s instead of 6 GB/s.
//!
//! Slabs are cut from 2 MiB chunks populated up front in one system call
//! (`MADV_POPULATE_WRITE`): a new file's data then costs no page fault per
//! 4 KiB (page faults and their accounting were 60–70 % of the daemon's
//! time in a 512 MiB sequential write). The chunks are kept out of
//! transparent huge pages (see [`map_chunk`]).
//!
//! A [`Block`] is the unique owner of its 4 KiB: it is neither `Clone` nor
//! `Copy`, and it goes back to the pool only through [`BlockPool::free`],
//! which consumes it. Hence `&Block` / `&mut Block` give shared / exclusive
//! access to the bytes with ordinary borrow rules, and the bytes stay mapped
//! for as long as the `Block` exists, provided the pool outlives its blocks
//! (the `Store` declares its pool as its last field, so it is dropped last).
//!
//! The pool's mutex is a leaf lock: nothing else is locked while it is held.

use std::collections::{BTreeSet, VecDeque};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::{Errno, Result, BLOCK_SIZE};

/// Blocks per slab (one `u64` bitmap word).
pub(crate) const SLAB_BLOCKS: usize = 64;
const SLAB_BYTES: usize = SLAB_BLOCKS * BLOCK_SIZE;

/// One 4 KiB block of file data, owned by exactly one file.
pub(crate) struct Block {
    ptr: NonNull<u8>,
    slab: u32,
    index: u8,
}

// SAFETY: a `Block` is the unique owner of its 4 KiB (no aliasing pointer is
// kept anywhere: the slab bitmap records only that the block is taken), so
// moving it to another thread or sharing `&Block` (read-only access) between
// threads is as safe as for a `Box<[u8; 4096]>`.
unsafe impl Send for Block {}
// SAFETY: see `Send` above; `&Block` only hands out `&[u8]`.
unsafe impl Sync for Block {}

impl Block {
    /// The block's bytes.
    pub(crate) fn bytes(&self) -> &[u8; BLOCK_SIZE] {
        // SAFETY: `ptr` points at BLOCK_SIZE bytes inside a live mapping (a
        // slab is unmapped only once all of its blocks were freed, and
        // freeing consumes the `Block`); `&self` excludes writers.
        unsafe { &*self.ptr.as_ptr().cast::<[u8; BLOCK_SIZE]>() }
    }

    /// The block's bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; BLOCK_SIZE] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only access.
        unsafe { &mut *self.ptr.as_ptr().cast::<[u8; BLOCK_SIZE]>() }
    }
}

struct Slab {
    base: NonNull<u8>,
    /// Bit i set = block i is free.
    free: u64,
    /// Bit i set = block i was handed out since the slab was mapped, so it
    /// may hold stale bytes (fresh anonymous memory reads as zeros).
    dirty: u64,
}

struct PoolInner {
    slabs: Vec<Option<Slab>>,
    /// Indices of mapped slabs with at least one free block.
    nonfull: BTreeSet<usize>,
    used: u64,
    /// Bytes of metadata (inodes, names, symlink targets, xattrs) charged
    /// against the same capacity as the blocks (see [`BlockPool::charge_meta`]).
    meta: u64,
    mapped: u64,
    /// Mapped slabs not in use yet: the rest of the last chunk.
    spare: Vec<NonNull<u8>>,
    /// Mapped slabs whose blocks were all freed, and when, oldest first.
    idle: VecDeque<(NonNull<u8>, Instant)>,
}

/// How long a slab whose blocks were all freed stays mapped for reuse
/// before [`crate::Store::release_idle_memory`] returns it to the OS.
pub const IDLE_DECAY: Duration = Duration::from_secs(5);

// SAFETY: the raw slab base pointers are only dereferenced through `Block`s
// or under the pool mutex; the mappings are process-wide, not thread-bound.
unsafe impl Send for PoolInner {}

/// A bounded pool of zero-initialised 4 KiB blocks.
pub(crate) struct BlockPool {
    inner: Mutex<PoolInner>,
    capacity: u64,
}

/// Bytes of one chunk: populated with one system call.
const CHUNK_BYTES: usize = 2 << 20;

/// Maps one anonymous, private, zero-filled 2 MiB chunk of 4 KiB pages,
/// populated at once; returns the bases of its slabs, highest first.
fn map_chunk() -> Result<Vec<NonNull<u8>>> {
    // SAFETY: a fresh anonymous mapping aliases nothing; the arguments are
    // valid for mmap(2) and the result is checked against MAP_FAILED.
    let chunk = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            CHUNK_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if chunk == libc::MAP_FAILED {
        return Err(Errno::ENOSPC);
    }
    // No transparent huge pages, even where THP is "always": a huge page
    // takes a free 2 MiB block, and a VM that hands free memory back to its
    // host (free page reporting) reports exactly those, so each of its 512
    // pages then costs a host fault while being zeroed. Measured here:
    // `--from` of 1 GiB 15.5 s with huge pages, 0.6-2.7 s without; a first
    // preloaded 1 GiB `dd` 56-83 MB/s with, 1.1-1.3 GB/s without.
    // SAFETY: advice on our own fresh mapping; a kernel without THP refuses
    // it harmlessly.
    unsafe { libc::madvise(chunk, CHUNK_BYTES, libc::MADV_NOHUGEPAGE) };
    // SAFETY: as above. Populating now faults everything in at once, in one
    // system call instead of one page fault per 4 KiB.
    if unsafe { libc::madvise(chunk, CHUNK_BYTES, libc::MADV_POPULATE_WRITE) } != 0 {
        let e = std::io::Error::last_os_error().raw_os_error();
        if e != Some(libc::EINVAL) {
            // SAFETY: our own chunk, not handed out yet.
            unsafe { libc::munmap(chunk, CHUNK_BYTES) };
            return Err(Errno::ENOSPC);
        }
        // Before Linux 5.14: pages fault in as blocks are written.
    }
    let base = chunk as usize;
    Ok((0..CHUNK_BYTES / SLAB_BYTES)
        .rev()
        // SAFETY: inside the chunk, which is non-null.
        .map(|i| unsafe { NonNull::new_unchecked((base + i * SLAB_BYTES) as *mut u8) })
        .collect())
}

/// Unmaps a slab.
///
/// # Safety
/// `base` came from [`map_chunk`] and no `Block` inside it is still alive.
unsafe fn unmap_slab(base: NonNull<u8>) {
    // SAFETY: guaranteed by the caller; munmap of a whole mapping we own.
    let rc = unsafe { libc::munmap(base.as_ptr().cast(), SLAB_BYTES) };
    debug_assert_eq!(rc, 0, "munmap failed");
}

impl BlockPool {
    /// A pool that hands out at most `capacity` blocks.
    pub(crate) fn new(capacity: u64) -> BlockPool {
        BlockPool {
            inner: Mutex::new(PoolInner {
                slabs: Vec::new(),
                nonfull: BTreeSet::new(),
                used: 0,
                meta: 0,
                mapped: 0,
                spare: Vec::new(),
                idle: VecDeque::new(),
            }),
            capacity,
        }
    }

    /// Total blocks the pool may hand out.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Blocks currently handed out.
    pub(crate) fn used(&self) -> u64 {
        self.inner.lock().used
    }

    /// Bytes of metadata charged (see [`BlockPool::charge_meta`]).
    pub(crate) fn meta_bytes(&self) -> u64 {
        self.inner.lock().meta
    }

    /// Blocks counted against the capacity: data blocks plus the metadata
    /// bytes rounded up to whole blocks (what statfs reports as used).
    pub(crate) fn charged(&self) -> u64 {
        self.inner.lock().charged()
    }

    /// Charges `bytes` of metadata against the capacity, or ENOSPC (and no
    /// charge) when data and metadata together would pass it. Metadata
    /// lives on the daemon's heap, not in the pool's slabs, but it is
    /// memory the filesystem holds for its users all the same: counting it
    /// keeps `--size` a bound on the daemon's memory, not only on file data.
    pub(crate) fn charge_meta(&self, bytes: u64) -> Result<()> {
        let mut g = self.inner.lock();
        let meta = g.meta.saturating_add(bytes);
        if g.used.saturating_add(meta.div_ceil(BLOCK_SIZE as u64)) > self.capacity {
            return Err(Errno::ENOSPC);
        }
        g.meta = meta;
        Ok(())
    }

    /// Returns `bytes` of metadata charged with [`BlockPool::charge_meta`].
    pub(crate) fn uncharge_meta(&self, bytes: u64) {
        let mut g = self.inner.lock();
        g.meta = g.meta.saturating_sub(bytes);
    }

    /// Slabs currently mapped and holding blocks.
    pub(crate) fn slabs_mapped(&self) -> u64 {
        self.inner.lock().mapped
    }

    /// Slabs mapped with no block in use, kept for reuse (see [`IDLE_DECAY`]).
    pub(crate) fn slabs_idle(&self) -> u64 {
        self.inner.lock().idle.len() as u64
    }

    /// Unmaps the slabs that have been idle since [`IDLE_DECAY`] before
    /// `now`; returns when the next idle slab is due, if any.
    pub(crate) fn release_idle(&self, now: Instant) -> Option<Instant> {
        let mut due = Vec::new();
        let next = {
            let mut g = self.inner.lock();
            while let Some(&(base, since)) = g.idle.front() {
                if now.saturating_duration_since(since) < IDLE_DECAY {
                    break;
                }
                g.idle.pop_front();
                due.push(base);
            }
            g.idle.front().map(|&(_, since)| since + IDLE_DECAY)
        };
        // Outside the lock: unmapping many slabs takes a while.
        for base in due {
            // SAFETY: an idle slab holds no blocks, and it left the pool's
            // lists above, so nothing can hand out a block of it any more.
            unsafe { unmap_slab(base) };
        }
        next
    }

    /// One block whose bytes are all zero (when `zeroed`) or unspecified
    /// (when the caller overwrites all of it). ENOSPC when the pool is full.
    #[cfg(test)]
    pub(crate) fn alloc(&self, zeroed: bool) -> Result<Block> {
        let mut g = self.inner.lock();
        g.alloc(self.capacity, zeroed)
    }

    /// Up to `n` blocks of unspecified bytes (for callers that overwrite
    /// them whole or zero what they do not write), fewer when the pool runs
    /// out; one lock for the lot, where a block at a time cost a locked
    /// instruction per 4 KiB of a large write.
    pub(crate) fn alloc_up_to(&self, n: usize) -> Vec<Block> {
        let mut g = self.inner.lock();
        let room = self.capacity.saturating_sub(g.charged());
        let n = n.min(usize::try_from(room).unwrap_or(usize::MAX));
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match g.alloc(self.capacity, false) {
                Ok(b) => out.push(b),
                Err(_) => break,
            }
        }
        out
    }

    /// `n` zeroed blocks, all or nothing (ENOSPC).
    pub(crate) fn alloc_many(&self, n: u64) -> Result<Vec<Block>> {
        let mut g = self.inner.lock();
        if self.capacity.saturating_sub(g.charged()) < n {
            return Err(Errno::ENOSPC);
        }
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for _ in 0..n {
            match g.alloc(self.capacity, true) {
                Ok(b) => out.push(b),
                Err(e) => {
                    for b in out {
                        g.free(b);
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Returns blocks to the pool (unmapping slabs that become empty).
    pub(crate) fn free(&self, blocks: impl IntoIterator<Item = Block>) {
        let mut it = blocks.into_iter().peekable();
        if it.peek().is_none() {
            return;
        }
        let mut g = self.inner.lock();
        for b in it {
            g.free(b);
        }
    }
}

impl PoolInner {
    /// Data blocks plus metadata rounded up to blocks.
    fn charged(&self) -> u64 {
        self.used
            .saturating_add(self.meta.div_ceil(BLOCK_SIZE as u64))
    }

    fn alloc(&mut self, capacity: u64, zeroed: bool) -> Result<Block> {
        if self.charged() >= capacity {
            return Err(Errno::ENOSPC);
        }
        let si = match self.nonfull.first() {
            Some(&i) => i,
            None => {
                let slab = match self.idle.pop_back() {
                    // Its blocks may hold old bytes.
                    Some((base, _)) => Slab {
                        base,
                        free: u64::MAX,
                        dirty: u64::MAX,
                    },
                    None => {
                        if self.spare.is_empty() {
                            self.spare = map_chunk()?;
                        }
                        Slab {
                            base: self.spare.pop().expect("a fresh chunk has slabs"),
                            free: u64::MAX,
                            dirty: 0,
                        }
                    }
                };
                self.mapped += 1;
                let i = match self.slabs.iter().position(Option::is_none) {
                    Some(i) => {
                        self.slabs[i] = Some(slab);
                        i
                    }
                    None => {
                        self.slabs.push(Some(slab));
                        self.slabs.len() - 1
                    }
                };
                self.nonfull.insert(i);
                i
            }
        };
        let slab = self.slabs[si]
            .as_mut()
            .expect("nonfull set names a mapped slab");
        let bi = slab.free.trailing_zeros() as usize;
        let bit = 1u64 << bi;
        slab.free &= !bit;
        let was_dirty = slab.dirty & bit != 0;
        slab.dirty |= bit;
        if slab.free == 0 {
            self.nonfull.remove(&si);
        }
        self.used += 1;
        // SAFETY: bi < SLAB_BLOCKS, so the block lies inside the slab mapping.
        let ptr = unsafe { NonNull::new_unchecked(slab.base.as_ptr().add(bi * BLOCK_SIZE)) };
        let mut block = Block {
            ptr,
            slab: u32::try_from(si).expect("slab index fits u32"),
            index: bi as u8,
        };
        if zeroed && was_dirty {
            block.bytes_mut().fill(0);
        }
        Ok(block)
    }

    fn free(&mut self, b: Block) {
        let si = b.slab as usize;
        let bit = 1u64 << b.index;
        let slab = self.slabs[si].as_mut().expect("block of a mapped slab");
        debug_assert_eq!(slab.free & bit, 0, "double free");
        slab.free |= bit;
        self.used = self.used.saturating_sub(1);
        if slab.free == u64::MAX {
            let base = slab.base;
            self.slabs[si] = None;
            self.nonfull.remove(&si);
            self.mapped = self.mapped.saturating_sub(1);
            self.idle.push_back((base, Instant::now()));
            while matches!(self.slabs.last(), Some(None)) {
                self.slabs.pop();
            }
        } else {
            self.nonfull.insert(si);
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let bases = self.slabs.drain(..).flatten().map(|s| s.base);
        let idle = self.idle.drain(..).map(|(base, _)| base);
        for base in bases.chain(self.spare.drain(..)).chain(idle) {
            // SAFETY: the pool is being dropped; the `Store` drops every
            // file (and so every `Block`) before its pool. Spare and idle
            // slabs hold no blocks.
            unsafe { unmap_slab(base) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_allocates_densely_and_unmaps_empty_slabs() {
        let pool = BlockPool::new(1000);
        let mut blocks: Vec<Block> = (0..130).map(|_| pool.alloc(true).unwrap()).collect();
        assert_eq!(pool.used(), 130);
        assert_eq!(pool.slabs_mapped(), 3);
        // Free the whole middle slab: it goes idle.
        let middle: Vec<Block> = blocks.drain(64..128).collect();
        pool.free(middle);
        assert_eq!((pool.slabs_mapped(), pool.slabs_idle()), (2, 1));
        // Allocation fills the lowest mapped slab with room (slot 2) before
        // taking a slab (the idle one), which takes the lowest free slot (1).
        for _ in 0..62 {
            let b = pool.alloc(true).unwrap();
            assert_eq!(b.slab, 2);
            blocks.push(b);
        }
        let b = pool.alloc(true).unwrap();
        assert_eq!(b.slab, 1);
        assert_eq!((pool.slabs_mapped(), pool.slabs_idle()), (3, 0));
        blocks.push(b);
        pool.free(blocks);
        assert_eq!(pool.used(), 0);
        assert_eq!((pool.slabs_mapped(), pool.slabs_idle()), (0, 3));
        // Idle slabs are unmapped once they have been idle for IDLE_DECAY.
        let now = Instant::now();
        let next = pool.release_idle(now).expect("not due yet");
        assert!(next > now && next <= now + IDLE_DECAY);
        assert_eq!(pool.slabs_idle(), 3);
        assert_eq!(pool.release_idle(now + IDLE_DECAY), None);
        assert_eq!(pool.slabs_idle(), 0);
    }

    #[test]
    fn an_idle_slab_is_reused_newest_first_and_its_blocks_zeroed() {
        let pool = BlockPool::new(1000);
        let mut a: Vec<Block> = (0..64).map(|_| pool.alloc(true).unwrap()).collect();
        let b: Vec<Block> = (0..64).map(|_| pool.alloc(true).unwrap()).collect();
        let newest = b[0].ptr;
        for blk in &mut a {
            blk.bytes_mut().fill(0xAB);
        }
        pool.free(a);
        pool.free(b);
        assert_eq!(pool.slabs_idle(), 2);
        let again = pool.alloc(true).unwrap();
        assert_eq!(again.ptr, newest);
        assert!(again.bytes().iter().all(|&x| x == 0));
        let rest: Vec<Block> = (0..127).map(|_| pool.alloc(true).unwrap()).collect();
        assert!(rest.iter().all(|b| b.bytes().iter().all(|&x| x == 0)));
        assert_eq!((pool.slabs_mapped(), pool.slabs_idle()), (2, 0));
        pool.free(rest);
        pool.free([again]);
    }

    #[test]
    fn pool_reports_enospc_then_recovers() {
        let pool = BlockPool::new(3);
        let a: Vec<Block> = (0..3).map(|_| pool.alloc(false).unwrap()).collect();
        assert_eq!(pool.alloc(true).err(), Some(Errno::ENOSPC));
        assert_eq!(pool.alloc_many(1).err(), Some(Errno::ENOSPC));
        pool.free(a);
        let again = pool.alloc_many(3).unwrap();
        assert_eq!(again.len(), 3);
        pool.free(again);
    }

    #[test]
    fn reused_blocks_are_zeroed() {
        let pool = BlockPool::new(100);
        let keep = pool.alloc(true).unwrap(); // keeps the slab mapped
        let mut b = pool.alloc(true).unwrap();
        b.bytes_mut().fill(0xAB);
        pool.free([b]);
        let b = pool.alloc(true).unwrap();
        assert!(b.bytes().iter().all(|&x| x == 0));
        pool.free([b, keep]);
    }
}
