//! `fopen`/`fdopen` mode strings, parsed exactly as glibc 2.36 parses
//! them (`libio/fileops.c`, `libio/iofdopen.c`). Pure logic, unit tested
//! with std; used by `stdio`.

use core::ffi::c_int;

/// glibc's `_IO_NO_READS` stream flag.
pub const NO_READS: c_int = 0x0004;
/// glibc's `_IO_NO_WRITES` stream flag.
pub const NO_WRITES: c_int = 0x0008;
/// glibc's `_IO_IS_APPENDING` stream flag.
pub const IS_APPENDING: c_int = 0x1000;

/// A parsed `fopen` mode.
#[derive(Clone, Copy)]
pub struct Mode {
    /// `open` flags, as glibc's `fopen` passes them.
    pub oflags: c_int,
    /// glibc's `_IO_NO_READS | _IO_NO_WRITES | _IO_IS_APPENDING` bits.
    pub rw: c_int,
    /// `"a"` without `+`: glibc moves the offset to the end at once.
    pub seek_end: bool,
    /// A `",ccs="` conversion was asked for.
    pub ccs: bool,
}

impl Mode {
    /// The mode `fopencookie` needs for the same stream flags.
    pub fn cookie_mode(&self) -> &'static core::ffi::CStr {
        let read = self.rw & NO_READS == 0;
        let write = self.rw & NO_WRITES == 0;
        match (self.rw & IS_APPENDING != 0, read, write) {
            (true, true, _) => c"a+",
            (true, false, _) => c"a",
            (false, true, true) => c"r+",
            (false, true, false) => c"r",
            _ => c"w",
        }
    }

    /// `O_CLOEXEC` when the mode has `e`.
    pub fn cloexec(&self) -> c_int {
        self.oflags & libc::O_CLOEXEC
    }
}

/// Parses an `fopen`/`freopen` mode exactly as glibc 2.36's
/// `_IO_new_file_fopen` does: `r`, `w` or `a`, then up to six of `+`,
/// `x` (`O_EXCL`), `e` (`O_CLOEXEC`), `b`, `m`, `c`, other characters
/// ignored; `None` when the first character is none of `rwa` (`EINVAL`).
pub fn parse_fopen(mode: &[u8]) -> Option<Mode> {
    let (mut omode, mut oflags, mut rw) = match mode.first()? {
        b'r' => (libc::O_RDONLY, 0, NO_WRITES),
        b'w' => (libc::O_WRONLY, libc::O_CREAT | libc::O_TRUNC, NO_READS),
        b'a' => (
            libc::O_WRONLY,
            libc::O_CREAT | libc::O_APPEND,
            NO_READS | IS_APPENDING,
        ),
        _ => return None,
    };
    let mut last = 0;
    for (i, &c) in mode.iter().enumerate().take(7).skip(1) {
        match c {
            b'+' => {
                omode = libc::O_RDWR;
                rw &= IS_APPENDING;
                last = i;
            }
            b'x' => {
                oflags |= libc::O_EXCL;
                last = i;
            }
            b'b' => last = i,
            b'e' => oflags |= libc::O_CLOEXEC,
            _ => {}
        }
    }
    let rest = &mode[last + 1..];
    Some(Mode {
        oflags: omode | oflags,
        rw,
        seek_end: rw & (IS_APPENDING | NO_READS) == IS_APPENDING | NO_READS,
        ccs: rest.windows(5).any(|w| w == b",ccs="),
    })
}

/// Parses an `fdopen` mode as glibc 2.36's `_IO_new_fdopen` does: `r`,
/// `w` or `a`, and `+` among the next four characters.
pub fn parse_fdopen(mode: &[u8]) -> Option<Mode> {
    let mut m = parse_fopen(&mode[..mode.len().min(1)])?;
    for &c in mode.iter().take(5).skip(1) {
        if c == b'+' {
            m.rw &= IS_APPENDING;
            break;
        }
    }
    m.seek_end = m.rw & (IS_APPENDING | NO_READS) == IS_APPENDING | NO_READS;
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Mode {
        parse_fopen(s.as_bytes()).expect(s)
    }

    #[test]
    fn fopen_modes_give_glibcs_open_flags_and_stream_flags() {
        use libc::{O_APPEND, O_CLOEXEC, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};
        for (s, oflags, rw, cookie, seek_end) in [
            ("r", O_RDONLY, NO_WRITES, "r", false),
            ("rb", O_RDONLY, NO_WRITES, "r", false),
            ("r+", O_RDWR, 0, "r+", false),
            ("rb+", O_RDWR, 0, "r+", false),
            ("w", O_WRONLY | O_CREAT | O_TRUNC, NO_READS, "w", false),
            ("w+", O_RDWR | O_CREAT | O_TRUNC, 0, "r+", false),
            (
                "a",
                O_WRONLY | O_CREAT | O_APPEND,
                NO_READS | IS_APPENDING,
                "a",
                true,
            ),
            ("a+", O_RDWR | O_CREAT | O_APPEND, IS_APPENDING, "a+", false),
            (
                "wx",
                O_WRONLY | O_CREAT | O_TRUNC | O_EXCL,
                NO_READS,
                "w",
                false,
            ),
            ("re", O_RDONLY | O_CLOEXEC, NO_WRITES, "r", false),
            ("rt", O_RDONLY, NO_WRITES, "r", false),
            ("rm", O_RDONLY, NO_WRITES, "r", false),
            ("rc", O_RDONLY, NO_WRITES, "r", false),
        ] {
            let p = m(s);
            assert_eq!(p.oflags, oflags, "{s}");
            assert_eq!(p.rw, rw, "{s}");
            assert_eq!(p.cookie_mode().to_str().unwrap(), cookie, "{s}");
            assert_eq!(p.seek_end, seek_end, "{s}");
            assert!(!p.ccs, "{s}");
        }
    }

    #[test]
    fn only_the_first_seven_characters_count_as_glibc_reads_them() {
        // '+' at index 7 is past glibc's window: still read-only.
        assert_eq!(m("rbbbbbb+").oflags, libc::O_RDONLY);
        assert_eq!(m("rbbbbb+").oflags, libc::O_RDWR);
    }

    #[test]
    fn bad_first_characters_and_ccs_are_reported() {
        assert!(parse_fopen(b"").is_none());
        assert!(parse_fopen(b"x").is_none());
        assert!(parse_fopen(b"+r").is_none());
        assert!(m("r,ccs=UTF-8").ccs);
        assert!(m("w+b,ccs=UTF-8").ccs);
        assert!(!m("r,cs=x").ccs);
    }

    #[test]
    fn fdopen_modes_read_plus_within_five_characters() {
        let p = parse_fdopen(b"r+").unwrap();
        assert_eq!(p.rw, 0);
        assert_eq!(parse_fdopen(b"rbxm+").unwrap().rw, 0);
        assert_eq!(parse_fdopen(b"rbxme+").unwrap().rw, NO_WRITES);
        let a = parse_fdopen(b"a").unwrap();
        assert_eq!(a.rw, NO_READS | IS_APPENDING);
        assert!(a.seek_end);
        assert!(!parse_fdopen(b"a+").unwrap().seek_end);
        assert!(parse_fdopen(b"q").is_none());
    }
}
