//! The server's end of a shared-memory connection as a [`Transport`]: reads consume the
//! request ring, writes produce into the reply ring, so the session, parser and router run
//! unchanged.
//!
//! Waiting: with nothing to read (or no room to write) the task first yields for the bounded
//! spin time (while spins pay, see `corekv_shm::spin`), re-checking the ring each time the
//! executor polls it (other connections of the executor keep running), then announces it sleeps, re-checks, and waits for the client's
//! doorbell through the executor's io_uring (an 8-byte read of the eventfd), or for the end of
//! the client's Unix socket, which means the client is gone. An idle connection therefore costs
//! nothing after its spin. See `corekv_shm::ring` for why no wake-up is lost.
//!
//! Everything in shared memory is the client's to scribble on: a protocol violation (an
//! impossible ring index, data on the socket, a doorbell made nonblocking) is an error, which
//! closes the connection.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use corekv_shm::doorbell::Doorbell;
use corekv_shm::handshake::{self, ServerEnds};
use corekv_shm::ring::{Consumer, Producer};
use corekv_shm::segment::Segment;
use corekv_shm::spin::SpinPolicy;
use corekv_shm::ShmError;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::io::BufferedFile;
use glommio::net::UnixStream;

use crate::transport::{Transport, TransportKind};

type DoorbellRead = Pin<Box<dyn Future<Output = io::Result<usize>>>>;

/// How a sleep ended.
enum Woken {
    /// The client rang: re-check the ring.
    Rung,
    /// The client's socket reached its end.
    PeerGone,
}

/// Settings of shared-memory connections.
#[derive(Debug, Clone, Copy)]
pub struct ShmSettings {
    /// Data bytes of each ring (a power of two).
    pub ring_size: usize,
    /// How long to poll an empty (or full) ring before sleeping.
    pub spin: Duration,
    /// Unread reply bytes (a full ring plus what waits to enter it) past which the client is
    /// disconnected; 0: no limit.
    pub output_limit: usize,
}

/// One shared-memory client connection, owned by one executor.
pub struct ShmStream {
    requests: Consumer,
    replies: Producer,
    /// The client's doorbell; rung after publishing replies or freeing request room when the
    /// client sleeps.
    outbound: Doorbell,
    /// Our doorbell, read through io_uring.
    inbound: Rc<BufferedFile>,
    /// A doorbell read in flight: kept across polls (and across dropped read futures) so no
    /// ring is missed.
    ring_read: Option<DoorbellRead>,
    /// The client's socket: silent after the offer, its end means the client died.
    socket: UnixStream,
    spin: SpinPolicy,
    output_limit: usize,
    /// When the current wait's spin ends; `None` while the connection makes progress.
    spin_until: Option<Instant>,
    /// Whether the current wait went to sleep (its spin did not catch the client).
    slept: bool,
    path: String,
    /// Keeps the segment (and its memfd) for the connection's life.
    _segment: Segment,
}

impl ShmStream {
    /// Offers a fresh segment to the client on `socket` and wraps the connection.
    pub fn accept(
        socket: UnixStream,
        path: String,
        settings: ShmSettings,
    ) -> Result<Self, ShmError> {
        // SAFETY: the descriptor belongs to `socket`, which outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
        let ServerEnds {
            segment,
            requests,
            replies,
            inbound,
            outbound,
        } = handshake::offer(fd, settings.ring_size)?;
        // SAFETY: `into_fd` gives up ownership of the eventfd, which the file now owns alone.
        let inbound = unsafe { BufferedFile::from_raw_fd(inbound.into_fd().into_raw_fd()) };
        Ok(ShmStream {
            requests,
            replies,
            outbound,
            inbound: Rc::new(inbound),
            ring_read: None,
            socket,
            spin: SpinPolicy::new(settings.spin),
            output_limit: settings.output_limit,
            spin_until: None,
            slept: false,
            path,
            _segment: segment,
        })
    }

    fn ring_client(&self) {
        // A full counter (the client filled it itself) still wakes it: ignore the error.
        let _ = self.outbound.ring();
    }

    /// True while the spin lasts: the task asks to be polled again and yields.
    fn spinning(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let until = *self
            .spin_until
            .get_or_insert_with(|| now + self.spin.next_spin());
        if now < until && !self.slept {
            cx.waker().wake_by_ref();
            true
        } else {
            self.slept = true;
            false
        }
    }

    /// The ring moved: the wait (if any) is over.
    fn progressed(&mut self) {
        if self.spin_until.take().is_some() {
            self.spin.record(!self.slept);
        }
        self.slept = false;
    }

    /// Waits for the client's doorbell or the end of its socket.
    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Woken>> {
        let read = self.ring_read.get_or_insert_with(|| {
            let file = self.inbound.clone();
            Box::pin(async move {
                let result = file.read_at(0, 8).await?;
                Ok(result.len())
            })
        });
        if let Poll::Ready(result) = read.as_mut().poll(cx) {
            self.ring_read = None;
            return Poll::Ready(match result {
                Ok(8) => Ok(Woken::Rung),
                Ok(_) => Err(violation("short doorbell read")),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Err(violation("doorbell made nonblocking"))
                }
                Err(e) => Err(e),
            });
        }
        let mut byte = [0u8; 1];
        match Pin::new(&mut self.socket).poll_read(cx, &mut byte) {
            Poll::Ready(Ok(0)) => Poll::Ready(Ok(Woken::PeerGone)),
            Poll::Ready(Ok(_)) => Poll::Ready(Err(violation("data on the shm socket"))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn violation(what: impl std::fmt::Display) -> io::Error {
    tracing::warn!("closing shared-memory client: {what}");
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl AsyncRead for ShmStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let n = this.requests.read(buf).map_err(violation)?;
            if n > 0 {
                this.requests.end_sleep();
                this.progressed();
                if this.requests.producer_needs_wake() {
                    this.ring_client();
                }
                return Poll::Ready(Ok(n));
            }
            if this.spinning(cx) {
                return Poll::Pending;
            }
            this.requests.announce_sleep();
            if this.requests.available().map_err(violation)? > 0 {
                continue;
            }
            match this.poll_sleep(cx) {
                Poll::Ready(Ok(Woken::Rung)) => continue,
                Poll::Ready(Ok(Woken::PeerGone)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for ShmStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let n = this.replies.write(buf).map_err(violation)?;
            if n > 0 {
                this.replies.end_sleep();
                this.progressed();
                if this.replies.consumer_needs_wake() {
                    this.ring_client();
                }
                return Poll::Ready(Ok(n));
            }
            // The ring is full: the client has not read `capacity` bytes, and `buf` waits.
            let pending = this.replies.capacity().saturating_add(buf.len());
            if this.output_limit != 0 && pending > this.output_limit {
                return Poll::Ready(Err(violation(format_args!(
                    "{pending} unread reply bytes exceed shm-output-limit {}",
                    this.output_limit
                ))));
            }
            if this.spinning(cx) {
                return Poll::Pending;
            }
            this.replies.announce_sleep();
            if this.replies.free().map_err(violation)? > 0 {
                continue;
            }
            match this.poll_sleep(cx) {
                Poll::Ready(Ok(Woken::Rung)) => continue,
                Poll::Ready(Ok(Woken::PeerGone)) => {
                    return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Transport for ShmStream {
    fn kind(&self) -> TransportKind {
        TransportKind::Shm
    }
    fn peer_addr(&self) -> String {
        self.path.clone()
    }
    fn local_addr(&self) -> String {
        self.path.clone()
    }
    fn fd(&self) -> i32 {
        -1
    }
}
