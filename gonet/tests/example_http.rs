//! Tests of the `http_hello` example server, run in-process on a gonet runtime and driven over
//! loopback: responses, keep-alive, pipelining, bodies, HTTP/1.0, malformed and oversized
//! requests, the request deadline, and 1,000 concurrent clients.

#[allow(dead_code)]
#[path = "../../examples/http_hello.rs"]
mod http_hello;

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use http_hello::Config;

use common::{raise_fd_limit, within};

/// Starts the server on a two-worker runtime in a background thread; returns its address.
fn start(cfg: Config) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(ln.local_addr().unwrap()).unwrap();
            http_hello::serve(ln, cfg).unwrap();
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("server started")
}

fn test_config() -> Config {
    Config { read_timeout: Duration::from_secs(5), ..Config::default() }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A blocking test client with bounded reads.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, data: &[u8]) {
        self.s.write_all(data).unwrap();
    }

    /// Reads more input; false at end of stream.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.s.read(&mut chunk).expect("read from server");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads one response (`head_only`: the answer to HEAD, which has no body).
    fn response_to(&mut self, head_only: bool) -> Response {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).expect("valid response") {
                let status = r.code.unwrap();
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                let mut resp = Response { status, headers, body: Vec::new() };
                let len: usize = match resp.header("content-length") {
                    Some(v) if !head_only && status >= 200 => v.parse().unwrap(),
                    _ => 0,
                };
                while self.buf.len() < n + len {
                    assert!(self.fill(), "connection closed inside a response body");
                }
                resp.body = self.buf[n..n + len].to_vec();
                self.buf.drain(..n + len);
                return resp;
            }
            assert!(self.fill(), "connection closed before a response");
        }
    }

    fn response(&mut self) -> Response {
        self.response_to(false)
    }

    /// Whether the server has closed the connection (end of stream or a reset), with nothing
    /// more sent; panics if it stays open past the read timeout.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        match self.s.read(&mut b) {
            Ok(0) => self.buf.is_empty(),
            Ok(n) => panic!("unexpected data: {:?}", String::from_utf8_lossy(&b[..n])),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) => panic!("connection still open: {e}"),
        }
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

#[test]
fn hello_and_keep_alive() {
    within(Duration::from_secs(30), || {
        let addr = start(test_config());
        let mut c = Client::connect(addr);
        for path in ["/", "/some/path?q=1", "/"] {
            c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
            let r = c.response();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, b"Hello, World!");
            assert_eq!(r.header("content-length"), Some("13"));
            assert!(r.header("date").is_some_and(|d| d.ends_with("GMT")));
            assert_eq!(r.header("connection"), None);
        }
    });
}

#[test]
fn pipelined_requests_answered_in_order() {
    within(Duration::from_secs(30), || {
        let addr = start(test_config());
        let mut c = Client::connect(addr);
        let mut batch = Vec::new();
        for i in 0..20 {
            match i % 4 {
                0 => batch.extend_from_slice(GET),
                1 => batch.extend_from_slice(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n"),
                2 => batch.extend_from_slice(
                    format!(
                        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\nbody {i}",
                        format!("body {i}").len()
                    )
                    .as_bytes(),
                ),
                _ => batch.extend_from_slice(
                    b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
                      3\r\nabc\r\n0\r\n\r\n",
                ),
            }
        }
        c.send(&batch);
        for i in 0..20 {
            let r = c.response_to(i % 4 == 1);
            assert_eq!(r.status, 200, "request {i}");
            match i % 4 {
                1 => assert_eq!((r.body.len(), r.header("content-length")), (0, Some("13"))),
                2 => assert_eq!(r.body, format!("body {i}").as_bytes()),
                _ => assert_eq!(r.body, b"Hello, World!"),
            }
        }
        // The connection is still usable, and a request split across writes is fine too.
        c.send(&GET[..7]);
        thread::sleep(Duration::from_millis(50));
        c.send(&GET[7..]);
        assert_eq!(c.response().body, b"Hello, World!");
    });
}

#[test]
fn request_bodies() {
    within(Duration::from_secs(30), || {
        let addr = start(test_config());
        let mut c = Client::connect(addr);
        // A 4 MiB body to a path that discards it, sent in pieces.
        let body = vec![b'x'; 4 << 20];
        c.send(
            format!("PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len())
                .as_bytes(),
        );
        for piece in body.chunks(64 * 1024) {
            c.send(piece);
        }
        assert_eq!(c.response().body, b"Hello, World!");
        // Echo with Content-Length, a binary body.
        let bin: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        c.send(
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", bin.len())
                .as_bytes(),
        );
        c.send(&bin);
        let r = c.response();
        assert_eq!((r.status, r.body == bin), (200, true));
        // Chunked, with an extension and a trailer.
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n",
        );
        assert_eq!(c.response().body, b"hello, world");
        // Expect: 100-continue gets the interim response before the body is sent.
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        );
        assert_eq!(c.response().status, 100);
        c.send(b"ping");
        assert_eq!(c.response().body, b"ping");
        // An echo body over the limit is refused before it is read.
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
        assert_eq!(c.response().status, 413);
        assert!(c.closed());
    });
}

#[test]
fn connection_close_and_http10() {
    within(Duration::from_secs(30), || {
        let addr = start(test_config());
        // `Connection: close`: answered, then closed; later pipelined requests are ignored.
        let mut c = Client::connect(addr);
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.response();
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        assert!(c.closed());
        // HTTP/1.0 closes by default and needs no Host.
        let mut c = Client::connect(addr);
        c.send(b"GET / HTTP/1.0\r\n\r\n");
        let r = c.response();
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        assert_eq!(r.body, b"Hello, World!");
        assert!(c.closed());
        // HTTP/1.0 with keep-alive stays open.
        let mut c = Client::connect(addr);
        for _ in 0..3 {
            c.send(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
            let r = c.response();
            assert_eq!((r.status, r.header("connection")), (200, Some("keep-alive")));
        }
    });
}

#[test]
fn malformed_requests_get_400_and_close() {
    within(Duration::from_secs(30), || {
        let addr = start(test_config());
        let cases: [(&[u8], u16); 9] = [
            (b"NOT HTTP AT ALL\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header Name: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400), // no Host
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ];
        for (req, status) in cases {
            let mut c = Client::connect(addr);
            // A valid request first: its response must precede the error in the same batch.
            c.send(&[GET, req].concat());
            assert_eq!(c.response().status, 200);
            let r = c.response();
            assert_eq!(r.status, status, "for {:?}", String::from_utf8_lossy(req));
            assert_eq!(r.header("connection"), Some("close"));
            assert!(c.closed());
        }
    });
}

#[test]
fn oversized_heads_get_431_and_close() {
    within(Duration::from_secs(30), || {
        let addr = start(test_config());
        // One huge header, sent whole: the head exceeds the limit.
        let big = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
        let mut c = Client::connect(addr);
        c.send(big.as_bytes());
        assert_eq!(c.response().status, 431);
        assert!(c.closed());
        // A head that never ends: refused once it passes the limit, without waiting for more.
        let mut c = Client::connect(addr);
        c.send(format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}", "b".repeat(20 * 1024)).as_bytes());
        assert_eq!(c.response().status, 431);
        assert!(c.closed());
        // Too many header fields.
        let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
        let mut c = Client::connect(addr);
        c.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes());
        assert_eq!(c.response().status, 431);
        assert!(c.closed());
    });
}

#[test]
fn idle_and_slow_clients_are_cut_off() {
    within(Duration::from_secs(30), || {
        let timeout = Duration::from_millis(400);
        let addr = start(Config { read_timeout: timeout, ..Config::default() });
        // Idle from the start.
        let t = Instant::now();
        let mut c = Client::connect(addr);
        assert!(c.closed());
        let waited = t.elapsed();
        assert!(
            waited >= timeout - Duration::from_millis(50) && waited < timeout * 5,
            "{waited:?}"
        );
        // Idle after a request on a kept-alive connection.
        let mut c = Client::connect(addr);
        c.send(GET);
        assert_eq!(c.response().status, 200);
        let t = Instant::now();
        assert!(c.closed());
        assert!(t.elapsed() < timeout * 5);
        // Slowloris: a byte every 50 ms keeps arriving, but the head never completes.
        let mut c = Client::connect(addr);
        let t = Instant::now();
        let mut cut = false;
        for _ in 0..200 {
            if c.s.write_all(b"X").is_err() {
                cut = true;
                break;
            }
            thread::sleep(Duration::from_millis(50));
            if t.elapsed() > timeout * 6 {
                break;
            }
        }
        // Writes into a closed connection fail once the reset comes back.
        assert!(cut || c.closed(), "slow client was not cut off");
        assert!(t.elapsed() < timeout * 6, "cut off after {:?}", t.elapsed());
        // A body trickling in is bounded by the same deadline.
        let mut c = Client::connect(addr);
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
        let t = Instant::now();
        let mut cut = false;
        for _ in 0..200 {
            if c.s.write_all(b"y").is_err() {
                cut = true;
                break;
            }
            thread::sleep(Duration::from_millis(50));
            if t.elapsed() > timeout * 6 {
                break;
            }
        }
        assert!(cut || c.closed(), "slow body was not cut off");
        assert!(t.elapsed() < timeout * 6);
        // The server still serves.
        let mut c = Client::connect(addr);
        c.send(GET);
        assert_eq!(c.response().status, 200);
    });
}

#[test]
fn thousand_concurrent_clients() {
    raise_fd_limit();
    within(Duration::from_secs(120), || {
        let addr = start(test_config());
        // Clients are goroutines on a runtime of their own: each opens a connection, keeps it
        // open until all are connected, then sends two pipelined requests and a third.
        let ok = gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let (connected, go_ahead) =
                (gonet::sync::WaitGroup::new(), gonet::sync::WaitGroup::new());
            connected.add(1000);
            go_ahead.add(1);
            let clients: Vec<_> = (0..1000)
                .map(|_| {
                    let (connected, go_ahead) = (connected.clone(), go_ahead.clone());
                    gonet::go(move || -> std::io::Result<bool> {
                        let s = gonet::net::TcpStream::connect(addr);
                        connected.done();
                        let mut s = s?;
                        s.set_deadline(Some(Instant::now() + Duration::from_secs(60)))?;
                        go_ahead.wait();
                        s.write_all(&[GET, GET].concat())?;
                        s.write_all(GET)?;
                        let mut got = Vec::new();
                        let mut buf = [0u8; 4096];
                        while got.windows(13).filter(|w| w == b"Hello, World!").count() < 3 {
                            let n = s.read(&mut buf)?;
                            if n == 0 {
                                return Ok(false);
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                        Ok(got.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count() == 3)
                    })
                })
                .collect();
            connected.wait();
            go_ahead.done();
            clients.into_iter().map(|c| c.join()).filter(|r| matches!(r, Ok(Ok(true)))).count()
        });
        assert_eq!(ok, 1000);
    });
}
