//! How a request fails: the status a reply carries, a request that cannot
//! be decoded, a reply that is not the expected answer.

use super::EIO;
use crate::ESCAPED;

/// A failed request's status: a positive errno, or "not on the mount".
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The call fails with this errno.
    Errno(i32),
    /// The path left the mount: the client must call the real libc.
    Escaped,
}

impl Failure {
    /// The reply status that carries this failure.
    pub fn status(self) -> i32 {
        match self {
            Failure::Errno(e) => -e,
            Failure::Escaped => ESCAPED,
        }
    }

    /// The failure a non-zero reply status stands for (a status outside
    /// the errno range is a broken reply: `EIO`).
    pub fn from_status(status: i32) -> Failure {
        match status {
            ESCAPED => Failure::Escaped,
            s if (-4095..0).contains(&s) => Failure::Errno(-s),
            _ => Failure::Errno(EIO),
        }
    }
}

/// A request message that cannot be decoded: the daemon drops the channel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than its header, struct and paths, or longer.
    Truncated,
    /// A path longer than [`PATH_MAX`](crate::PATH_MAX), or a path the operation does not take.
    BadPath,
}

/// A reply that is not a success of the expected shape.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The operation failed.
    Failed(Failure),
    /// The reply does not match the request (wrong `seq`, too short).
    Malformed,
}
