//! `gonet::block_on`: the future's waker parks and resumes the goroutine (or thread), from any
//! thread, without losing a wake that comes before the park, and stays harmless after return.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use common::{run, within};

/// Pending until `open` is set; hands each waker it sees to `wakers` and counts its polls.
struct Gate {
    open: Arc<std::sync::atomic::AtomicBool>,
    wakers: mpsc::Sender<Waker>,
    polls: Arc<AtomicUsize>,
}

impl Future for Gate {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.open.load(Ordering::SeqCst) {
            return Poll::Ready(n);
        }
        let _ = self.wakers.send(cx.waker().clone());
        Poll::Pending
    }
}

fn gate() -> (Gate, Arc<std::sync::atomic::AtomicBool>, mpsc::Receiver<Waker>, Arc<AtomicUsize>) {
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    (Gate { open: open.clone(), wakers: tx, polls: polls.clone() }, open, rx, polls)
}

#[test]
fn a_goroutine_parks_until_a_std_thread_wakes_its_future() {
    run(1, || {
        let (fut, open, wakers, _) = gate();
        // The waking thread waits for a message that only a second goroutine sends: with one
        // worker, that goroutine runs only if block_on parked the first one.
        let (ran_tx, ran_rx) = mpsc::channel::<()>();
        let t = thread::spawn(move || {
            let w = wakers.recv().unwrap();
            ran_rx.recv().unwrap();
            open.store(true, Ordering::SeqCst);
            w.wake();
        });
        gonet::go(move || ran_tx.send(()).unwrap());
        assert_eq!(gonet::block_on(fut), 2);
        t.join().unwrap();
    });
}

#[test]
fn a_plain_thread_blocks_until_its_future_is_woken() {
    within(Duration::from_secs(60), || {
        let (fut, open, wakers, _) = gate();
        let t = thread::spawn(move || {
            let w = wakers.recv().unwrap();
            thread::sleep(Duration::from_millis(10));
            open.store(true, Ordering::SeqCst);
            w.wake();
        });
        assert_eq!(gonet::block_on(fut), 2);
        t.join().unwrap();
    });
}

/// Wakes itself during its first poll, before `block_on` parks: the wake must not be lost.
struct SelfWake(usize);

impl Future for SelfWake {
    type Output = usize;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.0 += 1;
        if self.0 == 3 {
            return Poll::Ready(self.0);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_wake_before_the_park_is_not_lost() {
    run(1, || assert_eq!(gonet::block_on(SelfWake(0)), 3));
    within(Duration::from_secs(60), || assert_eq!(gonet::block_on(SelfWake(0)), 3));
}

#[test]
fn a_waker_kept_after_block_on_returned_has_no_effect() {
    run(2, || {
        // A waker escapes the first call.
        let (fut, open, wakers, _) = gate();
        let kept = gonet::go(move || {
            let h = thread::spawn(move || {
                let w = wakers.recv().unwrap();
                open.store(true, Ordering::SeqCst);
                w.wake_by_ref();
                w
            });
            gonet::block_on(fut);
            h.join().unwrap()
        })
        .join()
        .unwrap();
        // The goroutine that ran block_on has finished. A second block_on (on this goroutine)
        // must not be polled by the old waker: its future stays pending until its own waker.
        let (fut2, open2, wakers2, polls2) = gate();
        let t = thread::spawn(move || {
            let w2 = wakers2.recv().unwrap();
            for _ in 0..100 {
                kept.wake_by_ref();
            }
            thread::sleep(Duration::from_millis(20));
            let polls = polls2.load(Ordering::SeqCst);
            open2.store(true, Ordering::SeqCst);
            w2.wake();
            polls
        });
        gonet::block_on(fut2);
        assert_eq!(t.join().unwrap(), 1, "the old waker re-polled a later block_on");
    });
}

#[test]
fn ten_thousand_goroutines_in_block_on() {
    const N: usize = 10_000;
    run(2, || {
        let (tx, rx) = mpsc::channel::<(Waker, Arc<Mutex<bool>>)>();
        let waker_thread = thread::spawn(move || {
            for (w, open) in rx.iter().take(N) {
                *open.lock().unwrap() = true;
                w.wake();
            }
        });
        let done = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let tx = tx.clone();
                let done = done.clone();
                gonet::go(move || {
                    let open = Arc::new(Mutex::new(false));
                    let mut sent = false;
                    gonet::block_on(std::future::poll_fn(|cx| {
                        if *open.lock().unwrap() {
                            return Poll::Ready(());
                        }
                        if !sent {
                            sent = true;
                            tx.send((cx.waker().clone(), open.clone())).unwrap();
                        }
                        Poll::Pending
                    }));
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        waker_thread.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), N);
    });
}

#[test]
fn delay_completes_at_its_deadline_and_reset_moves_it() {
    run(1, || {
        let t = std::time::Instant::now();
        gonet::block_on(gonet::time::delay(Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(20));

        // Armed for 10 ms, then moved to 60 ms after one pending poll: the early timer's wake
        // finds the deadline not passed and the delay pending again.
        let t = std::time::Instant::now();
        let mut d = gonet::time::delay(Duration::from_millis(10));
        let mut first = true;
        gonet::block_on(std::future::poll_fn(|cx| {
            let r = Pin::new(&mut d).poll(cx);
            if first {
                first = false;
                assert!(r.is_pending());
                d.reset(t + Duration::from_millis(60));
            }
            r
        }));
        assert!(t.elapsed() >= Duration::from_millis(60));
        assert!(d.is_elapsed());

        // Polled again and again before its deadline (its task woken by others): an armed
        // delay stays pending until its timer fired.
        let t = std::time::Instant::now();
        let mut d = gonet::time::delay(Duration::from_millis(20));
        let mut polls = 0u32;
        gonet::block_on(std::future::poll_fn(|cx| {
            polls += 1;
            let r = Pin::new(&mut d).poll(cx);
            if r.is_pending() && polls < 1000 {
                cx.waker().wake_by_ref();
                gonet::yield_now();
            }
            r
        }));
        assert!(t.elapsed() >= Duration::from_millis(20), "ready after {polls} polls");
    });
}

#[test]
fn a_thousand_goroutines_wait_on_delays() {
    run(2, || {
        let hs: Vec<_> = (0..1000u64)
            .map(|i| {
                gonet::go(move || {
                    let at = std::time::Instant::now() + Duration::from_millis(i % 50);
                    gonet::block_on(gonet::time::delay_until(at));
                    assert!(std::time::Instant::now() >= at);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}
