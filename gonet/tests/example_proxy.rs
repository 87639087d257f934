//! Tests of the `proxy` example, run in-process: 64 MiB each way through it intact (splice and
//! read/write modes), half-close passed on, the idle timeout closing a silent connection but
//! not a busy one, and a refused backend.

#[allow(dead_code)]
#[path = "../../examples/proxy.rs"]
mod proxy;

mod net_util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use gonet::net::TcpListener;
use net_util::*;

/// A backend that echoes everything, one goroutine per connection, and a proxy in front of
/// it; both on their own runtime in a background thread. Returns the proxy's address.
fn start(idle: Duration, rw: bool) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let back = TcpListener::bind("127.0.0.1:0").unwrap();
            let back_addr = back.local_addr().unwrap().to_string();
            gonet::go(move || loop {
                let (c, _) = back.accept().unwrap();
                gonet::go(move || {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match (&c).read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if (&c).write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = c.shutdown(Shutdown::Write);
                });
            });
            let ln = TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(ln.local_addr().unwrap()).unwrap();
            proxy::run_proxy(ln, back_addr.into(), idle, rw);
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("proxy started")
}

fn round_trip(addr: SocketAddr) {
    const BLOCK: usize = 64 * 1024;
    const BLOCKS: u64 = 1024; // 64 MiB
    let c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = c.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let mut buf = vec![0u8; BLOCK];
        for k in 0..BLOCKS {
            pattern_block(k, &mut buf);
            w.write_all(&buf).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut r = &c;
    let (mut got, mut want) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    for k in 0..BLOCKS {
        r.read_exact(&mut got).unwrap();
        pattern_block(k, &mut want);
        assert!(got == want, "block {k} differs");
    }
    // The client's half-close went through the backend and came back.
    let mut b = [0u8; 1];
    assert_eq!(r.read(&mut b).unwrap(), 0);
    writer.join().unwrap();
}

#[test]
fn proxies_bytes_intact_with_splice_and_read_write() {
    within(Duration::from_secs(120), || {
        round_trip(start(Duration::from_secs(30), false));
        round_trip(start(Duration::from_secs(30), true));
    });
}

#[test]
fn idle_timeout_closes_silent_connections_only() {
    within(LIMIT, || {
        let addr = start(ms(500), false);
        // Silent: closed after about the idle timeout.
        let c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t = Instant::now();
        let mut b = [0u8; 8];
        let r = (&c).read(&mut b);
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
        let took = t.elapsed();
        assert!(took >= ms(450) && took < Duration::from_secs(5), "closed after {took:?}");

        // Busy for 3 idle periods (a byte every 100 ms, echoed back): never cut.
        let c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = Instant::now();
        while t.elapsed() < ms(1500) {
            (&c).write_all(b"x").unwrap();
            (&c).read_exact(&mut b[..1]).unwrap();
            thread::sleep(ms(100));
        }
    });
}

#[test]
fn refused_backend_closes_the_client() {
    within(LIMIT, || {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            gonet::Builder::new().procs(1).build().unwrap().run(move || {
                let ln = TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(ln.local_addr().unwrap()).unwrap();
                proxy::run_proxy(ln, dead_addr().to_string().into(), ms(500), false);
            })
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 1];
        assert!(matches!((&c).read(&mut b), Ok(0) | Err(_)));
    });
}
