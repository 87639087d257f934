//! An idle runtime sleeps: with every goroutine parked its workers block in `epoll_wait`
//! instead of spinning. (One test per process, so no other test's CPU time is counted.)

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// CPU time (user + system) used by this process so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn idle_runtime_uses_almost_no_cpu() {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let used = gonet::Builder::new().procs(2).build().unwrap().run(|| {
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
