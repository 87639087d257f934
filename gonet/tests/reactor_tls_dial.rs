//! `reactor::dial_tls` (feature `rustls`): the client side of reactor TLS. Against the
//! reactor's own TLS server (TLS 1.3 and 1.2, on a goroutine and on a plain thread, messages
//! of many records), against `openssl s_server`, `close_notify` on close and on drop (seen by
//! a rustls server that tells a clean end from a bare TCP close), a certificate the client
//! does not trust or that names another host, a malformed server name, a listener that
//! never answers (cut by the dial's timeout), and after the handshake a read timeout and a
//! close from another thread.

#[allow(dead_code)]
#[path = "../../examples/reactor_tls_echo.rs"]
mod reactor_tls_echo;

mod common;
mod reactor_util;

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{openssl_available, Reap};
use gonet::reactor::{dial_tls, Connection};
use reactor_util::*;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ProtocolVersion, ServerConnection, StreamOwned};

const LIMIT: Duration = Duration::from_secs(90);
const DIAL: Duration = Duration::from_secs(20);

/// A client configuration (`tls_echo`'s) trusting `trust`, offering `alpn`.
fn client_config(
    trust: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let base =
        reactor_tls_echo::tls_echo::client_config(std::slice::from_ref(trust), versions).unwrap();
    let mut cfg = (*base).clone();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// Dials `addr` trusting `trust`, verifying the server as `name`.
fn dial_as(
    addr: std::net::SocketAddr,
    trust: &CertificateDer<'static>,
    name: &str,
) -> io::Result<Box<Connection>> {
    dial_tls(addr, client_config(trust, rustls::DEFAULT_VERSIONS, &[]), name, DIAL)
}

fn message(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + seed * 7 + i / 251) as u8).collect()
}

/// Writes `msg`, flushes, and reads as many bytes back through `next`.
fn echo(c: &mut Connection, msg: &[u8]) -> io::Result<Vec<u8>> {
    c.write_binary(msg)?;
    c.flush()?;
    let got = c.next(msg.len())?.to_vec();
    c.release();
    Ok(got)
}

/// Dials the reactor TLS echo server with each version, from the calling goroutine or thread.
fn echo_session(addr: std::net::SocketAddr, cert: &CertificateDer<'static>) {
    for (versions, want) in [
        (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
        (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
    ] {
        let cfg = client_config(cert, versions, &[b"h2", b"http/1.1"]);
        let mut c = dial_tls(addr, cfg, "localhost", DIAL).unwrap();
        assert!(c.is_tls());
        assert_eq!(c.tls_version(), Some(want));
        assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(c.server_name(), Some("localhost"));
        for (i, n) in [1, 64, 4096, 16 * 1024 + 1, 100 * 1024].iter().enumerate() {
            let msg = message(*n, i);
            assert!(echo(&mut c, &msg).unwrap() == msg, "echo of {n} bytes altered");
        }
        // Through `Read`/`Write` too.
        c.write_all(b"through std io\n").unwrap();
        c.flush().unwrap();
        let mut got = [0u8; 15];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"through std io\n");
        c.close();
    }
}

#[test]
fn dial_tls_against_the_reactor_tls_server_from_a_thread_and_a_goroutine() {
    common::within(LIMIT, || {
        let (cert, key, _) = reactor_tls_echo::self_signed().unwrap();
        let server = reactor_tls_echo::server_config(cert.clone(), key, &[b"http/1.1"]).unwrap();
        let srv = Server::start(reactor_tls_echo::event_loop(server), 2);
        echo_session(srv.addr, &cert);
        let addr = srv.addr;
        let c2 = cert.clone();
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            // Several goroutines at once, each parking in its reads.
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let c = c2.clone();
                    gonet::go(move || echo_session(addr, &c))
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        wait_for(Duration::from_secs(20), "all connections closed", || srv.lp.connections() == 0);
        srv.stop().unwrap();
    });
}

/// A rustls server on a plain thread: echoes one message, then reports whether the client
/// ended with `close_notify` (`read_to_end` is `Ok`) or with a bare TCP close (rustls's
/// `UnexpectedEof`).
fn one_shot_server(
    cert: CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<io::Result<()>>) {
    let cfg = reactor_tls_echo::server_config(cert, key, &[]).unwrap();
    let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (s, _) = ln.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut s = StreamOwned::new(ServerConnection::new(cfg).unwrap(), s);
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf)?;
        s.write_all(&buf)?;
        s.flush()?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).map(|_| ())
    });
    (addr, h)
}

#[test]
fn close_and_drop_send_close_notify() {
    common::within(LIMIT, || {
        let (cert, key, _) = reactor_tls_echo::self_signed().unwrap();
        for how in ["close", "drop"] {
            let (addr, h) = one_shot_server(cert.clone(), key.clone_key());
            let cfg = client_config(&cert, rustls::DEFAULT_VERSIONS, &[]);
            let mut c = dial_tls(addr, cfg, "127.0.0.1", DIAL).unwrap();
            assert_eq!(echo(&mut c, b"hello").unwrap(), b"hello");
            match how {
                "close" => {
                    c.close();
                    assert!(!c.is_active());
                    drop(c); // after close: nothing more is sent
                }
                _ => drop(c),
            }
            let r = h.join().unwrap();
            assert!(r.is_ok(), "{how}: the server saw no close_notify: {r:?}");
        }
    });
}

#[test]
fn dial_tls_to_openssl_s_server() {
    if !openssl_available() {
        return;
    }
    common::within(LIMIT, || {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = std::env::temp_dir().join(format!("gonet-s_server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (certf, keyf) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&certf, ck.cert.pem()).unwrap();
        std::fs::write(&keyf, ck.signing_key.serialize_pem()).unwrap();
        let cert = ck.cert.der().clone();
        for (flag, want) in
            [("-tls1_3", ProtocolVersion::TLSv1_3), ("-tls1_2", ProtocolVersion::TLSv1_2)]
        {
            // A free port (the race with another process taking it is harmless here).
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let addr = format!("127.0.0.1:{port}");
            // `-rev`: each line comes back reversed.
            let child = std::process::Command::new("openssl")
                .args(["s_server", "-accept", &addr, flag, "-rev", "-quiet"])
                .arg("-cert")
                .arg(&certf)
                .arg("-key")
                .arg(&keyf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start openssl s_server");
            let _reap = Reap(child);
            let end = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(&addr).is_err() {
                assert!(Instant::now() < end, "openssl s_server did not start on {addr}");
                std::thread::sleep(Duration::from_millis(20));
            }
            let cfg = client_config(&cert, rustls::ALL_VERSIONS, &[]);
            let mut c = dial_tls(addr.as_str(), cfg, "localhost", DIAL).unwrap();
            assert_eq!(c.tls_version(), Some(want));
            for i in 0..5 {
                let line = format!("line {i} over {flag} {}\n", "ab".repeat(i * 500));
                let mut want: Vec<u8> = line.trim_end_matches('\n').bytes().rev().collect();
                want.push(b'\n');
                c.write_string(&line).unwrap();
                c.flush().unwrap();
                let got = c.until(b'\n').unwrap().to_vec();
                c.release();
                assert!(got == want, "{flag}: {:?}", String::from_utf8_lossy(&got));
            }
            c.close();
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn an_untrusted_or_misnamed_certificate_is_a_clear_error() {
    common::within(LIMIT, || {
        let (cert, key, _) = reactor_tls_echo::self_signed().unwrap();
        let (other, _, _) = reactor_tls_echo::self_signed().unwrap();
        let server = reactor_tls_echo::server_config(cert.clone(), key, &[]).unwrap();
        let srv = Server::start(reactor_tls_echo::event_loop(server), 1);
        let addr = srv.addr.to_string();

        let e = dial_as(srv.addr, &other, "localhost").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let m = e.to_string();
        assert!(m.contains(&addr) && m.contains("invalid peer certificate"), "{m}");

        let e = dial_as(srv.addr, &cert, "example.com").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("not valid for name \"example.com\""), "{e}");

        let e = dial_as(srv.addr, &cert, "not a name").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("invalid server name"), "{e}");

        // The server is unharmed: a good client is served.
        let mut c = dial_as(srv.addr, &cert, "localhost").unwrap();
        assert_eq!(echo(&mut c, b"ok").unwrap(), b"ok");
        drop(c);
        srv.stop().unwrap();
    });
}

/// A listener that accepts (the kernel completes the TCP handshake) but never answers: the
/// dial's timeout covers the TLS handshake, on a plain thread and on a goroutine.
#[test]
fn the_dial_timeout_cuts_a_silent_server() {
    common::within(LIMIT, || {
        let (cert, _, _) = reactor_tls_echo::self_signed().unwrap();
        let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let cfg = client_config(&cert, rustls::DEFAULT_VERSIONS, &[]);
        let attempt = move |cfg: Arc<ClientConfig>| {
            let t0 = Instant::now();
            let e = dial_tls(addr, cfg, "localhost", Duration::from_millis(300)).unwrap_err();
            let took = t0.elapsed();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            let m = e.to_string();
            assert!(m.contains("TLS handshake not finished within 300ms"), "{m}");
            assert!(m.contains(&addr.to_string()), "{m}");
            assert!(took >= Duration::from_millis(300), "gave up after {took:?}");
        };
        attempt(cfg.clone());
        gonet::Builder::new().procs(1).build().unwrap().run(move || attempt(cfg));
        drop(ln);
    });
}

/// After the handshake the dialed connection keeps the `Connection` semantics: a read
/// timeout is `TimedOut`, and a `ConnHandle::close` from another thread wakes a read blocked
/// on a silent server with an error (the session is not touched from that thread).
#[test]
fn read_timeout_and_close_from_another_thread() {
    common::within(LIMIT, || {
        let (cert, key, _) = reactor_tls_echo::self_signed().unwrap();
        let cfg = reactor_tls_echo::server_config(cert.clone(), key, &[]).unwrap();
        let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        // Completes each handshake, then says nothing until the client leaves.
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (s, _) = ln.accept().unwrap();
                let mut s = StreamOwned::new(ServerConnection::new(cfg.clone()).unwrap(), s);
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock).unwrap();
                }
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            }
        });
        let c = dial_as(addr, &cert, "localhost").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)));
        let e = c.next(1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        drop(c);

        let c = dial_as(addr, &cert, "localhost").unwrap();
        let h = c.handle();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            h.close();
        });
        let e = c.next(1).unwrap_err();
        assert!(!c.is_active(), "{e}");
        closer.join().unwrap();
        drop(c);
        server.join().unwrap();
    });
}
