//! TLS on reactor connections (feature `rustls`): a rustls handshake per connection — a server
//! session on an `EventLoop` built with `Builder::tls`, driven by the handler loop on the owner
//! worker, or a client session on a connection made by `dial_tls` (dial.rs), driven by the
//! goroutine or thread that holds it — then gonet's own record layer behind the unchanged
//! `Connection` API.
//!
//! * **Handshake** (handshake.rs). `run` (conn.rs) calls [`Tls::handshake`] before
//!   `on_connect`: it reads, lets rustls's unbuffered connection process the records where
//!   they lie and sends its flights like any turn of the loop, and goes idle (no goroutine)
//!   while the client is silent. A timer armed at the first turn closes a connection whose
//!   handshake has not finished within the loop's handshake timeout. When it completes, rustls
//!   hands over the traffic keys (`dangerous_into_kernel_connection`, its API for kTLS, which
//!   keeps key updates and session tickets in rustls) and the record layer takes over.
//! * **Input** (record.rs). `fill_once` calls [`Tls::fill`]: whole records already read are
//!   opened in place in the connection's ciphertext buffer (`RecvBuf`: one pooled block, given
//!   back when empty) and their plaintext copied into the input `LinkBuffer`; when none is
//!   whole, one `recv(2)` of up to 32 KiB appends to the buffer (after the start of a record
//!   still arriving). Key updates, alerts and refused renegotiations are answered at once.
//! * **Output.** `send_all` calls [`Tls::send_all`]: the handler's plaintext is copied from the
//!   output buffer into records of up to 16 KiB sealed in place in pooled blocks (the `sealed`
//!   `LinkBuffer`), sent with one `sendmsg` of all of them; on `EAGAIN` the handler waits for
//!   writability as on a plain connection.
//! * **Close.** A `close_notify` received ends the input (the handler sees end of stream
//!   after the last plaintext byte). Finalize sends ours (or the fatal alert of a failed
//!   session) with one non-blocking send before the descriptor closes; `ConnInner::close`
//!   shuts a TLS socket down for reading only so that send can still go out.
//! * **Errors.** A handshake failure or a bad record is returned as `InvalidData` from the
//!   turn; the handler loop reports it (peer, descriptor, worker) and finalizes, which sends
//!   the alert that says why.
//! * **Client (`dial_tls`).** [`Tls::client_handshake`] runs the whole handshake before the
//!   dial returns, under the dial's deadline (set on the socket as Go's `SetDeadline`); then
//!   `fill` and `send_all` work as above, except that the I/O goes through the
//!   `net::TcpStream`, which parks the goroutine (or blocks the thread) where a server
//!   connection would go idle or wait for writability. `Connection::close` and dropping the
//!   box send `close_notify` with one non-blocking send ([`Tls::finish`]), on the holder's
//!   thread; a close through a `ConnHandle` from elsewhere does not touch the session and
//!   closes without it.
//!
//! Per request this costs no allocation: the ciphertext and sealed blocks come from the
//! worker's pool, the record layer keeps no buffer of its own, and rustls is not called.
//!
//! # Invariants
//!
//! 1. The session, the ciphertext buffer and the flight buffer are touched only under the
//!    access rule of conn.rs (the owner worker, one handler at a time; for a dialed
//!    connection, the thread holding the `Connection`). Each method forms one `&mut` to each
//!    per step; such a borrow may live across a park inside the step (waiting for
//!    writability), since nothing else touches them until the step returns (finalize waits
//!    for the handler), and no user code runs while one lives.
//! 2. Memory stays bounded: the ciphertext buffer holds at most one read (`CIPHER_READ`) and
//!    the start of one record (or, while handshaking, one handshake message up to
//!    `MAX_HANDSHAKE_BUF`); it is read only when it holds no whole record, and records are
//!    opened only while the input is below its cap, which one record's plaintext (16 KiB at
//!    most) may pass; the handler's output is sealed while fewer than `SEAL_BATCH` bytes wait
//!    to be sent. An empty ciphertext buffer holds no block: an idle connection keeps none.
//! 3. No lost readiness (trigger.rs invariant 2): the socket is marked drained only after a
//!    short read (or `EAGAIN`) in the same step, *and* when no whole record is left in the
//!    buffer, so a handler that could not take everything (input cap) runs again instead of
//!    idling, and the records left are opened by the next step before the socket is read.
//! 4. ALPN, SNI and the version are copied out once, when the handshake completes, into a
//!    `OnceCell` never written again; `Connection` borrows them from there.

mod handshake;
mod record;

use std::cell::{Cell, OnceCell, UnsafeCell};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};

use self::handshake::{client_hello_sni, Hs, Reached, Stop};
use self::record::{alert, Answer, Fatal, Records, Version};
use self::record::{ALERT, APPLICATION_DATA, HANDSHAKE};
use super::buffer::{LinkBuffer, RecvBuf};
use super::conn::{report, ConnInner, Connection, Done, Io};
use super::trigger::Want;
use crate::runtime::timer;

/// Default time a TLS handshake may take from the connection's first turn.
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most iovecs handed to one `sendmsg`.
const MAX_IOV: usize = 16;
/// Ciphertext read from the socket at once into an empty buffer: a record of the largest
/// size (16 KiB of plaintext and its overhead) and more, in one pooled block.
const CIPHER_READ: usize = 32 * 1024;
/// Least free space a read appending to kept bytes gets.
const MIN_READ: usize = 4 * 1024;
/// Most ciphertext kept while a handshake message is joined (rustls refuses larger messages).
const MAX_HANDSHAKE_BUF: usize = 256 * 1024;
/// Sealed bytes waiting to be sent past which no more output is sealed (invariant 2).
const SEAL_BATCH: usize = 64 * 1024;

/// What the handshake negotiated (invariant 4).
struct Info {
    alpn: Option<Box<[u8]>>,
    sni: Option<Box<str>>,
    version: Option<ProtocolVersion>,
}

/// The session: handshaking, then the record layer. Both variants are large (rustls's
/// connection; two expanded AEAD keys) and the `Tls` holding this is boxed once per
/// connection already: a second box would cost an allocation at the hand-over and save none.
#[allow(clippy::large_enum_variant)]
enum Session {
    Handshake(Hs),
    Records(Records),
    /// Between the two, or after a failed hand-over.
    Gone,
}

/// The TLS state of one connection (a server's or a dialed one's).
pub(crate) struct Tls {
    sess: UnsafeCell<Session>,
    /// Ciphertext read from the socket and not yet opened (invariants 2 and 3).
    cipher: UnsafeCell<RecvBuf>,
    /// Handshake flights encoded and not yet sent (empty, unallocated, after the handshake).
    flights: UnsafeCell<Vec<u8>>,
    /// Records sealed and not yet sent (released, its blocks back to the pool, each time it
    /// has been sent: `release_sealed`).
    sealed: UnsafeCell<LinkBuffer>,
    /// The name a dialed connection verified the server as (`None` on a server connection:
    /// there SNI comes from the ClientHello).
    dialed_name: Option<Box<str>>,
    /// The ClientHello's server name, read before rustls sees it (server connections).
    hello_sni: OnceCell<Option<Box<str>>>,
    /// The config's record size limit (`max_fragment_size`).
    max_frag: Option<usize>,
    /// `finish` has run (a dialed connection may be closed, then dropped).
    finished: Cell<bool>,
    info: OnceCell<Info>,
    timeout: Duration,
    /// The handshake timer, cancelled when the handshake completes or the connection closes.
    timer: Cell<Option<timer::Cancel>>,
    armed: Cell<bool>,
    /// An opened record whose plaintext the input had no room for: that many plaintext bytes
    /// at the front of the ciphertext buffer, then that many bytes of the record to skip
    /// (type, padding, tag) once they are delivered (invariant 2).
    pending: Cell<(u32, u32)>,
    /// The peer sent `close_notify`.
    peer_closed: Cell<bool>,
    /// Ciphertext has arrived (a peer leaving before sending any is not reported).
    got_bytes: Cell<bool>,
    /// The session failed: its fatal alert is queued instead of a `close_notify`.
    failed: Cell<bool>,
}

/// `config` with secret extraction on, which hands the keys to gonet's record layer after the
/// handshake, and 0-RTT data off (a copy when the caller's differs; made once per loop).
pub(crate) fn server_config(config: Arc<ServerConfig>) -> Arc<ServerConfig> {
    if config.enable_secret_extraction && config.max_early_data_size == 0 {
        return config;
    }
    let mut c = (*config).clone();
    c.enable_secret_extraction = true;
    c.max_early_data_size = 0;
    Arc::new(c)
}

fn client_config(config: Arc<ClientConfig>) -> Arc<ClientConfig> {
    if config.enable_secret_extraction {
        return config;
    }
    let mut c = (*config).clone();
    c.enable_secret_extraction = true;
    Arc::new(c)
}

impl Tls {
    /// A server session; `cfg` has secret extraction on ([`server_config`]).
    pub(crate) fn new(cfg: Arc<ServerConfig>, timeout: Duration) -> io::Result<Tls> {
        let max_frag = cfg.max_fragment_size;
        let sess = UnbufferedServerConnection::new(cfg)
            .map_err(|e| io::Error::other(format!("gonet reactor: TLS session: {e}")))?;
        Ok(Tls::with(Hs::Server(sess), None, timeout, max_frag))
    }

    /// A client session for `dial_tls`, verifying the server as `name`.
    pub(crate) fn client(cfg: Arc<ClientConfig>, name: &str) -> io::Result<Tls> {
        let sn = ServerName::try_from(name.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dial_tls: invalid server name {name:?}: {e}"),
            )
        })?;
        let cfg = client_config(cfg);
        let max_frag = cfg.max_fragment_size;
        let sess = UnbufferedClientConnection::new(cfg, sn)
            .map_err(|e| io::Error::other(format!("dial_tls: TLS session: {e}")))?;
        Ok(Tls::with(Hs::Client(sess), Some(name.into()), DEFAULT_HANDSHAKE_TIMEOUT, max_frag))
    }

    fn with(
        hs: Hs,
        dialed_name: Option<Box<str>>,
        timeout: Duration,
        max_frag: Option<usize>,
    ) -> Tls {
        Tls {
            sess: UnsafeCell::new(Session::Handshake(hs)),
            cipher: UnsafeCell::new(RecvBuf::new()),
            flights: UnsafeCell::new(Vec::new()),
            sealed: UnsafeCell::new(LinkBuffer::new()),
            dialed_name,
            hello_sni: OnceCell::new(),
            max_frag,
            finished: Cell::new(false),
            info: OnceCell::new(),
            timeout,
            timer: Cell::new(None),
            armed: Cell::new(false),
            pending: Cell::new((0, 0)),
            peer_closed: Cell::new(false),
            got_bytes: Cell::new(false),
            failed: Cell::new(false),
        }
    }

    /// The session, for one step.
    ///
    /// # Safety
    /// Invariant 1: the caller is on the owner worker (or holds the dialed connection), holds
    /// the result for one step and makes no second `&mut` to the session while it lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn sess(&self) -> &mut Session {
        // SAFETY: the caller's obligation (exclusive, single-threaded).
        unsafe { &mut *self.sess.get() }
    }

    /// The ciphertext buffer, for one step.
    ///
    /// # Safety
    /// As [`Tls::sess`].
    #[allow(clippy::mut_from_ref)]
    unsafe fn cipher(&self) -> &mut RecvBuf {
        // SAFETY: the caller's obligation (exclusive, single-threaded).
        unsafe { &mut *self.cipher.get() }
    }

    /// The flight buffer, for one step.
    ///
    /// # Safety
    /// As [`Tls::sess`].
    #[allow(clippy::mut_from_ref)]
    unsafe fn flights(&self) -> &mut Vec<u8> {
        // SAFETY: the caller's obligation (exclusive, single-threaded).
        unsafe { &mut *self.flights.get() }
    }

    /// The sealed records.
    fn sealed(&self) -> &LinkBuffer {
        // SAFETY: invariant 1; `LinkBuffer` mutates through `&self` (one thread at a time, no
        // state borrow kept across its calls); `&mut` is formed only in `release_sealed`,
        // when no shared borrow is alive.
        unsafe { &*self.sealed.get() }
    }

    /// Gives the blocks of sent records back to the pool.
    fn release_sealed(&self) {
        // SAFETY: invariant 1; called between steps of `send_sealed`/`finish`, when no slice
        // of the buffer and no other reference to it lives.
        unsafe { (*self.sealed.get()).release() }
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

    /// `fill_once` of a TLS connection: opens the whole records already read (while the input
    /// is below its cap) or, when none is whole, reads the socket once and opens what came;
    /// while handshaking, feeds rustls instead. `Ok(true)`: progress or end of stream;
    /// `Ok(false)`: nothing to read now, or the input is at its cap.
    pub(super) fn fill(&self, c: &ConnInner) -> io::Result<bool> {
        if self.peer_closed.get() {
            self.discard_cipher();
            c.eof.set(true);
            return Ok(true);
        }
        if self.established() {
            if c.input_room() == 0 {
                return Ok(false);
            }
            if self.open_records(c)? {
                self.send_sealed(c, true)?;
                return Ok(true);
            }
        } else {
            self.drive(c)?;
            if self.established() || self.peer_closed.get() {
                return Ok(true);
            }
        }
        let short = match self.read_cipher(c) {
            Ok((0, _)) => {
                c.eof.set(true);
                return Ok(true);
            }
            Ok((n, asked)) => {
                self.got_bytes.set(true);
                n < asked
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.trig.set_drained();
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if !self.established() {
            self.drive(c)?;
        }
        if self.established() {
            self.open_records(c)?;
            // Answers: key updates, refused renegotiations.
            self.send_sealed(c, true)?;
        }
        if short && !self.whole_record_waiting() {
            c.trig.set_drained(); // invariant 3
        }
        if self.peer_closed.get() {
            c.eof.set(true);
        }
        Ok(true)
    }

    /// Whether the ciphertext buffer holds a whole record the record layer has not opened
    /// (a malformed header counts: the next step reports it).
    fn whole_record_waiting(&self) -> bool {
        // SAFETY: invariant 1; both borrows end with this statement.
        let (sess, cipher) = unsafe { (self.sess(), self.cipher()) };
        match sess {
            _ if self.pending.get().0 > 0 => true,
            Session::Records(r) => !matches!(r.record_len(cipher.bytes()), Ok(None)),
            _ => false,
        }
    }

    /// One read of ciphertext, appended to what the buffer keeps: `recv(2)` on a server
    /// connection, through the stream (parking) on a dialed one. Returns the bytes read and
    /// the room they were read into.
    fn read_cipher(&self, c: &ConnInner) -> io::Result<(usize, usize)> {
        // SAFETY: invariant 1; the borrows end with this call. A dialed connection's read
        // parks inside it, on the thread that holds the connection: no other step runs then.
        let (sess, cipher) = unsafe { (self.sess(), self.cipher()) };
        let room = match sess {
            _ if cipher.is_empty() => CIPHER_READ,
            Session::Records(r) => r.missing(cipher.bytes()).max(MIN_READ),
            _ if cipher.len() >= MAX_HANDSHAKE_BUF => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TLS handshake: a message of more than {MAX_HANDSHAKE_BUF} bytes"),
                ));
            }
            _ => MIN_READ,
        };
        let mut asked = 0;
        let n = match &c.io {
            Io::Server { .. } => {
                let fd = c.fd();
                cipher.fill_more(room, |buf| loop {
                    asked = buf.len();
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
                })?
            }
            Io::Client(s) => cipher.fill_more(room, |buf| {
                asked = buf.len();
                Read::read(&mut &*s, buf)
            })?,
        };
        Ok((n, asked))
    }

    /// A step of the handshake over the buffered ciphertext: rustls processes what it can and
    /// its flights are sent (waiting for writability); when it completes, the record layer
    /// takes over and what was negotiated is recorded (invariant 4).
    fn drive(&self, c: &ConnInner) -> io::Result<()> {
        // SAFETY: invariant 1: these borrows live for this step; the sends below may park,
        // and nothing else touches them meanwhile.
        let (sess, cipher, out) = unsafe { (self.sess(), self.cipher(), self.flights()) };
        let Session::Handshake(hs) = sess else { return Ok(()) };
        if matches!(hs, Hs::Server(_)) && self.hello_sni.get().is_none() {
            match client_hello_sni(cipher.bytes()) {
                Ok(name) => {
                    let _ = self.hello_sni.set(name);
                }
                Err(()) => return Ok(()), // the ClientHello is still arriving
            }
        }
        let mut peer_closed = false;
        let r = hs.advance(
            cipher,
            handshake::Io {
                out,
                send: &mut |buf: &mut Vec<u8>| send_flights(c, buf, true),
                plain: &mut |b: &[u8]| push_plain(c, b),
                peer_closed: &mut peer_closed,
            },
        );
        if peer_closed {
            self.peer_closed.set(true);
        }
        match r {
            Ok(Reached::More) => Ok(()),
            Ok(Reached::Done) => {
                let (alpn, version) = (hs.common().alpn_protocol(), hs.common().protocol_version());
                let alpn = alpn.map(Box::from);
                let Session::Handshake(hs) = std::mem::replace(sess, Session::Gone) else {
                    unreachable!("matched above")
                };
                let records = hs.finish(self.max_frag).inspect_err(|_| self.failed.set(true))?;
                *sess = Session::Records(records);
                *out = Vec::new();
                if let Some(t) = self.timer.take() {
                    t.cancel();
                }
                let sni = match &self.dialed_name {
                    Some(n) => Some(n.clone()),
                    None => self.hello_sni.get().cloned().flatten(),
                };
                let _ = self.info.set(Info { alpn, sni, version });
                Ok(())
            }
            Err(Stop::Io(e)) => Err(e),
            Err(Stop::Tls(e)) => {
                self.failed.set(true);
                out.clear();
                hs.alert(cipher, out);
                cipher.clear();
                Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS handshake: {e}")))
            }
        }
    }

    /// Opens the whole records in the ciphertext buffer while the input is below its cap:
    /// application data goes to the input, alerts and handshake messages are acted on
    /// (answers are sealed, sent by the caller). Whether any record was opened.
    fn open_records(&self, c: &ConnInner) -> io::Result<bool> {
        // SAFETY: invariant 1; these borrows end with this call, which does not park.
        let (sess, cipher) = unsafe { (self.sess(), self.cipher()) };
        let Session::Records(r) = sess else { return Ok(false) };
        let mut opened = self.deliver_pending(c, cipher)?;
        while !self.peer_closed.get() && c.input_room() > 0 && self.pending.get().0 == 0 {
            let buf = cipher.bytes_mut();
            let len = match r.record_len(buf) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(f) => return Err(self.fatal(r, cipher, f)),
            };
            let base = buf.as_ptr() as usize;
            let (typ, plain) = match r.open(&mut buf[..len]) {
                Ok(x) => x,
                Err(f) => return Err(self.fatal(r, cipher, f)),
            };
            let step = match typ {
                _ if typ != HANDSHAKE && r.mid_message() => Err(Fatal::new(
                    alert::UNEXPECTED_MESSAGE,
                    "a record inside a split handshake message",
                )),
                APPLICATION_DATA => {
                    // What the input has room for; the rest stays, opened, where it lies.
                    let (at, plen) = (plain.as_ptr() as usize - base, plain.len());
                    let k = plen.min(c.input_room());
                    push_plain(c, &plain[..k])?;
                    if k < plen {
                        cipher.consume(at + k);
                        self.pending.set(((plen - k) as u32, (len - at - plen) as u32));
                        opened = true;
                        break;
                    }
                    Ok(())
                }
                ALERT => self.on_alert(r.version(), plain),
                HANDSHAKE => match r.handshake(plain) {
                    Ok(Answer::Nothing) => Ok(()),
                    Ok(Answer::KeyUpdate) => {
                        self.seal_key_update(r)?;
                        Ok(())
                    }
                    Ok(Answer::NoRenegotiation) => {
                        self.seal(r, ALERT, &[1, alert::NO_RENEGOTIATION])?;
                        Ok(())
                    }
                    Err(f) => Err(f),
                },
                t => Err(Fatal::new(
                    alert::UNEXPECTED_MESSAGE,
                    format!("a record of content type {t}"),
                )),
            };
            if let Err(f) = step {
                return Err(self.fatal(r, cipher, f));
            }
            cipher.consume(len);
            opened = true;
        }
        if self.peer_closed.get() {
            cipher.clear(); // what follows `close_notify` is not read (RFC 8446 §6.1)
            opened = true;
        }
        Ok(opened)
    }

    /// Copies the plaintext of a record opened earlier (`pending`) into the input, as far as
    /// its cap allows; whether any was copied.
    fn deliver_pending(&self, c: &ConnInner, cipher: &mut RecvBuf) -> io::Result<bool> {
        let (left, trailer) = self.pending.get();
        if left == 0 {
            return Ok(false);
        }
        let k = (left as usize).min(c.input_room());
        push_plain(c, &cipher.bytes()[..k])?;
        let left = left - k as u32;
        if left == 0 {
            cipher.consume(k + trailer as usize);
            self.pending.set((0, 0));
        } else {
            cipher.consume(k);
            self.pending.set((left, trailer));
        }
        Ok(k > 0)
    }

    /// An alert from the peer: `close_notify` ends the input; a warning is ignored (TLS 1.2,
    /// and `user_canceled`); anything else ends the connection.
    fn on_alert(&self, ver: Version, a: &[u8]) -> Result<(), Fatal> {
        let &[level, desc] = a else {
            return Err(Fatal::new(alert::DECODE_ERROR, "an alert of the wrong length"));
        };
        match desc {
            alert::CLOSE_NOTIFY => {
                self.peer_closed.set(true);
                Ok(())
            }
            alert::USER_CANCELED => Ok(()),
            _ if ver == Version::Tls12 && level == 1 => Ok(()),
            _ => Err(Fatal {
                alert: None,
                what: format!(
                    "the peer sent alert {:?} ({desc})",
                    rustls::AlertDescription::from(desc)
                ),
            }),
        }
    }

    /// Ends the session on a protocol failure: its alert is sealed (sent at finalize), the
    /// ciphertext forgotten; the error to return.
    fn fatal(&self, r: &mut Records, cipher: &mut RecvBuf, f: Fatal) -> io::Error {
        self.failed.set(true);
        cipher.clear();
        if let Some(a) = f.alert {
            let _ = self.seal(r, ALERT, &[2, a]);
        }
        let what = if f.alert.is_none() { "TLS" } else { "bad TLS record" };
        io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {}", f.what))
    }

    /// Seals `plain` (at most one record's worth) as one record of type `typ`.
    fn seal(&self, r: &mut Records, typ: u8, plain: &[u8]) -> io::Result<()> {
        let n = r.sealed_len(plain.len());
        self.sealed().fill(n, n, |b| {
            r.seal(typ, plain.len(), &mut b[..n], |d| d.copy_from_slice(plain)).map(|()| n)
        })?;
        Ok(())
    }

    /// Seals a TLS 1.3 key update and switches the sending key ([`Records::seal_key_update`]).
    fn seal_key_update(&self, r: &mut Records) -> io::Result<()> {
        let n = r.sealed_len(5);
        self.sealed().fill(n, n, |b| r.seal_key_update(&mut b[..n]).map(|()| n))?;
        Ok(())
    }

    /// Forgets the ciphertext not yet opened; its block goes back to the pool.
    fn discard_cipher(&self) {
        // SAFETY: invariant 1; the borrow ends with this statement.
        unsafe { self.cipher() }.clear();
    }

    /// Sends the sealed records; on `EAGAIN` waits for writability (up to the write timeout)
    /// when `wait`, else leaves them for later.
    fn send_sealed(&self, c: &ConnInner, wait: bool) -> io::Result<()> {
        let deadline = c.write_timeout.get().map(|t| Instant::now() + t);
        while !self.sealed().is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let cnt = self.sealed().io_slices(&mut iov);
            let r = match &c.io {
                Io::Server { .. } => FdWrite(c.fd()).write_vectored(&iov[..cnt]),
                // Blocks (parks) until the kernel takes some: no `EAGAIN` comes back.
                Io::Client(s) => (&*s).write_vectored(&iov[..cnt]),
            };
            match r {
                Ok(n) => {
                    self.sealed().skip(n)?;
                    self.release_sealed();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && wait => {
                    c.wait(Want::Write, deadline, "flush")?
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `send_all` of a TLS connection: seals the readable output into records (taking it
    /// from the buffer) and sends them, until both are empty.
    pub(super) fn send_all(&self, c: &ConnInner) -> io::Result<()> {
        let out = c.output();
        loop {
            if c.closing.is_set() {
                return Err(c.closed_err());
            }
            {
                // SAFETY: invariant 1; the borrow ends with this block, before any park.
                let Session::Records(r) = (unsafe { self.sess() }) else {
                    if out.is_empty() {
                        return Ok(());
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "gonet reactor: flush on {}: the TLS handshake has not completed",
                            c.peer()
                        ),
                    ));
                };
                while !out.is_empty() && self.sealed().len() < SEAL_BATCH {
                    if r.tx_needs_update() {
                        self.seal_key_update(r)?;
                    }
                    let mut iov = [IoSlice::new(&[]); MAX_IOV];
                    let cnt = out.io_slices(&mut iov);
                    let avail: usize = iov[..cnt].iter().map(|s| s.len()).sum();
                    let n = avail.min(r.max_fragment());
                    let total = r.sealed_len(n);
                    self.sealed().fill(total, total, |b| {
                        r.seal(APPLICATION_DATA, n, &mut b[..total], |mut dst| {
                            for s in &iov[..cnt] {
                                let k = s.len().min(dst.len());
                                dst[..k].copy_from_slice(&s[..k]);
                                dst = &mut dst[k..];
                            }
                        })
                        .map(|()| total)
                    })?;
                    out.skip(n)?;
                }
            }
            if self.sealed().is_empty() {
                return Ok(());
            }
            self.send_sealed(c, true)?;
        }
    }

    /// At finalize (or the close of a dialed connection): seal `close_notify` (unless the
    /// session failed: its alert is sealed already) and send what is waiting with one
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
        // connection is closed by the thread that holds it); the borrows end with this call.
        let (sess, out) = unsafe { (self.sess(), self.flights()) };
        if let Session::Records(r) = sess {
            if !self.failed.get() {
                let _ = self.seal(r, ALERT, &[1, alert::CLOSE_NOTIFY]);
            }
        }
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let cnt = if out.is_empty() {
            self.sealed().io_slices(&mut iov)
        } else {
            iov[0] = IoSlice::new(out);
            1
        };
        if cnt == 0 {
            return;
        }
        match &c.io {
            Io::Server { .. } => {
                let _ = FdWrite(c.fd()).write_vectored(&iov[..cnt]);
            }
            Io::Client(s) => {
                // Through a reference that keeps the descriptor open, and fails if a
                // `ConnHandle` closed it meanwhile (its number may name another file).
                if let Ok(r) = s.netfd().checked() {
                    let _ = FdWrite(r.as_raw_fd()).write_vectored(&iov[..cnt]);
                }
            }
        }
        let _ = self.sealed().skip(self.sealed().len());
        self.release_sealed();
        out.clear();
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
            if self.established() {
                return Ok(());
            }
            self.fill(c)?;
            if (c.eof.get() || self.peer_closed.get()) && !self.established() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
        })();
        if r.is_err() {
            self.finish(c); // the alert of a failed handshake, if any
        }
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

/// Appends plaintext to the input in one contiguous piece (a record's plaintext is at most
/// 16 KiB), so that a handler taking it whole (`next`, `slice`) finds it in one block and
/// copies nothing.
fn push_plain(c: &ConnInner, b: &[u8]) -> io::Result<()> {
    if b.is_empty() {
        return Ok(());
    }
    c.input().fill(b.len(), b.len(), |dst| {
        dst[..b.len()].copy_from_slice(b);
        Ok(b.len())
    })?;
    Ok(())
}

/// Sends all of `buf` (handshake flights), waiting for writability when `wait`; empties it.
fn send_flights(c: &ConnInner, buf: &mut Vec<u8>, wait: bool) -> io::Result<()> {
    let deadline = c.write_timeout.get().map(|t| Instant::now() + t);
    let mut at = 0;
    while at < buf.len() {
        let r = match &c.io {
            Io::Server { .. } => FdWrite(c.fd()).write(&buf[at..]),
            Io::Client(s) => (&*s).write(&buf[at..]),
        };
        match r {
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && wait => {
                c.wait(Want::Write, deadline, "TLS handshake")?
            }
            Err(e) => return Err(e),
        }
    }
    buf.clear();
    Ok(())
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
