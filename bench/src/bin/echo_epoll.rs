//! Echo server on raw edge-triggered epoll (libc), single thread, non-blocking sockets: the
//! physical limit the other servers are measured against — one `read` and one `write` per
//! request, nothing else. Listens on the address given as
//! argv[1]. One shared 64 KiB read buffer; a connection owns a buffer only while the kernel
//! refuses part of a write (then reading pauses until the rest is flushed on EPOLLOUT).
//! TCP_NODELAY is set on every connection, as Go does by default.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

use gonet_bench::{echo_server_init, listen_addr, ECHO_BUF};

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

fn main() -> io::Result<()> {
    echo_server_init();
    let listener = TcpListener::bind(listen_addr())?;
    listener.set_nonblocking(true)?;
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
