//! A goroutine parked on any waiting primitive when its runtime ends is unwound, and must
//! take its waiter out of the primitive: a waiter left behind holds the dead goroutine, and
//! through it its worker, whose epoll instance (and wake-up eventfd) then stays open for as
//! long as the primitive waits on (until a `WaitGroup` reaches zero, a joined goroutine ends,
//! a `Once` initialiser returns ... or forever). Each test ends a runtime with goroutines
//! parked on one primitive that a plain thread keeps blocked, and checks that the runtime's
//! epoll instances are all closed.
//!
//! The tests count the process's epoll descriptors, so they take a lock: one runtime at a
//! time in this file, also when the file runs under `cargo test` (threads in one process).

mod common;

use std::sync::{mpsc, Arc, Mutex as StdMutex};
use std::thread;
use std::time::Duration;

use gonet::sync::{Cond, Mutex, Once, RwLock, Semaphore, WaitGroup};

const LIMIT: Duration = Duration::from_secs(60);

static SERIAL: StdMutex<()> = StdMutex::new(());

/// The number of epoll instances open in this process.
fn epoll_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_str() == Some("anon_inode:[eventpoll]"))
        .count()
}

/// Ends a 2-worker runtime with `n` goroutines parked in `park`, then checks that the
/// runtime's epoll instances are closed (polling a while: the last references may go on
/// the runtime's own threads as they exit).
fn no_epoll_left_after(what: &str, n: usize, park: impl Fn() + Send + Sync + 'static) {
    let before = epoll_fds();
    common::end_runtime_with_parked(2, n, park);
    let mut left = epoll_fds();
    for _ in 0..500 {
        if left <= before {
            break;
        }
        thread::sleep(Duration::from_millis(10));
        left = epoll_fds();
    }
    assert_eq!(left, before, "{what}: a dead goroutine's waiter keeps its worker's epoll open");
}

fn serial(f: impl FnOnce() + Send + 'static) {
    common::within(LIMIT, move || {
        let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        f();
    });
}

#[test]
fn waitgroup_wait() {
    serial(|| {
        let wg = WaitGroup::new();
        wg.add(1); // a plain thread's share, never done while the runtime runs
        let w = wg.clone();
        no_epoll_left_after("WaitGroup::wait", 4, move || w.wait());
        wg.done();
    });
}

#[test]
fn join_of_a_goroutine_that_runs_on() {
    serial(|| {
        // The joined goroutine lives in a second runtime that outlives the first.
        let (h_tx, h_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = gonet::chan::bounded::<()>(0);
        let other = thread::spawn(move || {
            gonet::Builder::new().procs(1).build().unwrap().run(move || {
                let stop = stop_rx.clone();
                h_tx.send(gonet::go(move || {
                    let _ = stop.recv();
                }))
                .unwrap();
                let _ = stop_rx.recv(); // runs until told to stop
            })
        });
        let h = StdMutex::new(Some(h_rx.recv().unwrap()));
        no_epoll_left_after("JoinHandle::join", 1, move || {
            let h = h.lock().unwrap().take().unwrap();
            let _ = h.join();
        });
        drop(stop_tx);
        other.join().unwrap();
    });
}

#[test]
fn once_latecomers() {
    serial(|| {
        let once = Arc::new(Once::new());
        let (in_tx, in_rx) = mpsc::channel();
        let (out_tx, out_rx) = mpsc::channel::<()>();
        let o = once.clone();
        let runner = thread::spawn(move || {
            o.call_once(|| {
                in_tx.send(()).unwrap();
                let _ = out_rx.recv();
            })
        });
        in_rx.recv().unwrap();
        let o = once.clone();
        no_epoll_left_after("Once::call_once", 4, move || o.call_once(|| {}));
        drop(out_tx);
        runner.join().unwrap();
        assert!(once.is_completed());
    });
}

#[test]
fn semaphore_acquire() {
    serial(|| {
        let sem = Arc::new(Semaphore::new(1));
        assert!(sem.try_acquire(1));
        let s = sem.clone();
        no_epoll_left_after("Semaphore::acquire", 4, move || {
            let _ = s.acquire(1);
        });
        sem.release(1);
        assert_eq!(sem.held(), 0);
    });
}

/// The primitives below withdrew their waiters already; these guard that.
#[test]
fn mutex_rwlock_and_cond() {
    serial(|| {
        let m = Arc::new(Mutex::new(()));
        let g = m.try_lock().unwrap();
        let m2 = m.clone();
        no_epoll_left_after("Mutex::lock", 3, move || drop(m2.lock()));
        drop(g);
        let l = Arc::new(RwLock::new(()));
        let w = l.try_write().unwrap();
        let l2 = l.clone();
        no_epoll_left_after("RwLock::read", 3, move || drop(l2.read()));
        let l2 = l.clone();
        no_epoll_left_after("RwLock::write", 3, move || drop(l2.write()));
        drop(w);
        let pair = Arc::new((Mutex::new(()), Cond::new()));
        let p = pair.clone();
        no_epoll_left_after("Cond::wait", 3, move || drop(p.1.wait(p.0.lock())));
    });
}

#[test]
fn channels_select_sleep_and_context() {
    serial(|| {
        let (tx, rx) = gonet::chan::bounded::<u8>(0);
        let r = rx.clone();
        no_epoll_left_after("Receiver::recv", 3, move || {
            let _ = r.recv();
        });
        let t = tx.clone();
        no_epoll_left_after("Sender::send", 3, move || {
            let _ = t.send(1);
        });
        // Two other channels, so that the select arms of two goroutines cannot meet.
        let (tx2, rx2) = gonet::chan::bounded::<u8>(0);
        let (tx3, rx3) = gonet::chan::bounded::<u8>(0);
        let (r, t) = (rx2.clone(), tx3.clone());
        no_epoll_left_after("select!", 3, move || {
            gonet::select! {
                recv(r) -> _v => {},
                send(t, 2) -> _e => {},
            }
        });
        no_epoll_left_after("time::sleep", 3, || gonet::time::sleep(Duration::from_secs(3600)));
        let (ctx, cancel) = gonet::context::with_cancel(&gonet::context::Context::background());
        no_epoll_left_after("Context::wait", 3, move || {
            let _ = ctx.wait();
        });
        cancel.cancel();
        drop((tx, rx, tx2, rx3));
    });
}
