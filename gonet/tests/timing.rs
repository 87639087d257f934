//! Deadlines and sleeps fire on time: each kind of timed wait is measured over many trials
//! and its *median* lateness must stay small. One slow scheduling on a loaded machine moves
//! a single trial, not the median; a timer that fires systematically late (by a second, or
//! by 50 ms) moves every trial and fails. Every trial must also not return early.

mod net_util;

use std::io::Read;
use std::time::{Duration, Instant};

use gonet::chan;
use gonet::net::UdpSocket;
use gonet::select;
use net_util::*;

const TRIALS: usize = 15;
/// The wait asked for in each trial.
const WAIT: Duration = Duration::from_millis(20);
/// The largest median lateness accepted (a systematic +50 ms delay fails).
const SLACK: Duration = Duration::from_millis(40);

/// Runs `trial` (which waits for `WAIT` and returns when its wait ended) `TRIALS` times and
/// checks that none ended early and that the median lateness is within `SLACK`.
fn on_time(what: &str, mut trial: impl FnMut() -> Instant) {
    let mut late = Vec::with_capacity(TRIALS);
    for i in 0..TRIALS {
        let start = Instant::now();
        let end = trial();
        let took = end - start;
        assert!(
            took + Duration::from_millis(1) >= WAIT,
            "{what}: trial {i} returned after {took:?}, before {WAIT:?}"
        );
        late.push(took.saturating_sub(WAIT));
    }
    late.sort();
    let median = late[TRIALS / 2];
    assert!(
        median <= SLACK,
        "{what}: median lateness {median:?} over {TRIALS} trials (all: {late:?})"
    );
}

fn all_waits(procs: usize) {
    run(procs, Duration::from_secs(60), || {
        on_time("time::sleep", || {
            gonet::time::sleep(WAIT);
            Instant::now()
        });
        on_time("time::after", || {
            gonet::time::after(WAIT).recv().unwrap();
            Instant::now()
        });
        on_time("Receiver::recv_timeout", || {
            let (_tx, rx) = chan::bounded::<()>(0);
            assert!(rx.recv_timeout(WAIT).is_err());
            Instant::now()
        });
        on_time("select! default(timeout)", || {
            let (_tx, rx) = chan::bounded::<()>(0);
            select! {
                recv(rx) -> _ => panic!("nothing was sent"),
                default(WAIT) => {}
            }
            Instant::now()
        });
        let (_c, s) = tcp_pair();
        on_time("TcpStream read deadline", || {
            s.set_read_deadline(Some(Instant::now() + WAIT)).unwrap();
            assert_timeout((&s).read(&mut [0u8; 8]));
            Instant::now()
        });
        s.set_read_deadline(None).unwrap();
        on_time("TcpStream read timeout", || {
            s.set_read_timeout(Some(WAIT)).unwrap();
            assert_timeout((&s).read(&mut [0u8; 8]));
            Instant::now()
        });
        s.set_read_timeout(None).unwrap();
        let ln = listener();
        on_time("TcpListener accept deadline", || {
            ln.set_deadline(Some(Instant::now() + WAIT)).unwrap();
            assert_timeout(ln.accept());
            Instant::now()
        });
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        on_time("UdpSocket recv_from deadline", || {
            u.set_read_deadline(Some(Instant::now() + WAIT)).unwrap();
            assert_timeout(u.recv_from(&mut [0u8; 8]));
            Instant::now()
        });
        // A deadline set while the reader is already parked.
        let (_c2, s2) = tcp_pair();
        let s2 = std::sync::Arc::new(s2);
        on_time("read deadline set by another goroutine", || {
            let r = s2.clone();
            let h = gonet::go(move || {
                let e = (&*r).read(&mut [0u8; 8]);
                (e, Instant::now())
            });
            gonet::time::sleep(Duration::from_millis(1));
            // The trial's WAIT counts from the start, 1 ms before this.
            s2.set_read_deadline(Some(Instant::now() + WAIT - Duration::from_millis(1))).unwrap();
            let (e, end) = h.join().unwrap();
            assert_timeout(e);
            s2.set_read_deadline(None).unwrap();
            end
        });
    });
}

#[test]
fn timed_waits_fire_on_time_one_worker() {
    all_waits(1);
}

#[test]
fn timed_waits_fire_on_time_two_workers() {
    all_waits(2);
}
