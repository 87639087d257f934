//! An HTTP client on goroutines: fetches N URLs concurrently, one goroutine each, with one
//! deadline for the whole batch, over gonet's hyper client (pooled keep-alive connections).
//!
//! Run: `cargo run --release --features hyper --example http_get -- [--h2] [--timeout SECS]
//! URL...` (plain `http://` URLs). Prints status, size and time per URL; exits 1 if any failed.

use std::time::{Duration, Instant};

use gonet::hyper::Client;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut builder = Client::builder().connect_timeout(Duration::from_secs(5));
    let mut limit = Duration::from_secs(10);
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
            _ => urls.push(a),
        }
    }
    if urls.is_empty() {
        eprintln!("usage: http_get [--h2] [--timeout SECS] URL...");
        std::process::exit(2);
    }
    // Every request starts at once, so the per-request timeout is the batch's deadline.
    let client = builder.timeout(limit).build();
    let failed = gonet::run(move || {
        let start = Instant::now();
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
        let mut failed = 0;
        for h in hs {
            let (url, r, took) = h.join().expect("fetch goroutine");
            match r {
                Ok(resp) => {
                    println!("{} {} bytes {:?} {url}", resp.status(), resp.body().len(), took)
                }
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
