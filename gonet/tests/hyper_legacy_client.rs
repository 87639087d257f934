//! hyper-util's pooled client (`hyper_util::client::legacy::Client`) on goroutines with
//! `gonet::hyper::Connector` (features hyper-client-legacy + rustls), against gonet's own
//! `Server`: keep-alive reuse counted at the server's accept, many goroutines at once, HTTP/2
//! with prior knowledge, `https://` with ALPN choosing h2 or http/1.1, the pool's idle
//! timeout (run by gonet's Executor and Timer) closing a connection, and the connector's
//! failures: refused, connect timeout on the dial and on the TLS handshake, bad URIs, and a
//! dial that must not block whoever polls the connector's future.
#![cfg(all(feature = "hyper-client-legacy", feature = "rustls"))]

mod common;
mod https_util;

use std::convert::Infallible;
use std::error::Error as _;
use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{full_backlog_listener, run};
use gonet::hyper::{Connector, Executor, Server, ServerHandle, Timer};
use gonet::net::{Addr, Dialer, Listener, TcpListener, TcpStream};
use http_body_util::{BodyExt, Empty, Full};
use https_util::{client_config, wait_until, SelfSigned};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::client::legacy::{Client, Error};
use tower_service::Service;

type LegacyClient = Client<Connector, Empty<Bytes>>;

/// The client as the connector's docs show it: gonet's Executor and Timer for hyper-util's
/// background tasks and timers.
fn client(connector: Connector) -> LegacyClient {
    Client::builder(Executor).timer(Timer).pool_timer(Timer).build(connector)
}

/// A TCP listener that counts the connections it accepted.
struct Counting {
    ln: TcpListener,
    accepted: Arc<AtomicUsize>,
}

impl Listener for Counting {
    type Conn = TcpStream;
    fn accept(&self) -> io::Result<TcpStream> {
        let c = Listener::accept(&self.ln)?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(c)
    }
    fn close(&self) -> io::Result<()> {
        Listener::close(&self.ln)
    }
    fn addr(&self) -> io::Result<Addr> {
        Listener::addr(&self.ln)
    }
    fn set_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        Listener::set_deadline(&self.ln, at)
    }
}

/// A running server: its address, shutdown handle and count of accepted connections.
struct Started {
    addr: String,
    handle: ServerHandle,
    accepted: Arc<AtomicUsize>,
}

impl Started {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Serves on a fresh loopback port (over TLS with `tls`), answering with the path and the
/// HTTP version the request came in.
fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Started {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let ln = Counting { ln, accepted: accepted.clone() };
    let server = Server::new();
    let handle = server.handle();
    let svc = service_fn(|req: Request<Incoming>| async move {
        let body = format!("legacy {} {:?}", req.uri().path(), req.version());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    gonet::go(move || match tls {
        Some(tls) => server.serve_tls(ln, tls, svc).unwrap(),
        None => server.serve(ln, svc).unwrap(),
    });
    Started { addr, handle, accepted }
}

/// `GET url`, the whole body read: the response's version and body.
fn get(c: &LegacyClient, url: &str) -> Result<(Version, Bytes), Error> {
    gonet::block_on(async {
        let resp = c.get(url.parse().unwrap()).await?;
        let version = resp.version();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Ok((version, body))
    })
}

/// The connector's `io::Error` under hyper-util's connect error.
fn io_cause(e: &Error) -> &io::Error {
    assert!(e.is_connect(), "not a connect error: {e:?}");
    e.source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .unwrap_or_else(|| panic!("no io::Error under {e:?}"))
}

#[test]
fn sequential_gets_reuse_one_connection() {
    run(2, || {
        let s = start(None);
        let c = client(Connector::new());
        for i in 0..20 {
            let (v, body) = get(&c, &format!("http://{}/r{i}", s.addr)).unwrap();
            assert_eq!(v, Version::HTTP_11);
            assert_eq!(body, Bytes::from(format!("legacy /r{i} HTTP/1.1")));
        }
        assert_eq!(s.accepted(), 1, "20 sequential GETs should share one keep-alive connection");
        assert!(s.handle.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

/// 50 goroutines, 10 GETs each, through one client. hyper-util's pool races each new dial
/// against a connection coming back and pools the loser too, so it may open more connections
/// than there are requests in flight; `pool_max_idle_per_host` bounds what it keeps, and the
/// connections over the bound close (the server's count of open connections falls to it).
#[test]
fn concurrent_requests_from_many_goroutines() {
    run(2, || {
        let s = start(None);
        const G: usize = 50;
        const EACH: usize = 10;
        const MAX_IDLE: usize = 8;
        let c: LegacyClient = Client::builder(Executor)
            .timer(Timer)
            .pool_timer(Timer)
            .pool_max_idle_per_host(MAX_IDLE)
            .build(Connector::new());
        let hs: Vec<_> = (0..G)
            .map(|g| {
                let (c, addr) = (c.clone(), s.addr.clone());
                gonet::go(move || {
                    for i in 0..EACH {
                        let (_, body) = get(&c, &format!("http://{addr}/{g}/{i}")).unwrap();
                        assert_eq!(body, Bytes::from(format!("legacy /{g}/{i} HTTP/1.1")));
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let n = s.accepted();
        assert!(n < G * EACH, "{n} connections for {} requests: none was reused", G * EACH);
        wait_until(|| s.handle.active() <= MAX_IDLE);
        let open = s.handle.active();
        assert!(open <= MAX_IDLE, "{open} connections left open, over the pool's {MAX_IDLE}");
        assert!(s.handle.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn http2_prior_knowledge_multiplexes_one_connection() {
    run(2, || {
        let s = start(None);
        let c: LegacyClient = Client::builder(Executor)
            .timer(Timer)
            .pool_timer(Timer)
            .http2_only(true)
            .build(Connector::new());
        let (v, _) = get(&c, &format!("http://{}/first", s.addr)).unwrap();
        assert_eq!(v, Version::HTTP_2);
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let (c, addr) = (c.clone(), s.addr.clone());
                gonet::go(move || get(&c, &format!("http://{addr}/{i}")).unwrap())
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            let (v, body) = h.join().unwrap();
            assert_eq!(v, Version::HTTP_2);
            assert_eq!(body, Bytes::from(format!("legacy /{i} HTTP/2.0")));
        }
        assert_eq!(s.accepted(), 1, "HTTP/2 streams should share one connection");
        assert!(s.handle.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn https_alpn_chooses_h2_or_http1() {
    run(2, || {
        let ss = SelfSigned::new(&["127.0.0.1", "localhost"]);
        let s = start(Some(ss.server_config()));
        let mut before = 0;
        for (alpn, version) in [(&[][..], Version::HTTP_2), (&["http/1.1"][..], Version::HTTP_11)] {
            let c = client(Connector::new().tls(client_config(&[&ss.cert], alpn)));
            for i in 0..5 {
                let (v, body) = get(&c, &format!("https://{}/{i}", s.addr)).unwrap();
                assert_eq!(v, version, "ALPN {alpn:?}");
                assert_eq!(body, Bytes::from(format!("legacy /{i} {version:?}")));
            }
            assert_eq!(s.accepted() - before, 1, "ALPN {alpn:?}: one pooled TLS connection");
            before = s.accepted();
        }
        // The certificate names localhost too: the server name comes from the URI's host.
        let port = s.addr.rsplit(':').next().unwrap();
        let c = client(Connector::new().tls(client_config(&[&ss.cert], &[])));
        let (v, _) = get(&c, &format!("https://localhost:{port}/")).unwrap();
        assert_eq!(v, Version::HTTP_2);
        assert!(s.handle.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn https_bad_certificate_and_missing_tls_config_are_clear_errors() {
    run(2, || {
        let ss = SelfSigned::new(&["localhost"]);
        let s = start(Some(ss.server_config()));
        let port = s.addr.rsplit(':').next().unwrap();
        let other = SelfSigned::new(&["localhost"]);
        let c = client(Connector::new().tls(client_config(&[&other.cert], &[])));
        let e = get(&c, &format!("https://localhost:{port}/")).unwrap_err();
        let io = io_cause(&e);
        assert_eq!(io.kind(), ErrorKind::InvalidData, "{io}");
        assert!(io.to_string().contains("TLS handshake with localhost: invalid peer certificate"));

        let e = get(&client(Connector::new()), &format!("https://{}/", s.addr)).unwrap_err();
        let io = io_cause(&e);
        assert_eq!(io.kind(), ErrorKind::InvalidInput, "{io}");
        assert!(io.to_string().contains("Connector::tls"), "{io}");
        assert!(s.handle.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn connect_refused_names_the_address() {
    run(2, || {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        drop(ln);
        let e = get(&client(Connector::new()), &format!("http://{addr}/")).unwrap_err();
        let io = io_cause(&e);
        assert_eq!(io.kind(), ErrorKind::ConnectionRefused, "{io}");
        assert_eq!(io.to_string(), format!("dial tcp {addr}: connect: connection refused"));
    });
}

/// A dial to a listener whose accept queue is full hangs (its SYNs are dropped): the connect
/// timeout must end it.
#[test]
fn connect_timeout_bounds_the_dial() {
    run(2, || {
        let raw = full_backlog_listener();
        let addr = raw.local_addr().unwrap();
        // Fill the queue until a dial hangs.
        let mut held = Vec::new();
        let short = Dialer { timeout: Some(Duration::from_millis(200)), ..Default::default() };
        while let Ok(c) = short.dial(addr) {
            held.push(c);
            assert!(held.len() < 64, "the accept queue never filled");
        }
        let c = client(Connector::new().connect_timeout(Duration::from_millis(200)));
        for _ in 0..3 {
            let e = get(&c, &format!("http://{addr}/")).unwrap_err();
            let io = io_cause(&e);
            assert_eq!(io.kind(), ErrorKind::TimedOut, "{io}");
            let msg = io.to_string();
            assert!(msg.starts_with(&format!("dial tcp {addr}: ")), "{msg}");
            assert!(msg.ends_with("i/o timeout"), "{msg}");
        }
        drop(raw);
    });
}

/// A server that accepts and never speaks stalls the TLS handshake: the connect timeout
/// covers it too.
#[test]
fn connect_timeout_bounds_the_tls_handshake() {
    run(2, || {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let (done_tx, done_rx) = gonet::chan::bounded::<()>(1);
        gonet::go(move || {
            let (_conn, _) = ln.accept().unwrap();
            let _ = done_rx.recv();
        });
        let ss = SelfSigned::new(&["127.0.0.1"]);
        let c = client(
            Connector::new()
                .tls(client_config(&[&ss.cert], &[]))
                .connect_timeout(Duration::from_millis(200)),
        );
        let e = get(&c, &format!("https://{addr}/")).unwrap_err();
        let io = io_cause(&e);
        assert_eq!(io.kind(), ErrorKind::TimedOut, "{io}");
        assert_eq!(io.to_string(), format!("TLS handshake with {addr}: i/o timeout"));
        done_tx.send(()).unwrap();
    });
}

/// The pool's idle sweep (a task hyper-util spawns on gonet's Executor, sleeping on gonet's
/// Timer) drops a connection idle past `pool_idle_timeout`: the server reads end of stream.
#[test]
fn pool_idle_timeout_closes_the_idle_connection() {
    run(2, || {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let server = gonet::go(move || {
            let (mut conn, _) = ln.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before sending its request");
                req.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
            // Keep-alive: the connection stays open until the client's pool lets it go. (The
            // deadline only keeps a broken pool from hanging the test.)
            conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(20))).unwrap();
            conn.read(&mut buf)
        });
        let c: LegacyClient = Client::builder(Executor)
            .timer(Timer)
            .pool_timer(Timer)
            .pool_idle_timeout(Duration::from_millis(200))
            .build(Connector::new());
        let (_, body) = get(&c, &format!("http://{addr}/")).unwrap();
        assert_eq!(body, "ok");
        let r = server.join().unwrap();
        assert_eq!(r.unwrap(), 0, "the server should see end of stream once the pool expired it");
        drop(c);
    });
}

#[test]
fn bad_uris_are_invalid_input() {
    run(2, || {
        let mut conn = Connector::new();
        for (uri, what) in [
            ("ftp://example.com/", "unsupported scheme \"ftp\""),
            ("/relative", "no scheme"),
            ("https://example.com/", "Connector::tls"),
        ] {
            let e = gonet::block_on(conn.call(uri.parse().unwrap())).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{uri}: {e}");
            assert!(e.to_string().contains(what), "{uri}: {e}");
        }
    });
}

/// The connector's future dials elsewhere: its first poll returns at once (pending) even when
/// the dial hangs, so whoever polls it (hyper-util's race against the pool, a `block_on` over
/// several requests) keeps going.
#[test]
fn the_dial_does_not_block_the_poller() {
    run(2, || {
        let raw = full_backlog_listener();
        let addr = raw.local_addr().unwrap();
        let mut held = Vec::new();
        let short = Dialer { timeout: Some(Duration::from_millis(200)), ..Default::default() };
        while let Ok(c) = short.dial(addr) {
            held.push(c);
            assert!(held.len() < 64, "the accept queue never filled");
        }
        let mut conn = Connector::new().connect_timeout(Duration::from_secs(2));
        let mut fut = conn.call(format!("http://{addr}/").parse().unwrap());
        let first = gonet::block_on(std::future::poll_fn(|cx| {
            Poll::Ready(std::pin::Pin::new(&mut fut).poll(cx).is_pending())
        }));
        assert!(first, "the first poll should not wait for the dial");
        // The dial goes on in the background and times out there.
        let e = gonet::block_on(fut).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        drop(raw);
    });
}

/// A dropped client lets its pooled connections go: the server's count falls to zero.
#[test]
fn dropping_the_client_closes_its_connections() {
    run(2, || {
        let s = start(None);
        let c = client(Connector::new());
        get(&c, &format!("http://{}/", s.addr)).unwrap();
        assert_eq!(s.handle.active(), 1);
        drop(c);
        wait_until(|| s.handle.active() == 0);
        assert_eq!(s.handle.active(), 0, "the pooled connection should close with the client");
        assert!(s.handle.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}
