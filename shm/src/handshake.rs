//! Setting up a connection: the server offers a segment and two doorbells over the Unix
//! socket the client connected to; the client takes them.
//!
//! The offer is one message: the 8 bytes [`OFFER`] with three descriptors attached, in order:
//! the segment's memfd, the server's doorbell (the client rings it after writing requests or
//! freeing reply space), the client's doorbell (the server rings it). The socket then stays
//! open and silent: its end-of-file tells either side the other is gone.

use std::os::fd::{AsFd, BorrowedFd};

use crate::doorbell::Doorbell;
use crate::fdpass;
use crate::ring::{Consumer, Producer};
use crate::segment::Segment;
use crate::ShmError;

/// Payload of the offer message.
pub const OFFER: [u8; 8] = *b"CKVSHM01";

/// The server's side of one connection.
#[derive(Debug)]
pub struct ServerEnds {
    pub segment: Segment,
    pub requests: Consumer,
    pub replies: Producer,
    /// Rung by the client. Blocking, so an io_uring read on it waits for a ring.
    pub inbound: Doorbell,
    /// Rung by the server. Nonblocking: a client that fills its counter cannot stall the
    /// server.
    pub outbound: Doorbell,
}

/// Creates a segment with rings of `capacity` bytes and offers it on `sock`.
pub fn offer(sock: BorrowedFd<'_>, capacity: usize) -> Result<ServerEnds, ShmError> {
    let segment = Segment::create(capacity)?;
    let (requests, replies) = segment.server_ends()?;
    let inbound = Doorbell::new(false).map_err(|e| ShmError::Os("eventfd", e))?;
    let outbound = Doorbell::new(true).map_err(|e| ShmError::Os("eventfd", e))?;
    fdpass::send(
        sock,
        &OFFER,
        &[segment.file().as_fd(), inbound.as_fd(), outbound.as_fd()],
    )
    .map_err(|e| ShmError::Os("sendmsg", e))?;
    Ok(ServerEnds {
        segment,
        requests,
        replies,
        inbound,
        outbound,
    })
}

/// The client's side of one connection.
#[derive(Debug)]
pub struct ClientEnds {
    pub segment: Segment,
    pub requests: Producer,
    pub replies: Consumer,
    /// Rung by the client (the server sleeps on it).
    pub to_server: Doorbell,
    /// Rung by the server (the client sleeps on it); nonblocking.
    pub to_client: Doorbell,
}

/// Waits for the server's offer on `sock` and maps the segment.
pub fn take(sock: BorrowedFd<'_>) -> Result<ClientEnds, ShmError> {
    let mut payload = [0u8; OFFER.len()];
    let (n, fds) = fdpass::recv(sock, &mut payload).map_err(|e| ShmError::Os("recvmsg", e))?;
    if n == 0 {
        return Err(ShmError::Closed);
    }
    let Ok::<[_; 3], _>([memfd, to_server, to_client]) = fds.try_into() else {
        return Err(ShmError::BadOffer);
    };
    if n != OFFER.len() || payload != OFFER {
        return Err(ShmError::BadOffer);
    }
    let segment = Segment::open(memfd)?;
    let (requests, replies) = segment.client_ends()?;
    Ok(ClientEnds {
        segment,
        requests,
        replies,
        to_server: Doorbell::from_fd(to_server),
        to_client: Doorbell::from_fd(to_client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_and_take_over_a_socket_pair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut server = offer(a.as_fd(), 8192).unwrap();
        let mut client = take(b.as_fd()).unwrap();
        assert_eq!(client.segment.capacity(), 8192);
        client.requests.write(b"*1\r\n$4\r\nPING\r\n").unwrap();
        client.to_server.ring().unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(server.inbound.drain().unwrap(), 1);
        assert_eq!(server.requests.read(&mut buf).unwrap(), 14);
        server.replies.write(b"+PONG\r\n").unwrap();
        server.outbound.ring().unwrap();
        assert_eq!(client.to_client.drain().unwrap(), 1);
        assert!(client.to_client.drain().is_err(), "nonblocking when empty");
        assert_eq!(client.replies.read(&mut buf).unwrap(), 7);
    }
}
