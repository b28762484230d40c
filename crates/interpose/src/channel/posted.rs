//! Requests sent without waiting for their answer ([`Chan::post`]): a
//! `close` of a fast-path file costs its process no round trip, and a
//! walk's next directory is listed ahead (`ahead`, whose answer is kept). The daemon
//! serves a channel's requests in order, so the next request on the same
//! channel runs after it; that request's caller first reads the answers
//! still owed (`settle`), and a call that takes another channel settles
//! the channels that owe answers first ([`settle_others`]), so a later
//! call of the process always sees the effect of an earlier posted one.

use super::*;

/// Most answers a channel may owe: past it, the next post waits for them
/// first, so unread answers never fill the response ring (a daemon blocked
/// on a full ring, with a client blocked on a full request ring, would
/// never make progress).
pub(super) const MAX_OWED: u32 = 64;

impl Chan {
    /// Sends `args` and returns without waiting for the daemon's answer,
    /// for a caller that ignores it (it can only be "done" or an error).
    /// A channel the daemon has not answered yet makes it a round trip
    /// instead (its first request must be answered: see `call`), and so
    /// does another thread's call in progress (see [`others_busy`]).
    pub(crate) fn post<O: Operation<Reply = ops::Done>>(
        &mut self,
        args: &O,
    ) -> Result<(), ChanError> {
        if !self.live() {
            return Err(ChanError::Lost);
        }
        if !self.conn().confirmed || others_busy(self.mount, self.slot) {
            let mut reply = [0u8; REPLY_BUF];
            return match self.call(args, b"", b"", &mut reply) {
                Err(CallError::Chan(e)) => Err(e),
                _ => Ok(()),
            };
        }
        if self.slot.owed.load(Ordering::Relaxed) >= MAX_OWED {
            self.settle(0)?;
        }
        self.send_posted(args, b"").map(drop).ok_or(ChanError::Lost)
    }

    /// Sends `args` with `path` as a request whose answer is owed (read by
    /// [`Chan::settle`]); its number, `None` if the channel failed.
    pub(super) fn send_posted<O: Operation>(&mut self, args: &O, path: &[u8]) -> Option<u32> {
        let conn = self.conn();
        conn.seq = conn.seq.wrapping_add(1);
        let head = RequestHeader {
            op: O::OP as u32,
            seq: conn.seq,
            path_len: path.len() as u32,
            path2_len: 0,
        };
        let mut alive = DaemonAlive {
            sock: conn.sock,
            pid: conn.daemon_pid,
        };
        let parts = [proto::bytes_of(&head), proto::bytes_of(args), path];
        if conn.end.requests.send(&parts, &mut alive).is_err() {
            self.kill();
            return None;
        }
        let seq = conn.seq;
        self.slot.owed.fetch_add(1, Ordering::Relaxed);
        Some(seq)
    }

    /// Reads the answers this channel owes (see the module comment), when
    /// `sent_since` requests went out after the owed ones; a missing or
    /// malformed one kills the channel.
    pub(super) fn settle(&mut self, sent_since: u32) -> Result<(), ChanError> {
        let owed = self.slot.owed.load(Ordering::Relaxed);
        if owed == 0 {
            return Ok(());
        }
        let conn = self.conn();
        let mut alive = DaemonAlive {
            sock: conn.sock,
            pid: conn.daemon_pid,
        };
        // Room for the largest answer owed: a listing ahead's (see `ahead`).
        let mut reply = [0u8; size_of::<ReplyHeader>() + size_of::<ops::OpenListOut>()];
        let first = conn.seq.wrapping_sub(sent_since + owed - 1);
        let ahead_seq = conn.ahead.pending_seq();
        let mut ok = true;
        for i in 0..owed {
            let got = conn.end.responses.recv(&mut reply[..], &mut alive);
            let seq = first.wrapping_add(i);
            ok = matches!(got, Ok(n) if proto::decode::<ReplyHeader>(&reply[..n]).is_some_and(|h| h.seq == seq));
            if !ok {
                break;
            }
            if ahead_seq == Some(seq) {
                let out = got
                    .ok()
                    .and_then(|n| ops::decode_reply::<ops::OpenList>(&reply[..n], seq).ok())
                    .map(|(o, _)| o);
                conn.ahead.answered(out, sent_since == 0);
            }
        }
        // Release: the answers read above happen before a waiting
        // `settle_others` sees the channel settled.
        self.slot.owed.store(0, Ordering::Release);
        if ok {
            Ok(())
        } else {
            sys::debug(&[b"btfuse: answer of a posted request lost"]);
            self.kill();
            Err(ChanError::Lost)
        }
    }
}

/// Whether a thread other than the caller holds a channel of `mount`
/// (the caller holds `ours`). Every call that starts while a channel owes
/// answers waits for them ([`settle_others`]), and one held by a thread in
/// the middle of a call settles only when that call ends: in a process
/// whose threads make calls at the same time (`git status` lstats and
/// reads with up to 20 threads), posting cost the other threads far more
/// than the round trip it saved (63% of the process's time in
/// `sched_yield`, measured), so a post is then a plain call.
pub(super) fn others_busy(mount: usize, ours: &Slot) -> bool {
    slots_in(&state::MOUNTS[mount]).is_some_and(|all| {
        all.slots
            .iter()
            .any(|s| !core::ptr::eq(s, ours) && s.lock.load(Ordering::Relaxed) != 0)
    })
}

/// Settles the channels of `mount` other than `ours` that owe answers:
/// one nobody is using is settled here; one in use is settled by its
/// holder's call, which is waited for (its answers prove the daemon ran
/// the posted requests before the caller's call can start). That wait is
/// bounded by [`SETTLE_WAIT_NS`]: the holder may be a call the caller
/// itself interrupted (a signal handler's call), which cannot go on
/// before the handler returns.
pub(super) fn settle_others(mount: usize, ours: &Slot) {
    let Some(all) = slots_in(&state::MOUNTS[mount]) else {
        return;
    };
    for s in &all.slots {
        if core::ptr::eq(s, ours) {
            continue;
        }
        let mut since = None;
        // Acquire: pairs with the Release store of 0 in `settle`.
        while s.owed.load(Ordering::Acquire) != 0 {
            if let Some(mut chan) = take(mount, s) {
                if s.live.load(Ordering::Acquire) {
                    let _ = chan.settle(0);
                }
                break;
            }
            let now = sys::monotonic_ns();
            if now >= *since.get_or_insert(now) + SETTLE_WAIT_NS {
                break;
            }
            let _ = sys::sc!(libc::SYS_sched_yield);
        }
    }
}

/// Longest wait for another thread's call to settle its channel (see
/// [`settle_others`]).
const SETTLE_WAIT_NS: u64 = 100_000_000;
