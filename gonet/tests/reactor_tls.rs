//! TLS on the reactor (`Builder::tls`, feature `rustls`): rustls clients over TLS 1.3 and 1.2
//! against the `reactor_tls_echo` example's loop, messages of many records, many connections,
//! the input cap with plaintext left in the session, a garbage client and a silent one (both
//! closed with a report), `close_notify` both ways, ALPN and SNI, and `openssl s_client`.

#[allow(dead_code)]
#[path = "../../examples/reactor_tls_echo.rs"]
mod reactor_tls_echo;

mod common;
mod reactor_util;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use common::{openssl_available, s_client_echo};
use gonet::reactor::{Connection, EventLoop};
use reactor_util::*;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};

const LIMIT: Duration = Duration::from_secs(90);

type Client = StreamOwned<ClientConnection, TcpStream>;

/// Reports the runtime sends through the `log` crate, kept for the assertions.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        self.0.lock().unwrap().push(r.args().to_string());
    }
    fn flush(&self) {}
}

static REPORTS: Capture = Capture(Mutex::new(Vec::new()));

fn capture_reports() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&REPORTS).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Waits until a report mentions every one of `words`.
fn wait_report(words: &[&str]) -> String {
    let mut found = String::new();
    wait_for(Duration::from_secs(30), &format!("a report with {words:?}"), || {
        let r = REPORTS.0.lock().unwrap();
        match r.iter().find(|m| words.iter().all(|w| m.contains(w))) {
            Some(m) => {
                found = m.clone();
                true
            }
            None => false,
        }
    });
    found
}

struct Tls {
    cert: CertificateDer<'static>,
    pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn tls(alpn: &[&[u8]]) -> Tls {
    let (cert, key, pem) = reactor_tls_echo::self_signed().unwrap();
    let server = reactor_tls_echo::server_config(cert.clone(), key, alpn).unwrap();
    Tls { cert, pem, server }
}

fn client_config(
    t: &Tls,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(t.cert.clone()).unwrap();
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// Connects and completes the handshake, verifying the server as `name`.
fn connect(addr: SocketAddr, cfg: Arc<ClientConfig>, name: &str) -> io::Result<Client> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut s = StreamOwned::new(ClientConnection::new(cfg, name).unwrap(), tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// A message of `n` bytes, different for each `seed`.
fn message(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + seed * 7 + i / 251) as u8).collect()
}

fn echo(s: &mut Client, msg: &[u8]) -> io::Result<()> {
    s.write_all(msg)?;
    s.flush()?;
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got)?;
    assert!(got == msg, "echo altered ({} bytes)", msg.len());
    Ok(())
}

/// Sends `close_notify` and expects the server's in answer (a clean end of stream, not a
/// TCP close without one, which rustls reports as `UnexpectedEof`).
fn close_cleanly(s: &mut Client) {
    s.conn.send_close_notify();
    s.flush().unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the server answers close_notify with its own");
    assert!(rest.is_empty());
}

#[test]
fn echo_over_tls13_and_tls12_with_messages_of_many_records() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 2);
        for (versions, want) in [
            (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
            (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        ] {
            let mut s = connect(srv.addr, client_config(&t, versions, &[]), "127.0.0.1").unwrap();
            assert_eq!(s.conn.protocol_version(), Some(want));
            for (i, n) in [1, 64, 4096, 16 * 1024 + 1, 64 * 1024, 64 * 1024].iter().enumerate() {
                echo(&mut s, &message(*n, i)).unwrap();
            }
            close_cleanly(&mut s);
        }
        srv.stop().unwrap();
    });
}

#[test]
fn many_connections_at_once() {
    common::raise_fd_limit();
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 2);
        let cfg = client_config(&t, rustls::DEFAULT_VERSIONS, &[]);
        let threads: Vec<_> = (0..4)
            .map(|k| {
                let cfg = cfg.clone();
                let addr = srv.addr;
                std::thread::spawn(move || {
                    // All of this thread's connections are open together, then each echoes.
                    let mut conns: Vec<Client> = (0..100)
                        .map(|_| connect(addr, cfg.clone(), "localhost").unwrap())
                        .collect();
                    for round in 0..3 {
                        for (i, s) in conns.iter_mut().enumerate() {
                            echo(s, &message(100 + i * 13, k * 1000 + round)).unwrap();
                        }
                    }
                    conns.iter_mut().for_each(close_cleanly);
                })
            })
            .collect();
        threads.into_iter().for_each(|h| h.join().unwrap());
        wait_for(Duration::from_secs(20), "all connections closed", || srv.lp.connections() == 0);
        srv.stop().unwrap();
    });
}

/// An input cap below one record: the plaintext of an opened record the input has no room for
/// stays at the front of the ciphertext buffer, and the handler must be called again for it
/// (not left idle with it undelivered); records of 16 KiB under a cap of 1000 bytes.
#[test]
fn input_cap_below_a_record_still_delivers_everything() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let lp = EventLoop::builder(reactor_tls_echo::echo)
            .tls(t.server.clone())
            .input_cap(1000)
            .output_cap(1000)
            .build();
        let srv = Server::start(lp, 1);
        let mut s =
            connect(srv.addr, client_config(&t, rustls::DEFAULT_VERSIONS, &[]), "localhost")
                .unwrap();
        for i in 0..4 {
            echo(&mut s, &message(64 * 1024, i)).unwrap();
        }
        close_cleanly(&mut s);
        srv.stop().unwrap();
    });
}

/// Two records in one write (16 KiB and 8 KiB of plaintext, 24.6 KiB on the wire), four
/// times: reads of up to 32 KiB end inside a record, whose start waits in the ciphertext
/// buffer for the rest (appended by the next read), and records already read must be opened
/// before the connection goes idle: no edge will come for bytes already read.
#[test]
fn ciphertext_read_beyond_what_rustls_takes_is_delivered() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 1);
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let mut s = connect(srv.addr, client_config(&t, versions, &[]), "localhost").unwrap();
            for i in 0..4 {
                echo(&mut s, &message(24 * 1024, i)).unwrap();
            }
            close_cleanly(&mut s);
        }
        srv.stop().unwrap();
    });
}

#[test]
fn garbage_is_closed_with_a_report() {
    capture_reports();
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 1);
        // Not TLS at all: the handshake fails, an alert (or nothing) comes back, then the close.
        let mut s = srv.connect();
        let me = s.local_addr().unwrap().to_string();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let (got, _) = read_to_end(&mut s);
        assert!(got.is_empty() || got[0] == 0x15, "expected an alert record, got {got:?}");
        let r = wait_report(&[&me, "TLS handshake"]);
        assert!(r.contains("closing"), "{r}");

        // A bad record after the handshake: a corrupted application-data record.
        let cfg = client_config(&t, &[&rustls::version::TLS13], &[]);
        let mut c = connect(srv.addr, cfg, "localhost").unwrap();
        echo(&mut c, b"fine\n").unwrap();
        let me = c.sock.local_addr().unwrap().to_string();
        c.sock.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
        c.sock.write_all(&[0xAB; 0x20]).unwrap();
        let mut rest = Vec::new();
        let e = c.read_to_end(&mut rest).unwrap_err();
        assert!(rest.is_empty(), "{e}");
        let r = wait_report(&[&me, "bad TLS record"]);
        assert!(r.contains("closing"), "{r}");
        srv.stop().unwrap();
    });
}

#[test]
fn a_silent_client_is_cut_by_the_handshake_timeout() {
    capture_reports();
    common::within(LIMIT, || {
        let t = tls(&[]);
        let lp = EventLoop::builder(reactor_tls_echo::echo)
            .tls(t.server.clone())
            .handshake_timeout(Duration::from_millis(300))
            .build();
        let srv = Server::start(lp, 1);
        // One that sends nothing, one that stalls after a record header.
        let mut silent = srv.connect();
        let mut stalled = srv.connect();
        stalled.write_all(&[0x16, 0x03, 0x01, 0x00, 0x50]).unwrap();
        for s in [&mut silent, &mut stalled] {
            let me = s.local_addr().unwrap().to_string();
            let (got, _) = read_to_end(s);
            assert!(got.is_empty(), "{got:?}");
            wait_report(&[&me, "TLS handshake not finished within 300ms"]);
        }
        // A client that completes in time is served.
        let mut c =
            connect(srv.addr, client_config(&t, rustls::DEFAULT_VERSIONS, &[]), "localhost")
                .unwrap();
        std::thread::sleep(Duration::from_millis(600)); // past the timeout: it must not fire
        echo(&mut c, b"still here\n").unwrap();
        close_cleanly(&mut c);
        srv.stop().unwrap();
    });
}

/// Clients that connect and send nothing hold no goroutine: the handshake goes idle in the
/// loop, waiting for the next flight (a goroutine-per-connection server holds one each).
#[test]
fn silent_clients_hold_no_goroutine() {
    const N: usize = 300;
    common::raise_fd_limit();
    let t = tls(&[]);
    let cert = t.cert.clone();
    let cfg = client_config(&t, rustls::DEFAULT_VERSIONS, &[]);
    common::run(1, move || {
        let lp = reactor_tls_echo::event_loop(t.server.clone());
        let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let lp2 = lp.clone();
        gonet::go(move || lp2.serve(ln));
        let before = gonet::runtime::stats().unwrap().alive;
        // Plain threads open the connections (their connects and handshakes block).
        let opener = std::thread::spawn(move || {
            (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect::<Vec<_>>()
        });
        while lp.connections() < N {
            gonet::time::sleep(Duration::from_millis(5));
        }
        gonet::time::sleep(Duration::from_millis(50));
        let alive = gonet::runtime::stats().unwrap().alive;
        assert!(alive < before + 10, "{N} silent TLS clients hold {} goroutines", alive - before);
        // They are still served once they speak.
        let silent = opener.join().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = connect(addr, cfg, "localhost").unwrap();
            echo(&mut s, b"after the silent ones\n").unwrap();
            close_cleanly(&mut s);
        });
        while !client.is_finished() {
            gonet::time::sleep(Duration::from_millis(5));
        }
        client.join().unwrap();
        drop((silent, cert));
        lp.shutdown(std::time::Instant::now() + Duration::from_secs(5)).unwrap();
    });
}

/// A peer that never reads: the handler waits for writability with the output at its cap
/// (memory bounded), and a close from another thread wakes it and finalizes the connection
/// (a TLS socket is shut down for reading only, so the wake must not need writability).
#[test]
fn a_peer_that_never_reads_is_bounded_and_closable() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let handle = Arc::new(Mutex::new(None));
        let h2 = handle.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let n = c.len();
            c.skip(n)?;
            *h2.lock().unwrap() = Some(c.handle());
            let block = vec![7u8; 16 * 1024];
            loop {
                c.write_binary(&block)?; // past the output cap this sends, and waits
            }
        })
        .tls(t.server.clone())
        .output_cap(64 * 1024)
        .build();
        let srv = Server::start(lp, 1);
        let mut s =
            connect(srv.addr, client_config(&t, rustls::DEFAULT_VERSIONS, &[]), "localhost")
                .unwrap();
        s.write_all(b"go").unwrap();
        s.flush().unwrap();
        wait_for(Duration::from_secs(20), "the handler running", || {
            handle.lock().unwrap().is_some()
        });
        let rss = reactor_util::rss();
        std::thread::sleep(Duration::from_millis(300)); // it fills the socket buffers, then waits
        let grown = reactor_util::rss().saturating_sub(rss);
        assert!(grown < 16 << 20, "a non-reading peer grew the server by {grown} bytes");
        handle.lock().unwrap().take().unwrap().close();
        wait_for(Duration::from_secs(20), "the connection finalized", || srv.lp.connections() == 0);
        srv.stop().unwrap();
    });
}

/// `on_connect` runs after the handshake and what it writes goes out encrypted; a TLS 1.3
/// key update from the client is answered (rustls's records sent from the read path) and
/// the echo goes on under the new keys.
#[test]
fn greeting_in_on_connect_and_key_updates() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let lp = EventLoop::builder(reactor_tls_echo::echo)
            .on_connect(|c: &mut Connection| {
                assert!(c.tls_version().is_some(), "on_connect before the handshake completed");
                c.write_string("hello\n")
            })
            .tls(t.server.clone())
            .build();
        let srv = Server::start(lp, 1);
        let cfg = client_config(&t, &[&rustls::version::TLS13], &[]);
        let mut s = connect(srv.addr, cfg, "localhost").unwrap();
        let mut hello = [0u8; 6];
        s.read_exact(&mut hello).unwrap();
        assert_eq!(&hello, b"hello\n");
        for i in 0..3 {
            echo(&mut s, &message(3000, i)).unwrap();
            s.conn.refresh_traffic_keys().unwrap();
        }
        echo(&mut s, b"after the key updates\n").unwrap();
        close_cleanly(&mut s);
        srv.stop().unwrap();
    });
}

/// The server closes first (the handler's `close`): the client gets `close_notify`, a clean
/// end of stream. And the client's `close_notify` ends the input: the handler sees end of
/// stream (`on_disconnect` runs) after the last plaintext.
#[test]
fn close_notify_both_ways() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let saw = Arc::new(Mutex::new(Vec::<u8>::new()));
        let saw2 = saw.clone();
        let lp = EventLoop::builder(move |c: &mut Connection| {
            let n = c.len();
            let data = c.read_binary(n)?;
            saw2.lock().unwrap().extend_from_slice(&data);
            if data.ends_with(b"bye\n") {
                c.write_binary(b"closing\n")?;
                c.flush()?;
                c.close();
            }
            Ok(())
        })
        .tls(t.server.clone())
        .build();
        let srv = Server::start(lp, 1);
        let cfg = client_config(&t, rustls::DEFAULT_VERSIONS, &[]);

        let mut s = connect(srv.addr, cfg.clone(), "localhost").unwrap();
        s.write_all(b"bye\n").unwrap();
        s.flush().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("close_notify from the server, not a bare TCP close");
        assert_eq!(got, b"closing\n");
        assert!(s.conn.peer_has_closed_tls_for_test());

        let mut s = connect(srv.addr, cfg, "localhost").unwrap();
        s.write_all(b"last words\n").unwrap();
        close_cleanly(&mut s);
        wait_for(Duration::from_secs(20), "the plaintext before close_notify", || {
            saw.lock().unwrap().ends_with(b"last words\n")
        });
        wait_for(Duration::from_secs(20), "both closed", || srv.lp.connections() == 0);
        srv.stop().unwrap();
    });
}

/// What `close_notify` leaves visible on the client session.
trait PeerClosed {
    fn peer_has_closed_tls_for_test(&mut self) -> bool;
}

impl PeerClosed for ClientConnection {
    fn peer_has_closed_tls_for_test(&mut self) -> bool {
        self.process_new_packets().map(|st| st.peer_has_closed()).unwrap_or(false)
    }
}

#[test]
fn alpn_and_sni_reach_the_handler() {
    common::within(LIMIT, || {
        let t = tls(&[b"h2", b"http/1.1"]);
        let lp = EventLoop::builder(|c: &mut Connection| {
            let n = c.len();
            c.skip(n)?;
            let alpn = c.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
            let line = format!(
                "alpn={} sni={} version={:?} tls={}\n",
                alpn.as_deref().unwrap_or("-"),
                c.server_name().unwrap_or("-"),
                c.tls_version(),
                c.is_tls()
            );
            c.write_string(&line)
        })
        .tls(t.server.clone())
        .build();
        let srv = Server::start(lp, 1);
        let ask =
            |versions: &[&'static rustls::SupportedProtocolVersion], alpn: &[&[u8]], name: &str| {
                let mut s = connect(srv.addr, client_config(&t, versions, alpn), name).unwrap();
                s.write_all(b"?").unwrap();
                s.flush().unwrap();
                let mut line = String::new();
                BufReader::new(&mut s).read_line(&mut line).unwrap();
                line
            };
        assert_eq!(
            ask(rustls::DEFAULT_VERSIONS, &[b"http/1.1"], "localhost"),
            "alpn=http/1.1 sni=localhost version=Some(TLSv1_3) tls=true\n"
        );
        assert_eq!(
            ask(&[&rustls::version::TLS12], &[b"h2", b"http/1.1"], "localhost"),
            "alpn=h2 sni=localhost version=Some(TLSv1_2) tls=true\n"
        );
        // No ALPN offered; an IP address is not sent as SNI.
        assert_eq!(
            ask(rustls::DEFAULT_VERSIONS, &[], "127.0.0.1"),
            "alpn=- sni=- version=Some(TLSv1_3) tls=true\n"
        );
        srv.stop().unwrap();
    });
}

#[test]
fn openssl_s_client_against_the_example() {
    if !openssl_available() {
        return;
    }
    common::within(LIMIT, || {
        let t = tls(&[b"http/1.1"]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 2);
        for version in ["-tls1_3", "-tls1_2"] {
            let lines: Vec<String> = (0..20)
                .map(|i| format!("hello over {version} #{i} {}\n", "x".repeat(i * 300)))
                .collect();
            s_client_echo(&srv.addr.to_string(), &t.pem, version, &lines);
        }
        srv.stop().unwrap();
    });
}

/// A key update the client requests (rustls's `refresh_traffic_keys` asks for one back) is
/// answered: the server sends a `key_update` of its own under its old key, then seals with
/// the next one. The client's receive sequence number shows it: it restarts at 0 when the
/// server's update arrives, so after one echo record it is 1 (without the answer it would
/// count every record since the handshake).
#[test]
fn key_updates_the_client_requests_are_answered() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 1);
        let mut cfg = (*client_config(&t, &[&rustls::version::TLS13], &[])).clone();
        cfg.enable_secret_extraction = true;
        let mut s = connect(srv.addr, Arc::new(cfg), "localhost").unwrap();
        for i in 0..3 {
            echo(&mut s, &message(5000, i)).unwrap();
        }
        for round in 0..2 {
            s.conn.refresh_traffic_keys().unwrap();
            echo(&mut s, &message(100, round)).unwrap();
        }
        let StreamOwned { conn, .. } = s;
        let secrets = conn.dangerous_extract_secrets().unwrap();
        assert_eq!(secrets.tx.0, 1, "the client's own update restarts its sequence");
        assert_eq!(secrets.rx.0, 1, "the server answered each update with its own");
        srv.stop().unwrap();
    });
}

/// Sends `wire` (raw bytes after the handshake) and returns the error the client's rustls
/// reports for what the server answers.
fn server_answer_to(s: &mut Client, wire: &[u8]) -> String {
    s.sock.write_all(wire).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => panic!("the server answered {n} bytes of plaintext to a bad record"),
        Err(e) => e.to_string(),
    }
}

/// A record whose ciphertext was altered fails its tag: the connection ends with a report and
/// the client receives `bad_record_mac`, sealed under the server's current key.
#[test]
fn a_tampered_record_is_refused_with_bad_record_mac() {
    capture_reports();
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 1);
        for versions in [&[&rustls::version::TLS13], &[&rustls::version::TLS12]] {
            let mut s = connect(srv.addr, client_config(&t, versions, &[]), "localhost").unwrap();
            echo(&mut s, b"first, an intact record\n").unwrap();
            s.conn.writer().write_all(b"then one altered on the way").unwrap();
            let mut wire = Vec::new();
            s.conn.write_tls(&mut wire).unwrap();
            let last = wire.len() - 1;
            wire[last] ^= 0x40; // in the tag
            let err = server_answer_to(&mut s, &wire);
            assert!(err.contains("BadRecordMac"), "{versions:?}: {err}");
        }
        wait_report(&["bad TLS record", "failed to decrypt"]);
        srv.stop().unwrap();
    });
}

/// A header declaring more ciphertext than the protocol allows is refused at once with
/// `record_overflow`, before the body arrives.
#[test]
fn an_oversized_record_is_refused_with_record_overflow() {
    capture_reports();
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 1);
        // One byte over each version's bound (RFC 8446 §5.2, RFC 5246 §6.2.3).
        for (versions, len) in [
            (&[&rustls::version::TLS13], 16384u16 + 256 + 1),
            (&[&rustls::version::TLS12], 16384 + 2048 + 1),
        ] {
            let mut s = connect(srv.addr, client_config(&t, versions, &[]), "localhost").unwrap();
            echo(&mut s, b"hello\n").unwrap();
            let mut wire = vec![23, 3, 3];
            wire.extend_from_slice(&len.to_be_bytes());
            wire.extend_from_slice(&[0; 100]);
            let err = server_answer_to(&mut s, &wire);
            assert!(err.contains("RecordOverflow"), "{versions:?}: {err}");
            wait_report(&["bad TLS record", &format!("{len} bytes")]);
        }
        srv.stop().unwrap();
    });
}

/// The config's `max_fragment_size` bounds the records the record layer seals: a 20 KiB echo
/// comes back in records of at most 512 bytes (the limit counts the header).
#[test]
fn max_fragment_size_bounds_the_records_sent() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let mut server = (*t.server).clone();
        server.max_fragment_size = Some(512);
        let srv = Server::start(reactor_tls_echo::event_loop(Arc::new(server)), 1);
        let mut s =
            connect(srv.addr, client_config(&t, &[&rustls::version::TLS13], &[]), "localhost")
                .unwrap();
        let msg = message(20 * 1024, 3);
        s.write_all(&msg).unwrap();
        s.flush().unwrap();
        // Read the records off the socket and count them before rustls sees them.
        let (mut wire, mut records, mut got) = (Vec::new(), 0, Vec::new());
        while got.len() < msg.len() {
            let mut buf = [0u8; 4096];
            let n = s.sock.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed");
            wire.extend_from_slice(&buf[..n]);
            while wire.len() >= 5 {
                let len = u16::from_be_bytes([wire[3], wire[4]]) as usize;
                if wire.len() < 5 + len {
                    break;
                }
                assert!(5 + len <= 512 + 22, "a record of {} bytes", 5 + len);
                let rec: Vec<u8> = wire.drain(..5 + len).collect();
                s.conn.read_tls(&mut &rec[..]).unwrap();
                s.conn.process_new_packets().unwrap();
                records += 1;
            }
            let mut plain = [0u8; 4096];
            while let Ok(n) = s.conn.reader().read(&mut plain) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&plain[..n]);
            }
        }
        assert!(got == msg, "echo altered");
        assert!(records >= msg.len() / (512 - 5), "{records} records for {} bytes", msg.len());
        srv.stop().unwrap();
    });
}

/// A TLS 1.2 renegotiation (OpenSSL's `s_client` asks for one on an `R` line) is refused with
/// a `no_renegotiation` warning, sealed under the current keys: the client reads it and gives
/// up ("no renegotiation"), its fatal alert then ends the connection with a report naming it.
#[test]
fn a_tls12_renegotiation_is_refused_with_no_renegotiation() {
    if !openssl_available() {
        return;
    }
    capture_reports();
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 1);
        let dir = std::env::temp_dir().join(format!("gonet-reneg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &t.pem).unwrap();
        let mut child = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &srv.addr.to_string(), "-tls1_2", "-CAfile"])
            .arg(&ca)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start openssl s_client");
        let mut stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        // Each stream read on a thread into a shared string, watched from here.
        let read_all = |mut r: Box<dyn Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let t = text.clone();
            let h = std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = r.read(&mut buf) {
                    t.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            (text, h)
        };
        let ((out, h1), (err, h2)) = (read_all(Box::new(out)), read_all(Box::new(err)));
        stdin.write_all(b"hello\n").unwrap();
        wait_for(Duration::from_secs(30), "the echo before the renegotiation", || {
            out.lock().unwrap().contains("hello\n")
        });
        stdin.write_all(b"R\n").unwrap();
        let report = wait_report(&["the peer sent alert", "HandshakeFailure"]);
        drop(stdin);
        let _ = child.wait();
        let _ = (h1.join(), h2.join());
        let (out, err) = (out.lock().unwrap().clone(), err.lock().unwrap().clone());
        assert!(out.contains("hello\n"), "s_client output: {out}");
        assert!(err.contains("RENEGOTIATING"), "s_client: {err}");
        assert!(err.contains("no renegotiation"), "s_client: {err}; server: {report}");
        let _ = std::fs::remove_dir_all(&dir);
        srv.stop().unwrap();
    });
}

/// A peer may not make the server derive keys without end: 32 key updates in a row are
/// answered and the echo goes on (and data starts the count again); a 33rd before any data
/// ends the connection with `unexpected_message`.
#[test]
fn key_updates_without_data_are_bounded() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let srv = Server::start(reactor_tls_echo::event_loop(t.server.clone()), 1);
        for (updates, ok) in [(32, true), (33, false)] {
            let cfg = client_config(&t, &[&rustls::version::TLS13], &[]);
            let mut s = connect(srv.addr, cfg, "localhost").unwrap();
            echo(&mut s, b"before\n").unwrap();
            for round in 0..if ok { 2 } else { 1 } {
                for _ in 0..updates {
                    s.conn.refresh_traffic_keys().unwrap();
                    s.conn.complete_io(&mut s.sock).unwrap();
                }
                if ok {
                    echo(&mut s, format!("after {updates} updates, round {round}\n").as_bytes())
                        .unwrap();
                }
            }
            if !ok {
                let err = server_answer_to(&mut s, b"");
                assert!(err.contains("UnexpectedMessage"), "{err}");
            }
        }
        srv.stop().unwrap();
    });
}

/// A client that writes before its handshake completes sends its first records with its
/// Finished, in one segment: the server reads them in one `recv`, and only the handshake may
/// go to rustls — the records after it are the record layer's, opened as the input cap
/// allows (a cap of 1000 bytes under a 16 KiB record: the handler must never see more).
#[test]
fn records_sent_with_the_finished_respect_the_input_cap() {
    common::within(LIMIT, || {
        let t = tls(&[]);
        let lp = EventLoop::builder(reactor_tls_echo::echo)
            .tls(t.server.clone())
            .input_cap(1000)
            .build();
        let srv = Server::start(lp, 1);
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let cfg = client_config(&t, versions, &[]);
            let tcp = TcpStream::connect(srv.addr).unwrap();
            tcp.set_nodelay(true).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut s = StreamOwned::new(ClientConnection::new(cfg, name).unwrap(), tcp);
            // Queued now, sent right after the client's Finished, in the same write.
            let msg = message(3 * 16 * 1024, 9);
            s.conn.writer().write_all(&msg).unwrap();
            let mut got = vec![0u8; msg.len()];
            s.read_exact(&mut got).unwrap();
            assert!(got == msg, "echo altered");
            close_cleanly(&mut s);
        }
        srv.stop().unwrap();
    });
}
