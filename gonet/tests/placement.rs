//! Placement of new goroutines (`worker.rs` invariant 5): a goroutine-per-connection server
//! written as the README shows (an accept loop, `gonet::go` per connection) spreads its
//! long-lived connection goroutines over every worker, whether the clients connect all at
//! once or one at a time; and the reactor's balancer keeps its connections even as they come
//! and go. Each connection goroutine's worker is read from a goroutine dump and cross-checked
//! with the per-worker statistics; nothing here depends on timing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::time::Duration;

use common::within;
use gonet::chan;
use gonet::net::{TcpListener, TcpStream};

const PROCS: usize = 8;

/// How the clients arrive.
#[derive(Clone, Copy, Debug)]
enum Arrival {
    /// All connect at once, each from its own thread.
    Burst,
    /// One thread connects them one after another, a few milliseconds apart, each doing its
    /// echoes before the next connects.
    Trickle,
}

/// The README's connection handler: echo until the peer closes.
fn serve(mut conn: TcpStream) {
    let mut buf = [0u8; 64];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// A client: connects and echoes `rounds` times.
fn client(addr: std::net::SocketAddr, rounds: usize) -> StdStream {
    let mut c = StdStream::connect(addr).unwrap();
    let mut b = [0u8; 8];
    for i in 0..rounds as u64 {
        c.write_all(&i.to_le_bytes()).unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), i);
    }
    c
}

/// Serves `conns` connections on `PROCS` workers and returns, per worker, how many connection
/// goroutines it runs once every client has connected and echoed.
fn spread(conns: usize, arrival: Arrival) -> Vec<usize> {
    within(Duration::from_secs(120), move || {
        let rt = gonet::Builder::new().procs(PROCS).build().unwrap();
        rt.run(move || {
            let ln = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = ln.local_addr().unwrap();
            // Each client reports when it has echoed, then holds its connection open until
            // `release` is dropped.
            let (ready_tx, ready_rx) = chan::unbounded::<()>();
            let (release_tx, release_rx) = chan::bounded::<()>(0);
            let mut threads = Vec::new();
            match arrival {
                Arrival::Burst => {
                    for _ in 0..conns {
                        let (ready, release) = (ready_tx.clone(), release_rx.clone());
                        threads.push(std::thread::spawn(move || {
                            let c = client(addr, 20);
                            ready.send(()).unwrap();
                            let _ = release.recv();
                            drop(c);
                        }));
                    }
                }
                Arrival::Trickle => {
                    let (ready, release) = (ready_tx.clone(), release_rx.clone());
                    threads.push(std::thread::spawn(move || {
                        let mut held = Vec::new();
                        for _ in 0..conns {
                            held.push(client(addr, 20));
                            ready.send(()).unwrap();
                            std::thread::sleep(Duration::from_millis(3));
                        }
                        let _ = release.recv();
                        drop(held);
                    }));
                }
            }
            drop((ready_tx, release_rx));
            // The README's accept loop, unchanged but for stopping after `conns`.
            for _ in 0..conns {
                let (conn, _peer) = ln.accept().unwrap();
                gonet::go(move || serve(conn));
            }
            for _ in 0..conns {
                ready_rx.recv().unwrap();
            }
            let dump = gonet::runtime::dump();
            let mut per_worker = vec![0usize; PROCS];
            for g in dump.goroutines() {
                // The connection goroutines: spawned here, unnamed (main is "main").
                if g.name().is_none() && g.spawn_site().file().ends_with("placement.rs") {
                    per_worker[g.worker()] += 1;
                }
            }
            assert_eq!(per_worker.iter().sum::<usize>(), conns, "{dump}");
            // The statistics agree: each worker's live goroutines are its connections, plus
            // main on one of them.
            let stats = gonet::runtime::stats().unwrap();
            let live: Vec<u64> = stats.workers.iter().map(|w| w.live).collect();
            for (i, (&l, &c)) in live.iter().zip(&per_worker).enumerate() {
                assert!(l == c as u64 || l == c as u64 + 1, "worker {i}: live {l}, conns {c}");
            }
            drop(release_tx);
            for t in threads {
                gonet::blocking(move || t.join()).unwrap();
            }
            per_worker
        })
    })
}

/// Every worker serves a connection once there are at least as many as workers, and none
/// serves more than ⌈C/N⌉ + 1.
fn assert_spread(conns: usize, arrival: Arrival) {
    let per_worker = spread(conns, arrival);
    let most = conns.div_ceil(PROCS) + 1;
    assert!(
        per_worker.iter().all(|&n| n >= 1),
        "{arrival:?}, {conns} connections: a worker serves none: {per_worker:?}"
    );
    assert!(
        per_worker.iter().all(|&n| n <= most),
        "{arrival:?}, {conns} connections: a worker serves more than {most}: {per_worker:?}"
    );
}

#[test]
fn burst_of_n_connections_reaches_every_worker() {
    assert_spread(PROCS, Arrival::Burst);
}

#[test]
fn trickle_of_n_connections_reaches_every_worker() {
    assert_spread(PROCS, Arrival::Trickle);
}

#[test]
fn burst_of_4n_connections_spreads_evenly() {
    assert_spread(4 * PROCS, Arrival::Burst);
}

#[test]
fn trickle_of_4n_connections_spreads_evenly() {
    assert_spread(4 * PROCS, Arrival::Trickle);
}

/// Spawn + join keeps its locality: with every other worker as loaded, a child joined at
/// once starts on its parent's worker (no load difference of two to correct).
#[test]
fn spawn_and_join_stay_on_the_parent_worker() {
    within(Duration::from_secs(60), || {
        let rt = gonet::Builder::new().procs(PROCS).build().unwrap();
        rt.run(|| {
            let mut elsewhere = 0;
            for _ in 0..200 {
                let before = placed_total();
                gonet::go(|| ()).join().unwrap();
                elsewhere += placed_total() - before;
            }
            assert_eq!(elsewhere, 0, "children of a lone goroutine were placed elsewhere");
        });
    });
}

fn placed_total() -> u64 {
    gonet::runtime::stats().unwrap().workers.iter().map(|w| w.placed).sum()
}

/// The reactor's default balancer (fewest connections) keeps the workers' counts within one
/// of each other as connections close and new ones arrive, and every close path uncounts.
#[test]
fn reactor_connections_stay_even_as_they_come_and_go() {
    within(Duration::from_secs(120), || {
        let rt = gonet::Builder::new().procs(PROCS).build().unwrap();
        rt.run(|| {
            let lp = gonet::reactor::EventLoop::builder(|c| {
                let n = c.len();
                let data = c.next(n)?;
                c.write_binary(data)?;
                Ok(())
            })
            .build();
            let ln = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = ln.local_addr().unwrap();
            let server = {
                let lp = lp.clone();
                gonet::go(move || lp.serve(ln))
            };
            let counts = || -> Vec<u64> {
                gonet::runtime::stats().unwrap().workers.iter().map(|w| w.connections).collect()
            };
            let wait_for = |total: u64| {
                for _ in 0..5000 {
                    if counts().iter().sum::<u64>() == total {
                        return;
                    }
                    gonet::time::sleep(Duration::from_millis(2));
                }
                panic!("connections never reached {total}: {:?}", counts());
            };
            let even = |what: &str| {
                let c = counts();
                let (lo, hi) = (c.iter().min().unwrap(), c.iter().max().unwrap());
                assert!(hi - lo <= 1, "{what}: {c:?}");
            };
            let open = |n: usize| -> Vec<StdStream> {
                gonet::blocking(move || (0..n).map(|_| client(addr, 1)).collect())
            };
            let conns = open(2 * PROCS);
            wait_for(2 * PROCS as u64);
            even("after 16 connections");
            // Opened one at a time onto even counts, connection i went to worker i mod 8:
            // close those of workers 0..4, leaving them none and the others two; then open 8
            // more, which must fill the holes (in turn, they would leave 1 against 3).
            let (closed, mut conns): (Vec<_>, Vec<_>) =
                conns.into_iter().enumerate().partition(|(i, _)| i % PROCS < PROCS / 2);
            drop(closed);
            wait_for(PROCS as u64);
            let c = counts();
            assert!(c[..PROCS / 2].iter().all(|&n| n == 0), "after closing: {c:?}");
            conns.extend(open(PROCS).into_iter().enumerate());
            wait_for(2 * PROCS as u64);
            even("after closing 8 and opening 8");
            drop(conns);
            wait_for(0);
            lp.shutdown(std::time::Instant::now() + Duration::from_secs(5)).unwrap();
            server.join().unwrap().unwrap();
        });
    });
}
