//! Serving the statistics over HTTP (`btfuse mount --metrics`).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// How long a scraper may take to send its request or read the answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers every HTTP request on `listener`, whatever its path, with
/// `body()` (text in the Prometheus exposition format), from a thread of
/// its own.
pub fn serve(listener: TcpListener, body: impl Fn() -> String + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name("btfuse-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                if let Err(e) = answer_scrape(&body, &mut conn) {
                    log::debug!("metrics scrape failed: {e}");
                }
            }
        })?;
    Ok(())
}

/// Reads one HTTP request (its head only) and answers with the metrics.
fn answer_scrape(body: &dyn Fn() -> String, conn: &mut TcpStream) -> io::Result<()> {
    use std::io::{Read, Write};
    conn.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    conn.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = body();
    let reply = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(reply.as_bytes())
}
