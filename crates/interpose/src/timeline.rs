//! The start-up timeline `BTFUSE_DEBUG` prints at exit: when the library's
//! steps of a short-lived process happened (discovery, channel, connect,
//! first reply, exit), in µs from the library's first call, so that the
//! cost a preloaded process pays above the program's own can be read off
//! one run (`BTFUSE_DEBUG=1 cat FILE`). Without `BTFUSE_DEBUG` a mark is
//! one relaxed load.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::sys;

/// The steps marked, in the order a process usually reaches them.
#[derive(Clone, Copy)]
pub(crate) enum Mark {
    /// The library's first call starts its initialisation.
    Init,
    /// The mount table is built (registry or mountinfo read).
    Discovered,
    /// The first channel is made (memfd, mapping, socket).
    ChannelMade,
    /// Connected and the hello with the channel sent.
    Connected,
    /// The first reply arrived.
    FirstReply,
    /// The library's exit handler starts.
    ExitBegin,
    /// The library's exit handler is done.
    ExitEnd,
}

const NAMES: [&[u8]; 7] = [
    b"init",
    b"discovered",
    b"channel made",
    b"connected+hello",
    b"first reply",
    b"exit begin",
    b"exit end",
];

#[link_section = ".data.btfuse_hot"]
static AT: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

/// Records the first time `m` is reached (only with `BTFUSE_DEBUG`).
pub(crate) fn mark(m: Mark) {
    if sys::debug_enabled() {
        let _ = AT[m as usize].compare_exchange(
            0,
            sys::monotonic_ns(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

/// Prints the marks reached, in µs (one decimal) after [`Mark::Init`].
pub(crate) fn print() {
    let t0 = AT[Mark::Init as usize].load(Ordering::Relaxed);
    if !sys::debug_enabled() || t0 == 0 {
        return;
    }
    for (at, name) in AT.iter().zip(NAMES) {
        let t = at.load(Ordering::Relaxed);
        if t == 0 {
            continue;
        }
        let tenths = t.saturating_sub(t0) / 100;
        let mut num = [0u8; 24];
        let n = proto::write_decimal(tenths / 10, &mut num);
        num[n] = b'.';
        num[n + 1] = b'0' + (tenths % 10) as u8;
        sys::debug(&[b"btfuse: timeline +", &num[..n + 2], b" us ", name]);
    }
}
