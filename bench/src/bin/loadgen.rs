//! Load generator for the echo and RESP benchmarks: raw level-triggered epoll (libc), N
//! connections each doing closed-loop request/response — send a request, wait until the whole
//! expected response has come back, record the latency, repeat — with one read per readiness
//! event. Runs a warm-up, then a measured window, and prints `key value` lines: requests/s,
//! p50/p99/p999 latency in µs and, with `--server-pid`, the server's CPU time per request and
//! per thread. The warm-up clock starts once every connection has completed one round trip.
//!
//! Each generator is ONE thread with its own epoll and its own connections. By default there
//! is one; `--threads K` runs K of them, the connections split evenly (the first `N % K` take
//! one more), each pinned to a CPU of `--cpus LIST` (as `taskset -c` takes it; generator `i`
//! gets the `i`-th CPU, round robin). They share nothing but the window: the last one to
//! finish its setup fixes its start (now + warm-up), so all of them — and the main thread,
//! which reads the server's CPU time at both ends — measure the same interval. Percentiles
//! are exact over every request of every generator.
//!
//! With `--server-pid PID`, over the window: the server's user + system CPU (`/proc/PID/stat`,
//! all threads) in total and per request; each thread's (`/proc/PID/task/*/stat`): how many
//! had more than 10 % of a core (`server_busy_threads`) and the share of every thread above
//! 1 % (`server_thread_cpu`, `PERCENT@NAME` from busiest); and the server's `write`-family
//! system calls per request (`syscw` of `/proc/PID/io`, which counts write(2), writev(2) and
//! the like but not send(2)/sendmsg(2)): an echo that answers each request with one `write`
//! makes 1.0, which checks the request count from the server's side.
//!
//! Echo (default): the request is `--size` patterned bytes and the response must equal it.
//! RESP (`--resp PING_INLINE|PING_MBULK|SET|GET`): the request is the command as
//! redis-benchmark sends it (key `key:__rand_int__`, 3-byte value) and the response must be
//! the server's exact reply; `--pipeline P` sends P commands per round trip and counts P
//! requests when their P replies are in. Every byte of every response is checked, and the
//! generator does no other work per request, so a server on its own core is the bottleneck
//! where redis-benchmark (which saturates its core first without pipelining) is not.
//!
//! With `--resp TEST --echo 1` the command is sent to an echo server and must come back
//! unchanged: the same requests with no RESP work on the server (the floor).
//!
//! Flags: --addr 127.0.0.1:9000 --conns 1 --size 64 --duration 5 --warmup 1 --server-pid PID
//! --resp TEST --pipeline 1 --echo 0 --threads 1 --cpus LIST

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet_bench::{
    clk_tck, connect_client, pid_cpu_ticks, pid_write_calls, report, task_cpu_ticks, Flags,
    TaskTicks,
};

/// One client connection and the state of its request in flight.
struct Conn {
    stream: TcpStream,
    /// Bytes of the current request written so far.
    sent: usize,
    /// Bytes of the current response received so far.
    received: usize,
    /// When the current request was started.
    started: Instant,
    /// Whether EPOLLOUT interest is registered (only while a write is incomplete).
    want_out: bool,
}

/// Longest wait for every connection's first echo.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the run is: first round trips, warm-up, measured window.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Warmup,
    Measure,
}

/// Byte `i` of every echo request.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// A RESP test's command and the server's reply to it, as redis-benchmark's `-t` sends them.
fn resp_exchange(test: &str) -> Option<(&'static [u8], &'static [u8])> {
    Some(match test {
        "PING_INLINE" => (b"PING\r\n", b"+PONG\r\n"),
        "PING_MBULK" => (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
        "SET" => (b"*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n", b"+OK\r\n"),
        "GET" => (b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n", b"$3\r\nxxx\r\n"),
        _ => return None,
    })
}

fn epoll_ctl(ep: RawFd, op: libc::c_int, fd: RawFd, token: usize, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token as u64 };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call; `ep` and `fd` are
    // descriptors owned by this process.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes as much of the current request as the socket takes. Returns true when complete.
fn push_request(c: &mut Conn, req: &[u8]) -> io::Result<bool> {
    while c.sent < req.len() {
        match (&c.stream).write(&req[c.sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Starts a request on `c`, registering EPOLLOUT interest if the write is incomplete.
fn start_request(
    ep: RawFd,
    token: usize,
    c: &mut Conn,
    req: &[u8],
    now: Instant,
) -> io::Result<()> {
    c.sent = 0;
    c.received = 0;
    c.started = now;
    let done = push_request(c, req)?;
    set_out_interest(ep, token, c, !done)
}

fn set_out_interest(ep: RawFd, token: usize, c: &mut Conn, want: bool) -> io::Result<()> {
    if c.want_out != want {
        let mut events = libc::EPOLLIN as u32;
        if want {
            events |= libc::EPOLLOUT as u32;
        }
        epoll_ctl(ep, libc::EPOLL_CTL_MOD, c.stream.as_raw_fd(), token, events)?;
        c.want_out = want;
    }
    Ok(())
}

/// Handles one readiness event of connection `token`: continues a pending write, and does
/// one read. Returns the latency in ns when this read completed a response (the next request
/// is then already started).
fn on_event(
    ep: RawFd,
    token: usize,
    c: &mut Conn,
    events: u32,
    req: &[u8],
    expect: &[u8],
    buf: &mut [u8],
) -> io::Result<Option<u64>> {
    if events & libc::EPOLLOUT as u32 != 0 && c.sent < req.len() {
        let done = push_request(c, req)?;
        set_out_interest(ep, token, c, !done)?;
    }
    if events & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 == 0 {
        return Ok(None);
    }
    let want = (expect.len() - c.received).min(buf.len());
    if want == 0 {
        return Ok(None);
    }
    // One read per readiness event; level-triggered epoll reports what is left.
    let got = match (&c.stream).read(&mut buf[..want]) {
        Ok(0) => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ))
        }
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
        Err(e) => return Err(e),
    };
    let off = c.received;
    if buf[..got] != expect[off..off + got] {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "response bytes {off}..{} differ from the expected {:?}",
                off + got,
                String::from_utf8_lossy(expect)
            ),
        ));
    }
    c.received += got;
    if c.received < expect.len() || c.sent < req.len() {
        return Ok(None);
    }
    let now = Instant::now();
    let latency = now.duration_since(c.started).as_nanos() as u64;
    start_request(ep, token, c, req, now)?;
    Ok(Some(latency))
}

/// Nearest-rank percentile of sorted samples (nanoseconds), in microseconds.
fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn main() {
    let flags = Flags::parse(&[
        "addr",
        "conns",
        "size",
        "duration",
        "warmup",
        "server-pid",
        "resp",
        "pipeline",
        "echo",
        "threads",
        "cpus",
    ]);
    let addr: String = flags.get("addr", "127.0.0.1:9000".to_string());
    let nconns: usize = flags.get("conns", 1);
    let size: usize = flags.get("size", 64);
    let duration: f64 = flags.get("duration", 5.0);
    let warmup: f64 = flags.get("warmup", 1.0);
    let server_pid: Option<u32> = flags.get_opt("server-pid");
    let resp: Option<String> = flags.get_opt("resp");
    let pipeline: usize = flags.get("pipeline", 1);
    let echo: u8 = flags.get("echo", 0);
    let threads: usize = flags.get("threads", 1);
    let cpus: Vec<usize> = match flags.get_opt::<String>("cpus") {
        None => Vec::new(),
        Some(list) => parse_cpu_list(&list).unwrap_or_else(|e| {
            eprintln!("error: --cpus {list:?}: {e}");
            std::process::exit(2);
        }),
    };
    if nconns == 0 || size == 0 || pipeline == 0 || threads == 0 || duration <= 0.0 || warmup < 0.0
    {
        eprintln!(
            "error: --conns, --size, --pipeline and --threads must be > 0, --duration > 0, --warmup >= 0"
        );
        std::process::exit(2);
    }
    let (req, expect) = match resp.as_deref() {
        None => {
            let req: Vec<u8> = (0..size).map(pattern).collect();
            (req.repeat(pipeline), req.repeat(pipeline))
        }
        Some(test) => match resp_exchange(test) {
            Some((cmd, reply)) => {
                let reply = if echo != 0 { cmd } else { reply };
                (cmd.repeat(pipeline), reply.repeat(pipeline))
            }
            None => {
                eprintln!("error: --resp takes PING_INLINE, PING_MBULK, SET or GET, not {test:?}");
                std::process::exit(2);
            }
        },
    };
    let exchange = Arc::new(Exchange { req, expect, per_round: pipeline });
    let plan = Plan {
        addr,
        nconns,
        // A generator with no connection would only idle.
        threads: threads.min(nconns),
        cpus,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
        server_pid,
    };
    if let Err(e) = run(plan, exchange) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// Parses a CPU list as `taskset -c` takes it: `1,3,5-7`.
fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let num = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("bad CPU number {s:?}"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("bad CPU range {part:?}"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    if cpus.is_empty() {
        return Err("no CPU given".into());
    }
    Ok(cpus)
}

/// What each connection sends per round trip, what must come back, and how many requests
/// that round trip counts for.
struct Exchange {
    req: Vec<u8>,
    expect: Vec<u8>,
    per_round: usize,
}

/// The run as the flags describe it.
struct Plan {
    addr: String,
    nconns: usize,
    /// Generator threads; connections are split evenly over them.
    threads: usize,
    /// CPUs the generators are pinned to, generator `i` to `cpus[i % len]`; empty: not pinned.
    cpus: Vec<usize>,
    duration: Duration,
    warmup: Duration,
    server_pid: Option<u32>,
}

/// What the generator threads share. Invariant: `start_ns` is 0 until every generator has
/// finished its setup (`ready == threads`); the generator that completes the count publishes
/// it once, and it never changes after, so every generator and the CPU reader measure the
/// same window `[base + start_ns, base + start_ns + duration)`.
struct Coord {
    base: Instant,
    threads: usize,
    warmup: Duration,
    ready: AtomicUsize,
    /// Start of the measured window in ns after `base`; 0 while a generator is in setup.
    start_ns: AtomicU64,
    /// Set by a generator that failed: the others stop.
    failed: AtomicBool,
}

impl Coord {
    fn window_start(&self) -> Option<Instant> {
        let ns = self.start_ns.load(Ordering::Acquire);
        (ns != 0).then(|| self.base + Duration::from_nanos(ns))
    }

    /// Called once per generator when every one of its connections has echoed once.
    fn set_ready(&self, now: Instant) {
        if self.ready.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            let ns = (now + self.warmup).duration_since(self.base).as_nanos().max(1) as u64;
            self.start_ns.store(ns, Ordering::Release);
        }
    }
}

/// The error a generator returns when it stopped because another one failed.
const STOPPED: &str = "stopped: another generator failed";

/// What one generator measured.
struct GenResult {
    /// Round-trip latencies (ns) of the round trips completed in the measured window.
    latencies: Vec<u64>,
    errors: usize,
    setup_s: f64,
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data for which all-zero is the empty set; CPU_SET writes
    // within it (it checks the index against the set's size), and sched_setaffinity reads
    // `size_of::<cpu_set_t>()` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("pinning a generator to CPU {cpu}: {e}")));
        }
    }
    Ok(())
}

/// One generator: its own epoll, `nconns` connections, one thread (the caller's).
fn generate(
    plan: &Plan,
    nconns: usize,
    cpu: Option<usize>,
    ex: &Exchange,
    coord: &Coord,
) -> io::Result<GenResult> {
    if let Some(cpu) = cpu {
        pin_to(cpu)?;
    }
    let addr = plan.addr.as_str();
    let req = &ex.req;
    let mut buf = vec![0u8; 64 * 1024];

    // SAFETY: epoll_create1 has no memory-safety preconditions.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ep` was just created and is owned by nothing else; the OwnedFd closes it once.
    let _ep_guard = unsafe { OwnedFd::from_raw_fd(ep) };

    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(nconns);
    for i in 0..nconns {
        let stream = connect_client(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connect #{i} to {addr}: {e}")))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        epoll_ctl(ep, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), i, libc::EPOLLIN as u32)?;
        conns.push(Some(Conn {
            stream,
            sent: 0,
            received: 0,
            started: Instant::now(),
            want_out: false,
        }));
    }

    // Setup: every connection completes one round trip before the warm-up clock starts, so
    // connection establishment (a full accept queue retransmits SYNs after 1 s) and the
    // server's first per-connection work never land in the measured window.
    let setup_start = Instant::now();
    let setup_deadline = setup_start + SETUP_TIMEOUT;
    for (i, slot) in conns.iter_mut().enumerate() {
        let c = slot.as_mut().expect("just connected");
        start_request(ep, i, c, req, setup_start)?;
    }
    let mut unready = nconns;
    let mut ready = vec![false; nconns];
    let mut setup_s = 0.0;

    let mut phase = Phase::Setup;
    // The measured window, once every generator is set up.
    let mut window: Option<(Instant, Instant)> = None;
    let mut latencies: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut errors = 0usize;
    let mut alive = nconns;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];

    loop {
        let now = Instant::now();
        if coord.failed.load(Ordering::Relaxed) {
            return Err(io::Error::other(STOPPED));
        }
        if phase == Phase::Setup {
            if unready == 0 {
                setup_s = now.duration_since(setup_start).as_secs_f64();
                phase = Phase::Warmup;
                coord.set_ready(now);
            } else if now >= setup_deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{unready} of {nconns} connections got no echo within {} s",
                        SETUP_TIMEOUT.as_secs()
                    ),
                ));
            }
        }
        if phase == Phase::Warmup {
            if window.is_none() {
                window = coord.window_start().map(|from| (from, from + plan.duration));
            }
            if window.is_some_and(|(from, _)| now >= from) {
                phase = Phase::Measure;
            }
        }
        if phase == Phase::Measure && window.is_some_and(|(_, to)| now >= to) {
            break;
        }
        if alive == 0 {
            return Err(io::Error::other("every connection failed"));
        }
        // Wake up for the next phase change; while the other generators finish their setup,
        // look for the window every millisecond.
        let next = match (phase, window) {
            (Phase::Setup, _) => Some(setup_deadline),
            (Phase::Warmup, None) => None,
            (Phase::Warmup, Some((from, _))) => Some(from),
            (Phase::Measure, w) => w.map(|(_, to)| to),
        };
        let timeout_ms =
            next.map_or(1, |t| t.saturating_duration_since(now).as_millis().clamp(1, 100) as i32);
        // SAFETY: `events` is valid for writes of `events.len()` entries.
        let n =
            unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let token = ev.u64 as usize;
            let Some(c) = conns[token].as_mut() else {
                continue;
            };
            match on_event(ep, token, c, ev.events, req, &ex.expect, &mut buf) {
                Ok(None) => {}
                Ok(Some(latency)) => {
                    if phase == Phase::Measure {
                        latencies.push(latency);
                    } else if !ready[token] {
                        ready[token] = true;
                        unready -= 1;
                    }
                }
                Err(e) => {
                    if errors < 5 {
                        eprintln!("loadgen: connection {token}: {e}");
                    }
                    errors += 1;
                    alive -= 1;
                    if !ready[token] {
                        ready[token] = true;
                        unready -= 1;
                    }
                    conns[token] = None; // dropping the stream closes it and leaves the epoll set
                }
            }
        }
    }
    Ok(GenResult { latencies, errors, setup_s })
}

/// The server's CPU time (whole process and per thread) and write calls at one instant.
struct ServerSnapshot {
    ticks: u64,
    tasks: Vec<TaskTicks>,
    writes: u64,
}

impl ServerSnapshot {
    fn take(pid: u32) -> io::Result<ServerSnapshot> {
        Ok(ServerSnapshot {
            ticks: pid_cpu_ticks(pid)?,
            tasks: task_cpu_ticks(pid)?,
            writes: pid_write_calls(pid)?,
        })
    }
}

/// Sleeps until `t` (returns at once if it is past).
fn sleep_until(t: Instant) {
    let d = t.saturating_duration_since(Instant::now());
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// Runs the generators, reads the server's CPU over their common window, prints the report.
fn run(plan: Plan, ex: Arc<Exchange>) -> io::Result<()> {
    let plan = Arc::new(plan);
    let coord = Arc::new(Coord {
        base: Instant::now(),
        threads: plan.threads,
        warmup: plan.warmup,
        ready: AtomicUsize::new(0),
        start_ns: AtomicU64::new(0),
        failed: AtomicBool::new(false),
    });
    let mut handles = Vec::with_capacity(plan.threads);
    for i in 0..plan.threads {
        // Connections split evenly: the first nconns % threads generators take one more.
        let n = plan.nconns / plan.threads + usize::from(i < plan.nconns % plan.threads);
        let cpu = (!plan.cpus.is_empty()).then(|| plan.cpus[i % plan.cpus.len()]);
        let (plan, ex, coord) = (plan.clone(), ex.clone(), coord.clone());
        let h = std::thread::Builder::new().name(format!("loadgen-{i}")).spawn(move || {
            let r = generate(&plan, n, cpu, &ex, &coord);
            if r.is_err() {
                coord.failed.store(true, Ordering::Relaxed);
            }
            r
        })?;
        handles.push(h);
    }

    // The server's CPU over the window every generator measures.
    let mut server = None;
    if let Some(pid) = plan.server_pid {
        let from = loop {
            if let Some(from) = coord.window_start() {
                break Some(from);
            }
            if handles.iter().all(|h| h.is_finished()) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if let Some(from) = from {
            sleep_until(from);
            let start = ServerSnapshot::take(pid)?;
            sleep_until(from + plan.duration);
            server = Some((start, ServerSnapshot::take(pid)?));
        }
    }

    let mut results = Vec::with_capacity(plan.threads);
    let mut failure: Option<io::Error> = None;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => {
                if e.to_string() != STOPPED {
                    eprintln!("loadgen: generator {i}: {e}");
                    failure.get_or_insert(e);
                }
            }
            Err(_) => {
                failure.get_or_insert(io::Error::other(format!("generator {i} panicked")));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let window = plan.duration.as_secs_f64();
    let per_gen: Vec<String> =
        results.iter().map(|r| (r.latencies.len() * ex.per_round).to_string()).collect();
    let errors: usize = results.iter().map(|r| r.errors).sum();
    let setup_s = results.iter().map(|r| r.setup_s).fold(0.0, f64::max);
    let mut latencies: Vec<u64> = results.into_iter().flat_map(|r| r.latencies).collect();
    let requests = latencies.len() * ex.per_round;
    latencies.sort_unstable();
    report("addr", &plan.addr);
    report("conns", plan.nconns);
    report("threads", plan.threads);
    report("size", ex.req.len());
    report("pipeline", ex.per_round);
    report("setup_s", format!("{setup_s:.3}"));
    report("duration_s", format!("{window:.3}"));
    report("requests", requests);
    report("gen_requests", per_gen.join(","));
    report("rps", format!("{:.1}", requests as f64 / window));
    report("p50_us", format!("{:.1}", percentile_us(&latencies, 0.50)));
    report("p99_us", format!("{:.1}", percentile_us(&latencies, 0.99)));
    report("p999_us", format!("{:.1}", percentile_us(&latencies, 0.999)));
    if let Some((start, end)) = server {
        report_server(&start, &end, requests, window);
    }
    report("errors", errors);
    if requests == 0 {
        return Err(io::Error::other("no request completed in the measured window"));
    }
    Ok(())
}

/// Share of one core above which a server thread counts as busy.
const BUSY_SHARE: f64 = 0.10;
/// Share of one core below which a server thread is left out of `server_thread_cpu`.
const LISTED_SHARE: f64 = 0.01;

/// Prints the server's CPU figures over the window: the whole process, per request, and per
/// thread (how many threads did the work).
fn report_server(start: &ServerSnapshot, end: &ServerSnapshot, requests: usize, window: f64) {
    let hz = clk_tck() as f64;
    let ticks = end.ticks.saturating_sub(start.ticks);
    let cpu_s = ticks as f64 / hz;
    report("server_cpu_ticks", ticks);
    report("server_cpu_s", format!("{cpu_s:.3}"));
    report("server_cpu_util", format!("{:.3}", cpu_s / window));
    report("server_cpu_us_per_req", format!("{:.3}", cpu_s * 1e6 / requests.max(1) as f64));
    let writes = end.writes.saturating_sub(start.writes);
    report("server_writes_per_req", format!("{:.3}", writes as f64 / requests.max(1) as f64));
    // Per thread: ticks over the window; a thread born in it counts from 0.
    let mut threads: Vec<(u64, &str)> = end
        .tasks
        .iter()
        .map(|t| {
            let before = start.tasks.iter().find(|s| s.tid == t.tid).map_or(0, |s| s.ticks);
            (t.ticks.saturating_sub(before), t.name.as_str())
        })
        .collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.0));
    let share = |t: u64| t as f64 / hz / window;
    report("server_threads", threads.len());
    report("server_thread_ticks_sum", threads.iter().map(|t| t.0).sum::<u64>());
    report("server_busy_threads", threads.iter().filter(|t| share(t.0) > BUSY_SHARE).count());
    let listed: Vec<String> = threads
        .iter()
        .filter(|t| share(t.0) >= LISTED_SHARE)
        .map(|t| format!("{:.0}@{}", share(t.0) * 100.0, t.1))
        .collect();
    report("server_thread_cpu", if listed.is_empty() { "-".to_string() } else { listed.join(",") });
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists_as_taskset_takes_them() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("8-11,3").unwrap(), vec![8, 9, 10, 11, 3]);
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("3-1,2").is_err());
        assert!(parse_cpu_list("a").is_err());
    }
}
