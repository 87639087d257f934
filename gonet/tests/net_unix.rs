//! Unix domain sockets on goroutines: stream listener/connect round trips, `UnixStream::pair`,
//! datagram sockets (bound, unbound, connected, pairs), deadlines, shutdown and close.

mod net_util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{UnixDatagram, UnixListener, UnixStream};
use gonet::time::sleep;
use net_util::*;

#[test]
fn stream_round_trip_through_a_socket_file() {
    run(2, LIMIT, || {
        let dir = TempDir::new("unix-stream");
        let path = dir.join("echo.sock");
        let ln = Arc::new(UnixListener::bind(&path).unwrap());
        assert_eq!(ln.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        let l = ln.clone();
        let server = gonet::go(move || {
            let mut served = 0;
            while let Ok((c, _peer)) = l.accept() {
                served += 1;
                gonet::go(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match (&c).read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => (&c).write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
            served
        });
        let clients: Vec<_> = (0..20)
            .map(|i| {
                let path = path.clone();
                gonet::go(move || {
                    let c = UnixStream::connect(&path).unwrap();
                    assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
                    assert!(c.local_addr().unwrap().is_unnamed());
                    for m in 0..10 {
                        let msg = format!("unix client {i} msg {m}");
                        (&c).write_all(msg.as_bytes()).unwrap();
                        let mut got = vec![0u8; msg.len()];
                        (&c).read_exact(&mut got).unwrap();
                        assert_eq!(got, msg.as_bytes());
                    }
                })
            })
            .collect();
        for h in clients {
            h.join().unwrap();
        }
        ln.close().unwrap();
        assert_eq!(server.join().unwrap(), 20);
    });
}

#[test]
fn pair_full_duplex_from_two_goroutines() {
    run(2, LIMIT, || {
        const N: usize = 8 << 20;
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (Arc::new(a), Arc::new(b));
        let mk_writer = |s: Arc<UnixStream>, seed: u8| {
            gonet::go(move || {
                let buf: Vec<u8> = (0..N).map(|i| (i % 251) as u8 ^ seed).collect();
                (&*s).write_all(&buf).unwrap();
            })
        };
        let mk_reader = |s: Arc<UnixStream>, seed: u8| {
            gonet::go(move || {
                let mut buf = vec![0u8; N];
                (&*s).read_exact(&mut buf).unwrap();
                for (i, &x) in buf.iter().enumerate() {
                    assert_eq!(x, (i % 251) as u8 ^ seed, "byte {i}");
                }
            })
        };
        let hs =
            [mk_writer(a.clone(), 1), mk_writer(b.clone(), 2), mk_reader(a, 2), mk_reader(b, 1)];
        for h in hs {
            h.join().unwrap();
        }
    });
}

#[test]
fn stream_deadline_shutdown_and_close() {
    run(2, LIMIT, || {
        let (a, b) = UnixStream::pair().unwrap();
        let t = Instant::now();
        a.set_read_deadline(Some(t + ms(100))).unwrap();
        assert_timeout((&a).read(&mut [0u8; 4]));
        assert_took(t, ms(100));
        (&b).write_all(b"data").unwrap();
        a.set_read_deadline(None).unwrap();
        let mut got = [0u8; 4];
        (&a).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"data");

        b.shutdown(Shutdown::Write).unwrap();
        assert_eq!((&a).read(&mut got).unwrap(), 0);
        (&a).write_all(b"back").unwrap();
        (&b).read_exact(&mut got).unwrap();

        let (c, _d) = UnixStream::pair().unwrap();
        let c = Arc::new(c);
        let r = c.clone();
        let h = gonet::go(move || (&*r).read(&mut [0u8; 4]).map(|_| ()));
        sleep(ms(50));
        c.close().unwrap();
        assert_closed(h.join().unwrap());
    });
}

#[test]
fn listener_deadline_and_close() {
    run(2, LIMIT, || {
        let dir = TempDir::new("unix-listener");
        let ln = Arc::new(UnixListener::bind(dir.join("l.sock")).unwrap());
        let t = Instant::now();
        ln.set_deadline(Some(t + ms(100))).unwrap();
        assert_timeout(ln.accept());
        assert_took(t, ms(100));
        ln.set_deadline(None).unwrap();
        let l = ln.clone();
        let h = gonet::go(move || l.accept().map(|_| ()));
        sleep(ms(50));
        ln.close().unwrap();
        assert_closed(h.join().unwrap());
    });
}

#[test]
fn bind_and_connect_errors() {
    run(1, LIMIT, || {
        let dir = TempDir::new("unix-errors");
        let path = dir.join("taken.sock");
        let ln = UnixListener::bind(&path).unwrap();
        assert_eq!(UnixListener::bind(&path).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        let e = UnixStream::connect(dir.join("missing.sock")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // As in Go, the listener removes its file when it goes away...
        drop(ln);
        let e = UnixStream::connect(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        // ...unless told not to: then the file outlives it and nobody accepts on it.
        let ln = UnixListener::bind(&path).unwrap();
        ln.set_unlink_on_close(false);
        drop(ln);
        let e = UnixStream::connect(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    });
}

#[test]
fn datagram_send_to_and_recv_from_paths() {
    run(2, LIMIT, || {
        let dir = TempDir::new("unix-dgram");
        let (pa, pb) = (dir.join("a.sock"), dir.join("b.sock"));
        let a = UnixDatagram::bind(&pa).unwrap();
        let b = Arc::new(UnixDatagram::bind(&pb).unwrap());
        assert_eq!(b.local_addr().unwrap().as_pathname(), Some(pb.as_path()));
        let r = b.clone();
        let h = gonet::go(move || {
            let mut buf = [0u8; 64];
            let (n, from) = r.recv_from(&mut buf).unwrap();
            (buf[..n].to_vec(), from.as_pathname().map(|p| p.to_path_buf()))
        });
        sleep(ms(50));
        assert_eq!(a.send_to(b"to b", &pb).unwrap(), 4);
        let (m, from) = h.join().unwrap();
        assert_eq!(m, b"to b");
        assert_eq!(from.as_deref(), Some(pa.as_path()));

        // Boundaries are kept.
        for i in 1..=3u8 {
            a.send_to(&vec![i; i as usize * 10], &pb).unwrap();
        }
        let mut buf = [0u8; 64];
        for i in 1..=3u8 {
            let n = b.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &vec![i; i as usize * 10][..]);
        }

        // Connected: send/recv.
        a.connect(&pb).unwrap();
        a.send(b"connected").unwrap();
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"connected");

        // An unbound socket can send; its address is unnamed.
        let u = UnixDatagram::unbound().unwrap();
        u.send_to(b"anon", &pb).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed());
    });
}

#[test]
fn datagram_pair_deadline_and_close() {
    run(2, LIMIT, || {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"one").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf).unwrap(), 3);
        let t = Instant::now();
        b.set_read_deadline(Some(t + ms(100))).unwrap();
        assert_timeout(b.recv(&mut buf));
        assert_took(t, ms(100));
        assert_timeout(b.recv_from(&mut buf));
        b.set_read_deadline(None).unwrap();
        let b = Arc::new(b);
        let r = b.clone();
        let h = gonet::go(move || r.recv(&mut [0u8; 8]));
        sleep(ms(50));
        a.send(b"two").unwrap();
        assert_eq!(h.join().unwrap().unwrap(), 3);
        let r = b.clone();
        let h = gonet::go(move || r.recv(&mut [0u8; 8]));
        sleep(ms(50));
        b.close().unwrap();
        assert_closed(h.join().unwrap());
    });
}

/// A datagram sender blocks when the receiver's queue is full, and its write deadline ends it.
#[test]
fn datagram_send_blocks_on_a_full_receiver_until_its_deadline() {
    run(2, LIMIT, || {
        let (a, b) = UnixDatagram::pair().unwrap();
        let t = Instant::now();
        a.set_write_deadline(Some(t + ms(200))).unwrap();
        let mut sent = 0;
        let err = loop {
            match a.send(&[0u8; 512]) {
                Ok(_) => sent += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(sent > 0);
        assert_took(t, ms(200));
        // Draining the receiver lets the sender go on.
        a.set_write_deadline(None).unwrap();
        let mut buf = [0u8; 512];
        for _ in 0..sent {
            assert_eq!(b.recv(&mut buf).unwrap(), 512);
        }
        a.send(b"after").unwrap();
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
    });
}

#[test]
fn from_std_unix_sockets() {
    run(2, LIMIT, || {
        let (sa, sb) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from(sa);
        let b = UnixStream::from(sb);
        a.set_read_deadline(Some(Instant::now() + ms(50))).unwrap();
        assert_timeout((&a).read(&mut [0u8; 1]));
        (&b).write_all(b"std").unwrap();
        a.set_read_deadline(None).unwrap();
        let mut got = [0u8; 3];
        (&a).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"std");

        let (da, db) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let da = UnixDatagram::from(da);
        let db = UnixDatagram::from(db);
        db.set_read_deadline(Some(Instant::now() + ms(50))).unwrap();
        assert_timeout(db.recv(&mut got));
        da.send(b"dg").unwrap();
        db.set_read_deadline(None).unwrap();
        assert_eq!(db.recv(&mut got).unwrap(), 2);

        let dir = TempDir::new("unix-std");
        let p = dir.join("s.sock");
        let ln = UnixListener::from(std::os::unix::net::UnixListener::bind(&p).unwrap());
        ln.set_deadline(Some(Instant::now() + ms(50))).unwrap();
        assert_timeout(ln.accept());
    });
}

/// As for TCP: the end of the stream, arriving with the last data after short reads, is seen.
#[test]
fn eof_arriving_with_the_last_data_after_short_reads() {
    run(2, LIMIT, || {
        let dir = TempDir::new("unix-eof");
        let path = dir.join("eof.sock");
        let ln = UnixListener::bind(&path).unwrap();
        for round in 0..20 {
            let c = UnixStream::connect(&path).unwrap();
            let (s, _) = ln.accept().unwrap();
            let mut buf = [0u8; 1024];
            (&s).write_all(b"x").unwrap();
            sleep(ms(10));
            assert_eq!((&c).read(&mut buf).unwrap(), 1);
            (&s).write_all(b"abc").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            sleep(ms(10));
            c.set_read_deadline(Some(Instant::now() + Duration::from_secs(2))).unwrap();
            assert_eq!((&c).read(&mut buf).unwrap(), 3, "round {round}");
            match (&c).read(&mut buf) {
                Ok(0) => {}
                other => panic!("round {round}: expected EOF, got {other:?}"),
            }
            // And the other way round, on the accepted side.
            (&c).write_all(b"y").unwrap();
            sleep(ms(10));
            assert_eq!((&s).read(&mut buf).unwrap(), 1);
            (&c).write_all(b"de").unwrap();
            drop(c);
            sleep(ms(10));
            s.set_read_deadline(Some(Instant::now() + Duration::from_secs(2))).unwrap();
            assert_eq!((&s).read(&mut buf).unwrap(), 2, "round {round}");
            match (&s).read(&mut buf) {
                Ok(0) => {}
                other => panic!("round {round}: expected EOF on the accepted side, got {other:?}"),
            }
        }
    });
}
