//! UDP: [`UdpSocket`], std-shaped, with Go's deadlines and close.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Type};

use super::fd::NetFd;
use super::macros::{impl_common, impl_from_std};
use super::resolve::resolve;

/// A UDP socket.
pub struct UdpSocket {
    fd: NetFd,
}

impl_common!(UdpSocket);
impl_from_std!(UdpSocket, std::net::UdpSocket);

fn to_inet(a: socket2::SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an internet socket address"))
}

impl UdpSocket {
    /// Binds to `addr`; with several addresses, the first that binds is used.
    pub fn bind<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve(addr)? {
            let fd = NetFd::socket(Domain::for_address(a), Type::DGRAM, Some(Protocol::UDP))?;
            match fd.sock().bind(&a.into()) {
                Ok(()) => return Ok(UdpSocket { fd }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sets the default peer for `send`/`recv` and filters incoming datagrams to it.
    pub fn connect<A: ToSocketAddrs + Sync>(&self, addr: A) -> io::Result<()> {
        let mut last = None;
        for a in resolve(addr)? {
            match self.fd.checked()?.connect(&a.into()) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sends one datagram to `addr` (resolved without blocking other goroutines).
    pub fn send_to<A: ToSocketAddrs + Sync>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let a = resolve(addr)?[0];
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
