//! Tasks: the futures that `gonet::hyper` runs (connections, HTTP/2 streams, whatever hyper
//! spawns through `Executor`) are polled by a few shared runner goroutines, not one goroutine
//! each — and may still block goroutine-style inside `poll`. These tests drive tasks through
//! the public `hyper::rt::Executor` and `Server`, and read `gonet::runtime::stats()`.
#![cfg(feature = "hyper")]

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::run;
use gonet::hyper::Executor;
use hyper::rt::Executor as _;

/// A gate futures wait on until it is opened; opening wakes every waiter, from any thread.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<(bool, Vec<Waker>)>>);

impl Gate {
    fn open(&self) {
        let wakers = {
            let mut g = self.0.lock().unwrap();
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        for w in wakers {
            w.wake();
        }
    }

    fn wait(&self) -> GateWait {
        GateWait(self.clone())
    }
}

struct GateWait(Gate);

impl Future for GateWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = (self.0).0.lock().unwrap();
        if g.0 {
            return Poll::Ready(());
        }
        g.1.push(cx.waker().clone());
        Poll::Pending
    }
}

fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    Executor.execute(fut);
}

fn worker_stats() -> Vec<gonet::runtime::WorkerSnapshot> {
    gonet::runtime::stats().unwrap().workers
}

fn live_goroutines() -> u64 {
    worker_stats().iter().map(|w| w.live).sum()
}

fn homed_tasks() -> u64 {
    worker_stats().iter().map(|w| w.tasks).sum()
}

/// Yields until `cond` holds, failing after many tries (no timing assertion: the bound is
/// only there so that a bug fails instead of hanging).
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200_000 {
        if cond() {
            return;
        }
        gonet::yield_now();
    }
    panic!("never happened: {what}");
}

#[test]
fn pending_tasks_hold_no_goroutine_of_their_own() {
    run(1, || {
        let gate = Gate::default();
        let done = Arc::new(AtomicUsize::new(0));
        let before = live_goroutines();
        for _ in 0..200 {
            let (gate, done) = (gate.clone(), done.clone());
            spawn(async move {
                gate.wait().await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Let every task run once and park on the gate.
        until("200 tasks homed", || homed_tasks() == 200);
        gonet::yield_now();
        assert_eq!(done.load(Ordering::SeqCst), 0);
        // 200 pending futures, one runner goroutine (idle now) for all of them.
        let runners = live_goroutines() - before;
        assert!(runners <= 1, "{runners} goroutines for 200 pending tasks");
        gate.open();
        until("every task finished", || done.load(Ordering::SeqCst) == 200);
        until("no task homed", || homed_tasks() == 0);
    });
}

/// Spawns `n` tasks that each send their number, and checks that all `n` arrive.
fn spawn_senders_and_collect(n: usize) {
    let (tx, rx) = gonet::chan::bounded::<usize>(n);
    for i in 0..n {
        let tx = tx.clone();
        spawn(async move {
            tx.send(i).unwrap();
        });
    }
    let mut got: Vec<usize> = (0..n).map(|_| rx.recv().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..n).collect::<Vec<_>>());
}

#[test]
fn a_task_blocked_goroutine_style_does_not_stall_the_others() {
    run(1, || {
        let (block_tx, block_rx) = gonet::chan::bounded::<()>(0);
        // Blocks its runner inside `poll`: a channel receive, goroutine-style.
        spawn(async move {
            block_rx.recv().unwrap();
        });
        until("the blocker runs", || homed_tasks() == 1 && live_goroutines() >= 2);
        gonet::yield_now();
        spawn_senders_and_collect(20);
        assert_eq!(homed_tasks(), 1, "the blocked task is still there");
        block_tx.send(()).unwrap();
        until("the blocked task finished", || homed_tasks() == 0);
    });
}

#[test]
fn tasks_queued_behind_a_task_that_blocks_get_another_runner() {
    run(1, || {
        let (block_tx, block_rx) = gonet::chan::bounded::<()>(0);
        // All queued before any runs: the first blocks the runner with 20 tasks behind it.
        spawn(async move {
            block_rx.recv().unwrap();
        });
        spawn_senders_and_collect(20);
        block_tx.send(()).unwrap();
        until("the blocked task finished", || homed_tasks() == 0);
    });
}

/// Wakes its own task, then is pending once: tokio's `yield_now`.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_wake_during_its_own_poll_polls_the_task_again() {
    run(1, || {
        let (tx, rx) = gonet::chan::bounded::<u32>(1);
        spawn(async move {
            for _ in 0..100 {
                YieldOnce(false).await;
            }
            tx.send(100).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), 100);
        until("no task homed", || homed_tasks() == 0);
    });
}

#[test]
fn many_tasks_blocking_at_once_all_finish() {
    run(2, || {
        let (done_tx, done_rx) = gonet::chan::bounded::<()>(1000);
        for i in 0..100u64 {
            let tx = done_tx.clone();
            spawn(async move {
                // Blocks the runner; every task queued behind it needs another runner.
                gonet::time::sleep(Duration::from_millis(1 + i % 7));
                tx.send(()).unwrap();
            });
        }
        for _ in 0..100 {
            done_rx.recv().unwrap();
        }
        until("no task homed", || homed_tasks() == 0);
    });
}

#[test]
fn a_wake_from_a_plain_thread_reaches_the_task_and_late_wakes_do_nothing() {
    run(2, || {
        let gate = Gate::default();
        let kept: Arc<Mutex<Option<Waker>>> = Arc::default();
        let (tx, rx) = gonet::chan::bounded::<u32>(1);
        {
            let (gate, kept) = (gate.clone(), kept.clone());
            spawn(async move {
                std::future::poll_fn(|cx| {
                    *kept.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Ready(())
                })
                .await;
                gate.wait().await;
                tx.send(7).unwrap();
            });
        }
        until("the task waits", || kept.lock().unwrap().is_some());
        let g = gate.clone();
        std::thread::spawn(move || g.open()).join().unwrap();
        assert_eq!(rx.recv().unwrap(), 7);
        until("no task homed", || homed_tasks() == 0);
        // The finished task's waker, woken from a goroutine and from a thread: nothing runs.
        let w = kept.lock().unwrap().take().unwrap();
        w.wake_by_ref();
        std::thread::spawn(move || w.wake()).join().unwrap();
        gonet::yield_now();
        assert_eq!(homed_tasks(), 0);
    });
}

#[test]
fn a_panicking_task_is_contained_and_the_runner_goes_on() {
    run(1, || {
        let (tx, rx) = gonet::chan::bounded::<u32>(10);
        spawn(async {
            panic!("task boom");
        });
        for i in 0..3 {
            let tx = tx.clone();
            spawn(async move {
                tx.send(i).unwrap();
            });
        }
        let mut got: Vec<u32> = (0..3).map(|_| rx.recv().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
        until("no task homed", || homed_tasks() == 0);
    });
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn shutdown_drops_pending_blocked_and_queued_tasks() {
    let pending = Arc::new(AtomicBool::new(false));
    let blocked = Arc::new(AtomicBool::new(false));
    let (p, b) = (pending.clone(), blocked.clone());
    run(1, move || {
        let gate = Gate::default();
        let flag = DropFlag(p);
        let g = gate.clone();
        spawn(async move {
            let _flag = flag;
            g.wait().await; // never opened
        });
        let flag = DropFlag(b);
        let (_keep_tx, rx) = gonet::chan::bounded::<()>(0);
        spawn(async move {
            let _flag = flag;
            let _ = rx.recv(); // blocks its runner; never sent to
        });
        until("both tasks homed", || homed_tasks() == 2);
        for _ in 0..10 {
            gonet::yield_now(); // both polled: one pending, one blocking the runner
        }
        // Leak the gate's wakers with it: only the runtime's shutdown can drop the futures.
        std::mem::forget(gate);
    });
    assert!(pending.load(Ordering::SeqCst), "a pending task's future was not dropped");
    assert!(blocked.load(Ordering::SeqCst), "a blocked task's future was not dropped");
}

#[test]
fn server_connections_spread_over_the_workers_as_tasks() {
    const WORKERS: usize = 4;
    const CONNS: usize = 16;
    run(WORKERS, || {
        let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let server = gonet::hyper::Server::new();
        let h = server.handle();
        let svc = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"hi"),
            )))
        });
        gonet::go(move || server.serve(ln, svc).unwrap());
        // Clients on plain threads, connecting one at a time; each keeps its connection open
        // after one request until told to finish.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let hold_rx = Arc::new(Mutex::new(hold_rx));
        let mut clients = Vec::new();
        for _ in 0..CONNS {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let hold = hold_rx.clone();
            clients.push(std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).unwrap();
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
                ready_tx.send(()).unwrap();
                let _ = hold.lock().unwrap().recv();
            }));
            gonet::blocking(move || ready_rx.recv().unwrap());
        }
        let per: Vec<u64> = worker_stats().iter().map(|w| w.tasks).collect();
        assert_eq!(per.iter().sum::<u64>(), CONNS as u64, "tasks per worker: {per:?}");
        let max = CONNS.div_ceil(WORKERS) as u64 + 1;
        assert!(per.iter().all(|&n| n >= 1 && n <= max), "tasks per worker: {per:?}");
        drop(hold_tx);
        for c in clients {
            c.join().unwrap();
        }
        assert!(h.shutdown(std::time::Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn pooled_client_connections_hold_no_goroutine_of_their_own() {
    const CONNS: usize = 20;
    run(1, || {
        let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", ln.local_addr().unwrap());
        let server = gonet::hyper::Server::new();
        let h = server.handle();
        // Every request waits until all CONNS are in flight, so the client must open CONNS
        // connections (none can be reused meanwhile).
        let gate = Gate::default();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let svc = {
            let (gate, in_flight) = (gate.clone(), in_flight.clone());
            hyper::service::service_fn(move |_req| {
                let (gate, in_flight) = (gate.clone(), in_flight.clone());
                async move {
                    if in_flight.fetch_add(1, Ordering::SeqCst) + 1 == CONNS {
                        gate.open();
                    }
                    gate.wait().await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"hi")),
                    ))
                }
            })
        };
        gonet::go(move || server.serve(ln, svc).unwrap());
        let client = gonet::hyper::Client::builder().max_idle_per_host(CONNS).build();
        let before = live_goroutines();
        let getters: Vec<_> = (0..CONNS)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                gonet::go(move || client.get(&url).unwrap().into_body())
            })
            .collect();
        for g in getters {
            assert_eq!(g.join().unwrap(), "hi");
        }
        assert_eq!(client.idle_connections(), CONNS, "connections back in the pool");
        // CONNS client drivers and CONNS server connections, all tasks; what goroutines are
        // left over are the runners that polled them.
        until("the getters have exited", || live_goroutines() <= before + 2);
        assert!(homed_tasks() >= 2 * CONNS as u64, "{} tasks", homed_tasks());
        // The pooled connections still work: a sequential get reuses one of them.
        assert_eq!(client.get(&url).unwrap().into_body(), "hi");
        assert_eq!(client.idle_connections(), CONNS);
        client.close_idle_connections();
        assert!(h.shutdown(std::time::Instant::now() + Duration::from_secs(5)));
    });
}
