//! TLS echo load generator (rustls, TLS 1.3, AES-128-GCM only): `--conns` connections, one
//! blocking thread each, every one sending a `--size`-byte message and waiting for its echo,
//! for `--duration` seconds after `--warmup`. Prints `rps`, and with `--server-pid` the
//! server's CPU µs per request (`server_cpu_us_per_req`, from `/proc/PID/stat`).
//!
//! With `--handshakes 1`, each of the `--conns` threads makes a new connection per request: a
//! full TLS 1.3 handshake (session resumption is off), one echo of `--size` bytes, then
//! `close_notify` and close; `rps` and `server_cpu_us_per_req` then count these.
//!
//! With `--idle N --server-pid PID` it instead measures memory per idle TLS connection: one
//! warm-up connection, the server's VmRSS, then N connections that each complete the handshake
//! and one echo and then stay open, the VmRSS again once it settles; prints `idle_conn_bytes`.
//!
//! Flags: --addr 127.0.0.1:9443 --ca CERT.pem --conns 1 --size 64 --duration 5 --warmup 1
//! --server-pid PID --idle N --handshakes 0

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet_bench::{bytes_per, clk_tck, pid_cpu_ticks, pid_rss_bytes, report, Flags};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn main() {
    let flags = Flags::parse(&[
        "addr",
        "ca",
        "conns",
        "size",
        "duration",
        "warmup",
        "server-pid",
        "idle",
        "handshakes",
    ]);
    let addr: String = flags.get("addr", "127.0.0.1:9443".to_string());
    let ca: String = flags.get("ca", String::new());
    let r = (|| -> io::Result<()> {
        let cfg = config(&ca)?;
        let pid: Option<u32> = flags.get_opt("server-pid");
        if let Some(n) = flags.get_opt::<usize>("idle") {
            let pid = pid.ok_or_else(|| io::Error::other("--idle needs --server-pid"))?;
            return idle(&addr, &cfg, n, pid);
        }
        let run = Run {
            conns: flags.get("conns", 1),
            size: flags.get("size", 64),
            warmup: Duration::from_secs_f64(flags.get("warmup", 1.0)),
            duration: Duration::from_secs_f64(flags.get("duration", 5.0)),
            pid,
            handshakes: flags.get::<u32>("handshakes", 0) > 0,
        };
        load(&addr, &cfg, run)
    })();
    if let Err(e) = r {
        eprintln!("tls_loadgen: {e}");
        std::process::exit(1);
    }
}

fn config(ca: &str) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca).map_err(|e| io::Error::other(format!("{ca}: {e}")))?
    {
        roots
            .add(cert.map_err(|e| io::Error::other(format!("{ca}: {e}")))?)
            .map_err(io::Error::other)?;
    }
    let mut provider = ring::default_provider();
    provider.cipher_suites = vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection a full handshake (the handshake figure measures those).
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

fn connect(addr: &str, cfg: &Arc<ClientConfig>) -> io::Result<Tls> {
    let tcp = gonet_bench::connect_client(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("127.0.0.1").expect("an IP address");
    let mut s =
        StreamOwned::new(ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

fn echo(s: &mut Tls, msg: &[u8], buf: &mut [u8]) -> io::Result<()> {
    s.write_all(msg)?;
    s.flush()?;
    s.read_exact(buf)?;
    if buf != msg {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "echo altered"));
    }
    Ok(())
}

/// What a load run does (see the flags at the top).
struct Run {
    conns: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
    pid: Option<u32>,
    handshakes: bool,
}

fn load(addr: &str, cfg: &Arc<ClientConfig>, run: Run) -> io::Result<()> {
    let Run { conns, size, warmup, duration, pid, handshakes } = run;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..conns {
        let mut s = connect(addr, cfg)?;
        let (count, stop, addr, cfg) = (count.clone(), stop.clone(), addr.to_string(), cfg.clone());
        threads.push(std::thread::spawn(move || -> io::Result<()> {
            let msg = vec![b'x'; size];
            let mut buf = vec![0u8; size];
            while !stop.load(Ordering::Relaxed) {
                if handshakes {
                    // A new connection per request; the previous one ends cleanly.
                    s.conn.send_close_notify();
                    let _ = s.flush();
                    s = connect(&addr, &cfg)?;
                }
                echo(&mut s, &msg, &mut buf)?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    std::thread::sleep(warmup);
    let (n0, t0) = (count.load(Ordering::Relaxed), Instant::now());
    let cpu0 = pid.map(pid_cpu_ticks).transpose()?;
    std::thread::sleep(duration);
    let (n1, el) = (count.load(Ordering::Relaxed), t0.elapsed());
    let cpu1 = pid.map(pid_cpu_ticks).transpose()?;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| io::Error::other("a client thread panicked"))??;
    }
    let reqs = (n1 - n0).max(1);
    report("rps", format!("{:.0}", reqs as f64 / el.as_secs_f64()));
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let us = (b - a) as f64 * 1e6 / clk_tck() as f64;
        report("server_cpu_us_per_req", format!("{:.2}", us / reqs as f64));
    }
    Ok(())
}

fn idle(addr: &str, cfg: &Arc<ClientConfig>, n: usize, pid: u32) -> io::Result<()> {
    let (mut msg, mut buf) = (*b"warm-up", [0u8; 7]);
    echo(&mut connect(addr, cfg)?, &msg, &mut buf)?;
    std::thread::sleep(Duration::from_millis(300));
    let before = pid_rss_bytes(pid)?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = connect(addr, cfg)?;
        msg = *b"idle-tl";
        echo(&mut s, &msg, &mut buf)?;
        held.push(s);
    }
    // Let the server settle (handler goroutines back in their pool, buffers released).
    let mut after = pid_rss_bytes(pid)?;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = pid_rss_bytes(pid)?;
        if now == after {
            break;
        }
        after = now;
    }
    report("idle_conn_bytes", bytes_per(before, after, n));
    drop(held);
    Ok(())
}
