//! An idle runtime sleeps: with every goroutine parked its workers block in `epoll_wait`
//! instead of spinning, also after many wake-ups from other threads. (One test per process, so no other test's CPU time is counted.)

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::process_cpu;

#[test]
fn idle_runtime_uses_almost_no_cpu() {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let used = gonet::Builder::new().procs(2).build().unwrap().run(|| {
            // First wake the sleeping worker through its eventfd, many times: a plain thread
            // hands values, a few milliseconds apart, to this goroutine parked on a channel.
            // (A wake-up the poller failed to drain would keep `epoll_wait` returning.)
            let (tx, rx) = gonet::chan::unbounded();
            let sender = thread::spawn(move || {
                for i in 0..50 {
                    thread::sleep(Duration::from_millis(2));
                    tx.send(i).unwrap();
                }
            });
            assert_eq!(rx.iter().count(), 50);
            sender.join().unwrap();
            let remote: u64 =
                gonet::runtime::stats().unwrap().workers.iter().map(|w| w.remote_wakeups).sum();
            assert!(remote >= 25, "only {remote} wake-ups came through the inbox");
            // Let start-up settle, then measure a sleep of the only goroutine.
            gonet::time::sleep(Duration::from_millis(20));
            let before = process_cpu();
            gonet::time::sleep(Duration::from_millis(500));
            process_cpu() - before
        });
        let _ = tx.send(used);
    });
    let used = rx.recv_timeout(Duration::from_secs(60)).expect("runtime did not finish");
    // Two spinning workers would burn about 1000 ms here.
    assert!(used < Duration::from_millis(50), "idle runtime used {used:?} of CPU in 500 ms");
}
