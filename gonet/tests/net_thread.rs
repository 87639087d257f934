//! The same sockets on plain OS threads, outside any runtime: calls block the thread, and
//! deadlines, timeouts and close work as they do on goroutines. Also sockets that move
//! between threads and runtimes.

mod net_util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gonet::net::{is_closed, TcpStream, UdpSocket, UnixStream};
use net_util::*;

#[test]
fn echo_between_threads() {
    within(LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (c, _) = ln.accept().unwrap();
            let mut buf = [0u8; 1024];
            loop {
                let n = (&c).read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                (&c).write_all(&buf[..n]).unwrap();
            }
        });
        let c = TcpStream::connect(addr).unwrap();
        for i in 0..100u32 {
            let msg = format!("thread message {i}");
            (&c).write_all(msg.as_bytes()).unwrap();
            let mut got = vec![0u8; msg.len()];
            (&c).read_exact(&mut got).unwrap();
            assert_eq!(got, msg.as_bytes());
        }
        c.shutdown(Shutdown::Write).unwrap();
        server.join().unwrap();
    });
}

#[test]
fn blocked_read_fails_when_its_deadline_passes() {
    within(LIMIT, || {
        let (c, s) = tcp_pair();
        let t = Instant::now();
        c.set_read_deadline(Some(t + ms(150))).unwrap();
        assert_timeout((&c).read(&mut [0u8; 8]));
        assert_took(t, ms(150));
        // Sticky, and data sent meanwhile is kept.
        (&s).write_all(b"kept").unwrap();
        thread::sleep(ms(20));
        assert_timeout((&c).read(&mut [0u8; 8]));
        c.set_read_deadline(None).unwrap();
        let mut b = [0u8; 4];
        (&c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"kept");
    });
}

#[test]
fn past_deadline_fails_at_once_with_data_pending() {
    within(LIMIT, || {
        let (c, s) = tcp_pair();
        (&s).write_all(b"pending").unwrap();
        thread::sleep(ms(20));
        c.set_deadline(Some(past())).unwrap();
        let t = Instant::now();
        assert_timeout((&c).read(&mut [0u8; 8]));
        assert_timeout((&c).write(b"w"));
        assert!(t.elapsed() < Duration::from_secs(1));
        c.set_deadline(None).unwrap();
        let mut b = [0u8; 7];
        (&c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"pending");
    });
}

/// Runs a read on thread A with deadline `first`, moves the deadline from this thread after
/// `move_after` (`Some(None)` clears it; `Some(Some(Duration::ZERO))` sets one in the past),
/// and has the peer send a byte at `send_at`. Returns the result, how long it took, and when
/// the move happened (all relative to the start).
fn moved_on_threads(
    first: Option<Duration>,
    move_after: Duration,
    second: Option<Duration>,
    clear: bool,
    send_at: Option<Duration>,
) -> (io::Result<usize>, Duration, Duration) {
    let (c, s) = tcp_pair();
    let c = Arc::new(c);
    let s = Arc::new(s);
    let start = Instant::now();
    c.set_read_deadline(first.map(|d| start + d)).unwrap();
    let r = c.clone();
    let reader = thread::spawn(move || {
        let res = (&*r).read(&mut [0u8; 8]);
        (res, start.elapsed())
    });
    let sender = send_at.map(|at| {
        let s = s.clone();
        thread::spawn(move || {
            thread::sleep((start + at).saturating_duration_since(Instant::now()));
            (&*s).write_all(b"!").unwrap();
        })
    });
    thread::sleep(move_after);
    let moved_at = start.elapsed();
    if clear {
        c.set_read_deadline(None).unwrap();
    } else if let Some(d) = second {
        let at = if d.is_zero() { past() } else { start + d };
        c.set_read_deadline(Some(at)).unwrap();
    }
    let (res, took) = reader.join().unwrap();
    if let Some(h) = sender {
        h.join().unwrap();
    }
    (res, took, moved_at)
}

#[test]
fn extending_the_deadline_keeps_a_blocked_thread_waiting() {
    within(LIMIT, || {
        for attempt in 0..3 {
            let (res, took, moved_at) =
                moved_on_threads(Some(ms(300)), ms(50), Some(ms(800)), false, None);
            if moved_at >= ms(250) && attempt < 2 {
                continue; // the machine stalled past the first deadline: inconclusive
            }
            assert_timeout(res);
            assert!(took >= ms(799), "failed after {took:?}, before the extended deadline");
            assert!(took < Duration::from_secs(6));
            return;
        }
    });
}

#[test]
fn shortening_the_deadline_fails_a_blocked_thread_sooner() {
    within(LIMIT, || {
        let (res, took, _) =
            moved_on_threads(Some(Duration::from_secs(20)), ms(50), Some(ms(200)), false, None);
        assert_timeout(res);
        assert!(took >= ms(199));
        assert!(took < Duration::from_secs(6), "took {took:?}: the shorter deadline was ignored");
    });
}

#[test]
fn past_deadline_fails_a_blocked_thread_at_once() {
    within(LIMIT, || {
        let (res, took, moved_at) =
            moved_on_threads(None, ms(100), Some(Duration::ZERO), false, None);
        assert_timeout(res);
        assert!(took >= ms(99) && took < moved_at + Duration::from_secs(5), "{took:?}");
    });
}

#[test]
fn clearing_the_deadline_keeps_a_blocked_thread_waiting() {
    within(LIMIT, || {
        for attempt in 0..3 {
            let (res, took, moved_at) =
                moved_on_threads(Some(ms(300)), ms(50), None, true, Some(ms(700)));
            if moved_at >= ms(250) && attempt < 2 {
                continue;
            }
            assert_eq!(res.unwrap(), 1);
            assert!(took >= ms(699));
            return;
        }
    });
}

#[test]
fn close_from_another_thread_unblocks_read_write_and_accept() {
    within(LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        let r = c.clone();
        let reader = thread::spawn(move || (&*r).read(&mut [0u8; 8]).map(|_| ()));

        let (w, _ws) = tcp_pair();
        fill_send_buffer(&w);
        let w = Arc::new(w);
        let w2 = w.clone();
        let writer = thread::spawn(move || loop {
            if let Err(e) = (&*w2).write(&[0u8; 64 * 1024]) {
                return e;
            }
        });

        let ln = Arc::new(listener());
        let l = ln.clone();
        let acceptor = thread::spawn(move || l.accept().map(|_| ()));

        thread::sleep(ms(150));
        assert!(!reader.is_finished() && !writer.is_finished() && !acceptor.is_finished());
        c.close().unwrap();
        w.close().unwrap();
        ln.close().unwrap();
        assert_closed(reader.join().unwrap());
        let e = writer.join().unwrap();
        assert!(is_closed(&e), "{e:?}");
        assert_closed(acceptor.join().unwrap());
    });
}

#[test]
fn write_deadline_on_a_full_buffer_on_a_thread() {
    within(LIMIT, || {
        let (c, _s) = tcp_pair();
        let t = Instant::now();
        c.set_write_deadline(Some(t + ms(200))).unwrap();
        let e = loop {
            if let Err(e) = (&c).write(&[9u8; 64 * 1024]) {
                break e;
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_took(t, ms(200));
    });
}

#[test]
fn accept_deadline_and_timeouts_on_a_thread() {
    within(LIMIT, || {
        let ln = listener();
        let t = Instant::now();
        ln.set_deadline(Some(t + ms(100))).unwrap();
        assert_timeout(ln.accept());
        assert_took(t, ms(100));

        let (c, s) = tcp_pair();
        c.set_read_timeout(Some(ms(80))).unwrap();
        for _ in 0..2 {
            let t = Instant::now();
            assert_timeout((&c).read(&mut [0u8; 4]));
            assert_took(t, ms(80));
        }
        (&s).write_all(b"in time").unwrap();
        let mut b = [0u8; 7];
        (&c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"in time");
    });
}

#[test]
fn udp_and_unix_on_threads() {
    within(LIMIT, || {
        let u = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let t = Instant::now();
        u.set_read_deadline(Some(t + ms(100))).unwrap();
        assert_timeout(u.recv_from(&mut [0u8; 8]));
        assert_took(t, ms(100));
        u.set_read_deadline(None).unwrap();
        let r = u.clone();
        let h = thread::spawn(move || r.recv_from(&mut [0u8; 8]).map(|_| ()));
        thread::sleep(ms(50));
        u.close().unwrap();
        assert_closed(h.join().unwrap());

        let (a, b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let r = a.clone();
        let h = thread::spawn(move || {
            let mut buf = [0u8; 5];
            (&*r).read_exact(&mut buf).map(|_| buf)
        });
        thread::sleep(ms(50));
        (&b).write_all(b"hello").unwrap();
        assert_eq!(&h.join().unwrap().unwrap(), b"hello");
    });
}

/// A reader thread and a writer thread share one connection while the peer echoes.
#[test]
fn reader_and_writer_threads_share_a_stream() {
    within(LIMIT, || {
        const N: usize = 8 << 20;
        let (c, s) = tcp_pair();
        let echo = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = (&s).read(&mut buf).unwrap();
                if n == 0 {
                    return;
                }
                (&s).write_all(&buf[..n]).unwrap();
            }
        });
        let c = Arc::new(c);
        let w = c.clone();
        let writer = thread::spawn(move || {
            let data: Vec<u8> = (0..N).map(|i| (i % 253) as u8).collect();
            (&*w).write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::with_capacity(N);
        (&*c).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), N);
        assert!(got.iter().enumerate().all(|(i, &x)| x == (i % 253) as u8));
        writer.join().unwrap();
        echo.join().unwrap();
    });
}

/// Close racing with blocked reads on threads, many times.
#[test]
fn close_and_read_race_on_threads() {
    within(Duration::from_secs(60), || {
        for i in 0..300 {
            let (c, _s) = tcp_pair();
            let c = Arc::new(c);
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let c = c.clone();
                    thread::spawn(move || (&*c).read(&mut [0u8; 8]).map(|_| ()))
                })
                .collect();
            if i % 3 == 1 {
                thread::yield_now();
            } else if i % 3 == 2 {
                thread::sleep(Duration::from_micros(200));
            }
            c.close().unwrap();
            for r in readers {
                assert_closed(r.join().unwrap());
            }
        }
    });
}

/// A goroutine and a plain thread use the same connection at once.
#[test]
fn goroutine_and_thread_share_a_stream() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let c = Arc::new(c);
        let r = c.clone();
        // The thread reads while the goroutine side writes through the same socket.
        let reader = thread::spawn(move || {
            let mut b = [0u8; 6];
            (&*r).read_exact(&mut b).unwrap();
            b
        });
        (&s).write_all(b"thread").unwrap();
        assert_eq!(&reader.join().unwrap(), b"thread");
        (&*c).write_all(b"go").unwrap();
        let mut b = [0u8; 2];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"go");
    });
}

/// Sockets made on a plain thread are used in a runtime, on a thread again after the runtime
/// is gone, and in a second runtime.
#[test]
fn sockets_outlive_their_runtime() {
    within(LIMIT, || {
        let (c, s) = tcp_pair();
        let (c, s) = (Arc::new(c), Arc::new(s));
        for round in 0..3u8 {
            let (c2, s2) = (c.clone(), s.clone());
            // In a runtime: the reader parks (registering the socket with a poller) and the
            // data arrives while it waits.
            let rt = gonet::Builder::new().procs(2).build().unwrap();
            rt.run(move || {
                let r = c2.clone();
                let h = gonet::go(move || {
                    r.set_read_deadline(Some(Instant::now() + Duration::from_secs(5))).unwrap();
                    let mut b = [0u8; 1];
                    (&*r).read_exact(&mut b).map(|_| b[0])
                });
                gonet::time::sleep(ms(50));
                (&*s2).write_all(&[round]).unwrap();
                // Bounded wait, for a clear failure instead of a hang.
                let t = Instant::now();
                while !h.is_finished() {
                    assert!(
                        t.elapsed() < Duration::from_secs(8),
                        "runtime {round}: a parked read was never woken, by its data nor by its \
                         5 s deadline"
                    );
                    gonet::time::sleep(ms(10));
                }
                let got = h.join().unwrap().unwrap_or_else(|e| {
                    panic!("runtime {round}: a parked read never saw its data: {e}")
                });
                assert_eq!(got, round);
            });
            // On a plain thread, after that runtime has shut down.
            let r = c.clone();
            let h = thread::spawn(move || {
                r.set_read_deadline(Some(Instant::now() + Duration::from_secs(5))).unwrap();
                let mut b = [0u8; 1];
                (&*r).read_exact(&mut b).map(|_| b[0])
            });
            thread::sleep(ms(50));
            (&*s).write_all(&[100 + round]).unwrap();
            assert_eq!(h.join().unwrap().unwrap(), 100 + round);
        }
    });
}

/// A deadline timer armed in a runtime that has since shut down must not stand in for the
/// deadline of a read in the next runtime: that read still times out.
#[test]
fn deadline_in_a_second_runtime_after_an_armed_timer_was_dropped() {
    within(LIMIT, || {
        let (c, s) = tcp_pair();
        let (c, s) = (Arc::new(c), Arc::new(s));
        let (c1, s1) = (c.clone(), s.clone());
        // Runtime 1: a read parks with a deadline (arming its timer) and is satisfied by data
        // long before the deadline; the runtime then shuts down with the timer pending.
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            c1.set_read_deadline(Some(Instant::now() + ms(400))).unwrap();
            let r = c1.clone();
            let h = gonet::go(move || {
                let mut b = [0u8; 1];
                (&*r).read_exact(&mut b).map(|_| b[0])
            });
            gonet::time::sleep(ms(30));
            (&*s1).write_all(b"x").unwrap();
            assert_eq!(h.join().unwrap().unwrap(), b'x');
        });
        // Runtime 2: a read with a later deadline and no data must time out.
        let c2 = c.clone();
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            let t = Instant::now();
            c2.set_read_deadline(Some(t + ms(600))).unwrap();
            let r = c2.clone();
            let h = gonet::go(move || (&*r).read(&mut [0u8; 1]).map(|_| ()));
            while !h.is_finished() {
                assert!(
                    t.elapsed() < Duration::from_secs(6),
                    "a read with a 600 ms deadline is still blocked after 6 s"
                );
                gonet::time::sleep(ms(10));
            }
            assert_timeout(h.join().unwrap());
            assert_took(t, ms(600));
        });
        drop(s);
    });
}

/// A goroutine blocked in a read is woken by a close from a plain thread even while the other
/// goroutines of its worker never park (they only yield).
#[test]
fn close_from_a_thread_wakes_a_goroutine_among_busy_ones() {
    run(1, LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinners: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                gonet::go(move || {
                    // Bounded, so that a starved waiter ends as a failure, not a hang.
                    let end = Instant::now() + Duration::from_secs(8);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                        gonet::yield_now();
                    }
                })
            })
            .collect();
        let c2 = c.clone();
        let closer = thread::spawn(move || {
            thread::sleep(ms(100));
            c2.close().unwrap();
        });
        let t = Instant::now();
        let r = (&*c).read(&mut [0u8; 4]);
        let took = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for h in spinners {
            h.join().unwrap();
        }
        closer.join().unwrap();
        assert_closed(r);
        assert!(
            took < Duration::from_secs(5),
            "woken only after {took:?}: starved by yielding goroutines"
        );
    });
}

/// A plain thread blocked in `read` sleeps in `poll(2)` until the data comes: without a
/// deadline (an infinite poll), through a signal that interrupts the poll (`EINTR` is
/// retried, never returned) and through a deadline change that kicks it (the kick is
/// consumed and the wait sleeps again), it burns no CPU and blocks only a few times, and it
/// returns the data. The kick's eventfd is close-on-exec and non-blocking, like every
/// descriptor gonet opens.
#[test]
fn a_blocked_thread_sleeps_until_data_arrives() {
    extern "C" fn ignore(_: libc::c_int) {}
    within(LIMIT, || {
        // SAFETY: installs a handler that does nothing for SIGUSR1 (no SA_RESTART, so a
        // blocked poll returns EINTR).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
            assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
        }
        let (c, s) = tcp_pair();
        let c = Arc::new(c);
        let c2 = c.clone();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
            let before = thread_usage();
            let mut b = [0u8; 4];
            let n = (&*c2).read(&mut b).unwrap();
            let after = thread_usage();
            (b[..n].to_vec(), after.0 - before.0, after.1 - before.1)
        });
        let tid = tid_rx.recv().unwrap();
        thread::sleep(ms(150));
        // SAFETY: the reader thread is alive (it is blocked in read until data comes).
        assert_eq!(unsafe { libc::pthread_kill(tid, libc::SIGUSR1) }, 0);
        thread::sleep(ms(50));
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(60))).unwrap();
        thread::sleep(ms(300));
        (&s).write_all(b"data").unwrap();
        let (got, cpu, blocked) = reader.join().unwrap();
        assert!(!got.is_empty() && b"data".starts_with(&got), "read {got:?}");
        assert!(cpu < ms(50), "a thread waiting 500 ms in read used {cpu:?} of CPU");
        assert!(blocked < 30, "a thread waiting 500 ms in read blocked {blocked} times");
        let eventfds = anon_inode_fds("eventfd");
        for &fd in &eventfds {
            // SAFETY: fcntl queries on a descriptor number; no memory is passed.
            let (fdfl, fl) =
                unsafe { (libc::fcntl(fd, libc::F_GETFD), libc::fcntl(fd, libc::F_GETFL)) };
            assert!(fdfl & libc::FD_CLOEXEC != 0, "eventfd {fd} is not close-on-exec");
            assert!(fl & libc::O_NONBLOCK != 0, "eventfd {fd} is blocking");
        }
        assert!(!eventfds.is_empty(), "no kick eventfd found");
    });
}
