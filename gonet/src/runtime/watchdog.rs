//! The stall watchdog: one thread per runtime that reports (through the `log` crate) a
//! goroutine holding its worker for more than [`STALL`] without parking or yielding — the
//! goroutine-model equivalent of blocking the event loop. Each stall is reported once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::worker::RtShared;

/// How long a goroutine may hold a worker before it is reported.
pub const STALL: Duration = Duration::from_millis(100);
const TICK: Duration = Duration::from_millis(20);

/// Stops the watchdog thread when dropped.
pub(crate) struct Watchdog {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

pub(crate) fn start(rt: Arc<RtShared>) -> Watchdog {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let s = stop.clone();
    let thread =
        thread::Builder::new().name("gonet-watchdog".into()).spawn(move || watch(&rt, &s)).ok();
    Watchdog { stop, thread }
}

fn watch(rt: &RtShared, stop: &(Mutex<bool>, Condvar)) {
    // Per worker: the run last sampled — (goroutine, switch count) — when it was first seen,
    // and whether it was reported. A run is the same run while both stay unchanged.
    let mut seen = vec![((0u64, 0u64), Instant::now(), false); rt.workers.len()];
    let mut stopped = stop.0.lock().unwrap_or_else(|e| e.into_inner());
    while !*stopped {
        stopped = stop.1.wait_timeout(stopped, TICK).unwrap_or_else(|e| e.into_inner()).0;
        let now = Instant::now();
        for (w, (run, since, reported)) in rt.workers.iter().zip(seen.iter_mut()) {
            let cur = (w.running.load(Ordering::Relaxed), w.stats.switches.get());
            if cur != *run {
                (*run, *since, *reported) = (cur, now, false);
                continue;
            }
            let held = now - *since;
            if cur.0 != 0 && !*reported && held > STALL {
                *reported = true;
                log::warn!(
                    "gonet: goroutine {} has held worker {} for {held:?} without parking or \
                     yielding; move blocking work to gonet::blocking or call gonet::yield_now",
                    cur.0,
                    w.index
                );
            }
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.1.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
