//! TLS echo server and client: rustls's blocking `StreamOwned` over `gonet::net::TcpStream`,
//! unmodified. rustls only needs `Read + Write`; every would-block inside its handshake and
//! record I/O parks the goroutine, so the synchronous ecosystem runs on goroutines as is.
//!
//! Run:
//! ```text
//! cargo run --release --example tls_echo -- server 127.0.0.1:8443 [CERT.pem KEY.pem]
//! cargo run --release --example tls_echo -- client 127.0.0.1:8443 [CA.pem]
//! ```
//! Without certificate files the server makes a self-signed certificate (ECDSA P-256, for
//! `localhost`, `127.0.0.1` and `::1`) with `rcgen` and writes it to
//! `$TMPDIR/gonet-tls_echo-cert.pem`, which the client trusts by default. The client opens
//! `TLS_ECHO_CONNS` connections (default 4) on goroutines, sends lines on each and checks that
//! every one comes back intact. Workers come from `GONET_PROCS`.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{is_closed, TcpListener, TcpStream};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
    SupportedProtocolVersion,
};

/// A client-side TLS connection over a goroutine-aware TCP stream.
pub type ClientStream = StreamOwned<ClientConnection, TcpStream>;

/// How long the server waits for the next record from an idle (or stalled) client.
pub const IDLE: Duration = Duration::from_secs(60);

/// A self-signed certificate for `localhost`, `127.0.0.1` and `::1`, with its key and the
/// certificate in PEM form.
pub fn self_signed(
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>, String), rcgen::Error> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let ck = rcgen::generate_simple_self_signed(names)?;
    let key = PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
    Ok((ck.cert.der().clone(), key.into(), ck.cert.pem()))
}

/// A server configuration (ring provider, TLS 1.3 and 1.2) presenting `chain`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let cfg = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(cfg))
}

/// A client configuration (ring provider) trusting `roots` and offering `versions` (for
/// example `rustls::DEFAULT_VERSIONS`).
pub fn client_config(
    roots: &[CertificateDer<'static>],
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone())?;
    }
    let cfg = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(versions)?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Accepts connections until the listener is closed, serving each on its own goroutine.
pub fn serve(ln: TcpListener, cfg: Arc<ServerConfig>) -> io::Result<()> {
    loop {
        match ln.accept() {
            Ok((conn, peer)) => {
                let cfg = cfg.clone();
                gonet::go(move || {
                    if let Err(e) = handle(conn, cfg) {
                        if !matches!(
                            e.kind(),
                            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                        ) {
                            eprintln!("tls_echo: {peer}: {e}");
                        }
                    }
                });
            }
            Err(e) if is_closed(&e) => return Ok(()),
            Err(e) => {
                eprintln!("tls_echo: accept: {e}");
                gonet::time::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Serves one connection: the handshake, then every byte read is written back, until the
/// client sends `close_notify` (answered with ours).
pub fn handle(tcp: TcpStream, cfg: Arc<ServerConfig>) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let conn = ServerConnection::new(cfg).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tls.sock.set_deadline(Some(Instant::now() + IDLE))?;
        let n = tls.read(&mut buf)?;
        if n == 0 {
            break;
        }
        tls.write_all(&buf[..n])?;
        tls.flush()?;
    }
    tls.conn.send_close_notify();
    tls.flush()
}

/// Connects to `addr` and completes the handshake, verifying the server as `name`.
pub fn connect(
    addr: &str,
    name: ServerName<'static>,
    cfg: Arc<ClientConfig>,
) -> io::Result<ClientStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let conn = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Sends `lines` lines of growing length (up to about 4 KiB), one at a time, and checks that
/// each comes back intact. Returns the number of bytes echoed.
pub fn echo_lines<S: Read + Write>(s: &mut S, lines: usize) -> io::Result<usize> {
    let mut got = Vec::new();
    let mut total = 0;
    for i in 0..lines {
        let line = format!("line {i}: {}\n", "gonet ".repeat(i * 7 % 700));
        s.write_all(line.as_bytes())?;
        s.flush()?;
        got.resize(line.len(), 0);
        s.read_exact(&mut got)?;
        if got != line.as_bytes() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {i} came back altered"),
            ));
        }
        total += line.len();
    }
    Ok(total)
}

/// Sends `close_notify` and waits for the server's.
pub fn close(tls: &mut ClientStream) -> io::Result<()> {
    tls.conn.send_close_notify();
    tls.flush()?;
    match tls.read(&mut [0u8; 1])? {
        0 => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "data after close_notify")),
    }
}

/// The name to verify the server as: the host part of `addr` (a DNS name or an IP address).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = match addr.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => addr.rsplit_once(':').map_or(addr, |(h, _)| h),
    };
    ServerName::try_from(host.to_string()).map_err(|e| format!("bad server name {host:?}: {e}"))
}

/// Where the server writes its generated certificate and where the client looks by default.
fn default_cert_path() -> PathBuf {
    std::env::temp_dir().join("gonet-tls_echo-cert.pem")
}

fn run_server(addr: String, files: Option<(String, String)>) -> Result<(), String> {
    let (chain, key) = match files {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(&cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("{key}: {e}"))?;
            (chain, key)
        }
        None => {
            let (cert, key, pem) = self_signed().map_err(|e| e.to_string())?;
            let path = default_cert_path();
            std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("tls_echo: self-signed certificate written to {}", path.display());
            (vec![cert], key)
        }
    };
    let cfg = server_config(chain, key).map_err(|e| e.to_string())?;
    gonet::run(move || {
        let ln = TcpListener::bind(addr.as_str()).map_err(|e| format!("listen on {addr}: {e}"))?;
        eprintln!("tls_echo: listening on {}", ln.local_addr().map_err(|e| e.to_string())?);
        serve(ln, cfg).map_err(|e| e.to_string())
    })
}

fn run_client(addr: String, ca: Option<String>) -> Result<(), String> {
    let ca = ca.map_or_else(default_cert_path, PathBuf::from);
    let roots = CertificateDer::pem_file_iter(&ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", ca.display()))?;
    let cfg = client_config(&roots, rustls::DEFAULT_VERSIONS).map_err(|e| e.to_string())?;
    let name = server_name(&addr)?;
    let conns = match std::env::var("TLS_ECHO_CONNS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or("TLS_ECHO_CONNS: not a positive integer")?,
        Err(_) => 4,
    };
    gonet::run(move || {
        let clients: Vec<_> = (0..conns)
            .map(|_| {
                let (addr, name, cfg) = (addr.clone(), name.clone(), cfg.clone());
                gonet::go(move || -> io::Result<(usize, String)> {
                    let mut tls = connect(&addr, name, cfg)?;
                    let bytes = echo_lines(&mut tls, 100)?;
                    let version = tls.conn.protocol_version();
                    let suite = tls.conn.negotiated_cipher_suite().map(|s| s.suite());
                    close(&mut tls)?;
                    Ok((bytes, format!("{version:?}, {suite:?}")))
                })
            })
            .collect();
        let mut failed = 0;
        for (i, c) in clients.into_iter().enumerate() {
            match c.join() {
                Ok(Ok((bytes, params))) => {
                    eprintln!("tls_echo: connection {i}: 100 lines, {bytes} bytes echoed intact ({params})")
                }
                Ok(Err(e)) => {
                    eprintln!("tls_echo: connection {i}: {e}");
                    failed += 1;
                }
                Err(_) => failed += 1,
            }
        }
        match failed {
            0 => Ok(()),
            n => Err(format!("{n} of {conns} connections failed")),
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned();
    let addr = arg(2).unwrap_or_else(|| "127.0.0.1:8443".to_string());
    let result = match (arg(1).as_deref(), args.len()) {
        (Some("server"), 2 | 3) => run_server(addr, None),
        (Some("server"), 5) => run_server(addr, arg(3).zip(arg(4))),
        (Some("client"), 2..=4) => run_client(addr, arg(3)),
        _ => {
            Err("usage: tls_echo server [ADDR [CERT.pem KEY.pem]] | client [ADDR [CA.pem]]".into())
        }
    };
    if let Err(e) = result {
        eprintln!("tls_echo: {e}");
        std::process::exit(1);
    }
}
