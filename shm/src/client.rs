//! A blocking client: connect to the server's shm socket, send commands, read replies.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::handshake::{self, ClientEnds};
use crate::reply::{self, Value};
use crate::ShmError;

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct ShmOptions {
    /// How long to spin on the rings before sleeping on the doorbell. Longer spins cut the
    /// latency of quick replies at the cost of client CPU.
    pub spin: Duration,
}

impl Default for ShmOptions {
    fn default() -> Self {
        ShmOptions {
            spin: Duration::from_micros(50),
        }
    }
}

/// What a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Reply bytes.
    Replies,
    /// Room in the request ring (or replies to drain, so the server can go on).
    Room,
}

/// One connection over shared memory. Replies arrive in the order commands were sent.
#[derive(Debug)]
pub struct ShmConnection {
    ends: ClientEnds,
    /// Kept open for the connection's life: its end-of-file tells each side the other is gone.
    socket: UnixStream,
    options: ShmOptions,
    /// Reply bytes taken from the ring and not yet parsed, from `parsed` on.
    inbuf: Vec<u8>,
    parsed: usize,
    outbuf: Vec<u8>,
}

impl ShmConnection {
    /// Connects to the server's shared-memory socket (`shm-path`).
    pub fn connect(path: impl AsRef<Path>) -> Result<ShmConnection, ShmError> {
        Self::connect_with(path, ShmOptions::default())
    }

    pub fn connect_with(
        path: impl AsRef<Path>,
        options: ShmOptions,
    ) -> Result<ShmConnection, ShmError> {
        let path = path.as_ref();
        let socket = UnixStream::connect(path).map_err(|source| ShmError::Connect {
            path: path.display().to_string(),
            source,
        })?;
        let ends = handshake::take(socket.as_fd())?;
        Ok(ShmConnection {
            ends,
            socket,
            options,
            inbuf: Vec::new(),
            parsed: 0,
            outbuf: Vec::new(),
        })
    }

    /// Sends one command without waiting for its reply (pipelining); read replies with
    /// [`ShmConnection::recv`].
    pub fn send(&mut self, args: &[&[u8]]) -> Result<(), ShmError> {
        let mut out = std::mem::take(&mut self.outbuf);
        out.clear();
        reply::encode_command(args, &mut out);
        let res = self.send_raw(&out);
        self.outbuf = out;
        res
    }

    /// Sends raw RESP bytes (one or more whole commands).
    pub fn send_raw(&mut self, mut bytes: &[u8]) -> Result<(), ShmError> {
        while !bytes.is_empty() {
            let n = self.ends.requests.write(bytes)?;
            if n > 0 {
                bytes = &bytes[n..];
                if self.ends.requests.consumer_needs_wake() {
                    self.ring_server()?;
                }
                continue;
            }
            // The ring is full. The server may itself wait for room for replies: take them.
            if self.pull_replies()? == 0 {
                self.wait(Want::Room)?;
            }
        }
        Ok(())
    }

    /// Reads the next reply.
    pub fn recv(&mut self) -> Result<Value, ShmError> {
        loop {
            if let Some((value, n)) = reply::parse(&self.inbuf[self.parsed..])? {
                self.parsed += n;
                if self.parsed == self.inbuf.len() {
                    self.inbuf.clear();
                    self.parsed = 0;
                }
                return Ok(value);
            }
            if self.pull_replies()? == 0 {
                self.wait(Want::Replies)?;
            }
        }
    }

    /// Sends one command and reads its reply (an error reply is a [`Value::Error`]).
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Value, ShmError> {
        self.send(args)?;
        self.recv()
    }

    /// Moves every reply byte now in the ring into `inbuf`; returns how many.
    fn pull_replies(&mut self) -> Result<usize, ShmError> {
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

    fn ring_server(&self) -> Result<(), ShmError> {
        self.ends
            .to_server
            .ring()
            .map_err(|e| ShmError::Os("eventfd write", e))
    }

    fn ready(&self, want: Want) -> Result<bool, ShmError> {
        Ok(self.ends.replies.available()? > 0
            || (want == Want::Room && self.ends.requests.free()? > 0))
    }

    /// Spins for the configured time, then sleeps until the server rings or goes away.
    fn wait(&mut self, want: Want) -> Result<(), ShmError> {
        let deadline = Instant::now() + self.options.spin;
        while Instant::now() < deadline {
            if self.ready(want)? {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        let result = self.sleep(want);
        self.ends.replies.end_sleep();
        self.ends.requests.end_sleep();
        result
    }

    fn sleep(&mut self, want: Want) -> Result<(), ShmError> {
        loop {
            // Armed again after every wake-up: a late waker of an earlier round may have
            // consumed the flag (see `ring`).
            self.ends.replies.announce_sleep();
            if want == Want::Room {
                self.ends.requests.announce_sleep();
            }
            if self.ready(want)? {
                return Ok(());
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.ends.to_client.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.socket.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a live array of two pollfd for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ShmError::Os("poll", e));
            }
            if fds[1].revents != 0 {
                // The server never writes to the socket after its offer: this is its end.
                let mut byte = [0u8; 1];
                if matches!((&self.socket).read(&mut byte), Ok(0) | Err(_)) {
                    return Err(ShmError::Closed);
                }
            }
            if fds[0].revents != 0 {
                // A nonblocking read; an empty counter (spurious wake) is fine.
                let _ = self.ends.to_client.drain();
            }
        }
    }
}
