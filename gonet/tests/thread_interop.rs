//! Goroutines and plain OS threads talking over the same channels: blocking on either side
//! parks the goroutine or blocks the thread, and each wakes the other.

mod common;
use common::{run, within};

use std::thread;
use std::time::{Duration, Instant};

use gonet::chan::{self, RecvTimeoutError};

#[test]
fn goroutine_and_thread_ping_pong_both_ways() {
    run(2, || {
        let (to_thread, from_g) = chan::bounded::<u64>(0);
        let (to_g, from_thread) = chan::bounded::<u64>(0);
        let t = thread::spawn(move || {
            assert!(thread::current().name().is_none_or(|n| !n.starts_with("gonet-")));
            for v in &from_g {
                to_g.send(v * 2).unwrap();
            }
        });
        for i in 0..2000 {
            to_thread.send(i).unwrap();
            assert_eq!(from_thread.recv(), Ok(i * 2));
        }
        drop(to_thread);
        assert!(from_thread.recv().is_err(), "the thread's sender is gone after it exits");
        t.join().unwrap();
    });
}

#[test]
fn thread_blocked_on_recv_is_woken_by_a_goroutine() {
    let (tx, rx) = chan::bounded::<&'static str>(0);
    let t = thread::spawn(move || rx.recv());
    run(1, move || {
        gonet::time::sleep(Duration::from_millis(10));
        tx.send("from a goroutine").unwrap();
    });
    assert_eq!(t.join().unwrap(), Ok("from a goroutine"));
}

#[test]
fn goroutine_blocked_on_recv_is_woken_by_a_thread() {
    run(1, || {
        let (tx, rx) = chan::unbounded::<u32>();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            tx.send(11).unwrap();
        });
        // Other goroutines keep running on the single worker while this one waits.
        let other = gonet::go(|| (0..100).map(|i| i * 2).sum::<u32>());
        assert_eq!(rx.recv(), Ok(11));
        assert_eq!(other.join().unwrap(), 9900);
        t.join().unwrap();
    });
}

#[test]
fn timeouts_work_on_plain_threads() {
    within(Duration::from_secs(30), || {
        let (tx, rx) = chan::bounded::<u8>(0);
        let t = Instant::now();
        assert_eq!(rx.recv_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
        assert!(t.elapsed() >= Duration::from_millis(20));
        let sender = thread::spawn(move || tx.send_timeout(1, Duration::from_secs(20)));
        assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(1));
        assert_eq!(sender.join().unwrap(), Ok(()));
        // `after` delivers the instant it fired: not before the 5 ms, not after it was received.
        let armed = Instant::now();
        let at = gonet::time::after(Duration::from_millis(5)).recv().unwrap();
        assert!(at >= armed + Duration::from_millis(5), "after(5ms) sent {:?}", at - armed);
        assert!(at <= Instant::now());
        assert!(at >= t);
    });
}

#[test]
fn mixed_producers_and_consumers_receive_every_value_once() {
    let counts = run(2, || {
        const PER: usize = 10_000;
        let (tx, rx) = chan::bounded::<usize>(8);
        let (out_tx, out_rx) = chan::unbounded::<usize>();
        // Two producers and two consumers are goroutines, the others plain threads.
        let mut threads = Vec::new();
        let mut gs = Vec::new();
        for p in 0..4 {
            let tx = tx.clone();
            let produce = move || {
                for i in 0..PER {
                    tx.send(p * PER + i).unwrap();
                }
            };
            if p % 2 == 0 {
                threads.push(thread::spawn(produce));
            } else {
                gs.push(gonet::go(produce));
            }
        }
        for c in 0..4 {
            let (rx, out) = (rx.clone(), out_tx.clone());
            let consume = move || {
                for v in &rx {
                    out.send(v).unwrap();
                }
            };
            if c % 2 == 0 {
                threads.push(thread::spawn(consume));
            } else {
                gs.push(gonet::go(consume));
            }
        }
        drop((tx, rx, out_tx));
        for g in gs {
            g.join().unwrap();
        }
        // Joining a thread blocks: do it off the workers.
        gonet::blocking(move || threads.into_iter().try_for_each(|t| t.join())).unwrap();
        let mut counts = vec![0u8; 4 * PER];
        for v in out_rx.try_iter() {
            counts[v] += 1;
        }
        counts
    });
    assert!(counts.iter().all(|&c| c == 1), "a value was lost or duplicated");
}

/// Outside a runtime timers run on one timer thread: a timer set after a later one still
/// fires at its own deadline, not the later one's.
#[test]
fn an_earlier_timer_set_after_a_later_one_fires_first_off_the_runtime() {
    let _far = gonet::time::after(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(10)); // the timer thread sleeps toward 30 s
    let t = Instant::now();
    gonet::time::after(Duration::from_millis(50)).recv().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "fired after {:?}", t.elapsed());
}
