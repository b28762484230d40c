//! The shared-memory layout: the `#[repr(C)]` header, the per-ring control
//! block, and the computation/validation of every offset.
//!
//! Only one layout is valid for a given [`Config`]: [`RegionLayout::new`]
//! computes it, the daemon writes it into the header, and the client accepts
//! a header only if recomputing the layout from its sizes gives exactly the
//! offsets it contains. The daemon never reads the header back: it keeps its
//! own [`RegionLayout`].

use core::fmt;
use core::mem::size_of;
use core::sync::atomic::AtomicU32;

/// `b"BTFSHMRG"`: first 8 bytes of every region.
pub const MAGIC: u64 = u64::from_le_bytes(*b"BTFSHMRG");
/// Layout version; bumped on any change of the shared structures.
pub const VERSION: u32 = 2;
/// Alignment and padding unit of the shared control words: 128 bytes, two
/// 64-byte lines, because Intel's adjacent-line prefetcher pulls lines in
/// pairs (the same choice as crossbeam's `CachePadded` on x86_64).
pub const CACHE_LINE: usize = 128;
/// Page granularity of the data areas.
pub const PAGE: usize = 4096;
/// Bytes of framing in front of every message in a ring: `len: u32`,
/// `reserved: u32` (must be 0).
pub const RECORD_HEADER: usize = 8;
/// Records start on multiples of this many bytes.
pub const RECORD_ALIGN: usize = 8;
/// Smallest ring capacity in bytes.
pub const MIN_CAPACITY: u32 = 64;
/// Largest ring capacity in bytes (indices are wrapping `u32` byte
/// counters, so the capacity must stay far below 2^32).
pub const MAX_CAPACITY: u32 = 1 << 30;
/// Largest bulk area in bytes.
pub const MAX_BULK: u64 = 1 << 32;

/// Sizes chosen by the daemon for one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Request ring (client -> daemon) capacity in bytes: a power of two in
    /// `MIN_CAPACITY..=MAX_CAPACITY`.
    pub request_capacity: u32,
    /// Response ring (daemon -> client) capacity in bytes, same rules.
    pub response_capacity: u32,
    /// Largest message payload in bytes, for both rings. A framed record
    /// (`RECORD_HEADER` + payload rounded up to 8) must fit in each ring.
    pub max_message: u32,
    /// Bulk data area in bytes (may be 0), at most `MAX_BULK`.
    pub bulk_len: u64,
}

impl Default for Config {
    /// 64 KiB rings, 8 KiB messages (a fixed header plus a `PATH_MAX` path),
    /// 4 MiB bulk.
    fn default() -> Self {
        Config {
            request_capacity: 64 << 10,
            response_capacity: 64 << 10,
            max_message: 8 << 10,
            bulk_len: 4 << 20,
        }
    }
}

/// Why a [`Config`] or a shared header was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A ring capacity is not a power of two in range.
    BadCapacity,
    /// `max_message` is 0 or its record does not fit in a ring.
    BadMaxMessage,
    /// The bulk area is larger than `MAX_BULK`.
    BadBulk,
    /// The header's magic number is wrong.
    BadMagic,
    /// The header's version is not `VERSION`.
    BadVersion,
    /// The header's offsets or sizes do not match the canonical layout, or
    /// the mapping is shorter than the region.
    BadHeader,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            LayoutError::BadCapacity => "ring capacity is not a power of two in range",
            LayoutError::BadMaxMessage => "max_message does not fit in a ring",
            LayoutError::BadBulk => "bulk area too large",
            LayoutError::BadMagic => "bad magic number",
            LayoutError::BadVersion => "unsupported layout version",
            LayoutError::BadHeader => "header offsets do not match the layout",
        };
        f.write_str(s)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LayoutError {}

/// One shared atomic word alone on its own 128-byte line.
#[repr(C, align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// Control block of one ring, in shared memory. Every word is on its own
/// line: `head` is written only by the producer, `tail` only by the
/// consumer, the doorbells only when someone goes to sleep, `closed` once.
/// So the hot path never bounces a line that the other side writes, except
/// the index it actually needs.
#[repr(C)]
pub(crate) struct RingCtl {
    /// Bytes ever published by the producer (wrapping).
    pub(crate) head: Padded<AtomicU32>,
    /// Bytes ever consumed by the consumer (wrapping).
    pub(crate) tail: Padded<AtomicU32>,
    /// Doorbell: the consumer sleeps here waiting for data.
    pub(crate) consumer_sleeping: Padded<AtomicU32>,
    /// Doorbell: the producer sleeps here waiting for space.
    pub(crate) producer_sleeping: Padded<AtomicU32>,
    /// `CLOSED_BY_PRODUCER | CLOSED_BY_CONSUMER` bits.
    pub(crate) closed: Padded<AtomicU32>,
    /// The CPU the producer last sent from, plus one (0: not known yet).
    /// Only a hint for the consumer's wait: spinning for a peer that needs
    /// the very CPU the spinner occupies only delays it (see
    /// `wait::block_on`). Written by the producer only when it changes.
    pub(crate) producer_cpu: Padded<AtomicU32>,
    /// Who decided the fate of the first message: 0 undecided,
    /// [`CLAIMED`] by the consumer (it will act on it), [`WITHDRAWN`] by
    /// the producer (it gave up waiting; the consumer must not act).
    pub(crate) claim: Padded<AtomicU32>,
}

/// `RingCtl::claim`: the consumer took the first message.
pub(crate) const CLAIMED: u32 = 1;
/// `RingCtl::claim`: the producer withdrew the first message.
pub(crate) const WITHDRAWN: u32 = 2;

/// `RingCtl::closed` bit set by the producer.
pub(crate) const CLOSED_BY_PRODUCER: u32 = 1;
/// `RingCtl::closed` bit set by the consumer.
pub(crate) const CLOSED_BY_CONSUMER: u32 = 2;

/// Where one ring lives, as stored in the header (offsets, never pointers).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingDesc {
    /// Offset of the ring's control block from the region start.
    pub ctl_off: u64,
    /// Offset of the ring's data bytes from the region start.
    pub data_off: u64,
    /// Data bytes (power of two).
    pub capacity: u32,
    /// Largest payload.
    pub max_message: u32,
}

/// The region header at offset 0, written once by the daemon before the fd
/// is handed out.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) header_size: u32,
    pub(crate) region_len: u64,
    pub(crate) request: RingDesc,
    pub(crate) response: RingDesc,
    pub(crate) bulk_off: u64,
    pub(crate) bulk_len: u64,
    pub(crate) creator_pid: i32,
    pub(crate) peer_pid: i32,
}

const fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

/// Bytes a record with a `len`-byte payload occupies in a ring.
#[inline]
pub const fn record_len(len: u32) -> u64 {
    RECORD_HEADER as u64 + round_up(len as u64, RECORD_ALIGN as u64)
}

/// The computed layout of a region: every offset, derived from a [`Config`].
///
/// ```text
/// 0            Header (repr(C): magic, version, sizes, offsets, pids)
/// 128          request RingCtl   (5 x 128 B: head | tail | c_sleep | p_sleep | closed)
/// 768          response RingCtl  (same)
/// 4096         request data      (request_capacity bytes)
/// page-aligned response data     (response_capacity bytes)
/// page-aligned bulk area         (bulk_len bytes)
/// page-aligned end = region_len
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionLayout {
    /// The request ring (client -> daemon).
    pub request: RingDesc,
    /// The response ring (daemon -> client).
    pub response: RingDesc,
    /// Offset of the bulk area.
    pub bulk_off: u64,
    /// Length of the bulk area.
    pub bulk_len: u64,
    /// Total bytes of the region (a multiple of the page size).
    pub region_len: u64,
}

impl RegionLayout {
    /// Checks `cfg` and computes the canonical layout.
    pub const fn new(cfg: &Config) -> Result<RegionLayout, LayoutError> {
        let caps = [cfg.request_capacity, cfg.response_capacity];
        let mut i = 0;
        while i < 2 {
            let c = caps[i];
            if !c.is_power_of_two() || c < MIN_CAPACITY || c > MAX_CAPACITY {
                return Err(LayoutError::BadCapacity);
            }
            if cfg.max_message == 0 || record_len(cfg.max_message) > c as u64 {
                return Err(LayoutError::BadMaxMessage);
            }
            i += 1;
        }
        if cfg.bulk_len > MAX_BULK {
            return Err(LayoutError::BadBulk);
        }
        let line = CACHE_LINE as u64;
        let page = PAGE as u64;
        let ctl_size = size_of::<RingCtl>() as u64;
        let req_ctl = round_up(size_of::<Header>() as u64, line);
        let resp_ctl = req_ctl + ctl_size;
        let req_data = round_up(resp_ctl + ctl_size, page);
        let resp_data = round_up(req_data + cfg.request_capacity as u64, page);
        let bulk_off = round_up(resp_data + cfg.response_capacity as u64, page);
        let region_len = round_up(bulk_off + cfg.bulk_len, page);
        Ok(RegionLayout {
            request: RingDesc {
                ctl_off: req_ctl,
                data_off: req_data,
                capacity: cfg.request_capacity,
                max_message: cfg.max_message,
            },
            response: RingDesc {
                ctl_off: resp_ctl,
                data_off: resp_data,
                capacity: cfg.response_capacity,
                max_message: cfg.max_message,
            },
            bulk_off,
            bulk_len: cfg.bulk_len,
            region_len,
        })
    }

    /// The [`Config`] this layout was computed from.
    pub const fn config(&self) -> Config {
        Config {
            request_capacity: self.request.capacity,
            response_capacity: self.response.capacity,
            max_message: self.request.max_message,
            bulk_len: self.bulk_len,
        }
    }

    pub(crate) fn header(&self, creator_pid: i32, peer_pid: i32) -> Header {
        Header {
            magic: MAGIC,
            version: VERSION,
            header_size: size_of::<Header>() as u32,
            region_len: self.region_len,
            request: self.request,
            response: self.response,
            bulk_off: self.bulk_off,
            bulk_len: self.bulk_len,
            creator_pid,
            peer_pid,
        }
    }

    /// Validates a header copied out of shared memory against a mapping of
    /// `mapped_len` bytes: magic, version, sizes in range, and offsets equal
    /// to the canonical layout for those sizes.
    pub(crate) fn validate(h: &Header, mapped_len: u64) -> Result<RegionLayout, LayoutError> {
        if h.magic != MAGIC {
            return Err(LayoutError::BadMagic);
        }
        if h.version != VERSION {
            return Err(LayoutError::BadVersion);
        }
        if h.header_size as usize != size_of::<Header>()
            || h.request.max_message != h.response.max_message
        {
            return Err(LayoutError::BadHeader);
        }
        let cfg = Config {
            request_capacity: h.request.capacity,
            response_capacity: h.response.capacity,
            max_message: h.request.max_message,
            bulk_len: h.bulk_len,
        };
        let l = RegionLayout::new(&cfg)?;
        if l.request != h.request
            || l.response != h.response
            || l.bulk_off != h.bulk_off
            || l.region_len != h.region_len
            || l.region_len > mapped_len
        {
            return Err(LayoutError::BadHeader);
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_structs_have_fixed_sizes() {
        assert_eq!(size_of::<Padded<AtomicU32>>(), 128);
        assert_eq!(size_of::<RingCtl>(), 7 * 128);
        assert!(size_of::<Header>() <= CACHE_LINE);
        assert_eq!(size_of::<RingDesc>(), 24);
    }

    #[test]
    fn default_layout_is_page_aligned_and_disjoint() {
        let l = RegionLayout::new(&Config::default()).unwrap();
        assert_eq!(l.request.ctl_off, 128);
        assert_eq!(l.response.ctl_off, 128 + 896);
        assert_eq!(l.request.data_off, 4096);
        assert_eq!(l.response.data_off, 4096 + (64 << 10));
        assert_eq!(l.bulk_off % 4096, 0);
        assert!(l.response.data_off >= l.request.data_off + 65536);
        assert!(l.bulk_off >= l.response.data_off + 65536);
        assert_eq!(l.region_len, l.bulk_off + (4 << 20));
        assert_eq!(l.config(), Config::default());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let ok = Config::default();
        let bad = |f: fn(&mut Config)| {
            let mut c = ok;
            f(&mut c);
            RegionLayout::new(&c)
        };
        assert_eq!(
            bad(|c| c.request_capacity = 1000),
            Err(LayoutError::BadCapacity)
        );
        assert_eq!(
            bad(|c| c.response_capacity = 32),
            Err(LayoutError::BadCapacity)
        );
        assert_eq!(
            bad(|c| c.request_capacity = 1 << 31),
            Err(LayoutError::BadCapacity)
        );
        assert_eq!(bad(|c| c.max_message = 0), Err(LayoutError::BadMaxMessage));
        assert_eq!(
            bad(|c| c.max_message = 65536 - 7),
            Err(LayoutError::BadMaxMessage)
        );
        assert!(bad(|c| c.max_message = 65536 - 8).is_ok());
        assert_eq!(
            bad(|c| c.bulk_len = MAX_BULK + 1),
            Err(LayoutError::BadBulk)
        );
    }

    #[test]
    fn header_validation_requires_the_canonical_layout() {
        let l = RegionLayout::new(&Config::default()).unwrap();
        let h = l.header(1, 2);
        assert_eq!(RegionLayout::validate(&h, l.region_len), Ok(l));
        assert_eq!(
            RegionLayout::validate(&h, l.region_len - 1),
            Err(LayoutError::BadHeader)
        );
        let mut x = h;
        x.magic ^= 1;
        assert_eq!(
            RegionLayout::validate(&x, u64::MAX),
            Err(LayoutError::BadMagic)
        );
        let mut x = h;
        x.version = 9;
        assert_eq!(
            RegionLayout::validate(&x, u64::MAX),
            Err(LayoutError::BadVersion)
        );
        let mut x = h;
        x.bulk_off += 4096;
        assert_eq!(
            RegionLayout::validate(&x, u64::MAX),
            Err(LayoutError::BadHeader)
        );
        let mut x = h;
        x.response.data_off = x.request.data_off;
        assert_eq!(
            RegionLayout::validate(&x, u64::MAX),
            Err(LayoutError::BadHeader)
        );
        let mut x = h;
        x.request.capacity = 3;
        assert_eq!(
            RegionLayout::validate(&x, u64::MAX),
            Err(LayoutError::BadCapacity)
        );
    }

    #[test]
    fn record_lengths_round_to_eight() {
        assert_eq!(record_len(0), 8);
        assert_eq!(record_len(1), 16);
        assert_eq!(record_len(8), 16);
        assert_eq!(record_len(9), 24);
        assert_eq!(record_len(u32::MAX), 8 + (1u64 << 32));
    }
}
