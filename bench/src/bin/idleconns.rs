//! Idle-connection holder: opens N (default 10,000) TCP connections to an echo server and
//! holds them without sending anything, so the server's resident memory per idle connection
//! can be measured.
//!
//! With `--server-pid PID` it measures by itself: one echo round trip to warm the server up,
//! the server's VmRSS, then N connections, a wait until the server holds N more descriptors
//! and its VmRSS settles, the VmRSS again; it prints `idle_conn_bytes` and exits (after
//! `--hold` seconds, default 0). Without it, it prints `ready N` once connected and holds the
//! connections for `--hold` seconds (default: an hour) so a script can read the VmRSS itself.
//!
//! Flags: --addr 127.0.0.1:9000 --conns 10000 --server-pid PID --hold SECS

use std::io::{self, Read, Write};
use std::thread::sleep;
use std::time::{Duration, Instant};

use gonet_bench::{bytes_per, connect_client, pid_fd_count, pid_rss_bytes, report, Flags};

fn main() {
    let flags = Flags::parse(&["addr", "conns", "server-pid", "hold", "echo-first"]);
    let addr: String = flags.get("addr", "127.0.0.1:9000".to_string());
    let n: usize = flags.get("conns", 10_000);
    let pid: Option<u32> = flags.get_opt("server-pid");
    let hold: f64 = flags.get("hold", if pid.is_some() { 0.0 } else { 3600.0 });
    let echo_first: u8 = flags.get("echo-first", 0);
    if let Err(e) = run(&addr, n, pid, hold, echo_first != 0) {
        eprintln!("idleconns: {e}");
        std::process::exit(1);
    }
}

/// One request/response on a fresh connection, so lazy server start-up is not counted.
fn warm_up(addr: &str) -> io::Result<()> {
    let mut c = connect_client(addr)?;
    echo_once(&mut c, b"warm-up")
}

/// Sends `msg` on `c` and checks that it comes back.
fn echo_once(c: &mut std::net::TcpStream, msg: &[u8]) -> io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back)?;
    if back != msg {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
    }
    Ok(())
}

/// Samples the server's VmRSS until it stops growing (or 10 s pass).
fn settled_rss(pid: u32) -> io::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = pid_rss_bytes(pid)?;
    loop {
        sleep(Duration::from_millis(300));
        let now = pid_rss_bytes(pid)?;
        if now <= last + 64 * 1024 || Instant::now() >= deadline {
            return Ok(now.max(last));
        }
        last = now;
    }
}

fn run(addr: &str, n: usize, pid: Option<u32>, hold: f64, echo_first: bool) -> io::Result<()> {
    let mut before = (0u64, 0usize);
    if let Some(pid) = pid {
        warm_up(addr)?;
        sleep(Duration::from_millis(300));
        before = (pid_rss_bytes(pid)?, pid_fd_count(pid)?);
    }

    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = connect_client(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connect #{i} to {addr}: {e}")))?;
        if echo_first {
            echo_once(&mut c, &[b'x'; 64])
                .map_err(|e| io::Error::new(e.kind(), format!("echo on #{i}: {e}")))?;
        }
        conns.push(c);
    }

    match pid {
        Some(pid) => {
            // Wait until the server has accepted every connection.
            let deadline = Instant::now() + Duration::from_secs(30);
            while pid_fd_count(pid)? < before.1 + n {
                if Instant::now() >= deadline {
                    eprintln!(
                        "idleconns: server holds {} of {n} new descriptors after 30 s",
                        pid_fd_count(pid)?.saturating_sub(before.1)
                    );
                    break;
                }
                sleep(Duration::from_millis(50));
            }
            let after = settled_rss(pid)?;
            report("idle_conns", n);
            report("server_rss_before_bytes", before.0);
            report("server_rss_after_bytes", after);
            report("idle_conn_bytes", bytes_per(before.0, after, n));
        }
        None => {
            report("ready", n);
        }
    }
    io::stdout().flush()?;
    sleep(Duration::from_secs_f64(hold));
    drop(conns);
    Ok(())
}
