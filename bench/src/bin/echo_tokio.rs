//! Echo server, tokio peer: one task per connection, read up to 64 KiB and write it all back.
//! Listens on the address given as the first argument. TCP_NODELAY is set on every
//! connection, as Go does by default.
//!
//! By default a `current_thread` runtime (one thread); `--workers N` runs a multi-thread
//! runtime with N worker threads instead (tokio's work-stealing scheduler).
//!
//! Run: `echo_tokio 127.0.0.1:9000` or `echo_tokio --workers 4 127.0.0.1:9000`.

use gonet_bench::{echo_server_init, Flags, ECHO_BUF};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    echo_server_init();
    let flags = Flags::parse(&["workers"]);
    let addr = flags.positional().first().cloned().unwrap_or_else(|| "127.0.0.1:9000".into());
    let rt = match flags.get_opt::<usize>("workers") {
        None => tokio::runtime::Builder::new_current_thread().enable_io().build()?,
        Some(0) => {
            eprintln!("echo_tokio: --workers must be at least 1");
            std::process::exit(2);
        }
        Some(n) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_io().build()?
        }
    };
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        loop {
            match listener.accept().await {
                Ok((conn, _)) => {
                    tokio::spawn(serve(conn));
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    })
}

async fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
