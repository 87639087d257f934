//! Echo server on gonet: `gonet::net::TcpListener`, one goroutine per connection, plain
//! `std::io::Read`/`Write` on the stream — read up to 64 KiB and write it all back. Listens on
//! the address given as argv[1]; the number of workers comes from GONET_PROCS (default 1).
//! TCP_NODELAY is set on every connection, as Go does by default.

use std::io::{Read, Write};

use gonet::net::{TcpListener, TcpStream};
use gonet_bench::{echo_server_init, listen_addr, ECHO_BUF};

fn main() -> std::io::Result<()> {
    echo_server_init();
    let addr = listen_addr();
    let procs = std::env::var("GONET_PROCS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let rt = gonet::Builder::new().procs(procs).build()?;
    rt.run(move || {
        let listener = TcpListener::bind(&addr)?;
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    gonet::go(move || serve(conn));
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    })
}

fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
