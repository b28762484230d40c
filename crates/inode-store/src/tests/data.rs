//! File data: reads, writes, holes, truncation, fallocate, seeks and copies.

use super::*;

#[test]
fn sparse_file_reads_zeros_and_counts_only_allocated_blocks() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fh, 10 * MIB, b"tail").unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!(at.size, 10 * MIB + 4);
    assert_eq!(at.blocks, 8);
    let mut buf = vec![0xAAu8; 8192];
    assert_eq!(s.read(fh, 5 * MIB, &mut buf).unwrap(), 8192);
    assert!(buf.iter().all(|&b| b == 0));
    let mut buf = [0u8; 10];
    assert_eq!(s.read(fh, 10 * MIB, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"tail");
    assert_eq!(s.read(fh, 20 * MIB, &mut buf).unwrap(), 0);
    // Truncate up creates a hole, no block.
    let set = SetAttr {
        size: Some(100 * MIB),
        ..SetAttr::default()
    };
    assert_eq!(
        s.setattr(&root(), a.ino, &set, Some(fh.into()))
            .unwrap()
            .blocks,
        8
    );
    s.release(fh).unwrap();
}

#[test]
fn truncate_frees_blocks_and_zeroes_tail() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, &[9u8; 5 * BLOCK_SIZE]);
    assert_eq!(s.usage().used_blocks, 5);
    let set = SetAttr {
        size: Some(4096 + 10),
        ..SetAttr::default()
    };
    let a = s.setattr(&root(), f, &set, None).unwrap();
    assert_eq!(a.blocks, 16);
    assert_eq!(s.usage().used_blocks, 2);
    let set = SetAttr {
        size: Some(3 * 4096),
        ..SetAttr::default()
    };
    s.setattr(&root(), f, &set, None).unwrap();
    let data = read_all(&s, f);
    assert!(data[..4106].iter().all(|&b| b == 9));
    assert!(data[4106..].iter().all(|&b| b == 0));
}

#[test]
fn unlink_while_open_keeps_data() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fh, 0, &[5u8; 3 * BLOCK_SIZE]).unwrap();
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(err(s.lookup(&root(), ROOT_INO, b"f")), Errno::ENOENT);
    let mut buf = vec![0u8; 3 * BLOCK_SIZE];
    assert_eq!(s.read(fh, 0, &mut buf).unwrap(), buf.len());
    assert!(buf.iter().all(|&b| b == 5));
    assert_eq!(s.getattr(a.ino).unwrap().nlink, 0);
    s.write(&root(), fh, 0, b"still writable").unwrap();
    assert_eq!(s.usage().used_blocks, 3);
    s.release(fh).unwrap();
    let u = s.usage();
    assert_eq!((u.used_blocks, u.slabs_mapped, u.inodes), (0, 0, 1));
    assert_eq!(err(s.getattr(a.ino)), Errno::ENOENT);
}

/// A lookup reference keeps an unlinked file whole (the kernel opens files
/// without telling the store, so it may be reading it), though it no longer
/// counts against the inode limit; dropping the last frees it.
#[test]
fn looked_up_inode_keeps_its_data_until_forgotten() {
    let s = store();
    let f = mkfile(&s, &root(), ROOT_INO, b"f", 0o644, &[1u8; 8192]);
    s.add_lookup(f);
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(s.usage().used_blocks, 2);
    let a = s.getattr(f).unwrap();
    assert_eq!((a.nlink, a.size), (0, 8192));
    let mut buf = [0u8; 8192];
    assert_eq!(s.read(FileRef::Inode(f), 0, &mut buf).unwrap(), 8192);
    assert!(buf.iter().all(|&b| b == 1));
    s.drop_lookups(f, 1);
    assert_eq!(err(s.getattr(f)), Errno::ENOENT);
    assert_eq!(s.usage().used_blocks, 0);
    // Saturating: dropping more than were added is harmless.
    s.drop_lookups(f, 10);
    s.drop_lookups(ROOT_INO, 10);
    assert!(s.getattr(ROOT_INO).is_ok());
}

/// The kernel reopening an unlinked file by handle (the FUSE door's
/// reserved names): its lookup keeps the file after the fast-path handle
/// closes, readable and writable by inode; dropping the lookup frees it.
#[test]
fn unlinked_file_handed_to_the_kernel_lives_until_forgotten() {
    let s = store();
    let (a, fast) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fast, 0, &[7u8; 2 * BLOCK_SIZE]).unwrap();
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    let seen = s.add_lookup_by_handle(fast).unwrap();
    assert_eq!((seen.ino, seen.nlink), (a.ino, 0));
    s.release(fast).unwrap();
    assert_eq!(err(s.add_lookup_by_handle(fast)), Errno::EBADF);
    let kernel = FileRef::Inode(a.ino);
    let mut buf = [0u8; 4];
    assert_eq!(s.read(kernel, BLOCK_SIZE as u64, &mut buf).unwrap(), 4);
    assert_eq!(buf, [7; 4]);
    s.write(&root(), kernel, 0, b"x").unwrap();
    assert_eq!(s.usage().used_blocks, 2);
    assert_eq!(s.getattr(a.ino).unwrap().nlink, 0);
    s.drop_lookups(a.ino, 1);
    assert_eq!(err(s.getattr(a.ino)), Errno::ENOENT);
    assert_eq!(s.usage().used_blocks, 0);
    assert_eq!(s.usage().inodes, 1);
}

#[test]
fn deleting_files_returns_memory_to_the_os() {
    let s = store();
    for i in 0..20u32 {
        let name = format!("f{i}");
        mkfile(
            &s,
            &root(),
            ROOT_INO,
            name.as_bytes(),
            0o644,
            &[1u8; 100_000],
        );
    }
    let u = s.usage();
    assert_eq!(u.used_blocks, 20 * 25);
    assert!(u.slabs_mapped >= 8);
    for i in 0..20u32 {
        s.unlink(&root(), ROOT_INO, format!("f{i}").as_bytes())
            .unwrap();
    }
    let u = s.usage();
    assert_eq!((u.used_blocks, u.slabs_mapped, u.inodes), (0, 0, 1));
    // Kept for reuse a while, then unmapped.
    assert!(u.slabs_idle >= 8);
    let later = std::time::Instant::now() + crate::IDLE_DECAY;
    assert_eq!(s.release_idle_memory(later), None);
    assert_eq!(s.usage().slabs_idle, 0);
}

#[test]
fn write_past_capacity_is_short_then_enospc_then_recovers() {
    // Four blocks of data, one for the file's metadata.
    let s = Store::new(5 * BLOCK_SIZE as u64);
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    let w = s.write(&root(), fh, 100, &[3u8; 6 * BLOCK_SIZE]).unwrap();
    assert_eq!(w.len, 4 * BLOCK_SIZE - 100);
    assert_eq!(s.getattr(a.ino).unwrap().size, 4 * BLOCK_SIZE as u64);
    assert_eq!(
        err(s.write(&root(), fh, 4 * BLOCK_SIZE as u64, b"x")),
        Errno::ENOSPC
    );
    // Overwriting allocated blocks still works.
    assert_eq!(s.write(&root(), fh, 0, b"ok").unwrap().len, 2);
    let st = s.statfs();
    assert_eq!((st.blocks, st.bfree, st.bavail), (5, 0, 0));
    let set = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    s.setattr(&root(), a.ino, &set, Some(fh.into())).unwrap();
    assert_eq!(s.write(&root(), fh, 0, &[1u8; 8192]).unwrap().len, 8192);
    s.release(fh).unwrap();
    assert_eq!(s.statfs().bfree, 2);
}

#[test]
fn inode_limit_gives_enospc() {
    let s = Store::with_limits(64 * MIB, 1024);
    let st = s.statfs();
    assert_eq!((st.files, st.ffree), (1024, 1023));
    for i in 0..1023u32 {
        s.mknod(
            &root(),
            ROOT_INO,
            format!("n{i}").as_bytes(),
            libc::S_IFIFO | 0o644,
            0,
        )
        .unwrap();
    }
    let r = s.mknod(&root(), ROOT_INO, b"more", libc::S_IFREG | 0o644, 0);
    assert_eq!(err(r), Errno::ENOSPC);
    assert_eq!(s.statfs().ffree, 0);
    s.unlink(&root(), ROOT_INO, b"n0").unwrap();
    s.mkdir(&root(), ROOT_INO, b"more", 0o755).unwrap();
    assert_eq!(s.statfs().namelen, 255);
    assert_eq!(s.statfs().bsize, 4096);
}

#[test]
fn huge_offsets_do_not_overflow() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    assert_eq!(err(s.write(&root(), fh, u64::MAX, b"x")), Errno::EINVAL);
    // Like rw_verify_area: offset + len beyond loff_t is EINVAL.
    assert_eq!(
        err(s.write(&root(), fh, MAX_FILE_SIZE, b"x")),
        Errno::EINVAL
    );
    assert_eq!(
        err(s.write(&root(), fh, MAX_FILE_SIZE - 2, b"xyz")),
        Errno::EINVAL
    );
    let w = s.write(&root(), fh, MAX_FILE_SIZE - 2, b"xy").unwrap();
    assert_eq!(w.len, 2);
    assert_eq!(s.getattr(a.ino).unwrap().size, MAX_FILE_SIZE);
    assert_eq!(err(s.read(fh, u64::MAX, &mut [0u8; 4])), Errno::EINVAL);
    assert_eq!(
        err(s.read(fh, MAX_FILE_SIZE - 2, &mut [0u8; 4])),
        Errno::EINVAL
    );
    assert_eq!(s.read(fh, MAX_FILE_SIZE - 2, &mut [0u8; 2]).unwrap(), 2);
    assert_eq!(
        err(s.fallocate(&root(), fh, MAX_FILE_SIZE - 1, 10, 0)),
        Errno::EFBIG
    );
    assert_eq!(
        err(s.fallocate(&root(), fh, u64::MAX, 10, 0)),
        Errno::EINVAL
    );
    assert_eq!(
        s.lseek(fh, MAX_FILE_SIZE - 10, libc::SEEK_DATA).unwrap(),
        MAX_FILE_SIZE - 10
    );
    s.release(fh).unwrap();
    s.unlink(&root(), ROOT_INO, b"f").unwrap();
    assert_eq!(s.usage().used_blocks, 0);
}

#[test]
fn fallocate_allocates_zeroed_blocks_and_punch_frees_them() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.fallocate(&root(), fh, 0, 3 * 4096, 0).unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (3 * 4096, 24));
    s.fallocate(&root(), fh, 5 * 4096, 4096, libc::FALLOC_FL_KEEP_SIZE)
        .unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (3 * 4096, 32));
    s.write(&root(), fh, 0, &[7u8; 3 * 4096]).unwrap();
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    s.fallocate(&root(), fh, 100, 2 * 4096, punch).unwrap();
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (3 * 4096, 24));
    let mut buf = vec![0u8; 3 * 4096];
    s.read(fh, 0, &mut buf).unwrap();
    assert!(buf[..100].iter().all(|&b| b == 7));
    assert!(buf[100..8292].iter().all(|&b| b == 0));
    assert!(buf[8292..].iter().all(|&b| b == 7));
    assert_eq!(
        err(s.fallocate(&root(), fh, 0, 10, libc::FALLOC_FL_PUNCH_HOLE)),
        Errno::EOPNOTSUPP
    );
    let zero = libc::FALLOC_FL_ZERO_RANGE;
    assert_eq!(
        err(s.fallocate(&root(), fh, 0, 10, zero)),
        Errno::EOPNOTSUPP
    );
    assert_eq!(err(s.fallocate(&root(), fh, 0, 0, 0)), Errno::EINVAL);
    let ro = s.open(&root(), a.ino, libc::O_RDONLY).unwrap();
    assert_eq!(err(s.fallocate(&root(), ro, 0, 10, 0)), Errno::EBADF);
    s.release(ro).unwrap();
    s.release(fh).unwrap();
}

#[test]
fn fallocate_respects_capacity_all_or_nothing() {
    // Four blocks of data, one for the file's metadata.
    let s = Store::new(5 * BLOCK_SIZE as u64);
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    s.write(&root(), fh, 0, b"x").unwrap();
    assert_eq!(err(s.fallocate(&root(), fh, 0, 5 * 4096, 0)), Errno::ENOSPC);
    let at = s.getattr(a.ino).unwrap();
    assert_eq!((at.size, at.blocks), (1, 8));
    s.fallocate(&root(), fh, 0, 4 * 4096, 0).unwrap();
    assert_eq!(s.statfs().bfree, 0);
    s.release(fh).unwrap();
}

#[test]
fn seek_data_and_hole_follow_allocated_blocks() {
    let s = store();
    let (_, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    // [hole 0..8K][data 8K..12K][hole 12K..20K][data 20K..20K+10]
    s.write(&root(), fh, 8192, &[1u8; 4096]).unwrap();
    s.write(&root(), fh, 20480, &[1u8; 10]).unwrap();
    let d = |o| s.lseek(fh, o, libc::SEEK_DATA);
    let h = |o| s.lseek(fh, o, libc::SEEK_HOLE);
    assert_eq!(d(0), Ok(8192));
    assert_eq!(d(9000), Ok(9000));
    assert_eq!(d(12288), Ok(20480));
    assert_eq!(h(0), Ok(0));
    assert_eq!(h(8192), Ok(12288));
    assert_eq!(h(20480), Ok(20490));
    assert_eq!(d(20490), Err(Errno::ENXIO));
    assert_eq!(h(20490), Err(Errno::ENXIO));
    assert_eq!(s.lseek(fh, 0, libc::SEEK_SET), Err(Errno::EINVAL));
    // fallocated but never written blocks are holes for SEEK_DATA (tmpfs).
    s.fallocate(&root(), fh, 0, 4096, libc::FALLOC_FL_KEEP_SIZE)
        .unwrap();
    assert_eq!(d(0), Ok(8192));
    assert_eq!(h(0), Ok(0));
    s.write(&root(), fh, 10, b"x").unwrap();
    assert_eq!(d(0), Ok(0));
    assert_eq!(h(0), Ok(4096));
    s.release(fh).unwrap();
}

#[test]
fn fallocate_on_non_regular_files() {
    let s = store();
    let fh = s.opendir(&root(), ROOT_INO).unwrap();
    assert_eq!(err(s.fallocate(&root(), fh, 0, 10, 0)), Errno::EBADF);
    assert_eq!(err(s.lseek(fh, 0, libc::SEEK_DATA)), Errno::EINVAL);
    s.releasedir(fh).unwrap();
}

#[test]
fn copy_file_range_copies_data_and_keeps_holes() {
    let s = store();
    let r = root();
    let (src, fin) = s.create(&r, ROOT_INO, b"a", 0o644, libc::O_RDWR).unwrap();
    s.write(&r, fin, 0, &[1u8; 4096]).unwrap();
    s.write(&r, fin, 3 * 4096, &[2u8; 100]).unwrap();
    let (dst, fout) = s.create(&r, ROOT_INO, b"b", 0o644, libc::O_RDWR).unwrap();
    let n = s.copy_file_range(&r, fin, 0, fout, 0, 1 << 30).unwrap();
    assert_eq!(n, 3 * 4096 + 100);
    assert_eq!(read_all(&s, dst.ino), read_all(&s, src.ino));
    assert_eq!(s.getattr(dst.ino).unwrap().blocks, 16);
    assert_eq!(s.copy_file_range(&r, fin, 1 << 20, fout, 0, 10).unwrap(), 0);
    // Huge lengths (as cp passes) are fine; only a wrap is EOVERFLOW.
    let n = s
        .copy_file_range(&r, fin, 100, fout, 0, i64::MAX as u64)
        .unwrap();
    assert_eq!(n, 3 * 4096);
    let r2 = s.copy_file_range(&r, fin, 100, fout, 0, u64::MAX);
    assert_eq!(err(r2), Errno::EOVERFLOW);
    // Same file: overlapping ranges are EINVAL, disjoint ones work.
    assert_eq!(
        err(s.copy_file_range(&r, fin, 0, fin, 10, 100)),
        Errno::EINVAL
    );
    assert_eq!(
        s.copy_file_range(&r, fin, 0, fin, 20000, 4096).unwrap(),
        4096
    );
    let mut buf = [0u8; 4096];
    s.read(fin, 20000, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 1));
    let ro = s.open(&r, dst.ino, libc::O_RDONLY).unwrap();
    assert_eq!(err(s.copy_file_range(&r, fin, 0, ro, 0, 10)), Errno::EBADF);
    let d = s.opendir(&r, ROOT_INO).unwrap();
    assert_eq!(err(s.copy_file_range(&r, d, 0, fout, 0, 10)), Errno::EISDIR);
    for fh in [fin, fout, ro, d] {
        s.release(fh).unwrap();
    }
}

#[test]
fn write_acked_tells_the_outcome_once_and_never_for_an_error() {
    let s = Store::new(5 * BLOCK_SIZE as u64);
    let (_, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    let mut told = Vec::new();
    let w = s
        .write_acked(&root(), fh, 100, &[3u8; 6 * BLOCK_SIZE][..], false, |w| {
            told.push(w)
        })
        .unwrap();
    assert_eq!(w.len, 4 * BLOCK_SIZE - 100, "short at capacity");
    assert_eq!(told, [w]);
    told.clear();
    let full = s.write_acked(&root(), fh, 4 * BLOCK_SIZE as u64, &b"x"[..], false, |w| {
        told.push(w)
    });
    assert_eq!(err(full), Errno::ENOSPC);
    assert!(told.is_empty(), "an error is not acknowledged: {told:?}");
}

#[test]
fn a_reader_during_an_acknowledged_write_waits_for_its_bytes() {
    let s = store();
    let (a, fh) = s
        .create(&root(), ROOT_INO, b"f", 0o644, libc::O_RDWR)
        .unwrap();
    let data = vec![0x5au8; 8 << 20];
    std::thread::scope(|scope| {
        let mut reader = None;
        s.write_acked(&root(), fh, 0, &data[..], false, |w| {
            assert_eq!(w.len, data.len());
            // Acknowledged, not yet copied: a reader must wait for the copy.
            reader = Some(scope.spawn(|| {
                let mut buf = vec![0u8; 8 << 20];
                let n = s.read(FileRef::Inode(a.ino), 0, &mut buf[..]).unwrap();
                (n, buf)
            }));
        })
        .unwrap();
        let (n, buf) = reader.expect("acknowledged").join().unwrap();
        assert_eq!(n, data.len());
        assert!(buf == data, "the reader saw bytes before they were copied");
    });
    s.release(fh).unwrap();
}
