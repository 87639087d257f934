//! hyper on goroutines: an HTTP/1.1 and HTTP/2 (prior-knowledge h2c) server whose handlers may
//! block goroutine-style — each connection (and each HTTP/2 stream) runs on a goroutine.
//!
//! Run: `cargo run --release --features hyper --example hyper_hello -- 127.0.0.1:8080`
//! (workers from `GONET_PROCS`). Try `curl http://127.0.0.1:8080/`,
//! `curl --http2-prior-knowledge http://127.0.0.1:8080/sleep`, `curl .../next`.
//!
//! With `--tls` (features `hyper,rustls`: `cargo run --release --features hyper,rustls
//! --example hyper_hello -- --tls 127.0.0.1:8443`) it serves HTTPS, HTTP/2 or HTTP/1.1 by
//! ALPN, with a self-signed certificate for `localhost` and `127.0.0.1` made at start and
//! written (PEM) to the path it prints: `curl -k https://127.0.0.1:8443/`, `curl -k --http2
//! ...`, or `curl --cacert PATH ...`, `http_get --cacert PATH https://127.0.0.1:8443/`.
//!
//! Routes: `/` answers `Hello, World!`; `/sleep` sleeps 100 ms with `gonet::time::sleep`
//! before answering; `/next` receives the next number from a counter goroutine over a gonet
//! channel. The header-read timeout is 10 s. Ctrl-C (or SIGTERM) shuts the server down
//! gracefully, letting in-flight requests finish for up to 5 s.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use gonet::hyper::{HttpService, Server};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};

/// TLS: a rustls server config (features `hyper,rustls`), or nothing without `rustls`.
#[cfg(feature = "rustls")]
pub type Tls = std::sync::Arc<rustls::ServerConfig>;
#[cfg(not(feature = "rustls"))]
pub type Tls = std::convert::Infallible;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tls = args.iter().position(|a| a == "--tls").map(|i| args.remove(i)).is_some();
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:8080".into());
    #[allow(unreachable_code)] // without rustls, `Tls` has no values: `tls_config` exits
    let tls: Option<Tls> = if tls { Some(tls_config()) } else { None };
    // Every thread the runtime starts inherits this mask, so the signals wait for `sigwait`.
    // SAFETY: plain libc calls on a local signal set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &shutdown_signals(), std::ptr::null_mut()) };
    gonet::run(move || {
        let ln = gonet::net::TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("hyper_hello: listen {addr}: {e}");
            std::process::exit(1)
        });
        let server = server();
        let handle = server.handle();
        gonet::go(move || {
            wait_for_signal();
            let clean = handle.shutdown(Instant::now() + Duration::from_secs(5));
            eprintln!("hyper_hello: shut down ({})", if clean { "drained" } else { "forced" });
        });
        let what =
            if tls.is_some() { "HTTPS: h2 and HTTP/1.1 by ALPN" } else { "HTTP/1.1 and h2c" };
        println!("hyper_hello: listening on {addr} ({what})");
        let with_tls = tls.is_some();
        serve(&server, ln, tls).unwrap();
        if with_tls {
            let _ = std::fs::remove_file(cert_path());
        }
    });
}

/// Where `--tls` writes the certificate's PEM.
fn cert_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hyper_hello-{}.pem", std::process::id()))
}

/// The server: hyper's defaults, a 10 s header-read timeout.
pub fn server() -> Server {
    let mut server = Server::new();
    server.builder().http1().header_read_timeout(Duration::from_secs(10));
    server
}

/// Serves the routes (see the top of this file) on `ln` until `server` is shut down: over TLS
/// with `tls`, else plain HTTP/1.1 and h2c.
pub fn serve(
    server: &Server,
    ln: gonet::net::TcpListener,
    tls: Option<Tls>,
) -> std::io::Result<()> {
    let svc = service();
    match tls {
        None => server.serve(ln, svc),
        #[cfg(feature = "rustls")]
        Some(cfg) => server.serve_tls(ln, cfg, svc),
        #[cfg(not(feature = "rustls"))]
        Some(never) => match never {},
    }
}

/// The routes.
pub fn service() -> impl HttpService + Clone {
    // A goroutine hands out numbers over an unbuffered channel.
    let (tx, rx) = gonet::chan::bounded::<u64>(0);
    gonet::go(move || (0..).try_for_each(|n| tx.send(n)));
    service_fn(move |req: Request<Incoming>| {
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
    })
}

/// A TLS config with a self-signed certificate for `localhost` and `127.0.0.1`, made now; its
/// PEM goes to a file in the temporary directory (printed) for clients to trust.
#[cfg(feature = "rustls")]
pub fn tls_config() -> Tls {
    let (cfg, pem) = self_signed();
    let path = cert_path();
    match std::fs::write(&path, pem) {
        Ok(()) => println!("hyper_hello: self-signed certificate in {}", path.display()),
        Err(e) => eprintln!("hyper_hello: writing {}: {e}", path.display()),
    }
    cfg
}

#[cfg(not(feature = "rustls"))]
fn tls_config() -> Tls {
    eprintln!("hyper_hello: --tls needs the rustls feature (--features hyper,rustls)");
    std::process::exit(2)
}

/// A server config with a fresh self-signed certificate for `localhost` and `127.0.0.1` (no
/// ALPN protocols set: `serve_tls` offers h2 and http/1.1), and the certificate's PEM.
#[cfg(feature = "rustls")]
pub fn self_signed() -> (Tls, String) {
    use rustls::pki_types::PrivatePkcs8KeyDer;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let key = PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth().with_single_cert(vec![ck.cert.der().clone()], key.into())
        })
        .expect("TLS config");
    (std::sync::Arc::new(cfg), ck.cert.pem())
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
