//! The idle spin (`Builder::spin`): a worker that runs dry keeps polling for a bounded window,
//! catches work that arrives within it without sleeping, and stops spinning while its gaps
//! are longer than the window; in adaptive mode (the default) the window is what a sleep was
//! measured to cost. CPU time is measured on the worker's own thread.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::time::Duration;

use common::{thread_cpu, thread_voluntary_switches, within};
use gonet::net::TcpListener;

/// Nanoseconds the workers have spent spinning (`WorkerSnapshot::spin_ns`).
fn spin_ns() -> u64 {
    gonet::runtime::stats().expect("on a runtime").workers.iter().map(|w| w.spin_ns).sum()
}

fn spin_totals() -> (u64, u64, u64) {
    let s = gonet::runtime::stats().expect("on a runtime");
    s.workers.iter().fold((0, 0, 0), |(a, b, c), w| (a + w.spins, b + w.spin_hits, c + w.sleeps))
}

/// Request/response from a plain thread: every request comes within the (long) window, so
/// the worker catches each one spinning instead of sleeping.
#[test]
fn spinning_worker_catches_requests_without_sleeping() {
    within(Duration::from_secs(60), || {
        let rt = gonet::Builder::new().procs(1).spin(Duration::from_secs(2)).build().unwrap();
        rt.run(|| {
            let ln = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = ln.local_addr().unwrap();
            let client = std::thread::spawn(move || {
                let mut c = StdStream::connect(addr).unwrap();
                let mut b = [0u8; 8];
                for i in 0..200u64 {
                    // A pause before each request, so the worker surely runs dry (without
                    // it, a client the OS runs on the server's CPU can slip each request in
                    // while the server is still in `send`, and the server never waits).
                    std::thread::sleep(Duration::from_micros(50));
                    c.write_all(&i.to_le_bytes()).unwrap();
                    c.read_exact(&mut b).unwrap();
                    assert_eq!(u64::from_le_bytes(b), i);
                }
            });
            let (mut conn, _) = ln.accept().unwrap();
            let before = spin_totals();
            let spun_before = spin_ns();
            // The main goroutine runs on the only worker: its thread's switches are the worker's.
            let switches = thread_voluntary_switches();
            let mut b = [0u8; 8];
            for _ in 0..200 {
                conn.read_exact(&mut b).unwrap();
                conn.write_all(&b).unwrap();
            }
            let switches = thread_voluntary_switches() - switches;
            let after = spin_totals();
            let spun = spin_ns() - spun_before;
            gonet::blocking(move || client.join()).unwrap();
            let (spins, hits, sleeps) =
                (after.0 - before.0, after.1 - before.1, after.2 - before.2);
            // Each request arrives well within 2 s: nearly every run-dry is a spin that hits.
            assert!(hits >= 150, "{hits} of {spins} spins found work ({sleeps} sleeps)");
            assert!(sleeps <= 20, "{sleeps} sleeps for 200 requests within the window");
            // Each hit spun through the client's 50 µs pause, and stats() says so.
            assert!(spun >= hits * 20_000, "{spun} ns spent in {hits} spins that hit");
            // The kernel's view: a worker that slept in epoll_wait for each request would have
            // blocked ~200 times.
            assert!(
                switches <= 40,
                "the worker thread blocked {switches} times in the kernel for 200 requests"
            );
        });
    });
}

/// Gaps longer than the window: after one fruitless spin the worker sleeps at once, so a
/// goroutine that wakes every 5 ms costs almost no CPU even with a 2 ms window (a spin per
/// gap would burn ~200 ms here).
#[test]
fn spin_stops_while_gaps_are_longer_than_the_window() {
    within(Duration::from_secs(60), || {
        let rt = gonet::Builder::new().procs(1).spin(Duration::from_millis(2)).build().unwrap();
        rt.run(|| {
            gonet::time::sleep(Duration::from_millis(20));
            // The main goroutine runs on the only worker: its thread's CPU time is the spin's.
            let before = thread_cpu();
            let stats_before = spin_totals();
            for _ in 0..100 {
                gonet::time::sleep(Duration::from_millis(5));
            }
            let used = thread_cpu() - before;
            let after = spin_totals();
            let spins = after.0 - stats_before.0;
            assert!(spins <= 5, "{spins} spins for 100 gaps longer than the window");
            assert!(used < Duration::from_millis(60), "100 sleeps of 5 ms used {used:?} of CPU");
        });
    });
}

/// `spin(Duration::ZERO)` turns spinning off: the worker sleeps every time it runs dry.
#[test]
fn zero_window_never_spins() {
    within(Duration::from_secs(60), || {
        let rt = gonet::Builder::new().procs(1).spin(Duration::ZERO).build().unwrap();
        rt.run(|| {
            for _ in 0..20 {
                gonet::time::sleep(Duration::from_millis(1));
            }
            let (spins, hits, sleeps) = spin_totals();
            assert_eq!((spins, hits, spin_ns()), (0, 0, 0));
            assert!(sleeps >= 20, "{sleeps} sleeps for 20 timer waits");
        });
    });
}

/// Echoes `n` 8-byte requests from a plain thread, each after `gap`, on the main goroutine
/// (the only worker's), and returns the stats before and after.
fn serve_requests(n: u64, gap: Duration) -> (gonet::runtime::Stats, gonet::runtime::Stats) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut c = StdStream::connect(addr).unwrap();
        let mut b = [0u8; 8];
        for i in 0..n {
            std::thread::sleep(gap);
            c.write_all(&i.to_le_bytes()).unwrap();
            c.read_exact(&mut b).unwrap();
        }
    });
    let (mut conn, _) = ln.accept().unwrap();
    let before = gonet::runtime::stats().unwrap();
    let mut b = [0u8; 8];
    for _ in 0..n {
        conn.read_exact(&mut b).unwrap();
        conn.write_all(&b).unwrap();
    }
    let after = gonet::runtime::stats().unwrap();
    gonet::blocking(move || client.join()).unwrap();
    (before, after)
}

/// Adaptive mode measures what a sleep costs the worker (its thread's CPU clock around the
/// blocking `epoll_wait`) and spins no longer than that: with a 50 ms cap, the window comes
/// down from the cap to the measured cost — microseconds, not milliseconds, on any machine.
#[test]
fn adaptive_spin_is_capped_by_the_measured_cost_of_a_sleep() {
    within(Duration::from_secs(60), || {
        let cap = Duration::from_millis(50);
        let rt = gonet::Builder::new().procs(1).spin_mode(gonet::runtime::SpinMode::Adaptive(cap));
        rt.build().unwrap().run(move || {
            let w = &gonet::runtime::stats().unwrap().workers[0];
            assert_eq!(w.spin_window_ns, cap.as_nanos() as u64, "before any sleep: the cap");
            // Requests 8 ms apart: the worker really sleeps between them, and a load this
            // light runs no window comparison (16 dry spells take longer than EPOCH_MAX, so
            // no epoch is recorded and the worker keeps the short window: the one measured).
            let (_, after) = serve_requests(40, Duration::from_millis(8));
            let w = &after.workers[0];
            eprintln!("sleep cost {} ns over {} sleeps", w.sleep_cost_ns, w.sleeps);
            assert!(w.sleeps >= 20, "{} sleeps", w.sleeps);
            assert!(
                w.sleep_cost_ns > 0 && w.sleep_cost_ns < 2_000_000,
                "a sleep measured at {} ns of CPU",
                w.sleep_cost_ns
            );
            assert_eq!(
                w.spin_window_ns,
                2 * w.sleep_cost_ns,
                "the window is twice the measured cost"
            );
        });
    });
}

/// A worker serving one connection whose requests come slower than a sleep costs makes one
/// `epoll_wait` per request, as a hand-written loop does: no glance before each sleep (it
/// would find nothing), no spin.
#[test]
fn one_slow_connection_costs_one_poll_per_request() {
    within(Duration::from_secs(60), || {
        let rt = gonet::Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            let (before, after) = serve_requests(200, Duration::from_millis(1));
            let (b, a) = (&before.workers[0], &after.workers[0]);
            let polls = a.polls - b.polls;
            assert!(polls <= 240, "{polls} epoll_wait calls for 200 requests");
            assert!(a.spins - b.spins <= 20, "{} spins for gaps of 1 ms", a.spins - b.spins);
        });
    });
}

/// `GONET_SPIN_US`: a number is a fixed window, `auto[:MAX]` the adaptive mode.
#[test]
fn spin_env_selects_fixed_or_adaptive() {
    let window = |v: &str| {
        std::env::set_var("GONET_SPIN_US", v);
        let rt = gonet::Builder::new().procs(1).build().unwrap();
        std::env::remove_var("GONET_SPIN_US");
        rt.run(|| gonet::runtime::stats().unwrap().workers[0].spin_window_ns)
    };
    assert_eq!(window("35"), 35_000);
    assert_eq!(window("0"), 0);
    assert_eq!(window("auto:70"), 70_000);
    assert_eq!(window("auto"), gonet::runtime::DEFAULT_SPIN.as_nanos() as u64);
    for bad in ["auto:", "auto70", "auto:x", "-3"] {
        std::env::set_var("GONET_SPIN_US", bad);
        let err = gonet::Builder::new().build().unwrap_err();
        std::env::remove_var("GONET_SPIN_US");
        assert!(err.to_string().contains("GONET_SPIN_US"), "{bad}: {err}");
    }
}

/// A bad GONET_SPIN_US is a clear error from `build`, not a silent default.
#[test]
fn bad_spin_env_is_an_error() {
    // The other tests here set their window explicitly, so they never read the variable.
    std::env::set_var("GONET_SPIN_US", "fast");
    let err = gonet::Builder::new().build().unwrap_err();
    std::env::remove_var("GONET_SPIN_US");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("GONET_SPIN_US"), "{err}");
}

/// The spin budget (Go's `nmspinning` rule): a worker starts a spin only while twice the
/// spinning workers are fewer than the workers awake, so at most half of them ever spin.
/// Eight connections, one request every 2 ms each, a 50 ms window: every worker's gaps are
/// within the window, so without the budget all eight would spin nearly all the time.
#[test]
fn at_most_half_the_workers_spin() {
    const PROCS: usize = 8;
    within(Duration::from_secs(120), || {
        let rt = gonet::Builder::new().procs(PROCS).spin(Duration::from_millis(50)).build();
        rt.unwrap().run(|| {
            let ln = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = ln.local_addr().unwrap();
            let clients: Vec<_> = (0..PROCS)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut c = StdStream::connect(addr).unwrap();
                        let mut b = [0u8; 8];
                        for i in 0..150u64 {
                            std::thread::sleep(Duration::from_millis(2));
                            c.write_all(&i.to_le_bytes()).unwrap();
                            c.read_exact(&mut b).unwrap();
                        }
                    })
                })
                .collect();
            for _ in 0..PROCS {
                let (mut conn, _) = ln.accept().unwrap();
                gonet::go(move || {
                    let mut b = [0u8; 8];
                    while conn.read_exact(&mut b).is_ok() && conn.write_all(&b).is_ok() {}
                });
            }
            let mut most = 0;
            let mut seen = 0;
            for _ in 0..300 {
                let now = gonet::runtime::stats().unwrap().spinning;
                most = most.max(now);
                seen += now;
                gonet::time::sleep(Duration::from_millis(1));
            }
            for c in clients {
                gonet::blocking(move || c.join()).unwrap();
            }
            let (spins, hits, _) = spin_totals();
            assert!(most <= (PROCS / 2) as u64, "{most} of {PROCS} workers spun at once");
            assert!(seen > 0 && hits > 0, "no spin seen ({spins} spins, {hits} hits)");
        });
    });
}

/// The idle policy's unit of work (`WorkerSnapshot::inputs` plus wake-ups from other threads)
/// counts requests: about one input event per request that arrives, however the worker's
/// goroutine runs and its other events fall (goroutine runs plus input events, the unit it
/// replaced, would count two). Eight connections, each with one request outstanding at a
/// time, served by a goroutine each.
#[test]
fn input_events_count_one_per_request() {
    within(Duration::from_secs(60), || {
        let rt = gonet::Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            const CONNS: usize = 8;
            const ROUNDS: u64 = 50;
            let ln = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = ln.local_addr().unwrap();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let client = std::thread::spawn(move || {
                let mut cs: Vec<StdStream> =
                    (0..CONNS).map(|_| StdStream::connect(addr).unwrap()).collect();
                go_rx.recv().unwrap();
                let mut b = [0u8; 8];
                for r in 0..ROUNDS {
                    // Every connection's request first, then every answer: requests gather
                    // while the worker serves the others.
                    for c in &mut cs {
                        c.write_all(&r.to_le_bytes()).unwrap();
                    }
                    for c in &mut cs {
                        c.read_exact(&mut b).unwrap();
                        assert_eq!(b, r.to_le_bytes());
                    }
                }
            });
            let wg = gonet::sync::WaitGroup::new();
            for _ in 0..CONNS {
                let (mut conn, _) = ln.accept().unwrap();
                wg.go(move || {
                    let mut b = [0u8; 8];
                    for _ in 0..ROUNDS {
                        conn.read_exact(&mut b).unwrap();
                        conn.write_all(&b).unwrap();
                    }
                });
            }
            // Let the accepted connections' goroutines start and park.
            gonet::time::sleep(Duration::from_millis(20));
            let before = gonet::runtime::stats().unwrap();
            go_tx.send(()).unwrap();
            wg.wait();
            let after = gonet::runtime::stats().unwrap();
            gonet::blocking(move || client.join()).unwrap();
            let (b, a) = (&before.workers[0], &after.workers[0]);
            let inputs = a.inputs - b.inputs;
            let requests = CONNS as u64 * ROUNDS;
            let switches = a.switches - b.switches;
            eprintln!("{inputs} input events, {switches} goroutine runs for {requests} requests");
            // A goroutine that reads a request before the worker polls its event finds the
            // socket drained by then, and the event comes without EPOLLIN: a few per cent.
            assert!(
                (requests - requests / 10..=requests + requests / 10).contains(&inputs),
                "{inputs} input events for {requests} requests"
            );
        });
    });
}
