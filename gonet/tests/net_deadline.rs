//! Deadlines and timeouts on goroutines (Go's `timeout_test.go` behaviours): a deadline applies
//! to the pending and every later call until changed, a deadline in the past fails calls at
//! once even with data pending, moving a deadline while a call is blocked takes effect for
//! that call, `None` clears, and a connection stays usable once its deadline is moved.

mod net_util;

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{TcpListener, TcpStream};
use gonet::time::sleep;
use net_util::*;

#[test]
fn read_with_past_deadline_fails_at_once_even_with_data_pending() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        (&s).write_all(b"READ TIMEOUT TEST").unwrap();
        sleep(ms(50)); // let the data arrive
        c.set_read_deadline(Some(past())).unwrap();
        let mut b = [0u8; 32];
        for _ in 0..2 {
            let t = Instant::now();
            assert_timeout((&c).read(&mut b));
            assert!(t.elapsed() < Duration::from_secs(1), "an expired read must fail at once");
        }
        // Peek honours the deadline too.
        assert_timeout(c.peek(&mut b));
        // Nothing was consumed: clearing the deadline delivers every byte.
        c.set_read_deadline(None).unwrap();
        let mut got = [0u8; 17];
        (&c).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"READ TIMEOUT TEST");
    });
}

#[test]
fn read_deadline_expires_applies_to_later_calls_and_loses_no_data() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let t = Instant::now();
        c.set_read_deadline(Some(t + ms(100))).unwrap();
        let mut b = [0u8; 16];
        assert_timeout((&c).read(&mut b));
        assert_took(t, ms(100));

        // The deadline stays in force for later calls: they fail at once.
        let t2 = Instant::now();
        assert_timeout((&c).read(&mut b));
        assert!(t2.elapsed() < Duration::from_secs(1));

        // Data sent after the timeout is kept, but not delivered while the deadline is past.
        (&s).write_all(b"late data").unwrap();
        sleep(ms(50));
        assert_timeout((&c).read(&mut b));

        // Moving the deadline makes the connection usable again, with the data intact.
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 9];
        (&c).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"late data");

        // Writes were never affected by the read deadline.
        (&c).write_all(b"pong").unwrap();
        let mut got = [0u8; 4];
        (&s).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pong");
    });
}

#[test]
fn read_deadline_fluctuation_returns_close_to_the_deadline() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        for d in [ms(1), ms(20), ms(100), ms(250)] {
            let t = Instant::now();
            c.set_read_deadline(Some(t + d)).unwrap();
            let mut b = [0u8; 1];
            assert_timeout((&c).read(&mut b));
            assert_took(t, d);
        }
    });
}

#[test]
fn write_with_past_deadline_fails_at_once_and_writes_nothing() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        c.set_write_deadline(Some(past())).unwrap();
        for _ in 0..2 {
            let t = Instant::now();
            assert_timeout((&c).write(b"WRITE TIMEOUT TEST"));
            assert!(t.elapsed() < Duration::from_secs(1));
        }
        // Reads are unaffected by the write deadline.
        (&s).write_all(b"r").unwrap();
        let mut one = [0u8; 1];
        (&c).read_exact(&mut one).unwrap();

        c.set_write_deadline(None).unwrap();
        (&c).write_all(b"after").unwrap();
        let mut got = [0u8; 5];
        (&s).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"after", "a write that failed its deadline must send nothing");
    });
}

#[test]
fn write_deadline_on_full_buffer_times_out_and_counts_are_exact() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let t = Instant::now();
        c.set_write_deadline(Some(t + ms(200))).unwrap();
        let chunk = vec![0x5au8; 64 * 1024];
        let mut sent = 0usize;
        let err = loop {
            match (&c).write(&chunk) {
                Ok(n) => {
                    assert!(n > 0);
                    sent += n;
                }
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_took(t, ms(200));
        assert!(sent > 0);

        // The connection still works once the deadline is cleared; every byte reported as
        // written arrives, then the later data.
        c.set_write_deadline(None).unwrap();
        let reader = gonet::go(move || {
            let mut total = 0usize;
            let mut tail = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while total < sent + 1000 {
                let n = (&s).read(&mut buf).unwrap();
                assert!(n > 0, "early EOF after {total} bytes");
                for &b in &buf[..n] {
                    if total < sent {
                        assert_eq!(b, 0x5a, "byte {total}");
                    } else {
                        tail.push(b);
                    }
                    total += 1;
                }
            }
            tail
        });
        (&c).write_all(&[0xa5u8; 1000]).unwrap();
        let tail = reader.join().unwrap();
        assert_eq!(tail, vec![0xa5u8; 1000]);
    });
}

#[test]
fn set_deadline_sets_both_directions() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        c.set_deadline(Some(past())).unwrap();
        let mut b = [0u8; 4];
        assert_timeout((&c).read(&mut b));
        assert_timeout((&c).write(b"x"));
        c.set_deadline(None).unwrap();
        (&c).write_all(b"x").unwrap();
    });
}

/// Go's `TestReadTimeoutMustNotReturn`: past deadlines that are then cleared leave a read
/// blocked; close ends it with a non-timeout error.
#[test]
fn cleared_deadline_leaves_read_blocked_until_close() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        c.set_deadline(Some(past())).unwrap();
        c.set_write_deadline(Some(past())).unwrap();
        c.set_read_deadline(None).unwrap();
        let c2 = c.clone();
        let h = gonet::go(move || {
            let mut b = [0u8; 1];
            (&*c2).read(&mut b)
        });
        sleep(ms(200));
        assert!(!h.is_finished(), "read returned although no deadline is set");
        c.close().unwrap();
        let r = h.join().unwrap();
        assert_closed(r);
    });
}

/// One blocked call, whose deadline is moved by another goroutine while it waits.
struct Moved {
    /// When the deadline was moved (relative to `start`).
    moved_at: Duration,
    /// The call's result and how long it took.
    result: io::Result<usize>,
    took: Duration,
}

/// Starts a read on `c` with read deadline `first` (relative to the start), moves it to
/// `second` (relative to the start; `None` clears it) after `move_after`, and after `send_at`
/// (if any) has the peer send one byte.
fn moved_read_deadline(
    first: Option<Duration>,
    move_after: Duration,
    second: Option<Option<Duration>>,
    send_at: Option<Duration>,
) -> Moved {
    let (c, s) = tcp_pair();
    let c = Arc::new(c);
    let start = Instant::now();
    c.set_read_deadline(first.map(|d| start + d)).unwrap();
    let c2 = c.clone();
    let h = gonet::go(move || {
        let mut b = [0u8; 8];
        let r = (&*c2).read(&mut b);
        (r, start.elapsed())
    });
    let s = Arc::new(s);
    let s2 = s.clone();
    let sender = send_at.map(|at| {
        gonet::go(move || {
            sleep((start + at).saturating_duration_since(Instant::now()));
            (&*s2).write_all(b"!").unwrap();
        })
    });
    sleep(move_after);
    if let Some(second) = second {
        match second {
            Some(Duration::ZERO) => c.set_read_deadline(Some(past())).unwrap(),
            Some(d) => c.set_read_deadline(Some(start + d)).unwrap(),
            None => c.set_read_deadline(None).unwrap(),
        }
    }
    let moved_at = start.elapsed();
    let (result, took) = h.join().unwrap();
    if let Some(h) = sender {
        h.join().unwrap();
    }
    drop(s);
    Moved { moved_at, result, took }
}

/// Runs a timing scenario up to three times: a machine stall can make the deadline move later
/// than intended (after the first deadline already fired), which makes a run inconclusive.
fn retry_inconclusive(mut attempt: impl FnMut() -> Option<Moved>, check: impl Fn(&Moved)) {
    for _ in 0..3 {
        if let Some(m) = attempt() {
            check(&m);
            return;
        }
    }
    panic!("the machine was too slow to run this scenario three times in a row");
}

#[test]
fn extending_the_deadline_keeps_a_blocked_read_waiting() {
    run(2, LIMIT, || {
        retry_inconclusive(
            || {
                let m = moved_read_deadline(Some(ms(300)), ms(50), Some(Some(ms(800))), None);
                (m.moved_at < ms(250)).then_some(m)
            },
            |m| {
                match &m.result {
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                    other => panic!("expected TimedOut, got {other:?}"),
                }
                assert!(
                    m.took >= ms(799),
                    "read failed after {:?}, before its new deadline",
                    m.took
                );
                assert!(m.took < Duration::from_secs(6), "read took {:?}", m.took);
            },
        );
    });
}

#[test]
fn extended_deadline_lets_late_data_through() {
    run(2, LIMIT, || {
        retry_inconclusive(
            || {
                let m =
                    moved_read_deadline(Some(ms(300)), ms(50), Some(Some(ms(5000))), Some(ms(600)));
                (m.moved_at < ms(250)).then_some(m)
            },
            |m| {
                match &m.result {
                    Ok(1) => {}
                    other => panic!("expected the late byte, got {other:?} after {:?}", m.took),
                }
                assert!(m.took >= ms(599), "read returned after {:?}", m.took);
            },
        );
    });
}

#[test]
fn shortening_the_deadline_fails_a_blocked_read_sooner() {
    run(2, LIMIT, || {
        let m =
            moved_read_deadline(Some(Duration::from_secs(20)), ms(50), Some(Some(ms(200))), None);
        match &m.result {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert!(m.took >= ms(199), "read failed after {:?}", m.took);
        assert!(
            m.took < Duration::from_secs(6),
            "read took {:?}: the shorter deadline was ignored",
            m.took
        );
    });
}

#[test]
fn deadline_set_in_the_past_fails_a_blocked_read_at_once() {
    run(2, LIMIT, || {
        let m = moved_read_deadline(None, ms(100), Some(Some(Duration::ZERO)), None);
        match &m.result {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert!(m.took >= ms(99));
        assert!(m.took < m.moved_at + Duration::from_secs(5), "read took {:?}", m.took);
    });
}

#[test]
fn clearing_the_deadline_keeps_a_blocked_read_waiting() {
    run(2, LIMIT, || {
        retry_inconclusive(
            || {
                let m = moved_read_deadline(Some(ms(300)), ms(50), Some(None), Some(ms(700)));
                (m.moved_at < ms(250)).then_some(m)
            },
            |m| {
                match &m.result {
                    Ok(1) => {}
                    other => {
                        panic!("expected the byte sent at 700ms, got {other:?} after {:?}", m.took)
                    }
                }
                assert!(m.took >= ms(699));
            },
        );
    });
}

#[test]
fn shortening_the_write_deadline_fails_a_blocked_write() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        let c = Arc::new(c);
        c.set_write_deadline(Some(Instant::now() + Duration::from_secs(20))).unwrap();
        let c2 = c.clone();
        let start = Instant::now();
        let h = gonet::go(move || {
            let chunk = vec![1u8; 256 * 1024];
            loop {
                if let Err(e) = (&*c2).write(&chunk) {
                    return (e.kind(), start.elapsed());
                }
            }
        });
        sleep(ms(100));
        c.set_write_deadline(Some(Instant::now() + ms(100))).unwrap();
        let (kind, took) = h.join().unwrap();
        assert_eq!(kind, io::ErrorKind::TimedOut);
        assert!(took >= ms(199), "write failed after {took:?}");
        assert!(
            took < Duration::from_secs(6),
            "write took {took:?}: the shorter deadline was ignored"
        );
    });
}

#[test]
fn accept_honours_the_listener_deadline() {
    run(2, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let t = Instant::now();
        ln.set_deadline(Some(t + ms(100))).unwrap();
        assert_timeout(ln.accept());
        assert_took(t, ms(100));

        // A deadline in the past fails accept at once even with a connection pending.
        let c = TcpStream::connect(addr).unwrap();
        sleep(ms(20));
        ln.set_deadline(Some(past())).unwrap();
        for _ in 0..2 {
            let t = Instant::now();
            assert_timeout(ln.accept());
            assert!(t.elapsed() < Duration::from_secs(1));
        }
        // Clearing it hands over the pending connection.
        ln.set_deadline(None).unwrap();
        let (s, peer) = ln.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        (&c).write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
    });
}

/// Go's `TestAcceptTimeoutMustNotReturn`.
#[test]
fn accept_with_cleared_deadline_blocks_until_close() {
    run(2, LIMIT, || {
        let ln = Arc::new(listener());
        ln.set_deadline(Some(past())).unwrap();
        ln.set_deadline(None).unwrap();
        let ln2 = ln.clone();
        let h = gonet::go(move || ln2.accept().map(|_| ()));
        sleep(ms(200));
        assert!(!h.is_finished(), "accept returned although no deadline is set");
        ln.close().unwrap();
        assert_closed(h.join().unwrap());
    });
}

#[test]
fn extending_the_accept_deadline_while_blocked() {
    run(2, LIMIT, || {
        // The key check needs the extension to land before the first deadline; a run where
        // the setter was scheduled too late is retried, never skipped.
        for attempt in 0..5 {
            let ln = Arc::new(listener());
            let start = Instant::now();
            ln.set_deadline(Some(start + ms(300))).unwrap();
            let ln2 = ln.clone();
            let h = gonet::go(move || (ln2.accept().map(|_| ()), start.elapsed()));
            sleep(ms(50));
            ln.set_deadline(Some(start + ms(700))).unwrap();
            let moved_at = start.elapsed();
            let (r, took) = h.join().unwrap();
            assert_timeout(r);
            assert!(took < Duration::from_secs(6));
            if moved_at >= ms(250) {
                eprintln!("attempt {attempt}: the extension came late ({moved_at:?}); again");
                continue;
            }
            assert!(took >= ms(699), "accept failed after {took:?}, before its new deadline");
            return;
        }
        panic!("the deadline could not be extended within 250 ms in 5 attempts");
    });
}

#[test]
fn read_timeout_applies_per_call() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        assert_eq!(c.read_timeout().unwrap(), None);
        c.set_read_timeout(Some(ms(100))).unwrap();
        assert_eq!(c.read_timeout().unwrap(), Some(ms(100)));
        let mut b = [0u8; 8];
        // Each call gets its own 100 ms (a deadline would fail the later calls at once).
        for _ in 0..3 {
            let t = Instant::now();
            assert_timeout((&c).read(&mut b));
            assert_took(t, ms(100));
        }
        // Data arriving within a call's window is delivered.
        let s = Arc::new(s);
        let s2 = s.clone();
        let w = gonet::go(move || {
            sleep(ms(30));
            (&*s2).write_all(b"x").unwrap();
        });
        assert_eq!((&c).read(&mut b).unwrap(), 1);
        w.join().unwrap();

        // A zero timeout is an error, as in std.
        let e = c.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(c.read_timeout().unwrap(), Some(ms(100)));

        // Cleared: reads wait without limit again.
        c.set_read_timeout(None).unwrap();
        assert_eq!(c.read_timeout().unwrap(), None);
        let c = Arc::new(c);
        let c2 = c.clone();
        let h = gonet::go(move || {
            let mut b = [0u8; 8];
            (&*c2).read(&mut b).unwrap()
        });
        sleep(ms(300));
        assert!(!h.is_finished(), "read returned although its timeout was cleared");
        (&*s).write_all(b"yz").unwrap();
        assert_eq!(h.join().unwrap(), 2);
    });
}

#[test]
fn read_timeout_and_deadline_combine() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let mut b = [0u8; 8];
        // The earlier of the two wins: a deadline sooner than the timeout.
        let t = Instant::now();
        c.set_read_deadline(Some(t + ms(100))).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        assert_timeout((&c).read(&mut b));
        assert_took(t, ms(100));
        assert!(t.elapsed() < Duration::from_secs(10));

        // A timeout sooner than the deadline.
        let t = Instant::now();
        c.set_read_deadline(Some(t + Duration::from_secs(20))).unwrap();
        c.set_read_timeout(Some(ms(100))).unwrap();
        assert_timeout((&c).read(&mut b));
        assert_took(t, ms(100));

        // Clearing the timeout leaves the user's deadline in force.
        c.set_read_deadline(Some(past())).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        c.set_read_timeout(None).unwrap();
        assert_timeout((&c).read(&mut b));

        // After a per-call timeout expired and the timeout is cleared, nothing of it lingers.
        c.set_read_deadline(None).unwrap();
        c.set_read_timeout(Some(ms(20))).unwrap();
        assert_timeout((&c).read(&mut b));
        c.set_read_timeout(None).unwrap();
        (&s).write_all(b"ok").unwrap();
        sleep(ms(30));
        assert_eq!((&c).read(&mut b).unwrap(), 2);
    });
}

#[test]
fn write_timeout_applies_per_call() {
    run(2, LIMIT, || {
        let (c, _s) = tcp_pair();
        fill_send_buffer(&c);
        c.set_write_timeout(Some(ms(100))).unwrap();
        assert_eq!(c.write_timeout().unwrap(), Some(ms(100)));
        for _ in 0..2 {
            let t = Instant::now();
            let chunk = [7u8; 64 * 1024];
            // A call may report a partial write first; the next one then times out.
            let e = loop {
                if let Err(e) = (&c).write(&chunk) {
                    break e;
                }
            };
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            assert_took(t, ms(100));
        }
        assert_eq!(
            c.set_write_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        c.set_write_timeout(None).unwrap();
        assert_eq!(c.write_timeout().unwrap(), None);
    });
}

/// A deadline so far away that it must not overflow anything.
#[test]
fn far_future_deadline_and_huge_timeouts() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        c.set_deadline(Some(far)).unwrap();
        (&s).write_all(b"abc").unwrap();
        let mut b = [0u8; 3];
        (&c).read_exact(&mut b).unwrap();
        (&c).write_all(b"def").unwrap();
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"def");

        c.set_read_timeout(Some(Duration::MAX)).unwrap();
        c.set_write_timeout(Some(Duration::MAX)).unwrap();
        (&s).write_all(b"ghi").unwrap();
        (&c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ghi");

        // Just past what u64 nanoseconds hold (~584 years): still no timeout in practice, not
        // a value wrapped around to 2 ms.
        let huge = Duration::from_nanos(u64::MAX) + ms(2);
        c.set_read_timeout(Some(huge)).unwrap();
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        assert!(c.read_timeout().unwrap().unwrap() > century);
        let (c, s) = (Arc::new(c), Arc::new(s));
        let (c2, s2) = (c.clone(), s.clone());
        let w = gonet::go(move || {
            sleep(ms(50));
            (&*s2).write_all(b"jkl")
        });
        (&*c2).read_exact(&mut b).unwrap();
        w.join().unwrap().unwrap();
        assert_eq!(&b, b"jkl");
        c.set_read_timeout(Some(Duration::MAX)).unwrap();

        // A blocked read under the far deadline still ends on close.
        let c2 = c.clone();
        let h = gonet::go(move || {
            let mut b = [0u8; 1];
            (&*c2).read(&mut b)
        });
        sleep(ms(50));
        c.close().unwrap();
        assert_closed(h.join().unwrap());
    });
}

/// Go's `TestVariousDeadlines`: tiny to moderate deadlines on a connection whose peer sends
/// without pause; every copy loop must end with a timeout.
fn various_deadlines(procs: usize) {
    run(procs, Duration::from_secs(60), || {
        let ln = Arc::new(listener());
        let addr = ln.local_addr().unwrap();
        let ln2 = ln.clone();
        let server = gonet::go(move || {
            let mut conns = Vec::new();
            while let Ok((c, _)) = ln2.accept() {
                conns.push(gonet::go(move || {
                    let buf = vec![b'x'; 16 * 1024];
                    while (&c).write(&buf).is_ok() {}
                }));
            }
            for h in conns {
                h.join().unwrap();
            }
        });
        let timeouts = [
            Duration::from_nanos(1),
            Duration::from_nanos(50),
            Duration::from_nanos(500),
            Duration::from_micros(1),
            Duration::from_micros(25),
            Duration::from_micros(250),
            ms(1),
            ms(5),
            ms(50),
            ms(100),
        ];
        for d in timeouts {
            for _ in 0..3 {
                let c = TcpStream::connect(addr).unwrap();
                let t = Instant::now();
                c.set_deadline(Some(t + d)).unwrap();
                let mut buf = vec![0u8; 32 * 1024];
                let err = loop {
                    match (&c).read(&mut buf) {
                        Ok(0) => panic!("unexpected EOF"),
                        Ok(_) => {}
                        Err(e) => break e,
                    }
                };
                assert_eq!(err.kind(), io::ErrorKind::TimedOut, "deadline {d:?}: {err}");
                assert_took(t, d);
            }
        }
        ln.close().unwrap();
        server.join().unwrap();
    });
}

#[test]
fn various_deadlines_1_proc() {
    various_deadlines(1);
}

#[test]
fn various_deadlines_4_procs() {
    various_deadlines(4);
}

/// Go's `TestReadWriteDeadlineRace`: deadlines of a few microseconds set over and over while a
/// reader and a writer run; nothing may hang or panic.
#[test]
fn deadline_race_with_reader_and_writer() {
    run(2, LIMIT, || {
        const N: usize = 1000;
        let ln = listener();
        let c = Arc::new(TcpStream::connect(ln.local_addr().unwrap()).unwrap());
        let (c1, c2, c3) = (c.clone(), c.clone(), c.clone());
        let setter = gonet::go(move || {
            for _ in 0..N {
                c1.set_read_deadline(Some(Instant::now() + Duration::from_micros(2))).unwrap();
                c1.set_write_deadline(Some(Instant::now() + Duration::from_micros(2))).unwrap();
                sleep(Duration::from_micros(2));
            }
        });
        // Nobody writes to `c`: every read can only end with its deadline.
        let reader = gonet::go(move || {
            let mut b = [0u8; 1];
            for i in 0..N {
                match (&*c2).read(&mut b) {
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                    other => panic!("read {i} with no data sent: {other:?}, expected a timeout"),
                }
            }
        });
        // Each write either sends its byte or times out; nothing else.
        let writer = gonet::go(move || {
            let mut sent = 0;
            for i in 0..N {
                match (&*c3).write(&[i as u8]) {
                    Ok(1) => sent += 1,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                    other => panic!("write {i}: {other:?}"),
                }
            }
            sent
        });
        setter.join().unwrap();
        reader.join().unwrap();
        let sent = writer.join().unwrap();
        // The connection still works, and exactly the bytes reported sent arrived.
        c.set_read_deadline(None).unwrap();
        c.set_write_deadline(None).unwrap();
        let (s, _) = ln.accept().unwrap();
        (&*c).write_all(b"!").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        (&s).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), sent + 1, "bytes received vs. writes reported");
        assert_eq!(got.last(), Some(&b'!'));
        (&s).write_all(b"?").unwrap();
        let mut b = [0u8; 1];
        (&*c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"?");
    });
}

/// After Go's `TestReadWriteProlongedTimeout`: a server whose reader and writer goroutines
/// push their deadlines an hour ahead before every call, under a ping-pong client.
#[test]
fn deadline_pushed_ahead_before_every_call() {
    run(2, LIMIT, || {
        const ROUNDS: usize = 2000;
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let server = gonet::go(move || {
            let (c, _) = ln.accept().unwrap();
            let c = Arc::new(c);
            let c2 = c.clone();
            let (tx, rx) = gonet::chan::bounded::<u8>(1);
            let r = gonet::go(move || {
                let mut b = [0u8; 1];
                let mut n = 0;
                loop {
                    c2.set_read_deadline(Some(Instant::now() + Duration::from_secs(3600))).unwrap();
                    match (&*c2).read(&mut b) {
                        Ok(1) => {
                            n += 1;
                            tx.send(b[0]).unwrap();
                        }
                        _ => return n,
                    }
                }
            });
            let mut n = 0;
            while let Ok(b) = rx.recv() {
                c.set_write_deadline(Some(Instant::now() + Duration::from_secs(3600))).unwrap();
                (&*c).write_all(&[b]).unwrap();
                n += 1;
            }
            (r.join().unwrap(), n)
        });
        let c = TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        for i in 0..ROUNDS {
            (&c).write_all(&[i as u8]).unwrap();
            (&c).read_exact(&mut b).unwrap();
            assert_eq!(b[0], i as u8);
        }
        drop(c);
        assert_eq!(server.join().unwrap(), (ROUNDS, ROUNDS));
    });
}

/// Go's `TestConcurrentSetDeadline`: many goroutines moving the deadlines of many connections.
#[test]
fn concurrent_set_deadline() {
    run(2, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let conns: Arc<Vec<TcpStream>> =
            Arc::new((0..10).map(|_| TcpStream::connect(addr).unwrap()).collect());
        let now = Instant::now();
        let hs: Vec<_> = (0..8u64)
            .map(|i| {
                let conns = conns.clone();
                gonet::go(move || {
                    for j in (1..=100u64).rev() {
                        for (k, c) in conns.iter().enumerate() {
                            let k = k as u64;
                            let extra = Duration::from_secs(i * j * k);
                            c.set_read_deadline(Some(now + Duration::from_secs(7200) + extra))
                                .unwrap();
                            c.set_write_deadline(Some(now + Duration::from_secs(3600) + extra))
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // Every connection still works with the deadlines left in the future (hours ahead:
        // none fires), and carries exactly its own bytes.
        let mut servers = std::collections::HashMap::new();
        for _ in 0..conns.len() {
            let (s, peer) = ln.accept().unwrap();
            servers.insert(peer, s);
        }
        for (k, c) in conns.iter().enumerate() {
            let s = &servers[&c.local_addr().unwrap()];
            (&*s).write_all(&[k as u8]).unwrap();
            let mut b = [0u8; 1];
            (&*c).read_exact(&mut b).unwrap_or_else(|e| panic!("connection {k}: {e}"));
            assert_eq!(b[0], k as u8, "connection {k}");
            (&*c).write_all(&[k as u8 + 100]).unwrap();
            (&*s).read_exact(&mut b).unwrap_or_else(|e| panic!("connection {k}: {e}"));
            assert_eq!(b[0], k as u8 + 100, "connection {k}");
        }
        // The last deadline set is the one in force: a near one fires, not before its time.
        for c in conns.iter() {
            let t = Instant::now();
            c.set_read_deadline(Some(t + ms(20))).unwrap();
            assert_timeout((&*c).read(&mut [0u8; 1]));
            assert_took(t, ms(20));
        }
    });
}

#[test]
fn connect_timeout_succeeds_and_validates() {
    run(2, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let c = TcpStream::connect_timeout(addr, Duration::from_secs(5)).unwrap();
        let (s, _) = ln.accept().unwrap();
        (&c).write_all(b"1").unwrap();
        let mut b = [0u8; 1];
        (&s).read_exact(&mut b).unwrap();
        let e = TcpStream::connect_timeout(addr, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // The connection has no leftover write deadline from the dial.
        fill_send_buffer(&c);
        let c = Arc::new(c);
        let c2 = c.clone();
        let h = gonet::go(move || loop {
            if let Err(e) = (&*c2).write(&[0u8; 64 * 1024]) {
                return e;
            }
        });
        sleep(ms(300));
        assert!(!h.is_finished(), "the dial's deadline leaked into later writes");
        c.close().unwrap();
        let e = h.join().unwrap();
        assert!(gonet::net::is_closed(&e), "{e}");
    });
}

/// Go's `TestDialTimeoutMaxDuration`: a timeout that overflows any clock must just mean
/// "no limit".
#[test]
fn connect_timeout_with_max_duration() {
    run(2, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let c = TcpStream::connect_timeout(addr, Duration::MAX).unwrap();
        let (s, _) = ln.accept().unwrap();
        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
    });
}

/// A listener whose accept queue is full drops new SYNs, so a dial to it hangs: the dial's
/// timeout must end it.
#[test]
fn connect_timeout_expires_on_a_listener_that_drops_syns() {
    run(2, LIMIT, || {
        let raw = TcpListener::from(full_backlog_listener());
        let addr = raw.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = 0;
        for _ in 0..6 {
            let t = Instant::now();
            match TcpStream::connect_timeout(addr, ms(300)) {
                Ok(c) => held.push(c),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                    assert_took(t, ms(300));
                    timed_out += 1;
                }
            }
        }
        assert!(timed_out > 0, "every dial connected although the accept queue was full");
        drop(raw);
    });
}

/// A deadline that expires between the read's first check and the re-check after it
/// announced its wait (the `prepare` → check → `finish` path of the `PollDesc`) must leave the
/// descriptor's state clean: the next read waits normally and gets its data. Each round uses
/// a fresh socket, whose first wait also registers it with epoll (a syscall inside that
/// window), and a deadline at a random instant around it; on one and on two workers.
#[test]
fn deadline_expiring_as_the_read_announces_its_wait_leaves_the_socket_usable() {
    for procs in [1, 2] {
        run(procs, LIMIT, || {
            let ln = listener();
            let addr = ln.local_addr().unwrap();
            let mut b = [0u8; 8];
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in 0..1500u32 {
                let c = TcpStream::connect(addr).unwrap();
                let (s, _) = ln.accept().unwrap();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = Instant::now() + Duration::from_nanos(x % 8000);
                c.set_read_deadline(Some(at)).unwrap();
                assert_timeout((&c).read(&mut b));
                c.set_read_deadline(None).unwrap();
                // The data comes after the next read has started waiting for it.
                let w = gonet::go(move || {
                    gonet::yield_now();
                    (&s).write_all(&i.to_le_bytes()).unwrap();
                });
                (&c).read_exact(&mut b[..4]).unwrap();
                w.join().unwrap();
                assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), i);
            }
        });
    }
}

/// A deadline that stays the same arms one timer, not one per wait: a reader that parks a
/// thousand times under one far deadline leaves about one timer pending on its worker (Go's
/// `pollDesc` likewise keeps one timer per direction and only resets it when the deadline
/// moves).
#[test]
fn waits_under_one_deadline_share_one_timer() {
    run(1, LIMIT, || {
        const ROUNDS: usize = 1000;
        let (c, s) = tcp_pair();
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(3600))).unwrap();
        let (ack_tx, ack_rx) = gonet::chan::bounded::<()>(0);
        let reader = gonet::go(move || {
            let mut b = [0u8; 1];
            for _ in 0..ROUNDS {
                (&c).read_exact(&mut b).unwrap();
                ack_tx.send(()).unwrap();
            }
        });
        for _ in 0..ROUNDS {
            (&s).write_all(b"x").unwrap();
            ack_rx.recv().unwrap();
        }
        let pending = gonet::runtime::stats().unwrap().workers[0].timers;
        reader.join().unwrap();
        assert!(pending <= 3, "{pending} timers pending after {ROUNDS} waits under one deadline");
    });
}
