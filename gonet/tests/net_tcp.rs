//! TCP streams and listeners on goroutines: echo, bulk transfer with every byte checked,
//! thousands of concurrent connections, a reader and a writer sharing one connection,
//! `try_clone`, `shutdown`, `nodelay`, `peek`, vectored I/O and conversion from std.

mod net_util;

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{TcpListener, TcpStream};
use gonet::time::sleep;
use net_util::*;

/// Accepts connections until the listener is closed, echoing each on its own goroutine.
fn echo_server(ln: Arc<TcpListener>) -> gonet::JoinHandle<usize> {
    gonet::go(move || {
        let mut n = 0;
        while let Ok((c, _)) = ln.accept() {
            n += 1;
            gonet::go(move || echo(&c));
        }
        n
    })
}

/// Echoes until EOF, then half-closes.
fn echo(c: &TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match (&*c).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if (&*c).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = c.shutdown(Shutdown::Write);
}

#[test]
fn echo_round_trip_and_addresses() {
    run(2, LIMIT, || {
        let ln = Arc::new(listener());
        let addr = ln.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let srv = echo_server(ln.clone());
        let c = TcpStream::connect(addr).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        assert!(c.local_addr().unwrap().ip().is_loopback());
        for msg in [&b"hello"[..], b"", b"gonet echo", &[0xffu8; 10_000]] {
            (&c).write_all(msg).unwrap();
            let mut got = vec![0u8; msg.len()];
            (&c).read_exact(&mut got).unwrap();
            assert_eq!(got, msg);
        }
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        (&c).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        ln.close().unwrap();
        assert_eq!(srv.join().unwrap(), 1);
    });
}

/// Bytes to push through one connection: 1 GiB in release builds; a debug build moves the
/// same pattern in a smaller size to stay fast.
fn bulk_size() -> u64 {
    if cfg!(debug_assertions) {
        256 << 20
    } else {
        1 << 30
    }
}

/// A writer goroutine and a reader goroutine share one connection (`&TcpStream` through an
/// `Arc`) while an echo server sends everything back; every byte is checked.
#[test]
fn bulk_echo_every_byte_checked() {
    run(2, Duration::from_secs(120), || {
        const BLOCK: usize = 64 * 1024;
        let total = bulk_size();
        let blocks = total / BLOCK as u64;
        let ln = Arc::new(listener());
        let srv = echo_server(ln.clone());
        let c = Arc::new(TcpStream::connect(ln.local_addr().unwrap()).unwrap());
        let start = Instant::now();
        let w = c.clone();
        let writer = gonet::go(move || {
            let mut buf = vec![0u8; BLOCK];
            for k in 0..blocks {
                pattern_block(k, &mut buf);
                (&*w).write_all(&buf).unwrap();
            }
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = vec![0u8; BLOCK];
        let mut want = vec![0u8; BLOCK];
        for k in 0..blocks {
            (&*c).read_exact(&mut got).unwrap_or_else(|e| panic!("block {k}: {e}"));
            pattern_block(k, &mut want);
            if got != want {
                let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                panic!("mismatch at byte {}", k * BLOCK as u64 + i as u64);
            }
        }
        assert_eq!((&*c).read(&mut got).unwrap(), 0, "data beyond what was sent");
        writer.join().unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "echoed {} MiB in {secs:.2}s ({:.0} MiB/s)",
            total >> 20,
            (total >> 20) as f64 / secs
        );
        ln.close().unwrap();
        srv.join().unwrap();
    });
}

/// Thousands of connections open and echoing at once: every client sends several messages
/// and checks each reply, and all of them are connected before any finishes.
#[test]
fn two_thousand_concurrent_connections() {
    run(2, Duration::from_secs(120), || {
        const CONNS: usize = 2000;
        const MSGS: usize = 5;
        let ln = Arc::new(listener());
        let addr = ln.local_addr().unwrap();
        let srv = echo_server(ln.clone());
        let connected = Arc::new(gonet::sync::WaitGroup::new());
        connected.add(CONNS);
        let clients: Vec<_> = (0..CONNS)
            .map(|i| {
                let connected = connected.clone();
                gonet::go(move || {
                    let c = TcpStream::connect(addr).unwrap();
                    c.set_deadline(Some(Instant::now() + Duration::from_secs(60))).unwrap();
                    connected.done();
                    connected.wait(); // all connections are open at once
                    for m in 0..MSGS {
                        let msg = format!("client {i} message {m} {}", "x".repeat(i % 97));
                        (&c).write_all(msg.as_bytes()).unwrap();
                        let mut got = vec![0u8; msg.len()];
                        (&c).read_exact(&mut got).unwrap();
                        assert_eq!(got, msg.as_bytes());
                        if m % 2 == 0 {
                            gonet::yield_now();
                        }
                    }
                    c.shutdown(Shutdown::Write).unwrap();
                    let mut b = [0u8; 1];
                    assert_eq!((&c).read(&mut b).unwrap(), 0);
                })
            })
            .collect();
        for h in clients {
            h.join().unwrap();
        }
        ln.close().unwrap();
        assert_eq!(srv.join().unwrap(), CONNS);
    });
}

/// Full-duplex traffic on one connection from two goroutines: if reads and writes did not
/// proceed concurrently, both sides would fill their buffers and stop.
#[test]
fn concurrent_reader_and_writer_on_one_stream() {
    run(2, LIMIT, || {
        const N: usize = 16 << 20;
        let (a, b) = tcp_pair();
        let (a, b) = (Arc::new(a), Arc::new(b));
        // Each side writes N bytes while reading the other's N bytes.
        let side = |me: Arc<TcpStream>, tag: u8| {
            let w = me.clone();
            let writer = gonet::go(move || {
                let chunk: Vec<u8> = (0..100_000u32).map(|i| (i as u8) ^ tag).collect();
                let mut sent = 0;
                while sent < N {
                    let n = chunk.len().min(N - sent);
                    let mut s: &TcpStream = &w;
                    s.write_all(&chunk[..n]).unwrap();
                    sent += n;
                }
            });
            let reader = gonet::go(move || {
                let mut buf = vec![0u8; 70_000];
                let mut got = 0usize;
                while got < N {
                    let mut s: &TcpStream = &me;
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0);
                    for (j, &x) in buf[..n].iter().enumerate() {
                        let i = (got + j) % 100_000;
                        assert_eq!(x, (i as u8) ^ tag ^ 0xff, "byte {}", got + j);
                    }
                    got += n;
                }
            });
            (writer, reader)
        };
        let (wa, ra) = side(a.clone(), 0x00);
        let (wb, rb) = side(b.clone(), 0xff);
        for h in [wa, ra, wb, rb] {
            h.join().unwrap();
        }
    });
}

#[test]
fn try_clone_shares_the_connection_with_separate_deadlines() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let c2 = c.try_clone().unwrap();
        assert_ne!(c.as_raw_fd(), c2.as_raw_fd());
        assert_eq!(c2.local_addr().unwrap(), c.local_addr().unwrap());
        // Write through the clone, read through the original.
        (&c2).write_all(b"via clone").unwrap();
        let mut b = [0u8; 9];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"via clone");
        (&s).write_all(b"to original").unwrap();
        let mut b = [0u8; 11];
        (&c).read_exact(&mut b).unwrap();

        // Deadlines belong to each handle.
        c2.set_read_deadline(Some(Instant::now() - ms(1))).unwrap();
        (&s).write_all(b"q").unwrap();
        assert_timeout((&c2).read(&mut [0u8; 1]));
        let mut one = [0u8; 1];
        (&c).read_exact(&mut one).unwrap();
        assert_eq!(&one, b"q");

        // Closing one handle leaves the other working.
        c.close().unwrap();
        (&c2).write_all(b"still here").unwrap();
        let mut b = [0u8; 10];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"still here");
        // A blocked read on the clone is not woken by the other handle's close.
        let c2 = Arc::new(c2);
        c2.set_read_deadline(None).unwrap();
        let r = c2.clone();
        let h = gonet::go(move || (&*r).read(&mut [0u8; 4]).unwrap());
        sleep(ms(100));
        assert!(!h.is_finished());
        (&s).write_all(b"wake").unwrap();
        assert_eq!(h.join().unwrap(), 4);
    });
}

#[test]
fn shutdown_write_read_and_both() {
    run(2, LIMIT, || {
        // Write half: the peer reads EOF, and can still send to us.
        let (c, s) = tcp_pair();
        (&c).write_all(b"last words").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut all = Vec::new();
        (&s).read_to_end(&mut all).unwrap();
        assert_eq!(all, b"last words");
        assert!((&c).write(b"more").is_err(), "write after shutdown(Write) must fail");
        (&s).write_all(b"reply").unwrap();
        let mut b = [0u8; 5];
        (&c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"reply");

        // Read half: our reads return EOF at once, even one that was blocked.
        let (c, s) = tcp_pair();
        let c = Arc::new(c);
        let r = c.clone();
        let h = gonet::go(move || (&*r).read(&mut [0u8; 4]).unwrap());
        sleep(ms(50));
        c.shutdown(Shutdown::Read).unwrap();
        assert_eq!(h.join().unwrap(), 0);
        assert_eq!((&*c).read(&mut [0u8; 4]).unwrap(), 0);
        (&*c).write_all(b"ok").unwrap();
        let mut b = [0u8; 2];
        (&s).read_exact(&mut b).unwrap();

        // Both.
        let (c, s) = tcp_pair();
        c.shutdown(Shutdown::Both).unwrap();
        assert_eq!((&c).read(&mut [0u8; 4]).unwrap(), 0);
        assert!((&c).write(b"x").is_err());
        assert_eq!((&s).read(&mut [0u8; 4]).unwrap(), 0);
    });
}

/// The `IP_TTL` option of a socket, as the kernel has it.
fn ip_ttl(fd: std::os::fd::RawFd) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live, correctly sized out-parameters for getsockopt.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt(IP_TTL): {}", io::Error::last_os_error());
    v
}

#[test]
fn nodelay_and_ttl() {
    run(1, LIMIT, || {
        let (c, _s) = tcp_pair();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        c.set_nodelay(false).unwrap();
        assert!(!c.nodelay().unwrap());
        c.set_ttl(33).unwrap();
        let ln = listener();
        ln.set_ttl(44).unwrap();
        // Read back from the kernel, not from gonet.
        assert_eq!(ip_ttl(c.as_raw_fd()), 33);
        assert_eq!(ip_ttl(ln.as_raw_fd()), 44);
        assert!(c.take_error().unwrap().is_none());
    });
}

#[test]
fn peek_waits_for_data_and_does_not_consume() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let c = Arc::new(c);
        let p = c.clone();
        let h = gonet::go(move || {
            let mut b = [0u8; 16];
            let n = p.peek(&mut b).unwrap();
            b[..n].to_vec()
        });
        sleep(ms(100));
        assert!(!h.is_finished(), "peek must wait for data");
        (&s).write_all(b"peekaboo").unwrap();
        let peeked = h.join().unwrap();
        assert!(!peeked.is_empty() && b"peekaboo".starts_with(&peeked));
        // Peeking again sees the same bytes; reading consumes them.
        let mut b = [0u8; 8];
        sleep(ms(20));
        assert_eq!(c.peek(&mut b).unwrap(), 8);
        assert_eq!(&b, b"peekaboo");
        (&*c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"peekaboo");
        // Nothing left: a peek with a deadline times out.
        c.set_read_deadline(Some(Instant::now() + ms(50))).unwrap();
        assert_timeout(c.peek(&mut b));
    });
}

#[test]
fn vectored_read_and_write() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let bufs = [IoSlice::new(b"one "), IoSlice::new(b"two "), IoSlice::new(b"three")];
        assert_eq!((&c).write_vectored(&bufs).unwrap(), 13, "loopback takes a small write whole");
        // Wait until all 13 bytes are there, then scatter them with one call.
        let mut probe = [0u8; 13];
        while s.peek(&mut probe).unwrap() < 13 {
            sleep(ms(1));
        }
        let mut a = [0u8; 4];
        let mut b = [0u8; 9];
        let n =
            (&s).read_vectored(&mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)]).unwrap();
        assert_eq!(n, 13);
        assert_eq!(&a, b"one ");
        assert_eq!(&b, b"two three");
    });
}

/// Go's `write` semantics: one call writes the whole buffer (parking as often as needed).
#[test]
fn one_write_call_writes_the_whole_buffer() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        const N: usize = 16 << 20;
        let reader = gonet::go(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0;
            loop {
                let n = (&s).read(&mut buf).unwrap();
                if n == 0 {
                    return total;
                }
                assert!(buf[..n].iter().all(|&x| x == 0x42));
                total += n;
            }
        });
        let big = vec![0x42u8; N];
        assert_eq!((&c).write(&big).unwrap(), N);
        assert_eq!((&c).write(&[]).unwrap(), 0);
        drop(c);
        assert_eq!(reader.join().unwrap(), N);
    });
}

#[test]
fn incoming_iterates_over_connections() {
    run(2, LIMIT, || {
        let ln = Arc::new(listener());
        let addr = ln.local_addr().unwrap();
        let l = ln.clone();
        let server = gonet::go(move || {
            let mut peers = Vec::new();
            for c in l.incoming().take(3) {
                let c = c.unwrap();
                peers.push(c.peer_addr().unwrap());
                (&c).write_all(b"hi").unwrap();
            }
            peers
        });
        let mut locals = Vec::new();
        for _ in 0..3 {
            let c = TcpStream::connect(addr).unwrap();
            let mut b = [0u8; 2];
            (&c).read_exact(&mut b).unwrap();
            locals.push(c.local_addr().unwrap());
        }
        assert_eq!(server.join().unwrap(), locals);
    });
}

/// With several addresses, connect tries each in turn.
#[test]
fn connect_tries_each_address() {
    run(2, LIMIT, || {
        let ln = listener();
        let good = ln.local_addr().unwrap();
        let addrs: [SocketAddr; 2] = [dead_addr(), good];
        let c = TcpStream::connect(&addrs[..]).unwrap();
        assert_eq!(c.peer_addr().unwrap(), good);
        let e = TcpStream::connect(&[][..] as &[SocketAddr]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

/// Sockets made by std (blocking) are taken over: their calls park the goroutine, and the
/// raw-descriptor conversions round-trip.
#[test]
fn from_std_and_raw_descriptors() {
    run(2, LIMIT, || {
        let std_ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_ln.local_addr().unwrap();
        let ln = Arc::new(TcpListener::from(std_ln));
        let l = ln.clone();
        // Accept parks instead of blocking the worker: with one worker busy in accept, another
        // goroutine still runs and dials.
        let acc = gonet::go(move || l.accept().unwrap().0);
        let std_c = std::net::TcpStream::connect(addr).unwrap();
        let s = acc.join().unwrap();
        let c = TcpStream::from(std_c);
        // A blocking std socket would ignore the deadline and hang here.
        c.set_read_deadline(Some(Instant::now() + ms(50))).unwrap();
        assert_timeout((&c).read(&mut [0u8; 1]));
        c.set_read_deadline(None).unwrap();
        (&s).write_all(b"std").unwrap();
        let mut b = [0u8; 3];
        (&c).read_exact(&mut b).unwrap();

        // IntoRawFd hands over the descriptor (still open); FromRawFd takes it back.
        let fd = c.into_raw_fd();
        assert!(fd >= 0);
        // SAFETY: `fd` was just released by `into_raw_fd` and is owned by nobody else.
        let c = unsafe { TcpStream::from_raw_fd(fd) };
        (&c).write_all(b"back").unwrap();
        let mut b = [0u8; 4];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"back");

        // A socket closed already has no descriptor left to hand over: -1, never a number
        // that may name someone else's file.
        s.close().unwrap();
        assert_eq!(s.into_raw_fd(), -1);
    });
}

/// Connections accepted on one worker and served on others, with many short-lived ones.
#[test]
fn many_short_connections_in_sequence() {
    run(2, LIMIT, || {
        let ln = Arc::new(listener());
        let addr = ln.local_addr().unwrap();
        let srv = echo_server(ln.clone());
        for i in 0..500u32 {
            let c = TcpStream::connect(addr).unwrap();
            (&c).write_all(&i.to_le_bytes()).unwrap();
            let mut b = [0u8; 4];
            (&c).read_exact(&mut b).unwrap();
            assert_eq!(u32::from_le_bytes(b), i);
        }
        ln.close().unwrap();
        assert_eq!(srv.join().unwrap(), 500);
    });
}

/// The end of the stream is seen even when it arrives together with the last data, after
/// short reads: the read that returns the last bytes also consumes the FIN, and the next read
/// must return 0 instead of waiting for an edge that will never come.
#[test]
fn eof_arriving_with_the_last_data_after_short_reads() {
    run(2, LIMIT, || {
        for round in 0..20 {
            let (c, s) = tcp_pair();
            let mut buf = [0u8; 1024];
            // A short read (less than asked for).
            (&s).write_all(b"x").unwrap();
            sleep(ms(20));
            assert_eq!((&c).read(&mut buf).unwrap(), 1);
            // The last data and the FIN, both queued before the next read.
            (&s).write_all(b"abc").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            sleep(ms(20));
            c.set_read_deadline(Some(Instant::now() + Duration::from_secs(2))).unwrap();
            assert_eq!((&c).read(&mut buf).unwrap(), 3, "round {round}");
            match (&c).read(&mut buf) {
                Ok(0) => {}
                other => panic!("round {round}: expected EOF, got {other:?}"),
            }
        }
    });
}
