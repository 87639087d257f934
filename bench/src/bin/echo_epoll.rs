//! Echo server on raw edge-triggered epoll (libc), non-blocking sockets: the physical limit
//! the other servers are measured against — one `read` and one `write` per request, nothing
//! else. Listens on the address given as the first argument. One shared 64 KiB read buffer
//! per loop; a connection owns a buffer only while the kernel refuses part of a write (then
//! reading pauses until the rest is flushed on EPOLLOUT). TCP_NODELAY is set on every
//! connection, as Go does by default.
//!
//! By default one thread. `--threads N` runs N loops that share nothing: each thread has its
//! own `SO_REUSEPORT` listener on the address (the kernel spreads new connections over them
//! by a hash of the 4-tuple), its own epoll, its own connections and buffer — the floor of
//! `bench/scale.sh` at N cores. The threads are named `epoll-0` … `epoll-N-1`; the main thread
//! runs the last loop, so the process has exactly N threads.
//!
//! Run: `echo_epoll 127.0.0.1:9000` or `echo_epoll --threads 4 127.0.0.1:9000`.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use gonet_bench::{echo_server_init, Flags, ECHO_BUF};

/// Per-connection state, indexed by descriptor.
#[derive(Default)]
struct Conn {
    /// Bytes read but not yet written back (empty on the fast path).
    pending: Vec<u8>,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn epoll_add(ep: RawFd, fd: RawFd, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: fd as u64 };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call; `ep` and `fd` are
    // descriptors this process owns.
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    Ok(())
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    cvt_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

fn close_fd(fd: RawFd) {
    // SAFETY: `fd` is an accepted connection owned by this loop and closed exactly once (its
    // slot is cleared at the same time); closing also removes it from the epoll set.
    unsafe { libc::close(fd) };
}

/// Writes as much of `data` as the socket takes; returns how much was written.
fn write_some(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match write_fd(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Flushes pending output, then reads and echoes until the receive queue is empty: a short
/// read on a stream socket means it was, and the edge-triggered epoll reports the next data,
/// so the `read` that would only say `EAGAIN` is skipped — unless the event reported a
/// hang-up (`hup`), when the peer's FIN may sit behind the data with no edge to come.
/// Returns `Err` when the connection is finished (EOF or error).
fn service(fd: RawFd, conn: &mut Conn, buf: &mut [u8], hup: bool) -> io::Result<()> {
    if !conn.pending.is_empty() {
        let n = write_some(fd, &conn.pending)?;
        conn.pending.drain(..n);
        if !conn.pending.is_empty() {
            return Ok(()); // still blocked: wait for EPOLLOUT before reading more
        }
    }
    loop {
        let n = match read_fd(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let w = write_some(fd, &buf[..n])?;
        if w < n {
            conn.pending.extend_from_slice(&buf[w..n]);
            return Ok(());
        }
        if n < buf.len() && !hup {
            return Ok(());
        }
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: the option value points at a live c_int of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// A listening socket on `addr` with `SO_REUSEPORT` set, so several can share the address.
fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket has no memory-safety preconditions.
    let fd = cvt(unsafe {
        libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: `fd` is a socket just created and owned by nothing else; the listener now owns
    // it and closes it on every path below.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: the option value points at a live c_int of the size passed.
        cvt(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
    }
    // SAFETY: both sockaddr types are plain data for which all-zero is valid; the pointer and
    // length passed to bind describe the one initialised for the address's family.
    unsafe {
        let mut v4: libc::sockaddr_in = std::mem::zeroed();
        let mut v6: libc::sockaddr_in6 = std::mem::zeroed();
        let (ptr, len): (*const libc::sockaddr, usize) = match addr {
            SocketAddr::V4(a) => {
                v4.sin_family = libc::AF_INET as libc::sa_family_t;
                v4.sin_port = a.port().to_be();
                v4.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                ((&v4 as *const libc::sockaddr_in).cast(), std::mem::size_of_val(&v4))
            }
            SocketAddr::V6(a) => {
                v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                v6.sin6_port = a.port().to_be();
                v6.sin6_addr.s6_addr = a.ip().octets();
                ((&v6 as *const libc::sockaddr_in6).cast(), std::mem::size_of_val(&v6))
            }
        };
        cvt(libc::bind(fd, ptr, len as libc::socklen_t))?;
        cvt(libc::listen(fd, libc::SOMAXCONN))?;
    }
    Ok(listener)
}

fn main() -> io::Result<()> {
    echo_server_init();
    let flags = Flags::parse(&["threads"]);
    let addr = flags.positional().first().cloned().unwrap_or_else(|| "127.0.0.1:9000".into());
    let Some(threads) = flags.get_opt::<usize>("threads") else {
        // One loop on a plain listener, as the single-core benchmarks have always run it.
        let listener = TcpListener::bind(&addr)?;
        listener.set_nonblocking(true)?;
        return serve(&listener);
    };
    if threads == 0 {
        eprintln!("echo_epoll: --threads must be at least 1");
        std::process::exit(2);
    }
    let sa: SocketAddr = addr.parse().map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("address {addr:?}: {e}"))
    })?;
    // Every listener is bound before any loop runs, so no connection waits for a late one.
    let first = reuseport_listener(sa)?;
    // Port 0 picks a port for the first listener; the others join it.
    let sa = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(reuseport_listener(sa)?);
    }
    let last = listeners.pop().expect("threads >= 1");
    for (i, l) in listeners.into_iter().enumerate() {
        std::thread::Builder::new().name(format!("epoll-{i}")).spawn(move || {
            if let Err(e) = serve(&l) {
                eprintln!("echo_epoll: loop {i}: {e}");
                std::process::exit(1);
            }
        })?;
    }
    serve(&last)
}

/// Runs one event loop: accepts from `listener` and serves every connection it accepted.
fn serve(listener: &TcpListener) -> io::Result<()> {
    let lfd = listener.as_raw_fd();
    // SAFETY: epoll_create1 has no memory-safety preconditions.
    let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    epoll_add(ep, lfd, libc::EPOLLIN as u32 | libc::EPOLLET as u32)?;

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![0u8; ECHO_BUF];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let conn_events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    loop {
        // SAFETY: `events` is valid for writes of `events.len()` entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            if fd == lfd {
                loop {
                    // SAFETY: null address pointers are allowed: the peer address is unused.
                    let c = unsafe {
                        libc::accept4(
                            lfd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if c < 0 {
                        let e = io::Error::last_os_error();
                        match e.kind() {
                            io::ErrorKind::WouldBlock => break,
                            io::ErrorKind::Interrupted => continue,
                            _ => {
                                eprintln!("accept: {e}");
                                break;
                            }
                        }
                    }
                    set_nodelay(c);
                    let idx = c as usize;
                    if conns.len() <= idx {
                        conns.resize_with(idx + 1, || None);
                    }
                    conns[idx] = Some(Conn::default());
                    if let Err(e) = epoll_add(ep, c, conn_events) {
                        eprintln!("epoll_ctl: {e}");
                        conns[idx] = None;
                        close_fd(c);
                    }
                }
                continue;
            }
            let Some(slot) = conns.get_mut(fd as usize) else {
                continue;
            };
            let Some(conn) = slot.as_mut() else {
                continue;
            };
            let hup = ev.events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
            if service(fd, conn, &mut buf, hup).is_err() {
                *slot = None;
                close_fd(fd);
            }
        }
    }
}
