//! Name resolution: host names resolve for connect, bind and send_to, and a slow resolution
//! never blocks the worker: other goroutines keep running meanwhile, even with one worker.

mod net_util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gonet::net::{Lookup, TcpListener, TcpStream, UdpSocket};
use gonet::time::sleep;
use net_util::*;

#[test]
fn connect_and_bind_to_localhost_names() {
    run(2, LIMIT, || {
        let ln = TcpListener::bind("localhost:0").unwrap();
        let addr = ln.local_addr().unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        let port = addr.port();
        let by_string = TcpStream::connect(format!("localhost:{port}")).unwrap();
        let by_tuple = TcpStream::connect(("localhost", port)).unwrap();
        for c in [&by_string, &by_tuple] {
            let (s, peer) = ln.accept().unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            (&s).write_all(b"resolved").unwrap();
            let mut b = [0u8; 8];
            (&*c).read_exact(&mut b).unwrap();
            assert_eq!(&b, b"resolved");
        }
        assert_eq!(
            TcpStream::connect_timeout(addr, Duration::from_secs(5)).unwrap().peer_addr().unwrap(),
            addr
        );
    });
}

#[test]
fn udp_bind_and_send_to_names() {
    run(2, LIMIT, || {
        let a = UdpSocket::bind("localhost:0").unwrap();
        let b = UdpSocket::bind(("localhost", 0)).unwrap();
        let port = b.local_addr().unwrap().port();
        a.send_to(b"named", format!("localhost:{port}")).unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"named");
        assert_eq!(from, a.local_addr().unwrap());
        a.connect(("localhost", port)).unwrap();
        a.send(b"conn").unwrap();
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"conn");
    });
}

#[test]
fn malformed_addresses_are_errors() {
    run(1, LIMIT, || {
        for bad in ["no-port-here", "localhost:notaport", "127.0.0.1:99999"] {
            let e = TcpStream::connect(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
            assert!(TcpListener::bind(bad).is_err(), "{bad}");
            assert!(UdpSocket::bind(bad).is_err(), "{bad}");
        }
        let none: &[SocketAddr] = &[];
        assert_eq!(TcpListener::bind(none).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    });
}

/// An address whose resolution takes a while (like a DNS query) and records the thread that
/// ran it.
struct SlowName {
    addr: SocketAddr,
    delay: Duration,
    ran_on: Arc<Mutex<Vec<String>>>,
}

impl ToSocketAddrs for SlowName {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        let name = std::thread::current().name().unwrap_or("<unnamed>").to_string();
        self.ran_on.lock().unwrap().push(name);
        std::thread::sleep(self.delay);
        Ok(vec![self.addr].into_iter())
    }
}

/// With a single worker, a goroutine keeps ticking while another waits for a slow
/// resolution: the lookup runs off the worker.
#[test]
fn slow_resolution_does_not_block_other_goroutines() {
    run(1, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let ticks = Arc::new(AtomicU64::new(0));
        let t2 = ticks.clone();
        let ticker = gonet::go(move || {
            let end = Instant::now() + ms(600);
            while Instant::now() < end {
                t2.fetch_add(1, Ordering::Relaxed);
                sleep(ms(10));
            }
        });
        gonet::yield_now();
        let ran_on = Arc::new(Mutex::new(Vec::new()));
        let before = ticks.load(Ordering::Relaxed);
        let t = Instant::now();
        let c =
            TcpStream::connect(Lookup(SlowName { addr, delay: ms(400), ran_on: ran_on.clone() }))
                .unwrap();
        assert!(t.elapsed() >= ms(399));
        let during = ticks.load(Ordering::Relaxed) - before;
        assert!(
            during >= 10,
            "only {during} ticks during a 400 ms resolution: the worker was blocked"
        );
        let threads = ran_on.lock().unwrap().clone();
        assert_eq!(threads.len(), 1);
        assert!(!threads[0].starts_with("gonet-worker"), "resolved on {}", threads[0]);
        let (s, _) = ln.accept().unwrap();
        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
        ticker.join().unwrap();
    });
}

/// Several slow resolutions at once overlap instead of running one after another, and bind
/// and UDP resolve off the worker too.
#[test]
fn slow_resolutions_run_concurrently() {
    run(1, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let ran_on = Arc::new(Mutex::new(Vec::new()));
        let t = Instant::now();
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let ran_on = ran_on.clone();
                gonet::go(move || {
                    let name = SlowName { addr, delay: ms(500), ran_on };
                    match i % 3 {
                        0 => drop(TcpStream::connect(Lookup(name)).unwrap()),
                        1 => {
                            let local = SocketAddr::from(([127, 0, 0, 1], 0));
                            let name = SlowName { addr: local, ..name };
                            drop(UdpSocket::bind(Lookup(name)).unwrap());
                        }
                        _ => {
                            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
                            u.send_to(b"x", Lookup(name)).unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let took = t.elapsed();
        assert!(took >= ms(499));
        assert!(took < Duration::from_secs(3), "8 resolutions of 500 ms took {took:?}: serialised");
        let threads = ran_on.lock().unwrap().clone();
        assert_eq!(threads.len(), 8);
        assert!(threads.iter().all(|t| !t.starts_with("gonet-worker")), "{threads:?}");
    });
}

/// Outside a runtime, resolution simply runs on the calling thread.
#[test]
fn resolution_on_a_plain_thread() {
    within(LIMIT, || {
        let ln = TcpListener::bind("localhost:0").unwrap();
        let port = ln.local_addr().unwrap().port();
        let c = TcpStream::connect(("localhost", port)).unwrap();
        let (s, _) = ln.accept().unwrap();
        (&c).write_all(b"t").unwrap();
        let mut b = [0u8; 1];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"t");
    });
}

/// The goroutine that waited for a resolution gets to run again even while the other
/// goroutines of its worker never park (they only yield): the wake-up from the blocking pool
/// must not be starved.
#[test]
fn resolving_goroutine_resumes_while_others_keep_yielding() {
    run(1, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinners: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                gonet::go(move || {
                    let mut n = 0u64;
                    // Bounded, so that a starved waiter ends as a failure, not a hang.
                    let end = Instant::now() + Duration::from_secs(8);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                        n += 1;
                        gonet::yield_now();
                    }
                    n
                })
            })
            .collect();
        gonet::yield_now(); // let the spinners start
        let ran_on = Arc::new(Mutex::new(Vec::new()));
        let t = Instant::now();
        let c = TcpStream::connect(Lookup(SlowName { addr, delay: ms(100), ran_on })).unwrap();
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        for h in spinners {
            assert!(h.join().unwrap() > 0);
        }
        assert!(
            took < Duration::from_secs(5),
            "resumed only after {took:?}: starved by yielding goroutines"
        );
        drop(c);
    });
}
