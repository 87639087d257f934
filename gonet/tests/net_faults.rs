//! Faults: refused and reset connections, writes to a closed peer (EPIPE, never a SIGPIPE
//! death), zero-byte reads, and running out of descriptors in accept (EMFILE) without a spin.
//! The SIGPIPE and EMFILE cases run in a child process (this test binary re-executed for one
//! test) because they change process-wide state.

mod net_util;

use std::io::{self, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonet::net::{TcpStream, UnixDatagram, UnixStream};
use gonet::time::sleep;
use net_util::*;

const CHILD_ENV: &str = "GONET_NET_FAULTS_CHILD";

fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    run(2, LIMIT, || {
        let e = TcpStream::connect(dead_addr()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        let e = TcpStream::connect_timeout(dead_addr(), Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    });
    // The same on a plain thread.
    within(LIMIT, || {
        let e = TcpStream::connect(dead_addr()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    });
}

/// Makes `s` send a reset when it is closed (`SO_LINGER` with a zero timeout).
fn linger_zero(s: &TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt reads a valid linger struct of the given size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt(SO_LINGER): {}", io::Error::last_os_error());
}

#[test]
fn reset_by_peer_fails_a_blocked_read_and_later_calls() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        let c = Arc::new(c);
        let r = c.clone();
        let h = gonet::go(move || (&*r).read(&mut [0u8; 16]));
        sleep(ms(50));
        linger_zero(&s);
        drop(s);
        let e = h.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        // After the reset, reads see EOF or the reset; writes fail.
        match (&*c).read(&mut [0u8; 16]) {
            Ok(0) => {}
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => panic!("read {n} bytes after a reset"),
        }
        let e = (&*c).write(b"x").unwrap_err();
        assert!(
            matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset),
            "{e}"
        );
    });
}

#[test]
fn eof_is_repeatable() {
    run(2, LIMIT, || {
        let (c, s) = tcp_pair();
        (&s).write_all(b"end").unwrap();
        drop(s);
        let mut all = Vec::new();
        (&c).read_to_end(&mut all).unwrap();
        assert_eq!(all, b"end");
        for _ in 0..3 {
            assert_eq!((&c).read(&mut [0u8; 8]).unwrap(), 0);
        }
    });
}

/// Go's `TestZeroByteRead`: a read into an empty buffer returns 0 at once, with or without
/// data pending, and consumes nothing.
#[test]
fn zero_byte_reads_return_at_once() {
    fn check<S>(s: &S, peer: &S)
    where
        for<'a> &'a S: Read + Write,
    {
        let t = Instant::now();
        let mut r: &S = s;
        assert_eq!(r.read(&mut []).unwrap(), 0);
        assert_eq!(r.read_vectored(&mut []).unwrap(), 0);
        assert_eq!(r.read_vectored(&mut [IoSliceMut::new(&mut [])]).unwrap(), 0);
        assert!(t.elapsed() < Duration::from_secs(1), "an empty read waited");
        let mut w: &S = peer;
        w.write_all(b"kept").unwrap();
        sleep(ms(20));
        assert_eq!(r.read(&mut []).unwrap(), 0);
        let mut got = [0u8; 4];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"kept");
    }
    let body = || {
        let (c, s) = tcp_pair();
        // Bound every call: a zero-byte read that waited would otherwise hang.
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(5))).unwrap();
        check(&c, &s);
        let t = Instant::now();
        assert_eq!(c.peek(&mut []).unwrap(), 0);
        assert!(t.elapsed() < Duration::from_secs(1));
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_deadline(Some(Instant::now() + Duration::from_secs(5))).unwrap();
        check(&a, &b);
    };
    run(2, LIMIT, body);
    within(LIMIT, body);
}

/// Writes to a peer that is gone fail with EPIPE (or a reset), and never kill the process
/// with SIGPIPE: the child restores SIGPIPE's default action (which terminates) first.
#[test]
fn write_to_a_closed_peer_fails_without_sigpipe() {
    if child_role().as_deref() == Some("sigpipe") {
        return sigpipe_child();
    }
    let name = "write_to_a_closed_peer_fails_without_sigpipe";
    let (status, out) = run_child(name, (CHILD_ENV, "sigpipe"), Duration::from_secs(60));
    assert!(status.success(), "child failed ({status}):\n{out}");
    assert!(out.contains("SIGPIPE-CHILD-OK"), "child did not run the check:\n{out}");
}

fn sigpipe_child() {
    // SAFETY: sets the process-wide SIGPIPE action back to its default (terminate); this is
    // a child process running only this test.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    fn broken(e: &io::Error) -> bool {
        matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
    }
    let body = || {
        // Our own write half shut down: EPIPE at once, for plain and vectored writes.
        let (c, _s) = tcp_pair();
        c.shutdown(Shutdown::Write).unwrap();
        let e = (&c).write(b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        let e = (&c).write_vectored(&[io::IoSlice::new(b"x")]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");

        // The peer closed: the first writes may still be accepted, then EPIPE or a reset.
        let (c, s) = tcp_pair();
        drop(s);
        let mut failed = None;
        for _ in 0..200 {
            if let Err(e) = (&c).write(&[1u8; 1024]) {
                failed = Some(e);
                break;
            }
            sleep(ms(1));
        }
        let e = failed.expect("writes to a closed peer kept succeeding");
        assert!(broken(&e), "{e}");
        assert!((&c).write_vectored(&[io::IoSlice::new(b"y")]).is_err());

        // Unix stream whose peer is gone: EPIPE.
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let e = (&a).write(b"x").unwrap_err();
        assert!(broken(&e), "{e}");
        let e = (&a).write_vectored(&[io::IoSlice::new(b"x")]).unwrap_err();
        assert!(broken(&e), "{e}");

        // Unix datagram whose peer is gone.
        let (a, b) = UnixDatagram::pair().unwrap();
        drop(b);
        assert!(a.send(b"x").is_err());
    };
    run(2, LIMIT, body);
    within(LIMIT, body);
    println!("SIGPIPE-CHILD-OK");
}

/// Accept with no descriptors left: an error at once (not a hang, not a busy loop), and the
/// listener works again once descriptors are freed.
#[test]
fn accept_out_of_descriptors_errors_without_spinning() {
    if child_role().as_deref() == Some("emfile") {
        return emfile_child();
    }
    let name = "accept_out_of_descriptors_errors_without_spinning";
    let (status, out) = run_child(name, (CHILD_ENV, "emfile"), Duration::from_secs(60));
    assert!(status.success(), "child failed ({status}):\n{out}");
    assert!(out.contains("EMFILE-CHILD-OK"), "child did not run the check:\n{out}");
}

/// Opens descriptors until the limit is reached, keeping `spare` of them free.
fn fill_descriptors(spare: usize) -> Vec<OwnedFd> {
    let mut held = Vec::new();
    loop {
        // SAFETY: opening /dev/null; the result is checked before it is owned.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "filling descriptors: {e}");
            break;
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        held.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    for _ in 0..spare {
        held.pop();
    }
    held
}

/// Whether `e` is EMFILE (accept's error carries the OS error).
fn is_emfile(e: &io::Error) -> bool {
    gonet::net::raw_os_error(e) == Some(libc::EMFILE)
}

fn emfile_child() {
    run(1, LIMIT, || {
        let ln = Arc::new(listener());
        let addr = ln.local_addr().unwrap();
        // Clients connect (the kernel completes the handshakes), nobody accepts yet.
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let ln2 = Arc::new(listener());
        let addr2 = ln2.local_addr().unwrap();

        let lim = libc::rlimit { rlim_cur: 512, rlim_max: 512 };
        // SAFETY: setrlimit reads a valid rlimit struct.
        let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        assert_eq!(r, 0, "setrlimit: {}", io::Error::last_os_error());
        let mut held = fill_descriptors(0);

        // Accept fails at once with EMFILE, leaving the pending connections queued.
        let t = Instant::now();
        let e = ln.accept().unwrap_err();
        assert_eq!(gonet::net::raw_os_error(&e), Some(libc::EMFILE), "{e}");
        let want = format!("accept tcp {addr}: accept4: too many open files");
        assert_eq!(e.to_string(), want);
        assert!(t.elapsed() < Duration::from_secs(1));

        // Retrying with pauses burns no CPU in the background: no worker spins on the ready
        // listener.
        let cpu0 = cpu_time();
        let t = Instant::now();
        let mut tries = 0;
        while t.elapsed() < ms(300) {
            let e = ln.accept().unwrap_err();
            assert!(is_emfile(&e), "{e}");
            tries += 1;
            sleep(ms(10));
        }
        let cpu = cpu_time() - cpu0;
        assert!(tries >= 5);
        assert!(cpu < ms(150), "{cpu:?} of CPU over 300 ms of sleeping retries: a spin");

        // A goroutine parked in accept when the limit is hit: a new client arrives while no
        // descriptor is free for it, and the accept returns the error instead of hanging.
        drop(held.pop()); // one free descriptor: for the client's socket
        let l = ln2.clone();
        let parked = gonet::go(move || l.accept().map(|_| ()));
        sleep(ms(50));
        assert!(!parked.is_finished());
        let late = TcpStream::connect(addr2).unwrap();
        let e = parked.join().unwrap().unwrap_err();
        assert!(is_emfile(&e), "{e}");

        // Once descriptors are freed, both listeners work again.
        drop(held);
        for c in &clients {
            let (s, peer) = ln.accept().unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            (&s).write_all(b"ok").unwrap();
            let mut b = [0u8; 2];
            (&*c).read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ok");
        }
        let (s, _) = ln2.accept().unwrap();
        (&late).write_all(b"late").unwrap();
        let mut b = [0u8; 4];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"late");
    });
    // A plain thread's first wait on a socket opens an eventfd (its kick): with no
    // descriptor left, the read fails with EMFILE at once, and works once one is freed.
    within(LIMIT, || {
        let (c, s) = tcp_pair();
        let held = fill_descriptors(0);
        let t = Instant::now();
        let e = (&c).read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
        drop(held);
        (&s).write_all(b"back").unwrap();
        let mut b = [0u8; 4];
        (&c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"back");
    });
    println!("EMFILE-CHILD-OK");
}
