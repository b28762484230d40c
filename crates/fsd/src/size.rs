//! Parsing of human-friendly byte sizes (`--size 1G`, `size=50%`).
//!
//! Units are explicit: `K`/`M`/`G`/`T` alone or with `iB` are powers of
//! 1024 (as tmpfs reads them), `KB`/`MB`/`GB`/`TB` are powers of 1000 (as
//! disks are sold and `df -H` prints). `N%` is that share of the machine's
//! RAM, as tmpfs' `size=N%`.

use std::fmt;

/// A `--size` value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSize(String);

impl fmt::Display for BadSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid size {:?}: expected BYTES, a number with K, M, G or T (or KiB..TiB: \
             powers of 1024) or KB, MB, GB or TB (powers of 1000), or N% of RAM (1-100)",
            self.0
        )
    }
}

impl std::error::Error for BadSize {}

/// A size as written: bytes, or a share of RAM resolved at mount time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSpec {
    /// This many bytes.
    Bytes(u64),
    /// This percentage (1..=100) of the machine's RAM.
    PercentOfRam(u8),
}

impl SizeSpec {
    /// The size in bytes, given the machine's RAM in bytes.
    pub fn bytes(self, ram: u64) -> u64 {
        match self {
            SizeSpec::Bytes(b) => b,
            SizeSpec::PercentOfRam(p) => (u128::from(ram) * u128::from(p) / 100) as u64,
        }
    }
}

/// The machine's RAM in bytes (`sysinfo`), 0 when unknown.
pub fn total_ram() -> u64 {
    // SAFETY: sysinfo is plain data; all-zero is a valid value to fill.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable sysinfo struct.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return 0;
    }
    info.totalram.saturating_mul(u64::from(info.mem_unit))
}

/// Parses `4096`, `64K`, `512M`, `1G`, `1GiB`, `2T` (powers of 1024),
/// `1GB`, `500MB` (powers of 1000) and `50%` (of RAM).
pub fn parse_size(text: &str) -> Result<SizeSpec, BadSize> {
    let bad = || BadSize(text.to_string());
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        return match p.parse::<u8>() {
            Ok(p @ 1..=100) => Ok(SizeSpec::PercentOfRam(p)),
            _ => Err(bad()),
        };
    }
    let (t, base) = if let Some(t) = t.strip_suffix("iB") {
        (t, 1024u64)
    } else if let Some(t) = t.strip_suffix(['B', 'b']) {
        // `512B` is bytes; `1GB` is decimal.
        (
            t,
            if t.ends_with(char::is_alphabetic) {
                1000
            } else {
                1
            },
        )
    } else {
        (t, 1024)
    };
    let (digits, power) = match t.chars().last() {
        Some(c) if c.is_ascii_digit() => (t, 0),
        Some('k' | 'K') => (&t[..t.len() - 1], 1),
        Some('m' | 'M') => (&t[..t.len() - 1], 2),
        Some('g' | 'G') => (&t[..t.len() - 1], 3),
        Some('t' | 'T') => (&t[..t.len() - 1], 4),
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(base.pow(power))
        .filter(|&v| v > 0)
        .map(SizeSpec::Bytes)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Result<u64, BadSize> {
        parse_size(text).map(|s| s.bytes(0))
    }

    #[test]
    fn binary_suffixes_are_powers_of_1024() {
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("64K"), Ok(64 << 10));
        assert_eq!(bytes("512M"), Ok(512 << 20));
        assert_eq!(bytes("1G"), Ok(1 << 30));
        assert_eq!(bytes("1GiB"), Ok(1 << 30));
        assert_eq!(bytes("2t"), Ok(2 << 40));
        assert_eq!(bytes("512B"), Ok(512));
    }

    #[test]
    fn byte_suffixes_are_powers_of_1000() {
        assert_eq!(bytes("1GB"), Ok(1_000_000_000));
        assert_eq!(bytes("500MB"), Ok(500_000_000));
        assert_eq!(bytes("4kB"), Ok(4_000));
        assert_eq!(bytes("2TB"), Ok(2_000_000_000_000));
    }

    #[test]
    fn percent_is_a_share_of_ram() {
        assert_eq!(parse_size("50%"), Ok(SizeSpec::PercentOfRam(50)));
        assert_eq!(parse_size("50%").unwrap().bytes(8 << 30), 4 << 30);
        assert!(parse_size("0%").is_err());
        assert!(parse_size("101%").is_err());
        assert!(parse_size("%").is_err());
        assert!(total_ram() > 0);
    }

    #[test]
    fn rejects_garbage_zero_and_overflow() {
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("99999999999T").is_err());
        let msg = parse_size("1Q").unwrap_err().to_string();
        assert!(msg.contains("powers of 1000"), "{msg}");
    }
}
