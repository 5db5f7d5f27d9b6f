//! An async client with the blocking client's API, for any executor.
//!
//! Waiting never blocks the executor's thread: a task first re-polls the ring for the spin
//! time (yielding between polls, so other tasks run), then arms the ring's wake-up flag and
//! parks; the crate's wake thread ([`crate::reactor`]) wakes it when the server rings the
//! doorbell or closes the socket. No runtime is required or pulled in.
//!
//! Futures are cancel-safe: dropping a `send` leaves the rest of its command queued (it goes
//! out before anything else), dropping a `recv` keeps the reply bytes read so far.

use std::future::poll_fn;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::client::ShmOptions;
use crate::reactor::Registration;
use crate::reply::Value;
use crate::spin::SpinPolicy;
use crate::stream::{ClientStream, Want};
use crate::ShmError;

/// One async connection over shared memory. Replies arrive in the order commands were sent.
#[derive(Debug)]
pub struct AsyncShmConnection {
    /// Declared first: deregisters before the stream closes its descriptors.
    registration: Registration,
    stream: ClientStream,
    spin: SpinPolicy,
    /// When the current spin ends; `None` while not waiting.
    spin_until: Option<Instant>,
    /// Whether the wake-up flags are armed.
    armed: bool,
}

impl AsyncShmConnection {
    /// Connects to the server's shared-memory socket (`shm-path`). The handshake is one local
    /// socket round trip, done in place.
    pub async fn connect(path: impl AsRef<Path>) -> Result<AsyncShmConnection, ShmError> {
        Self::connect_with(path, ShmOptions::default()).await
    }

    pub async fn connect_with(
        path: impl AsRef<Path>,
        options: ShmOptions,
    ) -> Result<AsyncShmConnection, ShmError> {
        let stream = ClientStream::connect(path.as_ref())?;
        let registration = Registration::new([stream.doorbell_fd(), stream.socket_fd()])
            .map_err(|e| ShmError::Os("epoll", e))?;
        Ok(AsyncShmConnection {
            registration,
            stream,
            spin: SpinPolicy::new(options.spin),
            spin_until: None,
            armed: false,
        })
    }

    /// Sends one command without waiting for its reply (pipelining); read replies with
    /// [`AsyncShmConnection::recv`].
    pub async fn send(&mut self, args: &[&[u8]]) -> Result<(), ShmError> {
        self.stream.queue_command(args);
        self.flush().await
    }

    /// Sends raw RESP bytes (one or more whole commands).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ShmError> {
        self.stream.queue_raw(bytes);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), ShmError> {
        poll_fn(|cx| loop {
            if self.stream.step_send()? {
                self.done_waiting();
                return Poll::Ready(Ok(()));
            }
            match self.poll_wait(cx, Want::Room) {
                Poll::Ready(Ok(())) => continue,
                other => return other,
            }
        })
        .await
    }

    /// Reads the next reply.
    pub async fn recv(&mut self) -> Result<Value, ShmError> {
        poll_fn(|cx| loop {
            if let Some(v) = self.stream.step_recv()? {
                self.done_waiting();
                return Poll::Ready(Ok(v));
            }
            let want = self.stream.recv_want();
            match self.poll_wait(cx, want) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    }

    /// Sends one command and reads its reply (an error reply is a [`Value::Error`]).
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<Value, ShmError> {
        self.send(args).await?;
        self.recv().await
    }

    fn done_waiting(&mut self) {
        if self.spin_until.take().is_some() {
            self.spin.record(!self.armed);
        }
        if self.armed {
            self.stream.end_sleep();
            self.armed = false;
        }
    }

    /// Ready when `want` may have arrived; spins (yielding) first, then parks the task.
    fn poll_wait(&mut self, cx: &mut Context<'_>, want: Want) -> Poll<Result<(), ShmError>> {
        let now = Instant::now();
        let until = *self
            .spin_until
            .get_or_insert_with(|| now + self.spin.next_spin());
        if self.stream.ready(want)? {
            return Poll::Ready(Ok(()));
        }
        if now < until && !self.armed {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Waker first, then the flag, then the re-check: a ring after the flag is set finds
        // the waker (see `ring` for the flag's side).
        self.registration.set_waker(cx.waker());
        self.stream.announce_sleep(want);
        self.armed = true;
        if self.stream.ready(want)? {
            return Poll::Ready(Ok(()));
        }
        if self.stream.server_gone() {
            return Poll::Ready(Err(ShmError::Closed));
        }
        Poll::Pending
    }
}
