//! The record layer of an established TLS connection: records sealed and opened in the
//! connection's own buffers with the traffic keys rustls hands over once the handshake is
//! done (`dangerous_into_kernel_connection`, rustls's API for kTLS), so that a request costs
//! no allocation and its bytes are copied once each way (ciphertext opened where `recv` put
//! it, plaintext copied into the input; the handler's plaintext copied into the record that
//! is sealed in place and sent).
//!
//! rustls keeps what only it can do: the handshake, new traffic secrets at a TLS 1.3 key
//! update, and session tickets a server sends a client. This file does the rest of RFC 8446
//! §5 (TLS 1.3) and RFC 5246 §6.2.3.3 with RFC 5288 / RFC 7905 (TLS 1.2 AEAD records), for the
//! three AEADs rustls negotiates: AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305.
//!
//! # Records
//!
//! * Header: type, version `03 03`, length. A record longer than the protocol allows
//!   (`2^14 + 256` bytes of ciphertext in TLS 1.3, `2^14 + 2048` in TLS 1.2) is refused with
//!   `record_overflow` before any of it is decrypted.
//! * TLS 1.3: outer type `application_data`; the nonce is the IV XOR the record's sequence
//!   number; the additional data is the header; the inner plaintext is the content, its real
//!   type, then zero padding, which `open` strips.
//! * TLS 1.2: the type is the header's; the additional data is the sequence number, the type,
//!   the version and the plaintext length; AES-GCM carries an 8-byte explicit nonce (we send
//!   the IV's last 8 bytes XOR the sequence number, as rustls does), ChaCha20-Poly1305 none.
//!
//! # Invariants
//!
//! 1. A nonce is never used twice with one key: each direction's sequence number starts where
//!    rustls left it, grows by one per record sealed or opened, and restarts at 0 only with a
//!    new key (a key update). Sealing stops (`EncryptExhausted`-like error) before the cipher
//!    suite's confidentiality limit in TLS 1.2; in TLS 1.3 the caller updates the key first
//!    ([`Records::tx_needs_update`]).
//! 2. Nothing is returned from `open` unless the tag verified (ring compares in constant
//!    time); a record that fails is an error and the connection ends.
//! 3. `seal` writes exactly `sealed_len(n)` bytes and `open` never reads past the record it
//!    was given.

use std::io;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use rustls::client::ClientConnectionData;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, ProtocolVersion, SupportedCipherSuite};

/// Record header: type, version, length.
pub(super) const HEADER: usize = 5;
/// Most plaintext in one record (RFC 8446 §5.1).
pub(super) const MAX_PLAIN: usize = 1 << 14;
const TAG: usize = 16;
const GCM_EXPLICIT: usize = 8;

/// Content types (RFC 8446 §5.1).
pub(super) const ALERT: u8 = 21;
pub(super) const HANDSHAKE: u8 = 22;
pub(super) const APPLICATION_DATA: u8 = 23;

/// Alert descriptions this layer sends or reads (RFC 8446 §6).
pub(super) mod alert {
    pub(crate) const CLOSE_NOTIFY: u8 = 0;
    pub(crate) const UNEXPECTED_MESSAGE: u8 = 10;
    pub(crate) const BAD_RECORD_MAC: u8 = 20;
    pub(crate) const RECORD_OVERFLOW: u8 = 22;
    pub(crate) const ILLEGAL_PARAMETER: u8 = 47;
    pub(crate) const DECODE_ERROR: u8 = 50;
    pub(crate) const INTERNAL_ERROR: u8 = 80;
    pub(crate) const USER_CANCELED: u8 = 90;
    pub(crate) const NO_RENEGOTIATION: u8 = 100;
}

/// A protocol failure: the alert to send the peer (none when the peer's own fatal alert
/// ended the session) and what to report.
#[derive(Debug)]
pub(super) struct Fatal {
    pub(super) alert: Option<u8>,
    pub(super) what: String,
}

impl Fatal {
    pub(super) fn new(alert: u8, what: impl Into<String>) -> Fatal {
        Fatal { alert: Some(alert), what: what.into() }
    }
}

/// What rustls keeps after the handshake, for key updates and tickets.
pub(super) enum Kernel {
    Server(KernelConnection<ServerConnectionData>),
    Client(KernelConnection<ClientConnectionData>),
}

impl Kernel {
    fn update(&mut self, tx: bool) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error> {
        match (self, tx) {
            (Kernel::Server(k), true) => k.update_tx_secret(),
            (Kernel::Server(k), false) => k.update_rx_secret(),
            (Kernel::Client(k), true) => k.update_tx_secret(),
            (Kernel::Client(k), false) => k.update_rx_secret(),
        }
    }

    fn suite(&self) -> SupportedCipherSuite {
        match self {
            Kernel::Server(k) => k.negotiated_cipher_suite(),
            Kernel::Client(k) => k.negotiated_cipher_suite(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Version {
    Tls12,
    Tls13,
}

/// One direction's key, IV and sequence number.
struct Keys {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
    /// TLS 1.2 AES-GCM: an 8-byte explicit nonce precedes the ciphertext.
    explicit: bool,
}

impl Keys {
    fn new(ver: Version, (seq, s): (u64, ConnectionTrafficSecrets)) -> io::Result<Keys> {
        let (alg, key, iv, gcm) = match &s {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv, true),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv, true),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv, false)
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "TLS: the negotiated cipher has no record layer here",
                ))
            }
        };
        let key = UnboundKey::new(alg, key.as_ref())
            .map_err(|_| io::Error::other("TLS: a traffic key of the wrong length"))?;
        let iv: [u8; NONCE_LEN] = iv
            .as_ref()
            .try_into()
            .map_err(|_| io::Error::other("TLS: an IV of the wrong length"))?;
        Ok(Keys { key: LessSafeKey::new(key), iv, seq, explicit: gcm && ver == Version::Tls12 })
    }

    /// The IV XOR the sequence number (RFC 8446 §5.3; RFC 7905; rustls's TLS 1.2 GCM nonce).
    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut n = self.iv;
        for (b, s) in n[NONCE_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }

    /// Bytes a record adds to `n` of plaintext.
    fn overhead(&self, ver: Version) -> usize {
        match ver {
            Version::Tls13 => HEADER + 1 + TAG,
            Version::Tls12 if self.explicit => HEADER + GCM_EXPLICIT + TAG,
            Version::Tls12 => HEADER + TAG,
        }
    }
}

/// TLS 1.2 additional data: sequence number, type, version, plaintext length.
fn aad12(seq: u64, typ: u8, len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&seq.to_be_bytes());
    a[8] = typ;
    a[9..11].copy_from_slice(&[3, 3]);
    a[11..].copy_from_slice(&(len as u16).to_be_bytes());
    a
}

/// The record layer of one established connection (see the top of this file).
pub(super) struct Records {
    ver: Version,
    tx: Keys,
    rx: Keys,
    kernel: Kernel,
    /// Records a key may seal (the suite's confidentiality limit), with a margin for the
    /// alerts and the key update that follow.
    limit: u64,
    /// Most plaintext per record sealed (the config's `max_fragment_size`, else 2^14).
    max_frag: usize,
    /// A TLS 1.3 handshake message received in part (only ever a few bytes; empty and
    /// unallocated otherwise).
    partial: Vec<u8>,
    /// Key updates received since the last application data: a peer may not make us derive
    /// keys without end (rustls allows as many, `MAX_KEY_UPDATES`).
    updates: u8,
}

/// Key updates a peer may send in a row without application data between.
const MAX_KEY_UPDATES: u8 = 32;

/// What a received handshake message asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    Nothing,
    /// Send a key update of our own (the peer asked for one): [`Records::seal_key_update`].
    KeyUpdate,
    /// Refuse a TLS 1.2 renegotiation with a warning `no_renegotiation` alert.
    NoRenegotiation,
}

impl Records {
    pub(super) fn new(
        ver: ProtocolVersion,
        secrets: rustls::ExtractedSecrets,
        kernel: Kernel,
        max_frag: Option<usize>,
    ) -> io::Result<Records> {
        let ver = match ver {
            ProtocolVersion::TLSv1_3 => Version::Tls13,
            ProtocolVersion::TLSv1_2 => Version::Tls12,
            v => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("TLS: no record layer for {v:?}"),
                ))
            }
        };
        let limit = match kernel.suite() {
            SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
            SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
        };
        // The record sizes a config may set include the header (rustls's `max_fragment_size`).
        let max_frag =
            max_frag.map_or(MAX_PLAIN, |m| m.saturating_sub(HEADER).clamp(32, MAX_PLAIN));
        Ok(Records {
            ver,
            tx: Keys::new(ver, secrets.tx)?,
            rx: Keys::new(ver, secrets.rx)?,
            kernel,
            limit: limit.saturating_sub(16),
            max_frag,
            partial: Vec::new(),
            updates: 0,
        })
    }

    pub(super) fn version(&self) -> Version {
        self.ver
    }

    /// Most plaintext one sealed record carries.
    pub(super) fn max_fragment(&self) -> usize {
        self.max_frag
    }

    /// Bytes of the record that seals `n` bytes of plaintext.
    pub(super) fn sealed_len(&self, n: usize) -> usize {
        n + self.tx.overhead(self.ver)
    }

    /// Whether the sending key has sealed as many records as it safely may: in TLS 1.3 the
    /// caller sends a key update ([`Records::seal_key_update`]) before the next record.
    pub(super) fn tx_needs_update(&self) -> bool {
        self.ver == Version::Tls13 && self.tx.seq >= self.limit
    }

    /// Seals one record of type `typ` into `out` (exactly `sealed_len(n)` bytes): `fill`
    /// writes the `n` bytes of plaintext (at most `max_fragment()`) into the slice it gets.
    pub(super) fn seal(
        &mut self,
        typ: u8,
        n: usize,
        out: &mut [u8],
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<()> {
        let total = self.sealed_len(n);
        debug_assert!(n <= MAX_PLAIN && out.len() == total);
        if self.tx.seq >= self.limit.saturating_add(16) || self.tx.seq == u64::MAX {
            return Err(io::Error::other(
                "TLS: the sending key reached its confidentiality limit; the connection must end",
            ));
        }
        let nonce = self.tx.nonce();
        let (head, rest) = out.split_at_mut(HEADER);
        head[0] = if self.ver == Version::Tls13 { APPLICATION_DATA } else { typ };
        head[1..3].copy_from_slice(&[3, 3]);
        head[3..5].copy_from_slice(&((total - HEADER) as u16).to_be_bytes());
        let tag = match self.ver {
            Version::Tls13 => {
                let (body, tag) = rest.split_at_mut(n + 1);
                fill(&mut body[..n]);
                body[n] = typ;
                let aad = Aad::from(<[u8; HEADER]>::try_from(&*head).expect("header"));
                let t = self.tx.key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    aad,
                    body,
                );
                (t, tag)
            }
            Version::Tls12 => {
                let rest = if self.tx.explicit {
                    let (ex, rest) = rest.split_at_mut(GCM_EXPLICIT);
                    ex.copy_from_slice(&nonce[NONCE_LEN - GCM_EXPLICIT..]);
                    rest
                } else {
                    rest
                };
                let (body, tag) = rest.split_at_mut(n);
                fill(body);
                let aad = Aad::from(aad12(self.tx.seq, typ, n));
                let t = self.tx.key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    aad,
                    body,
                );
                (t, tag)
            }
        };
        let t = tag.0.map_err(|_| io::Error::other("TLS: sealing a record failed"))?;
        tag.1.copy_from_slice(t.as_ref());
        self.tx.seq += 1;
        Ok(())
    }

    /// Seals a TLS 1.3 `key_update` (not requesting one back) under the current key, then
    /// switches the sending side to the next key (RFC 8446 §4.6.3). `out` as for `seal` with
    /// `n` = 5.
    pub(super) fn seal_key_update(&mut self, out: &mut [u8]) -> io::Result<()> {
        self.seal(HANDSHAKE, 5, out, |b| b.copy_from_slice(&[24, 0, 0, 1, 0]))?;
        let next = self.kernel.update(true).map_err(|e| io::Error::other(format!("TLS: {e}")))?;
        self.tx = Keys::new(self.ver, next)?;
        Ok(())
    }

    /// The length of the record at the front of `buf` once it is all there: `Ok(None)` while
    /// its header or part of its body has not arrived.
    pub(super) fn record_len(&self, buf: &[u8]) -> Result<Option<usize>, Fatal> {
        let Some(h) = buf.get(..HEADER) else { return Ok(None) };
        if h[1] != 3 {
            return Err(Fatal::new(alert::DECODE_ERROR, "a record of another protocol version"));
        }
        let len = u16::from_be_bytes([h[3], h[4]]) as usize;
        let max = match self.ver {
            Version::Tls13 => MAX_PLAIN + 256,
            Version::Tls12 => MAX_PLAIN + 2048,
        };
        if len > max {
            return Err(Fatal::new(
                alert::RECORD_OVERFLOW,
                format!("a record of {len} bytes (at most {max})"),
            ));
        }
        Ok((buf.len() >= HEADER + len).then_some(HEADER + len))
    }

    /// Bytes still to come of the record at the front of `buf` (at least its header's).
    pub(super) fn missing(&self, buf: &[u8]) -> usize {
        match buf.get(..HEADER) {
            Some(h) => {
                (HEADER + u16::from_be_bytes([h[3], h[4]]) as usize).saturating_sub(buf.len())
            }
            None => HEADER - buf.len(),
        }
    }

    /// Opens the whole record `rec` (as `record_len` measured it) in place: its content type
    /// and plaintext (invariant 2).
    pub(super) fn open<'a>(&mut self, rec: &'a mut [u8]) -> Result<(u8, &'a mut [u8]), Fatal> {
        let bad_mac = || Fatal::new(alert::BAD_RECORD_MAC, "a record failed to decrypt");
        let (head, body) = rec.split_at_mut(HEADER);
        let outer = head[0];
        let nonce = self.rx.nonce();
        let (typ, plain) = match self.ver {
            Version::Tls13 => {
                if outer != APPLICATION_DATA {
                    return Err(Fatal::new(
                        alert::UNEXPECTED_MESSAGE,
                        format!("an unprotected record of type {outer} after the handshake"),
                    ));
                }
                if body.len() < TAG + 1 {
                    return Err(bad_mac());
                }
                let aad = Aad::from(<[u8; HEADER]>::try_from(&*head).expect("header"));
                let plain = self
                    .rx
                    .key
                    .open_in_place(Nonce::assume_unique_for_key(nonce), aad, body)
                    .map_err(|_| bad_mac())?;
                // The real type is the last non-zero byte (RFC 8446 §5.4).
                let Some(at) = plain.iter().rposition(|&b| b != 0) else {
                    return Err(Fatal::new(alert::UNEXPECTED_MESSAGE, "a record of padding only"));
                };
                let typ = plain[at];
                (typ, &mut plain[..at])
            }
            Version::Tls12 => {
                let (nonce, body) = if self.rx.explicit {
                    if body.len() < GCM_EXPLICIT + TAG {
                        return Err(bad_mac());
                    }
                    let (ex, body) = body.split_at_mut(GCM_EXPLICIT);
                    let mut n = [0u8; NONCE_LEN];
                    n[..NONCE_LEN - GCM_EXPLICIT].copy_from_slice(&self.rx.iv[..4]);
                    n[NONCE_LEN - GCM_EXPLICIT..].copy_from_slice(ex);
                    (n, body)
                } else {
                    (nonce, body)
                };
                if body.len() < TAG {
                    return Err(bad_mac());
                }
                let aad = Aad::from(aad12(self.rx.seq, outer, body.len() - TAG));
                let plain = self
                    .rx
                    .key
                    .open_in_place(Nonce::assume_unique_for_key(nonce), aad, body)
                    .map_err(|_| bad_mac())?;
                (outer, plain)
            }
        };
        if plain.len() > MAX_PLAIN {
            return Err(Fatal::new(alert::RECORD_OVERFLOW, "a record of more than 2^14 bytes"));
        }
        if typ == APPLICATION_DATA {
            self.updates = 0;
        }
        self.rx.seq = self
            .rx
            .seq
            .checked_add(1)
            .ok_or_else(|| Fatal::new(alert::INTERNAL_ERROR, "the receive sequence wrapped"))?;
        Ok((typ, plain))
    }

    /// A handshake record's plaintext after the handshake: TLS 1.3 key updates (the receiving
    /// key switches here) and session tickets (to rustls, on a client); TLS 1.2 renegotiation
    /// requests, refused. Anything else ends the connection.
    pub(super) fn handshake(&mut self, body: &[u8]) -> Result<Answer, Fatal> {
        if self.ver == Version::Tls12 {
            // A ClientHello to a server, a HelloRequest to a client: a renegotiation.
            let ok = matches!(
                (&self.kernel, body.first()),
                (Kernel::Server(_), Some(1)) | (Kernel::Client(_), Some(0))
            );
            if !ok || !self.partial.is_empty() {
                return Err(Fatal::new(
                    alert::UNEXPECTED_MESSAGE,
                    "a handshake message after the TLS 1.2 handshake",
                ));
            }
            return Ok(Answer::NoRenegotiation);
        }
        let mut answer = Answer::Nothing;
        let mut joined;
        let mut msgs: &[u8] = if self.partial.is_empty() {
            body
        } else {
            joined = std::mem::take(&mut self.partial);
            joined.extend_from_slice(body);
            &joined[..]
        };
        while !msgs.is_empty() {
            let Some(&[typ, a, b, c]) = msgs.get(..4) else { break };
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if len > 0xffff {
                return Err(Fatal::new(alert::DECODE_ERROR, "an oversized handshake message"));
            }
            let Some(payload) = msgs.get(4..4 + len) else { break };
            let rest = &msgs[4 + len..];
            match typ {
                24 => {
                    // RFC 8446 §5.1: a key update ends its record.
                    if !rest.is_empty() || len != 1 {
                        return Err(Fatal::new(
                            alert::UNEXPECTED_MESSAGE,
                            "a key update not alone at the end of its record",
                        ));
                    }
                    self.updates += 1;
                    if self.updates > MAX_KEY_UPDATES {
                        return Err(Fatal::new(
                            alert::UNEXPECTED_MESSAGE,
                            format!("more than {MAX_KEY_UPDATES} key updates without data"),
                        ));
                    }
                    let requested = match payload[0] {
                        0 => false,
                        1 => true,
                        _ => return Err(Fatal::new(alert::ILLEGAL_PARAMETER, "a bad key update")),
                    };
                    let next = self
                        .kernel
                        .update(false)
                        .map_err(|e| Fatal::new(alert::INTERNAL_ERROR, e.to_string()))?;
                    self.rx = Keys::new(self.ver, next)
                        .map_err(|e| Fatal::new(alert::INTERNAL_ERROR, e.to_string()))?;
                    if requested {
                        answer = Answer::KeyUpdate;
                    }
                }
                4 => match &mut self.kernel {
                    Kernel::Client(k) => k
                        .handle_new_session_ticket(payload)
                        .map_err(|e| Fatal::new(alert::DECODE_ERROR, e.to_string()))?,
                    Kernel::Server(_) => {
                        return Err(Fatal::new(
                            alert::UNEXPECTED_MESSAGE,
                            "a session ticket sent to the server",
                        ))
                    }
                },
                t => {
                    return Err(Fatal::new(
                        alert::UNEXPECTED_MESSAGE,
                        format!("a handshake message of type {t} after the handshake"),
                    ))
                }
            }
            msgs = rest;
        }
        if !msgs.is_empty() {
            // The rest of this message comes in the next record.
            self.partial = msgs.to_vec();
        }
        Ok(answer)
    }

    /// Whether a handshake message is waiting for the rest of its bytes (TLS 1.3 forbids
    /// interleaving other records with it).
    pub(super) fn mid_message(&self) -> bool {
        !self.partial.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::UnbufferedClientConnection;
    use rustls::crypto::ring::default_provider;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::UnbufferedServerConnection;
    use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

    use super::super::handshake::{Hs, Io, Reached};
    use super::*;
    use crate::reactor::buffer::RecvBuf;

    /// A client's and a server's record layer after a real handshake of version `ver`, run in
    /// memory through the same handshake driver as a connection; and what each received after
    /// its handshake completed (the server's session tickets, for the client).
    fn pair(ver: &'static SupportedProtocolVersion) -> ([Records; 2], [Vec<u8>; 2]) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = ck.cert.der().clone();
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let provider = Arc::new(default_provider());
        let mut s = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[ver])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        s.enable_secret_extraction = true;
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut c = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[ver])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        c.enable_secret_extraction = true;
        let name = "localhost".try_into().unwrap();
        let mut hs = [
            Some(Hs::Client(UnbufferedClientConnection::new(Arc::new(c), name).unwrap())),
            Some(Hs::Server(UnbufferedServerConnection::new(Arc::new(s)).unwrap())),
        ];
        // What each side has received and not yet processed.
        let mut inbox = [RecvBuf::new(), RecvBuf::new()];
        let mut records: [Option<Records>; 2] = [None, None];
        for _ in 0..16 {
            for i in 0..2 {
                let Some(h) = &mut hs[i] else { continue };
                let (mut out, mut sent) = (Vec::new(), Vec::new());
                let mut closed = false;
                let r = h.advance(
                    &mut inbox[i],
                    Io {
                        out: &mut out,
                        send: &mut |b: &mut Vec<u8>| {
                            sent.append(b);
                            Ok(())
                        },
                        plain: &mut |_| Ok(()),
                        peer_closed: &mut closed,
                    },
                );
                if !sent.is_empty() {
                    let n = sent.len();
                    inbox[1 - i]
                        .fill_more(n, |b| {
                            b[..n].copy_from_slice(&sent);
                            Ok(n)
                        })
                        .unwrap();
                }
                if let Reached::Done = r.unwrap() {
                    records[i] = Some(hs[i].take().unwrap().finish(None).unwrap());
                }
            }
        }
        let late = inbox.map(|b| b.bytes().to_vec());
        (records.map(|r| r.expect("the handshake completed")), late)
    }

    fn seal(r: &mut Records, typ: u8, msg: &[u8]) -> Vec<u8> {
        let mut rec = vec![0; r.sealed_len(msg.len())];
        r.seal(typ, msg.len(), &mut rec, |d| d.copy_from_slice(msg)).unwrap();
        rec
    }

    /// Opens the one whole record `rec`: its type and plaintext.
    fn open(r: &mut Records, rec: &[u8]) -> Result<(u8, Vec<u8>), Fatal> {
        let mut rec = rec.to_vec();
        assert_eq!(r.record_len(&rec).unwrap(), Some(rec.len()));
        r.open(&mut rec).map(|(t, p)| (t, p.to_vec()))
    }

    #[test]
    fn records_cross_both_ways_in_both_versions_and_a_replay_fails() {
        for ver in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let ([mut client, mut server], late) = pair(ver);
            assert!(late[1].is_empty());
            // TLS 1.3: the server's session tickets, which the client hands to rustls.
            let mut tickets = late[0].clone();
            while !tickets.is_empty() {
                let n = client.record_len(&tickets).unwrap().expect("whole records");
                let (typ, body) = open(&mut client, &tickets[..n]).unwrap();
                assert_eq!(typ, HANDSHAKE);
                assert_eq!(client.handshake(&body).unwrap(), Answer::Nothing);
                tickets.drain(..n);
            }
            for (i, size) in [0, 1, 64, 4096, MAX_PLAIN].into_iter().enumerate() {
                let msg: Vec<u8> = (0..size).map(|k| (k * 7 + i) as u8).collect();
                let rec = seal(&mut client, APPLICATION_DATA, &msg);
                assert_eq!(open(&mut server, &rec).unwrap(), (APPLICATION_DATA, msg.clone()));
                // Sent again, it is opened with the next sequence number: it fails.
                let e = open(&mut server, &rec).unwrap_err();
                assert_eq!(e.alert, Some(alert::BAD_RECORD_MAC), "{ver:?}");
                // The failed open used no sequence number: the next record opens.
                let back = seal(&mut server, APPLICATION_DATA, &msg);
                assert_eq!(open(&mut client, &back).unwrap(), (APPLICATION_DATA, msg));
            }
        }
    }

    #[test]
    fn a_sending_key_at_its_limit_is_updated_in_tls13_and_refused_in_tls12() {
        let ([mut client, mut server], _) = pair(&rustls::version::TLS13);
        client.limit = client.tx.seq + 2;
        for k in 0..2 {
            assert!(!client.tx_needs_update());
            let rec = seal(&mut client, APPLICATION_DATA, &[k]);
            assert_eq!(open(&mut server, &rec).unwrap(), (APPLICATION_DATA, vec![k]));
        }
        assert!(client.tx_needs_update(), "at the limit");
        let mut upd = vec![0; client.sealed_len(5)];
        client.seal_key_update(&mut upd).unwrap();
        assert_eq!(client.tx.seq, 0, "a new key starts its sequence at 0");
        assert!(!client.tx_needs_update());
        // The server reads the update under the old key and switches its receiving key.
        let (typ, body) = open(&mut server, &upd).unwrap();
        assert_eq!((typ, server.handshake(&body).unwrap()), (HANDSHAKE, Answer::Nothing));
        assert_eq!(server.rx.seq, 0);
        let rec = seal(&mut client, APPLICATION_DATA, b"under the new key");
        assert_eq!(open(&mut server, &rec).unwrap().1, b"under the new key");
        // A key update that asks for one back.
        let ask = seal(&mut client, HANDSHAKE, &[24, 0, 0, 1, 1]);
        let (_, body) = open(&mut server, &ask).unwrap();
        assert_eq!(server.handshake(&body).unwrap(), Answer::KeyUpdate);

        let ([mut client, _], _) = pair(&rustls::version::TLS12);
        client.limit = client.tx.seq;
        assert!(!client.tx_needs_update(), "TLS 1.2 has no key update");
        client.tx.seq = client.limit + 16;
        let mut rec = vec![0; client.sealed_len(1)];
        let e = client.seal(APPLICATION_DATA, 1, &mut rec, |d| d[0] = 1).unwrap_err();
        assert!(e.to_string().contains("confidentiality limit"), "{e}");
    }
}
