//! Helpers of the HTTPS test files (hyper_https, hyper_go): self-signed certificates and
//! rustls configs, and concurrent GETs through gonet's hyper client.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use gonet::hyper::Client;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// A self-signed certificate for `names`.
pub struct SelfSigned {
    pub cert: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl SelfSigned {
    pub fn new(names: &[&str]) -> SelfSigned {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let ck = rcgen::generate_simple_self_signed(names).unwrap();
        SelfSigned {
            cert: ck.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
        }
    }

    /// A server config presenting it (no ALPN set: `serve_tls` offers h2 and http/1.1).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key().into())
            .unwrap();
        Arc::new(cfg)
    }
}

/// A client config trusting `roots`, offering `alpn` (empty: the client's defaults).
pub fn client_config(
    roots: &[&CertificateDer<'static>],
    alpn: &[&str],
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(cfg)
}

/// GETs `url(i)` for `i` in `0..n`, each on a goroutine of its own (call on a goroutine); the
/// bodies in order.
pub fn get_concurrently(client: &Client, n: usize, url: impl Fn(usize) -> String) -> Vec<Bytes> {
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (c, u) = (client.clone(), url(i));
            gonet::go(move || c.get(&u).unwrap_or_else(|e| panic!("{u}: {e}")).into_body())
        })
        .collect();
    hs.into_iter().map(|g| g.join().unwrap()).collect()
}

/// Waits (sleeping goroutine-style) until `cond` holds, for at most 10 s; the caller asserts.
pub fn wait_until(cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() && std::time::Instant::now() < deadline {
        gonet::time::sleep(std::time::Duration::from_millis(5));
    }
}
