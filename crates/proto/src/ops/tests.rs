//! Round trips through the table: encoding, dispatch, replies, refusals.

use super::*;
use crate::wire::WireAttr;
use std::cell::Cell;

/// A handler that answers `Stat` and `Readlink` and fails the rest.
struct Echo {
    seen: Cell<Option<(u64, Vec<u8>)>>,
}

macro_rules! refuse {
    ($($m:ident: $t:ident -> $r:ty),* $(,)?) => {$(
        fn $m(&mut self, _: &$t, _: Paths<'_>, _: &mut Payload<'_>) -> Result<$r, Failure> {
            Err(Failure::Errno(EIO))
        }
    )*};
}

impl Handler for Echo {
    type Error = Failure;

    fn stat(&mut self, req: &Stat, p: Paths<'_>, _: &mut Payload<'_>) -> Result<StatOut, Failure> {
        self.seen.set(Some((req.base, p.path.to_vec())));
        if p.path == b"away" {
            return Err(Failure::Escaped);
        }
        Ok(StatOut {
            attr: WireAttr {
                ino: 42,
                size: u64::from(req.flags),
                ..Default::default()
            },
            stamp: 7,
            ..StatOut::default()
        })
    }

    fn readlink(
        &mut self,
        _: &Readlink,
        p: Paths<'_>,
        out: &mut Payload<'_>,
    ) -> Result<Done, Failure> {
        out.put(b"target/")?;
        out.put(p.path)?;
        Ok(Done {})
    }

    refuse! {
        fstat: Fstat -> StatOut, open: Open -> OpenOut, release: Release -> Done,
        read: Read -> ReadOut, write: Write -> WriteOut, readdir: Readdir -> ReaddirOut,
        access: Access -> Done, mkdir: Mkdir -> AttrOut, mknod: Mknod -> AttrOut,
        unlink: Unlink -> RemovedOut, rmdir: Rmdir -> Done, symlink: Symlink -> AttrOut,
        link: Link -> AttrOut, rename: Rename -> RemovedOut, setattr: SetAttr -> Done,
        fsync: Fsync -> Done, statfs: Statfs -> StatfsOut, lseek: Lseek -> OffsetOut,
        fallocate: Fallocate -> Done, copy_file_range: CopyFileRange -> CountOut,
        getxattr: Getxattr -> CountOut, setxattr: Setxattr -> Done,
        listxattr: Listxattr -> CountOut, removexattr: Removexattr -> Done,
        drop_handle_name: DropHandleName -> Done, dir_path: DirPath -> Done,
        open_list: OpenList -> OpenListOut, list: List -> ListOut,
        set_noatime: SetNoatime -> Done, kernel_open: KernelOpen -> Done,
        open_ahead: OpenAhead -> OpenAheadOut,
        open_inode: OpenInode -> OpenOut,
    }
}

fn echo() -> Echo {
    Echo {
        seen: Cell::new(None),
    }
}

fn round_trip<O: Operation>(
    h: &mut Echo,
    args: &O,
    path: &[u8],
    path2: &[u8],
) -> Result<(O::Reply, Vec<u8>), ReplyError> {
    let mut msg = vec![0u8; MAX_REQUEST];
    let n = encode_request(7, args, path, path2, &mut msg).expect("fits");
    let mut reply = vec![0u8; MAX_REPLY];
    let d = dispatch(h, &msg[..n], &mut reply).expect("well formed");
    assert_eq!(d.op, Some(O::OP));
    decode_reply::<O>(&reply[..d.len], 7).map(|(r, p)| (r, p.to_vec()))
}

#[test]
fn a_request_reaches_its_handler_and_the_reply_comes_back() {
    let mut h = echo();
    let (out, payload) = round_trip(
        &mut h,
        &Stat {
            base: 9,
            flags: 256,
            _pad: 0,
        },
        b"a/b",
        b"",
    )
    .expect("stat succeeds");
    assert_eq!((out.attr.ino, out.attr.size), (42, 256));
    assert!(payload.is_empty());
    assert_eq!(h.seen.take(), Some((9, b"a/b".to_vec())));
    let (_, payload) = round_trip(&mut h, &Readlink { base: 0 }, b"l", b"").unwrap();
    assert_eq!(payload, b"target/l");
}

#[test]
fn failures_keep_their_meaning() {
    let mut h = echo();
    let stat = Stat::default();
    assert_eq!(
        round_trip(&mut h, &stat, b"away", b"").unwrap_err(),
        ReplyError::Failed(Failure::Escaped)
    );
    assert_eq!(
        round_trip(&mut h, &Fstat { fh: 1 }, b"", b"").unwrap_err(),
        ReplyError::Failed(Failure::Errno(EIO))
    );
    assert_eq!(
        round_trip(&mut h, &stat, b"nul\0inside", b"").unwrap_err(),
        ReplyError::Failed(Failure::Errno(EINVAL))
    );
    assert_eq!(Failure::from_status(i32::MIN), Failure::Errno(EIO));
}

#[test]
fn the_encoding_is_byte_exact() {
    let mut msg = [0u8; 64];
    let args = Read {
        fh: 3,
        offset: 0x1000,
        len: 0x20,
    };
    let n = encode_request(5, &args, b"", b"", &mut msg).unwrap();
    let mut want = Vec::new();
    for word in [5u32, 5, 0, 0] {
        want.extend_from_slice(&word.to_ne_bytes());
    }
    for word in [3u64, 0x1000, 0x20] {
        want.extend_from_slice(&word.to_ne_bytes());
    }
    assert_eq!(&msg[..n], &want[..]);
}

#[test]
fn malformed_requests_are_refused() {
    let mut h = echo();
    let mut reply = vec![0u8; MAX_REPLY];
    let mut msg = vec![0u8; MAX_REQUEST];
    let n = encode_request(1, &Stat::default(), b"abc", b"", &mut msg).unwrap();
    // Cut short, or with bytes left over.
    for len in [0, 3, size_of::<RequestHeader>(), n - 1, n + 1] {
        assert!(
            dispatch(&mut h, &msg[..len], &mut reply).is_err(),
            "len {len}"
        );
    }
    // A second path that Stat does not take.
    let mut head: RequestHeader = decode(&msg).unwrap();
    head.path2_len = 1;
    msg[..size_of::<RequestHeader>()].copy_from_slice(bytes_of(&head));
    assert_eq!(
        dispatch(&mut h, &msg[..n + 1], &mut reply),
        Err(Malformed::BadPath)
    );
    // Paths the client could not have sent.
    assert_eq!(
        encode_request(1, &Fstat::default(), b"x", b"", &mut msg),
        None
    );
    let long = vec![b'a'; PATH_MAX + 1];
    assert_eq!(
        encode_request(1, &Stat::default(), &long, b"", &mut msg),
        None
    );
}

#[test]
fn unknown_opcodes_are_answered_enosys() {
    let mut h = echo();
    let head = RequestHeader {
        op: 999,
        seq: 3,
        ..Default::default()
    };
    let mut reply = vec![0u8; MAX_REPLY];
    let d = dispatch(&mut h, bytes_of(&head), &mut reply).unwrap();
    assert_eq!((d.op, d.status), (None, -ENOSYS));
    assert_eq!(
        decode_reply::<Fstat>(&reply[..d.len], 3).unwrap_err(),
        ReplyError::Failed(Failure::Errno(ENOSYS))
    );
}

#[test]
fn every_opcode_round_trips() {
    for (i, op) in Op::ALL.iter().enumerate() {
        assert_eq!(Op::from_u32(*op as u32), Some(*op));
        assert_eq!(*op as usize, i + 1, "opcodes are dense");
    }
    assert_eq!(Op::from_u32(0), None);
    assert_eq!(Op::from_u32(u32::MAX), None);
    assert_eq!(Op::CopyFileRange.name(), "copy_file_range");
    assert_eq!(OP_NAMES[Op::CopyFileRange as usize], "copy_file_range");
    assert_eq!(OP_NAMES.len(), Op::ALL.len() + 2);
}

#[test]
fn a_reply_to_another_request_is_refused() {
    let mut h = echo();
    let mut msg = vec![0u8; MAX_REQUEST];
    let n = encode_request(1, &Stat::default(), b"f", b"", &mut msg).unwrap();
    let mut reply = vec![0u8; MAX_REPLY];
    let d = dispatch(&mut h, &msg[..n], &mut reply).unwrap();
    assert_eq!(
        decode_reply::<Stat>(&reply[..d.len], 2).unwrap_err(),
        ReplyError::Malformed
    );
    assert_eq!(
        decode_reply::<Stat>(&reply[..d.len - 1], 1).unwrap_err(),
        ReplyError::Malformed
    );
}
