//! Tests of the `tls_echo` example: rustls's blocking `StreamOwned` over gonet sockets, with a
//! self-signed certificate made at test time by rcgen. Round trips over TLS 1.3 and 1.2, many
//! concurrent clients, certificate and protocol failures, and `openssl s_client` against the
//! server (and our client against `openssl s_server`) when `openssl` is installed.

#[allow(dead_code)]
#[path = "../../examples/tls_echo.rs"]
mod tls_echo;

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion};

use common::{openssl_available, raise_fd_limit, s_client_echo, within, Reap};

/// A server with a fresh self-signed certificate on a two-worker runtime in a background
/// thread: its address and the certificate (DER and PEM).
fn start() -> (SocketAddr, CertificateDer<'static>, String) {
    let (cert, key, pem) = tls_echo::self_signed().expect("rcgen makes a certificate");
    let cfg = tls_echo::server_config(vec![cert.clone()], key).expect("server config");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(ln.local_addr().unwrap()).unwrap();
            tls_echo::serve(ln, cfg).unwrap();
        })
    });
    (rx.recv_timeout(Duration::from_secs(10)).expect("server started"), cert, pem)
}

fn ip_name() -> ServerName<'static> {
    ServerName::try_from("127.0.0.1").unwrap()
}

/// Runs `f` as the main goroutine of a client runtime.
fn on_goroutines<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    gonet::Builder::new().procs(2).build().unwrap().run(f)
}

/// One client session: handshake, `lines` echoed lines, clean close. Returns the version.
fn session(
    addr: SocketAddr,
    name: ServerName<'static>,
    cfg: Arc<ClientConfig>,
    lines: usize,
) -> std::io::Result<ProtocolVersion> {
    let mut tls = tls_echo::connect(&addr.to_string(), name, cfg)?;
    tls.sock.set_deadline(Some(Instant::now() + Duration::from_secs(60)))?;
    let bytes = tls_echo::echo_lines(&mut tls, lines)?;
    assert!(bytes > lines * 8);
    let version = tls.conn.protocol_version().expect("handshake done");
    tls_echo::close(&mut tls)?;
    Ok(version)
}

#[test]
fn round_trip_tls13_and_tls12() {
    within(Duration::from_secs(60), || {
        let (addr, cert, _) = start();
        let v13 = tls_echo::client_config(std::slice::from_ref(&cert), &[&rustls::version::TLS13])
            .unwrap();
        let v12 = tls_echo::client_config(std::slice::from_ref(&cert), &[&rustls::version::TLS12])
            .unwrap();
        let any = tls_echo::client_config(&[cert], rustls::DEFAULT_VERSIONS).unwrap();
        let versions = on_goroutines(move || {
            [
                session(addr, ip_name(), v13, 300).unwrap(),
                session(addr, ip_name(), v12, 300).unwrap(),
                session(addr, ServerName::try_from("localhost").unwrap(), any, 50).unwrap(),
            ]
        });
        assert_eq!(
            versions,
            [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2, ProtocolVersion::TLSv1_3]
        );
    });
}

#[test]
fn concurrent_clients() {
    raise_fd_limit();
    within(Duration::from_secs(120), || {
        let (addr, cert, _) = start();
        let cfg = tls_echo::client_config(&[cert], rustls::DEFAULT_VERSIONS).unwrap();
        let ok = on_goroutines(move || {
            let clients: Vec<_> = (0..1000)
                .map(|_| {
                    let cfg = cfg.clone();
                    gonet::go(move || session(addr, ip_name(), cfg, 20))
                })
                .collect();
            clients.into_iter().map(|c| c.join()).filter(|r| matches!(r, Ok(Ok(_)))).count()
        });
        assert_eq!(ok, 1000);
    });
}

#[test]
fn verification_failures_and_bad_clients() {
    within(Duration::from_secs(60), || {
        let (addr, cert, _) = start();
        // A client trusting another certificate refuses the server.
        let (other, _, _) = tls_echo::self_signed().unwrap();
        let wrong = tls_echo::client_config(&[other], rustls::DEFAULT_VERSIONS).unwrap();
        let good = tls_echo::client_config(&[cert], rustls::DEFAULT_VERSIONS).unwrap();
        let good2 = good.clone();
        on_goroutines(move || {
            let e = session(addr, ip_name(), wrong, 1).unwrap_err();
            assert!(e.to_string().contains("invalid peer certificate"), "{e}");
            // A name the certificate does not cover.
            let e =
                session(addr, ServerName::try_from("example.com").unwrap(), good, 1).unwrap_err();
            assert!(e.to_string().contains("invalid peer certificate"), "{e}");
        });
        // A plain-text client gets a TLS alert (or a close), not an echo.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty() || got[0] == 0x15, "expected an alert record, got {got:?}");
        // A client that stalls mid-handshake does not disturb the others.
        let mut stalled = std::net::TcpStream::connect(addr).unwrap();
        stalled.write_all(&[0x16, 0x03, 0x01, 0x00, 0x50]).unwrap(); // a record header only
        let v = on_goroutines(move || session(addr, ip_name(), good2, 10).unwrap());
        assert_eq!(v, ProtocolVersion::TLSv1_3);
        drop(stalled);
    });
}

#[test]
fn openssl_s_client_interop() {
    if !openssl_available() {
        return;
    }
    within(Duration::from_secs(60), || {
        let (addr, _, pem) = start();
        for version in ["-tls1_3", "-tls1_2"] {
            let lines: Vec<String> =
                (0..20).map(|i| format!("hello over {version} #{i}\n")).collect();
            s_client_echo(&addr.to_string(), &pem, version, &lines);
        }
    });
}

#[test]
fn client_against_openssl_s_server() {
    if !openssl_available() {
        return;
    }
    within(Duration::from_secs(60), || {
        let (cert, key) = {
            let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
            (ck.cert, ck.signing_key)
        };
        let dir = std::env::temp_dir().join(format!("gonet-tls-test-srv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        // A free port for s_server: bind, read it, release it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // `-rev` answers each line reversed.
        let _server = Reap(
            Command::new("openssl")
                .args(["s_server", "-rev", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
                .arg(dir.join("cert.pem"))
                .arg("-key")
                .arg(dir.join("key.pem"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start openssl s_server"),
        );
        let cfg = tls_echo::client_config(&[cert.der().clone()], rustls::DEFAULT_VERSIONS).unwrap();
        let reply = on_goroutines(move || {
            let addr = format!("127.0.0.1:{port}");
            let t = Instant::now();
            let mut tls = loop {
                match tls_echo::connect(&addr, ip_name(), cfg.clone()) {
                    Ok(tls) => break tls,
                    Err(e) if t.elapsed() < Duration::from_secs(10) => {
                        let _ = e;
                        gonet::time::sleep(Duration::from_millis(50));
                    }
                    Err(e) => panic!("cannot reach openssl s_server: {e}"),
                }
            };
            tls.sock.set_deadline(Some(Instant::now() + Duration::from_secs(20))).unwrap();
            tls.write_all(b"gonet goroutine\n").unwrap();
            tls.flush().unwrap();
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while !line.ends_with(b"\n") {
                assert_eq!(tls.read(&mut b).unwrap(), 1, "s_server closed early");
                line.push(b[0]);
            }
            String::from_utf8(line).unwrap()
        });
        assert_eq!(reply.trim_end(), "enituorog tenog");
        let _ = std::fs::remove_dir_all(&dir);
    });
}
