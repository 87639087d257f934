//! `time::Timer`, `time::Ticker` and `time::after_func` with Go 1.23's semantics (stop and
//! reset leave no stale value and report whether the timer was pending), ticks dropped for a
//! slow receiver, and timers freed as soon as their channel is dropped.

mod common;
use common::{run, within};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gonet::chan::{self, TryRecvError};
use gonet::select;
use gonet::time::{after, after_func, Ticker, Timer};

const MS: Duration = Duration::from_millis(1);

#[test]
fn timer_fires_once() {
    let t0 = Instant::now();
    let t = Timer::new(20 * MS);
    let at = t.c().recv().unwrap();
    assert!(at >= t0 + 20 * MS);
    assert_eq!(t.c().recv_timeout(30 * MS), Err(chan::RecvTimeoutError::Timeout));
    // Fired and received: stop and reset report it was not pending.
    assert!(!t.stop());
    assert!(!t.reset(5 * MS));
    t.c().recv().unwrap();
}

#[test]
fn stop_before_firing_returns_true_and_nothing_arrives() {
    run(1, || {
        let t = Timer::new(20 * MS);
        assert!(t.stop());
        assert!(!t.stop(), "a second stop finds the timer stopped");
        assert!(t.c().recv_timeout(60 * MS).is_err());
    });
}

#[test]
fn fired_but_unreceived_timer_counts_as_pending_and_is_drained() {
    // Go 1.23: the channel is synchronous, so a value nobody received is discarded by stop
    // and reset, which report the timer as stopped.
    run(1, || {
        let t = Timer::new(MS);
        gonet::time::sleep(20 * MS); // it fired; its value waits in the channel
        assert!(t.stop());
        assert_eq!(t.c().try_recv(), Err(TryRecvError::Empty));
        let t = Timer::new(MS);
        gonet::time::sleep(20 * MS);
        assert!(t.reset(40 * MS));
        assert_eq!(t.c().try_recv(), Err(TryRecvError::Empty), "stale value after reset");
        let t0 = Instant::now();
        t.c().recv().unwrap();
        assert!(t0.elapsed() >= 30 * MS, "reset timer fired after {:?}", t0.elapsed());
    });
}

#[test]
fn reset_racing_the_firing_never_leaks_a_stale_value() {
    // The timer is created on a plain thread, so it fires on the timer thread while this
    // thread resets it: every interleaving of the race gets hit. Nobody receives, so each
    // reset must find the timer pending (armed, or fired and drained) and leave no value.
    within(Duration::from_secs(60), || {
        for i in 0..3000u32 {
            let t = Timer::new(Duration::from_micros((i % 7) as u64 * 20));
            let spin = Instant::now() + Duration::from_micros((i % 11) as u64 * 10);
            while Instant::now() < spin {}
            assert!(t.reset(Duration::from_secs(3600)), "iteration {i}: reset not pending");
            assert_eq!(t.c().try_recv(), Err(TryRecvError::Empty), "iteration {i}: stale value");
            assert!(t.stop(), "iteration {i}: the re-armed timer is pending");
        }
    });
}

#[test]
fn reset_racing_the_firing_on_goroutines() {
    // Across workers: the timer is armed on one worker's heap, the resets run on another.
    let stale = run(2, || {
        let (tx, rx) = chan::bounded::<Arc<Timer>>(0);
        let (done_tx, done_rx) = chan::bounded::<usize>(0);
        gonet::go(move || {
            let mut stale = 0;
            for t in rx.iter() {
                if !t.reset(Duration::from_secs(3600)) || t.c().try_recv().is_ok() {
                    stale += 1;
                }
                t.stop();
            }
            done_tx.send(stale).unwrap();
        });
        for i in 0..2000u64 {
            let t = Arc::new(Timer::new(Duration::from_micros(i % 5 * 10)));
            tx.send(t).unwrap();
        }
        drop(tx);
        done_rx.recv().unwrap()
    });
    assert_eq!(stale, 0);
}

#[test]
fn a_timer_in_select() {
    run(1, || {
        let t = Timer::new(10 * MS);
        let (_tx, rx) = chan::bounded::<()>(1);
        let fired = select! {
            recv(rx) -> _ => false,
            recv(t.c()) -> v => v.is_ok(),
        };
        assert!(fired);
    });
}

#[test]
fn after_func_runs_in_a_goroutine_and_stop_prevents_it() {
    run(2, || {
        let n = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<()>(1);
        let n2 = n.clone();
        let t = after_func(5 * MS, move || {
            n2.fetch_add(1, Ordering::SeqCst);
            // It runs on a goroutine: parking is allowed.
            gonet::time::sleep(MS);
            let _ = tx.try_send(());
        });
        rx.recv().unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(!t.stop(), "the function already started");
        // Reset runs it again.
        assert!(!t.reset(5 * MS));
        rx.recv().unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 2);

        let n3 = n.clone();
        let t = after_func(20 * MS, move || {
            n3.fetch_add(100, Ordering::SeqCst);
        });
        assert!(t.stop());
        gonet::time::sleep(50 * MS);
        assert_eq!(n.load(Ordering::SeqCst), 2, "a stopped after_func ran");
        // Its channel never receives.
        assert!(t.c().try_recv().is_err());
    });
}

#[test]
fn after_func_outside_a_runtime_and_dropped_timer_still_fires() {
    let (tx, rx) = chan::bounded::<u32>(1);
    drop(after_func(5 * MS, move || {
        let _ = tx.try_send(7);
    }));
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(7));
}

#[test]
fn ticker_ticks_and_a_slow_receiver_misses_ticks() {
    run(1, || {
        let tk = Ticker::new(10 * MS);
        let t0 = Instant::now();
        let first = tk.c().recv().unwrap();
        assert!(first >= t0 + 9 * MS);
        // A slow receiver: after 55 ms, one tick waits, not five.
        gonet::time::sleep(55 * MS);
        assert!(tk.c().try_recv().is_ok());
        assert_eq!(tk.c().try_recv(), Err(TryRecvError::Empty), "missed ticks were queued");
        // The ticks stay on the period's grid, not on the receiver's schedule.
        let a = tk.c().recv().unwrap();
        let b = tk.c().recv().unwrap();
        let gap = b - a;
        assert!(gap >= 5 * MS && gap <= 40 * MS, "gap between ticks {gap:?}");
    });
}

#[test]
fn ticker_period_is_kept_median_of_many() {
    let gaps = run(1, || {
        let tk = Ticker::new(5 * MS);
        let mut last = tk.c().recv().unwrap();
        let mut gaps = Vec::new();
        for _ in 0..21 {
            let t = tk.c().recv().unwrap();
            gaps.push(t - last);
            last = t;
        }
        gaps
    });
    let mut g = gaps.clone();
    g.sort();
    let med = g[g.len() / 2];
    assert!(med >= 4 * MS && med <= 8 * MS, "median tick gap {med:?} ({gaps:?})");
}

#[test]
fn ticker_stop_and_reset() {
    run(1, || {
        let tk = Ticker::new(5 * MS);
        gonet::time::sleep(20 * MS); // a tick waits
        tk.stop();
        assert_eq!(tk.c().try_recv(), Err(TryRecvError::Empty), "stop left a stale tick");
        assert!(tk.c().recv_timeout(30 * MS).is_err(), "a stopped ticker ticked");
        tk.reset(30 * MS);
        let t0 = Instant::now();
        tk.c().recv().unwrap();
        assert!(t0.elapsed() >= 25 * MS, "reset period not used: {:?}", t0.elapsed());
    });
}

#[test]
#[should_panic(expected = "non-positive interval")]
fn ticker_with_zero_period_panics_like_go() {
    let _ = Ticker::new(Duration::ZERO);
}

/// Timer-heap entries summed over the workers, as of their last scheduling round.
fn heap_len() -> u64 {
    gonet::yield_now(); // a scheduling round refreshes the figure
    gonet::runtime::stats().unwrap().workers.iter().map(|w| w.timers).sum()
}

#[test]
fn dropped_after_channels_free_their_timers() {
    // A loop of selects whose `recv(after(60s))` arm never wins: each timer is dropped with
    // its channel. Without freeing, the heap would hold 1M entries (~250 MB) for a minute.
    let max = run(1, || {
        let (tx, rx) = chan::bounded::<u32>(1);
        let mut max = 0;
        for i in 0..1_000_000u32 {
            tx.send(i).unwrap();
            select! {
                recv(rx) -> v => assert_eq!(v, Ok(i)),
                recv(after(Duration::from_secs(60))) -> _ => unreachable!(),
            }
            if i % 10_000 == 0 {
                max = max.max(heap_len());
            }
        }
        max.max(heap_len())
    });
    assert!(max <= 4096, "timer heap grew to {max} entries");
}

#[test]
fn dropped_timers_and_tickers_free_their_entries() {
    let max = run(1, || {
        let mut max = 0;
        for i in 0..100_000u32 {
            let t = Timer::new(Duration::from_secs(60));
            t.reset(Duration::from_secs(120));
            drop(t);
            drop(Ticker::new(Duration::from_secs(60)));
            if i % 5_000 == 0 {
                max = max.max(heap_len());
            }
        }
        max.max(heap_len())
    });
    assert!(max <= 4096, "timer heap grew to {max} entries");
}

#[test]
fn a_kept_channel_clone_keeps_the_timer() {
    // Dropping the Timer but keeping its channel does not free it: the value still comes.
    let t = Timer::new(5 * MS);
    let c = t.c().clone();
    drop(t);
    assert!(c.recv_timeout(Duration::from_secs(10)).is_ok());
    let rx = after(5 * MS);
    let rx2 = rx.clone();
    drop(rx);
    assert!(rx2.recv_timeout(Duration::from_secs(10)).is_ok());
    let _ = thread::current();
}

/// Timers with the same deadline fire in the order they were set (the heap breaks ties by a
/// sequence number): 200 goroutines sleeping until one instant wake in spawn order.
#[test]
fn equal_deadlines_fire_in_the_order_they_were_set() {
    let order = gonet::Builder::new().procs(1).build().unwrap().run(|| {
        let at = Instant::now() + Duration::from_millis(30);
        let woke = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hs: Vec<_> = (0..200)
            .map(|i| {
                let woke = woke.clone();
                gonet::go(move || {
                    gonet::time::sleep_until(at);
                    woke.lock().unwrap().push(i);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let v = woke.lock().unwrap().clone();
        v
    });
    assert_eq!(order, (0..200).collect::<Vec<_>>());
}
