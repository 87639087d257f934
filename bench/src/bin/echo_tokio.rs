//! Echo server, tokio peer: current_thread runtime (one thread), one task per connection,
//! read up to 64 KiB and write it all back. Listens on the address given as argv[1].
//! TCP_NODELAY is set on every connection, as Go does by default.

use gonet_bench::{echo_server_init, listen_addr, ECHO_BUF};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    echo_server_init();
    let addr = listen_addr();
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
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
