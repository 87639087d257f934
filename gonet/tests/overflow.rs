//! A goroutine that overflows its stack is reported as such (naming the goroutine and the
//! stack size) and the process aborts, instead of dying of a bare SIGSEGV. The overflow
//! happens in a child process: this test binary re-run with an environment variable.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const CHILD_ENV: &str = "GONET_OVERFLOW_TEST_CHILD";
const STACK: usize = 64 * 1024;

/// Recurses without bound, keeping a 1 KiB array alive in every frame.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 1024]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[0] as u64 + frame[1023] as u64)
}

/// On a kernel with guard regions the stack is a slot of a slab (`runtime/slab.rs`) whose
/// guard page lies inside one big mapping; the handler must recognise it there too.
#[test]
fn stack_overflow_is_reported_and_aborts() {
    overflow_in_child("stack_overflow_is_reported_and_aborts", None);
}

/// The same with one mapping per stack (the scheme of kernels before 6.13).
#[test]
fn stack_overflow_is_reported_without_slabs() {
    overflow_in_child("stack_overflow_is_reported_without_slabs", Some("0"));
}

fn overflow_in_child(name: &'static str, slabs: Option<&str>) {
    if std::env::var_os(CHILD_ENV).is_some() {
        gonet::Builder::new().procs(1).stack_size(STACK).build().unwrap().run(|| {
            let h = gonet::go(|| recurse(0));
            let _ = h.join();
        });
        unreachable!("the overflowing goroutine must abort the process");
    }

    let exe = std::env::current_exe().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture"]).env(CHILD_ENV, "1");
    if let Some(v) = slabs {
        cmd.env("GONET_STACK_SLABS", v);
    }
    thread::spawn(move || {
        let out = cmd.output();
        let _ = tx.send(out);
    });
    let out = rx.recv_timeout(Duration::from_secs(120)).expect("child did not finish").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "child must die by SIGABRT, not {:?}; stderr:\n{stderr}",
        out.status
    );
    assert!(stderr.contains("goroutine"), "stderr:\n{stderr}");
    assert!(stderr.contains("overflowed its stack"), "stderr:\n{stderr}");
    assert!(stderr.contains(&STACK.to_string()), "stderr does not name the stack size:\n{stderr}");
}
