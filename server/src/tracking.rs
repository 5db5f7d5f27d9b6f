//! Client-side caching: CLIENT TRACKING and its invalidation messages, for keys on any core.
//!
//! Each executor keeps a tracking table for its shard's keys: key → the tracking clients that
//! read it (default mode), plus every BCAST client's prefixes (registered on all executors).
//! A tracking client's read registers its keys on their owners *before* the read runs there
//! (locally at once, or by a mesh message that precedes the command on the same FIFO
//! channel), so a write that follows the read always finds the registration. The shard's
//! write hook records written keys while its table is in use (`Db::track_writes`); after each
//! command [`drain`] turns them into invalidations, sent to the executor of the client that
//! receives them (itself, or its REDIRECT target) through the pub/sub outboxes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use bytes::Bytes;
use corekv_net::{Protocol, Reply};
use corekv_shard::{slot, CommandSpec};

use crate::executor::Local;
use crate::mesh::Envelope;
use crate::ops::{on_all_shards, OpResult, ShardOp};
use crate::pubsub::{Delivery, Kind};
use crate::session::Session;

/// A tracking client as the tables know it: who asked, who receives the invalidations and
/// on which executor that one lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    pub client: u64,
    pub target: u64,
    pub executor: usize,
    pub noloop: bool,
}

/// One executor's tracking table (see the module documentation).
#[derive(Default)]
pub struct Tracking {
    table: RefCell<Table>,
    /// Whether the table holds anything: checked after every command.
    active: Cell<bool>,
    /// The client whose command runs now (for NOLOOP); 0 when unknown.
    pub writer: Cell<u64>,
    /// Invalidations for clients of other executors, not yet delivered (see [`settle`]).
    unsettled: RefCell<Vec<(usize, Delivery)>>,
}

#[derive(Default)]
struct Table {
    keys: HashMap<Bytes, Vec<Tracker>>,
    prefixes: Vec<(Bytes, Tracker)>,
    /// This executor's own tracking clients (for FLUSHALL's invalidation).
    clients: HashMap<u64, Tracker>,
}

impl Tracking {
    /// Whether invalidations wait for [`settle`]: checked after a batch or remote command.
    pub fn has_unsettled(&self) -> bool {
        !self.unsettled.borrow().is_empty()
    }

    fn set_active(&self, local: &Local) {
        let active = {
            let t = self.table.borrow();
            !t.keys.is_empty() || !t.prefixes.is_empty()
        };
        if active != self.active.get() {
            self.active.set(active);
            for db in &mut local.shard.borrow_mut().dbs {
                db.track_writes = active;
            }
        }
    }
}

/// A tracking client's settings (CLIENT TRACKING ON ...).
#[derive(Debug, Clone, Default)]
pub struct ClientTracking {
    pub redirect: Option<(u64, usize)>,
    pub bcast: bool,
    pub prefixes: Vec<Bytes>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING yes/no, for the next command.
    pub caching: Option<bool>,
    caching_used: bool,
}

impl ClientTracking {
    fn tracker(&self, client: u64, executor: usize) -> Tracker {
        let (target, executor) = self.redirect.unwrap_or((client, executor));
        Tracker {
            client,
            target,
            executor,
            noloop: self.noloop,
        }
    }
}

/// What the shard operations of tracking carry out on each executor.
pub enum TrackingOp {
    /// Remember that a client read these keys.
    Remember { keys: Vec<Bytes>, tracker: Tracker },
    /// A client turned tracking on (its BCAST prefixes, if any).
    Start {
        tracker: Tracker,
        prefixes: Vec<Bytes>,
    },
    /// A client turned tracking off or left.
    Stop { client: u64 },
    /// Is this client connected here? (REDIRECT's check)
    FindClient { id: u64 },
}

pub fn execute(local: &Local, op: TrackingOp) -> OpResult {
    let tracking = &local.tracking;
    match op {
        TrackingOp::Remember { keys, tracker } => {
            let mut t = tracking.table.borrow_mut();
            for key in keys {
                let trackers = t.keys.entry(key).or_default();
                if !trackers.contains(&tracker) {
                    trackers.push(tracker);
                }
            }
        }
        TrackingOp::Start { tracker, prefixes } => {
            let mut t = tracking.table.borrow_mut();
            t.prefixes.retain(|(_, p)| p.client != tracker.client);
            t.prefixes
                .extend(prefixes.into_iter().map(|p| (p, tracker)));
            if tracker_lives_here(local, tracker.client) {
                t.clients.insert(tracker.client, tracker);
            }
        }
        TrackingOp::Stop { client } => {
            let mut t = tracking.table.borrow_mut();
            t.prefixes.retain(|(_, p)| p.client != client);
            t.clients.remove(&client);
            t.keys.retain(|_, trackers| {
                trackers.retain(|p| p.client != client);
                !trackers.is_empty()
            });
        }
        TrackingOp::FindClient { id } => {
            let here = local.clients.borrow().contains(id);
            return OpResult::Int(if here { local.mesh.me() as i64 } else { -1 });
        }
    }
    tracking.set_active(local);
    OpResult::Done
}

fn tracker_lives_here(local: &Local, client: u64) -> bool {
    local.clients.borrow().contains(client)
}

/// Sends the invalidations of the keys written by the command that just ran.
pub fn drain(local: &Local) {
    let tracking = &local.tracking;
    if !tracking.active.get() {
        return;
    }
    let writer = tracking.writer.get();
    let mut written = Vec::new();
    for db in &mut local.shard.borrow_mut().dbs {
        written.append(&mut db.written);
    }
    if written.is_empty() {
        return;
    }
    let mut targets = Vec::new();
    {
        let mut t = tracking.table.borrow_mut();
        for key in written {
            targets.clear();
            if let Some(trackers) = t.keys.remove(&key) {
                targets.extend(trackers);
            }
            for (prefix, tracker) in &t.prefixes {
                if key.starts_with(prefix) && !targets.contains(tracker) {
                    targets.push(*tracker);
                }
            }
            for tracker in &targets {
                if tracker.noloop && tracker.client == writer {
                    continue;
                }
                send(local, tracker, Kind::Invalidate, key.clone());
            }
        }
    }
    tracking.set_active(local);
}

/// FLUSHDB / FLUSHALL ran on this executor's shard: forget its tracked keys and send every
/// local tracking client a null invalidation (Redis's "everything is gone").
pub fn flushed(local: &Local) {
    let clients: Vec<Tracker> = {
        let mut t = local.tracking.table.borrow_mut();
        t.keys.clear();
        t.clients.values().copied().collect()
    };
    for tracker in &clients {
        send(local, tracker, Kind::InvalidateAll, Bytes::new());
    }
    local.tracking.set_active(local);
}

/// Delivers an invalidation now when its receiver is on this executor, else keeps it for
/// [`settle`].
fn send(local: &Local, tracker: &Tracker, kind: Kind, key: Bytes) {
    let delivery = Delivery {
        kind,
        channel: Bytes::copy_from_slice(&tracker.target.to_le_bytes()),
        message: key,
    };
    if tracker.executor == local.mesh.me() {
        local.pubsub.send_to(tracker.executor, delivery);
    } else {
        local
            .tracking
            .unsettled
            .borrow_mut()
            .push((tracker.executor, delivery));
    }
}

/// Hands the pending invalidations to their executors and waits until each has queued them
/// for its clients. A write's reply leaves only after this, so a client that saw the reply
/// finds the invalidation already on its caching connection (Redis gives the same order).
pub async fn settle(local: &Local) {
    let pending = std::mem::take(&mut *local.tracking.unsettled.borrow_mut());
    let mut per_executor: Vec<Vec<Delivery>> =
        (0..local.mesh.shards()).map(|_| Vec::new()).collect();
    for (executor, d) in pending {
        per_executor[executor].push(d);
    }
    let mut acks = Vec::new();
    for (executor, deliveries) in per_executor.into_iter().enumerate() {
        if deliveries.is_empty() {
            continue;
        }
        let (ack, done) = futures_channel::oneshot::channel();
        let env = Envelope::Invalidate { deliveries, ack };
        if local.mesh.send(executor, env).await.is_ok() {
            acks.push(done);
        }
    }
    for done in acks {
        let _ = done.await;
    }
}

/// The invalidation frame for one receiving client: a push in RESP3, a message on
/// `__redis__:invalidate` in RESP2 (which the client must be subscribed to).
pub fn frame(proto: Protocol, key: Option<&Bytes>) -> Reply {
    let keys = key.map_or(Reply::Nil, |k| Reply::Array(vec![Reply::Bulk(k.clone())]));
    match proto {
        Protocol::Resp3 => Reply::Push(vec![Reply::bulk("invalidate"), keys]),
        Protocol::Resp2 => Reply::Push(vec![
            Reply::bulk("message"),
            Reply::Bulk(INVALIDATE_CHANNEL.clone()),
            keys,
        ]),
    }
}

pub static INVALIDATE_CHANNEL: Bytes = Bytes::from_static(b"__redis__:invalidate");

/// Before a tracking client's command runs: register the keys of a read on their shards
/// (default mode; OPTIN/OPTOUT and CLIENT CACHING decide).
pub async fn before_command(s: &mut Session, spec: &CommandSpec, args: &[Bytes]) {
    let Some(t) = s.tracking.as_mut() else {
        return;
    };
    if std::mem::take(&mut t.caching_used) {
        t.caching = None;
    }
    let is_caching = spec.name == "client" && args.get(1).is_some_and(|a| is(a, "caching"));
    if t.caching.is_some() && !is_caching {
        t.caching_used = true;
    }
    let wanted = !t.bcast
        && spec.has_flag("readonly")
        && (!t.optin || t.caching == Some(true))
        && (!t.optout || t.caching != Some(false));
    if !wanted {
        return;
    }
    let me = s.local.mesh.me();
    let tracker = t.tracker(s.id, me);
    let shards = s.shards();
    let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); shards];
    for pos in spec.key_positions(args) {
        per_shard[slot::key_shard(&args[pos], shards)].push(args[pos].clone());
    }
    for (shard, keys) in per_shard.into_iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        let op = TrackingOp::Remember { keys, tracker };
        if shard == me {
            execute(&s.local, op);
        } else {
            // No need to wait: the command follows on the same FIFO channel.
            let (reply, _) = futures_channel::oneshot::channel();
            let op = ShardOp::Tracking(op);
            let _ = s.local.mesh.send(shard, Envelope::Op { op, reply }).await;
        }
    }
}

fn is(arg: &Bytes, word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Turns tracking on with these settings (CLIENT TRACKING ON ...).
pub async fn start(s: &mut Session, settings: ClientTracking) {
    crate::pubsub::client::queue(s);
    let tracker = settings.tracker(s.id, s.local.mesh.me());
    let prefixes = if settings.bcast {
        if settings.prefixes.is_empty() {
            vec![Bytes::new()]
        } else {
            settings.prefixes.clone()
        }
    } else {
        Vec::new()
    };
    s.tracking = Some(Box::new(settings));
    on_all_shards(&s.local, || {
        ShardOp::Tracking(TrackingOp::Start {
            tracker,
            prefixes: prefixes.clone(),
        })
    })
    .await;
}

/// Turns tracking off (CLIENT TRACKING OFF, RESET, disconnection).
pub async fn stop(s: &mut Session) {
    if s.tracking.take().is_none() {
        return;
    }
    let client = s.id;
    on_all_shards(&s.local, || ShardOp::Tracking(TrackingOp::Stop { client })).await;
}

/// The executor a client id is connected to, if any (REDIRECT).
pub async fn find_client(s: &Session, id: u64) -> Option<usize> {
    on_all_shards(&s.local, || {
        ShardOp::Tracking(TrackingOp::FindClient { id })
    })
    .await
    .into_iter()
    .find_map(|r| match r {
        OpResult::Int(n) if n >= 0 => Some(n as usize),
        _ => None,
    })
}
