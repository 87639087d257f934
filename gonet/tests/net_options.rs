//! Go's Dialer and ListenConfig fields and socket options, read back from the kernel with
//! `getsockopt`; linger-0 close resets the peer; a Unix listener removes its file on close.

mod net_util;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use gonet::net::{Dialer, ListenConfig, TcpListener, TcpStream, UnixListener, UnixStream};
use net_util::*;

/// An integer socket option, straight from the kernel.
fn getsockopt(fd: &impl AsRawFd, level: i32, name: i32) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for writes of an int.
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), level, name, (&mut v as *mut libc::c_int).cast(), &mut len)
    };
    assert_eq!(r, 0, "getsockopt: {}", io::Error::last_os_error());
    v
}

fn linger_of(fd: &impl AsRawFd) -> (i32, i32) {
    let mut l = libc::linger { l_onoff: 0, l_linger: 0 };
    let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `l` and `len` are valid for writes of a linger struct.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut l as *mut libc::linger).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0);
    (l.l_onoff, l.l_linger)
}

fn keepalive_of(fd: &impl AsRawFd) -> (i32, i32, i32) {
    (
        getsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
        getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
    )
}

/// Dialed and accepted connections have keep-alive on with Go's 15 s period by default; the
/// Dialer's and ListenConfig's fields change or disable it.
#[test]
fn keep_alive_defaults_and_fields() {
    run(2, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = ln.accept().unwrap();
        assert_eq!(keepalive_of(&c), (1, 15, 15));
        assert_eq!(keepalive_of(&s), (1, 15, 15));
        assert!(c.keepalive().unwrap());
        assert_eq!(c.keepalive_period().unwrap(), Duration::from_secs(15));

        let off = Dialer { keep_alive: None, ..Default::default() }.dial(addr).unwrap();
        assert_eq!(keepalive_of(&off).0, 0);
        let p30 = Dialer { keep_alive: Some(Duration::from_secs(30)), ..Default::default() }
            .dial(addr)
            .unwrap();
        assert_eq!(keepalive_of(&p30), (1, 30, 30));

        let ln2 =
            ListenConfig { keep_alive: None, ..Default::default() }.listen("127.0.0.1:0").unwrap();
        let _c2 = TcpStream::connect(ln2.local_addr().unwrap()).unwrap();
        let (s2, _) = ln2.accept().unwrap();
        assert_eq!(keepalive_of(&s2).0, 0);

        c.set_keepalive(false).unwrap();
        assert_eq!(keepalive_of(&c).0, 0);
        c.set_keepalive_period(Duration::from_secs(42)).unwrap();
        assert_eq!(keepalive_of(&c), (1, 42, 42));
    });
}

/// Linger, buffer sizes, nodelay and TTL set through gonet read back from the kernel.
#[test]
fn options_read_back_with_getsockopt() {
    run(1, LIMIT, || {
        let (c, _s) = tcp_pair();
        assert_eq!(linger_of(&c), (0, 0));
        c.set_linger(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(linger_of(&c), (1, 3));
        assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(3)));
        c.set_linger(None).unwrap();
        assert_eq!(linger_of(&c).0, 0);

        c.set_send_buffer_size(64 * 1024).unwrap();
        c.set_recv_buffer_size(96 * 1024).unwrap();
        // Linux doubles the value it is given.
        assert_eq!(getsockopt(&c, libc::SOL_SOCKET, libc::SO_SNDBUF), 128 * 1024);
        assert_eq!(getsockopt(&c, libc::SOL_SOCKET, libc::SO_RCVBUF), 192 * 1024);
        assert_eq!(c.send_buffer_size().unwrap(), 128 * 1024);
        assert_eq!(c.recv_buffer_size().unwrap(), 192 * 1024);

        c.set_nodelay(true).unwrap();
        assert_eq!(getsockopt(&c, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
        assert!(c.nodelay().unwrap());
        c.set_ttl(17).unwrap();
        assert_eq!(getsockopt(&c, libc::IPPROTO_IP, libc::IP_TTL), 17);
        assert_eq!(c.ttl().unwrap(), 17);

        let (u, _u2) = UnixStream::pair().unwrap();
        u.set_send_buffer_size(32 * 1024).unwrap();
        assert_eq!(getsockopt(&u, libc::SOL_SOCKET, libc::SO_SNDBUF), 64 * 1024);
    });
}

/// `set_linger(Some(0))` then `close()` resets the connection: the peer's read fails with
/// `ConnectionReset` instead of seeing an orderly end of stream.
#[test]
fn linger_zero_close_resets_the_peer() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        s.set_linger(Some(Duration::ZERO)).unwrap();
        s.close().unwrap();
        gonet::time::sleep(ms(50));
        let mut b = [0u8; 16];
        let r = (&c).read(&mut b);
        match r {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => panic!("read {n} bytes instead of a reset"),
        }
        // Without linger, a close is an orderly end of stream.
        let (c, s) = tcp_pair();
        s.close().unwrap();
        assert_eq!((&c).read(&mut b).unwrap(), 0);
    });
}

/// `SO_REUSEPORT`: two listeners share a port, and the backlog field reaches `listen`.
#[test]
fn listen_config_reuse_port_and_backlog() {
    run(2, LIMIT, || {
        let cfg = ListenConfig { reuse_port: true, ..Default::default() };
        let a = cfg.listen("127.0.0.1:0").unwrap();
        let addr: SocketAddr = a.local_addr().unwrap();
        let b = cfg.listen(addr).unwrap();
        assert_eq!(getsockopt(&b, libc::SOL_SOCKET, libc::SO_REUSEPORT), 1);
        // Without it, the port is taken.
        assert_eq!(TcpListener::bind(addr).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        drop((a, b));

        // Backlog 1: after the queue holds its connections, a further SYN is dropped, so a
        // short dial times out (with the default backlog it would connect).
        let small =
            ListenConfig { backlog: 1, ..Default::default() }.listen("127.0.0.1:0").unwrap();
        let sa = small.local_addr().unwrap();
        let short = Dialer { timeout: Some(ms(300)), ..Default::default() };
        let mut held = Vec::new();
        let mut timed_out = false;
        for _ in 0..8 {
            match short.dial(sa) {
                Ok(c) => held.push(c),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                    timed_out = true;
                    break;
                }
            }
        }
        assert!(timed_out && held.len() <= 3, "{} connections fit a backlog of 1", held.len());
    });
}

/// Dialer fields: a local address to bind, and a deadline in the past failing at once.
#[test]
fn dialer_local_address_and_deadline() {
    run(2, LIMIT, || {
        let ln = listener();
        let addr = ln.local_addr().unwrap();
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let c = Dialer { local_addr: Some(local), ..Default::default() }.dial(addr).unwrap();
        let (_s, peer) = ln.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        let taken = c.local_addr().unwrap();
        let e = Dialer { local_addr: Some(taken), ..Default::default() }.dial(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().starts_with(&format!("dial tcp {addr}: bind: ")), "{e}");

        let t = Instant::now();
        let e = Dialer { deadline: Some(past()), ..Default::default() }.dial(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));

        let dir = TempDir::new("dialer-unix");
        let path = dir.join("d.sock");
        let _l = UnixListener::bind(&path).unwrap();
        let u = Dialer { timeout: Some(ms(500)), ..Default::default() }.dial_unix(&path).unwrap();
        assert!(u.peer_addr().unwrap().as_pathname().is_some());
    });
}

/// Like Go's, a Unix listener removes its socket file on close (and drop), so a restarted
/// server binds the same path; `set_unlink_on_close(false)` keeps it.
#[test]
fn unix_listener_unlinks_its_file() {
    run(2, LIMIT, || {
        let dir = TempDir::new("unix-unlink");
        let path = dir.join("srv.sock");
        let ln = UnixListener::bind(&path).unwrap();
        assert!(path.exists());
        ln.close().unwrap();
        assert!(!path.exists(), "close left the socket file");
        drop(ln);
        for _ in 0..3 {
            // A restarted server binds the same path.
            let ln = UnixListener::bind(&path).unwrap();
            let c = UnixStream::connect(&path).unwrap();
            let (s, _) = ln.accept().unwrap();
            (&c).write_all(b"again").unwrap();
            let mut b = [0u8; 5];
            (&s).read_exact(&mut b).unwrap();
            drop(ln);
            assert!(!path.exists(), "drop left the socket file");
        }
        let ln = UnixListener::bind(&path).unwrap();
        ln.set_unlink_on_close(false);
        ln.close().unwrap();
        assert!(path.exists(), "set_unlink_on_close(false) did not keep the file");
        // A listener taken over from std does not remove a file it did not create.
        std::fs::remove_file(&path).unwrap();
        let std_ln = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(UnixListener::from(std_ln));
        assert!(path.exists());
    });
}
