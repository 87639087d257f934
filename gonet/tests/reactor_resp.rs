//! The RESP server of `examples/resp_kv.rs` on the reactor (`--reactor`): commands, pipelining
//! across reads, a command split over many packets, protocol errors, QUIT. With the `rustls`
//! feature, the same over TLS (`--tls`): driven by `redis-cli --tls` and by a `dial_tls`
//! client (pipelining, a 1 MB value).

mod common;

#[path = "../../examples/resp_kv.rs"]
#[allow(dead_code)]
mod resp_kv;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::time::Duration;

fn start() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(ln.local_addr().unwrap()).unwrap();
            resp_kv::serve_reactor(ln, Arc::new(resp_kv::Store::new(8))).unwrap();
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("server started")
}

fn exchange(s: &mut TcpStream, req: &[u8], want: &[u8]) {
    s.write_all(req).unwrap();
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

#[test]
fn resp_on_the_reactor() {
    common::within(Duration::from_secs(60), || {
        let addr = start();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        exchange(&mut s, b"PING\r\n", b"+PONG\r\n");
        exchange(&mut s, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", b"+OK\r\n");
        exchange(&mut s, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$5\r\nhello\r\n");
        // 100 pipelined INCRs in one write.
        let req = b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n".repeat(100);
        let want: Vec<u8> = (1..=100).flat_map(|i| format!(":{i}\r\n").into_bytes()).collect();
        exchange(&mut s, &req, &want);
        // A 1 MB value arriving in pieces.
        let v = vec![b'x'; 1 << 20];
        let mut req = format!("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n${}\r\n", v.len()).into_bytes();
        req.extend_from_slice(&v);
        req.extend_from_slice(b"\r\n");
        for piece in req.chunks(100_000) {
            s.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut ok = [0u8; 5];
        s.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        exchange(&mut s, b"*2\r\n$6\r\nEXISTS\r\n$1\r\nb\r\n", b":1\r\n");
        exchange(&mut s, b"QUIT\r\n", b"+OK\r\n");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty());
        // A protocol error gets its reply and a close.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"*1\r\n$x\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(String::from_utf8_lossy(&rest).starts_with("-ERR Protocol error"), "{rest:?}");
    });
}

/// Starts the TLS server (`--tls`) with a fresh self-signed certificate; returns its address
/// and the certificate.
#[cfg(feature = "rustls")]
fn start_tls() -> (SocketAddr, rustls::pki_types::CertificateDer<'static>, String) {
    let (cert, key, pem) = resp_kv::reactor_tls_echo::self_signed().unwrap();
    let cfg = resp_kv::reactor_tls_echo::server_config(cert.clone(), key, &[]).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(ln.local_addr().unwrap()).unwrap();
            resp_kv::serve_reactor_tls(ln, Arc::new(resp_kv::Store::new(8)), cfg).unwrap();
        })
    });
    (rx.recv_timeout(Duration::from_secs(10)).expect("server started"), cert, pem)
}

#[cfg(feature = "rustls")]
#[test]
fn resp_over_tls_with_redis_cli() {
    if !common::redis_cli_available() {
        return;
    }
    common::within(Duration::from_secs(60), || {
        let (addr, _, pem) = start_tls();
        let dir = std::env::temp_dir().join(format!("gonet-resp-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        let port = addr.port().to_string();
        let run = |tls: &[&str], args: &[&str]| {
            let out = std::process::Command::new("timeout")
                .args(["10", "redis-cli", "-h", "127.0.0.1", "-p", &port])
                .args(tls)
                .args(args)
                .output()
                .expect("run redis-cli");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && err.is_empty(), "redis-cli {args:?}: {err}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let insecure = ["--tls", "--insecure"];
        let verified = ["--tls", "--sni", "localhost", "--cacert", ca.to_str().unwrap()];
        assert_eq!(run(&insecure, &["PING"]), "PONG");
        assert_eq!(run(&verified, &["SET", "greeting", "hello over tls"]), "OK");
        assert_eq!(run(&insecure, &["GET", "greeting"]), "hello over tls");
        // `-r 200`: two hundred INCRs over one TLS connection.
        let out = run(&verified, &["-r", "200", "INCR", "visits"]);
        assert_eq!(out.lines().last(), Some("200"), "{out}");
        assert_eq!(run(&insecure, &["MGET", "greeting", "visits", "none"]), "hello over tls\n200");
        // Plaintext RESP on the TLS port is refused (a handshake failure), not served.
        let out = std::process::Command::new("timeout")
            .args(["10", "redis-cli", "-h", "127.0.0.1", "-p", &port, "PING"])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains("PONG"));
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[cfg(feature = "rustls")]
#[test]
fn resp_over_tls_with_a_dial_tls_client() {
    common::within(Duration::from_secs(60), || {
        let (addr, cert, _) = start_tls();
        let cfg =
            resp_kv::reactor_tls_echo::tls_echo::client_config(&[cert], rustls::DEFAULT_VERSIONS)
                .unwrap();
        let mut c =
            gonet::reactor::dial_tls(addr, cfg, "localhost", Duration::from_secs(10)).unwrap();
        let mut call = |req: &[u8], want: &[u8]| {
            c.write_binary(req).unwrap();
            c.flush().unwrap();
            let got = c.next(want.len()).unwrap().to_vec();
            c.release();
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        };
        call(b"PING\r\n", b"+PONG\r\n");
        // 100 pipelined INCRs in one write.
        let req = b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n".repeat(100);
        let want: Vec<u8> = (1..=100).flat_map(|i| format!(":{i}\r\n").into_bytes()).collect();
        call(&req, &want);
        // A 1 MB value: many records each way.
        let v = vec![b'v'; 1 << 20];
        let mut req = format!("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n${}\r\n", v.len()).into_bytes();
        req.extend_from_slice(&v);
        req.extend_from_slice(b"\r\n");
        call(&req, b"+OK\r\n");
        let mut want = format!("${}\r\n", v.len()).into_bytes();
        want.extend_from_slice(&v);
        want.extend_from_slice(b"\r\n");
        call(b"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n", &want);
        call(b"QUIT\r\n", b"+OK\r\n");
    });
}
