//! Helpers shared by the integration test files: time-bounded test bodies, CPU time, the
//! descriptor limit, and child processes of the interop tests (`openssl`).
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Runs `f` on its own thread and panics if it has not finished within `limit`, so that a
/// hang in the code under test fails the test instead of stalling the suite. A panic in `f`
/// is propagated.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn test body");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => panic::resume_unwind(p),
        Err(_) => panic!("test body did not finish within {limit:?} (hang)"),
    }
}

/// Runs `f` as the main goroutine of a runtime with `procs` workers, bounded in time.
pub fn run<T: Send + 'static>(procs: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(60), move || {
        let mut b = gonet::Builder::new().procs(procs);
        if cfg!(debug_assertions) {
            // Unoptimized, hyper's, h2's and rustls's futures sit whole on the goroutine's
            // stack: an HTTPS client overflows the default 256 KiB (not in the optimized `ci`
            // profile the README's test command uses).
            b = b.stack_size(1 << 20);
        }
        b.build().unwrap().run(f)
    })
}

/// CPU time (user + system) used by this process so far.
pub fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// CPU time (user + system) used by the calling thread so far — on a goroutine, its worker.
pub fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// Voluntary context switches of the calling thread so far (each time it blocked in the
/// kernel, e.g. a worker sleeping in `epoll_wait`): a count kept by the kernel, independent
/// of the runtime's own statistics.
pub fn thread_voluntary_switches() -> u64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut ru), 0);
        ru
    };
    ru.ru_nvcsw as u64
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(who, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the soft limit on open descriptors to the hard limit (1,000 clients plus the
/// server's side of their connections need over 2,000).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the plain struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A listener with a backlog of 0 (std always asks for more), never accepting: a dial to it
/// hangs once its accept queue is full, for dial-timeout tests.
pub fn full_backlog_listener() -> std::net::TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns; the address struct is
    // fully initialised before use.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let r = libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        assert_eq!(libc::listen(fd, 0), 0);
        std::net::TcpListener::from_raw_fd(fd)
    }
}

/// Runs a runtime whose main goroutine starts `n` goroutines running `park`, waits until all
/// of them have started (each then parks at once) and returns, ending the runtime.
pub fn end_runtime_with_parked(procs: usize, n: usize, park: impl Fn() + Send + Sync + 'static) {
    let park = Arc::new(park);
    gonet::Builder::new().procs(procs).build().unwrap().run(move || {
        let (tx, rx) = gonet::chan::unbounded();
        for _ in 0..n {
            let (park, tx) = (park.clone(), tx.clone());
            gonet::go(move || {
                tx.send(()).unwrap();
                park();
            });
        }
        for _ in 0..n {
            rx.recv().unwrap();
        }
        // Let every goroutine reach its park.
        gonet::time::sleep(Duration::from_millis(30));
    });
}

/// Kills the child process when dropped, so no `openssl` process outlives a failed test.
pub struct Reap(pub std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `tool` runs (`tool ARG` succeeds); under `CI=true` its absence fails, naming the
/// package that provides it (CI installs it, `.ci/run`).
pub fn tool_available(tool: &str, arg: &str, package: &str) -> bool {
    let found =
        std::process::Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success());
    if !found {
        // CI installs the tool (.ci/run): there, a missing tool is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "{tool} is not on PATH but CI=true: the {tool} interop check cannot run \
             (install {package})"
        );
        eprintln!("note: {tool} is not on PATH; skipping the {tool} interop check");
    }
    found
}

/// Whether `openssl` is on PATH (for the interop tests); under `CI=true` its absence fails.
pub fn openssl_available() -> bool {
    tool_available("openssl", "version", "openssl")
}

/// Whether `redis-cli` is on PATH; under `CI=true` its absence fails.
pub fn redis_cli_available() -> bool {
    tool_available("redis-cli", "--version", "redis-tools")
}

/// Runs `openssl s_client -quiet` (protocol flag `version`, e.g. `-tls1_3`) against the echo
/// server at `addr`, verifying it against the CA certificate `ca_pem` as `127.0.0.1`, and
/// checks that each of `lines` comes back.
pub fn s_client_echo(addr: &str, ca_pem: &str, version: &str, lines: &[String]) {
    use std::io::{BufRead, Write};
    let dir = std::env::temp_dir().join(format!(
        "gonet-s_client-{}-{}",
        std::process::id(),
        addr.replace(':', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let child = std::process::Command::new("openssl")
        .args(["s_client", "-connect", addr, version, "-quiet"])
        .args(["-verify_return_error", "-verify_ip", "127.0.0.1", "-CAfile"])
        .arg(&ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start openssl s_client");
    let mut child = Reap(child);
    let mut stdin = child.0.stdin.take().unwrap();
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    for line in lines {
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut echoed = String::new();
        out.read_line(&mut echoed).unwrap();
        assert_eq!(&echoed, line, "openssl s_client {version}");
    }
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory of this test process's files, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "gonet-go-peer-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the Go peer `tests/go/NAME/main.go` (standard library only, GOPATH mode) into
/// `dir`; `None` (test skipped) if Go is missing outside CI.
pub fn build_go_peer(dir: &TempDir, name: &str) -> Option<String> {
    if Command::new("go").arg("version").output().is_err() {
        // CI installs golang-go (.ci/run): there, a missing tool is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "`go` is not on PATH but CI=true: the Go interop tests need it \
             (Debian: apt-get install golang-go)"
        );
        eprintln!(
            "note: go is not on PATH: skipping the Go interop test \
             (Debian: apt-get install golang-go)"
        );
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/go/{name}/main.go"));
    let bin = dir.file(name);
    let mut cmd = Command::new("go");
    cmd.args(["build", "-o", &bin]).arg(&src).env("GO111MODULE", "off");
    // A build cache of our own if the user's is not writable (CI as root has one).
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        cmd.env("GOCACHE", dir.file("gocache"));
    }
    let out = cmd.output().expect("run go build");
    assert!(out.status.success(), "go build failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(bin)
}
