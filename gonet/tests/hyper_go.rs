//! Go's net/http as a second real peer of gonet's hyper: Go's client against gonet's `Server`
//! and gonet's `Client` against Go's server, over HTTP/1.1 (keep-alive: one connection) and
//! over TLS (HTTP/2 by ALPN, and HTTP/1.1). The Go side is `tests/go/http_peer/main.go`, built
//! here with `go build` (standard library only, GOPATH mode).
//!
//! Without `go` on PATH these tests say so and skip, as the other interop tests do for their
//! tools — except under `CI=true` (where `.ci/run` installs Debian's `golang-go`), where a
//! missing `go` fails them.
#![cfg(all(feature = "hyper", feature = "rustls"))]

mod common;
mod https_util;

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{build_go_peer, run, Reap, TempDir};
use gonet::hyper::{Client, Server, ServerHandle};
use gonet::net::TcpListener;
use http_body_util::Full;
use https_util::{client_config, get_concurrently, SelfSigned};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};

/// Builds the Go peer into `dir`; `None` (test skipped) if Go is missing outside CI.
fn build_peer(dir: &TempDir) -> Option<String> {
    build_go_peer(dir, "http_peer")
}

/// A self-signed certificate for 127.0.0.1, and PEM files of it and its key in `dir`.
fn cert_files(dir: &TempDir) -> (SelfSigned, String, String) {
    let ss = SelfSigned::new(&["127.0.0.1"]);
    let (cert, key) = (dir.file("cert.pem"), dir.file("key.pem"));
    std::fs::write(&cert, &ss.cert_pem).unwrap();
    std::fs::write(&key, &ss.key_pem).unwrap();
    (ss, cert, key)
}

/// Runs the Go client with `args` (on the blocking pool); its output lines, checking it
/// succeeded.
fn go_client(bin: &str, args: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(bin);
    cmd.arg("client").args(args);
    let out = gonet::blocking(move || cmd.output().unwrap());
    assert!(out.status.success(), "Go client failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// Starts the Go server (`server ARGS`); the process (killed when dropped) and its address.
fn go_server(bin: &str, args: &[&str]) -> (Reap, String) {
    let mut child = Command::new(bin)
        .arg("server")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let line = gonet::blocking(move || {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        line
    });
    let addr = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("{line:?}"));
    (Reap(child), addr.to_string())
}

/// gonet's server, answering "gonet PROTO PATH" (over TLS with `tls`).
fn start(tls: Option<Arc<rustls::ServerConfig>>) -> (String, ServerHandle) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    let server = Server::new();
    let h = server.handle();
    let svc = service_fn(|req: Request<Incoming>| async move {
        let body = format!("gonet {:?} {}", req.version(), req.uri().path());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    gonet::go(move || match tls {
        Some(cfg) => server.serve_tls(ln, cfg, svc).unwrap(),
        None => server.serve(ln, svc).unwrap(),
    });
    (addr, h)
}

/// Builds the Go peer, then runs `f(dir, peer)` on a two-worker runtime (nothing if skipped).
fn with_peer(f: impl FnOnce(&TempDir, &str) + Send + 'static) {
    let dir = TempDir::new();
    let Some(bin) = build_peer(&dir) else { return };
    run(2, move || f(&dir, &bin));
}

/// The lines the Go client prints for `n` requests to `/p/<i>` answered with `proto`.
fn expected(n: usize, go_proto: &str, proto: &str) -> Vec<String> {
    (0..n).map(|i| format!("{go_proto} 200 gonet {proto} /p/{i}")).collect()
}

#[test]
fn go_client_against_gonet_server_http1_keep_alive() {
    with_peer(|_, bin| {
        let (addr, h) = start(None);
        let out = go_client(bin, &["-n", "20", &format!("http://{addr}/p")]);
        assert_eq!(&out[..20], &expected(20, "HTTP/1.1", "HTTP/1.1")[..]);
        assert_eq!(out[20], "conns 1", "Go's client should reuse one keep-alive connection");
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn go_client_against_gonet_server_over_tls_h2_and_http1() {
    with_peer(|dir, bin| {
        let (ss, cert_pem, _) = cert_files(dir);
        let (addr, h) = start(Some(ss.server_config()));
        let url = format!("https://{addr}/p");
        // Sequential: one connection, HTTP/2 by ALPN.
        let out = go_client(bin, &["-cacert", &cert_pem, "-n", "10", &url]);
        assert_eq!(&out[..10], &expected(10, "HTTP/2.0", "HTTP/2.0")[..]);
        assert_eq!(out[10], "conns 1");
        // Concurrent streams.
        let out = go_client(bin, &["-cacert", &cert_pem, "-n", "100", "-c", "50", &url]);
        assert_eq!(&out[..100], &expected(100, "HTTP/2.0", "HTTP/2.0")[..]);
        // HTTP/1.1 over TLS.
        let out = go_client(bin, &["-cacert", &cert_pem, "-h1", "-n", "10", &url]);
        assert_eq!(&out[..10], &expected(10, "HTTP/1.1", "HTTP/1.1")[..]);
        assert_eq!(out[10], "conns 1");
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn gonet_client_against_go_server_http1_keep_alive() {
    with_peer(|_, bin| {
        let (_go, addr) = go_server(bin, &[]);
        let client = Client::new();
        for i in 0..20 {
            let r = client.get(&format!("http://{addr}/q/{i}")).unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.body(), &Bytes::from(format!("go HTTP/1.1 /q/{i}")));
        }
        let conns = client.get(&format!("http://{addr}/conns")).unwrap();
        assert_eq!(conns.body(), &Bytes::from("1"), "gonet's client should reuse one connection");
    });
}

#[test]
fn gonet_client_against_go_server_over_tls_h2_and_http1() {
    with_peer(|dir, bin| {
        let (ss, cert_pem, key_pem) = cert_files(dir);
        let (_go, addr) = go_server(bin, &["-tls", &cert_pem, &key_pem]);
        let tls = |alpn: &[&str]| client_config(&[&ss.cert], alpn);
        // ALPN left to gonet's defaults (h2, http/1.1): Go's server picks h2.
        let client = Client::builder().tls(tls(&[])).build();
        let r = client.get(&format!("https://{addr}/first")).unwrap();
        assert_eq!(r.version(), hyper::Version::HTTP_2);
        assert_eq!(r.body(), &Bytes::from("go HTTP/2.0 /first"));
        // 50 concurrent requests: streams on that one connection.
        let bodies = get_concurrently(&client, 50, |i| format!("https://{addr}/s/{i}"));
        for (i, b) in bodies.into_iter().enumerate() {
            assert_eq!(b, Bytes::from(format!("go HTTP/2.0 /s/{i}")));
        }
        let conns = client.get(&format!("https://{addr}/conns")).unwrap();
        assert_eq!(conns.body(), &Bytes::from("1"), "HTTP/2 requests should share one connection");
        // HTTP/1.1 over TLS.
        let h1 = Client::builder().tls(tls(&["http/1.1"])).build();
        let r = h1.get(&format!("https://{addr}/h1")).unwrap();
        assert_eq!(r.version(), hyper::Version::HTTP_11);
        assert_eq!(r.body(), &Bytes::from("go HTTP/1.1 /h1"));
    });
}
