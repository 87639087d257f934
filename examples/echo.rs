//! Goroutine-per-connection echo server: the whole of Go's netpoller model in thirty lines.
//!
//! Run: `cargo run --release --example echo -- 127.0.0.1:9008` (workers from `GONET_PROCS`).
//! It backs off when out of descriptors and logs per-connection errors instead of dying.

use std::io::{self, Read, Write};
use std::time::Duration;

use gonet::net::{TcpListener, TcpStream};

/// Echoes until the peer closes. Reads go to a small buffer on the goroutine's stack; only a
/// connection whose reads fill it (bulk traffic) gets a 64 KiB heap buffer. So an idle or
/// request/response connection holds no heap buffer: its memory is its stack page, and the
/// bytes it echoes stay in cache lines the goroutine already owns.
pub fn serve(mut conn: TcpStream) -> io::Result<()> {
    let mut small = [0u8; 256];
    let mut big: Vec<u8> = Vec::new();
    loop {
        let buf: &mut [u8] = if big.is_empty() { &mut small } else { &mut big };
        let n = conn.read(buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
        if n == buf.len() && big.is_empty() {
            big = vec![0u8; 64 * 1024];
        }
    }
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9008".to_string());
    gonet::run(move || {
        let ln = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("echo: cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
        eprintln!("echo: listening on {}", ln.local_addr().expect("bound listener has an address"));
        let mut backoff = Duration::from_millis(5);
        loop {
            match ln.accept() {
                Ok((conn, peer)) => {
                    backoff = Duration::from_millis(5);
                    gonet::go(move || {
                        if let Err(e) = serve(conn) {
                            if e.kind() != io::ErrorKind::ConnectionReset {
                                eprintln!("echo: {peer}: {e}");
                            }
                        }
                    });
                }
                Err(e)
                    if matches!(
                        gonet::net::raw_os_error(&e),
                        Some(libc::EMFILE | libc::ENFILE)
                    ) =>
                {
                    eprintln!("echo: accept: {e}; retrying in {backoff:?}");
                    gonet::time::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => eprintln!("echo: accept: {e}"),
            }
        }
    });
}
