//! Echo server, std threads peer: blocking std::net sockets, one OS thread per connection,
//! read up to 64 KiB and write it all back. Listens on the address given as argv[1].
//! TCP_NODELAY is set on every connection, as Go does by default.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use gonet_bench::{echo_server_init, listen_addr, ECHO_BUF};

fn main() -> std::io::Result<()> {
    echo_server_init();
    let listener = TcpListener::bind(listen_addr())?;
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                if let Err(e) = std::thread::Builder::new().spawn(move || serve(conn)) {
                    eprintln!("spawn: {e}");
                }
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
    Ok(())
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
