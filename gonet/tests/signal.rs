//! Signals and Go's fatal defaults, checked in child processes (this binary re-run with
//! `SIGNAL_TEST_CHILD` naming the scenario): `signal::notify` and `notify_context` deliver
//! SIGINT/SIGTERM/SIGQUIT and restore the default once stopped; SIGQUIT prints every goroutine
//! and exits 2 unless `GONET_TRACEBACK` says otherwise; a deadlock exits 2 unless
//! `GONET_DEADLOCK=warn`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gonet::chan;
use gonet::context::Context;
use gonet::signal::{self, Signal};

const CHILD: &str = "SIGNAL_TEST_CHILD";
const LIMIT: Duration = Duration::from_secs(30);

/// A child process and its stdout lines as they come.
struct Kid {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn spawn(scenario: &str, env: &[(&str, &str)]) -> Kid {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_entry", "--nocapture", "--include-ignored"])
        .env(CHILD, scenario)
        .env_remove("RUST_LOG")
        .env_remove("GONET_TRACEBACK")
        .env_remove("GONET_DEADLOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Kid { child, lines }
}

impl Kid {
    /// Waits for the child to print `line`.
    fn expect(&mut self, line: &str) {
        let t0 = Instant::now();
        loop {
            match self.lines.recv_timeout(LIMIT.saturating_sub(t0.elapsed())) {
                Ok(l) if l.trim() == line => return,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    let (_, err) = self.finish();
                    panic!("child never printed {line:?}; stderr:\n{err}");
                }
            }
        }
    }

    fn kill(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits for the child's end; its status and stderr.
    fn finish(&mut self) -> (ExitStatus, String) {
        let t0 = Instant::now();
        let st = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > LIMIT {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (st, err)
    }

    /// The rest of stdout, once the child has ended.
    fn rest(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

/// A runtime whose main goroutine sleeps (a timer pending: no deadlock) while a named
/// goroutine waits in `accept`.
fn serve_sleeping(ready: &str) {
    gonet::Builder::new().procs(2).build().unwrap().run({
        let ready = ready.to_string();
        move || {
            let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _acceptor = gonet::go_named("acceptor", move || {
                let _ = ln.accept();
            });
            println!("{ready}");
            gonet::time::sleep(Duration::from_secs(60));
        }
    });
}

/// The child side of the tests below (ignored unless run as a child).
#[test]
#[ignore = "run by the other tests as a child process"]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD) else { return };
    match scenario.as_str() {
        "serve" => serve_sleeping("ready"),
        "notify" => gonet::Builder::new().procs(2).build().unwrap().run(|| {
            let sigs = signal::notify(&[Signal::INTERRUPT, Signal::TERMINATE]).unwrap();
            let other = signal::notify(&[Signal::INTERRUPT]).unwrap();
            println!("ready");
            let (_never_tx, never) = chan::bounded::<()>(0);
            for _ in 0..2 {
                gonet::select! {
                    recv(sigs) -> s => println!("got {}", s.unwrap()),
                    recv(never) -> _ => unreachable!(),
                    recv(gonet::time::after(LIMIT)) -> _ => panic!("no signal came"),
                }
            }
            println!("other got {}", other.recv().unwrap());
            sigs.stop();
            drop(other);
            println!("stopped");
            gonet::time::sleep(Duration::from_secs(60)); // SIGINT's default ends it
            println!("survived");
        }),
        "notify-context" => gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let (ctx, stop) =
                signal::notify_context(&Context::background(), &[Signal::TERMINATE]).unwrap();
            println!("ready");
            gonet::select! {
                recv(ctx.done()) -> _ => {}
                recv(gonet::time::after(LIMIT)) -> _ => panic!("no signal came"),
            }
            println!("cancelled: {:?} by {}", ctx.err().unwrap(), stop.signal().unwrap());
        }),
        "notify-only" => gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let sigs = signal::notify(&[Signal::INTERRUPT]).unwrap();
            println!("ready");
            println!("got {}", sigs.recv().unwrap());
        }),
        "notify-quit" => gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let sigs = signal::notify(&[Signal::QUIT]).unwrap();
            println!("ready");
            println!("got {}", sigs.recv().unwrap());
        }),
        "deadlock" => gonet::Builder::new().procs(1).build().unwrap().run(|| {
            let (_tx, rx) = chan::bounded::<()>(0);
            let h = gonet::go_named("forgotten", move || {
                let _ = rx.recv();
            });
            let _ = h.join();
        }),
        s => panic!("unknown scenario {s}"),
    }
}

#[test]
fn notify_delivers_on_a_channel_and_stop_restores_the_default() {
    let mut k = spawn("notify", &[]);
    k.expect("ready");
    k.kill(libc::SIGTERM);
    k.expect("got terminated");
    k.kill(libc::SIGINT);
    k.expect("got interrupt");
    k.expect("other got interrupt");
    k.expect("stopped");
    k.kill(libc::SIGINT);
    let (st, err) = k.finish();
    assert_eq!(st.signal(), Some(libc::SIGINT), "the default action is back: {st:?}\n{err}");
    assert!(!k.rest().iter().any(|l| l == "survived"));
}

#[test]
fn waiting_only_for_a_signal_is_not_a_deadlock() {
    let mut k = spawn("notify-only", &[]);
    k.expect("ready");
    // Past the deadlock check's quiet second: the child must still be waiting.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(k.child.try_wait().unwrap(), None, "it waits for the signal");
    k.kill(libc::SIGINT);
    k.expect("got interrupt");
    let (st, err) = k.finish();
    assert!(st.success(), "{st:?}\n{err}");
    assert!(!err.contains("deadlock"), "stderr:\n{err}");
}

#[test]
fn notify_context_is_cancelled_by_the_signal() {
    let mut k = spawn("notify-context", &[]);
    k.expect("ready");
    k.kill(libc::SIGTERM);
    k.expect("cancelled: Canceled by terminated");
    let (st, err) = k.finish();
    assert!(st.success(), "{st:?}\n{err}");
}

#[test]
fn sigquit_prints_every_goroutine_and_exits_2_by_default() {
    let mut k = spawn("serve", &[]);
    k.expect("ready");
    k.kill(libc::SIGQUIT);
    let (st, err) = k.finish();
    assert_eq!(st.code(), Some(2), "Go's exit status: {st:?}\n{err}");
    assert!(err.contains("SIGQUIT: quit"), "stderr:\n{err}");
    assert!(err.contains("\"acceptor\" [accept, fd"), "stderr:\n{err}");
    assert!(err.contains("\"main\" [sleep"), "stderr:\n{err}");
    assert!(err.trim_end().ends_with("exit status 2"), "stderr:\n{err}");
}

#[test]
fn sigquit_keeps_its_default_action_with_gonet_traceback_0() {
    let mut k = spawn("serve", &[("GONET_TRACEBACK", "0")]);
    k.expect("ready");
    k.kill(libc::SIGQUIT);
    let (st, err) = k.finish();
    assert_eq!(st.signal(), Some(libc::SIGQUIT), "{st:?}\n{err}");
    assert!(!err.contains("goroutine"), "no dump:\n{err}");
}

#[test]
fn a_sigquit_registration_replaces_the_dump() {
    let mut k = spawn("notify-quit", &[]);
    k.expect("ready");
    k.kill(libc::SIGQUIT);
    k.expect("got quit");
    let (st, err) = k.finish();
    assert!(st.success(), "{st:?}\n{err}");
    assert!(!err.contains("SIGQUIT"), "no dump:\n{err}");
}

#[test]
fn a_deadlock_exits_2_by_default() {
    let mut k = spawn("deadlock", &[]);
    let (st, err) = k.finish();
    assert_eq!(st.code(), Some(2), "{st:?}\n{err}");
    assert!(err.contains("fatal error: all goroutines are asleep - deadlock!"), "{err}");
    assert!(err.contains("\"forgotten\" [chan receive"), "stderr:\n{err}");
    assert!(err.contains("\"main\" [join"), "stderr:\n{err}");
    assert!(err.contains("GONET_DEADLOCK=warn"), "names the way out:\n{err}");
}

#[test]
fn a_deadlock_only_warns_with_gonet_deadlock_warn() {
    let mut k = spawn("deadlock", &[("GONET_DEADLOCK", "warn")]);
    // The child never ends by itself: look at what it printed after a while.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(k.child.try_wait().unwrap(), None, "it runs on");
    let _ = k.child.kill();
    let (_, err) = k.finish();
    assert!(err.contains("all goroutines are asleep - possible deadlock!"), "stderr:\n{err}");
    assert!(!err.contains("fatal error"), "stderr:\n{err}");
}

#[test]
fn faults_and_uncatchable_signals_are_refused() {
    for n in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGBUS] {
        let s = Signal::from_raw(n).unwrap();
        let e = signal::notify(&[s]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{n}: {e}");
    }
    assert_eq!(Signal::from_raw(0), None);
    assert_eq!(Signal::from_raw(1000), None);
    assert_eq!(Signal::INTERRUPT.to_string(), "interrupt");
    assert_eq!(Signal::from_raw(libc::SIGTERM), Some(Signal::TERMINATE));
}

#[test]
fn bad_env_values_are_errors() {
    // Checked in a child, so this process's environment is left alone.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--include-ignored"])
        .env(CHILD, "serve")
        .env("GONET_TRACEBACK", "sometimes")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("GONET_TRACEBACK=") && err.contains("sometimes"), "stderr:\n{err}");
}
