//! The reactor's contract: echo on several workers with every balancer, the hooks, one
//! handler at a time per connection, re-calling while input remains, handler goroutines
//! pooled, `Read`/`Write` on a connection, nocopy `slice`/`append`.

mod common;
mod reactor_util;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gonet::reactor::{Balance, Connection, EventLoop};
use reactor_util::*;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn echo_on_every_balancer() {
    common::within(LIMIT, || {
        for b in [Balance::RoundRobin, Balance::Random, Balance::LeastConnections] {
            let srv = Server::start(EventLoop::builder(echo).balance(b).build(), 3);
            let mut conns: Vec<_> = (0..20).map(|_| srv.connect()).collect();
            for round in 0..20 {
                for (i, c) in conns.iter_mut().enumerate() {
                    let msg = format!("{b:?} round {round} conn {i} ").repeat(1 + i * 7);
                    assert_eq!(roundtrip(c, msg.as_bytes()), msg.as_bytes());
                }
            }
            assert_eq!(srv.lp.connections(), 20);
            drop(conns);
            wait_for(Duration::from_secs(10), "connections to close", || srv.lp.connections() == 0);
            srv.stop().unwrap();
        }
    });
}

#[test]
fn hooks_run_once_per_connection() {
    common::within(LIMIT, || {
        let prep = Arc::new(AtomicUsize::new(0));
        let conn = Arc::new(AtomicUsize::new(0));
        let disc = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (p, c, d, cl) = (prep.clone(), conn.clone(), disc.clone(), closed.clone());
        let lp = EventLoop::builder(echo)
            .on_prepare(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .on_connect(move |conn| {
                c.fetch_add(1, Ordering::SeqCst);
                let cl = cl.clone();
                conn.add_close_callback(move || {
                    cl.fetch_add(1, Ordering::SeqCst);
                });
                conn.write_string("hi\n")?;
                conn.flush()
            })
            .on_disconnect(move |_| {
                d.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .build();
        let srv = Server::start(lp, 2);
        for _ in 0..10 {
            let mut s = srv.connect();
            let mut hi = [0u8; 3];
            s.read_exact(&mut hi).unwrap();
            assert_eq!(&hi, b"hi\n", "on_connect runs before any input");
            assert_eq!(roundtrip(&mut s, b"x"), b"x");
        }
        wait_for(Duration::from_secs(10), "close callbacks", || {
            closed.load(Ordering::SeqCst) == 10
        });
        assert_eq!(prep.load(Ordering::SeqCst), 10);
        assert_eq!(conn.load(Ordering::SeqCst), 10);
        assert_eq!(disc.load(Ordering::SeqCst), 10);
        srv.stop().unwrap();
        assert_eq!(closed.load(Ordering::SeqCst), 10, "close callbacks ran exactly once");
    });
}

/// A handler that consumes one 8-byte frame per call is called again while frames remain,
/// and never twice at once for one connection.
#[test]
fn recalled_while_input_remains_one_at_a_time() {
    common::within(LIMIT, || {
        let inside = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let (i2, c2) = (inside.clone(), calls.clone());
        let lp = EventLoop::builder(move |c: &mut Connection| {
            assert_eq!(i2.fetch_add(1, Ordering::SeqCst), 0, "two handlers at once");
            c2.fetch_add(1, Ordering::SeqCst);
            let frame = c.next(8)?;
            c.write_binary(frame)?;
            if frame[0] == b'y' {
                gonet::yield_now(); // park points inside the handler change nothing
                gonet::time::sleep(Duration::from_millis(1));
            }
            c.flush()?;
            i2.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        let msg: Vec<u8> = (0..50)
            .flat_map(|i| format!("{}{:07}", if i % 5 == 0 { 'y' } else { 'n' }, i).into_bytes())
            .collect();
        assert_eq!(roundtrip(&mut s, &msg), msg, "all 50 pipelined frames answered in order");
        // Frames trickling in while the handler sleeps: events arrive while it holds the
        // connection, and must not start a second handler.
        let mut r = s.try_clone().unwrap();
        let m2 = msg.clone();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; m2.len()];
            r.read_exact(&mut got).unwrap();
            assert_eq!(got, m2);
        });
        for f in msg.chunks(8) {
            s.write_all(f).unwrap();
            std::thread::sleep(Duration::from_micros(300));
        }
        reader.join().unwrap();
        assert!(calls.load(Ordering::SeqCst) >= 50);
        srv.stop().unwrap();
    });
}

/// A handler waiting in `next(n)` for a frame that arrives in pieces gets it whole.
#[test]
fn next_waits_for_the_whole_frame() {
    common::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let len = c.next(4)?;
            let n = u32::from_be_bytes(len.try_into().unwrap()) as usize;
            let body = c.next(n)?;
            let sum: u64 = body.iter().map(|&b| b as u64).sum();
            c.write_binary(&sum.to_be_bytes())?;
            c.flush()
        })
        .build();
        let srv = Server::start(lp, 2);
        let mut s = srv.connect();
        for n in [1usize, 1000, 100_000, 3_000_000] {
            let body: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let mut msg = (n as u32).to_be_bytes().to_vec();
            msg.extend_from_slice(&body);
            for piece in msg.chunks(n / 3 + 1) {
                s.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(3));
            }
            let mut sum = [0u8; 8];
            s.read_exact(&mut sum).unwrap();
            assert_eq!(u64::from_be_bytes(sum), body.iter().map(|&b| b as u64).sum::<u64>());
        }
        srv.stop().unwrap();
    });
}

/// `Read`/`Write` on `&Connection` (what httparse- or rustls-style code uses), `until`,
/// `slice` sent to another goroutine and `append`ed back without copying.
#[test]
fn std_io_until_slice_append() {
    common::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let line = c.until(b'\n')?.to_vec();
            match &line[..] {
                b"io\n" => {
                    let mut buf = [0u8; 5];
                    (&*c).read_exact(&mut buf)?;
                    (&*c).write_all(&buf)?;
                    (&*c).flush()
                }
                b"slice\n" => {
                    let part = c.slice(6)?;
                    let back = gonet::go(move || {
                        assert_eq!(part.len(), 6);
                        part
                    })
                    .join()
                    .map_err(|_| io::Error::other("join"))?;
                    c.append(back)?;
                    c.flush()
                }
                _ => Err(io::Error::new(io::ErrorKind::InvalidData, "bad command")),
            }
        })
        .build();
        let srv = Server::start(lp, 2);
        let mut s = srv.connect();
        s.write_all(b"io\nhello").unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        s.write_all(b"slice\nabcdef").unwrap();
        let mut got = [0u8; 6];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcdef");
        s.write_all(b"bogus\n").unwrap();
        let (rest, _) = read_to_end(&mut s);
        assert!(rest.is_empty(), "a handler error closes the connection");
        srv.stop().unwrap();
    });
}

/// Handler goroutines are pooled: a thousand requests in sequence reuse them.
#[test]
fn handler_goroutines_are_pooled() {
    common::within(LIMIT, || {
        let spawned = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sp = spawned.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| {
            sp.lock().unwrap().push(gonet::runtime::stats().unwrap().spawned);
            echo(c)
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        for i in 0..1000u32 {
            assert_eq!(roundtrip(&mut s, &i.to_be_bytes()), i.to_be_bytes());
        }
        let v = spawned.lock().unwrap().clone();
        assert_eq!(v.len(), 1000);
        assert!(v[999] - v[0] < 3, "{} goroutines spawned for 1000 requests", v[999] - v[0]);
        srv.stop().unwrap();
    });
}

/// serve() on a plain thread starts its own runtime; a dialed client connection works on a
/// plain thread and on a goroutine.
#[test]
fn serve_on_a_thread_and_dial() {
    common::within(LIMIT, || {
        let lp = EventLoop::builder(echo).build();
        let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let lp2 = lp.clone();
        let t = std::thread::spawn(move || lp2.serve(ln));
        let mut c = gonet::reactor::dial(addr, Duration::from_secs(5)).unwrap();
        c.write_binary(b"from a thread").unwrap();
        c.flush().unwrap();
        assert_eq!(c.next(13).unwrap(), b"from a thread");
        c.release();
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let mut c = gonet::reactor::dial(addr, Duration::from_secs(5)).unwrap();
            for i in 0..100u32 {
                c.write_binary(&i.to_le_bytes()).unwrap();
                c.flush().unwrap();
                assert_eq!(c.next(4).unwrap(), i.to_le_bytes());
                c.release();
            }
        });
        lp.shutdown(std::time::Instant::now() + Duration::from_secs(5)).unwrap();
        t.join().unwrap().unwrap();
    });
}
