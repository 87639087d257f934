//! Runtime micro-benchmarks for the tokio peer (current_thread runtime, one thread):
//! spawn + join of an empty task, channel ping-pong, resident memory per parked task.
//!
//! Channel choices: tokio has no unbuffered (rendezvous) channel, so ping-pong uses two
//! `tokio::sync::mpsc::channel(1)` — the closest bounded equivalent; with one message in
//! flight per direction it never fills. Tokio has no multi-consumer channel either, so the
//! parked tasks each hold a `tokio::sync::broadcast` receiver of one shared channel and wait in
//! `recv()`; dropping the sender wakes them all with `Closed`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gonet_bench::{bytes_per, ns_per, report, vm_rss_bytes, RtSizes};
use tokio::sync::{broadcast, mpsc};

fn main() {
    let sizes = RtSizes::from_args();
    let rt =
        tokio::runtime::Builder::new_current_thread().build().expect("building the tokio runtime");
    rt.block_on(async move {
        spawn_join(sizes).await;
        pingpong(sizes).await;
        parked(sizes).await;
        burst(sizes).await;
    });
}

async fn spawn_join(sizes: RtSizes) {
    for _ in 0..sizes.warmup {
        tokio::spawn(async {}).await.unwrap();
    }
    let start = Instant::now();
    for _ in 0..sizes.spawn {
        tokio::spawn(async {}).await.unwrap();
    }
    report("spawn_join_ns", ns_per(start.elapsed(), sizes.spawn));
}

async fn pingpong(sizes: RtSizes) {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            if pong_tx.send(v).await.is_err() {
                break;
            }
        }
    });
    rounds(&ping_tx, &mut pong_rx, sizes.warmup as u64).await;
    let start = Instant::now();
    rounds(&ping_tx, &mut pong_rx, sizes.pingpong as u64).await;
    report("pingpong_ns", ns_per(start.elapsed(), sizes.pingpong));
    drop(ping_tx);
    echo.await.unwrap();
}

async fn rounds(ping_tx: &mpsc::Sender<u64>, pong_rx: &mut mpsc::Receiver<u64>, n: u64) {
    for i in 0..n {
        ping_tx.send(i).await.unwrap();
        assert_eq!(pong_rx.recv().await, Some(i));
    }
}

async fn parked(sizes: RtSizes) {
    let n = sizes.parked;
    let (tx, _) = broadcast::channel::<()>(1);
    let waiting = Arc::new(AtomicUsize::new(0));
    // The handle vector is allocated and touched before the first reading, so the figure
    // counts the tasks and their receivers, not the bookkeeping of this benchmark.
    let mut handles: Vec<Option<tokio::task::JoinHandle<()>>> = (0..n).map(|_| None).collect();
    let before = vm_rss_bytes();
    for slot in handles.iter_mut() {
        let mut rx = tx.subscribe();
        let waiting = waiting.clone();
        *slot = Some(tokio::spawn(async move {
            waiting.fetch_add(1, Ordering::Relaxed);
            let _ = rx.recv().await;
        }));
    }
    while waiting.load(Ordering::Relaxed) < n {
        tokio::task::yield_now().await;
    }
    tokio::task::yield_now().await;
    let after = vm_rss_bytes();
    report("parked_rss_bytes", bytes_per(before, after, n));
    drop(tx);
    for h in handles.into_iter().flatten() {
        h.await.unwrap();
    }
}

/// Spawn them all, only then join (Go's `wg.Add(1); go f()` ... `wg.Wait()`); three rounds.
async fn burst(sizes: RtSizes) {
    for round in 1..=3 {
        let start = Instant::now();
        let handles: Vec<_> = (0..sizes.burst).map(|_| tokio::spawn(async {})).collect();
        for h in handles {
            h.await.unwrap();
        }
        report(&format!("burst{round}_ns"), ns_per(start.elapsed(), sizes.burst));
    }
}
