//! `ConnWriter`: writes to a reactor connection from other goroutines and plain threads —
//! whole, in order, sent whether the connection is idle or its handler waits for input, with
//! the output cap as backpressure, failing once the connection is closed.

mod net_util;
mod reactor_util;

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gonet::reactor::{ConnWriter, Connection, EventLoop};
use reactor_util::Server;

const LIMIT: Duration = Duration::from_secs(60);
const REQ: usize = 8;
const RESP: usize = 64;

/// The response to request `id`: 64 bytes that say which request they answer.
fn response(id: u64) -> Vec<u8> {
    let mut r = format!("resp {id:010} ").into_bytes();
    r.resize(RESP - 1, b'.');
    r.push(b'\n');
    r
}

/// Reads `n` responses and checks each is whole and each id comes once.
fn read_responses(s: &mut std::net::TcpStream, n: u64) {
    let mut seen = HashSet::new();
    let mut buf = vec![0u8; RESP];
    for _ in 0..n {
        s.read_exact(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf).unwrap();
        let id: u64 = text[5..15].parse().unwrap_or_else(|_| panic!("torn response {text:?}"));
        assert_eq!(buf, response(id), "torn response");
        assert!(seen.insert(id), "response {id} twice");
    }
    assert_eq!(seen.len() as u64, n);
}

/// Answers each request on a goroutine of its own, out of order, through a `ConnWriter`.
fn answer_on_goroutines(c: &mut Connection) -> io::Result<()> {
    while c.len() >= REQ {
        let id = u64::from_le_bytes(c.next(REQ)?.try_into().unwrap());
        let w = c.writer();
        gonet::go(move || {
            gonet::time::sleep(Duration::from_micros(id % 7 * 100));
            w.write(&response(id)).unwrap();
        });
    }
    Ok(())
}

/// Kitex's multiplexed server: the handler returns at once (the connection goes idle) and
/// goroutines answer later; every answer arrives whole.
#[test]
fn goroutines_answer_an_idle_connection() {
    net_util::within(LIMIT, || {
        let srv = Server::start(EventLoop::builder(answer_on_goroutines).build(), 2);
        let mut s = srv.connect();
        let n = 2000u64;
        let mut reqs = Vec::new();
        for id in 0..n {
            reqs.extend_from_slice(&id.to_le_bytes());
        }
        s.write_all(&reqs).unwrap();
        read_responses(&mut s, n);
        srv.stop().unwrap();
    });
}

/// A handler that never returns — it waits in `next` for the next request — while goroutines
/// answer: the answers go out anyway (the handler is woken to send them).
#[test]
fn goroutines_answer_while_the_handler_waits_for_input() {
    net_util::within(LIMIT, || {
        let lp = EventLoop::builder(|c: &mut Connection| loop {
            let id = u64::from_le_bytes(c.next(REQ)?.try_into().unwrap());
            c.release();
            let w = c.writer();
            gonet::go(move || {
                gonet::time::sleep(Duration::from_millis(1));
                w.write(&response(id)).unwrap();
            });
        })
        .build();
        let srv = Server::start(lp, 2);
        let mut s = srv.connect();
        // One request at a time: each answer must arrive while the handler waits in `next`.
        for id in 0..200u64 {
            s.write_all(&id.to_le_bytes()).unwrap();
            read_responses(&mut s, 1);
        }
        drop(s); // the handler, waiting in `next`, sees the end of the stream
        srv.stop().unwrap();
    });
}

/// A plain thread streams through a `ConnWriter` to a peer that reads slowly: the writes wait
/// (the outbox holds about one output cap), everything arrives in order, and once the
/// connection closes a waiting write fails.
#[test]
fn a_thread_writer_is_held_back_and_fails_after_close() {
    net_util::within(LIMIT, || {
        let slot: Arc<Mutex<Option<ConnWriter>>> = Arc::default();
        let s2 = slot.clone();
        let lp = EventLoop::builder(|c: &mut Connection| {
            let n = c.len();
            c.skip(n)
        })
        .on_connect(move |c: &mut Connection| {
            *s2.lock().unwrap() = Some(c.writer());
            Ok(())
        })
        .output_cap(64 << 10)
        .build();
        let srv = Server::start(lp, 1);
        let mut s = srv.connect();
        s.write_all(b"hi").unwrap();
        let w = loop {
            if let Some(w) = slot.lock().unwrap().clone() {
                break w;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // 64 MiB in 1 KiB writes: far more than the kernel's socket buffers take.
        const CHUNKS: usize = 64 << 10;
        let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let wr = written.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..CHUNKS {
                let chunk = vec![(i % 251) as u8; 1024];
                if let Err(e) = w.write(&chunk) {
                    return (i, Some(e));
                }
                wr.store(i + 1, std::sync::atomic::Ordering::SeqCst);
            }
            (CHUNKS, None)
        });
        // Read 2 MiB slowly, checking the order.
        let mut buf = vec![0u8; 1024];
        for i in 0..2048 {
            s.read_exact(&mut buf).unwrap();
            assert!(buf.iter().all(|&b| b == (i % 251) as u8), "chunk {i} out of order");
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        // Queued beyond what was read: the output cap, the outbox's and what the kernel's
        // socket buffers hold (a few MiB on loopback), far from the 64 MiB written.
        let ahead = written.load(std::sync::atomic::Ordering::SeqCst) - 2048;
        assert!(ahead < 16 << 10, "{ahead} KiB queued past what the peer read: no backpressure");
        // Close: the writer, waiting for room, fails.
        srv.lp.shutdown(std::time::Instant::now()).ok();
        let (done, err) = writer.join().unwrap();
        assert!(done < CHUNKS, "all written after close?");
        assert!(err.is_some());
        srv.stop().ok();
    });
}
