//! Runtime micro-benchmarks for gonet on one worker (`Builder::new().procs(1)`): spawn + join
//! of an empty goroutine, ping-pong over unbuffered channels (`chan::bounded(0)`), resident
//! memory per parked goroutine (all blocked in `recv()` on one shared channel; dropping the
//! sender wakes them all), and bursts (spawn 100k, then join them all; three rounds). Stacks are gonet's default size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gonet::chan;
use gonet_bench::{bytes_per, ns_per, report, vm_rss_bytes, RtSizes};

fn main() -> std::io::Result<()> {
    let sizes = RtSizes::from_args();
    let rt = gonet::Builder::new().procs(1).build()?;
    rt.run(move || {
        spawn_join(sizes);
        pingpong(sizes);
        parked(sizes);
        burst(sizes);
    });
    Ok(())
}

fn spawn_join(sizes: RtSizes) {
    for _ in 0..sizes.warmup {
        gonet::go(|| ()).join().unwrap();
    }
    let start = Instant::now();
    for _ in 0..sizes.spawn {
        gonet::go(|| ()).join().unwrap();
    }
    report("spawn_join_ns", ns_per(start.elapsed(), sizes.spawn));
}

fn pingpong(sizes: RtSizes) {
    let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
    let echo = gonet::go(move || {
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
    let (tx, rx) = chan::bounded::<()>(0);
    let waiting = Arc::new(AtomicUsize::new(0));
    // Allocated and touched before the first reading: the figure counts goroutines only.
    let mut handles: Vec<Option<gonet::JoinHandle<()>>> = (0..n).map(|_| None).collect();
    let before = vm_rss_bytes();
    for slot in handles.iter_mut() {
        let rx = rx.clone();
        let waiting = waiting.clone();
        *slot = Some(gonet::go(move || {
            waiting.fetch_add(1, Ordering::Relaxed);
            let _ = rx.recv();
        }));
    }
    while waiting.load(Ordering::Relaxed) < n {
        gonet::yield_now();
    }
    gonet::yield_now();
    let after = vm_rss_bytes();
    report("parked_rss_bytes", bytes_per(before, after, n));
    drop(tx);
    drop(rx);
    for h in handles.into_iter().flatten() {
        h.join().unwrap();
    }
}

/// Go's `for .. { wg.Add(1); go f() }; wg.Wait()`: spawn them all, only then join; three
/// rounds, each reported per goroutine.
fn burst(sizes: RtSizes) {
    for round in 1..=3 {
        let start = Instant::now();
        let handles: Vec<_> = (0..sizes.burst).map(|_| gonet::go(|| ())).collect();
        for h in handles {
            h.join().unwrap();
        }
        report(&format!("burst{round}_ns"), ns_per(start.elapsed(), sizes.burst));
    }
}
