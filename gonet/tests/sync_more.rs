//! `sync::RwLock` (writer-preferring, no starvation either way), `Once` / `OnceLock` (parking
//! initialisation), `Cond`, the weighted `Semaphore` (FIFO, context-bounded acquire) and the
//! `WaitGroup` guard.

mod common;
use common::{run, within};

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gonet::context::{self, Context};
use gonet::sync::{Cond, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup};

const MS: Duration = Duration::from_millis(1);

#[test]
fn rwlock_readers_share_and_writers_exclude() {
    let (max_readers, total) = run(2, || {
        let l = Arc::new(RwLock::new(0u64));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for i in 0..16 {
            let (l, inside, max) = (l.clone(), inside.clone(), max.clone());
            wg.go(move || {
                for _ in 0..50 {
                    if i % 4 == 0 {
                        let mut g = l.write();
                        assert_eq!(inside.load(Ordering::SeqCst), 0, "a reader inside a write");
                        let v = *g;
                        gonet::yield_now();
                        *g = v + 1;
                    } else {
                        let g = l.read();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(n, Ordering::SeqCst);
                        let _ = *g;
                        gonet::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            });
        }
        wg.wait();
        let total = *l.read();
        (max.load(Ordering::SeqCst), total)
    });
    assert_eq!(total, 4 * 50, "lost updates under the write lock");
    assert!(max_readers > 1, "readers never shared the lock");
}

#[test]
fn rwlock_readers_cannot_starve_a_writer() {
    // Eight readers keep the lock read-held at every instant (their holds overlap). A
    // reader-preferring lock would make the writer wait until they stop (after 20 s).
    let waited = run(2, || {
        let l = Arc::new(RwLock::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let wg = WaitGroup::new();
        for _ in 0..8 {
            let (l, stop) = (l.clone(), stop.clone());
            wg.go(move || {
                let end = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                    let _g = l.read();
                    gonet::time::sleep(2 * MS);
                }
            });
        }
        gonet::time::sleep(20 * MS);
        let t0 = Instant::now();
        drop(l.write());
        let waited = t0.elapsed();
        stop.store(true, Ordering::SeqCst);
        wg.wait();
        waited
    });
    assert!(waited < Duration::from_secs(5), "the writer waited {waited:?}");
}

#[test]
fn rwlock_readers_queued_during_a_write_go_before_the_next_writer() {
    let order = run(2, || {
        let l = Arc::new(RwLock::new(()));
        let log = Arc::new(std::sync::Mutex::new(Vec::<&'static str>::new()));
        let w = l.write();
        let wg = WaitGroup::new();
        for _ in 0..3 {
            let (l, log) = (l.clone(), log.clone());
            wg.go(move || {
                let _g = l.read();
                log.lock().unwrap().push("reader");
                gonet::time::sleep(5 * MS);
            });
        }
        gonet::time::sleep(10 * MS);
        let (l2, log2) = (l.clone(), log.clone());
        wg.go(move || {
            let _g = l2.write();
            log2.lock().unwrap().push("writer2");
        });
        gonet::time::sleep(10 * MS); // all four are queued
        drop(w);
        wg.wait();
        let v = log.lock().unwrap().clone();
        v
    });
    // The readers that queued during the write are admitted together when it ends, before
    // the writer that queued after them: writers cannot starve readers either.
    assert_eq!(order, ["reader", "reader", "reader", "writer2"]);
}

#[test]
fn rwlock_on_plain_threads_and_try_variants() {
    let l = Arc::new(RwLock::new(1));
    let r1 = l.read();
    assert!(l.try_read().is_some());
    assert!(l.try_write().is_none());
    let l2 = l.clone();
    let h = thread::spawn(move || *l2.write() += 1);
    thread::sleep(20 * MS);
    assert!(l.try_read().is_none(), "a new reader got in while a writer waits");
    drop(r1);
    h.join().unwrap();
    assert_eq!(*l.read(), 2);
}

#[test]
fn once_parks_latecomers_on_a_single_worker() {
    // With one worker, a latecomer that blocked its thread (std's Once) would deadlock: the
    // runner sleeps (parks) inside the initialiser.
    let (runs, seen_done) = run(1, || {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for _ in 0..10 {
            let (once, runs, done, seen) = (once.clone(), runs.clone(), done.clone(), seen.clone());
            wg.go(move || {
                once.call_once(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    gonet::time::sleep(20 * MS);
                    done.store(true, Ordering::SeqCst);
                });
                if done.load(Ordering::SeqCst) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        wg.wait();
        (runs.load(Ordering::SeqCst), seen.load(Ordering::SeqCst))
    });
    assert_eq!(runs, 1);
    assert_eq!(seen_done, 10, "a caller returned before the initialiser finished");
}

#[test]
fn once_counts_a_panic_as_done_like_go() {
    let once = Once::new();
    let r = panic::catch_unwind(AssertUnwindSafe(|| once.call_once(|| panic!("init failed"))));
    assert!(r.is_err());
    assert!(once.is_completed());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(!ran);
}

#[test]
fn oncelock_initialises_once_and_retries_after_a_panic() {
    let v = run(1, || {
        let cell = Arc::new(OnceLock::<String>::new());
        let c = cell.clone();
        let h = gonet::go(move || {
            c.get_or_init(|| {
                gonet::time::sleep(10 * MS);
                panic!("first initialiser fails")
            });
        });
        gonet::time::sleep(MS);
        // Waits for the first initialiser, sees it fail, runs its own.
        let v = cell.get_or_init(|| "second".to_string()).clone();
        assert!(h.join().is_err());
        assert_eq!(cell.set("third".into()), Err("third".to_string()));
        v
    });
    assert_eq!(v, "second");
}

#[test]
fn once_and_oncelock_report_take_and_drop_their_state() {
    let once = Once::new();
    assert!(!once.is_completed());
    assert_eq!(format!("{once:?}"), "Once { done: false }");
    once.call_once(|| {});
    assert!(once.is_completed());
    assert_eq!(format!("{once:?}"), "Once { done: true }");

    /// Counts its drops.
    #[derive(Debug)]
    struct Counted(u32, Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let value = |n| Counted(n, drops.clone());
    let dropped = || drops.load(Ordering::SeqCst);

    let mut cell = OnceLock::new();
    assert_eq!(format!("{cell:?}"), "OnceLock(None)");
    assert!(cell.take().is_none());
    assert!(cell.set(value(1)).is_ok());
    assert_eq!(format!("{:?}", cell), "OnceLock(Some(Counted(1, 0)))");
    let taken = cell.take().expect("take returns the value");
    assert_eq!((taken.0, cell.get().map(|v| v.0)), (1, None), "take empties the cell");
    assert!(cell.take().is_none());
    drop(taken);
    assert_eq!(dropped(), 1);
    assert!(cell.set(value(2)).is_ok(), "a taken cell can be set again");
    assert_eq!(cell.into_inner().map(|v| v.0), Some(2));
    assert_eq!(dropped(), 2, "into_inner moves the value out; it is dropped once");

    let full = OnceLock::new();
    full.get_or_init(|| value(3));
    drop(full);
    assert_eq!(dropped(), 3, "dropping a set cell drops its value");
    drop(OnceLock::<Counted>::new());
    assert_eq!(dropped(), 3, "an empty cell drops nothing");
}

#[test]
fn rwlock_and_semaphore_accessors() {
    let mut l = RwLock::new(5u32);
    assert_eq!(format!("{l:?}"), "RwLock { data: 5 }");
    {
        let mut w = l.try_write().expect("a free lock is writable at once");
        *w += 1;
        assert_eq!(format!("{w:?}"), "6");
        assert!(l.try_read().is_none() && l.try_write().is_none());
        assert_eq!(format!("{l:?}"), "RwLock { <locked> }");
    }
    {
        let r = l.try_read().expect("a free lock is readable at once");
        let r2 = l.try_read().expect("readers share");
        assert_eq!((format!("{r:?}"), *r2), ("6".to_string(), 6));
        assert!(l.try_write().is_none());
    }
    *l.get_mut() += 1;
    assert_eq!(l.into_inner(), 7);

    let s = Semaphore::new(10);
    assert_eq!(format!("{s:?}"), "Semaphore { size: 10, held: 0 }");
    assert!(s.try_acquire(7));
    assert!(!s.try_acquire(4), "only 3 units are free");
    assert!(s.try_acquire(3), "exactly the free units");
    assert_eq!(s.held(), 10);
    assert!(!s.try_acquire(1));
    s.release(4);
    assert_eq!(format!("{s:?}"), "Semaphore { size: 10, held: 6 }");
    assert!(s.try_acquire(0));
    assert_eq!(s.held(), 6);
}

#[test]
fn semaphore_waiters_get_only_free_units_and_the_whole_size_is_valid() {
    let held = run(1, || {
        let s = Arc::new(Semaphore::new(10));
        // A waiter is served only once its units are free.
        assert!(s.try_acquire(8));
        let s5 = s.clone();
        let five = gonet::go(move || s5.acquire(5));
        gonet::time::sleep(10 * MS);
        s.release(1); // 3 free: not enough for 5
        gonet::time::sleep(10 * MS);
        assert_eq!(s.held(), 7, "a waiter was granted units that were not free");
        s.release(7);
        five.join().unwrap().unwrap();
        assert_eq!(s.held(), 5);
        s.release(4);

        let s2 = s.clone();
        let whole = gonet::go(move || s2.acquire(10));
        gonet::time::sleep(10 * MS);
        assert_eq!(s.held(), 1, "the whole-size acquire must wait, not fail or take");
        s.release(1);
        whole.join().unwrap().expect("an acquire of exactly the size is valid");
        let e = s.acquire(11).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        s.held()
    });
    assert_eq!(held, 10);
}

#[test]
fn cond_signal_and_broadcast() {
    let got = run(2, || {
        let m = Arc::new(Mutex::new(Vec::<u32>::new()));
        let c = Arc::new(Cond::new());
        let ready = Arc::new(Mutex::new(false));
        let wg = WaitGroup::new();
        // Consumers wait for items.
        let consumed = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (m, c, consumed) = (m.clone(), c.clone(), consumed.clone());
            wg.go(move || {
                let mut g = m.lock();
                g = c.wait_while(g, |q| q.is_empty());
                g.pop().unwrap();
                consumed.fetch_add(1, Ordering::SeqCst);
            });
        }
        gonet::time::sleep(10 * MS);
        for i in 0..4 {
            m.lock().push(i);
            c.signal();
        }
        wg.wait();
        // Broadcast wakes every waiter.
        let c2 = Arc::new(Cond::new());
        let woke = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for _ in 0..5 {
            let (ready, c2, woke) = (ready.clone(), c2.clone(), woke.clone());
            wg.go(move || {
                let g = ready.lock();
                let _g = c2.wait_while(g, |r| !*r);
                woke.fetch_add(1, Ordering::SeqCst);
            });
        }
        gonet::time::sleep(10 * MS);
        *ready.lock() = true;
        c2.broadcast();
        wg.wait();
        (consumed.load(Ordering::SeqCst), woke.load(Ordering::SeqCst))
    });
    assert_eq!(got, (4, 5));
}

#[test]
fn cond_wakes_a_plain_thread() {
    let m = Arc::new(Mutex::new(false));
    let c = Arc::new(Cond::new());
    let (m2, c2) = (m.clone(), c.clone());
    let h = thread::spawn(move || {
        let g = m2.lock();
        let g = c2.wait_while(g, |v| !*v);
        *g
    });
    thread::sleep(10 * MS);
    *m.lock() = true;
    c.signal();
    assert!(within(Duration::from_secs(10), move || h.join().unwrap()));
}

#[test]
fn semaphore_is_fifo_a_large_acquire_blocks_later_small_ones() {
    // One worker: both waiters are granted by the same release, and the order in which they
    // then log is the order they were woken in only when they run on the same worker.
    let order = run(1, || {
        let s = Arc::new(Semaphore::new(10));
        s.acquire(8).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let wg = WaitGroup::new();
        let (s1, l1) = (s.clone(), log.clone());
        wg.go(move || {
            s1.acquire(5).unwrap();
            l1.lock().push("large");
        });
        gonet::time::sleep(10 * MS);
        // Two units are free, but the large waiter is ahead: the small one must queue.
        assert!(!s.try_acquire(1));
        let (s2, l2) = (s.clone(), log.clone());
        wg.go(move || {
            s2.acquire(1).unwrap();
            l2.lock().push("small");
        });
        gonet::time::sleep(10 * MS);
        assert!(log.lock().is_empty());
        s.release(8);
        wg.wait();
        assert_eq!(s.held(), 6);
        let v = log.lock().clone();
        v
    });
    assert_eq!(order.len(), 2);
    assert_eq!(order[0], "large");
}

#[test]
fn semaphore_acquire_bounded_by_a_context() {
    run(2, || {
        let s = Arc::new(Semaphore::new(2));
        s.acquire(2).unwrap();
        // Cancelled while waiting.
        let (ctx, cancel) = context::with_cancel(&Context::background());
        let s1 = s.clone();
        let h = gonet::go(move || s1.acquire_ctx(&ctx, 1));
        gonet::time::sleep(10 * MS);
        cancel.cancel();
        let e = h.join().unwrap().unwrap_err();
        assert_eq!(context::io_reason(&e), Some(context::Error::Canceled), "{e}");
        // Deadline.
        let (ctx, _c) = context::with_timeout(&Context::background(), 20 * MS);
        let t0 = Instant::now();
        let e = s.acquire_ctx(&ctx, 1).unwrap_err();
        assert_eq!(context::io_reason(&e), Some(context::Error::DeadlineExceeded));
        assert!(t0.elapsed() >= 15 * MS);
        // A cancelled large waiter at the front lets the small one behind it through.
        s.release(1); // one unit free
        let (ctx, cancel) = context::with_cancel(&Context::background());
        let s2 = s.clone();
        let big = gonet::go(move || s2.acquire_ctx(&ctx, 2));
        gonet::time::sleep(10 * MS);
        let s3 = s.clone();
        let small = gonet::go(move || s3.acquire(1));
        gonet::time::sleep(10 * MS);
        cancel.cancel();
        assert!(big.join().unwrap().is_err());
        small.join().unwrap().unwrap();
        assert_eq!(s.held(), 2);
        // Too large ever to succeed.
        assert_eq!(s.acquire(3).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    });
}

#[test]
fn waitgroup_guard_survives_a_panicking_goroutine() {
    run(2, || {
        let wg = WaitGroup::new();
        let g = wg.guard();
        let h = gonet::go(move || {
            let _g = g;
            panic!("member fails");
        });
        let h2 = wg.go(|| panic!("another"));
        // Without the guard, wait would block forever.
        wg.wait();
        assert!(h.join().is_err());
        assert!(h2.join().is_err());
        assert_eq!(wg.count(), 0);
    });
}

/// Builds a chain of `depth` contexts under `root` (cancellable, valued and timed levels
/// mixed) and returns the leaf with every level's `CancelFunc`.
fn context_chain(root: &Context, depth: usize) -> (Context, Vec<context::CancelFunc>) {
    let mut leaf = root.clone();
    let mut funcs = Vec::with_capacity(depth);
    for i in 0..depth {
        leaf = match i % 3 {
            0 => {
                let (c, f) = context::with_cancel(&leaf);
                funcs.push(f);
                c
            }
            1 => context::with_value(&leaf, i),
            _ => {
                let (c, f) = context::with_timeout(&leaf, Duration::from_secs(3600));
                funcs.push(f);
                c
            }
        };
    }
    (leaf, funcs)
}

/// Cancelling and dropping chains of any depth costs no stack (as in Go): 100,000 levels on
/// a goroutine with the default stack, where recursion overflowed at about a thousand.
#[test]
fn context_chains_of_any_depth_cancel_and_drop_on_a_goroutine() {
    const DEPTH: usize = 100_000;
    run(1, || {
        gonet::go(|| {
            // Cancelled from the root; the leaf sees it at once.
            let (root, cancel) = context::with_cancel(&Context::background());
            let (leaf, funcs) = context_chain(&root, DEPTH);
            assert_eq!(leaf.err(), None);
            cancel.cancel();
            assert_eq!(leaf.err(), Some(context::Error::Canceled));
            assert!(leaf.done().recv().is_err(), "the leaf's done channel is not closed");
            assert_eq!(leaf.value::<usize>(), Some(&(DEPTH - 3)));
            drop((root, cancel));
            drop(leaf); // the contexts first, then the cancel nodes held by the funcs
            drop(funcs);
            // Never cancelled: dropped leaf first and root last, with the funcs gone first.
            let (leaf, funcs) = context_chain(&Context::background(), DEPTH);
            drop(funcs);
            drop(leaf);
            // Cancelled from the leaf's own func, then the root's: the chain unlinks upward.
            let (root, cancel) = context::with_cancel(&Context::background());
            let (leaf, funcs) = context_chain(&root, DEPTH);
            funcs.last().unwrap().cancel();
            assert_eq!(leaf.err(), Some(context::Error::Canceled));
            cancel.cancel();
            drop((funcs, root, leaf));
        })
        .join()
        .unwrap();
    });
}
