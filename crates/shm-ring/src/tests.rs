//! In-process unit tests: both ends map the same memfd twice (two virtual
//! addresses, as in two processes), and run in one or two threads.

extern crate std;

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use std::vec;
use std::vec::Vec;

use crate::layout::{Header, RingCtl};
use crate::*;

fn cfg(cap: u32, max: u32) -> Config {
    Config {
        request_capacity: cap,
        response_capacity: cap,
        max_message: max,
        bulk_len: 64 << 10,
    }
}

fn pair(c: &Config) -> (Region, Region) {
    let d = Region::create(c, 0).expect("create");
    let cl = Region::attach_fd(d.fd().unwrap()).expect("attach");
    (d, cl)
}

fn ctl(r: &Region, request: bool) -> &RingCtl {
    let d = if request {
        r.layout().request
    } else {
        r.layout().response
    };
    // SAFETY: ctl_off is inside the mapping (validated layout).
    unsafe { &*r.as_ptr().add(d.ctl_off as usize).cast::<RingCtl>() }
}

fn word_at(r: &Region, off: u64) -> &AtomicU32 {
    // SAFETY: callers pass 4-aligned offsets inside the mapping.
    unsafe { &*r.as_ptr().add(off as usize).cast::<AtomicU32>() }
}

fn pattern(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

const NO_WAIT: WaitPolicy = WaitPolicy {
    spin_ns: 0,
    yield_ns: 0,
    sleep_slice_ns: 1_000_000,
    timeout_ns: Some(0),
};

#[test]
fn messages_round_trip_in_order() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    let mut buf = [0u8; 100];
    for i in 0..10u8 {
        ce.requests.try_send(&[&[i; 7]]).unwrap();
    }
    for i in 0..10u8 {
        assert_eq!(de.requests.try_recv(&mut buf), Ok(7));
        assert_eq!(&buf[..7], &[i; 7]);
    }
    assert_eq!(de.requests.try_recv(&mut buf), Err(TryRecvError::Empty));
    de.responses.try_send(&[b"pong"]).unwrap();
    assert_eq!(ce.responses.try_recv(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"pong");
}

#[test]
fn gathered_parts_arrive_as_one_message() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    ce.requests
        .try_send(&[b"hdr:", b"", b"/mnt/x/file", b"!"])
        .unwrap();
    let mut buf = [0u8; 64];
    let n = de.requests.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hdr:/mnt/x/file!");
}

#[test]
fn empty_message_is_a_message() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    ce.requests.try_send(&[]).unwrap();
    assert_eq!(de.requests.try_recv(&mut []), Ok(0));
    assert_eq!(de.requests.try_recv(&mut []), Err(TryRecvError::Empty));
}

#[test]
fn wrap_around_preserves_every_byte() {
    // 128-byte ring: records of 8..=120 bytes wrap constantly, at every
    // offset, including payloads split across the end.
    let (d, c) = pair(&cfg(128, 112));
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    let mut buf = [0u8; 112];
    let mut x: u32 = 12345;
    for seq in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = (x % 113) as usize;
        let msg = pattern(seq, len);
        let (a, b) = msg.split_at(len / 3);
        ce.requests.try_send(&[a, b]).unwrap();
        assert_eq!(de.requests.try_recv(&mut buf), Ok(len), "seq {seq}");
        assert_eq!(&buf[..len], &msg[..]);
    }
}

#[test]
fn indices_wrap_past_u32_max() {
    let (d, c) = pair(&cfg(256, 64));
    // Start both indices just below 2^32 (as after 4 GiB of traffic).
    let start = 0u32.wrapping_sub(264);
    for rq in [true, false] {
        ctl(&d, rq).head.0.store(start, Ordering::Relaxed);
        ctl(&d, rq).tail.0.store(start, Ordering::Relaxed);
    }
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    let mut buf = [0u8; 64];
    for seq in 0..1000u32 {
        let msg = pattern(seq, (seq % 65) as usize);
        ce.requests.try_send(&[&msg]).unwrap();
        assert_eq!(de.requests.try_recv(&mut buf), Ok(msg.len()));
        assert_eq!(&buf[..msg.len()], &msg[..]);
    }
    assert!(ctl(&d, true).head.0.load(Ordering::Relaxed) < start);
}

#[test]
fn too_large_message_is_rejected() {
    let (d, c) = pair(&cfg(4096, 1000));
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    let big = vec![1u8; 1001];
    assert_eq!(
        ce.requests.try_send(&[&big]),
        Err(TrySendError::TooLarge {
            len: 1001,
            max: 1000
        })
    );
    assert_eq!(
        ce.requests
            .send(&[&big[..500], &big[..501]], &mut AssumeAlive),
        Err(SendError::TooLarge {
            len: 1001,
            max: 1000
        })
    );
    ce.requests.try_send(&[&big[..1000]]).unwrap();
    let mut buf = vec![0u8; 1000];
    assert_eq!(de.requests.try_recv(&mut buf), Ok(1000));
}

#[test]
fn full_ring_reports_full_then_accepts_after_drain() {
    let (d, c) = pair(&cfg(256, 64));
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    // Each 24-byte message is a 32-byte record: exactly 8 fit.
    for i in 0..8u8 {
        ce.requests.try_send(&[&[i; 24]]).unwrap();
    }
    assert_eq!(ce.requests.try_send(&[&[9; 24]]), Err(TrySendError::Full));
    assert_eq!(ce.requests.try_send(&[]), Err(TrySendError::Full));
    ce.requests.set_policy(NO_WAIT.with_timeout_ns(5_000_000));
    assert_eq!(
        ce.requests.send(&[&[9; 24]], &mut AssumeAlive),
        Err(SendError::TimedOut)
    );
    let mut buf = [0u8; 64];
    assert_eq!(de.requests.try_recv(&mut buf), Ok(24));
    ce.requests.try_send(&[&[8; 24]]).unwrap();
    for i in 1..9u8 {
        assert_eq!(de.requests.try_recv(&mut buf), Ok(24));
        assert_eq!(buf[0], i);
    }
}

#[test]
fn blocking_send_waits_for_space_and_never_drops() {
    let (d, c) = pair(&cfg(256, 64));
    const N: u32 = 20_000;
    thread::scope(|s| {
        let mut ce = c.client().unwrap();
        let mut de = d.daemon().unwrap();
        s.spawn(move || {
            ce.requests.set_policy(WaitPolicy::spinning(2_000));
            for seq in 0..N {
                let msg = pattern(seq, (seq % 60) as usize + 4);
                ce.requests
                    .send(&[&seq.to_le_bytes(), &msg[4..]], &mut AssumeAlive)
                    .unwrap();
            }
        });
        let mut buf = [0u8; 64];
        de.requests.set_policy(WaitPolicy::spinning(2_000));
        for seq in 0..N {
            if seq % 1000 == 0 {
                // Let the producer hit a full ring and go to sleep.
                thread::sleep(Duration::from_millis(2));
            }
            let n = de.requests.recv(&mut buf, &mut AssumeAlive).unwrap();
            assert_eq!(n, (seq % 60) as usize + 4);
            assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), seq);
            assert_eq!(&buf[4..n], &pattern(seq, n)[4..]);
        }
    });
}

#[test]
fn small_buffer_leaves_the_message_queued() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    ce.requests.try_send(&[b"0123456789"]).unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        de.requests.try_recv(&mut small),
        Err(TryRecvError::BufferTooSmall { needed: 10 })
    );
    let mut big = [0u8; 10];
    assert_eq!(de.requests.try_recv(&mut big), Ok(10));
}

#[test]
fn producer_close_is_seen_after_draining() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    ce.requests.try_send(&[b"last"]).unwrap();
    ce.requests.close();
    assert_eq!(ce.requests.try_send(&[b"x"]), Err(TrySendError::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(de.requests.try_recv(&mut buf), Ok(4));
    assert_eq!(de.requests.try_recv(&mut buf), Err(TryRecvError::Closed));
    assert_eq!(
        de.requests.recv(&mut buf, &mut AssumeAlive),
        Err(RecvError::Closed)
    );
}

#[test]
fn consumer_close_fails_sends_and_wakes_a_blocked_producer() {
    let (d, c) = pair(&cfg(128, 64));
    thread::scope(|s| {
        let mut de = d.daemon().unwrap();
        let mut ce = c.client().unwrap();
        let h = s.spawn(move || {
            ce.requests.set_policy(WaitPolicy::SLEEP);
            loop {
                match ce.requests.send(&[&[0; 56]], &mut AssumeAlive) {
                    Ok(()) => continue,
                    Err(e) => return e,
                }
            }
        });
        thread::sleep(Duration::from_millis(50));
        de.requests.close();
        let t = Instant::now();
        assert_eq!(h.join().unwrap(), SendError::Closed);
        assert!(t.elapsed() < Duration::from_millis(90), "woken by close");
    });
}

#[test]
fn drop_of_a_half_closes_its_ring() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let ce = c.client().unwrap();
    drop(ce);
    let mut buf = [0u8; 8];
    assert_eq!(de.requests.try_recv(&mut buf), Err(TryRecvError::Closed));
    assert_eq!(de.responses.try_send(&[b"x"]), Err(TrySendError::Closed));
}

#[test]
fn close_wakes_a_sleeping_consumer() {
    let (d, c) = pair(&Config::default());
    thread::scope(|s| {
        let mut de = d.daemon().unwrap();
        let mut ce = c.client().unwrap();
        let h = s.spawn(move || {
            de.requests.set_policy(WaitPolicy::SLEEP);
            let t = Instant::now();
            let r = de.requests.recv(&mut [0u8; 8], &mut AssumeAlive);
            (r, t.elapsed())
        });
        thread::sleep(Duration::from_millis(30));
        ce.requests.close();
        let (r, el) = h.join().unwrap();
        assert_eq!(r, Err(RecvError::Closed));
        assert!(el < Duration::from_millis(90), "{el:?}");
    });
}

#[test]
fn recv_times_out_without_a_message() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let _ce = c.client().unwrap();
    de.requests
        .set_policy(WaitPolicy::spinning(10_000).with_timeout_ns(50_000_000));
    let t = Instant::now();
    assert_eq!(
        de.requests.recv(&mut [0u8; 8], &mut AssumeAlive),
        Err(RecvError::TimedOut)
    );
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(50) && el < Duration::from_millis(500),
        "{el:?}"
    );
}

#[test]
fn dead_peer_is_reported_after_one_idle_slice() {
    let (d, c) = pair(&Config::default());
    let mut de = d.daemon().unwrap();
    let _ce = c.client().unwrap();
    de.requests
        .set_policy(WaitPolicy::SLEEP.with_sleep_slice_ns(20_000_000));
    let checks = AtomicUsize::new(0);
    let mut peer = || checks.fetch_add(1, Ordering::Relaxed) < 2;
    let t = Instant::now();
    assert_eq!(
        de.requests.recv(&mut [0u8; 8], &mut peer),
        Err(RecvError::PeerDead)
    );
    assert_eq!(checks.load(Ordering::Relaxed), 3);
    assert!(t.elapsed() >= Duration::from_millis(60));
    // A dead process found through a pid.
    assert!(!PidAlive(i32::MAX - 1).is_alive());
    assert!(PidAlive(std::process::id() as i32).is_alive());
    let mut me = Pidfd::open(std::process::id() as i32).unwrap();
    assert!(me.is_alive());
}

#[test]
fn sleep_mode_ping_pong_never_loses_a_wakeup() {
    // Both sides sleep at once (no spinning), with a 2 s slice: a lost
    // wakeup would stall one side until the slice ends and call the
    // liveness hook, which fails the test.
    let (d, c) = pair(&Config::default());
    let n = if cfg!(debug_assertions) {
        5_000
    } else {
        30_000
    };
    let policy = WaitPolicy::SLEEP.with_sleep_slice_ns(2_000_000_000);
    thread::scope(|s| {
        let mut de = d.daemon().unwrap();
        let mut ce = c.client().unwrap();
        s.spawn(move || {
            de.requests.set_policy(policy);
            de.responses.set_policy(policy);
            let mut stalled = || panic!("daemon: a wakeup was lost");
            let mut buf = [0u8; 64];
            for _ in 0..n {
                let k = de.requests.recv(&mut buf, &mut stalled).unwrap();
                de.responses.send(&[&buf[..k]], &mut stalled).unwrap();
            }
        });
        ce.requests.set_policy(policy);
        ce.responses.set_policy(policy);
        let mut stalled = || panic!("client: a wakeup was lost");
        let mut buf = [0u8; 64];
        for i in 0..n as u32 {
            ce.requests.send(&[&i.to_le_bytes()], &mut stalled).unwrap();
            assert_eq!(ce.responses.recv(&mut buf, &mut stalled), Ok(4));
            assert_eq!(buf[..4], i.to_le_bytes());
        }
    });
}

#[test]
fn region_is_split_only_once() {
    let (d, _c) = pair(&Config::default());
    assert!(d.daemon().is_some());
    assert!(d.daemon().is_none());
    assert!(d.client().is_none());
}

#[test]
fn memfd_is_sealed_against_resizing() {
    let (d, _c) = pair(&Config::default());
    let fd = d.fd().unwrap();
    // SAFETY: plain syscalls on our own fd.
    unsafe {
        assert_eq!(libc::ftruncate(fd, 4096), -1);
        assert_eq!(libc::ftruncate(fd, d.len() as i64 * 2), -1);
        let seals = libc::fcntl(fd, libc::F_GET_SEALS);
        assert_eq!(
            seals,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL
        );
    }
}

#[test]
fn attach_rejects_bad_headers_and_unsealed_fds() {
    let d = Region::create(&Config::default(), 42).unwrap();
    assert_eq!(d.peer_pid(), 42);
    assert_eq!(d.creator_pid(), std::process::id() as i32);
    let c = Region::attach_fd(d.fd().unwrap()).unwrap();
    assert_eq!(c.layout(), d.layout());
    assert_eq!(c.creator_pid(), d.creator_pid());
    drop(c);
    // Corrupt each header field in turn: always an error, never a mapping
    // that reaches outside the region.
    let h = d.as_ptr().cast::<Header>();
    // SAFETY: the header is at offset 0 of our mapping; single-threaded.
    let orig = unsafe { h.read() };
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for i in 0..2000 {
        x ^= x << 7;
        x ^= x >> 9;
        let mut bytes: [u8; core::mem::size_of::<Header>()] =
            // SAFETY: Header is plain data.
            unsafe { core::mem::transmute(orig) };
        let at = (x as usize) % bytes.len();
        bytes[at] ^= (x >> 32) as u8 | 1;
        // SAFETY: writing our own header, no other user.
        unsafe {
            h.cast::<[u8; core::mem::size_of::<Header>()]>()
                .write(bytes)
        };
        match Region::attach_fd(d.fd().unwrap()) {
            Err(RegionError::Layout(_)) => {}
            Ok(c) => {
                // Only harmless bytes (pids) may change without error.
                assert_eq!(c.layout(), d.layout(), "iteration {i}");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    // SAFETY: restore.
    unsafe { h.write(orig) };
    // An unsealed memfd is refused.
    // SAFETY: plain syscalls.
    let fd = unsafe { libc::memfd_create(c"x".as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: plain syscall on our fd.
    unsafe { libc::ftruncate(fd, d.len() as i64) };
    assert_eq!(Region::attach_fd(fd).err(), Some(RegionError::NotSealed));
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
}

#[test]
fn the_first_message_is_either_claimed_or_withdrawn_never_both() {
    // Claimed first: the producer can no longer withdraw.
    let (d, c) = pair(&cfg(4096, 256));
    let de = d.daemon().unwrap();
    let ce = c.client().unwrap();
    assert!(de.requests.claim());
    assert!(de.requests.claim(), "claiming twice is fine");
    assert!(!ce.requests.withdraw());
    // Withdrawn first: the consumer must not act.
    let (d, c) = pair(&cfg(4096, 256));
    let de = d.daemon().unwrap();
    let ce = c.client().unwrap();
    assert!(ce.requests.withdraw());
    assert!(ce.requests.withdraw());
    assert!(!de.requests.claim());
    // Racing: exactly one side wins, every time.
    for _ in 0..2000 {
        let (d, c) = pair(&cfg(4096, 256));
        let ce = c.client().unwrap();
        let (a, b) = thread::scope(|s| {
            let t = s.spawn(move || d.daemon().unwrap().requests.claim());
            let w = ce.requests.withdraw();
            (t.join().unwrap(), w)
        });
        assert!(a != b, "claimed {a}, withdrawn {b}");
    }
}

#[test]
fn adopting_a_peer_made_channel_insists_on_the_expected_shape() {
    let want = cfg(4096, 256);
    // The peer (a client) creates; we adopt it, and the two ends talk.
    let c = Region::create(&want, 0).unwrap();
    let d = Region::attach_fd_expecting(c.fd().unwrap(), &want).expect("adopt");
    assert_eq!(d.layout(), c.layout());
    let mut ce = c.client().unwrap();
    let mut de = d.daemon().unwrap();
    ce.requests.try_send(&[b"first"]).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(de.requests.try_recv(&mut buf), Ok(5));
    // Another shape (a different size or a header for other sizes) is
    // refused even though it is a valid channel of its own.
    let other = Region::create(&cfg(8192, 256), 0).unwrap();
    assert_eq!(
        Region::attach_fd_expecting(other.fd().unwrap(), &want).err(),
        Some(RegionError::Layout(LayoutError::BadHeader))
    );
    let same_size = cfg(4096, 128);
    let odd = Region::create(&same_size, 0).unwrap();
    assert_eq!(odd.len(), c.len());
    assert_eq!(
        Region::attach_fd_expecting(odd.fd().unwrap(), &want).err(),
        Some(RegionError::Layout(LayoutError::BadHeader))
    );
    // A memfd without F_SEAL_SEAL could still be resealed under us.
    // SAFETY: plain syscalls on a memfd we own.
    let fd = unsafe {
        let fd = libc::memfd_create(c"x".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
        libc::ftruncate(fd, c.len() as i64);
        libc::fcntl(
            fd,
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
        );
        fd
    };
    assert_eq!(
        Region::attach_fd_expecting(fd, &want).err(),
        Some(RegionError::NotSealed)
    );
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    // Not a memfd at all (a pipe has no seals).
    let mut p = [0i32; 2];
    // SAFETY: `p` has room for two fds.
    unsafe { libc::pipe(p.as_mut_ptr()) };
    assert!(Region::attach_fd_expecting(p[0], &want).is_err());
    for f in p {
        // SAFETY: our fd.
        unsafe { libc::close(f) };
    }
}

#[test]
fn bulk_copies_are_bounds_checked() {
    let (d, c) = pair(&cfg(4096, 256));
    let de = d.daemon().unwrap();
    let mut ce = c.client().unwrap();
    assert_eq!(ce.bulk.len(), 64 << 10);
    ce.bulk.write(100, b"payload").unwrap();
    let mut out = [0u8; 7];
    de.bulk.read(100, &mut out).unwrap();
    assert_eq!(&out, b"payload");
    let len = ce.bulk.len();
    assert!(ce.bulk.write(len - 3, b"four").is_err());
    assert!(ce.bulk.write(usize::MAX, b"x").is_err());
    assert_eq!(
        de.bulk.read(len, &mut [0u8; 1]),
        Err(OutOfBounds {
            offset: len,
            len: 1,
            bulk_len: len
        })
    );
    ce.bulk.write(len - 4, b"four").unwrap();
}

#[test]
fn wait_any_wakes_on_whichever_channel_gets_a_message() {
    let mut regions: Vec<(Region, Region)> = (0..8).map(|_| pair(&cfg(4096, 256))).collect();
    let (ds, cs): (Vec<_>, Vec<_>) = regions.iter_mut().map(|(d, c)| (d, c)).unzip();
    let mut daemons: Vec<DaemonEnd<'_>> = ds.into_iter().map(|d| d.daemon().unwrap()).collect();
    let mut clients: Vec<ClientEnd<'_>> = cs.into_iter().map(|c| c.client().unwrap()).collect();
    // Nothing pending: times out.
    {
        let refs: Vec<&Consumer<'_>> = daemons.iter().map(|d| &d.requests).collect();
        let t = Instant::now();
        assert_eq!(wait_any(&refs, 20_000_000), Ok(WaitAny::TimedOut));
        assert!(t.elapsed() >= Duration::from_millis(20));
    }
    thread::scope(|s| {
        let h = s.spawn(move || {
            for (i, c) in clients.iter_mut().enumerate().rev() {
                thread::sleep(Duration::from_millis(5));
                c.requests.try_send(&[&[i as u8]]).unwrap();
            }
        });
        let mut seen = Vec::new();
        while seen.len() < 8 {
            let refs: Vec<&Consumer<'_>> = daemons.iter().map(|d| &d.requests).collect();
            assert_eq!(wait_any(&refs, 2_000_000_000), Ok(WaitAny::Ready));
            for (i, d) in daemons.iter_mut().enumerate() {
                let mut b = [0u8; 4];
                if let Ok(1) = d.requests.try_recv(&mut b) {
                    assert_eq!(b[0] as usize, i);
                    seen.push(i);
                }
            }
        }
        assert_eq!(seen, (0..8).rev().collect::<Vec<_>>());
        h.join().unwrap();
    });
    let too_many: Vec<&Consumer<'_>> = (0..=MAX_WAIT_ANY).map(|_| &daemons[0].requests).collect();
    assert_eq!(wait_any(&too_many, 0), Err(Errno(libc::EINVAL)));
}

/// Sets one shared word, then expects the daemon's next receive to fail
/// with Corrupt and stay dead.
fn corrupt_request_ring(poke: impl FnOnce(&Region, &Region)) {
    let (d, c) = pair(&cfg(256, 64));
    {
        let mut ce = c.client().unwrap();
        ce.requests.try_send(&[b"good"]).unwrap();
        core::mem::forget(ce); // keep the ring open
    }
    poke(&d, &c);
    let mut de = d.daemon().unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(de.requests.try_recv(&mut buf), Err(TryRecvError::Corrupt));
    assert_eq!(de.requests.try_recv(&mut buf), Err(TryRecvError::Corrupt));
    assert_eq!(
        de.requests.recv(&mut buf, &mut AssumeAlive),
        Err(RecvError::Corrupt)
    );
    // The peer sees the ring closed.
    assert_ne!(ctl(&d, true).closed.0.load(Ordering::Relaxed), 0);
}

#[test]
fn corrupt_indices_and_lengths_are_detected() {
    let req = |r: &Region| r.layout().request;
    // Head more than a capacity ahead.
    corrupt_request_ring(|_, c| ctl(c, true).head.0.store(1024, Ordering::Relaxed));
    // Head not on a record boundary.
    corrupt_request_ring(|_, c| ctl(c, true).head.0.store(20, Ordering::Relaxed));
    // Length above max_message.
    corrupt_request_ring(|_, c| word_at(c, req(c).data_off).store(65, Ordering::Relaxed));
    // Record extending past the head.
    corrupt_request_ring(|_, c| word_at(c, req(c).data_off).store(20, Ordering::Relaxed));
    // Reserved word not zero.
    corrupt_request_ring(|_, c| word_at(c, req(c).data_off + 4).store(1, Ordering::Relaxed));
    // Tail moved behind the daemon's back (unaligned).
    corrupt_request_ring(|_, c| ctl(c, true).tail.0.store(3, Ordering::Relaxed));
}

#[test]
fn producer_detects_a_tail_moving_backwards_or_past_head() {
    let (d, c) = pair(&cfg(128, 64));
    let mut de = d.daemon().unwrap();
    let _ce = c.client().unwrap();
    for _ in 0..2 {
        de.responses.try_send(&[&[0; 56]]).unwrap();
    }
    // Full now; a hostile client claims it consumed 1 KiB.
    ctl(&c, false).tail.0.store(1024, Ordering::Relaxed);
    assert_eq!(
        de.responses.try_send(&[&[0; 56]]),
        Err(TrySendError::Corrupt)
    );
    assert_eq!(de.responses.try_send(&[]), Err(TrySendError::Corrupt));
}

#[test]
fn hostile_scribbles_only_ever_give_messages_or_errors() {
    // Single-threaded property test: random writes over the header, the
    // control blocks and the data, then receives. Every result must be a
    // well-formed message or an error; the daemon never panics or reads
    // out of bounds (ASan-free check: any OOB would hit unmapped pages or
    // be caught by the length assertions).
    let iters = if cfg!(debug_assertions) {
        3_000
    } else {
        30_000
    };
    let mut x: u64 = 0xDEADBEEFCAFEF00D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut corrupt = 0;
    let mut ok = 0;
    for _ in 0..iters / 100 {
        let (d, c) = pair(&cfg(256, 64));
        let mut de = d.daemon().unwrap();
        let mut ce = c.client().unwrap();
        de.requests.set_policy(NO_WAIT);
        de.responses.set_policy(NO_WAIT);
        let hot = [
            0u64,
            c.layout().request.ctl_off,
            c.layout().request.ctl_off + 128,
            c.layout().request.ctl_off + 512,
            c.layout().request.data_off,
            c.layout().response.ctl_off + 128,
        ];
        for _ in 0..100 {
            let r = next();
            // Honest traffic interleaved with scribbles.
            if r % 3 == 0 {
                let len = (r >> 8) as usize % 65;
                let _ = ce.requests.try_send(&[&vec![7u8; len]]);
            }
            let base = hot[(r >> 16) as usize % hot.len()];
            let off = if r % 5 == 0 {
                (r >> 24) % c.layout().region_len.min(8192)
            } else {
                base + (r >> 24) % 264
            } & !3;
            word_at(&c, off).store((next() >> (r % 32)) as u32, Ordering::Relaxed);
            let mut buf = [0u8; 64];
            match de.requests.try_recv(&mut buf) {
                Ok(n) => {
                    assert!(n <= 64);
                    ok += 1;
                }
                Err(TryRecvError::Corrupt) => corrupt += 1,
                Err(TryRecvError::Empty | TryRecvError::Closed) => {}
                Err(TryRecvError::BufferTooSmall { needed }) => {
                    panic!("len {needed} > max_message passed validation")
                }
            }
            match de.requests.recv(&mut buf, &mut AssumeAlive) {
                Ok(n) => assert!(n <= 64),
                Err(RecvError::BufferTooSmall { .. }) => panic!("unvalidated length"),
                Err(_) => {}
            }
            match de.responses.try_send(&[&buf[..(r % 65) as usize]]) {
                Ok(()) | Err(_) => {}
            }
        }
    }
    assert!(corrupt > 0 && ok > 0, "corrupt {corrupt}, ok {ok}");
}
