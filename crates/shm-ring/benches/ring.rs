//! Benchmarks (plain main, harness = false): two processes (fork), medians.
//!
//! `cargo bench -p shm-ring --bench ring` (release profile).
//!
//! * ping-pong round trip, 64-byte messages: spin mode and sleep mode
//! * Unix-domain-socket ping-pong baseline (same run) and the ratio
//! * one-way throughput for 64 B and 4 KiB ring messages, 1 MiB ring
//!   messages, and 1 MiB request/reply through the bulk area
//! * the serving side waiting on N channels: futex_waitv (wait_any) vs a
//!   single futex vs epoll over N eventfds

use std::time::Instant;

use shm_ring::*;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn fork_child(f: impl FnOnce()) -> i32 {
    // SAFETY: single-threaded benchmark; the child runs `f` and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        f();
        // SAFETY: leave the child without running the parent's exit path.
        unsafe { libc::_exit(0) };
    }
    pid
}

fn reap(pid: i32) {
    let mut st = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize] as f64
}

const SPIN: WaitPolicy = WaitPolicy {
    spin_ns: 2_000_000_000,
    yield_ns: 0,
    sleep_slice_ns: 100_000_000,
    timeout_ns: None,
};

/// Round trips of 64-byte messages; returns (median, p99) in ns.
fn ping_pong(policy: WaitPolicy, n: usize) -> (f64, f64) {
    let region = Region::create(&Config::default(), 0).unwrap();
    let child = fork_child(|| {
        let mut end = region.daemon().unwrap();
        end.requests.set_policy(policy);
        end.responses.set_policy(policy);
        let mut buf = [0u8; 64];
        while let Ok(k) = end.requests.recv(&mut buf, &mut AssumeAlive) {
            if end.responses.send(&[&buf[..k]], &mut AssumeAlive).is_err() {
                break;
            }
        }
    });
    let c = Region::attach_fd(region.fd().unwrap()).unwrap();
    let mut end = c.client().unwrap();
    end.requests.set_policy(policy);
    end.responses.set_policy(policy);
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = now_ns();
        end.requests.send(&[&msg], &mut AssumeAlive).unwrap();
        end.responses.recv(&mut buf, &mut AssumeAlive).unwrap();
        if i >= n / 10 {
            samples.push(now_ns() - t);
        }
    }
    drop(end);
    reap(child);
    (pct(&mut samples, 0.5), pct(&mut samples, 0.99))
}

fn uds_ping_pong(n: usize) -> (f64, f64) {
    let mut sv = [0i32; 2];
    assert_eq!(
        // SAFETY: valid array of two fds.
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) },
        0
    );
    let child = fork_child(|| {
        // SAFETY: the child does not use the parent's end.
        unsafe { libc::close(sv[0]) };
        let mut buf = [0u8; 64];
        loop {
            let mut got = 0;
            while got < 64 {
                // SAFETY: reading into our buffer.
                let r = unsafe { libc::read(sv[1], buf.as_mut_ptr().add(got).cast(), 64 - got) };
                if r <= 0 {
                    return;
                }
                got += r as usize;
            }
            // SAFETY: writing our buffer.
            unsafe { libc::write(sv[1], buf.as_ptr().cast(), 64) };
        }
    });
    // SAFETY: the parent does not use the child's end.
    unsafe { libc::close(sv[1]) };
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = now_ns();
        // SAFETY: plain read/write on our socket.
        unsafe {
            libc::write(sv[0], msg.as_ptr().cast(), 64);
            let mut got = 0;
            while got < 64 {
                got += libc::read(sv[0], buf.as_mut_ptr().add(got).cast(), 64 - got) as usize;
            }
        }
        if i >= n / 10 {
            samples.push(now_ns() - t);
        }
    }
    // SAFETY: our fds.
    unsafe {
        libc::close(sv[0]);
    }
    reap(child);
    (pct(&mut samples, 0.5), pct(&mut samples, 0.99))
}

/// One-way stream of `n` messages of `size` bytes; returns GB/s.
fn throughput(size: usize, total: usize) -> f64 {
    let cap = (4 * size as u32).next_power_of_two().max(1 << 20);
    let cfg = Config {
        request_capacity: cap,
        response_capacity: cap,
        max_message: size as u32,
        bulk_len: 0,
    };
    let n = (total / size).max(8);
    let region = Region::create(&cfg, 0).unwrap();
    let child = fork_child(|| {
        let mut end = region.daemon().unwrap();
        end.requests.set_policy(SPIN);
        let mut buf = vec![0u8; size];
        for _ in 0..n {
            end.requests.recv(&mut buf, &mut AssumeAlive).unwrap();
        }
        end.responses.send(&[b"done"], &mut AssumeAlive).unwrap();
    });
    let c = Region::attach_fd(region.fd().unwrap()).unwrap();
    let mut end = c.client().unwrap();
    end.requests.set_policy(SPIN);
    end.responses.set_policy(SPIN);
    let msg = vec![3u8; size];
    let t = Instant::now();
    for _ in 0..n {
        end.requests.send(&[&msg], &mut AssumeAlive).unwrap();
    }
    let mut b = [0u8; 8];
    end.responses.recv(&mut b, &mut AssumeAlive).unwrap();
    let secs = t.elapsed().as_secs_f64();
    drop(end);
    reap(child);
    (n * size) as f64 / secs / 1e9
}

/// 1 MiB request/reply through the bulk area: the client writes 1 MiB, the
/// daemon copies it out (as it must, TOCTOU) and replies. Returns GB/s.
fn bulk_throughput(size: usize, n: usize) -> f64 {
    let cfg = Config {
        bulk_len: size as u64,
        ..Config::default()
    };
    let region = Region::create(&cfg, 0).unwrap();
    let child = fork_child(|| {
        let mut end = region.daemon().unwrap();
        end.requests.set_policy(SPIN);
        end.responses.set_policy(SPIN);
        let mut data = vec![0u8; size];
        let mut req = [0u8; 8];
        while end.requests.recv(&mut req, &mut AssumeAlive).is_ok() {
            end.bulk.read(0, &mut data).unwrap();
            end.responses.send(&[&data[..8]], &mut AssumeAlive).unwrap();
        }
    });
    let c = Region::attach_fd(region.fd().unwrap()).unwrap();
    let mut end = c.client().unwrap();
    end.requests.set_policy(SPIN);
    end.responses.set_policy(SPIN);
    let data = vec![5u8; size];
    let mut rep = [0u8; 8];
    let t = Instant::now();
    for _ in 0..n {
        end.bulk.write(0, &data).unwrap();
        end.requests
            .send(&[&(size as u64).to_le_bytes()], &mut AssumeAlive)
            .unwrap();
        end.responses.recv(&mut rep, &mut AssumeAlive).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    drop(end);
    reap(child);
    (n * size) as f64 / secs / 1e9
}

/// Sleep-mode ping-pong where the server waits with `wait_any` over
/// `channels` channels (only channel 0 is used). Median ns.
fn multi_wait_ping_pong(channels: usize, n: usize) -> f64 {
    let regions: Vec<Region> = (0..channels)
        .map(|_| Region::create(&Config::default(), 0).unwrap())
        .collect();
    let child = fork_child(|| {
        let mut ends: Vec<DaemonEnd<'_>> = regions.iter().map(|r| r.daemon().unwrap()).collect();
        let mut buf = [0u8; 64];
        'serve: loop {
            let mut served = false;
            for e in ends.iter_mut() {
                match e.requests.try_recv(&mut buf) {
                    Ok(k) => {
                        e.responses.try_send(&[&buf[..k]]).unwrap();
                        served = true;
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(_) => break 'serve,
                }
            }
            if !served {
                let refs: Vec<&Consumer<'_>> = ends.iter().map(|e| &e.requests).collect();
                wait_any(&refs, 100_000_000).unwrap();
            }
        }
    });
    let c = Region::attach_fd(regions[0].fd().unwrap()).unwrap();
    let mut end = c.client().unwrap();
    end.requests.set_policy(WaitPolicy::SLEEP);
    end.responses.set_policy(WaitPolicy::SLEEP);
    let msg = [1u8; 64];
    let mut buf = [0u8; 64];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = now_ns();
        end.requests.send(&[&msg], &mut AssumeAlive).unwrap();
        end.responses.recv(&mut buf, &mut AssumeAlive).unwrap();
        samples.push(now_ns() - t);
    }
    drop(end);
    reap(child);
    pct(&mut samples, 0.5)
}

/// The alternative: the server sleeps in epoll_wait over `channels`
/// eventfds, the client signals with write(eventfd) and sleeps in
/// read(eventfd). Notification only (no payload). Median ns.
fn epoll_ping_pong(channels: usize, n: usize) -> f64 {
    // SAFETY: plain fd-creating syscalls.
    let efds: Vec<i32> = (0..channels)
        .map(|_| unsafe { libc::eventfd(0, 0) })
        .collect();
    // SAFETY: as above.
    let back = unsafe { libc::eventfd(0, 0) };
    let child = fork_child(|| {
        // SAFETY: epoll setup on our own fds; reads/writes of 8-byte counters.
        unsafe {
            let ep = libc::epoll_create1(0);
            for (i, &fd) in efds.iter().enumerate() {
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: i as u64,
                };
                libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
            }
            let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
            let mut v = 0u64;
            for _ in 0..n {
                let k = libc::epoll_wait(ep, evs.as_mut_ptr(), 64, -1);
                for e in &evs[..k.max(0) as usize] {
                    libc::read(efds[e.u64 as usize], (&mut v as *mut u64).cast(), 8);
                }
                let one = 1u64;
                libc::write(back, (&one as *const u64).cast(), 8);
            }
        }
    });
    let mut samples = Vec::with_capacity(n);
    let one = 1u64;
    let mut v = 0u64;
    for _ in 0..n {
        let t = now_ns();
        // SAFETY: 8-byte eventfd read/write.
        unsafe {
            libc::write(efds[0], (&one as *const u64).cast(), 8);
            libc::read(back, (&mut v as *mut u64).cast(), 8);
        }
        samples.push(now_ns() - t);
    }
    reap(child);
    pct(&mut samples, 0.5)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs = 5;
    println!("shm-ring benchmarks: medians of {runs} runs, two processes (fork)\n");
    let mut spin = Vec::new();
    let mut spin99 = Vec::new();
    let mut sleep = Vec::new();
    let mut uds = Vec::new();
    for _ in 0..runs {
        let (m, p) = ping_pong(SPIN, 200_000);
        spin.push(m);
        spin99.push(p);
        sleep.push(ping_pong(WaitPolicy::SLEEP, 20_000).0);
        uds.push(uds_ping_pong(20_000).0);
    }
    let (spin, sleep, uds) = (median(spin), median(sleep), median(uds));
    println!("| round trip, 64 B messages        | median      |");
    println!("| -------------------------------- | ----------- |");
    println!(
        "| shm-ring, spin mode              | {:>8.0} ns | (p99 {:.0} ns)",
        spin,
        median(spin99)
    );
    println!("| shm-ring, sleep mode (futex)     | {:>8.0} ns |", sleep);
    println!("| Unix socket ping-pong (baseline) | {:>8.0} ns |", uds);
    println!(
        "| ratio socket / ring spin         | {:>9.1}x  |",
        uds / spin
    );
    println!(
        "| ratio socket / ring sleep        | {:>9.2}x  |",
        uds / sleep
    );

    println!();
    println!("| throughput (one way, copy in + copy out) | median GB/s |");
    println!("| ---------------------------------------- | ----------- |");
    for (name, size, total) in [
        ("64 B ring messages", 64usize, 128usize << 20),
        ("4 KiB ring messages", 4096, 1 << 30),
        ("1 MiB ring messages", 1 << 20, 1 << 30),
    ] {
        let v: Vec<f64> = (0..runs).map(|_| throughput(size, total)).collect();
        println!("| {name:<40} | {:>11.2} |", median(v));
    }
    let v: Vec<f64> = (0..runs).map(|_| bulk_throughput(1 << 20, 1000)).collect();
    println!(
        "| {:<40} | {:>11.2} |",
        "1 MiB via bulk area (request/reply)",
        median(v)
    );

    println!();
    println!("| serving side waits on N channels (sleep mode RT) | median    |");
    println!("| ------------------------------------------------ | --------- |");
    // Interleaved, so machine noise hits every variant alike.
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for ch in [1usize, 16, 64] {
        rows.push((format!("futex_waitv (wait_any), N = {ch}"), Vec::new()));
    }
    for ch in [1usize, 64] {
        rows.push((format!("epoll + eventfd, N = {ch}"), Vec::new()));
    }
    rows.push(("single futex (Consumer::recv), N = 1".into(), Vec::new()));
    for _ in 0..runs {
        for (i, ch) in [1usize, 16, 64].into_iter().enumerate() {
            rows[i].1.push(multi_wait_ping_pong(ch, 10_000));
        }
        rows[3].1.push(epoll_ping_pong(1, 10_000));
        rows[4].1.push(epoll_ping_pong(64, 10_000));
        rows[5].1.push(ping_pong(WaitPolicy::SLEEP, 10_000).0);
    }
    for (name, v) in rows {
        println!("| {name:<48} | {:>6.0} ns |", median(v));
    }
}
