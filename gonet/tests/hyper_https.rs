//! HTTPS with gonet's hyper (features hyper + rustls): `Client` with `https://` against
//! `Server::serve_tls`, ALPN choosing HTTP/2 or HTTP/1.1, pooled TLS connections, and the
//! failures a user meets: a certificate that does not chain to the roots, a name it does not
//! cover, no TLS config, a server that never answers the handshake; on the server, the
//! handshake timeout and a forced shutdown closing a TLS connection under a blocked service.
#![cfg(all(feature = "hyper", feature = "rustls"))]

mod common;
mod https_util;

use std::convert::Infallible;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::run;
use gonet::hyper::{Client, Server, ServerHandle};
use gonet::net::TcpListener;
use http_body_util::{BodyExt, Either, Full};
use https_util::{client_config, get_concurrently, wait_until, SelfSigned};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use rustls::pki_types::CertificateDer;

/// A self-signed certificate for `names` and a server config presenting it.
fn server_config(names: &[&str]) -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let ss = SelfSigned::new(names);
    (ss.server_config(), ss.cert)
}

/// Serves `tls` on a fresh loopback port, answering with the path and HTTP version.
fn start(tls: Arc<rustls::ServerConfig>) -> (String, ServerHandle) {
    start_with(Server::new(), tls)
}

/// As `start`, with `server`; `/block` blocks its goroutine for an hour before answering.
fn start_with(server: Server, tls: Arc<rustls::ServerConfig>) -> (String, ServerHandle) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    let h = server.handle();
    let svc = service_fn(|req: Request<Incoming>| async move {
        if req.uri().path() == "/block" {
            gonet::time::sleep(Duration::from_secs(3600));
        }
        let body = format!("tls {} {:?}", req.uri().path(), req.version());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    gonet::go(move || server.serve_tls(ln, tls, svc).unwrap());
    (addr, h)
}

#[test]
fn https_alpn_chooses_h2_or_http1_and_connections_are_pooled() {
    run(2, || {
        let (scfg, cert) = server_config(&["127.0.0.1", "localhost"]);
        let (addr, h) = start(scfg);
        for (alpn, version) in [(&[][..], "HTTP/2.0"), (&["http/1.1"][..], "HTTP/1.1")] {
            let client = Client::builder().tls(client_config(&[&cert], alpn)).build();
            for i in 0..5 {
                let r = client.get(&format!("https://{addr}/{i}")).unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.body(), &Bytes::from(format!("tls /{i} {version}")), "ALPN {alpn:?}");
            }
            // Five requests, one pooled TLS connection.
            assert_eq!(h.active(), 1, "ALPN {alpn:?}");
            drop(client); // its connection closes once idle
            wait_until(|| h.active() == 0);
        }
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn https_h2_carries_concurrent_requests_on_one_connection() {
    run(2, || {
        let (scfg, cert) = server_config(&["127.0.0.1"]);
        let (addr, h) = start(scfg);
        let client = Client::builder().tls(client_config(&[&cert], &[])).build();
        // The first request opens the connection; the rest share it.
        client.get(&format!("https://{addr}/first")).unwrap();
        let bodies = get_concurrently(&client, 50, |i| format!("https://{addr}/{i}"));
        for (i, b) in bodies.into_iter().enumerate() {
            assert_eq!(b, Bytes::from(format!("tls /{i} HTTP/2.0")));
        }
        assert_eq!(h.active(), 1);
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn https_bad_certificate_is_a_clear_error() {
    run(2, || {
        let (scfg, cert) = server_config(&["localhost"]);
        let (addr, h) = start(scfg);
        let port = addr.rsplit(':').next().unwrap();

        // A root the server's certificate does not chain to (another self-signed one).
        let (_, other) = server_config(&["localhost"]);
        let c = Client::builder().tls(client_config(&[&other], &[])).build();
        let e = c.get(&format!("https://localhost:{port}/")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("TLS handshake with localhost: invalid peer certificate"), "{msg}");

        // The right root, but a name the certificate does not cover.
        let c = Client::builder().tls(client_config(&[&cert], &[])).build();
        let e = c.get(&format!("https://{addr}/")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
        assert!(
            e.to_string().contains("invalid peer certificate: certificate not valid for name"),
            "{e}"
        );

        // No TLS config at all.
        let e = Client::new().get(&format!("https://{addr}/")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("ClientBuilder::tls"), "{e}");

        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn https_connect_timeout_covers_the_handshake() {
    run(2, || {
        // Accepts, then never speaks: the TLS handshake stalls.
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let (done_tx, done_rx) = gonet::chan::bounded::<()>(1);
        gonet::go(move || {
            let (_conn, _) = ln.accept().unwrap();
            let _ = done_rx.recv();
        });
        let (_, cert) = server_config(&["127.0.0.1"]);
        let c = Client::builder()
            .tls(client_config(&[&cert], &[]))
            .connect_timeout(Duration::from_millis(200))
            .build();
        let e = c.get(&format!("https://{addr}/")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("TLS handshake"), "{e}");
        done_tx.send(()).unwrap();
    });
}

#[test]
fn serve_tls_closes_a_connection_that_never_handshakes() {
    run(2, || {
        let (scfg, _) = server_config(&["127.0.0.1"]);
        let mut server = Server::new();
        server.tls_handshake_timeout(Some(Duration::from_millis(100)));
        let (addr, h) = start_with(server, scfg);
        // A client that connects and says nothing: the server closes it at the timeout. (The
        // read's own 30 s bound only keeps a broken server from hanging the test.)
        let n = gonet::blocking(move || {
            use std::io::Read;
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            c.read(&mut [0u8; 64])
        });
        assert_eq!(n.unwrap(), 0, "the server should close a silent connection");
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn forced_shutdown_closes_a_tls_connection_under_a_blocked_service() {
    run(2, || {
        let (scfg, cert) = server_config(&["127.0.0.1"]);
        let (addr, h) = start(scfg);
        // HTTP/1.1: the service runs on the connection's goroutine, so only closing the
        // socket under it ends the connection.
        let client = Client::builder().tls(client_config(&[&cert], &["http/1.1"])).build();
        let g = gonet::go(move || client.get(&format!("https://{addr}/block")));
        wait_until(|| h.active() > 0);
        assert_eq!(h.active(), 1);
        // The service sleeps an hour: the deadline passes and the socket is closed under it.
        assert!(!h.shutdown(Instant::now() + Duration::from_millis(100)));
        let e = g.join().unwrap().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Other | ErrorKind::ConnectionReset), "{e:?}");
    });
}

/// A response body that sends its first half at once and the rest only once its `Gate` is
/// opened: until then the response is unfinished, so its connection cannot be idle.
struct Gated {
    first: Option<Bytes>,
    rest: Option<Bytes>,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate(std::sync::Mutex<(bool, Option<std::task::Waker>)>);

impl Gate {
    fn open(&self) {
        let mut g = self.0.lock().unwrap();
        g.0 = true;
        if let Some(w) = g.1.take() {
            w.wake();
        }
    }
}

impl hyper::body::Body for Gated {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if let Some(b) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(b))));
        }
        {
            let mut g = self.gate.0.lock().unwrap();
            if !g.0 {
                g.1 = Some(cx.waker().clone());
                return std::task::Poll::Pending;
            }
        }
        std::task::Poll::Ready(self.rest.take().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

#[test]
fn a_streamed_response_returns_its_connection_to_the_pool_once_read() {
    run(2, || {
        let (scfg, cert) = server_config(&["127.0.0.1"]);
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap().to_string();
        let server = Server::new();
        let h = server.handle();
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let gate = g.clone();
            async move {
                let body = if req.uri().path() == "/streamed" {
                    Either::Left(Gated {
                        first: Some(Bytes::from("tls /streamed ")),
                        rest: Some(Bytes::from("HTTP/1.1")),
                        gate,
                    })
                } else {
                    Either::Right(Full::new(Bytes::from("again")))
                };
                Ok::<_, Infallible>(Response::new(body))
            }
        });
        gonet::go(move || server.serve_tls(ln, scfg, svc).unwrap());
        let client = Client::builder().tls(client_config(&[&cert], &["http/1.1"])).build();
        let url = format!("https://{addr}/streamed");
        let req = Request::get(url.as_str()).body(Full::new(Bytes::new())).unwrap();
        let resp = gonet::block_on(client.send(req)).unwrap();
        // In use while its response is unfinished: not in the pool.
        gonet::time::sleep(Duration::from_millis(20));
        assert_eq!(client.idle_connections(), 0);
        gate.open();
        let body = gonet::block_on(resp.into_body().collect()).unwrap().to_bytes();
        assert_eq!(body, Bytes::from("tls /streamed HTTP/1.1"));
        wait_until(|| client.idle_connections() > 0);
        assert_eq!(client.idle_connections(), 1, "the connection should be back in the pool");
        assert_eq!(client.get(&format!("https://{addr}/again")).unwrap().body(), "again");
        assert_eq!(h.active(), 1, "the next request should reuse it");
        // Closing the idle connections closes the server's side too.
        client.close_idle_connections();
        assert_eq!(client.idle_connections(), 0);
        wait_until(|| h.active() == 0);
        assert_eq!(h.active(), 0);
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}
