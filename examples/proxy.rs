//! TCP proxy: each client connection is joined to a new connection to the backend, and bytes
//! move between them with `splice(2)` (`gonet::net::Splicer`), never entering user space.
//! A connection idle in both directions for the idle timeout is closed; the timeout is a read
//! deadline moved forward with each chunk.
//!
//! Run: `cargo run --release --example proxy -- LISTEN_ADDR BACKEND_ADDR [IDLE_SECS]`
//! (default idle timeout 60 s). `PROXY_COPY=rw` copies through a 64 KiB user buffer with
//! read/write instead, for comparison.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{Dialer, Splicer, TcpListener, TcpStream};

/// What both directions of one proxied connection share: the time of the last byte moved
/// (ms since `start`), so a direction that waited out its deadline can tell whether the
/// other one was busy meanwhile.
struct Link {
    start: Instant,
    last_ms: AtomicU64,
    idle: Duration,
}

impl Link {
    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    /// Whether neither direction moved a byte for the idle timeout.
    fn idle_out(&self) -> bool {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last) >= self.idle
    }
}

/// Moves `src` → `dst` until `src`'s end of stream (then half-closes `dst`), an error, or the
/// link's idle timeout (then closes both, which also ends the other direction).
fn pipe(src: &TcpStream, dst: &TcpStream, link: &Link, rw: bool) -> io::Result<u64> {
    let mut sp = if rw { None } else { Some(Splicer::new()?) };
    let mut buf = if rw { vec![0u8; 64 * 1024] } else { Vec::new() };
    let mut total = 0u64;
    loop {
        src.set_read_deadline(Some(Instant::now() + link.idle))?;
        let r = match &mut sp {
            Some(sp) => sp.copy_chunk(dst, src),
            None => (|| {
                let n = (&*src).read(&mut buf)?;
                (&*dst).write_all(&buf[..n])?;
                Ok(n)
            })(),
        };
        match r {
            Ok(0) => {
                let _ = dst.shutdown(Shutdown::Write);
                return Ok(total);
            }
            Ok(n) => {
                total += n as u64;
                link.touch();
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && !link.idle_out() => continue,
            Err(e) => {
                let _ = src.close();
                let _ = dst.close();
                return Err(e);
            }
        }
    }
}

fn serve(client: TcpStream, backend: &str, idle: Duration, rw: bool) -> io::Result<()> {
    let up =
        Dialer { timeout: Some(Duration::from_secs(10)), ..Default::default() }.dial(backend)?;
    let _ = (client.set_nodelay(true), up.set_nodelay(true));
    let link = Arc::new(Link { start: Instant::now(), last_ms: AtomicU64::new(0), idle });
    let (client, up) = (Arc::new(client), Arc::new(up));
    let (c2, u2, l2) = (client.clone(), up.clone(), link.clone());
    let back = gonet::go(move || pipe(&u2, &c2, &l2, rw));
    let fwd = pipe(&client, &up, &link, rw);
    let back = back.join().unwrap_or_else(|_| Err(io::Error::other("copy goroutine panicked")));
    fwd.and(back).map(|_| ())
}

/// Accepts clients on `ln` forever, proxying each to `backend`.
pub fn run_proxy(ln: TcpListener, backend: Arc<str>, idle: Duration, rw: bool) {
    loop {
        match ln.accept() {
            Ok((c, peer)) => {
                let backend = backend.clone();
                gonet::go(move || {
                    if let Err(e) = serve(c, &backend, idle, rw) {
                        if !gonet::net::is_closed(&e) && e.kind() != io::ErrorKind::TimedOut {
                            eprintln!("proxy: {peer}: {e}");
                        }
                    }
                });
            }
            Err(e) => {
                eprintln!("proxy: {e}");
                gonet::time::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(backend)) = (args.next(), args.next()) else {
        eprintln!("usage: proxy LISTEN_ADDR BACKEND_ADDR [IDLE_SECS]");
        std::process::exit(2);
    };
    let idle = Duration::from_secs(args.next().and_then(|s| s.parse().ok()).unwrap_or(60));
    let rw = std::env::var("PROXY_COPY").is_ok_and(|v| v == "rw");
    gonet::run(move || {
        let ln = TcpListener::bind(listen.as_str()).unwrap_or_else(|e| {
            eprintln!("proxy: {e}");
            std::process::exit(1);
        });
        let mode = if rw { "read/write" } else { "splice" };
        eprintln!("proxy: {} -> {backend} ({mode}, idle {idle:?})", ln.local_addr().unwrap());
        run_proxy(ln, backend.into(), idle, rw);
    });
}
