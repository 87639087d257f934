//! What the reactor tells its operator without setup: a handler's error and panic on stderr
//! naming the connection, and stall reports that name the handler call that held the worker,
//! not a goroutine that ran many short calls back to back. Each check runs in a child
//! process, whose stderr is read (no logger installed).

mod net_util;
mod reactor_util;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use gonet::reactor::{Connection, EventLoop};
use reactor_util::{echo, read_to_end, Server};

const CHILD_ENV: &str = "GONET_REACTOR_REPORTS_CHILD";
const LIMIT: Duration = Duration::from_secs(60);

/// Runs test `name` again in a child process and returns its exit status and output.
fn child(name: &str) -> String {
    let (status, out) = net_util::run_child(name, (CHILD_ENV, "1"), LIMIT);
    assert!(status.success(), "child failed ({status}):\n{out}");
    assert!(out.contains("CHILD-OK"), "child did not run its check:\n{out}");
    out
}

/// The rest of the line after `key` in the child's output (the harness may print its test
/// line in front).
fn marker<'a>(out: &'a str, key: &str) -> &'a str {
    let i = out.find(key).unwrap_or_else(|| panic!("no {key:?} in:\n{out}"));
    out[i + key.len()..].lines().next().unwrap().trim()
}

fn in_child() -> bool {
    std::env::var(CHILD_ENV).is_ok()
}

/// A handler's `Err` and panic reach stderr naming the connection's peer and descriptor; the
/// panic report does not send the user to a `JoinHandle` they do not have.
#[test]
fn handler_errors_and_panics_name_the_connection() {
    if !in_child() {
        let out = child("handler_errors_and_panics_name_the_connection");
        let ports = marker(&out, "CLIENT-PORTS ");
        let ports: Vec<&str> = ports.split(' ').collect();
        let err_line = out
            .lines()
            .find(|l| l.contains("frame of 4294967295 bytes"))
            .unwrap_or_else(|| panic!("no error report:\n{out}"));
        assert!(err_line.contains(&format!("127.0.0.1:{}", ports[0])), "{err_line}");
        assert!(err_line.contains("fd "), "{err_line}");
        let panic_line = out
            .lines()
            .find(|l| l.contains("on_request handler for connection"))
            .unwrap_or_else(|| panic!("no panic report:\n{out}"));
        assert!(panic_line.contains(&format!("127.0.0.1:{}", ports[1])), "{panic_line}");
        assert!(!out.contains("JoinHandle"), "{out}");
        return;
    }
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| match c.peek(1)?[0] {
            b'e' => Err(io::Error::new(io::ErrorKind::InvalidData, "frame of 4294967295 bytes")),
            b'p' => panic!("handler panicked on purpose"),
            _ => echo(c),
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut ports = Vec::new();
        for msg in [b"error", b"panic"] {
            let mut s = srv.connect();
            ports.push(s.local_addr().unwrap().port().to_string());
            s.write_all(msg).unwrap();
            let (rest, _) = read_to_end(&mut s);
            assert!(rest.is_empty());
        }
        println!("CLIENT-PORTS {}", ports.join(" "));
        srv.stop().unwrap();
    });
    println!("CHILD-OK");
}

/// Spins for `d` without parking or yielding.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Many connections whose handler calls are short (3 ms each) but run back to back by one
/// handler goroutine for far longer than the stall threshold: no stall is reported. One
/// call that spins 300 ms is reported, naming its descriptor.
#[test]
fn stall_reports_name_the_call_that_held_the_worker() {
    if !in_child() {
        let out = child("stall_reports_name_the_call_that_held_the_worker");
        let stalls: Vec<&str> =
            out.lines().filter(|l| l.contains("without parking or yielding")).collect();
        let slow_fd = marker(&out, "SLOW-FD ");
        assert_eq!(stalls.len(), 1, "exactly the slow call is reported:\n{out}");
        assert!(stalls[0].contains(&format!("a handler call on fd {slow_fd}")), "{}", stalls[0]);
        return;
    }
    net_util::within(LIMIT, || {
        let slow_fd = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(-1));
        let sf = slow_fd.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let n = c.len();
            let d = c.next(n)?.to_vec();
            if d == b"slow" {
                sf.store(std::os::fd::AsRawFd::as_raw_fd(c), std::sync::atomic::Ordering::SeqCst);
                spin(Duration::from_millis(300));
            } else {
                spin(Duration::from_millis(3));
            }
            c.write_binary(&d)
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut conns: Vec<_> = (0..100).map(|_| srv.connect()).collect();
        for _ in 0..3 {
            for s in &mut conns {
                s.write_all(b"x").unwrap();
            }
            for s in &mut conns {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
            }
        }
        let mut slow = srv.connect();
        slow.write_all(b"slow").unwrap();
        let mut b = [0u8; 4];
        slow.read_exact(&mut b).unwrap();
        println!("SLOW-FD {}", slow_fd.load(std::sync::atomic::Ordering::SeqCst));
        drop((conns, slow));
        srv.stop().unwrap();
    });
    println!("CHILD-OK");
}

/// A handler waiting in `next` for the rest of a request shows in a goroutine dump as Go
/// shows a goroutine in `IO wait`: the state, the descriptor and the peer's address.
#[test]
fn a_waiting_handler_shows_its_connection_in_the_dump() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let d = c.next(100)?.to_vec();
            c.write_binary(&d)
        })
        .build();
        let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let lp2 = lp.clone();
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            let server = gonet::go(move || lp2.serve(ln));
            let client = std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"12345").unwrap();
                let port = s.local_addr().unwrap().port();
                (s, port)
            });
            let (s, port) = gonet::blocking(move || client.join().unwrap());
            let peer = format!("127.0.0.1:{port}");
            let mut shown = String::new();
            for _ in 0..100 {
                gonet::time::sleep(Duration::from_millis(10));
                shown = gonet::runtime::dump().to_string();
                if shown.contains(&peer) {
                    break;
                }
            }
            let line =
                shown.lines().find(|l| l.contains(&peer)).unwrap_or_else(|| panic!("{shown}"));
            assert!(line.contains("IO wait"), "{line}");
            drop(s);
            lp.shutdown(Instant::now() + Duration::from_secs(5)).unwrap();
            server.join().unwrap().unwrap();
        });
    });
}

/// The handler-call description belongs to the goroutine making the call: while one handler
/// is parked mid-call, a plain goroutine panicking on the same worker is reported as itself.
#[test]
fn a_parked_handler_call_does_not_describe_other_panics() {
    if !in_child() {
        let out = child("a_parked_handler_call_does_not_describe_other_panics");
        assert!(out.contains("plain goroutine panicked"), "{out}");
        let line = out
            .lines()
            .find(|l| l.contains("\"plain\"") && l.contains("panicked"))
            .unwrap_or_else(|| panic!("no report for the plain goroutine:\n{out}"));
        assert!(line.contains("JoinHandle"), "{line}");
        assert!(!out.contains("reactor on_request handler"), "{out}");
        return;
    }
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| match c.peek(1)?[0] {
            b'w' => {
                let d = c.next(100)?.to_vec(); // parks mid-call
                c.write_binary(&d)
            }
            _ => {
                let n = c.len();
                c.skip(n)?;
                let h = gonet::go_named("plain", || panic!("plain goroutine panicked"));
                assert!(h.join().is_err());
                c.write_binary(b"k")
            }
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut a = srv.connect();
        a.write_all(b"w").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut b = srv.connect();
        b.write_all(b"g").unwrap();
        let mut k = [0u8; 1];
        b.read_exact(&mut k).unwrap();
        drop((a, b));
        srv.stop().unwrap();
    });
    println!("CHILD-OK");
}

/// Idle reactor connections hold no goroutine, yet the dump lists every connection of a loop:
/// fd, peer, owner worker and whether a handler holds it.
#[test]
fn the_dump_lists_the_loops_connections() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            let d = c.next(100)?.to_vec(); // the "busy" one waits here
            c.write_binary(&d)
        })
        .build();
        let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let lp2 = lp.clone();
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let server = gonet::go(move || lp2.serve(ln));
            let clients = gonet::blocking(move || {
                let mut v = Vec::new();
                for i in 0..3 {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    if i == 0 {
                        s.write_all(b"12345").unwrap();
                    }
                    v.push(s);
                }
                v
            });
            let ports: Vec<String> = clients
                .iter()
                .map(|s| format!("127.0.0.1:{}", s.local_addr().unwrap().port()))
                .collect();
            let mut shown = String::new();
            for _ in 0..200 {
                gonet::time::sleep(Duration::from_millis(10));
                shown = gonet::runtime::dump().to_string();
                let busy = shown
                    .lines()
                    .any(|l| l.contains(&ports[0]) && l.contains("busy") && l.contains("5 bytes"));
                if busy && shown.contains(&format!("reactor event loop on {addr}: 3 connections")) {
                    break;
                }
            }
            assert!(
                shown.contains(&format!("reactor event loop on {addr}: 3 connections")),
                "{shown}"
            );
            let line = |p: &str| {
                shown
                    .lines()
                    .find(|l| l.contains(&format!("from {p}")))
                    .unwrap_or_else(|| panic!("{p} missing:\n{shown}"))
                    .to_string()
            };
            assert!(line(&ports[0]).contains("busy"), "{shown}");
            assert!(line(&ports[0]).contains("5 bytes buffered"), "{shown}");
            assert!(line(&ports[1]).contains("idle"), "{shown}");
            assert!(line(&ports[2]).contains("idle") && line(&ports[2]).contains("worker "));
            drop(clients);
            lp.shutdown(Instant::now() + Duration::from_secs(5)).unwrap();
            server.join().unwrap().unwrap();
        });
    });
}
