//! Readiness for systemd (`Type=notify`): the `sd_notify` protocol written
//! by hand, one datagram of `KEY=VALUE` lines to the socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`).
//! Without that variable nothing is sent.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `"READY=1"`) to the service manager, if there is one.
pub fn notify(state: &str) -> io::Result<()> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let bytes = target.as_encoded_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(&target)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_the_notify_socket() {
        let dir = std::env::temp_dir().join(format!("btfuse-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        // No other test of this binary reads NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        let sent = notify("READY=1\nMAINPID=42");
        std::env::remove_var("NOTIFY_SOCKET");
        sent.unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nMAINPID=42");
        assert!(notify("READY=1").is_ok(), "no NOTIFY_SOCKET: nothing to do");
    }
}
