//! Echo server, may peer: one worker (`may::config().set_workers(1)`), one coroutine per
//! connection, read up to 64 KiB and write it all back. Listens on the address given as
//! argv[1]. TCP_NODELAY is set on every connection, as Go does by default.

use std::io::{Read, Write};

use gonet_bench::{echo_server_init, listen_addr, ECHO_BUF};
use may::net::{TcpListener, TcpStream};

/// Spawns a may coroutine.
fn spawn<F: FnOnce() + Send + 'static>(f: F) -> may::coroutine::JoinHandle<()> {
    // SAFETY: may marks spawning unsafe because a coroutine may migrate between worker
    // threads and must not block its worker with a plain OS blocking call. These closures
    // touch no thread-local state and do I/O only through may's sockets, which park the
    // coroutine instead of blocking the thread.
    unsafe { may::coroutine::spawn(f) }
}

fn main() {
    echo_server_init();
    let addr = listen_addr();
    may::config().set_workers(1);
    // Leave CPU placement to `taskset`: may otherwise pins worker i to core i.
    may::config().set_worker_pin(false);
    spawn(move || {
        let listener = TcpListener::bind(&addr).expect("bind");
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    spawn(move || serve(conn));
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    })
    .join()
    .unwrap();
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
