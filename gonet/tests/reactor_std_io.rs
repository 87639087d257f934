//! Code written for `std::io` runs on reactor connections unchanged: httparse over
//! `Read`/`Write` on `&Connection`, a rustls server session over `&mut Connection` inside a
//! handler, and a rustls client over a dialed `Connection`. Also: a runtime that ends without
//! `shutdown` still closes its reactor connections and listener.

#[allow(dead_code)]
#[path = "../../examples/tls_echo.rs"]
mod tls_echo;

mod common;
mod reactor_util;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use gonet::reactor::{Connection, EventLoop};
use reactor_util::*;
use rustls::pki_types::ServerName;
use rustls::{ServerConnection, Stream};

const LIMIT: Duration = Duration::from_secs(60);

/// An HTTP/1.1 handler that knows nothing of the reactor: it reads through `Read` until
/// httparse has a whole head, then answers through `Write`.
fn http(c: &mut Connection) -> io::Result<()> {
    let mut r: &Connection = c;
    let mut head = Vec::new();
    let mut buf = [0u8; 7]; // small on purpose: the head arrives in many reads
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut hs);
        match req.parse(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
            httparse::Status::Complete(len) => {
                let body = format!(
                    "{} {} ({} headers)",
                    req.method.unwrap(),
                    req.path.unwrap(),
                    req.headers.len()
                );
                let mut w: &Connection = c;
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", body.len(), body)?;
                w.flush()?;
                assert_eq!(len, head.len(), "one request at a time in this test");
                return Ok(());
            }
            httparse::Status::Partial => {}
        }
    }
}

#[test]
fn httparse_over_read_and_write_on_a_connection() {
    common::within(LIMIT, || {
        let srv = Server::start(EventLoop::builder(http).build(), 2);
        let mut s = srv.connect();
        for i in 0..20 {
            let req = format!("GET /item/{i} HTTP/1.1\r\nHost: x\r\nX-Round: {i}\r\n\r\n");
            // Sent in pieces, so the handler's reads see partial heads.
            for piece in req.as_bytes().chunks(5) {
                s.write_all(piece).unwrap();
                thread::sleep(Duration::from_micros(200));
            }
            let body = format!("GET /item/{i} (2 headers)");
            let want = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let mut got = vec![0u8; want.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
        drop(s);
        srv.stop().unwrap();
    });
}

/// A TLS echo server whose whole session runs inside one handler call: rustls reads and
/// writes through `&mut Connection`, which waits for input and releases what it consumed.
fn tls_server(cfg: Arc<rustls::ServerConfig>) -> impl Fn(&mut Connection) -> io::Result<()> {
    move |mut c: &mut Connection| {
        let mut sess = ServerConnection::new(cfg.clone()).map_err(io::Error::other)?;
        let mut tls = Stream::new(&mut sess, &mut c);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match tls.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            };
            tls.write_all(&buf[..n])?;
            tls.flush()?;
        }
        tls.conn.send_close_notify();
        tls.flush()
    }
}

#[test]
fn rustls_server_session_inside_a_handler_and_client_over_a_dialed_connection() {
    common::within(LIMIT, || {
        let (cert, key, _) = tls_echo::self_signed().unwrap();
        let scfg = tls_echo::server_config(vec![cert.clone()], key).unwrap();
        let srv = Server::start(EventLoop::builder(tls_server(scfg)).build(), 2);
        let addr = srv.addr;
        let ccfg = tls_echo::client_config(&[cert], rustls::DEFAULT_VERSIONS).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();

        // A plain-thread client over `reactor::dial` (Read/Write on `Connection`).
        let (c2, n2) = (ccfg.clone(), name.clone());
        let on_thread = thread::spawn(move || {
            let conn = gonet::reactor::dial(addr, Duration::from_secs(5)).unwrap();
            let sess = rustls::ClientConnection::new(c2, n2).unwrap();
            let mut tls = rustls::StreamOwned::new(sess, conn);
            tls_echo::echo_lines(&mut tls, 200).unwrap()
        });
        // Eight goroutine clients over `reactor::dial` at once.
        let totals = gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let (cfg, name) = (ccfg.clone(), name.clone());
                    gonet::go(move || {
                        let conn = gonet::reactor::dial(addr, Duration::from_secs(5)).unwrap();
                        let sess = rustls::ClientConnection::new(cfg, name).unwrap();
                        let mut tls = rustls::StreamOwned::new(sess, conn);
                        let n = tls_echo::echo_lines(&mut tls, 100).unwrap();
                        tls.conn.send_close_notify();
                        tls.flush().unwrap();
                        let mut rest = Vec::new();
                        // The server answers close_notify with its own, then the stream ends.
                        tls.read_to_end(&mut rest).unwrap();
                        assert!(rest.is_empty());
                        n
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        });
        let expect: usize =
            (0..100).map(|i| format!("line {i}: {}\n", "gonet ".repeat(i * 7 % 700)).len()).sum();
        assert_eq!(totals, vec![expect; 8]);
        assert!(on_thread.join().unwrap() > expect);
        srv.stop().unwrap();
    });
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The main goroutine returns while the loop still serves: idle connections, a handler
/// waiting in `next` and the listener are all closed when the runtime ends (their peers see
/// the end of the stream), and no descriptor is left behind.
#[test]
fn a_runtime_ending_without_shutdown_closes_its_connections() {
    common::within(LIMIT, || {
        // The stack allocator keeps one process-wide descriptor (a pidfd for
        // `process_madvise`), opened by the first runtime.
        gonet::Builder::new().procs(1).build().unwrap().run(|| {});
        for round in 0..3 {
            let before = open_fds();
            let (tx, rx) = mpsc::channel();
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let rt = thread::spawn(move || {
                gonet::Builder::new().procs(2).build().unwrap().run(move || {
                    let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
                    tx.send(ln.local_addr().unwrap()).unwrap();
                    let lp = EventLoop::builder(|c: &mut Connection| {
                        // Waits for a 4-byte frame: a 1-byte request leaves it parked.
                        let v = c.next(4)?.to_vec();
                        c.write_binary(&v)?;
                        c.flush()
                    })
                    .build();
                    gonet::go(move || lp.serve(ln));
                    // End the runtime when the test says so, without `shutdown`.
                    while done_rx.try_recv().is_err() {
                        gonet::time::sleep(Duration::from_millis(2));
                    }
                })
            });
            let addr = rx.recv().unwrap();
            let mut conns: Vec<TcpStream> = (0..20)
                .map(|_| {
                    let s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    s
                })
                .collect();
            for s in &mut conns[..10] {
                assert_eq!(roundtrip(s, b"ping"), b"ping");
            }
            for s in &mut conns[10..] {
                s.write_all(b"x").unwrap(); // its handler now waits for 3 more bytes
            }
            thread::sleep(Duration::from_millis(50));
            done_tx.send(()).unwrap();
            rt.join().unwrap();
            for (i, s) in conns.iter_mut().enumerate() {
                let mut b = [0u8; 8];
                match s.read(&mut b) {
                    Ok(0) => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    r => panic!(
                        "round {round}: connection {i} still open after the runtime ended: {r:?}"
                    ),
                }
            }
            assert!(TcpStream::connect(addr).is_err(), "round {round}: the listener is still open");
            drop(conns);
            assert_eq!(open_fds(), before, "round {round}: descriptors left behind");
        }
    });
}
