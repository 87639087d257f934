//! TLS echo server on the reactor: `EventLoop::builder(..).tls(config)` runs the handshake in
//! the loop, and the handler echoes plaintext through the ordinary `Connection` API — the
//! same handler as `reactor_echo`, encrypted underneath.
//!
//! Run:
//! ```text
//! cargo run --release --features rustls --example reactor_tls_echo -- 127.0.0.1:9443
//! openssl s_client -connect 127.0.0.1:9443 -quiet
//! ```
//! The server makes a self-signed certificate (ECDSA P-256, for `localhost`, `127.0.0.1` and
//! `::1`) with `rcgen` at start and writes it to `$TMPDIR/gonet-reactor_tls_echo-cert.pem`
//! (a CA file for `openssl s_client -CAfile` or the `tls_echo` client). It offers ALPN
//! `http/1.1`. Workers come from `GONET_PROCS`.

use std::io;
use std::sync::Arc;

use gonet::reactor::{Connection, EventLoop};
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

#[allow(dead_code)]
#[path = "tls_echo.rs"]
pub mod tls_echo;

/// A self-signed certificate for `localhost`, `127.0.0.1` and `::1` (`tls_echo`'s).
pub use tls_echo::self_signed;

/// A server configuration (ring provider, TLS 1.3 and 1.2) presenting `cert`, offering the
/// ALPN protocols `alpn` in order of preference.
pub fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// The echo handler: every plaintext byte that arrived goes back (zero-copy within the
/// reactor: the input blocks are appended to the output).
pub fn echo(c: &mut Connection) -> io::Result<()> {
    let n = c.len();
    let data = c.slice(n)?;
    c.append(data)
}

/// The echo event loop over TLS with `cfg`.
pub fn event_loop(cfg: Arc<ServerConfig>) -> EventLoop {
    EventLoop::builder(echo).tls(cfg).build()
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9443".to_string());
    let result = (|| -> Result<(), String> {
        let (cert, key, pem) = self_signed().map_err(|e| e.to_string())?;
        let path = std::env::temp_dir().join("gonet-reactor_tls_echo-cert.pem");
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("reactor_tls_echo: self-signed certificate written to {}", path.display());
        let cfg = server_config(cert, key, &[b"http/1.1"]).map_err(|e| e.to_string())?;
        let lp = event_loop(cfg);
        gonet::run(move || {
            let ln = gonet::net::TcpListener::bind(addr.as_str())
                .map_err(|e| format!("listen on {addr}: {e}"))?;
            eprintln!(
                "reactor_tls_echo: listening on {}",
                ln.local_addr().map_err(|e| e.to_string())?
            );
            lp.serve(ln).map_err(|e| e.to_string())
        })
    })();
    if let Err(e) = result {
        eprintln!("reactor_tls_echo: {e}");
        std::process::exit(1);
    }
}
