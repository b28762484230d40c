//! Keeping the tree across restarts: `--from DIR`, `btfuse save`,
//! `--image FILE`, `--save-on-exit FILE`, and damaged images refused.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A listing of everything a round trip must keep: per path, kind and mode,
/// owner, size, link count, atime and mtime (ns), rdev or symlink target,
/// xattrs, sha256 of contents and the data extents (SEEK_DATA/SEEK_HOLE).
fn listing(root: &Path) -> String {
    let script = r#"
import os, sys, hashlib
root = sys.argv[1]
out = []
# Every stat before any read: reading moves atimes (of hard links too).
paths = [os.path.join(d, n) for d, ds, fs in os.walk(root) for n in ds + fs]
stats = {p: os.lstat(p) for p in paths}
for p in sorted(paths):
        name = os.path.basename(p)
        st = stats[p]
        rel = os.path.relpath(p, root)
        extra = ""
        if os.path.islink(p):
            extra = "-> " + os.readlink(p)
        elif os.path.isfile(p) and not name.startswith("fifo"):
            with open(p, "rb") as f:
                extra = hashlib.sha256(f.read()).hexdigest()
                ext, off = [], 0
                fd = f.fileno()
                while True:
                    try:
                        s = os.lseek(fd, off, os.SEEK_DATA)
                    except OSError:
                        break
                    e = os.lseek(fd, s, os.SEEK_HOLE)
                    ext.append((s // 4096, e // 4096))
                    off = e
                    if off >= st.st_size:
                        break
                extra += " " + str(ext)
        # The kernel's FUSE client answers system.posix_acl_* itself
        # (EOPNOTSUPP without ACL support): compare their names only.
        xs = sorted((k, "system" if k.startswith("system.") else
                     os.getxattr(p, k, follow_symlinks=False))
                    for k in os.listxattr(p, follow_symlinks=False))
        atime = "" if os.path.isdir(p) else st.st_atime_ns
        out.append(f"{rel} {st.st_mode:o} {st.st_uid}:{st.st_gid} {st.st_size} "
                   f"{st.st_nlink} {atime} {st.st_mtime_ns} {st.st_rdev} {extra} {xs}")
print("\n".join(sorted(out)))
"#;
    let out = run_timeout(
        Command::new("python3").args(["-c", script]).arg(root),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "listing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A tree with every kind of node and attribute, built under `root`.
fn build_tree(root: &Path) {
    let script = r#"
import os, socket, sys
r = sys.argv[1]
os.makedirs(f"{r}/d/e")
open(f"{r}/a", "w").write("hello\n")
os.link(f"{r}/a", f"{r}/d/hard")
os.symlink("a", f"{r}/sl")
os.mkfifo(f"{r}/fifo")
os.mknod(f"{r}/cdev", 0o20640, os.makedev(1, 3))
os.mknod(f"{r}/bdev", 0o60600, os.makedev(7, 0))
s = socket.socket(socket.AF_UNIX); s.bind(f"{r}/sock"); s.close()
with open(f"{r}/sparse", "wb") as f:
    f.truncate(8 << 20); f.seek(5 << 20); f.write(b"x" * 10000)
open(f"{r}/d/e/big", "wb").write(os.urandom(3 << 20))
for i in range(50):
    open(f"{r}/d/small{i}", "w").write(str(i) * i)
os.setxattr(f"{r}/a", "user.k", b"v")
os.setxattr(f"{r}/d", "trusted.t", b"tv")
os.setxattr(f"{r}/a", "security.s", b"sv")
os.setxattr(f"{r}/sl", "trusted.l", b"on a link", follow_symlinks=False)
os.setxattr(f"{r}/d/e", "system.posix_acl_default", bytes.fromhex("0200000001000700ffffffff04000500ffffffff20000500ffffffff"))
os.chown(f"{r}/a", 1000, 1000)
os.chmod(f"{r}/a", 0o4750)
os.chmod(f"{r}/d/e", 0o1777)
os.chown(f"{r}/sl", 7, 8, follow_symlinks=False)
for p in ["a", "d/e/big", "sparse", "d"]:
    os.utime(f"{r}/{p}", ns=(1_000_000_123, 2_000_000_456))
os.utime(f"{r}/sl", ns=(3_000_000_000, 4_000_000_789), follow_symlinks=False)
"#;
    let out = run_timeout(
        Command::new("python3").args(["-c", script]).arg(root),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "build tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn btfuse(args: &[&str], timeout: Duration) -> std::process::Output {
    run_timeout(Command::new(btfuse_bin()).args(args), timeout)
}

fn save(mnt: &Path, file: &Path) {
    let out = btfuse(
        &["save", mnt.to_str().unwrap(), file.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "btfuse save: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn from_a_tmpfs_tree_and_back_through_an_image_every_node_and_attribute_is_kept() {
    if !fuse_available(
        "from_a_tmpfs_tree_and_back_through_an_image_every_node_and_attribute_is_kept",
    ) {
        return;
    }
    let tmp = TmpfsGuard::new("64M");
    let src = tmp.path().join("src");
    build_tree(&src);
    // Listing reads files, which moves atimes (relatime): copy and save
    // first, then list each tree once.
    let from = BtfuseGuard::with_args("64M", &["--from", src.to_str().unwrap()]);
    let img = tmp.path().join("tree.img");
    save(from.path(), &img);
    let want = listing(&src);
    let got = listing(from.path());
    if let Some((line, a, b)) = first_difference(&want, &got) {
        panic!("--from differs at line {line}:\n source: {a}\n mount:  {b}");
    }
    let again = BtfuseGuard::with_args("64M", &["--image", img.to_str().unwrap()]);
    let got = listing(again.path());
    if let Some((line, a, b)) = first_difference(&want, &got) {
        panic!("image round trip differs at line {line}:\n source: {a}\n loaded: {b}");
    }
}

/// A refused image: non-zero exit, a one-line error, nothing mounted.
fn assert_refused(img: &Path, what: &str) {
    let dir = fresh_dir("refused");
    let out = btfuse(
        &[
            "mount",
            dir.to_str().unwrap(),
            "--size",
            "64M",
            "--image",
            img.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    let mounted = mount_fstype(&dir).is_some();
    if mounted {
        detach(&dir);
    }
    let _ = std::fs::remove_dir(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!mounted, "{what}: mounted anyway");
    assert!(
        !out.status.success(),
        "{what}: exit status {:?}",
        out.status
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{what}: not one line: {err}"
    );
    assert!(err.contains("cannot load"), "{what}: {err}");
}

#[test]
fn truncated_corrupted_or_foreign_images_are_refused() {
    if !fuse_available("truncated_corrupted_or_foreign_images_are_refused") {
        return;
    }
    let tmp = TmpfsGuard::new("64M");
    let src = tmp.path().join("src");
    build_tree(&src);
    let img = tmp.path().join("good.img");
    {
        let m = BtfuseGuard::with_args("64M", &["--from", src.to_str().unwrap()]);
        save(m.path(), &img);
    }
    let good = std::fs::read(&img).unwrap();
    let bad = tmp.path().join("bad.img");
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let n = env_u64("IMAGE_DAMAGE_SEEDS", 12) as usize;
    for seed in 0..n {
        let cut = next(good.len());
        std::fs::write(&bad, &good[..cut]).unwrap();
        assert_refused(&bad, &format!("cut at {cut} (seed {seed})"));
        let mut flipped = good.clone();
        let at = next(good.len());
        flipped[at] ^= 1 << next(8);
        std::fs::write(&bad, &flipped).unwrap();
        assert_refused(&bad, &format!("bit flipped at {at} (seed {seed})"));
    }
    std::fs::write(&bad, b"PK\x03\x04 not an image at all").unwrap();
    assert_refused(&bad, "foreign file");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    std::fs::write(&bad, &trailing).unwrap();
    assert_refused(&bad, "trailing bytes");
}

/// Writers bump a counter in files c0..c3, always in that order; at any one
/// instant c0 >= c1 >= c2 >= c3 >= c0 - 1. A save must show such an instant.
fn check_counters(root: &Path, prefix: &str) {
    let v: Vec<u64> = (0..4)
        .map(|i| {
            let s = std::fs::read_to_string(root.join(format!("{prefix}{i}"))).unwrap();
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{prefix}{i}: {s:?}"))
        })
        .collect();
    let ok = v.windows(2).all(|w| w[0] >= w[1]) && v[3] + 1 >= v[0];
    assert!(ok, "{prefix}: counters {v:?} never existed together");
}

#[test]
fn a_save_under_writes_through_both_doors_is_one_instant_of_the_tree() {
    let Some(lib) =
        preload_or_skip("a_save_under_writes_through_both_doors_is_one_instant_of_the_tree")
    else {
        return;
    };
    // Three images of the 32 MiB tree below.
    let tmp = TmpfsGuard::new("256M");
    let m = BtfuseGuard::new("256M");
    let mnt = m.path().to_path_buf();
    // Some bulk so the copy takes a while.
    std::fs::write(mnt.join("bulk"), vec![7u8; 32 << 20]).unwrap();
    let writer = |prefix: &str| {
        format!(
            "cd {} && i=0; while [ -d . ] && [ ! -e stop ]; do i=$((i+1)); for n in 0 1 2 3; do echo $i > {prefix}$n.t && mv {prefix}$n.t {prefix}$n; done; done",
            mnt.display()
        )
    };
    for n in 0..4 {
        std::fs::write(mnt.join(format!("k{n}")), "0\n").unwrap();
        std::fs::write(mnt.join(format!("p{n}")), "0\n").unwrap();
    }
    let mut kernel = KillOnDrop(
        Command::new("sh")
            .args(["-c", &writer("k")])
            .spawn()
            .unwrap(),
    );
    let mut preloaded = KillOnDrop(
        Command::new("sh")
            .args(["-c", &writer("p")])
            .env("LD_PRELOAD", &lib)
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let imgs: Vec<_> = (0..3)
        .map(|i| tmp.path().join(format!("s{i}.img")))
        .collect();
    for img in &imgs {
        save(&mnt, img);
    }
    std::fs::write(mnt.join("stop"), "").unwrap();
    let _ = wait_timeout(&mut kernel.0, Duration::from_secs(10));
    let _ = wait_timeout(&mut preloaded.0, Duration::from_secs(10));
    for img in &imgs {
        let back = BtfuseGuard::with_args("256M", &["--image", img.to_str().unwrap()]);
        check_counters(back.path(), "k");
        check_counters(back.path(), "p");
        assert_eq!(
            std::fs::read(back.path().join("bulk")).unwrap(),
            vec![7u8; 32 << 20]
        );
    }
}

/// A child that is killed and reaped when the test ends, even by a panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_saves_the_tree_when_asked_to_save_on_exit() {
    if !fuse_available("sigterm_saves_the_tree_when_asked_to_save_on_exit") {
        return;
    }
    let tmp = TmpfsGuard::new("16M");
    let img = tmp.path().join("exit.img");
    let mut m = BtfuseGuard::with_args("16M", &["--save-on-exit", img.to_str().unwrap()]);
    std::fs::write(m.path().join("kept"), b"across restarts").unwrap();
    let t = Instant::now();
    let (st, unmounted) = m.terminate(Duration::from_secs(20));
    assert!(
        st.is_some_and(|s| s.success()) && unmounted,
        "{st:?} after {:?}\n{}",
        t.elapsed(),
        m.log_text()
    );
    let back = BtfuseGuard::with_args("16M", &["--image", img.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(back.path().join("kept")).unwrap(),
        b"across restarts"
    );
}
