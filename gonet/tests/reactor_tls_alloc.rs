//! Allocations per request on the reactor's TLS path, counted: a global allocator counts the
//! allocations made on the server's one worker thread (the handler loop, the poller, rustls
//! inside them) while a client on another thread (not counted) runs echo rounds over one
//! connection, after a warm-up. The plaintext reactor is counted the same way beside it.
//!
//! TLS must cost nothing either: after the handshake the reactor's record layer opens records
//! in its ciphertext block and seals them into pooled blocks, and rustls (whose record APIs,
//! buffered or not, allocate a `Vec` per record each way in 0.23) is not called. Both
//! versions are counted, TLS 1.3 with AES-128-GCM and TLS 1.2 with ChaCha20-Poly1305 (its
//! records have no explicit nonce). (The handler here copies with `next` + `write_binary`;
//! `slice` + `append`, the examples' zero-copy echo, allocates the sliced `LinkBuffer`'s node,
//! one per request.)

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
use rustls::crypto::ring;
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
        let mut tls = Vec::new();
        for (ver, suite) in [
            (&rustls::version::TLS13, ring::cipher_suite::TLS13_AES_128_GCM_SHA256),
            (
                &rustls::version::TLS12,
                ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
        ] {
            let provider = rustls::crypto::CryptoProvider {
                cipher_suites: vec![suite],
                ..ring::default_provider()
            };
            let ccfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[ver])
                .unwrap()
                .with_root_certificates({
                    let mut roots = rustls::RootCertStore::empty();
                    roots.add(cert.clone()).unwrap();
                    roots
                })
                .with_no_client_auth();
            let name = ServerName::try_from("localhost").unwrap();
            let conn = ClientConnection::new(Arc::new(ccfg), name).unwrap();
            let mut s = StreamOwned::new(conn, srv.connect());
            tls.extend([64, 4096].map(|n| per_request(&mut s, n)));
            assert_eq!(s.conn.negotiated_cipher_suite(), Some(suite));
        }
        srv.stop().unwrap();

        eprintln!(
            "server allocations per echo request: plaintext {:.3} (64 B), {:.3} (4 KiB); \
             TLS 1.3 AES-128-GCM {:.3} (64 B), {:.3} (4 KiB); \
             TLS 1.2 ChaCha20-Poly1305 {:.3} (64 B), {:.3} (4 KiB)",
            plain[0], plain[1], tls[0], tls[1], tls[2], tls[3]
        );
        // The reactor allocates nothing per request, in plaintext or TLS.
        for p in plain.iter().chain(&tls) {
            assert!(*p < 0.01, "echo allocates {p} times per request");
        }
    });
}
