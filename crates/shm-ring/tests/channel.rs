//! Cross-process tests: the peer is a `fork`ed child that attaches to the
//! memfd by itself (a second, independent mapping). Children never allocate
//! (the test harness is multi-threaded, so malloc may be locked at fork) and
//! leave with `_exit`.

// MSRV is 1.85 (workspace rust-version); `is_multiple_of` is 1.87+.
#![allow(clippy::manual_is_multiple_of)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shm_ring::*;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Forks; the child runs `f` and exits with its return value (101 on panic).
fn fork_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `f` (no allocation, no locks) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: terminate the child without running the parent's atexit.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn wait_child(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    }
}

fn parent_alive() -> PidAlive {
    // SAFETY: always safe.
    PidAlive(unsafe { libc::getppid() })
}

/// Message `seq`: `[seq u64][bytes from xorshift(seq)][fnv-1a u64 of all before]`.
fn fill(seq: u64, len: usize, out: &mut [u8]) {
    let out = &mut out[..len];
    out[..8].copy_from_slice(&seq.to_le_bytes());
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in out[8..len - 8].chunks_mut(8) {
        let v = xorshift(&mut x).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let sum = fnv(&out[..len - 8]);
    out[len - 8..].copy_from_slice(&sum.to_le_bytes());
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h = (h ^ c as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Verifies a message made by `fill` (checksum, then exact regeneration).
fn verify(expect_seq: u64, msg: &[u8], scratch: &mut [u8]) {
    assert!(msg.len() >= 16, "message {expect_seq} too short");
    let seq = u64::from_le_bytes(msg[..8].try_into().unwrap());
    assert_eq!(seq, expect_seq, "out of order or lost");
    let sum = u64::from_le_bytes(msg[msg.len() - 8..].try_into().unwrap());
    assert_eq!(sum, fnv(&msg[..msg.len() - 8]), "checksum of {seq}");
    fill(seq, msg.len(), scratch);
    assert_eq!(msg, &scratch[..msg.len()], "content of {seq}");
}

fn msg_len(seq: u64, max: usize) -> usize {
    let mut x = seq ^ 0x5555_5555;
    let r = xorshift(&mut x) as usize;
    if seq % 97 == 0 {
        16 + r % (max - 15)
    } else {
        16 + r % 240
    }
}

#[test]
fn millions_of_random_size_messages_cross_processes_intact() {
    let n: u64 = if cfg!(debug_assertions) {
        1_000_000
    } else {
        3_000_000
    };
    let region = Region::create(&Config::default(), 0).unwrap();
    let fd = region.fd().unwrap();
    let max = region.layout().request.max_message as usize;
    let child = fork_child(|| {
        let r = Region::attach_fd(fd).unwrap();
        let mut end = r.client().unwrap();
        end.requests.set_policy(WaitPolicy::spinning(200_000));
        let mut buf = [0u8; 8192];
        let mut peer = parent_alive();
        for seq in 0..n {
            let len = msg_len(seq, max);
            fill(seq, len, &mut buf);
            // Split the message in two parts to exercise gathering.
            let (a, b) = buf[..len].split_at(len / 2);
            if end.requests.send(&[a, b], &mut peer).is_err() {
                return 2;
            }
        }
        0
    });
    let mut end = region.daemon().unwrap();
    end.requests.set_policy(WaitPolicy::spinning(200_000));
    let mut peer = Pidfd::open(child).unwrap();
    let mut buf = vec![0u8; max];
    let mut scratch = vec![0u8; max];
    let t = Instant::now();
    for seq in 0..n {
        let len = end.requests.recv(&mut buf, &mut peer).unwrap();
        assert_eq!(len, msg_len(seq, max));
        verify(seq, &buf[..len], &mut scratch);
    }
    let el = t.elapsed();
    assert_eq!(
        end.requests.recv(&mut buf, &mut peer),
        Err(RecvError::Closed),
        "child's drop closes the ring"
    );
    assert_eq!(wait_child(child), 0);
    eprintln!("{n} messages in {el:?}");
}

#[test]
fn request_reply_with_bulk_payloads_across_processes() {
    let cfg = Config {
        bulk_len: 1 << 20,
        ..Config::default()
    };
    let region = Region::create(&cfg, 0).unwrap();
    let fd = region.fd().unwrap();
    let n = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    // Child = daemon: request is [len u32]; it copies bulk[0..len] out,
    // checks it, writes the bytes reversed back and replies [fnv u64].
    let child = fork_child(|| {
        let r = Region::attach_fd(fd).unwrap();
        let mut end = r.daemon().unwrap();
        let mut peer = parent_alive();
        let mut req = [0u8; 64];
        let mut data = [0u8; 65536];
        loop {
            let k = match end.requests.recv(&mut req, &mut peer) {
                Ok(k) => k,
                Err(RecvError::Closed) => return 0,
                Err(_) => return 3,
            };
            if k != 4 {
                return 4;
            }
            let len = u32::from_le_bytes(req[..4].try_into().unwrap()) as usize;
            if len > data.len() || end.bulk.read(0, &mut data[..len]).is_err() {
                return 5;
            }
            let sum = fnv(&data[..len]);
            data[..len].reverse();
            end.bulk.write(0, &data[..len]).unwrap();
            if end
                .responses
                .send(&[&sum.to_le_bytes()], &mut peer)
                .is_err()
            {
                return 6;
            }
        }
    });
    let mut end = region.client().unwrap();
    let mut peer = Pidfd::open(child).unwrap();
    let mut x = 7u64;
    let mut data = vec![0u8; 65536];
    let mut back = vec![0u8; 65536];
    for i in 0..n {
        let len = (xorshift(&mut x) % 65537) as usize;
        for b in &mut data[..len] {
            *b = xorshift(&mut x) as u8;
        }
        end.bulk.write(0, &data[..len]).unwrap();
        end.requests
            .send(&[&(len as u32).to_le_bytes()], &mut peer)
            .unwrap();
        let mut rep = [0u8; 8];
        assert_eq!(end.responses.recv(&mut rep, &mut peer), Ok(8), "{i}");
        assert_eq!(u64::from_le_bytes(rep), fnv(&data[..len]));
        end.bulk.read(0, &mut back[..len]).unwrap();
        data[..len].reverse();
        assert_eq!(&back[..len], &data[..len]);
    }
    drop(end);
    assert_eq!(wait_child(child), 0);
}

#[test]
fn sleep_mode_ping_pong_across_processes_never_stalls() {
    // Both sides sleep on every wait; a lost wakeup would leave one side
    // asleep for a whole 2 s slice, which makes its liveness hook run and
    // the test fail.
    let region = Region::create(&Config::default(), 0).unwrap();
    let fd = region.fd().unwrap();
    let n = if cfg!(debug_assertions) {
        5_000
    } else {
        20_000
    };
    let policy = WaitPolicy::SLEEP.with_sleep_slice_ns(2_000_000_000);
    let child = fork_child(|| {
        let r = Region::attach_fd(fd).unwrap();
        let mut end = r.daemon().unwrap();
        end.requests.set_policy(policy);
        end.responses.set_policy(policy);
        let stalled = AtomicBool::new(false);
        let mut peer = || {
            stalled.store(true, Ordering::Relaxed);
            true
        };
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let Ok(k) = end.requests.recv(&mut buf, &mut peer) else {
                return 3;
            };
            if end.responses.send(&[&buf[..k]], &mut peer).is_err() {
                return 4;
            }
        }
        if stalled.load(Ordering::Relaxed) {
            9
        } else {
            0
        }
    });
    let mut end = region.client().unwrap();
    end.requests.set_policy(policy);
    end.responses.set_policy(policy);
    let mut stalls = 0;
    let mut peer = || {
        stalls += 1;
        true
    };
    let mut buf = [0u8; 64];
    for i in 0..n as u32 {
        end.requests.send(&[&i.to_le_bytes()], &mut peer).unwrap();
        assert_eq!(end.responses.recv(&mut buf, &mut peer), Ok(4));
        assert_eq!(buf[..4], i.to_le_bytes());
    }
    assert_eq!(stalls, 0, "client needed a slice timeout: lost wakeup");
    assert_eq!(wait_child(child), 0, "child saw a lost wakeup or failed");
}

#[test]
fn producer_killed_mid_stream_gives_peer_dead_not_a_hang() {
    let region = Region::create(&Config::default(), 0).unwrap();
    let fd = region.fd().unwrap();
    let max = region.layout().request.max_message as usize;
    let child = fork_child(|| {
        let r = Region::attach_fd(fd).unwrap();
        let end = r.client().unwrap();
        let mut req = end.requests;
        std::mem::forget(end.responses);
        let mut buf = [0u8; 8192];
        let mut peer = parent_alive();
        for seq in 0.. {
            let len = msg_len(seq, max);
            fill(seq, len, &mut buf);
            if req.send(&[&buf[..len]], &mut peer).is_err() {
                return 2;
            }
        }
        0
    });
    let mut end = region.daemon().unwrap();
    end.requests
        .set_policy(WaitPolicy::spinning(10_000).with_sleep_slice_ns(30_000_000));
    let mut peer = Pidfd::open(child).unwrap();
    let mut buf = vec![0u8; max];
    let mut scratch = vec![0u8; max];
    // Receive a while, then kill the producer wherever it is (possibly in
    // the middle of writing a record, or asleep on a full ring).
    let mut seq = 0;
    while seq < 20_000 {
        let len = end.requests.recv(&mut buf, &mut peer).unwrap();
        verify(seq, &buf[..len], &mut scratch);
        seq += 1;
    }
    std::thread::sleep(Duration::from_millis(20)); // let it fill the ring
                                                   // SAFETY: our own child.
    unsafe { libc::kill(child, libc::SIGKILL) };
    let t = Instant::now();
    let err = loop {
        match end.requests.recv(&mut buf, &mut peer) {
            Ok(len) => {
                verify(seq, &buf[..len], &mut scratch);
                seq += 1;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err, RecvError::PeerDead);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(wait_child(child), -libc::SIGKILL);
}

#[test]
fn daemon_killed_gives_client_peer_dead_on_recv_and_on_full_send() {
    let cfg = Config {
        request_capacity: 4096,
        response_capacity: 4096,
        max_message: 1024,
        bulk_len: 0,
    };
    let region = Region::create(&cfg, 0).unwrap();
    let child = fork_child(|| {
        // A daemon that takes the channel and then hangs.
        let _end = region.daemon().unwrap();
        loop {
            // SAFETY: plain pause(2).
            unsafe { libc::pause() };
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    let mut peer = Pidfd::open(child).unwrap();
    let client_region = Region::attach_fd(region.fd().unwrap()).unwrap();
    let mut end = client_region.client().unwrap();
    let policy = WaitPolicy::spinning(10_000).with_sleep_slice_ns(20_000_000);
    end.requests.set_policy(policy);
    end.responses.set_policy(policy);
    end.requests.send(&[b"stat /x"], &mut peer).unwrap();
    // SAFETY: our child.
    unsafe { libc::kill(child, libc::SIGKILL) };
    let t = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(
        end.responses.recv(&mut buf, &mut peer),
        Err(RecvError::PeerDead)
    );
    // Fill the request ring: the blocking send then notices the death.
    let r = loop {
        match end.requests.send(&[&[0u8; 1000]], &mut peer) {
            Ok(()) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(r, SendError::PeerDead);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(wait_child(child), -libc::SIGKILL);
}

#[test]
fn hostile_client_scribbling_concurrently_never_breaks_the_daemon() {
    // A forked client alternates honest sends with random writes over the
    // whole control area and data ring while the daemon receives. The daemon
    // must only ever return well-formed messages (len <= max_message) or
    // errors, and never hang (every wait has a 5 ms timeout).
    let rounds = if cfg!(debug_assertions) { 10 } else { 40 };
    let cfg = Config {
        request_capacity: 1024,
        response_capacity: 1024,
        max_message: 256,
        bulk_len: 4096,
    };
    let (mut msgs, mut corrupt) = (0u64, 0u64);
    for round in 0..rounds {
        let region = Region::create(&cfg, 0).unwrap();
        let fd = region.fd().unwrap();
        let child = fork_child(|| {
            let r = Region::attach_fd(fd).unwrap();
            let base = r.as_ptr();
            let len = r.layout().bulk_off as usize; // header .. end of rings
            let end = r.client().unwrap();
            let mut req = end.requests;
            std::mem::forget(end.responses);
            req.set_policy(WaitPolicy::SLEEP.with_timeout_ns(1_000_000));
            let mut x = 0x1234_5678_9abc_def0u64 ^ round as u64;
            let start = Instant::now();
            let mut buf = [0u8; 256];
            while start.elapsed() < Duration::from_millis(50) {
                let r = xorshift(&mut x);
                if r % 4 != 0 {
                    let n = (r >> 8) as usize % 257;
                    let _ = req.send(&[&buf[..n]], &mut AssumeAlive);
                    buf[0] = buf[0].wrapping_add(1);
                } else {
                    // Hit the control lines and the first records often.
                    let off = if r % 8 == 4 {
                        128 + ((r >> 16) as usize % 640)
                    } else {
                        (r >> 16) as usize % len
                    } & !3;
                    let v = (xorshift(&mut x) >> (r % 40)) as u32;
                    // SAFETY: off < len within our mapping, 4-aligned; the
                    // write races with the daemon on purpose (cross-process).
                    unsafe { std::ptr::write_volatile(base.add(off).cast::<u32>(), v) };
                }
            }
            0
        });
        let mut end = region.daemon().unwrap();
        end.requests
            .set_policy(WaitPolicy::spinning(1_000).with_timeout_ns(5_000_000));
        let mut buf = [0u8; 256];
        let t = Instant::now();
        loop {
            match end.requests.recv(&mut buf, &mut AssumeAlive) {
                Ok(n) => {
                    assert!(n <= 256);
                    msgs += 1;
                }
                Err(RecvError::Corrupt) => {
                    corrupt += 1;
                    break;
                }
                Err(RecvError::BufferTooSmall { needed }) => {
                    panic!("unvalidated length {needed}")
                }
                Err(RecvError::TimedOut | RecvError::Closed | RecvError::PeerDead) => {
                    if t.elapsed() > Duration::from_millis(60) {
                        break;
                    }
                }
            }
            assert!(t.elapsed() < Duration::from_secs(5), "daemon stuck");
        }
        // Also answer on the response ring whose tail the client may trash.
        let _ = end.responses.try_send(&[b"reply"]);
        assert_eq!(wait_child(child), 0);
    }
    eprintln!("{msgs} messages, {corrupt} corruptions detected");
    assert!(msgs > 0);
}
