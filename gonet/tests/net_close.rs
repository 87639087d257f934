//! Close: it wakes every call blocked on the socket with the "closed" error, later calls fail
//! the same way, a second close is an error, and the descriptor is released only once the
//! last call in flight has returned (so a reused descriptor number is never touched).

mod net_util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{
    is_closed, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use gonet::time::sleep;
use net_util::*;

#[test]
fn close_unblocks_a_blocked_read() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        let c2 = c.clone();
        let h = gonet::go(move || {
            let mut b = [0u8; 16];
            (&*c2).read(&mut b)
        });
        sleep(ms(100));
        assert!(!h.is_finished());
        let t = Instant::now();
        c.close().unwrap();
        let r = h.join().unwrap();
        assert_closed(r);
        assert!(t.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn close_unblocks_a_blocked_write() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        let c2 = c.clone();
        let h = gonet::go(move || {
            let chunk = vec![3u8; 256 * 1024];
            loop {
                // A write cut short reports its partial count first; the next call fails.
                if let Err(e) = (&*c2).write(&chunk) {
                    return e;
                }
            }
        });
        sleep(ms(200));
        assert!(!h.is_finished(), "the writer should be blocked on a full buffer");
        c.close().unwrap();
        let e = h.join().unwrap();
        assert!(is_closed(&e), "{e:?}");
    });
}

#[test]
fn close_unblocks_a_blocked_accept() {
    run(2, LIMIT, || {
        let ln = Arc::new(listener());
        let addr = ln.local_addr().unwrap();
        let ln2 = ln.clone();
        let h = gonet::go(move || ln2.accept().map(|_| ()));
        sleep(ms(100));
        assert!(!h.is_finished());
        ln.close().unwrap();
        assert_closed(h.join().unwrap());
        // The port was released: it can be bound again (Go's TestListenCloseListen).
        drop(ln);
        let again = TcpListener::bind(addr).expect("rebind after close");
        assert_eq!(again.local_addr().unwrap(), addr);
    });
}

#[test]
fn close_unblocks_udp_unix_and_datagram_receivers() {
    run(2, LIMIT, || {
        let dir = TempDir::new("close");
        let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let (us, _peer) = UnixStream::pair().unwrap();
        let us = Arc::new(us);
        let ud = Arc::new(UnixDatagram::bind(dir.join("d.sock")).unwrap());
        let ul = Arc::new(UnixListener::bind(dir.join("l.sock")).unwrap());

        let u = udp.clone();
        let h1 = gonet::go(move || u.recv_from(&mut [0u8; 64]).map(|_| ()));
        let u = us.clone();
        let h2 = gonet::go(move || (&*u).read(&mut [0u8; 64]).map(|_| ()));
        let u = ud.clone();
        let h3 = gonet::go(move || u.recv(&mut [0u8; 64]).map(|_| ()));
        let u = ul.clone();
        let h4 = gonet::go(move || u.accept().map(|_| ()));
        sleep(ms(100));
        for h in [&h1, &h2, &h3, &h4] {
            assert!(!h.is_finished());
        }
        udp.close().unwrap();
        us.close().unwrap();
        ud.close().unwrap();
        ul.close().unwrap();
        for h in [h1, h2, h3, h4] {
            assert_closed(h.join().unwrap());
        }
    });
}

#[test]
fn close_wakes_a_reader_and_a_writer_at_once() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        fill_send_buffer(&c);
        let c = Arc::new(c);
        let (r, w) = (c.clone(), c.clone());
        let hr = gonet::go(move || (&*r).read(&mut [0u8; 8]).map(|_| ()));
        let hw = gonet::go(move || loop {
            if let Err(e) = (&*w).write(&[0u8; 64 * 1024]) {
                return e;
            }
        });
        sleep(ms(100));
        assert!(!hr.is_finished() && !hw.is_finished());
        c.close().unwrap();
        assert_closed(hr.join().unwrap());
        let e = hw.join().unwrap();
        assert!(is_closed(&e), "{e:?}");
    });
}

/// Readers queued behind the one in flight all get the closed error.
#[test]
fn close_fails_queued_readers_too() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                gonet::go(move || (&*c).read(&mut [0u8; 8]).map(|_| ()))
            })
            .collect();
        sleep(ms(100));
        c.close().unwrap();
        for h in hs {
            assert_closed(h.join().unwrap());
        }
    });
}

#[test]
fn close_from_a_plain_thread_unblocks_a_goroutine() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        let c2 = c.clone();
        let h = gonet::go(move || (&*c2).read(&mut [0u8; 8]).map(|_| ()));
        let c3 = c.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(ms(100));
            c3.close().unwrap();
        });
        assert_closed(h.join().unwrap());
        t.join().unwrap();
    });
}

#[test]
fn second_close_is_an_error() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        c.close().unwrap();
        assert_closed(c.close());
        let ln = listener();
        ln.close().unwrap();
        assert_closed(ln.close());
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.close().unwrap();
        assert_closed(u.close());
        // Dropping a closed socket is fine.
        drop((c, ln, u));
    });
}

#[test]
fn operations_after_close_fail_with_the_closed_error() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        c.close().unwrap();
        let mut b = [0u8; 8];
        assert_closed((&c).read(&mut b));
        assert_closed((&c).write(b"x"));
        assert_closed(c.peek(&mut b));
        assert_closed((&c).read(&mut []));
        assert_closed((&c).write_vectored(&[io::IoSlice::new(b"ab")]));
        assert_closed((&c).read_vectored(&mut [io::IoSliceMut::new(&mut b)]));
        // The peer sees the connection end.
        assert_eq!((&s).read(&mut b).unwrap(), 0);

        let ln = listener();
        ln.close().unwrap();
        assert_closed(ln.accept());

        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = u.local_addr().unwrap();
        u.close().unwrap();
        assert_closed(u.send_to(b"x", a));
        assert_closed(u.recv_from(&mut b));
    });
}

/// Go's `SetDeadline` on a closed connection returns `ErrClosed`.
#[test]
fn setting_deadlines_after_close_fails() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        c.close().unwrap();
        assert_closed(c.set_read_deadline(Some(Instant::now())));
        assert_closed(c.set_write_deadline(None));
        assert_closed(c.set_deadline(None));
        assert_closed(c.set_read_timeout(Some(ms(10))));
    });
}

/// Once closed, a socket's descriptor number (and its poller state) may belong to a newer
/// socket: nothing done through the old handle may reach the new one.
#[test]
fn calls_on_a_closed_socket_never_reach_a_reused_descriptor() {
    run(1, LIMIT, || {
        for _ in 0..50 {
            let (old, _old_peer) = tcp_pair();
            let old_fd = old.as_raw_fd();
            old.close().unwrap();
            // Likely reuses the number (and the poller state) just released.
            let (c, s) = tcp_pair();
            let reused = c.as_raw_fd() == old_fd || s.as_raw_fd() == old_fd;

            let _ = old.set_read_deadline(Some(Instant::now() - ms(1)));
            let _ = old.set_write_deadline(Some(Instant::now() - ms(1)));
            let _ = old.shutdown(Shutdown::Both);
            let _ = old.set_nodelay(true);

            // Both ends of the new connection are unaffected.
            (&s).write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            (&c).read_exact(&mut b).unwrap_or_else(|e| {
                panic!("new connection broken by calls on a closed one (fd reused: {reused}): {e}")
            });
            (&c).write_all(b"pong").unwrap_or_else(|e| {
                panic!("new connection broken by calls on a closed one (fd reused: {reused}): {e}")
            });
            (&s).read_exact(&mut b).unwrap_or_else(|e| {
                panic!("new connection broken by calls on a closed one (fd reused: {reused}): {e}")
            });
            assert_eq!(&b, b"pong");
        }
    });
}

/// `shutdown`, `local_addr`, `try_clone` and other option calls after close report an error
/// instead of acting on whatever descriptor now has the number.
#[test]
fn option_calls_after_close_fail() {
    run(1, LIMIT, || {
        let (c, _s) = tcp_pair();
        c.close().unwrap();
        let _hold = tcp_pair(); // likely takes the released number
                                // Each fails with the closed error, not with whatever the reused number gives.
        assert_closed(c.shutdown(Shutdown::Both));
        assert_closed(c.try_clone());
        assert_closed(c.local_addr());
        assert_closed(c.peer_addr());
        assert_closed(c.set_nodelay(true));
    });
}

#[test]
fn dropping_a_stream_closes_it() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        drop(c);
        let mut b = [0u8; 4];
        assert_eq!((&s).read(&mut b).unwrap(), 0);
    });
}

/// A close while a call is in flight defers the release of the descriptor: the peer sees the
/// end of the connection once the blocked call has returned.
#[test]
fn descriptor_is_released_after_the_last_call_returns() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let c = Arc::new(c);
        let c2 = c.clone();
        let h = gonet::go(move || (&*c2).read(&mut [0u8; 8]).map(|_| ()));
        sleep(ms(50));
        c.close().unwrap();
        assert_closed(h.join().unwrap());
        s.set_read_deadline(Some(Instant::now() + Duration::from_secs(5))).unwrap();
        assert_eq!((&s).read(&mut [0u8; 8]).unwrap(), 0, "the peer must see EOF");
    });
}

/// Either kind of connected stream, for the stress loop.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => (&*s).read(buf),
            Conn::Unix(s) => (&*s).read(buf),
        }
    }
    fn close(&self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.close(),
            Conn::Unix(s) => s.close(),
        }
    }
}

/// Close racing with reads, many times over, while other goroutines keep opening and closing
/// sockets so that descriptor numbers are reused all the time. Every read must end with the
/// closed error (no data was sent), never hang, never see another socket's data or EBADF.
/// Half the rounds use TCP (one listener for all), half Unix pairs; the churn uses Unix pairs,
/// which recycle descriptors as well without piling up TIME_WAIT ports.
#[test]
fn close_and_read_race_under_stress() {
    run(4, Duration::from_secs(60), || {
        let stop = Arc::new(AtomicBool::new(false));
        let churn: Vec<_> = (0..2)
            .map(|k| {
                let stop = stop.clone();
                gonet::go(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let (a, b) = UnixStream::pair().unwrap();
                        let msg = format!("churn {k} {n}");
                        (&a).write_all(msg.as_bytes()).unwrap();
                        let mut got = vec![0u8; msg.len()];
                        (&b).read_exact(&mut got).unwrap();
                        assert_eq!(got, msg.as_bytes(), "cross-talk between sockets");
                        n += 1;
                        if n % 4 == 0 {
                            sleep(ms(1));
                        }
                    }
                    n
                })
            })
            .collect();

        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let iters = if cfg!(debug_assertions) { 1000 } else { 3000 };
        let bad = Arc::new(AtomicUsize::new(0));
        for i in 0..iters {
            let (c, peer) = if i % 2 == 0 {
                let c = TcpStream::connect(addr).unwrap();
                let (s, _) = ln.accept().unwrap();
                (Conn::Tcp(c), Conn::Tcp(s))
            } else {
                let (a, b) = UnixStream::pair().unwrap();
                (Conn::Unix(a), Conn::Unix(b))
            };
            let c = Arc::new(c);
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let c = c.clone();
                    let bad = bad.clone();
                    gonet::go(move || match c.read(&mut [0u8; 16]) {
                        Err(e) if is_closed(&e) => {}
                        other => {
                            eprintln!("read ended with {other:?}");
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            // Vary the interleaving: close before, while and after the readers start.
            for _ in 0..(i % 4) {
                gonet::yield_now();
            }
            if i % 5 == 0 {
                let c = c.clone();
                std::thread::spawn(move || c.close().unwrap()).join().unwrap();
            } else {
                c.close().unwrap();
            }
            for r in readers {
                r.join().unwrap();
            }
            drop(peer);
        }
        stop.store(true, Ordering::Relaxed);
        let rounds: u64 = churn.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(rounds > 0);
        assert_eq!(bad.load(Ordering::Relaxed), 0, "some reads did not end with the closed error");
    });
}

/// Close racing with a writer blocked on a full buffer, many times.
#[test]
fn close_and_write_race_under_stress() {
    run(2, Duration::from_secs(60), || {
        for i in 0..200 {
            let (c, _s) = tcp_pair();
            let c = Arc::new(c);
            let w = c.clone();
            let h = gonet::go(move || loop {
                if let Err(e) = (&*w).write(&[0u8; 32 * 1024]) {
                    return e;
                }
            });
            for _ in 0..(i % 7) {
                gonet::yield_now();
            }
            c.close().unwrap();
            let e = h.join().unwrap();
            assert!(is_closed(&e), "iteration {i}: {e:?}");
        }
    });
}

/// Accept racing with close, many times, with clients dialling meanwhile.
#[test]
fn close_and_accept_race_under_stress() {
    run(2, Duration::from_secs(60), || {
        for i in 0..200 {
            let ln = Arc::new(listener());
            let addr = ln.local_addr().unwrap();
            let l = ln.clone();
            let h = gonet::go(move || {
                let mut accepted = 0;
                loop {
                    match l.accept() {
                        Ok(_) => accepted += 1,
                        Err(e) => return (e, accepted),
                    }
                }
            });
            let dial = if i % 2 == 0 { TcpStream::connect(addr).ok() } else { None };
            for _ in 0..(i % 5) {
                gonet::yield_now();
            }
            ln.close().unwrap();
            let (e, _) = h.join().unwrap();
            assert!(is_closed(&e), "iteration {i}: {e:?}");
            drop(dial);
        }
    });
}

/// The descriptor numbers the process's epoll instances watch (the `tfd:` lines of their
/// `/proc/self/fdinfo` entries).
fn epoll_watched_fds() -> Vec<i32> {
    let mut watched = Vec::new();
    for ep in anon_inode_fds("eventpoll") {
        let Ok(text) = std::fs::read_to_string(format!("/proc/self/fdinfo/{ep}")) else {
            continue;
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("tfd:") {
                watched.push(rest.split_whitespace().next().unwrap().parse().unwrap());
            }
        }
    }
    watched
}

/// Closing a socket takes it out of the poller even while a duplicate (`try_clone`) keeps the
/// open file alive: the kernel drops an epoll registration only when the last descriptor of
/// the file closes, so without an explicit removal the closed number's registration would go
/// on reporting the clone's events under a stale tag.
#[test]
fn close_deregisters_even_while_a_clone_keeps_the_file_open() {
    run(1, LIMIT, || {
        let (a, mut peer) = tcp_pair();
        let b = a.try_clone().unwrap();
        // A read that waits registers each descriptor with the worker's epoll.
        for s in [&a, &b] {
            s.set_read_timeout(Some(ms(20))).unwrap();
            assert_timeout((&*s).read(&mut [0u8; 4]));
        }
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let watched = epoll_watched_fds();
        assert!(watched.contains(&fa) && watched.contains(&fb), "{fa}, {fb} not in {watched:?}");
        a.close().unwrap();
        let watched = epoll_watched_fds();
        assert!(!watched.contains(&fa), "closed fd {fa} still watched: {watched:?}");
        assert!(watched.contains(&fb), "the clone's fd {fb} lost its registration");
        // The clone still works.
        peer.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        b.set_read_timeout(None).unwrap();
        (&b).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    });
}
