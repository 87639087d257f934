//! The reactor under load: 10,000 connections (and the memory an idle one costs), 1 GiB
//! through one connection with every byte checked, a slow handler facing a fast sender and a
//! 1 GiB upload in bounded memory, and the dial timeout.

mod common;
mod reactor_util;

use std::io::{self, BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::reactor::{buffer_stats, Connection, EventLoop};
use reactor_util::*;

const LIMIT: Duration = Duration::from_secs(120);
const CLIENT_ENV: &str = "GONET_REACTOR_LOAD_CLIENTS";

/// Byte `i` of the test stream.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(0x9e37_79b9) >> 13) as u8
}

/// 10,000 connections, each echoing once and then idle. The clients live in a child process
/// (this binary re-run): the default hard limit of 20,000 descriptors cannot hold both ends
/// of 10,000 connections in one process. Reports the server's resident memory per idle
/// connection.
#[test]
fn ten_thousand_connections() {
    if let Ok(v) = std::env::var(CLIENT_ENV) {
        return clients_child(&v);
    }
    common::raise_fd_limit();
    common::within(LIMIT, || {
        let srv = Server::start(EventLoop::builder(echo).build(), 2);
        std::thread::sleep(Duration::from_millis(50));
        let rss0 = rss();
        let n = 10_000;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ten_thousand_connections", "--nocapture", "--test-threads=1"])
            .env(CLIENT_ENV, format!("{} {n}", srv.addr))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "client child ended early");
            if line.contains("READY") {
                break;
            }
        }
        wait_for(Duration::from_secs(30), "10,000 connections", || srv.lp.connections() == n);
        let per = (rss().saturating_sub(rss0)) / n;
        println!("reactor: {n} idle connections, {per} bytes of server RSS each");
        // About 0.8 KiB measured; the bound leaves room for allocator noise.
        assert!(per < 2048, "{per} bytes per idle connection");
        drop(child.stdin.take()); // the child exits, closing its connections
        assert!(child.wait().unwrap().success());
        wait_for(Duration::from_secs(30), "the connections to close", || srv.lp.connections() == 0);
        srv.stop().unwrap();
    });
}

fn clients_child(v: &str) {
    common::raise_fd_limit();
    let mut it = v.split_whitespace();
    let addr: std::net::SocketAddr = it.next().unwrap().parse().unwrap();
    let n: usize = it.next().unwrap().parse().unwrap();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let msg = (i as u32).to_le_bytes();
        assert_eq!(roundtrip(&mut s, &msg), msg);
        conns.push(s);
    }
    println!("READY");
    let mut sink = String::new();
    let _ = io::stdin().read_line(&mut sink); // wait for the parent
}

/// 1 GiB echoed through one connection, every byte checked.
#[test]
fn one_gib_through_one_connection() {
    common::within(LIMIT, || {
        let srv = Server::start(EventLoop::builder(echo).build(), 2);
        let s = srv.connect();
        let mut r = s.try_clone().unwrap();
        const TOTAL: u64 = 1 << 30;
        let writer = std::thread::spawn(move || {
            let mut s = s;
            let mut buf = vec![0u8; 256 * 1024];
            let mut off = 0u64;
            while off < TOTAL {
                for (k, b) in buf.iter_mut().enumerate() {
                    *b = pattern(off + k as u64);
                }
                s.write_all(&buf).unwrap();
                off += buf.len() as u64;
            }
            s
        });
        let mut buf = vec![0u8; 256 * 1024];
        let mut off = 0u64;
        while off < TOTAL {
            let n = r.read(&mut buf).unwrap();
            assert!(n > 0, "end of stream at {off}");
            for (k, &b) in buf[..n].iter().enumerate() {
                if b != pattern(off + k as u64) {
                    panic!(
                        "byte {} is {b:#x}, want {:#x}",
                        off + k as u64,
                        pattern(off + k as u64)
                    );
                }
            }
            off += n as u64;
        }
        drop(writer.join().unwrap());
        srv.stop().unwrap();
    });
}

/// A handler that consumes slowly, facing a sender as fast as TCP allows: the input cap
/// stops the reads, so the server holds a bounded number of blocks while 64 MiB go through.
#[test]
fn slow_handler_fast_sender_bounded_memory() {
    common::within(LIMIT, || {
        let got = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let peak_len = Arc::new(AtomicUsize::new(0));
        let (g2, p2, l2) = (got.clone(), peak.clone(), peak_len.clone());
        let lp = EventLoop::builder(move |c: &mut Connection| {
            l2.fetch_max(c.len(), Ordering::Relaxed);
            // Wait for 128 KiB (the reads accumulate up to it), consume them, dawdle.
            let n = 128 * 1024;
            c.skip(n)?;
            p2.fetch_max(buffer_stats().live, Ordering::Relaxed);
            c.release();
            g2.fetch_add(n as u64, Ordering::Relaxed);
            gonet::time::sleep(Duration::from_millis(2));
            Ok(())
        })
        .input_cap(256 * 1024)
        .build();
        let srv = Server::start(lp, 1);
        let live0 = buffer_stats().live;
        let mut s = srv.connect();
        const TOTAL: u64 = 64 << 20;
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..TOTAL >> 20 {
            s.write_all(&chunk).unwrap();
        }
        wait_for(Duration::from_secs(60), "all bytes consumed", || {
            got.load(Ordering::Relaxed) == TOTAL
        });
        let peak = peak.load(Ordering::Relaxed).saturating_sub(live0);
        let peak_len = peak_len.load(Ordering::Relaxed);
        println!("slow handler: peak {peak} live blocks, {peak_len} bytes buffered, 256 KiB cap");
        assert!(peak_len <= 256 * 1024, "{peak_len} bytes buffered above the input cap");
        // 256 KiB is 64 blocks of 4 KiB; the worker's pool may keep some more.
        assert!(peak >= 4, "{peak} live blocks: the handler did not hold 128 KiB");
        assert!(peak < 400, "{peak} live blocks: the input is not bounded");
        srv.stop().unwrap();
    });
}

/// A 1 GiB upload, consumed as it comes, in bounded memory (resident set and blocks).
#[test]
fn one_gib_upload_bounded_memory() {
    common::within(LIMIT, || {
        let got = Arc::new(AtomicU64::new(0));
        let sum = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (g2, s2, p2) = (got.clone(), sum.clone(), peak.clone());
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let n = c.len();
            let mut h = 0u64;
            for &b in c.next(n)? {
                h = h.wrapping_add(b as u64);
            }
            c.release();
            s2.fetch_add(h, Ordering::Relaxed);
            g2.fetch_add(n as u64, Ordering::Relaxed);
            p2.fetch_max(rss(), Ordering::Relaxed);
            Ok(())
        })
        .build();
        let srv = Server::start(lp, 2);
        let rss0 = rss();
        let mut s = srv.connect();
        const TOTAL: u64 = 1 << 30;
        let chunk: Vec<u8> = (0..1u64 << 20).map(pattern).collect();
        let want: u64 = chunk.iter().map(|&b| b as u64).sum::<u64>() * (TOTAL >> 20);
        for _ in 0..TOTAL >> 20 {
            s.write_all(&chunk).unwrap();
        }
        wait_for(Duration::from_secs(60), "the upload", || got.load(Ordering::Relaxed) == TOTAL);
        assert_eq!(sum.load(Ordering::Relaxed), want, "checksum of the upload");
        let grew = peak.load(Ordering::Relaxed).saturating_sub(rss0);
        println!("1 GiB upload: resident set grew by {} KiB at most", grew / 1024);
        assert!(grew < 64 << 20, "resident set grew by {grew} bytes during a 1 GiB upload");
        srv.stop().unwrap();
    });
}

/// `dial` gives up at its timeout on a listener that drops SYNs, on a goroutine and on a
/// plain thread; a refused dial says where.
#[test]
fn dial_timeout() {
    common::within(LIMIT, || {
        let raw = common::full_backlog_listener();
        let addr = raw.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = 0;
        for _ in 0..6 {
            let t = Instant::now();
            match gonet::reactor::dial(addr, Duration::from_millis(300)) {
                Ok(c) => held.push(c),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                    assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
                    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
                    timed_out += 1;
                }
            }
        }
        assert!(timed_out > 0, "every dial connected although the accept queue was full");
        drop(held);
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            let t = Instant::now();
            let e = loop {
                match gonet::reactor::dial(addr, Duration::from_millis(200)) {
                    Ok(c) => std::mem::forget(c),
                    Err(e) => break e,
                }
                assert!(t.elapsed() < Duration::from_secs(10));
            };
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        });
        drop(raw);
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = gonet::reactor::dial(dead, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        assert!(e.to_string().contains(&dead.to_string()), "{e}");
    });
}

/// A connection whose peer streams without pause does not starve the other connections of
/// its worker: it goes to the back of the ready queue after a turn of reads.
#[test]
fn a_streaming_connection_does_not_starve_the_others() {
    common::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| {
            if c.peek(1)?[0] == b'S' {
                // The stream: consumed as it comes, slower than the peer sends, so that
                // every read finds more queued.
                let n = c.len();
                let mut h = 0u64;
                for _ in 0..8 {
                    for &b in c.peek(n)? {
                        h = h.wrapping_mul(31).wrapping_add(b as u64);
                    }
                }
                std::hint::black_box(h);
                c.skip(n)?;
                return Ok(());
            }
            echo(c)
        })
        .build();
        let srv = Server::start(lp, 1);
        let mut stream = srv.connect();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = done.clone();
        let streamer = std::thread::spawn(move || {
            let chunk = vec![b'S'; 1 << 20];
            for _ in 0..512 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
            d2.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(200)); // the stream is in full flow
        let mut s = srv.connect();
        for i in 0..20u32 {
            assert_eq!(roundtrip(&mut s, &i.to_be_bytes()), i.to_be_bytes());
        }
        assert!(
            !done.load(Ordering::SeqCst),
            "the echoes were only answered once the 512 MiB stream had ended"
        );
        drop(srv);
        streamer.join().unwrap();
    });
}
