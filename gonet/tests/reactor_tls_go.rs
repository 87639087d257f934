//! Go's `crypto/tls` client against the reactor's TLS record layer: TLS 1.3 and TLS 1.2 with
//! AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 (the explicit-nonce and the XOR-nonce
//! records), echoes from 1 byte to 300 KB, and `close_notify` both ways. The Go side is
//! `tests/go/tls_peer/main.go`, built with `go build` (standard library only); without `go`
//! the test says so and skips, except under `CI=true`, where `.ci/run` installs it.
#![cfg(feature = "rustls")]

#[allow(dead_code)]
#[path = "../../examples/reactor_tls_echo.rs"]
mod reactor_tls_echo;

mod common;
mod reactor_util;

use std::process::Command;
use std::time::Duration;

use common::{build_go_peer, TempDir};
use reactor_util::Server;

#[test]
fn go_crypto_tls_client_in_every_version_and_suite() {
    common::within(Duration::from_secs(120), || {
        let dir = TempDir::new();
        let Some(bin) = build_go_peer(&dir, "tls_peer") else { return };
        let (cert, key, pem) = reactor_tls_echo::self_signed().unwrap();
        let ca = dir.file("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        let cfg = reactor_tls_echo::server_config(cert, key, &[]).unwrap();
        let srv = Server::start(reactor_tls_echo::event_loop(cfg), 1);
        let out = Command::new(&bin).arg(srv.addr.to_string()).arg(&ca).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "Go client failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            [
                "tls13 304 TLS_AES_128_GCM_SHA256 ok",
                "tls12-aes128gcm 303 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 ok",
                "tls12-aes256gcm 303 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ok",
                "tls12-chacha20 303 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 ok",
            ]
        );
        srv.stop().unwrap();
    });
}
