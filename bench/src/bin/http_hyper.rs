//! HTTP hello server, tokio + hyper peer for bench/http.sh: current_thread runtime (one
//! thread), one task per connection, hyper-util's auto connection builder (HTTP/1.1, and
//! HTTP/2 when the client opens with the h2c prior-knowledge preface; HTTP/2 streams are
//! tasks) answering `Hello, World!` to every request, with hyper's timers on tokio's. The same
//! builder and service as gonet's peer `http_hyper_gonet`. Listens on the address given as
//! argv[1]. TCP_NODELAY is set on every connection, as Go does by default.

use std::convert::Infallible;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = gonet_bench::listen_addr();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        loop {
            let conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = conn.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = builder.serve_connection(TokioIo::new(conn), service_fn(hello)).await;
            });
        }
    })
}

async fn hello(_: Request<Incoming>) -> Result<gonet_bench::HelloResponse, Infallible> {
    Ok(gonet_bench::hello_response())
}
