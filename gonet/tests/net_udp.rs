//! UDP sockets on goroutines: `send_to`/`recv_from`, connected `send`/`recv`, datagram
//! boundaries, deadlines on receive and send, close, and many concurrent senders.

mod net_util;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::UdpSocket;
use gonet::time::sleep;
use net_util::*;

fn udp() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind udp")
}

#[test]
fn send_to_and_recv_from_round_trip() {
    run(2, LIMIT, || {
        let a = udp();
        let b = udp();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert!(aa.ip().is_loopback() && aa.port() != 0);
        let b = Arc::new(b);
        let b2 = b.clone();
        // The receiver parks until the datagram arrives.
        let h = gonet::go(move || {
            let mut buf = [0u8; 64];
            let (n, from) = b2.recv_from(&mut buf).unwrap();
            b2.send_to(&buf[..n], from).unwrap();
            (buf[..n].to_vec(), from)
        });
        sleep(ms(50));
        assert_eq!(a.send_to(b"ping", ba).unwrap(), 4);
        let (got, from) = h.join().unwrap();
        assert_eq!(got, b"ping");
        assert_eq!(from, aa);
        let mut buf = [0u8; 64];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from, ba);
    });
}

#[test]
fn connect_send_recv_and_peer_filtering() {
    run(2, LIMIT, || {
        let a = udp();
        let b = udp();
        let stranger = udp();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        a.connect(ba).unwrap();
        assert_eq!(a.peer_addr().unwrap(), ba);
        b.connect(aa).unwrap();
        // A datagram from a third socket is filtered out by the connected receiver.
        stranger.send_to(b"noise", aa).unwrap();
        b.send(b"hello").unwrap();
        let mut buf = [0u8; 16];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        a.send(b"back").unwrap();
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");
        // Nothing else is queued for `a`.
        a.set_read_deadline(Some(Instant::now() + ms(100))).unwrap();
        assert_timeout(a.recv(&mut buf));
        // An unconnected socket has no peer.
        assert!(stranger.peer_addr().is_err());
    });
}

#[test]
fn datagram_boundaries_and_truncation() {
    run(2, LIMIT, || {
        let a = udp();
        let b = udp();
        let ba = b.local_addr().unwrap();
        let msgs: Vec<Vec<u8>> = (1..=5).map(|i| vec![i as u8; i * 100]).collect();
        for m in &msgs {
            a.send_to(m, ba).unwrap();
        }
        let mut buf = [0u8; 2048];
        for m in &msgs {
            let (n, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &m[..], "one recv returns exactly one datagram");
        }
        // A datagram larger than the buffer is truncated, and the rest is dropped.
        a.send_to(&[9u8; 1000], ba).unwrap();
        a.send_to(b"next", ba).unwrap();
        let mut small = [0u8; 10];
        let (n, _) = b.recv_from(&mut small).unwrap();
        assert_eq!(n, 10);
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"next");
        // Empty datagrams exist.
        a.send_to(b"", ba).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(n, 0);
        assert_eq!(from, a.local_addr().unwrap());
    });
}

#[test]
fn recv_deadline_times_out_and_socket_stays_usable() {
    run(2, LIMIT, || {
        let a = udp();
        let b = udp();
        let ba = b.local_addr().unwrap();
        let t = Instant::now();
        b.set_read_deadline(Some(t + ms(100))).unwrap();
        let mut buf = [0u8; 16];
        assert_timeout(b.recv_from(&mut buf));
        assert_took(t, ms(100));
        // Sticky: a later call fails at once, even with a datagram pending.
        a.send_to(b"kept", ba).unwrap();
        sleep(ms(20));
        assert_timeout(b.recv_from(&mut buf));
        assert_timeout(b.recv(&mut buf));
        b.set_read_deadline(None).unwrap();
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"kept");

        // A per-call timeout.
        b.set_read_timeout(Some(ms(50))).unwrap();
        for _ in 0..2 {
            let t = Instant::now();
            assert_timeout(b.recv_from(&mut buf));
            assert_took(t, ms(50));
        }
    });
}

#[test]
fn recv_deadline_moved_while_blocked() {
    run(2, LIMIT, || {
        let b = Arc::new(udp());
        let start = Instant::now();
        b.set_read_deadline(Some(start + Duration::from_secs(20))).unwrap();
        let r = b.clone();
        let h = gonet::go(move || (r.recv_from(&mut [0u8; 8]).map(|_| ()), start.elapsed()));
        sleep(ms(50));
        b.set_read_deadline(Some(Instant::now() + ms(100))).unwrap();
        let (res, took) = h.join().unwrap();
        assert_timeout(res);
        assert!(took >= ms(149) && took < Duration::from_secs(6), "{took:?}");
    });
}

#[test]
fn send_with_past_write_deadline_fails() {
    run(2, LIMIT, || {
        let a = udp();
        let b = udp();
        let ba = b.local_addr().unwrap();
        a.set_write_deadline(Some(Instant::now() - ms(1))).unwrap();
        assert_timeout(a.send_to(b"x", ba));
        a.connect(ba).unwrap();
        assert_timeout(a.send(b"x"));
        a.set_write_deadline(None).unwrap();
        a.send(b"y").unwrap();
        let mut buf = [0u8; 4];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"y", "the failed sends must not have sent anything");
    });
}

#[test]
fn close_unblocks_recv() {
    run(2, LIMIT, || {
        let b = Arc::new(udp());
        let r = b.clone();
        let h = gonet::go(move || r.recv_from(&mut [0u8; 8]).map(|_| ()));
        sleep(ms(50));
        b.close().unwrap();
        assert_closed(h.join().unwrap());
    });
}

/// Many goroutines sending to one receiver: every datagram arrives and none is corrupted.
/// UDP may drop datagrams when the receive buffer is full, which a loaded machine can make
/// happen however the senders are paced; so the senders share credits that the receiver
/// hands back, and at most `CREDITS` datagrams (well under the default 208 KiB buffer) are
/// ever queued.
#[test]
fn many_concurrent_senders() {
    run(2, LIMIT, || {
        const SENDERS: usize = 50;
        const EACH: usize = 20;
        const CREDITS: usize = 64;
        let rx = Arc::new(udp());
        let addr = rx.local_addr().unwrap();
        let (credit_tx, credit_rx) = gonet::chan::bounded::<()>(CREDITS);
        (0..CREDITS).for_each(|_| credit_tx.try_send(()).unwrap());
        let r = rx.clone();
        let receiver = gonet::go(move || {
            let mut seen = vec![vec![false; EACH]; SENDERS];
            let mut buf = [0u8; 64];
            r.set_read_deadline(Some(Instant::now() + Duration::from_secs(20))).unwrap();
            let mut got = 0;
            while got < SENDERS * EACH {
                let (n, _) = r.recv_from(&mut buf).unwrap();
                assert_eq!(n, 8);
                let s = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
                let i = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
                assert!(!seen[s][i], "duplicate datagram {s}/{i}");
                seen[s][i] = true;
                got += 1;
                credit_tx.try_send(()).unwrap(); // the credit the datagram took: never full
            }
        });
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let credits = credit_rx.clone();
                gonet::go(move || {
                    let tx = udp();
                    for i in 0..EACH {
                        credits.recv().unwrap();
                        let mut m = [0u8; 8];
                        m[..4].copy_from_slice(&(s as u32).to_le_bytes());
                        m[4..].copy_from_slice(&(i as u32).to_le_bytes());
                        tx.send_to(&m, addr).unwrap();
                    }
                })
            })
            .collect();
        for h in senders {
            h.join().unwrap();
        }
        receiver.join().unwrap();
    });
}

#[test]
fn try_clone_broadcast_and_from_std() {
    run(2, LIMIT, || {
        let a = udp();
        a.set_broadcast(true).unwrap();
        let a2 = a.try_clone().unwrap();
        assert_eq!(a2.local_addr().unwrap(), a.local_addr().unwrap());

        let std_b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = Arc::new(UdpSocket::from(std_b));
        let ba: SocketAddr = b.local_addr().unwrap();
        // The converted socket is non-blocking: its receive parks and honours deadlines.
        b.set_read_deadline(Some(Instant::now() + ms(50))).unwrap();
        assert_timeout(b.recv_from(&mut [0u8; 4]));
        b.set_read_deadline(None).unwrap();
        let r = b.clone();
        let h = gonet::go(move || {
            let mut buf = [0u8; 8];
            let (n, from) = r.recv_from(&mut buf).unwrap();
            (buf[..n].to_vec(), from)
        });
        sleep(ms(30));
        a2.send_to(b"clone", ba).unwrap();
        let (m, from) = h.join().unwrap();
        assert_eq!(m, b"clone");
        assert_eq!(from, a.local_addr().unwrap());
    });
}

#[test]
fn send_to_unresolvable_input_is_an_error() {
    run(1, LIMIT, || {
        let a = udp();
        let e = a.send_to(b"x", "not an address").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

/// Parks of the goroutines of this runtime so far.
fn parks() -> u64 {
    gonet::runtime::stats().expect("on a goroutine").workers.iter().map(|w| w.parks).sum()
}

/// Voluntary context switches of the calling thread (the kernel's count).
fn thread_switches() -> u64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut ru), 0);
        ru
    };
    ru.ru_nvcsw as u64
}

/// Sending to a socket address needs no name lookup, so it must not detour through the
/// blocking pool: with buffer space available, `send_to` does not park at all. Checked by
/// the runtime's park count and, independently, by the kernel: on a single worker that does
/// not spin, a goroutine that parked would leave the worker thread blocking in `epoll_wait`.
#[test]
fn send_to_a_socket_address_does_not_park() {
    within(LIMIT, || {
        let rt = gonet::Builder::new().procs(1).spin(Duration::ZERO).build().unwrap();
        rt.run(|| {
            let a = udp();
            let b = udp();
            let ba = b.local_addr().unwrap();
            let before = parks();
            let switches = thread_switches();
            for i in 0..100u8 {
                a.send_to(&[i], ba).unwrap();
                a.send_to(&[i], (ba.ip(), ba.port())).unwrap();
            }
            let switches = thread_switches() - switches;
            let parked = parks() - before;
            let mut buf = [0u8; 4];
            for i in 0..200 {
                let (n, from) = b.recv_from(&mut buf).unwrap();
                assert_eq!((n, buf[0], from), (1, (i / 2) as u8, a.local_addr().unwrap()));
            }
            assert!(parked < 10, "200 sends to a socket address parked {parked} times");
            assert!(
                switches < 10,
                "200 sends to a socket address blocked the worker {switches} times"
            );
        });
    });
}
