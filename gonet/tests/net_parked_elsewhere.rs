//! Readiness that arrives while the reader is parked on something else (a timer, a channel)
//! is kept for its next read. After a short read the fd layer waits for the next edge before
//! trying `recv` again; if the poller dropped the edge that came while nobody waited on the
//! socket (the `NIL → READY` store of `netpoll/state.rs`), that read would wait forever. A
//! read deadline turns such a loss into a clear failure instead of a hang.

mod net_util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use gonet::chan;
use gonet::time::sleep;
use net_util::*;

const ROUNDS: u32 = 200;

/// Reads one message of `want` bytes (short reads: the buffer is larger), naming the round
/// if the readiness was lost.
fn read_message(s: &gonet::net::TcpStream, round: u32, want: usize, how: &str) {
    s.set_read_deadline(Some(Instant::now() + Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while got < want {
        match (&*s).read(&mut buf[got..]) {
            Ok(0) => panic!("round {round}: unexpected EOF"),
            Ok(n) => got += n,
            Err(e) => panic!(
                "round {round}: reading after being parked on {how}: {e} (readiness that \
                 arrived meanwhile was lost)"
            ),
        }
    }
    assert_eq!(got, want, "round {round}");
    assert!(buf[..got].iter().all(|&b| b == round as u8), "round {round}: wrong bytes");
}

/// The reader drains the socket, then sleeps on a timer while the writer's data arrives.
fn parked_on_a_timer(procs: usize) {
    run(procs, LIMIT, || {
        let (c, s) = tcp_pair();
        let (go_tx, go_rx) = chan::bounded::<u32>(0);
        let w = gonet::go(move || {
            let mut c = c;
            for round in 0..ROUNDS {
                go_rx.recv().unwrap();
                c.write_all(&[round as u8; 100]).unwrap();
            }
        });
        for round in 0..ROUNDS {
            if round > 0 {
                read_message(&s, round - 1, 100, "a timer");
            }
            go_tx.send(round).unwrap();
            // The data arrives while this goroutine is parked on its timer.
            sleep(Duration::from_millis(3));
        }
        read_message(&s, ROUNDS - 1, 100, "a timer");
        w.join().unwrap();
    });
}

/// The reader drains the socket, then waits on a channel that the writer signals only after
/// its data has had time to reach the poller.
fn parked_on_a_channel(procs: usize) {
    run(procs, LIMIT, || {
        let (c, s) = tcp_pair();
        let (go_tx, go_rx) = chan::bounded::<u32>(0);
        let (done_tx, done_rx) = chan::bounded::<u32>(0);
        let w = gonet::go(move || {
            let mut c = c;
            for round in 0..ROUNDS {
                go_rx.recv().unwrap();
                c.write_all(&[round as u8; 100]).unwrap();
                sleep(Duration::from_millis(2));
                done_tx.send(round).unwrap();
            }
        });
        for round in 0..ROUNDS {
            go_tx.send(round).unwrap();
            assert_eq!(done_rx.recv().unwrap(), round);
            read_message(&s, round, 100, "a channel");
        }
        w.join().unwrap();
    });
}

#[test]
fn readiness_kept_while_parked_on_a_timer_one_worker() {
    parked_on_a_timer(1);
}

#[test]
fn readiness_kept_while_parked_on_a_timer_two_workers() {
    parked_on_a_timer(2);
}

#[test]
fn readiness_kept_while_parked_on_a_channel_one_worker() {
    parked_on_a_channel(1);
}

#[test]
fn readiness_kept_while_parked_on_a_channel_two_workers() {
    parked_on_a_channel(2);
}

/// The peer's last data and its FIN arrive in one edge while the reader is parked: the
/// short read that takes the data leaves the FIN behind with no edge to follow, so the
/// poller must remember the hang-up (`EPOLLRDHUP`) and the next read must try `recv` (and
/// see the end of the stream) instead of waiting for an edge. A read deadline turns a
/// forgotten hang-up into a clear failure instead of a hang.
fn data_then_eof(procs: usize) {
    run(procs, LIMIT, || {
        for round in 0..ROUNDS {
            let (c, s) = tcp_pair();
            c.set_read_deadline(Some(Instant::now() + Duration::from_secs(5))).unwrap();
            let reader = gonet::go(move || {
                let mut buf = [0u8; 1024];
                let mut got = Vec::new();
                loop {
                    match (&c).read(&mut buf) {
                        Ok(0) => return Ok(got),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) => return Err(format!("round {round}: read after {got:?}: {e}")),
                    }
                }
            });
            sleep(Duration::from_micros(200)); // the reader parks first
            (&s).write_all(b"last words").unwrap();
            drop(s);
            assert_eq!(reader.join().unwrap().unwrap(), b"last words");
        }
    });
}

#[test]
fn data_then_eof_one_worker() {
    data_then_eof(1);
}

#[test]
fn data_then_eof_two_workers() {
    data_then_eof(2);
}
