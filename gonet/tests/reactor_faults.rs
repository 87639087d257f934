//! The reactor's bad-input and fault cases (issue 8): a peer closing while its handler waits,
//! handler errors and panics, read and idle timeouts, close from another goroutine, oversized
//! `malloc` and `next`, EMFILE in accept, shutdown with handlers in flight.

mod net_util;
mod reactor_util;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gonet::reactor::{ConnHandle, Connection, EventLoop};
use reactor_util::*;

const LIMIT: Duration = Duration::from_secs(60);

type Log = Arc<Mutex<Vec<String>>>;

fn log_of(l: &Log) -> Vec<String> {
    l.lock().unwrap().clone()
}

/// The peer closes while the handler waits in `next(n)`: `UnexpectedEof`, and the close
/// callbacks run exactly once.
#[test]
fn peer_close_while_waiting_in_next() {
    net_util::within(LIMIT, || {
        let log: Log = Default::default();
        let closes = Arc::new(AtomicUsize::new(0));
        let (l2, c2) = (log.clone(), closes.clone());
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let c3 = c2.clone();
            c.add_close_callback(move || {
                c3.fetch_add(1, Ordering::SeqCst);
            });
            let r = c.next(100).map(|s| s.len());
            l2.lock().unwrap().push(format!("{:?}", r.as_ref().map_err(|e| e.kind())));
            r.map(|_| ())
        })
        .build();
        let srv = Server::start(lp, 2);
        let mut s = srv.connect();
        s.write_all(b"only ten b").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(s);
        wait_for(Duration::from_secs(10), "close callbacks", || closes.load(Ordering::SeqCst) >= 1);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(log_of(&log), vec!["Err(UnexpectedEof)".to_string()]);
        assert_eq!(closes.load(Ordering::SeqCst), 1, "close callbacks ran exactly once");
        srv.stop().unwrap();
    });
}

/// A handler that returns `Err` or panics closes its connection only.
#[test]
fn handler_error_or_panic_closes_only_that_connection() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let b = c.peek(1)?[0];
            match b {
                b'e' => Err(io::Error::other("handler failed on purpose")),
                b'p' => panic!("handler panicked on purpose"),
                _ => echo(c),
            }
        })
        .build();
        let srv = Server::start(lp, 2);
        let mut good: Vec<_> = (0..4).map(|_| srv.connect()).collect();
        for g in &mut good {
            assert_eq!(roundtrip(g, b"hello"), b"hello");
        }
        for bad in [b"error", b"panic"] {
            let mut s = srv.connect();
            s.write_all(bad).unwrap();
            let (rest, _) = read_to_end(&mut s);
            assert!(rest.is_empty(), "{:?}: the connection was closed without a reply", bad);
        }
        for g in &mut good {
            assert_eq!(roundtrip(g, b"still here"), b"still here");
        }
        wait_for(Duration::from_secs(10), "the bad connections to go", || {
            srv.lp.connections() == 4
        });
        srv.stop().unwrap();
    });
}

/// A read timeout ends a waiting `next(n)` with `TimedOut`; the idle timeout closes an idle
/// connection.
#[test]
fn read_timeout_and_idle_timeout() {
    net_util::within(LIMIT, || {
        let log: Log = Default::default();
        let l2 = log.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let t = Instant::now();
            let r = c.next(10);
            let kind = r.as_ref().map(|_| ()).map_err(|e| e.kind());
            l2.lock()
                .unwrap()
                .push(format!("{kind:?} {}", t.elapsed() >= Duration::from_millis(90)));
            r.map(|_| ())
        })
        .read_timeout(Duration::from_millis(100))
        .build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        s.write_all(b"abc").unwrap();
        let (rest, _) = read_to_end(&mut s);
        assert!(rest.is_empty());
        assert_eq!(log_of(&log), vec!["Err(TimedOut) true".to_string()]);
        srv.stop().unwrap();

        let lp = EventLoop::builder(echo).idle_timeout(Duration::from_millis(150)).build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        for _ in 0..5 {
            assert_eq!(roundtrip(&mut s, b"ping"), b"ping");
            std::thread::sleep(Duration::from_millis(50)); // active: shorter than the timeout
        }
        let t = Instant::now();
        let (rest, _) = read_to_end(&mut s);
        assert!(rest.is_empty());
        let idle = t.elapsed();
        assert!(idle >= Duration::from_millis(90), "closed after {idle:?} only");
        assert!(idle < Duration::from_secs(5), "closed after {idle:?}");
        srv.stop().unwrap();
    });
}

/// `close()` from another goroutine wakes a handler waiting in `next(n)`.
#[test]
fn close_from_another_goroutine_wakes_the_handler() {
    net_util::within(LIMIT, || {
        let log: Log = Default::default();
        let handles: Arc<Mutex<Vec<ConnHandle>>> = Default::default();
        let (l2, h2) = (log.clone(), handles.clone());
        let lp = EventLoop::builder(move |c: &mut Connection| {
            h2.lock().unwrap().push(c.handle());
            let r = c.next(1000);
            l2.lock().unwrap().push(format!(
                "{:?} active={}",
                r.as_ref().map(|_| ()).map_err(|e| e.kind()),
                c.is_active()
            ));
            Ok(())
        })
        .build();
        let srv = Server::start(lp, 2);
        let mut s = srv.connect();
        s.write_all(b"x").unwrap();
        wait_for(Duration::from_secs(10), "the handler to wait", || {
            !handles.lock().unwrap().is_empty()
        });
        std::thread::sleep(Duration::from_millis(30));
        assert!(log_of(&log).is_empty(), "the handler waits");
        // Close from a goroutine of another runtime (a different thread altogether).
        let h = handles.lock().unwrap()[0].clone();
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            gonet::go(move || h.close()).join().unwrap();
        });
        wait_for(Duration::from_secs(10), "the handler to wake", || !log_of(&log).is_empty());
        assert_eq!(log_of(&log), vec!["Err(NotConnected) active=false".to_string()]);
        let (rest, _) = read_to_end(&mut s);
        assert!(rest.is_empty());
        srv.stop().unwrap();
    });
}

/// `malloc` beyond the output cap and `next` beyond the input cap are `InvalidInput`; the
/// connection survives the malloc error (the handler chose to go on).
#[test]
fn oversized_malloc_and_next_are_invalid_input() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let cmd = c.next(1)?[0];
            let r = match cmd {
                b'm' => c.malloc(1 << 20).map(|_| ()),
                b'n' => c.next(1 << 20).map(|_| ()),
                _ => c.malloc(usize::MAX / 2).map(|_| ()),
            };
            let e = r.expect_err("must fail");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            c.write_string(&format!("{:03}\n", e.to_string().len().min(999)))?;
            c.flush()
        })
        .output_cap(64 * 1024)
        .input_cap(64 * 1024)
        .build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        for cmd in [b"m", b"n", b"x"] {
            s.write_all(cmd).unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            assert_eq!(b[3], b'\n', "{:?}", b);
        }
        srv.stop().unwrap();
    });
}

/// Shutdown waits for a handler in flight, then closes; with a deadline too short it says
/// how many connections were still busy.
#[test]
fn shutdown_with_handlers_in_flight() {
    net_util::within(LIMIT, || {
        let done = Arc::new(AtomicUsize::new(0));
        let d2 = done.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let ms = c.next(1)?[0] as u64 * 10;
            gonet::time::sleep(Duration::from_millis(ms));
            c.write_binary(b"done")?;
            c.flush()?;
            d2.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .build();
        let srv = Server::start(lp, 2);
        let idle = srv.connect();
        let mut busy = srv.connect();
        busy.write_all(&[30]).unwrap(); // a 300 ms handler
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        srv.lp.shutdown(Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(150), "shutdown waited for the handler");
        assert_eq!(done.load(Ordering::SeqCst), 1);
        let mut b = [0u8; 4];
        busy.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"done");
        drop(idle);
        srv.stop().unwrap();

        // A deadline shorter than the handler: the error counts the busy connection.
        let lp = EventLoop::builder(|c: &mut Connection| {
            c.next(1)?;
            gonet::time::sleep(Duration::from_secs(3));
            Ok(())
        })
        .build();
        let srv = Server::start(lp, 2);
        let _idle = srv.connect();
        let mut busy = srv.connect();
        busy.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let e = srv.lp.shutdown(Instant::now() + Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("1 connections still busy"), "{e}");
        drop(srv);
    });
}

const CHILD_ENV: &str = "GONET_REACTOR_FAULTS_CHILD";

/// EMFILE in accept: the loop backs off without spinning and serves again once descriptors
/// are free. In a child process (it lowers the process's descriptor limit).
#[test]
fn emfile_in_accept_backs_off_without_spinning() {
    if std::env::var(CHILD_ENV).is_ok() {
        emfile_child();
        return;
    }
    let name = "emfile_in_accept_backs_off_without_spinning";
    let (status, out) = net_util::run_child(name, (CHILD_ENV, "1"), Duration::from_secs(60));
    assert!(status.success(), "child failed ({status}):\n{out}");
    assert!(out.contains("REACTOR-EMFILE-OK"), "child did not run the check:\n{out}");
}

/// Counts the reactor's "accept ... retrying" reports.
struct CountAccepts(AtomicUsize);

impl log::Log for CountAccepts {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        if r.args().to_string().contains("accept on") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn flush(&self) {}
}

static ACCEPT_REPORTS: CountAccepts = CountAccepts(AtomicUsize::new(0));

fn emfile_child() {
    log::set_logger(&ACCEPT_REPORTS).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    net_util::within(LIMIT, || {
        let srv = Server::start(EventLoop::builder(echo).build(), 1);
        std::thread::sleep(Duration::from_millis(50));
        let socks: Vec<socket2::Socket> = (0..3)
            .map(|_| {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap()
            })
            .collect();
        let lim = libc::rlimit { rlim_cur: 256, rlim_max: 4096 };
        // SAFETY: setrlimit reads a valid rlimit struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let mut held = Vec::new();
        loop {
            // SAFETY: opening /dev/null; the result is checked before it is owned.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                break;
            }
            // SAFETY: a fresh descriptor owned by nobody else.
            held.push(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
        for s in &socks {
            s.connect(&srv.addr.into()).unwrap(); // completed by the kernel; accept fails
        }
        let cpu0 = net_util::cpu_time();
        std::thread::sleep(Duration::from_millis(600));
        let cpu = net_util::cpu_time() - cpu0;
        let tries = ACCEPT_REPORTS.0.load(Ordering::Relaxed);
        println!("EMFILE: {tries} failed accepts and {cpu:?} of CPU in 600 ms");
        assert_eq!(srv.lp.connections(), 0, "accepted without a free descriptor?");
        // Backing off from 5 ms, doubling: about 7 tries in 600 ms; a spin makes thousands
        // (counted, not timed: on a loaded machine a spinning thread may get little CPU).
        assert!((1..30).contains(&tries), "{tries} failed accepts in 600 ms: a spin");
        assert!(cpu < Duration::from_millis(300), "{cpu:?} of CPU in 600 ms of EMFILE: a spin");
        drop(held);
        for s in socks {
            let mut s: std::net::TcpStream = s.into();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            assert_eq!(roundtrip(&mut s, b"back"), b"back");
        }
        srv.stop().unwrap();
    });
    println!("REACTOR-EMFILE-OK");
}
