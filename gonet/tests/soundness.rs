//! Soundness: panics from values the runtime drops or code it runs outside a goroutine body
//! (detached results, panic payloads, unstarted goroutines' closures, values left in channels
//! and select arms, blocking jobs, destructors run at shutdown) never unwind a worker, never
//! leave it dangling, and never run under a runtime lock. Each test asserts that `run` returns
//! normally, that later goroutines still run and that wake-ups still arrive; the reports that
//! name the goroutine are checked in a child process. CI also runs this file under valgrind
//! (`.ci/valgrind`), where a write into a freed run queue is a heap error.

mod common;
use common::{run, within};

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gonet::chan;

/// A value whose `Drop` panics.
struct Boom;
impl Drop for Boom {
    fn drop(&mut self) {
        panic!("boom in drop");
    }
}

/// A value whose `Drop` sends on a channel (a wake-up when a receiver is parked on it).
struct WakeOnDrop(chan::Sender<u32>);
impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        let _ = self.0.try_send(1);
    }
}

/// A panic payload whose own `Drop` panics, `depth` levels deep.
struct BoomPayload(usize);
impl Drop for BoomPayload {
    fn drop(&mut self) {
        if self.0 > 0 {
            std::panic::panic_any(BoomPayload(self.0 - 1));
        }
    }
}

/// After a contained panic: new goroutines run, and a wake-up from one goroutine to another
/// (a rendezvous channel, parking the receiver) and a timer wake-up still arrive.
fn runtime_still_works() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let r = gonet::go(move || rx.recv().unwrap());
    gonet::time::sleep(Duration::from_millis(5));
    let s = gonet::go(move || tx.send(7).unwrap());
    assert_eq!(r.join().unwrap(), 7);
    s.join().unwrap();
    let hs: Vec<_> = (0..50u32).map(|i| gonet::go(move || i)).collect();
    assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>(), 49 * 50 / 2);
}

/// The reproduction of the issue: a detached goroutine returns a value whose `Drop` panics,
/// while other goroutines sleep holding values that wake a parked goroutine from their
/// destructors at shutdown. Before the fix the panic unwound the worker, whose fields were then
/// freed while those destructors pushed onto its run queue (a use-after-free under valgrind).
#[test]
fn detached_result_whose_drop_panics() {
    for procs in [1, 2] {
        let v = run(procs, || {
            let (tx, rx) = chan::bounded::<u32>(0);
            for _ in 0..8 {
                gonet::go(|| ());
            }
            gonet::go(move || {
                let _ = rx.recv();
            });
            gonet::go(move || {
                let _w = WakeOnDrop(tx);
                gonet::time::sleep(Duration::from_secs(100));
            });
            gonet::time::sleep(Duration::from_millis(20));
            // Detached: the runtime drops the Boom. (With two workers the goroutine could
            // finish before the handle is dropped, and the handle's drop would drop the Boom,
            // in this goroutine's code; the sleep rules that out.)
            drop(gonet::go(|| {
                gonet::time::sleep(Duration::from_millis(5));
                Boom
            }));
            gonet::time::sleep(Duration::from_millis(20));
            runtime_still_works();
            42
        });
        assert_eq!(v, 42, "run returns normally");
    }
}

/// The same with the result dropped while the main goroutine is parked on a timer (the timer
/// wake-up must still arrive) and many detached results at once.
#[test]
fn many_detached_results_whose_drop_panics() {
    let v = run(2, || {
        for _ in 0..100 {
            drop(gonet::go(|| {
                gonet::time::sleep(Duration::from_millis(5));
                Boom
            }));
        }
        gonet::time::sleep(Duration::from_millis(30));
        runtime_still_works();
        1
    });
    assert_eq!(v, 1);
}

/// A detached goroutine panics with a payload whose `Drop` panics, whose payload's `Drop`
/// panics, and so on.
#[test]
fn detached_panic_payload_whose_drop_panics() {
    let v = run(1, || {
        drop(gonet::go(|| std::panic::panic_any(BoomPayload(1))));
        drop(gonet::go(|| std::panic::panic_any(BoomPayload(20))));
        gonet::time::sleep(Duration::from_millis(20));
        runtime_still_works();
        2
    });
    assert_eq!(v, 2);
}

/// A joined goroutine's result is dropped by the joiner, in its own code, as in std.
#[test]
fn joined_result_whose_drop_panics_panics_in_the_joiner() {
    let v = run(1, || {
        let h = gonet::go(|| Boom);
        let r = gonet::go(move || drop(h.join())).join();
        assert!(r.is_err(), "the joiner's own drop panicked, caught by its join");
        runtime_still_works();
        3
    });
    assert_eq!(v, 3);
}

/// Goroutines that never ran are dropped at shutdown with their closures, whose captures'
/// `Drop` panics.
#[test]
fn unstarted_closures_whose_drop_panics_at_shutdown() {
    let v = run(1, || {
        unstarted_at_shutdown();
        4
    });
    assert_eq!(v, 4);
}

/// Leaves 10 goroutines whose closures hold a `Boom` unstarted when the runtime shuts down:
/// they are spawned at shutdown, by the destructor of a parked goroutine being unwound, so
/// they never run. The caller is the main goroutine.
fn unstarted_at_shutdown() {
    struct SpawnBoomsOnDrop;
    impl Drop for SpawnBoomsOnDrop {
        fn drop(&mut self) {
            for _ in 0..10 {
                let b = Boom;
                gonet::go(move || drop(b));
            }
        }
    }
    gonet::go(|| {
        let _s = SpawnBoomsOnDrop;
        gonet::time::sleep(Duration::from_secs(100));
    });
    gonet::time::sleep(Duration::from_millis(10));
}

/// A goroutine unwound at shutdown while it waits for a blocking job whose result's `Drop`
/// panics: the result is dropped, contained, once the job is done.
#[test]
fn blocking_job_result_dropped_at_shutdown() {
    let v = run(2, || {
        for _ in 0..4 {
            gonet::go(|| {
                gonet::blocking(|| {
                    thread::sleep(Duration::from_millis(50));
                    Boom
                })
            });
        }
        gonet::time::sleep(Duration::from_millis(10));
        10
    });
    assert_eq!(v, 10);
    // The pool still runs jobs for a new runtime.
    assert_eq!(run(1, || gonet::go(|| gonet::blocking(|| 11)).join().unwrap()), 11);
}

/// A goroutine parked at shutdown whose stack is unwound: its destructors wake a goroutine
/// parked on the same worker, send to a plain thread and spawn goroutines, all while the
/// worker tears down, with timers (a sleep, a receive timeout, `time::after`, a select
/// timeout) still pending.
#[test]
fn destructors_at_shutdown_wake_and_spawn() {
    struct SpawnOnDrop;
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let _ = gonet::try_go(|| ());
        }
    }
    let (ttx, trx) = chan::bounded::<u32>(1);
    let v = run(2, move || {
        let (tx, rx) = chan::bounded::<u32>(0);
        gonet::go(move || {
            let _ = rx.recv();
        });
        gonet::go(move || {
            let _a = WakeOnDrop(tx);
            let _b = WakeOnDrop(ttx);
            let _c = SpawnOnDrop;
            gonet::time::sleep(Duration::from_secs(100));
        });
        // Timers pending at shutdown: dropped with the heap, their callbacks never run.
        let (_keep, rx2) = chan::bounded::<u32>(0);
        gonet::go(move || rx2.recv_timeout(Duration::from_secs(100)));
        let after = gonet::time::after(Duration::from_secs(100));
        gonet::go(move || {
            let (_t, r) = chan::bounded::<WakeOnDrop>(0);
            gonet::select! {
                recv(r) -> _ => (),
                recv(after) -> _ => (),
                default(Duration::from_secs(100)) => (),
            }
        });
        gonet::time::sleep(Duration::from_millis(20));
        5
    });
    assert_eq!(v, 5);
    assert_eq!(trx.recv_timeout(Duration::from_secs(5)), Ok(1), "the wake-up arrived");
}

/// Values left in a channel are dropped outside its lock: a buffered value whose `Drop` uses
/// the same channel (re-entrance would deadlock under the lock), and one whose `Drop` panics
/// (in the code that dropped the last receiver, which finds the channel consistent).
#[test]
fn channel_drops_buffered_values_outside_its_lock() {
    let v = run(1, || {
        struct Reenter(chan::Sender<Reenter>, Arc<AtomicUsize>);
        impl Drop for Reenter {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
                let _ = self.0.len(); // takes the channel's lock
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<Reenter>(4);
        for _ in 0..3 {
            tx.try_send(Reenter(tx.clone(), dropped.clone())).ok().unwrap();
        }
        drop(rx);
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
        assert!(tx.try_send(Reenter(tx.clone(), dropped.clone())).is_err(), "disconnected");

        let (tx, rx) = chan::bounded::<Boom>(2);
        tx.try_send(Boom).ok().unwrap();
        let r = gonet::go(move || drop(rx)).join();
        assert!(r.is_err(), "the receiver's drop panicked in its goroutine");
        let e = tx.try_send(Boom);
        assert!(e.is_err(), "the channel is disconnected and still usable");
        std::mem::forget(e);
        runtime_still_works();
        6
    });
    assert_eq!(v, 6);
}

/// A `select!` send arm parked when its runtime shuts down: the unsent value goes back to the
/// arm and is dropped with it, not left in the channel's queue where the next receiver would
/// drop it under the channel's lock (a deadlock when its `Drop` uses that channel).
#[test]
fn select_send_arm_unwound_at_shutdown_takes_its_value_back() {
    struct Reenter(chan::Receiver<Reenter>, Arc<AtomicUsize>);
    impl Drop for Reenter {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
            let _ = self.0.len(); // takes the channel's lock
        }
    }
    within(Duration::from_secs(30), || {
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<Reenter>(0);
        let (rx2, d2) = (rx.clone(), dropped.clone());
        let (ready_tx, ready_rx) = chan::bounded::<()>(1);
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            gonet::go(move || {
                let (_other_tx, other_rx) = chan::bounded::<u32>(0);
                ready_tx.send(()).unwrap();
                gonet::select! {
                    send(tx, Reenter(rx2, d2)) -> _ => unreachable!(),
                    recv(other_rx) -> _ => unreachable!(),
                }
            });
            ready_rx.recv().unwrap();
            gonet::time::sleep(Duration::from_millis(10));
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the arm's value was dropped at shutdown");
        // A plain-thread receive now finds no stale value to drop under the lock.
        assert!(rx.try_recv().is_err());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    });
}

/// A blocking job whose result's `Drop` panics, on the pool thread or in the goroutine, and
/// one that panics: the pool keeps serving jobs.
#[test]
fn blocking_pool_survives_panicking_results() {
    let v = run(2, || {
        for _ in 0..4 {
            let r = gonet::go(|| drop(gonet::blocking(|| Boom))).join();
            assert!(r.is_err(), "the drop panicked in the goroutine that got the value");
            let r = gonet::go(|| gonet::blocking(|| panic!("job panics"))).join();
            assert!(r.is_err());
        }
        assert_eq!(gonet::blocking(|| 5), 5);
        runtime_still_works();
        7
    });
    assert_eq!(v, 7);
}

/// Timers keep firing after a contained panic: a `time::after` fired while a detached result
/// panics, and timeouts on channels and selects.
#[test]
fn timers_keep_firing_after_contained_panics() {
    let v = run(1, || {
        let after = gonet::time::after(Duration::from_millis(10));
        drop(gonet::go(|| Boom));
        after.recv().unwrap();
        let (_tx, rx) = chan::bounded::<u32>(0);
        assert!(rx.recv_timeout(Duration::from_millis(5)).is_err());
        gonet::select! {
            recv(rx) -> _ => unreachable!(),
            default(Duration::from_millis(5)) => {}
        }
        8
    });
    assert_eq!(v, 8);
}

/// A `thread_local!` destructor on a worker thread that calls gonet after the worker is gone
/// finds no worker (it is cleared before the worker's fields drop), instead of a dangling one.
#[test]
fn thread_local_destructor_after_the_worker_is_gone() {
    struct CallsGonet(Arc<AtomicUsize>);
    impl Drop for CallsGonet {
        fn drop(&mut self) {
            // Outside a runtime these fall back to the plain-thread paths.
            gonet::yield_now();
            gonet::time::sleep(Duration::from_millis(1));
            let (tx, rx) = chan::bounded::<u32>(1);
            tx.send(1).unwrap();
            assert_eq!(rx.recv(), Ok(1));
            assert!(std::panic::catch_unwind(|| gonet::go(|| ())).is_err(), "no worker");
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static TL: std::cell::RefCell<Option<CallsGonet>> = const { std::cell::RefCell::new(None) };
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let v = run(1, move || {
        TL.with(|t| *t.borrow_mut() = Some(CallsGonet(r2)));
        drop(gonet::go(|| Boom));
        gonet::time::sleep(Duration::from_millis(10));
        9
    });
    assert_eq!(v, 9);
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the destructor ran when the worker exited");
}

const CHILD_ENV: &str = "GONET_SOUNDNESS_CHILD";

/// Re-runs this test binary for `test` only, with `CHILD_ENV` set to `mode`.
fn run_child(test: &str, mode: &str) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// Contained panics are reported on stderr (no logger is installed), naming the goroutine and
/// what the runtime was doing.
#[test]
fn contained_panics_are_reported_naming_the_goroutine() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("report") {
        let ids = gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let h = gonet::go(|| Boom);
            let a = h.id();
            drop(h);
            let h = gonet::go(|| std::panic::panic_any(BoomPayload(1)));
            let b = h.id();
            drop(h);
            gonet::time::sleep(Duration::from_millis(20));
            (a, b)
        });
        println!("ids {} {}", ids.0, ids.1);
        return;
    }
    let out = run_child("contained_panics_are_reported_naming_the_goroutine", "report");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    let ids = stdout.split("ids ").nth(1).expect("child printed ids");
    let ids: Vec<u64> = ids.split_whitespace().take(2).map(|s| s.parse().unwrap()).collect();
    let want_a = format!(
        "gonet: goroutine {}: panic while dropping the result of a detached goroutine: boom in \
         drop; contained",
        ids[0]
    );
    let want_b = format!(
        "gonet: goroutine {}: panic while dropping the panic payload of a detached goroutine: \
         (non-string payload); contained",
        ids[1]
    );
    assert!(stderr.contains(&want_a), "missing {want_a:?} in:\n{stderr}");
    assert!(stderr.contains(&want_b), "missing {want_b:?} in:\n{stderr}");
}

/// The runtime's own drops at shutdown are reported too: the closures of goroutines that never
/// ran, and the result of a blocking job whose goroutine was unwound while it waited.
#[test]
fn shutdown_drops_are_reported_naming_the_goroutine() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("shutdown") {
        gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let h = gonet::go(|| {
                gonet::blocking(|| {
                    thread::sleep(Duration::from_millis(100));
                    Boom
                })
            });
            println!("blocking {}", h.id());
            gonet::time::sleep(Duration::from_millis(10));
            unstarted_at_shutdown();
        });
        return;
    }
    let out = run_child("shutdown_drops_are_reported_naming_the_goroutine", "shutdown");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    let id = stdout.split("blocking ").nth(1).expect("child printed the id");
    let id = id.split_whitespace().next().unwrap();
    let want = format!(
        "gonet: goroutine {id}: panic while dropping a blocking job's result at shutdown: boom \
         in drop; contained"
    );
    assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    let n = stderr
        .matches(": panic while dropping the closure of a goroutine that never ran: boom in drop")
        .count();
    assert_eq!(n, 10, "{stderr}");
}

/// A destructor that panics while the runtime unwinds a parked goroutine at shutdown panics
/// during unwinding, which Rust turns into an abort; the message names the goroutine.
#[test]
fn destructor_panicking_during_shutdown_unwind_aborts_naming_the_goroutine() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("abort") {
        gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let h = gonet::go(|| {
                let _b = Boom;
                gonet::time::sleep(Duration::from_secs(100));
            });
            println!("id {}", h.id());
            gonet::time::sleep(Duration::from_millis(10));
        });
        println!("not aborted");
        return;
    }
    let out = run_child(
        "destructor_panicking_during_shutdown_unwind_aborts_naming_the_goroutine",
        "abort",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !stdout.contains("not aborted"), "{stdout}\n{stderr}");
    let id = stdout.split("id ").nth(1).expect("child printed its id");
    let id = id.split_whitespace().next().unwrap();
    let want = format!("gonet: goroutine {id}: a destructor panicked while the runtime");
    assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    assert!(stderr.contains("boom in drop"), "{stderr}");
}
