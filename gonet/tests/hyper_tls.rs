//! HTTP/2 over TLS on gonet sockets: tokio-rustls (no tokio runtime) over a gonet `TcpStream`,
//! ALPN choosing `h2`, gonet's `Server::serve_connection` on one side and hyper's HTTP/2
//! client on the other, through `gonet::hyper::TokioIo`.
#![cfg(feature = "hyper")]

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::run;
use gonet::hyper::{Executor, Server, Timer, TokioIo};
use gonet::net::{TcpListener, TcpStream};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};

#[test]
fn h2_over_tokio_rustls_with_alpn() {
    run(2, || {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert: CertificateDer<'static> = ck.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
        let mut scfg =
            rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], key.into())
                .unwrap();
        scfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(scfg));

        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let server = Server::new();
        let handle = server.handle();
        gonet::go(move || {
            let (conn, _) = ln.accept().unwrap();
            let tls = gonet::block_on(acceptor.accept(conn)).unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            let svc = service_fn(|req: Request<Incoming>| async move {
                let body = format!("tls {:?}", req.version());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
            });
            server.serve_connection(TokioIo(tls), svc);
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut ccfg =
            rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        ccfg.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(ccfg));
        let tcp = TcpStream::connect(addr).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = gonet::block_on(connector.connect(name, tcp)).unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) = gonet::block_on(
            hyper::client::conn::http2::Builder::new(Executor)
                .timer(Timer)
                .handshake::<_, Full<Bytes>>(TokioIo(tls)),
        )
        .unwrap();
        gonet::go(move || drop(gonet::block_on(conn)));
        for i in 0..10 {
            let body = gonet::block_on(async {
                let req = Request::get(format!("https://localhost/{i}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let r = sender.send_request(req).await.unwrap();
                r.into_body().collect().await.unwrap().to_bytes()
            });
            assert_eq!(body, Bytes::from("tls HTTP/2.0"));
        }
        assert_eq!(handle.active(), 1);
        assert!(handle.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}
