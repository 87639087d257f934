//! The reactor under safe-code abuse: bounded memory whatever a peer or a handler does,
//! user values whose `Drop` panics, hooks that read or panic too early, descriptors closed
//! at once, dialed connections' addresses and close callbacks after close. (That a server
//! `Connection` cannot leave its handler is a compile-time property: the `compile_fail`
//! examples on `Connection`.)

mod net_util;
mod reactor_util;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gonet::reactor::{Connection, EventLoop};
use reactor_util::{echo, read_to_end, roundtrip, wait_for, Server};

const LIMIT: Duration = Duration::from_secs(60);

/// Peak resident memory since the last `reset_peak`, in bytes.
fn peak_rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Resets the peak resident memory to the current one.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A peer that sends a whole input cap without the delimiter, in many small pieces (one
/// wake-up of the waiting `until` each): memory stays within a small constant times the
/// cap. (A copy of everything buffered per wake-up made this quadratic: 2 MiB cost 1 GB.)
#[test]
fn until_without_a_delimiter_costs_at_most_a_few_times_the_cap() {
    net_util::within(LIMIT, || {
        const CAP: usize = 2 << 20;
        let err = Arc::new(Mutex::new(None));
        let e2 = err.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| match c.until(b'\n') {
            Ok(line) => {
                let line = line.to_vec();
                c.write_binary(&line)
            }
            Err(e) => {
                *e2.lock().unwrap() = Some(e.kind());
                Err(e)
            }
        })
        .input_cap(CAP)
        .build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        s.write_all(b"x").unwrap(); // the handler is now parked in `until`
        std::thread::sleep(Duration::from_millis(20));
        reset_peak();
        let base = peak_rss();
        let chunk = [b'x'; 8192];
        let mut sent = 1;
        while sent < CAP {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
            std::thread::sleep(Duration::from_micros(200));
        }
        let (_, _) = read_to_end(&mut s);
        let grew = peak_rss().saturating_sub(base);
        assert_eq!(*err.lock().unwrap(), Some(io::ErrorKind::InvalidInput));
        assert!(grew < 8 * CAP, "until over a {CAP}-byte cap grew the peak RSS by {grew} bytes");
        srv.stop().unwrap();
    });
}

/// A handler that writes far more than the output cap in one call, without releasing: the
/// sent output is freed as it goes (it stayed until the call returned: +65 MB for 32 MiB).
#[test]
fn writing_past_the_output_cap_in_one_call_stays_bounded() {
    net_util::within(LIMIT, || {
        const TOTAL: usize = 48 << 20;
        let lp = EventLoop::builder(|c: &mut Connection| {
            c.skip(c.len())?;
            let piece = [b'y'; 4096];
            for _ in 0..TOTAL / piece.len() {
                c.write_binary(&piece)?;
            }
            Ok(())
        })
        .output_cap(256 << 10)
        .build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        reset_peak();
        let base = peak_rss();
        s.write_all(b"go").unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < TOTAL {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {got} bytes");
            got += n;
        }
        let grew = peak_rss().saturating_sub(base);
        assert!(grew < 16 << 20, "48 MiB written in one call grew the peak RSS by {grew} bytes");
        srv.stop().unwrap();
    });
}

/// A handler that consumes request after request in one call without `release`: at the
/// input cap it gets `InvalidInput` naming `release` (the consumed blocks used to pile up
/// without bound); one that releases between requests reads on for ever.
#[test]
fn consuming_without_release_fails_at_the_input_cap() {
    net_util::within(LIMIT, || {
        const CAP: usize = 64 << 10;
        let err = Arc::new(Mutex::new(None));
        let e2 = err.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| loop {
            let releasing = match c.peek(1) {
                Ok(b) => b[0] == b'r',
                Err(e) => {
                    *e2.lock().unwrap() = Some(e.to_string());
                    return Err(e);
                }
            };
            match c.next(4) {
                Ok(d) => {
                    let d = d.to_vec();
                    c.write_binary(&d)?;
                    if c.is_empty() {
                        c.flush()?; // the peer waits for its echo
                    }
                    if releasing {
                        c.release();
                    }
                }
                Err(e) => {
                    *e2.lock().unwrap() = Some(e.to_string());
                    return Err(e);
                }
            }
        })
        .input_cap(CAP)
        .build();
        let srv = Server::start(lp, 1);

        // Releasing: 16 caps' worth goes through one handler call.
        let mut s = srv.connect();
        let total = 16 * CAP;
        let writer = {
            let mut w = s.try_clone().unwrap();
            std::thread::spawn(move || {
                for _ in 0..total / 4 {
                    w.write_all(b"rrrr").unwrap();
                }
            })
        };
        let mut got = vec![0u8; total];
        s.read_exact(&mut got).unwrap();
        writer.join().unwrap();
        assert!(err.lock().unwrap().is_none(), "{:?}", err.lock().unwrap());
        drop(s);

        // Not releasing: stopped at the cap with a clear error.
        let mut s = srv.connect();
        let w = {
            let mut w = s.try_clone().unwrap();
            std::thread::spawn(move || {
                for _ in 0..total / 4 {
                    if w.write_all(b"nnnn").is_err() {
                        break;
                    }
                }
            })
        };
        let (echoed, _) = read_to_end(&mut s);
        w.join().unwrap();
        assert!(echoed.len() <= CAP, "echoed {} bytes past the cap", echoed.len());
        let msg = err.lock().unwrap().clone().expect("the handler got no error");
        assert!(msg.contains("release()"), "{msg}");
        srv.stop().unwrap();
    });
}

/// Data whose `Drop` panics, for `write_direct`.
struct Bomb(Vec<u8>);

impl AsRef<[u8]> for Bomb {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("Bomb dropped");
    }
}

/// A `write_direct` value whose `Drop` panics is dropped by the event loop after the
/// handler returned: the panic is contained (reported), that connection is closed, and the
/// worker's other connections and `shutdown` go on (the runner used to unwind while still
/// named the drainer: later connections got no reply and shutdown waited for ever).
#[test]
fn a_panicking_drop_of_direct_data_closes_only_its_connection() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let n = c.len();
            let d = c.next(n)?.to_vec();
            if d == b"bomb" {
                c.write_direct(Bomb(vec![b'z'; 4096]))
            } else {
                c.write_binary(&d)
            }
        })
        .build();
        bomb_closes_only_its_connection(lp, b'z');
    });
}

/// Drives a server whose handler answers `bomb` with 4096 bytes of `fill` held by a `Bomb`:
/// that connection gets its data then end of stream, another connection (open before, and one
/// opened after) is still served, and the loop shuts down.
fn bomb_closes_only_its_connection(lp: EventLoop, fill: u8) {
    let srv = Server::start(lp, 1);
    let mut a = srv.connect();
    let mut b = srv.connect();
    assert_eq!(roundtrip(&mut b, b"before"), b"before");
    a.write_all(b"bomb").unwrap();
    let (got, _) = read_to_end(&mut a);
    assert_eq!(got, vec![fill; 4096], "the data is sent before it is dropped");
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(roundtrip(&mut b, b"after"), b"after");
    let mut c = srv.connect();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(roundtrip(&mut c, b"new"), b"new");
    drop((b, c));
    srv.stop().unwrap();
}

/// The same through a slice: a buffer holding a `write_direct` value, sliced and the slice
/// appended to the output, still has its drop contained by the event loop (the slice carries
/// the "may drop caller data" mark to the output).
#[test]
fn a_panicking_drop_of_direct_data_appended_as_a_slice_is_contained() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let n = c.len();
            let d = c.next(n)?.to_vec();
            if d != b"bomb" {
                return c.write_binary(&d);
            }
            let mut b = gonet::reactor::LinkBuffer::new();
            b.write_direct(Bomb(vec![b'y'; 4096]))?;
            b.flush();
            let s = b.slice(4096)?;
            drop(b); // the slice now holds the last reference
            c.append(s)
        })
        .build();
        bomb_closes_only_its_connection(lp, b'y');
    });
}

/// A handler replaced by `set_on_request` whose captures panic when dropped.
#[test]
fn a_panicking_drop_of_a_replaced_handler_is_contained() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let bomb = Bomb(Vec::new());
            c.set_on_request(move |c: &mut Connection| {
                let _keep = &bomb;
                c.set_on_request(echo);
                echo(c)
            });
            echo(c)
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut a = srv.connect();
        assert_eq!(roundtrip(&mut a, b"one"), b"one"); // installs the bomb handler
        a.write_all(b"two").unwrap(); // runs it, replaces it: its drop panics
        let mut got = [0u8; 3];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"two");
        let (rest, _) = read_to_end(&mut a);
        assert!(rest.is_empty());
        let mut b = srv.connect();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(roundtrip(&mut b, b"three"), b"three");
        drop(b);
        srv.stop().unwrap();
    });
}

/// Bombs of the test below dropped so far.
static HANDLER_BOMBS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A `Drop` that counts, then panics.
struct CountedBomb;

impl Drop for CountedBomb {
    fn drop(&mut self) {
        HANDLER_BOMBS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("CountedBomb dropped");
    }
}

/// A connection's own handler (`set_on_request`) still installed when the connection is
/// closed by `shutdown` is dropped by `finalize`, under containment, on the owner worker —
/// not by whichever thread drops the last reference (here the test's `ConnHandle`: the
/// panic used to surface there, in the caller of `drop`, and under valgrind's timing in the
/// caller of `shutdown`).
#[test]
fn a_panicking_handler_left_at_shutdown_is_dropped_contained() {
    let handle = net_util::within(LIMIT, || {
        let kept = Arc::new(Mutex::new(None));
        let k2 = kept.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let bomb = CountedBomb;
            c.set_on_request(move |c: &mut Connection| {
                let _keep = &bomb;
                echo(c)
            });
            *k2.lock().unwrap() = Some(c.handle());
            echo(c)
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut a = srv.connect();
        assert_eq!(roundtrip(&mut a, b"one"), b"one"); // installs the bomb handler
        srv.stop().unwrap(); // closes `a`'s connection while idle
        assert_eq!(HANDLER_BOMBS.load(std::sync::atomic::Ordering::SeqCst), 1);
        let h = kept.lock().unwrap().take().expect("the handler kept no handle");
        h
    });
    drop(handle); // the last reference: nothing left to panic
}

/// `on_prepare` runs before the connection is registered: a read there that would wait
/// fails at once with `InvalidInput` (it used to park the accept goroutine for good, or with
/// a read timeout leave the connection stranded), and the connection is served afterwards.
#[test]
fn reading_in_on_prepare_fails_at_once_and_the_connection_is_served() {
    for timeout in [None, Some(Duration::from_millis(30))] {
        net_util::within(LIMIT, move || {
            let kinds = Arc::new(Mutex::new(Vec::new()));
            let k2 = kinds.clone();
            let mut b = EventLoop::builder(echo).on_prepare(move |c: &mut Connection| {
                // More than the client's first message: this read would have to wait.
                k2.lock().unwrap().push(c.peek(64).map(|_| ()).unwrap_err().kind());
                Ok(())
            });
            if let Some(t) = timeout {
                b = b.read_timeout(t);
            }
            let srv = Server::start(b.build(), 2);
            for i in 0..3 {
                let mut s = srv.connect();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let msg = format!("hello {i}");
                assert_eq!(roundtrip(&mut s, msg.as_bytes()), msg.as_bytes());
            }
            assert_eq!(*kinds.lock().unwrap(), vec![io::ErrorKind::InvalidInput; 3]);
            wait_for(Duration::from_secs(10), "the connections to go", || {
                srv.lp.connections() == 0
            });
            srv.stop().unwrap();
        });
    }
}

/// A panic in `on_prepare` is caught like any hook's: that connection is closed, `serve`
/// goes on accepting.
#[test]
fn a_panic_in_on_prepare_closes_that_connection_only() {
    net_util::within(LIMIT, || {
        let first = Arc::new(AtomicBool::new(true));
        let lp = EventLoop::builder(echo)
            .on_prepare(move |_c: &mut Connection| {
                if first.swap(false, Ordering::SeqCst) {
                    panic!("on_prepare panicked on purpose");
                }
                Ok(())
            })
            .build();
        let srv = Server::start(lp, 1);
        let mut a = srv.connect();
        let (got, _) = read_to_end(&mut a);
        assert!(got.is_empty());
        let mut b = srv.connect();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(roundtrip(&mut b, b"served"), b"served");
        drop(b);
        srv.stop().unwrap();
    });
}

/// A connection the handler closes (an `Err`) is seen closed by its peer at once and its
/// descriptor is freed, long before the idle timeout (the idle timer used to keep both
/// until it fired).
#[test]
fn a_closed_connection_frees_its_descriptor_at_once() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            if c.peek(1)?[0] == b'q' {
                return Err(io::Error::other("quit on request"));
            }
            echo(c)
        })
        .idle_timeout(Duration::from_secs(30))
        .build();
        let srv = Server::start(lp, 2);
        let mut warm = srv.connect();
        assert_eq!(roundtrip(&mut warm, b"warm"), b"warm");
        let base = open_fds();
        for _ in 0..200 {
            let mut s = srv.connect();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(roundtrip(&mut s, b"hi"), b"hi"); // it idles, with its idle timer
            s.write_all(b"quit").unwrap();
            let t = Instant::now();
            let mut b = [0u8; 8];
            assert_eq!(s.read(&mut b).unwrap(), 0, "the peer must see the close");
            assert!(t.elapsed() < Duration::from_secs(5));
        }
        wait_for(Duration::from_secs(10), "the closed connections to go", || {
            srv.lp.connections() == 1
        });
        wait_for(Duration::from_secs(10), "their descriptors to be freed", || {
            open_fds() <= base + 2
        });
        drop(warm);
        srv.stop().unwrap();
    });
}

/// A closed dialed connection still tells its peer's address (never another socket's that
/// reused the number), fails `local_addr`, and runs its close callbacks — at `close` and,
/// for one never closed, when it is dropped.
#[test]
fn a_dialed_connection_after_close() {
    net_util::within(LIMIT, || {
        let srv = Server::start(EventLoop::builder(echo).build(), 1);
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ran = Arc::new(AtomicUsize::new(0));

        let mut c = gonet::reactor::dial(srv.addr, Duration::from_secs(5)).unwrap();
        let r = ran.clone();
        c.add_close_callback(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        c.write_binary(b"ping").unwrap();
        c.flush().unwrap();
        assert_eq!(c.next(4).unwrap(), b"ping");
        c.release();
        c.close();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "close runs the close callbacks");
        // A new socket likely takes the number the closed one had.
        let reuse: Vec<TcpStream> =
            (0..4).map(|_| TcpStream::connect(other.local_addr().unwrap()).unwrap()).collect();
        assert_eq!(c.peer_addr().unwrap(), srv.addr);
        assert!(c.local_addr().is_err(), "local_addr of a closed connection");
        drop(c);
        assert_eq!(ran.load(Ordering::SeqCst), 1, "callbacks run once");

        let d = gonet::reactor::dial(srv.addr, Duration::from_secs(5)).unwrap();
        let r = ran.clone();
        d.add_close_callback(move || {
            r.fetch_add(10, Ordering::SeqCst);
        });
        drop(d);
        assert_eq!(ran.load(Ordering::SeqCst), 11, "dropping a dialed connection closes it");
        drop(reuse);
        srv.stop().unwrap();
    });
}
