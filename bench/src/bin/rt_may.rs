//! Runtime micro-benchmarks for the may peer (one worker, `may::config().set_workers(1)`):
//! spawn + join of an empty coroutine, channel ping-pong, resident memory per parked coroutine.
//!
//! Channel choices: may has no rendezvous channel; ping-pong uses two `may::sync::mpsc`
//! channels (with one message in flight per direction, capacity never matters). The parked
//! coroutines all wait in `recv()` on one shared `may::sync::mpmc` channel; dropping the
//! sender wakes them all. Stacks are may's default size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet_bench::{bytes_per, ns_per, report, vm_rss_bytes, RtSizes};
use may::coroutine::JoinHandle;
use may::sync::{mpmc, mpsc};

/// Spawns a may coroutine.
fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: may marks spawning unsafe because a coroutine may migrate between worker
    // threads (breaking thread-locals) and must not block its worker with a plain OS
    // blocking call. The closures spawned here touch no thread-local state and block only
    // through may's own channels and join, which park the coroutine.
    unsafe { may::coroutine::spawn(f) }
}

fn main() {
    let sizes = RtSizes::from_args();
    may::config().set_workers(1);
    // Leave CPU placement to `taskset`: may otherwise pins worker i to core i.
    may::config().set_worker_pin(false);
    spawn(move || {
        spawn_join(sizes);
        pingpong(sizes);
        parked(sizes);
        burst(sizes);
    })
    .join()
    .unwrap();
}

fn spawn_join(sizes: RtSizes) {
    for _ in 0..sizes.warmup {
        spawn(|| ()).join().unwrap();
    }
    let start = Instant::now();
    for _ in 0..sizes.spawn {
        spawn(|| ()).join().unwrap();
    }
    report("spawn_join_ns", ns_per(start.elapsed(), sizes.spawn));
}

fn pingpong(sizes: RtSizes) {
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();
    let echo = spawn(move || {
        while let Ok(v) = ping_rx.recv() {
            if pong_tx.send(v).is_err() {
                break;
            }
        }
    });
    let round = |i: u64| {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    };
    for i in 0..sizes.warmup as u64 {
        round(i);
    }
    let start = Instant::now();
    for i in 0..sizes.pingpong as u64 {
        round(i);
    }
    report("pingpong_ns", ns_per(start.elapsed(), sizes.pingpong));
    drop(ping_tx);
    echo.join().unwrap();
}

fn parked(sizes: RtSizes) {
    let n = sizes.parked;
    let (tx, rx) = mpmc::channel::<()>();
    let waiting = Arc::new(AtomicUsize::new(0));
    // Allocated and touched before the first reading: the figure counts coroutines only.
    let mut handles: Vec<Option<JoinHandle<()>>> = (0..n).map(|_| None).collect();
    let before = vm_rss_bytes();
    for slot in handles.iter_mut() {
        let rx = rx.clone();
        let waiting = waiting.clone();
        *slot = Some(spawn(move || {
            waiting.fetch_add(1, Ordering::Relaxed);
            let _ = rx.recv();
        }));
    }
    // may runs newly spawned coroutines only once its local queue is empty, and
    // `yield_now` requeues locally, so the waiting loop sleeps instead of yielding.
    while waiting.load(Ordering::Relaxed) < n {
        may::coroutine::sleep(Duration::from_millis(1));
    }
    may::coroutine::sleep(Duration::from_millis(1));
    let after = vm_rss_bytes();
    report("parked_rss_bytes", bytes_per(before, after, n));
    drop(tx);
    drop(rx);
    for h in handles.into_iter().flatten() {
        h.join().unwrap();
    }
}

/// Spawn them all, only then join (Go's `wg.Add(1); go f()` ... `wg.Wait()`); three rounds.
fn burst(sizes: RtSizes) {
    for round in 1..=3 {
        let start = Instant::now();
        let handles: Vec<_> = (0..sizes.burst).map(|_| spawn(|| ())).collect();
        for h in handles {
            h.join().unwrap();
        }
        report(&format!("burst{round}_ns"), ns_per(start.elapsed(), sizes.burst));
    }
}
