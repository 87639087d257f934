//! gonet-bench: shared helpers for the benchmark binaries — `/proc` readers (resident memory,
//! CPU time, open descriptors), a tiny `--flag value` parser, and the sizes the runtime
//! micro-benchmarks use. The binaries themselves live in `src/bin/`.
//!
//! # Allocator
//!
//! With the `jemalloc` feature (on by default) every binary of this crate allocates with
//! jemalloc. The echo servers each allocate a 64 KiB buffer per connection; jemalloc keeps
//! the metadata of such a block out of line and hands out fresh mappings without touching
//! them, so an idle connection's buffer costs no resident memory — as in Go, whose allocator
//! does the same. glibc's malloc writes a chunk header in front of every block, which makes
//! one page of each buffer resident: 4 KiB more per idle connection for every Rust server
//! alike. Build with `--no-default-features --features gonet` to measure with glibc.

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::fs;
use std::io;
use std::str::FromStr;

/// Resident set size of this process, in bytes (`VmRSS` of `/proc/self/status`).
pub fn vm_rss_bytes() -> u64 {
    rss_bytes_of("self").expect("reading /proc/self/status")
}

/// Resident set size of process `pid`, in bytes.
pub fn pid_rss_bytes(pid: u32) -> io::Result<u64> {
    rss_bytes_of(&pid.to_string())
}

fn rss_bytes_of(who: &str) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{who}/status"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 =
                rest.trim().trim_end_matches("kB").trim().parse().map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("VmRSS: {e}"))
                })?;
            return Ok(kb * 1024);
        }
    }
    Err(io::Error::new(io::ErrorKind::NotFound, format!("no VmRSS line in /proc/{who}/status")))
}

/// User + system CPU time of process `pid` (all its threads), in clock ticks
/// (fields 14 and 15 of `/proc/PID/stat`).
pub fn pid_cpu_ticks(pid: u32) -> io::Result<u64> {
    Ok(parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat"))?)?.1)
}

/// The command name (field 2) and user + system CPU ticks (fields 14 and 15) of a
/// `/proc/.../stat` line.
fn parse_stat(stat: &str) -> io::Result<(String, u64)> {
    // The command name is in parentheses and may itself hold spaces or ')': the fields we
    // want are counted from after the last ')'.
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed stat");
    let open = stat.find('(').ok_or_else(bad)?;
    let close = stat.rfind(')').ok_or_else(bad)?;
    let name = stat.get(open + 1..close).ok_or_else(bad)?.to_string();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // The fields after ')' start at field 3 (state), so field N is at index N - 3.
    let parse = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed stat field"))
    };
    Ok((name, parse(14 - 3)? + parse(15 - 3)?))
}

/// One thread of a process and the CPU time it has used.
#[derive(Clone, Debug)]
pub struct TaskTicks {
    /// Thread id.
    pub tid: u32,
    /// Thread name (`comm`), spaces replaced by `_`.
    pub name: String,
    /// User + system CPU time, in clock ticks.
    pub ticks: u64,
}

/// User + system CPU time of every live thread of process `pid` (`/proc/PID/task/*/stat`),
/// in clock ticks. A thread that exits while the directory is read is left out.
pub fn task_cpu_ticks(pid: u32) -> io::Result<Vec<TaskTicks>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue; // exited meanwhile
        };
        let (name, ticks) = parse_stat(&stat)?;
        out.push(TaskTicks { tid, name: name.replace(' ', "_"), ticks });
    }
    Ok(out)
}

/// `write`-family system calls made so far by process `pid`, all threads (`syscw` of
/// `/proc/PID/io`: write(2), writev(2), pwrite(2)…, not send(2)/sendmsg(2)): a server that
/// answers each request with one `write` makes one per request.
pub fn pid_write_calls(pid: u32) -> io::Result<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("no syscw in /proc/{pid}/io"))
        })
}

/// Clock ticks per second, the unit of [`pid_cpu_ticks`].
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Number of open descriptors of process `pid` (entries of `/proc/PID/fd`).
pub fn pid_fd_count(pid: u32) -> io::Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Prints one machine-readable result line, `key value`.
pub fn report(key: &str, value: impl std::fmt::Display) {
    println!("{key} {value}");
}

/// A minimal command-line parser: `--name value` or `--name=value`, plus positionals.
/// Unknown flags are an error, so a typo never silently runs the default.
pub struct Flags {
    pairs: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Flags {
    /// Parses the process arguments; `known` lists the accepted flag names (without `--`).
    pub fn parse(known: &[&str]) -> Flags {
        match Flags::parse_from(std::env::args().skip(1), known) {
            Ok(f) => f,
            Err(msg) => {
                eprintln!("error: {msg}");
                eprintln!(
                    "flags: {}",
                    known.iter().map(|k| format!("--{k}")).collect::<Vec<_>>().join(" ")
                );
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` (without the program name).
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
    ) -> Result<Flags, String> {
        let mut pairs = Vec::new();
        let mut positional = Vec::new();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            if let Some(body) = arg.strip_prefix("--") {
                let (name, value) = match body.split_once('=') {
                    Some((n, v)) => (n.to_string(), v.to_string()),
                    None => {
                        let v = it.next().ok_or_else(|| format!("flag --{body} needs a value"))?;
                        (body.to_string(), v)
                    }
                };
                if !known.contains(&name.as_str()) {
                    return Err(format!("unknown flag --{name}"));
                }
                pairs.push((name, value));
            } else {
                positional.push(arg);
            }
        }
        Ok(Flags { pairs, positional })
    }

    /// The value of `--name` parsed as `T`, or `default` when absent. Exits on a bad value.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.get_opt(name) {
            Some(v) => v,
            None => default,
        }
    }

    /// The value of `--name` parsed as `T`, if given. Exits on a bad value.
    pub fn get_opt<T: FromStr>(&self, name: &str) -> Option<T> {
        let raw = self.pairs.iter().rev().find(|(n, _)| n == name)?;
        match raw.1.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                eprintln!("error: bad value {:?} for --{name}", raw.1);
                std::process::exit(2);
            }
        }
    }

    /// The positional arguments, in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }
}

/// Connects a benchmark client to `addr`, for the load generators.
///
/// The socket is set to reset on close (`SO_LINGER` 0), so the many short runs of a benchmark
/// leave no TIME_WAIT sockets behind to eat the ephemeral ports; a connect failing with
/// `AddrNotAvailable` (ephemeral ports exhausted for the moment) is retried for up to 10 s.
pub fn connect_client(addr: &str) -> io::Result<std::net::TcpStream> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stream = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e)
                if e.kind() == io::ErrorKind::AddrNotAvailable
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    };
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: the option value points at a live `linger` of the size passed, and the
    // descriptor belongs to `stream`, which outlives the call.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

/// Listening address of an echo server: the first argument, else `127.0.0.1:9000`.
pub fn listen_addr() -> String {
    std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".to_string())
}

/// Read buffer size of every echo server: read up to 64 KiB, write it all back.
pub const ECHO_BUF: usize = 64 * 1024;

/// Common start-up of the Rust echo servers, called first thing in `main`.
///
/// Without jemalloc (see the crate docs), glibc serves 64 KiB from its heap and, depending on
/// the arena and its top padding, zero-fills most such buffers or dirties the pages around
/// them: for the same server code, from ~13 KiB to ~48 KiB of resident memory per *idle*
/// connection. This lowers glibc's mmap threshold to 64 KiB, so every such buffer is its own
/// zero-filled mapping of which only the first page (malloc's header) is resident until data
/// arrives — the same for every Rust server. With jemalloc it does nothing.
pub fn echo_server_init() {
    #[cfg(not(feature = "jemalloc"))]
    {
        // SAFETY: mallopt only changes glibc's allocation policy; it is called at the start
        // of main, before the server starts any thread.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, ECHO_BUF as libc::c_int) };
        if ok != 1 {
            eprintln!("warning: mallopt(M_MMAP_THRESHOLD) failed");
        }
    }
}

/// Sizes of the runtime micro-benchmarks (`rt_*` binaries), overridable by flags
/// `--spawn N --pingpong N --parked N --warmup N` for quick runs.
#[derive(Clone, Copy, Debug)]
pub struct RtSizes {
    /// Spawn + join iterations measured.
    pub spawn: usize,
    /// Channel round trips measured.
    pub pingpong: usize,
    /// Goroutines/tasks parked at once for the memory figure.
    pub parked: usize,
    /// Untimed iterations run before each timed loop.
    pub warmup: usize,
    /// Goroutines/tasks spawned before any is joined, in each of the three burst rounds.
    pub burst: usize,
}

impl RtSizes {
    /// Defaults (100k spawns, 1M round trips, 100k parked, 10k warm-up, bursts of 100k) with
    /// flag overrides.
    pub fn from_args() -> RtSizes {
        let f = Flags::parse(&["spawn", "pingpong", "parked", "warmup", "burst"]);
        RtSizes {
            spawn: f.get("spawn", 100_000),
            pingpong: f.get("pingpong", 1_000_000),
            parked: f.get("parked", 100_000),
            warmup: f.get("warmup", 10_000),
            burst: f.get("burst", 100_000),
        }
    }
}

/// Nanoseconds per operation, for printing.
pub fn ns_per(elapsed: std::time::Duration, ops: usize) -> String {
    format!("{:.1}", elapsed.as_nanos() as f64 / ops.max(1) as f64)
}

/// Bytes per item of a resident-memory delta, for printing.
pub fn bytes_per(before: u64, after: u64, items: usize) -> String {
    format!("{:.0}", (after as f64 - before as f64) / items.max(1) as f64)
}

/// The response type of the hyper hello servers.
pub type HelloResponse = hyper::Response<http_body_util::Full<bytes::Bytes>>;

/// The response of the hyper hello servers (`http_hyper` on tokio, `http_hyper_gonet` on
/// gonet): `Hello, World!` as `text/plain; charset=utf-8`, the same bytes as Go's net/http
/// peer and gonet's http_hello answer.
pub fn hello_response() -> HelloResponse {
    let mut resp = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
        b"Hello, World!",
    )));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_forms() {
        let f = Flags::parse_from(args(&["--conns", "10", "--size=64", "x"]), &["conns", "size"])
            .unwrap();
        assert_eq!(f.get("conns", 1usize), 10);
        assert_eq!(f.get("size", 1usize), 64);
        assert_eq!(f.get("missing", 7usize), 7);
        assert_eq!(f.positional(), &["x".to_string()]);
    }

    #[test]
    fn flags_reject_unknown_and_missing_value() {
        assert!(Flags::parse_from(args(&["--nope", "1"]), &["conns"]).is_err());
        assert!(Flags::parse_from(args(&["--conns"]), &["conns"]).is_err());
    }

    #[test]
    fn stat_name_may_hold_parentheses_and_spaces() {
        let line = "42 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16";
        // After the last ')' the fields are state=S (3), then 4.. : utime is field 14, stime 15.
        let (name, ticks) = parse_stat(line).unwrap();
        assert_eq!(name, "a) b (c");
        assert_eq!(ticks, 11 + 12);
    }

    #[test]
    fn proc_readers_work_on_self() {
        let pid = std::process::id();
        assert!(pid_rss_bytes(pid).unwrap() > 0);
        pid_cpu_ticks(pid).unwrap();
        let tasks = task_cpu_ticks(pid).unwrap();
        assert!(tasks.iter().any(|t| t.tid == pid), "the main thread is a task: {tasks:?}");
        pid_write_calls(pid).unwrap();
        assert!(pid_fd_count(pid).unwrap() >= 3);
        assert!(clk_tck() > 0);
    }
}
