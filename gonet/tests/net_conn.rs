//! The `Conn` and `Listener` traits: one generic echo server and client, run over TCP and
//! over Unix sockets, and `Box<dyn Conn>` holding either.

mod net_util;

use std::io::{self, Read, Write};
use std::time::Instant;

use gonet::net::{Addr, Conn, Listener, TcpListener, TcpStream, UnixListener, UnixStream};
use net_util::*;

/// Serves one connection of any listener: echoes until end of stream, then closes.
fn serve_one<L: Listener>(ln: &L) -> io::Result<u64> {
    let mut c = ln.accept()?;
    let mut buf = [0u8; 512];
    let mut n = 0u64;
    loop {
        let k = c.read(&mut buf)?;
        if k == 0 {
            c.close()?;
            return Ok(n);
        }
        c.write_all(&buf[..k])?;
        n += k as u64;
    }
}

/// A client over any connection: a round trip, a read deadline that fires, addresses.
fn client(mut c: Box<dyn Conn>, server: &Addr) -> io::Result<()> {
    assert_eq!(c.peer_addr()?.to_string(), server.to_string());
    assert_eq!(c.local_addr()?.network(), server.network());
    c.write_all(b"generic")?;
    let mut b = [0u8; 7];
    c.read_exact(&mut b)?;
    assert_eq!(&b, b"generic");
    c.set_read_deadline(Some(Instant::now() + ms(50)))?;
    assert_eq!(c.read(&mut b).unwrap_err().kind(), io::ErrorKind::TimedOut);
    c.set_deadline(None)?;
    c.close()
}

fn exercise<L: Listener + 'static>(ln: L, dial: impl FnOnce(&Addr) -> Box<dyn Conn>) {
    let addr = ln.addr().unwrap();
    let server = gonet::go(move || {
        let n = serve_one(&ln).unwrap();
        // The accept deadline works through the trait too.
        ln.set_deadline(Some(past())).unwrap();
        assert_eq!(ln.accept().unwrap_err().kind(), io::ErrorKind::TimedOut);
        ln.close().unwrap();
        n
    });
    client(dial(&addr), &addr).unwrap();
    assert_eq!(server.join().unwrap(), 7);
}

#[test]
fn generic_code_runs_over_tcp_and_unix() {
    run(2, LIMIT, || {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(tcp.addr().unwrap().network(), "tcp");
        exercise(tcp, |a| match a {
            Addr::Tcp(sa) => Box::new(TcpStream::connect(*sa).unwrap()),
            other => panic!("{other:?}"),
        });

        let dir = TempDir::new("conn-trait");
        let path = dir.join("g.sock");
        let unix = UnixListener::bind(&path).unwrap();
        assert_eq!(unix.addr().unwrap().to_string(), path.display().to_string());
        exercise(unix, |a| {
            assert_eq!(a.network(), "unix");
            Box::new(UnixStream::connect(a.to_string()).unwrap())
        });
    });
}
