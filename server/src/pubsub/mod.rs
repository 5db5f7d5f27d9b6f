//! Pub/Sub across cores, and the other streams built on it: keyspace notifications
//! ([`keyspace`]) and MONITOR ([`monitor`]).
//!
//! Each executor keeps:
//! - its own clients' subscriptions: channel (or pattern) → their push queues;
//! - a replica of the **interest table**: for every channel, pattern and shard channel any
//!   client subscribes to, how many subscriptions each executor holds. Every (un)subscribe
//!   updates every executor's replica before it is confirmed, so a PUBLISH sees, locally and
//!   without a hop, which executors need the message and how many receivers it has (its
//!   reply), and PUBSUB CHANNELS/NUMSUB/NUMPAT answer from it;
//! - an **outbox** per peer executor: a publisher appends the message for each executor with
//!   receivers; one flusher task sends each non-empty outbox as one mesh message, so a burst
//!   of PUBLISHes costs one hop per executor. Mesh channels are FIFO per pair of executors,
//!   and a subscriber lives on one executor, so each subscriber receives a publisher's
//!   messages in publish order. Local subscribers are served at once.

pub mod client;
pub mod keyspace;
pub mod monitor;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::glob;

use crate::executor::Local;
use crate::mesh::Envelope;
use crate::ops::{on_all_shards, ShardOp};
use crate::push::{frame, EncodedFrame, OutputLimit, PushQueue};

/// What a subscription is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel = 0,
    Pattern = 1,
    /// SSUBSCRIBE / SPUBLISH: a separate namespace of channels.
    Shard = 2,
    /// A MONITOR client (one name, empty).
    Monitor = 3,
    /// A key's invalidation for one client (client-side caching); the channel is the
    /// receiving client's id, the message the key.
    Invalidate = 4,
    /// FLUSHALL/FLUSHDB's invalidation of everything, for one client.
    InvalidateAll = 5,
}
const KINDS: usize = 6;

/// One message on its way to the subscribers of one executor.
pub struct Delivery {
    pub kind: Kind,
    pub channel: Bytes,
    pub message: Bytes,
}

/// A change of one executor's subscription count (applied to every replica).
#[derive(Clone)]
pub struct InterestChange {
    pub executor: usize,
    pub kind: Kind,
    pub name: Bytes,
    pub delta: i32,
}

/// Messages waiting in an outbox before the publisher waits for the flusher.
const MAX_BACKLOG: usize = 64 * 1024;

type Subscribers = HashMap<Bytes, Vec<Rc<PushQueue>>>;
type Interest = HashMap<Bytes, Vec<u32>>;

/// One executor's pub/sub state (see the module documentation).
pub struct PubSub {
    state: RefCell<State>,
    /// Whether any executor has a MONITOR client (checked for every command).
    pub monitoring: Cell<bool>,
    /// `client-output-buffer-limit pubsub`, copied from the config.
    pub limit: Cell<OutputLimit>,
    flusher: Cell<Option<Waker>>,
    /// Publishers waiting for the outboxes to drain.
    drained: RefCell<Vec<Waker>>,
    /// This executor's clients that have a push queue, by id (invalidation receivers).
    queues: RefCell<HashMap<u64, Rc<PushQueue>>>,
}

struct State {
    me: usize,
    local: [Subscribers; KINDS],
    interest: [Interest; KINDS],
    outbox: Vec<Vec<Delivery>>,
    backlog: usize,
}

impl PubSub {
    pub fn new(me: usize, executors: usize, limit: OutputLimit) -> PubSub {
        PubSub {
            state: RefCell::new(State {
                me,
                local: Default::default(),
                interest: Default::default(),
                outbox: (0..executors).map(|_| Vec::new()).collect(),
                backlog: 0,
            }),
            monitoring: Cell::new(false),
            limit: Cell::new(limit),
            flusher: Cell::new(None),
            drained: RefCell::default(),
            queues: RefCell::default(),
        }
    }

    pub fn register_queue(&self, client: u64, queue: &Rc<PushQueue>) {
        self.queues.borrow_mut().insert(client, queue.clone());
    }

    pub fn unregister_queue(&self, client: u64) {
        self.queues.borrow_mut().remove(&client);
    }

    /// Sends one delivery to one executor (a message for a known client).
    pub fn send_to(&self, executor: usize, delivery: Delivery) {
        let mut st = self.state.borrow_mut();
        if executor == st.me {
            self.deliver_one(&st, delivery.kind, &delivery.channel, &delivery.message);
            return;
        }
        st.outbox[executor].push(delivery);
        st.backlog += 1;
        if let Some(w) = self.flusher.take() {
            w.wake();
        }
    }

    /// Adds a local subscriber. The caller then spreads the change with [`announce`].
    pub fn add_local(&self, kind: Kind, name: &Bytes, queue: &Rc<PushQueue>) {
        let mut st = self.state.borrow_mut();
        st.local[kind as usize]
            .entry(name.clone())
            .or_default()
            .push(queue.clone());
    }

    /// Removes a local subscriber.
    pub fn remove_local(&self, kind: Kind, name: &[u8], client: u64) {
        let mut st = self.state.borrow_mut();
        let map = &mut st.local[kind as usize];
        if let Some(queues) = map.get_mut(name) {
            queues.retain(|q| q.client_id() != client);
            if queues.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Applies subscription count changes to this executor's replica of the interest table.
    pub fn apply(&self, changes: &[InterestChange]) {
        let mut st = self.state.borrow_mut();
        let executors = st.outbox.len();
        for c in changes {
            let map = &mut st.interest[c.kind as usize];
            let counts = map
                .entry(c.name.clone())
                .or_insert_with(|| vec![0; executors]);
            let n = &mut counts[c.executor];
            *n = n.saturating_add_signed(c.delta);
            if counts.iter().all(|&n| n == 0) {
                map.remove(&c.name);
            }
        }
        self.monitoring
            .set(!st.interest[Kind::Monitor as usize].is_empty());
    }

    /// Channels (or shard channels) with subscribers, matching `pattern` if given.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let st = self.state.borrow();
        st.interest[kind as usize]
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscriptions to one name, on all executors.
    pub fn count(&self, kind: Kind, name: &[u8]) -> i64 {
        let st = self.state.borrow();
        st.interest[kind as usize]
            .get(name)
            .map_or(0, |c| c.iter().map(|&n| n as i64).sum())
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn patterns(&self) -> usize {
        self.state.borrow().interest[Kind::Pattern as usize].len()
    }

    /// Publishes a message: local receivers get it now, other executors' through the
    /// outboxes. Returns the number of receivers (PUBLISH's reply).
    pub fn publish(&self, kind: Kind, channel: &Bytes, message: &Bytes) -> i64 {
        let mut st = self.state.borrow_mut();
        let executors = st.outbox.len();
        let mut per_executor = [0u32; 64];
        let mut wide;
        let counts: &mut [u32] = if executors <= per_executor.len() {
            &mut per_executor[..executors]
        } else {
            wide = vec![0; executors];
            &mut wide
        };
        let mut add = |c: &[u32]| {
            for (total, n) in counts.iter_mut().zip(c) {
                *total += n;
            }
        };
        if let Some(c) = st.interest[kind as usize].get(channel) {
            add(c);
        }
        if kind == Kind::Channel {
            for (pattern, c) in &st.interest[Kind::Pattern as usize] {
                if glob::matches(pattern, channel, false) {
                    add(c);
                }
            }
        }
        let mut receivers = 0i64;
        let mut remote = false;
        for (executor, &n) in counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            receivers += n as i64;
            if executor == st.me {
                self.deliver_one(&st, kind, channel, message);
            } else {
                st.outbox[executor].push(Delivery {
                    kind,
                    channel: channel.clone(),
                    message: message.clone(),
                });
                st.backlog += 1;
                remote = true;
            }
        }
        if remote {
            if let Some(w) = self.flusher.take() {
                w.wake();
            }
        }
        receivers
    }

    /// Serves messages another executor published to this one's subscribers.
    pub fn deliver(&self, deliveries: Vec<Delivery>) {
        let st = self.state.borrow();
        for d in &deliveries {
            self.deliver_one(&st, d.kind, &d.channel, &d.message);
        }
    }

    fn deliver_one(&self, st: &State, kind: Kind, channel: &Bytes, message: &Bytes) {
        let limit = self.limit.get();
        if matches!(kind, Kind::Invalidate | Kind::InvalidateAll) {
            return self.invalidate(st, kind, channel, message, limit);
        }
        let send = |queues: &[Rc<PushQueue>], make: &dyn Fn() -> Reply| {
            let mut encoded = EncodedFrame::default();
            for q in queues {
                q.push_encoded(encoded.for_proto(q.proto(), make), limit);
            }
        };
        if let Some(queues) = st.local[kind as usize].get(channel) {
            match kind {
                Kind::Channel => send(queues, &|| frame(&[&MESSAGE, channel, message])),
                Kind::Shard => send(queues, &|| frame(&[&SMESSAGE, channel, message])),
                Kind::Monitor => send(queues, &|| {
                    Reply::status(String::from_utf8_lossy(message).into_owned())
                }),
                Kind::Pattern | Kind::Invalidate | Kind::InvalidateAll => {}
            }
        }
        if kind == Kind::Channel {
            for (pattern, queues) in &st.local[Kind::Pattern as usize] {
                if glob::matches(pattern, channel, false) {
                    send(queues, &|| frame(&[&PMESSAGE, pattern, channel, message]));
                }
            }
        }
    }

    /// Sends an invalidation to the client it is for, if it is still here: as a push in RESP3,
    /// or as a message on `__redis__:invalidate` to a RESP2 client subscribed to it.
    fn invalidate(&self, st: &State, kind: Kind, client: &[u8], key: &Bytes, limit: OutputLimit) {
        let id = client.try_into().map(u64::from_le_bytes).unwrap_or(0);
        let Some(queue) = self.queues.borrow().get(&id).cloned() else {
            return;
        };
        let proto = queue.proto();
        if proto == corekv_net::Protocol::Resp2 {
            let subscribed = st.local[Kind::Channel as usize]
                .get(&crate::tracking::INVALIDATE_CHANNEL)
                .is_some_and(|qs| qs.iter().any(|q| Rc::ptr_eq(q, &queue)));
            if !subscribed {
                return;
            }
        }
        let key = (kind == Kind::Invalidate).then_some(key);
        queue.push(&crate::tracking::frame(proto, key), limit);
    }

    /// Waits while the outboxes hold too much (a publisher faster than the mesh).
    pub async fn wait_backlog(&self) {
        poll_fn(|cx| {
            if self.state.borrow().backlog < MAX_BACKLOG {
                Poll::Ready(())
            } else {
                self.drained.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

static MESSAGE: Bytes = Bytes::from_static(b"message");
static PMESSAGE: Bytes = Bytes::from_static(b"pmessage");
static SMESSAGE: Bytes = Bytes::from_static(b"smessage");

/// Sends every non-empty outbox as one mesh message per executor, whenever there are some.
pub async fn flusher(local: Rc<Local>) {
    let pubsub = &local.pubsub;
    loop {
        poll_fn(|cx| {
            if pubsub.state.borrow().backlog > 0 {
                Poll::Ready(())
            } else {
                pubsub.flusher.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        let executors = pubsub.state.borrow().outbox.len();
        for executor in 0..executors {
            let batch = {
                let mut st = pubsub.state.borrow_mut();
                let batch = std::mem::take(&mut st.outbox[executor]);
                st.backlog -= batch.len();
                batch
            };
            if !batch.is_empty() {
                // Fails only while shutting down.
                let _ = local.mesh.send(executor, Envelope::Publish(batch)).await;
            }
        }
        for w in pubsub.drained.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// Spreads subscription changes to every executor's interest table; the caller confirms
/// the subscriptions once this returns.
pub async fn announce(local: &Local, changes: Vec<InterestChange>) {
    if changes.is_empty() {
        return;
    }
    on_all_shards(local, || ShardOp::Interest(changes.clone())).await;
}
