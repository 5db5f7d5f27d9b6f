//! A client's queue of out-of-band messages: pub/sub messages, invalidations, MONITOR lines.
//!
//! Anything on the client's executor (a publisher's session, the mesh task delivering a remote
//! publisher's messages, a shard draining keyspace events) appends encoded frames; the
//! client's session waits for the queue together with its socket and writes the frames
//! between replies (see [`read_or_deliver`]). The queue is bounded by
//! `client-output-buffer-limit pubsub`: a client over it is killed, and its queue dropped.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use corekv_net::{ClientIo, Protocol, ReadError, Reply, Transport};
use tracing::warn;

use crate::clients::ClientInfo;

/// `client-output-buffer-limit pubsub <hard> <soft> <soft-seconds>` (0 = no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

pub struct PushQueue {
    proto: Cell<Protocol>,
    buf: RefCell<Vec<u8>>,
    waker: Cell<Option<Waker>>,
    /// When the queue went over the soft limit (cleared once it is back under).
    over_soft_since: Cell<Option<Instant>>,
    info: Rc<RefCell<ClientInfo>>,
}

impl PushQueue {
    pub fn new(info: Rc<RefCell<ClientInfo>>, proto: Protocol) -> Rc<PushQueue> {
        Rc::new(PushQueue {
            proto: Cell::new(proto),
            buf: RefCell::default(),
            waker: Cell::new(None),
            over_soft_since: Cell::new(None),
            info,
        })
    }

    pub fn client_id(&self) -> u64 {
        self.info.borrow().id
    }

    pub fn proto(&self) -> Protocol {
        self.proto.get()
    }

    /// Frames queued after this are encoded for `proto` (HELLO, RESET).
    pub fn set_proto(&self, proto: Protocol) {
        self.proto.set(proto);
    }

    /// Queues one frame.
    pub fn push(&self, frame: &Reply, limit: OutputLimit) {
        frame.encode(self.proto.get(), &mut self.buf.borrow_mut());
        self.queued(limit);
    }

    /// Queues a frame already encoded for this client's protocol.
    pub fn push_encoded(&self, frame: &[u8], limit: OutputLimit) {
        self.buf.borrow_mut().extend_from_slice(frame);
        self.queued(limit);
    }

    fn queued(&self, limit: OutputLimit) {
        let len = self.buf.borrow().len() as u64;
        if self.over_limit(len, limit) {
            self.buf.borrow_mut().clear();
            let mut info = self.info.borrow_mut();
            warn!(
                client = info.id,
                "closing client over client-output-buffer-limit pubsub"
            );
            info.kill();
            return;
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Redis's rule: over the hard limit at once; over the soft one for longer than its
    /// seconds (counted from when it was first seen over it).
    fn over_limit(&self, len: u64, limit: OutputLimit) -> bool {
        if limit.hard > 0 && len >= limit.hard {
            return true;
        }
        if limit.soft == 0 || len < limit.soft {
            self.over_soft_since.set(None);
            return false;
        }
        match self.over_soft_since.get() {
            None => {
                self.over_soft_since.set(Some(Instant::now()));
                false
            }
            Some(since) => since.elapsed().as_secs() > limit.soft_seconds,
        }
    }

    /// Moves every queued frame to the end of `out`.
    pub fn take_into(&self, out: &mut Vec<u8>) {
        let mut buf = self.buf.borrow_mut();
        if out.is_empty() {
            std::mem::swap(&mut *buf, out);
        } else {
            out.extend_from_slice(&buf);
            buf.clear();
        }
    }

    /// Completes when something is queued.
    async fn ready(&self) {
        poll_fn(|cx| {
            if self.buf.borrow().is_empty() {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}

/// Encodes a frame once per protocol for delivery to many clients.
#[derive(Default)]
pub struct EncodedFrame {
    resp2: Option<Vec<u8>>,
    resp3: Option<Vec<u8>>,
}

impl EncodedFrame {
    pub fn for_proto(&mut self, proto: Protocol, frame: impl FnOnce() -> Reply) -> &[u8] {
        let slot = match proto {
            Protocol::Resp2 => &mut self.resp2,
            Protocol::Resp3 => &mut self.resp3,
        };
        slot.get_or_insert_with(|| {
            let mut out = Vec::new();
            frame().encode(proto, &mut out);
            out
        })
    }
}

/// A push frame of bulk strings (`message`, channel, payload...).
pub fn frame(parts: &[&Bytes]) -> Reply {
    Reply::Push(parts.iter().map(|b| Reply::Bulk((*b).clone())).collect())
}

/// Reads the client's next batch of commands, writing queued pushes to the socket whenever
/// they arrive in the meantime. Every await in it can be dropped without losing input.
pub async fn read_or_deliver<T: Transport>(
    io: &mut ClientIo<T>,
    batch: &mut Vec<Vec<Bytes>>,
    max: usize,
    queue: &PushQueue,
) -> Result<(), ReadError> {
    loop {
        io.parse_buffered(batch, max)?;
        if !batch.is_empty() {
            return Ok(());
        }
        let pushed = futures_lite::future::or(
            async {
                queue.ready().await;
                Ok::<bool, ReadError>(true)
            },
            async { io.read_more().await.map(|()| false) },
        )
        .await?;
        if pushed {
            queue.take_into(&mut io.out);
            io.flush().await?;
        }
    }
}
