//! TLS on reactor connections (feature `rustls`): a rustls session per connection — a server
//! session on an `EventLoop` built with `Builder::tls`, driven by the handler loop on the owner
//! worker, or a client session on a connection made by `dial_tls` (dial.rs), driven by the
//! goroutine or thread that holds it — behind the unchanged `Connection` API.
//!
//! * **Handshake.** `run` (conn.rs) calls [`Tls::handshake`] before `on_connect`: it reads,
//!   feeds rustls and sends its flights like any turn of the loop, and goes idle (no
//!   goroutine) while the client is silent. A timer armed at the first turn closes a
//!   connection whose handshake has not finished within the loop's handshake timeout.
//! * **Input.** `fill_once` calls [`Tls::fill`]: one `recv(2)` of up to 32 KiB of ciphertext
//!   into the connection's own buffer (`RecvBuf`: one block from the worker's pool, given back
//!   as soon as rustls has taken every byte), then those bytes are handed to rustls from memory
//!   (`read_tls` on a `&[u8]`, `process_new_packets` after each: whole records are
//!   decrypted), then the plaintext is moved (`reader()`) into the input `LinkBuffer` as far
//!   as the input cap allows. rustls reads at most 4 KiB into an empty deframer buffer, so fed
//!   from the socket a 4 KiB echo (one 4123-byte record) took two `read(2)`s; from memory it
//!   takes one `recv`, whatever the record size. Records rustls must answer (alerts, key
//!   updates, refused renegotiation) are sent at once.
//! * **Output.** `send_all` calls [`Tls::send_all`]: the handler's plaintext is taken from the
//!   output buffer at send time and encrypted (`writer()`), and the records go out with one
//!   `sendmsg` of rustls's record chunks (`write_tls`); on `EAGAIN` the handler waits for
//!   writability as on a plain connection.
//! * **Close.** A `close_notify` received ends the input (the handler sees end of stream
//!   after the last plaintext byte). Finalize sends ours (or the fatal alert of a failed
//!   session) with one non-blocking send before the descriptor closes; `ConnInner::close`
//!   shuts a TLS socket down for reading only so that send can still go out.
//! * **Errors.** A handshake failure or a bad record is returned as `InvalidData` from the
//!   turn; the handler loop reports it (peer, descriptor, worker) and finalizes.
//! * **Client (`dial_tls`).** [`Tls::client_handshake`] runs the whole handshake before the
//!   dial returns, under the dial's deadline (set on the socket as Go's `SetDeadline`); then
//!   `fill` and `send_all` work as above, except that the I/O goes through the
//!   `net::TcpStream`, which parks the goroutine (or blocks the thread) where a server
//!   connection would go idle or wait for writability. `Connection::close` and dropping the
//!   box send `close_notify` with one non-blocking send ([`Tls::finish`]), on the holder's
//!   thread; a close through a `ConnHandle` from elsewhere does not touch the session and
//!   closes without it.
//!
//! # Invariants
//!
//! 1. The session is touched only under the access rule of conn.rs (the owner worker, one
//!    handler at a time; for a dialed connection, the thread holding the `Connection`); each method forms `&mut ServerConnection` once per step, never
//!    across a park, and calls no user code while holding it.
//! 2. Memory stays bounded: the ciphertext buffer holds at most one read (`CIPHER_READ`),
//!    and the socket is read only when it is empty, rustls holds no undelivered plaintext and
//!    the input is below its cap; rustls is fed from it only while it holds less than
//!    `PLAIN_LIMIT` of undelivered plaintext (its own limit, beyond which it refuses
//!    `read_tls`), so it keeps at most that plus what one `read_tls` (4 KiB or less) decrypts,
//!    one record being deframed, and `set_buffer_limit` records waiting to be sent (the
//!    output cap, clamped to 16..64 KiB); the input and output `LinkBuffer`s keep their caps.
//!    An empty ciphertext buffer holds no block: an idle connection keeps none.
//! 3. No lost readiness (trigger.rs invariant 2): the socket is marked drained only after a
//!    short read (or `EAGAIN`) in the same step, *and* when rustls holds no undelivered
//!    plaintext *and* no ciphertext is left in the buffer, so a handler that could not take
//!    all of it (input cap) runs again instead of idling, and leftover ciphertext is fed to
//!    rustls by the next step before the socket is read again.
//! 4. ALPN, SNI and the version are copied out once, when the handshake completes, into a
//!    `OnceCell` never written again; `Connection` borrows them from there, not from the
//!    session.

use std::cell::{Cell, OnceCell, UnsafeCell};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, ServerConfig, ServerConnection};

use super::buffer::RecvBuf;
use super::conn::{report, ConnInner, Connection, Done, Io};
use super::trigger::Want;
use crate::runtime::timer;

/// Default time a TLS handshake may take from the connection's first turn.
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds of the record buffer rustls may fill before `write_tls` (invariant 2).
const MIN_RECORD_BUFFER: usize = 16 * 1024;
const MAX_RECORD_BUFFER: usize = 64 * 1024;
/// Most plaintext moved into the input per `fill` step.
const MOVE_CHUNK: usize = 16 * 1024;
/// Most iovecs handed to rustls's writer at once.
const MAX_IOV: usize = 16;
/// Ciphertext read from the socket at once: a record of the largest size (16 KiB of
/// plaintext and its overhead, 18 KiB at most on the wire) and more, in one pooled block.
const CIPHER_READ: usize = 32 * 1024;
/// Undelivered plaintext at which rustls is fed no more ciphertext: its own limit (0.23,
/// `DEFAULT_RECEIVED_PLAINTEXT_LIMIT`), past which `read_tls` fails (invariant 2).
const PLAIN_LIMIT: usize = 16 * 1024;

/// What the handshake negotiated (invariant 4).
struct Info {
    alpn: Option<Box<[u8]>>,
    sni: Option<Box<str>>,
    version: Option<ProtocolVersion>,
}

/// The TLS state of one connection (a server's or a dialed one's).
pub(crate) struct Tls {
    sess: UnsafeCell<rustls::Connection>,
    /// Ciphertext read from the socket and not yet taken by rustls (invariants 2 and 3).
    cipher: UnsafeCell<RecvBuf>,
    /// The name a dialed connection verified the server against (`None` on a server
    /// connection: there SNI comes from the session).
    dialed_name: Option<Box<str>>,
    /// `finish` has run (a dialed connection may be closed, then dropped).
    finished: Cell<bool>,
    info: OnceCell<Info>,
    timeout: Duration,
    /// The handshake timer, cancelled when the handshake completes or the connection closes.
    timer: Cell<Option<timer::Cancel>>,
    armed: Cell<bool>,
    /// Plaintext decrypted and not yet moved into the input (invariant 3).
    plain: Cell<usize>,
    /// The peer sent `close_notify`.
    peer_closed: Cell<bool>,
    /// Ciphertext has arrived (a peer leaving before sending any is not reported).
    got_bytes: Cell<bool>,
    /// The session failed: its fatal alert is queued instead of a `close_notify`.
    failed: Cell<bool>,
}

impl Tls {
    pub(crate) fn new(
        cfg: Arc<ServerConfig>,
        timeout: Duration,
        output_cap: usize,
    ) -> io::Result<Tls> {
        let sess = ServerConnection::new(cfg)
            .map_err(|e| io::Error::other(format!("gonet reactor: TLS session: {e}")))?;
        Ok(Tls::with(sess.into(), None, timeout, output_cap))
    }

    /// A client session for `dial_tls`, verifying the server as `name`.
    pub(crate) fn client(cfg: Arc<ClientConfig>, name: &str, output_cap: usize) -> io::Result<Tls> {
        let sn = ServerName::try_from(name.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dial_tls: invalid server name {name:?}: {e}"),
            )
        })?;
        let sess = ClientConnection::new(cfg, sn)
            .map_err(|e| io::Error::other(format!("dial_tls: TLS session: {e}")))?;
        Ok(Tls::with(sess.into(), Some(name.into()), DEFAULT_HANDSHAKE_TIMEOUT, output_cap))
    }

    fn with(
        mut sess: rustls::Connection,
        dialed_name: Option<Box<str>>,
        timeout: Duration,
        output_cap: usize,
    ) -> Tls {
        sess.set_buffer_limit(Some(output_cap.clamp(MIN_RECORD_BUFFER, MAX_RECORD_BUFFER)));
        Tls {
            sess: UnsafeCell::new(sess),
            cipher: UnsafeCell::new(RecvBuf::new()),
            dialed_name,
            finished: Cell::new(false),
            info: OnceCell::new(),
            timeout,
            timer: Cell::new(None),
            armed: Cell::new(false),
            plain: Cell::new(0),
            peer_closed: Cell::new(false),
            got_bytes: Cell::new(false),
            failed: Cell::new(false),
        }
    }

    /// The session, for one step.
    ///
    /// # Safety
    /// Invariant 1: the caller is on the owner worker, holds the result for one step that
    /// neither parks nor calls this again, and drops it before the next call.
    #[allow(clippy::mut_from_ref)]
    unsafe fn sess(&self) -> &mut rustls::Connection {
        // SAFETY: the caller's obligation (exclusive, single-threaded).
        unsafe { &mut *self.sess.get() }
    }

    /// The ciphertext buffer, for one step.
    ///
    /// # Safety
    /// As [`Tls::sess`]: invariant 1, one step, no second call while the result lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn cipher(&self) -> &mut RecvBuf {
        // SAFETY: the caller's obligation (exclusive, single-threaded).
        unsafe { &mut *self.cipher.get() }
    }

    /// Whether the handshake has completed.
    fn established(&self) -> bool {
        self.info.get().is_some()
    }

    /// A turn of the handshake (conn.rs `run`, before `on_connect`): `None` once it has
    /// completed (the turn goes on with `on_connect` and the handler), else how the turn ends.
    pub(super) fn handshake(&self, c: &ConnInner) -> io::Result<Option<Done>> {
        if self.established() {
            return Ok(None);
        }
        if !self.armed.replace(true) {
            self.arm_timer(c);
        }
        loop {
            if !c.is_active() {
                return Ok(Some(Done::Closed));
            }
            if c.trig.may_read() && !c.eof.get() {
                self.fill(c)?;
            }
            if self.established() {
                if let Some(t) = self.timer.take() {
                    t.cancel();
                }
                return Ok(None);
            }
            if c.eof.get() {
                if self.got_bytes.get() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed during the TLS handshake",
                    ));
                }
                return Ok(Some(Done::Closed));
            }
            if c.trig.try_idle() {
                return Ok(Some(Done::Idle));
            }
        }
    }

    /// Closes the connection if its handshake has not completed `timeout` from now. The
    /// timer runs on the owner worker (armed there) and holds the connection weakly.
    fn arm_timer(&self, c: &ConnInner) {
        let weak = Arc::downgrade(&c.self_arc());
        let timeout = self.timeout;
        let cancel = timer::call_at_cancellable(
            Instant::now() + timeout,
            Box::new(move || {
                let Some(c) = weak.upgrade() else { return };
                let Some(t) = &c.tls else { return };
                if t.established() || !c.is_active() {
                    return;
                }
                report(&format!(
                    "gonet reactor: connection {}: TLS handshake not finished within {timeout:?}; \
                     closing it",
                    c.peer()
                ));
                c.close();
            }),
        );
        self.timer.set(Some(cancel));
    }

    /// `fill_once` of a TLS connection: moves decrypted plaintext into the input, else feeds
    /// rustls the ciphertext left from an earlier read or, when there is none, reads the
    /// socket once and feeds rustls that. `Ok(true)`: progress or end of stream; `Ok(false)`:
    /// nothing to read now, or the input is at its cap.
    pub(super) fn fill(&self, c: &ConnInner) -> io::Result<bool> {
        if self.plain.get() > 0 {
            return Ok(self.move_plaintext(c)? > 0);
        }
        if self.peer_closed.get() {
            c.eof.set(true);
            return Ok(true);
        }
        if c.input_room() == 0 {
            return Ok(false);
        }
        let mut short = false;
        // SAFETY: invariant 1; a short borrow.
        if unsafe { self.cipher() }.is_empty() {
            match self.read_cipher(c) {
                Ok(0) => {
                    c.eof.set(true);
                    return Ok(true);
                }
                Ok(n) => {
                    self.got_bytes.set(true);
                    short = n < CIPHER_READ;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.trig.set_drained();
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        self.feed(c)?;
        if !self.established() {
            // SAFETY: invariant 1.
            let sess = unsafe { self.sess() };
            if !sess.is_handshaking() {
                let sni = match &*sess {
                    rustls::Connection::Server(s) => s.server_name().map(Box::from),
                    rustls::Connection::Client(_) => self.dialed_name.clone(),
                };
                let _ = self.info.set(Info {
                    alpn: sess.alpn_protocol().map(Box::from),
                    sni,
                    version: sess.protocol_version(),
                });
            }
        }
        // Handshake flights, alerts, key update answers.
        self.send_records(c, true)?;
        self.move_plaintext(c)?;
        // SAFETY: invariant 1; a short borrow.
        if short && self.plain.get() == 0 && unsafe { self.cipher() }.is_empty() {
            c.trig.set_drained(); // invariant 3
        }
        if self.peer_closed.get() && self.plain.get() == 0 {
            c.eof.set(true);
        }
        Ok(true)
    }

    /// One read of ciphertext into the (empty) ciphertext buffer: `recv(2)` on a server
    /// connection, through the stream (parking) on a dialed one. Returns the bytes read.
    fn read_cipher(&self, c: &ConnInner) -> io::Result<usize> {
        // SAFETY: invariant 1; the borrow ends with this call. A dialed connection's read
        // parks inside it, on the thread that holds the connection: no other step runs then.
        let cipher = unsafe { self.cipher() };
        match &c.io {
            Io::Server { .. } => {
                let fd = c.fd();
                cipher.fill(CIPHER_READ, |buf| loop {
                    // `recv`, as on a plain connection (it skips the VFS read path).
                    // SAFETY: `buf` is writable memory of `buf.len()` bytes lent by the buffer.
                    let n = unsafe { crate::sys::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                    if n >= 0 {
                        return Ok(n as usize);
                    }
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                })
            }
            Io::Client(s) => cipher.fill(CIPHER_READ, |buf| Read::read(&mut &*s, buf)),
        }
    }

    /// Hands the buffered ciphertext to rustls and decrypts it, `read_tls` then
    /// `process_new_packets` until the buffer is empty, rustls holds `PLAIN_LIMIT` of
    /// undelivered plaintext (the rest waits in the buffer: invariant 2), or the peer's
    /// `close_notify` came (what follows it is dropped, as rustls would drop it).
    fn feed(&self, c: &ConnInner) -> io::Result<()> {
        loop {
            if self.plain.get() >= PLAIN_LIMIT {
                return Ok(());
            }
            if self.peer_closed.get() {
                self.discard_cipher();
                return Ok(());
            }
            // SAFETY: invariant 1; both borrows end before `send_records` below.
            let (cipher, sess) = unsafe { (self.cipher(), self.sess()) };
            if cipher.is_empty() {
                return Ok(());
            }
            // rustls copies what fits its deframer buffer (4 KiB into an empty one).
            let n = sess.read_tls(&mut cipher.bytes())?;
            if n == 0 {
                // rustls reads nothing once it has seen `close_notify`.
                self.peer_closed.set(true);
                continue;
            }
            cipher.consume(n);
            match sess.process_new_packets() {
                Ok(st) => {
                    self.plain.set(st.plaintext_bytes_to_read());
                    self.peer_closed.set(st.peer_has_closed());
                }
                Err(e) => {
                    self.failed.set(true);
                    cipher.clear();
                    self.send_records(c, false)?; // the alert, if it goes out at once
                    let what = if self.established() { "bad TLS record" } else { "TLS handshake" };
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}")));
                }
            }
        }
    }

    /// Forgets the ciphertext not yet fed (the peer closed, or the connection is closing);
    /// its block goes back to the pool.
    fn discard_cipher(&self) {
        // SAFETY: invariant 1; the borrow ends with this statement.
        unsafe { self.cipher() }.clear();
    }

    /// Moves decrypted plaintext into the input buffer, up to the input cap.
    fn move_plaintext(&self, c: &ConnInner) -> io::Result<usize> {
        let inp = c.input();
        let mut moved = 0;
        while self.plain.get() > 0 {
            let room = c.input_room();
            if room == 0 {
                break;
            }
            let max = room.min(MOVE_CHUNK);
            let min = self.plain.get().min(max);
            let n = inp.fill(min, max, |buf| {
                // SAFETY: invariant 1; the closure is the whole step.
                match unsafe { self.sess() }.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    r => r,
                }
            })?;
            if n == 0 {
                // rustls had less than it said (cannot happen); do not spin.
                self.plain.set(0);
                break;
            }
            self.plain.set(self.plain.get().saturating_sub(n));
            moved += n;
        }
        Ok(moved)
    }

    /// Sends the records rustls holds; on `EAGAIN` waits for writability (up to the write
    /// timeout) when `wait`, else leaves them for later.
    fn send_records(&self, c: &ConnInner, wait: bool) -> io::Result<()> {
        let deadline = c.write_timeout.get().map(|t| Instant::now() + t);
        loop {
            // SAFETY: invariant 1; the borrow ends before `wait` parks.
            let sess = unsafe { self.sess() };
            if !sess.wants_write() {
                return Ok(());
            }
            let r = match &c.io {
                Io::Server { .. } => sess.write_tls(&mut FdWrite(c.fd())),
                // Blocks (parks) until the kernel takes some: no `EAGAIN` comes back.
                Io::Client(s) => sess.write_tls(&mut &*s),
            };
            match r {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && wait => {
                    c.wait(Want::Write, deadline, "flush")?
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// `send_all` of a TLS connection: encrypts the readable output (taken from the buffer as
    /// rustls accepts it) and sends the records, until both are empty.
    pub(super) fn send_all(&self, c: &ConnInner) -> io::Result<()> {
        let out = c.output();
        loop {
            if c.closing.is_set() {
                return Err(c.closed_err());
            }
            let mut took = 0;
            while !out.is_empty() {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let cnt = out.io_slices(&mut iov);
                // SAFETY: invariant 1; the borrow ends with this statement.
                let n = unsafe { self.sess() }.writer().write_vectored(&iov[..cnt])?;
                if n == 0 {
                    break; // the record buffer is full: send first
                }
                out.skip(n)?;
                took += n;
            }
            // SAFETY: invariant 1.
            let pending = unsafe { self.sess() }.wants_write();
            if !pending {
                if out.is_empty() {
                    return Ok(());
                }
                if took == 0 {
                    // Only before the handshake completes: rustls holds plaintext it cannot
                    // encrypt yet, up to its limit.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "gonet reactor: flush on {}: more output than the TLS session \
                             buffers before its handshake completes",
                            c.peer()
                        ),
                    ));
                }
                continue;
            }
            self.send_records(c, true)?;
        }
    }

    /// At finalize (or the close of a dialed connection): queue `close_notify` (unless the
    /// session failed: its alert is queued instead) and send what rustls holds with one
    /// non-blocking attempt. Runs once.
    pub(super) fn finish(&self, c: &ConnInner) {
        if self.finished.replace(true) {
            return;
        }
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
        // Its block goes back to this worker's pool.
        self.discard_cipher();
        // SAFETY: invariant 1 (finalize runs on the owner worker, no handler runs; a dialed
        // connection is closed by the thread that holds it).
        let sess = unsafe { self.sess() };
        if self.established() && !self.failed.get() {
            sess.send_close_notify();
        }
        if !sess.wants_write() {
            return;
        }
        match &c.io {
            Io::Server { .. } => {
                let _ = sess.write_tls(&mut FdWrite(c.fd()));
            }
            Io::Client(s) => {
                // Through a reference that keeps the descriptor open, and fails if a
                // `ConnHandle` closed it meanwhile (its number may name another file).
                if let Ok(r) = s.netfd().checked() {
                    let _ = sess.write_tls(&mut FdWrite(r.as_raw_fd()));
                }
            }
        }
    }

    /// The handshake of a dialed connection, before `dial_tls` returns: sends and reads the
    /// flights through the stream (parking or blocking) until it completes, under `deadline`
    /// (set on the socket for the handshake and cleared after it).
    pub(super) fn client_handshake(
        &self,
        c: &ConnInner,
        deadline: Instant,
        timeout: Duration,
    ) -> io::Result<()> {
        let Io::Client(s) = &c.io else { unreachable!("only dialed connections") };
        s.set_deadline(Some(deadline))?;
        let r = (|| loop {
            self.send_records(c, true)?;
            if self.established() {
                return Ok(());
            }
            self.fill(c)?;
            if c.eof.get() && !self.established() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
        })();
        let r = r.and_then(|()| self.send_records(c, true));
        s.set_deadline(None)?;
        r.map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("dial_tls {}: TLS handshake not finished within {timeout:?}", c.peer()),
            ),
            k => io::Error::new(k, format!("dial_tls {}: {e}", c.peer())),
        })
    }
}

/// Non-blocking `sendmsg(2)` on the descriptor for `write_tls` (one call for all the chunks
/// rustls hands over).
struct FdWrite(RawFd);

impl Write for FdWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            // SAFETY: a zeroed msghdr is a valid empty header; we set the iovecs.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = iov.len();
            // SAFETY: `msg` points to `iov.len()` valid iovecs (IoSlice is ABI-compatible).
            let n = unsafe {
                crate::sys::sendmsg(self.0, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Connection {
    fn tls_info(&self) -> Option<&Info> {
        self.inner.tls.as_ref()?.info.get()
    }

    /// The ALPN protocol the TLS handshake chose (e.g. `b"h2"`), if any (feature `rustls`).
    /// `None` on a plain connection, before the handshake completes, or when the client
    /// offered none the config accepts.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls_info()?.alpn.as_deref()
    }

    /// The server name the TLS client asked for (SNI), if any (feature `rustls`); on a
    /// connection made by [`dial_tls`](super::dial_tls), the name the server was verified as.
    pub fn server_name(&self) -> Option<&str> {
        self.tls_info()?.sni.as_deref()
    }

    /// The negotiated TLS version, `None` on a plain connection (feature `rustls`).
    pub fn tls_version(&self) -> Option<ProtocolVersion> {
        self.tls_info()?.version
    }

    /// Whether this connection is served over TLS (feature `rustls`).
    pub fn is_tls(&self) -> bool {
        self.inner.tls.is_some()
    }
}
