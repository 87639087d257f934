//! Allocations per request on the reactor's TLS path, counted: a global allocator counts the
//! allocations made on the server's one worker thread (the handler loop, the poller, rustls
//! inside them) while a client on another thread (not counted) runs echo rounds over one
//! connection, after a warm-up. The plaintext reactor is counted the same way beside it.
//!
//! The figure for TLS is rustls's (0.23) buffered API: it allocates a `Vec` for each record it
//! decrypts (`received_plaintext`) and for each record it encrypts (`sendable_tls`), so an
//! echo of one record each way costs two allocations; and a record longer than the 4 KiB its
//! deframer buffer shrinks back to whenever that buffer empties costs a grow and a shrink of
//! it (two more at 4 KiB). The reactor adds none of its own: the plaintext path, the same
//! buffers and loop, allocates nothing per request. (The handler here copies with
//! `next` + `write_binary`; `slice` + `append`, the examples' zero-copy echo, allocates the
//! sliced `LinkBuffer`'s node, one per request.)

#[allow(dead_code)]
#[path = "../../examples/reactor_tls_echo.rs"]
mod reactor_tls_echo;

mod alloc_count;
mod common;
mod reactor_util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use gonet::reactor::{Connection, EventLoop};
use reactor_util::Server;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

const WARMUP: usize = 2_000;
const ROUNDS: usize = 20_000;

/// The echo loop with one worker whose thread is counted from its first connection on.
fn echo_loop(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let b = EventLoop::builder(|c: &mut Connection| {
        let n = c.len();
        let d = c.next(n)?;
        c.write_binary(d)
    })
    .on_connect(|_c: &mut Connection| {
        alloc_count::count_in_shared();
        Ok(())
    });
    let b = match tls {
        Some(cfg) => b.tls(cfg),
        None => b,
    };
    Server::start(b.build(), 1)
}

/// Allocations on the server per echo round of `size` bytes, over `s`.
fn per_request(s: &mut (impl Read + Write), size: usize) -> f64 {
    let msg = vec![b'x'; size];
    let mut got = vec![0u8; size];
    let mut round = || {
        s.write_all(&msg).unwrap();
        s.flush().unwrap();
        s.read_exact(&mut got).unwrap();
    };
    for _ in 0..WARMUP {
        round();
    }
    let before = alloc_count::shared_allocs();
    for _ in 0..ROUNDS {
        round();
    }
    (alloc_count::shared_allocs() - before) as f64 / ROUNDS as f64
}

#[test]
fn allocations_per_request_plaintext_and_tls() {
    common::within(Duration::from_secs(120), || {
        let srv = echo_loop(None);
        let mut s = srv.connect();
        let plain: Vec<f64> = [64, 4096].iter().map(|&n| per_request(&mut s, n)).collect();
        drop(s);
        srv.stop().unwrap();

        let (cert, key, _) = reactor_tls_echo::self_signed().unwrap();
        let cfg = reactor_tls_echo::server_config(cert.clone(), key, &[]).unwrap();
        let srv = echo_loop(Some(cfg));
        let ccfg =
            reactor_tls_echo::tls_echo::client_config(&[cert], &[&rustls::version::TLS13]).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut s = StreamOwned::new(ClientConnection::new(ccfg, name).unwrap(), srv.connect());
        let tls: Vec<f64> = [64, 4096].iter().map(|&n| per_request(&mut s, n)).collect();
        drop(s);
        srv.stop().unwrap();

        eprintln!(
            "server allocations per echo request: plaintext {:.3} (64 B), {:.3} (4 KiB); \
             TLS 1.3 {:.3} (64 B), {:.3} (4 KiB)",
            plain[0], plain[1], tls[0], tls[1]
        );
        // The reactor's own path allocates nothing per request.
        for p in &plain {
            assert!(*p < 0.01, "plaintext echo allocates {p} times per request");
        }
        // rustls's buffered API: one record decrypted and one encrypted per request, a `Vec`
        // each, and at 4 KiB the deframer's grow and shrink; anything beyond is the
        // reactor's and a regression.
        for (t, bound) in tls.iter().zip([2.01, 4.01]) {
            assert!(*t <= bound, "TLS echo allocates {t} times per request (rustls's: {bound})");
        }
    });
}
