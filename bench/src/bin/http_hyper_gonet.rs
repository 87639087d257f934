//! HTTP hello server, hyper on gonet for bench/http.sh: `gonet::hyper::Server` (one goroutine
//! per connection, hyper-util's auto connection builder: HTTP/1.1, and HTTP/2 when the client
//! opens with the h2c prior-knowledge preface; HTTP/2 streams run on goroutines) answering
//! `Hello, World!` to every request — the same builder and service as the tokio peer
//! `http_hyper`. Workers from `GONET_PROCS`. Listens on the address given as argv[1].
//! TCP_NODELAY is set on every connection, as the tokio peer does.

use std::convert::Infallible;
use std::io;
use std::time::Instant;

use gonet::net::{Addr, Listener, TcpListener, TcpStream};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;

fn main() {
    let addr = gonet_bench::listen_addr();
    gonet::run(move || {
        let ln = TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("http_hyper_gonet: listen {addr}: {e}");
            std::process::exit(1)
        });
        gonet::hyper::Server::new().serve(NoDelay(ln), service_fn(hello)).unwrap();
    });
}

async fn hello(_: Request<Incoming>) -> Result<gonet_bench::HelloResponse, Infallible> {
    Ok(gonet_bench::hello_response())
}

/// A listener whose connections have TCP_NODELAY set.
struct NoDelay(TcpListener);

impl Listener for NoDelay {
    type Conn = TcpStream;
    fn accept(&self) -> io::Result<TcpStream> {
        let (c, _) = self.0.accept()?;
        let _ = c.set_nodelay(true);
        Ok(c)
    }
    fn close(&self) -> io::Result<()> {
        self.0.close()
    }
    fn addr(&self) -> io::Result<Addr> {
        Listener::addr(&self.0)
    }
    fn set_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        Listener::set_deadline(&self.0, at)
    }
}
