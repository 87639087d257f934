//! Helpers shared by the `net_*` integration tests: time-bounded test bodies, connected
//! pairs, temporary directories and a byte-pattern generator.

#![allow(dead_code)]

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gonet::net::{TcpListener, TcpStream};

#[path = "../common/mod.rs"]
mod common;
pub use common::within;
// Not every test file that includes this module dials a full listener.
#[allow(unused_imports)]
pub use common::full_backlog_listener;

/// Runs `f` as the main goroutine of a runtime with `procs` workers, bounded by `limit`.
pub fn run<T, F>(procs: usize, limit: Duration, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    within(limit, move || gonet::Builder::new().procs(procs).build().expect("runtime").run(f))
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An instant well in the past.
pub fn past() -> Instant {
    let now = Instant::now();
    now.checked_sub(Duration::from_secs(5)).unwrap_or(now)
}

/// The usual bound of a test body.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A loopback listener on an ephemeral port.
pub fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// A connected TCP pair `(client, server)`, on a goroutine or a plain thread.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let ln = listener();
    let addr = ln.local_addr().unwrap();
    let c = TcpStream::connect(addr).expect("connect");
    let (s, peer) = ln.accept().expect("accept");
    assert_eq!(peer, c.local_addr().unwrap());
    (c, s)
}

/// An address on which nothing listens (a port that was just bound and released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// Asserts that `r` failed with a timeout error.
#[track_caller]
pub fn assert_timeout<T: std::fmt::Debug>(r: io::Result<T>) {
    match r {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
        other => panic!("expected a TimedOut error, got {other:?}"),
    }
}

/// Asserts that `r` failed with the "use of closed network connection" error.
#[track_caller]
pub fn assert_closed<T: std::fmt::Debug>(r: io::Result<T>) {
    match r {
        Err(e) if gonet::net::is_closed(&e) => {}
        other => panic!("expected a closed-connection error, got {other:?}"),
    }
}

/// Asserts that an expired call took at least `at_least` (minus a little clock slack) and
/// returned well within a generous bound.
#[track_caller]
pub fn assert_took(start: Instant, at_least: Duration) {
    let took = start.elapsed();
    assert!(
        took + Duration::from_millis(2) >= at_least,
        "returned after {took:?}, before its deadline of {at_least:?}"
    );
    assert!(
        took < at_least + Duration::from_secs(5),
        "returned after {took:?}; expected ~{at_least:?}"
    );
}

/// Fills the socket's send buffer until a write would block, using a short write deadline;
/// returns the number of bytes accepted. The write deadline is cleared afterwards.
pub fn fill_send_buffer(s: &TcpStream) -> usize {
    s.set_write_deadline(Some(Instant::now() + Duration::from_millis(200))).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut total = 0;
    loop {
        match io::Write::write(&mut &*s, &chunk) {
            Ok(n) => total += n,
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::TimedOut, "filling the buffer: {e}");
                break;
            }
        }
    }
    s.set_write_deadline(None).unwrap();
    total
}

/// A directory under the system temp dir, unique to this process and call, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "gonet-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Block `k` of a deterministic byte stream, `buf.len()` bytes long (a multiple of 8): every
/// 8-byte word encodes its block and position, so a lost, duplicated or reordered chunk is
/// detected.
pub fn pattern_block(k: u64, buf: &mut [u8]) {
    debug_assert!(buf.len() % 8 == 0);
    let base = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (j, w) in buf.chunks_exact_mut(8).enumerate() {
        let v = base ^ (j as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17) ^ k;
        w.copy_from_slice(&v.to_le_bytes());
    }
}

/// Shuts down both halves, ignoring errors (used to make a peer see EOF).
pub fn hang_up(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Both);
}

/// Process CPU time (user + system) so far.
pub fn cpu_time() -> Duration {
    let ru = rusage(libc::RUSAGE_SELF);
    timeval(ru.ru_utime) + timeval(ru.ru_stime)
}

/// CPU time and voluntary context switches (times it blocked) of the calling thread so far.
pub fn thread_usage() -> (Duration, u64) {
    let ru = rusage(libc::RUSAGE_THREAD);
    (timeval(ru.ru_utime) + timeval(ru.ru_stime), ru.ru_nvcsw as u64)
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct.
    let r = unsafe { libc::getrusage(who, &mut ru) };
    assert_eq!(r, 0, "getrusage");
    ru
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000)
}

/// This process's descriptors that are anonymous inodes of `kind` (`eventpoll`, `eventfd`).
pub fn anon_inode_fds(kind: &str) -> Vec<i32> {
    let want = format!("anon_inode:[{kind}]");
    let mut fds = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want) {
            fds.extend(e.file_name().to_string_lossy().parse::<i32>());
        }
    }
    fds
}

/// Re-runs the current test binary for test `name` alone, with `env` set, and waits for it
/// (killing it after `limit`); returns its exit status and combined output.
pub fn run_child(
    name: &str,
    env: (&str, &str),
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child test process");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for child") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "child test {name} did not finish within {limit:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                t1.join().unwrap(),
                t2.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text =
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", t1.join().unwrap(), t2.join().unwrap());
    (status, text)
}
