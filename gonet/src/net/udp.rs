//! UDP: [`UdpSocket`], std-shaped, with Go's deadlines and close.

use std::io;
use std::net::SocketAddr;

use super::addr::{resolve, Purpose, ToSocketAddrs};
use super::dialer::ListenConfig;
use super::error::Fail;
use super::fd::NetFd;
use super::macros::{impl_buffer_sizes, impl_close, impl_common, impl_deadlines, impl_from_std};
use super::tcp::sockaddr_to_inet as to_inet;

/// A UDP socket.
pub struct UdpSocket {
    fd: NetFd,
}

impl_common!(UdpSocket);
impl_close!(UdpSocket);
impl_deadlines!(UdpSocket);
impl_buffer_sizes!(UdpSocket);
impl_from_std!(UdpSocket, std::net::UdpSocket);

impl UdpSocket {
    /// Binds to `addr` (`":5353"`: every interface; literal addresses parsed in place, host
    /// names resolved on the blocking pool); with several addresses, the first that binds is
    /// used.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        ListenConfig::default().listen_packet(addr)
    }

    pub(crate) fn from_netfd(fd: NetFd) -> UdpSocket {
        UdpSocket { fd }
    }

    pub(crate) fn into_netfd(self) -> NetFd {
        self.fd
    }

    /// Sets the default peer for `send`/`recv` and filters incoming datagrams to it.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let addrs =
            resolve(&addr, Purpose::Dial).map_err(|e| Fail::from(e).op("dial", "udp", None))?;
        let mut first = None;
        for a in addrs {
            match self.fd.checked()?.connect(&a.into()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first.get_or_insert(Fail { syscall: Some("connect"), err: e }.op(
                        "dial",
                        "udp",
                        Some(a.to_string()),
                    ));
                }
            }
        }
        Err(first.expect("resolve returns at least one address"))
    }

    /// Sends one datagram to `addr` (a literal is parsed in place, a host name resolved on
    /// the blocking pool).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let a = resolve(&addr, Purpose::Dial)?[0];
        self.fd.send_to(buf, &a.into())
    }

    /// Receives one datagram; returns its length (truncated to `buf`) and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, a) = self.fd.recv_from(buf)?;
        Ok((n, to_inet(a)?))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.send(buf)
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.fd.checked()?.local_addr()?)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.fd.checked()?.peer_addr()?)
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.checked()?.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.fd.checked()?.ttl()
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.fd.checked()?.set_broadcast(on)
    }

    /// A second handle to the same socket (a `dup` with its own deadlines).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let s = self.fd.checked()?.try_clone()?;
        Ok(UdpSocket { fd: NetFd::new(s.into())? })
    }
}
