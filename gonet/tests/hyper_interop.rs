//! hyper on goroutines: hyper's client against gonet's `Server` over HTTP/1 keep-alive and
//! HTTP/2 (100 concurrent streams on one connection), services that block goroutine-style,
//! the header-read timeout, a panicking service, graceful shutdown, 1,000 connections, and
//! curl as a second peer.
#![cfg(feature = "hyper")]

mod common;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::run;
use gonet::hyper::{Client, Executor, Io, Server, ServerHandle};
use gonet::net::{TcpListener, TcpStream};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};

/// Starts `server` on a fresh port with `svc`; returns the address and the shutdown handle.
fn start<S>(server: Server, svc: S) -> (String, ServerHandle)
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    let h = server.handle();
    gonet::go(move || server.serve(ln, svc).unwrap());
    (addr, h)
}

fn hello() -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send {
    service_fn(|req: Request<Incoming>| async move {
        let body = format!("hello {} {:?}", req.uri().path(), req.version());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    })
}

#[test]
fn http1_keep_alive_reuses_one_connection() {
    run(2, || {
        let (addr, h) = start(Server::new(), hello());
        let client = Client::new();
        for i in 0..20 {
            let r = client.get(&format!("http://{addr}/r{i}")).unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.body(), &Bytes::from(format!("hello /r{i} HTTP/1.1")));
            assert_eq!(h.active(), 1, "request {i} came on a new connection");
        }
        assert_eq!(h.active(), 1, "the client opened more than one connection");
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn http2_prior_knowledge_100_concurrent_streams_on_one_connection() {
    run(2, || {
        // Each request blocks on a WaitGroup-like barrier until all 100 have arrived: only
        // concurrent streams, each on its own goroutine, can pass it.
        let arrived = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = gonet::chan::bounded::<()>(0);
        let svc = {
            let arrived = arrived.clone();
            service_fn(move |_req: Request<Incoming>| {
                let arrived = arrived.clone();
                let (tx, rx) = (tx.clone(), rx.clone());
                async move {
                    if arrived.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
                        for _ in 0..99 {
                            tx.send(()).unwrap(); // blocks goroutine-style
                        }
                    } else {
                        rx.recv().unwrap();
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("h2"))))
                }
            })
        };
        let (addr, h) = start(Server::new(), svc);
        let stream = TcpStream::connect(&addr).unwrap();
        let (sender, conn) = gonet::block_on(
            hyper::client::conn::http2::Builder::new(Executor)
                .timer(gonet::hyper::Timer)
                .handshake::<_, Full<Bytes>>(Io(stream)),
        )
        .unwrap();
        gonet::go(move || drop(gonet::block_on(conn)));
        let hs: Vec<_> = (0..100)
            .map(|i| {
                let mut s = sender.clone();
                gonet::go(move || {
                    gonet::block_on(async move {
                        let req = Request::get(format!("http://{i}.test/"))
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        let r = s.send_request(req).await.unwrap();
                        assert_eq!(r.version(), hyper::Version::HTTP_2);
                        r.into_body().collect().await.unwrap().to_bytes()
                    })
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), Bytes::from("h2"));
        }
        assert_eq!(h.active(), 1);
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn a_service_may_block_on_a_channel_and_sleep() {
    run(1, || {
        let (tx, rx) = gonet::chan::bounded::<String>(1);
        let svc = service_fn(move |_req: Request<Incoming>| {
            let rx = rx.clone();
            async move {
                gonet::time::sleep(Duration::from_millis(5));
                let v = rx.recv().unwrap();
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(v))))
            }
        });
        let (addr, h) = start(Server::new(), svc);
        // With one worker, the feeder runs only while the service's goroutine is parked.
        gonet::go(move || tx.send("from a channel".into()).unwrap());
        let r = Client::new().get(&format!("http://{addr}/")).unwrap();
        assert_eq!(r.body(), &Bytes::from("from a channel"));
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn the_header_read_timeout_closes_a_silent_connection() {
    run(1, || {
        let mut srv = Server::new();
        srv.builder().http1().header_read_timeout(Duration::from_millis(100));
        let (addr, h) = start(srv, hello());
        let mut c = TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(); // never finishes the headers
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(20))).unwrap();
        let t = Instant::now();
        let mut buf = Vec::new();
        let r = c.read_to_end(&mut buf);
        assert!(r.is_ok(), "the server did not close the connection: {r:?}");
        assert!(t.elapsed() < Duration::from_secs(15));
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn a_panicking_service_kills_only_its_connection() {
    run(2, || {
        let svc = service_fn(|req: Request<Incoming>| async move {
            if req.uri().path() == "/panic" {
                panic!("service panicked on purpose");
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
        });
        let (addr, h) = start(Server::new(), svc);
        let client = Client::new();
        assert!(client.get(&format!("http://{addr}/panic")).is_err());
        let r = Client::new().get(&format!("http://{addr}/fine")).unwrap();
        assert_eq!(r.body(), &Bytes::from("ok"));
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn graceful_shutdown_lets_an_in_flight_request_finish_and_stops_accepting() {
    run(2, || {
        let (started_tx, started_rx) = gonet::chan::bounded::<()>(1);
        let svc = service_fn(move |_req: Request<Incoming>| {
            let started_tx = started_tx.clone();
            async move {
                started_tx.send(()).unwrap();
                gonet::time::sleep(Duration::from_millis(200));
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("finished"))))
            }
        });
        let (addr, h) = start(Server::new(), svc);
        let a = addr.clone();
        let req = gonet::go(move || Client::new().get(&format!("http://{a}/")).unwrap());
        started_rx.recv().unwrap();
        assert!(h.shutdown(Instant::now() + Duration::from_secs(10)), "not drained in time");
        assert_eq!(req.join().unwrap().body(), &Bytes::from("finished"));
        assert!(TcpStream::connect(&addr).is_err(), "still accepting after shutdown");
    });
}

#[test]
fn shutdown_past_its_deadline_closes_what_is_left() {
    run(2, || {
        let svc = service_fn(|_req: Request<Incoming>| async {
            gonet::time::sleep(Duration::from_secs(3600));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let (addr, h) = start(Server::new(), svc);
        let req = gonet::go(move || Client::new().get(&format!("http://{addr}/")));
        while h.active() == 0 {
            gonet::time::sleep(Duration::from_millis(1));
        }
        assert!(!h.shutdown(Instant::now() + Duration::from_millis(50)));
        assert!(req.join().unwrap().is_err());
    });
}

#[test]
fn a_thousand_concurrent_http1_connections() {
    common::raise_fd_limit();
    run(2, || {
        let (addr, h) = start(Server::new(), hello());
        let hs: Vec<_> = (0..1000)
            .map(|i| {
                let addr = addr.clone();
                gonet::go(move || {
                    // One client per goroutine: a connection each.
                    let r = Client::new().get(&format!("http://{addr}/{i}")).unwrap();
                    assert_eq!(r.body(), &Bytes::from(format!("hello /{i} HTTP/1.1")));
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(h.shutdown(Instant::now() + Duration::from_secs(10)));
    });
}

#[test]
fn client_timeout_fires_on_a_slow_server() {
    run(1, || {
        let svc = service_fn(|_req: Request<Incoming>| async {
            gonet::time::sleep(Duration::from_secs(3600));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let (addr, h) = start(Server::new(), svc);
        let c = Client::builder().timeout(Duration::from_millis(50)).build();
        let e = c.get(&format!("http://{addr}/")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        h.shutdown(Instant::now());
    });
}

#[test]
fn curl_http2_prior_knowledge_and_http1() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "curl is missing under CI");
        return;
    }
    run(2, || {
        let (addr, h) = start(Server::new(), hello());
        for (flag, want) in
            [("--http2-prior-knowledge", "hello /c HTTP/2.0"), ("--http1.1", "hello /c HTTP/1.1")]
        {
            let a = addr.clone();
            let out = gonet::blocking(move || {
                std::process::Command::new("curl")
                    .args(["-sS", "--max-time", "20", flag, &format!("http://{a}/c")])
                    .output()
                    .unwrap()
            });
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        }
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}
