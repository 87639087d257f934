//! Goroutine stacks at scale: slab stacks (Linux ≥ 6.13) do not cost a memory mapping each,
//! a burst's stacks are reused by the next burst, and their memory goes back to the kernel
//! once the burst is over.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::chan;

/// Whether this kernel has guard regions (`MADV_GUARD_INSTALL`, 102), as gonet probes it.
fn kernel_has_guard_regions() -> bool {
    // SAFETY: a scratch mapping, advised and unmapped here.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let ok = libc::madvise(p, 4096, 102) == 0;
        libc::munmap(p, 8192);
        ok
    }
}

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn parking_100k_goroutines_adds_few_mappings() {
    if !kernel_has_guard_regions() || std::env::var("GONET_STACK_SLABS").is_ok_and(|v| v == "0") {
        eprintln!("skipped: this kernel has no guard regions (Linux < 6.13)");
        return;
    }
    const N: usize = 100_000;
    let (before, during) = common::run(1, || {
        let before = maps_lines();
        let (tx, rx) = chan::bounded::<()>(0);
        let waiting = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let (rx, waiting) = (rx.clone(), waiting.clone());
                gonet::go(move || {
                    waiting.fetch_add(1, Ordering::Relaxed);
                    let _ = rx.recv();
                })
            })
            .collect();
        while waiting.load(Ordering::Relaxed) < N {
            gonet::yield_now();
        }
        let during = maps_lines();
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
        (before, during)
    });
    assert!(
        during < before + 1000,
        "100k parked goroutines added {} lines to /proc/self/maps ({before} -> {during})",
        during - before
    );
}

/// A goroutine that makes 64 KiB of its stack resident.
fn deep() {
    let buf = std::hint::black_box([7u8; 64 * 1024]);
    std::hint::black_box(&buf);
}

/// `n` goroutines alive at once, each with 64 KiB of its stack resident (goroutines that
/// have not run yet hold no stack, so each parks until all have run); returns the resident
/// set size while they all wait, then lets them finish and joins them.
fn burst(n: usize) -> u64 {
    let (tx, rx) = gonet::chan::unbounded::<()>();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (rx, ran) = (rx.clone(), ran.clone());
            gonet::go(move || {
                deep();
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = rx.recv(); // until `tx` is dropped
            })
        })
        .collect();
    while ran.load(std::sync::atomic::Ordering::SeqCst) < n {
        gonet::time::sleep(Duration::from_millis(5)); // every goroutine runs to its park
    }
    let rss = rss_bytes();
    drop(tx);
    for h in hs {
        h.join().unwrap();
    }
    rss
}

#[test]
fn burst_memory_is_given_back() {
    const N: usize = 5_000;
    common::within(Duration::from_secs(60), || {
        gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let base = rss_bytes();
            let peak = burst(N);
            assert!(
                peak > base + (N as u64 * 16 * 1024),
                "the burst should have made its stacks resident: {base} -> {peak}"
            );
            // A second burst reuses the pooled stacks: no new memory.
            let again = burst(N);
            assert!(
                again < peak + (N as u64 * 8 * 1024),
                "the second burst should reuse the first one's stacks: {peak} -> {again}"
            );
            // Once the pool has sat unused for a trim period, the worker gives it back.
            let t0 = Instant::now();
            let mut now = again;
            while t0.elapsed() < Duration::from_secs(10) {
                gonet::time::sleep(Duration::from_millis(100));
                now = rss_bytes();
                if now < base + (again - base) / 4 {
                    return;
                }
            }
            panic!(
                "stack memory was not given back: base {base}, after the burst {again}, now {now}"
            );
        })
    });
}

/// Goroutines spawned in a burst take their stacks only when they run, so a burst of short
/// goroutines reuses a few hot stacks: 100k of them (spawned before any is joined, as Go
/// programs do with a WaitGroup) leave far less than one stack page each resident.
#[test]
fn a_burst_of_short_goroutines_reuses_a_few_stacks() {
    const N: usize = 100_000;
    common::within(Duration::from_secs(60), || {
        gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let base = rss_bytes();
            let hs: Vec<_> =
                (0..N).map(|i| gonet::go(move || std::hint::black_box(i) * 2)).collect();
            let sum: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, N * (N - 1));
            let grown = rss_bytes().saturating_sub(base);
            // One stack page per goroutine would be 400 MB.
            assert!(grown < (N as u64) * 1024, "a burst of {N} grew RSS by {grown} bytes");
        })
    });
}
