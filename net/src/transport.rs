//! Transports a client connection can arrive on. A connection only needs a byte stream; the
//! transport says what it is for `CLIENT LIST` and logs. New transports (shared memory, DPDK)
//! implement this trait and reuse the whole connection path.

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::{TcpStream, UnixStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Tcp,
    Unix,
    /// Shared-memory rings, set up over a Unix socket.
    Shm,
}

pub trait Transport: AsyncRead + AsyncWrite + Unpin {
    fn kind(&self) -> TransportKind;
    /// Peer address as `CLIENT LIST` shows it (`ip:port`, or the socket path).
    fn peer_addr(&self) -> String;
    /// Local address as `CLIENT LIST` shows it.
    fn local_addr(&self) -> String;
    /// The socket's descriptor for `CLIENT LIST`, -1 when the transport does not expose one.
    fn fd(&self) -> i32;
}

impl Transport for TcpStream {
    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }
    fn peer_addr(&self) -> String {
        TcpStream::peer_addr(self)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
    fn local_addr(&self) -> String {
        TcpStream::local_addr(self)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
    fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(self)
    }
}

impl Transport for UnixStream {
    fn kind(&self) -> TransportKind {
        TransportKind::Unix
    }
    fn peer_addr(&self) -> String {
        // Redis shows the listening path for both ends of a Unix socket connection.
        Transport::local_addr(self)
    }
    fn local_addr(&self) -> String {
        UnixStream::local_addr(self)
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            .unwrap_or_default()
    }
    fn fd(&self) -> i32 {
        -1
    }
}
