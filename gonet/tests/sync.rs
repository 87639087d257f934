//! `sync::Mutex` exclusion under contention and `sync::WaitGroup`.

mod common;
use common::run;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gonet::sync::{Mutex, WaitGroup};

#[test]
fn mutex_excludes_under_contention() {
    const G: usize = 100;
    const K: usize = 200;
    let (total, max_inside) = run(2, || {
        let m = Arc::new(Mutex::new(0usize));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..G)
            .map(|_| {
                let (m, inside, max_inside) = (m.clone(), inside.clone(), max_inside.clone());
                gonet::go(move || {
                    for _ in 0..K {
                        let mut g = m.lock();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(n, Ordering::SeqCst);
                        // A non-atomic read-modify-write split by a yield: lost updates would
                        // show if two goroutines were ever inside at once.
                        let v = *g;
                        gonet::yield_now();
                        *g = v + 1;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(g);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let total = *m.lock();
        (total, max_inside.load(Ordering::SeqCst))
    });
    assert_eq!(max_inside, 1, "two holders inside the mutex at once");
    assert_eq!(total, G * K);
}

#[test]
fn mutex_shared_by_goroutines_and_threads() {
    let total = run(2, || {
        let m = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    for _ in 0..2000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        let gs: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                gonet::go(move || {
                    for i in 0..2000 {
                        let mut g = m.lock();
                        *g += 1;
                        if i % 100 == 0 {
                            gonet::yield_now();
                        }
                    }
                })
            })
            .collect();
        for g in gs {
            g.join().unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        let v = *m.lock();
        v
    });
    assert_eq!(total, 6 * 2000);
}

#[test]
fn waitgroup_waits_for_every_done() {
    run(2, || {
        let wg = WaitGroup::new();
        let finished = Arc::new(AtomicUsize::new(0));
        wg.add(50);
        for i in 0..50 {
            let (wg, finished) = (wg.clone(), finished.clone());
            gonet::go(move || {
                gonet::time::sleep(Duration::from_millis(i % 7));
                finished.fetch_add(1, Ordering::SeqCst);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(finished.load(Ordering::SeqCst), 50);
        assert_eq!(wg.count(), 0);
        wg.wait(); // zero: returns at once
    });
}

#[test]
fn waitgroup_releases_several_waiters_including_threads() {
    run(2, || {
        let wg = WaitGroup::new();
        wg.add(1);
        let released = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let (wg, released) = (wg.clone(), released.clone());
                gonet::go(move || {
                    wg.wait();
                    released.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let t = {
            let (wg, released) = (wg.clone(), released.clone());
            thread::spawn(move || {
                wg.wait();
                released.fetch_add(1, Ordering::SeqCst);
            })
        };
        gonet::time::sleep(Duration::from_millis(20));
        assert_eq!(released.load(Ordering::SeqCst), 0, "a waiter returned before done()");
        wg.done();
        for w in waiters {
            w.join().unwrap();
        }
        t.join().unwrap();
        assert_eq!(released.load(Ordering::SeqCst), 6);
    });
}

#[test]
fn waitgroup_parks_ten_thousand_goroutines() {
    run(2, || {
        let gate = WaitGroup::new();
        gate.add(1);
        let all = WaitGroup::new();
        all.add(10_000);
        let passed = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..10_000 {
            let (gate, all) = (gate.clone(), all.clone());
            let (passed, finished) = (passed.clone(), finished.clone());
            gonet::go(move || {
                gate.wait();
                passed.fetch_add(1, Ordering::SeqCst);
                // Still running after `done`s of others: `all.wait` must wait for this too.
                gonet::yield_now();
                finished.fetch_add(1, Ordering::SeqCst);
                all.done();
            });
        }
        // Every goroutine gets to run and must stay parked at the closed gate.
        gonet::time::sleep(std::time::Duration::from_millis(50));
        assert_eq!(passed.load(Ordering::SeqCst), 0, "goroutines passed a WaitGroup with count 1");
        gate.done();
        all.wait();
        assert_eq!(finished.load(Ordering::SeqCst), 10_000, "wait returned before every done");
    });
}

#[test]
fn waitgroup_done_below_zero_panics() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    let err = panic::catch_unwind(AssertUnwindSafe(|| wg.done())).unwrap_err();
    let msg = match err.downcast_ref::<&str>() {
        Some(s) => s.to_string(),
        None => err.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(msg.contains("negative WaitGroup counter"), "message: {msg:?}");
    // Still usable afterwards.
    wg.add(1);
    wg.done();
    wg.wait();
}

/// `count` follows `add`, `done` and guards, and `Debug` shows it.
#[test]
fn waitgroup_count_and_debug() {
    run(1, || {
        let wg = WaitGroup::new();
        assert_eq!(wg.count(), 0);
        assert_eq!(format!("{wg:?}"), "WaitGroup { count: 0 }");
        wg.add(3);
        assert_eq!(wg.count(), 3);
        let g = wg.guard();
        assert_eq!(wg.count(), 4);
        assert_eq!(format!("{g:?}"), "DoneGuard { .. }");
        assert_eq!(format!("{wg:?}"), "WaitGroup { count: 4 }");
        drop(g);
        wg.done();
        assert_eq!(wg.count(), 2);
        wg.done();
        wg.done();
        assert_eq!(wg.count(), 0);
        wg.wait(); // returns at once at zero
    });
}

/// `try_lock` takes a free lock and refuses a held one, and `Debug` shows the value or that
/// it is locked; `get_mut`, `into_inner` and `Default` reach the value.
#[test]
fn mutex_try_lock_debug_and_accessors() {
    run(1, || {
        let m = Mutex::new(5u32);
        assert_eq!(format!("{m:?}"), "Mutex { data: 5 }");
        {
            let mut g = m.try_lock().expect("a free lock is taken");
            *g += 1;
            assert!(m.try_lock().is_none(), "a held lock is refused");
            assert_eq!(format!("{m:?}"), "Mutex { <locked> }");
            assert_eq!(format!("{g:?}"), "6");
        }
        let mut g = m.try_lock().expect("free again after the guard dropped");
        *g += 1;
        drop(g);
        let mut m = m;
        *m.get_mut() += 1;
        assert_eq!(m.into_inner(), 8);
        assert_eq!(*Mutex::<u32>::default().lock(), 0);
    });
}
