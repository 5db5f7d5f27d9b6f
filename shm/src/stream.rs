//! The client's side of a connection without any waiting: queue request bytes into the
//! request ring, take reply bytes out of the reply ring and parse them. The blocking
//! ([`crate::client`]) and async ([`crate::async_client`]) clients add only how they wait.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::handshake::{self, ClientEnds};
use crate::reply::{self, Value};
use crate::ShmError;

/// What a waiting side needs before it can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Reply bytes.
    Replies,
    /// Room in the request ring, or replies to drain (the server may be waiting for room for
    /// them before it reads more requests).
    Room,
}

#[derive(Debug)]
pub(crate) struct ClientStream {
    ends: ClientEnds,
    /// Kept open for the connection's life: its end-of-file tells each side the other is gone.
    socket: UnixStream,
    /// Reply bytes taken from the ring and not yet parsed, from `parsed` on.
    inbuf: Vec<u8>,
    parsed: usize,
    /// Encoded requests not yet in the ring, from `sent` on.
    outbuf: Vec<u8>,
    sent: usize,
}

impl ClientStream {
    pub(crate) fn connect(path: &Path) -> Result<ClientStream, ShmError> {
        let socket = UnixStream::connect(path).map_err(|source| ShmError::Connect {
            path: path.display().to_string(),
            source,
        })?;
        let ends = handshake::take(socket.as_fd())?;
        Ok(ClientStream {
            ends,
            socket,
            inbuf: Vec::new(),
            parsed: 0,
            outbuf: Vec::new(),
            sent: 0,
        })
    }

    /// Queues one command (sent by [`ClientStream::push`]).
    pub(crate) fn queue_command(&mut self, args: &[&[u8]]) {
        reply::encode_command(args, &mut self.outbuf);
    }

    /// Queues raw RESP bytes.
    pub(crate) fn queue_raw(&mut self, bytes: &[u8]) {
        self.outbuf.extend_from_slice(bytes);
    }

    /// Whether queued request bytes are still waiting for room in the ring.
    pub(crate) fn has_queued(&self) -> bool {
        self.sent < self.outbuf.len()
    }

    /// Moves as many queued request bytes into the ring as fit, ringing the server if it
    /// sleeps; true once everything is in.
    pub(crate) fn push(&mut self) -> Result<bool, ShmError> {
        if self.has_queued() {
            let n = self.ends.requests.write(&self.outbuf[self.sent..])?;
            if n > 0 {
                self.sent += n;
                if self.ends.requests.consumer_needs_wake() {
                    self.ring_server()?;
                }
            }
        }
        if self.has_queued() {
            return Ok(false);
        }
        self.outbuf.clear();
        self.sent = 0;
        Ok(true)
    }

    /// The next complete reply already taken from the ring, if any.
    pub(crate) fn parse(&mut self) -> Result<Option<Value>, ShmError> {
        let Some((value, n)) = reply::parse(&self.inbuf[self.parsed..])? else {
            return Ok(None);
        };
        self.parsed += n;
        if self.parsed == self.inbuf.len() {
            self.inbuf.clear();
            self.parsed = 0;
        }
        Ok(Some(value))
    }

    /// Moves every reply byte now in the ring into the parse buffer; returns how many.
    pub(crate) fn pull(&mut self) -> Result<usize, ShmError> {
        let avail = self.ends.replies.available()?;
        if avail == 0 {
            return Ok(0);
        }
        if self.parsed > 0 {
            self.inbuf.drain(..self.parsed);
            self.parsed = 0;
        }
        let start = self.inbuf.len();
        self.inbuf.resize(start + avail, 0);
        let n = self.ends.replies.read(&mut self.inbuf[start..])?;
        self.inbuf.truncate(start + n);
        if self.ends.replies.producer_needs_wake() {
            self.ring_server()?;
        }
        Ok(n)
    }

    /// One step towards the next reply: sends queued requests, takes reply bytes and parses.
    /// `Ok(None)` means nothing can move until the server acts: wait for [`Want::Replies`]
    /// (or [`Want::Room`] while requests are still queued).
    pub(crate) fn step_recv(&mut self) -> Result<Option<Value>, ShmError> {
        loop {
            if let Some(v) = self.parse()? {
                return Ok(Some(v));
            }
            let queued = self.has_queued();
            let before = self.sent;
            let moved = queued && (self.push()? || self.sent != before);
            if self.pull()? == 0 && !moved {
                return Ok(None);
            }
        }
    }

    /// What a wait in [`ClientStream::step_recv`] is for.
    pub(crate) fn recv_want(&self) -> Want {
        if self.has_queued() {
            Want::Room
        } else {
            Want::Replies
        }
    }

    /// One step of sending everything queued; `Ok(false)`: wait for [`Want::Room`].
    pub(crate) fn step_send(&mut self) -> Result<bool, ShmError> {
        loop {
            if self.push()? {
                return Ok(true);
            }
            // The ring is full. The server may itself wait for room for replies: take them.
            if self.pull()? == 0 {
                return Ok(false);
            }
        }
    }

    /// Writes what fits of `bytes` now (after anything queued); never waits.
    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> Result<usize, ShmError> {
        if !self.push()? {
            return Ok(0);
        }
        let n = self.ends.requests.write(bytes)?;
        if n > 0 && self.ends.requests.consumer_needs_wake() {
            self.ring_server()?;
        }
        Ok(n)
    }

    /// Reads reply bytes available now (unparsed ones first); never waits.
    pub(crate) fn read_now(&mut self, buf: &mut [u8]) -> Result<usize, ShmError> {
        let held = &self.inbuf[self.parsed..];
        if !held.is_empty() {
            let n = held.len().min(buf.len());
            buf[..n].copy_from_slice(&held[..n]);
            self.parsed += n;
            if self.parsed == self.inbuf.len() {
                self.inbuf.clear();
                self.parsed = 0;
            }
            return Ok(n);
        }
        let n = self.ends.replies.read(buf)?;
        if n > 0 && self.ends.replies.producer_needs_wake() {
            self.ring_server()?;
        }
        Ok(n)
    }

    fn ring_server(&self) -> Result<(), ShmError> {
        self.ends
            .to_server
            .ring()
            .map_err(|e| ShmError::Os("eventfd write", e))
    }

    /// Whether what `want` waits for is there.
    pub(crate) fn ready(&self, want: Want) -> Result<bool, ShmError> {
        Ok(self.ends.replies.available()? > 0
            || (want == Want::Room && self.ends.requests.free()? > 0))
    }

    /// Announces a sleep for `want` (the server then rings); re-check [`ClientStream::ready`]
    /// afterwards, and again after every wake-up (see `ring`).
    pub(crate) fn announce_sleep(&self, want: Want) {
        self.ends.replies.announce_sleep();
        if want == Want::Room {
            self.ends.requests.announce_sleep();
        }
    }

    pub(crate) fn end_sleep(&self) {
        self.ends.replies.end_sleep();
        self.ends.requests.end_sleep();
    }

    /// Resets the client's doorbell (nonblocking; an empty counter is fine).
    pub(crate) fn drain_doorbell(&self) {
        let _ = self.ends.to_client.drain();
    }

    /// The doorbell the server rings, to sleep on.
    pub(crate) fn doorbell_fd(&self) -> RawFd {
        self.ends.to_client.as_fd().as_raw_fd()
    }

    /// The Unix socket, silent after the offer: readable means the server is gone.
    pub(crate) fn socket_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Whether the server closed the connection (without blocking).
    pub(crate) fn server_gone(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: a 1-byte peek into a live local from a socket we own.
        let n = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        // 0: end of file; data (never sent after the offer) or an error other than "nothing
        // yet": not a live server either.
        n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock
    }
}
