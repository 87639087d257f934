//! Tests of the `hyper_hello` and `http_get` examples, run in-process on a gonet runtime: curl
//! against the server over TLS (HTTP/1.1 and HTTP/2 by ALPN, `-k` and with the printed
//! certificate as the CA) and over h2c with prior knowledge; `http_get`'s functions fetching
//! `https://` URLs from it.
#![cfg(all(feature = "hyper", feature = "rustls"))]

#[allow(dead_code)]
#[path = "../../examples/hyper_hello.rs"]
mod hyper_hello;

#[allow(dead_code)]
#[path = "../../examples/http_get.rs"]
mod http_get;

mod common;

use std::time::{Duration, Instant};

use common::run;
use gonet::hyper::{Client, ServerHandle};
use gonet::net::TcpListener;

/// Starts the example's server (over TLS with `tls`); its address and shutdown handle.
fn start(tls: Option<hyper_hello::Tls>) -> (String, ServerHandle) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    let server = hyper_hello::server();
    let h = server.handle();
    gonet::go(move || hyper_hello::serve(&server, ln, tls).unwrap());
    (addr, h)
}

/// Whether curl is on PATH; under `CI=true` (where .ci/run installs it) its absence fails.
fn curl_available() -> bool {
    let found = std::process::Command::new("curl").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "curl is not on PATH but CI=true: the curl interop check cannot run (install curl)"
        );
        eprintln!("note: curl is not on PATH; skipping the curl interop check");
    }
    found
}

/// Runs curl with `args` (on the blocking pool); its stdout, after checking it succeeded.
fn curl(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = gonet::blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(&args)
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A temporary file holding `text`, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("gonet-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn curl_over_tls_http1_and_http2_against_the_example() {
    if !curl_available() {
        return;
    }
    run(2, || {
        let (tls, pem) = hyper_hello::self_signed();
        let ca = TempFile::new("hyper_hello-ca.pem", &pem);
        let (addr, h) = start(Some(tls));
        let url = format!("https://{addr}/");
        // `-w` appends the HTTP version curl negotiated (ALPN).
        let v = "%{http_version}";
        assert_eq!(curl(&["-k", "--http1.1", "-w", v, &url]), "Hello, World!\n1.1");
        assert_eq!(curl(&["-k", "--http2", "-w", v, &url]), "Hello, World!\n2");
        // The printed certificate verifies for 127.0.0.1 (no -k).
        assert_eq!(curl(&["--cacert", ca.path(), "--http2", "-w", v, &url]), "Hello, World!\n2");
        // A blocking route over h2 on TLS.
        assert_eq!(curl(&["-k", "--http2", &format!("https://{addr}/sleep")]), "slept 100ms\n");
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn curl_http2_prior_knowledge_against_the_example() {
    if !curl_available() {
        return;
    }
    run(2, || {
        let (addr, h) = start(None);
        let v = "%{http_version}";
        let out = curl(&["--http2-prior-knowledge", "-w", v, &format!("http://{addr}/")]);
        assert_eq!(out, "Hello, World!\n2");
        // `/next` hands out 0, 1, 2 from a goroutine over a channel, whichever protocol asks.
        let next = format!("http://{addr}/next");
        assert_eq!(curl(&["--http2-prior-knowledge", &next]), "0\n");
        assert_eq!(curl(&["--http1.1", &next]), "1\n");
        assert_eq!(curl(&["--http2-prior-knowledge", &next]), "2\n");
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}

#[test]
fn http_get_fetches_https_urls_from_the_example() {
    run(2, || {
        let (tls, pem) = hyper_hello::self_signed();
        let ca = TempFile::new("http_get-ca.pem", &pem);
        let (addr, h) = start(Some(tls));
        let client = Client::builder()
            .tls(http_get::tls_config(ca.path()).unwrap())
            .timeout(Duration::from_secs(20))
            .build();
        let urls: Vec<String> =
            ["/", "/sleep", "/"].iter().map(|p| format!("https://{addr}{p}")).collect();
        let got = http_get::fetch_all(&client, urls.clone());
        let bodies = ["Hello, World!\n", "slept 100ms\n", "Hello, World!\n"];
        for ((url, r, _), want) in got.into_iter().zip(bodies) {
            let resp = r.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(resp.status(), 200, "{url}");
            assert_eq!(resp.version(), hyper::Version::HTTP_2, "{url}");
            assert_eq!(resp.body(), want.as_bytes(), "{url}");
        }
        // A file with no certificate is refused with a clear error.
        let empty = TempFile::new("empty.pem", "");
        let e = http_get::tls_config(empty.path()).unwrap_err();
        assert!(e.to_string().contains("no certificates"), "{e}");
        assert!(h.shutdown(Instant::now() + Duration::from_secs(5)));
    });
}
