//! An HTTP client on goroutines: fetches N URLs concurrently, one goroutine each, with one
//! deadline for the whole batch, over gonet's hyper client (pooled keep-alive connections).
//!
//! Run: `cargo run --release --features hyper --example http_get -- [--h2] [--timeout SECS]
//! URL...` for `http://` URLs; with `--features hyper,rustls`, `https://` URLs too (HTTP/2 or
//! HTTP/1.1 by ALPN), trusting the PEM certificates of `--cacert FILE` (default: the system's
//! `/etc/ssl/certs/ca-certificates.crt`). Prints status, size and time per URL; exits 1 if any
//! failed.

use std::io;
use std::time::{Duration, Instant};

use gonet::hyper::{Client, ClientBuilder};
use hyper::body::Bytes;
use hyper::Response;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut builder = Client::builder().connect_timeout(Duration::from_secs(5));
    let mut limit = Duration::from_secs(10);
    let mut cacert = None;
    let mut urls = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--h2" => builder = builder.http2_prior_knowledge(),
            "--timeout" => {
                let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                    eprintln!("http_get: --timeout needs a number of seconds");
                    std::process::exit(2)
                });
                limit = Duration::from_secs_f64(secs);
            }
            "--cacert" => cacert = args.next(),
            _ => urls.push(a),
        }
    }
    if urls.is_empty() {
        eprintln!("usage: http_get [--h2] [--timeout SECS] [--cacert PEM] URL...");
        std::process::exit(2);
    }
    builder = with_roots(builder, cacert.as_deref());
    // Every request starts at once, so the per-request timeout is the batch's deadline.
    let client = builder.timeout(limit).build();
    let failed = gonet::run(move || {
        let start = Instant::now();
        let mut failed = 0;
        for (url, r, took) in fetch_all(&client, urls) {
            match r {
                Ok(resp) => println!(
                    "{} {:?} {} bytes {took:?} {url}",
                    resp.status(),
                    resp.version(),
                    resp.body().len()
                ),
                Err(e) => {
                    failed += 1;
                    println!("ERR {e} {took:?} {url}");
                }
            }
        }
        eprintln!("http_get: done in {:?}", start.elapsed());
        failed
    });
    std::process::exit((failed > 0) as i32);
}

/// Fetches every URL on a goroutine of its own (call on a goroutine); the results in order,
/// each with its time.
pub fn fetch_all(
    client: &Client,
    urls: Vec<String>,
) -> Vec<(String, io::Result<Response<Bytes>>, Duration)> {
    let hs: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let client = client.clone();
            gonet::go(move || {
                let t = Instant::now();
                let r = client.get(&url);
                (url, r, t.elapsed())
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().expect("fetch goroutine")).collect()
}

/// Trusts the certificates in `cacert` (PEM; default the system's bundle, if there is one)
/// for `https://` URLs.
#[cfg(feature = "rustls")]
pub fn with_roots(builder: ClientBuilder, cacert: Option<&str>) -> ClientBuilder {
    const SYSTEM: &str = "/etc/ssl/certs/ca-certificates.crt";
    let path = match cacert {
        Some(p) => p,
        None if std::path::Path::new(SYSTEM).exists() => SYSTEM,
        None => return builder, // https:// URLs will say a TLS config is needed
    };
    match tls_config(path) {
        Ok(cfg) => builder.tls(cfg),
        Err(e) => {
            eprintln!("http_get: --cacert {path}: {e}");
            std::process::exit(2)
        }
    }
}

#[cfg(not(feature = "rustls"))]
fn with_roots(builder: ClientBuilder, cacert: Option<&str>) -> ClientBuilder {
    if cacert.is_some() {
        eprintln!("http_get: --cacert needs the rustls feature (--features hyper,rustls)");
        std::process::exit(2)
    }
    builder
}

/// A client TLS config trusting the PEM certificates in `path` (ALPN left to the client: h2
/// and http/1.1).
#[cfg(feature = "rustls")]
pub fn tls_config(path: &str) -> io::Result<std::sync::Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(io::Error::other)? {
        roots.add(cert.map_err(io::Error::other)?).map_err(io::Error::other)?;
    }
    if roots.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no certificates in the file"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(cfg))
}
