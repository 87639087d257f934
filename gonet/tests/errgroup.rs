//! `errgroup::Group`'s limit (0 admits no member, `remove_limit` lifts it) and
//! `net::with_context`'s closure, which reads and writes without a rebind.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gonet::context::{self, Context};
use gonet::errgroup::Group;
use gonet::net::{TcpListener, TcpStream};

#[test]
fn a_limit_of_zero_admits_no_member_and_does_not_panic() {
    common::run(2, || {
        let mut g: Group = Group::new();
        g.set_limit(0);
        assert!(!g.try_go(|| Ok(())), "try_go declines under a limit of 0");
        // `go` parks for good, as Go's: run it in a goroutine and see it never start one.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let g = Arc::new(g);
        let g2 = g.clone();
        let _parked = gonet::go(move || {
            g2.go(move || {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
            unreachable!("go returned under a limit of 0");
        });
        gonet::time::sleep(Duration::from_millis(200));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn remove_limit_and_max_lift_the_limit() {
    for lift in [false, true] {
        common::run(2, move || {
            let mut g: Group = Group::new();
            g.set_limit(1);
            if lift {
                g.remove_limit();
            } else {
                g.set_limit(usize::MAX);
            }
            // Three members that each wait for all three to have started: only possible
            // with no limit (under a limit of 1 the first would wait forever).
            let started = Arc::new(AtomicUsize::new(0));
            for _ in 0..3 {
                let s = started.clone();
                assert!(g.try_go(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                    while s.load(Ordering::SeqCst) < 3 {
                        gonet::time::sleep(Duration::from_millis(1));
                    }
                    Ok(())
                }));
            }
            g.wait().unwrap();
        });
    }
}

#[test]
fn a_limit_of_one_still_serialises() {
    common::run(2, || {
        let mut g: Group = Group::new();
        g.set_limit(1);
        assert!(g.try_go(|| {
            gonet::time::sleep(Duration::from_millis(50));
            Ok(())
        }));
        assert!(!g.try_go(|| Ok(())), "the one slot is taken");
        g.wait().unwrap();
    });
}

#[test]
#[should_panic(expected = "set_limit while 1 members")]
fn set_limit_while_members_run_panics_naming_them() {
    common::run(1, || {
        let mut g: Group = Group::new();
        g.go(|| {
            gonet::time::sleep(Duration::from_millis(100));
            Ok(())
        });
        g.set_limit(2);
    });
}

#[test]
fn with_context_writes_and_reads_without_a_rebind() {
    common::run(2, || {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let echo = gonet::go(move || {
            let (mut c, _) = ln.accept().unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            c.write_all(&b).unwrap();
        });
        let (ctx, _cancel) = context::with_timeout(&Context::background(), Duration::from_secs(10));
        let conn = TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 4];
        gonet::net::with_context(&ctx, &conn, |c| {
            c.write_all(b"ping")?;
            c.read_exact(&mut buf)
        })
        .unwrap();
        assert_eq!(&buf, b"ping");
        echo.join().unwrap();
    });
}
