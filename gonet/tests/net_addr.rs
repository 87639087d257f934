//! Addresses and dialing the Go way: literal addresses never wait for the blocking pool,
//! `":port"` listens everywhere, dials try each resolved address in turn with a share of the
//! deadline, and errors name the operation, the network and the address.

mod net_util;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use gonet::net::{
    is_closed, raw_os_error, Dialer, ListenConfig, Lookup, OpError, TcpListener, TcpStream,
    UdpSocket, UnixStream,
};
use net_util::*;

/// With every blocking-pool thread busy and 88 more jobs queued, literal addresses in every
/// form connect, bind and send at once: they never go to the pool. The jobs wait on a gate
/// that opens only after the literal calls are done, so a call that queued behind them would
/// take the gate's 4 s fallback.
#[test]
fn literal_addresses_skip_a_saturated_blocking_pool() {
    run(2, Duration::from_secs(60), || {
        let ln = listener();
        let port = ln.local_addr().unwrap().port();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate_rx));
        let opened = Arc::new(AtomicBool::new(false));
        let jobs: Vec<_> = (0..600)
            .map(|_| {
                let gate = gate.clone();
                gonet::go(move || {
                    gonet::blocking(move || {
                        let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(4));
                    })
                })
            })
            .collect();
        // Let the jobs reach the pool.
        gonet::time::sleep(ms(300));
        let t = Instant::now();
        let ip: IpAddr = Ipv4Addr::LOCALHOST.into();
        let conns = vec![
            TcpStream::connect(format!("127.0.0.1:{port}")).unwrap(),
            TcpStream::connect(format!("127.0.0.1:{port}").as_str()).unwrap(),
            TcpStream::connect(("127.0.0.1", port)).unwrap(),
            TcpStream::connect((ip, port)).unwrap(),
            TcpStream::connect(format!(":{port}")).unwrap(),
            TcpStream::connect_timeout(format!("127.0.0.1:{port}"), Duration::from_secs(5))
                .unwrap(),
        ];
        let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let u2 = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        u.send_to(b"x", u2.local_addr().unwrap().to_string()).unwrap();
        let took = t.elapsed();
        assert!(!opened.load(Ordering::Relaxed));
        assert!(
            took < Duration::from_secs(3),
            "literal addresses took {took:?}: they waited for the saturated blocking pool"
        );
        opened.store(true, Ordering::Relaxed);
        drop(gate_tx); // opens the gate: every job returns at once
        for j in jobs {
            j.join().unwrap();
        }
        drop((conns, l2));
    });
}

/// `":port"` listens on every interface (TCP and UDP) and dials the local system; peers of a
/// dual-stack listener show as IPv4.
#[test]
fn empty_host_listens_everywhere() {
    run(2, LIMIT, || {
        let ln = TcpListener::bind(":0").unwrap();
        let addr = ln.local_addr().unwrap();
        assert!(addr.ip().is_unspecified(), "{addr}");
        let c = TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
        let (s, peer) = ln.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        assert!(peer.is_ipv4(), "{peer}");
        (&c).write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        (&s).read_exact(&mut b).unwrap();
        let c2 = TcpStream::connect(format!(":{}", addr.port())).unwrap();
        assert_eq!(c2.peer_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);

        let u = UdpSocket::bind(":0").unwrap();
        assert!(u.local_addr().unwrap().ip().is_unspecified());
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"any", ("127.0.0.1", u.local_addr().unwrap().port())).unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"any"[..], tx.local_addr().unwrap()));
    });
}

/// A dial tries each resolved address in turn: a refusing first address does not stop it,
/// whether the list is literal or comes from a resolver; if all fail, the first error is
/// returned, naming its address.
#[test]
fn dial_tries_each_address() {
    run(2, LIMIT, || {
        let ln = listener();
        let good = ln.local_addr().unwrap();
        let (dead1, dead2) = (dead_addr(), dead_addr());
        let list = [dead1, good];
        for c in [
            TcpStream::connect(&list[..]).unwrap(),
            TcpStream::connect(Lookup(&list[..])).unwrap(),
            TcpStream::connect_timeout(&list[..], Duration::from_secs(5)).unwrap(),
            Dialer::new().dial(&list[..]).unwrap(),
        ] {
            assert_eq!(c.peer_addr().unwrap(), good);
            let (s, _) = ln.accept().unwrap();
            assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
        }
        let e = TcpStream::connect(&[dead1, dead2][..]).unwrap_err();
        assert_eq!(e.to_string(), format!("dial tcp {dead1}: connect: connection refused"));
        // A host name with a port nobody listens on at either loopback address; and
        // "localhost" with a listener on 127.0.0.1 connects even if it resolves to ::1 first.
        let c = TcpStream::connect_timeout(format!("localhost:{}", good.port()), ms(5000));
        assert_eq!(c.unwrap().peer_addr().unwrap(), good);
    });
}

/// A listener whose accept queue is full drops SYNs: a black hole on loopback.
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let ln = ListenConfig { backlog: 0, ..Default::default() }.listen("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    // Fill the queue (one entry with backlog 0; a second to be sure).
    let fill: Vec<_> = (0..2)
        .filter_map(|_| Dialer { timeout: Some(ms(300)), ..Default::default() }.dial(addr).ok())
        .collect();
    (ln, fill)
}

/// With a deadline, each address gets a share of the time left (Go's partialDeadline): a
/// black-holed first address times out after its half of a 5 s budget and the second
/// address still connects; with a single address the whole budget goes to it.
#[test]
fn dial_splits_the_deadline_between_addresses() {
    run(2, LIMIT, || {
        let (hole_ln, _fill) = black_hole();
        let hole = hole_ln.local_addr().unwrap();
        let ln = listener();
        let good = ln.local_addr().unwrap();

        // A lone black-holed address: the dial times out with the whole budget.
        let t = Instant::now();
        let e = TcpStream::connect_timeout(hole, ms(700)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(e.to_string(), format!("dial tcp {hole}: i/o timeout"));
        assert!(t.elapsed() >= ms(690), "{:?}", t.elapsed());

        let t = Instant::now();
        let c = Dialer { timeout: Some(Duration::from_secs(5)), ..Default::default() }
            .dial(&[hole, good][..])
            .unwrap();
        let took = t.elapsed();
        assert_eq!(c.peer_addr().unwrap(), good);
        assert!(took >= ms(2400) && took < ms(4800), "took {took:?}, want about 2.5 s");
    });
}

/// Dial, listen, bind and accept errors read like Go's `OpError`s, with the right kind and
/// the OS error reachable.
#[test]
fn errors_name_operation_network_and_address() {
    run(2, LIMIT, || {
        let dead = dead_addr();
        let e = TcpStream::connect(dead).unwrap_err();
        assert_eq!(e.to_string(), format!("dial tcp {dead}: connect: connection refused"));
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(raw_os_error(&e), Some(libc::ECONNREFUSED));
        let src = std::error::Error::source(&e).unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(src.raw_os_error(), Some(libc::ECONNREFUSED));
        let op = e.get_ref().unwrap().downcast_ref::<OpError>().unwrap();
        assert_eq!((op.op(), op.net(), op.syscall()), ("dial", "tcp", Some("connect")));
        assert_eq!(op.addr(), Some(dead.to_string().as_str()));

        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let e = TcpListener::bind(addr).unwrap_err();
        assert_eq!(e.to_string(), format!("listen tcp {addr}: bind: address already in use"));
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(raw_os_error(&e), Some(libc::EADDRINUSE));
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ua = u.local_addr().unwrap();
        let e = UdpSocket::bind(ua).unwrap_err();
        assert_eq!(e.to_string(), format!("listen udp {ua}: bind: address already in use"));

        ln.close().unwrap();
        let e = ln.accept().unwrap_err();
        assert!(is_closed(&e), "{e}");
        assert_eq!(e.to_string(), format!("accept tcp {addr}: use of closed network connection"));

        let dir = TempDir::new("addr-errors");
        let path = dir.join("missing.sock");
        let e = UnixStream::connect(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("dial unix {}: connect: no such file or directory", path.display())
        );
        assert_eq!(e.kind(), io::ErrorKind::NotFound);

        let e = TcpStream::connect("127.0.0.1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "dial tcp: address 127.0.0.1: missing port in address");

        // Reads and writes return the OS error itself, unwrapped.
        let (c, s) = tcp_pair();
        s.set_linger(Some(Duration::ZERO)).unwrap();
        s.close().unwrap();
        let mut b = [0u8; 4];
        let e = (&c).read(&mut b).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{e}");
    });
}
