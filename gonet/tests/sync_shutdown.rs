//! Goroutines parked on `sync` primitives when their runtime ends are unwound, and each one
//! withdraws its own waiter (found by goroutine id): a lock held by a plain thread stays held,
//! and after it is released the primitive works with no waiter of a dead goroutine left to
//! hand the lock to. An initialiser of `Once`/`OnceLock` cut short that way leaves the cell
//! not done, so the next runtime (or a thread) runs it again. (That no primitive keeps a dead
//! goroutine's waiter, and with it its worker's epoll instance, is `sync_shutdown_fds.rs`.)

mod common;

use common::end_runtime_with_parked;

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use gonet::sync::{Cond, Mutex, Once, OnceLock, RwLock, Semaphore};

const LIMIT: Duration = Duration::from_secs(60);

/// A plain thread that runs `hold` (which takes a lock and waits on the receiver before
/// letting go); returns once the lock is taken, with the sender that ends the wait.
fn on_thread(
    hold: impl FnOnce(mpsc::Sender<()>, mpsc::Receiver<()>) + Send + 'static,
) -> mpsc::Sender<()> {
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    thread::spawn(move || hold(held_tx, go_rx));
    held_rx.recv().unwrap();
    go_tx
}

/// Locks `m` on a plain thread until the returned sender is used (or dropped).
fn hold_on_thread(m: &Arc<Mutex<u64>>) -> mpsc::Sender<()> {
    let m = m.clone();
    on_thread(move |held, go| {
        let _g = m.lock();
        held.send(()).unwrap();
        let _ = go.recv();
    })
}

/// Holds `l` for reading on a plain thread until the returned sender is used (or dropped).
fn read_on_thread(l: &Arc<RwLock<u64>>) -> mpsc::Sender<()> {
    let l = l.clone();
    on_thread(move |held, go| {
        let _r = l.read();
        held.send(()).unwrap();
        let _ = go.recv();
    })
}

/// Returns once a writer waits for `l` (held for reading): new readers are refused from then on.
fn until_a_writer_queues(l: &RwLock<u64>) {
    while l.try_read().is_some() {
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn mutex_waiters_unwound_at_shutdown_leave_it_held_and_usable() {
    common::within(LIMIT, || {
        for procs in [1, 2] {
            let m = Arc::new(Mutex::new(0u64));
            let release = hold_on_thread(&m);
            let m3 = m.clone();
            end_runtime_with_parked(procs, 8, move || {
                *m3.lock() += 1;
            });
            assert!(
                m.try_lock().is_none(),
                "procs {procs}: a dead waiter released the thread's lock"
            );
            release.send(()).unwrap();
            // With a waiter left behind, this unlock would be handed to a dead goroutine.
            for _ in 0..3 {
                *m.lock() += 1;
            }
            assert_eq!(*m.lock(), 3, "procs {procs}: no unwound goroutine got the lock");
        }
    });
}

/// A plain thread queued on the mutex beside goroutines that are unwound at shutdown keeps
/// its place: each goroutine withdraws its own waiter and no other, so the thread gets the
/// lock when its holder lets go (a withdrawal that removed the first waiter of *another*
/// goroutine would drop the thread's waiter and leave a dead one to hand the lock to).
#[test]
fn a_thread_waiting_beside_unwound_goroutines_still_gets_the_mutex() {
    common::within(LIMIT, || {
        for (procs, goroutines) in [(1, 1), (1, 8), (2, 7)] {
            let m = Arc::new(Mutex::new(0u64));
            let release = hold_on_thread(&m);
            let m4 = m.clone();
            let waiter = thread::spawn(move || *m4.lock() += 100);
            // Let the thread queue its waiter first.
            thread::sleep(Duration::from_millis(30));
            let m3 = m.clone();
            end_runtime_with_parked(procs, goroutines, move || {
                *m3.lock() += 1;
            });
            release.send(()).unwrap();
            waiter.join().unwrap();
            assert_eq!(*m.lock(), 100, "procs {procs}: the thread's waiter was lost");
        }
    });
}

/// A thread holds the `RwLock` for reading; a goroutine queues to write, so a second reading
/// thread queues behind it (writers go first). When the runtime unwinds the goroutine, its
/// withdrawal must let the queued reader in at once, and leave the count of readers right.
#[test]
fn a_reader_queued_behind_an_unwound_writer_gets_in() {
    common::within(LIMIT, || {
        for procs in [1, 2] {
            let l = Arc::new(RwLock::new(0u64));
            let release = read_on_thread(&l);
            let (l2, (in_tx, in_rx)) = (l.clone(), mpsc::channel());
            let reader = thread::spawn(move || {
                until_a_writer_queues(&l2);
                let r = l2.read();
                in_tx.send(()).unwrap();
                drop(r);
            });
            let l3 = l.clone();
            end_runtime_with_parked(procs, 1, move || *l3.write() += 1);
            assert!(
                in_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
                "procs {procs}: the reader behind the unwound writer never got in"
            );
            reader.join().unwrap();
            release.send(()).unwrap();
            let w = (0..1000).find_map(|_| {
                thread::sleep(Duration::from_millis(1));
                l.try_write()
            });
            assert!(w.is_some(), "procs {procs}: the lock stayed taken after every reader left");
            assert_eq!(*w.unwrap(), 0, "procs {procs}: the unwound writer wrote");
        }
    });
}

/// Writers go first: a reader goroutine unwound from the queue behind a waiting writer must
/// not let the other queued readers in ahead of that writer.
#[test]
fn an_unwound_reader_does_not_let_readers_pass_a_waiting_writer() {
    common::within(LIMIT, || {
        let l = Arc::new(RwLock::new(0u64));
        let release = read_on_thread(&l);
        let (lw, lr) = (l.clone(), l.clone());
        let writer = thread::spawn(move || *lw.write() += 1);
        until_a_writer_queues(&l);
        let (in_tx, in_rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let v = *lr.read();
            in_tx.send(v).unwrap();
        });
        let lg = l.clone();
        end_runtime_with_parked(1, 2, move || {
            let _ = *lg.read();
        });
        assert!(
            in_rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "a reader passed the waiting writer"
        );
        release.send(()).unwrap();
        writer.join().unwrap();
        assert_eq!(
            in_rx.recv_timeout(Duration::from_secs(10)),
            Ok(1),
            "the reader came after the writer"
        );
        reader.join().unwrap();
    });
}

#[test]
fn rwlock_waiters_unwound_at_shutdown_leave_it_held_and_usable() {
    common::within(LIMIT, || {
        for procs in [1, 2] {
            let l = Arc::new(RwLock::new(0u64));
            let l2 = l.clone();
            let release = on_thread(move |held, go| {
                let _g = l2.write();
                held.send(()).unwrap();
                let _ = go.recv();
            });
            let l3 = l.clone();
            let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            end_runtime_with_parked(procs, 8, move || {
                // Half the goroutines wait to write, half to read.
                if turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 0 {
                    *l3.write() += 1;
                } else {
                    let _ = *l3.read();
                }
            });
            assert!(l.try_read().is_none(), "procs {procs}: a dead waiter released the writer");
            assert!(l.try_write().is_none(), "procs {procs}: a dead waiter released the writer");
            release.send(()).unwrap();
            for _ in 0..3 {
                *l.write() += 1;
                let _r = l.read();
            }
            assert_eq!(*l.read(), 3, "procs {procs}: no unwound goroutine got the lock");
        }
    });
}

/// A plain thread waits on the `Cond` first; goroutines unwound beside it withdraw their own
/// waiters, never the thread's, so a signal still reaches the thread.
#[test]
fn a_thread_waiting_beside_unwound_goroutines_still_gets_the_signal() {
    common::within(LIMIT, || {
        for (procs, goroutines) in [(1, 1), (2, 7)] {
            let pair = Arc::new((Mutex::new(0u64), Cond::new()));
            assert_eq!(format!("{:?}", pair.1), "Cond { .. }");
            let p = pair.clone();
            let waiter = thread::spawn(move || {
                let (m, c) = &*p;
                let mut g = m.lock();
                while *g == 0 {
                    g = c.wait(g);
                }
            });
            thread::sleep(Duration::from_millis(30)); // let the thread queue its waiter first
            let p2 = pair.clone();
            end_runtime_with_parked(procs, goroutines, move || {
                let (m, c) = &*p2;
                let _g = c.wait(m.lock());
            });
            let (m, c) = &*pair;
            *m.lock() = 1;
            c.signal();
            waiter.join().unwrap();
        }
    });
}

#[test]
fn cond_waiters_unwound_at_shutdown_are_withdrawn() {
    common::within(LIMIT, || {
        for procs in [1, 2] {
            let pair = Arc::new((Mutex::new(0u64), Cond::new()));
            let p2 = pair.clone();
            end_runtime_with_parked(procs, 8, move || {
                let (m, c) = &*p2;
                let g = m.lock();
                let _g = c.wait(g);
            });
            // A signal now must reach a live waiter, not a withdrawn dead one.
            let (m, c) = &*pair;
            let waiter = {
                let pair = pair.clone();
                thread::spawn(move || {
                    let (m, c) = &*pair;
                    let mut g = m.lock();
                    while *g == 0 {
                        g = c.wait(g);
                    }
                })
            };
            thread::sleep(Duration::from_millis(20));
            *m.lock() = 1;
            c.signal();
            waiter.join().unwrap();
            assert!(m.try_lock().is_some(), "procs {procs}: the mutex is free after the waits");
        }
    });
}

/// A thread holds every unit; goroutines queue for some and are unwound when the runtime
/// ends. Releasing the units must give them all back: a waiter left queued would be granted
/// units for a dead goroutine, which nobody could ever release.
#[test]
fn semaphore_waiters_unwound_at_shutdown_are_withdrawn() {
    common::within(LIMIT, || {
        for procs in [1, 2] {
            let sem = Arc::new(Semaphore::new(3));
            assert!(sem.try_acquire(3));
            let s2 = sem.clone();
            let turn = Arc::new(std::sync::atomic::AtomicU64::new(0));
            end_runtime_with_parked(procs, 6, move || {
                // Weights 1, 2, 3, 1, 2, 3: all fit once the thread lets go.
                let n = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 3 + 1;
                let _ = s2.acquire(n);
            });
            assert_eq!(sem.held(), 3, "procs {procs}: a dead waiter released the thread's units");
            sem.release(3);
            assert_eq!(sem.held(), 0, "procs {procs}: units granted to an unwound waiter");
            assert!(sem.try_acquire(3), "procs {procs}: the semaphore lost units");
            sem.release(3);
            // A waiter of a context-bounded acquire is withdrawn the same way.
            assert!(sem.try_acquire(3));
            let s3 = sem.clone();
            end_runtime_with_parked(procs, 2, move || {
                let (ctx, _cancel) =
                    gonet::context::with_cancel(&gonet::context::Context::background());
                let _ = s3.acquire_ctx(&ctx, 2);
            });
            sem.release(3);
            assert_eq!(sem.held(), 0, "procs {procs}: units granted to an unwound ctx waiter");
        }
    });
}

static ONCE: Once = Once::new();
static CELL: OnceLock<String> = OnceLock::new();

/// Parks forever (until its runtime ends and unwinds it).
fn park_forever() {
    gonet::time::sleep(Duration::from_secs(3600));
}

/// A `static Once` whose function is cut short by its runtime's end is not done: the next
/// runtime runs its own function. A `static OnceLock` likewise stays empty, never exposing a
/// value that was not fully set, and the next runtime's initialiser fills it.
#[test]
fn once_cut_short_by_a_runtime_end_is_run_again_by_the_next_runtime() {
    common::within(LIMIT, || {
        end_runtime_with_parked(1, 1, || ONCE.call_once(park_forever));
        assert!(!ONCE.is_completed(), "a Once cut short by the runtime's end counts as done");
        end_runtime_with_parked(1, 1, || {
            CELL.get_or_init(|| {
                park_forever();
                "half".to_string()
            });
        });
        assert!(CELL.get().is_none(), "the OnceLock exposes a value after an unwound init");
        let ran = common::run(1, || {
            let mut ran = false;
            ONCE.call_once(|| ran = true);
            (ran, CELL.get_or_init(|| "full".to_string()).clone())
        });
        assert!(ran.0, "the second runtime's call_once did not run its function");
        assert!(ONCE.is_completed());
        assert_eq!(ran.1, "full");
        assert_eq!(CELL.get().map(String::as_str), Some("full"));
    });
}

/// A thread waiting on a `Once` whose running initialiser (a goroutine) is unwound at
/// shutdown is woken and runs its own function.
#[test]
fn a_thread_waiting_on_an_unwound_once_runs_its_own_function() {
    common::within(LIMIT, || {
        let once = Arc::new(Once::new());
        let (o1, o2) = (once.clone(), once.clone());
        let (in_tx, in_rx) = mpsc::channel();
        let (waiting_tx, waiting_rx) = gonet::chan::unbounded::<()>();
        let runtime = thread::spawn(move || {
            gonet::Builder::new().procs(1).build().unwrap().run(move || {
                gonet::go(move || {
                    o1.call_once(|| {
                        in_tx.send(()).unwrap();
                        park_forever();
                    })
                });
                // Ends the runtime once the thread below waits on the Once.
                waiting_rx.recv().unwrap();
                gonet::time::sleep(Duration::from_millis(30));
            })
        });
        in_rx.recv().unwrap();
        let waiter = thread::spawn(move || {
            let mut ran = false;
            o2.call_once(|| ran = true);
            ran
        });
        thread::sleep(Duration::from_millis(30)); // let the thread park on the Once
        waiting_tx.send(()).unwrap();
        runtime.join().unwrap();
        assert!(waiter.join().unwrap(), "the waiting thread did not run its function");
        assert!(once.is_completed());
    });
}
