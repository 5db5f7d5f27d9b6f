//! A blocking client: connect to the server's shm socket, send commands, read replies.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::reply::Value;
use crate::spin::SpinPolicy;
use crate::stream::{ClientStream, Want};
use crate::ShmError;

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct ShmOptions {
    /// Longest spin on the rings before sleeping on the doorbell. Spins cut the latency of
    /// quick replies; the client stops spinning while they do not pay (see
    /// [`crate::spin::SpinPolicy`]).
    pub spin: Duration,
}

/// The client's default spin: longer than the server's (`shm-spin-us`, 50 µs) because a
/// client waiting for a reply knows one is coming, and a spin that outlasts a sleeping
/// server's wake-up (60-80 µs on the development VM) saves the client's own sleep and
/// wake-up, which is what puts shm below a Unix socket when the server is idle
/// (bench/RESULTS.md). Replies that do not come soon (blocking commands) stop the spinning
/// after two misses.
pub const DEFAULT_CLIENT_SPIN: Duration = Duration::from_micros(200);

impl Default for ShmOptions {
    fn default() -> Self {
        ShmOptions {
            spin: DEFAULT_CLIENT_SPIN,
        }
    }
}

/// One connection over shared memory. Replies arrive in the order commands were sent.
#[derive(Debug)]
pub struct ShmConnection {
    stream: ClientStream,
    spin: SpinPolicy,
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
        Ok(ShmConnection {
            stream: ClientStream::connect(path.as_ref())?,
            spin: SpinPolicy::new(options.spin),
        })
    }

    /// Sends one command without waiting for its reply (pipelining); read replies with
    /// [`ShmConnection::recv`].
    pub fn send(&mut self, args: &[&[u8]]) -> Result<(), ShmError> {
        self.stream.queue_command(args);
        self.flush()
    }

    /// Sends raw RESP bytes (one or more whole commands).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ShmError> {
        self.stream.queue_raw(bytes);
        self.flush()
    }

    fn flush(&mut self) -> Result<(), ShmError> {
        while !self.stream.step_send()? {
            self.wait(Want::Room)?;
        }
        Ok(())
    }

    /// Reads the next reply.
    pub fn recv(&mut self) -> Result<Value, ShmError> {
        loop {
            if let Some(v) = self.stream.step_recv()? {
                return Ok(v);
            }
            self.wait(self.stream.recv_want())?;
        }
    }

    /// Sends one command and reads its reply (an error reply is a [`Value::Error`]).
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Value, ShmError> {
        self.send(args)?;
        self.recv()
    }

    /// Raw, non-blocking access for clients that run their own event loop and RESP parser
    /// (e.g. a load generator): writes what fits of `bytes` in the request ring now.
    pub fn write_some(&mut self, bytes: &[u8]) -> Result<usize, ShmError> {
        self.stream.write_now(bytes)
    }

    /// Raw, non-blocking: reads the reply bytes there now (0 if none).
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, ShmError> {
        self.stream.read_now(buf)
    }

    /// Raw, blocking: reads at least one reply byte (waiting like [`ShmConnection::recv`]).
    pub fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize, ShmError> {
        loop {
            let n = self.stream.read_now(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.wait(self.stream.recv_want())?;
        }
    }

    /// For an external event loop: arms the "wake me" flag, after which the server rings
    /// [`ShmConnection::doorbell_fd`] (it becomes readable) when replies arrive. True when
    /// replies are already there (do not sleep). Call [`ShmConnection::end_sleep`] on waking.
    pub fn prepare_sleep(&mut self) -> Result<bool, ShmError> {
        self.stream.announce_sleep(Want::Replies);
        self.stream.ready(Want::Replies)
    }

    pub fn end_sleep(&mut self) {
        self.stream.end_sleep();
    }

    /// The eventfd the server rings after [`ShmConnection::prepare_sleep`] (never read it:
    /// use edge-triggered readiness).
    pub fn doorbell_fd(&self) -> std::os::fd::RawFd {
        self.stream.doorbell_fd()
    }

    /// Spins (see [`SpinPolicy`]), then sleeps until the server rings or goes away.
    fn wait(&mut self, want: Want) -> Result<(), ShmError> {
        let deadline = Instant::now() + self.spin.next_spin();
        loop {
            if self.stream.ready(want)? {
                self.spin.record(true);
                return Ok(());
            }
            std::hint::spin_loop();
            if Instant::now() >= deadline {
                break;
            }
        }
        self.spin.record(false);
        let result = self.sleep(want);
        self.stream.end_sleep();
        result
    }

    fn sleep(&mut self, want: Want) -> Result<(), ShmError> {
        loop {
            // Armed again after every wake-up: a late waker of an earlier round may have
            // consumed the flag (see `ring`).
            self.stream.announce_sleep(want);
            if self.stream.ready(want)? {
                return Ok(());
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.stream.doorbell_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.stream.socket_fd(),
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
            if fds[1].revents != 0 && self.stream.server_gone() {
                return Err(ShmError::Closed);
            }
            if fds[0].revents != 0 {
                self.stream.drain_doorbell();
            }
        }
    }
}
