//! hyper on goroutines: an HTTP/1.1 and HTTP/2 (prior-knowledge h2c) server whose handlers may
//! block goroutine-style — each connection (and each HTTP/2 stream) runs on a goroutine.
//!
//! Run: `cargo run --release --features hyper --example hyper_hello -- 127.0.0.1:8080`
//! (workers from `GONET_PROCS`). Try `curl http://127.0.0.1:8080/`,
//! `curl --http2-prior-knowledge http://127.0.0.1:8080/sleep`, `curl .../next`.
//!
//! Routes: `/` answers `Hello, World!`; `/sleep` sleeps 100 ms with `gonet::time::sleep`
//! before answering; `/next` receives the next number from a counter goroutine over a gonet
//! channel. The header-read timeout is 10 s. Ctrl-C (or SIGTERM) shuts the server down
//! gracefully, letting in-flight requests finish for up to 5 s.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use gonet::hyper::Server;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    // Every thread the runtime starts inherits this mask, so the signals wait for `sigwait`.
    // SAFETY: plain libc calls on a local signal set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &shutdown_signals(), std::ptr::null_mut()) };
    gonet::run(move || {
        let ln = gonet::net::TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("hyper_hello: listen {addr}: {e}");
            std::process::exit(1)
        });
        // A goroutine hands out numbers over an unbuffered channel.
        let (tx, rx) = gonet::chan::bounded::<u64>(0);
        gonet::go(move || (0..).try_for_each(|n| tx.send(n)));

        let svc = service_fn(move |req: Request<Incoming>| {
            let rx = rx.clone();
            async move {
                let body = match req.uri().path() {
                    "/sleep" => {
                        gonet::time::sleep(Duration::from_millis(100)); // parks the goroutine
                        "slept 100ms\n".to_string()
                    }
                    "/next" => format!("{}\n", rx.recv().unwrap_or(0)),
                    _ => "Hello, World!\n".to_string(),
                };
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
            }
        });

        let mut server = Server::new();
        server.builder().http1().header_read_timeout(Duration::from_secs(10));
        let handle = server.handle();
        gonet::go(move || {
            wait_for_signal();
            let clean = handle.shutdown(Instant::now() + Duration::from_secs(5));
            eprintln!("hyper_hello: shut down ({})", if clean { "drained" } else { "forced" });
        });
        println!("hyper_hello: listening on {addr} (HTTP/1.1 and h2c)");
        server.serve(ln, svc).unwrap();
    });
}

/// SIGINT and SIGTERM.
fn shutdown_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage for sigemptyset to initialise.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks (on the blocking pool) until SIGINT or SIGTERM.
fn wait_for_signal() {
    gonet::blocking(|| {
        let mut sig = 0;
        // SAFETY: `sigwait` reads a valid set and writes one int.
        unsafe { libc::sigwait(&shutdown_signals(), &mut sig) };
    });
}
