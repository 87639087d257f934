//! The goroutine dump (`gonet::runtime::dump`, SIGQUIT with tracebacks on) and the reports
//! that reach stderr without a logger: stalls, possible deadlocks, panics naming their
//! goroutine. Reports to stderr are checked in child processes (this binary re-run with
//! `DUMP_TEST_CHILD` naming the scenario).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::chan;
use gonet::net::{TcpListener, TcpStream};
use gonet::sync::{Mutex, WaitGroup};

const CHILD: &str = "DUMP_TEST_CHILD";

#[inline(never)]
fn waits_on_channel(rx: chan::Receiver<()>) {
    let _ = std::hint::black_box(rx.recv());
}

#[inline(never)]
fn waits_to_send(tx: chan::Sender<u8>) {
    let _ = std::hint::black_box(tx.send(1));
}

#[inline(never)]
fn waits_in_select(a: chan::Receiver<()>, b: chan::Receiver<()>) {
    let i = gonet::select! {
        recv(a) -> _v => 0,
        recv(b) -> _v => 1,
    };
    std::hint::black_box(i);
}

#[inline(never)]
fn waits_asleep() {
    gonet::time::sleep(Duration::from_secs(30));
    std::hint::black_box(());
}

#[inline(never)]
fn waits_to_read(mut c: TcpStream) {
    let mut b = [0u8; 8];
    let _ = std::hint::black_box(c.read(&mut b));
}

#[inline(never)]
fn waits_to_accept(ln: TcpListener) {
    let _ = std::hint::black_box(ln.accept());
}

#[inline(never)]
fn waits_on_mutex(m: Arc<Mutex<()>>) {
    drop(std::hint::black_box(m.lock()));
}

#[inline(never)]
fn waits_on_group(wg: WaitGroup) {
    wg.wait();
    std::hint::black_box(());
}

#[inline(never)]
fn waits_to_join(h: gonet::JoinHandle<()>) {
    let _ = h.join();
}

#[inline(never)]
fn waits_on_blocking(stop: Arc<AtomicBool>) {
    let n = gonet::blocking(move || {
        let t0 = Instant::now();
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
            n += 1;
        }
        n
    });
    std::hint::black_box(n);
}

/// The dump names every kind of wait, the spawn site and a function of the goroutine's own
/// code in its backtrace.
#[test]
fn dump_names_each_wait() {
    common::run(2, || {
        let (_ctx, crx) = chan::bounded::<()>(0);
        let (stx, _srx) = chan::bounded::<u8>(0);
        let (_a, arx) = chan::bounded::<()>(0);
        let (_b, brx) = chan::bounded::<()>(0);
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = ln.accept().unwrap();
        let ln2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let m = Arc::new(Mutex::new(()));
        let held = m.lock();
        let wg = WaitGroup::new();
        wg.add(1);
        let stop = Arc::new(AtomicBool::new(false));
        let (rel_tx, rel_rx) = chan::bounded::<()>(0);
        let joined = gonet::go(move || {
            let _ = rel_rx.recv();
        });

        let mut hs = vec![
            gonet::go_named("receiver", move || waits_on_channel(crx)),
            gonet::go_named("sender", move || waits_to_send(stx)),
            gonet::go_named("selector", move || waits_in_select(arx, brx)),
            gonet::go_named("sleeper", waits_asleep),
            gonet::go_named("reader", move || waits_to_read(server)),
            gonet::go_named("acceptor", move || waits_to_accept(ln2)),
            gonet::go_named("locker", {
                let m = m.clone();
                move || waits_on_mutex(m)
            }),
            gonet::go_named("grouper", {
                let wg = wg.clone();
                move || waits_on_group(wg)
            }),
            gonet::go_named("joiner", move || waits_to_join(joined)),
            gonet::go_named("blocker", {
                let stop = stop.clone();
                move || waits_on_blocking(stop)
            }),
        ];
        let spawn_line = line!() - 24; // the line of the first go_named above
        gonet::time::sleep(Duration::from_millis(300));

        let d = gonet::runtime::dump();
        let text = d.to_string();
        let expect = [
            ("receiver", "chan receive", "waits_on_channel"),
            ("sender", "chan send", "waits_to_send"),
            ("selector", "select", "waits_in_select"),
            ("sleeper", "sleep", "waits_asleep"),
            ("reader", "IO wait", "waits_to_read"),
            ("acceptor", "accept", "waits_to_accept"),
            ("locker", "sync.Mutex.Lock", "waits_on_mutex"),
            ("grouper", "sync.WaitGroup.Wait", "waits_on_group"),
            ("joiner", "join", "waits_to_join"),
            ("blocker", "blocking", "waits_on_blocking"),
        ];
        for (name, state, func) in expect {
            let g = d
                .goroutines()
                .iter()
                .find(|g| g.name() == Some(name))
                .unwrap_or_else(|| panic!("no goroutine {name:?} in the dump:\n{text}"));
            assert!(g.state().starts_with(state), "{name}: state {:?}, want {state}", g.state());
            assert!(g.spawn_site().file().ends_with("dump.rs"), "{name}: {}", g.spawn_site());
            // The goroutine's own section names its function.
            let header = format!("goroutine {} {name:?} [", g.id());
            let at = text.find(&header).unwrap_or_else(|| panic!("no header {header}:\n{text}"));
            let section = &text[at..text[at..].find("\n\n").map_or(text.len(), |e| at + e)];
            assert!(section.contains(func), "{name}: no {func} in its backtrace:\n{section}");
        }
        let reader = d.goroutines().iter().find(|g| g.name() == Some("reader")).unwrap();
        assert!(reader.state().contains("read"), "{}", reader.state());
        assert!(reader.state().contains(&addr.to_string()), "{}", reader.state());
        assert!(
            text.contains(&format!("dump.rs:{spawn_line}")),
            "spawn line {spawn_line}:\n{text}"
        );
        // The caller is in the dump too, running.
        assert!(text.contains("[running, worker"), "{text}");

        // Release everyone.
        drop(held);
        wg.done();
        stop.store(true, Ordering::Relaxed);
        drop(rel_tx);
        drop(_ctx);
        drop(_srx);
        drop(_a);
        drop(client);
        let _ = TcpStream::connect(ln.local_addr().unwrap());
        hs.remove(3); // the sleeper sleeps on; the runtime drops it at the end
        hs.remove(4); // the acceptor's listener gets no connection
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// A user function whose last call parks (`sleep`, a receive, a wait) would tail-call it,
/// and its frame would be gone from the dump; gonet's blocking entry points keep the
/// caller's frame (Go shows `main.f` there). Nothing follows the call in these functions.
#[inline(never)]
fn sleeps_last() {
    gonet::time::sleep(Duration::from_secs(30))
}

#[inline(never)]
fn receives_last(rx: &chan::Receiver<()>) {
    let _ = rx.recv();
}

#[inline(never)]
fn waits_last(wg: &WaitGroup) {
    wg.wait()
}

#[test]
fn dump_shows_a_function_whose_last_call_parks() {
    common::run(1, || {
        let (tx, rx) = chan::bounded::<()>(0);
        let wg = WaitGroup::new();
        wg.add(1);
        let w = wg.clone();
        let hs = [
            gonet::go_named("last-sleep", sleeps_last),
            gonet::go_named("last-recv", move || receives_last(&rx)),
            gonet::go_named("last-wait", move || waits_last(&w)),
        ];
        gonet::time::sleep(Duration::from_millis(100));
        let text = gonet::runtime::dump().to_string();
        for (name, func) in [
            ("last-sleep", "sleeps_last"),
            ("last-recv", "receives_last"),
            ("last-wait", "waits_last"),
        ] {
            let at = text
                .find(&format!("{name:?} ["))
                .unwrap_or_else(|| panic!("no goroutine {name}:\n{text}"));
            let section = &text[at..text[at..].find("\n\n").map_or(text.len(), |e| at + e)];
            assert!(section.contains(func), "{name}: no {func} in its backtrace:\n{section}");
        }
        drop(tx);
        wg.done();
        let [_sleeper, r, w] = hs;
        r.join().unwrap();
        w.join().unwrap();
    });
}

/// Dumps taken while goroutines come and go on every worker neither crash nor hang.
#[test]
fn dump_during_churn() {
    common::run(2, || {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let churners: Vec<_> = (0..4)
            .map(|_| {
                let (stop, done) = (stop.clone(), done.clone());
                gonet::go(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let (tx, rx) = chan::bounded::<u32>(0);
                        let hs: Vec<_> = (0..50)
                            .map(|i| {
                                let tx = tx.clone();
                                gonet::go(move || {
                                    let _ = tx.send(i);
                                    gonet::yield_now();
                                })
                            })
                            .collect();
                        drop(tx);
                        while rx.recv().is_ok() {}
                        for h in hs {
                            h.join().unwrap();
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let t0 = Instant::now();
        let mut dumps = 0;
        while t0.elapsed() < Duration::from_secs(2) || dumps < 5 {
            let d = gonet::runtime::dump();
            assert!(!d.goroutines().is_empty());
            let _ = d.to_string();
            dumps += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for h in churners {
            h.join().unwrap();
        }
        assert!(done.load(Ordering::Relaxed) > 0, "no churn happened");
    });
}

/// Runs this test binary as a child for `scenario`; returns (stderr so far, the child).
fn child(scenario: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_entry", "--nocapture", "--include-ignored"])
        .env(CHILD, scenario)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

fn finish(mut c: std::process::Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (st, err);
        }
        if t0.elapsed() > limit {
            let _ = c.kill();
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("child did not finish within {limit:?}; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child side of the tests below (ignored unless run as a child).
#[test]
#[ignore = "run by the other tests as a child process"]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD) else { return };
    match scenario.as_str() {
        "sigquit" => {
            gonet::Builder::new().procs(1).traceback(true).build().unwrap().run(|| {
                let ln = TcpListener::bind("127.0.0.1:0").unwrap();
                println!("{}", ln.local_addr().unwrap());
                std::io::stdout().flush().unwrap();
                loop {
                    let (mut c, _) = ln.accept().unwrap();
                    gonet::go_named("echo conn", move || {
                        let mut b = [0u8; 64];
                        while let Ok(n @ 1..) = c.read(&mut b) {
                            if c.write_all(&b[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            });
        }
        "stall" => {
            gonet::Builder::new().procs(1).build().unwrap().run(|| {
                gonet::go_named("sleepy", || std::thread::sleep(Duration::from_millis(400)))
                    .join()
                    .unwrap();
            });
        }
        "deadlock" => {
            gonet::Builder::new().procs(1).build().unwrap().run(|| {
                let (_tx, rx) = chan::bounded::<()>(0);
                let _ = std::hint::black_box(&_tx);
                let h = gonet::go_named("forgotten", move || {
                    let _ = rx.recv();
                });
                let _ = h.join();
            });
        }
        "panic" => {
            gonet::Builder::new().procs(1).build().unwrap().run(|| {
                let h = gonet::go_named("doomed", || panic!("boom"));
                let p = h.join().unwrap_err();
                assert_eq!(p.downcast_ref::<&str>(), Some(&"boom"));
                println!("joined the payload");
            });
        }
        "dump-in-goroutine" => {
            gonet::Builder::new().procs(1).build().unwrap().run(|| {
                let (_tx, rx) = chan::bounded::<()>(0);
                let _waiters: Vec<_> = (0..20)
                    .map(|_| {
                        let rx = rx.clone();
                        gonet::go_named("waiter", move || waits_on_channel(rx))
                    })
                    .collect();
                gonet::yield_now();
                let text = gonet::go_named("dumper", || gonet::runtime::dump().to_string())
                    .join()
                    .unwrap();
                assert!(text.contains("waits_on_channel"), "symbolised:\n{text}");
                println!("dump of {} bytes", text.len());
            });
        }
        s => panic!("unknown scenario {s}"),
    }
}

#[test]
fn sigquit_prints_a_dump_and_the_child_serves_on() {
    let mut c = child("sigquit", &[]);
    // The child's stdout holds the test harness's lines, then the server's address.
    let mut out = c.stdout.take().unwrap();
    let addr: std::net::SocketAddr = loop {
        let mut line = String::new();
        let mut b = [0u8; 1];
        while !line.ends_with('\n') {
            assert_eq!(out.read(&mut b).unwrap(), 1, "child closed stdout");
            line.push(b[0] as char);
        }
        if let Ok(a) = line.trim().parse() {
            break a;
        }
    };
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let echo = |conn: &mut std::net::TcpStream| {
        conn.write_all(b"ping").unwrap();
        let mut r = [0u8; 4];
        conn.read_exact(&mut r).unwrap();
        assert_eq!(&r, b"ping");
    };
    echo(&mut conn);
    let err = Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = c.stderr.take().unwrap();
    let sink = err.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut b) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&b[..n]));
        }
    });
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) }, 0);
    let t0 = Instant::now();
    // The dump is complete once the last goroutine's spawn site is printed.
    while !err.lock().unwrap().contains("\"echo conn\" [") || !err.lock().unwrap().ends_with("\n\n")
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "no dump:\n{}", err.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    echo(&mut conn); // still serving
    let mut conn2 = std::net::TcpStream::connect(addr).unwrap();
    conn2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    echo(&mut conn2);
    assert_eq!(c.try_wait().unwrap(), None, "the child must keep running");
    let _ = c.kill();
    let _ = c.wait();
    let err = err.lock().unwrap().clone();
    assert!(err.contains("goroutine dump"), "stderr:\n{err}");
    assert!(err.contains("\"echo conn\" [IO wait, fd"), "stderr:\n{err}");
    assert!(err.contains("\"main\" [accept"), "stderr:\n{err}");
}

#[test]
fn stall_is_reported_on_stderr_without_a_logger() {
    let (st, err) = finish(child("stall", &[]), Duration::from_secs(30));
    assert!(st.success(), "stderr:\n{err}");
    assert_eq!(err.matches("without parking or yielding").count(), 1, "once per stall:\n{err}");
    assert!(err.contains("\"sleepy\""), "stderr:\n{err}");
    assert!(err.contains("dump.rs:"), "names the spawn site:\n{err}");
    let (st, err) = finish(child("stall", &[("GONET_REPORTS", "off")]), Duration::from_secs(30));
    assert!(st.success());
    assert!(!err.contains("without parking"), "reports off:\n{err}");
}

#[test]
fn deadlock_is_reported_on_stderr_without_a_logger() {
    // Warn only (the default exits 2: tests/signal.rs).
    let c = child("deadlock", &[("GONET_DEADLOCK", "warn")]);
    let t0 = Instant::now();
    // The child never ends by itself: read what it printed after a while.
    std::thread::sleep(Duration::from_millis(2500));
    let mut c = c;
    let _ = c.kill();
    let (_, err) = finish(c, Duration::from_secs(10));
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(err.contains("possible deadlock"), "stderr:\n{err}");
    assert!(err.contains("\"forgotten\" [chan receive"), "stderr:\n{err}");
    assert!(err.contains("\"main\" [join"), "stderr:\n{err}");
}

#[test]
fn a_goroutine_formatting_a_dump_is_not_reported_as_a_stall() {
    let (st, err) = finish(child("dump-in-goroutine", &[]), Duration::from_secs(60));
    assert!(st.success(), "stderr:\n{err}");
    assert!(!err.contains("without parking"), "the symbol lookup is not a stall:\n{err}");
}

#[test]
fn panic_message_names_its_goroutine() {
    // Stall reports off: printing a panic's backtrace may hold the worker long enough for
    // one, and it names the goroutine too.
    let (st, err) = finish(child("panic", &[("GONET_REPORTS", "off")]), Duration::from_secs(30));
    assert!(st.success(), "join returns the payload; stderr:\n{err}");
    assert!(err.contains("panicked"), "stderr:\n{err}");
    assert!(err.contains("goroutine "), "stderr:\n{err}");
    assert!(err.contains("\"doomed\""), "stderr:\n{err}");
    assert!(err.contains("dump.rs:"), "names the spawn site:\n{err}");
    assert!(err.contains("boom"), "stderr:\n{err}");
}

/// `GoroutineDump::worker` and `waited`: a goroutine parked on a channel reports the worker
/// it runs on (where the statistics count it live) and how long it has waited (at least the
/// caller's sleep since it parked); the caller, running, has no wait.
#[test]
fn dump_gives_each_goroutines_worker_and_wait() {
    common::run(2, || {
        let (tx, rx) = chan::bounded::<()>(0);
        let h = gonet::go_named("waiter", move || {
            let _ = rx.recv();
        });
        gonet::time::sleep(Duration::from_millis(50));
        let d = gonet::runtime::dump();
        let w = d.goroutines().iter().find(|g| g.name() == Some("waiter")).expect("listed");
        assert!(w.worker() < 2, "{d}");
        let waited = w.waited().expect("a parked goroutine has a wait");
        assert!(waited >= Duration::from_millis(10), "waited {waited:?} after a 50 ms sleep");
        let live = gonet::runtime::stats().unwrap().workers[w.worker()].live;
        assert!(live >= 1, "worker {} counts {live} live goroutines", w.worker());
        let me = d.goroutines().iter().find(|g| g.name() == Some("main")).expect("listed");
        assert_eq!(me.waited(), None, "{d}");
        drop(tx);
        h.join().unwrap();
    });
}
