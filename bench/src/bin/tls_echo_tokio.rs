//! TLS echo server, tokio + tokio-rustls peer of bench/tls.sh: a `current_thread` runtime, one
//! task per connection, the handshake, then read up to 64 KiB of plaintext and write it all
//! back. rustls with the ring provider, TLS 1.3 and 1.2 (the cipher suite is the client's
//! choice; tls_loadgen offers TLS 1.3 AES-128-GCM only). The certificate is self-signed
//! (ECDSA P-256, for localhost, 127.0.0.1 and ::1) by rcgen at start, as the gonet examples
//! make theirs, and its PEM written to `$TMPDIR/gonet-tls_echo_tokio-cert.pem`.
//!
//! Run: `tls_echo_tokio 127.0.0.1:9443`.

use std::io;
use std::sync::Arc;

use gonet_bench::{echo_server_init, Flags, ECHO_BUF};
use rustls::crypto::ring;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

fn config() -> io::Result<Arc<rustls::ServerConfig>> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let ck = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let path = std::env::temp_dir().join("gonet-tls_echo_tokio-cert.pem");
    std::fs::write(&path, ck.cert.pem())?;
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(cfg))
}

fn main() -> io::Result<()> {
    echo_server_init();
    let flags = Flags::parse(&[]);
    let addr = flags.positional().first().cloned().unwrap_or_else(|| "127.0.0.1:9443".into());
    let acceptor = TlsAcceptor::from(config()?);
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("tls_echo_tokio: listening on {}", listener.local_addr()?);
        loop {
            match listener.accept().await {
                Ok((conn, _)) => {
                    tokio::spawn(serve(acceptor.clone(), conn));
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    })
}

async fn serve(acceptor: TlsAcceptor, conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let Ok(mut s) = acceptor.accept(conn).await else { return };
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() || s.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
