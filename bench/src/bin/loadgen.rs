//! Load generator for the echo and RESP benchmarks: ONE thread, raw level-triggered epoll
//! (libc), N connections each doing closed-loop request/response — send a request, wait until
//! the whole expected response has come back, record the latency, repeat — with one read per
//! readiness event. Runs a warm-up, then a measured window, and prints `key value` lines:
//! requests/s, p50/p99/p999 latency in µs and, with `--server-pid`, the server's CPU time per
//! request. The warm-up clock starts once every connection has completed one round trip.
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
//! --resp TEST --pipeline 1 --echo 0

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use gonet_bench::{clk_tck, connect_client, pid_cpu_ticks, report, Flags};

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
    if nconns == 0 || size == 0 || pipeline == 0 || duration <= 0.0 || warmup < 0.0 {
        eprintln!(
            "error: --conns, --size and --pipeline must be > 0, --duration > 0, --warmup >= 0"
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
    let exchange = Exchange { req, expect, per_round: pipeline };
    if let Err(e) = run(&addr, nconns, &exchange, duration, warmup, server_pid) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// What each connection sends per round trip, what must come back, and how many requests
/// that round trip counts for.
struct Exchange {
    req: Vec<u8>,
    expect: Vec<u8>,
    per_round: usize,
}

fn run(
    addr: &str,
    nconns: usize,
    ex: &Exchange,
    duration: f64,
    warmup: f64,
    server_pid: Option<u32>,
) -> io::Result<()> {
    let req = &ex.req;
    let mut buf = vec![0u8; 64 * 1024];

    // SAFETY: epoll_create1 has no memory-safety preconditions.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }

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
    let far = setup_start + Duration::from_secs(365 * 24 * 3600);
    let (mut measure_from, mut measure_to) = (far, far);
    let mut window_start = setup_start;
    let mut latencies: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut cpu_start = 0u64;
    let mut errors = 0usize;
    let mut alive = nconns;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];

    loop {
        let now = Instant::now();
        if phase == Phase::Setup {
            if unready == 0 {
                setup_s = now.duration_since(setup_start).as_secs_f64();
                phase = Phase::Warmup;
                measure_from = now + Duration::from_secs_f64(warmup);
                measure_to = measure_from + Duration::from_secs_f64(duration);
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
        if phase == Phase::Warmup && now >= measure_from {
            phase = Phase::Measure;
            window_start = now;
            if let Some(pid) = server_pid {
                cpu_start = pid_cpu_ticks(pid)?;
            }
        }
        if now >= measure_to {
            break;
        }
        if alive == 0 {
            return Err(io::Error::other("every connection failed"));
        }
        let next = match phase {
            Phase::Setup => setup_deadline,
            Phase::Warmup => measure_from,
            Phase::Measure => measure_to,
        };
        let timeout_ms = next.saturating_duration_since(now).as_millis().clamp(1, 100) as i32;
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

    let window = window_start.elapsed().as_secs_f64();
    let cpu_ticks = match server_pid {
        Some(pid) => Some(pid_cpu_ticks(pid)?.saturating_sub(cpu_start)),
        None => None,
    };
    let requests = latencies.len() * ex.per_round;
    latencies.sort_unstable();
    report("addr", addr);
    report("conns", nconns);
    report("size", ex.req.len());
    report("pipeline", ex.per_round);
    report("setup_s", format!("{setup_s:.3}"));
    report("duration_s", format!("{window:.3}"));
    report("requests", requests);
    report("rps", format!("{:.1}", requests as f64 / window));
    report("p50_us", format!("{:.1}", percentile_us(&latencies, 0.50)));
    report("p99_us", format!("{:.1}", percentile_us(&latencies, 0.99)));
    report("p999_us", format!("{:.1}", percentile_us(&latencies, 0.999)));
    if let Some(ticks) = cpu_ticks {
        let cpu_s = ticks as f64 / clk_tck() as f64;
        report("server_cpu_s", format!("{cpu_s:.3}"));
        report("server_cpu_util", format!("{:.3}", cpu_s / window));
        report("server_cpu_us_per_req", format!("{:.3}", cpu_s * 1e6 / requests.max(1) as f64));
    }
    report("errors", errors);
    // SAFETY: `ep` is the epoll descriptor created above and not used after this.
    unsafe { libc::close(ep) };
    if requests == 0 {
        return Err(io::Error::other("no request completed in the measured window"));
    }
    Ok(())
}
