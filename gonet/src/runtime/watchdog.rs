//! The watchdog (Go's `sysmon`, reduced): one thread per runtime that, every [`TICK`],
//! * reports a goroutine holding its worker for more than [`STALL`] without parking or
//!   yielding — the goroutine-model equivalent of blocking the event loop — once per stall,
//!   naming the goroutine, its name and spawn site (where it goes: `report.rs`);
//! * acts when the runtime looks deadlocked: no goroutine has run for [`DEADLOCK`] and a dump
//!   shows every goroutine waiting on another (channels, locks, joins) with no timer pending —
//!   by default it prints the dump and exits 2 as Go does; with [`Deadlock::Warn`] it warns
//!   once per quiet spell (a plain thread may still complete a wait);
//! * prints a goroutine dump to stderr after each `SIGQUIT` (and then, by default, exits 2:
//!   [`Traceback`]);
//! * advances the coarse clock that parks are timed with (`wait.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::dump;
use super::report::{self, Deadlock, Traceback};
use super::wait;
use super::worker::RtShared;
use crate::signal::SIGQUITS;

/// How long a goroutine may hold a worker before it is reported.
pub const STALL: Duration = Duration::from_millis(100);
const TICK: Duration = Duration::from_millis(20);
/// How long no goroutine may run before the runtime is checked for a deadlock.
pub(crate) const DEADLOCK: Duration = Duration::from_secs(1);

/// Stops the watchdog thread when dropped.
pub(crate) struct Watchdog {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

/// `quits` is [`SIGQUITS`] as it was before the runtime's first goroutine ran, so a SIGQUIT
/// that arrives before this thread starts is still acted on.
pub(crate) fn start(
    rt: Arc<RtShared>,
    quit: Traceback,
    deadlock: Deadlock,
    quits: u64,
) -> Watchdog {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let s = stop.clone();
    // The new thread sets itself up (its signal stack: an mmap) before it runs our closure;
    // wait for that, so that it happens before the first goroutine runs and never in a
    // window where the program has exhausted memory or lowered its address-space limit (the
    // standard library aborts the process when a thread cannot get its signal stack).
    let (up_tx, up_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let thread = thread::Builder::new()
        .name("gonet-watchdog".into())
        .spawn(move || {
            let _ = up_tx.send(());
            watch(&rt, &s, quit, deadlock, quits)
        })
        .ok();
    if thread.is_some() {
        let _ = up_rx.recv();
    }
    Watchdog { stop, thread }
}

fn watch(
    rt: &RtShared,
    stop: &(Mutex<bool>, Condvar),
    quit: Traceback,
    deadlock: Deadlock,
    mut quits: u64,
) {
    // Per worker: the run last sampled — (goroutine, switch count) — when it was first seen,
    // and whether it was reported. A run is the same run while both stay unchanged.
    let mut seen = vec![((0u64, 0u64, 0u64), Instant::now(), false); rt.workers.len()];
    // The switch counts when the runtime was last seen making progress, and since when.
    let mut progress = (Vec::new(), Instant::now(), false);
    let mut stopped = stop.0.lock().unwrap_or_else(|e| e.into_inner());
    while !*stopped {
        stopped = stop.1.wait_timeout(stopped, TICK).unwrap_or_else(|e| e.into_inner()).0;
        if *stopped {
            break;
        }
        wait::tick();
        let now = Instant::now();
        let q = SIGQUITS.load(Ordering::Relaxed);
        if q != quits {
            quits = q;
            if quit == Traceback::Exit {
                // Every runtime of the process, as Go prints every goroutine.
                let d = dump::dump_all();
                report::fatal(&format!("SIGQUIT: quit\n\n{d}exit status 2"));
            }
            let d = dump::collect(rt, true);
            eprintln!("SIGQUIT: goroutine dump\n\n{d}");
        }
        let switches: Vec<u64> = rt.workers.iter().map(|w| w.stats.switches.get()).collect();
        if switches != progress.0 {
            progress = (switches, now, false);
        } else if !progress.2 && now - progress.1 > DEADLOCK {
            // Checked once per quiet spell: an idle server (all in IO wait) is not re-dumped.
            progress.2 = true;
            let idle = rt.workers.iter().all(|w| w.running.load(Ordering::Relaxed) == 0);
            if idle {
                let d = dump::collect(rt, false);
                // A goroutine may wait for a signal (`signal::notify`): not a deadlock.
                if d.looks_deadlocked() && !crate::signal::may_deliver() {
                    let d = dump::collect(rt, true);
                    let quiet = now - progress.1;
                    if deadlock == Deadlock::Exit {
                        report::fatal(&format!(
                            "fatal error: all goroutines are asleep - deadlock! (none has run \
                             for {quiet:?}; each waits on a channel, lock or join that only \
                             another goroutine can complete; if a plain OS thread may still \
                             complete it, run with GONET_DEADLOCK=warn or \
                             Builder::deadlock(Deadlock::Warn))\n\n{d}exit status 2"
                        ));
                    }
                    rt.reports.warn(&format!(
                        "gonet: all goroutines are asleep - possible deadlock! (none has run for \
                         {quiet:?}; each waits on a channel, lock or join that only another \
                         goroutine or a plain thread can complete)\n\n{d}"
                    ));
                }
            }
        }
        for (w, (run, since, reported)) in rt.workers.iter().zip(seen.iter_mut()) {
            let cur = (
                w.running.load(Ordering::Relaxed),
                w.stats.switches.get(),
                w.units.load(Ordering::Relaxed),
            );
            if cur != *run {
                (*run, *since, *reported) = (cur, now, false);
                continue;
            }
            let held = now - *since;
            if cur.0 != 0 && !*reported && held > STALL {
                *reported = true;
                let site = w.running_site.load(Ordering::Relaxed);
                // SAFETY: a non-null `running_site` is a `&'static Location` (worker.rs).
                let site = unsafe { site.as_ref() };
                let fd = w.unit_fd.load(Ordering::Relaxed);
                let who = super::report::who(cur.0, site);
                let who = if fd >= 0 { format!("a handler call on fd {fd} ({who})") } else { who };
                rt.reports.warn(&format!(
                    "gonet: {who} has held worker {} for {held:?} without parking or yielding; \
                     move blocking work to gonet::blocking or call gonet::yield_now",
                    w.index
                ));
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
