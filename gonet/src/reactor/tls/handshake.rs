//! The handshake of a reactor TLS connection: rustls's unbuffered connection
//! (`UnbufferedServerConnection` on a server, `UnbufferedClientConnection` for `dial_tls`)
//! driven over the connection's ciphertext buffer, its flights collected in one `Vec` and
//! sent together, until it completes; then rustls hands over the traffic keys
//! (`dangerous_into_kernel_connection`) and the record layer (record.rs) takes over.
//!
//! rustls processes the records where they lie in our buffer and says how many bytes it is
//! done with (`discard`); a handshake message split over records is joined there, so the
//! buffer keeps it until whole (the buffer grows for a large one: recv_buf.rs). It sees no
//! record after the one that completes the handshake: those are the record layer's.
//!
//! The server's name (SNI) is read here from the ClientHello, because rustls's unbuffered
//! server does not expose it: [`client_hello_sni`] before the first record reaches rustls.

use std::io;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};

use super::record::{Kernel, Records, HANDSHAKE, HEADER};
use crate::reactor::buffer::RecvBuf;

/// An unbuffered rustls connection of either side.
pub(super) trait Unbuffered {
    type Data;
    fn process<'c, 'i>(&'c mut self, buf: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data>;
    fn common(&self) -> &rustls::CommonState;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(&'c mut self, buf: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(buf)
    }
    fn common(&self) -> &rustls::CommonState {
        self
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(&'c mut self, buf: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(buf)
    }
    fn common(&self) -> &rustls::CommonState {
        self
    }
}

/// The session while it handshakes.
pub(super) enum Hs {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// What one call of [`Hs::advance`] reached.
pub(super) enum Reached {
    /// rustls needs more ciphertext.
    More,
    /// The handshake is complete (call [`Hs::finish`]).
    Done,
}

/// What a call of [`Hs::advance`] may do besides driving rustls.
pub(super) struct Io<'a> {
    /// Flights encoded and not yet sent.
    pub(super) out: &'a mut Vec<u8>,
    /// Sends all of `out` (and empties it).
    pub(super) send: &'a mut dyn FnMut(&mut Vec<u8>) -> io::Result<()>,
    /// Takes application data that came with the end of the handshake.
    pub(super) plain: &'a mut dyn FnMut(&[u8]) -> io::Result<()>,
    /// Set when the peer's `close_notify` came.
    pub(super) peer_closed: &'a mut bool,
}

/// Why [`Hs::advance`] stopped short: rustls refused the peer (its alert is queued:
/// [`Hs::alert`]), or the I/O failed.
#[derive(Debug)]
pub(super) enum Stop {
    Tls(rustls::Error),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

impl Hs {
    /// Drives rustls over the buffered ciphertext until it needs more or the handshake is
    /// complete; consumes what rustls is done with.
    pub(super) fn advance(&mut self, cipher: &mut RecvBuf, io: Io<'_>) -> Result<Reached, Stop> {
        match self {
            Hs::Server(c) => advance(c, cipher, io),
            Hs::Client(c) => advance(c, cipher, io),
        }
    }

    /// After a failure: the alert rustls queued, encoded into `out`. `cipher` is the buffer
    /// the failed call processed (rustls may still hold places in it).
    pub(super) fn alert(&mut self, cipher: &mut RecvBuf, out: &mut Vec<u8>) {
        match self {
            Hs::Server(c) => alert(c, cipher, out),
            Hs::Client(c) => alert(c, cipher, out),
        }
    }

    /// The session's state as rustls shares it between both sides (ALPN, version).
    pub(super) fn common(&self) -> &rustls::CommonState {
        match self {
            Hs::Server(c) => c.common(),
            Hs::Client(c) => c.common(),
        }
    }

    /// The completed handshake becomes the record layer: rustls hands over the traffic keys
    /// and the sequence numbers it reached.
    pub(super) fn finish(self, max_frag: Option<usize>) -> io::Result<Records> {
        let ver = self.common().protocol_version();
        let ver = ver.ok_or_else(|| io::Error::other("TLS: no version after the handshake"))?;
        let (secrets, kernel) = match self {
            Hs::Server(c) => {
                c.dangerous_into_kernel_connection().map(|(s, k)| (s, Kernel::Server(k)))
            }
            Hs::Client(c) => {
                c.dangerous_into_kernel_connection().map(|(s, k)| (s, Kernel::Client(k)))
            }
        }
        .map_err(|e| io::Error::other(format!("TLS: taking the keys over from rustls: {e}")))?;
        Records::new(ver, secrets, kernel, max_frag)
    }
}

/// [`Hs::advance`] for either side.
fn advance<C: Unbuffered>(conn: &mut C, cipher: &mut RecvBuf, io: Io<'_>) -> Result<Reached, Stop> {
    let mut none: [u8; 0] = [];
    loop {
        // Once the handshake is complete, rustls gets no more of the buffer: it still hands
        // out what it has to send (session tickets) and then says so, but the records after
        // the handshake (a client's first request, sent with its Finished) are the record
        // layer's, opened as the input cap allows. Fed to rustls, they would be decrypted
        // here whole, past the cap. rustls holds no part of a handshake message then.
        let buf = if conn.common().is_handshaking() { cipher.bytes_mut() } else { &mut none[..] };
        let st = conn.process(buf);
        let discard = st.discard;
        let state = match st.state {
            Ok(s) => s,
            Err(e) => {
                cipher.consume(discard);
                return Err(Stop::Tls(e));
            }
        };
        let reached = match state {
            ConnectionState::EncodeTlsData(mut e) => {
                let at = io.out.len();
                io.out.resize(at + 2048, 0);
                let n = match e.encode(&mut io.out[at..]) {
                    Ok(n) => n,
                    Err(EncodeError::InsufficientSize(s)) => {
                        io.out.resize(at + s.required_size, 0);
                        e.encode(&mut io.out[at..]).map_err(|e| io::Error::other(e.to_string()))?
                    }
                    Err(e) => return Err(io::Error::other(e.to_string()).into()),
                };
                io.out.truncate(at + n);
                None
            }
            ConnectionState::TransmitTlsData(t) => {
                (io.send)(io.out)?;
                t.done();
                None
            }
            ConnectionState::ReadTraffic(mut r) => {
                while let Some(rec) = r.next_record() {
                    let rec = rec.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    (io.plain)(rec.payload)?;
                }
                None
            }
            // The loop's config accepts no 0-RTT data (`server_config` in mod.rs).
            ConnectionState::ReadEarlyData(_) => {
                return Err(io::Error::other("TLS: 0-RTT data the config does not accept").into())
            }
            // The handshake may still complete (the alert came after the client's Finished):
            // rustls says so on the next call.
            ConnectionState::PeerClosed => {
                *io.peer_closed = true;
                None
            }
            ConnectionState::Closed => {
                *io.peer_closed = true;
                Some(Reached::More)
            }
            ConnectionState::BlockedHandshake => Some(Reached::More),
            ConnectionState::WriteTraffic(_) => Some(Reached::Done),
            _ => return Err(io::Error::other("TLS: an unexpected handshake state").into()),
        };
        cipher.consume(discard);
        // rustls lets a server write before the client's Finished (0.5-RTT); the keys are
        // handed over only once both directions are up.
        let reached = match reached {
            Some(Reached::Done) if conn.common().is_handshaking() => Some(Reached::More),
            r => r,
        };
        if let Some(r) = reached {
            return Ok(r);
        }
    }
}

/// [`Hs::alert`] for either side: once a call has failed, rustls's next call hands out the
/// alert it queued, before it looks at the buffer again (one call: a second would process the
/// records that failed once more).
fn alert<C: Unbuffered>(conn: &mut C, cipher: &mut RecvBuf, out: &mut Vec<u8>) {
    let st = conn.process(cipher.bytes_mut());
    if let Ok(ConnectionState::EncodeTlsData(mut e)) = st.state {
        let at = out.len();
        out.resize(at + 512, 0);
        let n = e.encode(&mut out[at..]).unwrap_or(0);
        out.truncate(at + n);
    }
}

/// The server name a ClientHello at the front of `buf` asks for: `Ok(Some(name))`, `Ok(None)`
/// when it asks for none or is not one this can read (rustls then decides), `Err(())` while
/// the ClientHello has not all arrived (its records are joined here, read-only).
pub(super) fn client_hello_sni(buf: &[u8]) -> Result<Option<Box<str>>, ()> {
    // The handshake message, joined from the handshake records at the front.
    let mut msg = Vec::new();
    let mut at = 0;
    loop {
        let Some(h) = buf.get(at..at + HEADER) else { return Err(()) };
        if h[0] != HANDSHAKE {
            return Ok(None);
        }
        let len = u16::from_be_bytes([h[3], h[4]]) as usize;
        let Some(body) = buf.get(at + HEADER..at + HEADER + len) else { return Err(()) };
        msg.extend_from_slice(body);
        at += HEADER + len;
        if msg.len() >= 4 {
            let need = 4 + u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize;
            if msg[0] != 1 || need > 1 << 17 {
                return Ok(None);
            }
            if msg.len() >= need {
                msg.truncate(need);
                break;
            }
        }
    }
    Ok(parse_sni(&msg[4..]))
}

/// The `server_name` extension's host name in a ClientHello body (RFC 8446 §4.1.2, RFC 6066
/// §3), lowercased as rustls keeps it; `None` when absent, malformed or not a DNS name.
fn parse_sni(body: &[u8]) -> Option<Box<str>> {
    let mut r = Reader(body);
    r.skip(2 + 32)?; // legacy_version, random
    let n = r.u8()? as usize;
    r.skip(n)?; // legacy_session_id
    let n = r.u16()? as usize;
    r.skip(n)?; // cipher_suites
    let n = r.u8()? as usize;
    r.skip(n)?; // legacy_compression_methods
    let n = r.u16()? as usize;
    let mut exts = Reader(r.take(n)?);
    while !exts.0.is_empty() {
        let typ = exts.u16()?;
        let n = exts.u16()? as usize;
        let data = exts.take(n)?;
        if typ != 0 {
            continue;
        }
        let mut d = Reader(data);
        let n = d.u16()? as usize;
        let mut list = Reader(d.take(n)?);
        while !list.0.is_empty() {
            let kind = list.u8()?;
            let n = list.u16()? as usize;
            let name = list.take(n)?;
            if kind == 0 {
                let name = std::str::from_utf8(name).ok()?;
                let dns = rustls::pki_types::DnsName::try_from(name).ok()?;
                return Some(dns.as_ref().to_ascii_lowercase().into());
            }
        }
        return None;
    }
    None
}

/// A cursor over a byte string; every read checks the length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(drop)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello with `exts` as its extensions, in records of at most `frag` bytes.
    fn hello(exts: &[u8], frag: usize) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
        let mut msg = vec![1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        let mut out = Vec::new();
        for part in msg.chunks(frag) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut list = vec![0];
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(&data);
        ext
    }

    #[test]
    fn the_server_name_is_read_from_whole_and_fragmented_hellos() {
        let mut exts = vec![0, 16, 0, 3, 0, 1, b'x']; // another extension first
        exts.extend_from_slice(&sni_ext(b"Api.Example.com"));
        for frag in [1 << 14, 50, 7] {
            let rec = hello(&exts, frag);
            assert_eq!(client_hello_sni(&rec).unwrap().as_deref(), Some("api.example.com"));
            // Any strict prefix is "not all here yet".
            for cut in [0, 3, HEADER, rec.len() / 2, rec.len() - 1] {
                assert!(client_hello_sni(&rec[..cut]).is_err(), "cut at {cut} of {frag}");
            }
        }
        assert_eq!(client_hello_sni(&hello(&[], 100)).unwrap(), None);
        // An IP address is not a server name; a truncated extension is ignored.
        assert_eq!(client_hello_sni(&hello(&sni_ext(b"127.0.0.1"), 100)).unwrap(), None);
        let mut bad = sni_ext(b"host");
        bad[3] += 1;
        assert_eq!(client_hello_sni(&hello(&bad, 100)).unwrap(), None);
        // Not a handshake record: rustls will say what is wrong.
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n").unwrap(), None);
    }
}
