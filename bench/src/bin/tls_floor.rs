//! TLS echo floor of bench/tls.sh: the fastest TLS echo server one CPU can run with rustls,
//! so that the other servers' figures can be read against what is reachable at all. One
//! thread, one edge-triggered epoll over every connection, non-blocking sockets, and per
//! request only the work no TLS server can avoid: one `read(2)` of ciphertext, decryption,
//! encryption of the echo, one `write(2)`. No runtime, no tasks, no wakers, no timers.
//!
//! Same TLS as the other Rust peers: rustls with the ring provider, TLS 1.3 and 1.2 (the
//! cipher suite is the client's choice; tls_loadgen offers TLS 1.3 AES-128-GCM only), a
//! self-signed ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1 made by rcgen at start,
//! its PEM written to `$TMPDIR/gonet-tls_floor-cert.pem`. TCP_NODELAY on every connection.
//!
//! By default each connection is rustls's `UnbufferedServerConnection`, the API that does the
//! least: records are decrypted where `read` put them and the echo is encrypted straight into
//! the buffer `write` sends, both buffers this loop's own and reused. What rustls (0.23) still
//! does per request is copy each decrypted record into a `Vec` of its own; the echo is copied
//! once more, out of that `Vec`, because the decrypting and encrypting states each borrow the
//! connection. The read, plaintext and output buffers are shared by all connections (one
//! thread serves them one at a time): a connection keeps bytes only while part of a record
//! awaits the rest or the kernel refuses part of a write (then reading pauses until EPOLLOUT).
//!
//! `FLOOR_BUFFERED=1` uses the buffered `ServerConnection` instead (the API tls_echo_tokio,
//! gonet's tls_echo use; the reactor has its own record layer), still fed from one `read(2)` into this loop's
//! buffer: rustls's `read_tls` takes at most 4 KiB at a time, so a 4 KiB echo's record is
//! handed over in two parts, and the echo is queued in a `Vec` of rustls's and sent by one
//! `writev(2)` (`write_tls`). The gap between the two modes is the cost of the buffered API.
//!
//! Idle: by default the loop blocks in `epoll_wait` like any event loop. With `FLOOR_SPIN=1` it
//! never sleeps: `epoll_wait` with timeout 0 in a loop, so data is seen as soon as the kernel
//! queues it — the lowest latency any server can reach, at the price of one whole CPU.
//!
//! Run: `tls_floor 127.0.0.1:9443`, `FLOOR_SPIN=1 tls_floor 127.0.0.1:9443`.

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use gonet_bench::{echo_server_init, Flags, ECHO_BUF};
use rustls::crypto::ring;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{ServerConfig, ServerConnection};

fn config() -> io::Result<Arc<ServerConfig>> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let ck = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let path = std::env::temp_dir().join("gonet-tls_floor-cert.pem");
    std::fs::write(&path, ck.cert.pem())?;
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let cfg = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(cfg))
}

/// Whether environment variable `name` is `1`.
fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn main() -> io::Result<()> {
    echo_server_init();
    let flags = Flags::parse(&[]);
    let addr = flags.positional().first().cloned().unwrap_or_else(|| "127.0.0.1:9443".into());
    let (spin, buffered) = (env_on("FLOOR_SPIN"), env_on("FLOOR_BUFFERED"));
    let cfg = config()?;
    let listener = TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    eprintln!(
        "tls_floor: listening on {} ({} rustls API, {})",
        listener.local_addr()?,
        if buffered { "buffered" } else { "unbuffered" },
        if spin { "busy-polling epoll" } else { "blocking in epoll_wait" }
    );
    serve(&listener, &cfg, spin, buffered)
}

fn tls_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("tls: {e}"))
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

fn close_fd(fd: RawFd) {
    // SAFETY: `fd` is an accepted connection owned by this loop and closed exactly once (its
    // slot is cleared at the same time); closing also removes it from the epoll set.
    unsafe { libc::close(fd) };
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

/// Non-blocking `write(2)`/`writev(2)` on a connection's descriptor: `write_tls` of the
/// buffered API hands all its queued records to `write_vectored`, one system call.
struct FdWrite(RawFd);

impl Write for FdWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        cvt_size(unsafe { libc::write(self.0, buf.as_ptr().cast(), buf.len()) })
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec`, and each describes memory valid
        // for reads for the duration of the call; `n` does not exceed `bufs.len()`.
        cvt_size(unsafe { libc::writev(self.0, bufs.as_ptr().cast(), n) })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes as much of `data` as the socket takes; returns how much was written.
fn write_some(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match FdWrite(fd).write(&data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A connection's TLS state in either API.
enum Tls {
    Unbuffered(UnbufferedServerConnection),
    Buffered(ServerConnection),
}

/// Per-connection state, indexed by descriptor. Both vectors are empty on the fast path.
struct Conn {
    tls: Tls,
    /// Ciphertext read but not yet a whole record (unbuffered API; the buffered one keeps
    /// its own).
    partial: Vec<u8>,
    /// Ciphertext not yet written: the kernel refused part of a write (unbuffered API; the
    /// buffered one keeps its own).
    pending: Vec<u8>,
}

impl Conn {
    /// Whether output is waiting for EPOLLOUT.
    fn blocked(&self) -> bool {
        match &self.tls {
            Tls::Unbuffered(_) => !self.pending.is_empty(),
            Tls::Buffered(c) => c.wants_write(),
        }
    }
}

/// Buffers shared by every connection of the loop, reused for every request.
struct Scratch {
    /// Ciphertext as read, after the partial record a connection kept.
    rbuf: Vec<u8>,
    /// Decrypted records waiting to be echoed.
    plain: Vec<u8>,
    /// Ciphertext to write.
    out: Out,
}

/// Ciphertext to write: handshake records and the encrypted echo, `buf[..len]`. `buf` only
/// grows (when rustls asks for more room), so it is not zeroed again per request.
struct Out {
    buf: Vec<u8>,
    len: usize,
}

/// Runs the unbuffered connection over `inbuf` (whole records and maybe the start of one):
/// the handshake, decryption of every whole record and encryption of its echo, all output
/// appended to `out`. Returns how many bytes of `inbuf` were consumed, and whether the
/// connection is finished (the peer's close_notify).
fn process_unbuffered(
    conn: &mut UnbufferedServerConnection,
    inbuf: &mut [u8],
    plain: &mut Vec<u8>,
    out: &mut Out,
) -> io::Result<(usize, bool)> {
    let mut start = 0;
    loop {
        let UnbufferedStatus { mut discard, state } = conn.process_tls_records(&mut inbuf[start..]);
        let mut stop = None;
        match state.map_err(tls_err)? {
            ConnectionState::ReadTraffic(mut r) => {
                while let Some(rec) = r.next_record() {
                    let rec = rec.map_err(tls_err)?;
                    discard += rec.discard;
                    plain.extend_from_slice(rec.payload);
                }
            }
            ConnectionState::EncodeTlsData(mut e) => loop {
                match e.encode(&mut out.buf[out.len..]) {
                    Ok(n) => {
                        out.len += n;
                        break;
                    }
                    Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                        out.buf.resize(out.len + required_size, 0);
                    }
                    Err(e) => return Err(tls_err(e)),
                }
            },
            // Sent with everything else before the next read.
            ConnectionState::TransmitTlsData(t) => t.done(),
            ConnectionState::WriteTraffic(mut w) => {
                if plain.is_empty() {
                    stop = Some(false); // nothing to echo: wants more data
                } else {
                    loop {
                        match w.encrypt(plain, &mut out.buf[out.len..]) {
                            Ok(n) => {
                                out.len += n;
                                break;
                            }
                            Err(EncryptError::InsufficientSize(InsufficientSizeError {
                                required_size,
                            })) => out.buf.resize(out.len + required_size, 0),
                            Err(e) => return Err(tls_err(e)),
                        }
                    }
                    plain.clear();
                }
            }
            ConnectionState::BlockedHandshake => stop = Some(false),
            ConnectionState::PeerClosed | ConnectionState::Closed => stop = Some(true),
            other => return Err(tls_err(format!("unexpected state {other:?}"))),
        }
        start += discard;
        if let Some(finished) = stop {
            return Ok((start, finished));
        }
    }
}

/// Hands `inbuf` to the buffered connection (`read_tls` takes at most 4 KiB a call), queues
/// the echo of every whole record, then writes everything queued with one `writev`. Returns
/// whether the connection is finished (the peer's close_notify).
fn process_buffered(
    tls: &mut ServerConnection,
    fd: RawFd,
    mut inbuf: &[u8],
    plain: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut finished = false;
    while !inbuf.is_empty() && !finished {
        tls.read_tls(&mut inbuf)?;
        let st = tls.process_new_packets().map_err(tls_err)?;
        let n = st.plaintext_bytes_to_read();
        finished = st.peer_has_closed();
        if n > 0 {
            plain.resize(n, 0);
            tls.reader().read_exact(plain)?;
            tls.writer().write_all(plain)?;
        }
    }
    flush_buffered(tls, fd)?;
    Ok(finished)
}

/// Writes what the buffered connection has queued, until done or the socket is full.
fn flush_buffered(tls: &mut ServerConnection, fd: RawFd) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(&mut FdWrite(fd)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Flushes pending output, then reads and echoes until the receive queue is empty: a short
/// read on a stream socket means it was, and the edge-triggered epoll reports the next data,
/// so the `read` that would only say `EAGAIN` is skipped — unless the event reported a
/// hang-up (`hup`), when the peer's FIN may sit behind the data with no edge to come.
/// Returns `Err` when the connection is finished (EOF, close_notify or error).
fn service(fd: RawFd, conn: &mut Conn, s: &mut Scratch, hup: bool) -> io::Result<()> {
    if conn.blocked() {
        match &mut conn.tls {
            Tls::Unbuffered(_) => {
                let n = write_some(fd, &conn.pending)?;
                conn.pending.drain(..n);
            }
            Tls::Buffered(c) => flush_buffered(c, fd)?,
        }
        if conn.blocked() {
            return Ok(()); // still blocked: wait for EPOLLOUT before reading more
        }
    }
    let closed = || io::Error::from(io::ErrorKind::UnexpectedEof);
    loop {
        // One read, after the start of a record the last one left (if any).
        let keep = conn.partial.len();
        if keep + 1 > s.rbuf.len() {
            return Err(tls_err("record larger than the read buffer"));
        }
        let n = match read_fd(fd, &mut s.rbuf[keep..]) {
            Ok(0) => return Err(closed()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.rbuf[..keep].copy_from_slice(&conn.partial);
        conn.partial.clear();
        let len = keep + n;
        let finished = match &mut conn.tls {
            Tls::Unbuffered(c) => {
                let (used, finished) =
                    process_unbuffered(c, &mut s.rbuf[..len], &mut s.plain, &mut s.out)?;
                conn.partial.extend_from_slice(&s.rbuf[used..len]);
                // One write of the handshake records and the echo.
                let out = &s.out.buf[..std::mem::take(&mut s.out.len)];
                let w = write_some(fd, out)?;
                conn.pending.extend_from_slice(&out[w..]);
                finished
            }
            Tls::Buffered(c) => process_buffered(c, fd, &s.rbuf[..len], &mut s.plain)?,
        };
        if finished {
            return Err(closed());
        }
        if conn.blocked() {
            return Ok(()); // wait for EPOLLOUT before reading more
        }
        if keep + n < s.rbuf.len() && !hup {
            return Ok(());
        }
    }
}

/// Runs the event loop: accepts from `listener` and serves every connection it accepted.
fn serve(
    listener: &TcpListener,
    cfg: &Arc<ServerConfig>,
    spin: bool,
    buffered: bool,
) -> io::Result<()> {
    let lfd = listener.as_raw_fd();
    // SAFETY: epoll_create1 has no memory-safety preconditions.
    let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    epoll_add(ep, lfd, libc::EPOLLIN as u32 | libc::EPOLLET as u32)?;
    let timeout = if spin { 0 } else { -1 };
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut s = Scratch {
        rbuf: vec![0; ECHO_BUF],
        plain: Vec::with_capacity(ECHO_BUF),
        out: Out { buf: vec![0; ECHO_BUF + 1024], len: 0 },
    };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let conn_events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    loop {
        // SAFETY: `events` is valid for writes of `events.len()` entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, timeout) };
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
                accept_all(lfd, ep, conn_events, cfg, buffered, &mut conns);
                continue;
            }
            let Some(slot) = conns.get_mut(fd as usize) else {
                continue;
            };
            let Some(conn) = slot.as_mut() else {
                continue;
            };
            let hup = ev.events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
            if service(fd, conn, &mut s, hup).is_err() {
                *slot = None;
                close_fd(fd);
            }
        }
    }
}

/// Accepts every pending connection and registers it with the epoll.
fn accept_all(
    lfd: RawFd,
    ep: RawFd,
    conn_events: u32,
    cfg: &Arc<ServerConfig>,
    buffered: bool,
    conns: &mut Vec<Option<Conn>>,
) {
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
                io::ErrorKind::WouldBlock => return,
                io::ErrorKind::Interrupted => continue,
                _ => {
                    eprintln!("accept: {e}");
                    return;
                }
            }
        }
        set_nodelay(c);
        let tls = if buffered {
            ServerConnection::new(cfg.clone()).map(|mut c| {
                // No cap on what `writer()` queues: reading pauses while output is blocked,
                // so at most one read's echo waits, as in the unbuffered mode.
                c.set_buffer_limit(None);
                Tls::Buffered(c)
            })
        } else {
            UnbufferedServerConnection::new(cfg.clone()).map(Tls::Unbuffered)
        };
        let tls = match tls {
            Ok(t) => t,
            Err(e) => {
                eprintln!("tls: {e}");
                close_fd(c);
                continue;
            }
        };
        let idx = c as usize;
        if conns.len() <= idx {
            conns.resize_with(idx + 1, || None);
        }
        conns[idx] = Some(Conn { tls, partial: Vec::new(), pending: Vec::new() });
        if let Err(e) = epoll_add(ep, c, conn_events) {
            eprintln!("epoll_ctl: {e}");
            conns[idx] = None;
            close_fd(c);
        }
    }
}
