//! `gonet::time::Delay` reuses the shared state of dropped delays: making and dropping an
//! armed delay per request (hyper's header-read timeout) allocates nothing in steady state,
//! and a reused state never lets an old arm's timer complete or wake the new delay.

mod alloc_count;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use alloc_count::allocs;
use gonet::time::delay;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

/// Polls `d` once: a delay whose deadline is ahead arms its timer and is pending.
fn arm(d: &mut gonet::time::Delay) {
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(Pin::new(d).poll(&mut cx), Poll::Pending);
}

#[test]
fn an_armed_delay_per_request_allocates_nothing_in_steady_state() {
    std::thread::spawn(|| {
        // Warm-up: the spare list fills and the timer heap reaches its working size.
        for _ in 0..2000 {
            arm(&mut delay(Duration::from_secs(30)));
        }
        let before = allocs();
        let rounds = 2000;
        for _ in 0..rounds {
            arm(&mut delay(Duration::from_secs(30)));
        }
        // What is left is the timer heap's growth, amortised (its dead entries are swept
        // when it doubles); one state per delay would be `rounds` allocations.
        let n = allocs() - before;
        assert!(n < rounds / 50, "{n} allocations for {rounds} armed and dropped delays");
    })
    .join()
    .unwrap();
}

#[test]
fn a_reused_state_keeps_only_its_own_deadline() {
    std::thread::spawn(|| {
        // An early arm dropped: its timer fires into the state the next delay takes, which
        // must not complete before its own, later deadline.
        arm(&mut delay(Duration::from_millis(10)));
        let t = Instant::now();
        gonet::block_on(delay(Duration::from_millis(150)));
        assert!(t.elapsed() >= Duration::from_millis(150), "completed at {:?}", t.elapsed());
        // A late arm dropped: the next delay completes at its own, earlier deadline.
        arm(&mut delay(Duration::from_secs(60)));
        let t = Instant::now();
        gonet::block_on(delay(Duration::from_millis(20)));
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(20) && e < Duration::from_secs(30), "took {e:?}");
    })
    .join()
    .unwrap();
}
