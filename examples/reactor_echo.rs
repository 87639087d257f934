//! Echo server on the reactor, written as netpoll's users write it: the handler reads what
//! has arrived (`len()` bytes), writes it back, flushes and releases.
//!
//! Run: `cargo run --release --example reactor_echo -- 127.0.0.1:9009` (workers, i.e.
//! sub-reactors, from `GONET_PROCS`).

use gonet::net::TcpListener;
use gonet::reactor::EventLoop;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9009".to_string());
    let lp = EventLoop::builder(|c| {
        let n = c.len();
        let data = c.next(n)?;
        c.write_binary(data)?;
        c.flush()?;
        c.release();
        Ok(())
    })
    .build();
    gonet::run(move || {
        let ln = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("reactor_echo: cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
        eprintln!(
            "reactor_echo: listening on {}",
            ln.local_addr().expect("bound listener has an address")
        );
        if let Err(e) = lp.serve(ln) {
            eprintln!("reactor_echo: {e}");
            std::process::exit(1);
        }
    });
}
